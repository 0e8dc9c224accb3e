//! The one error type of `drd-model`.

use std::fmt;

/// Everything that can go wrong when parsing or validating domain values and reference tables.
///
/// Every variant says what was wrong and what was expected. Variants about identifiers
/// ([`ModelError::Identifier`]) never carry the offending value: formats.md forbids echoing an
/// NHS number, name, date of birth, postcode or case reference in any message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// A non-identifier value did not parse. Used for codes, dates, GSS codes, ICD-10 codes,
    /// age bands and periods. `what` names the kind of value (e.g. "sex code").
    #[error("invalid {what} '{value}': expected {expected}")]
    Invalid {
        /// The kind of value, e.g. "sex code" or "period".
        what: &'static str,
        /// The value as received (already trimmed).
        value: String,
        /// What would have been accepted.
        expected: String,
    },
    /// An identifier column broke a rule. The value is deliberately absent.
    #[error("invalid {column}: {rule}")]
    Identifier {
        /// The identifier column, e.g. `nhs_number`.
        column: &'static str,
        /// The rule that was broken, without the value.
        rule: &'static str,
    },
    /// A reference file failed validation. `row` is the 1-based data row (the header is not
    /// counted) and `line` the 1-based physical line, when the problem is in one row.
    #[error("{}", ReferenceLocation { file, row: *row, line: *line, column: column.as_deref(), message })]
    Reference {
        /// The file (or source name) being loaded.
        file: String,
        /// 1-based data row, if the problem is in one row.
        row: Option<u64>,
        /// 1-based physical line of that row, if known.
        line: Option<u64>,
        /// The column, if the problem is in one column.
        column: Option<String>,
        /// What was wrong and what was expected.
        message: String,
    },
}

struct ReferenceLocation<'a> {
    file: &'a str,
    row: Option<u64>,
    line: Option<u64>,
    column: Option<&'a str>,
    message: &'a str,
}

impl fmt::Display for ReferenceLocation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(row) = self.row {
            write!(f, ", row {row}")?;
        }
        if let Some(line) = self.line {
            write!(f, " (line {line})")?;
        }
        if let Some(col) = self.column {
            write!(f, ", column '{col}'")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl ModelError {
    /// Shorthand for [`ModelError::Invalid`].
    pub fn invalid(what: &'static str, value: &str, expected: impl Into<String>) -> Self {
        ModelError::Invalid {
            what,
            value: value.to_string(),
            expected: expected.into(),
        }
    }

    /// Shorthand for [`ModelError::Identifier`].
    pub fn identifier(column: &'static str, rule: &'static str) -> Self {
        ModelError::Identifier { column, rule }
    }
}

/// Result alias for this crate.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;
