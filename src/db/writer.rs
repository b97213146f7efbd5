//! Where the token endpoint, revocation and the consent decision write ([`Writer`]).
//!
//! On PostgreSQL, the shared pool: every request its own connection and transaction.
//!
//! On SQLite, one connection on a thread of its own, with group commit (issue 13). SQLite lets
//! one connection write at a time, and a commit is mostly the pages it wrote to the WAL (a
//! refresh touches six or seven 4 KiB pages: the token table, its indexes, the family's row),
//! so concurrent writes queue here and the thread runs whatever has queued in one transaction,
//! each request's work in a savepoint of its own, and commits once for all of them. The pages
//! the requests share (the tables' last pages, the expiry indexes) are written once per commit
//! instead of once per request. Nothing is answered before the commit that holds it: a request
//! learns its outcome only after `COMMIT` returned, so durability is exactly that of one
//! transaction per request (WAL, `synchronous=NORMAL`).
//!
//! A request whose work fails (an error, or an answer its caller judges failed, such as a 5xx)
//! is rolled back to its savepoint alone; the others commit. If SQLite ended the whole
//! transaction itself (it does so on a full disk or an I/O error), every request run in it so
//! far is answered with the error, and the ones not yet run go to the next transaction.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use tokio::sync::{mpsc, oneshot};

use super::{AnyConnection, Pool};
use crate::error::AppError;
use crate::metrics::BatchMetrics;

/// Requests committed together at most (a batch is whatever queued while the last one ran).
const MAX_BATCH: usize = 64;

/// Requests that may wait for the writer thread; past it, callers wait for room (at most the
/// database timeout, like a pool checkout).
const QUEUE: usize = 1024;

/// See the module documentation.
pub struct Writer {
    kind: Kind,
    /// `PORTCULLIS_DB_TIMEOUT_MS`: how long a request waits for room in the queue.
    timeout: Duration,
}

enum Kind {
    /// PostgreSQL: the shared pool.
    Pool(Pool),
    /// SQLite: the queue of the writer thread, and whether it is to checkpoint the WAL before
    /// its next transaction ([`Writer::checkpoint_before_next`]).
    Group(mpsc::Sender<Box<dyn Work>>, Arc<AtomicBool>),
}

/// One request's work, as the writer thread sees it.
trait Work: Send {
    /// Runs the work in a savepoint of the open transaction.
    fn run(self: Box<Self>, conn: &mut AnyConnection) -> Ran;
    /// Answers without running: the transaction could not even start.
    fn refuse(self: Box<Self>, e: &AppError);
}

/// Work that ran, waiting for the commit.
struct Ran {
    /// False when it failed (rolled back to its savepoint).
    ok: bool,
    /// Answers the request: with its own result once committed, or with the error that lost it.
    answer: Answer,
}

/// Answers a request that ran: None once its batch committed, else the error that lost it.
type Answer = Box<dyn FnOnce(Option<&AppError>) + Send>;

/// A request's work with its reply channel.
struct Pending<T, F> {
    f: F,
    failed: fn(&Result<T, AppError>) -> bool,
    reply: oneshot::Sender<Result<T, AppError>>,
}

/// Why a savepoint was rolled back.
enum Undo<T> {
    /// The work failed; this is its result.
    Failed(Result<T, AppError>),
    /// The savepoint itself could not be taken or released.
    Db(DieselError),
}

impl<T> From<DieselError> for Undo<T> {
    fn from(e: DieselError) -> Self {
        Undo::Db(e)
    }
}

