//! Corner and sector detection: where the corners of a track are, from one lap's speed and
//! lateral-g profile (or given by a track file).

use serde::{Deserialize, Serialize};
use telemetry::Sample;

use crate::CoachError;

/// Which way a corner turns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Left,
    Right,
    /// No lateral-g or steering channel to tell.
    Unknown,
}

/// One corner and the stretch of track analysed with it.
///
/// The analysis windows `[entry_m, end_m)` of consecutive corners tile the lap from the first
/// corner's entry to the line: each holds the braking zone, the corner and the straight after
/// it, so a corner is evaluated as soon as the car reaches the next corner's entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CornerDef {
    /// Corner number, 1-based in lap order.
    pub number: u32,
    /// Display name ("Turn 3" when `None`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Start of the analysis window (before the reference brake point), m.
    pub entry_m: f64,
    /// Speed minimum of the reference lap, m.
    pub apex_m: f64,
    /// End of the turn (lateral g back under 40 % of its peak), where exit speed is taken, m.
    pub exit_m: f64,
    /// End of the analysis window (next corner's entry, or the lap length), m.
    pub end_m: f64,
    /// Turn direction.
    pub direction: Direction,
    /// Reference minimum speed, km/h.
    pub ref_min_speed_kmh: f64,
}

impl CornerDef {
    /// Name for messages: `name` or "Turn N".
    pub fn label(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("Turn {}", self.number))
    }
}

/// Corners and sectors of one track.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CornerMap {
    /// Track name.
    pub track: String,
    /// Lap length, m.
    pub length_m: f64,
    /// Corners in lap order.
    pub corners: Vec<CornerDef>,
    /// Interior sector boundaries, m, increasing (two for three sectors).
    pub sector_bounds_m: Vec<f64>,
}

/// Tuning of corner detection.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DetectOptions {
    /// Speed drop from the preceding maximum that makes a speed minimum a corner, km/h.
    pub min_drop_kmh: f64,
    /// Speed rise after a minimum that confirms it, km/h.
    pub min_rise_kmh: f64,
    /// Peak |lateral g| near the minimum that confirms a corner (when the channel exists).
    pub min_lat_g: f64,
    /// Margin before the reference brake point where the analysis window starts, m.
    pub entry_margin_m: f64,
}

impl Default for DetectOptions {
    fn default() -> Self {
        DetectOptions {
            min_drop_kmh: 10.0,
            min_rise_kmh: 3.0,
            min_lat_g: 0.3,
            entry_margin_m: 50.0,
        }
    }
}

/// Distance-grid step of the detector, m.
const GRID_M: f64 = 2.0;

/// One lap point used by the detector.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MapPoint {
    pub d_m: f64,
    pub speed_kmh: f64,
    pub accy_g: Option<f64>,
    pub steer_deg: Option<f64>,
}

fn interp_grid(pts: &[(f64, f64)], n: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(n);
    let mut j = 0;
    for i in 0..n {
        let d = i as f64 * GRID_M;
        while j + 1 < pts.len() && pts[j + 1].0 <= d {
            j += 1;
        }
        let v = match (pts.get(j), pts.get(j + 1)) {
            (Some(a), Some(b)) if d >= a.0 && b.0 > a.0 => {
                a.1 + (b.1 - a.1) * (d - a.0) / (b.0 - a.0)
            }
            (Some(a), _) => a.1,
            _ => 0.0,
        };
        out.push(v);
    }
    out
}

fn smooth(x: &[f64], half: usize) -> Vec<f64> {
    let n = x.len();
    let mut pre = vec![0.0; n + 1];
    for i in 0..n {
        pre[i + 1] = pre[i] + x[i];
    }
    (0..n)
        .map(|i| {
            let a = i.saturating_sub(half);
            let b = (i + half + 1).min(n);
            (pre[b] - pre[a]) / (b - a).max(1) as f64
        })
        .collect()
}

impl CornerMap {
    /// Detects corners from one (preferably clean, flying) lap of samples of `track`.
    ///
    /// Corners are speed minima at least `min_drop_kmh` below the preceding maximum, confirmed
    /// by a rise after them and by sustained lateral g; sectors split the lap in three at the
    /// corner windows nearest a third and two thirds of the lap.
    pub fn detect(
        track: &str,
        lap: &[Sample],
        opts: &DetectOptions,
    ) -> Result<CornerMap, CoachError> {
        let pts: Vec<MapPoint> = lap
            .iter()
            .filter_map(|s| {
                let d = s.lap_dist_m.filter(|d| d.is_finite() && *d >= 0.0)?;
                let v = s.speed_kmh.filter(|v| v.is_finite())?;
                Some(MapPoint {
                    d_m: d,
                    speed_kmh: v,
                    accy_g: s.accy_g.filter(|a| a.is_finite()),
                    steer_deg: s.steering_deg.filter(|a| a.is_finite()),
                })
            })
            .collect();
        Self::detect_points(track, &pts, None, opts)
    }

