//! Background jobs of a running server: the periodic flush and purge ([`flush`]), and the poll
//! that follows changes made elsewhere ([`watch_changes`]).

use actix_web::web;

use crate::AppState;
use crate::error::AppError;
use crate::{audit, client, token, user};

/// How many of the latest client changes the log keeps (`client_changes`): an instance that
/// falls further behind between two polls drops its whole client cache instead of the
/// changed clients.
const CLIENT_CHANGES_KEPT: i64 = 100_000;

/// Writes the batched last-used times, and deletes expired codes, refresh tokens, token
/// families, revocation entries and sessions (nothing refers to them once they have expired),
/// audit events past their retention and all but the latest client changes.
pub(crate) fn flush(state: &AppState) -> Result<(), AppError> {
    let mut conn = state.pool.get()?;
    if !state.usage.is_empty() {
        state.usage.flush(&mut conn)?;
    }
    let now = state.clock.now();
    token::store::purge_expired(&mut conn, now)?;
    user::sessions::purge_expired(&mut conn, &state.sessions, now)?;
    client::store::prune_changes(&mut conn, CLIENT_CHANGES_KEPT)?;
    audit::store::purge_before(&mut conn, now.saturating_sub(state.audit_retention_seconds))?;
    let longest = token::store::longest_access_ttl(&mut conn, state.access_token_ttl)?;
    for kid in token::retire_superseded(&mut conn, now, longest)? {
        tracing::info!(%kid, "retired a signing key: no unexpired token was signed with it");
    }
    Ok(())
}

/// On SQLite, checkpoints the WAL every `every` ([`crate::db::checkpoint`]).
pub(crate) async fn checkpoint_periodically(
    state: web::Data<AppState>,
    every: std::time::Duration,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let s = state.clone();
        let done = tokio::task::spawn_blocking(move || {
            let mut conn = s.pool.get()?;
            crate::db::checkpoint(&mut conn, crate::db::RESTART_AFTER_FRAMES)
        })
        .await;
        match done {
            Ok(Ok(true)) => state.writer.checkpoint_before_next(),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "could not checkpoint the WAL; will retry"),
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint task failed"),
        }
    }
}

pub(crate) async fn flush_periodically(state: web::Data<AppState>, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        let s = state.clone();
        match tokio::task::spawn_blocking(move || flush(&s)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "could not write last-used times; will retry"),
            Err(e) => tracing::warn!(error = %e, "last-used flush task failed"),
        }
    }
}

/// Polls `cache_generation`: drops cached clients when another writer changed one (see
/// [`client::cache`]) and reloads the signing keys when they changed, so a change anywhere is
/// seen here within one interval.
pub(crate) async fn watch_changes(state: web::Data<AppState>, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The CORS origins were read at start (app.rs); later, see client::cors.
    let rebuilds = std::sync::Arc::new(std::sync::Mutex::new(client::cors::Rebuilds::default()));
    loop {
        tick.tick().await;
        let s = state.clone();
        let rebuilds = rebuilds.clone();
        let read = tokio::task::spawn_blocking(move || -> Result<_, AppError> {
            let mut conn = s.pool.get()?;
            // Signing keys follow the same way (a rotation at another instance).
            if s.keys.follow(&mut conn)? {
                tracing::info!("signing keys changed; reloaded");
            }
            let generation = client::store::generation(&mut conn)?;
            let before = s.clients.polled();
            // Which clients changed, when the log still holds every change since the last
            // poll; else the cache is dropped as a whole.
            let changes = if generation > before {
                client::store::all_changes_between(&mut conn, before, generation)?
            } else {
                None
            };
            // The CORS origins follow the clients, before the new generation is recorded: the
            // changed clients' origins at once, the whole set when a rebuild is due.
            let mut cors = rebuilds
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if generation > before {
                cors.changed();
            }
            if cors.due() {
                let started = std::time::Instant::now();
                let uris = client::store::enabled_redirect_uris(&mut conn)?;
                s.cors_origins.replace(uris.iter().map(String::as_str));
                cors.done(started);
            } else if let Some(changes) = &changes {
                let pks: Vec<_> = changes.iter().map(|c| c.0).collect();
                let uris = client::store::enabled_redirect_uris_of(&mut conn, &pks)?;
                s.cors_origins.add(uris.iter().map(String::as_str));
            }
            Ok((generation, changes))
        })
        .await;
        match read {
            Ok(Ok((generation, changes))) => {
                match state.clients.observe(generation, changes.as_deref()) {
                    client::cache::Observed::Unchanged => {}
                    client::cache::Observed::Clients(n) => {
                        tracing::debug!(generation, changes = n, "clients changed; dropped them");
                    }
                    client::cache::Observed::All => {
                        tracing::debug!(generation, "clients changed; cache dropped");
                        // Filled again in the background (the first poll fills it at start).
                        tokio::spawn(preload_clients(state.clone()));
                    }
                }
            }
            // The cached clients keep being served for PORTCULLIS_CACHE_STALE_MAX_MS after the
            // last successful poll (client_credentials needs no database), then refused: see
            // client::cache.
            Ok(Err(e)) => {
                tracing::warn!(
                    error = %e,
                    "could not check for client changes; serving cached clients for at most PORTCULLIS_CACHE_STALE_MAX_MS"
                );
            }
            Err(e) => tracing::warn!(error = %e, "client change check failed"),
        }
    }
}

/// Fills the client cache from the database in the background ([`client::cache::ClientCache::preload`]).
async fn preload_clients(state: web::Data<AppState>) {
    let started = std::time::Instant::now();
    let s = state.clone();
    let done = tokio::task::spawn_blocking(move || {
        let mut conn = s.pool.get()?;
        s.clients.preload(&mut conn)
    })
    .await;
    match done {
        Ok(Ok(0)) => {}
        Ok(Ok(n)) => tracing::info!(
            clients = n,
            ms = started.elapsed().as_millis() as u64,
            "client cache filled"
        ),
        // Clients are then read on their first request, as without a preload.
        Ok(Err(e)) => tracing::warn!(error = %e, "could not fill the client cache"),
        Err(e) => tracing::warn!(error = %e, "client cache fill failed"),
    }
}
