//! Time as seconds since the Unix epoch (what the database stores), and its human forms.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time};

/// The server's clock, in seconds since the epoch. Every expiry the server decides (tokens,
/// codes, secrets, sessions, assertion replays) reads it from [`crate::AppState::clock`], so a
/// test can set and step time for one server without touching the machine's clock.
#[derive(Clone, Default)]
pub struct Clock(Option<Arc<AtomicI64>>);

impl Clock {
    /// The system's clock (what a running server uses).
    pub fn system() -> Clock {
        Clock(None)
    }

    /// A clock that stands still at `ts` until [`Clock::set`] or [`Clock::advance`] moves it.
    pub fn manual(ts: i64) -> Clock {
        Clock(Some(Arc::new(AtomicI64::new(ts))))
    }

    /// Now.
    pub fn now(&self) -> i64 {
        match &self.0 {
            None => OffsetDateTime::now_utc().unix_timestamp(),
            Some(t) => t.load(Ordering::SeqCst),
        }
    }

    /// Sets a manual clock to `ts` (forwards or backwards, as a clock step does); the system
    /// clock is not ours to set, so this does nothing to it.
    pub fn set(&self, ts: i64) {
        if let Some(t) = &self.0 {
            t.store(ts, Ordering::SeqCst);
        }
    }

    /// Moves a manual clock by `secs` (negative: backwards).
    pub fn advance(&self, secs: i64) {
        if let Some(t) = &self.0 {
            t.fetch_add(secs, Ordering::SeqCst);
        }
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            None => f.write_str("Clock::system"),
            Some(t) => write!(f, "Clock::manual({})", t.load(Ordering::SeqCst)),
        }
    }
}

/// `2026-11-22T10:00:00Z`.
pub fn rfc3339(ts: i64) -> String {
    OffsetDateTime::from_unix_timestamp(ts)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ts.to_string())
}

/// `2026-11-22 10:00 UTC`, for people.
pub fn human(ts: i64) -> String {
    let fmt = format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    OffsetDateTime::from_unix_timestamp(ts)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| ts.to_string())
}

/// `2026-11-22`.
pub fn date(ts: i64) -> String {
    let fmt = format_description!("[year]-[month]-[day]");
    OffsetDateTime::from_unix_timestamp(ts)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| ts.to_string())
}

/// Parses an expiry: `YYYY-MM-DD` or `DD/MM/YYYY` (the secret stops working at 00:00 UTC
/// that day) or an RFC 3339 date-time. It must lie in the future.
pub fn parse_expiry(input: &str, now: i64) -> Result<i64, String> {
    let input = input.trim();
    let iso = format_description!("[year]-[month]-[day]");
    let dmy = format_description!("[day]/[month]/[year]");
    let ts = if let Ok(d) = Date::parse(input, &iso).or_else(|_| Date::parse(input, &dmy)) {
        PrimitiveDateTime::new(d, Time::MIDNIGHT)
            .assume_utc()
            .unix_timestamp()
    } else if let Ok(t) = OffsetDateTime::parse(input, &Rfc3339) {
        t.unix_timestamp()
    } else {
        return Err(format!(
            "invalid expiry '{input}': use YYYY-MM-DD (or DD/MM/YYYY, or an RFC 3339 date-time)"
        ));
    };
    if ts <= now {
        return Err(format!("invalid expiry '{input}': it is in the past"));
    }
    Ok(ts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_formats() {
        let now = 1_700_000_000; // 2023-11-14
        assert_eq!(parse_expiry("2030-01-02", now), Ok(1_893_542_400));
        assert_eq!(parse_expiry("02/01/2030", now), Ok(1_893_542_400));
        assert!(parse_expiry("2020-01-01", now).is_err());
        assert!(parse_expiry("tomorrow", now).is_err());
        assert_eq!(date(1_893_542_400), "2030-01-02");
    }
}
