//! Middleware on every request (the others live beside what they protect: sessions, CORS,
//! control characters).

use actix_web::{middleware, web};

use crate::AppState;

/// Records each request in the metrics (endpoint = the matched route pattern) and logs it at
/// debug level: method, path (never the query, which may carry codes), status and duration.
/// Never headers or bodies.
pub async fn observe_request(
    req: actix_web::dev::ServiceRequest,
    next: middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let start = std::time::Instant::now();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let method = req.method().clone();
    let endpoint = req.match_pattern().unwrap_or_else(|| "other".into());
    let debug = tracing::enabled!(tracing::Level::DEBUG);
    let path = debug.then(|| req.path().to_string());
    let res = next.call(req).await?;
    let elapsed = start.elapsed();
    if let Some(state) = state {
        state.metrics.request(
            &endpoint,
            method.as_str(),
            res.status().as_str(),
            elapsed.as_secs_f64(),
        );
    }
    if let Some(path) = path {
        tracing::debug!(%method, %path, status = res.status().as_u16(), micros = elapsed.as_micros() as u64, "request");
    }
    Ok(res)
}
