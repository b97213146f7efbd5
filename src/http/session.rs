//! Browser sessions: a private (encrypted and authenticated) cookie, HttpOnly and SameSite=Lax,
//! Secure when the issuer is https. The session holds the user id and a CSRF token; the id is
//! renewed at login so that a session fixed before login is worthless afterwards.

use actix_session::config::{CookieContentSecurity, PersistentSession};
use actix_session::storage::CookieSessionStore;
use actix_session::{Session, SessionMiddleware};
use actix_web::cookie::time::Duration as CookieDuration;
use actix_web::cookie::{Key, SameSite};
use subtle::ConstantTimeEq;

/// Name of the session cookie.
pub const COOKIE_NAME: &str = "portcullis_session";
const USER_KEY: &str = "uid";
const EPOCH_KEY: &str = "epoch";
const CSRF_KEY: &str = "csrf";
const PENDING_KEY: &str = "consent";
const NOTICE_KEY: &str = "notice";
const SIGNED_IN_FOR_KEY: &str = "signed_in_for";
/// How long a sign-in counts as "just now" for the request it was made for (`prompt=login`).
const SIGNED_IN_FOR_SECONDS: i64 = 600;

/// The session middleware. `key` is 64 bytes shared by every instance (kept in the database).
pub fn middleware(key: &[u8], secure: bool) -> SessionMiddleware<CookieSessionStore> {
    SessionMiddleware::builder(CookieSessionStore::default(), Key::from(key))
        .cookie_name(COOKIE_NAME.to_string())
        .cookie_http_only(true)
        .cookie_same_site(SameSite::Lax)
        .cookie_secure(secure)
        .cookie_content_security(CookieContentSecurity::Private)
        .session_lifecycle(PersistentSession::default().session_ttl(CookieDuration::hours(12)))
        .build()
}

/// The logged-in user's id, if any.
pub fn user_id(session: &Session) -> Option<i64> {
    session.get::<i64>(USER_KEY).ok().flatten()
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

/// Logs a user in: a new session id, the user, a fresh CSRF token.
pub fn log_in(session: &Session, user_id: i64, epoch: i64) {
    session.renew();
    session.remove(PENDING_KEY);
    let _ = session.insert(USER_KEY, user_id);
    let _ = session.insert(EPOCH_KEY, epoch);
    let _ = session.insert(CSRF_KEY, crate::crypto::unique_id());
}

/// Logs out: the whole session is dropped.
pub fn log_out(session: &Session) {
    session.purge();
}

/// Remembers which authorization request the consent page was shown for.
pub fn set_pending_consent(session: &Session, binding: &str) {
    let _ = session.insert(PENDING_KEY, binding);
}

/// Takes the pending consent binding (one use).
pub fn take_pending_consent(session: &Session) -> Option<String> {
    session
        .remove_as::<String>(PENDING_KEY)
        .and_then(Result::ok)
}

/// A one-line confirmation for the next page ("Secret deleted.").
pub fn set_notice(session: &Session, notice: &str) {
    let _ = session.insert(NOTICE_KEY, notice);
}

/// Takes the pending notice (shown once).
pub fn take_notice(session: &Session) -> Option<String> {
    session.remove_as::<String>(NOTICE_KEY).and_then(Result::ok)
}

/// The user's session epoch when this session signed in (0 for sessions from before epochs).
pub fn epoch(session: &Session) -> i64 {
    session.get::<i64>(EPOCH_KEY).ok().flatten().unwrap_or(0)
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
    match session
        .remove_as::<(String, i64)>(SIGNED_IN_FOR_KEY)
        .and_then(Result::ok)
    {
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
