//! Building Arrow record batches from validated values, column by column, for any of the
//! stored schemas.
//!
//! Validation writes each value straight into its column's buffer as soon as it is known, in
//! any column order; a row that fails later is taken back out ([`BatchBuilder::rollback_row`]).
//! The buffers are plain vectors that become Arrow arrays without a copy
//! ([`BatchBuilder::finish`]), and columns whose value is the same on every row of a file
//! (submitter, file hash, vintage, ingest time) are set once per batch, not once per row.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array, ListArray,
    RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::buffer::{BooleanBuffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, FieldRef, SchemaRef, TimeUnit};
use chrono::NaiveDate;

use crate::validate::V;

/// The values of one column: one entry per row (nulls hold a placeholder).
enum Buf {
    Utf8 {
        offsets: Vec<i32>,
        data: Vec<u8>,
    },
    I32(Vec<i32>),
    I64(Vec<i64>),
    F64(Vec<f64>),
    Bool(Vec<bool>),
    Date(Vec<i32>),
    Ts(Vec<i64>, Option<Arc<str>>),
    List {
        item: FieldRef,
        offsets: Vec<i32>,
        ends: Vec<i32>,
        data: Vec<u8>,
    },
}

struct Column {
    buf: Buf,
    /// Whether each row's value is present.
    valid: Vec<bool>,
    /// How many of `valid` are false.
    nulls: usize,
    /// A value every row of the batch has, filled in by `finish`.
    constant: Option<V<'static>>,
}

/// Accumulates rows for one schema.
pub struct BatchBuilder {
    schema: SchemaRef,
    cols: Vec<Column>,
    rows: usize,
    /// The column the next [`BatchBuilder::push`] writes.
    cursor: usize,
}

impl std::fmt::Debug for BatchBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchBuilder")
            .field("rows", &self.rows)
            .finish()
    }
}

const EPOCH: NaiveDate = match NaiveDate::from_ymd_opt(1970, 1, 1) {
    Some(d) => d,
    None => panic!("epoch"),
};

impl Buf {
    fn new(t: &DataType) -> Buf {
        match t {
            DataType::Utf8 => Buf::Utf8 {
                offsets: vec![0],
                data: Vec::new(),
            },
            DataType::Int32 => Buf::I32(Vec::new()),
            DataType::Int64 => Buf::I64(Vec::new()),
            DataType::Float64 => Buf::F64(Vec::new()),
            DataType::Boolean => Buf::Bool(Vec::new()),
            DataType::Date32 => Buf::Date(Vec::new()),
            DataType::Timestamp(TimeUnit::Microsecond, tz) => Buf::Ts(Vec::new(), tz.clone()),
            DataType::List(item) => Buf::List {
                item: item.clone(),
                offsets: vec![0],
                ends: vec![0],
                data: Vec::new(),
            },
            other => unreachable!("drdsurv schemas do not use {other}"),
        }
    }

    /// Appends `v`; false when it is null. Inlined into each call site, where the value's
    /// variant is usually known, so only the column's type is matched at run time.
    #[inline(always)]
    fn push(&mut self, v: V<'_>) -> bool {
        fn text(offsets: &mut Vec<i32>, data: &mut Vec<u8>, s: &str) {
            data.extend_from_slice(s.as_bytes());
            offsets.push(data.len() as i32);
        }
        match (self, v) {
            (Buf::Utf8 { offsets, data }, V::T(s)) => text(offsets, data, s),
            (Buf::Utf8 { offsets, data }, V::St(s)) => text(offsets, data, s),
            (Buf::Utf8 { offsets, data }, V::R(s)) => text(offsets, data, &s),
            (Buf::Utf8 { offsets, data }, V::S(s)) => text(offsets, data, &s),
            (Buf::Utf8 { offsets, data }, V::Null) => {
                offsets.push(data.len() as i32);
                return false;
            }
            (Buf::I32(b), V::I32(x)) => b.push(x),
            (Buf::I64(b), V::I64(x)) => b.push(x),
            (Buf::I64(b), V::I32(x)) => b.push(i64::from(x)),
            (Buf::F64(b), V::F(x)) => b.push(x),
            (Buf::Bool(b), V::B(x)) => b.push(x),
            (Buf::Date(b), V::D(d)) => b.push((d - EPOCH).num_days() as i32),
            (Buf::Ts(b, _), V::Ts(t)) => b.push(t),
            (
                Buf::List {
                    offsets,
                    ends,
                    data,
                    ..
                },
                V::L(items),
            ) => {
                for i in items {
                    data.extend_from_slice(i.as_bytes());
                    ends.push(data.len() as i32);
                }
                offsets.push((ends.len() - 1) as i32);
            }
            (Buf::List { offsets, ends, .. }, V::Null) => {
                offsets.push((ends.len() - 1) as i32);
                return false;
            }
            (Buf::I32(b) | Buf::Date(b), V::Null) => {
                b.push(0);
                return false;
            }
            (Buf::I64(b) | Buf::Ts(b, _), V::Null) => {
                b.push(0);
                return false;
            }
            (Buf::F64(b), V::Null) => {
                b.push(0.0);
                return false;
            }
            (Buf::Bool(b), V::Null) => {
                b.push(false);
                return false;
            }
            (_, v) => unreachable!("value {v:?} does not fit its column"),
        }
        true
    }

