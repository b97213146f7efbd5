//! Signing in and out: sessions, CSRF, the per-username throttle.

use crate::helpers::*;
use crate::on_both_backends;
use portcullis::user::Role;

const PASSWORD: &str = "correct horse battery staple";

on_both_backends!(sign_in_sets_a_hardened_session_cookie_and_follows_next);
async fn sign_in_sets_a_hardened_session_cookie_and_follows_next(app: TestApp) {
    app.create_user("alice", PASSWORD, Role::User);
    let browser = app.browser();
    let resp = sign_in(
        &app,
        &browser,
        "alice",
        PASSWORD,
        "/oauth/authorize?client_id=x",
    )
    .await;
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/oauth/authorize?client_id=x");
    let cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("portcullis_session="))
        .expect("a session cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    // The cookie is encrypted: the user id is not readable in it.
    assert!(!cookie.contains("uid"), "{cookie}");
    let home = browser
        .get(format!("{}/", app.address))
        .send()
        .await
        .unwrap();
    let html = home.text().await.unwrap();
    assert!(
        html.contains("Signed in as <strong>alice</strong>"),
        "{html}"
    );
}

on_both_backends!(the_session_id_changes_at_sign_in);
async fn the_session_id_changes_at_sign_in(app: TestApp) {
    app.create_user("alice", PASSWORD, Role::User);
    let browser = app.browser();
    let before = browser
        .get(format!("{}/login", app.address))
        .send()
        .await
        .unwrap();
    let pre_cookie = before.headers()["set-cookie"].to_str().unwrap().to_string();
    let resp = sign_in(&app, &browser, "alice", PASSWORD, "/").await;
    let post_cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert_ne!(pre_cookie.split(';').next(), post_cookie.split(';').next());
    // The pre-login cookie does not carry the login.
    let stale = app
        .http
        .get(format!("{}/", app.address))
        .header("cookie", pre_cookie.split(';').next().unwrap())
        .send()
        .await
        .unwrap();
    assert!(!stale.text().await.unwrap().contains("Signed in as"));
}

on_both_backends!(wrong_password_and_unknown_user_get_the_same_readable_answer);
async fn wrong_password_and_unknown_user_get_the_same_readable_answer(app: TestApp) {
    app.create_user("alice", PASSWORD, Role::User);
    let browser = app.browser();
    for (user, pass) in [("alice", "not the password"), ("nobody", PASSWORD)] {
        let resp = sign_in(&app, &browser, user, pass, "/").await;
        assert_eq!(resp.status(), 401);
        let html = resp.text().await.unwrap();
        assert!(html.contains("Wrong username or password."), "{html}");
        // The typed username is kept, the password is not.
        assert!(html.contains(&format!("value=\"{user}\"")), "{html}");
        assert!(!html.contains(pass));
    }
}

on_both_backends!(five_failures_slow_that_username_down_only);
async fn five_failures_slow_that_username_down_only(app: TestApp) {
    app.create_user("alice", PASSWORD, Role::User);
    app.create_user("bob", PASSWORD, Role::User);
    let browser = app.browser();
    for _ in 0..5 {
        let resp = sign_in(&app, &browser, "alice", "wrong password!", "/").await;
        assert_eq!(resp.status(), 401);
    }
    // Even the right password waits now, from this address: the strict throttle is per
    // (username, address).
    let resp = sign_in(&app, &browser, "alice", PASSWORD, "/").await;
    assert_eq!(resp.status(), 429);
    let retry: i64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("Too many failed sign-ins")
    );
    let other = sign_in(&app, &app.browser(), "bob", PASSWORD, "/").await;
    assert_eq!(other.status(), 303);
}