impl<T, F> Work for Pending<T, F>
where
    T: Send + 'static,
    F: FnOnce(&mut AnyConnection) -> Result<T, AppError> + Send + 'static,
{
    fn run(self: Box<Self>, conn: &mut AnyConnection) -> Ran {
        let Pending { f, failed, reply } = *self;
        let result = match super::transaction(conn, |conn| {
            let result = f(conn);
            if failed(&result) {
                Err(Undo::Failed(result))
            } else {
                Ok(result)
            }
        }) {
            Ok(result) | Err(Undo::Failed(result)) => result,
            Err(Undo::Db(e)) => Err(e.into()),
        };
        Ran {
            ok: !failed(&result),
            answer: Box::new(move |lost: Option<&AppError>| {
                let _ = reply.send(match lost {
                    None => result,
                    Some(e) => Err(same(e)),
                });
            }),
        }
    }

    fn refuse(self: Box<Self>, e: &AppError) {
        let _ = self.reply.send(Err(same(e)));
    }
}

/// An error for each request of a batch that `e` lost: unavailable (503, retry) when `e` is.
pub(super) fn same(e: &AppError) -> AppError {
    if e.is_unavailable() {
        AppError::Db(DieselError::DatabaseError(
            DatabaseErrorKind::UnableToSendCommand,
            Box::new(e.to_string()),
        ))
    } else {
        AppError::Internal(e.to_string())
    }
}

impl Writer {
    /// PostgreSQL: writes on the shared pool.
    pub fn pool(pool: Pool, timeout: Duration) -> Writer {
        Writer {
            kind: Kind::Pool(pool),
            timeout,
        }
    }

    /// SQLite: a thread that writes on `pool`'s one connection, with group commit. It ends
    /// when the writer is dropped.
    /// Each transaction is counted in `metrics` as a batch of the statement `sqlite-write`.
    pub fn group(pool: Pool, timeout: Duration, metrics: BatchMetrics) -> std::io::Result<Writer> {
        let (queue, receiver) = mpsc::channel(QUEUE);
        let checkpoint = Arc::new(AtomicBool::new(false));
        let wanted = checkpoint.clone();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || serve(&pool, receiver, &wanted, &metrics))?;
        Ok(Writer {
            kind: Kind::Group(queue, checkpoint),
            timeout,
        })
    }

    /// SQLite: has the writer thread checkpoint the WAL before its next transaction, when no
    /// write is under way, so that the checkpoint copies every frame (unless a reader still
    /// needs some) and the transaction after it starts the WAL over from its beginning
    /// (SQLite does so, without waiting for anybody, for a writer that finds the whole WAL
    /// copied). [`super::checkpoint`] asks for it once the WAL grew past its bound: a
    /// `RESTART` checkpoint on another connection did the same, but held the writer back
    /// meanwhile, and the writer waited in SQLite's busy handler, which sleeps 1, 2, 5, 10 ms
    /// and more between tries: 10 to 20 ms of p99 on every write flow (issue 13). Nothing to
    /// do on PostgreSQL.
    pub fn checkpoint_before_next(&self) {
        if let Kind::Group(_, wanted) = &self.kind {
            wanted.store(true, Ordering::Release);
        }
    }

    /// Runs `f` on the writing connection, off the executor, in a transaction (on SQLite a
    /// savepoint of the group's): committed when it returns Ok, rolled back on Err.
    pub async fn run<T, F>(&self, f: F) -> Result<T, AppError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, AppError> + Send + 'static,
        T: Send + 'static,
    {
        self.run_judged(f, Result::is_err).await
    }

    /// [`Self::run`], rolled back whenever `failed` says so of the result (an answer with a
    /// 5xx status, say). `f` opens its own transactions as it likes (on SQLite they are
    /// savepoints); on PostgreSQL `f` runs as it is, on a pooled connection, and a failed
    /// result has the connection pinged before its next use.
    pub async fn run_judged<T, F>(
        &self,
        f: F,
        failed: fn(&Result<T, AppError>) -> bool,
    ) -> Result<T, AppError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, AppError> + Send + 'static,
        T: Send + 'static,
    {
        match &self.kind {
            Kind::Pool(pool) => super::run_judged(pool, f, failed).await,
            Kind::Group(queue, _) => {
                let (reply, answer) = oneshot::channel();
                let work: Box<dyn Work> = Box::new(Pending { f, failed, reply });
                let queued = tokio::time::timeout(self.timeout, queue.send(work)).await;
                if !matches!(queued, Ok(Ok(()))) {
                    return Err(unavailable("the database writer is busy or gone"));
                }
                answer
                    .await
                    .unwrap_or_else(|_| Err(unavailable("the database writer stopped")))
            }
        }
    }
}