    /// Keeps the first `rows` values.
    fn truncate(&mut self, rows: usize) {
        match self {
            Buf::Utf8 { offsets, data } => {
                offsets.truncate(rows + 1);
                data.truncate(offsets[rows] as usize);
            }
            Buf::I32(b) | Buf::Date(b) => b.truncate(rows),
            Buf::I64(b) | Buf::Ts(b, _) => b.truncate(rows),
            Buf::F64(b) => b.truncate(rows),
            Buf::Bool(b) => b.truncate(rows),
            Buf::List {
                offsets,
                ends,
                data,
                ..
            } => {
                offsets.truncate(rows + 1);
                ends.truncate(offsets[rows] as usize + 1);
                data.truncate(ends[ends.len() - 1] as usize);
            }
        }
    }

    /// The values as an array, leaving empty buffers sized like these.
    fn take(&mut self, nulls: Option<NullBuffer>) -> ArrayRef {
        fn take<T>(v: &mut Vec<T>) -> Vec<T> {
            let cap = v.len();
            std::mem::replace(v, Vec::with_capacity(cap))
        }
        fn offsets(v: &mut Vec<i32>) -> OffsetBuffer<i32> {
            let o = take(v);
            v.push(0);
            OffsetBuffer::new(ScalarBuffer::from(o))
        }
        match self {
            Buf::Utf8 { offsets: o, data } => {
                let o = offsets(o);
                let data = take(data);
                Arc::new(StringArray::new(o, data.into(), nulls))
            }
            Buf::I32(b) => Arc::new(Int32Array::new(take(b).into(), nulls)),
            Buf::Date(b) => Arc::new(Date32Array::new(take(b).into(), nulls)),
            Buf::I64(b) => Arc::new(Int64Array::new(take(b).into(), nulls)),
            Buf::Ts(b, tz) => Arc::new(
                TimestampMicrosecondArray::new(take(b).into(), nulls).with_timezone_opt(tz.clone()),
            ),
            Buf::F64(b) => Arc::new(Float64Array::new(take(b).into(), nulls)),
            Buf::Bool(b) => {
                let values = BooleanBuffer::from(take(b));
                Arc::new(BooleanArray::new(values, nulls))
            }
            Buf::List {
                item,
                offsets: o,
                ends,
                data,
            } => {
                let o = offsets(o);
                let items = StringArray::new(offsets(ends), take(data).into(), None);
                Arc::new(ListArray::new(item.clone(), o, Arc::new(items), nulls))
            }
        }
    }
}

impl BatchBuilder {
    /// Buffers for every field of `schema` (types used by `drd_model::schema` only).
    pub fn new(schema: SchemaRef) -> BatchBuilder {
        let cols = schema
            .fields()
            .iter()
            .map(|f| Column {
                buf: Buf::new(f.data_type()),
                valid: Vec::new(),
                nulls: 0,
                constant: None,
            })
            .collect();
        BatchBuilder {
            schema,
            cols,
            rows: 0,
            cursor: 0,
        }
    }

    /// Rows buffered.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no rows are buffered.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Gives column `k` the value `v` on every row, from now on; its values are not pushed.
    pub fn set_constant(&mut self, k: usize, v: V<'static>) {
        self.cols[k].constant = Some(v);
    }

    /// Starts a row whose next pushed value goes to column `k`.
    #[inline]
    pub fn begin_row(&mut self, k: usize) {
        self.cursor = k;
    }

    /// Writes the next column's value of the current row.
    #[inline(always)]
    pub fn push(&mut self, v: V<'_>) {
        let k = self.cursor;
        self.set(k, v);
        self.cursor = k + 1;
    }

