//! The grants of the token endpoint: client credentials (RFC 6749 4.4), authorization code
//! (RFC 6749 4.1.3) and refresh token (RFC 6749 6), each run through oxide-auth's `code_grant`
//! state machine with our adapters. Every
//! refusal gets the RFC 6749 5.2 error that fits; where oxide-auth's own error differs (a wrong
//! PKCE verifier, a replayed code), the adapter that refused recorded the right one.

use crate::oauth::error::ErrorCode;
use std::borrow::Cow;
use std::cell::RefCell;

use oxide_auth::code_grant::accesstoken::{self, Authorization};
use oxide_auth::code_grant::error::AccessTokenErrorType;
use oxide_auth::code_grant::{client_credentials as cc, refresh};
use oxide_auth::primitives::authorizer::Authorizer;
use oxide_auth::primitives::grant::Extensions;
use oxide_auth::primitives::issuer::Issuer;
use oxide_auth::primitives::registrar::Registrar;

use super::Outcome;
use super::client_auth::Authenticated;
use super::codes::{DbAuthorizer, OMITTED_REDIRECT_URI, PkceVerifier};
use super::issuer::JwtIssuer;
use super::registrar::DbRegistrar;
use super::request::{ClientAuth, OAuthResponse, TokenRequest};
use crate::AppState;
use crate::client::GrantType;
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

struct CredentialsEndpoint<'a> {
    registrar: DbRegistrar<'a>,
    issuer: JwtIssuer<'a>,
}

impl cc::Endpoint for CredentialsEndpoint<'_> {
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

impl cc::Extension for CredentialsEndpoint<'_> {
    fn extend(&mut self, _: &dyn cc::Request) -> Result<Extensions, ()> {
        Ok(Extensions::new())
    }
}

struct CodeEndpoint<'a> {
    registrar: DbRegistrar<'a>,
    authorizer: DbAuthorizer<'a>,
    issuer: JwtIssuer<'a>,
    pkce: PkceVerifier<'a>,
}

impl accesstoken::Endpoint for CodeEndpoint<'_> {
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

struct RefreshEndpoint<'a> {
    registrar: DbRegistrar<'a>,
    issuer: JwtIssuer<'a>,
}

impl refresh::Endpoint for RefreshEndpoint<'_> {
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

/// The response of a flow: the issued tokens, or the recorded or derived error, with the
/// Basic challenge on 401 when the client used Basic (RFC 6749 5.2).
fn respond(
    state: &AppState,
    outcome: &Outcome,
    req: &TokenRequest,
    ok: bool,
    kind: Option<AccessTokenErrorType>,
    now: i64,
) -> OAuthResponse {
    let issued = outcome.issued.borrow();
    let mut response = match (ok, issued.as_ref()) {
        (true, Some(issued)) => {
            state.metrics.token_issued(req.grant_type.as_str());
            if let Some(cached) = outcome.client.borrow().as_ref() {
                state
                    .usage
                    .record(cached.client.id, outcome.secret_id.get(), now);
            }
            issued.response()
        }
        _ => outcome
            .failure
            .take()
            .or_else(|| kind.map(described))
            .unwrap_or_else(OAuthResponse::server_error),
    };
    response.basic_challenge = response.status == 401 && req.auth.is_basic();
    response
}

/// The registrar and issuer of a grant flow, sharing the request's connection.
fn adapters<'a>(
    state: &'a AppState,
    cell: &'a RefCell<&'a mut AnyConnection>,
    outcome: &'a Outcome,
    grant: GrantType,
    authenticated: &'a Authenticated,
    now: i64,
) -> (DbRegistrar<'a>, JwtIssuer<'a>) {
    (
        DbRegistrar::for_client(state, Some(cell), outcome, grant, authenticated),
        JwtIssuer {
            conn: Some(cell),
            state,
            outcome,
            now,
            request_client_id: Some(authenticated.client.client.client_id.as_str()),
        },
    )
}

