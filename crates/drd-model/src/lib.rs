//! # drd-model: the drdsurv domain
//!
//! The vocabulary every other drdsurv crate speaks, with no I/O and no async:
//!
//! - [`codes`]: coded extract fields (sex, TOP stage, place of death, conclusion, NSP site
//!   type, exit reason, yes/no/unknown) with their accepted spellings, and [`Source`].
//! - [`ids`]: NHS numbers (Modulus 11), GSS codes, UK postcodes (district only is kept).
//! - [`icd10`], [`date`], [`age`] (ESP2013 bands and weights), [`period`] (`2025`,
//!   `2025Q3`, `2025-07`, ranges and indicator windows).
//! - [`columns`]: the column contract of each extract and header normalisation (formats.md).
//! - [`reason`]: the closed list of quarantine [`ReasonCode`]s.
//! - [`schema`]: Arrow schemas of the pseudonymised source tables and the reference tables.
//! - [`substance`] and [`casedef`]: the versioned substance lookup and ICD-10 case
//!   definitions, and the classifier that applies them.
//! - [`reference`]: validating loaders for the reference CSVs under `reference/`.
//!
//! Every parse error names the value and what was expected, except for identifiers, whose
//! errors name the column and the rule only ([`ModelError::Identifier`]).
//!
//! ```
//! use drd_model::{Period, EspBand};
//! let p = Period::parse("2025Q3").unwrap();
//! assert_eq!(p.trailing_12_months().label(), "2024Q4-2025Q3");
//! assert_eq!(p.pooled_years(3).label(), "2022-2024");
//! assert_eq!(EspBand::from_age(42).unwrap().label(), "40-44");
//! ```

pub mod age;
pub mod casedef;
pub mod codes;
pub mod columns;
pub mod date;
pub mod error;
pub mod files;
pub mod icd10;
pub mod ids;
pub mod period;
pub mod reason;
pub mod reference;
pub mod schema;
pub mod substance;

pub use age::{ESP2013_WEIGHTS, EspBand};
pub use casedef::{CaseDefinitions, CaseRule};
pub use codes::{
    Coded, Conclusion, ControlledClass, ExitReason, PlaceOfDeath, Sex, SiteType, Source, Stage,
    YesNo, YesNoUnknown,
};
pub use error::{ModelError, Result};
pub use icd10::{Icd10, TCode};
pub use ids::{GssCode, NhsNumber, postcode_district};
pub use period::{Granularity, Period, Window};
pub use reason::ReasonCode;
pub use substance::{Resolved, SubstanceGroup, SubstanceLookup};
