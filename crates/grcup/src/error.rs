//! The errors that stop a read. Bad rows are not errors: see [`crate::Rejects`].

use crate::detect::FileKind;

/// Why a file cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input has no bytes (or only a byte-order mark and whitespace).
    #[error("file is empty")]
    Empty,
    /// The input is not text (NUL bytes or invalid UTF-8 in the header).
    #[error("file is not text: binary data at byte {offset} (is it compressed or a spreadsheet?)")]
    NotText { offset: usize },
    /// The header matches none of the known GR Cup layouts.
    #[error("unrecognised file: header `{header}` matches no GR Cup layout (long or wide telemetry, lap start/end/time, official timing, results, best laps, weather, JSON)")]
    UnknownFormat { header: String },
    /// The header is of a known kind but lacks columns this reader needs.
    #[error("{kind} file is missing required column(s): {} (header has: {})", missing.join(", "), found.join(", "))]
    MissingColumns {
        kind: FileKind,
        missing: Vec<String>,
        found: Vec<String>,
    },
    /// A reader was given a file of another kind.
    #[error("expected a {expected} file, this is a {found} file")]
    WrongKind { expected: FileKind, found: FileKind },
    /// The CSV layer failed (I/O or malformed input it cannot recover from).
    #[error("CSV error at line {line:?}: {message}")]
    Csv { line: Option<u64>, message: String },
    /// Reading the input failed.
    #[error("read error")]
    Io(#[from] std::io::Error),
}

impl From<csv::Error> for Error {
    fn from(e: csv::Error) -> Self {
        let line = e.position().map(|p| p.line());
        match e.into_kind() {
            csv::ErrorKind::Io(io) => Error::Io(io),
            other => Error::Csv {
                line,
                message: format!("{other:?}"),
            },
        }
    }
}
