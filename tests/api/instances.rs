//! Signing-key rotation, several instances on one database, graceful shutdown.

use std::time::{Duration, Instant};

use portcullis::client::NewClient;

use crate::helpers::*;

/// Another server on the same database (as a second instance behind a load balancer).
struct Instance {
    address: String,
    state: actix_web::web::Data<portcullis::AppState>,
    handle: actix_web::dev::ServerHandle,
}

impl Drop for Instance {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

impl TestApp {
    fn second_instance(&self) -> Instance {
        self.second_instance_with(|_| {})
    }

    /// [`Self::second_instance`] with settings changed by `customize`.
    fn second_instance_with(
        &self,
        customize: impl FnOnce(&mut portcullis::config::Settings),
    ) -> Instance {
        let mut settings = portcullis::config::Settings::for_tests(&self.db.url);
        settings.client_cache_interval = Duration::from_millis(10);
        // Both serve the same issuer, as behind one load balancer.
        settings.issuer = Some(self.issuer.clone());
        customize(&mut settings);
        let app = portcullis::Application::build(settings).unwrap();
        let address = format!("http://127.0.0.1:{}", app.port());
        let (state, handle) = (app.state(), app.handle());
        tokio::spawn(app.run_until_stopped());
        Instance {
            address,
            state,
            handle,
        }
    }

