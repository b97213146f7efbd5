//! The grants of the token endpoint: client credentials (RFC 6749 4.4), authorization code
//! (RFC 6749 4.1.3) and refresh token (RFC 6749 6), each run through oxide-auth's `code_grant`
//! state machine with our adapters. Every
//! refusal gets the RFC 6749 5.2 error that fits; where oxide-auth's own error differs (a wrong
//! PKCE verifier, a replayed code), the adapter that refused recorded the right one.

use std::borrow::Cow;
use std::cell::RefCell;

use oxide_auth::code_grant::accesstoken::{self, Authorization};
use oxide_auth::code_grant::error::AccessTokenErrorType;
use oxide_auth::code_grant::{client_credentials as cc, refresh};
use oxide_auth::primitives::authorizer::Authorizer;
use oxide_auth::primitives::grant::Extensions;
use oxide_auth::primitives::issuer::Issuer;
use oxide_auth::primitives::registrar::Registrar;

use super::client_auth::Authenticated;
use super::codes::{DbAuthorizer, Decided, OMITTED_REDIRECT_URI, PkceVerifier};
use super::context::OAuthContext;
use super::error::ErrorCode;
use super::issuer::{JwtIssuer, Rotation, StoredAhead};
use super::registrar::DbRegistrar;
use super::request::{ClientAuth, OAuthResponse, TokenRequest};
use super::{Issued, Outcome};
use crate::client::{Client, GrantType};
use crate::db::AnyConnection;

/// The token request as oxide-auth's state machines read it.
struct FlowRequest<'a>(&'a TokenRequest);

impl accesstoken::Request for FlowRequest<'_> {
    fn valid(&self) -> bool {
        true
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        self.0.param("code").map(Cow::Borrowed)
    }

    fn authorization(&self) -> Authorization<'_> {
        match &self.0.auth {
            ClientAuth::Basic { id, secret } => Authorization::UsernamePassword(
                Cow::Borrowed(id.as_str()),
                Cow::Borrowed(secret.as_bytes()),
            ),
            // The registrar verifies the assertion (it knows it is one).
            ClientAuth::Assertion { id, assertion } => Authorization::UsernamePassword(
                Cow::Borrowed(id.as_str()),
                Cow::Borrowed(assertion.as_bytes()),
            ),
            _ => Authorization::None,
        }
    }

    fn client_id(&self) -> Option<Cow<'_, str>> {
        match &self.0.auth {
            ClientAuth::Post { id, .. } | ClientAuth::IdOnly { id } => {
                Some(Cow::Borrowed(id.as_str()))
            }
            _ => None,
        }
    }

    fn redirect_uri(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(
            self.0.param("redirect_uri").unwrap_or(OMITTED_REDIRECT_URI),
        ))
    }

    fn grant_type(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(self.0.grant_type.as_str()))
    }

    fn extension(&self, key: &str) -> Option<Cow<'_, str>> {
        match (&self.0.auth, key) {
            (ClientAuth::Post { secret, .. }, "client_secret") => Some(Cow::Borrowed(secret)),
            (_, "client_secret") => None,
            _ => self.0.param(key).map(Cow::Borrowed),
        }
    }

    fn allow_credentials_in_body(&self) -> bool {
        // RFC 6749 2.3.1: client_secret_post.
        true
    }
}

impl refresh::Request for FlowRequest<'_> {
    fn valid(&self) -> bool {
        true
    }

    fn refresh_token(&self) -> Option<Cow<'_, str>> {
        self.0.param("refresh_token").map(Cow::Borrowed)
    }

    fn scope(&self) -> Option<Cow<'_, str>> {
        self.0.param("scope").map(Cow::Borrowed)
    }

    fn grant_type(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(self.0.grant_type.as_str()))
    }

    /// oxide-auth's refresh flow reads only this: we give it Basic and client_secret_post
    /// alike (a public client, with client_id alone, is checked after the token is found).
    fn authorization(&self) -> Option<(Cow<'_, str>, Cow<'_, [u8]>)> {
        match &self.0.auth {
            ClientAuth::Basic { id, secret } | ClientAuth::Post { id, secret } => {
                Some((Cow::Borrowed(id.as_str()), Cow::Borrowed(secret.as_bytes())))
            }
            _ => None,
        }
    }

    fn extension(&self, key: &str) -> Option<Cow<'_, str>> {
        self.0.param(key).map(Cow::Borrowed)
    }
}

