//! The command line end to end, against the real binary, on both backends.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{Backend, TestApp, TestDb};

pub(crate) fn portcullis(db: &TestDb) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    cmd.arg("--database-url")
        .arg(&db.url)
        .env_remove("PORTCULLIS_DATABASE_URL")
        .env_remove("PORTCULLIS_MASTER_KEY")
        .env_remove("PORTCULLIS_MASTER_KEY_FILE");
    // PostgreSQL needs the key given (every instance shares it); SQLite makes its key file.
    if db.sqlite_path.is_none() {
        cmd.env("PORTCULLIS_MASTER_KEY", portcullis::config::TEST_MASTER_KEY);
    }
    cmd
}

fn run(db: &TestDb, args: &[&str]) -> Output {
    portcullis(db).args(args).output().unwrap()
}

fn run_with_stdin(db: &TestDb, args: &[&str], stdin: &str) -> Output {
    let mut child = portcullis(db)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

pub(crate) fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "command failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// A failed command: non-zero exit and exactly one line on stderr, returned.
pub(crate) fn fails(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "command should fail: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8(out.stderr.clone()).unwrap();
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line on stderr: {err:?}"
    );
    err
}

pub(crate) fn secret_from(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("client_secret: "))
        .expect("the secret is printed once")
        .trim()
        .to_string()
}

/// A migrated database with one client (allowed scope `read`) made by `client create`:
/// its client_id and the secret printed once.
fn migrated_with_a_client(db: &TestDb) -> (String, String) {
    assert!(ok(&run(db, &["migrate"])).contains("up to date"));
    let created: serde_json::Value = serde_json::from_str(&ok(&run(
        db,
        &[
            "client", "create", "--name", "CLI app", "--scope", "read", "--output", "json",
        ],
    )))
    .unwrap();
    let client_id = created["client"]["client_id"].as_str().unwrap().to_string();
    let secret = created["client_secret"].as_str().unwrap().to_string();
    assert_eq!(secret.len(), 43);
    (client_id, secret)
}

/// `secret add` with a description and an expiry: the new secret, printed once.
fn add_secret(db: &TestDb, client_id: &str) -> String {
    let added = ok(&run(
        db,
        &[
            "secret",
            "add",
            client_id,
            "--description",
            "rotation",
            "--expires",
            "2099-12-31",
        ],
    ));
    assert!(added.contains("2099-12-31"), "{added}");
    secret_from(&added)
}

fn secret_count(db: &TestDb, client_id: &str) -> usize {
    let listed: serde_json::Value = serde_json::from_str(&ok(&run(
        db,
        &["secret", "list", client_id, "--output", "json"],
    )))
    .unwrap();
    listed.as_array().unwrap().len()
}

