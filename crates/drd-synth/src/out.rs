//! Writing one extract file in one of the formats formats.md allows, with a submitter's quirks:
//! UTF-8 with or without BOM, Windows-1252, CRLF, UK dates, header spellings, XLSX with real
//! date cells, NDJSON, gzip. Output is byte-for-byte deterministic (gzip mtime 0, fixed XLSX
//! document time).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use chrono::{Datelike, NaiveDate};
use drd_model::date::to_excel_serial;

/// One cell value.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Blank.
    E,
    /// Static text.
    S(&'static str),
    /// Owned text.
    O(String),
    /// Integer.
    I(i64),
    /// Decimal.
    F(f64),
    /// Date.
    D(NaiveDate),
}

pub use drd_model::files::{FileFormat as Format, TextEncoding as Encoding};

/// How headers are spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderStyle {
    /// `date_of_death`.
    Snake,
    /// `Date Of Death`.
    Title,
    /// `DATE-OF-DEATH`.
    UpperHyphen,
}

/// A submitter's file conventions.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// Container.
    pub format: Format,
    /// CSV encoding.
    pub encoding: Encoding,
    /// CRLF line endings (CSV).
    pub crlf: bool,
    /// Dates as DD/MM/YYYY text (CSV and NDJSON).
    pub uk_dates: bool,
    /// Gzip the file.
    pub gzip: bool,
    /// Header spelling.
    pub headers: HeaderStyle,
}

impl Style {
    /// Plain UTF-8 CSV with ISO dates.
    pub const PLAIN: Style = Style {
        format: Format::Csv,
        encoding: Encoding::Utf8,
        crlf: false,
        uk_dates: false,
        gzip: false,
        headers: HeaderStyle::Snake,
    };

    /// File extension.
    pub fn extension(&self) -> &'static str {
        match (self.format, self.gzip) {
            (Format::Csv, false) => "csv",
            (Format::Csv, true) => "csv.gz",
            (Format::Ndjson, false) => "ndjson",
            (Format::Ndjson, true) => "ndjson.gz",
            (Format::Xlsx, _) => "xlsx",
        }
    }
}

/// Spells a header in a style.
pub fn spell_header(name: &str, style: HeaderStyle) -> String {
    match style {
        HeaderStyle::Snake => name.to_string(),
        HeaderStyle::UpperHyphen => name.to_ascii_uppercase().replace('_', "-"),
        HeaderStyle::Title => name
            .split('_')
            .map(|w| {
                let mut c = w.chars();
                match c.next() {
                    Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                    None => String::new(),
                }
            })
            .collect::<Vec<_>>()
            .join(" "),
    }
}

fn fmt_date(d: NaiveDate, uk: bool, out: &mut Vec<u8>) {
    let (y, m, dd) = (d.year(), d.month(), d.day());
    if uk {
        let _ = write!(out, "{dd:02}/{m:02}/{y:04}");
    } else {
        let _ = write!(out, "{y:04}-{m:02}-{dd:02}");
    }
}

enum Sink {
    Plain(BufWriter<File>),
    Gz(Box<flate2::write::GzEncoder<BufWriter<File>>>),
}

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Plain(w) => w.write(b),
            Sink::Gz(w) => w.write(b),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.flush(),
            Sink::Gz(w) => w.flush(),
        }
    }
}

/// Writes rows of one file.
pub struct TableWriter {
    style: Style,
    headers: Vec<String>,
    sink: Option<Sink>,
    xlsx: Option<(rust_xlsxwriter::Workbook, u32, std::path::PathBuf)>,
    line: Vec<u8>,
    rows: u64,
}

impl std::fmt::Debug for TableWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableWriter")
            .field("rows", &self.rows)
            .finish()
    }
}

#[allow(clippy::needless_pass_by_value)] // used as a map_err function
fn xerr(e: rust_xlsxwriter::XlsxError) -> io::Error {
    io::Error::other(e.to_string())
}

