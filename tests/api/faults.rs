//! Faults (issue 11): the database goes away and comes back. A TCP proxy between the server and
//! PostgreSQL cuts and restores the database without touching the shared server; the test
//! database is created directly, only the server's URL goes through the proxy.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use portcullis::config::Settings;
use portcullis::db::DbUrl;
use portcullis::user::Role;
use tokio::net::{TcpListener, TcpStream};

use crate::authorize::{CB, PASSWORD, authorize_path, code_for, pkce};
use crate::helpers::*;

/// A TCP proxy to PostgreSQL that a test can cut and restore, at once or when the server sends
/// given statements.
pub struct DbProxy {
    pub port: u16,
    shared: Arc<Shared>,
    accept: tokio::task::JoinHandle<()>,
}

/// What the proxy's connections share.
struct Shared {
    cut: AtomicBool,
    /// Incremented by `cut()`: every live connection ends when it changes.
    cuts: tokio::sync::watch::Sender<u64>,
    /// An armed [`Trigger`], fired at most once.
    trigger: std::sync::Mutex<Option<Trigger>>,
    /// Set when the trigger fired.
    fired: AtomicBool,
}

/// Cuts the database when one connection sends `patterns` in this order (each in one chunk of
/// bytes from the server to PostgreSQL): the chunk with the last pattern is forwarded first
/// (`forward_last`: PostgreSQL runs it, its answer is lost) or dropped.
struct Trigger {
    patterns: Vec<&'static [u8]>,
    forward_last: bool,
}

/// What to do with a chunk from the server.
enum Chunk {
    Pass,
    DropAndCut,
    ForwardAndCut,
}

impl Shared {
    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.cuts.send_modify(|n| *n += 1);
    }

    /// Advances this connection's progress through the armed trigger's patterns.
    fn inspect(&self, step: &mut usize, chunk: &[u8]) -> Chunk {
        let mut armed = self.trigger.lock().unwrap();
        let Some(t) = armed.as_ref() else {
            return Chunk::Pass;
        };
        let Some(want) = t.patterns.get(*step) else {
            return Chunk::Pass;
        };
        if !chunk.windows(want.len()).any(|w| w == *want) {
            return Chunk::Pass;
        }
        *step += 1;
        if *step < t.patterns.len() {
            return Chunk::Pass;
        }
        let forward = t.forward_last;
        *armed = None;
        self.fired.store(true, Ordering::SeqCst);
        if forward {
            Chunk::ForwardAndCut
        } else {
            Chunk::DropAndCut
        }
    }
}

/// Copies bytes both ways until either side closes or the proxy is cut, watching what the
/// server sends for the armed trigger.
async fn pipe(
    mut client: TcpStream,
    mut server: TcpStream,
    mut ended: tokio::sync::watch::Receiver<u64>,
    shared: Arc<Shared>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut step = 0;
    let (mut up, mut down) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        tokio::select! {
            n = client.read(&mut up) => {
                let n = match n { Ok(0) | Err(_) => return, Ok(n) => n };
                let chunk = &up[..n];
                match shared.inspect(&mut step, chunk) {
                    Chunk::Pass => {
                        if server.write_all(chunk).await.is_err() {
                            return;
                        }
                    }
                    Chunk::DropAndCut => {
                        shared.cut();
                        return;
                    }
                    Chunk::ForwardAndCut => {
                        // PostgreSQL runs the chunk and its answer never reaches the server:
                        // the cut comes once the answer is here (so the chunk has run, however
                        // slowly PostgreSQL was scheduled), and the answer is dropped.
                        let _ = server.write_all(chunk).await;
                        let _ = tokio::time::timeout(
                            Duration::from_secs(10),
                            server.read(&mut down),
                        )
                        .await;
                        shared.cut();
                        return;
                    }
                }
            }
            n = server.read(&mut down) => {
                let n = match n { Ok(0) | Err(_) => return, Ok(n) => n };
                if client.write_all(&down[..n]).await.is_err() {
                    return;
                }
            }
            _ = ended.changed() => return,
        }
    }
}

impl Drop for DbProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.shared.cuts.send_modify(|n| *n += 1);
    }
}

