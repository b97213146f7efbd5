//! Batched last-used times. A token request records its client and secret in memory (a mutex
//! and two map inserts, no I/O); a background task writes the latest time per client and per
//! secret every `usage_flush_interval` (default 60 s), so each row is written at most once per
//! interval however many tokens it gets, and shutdown flushes what is left. A crash loses at
//! most one interval of last-used times, never a token or a secret.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::db::AnyConnection;
use crate::error::AppError;

#[derive(Default)]
struct Pending {
    clients: HashMap<i64, i64>,
    secrets: HashMap<i64, i64>,
}

/// In-memory last-used times waiting to be written.
#[derive(Default)]
pub struct UsageRecorder {
    pending: Mutex<Pending>,
}

impl UsageRecorder {
    /// Notes that a client authenticated with a secret (None for public clients) at `now`.
    pub fn record(&self, client_pk: i64, secret_id: Option<i64>, now: i64) {
        if let Ok(mut p) = self.pending.lock() {
            p.clients.insert(client_pk, now);
            if let Some(id) = secret_id {
                p.secrets.insert(id, now);
            }
        }
    }

    /// True when nothing waits to be written.
    pub fn is_empty(&self) -> bool {
        self.pending
            .lock()
            .map(|p| p.clients.is_empty() && p.secrets.is_empty())
            .unwrap_or(true)
    }

    /// Writes and clears what was recorded. On a database error the times are put back to be
    /// retried at the next flush.
    pub fn flush(&self, conn: &mut AnyConnection) -> Result<(), AppError> {
        let taken = match self.pending.lock() {
            Ok(mut p) => std::mem::take(&mut *p),
            Err(_) => return Ok(()),
        };
        if taken.clients.is_empty() && taken.secrets.is_empty() {
            return Ok(());
        }
        let clients: Vec<(i64, i64)> = taken.clients.iter().map(|(k, v)| (*k, *v)).collect();
        let secrets: Vec<(i64, i64)> = taken.secrets.iter().map(|(k, v)| (*k, *v)).collect();
        let result = diesel::Connection::transaction(conn, |conn| {
            crate::client::store::record_last_used(conn, &clients)?;
            crate::secret::store::record_last_used(conn, &secrets)
        });
        if result.is_err()
            && let Ok(mut p) = self.pending.lock()
        {
            for (k, v) in taken.clients {
                p.clients.entry(k).or_insert(v);
            }
            for (k, v) in taken.secrets {
                p.secrets.entry(k).or_insert(v);
            }
        }
        result
    }
}
