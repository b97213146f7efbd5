//! The only place argon2 verifications run: a fixed set of worker threads, each reusing one
//! memory block, behind a bounded queue.
//!
//! An argon2id verification with OWASP's parameters fills 19 MiB and takes about 15 ms of one
//! core. Allocated per call and run on whatever thread asked, a flood of wrong secrets or
//! passwords grew the process by gigabytes (the allocator keeps freed 19 MiB blocks) and took
//! every core. Here at most `workers` verifications run at once (default: one per core), each
//! worker hashes into the memory block it allocated once, and at most `queue` more wait;
//! beyond that [`Argon2Pool::verify`] answers [`Busy`] at once, which the callers turn into
//! 503 `temporarily_unavailable` with `Retry-After` (token endpoint) or a readable page
//! (sign-in). No database connection is held while a verification waits or runs: callers load
//! what they need first and release the connection.

use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
use subtle::ConstantTimeEq;

/// What a verification is for (the label of `portcullis_argon2_verifications_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A client secret an admin typed (RFC 6749 2.3.1).
    ClientSecret,
    /// A person's password at sign-in.
    Login,
}

impl Purpose {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::ClientSecret => "client_secret",
            Purpose::Login => "login",
        }
    }
}

/// Too many verifications are running and waiting: answer 503 and let the caller retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// Seconds a refused caller is told to wait (`Retry-After`).
pub const RETRY_AFTER_SECONDS: u64 = 1;

/// The most memory one stored hash may ask for (in KiB): hashes are ours (19 MiB), so a
/// larger one is refused rather than allocated.
const MAX_MEMORY_KIB: u32 = 256 * 1024;

struct Job {
    password: Vec<u8>,
    phc: String,
    reply: Option<tokio::sync::oneshot::Sender<bool>>,
}

impl Drop for Job {
    fn drop(&mut self) {
        // The presented value does not outlive the job.
        self.password.iter_mut().for_each(|b| *b = 0);
    }
}

/// The bounded argon2 verifier shared by a process.
pub struct Argon2Pool {
    sender: SyncSender<Job>,
    counter: prometheus::IntCounterVec,
}

impl Argon2Pool {
    /// Starts `workers` threads with room for `queue` waiting verifications. `counter` counts
    /// verifications by purpose. The threads end when the pool is dropped.
    pub fn start(
        workers: usize,
        queue: usize,
        counter: prometheus::IntCounterVec,
    ) -> std::io::Result<Argon2Pool> {
        let (sender, receiver) = sync_channel::<Job>(queue);
        let receiver = Arc::new(Mutex::new(receiver));
        for i in 0..workers.max(1) {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || work(&receiver))?;
        }
        Ok(Argon2Pool { sender, counter })
    }

    /// Verifies `password` against the PHC string `phc` on a worker; waits while the queue has
    /// room, [`Busy`] at once when it is full. A malformed hash verifies nothing (false).
    pub async fn verify(
        &self,
        purpose: Purpose,
        password: Vec<u8>,
        phc: String,
    ) -> Result<bool, Busy> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        match self.sender.try_send(Job {
            password,
            phc,
            reply: Some(reply),
        }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                tracing::warn!(
                    purpose = purpose.as_str(),
                    "argon2 queue full: request refused"
                );
                return Err(Busy);
            }
            Err(TrySendError::Disconnected(_)) => return Err(Busy),
        }
        self.counter.with_label_values(&[purpose.as_str()]).inc();
        answer.await.map_err(|_| Busy)
    }
}

/// A worker with nothing to do for this long gives its memory block back (it is its own
/// mapping, see `memory::tune`, so the 19 MiB leave the process at once); the next
/// verification allocates it again, which costs far less than the verification itself.
const IDLE_RELEASE: std::time::Duration = std::time::Duration::from_secs(5);

fn work(receiver: &Mutex<Receiver<Job>>) {
    // Allocated on first use, then reused for every verification of this thread until it idles.
    let mut memory: Vec<Block> = Vec::new();
    loop {
        let job = match receiver.lock() {
            Ok(r) => match r.recv_timeout(IDLE_RELEASE) {
                Ok(job) => job,
                Err(RecvTimeoutError::Timeout) => {
                    memory = Vec::new();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return,
            },
            Err(_) => return,
        };
        let mut job = job;
        let ok = verify_with(&mut memory, &job.password, &job.phc);
        // The caller may have gone (client disconnected): nothing to do then.
        if let Some(reply) = job.reply.take() {
            let _ = reply.send(ok);
        }
    }
}

/// argon2 verification of `password` against `phc`, hashing into `memory` (grown if needed).
pub fn verify_with(memory: &mut Vec<Block>, password: &[u8], phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(hash.algorithm.as_str()),
        Params::try_from(&hash),
    ) else {
        return false;
    };
    let version = hash
        .version
        .map(Version::try_from)
        .transpose()
        .ok()
        .flatten()
        .unwrap_or_default();
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return false;
    };
    if params.m_cost() > MAX_MEMORY_KIB {
        tracing::error!("an argon2 hash asks for more memory than allowed; not verified");
        return false;
    }
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params);
    if argon2
        .hash_password_into_with_memory(password, salt.as_ref(), &mut out, &mut memory[..blocks])
        .is_err()
    {
        return false;
    }
    out.ct_eq(expected.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter() -> prometheus::IntCounterVec {
        prometheus::IntCounterVec::new(prometheus::Opts::new("t", "t"), &["purpose"]).unwrap()
    }

    #[test]
    fn verifies_what_the_crate_hashed_reusing_memory() {
        let phc = crate::crypto::argon2_hash(b"correct horse battery").unwrap();
        let mut memory = Vec::new();
        assert!(verify_with(&mut memory, b"correct horse battery", &phc));
        assert_eq!(memory.len(), 19 * 1024);
        assert!(!verify_with(&mut memory, b"wrong", &phc));
        assert!(verify_with(&mut memory, b"correct horse battery", &phc));
        assert!(!verify_with(&mut memory, b"x", "not a hash"));
    }

    #[tokio::test]
    async fn a_full_queue_is_busy_and_counts_nothing() {
        let phc = crate::crypto::argon2_hash(b"correct horse battery").unwrap();
        let c = counter();
        let pool = Argon2Pool::start(1, 1, c.clone()).unwrap();
        let pool = Arc::new(pool);
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (pool, phc) = (pool.clone(), phc.clone());
            tasks.push(tokio::spawn(async move {
                pool.verify(Purpose::Login, b"wrong".to_vec(), phc).await
            }));
        }
        let mut busy = 0;
        let mut done = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(false) => done += 1,
                Err(Busy) => busy += 1,
                Ok(true) => panic!("a wrong password verified"),
            }
        }
        assert!(busy >= 1, "one worker and a queue of one cannot take eight");
        assert_eq!(c.with_label_values(&["login"]).get() as usize, done);
        assert_eq!(
            pool.verify(Purpose::Login, b"correct horse battery".to_vec(), phc)
                .await,
            Ok(true)
        );
    }
}
