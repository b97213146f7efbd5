//! Access tokens: JWTs per RFC 9068 signed with keys kept in the database and published as a
//! JWKS (RFC 7517) so that resource servers can verify them.

pub mod store;

/// On PostgreSQL, the statements of the token and authorization endpoints that concurrent
/// requests run together ([`crate::db::batcher`]; issue 13), one thread and connection each.
pub struct Batches {
    /// Refreshes without a `scope` parameter ([`store::RefreshBatch`]).
    pub refresh: crate::db::batcher::Batcher<store::RefreshBatch>,
    /// New codes ([`store::IssueBatch`]).
    pub issue: crate::db::batcher::Batcher<store::IssueBatch>,
    /// Code exchanges ([`store::RedeemBatch`]).
    pub redeem: crate::db::batcher::Batcher<store::RedeemBatch>,
    /// Access tokens put on the revocation list ([`store::RevokeBatch`]).
    pub revoke: crate::db::batcher::Batcher<store::RevokeBatch>,
    /// Whether access tokens are on it, for introspection ([`store::RevokedBatch`]).
    pub revoked: crate::db::batcher::Batcher<store::RevokedBatch>,
    /// Refresh tokens looked up for introspection ([`store::FindRefreshBatch`]).
    pub find_refresh: crate::db::batcher::Batcher<store::FindRefreshBatch>,
    /// Signed-in sessions looked up ([`crate::user::sessions::FindSessionBatch`]), by the
    /// session store ([`crate::http::session::DbSessionStore`]), which holds a copy.
    pub session: crate::db::batcher::Batcher<crate::user::sessions::FindSessionBatch>,
}

impl Batches {
    /// Starts the batchers on `url` (PostgreSQL), beside the server's `pool`, counting in
    /// `metrics`.
    pub fn start(
        pool: &crate::db::Pool,
        url: &crate::db::DbUrl,
        timeout: std::time::Duration,
        metrics: &crate::metrics::BatchMetrics,
    ) -> Result<Batches, String> {
        use crate::db::batcher::Batcher;
        Ok(Batches {
            refresh: Batcher::start(pool, url, timeout, metrics.clone())?,
            issue: Batcher::start(pool, url, timeout, metrics.clone())?,
            redeem: Batcher::start(pool, url, timeout, metrics.clone())?,
            revoke: Batcher::start(pool, url, timeout, metrics.clone())?,
            revoked: Batcher::start(pool, url, timeout, metrics.clone())?,
            find_refresh: Batcher::start(pool, url, timeout, metrics.clone())?,
            session: Batcher::start(pool, url, timeout, metrics.clone())?,
        })
    }
}

use std::sync::{Arc, RwLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use crate::db::AnyConnection;
use crate::error::AppError;
use crate::seal::{Aad, MasterKey};

/// Claims of an access token, RFC 9068 2.2.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AccessClaims {
    /// Issuer identifier (RFC 9068 2.2, RFC 8414 2).
    pub iss: String,
    /// Resource owner; the client itself for client_credentials (RFC 9068 2.2).
    pub sub: String,
    /// Audience: the resource server(s) the token is for.
    pub aud: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Unique token id: tokens issued within the same second still differ, and revocation
    /// can name them.
    pub jti: String,
    /// The client the token was issued to (RFC 9068 2.2, RFC 8693 4.3).
    pub client_id: String,
    /// Granted scopes, space-separated (RFC 9068 2.2.3); absent when none.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub scope: Option<String>,
}

impl AccessClaims {
    /// The claims of an access token issued `now` for `ttl` seconds (RFC 9068 2.2): a fresh
    /// `jti`, and the scopes sorted and space-separated (2.2.3), absent when there are none.
    pub fn new(
        issuer: &str,
        audience: &str,
        sub: String,
        client_id: String,
        mut scopes: Vec<&str>,
        now: i64,
        ttl: i64,
    ) -> AccessClaims {
        scopes.sort_unstable();
        AccessClaims {
            iss: issuer.to_string(),
            sub,
            aud: audience.to_string(),
            exp: now + ttl,
            iat: now,
            jti: crate::crypto::unique_id(),
            client_id,
            scope: (!scopes.is_empty()).then(|| scopes.join(" ")),
        }
    }
}

/// The prefix of the scopes that act on portcullis itself (the admin API).
pub const ADMIN_SCOPE_PREFIX: &str = "portcullis:";

/// Whether a scope acts on portcullis itself (`portcullis:admin`, `portcullis:read`).
pub fn is_admin_scope(scope: &str) -> bool {
    scope.starts_with(ADMIN_SCOPE_PREFIX)
}

