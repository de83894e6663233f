//! Race-model parameters ([`RaceParams`]), all read from a TOML data file.
//!
//! The default set is `data/strategy/default.toml` (embedded at build time); a file or a scenario
//! can override any subset (deep merge). The structure follows TUMFTM race-simulation as described
//! in `shared/race-model.md`: lap time = base pace, plus driver/car offset, tyre term, fuel mass
//! effect and normal noise; first-lap loss; pit stop = pit-lane loss + Fisk standstill; overtaking threshold;
//! safety car / VSC phases; retirements.

use serde::{Deserialize, Serialize};

use crate::error::{finite, invalid, non_negative, probability, Result, StrategyError};
use crate::state::Compound;

/// The embedded default parameter file (`data/strategy/default.toml`).
pub const DEFAULT_PARAMS_TOML: &str = include_str!("../../../data/strategy/default.toml");

/// All parameters of the race model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RaceParams {
    /// Track pace and start.
    pub track: TrackParams,
    /// Defaults for drivers that give none.
    pub driver: DriverParams,
    /// Tyre degradation per compound.
    pub tyres: TyreParams,
    /// Fuel mass effect.
    pub fuel: FuelParams,
    /// Pit stops and plan rules.
    pub pit: PitParams,
    /// Overtaking and DRS.
    pub overtaking: OvertakingParams,
    /// Safety car and virtual safety car phases.
    pub safety_car: SafetyCarParams,
    /// Retirements.
    pub retirements: RetirementParams,
    /// How the recommendation window is drawn.
    pub recommendation: RecommendationParams,
}

/// Track pace and the first lap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackParams {
    /// Green-flag race lap time of the reference car, reference tyres (k0 = 0), no fuel.
    pub base_lap_time_s: f64,
    /// Fixed loss of a standing start on lap 1.
    pub first_lap_start_loss_s: f64,
    /// Extra lap-1 loss per grid slot: (grid position - 1) x this.
    pub grid_position_loss_s: f64,
    /// Sigma of the random start performance (mean per car in `CarState::start_perf_mean_s`).
    pub start_perf_sigma_s: f64,
}

/// Defaults for cars that do not give their own values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriverParams {
    /// Lap-time noise sigma.
    pub noise_sigma_s: f64,
    /// Probability that a car fails at some (uniform) point of the race.
    pub failure_probability: f64,
    /// Factor on every fitted car's noise sigma (a fit from a few laps underestimates the
    /// lap-to-lap spread still to come; a calibration sets it).
    #[serde(default = "one")]
    pub noise_scale: f64,
    /// Smallest noise sigma a fitted car gets.
    #[serde(default = "default_noise_floor_s")]
    pub noise_floor_s: f64,
    /// Probability per car and green lap of an incident (a spin, an off, contact, a penalty):
    /// the lap loses an exponentially distributed time with mean `incident_loss_mean_s`.
    #[serde(default)]
    pub incident_probability_per_lap: f64,
    /// Mean time lost in an incident.
    #[serde(default)]
    pub incident_loss_mean_s: f64,
}

fn yes() -> bool {
    true
}

fn one() -> f64 {
    1.0
}

fn default_noise_floor_s() -> f64 {
    0.05
}

/// One compound's degradation: `k0_s + k1_s_per_lap * age + k2_s_per_lap2 * age^2`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TyreModel {
    /// Offset on fresh tyres (compound pace).
    pub k0_s: f64,
    /// Linear degradation per lap of age.
    pub k1_s_per_lap: f64,
    /// Quadratic term (0 = linear model).
    #[serde(default)]
    pub k2_s_per_lap2: f64,
}

impl TyreModel {
    /// Tyre time term at `age_laps`.
    #[inline]
    pub fn delta_s(&self, age_laps: f64) -> f64 {
        self.k0_s + age_laps * (self.k1_s_per_lap + age_laps * self.k2_s_per_lap2)
    }
}

