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

on_both_backends! {
    async fn a_huge_page_number_is_refused_not_wrapped(app) {
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
            assert!(resp.text().await.unwrap().contains("page must be"), "{path}");
        }
        for path in [
            format!("/admin/api/v1/clients?page={huge}"),
            format!("/admin/api/v1/audit-events?page={huge}"),
        ] {
            let resp = app.http.get(app.at(&path)).bearer_auth(&token).send().await.unwrap();
            assert_eq!(resp.status(), 400, "{path}");
            let body: serde_json::Value = resp.json().await.unwrap();
            assert_eq!(body["error"], "invalid", "{body}");
        }
        // Ordinary pages still work, and a page past the end is simply empty.
        let resp = app.http.get(app.at("/admin/api/v1/clients?page=1000000")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["items"], serde_json::json!([]));
        assert_eq!(browser.get(app.at("/admin/clients?page=2")).send().await.unwrap().status(), 200);
    }
}