/// A 503 error (the request may be retried).
pub(super) fn unavailable(why: &str) -> AppError {
    AppError::Db(DieselError::DatabaseError(
        DatabaseErrorKind::UnableToSendCommand,
        Box::new(why.to_string()),
    ))
}

/// The writer thread: takes whatever has queued (at most [`MAX_BATCH`]) and commits it as one
/// transaction, until every sender is gone; checkpoints the WAL before a transaction when
/// `checkpoint` asks ([`Writer::checkpoint_before_next`]).
fn serve(
    pool: &Pool,
    mut receiver: mpsc::Receiver<Box<dyn Work>>,
    checkpoint: &AtomicBool,
    metrics: &BatchMetrics,
) {
    let mut pending: VecDeque<Box<dyn Work>> = VecDeque::new();
    loop {
        if pending.is_empty() {
            match receiver.blocking_recv() {
                Some(work) => pending.push_back(work),
                None => return,
            }
        }
        if checkpoint.swap(false, Ordering::AcqRel) {
            checkpoint_here(pool);
        }
        while pending.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(work) => pending.push_back(work),
                Err(_) => break,
            }
        }
        let (queued, started) = (pending.len(), Instant::now());
        commit_batch(pool, &mut pending);
        let ran = queued - pending.len();
        metrics.ran("sqlite-write", ran, started.elapsed().as_secs_f64());
    }
}

/// Runs the queued work in one transaction and answers each request after the commit. Work
/// left in `pending` (SQLite ended the transaction before it ran) goes to the next batch.
fn commit_batch(pool: &Pool, pending: &mut VecDeque<Box<dyn Work>>) {
    let mut conn = match pool.get() {
        Ok(conn) => conn,
        Err(e) => {
            let e = AppError::from(e);
            pending.drain(..).for_each(|work| work.refuse(&e));
            return;
        }
    };
    // IMMEDIATE: the write lock up front, waiting behind other writers (the admin area, the
    // CLI) for the busy timeout, as `super::transaction` does.
    let began = lite(&mut conn)
        .and_then(|lite| AnsiTransactionManager::begin_transaction_sql(lite, "BEGIN IMMEDIATE"));
    if let Err(e) = began {
        let e = AppError::from(e);
        pending.drain(..).for_each(|work| work.refuse(&e));
        conn.note::<()>(&Err(e));
        return;
    }
    let mut ran: Vec<Ran> = Vec::with_capacity(pending.len());
    while let Some(work) = pending.pop_front() {
        // A panic in one request's work (a bug) must not end the thread that every write
        // needs: the transaction is abandoned, and the connection with it.
        let Ok(done) =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work.run(&mut conn)))
        else {
            tracing::error!("a write panicked; its transaction is rolled back");
            if let Ok(lite) = lite(&mut conn)
                && AnsiTransactionManager::rollback_transaction(lite).is_err()
            {
                // Unknown state: the pool opens a new connection.
                let _ = diesel::connection::SimpleConnection::batch_execute(lite, "ROLLBACK");
                AnsiTransactionManager::transaction_manager_status_mut(lite).set_in_error();
            }
            let e = AppError::Internal("the write failed".into());
            ran.into_iter().for_each(|r| (r.answer)(Some(&e)));
            return;
        };
        let ok = done.ok;
        ran.push(done);
        if !ok && !in_transaction(&mut conn) {
            // SQLite ended the transaction itself on this failure: every request run in it
            // lost its writes, and is told so; the rest run in the next transaction.
            let e =
                unavailable("the database rolled the transaction back (disk full or I/O error)");
            conn.suspect();
            ran.into_iter().for_each(|r| (r.answer)(Some(&e)));
            return;
        }
    }
    match lite(&mut conn).and_then(AnsiTransactionManager::commit_transaction) {
        Ok(()) => ran.into_iter().for_each(|r| (r.answer)(None)),
        Err(e) => {
            if in_transaction(&mut conn)
                && let Err(rollback) =
                    lite(&mut conn).and_then(AnsiTransactionManager::rollback_transaction)
            {
                tracing::error!(error = %rollback, "could not roll back a transaction");
            }
            let e = AppError::from(e);
            tracing::error!(error = %e, "a group commit failed");
            ran.into_iter().for_each(|r| (r.answer)(Some(&e)));
            conn.note::<()>(&Err(e));
        }
    }
}

