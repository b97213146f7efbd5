//! Admin API calls for a client's redirect URIs.

use actix_web::http::StatusCode;
use actix_web::web;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiResult, Reader, Writer, json};
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
pub async fn list_redirect_uris(caller: Reader, path: web::Path<String>) -> ApiResult {
    let uris = caller
        .on_client(path.into_inner(), |conn, _, client| uris_of(conn, &client))
        .await?;
    Ok(json(StatusCode::OK, &uris))
}

/// The client's redirect URIs, for the answer.
fn uris_of(
    conn: &mut crate::db::AnyConnection,
    client: &crate::client::Client,
) -> Result<Vec<RedirectUriOut>, crate::error::AppError> {
    let uris = crate::client::store::redirect_uris(conn, client.id)?;
    Ok(uris
        .into_iter()
        .map(|(id, uri)| RedirectUriOut { id, uri })
        .collect())
}

/// `POST /admin/api/v1/clients/{client_id}/redirect-uris`
#[utoipa::path(post, path = "/admin/api/v1/clients/{client_id}/redirect-uris", params(("client_id" = String, Path)), request_body = RedirectUriIn,
    responses((status = 201, body = Vec<RedirectUriOut>), (status = 400, body = super::ErrorBody)), security(("bearer" = ["portcullis:admin"])))]
pub async fn add_redirect_uri(
    caller: Writer,
    path: web::Path<String>,
    body: web::Json<RedirectUriIn>,
) -> ApiResult {
    let uri = body.into_inner().uri;
    let uris = caller
        .on_client(path.into_inner(), move |conn, c, client| {
            manage::add_redirect_uri(conn, &c.manage(), &c.actor, &client, &uri, c.now)?;
            uris_of(conn, &client)
        })
        .await?;
    Ok(json(StatusCode::CREATED, &uris))
}

/// `DELETE /admin/api/v1/clients/{client_id}/redirect-uris/{uri_id}`
#[utoipa::path(delete, path = "/admin/api/v1/clients/{client_id}/redirect-uris/{uri_id}",
    params(("client_id" = String, Path), ("uri_id" = i64, Path)),
    responses((status = 204), (status = 400, body = super::ErrorBody)), security(("bearer" = ["portcullis:admin"])))]
pub async fn remove_redirect_uri(caller: Writer, path: web::Path<(String, i64)>) -> ApiResult {
    let (id, uri_id) = path.into_inner();
    caller
        .on_client(id, move |conn, c, client| {
            manage::remove_redirect_uri(conn, &c.manage(), &c.actor, &client, uri_id, c.now)
        })
        .await?;
    Ok(actix_web::HttpResponse::NoContent().finish())
}
