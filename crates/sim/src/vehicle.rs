//! Quasi-steady-state lap model of a GR86-class car: the speed profile along the race line,
//! and everything derived from it for one lap (time, g forces, pedals, steering, per-tyre wear,
//! fuel).

use crate::tracks::Track;

/// Standard gravity, m/s².
pub const G_MPS2: f64 = 9.81;
const AIR_DENSITY_KGPM3: f64 = 1.18;
/// Brake-specific fuel consumption used for fuel burn, kg per joule (255 g/kWh).
const BSFC_KG_PER_J: f64 = 0.255 / 3.6e6;
/// Idle / overrun fuel flow, kg/s.
const IDLE_FUEL_KGPS: f64 = 0.0003;

/// Physical parameters of the car. Defaults: a Toyota GR86 Cup car.
#[derive(Debug, Clone, PartialEq)]
pub struct CarParams {
    /// Car and driver without fuel, kg.
    pub mass_kg: f64,
    /// Peak engine power, W.
    pub power_w: f64,
    /// Share of engine power reaching the ground.
    pub drivetrain_eff: f64,
    /// Tyre friction coefficient of new road tyres (lateral and braking).
    pub mu: f64,
    /// Drag area Cd·A, m².
    pub cda_m2: f64,
    /// Downforce area Cl·A, m² (small).
    pub cla_m2: f64,
    /// Rolling resistance coefficient.
    pub crr: f64,
    /// Wheelbase, m.
    pub wheelbase_m: f64,
    /// Track width, m.
    pub track_width_m: f64,
    /// Centre of gravity height, m.
    pub cg_height_m: f64,
    /// Static share of weight on the front axle.
    pub weight_front: f64,
    /// Share of lateral load transfer taken by the front axle.
    pub roll_stiffness_front: f64,
    /// Steering ratio (hand wheel degrees per road wheel degree).
    pub steering_ratio: f64,
    /// Gear ratios, 1st to 6th.
    pub gear_ratios: [f64; 6],
    /// Final drive ratio.
    pub final_drive: f64,
    /// Loaded tyre radius, m.
    pub wheel_radius_m: f64,
    /// Shift point / rev limit, rpm.
    pub redline_rpm: f64,
    /// Idle, rpm.
    pub idle_rpm: f64,
    /// Line pressure for a 1 g stop at 60 % front bias, bar (front line).
    pub brake_bar_per_g: f64,
    /// Percent wear per unit of tyre sliding work (N·m scaled by utilisation).
    pub wear_pct_per_j: f64,
    /// Grip loss per percent of (effective) wear, linear term.
    pub grip_loss_per_pct: f64,
    /// Grip loss per percent², quadratic term.
    pub grip_loss_per_pct2: f64,
}

impl Default for CarParams {
    fn default() -> Self {
        CarParams {
            mass_kg: 1270.0,
            power_w: 170_000.0,
            drivetrain_eff: 0.85,
            mu: 1.15,
            cda_m2: 0.62,
            cla_m2: 0.05,
            crr: 0.013,
            wheelbase_m: 2.575,
            track_width_m: 1.53,
            cg_height_m: 0.46,
            weight_front: 0.53,
            roll_stiffness_front: 0.55,
            steering_ratio: 13.5,
            gear_ratios: [3.626, 2.188, 1.541, 1.213, 1.000, 0.767],
            final_drive: 4.1,
            wheel_radius_m: 0.31,
            redline_rpm: 7400.0,
            idle_rpm: 900.0,
            brake_bar_per_g: 95.0,
            wear_pct_per_j: 1.2e-7,
            grip_loss_per_pct: 0.0004,
            grip_loss_per_pct2: 0.000_006,
        }
    }
}

impl CarParams {
    /// Friction coefficient after wear (percent per corner).
    pub fn mu_with_wear(&self, wear_pct: [f64; 4]) -> f64 {
        let max = wear_pct.iter().cloned().fold(0.0, f64::max);
        let mean = wear_pct.iter().sum::<f64>() / 4.0;
        let w = 0.5 * (max + mean);
        self.mu * (1.0 - self.grip_loss_per_pct * w - self.grip_loss_per_pct2 * w * w).max(0.5)
    }

