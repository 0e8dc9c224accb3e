//! A chunk: a few thousand consecutive rows of one file in one flat buffer, the unit the
//! reader hands to the validation lanes.
//!
//! Every row has exactly the header's number of fields (the reader pads short rows and cuts
//! long ones), so field `j` of row `r` is a slice of one UTF-8 string found by two look-ups.

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
    /// End offset of every field, `rows * width` of them.
    ends: Vec<u32>,
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

impl Chunk {
    /// An empty chunk for rows of `width` fields starting at data row `first_row`, reusing
    /// this chunk's buffers.
    pub fn reset(&mut self, width: usize, first_row: u64) {
        if self.bytes.is_empty() && !self.text.is_empty() {
            self.bytes = std::mem::take(&mut self.text).into_bytes();
        }
        self.bytes.clear();
        self.text.clear();
        self.ends.clear();
        self.width = width;
        self.rows = 0;
        self.first_row = first_row;
    }

    /// Appends one row from raw field bytes: `fields` holds the bytes of all fields and
    /// `ends` the end of each, relative to `fields`. The row is padded with empty fields or
    /// cut to the chunk's width; returns whether it had to be.
    pub fn push_raw(&mut self, fields: &[u8], ends: &[usize]) -> bool {
        let base = self.bytes.len();
        let keep = ends.len().min(self.width);
        let used = if keep == 0 { 0 } else { ends[keep - 1] };
        self.bytes.extend_from_slice(&fields[..used]);
        for &e in &ends[..keep] {
            self.ends.push((base + e) as u32);
        }
        let end = self.bytes.len() as u32;
        for _ in keep..self.width {
            self.ends.push(end);
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
            self.bytes.extend_from_slice(f.as_bytes());
            self.ends.push(self.bytes.len() as u32);
        }
        let end = self.bytes.len() as u32;
        for _ in n.min(self.width)..self.width {
            self.ends.push(end);
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
        let i = r * self.width + j;
        let end = self.ends.get(i).map_or(0, |&e| e as usize);
        let start = if i == 0 {
            0
        } else {
            self.ends.get(i - 1).map_or(0, |&e| e as usize)
        };
        self.text.get(start..end).unwrap_or("")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
