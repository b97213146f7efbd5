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
    let ttl = crate::token::lifetime(
        client.access_token_ttl.unwrap_or(ctx.access_token_ttl),
        scopes.iter().copied(),
        ctx.admin_token_ttl,
    );
    let claims = AccessClaims::new(
        ctx.issuer,
        ctx.audience,
        sub,
        client.client_id.clone(),
        scopes,
        now,
        ttl,
    );
    let (token, claims) = ctx.keys.get().sign(claims, now)?;
    Ok((token, claims))
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
    /// What was issued, for the response.
    pub issued: Option<Issued>,
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

    /// A refresh token for the client, if it may use the refresh grant (RFC 6749 1.5: only
    /// then is one issued).
    fn fresh_refresh(&self) -> Result<Option<FreshRefresh>, ()> {
        let client = self.client();
        if !client.allows_grant(GrantType::RefreshToken) {
            return Ok(None);
        }
        let value = PlainToken::generate().map_err(|e| self.db_failed(e))?;
        let ttl = client
            .refresh_token_ttl
            .unwrap_or(self.ctx.refresh_token_ttl);
        Ok(Some(FreshRefresh {
            hash: value.hashed(),
            value,
            expires_at: self.now + ttl,
        }))
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
        row.scope = row
            .scope
            .split_whitespace()
            .filter(|s| crate::token::grantable_by_person(s))
            .collect::<Vec<_>>()
            .join(" ");
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
