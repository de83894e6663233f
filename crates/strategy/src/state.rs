//! Race state: [`CarState`] per car and [`RaceState`] for the race, as given to the engine.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{finite, non_negative, probability, Result, StrategyError};
use crate::params::TyreModel;
use crate::plan::Strategy;

/// Tyre compound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compound {
    /// Soft slick.
    Soft,
    /// Medium slick.
    Medium,
    /// Hard slick.
    Hard,
    /// Intermediate.
    Intermediate,
    /// Full wet.
    Wet,
}

impl Compound {
    /// Every compound, in index order.
    pub const ALL: [Compound; 5] = [
        Compound::Soft,
        Compound::Medium,
        Compound::Hard,
        Compound::Intermediate,
        Compound::Wet,
    ];

    /// Lower-case name as in the data files.
    pub fn name(self) -> &'static str {
        match self {
            Compound::Soft => "soft",
            Compound::Medium => "medium",
            Compound::Hard => "hard",
            Compound::Intermediate => "intermediate",
            Compound::Wet => "wet",
        }
    }

    /// Dense index 0..5.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Compound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn one() -> f64 {
    1.0
}

/// One car as the race stands. Pace parameters are optional and fall back to [`crate::RaceParams`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CarState {
    /// Car id (as in `telemetry::Sample::car_id`).
    pub car_id: String,
    /// Position now (1 = leader); on the grid when `current_lap` is 0.
    pub position: u32,
    /// Race time so far. Only differences between cars matter, so a gap to the leader works too
    /// (TOML key `race_time_s` or its alias `gap_s`).
    #[serde(default, alias = "gap_s")]
    pub race_time_s: f64,
    /// Laps completed by this car (informational; the engine runs all cars to `total_laps`).
    #[serde(default)]
    pub laps_done: u32,
    /// Age of the fitted tyres, laps.
    #[serde(default)]
    pub tyre_age_laps: f64,
    /// Fitted compound.
    pub compound: Compound,
    /// Stops made so far.
    #[serde(default)]
    pub stops_done: u32,
    /// The car is out of the race.
    #[serde(default)]
    pub retired: bool,
    /// Driver + car offset to the base lap time (negative = faster).
    #[serde(default)]
    pub pace_offset_s: f64,
    /// Lap-time noise sigma; `None` = `driver.noise_sigma_s`.
    #[serde(default)]
    pub noise_sigma_s: Option<f64>,
    /// Multiplier on the compound degradation terms k1 and k2 (1 = nominal).
    #[serde(default = "one")]
    pub deg_factor: f64,
    /// Per-compound tyre models of this car, replacing the compound's default entirely.
    #[serde(default)]
    pub tyres: BTreeMap<Compound, TyreModel>,
    /// Per-race failure probability; `None` = `driver.failure_probability`.
    #[serde(default)]
    pub failure_probability: Option<f64>,
    /// Mean of the random start performance (lap 1 only).
    #[serde(default)]
    pub start_perf_mean_s: f64,
    /// This car's own pit plan for the rest of the race; `None` = the default plan. Any number
    /// of stops; every car's plan (the asked car's too) is followed by `--all-cars`
    /// ([`crate::simulate_field`]); for the asked car, the plans tried come from `[plans]`.
    #[serde(default)]
    pub plan: Option<Strategy>,
    /// Top speed (speed trap / qualifying v_max) for the pair-wise overtaking threshold
    /// (`overtaking.top_speed_coeff_s_per_kmh`); `None` = the mean of the cars that give one.
    #[serde(default)]
    pub top_speed_kmh: Option<f64>,
    /// Sigma of this car's random start performance; `None` = `track.start_perf_sigma_s`.
    #[serde(default)]
    pub start_perf_sigma_s: Option<f64>,
    /// This car's (team's) pit standstill model; `None` = the `pit` parameters.
    #[serde(default)]
    pub standstill: Option<StandstillModel>,
    /// Relative chance that this car is the one retiring in an accident that brings out a
    /// safety car (`safety_car.accident_retires_car`). Default 1.
    #[serde(default = "one")]
    pub accident_weight: f64,
    /// A scheduled retirement: the car is out at this race progress in laps (7.5 = during lap 8),
    /// optionally bringing out an SC or VSC.
    #[serde(default)]
    pub retirement: Option<ScheduledRetirement>,
}

/// Standstill of one car's stops: `min_s` + a Fisk draw (redrawn above
/// `pit.redraw_above_mean_factor` x its mean).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StandstillModel {
    /// Minimum standstill (TUMFTM: `t_pit_tirechange_min` + the Fisk `loc`).
    pub min_s: f64,
    /// Fisk shape c (> 1).
    pub fisk_shape: f64,
    /// Fisk scale.
    pub fisk_scale_s: f64,
}

/// The kind of neutralisation a scheduled retirement brings out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Neutralisation {
    /// Safety car.
    Sc,
    /// Virtual safety car.
    Vsc,
}

/// A car that will retire at a known point (TUMFTM's `retire_data`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduledRetirement {
    /// Race progress in laps at which the car stops: it is out during lap `floor(at_lap) + 1`.
    pub at_lap: f64,
    /// SC or VSC brought out by the retirement (from the retirement lap on), if any.
    #[serde(default)]
    pub neutralisation: Option<Neutralisation>,
    /// Length of that neutralisation in laps (default 3).
    #[serde(default = "three")]
    pub neutralisation_laps: u32,
}

fn three() -> u32 {
    3
}