/// Whether a person may grant a scope to an app through the authorization endpoint: never a
/// `portcullis:*` scope, which acts on portcullis itself and is only for a client's own
/// client_credentials tokens (issue 10 item 3). Applied to the request (an explicit one is
/// `invalid_scope`, RFC 6749 4.1.2.1), to the default scope (RFC 6749 3.3) and to refresh
/// tokens of such grants (RFC 6749 6), so that no token issued for a person carries one.
pub fn grantable_by_person(scope: &str) -> bool {
    !is_admin_scope(scope)
}

/// A stored scope (space-separated) without what [`grantable_by_person`] refuses: what a
/// refresh token of a person's grant yields, even one stored by an older version.
pub fn granted_to_person(stored: &str) -> String {
    stored
        .split_whitespace()
        .filter(|s| grantable_by_person(s))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The lifetime of an access token: the client's (or the server's) lifetime, capped at
/// `admin_cap` when any scope acts on portcullis itself, so that a leaked admin token is
/// short-lived (RFC 9700 2.2: privileges and lifetime of access tokens should be restricted).
pub fn lifetime<'s>(ttl: i64, mut scopes: impl Iterator<Item = &'s str>, admin_cap: i64) -> i64 {
    if scopes.any(is_admin_scope) {
        ttl.min(admin_cap)
    } else {
        ttl
    }
}

/// The media type of access-token JWTs (RFC 9068 2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// One signing key, ready to sign and to verify.
///
/// Signing does not go through `jsonwebtoken::encode`: that parses the PKCS#8 key and checks
/// the curve point on every call, which costs as much as the signature itself. The key pair is
/// parsed once here and the JWS compact serialization (RFC 7515 7.1: base64url(header) "."
/// base64url(claims) "." base64url(signature)) is assembled from a header encoded once per key.
/// Verification still uses jsonwebtoken.
pub struct SigningKey {
    /// JWS `kid`.
    pub kid: String,
    /// From when it signs.
    pub activates_at: i64,
    pair: aws_lc_rs::signature::EcdsaKeyPair,
    /// base64url of the JOSE header `{"typ":"at+jwt","alg":"ES256","kid":...}`.
    header_b64: String,
    decoding: DecodingKey,
    jwk: Jwk,
}

impl SigningKey {
    fn from_row(row: &store::KeyRow, master: &MasterKey) -> Result<SigningKey, AppError> {
        if row.alg != "ES256" {
            return Err(AppError::Internal(format!(
                "signing key {} has unsupported alg {}",
                row.kid, row.alg
            )));
        }
        // Sealed (src/seal.rs): the database alone does not hold the private key.
        let der = master
            .open(Aad::signing_key(&row.kid), &row.private_key)
            .map_err(|e| {
                AppError::Internal(format!(
                    "signing key {} does not open with the master key: {e}",
                    row.kid
                ))
            })?;
        let unusable = |e: &dyn std::fmt::Display| {
            AppError::Internal(format!("signing key {} is unusable: {e}", row.kid))
        };
        let pair = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &der,
        )
        .map_err(|e| unusable(&e))?;
        let encoding = EncodingKey::from_ec_der(&der);
        let mut jwk =
            Jwk::from_encoding_key(&encoding, Algorithm::ES256).map_err(|e| unusable(&e))?;
        jwk.common.key_id = Some(row.kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        jwk.common.key_algorithm = Some(KeyAlgorithm::ES256);
        let decoding = DecodingKey::from_jwk(&jwk).map_err(|e| unusable(&e))?;
        // RFC 9068 2.1: `typ` is `at+jwt`; `kid` names the key in the JWKS.
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some(ACCESS_TOKEN_TYP.to_string());
        header.kid = Some(row.kid.clone());
        let header_json = serde_json::to_vec(&header).map_err(|e| unusable(&e))?;
        Ok(SigningKey {
            kid: row.kid.clone(),
            activates_at: row.activates_at,
            pair,
            header_b64: URL_SAFE_NO_PAD.encode(header_json),
            decoding,
            jwk,
        })
    }

    /// Signs claims as an RFC 9068 access token: header `typ: at+jwt`, `alg: ES256`, `kid`.
    pub fn sign(&self, claims: &AccessClaims) -> Result<String, AppError> {
        let claims_json = serde_json::to_vec(claims)
            .map_err(|e| AppError::Internal(format!("signing failed: {e}")))?;
        let mut jws = String::with_capacity(self.header_b64.len() + claims_json.len() * 4 / 3 + 90);
        jws.push_str(&self.header_b64);
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(&claims_json, &mut jws);
        // ES256 (RFC 7518 3.4): the fixed-width R || S signature, not DER.
        let signature = self
            .pair
            .sign(&aws_lc_rs::rand::SystemRandom::new(), jws.as_bytes())
            .map_err(|_| AppError::Internal("signing failed".into()))?;
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut jws);
        Ok(jws)
    }
}

