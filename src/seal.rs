//! Sealing: the secrets the server must read back (the private keys that sign access tokens,
//! the shared HMAC keys of client_secret_jwt clients) are stored encrypted with AES-256-GCM
//! under a master key that is never in the database, so that a copy of the database alone
//! cannot forge a token or a client assertion.
//!
//! A sealed value is `v1:` + base64url(96-bit random nonce || ciphertext || 128-bit tag); the
//! additional authenticated data names the table, column and row ([`Aad`]), so that a sealed
//! value moved to another row or column does not open. The prefix tells sealed values from the
//! plaintext of databases from before sealing, which [`reseal`] converts at start-up.
//!
//! Where the master key comes from is decided in one place, [`master_key`].

use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use diesel::prelude::*;
use zeroize::Zeroizing;

use crate::db::{AnyConnection, DbUrl};
use crate::error::AppError;

/// Prefix of a value sealed in format 1.
pub const SEALED_PREFIX: &str = "v1:";

/// The key that seals stored secrets: 32 bytes, wiped from memory when dropped. Debug never
/// shows it.
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// The row a sealed value belongs to: bound into the ciphertext as AAD.
#[derive(Debug, Clone, Copy)]
pub struct Aad<'a> {
    table: &'static str,
    column: &'static str,
    row: &'a str,
}

impl<'a> Aad<'a> {
    /// The private key of the signing key `kid` (`signing_keys.private_key`).
    pub fn signing_key(kid: &'a str) -> Aad<'a> {
        Aad {
            table: "signing_keys",
            column: "private_key",
            row: kid,
        }
    }

    /// The client_secret_jwt key of the client `client_id` (`clients.hmac_key`).
    pub fn client_hmac_key(client_id: &'a str) -> Aad<'a> {
        Aad {
            table: "clients",
            column: "hmac_key",
            row: client_id,
        }
    }

    fn bytes(&self) -> Vec<u8> {
        // The row id is last and the other parts are constants: the encoding is unambiguous.
        format!("portcullis/v1/{}.{}/{}", self.table, self.column, self.row).into_bytes()
    }
}

/// True when a stored value is sealed (in any known format version).
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(SEALED_PREFIX)
}

fn wrong_key() -> AppError {
    AppError::Internal("authentication failed".into())
}

impl MasterKey {
    /// A new random key from the operating system's RNG.
    pub fn generate() -> Result<MasterKey, AppError> {
        Ok(MasterKey(Zeroizing::new(crate::crypto::os_random_bytes::<
            32,
        >()?)))
    }

    /// Parses base64 (standard or URL-safe, padded or not) of exactly 32 bytes.
    pub fn parse(text: &str) -> Result<MasterKey, String> {
        let text = text.trim();
        let bytes = Zeroizing::new(
            STANDARD
                .decode(text)
                .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
                .map_err(|_| {
                    "it is not base64 (generate a key with: head -c 32 /dev/urandom | base64)"
                        .to_string()
                })?,
        );
        let mut key = Zeroizing::new([0u8; 32]);
        if bytes.len() != key.len() {
            return Err("it must be 32 bytes, base64-encoded".to_string());
        }
        key.copy_from_slice(&bytes);
        Ok(MasterKey(key))
    }

