//! Clients and their secrets kept in memory, so that a token request needs no database query.
//!
//! Staleness is bounded and the bound is explicit. Every change to a client, a secret or a
//! redirect URI increments `cache_generation` by database trigger, whoever made it (this
//! instance, another instance, the CLI), and (on SQLite so far) logs the client's primary
//! key under the new value in `client_changes`. Each instance polls that one row every
//! `PORTCULLIS_CLIENT_CACHE_MS` (default 1000 ms); when it has moved, the instance reads the
//! log since its last poll and drops those clients ([`ClientCache::forget`]), or every client
//! when the log has a gap ([`ClientCache::advance`]; only the latest changes are kept). So a
//! deleted secret or a disabled client is refused everywhere within one poll interval (plus
//! the poll's own query time), and a change to one client costs the others nothing. Expiry
//! needs no poll: it is checked against the cached row on every request. With
//! `PORTCULLIS_CLIENT_CACHE_MS=0` nothing is cached and every request reads the database.
//!
//! When the poll fails (the database is unreachable), the cached clients keep being served for
//! at most `PORTCULLIS_CACHE_STALE_MAX_MS` (default 30 s) after the last successful poll, so
//! client_credentials for a known client keeps working through a short outage; a disable made
//! during the outage may take that long to apply. Past it every lookup misses, the request
//! needs the database, and it is refused with 503 until the database answers again.
//!
//! Loading races with invalidation safely: a load reads the generation *before* the rows and
//! the entry is tagged with it. An entry whose tag is older than the generation of the last
//! change to all clients is never used, and one older than the last change to its own client
//! is never kept (checked under the lock that records such changes). A load that read rows
//! older than a change therefore also read a generation older than that change, and is dropped
//! as soon as this instance knows of the change.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::Client;
use crate::ids::ClientKey;
use crate::secret::store::SecretRow;

/// Upper bound on cached clients unless `PORTCULLIS_CLIENT_CACHE_ENTRIES` says otherwise.
/// Past it, the clients least likely to be asked for again are evicted one by one
/// (quick_cache's S3-FIFO: recency and frequency), never all at once: emptying the whole cache
/// at 100,000 entries halved client_credentials with 120,000 active clients (issue 13).
const MAX_ENTRIES: usize = 100_000;
/// Upper bound on remembered unknown client_ids (kept apart, so that a flood of made-up ids
/// never evicts real clients).
const MAX_ABSENT: usize = 10_000;
/// Clients remembered as changed one by one before the cache drops everything at once
/// instead (and forgets them): bounds the memory of a flood of registrations.
const MAX_CHANGED: usize = 100_000;

/// A cached client with every one of its secrets.
pub struct CachedClient {
    /// The client, with its redirect URIs.
    pub client: Client,
    /// All its secrets, expired ones included (expiry is checked per request).
    pub secrets: Vec<SecretRow>,
    /// Its registered public keys for private_key_jwt, parsed once.
    pub assertion_keys: Vec<super::assertion::AssertionKey>,
    generation: i64,
}

/// What a poll found ([`ClientCache::observe`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// Nothing changed since the last poll.
    Unchanged,
    /// This many changes, to the clients dropped.
    Clients(usize),
    /// Every client was dropped (the first poll, or the log had a gap).
    All,
}

/// The per-instance client cache.
pub struct ClientCache {
    enabled: bool,
    entries: quick_cache::sync::Cache<String, Arc<CachedClient>>,
    /// client_ids known not to exist, with the generation they were looked up under: a flood
    /// of requests naming unknown clients costs one query per id, not one per request.
    absent: quick_cache::sync::Cache<String, i64>,
    /// The generation of the last change to all clients: entries read under an older one are
    /// never served.
    seen: AtomicI64,
    /// Clients changed one by one since `seen` last moved, each with the generation of its
    /// latest change: a load of one of them that read an older generation is not kept.
    changed: Mutex<HashMap<ClientKey, i64>>,
    /// The generation of the latest change forgotten one by one: a client_id looked up as
    /// unknown under an older one may have been registered since.
    absent_seen: AtomicI64,
    /// The generation the change poll last read: a change made through this instance is
    /// applied at once (`forget`), and the poll's refills and the CORS origins follow this.
    polled: AtomicI64,
    /// When the cache was created (the origin of `confirmed_ms`).
    started: Instant,
    /// Milliseconds after `started` of the last successful change poll (or the creation).
    confirmed_ms: AtomicU64,
    /// `PORTCULLIS_CACHE_STALE_MAX_MS`: how long entries are served without a successful poll.
    stale_max: Duration,
    /// How many clients are kept at most (`PORTCULLIS_CLIENT_CACHE_ENTRIES`).
    capacity: usize,
    /// Whether a [`ClientCache::preload`] is running.
    preloading: AtomicBool,
}

