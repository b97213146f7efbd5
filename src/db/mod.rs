//! Database access: one connection type over SQLite and PostgreSQL, the pool, migrations,
//! and [`run`], which moves blocking diesel work off the actix executor.
//!
//! Stores look a row up by a unique key with `.get_result(conn).optional()`, never `.first()`:
//! `.first()` binds its `LIMIT 1` as a parameter, and the bundled SQLite then throws the cached
//! prepared statement away and compiles it again on every call (profiled as 46% of the CPU of
//! a refresh-token introspection, issue 13).

pub mod batcher;
pub mod paging;
pub mod prepared;
pub mod schema;
pub mod writer;

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection, R2D2Connection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::error::AppError;

/// A connection to either backend. PostgreSQL must be the first variant: SQLite accepts any
/// string as a URL, so `MultiConnection` would otherwise open every URL as a SQLite file.
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    /// A PostgreSQL connection (several stateless instances behind a load balancer).
    Postgresql(diesel::PgConnection),
    /// The embedded SQLite default.
    Sqlite(diesel::SqliteConnection),
}

/// The connection pool shared by the HTTP server and background tasks.
pub type Pool = r2d2::Pool<Manager>;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Key of the PostgreSQL advisory lock taken while migrating and bootstrapping, so that
/// instances starting at the same time on a fresh database do not race.
const MIGRATION_LOCK_KEY: i64 = 0x706f_7274_6375_6c6c; // "portcull"

/// Which backend a database URL names.
#[derive(Clone, PartialEq, Eq)]
pub enum DbUrl {
    /// `postgres://` or `postgresql://` URL, passed to libpq as is.
    Postgres(String),
    /// A file path (from `sqlite://path` or a plain path).
    Sqlite(String),
}

impl DbUrl {
    /// Parses `sqlite://path`, `postgres://...`, `postgresql://...` or a plain file path.
    pub fn parse(url: &str) -> Result<DbUrl, String> {
        let url = url.trim();
        if url.is_empty() {
            return Err("must not be empty".into());
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DbUrl::Postgres(url.to_string()));
        }
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err("sqlite:// needs a file path, e.g. sqlite://portcullis.db".into());
            }
            return Ok(DbUrl::Sqlite(path.to_string()));
        }
        if let Some(path) = url.strip_prefix("sqlite:") {
            return Ok(DbUrl::Sqlite(path.to_string()));
        }
        if url.contains("://") {
            return Err(format!(
                "unsupported scheme in '{}': use sqlite://PATH, a plain path or postgres://...",
                redact_url(url)
            ));
        }
        Ok(DbUrl::Sqlite(url.to_string()))
    }

    /// True for PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(self, DbUrl::Postgres(_))
    }
}

impl std::fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbUrl::Postgres(u) => write!(f, "Postgres({})", redact_url(u)),
            DbUrl::Sqlite(p) => write!(f, "Sqlite({p})"),
        }
    }
}

/// Replaces the password of a URL by `***` so that it can be logged.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "<unparseable url>".to_string(),
    }
}

/// How long a SQLite connection waits for another's write lock before failing with "database
/// is locked" (see [`transaction`]).
const BUSY_TIMEOUT_MS: u32 = 5000;

/// Opens one connection, choosing the backend by URL scheme so that the user sees the real
/// error (MultiConnection's own `establish` hides it), and sets SQLite's per-connection pragmas.
pub fn connect(url: &DbUrl) -> ConnectionResult<AnyConnection> {
    match url {
        DbUrl::Postgres(u) => Ok(AnyConnection::Postgresql(diesel::PgConnection::establish(
            u,
        )?)),
        DbUrl::Sqlite(path) => {
            let mut conn = diesel::SqliteConnection::establish(path)?;
            // WAL with synchronous=NORMAL: a commit is durable once it is in the WAL file, which
            // survives a crash of this process; a power loss or OS crash may lose the last
            // commits before the next checkpoint, never corrupt the database (SQLite's
            // documented guarantee). After a checkpoint the WAL file is cut back to 64 MiB.
            conn.batch_execute(&format!(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                 PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}; PRAGMA foreign_keys = ON; \
                 PRAGMA journal_size_limit = 67108864;"
            ))
            .map_err(|e| ConnectionError::BadConnection(e.to_string()))?;
            Ok(AnyConnection::Sqlite(conn))
        }
    }
}

