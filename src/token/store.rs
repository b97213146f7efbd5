//! Signing-key queries.

use diesel::prelude::*;

use crate::crypto::HashedToken;
use crate::db::AnyConnection;
use crate::db::schema::signing_keys;
use crate::error::AppError;

/// A stored signing key. `private_key` is PKCS#8 DER, sealed (src/seal.rs).
#[derive(Queryable, Selectable, Clone)]
#[diesel(table_name = signing_keys)]
pub struct KeyRow {
    /// Primary key; the highest active one is current.
    pub id: i64,
    /// Key id (JWS `kid`).
    pub kid: String,
    /// JWS algorithm, e.g. `ES256`.
    pub alg: String,
    /// PKCS#8 DER sealed with the master key (`v1:...`); standard base64 of it in plaintext in
    /// databases from before sealing, until the next start seals it.
    pub private_key: String,
    /// Seconds since the epoch.
    pub created_at: i64,
    /// When it stopped being published; None = active.
    pub retired_at: Option<i64>,
    /// From when it signs (it is published from creation on).
    pub activates_at: i64,
}

/// Keys that are not retired, newest first.
pub fn active(conn: &mut AnyConnection) -> Result<Vec<KeyRow>, AppError> {
    Ok(signing_keys::table
        .filter(signing_keys::retired_at.is_null())
        .order(signing_keys::id.desc())
        .select(KeyRow::as_select())
        .load(conn)?)
}

/// Stores a new key that signs from `activates_at` on.
pub fn insert(
    conn: &mut AnyConnection,
    kid: &str,
    alg: &str,
    private_key: &str,
    now: i64,
    activates_at: i64,
) -> Result<(), AppError> {
    diesel::insert_into(signing_keys::table)
        .values((
            signing_keys::kid.eq(kid),
            signing_keys::alg.eq(alg),
            signing_keys::private_key.eq(private_key),
            signing_keys::created_at.eq(now),
            signing_keys::activates_at.eq(activates_at),
        ))
        .execute(conn)?;
    Ok(())
}

/// All keys, newest first, retired ones included (for `keys list`).
pub fn all(conn: &mut AnyConnection) -> Result<Vec<KeyRow>, AppError> {
    Ok(signing_keys::table
        .order(signing_keys::id.desc())
        .select(KeyRow::as_select())
        .load(conn)?)
}

/// Marks keys retired: they leave the JWKS.
pub fn retire(conn: &mut AnyConnection, ids: &[i64], now: i64) -> Result<(), AppError> {
    diesel::update(signing_keys::table.filter(signing_keys::id.eq_any(ids)))
        .set(signing_keys::retired_at.eq(now))
        .execute(conn)?;
    Ok(())
}

/// The counter that moves whenever a signing key is added, activated or retired.
pub fn key_generation(conn: &mut AnyConnection) -> Result<i64, AppError> {
    crate::db::generation(conn, "signing_keys")
}

/// The longest access-token lifetime any client can get: a key must stay published that long
/// after it stopped signing.
pub fn longest_access_ttl(conn: &mut AnyConnection, server_default: i64) -> Result<i64, AppError> {
    use crate::db::schema::clients;
    let max: Option<i64> = clients::table
        .select(diesel::dsl::max(clients::access_token_ttl))
        .get_result(conn)?;
    Ok(max.unwrap_or(0).max(server_default))
}

// ---- Authorization codes, token families, refresh tokens, revocation ----------------------

use crate::db::schema::{clients, grants, refresh_tokens, revoked_tokens};
use crate::ids::{ClientKey, UserId};

/// A new authorization code (RFC 6749 4.1.2), stored by hash.
pub struct NewGrant<'a> {
    /// `sha256$...` of the code.
    pub code_hash: &'a HashedToken,
    /// The client's primary key.
    pub client_pk: ClientKey,
    /// The user who approved.
    pub user_id: UserId,
    /// The registered redirect URI the code was sent to.
    pub redirect_uri: &'a str,
    /// Whether the authorization request named it (then the token request must, 4.1.3).
    pub redirect_uri_given: bool,
    /// Granted scopes, space-separated, sorted.
    pub scope: &'a str,
    /// oxide-auth's encoded PKCE challenge (RFC 7636 4.3), if any.
    pub pkce: Option<&'a str>,
    /// When the code stops being redeemable.
    pub code_expires_at: i64,
    /// Now.
    pub now: i64,
}

