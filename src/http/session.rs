//! Browser sessions. The cookie (HttpOnly, SameSite=Lax, Secure when the issuer is https,
//! encrypted and authenticated by actix-session) carries either a server-side session id or,
//! before sign-in, the few values an anonymous visitor needs (the sign-in form's CSRF token).
//!
//! Signed-in sessions are rows (see [`crate::user::sessions`]): the cookie holds a random
//! 256-bit id whose SHA-256 is the row's key, so signing out, a password reset, a role change,
//! deleting the user or "sign out everywhere" ends the session on every instance, and a cookie
//! saved before any of these signs nobody in. Anonymous visitors cost no row (an unauthenticated
//! flood of the sign-in page writes nothing to the database). The id is renewed at sign-in, so
//! a session fixed before sign-in is worthless afterwards.

use std::collections::HashMap;

use actix_session::config::{CookieContentSecurity, PersistentSession};
use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_session::{Session, SessionMiddleware};
use actix_web::cookie::time::Duration as CookieDuration;
use actix_web::cookie::{Key, SameSite};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

use crate::clock::Clock;
use crate::db::Pool;
use crate::db::batcher::Batcher;
use crate::ids::UserId;
use crate::user::sessions::{self as stored, SessionPolicy};

/// Name of the session cookie.
pub const COOKIE_NAME: &str = "portcullis_session";
const USER_KEY: &str = "uid";
const CSRF_KEY: &str = "csrf";
const PENDING_KEY: &str = "consent";
const NOTICE_KEY: &str = "notice";
const SIGNED_IN_FOR_KEY: &str = "signed_in_for";
/// How long a sign-in counts as "just now" for the request it was made for (`prompt=login`).
const SIGNED_IN_FOR_SECONDS: i64 = 600;

/// Prefix of a cookie value that names a server-side session.
const SERVER_PREFIX: &str = "s.";
/// Prefix of a cookie value that carries an anonymous visitor's values itself.
const ANONYMOUS_PREFIX: &str = "a.";

/// The session middleware. `key` (derived from the master key, so the same on every
/// instance) encrypts the cookie; sessions of signed-in people live in the database.
pub fn middleware(
    key: Key,
    secure: bool,
    pool: Pool,
    batch: Option<Batcher<stored::FindSessionBatch>>,
    policy: SessionPolicy,
    clock: Clock,
) -> SessionMiddleware<DbSessionStore> {
    SessionMiddleware::builder(
        DbSessionStore {
            pool,
            batch,
            policy,
            clock,
        },
        key,
    )
    .cookie_name(COOKIE_NAME.to_string())
    .cookie_http_only(true)
    .cookie_same_site(SameSite::Lax)
    .cookie_secure(secure)
    .cookie_content_security(CookieContentSecurity::Private)
    .session_lifecycle(
        PersistentSession::default().session_ttl(CookieDuration::seconds(policy.absolute)),
    )
    .build()
}

type State = HashMap<String, String>;

/// actix-session's storage: signed-in sessions in the `sessions` table, anonymous values in
/// the (encrypted) cookie itself.
#[derive(Clone)]
pub struct DbSessionStore {
    pool: Pool,
    /// PostgreSQL: sessions looked up with other requests' in one statement, awaited without a
    /// blocking thread (issue 13); a session that needs a write (its use recorded, or its end)
    /// is then loaded again the usual way.
    batch: Option<Batcher<stored::FindSessionBatch>>,
    policy: SessionPolicy,
    clock: Clock,
}

fn signed_in_user(state: &State) -> Option<UserId> {
    state
        .get(USER_KEY)
        .and_then(|v| serde_json::from_str(v).ok())
}

fn encode_state(state: &State) -> Result<String, anyhow::Error> {
    Ok(serde_json::to_string(state)?)
}

fn anonymous_key(state: &State) -> Result<SessionKey, anyhow::Error> {
    let value = format!(
        "{ANONYMOUS_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(encode_state(state)?)
    );
    Ok(SessionKey::try_from(value)?)
}

/// Decodes the value of an anonymous session cookie (what follows `a.`): base64url of a JSON
/// map. The cookie layer has authenticated these bytes; anything unreadable is no session, and
/// a map naming a signed-in user is refused (signed-in state lives only in the database).
/// Pure, for the fuzz target `session_cookie`.
pub fn decode_anonymous(encoded: &str) -> Option<HashMap<String, String>> {
    URL_SAFE_NO_PAD
        .decode(encoded)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<State>(&bytes).ok())
        .filter(|s| signed_in_user(s).is_none())
}

