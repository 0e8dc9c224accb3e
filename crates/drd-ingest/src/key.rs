//! The linkage key and the keyed pseudonyms derived from it (formats.md, "Direct identifiers").
//!
//! Every pseudonym is HMAC-SHA256(linkage key, domain-separated input), hex encoded. The key
//! is held in a [`secrecy::SecretBox`], is never printed (its `Debug` is redacted) and is never
//! written anywhere.

use hmac::{KeyInit, Mac};
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;

use drd_model::{NhsNumber, Sex};

type HmacSha256 = hmac::Hmac<Sha256>;

/// Minimum key length in bytes.
pub const MIN_KEY_BYTES: usize = 32;

/// The deployment's secret linkage key.
pub struct LinkageKey(SecretBox<Vec<u8>>);

impl std::fmt::Debug for LinkageKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkageKey(<redacted>)")
    }
}

/// Why no key could be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Neither variable is set.
    #[error(
        "no linkage key: set DRDSURV_LINKAGE_KEY_FILE to a file holding the secret (or DRDSURV_LINKAGE_KEY); ingest refuses to pseudonymise without it"
    )]
    Missing,
    /// The key file could not be read.
    #[error("cannot read the linkage key file named by DRDSURV_LINKAGE_KEY_FILE: {0}")]
    File(String),
    /// Too short.
    #[error("the linkage key is too short: use at least {MIN_KEY_BYTES} bytes of secret")]
    TooShort,
}

impl LinkageKey {
    /// A key from raw bytes (surrounding whitespace trimmed). At least [`MIN_KEY_BYTES`].
    pub fn from_bytes(bytes: &[u8]) -> Result<LinkageKey, KeyError> {
        let trimmed = bytes.trim_ascii();
        if trimmed.len() < MIN_KEY_BYTES {
            return Err(KeyError::TooShort);
        }
        Ok(LinkageKey(SecretBox::new(Box::new(trimmed.to_vec()))))
    }

    /// The key from `DRDSURV_LINKAGE_KEY_FILE` (preferred) or `DRDSURV_LINKAGE_KEY`.
    pub fn from_env() -> Result<LinkageKey, KeyError> {
        if let Ok(path) = std::env::var("DRDSURV_LINKAGE_KEY_FILE") {
            let bytes = std::fs::read(&path).map_err(|e| KeyError::File(e.kind().to_string()))?;
            return LinkageKey::from_bytes(&bytes);
        }
        match std::env::var("DRDSURV_LINKAGE_KEY") {
            Ok(v) => LinkageKey::from_bytes(v.as_bytes()),
            Err(_) => Err(KeyError::Missing),
        }
    }

    /// The keyed HMAC state every pseudonym is derived from, ready to clone per value (the
    /// key is hashed into it once, not for every row).
    pub fn pseudonymiser(&self) -> Pseudonymiser {
        Pseudonymiser(
            <HmacSha256 as KeyInit>::new_from_slice(self.0.expose_secret())
                .unwrap_or_else(|_| unreachable!("HMAC takes any key length")),
        )
    }
}

/// The linkage key's HMAC state (derived from the key; never printed).
#[derive(Clone)]
pub struct Pseudonymiser(HmacSha256);

impl std::fmt::Debug for Pseudonymiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonymiser(<redacted>)")
    }
}

impl Pseudonymiser {
    fn mac(&self, domain: &str, parts: &[&[u8]]) -> String {
        let mut m = self.0.clone();
        m.update(domain.as_bytes());
        for p in parts {
            m.update(&[0x1f]);
            m.update(p);
        }
        let out = m.finalize().into_bytes();
        let mut hex = String::with_capacity(64);
        for b in out.iter() {
            hex.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
            hex.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
        }
        hex
    }

    /// `person_id` from an NHS number (the same in every source).
    pub fn person_from_nhs(&self, nhs: &NhsNumber) -> String {
        self.mac("nhs", &[nhs.digits().as_bytes()])
    }

    /// `person_id` when there is no NHS number: upper-cased surname, the forenames' first
    /// initial, date of birth and sex (formats.md).
    pub fn person_from_names(
        &self,
        surname: &str,
        forenames: &str,
        dob: chrono::NaiveDate,
        sex: Sex,
    ) -> String {
        let surname = surname.trim().to_uppercase();
        let initial: String = forenames
            .trim()
            .chars()
            .next()
            .map(|c| c.to_uppercase().collect())
            .unwrap_or_default();
        let dob = dob.format("%Y-%m-%d").to_string();
        self.mac(
            "names",
            &[
                surname.as_bytes(),
                initial.as_bytes(),
                dob.as_bytes(),
                drd_model::Coded::code(sex).as_bytes(),
            ],
        )
    }

    /// A provider's case or client reference, salted by submitter so the same reference from two
    /// submitters does not collide.
    pub fn reference(&self, submitter: &str, value: &str) -> String {
        self.mac("ref", &[submitter.as_bytes(), value.trim().as_bytes()])
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key() -> LinkageKey {
        LinkageKey::from_bytes(b"0123456789abcdef0123456789abcdef").unwrap()
    }

    #[test]
    fn pseudonyms_are_stable_keyed_and_separated() {
        let k = key().pseudonymiser();
        let nhs = NhsNumber::parse("943 476 5919").unwrap();
        let a = k.person_from_nhs(&nhs);
        assert_eq!(a.len(), 64);
        assert_eq!(
            a,
            k.person_from_nhs(&NhsNumber::parse("9434765919").unwrap())
        );
        let other = LinkageKey::from_bytes(b"another secret key of at least 32 bytes").unwrap();
        assert_ne!(
            a,
            other.pseudonymiser().person_from_nhs(&nhs),
            "a different key gives a different pseudonym"
        );
        assert_ne!(
            k.reference("coroner-a", "X/1"),
            k.reference("coroner-b", "X/1"),
            "salted by submitter"
        );
        let d = chrono::NaiveDate::from_ymd_opt(1980, 1, 2).unwrap();
        assert_eq!(
            k.person_from_names(" smith ", "john paul", d, Sex::Male),
            k.person_from_names("SMITH", "J", d, Sex::Male)
        );
        assert_ne!(
            k.person_from_names("SMITH", "J", d, Sex::Male),
            k.person_from_names("SMITH", "J", d, Sex::Female)
        );
        assert!(!a.contains("9434765919"));
        assert_eq!(format!("{:?}", key()), "LinkageKey(<redacted>)");
        assert_eq!(format!("{k:?}"), "Pseudonymiser(<redacted>)");
        assert!(matches!(
            LinkageKey::from_bytes(b"short"),
            Err(KeyError::TooShort)
        ));
    }
}
