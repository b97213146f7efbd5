//! Metadata (RFC 8414), JWKS and health.

use crate::helpers::TestApp;
use crate::on_both_backends;

on_both_backends!(metadata_lists_exactly_what_is_supported);
async fn metadata_lists_exactly_what_is_supported(app: TestApp) {
    let resp = app
        .http
        .get(format!(
            "{}/.well-known/oauth-authorization-server",
            app.address
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let m: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(m["issuer"], app.issuer);
    assert_eq!(m["token_endpoint"], format!("{}/oauth/token", app.issuer));
    assert_eq!(m["jwks_uri"], format!("{}/oauth/jwks.json", app.issuer));
    assert_eq!(
        m["authorization_endpoint"],
        format!("{}/oauth/authorize", app.issuer)
    );
    assert_eq!(
        m["introspection_endpoint"],
        format!("{}/oauth/introspect", app.issuer)
    );
    assert_eq!(
        m["revocation_endpoint"],
        format!("{}/oauth/revoke", app.issuer)
    );
    assert_eq!(
        m["grant_types_supported"],
        serde_json::json!(["authorization_code", "client_credentials", "refresh_token"])
    );
    assert_eq!(m["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        m["code_challenge_methods_supported"],
        serde_json::json!(["S256"]),
        "never plain (RFC 9700 2.1.1)"
    );
    // client_secret_jwt is always offered: its keys are sealed with the master key.
    assert_eq!(
        m["token_endpoint_auth_methods_supported"],
        serde_json::json!([
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "client_secret_jwt",
            "none"
        ])
    );
    for endpoint in ["introspection", "revocation"] {
        assert_eq!(
            m[format!("{endpoint}_endpoint_auth_methods_supported")],
            serde_json::json!([
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt",
                "client_secret_jwt"
            ])
        );
    }
    for endpoint in ["token", "introspection", "revocation"] {
        assert_eq!(
            m[format!("{endpoint}_endpoint_auth_signing_alg_values_supported")],
            serde_json::json!(["RS256", "ES256", "HS256"])
        );
    }
}

on_both_backends!(jwks_publishes_the_es256_key);
async fn jwks_publishes_the_es256_key(app: TestApp) {
    let jwks: serde_json::Value = app
        .http
        .get(format!("{}/oauth/jwks.json", app.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kty"], "EC");
    assert_eq!(keys[0]["crv"], "P-256");
    assert_eq!(keys[0]["alg"], "ES256");
    assert_eq!(keys[0]["use"], "sig");
    assert!(keys[0]["kid"].as_str().is_some_and(|k| !k.is_empty()));
    assert!(
        keys[0].get("d").is_none(),
        "the private key must not be published"
    );
}

on_both_backends!(metrics_count_requests_tokens_and_failures);
async fn metrics_count_requests_tokens_and_failures(app: TestApp) {
    let c = app.create_client("Metered", &[]);
    for _ in 0..2 {
        assert_eq!(
            app.token_basic(&c.client_id, &c.secret, &[crate::helpers::GRANT_CC])
                .await
                .status(),
            200
        );
    }
    assert_eq!(
        app.token_basic(&c.client_id, "wrong", &[crate::helpers::GRANT_CC])
            .await
            .status(),
        401
    );
    assert_eq!(
        app.token_basic("nobody", "wrong", &[crate::helpers::GRANT_CC])
            .await
            .status(),
        401
    );
    let resp = app
        .http
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = resp.text().await.unwrap();
    for line in [
        "portcullis_tokens_issued_total{grant_type=\"client_credentials\"} 2",
        "portcullis_client_auth_failures_total{reason=\"wrong secret\"} 1",
        "portcullis_client_auth_failures_total{reason=\"unknown client\"} 1",
        "portcullis_http_requests_total{endpoint=\"/oauth/token\",method=\"POST\",status=\"200\"} 2",
        "portcullis_http_requests_total{endpoint=\"/oauth/token\",method=\"POST\",status=\"401\"} 2",
        "portcullis_http_request_duration_seconds_count{endpoint=\"/oauth/token\"} 4",
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
    assert!(text.contains("portcullis_db_pool_connections "), "{text}");
    // Paths with ids are counted under their route pattern, not one series per id.
    let _ = app
        .http
        .get(format!("{}/admin/clients/{}", app.address, c.client_id))
        .send()
        .await
        .unwrap();
    let text = app
        .http
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text.contains(&c.client_id), "{text}");
}

on_both_backends!(liveness_and_readiness);
async fn liveness_and_readiness(app: TestApp) {
    let resp = app
        .http
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"status": "ok"}),
        "liveness does not touch the database"
    );
    let resp = app
        .http
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["database"], "ok");
    let missing = app
        .http
        .get(format!("{}/nope", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

/// The signing key is kept in the database: a restart on the same database signs with the
/// same key, so tokens issued before the restart still verify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_key_survives_a_restart() {
    let first = crate::helpers::spawn_app(crate::helpers::Backend::Sqlite)
        .await
        .unwrap();
    let jwks = |address: String| async move {
        reqwest::get(format!("{address}/oauth/jwks.json"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let before = jwks(first.address.clone()).await;
    let settings = portcullis::config::Settings::for_tests(&first.db.url);
    let second = portcullis::Application::build(settings).unwrap();
    let address = format!("http://127.0.0.1:{}", second.port());
    tokio::spawn(second.run_until_stopped());
    assert_eq!(jwks(address).await, before);
}
