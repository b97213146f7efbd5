//! Sign-in sessions, kept server-side so that every instance sees them and any of them can
//! end them (issue 10, item 4).
//!
//! The browser holds a random 256-bit id; the `sessions` table holds only its SHA-256, so a
//! copy of the database signs nobody in. A session ends at the first of: sign-out, its
//! absolute lifetime ([`SessionPolicy::absolute`], 12 h), the idle timeout of its user's role,
//! the user being deleted, their password reset or role changed, or "sign out everywhere".
//! Whether a session is still live is decided in one place: [`SessionPolicy::is_live`].

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use diesel::prelude::*;

use super::Role;
use crate::db::AnyConnection;
use crate::db::schema::{sessions, users};
use crate::error::AppError;
use crate::ids::UserId;

/// `last_seen_at` is written at most this often per session (seconds; a tenth of the idle
/// timeout when that is shorter): an active person costs one write a minute, not one per page.
pub const TOUCH_EVERY: i64 = 60;

/// How long sessions last.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    /// Seconds from sign-in after which a session ends whatever its use.
    pub absolute: i64,
    /// Idle timeout of admin-area accounts (`admin`, `readonly`), seconds.
    pub idle_admin: i64,
    /// Idle timeout of people who only authorize apps (`user`), seconds.
    pub idle_user: i64,
}

impl Default for SessionPolicy {
    fn default() -> SessionPolicy {
        SessionPolicy {
            absolute: 12 * 3600,
            idle_admin: 1800,
            idle_user: 7200,
        }
    }
}

impl SessionPolicy {
    /// The idle timeout of a role.
    pub fn idle(&self, role: Role) -> i64 {
        match role {
            Role::Admin | Role::Readonly => self.idle_admin,
            Role::User => self.idle_user,
        }
    }

    /// The rule: a session of a user with `role`, signed in at `created_at` and last used at
    /// `last_seen_at`, is live at `now` when neither its absolute lifetime nor its role's idle
    /// timeout has passed.
    pub fn is_live(&self, role: Role, created_at: i64, last_seen_at: i64, now: i64) -> bool {
        now < created_at.saturating_add(self.absolute)
            && now < last_seen_at.saturating_add(self.idle(role))
    }
}

/// A new session id for the cookie (256 bits from the OS RNG, base64url) and its stored form.
pub fn new_id() -> Result<(String, String), AppError> {
    let id = URL_SAFE_NO_PAD.encode(crate::crypto::os_random_bytes::<32>()?);
    let hash = hash_id(&id);
    Ok((id, hash))
}

/// The stored form of a session id.
pub fn hash_id(id: &str) -> String {
    URL_SAFE_NO_PAD.encode(crate::crypto::sha256(id.as_bytes()))
}

/// A stored session with its user's role.
#[derive(Debug)]
pub struct StoredSession {
    /// The signed-in user.
    pub user_id: UserId,
    /// The user's role now.
    pub role: Role,
    /// The session's other values (serialized by the HTTP layer).
    pub state: String,
    /// Sign-in time.
    pub created_at: i64,
    /// Last use, to within [`TOUCH_EVERY`].
    pub last_seen_at: i64,
}

/// Stores a new session for `user_id`.
pub fn insert(
    conn: &mut AnyConnection,
    id_hash: &str,
    user_id: UserId,
    state: &str,
    policy: &SessionPolicy,
    now: i64,
) -> Result<(), AppError> {
    diesel::insert_into(sessions::table)
        .values((
            sessions::id_hash.eq(id_hash),
            sessions::user_id.eq(user_id),
            sessions::state.eq(state),
            sessions::created_at.eq(now),
            sessions::last_seen_at.eq(now),
            sessions::expires_at.eq(now.saturating_add(policy.absolute)),
        ))
        .execute(conn)?;
    Ok(())
}

