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

fn find(
    ctx: &OAuthContext<'_>,
    conn: &mut AnyConnection,
    client: &CachedClient,
    token: &str,
    now: i64,
    revoked: Revoked,
) -> Result<Found, AppError> {
    if let Some(access) = own_access_token(ctx, client, token, now) {
        if let Some(claims) = access
            && (revoked == Revoked::DoesNotMatter || !store::is_jti_revoked(conn, &claims.jti)?)
        {
            return Ok(Found::Access(claims));
        }
        return Ok(Found::Nothing);
    }
    let row = store::find_refresh(conn, &HashedToken::of(token))?;
    Ok(active_refresh(row, client, now))
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
    let Some(token) = token_param(req) else {
        return OAuthResponse::invalid_request("missing parameter: token");
    };
    let now = ctx.clock.now();
    find(ctx, conn, &authenticated.client, token, now, revoked)
        .and_then(|found| answer(conn, found, now))
        .unwrap_or_else(|e| lookup_failed(&e))
}

/// The `token` parameter of an introspection or revocation request (RFC 7662 2.1, RFC 7009
/// 2.1: required); None when it is missing or empty, which [`with_token`] refuses.
pub(super) fn token_param(req: &ClientRequest) -> Option<&str> {
    req.param("token").filter(|t| !t.is_empty())
}

/// An access token (a JWT) that the authenticated client presented, verified in memory: its
/// claims when it is valid, unexpired and the client's own (RFC 7662 2.2, RFC 7009 2.1),
/// whether revoked or not. None for a token that is not a JWT (a refresh token).
pub(super) fn own_access_token(
    ctx: &OAuthContext<'_>,
    client: &CachedClient,
    token: &str,
    now: i64,
) -> Option<Option<std::sync::Arc<crate::token::AccessClaims>>> {
    if !token.contains('.') {
        return None;
    }
    Some(
        ctx.keys
            .get()
            .verify(token, ctx.issuer, ctx.audience, now)
            .filter(|claims| claims.client_id == client.client.client_id),
    )
}

/// A refresh token's row as the calling client may know it: found when it is the client's
/// own, unrevoked, unused and unexpired (RFC 7662 2.2, RFC 7009 2.1), else nothing.
fn active_refresh(row: Option<store::RefreshRow>, client: &CachedClient, now: i64) -> Found {
    match row {
        Some(row)
            if row.client_id == client.client.client_id
                && row.revoked_at.is_none()
                && row.rotated_at.is_none()
                && row.expires_at > now =>
        {
            Found::Refresh(row)
        }
        _ => Found::Nothing,
    }
}

/// The answer to a lookup that failed: 503 when the database is away, else 500.
pub(super) fn lookup_failed(e: &AppError) -> OAuthResponse {
    tracing::error!(error = %e, "token lookup failed");
    OAuthResponse::storage_failed(e)
}

/// RFC 7662 2 on PostgreSQL, on the async executor (issue 13): an access token is verified in
/// memory and looked for on the revocation list, a refresh token looked up, each in one
/// statement with other requests' ([`store::RevokedBatch`], [`store::FindRefreshBatch`]); the
/// request waits with neither a thread nor a pooled connection of its own. None when the
/// request has no token, which [`introspect`] answers.
pub async fn introspect_batched(
    ctx: &OAuthContext<'_>,
    (req, authenticated): &(ClientRequest, Authenticated),
) -> Option<OAuthResponse> {
    let batches = ctx.batches?;
    let token = token_param(req)?;
    let now = ctx.clock.now();
    let client = &authenticated.client;
    let found = match own_access_token(ctx, client, token, now) {
        Some(None) => Ok(Found::Nothing),
        Some(Some(claims)) => batches
            .revoked
            .run_async(claims.jti.clone())
            .await
            .map(|revoked| match revoked {
                Some(()) => Found::Nothing,
                None => Found::Access(claims),
            }),
        None => batches
            .find_refresh
            .run_async(HashedToken::of(token))
            .await
            .map(|row| active_refresh(row, client, now)),
    };
    Some(found.map_or_else(|e| lookup_failed(&e), |found| introspection(ctx, found)))
}

/// RFC 7662 2: is this token active, and what does it allow?
pub fn introspect(
    ctx: &OAuthContext<'_>,
    conn: &mut AnyConnection,
    req: &(ClientRequest, Authenticated),
) -> OAuthResponse {
    with_token(ctx, conn, req, Revoked::Matters, |_, found, _| {
        Ok(introspection(ctx, found))
    })
}

/// RFC 7662 2.2: the answer for what was found; anything not active, or not the caller's, is
/// just `active: false`.
fn introspection(ctx: &OAuthContext<'_>, found: Found) -> OAuthResponse {
    match found {
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
    }
}
