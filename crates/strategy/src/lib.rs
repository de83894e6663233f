//! PitWall strategy engine: a Monte Carlo race model and pit-plan optimiser.
//!
//! Structure after TUMFTM race-simulation (Heilmeier et al., 2020), summarised in
//! `shared/race-model.md`: lap time = base pace + driver/car offset + tyre degradation (per car and
//! compound) + fuel mass effect + per-driver normal noise; first-lap loss; pit stops with a
//! pit-lane loss (smaller under SC/VSC) and a Fisk standstill; overtaking only with a pace advantage
//! over a threshold; safety-car and VSC phases; retirements. Every parameter lives in
//! `data/strategy/default.toml` ([`RaceParams`]).
//!
//! Entry points:
//! - [`evaluate`] a [`Scenario`] (TOML) → [`Report`] with ranked [`StrategyOutcome`]s and a
//!   [`Recommendation`] ("Box between laps 12 and 15 for hard");
//! - [`recommend`] / [`simulate_strategies`] on a [`RaceState`] directly;
//! - [`fit`] lap records → [`FittedRace`]; [`backtest`] a race at lap N;
//! - [`simulate_race`] / [`simulate_laps`] for single races.
//!
//! Plans are compared with common random numbers (same stream per iteration for every plan); runs
//! are parallel (rayon) and bit-identical whatever the number of threads.
//!
//! Speed: the core is struct-of-arrays with one reused workspace per work item (no allocation per
//! lap), xoshiro256++ with a ziggurat normal, and a branch-free common path in the overtaking pass.
//! Plans of one car are run together per iteration: the race is run once with the car staying out,
//! saving the state at the start of every lap, and each plan restarts from the lap of its first
//! stop (exact, thanks to common random numbers; about 1.7x less work for a one-stop sweep). The
//! pit window is found adaptively ([`Adaptive`]): every plan is screened with 512 iterations,
//! plans clearly outside the window (`diff - 3 SE > tolerance`) are dropped, and the rest are
//! doubled until the SE of their difference to the best is <= 0.05 positions.
//!
//! Module map: `params` (data file), `state` (cars, race), `plan` (pit plans and rules), `sim`
//! (one race, struct of arrays), `rng` (xoshiro256++, ziggurat normal, Fisk), `montecarlo`
//! (CRN, parallel chunks, outcomes, adaptive refinement), `engine` (public API), `scenario`
//! (TOML format), `fit` (fitting and backtests).

mod calibrate;
mod engine;
mod error;
mod fit;
mod montecarlo;
mod params;
mod plan;
mod rng;
mod scenario;
mod sim;
mod state;

pub use calibrate::{calibrate, tune_by_backtest, Calibration, CalibrationRace, TuningPoint};
pub use engine::{
    recommend, simulate_field, simulate_laps, simulate_race, simulate_strategies, FieldOutcome,
    FieldPlan, LapRecord, RaceResult, Recommendation, Report, Simulator,
};
pub use error::{Result, StrategyError};
pub use fit::{
    backtest, backtest_with, fit, infer_yellow_laps, race_at_lap, race_at_lap_with,
    timing_classification, yellow_lap_numbers, Backtest, BacktestCar, BacktestOptions, Classified,
    FittedCar, FittedRace, FittedStint, TruthSource,
};
pub use montecarlo::{
    races_simulated, Adaptive, McOptions, StrategyOutcome, CHUNK_ITERATIONS, MAX_ITERATIONS,
    MAX_PLANS,
};
pub use params::{
    DriverParams, FuelParams, OvertakingParams, PassRule, PitParams, RaceParams,
    RecommendationParams, RetirementParams, SafetyCarParams, TrackParams, TyreModel, TyreParams,
    DEFAULT_PARAMS_TOML,
};
pub use plan::{default_plan, PitStop, PlanSpace, Strategy};
pub use scenario::{evaluate, Scenario, ScenarioSpec, EXAMPLE_SCENARIO_TOML};
pub use sim::RaceTrace;
pub use state::{
    CarState, Compound, Neutralisation, RaceState, ScheduledRetirement, StandstillModel, MAX_LAPS,
};
