//! Per-client policies: IP allowlists (with trusted proxies) and token-endpoint rate limits.

use portcullis::client::NewClient;

use crate::helpers::*;
use crate::on_both_backends;

impl TestApp {
    fn client_with_policy(&self, name: &str, allow: &[&str], rate: Option<i64>) -> TestClient {
        self.create_client_with(NewClient {
            name: name.into(),
            ip_allowlist: allow.iter().map(|s| s.to_string()).collect(),
            rate_limit_per_minute: rate,
            ..Default::default()
        })
    }

    async fn token_from(&self, c: &TestClient, forwarded: Option<&str>) -> reqwest::Response {
        let mut req = self
            .http
            .post(self.token_url())
            .basic_auth(&c.client_id, Some(&c.secret))
            .form(&[GRANT_CC]);
        if let Some(f) = forwarded {
            req = req.header("x-forwarded-for", f);
        }
        req.send().await.unwrap()
    }
}

on_both_backends!(an_ip_allowlist_refuses_other_addresses_everywhere);
async fn an_ip_allowlist_refuses_other_addresses_everywhere(app: TestApp) {
    let outside = app.client_with_policy("Office only", &["10.0.0.0/8", "2001:db8::/32"], None);
    let local = app.client_with_policy("Local", &["127.0.0.1"], None);
    assert_eq!(
        app.token_from(&local, None).await.status(),
        200,
        "127.0.0.1 is allowed"
    );
    let resp = app.token_from(&outside, None).await;
    assert_eq!(
        resp.headers()["www-authenticate"],
        "Basic realm=\"portcullis\""
    );
    let body = assert_oauth_error(resp, 401, "invalid_client").await;
    // The same answer as a wrong secret: it must not confirm that the secret is right.
    assert_eq!(
        body["error_description"],
        crate::helpers::GENERIC_REFUSAL,
        "{body}"
    );
    // Introspection and revocation too.
    let t: serde_json::Value = app.token_from(&local, None).await.json().await.unwrap();
    for path in ["/oauth/introspect", "/oauth/revoke"] {
        let resp = app
            .http
            .post(format!("{}{path}", app.address))
            .basic_auth(&outside.client_id, Some(&outside.secret))
            .form(&[("token", t["access_token"].as_str().unwrap())])
            .send()
            .await
            .unwrap();
        assert_oauth_error(resp, 401, "invalid_client").await;
    }
    // Without trusted proxies, a forwarded-for header is ignored: it cannot open the list.
    assert_eq!(
        app.token_from(&outside, Some("10.1.2.3")).await.status(),
        401
    );
    // A disabled client is refused at introspection and revocation as well.
    app.set_enabled(&local.client_id, false);
    for path in ["/oauth/introspect", "/oauth/revoke"] {
        let resp = app
            .http
            .post(format!("{}{path}", app.address))
            .basic_auth(&local.client_id, Some(&local.secret))
            .form(&[("token", t["access_token"].as_str().unwrap())])
            .send()
            .await
            .unwrap();
        assert_oauth_error(resp, 401, "invalid_client").await;
    }
}

on_both_backends!(a_rate_limit_answers_429_with_retry_after);
async fn a_rate_limit_answers_429_with_retry_after(app: TestApp) {
    let limited = app.client_with_policy("Limited", &[], Some(3));
    let other = app.client_with_policy("Unlimited", &[], None);
    for i in 0..3 {
        assert_eq!(
            app.token_from(&limited, None).await.status(),
            200,
            "request {i}"
        );
    }
    let resp = app.token_from(&limited, None).await;
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let body = assert_oauth_error(resp, 429, "too_many_requests").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("3 token requests per minute")
    );
    assert_eq!(
        app.token_from(&other, None).await.status(),
        200,
        "other clients are not affected"
    );
    // A wrong secret does not use up the client's requests: the limit counts authenticated ones.
    let stranger = TestClient {
        secret: "wrong".into(),
        ..limited
    };
    assert_eq!(app.token_from(&stranger, None).await.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxy_names_the_client_address() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.trusted_proxies = vec![
            "127.0.0.1/32".parse().unwrap(),
            "192.0.2.0/24".parse().unwrap(),
        ];
    })
    .await
    .unwrap();
    let c = app.client_with_policy("Behind proxy", &["203.0.113.7"], None);
    assert_eq!(app.token_from(&c, Some("203.0.113.7")).await.status(), 200);
    // Several hops: the rightmost address that is not a trusted proxy counts.
    assert_eq!(
        app.token_from(&c, Some("198.51.100.9, 203.0.113.7, 192.0.2.10"))
            .await
            .status(),
        200
    );
    // Anything the client wrote to the left of its real address is ignored.
    assert_eq!(
        app.token_from(&c, Some("203.0.113.7, 198.51.100.1"))
            .await
            .status(),
        401
    );
    // No header, or a malformed one, from the proxy: the address is unknown, so refused.
    assert_eq!(app.token_from(&c, None).await.status(), 401);
    assert_eq!(app.token_from(&c, Some("not-an-ip")).await.status(), 401);
}
