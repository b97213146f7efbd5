//! The JSON admin API at `/admin/api/v1/`, for scripts and infrastructure tools.
//!
//! Callers authenticate with bearer access tokens that portcullis itself issues (RFC 6750): a
//! client allowed the scope `portcullis:admin` (changes) or `portcullis:read` (reads) gets one
//! by client_credentials. The token must verify with our keys, be unexpired, be meant for our
//! audience and not be revoked. Errors have one shape: `{"error": CODE, "message": TEXT}`,
//! with the RFC 6750 3 `WWW-Authenticate` challenge on 401 and 403.

pub mod audit;
pub mod clients;
pub mod openapi;
pub mod redirect_uris;
pub mod secrets;
pub mod usage;
pub mod users;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use futures_util::future::LocalBoxFuture;
use serde::Serialize;

use crate::AppState;
use crate::error::AppError;
use crate::manage::Actor;
use crate::oauth::error::ErrorCode;

/// Scope that allows every API call.
pub const SCOPE_ADMIN: &str = "portcullis:admin";
/// Scope that allows the read-only calls.
pub const SCOPE_READ: &str = "portcullis:read";

/// The error body of every API error.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ApiError {
    /// A stable code: `invalid_token`, `insufficient_scope`, `not_found`, `invalid`,
    /// `conflict`, `method_not_allowed`, `unavailable`.
    pub error: String,
    /// What went wrong, for people.
    pub message: String,
}

/// An API answer: the response, or the error response through `?`.
pub type ApiResult = Result<HttpResponse, actix_web::Error>;

fn error(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(ApiError {
            error: code.into(),
            message: message.into(),
        })
}

/// 400 `invalid` with `message`: input refused before the handler ran.
pub fn invalid(message: &str) -> HttpResponse {
    error(StatusCode::BAD_REQUEST, "invalid", message)
}

fn stop(response: HttpResponse) -> actix_web::Error {
    actix_web::error::InternalError::from_response("api request stopped", response).into()
}

/// Maps domain errors to API errors.
pub fn fail(e: AppError) -> actix_web::Error {
    stop(match e {
        AppError::NotFound(m) => error(StatusCode::NOT_FOUND, "not_found", &m),
        AppError::Invalid(m) => error(StatusCode::BAD_REQUEST, "invalid", &m),
        AppError::Conflict(m) => error(StatusCode::CONFLICT, "conflict", &m),
        other if other.is_unavailable() => {
            tracing::error!(error = %other, "admin API request failed: database unavailable");
            let mut resp = error(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::TemporarilyUnavailable.as_str(),
                "the database is unavailable; retry later",
            );
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(crate::error::UNAVAILABLE_RETRY_AFTER),
            );
            resp
        }
        other => {
            tracing::error!(error = %other, "admin API request failed");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the server could not complete the request; retry later",
            )
        }
    })
}

/// The page and page size of an API list call, as the document declares them: `page` from 1
/// to [`crate::db::paging::MAX_PAGE`] (default 1), `per_page` one that `size_ok` accepts
/// (default `default_size`, described by `sizes` in the message). Anything else is a 400,
/// never silently replaced by a default.
pub fn paging(
    page: Option<i64>,
    per_page: Option<i64>,
    default_size: i64,
    size_ok: impl Fn(i64) -> bool,
    sizes: &str,
) -> Result<crate::db::paging::Paging, actix_web::Error> {
    if page.is_some_and(|p| p < 1) {
        return Err(fail(AppError::Invalid(format!(
            "page must be a whole number from 1 to {}",
            crate::db::paging::MAX_PAGE
        ))));
    }
    let per_page = per_page.unwrap_or(default_size);
    if !size_ok(per_page) {
        return Err(fail(AppError::Invalid(format!("per_page must be {sizes}"))));
    }
    crate::db::paging::Paging::new(page, per_page).map_err(fail)
}

/// What a call needs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// `portcullis:read` or `portcullis:admin`.
    Read,
    /// `portcullis:admin`.
    Write,
}

