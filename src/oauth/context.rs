//! What the protocol core needs from the server ([`OAuthContext`]): the settings decided at
//! start, the keys, the client cache, the verifiers and the limits, as references. It is built
//! per request by `AppState::oauth` (a handful of references: nothing is allocated or locked),
//! so that nothing in `oauth/` reaches the whole application state.

use std::sync::Arc;

use crate::argon2_pool::Argon2Pool;
use crate::client::auth_throttle::AuthThrottle;
use crate::client::cache::ClientCache;
use crate::client::ratelimit::RateLimiter;
use crate::clock::Clock;
use crate::db::Pool;
use crate::metrics::Metrics;
use crate::seal::MasterKey;
use crate::secret::SecretVerifier;
use crate::token::Keys;
use crate::usage::UsageRecorder;

/// The protocol's view of the server.
#[derive(Clone, Copy)]
pub struct OAuthContext<'a> {
    /// Database pool (client authentication loads a client or records an assertion `jti`
    /// with a short-lived connection of its own).
    pub pool: &'a Pool,
    /// Issuer identifier (RFC 8414 2), without a trailing slash.
    pub issuer: &'a str,
    /// Default `aud` of access tokens.
    pub audience: &'a str,
    /// Accepted `aud` of client assertions (RFC 7523 3).
    pub assertion_audiences: &'a [String],
    /// Default access-token lifetime in seconds.
    pub access_token_ttl: i64,
    /// The cap on the lifetime of tokens carrying admin-API scopes.
    pub admin_token_ttl: i64,
    /// Default refresh-token lifetime in seconds.
    pub refresh_token_ttl: i64,
    /// Signing keys.
    pub keys: &'a Keys,
    /// Client-secret verification with its argon2 cache.
    pub verifier: &'a SecretVerifier,
    /// Where argon2 verifications run.
    pub argon2: &'a Argon2Pool,
    /// Failed client authentications by client_id and address.
    pub auth_throttle: &'a AuthThrottle,
    /// Clients and their secrets in memory.
    pub clients: &'a Arc<ClientCache>,
    /// Per-client token-request counts.
    pub rate_limiter: &'a RateLimiter,
    /// Batched last-used times and token counts.
    pub usage: &'a UsageRecorder,
    /// Prometheus metrics.
    pub metrics: &'a Metrics,
    /// Opens the sealed client_secret_jwt keys.
    pub master_key: &'a MasterKey,
    /// The clock every expiry is decided by.
    pub clock: &'a Clock,
    /// On PostgreSQL, where concurrent requests' statements run together
    /// ([`crate::token::Batches`]).
    pub batches: Option<&'a crate::token::Batches>,
}
