//! Typed settings from an optional TOML file and `PORTCULLIS_*` environment variables
//! (the environment wins). Passed in, never global. A bad value fails at start with one
//! line naming the setting.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::db::DbUrl;
use crate::limits;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Every setting. Debug redacts the database password.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `PORTCULLIS_DATABASE_URL`: `sqlite://path`, a plain path, or `postgres://...`.
    pub database_url: DbUrl,
    /// `PORTCULLIS_BIND`: address to listen on (port 0 picks a free port).
    pub bind: SocketAddr,
    /// `PORTCULLIS_METRICS_BIND`: a separate address for `/metrics`; then the main listener
    /// does not serve it. None = `/metrics` on the main listener.
    pub metrics_bind: Option<SocketAddr>,
    /// `PORTCULLIS_ISSUER`: issuer URL in tokens and metadata; None = derived from the bound address.
    pub issuer: Option<String>,
    /// `PORTCULLIS_AUDIENCE`: `aud` of access tokens; None = the issuer.
    pub audience: Option<String>,
    /// `PORTCULLIS_ACCESS_TOKEN_TTL`: access-token lifetime in seconds (clients may override).
    pub access_token_ttl: i64,
    /// `PORTCULLIS_REFRESH_TOKEN_TTL`: refresh-token lifetime in seconds (clients may override).
    pub refresh_token_ttl: i64,
    /// `PORTCULLIS_ADMIN_TOKEN_TTL`: the longest lifetime, in seconds, of an access token that
    /// carries a `portcullis:` (admin API) scope, whatever the client's own lifetime.
    pub admin_token_ttl: i64,
    /// `PORTCULLIS_LOG_LEVEL`: a tracing filter such as `info` or `portcullis=debug`.
    pub log_level: String,
    /// `PORTCULLIS_LOG_FORMAT`: `text` or `json`.
    pub log_format: LogFormat,
    /// `PORTCULLIS_DB_POOL_SIZE`: maximum database connections of an instance's pool (on
    /// PostgreSQL each batched statement keeps one more, [`crate::token::Batches`]).
    pub db_pool_size: u32,
    /// `PORTCULLIS_WORKERS`: HTTP worker threads (default: one per core).
    pub workers: usize,
    /// `PORTCULLIS_USAGE_FLUSH_SECONDS`: how often batched last-used times are written.
    pub usage_flush_interval: Duration,
    /// `PORTCULLIS_AUDIT_RETENTION_DAYS`: audit events older than this many days are deleted
    /// by the periodic purge.
    pub audit_retention_days: i64,
    /// `PORTCULLIS_CLIENT_CACHE_MS`: how often cached clients are checked for changes made
    /// elsewhere; zero turns the cache off.
    pub client_cache_interval: Duration,
    /// `PORTCULLIS_CLIENT_CACHE_ENTRIES`: how many clients the cache holds at most (past it,
    /// the least likely to be asked for again are evicted one by one).
    pub client_cache_entries: usize,
    /// `PORTCULLIS_DB_TIMEOUT_MS`: the longest a request waits for a database connection, and
    /// on PostgreSQL for a connection attempt or a statement; then it answers 503.
    pub db_timeout: Duration,
    /// `PORTCULLIS_CACHE_STALE_MAX_MS`: while the database cannot be reached, cached clients
    /// keep being served for this long after the last successful change poll (so a disable may
    /// take this long to apply during an outage); then 503.
    pub cache_stale_max: Duration,
    /// `PORTCULLIS_TRUSTED_PROXIES`: peers whose client-address header is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `PORTCULLIS_CLIENT_IP_HEADER`: the header a trusted proxy puts the client address in.
    pub client_ip_header: String,
    /// `PORTCULLIS_MASTER_KEY`: 32 bytes, base64; seals the signing keys and the
    /// client_secret_jwt keys stored in the database. None = `master_key_file`, or the key file
    /// beside a SQLite database (see [`crate::seal::master_key`]).
    pub master_key: Option<crate::seal::MasterKey>,
    /// `PORTCULLIS_MASTER_KEY_FILE`: a file holding the master key (instead of the setting).
    pub master_key_file: Option<std::path::PathBuf>,
    /// `PORTCULLIS_ARGON2_CONCURRENCY`: argon2 verifications run at once (default: one per core).
    pub argon2_concurrency: usize,
    /// `PORTCULLIS_ARGON2_QUEUE`: argon2 verifications that may wait; beyond, 503.
    pub argon2_queue: usize,
    /// `PORTCULLIS_SESSION_IDLE_SECONDS`: an admin-area account (admin, readonly) is signed
    /// out after this long without a request.
    pub session_idle_seconds: i64,
    /// `PORTCULLIS_USER_SESSION_IDLE_SECONDS`: a person who only authorizes apps (role user)
    /// is signed out after this long without a request.
    pub user_session_idle_seconds: i64,
    /// `PORTCULLIS_ASSERTION_ACCEPT_ENDPOINT_AUDIENCE`: client assertions may also name the
    /// token, introspection or revocation endpoint URL as `aud` (default: the issuer only).
    pub assertion_accept_endpoint_audience: bool,
    /// Not a setting: the clock every expiry is decided by. The system's, except in tests,
    /// which set and step a manual one (issue 11: clock steps).
    pub clock: crate::clock::Clock,
}