    /// The key as standard base64, the form [`MasterKey::parse`] reads (for a key file).
    fn encode(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.0.as_slice()))
    }

    /// The session-cookie key, derived with HKDF-SHA256 (the cookie crate's `derive_from`), so
    /// every instance has the same one and none is stored.
    pub fn cookie_key(&self) -> actix_web::cookie::Key {
        actix_web::cookie::Key::derive_from(self.0.as_slice())
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(self.0.as_slice().into())
    }

    /// Seals `plaintext` for the row `aad` names: `v1:` + base64url(nonce || ciphertext || tag),
    /// under a fresh random 96-bit nonce.
    pub fn seal(&self, aad: Aad, plaintext: &[u8]) -> Result<String, AppError> {
        let nonce = crate::crypto::os_random_bytes::<12>()?;
        let aad = aad.bytes();
        let ciphertext = self
            .cipher()
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| AppError::Internal("sealing failed".into()))?;
        let mut out = Vec::with_capacity(nonce.len() + ciphertext.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        Ok(format!("{SEALED_PREFIX}{}", URL_SAFE_NO_PAD.encode(out)))
    }

    /// Opens what [`MasterKey::seal`] produced for the same row. Fails for another key, another
    /// row, a changed value or a value that is not sealed.
    pub fn open(&self, aad: Aad, sealed: &str) -> Result<Zeroizing<Vec<u8>>, AppError> {
        let Some(encoded) = sealed.strip_prefix(SEALED_PREFIX) else {
            return Err(AppError::Internal("is not sealed".into()));
        };
        self.open_raw(&aad.bytes(), encoded)
    }

    /// Opens a client_secret_jwt key sealed before the `v1:` format: base64url(nonce ||
    /// ciphertext || tag) with the client_id alone as AAD. Only [`reseal`] reads it.
    fn open_unversioned(
        &self,
        client_id: &str,
        sealed: &str,
    ) -> Result<Zeroizing<Vec<u8>>, AppError> {
        self.open_raw(client_id.as_bytes(), sealed)
    }

    fn open_raw(&self, aad: &[u8], encoded: &str) -> Result<Zeroizing<Vec<u8>>, AppError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| AppError::Internal("is not base64".into()))?;
        if bytes.len() < 12 + 16 {
            return Err(AppError::Internal("is too short".into()));
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        self.cipher()
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| wrong_key())
    }
}

/// Where the master key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `PORTCULLIS_MASTER_KEY`.
    Setting,
    /// `PORTCULLIS_MASTER_KEY_FILE`.
    File(PathBuf),
    /// The key file beside the SQLite database, `<database>.key` (created on first start).
    BesideDatabase(PathBuf),
}

impl KeySource {
    /// How to name it in a message.
    pub fn describe(&self) -> String {
        match self {
            KeySource::Setting => "PORTCULLIS_MASTER_KEY".into(),
            KeySource::File(p) => format!("PORTCULLIS_MASTER_KEY_FILE ({})", p.display()),
            KeySource::BesideDatabase(p) => format!("the key file {}", p.display()),
        }
    }
}

/// The key file of a SQLite database when no key is configured: `<database path>.key`.
pub fn key_file_beside(database: &str) -> PathBuf {
    PathBuf::from(format!("{database}.key"))
}

/// The master key, decided here and only here, at start-up (before anything is read or
/// sealed; `conn` is the database the server is about to use, already migrated):
/// 1. `PORTCULLIS_MASTER_KEY` (base64 of 32 bytes), or
/// 2. `PORTCULLIS_MASTER_KEY_FILE` (a file holding that);
/// 3. neither, on SQLite: the file `<database>.key` beside the database, created (mode 0600)
///    on first start; if the database already holds sealed values, a missing file is an
///    error (a new key could not open them);
/// 4. neither, on PostgreSQL: an error, since every instance must share the key.
///
/// `configured` and `key_file` are the settings `PORTCULLIS_MASTER_KEY` and
/// `PORTCULLIS_MASTER_KEY_FILE`; `database` is `PORTCULLIS_DATABASE_URL`.
pub fn master_key(
    configured: Option<&MasterKey>,
    key_file: Option<&Path>,
    database: &DbUrl,
    conn: &mut AnyConnection,
) -> Result<(MasterKey, KeySource), AppError> {
    if let Some(key) = configured {
        return Ok((key.clone(), KeySource::Setting));
    }
    if let Some(path) = key_file {
        return Ok((read_key_file(path)?, KeySource::File(path.to_path_buf())));
    }
    let path = match database {
        DbUrl::Postgres(_) => {
            return Err(AppError::Invalid(
                "PostgreSQL needs PORTCULLIS_MASTER_KEY or PORTCULLIS_MASTER_KEY_FILE: every instance must share it (generate one with: head -c 32 /dev/urandom | base64)".into(),
            ));
        }
        DbUrl::Sqlite(db) => key_file_beside(db),
    };
    if path.exists() {
        return Ok((read_key_file(&path)?, KeySource::BesideDatabase(path)));
    }
    if holds_sealed_values(conn)? {
        return Err(AppError::Invalid(format!(
            "the database holds sealed keys but their master key file {} is missing: restore it from your backup, or set PORTCULLIS_MASTER_KEY or PORTCULLIS_MASTER_KEY_FILE",
            path.display()
        )));
    }
    let key = create_key_file(&path)?;
    tracing::info!(path = %path.display(), "created the master key file; back it up with the database, and keep it apart from database copies");
    Ok((key, KeySource::BesideDatabase(path)))
}