impl cc::Request for FlowRequest<'_> {
    fn valid(&self) -> bool {
        true
    }

    /// Basic, or a JWT assertion (which the registrar verifies as one); client_secret_post
    /// comes through `extension` as oxide-auth expects.
    fn authorization(&self) -> Option<(Cow<'_, str>, Cow<'_, [u8]>)> {
        match &self.0.auth {
            ClientAuth::Basic { id, secret } => {
                Some((Cow::Borrowed(id.as_str()), Cow::Borrowed(secret.as_bytes())))
            }
            ClientAuth::Assertion { id, assertion } => Some((
                Cow::Borrowed(id.as_str()),
                Cow::Borrowed(assertion.as_bytes()),
            )),
            _ => None,
        }
    }

    fn scope(&self) -> Option<Cow<'_, str>> {
        self.0.param("scope").map(Cow::Borrowed)
    }

    fn grant_type(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(self.0.grant_type.as_str()))
    }

    fn extension(&self, key: &str) -> Option<Cow<'_, str>> {
        match (&self.0.auth, key) {
            (ClientAuth::Post { id, .. }, "client_id") => Some(Cow::Borrowed(id)),
            (ClientAuth::Post { secret, .. }, "client_secret") => Some(Cow::Borrowed(secret)),
            (_, "client_id" | "client_secret") => None,
            _ => self.0.param(key).map(Cow::Borrowed),
        }
    }

    fn allow_credentials_in_body(&self) -> bool {
        // RFC 6749 2.3.1: client_secret_post.
        true
    }
}

/// How a grant's flow stores what it does.
enum Storage {
    /// In the caller's transaction, statement by statement (both backends).
    Transaction,
    /// A refresh already decided by one statement outside a transaction, at `now`
    /// (PostgreSQL, issue 13: [`refresh_batched`]).
    Rotated { rotation: Rotation, now: i64 },
    /// A code exchange already decided so, at `now` ([`authorization_code_batched`]).
    Redeemed { decided: Decided, now: i64 },
}

/// oxide-auth's primitives for one token request, built once ([`Adapters::new`]): they share
/// the request's connection (None on the client_credentials fast path) and its [`Outcome`],
/// and serve as the endpoint of all three grant flows.
struct Adapters<'a> {
    registrar: DbRegistrar<'a>,
    authorizer: DbAuthorizer<'a>,
    issuer: JwtIssuer<'a>,
    pkce: PkceVerifier<'a>,
}

impl<'a> Adapters<'a> {
    fn new(
        ctx: &'a OAuthContext<'a>,
        conn: Option<&'a RefCell<&'a mut AnyConnection>>,
        outcome: &'a Outcome,
        req: &'a TokenRequest,
        authenticated: &'a Authenticated,
        now: i64,
        storage: Storage,
    ) -> Adapters<'a> {
        let (decided, rotation) = match storage {
            Storage::Transaction => (None, None),
            Storage::Redeemed { decided, .. } => (Some(decided), None),
            Storage::Rotated { rotation, .. } => (None, Some(rotation)),
        };
        Adapters {
            registrar: DbRegistrar {
                ctx,
                outcome,
                authenticated,
                requested_scope: req.param("scope"),
            },
            authorizer: DbAuthorizer {
                conn,
                outcome,
                now,
                token_redirect_uri: req.param("redirect_uri"),
                authenticated,
                ctx,
                decided: RefCell::new(decided),
            },
            issuer: JwtIssuer {
                ctx,
                conn,
                outcome,
                authenticated,
                now,
                refresh_row: RefCell::new(None),
                rotation: RefCell::new(rotation),
                issued: None,
            },
            pkce: PkceVerifier {
                authenticated,
                outcome,
            },
        }
    }
}

impl cc::Endpoint for Adapters<'_> {
    fn registrar(&self) -> &dyn Registrar {
        &self.registrar
    }
    fn issuer(&mut self) -> &mut dyn Issuer {
        &mut self.issuer
    }
    fn extension(&mut self) -> &mut dyn cc::Extension {
        self
    }
}

