//! Dates as extracts write them (formats.md, "Values").

use chrono::{Datelike, NaiveDate};

use crate::error::{ModelError, Result};

/// Earliest date accepted anywhere (formats.md: a date before 1900 is a row error).
pub const EARLIEST: NaiveDate = match NaiveDate::from_ymd_opt(1900, 1, 1) {
    Some(d) => d,
    None => panic!("1900-01-01 is a date"),
};

const EXPECTED: &str = "a date as YYYY-MM-DD or DD/MM/YYYY, on or after 1900-01-01";

/// Parses `YYYY-MM-DD` or UK `DD/MM/YYYY` (also `D/M/YYYY`). US `MM/DD/YYYY` is never
/// assumed, so `02/31/2024` is an impossible date, not 31 February. Dates before 1900 are
/// rejected. The caller checks "in the future" against the time the extract was received.
pub fn parse_date(raw: &str) -> Result<NaiveDate> {
    // The common case, `YYYY-MM-DD` already trimmed, without splitting.
    let b = raw.as_bytes();
    if b.len() == 10 && b[4] == b'-' && b[7] == b'-' {
        let num = |r: std::ops::Range<usize>| {
            b[r].iter().try_fold(0u32, |n, &d| {
                d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
            })
        };
        if let (Some(y), Some(m), Some(d)) = (num(0..4), num(5..7), num(8..10))
            && let Some(date) = NaiveDate::from_ymd_opt(y as i32, m, d)
            && date >= EARLIEST
        {
            return Ok(date);
        }
    }
    let t = raw.trim();
    let err = || ModelError::invalid("date", t, EXPECTED);
    let (y, m, d) = if let Some((d, rest)) = t.split_once('/') {
        let (m, y) = rest.split_once('/').ok_or_else(err)?;
        if d.is_empty() || d.len() > 2 || m.is_empty() || m.len() > 2 || y.len() != 4 {
            return Err(err());
        }
        (y, m, d)
    } else {
        let mut it = t.splitn(3, '-');
        let (y, m, d) = (
            it.next().ok_or_else(err)?,
            it.next().ok_or_else(err)?,
            it.next().ok_or_else(err)?,
        );
        if y.len() != 4 || m.len() != 2 || d.len() != 2 {
            return Err(err());
        }
        (y, m, d)
    };
    let num = |s: &str| -> Result<u32> {
        if s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse().map_err(|_| err())
        } else {
            Err(err())
        }
    };
    let date = NaiveDate::from_ymd_opt(num(y)? as i32, num(m)?, num(d)?).ok_or_else(err)?;
    if date < EARLIEST {
        return Err(ModelError::invalid(
            "date",
            t,
            "a date on or after 1900-01-01",
        ));
    }
    Ok(date)
}

/// Converts an Excel serial date (1900 date system, as XLSX stores dates) to a calendar date.
/// Serial 1 is 1900-01-01; Excel's phantom 1900-02-29 (serial 60) is rejected and later
/// serials are shifted by one day, as Excel does.
pub fn from_excel_serial(serial: f64) -> Result<NaiveDate> {
    let err = || {
        ModelError::invalid(
            "Excel serial date",
            &serial.to_string(),
            "a whole-day serial date on or after 1 (1900-01-01)",
        )
    };
    if !serial.is_finite()
        || serial < 1.0
        || serial.fract() != 0.0
        || serial > 2_958_465.0
        || serial == 60.0
    {
        return Err(err());
    }
    let days = serial as i64;
    let offset = if days < 60 { days - 1 } else { days - 2 };
    EARLIEST
        .checked_add_signed(chrono::Duration::days(offset))
        .ok_or_else(err)
}

/// The Excel serial number of a date (inverse of [`from_excel_serial`]).
pub fn to_excel_serial(date: NaiveDate) -> f64 {
    let days = (date - EARLIEST).num_days();
    (if days < 59 { days + 1 } else { days + 2 }) as f64
}

/// Age in whole years on `at` for someone born on `birth`; `None` if `at` is before `birth`.
pub fn age_on(birth: NaiveDate, at: NaiveDate) -> Option<u32> {
    if at < birth {
        return None;
    }
    let mut age = at.year() - birth.year();
    if (at.month(), at.day()) < (birth.month(), birth.day()) {
        age -= 1;
    }
    u32::try_from(age).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, dd: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, dd).unwrap()
    }

    #[test]
    fn accepted_forms() {
        assert_eq!(parse_date("2024-02-29").unwrap(), d(2024, 2, 29));
        assert_eq!(
            parse_date(" 07/03/2024 ").unwrap(),
            d(2024, 3, 7),
            "UK day first"
        );
        assert_eq!(parse_date("7/3/2024").unwrap(), d(2024, 3, 7));
        assert_eq!(parse_date("1900-01-01").unwrap(), EARLIEST);
    }

    #[test]
    fn rejected_forms_name_the_value() {
        for bad in [
            "31/02/2024",
            "2023-02-29",
            "02/31/2024",
            "1899-12-31",
            "2024-1-5",
            "20240105",
            "5/1/24",
            "yesterday",
            "",
            "2024-01-0x",
        ] {
            let e = parse_date(bad).unwrap_err().to_string();
            assert!(
                e.contains(&format!("'{}'", bad.trim())) && e.contains("1900"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn excel_serials() {
        assert_eq!(from_excel_serial(1.0).unwrap(), d(1900, 1, 1));
        assert_eq!(from_excel_serial(59.0).unwrap(), d(1900, 2, 28));
        assert_eq!(from_excel_serial(61.0).unwrap(), d(1900, 3, 1));
        // 45658 is 2025-01-01 in Excel.
        assert_eq!(from_excel_serial(45658.0).unwrap(), d(2025, 1, 1));
        assert_eq!(to_excel_serial(d(2025, 1, 1)), 45658.0);
        assert_eq!(to_excel_serial(d(1900, 3, 1)), 61.0);
        assert!(from_excel_serial(60.0).is_err());
        assert!(from_excel_serial(0.0).is_err());
        assert!(from_excel_serial(45658.5).is_err());
    }

    #[test]
    fn ages() {
        assert_eq!(age_on(d(1980, 6, 15), d(2024, 6, 14)), Some(43));
        assert_eq!(age_on(d(1980, 6, 15), d(2024, 6, 15)), Some(44));
        assert_eq!(age_on(d(2000, 2, 29), d(2001, 2, 28)), Some(0));
        assert_eq!(age_on(d(2024, 1, 2), d(2024, 1, 1)), None);
    }
}
