//! Admin API calls for clients (their redirect URIs, secrets, usage and the audit log have
//! modules of their own). Each one checks the caller, calls one domain function and answers
//! JSON.

use actix_web::http::StatusCode;
use actix_web::web;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiResult, Reader, Writer, json};
use crate::client::{AuthMethod, Client, GrantType, ListQuery, NewClient, PAGE_SIZES, SortKey};
use crate::error::AppError;
use crate::manage;

/// A client as the API shows it (never a secret).
#[derive(Serialize, ToSchema)]
pub struct ClientOut {
    client_id: String,
    name: String,
    description: String,
    logo_url: Option<String>,
    public: bool,
    enabled: bool,
    scopes: Vec<String>,
    grant_types: Vec<String>,
    redirect_uris: Vec<String>,
    /// RFC 8252 7.3: loopback redirect URIs match any port.
    loopback_any_port: bool,
    access_token_ttl: Option<i64>,
    refresh_token_ttl: Option<i64>,
    ip_allowlist: Vec<String>,
    rate_limit_per_minute: Option<i64>,
    /// None = client_secret_basic or client_secret_post.
    token_endpoint_auth_method: Option<String>,
    created_at: i64,
    updated_at: i64,
    last_used_at: Option<i64>,
}

impl From<&Client> for ClientOut {
    fn from(c: &Client) -> ClientOut {
        ClientOut {
            client_id: c.client_id.clone(),
            name: c.name.clone(),
            description: c.description.clone(),
            logo_url: c.logo_url.clone(),
            public: c.public,
            enabled: c.enabled,
            scopes: c.allowed_scopes.to_vec(),
            grant_types: c
                .allowed_grant_types
                .iter()
                .map(|g| g.as_str().into())
                .collect(),
            redirect_uris: c.redirect_uri_texts(),
            loopback_any_port: c.loopback_any_port,
            access_token_ttl: c.access_token_ttl,
            refresh_token_ttl: c.refresh_token_ttl,
            ip_allowlist: c.ip_allowlist.iter().map(|n| n.to_string()).collect(),
            rate_limit_per_minute: c.rate_limit_per_minute,
            token_endpoint_auth_method: c.auth_method.map(|m| m.as_str().into()),
            created_at: c.created_at,
            updated_at: c.updated_at,
            last_used_at: c.last_used_at,
        }
    }
}

/// A client's settings, to create or replace them.
#[derive(Deserialize, ToSchema)]
// An unknown field is a 400 naming it, never silently ignored (a misspelt `expires`
// would otherwise create a secret that never expires).
#[serde(deny_unknown_fields)]
pub struct ClientIn {
    #[schema(min_length = 1, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    #[serde(deserialize_with = "crate::text::line")]
    name: String,
    #[schema(pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$")]
    #[serde(default, deserialize_with = "crate::text::multi_line")]
    description: String,
    #[schema(pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    #[serde(default, deserialize_with = "crate::text::opt_line")]
    logo_url: Option<String>,
    /// Only at creation; fixed afterwards.
    #[serde(default)]
    public: bool,
    #[serde(default, deserialize_with = "crate::text::lines")]
    scopes: Vec<String>,
    /// Empty = the default for the client's kind.
    #[serde(default, deserialize_with = "crate::text::lines")]
    grant_types: Vec<String>,
    /// Only at creation; afterwards use the redirect-uris calls.
    #[serde(default, deserialize_with = "crate::text::lines")]
    redirect_uris: Vec<String>,
    /// RFC 8252 7.3: a registered `http://127.0.0.1/...` or `http://[::1]/...` redirect URI
    /// matches the same URI with any port (`localhost` does not count). Default false.
    #[serde(default)]
    loopback_any_port: bool,
    access_token_ttl: Option<i64>,
    refresh_token_ttl: Option<i64>,
    #[serde(default, deserialize_with = "crate::text::lines")]
    ip_allowlist: Vec<String>,
    rate_limit_per_minute: Option<i64>,
    #[schema(pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    #[serde(default, deserialize_with = "crate::text::opt_line")]
    token_endpoint_auth_method: Option<String>,
    /// Public keys for private_key_jwt: a JWKS document or PEM.
    #[schema(pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$")]
    #[serde(default, deserialize_with = "crate::text::opt_multi_line")]
    jwks: Option<String>,
    /// Only when replacing; default true.
    enabled: Option<bool>,
}

