//! portcullis: an OAuth2 authorization server.
//!
//! [`Application::build`] opens the database, migrates it, loads the signing keys and binds
//! the listener; `run_until_stopped` serves until SIGTERM/SIGINT and flushes batched state.

pub mod argon2_pool;
pub mod audit;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod consent;
pub mod crypto;
pub mod db;
pub mod error;
pub mod http;
pub mod manage;
pub mod memory;
pub mod metrics;
pub mod oauth;
pub mod seal;
pub mod secret;
pub mod text;
pub mod token;
pub mod usage;
pub mod user;

use std::net::TcpListener;

use actix_web::{App, HttpServer, middleware, web};

use config::{LogFormat, Settings};
use db::Pool;
use error::AppError;

/// State shared by every request.
pub struct AppState {
    /// Database pool.
    pub pool: Pool,
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
    /// The page templates.
    pub pages: http::render::Pages,
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

/// Opens the pool and brings the database up to date: migrations, the master key
/// ([`seal::master_key`]), then [`bootstrap`] (all under PostgreSQL's advisory lock, so that
/// instances starting together do not race). Returns the pool and the master key.
pub fn prepare_database(settings: &Settings) -> Result<(Pool, seal::MasterKey), AppError> {
    let pool = db::build_pool_with(
        &settings.database_url,
        settings.db_pool_size,
        settings.db_timeout,
    )
    .map_err(|e| {
        AppError::Internal(format!(
            "cannot open the database {:?}: {e}",
            settings.database_url
        ))
    })?;
    let mut conn = pool.get()?;
    let (key, created) = db::migrate_and(&mut conn, |conn| {
        let (key, source) = seal::master_key(settings, conn)?;
        Ok((
            key.clone(),
            bootstrap(conn, &key, &source, settings.clock.now())?,
        ))
    })?;
    drop(conn);
    if created {
        tracing::info!("created the first ES256 signing key");
    }
    Ok((pool, key))
}

/// First-start state, created once and shared by every instance: stored secrets sealed with
/// the master key (and checked to open with it, see [`seal::reseal`]), and the first ES256
/// signing key. Run it under the migration lock. True when a signing key
/// was created.
pub fn bootstrap(
    conn: &mut db::AnyConnection,
    master: &seal::MasterKey,
    source: &seal::KeySource,
    now: i64,
) -> Result<bool, AppError> {
    let sealed = seal::reseal(conn, master, None, source)?;
    if sealed.signing_keys + sealed.hmac_keys > 0 {
        tracing::info!(
            signing_keys = sealed.signing_keys,
            client_secret_jwt_keys = sealed.hmac_keys,
            "sealed the keys stored in plaintext with the master key"
        );
    }
    let created = token::ensure_signing_key(conn, now, master)?;
    Ok(created)
}

/// A built server, bound and ready to run.
pub struct Application {
    /// The bound address.
    pub addr: std::net::SocketAddr,
    port: u16,
    issuer: String,
    server: actix_web::dev::Server,
    metrics_server: Option<actix_web::dev::Server>,
    metrics_port: Option<u16>,
    state: web::Data<AppState>,
    flush_interval: std::time::Duration,
    cache_interval: std::time::Duration,
}

impl Application {
    /// Opens and migrates the database, loads the keys, and binds `settings.bind`.
    pub fn build(settings: Settings) -> Result<Application, AppError> {
        let (pool, master_key) = prepare_database(&settings)?;
        let keys = token::Keys::load(&mut *pool.get()?, master_key.clone())?;
        // Not stored anywhere: derived from the master key, so a copy of the database cannot
        // forge a cookie (and a forged cookie would still need a live session id).
        let cookie_key = master_key.cookie_key();
        let pages = http::render::Pages::load().map_err(AppError::Internal)?;
        let listener = TcpListener::bind(settings.bind)
            .map_err(|e| AppError::Internal(format!("cannot listen on {}: {e}", settings.bind)))?;
        let addr = listener
            .local_addr()
            .map_err(|e| AppError::Internal(e.to_string()))?;
        let issuer = settings.issuer.clone().unwrap_or_else(|| {
            let host = if addr.ip().is_unspecified() {
                "localhost".to_string()
            } else {
                addr.ip().to_string()
            };
            let host = if addr.is_ipv6() && host != "localhost" {
                format!("[{host}]")
            } else {
                host
            };
            format!("http://{host}:{}", addr.port())
        });
        let cors_origins = client::cors::AllowedOrigins::default();
        cors_origins.replace(
            client::store::enabled_redirect_uris(&mut *pool.get()?)?
                .iter()
                .map(String::as_str),
        );
        let metrics =
            metrics::Metrics::new().map_err(|e| AppError::Internal(format!("metrics: {e}")))?;
        let argon2 = argon2_pool::Argon2Pool::start(
            settings.argon2_concurrency,
            settings.argon2_queue,
            metrics.argon2_counter(),
        )
        .map_err(|e| AppError::Internal(format!("cannot start the argon2 threads: {e}")))?;
        let state = web::Data::new(AppState {
            pool,
            audience: settings.audience.clone().unwrap_or_else(|| issuer.clone()),
            assertion_audiences: client::assertion::accepted_audiences(
                &issuer,
                settings.assertion_accept_endpoint_audience,
            ),
            issuer: issuer.clone(),
            access_token_ttl: settings.access_token_ttl,
            admin_token_ttl: settings.admin_token_ttl,
            refresh_token_ttl: settings.refresh_token_ttl,
            keys,
            verifier: secret::SecretVerifier::default(),
            argon2,
            auth_throttle: client::auth_throttle::AuthThrottle::default(),
            clients: std::sync::Arc::new(
                client::cache::ClientCache::new(!settings.client_cache_interval.is_zero())
                    .with_stale_max(settings.cache_stale_max),
            ),
            rate_limiter: client::ratelimit::RateLimiter::default(),
            cors_origins,
            trusted_proxies: settings.trusted_proxies.clone(),
            client_ip_header: settings.client_ip_header.clone(),
            usage: usage::UsageRecorder::default(),
            usage_flush_seconds: settings.usage_flush_interval.as_secs(),
            audit_retention_seconds: settings.audit_retention_days * 86_400,
            pages,
            login_throttle: user::throttle::LoginThrottle::default(),
            master_key,
            sessions: user::sessions::SessionPolicy {
                idle_admin: settings.session_idle_seconds,
                idle_user: settings.user_session_idle_seconds,
                ..Default::default()
            },
            metrics,
            clock: settings.clock.clone(),
        });
        let secure_cookies = issuer.starts_with("https://");
        // PORTCULLIS_METRICS_BIND: /metrics on its own listener (e.g. a private interface),
        // and not on the main one.
        let (metrics_server, metrics_port) = match settings.metrics_bind {
            None => (None, None),
            Some(bind) => {
                let listener = TcpListener::bind(bind).map_err(|e| {
                    AppError::Internal(format!("cannot listen on {bind} (metrics): {e}"))
                })?;
                let port = listener
                    .local_addr()
                    .map_err(|e| AppError::Internal(e.to_string()))?
                    .port();
                let metrics_state = state.clone();
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(metrics_state.clone())
                        .configure(http::metrics_routes)
                })
                .workers(1)
                .disable_signals()
                .listen(listener)
                .map_err(|e| AppError::Internal(format!("cannot listen on {bind}: {e}")))?
                .run();
                (Some(server), Some(port))
            }
        };
        let metrics_elsewhere = metrics_server.is_some();
        let server_state = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(server_state.clone())
                .wrap(
                    middleware::DefaultHeaders::new()
                        .add(("X-Content-Type-Options", "nosniff"))
                        .add(("Referrer-Policy", "no-referrer")),
                )
                .wrap(middleware::from_fn(http::session::unavailable_sessions))
                .wrap(middleware::from_fn(http::refuse_control_characters))
                .wrap(middleware::from_fn(http::cors::cors))
                .wrap(middleware::from_fn(observe_request))
                .configure(|cfg| {
                    http::routes(
                        cfg,
                        http::session::middleware(
                            cookie_key.clone(),
                            secure_cookies,
                            server_state.pool.clone(),
                            server_state.sessions,
                            server_state.clock.clone(),
                        ),
                        metrics_elsewhere,
                    )
                })
        })
        .workers(settings.workers)
        .listen(listener)
        .map_err(|e| AppError::Internal(format!("cannot listen on {addr}: {e}")))?
        .run();
        Ok(Application {
            addr,
            port: addr.port(),
            issuer,
            server,
            metrics_server,
            metrics_port,
            state,
            flush_interval: settings.usage_flush_interval,
            cache_interval: settings.client_cache_interval,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the separate metrics listener, when `PORTCULLIS_METRICS_BIND` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_port
    }

    /// The issuer identifier.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The state the server shares between requests (tests watch the client cache).
    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// A handle that stops the server gracefully.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped (SIGTERM/SIGINT or the handle): stops accepting, lets in-flight
    /// requests finish, then writes the batched last-used times.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let state = self.state.clone();
        let flusher = tokio::spawn(flush_periodically(state.clone(), self.flush_interval));
        // With the client cache off, signing keys are still followed, every second.
        let every = if self.cache_interval.is_zero() {
            std::time::Duration::from_secs(1)
        } else {
            self.cache_interval
        };
        let watcher = tokio::spawn(watch_changes(state.clone(), every));
        let trimmer = tokio::spawn(memory::trim_periodically(std::time::Duration::from_secs(5)));
        let metrics = self.metrics_server.map(|server| {
            let handle = server.handle();
            (handle, tokio::spawn(server))
        });
        let result = self.server.await;
        // The metrics listener follows the main one.
        if let Some((handle, task)) = metrics {
            handle.stop(true).await;
            drop(task.await);
        }
        flusher.abort();
        watcher.abort();
        trimmer.abort();
        let final_flush = tokio::task::spawn_blocking(move || flush(&state)).await;
        if let Ok(Err(e)) | Err(e) = final_flush.map_err(|e| AppError::Internal(e.to_string())) {
            tracing::error!(error = %e, "could not write last-used times at shutdown");
        }
        result
    }
}