impl ClientCache {
    /// A cache; `enabled = false` makes every lookup miss (read-through to the database).
    pub fn new(enabled: bool) -> ClientCache {
        ClientCache {
            enabled,
            entries: quick_cache::sync::Cache::new(MAX_ENTRIES),
            absent: quick_cache::sync::Cache::new(MAX_ABSENT),
            seen: AtomicI64::new(i64::MIN),
            changed: Mutex::new(HashMap::new()),
            absent_seen: AtomicI64::new(i64::MIN),
            polled: AtomicI64::new(i64::MIN),
            started: Instant::now(),
            confirmed_ms: AtomicU64::new(0),
            stale_max: Duration::from_secs(30),
            capacity: MAX_ENTRIES,
            preloading: AtomicBool::new(false),
        }
    }

    /// Sets how many clients are kept at most (`PORTCULLIS_CLIENT_CACHE_ENTRIES`).
    pub fn with_capacity(mut self, entries: usize) -> ClientCache {
        self.entries = quick_cache::sync::Cache::new(entries.max(1));
        self.capacity = entries.max(1);
        self
    }

    /// Sets how long entries are served without a successful change poll.
    pub fn with_stale_max(mut self, stale_max: Duration) -> ClientCache {
        self.stale_max = stale_max;
        self
    }

    /// True while the last successful change poll is at most `stale_max` old: the entries
    /// may be served. Past it, every lookup misses (and so needs the database).
    pub fn is_current(&self) -> bool {
        let confirmed = Duration::from_millis(self.confirmed_ms.load(Ordering::Acquire));
        self.started.elapsed().saturating_sub(confirmed) <= self.stale_max
    }

    /// Records a successful change poll.
    fn confirm(&self) {
        let now = self.started.elapsed().as_millis() as u64;
        self.confirmed_ms.fetch_max(now, Ordering::AcqRel);
    }

    /// The cached client, if it is cached and current.
    pub fn get(&self, client_id: &str) -> Option<Arc<CachedClient>> {
        if !self.enabled || !self.is_current() {
            return None;
        }
        let seen = self.seen.load(Ordering::Acquire);
        self.entries.get(client_id).filter(|e| e.generation >= seen)
    }

    /// Keeps a client read from the database under `generation`, and returns it.
    pub fn insert(
        &self,
        generation: i64,
        client: Client,
        secrets: Vec<SecretRow>,
    ) -> Arc<CachedClient> {
        let assertion_keys = client
            .jwks
            .as_deref()
            .and_then(|j| super::assertion::parse_keys(j).ok())
            .unwrap_or_default();
        let entry = Arc::new(CachedClient {
            client,
            secrets,
            assertion_keys,
            generation,
        });
        if self.enabled {
            // Checked and kept under the lock that `forget` records changes under: a change
            // recorded before is seen here, and one recorded after drops this entry.
            let changed = self.changed();
            let current = generation >= self.seen.load(Ordering::Acquire)
                && changed
                    .get(&entry.client.id)
                    .is_none_or(|at| generation >= *at);
            if current {
                self.entries
                    .insert(entry.client.client_id.clone(), entry.clone());
            }
        }
        entry
    }

    /// The clients changed one by one (a poisoned lock is taken over: the map is only ever
    /// inserted into, retained or cleared, so it is whole).
    fn changed(&self) -> MutexGuard<'_, HashMap<ClientKey, i64>> {
        self.changed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The generation unknown client_ids must have been looked up under to be believed.
    fn absent_floor(&self) -> i64 {
        self.seen
            .load(Ordering::Acquire)
            .max(self.absent_seen.load(Ordering::Acquire))
    }

    /// The cached answer for `client_id`, if there is a current one: `Some(None)` when the
    /// client is known not to exist.
    pub fn lookup(&self, client_id: &str) -> Option<Option<Arc<CachedClient>>> {
        if let Some(hit) = self.get(client_id) {
            return Some(Some(hit));
        }
        if !self.enabled || !self.is_current() {
            return None;
        }
        let floor = self.absent_floor();
        self.absent
            .get(client_id)
            .filter(|generation| *generation >= floor)
            .map(|_| None)
    }

