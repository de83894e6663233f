//! Pit plans ([`Strategy`]) and the plan space tried for the car asked about.
//!
//! Rules (documented here and enforced by [`Strategy::check`]):
//! - a stop on lap `n` means the car boxes at the end of lap `n`: lap `n` carries the pit-lane loss
//!   and the standstill, lap `n + 1` is the out-lap on cold tyres; the new tyres have age 0 at the
//!   start of lap `n + 1`;
//! - stops lie strictly after the current lap and are strictly increasing;
//! - every stint that starts with a stop lasts at least `pit.min_stint_laps` laps, so the last stop
//!   is at most `total_laps - min_stint_laps` (never on the final lap); the stint running now has no
//!   minimum (its tyres are already on);
//! - staying out is the empty plan.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Result, StrategyError};
use crate::state::Compound;

/// One planned stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PitStop {
    /// The car boxes at the end of this lap.
    pub lap: u32,
    /// Compound fitted.
    pub compound: Compound,
}

/// A pit plan for the rest of the race: a list of stops (empty = stay out).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Strategy {
    /// Stops in lap order.
    pub stops: Vec<PitStop>,
}

impl Strategy {
    /// Stay out: no further stop.
    pub fn stay_out() -> Self {
        Strategy { stops: Vec::new() }
    }

    /// One stop at the end of `lap` onto `compound`.
    pub fn one_stop(lap: u32, compound: Compound) -> Self {
        Strategy {
            stops: vec![PitStop { lap, compound }],
        }
    }

    /// Two stops.
    pub fn two_stop(l1: u32, c1: Compound, l2: u32, c2: Compound) -> Self {
        Strategy {
            stops: vec![
                PitStop {
                    lap: l1,
                    compound: c1,
                },
                PitStop {
                    lap: l2,
                    compound: c2,
                },
            ],
        }
    }

    /// Checks the plan against the rules in the module doc.
    pub fn check(
        &self,
        car_id: &str,
        current_lap: u32,
        total_laps: u32,
        min_stint_laps: u32,
    ) -> Result<()> {
        let err = |reason: String| StrategyError::InfeasiblePlan {
            car_id: car_id.to_string(),
            reason,
        };
        let mut prev: Option<u32> = None;
        for s in &self.stops {
            if s.lap <= current_lap {
                return Err(err(format!(
                    "stop on lap {} is not after the current lap {current_lap}",
                    s.lap
                )));
            }
            if let Some(p) = prev {
                if s.lap < p.saturating_add(min_stint_laps) {
                    return Err(err(format!(
                        "stint from lap {p} to {} is shorter than {min_stint_laps} laps",
                        s.lap
                    )));
                }
            }
            prev = Some(s.lap);
        }
        if let Some(p) = prev {
            if p.saturating_add(min_stint_laps) > total_laps {
                return Err(err(format!(
                    "last stint from lap {p} is shorter than {min_stint_laps} laps (race of {total_laps})"
                )));
            }
        }
        Ok(())
    }

    /// Lap of the first stop, if any.
    pub fn first_stop_lap(&self) -> Option<u32> {
        self.stops.first().map(|s| s.lap)
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.stops.is_empty() {
            return f.write_str("stay out");
        }
        f.write_str("box ")?;
        for (i, s) in self.stops.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "L{} {}", s.lap, s.compound)?;
        }
        Ok(())
    }
}

/// Which plans are tried for the car asked about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlanSpace {
    /// Include staying out.
    pub stay_out: bool,
    /// Include every feasible one-stop plan.
    pub one_stop: bool,
    /// Include two-stop plans.
    pub two_stop: bool,
    /// Lap step of the two-stop grid (1 = every pair of laps).
    pub two_stop_lap_step: u32,
    /// Compounds tried at each stop; empty = `pit.stop_compounds` of the parameters.
    pub compounds: Vec<Compound>,
    /// Exact plans tried as well (any number of stops, each with its lap and compound), e.g.
    /// `extra = [[{ lap = 1, compound = "medium" }, { lap = 20, compound = "medium" }]]`.
    pub extra: Vec<Strategy>,
}

impl Default for PlanSpace {
    fn default() -> Self {
        PlanSpace {
            stay_out: true,
            one_stop: true,
            two_stop: false,
            two_stop_lap_step: 2,
            compounds: Vec::new(),
            extra: Vec::new(),
        }
    }
}