/// `portcullis serve` on port 0 with debug logging and a 1 s usage flush; killed when dropped.
struct Served {
    server: std::process::Child,
    address: String,
    log_path: std::path::PathBuf,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

impl Served {
    async fn start(db: &TestDb) -> Served {
        let log_path = db.dir.path().join("server.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let mut server = portcullis(db)
            .arg("serve")
            .env("PORTCULLIS_BIND", "127.0.0.1:0")
            .env("PORTCULLIS_LOG_LEVEL", "debug")
            .env("PORTCULLIS_USAGE_FLUSH_SECONDS", "1")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let started = Instant::now();
        let address = loop {
            let text = std::fs::read_to_string(&log_path).unwrap();
            if let Some(rest) = text.split("listening on http://").nth(1) {
                break format!("http://{}", rest.split_whitespace().next().unwrap());
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "server did not start: {text}"
            );
            assert!(
                server.try_wait().unwrap().is_none(),
                "server exited: {text}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        Served {
            server,
            address,
            log_path,
        }
    }

    /// client_credentials with HTTP Basic: the status and the body.
    async fn token(&self, client_id: &str, secret: &str) -> (u16, serde_json::Value) {
        let r = reqwest::Client::new()
            .post(format!("{}/oauth/token", self.address))
            .basic_auth(client_id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or_default())
    }

    /// Waits (at most 3 s: the client cache polls every second) until `secret` gets `want`.
    async fn await_status(&self, client_id: &str, secret: &str, want: u16) {
        let changed = Instant::now();
        while self.token(client_id, secret).await.0 != want {
            assert!(
                changed.elapsed() < Duration::from_secs(3),
                "the change was not seen within 3 s (cache interval 1 s)"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM, a clean exit, and the log.
    fn stop(mut self) -> String {
        Command::new("kill")
            .arg("-TERM")
            .arg(self.server.id().to_string())
            .status()
            .unwrap();
        let status = self.server.wait().unwrap();
        assert!(status.success(), "clean exit on SIGTERM: {status}");
        std::fs::read_to_string(&self.log_path).unwrap()
    }
}

crate::on_both_databases!(secrets_are_added_and_listed_by_hint_never_by_value);
async fn secrets_are_added_and_listed_by_hint_never_by_value(db: TestDb) {
    let (client_id, first) = migrated_with_a_client(&db);
    let second = add_secret(&db, &client_id);
    assert_ne!(first, second);
    let listed = ok(&run(&db, &["secret", "list", &client_id]));
    assert!(
        listed.contains(&first[first.len() - 4..]) && listed.contains(&second[second.len() - 4..]),
        "hints: {listed}"
    );
    assert!(
        listed.contains("2099-12-31") && listed.contains("rotation"),
        "{listed}"
    );
    assert_eq!(
        listed.matches("Never").count(),
        3,
        "one never-expiring, two never used: {listed}"
    );
    assert!(
        !listed.contains(&first) && !listed.contains(&second),
        "never the value"
    );
    let json_list: serde_json::Value = serde_json::from_str(&ok(&run(
        &db,
        &["secret", "list", &client_id, "--output", "json"],
    )))
    .unwrap();
    assert_eq!(json_list.as_array().unwrap().len(), 2);
    assert!(json_list[0].get("hash").is_none());
}

// Bad input: non-zero exit, one line on stderr, nothing changed.
crate::on_both_databases!(bad_input_exits_non_zero_with_one_line_and_changes_nothing);
async fn bad_input_exits_non_zero_with_one_line_and_changes_nothing(db: TestDb) {
    let (client_id, _) = migrated_with_a_client(&db);
    let refused = |args: &[&str], says: &str| {
        let err = fails(&run(&db, args));
        assert!(err.contains(says), "{args:?}: {err}");
    };
    refused(
        &["secret", "add", &client_id, "--value", "too-short"],
        "at least 16",
    );
    refused(
        &["secret", "add", &client_id, "--expires", "2001-01-01"],
        "past",
    );
    refused(
        &["secret", "add", &client_id, "--expires", "31.12.2099"],
        "YYYY-MM-DD",
    );
    refused(&["client", "show", "no-such-client"], "no-such-client");
    refused(&["client", "create", "--name", "cli APP"], "already exists");
    refused(
        &[
            "client",
            "create",
            "--name",
            "x",
            "--redirect-uri",
            "http://evil.example/cb",
        ],
        "https",
    );
    assert_eq!(secret_count(&db, &client_id), 1, "no secret was added");
    let clients = ok(&run(&db, &["client", "list"]));
    assert!(
        clients.contains("CLI app") && !clients.contains("cli APP") && !clients.contains(" x "),
        "{clients}"
    );
}

// Accounts: the password comes from stdin, never from the command line.
crate::on_both_databases!(admin_create_reads_the_password_from_stdin_and_checks_it);
async fn admin_create_reads_the_password_from_stdin_and_checks_it(db: TestDb) {
    assert!(ok(&run(&db, &["migrate"])).contains("up to date"));
    assert!(
        ok(&run_with_stdin(
            &db,
            &["admin", "create", "--username", "alice", "--role", "admin"],
            "correct horse battery\n"
        ))
        .contains("alice")
    );
    assert!(
        fails(&run_with_stdin(
            &db,
            &["admin", "create", "--username", "bob", "--role", "readonly"],
            "short\n"
        ))
        .contains("at least 12")
    );
    assert!(
        fails(&run(
            &db,
            &["admin", "create", "--username", "eve", "--role", "root"]
        ))
        .contains("admin or readonly")
    );
    let users = ok(&run(&db, &["user", "list"]));
    assert!(
        users.contains("alice") && users.contains("admin") && !users.contains("bob"),
        "{users}"
    );
}

// Serve, use both secrets (Basic and form), and see each secret's last use recorded.
crate::on_both_databases!(a_served_client_uses_either_secret_and_its_last_use_is_recorded);
async fn a_served_client_uses_either_secret_and_its_last_use_is_recorded(db: TestDb) {
    let (client_id, first) = migrated_with_a_client(&db);
    let second = add_secret(&db, &client_id);
    let served = Served::start(&db).await;
    assert_eq!(served.token(&client_id, &second).await.0, 200);
    let r = reqwest::Client::new()
        .post(format!("{}/oauth/token", served.address))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &client_id),
            ("client_secret", &first),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let wrong = format!("{}x", &second[..42]);
    assert_eq!(served.token(&client_id, &wrong).await.0, 401);

    let started = Instant::now();
    loop {
        let listed = ok(&run(&db, &["secret", "list", &client_id]));
        if listed.matches("Never").count() == 1 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "last use not recorded: {listed}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let shown: serde_json::Value = serde_json::from_str(&ok(&run(
        &db,
        &["client", "show", &client_id, "--output", "json"],
    )))
    .unwrap();
    assert!(shown["last_used"].is_string(), "{shown}");
}

// Disable, enable and a deleted secret reach a running server within the client cache's poll
// interval (1 s by default), although the client is cached and the change comes from another
// process.
crate::on_both_databases!(cli_changes_reach_a_running_server_within_the_cache_interval);
async fn cli_changes_reach_a_running_server_within_the_cache_interval(db: TestDb) {
    let (client_id, first) = migrated_with_a_client(&db);
    let second = add_secret(&db, &client_id);
    let served = Served::start(&db).await;
    assert_eq!(served.token(&client_id, &second).await.0, 200);
    ok(&run(&db, &["client", "disable", &client_id]));
    served.await_status(&client_id, &second, 401).await;
    ok(&run(&db, &["client", "enable", &client_id]));
    served.await_status(&client_id, &second, 200).await;
    let listed: serde_json::Value = serde_json::from_str(&ok(&run(
        &db,
        &["secret", "list", &client_id, "--output", "json"],
    )))
    .unwrap();
    let second_hint = &second[second.len() - 4..];
    let second_id = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["hint"].as_str().unwrap().ends_with(second_hint))
        .unwrap()["id"]
        .to_string();
    ok(&run(&db, &["secret", "delete", &second_id]));
    served.await_status(&client_id, &second, 401).await;
    assert_eq!(
        served.token(&client_id, &first).await.0,
        200,
        "the other secret still works"
    );
}

// With debug logging on, neither a secret (right or wrong) nor a token reaches the log, and
// the database holds only hashes; SIGTERM stops the server cleanly.
crate::on_both_databases!(no_secret_or_token_reaches_the_log_or_the_database);
async fn no_secret_or_token_reaches_the_log_or_the_database(db: TestDb) {
    let (client_id, first) = migrated_with_a_client(&db);
    let second = add_secret(&db, &client_id);
    let served = Served::start(&db).await;
    let (status, issued) = served.token(&client_id, &second).await;
    assert_eq!(status, 200);
    let access_token = issued["access_token"].as_str().unwrap().to_string();
    assert_eq!(served.token(&client_id, &first).await.0, 200);
    let wrong = format!("{}x", &second[..42]);
    assert_eq!(served.token(&client_id, &wrong).await.0, 401);
    let log = served.stop();

    assert!(log.contains("request"), "debug logging was on: {log}");
    for secret in [&first, &second, &wrong] {
        assert!(!log.contains(secret.as_str()), "a secret is in the log");
    }
    let signature = access_token.rsplit('.').next().unwrap();
    assert!(!log.contains(signature), "an access token is in the log");
    let dump = ok(&run(
        &db,
        &["client", "show", &client_id, "--output", "json"],
    ));
    assert!(!dump.contains(&first) && !dump.contains(&second));
    if let Some(path) = &db.sqlite_path {
        let mut bytes = std::fs::read(path).unwrap();
        bytes.extend(std::fs::read(path.with_extension("db-wal")).unwrap_or_default());
        for secret in [&first, &second] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "a secret is in the database file"
            );
        }
    } else {
        use diesel::{Connection, RunQueryDsl};
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::Text)]
            hash: String,
        }
        let mut conn = diesel::PgConnection::establish(&db.url).unwrap();
        let rows: Vec<Row> = diesel::sql_query("SELECT hash FROM client_secrets")
            .load(&mut conn)
            .unwrap();
        assert_eq!(rows.len(), 2);
        for r in rows {
            assert!(
                r.hash.starts_with("sha256$")
                    && !r.hash.contains(&first)
                    && !r.hash.contains(&second)
            );
        }
    }
}