/// The session with this id hash, if its user still exists.
pub fn find(conn: &mut AnyConnection, id_hash: &str) -> Result<Option<StoredSession>, AppError> {
    let row = sessions::table
        .inner_join(users::table)
        .filter(sessions::id_hash.eq(id_hash))
        .select((
            sessions::user_id,
            users::role,
            sessions::state,
            sessions::created_at,
            sessions::last_seen_at,
        ))
        .get_result::<SessionColumns>(conn)
        .optional()?;
    Ok(row.and_then(from_columns))
}

/// What [`find`] reads of a session: user, role, state, created, last seen.
type SessionColumns = (UserId, String, String, i64, i64);

/// The session [`find`] read, None when the role is unknown to this version.
fn from_columns(
    (user_id, role, state, created_at, last_seen_at): SessionColumns,
) -> Option<StoredSession> {
    Some(StoredSession {
        user_id,
        role: Role::parse(&role)?,
        state,
        created_at,
        last_seen_at,
    })
}

/// What a found session needs before it is used: the rule of [`load_live`].
#[derive(Debug, PartialEq, Eq)]
pub enum Upkeep {
    /// Nothing: use it.
    None,
    /// Record its use ([`TOUCH_EVERY`]).
    Touch,
    /// It is over ([`SessionPolicy::is_live`]): delete it.
    End,
}

/// See [`Upkeep`].
pub fn upkeep(found: &StoredSession, policy: &SessionPolicy, now: i64) -> Upkeep {
    if !policy.is_live(found.role, found.created_at, found.last_seen_at, now) {
        Upkeep::End
    } else if now - found.last_seen_at >= TOUCH_EVERY.min(policy.idle(found.role) / 10) {
        Upkeep::Touch
    } else {
        Upkeep::None
    }
}

/// Many sessions by id hash at once (PostgreSQL, [`FindSessionBatch`]): the columns of
/// [`find`], led by the ordinal of the hash they were found by.
struct FindSessionsPg;
impl crate::db::prepared::Statement for FindSessionsPg {
    const SQL: &'static str = "SELECT i.\"ord\", s.\"user_id\", u.\"role\", s.\"state\", \
        s.\"created_at\", s.\"last_seen_at\" FROM unnest(?::text[]) WITH ORDINALITY AS i(\"hash\", \"ord\") \
        JOIN \"sessions\" AS s ON s.\"id_hash\" = i.\"hash\" \
        JOIN \"users\" AS u ON u.\"id\" = s.\"user_id\"";
    type Row = (
        diesel::sql_types::BigInt,
        (
            diesel::sql_types::BigInt,
            diesel::sql_types::Text,
            diesel::sql_types::Text,
            diesel::sql_types::BigInt,
            diesel::sql_types::BigInt,
        ),
    );
}

/// [`find`] for many sessions in one statement (PostgreSQL, [`crate::db::batcher`]; issue 13:
/// every page of a signed-in person, the authorization endpoint's above all, loads their
/// session first): `Some` for each id hash that is a session of an existing user.
pub struct FindSessionBatch;
impl crate::db::batcher::Batched for FindSessionBatch {
    type Item = String;
    type Out = StoredSession;
    const NAME: &'static str = "pg-session";

    fn run(
        conn: &mut AnyConnection,
        hashes: &[String],
    ) -> Result<Vec<Option<StoredSession>>, AppError> {
        use crate::db::batcher::{by_ordinal, column};
        use crate::db::prepared::{Bind, prepared};
        let pg = crate::db::batcher::postgres(conn)?;
        let rows: Vec<(i64, SessionColumns)> =
            prepared::<FindSessionsPg>(&[Bind::Texts(&column(hashes, String::as_str))]).load(pg)?;
        Ok(by_ordinal(
            hashes.len(),
            rows.into_iter()
                .filter_map(|(ord, columns)| Some((ord, from_columns(columns)?))),
        ))
    }
}

