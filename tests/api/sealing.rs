//! Issue 10 item 7: nothing in the database alone lets anyone forge anything. The signing keys
//! and client_secret_jwt keys are sealed with a master key kept outside the database.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use diesel::prelude::*;
use portcullis::Application;
use portcullis::client::{AuthMethod, NewClient};
use portcullis::config::{Settings, TEST_MASTER_KEY};
use portcullis::db::schema::{clients, signing_keys};
use portcullis::seal::{Aad, MasterKey};

use crate::cli::{fails, ok, portcullis, secret_from};
use crate::helpers::*;
use crate::jwt_auth::hs256_assertion;
use crate::on_both_backends;

fn other_key() -> (String, MasterKey) {
    let text = STANDARD.encode([0x42u8; 32]);
    let key = MasterKey::parse(&text).unwrap();
    (text, key)
}

fn build_error(settings: Settings) -> String {
    match Application::build(settings) {
        Ok(_) => panic!("the server started"),
        Err(e) => e.to_string(),
    }
}

fn is_es256_private_key(der: &[u8]) -> bool {
    aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        der,
    )
    .is_ok()
}

fn signing_key_rows(conn: &mut portcullis::db::AnyConnection) -> Vec<(String, String)> {
    signing_keys::table
        .select((signing_keys::kid, signing_keys::private_key))
        .load(conn)
        .unwrap()
}

fn hmac_row(conn: &mut portcullis::db::AnyConnection, client_id: &str) -> String {
    clients::table
        .filter(clients::client_id.eq(client_id))
        .select(clients::hmac_key)
        .first::<Option<String>>(conn)
        .unwrap()
        .unwrap()
}

#[derive(QueryableByName)]
struct Dumped {
    #[diesel(sql_type = diesel::sql_types::Text)]
    row: String,
}

