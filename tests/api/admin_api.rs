//! The JSON admin API: bearer tokens issued by portcullis itself (RFC 6750), scopes, errors,
//! and the OpenAPI document.

use portcullis::client::NewClient;

use crate::helpers::*;
use crate::on_both_backends;

impl TestApp {
    /// An access token of a client allowed `scope` (dogfooding: client_credentials).
    pub(crate) async fn api_token(&self, name: &str, scope: &str) -> String {
        let c = self.create_client_with(NewClient {
            name: name.into(),
            scopes: vec![scope.into()],
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

    fn api(&self, path: &str) -> String {
        format!("{}/admin/api/v1{path}", self.address)
    }
}

on_both_backends!(an_admin_token_manages_clients_and_secrets);
async fn an_admin_token_manages_clients_and_secrets(app: TestApp) {
    let admin = app.api_token("Terraform", "portcullis:admin").await;
    let resp = app.http.post(app.api("/clients")).bearer_auth(&admin)
            .json(&serde_json::json!({"name": "From the API", "scopes": ["read"], "ip_allowlist": ["127.0.0.1"]}))
            .send().await.unwrap();
    assert_eq!(resp.status(), 201);
    let created: serde_json::Value = resp.json().await.unwrap();
    let id = created["client"]["client_id"].as_str().unwrap().to_string();
    let secret = created["client_secret"].as_str().unwrap().to_string();
    assert_eq!(
        created["client"]["ip_allowlist"],
        serde_json::json!(["127.0.0.1/32"])
    );
    assert_eq!(
        app.token_basic(&id, &secret, &[GRANT_CC]).await.status(),
        200,
        "the returned secret works"
    );
    // List with search; get; the secret is never listed.
    let page: serde_json::Value = app
        .http
        .get(app.api("/clients?q=from%20the&per_page=10"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["total"], 1);
    assert_eq!(page["items"][0]["client_id"], id.as_str());
    assert_eq!(page["items"][0]["secret_count"], 1);
    let secrets: serde_json::Value = app
        .http
        .get(app.api(&format!("/clients/{id}/secrets")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(secrets[0]["hint"], &secret[secret.len() - 4..]);
    assert!(!secrets.to_string().contains(&secret));
    // Add a second secret with an expiry; delete the first.
    let resp = app
        .http
        .post(app.api(&format!("/clients/{id}/secrets")))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"description": "rotation", "expires": "31/12/2030"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let second: serde_json::Value = resp.json().await.unwrap();
    let second_value = second["value"].as_str().unwrap().to_string();
    let first_id = secrets[0]["id"].as_i64().unwrap();
    let resp = app
        .http
        .delete(app.api(&format!("/clients/{id}/secrets/{first_id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(
        app.token_basic(&id, &secret, &[GRANT_CC]).await.status(),
        401
    );
    assert_eq!(
        app.token_basic(&id, &second_value, &[GRANT_CC])
            .await
            .status(),
        200
    );
    // Replace settings, disable, redirect URIs, usage, delete.
    let resp = app.http.put(app.api(&format!("/clients/{id}"))).bearer_auth(&admin)
            .json(&serde_json::json!({"name": "Renamed", "scopes": ["read", "write"], "rate_limit_per_minute": 100})).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let updated: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(updated["client"]["name"], "Renamed");
    assert_eq!(updated["client"]["rate_limit_per_minute"], 100);
    let resp = app
        .http
        .post(app.api(&format!("/clients/{id}/disable")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["enabled"],
        false
    );
    assert_eq!(
        app.token_basic(&id, &second_value, &[GRANT_CC])
            .await
            .status(),
        401
    );
    let resp = app
        .http
        .post(app.api(&format!("/clients/{id}/redirect-uris")))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"uri": "http://not-loopback.example/cb"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid");
    assert!(
        body["message"].as_str().unwrap().contains("loopback"),
        "{body}"
    );
    let resp = app
        .http
        .post(app.api(&format!("/clients/{id}/redirect-uris")))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"uri": "https://app.example.com/cb"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let usage: serde_json::Value = app
        .http
        .get(app.api(&format!("/clients/{id}/usage")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(usage["days"].as_array().unwrap().len(), 30);
    // Every change is in the audit log, by the calling client.
    let audit: serde_json::Value = app
        .http
        .get(app.api(&format!("/audit-events?client_id={id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in [
        "client.create",
        "secret.add",
        "secret.delete",
        "client.update",
        "client.disable",
        "redirect_uri.add",
    ] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    assert!(
        audit["items"][0]["actor"]
            .as_str()
            .unwrap()
            .starts_with("client:")
    );
    let resp = app
        .http
        .delete(app.api(&format!("/clients/{id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let resp = app
        .http
        .get(app.api(&format!("/clients/{id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["error"],
        "not_found"
    );
}

on_both_backends!(tokens_and_scopes_are_checked);
async fn tokens_and_scopes_are_checked(app: TestApp) {
    // No token, a garbage token, a revoked token: 401 invalid_token with a Bearer challenge.
    let resp = app.http.get(app.api("/clients")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid_token"
    );
    assert_eq!(
        app.http
            .get(app.api("/clients"))
            .bearer_auth("a.b.c")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    // A read token reads but cannot write: 403 insufficient_scope (RFC 6750 3.1).
    let read = app.api_token("Dashboard", "portcullis:read").await;
    assert_eq!(
        app.http
            .get(app.api("/clients"))
            .bearer_auth(&read)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let resp = app
        .http
        .post(app.api("/clients"))
        .bearer_auth(&read)
        .json(&serde_json::json!({"name": "Nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let challenge = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        challenge.contains("insufficient_scope") && challenge.contains("portcullis:admin"),
        "{challenge}"
    );
    // A token without either scope reads nothing.
    let other = app.api_token("Unrelated", "invoices:read").await;
    assert_eq!(
        app.http
            .get(app.api("/clients"))
            .bearer_auth(&other)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    // A revoked admin token stops working.
    let admin_client = app.create_client_with(NewClient {
        name: "Revoked".into(),
        scopes: vec!["portcullis:admin".into()],
        ..Default::default()
    });
    let t: serde_json::Value = app
        .token_basic(&admin_client.client_id, &admin_client.secret, &[GRANT_CC])
        .await
        .json()
        .await
        .unwrap();
    let token = t["access_token"].as_str().unwrap();
    assert_eq!(
        app.http
            .get(app.api("/clients"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    app.http
        .post(format!("{}/oauth/revoke", app.address))
        .basic_auth(&admin_client.client_id, Some(&admin_client.secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(
        app.http
            .get(app.api("/clients"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}

on_both_backends!(the_openapi_document_describes_the_api);
async fn the_openapi_document_describes_the_api(app: TestApp) {
    let doc: serde_json::Value = app
        .http
        .get(format!("{}/admin/api/openapi.json", app.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(doc["paths"]["/admin/api/v1/clients"]["get"].is_object());
    assert!(doc["paths"]["/admin/api/v1/clients/{client_id}/secrets"]["post"].is_object());
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

on_both_backends!(accounts_through_the_api);
async fn accounts_through_the_api(app: TestApp) {
    let admin = app.api_token("Provisioner", "portcullis:admin").await;
    let resp = app.http.post(app.api("/users")).bearer_auth(&admin)
            .json(&serde_json::json!({"username": "ops", "password": "a long enough password", "role": "admin"})).send().await.unwrap();
    assert_eq!(resp.status(), 201);
    let ops: serde_json::Value = resp.json().await.unwrap();
    let id = ops["id"].as_i64().unwrap();
    assert!(!ops.to_string().contains("a long enough password"));
    let resp = app.http.post(app.api("/users")).bearer_auth(&admin)
            .json(&serde_json::json!({"username": "ops", "password": "a long enough password", "role": "admin"})).send().await.unwrap();
    assert_eq!(resp.status(), 409);
    // The last admin stays: demoting or deleting ops (the only admin) is refused.
    let resp = app
        .http
        .patch(app.api(&format!("/users/{id}")))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"role": "readonly"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(
        resp.json::<serde_json::Value>().await.unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("last admin")
    );
    assert_eq!(
        app.http
            .delete(app.api(&format!("/users/{id}")))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    let resp = app.http.post(app.api("/users")).bearer_auth(&admin)
            .json(&serde_json::json!({"username": "viewer", "password": "another long password", "role": "readonly"})).send().await.unwrap();
    let viewer = resp.json::<serde_json::Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();
    let resp = app
        .http
        .patch(app.api(&format!("/users/{viewer}")))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"role": "user"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["role"],
        "user"
    );
    let users: serde_json::Value = app
        .http
        .get(app.api("/users"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(users.as_array().unwrap().len(), 2);
    assert_eq!(
        app.http
            .delete(app.api(&format!("/users/{viewer}")))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    // Accounts are for admin tokens only.
    let read = app.api_token("Reader", "portcullis:read").await;
    assert_eq!(
        app.http
            .get(app.api("/users"))
            .bearer_auth(&read)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
}

on_both_backends!(a_disabled_deleted_or_demoted_admin_client_loses_the_api_at_once);
async fn a_disabled_deleted_or_demoted_admin_client_loses_the_api_at_once(app: TestApp) {
    let admin = app.create_client_with(NewClient {
        name: "Automation".into(),
        scopes: vec!["portcullis:admin".into()],
        ..Default::default()
    });
    let t: serde_json::Value = app
        .token_basic(&admin.client_id, &admin.secret, &[GRANT_CC])
        .await
        .json()
        .await
        .unwrap();
    let token = t["access_token"].as_str().unwrap().to_string();
    let create_user = |name: &str| {
        app.http.post(app.api("/users")).bearer_auth(&token)
            .json(&serde_json::json!({"username": name, "password": "a long enough password", "role": "admin"})).send()
    };
    assert_eq!(create_user("first").await.unwrap().status(), 201);
    // Disabled: its still-unexpired token is refused on the next call.
    app.set_enabled(&admin.client_id, false);
    let resp = create_user("second").await.unwrap();
    assert_eq!(resp.status(), 401);
    assert!(
        resp.json::<serde_json::Value>().await.unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("disabled")
    );
    app.set_enabled(&admin.client_id, true);
    assert_eq!(create_user("third").await.unwrap().status(), 201);
    // Demoted to portcullis:read: the token reads, and cannot write any more.
    let other = app.api_token("Operator", "portcullis:admin").await;
    let resp = app
        .http
        .put(app.api(&format!("/clients/{}", admin.client_id)))
        .bearer_auth(&other)
        .json(&serde_json::json!({"name": "Automation", "scopes": ["portcullis:read"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    app.await_client_cache();
    assert_eq!(create_user("fourth").await.unwrap().status(), 403);
    // Deleted (by another admin): refused.
    let resp = app
        .http
        .delete(app.api(&format!("/clients/{}", admin.client_id)))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    app.await_client_cache();
    let resp = app
        .http
        .get(app.api("/clients"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(
        resp.json::<serde_json::Value>().await.unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("no longer exists")
    );
    let users: serde_json::Value = app
        .http
        .get(app.api("/users"))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["first", "third"],
        "nothing was created with the refused token"
    );
}

on_both_backends!(only_the_clients_own_client_credentials_token_reaches_the_api);
async fn only_the_clients_own_client_credentials_token_reaches_the_api(app: TestApp) {
    // A token issued for a person (sub = the user, not the client) never acts on the API,
    // whatever its scope: RFC 9068 2.2.
    let c = app.create_client_with(NewClient {
        name: "App".into(),
        scopes: vec!["portcullis:admin".into()],
        ..Default::default()
    });
    let claims = portcullis::token::AccessClaims::new(
        &app.issuer,
        &app.state.audience,
        "alice".into(),
        c.client_id.clone(),
        vec!["portcullis:admin"],
        portcullis::clock::Clock::system().now(),
        300,
    );
    let token = app
        .state
        .keys
        .get()
        .current(app.state.clock.now())
        .sign(&claims)
        .unwrap();
    let resp = app
        .http
        .get(app.api("/clients"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(
        resp.json::<serde_json::Value>().await.unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("client_credentials")
    );
}

on_both_backends!(admin_api_tokens_are_short_lived);
async fn admin_api_tokens_are_short_lived(app: TestApp) {
    // PORTCULLIS_ADMIN_TOKEN_TTL (600 s by default) caps a token with a portcullis: scope,
    // even for a client whose own lifetime is longer.
    let admin = app.create_client_with(NewClient {
        name: "Long".into(),
        scopes: vec!["portcullis:admin".into(), "read".into()],
        access_token_ttl: Some(7200),
        ..Default::default()
    });
    let t: serde_json::Value = app
        .token_basic(&admin.client_id, &admin.secret, &[GRANT_CC])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(t["expires_in"], 600);
    let t: serde_json::Value = app
        .token_basic(
            &admin.client_id,
            &admin.secret,
            &[GRANT_CC, ("scope", "read")],
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        t["expires_in"], 7200,
        "other scopes keep the client's lifetime"
    );
}

on_both_backends!(the_openapi_document_declares_every_error_the_api_answers);
async fn the_openapi_document_declares_every_error_the_api_answers(app: TestApp) {
    // schemathesis (tests/schemathesis/run.sh) checks every answer against the document;
    // these are the disagreements it found, kept fixed here.
    let doc: serde_json::Value = app
        .http
        .get(format!("{}/admin/api/openapi.json", app.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let responses = &doc["components"]["responses"];
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let mut wanted = vec!["400", "401", "403", "503"];
            if path.contains('{') {
                wanted.push("404");
            }
            if method != "get" && method != "delete" {
                wanted.push("409");
            }
            for code in wanted {
                let r = &op["responses"][code];
                assert!(r.is_object(), "{method} {path} does not document {code}");
                let r = match r["$ref"].as_str() {
                    Some(name) => &responses[name.rsplit('/').next().unwrap()],
                    None => r,
                };
                assert!(
                    r["content"]["application/json"]["schema"].is_object(),
                    "{method} {path} {code} has no body schema"
                );
                if code == "401" || code == "403" {
                    assert!(
                        r["headers"]["WWW-Authenticate"].is_object(),
                        "{method} {path} {code} has no challenge header"
                    );
                }
            }
            // Query parameters are in the query and optional (they were documented as
            // required path parameters).
            for p in op["parameters"].as_array().into_iter().flatten() {
                if p["in"] == "path" {
                    assert!(
                        path.contains(&format!("{{{}}}", p["name"].as_str().unwrap())),
                        "{method} {path}: {} is not in the path",
                        p["name"]
                    );
                }
            }
        }
    }
    // OpenAPI 3.1 (JSON Schema 2020-12): `items` is a schema, never an array.
    let days = &doc["components"]["schemas"]["Usage"]["properties"]["days"];
    assert!(days["items"]["items"].is_object(), "{days}");
}

on_both_backends!(a_method_an_api_path_does_not_serve_is_405_naming_those_it_does);
async fn a_method_an_api_path_does_not_serve_is_405_naming_those_it_does(app: TestApp) {
    let token = app.api_token("Admin", "portcullis:admin").await;
    let resp = app
        .http
        .patch(app.api("/clients"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "GET, POST");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "method_not_allowed");
    let resp = app.http.put(app.api("/users/1")).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "PATCH, DELETE");
}

on_both_backends!(api_pages_outside_the_documented_range_are_refused);
async fn api_pages_outside_the_documented_range_are_refused(app: TestApp) {
    // Never silently replaced by the default page size.
    let token = app.api_token("Reader", "portcullis:read").await;
    for path in [
        "/clients?per_page=7",
        "/clients?page=0",
        "/clients?page=-3",
        "/audit-events?per_page=0",
        "/audit-events?per_page=101",
        "/audit-events?page=0",
    ] {
        let resp = app
            .http
            .get(app.api(path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{path}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "invalid", "{path}");
    }
    for path in [
        "/clients?per_page=10",
        "/clients?page=2",
        "/audit-events?per_page=100",
    ] {
        assert_eq!(
            app.http
                .get(app.api(path))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .status(),
            200,
            "{path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_token_lifetime_is_configurable() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.admin_token_ttl = 60)
        .await
        .unwrap();
    let admin = app.create_client_with(NewClient {
        name: "Short".into(),
        scopes: vec!["portcullis:read".into()],
        ..Default::default()
    });
    let t: serde_json::Value = app
        .token_basic(&admin.client_id, &admin.secret, &[GRANT_CC])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(t["expires_in"], 60);
}

// Created disabled is one change: one transaction, one audit event that says so, and a client
// the token endpoint refuses from the start.
on_both_backends!(a_client_created_disabled_is_one_audited_change);
async fn a_client_created_disabled_is_one_audited_change(app: TestApp) {
    let admin = app.api_token("Terraform", "portcullis:admin").await;
    let resp = app
        .http
        .post(app.api("/clients"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"name": "Not yet", "scopes": ["read"], "enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let created: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(created["client"]["enabled"], false, "{created}");
    let id = created["client"]["client_id"].as_str().unwrap().to_string();
    let secret = created["client_secret"].as_str().unwrap().to_string();
    app.await_client_cache();
    assert_oauth_error(
        app.token_basic(&id, &secret, &[GRANT_CC]).await,
        401,
        "invalid_client",
    )
    .await;
    let audit: serde_json::Value = app
        .http
        .get(app.api(&format!("/audit-events?client_id={id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = audit["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{audit}");
    assert_eq!(items[0]["action"], "client.create");
    assert_eq!(items[0]["details"], "confidential; disabled", "{audit}");
}
