//! The analysis' outputs as typed messages: what travels on `bus:insights`, what the store
//! keeps, what the API serves and what the dashboard reads. Field names are the wire names
//! (the seed's `chassis`, `lap_tire_stress`, `perSectorStress`,
//! `predicted_loss_per_lap_seconds`, `laps_until_0_5s_loss`, beside PitWall's own).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use coach::{CoachingAlert, DriverProfile};

/// Wear per corner, %.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct Wear {
    pub fl: f64,
    pub fr: f64,
    pub rl: f64,
    pub rr: f64,
}

impl From<telemetry::Corners<f64>> for Wear {
    fn from(c: telemetry::Corners<f64>) -> Wear {
        Wear {
            fl: c.fl,
            fr: c.fr,
            rl: c.rl,
            rr: c.rr,
        }
    }
}

/// 80 % interval of the wear per corner, % (`[low, high]`).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct WearInterval {
    pub fl: [f64; 2],
    pub fr: [f64; 2],
    pub rl: [f64; 2],
    pub rr: [f64; 2],
}

/// Validity of a lap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct Validity {
    pub out_lap: bool,
    pub pit: bool,
    pub safety_car: bool,
    pub incomplete: bool,
}

impl From<laps::LapValidity> for Validity {
    fn from(v: laps::LapValidity) -> Validity {
        Validity {
            out_lap: v.out_lap,
            pit: v.pit,
            safety_car: v.safety_car,
            incomplete: v.incomplete,
        }
    }
}

/// Tyre stress per sector, g·s (the seed's `perSectorStress`: keys `"0"`, `"1"`, `"2"`).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct SectorStress {
    #[serde(rename = "0")]
    pub s0: f64,
    #[serde(rename = "1")]
    pub s1: f64,
    #[serde(rename = "2")]
    pub s2: f64,
}

/// The tyre model that made a prediction.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct ModelInfo {
    pub version: Option<String>,
    /// Whether the model was fitted on this track (its intervals are calibrated per case).
    pub known_track: bool,
}

/// The tyre model's view after a lap (absent fields: no model loaded). Flattened into
/// [`Insight`] in the seed's shape.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct TireInsight {
    /// Which predictor served this lap: `physics+trees` (the tyre model on the lap's
    /// telemetry), `reported wear` (the source's own wear per tyre, its rate fitted per stint),
    /// `timing only` (lap times alone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predictor: Option<String>,
    /// The next lap's time as the lap-time predictors see it (`reported wear`, `timing only`),
    /// s, and its 80 % interval: what the loss per lap is scored on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicted_next_lap_time_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_lap_time_interval80_s: Option<[f64; 2]>,
    /// Predicted wear per corner, %.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tire_wear: Option<Wear>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tire_wear_interval80: Option<WearInterval>,
    /// Predicted loss of the next lap against the stint's best fuel-corrected pace, s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicted_loss_per_lap_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss_interval80_s: Option<[f64; 2]>,
    /// Laps until the loss reaches 0.5 s (1 = the next lap).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub laps_until_0_5s_loss: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub laps_until_0_5s_interval80: Option<[u32; 2]>,
    /// Lap at whose end the tyres alone would call a stop (`None` when they last to the flag).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recommended_pit_lap: Option<u32>,
    /// The tyres' own window (first and last lap worth stopping at).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub tire_pit_window: Option<tires::PitWindow>,
    /// Why `recommended_pit_lap` is empty although the tyres cross 0.5 s (after the flag).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tire_pit_note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stint: Option<u32>,
    /// Three radio-ready sentences from the top contributions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub explanation: Vec<String>,
    /// Exact TreeSHAP contributions to the predicted loss, s, by feature.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub feature_scores: std::collections::BTreeMap<String, f64>,
    /// `{"status": "ok"}` or `{"status": "not_enough_data", "reason": ...}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub tire_status: Option<tires::Status>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tire_ok: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelInfo>,
}