    /// Highest speed the gearing allows, m/s.
    pub fn v_gear_max_mps(&self) -> f64 {
        let top = self.gear_ratios[5] * self.final_drive;
        self.redline_rpm / 60.0 * std::f64::consts::TAU * self.wheel_radius_m / top
    }

    /// Gear (1-6) and engine rpm at speed `v_mps`: the lowest gear below the shift point.
    pub fn gear_rpm(&self, v_mps: f64) -> (i8, f64) {
        let wheel_rpm = v_mps.max(0.0) / (std::f64::consts::TAU * self.wheel_radius_m) * 60.0;
        for (i, r) in self.gear_ratios.iter().enumerate() {
            let rpm = wheel_rpm * r * self.final_drive;
            if rpm <= self.redline_rpm - 150.0 || i == 5 {
                return (
                    (i + 1) as i8,
                    rpm.clamp(self.idle_rpm, self.redline_rpm + 300.0),
                );
            }
        }
        (6, self.idle_rpm)
    }
}

/// A corner found from the reference speed profile: a braking zone ending at an apex.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Corner {
    /// Corner number, 1 = first after the start line (the simulator's own numbering, which need
    /// not match the circuit's official turn numbers: flat-out kinks are not counted).
    pub number: usize,
    /// Apex (minimum speed point), metres from the start line.
    pub apex_m: f64,
    /// Reference minimum speed with new tyres, km/h.
    pub min_speed_kmh: f64,
    /// Speed drop from the preceding straight, km/h.
    pub drop_kmh: f64,
    /// True for a left-hand corner.
    pub left: bool,
}

/// Per-lap driving of one car: everything that shapes its speed profile.
#[derive(Debug, Clone)]
pub(crate) struct LapInputs {
    pub mu: f64,
    pub v_start_mps: f64,
    /// Brake point offset per corner (index = corner number - 1), metres (+ = later).
    pub brake_offset_m: Vec<f64>,
    pub throttle_delay_s: f64,
    pub brake_bias_front: f64,
    /// Uniform speed factor (noise, safety car).
    pub speed_scale: f64,
    /// Pit lane entry at this distance: speed limited from there, stop before the line.
    pub pit_in_from_m: Option<f64>,
    /// Pit lane exit: speed limited until this distance.
    pub pit_out_to_m: Option<f64>,
    pub pit_speed_mps: f64,
    pub stop_s: f64,
    pub wear_start_pct: [f64; 4],
    pub fuel_start_kg: f64,
}

/// One point of a lap plan.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PlanPoint {
    pub s_m: f64,
    pub t_s: f64,
    pub v_mps: f64,
    pub ax_g: f64,
    pub ay_g: f64,
    pub throttle_pct: f64,
    pub brake_f_bar: f64,
    pub brake_r_bar: f64,
    pub steer_deg: f64,
    pub wear_pct: [f64; 4],
    pub fuel_kg: f64,
    pub pit: u8,
    /// Past the tyre change of this lap.
    pub new_tyres: bool,
}

/// A whole lap, time-parametrised.
#[derive(Debug, Clone, Default)]
pub(crate) struct LapPlan {
    pub points: Vec<PlanPoint>,
}

impl LapPlan {
    pub fn duration_s(&self) -> f64 {
        self.points.last().map(|p| p.t_s).unwrap_or(0.0)
    }

    /// Time at which the car passes `s_m` (first pass).
    pub fn time_at_s(&self, s_m: f64) -> f64 {
        let pts = &self.points;
        let idx = pts.partition_point(|p| p.s_m < s_m);
        if idx == 0 {
            return pts.first().map(|p| p.t_s).unwrap_or(0.0);
        }
        match (pts.get(idx - 1), pts.get(idx)) {
            (Some(a), Some(b)) if b.s_m > a.s_m => {
                a.t_s + (b.t_s - a.t_s) * (s_m - a.s_m) / (b.s_m - a.s_m)
            }
            (Some(a), _) => a.t_s,
            _ => 0.0,
        }
    }

