//! Token introspection (RFC 7662). It requires client authentication, and a client only ever
//! sees its own tokens: another client's token introspects as inactive. [`find`] is shared
//! with revocation (RFC 7009, [`super::revocation`]), which follows the same rule.

use super::client_auth::Authenticated;
use super::context::OAuthContext;
use super::request::{ClientRequest, OAuthResponse};
use crate::client::cache::CachedClient;
use crate::crypto::HashedToken;
use crate::db::AnyConnection;
use crate::error::AppError;
use crate::token::store;

fn json(status: u16, value: serde_json::Value) -> OAuthResponse {
    OAuthResponse {
        status,
        body: value.to_string(),
        ..OAuthResponse::default()
    }
}

/// What a token is, as far as the calling client may know.
pub(super) enum Found {
    Access(std::sync::Arc<crate::token::AccessClaims>),
    Refresh(store::RefreshRow),
    Nothing,
}

/// Whether [`find`] asks if an access token was revoked: introspection must (RFC 7662 2.2),
/// revocation need not (revoking a revoked token again changes nothing, RFC 7009 2.2), which
/// saves it a query.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Revoked {
    /// A revoked access token is `Found::Nothing`.
    Matters,
    /// A revoked access token is found as any other.
    DoesNotMatter,
}

/// Whether an access token's `jti` is on the revocation list: on PostgreSQL asked together
/// with other requests' in one statement ([`store::RevokedBatch`]).
fn is_revoked(
    ctx: &OAuthContext<'_>,
    conn: &mut AnyConnection,
    jti: &str,
) -> Result<bool, AppError> {
    let revoked = ctx.batches.map(|b| &b.revoked);
    Ok(crate::db::batcher::run_or_alone(revoked, conn, jti.to_owned())?.is_some())
}

fn find(
    ctx: &OAuthContext<'_>,
    conn: &mut AnyConnection,
    client: &CachedClient,
    token: &str,
    now: i64,
    revoked: Revoked,
) -> Result<Found, AppError> {
    let own = |client_id: &str| client_id == client.client.client_id;
    if token.contains('.') {
        if let Some(claims) = ctx.keys.get().verify(token, ctx.issuer, ctx.audience, now)
            && own(&claims.client_id)
            && (revoked == Revoked::DoesNotMatter || !is_revoked(ctx, conn, &claims.jti)?)
        {
            return Ok(Found::Access(claims));
        }
        return Ok(Found::Nothing);
    }
    Ok(match store::find_refresh(conn, &HashedToken::of(token))? {
        Some(row)
            if own(&row.client_id)
                && row.revoked_at.is_none()
                && row.rotated_at.is_none()
                && row.expires_at > now =>
        {
            Found::Refresh(row)
        }
        _ => Found::Nothing,
    })
}

/// Finds the `token` parameter's token as far as the authenticated client may know it, and
/// answers with `answer` (given the connection, what was found and the time).
pub(super) fn with_token(
    ctx: &OAuthContext<'_>,
    conn: &mut AnyConnection,
    (req, authenticated): &(ClientRequest, Authenticated),
    revoked: Revoked,
    answer: impl FnOnce(&mut AnyConnection, Found, i64) -> Result<OAuthResponse, AppError>,
) -> OAuthResponse {
    let Some(token) = req.param("token").filter(|t| !t.is_empty()) else {
        return OAuthResponse::invalid_request("missing parameter: token");
    };
    let now = ctx.clock.now();
    find(ctx, conn, &authenticated.client, token, now, revoked)
        .and_then(|found| answer(conn, found, now))
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "token lookup failed");
            OAuthResponse::storage_failed(&e)
        })
}

/// RFC 7662 2: is this token active, and what does it allow?
pub fn introspect(
    ctx: &OAuthContext<'_>,
    conn: &mut AnyConnection,
    req: &(ClientRequest, Authenticated),
) -> OAuthResponse {
    // RFC 7662 2.2: anything not active, or not the caller's, is just `active: false`.
    with_token(ctx, conn, req, Revoked::Matters, |_, found, _| {
        Ok(match found {
            Found::Access(c) => json(
                200,
                serde_json::json!({
                    "active": true,
                    "scope": c.scope.as_deref().unwrap_or_default(),
                    "client_id": c.client_id,
                    "sub": c.sub,
                    "exp": c.exp,
                    "iat": c.iat,
                    "iss": c.iss,
                    "aud": c.aud,
                    "jti": c.jti,
                    "token_type": "Bearer",
                }),
            ),
            Found::Refresh(r) => json(
                200,
                serde_json::json!({
                    "active": true,
                    "scope": r.scope,
                    "client_id": r.client_id,
                    "sub": r.user_id.to_string(),
                    "exp": r.expires_at,
                    "iat": r.created_at,
                    "iss": ctx.issuer,
                    "token_type": "refresh_token",
                }),
            ),
            Found::Nothing => json(200, serde_json::json!({ "active": false })),
        })
    })
}
