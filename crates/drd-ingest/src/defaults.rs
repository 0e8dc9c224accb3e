//! Reference data shipped with drdsurv, used when the store has not been given its own
//! (`reference import` arrives with the pipeline issues).

use drd_model::SubstanceLookup;
use drd_model::reference::{Partnerships, load_partnerships, load_substances};

pub use drd_model::reference::shipped::{PARTNERSHIPS_2021_CSV, SUBSTANCES_CSV};

/// The 2021 partnerships.
pub fn partnerships() -> Partnerships {
    load_partnerships(
        "reference/partnerships_2021.csv",
        PARTNERSHIPS_2021_CSV.as_bytes(),
        "2021",
    )
    .unwrap_or_else(|e| panic!("shipped reference data is invalid: {e}"))
}

/// The shipped substance lookup.
pub fn substances() -> SubstanceLookup {
    load_substances("reference/substances.csv", SUBSTANCES_CSV.as_bytes())
        .unwrap_or_else(|e| panic!("shipped reference data is invalid: {e}"))
}