on_both_backends!(login_and_logout_without_csrf_token_are_refused);
async fn login_and_logout_without_csrf_token_are_refused(app: TestApp) {
    app.create_user("alice", PASSWORD, Role::User);
    let browser = app.browser();
    browser
        .get(format!("{}/login", app.address))
        .send()
        .await
        .unwrap();
    let resp = browser
        .post(format!("{}/login", app.address))
        .form(&[
            ("username", "alice"),
            ("password", PASSWORD),
            ("csrf_token", "forged"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("did not come from this site")
    );
    assert_eq!(
        sign_in(&app, &browser, "alice", PASSWORD, "/")
            .await
            .status(),
        303
    );
    let logout = browser
        .post(format!("{}/logout", app.address))
        .form(&[("csrf_token", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 403);
    let home = browser
        .get(format!("{}/", app.address))
        .send()
        .await
        .unwrap();
    let html = home.text().await.unwrap();
    assert!(html.contains("Signed in as"));
    let csrf = form_value(&html, "csrf_token").unwrap();
    let logout = browser
        .post(format!("{}/logout", app.address))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 303);
    let home = browser
        .get(format!("{}/", app.address))
        .send()
        .await
        .unwrap();
    assert!(!home.text().await.unwrap().contains("Signed in as"));
}

on_both_backends!(next_never_leaves_the_site);
async fn next_never_leaves_the_site(app: TestApp) {
    app.create_user("alice", PASSWORD, Role::User);
    for next in [
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil.example",
    ] {
        let resp = sign_in(&app, &app.browser(), "alice", PASSWORD, next).await;
        assert_eq!(resp.status(), 303);
        assert_eq!(resp.headers()["location"], "/", "next={next}");
    }
}

on_both_backends!(pages_forbid_framing_and_caching);
async fn pages_forbid_framing_and_caching(app: TestApp) {
    let resp = app
        .http
        .get(format!("{}/login", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-frame-options"], "DENY");
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let csp = resp.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let css = app
        .http
        .get(format!("{}/static/portcullis.css", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), 200);
    assert!(
        css.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
}

async fn login_from(
    app: &TestApp,
    browser: &reqwest::Client,
    csrf: &str,
    username: &str,
    password: &str,
    address: &str,
) -> reqwest::Response {
    browser
        .post(format!("{}/login", app.address))
        .header("X-Forwarded-For", address)
        .form(&[
            ("username", username),
            ("password", password),
            ("csrf_token", csrf),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap()
}

async fn login_csrf(app: &TestApp, browser: &reqwest::Client) -> String {
    let html = browser
        .get(format!("{}/login", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    form_value(&html, "csrf_token").unwrap()
}

crate::on_both_backends_with!(
    parallel_wrong_passwords_are_counted_before_they_are_checked,
    |s| {
        s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    }
);
async fn parallel_wrong_passwords_are_counted_before_they_are_checked(app: TestApp) {
    app.create_user("carol", PASSWORD, Role::User);
    let browser = app.browser();
    let csrf = login_csrf(&app, &browser).await;
    let attempts = (0..20).map(|i| {
        let (app, browser, csrf) = (&app, &browser, &csrf);
        async move {
            login_from(
                app,
                browser,
                csrf,
                "carol",
                &format!("wrong password {i}"),
                "203.0.113.5",
            )
            .await
            .status()
            .as_u16()
        }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((checked, throttled), (5, 15), "{statuses:?}");
    assert_eq!(
        metric(
            &app,
            "portcullis_argon2_verifications_total{purpose=\"login\"}"
        )
        .await,
        5.0,
        "only the reserved attempts ran argon2"
    );
}

crate::on_both_backends_with!(
    a_flood_against_a_username_does_not_lock_its_owner_out,
    |s| {
        s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    }
);
async fn a_flood_against_a_username_does_not_lock_its_owner_out(app: TestApp) {
    app.create_user("dave", PASSWORD, Role::User);
    let browser = app.browser();
    let csrf = login_csrf(&app, &browser).await;
    for i in 0..8 {
        let status = login_from(
            &app,
            &browser,
            &csrf,
            "dave",
            &format!("guess {i}"),
            "198.51.100.66",
        )
        .await
        .status();
        assert_eq!(status, if i < 5 { 401 } else { 429 });
    }
    // Dave, from his own address, signs in.
    let own = app.browser();
    let csrf = login_csrf(&app, &own).await;
    assert_eq!(
        login_from(&app, &own, &csrf, "dave", PASSWORD, "192.0.2.44")
            .await
            .status(),
        303
    );
}

crate::on_both_backends_with!(a_full_argon2_queue_gets_a_readable_busy_page, |s| {
    s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    s.argon2_concurrency = 1;
    s.argon2_queue = 1;
});
async fn a_full_argon2_queue_gets_a_readable_busy_page(app: TestApp) {
    let browser = app.browser();
    let csrf = login_csrf(&app, &browser).await;
    let attempts = (0..24).map(|i| {
        let (app, browser, csrf) = (&app, &browser, &csrf);
        async move {
            let resp = login_from(
                app,
                browser,
                csrf,
                &format!("nobody{i}"),
                "wrong password",
                &format!("198.51.100.{}", i + 1),
            )
            .await;
            let status = resp.status().as_u16();
            let retry = resp
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            (status, retry, resp.text().await.unwrap())
        }
    });
    let results = futures_util::future::join_all(attempts).await;
    let busy: Vec<_> = results.iter().filter(|(s, _, _)| *s == 503).collect();
    assert!(!busy.is_empty(), "some attempts found the queue full");
    assert!(results.iter().all(|(s, _, _)| *s == 401 || *s == 503));
    for (_, retry, html) in busy {
        assert_eq!(retry.as_deref(), Some("1"));
        assert!(html.contains("The server is busy"), "a readable page");
    }
    let checked = results.iter().filter(|(s, _, _)| *s == 401).count() as f64;
    assert_eq!(
        metric(
            &app,
            "portcullis_argon2_verifications_total{purpose=\"login\"}"
        )
        .await,
        checked
    );
}
