//! oxide-auth's `Issuer`: signs RFC 9068 JWT access tokens, and for the authorization code
//! and refresh grants issues and rotates refresh tokens (RFC 6749 6, RFC 9700 4.14.2).

use std::cell::RefCell;

use oxide_auth::primitives::grant::{Extensions, Grant};
use oxide_auth::primitives::issuer::{IssuedToken, Issuer, RefreshedToken, TokenType};

use super::client_auth::Authenticated;
use super::context::OAuthContext;
use super::error::ErrorCode;
use super::{Issued, Outcome};
use crate::client::{Client, GrantType};
use crate::crypto::{HashedToken, PlainToken};
use crate::db::AnyConnection;
use crate::error::AppError;
use crate::token::AccessClaims;
use crate::token::store::{self, NewRefresh, Recorded, RefreshRow};

/// Signs an RFC 9068 access token for `client` (RFC 9068 2.2: iss, exp, aud, sub, client_id,
/// iat, jti; scope per 2.2.3): the one place where an access token's claims and lifetime are
/// decided (the client's lifetime or the server's, capped for admin-API scopes,
/// [`crate::token::lifetime`]), for every grant and for the tokens an admin generates.
pub fn sign_access_token(
    ctx: &OAuthContext<'_>,
    sub: String,
    client: &Client,
    scopes: Vec<&str>,
    now: i64,
) -> Result<(String, std::sync::Arc<AccessClaims>), AppError> {
    ctx.keys
        .get()
        .sign(access_claims(ctx, sub, client, scopes, now), now)
}

/// The claims [`sign_access_token`] signs (with a fresh `jti`).
fn access_claims(
    ctx: &OAuthContext<'_>,
    sub: String,
    client: &Client,
    scopes: Vec<&str>,
    now: i64,
) -> AccessClaims {
    let ttl = crate::token::lifetime(
        client.access_token_ttl.unwrap_or(ctx.access_token_ttl),
        scopes.iter().copied(),
        ctx.admin_token_ttl,
    );
    AccessClaims::new(
        ctx.issuer,
        ctx.audience,
        sub,
        client.client_id.clone(),
        scopes,
        now,
        ttl,
    )
}

/// Issues tokens for one token request.
pub struct JwtIssuer<'a> {
    /// Server settings and keys.
    pub ctx: &'a OAuthContext<'a>,
    /// The request's connection; None for client_credentials, which stores nothing.
    pub conn: Option<&'a RefCell<&'a mut AnyConnection>>,
    /// Where a refusal is recorded; the family a redeemed code heads.
    pub outcome: &'a Outcome,
    /// The client that authenticated.
    pub authenticated: &'a Authenticated,
    /// Request time.
    pub now: i64,
    /// The refresh token being exchanged (found by `recover_refresh`, rotated by `refresh`).
    pub refresh_row: RefCell<Option<RefreshRow>>,
    /// A refresh that one statement already decided before the flow ran
    /// ([`store::RefreshBatch`]; PostgreSQL, no `scope` parameter): `recover_refresh` takes
    /// its outcome instead of looking the token up.
    pub rotation: RefCell<Option<Rotation>>,
    /// What was issued, for the response.
    pub issued: Option<Issued>,
}

/// Tokens that one statement stored before the access token was signed (issue 13: a refresh,
/// [`store::RefreshBatch`], or a code exchange, [`store::RedeemBatch`],
/// on PostgreSQL): the access token's `jti` and expiry it recorded, and the new refresh token.
pub struct StoredAhead {
    /// The access token's `jti`.
    pub jti: String,
    /// Its expiry.
    pub access_expires_at: i64,
    /// The refresh token stored with it; None when the client may not refresh.
    refresh: Option<FreshRefresh>,
}

impl StoredAhead {
    /// The tokens to store for `client` before signing: a fresh `jti`, the access token's
    /// expiry, and a refresh token when the client may use the refresh grant.
    ///
    /// The expiry does not depend on the scope: these grants come from a person's
    /// authorization, which never yields a `portcullis:*` scope (the only kind that shortens
    /// a lifetime, [`crate::token::lifetime`]); [`JwtIssuer::hand_out`] makes sure.
    pub fn new(ctx: &OAuthContext<'_>, client: &Client, now: i64) -> Result<StoredAhead, AppError> {
        let ttl = crate::token::lifetime(
            client.access_token_ttl.unwrap_or(ctx.access_token_ttl),
            std::iter::empty(),
            ctx.admin_token_ttl,
        );
        Ok(StoredAhead {
            jti: crate::crypto::unique_id(),
            access_expires_at: now + ttl,
            refresh: fresh_refresh(ctx, client, now)?,
        })
    }

