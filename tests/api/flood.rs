//! A flood of failed client authentications costs what the issue says it may, and no more:
//! unknown clients and generated secrets never run argon2, a flood from one address is refused
//! before any hashing without locking the real client out, and argon2 work is bounded (503
//! beyond the queue). The memory and latency figures are a benchmark: bench/flood.sh.

use portcullis::client::NewClient;

use crate::helpers::*;

const ARGON2_CLIENT: &str = "portcullis_argon2_verifications_total{purpose=\"client_secret\"}";
const TYPED: &str = "an-admin-typed-secret-value";

async fn argon2_runs(app: &TestApp) -> f64 {
    metric(app, ARGON2_CLIENT).await
}

async fn refused_generically(resp: reqwest::Response) {
    assert_oauth_error(resp, 401, "invalid_client").await;
}

async fn unknown_clients_and_generated_secrets_never_run_argon2(backend: Backend) {
    let app = spawn_app(backend).await.expect(crate::helpers::NO_POSTGRES);
    // RFC 6749 2.2: a client_id is public; failures against it must be cheap.
    let generated = app.create_client("Generated only", &["read"]);
    for i in 0..5 {
        refused_generically(
            app.token_basic(&format!("no-such-client-{i}"), "guess", &[GRANT_CC])
                .await,
        )
        .await;
        refused_generically(
            app.token_basic(&generated.client_id, "wrong secret", &[GRANT_CC])
                .await,
        )
        .await;
    }
    assert_eq!(
        argon2_runs(&app).await,
        0.0,
        "no argon2 for unknown clients or generated secrets"
    );
    // A client with an admin-typed secret: a wrong secret costs one argon2 verification; the
    // right one another, once: afterwards this process recognises it by SHA-256.
    let typed = app.create_client("Typed", &["read"]);
    app.add_secret(&typed.client_id, Some(TYPED), None);
    refused_generically(
        app.token_basic(&typed.client_id, "wrong secret", &[GRANT_CC])
            .await,
    )
    .await;
    assert_eq!(argon2_runs(&app).await, 1.0);
    assert_eq!(
        app.token_basic(&typed.client_id, TYPED, &[GRANT_CC])
            .await
            .status(),
        200
    );
    assert_eq!(
        app.token_basic(&typed.client_id, TYPED, &[GRANT_CC])
            .await
            .status(),
        200
    );
    assert_eq!(argon2_runs(&app).await, 2.0);
    // The generated secret of the same client still needs no argon2.
    assert_eq!(
        app.token_basic(&typed.client_id, &typed.secret, &[GRANT_CC])
            .await
            .status(),
        200
    );
    assert_eq!(argon2_runs(&app).await, 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_clients_and_generated_secrets_never_run_argon2_sqlite() {
    unknown_clients_and_generated_secrets_never_run_argon2(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(portcullis_test_postgres),
    ignore = "PORTCULLIS_TEST_POSTGRES_URL is not set"
)]
async fn unknown_clients_and_generated_secrets_never_run_argon2_postgres() {
    unknown_clients_and_generated_secrets_never_run_argon2(Backend::Postgres).await
}

async fn token_from(app: &TestApp, id: &str, secret: &str, address: &str) -> reqwest::Response {
    app.http
        .post(app.token_url())
        .basic_auth(id, Some(secret))
        .header("X-Forwarded-For", address)
        .form(&[GRANT_CC])
        .send()
        .await
        .unwrap()
}

async fn behind_a_proxy(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |s| {
        s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await
}

async fn a_flood_from_one_address_is_refused_before_hashing_and_locks_nobody_out(backend: Backend) {
    let app = behind_a_proxy(backend)
        .await
        .expect(crate::helpers::NO_POSTGRES);
    let c = app.create_client("Flooded", &["read"]);
    app.add_secret(&c.client_id, Some(TYPED), None);
    let attacker = "203.0.113.66";
    for _ in 0..portcullis::client::auth_throttle::PAIR_LIMIT {
        refused_generically(token_from(&app, &c.client_id, "wrong secret", attacker).await).await;
    }
    let before = argon2_runs(&app).await;
    // Past the limit: 429 with Retry-After (RFC 6585 4), even with the right secret, and
    // nothing is hashed.
    for secret in ["wrong secret", TYPED] {
        let resp = token_from(&app, &c.client_id, secret, attacker).await;
        assert_eq!(resp.status(), 429);
        let wait: u64 = resp.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&wait), "{wait}");
        assert_eq!(
            resp.json::<serde_json::Value>().await.unwrap()["error"],
            "too_many_requests"
        );
    }
    assert_eq!(argon2_runs(&app).await, before, "no argon2 once throttled");
    // The real client, at its own address, is not affected.
    assert_eq!(
        token_from(&app, &c.client_id, TYPED, "198.51.100.10")
            .await
            .status(),
        200
    );
    assert_eq!(
        token_from(&app, &c.client_id, &c.secret, "198.51.100.10")
            .await
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_one_address_is_refused_before_hashing_and_locks_nobody_out_sqlite() {
    a_flood_from_one_address_is_refused_before_hashing_and_locks_nobody_out(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(portcullis_test_postgres),
    ignore = "PORTCULLIS_TEST_POSTGRES_URL is not set"
)]
async fn a_flood_from_one_address_is_refused_before_hashing_and_locks_nobody_out_postgres() {
    a_flood_from_one_address_is_refused_before_hashing_and_locks_nobody_out(Backend::Postgres).await
}

async fn argon2_work_is_bounded_and_the_excess_gets_503(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        s.argon2_concurrency = 1;
        s.argon2_queue = 1;
    })
    .await
    .expect(crate::helpers::NO_POSTGRES);
    let c = app.create_client_with(NewClient {
        name: "Typed only".into(),
        scopes: vec!["read".into()],
        ..Default::default()
    });
    app.add_secret(&c.client_id, Some(TYPED), None);
    // 32 wrong secrets at once, each from its own address (under every throttle): one
    // verification runs, one waits, the rest are told to come back.
    let requests = (0..32).map(|i| {
        let app = &app;
        let id = c.client_id.clone();
        async move { token_from(app, &id, "wrong secret", &format!("198.51.100.{}", i + 1)).await }
    });
    let responses = futures_util::future::join_all(requests).await;
    let mut refused = 0;
    let mut busy = 0;
    for resp in responses {
        match resp.status().as_u16() {
            401 => refused += 1,
            503 => {
                busy += 1;
                assert_eq!(resp.headers()["retry-after"], "1");
                let body: serde_json::Value = resp.json().await.unwrap();
                assert_eq!(body["error"], "temporarily_unavailable");
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(busy > 0, "some requests found the queue full");
    assert_eq!(
        argon2_runs(&app).await,
        refused as f64,
        "one verification per 401, none per 503"
    );
    // The valid client is served meanwhile and afterwards.
    assert_eq!(
        token_from(&app, &c.client_id, TYPED, "192.0.2.1")
            .await
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argon2_work_is_bounded_and_the_excess_gets_503_sqlite() {
    argon2_work_is_bounded_and_the_excess_gets_503(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(portcullis_test_postgres),
    ignore = "PORTCULLIS_TEST_POSTGRES_URL is not set"
)]
async fn argon2_work_is_bounded_and_the_excess_gets_503_postgres() {
    argon2_work_is_bounded_and_the_excess_gets_503(Backend::Postgres).await
}
