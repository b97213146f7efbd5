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

use crate::db::batcher::{by_ordinal, column};
use crate::db::prepared::{self, Bind, Statement};
use crate::db::schema::{clients, grants, refresh_tokens, revoked_tokens};
use crate::ids::{ClientKey, UserId};
use diesel::sql_types::{BigInt, Bool, Nullable, Text};

/// The `SET` of [`record_access!`], for a family chosen otherwise: three binds, the first three
/// of [`IssuedAccess::binds`].
macro_rules! record_access_set {
    () => {
        "UPDATE \"grants\" SET \"access_jti\" = ?, \"access_expires_at\" = ?, \
         \"expires_at\" = ?"
    };
}

/// Records an access token in its family; four binds ([`IssuedAccess::binds`]). Every
/// statement below that does so has [`record_access_set!`]'s text (the fault tests cut on it
/// in a transaction).
macro_rules! record_access {
    () => {
        concat!(record_access_set!(), " WHERE \"id\" = ?")
    };
}

/// `INSERT INTO "refresh_tokens"` with its columns in the order every statement here gives
/// them: the token's `"token_hash", "scope", "expires_at", "created_at"`, then its family's
/// `"grant_id", "access_jti", "access_expires_at"`.
macro_rules! insert_refresh {
    () => {
        "INSERT INTO \"refresh_tokens\" (\"token_hash\", \"scope\", \"expires_at\", \
         \"created_at\", \"grant_id\", \"access_jti\", \"access_expires_at\") "
    };
}

/// The new refresh token's columns and, from the recorded family row `fam`, the rest of the
/// row; four binds ([`NewRefresh::binds`]).
macro_rules! insert_refresh_from_fam {
    () => {
        concat!(
            insert_refresh!(),
            "SELECT ?, ?, ?, ?, \"id\", \"access_jti\", \"access_expires_at\" FROM fam"
        )
    };
}

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

/// Stores many new codes at once (PostgreSQL, [`IssueBatch`]): [`insert_grant`] for each,
/// but a code marked [`IssueItem::only_if_approved`] only where the person's remembered consent
/// for the client covers its scopes: `@>` on the two scope lists is
/// [`crate::consent::covers`] (every requested scope approved; stored scopes are
/// space-separated, and no scope at all, `''`, is the empty list, which every consent covers).
/// Returns the hashes of the codes it stored.
struct InsertGrantsPg;
impl Statement for InsertGrantsPg {
    const SQL: &'static str = "INSERT INTO \"grants\" (\"code_hash\", \"client_id\", \"user_id\", \
        \"redirect_uri\", \"redirect_uri_given\", \"scope\", \"pkce\", \"code_expires_at\", \
        \"expires_at\", \"created_at\") \
        SELECT c, cl, u, r, g <> 0, s, NULLIF(p, ''), e, e, n FROM unnest(?::text[], ?::bigint[], \
        ?::bigint[], ?::text[], ?::bigint[], ?::text[], ?::text[], ?::bigint[], ?::bigint[], \
        ?::bigint[]) AS t(c, cl, u, r, g, s, p, e, n, a) \
        WHERE a = 0 OR EXISTS (SELECT 1 FROM \"consents\" AS k WHERE k.\"user_id\" = t.u \
        AND k.\"client_id\" = t.cl \
        AND string_to_array(k.\"scope\", ' ') @> string_to_array(t.s, ' ')) \
        RETURNING \"code_hash\"";
    type Row = Text;
}

/// A new code for [`IssueBatch`]: [`NewGrant`], owned.
pub struct IssueItem {
    /// `sha256$...` of the code.
    pub code_hash: HashedToken,
    /// The client's primary key.
    pub client_pk: ClientKey,
    /// The user who approved.
    pub user_id: UserId,
    /// The registered redirect URI the code was sent to.
    pub redirect_uri: String,
    /// Whether the authorization request named it.
    pub redirect_uri_given: bool,
    /// Granted scopes, space-separated, sorted.
    pub scope: String,
    /// oxide-auth's encoded PKCE challenge (RFC 7636 4.3), if any.
    pub pkce: Option<String>,
    /// When the code stops being redeemable.
    pub code_expires_at: i64,
    /// Now.
    pub now: i64,
    /// In [`IssueBatch`]: store it only if the person's remembered consent covers its scopes
    /// (decided by the statement that stores it; see
    /// [`crate::oauth::authorization::begin_batched`]).
    pub only_if_approved: bool,
}

