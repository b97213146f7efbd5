//! The Users page (admins only): list, add with a role, change role, reset password, delete.
//! The last admin can be neither demoted nor deleted.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use serde::Deserialize;

use super::Editor;
use super::{Admin, OrPage, Page, context, done, require_post};
use crate::AppState;
use crate::error::AppError;
use crate::http::session::CsrfOnly;
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

async fn users_page(
    state: &web::Data<AppState>,
    session: &Session,
    admin: &Admin,
    error: Option<&str>,
    typed: (&str, &str),
) -> Page {
    let now = state.clock.now();
    let (users, sessions) = crate::db::run(&state.pool, move |conn| {
        let users = crate::user::store::list(conn)?;
        let sessions = crate::user::sessions::count_by_user(conn, now)?;
        Ok((users, sessions))
    })
    .await
    .or_page(state, session)?;
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
    let mut ctx = context(session, admin, "users");
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
    Ok(state.pages.render(status, "admin/users.html", &ctx))
}

/// `GET /admin/users`.
pub async fn list(Editor(admin): Editor, state: web::Data<AppState>, session: Session) -> Page {
    users_page(&state, &session, &admin, None, ("", "user")).await
}

/// Form of adding a user.
#[derive(Deserialize)]
pub struct NewUserForm {
    #[serde(deserialize_with = "crate::text::line")]
    username: String,
    password: String,
    #[serde(deserialize_with = "crate::text::line")]
    role: String,
    csrf_token: Option<String>,
}

/// What happened, as the page after it should say: a notice, or the error shown on the list.
async fn finish(
    state: &web::Data<AppState>,
    session: &Session,
    admin: &Admin,
    result: Result<String, AppError>,
    typed: (&str, &str),
) -> Page {
    match result {
        Ok(notice) => Ok(done(session, &notice, "/admin/users")),
        Err(AppError::Invalid(m) | AppError::Conflict(m)) => {
            users_page(state, session, admin, Some(&m), typed).await
        }
        Err(e) => Ok(super::failed(state, session, &e)),
    }
}

/// `POST /admin/users`.
pub async fn create(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    form: web::Form<NewUserForm>,
) -> Page {
    let admin = require_post(&state, &session, &req, form.csrf_token.as_deref()).await?;
    let form = form.into_inner();
    let Some(role) = Role::parse(&form.role) else {
        return users_page(
            &state,
            &session,
            &admin,
            Some("Choose a role."),
            (&form.username, "user"),
        )
        .await;
    };
    let (actor, username, password) = (admin.actor.clone(), form.username.clone(), form.password);
    let now = state.clock.now();
    let result = crate::db::run(&state.pool, move |conn| {
        manage::create_user(conn, &actor, &username, &password, role, now)
            .map(|u| format!("User {} added.", u.username))
    })
    .await;
    finish(
        &state,
        &session,
        &admin,
        result,
        (&form.username, &form.role),
    )
    .await
}

/// Form of changing a role.
#[derive(Deserialize)]
pub struct RoleForm {
    #[serde(deserialize_with = "crate::text::line")]
    role: String,
    csrf_token: Option<String>,
}

/// `POST /admin/users/{id}/role`.
pub async fn change_role(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    path: web::Path<UserId>,
    form: web::Form<RoleForm>,
) -> Page {
    let admin = require_post(&state, &session, &req, form.csrf_token.as_deref()).await?;
    let Some(role) = Role::parse(&form.role) else {
        return users_page(
            &state,
            &session,
            &admin,
            Some("Choose a role."),
            ("", "user"),
        )
        .await;
    };
    let (actor, id) = (admin.actor.clone(), path.into_inner());
    let now = state.clock.now();
    let result = crate::db::run(&state.pool, move |conn| {
        manage::change_role(conn, &actor, id, role, now)
            .map(|u| format!("{} is now {}.", u.username, role.as_str()))
    })
    .await;
    finish(&state, &session, &admin, result, ("", "user")).await
}

/// Form of resetting a password.
#[derive(Deserialize)]
pub struct PasswordForm {
    password: String,
    /// The "also revoke app access" box: ticked by default, absent when unticked.
    revoke_app_access: Option<String>,
    csrf_token: Option<String>,
}

/// `POST /admin/users/{id}/password`.
pub async fn reset_password(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    path: web::Path<UserId>,
    form: web::Form<PasswordForm>,
) -> Page {
    let admin = require_post(&state, &session, &req, form.csrf_token.as_deref()).await?;
    let form = form.into_inner();
    let keep_app_access = form.revoke_app_access.is_none();
    let (actor, id, password) = (admin.actor.clone(), path.into_inner(), form.password);
    let now = state.clock.now();
    let result = crate::db::run(&state.pool, move |conn| {
        manage::reset_password(
            conn,
            &actor,
            id,
            &password,
            keep_app_access,
            now,
        )
        .map(|u| {
            if keep_app_access {
                format!("Password of {} reset; they were signed out everywhere.", u.username)
            } else {
                format!(
                    "Password of {} reset; they were signed out everywhere and their apps lost access.",
                    u.username
                )
            }
        })
    })
    .await;
    finish(&state, &session, &admin, result, ("", "user")).await
}

/// `POST /admin/users/{id}/sessions/delete`: "sign out everywhere".
pub async fn sign_out_everywhere(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    path: web::Path<UserId>,
    form: web::Form<CsrfOnly>,
) -> Page {
    let admin = require_post(&state, &session, &req, form.csrf_token.as_deref()).await?;
    let (actor, id) = (admin.actor.clone(), path.into_inner());
    let now = state.clock.now();
    let result = crate::db::run(&state.pool, move |conn| {
        manage::sign_out_everywhere(conn, &actor, id, now).map(|(u, n)| match n {
            1 => format!("{} was signed out of 1 session.", u.username),
            n => format!("{} was signed out of {n} sessions.", u.username),
        })
    })
    .await;
    finish(&state, &session, &admin, result, ("", "user")).await
}

/// `GET /admin/users/{id}/delete`: the confirmation step.
pub async fn confirm_delete(
    Editor(admin): Editor,
    state: web::Data<AppState>,
    session: Session,
    path: web::Path<UserId>,
) -> Page {
    let id = path.into_inner();
    let user = crate::db::run(&state.pool, move |conn| {
        crate::user::store::find(conn, id)?
            .ok_or_else(|| AppError::NotFound("There is no such user.".into()))
    })
    .await
    .or_page(&state, &session)?;
    Ok(super::confirm_page(
        &state,
        &session,
        &admin,
        "users",
        &super::Confirm {
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
pub async fn delete(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    path: web::Path<UserId>,
    form: web::Form<CsrfOnly>,
) -> Page {
    let admin = require_post(&state, &session, &req, form.csrf_token.as_deref()).await?;
    let (actor, id) = (admin.actor.clone(), path.into_inner());
    let now = state.clock.now();
    let result = crate::db::run(&state.pool, move |conn| {
        manage::delete_user(conn, &actor, id, now).map(|u| format!("User {} deleted.", u.username))
    })
    .await;
    finish(&state, &session, &admin, result, ("", "user")).await
}
