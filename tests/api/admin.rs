//! The admin area over HTTP: every page and permission rule for admin, readonly, user and
//! anonymous; clients, redirect URIs, secrets, the audit log.

use portcullis::user::Role;

use crate::helpers::*;
use crate::on_both_backends;

const PASSWORD: &str = "correct horse battery staple";

/// A browser signed in with a new account of `role`.
async fn signed_in_as(app: &TestApp, username: &str, role: Role) -> reqwest::Client {
    app.create_user(username, PASSWORD, role);
    let browser = app.browser();
    let resp = sign_in(app, &browser, username, PASSWORD, "/admin/clients").await;
    assert_eq!(resp.status(), 303);
    browser
}

async fn get(app: &TestApp, browser: &reqwest::Client, path: &str) -> (u16, String) {
    let resp = browser
        .get(format!("{}{path}", app.address))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

/// The CSRF token of the session, read from any admin page.
async fn csrf(app: &TestApp, browser: &reqwest::Client) -> String {
    let (_, html) = get(app, browser, "/admin/clients").await;
    form_value(&html, "csrf_token").expect("a CSRF token on the page")
}

async fn post(
    app: &TestApp,
    browser: &reqwest::Client,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    browser
        .post(format!("{}{path}", app.address))
        .form(form)
        .send()
        .await
        .unwrap()
}

/// Creates a confidential client through the form; returns (client_id, secret shown once).
async fn create_client(
    app: &TestApp,
    browser: &reqwest::Client,
    name: &str,
    uris: &str,
) -> (String, String) {
    let token = csrf(app, browser).await;
    let resp = post(
        app,
        browser,
        "/admin/clients",
        &[
            ("csrf_token", &token),
            ("name", name),
            ("description", "made in a test"),
            ("kind", "confidential"),
            ("redirect_uris", uris),
            ("scopes", "read write"),
            ("grant_type", "client_credentials"),
            (
                "grant_type",
                if uris.is_empty() {
                    "client_credentials"
                } else {
                    "authorization_code"
                },
            ),
            ("enabled", "on"),
        ],
    )
    .await;
    assert_eq!(resp.status(), 200, "the one-time secret page");
    let html = resp.text().await.unwrap();
    assert!(html.contains("You will not see it again"), "{html}");
    let secret = between(&html, "<code id=\"secret-value\">", "</code>");
    let client_id = between(&html, "<code id=\"client-id\">", "</code>");
    (client_id, secret)
}

fn between(html: &str, start: &str, end: &str) -> String {
    let s = html
        .find(start)
        .unwrap_or_else(|| panic!("{start} in {html}"))
        + start.len();
    let e = html[s..].find(end).unwrap() + s;
    html[s..e].to_string()
}

fn location(resp: &reqwest::Response) -> String {
    resp.headers()["location"].to_str().unwrap().to_string()
}

impl TestApp {
    fn user_id_of(&self, username: &str) -> i64 {
        portcullis::user::store::list(&mut self.pool.get().unwrap())
            .unwrap()
            .into_iter()
            .find(|u| u.username == username)
            .unwrap()
            .id
            .0
    }
}

on_both_backends!(who_gets_in);
async fn who_gets_in(app: TestApp) {
    // Anonymous: to the admin sign-in page, which continues to the page asked for.
    let anon = app.browser();
    let resp = anon
        .get(format!("{}/admin/clients?q=x", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert!(
        location(&resp).starts_with("/admin/login?next="),
        "{}",
        location(&resp)
    );
    let (status, html) = get(&app, &anon, &location(&resp)).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("admin area") && html.contains("name=\"password\""),
        "{html}"
    );
    // A user who may only authorize apps: a clear 403.
    let user = signed_in_as(&app, "ursula", Role::User).await;
    let (status, html) = get(&app, &user, "/admin/clients").await;
    assert_eq!(status, 403);
    assert!(html.contains("No access to the admin area"), "{html}");
    // Admin and readonly get in.
    for (name, role) in [("ada", Role::Admin), ("rita", Role::Readonly)] {
        let b = signed_in_as(&app, name, role).await;
        let resp = b
            .get(format!("{}/admin/clients", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{name}");
        assert_eq!(resp.headers()["cache-control"], "no-store");
        assert_eq!(resp.headers()["x-frame-options"], "DENY");
        assert!(
            resp.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
        let html = resp.text().await.unwrap();
        assert!(html.contains("No Data Available"), "{html}");
    }
}

on_both_backends!(an_admin_registers_a_client_and_rotates_its_secrets);
async fn an_admin_registers_a_client_and_rotates_its_secrets(app: TestApp) {
    let admin = signed_in_as(&app, "ada", Role::Admin).await;
    let (client_id, first) = create_client(
        &app,
        &admin,
        "Billing",
        "https://billing.example/cb\nhttp://127.0.0.1:9000/cb",
    )
    .await;
    assert_eq!(
        token_status(&app, &client_id, &first).await,
        200,
        "the one-time secret works"
    );
    // The list shows it; the secret is never shown again.
    let (_, html) = get(&app, &admin, "/admin/clients").await;
    assert!(
        html.contains("Billing")
            && html.contains(&client_id)
            && html.contains("https://billing.example/cb"),
        "{html}"
    );
    assert!(!html.contains(&first));
    let (_, html) = get(&app, &admin, &format!("/admin/clients/{client_id}/secrets")).await;
    assert!(
        html.contains(&format!("••••{}", &first[first.len() - 4..])),
        "{html}"
    );
    assert!(html.contains("Never"), "{html}");
    assert!(!html.contains(&first));
    // An empty Add Secret form: an error above the form.
    let token = csrf(&app, &admin).await;
    let resp = post(
        &app,
        &admin,
        &format!("/admin/clients/{client_id}/secrets"),
        &[
            ("csrf_token", &token),
            ("description", ""),
            ("expires", ""),
            ("value", ""),
        ],
    )
    .await;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("The form is empty"));
    // A typed value that is too short.
    let resp = post(
        &app,
        &admin,
        &format!("/admin/clients/{client_id}/secrets"),
        &[
            ("csrf_token", &token),
            ("description", "typed"),
            ("value", "short"),
        ],
    )
    .await;
    assert_eq!(resp.status(), 400);
    let html = resp.text().await.unwrap();
    assert!(
        html.contains("at least 16 characters") && html.contains("value=\"typed\""),
        "kept the description: {html}"
    );
    // A second, expiring secret (DD/MM/YYYY accepted), shown once.
    let resp = post(
        &app,
        &admin,
        &format!("/admin/clients/{client_id}/secrets"),
        &[
            ("csrf_token", &token),
            ("description", "Rotation 2030"),
            ("expires", "31/12/2030"),
            ("value", ""),
        ],
    )
    .await;
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    let second = between(&html, "<code id=\"secret-value\">", "</code>");
    assert_eq!(token_status(&app, &client_id, &second).await, 200);
    let (_, html) = get(&app, &admin, &format!("/admin/clients/{client_id}/secrets")).await;
    assert!(
        html.contains("Rotation 2030") && html.contains("2030-12-31"),
        "{html}"
    );
    // Delete the first, with a confirmation step.
    let first_id = portcullis::secret::store::list(
        &mut app.pool.get().unwrap(),
        portcullis::client::store::find(&mut app.pool.get().unwrap(), &client_id)
            .unwrap()
            .unwrap()
            .id,
    )
    .unwrap()
    .into_iter()
    .find(|s| s.description == "Initial secret")
    .unwrap()
    .id;
    let (status, html) = get(
        &app,
        &admin,
        &format!("/admin/clients/{client_id}/secrets/{first_id}/delete"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(html.contains("stops working at once"), "{html}");
    let resp = post(
        &app,
        &admin,
        &format!("/admin/clients/{client_id}/secrets/{first_id}/delete"),
        &[("csrf_token", &token)],
    )
    .await;
    assert_eq!(resp.status(), 303);
    let (_, html) = get(&app, &admin, &location(&resp)).await;
    assert!(html.contains("deleted"), "a notice: {html}");
    // At once on this instance: no waiting for the cache.
    assert_eq!(token_status(&app, &client_id, &first).await, 401);
    assert_eq!(token_status(&app, &client_id, &second).await, 200);
    // Edit the second's description and expiry.
    let second_id = portcullis::secret::store::list(
        &mut app.pool.get().unwrap(),
        portcullis::client::store::find(&mut app.pool.get().unwrap(), &client_id)
            .unwrap()
            .unwrap()
            .id,
    )
    .unwrap()[0]
        .id;
    let (status, html) = get(
        &app,
        &admin,
        &format!("/admin/clients/{client_id}/secrets/{second_id}/edit"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(html.contains("2030-12-31"), "{html}");
    let resp = post(
        &app,
        &admin,
        &format!("/admin/clients/{client_id}/secrets/{second_id}"),
        &[
            ("csrf_token", &token),
            ("description", "Main key"),
            ("expires", ""),
        ],
    )
    .await;
    assert_eq!(resp.status(), 303);
    let (_, html) = get(&app, &admin, &format!("/admin/clients/{client_id}/secrets")).await;
    assert!(
        html.contains("Main key") && !html.contains("2030-12-31"),
        "{html}"
    );
    // Everything is in the audit log, with actor and address.
    let (_, html) = get(&app, &admin, &format!("/admin/audit?client={client_id}")).await;
    for action in [
        "client.create",
        "secret.add",
        "secret.delete",
        "secret.update",
    ] {
        assert!(html.contains(action), "{action}: {html}");
    }
    assert!(html.contains("ada") && html.contains("127.0.0.1"), "{html}");
    assert!(
        !html.contains(&first) && !html.contains(&second),
        "no secret in the audit log"
    );
}

on_both_backends!(client_settings_validation_keeps_what_was_typed);
async fn client_settings_validation_keeps_what_was_typed(app: TestApp) {
    let admin = signed_in_as(&app, "ada", Role::Admin).await;
    let token = csrf(&app, &admin).await;
    let resp = post(
        &app,
        &admin,
        "/admin/clients",
        &[
            ("csrf_token", &token),
            ("name", ""),
            ("description", "kept text"),
            ("logo_url", "javascript:alert(1)"),
            ("grant_type", "client_credentials"),
        ],
    )
    .await;
    assert_eq!(resp.status(), 400);
    let html = resp.text().await.unwrap();
    assert!(
        html.contains("Please correct the fields marked below"),
        "{html}"
    );
    assert!(html.contains("kept text"), "typed values kept: {html}");
    assert!(
        html.contains("only http and https"),
        "logo error beside the field: {html}"
    );
    create_client(&app, &admin, "Taken", "").await;
    let resp = post(
        &app,
        &admin,
        "/admin/clients",
        &[
            ("csrf_token", &token),
            ("name", "taken"),
            ("grant_type", "client_credentials"),
        ],
    )
    .await;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("already exists"));
    // Authorization code without a redirect URI.
    let resp = post(
        &app,
        &admin,
        "/admin/clients",
        &[
            ("csrf_token", &token),
            ("name", "No URI"),
            ("grant_type", "authorization_code"),
        ],
    )
    .await;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("redirect URI"));
    // Edit: rename and change the lifetime; the token gets the new lifetime.
    let (client_id, secret) = create_client(&app, &admin, "Editable", "").await;
    let resp = post(
        &app,
        &admin,
        &format!("/admin/clients/{client_id}"),
        &[
            ("csrf_token", &token),
            ("name", "Edited"),
            ("scopes", "read"),
            ("grant_type", "client_credentials"),
            ("access_token_ttl", "600"),
            ("enabled", "on"),
        ],
    )
    .await;
    assert_eq!(resp.status(), 303);
    let (_, html) = get(&app, &admin, &format!("/admin/clients/{client_id}")).await;
    assert!(
        html.contains("value=\"Edited\"") && html.contains("value=\"600\""),
        "{html}"
    );
    let t: serde_json::Value = app
        .token_basic(&client_id, &secret, &[GRANT_CC])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(t["expires_in"], 600);
    assert_eq!(t["scope"], "read");
}

on_both_backends!(redirect_uris_are_validated);
async fn redirect_uris_are_validated(app: TestApp) {
    let admin = signed_in_as(&app, "ada", Role::Admin).await;
    let (client_id, _) = create_client(&app, &admin, "Web", "https://web.example/cb").await;
    let token = csrf(&app, &admin).await;
    let path = format!("/admin/clients/{client_id}/redirect-uris");
    for bad in [
        "http://web.example/cb",
        "https://web.example/cb#x",
        "/relative",
        "ftp://web.example/",
    ] {
        let resp = post(&app, &admin, &path, &[("csrf_token", &token), ("uri", bad)]).await;
        assert_eq!(resp.status(), 400, "{bad}");
        assert!(
            resp.text()
                .await
                .unwrap()
                .contains(&format!("value=\"{bad}\"")),
            "typed value kept"
        );
    }
    let resp = post(
        &app,
        &admin,
        &path,
        &[("csrf_token", &token), ("uri", "http://localhost:3000/cb")],
    )
    .await;
    assert_eq!(resp.status(), 303);
    let (_, html) = get(&app, &admin, &path).await;
    assert!(html.contains("http://localhost:3000/cb"), "{html}");
    let ids = portcullis::client::store::redirect_uris(
        &mut app.pool.get().unwrap(),
        portcullis::client::store::find(&mut app.pool.get().unwrap(), &client_id)
            .unwrap()
            .unwrap()
            .id,
    )
    .unwrap();
    assert_eq!(ids.len(), 2);
    let resp = post(
        &app,
        &admin,
        &format!("{path}/{}/delete", ids[0].0),
        &[("csrf_token", &token)],
    )
    .await;
    assert_eq!(resp.status(), 303);
    // The last one of a client using the code grant stays.
    let resp = post(
        &app,
        &admin,
        &format!("{path}/{}/delete", ids[1].0),
        &[("csrf_token", &token)],
    )
    .await;
    assert_eq!(resp.status(), 400);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("at least one redirect URI")
    );
}

on_both_backends!(disable_and_delete_take_effect_at_once);
async fn disable_and_delete_take_effect_at_once(app: TestApp) {
    let admin = signed_in_as(&app, "ada", Role::Admin).await;
    let (client_id, secret) = create_client(&app, &admin, "Short-lived", "").await;
    assert_eq!(token_status(&app, &client_id, &secret).await, 200);
    let token = csrf(&app, &admin).await;
    assert_eq!(
        post(
            &app,
            &admin,
            &format!("/admin/clients/{client_id}/disable"),
            &[("csrf_token", &token)]
        )
        .await
        .status(),
        303
    );
    assert_eq!(token_status(&app, &client_id, &secret).await, 401);
    let (_, html) = get(&app, &admin, "/admin/clients").await;
    assert!(html.contains("Disabled"), "{html}");
    assert_eq!(
        post(
            &app,
            &admin,
            &format!("/admin/clients/{client_id}/enable"),
            &[("csrf_token", &token)]
        )
        .await
        .status(),
        303
    );
    assert_eq!(token_status(&app, &client_id, &secret).await, 200);
    let (status, html) = get(&app, &admin, &format!("/admin/clients/{client_id}/delete")).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("Delete Short-lived?") && html.contains("cannot be undone"),
        "{html}"
    );
    let resp = post(
        &app,
        &admin,
        &format!("/admin/clients/{client_id}/delete"),
        &[("csrf_token", &token)],
    )
    .await;
    assert_eq!(resp.status(), 303);
    assert_eq!(token_status(&app, &client_id, &secret).await, 401);
    let (status, _) = get(&app, &admin, &format!("/admin/clients/{client_id}")).await;
    assert_eq!(status, 404);
}

on_both_backends!(readonly_sees_but_cannot_change_and_csrf_is_required);
async fn readonly_sees_but_cannot_change_and_csrf_is_required(app: TestApp) {
    let admin = signed_in_as(&app, "ada", Role::Admin).await;
    let (client_id, _) = create_client(&app, &admin, "Watched", "https://w.example/cb").await;
    let ro = signed_in_as(&app, "rita", Role::Readonly).await;
    for page in [
        "/admin/clients".to_string(),
        format!("/admin/clients/{client_id}"),
        format!("/admin/clients/{client_id}/secrets"),
        format!("/admin/clients/{client_id}/redirect-uris"),
        "/admin/audit".to_string(),
    ] {
        let (status, html) = get(&app, &ro, &page).await;
        assert_eq!(status, 200, "{page}");
        for control in [
            "New client",
            "Add Secret",
            ">Delete",
            ">Remove",
            "Save changes",
            ">Disable",
        ] {
            assert!(
                !html.contains(control),
                "{page} shows '{control}' to readonly"
            );
        }
    }
    for page in [
        "/admin/clients/new".to_string(),
        format!("/admin/clients/{client_id}/secrets/new"),
        format!("/admin/clients/{client_id}/delete"),
    ] {
        assert_eq!(get(&app, &ro, &page).await.0, 403, "{page}");
    }
    // The POSTs themselves are refused, with a valid CSRF token.
    let token = csrf(&app, &ro).await;
    let posts = [
        (
            "/admin/clients".to_string(),
            vec![("name", "Sneaky"), ("grant_type", "client_credentials")],
        ),
        (
            format!("/admin/clients/{client_id}"),
            vec![("name", "Renamed"), ("grant_type", "client_credentials")],
        ),
        (format!("/admin/clients/{client_id}/disable"), vec![]),
        (format!("/admin/clients/{client_id}/delete"), vec![]),
        (
            format!("/admin/clients/{client_id}/secrets"),
            vec![("description", "mine")],
        ),
        (
            format!("/admin/clients/{client_id}/redirect-uris"),
            vec![("uri", "https://evil.example/cb")],
        ),
    ];
    for (path, fields) in &posts {
        let mut form = fields.clone();
        form.push(("csrf_token", &token));
        assert_eq!(
            post(&app, &ro, path, &form).await.status(),
            403,
            "readonly POST {path}"
        );
        // And an admin without the CSRF token: 403 too.
        assert_eq!(
            post(&app, &admin, path, fields).await.status(),
            403,
            "no CSRF {path}"
        );
    }
    let (_, html) = get(&app, &admin, &format!("/admin/clients/{client_id}")).await;
    assert!(
        html.contains("value=\"Watched\"") && html.contains("Enabled"),
        "nothing changed"
    );
    // Anonymous POSTs go to the sign-in page, never through.
    let resp = post(
        &app,
        &app.browser(),
        &format!("/admin/clients/{client_id}/delete"),
        &[],
    )
    .await;
    assert_ne!(resp.status(), 200);
}

on_both_backends!(a_hostile_client_name_renders_inert_everywhere);
async fn a_hostile_client_name_renders_inert_everywhere(app: TestApp) {
    let admin = signed_in_as(&app, "ada", Role::Admin).await;
    let (client_id, _) = create_client(&app, &admin, "<img src=x onerror=alert(1)>", "").await;
    for page in [
        "/admin/clients".to_string(),
        format!("/admin/clients/{client_id}"),
        format!("/admin/clients/{client_id}/secrets"),
        format!("/admin/clients/{client_id}/delete"),
        "/admin/audit".to_string(),
    ] {
        let (_, html) = get(&app, &admin, &page).await;
        assert!(!html.contains("<img src=x"), "{page}: {html}");
        assert!(
            html.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{page}"
        );
    }
}

on_both_backends!(the_list_searches_sorts_and_pages_in_the_database);
async fn the_list_searches_sorts_and_pages_in_the_database(app: TestApp) {
    let admin = signed_in_as(&app, "ada", Role::Admin).await;
    for i in 0..60 {
        app.create_client(&format!("App {i:02}"), &[]);
    }
    app.create_client("Zeta Payments", &[]);
    let (_, html) = get(&app, &admin, "/admin/clients?per_page=10").await;
    assert_eq!(html.matches("<tr>").count() - 1, 10, "10 rows and a header");
    assert!(
        html.contains("1–10 of 61") && html.contains("Page 1 of 7"),
        "{html}"
    );
    assert!(html.find("Zeta Payments").is_some(), "newest first: {html}");
    // Sorted by name, ascending, page 2 keeps sort and size.
    let (_, html) = get(
        &app,
        &admin,
        "/admin/clients?sort=name&dir=asc&per_page=10&page=2",
    )
    .await;
    assert!(
        html.contains("App 10")
            && html.contains("App 19")
            && !html.contains("App 09")
            && !html.contains("App 20"),
        "{html}"
    );
    assert!(
        html.contains("sort=name&amp;dir=asc&amp;per_page=10&amp;page=3"),
        "next keeps sort: {html}"
    );
    // Clicking the sorted header reverses it.
    assert!(html.contains("sort=name&amp;dir=desc"), "{html}");
    let (_, html) = get(
        &app,
        &admin,
        "/admin/clients?sort=name&dir=desc&per_page=10",
    )
    .await;
    let zeta = html.find("Zeta Payments").unwrap();
    let app59 = html.find("App 59").unwrap();
    assert!(zeta < app59, "descending by name");
    // Search: case-insensitive, partial, over name and client ID; keeps the page size.
    let (_, html) = get(&app, &admin, "/admin/clients?q=zeta%20pay&per_page=10").await;
    assert!(
        html.contains("Zeta Payments") && html.contains("1–1 of 1"),
        "{html}"
    );
    let some_id = portcullis::client::store::list(&mut app.pool.get().unwrap()).unwrap()[5]
        .client
        .client_id
        .clone();
    let (_, html) = get(
        &app,
        &admin,
        &format!(
            "/admin/clients?q={}",
            urlencode(&some_id[2..12].to_lowercase())
        ),
    )
    .await;
    assert!(html.contains(&some_id), "search by client ID: {html}");
    let (_, html) = get(&app, &admin, "/admin/clients?q=nothing-like-this").await;
    assert!(html.contains("No clients match"), "{html}");
    // LIKE wildcards are literal.
    let (_, html) = get(&app, &admin, "/admin/clients?q=%25").await;
    assert!(html.contains("No clients match"), "{html}");
}

on_both_backends!(generate_a_token_and_see_usage);
async fn generate_a_token_and_see_usage(app: TestApp) {
    let admin = signed_in_as(&app, "ada", Role::Admin).await;
    let (client_id, secret) = create_client(&app, &admin, "Metered", "").await;
    let (status, html) = get(
        &app,
        &admin,
        &format!("/admin/clients/{client_id}/permissions"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        html.contains("Read your data")
            && html.contains("client_credentials")
            && html.contains("Generate token"),
        "{html}"
    );
    let token = csrf(&app, &admin).await;
    let resp = post(
        &app,
        &admin,
        &format!("/admin/clients/{client_id}/token"),
        &[("csrf_token", &token)],
    )
    .await;
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    let jwt = between(&html, "<code id=\"generated-token\">", "</code>");
    let (header, claims) = crate::token::verify_jwt(&app, &jwt).await;
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(claims["client_id"], client_id.as_str());
    assert_eq!(claims["sub"], client_id.as_str());
    assert_eq!(claims["scope"], "read write");
    assert!(
        html.contains("&quot;at+jwt&quot;") && html.contains("&quot;jti&quot;"),
        "decoded header and claims: {html}"
    );
    let (_, audit) = get(&app, &admin, "/admin/audit").await;
    assert!(
        audit.contains("token.generate") && !audit.contains(&jwt),
        "{audit}"
    );
    // Two more from the token endpoint; the chart counts all three (batched writes).
    for _ in 0..2 {
        assert_eq!(token_status(&app, &client_id, &secret).await, 200);
    }
    let started = std::time::Instant::now();
    loop {
        let (_, html) = get(&app, &admin, &format!("/admin/clients/{client_id}/usage")).await;
        if html.contains("<span class=\"big\" id=\"total-30\">3</span>") {
            assert!(
                html.contains("<svg") && html.contains(": 3</title>"),
                "{html}"
            );
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "usage not counted: {html}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // Readonly sees the tab but not the button, and cannot generate.
    let ro = signed_in_as(&app, "rita", Role::Readonly).await;
    let (_, html) = get(
        &app,
        &ro,
        &format!("/admin/clients/{client_id}/permissions"),
    )
    .await;
    assert!(!html.contains("Generate token"), "{html}");
    let ro_token = csrf(&app, &ro).await;
    assert_eq!(
        post(
            &app,
            &ro,
            &format!("/admin/clients/{client_id}/token"),
            &[("csrf_token", &ro_token)]
        )
        .await
        .status(),
        403
    );
    // A disabled client gets no token, as at the token endpoint.
    post(
        &app,
        &admin,
        &format!("/admin/clients/{client_id}/disable"),
        &[("csrf_token", &token)],
    )
    .await;
    let resp = post(
        &app,
        &admin,
        &format!("/admin/clients/{client_id}/token"),
        &[("csrf_token", &token)],
    )
    .await;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("disabled"));
}

on_both_backends!(admins_manage_users_and_the_last_admin_stays);
async fn admins_manage_users_and_the_last_admin_stays(app: TestApp) {
    let admin = signed_in_as(&app, "ada", Role::Admin).await;
    let token = csrf(&app, &admin).await;
    // Readonly and users cannot see the page.
    let ro = signed_in_as(&app, "rita", Role::Readonly).await;
    assert_eq!(get(&app, &ro, "/admin/users").await.0, 403);
    let (_, html) = get(&app, &ro, "/admin/clients").await;
    assert!(
        !html.contains("href=\"/admin/users\""),
        "no Users link for readonly"
    );
    // Add a user; a short password or a taken name is refused with the name kept.
    let resp = post(
        &app,
        &admin,
        "/admin/users",
        &[
            ("csrf_token", &token),
            ("username", "bob"),
            ("password", "short"),
            ("role", "readonly"),
        ],
    )
    .await;
    assert_eq!(resp.status(), 400);
    let html = resp.text().await.unwrap();
    assert!(
        html.contains("at least 12 characters") && html.contains("value=\"bob\""),
        "{html}"
    );
    let resp = post(
        &app,
        &admin,
        "/admin/users",
        &[
            ("csrf_token", &token),
            ("username", "bob"),
            ("password", PASSWORD),
            ("role", "readonly"),
        ],
    )
    .await;
    assert_eq!(resp.status(), 303);
    let resp = post(
        &app,
        &admin,
        "/admin/users",
        &[
            ("csrf_token", &token),
            ("username", "bob"),
            ("password", PASSWORD),
            ("role", "user"),
        ],
    )
    .await;
    assert_eq!(resp.status(), 400);
    let bob = app.user_id_of("bob");
    // Bob signs in as readonly; promoted to admin he can change things.
    let bob_browser = app.browser();
    assert_eq!(
        sign_in(&app, &bob_browser, "bob", PASSWORD, "/admin/clients")
            .await
            .status(),
        303
    );
    assert_eq!(get(&app, &bob_browser, "/admin/clients/new").await.0, 403);
    assert_eq!(
        post(
            &app,
            &admin,
            &format!("/admin/users/{bob}/role"),
            &[("csrf_token", &token), ("role", "admin")]
        )
        .await
        .status(),
        303
    );
    // A role change ends the sessions signed in under the old role (issue 10, item 4).
    assert_eq!(
        get(&app, &bob_browser, "/admin/clients/new").await.0,
        303,
        "signed out by the role change"
    );
    assert_eq!(
        sign_in(&app, &bob_browser, "bob", PASSWORD, "/admin/clients")
            .await
            .status(),
        303
    );
    assert_eq!(
        get(&app, &bob_browser, "/admin/clients/new").await.0,
        200,
        "the new role applies"
    );
    // Reset his password: the new one works.
    assert_eq!(
        post(
            &app,
            &admin,
            &format!("/admin/users/{bob}/password"),
            &[
                ("csrf_token", &token),
                ("password", "another long password")
            ]
        )
        .await
        .status(),
        303
    );
    assert_eq!(
        get(&app, &bob_browser, "/admin/clients").await.0,
        303,
        "a password reset ends the sessions signed in before"
    );
    assert_eq!(
        sign_in(&app, &app.browser(), "bob", "another long password", "/")
            .await
            .status(),
        303
    );
    assert_eq!(
        sign_in(&app, &app.browser(), "bob", PASSWORD, "/")
            .await
            .status(),
        401
    );
    // Delete him (with a confirmation step); the last admin can be neither demoted nor deleted.
    assert_eq!(
        get(&app, &admin, &format!("/admin/users/{bob}/delete"))
            .await
            .0,
        200
    );
    assert_eq!(
        post(
            &app,
            &admin,
            &format!("/admin/users/{bob}/delete"),
            &[("csrf_token", &token)]
        )
        .await
        .status(),
        303
    );
    assert_eq!(
        get(&app, &bob_browser, "/admin/clients").await.0,
        303,
        "a deleted user is signed out"
    );
    let ada = app.user_id_of("ada");
    let resp = post(
        &app,
        &admin,
        &format!("/admin/users/{ada}/role"),
        &[("csrf_token", &token), ("role", "readonly")],
    )
    .await;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("last admin"));
    let resp = post(
        &app,
        &admin,
        &format!("/admin/users/{ada}/delete"),
        &[("csrf_token", &token)],
    )
    .await;
    assert_eq!(resp.status(), 400);
    let (_, audit) = get(&app, &admin, "/admin/audit?actor=ada").await;
    for action in ["user.create", "user.role", "user.password", "user.delete"] {
        assert!(audit.contains(action), "{action}");
    }
    assert!(!audit.contains("another long password"));
}

on_both_backends!(the_list_flags_expiring_and_expired_secrets);
async fn the_list_flags_expiring_and_expired_secrets(app: TestApp) {
    let admin = signed_in_as(&app, "ada", Role::Admin).await;
    let now = portcullis::clock::Clock::system().now();
    let soon = app.create_client("Soon", &[]);
    app.add_secret(&soon.client_id, None, Some(now + 5 * 86_400));
    let gone = app.create_client("Gone", &[]);
    app.add_secret(&gone.client_id, None, Some(now - 1));
    app.delete_secret(gone.secret_id);
    let fine = app.create_client("Fine", &[]);
    app.add_secret(&fine.client_id, None, Some(now + 60 * 86_400));
    let (_, html) = get(&app, &admin, "/admin/clients?sort=name&dir=asc").await;
    let row = |name: &str| {
        let start = html.find(&format!(">{name}</a>")).unwrap();
        let end = html[start..].find("</tr>").unwrap() + start;
        html[start..end].to_string()
    };
    assert!(
        row("Soon").contains("expiring") && !row("Soon").contains("all expired"),
        "{}",
        row("Soon")
    );
    assert!(row("Gone").contains("all expired"), "{}", row("Gone"));
    assert!(!row("Fine").contains("badge"), "{}", row("Fine"));
    let (_, html) = get(
        &app,
        &admin,
        &format!("/admin/clients/{}/secrets", gone.client_id),
    )
    .await;
    assert!(html.contains("class=\"expired\">Expired"), "{html}");
}

on_both_backends!(policies_are_edited_in_the_settings_form);
async fn policies_are_edited_in_the_settings_form(app: TestApp) {
    let admin = signed_in_as(&app, "ada", Role::Admin).await;
    let (client_id, secret) = create_client(&app, &admin, "Guarded", "").await;
    let token = csrf(&app, &admin).await;
    let path = format!("/admin/clients/{client_id}");
    let resp = post(
        &app,
        &admin,
        &path,
        &[
            ("csrf_token", &token),
            ("name", "Guarded"),
            ("grant_type", "client_credentials"),
            ("ip_allowlist", "10.0.0.0/8\nnot-an-ip"),
            ("rate_limit", "2"),
            ("enabled", "on"),
        ],
    )
    .await;
    assert_eq!(resp.status(), 400);
    let html = resp.text().await.unwrap();
    assert!(
        html.contains("not-an-ip&#39; is not an IP address"),
        "{html}"
    );
    let resp = post(
        &app,
        &admin,
        &path,
        &[
            ("csrf_token", &token),
            ("name", "Guarded"),
            ("grant_type", "client_credentials"),
            ("ip_allowlist", "10.0.0.0/8"),
            ("rate_limit", "2"),
            ("enabled", "on"),
        ],
    )
    .await;
    assert_eq!(resp.status(), 303);
    assert_eq!(
        token_status(&app, &client_id, &secret).await,
        401,
        "127.0.0.1 is not in 10.0.0.0/8"
    );
    let resp = post(
        &app,
        &admin,
        &path,
        &[
            ("csrf_token", &token),
            ("name", "Guarded"),
            ("grant_type", "client_credentials"),
            ("ip_allowlist", "127.0.0.0/8 ::1"),
            ("rate_limit", "2"),
            ("enabled", "on"),
        ],
    )
    .await;
    assert_eq!(resp.status(), 303);
    let (_, html) = get(&app, &admin, &path).await;
    assert!(
        html.contains("127.0.0.0/8") && html.contains("::1/128") && html.contains("value=\"2\""),
        "{html}"
    );
    assert_eq!(token_status(&app, &client_id, &secret).await, 200);
    assert_eq!(token_status(&app, &client_id, &secret).await, 200);
    assert_eq!(token_status(&app, &client_id, &secret).await, 429);
}

// A rule judged by NewClient::validate (the one place, shared with the API and the CLI) is
// shown beside the field it names, not only above the form.
on_both_backends!(a_rule_spanning_fields_is_shown_beside_the_field_to_change);
async fn a_rule_spanning_fields_is_shown_beside_the_field_to_change(app: TestApp) {
    let admin = signed_in_as(&app, "ada", Role::Admin).await;
    let token = csrf(&app, &admin).await;
    for (form, field, says) in [
        (
            vec![
                ("kind", "public"),
                ("name", "Native"),
                ("redirect_uris", "https://app.example.com/cb"),
                ("grant_type", "client_credentials"),
            ],
            "grant_types",
            "cannot use client_credentials",
        ),
        (
            vec![
                ("name", "Long lived"),
                ("grant_type", "client_credentials"),
                ("access_token_ttl", "86401"),
            ],
            "access_token_ttl",
            "access token lifetime must be from 60 to 86400 seconds",
        ),
        (
            vec![
                ("name", "Keyless"),
                ("grant_type", "client_credentials"),
                ("auth_method", "private_key_jwt"),
            ],
            "jwks",
            "needs the client",
        ),
    ] {
        let mut fields = vec![("csrf_token", token.as_str())];
        fields.extend(form);
        let resp = post(&app, &admin, "/admin/clients", &fields).await;
        assert_eq!(resp.status(), 400, "{field}");
        let html = resp.text().await.unwrap();
        // The message sits in the field's own error element, after the field's input.
        let input = html
            .find(&format!("name=\"{}", field.trim_end_matches('s')))
            .unwrap_or_else(|| panic!("no {field} input: {html}"));
        let error = html[input..]
            .find("class=\"fielderror\"")
            .map(|i| input + i)
            .unwrap_or_else(|| panic!("no error after {field}: {html}"));
        assert!(
            html[error..].split("</div>").next().unwrap().contains(says),
            "{field}: {}",
            &html[error..error + 200.min(html.len() - error)]
        );
    }
}

on_both_backends!(every_form_post_without_its_csrf_token_is_refused_before_the_handler);
async fn every_form_post_without_its_csrf_token_is_refused_before_the_handler(app: TestApp) {
    let admin = signed_in_as(&app, "ada", Role::Admin).await;
    let (client_id, _) = create_client(&app, &admin, "Guarded", "https://g.example/cb").await;
    let c = format!("/admin/clients/{client_id}");
    let posts = [
        "/login".to_string(),
        "/oauth/authorize".to_string(),
        "/admin/users".to_string(),
        "/admin/users/1/role".to_string(),
        "/admin/users/1/password".to_string(),
        "/admin/users/1/sessions/delete".to_string(),
        "/admin/users/1/delete".to_string(),
        "/admin/clients".to_string(),
        c.clone(),
        format!("{c}/token"),
        format!("{c}/disable"),
        format!("{c}/enable"),
        format!("{c}/redirect-uris"),
        format!("{c}/redirect-uris/1/delete"),
        format!("{c}/secrets"),
        format!("{c}/secrets/1"),
        format!("{c}/secrets/1/delete"),
        format!("{c}/delete"),
        "/logout".to_string(),
    ];
    for path in &posts {
        for token in [None, Some("forged")] {
            let mut form = vec![("name", "Changed"), ("role", "readonly")];
            if let Some(t) = token {
                form.push(("csrf_token", t));
            }
            let resp = post(&app, &admin, path, &form).await;
            assert_eq!(resp.status(), 403, "POST {path} with CSRF token {token:?}");
            assert!(
                resp.text()
                    .await
                    .unwrap()
                    .contains("did not come from this site"),
                "POST {path}"
            );
        }
    }
    // Nothing happened: still signed in, the client unchanged.
    let (status, html) = get(&app, &admin, &c).await;
    assert_eq!(status, 200);
    assert!(html.contains("value=\"Guarded\"") && html.contains("Enabled"));
}