// Signing keys: one signing; a rotated-in key is published first.
crate::on_both_databases!(keys_rotate_publishes_the_new_key_before_it_signs);
async fn keys_rotate_publishes_the_new_key_before_it_signs(db: TestDb) {
    assert!(ok(&run(&db, &["migrate"])).contains("up to date"));
    let keys = ok(&run(&db, &["keys", "list"]));
    assert_eq!(keys.matches("signing").count(), 1, "{keys}");
    assert!(ok(&run(&db, &["keys", "rotate", "--activate-in", "60"])).contains("published now"));
    let keys = ok(&run(&db, &["keys", "list"]));
    assert!(
        keys.contains("published, signs later") && keys.contains("signing"),
        "{keys}"
    );
    assert!(
        fails(&run(&db, &["keys", "rotate", "--activate-in", "999999"])).contains("--activate-in")
    );
}

crate::on_both_databases!(client_policy_sets_and_clears_the_ip_allowlist_and_rate_limit);
async fn client_policy_sets_and_clears_the_ip_allowlist_and_rate_limit(db: TestDb) {
    let (client_id, _) = migrated_with_a_client(&db);
    ok(&run(
        &db,
        &[
            "client",
            "policy",
            &client_id,
            "--allow-ip",
            "10.0.0.0/8",
            "--allow-ip",
            "2001:db8::/32",
            "--rate-limit",
            "30",
        ],
    ));
    let shown = ok(&run(&db, &["client", "show", &client_id]));
    assert!(
        shown.contains("10.0.0.0/8, 2001:db8::/32") && shown.contains("30/minute"),
        "{shown}"
    );
    assert!(
        fails(&run(
            &db,
            &["client", "policy", &client_id, "--allow-ip", "nowhere"]
        ))
        .contains("not an IP address")
    );
    let shown = ok(&run(&db, &["client", "show", &client_id]));
    assert!(shown.contains("30/minute"), "unchanged: {shown}");
    ok(&run(
        &db,
        &[
            "client",
            "policy",
            &client_id,
            "--any-ip",
            "--no-rate-limit",
        ],
    ));
    let shown = ok(&run(&db, &["client", "show", &client_id]));
    assert!(
        shown.contains("allowed IPs:   any") && shown.contains("rate limit:    none"),
        "{shown}"
    );
}