    /// The client, from the cache or else read from the database and cached; None when
    /// there is no such client.
    pub fn load(
        &self,
        conn: &mut crate::db::AnyConnection,
        client_id: &str,
    ) -> Result<Option<Arc<CachedClient>>, crate::error::AppError> {
        if let Some(known) = self.lookup(client_id) {
            return Ok(known);
        }
        let (generation, found) = super::store::load_with_secrets(conn, client_id)?;
        match found {
            Some((client, secrets)) => Ok(Some(self.insert(generation, client, secrets))),
            None => {
                if self.enabled && generation >= self.absent_floor() {
                    self.absent.insert(client_id.to_string(), generation);
                }
                Ok(None)
            }
        }
    }

    /// Fills the cache from the database, clients in primary-key order, until it holds as
    /// many as it may keep or every client is in (issue 13: with a million clients, a client's
    /// first request no longer waits for three queries, and the cache is full from the start
    /// instead of after a million misses). Each page is read as [`ClientCache::load`] reads one
    /// client: the generation first, so that a client of a page read across a change to it is
    /// dropped or refused like any stale load. A preload stops when the whole cache is
    /// dropped meanwhile (the poll then starts the next one); a change to some clients only
    /// drops those. A client already cached under the same generation is kept as it is (and
    /// not counted as asked for, which would skew eviction). At most one preload runs at a
    /// time; returns how many clients it cached (0 when one was running or the cache is off).
    pub fn preload(
        &self,
        conn: &mut crate::db::AnyConnection,
    ) -> Result<usize, crate::error::AppError> {
        /// Clients per page: three statements each.
        const PAGE: usize = 5_000;
        if !self.enabled || self.preloading.swap(true, Ordering::AcqRel) {
            return Ok(0);
        }
        let result = (|| {
            let (mut after, mut cached) = (crate::ids::ClientKey(0), 0);
            // Read before the rows of each page: before the first here, and before each next
            // one as the check that nothing changed since.
            let generation = super::store::generation(conn)?;
            while self.entries.len() < self.capacity {
                let room = (self.capacity - self.entries.len()).min(PAGE);
                let page = super::store::page_with_secrets(conn, after, room as i64)?;
                let Some((last, _)) = page.last() else {
                    break;
                };
                after = last.id;
                for (client, secrets) in page {
                    let current = self
                        .entries
                        .peek(&client.client_id)
                        .is_some_and(|e| e.generation >= generation);
                    if !current {
                        self.insert(generation, client, secrets);
                        cached += 1;
                    }
                }
                if self.seen.load(Ordering::Acquire) > generation {
                    // Everything was dropped since the start: every entry of this preload is
                    // refused, and the poll that dropped them starts the next one.
                    break;
                }
            }
            Ok(cached)
        })();
        self.preloading.store(false, Ordering::Release);
        result
    }

    /// Records the generation the change poll read. When it moved since the last poll, drops
    /// the clients changed meanwhile (`changes`: the log since the last poll, complete), or
    /// every client when the log is not known to be complete (None: pruned, or the first
    /// poll). Called after each successful poll.
    pub fn observe(&self, generation: i64, changes: Option<&[(ClientKey, i64)]>) -> Observed {
        self.confirm();
        if self.polled.fetch_max(generation, Ordering::AcqRel) >= generation {
            return Observed::Unchanged;
        }
        match changes {
            Some(changes) => {
                self.forget(changes);
                Observed::Clients(changes.len())
            }
            None => {
                self.advance(generation);
                Observed::All
            }
        }
    }

    /// Drops the clients of `changes` ((client primary key, generation of the change)): none
    /// of them is served or kept again unless read under that generation or a newer one. The
    /// others stay. Past [`MAX_CHANGED`] clients remembered this way, drops every client
    /// instead ([`ClientCache::advance`]).
    pub fn forget(&self, changes: &[(ClientKey, i64)]) {
        let Some(latest) = changes.iter().map(|c| c.1).max() else {
            return;
        };
        let gone: HashSet<ClientKey> = {
            let mut changed = self.changed();
            if changed.len() + changes.len() > MAX_CHANGED {
                drop(changed);
                self.advance(latest);
                return;
            }
            for (client_pk, at) in changes {
                let known = changed.entry(*client_pk).or_insert(*at);
                *known = (*known).max(*at);
            }
            changes.iter().map(|c| c.0).collect()
        };
        // A client registered since its id was looked up is no longer unknown.
        self.absent_seen.fetch_max(latest, Ordering::AcqRel);
        self.absent.clear();
        // After the changes are recorded: an entry put in before is dropped here, one after
        // was refused by `insert`.
        self.entries.retain(|_, e| !gone.contains(&e.client.id));
    }