/// A `PASSIVE` checkpoint on the writer's connection, outside any transaction: it waits for
/// nobody (a reader's older snapshot only stops it short of the last frames).
fn checkpoint_here(pool: &Pool) {
    use diesel::RunQueryDsl;
    let done = pool.get().map_err(AppError::from).and_then(|mut conn| {
        let lite = lite(&mut conn)?;
        diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)").execute(lite)?;
        Ok(())
    });
    if let Err(e) = done {
        tracing::warn!(error = %e, "could not checkpoint the WAL; will retry");
    }
}

/// The SQLite connection the writer holds.
fn lite(conn: &mut AnyConnection) -> diesel::QueryResult<&mut diesel::SqliteConnection> {
    match conn {
        AnyConnection::Sqlite(lite) => Ok(lite),
        AnyConnection::Postgresql(_) => Err(DieselError::QueryBuilderError(
            "group commit is for SQLite".into(),
        )),
    }
}

/// Whether the batch's transaction is still open (diesel's view, which follows SQLite's: a
/// savepoint that cannot be rolled back or released because SQLite ended the transaction
/// leaves diesel outside any transaction).
fn in_transaction(conn: &mut AnyConnection) -> bool {
    lite(conn).is_ok_and(|lite| {
        matches!(
            AnsiTransactionManager::transaction_manager_status_mut(lite).transaction_depth(),
            Ok(Some(_))
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;

    /// A group writer on a fresh SQLite file with one table `t (v)`.
    fn writer() -> (tempfile::TempDir, Writer, Pool) {
        let dir = tempfile::tempdir().unwrap();
        let url = super::super::DbUrl::Sqlite(dir.path().join("w.db").display().to_string());
        let reader = super::super::build_pool(&url, 1).unwrap();
        let mut conn = reader.get().unwrap();
        let AnyConnection::Sqlite(lite) = &mut **conn else {
            unreachable!()
        };
        lite.batch_execute("CREATE TABLE t (v INTEGER NOT NULL)")
            .unwrap();
        drop(conn);
        let one = super::super::build_pool_with(&url, 1, Duration::from_secs(2)).unwrap();
        (
            dir,
            Writer::group(
                one,
                Duration::from_secs(2),
                crate::metrics::Metrics::new().unwrap().batch_metrics(),
            )
            .unwrap(),
            reader,
        )
    }

    fn insert(conn: &mut AnyConnection, v: i64) -> Result<(), AppError> {
        let AnyConnection::Sqlite(lite) = conn else {
            unreachable!()
        };
        lite.batch_execute(&format!("INSERT INTO t (v) VALUES ({v})"))?;
        Ok(())
    }

    fn stored(reader: &Pool) -> Vec<i64> {
        #[derive(QueryableByName)]
        struct V {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            v: i64,
        }
        let mut conn = reader.get().unwrap();
        let AnyConnection::Sqlite(lite) = &mut **conn else {
            unreachable!()
        };
        diesel::sql_query("SELECT v FROM t ORDER BY v")
            .load::<V>(lite)
            .unwrap()
            .into_iter()
            .map(|r| r.v)
            .collect()
    }

    /// Queues `n` jobs behind a first one that holds the thread, so that they share one
    /// transaction; `job(i)` is the i-th one's work.
    async fn batch<F>(w: &Writer, n: i64, job: F) -> Vec<Result<(), AppError>>
    where
        F: Fn(i64) -> Box<dyn FnOnce(&mut AnyConnection) -> Result<(), AppError> + Send>,
    {
        // The jobs are queued only once the holder runs, in a batch of its own: queued
        // together with it, the first jobs could be taken into its batch and the rest not.
        let (started, holding) = oneshot::channel();
        let hold = w.run(move |_| {
            let _ = started.send(());
            std::thread::sleep(Duration::from_millis(100));
            Ok(())
        });
        let jobs: Vec<_> = (0..n).map(|i| w.run(job(i))).collect();
        let jobs = async move {
            let _ = holding.await;
            futures_util::future::join_all(jobs).await
        };
        let (held, results) = tokio::join!(hold, jobs);
        held.unwrap();
        results
    }

    #[tokio::test]
    async fn the_wal_starts_over_once_the_writer_has_checkpointed_it() {
        let (_dir, w, reader) = writer();
        for v in 0..50 {
            w.run(move |conn| insert(conn, v)).await.unwrap();
        }
        // Asked to, the writer checkpoints before its next transaction, which then writes its
        // frames at the beginning of the WAL: a few frames, not 51 transactions' worth.
        w.checkpoint_before_next();
        w.run(|conn| insert(conn, 50)).await.unwrap();
        let mut conn = reader.get().unwrap();
        assert!(
            !super::super::checkpoint(&mut conn, 5).unwrap(),
            "the WAL started over"
        );
        drop(conn);
        assert_eq!(stored(&reader), (0..=50).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_failed_request_is_rolled_back_alone_and_the_others_commit() {
        let (_dir, w, reader) = writer();
        let results = batch(&w, 5, |i| {
            Box::new(move |conn| {
                insert(conn, i)?;
                if i == 2 {
                    return Err(AppError::Internal("refused".into()));
                }
                Ok(())
            })
        })
        .await;
        let ok: Vec<bool> = results.iter().map(Result::is_ok).collect();
        assert_eq!(ok, [true, true, false, true, true]);
        assert_eq!(stored(&reader), [0, 1, 3, 4]);
    }

    #[tokio::test]
    async fn a_transaction_that_sqlite_ended_loses_its_requests_and_the_rest_run_next() {
        let (_dir, w, reader) = writer();
        let results = batch(&w, 4, |i| {
            Box::new(move |conn| {
                insert(conn, i)?;
                if i == 1 {
                    // As SQLite does on a full disk: the whole transaction is gone.
                    if let AnyConnection::Sqlite(lite) = conn {
                        lite.batch_execute("ROLLBACK")?;
                    }
                    return Err(AppError::Internal("disk full".into()));
                }
                Ok(())
            })
        })
        .await;
        // 0 ran in the lost transaction: told so (503, retry), never told it committed.
        assert!(results[0].as_ref().is_err_and(AppError::is_unavailable));
        assert!(results[1].is_err());
        assert!(results[2].is_ok() && results[3].is_ok());
        assert_eq!(stored(&reader), [2, 3]);
    }

    #[tokio::test]
    async fn a_panic_fails_its_batch_and_the_writer_goes_on() {
        let (_dir, w, reader) = writer();
        let results = batch(&w, 3, |i| {
            Box::new(move |conn| {
                insert(conn, i)?;
                assert!(i != 1, "a bug");
                Ok(())
            })
        })
        .await;
        // 0 shared the transaction that the panic abandoned; 2 had not run yet, and runs in
        // the next one.
        let ok: Vec<bool> = results.iter().map(Result::is_ok).collect();
        assert_eq!(ok, [false, false, true]);
        assert_eq!(stored(&reader), [2]);
        w.run(|conn| insert(conn, 7)).await.unwrap();
        assert_eq!(stored(&reader), [2, 7]);
    }
}
