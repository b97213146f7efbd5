//! Secret generation, hashing and comparison. Every value that authenticates somebody is
//! generated here from the operating system's RNG and stored only as a hash:
//! SHA-256 for generated (high-entropy) values, argon2id for values a person chose.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::TryRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::AppError;

/// Scheme tag of a SHA-256 hash of a generated value.
pub const SHA256_PREFIX: &str = "sha256$";

/// `n` bytes from the operating system's RNG.
pub fn os_random_bytes<const N: usize>() -> Result<[u8; N], AppError> {
    let mut buf = [0u8; N];
    rand::rngs::SysRng
        .try_fill_bytes(&mut buf)
        .map_err(|e| AppError::Internal(format!("operating system RNG failed: {e}")))?;
    Ok(buf)
}

/// A new secret: 32 bytes from the OS RNG, base64url without padding (43 characters,
/// URL-safe, so it needs no encoding in a Basic header or a form).
pub fn generate_secret() -> Result<String, AppError> {
    Ok(URL_SAFE_NO_PAD.encode(os_random_bytes::<32>()?))
}

/// A generated value in the clear that authenticates its holder: a client secret, a refresh
/// token, an authorization code. It is shown or sent once and never stored (the database keeps
/// its [`HashedToken`]); its `Debug` is redacted so that it cannot reach a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct PlainToken(String);

impl PlainToken {
    /// 32 bytes from the operating system's RNG, base64url (see [`generate_secret`]).
    pub fn generate() -> Result<Self, AppError> {
        generate_secret().map(Self)
    }

    /// Its stored form.
    pub fn hashed(&self) -> HashedToken {
        HashedToken::of(&self.0)
    }

    /// The value, for the one response or page that hands it over.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The value, moved out for the one response or page that hands it over.
    pub fn into_exposed(self) -> String {
        self.0
    }
}

impl std::fmt::Debug for PlainToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PlainToken(<redacted>)")
    }
}

/// The stored form of a generated value, `sha256$<base64url digest>`: what the database keeps
/// and looks values up by. A stolen copy of the database does not give the value back
/// (256 random bits behind SHA-256), and the type keeps a presented value from being passed
/// where its hash is expected.
#[derive(Clone, PartialEq, Eq)]
pub struct HashedToken(String);

impl HashedToken {
    /// The hash of a value someone presented (a code, a refresh token), to look it up.
    pub fn of(presented: &str) -> Self {
        Self(sha256_tagged(presented.as_bytes()))
    }

    /// The stored text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The stored text, moved out.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::fmt::Debug for HashedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HashedToken(<redacted>)")
    }
}

/// A new public identifier (client_id, key id): 16 random bytes, base64url, starting with a
/// letter or digit (so that it is never taken for a command-line option).
pub fn generate_id() -> Result<String, AppError> {
    loop {
        let id = URL_SAFE_NO_PAD.encode(os_random_bytes::<16>()?);
        if id.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Ok(id);
        }
    }
}

/// A non-secret unique value (a JWT `jti`) from the thread-local, OS-seeded CSPRNG: cheaper
/// than a system call per token on the hot path.
pub fn unique_id() -> String {
    let mut buf = [0u8; 16];
    rand::fill(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// SHA-256 of a value.
pub fn sha256(value: &[u8]) -> [u8; 32] {
    Sha256::digest(value).into()
}

/// The stored form of a generated value: `sha256$<base64url digest>`.
pub fn sha256_tagged(value: &[u8]) -> String {
    format!("{SHA256_PREFIX}{}", URL_SAFE_NO_PAD.encode(sha256(value)))
}

/// Compares a presented value's digest with a stored `sha256$...` hash in constant time.
pub fn sha256_matches(presented_digest: &[u8; 32], stored: &str) -> bool {
    let Some(encoded) = stored.strip_prefix(SHA256_PREFIX) else {
        return false;
    };
    match URL_SAFE_NO_PAD.decode(encoded) {
        Ok(stored) => stored.ct_eq(presented_digest).into(),
        Err(_) => false,
    }
}

/// argon2id with OWASP's parameters (19 MiB, t=2, p=1): about 15 ms per hash in a release build.
fn argon2() -> Argon2<'static> {
    #[allow(clippy::expect_used)] // constant, valid parameters
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a human-chosen value with argon2id; returns a PHC string.
pub fn argon2_hash(value: &[u8]) -> Result<String, AppError> {
    argon2()
        .hash_password(value)
        .map(|h| h.to_string())
        .map_err(|e| AppError::Internal(format!("argon2 hashing failed: {e}")))
}

/// Verifies a value against a PHC string. False for a malformed hash.
pub fn argon2_verify(value: &[u8], phc: &str) -> bool {
    argon2().verify_password(value, phc).is_ok()
}

/// A valid argon2id hash of a value nobody knows, verified against when the real hash is
/// missing (unknown user, unknown client) so that every failure costs the same time.
pub fn dummy_argon2_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let value = unique_id();
        argon2_hash(value.as_bytes()).unwrap_or_default()
    })
}

/// True if a stored hash is an argon2 PHC string.
pub fn is_argon2(stored: &str) -> bool {
    stored.starts_with("$argon2")
}

/// The last four characters of a secret, shown to admins to tell secrets apart.
pub fn hint(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    chars[chars.len().saturating_sub(4)..].iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_43_url_safe_chars_and_distinct() {
        let a = generate_secret().unwrap();
        let b = generate_secret().unwrap();
        assert_eq!(a.len(), 43);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(a, b);
    }

    #[test]
    fn plain_tokens_hash_to_what_a_presented_copy_hashes_to_and_never_debug_print() {
        let plain = PlainToken::generate().unwrap();
        assert_eq!(plain.hashed(), HashedToken::of(plain.expose()));
        assert!(plain.hashed().as_str().starts_with(SHA256_PREFIX));
        assert_ne!(plain.hashed().as_str(), plain.expose());
        let shown = format!("{plain:?} {:?}", plain.hashed());
        assert!(!shown.contains(plain.expose()), "{shown}");
        assert!(!shown.contains(plain.hashed().as_str()), "{shown}");
    }

    #[test]
    fn sha256_tag_round_trip() {
        let stored = sha256_tagged(b"hello");
        assert!(stored.starts_with("sha256$"));
        assert!(sha256_matches(&sha256(b"hello"), &stored));
        assert!(!sha256_matches(&sha256(b"hellO"), &stored));
        assert!(!sha256_matches(&sha256(b"hello"), "$argon2id$..."));
    }

    #[test]
    fn argon2_round_trip() {
        let phc = argon2_hash(b"correct horse battery").unwrap();
        assert!(is_argon2(&phc));
        assert!(argon2_verify(b"correct horse battery", &phc));
        assert!(!argon2_verify(b"wrong", &phc));
    }

    #[test]
    fn hint_is_last_four() {
        assert_eq!(hint("abcdefgh"), "efgh");
        assert_eq!(hint("ab"), "ab");
    }
}
