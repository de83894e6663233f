//! The TOML scenario format and [`evaluate`].
//!
//! ```toml
//! car_id = "7"            # car to optimise
//! iterations = 4000       # per plan (fixed mode); ignored when [adaptive] is given
//! seed = 42
//!
//! [params]                # optional: any subset of data/strategy/default.toml (deep merge)
//! pit.lane_loss_green_s = 21.0
//!
//! [plans]                 # optional plan space (defaults: stay out + every one-stop)
//! two_stop = false
//! compounds = ["hard"]    # empty = pit.stop_compounds
//! extra = [[{ lap = 8, compound = "hard" }, { lap = 20, compound = "soft" }]]  # exact plans too
//!
//! [adaptive]              # optional: screen + refine instead of fixed iterations
//! screen_iterations = 512
//! target_se_diff = 0.05
//!
//! [race]
//! current_lap = 10
//! total_laps = 30
//! safety_car_active = false
//!
//! [[race.cars]]
//! car_id = "7"
//! position = 1
//! race_time_s = 0.0       # or gap_s: only differences matter
//! tyre_age_laps = 10
//! compound = "medium"
//! pace_offset_s = -0.2    # optional pace parameters, see CarState
//! plan = [{ lap = 18, compound = "hard" }]   # optional: any number of stops; the asked car's
//!                                            # is used by --all-cars (simulate_field)
//! top_speed_kmh = 318.0   # optional TUMFTM features: see data/strategy/default.toml
//! retirement = { at_lap = 7.5, neutralisation = "sc", neutralisation_laps = 3 }
//! ```
//! A full example is `data/strategy/example-scenario.toml`.

use serde::{Deserialize, Serialize};

use crate::engine::{recommend, Report};
use crate::error::{Result, StrategyError};
use crate::montecarlo::{Adaptive, McOptions};
use crate::params::RaceParams;
use crate::plan::PlanSpace;
use crate::state::RaceState;

/// The example scenario shipped in `data/strategy/example-scenario.toml`.
pub const EXAMPLE_SCENARIO_TOML: &str =
    include_str!("../../../data/strategy/example-scenario.toml");

/// A question for the engine: a race state, the car to optimise and how hard to look.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    /// Model parameters (defaults merged with the scenario's `[params]`).
    pub params: RaceParams,
    /// The race as it stands.
    pub race: RaceState,
    /// Car to optimise.
    pub car_id: String,
    /// Iterations per plan.
    pub iterations: u32,
    /// Seed.
    pub seed: u64,
    /// Plans to try.
    pub plans: PlanSpace,
    /// Adaptive refinement (`None` = fixed iterations).
    pub adaptive: Option<Adaptive>,
}

/// The scenario as written (TOML, or JSON for the HTTP API): `params` is a partial override of
/// the defaults. Turn it into a [`Scenario`] with [`Scenario::from_spec`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSpec {
    /// Any subset of the parameter file, deep-merged over the defaults.
    #[serde(default)]
    pub params: Option<toml::Table>,
    /// The race as it stands.
    pub race: RaceState,
    /// Car to optimise.
    pub car_id: String,
    /// Iterations per plan (default 2000; ignored with `adaptive`).
    #[serde(default = "default_iterations")]
    pub iterations: u32,
    /// Seed (default 0).
    #[serde(default)]
    pub seed: u64,
    /// Plans to try (default: stay out + every one-stop).
    #[serde(default)]
    pub plans: PlanSpace,
    /// Adaptive refinement.
    #[serde(default)]
    pub adaptive: Option<Adaptive>,
}

fn default_iterations() -> u32 {
    2000
}

impl Scenario {
    /// Parses and validates a scenario TOML document.
    pub fn from_toml_str(s: &str) -> Result<Scenario> {
        let f: ScenarioSpec = toml::from_str(s).map_err(|e| StrategyError::Toml(e.to_string()))?;
        Self::from_spec(f)
    }

    /// Merges the parameter overrides over the defaults and validates everything.
    pub fn from_spec(f: ScenarioSpec) -> Result<Scenario> {
        let params = match f.params {
            Some(t) => RaceParams::from_override_table(t)?,
            None => RaceParams::default(),
        };
        let sc = Scenario {
            params,
            race: f.race,
            car_id: f.car_id,
            iterations: f.iterations,
            seed: f.seed,
            plans: f.plans,
            adaptive: f.adaptive,
        };
        sc.validate()?;
        Ok(sc)
    }

    /// Checks parameters, state, the car and the iteration count.
    pub fn validate(&self) -> Result<()> {
        self.params.validate()?;
        self.race.validate()?;
        self.race.car_index(&self.car_id)?;
        if self.iterations == 0 {
            return Err(StrategyError::ZeroIterations);
        }
        Ok(())
    }
}

/// Runs a scenario: every plan of its plan space for its car, ranked, with the recommendation.
pub fn evaluate(scenario: &Scenario) -> Result<Report> {
    scenario.validate()?;
    let opts = McOptions {
        iterations: scenario.iterations,
        seed: scenario.seed,
    };
    recommend(
        &scenario.params,
        &scenario.race,
        &scenario.car_id,
        &scenario.plans,
        &opts,
        scenario.adaptive.as_ref(),
    )
}