impl ClientIn {
    /// Checks the body and turns it into a validated new client (and its `enabled` flag);
    /// `existing` is the client being replaced, if any. Pure (no database): also a fuzz target.
    pub fn into_new(self, existing: Option<&Client>) -> Result<(NewClient, bool), AppError> {
        let mut grant_types = Vec::new();
        for g in &self.grant_types {
            grant_types.push(
                GrantType::parse(g)
                    .ok_or_else(|| AppError::Invalid(format!("unknown grant type '{g}'")))?,
            );
        }
        let auth_method = match self.token_endpoint_auth_method.as_deref() {
            None | Some("") => None,
            Some(m) => Some(AuthMethod::parse(m).ok_or_else(|| {
                AppError::Invalid(format!("unknown token_endpoint_auth_method '{m}'"))
            })?),
        };
        let new = NewClient {
            name: self.name,
            description: self.description,
            logo_url: self.logo_url,
            public: existing.map_or(self.public, |c| c.public),
            scopes: self.scopes,
            grant_types,
            redirect_uris: existing.map_or(self.redirect_uris, |c| c.redirect_uri_texts()),
            loopback_any_port: self.loopback_any_port,
            access_token_ttl: self.access_token_ttl,
            refresh_token_ttl: self.refresh_token_ttl,
            ip_allowlist: self.ip_allowlist,
            rate_limit_per_minute: self.rate_limit_per_minute,
            auth_method,
            jwks: self.jwks,
        }
        .validate()?;
        Ok((new, self.enabled.unwrap_or(true)))
    }
}

/// A created client, with its first credential (shown this once).
#[derive(Serialize, ToSchema)]
pub struct ClientCreated {
    client: ClientOut,
    /// The generated client secret (or client_secret_jwt key); null for public and
    /// private_key_jwt clients.
    client_secret: Option<String>,
}

/// A page of clients.
#[derive(Serialize, ToSchema)]
pub struct ClientPage {
    items: Vec<ClientListItem>,
    total: i64,
    page: i64,
    per_page: i64,
}

/// A client in a list, with its secret count and expiry warnings.
#[derive(Serialize, ToSchema)]
pub struct ClientListItem {
    #[serde(flatten)]
    client: ClientOut,
    secret_count: usize,
    /// A secret expires within 14 days.
    expiring_soon: bool,
    /// It has secrets and all have expired.
    all_expired: bool,
}

/// Search, sort and page of the client list (as in the admin area).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Case-insensitive substring of the name or client_id.
    q: Option<String>,
    /// client_id, name, redirect_uris, secrets, status, created (default), last_used.
    sort: Option<String>,
    /// asc or desc (default desc for created).
    dir: Option<String>,
    /// 1-based.
    #[param(minimum = 1, maximum = 1_000_000)]
    page: Option<i64>,
    /// 10, 25 (default), 50 or 100.
    #[param(schema_with = client_page_sizes)]
    per_page: Option<i64>,
}

/// The schema of `per_page` of the client list: one of [`PAGE_SIZES`].
fn client_page_sizes() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Integer)
        .enum_values(Some(PAGE_SIZES))
        .build()
}

/// `GET /admin/api/v1/clients`
#[utoipa::path(get, path = "/admin/api/v1/clients", params(ListParams),
    responses((status = 200, body = ClientPage)),
    security(("bearer" = ["portcullis:read"])))]
pub async fn list(caller: Reader, params: web::Query<ListParams>) -> ApiResult {
    let paging = super::paging(
        params.page,
        params.per_page,
        25,
        |p| PAGE_SIZES.contains(&p),
        "10, 25, 50 or 100",
    )?;
    let sort = params
        .sort
        .as_deref()
        .and_then(SortKey::parse)
        .unwrap_or(SortKey::Created);
    let q = ListQuery {
        search: params.q.clone().filter(|q| !q.trim().is_empty()),
        sort,
        descending: params
            .dir
            .as_deref()
            .map_or(sort == SortKey::Created, |d| d == "desc"),
        page: paging.page,
        per_page: paging.per_page,
    };
    let (query, now) = (q.clone(), caller.now());
    let (rows, total) = caller
        .run(move |conn, _| crate::client::store::list_page(conn, &query, now))
        .await?;
    Ok(json(
        StatusCode::OK,
        &ClientPage {
            items: rows
                .iter()
                .map(|s| ClientListItem {
                    client: ClientOut::from(&s.client),
                    secret_count: s.secret_count,
                    expiring_soon: s.expiring_soon,
                    all_expired: s.all_expired,
                })
                .collect(),
            total,
            page: q.page,
            per_page: q.per_page,
        },
    ))
}

