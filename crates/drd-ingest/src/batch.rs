//! Building Arrow record batches from validated values, column by column, for any of the
//! stored schemas.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int32Builder, Int64Builder,
    ListBuilder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use chrono::NaiveDate;

use crate::validate::V;

enum B {
    Utf8(StringBuilder),
    I32(Int32Builder),
    I64(Int64Builder),
    F64(Float64Builder),
    Bool(BooleanBuilder),
    Date(Date32Builder),
    Ts(TimestampMicrosecondBuilder),
    List(ListBuilder<StringBuilder>),
}

/// Accumulates rows for one schema.
pub struct BatchBuilder {
    schema: SchemaRef,
    cols: Vec<B>,
    rows: usize,
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

impl BatchBuilder {
    /// Builders for every field of `schema` (types used by `drd_model::schema` only).
    pub fn new(schema: SchemaRef) -> BatchBuilder {
        let cols = schema
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Utf8 => B::Utf8(StringBuilder::new()),
                DataType::Int32 => B::I32(Int32Builder::new()),
                DataType::Int64 => B::I64(Int64Builder::new()),
                DataType::Float64 => B::F64(Float64Builder::new()),
                DataType::Boolean => B::Bool(BooleanBuilder::new()),
                DataType::Date32 => B::Date(Date32Builder::new()),
                DataType::Timestamp(TimeUnit::Microsecond, tz) => {
                    B::Ts(TimestampMicrosecondBuilder::new().with_timezone_opt(tz.clone()))
                }
                DataType::List(item) => {
                    B::List(ListBuilder::new(StringBuilder::new()).with_field(item.clone()))
                }
                other => unreachable!("drdsurv schemas do not use {other}"),
            })
            .collect();
        BatchBuilder {
            schema,
            cols,
            rows: 0,
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

    /// Appends one row; `values` must follow the schema's field order and types.
    pub fn push(&mut self, values: &[V<'_>]) {
        debug_assert_eq!(values.len(), self.cols.len());
        for (b, v) in self.cols.iter_mut().zip(values) {
            match (b, v) {
                (B::Utf8(b), V::S(s)) => b.append_value(s),
                (B::Utf8(b), V::T(s)) => b.append_value(s),
                (B::Utf8(b), V::R(s)) => b.append_value(s.as_ref()),
                (B::Utf8(b), V::St(s)) => b.append_value(s),
                (B::Utf8(b), V::Null) => b.append_null(),
                (B::I32(b), V::I32(x)) => b.append_value(*x),
                (B::I32(b), V::Null) => b.append_null(),
                (B::I64(b), V::I64(x)) => b.append_value(*x),
                (B::I64(b), V::I32(x)) => b.append_value(i64::from(*x)),
                (B::I64(b), V::Null) => b.append_null(),
                (B::F64(b), V::F(x)) => b.append_value(*x),
                (B::F64(b), V::Null) => b.append_null(),
                (B::Bool(b), V::B(x)) => b.append_value(*x),
                (B::Bool(b), V::Null) => b.append_null(),
                (B::Date(b), V::D(d)) => b.append_value((*d - EPOCH).num_days() as i32),
                (B::Date(b), V::Null) => b.append_null(),
                (B::Ts(b), V::Ts(t)) => b.append_value(*t),
                (B::List(b), V::L(items)) => {
                    for i in items {
                        b.values().append_value(i);
                    }
                    b.append(true);
                }
                (B::List(b), V::Null) => b.append(false),
                (_, v) => unreachable!("value {v:?} does not fit its column"),
            }
        }
        self.rows += 1;
    }

    /// Takes the buffered rows as a batch.
    pub fn finish(&mut self) -> RecordBatch {
        let arrays: Vec<ArrayRef> = self
            .cols
            .iter_mut()
            .map(|b| -> ArrayRef {
                match b {
                    B::Utf8(b) => Arc::new(b.finish()),
                    B::I32(b) => Arc::new(b.finish()),
                    B::I64(b) => Arc::new(b.finish()),
                    B::F64(b) => Arc::new(b.finish()),
                    B::Bool(b) => Arc::new(b.finish()),
                    B::Date(b) => Arc::new(b.finish()),
                    B::Ts(b) => Arc::new(b.finish()),
                    B::List(b) => Arc::new(b.finish()),
                }
            })
            .collect();
        self.rows = 0;
        RecordBatch::try_new(self.schema.clone(), arrays)
            .unwrap_or_else(|e| unreachable!("batch does not fit its own schema: {e}"))
    }
}
