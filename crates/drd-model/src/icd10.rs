//! ICD-10 underlying-cause codes as written in coroner extracts (formats.md §1).

use crate::error::{ModelError, Result};

/// A normalised ICD-10 code: upper case, no dot, e.g. `X42`, `F112`, `X420`.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Icd10(String);

impl Icd10 {
    /// Parses `X42`, `F11.2`, `x420`, ` X42 ` and similar: trims, upper-cases and drops the dot.
    /// The shape must be a letter, two digits, and at most one more character (digit, or `X`
    /// for a dagger placeholder), as ICD-10 categories and subcategories are.
    pub fn parse(raw: &str) -> Result<Self> {
        let t = raw.trim();
        let norm: String = t
            .chars()
            .filter(|c| *c != '.')
            .collect::<String>()
            .to_ascii_uppercase();
        let b = norm.as_bytes();
        let ok = (3..=4).contains(&b.len())
            && b[0].is_ascii_uppercase()
            && b[1].is_ascii_digit()
            && b[2].is_ascii_digit()
            && (b.len() == 3 || b[3].is_ascii_digit() || b[3] == b'X')
            && t.chars().filter(|c| *c == '.').count() <= 1
            && (!t.contains('.') || (t.find('.') == Some(3) && !t.ends_with('.')));
        if ok {
            Ok(Icd10(norm))
        } else {
            Err(ModelError::invalid(
                "ICD-10 code",
                t,
                "a code such as X42, F11.2 or X420 (letter, two digits, optional fourth digit)",
            ))
        }
    }

    /// The three-character category, e.g. `F11` for `F112`.
    pub fn category(&self) -> &str {
        &self.0[..3]
    }

    /// The normalised code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Icd10 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An ICD-10 external-cause T-code for a substance, such as `T40.1`, kept in its dotted form.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct TCode(String);

impl TCode {
    /// Parses `T40.1`, `t401` or `T43.6`, normalised to the dotted upper-case form.
    pub fn parse(raw: &str) -> Result<Self> {
        let t = raw.trim();
        let compact: String = t
            .chars()
            .filter(|c| *c != '.')
            .collect::<String>()
            .to_ascii_uppercase();
        let b = compact.as_bytes();
        if b.len() == 4 && b[0] == b'T' && b[1..].iter().all(u8::is_ascii_digit) {
            Ok(TCode(format!("{}.{}", &compact[..3], &compact[3..])))
        } else {
            Err(ModelError::invalid(
                "ICD-10 T-code",
                t,
                "a substance T-code such as T40.1 or T43.6",
            ))
        }
    }

    /// The dotted code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn spellings_from_formats_md() {
        assert_eq!(Icd10::parse("F11.2").unwrap().as_str(), "F112");
        assert_eq!(Icd10::parse("x420").unwrap().as_str(), "X420");
        assert_eq!(Icd10::parse(" X42 ").unwrap().as_str(), "X42");
        assert_eq!(Icd10::parse("F11.2").unwrap().category(), "F11");
        for bad in ["X4", "42X", "X42.", "X4.2", "F11.22", "F1.12", "heroin", ""] {
            let e = Icd10::parse(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("'{}'", bad.trim())), "{e}");
        }
    }

    #[test]
    fn t_codes() {
        assert_eq!(TCode::parse("t401").unwrap().as_str(), "T40.1");
        assert_eq!(TCode::parse("T43.6").unwrap().as_str(), "T43.6");
        assert!(TCode::parse("X42").is_err());
        assert!(TCode::parse("T40").is_err());
    }
}
