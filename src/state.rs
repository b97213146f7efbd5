//! The state every request shares: settings decided at start, the pool, the keys, the caches
//! and counters ([`AppState`]).

use crate::db::Pool;
use crate::{argon2_pool, client, clock, manage, metrics, seal, secret, token, usage, user};

/// State shared by every request.
pub struct AppState {
    /// Database pool.
    pub pool: Pool,
    /// Where the token endpoint, revocation and the consent decision write: on SQLite
    /// one connection on its own thread with group commit, so that writers queue in order on
    /// it instead of polling SQLite's lock (its busy handler sleeps 1, 2, 5, 10 ms... between
    /// tries) and share their commits; on PostgreSQL the same pool as `pool` (issue 13).
    pub writer: crate::db::writer::Writer,
    /// On PostgreSQL, the token statements that concurrent requests run as one (issue 13).
    pub batches: Option<token::Batches>,
    /// Issuer identifier (RFC 8414 2), without a trailing slash.
    pub issuer: String,
    /// Default `aud` of access tokens.
    pub audience: String,
    /// Accepted `aud` of client assertions (RFC 7523 3): the issuer, and with
    /// `PORTCULLIS_ASSERTION_ACCEPT_ENDPOINT_AUDIENCE` the endpoints where clients
    /// authenticate too. Formatted once.
    pub assertion_audiences: Vec<String>,
    /// Default access-token lifetime in seconds.
    pub access_token_ttl: i64,
    /// The cap on the lifetime of tokens carrying admin-API scopes.
    pub admin_token_ttl: i64,
    /// Default refresh-token lifetime in seconds.
    pub refresh_token_ttl: i64,
    /// Signing keys.
    pub keys: token::Keys,
    /// Client-secret verification with its argon2 cache.
    pub verifier: secret::SecretVerifier,
    /// Every argon2 verification runs here: bounded in concurrency, queue and memory.
    pub argon2: argon2_pool::Argon2Pool,
    /// Failed client authentications by client_id and address.
    pub auth_throttle: client::auth_throttle::AuthThrottle,
    /// Clients and their secrets in memory, invalidated through `cache_generation`.
    pub clients: std::sync::Arc<client::cache::ClientCache>,
    /// Origins allowed to call the token and revocation endpoints from a browser.
    pub cors_origins: client::cors::AllowedOrigins,
    /// Per-client token-request counts.
    pub rate_limiter: client::ratelimit::RateLimiter,
    /// Peers whose client-address header is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The header a trusted proxy puts the client address in.
    pub client_ip_header: String,
    /// Batched last-used times and token counts.
    pub usage: usage::UsageRecorder,
    /// How often they are written, in seconds (shown in the admin area).
    pub usage_flush_seconds: u64,
    /// How long audit events are kept, in seconds (`PORTCULLIS_AUDIT_RETENTION_DAYS`).
    pub audit_retention_seconds: i64,
    /// Failed-login counts per username.
    pub login_throttle: user::throttle::LoginThrottle,
    /// Prometheus metrics.
    pub metrics: metrics::Metrics,
    /// Seals and opens the stored secrets (client_secret_jwt keys; signing keys in `keys`).
    pub master_key: seal::MasterKey,
    /// How long sign-in sessions last.
    pub sessions: user::sessions::SessionPolicy,
    /// The clock every expiry is decided by ([`Settings::clock`]).
    pub clock: clock::Clock,
}

impl AppState {
    /// What the use cases in [`manage`] need from this server.
    pub fn manage(&self) -> manage::Ctx<'_> {
        manage::Ctx {
            clients: &self.clients,
            master_key: &self.master_key,
        }
    }

    /// What the protocol core in [`crate::oauth`] needs from this server: references only,
    /// cheap enough to build on every token request.
    pub fn oauth(&self) -> crate::oauth::context::OAuthContext<'_> {
        crate::oauth::context::OAuthContext {
            pool: &self.pool,
            issuer: &self.issuer,
            audience: &self.audience,
            assertion_audiences: &self.assertion_audiences,
            access_token_ttl: self.access_token_ttl,
            admin_token_ttl: self.admin_token_ttl,
            refresh_token_ttl: self.refresh_token_ttl,
            keys: &self.keys,
            verifier: &self.verifier,
            argon2: &self.argon2,
            auth_throttle: &self.auth_throttle,
            clients: &self.clients,
            rate_limiter: &self.rate_limiter,
            usage: &self.usage,
            metrics: &self.metrics,
            master_key: &self.master_key,
            clock: &self.clock,
            batches: self.batches.as_ref(),
        }
    }
}