    /// Moves the cache to `generation` as a whole: every client cached under an older one is
    /// dropped, and a load that read an older one is never used. Called by the poll when it
    /// cannot tell which clients changed, and by this instance's own changes when they cannot
    /// either (manage::changed). Returns true when the generation moved.
    pub fn advance(&self, generation: i64) -> bool {
        {
            let mut changed = self.changed();
            let previous = self.seen.fetch_max(generation, Ordering::AcqRel);
            if generation <= previous {
                return false;
            }
            // `seen` now covers every change remembered one by one up to `generation`.
            changed.retain(|_, at| *at > generation);
        }
        self.entries.retain(|_, e| e.generation >= generation);
        self.absent.clear();
        true
    }

    /// How many clients are cached.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no client is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The generation the change poll last read (tests wait for it).
    pub fn polled(&self) -> i64 {
        self.polled.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(id: &str) -> Client {
        Client::fixture(id)
    }

    #[test]
    fn a_newer_generation_drops_entries_and_refuses_stale_loads() {
        let cache = ClientCache::new(true);
        cache.observe(5, None);
        cache.insert(5, client("a"), vec![]);
        assert!(cache.get("a").is_some());
        assert_eq!(cache.observe(6, None), Observed::All);
        assert!(
            cache.get("a").is_none(),
            "a change elsewhere must drop the entry"
        );
        // A load that read generation 5 before the change finishes late: not used.
        cache.insert(5, client("a"), vec![]);
        assert!(cache.get("a").is_none());
        cache.insert(6, client("a"), vec![]);
        assert!(cache.get("a").is_some());
        assert_eq!(cache.observe(6, None), Observed::Unchanged);
    }

    #[test]
    fn entries_are_served_for_stale_max_without_a_successful_poll() {
        let cache = ClientCache::new(true).with_stale_max(Duration::from_millis(50));
        cache.observe(1, None);
        cache.insert(1, client("a"), vec![]);
        assert!(cache.get("a").is_some());
        std::thread::sleep(Duration::from_millis(80));
        assert!(cache.get("a").is_none(), "stale past the bound");
        cache.observe(1, None);
        assert!(
            cache.get("a").is_some(),
            "a successful poll makes it current again"
        );
    }

    #[test]
    fn a_full_cache_keeps_at_most_its_capacity() {
        let cache = ClientCache::new(true).with_capacity(10);
        cache.observe(1, None);
        for i in 0..50 {
            cache.insert(1, client(&format!("c{i}")), vec![]);
        }
        let kept = (0..50)
            .filter(|i| cache.get(&format!("c{i}")).is_some())
            .count();
        assert!((1..=10).contains(&kept), "{kept} kept");
    }

    #[test]
    fn a_change_to_one_client_drops_that_client_alone_and_refuses_its_stale_loads() {
        let cache = ClientCache::new(true);
        cache.observe(5, None);
        let (a, mut b) = (client("a"), client("b"));
        b.id = ClientKey(a.id.0 + 1);
        let a_pk = a.id;
        cache.insert(5, a.clone(), vec![]);
        cache.insert(5, b.clone(), vec![]);
        assert_eq!(cache.observe(6, Some(&[(a_pk, 6)])), Observed::Clients(1));
        assert!(cache.get("a").is_none(), "the changed client is dropped");
        assert!(cache.get("b").is_some(), "the others stay");
        // A load of the changed client that read generation 5 finishes late: not kept.
        cache.insert(5, a.clone(), vec![]);
        assert!(cache.get("a").is_none());
        // The other client may still be loaded under 5 (nothing changed it since).
        cache.insert(5, b, vec![]);
        assert!(cache.get("b").is_some());
        cache.insert(6, a, vec![]);
        assert!(cache.get("a").is_some());
        // A gap in the log drops everything.
        assert_eq!(cache.observe(9, None), Observed::All);
        assert!(cache.get("a").is_none() && cache.get("b").is_none());
    }

    #[test]
    fn an_unknown_client_id_is_asked_for_again_after_any_change() {
        let cache = ClientCache::new(true);
        cache.observe(5, None);
        cache.absent.insert("new".into(), 5);
        assert_eq!(cache.lookup("new").map(|c| c.is_none()), Some(true));
        cache.forget(&[(client("other").id, 6)]);
        assert!(
            cache.lookup("new").is_none(),
            "may have been registered since"
        );
        // A lookup that began before that change and ends after it is not believed.
        cache.absent.insert("new".into(), 5);
        assert!(cache.lookup("new").is_none());
    }

    #[test]
    fn a_disabled_cache_never_hits() {
        let cache = ClientCache::new(false);
        cache.observe(1, None);
        let e = cache.insert(1, client("a"), vec![]);
        assert_eq!(e.client.client_id, "a");
        assert!(cache.get("a").is_none());
    }
}
