//! Readers: every accepted file format as a stream of string records with the header row.
//!
//! CSV and NDJSON are streamed (bounded memory whatever the size); Windows-1252 is transcoded
//! to UTF-8 on the fly; a UTF-8 byte-order mark is skipped. XLSX is read whole through calamine,
//! up to a size limit; Excel date cells become `YYYY-MM-DD`, whole numbers lose their `.0`.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use calamine::{Data, Reader};
use csv::StringRecord;

use crate::chunk::{CHUNK_BYTES, Chunk};
use crate::prepass::{Encoding, Format, Prepass};

/// Default largest XLSX accepted (uncompressed bytes on disk).
pub const DEFAULT_XLSX_LIMIT: u64 = 200 * 1024 * 1024;

/// Rows of one file.
pub struct Records {
    /// Header cells as written.
    pub headers: Vec<String>,
    inner: Inner,
    pending: Option<StringRecord>,
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
    Rows(std::vec::IntoIter<StringRecord>),
    Ndjson {
        lines: io::Lines<BufReader<Box<dyn Read + Send>>>,
        keys: Vec<String>,
    },
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
                pending: None,
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
                pending: None,
                ragged_rows: 0,
                rows: 0,
            })
        }
        Format::Ndjson => {
            let raw = open_raw(path, pre.gzip).map_err(io_err)?;
            let mut lines = BufReader::with_capacity(1 << 20, raw).lines();
            // The first object's keys are the header.
            let first = loop {
                match lines.next() {
                    None => return Err(Unreadable("the NDJSON file has no records".into())),
                    Some(Err(e)) => return Err(io_err(e)),
                    Some(Ok(l)) if l.trim().is_empty() => continue,
                    Some(Ok(l)) => break l,
                }
            };
            let obj: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&first)
                .map_err(|e| Unreadable(format!("line 1 is not a JSON object: {e}")))?;
            let keys: Vec<String> = obj.keys().cloned().collect();
            let first_rec = json_record(&obj, &keys);
            let inner = Inner::Ndjson {
                lines,
                keys: keys.clone(),
            };
            let mut r = Records {
                headers: keys,
                inner,
                pending: None,
                ragged_rows: 0,
                rows: 0,
            };
            r.push_front(first_rec);
            Ok(r)
        }
    }
}

fn json_record(obj: &serde_json::Map<String, serde_json::Value>, keys: &[String]) -> StringRecord {
    let mut rec = StringRecord::with_capacity(64, keys.len());
    for k in keys {
        match obj.get(k) {
            None | Some(serde_json::Value::Null) => rec.push_field(""),
            Some(serde_json::Value::String(s)) => rec.push_field(s),
            Some(v) => rec.push_field(&v.to_string()),
        }
    }
    rec
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
    fn push_front(&mut self, rec: StringRecord) {
        if let Inner::Ndjson { .. } = self.inner {
            self.pending = Some(rec);
        }
    }

    /// Fills `chunk` with the next rows (up to `max_rows`, or [`CHUNK_BYTES`] of text), each
    /// padded or cut to the header width. Returns false when no rows were left. A structural
    /// error mid-file makes the whole file unreadable.
    pub fn next_chunk(&mut self, chunk: &mut Chunk, max_rows: usize) -> Result<bool, Unreadable> {
        let width = self.headers.len();
        chunk.reset(width, self.rows + 1);
        let mut rec = StringRecord::new();
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
                Inner::Ndjson { lines, keys } => {
                    if let Some(p) = self.pending.take() {
                        rec = p;
                    } else {
                        let mut got = false;
                        for l in lines.by_ref() {
                            let l =
                                l.map_err(|e| Unreadable(format!("cannot read the file: {e}")))?;
                            if l.trim().is_empty() {
                                continue;
                            }
                            let obj: serde_json::Map<String, serde_json::Value> =
                                serde_json::from_str(&l).map_err(|e| {
                                    Unreadable(format!("a line is not a JSON object: {e}"))
                                })?;
                            rec = json_record(&obj, keys);
                            got = true;
                            break;
                        }
                        if !got {
                            break;
                        }
                    }
                    chunk.push_fields(rec.iter())
                }
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
