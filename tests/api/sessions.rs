//! Sign-in sessions live on the server (issue 10, item 4): a saved cookie is worth nothing once
//! its session has ended, whoever ended it and however.

use portcullis::client::NewClient;
use portcullis::user::Role;

use crate::helpers::*;
use crate::{on_both_backends, on_both_backends_with};

const PASSWORD: &str = "correct horse battery staple";

/// The `portcullis_session=...` pair a response set.
fn session_cookie(resp: &reqwest::Response) -> String {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("portcullis_session="))
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_string()
}

impl TestApp {
    /// Signs `username` in; returns the browser and a copy of its session cookie, as an
    /// attacker who copied it (from a shared computer, a backup, malware) would hold it.
    async fn signed_in_with_copy(&self, username: &str) -> (reqwest::Client, String) {
        let browser = self.browser();
        let resp = sign_in(self, &browser, username, PASSWORD, "/").await;
        assert_eq!(resp.status(), 303);
        (browser, session_cookie(&resp))
    }

    /// What the copied cookie gets at `path`: 200, or 303 to the sign-in page.
    async fn with_cookie(&self, cookie: &str, path: &str) -> u16 {
        self.http
            .get(format!("{}{path}", self.address))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// Whether the copied cookie is signed in as anyone on the home page.
    async fn signed_in_as(&self, cookie: &str) -> bool {
        let html = self
            .http
            .get(format!("{}/", self.address))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        html.contains("Signed in as")
    }

    fn session_rows(&self) -> i64 {
        use diesel::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        diesel::sql_query("SELECT COUNT(*) AS n FROM sessions")
            .get_result::<N>(&mut **self.pool.get().unwrap())
            .unwrap()
            .n
    }

    fn id_of(&self, username: &str) -> i64 {
        portcullis::user::store::find_by_name(&mut self.pool.get().unwrap(), username)
            .unwrap()
            .unwrap()
            .id
            .0
    }
}

on_both_backends!(a_cookie_saved_before_sign_out_signs_nobody_in);
async fn a_cookie_saved_before_sign_out_signs_nobody_in(app: TestApp) {
    app.create_user("alice", PASSWORD, Role::Admin);
    let (browser, copy) = app.signed_in_with_copy("alice").await;
    assert_eq!(app.with_cookie(&copy, "/admin/clients").await, 200);
    let html = browser
        .get(format!("{}/", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = form_value(&html, "csrf_token").unwrap();
    let out = browser
        .post(format!("{}/logout", app.address))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    // The copy is refused everywhere a session counts: the admin area and authorizing apps.
    assert_eq!(app.with_cookie(&copy, "/admin/clients").await, 303);
    assert!(!app.signed_in_as(&copy).await);
    let c = app.create_client_with(NewClient {
        name: "Notes".into(),
        scopes: vec!["notes:read".into()],
        redirect_uris: vec!["https://app.example.com/cb".into()],
        grant_types: vec![portcullis::client::GrantType::AuthorizationCode],
        ..Default::default()
    });
    let authorize = app
            .http
            .get(format!(
                "{}/oauth/authorize?response_type=code&client_id={}&redirect_uri={}&scope=notes:read&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
                app.address,
                c.client_id,
                urlencode("https://app.example.com/cb")
            ))
            .header("cookie", &copy)
            .send()
            .await
            .unwrap();
    assert_eq!(
        authorize.status(),
        303,
        "sent to sign in, not to a consent page"
    );
    assert!(
        authorize.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/login")
    );
    assert_eq!(app.session_rows(), 0);
}

on_both_backends!(the_database_holds_only_a_hash_of_the_session_id_and_no_cookie_key);
async fn the_database_holds_only_a_hash_of_the_session_id_and_no_cookie_key(app: TestApp) {
    use actix_web::cookie::{Cookie, CookieJar};
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        id_hash: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        state: String,
    }
    #[derive(diesel::QueryableByName)]
    struct Name {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    app.create_user("alice", PASSWORD, Role::Admin);
    let (_, cookie) = app.signed_in_with_copy("alice").await;
    // Open the cookie as the server does (its key is derived from the master key).
    let key = portcullis::seal::MasterKey::parse(portcullis::config::TEST_MASTER_KEY)
        .unwrap()
        .cookie_key();
    let mut jar = CookieJar::new();
    jar.add_original(Cookie::parse_encoded(cookie.clone()).unwrap());
    let opened = jar
        .private(&key)
        .get("portcullis_session")
        .unwrap()
        .value()
        .to_string();
    let id = opened
        .strip_prefix("s.")
        .expect("a server-side session id")
        .to_string();
    let mut pooled = app.pool.get().unwrap();
    let conn: &mut portcullis::db::AnyConnection = &mut pooled;
    let rows = diesel::sql_query("SELECT id_hash, state FROM sessions")
        .load::<Row>(&mut *conn)
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].id_hash, portcullis::user::sessions::hash_id(&id));
    assert!(!rows[0].id_hash.contains(&id) && !rows[0].state.contains(&id));
    let names = diesel::sql_query("SELECT name FROM server_secrets")
        .load::<Name>(&mut *conn)
        .unwrap();
    assert!(
        names.iter().all(|n| n.name != "session_key"),
        "no cookie key is stored"
    );
    // What a copy of the table gives: the hash, which as a cookie signs nobody in.
    let mut forged = CookieJar::new();
    forged.private_mut(&key).add(Cookie::new(
        "portcullis_session",
        format!("s.{}", rows[0].id_hash),
    ));
    let forged = forged
        .get("portcullis_session")
        .unwrap()
        .encoded()
        .to_string();
    assert!(!app.signed_in_as(&forged).await);
    assert!(app.signed_in_as(&cookie).await);
}

on_both_backends!(anonymous_visitors_cost_no_session_row);
async fn anonymous_visitors_cost_no_session_row(app: TestApp) {
    for _ in 0..20 {
        let page = app
            .browser()
            .get(format!("{}/login", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        assert!(form_value(&page.text().await.unwrap(), "csrf_token").is_some());
    }
    assert_eq!(app.session_rows(), 0);
    app.create_user("alice", PASSWORD, Role::User);
    let _signed_in = app.signed_in_with_copy("alice").await;
    assert_eq!(app.session_rows(), 1);
}

on_both_backends!(a_password_reset_a_role_change_or_deletion_ends_the_users_sessions);
async fn a_password_reset_a_role_change_or_deletion_ends_the_users_sessions(app: TestApp) {
    app.create_user("root", PASSWORD, Role::Admin);
    for who in ["bob", "carol", "dave"] {
        app.create_user(who, PASSWORD, Role::Readonly);
    }
    let (_, bob) = app.signed_in_with_copy("bob").await;
    let (_, carol) = app.signed_in_with_copy("carol").await;
    let (_, dave) = app.signed_in_with_copy("dave").await;
    let (_, root) = app.signed_in_with_copy("root").await;
    for c in [&bob, &carol, &dave] {
        assert!(app.signed_in_as(c).await);
    }
    let token = app.api_token("Session admin", "portcullis:admin").await;
    let api = |id: i64| format!("{}/admin/api/v1/users/{id}", app.address);
    let resp = app
        .http
        .patch(api(app.id_of("bob")))
        .bearer_auth(&token)
        .json(&serde_json::json!({"password": "another long password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = app
        .http
        .patch(api(app.id_of("carol")))
        .bearer_auth(&token)
        .json(&serde_json::json!({"role": "user"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = app
        .http
        .delete(api(app.id_of("dave")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    for c in [&bob, &carol, &dave] {
        assert!(!app.signed_in_as(c).await);
    }
    assert!(
        app.signed_in_as(&root).await,
        "other people's sessions go on"
    );
}

on_both_backends!(sign_out_everywhere_from_the_users_page_the_api_and_the_cli);
async fn sign_out_everywhere_from_the_users_page_the_api_and_the_cli(app: TestApp) {
    app.create_user("root", PASSWORD, Role::Admin);
    app.create_user("erin", PASSWORD, Role::User);
    let erin_id = app.id_of("erin");
    // The Users page: the button says how many sessions there are and ends them all.
    let (_, phone) = app.signed_in_with_copy("erin").await;
    let (_, laptop) = app.signed_in_with_copy("erin").await;
    let (admin, _) = app.signed_in_with_copy("root").await;
    let page = admin
        .get(format!("{}/admin/users", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Sign out everywhere (2)"), "{page}");
    let csrf = form_value(&page, "csrf_token").unwrap();
    let resp = admin
        .post(format!(
            "{}/admin/users/{erin_id}/sessions/delete",
            app.address
        ))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let next = admin
        .get(format!("{}/admin/users", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        next.contains("erin was signed out of 2 sessions."),
        "{next}"
    );
    assert!(!app.signed_in_as(&phone).await && !app.signed_in_as(&laptop).await);
    // Without the CSRF token nothing happens.
    let (_, again) = app.signed_in_with_copy("erin").await;
    let resp = admin
        .post(format!(
            "{}/admin/users/{erin_id}/sessions/delete",
            app.address
        ))
        .form(&[("csrf_token", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert!(app.signed_in_as(&again).await);
    // The JSON API.
    let token = app.api_token("Session admin", "portcullis:admin").await;
    let resp = app
        .http
        .delete(format!(
            "{}/admin/api/v1/users/{erin_id}/sessions",
            app.address
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<serde_json::Value>().await.unwrap()["ended"], 1);
    assert!(!app.signed_in_as(&again).await);
    let resp = app
        .http
        .delete(format!(
            "{}/admin/api/v1/users/999999/sessions",
            app.address
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    // The CLI.
    let (_, third) = app.signed_in_with_copy("erin").await;
    let out = app
        .cli()
        .args(["user", "sign-out", "erin"])
        .env("USER", "alice")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("out of 1 session"));
    assert!(!app.signed_in_as(&third).await);
    let out = app
        .cli()
        .args(["user", "sign-out", "nobody"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim().lines().count(),
        1
    );
    // Each face left its audit event, naming who acted.
    let (events, _) = portcullis::audit::store::page(
        &mut app.pool.get().unwrap(),
        &portcullis::audit::store::AuditFilter {
            client_id: None,
            actor: None,
        },
        0,
        50,
    )
    .unwrap();
    let actors: Vec<&str> = events
        .iter()
        .filter(|e| e.action == "user.sign_out")
        .map(|e| e.actor.as_str())
        .collect();
    assert_eq!(actors.len(), 3, "{actors:?}");
    assert!(actors.contains(&"root") && actors.contains(&"cli:alice"));
}

on_both_backends_with!(
    an_idle_session_ends_after_the_idle_timeout_and_use_keeps_it_alive,
    |s| {
        s.session_idle_seconds = 3;
        s.user_session_idle_seconds = 3600;
    }
);
async fn an_idle_session_ends_after_the_idle_timeout_and_use_keeps_it_alive(app: TestApp) {
    app.create_user("admin", PASSWORD, Role::Admin);
    app.create_user("user", PASSWORD, Role::User);
    let (_, admin) = app.signed_in_with_copy("admin").await;
    let (_, user) = app.signed_in_with_copy("user").await;
    for _ in 0..3 {
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        assert_eq!(
            app.with_cookie(&admin, "/admin/clients").await,
            200,
            "in use, so alive"
        );
    }
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    assert_eq!(
        app.with_cookie(&admin, "/admin/clients").await,
        303,
        "idle for longer than 3 s"
    );
    assert!(
        app.signed_in_as(&user).await,
        "the role user has its own, longer timeout"
    );
}
