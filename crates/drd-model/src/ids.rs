//! Identifier and code validation: NHS numbers (Modulus 11), GSS codes, UK postcodes.
//!
//! Errors about NHS numbers and postcodes never include the value (formats.md, "Direct
//! identifiers"); GSS codes are not personal, so their errors do.

use crate::error::{ModelError, Result};

/// A validated NHS number, normalised to its 10 digits. Its `Debug` form hides the digits so it
/// can never leak into a log by accident.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct NhsNumber(String);

impl std::fmt::Debug for NhsNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NhsNumber(<redacted>)")
    }
}

impl NhsNumber {
    /// Validates an NHS number: 10 digits, optionally written 3-3-4 with single spaces or
    /// hyphens, with a correct Modulus 11 check digit (NHS Data Dictionary). The weights are
    /// 10 down to 2 over the first nine digits; check = 11 − (sum mod 11), where 11 means 0 and
    /// 10 means the number is invalid.
    pub fn parse(raw: &str) -> Result<Self> {
        let t = raw.trim();
        let digits: String = if t.len() == 12 {
            let b = t.as_bytes();
            let sep = b[3];
            if (sep == b' ' || sep == b'-') && b[7] == sep {
                format!("{}{}{}", &t[0..3], &t[4..7], &t[8..12])
            } else {
                return Err(ModelError::identifier("nhs_number", "must be 10 digits"));
            }
        } else {
            t.to_string()
        };
        if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ModelError::identifier("nhs_number", "must be 10 digits"));
        }
        let d: Vec<u32> = digits.bytes().map(|b| u32::from(b - b'0')).collect();
        match mod11_check_digit(&d[..9]) {
            Some(c) if c == d[9] => Ok(NhsNumber(digits)),
            Some(_) => Err(ModelError::identifier(
                "nhs_number",
                "check digit does not match (Modulus 11)",
            )),
            None => Err(ModelError::identifier(
                "nhs_number",
                "no valid Modulus 11 check digit exists for the first nine digits",
            )),
        }
    }

    /// The 10 digits, for keyed hashing only.
    pub fn digits(&self) -> &str {
        &self.0
    }
}

/// The Modulus 11 check digit for nine digits, or `None` when the remainder gives 10 (such
/// numbers are never issued).
pub fn mod11_check_digit(first_nine: &[u32]) -> Option<u32> {
    debug_assert_eq!(first_nine.len(), 9);
    let sum: u32 = first_nine
        .iter()
        .enumerate()
        .map(|(i, d)| d * (10 - i as u32))
        .sum();
    match 11 - (sum % 11) {
        11 => Some(0),
        10 => None,
        c => Some(c),
    }
}

/// A GSS (Government Statistical Service) code: one letter and 8 digits, e.g. `E06000001`.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct GssCode(String);

impl GssCode {
    /// Any GSS code, `^[EWSN]\d{8}$` (domain.md §7.1). Surrounding spaces are trimmed; the
    /// letter must be upper case.
    pub fn parse(raw: &str) -> Result<Self> {
        Self::parse_with(raw, "EWSN", "a GSS code: E, W, S or N followed by 8 digits")
    }

    /// A partnership or area code in an extract, `^[EW]\d{8}$` (formats.md, "Area codes").
    pub fn parse_area(raw: &str) -> Result<Self> {
        Self::parse_with(
            raw,
            "EW",
            "a GSS area code: E or W followed by 8 digits, e.g. E06000001",
        )
    }

