//! The origins allowed to call the token and revocation endpoints from a browser (CORS): the
//! origins (`scheme://host[:port]`) of the redirect URIs of every enabled client.
//!
//! The set is kept in memory, so checking an `Origin` costs no query. The poll that
//! invalidates the client cache (see [`super::cache`]) keeps it current: the origins of the
//! clients a change names are added at once (an indexed read), and the whole set is read
//! again for what a change took away (a disabled client, a removed redirect URI) as soon as
//! [`Rebuilds::due`] allows: that reads every enabled client's redirect URIs, so with a
//! million clients and a change every second it would take most of a core; a rebuild that
//! took over 20 ms runs at most a tenth of the time (after one that took 300 ms, not again
//! for 3 s). A preflight request carries no client_id, so the set is that of every enabled
//! client, not of the client named in the request.

use std::collections::HashSet;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// When the whole set may be read again: changes wait while the last rebuild is recent
/// compared with how long it took.
#[derive(Default)]
pub struct Rebuilds {
    /// A change since the last rebuild may have taken an origin away.
    pending: bool,
    /// When the last rebuild ended, and how long it took.
    last: Option<(Instant, Duration)>,
}

impl Rebuilds {
    /// A rebuild at most a tenth of the time...
    const DUTY: u32 = 10;
    /// ...unless it is this quick (tens of thousands of clients): then with every change, as
    /// it always was.
    const QUICK: Duration = Duration::from_millis(20);

    /// Records a change to clients (any, or not known which).
    pub fn changed(&mut self) {
        self.pending = true;
    }

    /// True when a change is waiting and a rebuild may run now.
    pub fn due(&self) -> bool {
        self.due_at(Instant::now())
    }

    /// [`Self::due`] as of `now`.
    fn due_at(&self, now: Instant) -> bool {
        self.pending
            && self.last.is_none_or(|(at, took)| {
                took <= Self::QUICK || now.saturating_duration_since(at) >= took * Self::DUTY
            })
    }

    /// Records a rebuild that started at `started`.
    pub fn done(&mut self, started: Instant) {
        self.done_at(started, Instant::now());
    }

    /// [`Self::done`] for a rebuild that ended at `ended`.
    fn done_at(&mut self, started: Instant, ended: Instant) {
        self.pending = false;
        self.last = Some((ended, ended.saturating_duration_since(started)));
    }
}

/// The allowed origins.
#[derive(Default)]
pub struct AllowedOrigins(RwLock<HashSet<String>>);

/// The origin of a redirect URI, serialized as browsers send it in `Origin` (RFC 6454 6.1):
/// lower-case scheme and host, the port only when it is not the scheme's default.
pub fn origin_of(uri: &str) -> Option<String> {
    let origin = url::Url::parse(uri).ok()?.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

impl AllowedOrigins {
    /// Replaces the set with the origins of these redirect URIs.
    pub fn replace<'a>(&self, redirect_uris: impl IntoIterator<Item = &'a str>) {
        let set: HashSet<String> = redirect_uris.into_iter().filter_map(origin_of).collect();
        if let Ok(mut current) = self.0.write() {
            *current = set;
        }
    }

    /// Adds the origins of these redirect URIs (those of clients just changed).
    pub fn add<'a>(&self, redirect_uris: impl IntoIterator<Item = &'a str>) {
        let new: Vec<String> = redirect_uris
            .into_iter()
            .filter_map(origin_of)
            .filter(|o| !self.allows(o))
            .collect();
        if new.is_empty() {
            return;
        }
        if let Ok(mut current) = self.0.write() {
            current.extend(new);
        }
    }

    /// True when `origin` (the request's `Origin` header) is allowed.
    pub fn allows(&self, origin: &str) -> bool {
        self.0
            .read()
            .map(|set| set.contains(origin))
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_serialized_as_browsers_send_them() {
        assert_eq!(
            origin_of("https://App.Example.com/cb?x=1").as_deref(),
            Some("https://app.example.com")
        );
        assert_eq!(
            origin_of("https://app.example.com:443/cb").as_deref(),
            Some("https://app.example.com")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:3000/cb").as_deref(),
            Some("http://127.0.0.1:3000")
        );
        let set = AllowedOrigins::default();
        set.replace(["https://a.example/cb"]);
        assert!(set.allows("https://a.example"));
        assert!(!set.allows("https://b.example"));
        assert!(!set.allows("null"));
        set.add(["https://b.example/cb", "https://a.example/other"]);
        assert!(set.allows("https://a.example") && set.allows("https://b.example"));
    }

    #[test]
    fn a_slow_rebuild_waits_ten_times_as_long_as_it_took() {
        // Explicit instants: the test never depends on how long a sleep took (a loaded CI
        // machine once turned a 40 ms sleep into a longer rebuild and a longer wait).
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut r = Rebuilds::default();
        assert!(!r.due_at(t0), "nothing changed");
        r.changed();
        assert!(r.due_at(t0), "the first rebuild runs at once");
        r.done_at(t0, ms(5));
        r.changed();
        assert!(r.due_at(ms(6)), "a quick rebuild runs with every change");
        r.done_at(ms(10), ms(50));
        r.changed();
        assert!(!r.due_at(ms(51)), "40 ms of rebuild: the next waits 400 ms");
        assert!(!r.due_at(ms(449)), "still inside the 400 ms");
        assert!(r.due_at(ms(450)), "400 ms after the slow rebuild ended");
        r.done_at(ms(450), ms(460));
        assert!(!r.due_at(ms(2000)), "nothing changed since");
    }
}
