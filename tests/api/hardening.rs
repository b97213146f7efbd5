//! Input hardening (issue 10): untrusted page numbers, NUL and control characters, look-alike
//! names, registered keys, strict JSON bodies, the Bearer scheme, CORS and the metrics listener.

use portcullis::client::NewClient;
use portcullis::user::Role;

use crate::helpers::*;
use crate::on_both_backends;

const PASSWORD: &str = "correct horse battery staple";

impl TestApp {
    /// A browser signed in to the admin area as a new admin.
    async fn admin_browser(&self, username: &str) -> reqwest::Client {
        self.create_user(username, PASSWORD, Role::Admin);
        let browser = self.browser();
        let resp = sign_in(self, &browser, username, PASSWORD, "/admin/clients").await;
        assert_eq!(resp.status(), 303);
        browser
    }

    /// A `portcullis:admin` access token for the JSON admin API.
    async fn admin_api_token(&self) -> String {
        let c = self.create_client_with(NewClient {
            name: "Hardening API caller".into(),
            scopes: vec!["portcullis:admin".into()],
            ..Default::default()
        });
        let t: serde_json::Value = self
            .token_basic(&c.client_id, &c.secret, &[GRANT_CC])
            .await
            .json()
            .await
            .unwrap();
        t["access_token"].as_str().unwrap().to_string()
    }