impl PlanSpace {
    /// Every feasible plan from `current_lap` on, stay-out first, then one-stops by lap, then
    /// two-stops.
    pub fn enumerate(
        &self,
        current_lap: u32,
        total_laps: u32,
        min_stint_laps: u32,
        default_compounds: &[Compound],
    ) -> Vec<Strategy> {
        let compounds: &[Compound] = if self.compounds.is_empty() {
            default_compounds
        } else {
            &self.compounds
        };
        let mut out = Vec::new();
        if self.stay_out {
            out.push(Strategy::stay_out());
        }
        let first = current_lap + 1;
        let last = total_laps.saturating_sub(min_stint_laps);
        if self.one_stop {
            for lap in first..=last {
                for &c in compounds {
                    out.push(Strategy::one_stop(lap, c));
                }
            }
        }
        if self.two_stop {
            let step = self.two_stop_lap_step.max(1) as usize;
            for l1 in (first..=last).step_by(step) {
                let l2_first = l1.saturating_add(min_stint_laps);
                if l2_first > last {
                    break;
                }
                for l2 in (l2_first..=last).step_by(step) {
                    // Past the engine's cap the caller gets an error anyway: stop growing.
                    if out.len() > crate::montecarlo::MAX_PLANS {
                        return out;
                    }
                    for &c1 in compounds {
                        for &c2 in compounds {
                            out.push(Strategy::two_stop(l1, c1, l2, c2));
                        }
                    }
                }
            }
        }
        for p in &self.extra {
            if !out.contains(p) {
                out.push(p.clone());
            }
        }
        out
    }
}

/// The default plan of a car that gives none: one stop halfway through the rest of its tyres' life
/// to the flag (midpoint between the lap its current stint started and the last lap), clamped to
/// the feasible laps; stay out if the car has already stopped or no lap is feasible.
pub fn default_plan(
    current_lap: u32,
    total_laps: u32,
    tyre_age_laps: f64,
    stops_done: u32,
    min_stint_laps: u32,
    compound: Compound,
) -> Strategy {
    if stops_done > 0 {
        return Strategy::stay_out();
    }
    let first = current_lap + 1;
    let last = total_laps.saturating_sub(min_stint_laps);
    if first > last {
        return Strategy::stay_out();
    }
    let stint_start = current_lap as f64 - tyre_age_laps.max(0.0);
    let mid = ((stint_start + total_laps as f64) / 2.0).round();
    let lap = if mid.is_finite() {
        (mid.max(first as f64) as u32).clamp(first, last)
    } else {
        first
    };
    Strategy::one_stop(lap, compound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enumeration_respects_rules() {
        let space = PlanSpace::default();
        let plans = space.enumerate(10, 30, 3, &[Compound::Hard]);
        assert_eq!(plans[0], Strategy::stay_out());
        assert_eq!(plans.len(), 1 + (27 - 11 + 1));
        for p in &plans {
            p.check("x", 10, 30, 3).unwrap();
        }
        let two = PlanSpace {
            two_stop: true,
            two_stop_lap_step: 1,
            ..PlanSpace::default()
        }
        .enumerate(0, 12, 3, &[Compound::Medium]);
        for p in &two {
            p.check("x", 0, 12, 3).unwrap();
        }
        assert!(two.iter().any(|p| p.stops.len() == 2));
    }

    #[test]
    fn infeasible_plans_are_rejected() {
        assert!(Strategy::one_stop(10, Compound::Hard)
            .check("a", 10, 30, 3)
            .is_err());
        assert!(Strategy::one_stop(29, Compound::Hard)
            .check("a", 10, 30, 3)
            .is_err());
        assert!(Strategy::two_stop(12, Compound::Hard, 13, Compound::Hard)
            .check("a", 10, 30, 3)
            .is_err());
        assert!(Strategy::one_stop(27, Compound::Hard)
            .check("a", 10, 30, 3)
            .is_ok());
    }

    #[test]
    fn default_plan_is_feasible() {
        let p = default_plan(0, 30, 0.0, 0, 3, Compound::Hard);
        assert_eq!(p, Strategy::one_stop(15, Compound::Hard));
        assert_eq!(
            default_plan(5, 30, 1.0, 1, 3, Compound::Hard),
            Strategy::stay_out()
        );
        assert_eq!(
            default_plan(28, 30, 1.0, 0, 3, Compound::Hard),
            Strategy::stay_out()
        );
        let p = default_plan(20, 30, 20.0, 0, 3, Compound::Hard);
        p.check("a", 20, 30, 3).unwrap();
    }
}
