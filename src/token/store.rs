//! Signing-key queries.

use diesel::prelude::*;

use crate::db::AnyConnection;
use crate::db::schema::signing_keys;
use crate::error::AppError;

/// A stored signing key. `private_key` is PKCS#8 DER, base64.
#[derive(Queryable, Selectable, Clone)]
#[diesel(table_name = signing_keys)]
pub struct KeyRow {
    /// Primary key; the highest active one is current.
    pub id: i64,
    /// Key id (JWS `kid`).
    pub kid: String,
    /// JWS algorithm, e.g. `ES256`.
    pub alg: String,
    /// PKCS#8 DER, standard base64.
    pub private_key: String,
    /// Seconds since the epoch.
    pub created_at: i64,
    /// When it stopped being published; None = active.
    pub retired_at: Option<i64>,
}

/// Keys that are not retired, newest first.
pub fn active(conn: &mut AnyConnection) -> Result<Vec<KeyRow>, AppError> {
    Ok(signing_keys::table
        .filter(signing_keys::retired_at.is_null())
        .order(signing_keys::id.desc())
        .select(KeyRow::as_select())
        .load(conn)?)
}

/// Stores a new key.
pub fn insert(
    conn: &mut AnyConnection,
    kid: &str,
    alg: &str,
    private_key: &str,
    now: i64,
) -> Result<(), AppError> {
    diesel::insert_into(signing_keys::table)
        .values((
            signing_keys::kid.eq(kid),
            signing_keys::alg.eq(alg),
            signing_keys::private_key.eq(private_key),
            signing_keys::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}