/// The active keys: the newest signs, all are published and accepted for verification.
pub struct KeySet {
    /// Newest first; never empty.
    keys: Vec<SigningKey>,
    /// The JWKS document, serialized once.
    jwks_json: String,
    /// Tokens this instance signed or verified lately, by SHA-256 of the whole token, with
    /// their claims: introspecting or revoking one of them again costs a hash instead of an
    /// ES256 verification (issue 13; a verification was 42% of an introspection). Bound to
    /// this key set: a rotation or retirement reloads the set and empties it. Whether a token
    /// is revoked is never cached: that is asked of the database every time.
    verified: quick_cache::sync::Cache<[u8; 32], Arc<AccessClaims>>,
}

/// How many verified tokens a key set remembers (about 400 bytes each).
const VERIFIED_TOKENS: usize = 16_384;

fn token_digest(token: &str) -> [u8; 32] {
    crate::crypto::sha256(token.as_bytes())
}

impl KeySet {
    /// The key that signs new tokens: the newest one that is active (a rotated-in key is
    /// published before it signs; see [`rotate`]).
    pub fn current(&self, now: i64) -> &SigningKey {
        self.keys
            .iter()
            .find(|k| k.activates_at <= now)
            .unwrap_or(&self.keys[self.keys.len() - 1])
    }

    /// The JWKS document (RFC 7517 5).
    pub fn jwks_json(&self) -> &str {
        &self.jwks_json
    }

    /// Signs `claims` with the current key (see [`Self::current`]) and remembers the token as
    /// verified.
    pub fn sign(
        &self,
        claims: AccessClaims,
        now: i64,
    ) -> Result<(String, Arc<AccessClaims>), AppError> {
        let token = self.current(now).sign(&claims)?;
        let claims = Arc::new(claims);
        self.verified.insert(token_digest(&token), claims.clone());
        Ok((token, claims))
    }

    /// Verifies an access token issued by this server: signature by one of the active keys,
    /// `typ`, expiry (by the server's clock, `now`), issuer and audience. A token this key set
    /// signed or verified before is recognised by its hash.
    pub fn verify(
        &self,
        token: &str,
        issuer: &str,
        audience: &str,
        now: i64,
    ) -> Option<Arc<AccessClaims>> {
        let digest = token_digest(token);
        let claims = match self.verified.get(&digest) {
            Some(claims) => claims,
            None => {
                let claims = Arc::new(self.verify_signature(token, issuer, audience)?);
                self.verified.insert(digest, claims.clone());
                claims
            }
        };
        // RFC 7519 4.1.4: not accepted on or after its exp (RFC 9068 4).
        (now < claims.exp && claims.iss == issuer && claims.aud == audience).then_some(claims)
    }

    /// The signature, `typ`, issuer and audience of a token (not its expiry).
    fn verify_signature(&self, token: &str, issuer: &str, audience: &str) -> Option<AccessClaims> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        if header.typ.as_deref() != Some(ACCESS_TOKEN_TYP) || header.alg != Algorithm::ES256 {
            return None;
        }
        let kid = header.kid?;
        let key = self.keys.iter().find(|k| k.kid == kid)?;
        let mut validation = jsonwebtoken::Validation::new(Algorithm::ES256);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        // The expiry is checked below, by the server's clock rather than jsonwebtoken's.
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = 0;
        jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &validation)
            .ok()
            .map(|d| d.claims)
    }
}

/// The shared, reloadable key set.
pub struct Keys {
    inner: RwLock<Arc<KeySet>>,
    /// The newest `signing_keys` generation this instance has loaded.
    seen: std::sync::atomic::AtomicI64,
    /// Opens the sealed private keys.
    master: MasterKey,
}

impl Keys {
    /// Loads the active keys, opening them with `master`.
    pub fn load(conn: &mut AnyConnection, master: MasterKey) -> Result<Keys, AppError> {
        let seen = store::key_generation(conn)?;
        Ok(Keys {
            inner: RwLock::new(Arc::new(load_set(conn, &master)?)),
            seen: std::sync::atomic::AtomicI64::new(seen),
            master,
        })
    }

