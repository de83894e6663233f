//! Decoding of the JSON ingest shape: one object, an array of objects, or NDJSON.
//!
//! Field names: PitWall's own (`speed_kmh`, `accx_g`, ...) and the seed's / GR Cup's
//! (`chassis`, `lapdist_m`, `accx_can`, `pbrake_f`, `Steering_Angle`, `nmot`, `aps`, ...).
//! `NaN` and `Infinity` spelled bare in a body are not JSON; they are read anyway so that the
//! point carrying them is rejected by name while its neighbours are kept.

use crate::sample::{Corners, PitStatus, Sample};
use crate::validate::{validate, Rejection};
use serde_json::{Map, Value};
use std::sync::Arc;

/// A body that cannot be read at all (HTTP 400).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BodyError {
    #[error("body is not valid UTF-8 (first bad byte at offset {offset})")]
    NotUtf8 { offset: usize },
    #[error("body is empty: send a JSON object, an array of objects, or NDJSON")]
    Empty,
    #[error("body is not valid JSON at line {line}, column {column}: {message}")]
    Unparseable {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("body must be a JSON object or an array of objects, found {found}")]
    WrongShape { found: &'static str },
}

impl BodyError {
    /// The error's code, the same for every source: the `error` of HTTP's 400 answer and the
    /// `reason` label of the metrics that count refused bodies and datagrams. Part of the
    /// public API: clients and dashboards match on these.
    pub fn code(&self) -> &'static str {
        match self {
            BodyError::NotUtf8 { .. } => "not_utf8",
            BodyError::Empty => "empty_body",
            BodyError::WrongShape { .. } => "wrong_shape",
            BodyError::Unparseable { .. } => "invalid_json",
        }
    }
}

/// The points of a body: each either a sample or the reasons it was refused.
#[derive(Debug, Default)]
pub struct ParsedBatch {
    pub samples: Vec<(usize, Sample)>,
    pub rejected: Vec<(usize, Rejection)>,
    pub total: usize,
}

impl ParsedBatch {
    fn push(&mut self, index: usize, r: Result<Sample, Vec<Rejection>>) {
        self.total += 1;
        match r {
            Ok(s) => self.samples.push((index, s)),
            Err(rs) => self.rejected.extend(rs.into_iter().map(|r| (index, r))),
        }
    }
    /// Validates samples built in process (F1 decoder, replay, simulator) into a batch, as
    /// [`parse_body`] does for a body: the `index` of a point is its position in `samples`.
    pub fn from_samples(samples: impl IntoIterator<Item = Sample>) -> ParsedBatch {
        let mut batch = ParsedBatch::default();
        for (index, s) in samples.into_iter().enumerate() {
            let errs = validate(&s);
            batch.push(index, if errs.is_empty() { Ok(s) } else { Err(errs) });
        }
        batch
    }

