//! Opening a CSV stream: header sniffing (BOM, separator) and the typed-record result.

use crate::detect::{check_text, sniff_delimiter, strip_bom, FileKind, Header};
use crate::error::Error;
use crate::rejects::Rejects;
use std::io::{BufRead, BufReader, Chain, Cursor, Read};

/// Records read from a small file, with the rows that were refused.
#[derive(Debug, Clone, PartialEq)]
pub struct Table<T> {
    /// The good records, in file order.
    pub records: Vec<T>,
    /// Data rows read (not counting the header or blank lines).
    pub rows_read: u64,
    /// The rows refused, by reason, with examples.
    pub rejects: Rejects,
    /// What the reader decided that a reader of the import should know (a number split
    /// into two cars, a value that was not used...).
    pub notes: Vec<String>,
    /// The file line of each record (same order as `records`).
    pub lines: Vec<u64>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table {
            records: Vec::new(),
            rows_read: 0,
            rejects: Rejects::default(),
            notes: Vec::new(),
            lines: Vec::new(),
        }
    }
}

pub(crate) type Source<R> = Chain<Cursor<Vec<u8>>, BufReader<R>>;

/// An opened CSV stream whose header has been read.
pub(crate) struct Opened<R: Read> {
    pub reader: csv::Reader<Source<R>>,
    pub header: Header,
    /// Added to csv's record line numbers: with CRLF endings csv reports the line before.
    pub line_offset: u64,
}

/// The file line of a record (1-based, header = 1).
pub(crate) fn line_of(rec: &csv::ByteRecord, line_offset: u64) -> u64 {
    rec.position().map(|p| p.line() + line_offset).unwrap_or(0)
}

/// Longest header line accepted (guards against a binary file without newlines).
const MAX_HEADER_BYTES: u64 = 1 << 20;

/// The header line read from a stream, and the stream after it.
pub(crate) struct RawOpened<R: Read> {
    /// Bytes read so far (BOM removed): leading blank lines and the header line.
    pub first: Vec<u8>,
    pub rest: BufReader<R>,
    pub delimiter: u8,
    /// 1 when the header ends in CRLF (see [`Opened::line_offset`]).
    pub line_offset: u64,
    /// Lines in `first`.
    pub lines: u64,
    /// The header line alone, without its terminator.
    pub header_line: Vec<u8>,
}

/// Reads up to the header line (skipping blank lines), checks it is text, picks the separator.
pub(crate) fn open_raw<R: Read>(r: R) -> Result<RawOpened<R>, Error> {
    let mut buf = BufReader::with_capacity(256 * 1024, r);
    let mut first = Vec::with_capacity(1024);
    loop {
        let n = buf
            .by_ref()
            .take(MAX_HEADER_BYTES)
            .read_until(b'\n', &mut first)?;
        let body = strip_bom(&first);
        if n == 0 || body.iter().any(|c| !c.is_ascii_whitespace()) {
            break;
        }
    }
    let body = strip_bom(&first);
    if body.iter().all(|c| c.is_ascii_whitespace()) {
        return Err(Error::Empty);
    }
    check_text(body)?;
    let first_line = body
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .and_then(|e| body.get(..=e))
        .unwrap_or(body);
    let line_start = first_line
        .iter()
        .rposition(|&c| c == b'\n')
        .map(|i| i + 1)
        .unwrap_or(0);
    let header_line = first_line.get(line_start..).unwrap_or_default().to_vec();
    let delimiter = sniff_delimiter(&header_line);
    let line_offset = u64::from(body.ends_with(b"\r\n"));
    let newlines = body.iter().filter(|&&c| c == b'\n').count() as u64;
    let lines = newlines + u64::from(!body.ends_with(b"\n"));
    let first = body.to_vec();
    Ok(RawOpened {
        first,
        rest: buf,
        delimiter,
        line_offset,
        lines,
        header_line,
    })
}

/// Reads the header line, checks it is text, picks the separator and builds a CSV reader
/// over the whole stream (header included, so line numbers are the file's).
pub(crate) fn open<R: Read>(r: R, trim: csv::Trim) -> Result<Opened<R>, Error> {
    let raw = open_raw(r)?;
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(raw.delimiter)
        .has_headers(true)
        .flexible(true)
        .trim(trim)
        .buffer_capacity(256 * 1024)
        .from_reader(Cursor::new(raw.first).chain(raw.rest));
    let header = Header::new(reader.byte_headers()?.iter());
    Ok(Opened {
        reader,
        header,
        line_offset: raw.line_offset,
    })
}

/// Finds required columns; the error names every missing one.
pub(crate) fn require(
    header: &Header,
    kind: FileKind,
    names: &[&str],
) -> Result<Vec<usize>, Error> {
    let mut idx = Vec::with_capacity(names.len());
    let mut missing = Vec::new();
    for n in names {
        match header.find(n) {
            Some(i) => idx.push(i),
            None => missing.push((*n).to_string()),
        }
    }
    if missing.is_empty() {
        Ok(idx)
    } else {
        Err(Error::MissingColumns {
            kind,
            missing,
            found: header.names.clone(),
        })
    }
}