/// `POST /admin/api/v1/clients`
#[utoipa::path(post, path = "/admin/api/v1/clients", request_body = ClientIn,
    responses((status = 201, body = ClientCreated), (status = 400, body = super::ErrorBody)),
    security(("bearer" = ["portcullis:admin"])))]
pub async fn create(caller: Writer, body: web::Json<ClientIn>) -> ApiResult {
    let (new, enabled) = body.into_inner().into_new(None)?;
    let (client, client_secret) = caller
        .run(move |conn, c| {
            let (client, secret) =
                manage::create_client(conn, &c.manage(), &c.actor, &new, enabled, c.now)?;
            Ok((reread(conn, &client)?, secret))
        })
        .await?;
    let created = ClientCreated {
        client,
        client_secret,
    };
    Ok(json(StatusCode::CREATED, &created))
}

/// The client as stored after a change, for the answer.
fn reread(conn: &mut crate::db::AnyConnection, client: &Client) -> Result<ClientOut, AppError> {
    Ok(ClientOut::from(&crate::client::store::get(
        conn,
        &client.client_id,
    )?))
}

/// `GET /admin/api/v1/clients/{client_id}`
#[utoipa::path(get, path = "/admin/api/v1/clients/{client_id}", params(("client_id" = String, Path)),
    responses((status = 200, body = ClientOut), (status = 404, body = super::ErrorBody)),
    security(("bearer" = ["portcullis:read"])))]
pub async fn get(caller: Reader, path: web::Path<String>) -> ApiResult {
    let client = caller
        .on_client(path.into_inner(), |_, _, client| {
            Ok(ClientOut::from(&client))
        })
        .await?;
    Ok(json(StatusCode::OK, &client))
}

/// `PUT /admin/api/v1/clients/{client_id}`: replace the settings.
#[utoipa::path(put, path = "/admin/api/v1/clients/{client_id}", params(("client_id" = String, Path)), request_body = ClientIn,
    responses((status = 200, body = ClientCreated), (status = 400, body = super::ErrorBody), (status = 404, body = super::ErrorBody)),
    security(("bearer" = ["portcullis:admin"])))]
pub async fn update(
    caller: Writer,
    path: web::Path<String>,
    body: web::Json<ClientIn>,
) -> ApiResult {
    let body = body.into_inner();
    let (client, client_secret) = caller
        .on_client(path.into_inner(), move |conn, c, client| {
            let (settings, enabled) = body.into_new(Some(&client))?;
            let key = manage::update_client(
                conn,
                &c.manage(),
                &c.actor,
                &client,
                &settings,
                enabled,
                c.now,
            )?;
            Ok((reread(conn, &client)?, key))
        })
        .await?;
    let saved = ClientCreated {
        client,
        client_secret,
    };
    Ok(json(StatusCode::OK, &saved))
}

/// `DELETE /admin/api/v1/clients/{client_id}`
#[utoipa::path(delete, path = "/admin/api/v1/clients/{client_id}", params(("client_id" = String, Path)),
    responses((status = 204), (status = 404, body = super::ErrorBody)),
    security(("bearer" = ["portcullis:admin"])))]
pub async fn delete(caller: Writer, path: web::Path<String>) -> ApiResult {
    caller
        .on_client(path.into_inner(), move |conn, c, client| {
            manage::delete_client(conn, &c.manage(), &c.actor, &client, c.now)
        })
        .await?;
    Ok(actix_web::HttpResponse::NoContent().finish())
}

async fn set_enabled(caller: Writer, id: String, enabled: bool) -> ApiResult {
    let client = caller
        .on_client(id, move |conn, c, client| {
            manage::set_enabled(conn, &c.manage(), &c.actor, &client, enabled, c.now)?;
            reread(conn, &client)
        })
        .await?;
    Ok(json(StatusCode::OK, &client))
}

/// `POST /admin/api/v1/clients/{client_id}/enable`
#[utoipa::path(post, path = "/admin/api/v1/clients/{client_id}/enable", params(("client_id" = String, Path)),
    responses((status = 200, body = ClientOut)), security(("bearer" = ["portcullis:admin"])))]
pub async fn enable(caller: Writer, path: web::Path<String>) -> ApiResult {
    set_enabled(caller, path.into_inner(), true).await
}

/// `POST /admin/api/v1/clients/{client_id}/disable`
#[utoipa::path(post, path = "/admin/api/v1/clients/{client_id}/disable", params(("client_id" = String, Path)),
    responses((status = 200, body = ClientOut)), security(("bearer" = ["portcullis:admin"])))]
pub async fn disable(caller: Writer, path: web::Path<String>) -> ApiResult {
    set_enabled(caller, path.into_inner(), false).await
}