    /// Number of distinct points refused.
    pub fn rejected_points(&self) -> usize {
        self.total - self.samples.len()
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Replaces bare `NaN`, `Infinity` and `-Infinity` tokens outside strings by quoted strings.
fn quote_non_finite(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len() + 16);
    let mut in_str = false;
    let mut esc = false;
    let mut i = 0;
    let mut changed = false;
    let mut last = 0;
    while i < b.len() {
        let c = b[i];
        if in_str {
            if esc {
                esc = false;
            } else if c == b'\\' {
                esc = true;
            } else if c == b'"' {
                in_str = false;
            }
            i += 1;
            continue;
        }
        if c == b'"' {
            in_str = true;
            i += 1;
            continue;
        }
        let tok = ["-Infinity", "Infinity", "NaN"]
            .into_iter()
            .find(|t| b[i..].starts_with(t.as_bytes()));
        match tok {
            Some(tok) => {
                out.push_str(&text[last..i]);
                out.push('"');
                out.push_str(tok);
                out.push('"');
                i += tok.len();
                last = i;
                changed = true;
            }
            None => i += 1,
        }
    }
    if !changed {
        return None;
    }
    out.push_str(&text[last..]);
    Some(out)
}

fn parse_json(text: &str) -> Result<Value, serde_json::Error> {
    match serde_json::from_str::<Value>(text) {
        Ok(v) => Ok(v),
        Err(e) => match quote_non_finite(text) {
            Some(fixed) => serde_json::from_str::<Value>(&fixed).map_err(|_| e),
            None => Err(e),
        },
    }
}

/// Parses a request or datagram body. `ndjson` forces newline-delimited reading; otherwise a
/// body that is not one JSON document but whose lines are is read as NDJSON.
/// `now_unix_s` stamps points that carry no time of their own.
pub fn parse_body(bytes: &[u8], ndjson: bool, now_unix_s: f64) -> Result<ParsedBatch, BodyError> {
    let text = std::str::from_utf8(bytes).map_err(|e| BodyError::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    let text = text.trim_start_matches('\u{feff}');
    if text.trim().is_empty() {
        return Err(BodyError::Empty);
    }
    if !ndjson {
        match parse_json(text) {
            Ok(v) => return batch_from_value(v, now_unix_s),
            Err(e) => {
                let lines = text.lines().filter(|l| !l.trim().is_empty()).count();
                let first_ok = text
                    .lines()
                    .find(|l| !l.trim().is_empty())
                    .map(|l| matches!(parse_json(l), Ok(Value::Object(_))))
                    .unwrap_or(false);
                if !(lines > 1 && first_ok) {
                    return Err(BodyError::Unparseable {
                        line: e.line(),
                        column: e.column(),
                        message: e.to_string(),
                    });
                }
            }
        }
    }
    let mut batch = ParsedBatch::default();
    for (index, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let r = match parse_json(line) {
            Ok(Value::Object(m)) => parse_point(&m, now_unix_s),
            Ok(other) => Err(vec![Rejection::new(
                "(point)",
                format!("expected a JSON object, found {}", kind(&other)),
            )]),
            Err(e) => Err(vec![Rejection::new(
                "(point)",
                format!("line is not valid JSON: {e}"),
            )]),
        };
        batch.push(index, r);
    }
    Ok(batch)
}

fn batch_from_value(v: Value, now_unix_s: f64) -> Result<ParsedBatch, BodyError> {
    let mut batch = ParsedBatch::default();
    match v {
        Value::Object(m) => batch.push(0, parse_point(&m, now_unix_s)),
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                let r = match item {
                    Value::Object(m) => parse_point(m, now_unix_s),
                    other => Err(vec![Rejection::new(
                        "(point)",
                        format!("expected a JSON object, found {}", kind(other)),
                    )]),
                };
                batch.push(index, r);
            }
        }
        other => {
            return Err(BodyError::WrongShape {
                found: kind(&other),
            })
        }
    }
    Ok(batch)
}

/// Reads one JSON value that is an object into a validated sample.
pub fn parse_value(v: &Value, now_unix_s: f64) -> Result<Sample, Vec<Rejection>> {
    match v {
        Value::Object(m) => parse_point(m, now_unix_s),
        other => Err(vec![Rejection::new(
            "(point)",
            format!("expected a JSON object, found {}", kind(other)),
        )]),
    }
}

struct Reader<'a> {
    errs: &'a mut Vec<Rejection>,
}