    /// Constant-speed plan over `[s0, s1]` (a rolling start before the line).
    pub fn constant(s0_m: f64, s1_m: f64, v_mps: f64, wear_pct: [f64; 4], fuel_kg: f64) -> LapPlan {
        let v = v_mps.max(1.0);
        let mk = |s_m: f64, t_s: f64| PlanPoint {
            s_m,
            t_s,
            v_mps: v,
            throttle_pct: 25.0,
            wear_pct,
            fuel_kg,
            ..PlanPoint::default()
        };
        LapPlan {
            points: vec![mk(s0_m, 0.0), mk(s1_m, ((s1_m - s0_m) / v).max(0.0))],
        }
    }
}

/// The car-independent part of the model for one track: lateral speed limits and the corners.
#[derive(Debug, Clone)]
pub(crate) struct TrackModel {
    pub car: CarParams,
    pub n: usize,
    pub ds_m: f64,
    pub kappa: Vec<f64>,
    pub corners: Vec<Corner>,
    /// Grid index of each corner's apex.
    pub apex_idx: Vec<usize>,
    /// Length of each corner's braking zone (reference profile), grid points.
    pub zone_len: Vec<usize>,
    /// Reference lap (new tyres, 20 kg fuel, neutral driver) flying-lap time.
    pub ref_lap_s: f64,
    pub ref_v_start_mps: f64,
}

impl TrackModel {
    pub fn new(track: &Track, car: CarParams) -> TrackModel {
        let kappa: Vec<f64> = track.race_line().iter().map(|p| p.curvature_1pm).collect();
        let n = kappa.len();
        let mut m = TrackModel {
            car,
            n,
            ds_m: track.grid_spacing_m(),
            kappa,
            corners: Vec::new(),
            apex_idx: Vec::new(),
            zone_len: Vec::new(),
            ref_lap_s: 0.0,
            ref_v_start_mps: 0.0,
        };
        let mass = m.car.mass_kg + REF_FUEL_KG;
        let vlat = m.vlat(m.car.mu, mass);
        // Periodic profile: two laps, take the second.
        let v_start = m.periodic_start(&vlat, m.car.mu, mass);
        let v = m.passes(&m.kappa, &vlat, m.car.mu, mass, v_start, v_start, &[]);
        m.ref_v_start_mps = v_start;
        m.ref_lap_s = lap_time(&v, m.ds_m);
        // Corners: local minima preceded by a real braking drop.
        let mut apexes = Vec::new();
        let mut run_max = v.iter().cloned().fold(0.0, f64::max);
        let mut i = 1;
        while i < n {
            let vi = v[i];
            run_max = run_max.max(v[i - 1]);
            let is_min = vi <= v[i - 1] && vi < v[(i + 1) % n];
            if is_min && run_max - vi > 10.0 / 3.6 {
                apexes.push((i, run_max - vi));
                run_max = vi;
            }
            if vi < run_max && v[(i + 1) % n] > vi {
                // rising again: keep run_max as the highest since the last apex
            }
            i += 1;
        }
        for (k, (i, drop)) in apexes.iter().enumerate() {
            m.corners.push(Corner {
                number: k + 1,
                apex_m: *i as f64 * m.ds_m,
                min_speed_kmh: v[*i] * 3.6,
                drop_kmh: drop * 3.6,
                left: m.kappa[*i] > 0.0,
            });
            m.apex_idx.push(*i);
            // Walk back while the reference speed keeps rising: the braking zone.
            let mut z = 0;
            while z < n / 8 {
                let a = v[(i + n - z - 1) % n];
                let b = v[(i + n - z) % n];
                if a < b - 1e-9 {
                    break;
                }
                z += 1;
            }
            m.zone_len.push(z);
        }
        m
    }

