//! PostgreSQL: the same statement of many concurrent requests run as one ([`Batcher`]).
//!
//! A refresh on PostgreSQL is one statement in autocommit (issue 13), yet PostgreSQL's CPU per
//! refresh was about twice the server's: a round trip, a backend wake-up, a commit record and
//! its WAL flush per request, for a statement that touches three rows. A [`Batcher`] is a
//! queue and a thread with a connection of its own: the thread takes whatever has queued (at
//! most [`MAX_BATCH`]) and runs it as ONE statement over arrays (`unnest`), so that N requests
//! share one round trip and one commit. Under light load a batch is one request and costs what
//! the statement alone did, plus a hand-over between threads; under load, batches grow by
//! themselves (requests queue while the last batch runs).
//!
//! Durability is unchanged: a request learns its outcome only after the statement that holds
//! it committed. Atomicity per request is unchanged too: each request's rows are decided by the
//! statement's conditions on that request's own rows, as when it ran alone. A batch whose
//! statement fails is run again one request at a time, so that one request's failure is its
//! own.
//!
//! The thread's connection comes from a pool of its own (one connection per thread): a request
//! waiting here may hold a connection of the server's pool, so sharing that pool could
//! deadlock.

use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::{AnyConnection, DbUrl, Pool};
use crate::error::AppError;
use crate::metrics::BatchMetrics;

/// Requests run as one statement at most.
pub const MAX_BATCH: usize = 64;

/// Requests that may wait for a batch; past it, callers wait for room.
const QUEUE: usize = 1024;

/// A statement that runs for many requests at once.
pub trait Batched: Send + Sync + 'static {
    /// One request's inputs.
    type Item: Send + 'static;
    /// One request's outcome, when the statement did something for it.
    type Out: Send + 'static;
    /// The thread's name.
    const NAME: &'static str;
    /// Runs `items` as one statement; the outcome of each, in order (None: nothing done for
    /// it).
    fn run(
        conn: &mut AnyConnection,
        items: &[Self::Item],
    ) -> Result<Vec<Option<Self::Out>>, AppError>;
}

/// The planner settings of a batcher's connection. A batch is at most [`MAX_BATCH`] rows that
/// each find their rows by a unique key, so an index lookup per row is always the plan; but the
/// statement is prepared once per connection, and a generic plan made while the tables were
/// small (a new database, before autovacuum analyzed them) joined by hashing a scan of a whole
/// table, which cost more than half of PostgreSQL's CPU per refresh once the tables had grown
/// (measured, issue 13). Only these connections, which run nothing but batches, plan so.
const PLANNER: &str = "SET enable_hashjoin = off; SET enable_mergejoin = off; SET enable_seqscan = off; \
     SET plan_cache_mode = force_generic_plan;";

/// What a request gets back.
type Reply<B> = Result<Option<<B as Batched>::Out>, AppError>;

/// One queued request.
struct Job<B: Batched> {
    item: B::Item,
    reply: oneshot::Sender<Reply<B>>,
}

/// See the module documentation. A clone sends to the same thread, which ends when the last
/// copy is dropped.
pub struct Batcher<B: Batched> {
    queue: mpsc::Sender<Job<B>>,
}

impl<B: Batched> Clone for Batcher<B> {
    fn clone(&self) -> Batcher<B> {
        Batcher {
            queue: self.queue.clone(),
        }
    }
}

/// The answer of a batcher that stopped (it ends only when the server does).
fn stopped<T>() -> Result<T, AppError> {
    Err(super::writer::unavailable("the database batcher stopped"))
}

impl<B: Batched> Batcher<B> {
    /// Starts the thread, with its own connection to `url` (a sibling of the server's pool
    /// `of`, [`super::sibling_pool`]). It ends when the batcher is dropped.
    ///
    /// One thread per statement: with two or three taking from one queue, the batches were
    /// smaller and PostgreSQL's CPU per request larger (issue 13: refreshes on 10 connections,
    /// one thread 5.6-6.1k/s at 200-226 µs of machine CPU each, two or three 5.3k/s at 279-283
    /// µs).
    pub fn start(
        of: &Pool,
        url: &DbUrl,
        timeout: Duration,
        metrics: BatchMetrics,
    ) -> Result<Batcher<B>, String> {
        let pool = super::sibling_pool(of, url, 1, timeout, PLANNER)?;
        let (queue, receiver) = mpsc::channel(QUEUE);
        std::thread::Builder::new()
            .name(B::NAME.into())
            .spawn(move || serve::<B>(&pool, receiver, &metrics))
            .map_err(|e| e.to_string())?;
        Ok(Batcher { queue })
    }