/// Reads a key file: base64 of 32 bytes (surrounding whitespace ignored).
pub fn read_key_file(path: &Path) -> Result<MasterKey, AppError> {
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
        AppError::Invalid(format!(
            "cannot read the master key file {}: {e}",
            path.display()
        ))
    })?);
    let key = MasterKey::parse(&text)
        .map_err(|m| AppError::Invalid(format!("the master key file {}: {m}", path.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(path = %path.display(), "the master key file can be read by other users; chmod 600 it");
        }
    }
    Ok(key)
}

/// Writes a new random key to `path` (mode 0600) without ever replacing an existing file:
/// written to a temporary file beside it, then linked into place, so that two processes
/// starting at once on a new database end up with the same key.
fn create_key_file(path: &Path) -> Result<MasterKey, AppError> {
    let key = MasterKey::generate()?;
    let cannot = |e: std::io::Error| {
        AppError::Internal(format!(
            "cannot create the master key file {}: {e}",
            path.display()
        ))
    };
    let tmp = PathBuf::from(format!(
        "{}.{}.tmp",
        path.display(),
        crate::crypto::unique_id()
    ));
    write_private(&tmp, &key).map_err(cannot)?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(key),
        // Another process created it first: use that one.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_key_file(path),
        Err(e) => Err(cannot(e)),
    }
}

/// Writes a key to a new file that only its owner can read.
fn write_private(path: &Path, key: &MasterKey) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    let mut text = key.encode();
    text.push('\n');
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// Replaces the key file beside a SQLite database with `key` (after a master-key rotation),
/// atomically: a new 0600 file renamed over the old one.
pub fn replace_key_file(path: &Path, key: &MasterKey) -> Result<(), AppError> {
    let cannot = |e: std::io::Error| {
        AppError::Internal(format!(
            "cannot write the master key file {}: {e}",
            path.display()
        ))
    };
    let tmp = PathBuf::from(format!(
        "{}.{}.tmp",
        path.display(),
        crate::crypto::unique_id()
    ));
    write_private(&tmp, key).map_err(cannot)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        cannot(e)
    })
}

fn holds_sealed_values(conn: &mut AnyConnection) -> Result<bool, AppError> {
    use crate::db::schema::{clients, signing_keys};
    let keys: i64 = signing_keys::table
        .filter(signing_keys::private_key.like(format!("{SEALED_PREFIX}%")))
        .count()
        .get_result(conn)?;
    let hmac: i64 = clients::table
        .filter(clients::hmac_key.is_not_null())
        .count()
        .get_result(conn)?;
    Ok(keys + hmac > 0)
}

/// The key a stored value is to be sealed with: the new key when rotating, the current key when
/// it is still plaintext, None when it is sealed already and stays as it is.
fn reseal_with<'k>(
    new: Option<&'k MasterKey>,
    current: &'k MasterKey,
    stored: &str,
) -> Option<&'k MasterKey> {
    match (new, is_sealed(stored)) {
        (Some(new), _) => Some(new),
        (None, false) => Some(current),
        (None, true) => None,
    }
}

/// What [`reseal`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Resealed {
    /// Signing keys written (sealed from plaintext, or re-sealed under a new key).
    pub signing_keys: usize,
    /// client_secret_jwt keys written.
    pub hmac_keys: usize,
    /// Values that were already sealed with the key and were only checked.
    pub checked: usize,
}