    /// Detection on extracted points; `length_m` when known (else the last distance).
    pub(crate) fn detect_points(
        track: &str,
        pts: &[MapPoint],
        length_m: Option<f64>,
        opts: &DetectOptions,
    ) -> Result<CornerMap, CoachError> {
        let mut pts: Vec<MapPoint> = pts.to_vec();
        pts.sort_by(|a, b| a.d_m.total_cmp(&b.d_m));
        if pts.len() < 20 {
            return Err(CoachError::NotEnoughData(format!(
                "{} usable samples in the reference lap (need 20)",
                pts.len()
            )));
        }
        let last = pts.last().map(|p| p.d_m).unwrap_or(0.0);
        let length_m = length_m
            .filter(|l| l.is_finite() && *l > 0.0)
            .unwrap_or(last);
        if length_m < 200.0 {
            return Err(CoachError::NotEnoughData(format!(
                "reference lap covers {length_m:.0} m (need 200 m)"
            )));
        }
        let n = ((length_m / GRID_M).floor() as usize).max(3);
        let v_raw = interp_grid(
            &pts.iter().map(|p| (p.d_m, p.speed_kmh)).collect::<Vec<_>>(),
            n,
        );
        let v = smooth(&v_raw, 3);
        let lat_pts: Vec<(f64, f64)> = pts
            .iter()
            .filter_map(|p| p.accy_g.map(|a| (p.d_m, a)))
            .collect();
        let has_lat = lat_pts.len() * 2 >= pts.len();
        let ay = if has_lat {
            Some(smooth(&interp_grid(&lat_pts, n), 5))
        } else {
            None
        };
        let steer_pts: Vec<(f64, f64)> = pts
            .iter()
            .filter_map(|p| p.steer_deg.map(|a| (p.d_m, a)))
            .collect();
        let steer = (steer_pts.len() * 2 >= pts.len()).then(|| interp_grid(&steer_pts, n));

        // Speed minima with a real drop before and a rise after.
        let cells = |m: f64| ((m / GRID_M).round() as usize).max(1);
        let mut apexes: Vec<usize> = Vec::new();
        let mut run_max = v.iter().cloned().fold(f64::MIN, f64::max);
        for i in 1..n.saturating_sub(1) {
            run_max = run_max.max(v[i - 1]);
            let is_min = v[i] <= v[i - 1] && v[i] < v[i + 1];
            if !is_min || run_max - v[i] < opts.min_drop_kmh {
                continue;
            }
            // Confirm: speed rises by min_rise before going below this minimum again.
            let mut confirmed = false;
            for &vj in &v[i + 1..] {
                if vj < v[i] {
                    break;
                }
                if vj >= v[i] + opts.min_rise_kmh {
                    confirmed = true;
                    break;
                }
            }
            if !confirmed {
                continue;
            }
            if let Some(ay) = &ay {
                let a = i.saturating_sub(cells(40.0));
                let b = (i + cells(40.0)).min(n - 1);
                let peak = ay[a..=b].iter().fold(0.0_f64, |m, x| m.max(x.abs()));
                if peak < opts.min_lat_g {
                    continue;
                }
            }
            if let Some(&prev) = apexes.last() {
                if (i - prev) < cells(40.0) {
                    if v[i] < v[prev] {
                        apexes.pop();
                    } else {
                        continue;
                    }
                }
            }
            apexes.push(i);
            run_max = v[i];
        }
        if apexes.is_empty() {
            return Err(CoachError::NotEnoughData(
                "no corner found in the reference lap".into(),
            ));
        }
        // Windows.
        let mut entries = Vec::with_capacity(apexes.len());
        for (k, &a) in apexes.iter().enumerate() {
            let mut j = a;
            let limit = a.saturating_sub(cells(800.0));
            while j > limit && j > 0 && v[j - 1] > v[j] - 0.05 {
                j -= 1;
            }
            let brake_ref = j as f64 * GRID_M;
            let prev_apex_m = if k == 0 {
                0.0
            } else {
                apexes[k - 1] as f64 * GRID_M
            };
            let apex_m = a as f64 * GRID_M;
            let floor = if k == 0 {
                0.0
            } else {
                prev_apex_m + 0.25 * (apex_m - prev_apex_m)
            };
            entries.push(
                (brake_ref - opts.entry_margin_m)
                    .max(floor)
                    .min(apex_m - GRID_M)
                    .max(0.0),
            );
        }
        let mut corners = Vec::with_capacity(apexes.len());
        for (k, &a) in apexes.iter().enumerate() {
            let apex_m = a as f64 * GRID_M;
            let end_m = entries.get(k + 1).copied().unwrap_or(length_m);
            let exit_cap = (end_m - GRID_M).max(apex_m);
            let mut exit_m = (apex_m + 0.3 * (end_m - apex_m)).min(exit_cap);
            let mut direction = Direction::Unknown;
            let near = a.saturating_sub(cells(20.0))..=(a + cells(20.0)).min(n - 1);
            if let Some(ay) = &ay {
                let a0 = a.saturating_sub(cells(40.0));
                let b0 = (a + cells(40.0)).min(n - 1);
                let peak = ay[a0..=b0].iter().fold(0.0_f64, |m, x| m.max(x.abs()));
                let mut j = a;
                let stop = ((exit_cap / GRID_M) as usize).min(n - 1);
                while j < stop && (ay[j].abs() >= 0.4 * peak || (j - a) < cells(10.0)) {
                    j += 1;
                }
                exit_m = (j as f64 * GRID_M).min(exit_cap);
                let mean: f64 = ay[near.clone()].iter().sum();
                direction = if mean >= 0.0 {
                    Direction::Left
                } else {
                    Direction::Right
                };
            } else if let Some(st) = &steer {
                let mean: f64 = st[near].iter().sum();
                direction = if mean >= 0.0 {
                    Direction::Left
                } else {
                    Direction::Right
                };
            }
            corners.push(CornerDef {
                number: (k + 1) as u32,
                name: None,
                entry_m: entries[k],
                apex_m,
                exit_m,
                end_m,
                direction,
                ref_min_speed_kmh: v_raw[a],
            });
        }
        let mut map = CornerMap {
            track: track.to_string(),
            length_m,
            corners,
            sector_bounds_m: Vec::new(),
        };
        map.sector_bounds_m = map.default_sectors();
        Ok(map)
    }

