//! oxide-auth's `Issuer`: signs RFC 9068 JWT access tokens.

use oxide_auth::primitives::grant::Grant;
use oxide_auth::primitives::issuer::{IssuedToken, Issuer, RefreshedToken, TokenType};

use super::Outcome;
use crate::AppState;
use crate::token::AccessClaims;

/// Issues JWT access tokens for one request.
pub struct JwtIssuer<'a> {
    /// Shared server state (keys, issuer, audience, default lifetime).
    pub state: &'a AppState,
    /// The client loaded by the registrar (for its token lifetime).
    pub outcome: &'a Outcome,
    /// Request time.
    pub now: i64,
}

impl Issuer for JwtIssuer<'_> {
    fn issue(&mut self, grant: Grant) -> Result<IssuedToken, ()> {
        let ttl = self
            .outcome
            .client
            .borrow()
            .as_ref()
            .and_then(|c| c.client.access_token_ttl)
            .unwrap_or(self.state.access_token_ttl);
        let mut scopes: Vec<&str> = grant.scope.iter().collect();
        scopes.sort_unstable();
        // RFC 9068 2.2: iss, exp, aud, sub, client_id, iat, jti; scope per 2.2.3.
        let claims = AccessClaims {
            iss: self.state.issuer.clone(),
            sub: grant.owner_id,
            aud: self.state.audience.clone(),
            exp: self.now + ttl,
            iat: self.now,
            jti: crate::crypto::unique_id(),
            client_id: grant.client_id,
            scope: if scopes.is_empty() {
                None
            } else {
                Some(scopes.join(" "))
            },
        };
        let token = self.state.keys.get().current().sign(&claims).map_err(|e| {
            tracing::error!(error = %e, "could not sign an access token");
        })?;
        self.outcome.expires_in.set(Some(ttl));
        Ok(IssuedToken {
            token,
            refresh: None,
            until: chrono::DateTime::from_timestamp(claims.exp, 0).ok_or(())?,
            token_type: TokenType::Bearer,
        })
    }

    fn refresh(&mut self, _refresh: &str, _grant: Grant) -> Result<RefreshedToken, ()> {
        Err(())
    }

    fn recover_token(&self, _token: &str) -> Result<Option<Grant>, ()> {
        Ok(None)
    }

    fn recover_refresh(&self, _token: &str) -> Result<Option<Grant>, ()> {
        Ok(None)
    }
}
