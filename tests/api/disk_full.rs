//! A full disk under the SQLite database (issue 11, item 4): writes fail with 503 and reads
//! that need no write (client_credentials from the cache, JWKS, metadata) keep working; when
//! space is back, so is everything else. The database lives on a small tmpfs of its own, filled
//! up by the test (the test needs to be allowed to mount, as CI's root is).

use std::process::Command;

use crate::helpers::*;

struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_with_503_and_keeps_serving_reads() {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16m", "tmpfs"])
        .arg(dir.path())
        .status()
        .expect("mount runs");
    assert!(
        status.success(),
        "this test mounts a small tmpfs and needs to be allowed to"
    );
    let _mount = Mount(dir.path().to_path_buf());
    let mut db = TestDb::new(Backend::Sqlite).unwrap();
    let path = dir.path().join("full.db");
    db.url = format!("sqlite://{}", path.display());
    db.sqlite_path = Some(path);
    let app = spawn_app_on(db, |_| {});
    let token = app.api_token("Disk admin", "portcullis:admin").await;
    let create = |name: &str| {
        app.http
            .post(format!("{}/admin/api/v1/clients", app.address))
            .bearer_auth(&token)
            .json(&serde_json::json!({"name": name, "scopes": ["read"]}))
            .send()
    };
    let resp = create("Before").await.unwrap();
    assert_eq!(resp.status(), 201);
    let created: serde_json::Value = resp.json().await.unwrap();
    let (id, secret) = (
        created["client"]["client_id"].as_str().unwrap().to_string(),
        created["client_secret"].as_str().unwrap().to_string(),
    );
    assert_eq!(token_status(&app, &id, &secret).await, 200, "cached now");
    // Fill the disk.
    let filler = dir.path().join("filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=64k"])
        .arg(format!("of={}", filler.display()))
        .stderr(std::process::Stdio::null())
        .status();
    let mut refused = 0;
    for i in 0..20 {
        let resp = create(&format!("During {i}")).await.unwrap();
        let status = resp.status().as_u16();
        assert!(
            status == 201 || status == 503,
            "a write on a full disk: {status} {}",
            ""
        );
        if status == 503 {
            let body: serde_json::Value = resp.json().await.unwrap();
            assert_eq!(body["error"], "temporarily_unavailable", "{body}");
            refused += 1;
        }
    }
    assert!(
        refused > 0,
        "the disk was full, so some write must have failed"
    );
    // Reads that need no write go on.
    assert_eq!(token_status(&app, &id, &secret).await, 200);
    for path in [
        "/oauth/jwks.json",
        "/.well-known/oauth-authorization-server",
        "/healthz",
    ] {
        let resp = app
            .http
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
    }
    // Space again: writes work again, with no restart.
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(create("After").await.unwrap().status(), 201);
}