    /// Three sectors split at the corner windows nearest a third and two thirds of the lap.
    fn default_sectors(&self) -> Vec<f64> {
        let l = self.length_m;
        let mut out = Vec::new();
        for f in [1.0 / 3.0, 2.0 / 3.0] {
            let target = l * f;
            let best = self
                .corners
                .iter()
                .map(|c| c.entry_m)
                .filter(|e| *e > 0.0 && *e < l)
                .min_by(|a, b| (a - target).abs().total_cmp(&(b - target).abs()))
                .filter(|e| (e - target).abs() < l / 6.0)
                .unwrap_or(target);
            if out.last().is_none_or(|p: &f64| best > *p + 1.0) {
                out.push(best);
            }
        }
        out
    }

    /// Replaces the sector boundaries (e.g. from a track file). Unsorted, duplicate, or
    /// out-of-lap values are dropped.
    pub fn with_sectors(mut self, bounds_m: &[f64]) -> CornerMap {
        let mut b: Vec<f64> = bounds_m
            .iter()
            .copied()
            .filter(|x| x.is_finite() && *x > 0.0 && *x < self.length_m)
            .collect();
        b.sort_by(f64::total_cmp);
        b.dedup_by(|a, b| (*a - *b).abs() < 1.0);
        self.sector_bounds_m = b;
        self
    }

    /// Number of sectors (interior bounds + 1).
    pub fn sector_count(&self) -> usize {
        self.sector_bounds_m.len() + 1
    }

    /// The corner whose apex is nearest `apex_m`, within `tol_m`.
    pub fn corner_near(&self, apex_m: f64, tol_m: f64) -> Option<&CornerDef> {
        self.corners
            .iter()
            .filter(|c| (c.apex_m - apex_m).abs() <= tol_m)
            .min_by(|a, b| {
                (a.apex_m - apex_m)
                    .abs()
                    .total_cmp(&(b.apex_m - apex_m).abs())
            })
    }

    /// True when windows are ordered and within the lap (a map from JSON may not be).
    pub(crate) fn is_consistent(&self) -> bool {
        self.length_m.is_finite()
            && self.length_m > 0.0
            && self
                .corners
                .windows(2)
                .all(|w| w[0].entry_m <= w[1].entry_m)
            && self.corners.iter().all(|c| {
                c.entry_m.is_finite()
                    && c.end_m.is_finite()
                    && c.exit_m.is_finite()
                    && c.apex_m.is_finite()
                    && c.entry_m < c.end_m
                    && c.entry_m >= 0.0
                    && c.end_m <= self.length_m + 1.0
            })
    }
}
