//! OAuth endpoints: token (RFC 6749 3.2), JWKS (RFC 7517), metadata (RFC 8414).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;

use crate::AppState;
use crate::client::GrantType;
use crate::oauth::client_auth::{self, Endpoint};
use crate::oauth::context::OAuthContext;
use crate::oauth::request::{ClientRequest, MAX_BODY_BYTES, OAuthResponse, TokenRequest};

/// Renders an OAuth response. Token responses and errors are never cached (RFC 6749 5.1, 5.2).
pub fn render(resp: OAuthResponse) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(resp.status)
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut builder = HttpResponse::build(status);
    builder
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"));
    if resp.basic_challenge {
        builder.insert_header((header::WWW_AUTHENTICATE, "Basic realm=\"portcullis\""));
    }
    if let Some(secs) = resp.retry_after {
        builder.insert_header((header::RETRY_AFTER, secs.to_string()));
    }
    builder.content_type("application/json").body(resp.body)
}

/// Reads the body up to `limit` bytes; None when it is larger or the stream breaks.
async fn read_body(mut payload: web::Payload, limit: usize) -> Option<web::BytesMut> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.ok()?;
        if body.len() + chunk.len() > limit {
            return None;
        }
        body.extend_from_slice(&chunk);
    }
    Some(body)
}

/// `POST /oauth/token`.
pub async fn token(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let request = match client_request(&req, &state, payload)
        .await
        .and_then(TokenRequest::from_client)
    {
        Ok(r) => r,
        Err(resp) => return render(resp),
    };
    let grant = request.grant_type;
    // The client authenticates before anything else happens (RFC 6749 3.2.1).
    let authenticated = match client_auth::authenticate(
        &state.oauth(),
        &request.auth,
        request.client_ip,
        Endpoint::Token,
    )
    .await
    {
        Ok(a) => a,
        Err(refused) => return render(refused),
    };
    match grant {
        // Served from memory, on the executor (see grants::client_credentials).
        GrantType::ClientCredentials => render(crate::oauth::grants::client_credentials(
            &state.oauth(),
            &authenticated,
            &request,
        )),
        GrantType::RefreshToken | GrantType::AuthorizationCode => {
            // PostgreSQL: first tried in a batch, awaited here (issue 13).
            let ctx = state.oauth();
            let batched = match grant {
                GrantType::RefreshToken => {
                    crate::oauth::grants::refresh_batched(&ctx, &request, &authenticated).await
                }
                _ => {
                    crate::oauth::grants::authorization_code_batched(&ctx, &request, &authenticated)
                        .await
                }
            };
            if let Some(answer) = batched {
                return render(answer);
            }
            blocking(
                state,
                (request, authenticated),
                true,
                crate::oauth::token_with_database,
            )
            .await
        }
    }
}

/// Reads and checks a form request from a client (token, introspection, revocation).
async fn client_request(
    req: &HttpRequest,
    state: &AppState,
    payload: web::Payload,
) -> Result<ClientRequest, OAuthResponse> {
    let Some(body) = read_body(payload, MAX_BODY_BYTES).await else {
        return Err(OAuthResponse::invalid_request(&format!(
            "the request body is larger than {MAX_BODY_BYTES} bytes"
        )));
    };
    let header_str = |name| {
        req.headers()
            .get(name)
            .and_then(|v: &header::HeaderValue| v.to_str().ok())
    };
    let mut request = ClientRequest::parse(
        header_str(header::CONTENT_TYPE),
        header_str(header::AUTHORIZATION),
        &body,
    )?;
    request.client_ip = crate::http::client_ip(req, state);
    Ok(request)
}

/// Runs an endpoint off the executor with one connection: from the shared pool, or when it
/// `writes` on the writer ([`crate::db::writer::Writer`]), where an answer with a 5xx status is
/// rolled back. An answer that says the database is away (503) has the connection pinged
/// before its next use.
async fn blocking<T: Send + 'static>(
    state: web::Data<AppState>,
    request: T,
    writes: bool,
    f: fn(&OAuthContext<'_>, &mut crate::db::AnyConnection, &T) -> OAuthResponse,
) -> HttpResponse {
    let state = state.into_inner();
    let st = state.clone();
    let answer = move |conn: &mut crate::db::AnyConnection| Ok(f(&st.oauth(), conn, &request));
    let result = if writes {
        let failed = |r: &Result<OAuthResponse, _>| r.as_ref().map_or(true, |a| a.status >= 500);
        state.writer.run_judged(answer, failed).await
    } else {
        let away = |r: &Result<OAuthResponse, _>| r.as_ref().is_ok_and(|a| a.status == 503);
        crate::db::run_judged(&state.pool, answer, away).await
    };
    match result {
        Ok(resp) => render(resp),
        Err(e) => {
            tracing::error!(error = %e, "request failed");
            render(OAuthResponse::storage_failed(&e))
        }
    }
}

/// What [`ClientEndpoint`] answers with, given the authenticated client's request and a
/// connection.
pub type Answer = fn(
    &OAuthContext<'_>,
    &mut crate::db::AnyConnection,
    &(ClientRequest, client_auth::Authenticated),
) -> OAuthResponse;

