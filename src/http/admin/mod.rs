//! The admin area: pages for admins (`admin` may change everything, `readonly` may look).
//! Every page checks the role on the server; every POST checks the CSRF token and, for
//! `readonly`, is refused with 403 whatever the page showed.

pub mod audit;
pub mod client_form;
pub mod clients;
pub mod permissions;
pub mod redirect_uris;
pub mod secrets;
pub mod users;

use actix_session::Session;
use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use futures_util::future::LocalBoxFuture;
use tera::Context;

use crate::AppState;
use crate::client::Client;
use crate::error::AppError;
use crate::http::login::{base_context, csrf_failed, current_user, see_other};
use crate::manage::Actor;
use crate::user::{Role, User};

/// What an admin handler returns: its page, or an early answer (the sign-in redirect, a 403,
/// an error page) through `?`.
pub type Page = Result<HttpResponse, actix_web::Error>;

/// Turns an early answer into the error half of [`Page`].
pub fn stop(response: HttpResponse) -> actix_web::Error {
    actix_web::error::InternalError::from_response("admin page stopped early", response).into()
}

/// `?` for domain results in admin handlers: an error becomes its page (see [`failed`]).
pub trait OrPage<T> {
    /// The value, or the error page.
    fn or_page(self, state: &AppState, session: &Session) -> Result<T, actix_web::Error>;
}

impl<T> OrPage<T> for Result<T, AppError> {
    fn or_page(self, state: &AppState, session: &Session) -> Result<T, actix_web::Error> {
        self.map_err(|e| stop(failed(state, session, &e)))
    }
}

/// What a page needs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Looking: `admin` and `readonly`.
    Read,
    /// Changing: `admin` only.
    Write,
}

/// A signed-in admin-area user.
pub struct Admin {
    /// The user.
    pub user: User,
    /// For the audit log.
    pub actor: Actor,
}

impl Admin {
    /// Whether this user may change things.
    pub fn can_write(&self) -> bool {
        self.user.role == Role::Admin
    }
}

/// The remote address for the audit log: the peer, or the address a configured trusted proxy
/// reports (see `PORTCULLIS_TRUSTED_PROXIES`); a forwarded-for header from anyone else could be
/// forged and is ignored.
fn remote_addr(req: &HttpRequest, state: &AppState) -> String {
    crate::http::client_ip(req, state)
        .map(|ip| ip.to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Checks who is signed in and what they may do; the response to send otherwise.
pub async fn require(
    state: &web::Data<AppState>,
    session: &Session,
    req: &HttpRequest,
    access: Access,
) -> Result<Admin, actix_web::Error> {
    let user = match current_user(state, session).await {
        Ok(Some(u)) => u,
        Ok(None) => {
            let next = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/admin/clients");
            let next = if req.method() == actix_web::http::Method::GET {
                next
            } else {
                "/admin/clients"
            };
            return Err(stop(see_other(&format!(
                "/admin/login?next={}",
                url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
            ))));
        }
        Err(e) => return Err(stop(failed(state, session, &e))),
    };
    let refuse = |heading: &str, message: &str| {
        stop(state.pages.error(
            StatusCode::FORBIDDEN,
            heading,
            message,
            base_context(session, Some(&user.username)),
        ))
    };
    match (user.role, access) {
        (Role::User, _) => Err(refuse(
            "No access to the admin area",
            "Your account can sign in to authorize apps, but not administer portcullis. Ask an administrator for the admin or readonly role.",
        )),
        (Role::Readonly, Access::Write) => Err(refuse(
            "Read-only access",
            "Your account may look at the admin area but not change anything.",
        )),
        _ => Ok(Admin {
            actor: Actor {
                username: user.username.clone(),
                remote_addr: remote_addr(req, state),
            },
            user,
        }),
    }
}

/// A signed-in user who may look at the admin area (`admin` or `readonly`), checked by
/// [`require`] before the handler runs.
pub struct Viewer(pub Admin);

/// A signed-in `admin`, checked by [`require`] before the handler runs (the pages of forms;
/// the form's POST checks its CSRF token with [`require_post`]).
pub struct Editor(pub Admin);

fn extract_admin(
    req: &HttpRequest,
    access: Access,
) -> LocalBoxFuture<'static, Result<Admin, actix_web::Error>> {
    let req = req.clone();
    Box::pin(async move {
        let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
            return Err(actix_web::error::ErrorInternalServerError(
                "no application state",
            ));
        };
        let session = Session::extract(&req).await?;
        require(&state, &session, &req, access).await
    })
}

impl FromRequest for Viewer {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Viewer, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let admin = extract_admin(req, Access::Read);
        Box::pin(async move { admin.await.map(Viewer) })
    }
}

impl FromRequest for Editor {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Editor, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let admin = extract_admin(req, Access::Write);
        Box::pin(async move { admin.await.map(Editor) })
    }
}