/// Tyre parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TyreParams {
    /// Out-lap penalty of cold tyres after a stop.
    pub outlap_cold_penalty_s: f64,
    /// Soft compound.
    pub soft: TyreModel,
    /// Medium compound.
    pub medium: TyreModel,
    /// Hard compound.
    pub hard: TyreModel,
    /// Intermediate compound.
    pub intermediate: TyreModel,
    /// Full wet compound.
    pub wet: TyreModel,
}

impl TyreParams {
    /// The model of one compound.
    pub fn model(&self, c: Compound) -> &TyreModel {
        match c {
            Compound::Soft => &self.soft,
            Compound::Medium => &self.medium,
            Compound::Hard => &self.hard,
            Compound::Intermediate => &self.intermediate,
            Compound::Wet => &self.wet,
        }
    }
}

/// Fuel mass effect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FuelParams {
    /// Fuel burnt per green lap.
    pub consumption_kg_per_lap: f64,
    /// Lap time per kg of fuel on board.
    pub sensitivity_s_per_kg: f64,
    /// Fuel left at the flag on a green race.
    pub reserve_kg: f64,
}

/// Pit stops and pit-plan rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PitParams {
    /// In-lap + out-lap pit-lane loss under green.
    pub lane_loss_green_s: f64,
    /// Pit-lane loss when boxing on a VSC lap.
    pub lane_loss_vsc_s: f64,
    /// Pit-lane loss when boxing on a safety-car lap.
    pub lane_loss_sc_s: f64,
    /// Minimum standstill.
    pub standstill_min_s: f64,
    /// Fisk (log-logistic) shape `c` of the standstill draw (must be > 1 for a finite mean).
    pub standstill_fisk_shape: f64,
    /// Fisk scale of the standstill draw.
    pub standstill_fisk_scale_s: f64,
    /// Draws above this multiple of the Fisk mean are redrawn.
    pub redraw_above_mean_factor: f64,
    /// Minimum stint length (every stint, the last one included).
    pub min_stint_laps: u32,
    /// Compounds tried for a stop when a scenario names none.
    pub stop_compounds: Vec<Compound>,
    /// Whether cars that have not stopped yet are expected to stop (a race with a required stop
    /// or tyres that do not last): they get a default one-stop plan once any car has stopped.
    /// `false` for sprints without a required stop (GR Cup): a car stops only when its plan says
    /// so, and stops seen in the laps are incidents.
    #[serde(default = "yes")]
    pub stops_expected: bool,
    /// Part of the green pit-lane loss booked on the in-lap; the rest goes on the out-lap.
    /// `None` (default) = the whole loss on the in-lap. TUMFTM: 0.377 of 17.277 s.
    #[serde(default)]
    pub inlap_loss_green_s: Option<f64>,
    /// In-lap part of `lane_loss_vsc_s` (`None` = all of it on the in-lap).
    #[serde(default)]
    pub inlap_loss_vsc_s: Option<f64>,
    /// In-lap part of `lane_loss_sc_s` (`None` = all of it on the in-lap).
    #[serde(default)]
    pub inlap_loss_sc_s: Option<f64>,
    /// The standstill is booked on the out-lap (pits after the line, as in TUMFTM) instead of the
    /// in-lap. Default false.
    #[serde(default)]
    pub standstill_on_outlap: bool,
}

impl PitParams {
    /// In-lap part of the pit-lane loss for a stop on a lap of the given status (0 green, 1 SC,
    /// 2 VSC): the configured part, else the whole loss.
    pub(crate) fn inlap_loss_s(&self, status: u8) -> (f64, f64) {
        let (total, inlap) = match status {
            0 => (self.lane_loss_green_s, self.inlap_loss_green_s),
            1 => (self.lane_loss_sc_s, self.inlap_loss_sc_s),
            _ => (self.lane_loss_vsc_s, self.inlap_loss_vsc_s),
        };
        let inlap = inlap.unwrap_or(total);
        (inlap, total - inlap)
    }

    /// True when any part of a stop is booked on the out-lap.
    pub(crate) fn splits_loss(&self) -> bool {
        self.standstill_on_outlap
            || self.inlap_loss_green_s.is_some()
            || self.inlap_loss_vsc_s.is_some()
            || self.inlap_loss_sc_s.is_some()
    }