impl Reader<'_> {
    /// A channel under one of its names, checked against the range of its canonical name
    /// (so that a bad value is refused even when an alias later in the object is good).
    fn chan(&mut self, canonical: &str, key: &str, v: &Value) -> Option<f64> {
        let x = self.num(key, v)?;
        match crate::validate::check_range(canonical, x) {
            Some(r) => {
                self.errs.push(r);
                None
            }
            None => Some(x),
        }
    }

    fn num(&mut self, field: &str, v: &Value) -> Option<f64> {
        match v {
            Value::Null => None,
            Value::Number(n) => match n.as_f64() {
                Some(x) => Some(x),
                None => {
                    self.errs
                        .push(Rejection::new(field, "number cannot be represented"));
                    None
                }
            },
            Value::String(s) if matches!(s.as_str(), "NaN" | "Infinity" | "-Infinity") => {
                self.errs
                    .push(Rejection::new(field, format!("{s} is not a finite number")));
                None
            }
            other => {
                self.errs.push(Rejection::new(
                    field,
                    format!("expected a number, found {}", kind(other)),
                ));
                None
            }
        }
    }

    fn int(&mut self, field: &str, v: &Value, lo: i64, hi: i64) -> Option<i64> {
        let x = self.num(field, v)?;
        if !x.is_finite() || x.fract() != 0.0 {
            self.errs.push(Rejection::new(
                field,
                format!("expected a whole number, found {x}"),
            ));
            return None;
        }
        if x < lo as f64 || x > hi as f64 {
            self.errs.push(Rejection::new(
                field,
                format!("{x} is outside the plausible range {lo}..={hi}"),
            ));
            return None;
        }
        Some(x as i64)
    }

    /// An id: a non-blank string, or a number written as text.
    fn id(&mut self, field: &str, v: &Value) -> Option<Arc<str>> {
        if v.is_null() {
            self.errs.push(Rejection::new(
                field,
                "null: give an id or leave the field out",
            ));
            return None;
        }
        let t = self.text(field, v)?;
        if !crate::validate::is_usable_id(&t) {
            self.errs.push(Rejection::new(
                field,
                "not a usable id: give at least one letter or digit, or leave the field out",
            ));
            return None;
        }
        Some(t)
    }

    fn text(&mut self, field: &str, v: &Value) -> Option<Arc<str>> {
        match v {
            Value::Null => None,
            Value::String(s) => Some(Arc::from(s.trim())),
            Value::Number(n) => Some(Arc::from(n.to_string())),
            other => {
                self.errs.push(Rejection::new(
                    field,
                    format!("expected a string, found {}", kind(other)),
                ));
                None
            }
        }
    }

    fn time(&mut self, field: &str, v: &Value) -> Option<f64> {
        match v {
            Value::String(s) => {
                match time::OffsetDateTime::parse(
                    s.trim(),
                    &time::format_description::well_known::Rfc3339,
                ) {
                    Ok(t) => Some(t.unix_timestamp_nanos() as f64 / 1e9),
                    Err(e) => {
                        self.errs.push(Rejection::new(
                            field,
                            format!("expected a number of seconds or an RFC 3339 time: {e}"),
                        ));
                        None
                    }
                }
            }
            other => self.num(field, other),
        }
    }

    /// A number that must be present (a corner of a per-wheel value).
    fn req_num(&mut self, field: &str, v: &Value) -> Option<f64> {
        if v.is_null() {
            self.errs.push(Rejection::new(
                field,
                "missing corner: give all four numbers",
            ));
            return None;
        }
        self.num(field, v)
    }

    fn corners(&mut self, field: &str, v: &Value) -> Option<Corners<f64>> {
        match v {
            Value::Null => None,
            Value::Array(a) if a.len() == 4 => {
                let mut out = [0.0; 4];
                for (i, x) in a.iter().enumerate() {
                    out[i] = self.req_num(&format!("{field}[{i}]"), x)?;
                }
                Some(Corners::from_array(out))
            }
            Value::Object(m) => {
                let mut out = [0.0; 4];
                for (i, k) in ["fl", "fr", "rl", "rr"].iter().enumerate() {
                    match m.get(*k) {
                        Some(x) => out[i] = self.req_num(&format!("{field}.{k}"), x)?,
                        None => {
                            self.errs.push(Rejection::new(
                                format!("{field}.{k}"),
                                "missing corner: give fl, fr, rl and rr",
                            ));
                            return None;
                        }
                    }
                }
                Some(Corners::from_array(out))
            }
            other => {
                self.errs.push(Rejection::new(
                    field,
                    format!(
                        "expected [fl, fr, rl, rr] or {{fl, fr, rl, rr}}, found {}",
                        kind(other)
                    ),
                ));
                None
            }
        }
    }
}

