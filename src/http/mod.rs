//! The HTTP layer: THE route table, and thin handlers that parse, call one domain function
//! and render.

pub mod admin;
pub mod api;
pub mod authorize;
pub mod cors;
pub mod extract;
pub mod health;
pub mod login;
pub mod middleware;
pub mod oauth;
pub mod pages;
pub mod render;
pub mod session;

use actix_session::SessionMiddleware;
use actix_web::{HttpResponse, web};

/// THE route table of the server, nested so that it reads at a glance. The machine endpoints
/// (token, introspection, revocation, keys, metadata, health) and the JSON admin API have no
/// session; the browser pages sit in a scope with the session cookie and
/// [`pages::guard`] (the CSRF token of every POST, the error pages).
///
/// `/metrics` is served here unless `metrics_elsewhere` (`PORTCULLIS_METRICS_BIND`: then only
/// the separate metrics listener serves it, see [`metrics_routes`]).
pub fn routes(
    cfg: &mut web::ServiceConfig,
    sessions: SessionMiddleware<session::DbSessionStore>,
    metrics_elsewhere: bool,
) {
    let post_only = |path: &str, route: actix_web::Route| {
        web::resource(path)
            .route(route)
            .default_service(web::to(oauth::method_not_allowed))
    };
    extractor_configs(cfg);
    if !metrics_elsewhere {
        cfg.route("/metrics", web::get().to(health::metrics));
    }
    cfg.service(post_only("/oauth/token", web::post().to(oauth::token)))
        .service(post_only(
            "/oauth/introspect",
            web::post().to(oauth::authenticated::<oauth::Introspect>),
        ))
        .service(post_only(
            "/oauth/revoke",
            web::post().to(oauth::authenticated::<oauth::Revoke>),
        ))
        .route("/oauth/jwks.json", web::get().to(oauth::jwks))
        .route(
            "/.well-known/oauth-authorization-server",
            web::get().to(oauth::metadata),
        )
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/admin/api/openapi.json", web::get().to(api::openapi_json))
        .service(
            web::scope(api::PREFIX)
                .configure(api::routes)
                .default_service(web::to(api::not_found)),
        )
        .route("/static/portcullis.css", web::get().to(login::stylesheet))
        .route("/static/admin.js", web::get().to(admin::script))
        .service(
            web::scope("")
                .wrap(actix_web::middleware::from_fn(pages::guard))
                .wrap(sessions)
                .route("/", web::get().to(login::home))
                .route("/login", web::get().to(login::login_page))
                .route("/login", web::post().to(login::login))
                .route("/logout", web::post().to(login::logout))
                .route("/oauth/authorize", web::get().to(authorize::authorize))
                .route("/oauth/authorize", web::post().to(authorize::decide))
                .service(web::scope("/admin").configure(admin_routes)),
        )
        .default_service(web::to(not_found));
}

/// The routes of the separate metrics listener: `/metrics` only.
pub fn metrics_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(health::metrics))
        .default_service(web::to(not_found));
}

/// The admin area, below `/admin` (inside the session scope).
fn admin_routes(cfg: &mut web::ServiceConfig) {
    use admin::{audit, clients, users};
    cfg.route("", web::get().to(admin::index))
        .route("/login", web::get().to(admin::login))
        .route("/audit", web::get().to(audit::page))
        .service(
            web::scope("/users")
                .route("", web::get().to(users::list))
                .route("", web::post().to(users::create))
                .service(
                    web::scope("/{id}")
                        .route("/role", web::post().to(users::change_role))
                        .route("/password", web::post().to(users::reset_password))
                        .route("/delete", web::get().to(users::confirm_delete))
                        .route("/delete", web::post().to(users::delete))
                        .route(
                            "/sessions/delete",
                            web::post().to(users::sign_out_everywhere),
                        ),
                ),
        )
        .service(
            web::scope("/clients")
                .route("", web::get().to(clients::list))
                .route("", web::post().to(clients::create))
                .route("/new", web::get().to(clients::new))
                .service(web::scope("/{client_id}").configure(client_routes)),
        );
}

/// The pages of one client, below `/admin/clients/{client_id}`.
fn client_routes(cfg: &mut web::ServiceConfig) {
    use admin::{clients, permissions, redirect_uris, secrets};
    cfg.route("", web::get().to(clients::show))
        .route("", web::post().to(clients::update))
        .route("/permissions", web::get().to(permissions::permissions))
        .route("/token", web::post().to(permissions::generate))
        .route("/usage", web::get().to(permissions::usage))
        .route(
            "/{toggle:enable|disable}",
            web::post().to(clients::set_enabled),
        )
        .route("/delete", web::get().to(clients::confirm_delete))
        .route("/delete", web::post().to(clients::delete))
        .route("/redirect-uris", web::get().to(redirect_uris::list))
        .route("/redirect-uris", web::post().to(redirect_uris::add))
        .route(
            "/redirect-uris/{id}/delete",
            web::post().to(redirect_uris::remove),
        )
        .service(
            web::scope("/secrets")
                .route("", web::get().to(secrets::list))
                .route("", web::post().to(secrets::add))
                .route("/new", web::get().to(secrets::new))
                .route("/{id}", web::post().to(secrets::update))
                .route("/{id}/edit", web::get().to(secrets::edit))
                .route("/{id}/delete", web::get().to(secrets::confirm_delete))
                .route("/{id}/delete", web::post().to(secrets::delete)),
        );
}

