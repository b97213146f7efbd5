//! `portcullis secret ...`: add, list and delete a client's secrets.

use clap::Subcommand;

use super::Console;
use super::output::{
    Output, SECRET_HEADERS, SecretJson, expiry_text, io, json, secret_json, secret_rows, table,
};
use crate::client;
use crate::clock;
use crate::db::AnyConnection;
use crate::error::AppError;
use crate::ids::SecretId;
use crate::secret::{self, SecretView};

/// Secret commands.
#[derive(Debug, Subcommand)]
pub enum SecretCmd {
    /// Add a secret to a client. Without --value one is generated and printed ONCE.
    Add {
        /// The client's client_id.
        client_id: String,
        /// What the secret is for.
        #[arg(long, default_value = "")]
        description: String,
        /// Expiry: YYYY-MM-DD (or DD/MM/YYYY): the secret stops working at 00:00 UTC that day.
        #[arg(long, value_name = "DATE")]
        expires: Option<String>,
        /// Your own value (at least 16 characters; stored with argon2id). `-` reads it from stdin.
        #[arg(long, value_name = "VALUE")]
        value: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// List a client's secrets: ID, description, hint, expiry, last use. Never the value.
    List {
        /// The client's client_id.
        client_id: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Delete a secret; it stops working at once.
    Delete {
        /// The secret's ID (from `secret list`).
        secret_id: SecretId,
    },
}

pub(super) fn run(cmd: SecretCmd, con: Console<'_>) -> Result<(), AppError> {
    match cmd {
        SecretCmd::Add {
            client_id,
            description,
            expires,
            value,
            output,
        } => {
            let c = client::store::get(con.conn, &client_id)?;
            let expires_at = expires
                .as_deref()
                .map(|e| clock::parse_expiry(e, con.now))
                .transpose()
                .map_err(AppError::Invalid)?;
            let value = match value.as_deref() {
                Some("-") => Some(super::read_line("Secret value: ")?),
                other => other.map(str::to_string),
            };
            let (row, generated) = crate::manage::add_secret(
                con.conn,
                &con.ctx,
                &con.actor,
                &c,
                &crate::manage::SecretInput {
                    description: &description,
                    expires_at,
                    value: value.as_deref(),
                },
                con.now,
            )?;
            if output == Output::Json {
                return json(
                    con.out,
                    &serde_json::json!({
                        "secret": secret_json(SecretView::from(&row), con.now),
                        "client_secret": generated,
                    }),
                );
            }
            writeln!(
                con.out,
                "Added secret {} to client '{}' (expires: {}).",
                row.id,
                c.name,
                expiry_text(expires_at, con.now)
            )
            .map_err(io)?;
            match generated {
                Some(v) => {
                    writeln!(con.out, "client_secret: {v}").map_err(io)?;
                    writeln!(con.out, "Store it now: it is shown only this once.").map_err(io)
                }
                None => writeln!(
                    con.out,
                    "Your value is stored as an argon2id hash with the hint ...{}.",
                    row.hint
                )
                .map_err(io),
            }
        }
        SecretCmd::List { client_id, output } => {
            let (_, secrets) = client_with_secrets(con.conn, &client_id)?;
            if output == Output::Json {
                let items: Vec<SecretJson> = secrets
                    .into_iter()
                    .map(|s| secret_json(s, con.now))
                    .collect();
                return json(con.out, &items);
            }
            table(
                con.out,
                &SECRET_HEADERS,
                secret_rows(&secrets, con.now),
                "No secrets.",
            )
        }
        SecretCmd::Delete { secret_id } => {
            let Some((row, client_id)) = secret::store::find_with_client(con.conn, secret_id)?
            else {
                return Err(AppError::NotFound(format!("no secret with ID {secret_id}")));
            };
            let c = client::store::get(con.conn, &client_id)?;
            crate::manage::delete_secret(con.conn, &con.ctx, &con.actor, &c, &row, con.now)?;
            writeln!(con.out, "Deleted secret {secret_id}; it no longer works.").map_err(io)
        }
    }
}

/// A client by its client_id, with its secrets as they are shown (never the values).
pub(super) fn client_with_secrets(
    conn: &mut AnyConnection,
    client_id: &str,
) -> Result<(client::Client, Vec<SecretView>), AppError> {
    let c = client::store::get(conn, client_id)?;
    let secrets = secret::store::list(conn, c.id)?
        .iter()
        .map(SecretView::from)
        .collect();
    Ok((c, secrets))
}
