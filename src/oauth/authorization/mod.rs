//! The authorization endpoint (RFC 6749 4.1.1, 4.1.2) behind the HTTP handlers: the request
//! is judged once ([`request::check`]), then this asks who is signed in and what they
//! approved before, and issues the code for the checked request
//! ([`crate::oauth::codes::new_code`], stored inline on SQLite and in a batch by
//! [`store_code`] on PostgreSQL).

pub mod request;

use std::sync::Arc;

use super::context::OAuthContext;
use crate::client::ScopeSet;
use crate::client::cache::CachedClient;
use crate::db::AnyConnection;
use crate::error::AppError;
use crate::ids::UserId;
use crate::oauth::error::ErrorCode;
use request::{AuthorizeParams, Checked, Prompt, Refusal, check, with_iss};

/// What the authorization endpoint does next.
pub enum Step {
    /// Refuse: an error page, or a redirect with an error (RFC 6749 4.1.2.1).
    Refused(Refusal),
    /// Sign in first, then come back; `again` when a person who is signed in must enter
    /// their password anyway (`prompt=login`).
    SignIn {
        /// Show the sign-in page even to a signed-in person.
        again: bool,
    },
    /// Ask the signed-in user.
    Consent(Box<ConsentPage>),
    /// Send the user back to the client with a code (RFC 6749 4.1.2).
    Redirect(url::Url),
    /// The same, once the code is stored (PostgreSQL: in a batch, awaited on the async
    /// executor with [`store_code`], issue 13).
    Issue(Box<super::codes::NewCode>),
}

/// Stores the code of a [`Step::Issue`] with other requests' in one statement
/// ([`crate::token::store::IssueBatch`]), awaited on the async executor, and returns the
/// redirect that sends the person back with it (RFC 6749 4.1.2, RFC 9207 2).
pub async fn store_code(
    ctx: &OAuthContext<'_>,
    code: super::codes::NewCode,
) -> Result<url::Url, AppError> {
    let Some(batches) = ctx.batches else {
        return Err(AppError::Internal(
            "a code to store in a batch, without batches".into(),
        ));
    };
    match batches.issue.run_async(code.row).await? {
        Some(()) => Ok(with_iss(code.redirect, ctx.issuer)),
        None => Err(AppError::Internal("a code was not stored".into())),
    }
}

/// [`begin`] for a signed-in person on PostgreSQL, on the async executor, when the step needs
/// no read of its own (issue 13): the client from the cache and the request judged in memory
/// by the rules `begin` applies ([`request::check`], [`signed_in`], [`must_ask`]). A refusal
/// or a sign-in is that step; a request that a remembered consent may answer gets its code
/// stored in a batch on the condition, decided by the database in the same statement, that
/// the person's remembered consent covers its scopes ([`crate::token::store::IssueBatch`]),
/// and is the redirect back to the client with it (RFC 6749 4.1.2, RFC 9207 2). One statement
/// instead of the consent's read on a pooled connection and then the code's insert, and a
/// flood of bad requests costs no connection. None when [`begin`] must decide: no batches
/// (SQLite), the client not in the cache, a page to show (the consent page, which needs the
/// consent's read and the person's name), or a consent that does not cover the request
/// (nothing was stored then). Never [`Step::Consent`].
pub async fn begin_batched(
    ctx: &OAuthContext<'_>,
    params: &AuthorizeParams,
    user_id: UserId,
    signed_in_just_now: bool,
) -> Result<Option<Step>, AppError> {
    let Some(batches) = ctx.batches else {
        return Ok(None);
    };
    let Some(Some(client)) = params
        .client_id
        .as_deref()
        .and_then(|id| ctx.clients.lookup(id))
    else {
        return Ok(None);
    };
    let checked = match check(params, Some(&client.client)) {
        Ok(checked) => checked,
        Err(refusal) => return Ok(Some(Step::Refused(refusal))),
    };
    if let Err(step) = signed_in(&checked, Some(user_id), signed_in_just_now) {
        return Ok(Some(step));
    }
    // Asked even when everything requested was approved before (a public client,
    // `prompt=consent`): the page, which `begin` shows.
    if must_ask(
        client.client.public,
        checked.prompt,
        Some(&checked.scopes),
        &checked.scopes,
    ) {
        return Ok(None);
    }
    let mut code = super::codes::new_code(&client.client, &checked, user_id, ctx.clock.now())?;
    code.row.only_if_approved = true;
    Ok(batches
        .issue
        .run_async(code.row)
        .await?
        .map(|()| Step::Redirect(with_iss(code.redirect, ctx.issuer))))
}

/// What the consent page shows, and the binding that its answer must carry.
pub struct ConsentPage {
    /// The client asking.
    pub client: Arc<CachedClient>,
    /// The checked request.
    pub checked: Checked,
    /// Binds the decision to this exact request and user (kept in the session).
    pub binding: String,
}

/// Binds a consent decision to the request it was shown for: user, client, redirect URI,
/// scopes, state and PKCE challenge. A decision posted for any other request does not match.
pub fn consent_binding(user_id: UserId, client_id: &str, checked: &Checked) -> String {
    let material = serde_json::json!([
        user_id,
        client_id,
        checked.redirect_uri,
        checked.scopes,
        checked.state,
        checked.code_challenge,
    ]);
    crate::crypto::sha256_tagged(material.to_string().as_bytes())
}

