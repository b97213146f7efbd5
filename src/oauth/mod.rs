//! oxide-auth adapters and the grant handlers built on its flows.

pub mod authorization;
pub mod authorize;
pub mod authorizer;
pub mod grants;
pub mod introspect;
pub mod issuer;
pub mod registrar;
pub mod solicitor;
pub mod web;

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use oxide_auth::endpoint::{
    ClientCredentialsFlow, Endpoint, OAuthError, OwnerSolicitor, ResponseStatus, Scopes, Template,
};
use oxide_auth::primitives::authorizer::Authorizer;
use oxide_auth::primitives::issuer::Issuer;
use oxide_auth::primitives::registrar::Registrar;

use crate::AppState;
use crate::client::GrantType;
use crate::client::cache::CachedClient;
use crate::db::AnyConnection;
use web::{ClientAuth, OAuthRequest, OAuthResponse, TokenRequest, WebError};

/// What the adapters learned during one flow: the client, the secret used, why it failed.
#[derive(Default)]
pub struct Outcome {
    /// The client, once loaded (shared with the client cache).
    pub client: RefCell<Option<Arc<CachedClient>>>,
    /// The secret the client authenticated with.
    pub secret_id: Cell<Option<i64>>,
    /// The RFC-shaped error to answer with, when a primitive refused.
    pub failure: RefCell<Option<OAuthResponse>>,
    /// Lifetime of the issued access token, for an exact `expires_in`.
    pub expires_in: Cell<Option<i64>>,
    /// Finishing needs the database or argon2: run the request again on a blocking thread.
    pub would_block: Cell<bool>,
    /// The token family (grants row) being issued from: set when a code is redeemed.
    pub grant_id: Cell<Option<i64>>,
    /// The refresh token being exchanged.
    pub refresh_row: RefCell<Option<crate::token::store::RefreshRow>>,
    /// What the issuer issued.
    pub issued: RefCell<Option<Issued>>,
}

/// Tokens issued by a grant, for the token response (RFC 6749 5.1).
pub struct Issued {
    /// The JWT access token.
    pub access_token: String,
    /// The new refresh token, if any.
    pub refresh_token: Option<String>,
    /// Access-token lifetime in seconds.
    pub expires_in: i64,
    /// Granted scopes, space-separated, sorted.
    pub scope: String,
}

impl Issued {
    /// The RFC 6749 5.1 success response.
    pub fn response(&self) -> OAuthResponse {
        let mut body = serde_json::json!({
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
        });
        if let Some(r) = &self.refresh_token {
            body["refresh_token"] = r.as_str().into();
        }
        if !self.scope.is_empty() {
            body["scope"] = self.scope.as_str().into();
        }
        OAuthResponse {
            status: 200,
            body: body.to_string(),
            ..OAuthResponse::default()
        }
    }
}

/// Why a flow ended without a response.
#[derive(Debug)]
pub enum FlowError {
    /// oxide-auth refused (e.g. `DenySilently`) or a primitive failed.
    OAuth(OAuthError),
    /// Our request/response adapter failed.
    Web(WebError),
}

struct TokenEndpoint<'a> {
    registrar: registrar::DbRegistrar<'a>,
    issuer: issuer::JwtIssuer<'a>,
    solicitor: solicitor::ClientIsOwner,
}

impl Endpoint<OAuthRequest> for TokenEndpoint<'_> {
    type Error = FlowError;

    fn registrar(&self) -> Option<&dyn Registrar> {
        Some(&self.registrar)
    }

    fn authorizer_mut(&mut self) -> Option<&mut dyn Authorizer> {
        None
    }

    fn issuer_mut(&mut self) -> Option<&mut dyn Issuer> {
        Some(&mut self.issuer)
    }

    fn owner_solicitor(&mut self) -> Option<&mut dyn OwnerSolicitor<OAuthRequest>> {
        Some(&mut self.solicitor)
    }

    fn scopes(&mut self) -> Option<&mut dyn Scopes<OAuthRequest>> {
        None
    }

    fn response(
        &mut self,
        _: &mut OAuthRequest,
        kind: Template,
    ) -> Result<OAuthResponse, FlowError> {
        let status = match kind.status() {
            ResponseStatus::Ok => 200,
            ResponseStatus::BadRequest => 400,
            ResponseStatus::Unauthorized => 401,
            ResponseStatus::Redirect => 302,
        };
        Ok(OAuthResponse {
            status,
            ..OAuthResponse::default()
        })
    }

    fn error(&mut self, err: OAuthError) -> FlowError {
        FlowError::OAuth(err)
    }

    fn web_error(&mut self, err: WebError) -> FlowError {
        FlowError::Web(err)
    }
}

