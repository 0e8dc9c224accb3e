//! A chunk: a few thousand consecutive rows of one file in one flat buffer, the unit the
//! reader hands to the validation lanes.
//!
//! Every row has exactly the header's number of fields (the reader pads short rows and cuts
//! long ones), so field `j` of row `r` is a slice of one UTF-8 string found by two look-ups.

use crate::json::{self, JsonKeys};

/// Rows of one file, numbered from [`Chunk::first_row`] (1-based data rows). Its `Debug`
/// shows the shape only: the fields hold identifiers in clear.
#[derive(Default)]
pub struct Chunk {
    /// Data-row number of the first row (1-based).
    pub first_row: u64,
    width: usize,
    rows: usize,
    /// Field bytes while filling; moved into `text` by [`Chunk::seal`].
    bytes: Vec<u8>,
    text: String,
    /// Start and end offset of every field, `rows * width` of them.
    spans: Vec<(u32, u32)>,
    /// What `bytes` holds before the lanes split it.
    raw: Raw,
}

/// What a chunk's bytes hold before a lane makes fields of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Raw {
    /// Fields already (nothing to split).
    #[default]
    No,
    /// Whole quote-free CSV records as read ([`Chunk::split`]).
    Csv,
    /// Whole NDJSON lines as read ([`Chunk::parse_json`]).
    Json,
}

impl std::fmt::Debug for Chunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunk")
            .field("first_row", &self.first_row)
            .field("rows", &self.rows)
            .field("width", &self.width)
            .finish_non_exhaustive()
    }
}

/// Largest chunk text before a chunk is handed on, in bytes.
pub const CHUNK_BYTES: usize = 4 << 20;

/// The high bit of every byte of `w` that equals `b`, and no other bit (exact: no carries
/// cross bytes).
#[inline]
fn byte_mask(w: u64, b: u8) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let x = w ^ (0x0101_0101_0101_0101 * u64::from(b));
    !(((x & LOW7) + LOW7) | x) & !LOW7
}

impl Chunk {
    /// An empty chunk for rows of `width` fields starting at data row `first_row`, reusing
    /// this chunk's buffers.
    pub fn reset(&mut self, width: usize, first_row: u64) {
        // A sealed chunk's buffer moves back for the next raw bytes; a parsed NDJSON chunk
        // keeps both its raw and its text buffer.
        if self.bytes.capacity() == 0 && !self.text.is_empty() {
            self.bytes = std::mem::take(&mut self.text).into_bytes();
        }
        self.bytes.clear();
        self.text.clear();
        self.spans.clear();
        self.width = width;
        self.rows = 0;
        self.first_row = first_row;
        self.raw = Raw::No;
    }

    /// Makes this an empty raw chunk: the reader appends whole records of quote-free CSV to
    /// [`Chunk::raw_bytes`] (ending at a line end or the end of the file), and the lane that
    /// takes the chunk calls [`Chunk::split`].
    pub fn reset_raw(&mut self, width: usize, first_row: u64) {
        self.reset(width, first_row);
        self.raw = Raw::Csv;
    }

    /// Makes this an empty raw chunk of NDJSON: the reader appends whole lines to
    /// [`Chunk::raw_bytes`], and the lane that takes the chunk calls [`Chunk::parse_json`].
    pub fn reset_json(&mut self, width: usize, first_row: u64) {
        self.reset(width, first_row);
        self.raw = Raw::Json;
    }

    /// The raw record bytes of a raw chunk.
    pub fn raw_bytes(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }

    /// Whether the chunk still needs [`Chunk::split`] or [`Chunk::parse_json`].
    pub fn is_raw(&self) -> bool {
        self.raw != Raw::No
    }

    /// Whether the chunk holds NDJSON lines for [`Chunk::parse_json`].
    pub fn is_json(&self) -> bool {
        self.raw == Raw::Json
    }

    /// Parses a raw NDJSON chunk's lines into fields ([`crate::json`]): the columns of `keys`
    /// listed in `only`, or all of them (the others stay empty). Blank lines are skipped, as
    /// the reader skipped them when it counted rows. `Err` names the data row of the first
    /// line that is not a JSON object.
    pub fn parse_json(&mut self, keys: &JsonKeys, only: Option<&[usize]>) -> Result<(), String> {
        let width = keys.len();
        self.width = width;
        let take = only.map(|cols| {
            let mut t = vec![false; width];
            for &c in cols {
                if let Some(x) = t.get_mut(c) {
                    *x = true;
                }
            }
            t
        });
        // Values are written as text straight from the parser's `&str`s: no UTF-8 check after.
        let mut out = std::mem::take(&mut self.text);
        out.clear();
        out.reserve(self.bytes.len());
        let mut slots = vec![(0u32, 0u32); width];
        let mut cursor = 0;
        let mut rows = 0usize;
        let mut failed = None;
        for line in json::lines(&self.bytes) {
            if json::is_blank(line) {
                continue;
            }
            slots.fill((0, 0));
            cursor = cursor.min(keys.len());
            if let Err(e) = json::parse_line(
                line,
                keys,
                take.as_deref(),
                &mut cursor,
                &mut out,
                &mut slots,
            ) {
                failed = Some(format!(
                    "data row {} is not a JSON object: {}",
                    self.first_row + rows as u64,
                    json::describe(&e)
                ));
                break;
            }
            self.spans.extend_from_slice(&slots);
            rows += 1;
        }
        self.bytes.clear();
        self.text = out;
        self.rows = rows;
        self.raw = Raw::No;
        failed.map_or(Ok(()), Err)
    }

