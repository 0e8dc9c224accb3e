//! Coded fields of the extracts (formats.md §1–3) as typed enums with their accepted spellings.
//!
//! Parsing trims the value, ignores case and treats spaces and hyphens as underscores, the same
//! normalisation formats.md applies to headers. Each enum's `code()` is the canonical spelling
//! stored after ingest.

use crate::error::{ModelError, Result};

/// Normalises a coded value: trim, lower-case, spaces and hyphens to underscores.
pub fn normalise_code(raw: &str) -> String {
    raw.trim()
        .chars()
        .map(|c| match c {
            ' ' | '-' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// A closed list of codes with accepted spellings.
pub trait Coded: Sized + Copy + 'static {
    /// Human name of the field, used in error messages ("sex code").
    const WHAT: &'static str;
    /// Every accepted spelling (already normalised) and the value it means.
    const SPELLINGS: &'static [(&'static str, Self)];
    /// Every value, in canonical order.
    const ALL: &'static [Self];
    /// The canonical stored spelling.
    fn code(self) -> &'static str;

    /// Parses one value. Blank is an error here; callers decide what blank means.
    fn parse(raw: &str) -> Result<Self> {
        // Already normal (lower-case letters, digits, underscores): no copy needed.
        if raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Self::SPELLINGS
                .iter()
                .find(|(s, _)| *s == raw)
                .map(|(_, v)| *v)
                .ok_or_else(|| ModelError::invalid(Self::WHAT, raw, Self::expected()));
        }
        let norm = normalise_code(raw);
        Self::SPELLINGS
            .iter()
            .find(|(s, _)| *s == norm)
            .map(|(_, v)| *v)
            .ok_or_else(|| ModelError::invalid(Self::WHAT, raw.trim(), Self::expected()))
    }

    /// "one of a, b, c" over the accepted spellings, for messages.
    fn expected() -> String {
        let list: Vec<&str> = Self::SPELLINGS.iter().map(|(s, _)| *s).collect();
        format!("one of {}", list.join(", "))
    }
}

macro_rules! coded_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $what:literal {
            $( $(#[$vmeta:meta])* $variant:ident => $code:literal $(| $alias:literal)* ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl Coded for $name {
            const WHAT: &'static str = $what;
            const SPELLINGS: &'static [(&'static str, Self)] = &[
                $( ($code, $name::$variant) $(, ($alias, $name::$variant))* ),+
            ];
            const ALL: &'static [Self] = &[ $( $name::$variant ),+ ];
            fn code(self) -> &'static str {
                match self { $( $name::$variant => $code ),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.code())
            }
        }

        impl std::str::FromStr for $name {
            type Err = ModelError;
            fn from_str(s: &str) -> Result<Self> { <Self as Coded>::parse(s) }
        }
    };
}

coded_enum! {
    /// Sex as recorded: `M`/`F`/`U`, `male`/`female`/`unknown`, or the NHS Data Dictionary
    /// person-stated codes `1`/`2`/`9`.
    Sex, "sex code" {
        Male => "male" | "m" | "1",
        Female => "female" | "f" | "2",
        Unknown => "unknown" | "u" | "9",
    }
}

coded_enum! {
    /// TOP stage (formats.md §2): start, review, exit, post-treatment exit; also `S`/`R`/`E`/`P`.
    Stage, "TOP stage" {
        Start => "start" | "s",
        Review => "review" | "r",
        Exit => "exit" | "e",
        PostExit => "post_exit" | "p",
    }
}

coded_enum! {
    /// Place of death (formats.md §1).
    PlaceOfDeath, "place of death" {
        Home => "home",
        OtherPrivate => "other_private",
        PublicPlace => "public_place",
        Hostel => "hostel",
        Hospital => "hospital",
        Prison => "prison",
        Other => "other",
        Unknown => "unknown",
    }
}

coded_enum! {
    /// Inquest conclusion (formats.md §1). `pending` while the inquest is open.
    Conclusion, "conclusion" {
        Accident => "accident",
        Misadventure => "misadventure",
        Suicide => "suicide",
        Open => "open",
        Narrative => "narrative",
        DrugRelated => "drug_related",
        UnlawfulKilling => "unlawful_killing",
        Natural => "natural",
        Pending => "pending",
    }
}

coded_enum! {
    /// Needle-and-syringe programme site type (formats.md §3).
    SiteType, "NSP site type" {
        Pharmacy => "pharmacy",
        Specialist => "specialist",
        Outreach => "outreach",
        Mobile => "mobile",
        Vending => "vending",
    }
}

coded_enum! {
    /// Reason a treatment episode ended (formats.md §2), only on `exit` TOPs.
    ExitReason, "exit reason" {
        CompletedDrugFree => "completed_drug_free",
        CompletedOccasionalUser => "completed_occasional_user",
        Transferred => "transferred",
        DroppedOut => "dropped_out",
        Declined => "declined",
        Prison => "prison",
        Died => "died",
        Other => "other",
    }
}

