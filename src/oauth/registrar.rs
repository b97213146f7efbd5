//! oxide-auth's `Registrar` over the database.

use std::borrow::Cow;
use std::cell::RefCell;

use oxide_auth::endpoint::Scope;
use oxide_auth::primitives::registrar::{
    BoundClient, ClientUrl, PreGrant, RegisteredUrl, Registrar, RegistrarError,
};

use super::Outcome;
use super::web::OAuthResponse;
use crate::AppState;
use crate::client::{self, GrantType};
use crate::db::AnyConnection;
use crate::secret::SecretFailure;

/// Registrar for one request: borrows the request's one pooled connection.
pub struct DbRegistrar<'a> {
    /// The request's connection.
    pub conn: RefCell<&'a mut AnyConnection>,
    /// Shared server state (secret verifier, settings).
    pub state: &'a AppState,
    /// Where the registrar leaves the client it loaded and why it refused.
    pub outcome: &'a Outcome,
    /// The grant type of the request (for the client's allowed grant types).
    pub grant: GrantType,
    /// Request time.
    pub now: i64,
}

impl DbRegistrar<'_> {
    fn fail(&self, response: OAuthResponse) -> RegistrarError {
        *self.outcome.failure.borrow_mut() = Some(response);
        RegistrarError::Unspecified
    }

    fn db_error(&self, e: crate::error::AppError) -> RegistrarError {
        tracing::error!(error = %e, "registrar query failed");
        *self.outcome.failure.borrow_mut() = Some(OAuthResponse::server_error());
        RegistrarError::PrimitiveError
    }
}

impl Registrar for DbRegistrar<'_> {
    fn bound_redirect<'b>(&self, bound: ClientUrl<'b>) -> Result<BoundClient<'b>, RegistrarError> {
        if self.outcome.client.borrow().is_none() {
            let found = client::store::find(&mut self.conn.borrow_mut(), &bound.client_id)
                .map_err(|e| self.db_error(e))?;
            *self.outcome.client.borrow_mut() = found;
        }
        let client = self.outcome.client.borrow();
        let Some(client) = client.as_ref() else {
            return Err(RegistrarError::Unspecified);
        };
        let redirect = match &bound.redirect_uri {
            // The client_credentials grant has no redirection; oxide-auth still wants a URL.
            None if self.grant == GrantType::ClientCredentials => {
                url::Url::parse(&self.state.issuer).map_err(|_| RegistrarError::PrimitiveError)?
            }
            None => match client.redirect_uris.as_slice() {
                [only] => url::Url::parse(only).map_err(|_| RegistrarError::PrimitiveError)?,
                _ => return Err(RegistrarError::Unspecified),
            },
            // RFC 6749 3.1.2.3 and RFC 9700 2.1: exact string comparison after parsing.
            Some(given) => {
                let given =
                    url::Url::parse(given.as_str()).map_err(|_| RegistrarError::Unspecified)?;
                if !client
                    .redirect_uris
                    .iter()
                    .any(|r| r.as_str() == given.as_str())
                {
                    return Err(RegistrarError::Unspecified);
                }
                given
            }
        };
        Ok(BoundClient {
            client_id: bound.client_id,
            redirect_uri: Cow::Owned(RegisteredUrl::Semantic(redirect)),
        })
    }

    fn negotiate(
        &self,
        bound: BoundClient,
        scope: Option<Scope>,
    ) -> Result<PreGrant, RegistrarError> {
        let client = self.outcome.client.borrow();
        let Some(client) = client.as_ref() else {
            return Err(RegistrarError::Unspecified);
        };
        // RFC 6749 5.2: a client not allowed to use this grant type is `unauthorized_client`.
        if !client.allows_grant(self.grant) {
            return Err(self.fail(OAuthResponse::error(
                400,
                "unauthorized_client",
                &format!("this client may not use the {} grant", self.grant.as_str()),
            )));
        }
        // RFC 6749 3.3: no scope requested = the client's default (all its allowed scopes);
        // a scope outside them is `invalid_scope` (5.2), never silently dropped.
        let granted: Vec<&str> = match &scope {
            None => client.allowed_scopes.iter().map(String::as_str).collect(),
            Some(requested) => {
                let mut out = Vec::new();
                for s in requested.iter() {
                    if !client.allowed_scopes.iter().any(|a| a == s) {
                        return Err(self.fail(OAuthResponse::error(
                            400,
                            "invalid_scope",
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

    fn check(&self, client_id: &str, passphrase: Option<&[u8]>) -> Result<(), RegistrarError> {
        let loaded = client::store::load_for_auth(&mut self.conn.borrow_mut(), client_id)
            .map_err(|e| self.db_error(e))?;
        let (client, secrets) = match loaded {
            Some((c, s)) => (Some(c), s),
            None => (None, Vec::new()),
        };
        let generic = "client authentication failed";
        let Some(passphrase) = passphrase else {
            return Err(self.fail(OAuthResponse::invalid_client(generic, false)));
        };
        // Runs for unknown clients too (against no secrets, i.e. a dummy hash): same cost.
        let verified = self.state.verifier.verify(&secrets, passphrase, self.now);
        let reason = match (&client, verified) {
            (None, _) => "unknown client",
            (Some(_), Err(SecretFailure::NoMatch)) => "wrong secret",
            (Some(_), Err(SecretFailure::Expired)) => {
                tracing::info!(
                    client_id,
                    reason = "expired secret",
                    "client authentication failed"
                );
                return Err(self.fail(OAuthResponse::invalid_client(
                    "the client secret has expired",
                    false,
                )));
            }
            (Some(c), Ok(_)) if !c.enabled => {
                tracing::info!(
                    client_id,
                    reason = "disabled client",
                    "client authentication failed"
                );
                return Err(self.fail(OAuthResponse::invalid_client(
                    "the client is disabled",
                    false,
                )));
            }
            (Some(_), Ok(secret_id)) => {
                self.outcome.secret_id.set(Some(secret_id));
                *self.outcome.client.borrow_mut() = client;
                return Ok(());
            }
        };
        tracing::info!(client_id, reason, "client authentication failed");
        Err(self.fail(OAuthResponse::invalid_client(generic, false)))
    }
}