/// Loads a live session, ending it when it is no longer live and recording its use (at most
/// once per [`TOUCH_EVERY`]).
pub fn load_live(
    conn: &mut AnyConnection,
    id_hash: &str,
    policy: &SessionPolicy,
    now: i64,
) -> Result<Option<StoredSession>, AppError> {
    let Some(mut found) = find(conn, id_hash)? else {
        return Ok(None);
    };
    match upkeep(&found, policy, now) {
        Upkeep::End => {
            delete(conn, id_hash)?;
            return Ok(None);
        }
        Upkeep::Touch => {
            diesel::update(sessions::table.find(id_hash))
                .set(sessions::last_seen_at.eq(now))
                .execute(conn)?;
            found.last_seen_at = now;
        }
        Upkeep::None => {}
    }
    Ok(Some(found))
}

/// Replaces a session's values (and records its use).
pub fn update_state(
    conn: &mut AnyConnection,
    id_hash: &str,
    state: &str,
    now: i64,
) -> Result<(), AppError> {
    diesel::update(sessions::table.find(id_hash))
        .set((sessions::state.eq(state), sessions::last_seen_at.eq(now)))
        .execute(conn)?;
    Ok(())
}

/// Ends one session.
pub fn delete(conn: &mut AnyConnection, id_hash: &str) -> Result<(), AppError> {
    diesel::delete(sessions::table.find(id_hash)).execute(conn)?;
    Ok(())
}

/// Ends every session of a user; returns how many there were.
pub fn delete_for_user(conn: &mut AnyConnection, user_id: UserId) -> Result<usize, AppError> {
    Ok(diesel::delete(sessions::table.filter(sessions::user_id.eq(user_id))).execute(conn)?)
}

/// Live sessions per user id (for the Users page).
pub fn count_by_user(
    conn: &mut AnyConnection,
    now: i64,
) -> Result<std::collections::HashMap<UserId, i64>, AppError> {
    let rows = sessions::table
        .filter(sessions::expires_at.gt(now))
        .group_by(sessions::user_id)
        .select((sessions::user_id, diesel::dsl::count_star()))
        .load::<(UserId, i64)>(conn)?;
    Ok(rows.into_iter().collect())
}

/// Deletes sessions past their absolute lifetime or idle for longer than any role allows.
pub fn purge_expired(
    conn: &mut AnyConnection,
    policy: &SessionPolicy,
    now: i64,
) -> Result<usize, AppError> {
    let longest_idle = policy.idle_admin.max(policy.idle_user);
    Ok(diesel::delete(
        sessions::table.filter(
            sessions::expires_at
                .le(now)
                .or(sessions::last_seen_at.lt(now.saturating_sub(longest_idle))),
        ),
    )
    .execute(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_timeout_depends_on_the_role_and_the_absolute_lifetime_bounds_all() {
        let p = SessionPolicy::default();
        assert!(p.is_live(Role::Admin, 0, 0, 1799));
        assert!(!p.is_live(Role::Admin, 0, 0, 1800));
        assert!(p.is_live(Role::User, 0, 0, 7199));
        assert!(!p.is_live(Role::User, 0, 0, 7200));
        assert!(!p.is_live(Role::User, 0, 12 * 3600 - 1, 12 * 3600));
    }

    #[test]
    fn a_found_session_is_used_as_it_is_touched_once_a_minute_or_ended() {
        let p = SessionPolicy::default();
        let found = |last_seen_at| StoredSession {
            user_id: UserId(1),
            role: Role::User,
            state: String::new(),
            created_at: 0,
            last_seen_at,
        };
        assert_eq!(upkeep(&found(100), &p, 159), Upkeep::None);
        assert_eq!(upkeep(&found(100), &p, 160), Upkeep::Touch);
        assert_eq!(upkeep(&found(100), &p, 100 + 7200), Upkeep::End);
        assert_eq!(upkeep(&found(12 * 3600 - 1), &p, 12 * 3600), Upkeep::End);
    }

    #[test]
    fn ids_are_unique_and_stored_hashed() {
        let (a, ha) = new_id().unwrap();
        let (b, _) = new_id().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_ne!(a, ha);
        assert_eq!(hash_id(&a), ha);
    }
}