impl cc::Extension for Adapters<'_> {
    fn extend(&mut self, _: &dyn cc::Request) -> Result<Extensions, ()> {
        Ok(Extensions::new())
    }
}

impl accesstoken::Endpoint for Adapters<'_> {
    fn registrar(&self) -> &dyn Registrar {
        &self.registrar
    }
    fn authorizer(&mut self) -> &mut dyn Authorizer {
        &mut self.authorizer
    }
    fn issuer(&mut self) -> &mut dyn Issuer {
        &mut self.issuer
    }
    fn extension(&mut self) -> &mut dyn accesstoken::Extension {
        &mut self.pkce
    }
}

impl refresh::Endpoint for Adapters<'_> {
    fn registrar(&self) -> &dyn Registrar {
        &self.registrar
    }
    fn issuer(&mut self) -> &mut dyn Issuer {
        &mut self.issuer
    }
}

/// What to say for an error oxide-auth raised without one of our adapters recording a reason.
fn described(kind: AccessTokenErrorType) -> OAuthResponse {
    let (error, description) = match kind {
        AccessTokenErrorType::InvalidRequest => (
            ErrorCode::InvalidRequest,
            "the request is missing a required parameter or is malformed",
        ),
        AccessTokenErrorType::InvalidClient => {
            return OAuthResponse::invalid_client("client authentication failed", false);
        }
        AccessTokenErrorType::InvalidGrant => (
            ErrorCode::InvalidGrant,
            "the grant is invalid, expired, revoked, or was issued to another client",
        ),
        AccessTokenErrorType::UnauthorizedClient => (
            ErrorCode::UnauthorizedClient,
            "this client may not use this grant type",
        ),
        AccessTokenErrorType::UnsupportedGrantType => (
            ErrorCode::UnsupportedGrantType,
            "this grant type is not supported",
        ),
        // RFC 6749 6: the requested scope may only narrow the original grant.
        AccessTokenErrorType::InvalidScope => (
            ErrorCode::InvalidScope,
            "the requested scope exceeds the scope originally granted (RFC 6749 6)",
        ),
    };
    OAuthResponse::error(400, error, description)
}

/// RFC 6749 5.2 `unauthorized_client`: whether the client may use the grant type it asks the
/// token endpoint for. The one check, made before any grant's flow runs (a code or refresh
/// token of a client that lost the grant afterwards is refused here too).
pub fn permitted(client: &Client, grant: GrantType) -> Result<(), OAuthResponse> {
    if client.allows_grant(grant) {
        return Ok(());
    }
    Err(OAuthResponse::error(
        400,
        ErrorCode::UnauthorizedClient,
        &format!("this client may not use the {} grant", grant.as_str()),
    ))
}

/// Why a flow failed, as far as oxide-auth says (None: a primitive failed, or the flow
/// ignored the request).
type FlowError = Option<AccessTokenErrorType>;

/// Runs one grant's flow with the adapters, then answers: the issued tokens (counted in the
/// metrics and the client's usage), or the recorded or derived error, with the Basic
/// challenge on 401 when the client used Basic (RFC 6749 5.2).
fn run(
    ctx: &OAuthContext<'_>,
    conn: Option<&mut AnyConnection>,
    req: &TokenRequest,
    authenticated: &Authenticated,
    flow: impl FnOnce(&mut Adapters<'_>, &FlowRequest<'_>) -> Result<(), FlowError>,
) -> OAuthResponse {
    run_as(ctx, conn, req, authenticated, Storage::Transaction, flow)
        .unwrap_or_else(OAuthResponse::server_error)
}

