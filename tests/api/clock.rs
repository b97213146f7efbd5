//! Clock steps (issue 11 item 5): every expiry the server decides reads the clock in its state
//! (`portcullis::clock::Clock`), which these tests set by hand and step, forwards and back.
//! Each rule is checked one second before, exactly at, and one second after its boundary.

use portcullis::client::assertion::LEEWAY;
use portcullis::clock::Clock;
use portcullis::config::Settings;

use crate::authorize::{CB, code_for, tokens};
use crate::helpers::*;
use crate::jwt_auth::{client_key, signed};
use crate::on_both_backends_with;

const ACCESS_TTL: i64 = 600;
const REFRESH_TTL: i64 = 3600;

/// A manual clock, standing at the system's time when the server starts.
fn manual(s: &mut Settings) {
    s.clock = Clock::manual(Clock::system().now());
    s.access_token_ttl = ACCESS_TTL;
    s.refresh_token_ttl = REFRESH_TTL;
}

/// The `exp` claim of a JWT (read without verifying: the server verifies).
fn jwt_exp(token: &str) -> i64 {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    claims["exp"].as_i64().unwrap()
}

// RFC 7519 4.1.4, RFC 7662 2.2: a token is active strictly before its exp.
on_both_backends_with!(
    an_access_token_is_active_until_its_exp_and_not_at_it,
    manual
);
async fn an_access_token_is_active_until_its_exp_and_not_at_it(app: TestApp) {
    let clock = app.state.clock.clone();
    let t0 = clock.now();
    let svc = app.create_client("svc", &["reports:read"]);
    app.await_client_cache();
    let issued: serde_json::Value = app
        .token_basic(&svc.client_id, &svc.secret, &[GRANT_CC])
        .await
        .json()
        .await
        .unwrap();
    let token = issued["access_token"].as_str().unwrap().to_string();
    assert_eq!(issued["expires_in"], ACCESS_TTL);
    let exp = t0 + ACCESS_TTL;
    assert_eq!(jwt_exp(&token), exp);
    // The admin API (a resource server) checks the same rule for its own tokens.
    let api_token = app.api_token("ops", "portcullis:read").await;
    let api_exp = jwt_exp(&api_token);
    let api = |t: &str| {
        app.http
            .get(format!("{}/admin/api/v1/clients", app.address))
            .bearer_auth(t.to_string())
            .send()
    };

    clock.set(exp - 1);
    let seen = app.introspect(&svc, &token).await;
    assert_eq!(seen["active"], true, "{seen}");
    assert_eq!(seen["exp"], exp);
    clock.set(exp);
    assert_eq!(app.introspect(&svc, &token).await["active"], false);
    clock.set(exp + 1);
    assert_eq!(app.introspect(&svc, &token).await["active"], false);
    // Stepped back: a token carries its own exp, so it is active again until then.
    clock.set(exp - 1);
    assert_eq!(app.introspect(&svc, &token).await["active"], true);

    clock.set(api_exp - 1);
    assert_eq!(api(&api_token).await.unwrap().status(), 200);
    clock.set(api_exp);
    assert_eq!(api(&api_token).await.unwrap().status(), 401);
    clock.set(api_exp + 1);
    assert_eq!(api(&api_token).await.unwrap().status(), 401);
}

// RFC 6749 4.1.2: codes live 60 s; one redeemed at its expiry is refused.
on_both_backends_with!(
    a_code_is_redeemable_until_one_second_before_it_expires,
    manual
);
async fn a_code_is_redeemable_until_one_second_before_it_expires(app: TestApp) {
    let clock = app.state.clock.clone();
    let web = app.web_app("web", &["invoices:read"]);
    let browser = app.signed_in("alice").await;
    for (after, redeemable) in [(59, true), (60, false), (61, false)] {
        let issued_at = clock.now();
        let (code, verifier) = code_for(&app, &browser, &web, "invoices:read").await;
        clock.set(issued_at + after);
        let resp = app
            .exchange(
                &web,
                &[
                    ("code", &code),
                    ("redirect_uri", CB),
                    ("code_verifier", &verifier),
                ],
            )
            .await;
        if redeemable {
            let t = tokens(resp).await;
            assert_eq!(
                jwt_exp(t["access_token"].as_str().unwrap()),
                issued_at + after + ACCESS_TTL
            );
        } else {
            let body = assert_oauth_error(resp, 400, "invalid_grant").await;
            assert!(
                body["error_description"]
                    .as_str()
                    .unwrap()
                    .contains("expired"),
                "{after} s: {body}"
            );
        }
    }
}

