//! ESP2013 age bands and weights (methods.md §3).
//!
//! 19 bands, `0-4` to `85-89` and `90+`. ESP2013's separate 0 and 1–4 bands are merged into
//! 0–4, and 90–94 and 95+ into 90+, as PHEindicatormethods ships it. The weights sum to 100,000.

use crate::error::{ModelError, Result};

/// ESP2013 weights, band by band, as PHEindicatormethods `esp2013` (methods.md §3).
pub const ESP2013_WEIGHTS: [u32; 19] = [
    5000, 5500, 5500, 5500, 6000, 6000, 6500, 7000, 7000, 7000, 7000, 6500, 6000, 5500, 5000, 4000,
    2500, 1500, 1000,
];

/// One of the 19 ESP2013 age bands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EspBand(u8);

impl EspBand {
    /// Number of bands.
    pub const COUNT: usize = 19;

    /// Every band, youngest first.
    pub fn all() -> impl Iterator<Item = EspBand> {
        (0..Self::COUNT as u8).map(EspBand)
    }

    /// The band by index 0..19.
    pub fn from_index(i: usize) -> Option<EspBand> {
        (i < Self::COUNT).then_some(EspBand(i as u8))
    }

    /// The band holding an age in whole years. Ages above 120 are rejected (formats.md: age is
    /// 0–120).
    pub fn from_age(age: u32) -> Result<EspBand> {
        if age > 120 {
            return Err(ModelError::invalid(
                "age",
                &age.to_string(),
                "a whole number of years from 0 to 120",
            ));
        }
        Ok(EspBand((age / 5).min(18) as u8))
    }

    /// Index 0..19.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }

    /// Lowest age in the band.
    pub fn lower(self) -> u32 {
        u32::from(self.0) * 5
    }

    /// Highest age in the band, `None` for the open 90+ band.
    pub fn upper(self) -> Option<u32> {
        (self.0 < 18).then(|| u32::from(self.0) * 5 + 4)
    }

    /// ESP2013 weight of the band.
    pub fn weight(self) -> u32 {
        ESP2013_WEIGHTS[self.index()]
    }

    /// The label used in files, without allocating ([`EspBand::label`]).
    pub fn as_str(self) -> &'static str {
        const LABELS: [&str; 19] = [
            "0-4", "5-9", "10-14", "15-19", "20-24", "25-29", "30-34", "35-39", "40-44", "45-49",
            "50-54", "55-59", "60-64", "65-69", "70-74", "75-79", "80-84", "85-89", "90+",
        ];
        LABELS[self.index()]
    }

    /// The label used in files: `0-4`, …, `85-89`, `90+`.
    pub fn label(self) -> String {
        match self.upper() {
            Some(u) => format!("{}-{}", self.lower(), u),
            None => "90+".to_string(),
        }
    }

    /// Parses a band label: `40-44`, `40 to 44`, `90+`, `90 and over`, `90plus`.
    pub fn parse(raw: &str) -> Result<EspBand> {
        let t = raw.trim().to_ascii_lowercase();
        let err = || {
            ModelError::invalid(
                "ESP2013 age band",
                raw.trim(),
                "a five-year band such as 0-4, 40-44 or 85-89, or 90+",
            )
        };
        if matches!(
            t.as_str(),
            "90+" | "90 and over" | "90plus" | "90 plus" | "90_plus"
        ) {
            return Ok(EspBand(18));
        }
        let (lo, hi) = t
            .split_once('-')
            .or_else(|| t.split_once(" to "))
            .ok_or_else(err)?;
        let lo: u32 = lo.trim().parse().map_err(|_| err())?;
        let hi: u32 = hi.trim().parse().map_err(|_| err())?;
        if lo.is_multiple_of(5) && hi == lo + 4 && lo <= 85 {
            Ok(EspBand((lo / 5) as u8))
        } else {
            Err(err())
        }
    }
}

impl std::fmt::Display for EspBand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn weights_sum_to_standard_population() {
        assert_eq!(ESP2013_WEIGHTS.iter().sum::<u32>(), 100_000);
        assert_eq!(EspBand::all().count(), 19);
        assert_eq!(EspBand::from_age(0).unwrap().weight(), 5000);
        assert_eq!(EspBand::from_age(94).unwrap().weight(), 1000);
    }

    #[test]
    fn bands_from_ages_and_labels() {
        assert_eq!(EspBand::from_age(4).unwrap().label(), "0-4");
        assert_eq!(EspBand::from_age(5).unwrap().label(), "5-9");
        assert_eq!(EspBand::from_age(44).unwrap().label(), "40-44");
        assert_eq!(EspBand::from_age(89).unwrap().label(), "85-89");
        assert_eq!(EspBand::from_age(90).unwrap().label(), "90+");
        assert_eq!(EspBand::from_age(120).unwrap().label(), "90+");
        for b in EspBand::all() {
            assert_eq!(b.as_str(), b.label());
        }
        let e = EspBand::from_age(121).unwrap_err().to_string();
        assert!(e.contains("'121'") && e.contains("0 to 120"), "{e}");
        for b in EspBand::all() {
            assert_eq!(EspBand::parse(&b.label()).unwrap(), b);
        }
        assert_eq!(EspBand::parse("40 to 44").unwrap().lower(), 40);
        assert_eq!(EspBand::parse("90 and over").unwrap().upper(), None);
        for bad in ["40-45", "41-45", "90-94", "95+", "forty", ""] {
            let e = EspBand::parse(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("'{bad}'")) && e.contains("90+"), "{e}");
        }
    }
}
