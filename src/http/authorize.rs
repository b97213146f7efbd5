//! `GET/POST /oauth/authorize`: the authorization endpoint's pages (RFC 6749 4.1.1, 4.1.2).
//! The checks and the code live in `oauth::authorization`; this file reads the request,
//! renders and redirects.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::AppState;
use crate::http::login::current_user;
use crate::http::render::Pages;
use crate::http::render::{base_context, see_other};
use crate::http::session;
use crate::oauth::authorization::request::{AuthorizeParams, Refusal, describe_scope};
use crate::oauth::authorization::{self, ConsentPage, Step};

/// 302 Found to the client (RFC 6749 4.1.2, 4.1.2.1).
fn found(location: &url::Url) -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, location.as_str()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

fn unavailable(pages: &Pages, session: &Session, e: &crate::error::AppError) -> HttpResponse {
    if e.is_unavailable() {
        return crate::http::render::unavailable_page(pages, base_context(session, None), e);
    }
    tracing::error!(error = %e, "authorization request failed");
    pages.error(
        StatusCode::SERVICE_UNAVAILABLE,
        "Something went wrong",
        "The server could not handle this request right now. Try again in a moment.",
        base_context(session, None),
    )
}

fn refused(state: &AppState, pages: &Pages, session: &Session, refusal: Refusal) -> HttpResponse {
    match refusal.location(&state.issuer) {
        Some(url) => found(&url),
        // RFC 6749 4.1.2.1: without a trusted redirect URI, tell the user, never redirect.
        None => {
            let Refusal::Page(message) = refusal else {
                return unavailable(
                    pages,
                    session,
                    &crate::error::AppError::Internal("refusal without a location".into()),
                );
            };
            pages.error(
                StatusCode::BAD_REQUEST,
                "This authorization request cannot be completed",
                &message,
                base_context(session, None),
            )
        }
    }
}