/// The settings and their defaults, in the order the README lists them.
pub const SETTINGS: &[(&str, &str)] = &[
    ("database_url", "sqlite://portcullis.db"),
    ("bind", "127.0.0.1:8080"),
    ("metrics_bind", ""),
    ("issuer", ""),
    ("audience", ""),
    ("access_token_ttl", "3600"),
    ("refresh_token_ttl", "2592000"),
    ("admin_token_ttl", "600"),
    ("log_level", "info"),
    ("log_format", "text"),
    ("db_pool_size", "10"),
    ("workers", "0"),
    ("usage_flush_seconds", "60"),
    ("audit_retention_days", "365"),
    ("client_cache_ms", "1000"),
    ("client_cache_entries", "100000"),
    ("db_timeout_ms", "2000"),
    ("cache_stale_max_ms", "30000"),
    ("trusted_proxies", ""),
    ("client_ip_header", "X-Forwarded-For"),
    ("master_key", ""),
    ("master_key_file", ""),
    ("argon2_concurrency", "0"),
    ("argon2_queue", "0"),
    ("assertion_accept_endpoint_audience", "false"),
    ("session_idle_seconds", "1800"),
    ("user_session_idle_seconds", "7200"),
];

/// The master key [`Settings::for_tests`] uses (base64 of 32 bytes): every test server on one
/// database must share it. Never use it for anything but tests.
pub const TEST_MASTER_KEY: &str = "dGVzdC1vbmx5LW1hc3Rlci1rZXktMzItYnl0ZXMhISE=";

/// A setting that could not be used. The message names the setting and says what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn env_name(key: &str) -> String {
    format!("PORTCULLIS_{}", key.to_uppercase())
}

