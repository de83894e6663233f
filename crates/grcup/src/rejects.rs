//! Rows refused while reading: counted by reason, the first few kept as examples.

use std::collections::BTreeMap;
use std::fmt;

/// How many rejected rows are kept as examples (all are counted).
pub const MAX_EXAMPLES: usize = 20;

/// Why one row was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RejectReason {
    /// Fewer fields than the header (for example a truncated last line).
    ShortRow,
    /// A value that must be a number is not one (or is empty).
    NonNumeric,
    /// A number that is NaN or infinite.
    NonFinite,
    /// A number outside what the field can hold (gear beyond -1..=10, negative lap...).
    OutOfRange,
    /// The timestamp is not an RFC 3339 instant (nor Unix seconds).
    BadTimestamp,
    /// The lap column is not a whole number.
    BadLap,
    /// No vehicle id nor vehicle number.
    MissingVehicle,
    /// Older than instants of the same car already emitted (beyond the reorder window).
    TimestampBackwards,
    /// A time field (`m:ss.fff`...) that cannot be read, or a required one that is empty.
    BadTime,
    /// A required text field (car number...) is empty.
    MissingField,
    /// A second row for a (car, lap) already seen.
    Duplicate,
    /// The CSV layer could not split the row (unbalanced quotes, invalid UTF-8...).
    Malformed,
}

impl RejectReason {
    /// A short snake_case name, stable for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::ShortRow => "short_row",
            RejectReason::NonNumeric => "non_numeric",
            RejectReason::NonFinite => "non_finite",
            RejectReason::OutOfRange => "out_of_range",
            RejectReason::BadTimestamp => "bad_timestamp",
            RejectReason::BadLap => "bad_lap",
            RejectReason::MissingVehicle => "missing_vehicle",
            RejectReason::TimestampBackwards => "timestamp_backwards",
            RejectReason::BadTime => "bad_time",
            RejectReason::MissingField => "missing_field",
            RejectReason::Duplicate => "duplicate",
            RejectReason::Malformed => "malformed",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One refused row kept as an example.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedRow {
    /// 1-based line number in the file (the header is line 1).
    pub line: u64,
    pub reason: RejectReason,
    /// What was wrong, naming the column and quoting the value.
    pub detail: String,
}

/// Refused rows: a count per reason and the first [`MAX_EXAMPLES`] rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rejects {
    pub by_reason: BTreeMap<RejectReason, u64>,
    pub examples: Vec<RejectedRow>,
}

impl Rejects {
    /// Counts one refused row; `detail` is only built while examples are still kept.
    pub fn add(&mut self, line: u64, reason: RejectReason, detail: impl FnOnce() -> String) {
        *self.by_reason.entry(reason).or_insert(0) += 1;
        if self.examples.len() < MAX_EXAMPLES {
            self.examples.push(RejectedRow {
                line,
                reason,
                detail: detail(),
            });
        }
    }
    /// Total refused rows.
    pub fn total(&self) -> u64 {
        self.by_reason.values().sum()
    }
    /// Refused rows for one reason.
    pub fn count(&self, reason: RejectReason) -> u64 {
        self.by_reason.get(&reason).copied().unwrap_or(0)
    }
}

/// Quotes a raw field for a rejection message (lossy UTF-8, cut to 40 characters).
pub(crate) fn show(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    let mut out: String = s.chars().take(40).collect();
    if s.chars().count() > 40 {
        out.push('…');
    }
    format!("`{out}`")
}
