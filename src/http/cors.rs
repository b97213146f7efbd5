//! CORS (Fetch standard, "CORS protocol") for browser-based apps (OAuth 2.0 for Browser-Based
//! Applications, draft-ietf-oauth-browser-based-apps 6.3.3; OAuth 2.1 draft, 3.2: the token
//! endpoint must support CORS for such clients). RFC 6749 says nothing about it.
//!
//! - `/oauth/jwks.json` and the metadata are public documents: any origin may read them
//!   (`Access-Control-Allow-Origin: *`).
//! - `/oauth/token` and `/oauth/revoke` answer only origins of a registered redirect URI of an
//!   enabled client ([`crate::client::cors`]), echoed exactly with `Vary: Origin`; never a
//!   wildcard, never `Access-Control-Allow-Credentials` (these endpoints use no cookies).
//!   A preflight from another origin gets no CORS header, so the browser blocks the call.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};

use crate::AppState;

/// Which CORS rule a path follows.
enum Rule {
    /// A public document: any origin, GET.
    Public,
    /// A client endpoint: registered origins only, POST.
    Clients,
}

fn rule(path: &str) -> Option<Rule> {
    match path {
        "/oauth/jwks.json" | "/.well-known/oauth-authorization-server" => Some(Rule::Public),
        "/oauth/token" | "/oauth/revoke" => Some(Rule::Clients),
        _ => None,
    }
}

/// The middleware.
pub async fn cors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(rule) = rule(req.path()) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let allowed: Option<header::HeaderValue> = match (&rule, &origin) {
        (_, None) => None,
        (Rule::Public, Some(_)) => Some(header::HeaderValue::from_static("*")),
        (Rule::Clients, Some(origin)) => {
            let ok = req
                .app_data::<web::Data<AppState>>()
                .is_some_and(|s| s.cors_origins.allows(origin));
            if ok {
                header::HeaderValue::from_str(origin).ok()
            } else {
                None
            }
        }
    };
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut res = if preflight {
        let methods = match rule {
            Rule::Public => "GET",
            Rule::Clients => "POST",
        };
        let mut resp = HttpResponse::new(StatusCode::NO_CONTENT);
        if allowed.is_some() {
            let h = resp.headers_mut();
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                header::HeaderValue::from_static(methods),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                header::HeaderValue::from_static("Authorization, Content-Type, DPoP"),
            );
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                header::HeaderValue::from_static("600"),
            );
        }
        req.into_response(resp)
    } else {
        next.call(req).await?.map_into_boxed_body()
    };
    let h = res.headers_mut();
    if let Some(value) = allowed {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        if !preflight {
            // Let the app read the error details and the throttling hint.
            h.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                header::HeaderValue::from_static("WWW-Authenticate, Retry-After"),
            );
        }
    }
    if matches!(rule, Rule::Clients) {
        // The answer depends on Origin: caches must key on it.
        h.append(header::VARY, header::HeaderValue::from_static("Origin"));
    }
    Ok(res)
}