/// A pooled connection, with when it was last given back to the pool.
pub struct Conn {
    conn: AnyConnection,
    /// When it was last returned; None: a query on it failed as if the database were away,
    /// so the next checkout pings it first.
    returned: Option<Instant>,
    /// The pool's outage count when this connection was last known good.
    epoch: u64,
    /// The pool's outage count: moved whenever any of its connections found the database
    /// away, so that every other one is pinged before its next use too.
    outages: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl std::ops::Deref for Conn {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }
}

impl Conn {
    /// Marks the connection as suspect after `result`'s error said the database was away
    /// ([`AppError::is_unavailable`]): it is pinged before its next use.
    pub fn note<T>(&mut self, result: &Result<T, AppError>) {
        if result.as_ref().is_err_and(AppError::is_unavailable) {
            self.suspect();
        }
    }

    /// Has this connection, and every other one of its pool, pinged before its next use (the
    /// database was found away: they may all be dead).
    pub fn suspect(&mut self) {
        self.returned = None;
        self.outages
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// A connection back in the pool within this long of its last use is handed out without a
/// ping: a ping is a round trip to PostgreSQL, a fifth of a refresh's (issue 13).
const TRUSTED_FOR: Duration = Duration::from_secs(1);

/// The r2d2 manager: [`connect`] per new connection.
#[derive(Debug)]
pub struct Manager {
    url: DbUrl,
    /// See [`Conn::suspect`].
    outages: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// The server's pool: SQLite connections never checkpoint the WAL inside a commit
    /// ([`checkpoint`] does it, from a background job).
    server: bool,
    /// Run on each new PostgreSQL connection (session settings of a [`sibling_pool`]).
    init: &'static str,
}

/// The URL libpq is given: `url` with a connect timeout, TCP keepalives and a user timeout, and
/// a `statement_timeout`, all derived from `PORTCULLIS_DB_TIMEOUT_MS`, so that no query and no
/// connection attempt hangs longer than that when the database goes away. Parameters the
/// operator put in the URL win.
pub fn with_timeouts(url: &DbUrl, timeout: Duration) -> DbUrl {
    let DbUrl::Postgres(raw) = url else {
        return url.clone();
    };
    let Ok(mut parsed) = url::Url::parse(raw) else {
        return url.clone();
    };
    let ms = timeout.as_millis().max(1);
    // libpq's connect_timeout is in whole seconds, and 1 means 2.
    let connect_secs = ms.div_ceil(1000).max(2);
    let present: Vec<String> = parsed.query_pairs().map(|(k, _)| k.into_owned()).collect();
    let wanted = [
        ("connect_timeout", connect_secs.to_string()),
        ("keepalives", "1".to_string()),
        ("keepalives_idle", connect_secs.to_string()),
        ("keepalives_interval", "1".to_string()),
        ("keepalives_count", "2".to_string()),
        ("tcp_user_timeout", ms.to_string()),
        // No space: the URL encoder would write it as `+`, which libpq does not decode.
        ("options", format!("-cstatement_timeout={ms}")),
    ];
    {
        let mut pairs = parsed.query_pairs_mut();
        for (key, value) in &wanted {
            if !present.iter().any(|p| p == key) {
                pairs.append_pair(key, value);
            }
        }
    }
    DbUrl::Postgres(parsed.to_string())
}

impl ManageConnection for Manager {
    type Connection = Conn;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<Conn, Self::Error> {
        let mut conn = connect(&self.url).map_err(diesel::r2d2::Error::ConnectionError)?;
        if let (true, AnyConnection::Sqlite(lite)) = (self.server, &mut conn) {
            // Checkpointing inside the committing request cost 18% of a refresh's CPU and put
            // a synced write of the database file into some requests' latency (issue 13).
            lite.batch_execute("PRAGMA wal_autocheckpoint = 0;")
                .map_err(diesel::r2d2::Error::QueryError)?;
        }
        if let (false, AnyConnection::Postgresql(pg)) = (self.init.is_empty(), &mut conn) {
            pg.batch_execute(self.init)
                .map_err(diesel::r2d2::Error::QueryError)?;
        }
        Ok(Conn {
            conn,
            returned: Some(Instant::now()),
            epoch: self.outages.load(std::sync::atomic::Ordering::Acquire),
            outages: self.outages.clone(),
        })
    }

    /// Pings a connection before it is handed out (PostgreSQL only, see [`pool`]), unless it
    /// came back to the pool less than [`TRUSTED_FOR`] ago from a use that did not find the
    /// database away, and no connection of the pool found it away since.
    fn is_valid(&self, conn: &mut Conn) -> Result<(), Self::Error> {
        let epoch = self.outages.load(std::sync::atomic::Ordering::Acquire);
        if conn.epoch == epoch && conn.returned.is_some_and(|at| at.elapsed() < TRUSTED_FOR) {
            return Ok(());
        }
        if let Err(e) = conn.conn.ping() {
            // Dead: so may the others be.
            self.outages
                .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            return Err(diesel::r2d2::Error::QueryError(e));
        }
        conn.returned = Some(Instant::now());
        conn.epoch = epoch;
        Ok(())
    }

    /// Called as a connection goes back to the pool.
    fn has_broken(&self, conn: &mut Conn) -> bool {
        if conn.returned.is_some() {
            conn.returned = Some(Instant::now());
        }
        conn.conn.is_broken()
    }
}

/// The default of `PORTCULLIS_DB_TIMEOUT_MS`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(2000);

/// Builds a pool with the default timeout for the CLI and tests (SQLite checkpoints as usual).
pub fn build_pool(url: &DbUrl, max_size: u32) -> Result<Pool, String> {
    pool(url, max_size, DEFAULT_TIMEOUT, false)
}

/// Builds the pool. The first connection is opened here, so a wrong URL fails at start.
/// `timeout` bounds a checkout (and on PostgreSQL a connection attempt and a statement, see
/// [`with_timeouts`]): when the database is unreachable, a request fails after it with
/// [`AppError::is_unavailable`], it does not hang.
///
/// This is the server's pool: on SQLite, its connections leave checkpoints to [`checkpoint`],
/// which the server runs from a background job.
pub fn build_pool_with(url: &DbUrl, max_size: u32, timeout: Duration) -> Result<Pool, String> {
    pool(url, max_size, timeout, true)
}

/// Builds a second pool of the server ([`build_pool_with`]) whose connections and `of`'s are
/// pinged after either finds the database away ([`Conn::suspect`]): a pool for threads that
/// must not wait on `of`'s connections ([`batcher`]), trusting its connections no longer than
/// `of` trusts its own after an outage.
/// `init` is run on each new connection (session settings).
pub fn sibling_pool(
    of: &Pool,
    url: &DbUrl,
    max_size: u32,
    timeout: Duration,
    init: &'static str,
) -> Result<Pool, String> {
    let outages = of.get().map_err(|e| e.to_string())?.outages.clone();
    pool_with(url, max_size, timeout, true, outages, init)
}

fn pool(url: &DbUrl, max_size: u32, timeout: Duration, server: bool) -> Result<Pool, String> {
    pool_with(url, max_size, timeout, server, Default::default(), "")
}

fn pool_with(
    url: &DbUrl,
    max_size: u32,
    timeout: Duration,
    server: bool,
    outages: std::sync::Arc<std::sync::atomic::AtomicU64>,
    init: &'static str,
) -> Result<Pool, String> {
    let url = with_timeouts(url, timeout);
    // Fail with libpq's/SQLite's own message rather than r2d2's time-out.
    connect(&url).map_err(|e| e.to_string())?;
    r2d2::Pool::builder()
        .max_size(max_size)
        .min_idle(Some(1))
        // On PostgreSQL a connection is pinged before it is handed out, unless it was in use
        // less than a second ago and that use did not find the database away (`Conn::note`):
        // after the database went away and came back (a restart, a failover), every pooled
        // connection is dead and diesel cannot tell until a query fails on it; the ping finds
        // it first and r2d2 replaces it, so no request fails on a stale connection after
        // recovery. Skipping it for a connection in steady use saves a round trip per request
        // under load. SQLite connections are files and never go stale. Connections are also
        // recycled after 30 minutes.
        .test_on_check_out(url.is_postgres())
        .max_lifetime(Some(Duration::from_secs(30 * 60)))
        .connection_timeout(timeout)
        .build(Manager {
            url,
            server,
            outages,
            init,
        })
        .map_err(|e| e.to_string())
}

/// Runs the pending migrations of the connection's backend. On PostgreSQL this holds an
/// advisory lock, and `after` (start-up bootstrap such as the first signing key) runs while
/// the lock is still held.
pub fn migrate_and<T>(
    conn: &mut AnyConnection,
    after: impl FnOnce(&mut AnyConnection) -> Result<T, AppError>,
) -> Result<T, AppError> {
    match conn {
        AnyConnection::Postgresql(pg) => {
            // Migrations and waiting for another instance's lock may take longer than
            // PORTCULLIS_DB_TIMEOUT_MS: no statement timeout here (RESET below restores it).
            pg.batch_execute("SET statement_timeout = 0")?;
            diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
                .execute(pg)?;
            let migrated = pg
                .run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(|_| ())
                .map_err(|e| AppError::Internal(format!("migration failed: {e}")));
            let result = migrated.and_then(|()| after(conn));
            if let AnyConnection::Postgresql(pg) = conn {
                diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))
                    .execute(pg)?;
                pg.batch_execute("RESET statement_timeout")?;
            }
            result
        }
        AnyConnection::Sqlite(lite) => {
            lite.run_pending_migrations(SQLITE_MIGRATIONS)
                .map_err(|e| AppError::Internal(format!("migration failed: {e}")))?;
            after(conn)
        }
    }
}