// Delete: the client and its secrets are gone.
crate::on_both_databases!(client_delete_removes_the_client_and_its_secrets);
async fn client_delete_removes_the_client_and_its_secrets(db: TestDb) {
    let (client_id, _) = migrated_with_a_client(&db);
    add_secret(&db, &client_id);
    assert!(ok(&run(&db, &["client", "delete", &client_id])).contains("Deleted"));
    assert!(fails(&run(&db, &["secret", "list", &client_id])).contains("no client"));
    assert!(fails(&run(&db, &["client", "show", &client_id])).contains(&client_id));
}

#[test]
fn bad_settings_fail_at_start_with_one_line_naming_the_setting() {
    let db = TestDb::new(Backend::Sqlite).unwrap();
    let out = portcullis(&db)
        .arg("serve")
        .env("PORTCULLIS_ACCESS_TOKEN_TTL", "soon")
        .output()
        .unwrap();
    assert!(fails(&out).contains("PORTCULLIS_ACCESS_TOKEN_TTL"));
    let out = portcullis(&db)
        .arg("serve")
        .env("PORTCULLIS_BIND", "localhost")
        .output()
        .unwrap();
    assert!(fails(&out).contains("PORTCULLIS_BIND"));
    let config = db.dir.path().join("portcullis.toml");
    std::fs::write(&config, "acces_token_ttl = 60\n").unwrap();
    let out = portcullis(&db)
        .arg("--config")
        .arg(&config)
        .arg("migrate")
        .output()
        .unwrap();
    assert!(fails(&out).contains("unknown setting 'acces_token_ttl'"));
    // The real cause of a PostgreSQL failure, not MultiConnection's generic message.
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args([
            "--database-url",
            "postgres://nobody@127.0.0.1:1/none",
            "migrate",
        ])
        .output()
        .unwrap();
    let err = fails(&out);
    assert!(
        err.contains("127.0.0.1") && !err.contains("multiconnection"),
        "{err}"
    );
}

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["client", "create", "--help"],
        vec!["secret", "add", "--help"],
        vec!["admin", "create", "--help"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(&args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{args:?}"
        );
    }
}

