//! One session's analysis, fed sample by sample: race order, a lap engine per car, field pace
//! (neutralised laps), the tyre tracker and the coach. Every completed lap becomes an
//! [`Insight`] (and, when the race length is known, a [`StrategyJob`] for its pit window);
//! the coach's alerts and profiles come out beside it.
//!
//! The live stage and the offline pass ([`crate::offline`]) run this same code, so a stored
//! session gets exactly what streaming it live gives.

use crate::call;
use crate::messages::{
    CoachingAlert, DriverProfile, Insight, PitWindow, SectorStress, SessionEvent, TireInsight,
    WindowStatus,
};
use crate::records::{self, YELLOW_FACTOR};
use crate::window::StrategyJob;
use laps::{Gaps, LapEngine, LapEngineConfig, LapSummary, RaceOrder, RaceOrderConfig};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use strategy::LapRecord;
use telemetry::Sample;

/// What the analysis of a session is asked to do.
#[derive(Clone, Copy, Default)]
pub struct AnalysisOptions {
    /// Predict tyre wear and loss at every lap with this model.
    pub tire_model: Option<&'static tires::TireModel>,
    /// Learn each driver's baseline and raise alerts.
    pub coach: bool,
}

/// What a completed lap produced.
#[derive(Debug, Clone)]
pub struct LapDone {
    /// The lap's insight, revision 0 (its pit window is the car's latest, or pending).
    pub insight: Insight,
    /// The driver's profile after this lap (with the coach).
    pub profile: Option<DriverProfile>,
    /// The pit-window computation this lap calls for (when the race length is known).
    pub job: Option<StrategyJob>,
}

/// An output of the analysis.
#[derive(Debug, Clone)]
pub enum Output {
    Lap(Box<LapDone>),
    Alert(Box<CoachingAlert>),
}

struct CarAnalysis {
    engine: LapEngine,
    best_lap_time_s: Option<f64>,
    tire: Option<tires::TireTracker<'static>>,
    /// The car's latest ready pit window.
    window: Option<PitWindow>,
}

/// Lap times of the whole field by lap number, to tell which laps were neutralised (telemetry
/// carries no safety-car flag): a lap number the field ran far slower (the rule of
/// [`strategy::infer_yellow_laps`]), and the restart lap after it, which starts at safety-car
/// pace behind a bunched field. Live it judges on the laps completed so far.
#[derive(Default)]
pub(crate) struct FieldPace {
    by_lap: BTreeMap<u32, Vec<f64>>,
}

impl FieldPace {
    pub(crate) fn add(&mut self, lap: u32, lap_time_s: Option<f64>, pit: bool) {
        if let Some(t) = lap_time_s.filter(|t| lap >= 1 && t.is_finite() && *t > 0.0 && !pit) {
            self.by_lap.entry(lap).or_default().push(t);
        }
    }

    /// The lap numbers neutralised so far: behind the safety car, or the restart after it.
    pub(crate) fn neutralised_laps(&self) -> BTreeSet<u32> {
        let yellow = strategy::yellow_lap_numbers(&self.by_lap, YELLOW_FACTOR);
        yellow.iter().flat_map(|&l| [l, l + 1]).collect()
    }

    /// Whether lap `lap` was neutralised, as far as the field shows so far.
    pub(crate) fn neutralised(&self, lap: u32) -> bool {
        self.neutralised_laps().contains(&lap)
    }
}

/// The analysis of one session.
pub struct SessionAnalysis {
    session_id: Arc<str>,
    track: Option<Arc<str>>,
    order: RaceOrder,
    cars: HashMap<Arc<str>, CarAnalysis>,
    coach: Option<coach::Coach>,
    tire_model: Option<&'static tires::TireModel>,
    /// Sources that report tyre wear (the F1 game, the simulator): the reported-wear predictor
    /// serves their laps, the tyre model's physics as its prior.
    reported_wear: Option<tires::ReportedWearPredictor>,
    field: FieldPace,
    total_laps: Option<u32>,
    /// Every completed lap as the strategy model sees it.
    records: Vec<LapRecord>,
}

impl SessionAnalysis {
    pub fn new(
        session_id: Arc<str>,
        track: Option<Arc<str>>,
        opts: AnalysisOptions,
    ) -> SessionAnalysis {
        let order = RaceOrder::new(RaceOrderConfig {
            track_length_m: track.as_deref().and_then(tracks::geometry).map(|g| g.0),
            ..RaceOrderConfig::default()
        });
        SessionAnalysis {
            session_id,
            track,
            order,
            cars: HashMap::new(),
            coach: opts
                .coach
                .then(|| coach::Coach::new(coach::CoachConfig::default())),
            tire_model: opts.tire_model,
            reported_wear: None,
            field: FieldPace::default(),
            total_laps: None,
            records: Vec::new(),
        }
    }