fn consent_page(
    pages: &Pages,
    session: &Session,
    username: &str,
    query: &str,
    page: &ConsentPage,
) -> HttpResponse {
    session::set_pending_consent(session, &page.binding);
    let client = &page.client.client;
    let mut ctx = base_context(session, Some(username));
    ctx.insert("client_name", &client.name);
    ctx.insert(
        "client_initial",
        &client
            .name
            .chars()
            .next()
            .map(|c| c.to_uppercase().to_string())
            .unwrap_or_default(),
    );
    ctx.insert("client_description", &client.description);
    ctx.insert("logo_url", &client.logo_url);
    let scopes: Vec<serde_json::Value> = page
        .checked
        .scopes
        .iter()
        .map(|s| serde_json::json!({ "name": s, "text": describe_scope(s) }))
        .collect();
    ctx.insert("scopes", &scopes);
    let host = url::Url::parse(&page.checked.redirect_uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    ctx.insert("redirect_host", &host);
    ctx.insert("form_action", &format!("/oauth/authorize?{query}"));
    pages.render(StatusCode::OK, "consent.html", &ctx)
}

/// To the sign-in page, and back to this request afterwards; `again`: show the page even to a
/// signed-in person (`prompt=login`).
fn sign_in_first(query: &str, again: bool) -> HttpResponse {
    let next = format!("/oauth/authorize?{query}");
    see_other(&format!(
        "/login?next={}{}",
        url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>(),
        if again { "&prompt=login" } else { "" }
    ))
}

/// Back to the client with a new code once it is stored (PostgreSQL's batch, issue 13).
async fn with_code(
    state: &AppState,
    pages: &Pages,
    session: &Session,
    code: crate::oauth::codes::NewCode,
) -> HttpResponse {
    match authorization::store_code(&state.oauth(), code).await {
        Ok(url) => found(&url),
        Err(e) => unavailable(pages, session, &e),
    }
}

/// `GET /oauth/authorize`: check, then sign in, then consent (or a remembered consent), then
/// back to the client with a code.
pub async fn authorize(
    req: HttpRequest,
    state: web::Data<AppState>,
    pages: web::Data<Pages>,
    session: Session,
) -> HttpResponse {
    let query = req.query_string().to_string();
    let params = match AuthorizeParams::parse(&query) {
        Ok(p) => p,
        Err(refusal) => return refused(&state, &pages, &session, refusal),
    };
    let session_user = session::user_id(&session);
    let signed_in_just_now = session_user.is_some()
        && session::take_signed_in_for(
            &session,
            &format!("/oauth/authorize?{query}"),
            state.clock.now(),
        );
    // PostgreSQL, signed in: the step decided on the executor when it can be (a remembered
    // consent's code stored in a batch on condition of that consent, or a refusal of the
    // request; issue 13). Anything else, and SQLite, takes the trip to the database below.
    let decided = match session_user {
        Some(user_id) => {
            authorization::begin_batched(&state.oauth(), &params, user_id, signed_in_just_now).await
        }
        None => Ok(None),
    };
    // The person (still there?) and the step, in one trip to the database. Without a session,
    // on the shared pool: anybody may send this request, and a flood of it must not hold the
    // token endpoint's writes back. With one, on the writer: the step may issue a code, which
    // then shares a commit with the token endpoint's writes (issue 13) instead of contending
    // with them for SQLite's write lock.
    //
    // The session's row proved that the person exists (it is deleted with them, and loaded
    // joined to their row): only the consent page needs more of them, their name.
    let st = state.clone();
    let look_up = move |conn: &mut crate::db::AnyConnection| {
        let step =
            authorization::begin(&st.oauth(), conn, &params, session_user, signed_in_just_now)?;
        let person = match (&step, session_user) {
            (Step::Consent(_), Some(id)) => crate::user::store::find(conn, id)?,
            _ => None,
        };
        Ok((person, step))
    };
    let looked_up = match (decided, session_user) {
        // Never a consent page: that needs the person's name from the database.
        (Ok(Some(step)), _) => Ok((None, step)),
        (Err(e), _) => Err(e),
        (Ok(None), Some(_)) => state.writer.run(look_up).await,
        (Ok(None), None) => crate::db::run(&state.pool, look_up).await,
    };
    match looked_up {
        Ok((_, Step::Refused(refusal))) => refused(&state, &pages, &session, refusal),
        Ok((_, Step::SignIn { again })) => sign_in_first(&query, again),
        Ok((Some(person), Step::Consent(page))) => {
            consent_page(&pages, &session, &person.username, &query, &page)
        }
        Ok((None, Step::Consent(_))) => {
            // The account was deleted since the session was loaded: the session is over.
            session::log_out(&session);
            sign_in_first(&query, false)
        }
        Ok((_, Step::Redirect(url))) => found(&url),
        Ok((_, Step::Issue(code))) => with_code(&state, &pages, &session, *code).await,
        Err(e) => unavailable(&pages, &session, &e),
    }
}

/// The consent form.
#[derive(Deserialize)]
pub struct ConsentForm {
    #[serde(default, deserialize_with = "crate::text::opt_line")]
    decision: Option<String>,
}

/// `POST /oauth/authorize`: the user's Allow or Deny, for the request in the query string
/// (its CSRF token checked before, by [`crate::http::pages::guard`]).
pub async fn decide(
    req: HttpRequest,
    state: web::Data<AppState>,
    pages: web::Data<Pages>,
    session: Session,
    form: web::Form<ConsentForm>,
) -> HttpResponse {
    let query = req.query_string().to_string();
    let params = match AuthorizeParams::parse(&query) {
        Ok(p) => p,
        Err(refusal) => return refused(&state, &pages, &session, refusal),
    };
    let allow = match form.decision.as_deref() {
        Some("allow") => true,
        Some("deny") => false,
        _ => {
            return pages.error(
                StatusCode::BAD_REQUEST,
                "No decision",
                "Choose Allow or Deny.",
                base_context(&session, None),
            );
        }
    };
    let user = match current_user(&state, &session).await {
        Ok(Some(u)) => u,
        Ok(None) => return sign_in_first(&query, false),
        Err(e) => return unavailable(&pages, &session, &e),
    };
    // One use: the same answer cannot be posted twice.
    let binding = session::take_pending_consent(&session);
    let st = state.clone();
    let step = state
        .writer
        .run(move |conn| {
            authorization::decide(
                &st.oauth(),
                conn,
                &params,
                user.id,
                binding.as_deref(),
                allow,
            )
        })
        .await;
    match step {
        Ok(Step::Refused(refusal)) => refused(&state, &pages, &session, refusal),
        Ok(Step::Redirect(url)) => found(&url),
        Ok(Step::Issue(code)) => with_code(&state, &pages, &session, *code).await,
        Ok(Step::SignIn { .. } | Step::Consent(_)) => unavailable(
            &pages,
            &session,
            &crate::error::AppError::Internal("unexpected authorization step".into()),
        ),
        Err(e) => unavailable(&pages, &session, &e),
    }
}