impl IssueItem {
    /// The code as [`insert_grant`] stores one.
    pub fn as_new_grant(&self) -> NewGrant<'_> {
        NewGrant {
            code_hash: &self.code_hash,
            client_pk: self.client_pk,
            user_id: self.user_id,
            redirect_uri: &self.redirect_uri,
            redirect_uri_given: self.redirect_uri_given,
            scope: &self.scope,
            pkce: self.pkce.as_deref(),
            code_expires_at: self.code_expires_at,
            now: self.now,
        }
    }
}

/// New codes (RFC 6749 4.1.2) on PostgreSQL, any number in one statement
/// ([`crate::db::batcher`]; issue 13), for the authorization requests that queued together
/// ([`insert_grant`] for one, on SQLite). Every item is stored (`Some`) or the statement fails,
/// but one [`IssueItem::only_if_approved`] that the person's consent does not cover: `None`,
/// nothing stored.
pub struct IssueBatch;
impl crate::db::batcher::Batched for IssueBatch {
    type Item = IssueItem;
    type Out = ();
    const NAME: &'static str = "pg-issue";

    fn run(conn: &mut AnyConnection, items: &[IssueItem]) -> Result<Vec<Option<()>>, AppError> {
        use crate::db::prepared::prepared;
        let pg = crate::db::batcher::postgres(conn)?;
        let stored: Vec<String> = prepared::<InsertGrantsPg>(&[
            Bind::Texts(&column(items, |i| i.code_hash.as_str())),
            Bind::Ints(&column(items, |i| i.client_pk.0)),
            Bind::Ints(&column(items, |i| i.user_id.0)),
            Bind::Texts(&column(items, |i| i.redirect_uri.as_str())),
            Bind::Ints(&column(items, |i| i.redirect_uri_given.into())),
            Bind::Texts(&column(items, |i| i.scope.as_str())),
            Bind::Texts(&column(items, |i| i.pkce.as_deref().unwrap_or(""))),
            Bind::Ints(&column(items, |i| i.code_expires_at)),
            Bind::Ints(&column(items, |i| i.now)),
            Bind::Ints(&column(items, |i| i.only_if_approved.into())),
        ])
        .load(pg)?;
        let stored: std::collections::HashSet<String> = stored.into_iter().collect();
        Ok(items
            .iter()
            .map(|i| stored.contains(i.code_hash.as_str()).then_some(()))
            .collect())
    }
}