    /// Runs `item` in the next batch and returns its outcome. Called on the async executor:
    /// the request waits for its batch without a thread of its own and without a connection
    /// of the server's pool (issue 13; e.g. [`crate::oauth::grants::refresh_batched`]).
    pub async fn run_async(&self, item: B::Item) -> Reply<B> {
        let (reply, answer) = oneshot::channel();
        if self.queue.send(Job { item, reply }).await.is_err() {
            return stopped();
        }
        answer.await.unwrap_or_else(|_| stopped())
    }
}

/// The PostgreSQL connection a batched statement runs on (batchers exist only there).
pub fn postgres(conn: &mut AnyConnection) -> Result<&mut diesel::PgConnection, AppError> {
    match conn {
        AnyConnection::Postgresql(pg) => Ok(pg),
        _ => Err(AppError::Internal(
            "batched statements are for PostgreSQL".into(),
        )),
    }
}

/// One column of a batch: `f` of every item, in order (an array a batched statement binds).
pub fn column<'a, I, T>(items: &'a [I], f: impl Fn(&'a I) -> T) -> Vec<T> {
    items.iter().map(f).collect()
}

/// The outcomes of a batch of `n` items from the rows its statement returned, each led by the
/// ordinal (from 1, `WITH ORDINALITY`) of the input row it is for; None for the others.
pub fn by_ordinal<T>(n: usize, rows: impl IntoIterator<Item = (i64, T)>) -> Vec<Option<T>> {
    let mut outs: Vec<Option<T>> = std::iter::repeat_with(|| None).take(n).collect();
    for (ord, row) in rows {
        if let Some(out) = usize::try_from(ord - 1).ok().and_then(|i| outs.get_mut(i)) {
            *out = Some(row);
        }
    }
    outs
}

/// The batcher thread: takes whatever has queued (at most [`MAX_BATCH`]) and runs it, until
/// the batcher is dropped. When a batch found the database away, the requests queued behind
/// it are answered so at once: each would otherwise wait for a batch of its own to time out
/// in turn (up to [`QUEUE`] / [`MAX_BATCH`] of them), where a request on the server's pool
/// fails within one timeout.
fn serve<B: Batched>(pool: &Pool, mut receiver: mpsc::Receiver<Job<B>>, metrics: &BatchMetrics) {
    let mut jobs: Vec<Job<B>> = Vec::with_capacity(MAX_BATCH);
    while let Some(job) = receiver.blocking_recv() {
        jobs.push(job);
        while jobs.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let (n, started) = (jobs.len(), Instant::now());
        let away = run_batch::<B>(pool, &mut jobs);
        metrics.ran(B::NAME, n, started.elapsed().as_secs_f64());
        if let Some(away) = away {
            while let Ok(job) = receiver.try_recv() {
                let _ = job.reply.send(Err(super::writer::same(&away)));
            }
        }
    }
}

