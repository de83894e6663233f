//! The one recommendation of an insight: the tyre view (when the tyres cross +0.5 s a lap and
//! what they lose to the flag) and the race view (the Monte Carlo's window, which knows what a
//! stop costs and what the rivals do) reconciled into one call with its reason.
//!
//! The race view decides when it is there, because it weighs the stop's cost against the tyre
//! loss and the traffic; the call says why the tyre view's own lap is or is not followed.

use crate::messages::{Action, Call, Insight, PitWindow};

/// Sets `insight.pit_window` to `window` and makes the call again.
pub fn reconcile(insight: &mut Insight, window: PitWindow, total_laps: Option<u32>) {
    insight.call = Some(make_call(insight, &window, total_laps));
    insight.pit_window = Some(window);
}

/// The lap at which the tyres cross +0.5 s a lap (from the tyre view), if they do.
fn tyres_cross_lap(insight: &Insight) -> Option<u32> {
    insight.tire.recommended_pit_lap.or_else(|| {
        insight
            .tire
            .laps_until_0_5s_loss
            .map(|n| insight.lap.saturating_add(n))
    })
}

/// Time the tyres lose from the next lap to the flag, s: the predicted loss of the next lap,
/// growing at the rate that takes it to 0.5 s when the model says it gets there.
fn tyre_loss_to_flag_s(insight: &Insight, laps_left: u32) -> Option<f64> {
    let now = insight.tire.predicted_loss_per_lap_seconds?;
    if !now.is_finite() {
        return None;
    }
    let now = now.max(0.0);
    let slope = match insight.tire.laps_until_0_5s_loss {
        Some(n) if n > 1 && now < 0.5 => (0.5 - now) / f64::from(n - 1),
        _ => 0.0,
    };
    let n = f64::from(laps_left);
    Some(now * n + slope * n * (n - 1.0) / 2.0)
}

