//! Per-client token-request rate limits, counted in memory per instance: a fixed one-minute
//! window per client (with N instances behind a load balancer, a client gets up to N times its
//! limit; divide the limit by N to bound the total).

use crate::ids::ClientKey;
use std::collections::HashMap;
use std::sync::Mutex;

/// Requests per client in the current minute.
#[derive(Default)]
pub struct RateLimiter {
    windows: Mutex<HashMap<ClientKey, (i64, i64)>>,
}

impl RateLimiter {
    /// Counts a request of `client_pk` at `now`; Err(seconds to wait) when the client is over
    /// `per_minute` in this minute.
    pub fn check(&self, client_pk: ClientKey, per_minute: i64, now: i64) -> Result<(), u64> {
        let minute = now.div_euclid(60);
        let Ok(mut windows) = self.windows.lock() else {
            return Ok(());
        };
        if windows.len() > 100_000 {
            windows.retain(|_, (m, _)| *m == minute);
        }
        let entry = windows.entry(client_pk).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        if entry.1 >= per_minute {
            return Err((60 - now.rem_euclid(60)).max(1) as u64);
        }
        entry.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_allows_the_limit_then_refuses_until_the_next_minute() {
        let r = RateLimiter::default();
        let t = 6_000_000; // start of a minute
        assert_eq!(r.check(ClientKey(1), 2, t), Ok(()));
        assert_eq!(r.check(ClientKey(1), 2, t + 10), Ok(()));
        assert_eq!(r.check(ClientKey(1), 2, t + 15), Err(45));
        assert_eq!(r.check(ClientKey(2), 2, t + 15), Ok(()), "per client");
        assert_eq!(r.check(ClientKey(1), 2, t + 60), Ok(()), "a new minute");
    }
}
