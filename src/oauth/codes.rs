//! oxide-auth's `Authorizer` over the `grants` table, and the PKCE extensions of the two
//! halves of the authorization code grant (RFC 7636).
//!
//! Codes are 256-bit random values, stored only as SHA-256, valid for 60 seconds, single use
//! (redeemed by an atomic conditional update), and bound to the client, the redirect URI and
//! the PKCE challenge. The row stays after redemption as the head of the family of tokens
//! issued from it, so that a replayed code revokes them (RFC 6749 4.1.2).

use crate::oauth::error::ErrorCode;
use std::borrow::Cow;
use std::cell::RefCell;

use oxide_auth::code_grant::extensions::Pkce;
use oxide_auth::code_grant::{accesstoken, authorization};
use oxide_auth::primitives::authorizer::Authorizer;
use oxide_auth::primitives::grant::{Extensions, Grant, Value};

use super::Outcome;
use super::authorization::request::is_pkce_value;
use super::request::OAuthResponse;
use crate::client::GrantType;
use crate::db::AnyConnection;
use crate::token::store::{self, NewGrant, Redemption};

/// RFC 6749 4.1.2 recommends a maximum lifetime of 10 minutes; RFC 9700 2.1.1 suggests short
/// ones. Ours is 60 seconds: the client exchanges the code right after the redirect.
pub const CODE_TTL: i64 = 60;

/// Stands for "no redirect_uri in the token request" (oxide-auth requires one). It equals a
/// redeemed grant's redirect URI only when the authorization request omitted it too, which is
/// exactly when RFC 6749 4.1.3 lets the token request omit it.
pub const OMITTED_REDIRECT_URI: &str = "urn:portcullis:redirect-uri-omitted";

/// The `Authorizer` for one request.
pub struct DbAuthorizer<'a> {
    /// The request's connection, shared with the other adapters.
    pub conn: &'a RefCell<&'a mut AnyConnection>,
    /// The client (set by the registrar), and where refusals are recorded.
    pub outcome: &'a Outcome,
    /// Request time.
    pub now: i64,
    /// Authorization: whether the authorization request named its redirect URI.
    pub redirect_uri_given: bool,
    /// Authorization: the redirect URI as the request named it (or the one registered), kept
    /// as that exact string so the token request can be compared with it (RFC 6749 4.1.3);
    /// oxide-auth hands over a parsed, normalized URL.
    pub redirect_uri: Option<&'a str>,
    /// Token exchange: the redirect URI the token request named, if any.
    pub token_redirect_uri: Option<&'a str>,
}

impl DbAuthorizer<'_> {
    fn refuse(&self, description: &str) -> Result<Option<Grant>, ()> {
        *self.outcome.failure.borrow_mut() = Some(OAuthResponse::error(
            400,
            ErrorCode::InvalidGrant,
            description,
        ));
        Ok(None)
    }

    fn db_failed(&self, e: crate::error::AppError) {
        tracing::error!(error = %e, "authorization code storage failed");
        *self.outcome.failure.borrow_mut() = Some(OAuthResponse::storage_failed(&e));
    }
}

impl Authorizer for DbAuthorizer<'_> {
    /// Stores a new code for an approved request and returns it (RFC 6749 4.1.2).
    fn authorize(&mut self, grant: Grant) -> Result<String, ()> {
        let client_pk = self
            .outcome
            .client
            .borrow()
            .as_ref()
            .map(|c| c.client.id)
            .ok_or(())?;
        let user_id: i64 = grant.owner_id.parse().map_err(|_| ())?;
        let code = crate::crypto::generate_secret().map_err(|e| self.db_failed(e))?;
        let mut scopes: Vec<&str> = grant.scope.iter().collect();
        scopes.sort_unstable();
        let pkce = grant
            .extensions
            .private()
            .find(|(k, _)| *k == "pkce")
            .and_then(|(_, v)| v.map(str::to_string));
        let redirect_uri = self.redirect_uri.unwrap_or(grant.redirect_uri.as_str());
        let row = NewGrant {
            code_hash: &crate::crypto::sha256_tagged(code.as_bytes()),
            client_pk,
            user_id,
            redirect_uri,
            redirect_uri_given: self.redirect_uri_given,
            scope: &scopes.join(" "),
            pkce: pkce.as_deref(),
            code_expires_at: self.now + CODE_TTL,
            now: self.now,
        };
        store::insert_grant(&mut self.conn.borrow_mut(), &row).map_err(|e| self.db_failed(e))?;
        Ok(code)
    }

    /// Redeems a code. Exactly one of any number of concurrent redemptions gets the grant; a
    /// code seen again revokes every token issued from it (RFC 6749 4.1.2).
    fn extract(&mut self, code: &str) -> Result<Option<Grant>, ()> {
        let allowed = self
            .outcome
            .client
            .borrow()
            .as_ref()
            .is_some_and(|c| c.client.allows_grant(GrantType::AuthorizationCode));
        if !allowed {
            // RFC 6749 5.2 (an admin took the grant type away after the code was issued).
            *self.outcome.failure.borrow_mut() = Some(OAuthResponse::error(
                400,
                ErrorCode::UnauthorizedClient,
                "this client may not use the authorization_code grant",
            ));
            return Ok(None);
        }
        let hash = crate::crypto::sha256_tagged(code.as_bytes());
        let redeemed = store::redeem_code(&mut self.conn.borrow_mut(), &hash, self.now);
        let grant = match redeemed {
            Ok(Redemption::Won(g)) => g,
            Ok(Redemption::Replayed { grant_id }) => {
                if let Err(e) =
                    store::revoke_family(&mut self.conn.borrow_mut(), grant_id, self.now)
                {
                    self.db_failed(e);
                    return Err(());
                }
                tracing::warn!("an authorization code was used twice; its tokens are revoked");
                return self.refuse(
                    "the authorization code was already used; every token issued from it is revoked (RFC 6749 4.1.2)",
                );
            }
            Ok(Redemption::Unknown) => {
                return self.refuse("the authorization code is unknown or has expired");
            }
            Err(e) => {
                self.db_failed(e);
                return Err(());
            }
        };
        if grant.code_expires_at <= self.now {
            return self
                .refuse("the authorization code has expired (codes are valid for 60 seconds)");
        }
        // RFC 6749 4.1.3: redirect_uri is required if the authorization request included it,
        // and the values must be identical (compared as strings, not as parsed URLs).
        let redirect_uri = match (self.token_redirect_uri, grant.redirect_uri_given) {
            (Some(given), _) if given == grant.redirect_uri => grant.redirect_uri.clone(),
            (Some(_), _) => {
                return self.refuse(
                    "redirect_uri differs from the one in the authorization request (RFC 6749 4.1.3)",
                );
            }
            (None, false) => OMITTED_REDIRECT_URI.to_string(),
            (None, true) => {
                return self.refuse(
                    "redirect_uri is required: the authorization request included it (RFC 6749 4.1.3)",
                );
            }
        };
        let mut extensions = Extensions::new();
        if let Some(p) = grant.pkce {
            // oxide-auth's PKCE encoding, stored as it produced it at authorization.
            extensions.set_raw("pkce".into(), Value::private(Some(p)));
        }
        self.outcome.grant_id.set(Some(grant.id));
        Ok(Some(Grant {
            owner_id: grant.user_id.to_string(),
            client_id: grant.client_id,
            scope: grant.scope.parse().map_err(|_| ())?,
            redirect_uri: url::Url::parse(&redirect_uri).map_err(|_| ())?,
            until: super::issuer::until(grant.code_expires_at, self.now)?,
            extensions,
        }))
    }
}