/// The remote address for the audit log: [`client_ip`], or `unknown`.
pub fn remote_addr(req: &actix_web::HttpRequest, state: &crate::AppState) -> String {
    client_ip(req, state)
        .map(|ip| ip.to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// The client's address: the peer, or, when the peer is a configured trusted proxy, the last
/// address in the configured header that is not itself a trusted proxy (proxies append the
/// address they saw, so addresses further left could have been written by the client). A
/// forwarded-for header from anyone else is ignored. None when it cannot be told.
pub fn client_ip(
    req: &actix_web::HttpRequest,
    state: &crate::AppState,
) -> Option<std::net::IpAddr> {
    let peer = req.peer_addr()?.ip();
    let trusted = |ip: &std::net::IpAddr| state.trusted_proxies.iter().any(|n| n.contains(ip));
    if !trusted(&peer) {
        return Some(peer);
    }
    // Walk from the right: the rightmost address that is not a trusted proxy. A malformed
    // entry makes the address unknown.
    let mut hops: Vec<std::net::IpAddr> = Vec::new();
    for value in req.headers().get_all(state.client_ip_header.as_str()) {
        for part in value.to_str().ok()?.split(',') {
            hops.push(part.trim().parse().ok()?);
        }
    }
    hops.into_iter().rev().find(|ip| !trusted(ip))
}

/// Where a request-level refusal is answered as JSON in the admin API's shape, as an RFC 6749
/// 5.2 error, or as a page.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Face {
    Api,
    OAuth,
    Page,
}

fn face(path: &str) -> Face {
    if path.starts_with("/admin/api/") {
        Face::Api
    } else if path == "/oauth/authorize" {
        Face::Page
    } else if path.starts_with("/oauth/") || path.starts_with("/.well-known/") {
        Face::OAuth
    } else {
        Face::Page
    }
}

/// A 400 for input refused before any handler ran, in the shape of the endpoint it was sent
/// to: RFC 6749 5.2 `invalid_request` on OAuth endpoints, the API's JSON error on the admin
/// API, an error page (saying `invalid_request`) in the browser pages.
pub fn bad_input(req: &actix_web::HttpRequest, message: &str) -> HttpResponse {
    match face(req.path()) {
        Face::Api => api::invalid(message),
        Face::OAuth => oauth::render(crate::oauth::request::OAuthResponse::invalid_request(
            message,
        )),
        Face::Page => match req.app_data::<web::Data<render::Pages>>() {
            Some(pages) => {
                let mut ctx = tera::Context::new();
                ctx.insert("csrf_token", "");
                ctx.insert("hint", "invalid_request");
                pages.error(
                    actix_web::http::StatusCode::BAD_REQUEST,
                    "Invalid request",
                    message,
                    ctx,
                )
            }
            None => HttpResponse::BadRequest().body(message.to_string()),
        },
    }
}

/// Refuses control characters in the path and query string of every request (see
/// [`crate::text`]), before routing, so no handler and no query ever sees them.
pub async fn refuse_control_characters(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let uri = req.uri();
    if let Err(e) = crate::text::check_request_uri(uri.path(), uri.query().unwrap_or("")) {
        let resp = bad_input(req.request(), &e.to_string());
        return Ok(req.into_response(resp));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// Answers a form, query or JSON body that could not be read (a field failed its
/// [`crate::text`] rule, a JSON field is unknown, ...) with a 400 in the endpoint's shape.
pub fn extractor_configs(cfg: &mut web::ServiceConfig) {
    fn refused(err: impl std::fmt::Display, req: &actix_web::HttpRequest) -> actix_web::Error {
        let message = err.to_string();
        actix_web::error::InternalError::from_response(message.clone(), bad_input(req, &message))
            .into()
    }
    cfg.app_data(web::FormConfig::default().error_handler(refused))
        .app_data(web::QueryConfig::default().error_handler(refused))
        .app_data(web::JsonConfig::default().error_handler(refused))
        .app_data(web::PathConfig::default().error_handler(refused));
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(serde_json::json!({
        "error": "not_found",
        "error_description": "no such endpoint; see /.well-known/oauth-authorization-server"
    }))
}