/// [`run`], stored as `storage` says; None when one statement stored nothing
/// ([`Outcome::slow_path`]).
fn run_as(
    ctx: &OAuthContext<'_>,
    conn: Option<&mut AnyConnection>,
    req: &TokenRequest,
    authenticated: &Authenticated,
    storage: Storage,
    flow: impl FnOnce(&mut Adapters<'_>, &FlowRequest<'_>) -> Result<(), FlowError>,
) -> Option<OAuthResponse> {
    if let Err(refused) = permitted(&authenticated.client.client, req.grant_type) {
        return Some(refused);
    }
    let now = match &storage {
        Storage::Rotated { now, .. } | Storage::Redeemed { now, .. } => *now,
        Storage::Transaction => ctx.clock.now(),
    };
    let outcome = Outcome::default();
    let cell = conn.map(RefCell::new);
    let mut adapters = Adapters::new(
        ctx,
        cell.as_ref(),
        &outcome,
        req,
        authenticated,
        now,
        storage,
    );
    let result = flow(&mut adapters, &FlowRequest(req));
    if outcome.slow_path.get() {
        return None;
    }
    let issued: Option<Issued> = adapters.issuer.issued.take();
    let mut response = match (result, issued) {
        (Ok(()), Some(issued)) => {
            ctx.metrics.token_issued(req.grant_type.as_str());
            ctx.usage
                .record(authenticated.client.client.id, authenticated.secret_id, now);
            issued.response()
        }
        (result, _) => outcome
            .failure
            .take()
            .or_else(|| result.err().flatten().map(described))
            .unwrap_or_else(OAuthResponse::server_error),
    };
    response.basic_challenge = response.status == 401 && req.auth.is_basic();
    Some(response)
}

/// RFC 6749 4.4: the client credentials grant, for a client that has authenticated. Needs no
/// database and never blocks (the issuer signs in memory), so it runs on the async executor:
/// about 30 us of CPU, mostly the ES256 signature, cheaper than a hand-off to the blocking
/// pool and back.
pub fn client_credentials(
    ctx: &OAuthContext<'_>,
    authenticated: &Authenticated,
    req: &TokenRequest,
) -> OAuthResponse {
    // RFC 6749 4.4: "The client credentials grant type MUST only be used by confidential
    // clients": a public client's client_id alone is not enough.
    if matches!(req.auth, ClientAuth::IdOnly { .. }) {
        return OAuthResponse::invalid_client(
            "client_secret is required: the client_credentials grant is for confidential clients (RFC 6749 4.4)",
            false,
        );
    }
    run(ctx, None, req, authenticated, |adapters, request| {
        // The client acts on its own behalf (RFC 6749 4.4): it is the resource owner, and
        // there is nobody to ask; no refresh token (RFC 6749 4.4.3).
        cc::client_credentials(adapters, request)
            .and_then(|pending| {
                let owner = pending.as_solicitation().pre_grant().client_id.clone();
                pending.issue(adapters, owner, false)
            })
            .map(drop)
            .map_err(|e| match e {
                cc::Error::Invalid(mut d) | cc::Error::Unauthorized(mut d, _) => {
                    Some(d.description().kind())
                }
                cc::Error::Ignore | cc::Error::Primitive(_) => None,
            })
    })
}

/// What a grant decided in one statement ([`authorization_code_batched`], [`refresh_batched`])
/// stores for `client`, chosen now, and the time: refused before anything is stored when the
/// client may not use `grant` (RFC 6749 4.1.3, 6).
fn stored_ahead(
    ctx: &OAuthContext<'_>,
    client: &Client,
    grant: GrantType,
) -> Result<(StoredAhead, i64), OAuthResponse> {
    permitted(client, grant)?;
    let now = ctx.clock.now();
    let ahead =
        StoredAhead::new(ctx, client, now).map_err(|e| OAuthResponse::storage_failed(&e))?;
    Ok((ahead, now))
}

/// [`authorization_code`] on PostgreSQL with the code redeemed and its tokens stored in one
/// statement outside a transaction, with the exchanges of other requests
/// ([`crate::token::store::RedeemBatch`]). Runs on the async executor, as
/// [`refresh_batched`] does. None when the statement redeemed nothing, or when the request is
/// one that only the slow path explains (no code, a malformed verifier, a public client
/// without one): the caller then runs [`authorization_code`] in a transaction, which says why
/// and revokes the family of a replayed code (RFC 6749 4.1.2). A code used twice at once is
/// redeemed by one of the two (the row lock); the other finds it redeemed, so it is the
/// replay, as before.
pub async fn authorization_code_batched(
    ctx: &OAuthContext<'_>,
    req: &TokenRequest,
    authenticated: &Authenticated,
) -> Option<OAuthResponse> {
    let batcher = &ctx.batches?.redeem;
    let code = req.param("code")?;
    let client = &authenticated.client.client;
    let pkce = match req.param("code_verifier") {
        Some(verifier) => Some(super::codes::challenge_answered_by(verifier)?),
        None if super::authorization::request::pkce_required(client) => return None,
        None => None,
    };
    let (ahead, now) = match stored_ahead(ctx, client, GrantType::AuthorizationCode) {
        Ok(ahead) => ahead,
        Err(refused) => return Some(refused),
    };
    let item = ahead.redeem_item(
        code,
        client,
        req.param("redirect_uri"),
        pkce.as_deref(),
        now,
    );
    let redeemed = batcher.run_async(item).await;
    let decided = Decided {
        pkce,
        ahead,
        redeemed,
    };
    let storage = Storage::Redeemed { decided, now };
    run_as(ctx, None, req, authenticated, storage, code_flow)
}