    fn at(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// The CSRF token of a signed-in admin browser.
    #[allow(dead_code)]
    async fn admin_csrf(&self, browser: &reqwest::Client) -> String {
        let html = browser
            .get(self.at("/admin/clients"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        form_value(&html, "csrf_token").expect("a CSRF token on the page")
    }
}

on_both_backends!(a_huge_page_number_is_refused_not_wrapped);
async fn a_huge_page_number_is_refused_not_wrapped(app: TestApp) {
    let browser = app.admin_browser("pager").await;
    let token = app.admin_api_token().await;
    let huge = i64::MAX.to_string();
    for path in [
        format!("/admin/clients?page={huge}"),
        format!("/admin/audit?page={huge}"),
        "/admin/clients?page=99999999999999999999999".to_string(),
    ] {
        let resp = browser.get(app.at(&path)).send().await.unwrap();
        assert_eq!(resp.status(), 400, "{path}");
        assert!(
            resp.text().await.unwrap().contains("page must be"),
            "{path}"
        );
    }
    for path in [
        format!("/admin/api/v1/clients?page={huge}"),
        format!("/admin/api/v1/audit-events?page={huge}"),
    ] {
        let resp = app
            .http
            .get(app.at(&path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{path}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "invalid", "{body}");
    }
    // Ordinary pages still work, and a page past the end is simply empty.
    let resp = app
        .http
        .get(app.at("/admin/api/v1/clients?page=1000000"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["items"], serde_json::json!([]));
    assert_eq!(
        browser
            .get(app.at("/admin/clients?page=2"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

on_both_backends!(control_characters_are_refused_before_any_query);
async fn control_characters_are_refused_before_any_query(app: TestApp) {
    // The token endpoint: NUL in client_id (body and Basic) is an RFC 6749 5.2 error.
    let resp = app
        .http
        .post(app.token_url())
        .form(&[GRANT_CC, ("client_id", "a\0b"), ("client_secret", "x")])
        .send()
        .await
        .unwrap();
    assert_oauth_error(resp, 400, "invalid_request").await;
    let resp = app.token_basic("a\0b", "x", &[GRANT_CC]).await;
    assert_oauth_error(resp, 400, "invalid_request").await;
    let resp = app
        .http
        .post(app.at("/oauth/introspect"))
        .form(&[("token", "t\0"), ("client_id", "c"), ("client_secret", "s")])
        .send()
        .await
        .unwrap();
    assert_oauth_error(resp, 400, "invalid_request").await;
    // The authorization endpoint: a page, not a query.
    let resp = app
        .http
        .get(app.at("/oauth/authorize?client_id=%00&response_type=code"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // The login form: NUL in the username.
    let browser = app.browser();
    let resp = sign_in(&app, &browser, "admin\0", PASSWORD, "/admin").await;
    assert_eq!(resp.status(), 400);
    // The admin area: NUL in the search term and in a path segment.
    let admin = app.admin_browser("nuladmin").await;
    let resp = admin
        .get(app.at("/admin/clients?q=%00"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("control characters"));
    let resp = admin
        .get(app.at("/admin/clients/a%00b"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // The JSON admin API: NUL in a body field, in a query, in a path.
    let token = app.admin_api_token().await;
    for (name, body) in [
        (
            "user",
            serde_json::json!({"username": "x\u{0}y", "password": PASSWORD, "role": "user"}),
        ),
        (
            "client",
            serde_json::json!({"name": "N", "description": "d\u{0}"}),
        ),
    ] {
        let path = if name == "user" {
            "/admin/api/v1/users"
        } else {
            "/admin/api/v1/clients"
        };
        let resp = app
            .http
            .post(app.at(path))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{name}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "invalid", "{body}");
    }
    let resp = app
        .http
        .get(app.at("/admin/api/v1/clients?q=%00"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = app
        .http
        .get(app.at("/admin/api/v1/clients/x%00"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // The server still works.
    let c = app.create_client("after NUL", &[]);
    assert_eq!(token_status(&app, &c.client_id, &c.secret).await, 200);
    assert_eq!(
        admin
            .get(app.at("/admin/clients?q=after"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

on_both_backends!(look_alike_names_with_bidi_or_zero_width_characters_are_refused);
async fn look_alike_names_with_bidi_or_zero_width_characters_are_refused(app: TestApp) {
    let lookalikes = [
        "Bank\u{202E}ppa",
        "Ex\u{200B}ample",
        "\u{FEFF}Billing",
        "Pay\u{2066}ments",
        "A\u{200F}B",
    ];
    // The admin form.
    let browser = app.admin_browser("namer").await;
    let csrf = app.admin_csrf(&browser).await;
    for name in lookalikes {
        let resp = browser
            .post(app.at("/admin/clients"))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("name", name),
                ("kind", "confidential"),
                ("grant_type", "client_credentials"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{name:?}");
        assert!(
            resp.text().await.unwrap().contains("zero-width"),
            "{name:?}"
        );
    }
    // The JSON API: client names and usernames.
    let token = app.admin_api_token().await;
    for name in lookalikes {
        let resp = app
            .http
            .post(app.at("/admin/api/v1/clients"))
            .bearer_auth(&token)
            .json(&serde_json::json!({"name": name}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{name:?}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert!(
            body["message"].as_str().unwrap().contains("zero-width"),
            "{body}"
        );
        let resp = app.http.post(app.at("/admin/api/v1/users")).bearer_auth(&token)
                .json(&serde_json::json!({"username": name.replace(' ', ""), "password": PASSWORD, "role": "user"}))
                .send().await.unwrap();
        assert_eq!(resp.status(), 400, "{name:?}");
    }
    // The CLI: non-zero exit, one line on stderr.
    let out = app
        .cli()
        .args(["client", "create", "--name", "Bank\u{202E}ppa"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("zero-width"), "{err}");
    // Ordinary names, accented ones included, still work.
    let resp = app
        .http
        .post(app.at("/admin/api/v1/clients"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "Café Müller"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
}

on_both_backends!(the_bearer_scheme_is_case_insensitive_on_the_admin_api);
async fn the_bearer_scheme_is_case_insensitive_on_the_admin_api(app: TestApp) {
    let token = app.admin_api_token().await;
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let resp = app
            .http
            .get(app.at("/admin/api/v1/clients"))
            .header("Authorization", format!("{scheme} {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{scheme}");
    }
    let resp = app
        .http
        .get(app.at("/admin/api/v1/clients"))
        .header("Authorization", format!("Basic {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

on_both_backends!(unknown_json_fields_are_refused_by_the_admin_api);
async fn unknown_json_fields_are_refused_by_the_admin_api(app: TestApp) {
    let token = app.admin_api_token().await;
    let c = app.create_client("Strict bodies", &[]);
    let cases = [
        (
            format!("/admin/api/v1/clients/{}/secrets", c.client_id),
            serde_json::json!({"expires_at": "2030-01-01"}),
            "expires_at",
        ),
        (
            "/admin/api/v1/clients".to_string(),
            serde_json::json!({"name": "X", "scope": ["a"]}),
            "scope",
        ),
        (
            format!("/admin/api/v1/clients/{}/redirect-uris", c.client_id),
            serde_json::json!({"uri": "https://a.example/cb", "url": "x"}),
            "url",
        ),
        (
            "/admin/api/v1/users".to_string(),
            serde_json::json!({"username": "u1", "password": PASSWORD, "role": "user", "admin": true}),
            "admin",
        ),
    ];
    for (path, body, field) in cases {
        let resp = app
            .http
            .post(app.at(&path))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{path}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "invalid", "{body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains(&format!("unknown field `{field}`")),
            "{body}"
        );
    }
    // No secret was created by the misspelt request; the right field name works.
    let resp = app
        .http
        .get(app.at(&format!("/admin/api/v1/clients/{}/secrets", c.client_id)))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let secrets: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(secrets.as_array().map(Vec::len), Some(1), "{secrets}");
    let resp = app
        .http
        .post(app.at(&format!("/admin/api/v1/clients/{}/secrets", c.client_id)))
        .bearer_auth(&token)
        .json(&serde_json::json!({"expires": "2030-01-01"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
}

/// A 1024-bit RSA public key (generated once with openssl), as a JWK modulus and as PEM.
const RSA_1024_N: &str = "2fVTeoatJTW9T4Ph3WBE7SSfW9tVzkYPxLKZqLCP7bwrE6UWWqQDST_TGV5P0M01NWv9RdopNcFBTu3qX71upml932CZRDo7A3uU-i9Ozqc5hPC0ckPqgpa1r0-mXRB04Ie7f2e_QQV1Fl0vzr2URVLBGVoY6va8OhxTA4-lnGc";
const RSA_1024_PEM: &str = "-----BEGIN PUBLIC KEY-----\nMIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDZ9VN6hq0lNb1Pg+HdYETtJJ9b\n21XORg/EspmosI/tvCsTpRZapANJP9MZXk/QzTU1a/1F2ik1wUFO7epfvW6maX3f\nYJlEOjsDe5T6L07OpzmE8LRyQ+qClrWvT6ZdEHTgh7t/Z79BBXUWXS/OvZRFUsEZ\nWhjq9rw6HFMDj6WcZwIDAQAB\n-----END PUBLIC KEY-----\n";

on_both_backends!(small_rsa_keys_and_malformed_jwks_are_refused_at_registration);
async fn small_rsa_keys_and_malformed_jwks_are_refused_at_registration(app: TestApp) {
    let small_jwks =
        serde_json::json!({"keys": [{"kty": "RSA", "n": RSA_1024_N, "e": "AQAB", "kid": "k1"}]})
            .to_string();
    let bad = [
        (small_jwks.as_str(), "1024 bits"),
        (RSA_1024_PEM, "1024 bits"),
        (r#"{"keys":"nope"}"#, "JWKS"),
    ];
    // The JSON API.
    let token = app.admin_api_token().await;
    for (jwks, expected) in bad {
        let resp = app.http.post(app.at("/admin/api/v1/clients")).bearer_auth(&token)
                .json(&serde_json::json!({"name": "Small key", "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks}))
                .send().await.unwrap();
        assert_eq!(resp.status(), 400, "{jwks}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert!(
            body["message"].as_str().unwrap().contains(expected),
            "{body}"
        );
    }
    // The admin form.
    let browser = app.admin_browser("keyadmin").await;
    let csrf = app.admin_csrf(&browser).await;
    for (jwks, expected) in bad {
        let resp = browser
            .post(app.at("/admin/clients"))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("name", "Small key"),
                ("kind", "confidential"),
                ("grant_type", "client_credentials"),
                ("auth_method", "private_key_jwt"),
                ("jwks", jwks),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{jwks}");
        assert!(resp.text().await.unwrap().contains(expected), "{jwks}");
    }
    // The CLI.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jwks.json");
    std::fs::write(&file, &small_jwks).unwrap();
    let out = app
        .cli()
        .args([
            "client",
            "create",
            "--name",
            "Small key",
            "--auth-method",
            "private_key_jwt",
            "--jwks-file",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("1024 bits"), "{err}");
}

crate::on_both_backends_with!(
    metrics_on_their_own_listener_are_not_served_on_the_main_one,
    |s| {
        s.metrics_bind = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    }
);
async fn metrics_on_their_own_listener_are_not_served_on_the_main_one(app: TestApp) {
    let metrics = app.metrics_address.clone().expect("a metrics listener");
    assert_ne!(metrics, app.address);
    let resp = app.http.get(app.at("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let resp = app
        .http
        .get(format!("{metrics}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("portcullis_"));
    // Only /metrics there: nothing else of the server.
    let resp = app
        .http
        .get(format!("{metrics}/oauth/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

on_both_backends!(without_a_metrics_address_metrics_are_on_the_main_listener);
async fn without_a_metrics_address_metrics_are_on_the_main_listener(app: TestApp) {
    assert!(app.metrics_address.is_none());
    let resp = app.http.get(app.at("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

on_both_backends!(cors_allows_exactly_the_origins_of_registered_redirect_uris);
async fn cors_allows_exactly_the_origins_of_registered_redirect_uris(app: TestApp) {
    let c = app.create_client_with(NewClient {
        name: "Browser app".into(),
        redirect_uris: vec!["https://app.example.com/callback".into()],
        ..Default::default()
    });
    app.await_client_cache();
    let preflight = |path: &str, origin: &str| {
        app.http
            .request(reqwest::Method::OPTIONS, app.at(path))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "authorization, content-type, dpop",
            )
            .send()
    };
    for path in ["/oauth/token", "/oauth/revoke"] {
        let resp = preflight(path, "https://app.example.com").await.unwrap();
        assert!(resp.status().is_success(), "{path}");
        let h = resp.headers();
        assert_eq!(
            h["access-control-allow-origin"], "https://app.example.com",
            "{path}"
        );
        assert!(
            h["access-control-allow-methods"]
                .to_str()
                .unwrap()
                .contains("POST")
        );
        let allowed = h["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase();
        for name in ["authorization", "content-type", "dpop"] {
            assert!(allowed.contains(name), "{allowed}");
        }
        assert!(h.get("access-control-allow-credentials").is_none());
        assert!(
            h.get_all("vary")
                .iter()
                .any(|v| v.to_str().unwrap().contains("Origin"))
        );
        // Another origin gets no CORS header at all.
        let resp = preflight(path, "https://evil.example").await.unwrap();
        assert!(
            resp.headers().get("access-control-allow-origin").is_none(),
            "{path}"
        );
        assert!(
            resp.headers().get("access-control-allow-methods").is_none(),
            "{path}"
        );
    }
    // The actual request from the registered origin carries the origin back.
    let resp = app
        .http
        .post(app.token_url())
        .header("Origin", "https://app.example.com")
        .basic_auth(&c.client_id, Some(&c.secret))
        .form(&[GRANT_CC])
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert!(
        resp.headers()
            .get("access-control-allow-credentials")
            .is_none()
    );
    let resp = app
        .http
        .post(app.token_url())
        .header("Origin", "https://evil.example")
        .basic_auth(&c.client_id, Some(&c.secret))
        .form(&[GRANT_CC])
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    // Public documents: any origin.
    for path in [
        "/oauth/jwks.json",
        "/.well-known/oauth-authorization-server",
    ] {
        let resp = app
            .http
            .get(app.at(path))
            .header("Origin", "https://anyone.example")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["access-control-allow-origin"], "*", "{path}");
    }
    // A disabled client's origins are no longer allowed.
    app.set_enabled(&c.client_id, false);
    app.await_client_cache();
    let resp = preflight("/oauth/token", "https://app.example.com")
        .await
        .unwrap();
    assert!(resp.headers().get("access-control-allow-origin").is_none());
}
