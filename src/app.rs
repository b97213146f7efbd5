//! Start-up: the database made ready ([`prepare_database`], [`bootstrap`]), the server built and
//! bound ([`Application::build`]), run until stopped with its background jobs, and logging.

use std::net::TcpListener;

use actix_web::{App, HttpServer, middleware, web};

use crate::config::{LogFormat, Settings};
use crate::db::{self, Pool};
use crate::error::AppError;
use crate::{
    AppState, argon2_pool, client, http, jobs, memory, metrics, seal, secret, token, usage, user,
};

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
        let (key, source) = seal::master_key(
            settings.master_key.as_ref(),
            settings.master_key_file.as_deref(),
            &settings.database_url,
            conn,
        )?;
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
    issuer: String,
    server: actix_web::dev::Server,
    metrics_server: Option<actix_web::dev::Server>,
    metrics_port: Option<u16>,
    state: web::Data<AppState>,
    flush_interval: std::time::Duration,
    /// SQLite: the server checkpoints the WAL from a background job.
    sqlite: bool,
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
        let pages = web::Data::new(http::render::Pages::load().map_err(AppError::Internal)?);
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
        let writer = if settings.database_url.is_postgres() {
            db::writer::Writer::pool(pool.clone(), settings.db_timeout)
        } else {
            let one = db::build_pool_with(&settings.database_url, 1, settings.db_timeout)
                .map_err(|e| AppError::Internal(format!("cannot open the database: {e}")))?;
            db::writer::Writer::group(one, settings.db_timeout, metrics.batch_metrics())
                .map_err(|e| AppError::Internal(format!("cannot start the writer thread: {e}")))?
        };
        let batches = if settings.database_url.is_postgres() {
            Some(
                token::Batches::start(
                    &pool,
                    &settings.database_url,
                    settings.db_timeout,
                    &metrics.batch_metrics(),
                )
                .map_err(|e| AppError::Internal(format!("cannot start the batch threads: {e}")))?,
            )
        } else {
            None
        };
        let state = web::Data::new(AppState {
            pool,
            writer,
            batches,
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
                    .with_stale_max(settings.cache_stale_max)
                    .with_capacity(settings.client_cache_entries),
            ),
            rate_limiter: client::ratelimit::RateLimiter::default(),
            cors_origins,
            trusted_proxies: settings.trusted_proxies.clone(),
            client_ip_header: settings.client_ip_header.clone(),
            usage: usage::UsageRecorder::default(),
            usage_flush_seconds: settings.usage_flush_interval.as_secs(),
            audit_retention_seconds: settings.audit_retention_days * crate::limits::DAY,
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
                .app_data(pages.clone())
                .wrap(
                    middleware::DefaultHeaders::new()
                        .add(("X-Content-Type-Options", "nosniff"))
                        .add(("Referrer-Policy", "no-referrer")),
                )
                .wrap(middleware::from_fn(http::render::unavailable_sessions))
                .wrap(middleware::from_fn(http::refuse_control_characters))
                .wrap(middleware::from_fn(http::cors::cors))
                .wrap(middleware::from_fn(http::middleware::observe_request))
                .configure(|cfg| {
                    http::routes(
                        cfg,
                        http::session::middleware(
                            cookie_key.clone(),
                            secure_cookies,
                            server_state.pool.clone(),
                            server_state.batches.as_ref().map(|b| b.session.clone()),
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
            issuer,
            server,
            metrics_server,
            metrics_port,
            state,
            flush_interval: settings.usage_flush_interval,
            sqlite: !settings.database_url.is_postgres(),
            cache_interval: settings.client_cache_interval,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.addr.port()
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
        let flusher = tokio::spawn(jobs::flush_periodically(state.clone(), self.flush_interval));
        // With the client cache off, signing keys are still followed, every second.
        let every = if self.cache_interval.is_zero() {
            std::time::Duration::from_secs(1)
        } else {
            self.cache_interval
        };
        let watcher = tokio::spawn(jobs::watch_changes(state.clone(), every));
        let trimmer = tokio::spawn(memory::trim_periodically(std::time::Duration::from_secs(5)));
        let checkpointer = self.sqlite.then(|| {
            tokio::spawn(jobs::checkpoint_periodically(
                state.clone(),
                std::time::Duration::from_millis(200),
            ))
        });
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
        if let Some(c) = checkpointer {
            c.abort();
        }
        let final_flush = tokio::task::spawn_blocking(move || jobs::flush(&state)).await;
        if let Ok(Err(e)) | Err(e) = final_flush.map_err(|e| AppError::Internal(e.to_string())) {
            tracing::error!(error = %e, "could not write last-used times at shutdown");
        }
        result
    }
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
