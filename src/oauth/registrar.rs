//! oxide-auth's `Registrar` over the database.

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::Arc;

use oxide_auth::endpoint::Scope;
use oxide_auth::primitives::registrar::{
    BoundClient, ClientUrl, ExactUrl, PreGrant, RegisteredUrl, Registrar, RegistrarError,
};

use super::Outcome;
use super::web::{ClientAuth, OAuthResponse};
use crate::AppState;
use crate::client::cache::CachedClient;
use crate::client::{self, AuthMethod, GrantType, assertion};
use crate::db::AnyConnection;
use crate::secret::SecretFailure;

/// Registrar for one request: reads clients from the in-memory cache, and on a miss from the
/// request's one pooled connection. Without a connection (the non-blocking fast path) it
/// never blocks: what would need the database or argon2 sets `outcome.would_block`.
pub struct DbRegistrar<'a> {
    /// The request's connection (shared with the other adapters); None on the fast path.
    pub conn: Option<&'a RefCell<&'a mut AnyConnection>>,
    /// Shared server state (client cache, secret verifier, settings).
    pub state: &'a AppState,
    /// Where the registrar leaves the client it loaded and why it refused.
    pub outcome: &'a Outcome,
    /// The grant type of the request (for the client's allowed grant types).
    pub grant: GrantType,
    /// Request time.
    pub now: i64,
    /// The client's address, checked against its IP allowlist.
    pub client_ip: Option<std::net::IpAddr>,
    /// Count this request against the client's rate limit (the token endpoint).
    pub rate_limited: bool,
    /// How the client authenticated (None where no client authenticates).
    pub presented: Option<&'a ClientAuth>,
}