// RFC 6749 6: a refresh token works until its expiry; the one it is rotated into gets a
// lifetime of its own from the time of the rotation.
on_both_backends_with!(
    a_refresh_token_works_until_one_second_before_it_expires,
    manual
);
async fn a_refresh_token_works_until_one_second_before_it_expires(app: TestApp) {
    let clock = app.state.clock.clone();
    let web = app.web_app("web", &["invoices:read"]);
    let browser = app.signed_in("alice").await;
    let t0 = clock.now();
    let (code, verifier) = code_for(&app, &browser, &web, "invoices:read").await;
    let first = tokens(
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
    .await["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(app.introspect(&web, &first).await["exp"], t0 + REFRESH_TTL);

    clock.set(t0 + REFRESH_TTL - 1);
    let second = tokens(app.refresh(&web, &first, None).await).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    let second_exp = t0 + REFRESH_TTL - 1 + REFRESH_TTL;
    assert_eq!(app.introspect(&web, &second).await["exp"], second_exp);

    clock.set(second_exp - 1);
    assert_eq!(app.introspect(&web, &second).await["active"], true);
    clock.set(second_exp);
    assert_eq!(app.introspect(&web, &second).await["active"], false);
    let body =
        assert_oauth_error(app.refresh(&web, &second, None).await, 400, "invalid_grant").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{body}"
    );
    clock.set(second_exp + 1);
    assert_oauth_error(app.refresh(&web, &second, None).await, 400, "invalid_grant").await;
    // An expired token presented is refused, not taken for a replay: stepped back, it
    // works again (nothing was revoked).
    clock.set(second_exp - 1);
    assert_eq!(app.refresh(&web, &second, None).await.status(), 200);
}

// A secret with an expiry stops working at that second (rotation with an overlap).
on_both_backends_with!(a_secret_works_until_one_second_before_its_expiry, manual);
async fn a_secret_works_until_one_second_before_its_expiry(app: TestApp) {
    let clock = app.state.clock.clone();
    let t0 = clock.now();
    let svc = app.create_client("svc", &["reports:read"]);
    let (_, expiring) = app.add_secret(&svc.client_id, None, Some(t0 + 100));
    clock.set(t0 + 99);
    assert_eq!(token_status(&app, &svc.client_id, &expiring).await, 200);
    clock.set(t0 + 100);
    assert_eq!(token_status(&app, &svc.client_id, &expiring).await, 401);
    clock.set(t0 + 101);
    assert_eq!(token_status(&app, &svc.client_id, &expiring).await, 401);
    // The other secret, without an expiry, is unaffected.
    assert_eq!(token_status(&app, &svc.client_id, &svc.secret).await, 200);
}

// RFC 7523 3: an assertion is accepted before exp + leeway, and at most once: its jti is
// kept as long as it could be accepted, also across a clock stepped back.
on_both_backends_with!(
    an_assertion_is_accepted_once_until_its_exp_plus_leeway,
    manual
);
async fn an_assertion_is_accepted_once_until_its_exp_plus_leeway(app: TestApp) {
    let clock = app.state.clock.clone();
    let t0 = clock.now();
    let key = client_key("k1");
    let c = app.jwt_client("Signed requests", &key);
    let exp = t0 + 60;
    let make = || {
        signed(
            &key,
            serde_json::json!({
                "iss": c.client_id, "sub": c.client_id, "aud": app.issuer,
                "iat": t0, "exp": exp, "jti": portcullis::crypto::unique_id(),
            }),
        )
    };
    let first = make();
    assert_eq!(app.token_with_assertion(&first).await.status(), 200);

    clock.set(exp + LEEWAY - 1);
    assert_oauth_error(
        app.token_with_assertion(&first).await,
        401,
        "invalid_client",
    )
    .await;
    assert_eq!(app.token_with_assertion(&make()).await.status(), 200);
    clock.set(exp + LEEWAY);
    assert_oauth_error(
        app.token_with_assertion(&make()).await,
        401,
        "invalid_client",
    )
    .await;
    clock.set(exp + LEEWAY + 1);
    assert_oauth_error(
        app.token_with_assertion(&make()).await,
        401,
        "invalid_client",
    )
    .await;
    // Stepped back to before its exp: the used assertion is still refused (its jti is kept until
    // exp + leeway by the clock at the time of use, and was not purged).
    clock.set(t0 + 10);
    assert_oauth_error(
        app.token_with_assertion(&first).await,
        401,
        "invalid_client",
    )
    .await;
    assert_eq!(app.token_with_assertion(&make()).await.status(), 200);
}