/// Stores a new code; the row becomes the head of the token family issued from it.
pub fn insert_grant(conn: &mut AnyConnection, g: &NewGrant) -> Result<i64, AppError> {
    Ok(diesel::insert_into(grants::table)
        .values((
            grants::code_hash.eq(g.code_hash.as_str()),
            grants::client_id.eq(g.client_pk),
            grants::user_id.eq(g.user_id),
            grants::redirect_uri.eq(g.redirect_uri),
            grants::redirect_uri_given.eq(g.redirect_uri_given),
            grants::scope.eq(g.scope),
            grants::pkce.eq(g.pkce),
            grants::code_expires_at.eq(g.code_expires_at),
            grants::expires_at.eq(g.code_expires_at),
            grants::created_at.eq(g.now),
        ))
        .returning(grants::id)
        .get_result(conn)?)
}

/// A redeemed code, as the token endpoint needs it.
#[derive(Queryable)]
pub struct RedeemedGrant {
    /// The family's id.
    pub id: i64,
    /// The client's public client_id.
    pub client_id: String,
    /// The user who approved.
    pub user_id: UserId,
    /// The redirect URI the code was sent to.
    pub redirect_uri: String,
    /// Whether the authorization request named it.
    pub redirect_uri_given: bool,
    /// Granted scopes.
    pub scope: String,
    /// Encoded PKCE challenge.
    pub pkce: Option<String>,
    /// Code expiry.
    pub code_expires_at: i64,
}

/// What redeeming a code found.
pub enum Redemption {
    /// This caller redeemed it: no other caller can (the conditional update is atomic).
    Won(RedeemedGrant),
    /// The code exists but was redeemed before (or its family revoked): a replay.
    Replayed {
        /// The family to revoke.
        grant_id: i64,
    },
    /// No such code (or purged).
    Unknown,
}

/// Redeems a code: `UPDATE ... WHERE redeemed_at IS NULL` lets exactly one of any number of
/// concurrent callers win, on SQLite (writes are serialized) and PostgreSQL (the row lock
/// makes a second updater re-check the condition after the first commits).
pub fn redeem_code(
    conn: &mut AnyConnection,
    code: &HashedToken,
    now: i64,
) -> Result<Redemption, AppError> {
    let won: Option<i64> = diesel::update(
        grants::table
            .filter(grants::code_hash.eq(code.as_str()))
            .filter(grants::redeemed_at.is_null())
            .filter(grants::revoked_at.is_null()),
    )
    .set(grants::redeemed_at.eq(now))
    .returning(grants::id)
    .get_result(conn)
    .optional()?;
    if let Some(id) = won {
        let grant = grants::table
            .inner_join(clients::table)
            .filter(grants::id.eq(id))
            .select((
                grants::id,
                clients::client_id,
                grants::user_id,
                grants::redirect_uri,
                grants::redirect_uri_given,
                grants::scope,
                grants::pkce,
                grants::code_expires_at,
            ))
            .get_result::<RedeemedGrant>(conn)?;
        return Ok(Redemption::Won(grant));
    }
    let existing: Option<i64> = grants::table
        .filter(grants::code_hash.eq(code.as_str()))
        .select(grants::id)
        .get_result(conn)
        .optional()?;
    Ok(match existing {
        Some(grant_id) => Redemption::Replayed { grant_id },
        None => Redemption::Unknown,
    })
}