    /// Waits until both instances have loaded the newest signing keys.
    async fn await_keys(&self, others: &[&actix_web::web::Data<portcullis::AppState>]) {
        let generation =
            portcullis::token::store::key_generation(&mut self.pool.get().unwrap()).unwrap();
        let started = Instant::now();
        let mut states = vec![&self.state];
        states.extend(others.iter().copied());
        while states.iter().any(|s| s.keys.seen() < generation) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "keys not reloaded"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

async fn jwks_kids(address: &str) -> Vec<String> {
    let jwks: serde_json::Value = reqwest::get(format!("{address}/oauth/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

async fn token_kid(app: &TestApp, address: &str, c: &TestClient) -> (String, String) {
    let t: serde_json::Value = app
        .http
        .post(format!("{address}/oauth/token"))
        .basic_auth(&c.client_id, Some(&c.secret))
        .form(&[GRANT_CC])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = t["access_token"].as_str().unwrap().to_string();
    let kid = jsonwebtoken::decode_header(&token).unwrap().kid.unwrap();
    (token, kid)
}

crate::on_both_backends!(rotated_keys_are_published_first_then_sign_then_retire);
async fn rotated_keys_are_published_first_then_sign_then_retire(app: TestApp) {
    let c = app.create_client("Rotating keys", &[]);
    let (old_token, old_kid) = token_kid(&app, &app.address, &c).await;
    // Published an hour ahead: in the JWKS at once, but the old key still signs.
    let next = portcullis::token::rotate(
        &mut app.pool.get().unwrap(),
        portcullis::clock::Clock::system().now(),
        3600,
        &app.state.master_key,
    )
    .unwrap();
    app.await_keys(&[]).await;
    let kids = jwks_kids(&app.address).await;
    assert_eq!(kids.len(), 2);
    assert!(kids.contains(&next) && kids.contains(&old_kid));
    assert_eq!(
        token_kid(&app, &app.address, &c).await.1,
        old_kid,
        "not active yet"
    );
    // Active now: new tokens use it; old tokens still verify.
    let now_active = portcullis::token::rotate(
        &mut app.pool.get().unwrap(),
        portcullis::clock::Clock::system().now(),
        0,
        &app.state.master_key,
    )
    .unwrap();
    app.await_keys(&[]).await;
    let (new_token, new_kid) = token_kid(&app, &app.address, &c).await;
    assert_eq!(new_kid, now_active);
    crate::token::verify_jwt(&app, &old_token).await;
    crate::token::verify_jwt(&app, &new_token).await;
    // Once no token signed with the older keys can be valid, they leave the JWKS.
    let retired = portcullis::token::retire_superseded(
        &mut app.pool.get().unwrap(),
        portcullis::clock::Clock::system().now(),
        0,
    )
    .unwrap();
    assert_eq!(retired.len(), 2, "{retired:?}");
    app.await_keys(&[]).await;
    assert_eq!(jwks_kids(&app.address).await, vec![now_active]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(portcullis_test_postgres),
    ignore = "PORTCULLIS_TEST_POSTGRES_URL is not set"
)]
async fn a_code_issued_by_one_instance_is_redeemed_at_the_other() {
    let a = spawn_app(Backend::Postgres)
        .await
        .expect(crate::helpers::NO_POSTGRES);
    let b = a.second_instance();
    let web = a.create_client_with(NewClient {
        name: "Shared".into(),
        scopes: vec!["read".into()],
        redirect_uris: vec!["https://app.example.com/cb".into()],
        ..Default::default()
    });
    a.create_user(
        "zoe",
        "correct horse battery staple",
        portcullis::user::Role::User,
    );

    let browser = a.browser();
    assert_eq!(
        sign_in(&a, &browser, "zoe", "correct horse battery staple", "/")
            .await
            .status(),
        303
    );
    let path = format!(
        "/oauth/authorize?response_type=code&client_id={}&redirect_uri={}&scope=read&state=s",
        web.client_id,
        urlencode("https://app.example.com/cb")
    );
    let html = browser
        .get(format!("{}{path}", a.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = form_value(&html, "csrf_token").unwrap();
    let resp = browser
        .post(format!("{}{path}", a.address))
        .form(&[("csrf_token", csrf.as_str()), ("decision", "allow")])
        .send()
        .await
        .unwrap();
    let back = url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    let code = back
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let t: serde_json::Value = a
        .http
        .post(format!("{}/oauth/token", b.address))
        .basic_auth(&web.client_id, Some(&web.secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", "https://app.example.com/cb"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(t["access_token"].is_string(), "{t}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(portcullis_test_postgres),
    ignore = "PORTCULLIS_TEST_POSTGRES_URL is not set"
)]
async fn a_token_issued_at_one_instance_is_introspected_and_revoked_at_the_other() {
    let a = spawn_app(Backend::Postgres)
        .await
        .expect(crate::helpers::NO_POSTGRES);
    let b = a.second_instance();
    let svc = a.create_client("Service", &[]);
    let (token, _) = token_kid(&a, &b.address, &svc).await;
    let introspect = |address: String, token: String| {
        let (http, id, secret) = (a.http.clone(), svc.client_id.clone(), svc.secret.clone());
        async move {
            http.post(format!("{address}/oauth/introspect"))
                .basic_auth(id, Some(secret))
                .form(&[("token", token)])
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()["active"]
                .clone()
        }
    };
    assert_eq!(introspect(a.address.clone(), token.clone()).await, true);
    let resp = a
        .http
        .post(format!("{}/oauth/revoke", a.address))
        .basic_auth(&svc.client_id, Some(&svc.secret))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(introspect(b.address.clone(), token.clone()).await, false);
}

// Within the cache interval (10 ms here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(portcullis_test_postgres),
    ignore = "PORTCULLIS_TEST_POSTGRES_URL is not set"
)]
async fn a_client_disabled_at_one_instance_is_refused_at_the_other() {
    let a = spawn_app(Backend::Postgres)
        .await
        .expect(crate::helpers::NO_POSTGRES);
    let b = a.second_instance();
    let svc = a.create_client("Service", &[]);
    assert_eq!(
        a.http
            .post(format!("{}/oauth/token", b.address))
            .basic_auth(&svc.client_id, Some(&svc.secret))
            .form(&[GRANT_CC])
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    portcullis::client::store::set_enabled(
        &mut a.pool.get().unwrap(),
        &svc.client_id,
        false,
        portcullis::clock::Clock::system().now(),
    )
    .unwrap();
    let started = Instant::now();
    loop {
        let status = a
            .http
            .post(format!("{}/oauth/token", b.address))
            .basic_auth(&svc.client_id, Some(&svc.secret))
            .form(&[GRANT_CC])
            .send()
            .await
            .unwrap()
            .status();
        if status == 401 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "B still accepts a client disabled at A"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(portcullis_test_postgres),
    ignore = "PORTCULLIS_TEST_POSTGRES_URL is not set"
)]
async fn a_key_rotated_at_one_instance_signs_tokens_the_others_jwks_verifies() {
    let a = spawn_app(Backend::Postgres)
        .await
        .expect(crate::helpers::NO_POSTGRES);
    let b = a.second_instance();
    let kid = portcullis::token::rotate(
        &mut a.pool.get().unwrap(),
        portcullis::clock::Clock::system().now(),
        0,
        &a.state.master_key,
    )
    .unwrap();
    a.await_keys(&[&b.state]).await;
    let other = a.create_client("After rotation", &[]);
    let (token, token_kid_) = token_kid(&a, &a.address, &other).await;
    assert_eq!(token_kid_, kid);
    assert!(jwks_kids(&b.address).await.contains(&kid));
    let jwks: jsonwebtoken::jwk::JwkSet = reqwest::get(format!("{}/oauth/jwks.json", b.address))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&[&a.issuer]);
    jsonwebtoken::decode::<serde_json::Value>(
        &token,
        &jsonwebtoken::DecodingKey::from_jwk(jwks.find(&kid).unwrap()).unwrap(),
        &validation,
    )
    .expect("a token signed at A verifies with B's JWKS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_requests_and_flushes_usage() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let db = TestDb::new(Backend::Sqlite).unwrap();
    let url = portcullis::db::DbUrl::parse(&db.url).unwrap();
    let pool = portcullis::db::build_pool(&url, 1).unwrap();
    let c = {
        let mut conn = pool.get().unwrap();
        let key = crate::helpers::test_master_key();
        portcullis::db::migrate_and(&mut conn, |conn| {
            portcullis::bootstrap(
                conn,
                &key,
                &portcullis::seal::KeySource::Setting,
                portcullis::clock::Clock::system().now(),
            )
        })
        .unwrap();
        let new = NewClient {
            name: "Shutdown".into(),
            ..Default::default()
        }
        .validate()
        .unwrap();
        let (client, secret) = portcullis::manage::create_client(
            &mut conn,
            &portcullis::manage::Ctx {
                clients: &portcullis::client::cache::ClientCache::new(false),
                master_key: &key,
            },
            &crate::helpers::fixture(),
            &new,
            true,
            portcullis::clock::Clock::system().now(),
        )
        .unwrap();
        (client, secret.unwrap())
    };
    let log_path = db.dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["--database-url", &db.url, "--log-format", "json", "serve"])
        .env("PORTCULLIS_LOG_LEVEL", "debug")
        .env("PORTCULLIS_MASTER_KEY", portcullis::config::TEST_MASTER_KEY)
        .env_remove("PORTCULLIS_DATABASE_URL")
        .env("PORTCULLIS_BIND", "127.0.0.1:0")
        // Nothing is written before shutdown: only the final flush can record the use.
        .env("PORTCULLIS_USAGE_FLUSH_SECONDS", "3600")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let started = Instant::now();
    let address = loop {
        let text = std::fs::read_to_string(&log_path).unwrap();
        if let Some(rest) = text.split("listening on http://").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "server did not start: {text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let http = reqwest::Client::new();
    for _ in 0..3 {
        let r = http
            .post(format!("http://{address}/oauth/token"))
            .basic_auth(&c.0.client_id, Some(&c.1))
            .form(&[GRANT_CC])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    // A request in flight: headers and half the body sent, then SIGTERM, then the rest.
    let body = "grant_type=client_credentials";
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    use base64::Engine;
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.0.client_id, c.1));
    let head = format!(
        "POST /oauth/token HTTP/1.1\r\nHost: {address}\r\nAuthorization: Basic {basic}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        body.len(),
        &body[..10]
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::process::Command::new("kill")
        .arg("-TERM")
        .arg(server.id().to_string())
        .status()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stream.write_all(&body.as_bytes()[10..]).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "the in-flight request was finished: {answer}"
    );
    // New connections are refused while it stops, and it exits cleanly.
    let status = server.wait().unwrap();
    assert!(status.success(), "clean exit: {status}");
    assert!(
        tokio::net::TcpStream::connect(&address).await.is_err(),
        "no longer listening"
    );
    // Nothing lost: the four uses were written at shutdown.
    let mut conn = pool.get().unwrap();
    let client = portcullis::client::store::find(&mut conn, &c.0.client_id)
        .unwrap()
        .unwrap();
    assert!(
        client.last_used_at.is_some(),
        "last use flushed at shutdown"
    );
    let today = portcullis::usage::day_of(portcullis::clock::Clock::system().now());
    let counts = portcullis::client::store::token_counts(&mut conn, client.id, today - 1).unwrap();
    assert_eq!(
        counts.iter().map(|c| c.1).sum::<i64>(),
        4,
        "every token counted: {counts:?}"
    );
    // The log is JSON lines for machines, and holds no secret.
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.lines().count() > 3, "{log}");
    for line in log.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v["level"].is_string() && v["timestamp"].is_string(),
            "{line}"
        );
    }
    assert!(!log.contains(&c.1), "the client secret is in the log");
}

/// Waits (at most 10 s) until `ok` holds of the instance's number of cached clients.
async fn await_cached(instance: &Instance, what: &str, ok: impl Fn(usize) -> bool) {
    let started = Instant::now();
    while !ok(instance.state.clients.len()) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{what}: {} clients cached",
            instance.state.clients.len()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// A starting instance fills its client cache from the database (issue 13: a client's first
// request then needs no query, even with a million clients), never past
// PORTCULLIS_CLIENT_CACHE_ENTRIES, and fills it again after a change emptied it.
crate::on_both_backends!(a_starting_instance_caches_every_client_up_to_its_capacity);
async fn a_starting_instance_caches_every_client_up_to_its_capacity(app: TestApp) {
    let services: Vec<TestClient> = (0..6)
        .map(|i| app.create_client(&format!("Service {i}"), &[]))
        .collect();
    let total = {
        use diesel::QueryDsl;
        use diesel::RunQueryDsl;
        use portcullis::db::schema::clients;
        clients::table
            .count()
            .get_result::<i64>(&mut **app.pool.get().unwrap())
            .unwrap() as usize
    };
    assert!(total >= 6);

    let small = app.second_instance_with(|s| s.client_cache_entries = 3);
    await_cached(&small, "a cache of 3", |n| n > 0).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let held = small.state.clients.len();
    assert!((1..=3).contains(&held), "{held} clients in a cache of 3");

    let b = app.second_instance();
    await_cached(&b, "every client", |n| n == total).await;
    assert_eq!(
        metric_at(&app.http, &b.address, "portcullis_client_cache_entries").await,
        total as f64
    );
    let token = |svc: &TestClient| {
        app.http
            .post(format!("{}/oauth/token", b.address))
            .basic_auth(&svc.client_id, Some(&svc.secret))
            .form(&[GRANT_CC])
            .send()
    };
    assert_eq!(token(&services[1]).await.unwrap().status(), 200);

    // A change elsewhere empties B's cache; B refuses the disabled client at once and has
    // every client cached again, as they are now.
    app.set_enabled(&services[0].client_id, false);
    let started = Instant::now();
    while token(&services[0]).await.unwrap().status() != 401 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "B still accepts a client disabled elsewhere"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    await_cached(&b, "every client again", |n| n == total).await;
    assert!(
        !b.state
            .clients
            .get(&services[0].client_id)
            .expect("cached")
            .client
            .enabled,
        "the cache holds the client as it was before it was disabled"
    );
    assert_eq!(token(&services[0]).await.unwrap().status(), 401);
    assert_eq!(token(&services[2]).await.unwrap().status(), 200);
}

// A client read from the database before a change but cached after it (a request's load, or
// the background fill, finishing late) is never served: the change moves this instance's
// cache past every generation read before it (manage::changed), instead of only emptying it,
// which let such a late load put a disabled client back until the next poll.
crate::on_both_backends!(a_client_read_before_a_change_and_cached_after_it_is_not_served);
async fn a_client_read_before_a_change_and_cached_after_it_is_not_served(app: TestApp) {
    let c = app.create_client("Late load", &[]);
    let cache = portcullis::client::cache::ClientCache::new(true);
    let key = crate::helpers::test_master_key();
    let ctx = portcullis::manage::Ctx {
        clients: &cache,
        master_key: &key,
    };
    let mut conn = app.pool.get().unwrap();
    cache.observe(
        portcullis::client::store::generation(&mut conn).unwrap(),
        None,
    );
    // Read before the change...
    let (read_under, found) =
        portcullis::client::store::load_with_secrets(&mut conn, &c.client_id).unwrap();
    let (client, secrets) = found.unwrap();
    assert!(client.enabled);
    portcullis::manage::set_enabled(
        &mut conn,
        &ctx,
        &crate::helpers::fixture(),
        &client,
        false,
        portcullis::clock::Clock::system().now(),
    )
    .unwrap();
    // ...cached after it: not served.
    cache.insert(read_under, client, secrets);
    assert!(
        cache.get(&c.client_id).is_none(),
        "a client read before it was disabled is served from the cache"
    );
    // Read again, it is the disabled client, and that one is served.
    let fresh = cache.load(&mut conn, &c.client_id).unwrap().unwrap();
    assert!(!fresh.client.enabled);
    assert!(cache.get(&c.client_id).is_some_and(|e| !e.client.enabled));
}

// A change to one client made elsewhere (another instance, the CLI, SQL) drops that client
// alone from every instance's cache, within one poll: the others stay cached (the same entry,
// not a reload). When the change log has a gap (pruned), the instance cannot tell which
// clients changed and drops all of them, as before the log existed. On PostgreSQL the log is
// not written yet (migration 000016 there): every change drops every client.
crate::on_both_backends!(a_change_elsewhere_drops_the_changed_client_alone);
async fn a_change_elsewhere_drops_the_changed_client_alone(app: TestApp) {
    use diesel::RunQueryDsl;
    let changed = app.create_client("Changed elsewhere", &[]);
    let other = app.create_client("Left alone", &[]);
    app.await_client_cache();
    for c in [&changed, &other] {
        let resp = app.token_basic(&c.client_id, &c.secret, &[GRANT_CC]).await;
        assert_eq!(resp.status(), 200);
    }
    let cached = |id: &str| app.state.clients.get(id);
    let before = cached(&other.client_id).expect("a client that got a token is cached");
    // Disabled behind the server's back, as another instance or the CLI would.
    app.set_enabled(&changed.client_id, false);
    app.await_client_cache();
    let resp = app
        .token_basic(&changed.client_id, &changed.secret, &[GRANT_CC])
        .await;
    assert_eq!(resp.status(), 401, "the disabled client is refused");
    let after = cached(&other.client_id);
    let kept = after.is_some_and(|after| std::sync::Arc::ptr_eq(&before, &after));
    assert!(kept, "the other client was dropped");
    // A gap in the log: every client is dropped. (The change and the gap in one transaction,
    // so that no poll sees one without the other.)
    portcullis::db::transaction(&mut app.pool.get().unwrap(), |conn| {
        portcullis::client::store::set_enabled(
            conn,
            &changed.client_id,
            true,
            app.state.clock.now(),
        )?;
        diesel::sql_query("DELETE FROM client_changes").execute(conn)?;
        Ok::<_, portcullis::error::AppError>(())
    })
    .unwrap();
    app.await_client_cache();
    let resp = app
        .token_basic(&changed.client_id, &changed.secret, &[GRANT_CC])
        .await;
    assert_eq!(resp.status(), 200, "enabled again");
    assert!(
        cached(&other.client_id).is_none_or(|e| !std::sync::Arc::ptr_eq(&before, &e)),
        "a gap in the log must drop every client"
    );
    // The log keeps only the latest changes (the background task keeps 100,000).
    app.set_enabled(&other.client_id, false);
    app.set_enabled(&other.client_id, true);
    let mut conn = app.pool.get().unwrap();
    assert_eq!(
        portcullis::client::store::prune_changes(&mut conn, 1).unwrap(),
        1
    );
    let latest = portcullis::client::store::generation(&mut conn).unwrap();
    let kept = portcullis::client::store::changes_between(&mut conn, 0, latest).unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].1, latest);
    // Two clients in one statement (on PostgreSQL, one trigger call for the statement).
    diesel::sql_query(format!(
        "UPDATE clients SET description = 'both' WHERE client_id IN ('{}', '{}')",
        changed.client_id, other.client_id
    ))
    .execute(&mut **conn)
    .unwrap();
    let now = portcullis::client::store::generation(&mut conn).unwrap();
    assert_eq!(now, latest + 2, "one generation per client changed");
    let mut logged: Vec<_> = portcullis::client::store::changes_between(&mut conn, latest, now)
        .unwrap()
        .into_iter()
        .map(|(pk, _)| pk.0)
        .collect();
    logged.sort();
    let mut pks: Vec<i64> = {
        use diesel::{ExpressionMethods, QueryDsl};
        use portcullis::db::schema::clients;
        clients::table
            .filter(clients::client_id.eq_any([&changed.client_id, &other.client_id]))
            .select(clients::id)
            .load(&mut **conn)
            .unwrap()
    };
    pks.sort();
    assert_eq!(logged, pks, "both clients are in the log");
}
