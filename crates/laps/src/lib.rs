//! Laps: the per-car lap engine and the live race order.
//!
//! - [`LapEngine`] (one per car): 600 ms rolling windows with Welford statistics, lap and
//!   sector cuts from lap distance (crossing instants interpolated between samples), validity
//!   flags, heavy-braking / hard-cornering events and the 20 [`LapFeatures`] of the design,
//!   O(1) per sample and allocation-free in the steady state. Emits a [`LapSummary`] when a
//!   lap closes.
//! - [`RaceOrder`] (one per session): positions and time gaps (leader, ahead, behind), closing
//!   rates and overtaking / pressure flags.
//!
//! Pure logic: no I/O, no clocks; time is the samples' `t_s`.

pub mod engine;
pub mod features;
pub mod order;
pub mod stats;

pub use engine::{
    distance_to_time_fraction, Channel, Event, EventKind, LapCut, LapEngine, LapEngineConfig,
    LapSummary, LapValidity,
};
pub use features::{LapFeatures, G_MPS2};
pub use order::{Gaps, PositionSource, RaceOrder, RaceOrderConfig};
pub use stats::{ChannelStats, RunningStats, WindowStats};