/// The endpoints that authenticate the client (RFC 7662 2.1, RFC 7009 2.1) and then answer,
/// in a batch awaited on the executor ([`ClientEndpoint::batched`]) or with a connection off
/// it: [`Introspect`] and [`Revoke`], both served by [`authenticated`].
pub trait ClientEndpoint {
    /// Which endpoint, for the authentication rules that differ (public clients).
    const ENDPOINT: Endpoint;
    /// The answer, given the authenticated client's request.
    const ANSWER: Answer;
    /// Whether the answer writes (it runs on the writers' connection, see `AppState::writer`).
    const WRITES: bool;
    /// The answer on the async executor, where it needs no connection of its own (on
    /// PostgreSQL, whose lookups and revocation-list writes are batched, issue 13: every
    /// introspection, and the revocation of an access token); None for the others, which
    /// [`Self::ANSWER`] gets.
    #[allow(async_fn_in_trait)]
    async fn batched(
        ctx: &OAuthContext<'_>,
        request: &(ClientRequest, client_auth::Authenticated),
    ) -> Option<OAuthResponse>;
}

/// `POST /oauth/introspect` (RFC 7662).
pub struct Introspect;

impl ClientEndpoint for Introspect {
    const ENDPOINT: Endpoint = Endpoint::Introspection;
    const ANSWER: Answer = crate::oauth::introspection::introspect;
    const WRITES: bool = false;
    async fn batched(
        ctx: &OAuthContext<'_>,
        request: &(ClientRequest, client_auth::Authenticated),
    ) -> Option<OAuthResponse> {
        crate::oauth::introspection::introspect_batched(ctx, request).await
    }
}

/// `POST /oauth/revoke` (RFC 7009).
pub struct Revoke;

impl ClientEndpoint for Revoke {
    const ENDPOINT: Endpoint = Endpoint::Revocation;
    const ANSWER: Answer = crate::oauth::revocation::revoke;
    const WRITES: bool = true;
    async fn batched(
        ctx: &OAuthContext<'_>,
        request: &(ClientRequest, client_auth::Authenticated),
    ) -> Option<OAuthResponse> {
        crate::oauth::revocation::revoke_batched(ctx, request).await
    }
}

/// Reads a client request, authenticates the client, then answers as `E` says.
pub async fn authenticated<E: ClientEndpoint>(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let request = match client_request(&req, &state, payload).await {
        Ok(r) => r,
        Err(resp) => return render(resp),
    };
    match client_auth::authenticate(
        &state.oauth(),
        &request.auth,
        request.client_ip,
        E::ENDPOINT,
    )
    .await
    {
        Ok(authenticated) => {
            let request = (request, authenticated);
            if let Some(answer) = E::batched(&state.oauth(), &request).await {
                return render(answer);
            }
            blocking(state, request, E::WRITES, E::ANSWER).await
        }
        Err(refused) => render(refused),
    }
}

/// Any method but POST on the token, introspection and revocation endpoints (RFC 6749 3.2:
/// "The client MUST use the HTTP POST method"; RFC 7662 2.1, RFC 7009 2.1).
pub async fn method_not_allowed() -> HttpResponse {
    let mut resp = render(OAuthResponse::invalid_request(
        "this endpoint accepts only POST (RFC 6749 3.2)",
    ));
    *resp.status_mut() = actix_web::http::StatusCode::METHOD_NOT_ALLOWED;
    resp.headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
    resp
}

/// `GET /oauth/jwks.json`: the public keys that verify access tokens (RFC 7517 5).
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        // Short, so that resource servers see a rotated-in key before it signs (`keys rotate`
        // publishes it 120 s ahead by default).
        .insert_header((header::CACHE_CONTROL, "public, max-age=60"))
        .content_type("application/json")
        .body(state.keys.get().jwks_json().to_string())
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414 3): exactly what is supported.
pub async fn metadata(state: web::Data<AppState>) -> HttpResponse {
    let issuer = &state.issuer;
    // client_secret_jwt is always available: its shared keys are sealed with the master key.
    let methods = vec![
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
        "client_secret_jwt",
    ];
    let mut algs = crate::client::assertion::ALGORITHMS.to_vec();
    algs.push("HS256");
    let mut token_methods = methods.clone();
    token_methods.push("none");
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .json(serde_json::json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/oauth/authorize"),
            "token_endpoint": format!("{issuer}/oauth/token"),
            "jwks_uri": format!("{issuer}/oauth/jwks.json"),
            "introspection_endpoint": format!("{issuer}/oauth/introspect"),
            "revocation_endpoint": format!("{issuer}/oauth/revoke"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": GrantType::ALL.map(GrantType::as_str),
            // `none`: public clients send only their client_id (RFC 6749 2.1, 3.2.1);
            // private_key_jwt: RFC 7523 2.2 (RFC 8414 2 lists the signing algorithms).
            "token_endpoint_auth_methods_supported": token_methods,
            "token_endpoint_auth_signing_alg_values_supported": algs,
            "introspection_endpoint_auth_methods_supported": methods,
            "introspection_endpoint_auth_signing_alg_values_supported": algs,
            "revocation_endpoint_auth_methods_supported": methods,
            "revocation_endpoint_auth_signing_alg_values_supported": algs,
            // RFC 7636 4.2, RFC 9700 2.1.1: S256 only, never plain.
            "code_challenge_methods_supported": ["S256"],
            // RFC 9207 3: every authorization response carries `iss`.
            "authorization_response_iss_parameter_supported": true,
        }))
}
