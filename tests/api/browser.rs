//! The admin area in real headless Chromium (Debian's `chromium` and `chromium-driver`),
//! driven over WebDriver. These run when PORTCULLIS_TEST_BROWSER=1 (`.ci/run` installs the
//! browser, sets it, and then a browser that cannot start fails the run); otherwise they are
//! compiled as ignored (build.rs), and the test runner counts them so. Screenshots go to
//! target/screenshots/.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use portcullis::user::Role;

use crate::helpers::*;

const PASSWORD: &str = "correct horse battery staple";

/// chromedriver and a Chromium session; both are ended on drop.
struct Browser {
    client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

async fn browser() -> Browser {
    assert!(
        std::env::var("PORTCULLIS_TEST_BROWSER").is_ok_and(|v| v == "1"),
        "built with PORTCULLIS_TEST_BROWSER=1 but run without it: set it, or rebuild without it"
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let driver_bin = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
    let driver = Command::new(&driver_bin)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("PORTCULLIS_TEST_BROWSER=1 but {driver_bin} does not start: {e}")
        });
    let profile = tempfile::tempdir().unwrap();
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,900",
                format!("--user-data-dir={}", profile.path().display()),
            ],
        }),
    );
    let started = Instant::now();
    let client = loop {
        match ClientBuilder::rustls()
            .unwrap()
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => break c,
            Err(e) if started.elapsed() < Duration::from_secs(20) => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("PORTCULLIS_TEST_BROWSER=1 but Chromium does not start: {e}"),
        }
    };
    Browser {
        client,
        driver,
        _profile: profile,
    }
}

impl Browser {
    async fn go(&self, app: &TestApp, path: &str) {
        self.client
            .goto(&format!("{}{path}", app.address))
            .await
            .unwrap();
    }

    async fn fill(&self, css: &str, text: &str) {
        let e = self
            .client
            .wait()
            .for_element(Locator::Css(css))
            .await
            .unwrap();
        e.clear().await.unwrap();
        e.send_keys(text).await.unwrap();
    }

