//! Admin API calls for a client's secrets.

use actix_web::http::StatusCode;
use actix_web::web;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiResult, Reader, Writer, json, on_client};
use crate::AppState;
use crate::error::AppError;
use crate::ids::SecretId;
use crate::manage;

/// A secret as the API shows it: never its value.
#[derive(Serialize, ToSchema)]
pub struct SecretOut {
    id: i64,
    description: String,
    /// The last four characters.
    hint: String,
    expires_at: Option<i64>,
    last_used_at: Option<i64>,
    created_at: i64,
}

impl From<&crate::secret::store::SecretRow> for SecretOut {
    fn from(s: &crate::secret::store::SecretRow) -> SecretOut {
        SecretOut {
            id: s.id.0,
            description: s.description.clone(),
            hint: s.hint.clone(),
            expires_at: s.expires_at,
            last_used_at: s.last_used_at,
            created_at: s.created_at,
        }
    }
}

/// A secret to add.
#[derive(Deserialize, ToSchema)]
// An unknown field is a 400 naming it, never silently ignored (a misspelt `expires`
// would otherwise create a secret that never expires).
#[serde(deny_unknown_fields)]
pub struct SecretIn {
    #[schema(pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    #[serde(default, deserialize_with = "crate::text::line")]
    description: String,
    /// YYYY-MM-DD or DD/MM/YYYY; none = never.
    #[schema(pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    #[serde(default, deserialize_with = "crate::text::opt_line")]
    expires: Option<String>,
    /// A value of 16+ characters; none = generate one (returned once).
    #[schema(min_length = 16)]
    value: Option<String>,
}

/// A created secret, with the generated value (this once).
#[derive(Serialize, ToSchema)]
pub struct SecretCreated {
    secret: SecretOut,
    value: Option<String>,
}

/// `GET /admin/api/v1/clients/{client_id}/secrets`
#[utoipa::path(get, path = "/admin/api/v1/clients/{client_id}/secrets", params(("client_id" = String, Path)),
    responses((status = 200, body = Vec<SecretOut>)), security(("bearer" = ["portcullis:read"])))]
pub async fn list_secrets(
    _: Reader,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult {
    let id = path.into_inner();
    let secrets = on_client(&state, id, move |conn, client| {
        crate::secret::store::list(conn, client.id)
    })
    .await?;
    let out: Vec<SecretOut> = secrets.iter().map(SecretOut::from).collect();
    Ok(json(StatusCode::OK, &out))
}

/// `POST /admin/api/v1/clients/{client_id}/secrets`
#[utoipa::path(post, path = "/admin/api/v1/clients/{client_id}/secrets", params(("client_id" = String, Path)), request_body = SecretIn,
    responses((status = 201, body = SecretCreated), (status = 400, body = super::ApiError)), security(("bearer" = ["portcullis:admin"])))]
pub async fn add_secret(
    Writer(actor): Writer,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<SecretIn>,
) -> ApiResult {
    let (st, id, body) = (state.clone(), path.into_inner(), body.into_inner());
    let now = state.clock.now();
    let (row, value) = on_client(&state, id, move |conn, client| {
        let expires_at = match body.expires.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(e) => Some(crate::clock::parse_expiry(e, now).map_err(AppError::Invalid)?),
        };
        let input = manage::SecretInput {
            description: &body.description,
            expires_at,
            value: body.value.as_deref(),
        };
        manage::add_secret(conn, &st.manage(), &actor, &client, &input, now)
    })
    .await?;
    Ok(json(
        StatusCode::CREATED,
        &SecretCreated {
            secret: SecretOut::from(&row),
            value,
        },
    ))
}

/// `DELETE /admin/api/v1/clients/{client_id}/secrets/{secret_id}`
#[utoipa::path(delete, path = "/admin/api/v1/clients/{client_id}/secrets/{secret_id}",
    params(("client_id" = String, Path), ("secret_id" = i64, Path)),
    responses((status = 204), (status = 404, body = super::ApiError)), security(("bearer" = ["portcullis:admin"])))]
pub async fn delete_secret(
    Writer(actor): Writer,
    state: web::Data<AppState>,
    path: web::Path<(String, SecretId)>,
) -> ApiResult {
    let (st, (id, secret_id)) = (state.clone(), path.into_inner());
    let now = state.clock.now();
    on_client(&state, id, move |conn, client| {
        let secret = crate::secret::store::find(conn, client.id, secret_id)?
            .ok_or_else(|| AppError::NotFound("this client has no such secret".into()))?;
        manage::delete_secret(conn, &st.manage(), &actor, &client, &secret, now)
    })
    .await?;
    Ok(actix_web::HttpResponse::NoContent().finish())
}
