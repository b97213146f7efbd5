//! oxide-auth's `OwnerSolicitor`.

use oxide_auth::endpoint::{OwnerConsent, OwnerSolicitor, Solicitation};

use super::web::OAuthRequest;

/// For client_credentials the client acts on its own behalf (RFC 6749 4.4): the resource
/// owner is the client itself and there is nobody to ask.
pub struct ClientIsOwner;

impl OwnerSolicitor<OAuthRequest> for ClientIsOwner {
    fn check_consent(
        &mut self,
        _: &mut OAuthRequest,
        solicitation: Solicitation,
    ) -> OwnerConsent<super::web::OAuthResponse> {
        OwnerConsent::Authorized(solicitation.pre_grant().client_id.clone())
    }
}