impl DbSessionStore {
    /// [`stored::load_live`] of the session whose cookie names `id`; on PostgreSQL through the
    /// batch when the session needs no write (the id is hashed again only for one that does,
    /// once a minute per session).
    async fn load_live(
        &self,
        id: &str,
        policy: SessionPolicy,
        now: i64,
    ) -> Result<Option<stored::StoredSession>, crate::error::AppError> {
        if let Some(batch) = &self.batch {
            match batch.run_async(stored::hash_id(id)).await? {
                None => return Ok(None),
                Some(found) if stored::upkeep(&found, &policy, now) == stored::Upkeep::None => {
                    return Ok(Some(found));
                }
                Some(_) => {}
            }
        }
        let hash = stored::hash_id(id);
        crate::db::run(&self.pool, move |conn| {
            stored::load_live(conn, &hash, &policy, now)
        })
        .await
    }

    /// Stores a new signed-in session and returns the cookie value naming it.
    async fn insert(&self, user_id: UserId, state: &State) -> Result<SessionKey, anyhow::Error> {
        let (id, hash) = stored::new_id()?;
        let encoded = encode_state(state)?;
        let policy = self.policy;
        let now = self.clock.now();
        crate::db::run(&self.pool, move |conn| {
            stored::insert(conn, &hash, user_id, &encoded, &policy, now)
        })
        .await?;
        Ok(SessionKey::try_from(format!("{SERVER_PREFIX}{id}"))?)
    }

    async fn remove(&self, id: &str) -> Result<(), anyhow::Error> {
        let hash = stored::hash_id(id);
        crate::db::run(&self.pool, move |conn| stored::delete(conn, &hash)).await?;
        Ok(())
    }
}

/// Marks a session that could not be loaded because the database is unavailable
/// ([`crate::error::AppError::is_unavailable`]); `http::render::unavailable_sessions` finds it.
pub(crate) const UNAVAILABLE_MARK: &str = "session store: database unavailable";

impl SessionStore for DbSessionStore {
    async fn load(&self, session_key: &SessionKey) -> Result<Option<State>, LoadError> {
        let value = session_key.as_ref();
        if let Some(encoded) = value.strip_prefix(ANONYMOUS_PREFIX) {
            return Ok(decode_anonymous(encoded));
        }
        let Some(id) = value.strip_prefix(SERVER_PREFIX) else {
            return Ok(None);
        };
        let policy = self.policy;
        let now = self.clock.now();
        let found = self.load_live(id, policy, now).await.map_err(|e| {
            if e.is_unavailable() {
                LoadError::Other(anyhow::anyhow!("{UNAVAILABLE_MARK}: {e}"))
            } else {
                LoadError::Other(anyhow::anyhow!("loading a session: {e}"))
            }
        })?;
        let Some(found) = found else {
            return Ok(None);
        };
        let state: State =
            serde_json::from_str(&found.state).map_err(|e| LoadError::Deserialization(e.into()))?;
        // The row is the authority on whose session this is.
        Ok((signed_in_user(&state) == Some(found.user_id)).then_some(state))
    }

    async fn save(
        &self,
        session_state: State,
        _ttl: &CookieDuration,
    ) -> Result<SessionKey, SaveError> {
        match signed_in_user(&session_state) {
            Some(user_id) => self
                .insert(user_id, &session_state)
                .await
                .map_err(SaveError::Other),
            None => anonymous_key(&session_state).map_err(SaveError::Serialization),
        }
    }

    async fn update(
        &self,
        session_key: SessionKey,
        session_state: State,
        ttl: &CookieDuration,
    ) -> Result<SessionKey, UpdateError> {
        let Some(id) = session_key.as_ref().strip_prefix(SERVER_PREFIX) else {
            // An anonymous visitor's values changed: a new cookie value (or a new row when the
            // values now name a user, which only sign-in does, through renew()).
            return self
                .save(session_state, ttl)
                .await
                .map_err(|e| UpdateError::Other(anyhow::anyhow!("{e}")));
        };
        let hash = stored::hash_id(id);
        let encoded = encode_state(&session_state).map_err(UpdateError::Serialization)?;
        let now = self.clock.now();
        crate::db::run(&self.pool, move |conn| {
            stored::update_state(conn, &hash, &encoded, now)
        })
        .await
        .map_err(|e| UpdateError::Other(anyhow::anyhow!("saving a session: {e}")))?;
        Ok(session_key)
    }

