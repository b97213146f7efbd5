//! Client secret queries.

use diesel::prelude::*;

use crate::db::AnyConnection;
use crate::db::schema::client_secrets;
use crate::error::AppError;
use crate::ids::{ClientKey, SecretId};

/// A secret's last use, from its narrow table (migration 000015; shown, never decides).
const LAST_USED: &str =
    "(SELECT at FROM secret_last_used WHERE secret_last_used.secret_id = client_secrets.id)";

/// A stored secret. `hash` is `sha256$...` or an argon2id PHC string, never the value.
#[derive(Queryable, Selectable, Clone)]
#[diesel(table_name = client_secrets)]
pub struct SecretRow {
    /// Primary key, shown to admins as the secret's ID.
    pub id: SecretId,
    /// The owning client's primary key.
    #[diesel(column_name = client_id)]
    pub client_pk: ClientKey,
    /// What the secret is for.
    pub description: String,
    /// Scheme-tagged hash.
    pub hash: String,
    /// Last four characters of the value.
    pub hint: String,
    /// Seconds since the epoch; None = never expires.
    pub expires_at: Option<i64>,
    /// Last successful use (batched; from its narrow table, migration 000015).
    #[diesel(select_expression = diesel::dsl::sql::<diesel::sql_types::Nullable<diesel::sql_types::BigInt>>(LAST_USED))]
    #[diesel(select_expression_type = diesel::expression::SqlLiteral<diesel::sql_types::Nullable<diesel::sql_types::BigInt>>)]
    pub last_used_at: Option<i64>,
    /// Seconds since the epoch.
    pub created_at: i64,
}

impl std::fmt::Debug for SecretRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretRow")
            .field("id", &self.id)
            .field("client_pk", &self.client_pk)
            .field("hint", &self.hint)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Inserts a secret for a client.
pub fn insert(
    conn: &mut AnyConnection,
    client_pk: ClientKey,
    description: &str,
    hash: &str,
    hint: &str,
    expires_at: Option<i64>,
    now: i64,
) -> Result<SecretRow, AppError> {
    let id: i64 = diesel::insert_into(client_secrets::table)
        .values((
            client_secrets::client_id.eq(client_pk),
            client_secrets::description.eq(description),
            client_secrets::hash.eq(hash),
            client_secrets::hint.eq(hint),
            client_secrets::expires_at.eq(expires_at),
            client_secrets::created_at.eq(now),
        ))
        .returning(client_secrets::id)
        .get_result(conn)?;
    // `RETURNING` of a whole row does not compile for the MultiConnection; read it back.
    Ok(client_secrets::table
        .find(id)
        .select(SecretRow::as_select())
        .get_result(conn)?)
}

/// A client's secrets, oldest first.
pub fn list(conn: &mut AnyConnection, client_pk: ClientKey) -> Result<Vec<SecretRow>, AppError> {
    Ok(client_secrets::table
        .filter(client_secrets::client_id.eq(client_pk))
        .order(client_secrets::id)
        .select(SecretRow::as_select())
        .load(conn)?)
}

/// A secret by its ID alone, with the public client_id of its client (for the CLI, which
/// names secrets by ID).
pub fn find_with_client(
    conn: &mut AnyConnection,
    secret_id: SecretId,
) -> Result<Option<(SecretRow, String)>, AppError> {
    use crate::db::schema::clients;
    Ok(client_secrets::table
        .inner_join(clients::table)
        .filter(client_secrets::id.eq(secret_id))
        .select((SecretRow::as_select(), clients::client_id))
        .get_result(conn)
        .optional()?)
}

/// Deletes a secret. False if there is no such secret.
pub fn delete(conn: &mut AnyConnection, secret_id: SecretId) -> Result<bool, AppError> {
    Ok(
        diesel::delete(client_secrets::table.filter(client_secrets::id.eq(secret_id)))
            .execute(conn)?
            > 0,
    )
}

/// Records batched last-use times: (secret id, time), in one statement per 5,000.
pub fn record_last_used(
    conn: &mut AnyConnection,
    uses: &[(SecretId, i64)],
) -> Result<(), AppError> {
    let rows: Vec<[i64; 2]> = uses.iter().map(|(id, at)| [id.0, *at]).collect();
    crate::db::prepared::batch(
        conn,
        "INSERT INTO secret_last_used (secret_id, at) \
         SELECT v.column1, v.column2 FROM {values} AS v \
         WHERE EXISTS (SELECT 1 FROM client_secrets WHERE client_secrets.id = v.column1) \
         ON CONFLICT (secret_id) DO UPDATE SET at = excluded.at \
         WHERE excluded.at > secret_last_used.at",
        &rows,
    )?;
    Ok(())
}

/// One secret of a client (None if the id belongs to no secret of that client).
pub fn find(
    conn: &mut AnyConnection,
    client_pk: ClientKey,
    secret_id: SecretId,
) -> Result<Option<SecretRow>, AppError> {
    Ok(client_secrets::table
        .filter(client_secrets::id.eq(secret_id))
        .filter(client_secrets::client_id.eq(client_pk))
        .select(SecretRow::as_select())
        .get_result(conn)
        .optional()?)
}

/// Changes a secret's description and expiry (never its value). False if there is no such
/// secret.
pub fn update(
    conn: &mut AnyConnection,
    secret_id: SecretId,
    description: &str,
    expires_at: Option<i64>,
) -> Result<bool, AppError> {
    let n = diesel::update(client_secrets::table.filter(client_secrets::id.eq(secret_id)))
        .set((
            client_secrets::description.eq(description),
            client_secrets::expires_at.eq(expires_at),
        ))
        .execute(conn)?;
    Ok(n > 0)
}
