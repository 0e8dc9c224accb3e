//! Authentication: who is asking, and with which [`Role`].
//!
//! Three ways in, all checked before any work is done:
//! - `authorization: Bearer <token>`: the token's SHA-256 must equal a configured user's
//!   `token_sha256` (tokens themselves are never stored);
//! - `authorization: Bearer <JWT>`: HS256 only, signed with the configured secret, with an
//!   `exp` in the future; the role comes from the `role` claim, the user from `sub`;
//! - the Flight handshake (or any call) with `authorization: Basic base64(user:token)`: the
//!   user must be configured and the token's SHA-256 must be that user's hash. The handshake
//!   answers with `authorization: Bearer <token>` for the client's next calls.
//!
//! Errors say what was wrong with the credential, never echo it.

use base64::Engine as _;
use hmac::{KeyInit, Mac};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::access::Role;

/// A configured user.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// The user name (recorded in the audit; also the Basic-auth user name).
    pub name: String,
    /// `national`, `public` or `partnership:<code>`.
    pub role: String,
    /// SHA-256 of the user's token, hex (e.g. `printf %s "$TOKEN" | sha256sum`).
    pub token_sha256: String,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user: String,
    pub role: Role,
}

/// The configured users and JWT secret.
#[derive(Clone, Default)]
pub struct Authenticator {
    users: Vec<(String, Role, [u8; 32])>,
    jwt_secret: Option<Vec<u8>>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("users", &self.users.len())
            .field("jwt", &self.jwt_secret.is_some())
            .finish()
    }
}

/// Why a credential was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("missing authorization header")]
    Missing,
    #[error("invalid token")]
    InvalidToken,
    #[error("invalid JWT: {0}")]
    InvalidJwt(&'static str),
    #[error("expired JWT")]
    Expired,
    #[error("invalid user name or token")]
    InvalidBasic,
    #[error("unsupported authorization scheme (expected Bearer or Basic)")]
    Scheme,
}

fn b64url(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .ok()
}

