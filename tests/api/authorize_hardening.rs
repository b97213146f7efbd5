//! Authorization-endpoint hardening (issue 10, items 3, 12, 13, 14): server scopes are never
//! granted by a person, `prompt`, remembered consent and public clients, the `iss` response
//! parameter (RFC 9207), exact-string redirect URIs and loopback ports (RFC 8252 7.3).

use portcullis::client::{GrantType, NewClient};

use crate::authorize::{
    CB, authorize_path, code_for, consent_form, location, pkce, query_param, tokens,
};
use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(server_scopes_are_never_granted_through_the_authorization_endpoint);
async fn server_scopes_are_never_granted_through_the_authorization_endpoint(app: TestApp) {
    // A client allowed portcullis:admin (for its own client_credentials calls) and an
    // ordinary scope; a person with role `user` approves it.
    let c = app.create_client_with(NewClient {
        name: "Admin-capable app".into(),
        scopes: vec!["portcullis:admin".into(), "notes:read".into()],
        redirect_uris: vec![CB.into()],
        grant_types: vec![
            GrantType::AuthorizationCode,
            GrantType::RefreshToken,
            GrantType::ClientCredentials,
        ],
        ..Default::default()
    });
    let browser = app.signed_in("ursula").await;
    // Asked for explicitly: invalid_scope at the redirect URI (RFC 6749 4.1.2.1).
    for scope in [
        "portcullis:admin",
        "notes:read portcullis:admin",
        "portcullis:read",
    ] {
        let resp = browser
            .get(app.url(&authorize_path(
                &c.client_id,
                &[("redirect_uri", CB), ("scope", scope), ("state", "s")],
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 302, "{scope}");
        let back = location(&resp);
        assert!(back.as_str().starts_with(CB), "{back}");
        assert_eq!(
            query_param(&back, "error").as_deref(),
            Some("invalid_scope"),
            "{scope}"
        );
        assert_eq!(query_param(&back, "state").as_deref(), Some("s"));
        assert!(query_param(&back, "code").is_none());
    }
    // No scope requested: the default leaves portcullis:* out, on the consent page too.
    let (verifier, challenge) = pkce();
    let path = authorize_path(
        &c.client_id,
        &[
            ("redirect_uri", CB),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let page = browser.get(app.url(&path)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("portcullis:admin"),
        "the consent page offers no server scope"
    );
    let (action, csrf) = consent_form(&html);
    let resp = browser
        .post(app.url(&action))
        .form(&[("csrf_token", csrf.as_str()), ("decision", "allow")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    let code = query_param(&location(&resp), "code").expect("a code");
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
    assert_eq!(t["scope"], "notes:read");
    let access = t["access_token"].as_str().unwrap().to_string();
    let (_, claims) = crate::token::verify_jwt(&app, &access).await;
    assert_eq!(claims["scope"], "notes:read");
    // The token cannot act on the admin API.
    for path in ["/admin/api/v1/users", "/admin/api/v1/clients"] {
        let resp = app
            .http
            .get(app.url(path))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap();
        assert!(
            resp.status() == 401 || resp.status() == 403,
            "{path}: {}",
            resp.status()
        );
    }
    let resp = app.http.post(app.url("/admin/api/v1/users")).bearer_auth(&access)
            .json(&serde_json::json!({"username": "mallory", "password": "a long enough password", "role": "admin"}))
            .send().await.unwrap();
    assert!(
        resp.status() == 401 || resp.status() == 403,
        "{}",
        resp.status()
    );
    // Refresh cannot widen to it (RFC 6749 6)...
    let refresh = t["refresh_token"].as_str().unwrap().to_string();
    assert_oauth_error(
        app.refresh(&c, &refresh, Some("notes:read portcullis:admin"))
            .await,
        400,
        "invalid_scope",
    )
    .await;
    // ...and a refresh token stored with it (by an older version) never yields it.
    let (code, verifier) = code_for(&app, &browser, &c, "notes:read").await;
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
    {
        use diesel::RunQueryDsl;
        diesel::sql_query("UPDATE refresh_tokens SET scope = 'notes:read portcullis:admin'")
            .execute(&mut **app.pool.get().unwrap())
            .unwrap();
    }
    let r = tokens(
        app.refresh(&c, t["refresh_token"].as_str().unwrap(), None)
            .await,
    )
    .await;
    assert_eq!(r["scope"], "notes:read");
    let r2 = tokens(
        app.refresh(&c, r["refresh_token"].as_str().unwrap(), None)
            .await,
    )
    .await;
    assert_eq!(
        r2["scope"], "notes:read",
        "the rotated refresh token keeps the narrowed scope"
    );
    // The client's own client_credentials token still gets portcullis:admin.
    let cc = tokens(
        app.token_basic(
            &c.client_id,
            &c.secret,
            &[GRANT_CC, ("scope", "portcullis:admin")],
        )
        .await,
    )
    .await;
    assert_eq!(cc["scope"], "portcullis:admin");
}

/// Asserts that an authorization response names this server as `iss` (RFC 9207 2).
pub(crate) fn assert_iss(app: &TestApp, back: &url::Url) {
    let iss: Vec<String> = back
        .query_pairs()
        .filter(|(k, _)| k == "iss")
        .map(|(_, v)| v.into_owned())
        .collect();
    assert_eq!(iss.len(), 1, "exactly one iss in {back}");
    assert_eq!(iss[0], app.issuer, "{back}");
}

on_both_backends!(every_authorization_response_names_the_issuer);
async fn every_authorization_response_names_the_issuer(app: TestApp) {
    // RFC 9207 3: announced in the metadata.
    let m: serde_json::Value = app
        .http
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(m["authorization_response_iss_parameter_supported"], true);
    let c = app.web_app("Mix-up target", &["read"]);
    let browser = app.signed_in("isabel").await;
    // Success (after the consent page, then with remembered consent).
    let (verifier, challenge) = pkce();
    let path = authorize_path(
        &c.client_id,
        &[
            ("redirect_uri", CB),
            ("scope", "read"),
            ("state", "s"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let back = crate::authorize::approve(&app, &browser, &path).await;
    assert!(query_param(&back, "code").is_some());
    assert_iss(&app, &back);
    let code = query_param(&back, "code").unwrap();
    tokens(
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
    let resp = browser
        .get(app.url(&authorize_path(
            &c.client_id,
            &[("redirect_uri", CB), ("scope", "read")],
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302, "remembered consent");
    assert_iss(&app, &location(&resp));
    // access_denied.
    let other = app.web_app("Denied app", &["read"]);
    let page = browser
        .get(app.url(&authorize_path(
            &other.client_id,
            &[("redirect_uri", CB), ("state", "d")],
        )))
        .send()
        .await
        .unwrap();
    let (action, csrf) = consent_form(&page.text().await.unwrap());
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
    assert_iss(&app, &back);
    // Errors of the request itself.
    for (extra, error) in [
        (vec![("scope", "nope")], "invalid_scope"),
        (vec![("scope", "portcullis:admin")], "invalid_scope"),
        (
            vec![
                ("code_challenge", "short"),
                ("code_challenge_method", "S256"),
            ],
            "invalid_request",
        ),
    ] {
        let mut params = vec![("redirect_uri", CB)];
        params.extend(extra);
        let resp = browser
            .get(app.url(&authorize_path(&c.client_id, &params)))
            .send()
            .await
            .unwrap();
        let back = location(&resp);
        assert_eq!(
            query_param(&back, "error").as_deref(),
            Some(error),
            "{back}"
        );
        assert_iss(&app, &back);
    }
    let resp = browser
        .get(app.url(&format!(
            "/oauth/authorize?response_type=token&client_id={}&redirect_uri={}",
            c.client_id,
            urlencode(CB)
        )))
        .send()
        .await
        .unwrap();
    let back = location(&resp);
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("unsupported_response_type")
    );
    assert_iss(&app, &back);
    // Error pages (no trusted redirect URI) are never redirects.
    let resp = browser
        .get(app.url(&authorize_path(
            &c.client_id,
            &[("redirect_uri", "https://evil.example/cb")],
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

/// Where an authorization request sends the browser: (status, Location).
async fn visit(app: &TestApp, browser: &reqwest::Client, path: &str) -> (u16, String) {
    let resp = browser.get(app.url(path)).send().await.unwrap();
    let status = resp.status().as_u16();
    let loc = resp
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, loc)
}

/// The error of a redirect to the client, with its `state` and `iss` checked.
fn client_error(app: &TestApp, loc: &str, state: &str) -> String {
    let back = url::Url::parse(loc).unwrap();
    assert!(
        back.as_str().starts_with(CB) || back.as_str().starts_with(crate::authorize::NATIVE_CB),
        "{back}"
    );
    assert_eq!(
        query_param(&back, "state").as_deref(),
        Some(state),
        "{back}"
    );
    assert!(query_param(&back, "code").is_none(), "{back}");
    assert_iss(app, &back);
    query_param(&back, "error").expect("an error")
}

on_both_backends!(public_clients_always_show_the_consent_page);
async fn public_clients_always_show_the_consent_page(app: TestApp) {
    // RFC 8252 8.6, RFC 6819 5.2.3.2: a public client's client_id proves nothing, so a
    // remembered consent is never applied silently.
    let native = app.native_app("Always asked");
    let browser = app.signed_in("petra").await;
    let (_, challenge) = pkce();
    let path = authorize_path(
        &native.client_id,
        &[
            ("redirect_uri", crate::authorize::NATIVE_CB),
            ("scope", "notes:read"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let back = crate::authorize::approve(&app, &browser, &path).await;
    assert!(query_param(&back, "code").is_some());
    // The same request again (as an attacker with their own PKCE challenge would craft it).
    let (_, evil_challenge) = pkce();
    let crafted = authorize_path(
        &native.client_id,
        &[
            ("redirect_uri", crate::authorize::NATIVE_CB),
            ("scope", "notes:read"),
            ("code_challenge", &evil_challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let resp = browser.get(app.url(&crafted)).send().await.unwrap();
    assert_eq!(
        resp.status(),
        200,
        "the consent page, not a silent redirect"
    );
    assert!(resp.text().await.unwrap().contains("Always asked"));
    // A confidential client keeps remembered consent.
    let web = app.web_app("Remembered", &["read"]);
    crate::authorize::approve(
        &app,
        &browser,
        &authorize_path(&web.client_id, &[("redirect_uri", CB), ("scope", "read")]),
    )
    .await;
    let (status, _) = visit(
        &app,
        &browser,
        &authorize_path(&web.client_id, &[("redirect_uri", CB), ("scope", "read")]),
    )
    .await;
    assert_eq!(status, 302);
}

on_both_backends!(prompt_consent_shows_the_page_despite_remembered_consent);
async fn prompt_consent_shows_the_page_despite_remembered_consent(app: TestApp) {
    let web = app.web_app("Prompted", &["read"]);
    let browser = app.signed_in("quentin").await;
    let path = authorize_path(&web.client_id, &[("redirect_uri", CB), ("scope", "read")]);
    crate::authorize::approve(&app, &browser, &path).await;
    assert_eq!(visit(&app, &browser, &path).await.0, 302, "remembered");
    let (status, _) = visit(
        &app,
        &browser,
        &authorize_path(
            &web.client_id,
            &[
                ("redirect_uri", CB),
                ("scope", "read"),
                ("prompt", "consent"),
            ],
        ),
    )
    .await;
    assert_eq!(status, 200, "prompt=consent always shows the page");
}

on_both_backends!(prompt_none_never_shows_a_page);
async fn prompt_none_never_shows_a_page(app: TestApp) {
    let web = app.web_app("Silent", &["read"]);
    let native = app.native_app("Silent native");
    let none = |client_id: &str, cb: &str| {
        authorize_path(
            client_id,
            &[("redirect_uri", cb), ("prompt", "none"), ("state", "n")],
        )
    };
    // Not signed in: login_required (OpenID Connect Core 3.1.2.6), at the redirect URI.
    let anonymous = app.browser();
    let (status, loc) = visit(&app, &anonymous, &none(&web.client_id, CB)).await;
    assert_eq!(status, 302);
    assert_eq!(client_error(&app, &loc, "n"), "login_required");
    // Signed in, never approved: consent_required.
    let browser = app.signed_in("rosa").await;
    let (status, loc) = visit(&app, &browser, &none(&web.client_id, CB)).await;
    assert_eq!(status, 302);
    assert_eq!(client_error(&app, &loc, "n"), "consent_required");
    // Approved before: the code, without a page.
    crate::authorize::approve(
        &app,
        &browser,
        &authorize_path(&web.client_id, &[("redirect_uri", CB)]),
    )
    .await;
    let (status, loc) = visit(&app, &browser, &none(&web.client_id, CB)).await;
    assert_eq!(status, 302);
    let back = url::Url::parse(&loc).unwrap();
    assert!(query_param(&back, "code").is_some(), "{back}");
    assert_iss(&app, &back);
    // A public client always needs the page: consent_required even after approval.
    let (v, challenge) = pkce();
    let _ = v;
    let native_path = |prompt: Option<&str>| {
        let mut p = vec![
            ("redirect_uri", crate::authorize::NATIVE_CB),
            ("state", "n"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        if let Some(pr) = prompt {
            p.push(("prompt", pr));
        }
        authorize_path(&native.client_id, &p)
    };
    crate::authorize::approve(&app, &browser, &native_path(None)).await;
    let (status, loc) = visit(&app, &browser, &native_path(Some("none"))).await;
    assert_eq!(status, 302);
    assert_eq!(client_error(&app, &loc, "n"), "consent_required");
    // Unknown values and `none` with another value: invalid_request.
    for bad in ["select_account", "none login", "none consent", "LOGIN"] {
        let (status, loc) = visit(
            &app,
            &browser,
            &authorize_path(
                &web.client_id,
                &[("redirect_uri", CB), ("prompt", bad), ("state", "n")],
            ),
        )
        .await;
        assert_eq!(status, 302, "{bad}");
        assert_eq!(client_error(&app, &loc, "n"), "invalid_request", "{bad}");
    }
}

on_both_backends!(prompt_login_asks_for_the_password_again);
async fn prompt_login_asks_for_the_password_again(app: TestApp) {
    let web = app.web_app("Sensitive", &["read"]);
    app.create_user(
        "sam",
        crate::authorize::PASSWORD,
        portcullis::user::Role::User,
    );
    let browser = app.browser();
    assert_eq!(
        sign_in(&app, &browser, "sam", crate::authorize::PASSWORD, "/")
            .await
            .status(),
        303
    );
    crate::authorize::approve(
        &app,
        &browser,
        &authorize_path(&web.client_id, &[("redirect_uri", CB)]),
    )
    .await;
    let path = authorize_path(
        &web.client_id,
        &[("redirect_uri", CB), ("prompt", "login"), ("state", "l")],
    );
    // A live session is not enough: to the sign-in page, which is shown.
    let (status, to_login) = visit(&app, &browser, &path).await;
    assert_eq!(status, 303);
    assert!(to_login.starts_with("/login?next="), "{to_login}");
    let page = browser.get(app.url(&to_login)).send().await.unwrap();
    assert_eq!(
        page.status(),
        200,
        "the sign-in form, even though a session is live"
    );
    let html = page.text().await.unwrap();
    let csrf = form_value(&html, "csrf_token").unwrap();
    let next = form_value(&html, "next").unwrap().replace("&amp;", "&");
    assert_eq!(next, path);
    let resp = browser
        .post(app.url("/login"))
        .form(&[
            ("username", "sam"),
            ("password", crate::authorize::PASSWORD),
            ("csrf_token", &csrf),
            ("next", &next),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(
        resp.headers()["location"],
        path.as_str(),
        "the same authorization request continues"
    );
    // Now the request goes through (consent was remembered).
    let (status, loc) = visit(&app, &browser, &path).await;
    assert_eq!(status, 302);
    let back = url::Url::parse(&loc).unwrap();
    assert!(query_param(&back, "code").is_some(), "{back}");
    assert_eq!(query_param(&back, "state").as_deref(), Some("l"));
    assert_iss(&app, &back);
    // The sign-in counted once: the same request again asks again.
    let (status, loc) = visit(&app, &browser, &path).await;
    assert_eq!(status, 303, "{loc}");
    assert!(loc.starts_with("/login?"), "{loc}");
    // Another request with prompt=login is not satisfied by a sign-in made for this one.
    let html = browser
        .get(app.url(&loc))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = form_value(&html, "csrf_token").unwrap();
    let resp = browser
        .post(app.url("/login"))
        .form(&[
            ("username", "sam"),
            ("password", crate::authorize::PASSWORD),
            ("csrf_token", &csrf),
            ("next", &path),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let other = authorize_path(
        &web.client_id,
        &[
            ("redirect_uri", CB),
            ("prompt", "login"),
            ("state", "other"),
        ],
    );
    let (status, loc) = visit(&app, &browser, &other).await;
    assert_eq!(status, 303, "{loc}");
}

/// A client as stored, read back from the database.
fn stored(app: &TestApp, client_id: &str) -> portcullis::client::Client {
    portcullis::client::store::find(&mut app.pool.get().unwrap(), client_id)
        .unwrap()
        .unwrap()
}

/// Runs the CLI against the test's database.
fn cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    app.cli().args(args).output().unwrap()
}

on_both_backends!(a_redirect_uri_is_stored_and_matched_as_typed);
async fn a_redirect_uri_is_stored_and_matched_as_typed(app: TestApp) {
    // Without a path: the URL parser would add a trailing slash; the typed string is kept.
    let typed = "https://app.example.com";
    let c = app.create_client_with(NewClient {
        name: "No slash".into(),
        scopes: vec!["read".into()],
        redirect_uris: vec![typed.into()],
        grant_types: vec![GrantType::AuthorizationCode],
        ..Default::default()
    });
    assert_eq!(stored(&app, &c.client_id).redirect_uris, [typed]);
    let browser = app.signed_in("tomas").await;
    let (verifier, challenge) = pkce();
    let back = crate::authorize::approve(
        &app,
        &browser,
        &authorize_path(
            &c.client_id,
            &[
                ("redirect_uri", typed),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        ),
    )
    .await;
    assert_eq!(back.host_str(), Some("app.example.com"));
    let code = query_param(&back, "code").expect("a code");
    // The token request names the same string (RFC 6749 4.1.3), not a normalized one.
    tokens(
        app.exchange(
            &c,
            &[
                ("code", &code),
                ("redirect_uri", typed),
                ("code_verifier", &verifier),
            ],
        )
        .await,
    )
    .await;
    let (verifier, challenge) = pkce();
    let back = crate::authorize::approve(
        &app,
        &browser,
        &authorize_path(
            &c.client_id,
            &[
                ("redirect_uri", typed),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        ),
    )
    .await;
    let code = query_param(&back, "code").unwrap();
    assert_oauth_error(
        app.exchange(
            &c,
            &[
                ("code", &code),
                ("redirect_uri", "https://app.example.com/"),
                ("code_verifier", &verifier),
            ],
        )
        .await,
        400,
        "invalid_grant",
    )
    .await;
    // The normalized form is another string: not registered, an error page.
    let resp = browser
        .get(app.url(&authorize_path(
            &c.client_id,
            &[("redirect_uri", "https://app.example.com/")],
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // The API, the admin area and the CLI store what was typed too.
    let admin = app.create_client_with(NewClient {
        name: "URI admin".into(),
        scopes: vec!["portcullis:admin".into()],
        ..Default::default()
    });
    let t = tokens(
        app.token_basic(&admin.client_id, &admin.secret, &[GRANT_CC])
            .await,
    )
    .await;
    let token = t["access_token"].as_str().unwrap();
    let resp = app.http.post(app.url("/admin/api/v1/clients")).bearer_auth(token)
            .json(&serde_json::json!({"name": "API typed", "redirect_uris": ["https://api.example.com"], "grant_types": ["authorization_code"]}))
            .send().await.unwrap();
    assert_eq!(resp.status(), 201);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        body["client"]["redirect_uris"],
        serde_json::json!(["https://api.example.com"])
    );
    let id = body["client"]["client_id"].as_str().unwrap();
    let resp = app
        .http
        .post(app.url(&format!("/admin/api/v1/clients/{id}/redirect-uris")))
        .bearer_auth(token)
        .json(&serde_json::json!({"uri": "https://api.example.com:443"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let uris: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(uris[1]["uri"], "https://api.example.com:443");
    for bad in [
        "https://api.example.com/a b",
        "https://api.example.com\\cb",
        "https://api.example.com/\tcb",
    ] {
        let resp = app
            .http
            .post(app.url(&format!("/admin/api/v1/clients/{id}/redirect-uris")))
            .bearer_auth(token)
            .json(&serde_json::json!({"uri": bad}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{bad:?}");
    }
    let out = cli(
        &app,
        &[
            "client",
            "create",
            "--name",
            "CLI typed",
            "--redirect-uri",
            "https://cli.example.com",
            "--output",
            "json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        created["client"]["redirect_uris"],
        serde_json::json!(["https://cli.example.com"])
    );
}

on_both_backends!(loopback_redirect_uris_match_any_port_only_when_the_client_opts_in);
async fn loopback_redirect_uris_match_any_port_only_when_the_client_opts_in(app: TestApp) {
    // RFC 8252 7.3: a native app listens on a port chosen at run time.
    let new = |name: &str, any_port: bool| NewClient {
        name: name.into(),
        public: true,
        scopes: vec!["notes:read".into()],
        redirect_uris: vec![
            "http://127.0.0.1/cb".into(),
            "http://[::1]/cb".into(),
            "http://localhost/cb".into(),
        ],
        loopback_any_port: any_port,
        ..Default::default()
    };
    let native = app.create_client_with(new("Ephemeral", true));
    let strict = app.create_client_with(new("Fixed port", false));
    let browser = app.signed_in("ulla").await;
    let request = |client_id: &str, uri: &str, challenge: &str| {
        authorize_path(
            client_id,
            &[
                ("redirect_uri", uri),
                ("code_challenge", challenge),
                ("code_challenge_method", "S256"),
            ],
        )
    };
    // Any port, on both loopback literals: the code comes back to that exact URI.
    for uri in [
        "http://127.0.0.1:53123/cb",
        "http://[::1]:4000/cb",
        "http://127.0.0.1/cb",
        "http://127.0.0.1:1/cb",
    ] {
        let (verifier, challenge) = pkce();
        let back =
            crate::authorize::approve(&app, &browser, &request(&native.client_id, uri, &challenge))
                .await;
        assert_eq!(
            format!(
                "{}://{}{}",
                back.scheme(),
                &back[url::Position::BeforeHost..url::Position::AfterPort],
                back.path()
            ),
            uri.to_string(),
            "{back}"
        );
        assert_iss(&app, &back);
        let code = query_param(&back, "code").unwrap();
        tokens(
            app.exchange(
                &native,
                &[
                    ("code", &code),
                    ("redirect_uri", uri),
                    ("code_verifier", &verifier),
                ],
            )
            .await,
        )
        .await;
    }
    // The token request must still name the very same URI, port included (RFC 6749 4.1.3).
    let (verifier, challenge) = pkce();
    let back = crate::authorize::approve(
        &app,
        &browser,
        &request(&native.client_id, "http://127.0.0.1:53123/cb", &challenge),
    )
    .await;
    let code = query_param(&back, "code").unwrap();
    assert_oauth_error(
        app.exchange(
            &native,
            &[
                ("code", &code),
                ("redirect_uri", "http://127.0.0.1:53124/cb"),
                ("code_verifier", &verifier),
            ],
        )
        .await,
        400,
        "invalid_grant",
    )
    .await;
    // Only the port may differ; localhost is not a loopback literal (RFC 8252 8.3).
    let (_, challenge) = pkce();
    for uri in [
        "http://localhost:53123/cb",
        "http://127.0.0.1:53123/cb/",
        "http://127.0.0.1:53123/cbx",
        "http://127.0.0.1:53123/CB",
        "http://127.0.0.1:53123/cb?x=1",
        "http://127.0.0.1:53123/cb#f",
        "https://127.0.0.1:53123/cb",
        "http://127.0.0.2:53123/cb",
        "http://127.0.0.1:99999/cb",
        "http://127.0.0.1:/cb",
        "http://127.0.0.1:+80/cb",
        "http://127.0.0.1:53123@evil.example/cb",
        "http://127.0.0.1:53123\\@evil.example/cb",
        "http://[::1]:53123@evil.example/cb",
        "http://[0:0:0:0:0:0:0:1]:53123/cb",
    ] {
        let resp = browser
            .get(app.url(&request(&native.client_id, uri, &challenge)))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{uri} must get an error page");
    }
    // Without the opt-in the port must match too.
    let resp = browser
        .get(app.url(&request(
            &strict.client_id,
            "http://127.0.0.1:53123/cb",
            &challenge,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        browser
            .get(app.url(&request(
                &strict.client_id,
                "http://127.0.0.1/cb",
                &challenge
            )))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

on_both_backends!(the_loopback_port_setting_is_the_same_in_the_api_the_admin_area_and_the_cli);
async fn the_loopback_port_setting_is_the_same_in_the_api_the_admin_area_and_the_cli(app: TestApp) {
    // The JSON API: in the body of create and replace, and shown.
    let admin = app.create_client_with(NewClient {
        name: "Port admin".into(),
        scopes: vec!["portcullis:admin".into()],
        ..Default::default()
    });
    let t = tokens(
        app.token_basic(&admin.client_id, &admin.secret, &[GRANT_CC])
            .await,
    )
    .await;
    let token = t["access_token"].as_str().unwrap();
    let resp = app.http.post(app.url("/admin/api/v1/clients")).bearer_auth(token)
            .json(&serde_json::json!({"name": "API native", "public": true, "redirect_uris": ["http://127.0.0.1/cb"], "loopback_any_port": true}))
            .send().await.unwrap();
    assert_eq!(resp.status(), 201);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["client"]["loopback_any_port"], true);
    let id = body["client"]["client_id"].as_str().unwrap().to_string();
    assert!(stored(&app, &id).loopback_any_port);
    let resp = app
        .http
        .put(app.url(&format!("/admin/api/v1/clients/{id}")))
        .bearer_auth(token)
        .json(&serde_json::json!({"name": "API native", "loopback_any_port": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(!stored(&app, &id).loopback_any_port);
    let doc: serde_json::Value = app
        .http
        .get(app.url("/admin/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        doc.to_string().contains("loopback_any_port"),
        "documented in OpenAPI"
    );
    // The CLI: create and policy.
    let out = cli(
        &app,
        &[
            "client",
            "create",
            "--name",
            "CLI native",
            "--public",
            "--redirect-uri",
            "http://[::1]/cb",
            "--loopback-any-port",
            "--output",
            "json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cli_id = created["client"]["client_id"].as_str().unwrap().to_string();
    assert!(stored(&app, &cli_id).loopback_any_port);
    let out = cli(
        &app,
        &["client", "policy", &cli_id, "--exact-loopback-port"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stored(&app, &cli_id).loopback_any_port);
    let out = cli(&app, &["client", "policy", &cli_id, "--loopback-any-port"]);
    assert!(out.status.success());
    assert!(stored(&app, &cli_id).loopback_any_port);
    // Each change is audited like any other settings change.
    let filter = portcullis::audit::store::AuditFilter {
        client_id: Some(cli_id.clone()),
        actor: None,
    };
    let (events, _) =
        portcullis::audit::store::page(&mut app.pool.get().unwrap(), &filter, 0, 100).unwrap();
    let details: Vec<String> = events.iter().map(|e| e.details.clone()).collect();
    assert!(
        details
            .iter()
            .any(|d| d.contains("loopback redirect URIs match any port")),
        "{details:?}"
    );
    assert!(
        details
            .iter()
            .any(|d| d.contains("match their registered port")),
        "{details:?}"
    );
    // The admin area: a checkbox on the client form.
    app.create_user(
        "porter",
        crate::authorize::PASSWORD,
        portcullis::user::Role::Admin,
    );
    let admin_browser = app.browser();
    assert_eq!(
        sign_in(
            &app,
            &admin_browser,
            "porter",
            crate::authorize::PASSWORD,
            "/admin/clients"
        )
        .await
        .status(),
        303
    );
    let html = admin_browser
        .get(app.url("/admin/clients/new"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("name=\"loopback_any_port\""),
        "the form offers it"
    );
    let csrf = form_value(&html, "csrf_token").unwrap();
    let resp = admin_browser
        .post(app.url("/admin/clients"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("name", "Form native"),
            ("kind", "public"),
            ("redirect_uris", "http://127.0.0.1/cb"),
            ("grant_type", "authorization_code"),
            ("loopback_any_port", "on"),
            ("enabled", "on"),
        ])
        .send()
        .await
        .unwrap();
    assert!(
        resp.status().is_redirection() || resp.status() == 200,
        "{}",
        resp.status()
    );
    let form_client = portcullis::client::store::list(&mut app.pool.get().unwrap())
        .unwrap()
        .into_iter()
        .find(|c| c.client.name == "Form native")
        .expect("created from the form")
        .client;
    assert!(form_client.loopback_any_port);
    assert_eq!(form_client.redirect_uris, ["http://127.0.0.1/cb"]);
    let page = admin_browser
        .get(app.url(&format!("/admin/clients/{}", form_client.client_id)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("name=\"loopback_any_port\" value=\"on\" checked"),
        "shown as set"
    );
}