impl TireInsight {
    /// The view of one tyre state.
    pub fn from_state(t: &tires::TireState, model_version: Option<String>) -> TireInsight {
        let w = t.wear_pct;
        let iv = t.wear_interval80_pct;
        TireInsight {
            predictor: Some(tires::PredictorKind::PhysicsTrees.as_str().to_string()),
            tire_wear: Some(w.into()),
            tire_wear_interval80: Some(WearInterval {
                fl: [iv.fl.lo, iv.fl.hi],
                fr: [iv.fr.lo, iv.fr.hi],
                rl: [iv.rl.lo, iv.rl.hi],
                rr: [iv.rr.lo, iv.rr.hi],
            }),
            predicted_loss_per_lap_seconds: t.predicted_loss_per_lap_s,
            loss_interval80_s: t.loss_interval80_s.map(|i| [i.lo, i.hi]),
            laps_until_0_5s_loss: t.laps_until_0_5s_loss,
            laps_until_0_5s_interval80: t.laps_until_interval80,
            recommended_pit_lap: t.recommended_pit_lap,
            tire_pit_window: t.pit_window,
            tire_pit_note: None,
            stint: Some(t.stint),
            explanation: t.explanation.clone(),
            feature_scores: t
                .feature_scores
                .iter()
                .map(|f| (f.name.to_string(), f.score))
                .collect(),
            tire_ok: Some(matches!(t.status, tires::Status::Ok)),
            tire_status: Some(t.status.clone()),
            model: Some(ModelInfo {
                version: model_version,
                known_track: t.known_track,
            }),
            predicted_next_lap_time_s: None,
            next_lap_time_interval80_s: None,
        }
    }

    /// Takes what the reported-wear predictor says (the source reports wear per tyre): the
    /// reported wear, the loss and the laps until +0.5 s from the session's own wear-to-lap-time
    /// fit, its pit lap and three sentences saying so. The tyre model's physics was its prior;
    /// the model's own intervals, window and feature scores (about its estimate, not the
    /// reported wear) are dropped.
    pub fn use_reported_wear(&mut self, p: &tires::WearPrediction) {
        let [fl, fr, rl, rr] = p.wear_pct;
        self.predictor = Some(tires::PredictorKind::ReportedWear.as_str().to_string());
        self.tire_wear = Some(Wear { fl, fr, rl, rr });
        self.tire_wear_interval80 = None;
        self.tire_pit_window = None;
        self.laps_until_0_5s_interval80 = None;
        self.feature_scores.clear();
        let b = p.loss_per_wear_s_per_pct;
        self.predicted_loss_per_lap_seconds = Some(p.loss_s).filter(|x| x.is_finite());
        self.loss_interval80_s = (b.abs() > 1e-12)
            .then(|| {
                let half = 1.2816 * p.loss_per_wear_sd_s_per_pct * (p.loss_s / b).abs();
                [p.loss_s - half, p.loss_s + half]
            })
            .filter(|i| i.iter().all(|x| x.is_finite()));
        self.laps_until_0_5s_loss = p
            .laps_until_threshold
            .filter(|x| x.is_finite() && *x >= 0.0)
            .map(|x| x.ceil().max(1.0) as u32);
        self.recommended_pit_lap = p.pit_lap;
        if let Some(f) = p.lap_forecast.first() {
            self.predicted_next_lap_time_s = Some(f.lap_time_s).filter(|x| x.is_finite());
            self.next_lap_time_interval80_s =
                Some([f.lo_s, f.hi_s]).filter(|i| i.iter().all(|x| x.is_finite()));
        }
        let worst = (0..4)
            .max_by(|a, c| p.wear_pct[*a].total_cmp(&p.wear_pct[*c]))
            .unwrap_or(0);
        let names = ["front left", "front right", "rear left", "rear right"];
        self.explanation = vec![
            format!(
                "Tyres report {fl:.0}/{fr:.0}/{rl:.0}/{rr:.0} % worn (FL/FR/RL/RR), the {} worst, wearing {:.1} % a lap.",
                names[worst], p.wear_rate_pct_per_lap[worst]
            ),
            format!(
                "Each % of wear costs {:.3} s a lap in this session: {:.2} s lost to the tyres now.",
                b, p.loss_s
            ),
            match (self.laps_until_0_5s_loss, p.pit_lap) {
                (Some(n), Some(l)) => format!(
                    "Loss reaches {:.1} s in {n} laps: box at the end of lap {l}.",
                    p.threshold_s
                ),
                (Some(n), None) => format!("Loss reaches {:.1} s in {n} laps.", p.threshold_s),
                _ => "Wear is not costing lap time yet: stay out.".to_string(),
            },
        ];
    }

