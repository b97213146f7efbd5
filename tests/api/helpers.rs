//! spawn_app: the real server on port 0 over a fresh SQLite file or a fresh PostgreSQL
//! database (dropped afterwards), and helpers that act like an admin or a client.

use std::time::Duration;

use diesel::{Connection, RunQueryDsl};
use portcullis::Application;
use portcullis::client::NewClient;
use portcullis::config::Settings;
use portcullis::db::{DbUrl, Pool};

/// The `error_description` of every refused client authentication (whatever the reason).
pub const GENERIC_REFUSAL: &str = "client authentication failed";

/// The master key of test servers ([`Settings::for_tests`]).
pub fn test_master_key() -> portcullis::seal::MasterKey {
    portcullis::seal::MasterKey::parse(portcullis::config::TEST_MASTER_KEY).unwrap()
}

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database that exists for one test.
pub struct TestDb {
    pub url: String,
    pub sqlite_path: Option<std::path::PathBuf>,
    pg: Option<(String, String)>,
    pub dir: tempfile::TempDir,
}

/// Why a PostgreSQL test that was compiled to run cannot: build.rs saw
/// PORTCULLIS_TEST_POSTGRES_URL, the running test binary does not.
pub const NO_POSTGRES: &str =
    "built with PORTCULLIS_TEST_POSTGRES_URL but run without it: set it, or rebuild without it";

