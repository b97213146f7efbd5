//! The browser pages' guard: the one middleware of the session scope (sign-in, sign-out, the
//! consent form, the admin area). It checks the CSRF token of every POST before any handler
//! runs, so no form can forget it (RFC 6749 10.12 requires it of the consent form), and it renders every [`PageError`] a handler or an
//! extractor answered with, with the request's templates and session.

use actix_session::SessionExt;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, web};

use crate::http::render::{PageError, Pages, SignedIn};

/// The form field that carries the session's CSRF token.
const CSRF_FIELD: &str = "csrf_token";

/// The middleware: a POST to a route whose form lacks the session's CSRF token is refused
/// with 403 (nothing else runs; a POST to no route at all stays a 404); an answer carrying a
/// [`PageError`] becomes its page.
pub async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if req.method() == Method::POST && req.match_pattern().is_some() {
        let body = match req.extract::<web::Bytes>().await {
            Ok(body) => body,
            Err(e) => {
                let resp = crate::http::bad_input(req.request(), &e.to_string());
                return Ok(req.into_response(resp));
            }
        };
        let submitted = url::form_urlencoded::parse(&body)
            .find(|(k, _)| k == CSRF_FIELD)
            .map(|(_, v)| v.into_owned());
        // The handler reads the form again.
        req.set_payload(actix_web::dev::Payload::from(body));
        if !crate::http::session::csrf_ok(&req.get_session(), submitted.as_deref()) {
            let resp = render(req.request(), &PageError::Csrf);
            return Ok(req.into_response(resp));
        }
    }
    let res = next.call(req).await?;
    let page = res
        .response()
        .error()
        .and_then(|e| e.as_error::<PageError>())
        .map(|e| render(res.request(), e));
    Ok(match page {
        Some(page) => res.into_response(page),
        None => res.map_into_boxed_body(),
    })
}

fn render(req: &actix_web::HttpRequest, e: &PageError) -> HttpResponse {
    let user = req.extensions().get::<SignedIn>().map(|u| u.0.clone());
    match req.app_data::<web::Data<Pages>>() {
        Some(pages) => e.render(pages, &req.get_session(), user.as_deref()),
        None => actix_web::ResponseError::error_response(e),
    }
}