impl DbProxy {
    /// Listens on 127.0.0.1:0 and forwards to `upstream` (host:port).
    pub async fn start(upstream: String) -> DbProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            cut: AtomicBool::new(false),
            cuts: tokio::sync::watch::channel(0u64).0,
            trigger: std::sync::Mutex::new(None),
            fired: AtomicBool::new(false),
        });
        let accept = {
            let shared = shared.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        continue;
                    };
                    if shared.cut.load(Ordering::SeqCst) {
                        // Refused: closed at once, as a database that is down would be.
                        drop(client);
                        continue;
                    }
                    let ended = shared.cuts.subscribe();
                    let upstream = upstream.clone();
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        let Ok(server) = TcpStream::connect(&upstream).await else {
                            return;
                        };
                        pipe(client, server, ended, shared).await;
                    });
                }
            })
        };
        DbProxy {
            port,
            shared,
            accept,
        }
    }

    /// Closes every live connection and refuses new ones.
    pub fn cut(&self) {
        self.shared.cut();
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        self.shared.cut.store(false, Ordering::SeqCst);
    }

    /// Cuts the database when one connection sends `patterns` in order; see [`Trigger`].
    fn cut_when(&self, patterns: &[&'static [u8]], forward_last: bool) {
        self.shared.fired.store(false, Ordering::SeqCst);
        *self.shared.trigger.lock().unwrap() = Some(Trigger {
            patterns: patterns.to_vec(),
            forward_last,
        });
    }

    /// Whether the armed trigger fired.
    fn fired(&self) -> bool {
        self.shared.fired.load(Ordering::SeqCst)
    }
}

/// A server on a fresh PostgreSQL database whose URL goes through a [`DbProxy`]; None when
/// PostgreSQL is not configured. `PORTCULLIS_DB_TIMEOUT_MS` is 1 s unless `customize` says.
pub async fn spawn_app_behind_proxy(
    customize: impl FnOnce(&mut Settings),
) -> Option<(TestApp, DbProxy)> {
    let db = TestDb::new(Backend::Postgres)?;
    let direct = url::Url::parse(&db.url).unwrap();
    let upstream = format!(
        "{}:{}",
        direct.host_str().unwrap(),
        direct.port().unwrap_or(5432)
    );
    let proxy = DbProxy::start(upstream).await;
    let mut via = direct.clone();
    via.set_host(Some("127.0.0.1")).unwrap();
    via.set_port(Some(proxy.port)).unwrap();
    // In clear, so that the proxy can see which statement the server sends (cut_when).
    via.query_pairs_mut().append_pair("sslmode", "disable");
    let app = spawn_app_on(db, |s| {
        s.database_url = DbUrl::parse(via.as_str()).unwrap();
        s.db_timeout = Duration::from_millis(1000);
        customize(s);
    });
    Some((app, proxy))
}

/// How long a request may take while the database is cut: a request that goes to the database
/// twice (its session, then its page) may wait the DB timeout (1 s here) twice, plus 1 s for a
/// machine busy with other tests.
const CUT_BOUND: Duration = Duration::from_millis(3000);

/// Sends a request and checks it answered within [`CUT_BOUND`].
async fn timed(what: &str, req: reqwest::RequestBuilder) -> reqwest::Response {
    let started = Instant::now();
    let resp = req.send().await.unwrap();
    assert!(
        started.elapsed() <= CUT_BOUND,
        "{what} took {:?} while the database was cut",
        started.elapsed()
    );
    resp
}

/// A 503 `temporarily_unavailable` in the RFC 6749 5.2 shape, with Retry-After.
async fn assert_unavailable_oauth(what: &str, resp: reqwest::Response) {
    assert!(
        resp.headers().contains_key("retry-after"),
        "{what}: no Retry-After"
    );
    let body = assert_oauth_error(resp, 503, "temporarily_unavailable").await;
    eprintln!("{what}: {body}");
}

/// A readable 503 page with Retry-After.
async fn assert_unavailable_page(what: &str, resp: reqwest::Response) {
    assert_eq!(resp.status(), 503, "{what}");
    assert!(
        resp.headers().contains_key("retry-after"),
        "{what}: no Retry-After"
    );
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "{what}"
    );
    let html = resp.text().await.unwrap();
    assert!(html.contains("Temporarily unavailable"), "{what}: {html}");
}

