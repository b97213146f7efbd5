// Migrations are embedded with `embed_migrations!`: rebuild when they change.
//
// The integration tests that need PostgreSQL or a browser are compiled as `#[ignore]`d
// (so the test runner counts them as ignored, not as passed) unless the variable that
// switches them on was set at build time: `portcullis_test_postgres` when
// PORTCULLIS_TEST_POSTGRES_URL is set and not empty, `portcullis_test_browser` when
// PORTCULLIS_TEST_BROWSER=1. `.ci/run` sets both.
fn main() {
    println!("cargo::rerun-if-changed=migrations");
    println!("cargo::rerun-if-env-changed=PORTCULLIS_TEST_POSTGRES_URL");
    println!("cargo::rerun-if-env-changed=PORTCULLIS_TEST_BROWSER");
    println!("cargo::rustc-check-cfg=cfg(portcullis_test_postgres)");
    println!("cargo::rustc-check-cfg=cfg(portcullis_test_browser)");
    if std::env::var("PORTCULLIS_TEST_POSTGRES_URL").is_ok_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=portcullis_test_postgres");
    }
    if std::env::var("PORTCULLIS_TEST_BROWSER").is_ok_and(|v| v == "1") {
        println!("cargo::rustc-cfg=portcullis_test_browser");
    }
}
