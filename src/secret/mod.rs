//! Client secrets: creation (generated or admin-chosen), the public view, and verification
//! with the in-memory verified-cache for argon2 hashes.

pub mod store;

use std::collections::HashSet;
use std::sync::Mutex;

use serde::Serialize;

use crate::crypto;
use crate::error::AppError;
use crate::ids::SecretId;
use store::SecretRow;

/// Minimum length of a secret value typed by an admin.
pub const MIN_CHOSEN_LEN: usize = 16;
/// Maximum length of a secret value typed by an admin.
pub const MAX_CHOSEN_LEN: usize = 512;

/// What admins see of a secret: never the value, never the hash.
#[derive(Debug, Clone, Serialize)]
pub struct SecretView {
    /// The secret's ID.
    pub id: SecretId,
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
            let value = crypto::PlainToken::generate()?;
            Ok(PreparedSecret {
                hash: value.hashed().into_string(),
                hint: crypto::hint(value.expose()),
                generated: Some(value.into_exposed()),
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

/// Verifies presented secrets against a client's stored secrets, without ever running argon2
/// itself.
///
/// Generated secrets are compared by SHA-256 (constant time). Admin-chosen secrets are
/// argon2id: a successful argon2 verification (run by the caller, through
/// [`crate::argon2_pool::Argon2Pool`]) is remembered by (secret id, SHA-256 of the presented
/// value), so argon2 runs once per secret and process. The caller passes the current rows on
/// every request, so expiry and deletion still take effect at once.
///
/// A failure for a client without typed secrets, or for an unknown client, costs SHA-256
/// comparisons only (RFC 6749 2.2: a client_id is public, so nothing is hidden by making a
/// wrong guess as slow as argon2); only a client that has typed secrets makes a failure cost
/// an argon2 verification.
#[derive(Default)]
pub struct SecretVerifier {
    verified: Mutex<HashSet<(SecretId, [u8; 32])>>,
}

/// Upper bound on remembered argon2 verifications; the set is cleared when it is reached.
const VERIFIED_CACHE_MAX: usize = 100_000;

/// What the cheap comparisons decided.
pub enum Check<'a> {
    /// This secret matches (it may have expired: the caller checks).
    Match(&'a SecretRow),
    /// Nothing matches, and nothing is left to try.
    NoMatch,
    /// Nothing matched cheaply; these typed secrets need an argon2 verification each.
    NeedsArgon2(Vec<&'a SecretRow>),
}

impl SecretVerifier {
    /// Compares `digest` (SHA-256 of the presented value) with the generated secrets and the
    /// remembered argon2 verifications.
    pub fn check<'a>(&self, secrets: &'a [SecretRow], digest: &[u8; 32]) -> Check<'a> {
        let mut found: Option<&SecretRow> = None;
        let mut compared = false;
        for s in secrets.iter().filter(|s| !crypto::is_argon2(&s.hash)) {
            compared = true;
            if crypto::sha256_matches(digest, &s.hash) {
                found = Some(s);
            }
        }
        if !compared {
            // The same work when there is nothing to compare with (an unknown client).
            let _ = crypto::sha256_matches(digest, dummy_digest());
        }
        if let Some(s) = found {
            return Check::Match(s);
        }
        let chosen: Vec<&SecretRow> = secrets
            .iter()
            .filter(|s| crypto::is_argon2(&s.hash))
            .collect();
        if chosen.is_empty() {
            return Check::NoMatch;
        }
        if let Ok(cache) = self.verified.lock()
            && let Some(s) = chosen.iter().find(|s| cache.contains(&(s.id, *digest)))
        {
            return Check::Match(s);
        }
        Check::NeedsArgon2(chosen)
    }

    /// Remembers that the value with SHA-256 `digest` verified against secret `secret_id`.
    pub fn remember(&self, secret_id: SecretId, digest: [u8; 32]) {
        if let Ok(mut cache) = self.verified.lock() {
            if cache.len() >= VERIFIED_CACHE_MAX {
                cache.clear();
            }
            cache.insert((secret_id, digest));
        }
    }
}

/// A `sha256$...` hash of a value nobody knows.
fn dummy_digest() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| crypto::sha256_tagged(crypto::unique_id().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, p: &PreparedSecret, expires_at: Option<i64>) -> SecretRow {
        SecretRow {
            id: SecretId(id),
            client_pk: crate::ids::ClientKey(1),
            description: String::new(),
            hash: p.hash.clone(),
            hint: p.hint.clone(),
            expires_at,
            last_used_at: None,
            created_at: 0,
        }
    }

    #[test]
    fn generated_secrets_match_by_sha256_and_typed_ones_need_argon2_once() {
        let generated = prepare(None).unwrap();
        let value = generated.generated.clone().unwrap();
        let chosen = prepare(Some("a-long-admin-chosen-value")).unwrap();
        let rows = vec![row(1, &generated, None), row(2, &chosen, Some(100))];
        let v = SecretVerifier::default();
        let d = |s: &[u8]| crypto::sha256(s);
        let ids = |c: Check| match c {
            Check::Match(s) => format!("match {}", s.id),
            Check::NoMatch => "no match".to_string(),
            Check::NeedsArgon2(v) => {
                format!("argon2 {:?}", v.iter().map(|s| s.id.0).collect::<Vec<_>>())
            }
        };
        assert_eq!(ids(v.check(&rows, &d(value.as_bytes()))), "match 1");
        let typed = d(b"a-long-admin-chosen-value");
        assert_eq!(ids(v.check(&rows, &typed)), "argon2 [2]");
        v.remember(SecretId(2), typed);
        assert_eq!(ids(v.check(&rows, &typed)), "match 2");
        assert_eq!(ids(v.check(&rows, &d(b"wrong"))), "argon2 [2]");
        // Without typed secrets, or without any secret, a failure is SHA-256 only.
        assert_eq!(ids(v.check(&rows[..1], &d(b"wrong"))), "no match");
        assert_eq!(ids(v.check(&[], &d(b"anything"))), "no match");
    }

    #[test]
    fn chosen_values_must_be_long_enough() {
        assert!(prepare(Some("short")).is_err());
        assert!(prepare(Some("has spaces in it, sixteen+")).is_err());
    }
}
