//! The protocol core: each file is named for what the RFCs call it.
//!
//! - [`request`]: the token, introspection and revocation requests as parsed from HTTP, and
//!   [`request::OAuthResponse`];
//! - [`client_auth`]: client authentication (RFC 6749 2.3, RFC 7523);
//! - [`authorization`]: the authorization endpoint (RFC 6749 4.1.1, 4.1.2), with
//!   [`authorization::request`] judging the request;
//! - [`grants`]: the token endpoint's grants (RFC 6749 4.1.3, 4.4, 6);
//! - [`codes`]: authorization codes and PKCE (RFC 6749 4.1.2, RFC 7636);
//! - [`introspection`] (RFC 7662) and [`revocation`] (RFC 7009);
//! - [`scope`]: which scopes a request gets (RFC 6749 3.3);
//! - [`registrar`], [`issuer`]: the oxide-auth adapters that carry out those decisions;
//! - [`context`]: what all of it reads from the server ([`context::OAuthContext`]).

pub mod authorization;
pub mod client_auth;
pub mod codes;
pub mod context;
pub mod error;
pub mod grants;
pub mod introspection;
pub mod issuer;
pub mod registrar;
pub mod request;
pub mod revocation;
pub mod scope;

use std::cell::{Cell, RefCell};

use crate::client::GrantType;
use crate::db::AnyConnection;
use context::OAuthContext;
use error::ErrorCode;
use request::{OAuthResponse, TokenRequest};

/// What the adapters of one token-endpoint flow tell each other and the grant handler: why
/// one refused, and the token family a redeemed code heads (for the issuer). The client and
/// its secret are not here: they were decided by [`client_auth::authenticate`] before the
/// flow ran, and the adapters read them from there.
#[derive(Default)]
pub struct Outcome {
    /// The RFC-shaped error to answer with, when an adapter refused.
    pub failure: RefCell<Option<OAuthResponse>>,
    /// The token family (grants row) being issued from: set when a code is redeemed.
    pub family: Cell<Option<i64>>,
    /// Set when the one statement of a refresh or code exchange stored nothing: the exchange
    /// is to be run again the slow way, which says why ([`grants::refresh_batched`],
    /// [`grants::authorization_code_batched`]).
    pub slow_path: Cell<bool>,
    /// Tokens that one statement already stored, for the issuer to sign and hand out.
    pub stored_ahead: RefCell<Option<issuer::StoredAhead>>,
}

impl Outcome {
    /// Records a refusal: 400 with `error` (RFC 6749 5.2).
    pub fn refuse(&self, error: ErrorCode, description: &str) {
        *self.failure.borrow_mut() = Some(OAuthResponse::error(400, error, description));
    }

    /// What the one statement of a refresh or code exchange stored; None when it stored
    /// nothing ([`Self::slow_path`] is then set) or failed (recorded as [`Self::storage_failed`]
    /// says).
    pub fn stored_in_one<T>(
        &self,
        stored: Result<Option<T>, crate::error::AppError>,
        what: &str,
    ) -> Option<T> {
        match stored {
            Ok(Some(stored)) => Some(stored),
            Ok(None) => {
                self.slow_path.set(true);
                None
            }
            Err(e) => {
                self.storage_failed(what, &e);
                None
            }
        }
    }

    /// Records a storage failure (503 when the database is away, else 500), logged with `what`.
    pub fn storage_failed(&self, what: &str, e: &crate::error::AppError) {
        tracing::error!(error = %e, "{what}");
        *self.failure.borrow_mut() = Some(OAuthResponse::storage_failed(e));
    }
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

/// Runs the authorization-code or refresh grant for a client that has authenticated
/// (RFC 6749 4.1.3, 6). Blocking: runs queries on the request's one connection.
///
/// The whole exchange is one transaction (on PostgreSQL, usually one atomic statement), so a
/// failure midway (the database gone between two statements) leaves nothing half-done: the code or refresh token is either still usable or
/// consumed together with the tokens issued from it, never consumed with nothing issued. An
/// answer the client can act on (tokens, or a 4xx refusal such as a replayed code, whose family
/// revocation must stick) commits; a 5xx rolls everything back.
pub fn token_with_database(
    ctx: &OAuthContext<'_>,
    conn: &mut AnyConnection,
    (req, authenticated): &(TokenRequest, client_auth::Authenticated),
) -> OAuthResponse {
    let exchange = |conn: &mut AnyConnection| match req.grant_type {
        GrantType::AuthorizationCode => grants::authorization_code(ctx, conn, req, authenticated),
        GrantType::RefreshToken => grants::refresh_token(ctx, conn, req, authenticated),
        GrantType::ClientCredentials => grants::client_credentials(ctx, authenticated, req),
    };
    // On PostgreSQL, a code exchange (RFC 6749 4.1.3) and a refresh that keeps its scope
    // (RFC 6749 6), the common cases, were tried before this as one atomic statement each,
    // batched, on the executor ([`grants::authorization_code_batched`],
    // [`grants::refresh_batched`]; issue 13). Anything else, and anything they did not
    // decide, goes this slow way.
    let result = crate::db::transaction(conn, |conn| {
        let response = exchange(conn);
        if response.status >= 500 {
            Err(RolledBack::Answer(response))
        } else {
            Ok(response)
        }
    });
    match result {
        Ok(response) | Err(RolledBack::Answer(response)) => response,
        // BEGIN or COMMIT failed: whether the commit happened is unknown to us; the client
        // retries (the outcome is then one of the two states above).
        Err(RolledBack::Database(e)) => {
            tracing::error!(error = %e, "token exchange could not commit");
            OAuthResponse::storage_failed(&e)
        }
    }
}

/// Why [`token_with_database`]'s transaction did not commit.
enum RolledBack {
    /// The flow answered with a server error.
    Answer(OAuthResponse),
    /// The transaction itself failed.
    Database(crate::error::AppError),
}

impl From<diesel::result::Error> for RolledBack {
    fn from(e: diesel::result::Error) -> Self {
        RolledBack::Database(e.into())
    }
}
