//! Slows down password guessing: after five failed logins for one username within a minute,
//! that username is refused (429) until the oldest of those failures is a minute old. The real
//! user is never locked out for longer than that. Counted in memory per instance.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Failures allowed per window.
pub const MAX_FAILURES: usize = 5;
/// The window, in seconds.
pub const WINDOW_SECONDS: i64 = 60;
/// Usernames tracked at most (oldest entries are dropped beyond this).
const MAX_TRACKED: usize = 100_000;

/// Failed logins by lower-cased username.
#[derive(Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, VecDeque<i64>>>,
}

impl LoginThrottle {
    /// Seconds to wait before another attempt for this username, or None when allowed.
    pub fn retry_after(&self, username: &str, now: i64) -> Option<i64> {
        let mut map = self.failures.lock().ok()?;
        let key = username.trim().to_lowercase();
        let times = map.get_mut(&key)?;
        while times.front().is_some_and(|t| *t <= now - WINDOW_SECONDS) {
            times.pop_front();
        }
        if times.len() >= MAX_FAILURES {
            times.front().map(|t| (t + WINDOW_SECONDS - now).max(1))
        } else {
            None
        }
    }

    /// Records a failed attempt.
    pub fn failed(&self, username: &str, now: i64) {
        let Ok(mut map) = self.failures.lock() else {
            return;
        };
        if map.len() >= MAX_TRACKED {
            map.retain(|_, t| t.back().is_some_and(|last| *last > now - WINDOW_SECONDS));
        }
        let times = map.entry(username.trim().to_lowercase()).or_default();
        times.push_back(now);
        while times.len() > MAX_FAILURES {
            times.pop_front();
        }
    }

    /// Forgets the failures of a username after a successful login.
    pub fn succeeded(&self, username: &str) {
        if let Ok(mut map) = self.failures.lock() {
            map.remove(&username.trim().to_lowercase());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_block_for_the_rest_of_the_minute() {
        let t = LoginThrottle::default();
        for i in 0..5 {
            assert_eq!(t.retry_after("Alice", 100 + i), None);
            t.failed("alice", 100 + i);
        }
        assert_eq!(t.retry_after("ALICE", 105), Some(55));
        assert_eq!(t.retry_after("bob", 105), None);
        assert_eq!(t.retry_after("alice", 160), None);
        t.succeeded("alice");
        assert_eq!(t.retry_after("alice", 106), None);
    }
}