    /// Lateral-grip speed limit at each grid point.
    fn vlat(&self, mu: f64, mass_kg: f64) -> Vec<f64> {
        let c = &self.car;
        let vtop = c.v_gear_max_mps();
        let aero = mu * 0.5 * AIR_DENSITY_KGPM3 * c.cla_m2 / mass_kg;
        self.kappa
            .iter()
            .map(|k| {
                let den = k.abs() - aero;
                if den <= 1e-9 {
                    vtop
                } else {
                    (mu * G_MPS2 / den).sqrt().min(vtop)
                }
            })
            .collect()
    }

    fn periodic_start(&self, vlat: &[f64], mu: f64, mass: f64) -> f64 {
        let v1 = self.passes(&self.kappa, vlat, mu, mass, vlat[0].min(30.0), vlat[0], &[]);
        let end = v1.last().cloned().unwrap_or(30.0);
        let v2 = self.passes(&self.kappa, vlat, mu, mass, end, end, &[]);
        v2.last().cloned().unwrap_or(end)
    }

    /// Resistive deceleration (drag + rolling), m/s².
    fn resist(&self, v: f64, mass: f64) -> f64 {
        let c = &self.car;
        0.5 * AIR_DENSITY_KGPM3 * c.cda_m2 * v * v / mass + c.crr * G_MPS2
    }

    /// Grip left for longitudinal use at speed `v` with curvature `k`, m/s².
    fn long_grip(&self, v: f64, k: f64, mu: f64, mass: f64) -> f64 {
        let c = &self.car;
        let normal = G_MPS2 + 0.5 * AIR_DENSITY_KGPM3 * c.cla_m2 * v * v / mass;
        let lat_max = mu * normal;
        let ay = v * v * k.abs();
        let r = (ay / lat_max).min(1.0);
        lat_max * (1.0 - r * r).max(0.0).sqrt()
    }

    /// Forward (power/traction) and backward (braking) passes over one lap: speeds at the
    /// n + 1 grid points from s = 0 to s = L. `hold` lists (index, metres) from which the car
    /// coasts without accelerating (throttle pickup delay).
    #[allow(clippy::too_many_arguments)] // a hot inner routine: plain arguments, no struct
    fn passes(
        &self,
        kappa: &[f64],
        vlat: &[f64],
        mu: f64,
        mass: f64,
        v_start: f64,
        v_end: f64,
        hold: &[(usize, f64)],
    ) -> Vec<f64> {
        let c = &self.car;
        let n = self.n;
        let ds = self.ds_m;
        let rear_share =
            ((1.0 - c.weight_front) / (1.0 - mu * c.cg_height_m / c.wheelbase_m)).min(1.0);
        let mut v = vec![0.0; n + 1];
        v[0] = v_start.min(vlat[0]).max(0.0);
        let mut hold_until = -1.0;
        let mut hold_k = 0;
        for i in 0..n {
            let s = i as f64 * ds;
            while hold_k < hold.len() && hold[hold_k].0 <= i {
                if hold[hold_k].0 == i {
                    hold_until = s + hold[hold_k].1;
                }
                hold_k += 1;
            }
            let vi = v[i].max(0.5);
            let k = kappa[i];
            let a = if s < hold_until {
                -self.resist(vi, mass) * 0.0
            } else {
                let grip = self.long_grip(vi, k, mu, mass) * rear_share;
                let pow = c.power_w * c.drivetrain_eff / (mass * vi);
                grip.min(pow) - self.resist(vi, mass)
            };
            let next = (v[i] * v[i] + 2.0 * a * ds).max(0.0).sqrt();
            v[i + 1] = next.min(vlat[(i + 1) % n]);
        }
        v[n] = v[n].min(v_end);
        for i in (0..n).rev() {
            let vn = v[i + 1];
            let a = self.long_grip(vn, kappa[(i + 1) % n], mu, mass) + self.resist(vn, mass);
            let lim = (vn * vn + 2.0 * a * ds).sqrt();
            if v[i] > lim {
                v[i] = lim;
            }
        }
        v
    }

