//! User queries.

use diesel::prelude::*;

use super::{Role, User};
use crate::db::AnyConnection;
use crate::db::schema::users;
use crate::error::AppError;
use crate::ids::UserId;

#[derive(Queryable, Selectable)]
#[diesel(table_name = users)]
struct UserRow {
    id: UserId,
    username: String,
    role: String,
    created_at: i64,
    last_login_at: Option<i64>,
}

impl UserRow {
    fn into_user(self) -> User {
        User {
            id: self.id,
            username: self.username,
            role: Role::parse(&self.role).unwrap_or(Role::User),
            created_at: self.created_at,
            last_login_at: self.last_login_at,
        }
    }
}

/// Inserts a user with an argon2id password hash. A taken username is a Conflict.
pub fn insert(
    conn: &mut AnyConnection,
    username: &str,
    password_hash: &str,
    role: Role,
    now: i64,
) -> Result<User, AppError> {
    let result = diesel::insert_into(users::table)
        .values((
            users::username.eq(username),
            users::password_hash.eq(password_hash),
            users::role.eq(role.as_str()),
            users::created_at.eq(now),
        ))
        .returning(users::id)
        .get_result::<i64>(conn)
        .map_err(AppError::from);
    match result {
        Ok(id) => Ok(users::table
            .find(id)
            .select(UserRow::as_select())
            .get_result(conn)?
            .into_user()),
        Err(e) if e.is_unique_violation() => Err(AppError::Conflict(format!(
            "user '{username}' already exists"
        ))),
        Err(e) => Err(e),
    }
}

/// All users, by username.
pub fn list(conn: &mut AnyConnection) -> Result<Vec<User>, AppError> {
    Ok(users::table
        .order(users::username)
        .select(UserRow::as_select())
        .load(conn)?
        .into_iter()
        .map(UserRow::into_user)
        .collect())
}

/// Deletes a user by name. False if there is no such user.
pub fn delete(conn: &mut AnyConnection, username: &str) -> Result<bool, AppError> {
    Ok(diesel::delete(users::table.filter(users::username.eq(username))).execute(conn)? > 0)
}

/// A user with the password hash, for logging in.
pub fn find_for_login(
    conn: &mut AnyConnection,
    username: &str,
) -> Result<Option<(User, String)>, AppError> {
    let found = users::table
        .filter(users::username.eq(username))
        .select((UserRow::as_select(), users::password_hash))
        .get_result::<(UserRow, String)>(conn)
        .optional()?;
    Ok(found.map(|(row, hash)| (row.into_user(), hash)))
}

/// A user by name.
pub fn find_by_name(conn: &mut AnyConnection, username: &str) -> Result<Option<User>, AppError> {
    Ok(users::table
        .filter(users::username.eq(username))
        .select(UserRow::as_select())
        .get_result(conn)
        .optional()?
        .map(UserRow::into_user))
}

/// A user by primary key (the session's user).
pub fn find(conn: &mut AnyConnection, id: UserId) -> Result<Option<User>, AppError> {
    Ok(users::table
        .find(id)
        .select(UserRow::as_select())
        .get_result(conn)
        .optional()?
        .map(UserRow::into_user))
}

/// Records a successful login.
pub fn record_login(conn: &mut AnyConnection, id: UserId, now: i64) -> Result<(), AppError> {
    diesel::update(users::table.find(id))
        .set(users::last_login_at.eq(now))
        .execute(conn)?;
    Ok(())
}

/// Changes a user's role. False if there is no such user.
pub fn set_role(conn: &mut AnyConnection, id: UserId, role: Role) -> Result<bool, AppError> {
    Ok(diesel::update(users::table.find(id))
        .set(users::role.eq(role.as_str()))
        .execute(conn)?
        > 0)
}

/// Replaces a user's password hash. False if there is no such user.
pub fn set_password_hash(
    conn: &mut AnyConnection,
    id: UserId,
    hash: &str,
) -> Result<bool, AppError> {
    Ok(diesel::update(users::table.find(id))
        .set(users::password_hash.eq(hash))
        .execute(conn)?
        > 0)
}

/// Deletes a user by id. False if there was no such user.
pub fn delete_by_id(conn: &mut AnyConnection, id: UserId) -> Result<bool, AppError> {
    Ok(diesel::delete(users::table.find(id)).execute(conn)? > 0)
}

/// How many users have the admin role.
pub fn count_admins(conn: &mut AnyConnection) -> Result<i64, AppError> {
    Ok(users::table
        .filter(users::role.eq(Role::Admin.as_str()))
        .count()
        .get_result(conn)?)
}

/// Locks the admin rows for the rest of the transaction (a no-op update): two concurrent
/// demotions or deletions of admins then run one after the other, so the "at least one admin"
/// check of the second sees what the first did.
pub fn lock_admins(conn: &mut AnyConnection) -> Result<(), AppError> {
    diesel::update(users::table.filter(users::role.eq(Role::Admin.as_str())))
        .set(users::role.eq(Role::Admin.as_str()))
        .execute(conn)?;
    Ok(())
}