/// Runs one insert in a transaction of its own (nested in the caller's: a savepoint), so that
/// a unique violation does not abort an enclosing PostgreSQL transaction. True when the row
/// was inserted, false when it was there already (or another connection inserted it at once).
pub fn insert_new(
    conn: &mut AnyConnection,
    insert: impl FnOnce(&mut AnyConnection) -> diesel::QueryResult<usize>,
) -> Result<bool, AppError> {
    match transaction(conn, insert).map_err(AppError::from) {
        Ok(_) => Ok(true),
        Err(e) if e.is_unique_violation() => Ok(false),
        Err(e) => Err(e),
    }
}

/// Runs `f` in a transaction (a savepoint when one is already open). On SQLite a top-level
/// transaction is `BEGIN IMMEDIATE`: it takes the write lock up front, waiting up to the busy
/// timeout behind other writers. A deferred `BEGIN` would take it only at its first write, and
/// if another connection committed since the transaction's first read SQLite cannot wait: it
/// fails at once with "database is locked". With every transaction immediate, concurrent
/// writers (the admin area, the CLI, code exchanges, refreshes) queue instead of failing.
pub fn transaction<T, E, F>(conn: &mut AnyConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    let top_level_sqlite = match conn {
        AnyConnection::Sqlite(c) => AnsiTransactionManager::transaction_manager_status_mut(c)
            .transaction_depth()?
            .is_none(),
        AnyConnection::Postgresql(_) => false,
    };
    if !top_level_sqlite {
        return conn.transaction(f);
    }
    if let AnyConnection::Sqlite(c) = conn {
        AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?;
    }
    let result = f(conn);
    let AnyConnection::Sqlite(c) = conn else {
        return result;
    };
    match result {
        Ok(value) => {
            AnsiTransactionManager::commit_transaction(c)?;
            Ok(value)
        }
        Err(e) => {
            if let Err(rollback) = AnsiTransactionManager::rollback_transaction(c) {
                tracing::error!(error = %rollback, "could not roll back a transaction");
            }
            Err(e)
        }
    }
}

