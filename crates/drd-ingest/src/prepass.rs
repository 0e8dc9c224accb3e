//! The pre-pass over a whole file: SHA-256 of the bytes as received, gzip detection, format
//! detection by extension and magic bytes, and the encoding decision (formats.md: decided for
//! the whole file, because the first bad byte may come after a million rows).

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

pub use drd_model::files::{FileFormat as Format, TextEncoding as Encoding};

/// What the pre-pass found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Prepass {
    /// SHA-256 of the file exactly as received, hex.
    pub sha256: String,
    /// Size in bytes as received.
    pub bytes: u64,
    /// Gzip-compressed.
    pub gzip: bool,
    /// The detected format, or why the file is unreadable.
    pub format: Result<Format, String>,
    /// Encoding (CSV and NDJSON).
    pub encoding: Option<Encoding>,
    /// UTF-8 text holding no `"` at all: every CSV record is one line, so the reader may
    /// split it without a quoting parser (`read::open`).
    pub quote_free: bool,
}

/// SHA-256 and size of the file's bytes, read on their own.
fn digest(path: &Path) -> io::Result<(String, u64)> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    let hex = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((hex, bytes))
}

/// Name without a trailing `.gz`, lower-cased.
fn inner_name(path: &Path) -> String {
    let n = path
        .file_name()
        .map(|s| s.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    n.strip_suffix(".gz").map(str::to_string).unwrap_or(n)
}

/// Runs the pre-pass. The SHA-256 is computed on a second thread, reading the file on its
/// own, while this one scans the content.
pub fn prepass(path: &Path) -> io::Result<Prepass> {
    prepass_then(path, |_| ()).map(|(p, ())| p)
}

/// The pre-pass, then `then` on this thread while the SHA-256 thread may still be hashing
/// (hashing a large file takes longer than scanning it; `then` uses the idle core). `then`
/// sees the pre-pass with an empty `sha256` and `bytes` from the file system.
pub fn prepass_then<T: Send>(
    path: &Path,
    then: impl FnOnce(&Prepass) -> T + Send,
) -> io::Result<(Prepass, T)> {
    std::thread::scope(|scope| {
        let hashing = scope.spawn(|| digest(path));
        let found = examine(path).and_then(|f| Ok((f, std::fs::metadata(path)?.len())));
        let after = found
            .as_ref()
            .ok()
            .map(|((gzip, (format, encoding, quote_free)), len)| {
                then(&Prepass {
                    sha256: String::new(),
                    bytes: *len,
                    gzip: *gzip,
                    format: format.clone(),
                    encoding: *encoding,
                    quote_free: *quote_free,
                })
            });
        let (sha256, bytes) = hashing
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))?;
        let ((gzip, (format, encoding, quote_free)), _) = found?;
        let pre = Prepass {
            sha256,
            bytes,
            gzip,
            format,
            encoding,
            quote_free,
        };
        // `then` ran: the scan succeeded.
        after
            .map(|t| (pre, t))
            .ok_or_else(|| io::Error::other("the pre-pass scan failed"))
    })
}

/// Gzip, format, encoding and quotes, from the content.
fn examine(path: &Path) -> io::Result<(bool, Scan)> {
    let mut h = BufReader::with_capacity(1 << 20, File::open(path)?);
    let mut head = [0u8; 2];
    let n = read_full(&mut h, &mut head)?;
    let gzip = n == 2 && head == [0x1f, 0x8b];
    let name = inner_name(path);
    let (format, encoding, quote_free) = {
        let prefix: &[u8] = &head[..n];
        let chained = prefix.chain(&mut h);
        if gzip {
            let mut dec = flate2::read::MultiGzDecoder::new(chained);
            match scan(&mut dec, &name) {
                Ok(x) => x,
                Err(e)
                    if e.kind() == io::ErrorKind::InvalidInput
                        || e.kind() == io::ErrorKind::InvalidData
                        || e.kind() == io::ErrorKind::UnexpectedEof =>
                {
                    (Err(format!("the gzip stream is corrupt: {e}")), None, false)
                }
                Err(e) => return Err(e),
            }
        } else {
            let mut r = chained;
            scan(&mut r, &name)?
        }
    };
    Ok((gzip, (format, encoding, quote_free)))
}

fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Reads the (decompressed) content once: magic bytes, then UTF-8 validity of the whole text.
type Scan = (Result<Format, String>, Option<Encoding>, bool);

fn scan<R: Read>(r: &mut R, name: &str) -> io::Result<Scan> {
    let mut buf = vec![0u8; 1 << 20];
    let first = read_full(r, &mut buf[..8192])?;
    let head = &buf[..first];
    let ext = name.rsplit('.').next().unwrap_or("");
    if head.starts_with(b"PK\x03\x04") {
        // A zip container: an XLSX workbook (calamine decides whether it really is one).
        io::copy(r, &mut io::sink())?;
        return Ok((Ok(Format::Xlsx), None, false));
    }
    if head.starts_with(b"%PDF") || head.starts_with(b"\xd0\xcf\x11\xe0") {
        io::copy(r, &mut io::sink())?;
        let what = if head.starts_with(b"%PDF") {
            "a PDF document"
        } else {
            "an old binary Office file (.xls/.doc)"
        };
        return Ok((
            Err(format!("the file is {what}, not CSV, XLSX or NDJSON")),
            None,
            false,
        ));
    }
    if ext == "xlsx" || ext == "xlsm" {
        io::copy(r, &mut io::sink())?;
        return Ok((
            Err("the file is named .xlsx but is not an Excel workbook (no zip signature)".into()),
            None,
            false,
        ));
    }
    if first == 0 {
        return Ok((Err("the file is empty".into()), None, false));
    }
    if head.contains(&0) {
        io::copy(r, &mut io::sink())?;
        return Ok((
            Err("the file holds binary data (NUL bytes), not text".into()),
            None,
            false,
        ));
    }
    let bom = head.starts_with(b"\xef\xbb\xbf");
    let body = if bom { &head[3..] } else { head };
    let first_char = body.iter().find(|b| !b.is_ascii_whitespace()).copied();
    let format = if ext == "ndjson" || ext == "jsonl" || (ext != "csv" && first_char == Some(b'{'))
    {
        Format::Ndjson
    } else {
        Format::Csv
    };
    // UTF-8 validity over the whole stream, carrying incomplete sequences across chunks.
    let mut valid = true;
    let mut quote_free = true;
    let mut carry: usize;
    let mut len = first;
    loop {
        quote_free = quote_free && memchr::memchr(b'"', &buf[..len]).is_none();
        match std::str::from_utf8(&buf[..len]) {
            Ok(_) => carry = 0,
            Err(e) if e.error_len().is_none() => carry = len - e.valid_up_to(),
            Err(_) => {
                valid = false;
                io::copy(r, &mut io::sink())?;
                break;
            }
        }
        if carry > 0 {
            buf.copy_within(len - carry..len, 0);
        }
        let k = r.read(&mut buf[carry..])?;
        if k == 0 {
            if carry > 0 {
                valid = false;
            }
            break;
        }
        len = carry + k;
    }
    let encoding = if !valid {
        Encoding::Windows1252
    } else if bom {
        Encoding::Utf8Bom
    } else {
        Encoding::Utf8
    };
    if format == Format::Ndjson && encoding == Encoding::Windows1252 {
        return Ok((
            Err("NDJSON must be UTF-8 but the file is not".into()),
            None,
            false,
        ));
    }
    Ok((Ok(format), Some(encoding), valid && quote_free))
}
