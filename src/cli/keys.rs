//! `portcullis keys ...` (signing keys) and `portcullis master-key rotate`.

use std::path::PathBuf;

use clap::Subcommand;

use super::Console;
use super::output::{io, table};
use crate::clock;
use crate::error::AppError;

/// Master-key commands.
#[derive(Debug, Subcommand)]
pub enum MasterKeyCmd {
    /// Re-seal every stored key with a new master key, in one transaction. Stop every instance
    /// first; afterwards they start only with the new key (beside a SQLite database the key
    /// file is replaced; otherwise set PORTCULLIS_MASTER_KEY or PORTCULLIS_MASTER_KEY_FILE).
    Rotate {
        /// A file holding the new key: base64 of 32 bytes
        /// (`head -c 32 /dev/urandom | base64 > FILE`).
        #[arg(long, value_name = "FILE")]
        new_key_file: PathBuf,
    },
}

/// Signing-key commands.
#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// Make a new ES256 key: published in the JWKS at once, signing after --activate-in
    /// seconds. The old key stays published until every token it signed has expired.
    Rotate {
        /// Seconds between publishing the new key and signing with it: at least the time
        /// resource servers cache the JWKS (portcullis sends max-age=60).
        #[arg(long, value_name = "SECONDS", default_value_t = 120)]
        activate_in: i64,
    },
    /// List the signing keys: kid, created, signs from, status.
    List,
}

/// `portcullis master-key rotate`: every stored key re-sealed with the new key in one
/// transaction (all or nothing), then the key file beside a SQLite database replaced.
pub(super) fn rotate_master_key(
    c: Console<'_>,
    source: &crate::seal::KeySource,
    new_key_file: &std::path::Path,
) -> Result<(), AppError> {
    use crate::seal::KeySource;
    let new = crate::seal::read_key_file(new_key_file)?;
    let done = crate::manage::rotate_master_key(c.conn, &c.ctx, &c.actor, &new, source, c.now)?;
    let out = c.out;
    writeln!(
        out,
        "Re-sealed {} signing keys and {} client_secret_jwt keys with the new master key.",
        done.signing_keys, done.hmac_keys
    )
    .map_err(io)?;
    match source {
        KeySource::BesideDatabase(path) => {
            crate::seal::replace_key_file(path, &new).map_err(|e| {
                AppError::Internal(format!(
                    "{e}; the database is sealed with the key in {} now: copy it there",
                    new_key_file.display()
                ))
            })?;
            writeln!(
                out,
                "Replaced {} with the new key. Back it up; the old key no longer opens anything.",
                path.display()
            )
            .map_err(io)
        }
        KeySource::Setting | KeySource::File(_) => writeln!(
            out,
            "Give every instance the new key (PORTCULLIS_MASTER_KEY or PORTCULLIS_MASTER_KEY_FILE) before starting it: the old key no longer opens anything."
        )
        .map_err(io),
    }
}

/// `portcullis keys ...`.
pub(super) fn run(cmd: KeysCmd, console: Console<'_>) -> Result<(), AppError> {
    let Console {
        conn,
        ctx,
        out,
        now,
        actor,
    } = console;
    match cmd {
        KeysCmd::Rotate { activate_in } => {
            let kid = crate::manage::rotate_signing_key(conn, &ctx, &actor, activate_in, now)?;
            writeln!(
                out,
                "New signing key {kid}: published now, signs from {} UTC. Running instances pick it up within PORTCULLIS_CLIENT_CACHE_MS.",
                clock::human(now + activate_in)
            )
            .map_err(io)
        }
        KeysCmd::List => {
            let rows = crate::token::store::all(conn)?;
            let current = rows
                .iter()
                .find(|k| k.retired_at.is_none() && k.activates_at <= now)
                .map(|k| k.id);
            let listed: Vec<Vec<String>> = rows
                .iter()
                .map(|k| {
                    let status = match (k.retired_at, Some(k.id) == current) {
                        (Some(_), _) => "retired",
                        (None, true) => "signing",
                        (None, false) if k.activates_at > now => "published, signs later",
                        (None, false) => "published (verifies older tokens)",
                    };
                    vec![
                        k.kid.clone(),
                        k.alg.clone(),
                        clock::human(k.created_at),
                        clock::human(k.activates_at),
                        status.to_string(),
                    ]
                })
                .collect();
            table(
                out,
                &["KID", "ALG", "CREATED", "SIGNS FROM", "STATUS"],
                listed,
                "No signing keys.",
            )
        }
    }
}
