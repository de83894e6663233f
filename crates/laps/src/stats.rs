//! Running statistics (Welford) and the 600 ms window summaries built from them.

use serde::{Deserialize, Serialize};

/// Running mean / variance / min / max of a stream of values, O(1) per value (Welford's method).
///
/// Non-finite values are ignored, so the statistics never become NaN.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RunningStats {
    n: u64,
    mean: f64,
    m2: f64,
    min: f64,
    max: f64,
}

impl RunningStats {
    /// An empty accumulator.
    pub const fn new() -> Self {
        RunningStats {
            n: 0,
            mean: 0.0,
            m2: 0.0,
            min: 0.0,
            max: 0.0,
        }
    }

    /// Adds one value (ignored when not finite).
    #[inline]
    pub fn push(&mut self, x: f64) {
        if !x.is_finite() {
            return;
        }
        if self.n == 0 {
            self.n = 1;
            self.mean = x;
            self.m2 = 0.0;
            self.min = x;
            self.max = x;
            return;
        }
        self.n += 1;
        let delta = x - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (x - self.mean);
        if x < self.min {
            self.min = x;
        }
        if x > self.max {
            self.max = x;
        }
    }

    /// Number of values seen.
    pub fn count(&self) -> u64 {
        self.n
    }

    /// Mean, `None` when empty.
    pub fn mean(&self) -> Option<f64> {
        (self.n > 0).then_some(self.mean)
    }

    /// Population variance (divides by n), `None` when empty.
    pub fn variance_population(&self) -> Option<f64> {
        (self.n > 0).then(|| (self.m2 / self.n as f64).max(0.0))
    }

    /// Sample variance (divides by n - 1), `None` with fewer than two values.
    pub fn variance_sample(&self) -> Option<f64> {
        (self.n > 1).then(|| (self.m2 / (self.n - 1) as f64).max(0.0))
    }

    /// Population standard deviation, `None` when empty.
    pub fn std_population(&self) -> Option<f64> {
        self.variance_population().map(f64::sqrt)
    }

    /// Smallest value, `None` when empty.
    pub fn min(&self) -> Option<f64> {
        (self.n > 0).then_some(self.min)
    }

    /// Largest value, `None` when empty.
    pub fn max(&self) -> Option<f64> {
        (self.n > 0).then_some(self.max)
    }

    /// A serialisable snapshot (all zeros when empty).
    pub fn snapshot(&self) -> ChannelStats {
        ChannelStats {
            n: self.n,
            mean: self.mean().unwrap_or(0.0),
            std: self.std_population().unwrap_or(0.0),
            min: self.min().unwrap_or(0.0),
            max: self.max().unwrap_or(0.0),
        }
    }
}

/// Summary statistics of one channel over a window. When `n == 0` every value is 0 (never NaN).
/// `std` is the population standard deviation.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ChannelStats {
    /// Number of samples carrying the channel.
    pub n: u64,
    pub mean: f64,
    pub std: f64,
    pub min: f64,
    pub max: f64,
}

/// One closed rolling window (600 ms of sample time by default) of a car.
///
/// Windows are aligned on a grid starting at the car's first sample; a window closes at the
/// first sample whose time is at or past its end. Tagged with the lap and sector in force when
/// the window opened.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct WindowStats {
    pub t_start_s: f64,
    pub t_end_s: f64,
    pub lap: u32,
    /// Sector index 0..=2 when the window opened.
    pub sector: u8,
    pub speed_kmh: ChannelStats,
    pub accx_g: ChannelStats,
    pub accy_g: ChannelStats,
    /// Brake: `brake_front_bar` when the source has line pressures, else `brake_pct`.
    pub brake: ChannelStats,
    /// Mean combined acceleration sqrt(accx² + accy²), g, over samples carrying both (0 if none):
    /// the live "stress" of the window.
    pub stress_g: f64,
}

/// Accumulates one window.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct WindowAcc {
    pub t_start_s: Option<f64>,
    pub lap: u32,
    pub sector: u8,
    pub speed: RunningStats,
    pub accx: RunningStats,
    pub accy: RunningStats,
    pub brake: RunningStats,
    pub stress: RunningStats,
}

impl WindowAcc {
    pub fn reset(&mut self, t_start_s: f64, lap: u32, sector: u8) {
        *self = WindowAcc {
            t_start_s: Some(t_start_s),
            lap,
            sector,
            ..WindowAcc::default()
        };
    }

    pub fn close(&self, window_s: f64) -> Option<WindowStats> {
        let t0 = self.t_start_s?;
        Some(WindowStats {
            t_start_s: t0,
            t_end_s: t0 + window_s,
            lap: self.lap,
            sector: self.sector,
            speed_kmh: self.speed.snapshot(),
            accx_g: self.accx.snapshot(),
            accy_g: self.accy.snapshot(),
            brake: self.brake.snapshot(),
            stress_g: self.stress.mean().unwrap_or(0.0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welford_matches_two_pass() {
        let xs: Vec<f64> = (0..1000)
            .map(|i| 100.0 + 50.0 * ((i as f64) * 0.37).sin() + (i % 7) as f64)
            .collect();
        let mut rs = RunningStats::new();
        for &x in &xs {
            rs.push(x);
        }
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        let var_s = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        assert!((rs.mean().unwrap() - mean).abs() < 1e-9);
        assert!((rs.variance_population().unwrap() - var).abs() < 1e-8);
        assert!((rs.variance_sample().unwrap() - var_s).abs() < 1e-8);
        let mn = xs.iter().cloned().fold(f64::INFINITY, f64::min);
        let mx = xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        assert_eq!(rs.min().unwrap(), mn);
        assert_eq!(rs.max().unwrap(), mx);
        assert_eq!(rs.count(), 1000);
    }

    #[test]
    fn welford_large_offset_is_stable() {
        let mut rs = RunningStats::new();
        for i in 0..10_000 {
            rs.push(1e9 + (i % 2) as f64);
        }
        assert!((rs.variance_population().unwrap() - 0.25).abs() < 1e-6);
    }

    #[test]
    fn empty_and_non_finite() {
        let mut rs = RunningStats::new();
        assert_eq!(rs.mean(), None);
        rs.push(f64::NAN);
        rs.push(f64::INFINITY);
        assert_eq!(rs.count(), 0);
        let s = rs.snapshot();
        assert_eq!(s, ChannelStats::default());
        rs.push(3.0);
        assert_eq!(rs.variance_sample(), None);
        assert_eq!(rs.std_population(), Some(0.0));
    }
}
