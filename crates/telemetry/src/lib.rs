//! Telemetry: the `Sample` (one car at one instant), its validation, the decoding of the
//! seed's JSON ingest shape, and `TelemetryPoint`, a sample under those same names for clients.
//!
//! Pure logic: nothing here does I/O. Sources (HTTP, UDP, files, the simulator)
//! turn their input into [`Sample`]s through this crate and nothing else.

pub mod json;
pub mod point;
pub mod sample;
pub mod validate;

pub use json::{parse_body, parse_value, BodyError, ParsedBatch};
pub use point::{MetaTime, TelemetryPoint};
pub use sample::{Corners, PitStatus, Sample};
pub use validate::{validate, Rejection};