    /// The one-statement rotation of the refresh token `presented` by `client` into the
    /// tokens stored ahead ([`store::RefreshBatch`]); None when the client may not refresh.
    pub fn refresh_item(
        &self,
        presented: &str,
        client: &Client,
        now: i64,
    ) -> Option<store::RefreshItem> {
        let next = self.refresh.as_ref()?;
        Some(store::RefreshItem {
            presented: HashedToken::of(presented),
            client_pk: client.id,
            access_jti: self.jti.clone(),
            access_expires_at: self.access_expires_at,
            next_hash: next.hash.clone(),
            next_expires_at: next.expires_at,
            now,
        })
    }

    /// The one-statement exchange of `code` by `client` ([`store::RedeemBatch`]) into the
    /// tokens stored ahead: the conditions the database checks besides (the token request's
    /// `redirect_uri`, the challenge `pkce` that its verifier answers).
    pub fn redeem_item(
        &self,
        code: &str,
        client: &Client,
        redirect_uri: Option<&str>,
        pkce: Option<&str>,
        now: i64,
    ) -> store::RedeemItem {
        store::RedeemItem {
            code: HashedToken::of(code),
            client_pk: client.id,
            redirect_uri: redirect_uri.map(str::to_owned),
            pkce: pkce.map(str::to_owned),
            access_jti: self.jti.clone(),
            access_expires_at: self.access_expires_at,
            refresh: self
                .refresh
                .as_ref()
                .map(|r| (r.hash.clone(), r.expires_at)),
            now,
        }
    }
}

/// A refresh token for `client`, if it may use the refresh grant (RFC 6749 1.5: only then is
/// one issued).
fn fresh_refresh(
    ctx: &OAuthContext<'_>,
    client: &Client,
    now: i64,
) -> Result<Option<FreshRefresh>, AppError> {
    if !client.allows_grant(GrantType::RefreshToken) {
        return Ok(None);
    }
    let value = PlainToken::generate()?;
    let ttl = client.refresh_token_ttl.unwrap_or(ctx.refresh_token_ttl);
    Ok(Some(FreshRefresh {
        hash: value.hashed(),
        value,
        expires_at: now + ttl,
    }))
}

/// A refresh decided by one statement before the flow ran: the tokens it stored, and what it
/// rotated (None: nothing, the slow path says why).
pub struct Rotation {
    /// The tokens the statement stored.
    pub ahead: StoredAhead,
    /// Its outcome.
    pub rotated: Result<Option<store::RotatedInOne>, AppError>,
}

/// A new refresh token value and what is stored of it.
struct FreshRefresh {
    value: PlainToken,
    hash: HashedToken,
    expires_at: i64,
}

impl<'a> JwtIssuer<'a> {
    fn client(&self) -> &'a Client {
        &self.authenticated.client.client
    }

    fn db_failed(&self, e: AppError) {
        self.outcome.storage_failed("token storage failed", &e);
    }

    /// A refresh token for the client, if it may use the refresh grant.
    fn fresh_refresh(&self) -> Result<Option<FreshRefresh>, ()> {
        fresh_refresh(self.ctx, self.client(), self.now).map_err(|e| self.db_failed(e))
    }

    /// Signs an access token for a grant; returns it with its claims.
    fn sign(&self, grant: &Grant) -> Result<(String, std::sync::Arc<AccessClaims>), ()> {
        sign_access_token(
            self.ctx,
            grant.owner_id.clone(),
            self.client(),
            grant.scope.iter().collect(),
            self.now,
        )
        .map_err(|e| {
            tracing::error!(error = %e, "could not sign an access token");
        })
    }

    fn record(&mut self, token: &str, claims: &AccessClaims, refresh: Option<&FreshRefresh>) {
        self.issued = Some(Issued {
            access_token: token.to_string(),
            refresh_token: refresh.map(|r| r.value.expose().to_string()),
            expires_in: claims.exp - claims.iat,
            scope: claims.scope.clone().unwrap_or_default(),
        });
    }

    fn conn(&self) -> Result<std::cell::RefMut<'a, &'a mut AnyConnection>, ()> {
        self.conn.map(|c| c.borrow_mut()).ok_or(())
    }
}

