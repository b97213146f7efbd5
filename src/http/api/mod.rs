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

use std::marker::PhantomData;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use futures_util::future::LocalBoxFuture;
use serde::Serialize;

use crate::AppState;
use crate::error::AppError;
use crate::http::extract::{Access, Acting, Read, Write};
use crate::manage::Actor;
use crate::oauth::error::ErrorCode;

/// Scope that allows every API call.
pub const SCOPE_ADMIN: &str = "portcullis:admin";
/// Scope that allows the read-only calls.
pub const SCOPE_READ: &str = "portcullis:read";

/// The error body of every API error.
#[derive(Serialize, utoipa::ToSchema)]
// Named `ApiError` in the OpenAPI document (the error type is [`ApiError`]).
#[schema(as = ApiError)]
pub struct ErrorBody {
    /// A stable code: `invalid_token`, `insufficient_scope`, `not_found`, `invalid`,
    /// `conflict`, `method_not_allowed`, `unavailable`.
    pub error: String,
    /// What went wrong, for people.
    pub message: String,
}

/// Every error of the admin API: a status, the one JSON body ([`ErrorBody`]) and, on 401 and
/// 403, the RFC 6750 3 challenge. Handlers return `Result<_, ApiError>` and use `?`; a domain
/// error becomes one through `From`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: String,
    message: String,
    /// A header to add (`WWW-Authenticate`, `Retry-After`, `Allow`).
    header: Option<(header::HeaderName, String)>,
}

impl ApiError {
    /// An error with a status, a code and a message.
    pub fn new(status: StatusCode, code: &str, message: &str) -> ApiError {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
            header: None,
        }
    }

    /// The same error with one more header.
    fn with_header(mut self, name: header::HeaderName, value: String) -> ApiError {
        self.header = Some((name, value));
        self
    }

    /// 400 `invalid` with `message`.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::from(AppError::Invalid(message.into()))
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl actix_web::ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut resp = json(
            self.status,
            &ErrorBody {
                error: self.code.clone(),
                message: self.message.clone(),
            },
        );
        if let Some((name, value)) = &self.header
            && let Ok(v) = header::HeaderValue::from_str(value)
        {
            resp.headers_mut().insert(name.clone(), v);
        }
        resp
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> ApiError {
        match e {
            AppError::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, "not_found", &m),
            AppError::Invalid(m) => ApiError::new(StatusCode::BAD_REQUEST, "invalid", &m),
            AppError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", &m),
            other if other.is_unavailable() => {
                tracing::error!(error = %other, "admin API request failed: database unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::TemporarilyUnavailable.as_str(),
                    "the database is unavailable; retry later",
                )
                .with_header(
                    header::RETRY_AFTER,
                    crate::error::UNAVAILABLE_RETRY_AFTER.to_string(),
                )
            }
            other => {
                tracing::error!(error = %other, "admin API request failed");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the server could not complete the request; retry later",
                )
            }
        }
    }
}

/// An API answer: the response, or the error through `?`.
pub type ApiResult = Result<HttpResponse, ApiError>;

/// 400 `invalid` with `message`: input refused before the handler ran.
pub fn invalid(message: &str) -> HttpResponse {
    actix_web::ResponseError::error_response(&ApiError::invalid(message))
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
) -> Result<crate::db::paging::Paging, ApiError> {
    if page.is_some_and(|p| p < 1) {
        return Err(ApiError::invalid(format!(
            "page must be a whole number from 1 to {}",
            crate::db::paging::MAX_PAGE
        )));
    }
    let per_page = per_page.unwrap_or(default_size);
    if !size_ok(per_page) {
        return Err(ApiError::invalid(format!("per_page must be {sizes}")));
    }
    Ok(crate::db::paging::Paging::new(page, per_page)?)
}

