//! Server-rendered pages: the tera templates, embedded in the binary so that the server runs
//! from any directory. Autoescaping is on for every template (their names end in `.html`).

use actix_session::Session;
use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header;
use tera::{Context, Tera};

use crate::error::AppError;
use crate::http::session;

/// Every template, by name.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/base.html")),
    ("login.html", include_str!("../../templates/login.html")),
    ("consent.html", include_str!("../../templates/consent.html")),
    ("error.html", include_str!("../../templates/error.html")),
    ("home.html", include_str!("../../templates/home.html")),
    (
        "admin/layout.html",
        include_str!("../../templates/admin/layout.html"),
    ),
    (
        "admin/client_head.html",
        include_str!("../../templates/admin/client_head.html"),
    ),
    (
        "admin/clients.html",
        include_str!("../../templates/admin/clients.html"),
    ),
    (
        "admin/client_form.html",
        include_str!("../../templates/admin/client_form.html"),
    ),
    (
        "admin/redirect_uris.html",
        include_str!("../../templates/admin/redirect_uris.html"),
    ),
    (
        "admin/secrets.html",
        include_str!("../../templates/admin/secrets.html"),
    ),
    (
        "admin/secret_form.html",
        include_str!("../../templates/admin/secret_form.html"),
    ),
    (
        "admin/secret_shown.html",
        include_str!("../../templates/admin/secret_shown.html"),
    ),
    (
        "admin/confirm.html",
        include_str!("../../templates/admin/confirm.html"),
    ),
    (
        "admin/audit.html",
        include_str!("../../templates/admin/audit.html"),
    ),
    (
        "admin/permissions.html",
        include_str!("../../templates/admin/permissions.html"),
    ),
    (
        "admin/usage.html",
        include_str!("../../templates/admin/usage.html"),
    ),
    (
        "admin/users.html",
        include_str!("../../templates/admin/users.html"),
    ),
];

/// Progressive JavaScript of the admin area, served at `/static/admin.js`.
pub const ADMIN_SCRIPT: &str = include_str!("../../templates/admin.js");

/// The stylesheet served at `/static/portcullis.css`.
pub const STYLESHEET: &str = include_str!("../../templates/portcullis.css");

/// The parsed templates.
pub struct Pages {
    tera: Tera,
}

impl Pages {
    /// Parses every template; a template error is a start-up error.
    pub fn load() -> Result<Pages, String> {
        let mut tera = Tera::new();
        tera.autoescape_on([".html"]);
        tera.add_raw_templates(TEMPLATES.iter().copied())
            .map_err(|e| format!("template error: {e}"))?;
        Ok(Pages { tera })
    }

    /// Renders a page with a status. A rendering failure is logged and answered with a plain
    /// 500 (it is a bug: the templates are fixed at build time).
    pub fn render(&self, status: StatusCode, name: &str, context: &Context) -> HttpResponse {
        match self.tera.render(name, context) {
            Ok(body) => page_response(status).body(body),
            Err(e) => {
                tracing::error!(template = name, error = %e, "template rendering failed");
                page_response(StatusCode::INTERNAL_SERVER_ERROR)
                    .body("The server could not render this page.")
            }
        }
    }

    /// An error page: a heading and a message, never a redirect.
    pub fn error(
        &self,
        status: StatusCode,
        heading: &str,
        message: &str,
        base: Context,
    ) -> HttpResponse {
        let mut ctx = base;
        ctx.insert("heading", heading);
        ctx.insert("message", message);
        self.render(status, "error.html", &ctx)
    }
}

/// The page shown when the database is unavailable ([`crate::error::AppError::is_unavailable`]):
/// 503 with `Retry-After`, saying that this is temporary.
pub fn unavailable_page(pages: &Pages, ctx: Context, e: &crate::error::AppError) -> HttpResponse {
    tracing::error!(error = %e, "request failed: database unavailable");
    let mut resp = pages.error(
        StatusCode::SERVICE_UNAVAILABLE,
        "Temporarily unavailable",
        "The server cannot reach its database right now. Nothing was changed; try again in a few seconds.",
        ctx,
    );
    resp.headers_mut().insert(
        actix_web::http::header::RETRY_AFTER,
        actix_web::http::header::HeaderValue::from(crate::error::UNAVAILABLE_RETRY_AFTER),
    );
    resp
}

/// Who the admin extractor found signed in, kept in the request's extensions so that an error
/// page of the request shows their layout.
#[derive(Clone)]
pub struct SignedIn(pub String);

/// What a browser page answers instead of itself. Handlers and extractors return it (`?` turns
/// an [`AppError`] into one); [`crate::http::pages::guard`], the session scope's middleware,
/// renders it as an HTML page with the request's templates and session.
#[derive(Debug)]
pub enum PageError {
    /// A domain error: 404 for a missing thing, 400 for bad input, 503 otherwise (logged).
    App(AppError),
    /// Nobody is signed in: 303 to this sign-in page.
    SignIn(String),
    /// Signed in, but the role does not allow it: 403 in the user's layout.
    Forbidden {
        /// Who is signed in.
        username: String,
        /// The page's heading.
        heading: &'static str,
        /// What to do about it.
        message: &'static str,
    },
    /// A form POST without the session's CSRF token: 403.
    Csrf,
}