impl JwtIssuer<'_> {
    /// `recover_refresh` from a refresh that one statement decided (PostgreSQL, issue 13,
    /// [`crate::oauth::grants::refresh_batched`]): the token was found and rotated, and the
    /// new access and refresh tokens recorded, by the database in one atomic statement whose
    /// conditions are the checks of the slow path (unused, unexpired, this client's, family
    /// not revoked); what oxide-auth checks afterwards holds by then (the client is the
    /// authenticated one, the grant unexpired, no scope was asked for). When the statement
    /// rotated nothing, [`Outcome::slow_path`] asks for the whole exchange again in a
    /// transaction, which says why and revokes the family of a replayed token.
    fn rotated(&self, Rotation { ahead, rotated }: Rotation) -> Result<Option<Grant>, ()> {
        let rotated = self
            .outcome
            .stored_in_one(rotated, "token storage failed")
            .ok_or(())?;
        let next_expires_at = ahead.refresh.as_ref().ok_or(())?.expires_at;
        let grant = Grant {
            owner_id: rotated.user_id.to_string(),
            client_id: self.client().client_id.clone(),
            // As in the slow path: no `portcullis:*` scope from a person's grant.
            scope: crate::token::granted_to_person(&rotated.scope)
                .parse()
                .map_err(|_| ())?,
            redirect_uri: url::Url::parse(self.ctx.issuer).map_err(|_| ())?,
            until: until(next_expires_at, self.now)?,
            extensions: Extensions::new(),
        };
        *self.outcome.stored_ahead.borrow_mut() = Some(ahead);
        Ok(Some(grant))
    }

    /// Signs the access token that one statement recorded ([`StoredAhead`]), with its `jti`
    /// and expiry; returns it, the refresh token stored with it, and oxide-auth's `until`.
    #[allow(clippy::type_complexity)]
    fn hand_out(
        &mut self,
        grant: &Grant,
        ahead: StoredAhead,
    ) -> Result<(String, Option<String>, chrono::DateTime<chrono::Utc>), ()> {
        let mut claims = access_claims(
            self.ctx,
            grant.owner_id.clone(),
            self.client(),
            grant.scope.iter().collect(),
            self.now,
        );
        if claims.exp != ahead.access_expires_at {
            tracing::error!("a grant recorded another access-token expiry than it signs");
            return Err(());
        }
        claims.jti = ahead.jti;
        let (token, claims) = self.ctx.keys.get().sign(claims, self.now).map_err(|e| {
            tracing::error!(error = %e, "could not sign an access token");
        })?;
        self.record(&token, &claims, ahead.refresh.as_ref());
        Ok((
            token,
            ahead.refresh.map(|r| r.value.into_exposed()),
            until(claims.exp, self.now)?,
        ))
    }
}

/// oxide-auth's `Grant::until` for something that expires at `ts` by the server's clock, which
/// reads `now`. oxide-auth compares `until` with the system clock (its refresh and code flows
/// refuse an expired grant); every expiry is decided before that, by the server's clock (see
/// [`crate::clock::Clock`]), so oxide-auth gets the same remaining time on the system clock.
pub(crate) fn until(ts: i64, now: i64) -> Result<chrono::DateTime<chrono::Utc>, ()> {
    let remaining = chrono::Duration::try_seconds(ts.saturating_sub(now)).ok_or(())?;
    chrono::Utc::now().checked_add_signed(remaining).ok_or(())
}

