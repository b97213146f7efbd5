//! Prometheus metrics, served at `GET /metrics` in the text exposition format: requests by
//! endpoint (the route pattern, so that paths with ids do not explode the label set) and
//! status, request latency, tokens issued by grant type, client-authentication failures by
//! reason, argon2 verifications by purpose, the database pool's connections, the cached clients,
//! and the batches of writes: on PostgreSQL the batched statements ([`crate::db::batcher`]), on
//! SQLite the writer's transactions ([`crate::db::writer`]): batches run, requests they
//! carried, and how long each took.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    tokens: IntCounterVec,
    auth_failures: IntCounterVec,
    argon2: IntCounterVec,
    pool_connections: IntGauge,
    pool_idle: IntGauge,
    cached_clients: IntGauge,
    batches: BatchMetrics,
}

/// What a batcher ([`crate::db::batcher::Batcher`]) counts, labelled by statement: batches
/// run, requests carried (their ratio is the mean batch size), and each statement's duration.
#[derive(Clone)]
pub struct BatchMetrics {
    batches: IntCounterVec,
    requests: IntCounterVec,
    duration: HistogramVec,
}

impl BatchMetrics {
    /// Counts one batch of `requests` requests of `statement` that ran for `seconds`.
    pub fn ran(&self, statement: &str, requests: usize, seconds: f64) {
        self.batches.with_label_values(&[statement]).inc();
        self.requests
            .with_label_values(&[statement])
            .inc_by(u64::try_from(requests).unwrap_or(u64::MAX));
        self.duration
            .with_label_values(&[statement])
            .observe(seconds);
    }
}

impl Metrics {
    /// Registers every metric. Fails only on a programming error (a duplicate name).
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new_custom(Some("portcullis".into()), None)?;
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by endpoint, method and status",
            ),
            &["endpoint", "method", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency").buckets(
                vec![
                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                    0.5, 1.0, 2.5,
                ],
            ),
            &["endpoint"],
        )?;
        let tokens = IntCounterVec::new(
            Opts::new("tokens_issued_total", "Access tokens issued by grant type"),
            &["grant_type"],
        )?;
        let auth_failures = IntCounterVec::new(
            Opts::new(
                "client_auth_failures_total",
                "Failed client authentications by reason",
            ),
            &["reason"],
        )?;
        let argon2 = IntCounterVec::new(
            Opts::new(
                "argon2_verifications_total",
                "argon2 verifications run, by purpose (client_secret, login)",
            ),
            &["purpose"],
        )?;
        let pool_connections = IntGauge::new(
            "db_pool_connections",
            "Open database connections in the pool",
        )?;
        let pool_idle = IntGauge::new("db_pool_idle_connections", "Idle pooled connections")?;
        let cached_clients = IntGauge::new(
            "client_cache_entries",
            "Clients in this instance's cache (filled at start, PORTCULLIS_CLIENT_CACHE_ENTRIES)",
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(tokens.clone()))?;
        registry.register(Box::new(auth_failures.clone()))?;
        registry.register(Box::new(argon2.clone()))?;
        registry.register(Box::new(pool_connections.clone()))?;
        registry.register(Box::new(pool_idle.clone()))?;
        registry.register(Box::new(cached_clients.clone()))?;
        let batches = BatchMetrics {
            batches: IntCounterVec::new(
                Opts::new(
                    "db_batches_total",
                    "Batched statements (PostgreSQL) and write transactions (SQLite, sqlite-write) run",
                ),
                &["statement"],
            )?,
            requests: IntCounterVec::new(
                Opts::new(
                    "db_batched_requests_total",
                    "Requests carried by batched statements, by statement",
                ),
                &["statement"],
            )?,
            duration: HistogramVec::new(
                HistogramOpts::new(
                    "db_batch_duration_seconds",
                    "How long one batched statement took, commit included",
                )
                .buckets(vec![
                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                    1.0,
                ]),
                &["statement"],
            )?,
        };
        registry.register(Box::new(batches.batches.clone()))?;
        registry.register(Box::new(batches.requests.clone()))?;
        registry.register(Box::new(batches.duration.clone()))?;
        Ok(Metrics {
            registry,
            requests,
            latency,
            tokens,
            auth_failures,
            argon2,
            pool_connections,
            pool_idle,
            cached_clients,
            batches,
        })
    }

    /// What the batchers count with.
    pub fn batch_metrics(&self) -> BatchMetrics {
        self.batches.clone()
    }

    /// Records a finished request.
    pub fn request(&self, endpoint: &str, method: &str, status: &str, seconds: f64) {
        self.requests
            .with_label_values(&[endpoint, method, status])
            .inc();
        self.latency.with_label_values(&[endpoint]).observe(seconds);
    }

    /// Counts an issued access token.
    pub fn token_issued(&self, grant_type: &str) {
        self.tokens.with_label_values(&[grant_type]).inc();
    }

    /// Counts a failed client authentication.
    pub fn auth_failed(&self, reason: &str) {
        self.auth_failures.with_label_values(&[reason]).inc();
    }

    /// The counter of argon2 verifications (by purpose), for the argon2 pool to count with.
    pub fn argon2_counter(&self) -> IntCounterVec {
        self.argon2.clone()
    }

    /// The text exposition of every metric, with the pool state and the number of cached
    /// clients read now.
    pub fn render(&self, pool: &crate::db::Pool, cached_clients: usize) -> String {
        self.cached_clients
            .set(i64::try_from(cached_clients).unwrap_or(i64::MAX));
        let state = pool.state();
        self.pool_connections.set(i64::from(state.connections));
        self.pool_idle.set(i64::from(state.idle_connections));
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "could not encode metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}