/// What a copy of the database holds, as bytes: the SQLite file with its WAL, or every row of
/// every table of the PostgreSQL database as JSON.
fn database_copy(db: &TestDb) -> Vec<u8> {
    if let Some(path) = &db.sqlite_path {
        let mut bytes = std::fs::read(path).unwrap();
        bytes.extend(std::fs::read(path.with_extension("db-wal")).unwrap_or_default());
        return bytes;
    }
    let mut conn = diesel::PgConnection::establish(&db.url).unwrap();
    let tables: Vec<Dumped> =
        diesel::sql_query("SELECT tablename AS row FROM pg_tables WHERE schemaname = 'public'")
            .load(&mut conn)
            .unwrap();
    let mut bytes = Vec::new();
    for t in tables {
        let rows: Vec<Dumped> = diesel::sql_query(format!(
            "SELECT row_to_json(t)::text AS row FROM \"{}\" t",
            t.row
        ))
        .load(&mut conn)
        .unwrap();
        for r in rows {
            bytes.extend(r.row.into_bytes());
        }
    }
    bytes
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

on_both_backends!(a_copy_of_the_database_holds_no_private_key_and_the_server_still_signs);
async fn a_copy_of_the_database_holds_no_private_key_and_the_server_still_signs(app: TestApp) {
    let master = test_master_key();
    // Two signing keys and a client_secret_jwt key.
    portcullis::token::rotate(
        &mut app.pool.get().unwrap(),
        portcullis::clock::Clock::system().now(),
        0,
        &app.state.master_key,
    )
    .unwrap();
    let hmac = app.create_client_with(NewClient {
        name: "HMAC".into(),
        auth_method: Some(AuthMethod::ClientSecretJwt),
        ..Default::default()
    });
    let c = app.create_client("Plain", &[]);
    let mut conn = app.pool.get().unwrap();
    let rows = signing_key_rows(&mut conn);
    assert_eq!(rows.len(), 2);
    let copy = database_copy(&app.db);
    for (kid, stored) in &rows {
        assert!(stored.starts_with("v1:"), "sealed: {stored}");
        for candidate in [stored.as_str(), &stored[3..]] {
            for decoded in [
                STANDARD.decode(candidate),
                URL_SAFE_NO_PAD.decode(candidate),
            ] {
                assert!(
                    !decoded.is_ok_and(|d| is_es256_private_key(&d)),
                    "the row is a usable key"
                );
            }
        }
        // It is the key, sealed for its row: the master key opens it, and its plaintext
        // is nowhere in the copy.
        let der = master.open(Aad::signing_key(kid), stored).unwrap();
        assert!(is_es256_private_key(&der));
        assert!(!contains(&copy, &der), "DER private key in the database");
        assert!(
            !contains(&copy, STANDARD.encode(&*der).as_bytes()),
            "base64 private key in the database"
        );
        assert!(
            master
                .open(Aad::signing_key("another-kid"), stored)
                .is_err(),
            "bound to its row"
        );
    }
    let stored = hmac_row(&mut conn, &hmac.client_id);
    assert!(stored.starts_with("v1:"));
    assert!(
        !contains(&copy, hmac.secret.as_bytes()),
        "client_secret_jwt key in the database"
    );
    drop(conn);

    // The server signs and verifies as before.
    let resp = app
        .token_basic(
            &c.client_id,
            &c.secret,
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(resp.status(), 200);
    let token: serde_json::Value = resp.json().await.unwrap();
    crate::token::verify_jwt(&app, token["access_token"].as_str().unwrap()).await;
    let resp = app
        .token_with_assertion(&hs256_assertion(&hmac.secret, &hmac.client_id, &app.issuer))
        .await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
}

on_both_backends!(the_wrong_master_key_is_refused_at_start_with_a_clear_error);
async fn the_wrong_master_key_is_refused_at_start_with_a_clear_error(app: TestApp) {
    let (_, wrong) = other_key();
    let mut settings = Settings::for_tests(&app.db.url);
    settings.master_key = Some(wrong);
    let err = build_error(settings);
    assert!(
        err.contains("does not open signing key") && err.contains("PORTCULLIS_MASTER_KEY"),
        "{err}"
    );
    assert!(!err.contains('\n'), "one line: {err}");
    // The command line says so too, in one line.
    let (text, _) = other_key();
    let out = portcullis(&app.db)
        .env("PORTCULLIS_MASTER_KEY", text)
        .args(["keys", "list"])
        .output()
        .unwrap();
    assert!(fails(&out).contains("does not open"));
}

/// A database as portcullis wrote it before sealing: a signing key in plaintext (base64 PKCS#8)
/// and a client_secret_jwt key in the unversioned format (AAD = the client_id alone).
async fn old_databases_are_sealed_at_start_and_old_tokens_still_verify(backend: Backend) {
    let db = TestDb::new(backend).expect(crate::helpers::NO_POSTGRES);
    let master = test_master_key();
    let issuer = "https://old.example.test";
    let now = portcullis::clock::Clock::system().now();
    let pkcs8 = aws_lc_rs::signature::EcdsaKeyPair::generate(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
    )
    .unwrap()
    .to_pkcs8v1()
    .unwrap();
    let der = pkcs8.as_ref().to_vec();
    let hmac_value = "an-old-client-secret-jwt-key-0123456789abc";
    let client_id = {
        let mut conn =
            portcullis::db::connect(&portcullis::db::DbUrl::parse(&db.url).unwrap()).unwrap();
        portcullis::db::migrate_and(&mut conn, |_| Ok(())).unwrap();
        diesel::insert_into(signing_keys::table)
            .values((
                signing_keys::kid.eq("old-kid"),
                signing_keys::alg.eq("ES256"),
                signing_keys::private_key.eq(STANDARD.encode(&der)),
                signing_keys::created_at.eq(now - 60),
                signing_keys::activates_at.eq(now - 60),
            ))
            .execute(&mut conn)
            .unwrap();
        let new = NewClient {
            name: "Old HMAC".into(),
            auth_method: Some(AuthMethod::ClientSecretJwt),
            ..Default::default()
        }
        .validate()
        .unwrap();
        let (client, _) = portcullis::manage::create_client(
            &mut conn,
            &portcullis::manage::Ctx {
                clients: &portcullis::client::cache::ClientCache::new(false),
                master_key: &master,
            },
            &crate::helpers::fixture(),
            &new,
            true,
            now,
        )
        .unwrap();
        // The format before sealing was versioned: AES-256-GCM, AAD = client_id.
        let key = aws_lc_rs::aead::LessSafeKey::new(
            aws_lc_rs::aead::UnboundKey::new(
                &aws_lc_rs::aead::AES_256_GCM,
                &STANDARD.decode(TEST_MASTER_KEY).unwrap(),
            )
            .unwrap(),
        );
        let nonce = [9u8; 12];
        let mut data = hmac_value.as_bytes().to_vec();
        key.seal_in_place_append_tag(
            aws_lc_rs::aead::Nonce::assume_unique_for_key(nonce),
            aws_lc_rs::aead::Aad::from(client.client_id.as_bytes()),
            &mut data,
        )
        .unwrap();
        let legacy = URL_SAFE_NO_PAD.encode([nonce.as_slice(), &data].concat());
        portcullis::client::store::set_hmac_key(&mut conn, client.id, Some(&legacy)).unwrap();
        client.client_id
    };
    // A token signed with the old key before the upgrade.
    let claims = portcullis::token::AccessClaims::new(
        issuer,
        issuer,
        "someone".into(),
        client_id.clone(),
        vec![],
        now,
        3600,
    );
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.typ = Some("at+jwt".into());
    header.kid = Some("old-kid".into());
    let old_token = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_ec_der(&der),
    )
    .unwrap();

    let app = spawn_app_on(db, |s| s.issuer = Some(issuer.into()));
    let mut conn = app.pool.get().unwrap();
    let rows = signing_key_rows(&mut conn);
    assert_eq!(rows.len(), 1, "no new key: the old one is kept");
    let (kid, stored) = &rows[0];
    assert_eq!(kid, "old-kid");
    assert!(stored.starts_with("v1:"), "sealed at start: {stored}");
    assert_eq!(
        master
            .open(Aad::signing_key(kid), stored)
            .unwrap()
            .as_slice(),
        der
    );
    let stored_hmac = hmac_row(&mut conn, &client_id);
    assert!(stored_hmac.starts_with("v1:"), "re-sealed at start");
    drop(conn);
    // The JWKS still publishes the old key: tokens signed before verify, as a resource server
    // checks them and as the server does.
    let (h, _) = crate::token::verify_jwt(&app, &old_token).await;
    assert_eq!(h.kid.as_deref(), Some("old-kid"));
    assert!(
        app.state
            .keys
            .get()
            .verify(&old_token, issuer, issuer, app.state.clock.now())
            .is_some()
    );
    // The old client_secret_jwt key still authenticates its client.
    let resp = app
        .token_with_assertion(&hs256_assertion(hmac_value, &client_id, issuer))
        .await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    // A second start finds nothing left to seal and opens everything.
    let mut settings = Settings::for_tests(&app.db.url);
    settings.issuer = Some(issuer.into());
    let again = Application::build(settings)
        .map_err(|e| e.to_string())
        .unwrap();
    assert!(
        again
            .state()
            .keys
            .get()
            .verify(&old_token, issuer, issuer, app.state.clock.now())
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_databases_are_sealed_at_start_and_old_tokens_still_verify_sqlite() {
    old_databases_are_sealed_at_start_and_old_tokens_still_verify(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(portcullis_test_postgres),
    ignore = "PORTCULLIS_TEST_POSTGRES_URL is not set"
)]
async fn old_databases_are_sealed_at_start_and_old_tokens_still_verify_postgres() {
    old_databases_are_sealed_at_start_and_old_tokens_still_verify(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_creates_its_master_key_file_beside_the_database_with_mode_0600() {
    use std::os::unix::fs::PermissionsExt;
    let db = TestDb::new(Backend::Sqlite).unwrap();
    let db_path = db.sqlite_path.clone().unwrap();
    let key_path = std::path::PathBuf::from(format!("{}.key", db_path.display()));
    let url = db.url.clone();
    // `migrate` (like every command) creates it too, and says where the key is.
    let out = ok(&portcullis(&db).arg("migrate").output().unwrap());
    assert!(out.contains(&key_path.display().to_string()), "{out}");
    let app = spawn_app_on(db, |s| s.master_key = None);
    let mode = std::fs::metadata(&key_path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    let written = key_text(&key_path);
    let key = MasterKey::parse(&written).unwrap();
    let mut conn = app.pool.get().unwrap();
    let (kid, stored) = signing_key_rows(&mut conn).remove(0);
    assert!(
        key.open(Aad::signing_key(&kid), &stored).is_ok(),
        "sealed with the file's key"
    );
    drop(conn);
    let c = app.create_client("Keyed", &[]);
    assert_eq!(token_status(&app, &c.client_id, &c.secret).await, 200);
    // The next start reads the same file.
    let mut settings = Settings::for_tests(&url);
    settings.master_key = None;
    assert!(Application::build(settings.clone()).is_ok());
    assert_eq!(
        key_text(&key_path),
        written,
        "the key file is never replaced at start"
    );
    // Without the file, the sealed keys cannot be opened: refused, not replaced by a new key.
    std::fs::remove_file(&key_path).unwrap();
    let err = build_error(settings);
    assert!(
        err.contains("missing") && err.contains(&key_path.display().to_string()),
        "{err}"
    );
    assert!(!key_path.exists());
}

fn key_text(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(portcullis_test_postgres),
    ignore = "PORTCULLIS_TEST_POSTGRES_URL is not set"
)]
async fn postgres_without_a_master_key_refuses_to_start() {
    let db = TestDb::new(Backend::Postgres).expect(crate::helpers::NO_POSTGRES);
    let mut settings = Settings::for_tests(&db.url);
    settings.master_key = None;
    let err = build_error(settings);
    assert!(
        err.contains("PostgreSQL needs PORTCULLIS_MASTER_KEY or PORTCULLIS_MASTER_KEY_FILE: every instance must share it"),
        "{err}"
    );
    let out = portcullis(&db)
        .env_remove("PORTCULLIS_MASTER_KEY")
        .arg("migrate")
        .output()
        .unwrap();
    assert!(fails(&out).contains("PostgreSQL needs PORTCULLIS_MASTER_KEY"));
}

/// `portcullis master-key rotate`: everything re-sealed with the new key; afterwards only the
/// new key opens the database.
async fn master_key_rotation_reseals_everything_and_only_the_new_key_starts(backend: Backend) {
    let db = TestDb::new(backend).expect(crate::helpers::NO_POSTGRES);
    let created = ok(&portcullis(&db)
        .args([
            "client",
            "create",
            "--name",
            "HMAC",
            "--auth-method",
            "client_secret_jwt",
        ])
        .output()
        .unwrap());
    let hmac_secret = secret_from(&created);
    let client_id = created
        .lines()
        .find_map(|l| l.strip_prefix("client_id:"))
        .unwrap()
        .trim()
        .to_string();
    ok(&portcullis(&db)
        .args(["keys", "rotate", "--activate-in", "0"])
        .output()
        .unwrap());
    let url = portcullis::db::DbUrl::parse(&db.url).unwrap();
    let before: Vec<(String, String)> =
        signing_key_rows(&mut portcullis::db::connect(&url).unwrap());
    assert_eq!(before.len(), 2);
    let old_key_text = match &db.sqlite_path {
        Some(p) => key_text(&std::path::PathBuf::from(format!("{}.key", p.display()))),
        None => TEST_MASTER_KEY.to_string(),
    };

    let new_text = STANDARD.encode([0x17u8; 32]);
    let new_file = db.dir.path().join("new.key");
    std::fs::write(&new_file, format!("{new_text}\n")).unwrap();
    // A bad new key file changes nothing.
    let bad_file = db.dir.path().join("bad.key");
    std::fs::write(&bad_file, "short").unwrap();
    let out = portcullis(&db)
        .args(["master-key", "rotate", "--new-key-file"])
        .arg(&bad_file)
        .output()
        .unwrap();
    assert!(fails(&out).contains("bad.key"));
    let out = ok(&portcullis(&db)
        .args(["master-key", "rotate", "--new-key-file"])
        .arg(&new_file)
        .output()
        .unwrap());
    assert!(
        out.contains("Re-sealed 2 signing keys and 1 client_secret_jwt keys"),
        "{out}"
    );

    let new = MasterKey::parse(&new_text).unwrap();
    let mut conn = portcullis::db::connect(&url).unwrap();
    let after = signing_key_rows(&mut conn);
    for ((kid, old_row), (kid2, new_row)) in before.iter().zip(&after) {
        assert_eq!(kid, kid2);
        assert_ne!(old_row, new_row);
        assert_eq!(
            new.open(Aad::signing_key(kid), new_row).unwrap(),
            test_or_file_key(&old_key_text)
                .open(Aad::signing_key(kid), old_row)
                .unwrap()
        );
    }
    let hmac = hmac_row(&mut conn, &client_id);
    assert_eq!(
        new.open(Aad::client_hmac_key(&client_id), &hmac)
            .unwrap()
            .as_slice(),
        hmac_secret.as_bytes()
    );
    drop(conn);

    // The old key is refused; the new key starts.
    let out = portcullis(&db)
        .env("PORTCULLIS_MASTER_KEY", old_key_text.trim())
        .args(["keys", "list"])
        .output()
        .unwrap();
    assert!(fails(&out).contains("does not open"));
    match &db.sqlite_path {
        // The key file beside the database now holds the new key.
        Some(p) => {
            let beside = std::path::PathBuf::from(format!("{}.key", p.display()));
            assert_eq!(key_text(&beside).trim(), new_text);
            ok(&portcullis(&db).args(["keys", "list"]).output().unwrap());
        }
        None => {
            ok(&portcullis(&db)
                .env_remove("PORTCULLIS_MASTER_KEY")
                .env("PORTCULLIS_MASTER_KEY_FILE", &new_file)
                .args(["keys", "list"])
                .output()
                .unwrap());
        }
    }
    let app = spawn_app_on(db, |s| s.master_key = Some(new.clone()));
    let resp = app
        .token_with_assertion(&hs256_assertion(&hmac_secret, &client_id, &app.issuer))
        .await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
}

fn test_or_file_key(text: &str) -> MasterKey {
    MasterKey::parse(text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_key_rotation_reseals_everything_and_only_the_new_key_starts_sqlite() {
    master_key_rotation_reseals_everything_and_only_the_new_key_starts(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(portcullis_test_postgres),
    ignore = "PORTCULLIS_TEST_POSTGRES_URL is not set"
)]
async fn master_key_rotation_reseals_everything_and_only_the_new_key_starts_postgres() {
    master_key_rotation_reseals_everything_and_only_the_new_key_starts(Backend::Postgres).await;
}
