//! portcullis: an OAuth2 authorization server. ARCHITECTURE.md maps the layers.
//!
//! Start-up is in [`app`] ([`Application::build`] opens and migrates the database, loads the
//! signing keys and binds the listener; `run_until_stopped` serves until SIGTERM/SIGINT and
//! flushes batched state), the shared state in [`state`], background jobs in [`jobs`].

pub mod app;
pub mod argon2_pool;
pub mod audit;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod consent;
pub mod crypto;
pub mod db;
pub mod error;
pub mod http;
pub mod ids;
pub mod jobs;
pub mod limits;
pub mod manage;
pub mod memory;
pub mod metrics;
pub mod oauth;
pub mod seal;
pub mod secret;
pub mod state;
pub mod text;
pub mod token;
pub mod usage;
pub mod user;

pub use app::{Application, bootstrap, init_logging, prepare_database, serve};
pub use state::AppState;