/// RFC 6749 4.4: the client credentials grant, for a client that has authenticated. Needs no
/// database and never blocks (the issuer signs in memory), so it runs on the async executor:
/// about 30 us of CPU, mostly the ES256 signature, cheaper than a hand-off to the blocking
/// pool and back.
pub fn client_credentials(
    state: &AppState,
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
    let now = state.clock.now();
    let outcome = Outcome::default();
    let result = {
        let mut endpoint = CredentialsEndpoint {
            registrar: DbRegistrar::for_client(
                state,
                None,
                &outcome,
                GrantType::ClientCredentials,
                authenticated,
            ),
            issuer: JwtIssuer {
                conn: None,
                state,
                outcome: &outcome,
                now,
                request_client_id: Some(authenticated.client.client.client_id.as_str()),
            },
        };
        // The client acts on its own behalf (RFC 6749 4.4): it is the resource owner, and
        // there is nobody to ask; no refresh token (RFC 6749 4.4.3).
        cc::client_credentials(&mut endpoint, &FlowRequest(req)).and_then(|pending| {
            let owner = pending.as_solicitation().pre_grant().client_id.clone();
            pending.issue(&mut endpoint, owner, false)
        })
    };
    let kind = match result {
        Ok(_) => None,
        Err(cc::Error::Invalid(mut d)) | Err(cc::Error::Unauthorized(mut d, _)) => {
            Some(d.description().kind())
        }
        Err(cc::Error::Ignore | cc::Error::Primitive(_)) => None,
    };
    respond(
        state,
        &outcome,
        req,
        outcome.issued.borrow().is_some(),
        kind,
        now,
    )
}

/// RFC 6749 4.1.3: exchange an authorization code (with its PKCE verifier) for tokens.
pub fn authorization_code(
    state: &AppState,
    conn: &mut AnyConnection,
    req: &TokenRequest,
    authenticated: &Authenticated,
) -> OAuthResponse {
    if req.param("code").is_none() {
        return OAuthResponse::invalid_request("missing parameter: code (RFC 6749 4.1.3)");
    }
    let now = state.clock.now();
    let outcome = Outcome::default();
    let cell = RefCell::new(conn);
    let result = {
        let (registrar, issuer) = adapters(
            state,
            &cell,
            &outcome,
            GrantType::AuthorizationCode,
            authenticated,
            now,
        );
        let mut endpoint = CodeEndpoint {
            registrar,
            issuer,
            authorizer: DbAuthorizer {
                conn: &cell,
                outcome: &outcome,
                now,
                redirect_uri_given: false,
                redirect_uri: None,
                token_redirect_uri: req.param("redirect_uri"),
            },
            pkce: PkceVerifier { outcome: &outcome },
        };
        accesstoken::access_token(&mut endpoint, &FlowRequest(req))
    };
    match result {
        Ok(_) => respond(state, &outcome, req, true, None, now),
        Err(accesstoken::Error::Invalid(mut d)) => {
            let kind = d.description().kind();
            respond(state, &outcome, req, false, Some(kind), now)
        }
        Err(accesstoken::Error::Unauthorized(mut d, _)) => {
            let kind = d.description().kind();
            respond(state, &outcome, req, false, Some(kind), now)
        }
        Err(accesstoken::Error::Primitive(_)) => respond(state, &outcome, req, false, None, now),
    }
}

/// RFC 6749 6: exchange a refresh token for a new access token and a new refresh token.
pub fn refresh_token(
    state: &AppState,
    conn: &mut AnyConnection,
    req: &TokenRequest,
    authenticated: &Authenticated,
) -> OAuthResponse {
    if req.param("refresh_token").is_none() {
        return OAuthResponse::invalid_request("missing parameter: refresh_token (RFC 6749 6)");
    }
    let now = state.clock.now();
    let outcome = Outcome::default();
    let cell = RefCell::new(conn);
    let result = {
        let (registrar, issuer) = adapters(
            state,
            &cell,
            &outcome,
            GrantType::RefreshToken,
            authenticated,
            now,
        );
        let mut endpoint = RefreshEndpoint { registrar, issuer };
        refresh::refresh(&mut endpoint, &FlowRequest(req))
    };
    match result {
        Ok(_) => respond(state, &outcome, req, true, None, now),
        Err(mut e) => {
            let kind = e.description().map(|d| d.kind());
            respond(state, &outcome, req, false, kind, now)
        }
    }
}
