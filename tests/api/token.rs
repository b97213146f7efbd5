//! The token endpoint with the client_credentials grant (RFC 6749 4.4, 5; RFC 9068).

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{AuthType, ClientId, ClientSecret, RequestTokenError, Scope, TokenResponse, TokenUrl};
use portcullis::client::{GrantType, NewClient};

use crate::helpers::{GRANT_CC, TestApp, TestClient, assert_oauth_error};
use crate::on_both_backends;

/// Verifies an access token against the server's JWKS, as a resource server would.
pub async fn verify_jwt(app: &TestApp, token: &str) -> (jsonwebtoken::Header, serde_json::Value) {
    let jwks: JwkSet = app
        .http
        .get(format!("{}/oauth/jwks.json", app.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().expect("kid in the header"))
        .expect("kid is in the JWKS");
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_issuer(&[&app.issuer]);
    validation.set_audience(&[&app.issuer]);
    let data = jsonwebtoken::decode::<serde_json::Value>(
        token,
        &DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .expect("the token verifies against the JWKS");
    (header, data.claims)
}

fn oauth2_client(
    app: &TestApp,
    id: &str,
    secret: &str,
) -> oauth2::basic::BasicClient<
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
> {
    BasicClient::new(ClientId::new(id.into()))
        .set_client_secret(ClientSecret::new(secret.into()))
        .set_token_uri(TokenUrl::new(app.token_url()).unwrap())
}

on_both_backends!(basic_auth_gets_an_rfc_9068_jwt);
async fn basic_auth_gets_an_rfc_9068_jwt(app: TestApp) {
    let c = app.create_client("Billing", &["write", "read"]);
    let token = oauth2_client(&app, &c.client_id, &c.secret)
        .exchange_client_credentials()
        .add_scope(Scope::new("write".into()))
        .add_scope(Scope::new("read".into()))
        .request_async(&app.http)
        .await
        .expect("a token");
    assert_eq!(token.expires_in().unwrap().as_secs(), 3600);
    assert_eq!(*token.token_type(), oauth2::basic::BasicTokenType::Bearer);
    assert!(
        token.refresh_token().is_none(),
        "RFC 6749 4.4.3: no refresh token"
    );
    let (header, claims) = verify_jwt(&app, token.access_token().secret()).await;
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(header.alg, Algorithm::ES256);
    assert_eq!(claims["iss"], app.issuer);
    assert_eq!(claims["aud"], app.issuer);
    assert_eq!(claims["sub"], c.client_id);
    assert_eq!(claims["client_id"], c.client_id);
    assert_eq!(claims["scope"], "read write");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));
}

on_both_backends!(token_responses_are_not_cached_and_scope_is_sorted);
async fn token_responses_are_not_cached_and_scope_is_sorted(app: TestApp) {
    let c = app.create_client("Sorted", &["c", "a", "b"]);
    let resp = app.token_basic(&c.client_id, &c.secret, &[GRANT_CC]).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert_eq!(resp.headers()["pragma"], "no-cache");
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: serde_json::Value = resp.json().await.unwrap();
    // No scope requested: the client's default, i.e. all its scopes (RFC 6749 3.3).
    assert_eq!(body["scope"], "a b c");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    // Two tokens in the same second still differ (jti).
    let again: serde_json::Value = app
        .token_basic(&c.client_id, &c.secret, &[GRANT_CC])
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(body["access_token"], again["access_token"]);
}

on_both_backends!(client_secret_post_works);
async fn client_secret_post_works(app: TestApp) {
    let c = app.create_client("Poster", &["read"]);
    let token = oauth2_client(&app, &c.client_id, &c.secret)
        .set_auth_type(AuthType::RequestBody)
        .exchange_client_credentials()
        .request_async(&app.http)
        .await
        .expect("a token with client_secret_post");
    let (_, claims) = verify_jwt(&app, token.access_token().secret()).await;
    assert_eq!(claims["client_id"], c.client_id);
}

on_both_backends!(basic_and_post_together_is_invalid_request);
async fn basic_and_post_together_is_invalid_request(app: TestApp) {
    let c = app.create_client("Both", &[]);
    let resp = app
        .http
        .post(app.token_url())
        .basic_auth(&c.client_id, Some(&c.secret))
        .form(&[
            GRANT_CC,
            ("client_id", &c.client_id),
            ("client_secret", &c.secret),
        ])
        .send()
        .await
        .unwrap();
    assert_oauth_error(resp, 400, "invalid_request").await;
}