    /// Mean of the Fisk part of the standstill: `scale * (pi/c) / sin(pi/c)`.
    pub fn fisk_mean_s(&self) -> f64 {
        let b = std::f64::consts::PI / self.standstill_fisk_shape;
        self.standstill_fisk_scale_s * b / b.sin()
    }
}

/// Overtaking and DRS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OvertakingParams {
    /// Lap-time advantage needed to pass.
    pub threshold_s: f64,
    /// Time both cars lose in a pass.
    pub duel_penalty_s: f64,
    /// Gap at which a car that cannot pass is held behind.
    pub hold_gap_s: f64,
    /// DRS gain.
    pub drs_gain_s: f64,
    /// DRS window to the car ahead.
    pub drs_window_s: f64,
    /// First lap with DRS.
    pub drs_from_lap: u32,
    /// Threshold change per km/h of top-speed difference (follower minus car ahead):
    /// threshold = `threshold_s + top_speed_coeff_s_per_kmh x (v_follower - v_ahead)`, with each
    /// car's `top_speed_kmh` (TUMFTM `t_gap_overtake_vel` = -0.033: a follower faster on the
    /// straight needs less). Default 0 (one threshold for every pair).
    #[serde(default)]
    pub top_speed_coeff_s_per_kmh: f64,
    /// How a pass is decided (default `lap_time`; TUMFTM's rule is `race_time`).
    #[serde(default)]
    pub pass_rule: PassRule,
    /// `race_time` rule: extra time the passed car loses (TUMFTM `t_overtake_loser`). Default 0.
    #[serde(default)]
    pub loser_penalty_s: f64,
    /// DRS is off for this many green laps after a safety-car phase ends (TUMFTM
    /// `drs_sc_delay` = 2). Default 0.
    #[serde(default)]
    pub drs_sc_delay_laps: u32,
}

/// The overtaking rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PassRule {
    /// A follower that would end the lap ahead (or within `hold_gap_s`) passes when its lap time
    /// is at least the threshold faster than the car ahead's; both lose `duel_penalty_s`;
    /// otherwise it is held `hold_gap_s` behind.
    #[default]
    LapTime,
    /// TUMFTM: at the line, a follower within `hold_gap_s` costs both cars `duel_penalty_s` (once
    /// per car and lap); it passes when its race time leads the car ahead's by at least the
    /// pair's threshold (the passed car loses `loser_penalty_s`), otherwise it is held
    /// `hold_gap_s` behind. Sweeps front to back until no position changes.
    RaceTime,
}

/// Safety car (SC) and virtual safety car (VSC) phases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SafetyCarParams {
    /// P(0), P(1), ... phases per race.
    pub count_probabilities: Vec<f64>,
    /// Probability that a phase starts on lap 1.
    pub first_lap_probability: f64,
    /// Otherwise the start is uniform in one of this many equal blocks of the race.
    pub start_blocks: u32,
    /// Relative weights of the start blocks (one per block; empty = equal). TUMFTM: 0.136,
    /// 0.136, 0.08, 0.193, 0.091.
    #[serde(default)]
    pub start_block_weights: Vec<f64>,
    /// Every safety-car phase (not VSC) is caused by an accident: one running car, drawn with
    /// the cars' `accident_weight`, retires on the phase's first lap (TUMFTM). Default false.
    #[serde(default)]
    pub accident_retires_car: bool,
    /// Tyre ageing per VSC lap (`None` = `tyre_age_factor`; TUMFTM 0.5, SC 0.25).
    #[serde(default)]
    pub vsc_tyre_age_factor: Option<f64>,
    /// Fuel use per VSC lap (`None` = `fuel_use_factor`).
    #[serde(default)]
    pub vsc_fuel_use_factor: Option<f64>,
    /// P(length = 1), P(length = 2), ... laps.
    pub length_probabilities: Vec<f64>,
    /// Phases closer than this (end to next start, laps) are redrawn.
    pub min_separation_laps: f64,
    /// Share of phases that are VSC rather than SC.
    pub vsc_share: f64,
    /// SC lap time = factor x base lap time.
    pub sc_lap_time_factor: f64,
    /// VSC lap time = factor x base lap time.
    pub vsc_lap_time_factor: f64,
    /// Tyre ageing per SC/VSC lap as a fraction of a green lap.
    pub tyre_age_factor: f64,
    /// Fuel use per SC/VSC lap as a fraction of a green lap.
    pub fuel_use_factor: f64,
    /// Gap behind the car ahead once bunched behind the SC.
    pub sc_gap_s: f64,
    /// Fraction of the excess gap closed per SC lap.
    pub bunch_fraction_per_lap: f64,
}