/// An API caller allowed to read (`portcullis:read` or `portcullis:admin`), checked by
/// [`caller`] before the handler runs; the caller, for the audit log.
pub struct Reader(pub Actor);

/// An API caller allowed to change things (`portcullis:admin`), checked by [`caller`] before
/// the handler runs; the caller, for the audit log.
pub struct Writer(pub Actor);

fn extract(
    req: &HttpRequest,
    need: Need,
) -> LocalBoxFuture<'static, Result<Actor, actix_web::Error>> {
    let req = req.clone();
    Box::pin(async move {
        let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
            return Err(fail(AppError::Internal("no application state".into())));
        };
        caller(&state, &req, need).await
    })
}

impl FromRequest for Reader {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Reader, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let actor = extract(req, Need::Read);
        Box::pin(async move { actor.await.map(Reader) })
    }
}

impl FromRequest for Writer {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Writer, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let actor = extract(req, Need::Write);
        Box::pin(async move { actor.await.map(Writer) })
    }
}

/// Checks the bearer token (RFC 6750 2.1) and its scope; the caller, for the audit log.
async fn caller(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    need: Need,
) -> Result<Actor, actix_web::Error> {
    let challenge =
        |code: &str, extra: &str| format!("Bearer realm=\"portcullis\", error=\"{code}\"{extra}");
    let unauthorized = |message: &str| {
        let mut resp = error(
            StatusCode::UNAUTHORIZED,
            ErrorCode::InvalidToken.as_str(),
            message,
        );
        if let Ok(v) =
            header::HeaderValue::from_str(&challenge(ErrorCode::InvalidToken.as_str(), ""))
        {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        stop(resp)
    };
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .ok_or_else(|| {
            unauthorized("send an access token: Authorization: Bearer TOKEN (scope portcullis:admin or portcullis:read)")
        })?;
    let Some(claims) =
        state
            .keys
            .get()
            .verify(token, &state.issuer, &state.audience, state.clock.now())
    else {
        return Err(unauthorized("the access token is invalid or expired"));
    };
    // Only the client's own client_credentials tokens act on the API (RFC 9068 2.2: for
    // client_credentials `sub` is the client): a person's token for an app never does.
    if claims.sub != claims.client_id {
        return Err(unauthorized(
            "the admin API accepts only client_credentials access tokens",
        ));
    }
    let jti = claims.jti.clone();
    let client_id = claims.client_id.clone();
    let clients = state.clients.clone();
    let (client, revoked) = crate::db::run(&state.pool, move |conn| {
        Ok((
            clients.load(conn, &client_id)?,
            crate::token::store::is_jti_revoked(conn, &jti)?,
        ))
    })
    .await
    .map_err(fail)?;
    if revoked {
        return Err(unauthorized("the access token was revoked"));
    }
    let granted: Vec<&str> = claims.scope.as_deref().unwrap_or("").split(' ').collect();
    let scopes = match crate::oauth::client_auth::still_allowed(
        client.as_deref().map(|c| &c.client),
        &granted,
    ) {
        Ok(scopes) => scopes,
        Err(reason) => return Err(unauthorized(reason)),
    };
    let allowed =
        scopes.contains(&SCOPE_ADMIN) || (need == Need::Read && scopes.contains(&SCOPE_READ));
    if !allowed {
        // RFC 6750 3.1: insufficient_scope is 403, naming the scope needed.
        let wanted = if need == Need::Write {
            SCOPE_ADMIN
        } else {
            "portcullis:read portcullis:admin"
        };
        let mut resp = error(
            StatusCode::FORBIDDEN,
            ErrorCode::InsufficientScope.as_str(),
            &format!(
                "this call needs the scope {}",
                if need == Need::Write {
                    SCOPE_ADMIN
                } else {
                    SCOPE_READ
                }
            ),
        );
        if let Ok(v) = header::HeaderValue::from_str(&challenge(
            ErrorCode::InsufficientScope.as_str(),
            &format!(", scope=\"{wanted}\""),
        )) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        return Err(stop(resp));
    }
    Ok(Actor {
        username: format!("client:{}", claims.client_id),
        remote_addr: crate::http::client_ip(req, state)
            .map(|ip| ip.to_string())
            .unwrap_or_else(|| "unknown".into()),
    })
}

/// The token of an `Authorization: Bearer TOKEN` header. The scheme name is
/// case-insensitive (RFC 9110 11.1, RFC 6750 2.1): `bearer`, `BEARER` are the same.
pub fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// A JSON answer that is never cached.
pub fn json<T: Serialize>(status: StatusCode, body: &T) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}

