//! Readers: every accepted file format as a stream of string records with the header row.
//!
//! CSV and NDJSON are streamed (bounded memory whatever the size); Windows-1252 is transcoded
//! to UTF-8 on the fly; a UTF-8 byte-order mark is skipped. Quote-free CSV and NDJSON are only
//! cut into whole lines here; the validation lanes split or parse them ([`crate::json`]). XLSX is read whole through calamine,
//! up to a size limit; Excel date cells become `YYYY-MM-DD`, whole numbers lose their `.0`.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::sync::Arc;

use calamine::{Data, Reader};
use csv::StringRecord;

use crate::chunk::{CHUNK_BYTES, Chunk};
use crate::json::{self, JsonKeys};
use crate::prepass::{Encoding, Format, Prepass};

/// Default largest XLSX accepted (uncompressed bytes on disk).
pub const DEFAULT_XLSX_LIMIT: u64 = 200 * 1024 * 1024;

/// Rows of one file.
pub struct Records {
    /// Header cells as written.
    pub headers: Vec<String>,
    inner: Inner,
    /// Rows whose field count differed from the header (padded or cut), for the receipt.
    pub ragged_rows: u64,
    /// Data rows read so far.
    pub rows: u64,
}

impl std::fmt::Debug for Records {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Records")
            .field("headers", &self.headers)
            .finish()
    }
}

enum Inner {
    Csv(Box<CsvRows>),
    Plain(Box<PlainRows>),
    Rows(std::vec::IntoIter<StringRecord>),
    /// NDJSON: the reader cuts whole lines, the lanes parse them ([`Chunk::parse_json`]).
    Json(Box<PlainRows>, Arc<JsonKeys>),
}

/// CSV records straight from `csv_core` (the parser behind the `csv` crate, with the same
/// defaults: comma, double-quote, `""` escapes, CR, LF or CRLF ends, blank lines skipped),
/// without a per-record allocation.
struct CsvRows {
    input: Box<dyn Read + Send>,
    core: csv_core::Reader,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    eof: bool,
    out: Vec<u8>,
    ends: Vec<usize>,
}

impl CsvRows {
    fn new(input: Box<dyn Read + Send>) -> CsvRows {
        CsvRows {
            input,
            core: csv_core::Reader::new(),
            buf: vec![0; 1 << 20],
            pos: 0,
            len: 0,
            eof: false,
            out: vec![0; 1 << 12],
            ends: vec![0; 64],
        }
    }

    /// Parses the next record into `self.out`/`self.ends`; returns its field count, or
    /// `None` at the end.
    fn next(&mut self) -> io::Result<Option<usize>> {
        use csv_core::ReadRecordResult as R;
        let (mut outlen, mut endlen) = (0, 0);
        loop {
            if self.pos == self.len && !self.eof {
                self.pos = 0;
                self.len = loop {
                    match self.input.read(&mut self.buf) {
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        r => break r?,
                    }
                };
                self.eof = self.len == 0;
            }
            let (res, nin, nout, nend) = self.core.read_record(
                &self.buf[self.pos..self.len],
                &mut self.out[outlen..],
                &mut self.ends[endlen..],
            );
            self.pos += nin;
            outlen += nout;
            endlen += nend;
            match res {
                R::InputEmpty => {}
                R::OutputFull => self.out.resize(self.out.len() * 2, 0),
                R::OutputEndsFull => self.ends.resize(self.ends.len() * 2, 0),
                R::Record => return Ok(Some(endlen)),
                R::End => return Ok(None),
            }
        }
    }

    /// The last record read, as text.
    fn record(&self, n: usize) -> Result<Vec<String>, Unreadable> {
        let used = if n == 0 { 0 } else { self.ends[n - 1] };
        let text = std::str::from_utf8(&self.out[..used])
            .map_err(|_| Unreadable("the CSV header is not valid text".into()))?;
        let mut start = 0;
        Ok(self.ends[..n]
            .iter()
            .map(|&e| {
                let f = text.get(start..e).unwrap_or("").to_string();
                start = e;
                f
            })
            .collect())
    }
}

/// Raw bytes of each raw chunk (the lanes split them).
const RAW_CHUNK_BYTES: usize = 1 << 20;