/// Writes the batched last-used times, and deletes expired codes, refresh tokens, token
/// families, revocation entries and sessions (nothing refers to them once they have expired)
/// and audit events past their retention.
fn flush(state: &AppState) -> Result<(), AppError> {
    let mut conn = state.pool.get()?;
    if !state.usage.is_empty() {
        state.usage.flush(&mut conn)?;
    }
    let now = state.clock.now();
    token::store::purge_expired(&mut conn, now)?;
    user::sessions::purge_expired(&mut conn, &state.sessions, now)?;
    audit::store::purge_before(&mut conn, now.saturating_sub(state.audit_retention_seconds))?;
    let longest = token::store::longest_access_ttl(&mut conn, state.access_token_ttl)?;
    for kid in token::retire_superseded(&mut conn, now, longest)? {
        tracing::info!(%kid, "retired a signing key: no unexpired token was signed with it");
    }
    Ok(())
}

async fn flush_periodically(state: web::Data<AppState>, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        let s = state.clone();
        match tokio::task::spawn_blocking(move || flush(&s)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "could not write last-used times; will retry"),
            Err(e) => tracing::warn!(error = %e, "last-used flush task failed"),
        }
    }
}

/// Polls `cache_generation`: drops cached clients when another writer changed one (see
/// [`client::cache`]) and reloads the signing keys when they changed, so a change anywhere is
/// seen here within one interval.
async fn watch_changes(state: web::Data<AppState>, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let s = state.clone();
        let read = tokio::task::spawn_blocking(move || -> Result<i64, AppError> {
            let mut conn = s.pool.get()?;
            // Signing keys follow the same way (a rotation at another instance).
            if s.keys.follow(&mut conn)? {
                tracing::info!("signing keys changed; reloaded");
            }
            let generation = client::store::generation(&mut conn)?;
            // The CORS origins follow the clients, before the new generation is recorded.
            if generation > s.clients.seen() {
                let uris = client::store::enabled_redirect_uris(&mut conn)?;
                s.cors_origins.replace(uris.iter().map(String::as_str));
            }
            Ok(generation)
        })
        .await;
        match read {
            Ok(Ok(generation)) => {
                if state.clients.observe(generation) {
                    tracing::debug!(generation, "clients changed; cache dropped");
                }
            }
            // The cached clients keep being served for PORTCULLIS_CACHE_STALE_MAX_MS after the
            // last successful poll (client_credentials needs no database), then refused: see
            // client::cache.
            Ok(Err(e)) => {
                tracing::warn!(
                    error = %e,
                    "could not check for client changes; serving cached clients for at most PORTCULLIS_CACHE_STALE_MAX_MS"
                );
            }
            Err(e) => tracing::warn!(error = %e, "client change check failed"),
        }
    }
}