/// A redeemed code, as the token endpoint needs it.
#[derive(Queryable)]
pub struct RedeemedGrant {
    /// The family's id.
    pub id: i64,
    /// The client it was issued to (its primary key).
    pub client_pk: ClientKey,
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

/// Marks a code redeemed and returns what it grants, in one statement.
struct Redeem;
impl Statement for Redeem {
    const SQL: &'static str = "UPDATE \"grants\" SET \"redeemed_at\" = ? \
        WHERE \"code_hash\" = ? AND \"redeemed_at\" IS NULL AND \"revoked_at\" IS NULL \
        RETURNING \"id\", \"client_id\", \"user_id\", \"redirect_uri\", \"redirect_uri_given\", \
        \"scope\", \"pkce\", \"code_expires_at\"";
    type Row = (
        BigInt,
        BigInt,
        BigInt,
        Text,
        Bool,
        Text,
        Nullable<Text>,
        BigInt,
    );
}

/// Redeems a code: `UPDATE ... WHERE redeemed_at IS NULL` lets exactly one of any number of
/// concurrent callers win, on SQLite (writes are serialized) and PostgreSQL (the row lock
/// makes a second updater re-check the condition after the first commits). One statement
/// when it wins (it returns the grant); a second one finds a replayed code.
pub fn redeem_code(
    conn: &mut AnyConnection,
    code: &HashedToken,
    now: i64,
) -> Result<Redemption, AppError> {
    let won: Option<RedeemedGrant> =
        prepared::optional::<Redeem, _>(conn, &[Bind::Int(now), Bind::Text(code.as_str())])?;
    if let Some(grant) = won {
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

/// On PostgreSQL, whole code exchanges in one statement, for any number of requests at once
/// ([`RedeemBatch`]; issue 13: one round trip and one commit for every exchange that queued,
/// instead of BEGIN, the redemption, the recording and COMMIT each). Each input row (one
/// request) is decided as that request alone was: its code is redeemed if it is unredeemed,
/// its family not revoked, unexpired, this client's, its redirect URI as RFC 6749 4.1.3 wants
/// it (the one named, or none when the authorization request named none) and its PKCE
/// challenge the one the verifier yields (RFC 7636 4.6; compared encoded, as stored); the
/// access token is recorded in the family and the first refresh token stored (when the client
/// may refresh) with the code's scope. Returns, per input row redeemed, its ordinal (from 1),
/// the user, the scope and the redirect URI; no row for an input that did not hold, and then
/// nothing changed for it. The same code twice in one batch is redeemed once.
struct RedeemManyPg;
impl Statement for RedeemManyPg {
    const SQL: &'static str = concat!(
        "WITH input AS (SELECT * FROM unnest(?::text[], ?::bigint[], ?::bigint[], ?::bigint[], \
         ?::text[], ?::bigint[], ?::bigint[], ?::text[], ?::text[], ?::text[], ?::bigint[], \
         ?::bigint[]) WITH ORDINALITY AS t(\"access_jti\", \"access_expires_at\", \
         \"family_expires_at\", \"now\", \"code\", \"client_id\", \"redirect_given\", \
         \"redirect_uri\", \"pkce\", \"refresh_hash\", \"refresh_expires_at\", \
         \"has_refresh\", \"ord\")), \
         won AS (UPDATE \"grants\" AS g SET \"access_jti\" = i.\"access_jti\", \
         \"access_expires_at\" = i.\"access_expires_at\", \"expires_at\" = i.\"family_expires_at\", \
         \"redeemed_at\" = i.\"now\" FROM input AS i WHERE g.\"code_hash\" = i.\"code\" \
         AND g.\"redeemed_at\" IS NULL AND g.\"revoked_at\" IS NULL \
         AND g.\"client_id\" = i.\"client_id\" AND g.\"code_expires_at\" > i.\"now\" \
         AND CASE WHEN i.\"redirect_given\" = 1 THEN g.\"redirect_uri\" = i.\"redirect_uri\" \
         ELSE NOT g.\"redirect_uri_given\" END AND COALESCE(g.\"pkce\", '') = i.\"pkce\" \
         RETURNING i.\"ord\", g.\"id\", g.\"user_id\", g.\"scope\", g.\"redirect_uri\", \
         g.\"access_jti\", g.\"access_expires_at\"), ins AS (",
        insert_refresh!(),
        "SELECT i.\"refresh_hash\", w.\"scope\", i.\"refresh_expires_at\", i.\"now\", w.\"id\", \
         w.\"access_jti\", w.\"access_expires_at\" FROM won AS w, input AS i \
         WHERE i.\"ord\" = w.\"ord\" AND i.\"has_refresh\" = 1 RETURNING 1) \
         SELECT w.\"ord\", w.\"user_id\", w.\"scope\", w.\"redirect_uri\" FROM won AS w"
    );
    type Row = (BigInt, BigInt, Text, Text);
}

/// What [`RedeemBatch`] redeemed for one request.
pub struct RedeemedInOne {
    /// The person who approved.
    pub user_id: UserId,
    /// The granted scopes.
    pub scope: String,
    /// The redirect URI the code was sent to.
    pub redirect_uri: String,
}

/// One code exchange for [`RedeemBatch`]: the conditions it checks in the database, and the
/// tokens to record when they hold.
pub struct RedeemItem {
    /// The presented code's hash.
    pub code: HashedToken,
    /// The client that authenticated (its primary key).
    pub client_pk: ClientKey,
    /// The token request's `redirect_uri`, if any.
    pub redirect_uri: Option<String>,
    /// The PKCE challenge the verifier yields, encoded as stored; None without a verifier.
    pub pkce: Option<String>,
    /// The access token's `jti`.
    pub access_jti: String,
    /// Its `exp`.
    pub access_expires_at: i64,
    /// The first refresh token (its hash and expiry), when the client may refresh.
    pub refresh: Option<(HashedToken, i64)>,
    /// The request's clock.
    pub now: i64,
}

/// Code exchanges on PostgreSQL, each decided by the database in one atomic statement for all
/// of them ([`RedeemManyPg`]), outside a transaction. None for a request: nothing was redeemed
/// for it (unknown, used, expired, revoked, another client's, another redirect URI or
/// verifier); the caller then redeems it the slow way ([`redeem_code`]) to say which, and to
/// revoke the family of a replayed code. Run through a [`crate::db::batcher::Batcher`].
pub struct RedeemBatch;
impl crate::db::batcher::Batched for RedeemBatch {
    type Item = RedeemItem;
    type Out = RedeemedInOne;
    const NAME: &'static str = "pg-redeem";

    fn run(
        conn: &mut AnyConnection,
        items: &[RedeemItem],
    ) -> Result<Vec<Option<RedeemedInOne>>, AppError> {
        use crate::db::prepared::prepared;
        let pg = crate::db::batcher::postgres(conn)?;
        let rows: Vec<(i64, i64, String, String)> = prepared::<RedeemManyPg>(&[
            Bind::Texts(&column(items, |i| i.access_jti.as_str())),
            Bind::Ints(&column(items, |i| i.access_expires_at)),
            Bind::Ints(&column(items, |i| {
                i.refresh
                    .as_ref()
                    .map_or(i.access_expires_at, |r| r.1.max(i.access_expires_at))
            })),
            Bind::Ints(&column(items, |i| i.now)),
            Bind::Texts(&column(items, |i| i.code.as_str())),
            Bind::Ints(&column(items, |i| i.client_pk.0)),
            Bind::Ints(&column(items, |i| i.redirect_uri.is_some().into())),
            Bind::Texts(&column(items, |i| i.redirect_uri.as_deref().unwrap_or(""))),
            Bind::Texts(&column(items, |i| i.pkce.as_deref().unwrap_or(""))),
            Bind::Texts(&column(items, |i| {
                i.refresh.as_ref().map_or("", |r| r.0.as_str())
            })),
            Bind::Ints(&column(items, |i| i.refresh.as_ref().map_or(0, |r| r.1))),
            Bind::Ints(&column(items, |i| i.refresh.is_some().into())),
        ])
        .load(pg)?;
        Ok(by_ordinal(
            items.len(),
            rows.into_iter().map(|(ord, user_id, scope, redirect_uri)| {
                let redeemed = RedeemedInOne {
                    user_id: UserId(user_id),
                    scope,
                    redirect_uri,
                };
                (ord, redeemed)
            }),
        ))
    }
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

impl NewRefresh<'_> {
    /// The binds of its `"token_hash", "scope", "expires_at", "created_at"` (issued `now`).
    fn binds(&self, now: i64) -> [Bind<'_>; 4] {
        [
            Bind::Text(self.token_hash.as_str()),
            Bind::Text(self.scope),
            Bind::Int(self.expires_at),
            Bind::Int(now),
        ]
    }
}

/// An access token issued from a family, as its `grants` row records it.
struct IssuedAccess<'a> {
    grant_id: i64,
    jti: &'a str,
    expires_at: i64,
    /// The family's new `expires_at`: its last token's expiry.
    family_expires_at: i64,
}

impl IssuedAccess<'_> {
    /// The binds of `record_access!`: `"access_jti", "access_expires_at", "expires_at"`, and
    /// the family's `"id"`.
    fn binds(&self) -> [Bind<'_>; 4] {
        [
            Bind::Text(self.jti),
            Bind::Int(self.expires_at),
            Bind::Int(self.family_expires_at),
            Bind::Int(self.grant_id),
        ]
    }
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

/// On PostgreSQL, records the access token in its family and stores the new refresh token, in
/// one statement (one round trip); returns the family's `revoked_at`, no row when it is gone.
struct RecordWithRefreshPg;
impl Statement for RecordWithRefreshPg {
    const SQL: &'static str = concat!(
        "WITH fam AS (",
        record_access!(),
        " RETURNING \"id\", \"revoked_at\", \"access_jti\", \"access_expires_at\"), ins AS (",
        insert_refresh_from_fam!(),
        " RETURNING 1) SELECT \"revoked_at\" FROM fam"
    );
    type Row = Nullable<BigInt>;
    // Sent as text every time: the fault tests (tests/api/faults.rs) cut the connection
    // when they see it, before and after its commit.
    const KEEP: bool = false;
}

