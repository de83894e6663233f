//! The circuits the simulator races on. They live in the `tracks` crate (`tracks::circuit`),
//! which the live server also reads without depending on the simulator; this module re-exports
//! them so `sim::tracks::Track` and `sim::Track` keep working.

pub use ::tracks::circuit::{
    closest_track, CenterPoint, RaceLinePoint, SectorSource, Track, TrackError,
};