    /// Splits a raw chunk's records into fields, exactly as `csv_core` reads text without
    /// quotes: a record ends at any run of CR and LF bytes (so blank lines are skipped),
    /// fields end at commas, and rows are padded or cut to the width. The bytes stay where
    /// they are; only the field spans are recorded. Then checks the text as [`Chunk::seal`]
    /// does. Returns how many rows had to be padded or cut.
    pub fn split(&mut self) -> Result<u64, usize> {
        let width = self.width as u32;
        let bytes = &self.bytes;
        let n = bytes.len();
        let (mut start, mut fields, mut commas_seen, mut ragged) = (0usize, 0u32, false, 0u64);
        let mut rows = 0usize;
        let spans = &mut self.spans;
        let mut end_row = |spans: &mut Vec<(u32, u32)>, start: usize, end: usize, fields: u32| {
            if fields < width {
                spans.push((start as u32, end as u32));
            }
            for _ in fields + 1..width {
                spans.push((end as u32, end as u32));
            }
            rows += 1;
            u64::from(fields + 1 != width)
        };
        // Eight bytes at a time: a mask of the commas and line ends, then one step per mark.
        let mut i = 0;
        while i < n {
            let mut word = [0u8; 8];
            let take = (n - i).min(8);
            word[..take].copy_from_slice(&bytes[i..i + take]);
            let w = u64::from_le_bytes(word);
            let mut marks = byte_mask(w, b',') | byte_mask(w, b'\n') | byte_mask(w, b'\r');
            while marks != 0 {
                let p = i + (marks.trailing_zeros() >> 3) as usize;
                marks &= marks - 1;
                if bytes[p] == b',' {
                    if fields < width {
                        spans.push((start as u32, p as u32));
                    }
                    fields += 1;
                    commas_seen = true;
                } else if commas_seen || p > start {
                    ragged += end_row(spans, start, p, fields);
                    fields = 0;
                    commas_seen = false;
                }
                start = p + 1;
            }
            i += 8;
        }
        if commas_seen || n > start {
            ragged += end_row(spans, start, n, fields);
        }
        self.rows = rows;
        self.raw = Raw::No;
        self.seal()?;
        Ok(ragged)
    }

    /// [`Chunk::split`] for a reader that needs only the first `k` fields of each row: the
    /// chunk becomes `k` fields wide (rows padded, longer rows not counted as ragged) and the
    /// rest of each line is skipped without looking at its commas. Rows are found exactly as
    /// `split` finds them.
    pub fn split_prefix(&mut self, k: usize) -> Result<(), usize> {
        let k = k.clamp(1, self.width.max(1));
        self.width = k;
        let bytes = &self.bytes;
        let n = bytes.len();
        let spans = &mut self.spans;
        let (mut i, mut rows) = (0usize, 0usize);
        while i < n {
            if bytes[i] == b'\n' || bytes[i] == b'\r' {
                i += 1;
                continue;
            }
            let end = memchr::memchr2(b'\n', b'\r', &bytes[i..]).map_or(n, |p| i + p);
            let mut start = i;
            let mut fields = 0;
            for p in memchr::memchr_iter(b',', &bytes[i..end]) {
                spans.push((start as u32, (i + p) as u32));
                fields += 1;
                start = i + p + 1;
                if fields == k {
                    break;
                }
            }
            if fields < k {
                spans.push((start as u32, end as u32));
                fields += 1;
            }
            for _ in fields..k {
                spans.push((end as u32, end as u32));
            }
            rows += 1;
            i = end + 1;
        }
        self.rows = rows;
        self.raw = Raw::No;
        self.seal()
    }

    /// Appends one row from raw field bytes: `fields` holds the bytes of all fields and
    /// `ends` the end of each, relative to `fields`. The row is padded with empty fields or
    /// cut to the chunk's width; returns whether it had to be.
    pub fn push_raw(&mut self, fields: &[u8], ends: &[usize]) -> bool {
        let base = self.bytes.len();
        let keep = ends.len().min(self.width);
        let used = if keep == 0 { 0 } else { ends[keep - 1] };
        self.bytes.extend_from_slice(&fields[..used]);
        let mut start = base as u32;
        for &e in &ends[..keep] {
            let end = (base + e) as u32;
            self.spans.push((start, end));
            start = end;
        }
        let end = self.bytes.len() as u32;
        for _ in keep..self.width {
            self.spans.push((end, end));
        }
        self.rows += 1;
        ends.len() != self.width
    }

