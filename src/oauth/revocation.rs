//! Token revocation (RFC 7009). It requires client authentication (RFC 7009 2.1), and a
//! client only ever revokes its own tokens: another client's token is left alone.

use super::client_auth::Authenticated;
use super::context::OAuthContext;
use super::introspection::{
    Found, Revoked, lookup_failed, own_access_token, token_param, with_token,
};
use super::request::{ClientRequest, OAuthResponse};
use crate::db::AnyConnection;
use crate::token::store;

/// [`revoke`] on PostgreSQL for an access token, on the async executor: the token is
/// verified in memory and put on the revocation list in one statement with other requests'
/// ([`store::RevokeBatch`]; issue 13). None for a request without a token, or with a refresh
/// token, whose whole family goes in a transaction: [`revoke`] answers those.
pub async fn revoke_batched(
    ctx: &OAuthContext<'_>,
    (req, authenticated): &(ClientRequest, Authenticated),
) -> Option<OAuthResponse> {
    let batches = ctx.batches?;
    let token = token_param(req)?;
    let claims = own_access_token(ctx, &authenticated.client, token, ctx.clock.now())?;
    let revoked = match claims {
        Some(c) => batches
            .revoke
            .run_async(store::RevokeItem {
                jti: c.jti.clone(),
                expires_at: c.exp,
            })
            .await
            .map(drop),
        // Not a token of this client's: nothing to do (RFC 7009 2.2).
        None => Ok(()),
    };
    Some(revoked.map_or_else(|e| lookup_failed(&e), |()| revoked_answer()))
}

/// RFC 7009 2.2: 200, with nothing to say, whether anything was revoked or not.
fn revoked_answer() -> OAuthResponse {
    OAuthResponse {
        status: 200,
        ..OAuthResponse::default()
    }
}

/// RFC 7009 2: revoke a token. A refresh token takes its whole family with it: every refresh
/// token and every access token issued from the same authorization (RFC 7009 2.1 allows it;
/// RFC 9700 4.14.2 asks for it). An unknown, expired or foreign token is answered 200 as well
/// (RFC 7009 2.2: "invalid tokens do not cause an error response").
pub fn revoke(
    ctx: &OAuthContext<'_>,
    conn: &mut AnyConnection,
    req: &(ClientRequest, Authenticated),
) -> OAuthResponse {
    with_token(
        ctx,
        conn,
        req,
        Revoked::DoesNotMatter,
        |conn, found, now| {
            match found {
                // (On PostgreSQL, access tokens are revoked in batches: `revoke_batched`.)
                Found::Access(c) => store::revoke_jti(conn, &c.jti, c.exp)?,
                Found::Refresh(r) => store::revoke_family(conn, r.grant_id, now)?,
                Found::Nothing => {}
            }
            Ok(revoked_answer())
        },
    )
}
