//! Client secrets: creation (generated or admin-chosen), the public view, and verification
//! with the in-memory verified-cache for argon2 hashes.

pub mod store;

use std::collections::HashSet;
use std::sync::Mutex;

use serde::Serialize;

use crate::crypto;
use crate::error::AppError;
use store::SecretRow;

/// Minimum length of a secret value typed by an admin.
pub const MIN_CHOSEN_LEN: usize = 16;
/// Maximum length of a secret value typed by an admin.
pub const MAX_CHOSEN_LEN: usize = 512;

/// What admins see of a secret: never the value, never the hash.
#[derive(Debug, Clone, Serialize)]
pub struct SecretView {
    /// The secret's ID.
    pub id: i64,
    /// What it is for.
    pub description: String,
    /// Last four characters.
    pub hint: String,
    /// `generated` or `chosen` (typed by an admin).
    pub kind: &'static str,
    /// Seconds since the epoch; None = never.
    pub expires_at: Option<i64>,
    /// Seconds since the epoch; None = never used.
    pub last_used_at: Option<i64>,
    /// Seconds since the epoch.
    pub created_at: i64,
}

impl From<&SecretRow> for SecretView {
    fn from(row: &SecretRow) -> Self {
        SecretView {
            id: row.id,
            description: row.description.clone(),
            hint: row.hint.clone(),
            kind: if crypto::is_argon2(&row.hash) {
                "chosen"
            } else {
                "generated"
            },
            expires_at: row.expires_at,
            last_used_at: row.last_used_at,
            created_at: row.created_at,
        }
    }
}

/// A secret ready to store: its hash and hint, and the value to show once when generated.
pub struct PreparedSecret {
    /// Scheme-tagged hash.
    pub hash: String,
    /// Last four characters.
    pub hint: String,
    /// The generated value, to show exactly once; None for a value the admin typed.
    pub generated: Option<String>,
}

/// Generates a secret (no value given) or hashes the admin's value with argon2id.
/// Runs argon2 for a chosen value: call it off the async executor.
pub fn prepare(value: Option<&str>) -> Result<PreparedSecret, AppError> {
    match value {
        None => {
            let value = crypto::generate_secret()?;
            Ok(PreparedSecret {
                hash: crypto::sha256_tagged(value.as_bytes()),
                hint: crypto::hint(&value),
                generated: Some(value),
            })
        }
        Some(value) => {
            validate_chosen(value).map_err(AppError::Invalid)?;
            Ok(PreparedSecret {
                hash: crypto::argon2_hash(value.as_bytes())?,
                hint: crypto::hint(value),
                generated: None,
            })
        }
    }
}

/// Rules for a value an admin types: 16 to 512 printable ASCII characters, no spaces.
pub fn validate_chosen(value: &str) -> Result<(), String> {
    let len = value.chars().count();
    if len < MIN_CHOSEN_LEN {
        return Err(format!(
            "a secret value must be at least {MIN_CHOSEN_LEN} characters (leave it empty to generate one)"
        ));
    }
    if len > MAX_CHOSEN_LEN {
        return Err(format!(
            "a secret value must be at most {MAX_CHOSEN_LEN} characters"
        ));
    }
    if !value.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(
            "a secret value may contain only printable ASCII characters without spaces".into(),
        );
    }
    Ok(())
}

/// Checks the description of a secret.
pub fn validate_description(description: &str) -> Result<String, String> {
    let d = description.trim();
    if d.chars().count() > 200 {
        return Err("description must be at most 200 characters".into());
    }
    Ok(d.to_string())
}

/// Verifies presented secrets against a client's stored secrets.
///
/// Generated secrets are compared by SHA-256 (constant time). Admin-chosen secrets are
/// argon2id; a successful argon2 verification is remembered by (secret id, SHA-256 of the
/// presented value), so argon2 runs once per secret and process. The caller loads the rows on
/// every request, so expiry and deletion still take effect at once.
///
/// Every failure costs one argon2 verification per argon2 secret, and one against a dummy
/// hash when the client has none (or does not exist): an unknown client and a wrong secret
/// take the same time.
#[derive(Default)]
pub struct SecretVerifier {
    verified: Mutex<HashSet<(i64, [u8; 32])>>,
}

/// Upper bound on remembered argon2 verifications; the set is cleared when it is reached.
const VERIFIED_CACHE_MAX: usize = 100_000;

