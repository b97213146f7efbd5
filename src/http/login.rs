//! Sign-in and sign-out pages for people who authorize apps (and for admins).

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use crate::AppState;
use crate::http::render::{Pages, base_context, see_other};
use crate::http::session;

/// The signed-in user, if the session names one that still exists.
pub async fn current_user(
    state: &web::Data<AppState>,
    session: &Session,
) -> Result<Option<crate::user::User>, crate::error::AppError> {
    let Some(id) = session::user_id(session) else {
        return Ok(None);
    };
    let found = crate::db::run(&state.pool, move |conn| crate::user::store::find(conn, id)).await?;
    if found.is_none() {
        session::log_out(session);
    }
    Ok(found)
}

/// Only local paths are followed after login (no open redirect): `/` followed by anything but
/// a second `/` or a backslash.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && !n.chars().any(char::is_control) =>
        {
            n.to_string()
        }
        _ => "/".to_string(),
    }
}

/// Query of `GET /login`.
#[derive(Deserialize)]
pub struct LoginQuery {
    /// Where to go after signing in (a local path).
    pub next: Option<String>,
    /// `login`: show the form even to a signed-in person (an authorization request with
    /// `prompt=login`).
    pub prompt: Option<String>,
}

/// `GET /login`.
pub async fn login_page(
    state: web::Data<AppState>,
    pages: web::Data<Pages>,
    session: Session,
    query: web::Query<LoginQuery>,
) -> HttpResponse {
    let next = safe_next(query.next.as_deref());
    let user = current_user(&state, &session).await.ok().flatten();
    if user.is_some() && query.prompt.as_deref() != Some("login") {
        return see_other(&next);
    }
    login_form(&pages, &session, StatusCode::OK, &next, "", None)
}

/// The sign-in form, with the typed username kept (never the password) and an error above it.
fn login_form(
    pages: &Pages,
    session: &Session,
    status: StatusCode,
    next: &str,
    username: &str,
    error: Option<&str>,
) -> HttpResponse {
    let mut ctx = base_context(session, None);
    ctx.insert("next", next);
    ctx.insert("username", username);
    if let Some(e) = error {
        ctx.insert("error", e);
    }
    pages.render(status, "login.html", &ctx)
}

/// Form of `POST /login`.
#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(deserialize_with = "crate::text::line")]
    username: String,
    password: String,
    #[serde(default, deserialize_with = "crate::text::opt_line")]
    next: Option<String>,
}

/// `POST /login` (its CSRF token checked before, by [`crate::http::pages::guard`]): reserves
/// a failure against the throttle (per username and address, and per username), then checks
/// the password on the bounded argon2 pool.
pub async fn login(
    state: web::Data<AppState>,
    pages: web::Data<Pages>,
    session: Session,
    req: actix_web::HttpRequest,
    form: web::Form<LoginForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let next = safe_next(form.next.as_deref());
    let render_form = |status: StatusCode, error: &str| {
        login_form(&pages, &session, status, &next, &form.username, Some(error))
    };
    let with_retry_after = |mut resp: HttpResponse, wait: i64| {
        if let Ok(v) = header::HeaderValue::from_str(&wait.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    };
    let now = state.clock.now();
    let address = crate::http::client_ip(&req, &state);
    // Counted before the password is checked, so that parallel guesses cannot all pass.
    let reservation = match state.login_throttle.reserve(&form.username, address, now) {
        Ok(r) => r,
        Err(wait) => {
            return with_retry_after(
                render_form(
                    StatusCode::TOO_MANY_REQUESTS,
                    &format!(
                        "Too many failed sign-ins for this username. Wait {wait} seconds and try again."
                    ),
                ),
                wait,
            );
        }
    };
    let username = form.username.clone();
    let found = crate::db::run(&state.pool, move |conn| {
        crate::user::load_login(conn, &username)
    })
    .await;
    let found = match found {
        Ok(found) => found,
        Err(e) => {
            state.login_throttle.release(reservation, false);
            tracing::error!(error = %e, "sign-in failed");
            return render_form(
                StatusCode::SERVICE_UNAVAILABLE,
                "Signing in is not possible right now. Try again in a moment.",
            );
        }
    };
    match crate::user::verify_password(&state.argon2, found, &form.password).await {
        Ok(Some(user)) => {
            state.login_throttle.release(reservation, true);
            let id = user.id;
            if let Err(e) = crate::db::run(&state.pool, move |conn| {
                crate::user::store::record_login(conn, id, now)
            })
            .await
            {
                tracing::warn!(error = %e, "could not record a sign-in time");
            }
            session::log_in(&session, user.id);
            session::mark_signed_in_for(&session, &next, now);
            tracing::info!(user = %user.username, "signed in");
            see_other(&next)
        }
        Ok(None) => render_form(StatusCode::UNAUTHORIZED, "Wrong username or password."),
        Err(crate::argon2_pool::Busy) => {
            state.login_throttle.release(reservation, false);
            let wait = crate::argon2_pool::RETRY_AFTER_SECONDS as i64;
            with_retry_after(
                render_form(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The server is busy. Try again in a moment.",
                ),
                wait,
            )
        }
    }
}

/// `POST /logout` (its CSRF token checked before, by [`crate::http::pages::guard`]).
pub async fn logout(session: Session) -> HttpResponse {
    session::log_out(&session);
    see_other("/login")
}

/// `GET /`: who is signed in.
pub async fn home(
    state: web::Data<AppState>,
    pages: web::Data<Pages>,
    session: Session,
) -> HttpResponse {
    let user = current_user(&state, &session).await.ok().flatten();
    let ctx = base_context(&session, user.as_ref().map(|u| u.username.as_str()));
    pages.render(StatusCode::OK, "home.html", &ctx)
}

/// `GET /static/portcullis.css`.
pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(crate::http::render::STYLESHEET)
}
