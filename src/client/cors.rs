//! The origins allowed to call the token and revocation endpoints from a browser (CORS): the
//! origins (`scheme://host[:port]`) of the redirect URIs of every enabled client.
//!
//! The set is kept in memory and rebuilt when `cache_generation` moves (the same poll that
//! invalidates the client cache, see [`super::cache`]), so checking an `Origin` costs no
//! query. A preflight request carries no client_id, so the set is that of every enabled
//! client, not of the client named in the request.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

/// The allowed origins.
#[derive(Default)]
pub struct AllowedOrigins(RwLock<Arc<HashSet<String>>>);

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
            *current = Arc::new(set);
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
    }
}
