//! private_key_jwt client authentication (RFC 7523 2.2, 3) and per-client methods (RFC 7591 2).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use portcullis::client::{AuthMethod, NewClient};

use crate::helpers::*;
use crate::{on_both_backends, on_both_backends_with};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A client's EC P-256 key pair: the private half signs assertions, the JWKS is registered.
pub(crate) struct ClientKey {
    encoding: EncodingKey,
    jwks: String,
    kid: String,
}

pub(crate) fn client_key(kid: &str) -> ClientKey {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let point = pair.public_key().as_ref().to_vec(); // 0x04 || x || y
    let jwks = serde_json::json!({"keys": [{
        "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
    }]})
    .to_string();
    let der = pair.to_pkcs8v1().unwrap();
    ClientKey {
        encoding: EncodingKey::from_ec_der(der.as_ref()),
        jwks,
        kid: kid.into(),
    }
}

fn assertion(key: &ClientKey, client_id: &str, aud: &str, lifetime: i64) -> String {
    let now = portcullis::clock::Clock::system().now();
    signed(
        key,
        serde_json::json!({
            "iss": client_id, "sub": client_id, "aud": aud,
            "iat": now, "exp": now + lifetime, "jti": portcullis::crypto::unique_id(),
        }),
    )
}

pub(crate) fn signed(key: &ClientKey, claims: serde_json::Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, &claims, &key.encoding).unwrap()
}

impl TestApp {
    pub(crate) fn jwt_client(&self, name: &str, key: &ClientKey) -> TestClient {
        self.create_client_with(NewClient {
            name: name.into(),
            auth_method: Some(AuthMethod::PrivateKeyJwt),
            jwks: Some(key.jwks.clone()),
            ..Default::default()
        })
    }

    pub(crate) async fn token_with_assertion(&self, assertion: &str) -> reqwest::Response {
        self.http
            .post(self.token_url())
            .form(&[
                GRANT_CC,
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", assertion),
            ])
            .send()
            .await
            .unwrap()
    }
}