/// Declares every API route once: registers them and lists them (method, path) for the test
/// that checks the OpenAPI document covers them all.
macro_rules! api_routes {
    ($($method:ident $path:literal => $handler:path),* $(,)?) => {
        /// Every route of the admin API, as (method, path).
        pub const ROUTES: &[(&str, &str)] = &[$((stringify!($method), $path)),*];

        /// Registers the admin API routes, then, for each path, a 405 for the other methods.
        pub fn routes(cfg: &mut web::ServiceConfig) {
            cfg$(.route($path, web::$method().to($handler)))*;
            cfg$(.route($path, web::route().to(method_not_allowed)))*;
        }
    };
}

api_routes! {
    get "/admin/api/v1/clients" => clients::list,
    post "/admin/api/v1/clients" => clients::create,
    get "/admin/api/v1/clients/{client_id}" => clients::get,
    put "/admin/api/v1/clients/{client_id}" => clients::update,
    delete "/admin/api/v1/clients/{client_id}" => clients::delete,
    post "/admin/api/v1/clients/{client_id}/enable" => clients::enable,
    post "/admin/api/v1/clients/{client_id}/disable" => clients::disable,
    get "/admin/api/v1/clients/{client_id}/redirect-uris" => redirect_uris::list_redirect_uris,
    post "/admin/api/v1/clients/{client_id}/redirect-uris" => redirect_uris::add_redirect_uri,
    delete "/admin/api/v1/clients/{client_id}/redirect-uris/{uri_id}" => redirect_uris::remove_redirect_uri,
    get "/admin/api/v1/clients/{client_id}/secrets" => secrets::list_secrets,
    post "/admin/api/v1/clients/{client_id}/secrets" => secrets::add_secret,
    delete "/admin/api/v1/clients/{client_id}/secrets/{secret_id}" => secrets::delete_secret,
    get "/admin/api/v1/clients/{client_id}/usage" => usage::usage,
    get "/admin/api/v1/audit-events" => audit::audit_events,
    get "/admin/api/v1/users" => users::list,
    post "/admin/api/v1/users" => users::create,
    patch "/admin/api/v1/users/{id}" => users::update,
    delete "/admin/api/v1/users/{id}" => users::delete,
    delete "/admin/api/v1/users/{id}/sessions" => users::end_sessions,
}

/// A method the path does not serve: RFC 9110 15.5.6 405 with the `Allow` header listing
/// the methods it does, in the API's error shape.
async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    let pattern = req.match_pattern().unwrap_or_default();
    let allow: Vec<String> = ROUTES
        .iter()
        .filter(|(_, p)| *p == pattern)
        .map(|(m, _)| m.to_ascii_uppercase())
        .collect();
    let mut resp = error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        &format!("this path answers {}", allow.join(", ")),
    );
    if let Ok(v) = header::HeaderValue::from_str(&allow.join(", ")) {
        resp.headers_mut().insert(header::ALLOW, v);
    }
    resp
}

/// `GET /admin/api/openapi.json`.
pub async fn openapi_json() -> HttpResponse {
    use utoipa::OpenApi;
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(openapi::ApiDoc::openapi())
}

/// [`crate::http::with_client`] with API errors.
pub(super) async fn on_client<T: Send + 'static>(
    state: &web::Data<AppState>,
    client_id: String,
    f: impl FnOnce(&mut crate::db::AnyConnection, crate::client::Client) -> Result<T, AppError>
    + Send
    + 'static,
) -> Result<T, actix_web::Error> {
    crate::http::with_client(state, client_id, f)
        .await
        .map_err(fail)
}