impl SafetyCarParams {
    /// Mean phase length in laps from the length table.
    pub fn mean_length_laps(&self) -> f64 {
        let total: f64 = self.length_probabilities.iter().sum();
        self.length_probabilities
            .iter()
            .enumerate()
            .map(|(i, p)| (i + 1) as f64 * p)
            .sum::<f64>()
            / total
    }
    /// Probability of at least one phase in a race.
    pub fn p_at_least_one(&self) -> f64 {
        let total: f64 = self.count_probabilities.iter().sum();
        1.0 - self.count_probabilities.first().copied().unwrap_or(0.0) / total
    }
}

/// Retirements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetirementParams {
    /// Probability that a retirement starts a VSC.
    pub vsc_probability: f64,
    /// Shortest such VSC.
    pub vsc_min_laps: u32,
    /// Longest such VSC.
    pub vsc_max_laps: u32,
    /// P(length = 1), P(length = 2), ... laps of such a VSC (empty = uniform between
    /// `vsc_min_laps` and `vsc_max_laps`). TUMFTM: 0.479, 0.396, 0.021, 0.104.
    #[serde(default)]
    pub vsc_length_probabilities: Vec<f64>,
}

/// Recommendation window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecommendationParams {
    /// Tolerance in positions for the window (used when larger than the SE of the difference).
    pub window_tolerance_pos: f64,
}

impl Default for RaceParams {
    /// The embedded `data/strategy/default.toml`. It is parsed and validated by a unit test, so
    /// this cannot fail at run time.
    fn default() -> Self {
        match Self::from_toml_str(DEFAULT_PARAMS_TOML) {
            Ok(p) => p,
            Err(e) => unreachable!("embedded default.toml is invalid: {e}"),
        }
    }
}

impl RaceParams {
    /// Parses a complete parameter file and validates it.
    pub fn from_toml_str(s: &str) -> Result<Self> {
        let p: RaceParams = toml::from_str(s).map_err(|e| StrategyError::Toml(e.to_string()))?;
        p.validate()?;
        Ok(p)
    }

    /// Parses a (possibly partial) override file and deep-merges it over the embedded defaults.
    pub fn from_toml_overrides(s: &str) -> Result<Self> {
        let over: toml::Table =
            toml::from_str(s).map_err(|e| StrategyError::Toml(e.to_string()))?;
        Self::from_override_table(over)
    }

    /// Deep-merges a TOML table over the embedded defaults, then validates.
    pub fn from_override_table(over: toml::Table) -> Result<Self> {
        let mut base: toml::Table =
            toml::from_str(DEFAULT_PARAMS_TOML).map_err(|e| StrategyError::Toml(e.to_string()))?;
        merge(&mut base, over);
        let p: RaceParams = toml::Value::Table(base)
            .try_into()
            .map_err(|e: toml::de::Error| StrategyError::Toml(e.to_string()))?;
        p.validate()?;
        Ok(p)
    }