/// PKCE at the authorization endpoint: oxide-auth's extension records an S256 challenge
/// (RFC 7636 4.3). `plain` was refused before the flow runs (RFC 9700 2.1.1).
pub struct PkceChallenge;

impl authorization::Extension for PkceChallenge {
    fn extend(&mut self, request: &dyn authorization::Request) -> Result<Extensions, ()> {
        let pkce = Pkce::optional();
        let mut extensions = Extensions::new();
        if let Some(value) = pkce.challenge(
            request.extension("code_challenge_method"),
            request.extension("code_challenge"),
        )? {
            extensions.set(&pkce, value);
        }
        Ok(extensions)
    }
}

/// PKCE at the token endpoint (RFC 7636 4.5, 4.6), with the errors the RFCs name: oxide-auth
/// would answer `invalid_request` for a wrong verifier.
pub struct PkceVerifier<'a> {
    /// The client (set by the registrar), and where refusals are recorded.
    pub outcome: &'a Outcome,
}

impl PkceVerifier<'_> {
    fn refuse(&self, error: ErrorCode, description: &str) -> Result<Extensions, ()> {
        *self.outcome.failure.borrow_mut() = Some(OAuthResponse::error(400, error, description));
        Err(())
    }
}

impl accesstoken::Extension for PkceVerifier<'_> {
    fn extend(
        &mut self,
        request: &dyn accesstoken::Request,
        mut data: Extensions,
    ) -> Result<Extensions, ()> {
        let pkce = Pkce::optional();
        let stored = data.remove(&pkce);
        let verifier: Option<Cow<str>> = request.extension("code_verifier");
        let public = self
            .outcome
            .client
            .borrow()
            .as_ref()
            .is_some_and(|c| c.client.public);
        match (&stored, verifier.as_deref()) {
            // RFC 9700 2.1.1: a verifier for a code issued without a challenge is a downgrade
            // attempt and is refused.
            (None, Some(_)) => self.refuse(
                ErrorCode::InvalidGrant,
                "code_verifier was sent, but the authorization request had no code_challenge (RFC 9700 2.1.1)",
            ),
            (None, None) if public => self.refuse(
                ErrorCode::InvalidGrant,
                "public clients must use PKCE (RFC 7636)",
            ),
            (None, None) => Ok(Extensions::new()),
            (Some(_), None) => self.refuse(
                ErrorCode::InvalidGrant,
                "code_verifier is required: the authorization request used PKCE (RFC 7636 4.5)",
            ),
            // RFC 7636 4.1: 43 to 128 unreserved characters.
            (Some(_), Some(v)) if !is_pkce_value(v) => self.refuse(
                ErrorCode::InvalidRequest,
                "code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636 4.1)",
            ),
            (Some(_), Some(_)) => match pkce.verify(stored, verifier) {
                Ok(()) => Ok(Extensions::new()),
                // RFC 7636 4.6: "invalid_grant".
                Err(()) => self.refuse(
                    ErrorCode::InvalidGrant,
                    "code_verifier does not match the code_challenge (RFC 7636 4.6)",
                ),
            },
        }
    }
}