crate::on_both_backends!(cli_changes_are_the_admin_areas_changes_audited_with_the_os_user);
async fn cli_changes_are_the_admin_areas_changes_audited_with_the_os_user(app: TestApp) {
    use portcullis::audit::store::{AuditFilter, page};
    let c = app.create_client("Retired automation", &["portcullis:read"]);
    let t: serde_json::Value = app
        .token_basic(&c.client_id, &c.secret, &[crate::helpers::GRANT_CC])
        .await
        .json()
        .await
        .unwrap();
    let token = t["access_token"].as_str().unwrap().to_string();
    let api = format!("{}/admin/api/v1/clients", app.address);
    assert_eq!(
        app.http
            .get(&api)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // The server's database is sealed with the test servers' key.
    let cli = |args: &[&str]| app.cli().env("USER", "alice").args(args).output().unwrap();
    ok(&cli(&["client", "disable", &c.client_id]));
    ok(&cli(&["client", "enable", &c.client_id]));
    ok(&cli(&["client", "delete", &c.client_id]));
    // Deleted like the admin area deletes it (one operation: manage::delete_client): its
    // tokens stop acting on the admin API, and the audit log names who did it.
    app.await_client_cache();
    assert_eq!(
        app.http
            .get(&api)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let (events, _) = page(
        &mut app.pool.get().unwrap(),
        &AuditFilter {
            client_id: Some(c.client_id.clone()),
            actor: None,
        },
        0,
        10,
    )
    .unwrap();
    let seen: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.action.as_str(), e.actor.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("client.delete", "cli:alice"),
            ("client.enable", "cli:alice"),
            ("client.disable", "cli:alice"),
            ("client.create", "test-fixture")
        ]
    );
    assert!(events.iter().all(|e| e.remote_addr == "local"));
}

// Key rotations are use cases too: audited with the OS user, like every other CLI change.
crate::on_both_backends!(key_rotations_are_audited_with_the_os_user);
async fn key_rotations_are_audited_with_the_os_user(app: TestApp) {
    use portcullis::audit::store::{AuditFilter, page};
    let cli = |args: &[&str]| app.cli().env("USER", "carol").args(args).output().unwrap();
    let said = ok(&cli(&["keys", "rotate", "--activate-in", "60"]));
    let kid = said
        .split_whitespace()
        .nth(3)
        .unwrap()
        .trim_end_matches(':')
        .to_string();
    // A refused rotation changes nothing and records nothing.
    fails(&cli(&["keys", "rotate", "--activate-in", "999999"]));
    let (events, total) = page(
        &mut app.pool.get().unwrap(),
        &AuditFilter {
            client_id: None,
            actor: Some("cli:carol".into()),
        },
        0,
        10,
    )
    .unwrap();
    assert_eq!(total, 1, "{said}");
    assert_eq!(events[0].action, "signing_key.rotate");
    assert_eq!(events[0].target, kid, "{said}");
    assert!(
        events[0].details.starts_with("signs from "),
        "{}",
        events[0].details
    );
}

// One table of limits (portcullis::limits): the server's default lifetimes accept exactly the
// bounds a client's own lifetimes accept.
#[test]
fn token_lifetime_settings_have_the_bounds_of_a_clients_own() {
    let db = TestDb::new(Backend::Sqlite).unwrap();
    for (setting, value) in [
        ("PORTCULLIS_ACCESS_TOKEN_TTL", "86401"),
        ("PORTCULLIS_ACCESS_TOKEN_TTL", "59"),
        ("PORTCULLIS_REFRESH_TOKEN_TTL", "31536001"),
    ] {
        let out = portcullis(&db)
            .arg("migrate")
            .env(setting, value)
            .output()
            .unwrap();
        let err = fails(&out);
        assert!(
            err.contains(setting) && err.contains("lifetime must be from"),
            "{setting}={value}: {err}"
        );
    }
    for (setting, value) in [
        ("PORTCULLIS_ACCESS_TOKEN_TTL", "86400"),
        ("PORTCULLIS_REFRESH_TOKEN_TTL", "31536000"),
    ] {
        let out = portcullis(&db)
            .arg("migrate")
            .env(setting, value)
            .output()
            .unwrap();
        ok(&out);
    }
    let too_long = portcullis::client::NewClient {
        name: "app".into(),
        access_token_ttl: Some(86_401),
        ..Default::default()
    }
    .validate();
    let err = too_long.unwrap_err();
    assert_eq!(err.field, portcullis::client::ClientField::AccessTokenTtl);
    assert_eq!(
        err.message,
        "access token lifetime must be from 60 to 86400 seconds"
    );
}