/// Records the access token in its family; returns the family's `revoked_at`, no row when it
/// is gone (both backends: SQLite has `RETURNING` since 3.35).
struct RecordAccess;
impl Statement for RecordAccess {
    const SQL: &'static str = concat!(record_access!(), " RETURNING \"revoked_at\"");
    type Row = Nullable<BigInt>;
}

/// Stores a new refresh token of a family: [`NewRefresh::binds`], then the family and the
/// access token issued with it.
struct InsertRefresh;
impl Statement for InsertRefresh {
    const SQL: &'static str = concat!(insert_refresh!(), "VALUES (?, ?, ?, ?, ?, ?, ?)");
    type Row = BigInt;
}

/// Inserts `refresh` into the family of `access`.
fn insert_refresh(
    conn: &mut AnyConnection,
    access: &IssuedAccess,
    refresh: &NewRefresh,
    now: i64,
) -> Result<(), AppError> {
    let [hash, scope, expires_at, created_at] = refresh.binds(now);
    prepared::execute::<InsertRefresh>(
        conn,
        &[
            hash,
            scope,
            expires_at,
            created_at,
            Bind::Int(access.grant_id),
            Bind::Text(access.jti),
            Bind::Int(access.expires_at),
        ],
    )?;
    Ok(())
}

/// Records what was issued from a family: the access token's jti (so that revoking the family
/// revokes it) and the new refresh token. Serialized with [`revoke_family`] by the row lock on
/// the grant, so an access token is revoked whichever of the two runs first. Runs in the
/// caller's transaction (the code exchange's), opening none of its own: on PostgreSQL it is
/// one statement.
pub fn record_issued(
    conn: &mut AnyConnection,
    grant_id: i64,
    access_jti: &str,
    access_expires_at: i64,
    refresh: Option<&NewRefresh>,
    now: i64,
) -> Result<Recorded, AppError> {
    let access = IssuedAccess {
        grant_id,
        jti: access_jti,
        expires_at: access_expires_at,
        family_expires_at: refresh
            .map_or(access_expires_at, |r| r.expires_at.max(access_expires_at)),
    };
    let family: Option<Option<i64>> = match (refresh, &*conn) {
        (Some(r), AnyConnection::Postgresql(_)) => {
            let [a, b, c, d] = access.binds();
            let [e, f, g, h] = r.binds(now);
            prepared::optional::<RecordWithRefreshPg, _>(conn, &[a, b, c, d, e, f, g, h])?
        }
        _ => {
            let family = prepared::optional::<RecordAccess, _>(conn, &access.binds())?;
            if let (Some(_), Some(r)) = (family, refresh) {
                insert_refresh(conn, &access, r, now)?;
            }
            family
        }
    };
    match family {
        None => Ok(Recorded::Gone),
        Some(Some(_revoked)) => {
            revoke_jti(conn, access_jti, access_expires_at)?;
            Ok(Recorded::Revoked)
        }
        Some(None) => Ok(Recorded::Active),
    }
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

/// On PostgreSQL, a whole rotation in one statement (one round trip instead of six): marks the
/// presented token used, records the new access token in its family unless the family was
/// revoked, and stores the new refresh token; returns how many tokens it stored (0 or 1).
struct RotatePg;
impl Statement for RotatePg {
    const SQL: &'static str = concat!(
        "WITH used AS (UPDATE \"refresh_tokens\" SET \"rotated_at\" = ? \
         WHERE \"id\" = ? AND \"rotated_at\" IS NULL RETURNING \"grant_id\"), fam AS (",
        record_access!(),
        " AND \"id\" IN (SELECT \"grant_id\" FROM used) AND \"revoked_at\" IS NULL \
         RETURNING \"id\", \"access_jti\", \"access_expires_at\"), ins AS (",
        insert_refresh_from_fam!(),
        " RETURNING 1) SELECT COUNT(*) FROM ins"
    );
    type Row = BigInt;
    // Sent as text every time: the fault tests (tests/api/faults.rs) cut the connection
    // when they see it, before and after its commit.
    const KEEP: bool = false;
}

