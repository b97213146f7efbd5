//! The signing keys and the master key: rotations, each one transaction with its audit event.

use super::{Actor, Ctx};
use crate::db::AnyConnection;
use crate::error::AppError;

/// Makes a new signing key: published in the JWKS at once, signing after `activate_in` seconds
/// (checked against [`crate::limits::KEY_ACTIVATION_DELAY`]). Returns its `kid`.
pub fn rotate_signing_key(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    actor: &Actor,
    activate_in: i64,
    now: i64,
) -> Result<String, AppError> {
    crate::limits::KEY_ACTIVATION_DELAY
        .check(activate_in)
        .map_err(AppError::Invalid)?;
    crate::db::transaction(conn, |conn| {
        let kid = crate::token::rotate(conn, now, activate_in, ctx.master_key)?;
        actor.record(
            conn,
            "signing_key.rotate",
            None,
            &kid,
            &format!("signs from {}", crate::clock::rfc3339(now + activate_in)),
            now,
        )?;
        Ok(kid)
    })
}

/// Re-seals every stored key with `new` in one transaction (all or nothing), audited.
pub fn rotate_master_key(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    actor: &Actor,
    new: &crate::seal::MasterKey,
    source: &crate::seal::KeySource,
    now: i64,
) -> Result<crate::seal::Resealed, AppError> {
    crate::db::transaction(conn, |conn| {
        let done = crate::seal::reseal(conn, ctx.master_key, Some(new), source)?;
        actor.record(
            conn,
            "master_key.rotate",
            None,
            "",
            &format!(
                "{} signing keys and {} client_secret_jwt keys re-sealed",
                done.signing_keys, done.hmac_keys
            ),
            now,
        )?;
        Ok(done)
    })
}