/// Runs the jobs as one statement and answers each. A statement that failed changed nothing
/// (it is atomic): each request runs again alone, so that one request's failure is its own.
/// A panic or a wrong number of outcomes (a bug) is answered with an error and run no more:
/// whether its statement committed is unknown. Returns the error when the database was away.
fn run_batch<B: Batched>(pool: &Pool, jobs: &mut Vec<Job<B>>) -> Option<AppError> {
    let (items, replies): (Vec<B::Item>, Vec<_>) =
        jobs.drain(..).map(|j| (j.item, j.reply)).unzip();
    let answer_all = |replies: Vec<oneshot::Sender<Reply<B>>>, e: &AppError| {
        for reply in replies {
            let _ = reply.send(Err(super::writer::same(e)));
        }
    };
    let mut conn = match pool.get() {
        Ok(conn) => conn,
        Err(e) => {
            let e = AppError::from(e);
            answer_all(replies, &e);
            return Some(e);
        }
    };
    let run = |conn: &mut AnyConnection, items: &[B::Item]| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| B::run(conn, items)))
    };
    match run(&mut conn, &items) {
        Ok(Ok(outs)) if outs.len() == items.len() => {
            for (reply, out) in replies.into_iter().zip(outs) {
                let _ = reply.send(Ok(out));
            }
            None
        }
        Ok(Err(e)) if e.is_unavailable() => {
            conn.suspect();
            answer_all(replies, &e);
            Some(e)
        }
        Ok(Err(e)) if items.len() == 1 => {
            answer_all(replies, &e);
            None
        }
        Ok(Err(_)) => {
            for (item, reply) in items.into_iter().zip(replies) {
                let answer = match run(&mut conn, std::slice::from_ref(&item)) {
                    Ok(Ok(mut outs)) if outs.len() == 1 => Ok(outs.pop().flatten()),
                    Ok(Err(e)) => {
                        if e.is_unavailable() {
                            conn.suspect();
                        }
                        Err(e)
                    }
                    _ => Err(AppError::Internal(format!("{} failed", B::NAME))),
                };
                let _ = reply.send(answer);
            }
            None
        }
        _ => {
            tracing::error!(
                batch = B::NAME,
                "a batched statement panicked or miscounted"
            );
            answer_all(replies, &AppError::Internal(format!("{} failed", B::NAME)));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use super::*;

    static FIRST: AtomicBool = AtomicBool::new(true);
    static LARGEST: AtomicUsize = AtomicUsize::new(0);

    /// Doubles even numbers, does nothing for odd ones, and fails on -1 (a whole batch that
    /// holds it fails, as a statement would). Its first batch takes a while, so that the
    /// others queue behind it.
    struct Fake;
    impl Batched for Fake {
        type Item = i64;
        type Out = i64;
        const NAME: &'static str = "fake";

        fn run(_: &mut AnyConnection, items: &[i64]) -> Result<Vec<Option<i64>>, AppError> {
            if FIRST.swap(false, Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(300));
            }
            LARGEST.fetch_max(items.len(), Ordering::SeqCst);
            if items.contains(&-1) {
                return Err(AppError::Invalid("minus one".into()));
            }
            Ok(items
                .iter()
                .map(|i| (i % 2 == 0).then_some(i * 2))
                .collect())
        }
    }

    /// A batcher of `B` on a new SQLite database (the fakes ignore the connection), and the
    /// directory that holds it.
    fn start<B: Batched>() -> (tempfile::TempDir, Batcher<B>) {
        let dir = tempfile::tempdir().unwrap();
        let url = DbUrl::Sqlite(dir.path().join("b.db").display().to_string());
        let pool = super::super::build_pool(&url, 1).unwrap();
        let metrics = crate::metrics::Metrics::new().unwrap().batch_metrics();
        let batcher = Batcher::<B>::start(&pool, &url, Duration::from_secs(2), metrics).unwrap();
        (dir, batcher)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn queued_requests_run_together_and_a_failing_one_fails_alone() {
        let (_dir, batcher) = start::<Fake>();
        let batcher = std::sync::Arc::new(batcher);
        let first = tokio::spawn({
            let batcher = batcher.clone();
            async move { batcher.run_async(100).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        let others: Vec<_> = (-1..20)
            .map(|i| {
                let batcher = batcher.clone();
                (i, tokio::spawn(async move { batcher.run_async(i).await }))
            })
            .collect();
        assert_eq!(first.await.unwrap().unwrap(), Some(200));
        for (i, answer) in others {
            match (i, answer.await.unwrap()) {
                (-1, Err(AppError::Invalid(m))) => assert_eq!(m, "minus one"),
                (i, Ok(out)) if i >= 0 => assert_eq!(out, (i % 2 == 0).then_some(i * 2), "{i}"),
                (i, other) => panic!("{i}: {:?}", other.map_err(|e| e.to_string())),
            }
        }
        assert!(
            LARGEST.load(Ordering::SeqCst) > 1,
            "the requests that queued behind the first ran as one batch"
        );
    }

    static PANICKED: AtomicUsize = AtomicUsize::new(0);

    /// Panics on 13 (a bug), echoes anything else.
    struct Panicky;
    impl Batched for Panicky {
        type Item = i64;
        type Out = i64;
        const NAME: &'static str = "panicky";

        fn run(_: &mut AnyConnection, items: &[i64]) -> Result<Vec<Option<i64>>, AppError> {
            if items.contains(&13) {
                PANICKED.fetch_add(1, Ordering::SeqCst);
                panic!("a bug");
            }
            Ok(items.iter().copied().map(Some).collect())
        }
    }

    #[tokio::test]
    async fn a_batch_that_panicked_is_answered_with_an_error_and_never_run_again() {
        let (_dir, batcher) = start::<Panicky>();
        assert!(matches!(
            batcher.run_async(13).await,
            Err(AppError::Internal(_))
        ));
        assert_eq!(
            PANICKED.load(Ordering::SeqCst),
            1,
            "it may have committed: never run again"
        );
        // The thread goes on.
        assert_eq!(batcher.run_async(7).await.unwrap(), Some(7));
    }
}
