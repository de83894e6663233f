//! What PitWall knows about circuits, in two parts:
//!
//! - **Circuit geometry** ([`circuit`], re-exported here): the 25 TUMFTM circuits the simulator
//!   races on, with center lines, widths, race lines, sectors and a GPS projection ([`Track`],
//!   [`closest_track`], [`geometry`] for the lap engine's lap length and sector ends).
//! - **Venue facts** ([`Venue`], [`venue`]): what the series' official track maps say about each
//!   GR Cup venue (lap length, where sectors 1 and 2 end, where the pit lane leaves and rejoins
//!   the track, and the pit lane's transit time), transcribed from
//!   `shared/data/gr-cup/TRACKS.md`. Distances are metres along the centre line from the
//!   start/finish line. Used as the pit-loss prior of the strategy model where a race has no
//!   stop to learn from.

pub mod circuit;

pub use circuit::{
    closest_track, geometry, unknown_track_message, CenterPoint, RaceLinePoint, SectorSource,
    Track, TrackError,
};

/// One venue.
#[derive(Debug, Clone, PartialEq)]
pub struct Venue {
    /// Official name.
    pub name: &'static str,
    /// Names seen in the files and on the command line (matched without case, `_`/` `/`-`
    /// alike).
    pub aliases: &'static [&'static str],
    /// Centre-line lap length, m.
    pub lap_m: f64,
    /// End of sector 1, m.
    pub s1_end_m: f64,
    /// End of sector 2, m (sector 3 ends at the line).
    pub s2_end_m: f64,
    /// Pit-lane entry, m from the line (`None` where the map's figure is not usable).
    pub pit_in_m: Option<f64>,
    /// Pit-lane exit, m from the line (negative: before the line).
    pub pit_out_m: f64,
    /// Track distance the pit lane bypasses (pit in to pit out), m.
    pub pit_in_to_out_m: f64,
    /// Pit-lane transit time printed on the map, s (`None`: not printed).
    pub pit_lane_time_s: Option<f64>,
}

impl Venue {
    /// Time a drive through the pit lane costs against staying on track, for a lap of
    /// `lap_time_s`: the lane's transit time less the time the bypassed track distance takes at
    /// the lap's average speed. `None` where the map prints no lane time.
    pub fn pit_loss_s(&self, lap_time_s: f64) -> Option<f64> {
        let lane = self.pit_lane_time_s?;
        if !(lap_time_s.is_finite() && lap_time_s > 0.0) {
            return None;
        }
        Some((lane - lap_time_s * self.pit_in_to_out_m / self.lap_m).max(0.0))
    }
}

/// The seven GR Cup venues of the 2025 season.
pub const VENUES: [Venue; 7] = [
    Venue {
        name: "Barber Motorsports Park",
        aliases: &["barber", "barber-motorsports-park"],
        lap_m: 3674.7,
        s1_end_m: 1029.0,
        s2_end_m: 2609.4,
        pit_in_m: Some(3334.9),
        pit_out_m: 135.9,
        pit_in_to_out_m: 477.4,
        pit_lane_time_s: Some(34.0),
    },
    Venue {
        name: "Circuit of the Americas",
        aliases: &["cota", "austin", "circuit-of-the-americas"],
        lap_m: 5498.3,
        s1_end_m: 1308.8,
        s2_end_m: 3548.8,
        pit_in_m: Some(5284.9),
        pit_out_m: 393.8,
        pit_in_to_out_m: 509.3,
        pit_lane_time_s: Some(36.0),
    },
    Venue {
        name: "Indianapolis Motor Speedway road course",
        aliases: &["indianapolis", "indy", "indianapolis-motor-speedway"],
        lap_m: 3925.2,
        s1_end_m: 1364.3,
        s2_end_m: 2751.2,
        pit_in_m: Some(3415.3),
        pit_out_m: 394.8,
        pit_in_to_out_m: 865.4,
        pit_lane_time_s: None,
    },
    Venue {
        name: "Road America",
        aliases: &["road-america", "roadamerica", "elkhart-lake"],
        lap_m: 6459.6,
        s1_end_m: 2058.6,
        s2_end_m: 4266.6,
        // Printed as 616.0, which disagrees with the exit and in-to-out figures: unknown.
        pit_in_m: None,
        pit_out_m: 347.2,
        pit_in_to_out_m: 646.8,
        pit_lane_time_s: Some(52.0),
    },
    Venue {
        name: "Sebring International Raceway",
        aliases: &["sebring"],
        lap_m: 6018.9,
        s1_end_m: 1824.2,
        s2_end_m: 3687.9,
        pit_in_m: Some(5842.2),
        pit_out_m: 365.2,
        pit_in_to_out_m: 542.3,
        pit_lane_time_s: Some(39.0),
    },
    Venue {
        name: "Sonoma Raceway",
        aliases: &["sonoma", "sonoma-raceway", "sears-point"],
        lap_m: 4031.4,
        s1_end_m: 1384.8,
        s2_end_m: 2806.6,
        // 519.2 m before the line.
        pit_in_m: Some(4031.4 - 519.2),
        pit_out_m: 95.9,
        pit_in_to_out_m: 623.9,
        pit_lane_time_s: Some(45.0),
    },
    Venue {
        name: "Virginia International Raceway",
        aliases: &["vir", "virginia-international-raceway"],
        lap_m: 5262.6,
        s1_end_m: 1652.6,
        s2_end_m: 3810.6,
        pit_in_m: Some(4898.7),
        pit_out_m: -16.0,
        pit_in_to_out_m: 340.6,
        pit_lane_time_s: Some(25.0),
    },
];

fn normalise(s: &str) -> String {
    s.trim()
        .chars()
        .map(|c| match c {
            '_' | ' ' => '-',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// The venue a track name (as the files, the command line or the simulator spell it) means.
pub fn venue(name: &str) -> Option<&'static Venue> {
    let n = normalise(name);
    VENUES
        .iter()
        .find(|v| normalise(v.name) == n || v.aliases.iter().any(|a| *a == n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_the_files_spell_them() {
        for (name, lap) in [
            ("barber", 3674.7),
            ("COTA", 5498.3),
            ("Austin", 5498.3),
            ("road_america", 6459.6),
            ("Road America", 6459.6),
            ("VIR", 5262.6),
            ("indianapolis", 3925.2),
        ] {
            assert_eq!(venue(name).map(|v| v.lap_m), Some(lap), "{name}");
        }
        assert!(venue("Monza").is_none());
    }

    #[test]
    fn pit_loss_is_the_lane_less_the_bypassed_track() {
        let barber = venue("barber").unwrap();
        // 34 s in the lane against 477.4 m of a 3,674.7 m lap run in 98 s: 12.7 s.
        let loss = barber.pit_loss_s(98.0).unwrap();
        assert!((loss - (34.0 - 98.0 * 477.4 / 3674.7)).abs() < 1e-9);
        assert!((21.0..22.0).contains(&loss), "{loss}");
        assert!(venue("indianapolis").unwrap().pit_loss_s(100.0).is_none());
        assert!(barber.pit_loss_s(f64::NAN).is_none());
    }
}