/// Runs blocking database work on actix's blocking thread pool with one pooled connection.
/// The one connection is passed down: a request never holds two (a pool of one would deadlock).
pub async fn run<T, F>(pool: &Pool, f: F) -> Result<T, AppError>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, AppError> + Send + 'static,
    T: Send + 'static,
{
    run_judged(pool, f, |result| {
        result.as_ref().is_err_and(AppError::is_unavailable)
    })
    .await
}

/// [`run`], with `suspect` saying of the result whether the database may have gone away (an
/// answer that says so, say): then the connection, and every other one of the pool, is pinged
/// before its next use ([`Conn::suspect`]).
pub async fn run_judged<T, F>(
    pool: &Pool,
    f: F,
    suspect: fn(&Result<T, AppError>) -> bool,
) -> Result<T, AppError>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, AppError> + Send + 'static,
    T: Send + 'static,
{
    let pool = pool.clone();
    actix_web::web::block(move || {
        let mut conn = pool.get()?;
        let result = f(&mut conn);
        if suspect(&result) {
            conn.suspect();
        }
        result
    })
    .await?
}

/// The value of a change counter in `cache_generation` (`clients`, `signing_keys`): database
/// triggers increment it on every change, and instances poll it to know what to reload.
pub fn generation(conn: &mut AnyConnection, name: &str) -> Result<i64, AppError> {
    use schema::cache_generation;
    Ok(cache_generation::table
        .find(name)
        .select(cache_generation::value)
        .get_result(conn)?)
}

