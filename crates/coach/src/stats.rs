//! Running mean and spread, exact (Welford) for the first observations, then exponentially
//! weighted so a long session follows slow drifts (tyre wear, fuel) without forgetting fast.

use serde::{Deserialize, Serialize};

/// Mean and spread of one metric: what a profile shows and persists.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct Stat {
    /// Observations taken in (all of them, even past the weighting window).
    pub n: u32,
    /// Mean (0 when `n` is 0).
    pub mean: f64,
    /// Sample standard deviation (0 when `n` < 2).
    pub std: f64,
}

impl Stat {
    /// Coefficient of variation `std / |mean|`, `None` with fewer than 2 observations or a zero
    /// mean.
    pub fn cv(&self) -> Option<f64> {
        (self.n >= 2 && self.mean.abs() > 1e-12).then(|| self.std / self.mean.abs())
    }
}

/// Online accumulator behind a [`Stat`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Running {
    n: u32,
    /// Effective sample size: `min(n, window)`.
    n_eff: u32,
    mean: f64,
    /// Sum of squared deviations over the effective sample (Welford's M2).
    m2: f64,
}

impl Running {
    /// Adds `x` (ignored when not finite). Past `window` observations each new one weighs
    /// `1 / window` (exponential forgetting).
    pub fn push(&mut self, x: f64, window: u32) {
        if !x.is_finite() {
            return;
        }
        let window = window.max(2);
        self.n = self.n.saturating_add(1);
        let delta = x - self.mean;
        if self.n_eff < window {
            self.n_eff += 1;
            self.mean += delta / f64::from(self.n_eff);
            self.m2 += delta * (x - self.mean);
        } else {
            let w = 1.0 / f64::from(self.n_eff);
            self.mean += w * delta;
            let var = (1.0 - w) * (self.var() + w * delta * delta);
            self.m2 = var * f64::from(self.n_eff - 1);
        }
        if !self.mean.is_finite() || !self.m2.is_finite() {
            *self = Running::default();
        }
        self.m2 = self.m2.max(0.0);
    }

    /// Observation count.
    pub fn n(&self) -> u32 {
        self.n
    }

    /// Mean.
    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// Sample variance (0 below 2 observations).
    pub fn var(&self) -> f64 {
        if self.n_eff < 2 {
            return 0.0;
        }
        (self.m2 / f64::from(self.n_eff - 1)).max(0.0)
    }

    /// The persisted view.
    pub fn stat(&self) -> Stat {
        Stat {
            n: self.n,
            mean: self.mean,
            std: self.var().sqrt(),
        }
    }

    /// Rebuilds from a persisted [`Stat`] (non-finite values give an empty accumulator).
    pub fn from_stat(s: &Stat, window: u32) -> Running {
        if !s.mean.is_finite() || !s.std.is_finite() || s.n == 0 {
            return Running::default();
        }
        let n_eff = s.n.min(window.max(2));
        Running {
            n: s.n,
            n_eff,
            mean: s.mean,
            m2: s.std * s.std * f64::from(n_eff.saturating_sub(1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welford_matches_direct_computation() {
        let xs = [1.0, 2.0, 4.0, 7.0, 11.0];
        let mut r = Running::default();
        for x in xs {
            r.push(x, 50);
        }
        let s = r.stat();
        assert_eq!(s.n, 5);
        assert!((s.mean - 5.0).abs() < 1e-12);
        let var: f64 = xs.iter().map(|x| (x - 5.0) * (x - 5.0)).sum::<f64>() / 4.0;
        assert!((s.std - var.sqrt()).abs() < 1e-12);
        let back = Running::from_stat(&s, 50).stat();
        assert!((back.std - s.std).abs() < 1e-12);
    }

    #[test]
    fn windowed_follows_a_step_slowly_and_ignores_nan() {
        let mut r = Running::default();
        for _ in 0..20 {
            r.push(10.0, 10);
        }
        r.push(f64::NAN, 10);
        assert_eq!(r.n(), 20);
        r.push(20.0, 10);
        let s = r.stat();
        assert!((s.mean - 11.0).abs() < 1e-9, "{s:?}");
        assert!(s.std > 0.0 && s.std.is_finite());
    }

    #[test]
    fn cv_none_when_degenerate() {
        assert_eq!(Stat::default().cv(), None);
        let s = Stat {
            n: 3,
            mean: 100.0,
            std: 1.0,
        };
        assert_eq!(s.cv(), Some(0.01));
    }
}