/// Revokes a token family: the grant, every refresh token of it (they are refused once the
/// grant is revoked), and every access token issued from it that has not expired (by jti on
/// the revocation list). Idempotent.
pub fn revoke_family(conn: &mut AnyConnection, grant_id: i64, now: i64) -> Result<(), AppError> {
    crate::db::transaction(conn, |conn| {
        // Taken first: it locks the row, so an issuer still recording its tokens either
        // finished before (its jti is read below) or finds the family revoked and fails.
        diesel::update(grants::table.filter(grants::id.eq(grant_id)))
            .set(grants::revoked_at.eq(now))
            .filter(grants::revoked_at.is_null())
            .execute(conn)?;
        let mut jtis: Vec<(String, i64)> = grants::table
            .filter(grants::id.eq(grant_id))
            .select((grants::access_jti, grants::access_expires_at))
            .load::<(Option<String>, Option<i64>)>(conn)?
            .into_iter()
            .filter_map(|(j, e)| Some((j?, e?)))
            .collect();
        jtis.extend(
            refresh_tokens::table
                .filter(refresh_tokens::grant_id.eq(grant_id))
                .select((
                    refresh_tokens::access_jti,
                    refresh_tokens::access_expires_at,
                ))
                .load::<(String, i64)>(conn)?,
        );
        for (jti, expires_at) in jtis {
            if expires_at > now {
                revoke_jti(conn, &jti, expires_at)?;
            }
        }
        Ok(())
    })
}

/// Revokes every token family of a user that is not revoked yet (their codes, refresh tokens
/// and unexpired access tokens, see [`revoke_family`]); returns how many families.
pub fn revoke_user_families(
    conn: &mut AnyConnection,
    user_id: UserId,
    now: i64,
) -> Result<usize, AppError> {
    let ids: Vec<i64> = grants::table
        .filter(grants::user_id.eq(user_id))
        .filter(grants::revoked_at.is_null())
        .select(grants::id)
        .load(conn)?;
    for id in &ids {
        revoke_family(conn, *id, now)?;
    }
    Ok(ids.len())
}

/// A refresh token to store with a family.
pub struct NewRefresh<'a> {
    /// `sha256$...` of the token.
    pub token_hash: &'a HashedToken,
    /// Scopes it may be exchanged for.
    pub scope: &'a str,
    /// Expiry.
    pub expires_at: i64,
}

/// What [`record_issued`] found of the family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Recorded; the family is in good standing.
    Active,
    /// Recorded, but the family had been revoked (a replayed code raced this issuance): the
    /// new access token was put on the revocation list at once and the refresh token is dead.
    Revoked,
    /// The family no longer exists (purged, or its client deleted): nothing recorded.
    Gone,
}

/// Records what was issued from a family: the access token's jti (so that revoking the family
/// revokes it) and the new refresh token. Serialized with [`revoke_family`] by the row lock on
/// the grant, so an access token is revoked whichever of the two runs first.
pub fn record_issued(
    conn: &mut AnyConnection,
    grant_id: i64,
    access_jti: &str,
    access_expires_at: i64,
    refresh: Option<&NewRefresh>,
    now: i64,
) -> Result<Recorded, AppError> {
    let family_expires_at =
        refresh.map_or(access_expires_at, |r| r.expires_at.max(access_expires_at));
    crate::db::transaction(conn, |conn| {
        let n = diesel::update(grants::table.filter(grants::id.eq(grant_id)))
            .set((
                grants::access_jti.eq(access_jti),
                grants::access_expires_at.eq(access_expires_at),
                grants::expires_at.eq(family_expires_at),
            ))
            .execute(conn)?;
        if n == 0 {
            return Ok(Recorded::Gone);
        }
        if let Some(r) = refresh {
            diesel::insert_into(refresh_tokens::table)
                .values((
                    refresh_tokens::token_hash.eq(r.token_hash.as_str()),
                    refresh_tokens::grant_id.eq(grant_id),
                    refresh_tokens::scope.eq(r.scope),
                    refresh_tokens::access_jti.eq(access_jti),
                    refresh_tokens::access_expires_at.eq(access_expires_at),
                    refresh_tokens::expires_at.eq(r.expires_at),
                    refresh_tokens::created_at.eq(now),
                ))
                .execute(conn)?;
        }
        let revoked: Option<i64> = grants::table
            .find(grant_id)
            .select(grants::revoked_at)
            .get_result(conn)?;
        if revoked.is_some() {
            revoke_jti(conn, access_jti, access_expires_at)?;
            return Ok(Recorded::Revoked);
        }
        Ok(Recorded::Active)
    })
}