/// The PostgreSQL server for tests, when configured (`.ci/run` sets it and requires it).
pub fn postgres_admin_url() -> Option<String> {
    std::env::var("PORTCULLIS_TEST_POSTGRES_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

impl TestDb {
    pub fn new(backend: Backend) -> Option<TestDb> {
        let dir = tempfile::tempdir().unwrap();
        match backend {
            Backend::Sqlite => {
                let path = dir.path().join("portcullis.db");
                Some(TestDb {
                    url: format!("sqlite://{}", path.display()),
                    sqlite_path: Some(path),
                    pg: None,
                    dir,
                })
            }
            Backend::Postgres => {
                let admin = postgres_admin_url()?;
                let name = format!(
                    "portcullis_test_{}",
                    portcullis::crypto::unique_id()
                        .to_lowercase()
                        .replace(['-', '_'], "x")
                );
                let mut conn = diesel::PgConnection::establish(&admin).unwrap_or_else(|e| {
                    panic!("PORTCULLIS_TEST_POSTGRES_URL is set but unreachable: {e}")
                });
                diesel::sql_query(format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .unwrap();
                let mut url = url::Url::parse(&admin).unwrap();
                url.set_path(&name);
                Some(TestDb {
                    url: url.to_string(),
                    sqlite_path: None,
                    pg: Some((admin, name)),
                    dir,
                })
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = &self.pg
            && let Ok(mut conn) = diesel::PgConnection::establish(admin)
        {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut conn);
        }
    }
}

/// A running server.
pub struct TestApp {
    pub address: String,
    /// `http://127.0.0.1:PORT` of the separate metrics listener, when one is configured.
    pub metrics_address: Option<String>,
    pub issuer: String,
    pub pool: Pool,
    pub http: reqwest::Client,
    pub state: actix_web::web::Data<portcullis::AppState>,
    handle: actix_web::dev::ServerHandle,
    pub db: TestDb,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

/// Starts the server on `backend`; None when the backend is PostgreSQL and no server is configured.
pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |_| {}).await
}

/// Like [`spawn_app`], with settings changed by `customize`.
pub async fn spawn_app_with(
    backend: Backend,
    customize: impl FnOnce(&mut Settings),
) -> Option<TestApp> {
    Some(spawn_app_on(TestDb::new(backend)?, customize))
}

/// Starts the server on an existing database.
pub fn spawn_app_on(db: TestDb, customize: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = Settings::for_tests(&db.url);
    settings.usage_flush_interval = Duration::from_secs(1);
    settings.client_cache_interval = Duration::from_millis(10);
    customize(&mut settings);
    let app = Application::build(settings).expect("the server starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let metrics_address = app.metrics_port().map(|p| format!("http://127.0.0.1:{p}"));
    let issuer = app.issuer().to_string();
    let handle = app.handle();
    let state = app.state();
    tokio::spawn(app.run_until_stopped());
    let pool = portcullis::db::build_pool(&DbUrl::parse(&db.url).unwrap(), 2).unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    TestApp {
        address,
        metrics_address,
        issuer,
        pool,
        http,
        state,
        handle,
        db,
    }
}

/// Runs the async fn `name(app: TestApp)` defined after it once on SQLite and once on
/// PostgreSQL, as the tests `name::sqlite` and `name::postgres`. The fn stays outside the macro
/// so that rustfmt formats it. The PostgreSQL variant is compiled as ignored (and shown as such)
/// when PORTCULLIS_TEST_POSTGRES_URL was unset at build time (build.rs); `.ci/run` sets it.
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident) => {
        $crate::on_both_backends_with!($name, |_| {});
    };
}

/// Who seeds test fixtures, in the audit log: fixtures go through the same use cases
/// (`portcullis::manage`) as the admin area, the JSON API and the CLI.
pub fn fixture() -> portcullis::manage::Actor {
    portcullis::manage::Actor {
        username: "test-fixture".into(),
        remote_addr: "local".into(),
    }
}

/// A registered client as a test sees it.
pub struct TestClient {
    pub client_id: String,
    pub secret: String,
    pub secret_id: i64,
}

impl TestApp {
    pub fn token_url(&self) -> String {
        format!("{}/oauth/token", self.address)
    }

    /// Registers a confidential client allowed `scopes`, as `portcullis client create` does.
    pub fn create_client(&self, name: &str, scopes: &[&str]) -> TestClient {
        self.create_client_with(NewClient {
            name: name.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        })
    }

    pub fn create_client_with(&self, new: NewClient) -> TestClient {
        let new = new.validate().unwrap();
        let mut conn = self.pool.get().unwrap();
        let (client, secret) = portcullis::manage::create_client(
            &mut conn,
            &self.state.manage(),
            &fixture(),
            &new,
            true,
            self.state.clock.now(),
        )
        .unwrap();
        let secret_id = portcullis::secret::store::list(&mut conn, client.id)
            .unwrap()
            .first()
            .map(|s| s.id.0)
            .unwrap_or(0);
        TestClient {
            client_id: client.client_id,
            secret: secret.unwrap_or_default(),
            secret_id,
        }
    }

    /// Adds a secret (generated when `value` is None) expiring at `expires_at`.
    pub fn add_secret(
        &self,
        client_id: &str,
        value: Option<&str>,
        expires_at: Option<i64>,
    ) -> (i64, String) {
        let mut conn = self.pool.get().unwrap();
        let client = portcullis::client::store::find(&mut conn, client_id)
            .unwrap()
            .unwrap();
        let (row, generated) = portcullis::manage::add_secret(
            &mut conn,
            &self.state.manage(),
            &fixture(),
            &client,
            &portcullis::manage::SecretInput {
                description: "test",
                expires_at,
                value,
            },
            self.state.clock.now(),
        )
        .unwrap();
        self.await_client_cache();
        (
            row.id.0,
            generated.unwrap_or_else(|| value.unwrap().to_string()),
        )
    }

    pub fn delete_secret(&self, secret_id: i64) {
        assert!(
            portcullis::secret::store::delete(
                &mut self.pool.get().unwrap(),
                portcullis::ids::SecretId(secret_id),
            )
            .unwrap()
        );
        self.await_client_cache();
    }

    /// Waits until the server has seen every change made so far to clients and secrets (its
    /// cache polls for them every 10 ms in tests; the default is 1 s).
    pub fn await_client_cache(&self) {
        let generation =
            portcullis::client::store::generation(&mut self.pool.get().unwrap()).unwrap();
        let started = std::time::Instant::now();
        while self.state.clients.polled() < generation {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the server did not notice a client change within 10 s"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    pub fn set_enabled(&self, client_id: &str, enabled: bool) {
        assert!(
            portcullis::client::store::set_enabled(
                &mut self.pool.get().unwrap(),
                client_id,
                enabled,
                self.state.clock.now()
            )
            .unwrap()
        );
        self.await_client_cache();
    }

    /// POST /oauth/token with a form body and client_secret_basic.
    pub async fn token_basic(
        &self,
        id: &str,
        secret: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        self.http
            .post(self.token_url())
            .basic_auth(id, Some(secret))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// POST /oauth/token with client_secret_post.
    pub async fn token_post(
        &self,
        id: &str,
        secret: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut form: Vec<(&str, &str)> = form.to_vec();
        form.push(("client_id", id));
        form.push(("client_secret", secret));
        self.http
            .post(self.token_url())
            .form(&form)
            .send()
            .await
            .unwrap()
    }
}

/// Asserts an RFC 6749 5.2 error: status, `error` code, a description, and no oxide-auth keys.
pub async fn assert_oauth_error(
    resp: reqwest::Response,
    status: u16,
    error: &str,
) -> serde_json::Value {
    assert_eq!(resp.status().as_u16(), status, "status");
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    assert!(
        body.get("description").is_none(),
        "oxide-auth's key leaked: {body}"
    );
    body
}

pub const GRANT_CC: (&str, &str) = ("grant_type", "client_credentials");

impl TestApp {
    /// Creates a user with a role and password directly in the database.
    pub fn create_user(&self, username: &str, password: &str, role: portcullis::user::Role) {
        let hash = portcullis::crypto::argon2_hash(password.as_bytes()).unwrap();
        let mut conn = self.pool.get().unwrap();
        portcullis::user::store::insert(&mut conn, username, &hash, role, 1_700_000_000).unwrap();
    }

    /// The CLI against this server's database, with the master key the server was given.
    pub fn cli(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"));
        cmd.arg("--database-url")
            .arg(&self.db.url)
            .env_remove("PORTCULLIS_DATABASE_URL")
            .env_remove("PORTCULLIS_MASTER_KEY_FILE")
            .env("PORTCULLIS_MASTER_KEY", portcullis::config::TEST_MASTER_KEY);
        cmd
    }

    /// A browser-like client: keeps cookies, does not follow redirects.
    pub fn browser(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }
}

/// The value of `<input name="NAME" value="...">` in a page.
pub fn form_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_string())
}

/// Loads the login page and signs in; returns the final response of the POST.
pub async fn sign_in(
    app: &TestApp,
    browser: &reqwest::Client,
    username: &str,
    password: &str,
    next: &str,
) -> reqwest::Response {
    let page = browser
        .get(format!("{}/login?next={}", app.address, urlencode(next)))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let csrf = form_value(&html, "csrf_token").expect("the login form has a CSRF token");
    browser
        .post(format!("{}/login", app.address))
        .form(&[
            ("username", username),
            ("password", password),
            ("csrf_token", &csrf),
            ("next", next),
        ])
        .send()
        .await
        .unwrap()
}

/// Form-urlencodes one value.
pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The status of a client_credentials request with client_secret_basic.
pub async fn token_status(app: &TestApp, id: &str, secret: &str) -> u16 {
    app.token_basic(id, secret, &[GRANT_CC])
        .await
        .status()
        .as_u16()
}

/// The value of one Prometheus sample on `/metrics` (`name{labels}` exactly as exposed), 0
/// when it has not been exposed yet.
pub async fn metric(app: &TestApp, sample: &str) -> f64 {
    metric_at(&app.http, &app.metrics_base(), sample).await
}

/// [`metric`] of the server whose `/metrics` is at `base` (another instance, say).
pub async fn metric_at(http: &reqwest::Client, base: &str, sample: &str) -> f64 {
    let body = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    body.lines()
        .find_map(|l| l.strip_prefix(sample)?.trim().parse().ok())
        .unwrap_or(0.0)
}

impl TestApp {
    /// Where `/metrics` is served.
    pub fn metrics_base(&self) -> String {
        self.metrics_address
            .clone()
            .unwrap_or_else(|| self.address.clone())
    }
}

/// Runs the async fn `name(db: TestDb)` defined after it on a fresh SQLite database and a
/// fresh PostgreSQL database (ignored as in `on_both_backends!`), for tests that drive the
/// binary (the CLI, several processes) rather than an in-process server.
#[macro_export]
macro_rules! on_both_databases {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = $crate::helpers::TestDb::new($crate::helpers::Backend::Sqlite).unwrap();
                super::$name(db).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[cfg_attr(
                not(portcullis_test_postgres),
                ignore = "PORTCULLIS_TEST_POSTGRES_URL is not set"
            )]
            async fn postgres() {
                let db = $crate::helpers::TestDb::new($crate::helpers::Backend::Postgres)
                    .expect($crate::helpers::NO_POSTGRES);
                super::$name(db).await
            }
        }
    };
}

/// Like `on_both_backends!`, with the settings changed first by `customize`
/// (`on_both_backends_with!(name, |s| s.x = y);`).
#[macro_export]
macro_rules! on_both_backends_with {
    ($name:ident, $customize:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app =
                    $crate::helpers::spawn_app_with($crate::helpers::Backend::Sqlite, $customize)
                        .await
                        .unwrap();
                super::$name(app).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[cfg_attr(
                not(portcullis_test_postgres),
                ignore = "PORTCULLIS_TEST_POSTGRES_URL is not set"
            )]
            async fn postgres() {
                let app =
                    $crate::helpers::spawn_app_with($crate::helpers::Backend::Postgres, $customize)
                        .await
                        .expect($crate::helpers::NO_POSTGRES);
                super::$name(app).await
            }
        }
    };
}