/// On PostgreSQL, whole refreshes in one statement, for any number of requests at once
/// ([`RefreshBatch`]; issue 13: one round trip and one commit in autocommit for every refresh
/// that queued, instead of BEGIN, a lookup, the rotation and COMMIT each). Each input row (one
/// request: its presented token's hash, its client, the access token and refresh token chosen
/// for it, its clock) is decided as one request alone was: its token is marked used if it is
/// unused, unexpired, of this client and of a family that is not revoked (RFC 6749 6, RFC 9700
/// 4.14.2), the new access token is recorded in the family and the new refresh token stored
/// with the presented one's scope. Returns, per input row that rotated, its ordinal (from 1),
/// the family's user and that scope; no row for an input that did not hold, and then nothing
/// was stored for it (but a family revoked between the first and second part: the token is
/// then used, as a replay would find it). The same token twice in one batch is rotated once
/// (PostgreSQL updates a row once per statement): the other finds it used, as two concurrent
/// statements would.
struct RefreshManyPg;
impl Statement for RefreshManyPg {
    const SQL: &'static str = concat!(
        "WITH input AS (SELECT * FROM unnest(?::text[], ?::bigint[], ?::text[], ?::bigint[], \
         ?::bigint[], ?::text[], ?::bigint[], ?::bigint[]) WITH ORDINALITY AS t(\"presented\", \
         \"client_id\", \"access_jti\", \"access_expires_at\", \"family_expires_at\", \
         \"next_hash\", \"next_expires_at\", \"now\", \"ord\")), \
         used AS (UPDATE \"refresh_tokens\" AS r SET \"rotated_at\" = i.\"now\" \
         FROM input AS i WHERE r.\"token_hash\" = i.\"presented\" \
         AND r.\"rotated_at\" IS NULL AND r.\"expires_at\" > i.\"now\" \
         AND (SELECT g.\"client_id\" FROM \"grants\" AS g WHERE g.\"id\" = r.\"grant_id\" \
         AND g.\"revoked_at\" IS NULL) = i.\"client_id\" \
         RETURNING i.\"ord\", r.\"grant_id\", r.\"scope\"), \
         fam AS (UPDATE \"grants\" AS g SET \"access_jti\" = i.\"access_jti\", \
         \"access_expires_at\" = i.\"access_expires_at\", \"expires_at\" = i.\"family_expires_at\" \
         FROM used AS u, input AS i WHERE i.\"ord\" = u.\"ord\" AND g.\"id\" = u.\"grant_id\" \
         AND g.\"revoked_at\" IS NULL RETURNING u.\"ord\", g.\"id\", g.\"access_jti\", \
         g.\"access_expires_at\", g.\"user_id\"), ins AS (",
        insert_refresh!(),
        "SELECT i.\"next_hash\", u.\"scope\", i.\"next_expires_at\", i.\"now\", f.\"id\", \
         f.\"access_jti\", f.\"access_expires_at\" FROM fam AS f, used AS u, input AS i \
         WHERE u.\"ord\" = f.\"ord\" AND i.\"ord\" = f.\"ord\" RETURNING \"token_hash\") \
         SELECT i.\"ord\", f.\"user_id\", u.\"scope\" FROM ins, input AS i, used AS u, fam AS f \
         WHERE i.\"next_hash\" = ins.\"token_hash\" AND u.\"ord\" = i.\"ord\" \
         AND f.\"ord\" = i.\"ord\""
    );
    type Row = (BigInt, BigInt, Text);
}

