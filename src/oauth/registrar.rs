//! oxide-auth's `Registrar` for the token endpoint's flows. It decides nothing of its own:
//! the client authenticated before the flow ran ([`super::client_auth::authenticate`]), the
//! grant type was permitted ([`super::grants::permitted`]), and the scopes are those
//! [`super::scope::granted`] decides. Redirect URIs are not its business either: the
//! authorization endpoint judges them in [`super::authorization::request::check`] and issues
//! codes itself ([`super::codes::new_code`]), and the client_credentials grant has none.

use std::borrow::Cow;

use oxide_auth::endpoint::Scope;
use oxide_auth::primitives::registrar::{
    BoundClient, ClientUrl, PreGrant, RegisteredUrl, Registrar, RegistrarError,
};

use super::Outcome;
use super::client_auth::Authenticated;
use super::context::OAuthContext;
use super::error::ErrorCode;
use super::request::OAuthResponse;
use super::scope::{Grantor, granted};

/// The registrar of one token request, for the client that authenticated.
pub struct DbRegistrar<'a> {
    /// Server settings (the issuer URL stands in for the missing redirect URI).
    pub ctx: &'a OAuthContext<'a>,
    /// Where a refusal is recorded.
    pub outcome: &'a Outcome,
    /// The client that authenticated.
    pub authenticated: &'a Authenticated,
    /// The `scope` parameter of the request, if any.
    pub requested_scope: Option<&'a str>,
}

impl Registrar for DbRegistrar<'_> {
    /// Only the client_credentials flow asks, and that grant has no redirection (RFC 6749
    /// 4.4); oxide-auth still wants a URL, so it gets the issuer's.
    fn bound_redirect<'b>(&self, bound: ClientUrl<'b>) -> Result<BoundClient<'b>, RegistrarError> {
        let issuer =
            url::Url::parse(self.ctx.issuer).map_err(|_| RegistrarError::PrimitiveError)?;
        Ok(BoundClient {
            client_id: bound.client_id,
            redirect_uri: Cow::Owned(RegisteredUrl::Semantic(issuer)),
        })
    }

    /// The scopes of a client_credentials request, as [`granted`] decides them.
    fn negotiate(
        &self,
        bound: BoundClient,
        _scope: Option<Scope>,
    ) -> Result<PreGrant, RegistrarError> {
        let client = &self.authenticated.client.client;
        let scopes = granted(client, self.requested_scope, Grantor::Client).map_err(|d| {
            self.outcome.refuse(ErrorCode::InvalidScope, &d);
            RegistrarError::Unspecified
        })?;
        let scope: Scope = scopes
            .to_string()
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
        if self.authenticated.client.client.client_id == client_id {
            return Ok(());
        }
        *self.outcome.failure.borrow_mut() = Some(OAuthResponse::invalid_client(
            "client authentication failed",
            false,
        ));
        Err(RegistrarError::Unspecified)
    }
}
