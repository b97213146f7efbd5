//! Token revocation (RFC 7009). It requires client authentication (RFC 7009 2.1), and a
//! client only ever revokes its own tokens: another client's token is left alone.

use super::client_auth::Authenticated;
use super::context::OAuthContext;
use super::introspection::{Found, Revoked, found_batched, lookup_failed, with_token};
use super::request::{ClientRequest, OAuthResponse};
use crate::db::AnyConnection;
use crate::token::store;

/// [`revoke`] on PostgreSQL for an access token, from the async executor: the token is
/// verified in memory and put on the revocation list in a batch, with other requests'
/// (issue 13). None for anything else (a refresh token), which [`revoke`] answers.
pub async fn revoke_batched(
    ctx: &OAuthContext<'_>,
    req: &(ClientRequest, Authenticated),
) -> Option<OAuthResponse> {
    // A refresh token takes its family with it: that goes the slow way, in a transaction.
    let found = found_batched(ctx, req, Revoked::DoesNotMatter, false).await?;
    let batches = ctx.batches?;
    let revoked = match found {
        Ok(Found::Access(c)) => batches
            .revoke
            .run_async(store::RevokeItem {
                jti: c.jti.clone(),
                expires_at: c.exp,
            })
            .await
            .map(drop),
        Ok(_) => Ok(()),
        Err(e) => Err(e),
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
                // With other requests' revocations in one statement on PostgreSQL.
                Found::Access(c) => {
                    let item = store::RevokeItem {
                        jti: c.jti.clone(),
                        expires_at: c.exp,
                    };
                    let revoke = ctx.batches.map(|b| &b.revoke);
                    crate::db::batcher::run_or_alone(revoke, conn, item)?;
                }
                Found::Refresh(r) => store::revoke_family(conn, r.grant_id, now)?,
                Found::Nothing => {}
            }
            Ok(revoked_answer())
        },
    )
}