/// Why a presented secret was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretFailure {
    /// No stored secret matches.
    NoMatch,
    /// The matching secret has expired.
    Expired,
    /// Deciding needs an argon2 verification, which the caller does not allow (it is not on
    /// a blocking thread).
    WouldBlock,
}

impl SecretVerifier {
    /// Returns the id of the unexpired secret that matches `presented`. With `may_block`
    /// false, an answer that needs argon2 (a first use of a typed secret, or any failure,
    /// which costs a dummy verification) is `WouldBlock` instead.
    pub fn verify(
        &self,
        secrets: &[SecretRow],
        presented: &[u8],
        now: i64,
        may_block: bool,
    ) -> Result<i64, SecretFailure> {
        let digest = crypto::sha256(presented);
        let mut found: Option<&SecretRow> = None;
        for s in secrets.iter().filter(|s| !crypto::is_argon2(&s.hash)) {
            if crypto::sha256_matches(&digest, &s.hash) {
                found = Some(s);
            }
        }
        let chosen: Vec<&SecretRow> = secrets
            .iter()
            .filter(|s| crypto::is_argon2(&s.hash))
            .collect();
        if found.is_none()
            && !chosen.is_empty()
            && let Ok(cache) = self.verified.lock()
        {
            found = chosen
                .iter()
                .copied()
                .find(|s| cache.contains(&(s.id, digest)));
        }
        if found.is_none() && !may_block {
            return Err(SecretFailure::WouldBlock);
        }
        if found.is_none() {
            if chosen.is_empty() {
                let _ = crypto::argon2_verify(presented, crypto::dummy_argon2_hash());
            }
            for s in &chosen {
                if crypto::argon2_verify(presented, &s.hash) {
                    if let Ok(mut cache) = self.verified.lock() {
                        if cache.len() >= VERIFIED_CACHE_MAX {
                            cache.clear();
                        }
                        cache.insert((s.id, digest));
                    }
                    found = Some(s);
                    break;
                }
            }
        }
        match found {
            None => Err(SecretFailure::NoMatch),
            Some(s) if s.expires_at.is_some_and(|exp| exp <= now) => Err(SecretFailure::Expired),
            Some(s) => Ok(s.id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, p: &PreparedSecret, expires_at: Option<i64>) -> SecretRow {
        SecretRow {
            id,
            client_id: 1,
            description: String::new(),
            hash: p.hash.clone(),
            hint: p.hint.clone(),
            expires_at,
            last_used_at: None,
            created_at: 0,
        }
    }

    #[test]
    fn generated_and_chosen_secrets_verify_and_expire() {
        let generated = prepare(None).unwrap();
        let value = generated.generated.clone().unwrap();
        let chosen = prepare(Some("a-long-admin-chosen-value")).unwrap();
        let rows = vec![row(1, &generated, None), row(2, &chosen, Some(100))];
        let v = SecretVerifier::default();
        assert_eq!(v.verify(&rows, value.as_bytes(), 50, false), Ok(1));
        // The first use of a typed secret needs argon2: not without blocking.
        assert_eq!(
            v.verify(&rows, b"a-long-admin-chosen-value", 50, false),
            Err(SecretFailure::WouldBlock)
        );
        assert_eq!(
            v.verify(&rows, b"a-long-admin-chosen-value", 50, true),
            Ok(2)
        );
        // remembered: still valid from the cache, still refused once expired
        assert_eq!(
            v.verify(&rows, b"a-long-admin-chosen-value", 60, false),
            Ok(2)
        );
        assert_eq!(
            v.verify(&rows, b"a-long-admin-chosen-value", 100, false),
            Err(SecretFailure::Expired)
        );
        assert_eq!(
            v.verify(&rows, b"wrong", 50, true),
            Err(SecretFailure::NoMatch)
        );
        assert_eq!(
            v.verify(&rows, b"wrong", 50, false),
            Err(SecretFailure::WouldBlock)
        );
        assert_eq!(
            v.verify(&[], b"anything", 50, true),
            Err(SecretFailure::NoMatch)
        );
    }

    #[test]
    fn chosen_values_must_be_long_enough() {
        assert!(prepare(Some("short")).is_err());
        assert!(prepare(Some("has spaces in it, sixteen+")).is_err());
    }
}