/// What [`RefreshBatch`] rotated for one request: the family's user and the presented token's
/// scope (as stored, before [`crate::token::grantable_by_person`]).
pub struct RotatedInOne {
    /// The person the family belongs to.
    pub user_id: UserId,
    /// The scope the presented token (and now its successor) may be exchanged for.
    pub scope: String,
}

/// One refresh for [`RefreshBatch`]: `presented` is to be rotated into `next_hash` (expiring
/// `next_expires_at`) with the access token `access_jti` (expiring `access_expires_at`)
/// recorded in its family, for the client `client_pk`, at `now`.
pub struct RefreshItem {
    /// The presented refresh token's hash.
    pub presented: HashedToken,
    /// The authenticated client.
    pub client_pk: ClientKey,
    /// The new access token's `jti`.
    pub access_jti: String,
    /// Its `exp`.
    pub access_expires_at: i64,
    /// The new refresh token's hash.
    pub next_hash: HashedToken,
    /// Its expiry.
    pub next_expires_at: i64,
    /// The request's clock.
    pub now: i64,
}

/// Refreshes on PostgreSQL, each decided by the database in one atomic statement for all of
/// them ([`RefreshManyPg`]), outside a transaction (autocommit: the statement is atomic). None
/// for a request: nothing was rotated for it (unknown, used, expired, revoked or another
/// client's token); the caller then looks at the token the slow way ([`find_refresh`]) to say
/// which, and to revoke the family of a replayed one. Run through a
/// [`crate::db::batcher::Batcher`].
pub struct RefreshBatch;
impl crate::db::batcher::Batched for RefreshBatch {
    type Item = RefreshItem;
    type Out = RotatedInOne;
    const NAME: &'static str = "pg-refresh";