on_both_backends!(refused_clients_get_invalid_client);
async fn refused_clients_get_invalid_client(app: TestApp) {
    let c = app.create_client("Refused", &[]);
    let now = portcullis::clock::Clock::system().now();
    let (_, expired) = app.add_secret(&c.client_id, None, Some(now - 1));
    let (deleted_id, deleted) = app.add_secret(&c.client_id, None, None);
    app.delete_secret(deleted_id);
    let cases = [
        ("wrong secret", c.client_id.as_str(), "not-the-secret"),
        ("expired secret", c.client_id.as_str(), expired.as_str()),
        ("deleted secret", c.client_id.as_str(), deleted.as_str()),
        ("unknown client", "no-such-client", c.secret.as_str()),
    ];
    for (case, id, secret) in cases {
        let resp = app.token_basic(id, secret, &[GRANT_CC]).await;
        assert_eq!(
            resp.headers()
                .get("www-authenticate")
                .map(|h| h.to_str().unwrap()),
            Some("Basic realm=\"portcullis\""),
            "{case}"
        );
        // One description for every failure: an expired or deleted secret is not confirmed.
        let body = assert_oauth_error(resp, 401, "invalid_client").await;
        assert_eq!(
            body["error_description"],
            crate::helpers::GENERIC_REFUSAL,
            "{case}"
        );
        // client_secret_post: 401 too, without a Basic challenge.
        let resp = app.token_post(id, secret, &[GRANT_CC]).await;
        assert!(resp.headers().get("www-authenticate").is_none(), "{case}");
        assert_oauth_error(resp, 401, "invalid_client").await;
    }
    // The valid secret still works, until the client is disabled.
    assert_eq!(
        app.token_basic(&c.client_id, &c.secret, &[GRANT_CC])
            .await
            .status(),
        200
    );
    app.set_enabled(&c.client_id, false);
    let body = assert_oauth_error(
        app.token_basic(&c.client_id, &c.secret, &[GRANT_CC]).await,
        401,
        "invalid_client",
    )
    .await;
    assert_eq!(body["error_description"], crate::helpers::GENERIC_REFUSAL);
    app.set_enabled(&c.client_id, true);
    assert_eq!(
        app.token_basic(&c.client_id, &c.secret, &[GRANT_CC])
            .await
            .status(),
        200
    );
}

on_both_backends!(oauth2_crate_sees_invalid_client);
async fn oauth2_crate_sees_invalid_client(app: TestApp) {
    let c = app.create_client("Crate", &[]);
    let err = oauth2_client(&app, &c.client_id, "wrong")
        .exchange_client_credentials()
        .request_async(&app.http)
        .await
        .unwrap_err();
    match err {
        RequestTokenError::ServerResponse(e) => {
            assert_eq!(*e.error(), BasicErrorResponseType::InvalidClient)
        }
        other => panic!("expected an RFC 6749 error response, got {other:?}"),
    }
}

on_both_backends!(two_secrets_work_at_once_for_rotation);
async fn two_secrets_work_at_once_for_rotation(app: TestApp) {
    let c = app.create_client("Rotating", &[]);
    let (second_id, second) = app.add_secret(
        &c.client_id,
        None,
        Some(portcullis::clock::Clock::system().now() + 86_400),
    );
    assert_eq!(
        app.token_basic(&c.client_id, &c.secret, &[GRANT_CC])
            .await
            .status(),
        200
    );
    assert_eq!(
        app.token_basic(&c.client_id, &second, &[GRANT_CC])
            .await
            .status(),
        200
    );
    app.delete_secret(c.secret_id);
    assert_eq!(
        app.token_basic(&c.client_id, &c.secret, &[GRANT_CC])
            .await
            .status(),
        401
    );
    assert_eq!(
        app.token_basic(&c.client_id, &second, &[GRANT_CC])
            .await
            .status(),
        200
    );
    app.delete_secret(second_id);
    assert_eq!(
        app.token_basic(&c.client_id, &second, &[GRANT_CC])
            .await
            .status(),
        401
    );
}

on_both_backends!(admin_chosen_secret_is_form_urldecoded_and_remembered);
async fn admin_chosen_secret_is_form_urldecoded_and_remembered(app: TestApp) {
    let c = app.create_client("Chosen", &[]);
    // Characters that RFC 6749 2.3.1 form-urlencoding changes: the oauth2 crate encodes them.
    let value = "p@ss+word/with:colon&more=16";
    app.add_secret(&c.client_id, Some(value), None);
    for _ in 0..2 {
        let token = oauth2_client(&app, &c.client_id, value)
            .exchange_client_credentials()
            .request_async(&app.http)
            .await
            .expect("the argon2 secret works, the second time from the verified cache");
        verify_jwt(&app, token.access_token().secret()).await;
    }
    // Sent raw (not form-encoded) by a plain HTTP client, '+' decodes to a space: refused.
    assert_eq!(
        app.token_basic(&c.client_id, value, &[GRANT_CC])
            .await
            .status(),
        401
    );
}