/// Quote-free UTF-8 CSV (the pre-pass saw no `"`), where a record is a line: the reader only
/// cuts the text at line ends and counts records, and the lanes split the fields
/// ([`Chunk::split`]), so reading is no longer one serial parse.
///
/// NDJSON is cut the same way, at `\n` only, and its records are the lines that are not blank
/// ([`json::count_lines`]).
struct PlainRows {
    input: Box<dyn Read + Send>,
    /// Bytes read past the last line end handed on.
    carry: Vec<u8>,
    eof: bool,
    json: bool,
}

fn is_end(b: u8) -> bool {
    b == b'\n' || b == b'\r'
}

/// Records in `bytes` that start there: after a line end, or at the start if `bytes` does not
/// begin with one (the caller cuts just after a line end).
fn count_records(bytes: &[u8]) -> u64 {
    let mut n = u64::from(bytes.first().is_some_and(|&b| !is_end(b)));
    for t in memchr::memchr2_iter(b'\n', b'\r', bytes) {
        if bytes.get(t + 1).is_some_and(|&b| !is_end(b)) {
            n += 1;
        }
    }
    n
}

impl PlainRows {
    /// Appends input to `out` until it holds at least `want` bytes or the input ends.
    fn fill(&mut self, out: &mut Vec<u8>, want: usize) -> io::Result<()> {
        while out.len() < want && !self.eof {
            let at = out.len();
            out.resize(want.max(at + (64 << 10)), 0);
            let k = loop {
                match self.input.read(&mut out[at..]) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    r => break r,
                }
            };
            let k = match k {
                Ok(k) => k,
                Err(e) => {
                    out.truncate(at);
                    return Err(e);
                }
            };
            out.truncate(at + k);
            self.eof = k == 0;
        }
        Ok(())
    }

    /// Moves whole records (up to about `want` bytes, more if one record is longer) into
    /// `out`, keeping the rest for next time. Returns how many records it moved.
    fn take(&mut self, out: &mut Vec<u8>, want: usize) -> io::Result<u64> {
        out.clear();
        out.append(&mut self.carry);
        loop {
            self.fill(out, want)?;
            let cut = if self.eof {
                Some(out.len())
            } else if self.json {
                memchr::memrchr(b'\n', out).map(|i| i + 1)
            } else {
                memchr::memrchr2(b'\n', b'\r', out).map(|i| i + 1)
            };
            if let Some(cut) = cut {
                self.carry.extend_from_slice(&out[cut..]);
                out.truncate(cut);
                let n = self.count(out);
                if n > 0 || self.eof {
                    return Ok(n);
                }
                // Only blank lines so far: read on.
                out.clear();
                out.append(&mut self.carry);
            }
            let grow = out.len() + want;
            self.fill(out, grow)?;
            if self.eof {
                let n = self.count(out);
                return Ok(n);
            }
        }
    }

    fn count(&self, bytes: &[u8]) -> u64 {
        if self.json {
            json::count_lines(bytes)
        } else {
            count_records(bytes)
        }
    }

    /// The first NDJSON line that is not blank, left in place for [`PlainRows::take`] to hand
    /// on as the first record; `None` when there is none.
    fn first_json_line(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut buf = std::mem::take(&mut self.carry);
        let mut from = 0;
        loop {
            while let Some(e) = memchr::memchr(b'\n', &buf[from..]) {
                let line = &buf[from..from + e];
                if !json::is_blank(line) {
                    let line = line.to_vec();
                    self.carry = buf;
                    return Ok(Some(line));
                }
                from += e + 1;
            }
            if self.eof {
                let line = &buf[from..];
                let found = (!json::is_blank(line)).then(|| line.to_vec());
                self.carry = buf;
                return Ok(found);
            }
            let want = buf.len() + (64 << 10);
            self.fill(&mut buf, want)?;
        }
    }

    /// The header: the first record, split at commas.
    fn header(&mut self) -> io::Result<Vec<u8>> {
        let mut buf = Vec::new();
        loop {
            let want = buf.len() + (64 << 10);
            self.fill(&mut buf, want)?;
            let start = buf.iter().position(|&b| !is_end(b));
            if let Some(s) = start
                && let Some(e) = memchr::memchr2(b'\n', b'\r', &buf[s..])
            {
                self.carry = buf.split_off(s + e);
                buf.drain(..s);
                return Ok(buf);
            }
            if self.eof {
                let s = start.unwrap_or(buf.len());
                buf.drain(..s);
                return Ok(buf);
            }
        }
    }
}

/// Why a file cannot be read (a whole-file `unreadable_file`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unreadable(pub String);

