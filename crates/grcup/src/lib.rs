//! Readers for the Toyota GR Cup file family: pure, streaming, recognised by header.
//!
//! * [`detect`] tells what a file is from its first bytes (never its name, never column order).
//! * [`LongPivot`] pivots long-format telemetry (one row per car, instant and channel) into
//!   [`telemetry::Sample`]s in one streaming pass with memory bounded by the number of cars
//!   (rows must be in time order per car, up to a small window).
//! * [`SortedLongPivot`] pivots long-format telemetry in any row order (chunked external
//!   sort; the caller provides the spill files), memory bounded by one chunk.
//! * [`WidePivot`] reads wide-format telemetry (one column per channel) the same way.
//! * [`read_lap_boundaries`] reads `*_lap_start*`, `*_lap_end*`, `*_lap_time*` files (both layouts).
//! * [`read_official_timing`], [`read_results`], [`read_best_laps`], [`read_weather`] read the
//!   semicolon-separated official files into typed records.
//!
//! Nothing here opens files: every reader takes an `impl Read` (or bytes) from the caller.
//! Bad rows never stop a read: they are counted by [`RejectReason`] with their line numbers
//! ([`Rejects`]); only an unreadable file (empty, binary, unknown header, missing columns,
//! I/O failure) is an [`Error`].

mod channels;
mod clock;
mod detect;
mod engine;
mod error;
mod fastcsv;
mod ids;
mod laps;
mod long;
mod official;
mod rejects;
mod sample_loop;
mod sorted;
pub mod synth;
mod table;
mod timing;
mod wide;

pub use channels::Channel;
pub use clock::{parse_duration_s, parse_timestamp_ns};
pub use detect::{detect, FileKind, SNIFF_BYTES};
pub use engine::{car_identity, CarIdentity, PivotConfig, PivotStats, VehicleInfo};
pub use error::Error;
pub use laps::{read_lap_boundaries, LapBoundaries, LapEvent, LapInterval};
pub use long::LongPivot;
pub use official::{
    read_best_laps, read_fields, read_results, read_weather, BestLap, BestLaps, Fields, Gap,
    RaceResult, Weather,
};
pub use rejects::{RejectReason, RejectedRow, Rejects};
pub use sorted::{memory_spill, SortedLongPivot, SpillFactory, SpillFile};
pub use table::Table;
pub use timing::{read_official_timing, Flag, OfficialLap};
pub use wide::WidePivot;