    pub fn session_id(&self) -> &Arc<str> {
        &self.session_id
    }

    pub fn track(&self) -> Option<&Arc<str>> {
        self.track.as_ref()
    }

    /// The race length, when a session event gave it.
    pub fn total_laps(&self) -> Option<u32> {
        self.total_laps
    }

    /// Sets the race length (a [`SessionEvent`], or the last lap of a stored session).
    pub fn set_total_laps(&mut self, total_laps: Option<u32>) {
        self.total_laps = total_laps;
    }

    /// Takes what a session event says (the race length).
    pub fn on_event(&mut self, e: &SessionEvent) {
        if let Some(n) = e.total_laps() {
            self.total_laps = Some(n);
        }
    }

    /// Every completed lap so far as the strategy model sees it.
    pub fn records(&self) -> &[LapRecord] {
        &self.records
    }

    /// A driver's current profile (with the coach).
    pub fn profile(&self, car: &str) -> Option<DriverProfile> {
        self.coach.as_ref()?.profile(car)
    }

    /// Remembers a car's newest ready window: later laps carry it until their own arrives.
    pub fn set_window(&mut self, car: &str, window: &PitWindow) {
        if window.is_ready() {
            if let Some(c) = self.cars.get_mut(car) {
                c.window = Some(window.clone());
            }
        }
    }

    /// Feeds one sample; what it completed goes to `out`.
    pub fn push(&mut self, s: &Sample, out: &mut Vec<Output>) {
        self.order.update(s);
        if let Some(c) = self.coach.as_mut() {
            out.extend(c.push(s).into_iter().map(|a| Output::Alert(Box::new(a))));
        }
        let track = self.track.clone();
        let car = self
            .cars
            .entry(s.car_id.clone())
            .or_insert_with(|| CarAnalysis {
                engine: LapEngine::new(engine_config(track.as_deref().or(s.track.as_deref()))),
                best_lap_time_s: None,
                tire: None,
                window: None,
            });
        if let Some(summary) = car.engine.push(s) {
            self.close_lap(summary, out);
        }
    }

    /// Closes every car's open lap (end of a stored session).
    pub fn flush(&mut self, out: &mut Vec<Output>) {
        let mut open = Vec::new();
        for c in self.cars.values_mut() {
            if let Some(s) = c.engine.flush() {
                open.push(s);
            }
        }
        open.sort_by(|a, b| (&a.car_id, a.lap).cmp(&(&b.car_id, b.lap)));
        // The coach does not judge these: a lap closed by the end of the data is not a lap
        // the car completed (live, it would never close), so the profile stays as it was.
        for s in open {
            let done = self.finish(s);
            out.push(Output::Lap(Box::new(done)));
        }
    }

    /// A lap the engine closed: the coach closes it too (its baseline takes the laps the
    /// engine judges clean), then the lap's insight.
    fn close_lap(&mut self, summary: LapSummary, out: &mut Vec<Output>) {
        if let Some(c) = self.coach.as_mut() {
            out.extend(
                c.on_lap(&summary)
                    .into_iter()
                    .map(|a| Output::Alert(Box::new(a))),
            );
        }
        let done = self.finish(summary);
        out.push(Output::Lap(Box::new(done)));
    }