    fn parse_with(raw: &str, letters: &str, expected: &str) -> Result<Self> {
        let t = raw.trim();
        let b = t.as_bytes();
        let ok = b.len() == 9
            && letters.as_bytes().contains(&b[0])
            && b[1..].iter().all(u8::is_ascii_digit);
        if ok {
            Ok(GssCode(t.to_string()))
        } else {
            Err(ModelError::invalid("GSS code", t, expected))
        }
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 3-character entity code, e.g. `E06` (unitary authority) or `E12` (region).
    pub fn entity(&self) -> &str {
        &self.0[..3]
    }
}

impl std::fmt::Display for GssCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for GssCode {
    type Error = ModelError;
    fn try_from(s: String) -> Result<Self> {
        GssCode::parse(&s)
    }
}

impl From<GssCode> for String {
    fn from(c: GssCode) -> String {
        c.0
    }
}

/// Validates a UK postcode and returns its district (outward code), the only part stored
/// (formats.md). Accepts any case, with or without the space. Shapes: outward `A9`, `A9A`,
/// `A99`, `AA9`, `AA9A`, `AA99`; inward `9AA` where the letters are not C, I, K, M, O or V;
/// plus the special `GIR 0AA`.
pub fn postcode_district(raw: &str) -> Result<String> {
    let compact: String = raw
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    let bad = || ModelError::identifier("postcode", "not a valid UK postcode");
    if compact == "GIR0AA" {
        return Ok("GIR".to_string());
    }
    if !(5..=7).contains(&compact.len()) || !compact.is_ascii() {
        return Err(bad());
    }
    let (out, inward) = compact.split_at(compact.len() - 3);
    let ib = inward.as_bytes();
    let inward_ok = ib[0].is_ascii_digit()
        && ib[1..]
            .iter()
            .all(|c| c.is_ascii_uppercase() && !b"CIKMOV".contains(c));
    let o = out.as_bytes();
    let alpha = |c: &u8| c.is_ascii_uppercase();
    let digit = |c: &u8| c.is_ascii_digit();
    let outward_ok = match o.len() {
        2 => alpha(&o[0]) && digit(&o[1]),
        3 => {
            alpha(&o[0])
                && ((digit(&o[1]) && (digit(&o[2]) || alpha(&o[2])))
                    || (alpha(&o[1]) && digit(&o[2])))
        }
        4 => alpha(&o[0]) && alpha(&o[1]) && digit(&o[2]) && (digit(&o[3]) || alpha(&o[3])),
        _ => false,
    };
    if inward_ok && outward_ok {
        Ok(out.to_string())
    } else {
        Err(bad())
    }
}

/// Whether free text (such as a submitted file's name) may hold a direct identifier: a valid
/// NHS number (10 digits passing the Modulus 11 check, separators ' ', '-', '_' or '.'
/// allowed between digits) or a full UK postcode (with or without its space). Errs on the
/// side of caution: a date run that happens to pass the check counts too.
pub fn may_identify(text: &str) -> bool {
    // Digit runs, skipping separators between digits.
    let chars: Vec<char> = text.chars().collect();
    let mut runs: Vec<Vec<u32>> = vec![Vec::new()];
    for (i, c) in chars.iter().enumerate() {
        if let Some(d) = c.to_digit(10) {
            if let Some(last) = runs.last_mut() {
                last.push(d);
            }
        } else {
            let joins = matches!(c, ' ' | '-' | '_' | '.')
                && i > 0
                && chars[i - 1].is_ascii_digit()
                && chars.get(i + 1).is_some_and(char::is_ascii_digit);
            if !joins {
                runs.push(Vec::new());
            }
        }
    }
    let nhs = runs.iter().any(|r| {
        r.windows(10)
            .any(|w| mod11_check_digit(&w[..9]).is_some_and(|c| c == w[9]))
    });
    if nhs {
        return true;
    }
    let tokens: Vec<&str> = text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| !t.is_empty())
        .collect();
    tokens.iter().any(|t| postcode_district(t).is_ok())
        || tokens
            .windows(2)
            .any(|w| postcode_district(&format!("{} {}", w[0], w[1])).is_ok())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn nhs_number_modulus_11() {
        // 943 476 5919 is the NHS Data Dictionary's worked example: weights 10..2 give 299,
        // 299 mod 11 = 2, 11 − 2 = 9.
        assert_eq!(
            NhsNumber::parse("9434765919").unwrap().digits(),
            "9434765919"
        );
        assert_eq!(
            NhsNumber::parse(" 943 476 5919 ").unwrap().digits(),
            "9434765919"
        );
        assert_eq!(
            NhsNumber::parse("943-476-5919").unwrap().digits(),
            "9434765919"
        );
        let wrong = NhsNumber::parse("9434765918").unwrap_err();
        assert!(wrong.to_string().contains("check digit"), "{wrong}");
        assert!(
            !wrong.to_string().contains("943"),
            "the value must never be echoed"
        );
        assert!(NhsNumber::parse("943476591").is_err());
        assert!(NhsNumber::parse("94347659190").is_err());
        assert!(
            NhsNumber::parse("943 476-5919").is_err(),
            "mixed separators"
        );
        assert!(NhsNumber::parse("94347659A9").is_err());
        // Remainder 1 gives check 10: never valid, whatever the last digit.
        // 000000001x: sum = 1*2 = 2 → 11-2 = 9, valid 0000000019; find a remainder-1 case:
        // 0000000050: sum = 5*2 = 10 → 11 - 10 = 1; 1000000000: sum 10 → 1.
        // 0000000060 → sum 12 → 12 mod 11 = 1 → check 10 → invalid.
        for last in 0..10 {
            assert!(NhsNumber::parse(&format!("000000006{last}")).is_err());
        }
        // Remainder 0 gives check 11 → 0.
        assert!(NhsNumber::parse("0000000000").is_ok());
        assert_eq!(
            format!("{:?}", NhsNumber::parse("9434765919").unwrap()),
            "NhsNumber(<redacted>)"
        );
    }

