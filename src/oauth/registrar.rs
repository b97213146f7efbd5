//! oxide-auth's `Registrar` over the database.

use crate::oauth::error::ErrorCode;
use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::Arc;

use oxide_auth::endpoint::Scope;
use oxide_auth::primitives::registrar::{
    BoundClient, ClientUrl, ExactUrl, PreGrant, RegisteredUrl, Registrar, RegistrarError,
};

use super::Outcome;
use super::client_auth::Authenticated;
use super::request::OAuthResponse;
use crate::AppState;
use crate::client::GrantType;
use crate::client::cache::CachedClient;
use crate::db::AnyConnection;

/// Registrar for one request: reads clients from the in-memory cache, and on a miss from the
/// request's one pooled connection. Client authentication is not decided here: the token,
/// introspection and revocation endpoints run [`super::client_auth::authenticate`] first and
/// hand the result in; `check` only confirms that oxide-auth asks about that same client.
pub struct DbRegistrar<'a> {
    /// The request's connection (shared with the other adapters); None on the fast path.
    pub conn: Option<&'a RefCell<&'a mut AnyConnection>>,
    /// Shared server state (client cache, settings).
    pub state: &'a AppState,
    /// Where the registrar leaves the client it loaded and why it refused.
    pub outcome: &'a Outcome,
    /// The grant type of the request (for the client's allowed grant types).
    pub grant: GrantType,
    /// The client that authenticated (None at the authorization endpoint, where no client
    /// authenticates).
    pub authenticated: Option<&'a Authenticated>,
}

impl<'a> DbRegistrar<'a> {
    /// A registrar for a flow whose client has authenticated: the client is known, so no
    /// lookup happens.
    pub fn for_client(
        state: &'a AppState,
        conn: Option<&'a RefCell<&'a mut AnyConnection>>,
        outcome: &'a Outcome,
        grant: GrantType,
        authenticated: &'a Authenticated,
    ) -> DbRegistrar<'a> {
        *outcome.client.borrow_mut() = Some(authenticated.client.clone());
        outcome.secret_id.set(authenticated.secret_id);
        DbRegistrar {
            conn,
            state,
            outcome,
            grant,
            authenticated: Some(authenticated),
        }
    }

    fn fail(&self, response: OAuthResponse) -> RegistrarError {
        *self.outcome.failure.borrow_mut() = Some(response);
        RegistrarError::Unspecified
    }

    fn db_error(&self, e: crate::error::AppError) -> RegistrarError {
        tracing::error!(error = %e, "registrar query failed");
        *self.outcome.failure.borrow_mut() = Some(OAuthResponse::storage_failed(&e));
        RegistrarError::PrimitiveError
    }

    /// The client (cached, or read and cached), None when unknown.
    fn load(&self, client_id: &str) -> Result<Option<Arc<CachedClient>>, RegistrarError> {
        if let Some(known) = self.state.clients.lookup(client_id) {
            return Ok(known);
        }
        let Some(conn) = self.conn else {
            return Err(RegistrarError::PrimitiveError);
        };
        self.state
            .clients
            .load(&mut conn.borrow_mut(), client_id)
            .map_err(|e| self.db_error(e))
    }
}

impl Registrar for DbRegistrar<'_> {
    fn bound_redirect<'b>(&self, bound: ClientUrl<'b>) -> Result<BoundClient<'b>, RegistrarError> {
        if self.outcome.client.borrow().is_none() {
            let found = self.load(&bound.client_id)?;
            *self.outcome.client.borrow_mut() = found;
        }
        let client = self.outcome.client.borrow();
        let Some(client) = client.as_ref().map(|c| &c.client) else {
            return Err(RegistrarError::Unspecified);
        };
        let redirect = match &bound.redirect_uri {
            // The client_credentials grant has no redirection; oxide-auth still wants a URL.
            None if self.grant == GrantType::ClientCredentials => RegisteredUrl::Semantic(
                url::Url::parse(&self.state.issuer).map_err(|_| RegistrarError::PrimitiveError)?,
            ),
            // The one rule (`Client::redirect_uri_for`): exact string comparison, no
            // normalization (RFC 6749 3.1.2.3, RFC 9700 2.1), loopback ports on opt-in
            // (RFC 8252 7.3); a client with one registered URI may omit it.
            given => match client.redirect_uri_for(given.as_deref().map(ExactUrl::as_str)) {
                Some(uri) => RegisteredUrl::Exact(
                    ExactUrl::new(uri).map_err(|_| RegistrarError::PrimitiveError)?,
                ),
                None => return Err(RegistrarError::Unspecified),
            },
        };
        Ok(BoundClient {
            client_id: bound.client_id,
            redirect_uri: Cow::Owned(redirect),
        })
    }

    fn negotiate(
        &self,
        bound: BoundClient,
        scope: Option<Scope>,
    ) -> Result<PreGrant, RegistrarError> {
        let client = self.outcome.client.borrow();
        let Some(client) = client.as_ref().map(|c| &c.client) else {
            return Err(RegistrarError::Unspecified);
        };
        // RFC 6749 5.2: a client not allowed to use this grant type is `unauthorized_client`.
        if !client.allows_grant(self.grant) {
            return Err(self.fail(OAuthResponse::error(
                400,
                ErrorCode::UnauthorizedClient,
                &format!("this client may not use the {} grant", self.grant.as_str()),
            )));
        }
        // Through the authorization endpoint a person grants the scopes, and never a
        // `portcullis:*` one (`token::grantable_by_person`).
        let by_person = self.grant == GrantType::AuthorizationCode;
        let grantable = |s: &str| !by_person || crate::token::grantable_by_person(s);
        // RFC 6749 3.3: no scope requested = the client's default (its allowed scopes);
        // a scope outside them is `invalid_scope` (5.2), never silently dropped.
        let granted: Vec<&str> = match &scope {
            None => client
                .allowed_scopes
                .iter()
                .map(String::as_str)
                .filter(|s| grantable(s))
                .collect(),
            Some(requested) => {
                let mut out = Vec::new();
                for s in requested.iter() {
                    if !client.allowed_scopes.iter().any(|a| a == s) || !grantable(s) {
                        return Err(self.fail(OAuthResponse::error(
                            400,
                            ErrorCode::InvalidScope,
                            &format!("scope '{s}' is not allowed for this client"),
                        )));
                    }
                    out.push(s);
                }
                out
            }
        };
        let mut granted = granted;
        granted.sort_unstable();
        let scope: Scope = granted
            .join(" ")
            .parse()
            .map_err(|_| RegistrarError::PrimitiveError)?;
        Ok(PreGrant {
            client_id: bound.client_id.into_owned(),
            redirect_uri: bound.redirect_uri.into_owned(),
            scope,
        })
    }

    /// oxide-auth asks whether `client_id` authenticated: only the client that
    /// [`super::client_auth::authenticate`] accepted for this request did (its passphrase was
    /// verified there, before anything else happened).
    fn check(&self, client_id: &str, _passphrase: Option<&[u8]>) -> Result<(), RegistrarError> {
        match self.authenticated {
            Some(a) if a.client.client.client_id == client_id => Ok(()),
            _ => Err(self.fail(OAuthResponse::invalid_client(
                "client authentication failed",
                false,
            ))),
        }
    }
}
