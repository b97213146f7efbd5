//! The command line: `serve`, `migrate`, and client, secret and user administration.
//! Every failure is one line on stderr and a non-zero exit (see main.rs).

mod clients;
mod keys;
mod output;
mod secrets;
mod users;

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use clients::ClientCmd;
pub use keys::{KeysCmd, MasterKeyCmd};
pub use output::Output;
pub use secrets::SecretCmd;
pub use users::{AdminCmd, UserCmd};

use crate::client::cache::ClientCache;
use crate::config::Settings;
use crate::db::{self, AnyConnection};
use crate::error::AppError;
use crate::manage::Actor;

/// portcullis, an OAuth2 authorization server.
#[derive(Debug, Parser)]
#[command(name = "portcullis", version, about, propagate_version = true)]
pub struct Cli {
    /// TOML configuration file (PORTCULLIS_* environment variables override it).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Database URL, overriding PORTCULLIS_DATABASE_URL: sqlite://PATH, a path, or postgres://...
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Log format of the server, overriding PORTCULLIS_LOG_FORMAT: text, or json (one object
    /// per line, for log collectors).
    #[arg(long, global = true, value_name = "FORMAT", value_parser = ["text", "json"])]
    pub log_format: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (migrates the database and creates the first signing key if needed).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage clients.
    #[command(subcommand)]
    Client(ClientCmd),
    /// Manage client secrets.
    #[command(subcommand)]
    Secret(SecretCmd),
    /// Manage admin accounts (roles admin and readonly).
    #[command(subcommand)]
    Admin(AdminCmd),
    /// Manage people who log in to authorize apps (role user).
    #[command(subcommand)]
    User(UserCmd),
    /// Manage the keys that sign access tokens.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Manage the master key that seals the stored signing and client_secret_jwt keys.
    #[command(subcommand, name = "master-key")]
    MasterKey(MasterKeyCmd),
}

/// What an administration command works with: the database, the use cases' context (a client
/// cache of its own, with nothing to drop: running servers see a change through the cache
/// generation; the configured master key), where its output goes, the time it runs at, and
/// who it is for the audit log (`cli:<OS user>`).
struct Console<'a> {
    conn: &'a mut AnyConnection,
    ctx: crate::manage::Ctx<'a>,
    out: &'a mut dyn Write,
    now: i64,
    actor: Actor,
}

/// Loads the settings, honouring `--config` and `--database-url`.
pub fn settings(cli: &Cli) -> Result<Settings, AppError> {
    let url = cli.database_url.clone();
    let log_format = cli.log_format.clone();
    Settings::from_sources(cli.config.as_deref(), |k| {
        if k == "PORTCULLIS_DATABASE_URL"
            && let Some(u) = &url
        {
            return Some(u.clone());
        }
        if k == "PORTCULLIS_LOG_FORMAT"
            && let Some(f) = &log_format
        {
            return Some(f.clone());
        }
        std::env::var(k).ok()
    })
    .map_err(|e| AppError::Invalid(e.0))
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<(), AppError> {
    let settings = settings(&cli)?;
    if let Command::Serve = cli.command {
        crate::init_logging(&settings);
        crate::memory::tune();
        return actix_web::rt::System::new().block_on(crate::serve(settings));
    }
    let mut conn = db::connect(&settings.database_url).map_err(|e| {
        AppError::Internal(format!(
            "cannot open the database {:?}: {e}",
            settings.database_url
        ))
    })?;
    let now = crate::clock::Clock::system().now();
    // The master key is decided by the same function as for `serve` (a SQLite database gets
    // its key file here on first use), and stored keys are sealed and checked with it.
    let (master, source) = db::migrate_and(&mut conn, |conn| {
        let (master, source) = crate::seal::master_key(
            settings.master_key.as_ref(),
            settings.master_key_file.as_deref(),
            &settings.database_url,
            conn,
        )?;
        crate::bootstrap(conn, &master, &source, now)?;
        Ok((master, source))
    })?;
    let out = &mut std::io::stdout().lock();
    let cache = ClientCache::new(false);
    let console = Console {
        conn: &mut conn,
        ctx: crate::manage::Ctx {
            clients: &cache,
            master_key: &master,
        },
        out,
        now,
        actor: Actor::cli(),
    };
    match cli.command {
        Command::Serve => Ok(()),
        Command::Migrate => writeln!(
            console.out,
            "The database is up to date; its keys are sealed with the master key from {}.",
            source.describe()
        )
        .map_err(output::io),
        Command::Client(cmd) => clients::run(cmd, console),
        Command::Secret(cmd) => secrets::run(cmd, console),
        Command::Admin(cmd) => users::run_admin(cmd, console),
        Command::User(cmd) => users::run(cmd, console),
        Command::Keys(cmd) => keys::run(cmd, console),
        Command::MasterKey(MasterKeyCmd::Rotate { new_key_file }) => {
            keys::rotate_master_key(console, &source, &new_key_file)
        }
    }
}

fn read_line(prompt: &str) -> Result<String, AppError> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| AppError::Invalid(format!("cannot read from stdin: {e}")))?;
    let value = line.trim_end_matches(['\r', '\n']).to_string();
    if value.is_empty() {
        return Err(AppError::Invalid("nothing was read from stdin".into()));
    }
    Ok(value)
}
