//! One integration-test binary: the real server on port 0, spoken to over HTTP, on SQLite and
//! (with PORTCULLIS_TEST_POSTGRES_URL) PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin;
mod admin_api;
mod authorize;
mod authorize_hardening;
mod browser;
mod cli;
mod clock;
mod discovery;
mod disk_full;
mod faults;
mod flood;
mod hardening;
mod helpers;
mod instances;
mod jwt_auth;
mod kill;
mod login;
mod policies;
mod retention;
mod schema;
mod sealing;
mod sessions;
mod sqlite_writers;
mod token;