    #[test]
    fn gss_codes() {
        assert_eq!(
            GssCode::parse_area(" E06000053 ").unwrap().as_str(),
            "E06000053"
        );
        assert_eq!(GssCode::parse_area("W06000001").unwrap().entity(), "W06");
        let e = GssCode::parse_area("S12000033").unwrap_err().to_string();
        assert!(e.contains("'S12000033'") && e.contains("E or W"), "{e}");
        assert!(GssCode::parse("S12000033").is_ok());
        for bad in [
            "E0600001",
            "E060000011",
            "e06000001",
            "E06O00001",
            "",
            "06000001E",
        ] {
            let e = GssCode::parse_area(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("'{bad}'")), "{e}");
        }
    }

    #[test]
    fn postcode_districts() {
        for (pc, d) in [
            ("B70 7PQ", "B70"),
            ("sw1a 1aa", "SW1A"),
            ("M1 1AE", "M1"),
            ("CR26XH", "CR2"),
            ("DN55 1PT", "DN55"),
            ("W1A 0AX", "W1A"),
            ("EC1A 1BB", "EC1A"),
        ] {
            assert_eq!(postcode_district(pc).unwrap(), d, "{pc}");
        }
        for bad in [
            "B70",
            "B70 7CQ",
            "1B70 7PQ",
            "B70 PPQ",
            "ABCDE 1AA",
            "",
            "B7Ö 7PQ",
        ] {
            let e = postcode_district(bad).unwrap_err().to_string();
            assert!(e.contains("postcode"), "{e}");
            if !bad.is_empty() {
                assert!(!e.contains(bad), "the value must never be echoed: {e}");
            }
        }
    }

    #[test]
    fn file_names_with_identifiers_are_recognised() {
        for name in [
            "top-9434765919.csv",
            "deaths 943 476 5919.xlsx",
            "case-943-476-5919.csv",
            "smith_B70 8QT.csv",
            "extract-b708qt.csv",
        ] {
            assert!(may_identify(name), "{name}");
        }
        for name in [
            "top-extract-2026-01-15.csv",
            "extract-2025-09-30.csv",
            "returns-2019.csv.gz",
            "late-submission-missing-column.csv",
            "scan-of-extract.xlsx",
            "top-extract-corrupt.ndjson",
            "9434765918.csv",
        ] {
            assert!(!may_identify(name), "{name}");
        }
    }
}