on_both_backends!(scopes_are_checked_against_the_client);
async fn scopes_are_checked_against_the_client(app: TestApp) {
    let c = app.create_client("Scoped", &["read", "write"]);
    let narrowed: serde_json::Value = app
        .token_basic(&c.client_id, &c.secret, &[GRANT_CC, ("scope", "read")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(narrowed["scope"], "read");
    let (_, claims) = verify_jwt(&app, narrowed["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["scope"], "read");
    let body = assert_oauth_error(
        app.token_basic(
            &c.client_id,
            &c.secret,
            &[GRANT_CC, ("scope", "read admin")],
        )
        .await,
        400,
        "invalid_scope",
    )
    .await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("admin")
    );
    assert_oauth_error(
        app.token_basic(
            &c.client_id,
            &c.secret,
            &[GRANT_CC, ("scope", "bad\\scope")],
        )
        .await,
        400,
        "invalid_scope",
    )
    .await;
}

on_both_backends!(bad_requests_get_the_right_400);
async fn bad_requests_get_the_right_400(app: TestApp) {
    let c = app.create_client("Bad", &[]);
    let send = |body: Vec<u8>, content_type: &'static str| {
        app.http
            .post(app.token_url())
            .basic_auth(&c.client_id, Some(&c.secret))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let form = "application/x-www-form-urlencoded";
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        ("empty body", vec![], form, "invalid_request"),
        (
            "JSON body",
            br#"{"grant_type":"client_credentials"}"#.to_vec(),
            "application/json",
            "invalid_request",
        ),
        (
            "1 MiB body",
            format!("grant_type=client_credentials&x={}", "a".repeat(1 << 20)).into_bytes(),
            form,
            "invalid_request",
        ),
        (
            "repeated grant_type",
            b"grant_type=client_credentials&grant_type=client_credentials".to_vec(),
            form,
            "invalid_request",
        ),
        (
            "unknown grant",
            b"grant_type=urn:example:magic".to_vec(),
            form,
            "unsupported_grant_type",
        ),
        (
            "password grant",
            b"grant_type=password&username=a&password=b".to_vec(),
            form,
            "unsupported_grant_type",
        ),
    ];
    for (case, body, ct, error) in cases {
        let resp = send(body, ct)
            .await
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(resp.status(), 400, "{case}");
        let json: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(json["error"], error, "{case}: {json}");
    }
    let get = app.http.get(app.token_url()).send().await.unwrap();
    assert_eq!(get.status(), 405);
    assert_eq!(get.headers()["allow"], "POST");
}

on_both_backends!(missing_or_partial_client_authentication_is_invalid_client);
async fn missing_or_partial_client_authentication_is_invalid_client(app: TestApp) {
    let c = app.create_client("Anon", &[]);
    let none = app
        .http
        .post(app.token_url())
        .form(&[GRANT_CC])
        .send()
        .await
        .unwrap();
    assert_oauth_error(none, 401, "invalid_client").await;
    let id_only = app
        .http
        .post(app.token_url())
        .form(&[GRANT_CC, ("client_id", c.client_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_oauth_error(id_only, 401, "invalid_client").await;
    let bearer = app
        .http
        .post(app.token_url())
        .bearer_auth("abc")
        .form(&[GRANT_CC])
        .send()
        .await
        .unwrap();
    assert_oauth_error(bearer, 401, "invalid_client").await;
}

on_both_backends!(public_and_unauthorized_clients_are_refused);
async fn public_and_unauthorized_clients_are_refused(app: TestApp) {
    let public = app.create_client_with(NewClient {
        name: "Native app".into(),
        public: true,
        redirect_uris: vec!["http://127.0.0.1/cb".into()],
        ..Default::default()
    });
    assert!(public.secret.is_empty(), "public clients get no secret");
    let resp = app
        .http
        .post(app.token_url())
        .form(&[GRANT_CC, ("client_id", public.client_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_oauth_error(resp, 401, "invalid_client").await;
    assert_oauth_error(
        app.token_basic(&public.client_id, "anything", &[GRANT_CC])
            .await,
        401,
        "invalid_client",
    )
    .await;

    let web_only = app.create_client_with(NewClient {
        name: "Web app".into(),
        grant_types: vec![GrantType::AuthorizationCode],
        redirect_uris: vec!["https://app.example/cb".into()],
        ..Default::default()
    });
    // RFC 6749 5.2: authenticated, but not allowed this grant type.
    assert_oauth_error(
        app.token_basic(&web_only.client_id, &web_only.secret, &[GRANT_CC])
            .await,
        400,
        "unauthorized_client",
    )
    .await;
}

on_both_backends!(last_use_is_recorded_in_batches);
async fn last_use_is_recorded_in_batches(app: TestApp) {
    let c = app.create_client("Used", &[]);
    let client_pk = {
        let mut conn = app.pool.get().unwrap();
        portcullis::client::store::find(&mut conn, &c.client_id)
            .unwrap()
            .unwrap()
            .id
    };
    let last_used = || {
        let mut conn = app.pool.get().unwrap();
        portcullis::secret::store::list(&mut conn, client_pk).unwrap()[0].last_used_at
    };
    assert_eq!(last_used(), None);
    assert_eq!(
        app.token_basic(&c.client_id, &c.secret, &[GRANT_CC])
            .await
            .status(),
        200
    );
    // The test server flushes every second.
    let mut seen = None;
    for _ in 0..40 {
        seen = last_used();
        if seen.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let at = seen.expect("last use written by the batch flush");
    assert!((at - portcullis::clock::Clock::system().now()).abs() < 10);
    let mut conn = app.pool.get().unwrap();
    let client = portcullis::client::store::find(&mut conn, &c.client_id)
        .unwrap()
        .unwrap();
    assert!(client.last_used_at.is_some());
}

// The batched flush writes tens of thousands of last-used times and counts in statements of
// 5,000 rows (issue 13): a batch that spans several statements reaches every row of every one,
// on both backends (each has its own limit on bound values), and counts for clients that do
// not exist (deleted since) are dropped, not an error.
on_both_backends!(a_flush_of_many_clients_reaches_every_chunk);
async fn a_flush_of_many_clients_reaches_every_chunk(app: TestApp) {
    use portcullis::ids::{ClientKey, SecretId};
    let clients: Vec<TestClient> = (0..3)
        .map(|i| app.create_client(&format!("Batched {i}"), &[]))
        .collect();
    let mut conn = app.pool.get().unwrap();
    let pks: Vec<ClientKey> = clients
        .iter()
        .map(|c| {
            portcullis::client::store::find(&mut conn, &c.client_id)
                .unwrap()
                .unwrap()
                .id
        })
        .collect();
    // 12,000 rows: the real clients first, in the middle of the second chunk and last; the
    // rest name no client (ids far above any created here).
    let at = 1_800_000_000;
    let mut uses: Vec<(ClientKey, i64)> = (0..12_000)
        .map(|i| (ClientKey(10_000_000 + i), at))
        .collect();
    uses[0] = (pks[0], at);
    uses[7_500] = (pks[1], at + 1);
    uses[11_999] = (pks[2], at + 2);
    portcullis::client::store::record_last_used(&mut conn, &uses).unwrap();
    let counts: Vec<(ClientKey, i64, i64)> = uses
        .iter()
        .enumerate()
        .map(|(i, (pk, _))| (*pk, 20_000, i as i64 + 1))
        .collect();
    portcullis::client::store::add_token_counts(&mut conn, &counts).unwrap();
    // Twice: the second adds to the rows the first inserted.
    portcullis::client::store::add_token_counts(&mut conn, &counts).unwrap();
    let secret_uses: Vec<(SecretId, i64)> = clients
        .iter()
        .map(|c| (SecretId(c.secret_id), at + 3))
        .chain((0..11_000).map(|i| (SecretId(20_000_000 + i), at)))
        .collect();
    portcullis::secret::store::record_last_used(&mut conn, &secret_uses).unwrap();

    for (i, (c, pk)) in clients.iter().zip(&pks).enumerate() {
        let found = portcullis::client::store::find(&mut conn, &c.client_id)
            .unwrap()
            .unwrap();
        assert_eq!(found.last_used_at, Some(at + i as i64), "client {i}");
        let position = [0, 7_500, 11_999][i];
        assert_eq!(
            portcullis::client::store::token_total(&mut conn, *pk).unwrap(),
            2 * (position + 1),
            "token count of client {i}"
        );
        let secrets = portcullis::secret::store::list(&mut conn, *pk).unwrap();
        assert_eq!(
            secrets[0].last_used_at,
            Some(at + 3),
            "secret of client {i}"
        );
    }
}
