//! A line splitter for the long-format hot path: unquoted lines are split in place with
//! `memchr` (no copy, no allocation); a line holding a quote (or a quoted field spanning
//! lines) goes through the `csv` crate, so quoting stays correct.

use std::io::{self, Read};
use std::ops::Range;

/// Longest line accepted: bounds memory on input without newlines.
const MAX_LINE_BYTES: usize = 64 << 20;
/// Most bytes a quoted row may span across lines before it is taken as it is.
const MAX_QUOTED_ROW_BYTES: usize = 1 << 20;

/// Rows of a delimited stream, one at a time, fields borrowed from an internal buffer.
pub(crate) struct FastRows<R: Read> {
    src: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    delim: u8,
    /// Fields past this many are not split (the caller does not read them).
    max_fields: usize,
    /// Lines consumed so far (the current row's first line is `row_line`).
    line_no: u64,
    row_line: u64,
    consumed: u64,
    /// The current row: fields as ranges into `buf` (fast) or a parsed record (quoted).
    fields: Vec<Range<usize>>,
    quoted: Option<csv::ByteRecord>,
    slow: Vec<u8>,
}

impl<R: Read> FastRows<R> {
    /// `pending` are bytes already read after the header; `lines_before` the lines they follow.
    /// Only the first `max_fields` fields of each row are split out.
    pub fn new(src: R, pending: &[u8], delim: u8, lines_before: u64, max_fields: usize) -> Self {
        let mut buf = vec![0u8; (256 * 1024).max(pending.len() * 2)];
        if let Some(dst) = buf.get_mut(..pending.len()) {
            dst.copy_from_slice(pending);
        }
        FastRows {
            src,
            buf,
            start: 0,
            end: pending.len(),
            eof: false,
            delim,
            max_fields: max_fields.max(1),
            line_no: lines_before,
            row_line: lines_before,
            consumed: 0,
            fields: Vec::with_capacity(32),
            quoted: None,
            slow: Vec::new(),
        }
    }

    /// 1-based line of the current row.
    pub fn line(&self) -> u64 {
        self.row_line
    }

    /// Bytes consumed after the header.
    pub fn bytes(&self) -> u64 {
        self.consumed
    }

    /// Number of fields of the current row (at most `max_fields` on the fast path).
    pub fn len(&self) -> usize {
        match &self.quoted {
            Some(r) => r.len(),
            None => self.fields.len(),
        }
    }

    /// Field `i` of the current row (empty when absent).
    #[inline]
    pub fn get(&self, i: usize) -> &[u8] {
        match &self.quoted {
            Some(r) => r.get(i).unwrap_or_default(),
            None => self
                .fields
                .get(i)
                .and_then(|r| self.buf.get(r.clone()))
                .unwrap_or_default(),
        }
    }

    /// The next raw line (without its terminator), `None` at the end.
    fn next_line(&mut self) -> io::Result<Option<Range<usize>>> {
        loop {
            let window = self.buf.get(self.start..self.end).unwrap_or_default();
            if let Some(i) = memchr::memchr(b'\n', window) {
                let r = self.start..self.start + i;
                self.start += i + 1;
                self.consumed += i as u64 + 1;
                self.line_no += 1;
                return Ok(Some(r));
            }
            if self.eof {
                if self.start < self.end {
                    let r = self.start..self.end;
                    self.consumed += (self.end - self.start) as u64;
                    self.start = self.end;
                    self.line_no += 1;
                    return Ok(Some(r));
                }
                return Ok(None);
            }
            self.refill()?;
        }
    }

    fn refill(&mut self) -> io::Result<()> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            if self.buf.len() >= MAX_LINE_BYTES {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "line {} is longer than {} MiB: not a telemetry file?",
                        self.line_no + 1,
                        MAX_LINE_BYTES >> 20
                    ),
                ));
            }
            let n = self.buf.len() * 2;
            self.buf.resize(n, 0);
        }
        let dst = self.buf.get_mut(self.end..).unwrap_or_default();
        let n = loop {
            match self.src.read(dst) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            self.eof = true;
        }
        self.end += n;
        Ok(())
    }

    /// Advances to the next non-blank row; `false` at the end of input.
    pub fn next_row(&mut self) -> io::Result<bool> {
        loop {
            let Some(mut r) = self.next_line()? else {
                return Ok(false);
            };
            self.row_line = self.line_no;
            if self.buf.get(r.end.wrapping_sub(1)) == Some(&b'\r') && r.end > r.start {
                r.end -= 1;
            }
            let line = self.buf.get(r.clone()).unwrap_or_default();
            if line.is_empty() {
                continue;
            }
            if memchr::memchr(b'"', line).is_some() {
                self.quoted_row(r)?;
                return Ok(true);
            }
            self.quoted = None;
            self.fields.clear();
            let mut from = r.start;
            for (i, &c) in line.iter().enumerate() {
                if c == self.delim {
                    self.fields.push(from..r.start + i);
                    from = r.start + i + 1;
                    if self.fields.len() >= self.max_fields {
                        break;
                    }
                }
            }
            if self.fields.len() < self.max_fields {
                self.fields.push(from..r.end);
            }
            return Ok(true);
        }
    }

    #[cold]
    fn quoted_row(&mut self, first: Range<usize>) -> io::Result<()> {
        self.slow.clear();
        self.slow
            .extend_from_slice(self.buf.get(first).unwrap_or_default());
        // A quoted field may hold newlines: join lines until the quotes balance.
        while memchr::memchr_iter(b'"', &self.slow).count() % 2 == 1
            && self.slow.len() < MAX_QUOTED_ROW_BYTES
        {
            match self.next_line()? {
                Some(r) => {
                    self.slow.push(b'\n');
                    let part = self.buf.get(r).unwrap_or_default();
                    self.slow.extend_from_slice(part);
                }
                None => break,
            }
        }
        let mut rdr = csv::ReaderBuilder::new()
            .delimiter(self.delim)
            .has_headers(false)
            .flexible(true)
            .from_reader(self.slow.as_slice());
        let mut rec = self.quoted.take().unwrap_or_default();
        match rdr.read_byte_record(&mut rec) {
            Ok(true) => {}
            _ => rec.clear(),
        }
        self.quoted = Some(rec);
        Ok(())
    }
}