    /// Checks every number: finite, signs, probabilities, table sums.
    pub fn validate(&self) -> Result<()> {
        let t = &self.track;
        non_negative("track.base_lap_time_s", t.base_lap_time_s)?;
        if t.base_lap_time_s <= 0.0 {
            return Err(invalid("track.base_lap_time_s", "must be > 0"));
        }
        finite("track.first_lap_start_loss_s", t.first_lap_start_loss_s)?;
        non_negative("track.grid_position_loss_s", t.grid_position_loss_s)?;
        non_negative("track.start_perf_sigma_s", t.start_perf_sigma_s)?;
        non_negative("driver.noise_sigma_s", self.driver.noise_sigma_s)?;
        probability(
            "driver.failure_probability",
            self.driver.failure_probability,
        )?;
        non_negative("driver.noise_scale", self.driver.noise_scale)?;
        non_negative("driver.noise_floor_s", self.driver.noise_floor_s)?;
        probability(
            "driver.incident_probability_per_lap",
            self.driver.incident_probability_per_lap,
        )?;
        non_negative(
            "driver.incident_loss_mean_s",
            self.driver.incident_loss_mean_s,
        )?;
        non_negative(
            "tyres.outlap_cold_penalty_s",
            self.tyres.outlap_cold_penalty_s,
        )?;
        for c in Compound::ALL {
            let m = self.tyres.model(c);
            let n = c.name();
            finite(&format!("tyres.{n}.k0_s"), m.k0_s)?;
            finite(&format!("tyres.{n}.k1_s_per_lap"), m.k1_s_per_lap)?;
            finite(&format!("tyres.{n}.k2_s_per_lap2"), m.k2_s_per_lap2)?;
        }
        let f = &self.fuel;
        non_negative("fuel.consumption_kg_per_lap", f.consumption_kg_per_lap)?;
        finite("fuel.sensitivity_s_per_kg", f.sensitivity_s_per_kg)?;
        non_negative("fuel.reserve_kg", f.reserve_kg)?;
        let p = &self.pit;
        non_negative("pit.lane_loss_green_s", p.lane_loss_green_s)?;
        non_negative("pit.lane_loss_vsc_s", p.lane_loss_vsc_s)?;
        non_negative("pit.lane_loss_sc_s", p.lane_loss_sc_s)?;
        non_negative("pit.standstill_min_s", p.standstill_min_s)?;
        finite("pit.standstill_fisk_shape", p.standstill_fisk_shape)?;
        if p.standstill_fisk_shape <= 1.0 {
            return Err(invalid(
                "pit.standstill_fisk_shape",
                "must be > 1 (the Fisk mean is infinite otherwise)",
            ));
        }
        non_negative("pit.standstill_fisk_scale_s", p.standstill_fisk_scale_s)?;
        finite("pit.redraw_above_mean_factor", p.redraw_above_mean_factor)?;
        if p.redraw_above_mean_factor <= 1.0 {
            return Err(invalid("pit.redraw_above_mean_factor", "must be > 1"));
        }
        for (n, v) in [
            ("pit.inlap_loss_green_s", p.inlap_loss_green_s),
            ("pit.inlap_loss_vsc_s", p.inlap_loss_vsc_s),
            ("pit.inlap_loss_sc_s", p.inlap_loss_sc_s),
        ] {
            if let Some(v) = v {
                finite(n, v)?;
            }
        }
        if p.min_stint_laps == 0 {
            return Err(invalid("pit.min_stint_laps", "must be >= 1"));
        }
        let o = &self.overtaking;
        non_negative("overtaking.threshold_s", o.threshold_s)?;
        non_negative("overtaking.duel_penalty_s", o.duel_penalty_s)?;
        non_negative("overtaking.hold_gap_s", o.hold_gap_s)?;
        non_negative("overtaking.drs_gain_s", o.drs_gain_s)?;
        non_negative("overtaking.drs_window_s", o.drs_window_s)?;
        finite(
            "overtaking.top_speed_coeff_s_per_kmh",
            o.top_speed_coeff_s_per_kmh,
        )?;
        non_negative("overtaking.loser_penalty_s", o.loser_penalty_s)?;
        let s = &self.safety_car;
        table("safety_car.count_probabilities", &s.count_probabilities)?;
        table("safety_car.length_probabilities", &s.length_probabilities)?;
        if s.count_probabilities.len() > 16 {
            return Err(invalid(
                "safety_car.count_probabilities",
                "at most 16 entries",
            ));
        }
        probability("safety_car.first_lap_probability", s.first_lap_probability)?;
        if s.start_blocks == 0 {
            return Err(invalid("safety_car.start_blocks", "must be >= 1"));
        }
        if !s.start_block_weights.is_empty() {
            if s.start_block_weights.len() != s.start_blocks as usize {
                return Err(invalid(
                    "safety_car.start_block_weights",
                    "needs one weight per start block",
                ));
            }
            for (i, w) in s.start_block_weights.iter().enumerate() {
                non_negative(&format!("safety_car.start_block_weights[{i}]"), *w)?;
            }
            if s.start_block_weights.iter().sum::<f64>() <= 0.0 {
                return Err(invalid(
                    "safety_car.start_block_weights",
                    "must not all be 0",
                ));
            }
        }
        if let Some(f) = s.vsc_tyre_age_factor {
            non_negative("safety_car.vsc_tyre_age_factor", f)?;
        }
        if let Some(f) = s.vsc_fuel_use_factor {
            non_negative("safety_car.vsc_fuel_use_factor", f)?;
        }
        non_negative("safety_car.min_separation_laps", s.min_separation_laps)?;
        probability("safety_car.vsc_share", s.vsc_share)?;
        non_negative("safety_car.sc_lap_time_factor", s.sc_lap_time_factor)?;
        non_negative("safety_car.vsc_lap_time_factor", s.vsc_lap_time_factor)?;
        non_negative("safety_car.tyre_age_factor", s.tyre_age_factor)?;
        non_negative("safety_car.fuel_use_factor", s.fuel_use_factor)?;
        non_negative("safety_car.sc_gap_s", s.sc_gap_s)?;
        probability(
            "safety_car.bunch_fraction_per_lap",
            s.bunch_fraction_per_lap,
        )?;
        let r = &self.retirements;
        probability("retirements.vsc_probability", r.vsc_probability)?;
        if r.vsc_min_laps == 0 || r.vsc_max_laps < r.vsc_min_laps {
            return Err(invalid(
                "retirements.vsc_min_laps",
                "need 1 <= vsc_min_laps <= vsc_max_laps",
            ));
        }
        if !r.vsc_length_probabilities.is_empty() {
            table(
                "retirements.vsc_length_probabilities",
                &r.vsc_length_probabilities,
            )?;
        }
        non_negative(
            "recommendation.window_tolerance_pos",
            self.recommendation.window_tolerance_pos,
        )?;
        Ok(())
    }
}