on_both_backends!(private_key_jwt_gets_tokens_once_per_assertion);
async fn private_key_jwt_gets_tokens_once_per_assertion(app: TestApp) {
    let key = client_key("k1");
    let c = app.jwt_client("Signed requests", &key);
    let a = assertion(&key, &c.client_id, &app.issuer, 60);
    let resp = app.token_with_assertion(&a).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let t: serde_json::Value = resp.json().await.unwrap();
    let (_, claims) = crate::token::verify_jwt(&app, t["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["client_id"], c.client_id.as_str());
    // The same assertion again: a replay (RFC 7523 3, jti).
    let body = assert_oauth_error(app.token_with_assertion(&a).await, 401, "invalid_client").await;
    assert_eq!(body["error_description"], GENERIC_REFUSAL, "{body}");
}

on_both_backends!(an_assertion_within_the_leeway_after_exp_is_accepted_at_most_once);
async fn an_assertion_within_the_leeway_after_exp_is_accepted_at_most_once(app: TestApp) {
    let key = client_key("k1");
    let c = app.jwt_client("Late", &key);
    // exp 2 s ago: still inside the clock-skew leeway, so accepted once, and its jti is
    // kept until exp + leeway, so never again.
    let a = assertion(&key, &c.client_id, &app.issuer, -2);
    let resp = app.token_with_assertion(&a).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    // Another assertion makes the server purge what has expired.
    assert_eq!(
        app.token_with_assertion(&assertion(&key, &c.client_id, &app.issuer, 60))
            .await
            .status(),
        200
    );
    for _ in 0..3 {
        assert_oauth_error(app.token_with_assertion(&a).await, 401, "invalid_client").await;
    }
}

on_both_backends!(an_assertion_before_its_nbf_or_issued_in_the_future_is_refused);
async fn an_assertion_before_its_nbf_or_issued_in_the_future_is_refused(app: TestApp) {
    let key = client_key("k1");
    let c = app.jwt_client("Early", &key);
    let now = portcullis::clock::Clock::system().now();
    let claims = |nbf: Option<i64>, iat: i64| {
        let mut v = serde_json::json!({
            "iss": c.client_id, "sub": c.client_id, "aud": app.issuer,
            "iat": iat, "exp": now + 120, "jti": portcullis::crypto::unique_id(),
        });
        if let Some(nbf) = nbf {
            v["nbf"] = nbf.into();
        }
        signed(&key, v)
    };
    let early = claims(Some(now + 60), now);
    assert_oauth_error(
        app.token_with_assertion(&early).await,
        401,
        "invalid_client",
    )
    .await;
    let future = claims(None, now + 60);
    assert_oauth_error(
        app.token_with_assertion(&future).await,
        401,
        "invalid_client",
    )
    .await;
    // Within the leeway, and in the past, both are fine.
    assert_eq!(
        app.token_with_assertion(&claims(Some(now - 10), now + 2))
            .await
            .status(),
        200
    );
}

on_both_backends!(an_assertion_for_the_token_endpoint_url_is_refused_by_default);
async fn an_assertion_for_the_token_endpoint_url_is_refused_by_default(app: TestApp) {
    let key = client_key("k1");
    let c = app.jwt_client("Audience", &key);
    for url in [
        app.token_url(),
        format!("{}/oauth/introspect", app.issuer),
        format!("{}/oauth/revoke", app.issuer),
    ] {
        assert_oauth_error(
            app.token_with_assertion(&assertion(&key, &c.client_id, &url, 60))
                .await,
            401,
            "invalid_client",
        )
        .await;
    }
    assert_eq!(
        app.token_with_assertion(&assertion(&key, &c.client_id, &app.issuer, 60))
            .await
            .status(),
        200
    );
}

on_both_backends!(bad_assertions_are_invalid_client);
async fn bad_assertions_are_invalid_client(app: TestApp) {
    let key = client_key("k1");
    let c = app.jwt_client("Strict", &key);
    let stranger = client_key("k1");
    let cases = [
        (
            "another key",
            assertion(&stranger, &c.client_id, &app.issuer, 60),
        ),
        (
            "wrong audience",
            assertion(&key, &c.client_id, "https://elsewhere.example/token", 60),
        ),
        ("expired", assertion(&key, &c.client_id, &app.issuer, -60)),
        (
            "lives too long",
            assertion(&key, &c.client_id, &app.issuer, 3600),
        ),
        (
            "unknown client",
            assertion(&key, "no-such-client", &app.issuer, 60),
        ),
    ];
    for (case, a) in cases {
        let resp = app.token_with_assertion(&a).await;
        assert_eq!(resp.status(), 401, "{case}");
        assert_oauth_error(resp, 401, "invalid_client").await;
    }
    let resp = app
        .http
        .post(app.token_url())
        .form(&[
            GRANT_CC,
            ("client_assertion_type", "urn:example:other"),
            ("client_assertion", "x.y.z"),
        ])
        .send()
        .await
        .unwrap();
    assert_oauth_error(resp, 400, "invalid_request").await;
    // A client registered for private_key_jwt cannot use a secret instead.
    let body = assert_oauth_error(
        app.token_basic(&c.client_id, &c.secret, &[GRANT_CC]).await,
        401,
        "invalid_client",
    )
    .await;
    assert_eq!(body["error_description"], GENERIC_REFUSAL, "{body}");
}

on_both_backends!(a_client_uses_only_its_registered_method);
async fn a_client_uses_only_its_registered_method(app: TestApp) {
    let basic_only = app.create_client_with(NewClient {
        name: "Basic only".into(),
        auth_method: Some(AuthMethod::ClientSecretBasic),
        ..Default::default()
    });
    assert_eq!(
        app.token_basic(&basic_only.client_id, &basic_only.secret, &[GRANT_CC])
            .await
            .status(),
        200
    );
    let body = assert_oauth_error(
        app.token_post(&basic_only.client_id, &basic_only.secret, &[GRANT_CC])
            .await,
        401,
        "invalid_client",
    )
    .await;
    assert_eq!(body["error_description"], GENERIC_REFUSAL, "{body}");
    // Without a registered method, both secret methods work (the default).
    let either = app.create_client("Either", &[]);
    assert_eq!(
        app.token_basic(&either.client_id, &either.secret, &[GRANT_CC])
            .await
            .status(),
        200
    );
    assert_eq!(
        app.token_post(&either.client_id, &either.secret, &[GRANT_CC])
            .await
            .status(),
        200
    );
    // A key-less client cannot use an assertion.
    let key = client_key("k1");
    assert_eq!(
        app.token_with_assertion(&assertion(&key, &either.client_id, &app.issuer, 60))
            .await
            .status(),
        401
    );
}

on_both_backends!(introspection_accepts_an_assertion);
async fn introspection_accepts_an_assertion(app: TestApp) {
    let key = client_key("k1");
    let c = app.jwt_client("Introspecting", &key);
    let t: serde_json::Value = app
        .token_with_assertion(&assertion(&key, &c.client_id, &app.issuer, 60))
        .await
        .json()
        .await
        .unwrap();
    let resp = app
        .http
        .post(format!("{}/oauth/introspect", app.address))
        .form(&[
            ("token", t["access_token"].as_str().unwrap()),
            ("client_assertion_type", JWT_BEARER),
            (
                "client_assertion",
                &assertion(&key, &c.client_id, &app.issuer, 60),
            ),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["active"],
        true
    );
}

on_both_backends_with!(
    an_assertion_for_the_token_endpoint_url_is_accepted_with_the_setting,
    |s: &mut portcullis::config::Settings| s.assertion_accept_endpoint_audience = true
);
async fn an_assertion_for_the_token_endpoint_url_is_accepted_with_the_setting(app: TestApp) {
    let key = client_key("k1");
    let c = app.jwt_client("Audience", &key);
    for aud in [
        app.token_url(),
        format!("{}/oauth/introspect", app.issuer),
        format!("{}/oauth/revoke", app.issuer),
        app.issuer.clone(),
    ] {
        let resp = app
            .token_with_assertion(&assertion(&key, &c.client_id, &aud, 60))
            .await;
        assert_eq!(resp.status(), 200, "{aud}: {}", resp.text().await.unwrap());
    }
    assert_oauth_error(
        app.token_with_assertion(&assertion(
            &key,
            &c.client_id,
            "https://elsewhere.example/token",
            60,
        ))
        .await,
        401,
        "invalid_client",
    )
    .await;
}

#[test]
fn registered_keys_must_be_usable() {
    assert!(
        NewClient {
            name: "x".into(),
            auth_method: Some(AuthMethod::PrivateKeyJwt),
            ..Default::default()
        }
        .validate()
        .is_err()
    );
    assert!(
        NewClient {
            name: "x".into(),
            jwks: Some("{\"keys\": [{\"kty\": \"oct\", \"k\": \"AA\"}]}".into()),
            ..Default::default()
        }
        .validate()
        .is_err()
    );
    assert!(
        NewClient {
            name: "x".into(),
            jwks: Some("not a key".into()),
            ..Default::default()
        }
        .validate()
        .is_err()
    );
    assert!(
        NewClient {
            name: "x".into(),
            jwks: Some(client_key("a").jwks),
            auth_method: Some(AuthMethod::PrivateKeyJwt),
            ..Default::default()
        }
        .validate()
        .is_ok()
    );
}

pub(crate) fn hs256_assertion(secret: &str, client_id: &str, aud: &str) -> String {
    let now = portcullis::clock::Clock::system().now();
    let claims = serde_json::json!({
        "iss": client_id, "sub": client_id, "aud": aud,
        "iat": now, "exp": now + 60, "jti": portcullis::crypto::unique_id(),
    });
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

async fn metadata(app: &TestApp) -> serde_json::Value {
    app.http
        .get(format!(
            "{}/.well-known/oauth-authorization-server",
            app.address
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_secret_jwt_is_offered_and_keeps_the_key_sealed() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let m = metadata(&app).await;
    assert!(
        m["token_endpoint_auth_methods_supported"]
            .to_string()
            .contains("client_secret_jwt"),
        "{m}"
    );
    assert!(
        m["token_endpoint_auth_signing_alg_values_supported"]
            .to_string()
            .contains("HS256"),
        "{m}"
    );
    let c = app.create_client_with(NewClient {
        name: "HMAC".into(),
        auth_method: Some(AuthMethod::ClientSecretJwt),
        ..Default::default()
    });
    assert!(!c.secret.is_empty(), "the shared key is shown once");
    let a = hs256_assertion(&c.secret, &c.client_id, &app.issuer);
    let resp = app.token_with_assertion(&a).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    assert_oauth_error(app.token_with_assertion(&a).await, 401, "invalid_client").await;
    assert_oauth_error(
        app.token_with_assertion(&hs256_assertion(
            "not-the-key-not-the-key-not-the-key",
            &c.client_id,
            &app.issuer,
        ))
        .await,
        401,
        "invalid_client",
    )
    .await;
    // The stored key is encrypted: the value is not in the database file.
    let bytes = std::fs::read(app.db.sqlite_path.as_ref().unwrap()).unwrap();
    let wal = std::fs::read(
        app.db
            .sqlite_path
            .as_ref()
            .unwrap()
            .with_extension("db-wal"),
    )
    .unwrap_or_default();
    for b in [bytes, wal] {
        assert!(
            !b.windows(c.secret.len()).any(|w| w == c.secret.as_bytes()),
            "plaintext HMAC key stored"
        );
    }
    let stored = portcullis::client::store::find(&mut app.pool.get().unwrap(), &c.client_id)
        .unwrap()
        .unwrap()
        .hmac_key_sealed
        .unwrap();
    assert!(stored.starts_with("v1:"), "sealed in the versioned format");
    // An HS256 assertion cannot pass for a private_key_jwt client (no algorithm confusion).
    let key = client_key("k1");
    let pk = app.jwt_client("Keyed", &key);
    assert_oauth_error(
        app.token_with_assertion(&hs256_assertion(&key.jwks, &pk.client_id, &app.issuer))
            .await,
        401,
        "invalid_client",
    )
    .await;
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rsa_pem_key_verifies_rs256_assertions() {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::{KeyPair, KeySize};
    use aws_lc_rs::signature::KeyPair as _;
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
    let private_pem = pem("PRIVATE KEY", AsDer::as_der(&pair).unwrap().as_ref());
    let public_pem = pem("PUBLIC KEY", pair.public_key().as_der().unwrap().as_ref());
    let c = app.create_client_with(NewClient {
        name: "RSA".into(),
        auth_method: Some(AuthMethod::PrivateKeyJwt),
        jwks: Some(public_pem),
        ..Default::default()
    });
    let now = portcullis::clock::Clock::system().now();
    let claims = serde_json::json!({
        "iss": c.client_id, "sub": c.client_id, "aud": app.issuer,
        "iat": now, "exp": now + 60, "jti": portcullis::crypto::unique_id(),
    });
    let a = jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &claims,
        &EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap(),
    )
    .unwrap();
    let resp = app.token_with_assertion(&a).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
}
