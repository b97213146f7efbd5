//! The HTTP layer: THE route table, and thin handlers that parse, call one domain function
//! and render.

pub mod authorize;
pub mod health;
pub mod login;
pub mod oauth;
pub mod render;
pub mod session;

use actix_session::SessionMiddleware;
use actix_session::storage::CookieSessionStore;
use actix_web::{HttpResponse, web};

/// Every route of the server. The browser pages sit in a scope with the session cookie;
/// the machine endpoints (token, introspection, revocation, keys, metadata) have no session.
pub fn routes(cfg: &mut web::ServiceConfig, sessions: SessionMiddleware<CookieSessionStore>) {
    let post_only = |path: &str, route: actix_web::Route| {
        web::resource(path)
            .route(route)
            .default_service(web::to(oauth::method_not_allowed))
    };
    cfg.service(post_only("/oauth/token", web::post().to(oauth::token)))
        .service(post_only(
            "/oauth/introspect",
            web::post().to(oauth::introspect),
        ))
        .service(post_only("/oauth/revoke", web::post().to(oauth::revoke)))
        .route("/oauth/jwks.json", web::get().to(oauth::jwks))
        .route(
            "/.well-known/oauth-authorization-server",
            web::get().to(oauth::metadata),
        )
        .route("/healthz", web::get().to(health::healthz))
        .route("/static/portcullis.css", web::get().to(login::stylesheet))
        .service(
            web::scope("")
                .wrap(sessions)
                .route("/", web::get().to(login::home))
                .route("/login", web::get().to(login::login_page))
                .route("/login", web::post().to(login::login))
                .route("/logout", web::post().to(login::logout))
                .route("/oauth/authorize", web::get().to(authorize::authorize))
                .route("/oauth/authorize", web::post().to(authorize::decide)),
        )
        .default_service(web::to(not_found));
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(serde_json::json!({
        "error": "not_found",
        "error_description": "no such endpoint; see /.well-known/oauth-authorization-server"
    }))
}
