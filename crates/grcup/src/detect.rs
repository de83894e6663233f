//! Recognising a GR Cup file by its header (never by its name or its column order).

use crate::channels::Channel;
use crate::error::Error;
use std::fmt;

/// How many leading bytes [`detect`] needs to see at most (the header line, plus a little).
pub const SNIFF_BYTES: usize = 64 * 1024;

/// The kinds of file in the GR Cup family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// `*_telemetry_data.csv`: one row per (car, instant, channel), `telemetry_name`/`telemetry_value`.
    LongTelemetry,
    /// One row per (car, instant), one column per channel (`speed`, `accx_can`, ...).
    WideTelemetry,
    /// JSON / NDJSON with the seed's field names; parse it with `telemetry::parse_body`.
    SeedJson,
    /// `*_lap_start*`, `*_lap_end*`, `*_lap_time*`: (vehicle, lap, timestamp[, value]).
    LapBoundary,
    /// `23_AnalysisEnduranceWithSections_*`: one row per car and lap with sectors.
    OfficialTiming,
    /// `03_Results*` / `00_Results*`: one row per car.
    Results,
    /// `99_Best 10 Laps By Driver*`.
    BestLaps,
    /// `26_Weather*`.
    Weather,
    /// `05_Results by Class*` (`CLASS_TYPE;POS;PIC;NUMBER;...`): stored, not interpreted.
    ClassResults,
    /// Championship standings (`Pos;Participant;Points;Number;...`): stored, not interpreted.
    Championship,
}

impl FileKind {
    /// A short human name.
    pub fn name(self) -> &'static str {
        match self {
            FileKind::LongTelemetry => "long-format telemetry",
            FileKind::WideTelemetry => "wide-format telemetry",
            FileKind::SeedJson => "seed JSON",
            FileKind::LapBoundary => "lap boundary",
            FileKind::OfficialTiming => "official timing",
            FileKind::Results => "results",
            FileKind::BestLaps => "best laps",
            FileKind::Weather => "weather",
            FileKind::ClassResults => "results by class",
            FileKind::Championship => "championship standings",
        }
    }
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Drops a UTF-8 byte-order mark.
pub(crate) fn strip_bom(b: &[u8]) -> &[u8] {
    b.strip_prefix(BOM).unwrap_or(b)
}

/// Fails on bytes that are not text: a NUL byte or invalid UTF-8 (a character cut at the
/// end of `b` is allowed, since `b` may be a prefix of the file).
pub(crate) fn check_text(b: &[u8]) -> Result<(), Error> {
    if let Some(offset) = b.iter().position(|&c| c == 0) {
        return Err(Error::NotText { offset });
    }
    match std::str::from_utf8(b) {
        Ok(_) => Ok(()),
        Err(e) if e.error_len().is_none() => Ok(()),
        Err(e) => Err(Error::NotText {
            offset: e.valid_up_to(),
        }),
    }
}

/// Picks the separator of a header line: the most frequent of `;`, `,` and tab outside quotes.
pub(crate) fn sniff_delimiter(line: &[u8]) -> u8 {
    let (mut semi, mut comma, mut tab) = (0usize, 0usize, 0usize);
    let mut quoted = false;
    for &c in line {
        match c {
            b'"' => quoted = !quoted,
            b';' if !quoted => semi += 1,
            b',' if !quoted => comma += 1,
            b'\t' if !quoted => tab += 1,
            _ => {}
        }
    }
    if semi > comma && semi >= tab {
        b';'
    } else if tab > comma && tab > semi {
        b'\t'
    } else {
        b','
    }
}

/// A header's column names, trimmed, with a case-insensitive lookup.
#[derive(Debug, Clone)]
pub(crate) struct Header {
    /// Names as written (trimmed, quotes removed).
    pub names: Vec<String>,
    lower: Vec<String>,
}

impl Header {
    pub fn new<'a>(fields: impl IntoIterator<Item = &'a [u8]>) -> Header {
        let names: Vec<String> = fields
            .into_iter()
            .map(|f| {
                String::from_utf8_lossy(crate::clock::trim(strip_bom(f)))
                    .trim_start_matches('\u{feff}')
                    .to_string()
            })
            .collect();
        let lower = names.iter().map(|n| n.to_ascii_lowercase()).collect();
        Header { names, lower }
    }
    /// Index of a column, ignoring ASCII case.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.lower.iter().position(|n| n.eq_ignore_ascii_case(name))
    }
    pub fn has(&self, name: &str) -> bool {
        self.find(name).is_some()
    }
    pub fn lower(&self) -> &[String] {
        &self.lower
    }
}