/// Like [`require`] with write access, for a POST: the CSRF token is checked first.
pub async fn require_post(
    state: &web::Data<AppState>,
    session: &Session,
    req: &HttpRequest,
    csrf_token: Option<&str>,
) -> Result<Admin, actix_web::Error> {
    if !crate::http::session::csrf_ok(session, csrf_token) {
        return Err(stop(csrf_failed(state, session)));
    }
    require(state, session, req, Access::Write).await
}

/// The context every admin page shares.
pub fn context(session: &Session, admin: &Admin, section: &str) -> Context {
    let mut ctx = base_context(session, Some(&admin.user.username));
    ctx.insert("section", section);
    ctx.insert("can_write", &admin.can_write());
    if let Some(notice) = crate::http::session::take_notice(session) {
        ctx.insert("notice", &notice);
    }
    ctx
}

/// The page for an error: 404 for a missing thing, 400 for bad input, 503 otherwise (logged).
pub fn failed(state: &AppState, session: &Session, e: &AppError) -> HttpResponse {
    let ctx = base_context(session, None);
    match e {
        AppError::NotFound(m) => state
            .pages
            .error(StatusCode::NOT_FOUND, "Not found", m, ctx),
        AppError::Invalid(m) | AppError::Conflict(m) => {
            state
                .pages
                .error(StatusCode::BAD_REQUEST, "That did not work", m, ctx)
        }
        other if other.is_unavailable() => crate::http::render::unavailable_page(state, ctx, other),
        other => {
            tracing::error!(error = %other, "admin request failed");
            state.pages.error(
                StatusCode::SERVICE_UNAVAILABLE,
                "Something went wrong",
                "The server could not complete this request. Try again in a moment.",
                ctx,
            )
        }
    }
}

/// The client named by a public client_id, or a 404.
pub async fn load_client(state: &AppState, client_id: String) -> Result<Client, AppError> {
    crate::http::with_client(state, client_id, |_, client| Ok(client)).await
}

/// A confirmation step before something is deleted.
pub struct Confirm {
    /// The question.
    pub heading: String,
    /// What will happen.
    pub message: String,
    /// Where the confirming form posts.
    pub action: String,
    /// Where Cancel goes.
    pub cancel: String,
    /// The confirming button's label.
    pub confirm_label: &'static str,
}

/// The confirmation page.
pub fn confirm_page(
    state: &AppState,
    session: &Session,
    admin: &Admin,
    section: &str,
    confirm: &Confirm,
) -> HttpResponse {
    let mut ctx = context(session, admin, section);
    ctx.insert("heading", &confirm.heading);
    ctx.insert("message", &confirm.message);
    ctx.insert("action", &confirm.action);
    ctx.insert("cancel", &confirm.cancel);
    ctx.insert("confirm_label", confirm.confirm_label);
    state
        .pages
        .render(StatusCode::OK, "admin/confirm.html", &ctx)
}

/// After a change: a notice for the next page, and a redirect to it (POST/redirect/GET).
pub fn done(session: &Session, notice: &str, location: &str) -> HttpResponse {
    crate::http::session::set_notice(session, notice);
    see_other(location)
}

/// `GET /admin`.
pub async fn index() -> HttpResponse {
    see_other("/admin/clients")
}

/// `GET /admin/login`: the sign-in page, continuing to the admin area.
pub async fn login(state: web::Data<AppState>, session: Session, req: HttpRequest) -> HttpResponse {
    let next = web::Query::<crate::http::login::LoginQuery>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.into_inner().next)
        .filter(|n| n.starts_with("/admin"))
        .unwrap_or_else(|| "/admin/clients".into());
    let next = crate::http::login::safe_next(Some(&next));
    if let Ok(Some(_)) = current_user(&state, &session).await {
        return see_other(&next);
    }
    let mut ctx = base_context(&session, None);
    ctx.insert("next", &next);
    ctx.insert("username", "");
    ctx.insert("app_name", "the portcullis admin area");
    state.pages.render(StatusCode::OK, "login.html", &ctx)
}

/// `GET /static/admin.js`.
pub async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(crate::http::render::ADMIN_SCRIPT)
}

/// The one-time page with a new secret's value (and a copy button).
pub fn secret_shown(
    state: &AppState,
    session: &Session,
    admin: &Admin,
    client: &Client,
    value: &str,
    heading: &str,
) -> HttpResponse {
    let mut ctx = context(session, admin, "clients");
    ctx.insert("client", client);
    ctx.insert("tab", "secrets");
    ctx.insert("heading", heading);
    ctx.insert("secret_value", value);
    ctx.insert("token_endpoint", &format!("{}/oauth/token", state.issuer));
    state
        .pages
        .render(StatusCode::OK, "admin/secret_shown.html", &ctx)
}