impl TableWriter {
    /// Creates the file and writes the header. `headers` are the canonical (snake) names; the
    /// style decides how they are spelled.
    pub fn create(path: &Path, style: Style, headers: &[&str]) -> io::Result<TableWriter> {
        let spelled: Vec<String> = headers
            .iter()
            .map(|h| spell_header(h, style.headers))
            .collect();
        let mut w = TableWriter {
            style,
            headers: spelled,
            sink: None,
            xlsx: None,
            line: Vec::with_capacity(1024),
            rows: 0,
        };
        if style.format == Format::Xlsx {
            let mut wb = rust_xlsxwriter::Workbook::new();
            let created = rust_xlsxwriter::ExcelDateTime::from_ymd(2026, 1, 1).map_err(xerr)?;
            wb.set_properties(
                &rust_xlsxwriter::DocProperties::new()
                    .set_creation_datetime(&created)
                    .set_author("drdsurv synthetic data"),
            );
            let ws = wb.add_worksheet();
            for (c, h) in w.headers.iter().enumerate() {
                ws.write_string(0, c as u16, h).map_err(xerr)?;
            }
            w.xlsx = Some((wb, 1, path.to_path_buf()));
            return Ok(w);
        }
        let file = BufWriter::with_capacity(1 << 20, File::create(path)?);
        let sink = if style.gzip {
            Sink::Gz(Box::new(
                flate2::GzBuilder::new()
                    .mtime(0)
                    .write(file, flate2::Compression::fast()),
            ))
        } else {
            Sink::Plain(file)
        };
        w.sink = Some(sink);
        if style.format == Format::Csv {
            if style.encoding == Encoding::Utf8Bom {
                w.line.extend_from_slice("\u{feff}".as_bytes());
            }
            let hs = w.headers.clone();
            for (i, h) in hs.iter().enumerate() {
                if i > 0 {
                    w.line.push(b',');
                }
                push_csv_text(&mut w.line, h);
            }
            w.end_line()?;
        }
        Ok(w)
    }

    fn end_line(&mut self) -> io::Result<()> {
        if self.style.crlf {
            self.line.push(b'\r');
        }
        self.line.push(b'\n');
        let sink = self
            .sink
            .as_mut()
            .ok_or_else(|| io::Error::other("closed"))?;
        if self.style.encoding == Encoding::Windows1252 {
            let text = String::from_utf8_lossy(&self.line);
            let (bytes, _, unmappable) = encoding_rs::WINDOWS_1252.encode(&text);
            if unmappable {
                return Err(io::Error::other(
                    "a value cannot be written in Windows-1252",
                ));
            }
            sink.write_all(&bytes)?;
        } else {
            sink.write_all(&self.line)?;
        }
        self.line.clear();
        Ok(())
    }

    /// Writes one data row (cells in header order).
    pub fn row(&mut self, cells: &[Cell]) -> io::Result<()> {
        self.rows += 1;
        match self.style.format {
            Format::Xlsx => {
                let (wb, r, _) = self
                    .xlsx
                    .as_mut()
                    .ok_or_else(|| io::Error::other("closed"))?;
                let ws = wb.worksheet_from_index(0).map_err(xerr)?;
                let date_fmt = rust_xlsxwriter::Format::new().set_num_format("dd/mm/yyyy");
                for (c, cell) in cells.iter().enumerate() {
                    let c = c as u16;
                    match cell {
                        Cell::E => {}
                        Cell::S(s) => {
                            ws.write_string(*r, c, *s).map_err(xerr)?;
                        }
                        Cell::O(s) => {
                            ws.write_string(*r, c, s).map_err(xerr)?;
                        }
                        Cell::I(i) => {
                            ws.write_number(*r, c, *i as f64).map_err(xerr)?;
                        }
                        Cell::F(f) => {
                            ws.write_number(*r, c, *f).map_err(xerr)?;
                        }
                        Cell::D(d) => {
                            ws.write_number_with_format(*r, c, to_excel_serial(*d), &date_fmt)
                                .map_err(xerr)?;
                        }
                    }
                }
                *r += 1;
                Ok(())
            }
            Format::Csv => {
                for (i, cell) in cells.iter().enumerate() {
                    if i > 0 {
                        self.line.push(b',');
                    }
                    match cell {
                        Cell::E => {}
                        Cell::S(s) => push_csv_text(&mut self.line, s),
                        Cell::O(s) => push_csv_text(&mut self.line, s),
                        Cell::I(v) => {
                            let _ = write!(self.line, "{v}");
                        }
                        Cell::F(v) => {
                            let _ = write!(self.line, "{v}");
                        }
                        Cell::D(d) => fmt_date(*d, self.style.uk_dates, &mut self.line),
                    }
                }
                self.end_line()
            }
            Format::Ndjson => {
                self.line.push(b'{');
                for (i, cell) in cells.iter().enumerate() {
                    if i > 0 {
                        self.line.push(b',');
                    }
                    push_json_str(&mut self.line, &self.headers[i]);
                    self.line.push(b':');
                    match cell {
                        Cell::E => self.line.extend_from_slice(b"null"),
                        Cell::S(s) => push_json_str(&mut self.line, s),
                        Cell::O(s) => push_json_str(&mut self.line, s),
                        Cell::I(v) => {
                            let _ = write!(self.line, "{v}");
                        }
                        Cell::F(v) => {
                            let _ = write!(self.line, "{v}");
                        }
                        Cell::D(d) => {
                            self.line.push(b'"');
                            fmt_date(*d, self.style.uk_dates, &mut self.line);
                            self.line.push(b'"');
                        }
                    }
                }
                self.line.push(b'}');
                self.end_line()
            }
        }
    }

