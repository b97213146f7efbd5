//! People authorize apps: /oauth/authorize (RFC 6749 4.1, RFC 7636, RFC 9700), the code
//! exchange, refresh rotation (RFC 6749 6, RFC 9700 4.14.2), introspection (RFC 7662) and
//! revocation (RFC 7009).

use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge, RedirectUrl,
    Scope, TokenResponse, TokenUrl,
};
use portcullis::client::{GrantType, NewClient};
use portcullis::user::Role;

use crate::helpers::*;
use crate::on_both_backends;
use crate::token::verify_jwt;

pub(crate) const PASSWORD: &str = "correct horse battery staple";
pub(crate) const CB: &str = "https://app.example.com/cb";
pub(crate) const NATIVE_CB: &str = "http://127.0.0.1:8765/cb";

impl TestApp {
    /// A confidential web app allowed the code and refresh grants, redirecting to CB.
    pub(crate) fn web_app(&self, name: &str, scopes: &[&str]) -> TestClient {
        self.create_client_with(NewClient {
            name: name.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            redirect_uris: vec![CB.into()],
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            ..Default::default()
        })
    }

    /// A public (native) app: no secret, PKCE required.
    pub(crate) fn native_app(&self, name: &str) -> TestClient {
        self.create_client_with(NewClient {
            name: name.into(),
            public: true,
            scopes: vec!["notes:read".into(), "notes:write".into()],
            redirect_uris: vec![NATIVE_CB.into()],
            ..Default::default()
        })
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub(crate) fn user_id(&self, username: &str) -> i64 {
        let users = portcullis::user::store::list(&mut self.pool.get().unwrap()).unwrap();
        users.iter().find(|u| u.username == username).unwrap().id.0
    }

    /// A browser in which `username` (a new user) is signed in.
    pub(crate) async fn signed_in(&self, username: &str) -> reqwest::Client {
        self.create_user(username, PASSWORD, Role::User);
        let browser = self.browser();
        assert_eq!(
            sign_in(self, &browser, username, PASSWORD, "/")
                .await
                .status(),
            303
        );
        browser
    }

    pub(crate) async fn introspect(&self, c: &TestClient, token: &str) -> serde_json::Value {
        let resp = self
            .http
            .post(self.url("/oauth/introspect"))
            .basic_auth(&c.client_id, Some(&c.secret))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }

    pub(crate) async fn revoke(&self, c: &TestClient, token: &str) -> reqwest::Response {
        self.http
            .post(self.url("/oauth/revoke"))
            .basic_auth(&c.client_id, Some(&c.secret))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap()
    }

    /// The authorization_code exchange with client_secret_basic (or client_id alone for a
    /// public client, whose secret is empty).
    pub(crate) async fn exchange(
        &self,
        c: &TestClient,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut form: Vec<(&str, &str)> = form.to_vec();
        form.insert(0, ("grant_type", "authorization_code"));
        let req = self.http.post(self.token_url());
        let req = if c.secret.is_empty() {
            form.push(("client_id", &c.client_id));
            req
        } else {
            req.basic_auth(&c.client_id, Some(&c.secret))
        };
        req.form(&form).send().await.unwrap()
    }

    pub(crate) async fn refresh(
        &self,
        c: &TestClient,
        refresh_token: &str,
        scope: Option<&str>,
    ) -> reqwest::Response {
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        if let Some(s) = scope {
            form.push(("scope", s));
        }
        self.token_basic(&c.client_id, &c.secret, &form).await
    }
}

pub(crate) fn authorize_path(client_id: &str, params: &[(&str, &str)]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("response_type", "code");
    q.append_pair("client_id", client_id);
    for (k, v) in params {
        q.append_pair(k, v);
    }
    format!("/oauth/authorize?{}", q.finish())
}

pub(crate) fn pkce() -> (String, String) {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    (
        verifier.secret().to_string(),
        challenge.as_str().to_string(),
    )
}

pub(crate) fn location(resp: &reqwest::Response) -> url::Url {
    url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap()
}

pub(crate) fn query_param(url: &url::Url, key: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// The consent form on a page: its action (unescaped) and CSRF token.
pub(crate) fn consent_form(html: &str) -> (String, String) {
    let start = html
        .find("action=\"/oauth/authorize?")
        .expect("the consent form")
        + "action=\"".len();
    let end = html[start..].find('"').unwrap();
    let action = html[start..start + end].replace("&amp;", "&");
    (
        action,
        form_value(html, "csrf_token").expect("a CSRF token"),
    )
}

/// Opens the authorization URL in a signed-in browser, clicks Allow, and returns where the
/// browser is sent back to.
pub(crate) async fn approve(app: &TestApp, browser: &reqwest::Client, path: &str) -> url::Url {
    let page = browser.get(app.url(path)).send().await.unwrap();
    if page.status() == 302 {
        return location(&page); // remembered consent
    }
    assert_eq!(page.status(), 200, "the consent page");
    let html = page.text().await.unwrap();
    let (action, csrf) = consent_form(&html);
    let resp = browser
        .post(app.url(&action))
        .form(&[("csrf_token", csrf.as_str()), ("decision", "allow")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302, "{:?}", resp.headers().get("location"));
    location(&resp)
}

/// Gets a code for a web app with PKCE; returns (code, verifier).
pub(crate) async fn code_for(
    app: &TestApp,
    browser: &reqwest::Client,
    c: &TestClient,
    scope: &str,
) -> (String, String) {
    let (verifier, challenge) = pkce();
    let back = approve(
        app,
        browser,
        &authorize_path(
            &c.client_id,
            &[
                ("redirect_uri", CB),
                ("scope", scope),
                ("state", "s1"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        ),
    )
    .await;
    (query_param(&back, "code").expect("a code"), verifier)
}

pub(crate) async fn tokens(resp: reqwest::Response) -> serde_json::Value {
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    resp.json().await.unwrap()
}

on_both_backends!(the_whole_flow_in_a_browser);
async fn the_whole_flow_in_a_browser(app: TestApp) {
    let c = app.web_app("Invoice Viewer", &["invoices:read", "invoices:write"]);
    app.create_user("alice", PASSWORD, Role::User);
    let browser = app.browser();
    let (verifier, challenge) = pkce();
    let path = authorize_path(
        &c.client_id,
        &[
            ("redirect_uri", CB),
            ("scope", "invoices:read"),
            ("state", "xyz/+ =&"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    // Not signed in: to the sign-in page, and back to the same request after it.
    let resp = browser.get(app.url(&path)).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    let to_login = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(to_login.starts_with("/login?next="), "{to_login}");
    let resp = sign_in(&app, &browser, "alice", PASSWORD, &path).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], path.as_str());
    // The consent page names the app and the scope in plain words.
    let page = browser.get(app.url(&path)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    let html = page.text().await.unwrap();
    assert!(html.contains("Invoice Viewer"), "{html}");
    assert!(html.contains("Read your invoices"), "{html}");
    assert!(html.contains("app.example.com"), "{html}");
    assert!(
        html.contains("Signed in as <strong>alice</strong>"),
        "the consent page names who is signed in: {html}"
    );
    let (action, csrf) = consent_form(&html);
    let resp = browser
        .post(app.url(&action))
        .form(&[("csrf_token", csrf.as_str()), ("decision", "allow")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    let back = location(&resp);
    assert_eq!(
        format!(
            "{}://{}{}",
            back.scheme(),
            back.host_str().unwrap(),
            back.path()
        ),
        CB
    );
    assert_eq!(
        query_param(&back, "state").as_deref(),
        Some("xyz/+ =&"),
        "state comes back unchanged"
    );
    let code = query_param(&back, "code").unwrap();
    assert!(code.len() >= 43, "a 256-bit code");

    let t = tokens(
        app.exchange(
            &c,
            &[
                ("code", &code),
                ("redirect_uri", CB),
                ("code_verifier", &verifier),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["scope"], "invoices:read");
    let access = t["access_token"].as_str().unwrap();
    let refresh = t["refresh_token"].as_str().unwrap();
    let (_, claims) = verify_jwt(&app, access).await;
    assert_eq!(claims["sub"], app.user_id("alice").to_string());
    assert_eq!(claims["client_id"], c.client_id.as_str());
    assert_eq!(claims["scope"], "invoices:read");

    // Introspection sees both tokens; revoking the refresh token ends the family.
    let info = app.introspect(&c, access).await;
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["sub"], app.user_id("alice").to_string());
    assert_eq!(info["scope"], "invoices:read");
    let info = app.introspect(&c, refresh).await;
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["token_type"], "refresh_token");

    let r = tokens(app.refresh(&c, refresh, None).await).await;
    let access2 = r["access_token"].as_str().unwrap();
    let refresh2 = r["refresh_token"].as_str().unwrap();
    assert_ne!(refresh2, refresh, "rotated");
    assert_eq!(app.revoke(&c, refresh2).await.status(), 200);
    for token in [access, access2, refresh2] {
        assert_eq!(
            app.introspect(&c, token).await["active"],
            false,
            "revoked with its family"
        );
    }
    assert_oauth_error(app.refresh(&c, refresh2, None).await, 400, "invalid_grant").await;
    // On PostgreSQL the two refresh tokens' introspections were looked up in batches.
    let looked_up = metric(
        &app,
        "portcullis_db_batched_requests_total{statement=\"pg-find-refresh\"}",
    )
    .await;
    let expected = if app.db.sqlite_path.is_some() {
        0.0
    } else {
        2.0
    };
    assert_eq!(looked_up, expected);
}

on_both_backends!(the_oauth2_crate_as_the_app);
async fn the_oauth2_crate_as_the_app(app: TestApp) {
    let c = app.web_app("Crate App", &["notes:read"]);
    let browser = app.signed_in("bob").await;
    let client = BasicClient::new(ClientId::new(c.client_id.clone()))
        .set_client_secret(ClientSecret::new(c.secret.clone()))
        .set_auth_uri(AuthUrl::new(app.url("/oauth/authorize")).unwrap())
        .set_token_uri(TokenUrl::new(app.token_url()).unwrap())
        .set_redirect_uri(RedirectUrl::new(CB.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf_state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("notes:read".into()))
        .set_pkce_challenge(challenge)
        .url();
    let path = &auth_url.as_str()[app.address.len()..];
    let back = approve(&app, &browser, path).await;
    assert_eq!(
        query_param(&back, "state").as_deref(),
        Some(csrf_state.secret().as_str())
    );
    let code = query_param(&back, "code").unwrap();
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&app.http)
        .await
        .expect("the code exchange works with the oauth2 crate");
    assert_eq!(token.scopes().unwrap()[0].as_str(), "notes:read");
    verify_jwt(&app, token.access_token().secret()).await;
    let refreshed = client
        .exchange_refresh_token(token.refresh_token().unwrap())
        .request_async(&app.http)
        .await
        .expect("refresh works with the oauth2 crate");
    assert_ne!(
        refreshed.refresh_token().unwrap().secret(),
        token.refresh_token().unwrap().secret()
    );
}

on_both_backends!(fifty_concurrent_redemptions_one_wins_and_the_replay_revokes_it);
async fn fifty_concurrent_redemptions_one_wins_and_the_replay_revokes_it(app: TestApp) {
    let c = app.web_app("Racer", &["read"]);
    let browser = app.signed_in("carol").await;
    let (code, verifier) = code_for(&app, &browser, &c, "read").await;
    let attempts = (0..50)
        .map(|_| {
            let (http, url, c_id, secret, code, verifier) = (
                app.http.clone(),
                app.token_url(),
                c.client_id.clone(),
                c.secret.clone(),
                code.clone(),
                verifier.clone(),
            );
            tokio::spawn(async move {
                let resp = http
                    .post(url)
                    .basic_auth(c_id, Some(secret))
                    .form(&[
                        ("grant_type", "authorization_code"),
                        ("code", &code),
                        ("redirect_uri", CB),
                        ("code_verifier", &verifier),
                    ])
                    .send()
                    .await
                    .unwrap();
                let status = resp.status().as_u16();
                (status, resp.json::<serde_json::Value>().await.unwrap())
            })
        })
        .collect::<Vec<_>>();
    let mut wins = Vec::new();
    for a in attempts {
        let (status, body) = a.await.unwrap();
        match status {
            200 => wins.push(body),
            400 => assert_eq!(body["error"], "invalid_grant", "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(wins.len(), 1, "exactly one redemption succeeds");
    // The losers' replays revoked what the winner got (RFC 6749 4.1.2).
    let won = &wins[0];
    assert_eq!(
        app.introspect(&c, won["access_token"].as_str().unwrap())
            .await["active"],
        false
    );
    assert_oauth_error(
        app.refresh(&c, won["refresh_token"].as_str().unwrap(), None)
            .await,
        400,
        "invalid_grant",
    )
    .await;
}

on_both_backends!(a_replayed_code_revokes_the_tokens_it_produced);
async fn a_replayed_code_revokes_the_tokens_it_produced(app: TestApp) {
    let c = app.web_app("Replay", &["read"]);
    let browser = app.signed_in("dave").await;
    let (code, verifier) = code_for(&app, &browser, &c, "read").await;
    let form = [
        ("code", code.as_str()),
        ("redirect_uri", CB),
        ("code_verifier", verifier.as_str()),
    ];
    let t = tokens(app.exchange(&c, &form).await).await;
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(app.introspect(&c, access).await["active"], true);
    let body = assert_oauth_error(app.exchange(&c, &form).await, 400, "invalid_grant").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{body}"
    );
    assert_eq!(app.introspect(&c, access).await["active"], false);
    assert_oauth_error(
        app.refresh(&c, t["refresh_token"].as_str().unwrap(), None)
            .await,
        400,
        "invalid_grant",
    )
    .await;
}

on_both_backends!(malicious_redirect_uris_are_never_followed);
async fn malicious_redirect_uris_are_never_followed(app: TestApp) {
    let c = app.web_app("Target", &["read"]);
    let browser = app.signed_in("erin").await;
    let evil = [
        "https://app.example.com/cb/",
        "https://app.example.com/cb/../cb",
        "https://app.example.com/cbx",
        "https://app.example.com/c",
        "https://app.example.com/cb?x=1",
        "https://app.example.com/cb#frag",
        "https://app.example.com/cb%2F..%2Fevil",
        "https://app.example.com/%63b",
        "https://app.example.com:443/cb",
        "https://app.example.com:8443/cb",
        "http://app.example.com/cb",
        "HTTPS://app.example.com/cb",
        "https://APP.example.com/cb",
        "https://app.example.com./cb",
        "https://app.example.com.evil.example/cb",
        "https://evil.example/app.example.com/cb",
        "https://app.example.com@evil.example/cb",
        "https://user@app.example.com/cb",
        "https://evil.example/?next=https://app.example.com/cb",
        "https://xn--pp-8ja.example.com/cb",
        "https://аpp.example.com/cb",
        "//app.example.com/cb",
        "https://app.example.com\\@evil.example/cb",
        " https://app.example.com/cb",
        "javascript:alert(1)//https://app.example.com/cb",
        "https://app.example.com/cb%00",
    ];
    for uri in evil {
        let path = authorize_path(
            &c.client_id,
            &[("redirect_uri", uri), ("scope", "read"), ("state", "s")],
        );
        let resp = browser.get(app.url(&path)).send().await.unwrap();
        assert_eq!(resp.status(), 400, "{uri:?}");
        assert!(
            resp.headers().get("location").is_none(),
            "{uri:?} must never be redirected to"
        );
        assert!(
            resp.text().await.unwrap().contains("not registered"),
            "{uri:?}"
        );
    }
    // Unknown client, disabled client: a page as well, never a redirect.
    let path = authorize_path("no-such-client", &[("redirect_uri", CB)]);
    let resp = browser.get(app.url(&path)).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.headers().get("location").is_none());
    app.set_enabled(&c.client_id, false);
    let resp = browser
        .get(app.url(&authorize_path(&c.client_id, &[("redirect_uri", CB)])))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("disabled"));
}

on_both_backends!(errors_after_the_redirect_check_go_back_with_state);
async fn errors_after_the_redirect_check_go_back_with_state(app: TestApp) {
    let c = app.web_app("Errors", &["read"]);
    let native = app.native_app("Native");
    let browser = app.signed_in("frank").await;
    let (_, challenge) = pkce();
    let cases: Vec<(String, &str)> = vec![
        (
            authorize_path(
                &c.client_id,
                &[("redirect_uri", CB), ("state", "st"), ("scope", "admin")],
            ),
            "invalid_scope",
        ),
        (
            authorize_path(
                &c.client_id,
                &[
                    ("redirect_uri", CB),
                    ("state", "st"),
                    ("code_challenge", &challenge),
                    ("code_challenge_method", "plain"),
                ],
            ),
            "invalid_request",
        ),
        (
            authorize_path(
                &c.client_id,
                &[
                    ("redirect_uri", CB),
                    ("state", "st"),
                    ("code_challenge", "short"),
                    ("code_challenge_method", "S256"),
                ],
            ),
            "invalid_request",
        ),
        (
            authorize_path(
                &native.client_id,
                &[("redirect_uri", NATIVE_CB), ("state", "st")],
            ),
            "invalid_request",
        ),
        (
            format!(
                "/oauth/authorize?response_type=token&client_id={}&redirect_uri={}&state=st",
                c.client_id,
                urlencode(CB)
            ),
            "unsupported_response_type",
        ),
    ];
    for (path, error) in cases {
        let resp = browser.get(app.url(&path)).send().await.unwrap();
        assert_eq!(resp.status(), 302, "{path}");
        let back = location(&resp);
        assert!(
            back.as_str().starts_with("https://app.example.com/cb?")
                || back.as_str().starts_with(NATIVE_CB),
            "{back}"
        );
        assert_eq!(
            query_param(&back, "error").as_deref(),
            Some(error),
            "{path}"
        );
        assert!(query_param(&back, "error_description").is_some());
        assert_eq!(query_param(&back, "state").as_deref(), Some("st"));
        assert!(query_param(&back, "code").is_none());
    }
    // The user clicks Deny: access_denied, with state.
    let path = authorize_path(&c.client_id, &[("redirect_uri", CB), ("state", "st2")]);
    let html = browser
        .get(app.url(&path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (action, csrf) = consent_form(&html);
    let resp = browser
        .post(app.url(&action))
        .form(&[("csrf_token", csrf.as_str()), ("decision", "deny")])
        .send()
        .await
        .unwrap();
    let back = location(&resp);
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(query_param(&back, "state").as_deref(), Some("st2"));
}

on_both_backends!(consent_needs_csrf_and_is_bound_to_its_request);
async fn consent_needs_csrf_and_is_bound_to_its_request(app: TestApp) {
    let c = app.web_app("Bound", &["read", "write"]);
    let other = app.web_app("Other", &["read", "write"]);
    let browser = app.signed_in("grace").await;
    let read_only = authorize_path(&c.client_id, &[("redirect_uri", CB), ("scope", "read")]);
    let html = browser
        .get(app.url(&read_only))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (action, _) = consent_form(&html);
    for token in [None, Some("wrong-token")] {
        let mut form = vec![("decision", "allow")];
        if let Some(t) = token {
            form.push(("csrf_token", t));
        }
        let resp = browser
            .post(app.url(&action))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403, "CSRF token {token:?}");
        assert!(resp.headers().get("location").is_none());
    }
    // The approval shown for "read" at one client cannot be posted for more scope or for
    // another client.
    for replayed in [
        authorize_path(
            &c.client_id,
            &[("redirect_uri", CB), ("scope", "read write")],
        ),
        authorize_path(&other.client_id, &[("redirect_uri", CB), ("scope", "read")]),
    ] {
        let html = browser
            .get(app.url(&read_only))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let (_, csrf) = consent_form(&html);
        let resp = browser
            .post(app.url(&replayed))
            .form(&[("csrf_token", csrf.as_str()), ("decision", "allow")])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{replayed}");
        assert!(resp.headers().get("location").is_none());
    }
    // Posting the same answer twice: the second is refused.
    let html = browser
        .get(app.url(&read_only))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (action, csrf) = consent_form(&html);
    let first = browser
        .post(app.url(&action))
        .form(&[("csrf_token", csrf.as_str()), ("decision", "allow")])
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 302);
    let second = browser
        .post(app.url(&action))
        .form(&[("csrf_token", csrf.as_str()), ("decision", "allow")])
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 400);
    let _ = csrf;
}

on_both_backends!(consent_is_remembered_for_the_same_or_fewer_scopes);
async fn consent_is_remembered_for_the_same_or_fewer_scopes(app: TestApp) {
    let c = app.web_app("Remembered", &["read", "write"]);
    let browser = app.signed_in("heidi").await;
    approve(
        &app,
        &browser,
        &authorize_path(
            &c.client_id,
            &[("redirect_uri", CB), ("scope", "read write")],
        ),
    )
    .await;
    // Any subset, in any order (on PostgreSQL the database compares the scope lists).
    for scope in ["read write", "read", "write", "write read"] {
        let resp = browser
            .get(app.url(&authorize_path(
                &c.client_id,
                &[("redirect_uri", CB), ("scope", scope)],
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 302, "no page for {scope}");
        assert!(query_param(&location(&resp), "code").is_some());
    }
    let c2 = app.web_app("Remembered 2", &["read", "write"]);
    approve(
        &app,
        &browser,
        &authorize_path(&c2.client_id, &[("redirect_uri", CB), ("scope", "read")]),
    )
    .await;
    let resp = browser
        .get(app.url(&authorize_path(
            &c2.client_id,
            &[("redirect_uri", CB), ("scope", "read write")],
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "more scope: ask again");
}

on_both_backends!(a_hostile_client_name_renders_inert);
async fn a_hostile_client_name_renders_inert(app: TestApp) {
    let c = app.create_client_with(NewClient {
        name: "<script>alert(1)</script>".into(),
        description: "<img src=x onerror=alert(2)>".into(),
        redirect_uris: vec![CB.into()],
        ..Default::default()
    });
    let browser = app.signed_in("ivan").await;
    let html = browser
        .get(app.url(&authorize_path(&c.client_id, &[("redirect_uri", CB)])))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;&#x2F;script&gt;")
            || html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(!html.contains("<script>alert(1)"), "{html}");
    assert!(!html.contains("<img src=x"), "{html}");
}

on_both_backends!(pkce_errors_get_the_rfc_codes);
async fn pkce_errors_get_the_rfc_codes(app: TestApp) {
    let c = app.web_app("Pkce", &["read"]);
    let native = app.native_app("Pkce Native");
    let browser = app.signed_in("judy").await;
    // Wrong verifier: invalid_grant (RFC 7636 4.6), and the code is used up.
    let (code, verifier) = code_for(&app, &browser, &c, "read").await;
    let (other_verifier, _) = pkce();
    assert_oauth_error(
        app.exchange(
            &c,
            &[
                ("code", &code),
                ("redirect_uri", CB),
                ("code_verifier", &other_verifier),
            ],
        )
        .await,
        400,
        "invalid_grant",
    )
    .await;
    assert_oauth_error(
        app.exchange(
            &c,
            &[
                ("code", &code),
                ("redirect_uri", CB),
                ("code_verifier", &verifier),
            ],
        )
        .await,
        400,
        "invalid_grant",
    )
    .await;
    // Too short: invalid_request (RFC 7636 4.1). Missing: invalid_grant.
    let (code, _) = code_for(&app, &browser, &c, "read").await;
    assert_oauth_error(
        app.exchange(
            &c,
            &[
                ("code", &code),
                ("redirect_uri", CB),
                ("code_verifier", "tooshort"),
            ],
        )
        .await,
        400,
        "invalid_request",
    )
    .await;
    let (code, _) = code_for(&app, &browser, &c, "read").await;
    assert_oauth_error(
        app.exchange(&c, &[("code", &code), ("redirect_uri", CB)])
            .await,
        400,
        "invalid_grant",
    )
    .await;
    // A verifier for a code issued without a challenge: a downgrade, refused (RFC 9700 2.1.1).
    let back = approve(
        &app,
        &browser,
        &authorize_path(&c.client_id, &[("redirect_uri", CB), ("scope", "read")]),
    )
    .await;
    let code = query_param(&back, "code").unwrap();
    assert_oauth_error(
        app.exchange(
            &c,
            &[
                ("code", &code),
                ("redirect_uri", CB),
                ("code_verifier", &verifier),
            ],
        )
        .await,
        400,
        "invalid_grant",
    )
    .await;
    // A public client: client_id alone and PKCE.
    let (verifier, challenge) = pkce();
    let back = approve(
        &app,
        &browser,
        &authorize_path(
            &native.client_id,
            &[
                ("redirect_uri", NATIVE_CB),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        ),
    )
    .await;
    let code = query_param(&back, "code").unwrap();
    let t = tokens(
        app.exchange(
            &native,
            &[
                ("code", &code),
                ("redirect_uri", NATIVE_CB),
                ("code_verifier", &verifier),
            ],
        )
        .await,
    )
    .await;
    // ...which refreshes with client_id alone too.
    let resp = app
        .http
        .post(app.token_url())
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
            ("client_id", &native.client_id),
        ])
        .send()
        .await
        .unwrap();
    tokens(resp).await;
}

on_both_backends!(redirect_uri_rules_at_the_token_endpoint);
async fn redirect_uri_rules_at_the_token_endpoint(app: TestApp) {
    let c = app.web_app("Redirects", &["read"]);
    let browser = app.signed_in("karl").await;
    // Omitted in the authorization request (one registered URI): may be omitted here.
    let back = approve(
        &app,
        &browser,
        &authorize_path(&c.client_id, &[("scope", "read")]),
    )
    .await;
    let code = query_param(&back, "code").unwrap();
    tokens(app.exchange(&c, &[("code", &code)]).await).await;
    // Named there: required here (RFC 6749 4.1.3), and identical.
    let (code, verifier) = code_for(&app, &browser, &c, "read").await;
    assert_oauth_error(
        app.exchange(&c, &[("code", &code), ("code_verifier", &verifier)])
            .await,
        400,
        "invalid_grant",
    )
    .await;
    let (code, verifier) = code_for(&app, &browser, &c, "read").await;
    assert_oauth_error(
        app.exchange(
            &c,
            &[
                ("code", &code),
                ("redirect_uri", "https://APP.example.com/cb"),
                ("code_verifier", &verifier),
            ],
        )
        .await,
        400,
        "invalid_grant",
    )
    .await;
    // Another client cannot redeem the code.
    let (code, verifier) = code_for(&app, &browser, &c, "read").await;
    let thief = app.web_app("Thief", &["read"]);
    assert_oauth_error(
        app.exchange(
            &thief,
            &[
                ("code", &code),
                ("redirect_uri", CB),
                ("code_verifier", &verifier),
            ],
        )
        .await,
        400,
        "invalid_grant",
    )
    .await;
    // Expired (codes live 60 s).
    let (code, verifier) = code_for(&app, &browser, &c, "read").await;
    {
        use diesel::RunQueryDsl;
        diesel::sql_query("UPDATE grants SET code_expires_at = 0")
            .execute(&mut **app.pool.get().unwrap())
            .unwrap();
    }
    assert_oauth_error(
        app.exchange(
            &c,
            &[
                ("code", &code),
                ("redirect_uri", CB),
                ("code_verifier", &verifier),
            ],
        )
        .await,
        400,
        "invalid_grant",
    )
    .await;
    assert_oauth_error(
        app.exchange(&c, &[("redirect_uri", CB)]).await,
        400,
        "invalid_request",
    )
    .await;
}

on_both_backends!(refresh_rotation_narrowing_and_replay);
async fn refresh_rotation_narrowing_and_replay(app: TestApp) {
    let c = app.web_app("Refresher", &["read", "write"]);
    let browser = app.signed_in("lena").await;
    let (code, verifier) = code_for(&app, &browser, &c, "read write").await;
    let t = tokens(
        app.exchange(
            &c,
            &[
                ("code", &code),
                ("redirect_uri", CB),
                ("code_verifier", &verifier),
            ],
        )
        .await,
    )
    .await;
    let r0 = t["refresh_token"].as_str().unwrap().to_string();
    // Narrowing is allowed; the access token gets the narrower scope.
    let t1 = tokens(app.refresh(&c, &r0, Some("read")).await).await;
    assert_eq!(t1["scope"], "read");
    let r1 = t1["refresh_token"].as_str().unwrap().to_string();
    // Widening beyond the grant is not (RFC 6749 6).
    assert_oauth_error(
        app.refresh(&c, &r1, Some("read admin")).await,
        400,
        "invalid_scope",
    )
    .await;
    // The new refresh token keeps the original scope (RFC 6749 6), via client_secret_post.
    let t2 = tokens(
        app.token_post(
            &c.client_id,
            &c.secret,
            &[("grant_type", "refresh_token"), ("refresh_token", &r1)],
        )
        .await,
    )
    .await;
    assert_eq!(t2["scope"], "read write");
    let r2 = t2["refresh_token"].as_str().unwrap().to_string();
    let a2 = t2["access_token"].as_str().unwrap().to_string();
    // A disabled client cannot refresh.
    app.set_enabled(&c.client_id, false);
    assert_oauth_error(app.refresh(&c, &r2, None).await, 401, "invalid_client").await;
    app.set_enabled(&c.client_id, true);
    // Replaying a rotated token revokes the whole family (RFC 9700 4.14.2).
    assert_oauth_error(app.refresh(&c, &r0, None).await, 400, "invalid_grant").await;
    assert_oauth_error(app.refresh(&c, &r2, None).await, 400, "invalid_grant").await;
    assert_eq!(app.introspect(&c, &a2).await["active"], false);
    // Another client cannot use a refresh token.
    let (code, verifier) = code_for(&app, &browser, &c, "read").await;
    let t = tokens(
        app.exchange(
            &c,
            &[
                ("code", &code),
                ("redirect_uri", CB),
                ("code_verifier", &verifier),
            ],
        )
        .await,
    )
    .await;
    let other = app.web_app("Other Refresher", &["read"]);
    assert_oauth_error(
        app.refresh(&other, t["refresh_token"].as_str().unwrap(), None)
            .await,
        400,
        "invalid_grant",
    )
    .await;
    // Expired.
    {
        use diesel::RunQueryDsl;
        diesel::sql_query("UPDATE refresh_tokens SET expires_at = 1")
            .execute(&mut **app.pool.get().unwrap())
            .unwrap();
    }
    assert_oauth_error(
        app.refresh(&c, t["refresh_token"].as_str().unwrap(), None)
            .await,
        400,
        "invalid_grant",
    )
    .await;
    // A client not allowed refresh tokens gets none.
    let no_refresh = app.create_client_with(NewClient {
        name: "No refresh".into(),
        scopes: vec!["read".into()],
        redirect_uris: vec![CB.into()],
        grant_types: vec![GrantType::AuthorizationCode],
        ..Default::default()
    });
    let (code, verifier) = code_for(&app, &browser, &no_refresh, "read").await;
    let t = tokens(
        app.exchange(
            &no_refresh,
            &[
                ("code", &code),
                ("redirect_uri", CB),
                ("code_verifier", &verifier),
            ],
        )
        .await,
    )
    .await;
    assert!(t.get("refresh_token").is_none(), "{t}");
}

on_both_backends!(introspection_and_revocation_see_only_the_callers_tokens);
async fn introspection_and_revocation_see_only_the_callers_tokens(app: TestApp) {
    let a = app.create_client("Service A", &["read"]);
    let b = app.create_client("Service B", &["read"]);
    let token = |c: &TestClient| {
        let c = TestClient {
            client_id: c.client_id.clone(),
            secret: c.secret.clone(),
            secret_id: c.secret_id,
        };
        let app = &app;
        async move {
            let t: serde_json::Value = app
                .token_basic(&c.client_id, &c.secret, &[GRANT_CC])
                .await
                .json()
                .await
                .unwrap();
            t["access_token"].as_str().unwrap().to_string()
        }
    };
    let ta = token(&a).await;
    let info = app.introspect(&a, &ta).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["client_id"], a.client_id.as_str());
    assert_eq!(info["token_type"], "Bearer");
    assert!(info["exp"].as_i64().unwrap() > info["iat"].as_i64().unwrap());
    // B sees nothing of A's token and cannot revoke it.
    assert_eq!(
        app.introspect(&b, &ta).await,
        serde_json::json!({"active": false})
    );
    assert_eq!(app.revoke(&b, &ta).await.status(), 200);
    assert_eq!(app.introspect(&a, &ta).await["active"], true);
    // A revokes its own token.
    assert_eq!(app.revoke(&a, &ta).await.status(), 200);
    assert_eq!(app.introspect(&a, &ta).await["active"], false);
    // Unknown tokens: inactive, and revoking one is fine (RFC 7009 2.2).
    assert_eq!(app.introspect(&a, "garbage").await["active"], false);
    assert_eq!(app.introspect(&a, "a.b.c").await["active"], false);
    assert_eq!(app.revoke(&a, "garbage").await.status(), 200);
    // Both endpoints require client authentication.
    for path in ["/oauth/introspect", "/oauth/revoke"] {
        let resp = app
            .http
            .post(app.url(path))
            .form(&[("token", ta.as_str())])
            .send()
            .await
            .unwrap();
        assert_oauth_error(resp, 401, "invalid_client").await;
        let resp = app
            .http
            .post(app.url(path))
            .basic_auth(&a.client_id, Some("wrong"))
            .form(&[("token", ta.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.headers()["www-authenticate"],
            "Basic realm=\"portcullis\""
        );
        assert_oauth_error(resp, 401, "invalid_client").await;
        let resp = app
            .http
            .post(app.url(path))
            .basic_auth(&a.client_id, Some(&a.secret))
            .form(&[("nothing", "x")])
            .send()
            .await
            .unwrap();
        assert_oauth_error(resp, 400, "invalid_request").await;
        assert_eq!(
            app.http.get(app.url(path)).send().await.unwrap().status(),
            405
        );
    }
}

on_both_backends!(expired_families_and_revocations_are_purged);
async fn expired_families_and_revocations_are_purged(app: TestApp) {
    let c = app.web_app("Purged", &["read"]);
    let browser = app.signed_in("mia").await;
    let (code, verifier) = code_for(&app, &browser, &c, "read").await;
    let t = tokens(
        app.exchange(
            &c,
            &[
                ("code", &code),
                ("redirect_uri", CB),
                ("code_verifier", &verifier),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(
        app.revoke(&c, t["refresh_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let count = |sql: &str| {
        diesel::sql_query(sql)
            .get_result::<Count>(&mut **app.pool.get().unwrap())
            .unwrap()
            .n
    };
    assert_eq!(count("SELECT COUNT(*) AS n FROM revoked_tokens"), 1);
    assert_eq!(count("SELECT COUNT(*) AS n FROM refresh_tokens"), 1);
    // Once everything in them has expired, the background task deletes them (every
    // second in tests).
    diesel::sql_query("UPDATE grants SET expires_at = 1")
        .execute(&mut **app.pool.get().unwrap())
        .unwrap();
    diesel::sql_query("UPDATE revoked_tokens SET expires_at = 1")
        .execute(&mut **app.pool.get().unwrap())
        .unwrap();
    let started = std::time::Instant::now();
    while count("SELECT COUNT(*) AS n FROM grants")
        + count("SELECT COUNT(*) AS n FROM revoked_tokens")
        > 0
    {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "not purged"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        count("SELECT COUNT(*) AS n FROM refresh_tokens"),
        0,
        "refresh tokens go with their family"
    );
}

on_both_backends!(an_unauthenticated_replay_of_a_rotated_refresh_token_changes_nothing);
async fn an_unauthenticated_replay_of_a_rotated_refresh_token_changes_nothing(app: TestApp) {
    // RFC 6749 6 / RFC 9700 4.14.2: reuse detection revokes a family, but only for the
    // authenticated client; a confidential client's refresh token with its client_id alone,
    // or with an unsigned assertion, is refused before the token is even looked at.
    let c = app.web_app("Rotating", &["read"]);
    let browser = app.signed_in("rita").await;
    let (code, verifier) = code_for(&app, &browser, &c, "read").await;
    let t = tokens(
        app.exchange(
            &c,
            &[
                ("code", &code),
                ("redirect_uri", CB),
                ("code_verifier", &verifier),
            ],
        )
        .await,
    )
    .await;
    let r0 = t["refresh_token"].as_str().unwrap().to_string();
    let t1 = tokens(app.refresh(&c, &r0, None).await).await;
    let a1 = t1["access_token"].as_str().unwrap().to_string();
    let r1 = t1["refresh_token"].as_str().unwrap().to_string();
    let id_only = app
        .http
        .post(app.token_url())
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", r0.as_str()),
            ("client_id", &c.client_id),
        ])
        .send()
        .await
        .unwrap();
    assert_oauth_error(id_only, 401, "invalid_client").await;
    use base64::Engine;
    let b64 = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let now = portcullis::clock::Clock::system().now();
    let unsigned = format!(
        "{}.{}.",
        b64(serde_json::json!({"alg": "none"})),
        b64(serde_json::json!({
            "iss": c.client_id, "sub": c.client_id, "aud": app.issuer, "exp": now + 60, "iat": now, "jti": "unsigned-1"
        }))
    );
    let unsigned = app
        .http
        .post(app.token_url())
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", r0.as_str()),
            ("client_id", &c.client_id),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &unsigned),
        ])
        .send()
        .await
        .unwrap();
    assert_oauth_error(unsigned, 401, "invalid_client").await;
    // The family is intact: the current tokens still work.
    assert_eq!(app.introspect(&c, &a1).await["active"], true);
    tokens(app.refresh(&c, &r1, None).await).await;
}

on_both_backends!(a_public_client_revokes_its_own_tokens_with_its_client_id);
async fn a_public_client_revokes_its_own_tokens_with_its_client_id(app: TestApp) {
    // RFC 7009 2.1: a public client identifies itself with client_id alone.
    let native = app.native_app("Revoking Native");
    let browser = app.signed_in("paul").await;
    let (verifier, challenge) = pkce();
    let back = approve(
        &app,
        &browser,
        &authorize_path(
            &native.client_id,
            &[
                ("redirect_uri", NATIVE_CB),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        ),
    )
    .await;
    let code = query_param(&back, "code").unwrap();
    let t = tokens(
        app.exchange(
            &native,
            &[
                ("code", &code),
                ("redirect_uri", NATIVE_CB),
                ("code_verifier", &verifier),
            ],
        )
        .await,
    )
    .await;
    let refresh = t["refresh_token"].as_str().unwrap();
    let resp = app
        .http
        .post(app.url("/oauth/revoke"))
        .form(&[("token", refresh), ("client_id", native.client_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = app
        .http
        .post(app.token_url())
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", &native.client_id),
        ])
        .send()
        .await
        .unwrap();
    assert_oauth_error(resp, 400, "invalid_grant").await;
    // Another public client naming itself cannot revoke the first one's tokens.
    let other = app.native_app("Other Native");
    let (verifier, challenge) = pkce();
    let back = approve(
        &app,
        &browser,
        &authorize_path(
            &native.client_id,
            &[
                ("redirect_uri", NATIVE_CB),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        ),
    )
    .await;
    let code = query_param(&back, "code").unwrap();
    let t = tokens(
        app.exchange(
            &native,
            &[
                ("code", &code),
                ("redirect_uri", NATIVE_CB),
                ("code_verifier", &verifier),
            ],
        )
        .await,
    )
    .await;
    let refresh = t["refresh_token"].as_str().unwrap();
    let resp = app
        .http
        .post(app.url("/oauth/revoke"))
        .form(&[("token", refresh), ("client_id", other.client_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        200,
        "RFC 7009 2.2: no hint whether the token exists"
    );
    let resp = app
        .http
        .post(app.token_url())
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", &native.client_id),
        ])
        .send()
        .await
        .unwrap();
    tokens(resp).await;
}

// Issue 10, item 5: what a person authorized ends with their account, and with a password reset
// unless the admin keeps it.
on_both_backends!(deleting_a_user_revokes_every_token_their_apps_hold);
async fn deleting_a_user_revokes_every_token_their_apps_hold(app: TestApp) {
    let c = app.web_app("Calendar", &["read"]);
    let browser = app.signed_in("mallory").await;
    let (code, verifier) = code_for(&app, &browser, &c, "read").await;
    let t = tokens(
        app.exchange(
            &c,
            &[
                ("code", &code),
                ("redirect_uri", CB),
                ("code_verifier", &verifier),
            ],
        )
        .await,
    )
    .await;
    let access = t["access_token"].as_str().unwrap().to_string();
    let refresh = t["refresh_token"].as_str().unwrap().to_string();
    // A code issued but not yet redeemed dies too.
    let (pending_code, pending_verifier) = code_for(&app, &browser, &c, "read").await;
    assert_eq!(app.introspect(&c, &access).await["active"], true);
    let token = app.api_token("User admin", "portcullis:admin").await;
    let id = app.user_id("mallory");
    let resp = app
        .http
        .delete(app.url(&format!("/admin/api/v1/users/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    // The same browser's next authorization request asks to sign in: the session ended with
    // the account (its row is deleted with it), and no code is issued for a deleted person.
    let (_, challenge) = pkce();
    let path = authorize_path(
        &c.client_id,
        &[
            ("redirect_uri", CB),
            ("scope", "read"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let resp = browser.get(app.url(&path)).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    let to = resp.headers()["location"].to_str().unwrap();
    assert!(to.starts_with("/login?next="), "{to}");
    assert_eq!(app.introspect(&c, &access).await["active"], false);
    assert_oauth_error(app.refresh(&c, &refresh, None).await, 400, "invalid_grant").await;
    assert_oauth_error(
        app.exchange(
            &c,
            &[
                ("code", &pending_code),
                ("redirect_uri", CB),
                ("code_verifier", &pending_verifier),
            ],
        )
        .await,
        400,
        "invalid_grant",
    )
    .await;
}

on_both_backends!(a_password_reset_revokes_app_access_unless_the_admin_keeps_it);
async fn a_password_reset_revokes_app_access_unless_the_admin_keeps_it(app: TestApp) {
    let c = app.web_app("Mail", &["read"]);
    let token = app.api_token("User admin", "portcullis:admin").await;
    let reset = |who: i64, body: serde_json::Value| {
        app.http
            .patch(app.url(&format!("/admin/api/v1/users/{who}")))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    // Default: ticked.
    let browser = app.signed_in("nina").await;
    let (code, verifier) = code_for(&app, &browser, &c, "read").await;
    let t = tokens(
        app.exchange(
            &c,
            &[
                ("code", &code),
                ("redirect_uri", CB),
                ("code_verifier", &verifier),
            ],
        )
        .await,
    )
    .await;
    let resp = reset(
        app.user_id("nina"),
        serde_json::json!({"password": "a brand new password"}),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        app.introspect(&c, t["access_token"].as_str().unwrap())
            .await["active"],
        false
    );
    assert_oauth_error(
        app.refresh(&c, t["refresh_token"].as_str().unwrap(), None)
            .await,
        400,
        "invalid_grant",
    )
    .await;
    // Unticked: the apps keep their tokens (the person is still signed out).
    let browser = app.signed_in("omar").await;
    let (code, verifier) = code_for(&app, &browser, &c, "read").await;
    let t = tokens(
        app.exchange(
            &c,
            &[
                ("code", &code),
                ("redirect_uri", CB),
                ("code_verifier", &verifier),
            ],
        )
        .await,
    )
    .await;
    let resp = reset(
        app.user_id("omar"),
        serde_json::json!({"password": "a brand new password", "revoke_app_access": false}),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        app.introspect(&c, t["access_token"].as_str().unwrap())
            .await["active"],
        true
    );
    tokens(
        app.refresh(&c, t["refresh_token"].as_str().unwrap(), None)
            .await,
    )
    .await;
    // The admin area: the box is ticked by default, and unticking it keeps access.
    let admin = app.browser();
    app.create_user("root", PASSWORD, Role::Admin);
    assert_eq!(
        sign_in(&app, &admin, "root", PASSWORD, "/admin/users")
            .await
            .status(),
        303
    );
    let page = admin
        .get(app.url("/admin/users"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"name="revoke_app_access" value="1" checked"#));
    let csrf = form_value(&page, "csrf_token").unwrap();
    let browser = app.signed_in("pia").await;
    let (code, verifier) = code_for(&app, &browser, &c, "read").await;
    let t = tokens(
        app.exchange(
            &c,
            &[
                ("code", &code),
                ("redirect_uri", CB),
                ("code_verifier", &verifier),
            ],
        )
        .await,
    )
    .await;
    let pia = app.user_id("pia");
    let resp = admin
        .post(app.url(&format!("/admin/users/{pia}/password")))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("password", "a brand new password"),
            ("revoke_app_access", "1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(
        app.introspect(&c, t["access_token"].as_str().unwrap())
            .await["active"],
        false
    );
}

on_both_backends!(refreshes_that_arrive_together_are_each_decided_as_if_alone);
/// Refreshes that arrive together (on PostgreSQL they run as one statement, issue 13) are each
/// decided on their own: every family rotates once, and a token presented three times at once
/// is rotated once while the two replays revoke its family, and only its family (RFC 9700
/// 4.14.2).
async fn refreshes_that_arrive_together_are_each_decided_as_if_alone(app: TestApp) {
    let c = app.web_app("Together", &["read"]);
    let browser = app.signed_in("fay").await;
    let mut families = Vec::new();
    for _ in 0..12 {
        let (code, verifier) = code_for(&app, &browser, &c, "read").await;
        let form = [
            ("code", code.as_str()),
            ("redirect_uri", CB),
            ("code_verifier", verifier.as_str()),
        ];
        let t = tokens(app.exchange(&c, &form).await).await;
        families.push(t["refresh_token"].as_str().unwrap().to_string());
    }
    let mut presented: Vec<usize> = (0..families.len()).collect();
    presented.extend([0, 0]);
    let attempts = presented
        .into_iter()
        .map(|family| {
            let (http, url, c_id, secret, token) = (
                app.http.clone(),
                app.token_url(),
                c.client_id.clone(),
                c.secret.clone(),
                families[family].clone(),
            );
            tokio::spawn(async move {
                let resp = http
                    .post(url)
                    .basic_auth(c_id, Some(secret))
                    .form(&[("grant_type", "refresh_token"), ("refresh_token", &token)])
                    .send()
                    .await
                    .unwrap();
                let status = resp.status().as_u16();
                (
                    family,
                    status,
                    resp.json::<serde_json::Value>().await.unwrap(),
                )
            })
        })
        .collect::<Vec<_>>();
    let mut won: Vec<Vec<serde_json::Value>> = vec![Vec::new(); families.len()];
    let mut refused = 0;
    for a in attempts {
        let (family, status, body) = a.await.unwrap();
        match status {
            200 => won[family].push(body),
            400 => {
                assert_eq!(family, 0, "only the replayed token is refused: {body}");
                assert_eq!(body["error"], "invalid_grant", "{body}");
                refused += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(refused, 2, "the two replays are refused");
    // On PostgreSQL every refresh went through the batcher, which /metrics shows: 14 requests
    // (the replays included) in at most 14 statements. SQLite has no batcher.
    let carried = metric(
        &app,
        "portcullis_db_batched_requests_total{statement=\"pg-refresh\"}",
    )
    .await;
    let batches = metric(
        &app,
        "portcullis_db_batches_total{statement=\"pg-refresh\"}",
    )
    .await;
    if app.db.sqlite_path.is_some() {
        assert_eq!((carried, batches), (0.0, 0.0));
        // There every write went through the writer's transactions, counted the same way.
        let written = metric(
            &app,
            "portcullis_db_batched_requests_total{statement=\"sqlite-write\"}",
        )
        .await;
        let commits = metric(
            &app,
            "portcullis_db_batches_total{statement=\"sqlite-write\"}",
        )
        .await;
        assert!(written >= 14.0, "{written} writes");
        assert!((1.0..=written).contains(&commits), "{commits} commits");
    } else {
        assert_eq!(carried, 14.0, "every refresh was batched");
        assert!((1.0..=14.0).contains(&batches), "{batches} batches");
    }
    for (family, wins) in won.iter().enumerate() {
        assert_eq!(wins.len(), 1, "family {family} rotated exactly once");
        let next = wins[0]["refresh_token"].as_str().unwrap();
        let access = wins[0]["access_token"].as_str().unwrap();
        let resp = app.refresh(&c, next, None).await;
        if family == 0 {
            // The replays revoked the family, with what the winner got.
            assert_eq!(app.introspect(&c, access).await["active"], false);
            assert_oauth_error(resp, 400, "invalid_grant").await;
        } else {
            assert_eq!(resp.status(), 200, "family {family} goes on rotating");
            assert_eq!(app.introspect(&c, access).await["active"], true);
        }
    }
}