fn checked_request(
    ctx: &OAuthContext<'_>,
    conn: &mut AnyConnection,
    params: &AuthorizeParams,
) -> Result<Result<(Arc<CachedClient>, Checked), Refusal>, AppError> {
    let client = match params.client_id.as_deref() {
        Some(id) => ctx.clients.load(conn, id)?,
        None => None,
    };
    let checked = check(params, client.as_ref().map(|c| &c.client));
    // `check` passes only with a client, so the pair is always complete when it passes.
    Ok(match (checked, client) {
        (Ok(checked), Some(client)) => Ok((client, checked)),
        (Err(refusal), _) => Err(refusal),
        (Ok(_), None) => Err(Refusal::Page(
            "The application that sent you here is not registered with this server.".into(),
        )),
    })
}

/// Whether the person must be asked: always for a public client (its client_id proves
/// nothing, so a remembered consent would hand a code to whoever crafts the request with their
/// own PKCE challenge: RFC 8252 8.6, RFC 6819 5.2.3.2), always with `prompt=consent`, and
/// otherwise unless the person approved these scopes before.
pub fn must_ask(
    public: bool,
    prompt: Prompt,
    approved: Option<&ScopeSet>,
    requested: &ScopeSet,
) -> bool {
    public || prompt.consent || !approved.is_some_and(|a| crate::consent::covers(a, requested))
}

/// Who is asking, once the request is checked: the signed-in person, or the step that comes
/// first (sign in, or a refusal when `prompt=none` forbids the page).
fn signed_in(
    checked: &Checked,
    user_id: Option<UserId>,
    signed_in_just_now: bool,
) -> Result<UserId, Step> {
    // OpenID Connect Core 3.1.2.1 `prompt=login`: sign in again even with a live session.
    if checked.prompt.login && !signed_in_just_now {
        return Err(Step::SignIn { again: true });
    }
    let Some(user_id) = user_id else {
        if checked.prompt.none {
            // OpenID Connect Core 3.1.2.6: no page may be shown, and sign-in is needed.
            return Err(Step::Refused(checked.refuse(
                ErrorCode::LoginRequired,
                "the user is not signed in, and prompt=none forbids showing the sign-in page",
            )));
        }
        return Err(Step::SignIn { again: false });
    };
    Ok(user_id)
}

/// A GET of the authorization endpoint. `signed_in_just_now`: the person entered their password
/// for exactly this request (what `prompt=login` asks for).
pub fn begin(
    ctx: &OAuthContext<'_>,
    conn: &mut AnyConnection,
    params: &AuthorizeParams,
    user_id: Option<UserId>,
    signed_in_just_now: bool,
) -> Result<Step, AppError> {
    let (client, checked) = match checked_request(ctx, conn, params)? {
        Ok(ok) => ok,
        Err(refusal) => return Ok(Step::Refused(refusal)),
    };
    let prompt = checked.prompt;
    let user_id = match signed_in(&checked, user_id, signed_in_just_now) {
        Ok(user_id) => user_id,
        Err(step) => return Ok(step),
    };
    let approved = crate::consent::store::approved(conn, user_id, client.client.id)?;
    if !must_ask(
        client.client.public,
        prompt,
        approved.as_ref(),
        &checked.scopes,
    ) {
        return issue_code(ctx, conn, &client, &checked, user_id);
    }
    if prompt.none {
        // OpenID Connect Core 3.1.2.6: the consent page would be needed.
        return Ok(Step::Refused(checked.refuse(
            ErrorCode::ConsentRequired,
            "the user must approve this request, and prompt=none forbids showing the consent page",
        )));
    }
    let binding = consent_binding(user_id, &client.client.client_id, &checked);
    Ok(Step::Consent(Box::new(ConsentPage {
        client,
        checked,
        binding,
    })))
}

/// The user's answer on the consent page. `binding` is what the session remembered for the
/// page it showed; the request is checked again from scratch.
pub fn decide(
    ctx: &OAuthContext<'_>,
    conn: &mut AnyConnection,
    params: &AuthorizeParams,
    user_id: UserId,
    binding: Option<&str>,
    allow: bool,
) -> Result<Step, AppError> {
    let (client, checked) = match checked_request(ctx, conn, params)? {
        Ok(ok) => ok,
        Err(refusal) => return Ok(Step::Refused(refusal)),
    };
    if binding != Some(consent_binding(user_id, &client.client.client_id, &checked).as_str()) {
        return Ok(Step::Refused(Refusal::Page(
            "This answer does not belong to the authorization request it was sent with, or it was already used. Go back to the application and start again.".into(),
        )));
    }
    if !allow {
        // RFC 6749 4.1.2.1: the resource owner denied the request.
        return Ok(Step::Refused(Refusal::Redirect {
            redirect_uri: checked.redirect_uri,
            error: ErrorCode::AccessDenied,
            description: "the user denied the request".into(),
            state: checked.state,
        }));
    }
    crate::consent::store::remember(
        conn,
        user_id,
        client.client.id,
        &checked.scopes,
        ctx.clock.now(),
    )?;
    issue_code(ctx, conn, &client, &checked, user_id)
}

/// Issues the code for an approved, checked request and returns the redirect to the client
/// with `code`, `state` and `iss` (RFC 6749 4.1.2, RFC 9207 2).
fn issue_code(
    ctx: &OAuthContext<'_>,
    conn: &mut AnyConnection,
    client: &CachedClient,
    checked: &Checked,
    user_id: UserId,
) -> Result<Step, AppError> {
    let code = super::codes::new_code(&client.client, checked, user_id, ctx.clock.now())?;
    if ctx.batches.is_some() {
        return Ok(Step::Issue(Box::new(code)));
    }
    let url = super::codes::issue(conn, code)?;
    Ok(Step::Redirect(with_iss(url, ctx.issuer)))
}