    /// Builds the plan of one lap.
    pub fn plan_lap(&self, inp: &LapInputs) -> LapPlan {
        let c = &self.car;
        let n = self.n;
        let ds = self.ds_m;
        let mass = c.mass_kg + inp.fuel_start_kg.max(0.0);
        let mu = load_sensitive_mu(inp.mu, mass, c.mass_kg + REF_FUEL_KG).max(0.3);
        let mut vlat = self.vlat(mu, mass);
        // Brake point offsets: move the corner's speed limit (braking zone to apex) later or
        // earlier by the offset, so the car brakes later / earlier and apexes later / earlier.
        let base = vlat.clone();
        let mut kappa = self.kappa.clone();
        for (ci, (&apex, &zone)) in self.apex_idx.iter().zip(&self.zone_len).enumerate() {
            let off = inp.brake_offset_m.get(ci).cloned().unwrap_or(0.0);
            if off.abs() < 1e-9 || !off.is_finite() {
                continue;
            }
            let k = ((off.abs() / ds).round() as usize).min(n / 8);
            if k == 0 {
                continue;
            }
            let start = apex + n - zone; // braking zone start (mod n)
                                         // The corner: braking zone, apex and the exit while the arc still limits speed.
            let va = base[apex];
            let mut exit = 0;
            while exit < n / 8 && base[(apex + exit + 1) % n] < 1.3 * va {
                exit += 1;
            }
            let w = zone + exit;
            if off > 0.0 {
                let z_v = base[start % n];
                let z_k = self.kappa[start % n];
                for j in (0..=w).rev() {
                    vlat[(start + j + k) % n] = base[(start + j) % n];
                    kappa[(start + j + k) % n] = self.kappa[(start + j) % n];
                }
                for j in 0..k {
                    let idx = (start + j) % n;
                    vlat[idx] = base[idx].max(z_v);
                    kappa[idx] = if base[idx] >= z_v {
                        self.kappa[idx]
                    } else {
                        z_k
                    };
                }
            } else {
                for j in 0..=w {
                    let dst = (start + n - k + j) % n;
                    let src = (start + j) % n;
                    if base[src] < vlat[dst] {
                        vlat[dst] = base[src];
                        kappa[dst] = self.kappa[src];
                    }
                }
            }
        }
        // Pit lane limits and the stop.
        let pit_v = inp.pit_speed_mps.max(1.0);
        let mut stop_idx = None;
        if let Some(from) = inp.pit_in_from_m {
            let i0 = ((from / ds).floor() as usize).min(n);
            for v in vlat.iter_mut().skip(i0) {
                *v = v.min(pit_v);
            }
            let si = n.saturating_sub((10.0 / ds).ceil() as usize).max(i0);
            if si < n {
                vlat[si] = 0.0;
                stop_idx = Some(si);
            }
        }
        if let Some(to) = inp.pit_out_to_m {
            let i1 = ((to / ds).ceil() as usize).min(n);
            for v in vlat.iter_mut().take(i1) {
                *v = v.min(pit_v);
            }
        }
        // Throttle pickup delay: coast from each apex for delay x apex speed.
        let mut hold: Vec<(usize, f64)> = Vec::new();
        if inp.throttle_delay_s > 0.0 {
            for (ci, &apex) in self.apex_idx.iter().enumerate() {
                let off = inp.brake_offset_m.get(ci).cloned().unwrap_or(0.0).max(0.0);
                let idx = (apex + (off / ds).round() as usize).min(n - 1);
                hold.push((idx, vlat[idx] * inp.throttle_delay_s));
            }
            hold.sort_by_key(|h| h.0);
        }
        let v_end = if inp.pit_in_from_m.is_some() {
            pit_v
        } else {
            self.ref_v_start_mps
        };
        let mut v = self.passes(&kappa, &vlat, mu, mass, inp.v_start_mps, v_end, &hold);
        let scale = if inp.speed_scale.is_finite() {
            inp.speed_scale.clamp(0.2, 1.2)
        } else {
            1.0
        };
        for x in v.iter_mut() {
            *x *= scale;
        }
        if let Some(si) = stop_idx {
            v[si] = 0.0;
        }
        self.derive(&v, &kappa, inp, stop_idx)
    }