impl Issuer for JwtIssuer<'_> {
    fn issue(&mut self, grant: Grant) -> Result<IssuedToken, ()> {
        if let Some(ahead) = self.outcome.stored_ahead.take() {
            let (token, refresh, until) = self.hand_out(&grant, ahead)?;
            return Ok(IssuedToken {
                token,
                refresh,
                until,
                token_type: TokenType::Bearer,
            });
        }
        let (token, claims) = self.sign(&grant)?;
        let mut refresh = None;
        // From an authorization code: remember the access token's jti in its family (so that
        // a replayed code revokes it, RFC 6749 4.1.2) and issue the first refresh token.
        if let Some(grant_id) = self.outcome.family.get() {
            refresh = self.fresh_refresh()?;
            let mut conn = self.conn()?;
            let stored = store::record_issued(
                &mut conn,
                grant_id,
                &claims.jti,
                claims.exp,
                refresh
                    .as_ref()
                    .map(|r| NewRefresh {
                        token_hash: &r.hash,
                        scope: claims.scope.as_deref().unwrap_or(""),
                        expires_at: r.expires_at,
                    })
                    .as_ref(),
                self.now,
            );
            drop(conn);
            match stored {
                // Revoked: a replay of this code raced the exchange. The exchange won, and
                // gets its tokens, but they are already revoked (RFC 6749 4.1.2).
                Ok(Recorded::Active | Recorded::Revoked) => {}
                Ok(Recorded::Gone) => {
                    self.outcome.refuse(
                        ErrorCode::InvalidGrant,
                        "the authorization code is no longer valid",
                    );
                    return Err(());
                }
                Err(e) => {
                    self.db_failed(e);
                    return Err(());
                }
            }
        }
        self.record(&token, &claims, refresh.as_ref());
        Ok(IssuedToken {
            token,
            refresh: refresh.map(|r| r.value.into_exposed()),
            until: until(claims.exp, self.now)?,
            token_type: TokenType::Bearer,
        })
    }

    /// RFC 6749 6 with rotation (RFC 9700 4.14.2): the presented token is used up, a new one
    /// with the same scope is issued in the same family; the access token carries the
    /// (possibly narrowed) requested scope.
    fn refresh(&mut self, _refresh: &str, grant: Grant) -> Result<RefreshedToken, ()> {
        if let Some(ahead) = self.outcome.stored_ahead.take() {
            let (token, refresh, until) = self.hand_out(&grant, ahead)?;
            return Ok(RefreshedToken {
                token,
                refresh,
                until,
                token_type: TokenType::Bearer,
            });
        }
        // The grant was permitted before the flow ran (`grants::permitted`).
        let Some(row) = self.refresh_row.take() else {
            return Err(());
        };
        let (token, claims) = self.sign(&grant)?;
        let refresh = self.fresh_refresh()?.ok_or(())?;
        let now = self.now;
        let mut conn = self.conn()?;
        // RFC 6749 6: the new refresh token's scope is that of the one presented.
        let rotated = store::rotate_refresh(
            &mut conn,
            row.id,
            row.grant_id,
            &claims.jti,
            claims.exp,
            &NewRefresh {
                token_hash: &refresh.hash,
                scope: &row.scope,
                expires_at: refresh.expires_at,
            },
            now,
        );
        match rotated {
            Ok(true) => {}
            Ok(false) => {
                // Used concurrently by someone else: a replay (RFC 9700 4.14.2).
                if let Err(e) = store::revoke_family(&mut conn, row.grant_id, now) {
                    drop(conn);
                    self.db_failed(e);
                    return Err(());
                }
                drop(conn);
                self.outcome.refuse(
                    ErrorCode::InvalidGrant,
                    "this refresh token was already used; every token issued from it is revoked (RFC 9700 4.14.2)",
                );
                return Err(());
            }
            Err(e) => {
                drop(conn);
                self.db_failed(e);
                return Err(());
            }
        }
        drop(conn);
        self.record(&token, &claims, Some(&refresh));
        Ok(RefreshedToken {
            token,
            refresh: Some(refresh.value.into_exposed()),
            until: until(claims.exp, self.now)?,
            token_type: TokenType::Bearer,
        })
    }

    fn recover_token(&self, _token: &str) -> Result<Option<Grant>, ()> {
        Ok(None)
    }

    /// Finds a refresh token; a rotated one is a replay and revokes its family
    /// (RFC 9700 4.14.2). Refusals are recorded with their reason; oxide-auth answers
    /// `invalid_grant` for None (RFC 6749 5.2).
    fn recover_refresh(&self, token: &str) -> Result<Option<Grant>, ()> {
        if let Some(rotation) = self.rotation.take() {
            return self.rotated(rotation);
        }
        let hash = HashedToken::of(token);
        let mut conn = self.conn()?;
        let row = match store::find_refresh(&mut conn, &hash) {
            Ok(r) => r,
            Err(e) => {
                drop(conn);
                self.db_failed(e);
                return Err(());
            }
        };
        let refuse = |description: &str| {
            self.outcome.refuse(ErrorCode::InvalidGrant, description);
            Ok(None)
        };
        let Some(mut row) = row else {
            drop(conn);
            return refuse("the refresh token is unknown, revoked or expired");
        };
        // Refresh tokens come only from a person's authorization: they never yield a
        // `portcullis:*` scope, not even one stored by an older version
        // (`token::grantable_by_person`; RFC 6749 6 lets the server narrow the scope).
        row.scope = crate::token::granted_to_person(&row.scope);
        // RFC 6749 6: the refresh token must have been issued to the authenticated client.
        if self.client().client_id != row.client_id {
            drop(conn);
            return refuse("the refresh token was issued to another client");
        }
        if row.revoked_at.is_some() {
            drop(conn);
            return refuse("the refresh token is unknown, revoked or expired");
        }
        if row.rotated_at.is_some() {
            let revoked = store::revoke_family(&mut conn, row.grant_id, self.now);
            drop(conn);
            if let Err(e) = revoked {
                self.db_failed(e);
                return Err(());
            }
            tracing::warn!(client_id = %row.client_id, "a rotated refresh token was replayed; its family is revoked");
            return refuse(
                "this refresh token was already used; every token issued from it is revoked (RFC 9700 4.14.2)",
            );
        }
        drop(conn);
        if row.expires_at <= self.now {
            return refuse("the refresh token has expired");
        }
        let grant = Grant {
            owner_id: row.user_id.to_string(),
            client_id: row.client_id.clone(),
            scope: row.scope.parse().map_err(|_| ())?,
            redirect_uri: url::Url::parse(self.ctx.issuer).map_err(|_| ())?,
            until: until(row.expires_at, self.now)?,
            extensions: Extensions::new(),
        };
        *self.refresh_row.borrow_mut() = Some(row);
        Ok(Some(grant))
    }
}
