//! Admin API calls for accounts: list, create, change role, reset password, delete. The last
//! admin can be neither demoted nor deleted.

use actix_web::http::StatusCode;
use actix_web::web;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiResult, Writer, fail, json};
use crate::AppState;
use crate::error::AppError;
use crate::ids::UserId;
use crate::manage;
use crate::user::{Role, User};

/// An account (never its password).
#[derive(Serialize, ToSchema)]
pub struct UserOut {
    id: i64,
    username: String,
    /// admin, readonly or user.
    role: String,
    created_at: i64,
    last_login_at: Option<i64>,
}

impl From<&User> for UserOut {
    fn from(u: &User) -> UserOut {
        UserOut {
            id: u.id.0,
            username: u.username.clone(),
            role: u.role.as_str().into(),
            created_at: u.created_at,
            last_login_at: u.last_login_at,
        }
    }
}

/// An account to create.
#[derive(Deserialize, ToSchema)]
// An unknown field is a 400 naming it, never silently ignored (a misspelt `expires`
// would otherwise create a secret that never expires).
#[serde(deny_unknown_fields)]
pub struct UserIn {
    #[schema(min_length = 1, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    #[serde(deserialize_with = "crate::text::line")]
    username: String,
    /// At least 12 characters.
    #[schema(min_length = 12)]
    password: String,
    /// admin, readonly or user.
    #[serde(deserialize_with = "crate::text::line")]
    #[schema(pattern = "^(admin|readonly|user)$")]
    role: String,
}

/// A change to an account: a new role and/or a new password. Either ends the user's sessions.
#[derive(Deserialize, ToSchema)]
// An unknown field is a 400 naming it, never silently ignored (a misspelt `expires`
// would otherwise create a secret that never expires).
#[serde(deny_unknown_fields)]
pub struct UserChange {
    /// admin, readonly or user.
    #[serde(default, deserialize_with = "crate::text::opt_line")]
    #[schema(pattern = "^(admin|readonly|user)$")]
    role: Option<String>,
    /// At least 12 characters.
    #[schema(min_length = 12)]
    password: Option<String>,
    /// With a new password: also revoke every token the user's apps hold (default true).
    revoke_app_access: Option<bool>,
}

/// What "sign out everywhere" did.
#[derive(Serialize, ToSchema)]
pub struct SessionsEnded {
    /// Sessions that were ended.
    ended: usize,
}

fn role(s: &str) -> Result<Role, actix_web::Error> {
    Role::parse(s).ok_or_else(|| {
        fail(AppError::Invalid(format!(
            "unknown role '{s}': use admin, readonly or user"
        )))
    })
}

/// `GET /admin/api/v1/users`
#[utoipa::path(get, path = "/admin/api/v1/users",
    responses((status = 200, body = Vec<UserOut>)), security(("bearer" = ["portcullis:admin"])))]
pub async fn list(_: Writer, state: web::Data<AppState>) -> ApiResult {
    // Accounts are for admins only, as in the admin area.
    let users = crate::db::run(&state.pool, crate::user::store::list)
        .await
        .map_err(fail)?;
    let out: Vec<UserOut> = users.iter().map(UserOut::from).collect();
    Ok(json(StatusCode::OK, &out))
}

/// `POST /admin/api/v1/users`
#[utoipa::path(post, path = "/admin/api/v1/users", request_body = UserIn,
    responses((status = 201, body = UserOut), (status = 400, body = super::ApiError), (status = 409, body = super::ApiError)),
    security(("bearer" = ["portcullis:admin"])))]
pub async fn create(
    Writer(actor): Writer,
    state: web::Data<AppState>,
    body: web::Json<UserIn>,
) -> ApiResult {
    let body = body.into_inner();
    let role = role(&body.role)?;
    let now = state.clock.now();
    let user = crate::db::run(&state.pool, move |conn| {
        manage::create_user(conn, &actor, &body.username, &body.password, role, now)
    })
    .await
    .map_err(fail)?;
    Ok(json(StatusCode::CREATED, &UserOut::from(&user)))
}

/// `PATCH /admin/api/v1/users/{id}`
#[utoipa::path(patch, path = "/admin/api/v1/users/{id}", params(("id" = i64, Path)), request_body = UserChange,
    responses((status = 200, body = UserOut), (status = 400, body = super::ApiError), (status = 404, body = super::ApiError)),
    security(("bearer" = ["portcullis:admin"])))]
pub async fn update(
    Writer(actor): Writer,
    state: web::Data<AppState>,
    path: web::Path<UserId>,
    body: web::Json<UserChange>,
) -> ApiResult {
    let (id, body) = (path.into_inner(), body.into_inner());
    let new_role = body.role.as_deref().map(role).transpose()?;
    let now = state.clock.now();
    let keep_app_access = !body.revoke_app_access.unwrap_or(true);
    let user = crate::db::run(&state.pool, move |conn| {
        let password = body.password.as_deref();
        manage::update_user(conn, &actor, id, new_role, password, keep_app_access, now)
    })
    .await
    .map_err(fail)?;
    Ok(json(StatusCode::OK, &UserOut::from(&user)))
}

/// `DELETE /admin/api/v1/users/{id}`
#[utoipa::path(delete, path = "/admin/api/v1/users/{id}", params(("id" = i64, Path)),
    responses((status = 204), (status = 400, body = super::ApiError), (status = 404, body = super::ApiError)),
    security(("bearer" = ["portcullis:admin"])))]
pub async fn delete(
    Writer(actor): Writer,
    state: web::Data<AppState>,
    path: web::Path<UserId>,
) -> ApiResult {
    let id = path.into_inner();
    let now = state.clock.now();
    crate::db::run(&state.pool, move |conn| {
        manage::delete_user(conn, &actor, id, now)
    })
    .await
    .map_err(fail)?;
    Ok(actix_web::HttpResponse::NoContent().finish())
}

/// `DELETE /admin/api/v1/users/{id}/sessions`: signs the user out everywhere.
#[utoipa::path(delete, path = "/admin/api/v1/users/{id}/sessions", params(("id" = i64, Path)),
    responses((status = 200, body = SessionsEnded), (status = 404, body = super::ApiError)),
    security(("bearer" = ["portcullis:admin"])))]
pub async fn end_sessions(
    Writer(actor): Writer,
    state: web::Data<AppState>,
    path: web::Path<UserId>,
) -> ApiResult {
    let id = path.into_inner();
    let now = state.clock.now();
    let (_, ended) = crate::db::run(&state.pool, move |conn| {
        manage::sign_out_everywhere(conn, &actor, id, now)
    })
    .await
    .map_err(fail)?;
    Ok(json(StatusCode::OK, &SessionsEnded { ended }))
}
