//! Errors of the strategy engine.

use thiserror::Error;

/// Everything that can go wrong when a scenario, parameters or laps are given to the engine.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum StrategyError {
    /// The parameter or scenario TOML could not be parsed.
    #[error("could not parse TOML: {0}")]
    Toml(String),
    /// A parameter is NaN, infinite or out of its range.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParam {
        /// Dotted name of the parameter, e.g. `pit.lane_loss_green_s`.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The race has no laps left to simulate.
    #[error("no laps left: current lap {current_lap} of {total_laps}")]
    NoLapsLeft {
        /// Laps completed by the leader.
        current_lap: u32,
        /// Race length in laps.
        total_laps: u32,
    },
    /// The race state has no cars.
    #[error("the race has no cars")]
    NoCars,
    /// The car asked about is not in the race.
    #[error("car `{0}` is not in the race")]
    UnknownCar(String),
    /// The car asked about has retired.
    #[error("car `{0}` has retired")]
    CarRetired(String),
    /// Two cars share an id.
    #[error("car id `{0}` appears twice")]
    DuplicateCar(String),
    /// Iterations must be at least 1.
    #[error("iterations must be at least 1")]
    ZeroIterations,
    /// A pit plan is not feasible (stop in the past, too short a stint, final lap...).
    #[error("infeasible plan for car `{car_id}`: {reason}")]
    InfeasiblePlan {
        /// Car the plan belongs to.
        car_id: String,
        /// Why it is infeasible.
        reason: String,
    },
    /// Not enough lap records to fit or backtest.
    #[error("not enough laps: {0}")]
    NotEnoughLaps(String),
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, StrategyError>;

pub(crate) fn invalid(name: &str, reason: impl Into<String>) -> StrategyError {
    StrategyError::InvalidParam {
        name: name.to_string(),
        reason: reason.into(),
    }
}

/// Checks a float is finite (and not NaN).
pub(crate) fn finite(name: &str, v: f64) -> Result<()> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(invalid(name, format!("must be a finite number, got {v}")))
    }
}

/// Checks a float is finite and >= 0.
pub(crate) fn non_negative(name: &str, v: f64) -> Result<()> {
    finite(name, v)?;
    if v < 0.0 {
        return Err(invalid(name, format!("must be >= 0, got {v}")));
    }
    Ok(())
}

/// Checks a probability lies in [0, 1].
pub(crate) fn probability(name: &str, v: f64) -> Result<()> {
    finite(name, v)?;
    if !(0.0..=1.0).contains(&v) {
        return Err(invalid(
            name,
            format!("must be a probability in [0, 1], got {v}"),
        ));
    }
    Ok(())
}