    fn run(
        conn: &mut AnyConnection,
        items: &[RefreshItem],
    ) -> Result<Vec<Option<RotatedInOne>>, AppError> {
        use crate::db::prepared::prepared;
        let pg = crate::db::batcher::postgres(conn)?;
        let rows: Vec<(i64, i64, String)> = prepared::<RefreshManyPg>(&[
            Bind::Texts(&column(items, |i| i.presented.as_str())),
            Bind::Ints(&column(items, |i| i.client_pk.0)),
            Bind::Texts(&column(items, |i| i.access_jti.as_str())),
            Bind::Ints(&column(items, |i| i.access_expires_at)),
            Bind::Ints(&column(items, |i| {
                i.next_expires_at.max(i.access_expires_at)
            })),
            Bind::Texts(&column(items, |i| i.next_hash.as_str())),
            Bind::Ints(&column(items, |i| i.next_expires_at)),
            Bind::Ints(&column(items, |i| i.now)),
        ])
        .load(pg)?;
        Ok(by_ordinal(
            items.len(),
            rows.into_iter().map(|(ord, user_id, scope)| {
                let rotated = RotatedInOne {
                    user_id: UserId(user_id),
                    scope,
                };
                (ord, rotated)
            }),
        ))
    }
}

/// Marks a refresh token used, unless it was.
struct MarkRotated;
impl Statement for MarkRotated {
    const SQL: &'static str = "UPDATE \"refresh_tokens\" SET \"rotated_at\" = ? \
        WHERE \"id\" = ? AND \"rotated_at\" IS NULL";
    type Row = BigInt;
}

/// Records the access token in its family, unless the family was revoked.
struct RecordInLiveFamily;
impl Statement for RecordInLiveFamily {
    const SQL: &'static str = concat!(record_access!(), " AND \"revoked_at\" IS NULL");
    type Row = BigInt;
}

/// Rotates a refresh token (RFC 9700 4.14.2): marks it used and records the new access and
/// refresh tokens in its family, in the caller's transaction (the refresh's; on PostgreSQL as
/// one statement). False when it was already used (of two concurrent uses exactly one wins;
/// the caller treats the other as a replay) or its family was revoked meanwhile: then nothing
/// is recorded, and the access token signed for it must not be handed out.
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
    let access = IssuedAccess {
        grant_id,
        jti: access_jti,
        expires_at: access_expires_at,
        family_expires_at: next.expires_at.max(access_expires_at),
    };
    let used = [Bind::Int(now), Bind::Int(id)];
    if let AnyConnection::Postgresql(_) = conn {
        let [a, b, c, d] = access.binds();
        let [e, f, g, h] = next.binds(now);
        let stored: Option<i64> =
            prepared::optional::<RotatePg, _>(conn, &[used[0], used[1], a, b, c, d, e, f, g, h])?;
        return Ok(stored == Some(1));
    }
    if prepared::execute::<MarkRotated>(conn, &used)? != 1
        || prepared::execute::<RecordInLiveFamily>(conn, &access.binds())? != 1
    {
        return Ok(false);
    }
    insert_refresh(conn, &access, next, now)?;
    Ok(true)
}

/// Puts a jti on the revocation list; one already there stays as it is.
struct RevokeJti;
impl Statement for RevokeJti {
    const SQL: &'static str = "INSERT INTO \"revoked_tokens\" (\"jti\", \"expires_at\") \
        VALUES (?, ?) ON CONFLICT DO NOTHING";
    type Row = BigInt;
}

