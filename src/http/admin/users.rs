//! The Users page (admins only): list, add with a role, change role, reset password, delete.
//! The last admin can be neither demoted nor deleted.

use actix_web::http::StatusCode;
use actix_web::web;
use serde::Deserialize;

use super::{Confirm, Editor, Page};
use crate::error::AppError;
use crate::http::extract::Change;
use crate::ids::UserId;
use crate::manage;
use crate::user::Role;

fn roles() -> Vec<serde_json::Value> {
    [
        (Role::Admin, "Admin"),
        (Role::Readonly, "Read-only"),
        (Role::User, "User (authorizes apps)"),
    ]
    .iter()
    .map(|(r, label)| serde_json::json!({ "value": r.as_str(), "label": label }))
    .collect()
}

/// The Users page, with the error of a refused change and what was typed.
async fn users_page(admin: &Editor, error: Option<&str>, typed: (&str, &str)) -> Page {
    let now = admin.now();
    let (users, sessions) = admin
        .run(move |conn, _| {
            let users = crate::user::store::list(conn)?;
            let sessions = crate::user::sessions::count_by_user(conn, now)?;
            Ok((users, sessions))
        })
        .await?;
    let rows: Vec<serde_json::Value> = users
        .iter()
        .map(|u| {
            serde_json::json!({
                "id": u.id,
                "username": u.username,
                "role": u.role.as_str(),
                "is_me": u.id == admin.user.id,
                "sessions": sessions.get(&u.id).copied().unwrap_or(0),
                "created": crate::clock::date(u.created_at),
                "last_login": u.last_login_at.map_or_else(|| "Never".to_string(), crate::clock::human),
            })
        })
        .collect();
    let mut ctx = admin.context("users");
    ctx.insert("users", &rows);
    ctx.insert("roles", &roles());
    ctx.insert("form_username", typed.0);
    ctx.insert("form_role", typed.1);
    let status = match error {
        Some(e) => {
            ctx.insert("error", e);
            StatusCode::BAD_REQUEST
        }
        None => StatusCode::OK,
    };
    Ok(admin.render(status, "admin/users.html", &ctx))
}

/// `GET /admin/users`.
pub async fn list(admin: Editor) -> Page {
    users_page(&admin, None, ("", "user")).await
}

/// Runs a change to the users on a blocking thread; what happened, as the page after it
/// should say: a notice, or the error shown on the list (with what was typed).
async fn change<F>(admin: &Editor, typed: (&str, &str), f: F) -> Page
where
    F: FnOnce(&mut crate::db::AnyConnection, &Change) -> Result<String, AppError> + Send + 'static,
{
    match admin.run(f).await {
        Ok(notice) => Ok(admin.done(&notice, "/admin/users")),
        Err(AppError::Invalid(m) | AppError::Conflict(m)) => {
            users_page(admin, Some(&m), typed).await
        }
        Err(e) => Err(e.into()),
    }
}

/// Form of adding a user.
#[derive(Deserialize)]
pub struct NewUserForm {
    #[serde(deserialize_with = "crate::text::line")]
    username: String,
    password: String,
    #[serde(deserialize_with = "crate::text::line")]
    role: String,
}

/// The list again, saying to choose a role.
async fn choose_role(admin: &Editor, username: &str) -> Page {
    users_page(admin, Some("Choose a role."), (username, "user")).await
}

/// `POST /admin/users`.
pub async fn create(admin: Editor, form: web::Form<NewUserForm>) -> Page {
    let form = form.into_inner();
    let Some(role) = Role::parse(&form.role) else {
        return choose_role(&admin, &form.username).await;
    };
    let (username, typed_role) = (form.username.clone(), form.role.clone());
    change(&admin, (&username, &typed_role), move |conn, c| {
        manage::create_user(conn, &c.actor, &form.username, &form.password, role, c.now)
            .map(|u| format!("User {} added.", u.username))
    })
    .await
}

/// Form of changing a role.
#[derive(Deserialize)]
pub struct RoleForm {
    #[serde(deserialize_with = "crate::text::line")]
    role: String,
}

/// `POST /admin/users/{id}/role`.
pub async fn change_role(
    admin: Editor,
    path: web::Path<UserId>,
    form: web::Form<RoleForm>,
) -> Page {
    let Some(role) = Role::parse(&form.role) else {
        return choose_role(&admin, "").await;
    };
    let id = path.into_inner();
    change(&admin, ("", "user"), move |conn, c| {
        manage::change_role(conn, &c.actor, id, role, c.now)
            .map(|u| format!("{} is now {}.", u.username, role.as_str()))
    })
    .await
}

/// Form of resetting a password.
#[derive(Deserialize)]
pub struct PasswordForm {
    password: String,
    /// The "also revoke app access" box: ticked by default, absent when unticked.
    revoke_app_access: Option<String>,
}

/// `POST /admin/users/{id}/password`.
pub async fn reset_password(
    admin: Editor,
    path: web::Path<UserId>,
    form: web::Form<PasswordForm>,
) -> Page {
    let (id, form) = (path.into_inner(), form.into_inner());
    let keep_app_access = form.revoke_app_access.is_none();
    change(&admin, ("", "user"), move |conn, c| {
        let u = manage::reset_password(conn, &c.actor, id, &form.password, keep_app_access, c.now)?;
        Ok(if keep_app_access {
            format!(
                "Password of {} reset; they were signed out everywhere.",
                u.username
            )
        } else {
            format!(
                "Password of {} reset; they were signed out everywhere and their apps lost access.",
                u.username
            )
        })
    })
    .await
}

/// `POST /admin/users/{id}/sessions/delete`: "sign out everywhere".
pub async fn sign_out_everywhere(admin: Editor, path: web::Path<UserId>) -> Page {
    let id = path.into_inner();
    change(&admin, ("", "user"), move |conn, c| {
        manage::sign_out_everywhere(conn, &c.actor, id, c.now).map(|(u, n)| match n {
            1 => format!("{} was signed out of 1 session.", u.username),
            n => format!("{} was signed out of {n} sessions.", u.username),
        })
    })
    .await
}

/// `GET /admin/users/{id}/delete`: the confirmation step.
pub async fn confirm_delete(admin: Editor, path: web::Path<UserId>) -> Page {
    let id = path.into_inner();
    let user = admin
        .run(move |conn, _| {
            crate::user::store::find(conn, id)?
                .ok_or_else(|| AppError::NotFound("There is no such user.".into()))
        })
        .await?;
    Ok(admin.confirm(
        "users",
        &Confirm {
            heading: format!("Delete {}?", user.username),
            message: format!(
                "{} ({}) can no longer sign in: their sessions end, their remembered consents are deleted, and every app they authorized loses access at once.",
                user.username,
                user.role.as_str()
            ),
            action: format!("/admin/users/{id}/delete"),
            cancel: "/admin/users".into(),
            confirm_label: "Delete user",
        },
    ))
}

/// `POST /admin/users/{id}/delete`.
pub async fn delete(admin: Editor, path: web::Path<UserId>) -> Page {
    let id = path.into_inner();
    change(&admin, ("", "user"), move |conn, c| {
        manage::delete_user(conn, &c.actor, id, c.now)
            .map(|u| format!("User {} deleted.", u.username))
    })
    .await
}
