//! The reference files shipped in the repository's `reference/` folder, compiled in: the one
//! copy every crate uses when a store has no reference data of its own.

/// `reference/partnerships_2021.csv`: the 2021 partnerships with regions and comparator groups.
pub const PARTNERSHIPS_2021_CSV: &str = include_str!("../../../../reference/partnerships_2021.csv");
/// `reference/substances.csv`: the versioned substance lookup.
pub const SUBSTANCES_CSV: &str = include_str!("../../../../reference/substances.csv");
/// `reference/case_definitions.csv`: ONS poisoning, ONS misuse and EMCDDA Selection B.
pub const CASE_DEFINITIONS_CSV: &str = include_str!("../../../../reference/case_definitions.csv");
/// `reference/esp2013.csv`: the 2013 European Standard Population.
pub const ESP2013_CSV: &str = include_str!("../../../../reference/esp2013.csv");