/// What `PRAGMA wal_checkpoint` reports.
#[derive(diesel::QueryableByName)]
struct Checkpointed {
    /// Frames in the WAL.
    #[diesel(sql_type = diesel::sql_types::Integer)]
    log: i32,
}

/// WAL frames (pages of 4 KiB) past which [`checkpoint`] asks for the WAL to start over:
/// 16 MiB.
pub const RESTART_AFTER_FRAMES: i32 = 4096;

/// On SQLite, copies what the WAL holds into the database file as far as no reader still needs
/// it (`PRAGMA wal_checkpoint(PASSIVE)`: it waits for nobody and blocks no writer), and says
/// whether the WAL holds more than `restart_after` frames. Under a steady stream of commits a
/// passive checkpoint never catches up with the last frame, so the WAL would never start over
/// (it grew to 0.5 GB in the benchmark): past the bound, the caller has the writer thread
/// checkpoint the few frames left between two of its transactions
/// ([`writer::Writer::checkpoint_before_next`]), after which the next transaction starts the
/// WAL from its beginning (`journal_size_limit` then cuts the file back). The server's
/// connections never checkpoint inside a commit; a background job calls this several times a
/// second. Nothing to do on PostgreSQL (false).
pub fn checkpoint(conn: &mut AnyConnection, restart_after: i32) -> Result<bool, AppError> {
    if let AnyConnection::Sqlite(lite) = conn {
        let passive: Checkpointed =
            diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)").get_result(lite)?;
        return Ok(passive.log > restart_after);
    }
    Ok(false)
}

/// Checks that the database answers a query.
pub fn check(conn: &mut AnyConnection) -> Result<(), AppError> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    Ok(())
}

/// A server-wide secret by name (e.g. the session cookie key), created with `generate` on
/// first use and then shared by every instance. Call it at start-up under the migration lock.
pub fn server_secret(
    conn: &mut AnyConnection,
    name: &str,
    now: i64,
    generate: impl FnOnce() -> Result<String, AppError>,
) -> Result<String, AppError> {
    use schema::server_secrets;
    let found = server_secrets::table
        .find(name)
        .select(server_secrets::value)
        .get_result::<String>(conn)
        .optional()?;
    if let Some(v) = found {
        return Ok(v);
    }
    let value = generate()?;
    diesel::insert_into(server_secrets::table)
        .values((
            server_secrets::name.eq(name),
            server_secrets::value.eq(&value),
            server_secrets::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_urls_get_timeouts_unless_they_set_their_own() {
        let url = DbUrl::Postgres("postgres://u:pw@db:5432/x?connect_timeout=9".into());
        let DbUrl::Postgres(out) = with_timeouts(&url, Duration::from_millis(2500)) else {
            panic!("still PostgreSQL");
        };
        assert!(out.starts_with("postgres://u:pw@db:5432/x?"), "{out}");
        assert!(out.contains("connect_timeout=9"), "{out}");
        assert!(!out.contains("connect_timeout=3"), "{out}");
        assert!(out.contains("tcp_user_timeout=2500"), "{out}");
        assert!(out.contains("options=-cstatement_timeout%3D2500"), "{out}");
        let lite = DbUrl::Sqlite("p.db".into());
        assert_eq!(with_timeouts(&lite, Duration::from_secs(1)), lite);
    }
}