    /// The current key set (cheap: one reference-count increment).
    pub fn get(&self) -> Arc<KeySet> {
        match self.inner.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reloads the keys when their generation moved (a rotation or retirement anywhere).
    /// True when it reloaded.
    pub fn follow(&self, conn: &mut AnyConnection) -> Result<bool, AppError> {
        use std::sync::atomic::Ordering;
        let generation = store::key_generation(conn)?;
        if generation <= self.seen.load(Ordering::Acquire) {
            return Ok(false);
        }
        self.reload(conn)?;
        self.seen.fetch_max(generation, Ordering::AcqRel);
        Ok(true)
    }

    /// The newest key generation loaded (tests wait for it).
    pub fn seen(&self) -> i64 {
        self.seen.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Re-reads the keys from the database (after a rotation by another instance).
    pub fn reload(&self, conn: &mut AnyConnection) -> Result<(), AppError> {
        let set = Arc::new(load_set(conn, &self.master)?);
        match self.inner.write() {
            Ok(mut guard) => *guard = set,
            Err(poisoned) => *poisoned.into_inner() = set,
        }
        Ok(())
    }
}

fn load_set(conn: &mut AnyConnection, master: &MasterKey) -> Result<KeySet, AppError> {
    let rows = store::active(conn)?;
    let keys = rows
        .iter()
        .map(|row| SigningKey::from_row(row, master))
        .collect::<Result<Vec<_>, _>>()?;
    if keys.is_empty() {
        return Err(AppError::Internal(
            "no active signing key; run `portcullis migrate`".into(),
        ));
    }
    let set = JwkSet {
        keys: keys.iter().map(|k| k.jwk.clone()).collect(),
    };
    let jwks_json = serde_json::to_string(&set).map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(KeySet {
        keys,
        jwks_json,
        verified: quick_cache::sync::Cache::new(VERIFIED_TOKENS),
    })
}

/// Creates an ES256 key when there is no active one (first start). Call it while holding the
/// migration lock so that instances starting together create one key, not two.
pub fn ensure_signing_key(
    conn: &mut AnyConnection,
    now: i64,
    master: &MasterKey,
) -> Result<bool, AppError> {
    if !store::active(conn)?.is_empty() {
        return Ok(false);
    }
    new_key(conn, now, now, master)?;
    Ok(true)
}

/// Rotates the signing key: a new ES256 key is published at once (every instance reloads
/// its keys within `PORTCULLIS_CLIENT_CACHE_MS`) and signs from `now + activate_in` on, so
/// that instances and resource servers caching the JWKS know it before any token uses it.
/// The old key stays published until every token it signed has expired ([`retire_superseded`]).
/// Returns the new key's `kid`.
pub fn rotate(
    conn: &mut AnyConnection,
    now: i64,
    activate_in: i64,
    master: &MasterKey,
) -> Result<String, AppError> {
    new_key(conn, now, now + activate_in.max(0), master)
}

/// Retires keys that no token still valid can have been signed with: a key stops signing when
/// a newer key activates, and is retired `longest_ttl` seconds later. Returns the
/// retired `kid`s.
pub fn retire_superseded(
    conn: &mut AnyConnection,
    now: i64,
    longest_ttl: i64,
) -> Result<Vec<String>, AppError> {
    let rows = store::active(conn)?; // newest first
    let mut retire = Vec::new();
    // A key stops signing when a newer key becomes active: the earliest activation among the
    // active keys newer than it.
    let mut stopped_at: Option<i64> = None;
    for key in &rows {
        if stopped_at.is_some_and(|stop| stop + longest_ttl <= now) {
            retire.push((key.id, key.kid.clone()));
        }
        if key.activates_at <= now {
            stopped_at = Some(stopped_at.map_or(key.activates_at, |s| s.min(key.activates_at)));
        }
    }
    if !retire.is_empty() {
        let ids: Vec<i64> = retire.iter().map(|r| r.0).collect();
        store::retire(conn, &ids, now)?;
    }
    Ok(retire.into_iter().map(|r| r.1).collect())
}

fn new_key(
    conn: &mut AnyConnection,
    now: i64,
    activates_at: i64,
    master: &MasterKey,
) -> Result<String, AppError> {
    let pair = aws_lc_rs::signature::EcdsaKeyPair::generate(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
    )
    .map_err(|_| AppError::Internal("could not generate an ES256 key".into()))?;
    let pkcs8 = pair
        .to_pkcs8v1()
        .map_err(|_| AppError::Internal("could not encode the ES256 key".into()))?;
    let kid = crate::crypto::generate_id()?;
    store::insert(
        conn,
        &kid,
        "ES256",
        &master.seal(Aad::signing_key(&kid), pkcs8.as_ref())?,
        now,
        activates_at,
    )?;
    Ok(kid)
}