/// A stored refresh token with its family.
#[derive(Queryable, Clone)]
pub struct RefreshRow {
    /// Row id.
    pub id: i64,
    /// The family.
    pub grant_id: i64,
    /// Scopes it may be exchanged for.
    pub scope: String,
    /// Expiry.
    pub expires_at: i64,
    /// Set once it was exchanged (rotation): any later use is a replay.
    pub rotated_at: Option<i64>,
    /// When issued.
    pub created_at: i64,
    /// The family's revocation time.
    pub revoked_at: Option<i64>,
    /// The user.
    pub user_id: UserId,
    /// The client's public client_id.
    pub client_id: String,
}

/// The refresh token with this hash.
pub fn find_refresh(
    conn: &mut AnyConnection,
    token: &HashedToken,
) -> Result<Option<RefreshRow>, AppError> {
    Ok(refresh_tokens::table
        .inner_join(grants::table.inner_join(clients::table))
        .filter(refresh_tokens::token_hash.eq(token.as_str()))
        .select((
            refresh_tokens::id,
            refresh_tokens::grant_id,
            refresh_tokens::scope,
            refresh_tokens::expires_at,
            refresh_tokens::rotated_at,
            refresh_tokens::created_at,
            grants::revoked_at,
            grants::user_id,
            clients::client_id,
        ))
        .get_result(conn)
        .optional()?)
}

/// Rotates a refresh token (RFC 9700 4.14.2): marks it used and records the new access and
/// refresh tokens in its family, in one transaction. False when it was already used (of two
/// concurrent uses exactly one wins; the caller treats the other as a replay) or its family
/// was revoked meanwhile.
#[allow(clippy::too_many_arguments)]
pub fn rotate_refresh(
    conn: &mut AnyConnection,
    id: i64,
    grant_id: i64,
    access_jti: &str,
    access_expires_at: i64,
    next: &NewRefresh,
    now: i64,
) -> Result<bool, AppError> {
    crate::db::transaction(conn, |conn| {
        let n = diesel::update(
            refresh_tokens::table
                .filter(refresh_tokens::id.eq(id))
                .filter(refresh_tokens::rotated_at.is_null()),
        )
        .set(refresh_tokens::rotated_at.eq(now))
        .execute(conn)?;
        if n != 1 {
            return Ok(false);
        }
        Ok(record_issued(
            conn,
            grant_id,
            access_jti,
            access_expires_at,
            Some(next),
            now,
        )? == Recorded::Active)
    })
}

/// Puts an access token's jti on the revocation list until it expires (idempotent).
pub fn revoke_jti(conn: &mut AnyConnection, jti: &str, expires_at: i64) -> Result<(), AppError> {
    // One statement: an already revoked jti (before, or concurrently by another request) is
    // the same outcome.
    crate::db::insert_new(conn, |conn| {
        diesel::insert_into(revoked_tokens::table)
            .values((
                revoked_tokens::jti.eq(jti),
                revoked_tokens::expires_at.eq(expires_at),
            ))
            .execute(conn)
    })
    .map(drop)
}

/// Whether an access token's jti is on the revocation list.
pub fn is_jti_revoked(conn: &mut AnyConnection, jti: &str) -> Result<bool, AppError> {
    Ok(revoked_tokens::table
        .find(jti)
        .select(revoked_tokens::jti)
        .get_result::<String>(conn)
        .optional()?
        .is_some())
}

/// Deletes what can no longer matter: revocation entries of expired tokens, expired refresh
/// tokens (also in families still in use), and token families (codes, refresh tokens) past
/// their last expiry. Returns the rows deleted.
///
/// An expired refresh token is refused whatever its row says (RFC 6749 5.2 `invalid_grant`),
/// so its row only served reuse detection (RFC 9700 4.14.2): a rotated token replayed before
/// its own expiry revokes its family; after it, it is unknown. Without this, a family that
/// keeps refreshing (its `expires_at` moves with each rotation) would keep every token it ever
/// rotated.
pub fn purge_expired(conn: &mut AnyConnection, now: i64) -> Result<usize, AppError> {
    let a = diesel::delete(revoked_tokens::table.filter(revoked_tokens::expires_at.le(now)))
        .execute(conn)?;
    let b = diesel::delete(refresh_tokens::table.filter(refresh_tokens::expires_at.le(now)))
        .execute(conn)?;
    let c = diesel::delete(grants::table.filter(grants::expires_at.le(now))).execute(conn)?;
    Ok(a + b + c)
}