impl Settings {
    /// Loads the settings from a TOML file (optional) and an environment lookup.
    pub fn from_sources(
        config_file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        let mut values: BTreeMap<&str, (String, String)> = BTreeMap::new();
        for (key, default) in SETTINGS {
            values.insert(
                key,
                (
                    (*default).to_string(),
                    format!("default of {}", env_name(key)),
                ),
            );
        }
        if let Some(path) = config_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError(format!("config file {}: {e}", path.display())))?;
            let table: toml::Table = toml::from_str(&text)
                .map_err(|e| ConfigError(format!("config file {}: {e}", path.display())))?;
            for (key, value) in table {
                let Some((known, _)) = SETTINGS.iter().find(|(k, _)| *k == key) else {
                    return Err(ConfigError(format!(
                        "config file {}: unknown setting '{key}' (known: {})",
                        path.display(),
                        SETTINGS
                            .iter()
                            .map(|(k, _)| *k)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                };
                let value = match value {
                    toml::Value::String(s) => s,
                    toml::Value::Integer(i) => i.to_string(),
                    toml::Value::Boolean(b) => b.to_string(),
                    other => {
                        return Err(ConfigError(format!(
                            "config file {}: '{key}' must be a string, an integer or a boolean, got {other}",
                            path.display()
                        )));
                    }
                };
                values.insert(known, (value, format!("'{key}' in {}", path.display())));
            }
        }
        for (key, _) in SETTINGS {
            let name = env_name(key);
            if let Some(v) = env(&name) {
                values.insert(key, (v, name));
            }
        }
        let get = |key: &str| -> (&str, &str) {
            let (v, source) = &values[key];
            (v.trim(), source.as_str())
        };
        let fail = |source: &str, msg: String| ConfigError(format!("invalid {source}: {msg}"));

        let (v, src) = get("database_url");
        let database_url = DbUrl::parse(v).map_err(|m| fail(src, m))?;

        let (v, src) = get("bind");
        let bind: SocketAddr = v.parse().map_err(|_| {
            fail(
                src,
                format!("'{v}' is not an address like 127.0.0.1:8080 or [::]:8080"),
            )
        })?;

        let (v, src) = get("metrics_bind");
        let metrics_bind = if v.is_empty() {
            None
        } else {
            Some(v.parse::<SocketAddr>().map_err(|_| {
                fail(
                    src,
                    format!("'{v}' is not an address like 127.0.0.1:9100 or [::]:9100"),
                )
            })?)
        };

        let (v, src) = get("issuer");
        let issuer = if v.is_empty() {
            None
        } else {
            Some(parse_issuer(v).map_err(|m| fail(src, m))?)
        };

        let (v, src) = get("audience");
        let audience = if v.is_empty() {
            None
        } else {
            Some(v.to_string())
        };
        if audience
            .as_deref()
            .is_some_and(|a| a.chars().any(char::is_whitespace))
        {
            return Err(fail(src, "must not contain spaces".into()));
        }

        let (v, src) = get("access_token_ttl");
        let access_token_ttl =
            parse_limit(v, &limits::ACCESS_TOKEN_TTL).map_err(|m| fail(src, m))?;

        let (v, src) = get("refresh_token_ttl");
        let refresh_token_ttl =
            parse_limit(v, &limits::REFRESH_TOKEN_TTL).map_err(|m| fail(src, m))?;

        let (v, src) = get("admin_token_ttl");
        let admin_token_ttl = parse_limit(v, &limits::ADMIN_TOKEN_TTL).map_err(|m| fail(src, m))?;

        let (v, src) = get("log_level");
        if tracing_subscriber::EnvFilter::try_new(v).is_err() {
            return Err(fail(
                src,
                format!("'{v}' is not a log filter such as 'info' or 'portcullis=debug'"),
            ));
        }
        let log_level = v.to_string();

        let (v, src) = get("log_format");
        let log_format = match v {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            _ => return Err(fail(src, format!("'{v}' is neither 'text' nor 'json'"))),
        };

        let (v, src) = get("db_pool_size");
        let db_pool_size = parse_positive(v, 1000).map_err(|m| fail(src, m))? as u32;

        let (v, src) = get("workers");
        let workers = match v.parse::<usize>() {
            Ok(0) => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            Ok(n) if n <= 1024 => n,
            _ => {
                return Err(fail(
                    src,
                    format!("'{v}' is not a number of threads (0 = one per core)"),
                ));
            }
        };

        let (v, src) = get("usage_flush_seconds");
        let usage_flush_interval =
            Duration::from_secs(parse_positive(v, 3600).map_err(|m| fail(src, m))?);

        let (v, src) = get("audit_retention_days");
        let audit_retention_days = parse_positive(v, 36_500).map_err(|m| fail(src, m))? as i64;

        let (v, src) = get("client_cache_ms");
        let client_cache_interval = match v.parse::<u64>() {
            Ok(ms) if ms <= 60_000 => Duration::from_millis(ms),
            _ => {
                return Err(fail(
                    src,
                    format!("'{v}' is not a number of milliseconds from 0 (no cache) to 60000"),
                ));
            }
        };

        let (v, src) = get("client_cache_entries");
        let client_cache_entries =
            parse_positive(v, 100_000_000).map_err(|m| fail(src, m))? as usize;

        let (v, src) = get("db_timeout_ms");
        let db_timeout = match v.parse::<u64>() {
            Ok(ms) if (100..=600_000).contains(&ms) => Duration::from_millis(ms),
            _ => {
                return Err(fail(
                    src,
                    format!("'{v}' is not a number of milliseconds from 100 to 600000"),
                ));
            }
        };

        let (v, src) = get("cache_stale_max_ms");
        let cache_stale_max = match v.parse::<u64>() {
            Ok(ms) if ms <= 86_400_000 => Duration::from_millis(ms),
            _ => {
                return Err(fail(
                    src,
                    format!("'{v}' is not a number of milliseconds from 0 to 86400000"),
                ));
            }
        };

        let (v, src) = get("trusted_proxies");
        let mut trusted_proxies = Vec::new();
        for entry in v.split([',', ' ']).filter(|e| !e.is_empty()) {
            trusted_proxies.push(crate::client::parse_ip_net(entry).map_err(|m| fail(src, m))?);
        }

        let (v, src) = get("client_ip_header");
        let client_ip_header = v.to_string();
        if actix_web::http::header::HeaderName::from_bytes(client_ip_header.as_bytes()).is_err() {
            return Err(fail(src, format!("'{v}' is not an HTTP header name")));
        }

        let (v, src) = get("master_key");
        let master_key = if v.is_empty() {
            None
        } else {
            Some(crate::seal::MasterKey::parse(v).map_err(|m| fail(src, m))?)
        };
        let master_key_source = src.to_string();
        let (v, src) = get("master_key_file");
        let master_key_file = if v.is_empty() {
            None
        } else {
            Some(std::path::PathBuf::from(v))
        };
        if master_key.is_some() && master_key_file.is_some() {
            return Err(fail(
                src,
                format!("give the master key once: {master_key_source} is set too"),
            ));
        }

        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let (v, src) = get("argon2_concurrency");
        let argon2_concurrency = match v.parse::<usize>() {
            Ok(0) => cores,
            Ok(n) if n <= 256 => n,
            _ => {
                return Err(fail(
                    src,
                    format!("'{v}' is not a number of threads from 0 (one per core) to 256"),
                ));
            }
        };
        let (v, src) = get("argon2_queue");
        let argon2_queue = match v.parse::<usize>() {
            Ok(0) => 8 * argon2_concurrency,
            Ok(n) if n <= 100_000 => n,
            _ => {
                return Err(fail(
                    src,
                    format!("'{v}' is not a queue length from 0 (8 per thread) to 100000"),
                ));
            }
        };

        let (v, src) = get("assertion_accept_endpoint_audience");
        let assertion_accept_endpoint_audience = parse_bool(v).map_err(|m| fail(src, m))?;

        // Sessions end after 12 hours whatever their use: a longer idle timeout means nothing.
        let (v, src) = get("session_idle_seconds");
        let session_idle_seconds = parse_positive(v, 12 * 3600).map_err(|m| fail(src, m))? as i64;
        let (v, src) = get("user_session_idle_seconds");
        let user_session_idle_seconds =
            parse_positive(v, 12 * 3600).map_err(|m| fail(src, m))? as i64;

        Ok(Settings {
            database_url,
            bind,
            metrics_bind,
            issuer,
            audience,
            access_token_ttl,
            refresh_token_ttl,
            admin_token_ttl,
            log_level,
            log_format,
            db_pool_size,
            workers,
            usage_flush_interval,
            audit_retention_days,
            client_cache_interval,
            client_cache_entries,
            db_timeout,
            cache_stale_max,
            trusted_proxies,
            client_ip_header,
            master_key,
            master_key_file,
            argon2_concurrency,
            argon2_queue,
            assertion_accept_endpoint_audience,
            session_idle_seconds,
            user_session_idle_seconds,
            clock: crate::clock::Clock::system(),
        })
    }

    /// Settings for a server on `database_url` listening on a free loopback port (tests).
    pub fn for_tests(database_url: &str) -> Settings {
        #[allow(clippy::expect_used)] // constant, valid inputs
        let mut s = Settings::from_sources(None, |_| None).expect("defaults are valid");
        #[allow(clippy::expect_used)]
        let url = DbUrl::parse(database_url).expect("valid test database URL");
        s.database_url = url;
        s.bind = SocketAddr::from(([127, 0, 0, 1], 0));
        s.workers = 2;
        s.db_pool_size = 4;
        #[allow(clippy::expect_used)]
        let key = crate::seal::MasterKey::parse(TEST_MASTER_KEY).expect("valid test key");
        s.master_key = Some(key);
        s
    }
}

fn parse_bool(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" | "" => Ok(false),
        _ => Err(format!("'{v}' is neither 'true' nor 'false'")),
    }
}