/// Records each request in the metrics (endpoint = the matched route pattern) and logs it at
/// debug level: method, path (never the query, which may carry codes), status and duration.
/// Never headers or bodies.
async fn observe_request(
    req: actix_web::dev::ServiceRequest,
    next: middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let start = std::time::Instant::now();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let method = req.method().clone();
    let endpoint = req.match_pattern().unwrap_or_else(|| "other".into());
    let debug = tracing::enabled!(tracing::Level::DEBUG);
    let path = debug.then(|| req.path().to_string());
    let res = next.call(req).await?;
    let elapsed = start.elapsed();
    if let Some(state) = state {
        state.metrics.request(
            &endpoint,
            method.as_str(),
            res.status().as_str(),
            elapsed.as_secs_f64(),
        );
    }
    if let Some(path) = path {
        tracing::debug!(%method, %path, status = res.status().as_u16(), micros = elapsed.as_micros() as u64, "request");
    }
    Ok(res)
}

/// Installs the global tracing subscriber (text or JSON lines on stdout).
pub fn init_logging(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let _ = match settings.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Shared start-up used by `serve`: build, log where it listens, run.
pub async fn serve(settings: Settings) -> Result<(), AppError> {
    let app = Application::build(settings)?;
    tracing::info!(
        "portcullis listening on http://{} (issuer {}); create an admin with `portcullis admin create --username NAME --role admin` and a client with `portcullis client create --name NAME`",
        app.addr,
        app.issuer()
    );
    if let Some(port) = app.metrics_port() {
        tracing::info!(
            port,
            "metrics served on their own listener (PORTCULLIS_METRICS_BIND)"
        );
    }
    app.run_until_stopped()
        .await
        .map_err(|e| AppError::Internal(e.to_string()))
}
