//! Liveness and readiness checks for load balancers and orchestrators, and metrics.

use actix_web::{HttpResponse, web};

use crate::AppState;

/// `GET /healthz`: liveness. 200 while the process serves HTTP; it does not touch the
/// database, so a database outage does not get healthy instances restarted.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(serde_json::json!({ "status": "ok" }))
}

/// `GET /readyz`: readiness. 200 when the database answers, 503 otherwise (take the instance
/// out of the load balancer until it answers again).
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    match crate::db::run(&state.pool, crate::db::check).await {
        Ok(()) => HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .json(serde_json::json!({ "status": "ok", "database": "ok" })),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            HttpResponse::ServiceUnavailable()
                .insert_header(("Cache-Control", "no-store"))
                .json(serde_json::json!({ "status": "unavailable", "database": "unreachable" }))
        }
    }
}

/// `GET /metrics`: Prometheus text format. Serve it to your monitoring only (bind or filter it
/// at the load balancer); it names no client but shows traffic and failure counts.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render(&state.pool, state.clients.len()))
}