/// Puts an access token's jti on the revocation list until it expires (idempotent).
pub fn revoke_jti(conn: &mut AnyConnection, jti: &str, expires_at: i64) -> Result<(), AppError> {
    // One statement, no transaction: an already revoked jti (before, or concurrently by
    // another request) is the same outcome.
    prepared::execute::<RevokeJti>(conn, &[Bind::Text(jti), Bind::Int(expires_at)])?;
    Ok(())
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

/// Puts many jtis on the revocation list at once (PostgreSQL, [`RevokeBatch`]); one already
/// there, or twice in the list, stays as it is.
struct RevokeManyPg;
impl Statement for RevokeManyPg {
    const SQL: &'static str = "INSERT INTO \"revoked_tokens\" (\"jti\", \"expires_at\") \
        SELECT * FROM unnest(?::text[], ?::bigint[]) ON CONFLICT DO NOTHING";
    type Row = BigInt;
}

/// An access token to put on the revocation list ([`RevokeBatch`]).
pub struct RevokeItem {
    /// Its `jti`.
    pub jti: String,
    /// Its `exp`: the entry is kept until then.
    pub expires_at: i64,
}

/// Revocations of access tokens on PostgreSQL, any number in one statement
/// ([`crate::db::batcher`]; issue 13): [`revoke_jti`] for each. Every item is done (`Some`).
pub struct RevokeBatch;
impl crate::db::batcher::Batched for RevokeBatch {
    type Item = RevokeItem;
    type Out = ();
    const NAME: &'static str = "pg-revoke";

    fn run(conn: &mut AnyConnection, items: &[RevokeItem]) -> Result<Vec<Option<()>>, AppError> {
        use crate::db::prepared::prepared;
        let pg = crate::db::batcher::postgres(conn)?;
        prepared::<RevokeManyPg>(&[
            Bind::Texts(&column(items, |i| i.jti.as_str())),
            Bind::Ints(&column(items, |i| i.expires_at)),
        ])
        .execute(pg)?;
        Ok(items.iter().map(|_| Some(())).collect())
    }
}

/// Which of many jtis are on the revocation list (PostgreSQL, [`RevokedBatch`]).
struct RevokedAmongPg;
impl Statement for RevokedAmongPg {
    const SQL: &'static str =
        "SELECT \"jti\" FROM \"revoked_tokens\" WHERE \"jti\" = ANY(?::text[])";
    type Row = Text;
}

/// [`is_jti_revoked`] for many access tokens in one statement (PostgreSQL,
/// [`crate::db::batcher`]; issue 13): `Some` for each revoked one, None for the others.
pub struct RevokedBatch;
impl crate::db::batcher::Batched for RevokedBatch {
    type Item = String;
    type Out = ();
    const NAME: &'static str = "pg-revoked";

    fn run(conn: &mut AnyConnection, jtis: &[String]) -> Result<Vec<Option<()>>, AppError> {
        use crate::db::prepared::prepared;
        let pg = crate::db::batcher::postgres(conn)?;
        let revoked: std::collections::HashSet<String> =
            prepared::<RevokedAmongPg>(&[Bind::Texts(&column(jtis, String::as_str))])
                .load::<String>(pg)?
                .into_iter()
                .collect();
        Ok(jtis
            .iter()
            .map(|j| revoked.contains(j).then_some(()))
            .collect())
    }
}

/// Many refresh tokens by hash at once (PostgreSQL, [`FindRefreshBatch`]): the columns of
/// [`find_refresh`], led by the ordinal of the hash they were found by.
struct FindRefreshManyPg;
impl Statement for FindRefreshManyPg {
    const SQL: &'static str = "SELECT i.\"ord\", r.\"id\", r.\"grant_id\", r.\"scope\", \
        r.\"expires_at\", r.\"rotated_at\", r.\"created_at\", g.\"revoked_at\", g.\"user_id\", \
        c.\"client_id\" FROM unnest(?::text[]) WITH ORDINALITY AS i(\"hash\", \"ord\") \
        JOIN \"refresh_tokens\" AS r ON r.\"token_hash\" = i.\"hash\" \
        JOIN \"grants\" AS g ON g.\"id\" = r.\"grant_id\" \
        JOIN \"clients\" AS c ON c.\"id\" = g.\"client_id\"";
    /// The ordinal, then a [`RefreshRow`].
    type Row = (
        BigInt,
        (
            BigInt,
            BigInt,
            Text,
            BigInt,
            Nullable<BigInt>,
            BigInt,
            Nullable<BigInt>,
            BigInt,
            Text,
        ),
    );
}

/// [`find_refresh`] for many refresh tokens in one statement (PostgreSQL,
/// [`crate::db::batcher`]; issue 13: the introspection of refresh tokens): `Some` row for each
/// hash that is a refresh token, None for the others.
pub struct FindRefreshBatch;
impl crate::db::batcher::Batched for FindRefreshBatch {
    type Item = HashedToken;
    type Out = RefreshRow;
    const NAME: &'static str = "pg-find-refresh";

    fn run(
        conn: &mut AnyConnection,
        hashes: &[HashedToken],
    ) -> Result<Vec<Option<RefreshRow>>, AppError> {
        use crate::db::prepared::prepared;
        let pg = crate::db::batcher::postgres(conn)?;
        let rows: Vec<(i64, RefreshRow)> =
            prepared::<FindRefreshManyPg>(&[Bind::Texts(&column(hashes, HashedToken::as_str))])
                .load(pg)?;
        Ok(by_ordinal(hashes.len(), rows))
    }
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
