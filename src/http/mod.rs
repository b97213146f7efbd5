//! The HTTP layer: THE route table, and thin handlers that parse, call one domain function
//! and render.

pub mod health;
pub mod login;
pub mod oauth;
pub mod render;
pub mod session;

use actix_web::{HttpResponse, web};

/// Every route of the server.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/oauth/token")
            .route(web::post().to(oauth::token))
            .default_service(web::to(oauth::method_not_allowed)),
    )
    .route("/oauth/jwks.json", web::get().to(oauth::jwks))
    .route(
        "/.well-known/oauth-authorization-server",
        web::get().to(oauth::metadata),
    )
    .route("/healthz", web::get().to(health::healthz))
    .route("/", web::get().to(login::home))
    .route("/login", web::get().to(login::login_page))
    .route("/login", web::post().to(login::login))
    .route("/logout", web::post().to(login::logout))
    .route("/static/portcullis.css", web::get().to(login::stylesheet))
    .default_service(web::to(not_found));
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(serde_json::json!({
        "error": "not_found",
        "error_description": "no such endpoint; see /.well-known/oauth-authorization-server"
    }))
}