    fn finish(&mut self, summary: LapSummary) -> LapDone {
        let gaps = self.order.gaps(&summary.car_id);
        let model = self.tire_model;
        self.field
            .add(summary.lap, summary.lap_time_s, summary.validity.pit);
        let neutralised = model.is_some() && self.field.neutralised(summary.lap);
        let (best, tire, window) = match self.cars.get_mut(&summary.car_id) {
            Some(c) => {
                if summary.validity.is_clean() {
                    if let Some(t) = summary.lap_time_s {
                        c.best_lap_time_s = Some(c.best_lap_time_s.map_or(t, |b| b.min(t)));
                    }
                }
                let tire = model.map(|m| {
                    let t = c.tire.get_or_insert_with(|| tires::TireTracker::new(m));
                    let mut row = tires::TireLap::from_summary(&summary);
                    row.validity.safety_car |= neutralised;
                    t.on_lap(&row)
                });
                (c.best_lap_time_s, tire, c.window.clone())
            }
            None => (None, None, None),
        };
        let mut tire = tire
            .map(|t| TireInsight::from_state(&t, model.map(|m| m.model_version.clone())))
            .unwrap_or_default();
        if let Some(m) = model.filter(|_| summary.tyre_wear_pct_end.is_some()) {
            let mut row = tires::TireLap::from_summary(&summary);
            row.validity.safety_car |= neutralised;
            if let Some(log) = tires::LapLog::from_row(&row) {
                let w = self.reported_wear.get_or_insert_with(|| {
                    tires::ReportedWearPredictor::new(tires::WearConfig::with_physics(
                        &m.pace_physics,
                    ))
                });
                w.on_lap(&log);
                if let Some(p) = w.predict(&summary.car_id, 1) {
                    tire.use_reported_wear(&p);
                }
            }
        }
        let mut insight = insight_of(&summary, gaps, best, tire);
        if let (Some(total), Some(p)) = (self.total_laps, insight.tire.recommended_pit_lap) {
            // The tyre model does not know the race length: a pit lap after the flag means
            // the tyres last to the end.
            if p > total {
                insight.tire.recommended_pit_lap = None;
                insight.tire.tire_pit_note = Some(format!(
                    "the tyres last to the flag (lap {total}): no stop needed for them"
                ));
            }
        }
        let window = window.unwrap_or_else(|| match self.total_laps {
            Some(_) => PitWindow::pending(
                WindowStatus::Computing,
                "the first window of this car is being simulated",
            ),
            None => PitWindow::pending(
                WindowStatus::NotEnoughData,
                "the race length is not known: no pit window",
            ),
        });
        call::reconcile(&mut insight, window, self.total_laps);
        if let Some(r) = records::lap_record_of(&insight) {
            self.records.push(r);
        }
        let profile = self.profile(&summary.car_id);
        let job = self.total_laps.map(|total_laps| StrategyJob {
            total_laps,
            records: self.records.clone(),
            insight: insight.clone(),
            pace: Vec::new(),
        });
        LapDone {
            insight,
            profile,
            job,
        }
    }
}

pub(crate) fn engine_config(track: Option<&str>) -> LapEngineConfig {
    let mut cfg = LapEngineConfig::default();
    if let Some((len, b)) = track.and_then(tracks::geometry) {
        cfg.track_length_m = Some(len);
        cfg.sector_bounds_m = b.to_vec();
    }
    cfg
}

/// The insight of one lap (revision 0, no pit window yet).
pub fn insight_of(
    s: &LapSummary,
    gaps: Option<Gaps>,
    best_lap_time_s: Option<f64>,
    tire: TireInsight,
) -> Insight {
    let stress = s.per_sector_stress;
    Insight {
        chassis: s.car_id.to_string(),
        track: s.track.as_deref().map(str::to_string),
        session_id: s.session_id.to_string(),
        lap: s.lap,
        revision: 0,
        lap_time_s: s.lap_time_s,
        best_lap_time_s,
        sector_times_s: s.sector_times_s,
        validity: s.validity.into(),
        t_start_s: s.t_start_s,
        t_end_s: s.t_end_s,
        position: gaps
            .as_ref()
            .map(|g| g.position)
            .or(s.position.map(u32::from)),
        lap_tire_stress: stress.iter().sum(),
        per_sector_stress: SectorStress {
            s0: stress[0],
            s1: stress[1],
            s2: stress[2],
        },
        tyre_age_laps: s.tyre_age_laps,
        tyre_compound: s.tyre_compound.as_deref().map(str::to_string),
        fuel_kg: s.fuel_kg,
        tire_wear_source: s.tyre_wear_pct_end.map(Into::into),
        features: s.features,
        gaps,
        tire,
        pit_window: None,
        call: None,
    }
}

#[cfg(test)]
mod tests {
    use super::FieldPace;

    #[test]
    fn field_pace_flags_safety_car_laps_and_the_restart_as_they_complete() {
        let mut f = FieldPace::default();
        for lap in 1..=4 {
            for car in 0..3 {
                f.add(lap, Some(100.0 + car as f64 * 0.3), false);
            }
            assert!(!f.neutralised(lap), "lap {lap}");
        }
        f.add(5, Some(165.0), false);
        assert!(f.neutralised(5));
        f.add(5, Some(166.0), false);
        f.add(5, Some(164.0), false);
        f.add(6, Some(102.0), false);
        assert!(f.neutralised(6), "the restart lap is not a green lap");
        f.add(7, Some(100.1), false);
        assert!(!f.neutralised(7));
        f.add(8, Some(400.0), true);
        f.add(8, None, false);
        assert!(!f.neutralised(8));
    }

    #[test]
    fn field_pace_needs_three_lap_numbers_before_it_judges() {
        let mut f = FieldPace::default();
        f.add(1, Some(100.0), false);
        f.add(2, Some(300.0), false);
        assert!(!f.neutralised(2));
    }
}
