use super::{Actor, Ctx, changed};
use crate::client::Client;
use crate::db::AnyConnection;
use crate::error::AppError;
use crate::secret::store::SecretRow;

/// What an admin enters for a secret.
pub struct SecretInput<'a> {
    /// What or who uses it.
    pub description: &'a str,
    /// Expiry; None = never.
    pub expires_at: Option<i64>,
    /// A typed value (16+ characters, stored with argon2id); None = generate one. Ignored
    /// when editing: a value never changes.
    pub value: Option<&'a str>,
}

/// Adds a secret: generated when no value is given (and returned once), else the typed value.
pub fn add_secret(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    actor: &Actor,
    client: &Client,
    input: &SecretInput,
    now: i64,
) -> Result<(SecretRow, Option<String>), AppError> {
    let SecretInput {
        description,
        expires_at,
        value,
    } = *input;
    if client.public {
        return Err(AppError::Invalid(
            "a public client has no secrets (it authenticates with PKCE)".into(),
        ));
    }
    let description =
        crate::secret::validate_description(description).map_err(AppError::Invalid)?;
    let prepared = crate::secret::prepare(value)?;
    changed(conn, ctx, |conn| {
        let row = crate::secret::store::insert(
            conn,
            client.id,
            &description,
            &prepared.hash,
            &prepared.hint,
            expires_at,
            now,
        )?;
        let kind = if prepared.generated.is_some() {
            "generated"
        } else {
            "typed"
        };
        actor.record(
            conn,
            "secret.add",
            Some(client),
            &secret_target(&row),
            &format!("{kind}; expires {}", expiry_words(expires_at)),
            now,
        )?;
        Ok((row, prepared.generated))
    })
}

fn secret_target(row: &SecretRow) -> String {
    let name = if row.description.is_empty() {
        format!("secret {}", row.id)
    } else {
        row.description.clone()
    };
    format!("{name} (••••{})", row.hint)
}

fn expiry_words(expires_at: Option<i64>) -> String {
    expires_at.map_or_else(|| "never".to_string(), crate::clock::date)
}

/// Changes a secret's description and expiry.
pub fn update_secret(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    actor: &Actor,
    client: &Client,
    secret: &SecretRow,
    input: &SecretInput,
    now: i64,
) -> Result<(), AppError> {
    let SecretInput {
        description,
        expires_at,
        ..
    } = *input;
    let description =
        crate::secret::validate_description(description).map_err(AppError::Invalid)?;
    changed(conn, ctx, |conn| {
        crate::secret::store::update(conn, secret.id, &description, expires_at)?;
        let updated = SecretRow {
            description: description.clone(),
            ..secret.clone()
        };
        actor.record(
            conn,
            "secret.update",
            Some(client),
            &secret_target(&updated),
            &format!("expires {}", expiry_words(expires_at)),
            now,
        )
    })
}

/// Deletes a secret: it stops working at once.
pub fn delete_secret(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    actor: &Actor,
    client: &Client,
    secret: &SecretRow,
    now: i64,
) -> Result<(), AppError> {
    changed(conn, ctx, |conn| {
        crate::secret::store::delete(conn, secret.id)?;
        actor.record(
            conn,
            "secret.delete",
            Some(client),
            &secret_target(secret),
            "",
            now,
        )
    })
}