    async fn update_ttl(
        &self,
        _session_key: &SessionKey,
        _ttl: &CookieDuration,
    ) -> Result<(), anyhow::Error> {
        // Use is recorded when a session is loaded (user::sessions::load_live).
        Ok(())
    }

    async fn delete(&self, session_key: &SessionKey) -> Result<(), anyhow::Error> {
        match session_key.as_ref().strip_prefix(SERVER_PREFIX) {
            Some(id) => self.remove(id).await,
            None => Ok(()),
        }
    }
}

/// The logged-in user's id, if any.
pub fn user_id(session: &Session) -> Option<UserId> {
    session.get::<UserId>(USER_KEY).ok().flatten()
}

/// The session's CSRF token, created on first use.
pub fn csrf_token(session: &Session) -> String {
    if let Ok(Some(t)) = session.get::<String>(CSRF_KEY) {
        return t;
    }
    let token = crate::crypto::unique_id();
    let _ = session.insert(CSRF_KEY, &token);
    token
}

/// True when `submitted` is the session's CSRF token (constant-time comparison).
pub fn csrf_ok(session: &Session, submitted: Option<&str>) -> bool {
    match (session.get::<String>(CSRF_KEY).ok().flatten(), submitted) {
        (Some(expected), Some(given)) => expected.as_bytes().ct_eq(given.as_bytes()).into(),
        _ => false,
    }
}

/// Logs a user in: a new session id (a new row), the user, a fresh CSRF token.
pub fn log_in(session: &Session, user_id: UserId) {
    session.renew();
    session.remove(PENDING_KEY);
    let _ = session.insert(USER_KEY, user_id);
    let _ = session.insert(CSRF_KEY, crate::crypto::unique_id());
}

/// Logs out: the row is deleted and the cookie cleared.
pub fn log_out(session: &Session) {
    session.purge();
}

/// Remembers which authorization request the consent page was shown for.
pub fn set_pending_consent(session: &Session, binding: &str) {
    let _ = session.insert(PENDING_KEY, binding);
}

/// Takes the pending consent binding (one use).
pub fn take_pending_consent(session: &Session) -> Option<String> {
    take(session, PENDING_KEY)
}

/// Removes `key` and returns its value, if it is there. A session from which nothing was
/// removed stays unchanged, so that it is not written back: actix-session counts any removal
/// as a change, and a signed-in person's every `GET /oauth/authorize` wrote its session row
/// (issue 13: one statement of the five of an authorization-code round on PostgreSQL).
fn take<T: serde::de::DeserializeOwned>(session: &Session, key: &str) -> Option<T> {
    if !session.contains_key(key) {
        return None;
    }
    session.remove_as::<T>(key).and_then(Result::ok)
}

/// A one-line confirmation for the next page ("Secret deleted.").
pub fn set_notice(session: &Session, notice: &str) {
    let _ = session.insert(NOTICE_KEY, notice);
}

/// Takes the pending notice (shown once).
pub fn take_notice(session: &Session) -> Option<String> {
    take(session, NOTICE_KEY)
}

/// Records that the person has just entered their password to continue to `next`: the
/// authorization request at that exact path counts as re-authenticated (`prompt=login`,
/// OpenID Connect Core 3.1.2.1), once, for a few minutes.
pub fn mark_signed_in_for(session: &Session, next: &str, now: i64) {
    let _ = session.insert(
        SIGNED_IN_FOR_KEY,
        (crate::crypto::sha256_tagged(next.as_bytes()), now),
    );
}

/// True when the person signed in for exactly `path` within the last few minutes. The marker
/// is used up either way: a reload of the request asks for the password again.
pub fn take_signed_in_for(session: &Session, path: &str, now: i64) -> bool {
    match take::<(String, i64)>(session, SIGNED_IN_FOR_KEY) {
        Some((hash, at)) => {
            now.saturating_sub(at) <= SIGNED_IN_FOR_SECONDS
                && bool::from(
                    hash.as_bytes()
                        .ct_eq(crate::crypto::sha256_tagged(path.as_bytes()).as_bytes()),
                )
        }
        None => false,
    }
}
