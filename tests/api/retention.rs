//! What the periodic purge deletes (issue 11 item 8, "hours of load"): expired refresh tokens
//! also in families that are still in use, and audit events past
//! `PORTCULLIS_AUDIT_RETENTION_DAYS`. The clock is a manual one (`state.clock`); the purge
//! runs every second in tests.

use diesel::RunQueryDsl;
use portcullis::audit::NewEvent;
use portcullis::clock::Clock;
use portcullis::config::Settings;

use crate::authorize::{CB, code_for, tokens};
use crate::helpers::*;
use crate::on_both_backends_with;

const REFRESH_TTL: i64 = 3600;
const RETENTION_DAYS: i64 = 2;

fn manual(s: &mut Settings) {
    s.clock = Clock::manual(Clock::system().now());
    s.refresh_token_ttl = REFRESH_TTL;
    s.audit_retention_days = RETENTION_DAYS;
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn count(app: &TestApp, sql: &str) -> i64 {
    diesel::sql_query(sql)
        .get_result::<Count>(&mut **app.pool.get().unwrap())
        .unwrap()
        .n
}

/// Waits (up to 10 s) until `sql` counts `want`.
async fn until_count(app: &TestApp, sql: &str, want: i64) {
    let started = std::time::Instant::now();
    loop {
        let n = count(app, sql);
        if n == want {
            return;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{sql}: {n}, expected {want}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn refresh_token_of(t: &serde_json::Value) -> String {
    t["refresh_token"].as_str().unwrap().to_string()
}

// A family that keeps refreshing never expires as a whole (each rotation moves its
// expiry), so its rotated tokens must go one by one, at their own expiry (RFC 6749 6:
// an expired refresh token is refused whatever its row says).
on_both_backends_with!(
    expired_refresh_tokens_are_purged_while_their_family_lives,
    manual
);
async fn expired_refresh_tokens_are_purged_while_their_family_lives(app: TestApp) {
    let clock = app.state.clock.clone();
    let web = app.web_app("web", &["invoices:read"]);
    let browser = app.signed_in("alice").await;
    let t0 = clock.now();
    let (code, verifier) = code_for(&app, &browser, &web, "invoices:read").await;
    let r0 = refresh_token_of(
        &tokens(
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
        .await,
    );
    clock.set(t0 + 100);
    let r1 = refresh_token_of(&tokens(app.refresh(&web, &r0, None).await).await);
    clock.set(t0 + 200);
    let r2 = refresh_token_of(&tokens(app.refresh(&web, &r1, None).await).await);
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM refresh_tokens"), 3);

    // r0 expired a second ago, r1 expires now (refused from its exp on), r2 lives.
    clock.set(t0 + 100 + REFRESH_TTL);
    until_count(&app, "SELECT COUNT(*) AS n FROM refresh_tokens", 1).await;
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM grants"),
        1,
        "the family lives on"
    );
    assert_eq!(app.introspect(&web, &r2).await["active"], true);
    let r3 = refresh_token_of(&tokens(app.refresh(&web, &r2, None).await).await);

    // A purged token is unknown: refused, and (past its expiry) no longer revokes the family.
    let body = assert_oauth_error(app.refresh(&web, &r1, None).await, 400, "invalid_grant").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("unknown"),
        "{body}"
    );
    assert_eq!(app.introspect(&web, &r3).await["active"], true);
    assert_eq!(app.introspect(&web, &r0).await["active"], false);

    // When the last token expires, the family goes with it.
    clock.set(t0 + 200 + 2 * REFRESH_TTL);
    until_count(&app, "SELECT COUNT(*) AS n FROM grants", 0).await;
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM refresh_tokens"), 0);
}

// PORTCULLIS_AUDIT_RETENTION_DAYS: events older than the retention are deleted, younger
// ones are kept, by the clock in the server's state.
on_both_backends_with!(audit_events_past_their_retention_are_purged, manual);
async fn audit_events_past_their_retention_are_purged(app: TestApp) {
    let clock = app.state.clock.clone();
    let now = clock.now();
    let retention = RETENTION_DAYS * 86_400;
    for (target, at) in [
        ("old", now - retention - 1),
        ("young", now - retention + 60),
        ("new", now),
    ] {
        let event = NewEvent {
            actor: "test",
            action: "retention.test",
            client_id: None,
            target,
            details: "",
            remote_addr: "",
        };
        portcullis::audit::store::record(&mut app.pool.get().unwrap(), &event, at).unwrap();
    }
    let of = |t: &str| format!("SELECT COUNT(*) AS n FROM audit_events WHERE target = '{t}'");
    until_count(&app, &of("old"), 0).await;
    // A few more purges leave the younger ones alone.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(count(&app, &of("young")), 1);
    assert_eq!(count(&app, &of("new")), 1);

    clock.advance(61);
    until_count(&app, &of("young"), 0).await;
    assert_eq!(count(&app, &of("new")), 1);
}
