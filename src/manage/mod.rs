//! The use cases: every change an admin makes, from the admin area, the JSON API or the CLI
//! (all three call these functions and nothing below them for a change). Each change is one
//! transaction with its audit event (actor: the admin user, the API client, or `cli:<OS user>`)
//! and its token revocations; a change to a client drops the local client cache right after,
//! so that this instance applies it at once (others within `PORTCULLIS_CLIENT_CACHE_MS`).

mod clients;
mod keys;
mod secrets;
mod users;

pub use clients::*;
pub use keys::*;
pub use secrets::*;
pub use users::*;

use crate::audit::NewEvent;
use crate::client::Client;
use crate::client::cache::ClientCache;
use crate::db::AnyConnection;
use crate::error::AppError;

/// Who acts, for the audit log.
#[derive(Debug, Clone)]
pub struct Actor {
    /// Username.
    pub username: String,
    /// Remote address of the request.
    pub remote_addr: String,
}

impl Actor {
    /// The person running the CLI: `cli:<OS user>` from `local`.
    pub fn cli() -> Actor {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .ok()
            .filter(|u| !u.is_empty() && u.len() <= 64 && u.chars().all(|c| c.is_ascii_graphic()))
            .unwrap_or_else(|| "unknown".into());
        Actor {
            username: format!("cli:{user}"),
            remote_addr: "local".into(),
        }
    }

    pub(super) fn record(
        &self,
        conn: &mut AnyConnection,
        action: &str,
        client: Option<&Client>,
        target: &str,
        details: &str,
        now: i64,
    ) -> Result<(), AppError> {
        crate::audit::store::record(
            conn,
            &NewEvent {
                actor: &self.username,
                action,
                client_id: client.map(|c| c.client_id.as_str()),
                target,
                details,
                remote_addr: &self.remote_addr,
            },
            now,
        )
    }
}

/// What the use cases need besides a connection: the client cache they drop after a change,
/// and the master key that seals a new client_secret_jwt key. The server builds it from its
/// state (`AppState::manage`), the CLI from a cache of its own and the configured key.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    /// Dropped after every change to a client, its secrets or its redirect URIs.
    pub clients: &'a ClientCache,
    /// Seals client_secret_jwt keys.
    pub master_key: &'a crate::seal::MasterKey,
}

/// Makes a change to clients, secrets or redirect URIs in one transaction and, once it has
/// committed, drops the clients it changed from this instance's cache at once, as the poll
/// would (`ClientCache::forget`): the change log (`client_changes`) between the generations
/// read before and after the change names them, with the generation of each change, so that
/// a load or preload that read one of them before the change and finishes after it is never
/// kept. (Only clearing the entries would let such a late load put the old client back until
/// the next poll.) When the log cannot say, every client is dropped and the poll does the
/// rest. The generations are read in the change's transaction: if they cannot be, nothing
/// is changed.
fn changed<T>(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    change: impl FnOnce(&mut AnyConnection) -> Result<T, AppError>,
) -> Result<T, AppError> {
    let (done, after, changes) = crate::db::transaction(conn, |conn| {
        let before = crate::client::store::generation(conn)?;
        let done = change(conn)?;
        // Within the transaction: on PostgreSQL the change holds the counter's row lock, so
        // the generations up to this one are all committed or ours.
        let after = crate::client::store::generation(conn)?;
        let changes = crate::client::store::all_changes_between(conn, before, after)?;
        Ok::<_, AppError>((done, after, changes))
    })?;
    match changes {
        Some(changes) => ctx.clients.forget(&changes),
        None => {
            ctx.clients.advance(after);
        }
    }
    Ok(done)
}