/// A number of seconds within one of the [`limits`].
fn parse_limit(v: &str, limit: &limits::Limit) -> Result<i64, String> {
    let n: i64 = v
        .parse()
        .map_err(|_| format!("'{v}' is not a whole number of seconds"))?;
    limit.check(n).map_err(|m| format!("'{v}': {m}"))
}

fn parse_positive(v: &str, max: u64) -> Result<u64, String> {
    match v.parse::<u64>() {
        Ok(n) if n >= 1 && n <= max => Ok(n),
        _ => Err(format!("'{v}' is not a whole number from 1 to {max}")),
    }
}

/// RFC 8414 2: the issuer is an https (or, for local use, http) URL with no query or fragment.
fn parse_issuer(v: &str) -> Result<String, String> {
    let url = url::Url::parse(v).map_err(|e| format!("'{v}' is not a URL: {e}"))?;
    if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
        return Err(format!("'{v}' must be an https:// URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "'{v}' must not have a query or fragment (RFC 8414 2)"
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn defaults() {
        let s = Settings::from_sources(None, |_| None).unwrap();
        assert_eq!(s.database_url, DbUrl::Sqlite("portcullis.db".into()));
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.access_token_ttl, 3600);
    }

    #[test]
    fn bad_values_name_the_setting() {
        let e = Settings::from_sources(None, env(&[("PORTCULLIS_ACCESS_TOKEN_TTL", "soon")]))
            .unwrap_err();
        assert!(e.0.contains("PORTCULLIS_ACCESS_TOKEN_TTL"), "{e}");
        let e = Settings::from_sources(None, env(&[("PORTCULLIS_DATABASE_URL", "mysql://x")]))
            .unwrap_err();
        assert!(e.0.contains("PORTCULLIS_DATABASE_URL"), "{e}");
        let e = Settings::from_sources(None, env(&[("PORTCULLIS_ISSUER", "https://x/?a=b")]))
            .unwrap_err();
        assert!(e.0.contains("PORTCULLIS_ISSUER"), "{e}");
    }

    #[test]
    fn the_master_key_is_given_once_and_never_shown() {
        const KEY: &str = "dGVzdC1vbmx5LW1hc3Rlci1rZXktMzItYnl0ZXMhISE=";
        let key = KEY;
        let e = Settings::from_sources(
            None,
            env(&[
                ("PORTCULLIS_MASTER_KEY", KEY),
                ("PORTCULLIS_MASTER_KEY_FILE", "/run/key"),
            ]),
        )
        .unwrap_err();
        assert!(e.0.contains("PORTCULLIS_MASTER_KEY_FILE"), "{e}");
        let e = Settings::from_sources(None, env(&[("PORTCULLIS_MASTER_KEY", "c2hvcnQ=")]))
            .unwrap_err();
        assert!(
            e.0.contains("PORTCULLIS_MASTER_KEY") && e.0.contains("32 bytes"),
            "{e}"
        );
        let s = Settings::from_sources(None, env(&[("PORTCULLIS_MASTER_KEY", KEY)])).unwrap();
        assert!(s.master_key.is_some());
        assert!(!format!("{s:?}").contains(key));
    }

    #[test]
    fn outage_settings_have_defaults_and_bounds() {
        let s = Settings::from_sources(None, |_| None).unwrap();
        assert_eq!(s.db_timeout, Duration::from_millis(2000));
        assert_eq!(s.cache_stale_max, Duration::from_millis(30_000));
        for (name, bad) in [
            ("PORTCULLIS_DB_TIMEOUT_MS", "0"),
            ("PORTCULLIS_DB_TIMEOUT_MS", "soon"),
            ("PORTCULLIS_CACHE_STALE_MAX_MS", "-1"),
        ] {
            let e =
                Settings::from_sources(None, |k| (k == name).then(|| bad.to_string())).unwrap_err();
            assert!(e.0.contains(name), "{e}");
        }
    }

    #[test]
    fn the_client_cache_size_has_a_default_and_bounds() {
        let s = Settings::from_sources(None, |_| None).unwrap();
        assert_eq!(s.client_cache_entries, 100_000);
        let name = "PORTCULLIS_CLIENT_CACHE_ENTRIES";
        let s = Settings::from_sources(None, |k| (k == name).then(|| "1100000".into())).unwrap();
        assert_eq!(s.client_cache_entries, 1_100_000);
        for bad in ["0", "many", "100000001"] {
            let e =
                Settings::from_sources(None, |k| (k == name).then(|| bad.to_string())).unwrap_err();
            assert!(e.0.contains(name), "{e}");
        }
    }

    #[test]
    fn audit_retention_has_a_default_and_bounds() {
        let s = Settings::from_sources(None, |_| None).unwrap();
        assert_eq!(s.audit_retention_days, 365);
        let name = "PORTCULLIS_AUDIT_RETENTION_DAYS";
        let s = Settings::from_sources(None, |k| (k == name).then(|| "30".to_string())).unwrap();
        assert_eq!(s.audit_retention_days, 30);
        for bad in ["0", "36501", "forever"] {
            let e =
                Settings::from_sources(None, |k| (k == name).then(|| bad.to_string())).unwrap_err();
            assert!(e.0.contains(name), "{e}");
        }
    }

    #[test]
    fn debug_redacts_the_database_password() {
        let s = Settings::from_sources(
            None,
            env(&[("PORTCULLIS_DATABASE_URL", "postgres://u:hunter2@db/x")]),
        )
        .unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
