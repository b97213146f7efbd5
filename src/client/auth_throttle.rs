//! Throttles failed client authentications, in memory per instance, before any hashing.
//!
//! Two limits, in fixed one-minute windows:
//! - strict, per (client_id, client address): after [`PAIR_LIMIT`] failures, that address is
//!   refused for that client_id (429 with `Retry-After`) until the window ends, before its
//!   credentials are even looked at. The real client at its own address is not affected by a
//!   flood against its client_id from elsewhere.
//! - looser, per client_id: after [`CLIENT_LIMIT`] failures from anywhere, only requests that
//!   would need an argon2 verification (a typed secret not verified before by this process)
//!   are refused. A credential that verifies by SHA-256, or that this process verified
//!   before, still works: the limit caps what a distributed flood costs us, not who may sign in.
//!
//! An argon2 verification reserves its failure before it starts ([`AuthThrottle::reserve`])
//! and gives it back on success, so parallel attempts cannot all pass the check before any of
//! them is counted.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Failures allowed per (client_id, address) per window.
pub const PAIR_LIMIT: u32 = 10;
/// Failures allowed per client_id per window before argon2 is refused for it.
pub const CLIENT_LIMIT: u32 = 100;
/// The window, in seconds.
pub const WINDOW_SECONDS: i64 = 60;
/// client_ids tracked at most; beyond that, finished windows are dropped (and if that is not
/// enough, everything: an attacker spraying ids then gets a fresh budget, never more memory).
const MAX_CLIENTS: usize = 100_000;
/// Addresses tracked per client_id at most.
const MAX_ADDRESSES: usize = 10_000;

#[derive(Clone, Copy, Default)]
struct Window {
    start: i64,
    count: u32,
}

impl Window {
    fn current(&mut self, now: i64) -> &mut Window {
        if now >= self.start + WINDOW_SECONDS {
            *self = Window {
                start: now,
                count: 0,
            };
        }
        self
    }

    fn wait(&self, now: i64) -> u64 {
        (self.start + WINDOW_SECONDS - now).max(1) as u64
    }
}

#[derive(Default)]
struct PerClient {
    total: Window,
    by_address: HashMap<Option<IpAddr>, Window>,
}

/// Failed client authentications by client_id and address.
#[derive(Default)]
pub struct AuthThrottle {
    clients: Mutex<HashMap<String, PerClient>>,
}

/// A failure counted in advance for an argon2 verification; give it back with
/// [`AuthThrottle::release`] when the verification succeeds.
#[must_use]
pub struct Reservation {
    client_id: String,
    address: Option<IpAddr>,
    start: i64,
}

impl AuthThrottle {
    /// Seconds to wait when `address` has failed too often for `client_id`; checked before
    /// the credentials are looked at.
    pub fn check(&self, client_id: &str, address: Option<IpAddr>, now: i64) -> Result<(), u64> {
        let Ok(mut clients) = self.clients.lock() else {
            return Ok(());
        };
        let Some(per) = clients.get_mut(client_id) else {
            return Ok(());
        };
        match per.by_address.get_mut(&address).map(|w| *w.current(now)) {
            Some(w) if w.count >= PAIR_LIMIT => Err(w.wait(now)),
            _ => Ok(()),
        }
    }

    /// Counts a failure that cost nothing worth reserving (unknown client, SHA-256 mismatch).
    pub fn failed(&self, client_id: &str, address: Option<IpAddr>, now: i64) {
        self.count(client_id, address, now, None);
    }

    /// Reserves a failure before an argon2 verification: refused (seconds to wait) when
    /// either limit is reached.
    pub fn reserve(
        &self,
        client_id: &str,
        address: Option<IpAddr>,
        now: i64,
    ) -> Result<Reservation, u64> {
        let mut refused = None;
        self.count(client_id, address, now, Some(&mut refused));
        match refused {
            Some(wait) => Err(wait),
            None => Ok(Reservation {
                client_id: client_id.to_string(),
                address,
                start: now,
            }),
        }
    }