pub(crate) fn parse_header_line(line: &[u8], delimiter: u8) -> Header {
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(line);
    let mut rec = csv::ByteRecord::new();
    match rdr.read_byte_record(&mut rec) {
        Ok(true) => Header::new(rec.iter()),
        _ => Header::new(std::iter::empty()),
    }
}

/// What kind of file a header is, if any.
pub(crate) fn classify(h: &Header) -> Option<FileKind> {
    let has = |n: &str| h.has(n);
    let vehicle = has("vehicle_id") || has("vehicle_number") || has("original_vehicle_id");
    if has("telemetry_name") && has("telemetry_value") {
        return Some(FileKind::LongTelemetry);
    }
    if has("number") && has("lap_number") && has("lap_time") {
        return Some(FileKind::OfficialTiming);
    }
    if has("air_temp") && (has("track_temp") || has("time_utc_seconds")) {
        return Some(FileKind::Weather);
    }
    if has("position") && has("number") && (has("laps") || has("status")) {
        return Some(FileKind::Results);
    }
    if has("class_type") && has("pos") && has("pic") && has("number") {
        return Some(FileKind::ClassResults);
    }
    if has("participant") && has("points") && has("number") {
        return Some(FileKind::Championship);
    }
    if has("number") && h.lower().iter().any(|n| n.starts_with("bestlap_")) {
        return Some(FileKind::BestLaps);
    }
    let channels = h
        .names
        .iter()
        .any(|n| Channel::from_name(n.as_bytes()).is_some());
    if has("timestamp") && vehicle && channels {
        return Some(FileKind::WideTelemetry);
    }
    if has("timestamp") && has("lap") && vehicle {
        return Some(FileKind::LapBoundary);
    }
    None
}

const SEED_JSON_FIELDS: [&str; 14] = [
    "\"meta_time\"",
    "\"chassis\"",
    "\"lapdist_m\"",
    "\"speed_kmh\"",
    "\"accx_can\"",
    "\"accy_can\"",
    "\"Steering_Angle\"",
    "\"pbrake_f\"",
    "\"car_id\"",
    "\"vehicle_id\"",
    "\"t_s\"",
    "\"speed\"",
    "\"rpm\"",
    "\"lap\"",
];

/// Tells what a GR Cup file is from its first bytes (give at least the header line;
/// [`SNIFF_BYTES`] is always enough).
///
/// Handles a UTF-8 BOM, CRLF, quoted header names, any column order, extra columns, and
/// comma, semicolon or tab separators (with stray spaces after them). JSON (an object, an
/// array or NDJSON) carrying the seed's field names is [`FileKind::SeedJson`].
///
/// Errors: [`Error::Empty`], [`Error::NotText`] for binary data, [`Error::UnknownFormat`]
/// quoting the header when it matches no layout.
pub fn detect(first_bytes: &[u8]) -> Result<FileKind, Error> {
    let b = strip_bom(first_bytes);
    let start = match b.iter().position(|c| !c.is_ascii_whitespace()) {
        Some(i) => i,
        None => return Err(Error::Empty),
    };
    check_text(b)?;
    let b = b.get(start..).unwrap_or_default();
    let end = b.iter().position(|&c| c == b'\n').unwrap_or(b.len());
    let line = b.get(..end).unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if matches!(b.first(), Some(b'{' | b'[')) {
        let text = String::from_utf8_lossy(b);
        if SEED_JSON_FIELDS.iter().any(|f| text.contains(f)) {
            return Ok(FileKind::SeedJson);
        }
        return Err(Error::UnknownFormat {
            header: shorten(line),
        });
    }
    let header = parse_header_line(line, sniff_delimiter(line));
    classify(&header).ok_or_else(|| Error::UnknownFormat {
        header: shorten(line),
    })
}

pub(crate) fn shorten(line: &[u8]) -> String {
    let s = String::from_utf8_lossy(line);
    if s.chars().count() > 200 {
        let mut t: String = s.chars().take(200).collect();
        t.push('…');
        t
    } else {
        s.into_owned()
    }
}