    /// Appends one row of text fields (padded or cut like [`Chunk::push_raw`]).
    pub fn push_fields<'a>(&mut self, fields: impl IntoIterator<Item = &'a str>) -> bool {
        let mut n = 0;
        for f in fields {
            n += 1;
            if n > self.width {
                continue;
            }
            let start = self.bytes.len() as u32;
            self.bytes.extend_from_slice(f.as_bytes());
            self.spans.push((start, self.bytes.len() as u32));
        }
        let end = self.bytes.len() as u32;
        for _ in n.min(self.width)..self.width {
            self.spans.push((end, end));
        }
        self.rows += 1;
        n != self.width
    }

    /// Bytes buffered so far.
    pub fn byte_len(&self) -> usize {
        self.bytes.len() + self.text.len()
    }

    /// Checks the text is UTF-8 and makes the fields readable. `Err` with the byte offset
    /// of the first bad byte within the chunk.
    pub fn seal(&mut self) -> Result<(), usize> {
        let bytes = std::mem::take(&mut self.bytes);
        match String::from_utf8(bytes) {
            Ok(s) => {
                self.text = s;
                Ok(())
            }
            Err(e) => {
                let at = e.utf8_error().valid_up_to();
                self.bytes = e.into_bytes();
                Err(at)
            }
        }
    }

    /// Rows held.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Fields per row.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Field `j` of row `r`, as written (untrimmed); "" before [`Chunk::seal`].
    #[inline]
    pub fn field(&self, r: usize, j: usize) -> &str {
        match self.spans.get(r * self.width + j) {
            Some(&(start, end)) => self.text.get(start as usize..end as usize).unwrap_or(""),
            None => "",
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The word mask marks exactly the bytes equal to the target, whatever their neighbours.
    #[test]
    fn byte_mask_is_exact() {
        for target in [b',', b'\n', b'\r'] {
            for v in 0..=255u8 {
                for (pos, fill) in [(0, 0u8), (3, 0xff), (7, target.wrapping_add(1)), (5, 0x80)] {
                    let mut word = [fill; 8];
                    word[pos] = v;
                    let want: u64 = (0..8)
                        .filter(|&k| word[k] == target)
                        .map(|k| 0x80u64 << (8 * k))
                        .sum();
                    assert_eq!(byte_mask(u64::from_le_bytes(word), target), want);
                }
            }
        }
    }

    /// The prefix split finds the same rows and the same leading fields as the full split.
    #[test]
    fn prefix_split_agrees_with_split() {
        let text = "a,b,c,d\r\n\n,,\nx\r\n\r\n1,2,3,4,5,6\n e ,f\n,\nlast,row";
        for k in 1..=4 {
            let mut full = Chunk::default();
            full.reset_raw(4, 1);
            full.raw_bytes().extend_from_slice(text.as_bytes());
            full.split().unwrap();
            let mut pre = Chunk::default();
            pre.reset_raw(4, 1);
            pre.raw_bytes().extend_from_slice(text.as_bytes());
            pre.split_prefix(k).unwrap();
            assert_eq!((pre.rows(), pre.width()), (full.rows(), k));
            for r in 0..full.rows() {
                for j in 0..k {
                    assert_eq!(pre.field(r, j), full.field(r, j), "k {k} row {r} field {j}");
                }
            }
        }
    }

    #[test]
    fn rows_are_padded_cut_and_read_back() {
        let mut c = Chunk::default();
        c.reset(3, 7);
        assert!(!c.push_raw(b"abcde", &[1, 3, 5]));
        assert!(c.push_raw(b"x", &[1]));
        assert!(c.push_fields(["p", "q", "r", "s"]));
        c.seal().unwrap();
        assert_eq!(c.rows(), 3);
        let got: Vec<Vec<&str>> = (0..3)
            .map(|r| (0..3).map(|j| c.field(r, j)).collect())
            .collect();
        assert_eq!(
            got,
            vec![
                vec!["a", "bc", "de"],
                vec!["x", "", ""],
                vec!["p", "q", "r"]
            ]
        );
        // Reuse keeps nothing of the old rows.
        c.reset(2, 100);
        c.push_fields(["é", "z"]);
        c.seal().unwrap();
        assert_eq!((c.first_row, c.field(0, 0), c.field(0, 1)), (100, "é", "z"));
        assert_eq!(
            format!("{c:?}"),
            "Chunk { first_row: 100, rows: 1, width: 2, .. }",
            "no field values in debug output"
        );
        c.reset(1, 1);
        c.push_raw(&[b'o', 0xff], &[2]);
        assert_eq!(c.seal(), Err(1));
    }
}