    /// The verification succeeded: the reserved failure did not happen.
    pub fn release(&self, reservation: Reservation) {
        let Ok(mut clients) = self.clients.lock() else {
            return;
        };
        let Some(per) = clients.get_mut(&reservation.client_id) else {
            return;
        };
        for w in [
            Some(&mut per.total),
            per.by_address.get_mut(&reservation.address),
        ]
        .into_iter()
        .flatten()
        {
            // Only if the window it was counted in is still the current one.
            if w.start <= reservation.start {
                w.count = w.count.saturating_sub(1);
            }
        }
    }

    /// Adds one failure; with `limits`, only if neither limit is reached (else the wait).
    fn count(
        &self,
        client_id: &str,
        address: Option<IpAddr>,
        now: i64,
        limits: Option<&mut Option<u64>>,
    ) {
        let Ok(mut clients) = self.clients.lock() else {
            return;
        };
        if clients.len() >= MAX_CLIENTS && !clients.contains_key(client_id) {
            clients.retain(|_, p| p.total.start + WINDOW_SECONDS > now);
            if clients.len() >= MAX_CLIENTS {
                clients.clear();
            }
        }
        let per = clients.entry(client_id.to_string()).or_default();
        if per.by_address.len() >= MAX_ADDRESSES && !per.by_address.contains_key(&address) {
            per.by_address.retain(|_, w| w.start + WINDOW_SECONDS > now);
            if per.by_address.len() >= MAX_ADDRESSES {
                per.by_address.clear();
            }
        }
        let total = *per.total.current(now);
        let pair = *per.by_address.entry(address).or_default().current(now);
        if let Some(refused) = limits {
            if pair.count >= PAIR_LIMIT {
                *refused = Some(pair.wait(now));
                return;
            }
            if total.count >= CLIENT_LIMIT {
                *refused = Some(total.wait(now));
                return;
            }
        }
        per.total.count = per.total.count.saturating_add(1);
        if let Some(w) = per.by_address.get_mut(&address) {
            w.count = w.count.saturating_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    #[test]
    fn the_strict_limit_is_per_address_and_the_loose_one_only_stops_argon2() {
        let t = AuthThrottle::default();
        let (a, b) = (ip("192.0.2.1"), ip("192.0.2.2"));
        for _ in 0..PAIR_LIMIT {
            assert_eq!(t.check("c", a, 100), Ok(()));
            t.failed("c", a, 100);
        }
        assert_eq!(t.check("c", a, 110), Err(50));
        assert_eq!(
            t.check("c", b, 110),
            Ok(()),
            "another address is not affected"
        );
        assert_eq!(
            t.check("d", a, 110),
            Ok(()),
            "another client is not affected"
        );
        assert_eq!(t.check("c", a, 160), Ok(()), "the window ends");

        let t = AuthThrottle::default();
        for i in 0..CLIENT_LIMIT {
            t.failed("c", ip(&format!("10.0.{}.{}", i / 250, i % 250)), 100);
        }
        assert_eq!(t.check("c", b, 100), Ok(()), "cheap checks still pass");
        assert!(t.reserve("c", b, 100).is_err(), "argon2 is refused");
        assert!(t.reserve("c", b, 160).is_ok());
    }

    #[test]
    fn reservations_count_at_once_and_successes_give_them_back() {
        let t = AuthThrottle::default();
        let a = ip("192.0.2.1");
        let mut held = Vec::new();
        for _ in 0..PAIR_LIMIT {
            held.push(t.reserve("c", a, 100).unwrap());
        }
        assert!(
            t.reserve("c", a, 100).is_err(),
            "parallel attempts are counted"
        );
        t.release(held.pop().unwrap());
        assert!(t.reserve("c", a, 100).is_ok());
    }
}
