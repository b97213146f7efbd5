//! Users: admins (`admin`, `readonly`) and people who authorize apps (`user`).

pub mod sessions;
pub mod store;
pub mod throttle;

use crate::ids::UserId;
use serde::Serialize;

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// May change everything.
    Admin,
    /// May see the admin area but never change anything or see secret values.
    Readonly,
    /// May only log in to authorize apps.
    User,
}

impl Role {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Readonly => "readonly",
            Role::User => "user",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "readonly" => Some(Role::Readonly),
            "user" => Some(Role::User),
            _ => None,
        }
    }
}

/// A user as shown to admins (no password hash).
#[derive(Debug, Clone, Serialize)]
pub struct User {
    /// Primary key.
    pub id: UserId,
    /// Unique login name.
    pub username: String,
    /// Role.
    pub role: Role,
    /// Seconds since the epoch.
    pub created_at: i64,
    /// Seconds since the epoch.
    pub last_login_at: Option<i64>,
}

/// Minimum password length.
pub const MIN_PASSWORD_LEN: usize = 12;

/// Checks a username: 1 to 64 characters of letters, digits, `.`, `_`, `-`, `@`.
pub fn validate_username(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err("username must be 1 to 64 characters".into());
    }
    crate::text::check_name("username", name).map_err(|e| e.to_string())?;
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        return Err("username may contain only letters, digits, '.', '_', '-' and '@'".into());
    }
    Ok(name.to_string())
}

/// Checks a password: at least 12 characters, at most 1024.
pub fn validate_password(password: &str) -> Result<(), String> {
    let len = password.chars().count();
    if len < MIN_PASSWORD_LEN {
        return Err(format!(
            "password must be at least {MIN_PASSWORD_LEN} characters"
        ));
    }
    if len > 1024 {
        return Err("password must be at most 1024 characters".into());
    }
    Ok(())
}

/// What a sign-in needs from the database: the user and the password hash (None for an unknown
/// username). Read with a short query; the hash is verified afterwards, with no connection held.
pub fn load_login(
    conn: &mut crate::db::AnyConnection,
    username: &str,
) -> Result<Option<(User, String)>, crate::error::AppError> {
    store::find_for_login(conn, username.trim())
}

/// Checks a password, in the one place sign-ins are decided: on the bounded argon2 pool,
/// against the user's hash or, for an unknown username, a dummy hash (so that the answer's
/// timing does not tell which usernames exist). `Err(Busy)` when the pool's queue is full.
pub async fn verify_password(
    pool: &crate::argon2_pool::Argon2Pool,
    found: Option<(User, String)>,
    password: &str,
) -> Result<Option<User>, crate::argon2_pool::Busy> {
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), hash),
        None => (None, crate::crypto::dummy_argon2_hash().to_string()),
    };
    let ok = pool
        .verify(
            crate::argon2_pool::Purpose::Login,
            password.as_bytes().to_vec(),
            hash,
        )
        .await?;
    Ok(user.filter(|_| ok))
}