/// oxide-auth's authorization-code flow (RFC 6749 4.1.3) with our adapters.
fn code_flow(adapters: &mut Adapters<'_>, request: &FlowRequest<'_>) -> Result<(), FlowError> {
    accesstoken::access_token(adapters, request)
        .map(drop)
        .map_err(|e| match e {
            accesstoken::Error::Invalid(mut d) | accesstoken::Error::Unauthorized(mut d, _) => {
                Some(d.description().kind())
            }
            accesstoken::Error::Primitive(_) => None,
        })
}

/// oxide-auth's refresh flow (RFC 6749 6) with our adapters.
fn refresh_flow(adapters: &mut Adapters<'_>, request: &FlowRequest<'_>) -> Result<(), FlowError> {
    refresh::refresh(adapters, request)
        .map(drop)
        .map_err(|mut e| e.description().map(|d| d.kind()))
}

/// RFC 6749 4.1.3: exchange an authorization code (with its PKCE verifier) for tokens.
pub fn authorization_code(
    ctx: &OAuthContext<'_>,
    conn: &mut AnyConnection,
    req: &TokenRequest,
    authenticated: &Authenticated,
) -> OAuthResponse {
    if req.param("code").is_none() {
        return OAuthResponse::invalid_request("missing parameter: code (RFC 6749 4.1.3)");
    }
    run(ctx, Some(conn), req, authenticated, code_flow)
}

/// [`refresh_token`] on PostgreSQL with the token found and rotated in one statement outside a
/// transaction, with the refreshes of other requests ([`crate::token::store::RefreshBatch`]),
/// for a request without a `scope` parameter (a narrowed scope is checked only after the token
/// is found). Runs on the async executor: the request waits for its batch with neither a
/// thread nor a connection of its own, then signs in memory as client_credentials does
/// (issue 13). None when the statement rotated nothing: the caller then runs
/// [`refresh_token`] in a transaction, which says why (unknown, expired, another client's,
/// revoked) and revokes the family of a replayed token (RFC 9700 4.14.2). A token used twice
/// at once is rotated by one of the two (the row lock); the other finds it used, so it is the
/// replay, as before.
pub async fn refresh_batched(
    ctx: &OAuthContext<'_>,
    req: &TokenRequest,
    authenticated: &Authenticated,
) -> Option<OAuthResponse> {
    let batcher = &ctx.batches?.refresh;
    let presented = req.param("refresh_token")?;
    if req.param("scope").is_some() {
        return None;
    }
    let client = &authenticated.client.client;
    let (ahead, now) = match stored_ahead(ctx, client, GrantType::RefreshToken) {
        Ok(ahead) => ahead,
        Err(refused) => return Some(refused),
    };
    let item = ahead.refresh_item(presented, client, now)?;
    let rotated = batcher.run_async(item).await;
    let storage = Storage::Rotated {
        rotation: Rotation { ahead, rotated },
        now,
    };
    run_as(ctx, None, req, authenticated, storage, refresh_flow)
}

/// RFC 6749 6: exchange a refresh token for a new access token and a new refresh token.
pub fn refresh_token(
    ctx: &OAuthContext<'_>,
    conn: &mut AnyConnection,
    req: &TokenRequest,
    authenticated: &Authenticated,
) -> OAuthResponse {
    if req.param("refresh_token").is_none() {
        return OAuthResponse::invalid_request("missing parameter: refresh_token (RFC 6749 6)");
    }
    run(ctx, Some(conn), req, authenticated, refresh_flow)
}