    /// Re-times a plan to last `target_s` by scaling all speeds uniformly, re-deriving every
    /// channel from the lap inputs.
    pub fn stretch(&self, inp: &LapInputs, plan: &LapPlan, target_s: f64) -> LapPlan {
        let d = plan.duration_s();
        if d <= 0.0 || target_s <= 0.0 || !target_s.is_finite() {
            return plan.clone();
        }
        let mut inp2 = inp.clone();
        inp2.speed_scale = (inp.speed_scale * d / target_s).clamp(0.2, 1.2);
        self.plan_lap(&inp2)
    }

    fn derive(
        &self,
        v: &[f64],
        kappa: &[f64],
        inp: &LapInputs,
        stop_idx: Option<usize>,
    ) -> LapPlan {
        let c = &self.car;
        let n = self.n;
        let ds = self.ds_m;
        let bias = inp.brake_bias_front.clamp(0.3, 0.85);
        let mu = inp.mu.max(0.3);
        let mut pts = Vec::with_capacity(n + 3);
        let mut t = 0.0;
        let mut wear = inp.wear_start_pct;
        let mut fuel = inp.fuel_start_kg.max(0.0);
        let pit_in = inp.pit_in_from_m.unwrap_or(f64::INFINITY);
        let pit_out = inp.pit_out_to_m.unwrap_or(-1.0);
        let mut new_tyres = false;
        for i in 0..=n {
            let s = i as f64 * ds;
            let vi = v[i];
            let k = kappa[i % n];
            let (vp, vn) = (
                if i > 0 { v[i - 1] } else { v[0] },
                if i < n { v[i + 1] } else { v[n] },
            );
            let span = if i > 0 && i < n { 2.0 * ds } else { ds };
            let ax = (vn * vn - vp * vp) / (2.0 * span);
            let ay = vi * vi * k;
            let mass = c.mass_kg + fuel;
            let resist = if vi > 0.1 {
                0.5 * AIR_DENSITY_KGPM3 * c.cda_m2 * vi * vi + c.crr * mass * G_MPS2
            } else {
                0.0
            };
            let fx = mass * ax + resist; // tyre longitudinal force, N
            let (throttle, brake_g) = if fx >= 0.0 {
                let p = fx * vi / (c.power_w * c.drivetrain_eff);
                let grip = mu * G_MPS2 * mass * (1.0 - c.weight_front);
                (
                    (100.0 * p.max(fx / grip.max(1.0) * 0.6)).clamp(0.0, 100.0),
                    0.0,
                )
            } else {
                (0.0, -fx / (mass * G_MPS2))
            };
            let pit = if stop_idx == Some(i) {
                2
            } else if s >= pit_in || s <= pit_out {
                1
            } else {
                0
            };
            let steer = (k * c.wheelbase_m).atan().to_degrees() * c.steering_ratio;
            let p = PlanPoint {
                s_m: s,
                t_s: t,
                v_mps: vi,
                ax_g: ax / G_MPS2,
                ay_g: ay / G_MPS2,
                throttle_pct: throttle,
                brake_f_bar: brake_g * c.brake_bar_per_g * bias / 0.6,
                brake_r_bar: brake_g * c.brake_bar_per_g * (1.0 - bias) / 0.4 * 0.85,
                steer_deg: steer,
                wear_pct: wear,
                fuel_kg: fuel,
                pit,
                new_tyres,
            };
            pts.push(p);
            if stop_idx == Some(i) {
                // Stationary in the box: tyres changed.
                t += inp.stop_s.max(0.0);
                fuel = (fuel - IDLE_FUEL_KGPS * inp.stop_s.max(0.0)).max(0.0);
                wear = [0.0; 4];
                new_tyres = true;
                let mut q = p;
                q.t_s = t;
                q.wear_pct = wear;
                q.fuel_kg = fuel;
                q.new_tyres = true;
                pts.push(q);
            }
            if i == n {
                break;
            }
            // Segment i -> i+1.
            let vavg = 0.5 * (vi + v[i + 1]);
            let dt = if vavg > 1e-6 { ds / vavg } else { 0.0 };
            t += dt;
            // Loads (N).
            let w = mass * G_MPS2 + 0.5 * AIR_DENSITY_KGPM3 * c.cla_m2 * vi * vi;
            let dlong = mass * ax * c.cg_height_m / c.wheelbase_m;
            let ff = (w * c.weight_front - dlong).max(0.05 * w);
            let fr = (w * (1.0 - c.weight_front) + dlong).max(0.05 * w);
            let dlat = mass * ay * c.cg_height_m / c.track_width_m;
            let dlf = dlat * c.roll_stiffness_front;
            let dlr = dlat - dlf;
            // ay > 0 = left turn: load moves to the right tyres.
            let fz = [
                (ff / 2.0 - dlf / 2.0).max(0.02 * w),
                (ff / 2.0 + dlf / 2.0).max(0.02 * w),
                (fr / 2.0 - dlr / 2.0).max(0.02 * w),
                (fr / 2.0 + dlr / 2.0).max(0.02 * w),
            ];
            let fz_sum: f64 = fz.iter().sum();
            let fz_static = [
                w * c.weight_front / 2.0,
                w * c.weight_front / 2.0,
                w * (1.0 - c.weight_front) / 2.0,
                w * (1.0 - c.weight_front) / 2.0,
            ];
            let fy_total = mass * ay;
            let mut fxs = [0.0; 4];
            if fx >= 0.0 {
                let rsum = fz[2] + fz[3];
                fxs[2] = fx * fz[2] / rsum;
                fxs[3] = fx * fz[3] / rsum;
            } else {
                let fsum = fz[0] + fz[1];
                let rsum = fz[2] + fz[3];
                fxs[0] = fx * bias * fz[0] / fsum;
                fxs[1] = fx * bias * fz[1] / fsum;
                fxs[2] = fx * (1.0 - bias) * fz[2] / rsum;
                fxs[3] = fx * (1.0 - bias) * fz[3] / rsum;
            }
            for j in 0..4 {
                let fy = fy_total * fz[j] / fz_sum;
                let f = (fxs[j] * fxs[j] + fy * fy).sqrt();
                // Slip grows with the force relative to the tyre's *static* load (load
                // sensitivity: a heavily loaded outer tyre slides more), so wear ~ load².
                let u = (f / (mu * fz_static[j])).min(2.5);
                // Sliding work ~ force x slip distance (slip grows with utilisation), plus a
                // small rolling term proportional to load.
                let work = f * u * ds + 0.02 * fz[j] * ds;
                wear[j] = (wear[j] + c.wear_pct_per_j * work).min(100.0);
            }
            let p_engine = if fx > 0.0 {
                fx * vavg / c.drivetrain_eff
            } else {
                0.0
            };
            fuel = (fuel - (p_engine * BSFC_KG_PER_J + IDLE_FUEL_KGPS) * dt).max(0.0);
        }
        LapPlan { points: pts }
    }
}

/// Fuel load of the reference lap, kg.
const REF_FUEL_KG: f64 = 20.0;
/// Tyre load sensitivity: relative friction lost per relative extra mass.
const LOAD_SENSITIVITY: f64 = 0.3;

/// Friction coefficient at `mass_kg` for a tyre whose `mu` holds at `ref_mass_kg`.
fn load_sensitive_mu(mu: f64, mass_kg: f64, ref_mass_kg: f64) -> f64 {
    mu * (1.0 - LOAD_SENSITIVITY * (mass_kg / ref_mass_kg.max(1.0) - 1.0))
}

/// Lap time of a profile on a uniform grid.
fn lap_time(v: &[f64], ds: f64) -> f64 {
    v.windows(2)
        .map(|w| {
            let a = 0.5 * (w[0] + w[1]);
            if a > 1e-6 {
                ds / a
            } else {
                0.0
            }
        })
        .sum()
}
