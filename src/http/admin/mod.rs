//! The admin area: pages for admins (`admin` may change everything, `readonly` may look).
//! Every page checks the role on the server (the [`Viewer`] and [`Editor`] extractors); every
//! POST's CSRF token is checked before (`http::pages::guard`), and for `readonly` a POST is
//! refused with 403 whatever the page showed.

pub mod audit;
pub mod client_form;
pub mod client_list;
pub mod clients;
pub mod permissions;
pub mod redirect_uris;
pub mod secret_form;
pub mod secrets;
pub mod users;

use std::marker::PhantomData;

use actix_session::Session;
use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, web};
use futures_util::future::LocalBoxFuture;
use tera::Context;

use crate::AppState;
use crate::client::Client;
use crate::http::extract::{Access, Acting, Read, Write};
use crate::http::login::current_user;
use crate::http::render::{PageError, Pages};
use crate::http::render::{base_context, see_other};
use crate::manage::Actor;
use crate::user::{Role, User};

/// What an admin handler returns: its page, or a [`PageError`] (the sign-in redirect, a 403,
/// an error page) through `?`.
pub type Page = Result<HttpResponse, PageError>;

/// Checks who is signed in and whether their role may look (`write` false: `admin` and
/// `readonly`) or change (`write`: `admin`); the user and the actor for the audit log. Only
/// the [`Viewer`] and [`Editor`] extractors call it.
pub(in crate::http) async fn require(
    state: &web::Data<AppState>,
    session: &Session,
    req: &HttpRequest,
    write: bool,
) -> Result<(User, Actor), PageError> {
    let Some(user) = current_user(state, session).await? else {
        let next = match req.uri().path_and_query() {
            Some(p) if req.method() == actix_web::http::Method::GET => p.as_str(),
            _ => "/admin/clients",
        };
        return Err(PageError::SignIn(format!(
            "/admin/login?next={}",
            url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
        )));
    };
    let refuse = |heading, message| PageError::Forbidden {
        username: user.username.clone(),
        heading,
        message,
    };
    match (user.role, write) {
        (Role::User, _) => Err(refuse(
            "No access to the admin area",
            "Your account can sign in to authorize apps, but not administer portcullis. Ask an administrator for the admin or readonly role.",
        )),
        (Role::Readonly, true) => Err(refuse(
            "Read-only access",
            "Your account may look at the admin area but not change anything.",
        )),
        _ => {
            let actor = Actor {
                username: user.username.clone(),
                remote_addr: crate::http::remote_addr(req, state),
            };
            Ok((user, actor))
        }
    }
}

/// The status of a form's page: 200, or 400 when it shows field errors.
pub fn form_status<K, V>(errors: &std::collections::HashMap<K, V>) -> StatusCode {
    if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    }
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

impl<A> AdminUser<A> {
    /// Whether this user may change things.
    pub fn can_write(&self) -> bool {
        self.user.role == Role::Admin
    }

    /// The context every admin page shares: the user, the section, the notice of the last
    /// change (shown once).
    pub fn context(&self, section: &str) -> Context {
        let mut ctx = base_context(&self.session, Some(&self.user.username));
        ctx.insert("section", section);
        ctx.insert("can_write", &self.can_write());
        if let Some(notice) = crate::http::session::take_notice(&self.session) {
            ctx.insert("notice", &notice);
        }
        ctx
    }

    /// The context of a page about one client, on one of its tabs.
    pub fn client_context(&self, client: &Client, tab: &str) -> Context {
        let mut ctx = self.context("clients");
        ctx.insert("client", client);
        ctx.insert("tab", tab);
        ctx
    }

    /// Renders a template.
    pub fn render(&self, status: StatusCode, template: &str, ctx: &Context) -> HttpResponse {
        self.pages.render(status, template, ctx)
    }

    /// After a change: a notice for the next page, and a redirect to it (POST/redirect/GET).
    pub fn done(&self, notice: &str, location: &str) -> HttpResponse {
        crate::http::session::set_notice(&self.session, notice);
        see_other(location)
    }

    /// The confirmation page.
    pub fn confirm(&self, section: &str, confirm: &Confirm) -> HttpResponse {
        let mut ctx = self.context(section);
        ctx.insert("heading", &confirm.heading);
        ctx.insert("message", &confirm.message);
        ctx.insert("action", &confirm.action);
        ctx.insert("cancel", &confirm.cancel);
        ctx.insert("confirm_label", confirm.confirm_label);
        self.render(StatusCode::OK, "admin/confirm.html", &ctx)
    }

    /// The one-time page with a new secret's value (and a copy button).
    pub fn secret_shown(&self, client: &Client, value: &str, heading: &str) -> HttpResponse {
        let mut ctx = self.client_context(client, "secrets");
        ctx.insert("heading", heading);
        ctx.insert("secret_value", value);
        ctx.insert(
            "token_endpoint",
            &format!("{}/oauth/token", self.state.issuer),
        );
        self.render(StatusCode::OK, "admin/secret_shown.html", &ctx)
    }
}

/// `GET /admin`.
pub async fn index() -> HttpResponse {
    see_other("/admin/clients")
}

/// `GET /admin/login`: the sign-in page, continuing to the admin area.
pub async fn login(
    state: web::Data<AppState>,
    pages: web::Data<crate::http::render::Pages>,
    session: Session,
    req: HttpRequest,
) -> HttpResponse {
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
    pages.render(StatusCode::OK, "login.html", &ctx)
}

/// `GET /static/admin.js`.
pub async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(crate::http::render::ADMIN_SCRIPT)
}

/// A signed-in admin-area user whose role allows `A` ([`Viewer`], [`Editor`]). A POST's
/// CSRF token was checked before (by [`crate::http::pages::guard`]).
pub struct AdminUser<A> {
    /// The user.
    pub user: User,
    /// The state and the actor.
    pub acting: Acting,
    /// The session.
    pub session: Session,
    /// The templates.
    pub pages: web::Data<Pages>,
    access: PhantomData<A>,
}

/// A signed-in user who may look at the admin area (`admin` or `readonly`).
pub type Viewer = AdminUser<Read>;

/// A signed-in `admin`.
pub type Editor = AdminUser<Write>;

impl<A> std::ops::Deref for AdminUser<A> {
    type Target = Acting;

    fn deref(&self) -> &Acting {
        &self.acting
    }
}

impl<A: Access> FromRequest for AdminUser<A> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<AdminUser<A>, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = web::Data::<AppState>::extract(&req).await?;
            let pages = web::Data::<Pages>::extract(&req).await?;
            let session = Session::extract(&req).await?;
            let (user, actor) = require(&state, &session, &req, A::WRITE).await?;
            // An error page of this request shows the user's layout.
            req.extensions_mut()
                .insert(crate::http::render::SignedIn(user.username.clone()));
            Ok(AdminUser {
                user,
                acting: Acting { state, actor },
                session,
                pages,
                access: PhantomData,
            })
        })
    }
}