/// Reads one JSON object into a validated sample, or every reason it cannot be one.
pub fn parse_point(m: &Map<String, Value>, now_unix_s: f64) -> Result<Sample, Vec<Rejection>> {
    let mut errs = Vec::new();
    let mut r = Reader { errs: &mut errs };
    let mut s = Sample::new("", "", f64::NAN);
    let mut session: Option<Arc<str>> = None;
    let mut car: Option<Arc<str>> = None;
    let (mut t_s, mut timestamp, mut meta_time) = (None, None, None);
    for (k, v) in m {
        match k.as_str() {
            "session" | "session_id" => session = r.id(k, v),
            "track" => s.track = r.id(k, v),
            "chassis" | "car_id" | "vehicle_id" | "car" => car = r.id(k, v),
            "t_s" => t_s = r.time(k, v),
            "timestamp" => timestamp = r.time(k, v),
            "meta_time" => meta_time = r.time(k, v),
            "lap" => s.lap = r.int(k, v, 0, 9999).map(|x| x as u32),
            "lap_dist_m" | "lapdist_m" | "Laptrigger_lapdist_dls" => {
                s.lap_dist_m = r.chan("lap_dist_m", k, v)
            }
            "speed_kmh" | "speed" => s.speed_kmh = r.chan("speed_kmh", k, v),
            "accx_g" | "accx_can" => s.accx_g = r.chan("accx_g", k, v),
            "accy_g" | "accy_can" => s.accy_g = r.chan("accy_g", k, v),
            "brake_front_bar" | "pbrake_f" => s.brake_front_bar = r.chan("brake_front_bar", k, v),
            "brake_rear_bar" | "pbrake_r" => s.brake_rear_bar = r.chan("brake_rear_bar", k, v),
            "throttle_pct" | "aps" | "ath" | "throttle" => {
                s.throttle_pct = r.chan("throttle_pct", k, v)
            }
            "brake_pct" => s.brake_pct = r.chan("brake_pct", k, v),
            "steering_deg" | "Steering_Angle" | "steering" => {
                s.steering_deg = r.chan("steering_deg", k, v)
            }
            "rpm" | "nmot" => s.rpm = r.chan("rpm", k, v),
            "gear" => s.gear = r.int(k, v, -1, 10).map(|x| x as i8),
            "lat_deg" | "VBOX_Lat_Min" | "lat" => s.lat_deg = r.chan("lat_deg", k, v),
            "lon_deg" | "VBOX_Long_Minutes" | "lon" => s.lon_deg = r.chan("lon_deg", k, v),
            "position" => s.position = r.int(k, v, 1, 255).map(|x| x as u8),
            "fuel_kg" => s.fuel_kg = r.chan("fuel_kg", k, v),
            "tyre_compound" => s.tyre_compound = r.text(k, v),
            "tyre_age_laps" => s.tyre_age_laps = r.int(k, v, 0, 9999).map(|x| x as u16),
            "pit_status" => {
                s.pit_status = match v {
                    Value::String(x) => match x.as_str() {
                        "none" => Some(PitStatus::None),
                        "pitting" => Some(PitStatus::Pitting),
                        "in_pit_area" => Some(PitStatus::InPitArea),
                        _ => {
                            r.errs.push(Rejection::new(
                                k.as_str(),
                                "expected none, pitting or in_pit_area",
                            ));
                            None
                        }
                    },
                    other => r
                        .int(k, other, 0, 2)
                        .and_then(|c| PitStatus::from_code(c as u8)),
                }
            }
            "tyre_wear_pct" => s.tyre_wear_pct = r.corners(k, v),
            "tyre_temp_c" => s.tyre_temp_c = r.corners(k, v),
            "track_temp_c" => s.track_temp_c = r.chan("track_temp_c", k, v),
            "air_temp_c" => s.air_temp_c = r.chan("air_temp_c", k, v),
            _ => {}
        }
    }
    s.session_id = match (session, &s.track) {
        (Some(x), _) if !x.is_empty() => x,
        (_, Some(t)) => t.clone(),
        _ => Arc::from(""),
    };
    s.car_id = car.unwrap_or_else(|| Arc::from(""));
    s.t_s = t_s.or(timestamp).or(meta_time).unwrap_or(now_unix_s);
    for r in validate(&s) {
        // One reason per field is enough: a refused id is also "missing" to `validate`.
        let field_known = errs.iter().any(|e| e.field == r.field)
            || (r.field == "chassis"
                && errs
                    .iter()
                    .any(|e| ["car_id", "vehicle_id", "car"].contains(&e.field.as_str())))
            || (r.field == "session"
                && errs
                    .iter()
                    .any(|e| ["session_id", "track"].contains(&e.field.as_str())));
        if !field_known {
            errs.push(r);
        }
    }
    if errs.is_empty() {
        Ok(s)
    } else {
        Err(errs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(b: &str) -> ParsedBatch {
        parse_body(b.as_bytes(), false, 100.0).unwrap()
    }

    #[test]
    fn seed_shape_object() {
        let b = body(
            r#"{"meta_time":"2025-06-01T14:02:11.210Z","track":"barber","chassis":"GR86-004-17",
            "lap":4,"lapdist_m":1200.5,"speed_kmh":131.5,"accx_can":-0.4,"accy_can":1.07,
            "Steering_Angle":-12.0,"pbrake_f":20.1,"pbrake_r":18.0,"rpm":6500,"gear":4,"aps":80}"#,
        );
        assert_eq!(b.total, 1);
        let s = &b.samples[0].1;
        assert_eq!(&*s.session_id, "barber");
        assert_eq!(&*s.car_id, "GR86-004-17");
        assert_eq!(s.lap, Some(4));
        assert_eq!(s.gear, Some(4));
        assert_eq!(s.throttle_pct, Some(80.0));
        assert!((s.t_s - 1748786531.21).abs() < 1e-3);
    }

    #[test]
    fn array_keeps_valid_points() {
        let b = body(
            r#"[{"track":"t","chassis":"a","speed_kmh":100},
                {"track":"t","chassis":"a","speed_kmh":900},
                {"track":"t","speed_kmh":10},
                {"track":"t","chassis":"b","speed_kmh":"fast"}, 5]"#,
        );
        assert_eq!(b.total, 5);
        assert_eq!(b.samples.len(), 1);
        let fields: Vec<_> = b
            .rejected
            .iter()
            .map(|(i, r)| (*i, r.field.as_str()))
            .collect();
        assert_eq!(
            fields,
            vec![
                (1, "speed_kmh"),
                (2, "chassis"),
                (3, "speed_kmh"),
                (4, "(point)")
            ]
        );
        assert!(b.rejected[2].1.reason.contains("expected a number"));
    }

    #[test]
    fn ndjson_lines() {
        let b = body("{\"track\":\"t\",\"chassis\":\"a\"}\n{\"track\":\"t\",\n{\"track\":\"t\",\"chassis\":\"b\"}\n");
        assert_eq!(b.total, 3);
        assert_eq!(b.samples.len(), 2);
        assert_eq!(b.rejected[0].0, 1);
    }

    #[test]
    fn bare_nan_and_infinity_are_rejected_by_field() {
        let b = body(
            r#"[{"track":"t","chassis":"a","speed_kmh":NaN},{"track":"t","chassis":"a","rpm":-Infinity},{"track":"NaN","chassis":"a"}]"#,
        );
        assert_eq!(b.samples.len(), 1);
        assert_eq!(&*b.samples[0].1.session_id, "NaN");
        assert_eq!(b.rejected[0].1.field, "speed_kmh");
        assert!(b.rejected[0].1.reason.contains("not a finite"));
        assert_eq!(b.rejected[1].1.field, "rpm");
    }

    #[test]
    fn truncated_and_bad_bodies() {
        assert!(matches!(
            parse_body(b"[{\"track\":\"t\",\"chassis\":", false, 0.0),
            Err(BodyError::Unparseable { .. })
        ));
        assert!(matches!(
            parse_body(b"\xff\xfe{}", false, 0.0),
            Err(BodyError::NotUtf8 { offset: 0 })
        ));
        assert!(matches!(
            parse_body(b"  ", false, 0.0),
            Err(BodyError::Empty)
        ));
        assert!(matches!(
            parse_body(b"42", false, 0.0),
            Err(BodyError::WrongShape { .. })
        ));
    }

    #[test]
    fn wear_as_array_or_object_and_wrong_int() {
        let b = body(
            r#"[{"track":"t","chassis":"a","tyre_wear_pct":[1,2,3,4]},
               {"track":"t","chassis":"a","tyre_wear_pct":{"fl":1,"fr":2,"rl":3,"rr":4}},
               {"track":"t","chassis":"a","gear":2.5}]"#,
        );
        assert_eq!(b.samples.len(), 2);
        assert_eq!(b.samples[0].1.tyre_wear_pct, b.samples[1].1.tyre_wear_pct);
        assert_eq!(b.rejected[0].1.field, "gear");
    }

    #[test]
    fn body_error_codes() {
        let code = |b: &[u8]| parse_body(b, false, 0.0).err().map(|e| e.code());
        assert_eq!(code(b"\xff"), Some("not_utf8"));
        assert_eq!(code(b" \n"), Some("empty_body"));
        assert_eq!(code(b"42"), Some("wrong_shape"));
        assert_eq!(code(b"[{"), Some("invalid_json"));
    }

    #[test]
    fn from_samples_validates_each() {
        let mut bad = Sample::new("s", "c", 1.0);
        bad.speed_kmh = Some(900.0);
        let no_car = Sample::new("s", "", 2.0);
        let good = Sample::new("s", "c", 3.0);
        let b = ParsedBatch::from_samples([bad, good, no_car]);
        assert_eq!(b.total, 3);
        assert_eq!(b.rejected_points(), 2);
        assert_eq!(b.samples.len(), 1);
        assert_eq!(b.samples[0].0, 1);
        assert_eq!(b.samples[0].1.t_s, 3.0);
        let refused: Vec<_> = b
            .rejected
            .iter()
            .map(|(i, r)| (*i, r.field.as_str()))
            .collect();
        assert_eq!(refused, [(0, "speed_kmh"), (2, "chassis")]);
    }

    #[test]
    fn quoting_leaves_strings_alone() {
        assert_eq!(quote_non_finite(r#"{"a":"NaN"}"#), None);
        assert_eq!(
            quote_non_finite(r#"{"a":NaN,"b":"x\"NaN","c":-Infinity}"#).unwrap(),
            r#"{"a":"NaN","b":"x\"NaN","c":"-Infinity"}"#
        );
    }
}