    /// Whether a predictor made this view (wear per corner, or a timing-only loss).
    pub fn is_present(&self) -> bool {
        self.tire_wear.is_some() || self.predicted_loss_per_lap_seconds.is_some()
    }
}

/// State of a car's pit window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WindowStatus {
    /// The Monte Carlo answered (for `as_of_lap`).
    #[default]
    Ready,
    /// The car's first window is being simulated.
    Computing,
    /// The race so far cannot be fitted (`reason` says why).
    NotEnoughData,
}

/// One plan of the pit window, with its simulated outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlanOutcome {
    pub name: String,
    pub pit_laps: Vec<u32>,
    pub expected_position: f64,
    pub win_probability: f64,
    pub p5_position: u32,
    pub interval95: [u32; 2],
    /// Probability of each finishing position (index 0 = P1).
    pub position_distribution: Vec<f64>,
    /// Expected positions lost against the best plan.
    pub diff_vs_best: f64,
    pub se_diff_vs_best: f64,
}

/// The race view: every plan simulated from the race as it stands, and the window.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct PitWindow {
    pub status: WindowStatus,
    /// Why there is no window (`computing`, `not_enough_data`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The lap the race was simulated from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_of_lap: Option<u32>,
    pub open_lap: Option<u32>,
    pub close_lap: Option<u32>,
    /// One line for the radio.
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub evidence: Vec<String>,
    pub best_plan: Option<String>,
    #[serde(default)]
    pub races_simulated: u64,
    /// Green-flag pit-lane loss the simulation used, s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pit_loss_s: Option<f64>,
    /// Race length the simulation ran to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_laps: Option<u32>,
    /// The plans, best first (at most 12).
    #[serde(default)]
    pub plans: Vec<PlanOutcome>,
}

impl PitWindow {
    /// A window not there yet, or impossible, with the reason.
    pub fn pending(status: WindowStatus, reason: impl Into<String>) -> PitWindow {
        PitWindow {
            status,
            reason: Some(reason.into()),
            ..PitWindow::default()
        }
    }

    /// The window of a strategy report, as of lap `as_of_lap`.
    pub fn from_report(
        report: &strategy::Report,
        as_of_lap: u32,
        pit_loss_s: Option<f64>,
    ) -> PitWindow {
        let rec = &report.recommendation;
        PitWindow {
            status: WindowStatus::Ready,
            reason: None,
            as_of_lap: Some(as_of_lap),
            open_lap: rec.window.map(|w| w.0),
            close_lap: rec.window.map(|w| w.1),
            text: rec.text.clone(),
            evidence: rec.evidence.clone(),
            best_plan: report.outcomes.first().map(|o| o.label.clone()),
            races_simulated: report.races_simulated,
            pit_loss_s,
            total_laps: Some(report.total_laps),
            plans: report
                .outcomes
                .iter()
                .take(12)
                .map(|o| PlanOutcome {
                    name: o.label.clone(),
                    pit_laps: o.strategy.stops.iter().map(|s| s.lap).collect(),
                    expected_position: o.expected_position,
                    win_probability: o.win_probability,
                    p5_position: o.p5_position,
                    interval95: [o.interval95.0, o.interval95.1],
                    position_distribution: o.finish_position_distribution.clone(),
                    diff_vs_best: o.diff_vs_best,
                    se_diff_vs_best: o.se_diff_vs_best,
                })
                .collect(),
        }
    }

    pub fn is_ready(&self) -> bool {
        self.status == WindowStatus::Ready
    }
}

/// What to do, in one call that weighs the tyre view against the race view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Stay out: no stop beats staying out (or the tyres last to the flag).
    StayOut,
    /// Box in the window.
    Box,
    /// Not known yet (no lap, no window, no tyre view).
    Wait,
}

