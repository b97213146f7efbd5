//! Slows down password guessing, in memory per instance, before any password is verified.
//!
//! Two limits, in fixed windows:
//! - strict, per (username, client address): [`PAIR_LIMIT`] failures per [`PAIR_WINDOW_SECONDS`];
//! - looser and slower, per username from anywhere: [`USER_LIMIT`] failures per
//!   [`USER_WINDOW_SECONDS`].
//!
//! So someone flooding a person's username from elsewhere locks out only their own address
//! (and, past the looser limit, slows the name down for a while), while the person signing in
//! from their own address still gets in.
//!
//! Each attempt reserves its failure atomically before the password is verified
//! ([`LoginThrottle::reserve`]) and gives it back when the password was right
//! ([`LoginThrottle::release`]): parallel attempts cannot all pass the check before any of
//! them is counted.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Failures allowed per (username, address) per window.
pub const PAIR_LIMIT: u32 = 5;
/// The (username, address) window, in seconds.
pub const PAIR_WINDOW_SECONDS: i64 = 60;
/// Failures allowed per username (from any address) per window.
pub const USER_LIMIT: u32 = 100;
/// The per-username window, in seconds (15 minutes).
pub const USER_WINDOW_SECONDS: i64 = 900;
/// Entries tracked at most per map; beyond that, finished windows are dropped (and if that is
/// not enough, everything: a sprayer then gets a fresh budget, never more memory).
const MAX_TRACKED: usize = 100_000;

#[derive(Clone, Copy)]
struct Window {
    start: i64,
    count: u32,
}

impl Window {
    /// The current window (a new one when `length` has passed).
    fn current(&mut self, now: i64, length: i64) -> &mut Window {
        if now >= self.start + length {
            *self = Window {
                start: now,
                count: 0,
            };
        }
        self
    }

    fn wait(&self, now: i64, length: i64) -> i64 {
        (self.start + length - now).max(1)
    }
}

#[derive(Default)]
struct Counts {
    pairs: HashMap<(String, Option<IpAddr>), Window>,
    users: HashMap<String, Window>,
}

/// Failed logins by username and address.
#[derive(Default)]
pub struct LoginThrottle {
    counts: Mutex<Counts>,
}

/// A failure counted in advance; give it back with [`LoginThrottle::release`] when the
/// password was right (or was not checked at all).
#[must_use]
pub struct Reservation {
    username: String,
    address: Option<IpAddr>,
    pair_start: i64,
    user_start: i64,
}

fn key(username: &str) -> String {
    username.trim().to_lowercase()
}

fn bound<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Window>, now: i64, length: i64) {
    if map.len() >= MAX_TRACKED {
        map.retain(|_, w| now < w.start + length);
        if map.len() >= MAX_TRACKED {
            map.clear();
        }
    }
}

impl LoginThrottle {
    /// Reserves one failure for `username` from `address`, or the seconds to wait when either
    /// limit is reached (then nothing is counted and no password may be verified).
    pub fn reserve(
        &self,
        username: &str,
        address: Option<IpAddr>,
        now: i64,
    ) -> Result<Reservation, i64> {
        // A poisoned lock (a panic elsewhere) must not open the gate: refuse for a moment.
        let Ok(mut counts) = self.counts.lock() else {
            return Err(1);
        };
        let name = key(username);
        bound(&mut counts.pairs, now, PAIR_WINDOW_SECONDS);
        bound(&mut counts.users, now, USER_WINDOW_SECONDS);
        let pair = *counts
            .pairs
            .entry((name.clone(), address))
            .or_insert(Window {
                start: now,
                count: 0,
            })
            .current(now, PAIR_WINDOW_SECONDS);
        if pair.count >= PAIR_LIMIT {
            return Err(pair.wait(now, PAIR_WINDOW_SECONDS));
        }
        let user = *counts
            .users
            .entry(name.clone())
            .or_insert(Window {
                start: now,
                count: 0,
            })
            .current(now, USER_WINDOW_SECONDS);
        if user.count >= USER_LIMIT {
            return Err(user.wait(now, USER_WINDOW_SECONDS));
        }
        if let Some(w) = counts.pairs.get_mut(&(name.clone(), address)) {
            w.count += 1;
        }
        if let Some(w) = counts.users.get_mut(&name) {
            w.count += 1;
        }
        Ok(Reservation {
            username: name,
            address,
            pair_start: pair.start,
            user_start: user.start,
        })
    }

    /// The attempt did not fail (right password, or not verified): its reserved failure is
    /// given back, and after a right password that address starts afresh for that username.
    pub fn release(&self, reservation: Reservation, signed_in: bool) {
        let Ok(mut counts) = self.counts.lock() else {
            return;
        };
        let pair_key = (reservation.username.clone(), reservation.address);
        if signed_in {
            counts.pairs.remove(&pair_key);
        } else if let Some(w) = counts.pairs.get_mut(&pair_key)
            && w.start == reservation.pair_start
        {
            w.count = w.count.saturating_sub(1);
        }
        if let Some(w) = counts.users.get_mut(&reservation.username)
            && w.start == reservation.user_start
        {
            w.count = w.count.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn five_failures_block_that_address_for_that_username_for_the_rest_of_the_minute() {
        let t = LoginThrottle::default();
        for i in 0..5 {
            let _failed = t.reserve("Alice", ip("10.0.0.1"), 100 + i).unwrap();
        }
        assert_eq!(t.reserve("ALICE", ip("10.0.0.1"), 105).err(), Some(55));
        // Another address, another username: not affected.
        let r = t.reserve("alice", ip("10.0.0.2"), 105).unwrap();
        t.release(r, true);
        let _ = t.reserve("bob", ip("10.0.0.1"), 105).unwrap();
        // A new window.
        let _ = t.reserve("alice", ip("10.0.0.1"), 160).unwrap();
    }

    #[test]
    fn a_username_flooded_from_many_addresses_is_slowed_down_for_fifteen_minutes() {
        let t = LoginThrottle::default();
        for i in 0..USER_LIMIT {
            let addr = Some(IpAddr::from([10, 0, (i / 256) as u8, (i % 256) as u8]));
            let _ = t.reserve("alice", addr, 1000).unwrap();
        }
        assert_eq!(t.reserve("alice", ip("192.0.2.1"), 1000).err(), Some(900));
        assert!(t.reserve("alice", ip("192.0.2.1"), 1900).is_ok());
    }

    #[test]
    fn a_right_password_gives_its_reservation_back() {
        let t = LoginThrottle::default();
        for _ in 0..10 {
            let r = t.reserve("alice", ip("10.0.0.1"), 100).unwrap();
            t.release(r, true);
        }
        for _ in 0..4 {
            let _ = t.reserve("alice", ip("10.0.0.1"), 100).unwrap();
        }
        let r = t.reserve("alice", ip("10.0.0.1"), 100).unwrap();
        t.release(r, false);
        assert!(t.reserve("alice", ip("10.0.0.1"), 100).is_ok());
        assert!(t.reserve("alice", ip("10.0.0.1"), 100).is_err());
    }
}
