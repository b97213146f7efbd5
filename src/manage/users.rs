use super::Actor;
use crate::db::AnyConnection;
use crate::error::AppError;
use crate::ids::UserId;

/// Creates an account (admin, readonly, or a user who can only authorize apps).
pub fn create_user(
    conn: &mut AnyConnection,
    actor: &Actor,
    username: &str,
    password: &str,
    role: crate::user::Role,
    now: i64,
) -> Result<crate::user::User, AppError> {
    let username = crate::user::validate_username(username).map_err(AppError::Invalid)?;
    crate::user::validate_password(password).map_err(AppError::Invalid)?;
    let hash = crate::crypto::argon2_hash(password.as_bytes())?;
    crate::db::transaction(conn, |conn| {
        let user = crate::user::store::insert(conn, &username, &hash, role, now)?;
        actor.record(conn, "user.create", None, &username, role.as_str(), now)?;
        Ok(user)
    })
}

fn user_by_id(conn: &mut AnyConnection, id: UserId) -> Result<crate::user::User, AppError> {
    crate::user::store::find(conn, id)?
        .ok_or_else(|| AppError::NotFound("There is no such user.".into()))
}

/// Refuses a change that would leave no admin (checked inside the changing transaction).
fn keep_an_admin(conn: &mut AnyConnection, user: &crate::user::User) -> Result<(), AppError> {
    if user.role == crate::user::Role::Admin && crate::user::store::count_admins(conn)? <= 1 {
        return Err(AppError::Invalid(format!(
            "{} is the last admin: make another user admin first",
            user.username
        )));
    }
    Ok(())
}

/// Changes a user's role; the last admin keeps theirs.
pub fn change_role(
    conn: &mut AnyConnection,
    actor: &Actor,
    user_id: UserId,
    role: crate::user::Role,
    now: i64,
) -> Result<crate::user::User, AppError> {
    crate::db::transaction(conn, |conn| role_in(conn, actor, user_id, role, now))
}

/// [`change_role`] inside the caller's transaction.
fn role_in(
    conn: &mut AnyConnection,
    actor: &Actor,
    user_id: UserId,
    role: crate::user::Role,
    now: i64,
) -> Result<crate::user::User, AppError> {
    crate::user::store::lock_admins(conn)?;
    let user = user_by_id(conn, user_id)?;
    if user.role != role {
        if role != crate::user::Role::Admin {
            keep_an_admin(conn, &user)?;
        }
        crate::user::store::set_role(conn, user.id, role)?;
        // A session signed in under the old role ends with it.
        crate::user::sessions::delete_for_user(conn, user.id)?;
        actor.record(
            conn,
            "user.role",
            None,
            &user.username,
            &format!("{} → {}", user.role.as_str(), role.as_str()),
            now,
        )?;
    }
    Ok(user)
}

/// A new password, checked and hashed (before any transaction: argon2 takes its time).
fn password_hash(password: &str) -> Result<String, AppError> {
    crate::user::validate_password(password).map_err(AppError::Invalid)?;
    crate::crypto::argon2_hash(password.as_bytes())
}

/// Changes a user's role and/or password at once: both or neither (the JSON API's update).
pub fn update_user(
    conn: &mut AnyConnection,
    actor: &Actor,
    user_id: UserId,
    role: Option<crate::user::Role>,
    password: Option<&str>,
    keep_app_access: bool,
    now: i64,
) -> Result<crate::user::User, AppError> {
    let hash = password.map(password_hash).transpose()?;
    crate::db::transaction(conn, |conn| {
        if let Some(role) = role {
            role_in(conn, actor, user_id, role, now)?;
        }
        if let Some(hash) = &hash {
            password_in(conn, actor, user_id, hash, keep_app_access, now)?;
        }
        user_by_id(conn, user_id)
    })
}

/// Sets a new password for a user and ends every session of theirs. Unless `keep_app_access`,
/// it also revokes every token the user's apps hold (a reset usually means the account was
/// taken over, and whoever took it may have authorized an app of their own).
pub fn reset_password(
    conn: &mut AnyConnection,
    actor: &Actor,
    user_id: UserId,
    password: &str,
    keep_app_access: bool,
    now: i64,
) -> Result<crate::user::User, AppError> {
    let hash = password_hash(password)?;
    crate::db::transaction(conn, |conn| {
        password_in(conn, actor, user_id, &hash, keep_app_access, now)
    })
}

/// [`reset_password`] with the hash, inside the caller's transaction.
fn password_in(
    conn: &mut AnyConnection,
    actor: &Actor,
    user_id: UserId,
    hash: &str,
    keep_app_access: bool,
    now: i64,
) -> Result<crate::user::User, AppError> {
    let user = user_by_id(conn, user_id)?;
    crate::user::store::set_password_hash(conn, user.id, hash)?;
    crate::user::sessions::delete_for_user(conn, user.id)?;
    let details = if keep_app_access {
        "reset; app access kept".to_string()
    } else {
        let n = crate::token::store::revoke_user_families(conn, user.id, now)?;
        format!("reset; app access revoked ({n} grants)")
    };
    actor.record(conn, "user.password", None, &user.username, &details, now)?;
    Ok(user)
}

/// Ends every session of a user ("sign out everywhere"); returns how many there were.
pub fn sign_out_everywhere(
    conn: &mut AnyConnection,
    actor: &Actor,
    user_id: UserId,
    now: i64,
) -> Result<(crate::user::User, usize), AppError> {
    crate::db::transaction(conn, |conn| {
        let user = user_by_id(conn, user_id)?;
        let ended = crate::user::sessions::delete_for_user(conn, user.id)?;
        actor.record(
            conn,
            "user.sign_out",
            None,
            &user.username,
            &format!("{ended} sessions ended"),
            now,
        )?;
        Ok((user, ended))
    })
}

/// Deletes a user; the last admin cannot be deleted.
pub fn delete_user(
    conn: &mut AnyConnection,
    actor: &Actor,
    user_id: UserId,
    now: i64,
) -> Result<crate::user::User, AppError> {
    crate::db::transaction(conn, |conn| {
        crate::user::store::lock_admins(conn)?;
        let user = user_by_id(conn, user_id)?;
        keep_an_admin(conn, &user)?;
        // Before the rows go: the access tokens' jtis are only known through the grants.
        crate::token::store::revoke_user_families(conn, user.id, now)?;
        crate::user::sessions::delete_for_user(conn, user.id)?;
        crate::user::store::delete_by_id(conn, user.id)?;
        actor.record(
            conn,
            "user.delete",
            None,
            &user.username,
            user.role.as_str(),
            now,
        )?;
        Ok(user)
    })
}