/// Checks the bearer token (RFC 6750 2.1) and its scope (`write`: `portcullis:admin`);
/// the caller, for the audit log. Only the [`Reader`] and [`Writer`] extractors call it.
pub(in crate::http) async fn caller(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    write: bool,
) -> Result<Actor, ApiError> {
    let challenge =
        |code: &str, extra: &str| format!("Bearer realm=\"portcullis\", error=\"{code}\"{extra}");
    let unauthorized = |message: &str| {
        let code = ErrorCode::InvalidToken.as_str();
        ApiError::new(StatusCode::UNAUTHORIZED, code, message)
            .with_header(header::WWW_AUTHENTICATE, challenge(code, ""))
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
    .await?;
    if revoked {
        return Err(unauthorized("the access token was revoked"));
    }
    let granted: Vec<&str> = claims.scope.as_deref().unwrap_or("").split(' ').collect();
    let scopes =
        crate::oauth::client_auth::still_allowed(client.as_deref().map(|c| &c.client), &granted)
            .map_err(unauthorized)?;
    let allowed = scopes.contains(&SCOPE_ADMIN) || (!write && scopes.contains(&SCOPE_READ));
    if !allowed {
        // RFC 6750 3.1: insufficient_scope is 403, naming the scope needed.
        let (needed, wanted) = if write {
            (SCOPE_ADMIN, SCOPE_ADMIN)
        } else {
            (SCOPE_READ, "portcullis:read portcullis:admin")
        };
        let code = ErrorCode::InsufficientScope.as_str();
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            code,
            &format!("this call needs the scope {needed}"),
        )
        .with_header(
            header::WWW_AUTHENTICATE,
            challenge(code, &format!(", scope=\"{wanted}\"")),
        ));
    }
    Ok(Actor {
        username: format!("client:{}", claims.client_id),
        remote_addr: crate::http::remote_addr(req, state),
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

/// Where the admin API lives: [`crate::http::routes`] registers [`routes`] in this scope.
pub const PREFIX: &str = "/admin/api/v1";

/// Declares every API route once (its path below [`PREFIX`]): registers them and lists them
/// (method, full path) for the 405 answers and for the test that checks the OpenAPI document
/// covers them all (each handler documents itself with `#[utoipa::path]`).
macro_rules! api_routes {
    ($($method:ident $path:literal => $handler:path),* $(,)?) => {
        /// Every route of the admin API, as (method, full path).
        pub const ROUTES: &[(&str, &str)] = &[$((stringify!($method), concat!("/admin/api/v1", $path))),*];

        /// Registers the admin API routes in the [`PREFIX`] scope, then, for each path, a 405
        /// for the other methods.
        pub fn routes(cfg: &mut web::ServiceConfig) {
            cfg$(.route($path, web::$method().to($handler)))*;
            cfg$(.route($path, web::route().to(method_not_allowed)))*;
        }
    };
}

api_routes! {
    get "/clients" => clients::list,
    post "/clients" => clients::create,
    get "/clients/{client_id}" => clients::get,
    put "/clients/{client_id}" => clients::update,
    delete "/clients/{client_id}" => clients::delete,
    post "/clients/{client_id}/enable" => clients::enable,
    post "/clients/{client_id}/disable" => clients::disable,
    get "/clients/{client_id}/redirect-uris" => redirect_uris::list_redirect_uris,
    post "/clients/{client_id}/redirect-uris" => redirect_uris::add_redirect_uri,
    delete "/clients/{client_id}/redirect-uris/{uri_id}" => redirect_uris::remove_redirect_uri,
    get "/clients/{client_id}/secrets" => secrets::list_secrets,
    post "/clients/{client_id}/secrets" => secrets::add_secret,
    delete "/clients/{client_id}/secrets/{secret_id}" => secrets::delete_secret,
    get "/clients/{client_id}/usage" => usage::usage,
    get "/audit-events" => audit::audit_events,
    get "/users" => users::list,
    post "/users" => users::create,
    patch "/users/{id}" => users::update,
    delete "/users/{id}" => users::delete,
    delete "/users/{id}/sessions" => users::end_sessions,
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
    let e = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        &format!("this path answers {}", allow.join(", ")),
    )
    .with_header(header::ALLOW, allow.join(", "));
    actix_web::ResponseError::error_response(&e)
}

/// A path below [`PREFIX`] that names no call: 404 in the API's error shape.
pub async fn not_found() -> HttpResponse {
    let e = ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such call; see /admin/api/openapi.json",
    );
    actix_web::ResponseError::error_response(&e)
}

/// `GET /admin/api/openapi.json`.
pub async fn openapi_json() -> HttpResponse {
    use utoipa::OpenApi;
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(openapi::ApiDoc::openapi())
}

/// An admin-API caller whose token allows `A` ([`Reader`], [`Writer`]), checked by
/// [`caller`] before the handler runs.
pub struct ApiCaller<A> {
    /// The state and the actor (`client:CLIENT_ID`).
    pub acting: Acting,
    access: PhantomData<A>,
}

/// An API caller allowed to read (`portcullis:read` or `portcullis:admin`).
pub type Reader = ApiCaller<Read>;

/// An API caller allowed to change things (`portcullis:admin`).
pub type Writer = ApiCaller<Write>;

impl<A> std::ops::Deref for ApiCaller<A> {
    type Target = Acting;

    fn deref(&self) -> &Acting {
        &self.acting
    }
}

impl<A: Access> FromRequest for ApiCaller<A> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<ApiCaller<A>, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
                let e = AppError::Internal("no application state".into());
                return Err(ApiError::from(e).into());
            };
            let actor = caller(&state, &req, A::WRITE).await?;
            Ok(ApiCaller {
                acting: Acting { state, actor },
                access: PhantomData,
            })
        })
    }
}