/// Compares two byte strings in time independent of where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Authenticator {
    /// From the configured users and an optional JWT secret. Checks every role and hash.
    pub fn new(users: &[UserConfig], jwt_secret: Option<Vec<u8>>) -> Result<Self, String> {
        let mut out = Vec::new();
        for u in users {
            let role = Role::parse(&u.role).map_err(|e| format!("user {}: {e}", u.name))?;
            let h = hex::decode(u.token_sha256.trim())
                .ok()
                .and_then(|v| <[u8; 32]>::try_from(v).ok())
                .ok_or_else(|| {
                    format!(
                        "user {}: token_sha256 must be 64 hexadecimal characters",
                        u.name
                    )
                })?;
            if out.iter().any(|(n, _, _)| n == &u.name) {
                return Err(format!("user {} is listed twice", u.name));
            }
            out.push((u.name.clone(), role, h));
        }
        if let Some(s) = &jwt_secret
            && s.len() < 32
        {
            return Err("the JWT secret must be at least 32 bytes".into());
        }
        Ok(Authenticator {
            users: out,
            jwt_secret,
        })
    }

    /// The caller named by an `authorization` header value.
    pub fn authenticate(&self, header: Option<&str>) -> Result<Principal, AuthError> {
        let h = header.ok_or(AuthError::Missing)?.trim();
        if let Some(tok) = h.strip_prefix("Bearer ") {
            let tok = tok.trim();
            if tok.split('.').count() == 3 && self.jwt_secret.is_some() {
                return self.jwt(tok);
            }
            let digest: [u8; 32] = Sha256::digest(tok.as_bytes()).into();
            return self
                .users
                .iter()
                .find(|(_, _, hsh)| same(hsh, &digest))
                .map(|(n, r, _)| Principal {
                    user: n.clone(),
                    role: r.clone(),
                })
                .ok_or(AuthError::InvalidToken);
        }
        if let Some(b) = h.strip_prefix("Basic ") {
            let (user, token) = self.basic_parts(b)?;
            return self.basic(&user, &token);
        }
        Err(AuthError::Scheme)
    }

    fn basic_parts(&self, b64: &str) -> Result<(String, String), AuthError> {
        // Padded or not: Arrow's Go client (ADBC) sends it without padding.
        let raw = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(b64.trim().trim_end_matches('='))
            .map_err(|_| AuthError::InvalidBasic)?;
        let text = String::from_utf8(raw).map_err(|_| AuthError::InvalidBasic)?;
        let (u, t) = text.split_once(':').ok_or(AuthError::InvalidBasic)?;
        Ok((u.to_string(), t.to_string()))
    }

    /// A Basic-auth handshake: the user and token, checked. Returns the caller and the token
    /// to hand back as a bearer token.
    pub fn basic_header(&self, header: &str) -> Result<(Principal, String), AuthError> {
        let b = header
            .trim()
            .strip_prefix("Basic ")
            .ok_or(AuthError::Scheme)?;
        let (user, token) = self.basic_parts(b)?;
        let p = self.basic(&user, &token)?;
        Ok((p, token))
    }

    fn basic(&self, user: &str, token: &str) -> Result<Principal, AuthError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.users
            .iter()
            .find(|(n, _, _)| n == user)
            .filter(|(_, _, h)| same(h, &digest))
            .map(|(n, r, _)| Principal {
                user: n.clone(),
                role: r.clone(),
            })
            .ok_or(AuthError::InvalidBasic)
    }

    fn jwt(&self, tok: &str) -> Result<Principal, AuthError> {
        #[derive(Deserialize)]
        struct Header {
            alg: String,
        }
        #[derive(Deserialize)]
        struct Claims {
            sub: Option<String>,
            role: Option<String>,
            exp: Option<serde_json::Value>,
        }
        let secret = self.jwt_secret.as_deref().ok_or(AuthError::InvalidToken)?;
        let mut parts = tok.split('.');
        let (Some(h), Some(c), Some(s)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(AuthError::InvalidJwt("not three parts"));
        };
        let header: Header = b64url(h)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(AuthError::InvalidJwt("bad header"))?;
        if header.alg != "HS256" {
            return Err(AuthError::InvalidJwt("only HS256 is accepted"));
        }
        let sig = b64url(s).ok_or(AuthError::InvalidJwt("bad signature encoding"))?;
        let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(secret)
            .map_err(|_| AuthError::InvalidJwt("bad secret"))?;
        mac.update(h.as_bytes());
        mac.update(b".");
        mac.update(c.as_bytes());
        mac.verify_slice(&sig)
            .map_err(|_| AuthError::InvalidJwt("signature does not match"))?;
        let claims: Claims = b64url(c)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(AuthError::InvalidJwt("bad claims"))?;
        let exp = claims
            .exp
            .and_then(|v| v.as_f64())
            .ok_or(AuthError::InvalidJwt("no exp claim"))?;
        if exp <= chrono::Utc::now().timestamp() as f64 {
            return Err(AuthError::Expired);
        }
        let role = claims
            .role
            .as_deref()
            .and_then(|r| Role::parse(r).ok())
            .ok_or(AuthError::InvalidJwt("no valid role claim"))?;
        let user = claims
            .sub
            .filter(|s| !s.is_empty())
            .ok_or(AuthError::InvalidJwt("no sub claim"))?;
        Ok(Principal { user, role })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sign(secret: &[u8], claims: &str) -> String {
        let e = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let h = e(br#"{"alg":"HS256","typ":"JWT"}"#);
        let c = e(claims.as_bytes());
        let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(secret).unwrap();
        mac.update(format!("{h}.{c}").as_bytes());
        format!("{h}.{c}.{}", e(&mac.finalize().into_bytes()))
    }

    #[test]
    fn tokens_jwts_and_basic() {
        let secret = b"0123456789abcdef0123456789abcdef".to_vec();
        let users = vec![UserConfig {
            name: "ann".into(),
            role: "partnership:E06000047".into(),
            token_sha256: hex::encode(Sha256::digest(b"tok-ann")),
        }];
        let a = Authenticator::new(&users, Some(secret.clone())).unwrap();
        let ann = Principal {
            user: "ann".into(),
            role: Role::Partnership("E06000047".into()),
        };
        assert_eq!(a.authenticate(Some("Bearer tok-ann")), Ok(ann.clone()));
        assert_eq!(
            a.authenticate(Some("Bearer tok-bob")),
            Err(AuthError::InvalidToken)
        );
        assert_eq!(a.authenticate(None), Err(AuthError::Missing));
        let basic = base64::engine::general_purpose::STANDARD.encode("ann:tok-ann");
        assert_eq!(a.authenticate(Some(&format!("Basic {basic}"))), Ok(ann));
        let wrong = base64::engine::general_purpose::STANDARD.encode("ann:tok-bob");
        assert_eq!(
            a.authenticate(Some(&format!("Basic {wrong}"))),
            Err(AuthError::InvalidBasic)
        );
        let later = chrono::Utc::now().timestamp() + 600;
        let good = sign(
            &secret,
            &format!(r#"{{"sub":"nat","role":"national","exp":{later}}}"#),
        );
        assert_eq!(
            a.authenticate(Some(&format!("Bearer {good}")))
                .unwrap()
                .role,
            Role::National
        );
        let past = sign(&secret, r#"{"sub":"nat","role":"national","exp":1000}"#);
        assert_eq!(
            a.authenticate(Some(&format!("Bearer {past}"))),
            Err(AuthError::Expired)
        );
        let forged = sign(
            b"another-secret-another-secret-00",
            &format!(r#"{{"sub":"nat","role":"national","exp":{later}}}"#),
        );
        assert!(matches!(
            a.authenticate(Some(&format!("Bearer {forged}"))),
            Err(AuthError::InvalidJwt(_))
        ));
        let no_exp = sign(&secret, r#"{"sub":"nat","role":"national"}"#);
        assert!(matches!(
            a.authenticate(Some(&format!("Bearer {no_exp}"))),
            Err(AuthError::InvalidJwt(_))
        ));
    }
}