fn open_raw(path: &Path, gzip: bool) -> io::Result<Box<dyn Read + Send>> {
    let f = BufReader::with_capacity(1 << 20, File::open(path)?);
    Ok(if gzip {
        Box::new(flate2::read::MultiGzDecoder::new(f))
    } else {
        Box::new(f)
    })
}

/// Streaming Windows-1252 → UTF-8.
struct Transcode<R> {
    inner: R,
    decoder: encoding_rs::Decoder,
    input: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
}

impl<R: Read> Read for Transcode<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.len() < 8 {
            return Err(io::Error::other("transcoding buffer too small"));
        }
        loop {
            if self.start == self.end && !self.eof {
                self.start = 0;
                self.end = self.inner.read(&mut self.input)?;
                self.eof = self.end == 0;
            }
            let (_, read, written, _) =
                self.decoder
                    .decode_to_utf8(&self.input[self.start..self.end], out, self.eof);
            self.start += read;
            if written > 0 || self.eof {
                return Ok(written);
            }
        }
    }
}

struct SkipBom<R> {
    inner: R,
    checked: bool,
}

impl<R: Read> Read for SkipBom<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if !self.checked {
            self.checked = true;
            let mut b = [0u8; 3];
            let mut n = 0;
            while n < 3 {
                match self.inner.read(&mut b[n..])? {
                    0 => break,
                    k => n += k,
                }
            }
            if n == 3 && b == [0xef, 0xbb, 0xbf] {
                return self.read(out);
            }
            let k = n.min(out.len());
            out[..k].copy_from_slice(&b[..k]);
            if k < n {
                return Err(io::Error::other("read buffer too small"));
            }
            return Ok(k);
        }
        self.inner.read(out)
    }
}

/// Opens a file the pre-pass has classified.
pub fn open(path: &Path, pre: &Prepass, xlsx_limit: u64) -> Result<Records, Unreadable> {
    let format = pre.format.clone().map_err(Unreadable)?;
    let io_err = |e: io::Error| Unreadable(format!("cannot read the file: {e}"));
    match format {
        Format::Csv => {
            let raw = open_raw(path, pre.gzip).map_err(io_err)?;
            let text: Box<dyn Read + Send> = match pre.encoding {
                Some(Encoding::Windows1252) => Box::new(Transcode {
                    inner: raw,
                    decoder: encoding_rs::WINDOWS_1252.new_decoder_without_bom_handling(),
                    input: vec![0; 1 << 16],
                    start: 0,
                    end: 0,
                    eof: false,
                }),
                _ => Box::new(SkipBom {
                    inner: raw,
                    checked: false,
                }),
            };
            if pre.quote_free && pre.encoding != Some(Encoding::Windows1252) {
                let mut rows = PlainRows {
                    input: text,
                    carry: Vec::new(),
                    eof: false,
                    json: false,
                };
                let line = rows
                    .header()
                    .map_err(|e| Unreadable(format!("cannot read the CSV header: {e}")))?;
                let line = String::from_utf8(line)
                    .map_err(|_| Unreadable("the CSV header is not valid text".into()))?;
                let headers: Vec<String> = line.split(',').map(str::to_string).collect();
                if headers.iter().all(|h| h.trim().is_empty()) {
                    return Err(Unreadable("the CSV has no header row".into()));
                }
                return Ok(Records {
                    headers,
                    inner: Inner::Plain(Box::new(rows)),
                    ragged_rows: 0,
                    rows: 0,
                });
            }
            let mut rdr = CsvRows::new(text);
            let headers = match rdr.next() {
                Ok(Some(n)) => rdr.record(n)?,
                Ok(None) => Vec::new(),
                Err(e) => return Err(Unreadable(format!("cannot read the CSV header: {e}"))),
            };
            if headers.iter().all(|h| h.trim().is_empty()) {
                return Err(Unreadable("the CSV has no header row".into()));
            }
            Ok(Records {
                headers,
                inner: Inner::Csv(Box::new(rdr)),
                ragged_rows: 0,
                rows: 0,
            })
        }
        Format::Xlsx => {
            if pre.bytes > xlsx_limit {
                return Err(Unreadable(format!(
                    "the workbook is {} MB, above the {} MB limit for XLSX; send it as CSV",
                    pre.bytes / (1 << 20),
                    xlsx_limit / (1 << 20)
                )));
            }
            let mut bytes = Vec::new();
            open_raw(path, pre.gzip)
                .map_err(io_err)?
                .read_to_end(&mut bytes)
                .map_err(io_err)?;
            let mut wb: calamine::Xlsx<_> = calamine::open_workbook_from_rs(io::Cursor::new(bytes))
                .map_err(|e| Unreadable(format!("not a readable Excel workbook: {e}")))?;
            let range = wb
                .worksheet_range_at(0)
                .ok_or_else(|| Unreadable("the workbook has no worksheet".into()))?
                .map_err(|e| Unreadable(format!("cannot read the first worksheet: {e}")))?;
            let mut rows = range.rows();
            let headers: Vec<String> = rows
                .next()
                .ok_or_else(|| Unreadable("the first worksheet is empty".into()))?
                .iter()
                .map(cell)
                .collect();
            let width = headers.len();
            let data: Vec<StringRecord> = rows
                .filter(|r| r.iter().any(|c| !matches!(c, Data::Empty)))
                .map(|r| {
                    let mut rec = StringRecord::with_capacity(64, width);
                    for c in r.iter().take(width) {
                        rec.push_field(&cell(c));
                    }
                    rec
                })
                .collect();
            Ok(Records {
                headers,
                inner: Inner::Rows(data.into_iter()),
                ragged_rows: 0,
                rows: 0,
            })
        }
        Format::Ndjson => {
            let mut rows = PlainRows {
                input: open_raw(path, pre.gzip).map_err(io_err)?,
                carry: Vec::new(),
                eof: false,
                json: true,
            };
            // The first object's keys are the header.
            let first = rows
                .first_json_line()
                .map_err(io_err)?
                .ok_or_else(|| Unreadable("the NDJSON file has no records".into()))?;
            let keys = JsonKeys::from_first_line(&first)
                .map_err(|e| Unreadable(format!("line 1 is not a JSON object: {e}")))?;
            Ok(Records {
                headers: keys.names.clone(),
                inner: Inner::Json(Box::new(rows), Arc::new(keys)),
                ragged_rows: 0,
                rows: 0,
            })
        }
    }
}

