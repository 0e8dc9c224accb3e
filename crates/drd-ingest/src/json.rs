//! NDJSON lines parsed straight into a chunk's fields, on the validation lanes.
//!
//! The first non-blank line's keys, sorted and without repeats, are the file's header. Every
//! later line is one JSON object whose values are written into the slot of their key, with no
//! map and no owned key in between:
//! - a missing key or `null` gives "";
//! - a string gives its text (escapes decoded);
//! - any other value gives its compact JSON text (`7`, `1.5`, `true`, `{"a":1}`);
//! - a key the header does not have is skipped;
//! - a key given twice keeps its last value.
//!
//! Lines end at `\n`. A line of nothing but white space is not a record and is not counted.

use std::collections::HashMap;
use std::fmt;
use std::fmt::Write;

use serde::Deserializer as _;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Whether a line holds no record: nothing but white space (as `str::trim` sees it).
pub fn is_blank(line: &[u8]) -> bool {
    match line.iter().find(|b| !b.is_ascii_whitespace()) {
        None => true,
        Some(b) if b.is_ascii() => false,
        Some(_) => std::str::from_utf8(line).is_ok_and(|s| s.trim().is_empty()),
    }
}

/// The `\n`-separated lines of `bytes` (the last one may be empty).
pub fn lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    memchr::memchr_iter(b'\n', bytes)
        .chain(std::iter::once(bytes.len()))
        .map(move |end| {
            let line = &bytes[start..end];
            start = end + 1;
            line
        })
}

/// Records in `bytes`: its lines that are not blank.
pub fn count_lines(bytes: &[u8]) -> u64 {
    lines(bytes).filter(|l| !is_blank(l)).count() as u64
}

/// The header of an NDJSON file and how to find a key's column quickly.
#[derive(Debug)]
pub struct JsonKeys {
    /// Column names, sorted.
    pub names: Vec<String>,
    index: HashMap<String, usize>,
    /// Columns in the order the first line gave its keys: later lines usually repeat it, so
    /// the next key is guessed before it is looked up.
    order: Vec<usize>,
}

impl JsonKeys {
    /// The header from the first record's line. `Err` with serde_json's message (which
    /// names a position, never a value) when the line is not a JSON object.
    pub fn from_first_line(line: &[u8]) -> Result<JsonKeys, String> {
        let mut seen: Vec<String> = Vec::new();
        let mut de = serde_json::Deserializer::from_slice(line);
        de.deserialize_map(KeyCollector(&mut seen))
            .and_then(|()| de.end())
            .map_err(|e| describe(&e))?;
        let mut names = seen.clone();
        names.sort();
        names.dedup();
        let index: HashMap<String, usize> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect();
        let mut order = Vec::new();
        for k in &seen {
            let i = index[k];
            if !order.contains(&i) {
                order.push(i);
            }
        }
        Ok(JsonKeys {
            names,
            index,
            order,
        })
    }

    /// Columns.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there are no columns.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// serde_json's message for a line that is not a JSON object. Errors about the shape of a
/// valid JSON value would quote the value, so they get a fixed text instead.
pub fn describe(e: &serde_json::Error) -> String {
    match e.classify() {
        serde_json::error::Category::Data => {
            format!("valid JSON but not an object, at column {}", e.column())
        }
        _ => e.to_string(),
    }
}

/// Parses one line into `slots` (start and end of each column's text in `out`, for the
/// columns `take` marks, all of them without it; slots of keys the line lacks are left as
/// they were). `cursor` carries the key-order guess from line to line.
pub fn parse_line(
    line: &[u8],
    keys: &JsonKeys,
    take: Option<&[bool]>,
    cursor: &mut usize,
    out: &mut String,
    slots: &mut [(u32, u32)],
) -> Result<(), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(line);
    de.deserialize_map(RowVisitor {
        keys,
        take,
        cursor,
        out,
        slots,
    })?;
    de.end()
}

/// Records a line's keys in order (values skipped).
struct KeyCollector<'a>(&'a mut Vec<String>);

impl<'de> Visitor<'de> for KeyCollector<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(k) = map.next_key::<String>()? {
            map.next_value::<IgnoredAny>()?;
            self.0.push(k);
        }
        Ok(())
    }
}

struct RowVisitor<'a> {
    keys: &'a JsonKeys,
    take: Option<&'a [bool]>,
    cursor: &'a mut usize,
    out: &'a mut String,
    slots: &'a mut [(u32, u32)],
}

impl<'de> Visitor<'de> for RowVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        loop {
            let key = KeySeed {
                keys: self.keys,
                cursor: &mut *self.cursor,
            };
            let Some(column) = map.next_key_seed(key)? else {
                break;
            };
            match column {
                Some(j) if self.take.is_none_or(|t| t[j]) => {
                    let start = self.out.len() as u32;
                    map.next_value_seed(ValueSeed(&mut *self.out))?;
                    self.slots[j] = (start, self.out.len() as u32);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// A key to its column (`None` for a key the header lacks).
struct KeySeed<'a> {
    keys: &'a JsonKeys,
    cursor: &'a mut usize,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Option<usize>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: serde::de::Error>(self, k: &str) -> Result<Option<usize>, E> {
        let keys = self.keys;
        if let Some(&j) = keys.order.get(*self.cursor)
            && keys.names[j] == k
        {
            *self.cursor += 1;
            return Ok(Some(j));
        }
        let found = keys.index.get(k).copied();
        *self.cursor = match found.and_then(|j| keys.order.iter().position(|&o| o == j)) {
            Some(p) => p + 1,
            None => keys.order.len(),
        };
        Ok(found)
    }
}

/// A value's text appended to the buffer (nothing for `null`).
struct ValueSeed<'a>(&'a mut String);

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        self.0.push_str(v);
        Ok(())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<(), E> {
        self.0.push_str(if v { "true" } else { "false" });
        Ok(())
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<(), E> {
        self.0.push_str(itoa::Buffer::new().format(v));
        Ok(())
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<(), E> {
        self.0.push_str(itoa::Buffer::new().format(v));
        Ok(())
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<(), E> {
        // The text serde_json itself gives the number.
        match serde_json::Number::from_f64(v) {
            Some(n) => write!(self.0, "{n}").map_err(E::custom),
            None => Ok(()),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        let v: serde_json::Value =
            serde::Deserialize::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
        write!(self.0, "{v}").map_err(serde::de::Error::custom)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        let v: serde_json::Value =
            serde::Deserialize::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))?;
        write!(self.0, "{v}").map_err(serde::de::Error::custom)
    }
}