impl From<AppError> for PageError {
    fn from(e: AppError) -> PageError {
        PageError::App(e)
    }
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PageError::App(e) => write!(f, "{e}"),
            PageError::SignIn(_) => f.write_str("not signed in"),
            PageError::Forbidden { heading, .. } => f.write_str(heading),
            PageError::Csrf => f.write_str("CSRF token missing or wrong"),
        }
    }
}

impl actix_web::ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            PageError::App(AppError::NotFound(_)) => StatusCode::NOT_FOUND,
            PageError::App(AppError::Invalid(_) | AppError::Conflict(_)) => StatusCode::BAD_REQUEST,
            PageError::App(_) => StatusCode::SERVICE_UNAVAILABLE,
            PageError::SignIn(_) => StatusCode::SEE_OTHER,
            PageError::Forbidden { .. } | PageError::Csrf => StatusCode::FORBIDDEN,
        }
    }

    /// A bare answer with the right status; the page itself is rendered by
    /// [`crate::http::pages::guard`], which has the templates and the session.
    fn error_response(&self) -> HttpResponse {
        match self {
            PageError::SignIn(location) => see_other(location),
            other => page_response(other.status_code()).body(other.to_string()),
        }
    }
}

impl PageError {
    /// The page for this error, in the layout of `user` (who is signed in, when known).
    pub fn render(
        &self,
        pages: &Pages,
        session: &actix_session::Session,
        user: Option<&str>,
    ) -> HttpResponse {
        let base = |user: Option<&str>| base_context(session, user);
        match self {
            PageError::App(AppError::NotFound(m)) => {
                pages.error(StatusCode::NOT_FOUND, "Not found", m, base(user))
            }
            PageError::App(AppError::Invalid(m) | AppError::Conflict(m)) => {
                pages.error(StatusCode::BAD_REQUEST, "That did not work", m, base(user))
            }
            PageError::App(e) if e.is_unavailable() => unavailable_page(pages, base(user), e),
            PageError::App(e) => {
                tracing::error!(error = %e, "page request failed");
                pages.error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Something went wrong",
                    "The server could not complete this request. Try again in a moment.",
                    base(user),
                )
            }
            PageError::SignIn(location) => see_other(location),
            PageError::Forbidden {
                username,
                heading,
                message,
            } => pages.error(StatusCode::FORBIDDEN, heading, message, base(Some(username))),
            PageError::Csrf => pages.error(
                StatusCode::FORBIDDEN,
                "Request refused",
                "This form has expired or did not come from this site. Go back, reload the page and try again.",
                base(None),
            ),
        }
    }
}

/// Headers every HTML page carries: no caching (pages hold CSRF tokens and personal data), no
/// framing (clickjacking of the consent page, RFC 6749 10.13), and a strict CSP.
pub fn page_response(status: StatusCode) -> actix_web::HttpResponseBuilder {
    let mut b = HttpResponse::build(status);
    b.content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header((
            "Content-Security-Policy",
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https: http:; form-action 'self' https: http:; frame-ancestors 'none'; base-uri 'none'",
        ));
    b
}

/// The page context every page shares: the signed-in user's name and the CSRF token.
pub fn base_context(session: &Session, username: Option<&str>) -> Context {
    let mut ctx = Context::new();
    ctx.insert("csrf_token", &session::csrf_token(session));
    if let Some(u) = username {
        ctx.insert("current_user", u);
    }
    ctx
}

/// 303 See Other to a local path.
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// Turns the opaque 500 actix-session answers when a session cannot be loaded because the
/// database is unavailable into the readable 503 page (with `Retry-After`) the rest of the
/// browser area shows. Wraps the session middleware.
pub async fn unavailable_sessions(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let pages = req.app_data::<actix_web::web::Data<Pages>>().cloned();
    match next.call(req).await {
        // actix-session keeps the cause only in the error's Debug output.
        Err(e) if format!("{e:?}").contains(crate::http::session::UNAVAILABLE_MARK) => {
            match pages {
                Some(pages) => Err(SessionsUnavailable(pages).into()),
                None => Err(e),
            }
        }
        other => other,
    }
}

/// The error [`unavailable_sessions`] answers with: it renders the 503 page.
struct SessionsUnavailable(actix_web::web::Data<Pages>);

impl std::fmt::Debug for SessionsUnavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(crate::http::session::UNAVAILABLE_MARK)
    }
}

impl std::fmt::Display for SessionsUnavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(crate::http::session::UNAVAILABLE_MARK)
    }
}

impl actix_web::ResponseError for SessionsUnavailable {
    fn status_code(&self) -> actix_web::http::StatusCode {
        actix_web::http::StatusCode::SERVICE_UNAVAILABLE
    }

    fn error_response(&self) -> actix_web::HttpResponse {
        let mut ctx = tera::Context::new();
        ctx.insert("csrf_token", "");
        unavailable_page(
            &self.0,
            ctx,
            &crate::error::AppError::Internal(crate::http::session::UNAVAILABLE_MARK.into()),
        )
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_template_parses() {
        if let Err(e) = super::Pages::load() {
            panic!("{e}");
        }
    }

    #[test]
    fn every_template_file_is_embedded() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let mut dirs = vec![root.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "html") {
                    let name = path
                        .strip_prefix(&root)
                        .unwrap()
                        .to_string_lossy()
                        .replace('\\', "/");
                    assert!(
                        super::TEMPLATES.iter().any(|(n, _)| *n == name),
                        "templates/{name} is not in TEMPLATES"
                    );
                }
            }
        }
    }
}