/// Answers a token request without blocking, when everything it needs is in memory: a
/// client_credentials request from a cached client whose secret verifies by SHA-256 or was
/// verified with argon2 before. None means "run [`token`] on a blocking thread".
///
/// This runs oxide-auth's flow on the async executor, against the rule that flows run in
/// `web::block`: the rule exists because a flow may wait for the database or argon2, and here
/// neither can happen (the registrar has no connection, and the verifier refuses to run
/// argon2, answering `would_block` instead). What remains is about 30 us of CPU, mostly the
/// ES256 signature, which is cheaper than the hand-off to the blocking pool and back.
pub fn token_without_blocking(state: &AppState, req: &TokenRequest) -> Option<OAuthResponse> {
    match GrantType::parse(&req.grant_type) {
        Some(GrantType::ClientCredentials) => client_credentials(state, None, req),
        _ => None,
    }
}

/// Handles a checked token request (RFC 6749 3.2). Blocking: runs queries and maybe argon2.
pub fn token(state: &AppState, conn: &mut AnyConnection, req: &TokenRequest) -> OAuthResponse {
    let response = match GrantType::parse(&req.grant_type) {
        Some(GrantType::ClientCredentials) => client_credentials(state, Some(conn), req),
        Some(GrantType::AuthorizationCode) => Some(grants::authorization_code(state, conn, req)),
        Some(GrantType::RefreshToken) => Some(grants::refresh_token(state, conn, req)),
        None => None,
    };
    response.unwrap_or_else(|| {
        OAuthResponse::error(
            400,
            "unsupported_grant_type",
            "this grant type is not supported",
        )
    })
}

/// RFC 6749 4.4: the client credentials grant, through oxide-auth's flow. Without a
/// connection it never blocks and answers None when it would have to.
fn client_credentials(
    state: &AppState,
    conn: Option<&mut AnyConnection>,
    req: &TokenRequest,
) -> Option<OAuthResponse> {
    // RFC 6749 4.4.2 and 3.2.1: the client MUST authenticate. No authentication at all is
    // `invalid_client` (5.2), not oxide-auth's `invalid_request`.
    match &req.auth {
        ClientAuth::None => {
            return Some(OAuthResponse::invalid_client(
                "client authentication is required: HTTP Basic, or client_id and client_secret in the body",
                false,
            ));
        }
        ClientAuth::IdOnly { .. } => {
            return Some(OAuthResponse::invalid_client(
                "client_secret is required: the client_credentials grant is for confidential clients (RFC 6749 4.4)",
                false,
            ));
        }
        ClientAuth::Basic { .. } | ClientAuth::Post { .. } => {}
    }
    let now = crate::clock::now();
    let outcome = Outcome::default();
    let used_basic = req.auth.is_basic();
    let cell = conn.map(RefCell::new);
    let result = {
        let endpoint = TokenEndpoint {
            registrar: registrar::DbRegistrar {
                conn: cell.as_ref(),
                state,
                outcome: &outcome,
                grant: GrantType::ClientCredentials,
                now,
            },
            issuer: issuer::JwtIssuer {
                conn: None,
                state,
                outcome: &outcome,
                now,
                request_client_id: None,
            },
            solicitor: solicitor::ClientIsOwner,
        };
        match ClientCredentialsFlow::prepare(endpoint) {
            Ok(mut flow) => {
                // RFC 6749 2.3.1: client_secret_post is allowed alongside Basic.
                flow.allow_credentials_in_body(true);
                flow.execute(OAuthRequest::from_token_request(req))
            }
            Err(e) => Err(e),
        }
    };
    if outcome.would_block.get() {
        return None;
    }
    let mut response = match result {
        Ok(resp) if resp.status == 200 => {
            if let Some(cached) = outcome.client.borrow().as_ref() {
                state
                    .usage
                    .record(cached.client.id, outcome.secret_id.get(), now);
            }
            OAuthResponse {
                body: web::normalize_json(&resp.body, outcome.expires_in.get()),
                ..resp
            }
        }
        // A primitive refused: answer with the error it recorded (oxide-auth's own is generic,
        // or for a scope refusal a DenySilently that would become a 500).
        Ok(resp) => outcome.failure.take().unwrap_or(resp),
        Err(e) => outcome.failure.take().unwrap_or_else(|| {
            tracing::error!(error = ?e, "client_credentials flow failed");
            OAuthResponse::server_error()
        }),
    };
    // RFC 6749 5.2: 401 with a challenge matching the scheme the client used.
    response.basic_challenge = response.status == 401 && used_basic;
    Some(response)
}