/// One XLSX cell as text.
fn cell(c: &Data) -> String {
    match c {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => format!("{}", *f as i64),
        Data::Float(f) => f.to_string(),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(d) => match drd_model::date::from_excel_serial(d.as_f64().floor()) {
            Ok(date) if d.is_datetime() => date.format("%Y-%m-%d").to_string(),
            _ => d.as_f64().to_string(),
        },
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.chars().take(10).collect(),
        Data::Error(e) => format!("#{e:?}"),
    }
}

impl Records {
    /// The header of an NDJSON file, for the lanes that parse its lines.
    pub fn json_keys(&self) -> Option<Arc<JsonKeys>> {
        match &self.inner {
            Inner::Json(_, keys) => Some(keys.clone()),
            _ => None,
        }
    }

    /// Fills `chunk` with the next rows (up to `max_rows`, or [`CHUNK_BYTES`] of text), each
    /// padded or cut to the header width. Returns false when no rows were left. A structural
    /// error mid-file makes the whole file unreadable.
    pub fn next_chunk(&mut self, chunk: &mut Chunk, max_rows: usize) -> Result<bool, Unreadable> {
        let width = self.headers.len();
        if let Inner::Plain(p) | Inner::Json(p, _) = &mut self.inner {
            if p.json {
                chunk.reset_json(width, self.rows + 1);
            } else {
                chunk.reset_raw(width, self.rows + 1);
            }
            let n = p
                .take(chunk.raw_bytes(), RAW_CHUNK_BYTES)
                .map_err(|e| Unreadable(format!("cannot read the file: {e}")))?;
            self.rows += n;
            return Ok(n > 0);
        }
        chunk.reset(width, self.rows + 1);
        while chunk.rows() < max_rows && chunk.byte_len() < CHUNK_BYTES {
            let ragged = match &mut self.inner {
                Inner::Csv(r) => match r
                    .next()
                    .map_err(|e| Unreadable(format!("cannot read the file: {e}")))?
                {
                    Some(n) => {
                        let used = if n == 0 { 0 } else { r.ends[n - 1] };
                        chunk.push_raw(&r.out[..used], &r.ends[..n])
                    }
                    None => break,
                },
                Inner::Rows(it) => match it.next() {
                    Some(r) => chunk.push_fields(r.iter()),
                    None => break,
                },
                Inner::Plain(_) | Inner::Json(..) => break,
            };
            self.rows += 1;
            if ragged {
                self.ragged_rows += 1;
            }
        }
        chunk.seal().map_err(|at| {
            Unreadable(format!(
                "the text is not valid UTF-8 near data row {} (byte {at} of its chunk)",
                chunk.first_row
            ))
        })?;
        Ok(chunk.rows() > 0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::prepass::prepass;

    type Rows = (Vec<String>, Vec<(u64, Vec<String>)>, u64, u64);

    /// Every row of a file with its number, the ragged count and the rows read, splitting raw
    /// chunks as the lanes do.
    fn read_all(path: &Path, pre: &Prepass) -> Result<Rows, Unreadable> {
        let mut rec = open(path, pre, DEFAULT_XLSX_LIMIT)?;
        let mut chunk = Chunk::default();
        let mut rows = Vec::new();
        let mut ragged = 0;
        let keys = rec.json_keys();
        while rec.next_chunk(&mut chunk, 3)? {
            if chunk.is_json() {
                let keys = keys.as_deref().unwrap();
                chunk.parse_json(keys, None).map_err(Unreadable)?;
            } else if chunk.is_raw() {
                ragged += chunk.split().map_err(|_| Unreadable("bad text".into()))?;
            }
            for r in 0..chunk.rows() {
                let fields = (0..chunk.width()).map(|j| chunk.field(r, j).to_string());
                rows.push((chunk.first_row + r as u64, fields.collect()));
            }
        }
        Ok((
            rec.headers.clone(),
            rows,
            rec.ragged_rows + ragged,
            rec.rows,
        ))
    }

    /// The line splitter for quote-free text gives exactly what the `csv_core` path gives.
    #[test]
    fn quote_free_split_matches_the_csv_parser() {
        let long = "x".repeat(RAW_CHUNK_BYTES * 3 / 2);
        let mut many = String::new();
        for i in 0..200_000 {
            many.push_str(&format!("r{i},{},é{}\n", i % 7, i % 3));
        }
        let cases: Vec<Vec<u8>> = vec![
            b"a,b,c\n1,2,3\n4,5,6\n".to_vec(),
            b"\xef\xbb\xbfa,b,c\r\n1,2,3\r\n\r\n\r\n4,5\r\n6,7,8,9,10\r\n,,\r\n".to_vec(),
            b"\n\r\n a , b ,c\r1,2,3\r\r4,,6\n\n7,8,9".to_vec(),
            b"a,b\n1,2\n\n\n".to_vec(),
            b"a,b\n".to_vec(),
            b"a,b".to_vec(),
            format!("a,b,c\n1,{long},3\n,,\nz").into_bytes(),
            format!("k,v,w\n{many}").into_bytes(),
            b"a;b\n\xc3\xa9,x\n ,\n".to_vec(),
        ];
        let dir = tempfile::tempdir().unwrap();
        for (i, body) in cases.iter().enumerate() {
            let path = dir.path().join(format!("case{i}.csv"));
            std::fs::write(&path, body).unwrap();
            let pre = prepass(&path).unwrap();
            assert!(pre.quote_free, "case {i}");
            let fast = read_all(&path, &pre).unwrap();
            let slow = read_all(
                &path,
                &Prepass {
                    quote_free: false,
                    ..pre.clone()
                },
            )
            .unwrap();
            assert_eq!(fast.0, slow.0, "case {i}: headers");
            assert_eq!(fast.1.len(), slow.1.len(), "case {i}: row count");
            assert_eq!(fast.1, slow.1, "case {i}: rows");
            assert_eq!((fast.2, fast.3), (slow.2, slow.3), "case {i}: ragged, rows");
            assert!(!slow.1.is_empty() || i == 4 || i == 5, "case {i} has rows");
        }
        // A quote anywhere, or text that is not UTF-8, sends the file to the full parser.
        let path = dir.path().join("quoted.csv");
        std::fs::write(&path, b"a,b\n1,\"x\ny\"\n").unwrap();
        assert!(!prepass(&path).unwrap().quote_free);
        std::fs::write(&path, b"a,b\n1,caf\xe9\n").unwrap();
        assert!(!prepass(&path).unwrap().quote_free);
    }

    /// The old reading of one NDJSON line (a serde_json map, then each header key looked
    /// up), kept as the reference the streaming parser must match.
    fn reference_ndjson(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
        let objs: Vec<serde_json::Map<String, serde_json::Value>> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let keys: Vec<String> = objs[0].keys().cloned().collect();
        let rows = objs
            .iter()
            .map(|o| {
                keys.iter()
                    .map(|k| match o.get(k) {
                        None | Some(serde_json::Value::Null) => String::new(),
                        Some(serde_json::Value::String(s)) => s.clone(),
                        Some(v) => v.to_string(),
                    })
                    .collect()
            })
            .collect();
        (keys, rows)
    }

    /// NDJSON parsed on the lanes gives what a serde_json map gave, line for line, across
    /// chunk boundaries, gzip, blank lines, CRLF, escapes, odd values and keys out of order.
    #[test]
    fn ndjson_lines_match_the_map_reading() {
        let mut many = String::new();
        for i in 0..60_000 {
            // Keys in a different order every third line, one unknown key, one key twice.
            if i % 3 == 0 {
                many.push_str(&format!(
                    "{{\"z\":{i},\"a\":\"r{i}\",\"m\":null,\"extra\":[1,{{\"q\":2}}]}}\n"
                ));
            } else {
                many.push_str(&format!(
                    "{{\"a\":\"r\\u00e9{i}\",\"m\":{}.5,\"z\":-{i},\"a\":\"last{i}\"}}\r\n",
                    i % 11
                ));
            }
            if i % 997 == 0 {
                many.push_str("  \t\r\n\n");
            }
        }
        let cases: Vec<String> = vec![
            "{\"b\":\"x\",\"a\":1}\n{\"a\":2}\n".into(),
            "\n \n{\"k\":\"caf\\u00e9 \\\"q\\\" \\n\",\"n\":1e3,\"t\":true,\"f\":false}\n\n{\"n\":0.1,\"k\":\"\"}"
                .into(),
            "{\"\\u0061\":\"esc key\",\"b\":{\"y\":[1,2],\"x\":null}}\n{\"a\":12345678901234567890,\"b\":-0.0}\n"
                .into(),
            "{\"a\":\"only\"}".into(),
            "\u{a0}\n{\"a\":\"after a no-break space line\"}\n\u{3000}\n{\"a\":1.0}\n".into(),
            many,
        ];
        let dir = tempfile::tempdir().unwrap();
        for (i, body) in cases.iter().enumerate() {
            let want = reference_ndjson(body);
            for gzip in [false, true] {
                let path = dir.path().join(format!("case{i}-{gzip}.ndjson"));
                if gzip {
                    use std::io::Write;
                    let mut enc =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                    enc.write_all(body.as_bytes()).unwrap();
                    std::fs::write(&path, enc.finish().unwrap()).unwrap();
                } else {
                    std::fs::write(&path, body).unwrap();
                }
                let pre = prepass(&path).unwrap();
                let (headers, rows, ragged, count) = read_all(&path, &pre).unwrap();
                assert_eq!(headers, want.0, "case {i}: headers");
                assert_eq!(rows.len(), want.1.len(), "case {i}: row count");
                assert_eq!(
                    count as usize,
                    want.1.len(),
                    "case {i}: rows counted by the reader"
                );
                assert_eq!(ragged, 0);
                for (k, ((n, got), want)) in rows.iter().zip(&want.1).enumerate() {
                    assert_eq!(*n, k as u64 + 1, "case {i}: row number");
                    assert_eq!(got, want, "case {i} row {n}");
                }
            }
        }
    }

    /// A bad line makes the file unreadable with its data row named and no value quoted; the
    /// header line is checked the same way.
    #[test]
    fn bad_ndjson_names_the_row_not_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.ndjson");
        let mut body = String::new();
        for i in 0..5_000 {
            body.push_str(&format!("{{\"nhs_number\":\"99900{i:05}\",\"x\":{i}}}\n"));
        }
        body.push_str("\"9990012345\"\n{\"nhs_number\":\"1\"}\n");
        // Each case is written, pre-passed and read afresh; the error text is returned.
        let fails = |text: &str| {
            std::fs::write(&path, text).unwrap();
            read_all(&path, &prepass(&path).unwrap())
                .map(|_| ())
                .unwrap_err()
                .0
        };
        let e = fails(&body);
        assert!(e.contains("data row 5001"), "{e}");
        assert!(!e.contains("9990012345"), "{e}");
        let e = fails("{\"a\":1}\n{\"a\": \n<html>expired</html>\n");
        assert!(e.contains("data row 2") && e.contains("column"), "{e}");
        let e = fails("\n\"9990012345\"\n");
        assert!(e.starts_with("line 1 is not a JSON object"), "{e}");
        assert!(!e.contains("9990012345"), "{e}");
        let e = fails("\n  \n");
        assert!(e.contains("no records"), "{e}");
    }
}