impl CarState {
    /// A car with default pace parameters.
    pub fn new(car_id: impl Into<String>, position: u32, compound: Compound) -> Self {
        CarState {
            car_id: car_id.into(),
            position,
            race_time_s: 0.0,
            laps_done: 0,
            tyre_age_laps: 0.0,
            compound,
            stops_done: 0,
            retired: false,
            pace_offset_s: 0.0,
            noise_sigma_s: None,
            deg_factor: 1.0,
            tyres: BTreeMap::new(),
            failure_probability: None,
            start_perf_mean_s: 0.0,
            plan: None,
            top_speed_kmh: None,
            start_perf_sigma_s: None,
            standstill: None,
            accident_weight: 1.0,
            retirement: None,
        }
    }

    fn validate(&self) -> Result<()> {
        let id = &self.car_id;
        finite(&format!("cars[{id}].race_time_s"), self.race_time_s)?;
        non_negative(&format!("cars[{id}].tyre_age_laps"), self.tyre_age_laps)?;
        finite(&format!("cars[{id}].pace_offset_s"), self.pace_offset_s)?;
        if let Some(s) = self.noise_sigma_s {
            non_negative(&format!("cars[{id}].noise_sigma_s"), s)?;
        }
        non_negative(&format!("cars[{id}].deg_factor"), self.deg_factor)?;
        if let Some(p) = self.failure_probability {
            probability(&format!("cars[{id}].failure_probability"), p)?;
        }
        finite(
            &format!("cars[{id}].start_perf_mean_s"),
            self.start_perf_mean_s,
        )?;
        if let Some(v) = self.top_speed_kmh {
            non_negative(&format!("cars[{id}].top_speed_kmh"), v)?;
        }
        if let Some(v) = self.start_perf_sigma_s {
            non_negative(&format!("cars[{id}].start_perf_sigma_s"), v)?;
        }
        if let Some(m) = &self.standstill {
            non_negative(&format!("cars[{id}].standstill.min_s"), m.min_s)?;
            non_negative(
                &format!("cars[{id}].standstill.fisk_scale_s"),
                m.fisk_scale_s,
            )?;
            finite(&format!("cars[{id}].standstill.fisk_shape"), m.fisk_shape)?;
            if m.fisk_shape <= 1.0 {
                return Err(crate::error::invalid(
                    &format!("cars[{id}].standstill.fisk_shape"),
                    "must be > 1 (the Fisk mean is infinite otherwise)",
                ));
            }
        }
        non_negative(&format!("cars[{id}].accident_weight"), self.accident_weight)?;
        if let Some(r) = &self.retirement {
            non_negative(&format!("cars[{id}].retirement.at_lap"), r.at_lap)?;
            if r.neutralisation.is_some() && r.neutralisation_laps == 0 {
                return Err(crate::error::invalid(
                    &format!("cars[{id}].retirement.neutralisation_laps"),
                    "must be >= 1",
                ));
            }
        }
        for (c, m) in &self.tyres {
            finite(&format!("cars[{id}].tyres.{c}.k0_s"), m.k0_s)?;
            finite(
                &format!("cars[{id}].tyres.{c}.k1_s_per_lap"),
                m.k1_s_per_lap,
            )?;
            finite(
                &format!("cars[{id}].tyres.{c}.k2_s_per_lap2"),
                m.k2_s_per_lap2,
            )?;
        }
        Ok(())
    }
}

/// Longest race the engine accepts, in laps.
pub const MAX_LAPS: u32 = 10_000;

fn default_neutralised_laps() -> u32 {
    2
}

/// The race as it stands at the end of lap `current_lap`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RaceState {
    /// Laps completed by the leader (0 = on the grid).
    pub current_lap: u32,
    /// Race length.
    pub total_laps: u32,
    /// The cars.
    pub cars: Vec<CarState>,
    /// A safety car is out now.
    #[serde(default)]
    pub safety_car_active: bool,
    /// A virtual safety car is out now.
    #[serde(default)]
    pub vsc_active: bool,
    /// Laps the current SC/VSC still lasts (when one is active).
    #[serde(default = "default_neutralised_laps")]
    pub neutralised_laps_remaining: u32,
}

impl RaceState {
    /// Checks the state can be simulated.
    pub fn validate(&self) -> Result<()> {
        if self.cars.is_empty() {
            return Err(StrategyError::NoCars);
        }
        if self.current_lap >= self.total_laps {
            return Err(StrategyError::NoLapsLeft {
                current_lap: self.current_lap,
                total_laps: self.total_laps,
            });
        }
        if self.total_laps > MAX_LAPS {
            return Err(crate::error::invalid(
                "total_laps",
                format!("at most {MAX_LAPS} laps"),
            ));
        }
        if self.cars.len() > 250 {
            return Err(crate::error::invalid("cars", "at most 250 cars"));
        }
        let mut ids = std::collections::BTreeSet::new();
        for c in &self.cars {
            if !ids.insert(c.car_id.as_str()) {
                return Err(StrategyError::DuplicateCar(c.car_id.clone()));
            }
            c.validate()?;
        }
        Ok(())
    }

    /// Index of a car that can be optimised (exists, running).
    pub fn car_index(&self, car_id: &str) -> Result<usize> {
        let i = self
            .cars
            .iter()
            .position(|c| c.car_id == car_id)
            .ok_or_else(|| StrategyError::UnknownCar(car_id.to_string()))?;
        if self.cars[i].retired {
            return Err(StrategyError::CarRetired(car_id.to_string()));
        }
        Ok(i)
    }

    /// Laps still to run.
    pub fn laps_left(&self) -> u32 {
        self.total_laps.saturating_sub(self.current_lap)
    }
}