impl DbRegistrar<'_> {
    /// The policies checked once a client has proved who it is: its IP allowlist (401
    /// `invalid_client`) and, at the token endpoint, its rate limit (429).
    fn policies(&self, client: &Arc<CachedClient>) -> Result<(), RegistrarError> {
        let c = &client.client;
        if !c.allows_ip(self.client_ip) {
            tracing::info!(client_id = %c.client_id, reason = "address not allowed", "client authentication failed");
            self.state.metrics.auth_failed("address not allowed");
            return Err(self.fail(OAuthResponse::invalid_client(
                "this client is not allowed to authenticate from this address",
                false,
            )));
        }
        if self.rate_limited
            && let Some(limit) = c.rate_limit_per_minute
            && let Err(wait) = self.state.rate_limiter.check(c.id, limit, self.now)
        {
            tracing::info!(client_id = %c.client_id, "rate limit reached");
            self.state.metrics.auth_failed("rate limited");
            return Err(self.fail(OAuthResponse {
                retry_after: Some(wait),
                ..OAuthResponse::error(
                    429,
                    "too_many_requests",
                    &format!(
                        "this client may make {limit} token requests per minute; retry in {wait} s"
                    ),
                )
            }));
        }
        Ok(())
    }

    fn fail(&self, response: OAuthResponse) -> RegistrarError {
        *self.outcome.failure.borrow_mut() = Some(response);
        RegistrarError::Unspecified
    }

    fn db_error(&self, e: crate::error::AppError) -> RegistrarError {
        tracing::error!(error = %e, "registrar query failed");
        *self.outcome.failure.borrow_mut() = Some(OAuthResponse::server_error());
        RegistrarError::PrimitiveError
    }

    fn would_block(&self) -> RegistrarError {
        self.outcome.would_block.set(true);
        RegistrarError::PrimitiveError
    }

    /// The client (cached, or read and cached), None when unknown.
    fn load(&self, client_id: &str) -> Result<Option<Arc<CachedClient>>, RegistrarError> {
        if let Some(hit) = self.state.clients.get(client_id) {
            return Ok(Some(hit));
        }
        let Some(conn) = self.conn else {
            return Err(self.would_block());
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
            // RFC 6749 3.1.2.3: a client with one registered URI may omit it.
            None => match client.redirect_uris.as_slice() {
                [only] => RegisteredUrl::Exact(
                    ExactUrl::new(only.clone()).map_err(|_| RegistrarError::PrimitiveError)?,
                ),
                _ => return Err(RegistrarError::Unspecified),
            },
            // RFC 6749 3.1.2.3 and RFC 9700 2.1: exact string comparison, no normalization.
            Some(given) => {
                if !client.redirect_uris.iter().any(|r| r == given.as_str()) {
                    return Err(RegistrarError::Unspecified);
                }
                RegisteredUrl::Exact(given.as_ref().clone())
            }
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
        let loaded = self.load(client_id)?;
        let generic = "client authentication failed";
        let refuse = |reason: &str, description: &str| {
            tracing::info!(client_id, reason, "client authentication failed");
            self.state.metrics.auth_failed(reason);
            Err(self.fail(OAuthResponse::invalid_client(description, false)))
        };
        // RFC 7523 2.2 / 3: private_key_jwt.
        if let Some(ClientAuth::Assertion { assertion, .. }) = self.presented {
            let Some(c) = &loaded else {
                return refuse("unknown client", generic);
            };
            let shared;
            let keys: &[assertion::AssertionKey] = match c.client.auth_method {
                Some(AuthMethod::PrivateKeyJwt) => &c.assertion_keys,
                Some(AuthMethod::ClientSecretJwt) => {
                    let (Some(master), Some(sealed)) =
                        (&self.state.master_key, &c.client.hmac_key_sealed)
                    else {
                        return refuse(
                            "no master key",
                            "client_secret_jwt is unavailable on this server (PORTCULLIS_MASTER_KEY is not configured)",
                        );
                    };
                    match master.open(&c.client.client_id, sealed) {
                        Ok(key) => {
                            shared = [assertion::AssertionKey::hmac(&key)];
                            &shared
                        }
                        Err(e) => {
                            tracing::error!(error = %e, client_id, "cannot read a client_secret_jwt key");
                            return refuse("unreadable key", generic);
                        }
                    }
                }
                _ => {
                    return refuse(
                        "wrong method",
                        "this client does not authenticate with a JWT assertion",
                    );
                }
            };
            let audiences: Vec<&str> = self
                .state
                .assertion_audiences
                .iter()
                .map(String::as_str)
                .collect();
            let verified = match assertion::verify(keys, assertion, client_id, &audiences, self.now)
            {
                Ok(v) => v,
                Err(why) => return refuse("invalid assertion", &why),
            };
            // Single use needs the database: on the fast path, finish on a blocking thread.
            let Some(conn) = self.conn else {
                return Err(self.would_block());
            };
            let fresh = client::store::use_assertion_jti(
                &mut conn.borrow_mut(),
                c.client.id,
                &verified.jti,
                verified.exp,
                self.now,
            )
            .map_err(|e| self.db_error(e))?;
            if !fresh {
                return refuse(
                    "replayed assertion",
                    "this client assertion was already used (RFC 7523 3: jti)",
                );
            }
            if !c.client.enabled {
                return refuse("disabled client", "the client is disabled");
            }
            self.policies(c)?;
            *self.outcome.client.borrow_mut() = loaded.clone();
            return Ok(());
        }
        // A client registered for one method is refused with any other (RFC 7591 2).
        if let Some(c) = &loaded
            && let Some(required) = c.client.auth_method
        {
            let used = match self.presented {
                Some(ClientAuth::Basic { .. }) => Some(AuthMethod::ClientSecretBasic),
                Some(ClientAuth::Post { .. }) => Some(AuthMethod::ClientSecretPost),
                _ => None,
            };
            if used != Some(required) {
                return refuse(
                    "wrong method",
                    &format!("this client must authenticate with {}", required.as_str()),
                );
            }
        }
        let Some(passphrase) = passphrase else {
            // RFC 6749 2.1, 3.2.1: a public client identifies itself by client_id alone; a
            // confidential one must authenticate.
            return match &loaded {
                Some(c) if c.client.public && c.client.enabled => {
                    self.policies(c)?;
                    *self.outcome.client.borrow_mut() = loaded.clone();
                    Ok(())
                }
                Some(c) if c.client.public => refuse("disabled client", "the client is disabled"),
                Some(_) => refuse(
                    "no secret",
                    "this client is confidential: authenticate with its client_secret (RFC 6749 3.2.1)",
                ),
                None => refuse("unknown client", generic),
            };
        };
        let secrets = loaded.as_ref().map_or(&[][..], |c| c.secrets.as_slice());
        // Runs for unknown clients too (against no secrets, i.e. a dummy hash): same cost.
        let may_block = self.conn.is_some();
        let verified = self
            .state
            .verifier
            .verify(secrets, passphrase, self.now, may_block);
        match (&loaded, verified) {
            (_, Err(SecretFailure::WouldBlock)) => Err(self.would_block()),
            (None, _) => refuse("unknown client", generic),
            (Some(_), Err(SecretFailure::NoMatch)) => refuse("wrong secret", generic),
            (Some(_), Err(SecretFailure::Expired)) => {
                refuse("expired secret", "the client secret has expired")
            }
            (Some(c), Ok(_)) if !c.client.enabled => {
                refuse("disabled client", "the client is disabled")
            }
            (Some(c), Ok(secret_id)) => {
                self.policies(c)?;
                self.outcome.secret_id.set(Some(secret_id));
                *self.outcome.client.borrow_mut() = loaded.clone();
                Ok(())
            }
        }
    }
}