/// Brings every stored secret under one key, in one transaction:
/// - with `new` None (start-up): signing keys stored in plaintext (databases from before
///   sealing) and client_secret_jwt keys in the unversioned format are sealed with `current`;
///   every value already sealed is opened, so that a wrong master key fails here, at start,
///   rather than at the first token;
/// - with `new` (`portcullis master-key rotate`): every value is opened with `current` and
///   sealed again with `new`.
///
/// A value that does not open is an error naming its row and the key's source.
pub fn reseal(
    conn: &mut AnyConnection,
    current: &MasterKey,
    new: Option<&MasterKey>,
    source: &KeySource,
) -> Result<Resealed, AppError> {
    use crate::db::schema::{clients, signing_keys};
    let unopenable = |what: String, e: AppError| {
        AppError::Invalid(format!(
            "the master key from {} does not open {what} ({e}); is it the key this database was sealed with?",
            source.describe()
        ))
    };
    crate::db::transaction(conn, |conn| {
        let mut done = Resealed::default();
        let rows: Vec<(i64, String, String)> = signing_keys::table
            .select((
                signing_keys::id,
                signing_keys::kid,
                signing_keys::private_key,
            ))
            .load(conn)?;
        for (id, kid, stored) in rows {
            let aad = Aad::signing_key(&kid);
            let der = if is_sealed(&stored) {
                current
                    .open(aad, &stored)
                    .map_err(|e| unopenable(format!("signing key {kid}"), e))?
            } else {
                // Before sealing: PKCS#8 DER, standard base64.
                Zeroizing::new(STANDARD.decode(stored.trim()).map_err(|_| {
                    AppError::Internal(format!(
                        "signing key {kid} is neither sealed nor base64 PKCS#8"
                    ))
                })?)
            };
            let Some(target) = reseal_with(new, current, &stored) else {
                done.checked += 1;
                continue;
            };
            diesel::update(signing_keys::table.filter(signing_keys::id.eq(id)))
                .set(signing_keys::private_key.eq(target.seal(aad, &der)?))
                .execute(conn)?;
            done.signing_keys += 1;
        }
        let rows: Vec<(i64, String, Option<String>)> = clients::table
            .filter(clients::hmac_key.is_not_null())
            .select((clients::id, clients::client_id, clients::hmac_key))
            .load(conn)?;
        for (id, client_id, stored) in rows {
            let Some(stored) = stored else { continue };
            let aad = Aad::client_hmac_key(&client_id);
            let what = || format!("the client_secret_jwt key of client {client_id}");
            let value = if is_sealed(&stored) {
                current.open(aad, &stored)
            } else {
                current.open_unversioned(&client_id, &stored)
            }
            .map_err(|e| unopenable(what(), e))?;
            let Some(target) = reseal_with(new, current, &stored) else {
                done.checked += 1;
                continue;
            };
            diesel::update(clients::table.filter(clients::id.eq(id)))
                .set(clients::hmac_key.eq(target.seal(aad, &value)?))
                .execute(conn)?;
            done.hmac_keys += 1;
        }
        Ok(done)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> MasterKey {
        MasterKey::parse(&STANDARD.encode([byte; 32])).unwrap()
    }

    #[test]
    fn sealed_values_open_only_with_the_same_key_and_row() {
        let k = key(7);
        let sealed = k
            .seal(Aad::client_hmac_key("client-a"), b"hmac key")
            .unwrap();
        assert!(sealed.starts_with("v1:"), "{sealed}");
        assert!(!sealed.contains("hmac"));
        assert_eq!(
            k.open(Aad::client_hmac_key("client-a"), &sealed)
                .unwrap()
                .as_slice(),
            b"hmac key"
        );
        assert!(k.open(Aad::client_hmac_key("client-b"), &sealed).is_err());
        assert!(k.open(Aad::signing_key("client-a"), &sealed).is_err());
        assert!(
            key(8)
                .open(Aad::client_hmac_key("client-a"), &sealed)
                .is_err()
        );
        assert!(
            k.open(Aad::client_hmac_key("client-a"), "plaintext")
                .is_err()
        );
        // A fresh nonce each time.
        assert_ne!(
            sealed,
            k.seal(Aad::client_hmac_key("client-a"), b"hmac key")
                .unwrap()
        );
    }

    #[test]
    fn bad_keys_are_refused_and_debug_shows_nothing() {
        assert!(MasterKey::parse("c2hvcnQ=").is_err());
        assert!(MasterKey::parse("not base64!").is_err());
        let k = key(7);
        let shown = format!("{k:?}");
        assert!(!shown.contains('7') && !shown.contains("Bwc"), "{shown}");
    }
}