    /// Writes the next columns' values of the current row.
    #[inline]
    pub fn extend<'a>(&mut self, values: impl IntoIterator<Item = V<'a>>) {
        for v in values {
            self.push(v);
        }
    }

    /// Leaves the next `n` columns for [`BatchBuilder::set`].
    #[inline]
    pub fn skip(&mut self, n: usize) {
        self.cursor += n;
    }

    /// The column the next [`BatchBuilder::push`] writes.
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// Writes column `k`'s value of the current row.
    #[inline(always)]
    pub fn set(&mut self, k: usize, v: V<'_>) {
        let c = &mut self.cols[k];
        debug_assert!(c.constant.is_none(), "column {k} is constant");
        let present = c.buf.push(v);
        c.valid.push(present);
        c.nulls += usize::from(!present);
    }

    /// Ends the current row: every column not constant must have had exactly one value.
    #[inline]
    pub fn commit_row(&mut self) {
        self.rows += 1;
        debug_assert!(
            self.cols
                .iter()
                .all(|c| c.constant.is_some() || c.valid.len() == self.rows),
            "a row left a column without a value"
        );
    }

    /// Takes back whatever the current row wrote.
    #[inline]
    pub fn rollback_row(&mut self) {
        let rows = self.rows;
        for c in &mut self.cols {
            if c.valid.len() > rows {
                c.nulls -= c.valid[rows..].iter().filter(|v| !**v).count();
                c.valid.truncate(rows);
                c.buf.truncate(rows);
            }
        }
    }

    /// Appends one whole row; `values` must follow the schema's field order and types.
    pub fn push_row<'a>(&mut self, values: impl IntoIterator<Item = V<'a>>) {
        self.begin_row(0);
        self.extend(values);
        debug_assert_eq!(self.cursor, self.cols.len());
        self.commit_row();
    }

    /// Takes the buffered rows as a batch.
    pub fn finish(&mut self) -> RecordBatch {
        let rows = self.rows;
        let arrays: Vec<ArrayRef> = self
            .cols
            .iter_mut()
            .map(|c| {
                if let Some(v) = &c.constant {
                    for _ in 0..rows {
                        let present = c.buf.push(v.clone());
                        c.valid.push(present);
                        c.nulls += usize::from(!present);
                    }
                }
                let nulls = (c.nulls > 0).then(|| NullBuffer::from(c.valid.as_slice()));
                c.valid.clear();
                c.nulls = 0;
                c.buf.take(nulls)
            })
            .collect();
        self.rows = 0;
        self.cursor = 0;
        RecordBatch::try_new(self.schema.clone(), arrays)
            .unwrap_or_else(|e| unreachable!("batch does not fit its own schema: {e}"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Field, Int32Type, Schema};

    /// Rows written out of column order, rolled back part-way, and constants, read back
    /// through Arrow.
    #[test]
    fn rows_commit_roll_back_and_finish() {
        let item = Arc::new(Field::new("element", DataType::Utf8, false));
        let schema = Arc::new(Schema::new(vec![
            Field::new("s", DataType::Utf8, true),
            Field::new("n", DataType::Int32, true),
            Field::new("l", DataType::List(item), true),
            Field::new("c", DataType::Utf8, false),
            Field::new("b", DataType::Boolean, true),
        ]));
        let mut b = BatchBuilder::new(schema);
        b.set_constant(3, V::R("same".into()));
        for round in 0..2 {
            b.begin_row(1);
            b.push(V::I32(7));
            b.push(V::L(vec!["x".into(), "yz".into()]));
            b.set(0, V::T("first"));
            b.set(4, V::B(true));
            b.commit_row();
            // A failing row: part written, then taken back.
            b.begin_row(0);
            b.push(V::T("dropped"));
            b.push(V::I32(99));
            b.push(V::L(vec!["gone".into()]));
            b.rollback_row();
            b.begin_row(0);
            b.push(V::Null);
            b.push(V::Null);
            b.push(V::Null);
            b.skip(1);
            b.push(V::Null);
            b.commit_row();
            let batch = b.finish();
            assert_eq!(batch.num_rows(), 2, "round {round}");
            let s = batch.column(0).as_string::<i32>();
            assert_eq!((s.value(0), s.is_null(1)), ("first", true));
            let n = batch.column(1).as_primitive::<Int32Type>();
            assert_eq!((n.value(0), n.is_null(1)), (7, true));
            let l = batch.column(2).as_list::<i32>();
            let first = l.value(0);
            let items = first.as_string::<i32>();
            assert_eq!(
                (items.len(), items.value(0), items.value(1)),
                (2, "x", "yz")
            );
            assert!(l.is_null(1));
            let c = batch.column(3).as_string::<i32>();
            assert_eq!(
                (c.value(0), c.value(1), c.null_count()),
                ("same", "same", 0)
            );
            let bo = batch.column(4).as_boolean();
            assert!(bo.value(0) && bo.is_null(1));
        }
    }
}
