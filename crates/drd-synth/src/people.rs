//! Synthetic people: names, NHS numbers in the 999 test range, postcodes, dates of birth.
//!
//! A person's attributes are a pure function of (seed, area, serial), so a treatment client
//! who later dies can be written by the coroner generator with the same NHS number, name and
//! date of birth as the treatment provider wrote: that is what record linkage needs.

use chrono::NaiveDate;
use drd_model::ids::mod11_check_digit;

use crate::rng::{Stream, stream};

const SURNAMES: &[&str] = &[
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Robinson",
    "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall", "Wood",
    "Jackson", "Clarke", "Patel", "Khan", "Hughes", "Edwards", "Lewis", "Turner", "Hill", "Moore",
    "O'Brien", "Murphy", "Begum", "Ali", "Nowak", "Kowalski", "Okafor", "Mensah",
];
const MALE: &[&str] = &[
    "James", "John", "David", "Michael", "Paul", "Mark", "Daniel", "Lee", "Craig", "Wayne",
    "Darren", "Steven", "Jamie", "Ryan", "Mohammed", "Tomasz", "Kwame", "Liam", "Connor", "Gary",
];
const FEMALE: &[&str] = &[
    "Sarah",
    "Emma",
    "Claire",
    "Lisa",
    "Michelle",
    "Nicola",
    "Kelly",
    "Joanne",
    "Amy",
    "Laura",
    "Aisha",
    "Fatima",
    "Agnieszka",
    "Chloe",
    "Hannah",
    "Donna",
    "Stacey",
    "Gemma",
];
/// Names with characters outside ASCII, used by the Windows-1252 submitter so that its
/// encoding is visible (all are representable in Windows-1252).
pub const ACCENTED: &[(&str, &str)] = &[
    ("Zoë", "Brontë"),
    ("Renée", "Dubois"),
    ("Siân", "Hughes"),
    ("Seán", "O\u{2019}Connor"),
    ("Chloé", "Lefèvre"),
    ("José", "Muñoz"),
];

/// One synthetic person.
#[derive(Debug, Clone)]
pub struct Person {
    /// NHS number (10 digits, valid check digit, 999 test prefix).
    pub nhs: String,
    /// Surname.
    pub surname: &'static str,
    /// Forenames.
    pub forenames: &'static str,
    /// 0 male, 1 female.
    pub sex: usize,
    /// Date of birth.
    pub dob: NaiveDate,
}

/// A valid NHS number with the 999 prefix reserved for testing, drawn from a stream.
pub fn nhs_number(r: &mut Stream) -> String {
    loop {
        let mut d = [9u32, 9, 9, 0, 0, 0, 0, 0, 0];
        for x in d.iter_mut().skip(3) {
            *x = r.int(0, 9) as u32;
        }
        if let Some(c) = mod11_check_digit(&d) {
            return d
                .iter()
                .chain(std::iter::once(&c))
                .map(|x| char::from(b'0' + *x as u8))
                .collect();
        }
    }
}

/// The same NHS number with a wrong check digit (for `invalid_nhs_number` faults).
pub fn corrupt_nhs(valid: &str) -> String {
    let mut b: Vec<u8> = valid.bytes().collect();
    b[9] = b'0' + (b[9] - b'0' + 1) % 10;
    String::from_utf8(b).unwrap_or_default()
}

/// The person with a serial in an area, born so as to be `age` on `on`.
pub fn person(seed: u64, area: &str, serial: u64, sex: usize, age: u32, on: NaiveDate) -> Person {
    let mut r = stream(seed, "person", area, serial as i32 ^ (serial >> 32) as i32);
    let nhs = nhs_number(&mut r);
    let surname = r.pick(SURNAMES);
    let forenames = if sex == 0 {
        r.pick(MALE)
    } else {
        r.pick(FEMALE)
    };
    let days_into_year = r.int(0, 364);
    let dob =
        on - chrono::Duration::days(i64::from(age) * 365 + i64::from(age / 4) + days_into_year);
    Person {
        nhs,
        surname,
        forenames,
        sex,
        dob,
    }
}

const INWARD_LETTERS: &[u8] = b"ABDEFGHJLNPQRSTUWXYZ";

/// A postcode-shaped code whose area letters come from the partnership name.
pub fn postcode(r: &mut Stream, area_name: &str) -> String {
    let letters: Vec<char> = area_name
        .chars()
        .filter(char::is_ascii_alphabetic)
        .map(|c| c.to_ascii_uppercase())
        .take(2)
        .collect();
    let area: String = letters.into_iter().collect();
    let district = r.int(1, 29);
    let sector = r.int(0, 9);
    let l1 = INWARD_LETTERS[r.int(0, 19) as usize] as char;
    let l2 = INWARD_LETTERS[r.int(0, 19) as usize] as char;
    format!("{area}{district} {sector}{l1}{l2}")
}
