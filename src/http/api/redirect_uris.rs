//! Admin API calls for a client's redirect URIs.

use actix_web::http::StatusCode;
use actix_web::web;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiResult, Reader, Writer, json, on_client};
use crate::AppState;
use crate::manage;

/// A registered redirect URI.
#[derive(Serialize, ToSchema)]
pub struct RedirectUriOut {
    id: i64,
    uri: String,
}

/// A redirect URI to add.
#[derive(Deserialize, ToSchema)]
// An unknown field is a 400 naming it, never silently ignored (a misspelt `expires`
// would otherwise create a secret that never expires).
#[serde(deny_unknown_fields)]
pub struct RedirectUriIn {
    #[schema(min_length = 1, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    #[serde(deserialize_with = "crate::text::line")]
    uri: String,
}

/// `GET /admin/api/v1/clients/{client_id}/redirect-uris`
#[utoipa::path(get, path = "/admin/api/v1/clients/{client_id}/redirect-uris", params(("client_id" = String, Path)),
    responses((status = 200, body = Vec<RedirectUriOut>)), security(("bearer" = ["portcullis:read"])))]
pub async fn list_redirect_uris(
    _: Reader,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult {
    let id = path.into_inner();
    let uris = on_client(&state, id, move |conn, client| {
        crate::client::store::redirect_uris(conn, client.id)
    })
    .await?;
    let out: Vec<RedirectUriOut> = uris
        .into_iter()
        .map(|(id, uri)| RedirectUriOut { id, uri })
        .collect();
    Ok(json(StatusCode::OK, &out))
}

/// `POST /admin/api/v1/clients/{client_id}/redirect-uris`
#[utoipa::path(post, path = "/admin/api/v1/clients/{client_id}/redirect-uris", params(("client_id" = String, Path)), request_body = RedirectUriIn,
    responses((status = 201, body = Vec<RedirectUriOut>), (status = 400, body = super::ApiError)), security(("bearer" = ["portcullis:admin"])))]
pub async fn add_redirect_uri(
    Writer(actor): Writer,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<RedirectUriIn>,
) -> ApiResult {
    let (st, id, uri) = (state.clone(), path.into_inner(), body.into_inner().uri);
    let now = state.clock.now();
    let uris = on_client(&state, id, move |conn, client| {
        manage::add_redirect_uri(conn, &st.manage(), &actor, &client, &uri, now)?;
        crate::client::store::redirect_uris(conn, client.id)
    })
    .await?;
    let out: Vec<RedirectUriOut> = uris
        .into_iter()
        .map(|(id, uri)| RedirectUriOut { id, uri })
        .collect();
    Ok(json(StatusCode::CREATED, &out))
}

/// `DELETE /admin/api/v1/clients/{client_id}/redirect-uris/{uri_id}`
#[utoipa::path(delete, path = "/admin/api/v1/clients/{client_id}/redirect-uris/{uri_id}",
    params(("client_id" = String, Path), ("uri_id" = i64, Path)),
    responses((status = 204), (status = 400, body = super::ApiError)), security(("bearer" = ["portcullis:admin"])))]
pub async fn remove_redirect_uri(
    Writer(actor): Writer,
    state: web::Data<AppState>,
    path: web::Path<(String, i64)>,
) -> ApiResult {
    let (st, (id, uri_id)) = (state.clone(), path.into_inner());
    let now = state.clock.now();
    on_client(&state, id, move |conn, client| {
        manage::remove_redirect_uri(conn, &st.manage(), &actor, &client, uri_id, now)
    })
    .await?;
    Ok(actix_web::HttpResponse::NoContent().finish())
}