/// Retries `check` until it returns true, for at most 2 s after `since`.
async fn recovers<F, Fut>(what: &str, since: Instant, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    loop {
        if check().await {
            return;
        }
        assert!(
            since.elapsed() < Duration::from_secs(2),
            "{what} did not work again within 2 s of the database coming back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(portcullis_test_postgres),
    ignore = "PORTCULLIS_TEST_POSTGRES_URL is not set"
)]
async fn a_database_outage_answers_503_serves_cached_clients_and_recovers_without_stale_connections()
 {
    let (app, proxy) = spawn_app_behind_proxy(|_| {})
        .await
        .expect(crate::helpers::NO_POSTGRES);
    // Before: a cached client, a token to introspect, a code, an admin API token, a signed-in
    // admin browser.
    let svc = app.create_client("svc", &["reports:read"]);
    let web = app.web_app("web", &["invoices:read"]);
    app.await_client_cache();
    let token: serde_json::Value = app
        .token_basic(&svc.client_id, &svc.secret, &[GRANT_CC])
        .await
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_string();
    let user_browser = app.signed_in("alice").await;
    let (code, verifier) = code_for(&app, &user_browser, &web, "invoices:read").await;
    let api_token = app.api_token("ops", "portcullis:read").await;
    app.create_user("ada", PASSWORD, Role::Admin);
    let admin = app.browser();
    assert_eq!(
        sign_in(&app, &admin, "ada", PASSWORD, "/admin/clients")
            .await
            .status(),
        303
    );
    app.introspect(&svc, &token).await;
    let introspect = || {
        app.http
            .post(app.url("/oauth/introspect"))
            .basic_auth(&svc.client_id, Some(&svc.secret))
            .form(&[("token", token.as_str())])
    };
    let exchange = || {
        app.http
            .post(app.token_url())
            .basic_auth(&web.client_id, Some(&web.secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", CB),
                ("code_verifier", verifier.as_str()),
            ])
    };
    let api = || {
        app.http
            .get(format!("{}/admin/api/v1/clients", app.address))
            .bearer_auth(&api_token)
    };
    let admin_page = || admin.get(app.url("/admin/clients"));
    let fresh = app.browser();
    let login_page = fresh.get(app.url("/login")).send().await.unwrap();
    let csrf = form_value(&login_page.text().await.unwrap(), "csrf_token").unwrap();
    let login = || {
        fresh.post(app.url("/login")).form(&[
            ("username", "ada"),
            ("password", PASSWORD),
            ("csrf_token", csrf.as_str()),
            ("next", "/admin/clients"),
        ])
    };

    proxy.cut();

    // client_credentials for a cached client needs no database.
    for _ in 0..5 {
        let resp = timed(
            "client_credentials",
            app.http
                .post(app.token_url())
                .basic_auth(&svc.client_id, Some(&svc.secret))
                .form(&[GRANT_CC]),
        )
        .await;
        assert_eq!(resp.status(), 200, "client_credentials during the outage");
    }
    assert_unavailable_oauth("introspection", timed("introspection", introspect()).await).await;
    assert_unavailable_oauth("code exchange", timed("code exchange", exchange()).await).await;
    let resp = timed("admin API", api()).await;
    assert_eq!(resp.status(), 503, "admin API");
    assert!(resp.headers().contains_key("retry-after"));
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    assert_unavailable_page("admin page", timed("admin page", admin_page()).await).await;
    let (_, challenge) = pkce();
    let authorize = authorize_path(
        &web.client_id,
        &[
            ("redirect_uri", CB),
            ("scope", "invoices:read"),
            ("state", "s2"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    assert_unavailable_page(
        "authorization page",
        timed("authorization page", user_browser.get(app.url(&authorize))).await,
    )
    .await;
    let revoke = app
        .http
        .post(app.url("/oauth/revoke"))
        .basic_auth(&svc.client_id, Some(&svc.secret))
        .form(&[("token", "not-a-token")]);
    assert_unavailable_oauth("revocation", timed("revocation", revoke).await).await;
    // An access token's revocation (batched, awaited on the executor) fails the same way, and
    // revokes nothing: the token introspects as active below.
    let revoke_access = || {
        app.http
            .post(app.url("/oauth/revoke"))
            .basic_auth(&svc.client_id, Some(&svc.secret))
            .form(&[("token", token.as_str())])
    };
    assert_unavailable_oauth(
        "access-token revocation",
        timed("access-token revocation", revoke_access()).await,
    )
    .await;
    let resp = timed("login", login()).await;
    assert_eq!(resp.status(), 503, "login");
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("not possible right now")
    );
    let resp = timed("readyz", app.http.get(app.url("/readyz"))).await;
    assert_eq!(resp.status(), 503, "readyz");
    let resp = timed("healthz", app.http.get(app.url("/healthz"))).await;
    assert_eq!(resp.status(), 200, "healthz");

    proxy.restore();
    let back = Instant::now();
    recovers("readyz", back, || async {
        app.http
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status()
            == 200
    })
    .await;
    recovers("introspection", back, || async {
        introspect().send().await.unwrap().status() == 200
    })
    .await;
    recovers("code exchange", back, || async {
        exchange().send().await.unwrap().status() == 200
    })
    .await;
    recovers("admin API", back, || async {
        api().send().await.unwrap().status() == 200
    })
    .await;
    recovers("admin page", back, || async {
        admin_page().send().await.unwrap().status() == 200
    })
    .await;
    recovers("login", back, || async {
        login().send().await.unwrap().status() == 303
    })
    .await;
    recovers("client_credentials", back, || async {
        token_status(&app, &svc.client_id, &svc.secret).await == 200
    })
    .await;
    // No stale connection is left in the pool: every request succeeds.
    for i in 0..20 {
        let resp = introspect().send().await.unwrap();
        assert_eq!(resp.status(), 200, "introspection {i} after recovery");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["active"], true);
    }
    assert_eq!(revoke_access().send().await.unwrap().status(), 200);
    assert_eq!(app.introspect(&svc, &token).await["active"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(portcullis_test_postgres),
    ignore = "PORTCULLIS_TEST_POSTGRES_URL is not set"
)]
async fn cached_clients_are_refused_once_the_outage_outlasts_the_staleness_bound() {
    let (app, proxy) = spawn_app_behind_proxy(|s| {
        s.cache_stale_max = Duration::from_millis(1500);
        s.db_timeout = Duration::from_millis(500);
    })
    .await
    .expect(crate::helpers::NO_POSTGRES);
    let svc = app.create_client("svc", &["reports:read"]);
    app.await_client_cache();
    assert_eq!(token_status(&app, &svc.client_id, &svc.secret).await, 200);
    proxy.cut();
    assert_eq!(
        token_status(&app, &svc.client_id, &svc.secret).await,
        200,
        "served from the cache within the bound"
    );
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let resp = timed(
        "client_credentials",
        app.http
            .post(app.token_url())
            .basic_auth(&svc.client_id, Some(&svc.secret))
            .form(&[GRANT_CC]),
    )
    .await;
    assert_unavailable_oauth("client_credentials past the bound", resp).await;
    proxy.restore();
    let back = Instant::now();
    recovers("client_credentials", back, || async {
        token_status(&app, &svc.client_id, &svc.secret).await == 200
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(portcullis_test_postgres),
    ignore = "PORTCULLIS_TEST_POSTGRES_URL is not set"
)]
async fn usage_counts_of_an_outage_are_written_after_it() {
    let (app, proxy) = spawn_app_behind_proxy(|s| {
        s.usage_flush_interval = Duration::from_secs(1);
    })
    .await
    .expect(crate::helpers::NO_POSTGRES);
    let svc = app.create_client("svc", &["reports:read"]);
    app.await_client_cache();
    assert_eq!(token_status(&app, &svc.client_id, &svc.secret).await, 200);
    let pk = portcullis::client::store::find(&mut app.pool.get().unwrap(), &svc.client_id)
        .unwrap()
        .unwrap()
        .id;
    proxy.cut();
    for _ in 0..6 {
        assert_eq!(token_status(&app, &svc.client_id, &svc.secret).await, 200);
    }
    // At least one flush fails while the database is cut.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    proxy.restore();
    let started = Instant::now();
    loop {
        let total =
            portcullis::client::store::token_total(&mut app.pool.get().unwrap(), pk).unwrap();
        if total == 7 {
            break;
        }
        assert!(
            total < 7 && started.elapsed() < Duration::from_secs(10),
            "token count {total}, expected 7 written after the outage"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The statement that records what an exchange issued in a transaction (token::store): sent
/// after a code is marked redeemed or a refresh token rotated, before the commit.
const RECORD_ISSUED: &[u8] = b"UPDATE \"grants\" SET \"access_jti\"";

/// What the server sends of a presented code or token: its hash, bound to the statement that
/// redeems or rotates it (PostgreSQL prepares that statement once per connection, so its text is
/// not sent every time; the hash is).
fn presented(token: &str) -> &'static [u8] {
    let hash = portcullis::crypto::HashedToken::of(token);
    Box::leak(hash.as_str().as_bytes().to_vec().into_boxed_slice())
}

/// Rows counted with a query that returns `n`.
fn count(app: &TestApp, sql: &str) -> i64 {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query(sql)
        .get_result::<Count>(&mut **app.pool.get().unwrap())
        .unwrap()
        .n
}

/// Sends `request` after the database was restored, retrying for at most 2 s while it answers
/// 503 (the server reconnecting), and returns the first other answer.
async fn once_restored<F, Fut>(what: &str, mut request: F) -> reqwest::Response
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = reqwest::Response>,
{
    let started = Instant::now();
    loop {
        let resp = request().await;
        if resp.status() != 503 || started.elapsed() > Duration::from_secs(2) {
            eprintln!("{what}: {}", resp.status());
            return resp;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (at most 2 s) until `/readyz` says the database is back.
async fn ready_again(app: &TestApp) {
    let resp = once_restored("/readyz", || async {
        app.http.get(app.url("/readyz")).send().await.unwrap()
    })
    .await;
    assert_eq!(resp.status(), 200);
}

// Nothing half-done (issue 11 item 1): a code exchange is one atomic statement with the tokens
// it issues (on PostgreSQL; issue 13). Cut before PostgreSQL ran it, the code still works; cut
// after PostgreSQL ran it but before its answer came back, the code is consumed and its tokens
// are issued (committed), and using it again is a replay that revokes them (RFC 6749 4.1.2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(portcullis_test_postgres),
    ignore = "PORTCULLIS_TEST_POSTGRES_URL is not set"
)]
async fn a_code_exchange_cut_before_its_commit_leaves_the_code_usable_and_after_it_leaves_the_tokens_issued()
 {
    let (app, proxy) = spawn_app_behind_proxy(|_| {})
        .await
        .expect(crate::helpers::NO_POSTGRES);
    let web = app.web_app("web", &["invoices:read"]);
    let browser = app.signed_in("alice").await;

    let (code, verifier) = code_for(&app, &browser, &web, "invoices:read").await;
    let form = [
        ("code", code.as_str()),
        ("redirect_uri", CB),
        ("code_verifier", verifier.as_str()),
    ];
    let hash = presented(&code);
    proxy.cut_when(&[hash], false);
    let resp = app.exchange(&web, &form).await;
    assert!(proxy.fired(), "the exchange never recorded its tokens");
    assert_unavailable_oauth("code exchange cut before its commit", resp).await;
    proxy.restore();
    let resp = once_restored("the same code again", || app.exchange(&web, &form)).await;
    let issued = crate::authorize::tokens(resp).await;
    let access = issued["access_token"].as_str().unwrap();
    assert_eq!(app.introspect(&web, access).await["active"], true);
    let refreshed = app
        .refresh(&web, issued["refresh_token"].as_str().unwrap(), None)
        .await;
    assert_eq!(
        refreshed.status(),
        200,
        "the refresh token of the retried code"
    );

    let (code, verifier) = code_for(&app, &browser, &web, "invoices:read").await;
    let form = [
        ("code", code.as_str()),
        ("redirect_uri", CB),
        ("code_verifier", verifier.as_str()),
    ];
    let before = count(&app, "SELECT COUNT(*) AS n FROM refresh_tokens");
    proxy.cut_when(&[presented(&code)], true);
    let resp = app.exchange(&web, &form).await;
    assert!(proxy.fired(), "the exchange never committed");
    assert_unavailable_oauth("code exchange cut after its commit", resp).await;
    proxy.restore();
    // Consumed with its tokens issued: the code's family has its access token and a refresh
    // token recorded.
    ready_again(&app).await;
    let recorded = count(
        &app,
        "SELECT COUNT(DISTINCT g.id) AS n FROM grants g JOIN refresh_tokens r ON r.grant_id = g.id \
         WHERE g.redeemed_at IS NOT NULL AND g.access_jti IS NOT NULL AND g.revoked_at IS NULL",
    );
    assert_eq!(recorded, 2, "both families recorded their tokens");
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM refresh_tokens"),
        before + 1
    );
    let resp = app.exchange(&web, &form).await;
    let body = assert_oauth_error(resp, 400, "invalid_grant").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{body}"
    );
}

// The same for a refresh (RFC 9700 4.14.2 rotation): cut before the database ran it, the old
// refresh token still works; cut after, the rotation happened (the old token is used, its
// successor recorded), and presenting the old token again is a replay that revokes the family.
// Both ways a refresh is stored: without a `scope` parameter one statement in autocommit (cut
// after PostgreSQL answered it), with one a transaction (cut after PostgreSQL ran its COMMIT).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(portcullis_test_postgres),
    ignore = "PORTCULLIS_TEST_POSTGRES_URL is not set"
)]
async fn a_refresh_cut_before_its_commit_leaves_the_token_usable_and_after_it_leaves_it_rotated() {
    let (app, proxy) = spawn_app_behind_proxy(|_| {})
        .await
        .expect(crate::helpers::NO_POSTGRES);
    let web = app.web_app("web", &["invoices:read"]);
    let browser = app.signed_in("alice").await;
    for scope in [None, Some("invoices:read")] {
        eprintln!("refresh with scope {scope:?}");
        let (code, verifier) = code_for(&app, &browser, &web, "invoices:read").await;
        let issued = crate::authorize::tokens(
            app.exchange(
                &web,
                &[
                    ("code", code.as_str()),
                    ("redirect_uri", CB),
                    ("code_verifier", verifier.as_str()),
                ],
            )
            .await,
        )
        .await;
        let first = issued["refresh_token"].as_str().unwrap().to_string();
        let family = format!(
            "SELECT COUNT(*) AS n FROM refresh_tokens WHERE grant_id = \
             (SELECT grant_id FROM refresh_tokens WHERE token_hash = '{}')",
            portcullis::crypto::HashedToken::of(&first).as_str()
        );

        // Without a scope, one statement: cut as it is sent, and after PostgreSQL answered it.
        // With one, a transaction: cut as it records the tokens, and after its COMMIT.
        let before_commit: Vec<&'static [u8]> = match scope {
            None => vec![presented(&first)],
            Some(_) => vec![RECORD_ISSUED],
        };
        proxy.cut_when(&before_commit, false);
        let resp = app.refresh(&web, &first, scope).await;
        assert!(proxy.fired(), "the refresh never recorded its tokens");
        assert_unavailable_oauth("refresh cut before its commit", resp).await;
        proxy.restore();
        let resp = once_restored("the same refresh token again", || {
            app.refresh(&web, &first, scope)
        })
        .await;
        let second = crate::authorize::tokens(resp).await["refresh_token"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(count(&app, &family), 2);

        let after_commit: Vec<&'static [u8]> = match scope {
            None => vec![presented(&second)],
            Some(_) => vec![RECORD_ISSUED, b"COMMIT"],
        };
        proxy.cut_when(&after_commit, true);
        let resp = app.refresh(&web, &second, scope).await;
        assert!(proxy.fired(), "the refresh never committed");
        assert_unavailable_oauth("refresh cut after its commit", resp).await;
        proxy.restore();
        // Rotated with its successor issued: three tokens in the family, one of them unused.
        ready_again(&app).await;
        assert_eq!(count(&app, &family), 3);
        assert_eq!(count(&app, &format!("{family} AND rotated_at IS NULL")), 1);
        let resp = app.refresh(&web, &second, scope).await;
        assert_oauth_error(resp, 400, "invalid_grant").await;
    }
}
