//! User queries.

use diesel::prelude::*;

use super::{Role, User};
use crate::db::AnyConnection;
use crate::db::schema::users;
use crate::error::AppError;

#[derive(Queryable, Selectable)]
#[diesel(table_name = users)]
struct UserRow {
    id: i64,
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
            .first(conn)?
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
        .first::<(UserRow, String)>(conn)
        .optional()?;
    Ok(found.map(|(row, hash)| (row.into_user(), hash)))
}

/// A user by primary key (the session's user).
pub fn find(conn: &mut AnyConnection, id: i64) -> Result<Option<User>, AppError> {
    Ok(users::table
        .find(id)
        .select(UserRow::as_select())
        .first(conn)
        .optional()?
        .map(UserRow::into_user))
}

/// Records a successful login.
pub fn record_login(conn: &mut AnyConnection, id: i64, now: i64) -> Result<(), AppError> {
    diesel::update(users::table.find(id))
        .set(users::last_login_at.eq(now))
        .execute(conn)?;
    Ok(())
}
