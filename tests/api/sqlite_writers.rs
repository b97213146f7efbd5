//! SQLite under concurrent writers (issue 11, item 2): an admin changing clients through the
//! API, the CLI adding secrets from another process, and people's apps exchanging codes and
//! refreshing tokens, all at once. Contention must surface as latency, never as an error
//! ("database is locked").

use portcullis::user::Role;

use crate::authorize::{CB, code_for, tokens};
use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_on_sqlite_wait_for_each_other_and_never_fail() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let app = std::sync::Arc::new(app);
    let web = app.web_app("Busy app", &["read"]);
    let managed = app.create_client("Managed by the admin", &["read"]);
    let token = app.api_token("Writer admin", "portcullis:admin").await;
    app.create_user("busy-admin", crate::authorize::PASSWORD, Role::Admin);

    // People's apps: each worker gets codes, exchanges them and refreshes the chain.
    let mut work = Vec::new();
    for w in 0..4 {
        let app = app.clone();
        let web = TestClient {
            client_id: web.client_id.clone(),
            secret: web.secret.clone(),
            secret_id: web.secret_id,
        };
        work.push(tokio::spawn(async move {
            let browser = app.signed_in(&format!("person{w}")).await;
            let mut done = 0;
            for _ in 0..6 {
                let (code, verifier) = code_for(&app, &browser, &web, "read").await;
                let t = tokens(
                    app.exchange(
                        &web,
                        &[
                            ("code", &code),
                            ("redirect_uri", CB),
                            ("code_verifier", &verifier),
                        ],
                    )
                    .await,
                )
                .await;
                let mut refresh = t["refresh_token"].as_str().unwrap().to_string();
                for _ in 0..4 {
                    let t = tokens(app.refresh(&web, &refresh, None).await).await;
                    refresh = t["refresh_token"].as_str().unwrap().to_string();
                    done += 1;
                }
            }
            done
        }));
    }
    // The admin: disables and enables a client, over and over, through the JSON API.
    let admin = {
        let (app, token, id) = (app.clone(), token.clone(), managed.client_id.clone());
        tokio::spawn(async move {
            for i in 0..30 {
                let action = if i % 2 == 0 { "disable" } else { "enable" };
                let resp = app
                    .http
                    .post(format!(
                        "{}/admin/api/v1/clients/{id}/{action}",
                        app.address
                    ))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(
                    resp.status(),
                    200,
                    "{action}: {}",
                    resp.text().await.unwrap()
                );
            }
        })
    };
    // The CLI, another process with its own connection: adds secrets.
    let cli = {
        let (app, id) = (app.clone(), managed.client_id.clone());
        tokio::task::spawn_blocking(move || {
            for i in 0..6 {
                let out = app
                    .cli()
                    .args(["secret", "add", &id, "--description", &format!("cli {i}")])
                    .output()
                    .unwrap();
                let err = String::from_utf8_lossy(&out.stderr).to_string();
                assert!(
                    out.status.success() && !err.contains("locked"),
                    "secret add {i}: {err}"
                );
            }
        })
    };
    let mut refreshes = 0;
    for w in work {
        refreshes += w.await.unwrap();
    }
    admin.await.unwrap();
    cli.await.unwrap();
    assert_eq!(refreshes, 4 * 6 * 4);
    // Nothing the CLI added was lost.
    let secrets: serde_json::Value = app
        .http
        .get(format!(
            "{}/admin/api/v1/clients/{}/secrets",
            app.address, managed.client_id
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let n = secrets
        .as_array()
        .or_else(|| secrets["secrets"].as_array())
        .map(Vec::len);
    assert_eq!(n, Some(7), "{secrets}");
}