impl ExitReason {
    /// Whether the exit counts as a successful completion (formats.md §2, PHOF 2.15).
    pub fn is_completion(self) -> bool {
        matches!(
            self,
            ExitReason::CompletedDrugFree | ExitReason::CompletedOccasionalUser
        )
    }
}

coded_enum! {
    /// Yes/no/unknown fields. formats.md: `Y`/`N`/`U`, `yes`/`no`/`unknown`, `true`/`false`,
    /// `1`/`0`, any case. Blank means unknown: use [`YesNoUnknown::parse_or_unknown`].
    YesNoUnknown, "yes/no/unknown value" {
        Yes => "y" | "yes" | "true" | "1",
        No => "n" | "no" | "false" | "0",
        Unknown => "u" | "unknown",
    }
}

impl YesNoUnknown {
    /// Parses a value where blank means unknown.
    pub fn parse_or_unknown(raw: &str) -> Result<Self> {
        if raw.trim().is_empty() {
            Ok(YesNoUnknown::Unknown)
        } else {
            Self::parse(raw)
        }
    }

    /// As a nullable boolean, the stored form (unknown is null).
    pub fn as_bool(self) -> Option<bool> {
        match self {
            YesNoUnknown::Yes => Some(true),
            YesNoUnknown::No => Some(false),
            YesNoUnknown::Unknown => None,
        }
    }
}

coded_enum! {
    /// Strict yes/no (the `withdrawn` flag). Blank means no: use [`YesNo::parse_or_no`].
    YesNo, "yes/no value" {
        Yes => "y" | "yes" | "true" | "1",
        No => "n" | "no" | "false" | "0",
    }
}

impl YesNo {
    /// Parses a value where blank means no.
    pub fn parse_or_no(raw: &str) -> Result<Self> {
        if raw.trim().is_empty() {
            Ok(YesNo::No)
        } else {
            Self::parse(raw)
        }
    }
}

coded_enum! {
    /// Misuse of Drugs Act 1971 class of a controlled substance.
    ControlledClass, "controlled drug class" {
        A => "a" | "class_a",
        B => "b" | "class_b",
        C => "c" | "class_c",
    }
}

coded_enum! {
    /// The three source extracts.
    Source, "source" {
        Coroner => "coroner",
        Top => "top",
        Nsp => "nsp",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sex_spellings() {
        for (raw, want) in [
            ("M", Sex::Male),
            (" female ", Sex::Female),
            ("9", Sex::Unknown),
            ("U", Sex::Unknown),
            ("2", Sex::Female),
        ] {
            assert_eq!(Sex::parse(raw).unwrap(), want, "{raw}");
        }
        let err = Sex::parse("X").unwrap_err().to_string();
        assert!(
            err.contains("'X'") && err.contains("male") && err.contains("sex code"),
            "{err}"
        );
    }

    #[test]
    fn stage_and_place_normalise_like_headers() {
        assert_eq!(Stage::parse("Post-Exit").unwrap(), Stage::PostExit);
        assert_eq!(Stage::parse("p").unwrap(), Stage::PostExit);
        assert_eq!(
            PlaceOfDeath::parse("Public place").unwrap(),
            PlaceOfDeath::PublicPlace
        );
        assert_eq!(
            Conclusion::parse("Drug-related").unwrap(),
            Conclusion::DrugRelated
        );
        assert_eq!(
            ExitReason::parse("completed drug free").unwrap(),
            ExitReason::CompletedDrugFree
        );
        assert!(ExitReason::CompletedOccasionalUser.is_completion());
        assert!(!ExitReason::Transferred.is_completion());
        assert_eq!(SiteType::parse("VENDING").unwrap(), SiteType::Vending);
        let err = SiteType::parse("clinic").unwrap_err().to_string();
        assert!(
            err.contains("'clinic'") && err.contains("pharmacy"),
            "{err}"
        );
    }

    #[test]
    fn yes_no_unknown_all_spellings() {
        for y in ["Y", "yes", "TRUE", "1"] {
            assert_eq!(YesNoUnknown::parse(y).unwrap(), YesNoUnknown::Yes);
        }
        for n in ["n", "No", "false", "0"] {
            assert_eq!(YesNoUnknown::parse(n).unwrap(), YesNoUnknown::No);
        }
        assert_eq!(
            YesNoUnknown::parse_or_unknown("  ").unwrap(),
            YesNoUnknown::Unknown
        );
        assert_eq!(YesNoUnknown::parse("unknown").unwrap().as_bool(), None);
        assert!(
            YesNoUnknown::parse("maybe")
                .unwrap_err()
                .to_string()
                .contains("'maybe'")
        );
        assert_eq!(YesNo::parse_or_no("").unwrap(), YesNo::No);
        assert!(YesNo::parse("U").is_err(), "withdrawn is strictly yes/no");
    }

    #[test]
    fn canonical_codes_round_trip() {
        for s in Conclusion::ALL {
            assert_eq!(Conclusion::parse(s.code()).unwrap(), *s);
        }
        for s in ExitReason::ALL {
            assert_eq!(ExitReason::parse(s.code()).unwrap(), *s);
        }
        assert_eq!(
            ControlledClass::parse("Class A").unwrap(),
            ControlledClass::A
        );
    }
}