/// The one recommendation of an insight, with its reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Call {
    pub action: Action,
    /// First and last lap to box at (for `box`).
    pub window: Option<[u32; 2]>,
    /// One sentence for the radio, with the reason (e.g. "tyres cross +0.5 s at L11, but a stop
    /// costs 23 s and the tyres lose 4 s to the flag: stay out").
    pub text: String,
    /// Lap at which the tyres cross +0.5 s a lap, if they do before the flag.
    pub tyres_cross_lap: Option<u32>,
    /// Time the tyres are expected to lose from now to the flag, s.
    pub tyre_loss_to_flag_s: Option<f64>,
    /// Green-flag cost of a stop, s.
    pub stop_cost_s: Option<f64>,
}

/// Everything PitWall says about one car after one lap: the `insight_update` element. One per
/// (session, car, lap); `revision` grows when it is revised (the pit window arriving later).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Insight {
    /// Car id.
    pub chassis: String,
    pub track: Option<String>,
    pub session_id: String,
    pub lap: u32,
    /// 0 when the lap completes; +1 at each revision.
    #[serde(default)]
    pub revision: u32,
    pub lap_time_s: Option<f64>,
    /// The car's best clean lap so far (this one included).
    pub best_lap_time_s: Option<f64>,
    pub sector_times_s: [Option<f64>; 3],
    pub validity: Validity,
    /// Line crossings that started and ended the lap, session time s.
    #[serde(default)]
    pub t_start_s: f64,
    #[serde(default)]
    pub t_end_s: f64,
    /// Race position at the end of the lap.
    #[serde(default)]
    pub position: Option<u32>,
    pub lap_tire_stress: f64,
    #[serde(rename = "perSectorStress")]
    pub per_sector_stress: SectorStress,
    pub tyre_age_laps: u32,
    pub tyre_compound: Option<String>,
    #[serde(default)]
    pub fuel_kg: Option<f64>,
    /// Wear the source reports (the F1 game), %.
    pub tire_wear_source: Option<Wear>,
    /// The 20 lap features.
    #[schema(value_type = Object)]
    pub features: laps::LapFeatures,
    /// Position, gaps and closing rates (`laps::Gaps`).
    #[schema(value_type = Option<Object>)]
    pub gaps: Option<laps::Gaps>,
    #[serde(flatten)]
    pub tire: TireInsight,
    /// The race view (the Monte Carlo's window).
    pub pit_window: Option<PitWindow>,
    /// The one recommendation: tyre view and race view reconciled, with the reason.
    pub call: Option<Call>,
}

impl Insight {
    /// Idempotency key: (session, car, lap).
    pub fn key(&self) -> (&str, &str, u32) {
        (&self.session_id, &self.chassis, self.lap)
    }
}

/// What a session says about itself besides its samples (on `bus:telemetry`, in order with
/// the samples, so that every stage sees it before the laps it concerns).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SessionEvent {
    /// The race document (track, cars, laps, seed...) of a simulated or demo race.
    Race {
        session_id: String,
        /// The document, JSON.
        #[schema(value_type = Object)]
        doc: serde_json::Value,
    },
    /// The race length became known.
    TotalLaps { session_id: String, total_laps: u32 },
}

impl SessionEvent {
    pub fn session_id(&self) -> &str {
        match self {
            SessionEvent::Race { session_id, .. } | SessionEvent::TotalLaps { session_id, .. } => {
                session_id
            }
        }
    }

    /// The race length this event gives, if any.
    pub fn total_laps(&self) -> Option<u32> {
        match self {
            SessionEvent::Race { doc, .. } => doc
                .get("total_laps")
                .and_then(|v| v.as_u64())
                .and_then(|n| u32::try_from(n).ok()),
            SessionEvent::TotalLaps { total_laps, .. } => Some(*total_laps),
        }
    }
}

/// A driver's profile after a lap, with where it was learnt (for the store and the API).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProfileUpdate {
    pub session_id: String,
    /// The track the profile belongs to (the session's track, else its id).
    pub track: String,
    #[schema(value_type = Object)]
    pub profile: DriverProfile,
}
