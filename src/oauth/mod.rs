//! oxide-auth adapters and the grant handlers built on its flows.

pub mod authorization;
pub mod authorize;
pub mod authorizer;
pub mod grants;
pub mod introspect;
pub mod issuer;
pub mod registrar;
pub mod web;

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use crate::AppState;
use crate::client::GrantType;
use crate::client::cache::CachedClient;
use crate::db::AnyConnection;
use web::{OAuthResponse, TokenRequest};

/// What the adapters learned during one flow: the client, the secret used, why it failed.
#[derive(Default)]
pub struct Outcome {
    /// The client, once loaded (shared with the client cache).
    pub client: RefCell<Option<Arc<CachedClient>>>,
    /// The secret the client authenticated with.
    pub secret_id: Cell<Option<i64>>,
    /// The RFC-shaped error to answer with, when a primitive refused.
    pub failure: RefCell<Option<OAuthResponse>>,
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
        Some(GrantType::ClientCredentials) => grants::client_credentials(state, None, req),
        _ => None,
    }
}

/// Handles a checked token request (RFC 6749 3.2). Blocking: runs queries and maybe argon2.
pub fn token(state: &AppState, conn: &mut AnyConnection, req: &TokenRequest) -> OAuthResponse {
    let response = match GrantType::parse(&req.grant_type) {
        Some(GrantType::ClientCredentials) => grants::client_credentials(state, Some(conn), req),
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
