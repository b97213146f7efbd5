//! Token revocation (RFC 7009). It requires client authentication (RFC 7009 2.1), and a
//! client only ever revokes its own tokens: another client's token is left alone.

use super::client_auth::Authenticated;
use super::context::OAuthContext;
use super::introspection::{Found, Revoked, with_token};
use super::request::{ClientRequest, OAuthResponse};
use crate::db::AnyConnection;
use crate::token::store;

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
            Ok(OAuthResponse {
                status: 200,
                ..OAuthResponse::default()
            })
        },
    )
}