fn make_call(insight: &Insight, window: &PitWindow, total_laps: Option<u32>) -> Call {
    let laps_left = total_laps.map(|t| t.saturating_sub(insight.lap));
    let cross = tyres_cross_lap(insight).filter(|&c| total_laps.is_none_or(|t| c <= t));
    let loss = laps_left.and_then(|n| tyre_loss_to_flag_s(insight, n));
    let cost = window.pit_loss_s;
    let mut call = Call {
        action: Action::Wait,
        window: None,
        text: String::new(),
        tyres_cross_lap: cross,
        tyre_loss_to_flag_s: loss,
        stop_cost_s: cost,
    };
    let tyre_part = match (cross, loss) {
        (Some(c), Some(l)) => format!("tyres cross +0.5 s at L{c} and lose {l:.1} s to the flag"),
        (Some(c), None) => format!("tyres cross +0.5 s at L{c}"),
        (None, Some(l)) => format!("tyres last to the flag, losing {l:.1} s"),
        (None, None) if insight.tire.is_present() => "tyres last to the flag".to_string(),
        (None, None) => String::new(),
    };
    let cost_part = cost
        .map(|c| format!("a stop costs {c:.0} s"))
        .unwrap_or_default();
    if window.is_ready() {
        match (window.open_lap, window.close_lap) {
            (Some(open), Some(close)) => {
                call.action = Action::Box;
                call.window = Some([open, close]);
                let head = if open == close {
                    format!("Box at the end of L{open}")
                } else {
                    format!("Box between L{open} and L{close}")
                };
                let why = match (tyre_part.is_empty(), cost_part.is_empty()) {
                    (false, false) => format!(": {tyre_part}, more than the {cost_part} there"),
                    (false, true) => format!(": {tyre_part}"),
                    _ => format!(": {}", window.text),
                };
                call.text = format!("{head}{why}.");
            }
            _ => {
                call.action = Action::StayOut;
                call.text = match (cross, cost, loss) {
                    (Some(c), Some(k), Some(l)) => format!(
                        "Tyres cross +0.5 s at L{c}, but a stop costs {k:.0} s and the tyres lose {l:.1} s to the flag: stay out."
                    ),
                    (Some(c), _, _) => format!(
                        "Tyres cross +0.5 s at L{c}, but no stop beats staying out: stay out."
                    ),
                    _ if !tyre_part.is_empty() => {
                        format!("Stay out: {tyre_part}; no stop beats staying out.")
                    }
                    _ => "Stay out: no stop beats staying out.".to_string(),
                };
            }
        }
        return call;
    }
    // No race view yet: say what the tyres alone say, and why there is no race view.
    let reason = window
        .reason
        .clone()
        .unwrap_or_else(|| "the race view is not ready".to_string());
    match (total_laps, insight.tire.tire_pit_window, cross) {
        (None, Some(w), Some(c)) => {
            call.action = Action::Box;
            call.window = Some([w.open_lap, w.close_lap]);
            call.text = format!(
                "Tyres cross +0.5 s at L{c}: box between L{} and L{} (tyres only: {reason}).",
                w.open_lap, w.close_lap
            );
        }
        _ if !tyre_part.is_empty() => {
            call.text = format!("Wait: {tyre_part}; {reason}.");
        }
        _ => call.text = format!("Wait: {reason}."),
    }
    call
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{SectorStress, TireInsight, Validity, WindowStatus};

    fn insight(lap: u32, loss: f64, until: u32) -> Insight {
        Insight {
            chassis: "7".into(),
            track: None,
            session_id: "s".into(),
            lap,
            revision: 0,
            lap_time_s: Some(100.0),
            best_lap_time_s: Some(100.0),
            sector_times_s: [None; 3],
            validity: Validity::default(),
            t_start_s: 0.0,
            t_end_s: 100.0,
            position: Some(3),
            lap_tire_stress: 0.0,
            per_sector_stress: SectorStress::default(),
            tyre_age_laps: lap,
            tyre_compound: None,
            fuel_kg: None,
            tire_wear_source: None,
            features: laps::LapFeatures::default(),
            gaps: None,
            tire: TireInsight {
                tire_wear: Some(Default::default()),
                predicted_loss_per_lap_seconds: Some(loss),
                laps_until_0_5s_loss: Some(until),
                recommended_pit_lap: Some(lap + until),
                ..TireInsight::default()
            },
            pit_window: None,
            call: None,
        }
    }

    fn window(open: Option<u32>, cost: f64) -> PitWindow {
        PitWindow {
            status: WindowStatus::Ready,
            open_lap: open,
            close_lap: open.map(|o| o + 2),
            pit_loss_s: Some(cost),
            text: "Stay out".into(),
            ..PitWindow::default()
        }
    }

    #[test]
    fn stay_out_when_the_race_view_finds_no_stop_says_why_the_tyre_lap_is_not_followed() {
        let mut i = insight(8, 0.2, 4);
        reconcile(&mut i, window(None, 23.0), Some(15));
        let c = i.call.clone().unwrap_or_else(|| panic!("no call"));
        assert_eq!(c.action, Action::StayOut);
        assert_eq!(c.tyres_cross_lap, Some(12));
        // 7 laps left: 0.2 s growing by 0.1 s a lap: 0.2*7 + 0.1*21 = 3.5 s.
        let loss = c.tyre_loss_to_flag_s.unwrap_or(f64::NAN);
        assert!((loss - 3.5).abs() < 1e-9, "{loss}");
        assert!(c.text.contains("L12") && c.text.contains("23 s") && c.text.contains("stay out"));
        assert!(i.pit_window.is_some_and(|w| w.is_ready()));
    }

    #[test]
    fn box_when_the_race_view_has_a_window() {
        let mut i = insight(8, 0.4, 2);
        reconcile(&mut i, window(Some(10), 20.0), Some(30));
        let c = i.call.unwrap_or_else(|| panic!("no call"));
        assert_eq!(c.action, Action::Box);
        assert_eq!(c.window, Some([10, 12]));
        assert!(c.text.starts_with("Box between L10 and L12"), "{}", c.text);
    }

    #[test]
    fn a_tyre_crossing_after_the_flag_is_no_crossing() {
        let mut i = insight(8, 0.1, 20);
        reconcile(&mut i, window(None, 20.0), Some(12));
        let c = i.call.unwrap_or_else(|| panic!("no call"));
        assert_eq!(c.tyres_cross_lap, None);
        assert_eq!(c.action, Action::StayOut);
    }

    #[test]
    fn waits_without_a_race_view() {
        let mut i = insight(3, 0.1, 10);
        reconcile(
            &mut i,
            PitWindow::pending(WindowStatus::Computing, "being simulated"),
            Some(30),
        );
        let c = i.call.unwrap_or_else(|| panic!("no call"));
        assert_eq!(c.action, Action::Wait);
        assert!(c.text.contains("being simulated"), "{}", c.text);
    }
}