fn table(name: &str, v: &[f64]) -> Result<()> {
    if v.is_empty() {
        return Err(invalid(name, "must not be empty"));
    }
    for (i, p) in v.iter().enumerate() {
        probability(&format!("{name}[{i}]"), *p)?;
    }
    let sum: f64 = v.iter().sum();
    if (sum - 1.0).abs() > 1e-6 {
        return Err(invalid(name, format!("must sum to 1, sums to {sum}")));
    }
    Ok(())
}

/// Deep merge: tables merge key by key, everything else is replaced.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_parses_and_validates() {
        let p = RaceParams::from_toml_str(DEFAULT_PARAMS_TOML).unwrap();
        assert_eq!(
            p.safety_car.count_probabilities,
            vec![0.455, 0.413, 0.099, 0.033]
        );
        assert!((p.overtaking.threshold_s - 1.83).abs() < 1e-12);
        assert_eq!(RaceParams::default(), p);
    }

    #[test]
    fn overrides_merge_and_validate() {
        let p = RaceParams::from_toml_overrides("[pit]\nlane_loss_green_s = 25.0\n").unwrap();
        assert_eq!(p.pit.lane_loss_green_s, 25.0);
        assert_eq!(
            p.pit.lane_loss_sc_s,
            RaceParams::default().pit.lane_loss_sc_s
        );
        let e = RaceParams::from_toml_overrides("[pit]\nlane_loss_green_s = -1.0\n").unwrap_err();
        assert!(
            matches!(e, StrategyError::InvalidParam { ref name, .. } if name == "pit.lane_loss_green_s")
        );
        let e = RaceParams::from_toml_overrides("[track]\nbase_lap_time_s = nan\n").unwrap_err();
        assert!(matches!(e, StrategyError::InvalidParam { .. }));
        let e = RaceParams::from_toml_overrides("[track]\nbogus = 1\n").unwrap_err();
        assert!(matches!(e, StrategyError::Toml(_)));
    }
}
