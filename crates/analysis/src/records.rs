//! Laps as the strategy model sees them ([`LapRecord`]), from insights or official timing, and
//! what readies them: neutralised laps inferred from the field's pace, positions from race
//! time, the venue's pit-lane loss where a race has no stop to learn from.

use crate::messages::Insight;
use crate::session::FieldPace;
use std::collections::BTreeMap;
use strategy::LapRecord;

/// A lap number whose field median is this much slower than the race's median lap was run
/// under a full-course yellow (safety cars run at about 60 % pace, i.e. 1.6x the lap time).
pub const YELLOW_FACTOR: f64 = 1.2;

/// Where a session's lap records came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LapSource {
    /// The official timing file (GR Cup import).
    OfficialTiming,
    /// Laps the analysis stored (live, or at the end of `import`, `sim`, `replay`, `analyse`).
    StoredLaps,
    /// Laps cut now from the stored samples.
    Samples,
}

impl LapSource {
    pub fn as_str(self) -> &'static str {
        match self {
            LapSource::OfficialTiming => "official_timing",
            LapSource::StoredLaps => "stored_laps",
            LapSource::Samples => "samples",
        }
    }
}

/// A lap of an insight as the strategy model sees it (`None` without a time, or lap 0).
pub fn lap_record_of(i: &Insight) -> Option<LapRecord> {
    let t = i.lap_time_s.filter(|t| t.is_finite() && *t > 0.0)?;
    (i.lap >= 1).then(|| LapRecord {
        car_id: i.chassis.clone(),
        lap: i.lap,
        lap_time_s: t,
        // The in-lap carries the stop; the out-lap is flagged `pit` too by the lap engine.
        pit: i.validity.pit && !i.validity.out_lap,
        yellow: i.validity.safety_car,
        position: i.position,
        race_time_s: Some(i.t_end_s),
    })
}

/// Whether a timing flag is green (`GF`, `FF`, the chequered flag or none): any other flag
/// neutralises the lap.
pub fn flag_is_green(s: &str) -> bool {
    matches!(
        s.trim().to_ascii_uppercase().as_str(),
        "" | "GF" | "FF" | "GREEN" | "G" | "CHEQUERED" | "CHECKERED" | "FINISH"
    )
}

/// One lap of an official timing file, as far as the strategy model needs it.
#[derive(Debug, Clone)]
pub struct TimedLap {
    pub car_id: String,
    pub lap: u32,
    pub lap_time_s: f64,
    pub pit_in: bool,
    /// The timing's flag at the line was not green (a full-course yellow, a safety car).
    pub yellow: bool,
    pub elapsed_s: Option<f64>,
    /// Sector times, s, where the timing has them.
    pub sector_times_s: [Option<f64>; 3],
}

/// Lap records of official timing (no inference: the timing carries flags and pit marks).
pub fn records_of_timing(laps: &[TimedLap]) -> Vec<LapRecord> {
    laps.iter()
        .filter(|l| l.lap >= 1 && l.lap_time_s.is_finite() && l.lap_time_s > 0.0)
        .map(|l| LapRecord {
            car_id: l.car_id.clone(),
            lap: l.lap,
            lap_time_s: l.lap_time_s,
            pit: l.pit_in,
            yellow: l.yellow,
            position: None,
            race_time_s: l.elapsed_s,
        })
        .collect()
}

/// Lap records of insights, readied for the strategy model ([`prepare_records`]).
pub fn records_of_insights<'a>(insights: impl IntoIterator<Item = &'a Insight>) -> Vec<LapRecord> {
    let mut recs: Vec<LapRecord> = insights.into_iter().filter_map(lap_record_of).collect();
    prepare_records(&mut recs);
    recs
}

/// Readies telemetry-cut lap records for the strategy model: telemetry carries no flag, so a
/// lap the whole field ran far slower was neutralised; positions come from race time.
pub fn prepare_records(recs: &mut [LapRecord]) {
    strategy::infer_yellow_laps(recs, YELLOW_FACTOR);
    positions_from_race_time(recs);
}

/// Sets each lap's position from the order in which the cars finished that lap (race time
/// at its end): a source's own position field is sampled at an arbitrary instant of the lap.
pub fn positions_from_race_time(recs: &mut [LapRecord]) {
    let mut by_lap: BTreeMap<u32, Vec<(f64, usize)>> = BTreeMap::new();
    for (i, r) in recs.iter().enumerate() {
        if let Some(t) = r.race_time_s.filter(|t| t.is_finite()) {
            by_lap.entry(r.lap).or_default().push((t, i));
        }
    }
    for v in by_lap.values_mut() {
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (k, &(_, i)) in v.iter().enumerate() {
            if let Some(r) = recs.get_mut(i) {
                r.position = Some(k as u32 + 1);
            }
        }
    }
}

/// Marks the laps the whole field ran far slower (a safety car: telemetry carries no flag)
/// as safety-car laps, so that no pace baseline counts them, and the restart lap after each
/// safety-car period too (judged on the whole session, as a stored session allows).
pub fn mark_safety_car_laps(insights: &mut [Insight]) {
    let mut field = FieldPace::default();
    for l in insights.iter() {
        field.add(l.lap, l.lap_time_s, l.validity.pit);
    }
    let neutralised = field.neutralised_laps();
    for l in insights.iter_mut() {
        l.validity.safety_car |= neutralised.contains(&l.lap);
    }
}

/// Where a race has no stop to learn from, the pit-lane loss of its venue (the official track
/// map's lane time less the bypassed track at the race's pace; `tracks::Venue::pit_loss_s`),
/// with the SC and VSC losses kept in the same proportion. Returns whether it was applied.
pub fn venue_pit_prior(
    params: &mut strategy::RaceParams,
    fitted: &strategy::FittedRace,
    track: Option<&str>,
) -> bool {
    if fitted.pit_stop_cost_s.is_some() {
        return false;
    }
    let Some(loss) = track
        .and_then(tracks::venue)
        .and_then(|v| v.pit_loss_s(params.track.base_lap_time_s))
    else {
        return false;
    };
    let green = params.pit.lane_loss_green_s.max(1e-9);
    params.pit.lane_loss_sc_s *= loss / green;
    params.pit.lane_loss_vsc_s *= loss / green;
    params.pit.lane_loss_green_s = loss;
    true
}

/// The laps of a session's samples as the lap engines cut them (cars in any order, each in
/// time order), open last laps closed, in (car, lap) order, with the neutralised laps of the
/// whole session marked as safety-car laps: the input of tyre-model training and evaluation.
pub fn cut_laps(
    track: Option<&str>,
    samples: impl IntoIterator<Item = telemetry::Sample>,
) -> Vec<laps::LapSummary> {
    let mut engines: std::collections::HashMap<std::sync::Arc<str>, laps::LapEngine> =
        std::collections::HashMap::new();
    let mut out = Vec::new();
    for s in samples {
        let e = engines.entry(s.car_id.clone()).or_insert_with(|| {
            laps::LapEngine::new(crate::session::engine_config(track.or(s.track.as_deref())))
        });
        if let Some(l) = e.push(&s) {
            out.push(l);
        }
    }
    out.extend(engines.values_mut().filter_map(|e| e.flush()));
    out.sort_by(|a, b| (&a.car_id, a.lap).cmp(&(&b.car_id, b.lap)));
    let mut field = FieldPace::default();
    for l in &out {
        field.add(l.lap, l.lap_time_s, l.validity.pit);
    }
    let neutralised = field.neutralised_laps();
    for l in &mut out {
        l.validity.safety_car |= neutralised.contains(&l.lap);
    }
    out
}