    /// Finishes the file and returns the number of data rows.
    pub fn finish(mut self) -> io::Result<u64> {
        if let Some((mut wb, _, path)) = self.xlsx.take() {
            wb.save(&path).map_err(xerr)?;
        }
        match self.sink.take() {
            Some(Sink::Plain(mut w)) => w.flush()?,
            Some(Sink::Gz(w)) => w.finish()?.flush()?,
            None => {}
        }
        Ok(self.rows)
    }
}

fn push_csv_text(out: &mut Vec<u8>, s: &str) {
    if s.contains([',', '"', '\n', '\r']) {
        out.push(b'"');
        for b in s.bytes() {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(s.as_bytes());
    }
}

fn push_json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn write(style: Style, rows: &[Vec<Cell>]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(format!("t.{}", style.extension()));
        let mut w =
            TableWriter::create(&p, style, &["case_ref", "date_of_death", "notes"]).unwrap();
        for r in rows {
            w.row(r).unwrap();
        }
        assert_eq!(w.finish().unwrap(), rows.len() as u64);
        std::fs::read(&p).unwrap()
    }

    fn date() -> Cell {
        Cell::D(NaiveDate::from_ymd_opt(2024, 3, 7).unwrap())
    }

    #[test]
    fn csv_quotes_commas_quotes_and_newlines() {
        let b = write(
            Style::PLAIN,
            &[vec![
                Cell::S("A/1"),
                date(),
                Cell::S("said \"no\",\nthen left"),
            ]],
        );
        assert_eq!(
            String::from_utf8(b).unwrap(),
            "case_ref,date_of_death,notes\nA/1,2024-03-07,\"said \"\"no\"\",\nthen left\"\n"
        );
    }

    #[test]
    fn uk_dates_crlf_bom_and_title_headers() {
        let s = Style {
            uk_dates: true,
            crlf: true,
            encoding: Encoding::Utf8Bom,
            headers: HeaderStyle::Title,
            ..Style::PLAIN
        };
        let b = write(s, &[vec![Cell::I(5), date(), Cell::E]]);
        assert_eq!(
            b,
            "\u{feff}Case Ref,Date Of Death,Notes\r\n5,07/03/2024,\r\n".as_bytes()
        );
        assert_eq!(
            spell_header("date_of_death", HeaderStyle::UpperHyphen),
            "DATE-OF-DEATH"
        );
    }

    #[test]
    fn windows_1252_is_not_utf8() {
        let s = Style {
            encoding: Encoding::Windows1252,
            ..Style::PLAIN
        };
        let b = write(
            s,
            &[vec![Cell::S("Zoë"), date(), Cell::S("O\u{2019}Connor")]],
        );
        assert!(
            String::from_utf8(b.clone()).is_err(),
            "must not be valid UTF-8"
        );
        assert!(b.windows(3).any(|w| w == b"Zo\xeb"));
        assert!(
            b.contains(&0x92),
            "right single quote is 0x92 in Windows-1252"
        );
    }

    #[test]
    fn ndjson_gzip_has_zero_mtime_and_nulls() {
        let s = Style {
            format: Format::Ndjson,
            gzip: true,
            ..Style::PLAIN
        };
        let b = write(s, &[vec![Cell::S("A\"1"), date(), Cell::E]]);
        assert_eq!(&b[..2], &[0x1f, 0x8b]);
        assert_eq!(&b[4..8], &[0, 0, 0, 0]);
        let mut text = String::new();
        io::Read::read_to_string(&mut flate2::read::GzDecoder::new(b.as_slice()), &mut text)
            .unwrap();
        assert_eq!(
            text,
            "{\"case_ref\":\"A\\\"1\",\"date_of_death\":\"2024-03-07\",\"notes\":null}\n"
        );
    }

    #[test]
    fn xlsx_is_byte_identical_across_runs() {
        let s = Style {
            format: Format::Xlsx,
            ..Style::PLAIN
        };
        let rows = [vec![Cell::S("A/1"), date(), Cell::F(1.5)]];
        let a = write(s, &rows);
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert_eq!(a, write(s, &rows), "XLSX output depends on the clock");
        assert_eq!(&a[..2], b"PK");
    }
}