    async fn click(&self, css: &str) {
        self.client
            .wait()
            .for_element(Locator::Css(css))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    /// Clicks the link or button whose text is `text`.
    async fn click_text(&self, text: &str) {
        let xpath =
            format!("//a[normalize-space()='{text}'] | //button[normalize-space()='{text}']");
        self.client
            .wait()
            .for_element(Locator::XPath(&xpath))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    async fn click_xpath(&self, xpath: &str) {
        self.client
            .wait()
            .for_element(Locator::XPath(xpath))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    async fn text(&self, css: &str) -> String {
        self.client
            .wait()
            .for_element(Locator::Css(css))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    async fn html(&self) -> String {
        self.client.source().await.unwrap()
    }

    async fn wait_for_path(&self, prefix: &str) {
        let started = Instant::now();
        loop {
            let url = self.client.current_url().await.unwrap();
            if url.path().starts_with(prefix) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "still at {url}, expected {prefix}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn sign_in(&self, app: &TestApp, username: &str) {
        self.go(app, "/admin/login").await;
        self.fill("#username", username).await;
        self.fill("#password", PASSWORD).await;
        self.click("form[action='/login'] button[type=submit]")
            .await;
        self.wait_for_path("/admin/clients").await;
    }

    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), png).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(portcullis_test_browser),
    ignore = "PORTCULLIS_TEST_BROWSER is not 1"
)]
async fn an_admin_registers_a_client_and_rotates_its_secret_in_chromium() {
    let b = browser().await;
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    app.create_user("ada", PASSWORD, Role::Admin);
    b.sign_in(&app, "ada").await;

    // Create a client with two redirect URIs.
    b.click_text("+ New client").await;
    b.fill("#name", "Billing Service").await;
    b.fill("#description", "Invoices API").await;
    b.fill(
        "#redirect_uris",
        "https://billing.example/cb\nhttps://billing.example/alt",
    )
    .await;
    b.fill("#scopes", "invoices:read").await;
    b.click("input[name=grant_type][value=authorization_code]")
        .await;
    b.click_text("Create client").await;
    // The one-time secret, with a copy button that works.
    let first = b.text("#secret-value").await;
    assert!(b.html().await.contains("You will not see it again"));
    let client_id = b.text("#client-id").await;
    b.click("button.copy[data-copy=secret-value]").await;
    let started = Instant::now();
    while b.text("button.copy[data-copy=secret-value]").await != "Copied" {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the copy button did not react"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        token_status(&app, &client_id, &first).await,
        200,
        "the shown secret works"
    );

    // Redirect URIs tab shows both.
    b.click_text("I have stored it").await;
    b.click_text("Settings").await;
    b.wait_for_path(&format!("/admin/clients/{client_id}"))
        .await;
    b.screenshot("client-settings.png").await;
    b.click_text("Redirect URIs").await;
    let html = b.html().await;
    assert!(
        html.contains("https://billing.example/cb") && html.contains("https://billing.example/alt")
    );

    // Add a second secret with an expiry (the date picker's value set as the picker would).
    b.click_text("Secrets").await;
    b.click_text("Add Secret").await;
    b.fill("#description", "Rotation 2030").await;
    b.client
        .execute(
            "document.getElementById('expires').value = '2030-12-31';",
            vec![],
        )
        .await
        .unwrap();
    b.click_text("Save").await;
    let second = b.text("#secret-value").await;
    assert_ne!(second, first);
    b.click_text("I have stored it").await;
    b.wait_for_path(&format!("/admin/clients/{client_id}/secrets"))
        .await;
    let html = b.html().await;
    assert!(
        html.contains("Rotation 2030") && html.contains("2030-12-31"),
        "{html}"
    );
    b.screenshot("client-secrets.png").await;

    // Delete the first (with a confirmation step).
    let first_row = "//tr[td[normalize-space()='Initial secret']]//a[normalize-space()='Delete']";
    b.click_xpath(first_row).await;
    assert!(b.html().await.contains("stops working at once"));
    b.click_text("Delete secret").await;
    b.wait_for_path(&format!("/admin/clients/{client_id}/secrets"))
        .await;
    assert!(b.text(".notice").await.contains("deleted"));
    assert_eq!(
        token_status(&app, &client_id, &first).await,
        401,
        "the deleted secret is refused"
    );
    assert_eq!(
        token_status(&app, &client_id, &second).await,
        200,
        "the new one works"
    );
    b.client.clone().close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(portcullis_test_browser),
    ignore = "PORTCULLIS_TEST_BROWSER is not 1"
)]
async fn search_sort_and_paginate_sixty_clients_in_chromium() {
    let b = browser().await;
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    app.create_user("ada", PASSWORD, Role::Admin);
    for i in 0..60 {
        app.create_client(&format!("App {i:02}"), &[]);
    }
    b.sign_in(&app, "ada").await;
    b.screenshot("clients-list.png").await;
    // Page size 10.
    b.client
        .find(Locator::Css("#per_page"))
        .await
        .unwrap()
        .select_by_value("10")
        .await
        .unwrap();
    b.click_text("Search").await;
    let rows = |html: String| html.matches("<tr>").count() - 1;
    let started = Instant::now();
    while !b.html().await.contains("1–10 of 60") {
        assert!(started.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(rows(b.html().await), 10);
    // Sort by name: ascending, then again for descending; the page size is kept.
    b.click("th a[href*='sort=name']").await;
    let started = Instant::now();
    while !b
        .client
        .current_url()
        .await
        .unwrap()
        .as_str()
        .contains("sort=name&dir=asc")
    {
        assert!(started.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let html = b.html().await;
    assert!(
        html.contains("App 00") && html.contains("App 09") && !html.contains("App 10"),
        "ascending"
    );
    b.click("th a[href*='sort=name']").await;
    let started = Instant::now();
    while !b.html().await.contains("App 59") {
        assert!(started.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!b.html().await.contains("App 00"), "descending");
    // Next page keeps sort and size.
    b.click("a[rel=next]").await;
    let started = Instant::now();
    while !b.html().await.contains("Page 2 of 6") {
        assert!(started.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let html = b.html().await;
    assert!(
        html.contains("App 49") && html.contains("App 40") && !html.contains("App 50"),
        "{html}"
    );
    // Search: partial and case-insensitive.
    b.fill("input[name=q]", "app 3").await;
    b.click_text("Search").await;
    let started = Instant::now();
    while !b.html().await.contains("of 10</span>") {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{}",
            b.html().await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b.fill("input[name=q]", "no such app").await;
    b.click_text("Search").await;
    let started = Instant::now();
    while !b.html().await.contains("No clients match") {
        assert!(started.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b.client.clone().close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(portcullis_test_browser),
    ignore = "PORTCULLIS_TEST_BROWSER is not 1"
)]
async fn a_readonly_admin_sees_no_mutating_control_in_chromium() {
    let b = browser().await;
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    app.create_user("rita", PASSWORD, Role::Readonly);
    let c = app.create_client_with(portcullis::client::NewClient {
        name: "Watched".into(),
        redirect_uris: vec!["https://w.example/cb".into()],
        ..Default::default()
    });
    b.sign_in(&app, "rita").await;
    for path in [
        "/admin/clients".to_string(),
        format!("/admin/clients/{}", c.client_id),
        format!("/admin/clients/{}/redirect-uris", c.client_id),
        format!("/admin/clients/{}/secrets", c.client_id),
        format!("/admin/clients/{}/permissions", c.client_id),
    ] {
        b.go(&app, &path).await;
        // No form that changes anything: the only POST form is sign-out.
        let forms = b
            .client
            .find_all(Locator::Css("form[method=post]"))
            .await
            .unwrap();
        for f in forms {
            let action = f.attr("action").await.unwrap().unwrap_or_default();
            assert_eq!(action, "/logout", "{path} has a mutating form: {action}");
        }
        let links = b.client.find_all(Locator::Css("a.button")).await.unwrap();
        for l in links {
            let text = l.text().await.unwrap();
            assert!(
                !["+ New client", "Add Secret", "Delete", "Edit", "Delete…"]
                    .contains(&text.as_str()),
                "{path} shows {text}"
            );
        }
    }
    b.client.clone().close().await.unwrap();
}
