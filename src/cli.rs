//! The command line: `serve`, `migrate`, and client, secret and user administration.
//! Every failure is one line on stderr and a non-zero exit (see main.rs).

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use serde::Serialize;

use crate::client::cache::ClientCache;
use crate::client::{self, GrantType, NewClient};
use crate::clock;
use crate::config::Settings;
use crate::db::{self, AnyConnection};
use crate::error::AppError;
use crate::manage::Actor;
use crate::secret::{self, SecretView};
use crate::user::{self, Role};

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

/// Master-key commands.
#[derive(Debug, Subcommand)]
pub enum MasterKeyCmd {
    /// Re-seal every stored key with a new master key, in one transaction. Stop every instance
    /// first; afterwards they start only with the new key (beside a SQLite database the key
    /// file is replaced; otherwise set PORTCULLIS_MASTER_KEY or PORTCULLIS_MASTER_KEY_FILE).
    Rotate {
        /// A file holding the new key: base64 of 32 bytes
        /// (`head -c 32 /dev/urandom | base64 > FILE`).
        #[arg(long, value_name = "FILE")]
        new_key_file: PathBuf,
    },
}

/// Signing-key commands.
#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// Make a new ES256 key: published in the JWKS at once, signing after --activate-in
    /// seconds. The old key stays published until every token it signed has expired.
    Rotate {
        /// Seconds between publishing the new key and signing with it: at least the time
        /// resource servers cache the JWKS (portcullis sends max-age=60).
        #[arg(long, value_name = "SECONDS", default_value_t = 120)]
        activate_in: i64,
    },
    /// List the signing keys: kid, created, signs from, status.
    List,
}

/// Output format of list and show commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned text for people.
    Text,
    /// JSON for scripts.
    Json,
}

/// Client commands.
#[derive(Debug, Subcommand)]
pub enum ClientCmd {
    /// Register a client; prints its client_id and, for a confidential client, its first secret ONCE.
    Create {
        /// Display name (unique).
        #[arg(long)]
        name: String,
        /// Description shown to admins and on the consent page.
        #[arg(long, default_value = "")]
        description: String,
        /// Logo URL (http or https).
        #[arg(long)]
        logo_url: Option<String>,
        /// Redirect URI (repeatable): https, or http on a loopback address. Stored and
        /// matched exactly as typed.
        #[arg(long = "redirect-uri", value_name = "URI")]
        redirect_uris: Vec<String>,
        /// RFC 8252 7.3: loopback redirect URIs (http://127.0.0.1/..., http://[::1]/...) match
        /// any port (for native apps on an ephemeral port).
        #[arg(long)]
        loopback_any_port: bool,
        /// Allowed scope (repeatable, or space-separated).
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// Allowed grant type (repeatable). Default: client_credentials for a confidential
        /// client without redirect URIs, all three with them, authorization_code and
        /// refresh_token for a public client.
        #[arg(long = "grant-type", value_name = "GRANT", value_parser = parse_grant)]
        grant_types: Vec<GrantType>,
        /// A public client (no secret; e.g. a native or browser app).
        #[arg(long)]
        public: bool,
        /// Allowed client address: an IP or CIDR range (repeatable). Default: any address.
        #[arg(long = "allow-ip", value_name = "CIDR")]
        allow_ips: Vec<String>,
        /// Token requests per minute (per instance). Default: no limit.
        #[arg(long, value_name = "N")]
        rate_limit: Option<i64>,
        /// The one client authentication method allowed: client_secret_basic,
        /// client_secret_post, private_key_jwt (needs --jwks-file) or client_secret_jwt (needs
        /// PORTCULLIS_MASTER_KEY). Default: either secret method.
        #[arg(long, value_name = "METHOD", value_parser = parse_auth_method)]
        auth_method: Option<crate::client::AuthMethod>,
        /// The client's public keys for private_key_jwt: a JWKS document or PEM file.
        #[arg(long, value_name = "FILE")]
        jwks_file: Option<std::path::PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Change a client's policies: IP allowlist, rate limit, loopback redirect ports.
    Policy {
        /// The client's client_id.
        client_id: String,
        /// RFC 8252 7.3: loopback redirect URIs match any port.
        #[arg(long, conflicts_with = "exact_loopback_port")]
        loopback_any_port: bool,
        /// Loopback redirect URIs match only with their registered port (the default).
        #[arg(long)]
        exact_loopback_port: bool,
        /// Allowed client address: an IP or CIDR range (repeatable); replaces the list.
        #[arg(long = "allow-ip", value_name = "CIDR", conflicts_with = "any_ip")]
        allow_ips: Vec<String>,
        /// Remove the allowlist: any address may authenticate.
        #[arg(long)]
        any_ip: bool,
        /// Token requests per minute (per instance).
        #[arg(long, value_name = "N", conflicts_with = "no_rate_limit")]
        rate_limit: Option<i64>,
        /// Remove the rate limit.
        #[arg(long)]
        no_rate_limit: bool,
    },
    /// List clients, newest first.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Show one client with its redirect URIs and secrets.
    Show {
        /// The client's client_id.
        client_id: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Enable a client.
    Enable {
        /// The client's client_id.
        client_id: String,
    },
    /// Disable a client: it is refused at once, its data is kept.
    Disable {
        /// The client's client_id.
        client_id: String,
    },
    /// Delete a client with its redirect URIs and secrets.
    Delete {
        /// The client's client_id.
        client_id: String,
    },
}

/// Secret commands.
#[derive(Debug, Subcommand)]
pub enum SecretCmd {
    /// Add a secret to a client. Without --value one is generated and printed ONCE.
    Add {
        /// The client's client_id.
        client_id: String,
        /// What the secret is for.
        #[arg(long, default_value = "")]
        description: String,
        /// Expiry: YYYY-MM-DD (or DD/MM/YYYY): the secret stops working at 00:00 UTC that day.
        #[arg(long, value_name = "DATE")]
        expires: Option<String>,
        /// Your own value (at least 16 characters; stored with argon2id). `-` reads it from stdin.
        #[arg(long, value_name = "VALUE")]
        value: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// List a client's secrets: ID, description, hint, expiry, last use. Never the value.
    List {
        /// The client's client_id.
        client_id: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Delete a secret; it stops working at once.
    Delete {
        /// The secret's ID (from `secret list`).
        secret_id: i64,
    },
}

/// Admin account commands.
#[derive(Debug, Subcommand)]
pub enum AdminCmd {
    /// Create an admin account; the password is read from stdin.
    Create {
        /// Login name.
        #[arg(long)]
        username: String,
        /// admin (may change everything) or readonly (may only look).
        #[arg(long, value_parser = parse_admin_role)]
        role: Role,
    },
}

/// User commands.
#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Create a user who can log in to authorize apps; the password is read from stdin.
    Create {
        /// Login name.
        #[arg(long)]
        username: String,
    },
    /// List users of every role.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Delete a user: their sessions end and every app they authorized loses access.
    Delete {
        /// Login name.
        username: String,
    },
    /// Set a new password (read from stdin) and sign the user out everywhere; every token
    /// their apps hold is revoked too unless --keep-app-access.
    ResetPassword {
        /// Login name.
        username: String,
        /// Leave the user's apps their tokens.
        #[arg(long)]
        keep_app_access: bool,
    },
    /// End every session of a user ("sign out everywhere").
    SignOut {
        /// Login name.
        username: String,
    },
}

fn parse_auth_method(s: &str) -> Result<crate::client::AuthMethod, String> {
    crate::client::AuthMethod::parse(s).ok_or_else(|| {
        format!(
            "'{s}' is not one of {}",
            crate::client::AuthMethod::ALL
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

fn parse_grant(s: &str) -> Result<GrantType, String> {
    GrantType::parse(s).ok_or_else(|| {
        format!(
            "unknown grant type '{s}': use authorization_code, client_credentials or refresh_token"
        )
    })
}

fn parse_admin_role(s: &str) -> Result<Role, String> {
    match Role::parse(s) {
        Some(r @ (Role::Admin | Role::Readonly)) => Ok(r),
        _ => Err(format!("unknown role '{s}': use admin or readonly")),
    }
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
    // The master key is decided by the same function as for `serve` (a SQLite database gets
    // its key file here on first use), and stored keys are sealed and checked with it.
    let (master, source) = db::migrate_and(&mut conn, |conn| {
        let (master, source) = crate::seal::master_key(
            settings.master_key.as_ref(),
            settings.master_key_file.as_deref(),
            &settings.database_url,
            conn,
        )?;
        crate::bootstrap(conn, &master, &source, crate::clock::Clock::system().now())?;
        Ok((master, source))
    })?;
    let out = &mut std::io::stdout().lock();
    let cache = ClientCache::new(false);
    match cli.command {
        Command::Serve => Ok(()),
        Command::Migrate => {
            writeln!(
                out,
                "The database is up to date; its keys are sealed with the master key from {}.",
                source.describe()
            )
            .map_err(io)?;
            Ok(())
        }
        Command::Client(cmd) => client_cmd(&mut conn, cmd, &manage_ctx(&cache, &master), out),
        Command::MasterKey(MasterKeyCmd::Rotate { new_key_file }) => {
            rotate_master_key(&mut conn, &master, &source, &new_key_file, out)
        }
        Command::Keys(KeysCmd::Rotate { activate_in }) => {
            crate::limits::KEY_ACTIVATION_DELAY
                .check(activate_in)
                .map_err(AppError::Invalid)?;
            let now = clock::Clock::system().now();
            let kid = crate::token::rotate(&mut conn, now, activate_in, &master)?;
            writeln!(
                out,
                "New signing key {kid}: published now, signs from {} UTC. Running instances pick it up within PORTCULLIS_CLIENT_CACHE_MS.",
                clock::human(now + activate_in)
            )
            .map_err(io)
        }
        Command::Keys(KeysCmd::List) => {
            let now = clock::Clock::system().now();
            let rows = crate::token::store::all(&mut conn)?;
            let current = rows
                .iter()
                .find(|k| k.retired_at.is_none() && k.activates_at <= now)
                .map(|k| k.id);
            let listed: Vec<Vec<String>> = rows
                .iter()
                .map(|k| {
                    let status = match (k.retired_at, Some(k.id) == current) {
                        (Some(_), _) => "retired",
                        (None, true) => "signing",
                        (None, false) if k.activates_at > now => "published, signs later",
                        (None, false) => "published (verifies older tokens)",
                    };
                    vec![
                        k.kid.clone(),
                        k.alg.clone(),
                        clock::human(k.created_at),
                        clock::human(k.activates_at),
                        status.to_string(),
                    ]
                })
                .collect();
            table(
                out,
                &["KID", "ALG", "CREATED", "SIGNS FROM", "STATUS"],
                listed,
                "No signing keys.",
            )
        }
        Command::Secret(cmd) => secret_cmd(&mut conn, cmd, &manage_ctx(&cache, &master), out),
        Command::Admin(AdminCmd::Create { username, role }) => {
            create_user(&mut conn, &username, role, out)
        }
        Command::User(UserCmd::Create { username }) => {
            create_user(&mut conn, &username, Role::User, out)
        }
        Command::User(UserCmd::List { output }) => {
            let users = user::store::list(&mut conn)?;
            if output == Output::Json {
                return json(out, &users);
            }
            let rows = users
                .iter()
                .map(|u| {
                    vec![
                        u.username.clone(),
                        u.role.as_str().to_string(),
                        clock::human(u.created_at),
                        u.last_login_at
                            .map(clock::human)
                            .unwrap_or_else(|| "Never".into()),
                    ]
                })
                .collect();
            table(
                out,
                &["USERNAME", "ROLE", "CREATED", "LAST LOGIN"],
                rows,
                "No users.",
            )
        }
        Command::User(UserCmd::Delete { username }) => {
            let u = user_named(&mut conn, &username)?;
            crate::manage::delete_user(
                &mut conn,
                &Actor::cli(),
                u.id,
                clock::Clock::system().now(),
            )?;
            writeln!(out, "Deleted user '{username}'.").map_err(io)
        }
        Command::User(UserCmd::ResetPassword {
            username,
            keep_app_access,
        }) => {
            let u = user_named(&mut conn, &username)?;
            let password = read_line("New password: ")?;
            crate::manage::reset_password(
                &mut conn,
                &Actor::cli(),
                u.id,
                &password,
                keep_app_access,
                clock::Clock::system().now(),
            )?;
            let apps = if keep_app_access {
                "app access kept"
            } else {
                "app access revoked"
            };
            writeln!(
                out,
                "Password of '{username}' reset; signed out everywhere; {apps}."
            )
            .map_err(io)
        }
        Command::User(UserCmd::SignOut { username }) => {
            let u = user_named(&mut conn, &username)?;
            let (_, ended) = crate::manage::sign_out_everywhere(
                &mut conn,
                &Actor::cli(),
                u.id,
                clock::Clock::system().now(),
            )?;
            writeln!(out, "Signed '{username}' out of {ended} session(s).").map_err(io)
        }
    }
}

/// `portcullis master-key rotate`: every stored key re-sealed with the new key in one
/// transaction (all or nothing), then the key file beside a SQLite database replaced.
fn rotate_master_key(
    conn: &mut AnyConnection,
    current: &crate::seal::MasterKey,
    source: &crate::seal::KeySource,
    new_key_file: &std::path::Path,
    out: &mut impl Write,
) -> Result<(), AppError> {
    use crate::seal::KeySource;
    let new = crate::seal::read_key_file(new_key_file)?;
    let done = crate::seal::reseal(conn, current, Some(&new), source)?;
    writeln!(
        out,
        "Re-sealed {} signing keys and {} client_secret_jwt keys with the new master key.",
        done.signing_keys, done.hmac_keys
    )
    .map_err(io)?;
    match source {
        KeySource::BesideDatabase(path) => {
            crate::seal::replace_key_file(path, &new).map_err(|e| {
                AppError::Internal(format!(
                    "{e}; the database is sealed with the key in {} now: copy it there",
                    new_key_file.display()
                ))
            })?;
            writeln!(
                out,
                "Replaced {} with the new key. Back it up; the old key no longer opens anything.",
                path.display()
            )
            .map_err(io)
        }
        KeySource::Setting | KeySource::File(_) => writeln!(
            out,
            "Give every instance the new key (PORTCULLIS_MASTER_KEY or PORTCULLIS_MASTER_KEY_FILE) before starting it: the old key no longer opens anything."
        )
        .map_err(io),
    }
}

fn io(e: std::io::Error) -> AppError {
    AppError::Internal(format!("cannot write output: {e}"))
}

fn json<T: Serialize>(out: &mut impl Write, value: &T) -> Result<(), AppError> {
    let s = serde_json::to_string_pretty(value).map_err(|e| AppError::Internal(e.to_string()))?;
    writeln!(out, "{s}").map_err(io)
}

fn table(
    out: &mut impl Write,
    headers: &[&str],
    rows: Vec<Vec<String>>,
    empty: &str,
) -> Result<(), AppError> {
    if rows.is_empty() {
        return writeln!(out, "{empty}").map_err(io);
    }
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        parts.join("  ").trim_end().to_string()
    };
    writeln!(
        out,
        "{}",
        line(headers.iter().map(|h| h.to_string()).collect())
    )
    .map_err(io)?;
    for row in rows {
        writeln!(out, "{}", line(row)).map_err(io)?;
    }
    Ok(())
}

/// A client for JSON output, with readable times and its secrets.
#[derive(Serialize)]
struct ClientJson<'a> {
    #[serde(flatten)]
    client: &'a client::Client,
    created: String,
    last_used: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secrets: Option<Vec<SecretJson>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_count: Option<i64>,
}

#[derive(Serialize)]
struct SecretJson {
    #[serde(flatten)]
    view: SecretView,
    expires: Option<String>,
    expired: bool,
    last_used: Option<String>,
    created: String,
}

fn secret_json(view: SecretView, now: i64) -> SecretJson {
    SecretJson {
        expires: view.expires_at.map(clock::rfc3339),
        expired: view.expires_at.is_some_and(|e| e <= now),
        last_used: view.last_used_at.map(clock::rfc3339),
        created: clock::rfc3339(view.created_at),
        view,
    }
}

fn expiry_text(expires_at: Option<i64>, now: i64) -> String {
    match expires_at {
        None => "Never".into(),
        Some(e) if e <= now => format!("Expired {}", clock::date(e)),
        Some(e) => clock::date(e),
    }
}

fn secret_rows(secrets: &[SecretView], now: i64) -> Vec<Vec<String>> {
    secrets
        .iter()
        .map(|s| {
            vec![
                s.id.to_string(),
                if s.description.is_empty() {
                    "-".into()
                } else {
                    s.description.clone()
                },
                format!("...{}", s.hint),
                s.kind.to_string(),
                expiry_text(s.expires_at, now),
                s.last_used_at
                    .map(clock::human)
                    .unwrap_or_else(|| "Never".into()),
                clock::human(s.created_at),
            ]
        })
        .collect()
}

const SECRET_HEADERS: [&str; 7] = [
    "ID",
    "DESCRIPTION",
    "HINT",
    "KIND",
    "EXPIRES",
    "LAST USED",
    "CREATED",
];

/// The use cases' context for the CLI: a client cache of its own (nothing to drop: running
/// servers see the change through the cache generation) and the configured master key.
fn manage_ctx<'a>(
    cache: &'a ClientCache,
    master: &'a crate::seal::MasterKey,
) -> crate::manage::Ctx<'a> {
    crate::manage::Ctx {
        clients: cache,
        master_key: master,
    }
}

fn client_cmd(
    conn: &mut AnyConnection,
    cmd: ClientCmd,
    ctx: &crate::manage::Ctx,
    out: &mut impl Write,
) -> Result<(), AppError> {
    let now = clock::Clock::system().now();
    match cmd {
        ClientCmd::Create {
            name,
            description,
            logo_url,
            redirect_uris,
            loopback_any_port,
            scopes,
            grant_types,
            public,
            allow_ips,
            rate_limit,
            auth_method,
            jwks_file,
            output,
        } => {
            let jwks = match jwks_file {
                Some(path) => Some(std::fs::read_to_string(&path).map_err(|e| {
                    AppError::Invalid(format!("cannot read {}: {e}", path.display()))
                })?),
                None => None,
            };
            let new = NewClient {
                name,
                description,
                logo_url,
                public,
                scopes,
                grant_types,
                redirect_uris,
                loopback_any_port,
                ip_allowlist: allow_ips,
                rate_limit_per_minute: rate_limit,
                auth_method,
                jwks,
                ..NewClient::default()
            }
            .validate()?;
            let (client, secret_value) =
                crate::manage::create_client(conn, ctx, &Actor::cli(), &new, true, now)?;
            if output == Output::Json {
                return json(
                    out,
                    &serde_json::json!({ "client": client, "client_secret": secret_value }),
                );
            }
            writeln!(
                out,
                "Created {} client '{}'.",
                if client.public {
                    "public"
                } else {
                    "confidential"
                },
                client.name
            )
            .map_err(io)?;
            writeln!(out, "client_id:     {}", client.client_id).map_err(io)?;
            if let Some(value) = secret_value {
                writeln!(out, "client_secret: {value}").map_err(io)?;
                writeln!(
                    out,
                    "Store the secret now: it is shown only this once (portcullis keeps a hash and the hint ...{}).",
                    crate::crypto::hint(&value)
                )
                .map_err(io)?;
            }
            Ok(())
        }
        ClientCmd::List { output } => {
            let clients = client::store::list(conn)?;
            if output == Output::Json {
                let items: Vec<ClientJson> = clients
                    .iter()
                    .map(|c| ClientJson {
                        client: &c.client,
                        created: clock::rfc3339(c.client.created_at),
                        last_used: c.client.last_used_at.map(clock::rfc3339),
                        secrets: None,
                        secret_count: Some(c.secret_count),
                    })
                    .collect();
                return json(out, &items);
            }
            let rows = clients
                .iter()
                .map(|c| {
                    let c_ = &c.client;
                    vec![
                        c_.client_id.clone(),
                        c_.name.clone(),
                        if c_.public { "public" } else { "confidential" }.into(),
                        if c_.enabled { "enabled" } else { "disabled" }.into(),
                        c.secret_count.to_string(),
                        clock::human(c_.created_at),
                        c_.last_used_at
                            .map(clock::human)
                            .unwrap_or_else(|| "Never".into()),
                    ]
                })
                .collect();
            table(
                out,
                &[
                    "CLIENT_ID",
                    "NAME",
                    "TYPE",
                    "STATUS",
                    "SECRETS",
                    "CREATED",
                    "LAST USED",
                ],
                rows,
                "No clients. Create one with `portcullis client create --name NAME`.",
            )
        }
        ClientCmd::Show { client_id, output } => {
            let c = client::store::get(conn, &client_id)?;
            let secrets: Vec<SecretView> = secret::store::list(conn, c.id)?
                .iter()
                .map(SecretView::from)
                .collect();
            if output == Output::Json {
                return json(
                    out,
                    &ClientJson {
                        client: &c,
                        created: clock::rfc3339(c.created_at),
                        last_used: c.last_used_at.map(clock::rfc3339),
                        secrets: Some(secrets.into_iter().map(|s| secret_json(s, now)).collect()),
                        secret_count: None,
                    },
                );
            }
            let none = |v: String| {
                if v.is_empty() {
                    "(none)".to_string()
                } else {
                    v
                }
            };
            let grants: Vec<&str> = c.allowed_grant_types.iter().map(|g| g.as_str()).collect();
            let fields = [
                ("client_id", c.client_id.clone()),
                ("name", c.name.clone()),
                ("description", none(c.description.clone())),
                (
                    "type",
                    if c.public { "public" } else { "confidential" }.into(),
                ),
                (
                    "status",
                    if c.enabled { "enabled" } else { "disabled" }.into(),
                ),
                ("scopes", none(c.allowed_scopes.join(" "))),
                ("grant types", grants.join(" ")),
                (
                    "redirect URIs",
                    none(c.redirect_uris.join("\n               ")),
                ),
                (
                    "loopback port",
                    if c.loopback_any_port {
                        "any (RFC 8252 7.3)"
                    } else {
                        "as registered"
                    }
                    .into(),
                ),
                ("logo URL", none(c.logo_url.clone().unwrap_or_default())),
                (
                    "allowed IPs",
                    if c.ip_allowlist.is_empty() {
                        "any".to_string()
                    } else {
                        c.ip_allowlist
                            .iter()
                            .map(|n| n.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    },
                ),
                (
                    "rate limit",
                    c.rate_limit_per_minute
                        .map_or_else(|| "none".to_string(), |r| format!("{r}/minute")),
                ),
                ("created", clock::human(c.created_at)),
                (
                    "last used",
                    c.last_used_at
                        .map(clock::human)
                        .unwrap_or_else(|| "Never".into()),
                ),
            ];
            for (k, v) in fields {
                writeln!(out, "{:<15}{v}", format!("{k}:")).map_err(io)?;
            }
            writeln!(out, "secrets:").map_err(io)?;
            table(out, &SECRET_HEADERS, secret_rows(&secrets, now), "(none)")
        }
        ClientCmd::Enable { client_id } => set_enabled(conn, ctx, &client_id, true, now, out),
        ClientCmd::Disable { client_id } => set_enabled(conn, ctx, &client_id, false, now, out),
        ClientCmd::Policy {
            client_id,
            loopback_any_port,
            exact_loopback_port,
            allow_ips,
            any_ip,
            rate_limit,
            no_rate_limit,
        } => {
            let c = client::store::get(conn, &client_id)?;
            let settings = NewClient {
                name: c.name.clone(),
                description: c.description.clone(),
                logo_url: c.logo_url.clone(),
                public: c.public,
                scopes: c.allowed_scopes.clone(),
                grant_types: c.allowed_grant_types.clone(),
                redirect_uris: c.redirect_uris.clone(),
                loopback_any_port: match (loopback_any_port, exact_loopback_port) {
                    (true, _) => true,
                    (_, true) => false,
                    _ => c.loopback_any_port,
                },
                access_token_ttl: c.access_token_ttl,
                refresh_token_ttl: c.refresh_token_ttl,
                ip_allowlist: match (any_ip, allow_ips.is_empty()) {
                    (true, _) => Vec::new(),
                    (false, true) => c.ip_allowlist.iter().map(|n| n.to_string()).collect(),
                    (false, false) => allow_ips,
                },
                rate_limit_per_minute: if no_rate_limit {
                    None
                } else {
                    rate_limit.or(c.rate_limit_per_minute)
                },
                auth_method: c.auth_method,
                jwks: c.jwks.clone(),
            }
            .validate()?;
            crate::manage::update_client(conn, ctx, &Actor::cli(), &c, &settings, c.enabled, now)?;
            let allow = if settings.ip_allowlist.is_empty() {
                "any address".to_string()
            } else {
                settings.ip_allowlist.join(", ")
            };
            let limit = settings.rate_limit_per_minute.map_or_else(
                || "no rate limit".to_string(),
                |r| format!("{r} token requests per minute"),
            );
            let ports = if settings.loopback_any_port {
                "loopback redirect URIs match any port"
            } else {
                "redirect URIs match exactly"
            };
            writeln!(out, "Client {client_id}: {allow}; {limit}; {ports}.").map_err(io)
        }
        ClientCmd::Delete { client_id } => {
            // The same operation as the admin area and the API: audited, tokens revoked.
            let c = client::store::get(conn, &client_id)?;
            crate::manage::delete_client(conn, ctx, &Actor::cli(), &c, now)?;
            writeln!(
                out,
                "Deleted client '{}' ({client_id}) with its secrets, redirect URIs and tokens.",
                c.name
            )
            .map_err(io)
        }
    }
}

fn set_enabled(
    conn: &mut AnyConnection,
    ctx: &crate::manage::Ctx,
    client_id: &str,
    enabled: bool,
    now: i64,
    out: &mut impl Write,
) -> Result<(), AppError> {
    let c = client::store::get(conn, client_id)?;
    crate::manage::set_enabled(conn, ctx, &Actor::cli(), &c, enabled, now)?;
    writeln!(
        out,
        "Client {client_id} is {}.",
        if enabled { "enabled" } else { "disabled" }
    )
    .map_err(io)
}

fn secret_cmd(
    conn: &mut AnyConnection,
    cmd: SecretCmd,
    ctx: &crate::manage::Ctx,
    out: &mut impl Write,
) -> Result<(), AppError> {
    let now = clock::Clock::system().now();
    match cmd {
        SecretCmd::Add {
            client_id,
            description,
            expires,
            value,
            output,
        } => {
            let c = client::store::get(conn, &client_id)?;
            let expires_at = expires
                .as_deref()
                .map(|e| clock::parse_expiry(e, now))
                .transpose()
                .map_err(AppError::Invalid)?;
            let value = match value.as_deref() {
                Some("-") => Some(read_line("Secret value: ")?),
                other => other.map(str::to_string),
            };
            let (row, generated) = crate::manage::add_secret(
                conn,
                ctx,
                &Actor::cli(),
                &c,
                &crate::manage::SecretInput {
                    description: &description,
                    expires_at,
                    value: value.as_deref(),
                },
                now,
            )?;
            if output == Output::Json {
                return json(
                    out,
                    &serde_json::json!({
                        "secret": secret_json(SecretView::from(&row), now),
                        "client_secret": generated,
                    }),
                );
            }
            writeln!(
                out,
                "Added secret {} to client '{}' (expires: {}).",
                row.id,
                c.name,
                expiry_text(expires_at, now)
            )
            .map_err(io)?;
            match generated {
                Some(v) => {
                    writeln!(out, "client_secret: {v}").map_err(io)?;
                    writeln!(out, "Store it now: it is shown only this once.").map_err(io)
                }
                None => writeln!(
                    out,
                    "Your value is stored as an argon2id hash with the hint ...{}.",
                    row.hint
                )
                .map_err(io),
            }
        }
        SecretCmd::List { client_id, output } => {
            let c = client::store::get(conn, &client_id)?;
            let secrets: Vec<SecretView> = secret::store::list(conn, c.id)?
                .iter()
                .map(SecretView::from)
                .collect();
            if output == Output::Json {
                let items: Vec<SecretJson> =
                    secrets.into_iter().map(|s| secret_json(s, now)).collect();
                return json(out, &items);
            }
            table(
                out,
                &SECRET_HEADERS,
                secret_rows(&secrets, now),
                "No secrets.",
            )
        }
        SecretCmd::Delete { secret_id } => {
            let Some((row, client_id)) = secret::store::find_with_client(conn, secret_id)? else {
                return Err(AppError::NotFound(format!("no secret with ID {secret_id}")));
            };
            let c = client::store::get(conn, &client_id)?;
            crate::manage::delete_secret(conn, ctx, &Actor::cli(), &c, &row, now)?;
            writeln!(out, "Deleted secret {secret_id}; it no longer works.").map_err(io)
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

fn create_user(
    conn: &mut AnyConnection,
    username: &str,
    role: Role,
    out: &mut impl Write,
) -> Result<(), AppError> {
    // Checked before the password is asked for.
    let username = user::validate_username(username).map_err(AppError::Invalid)?;
    let password = read_line("Password: ")?;
    let u = crate::manage::create_user(
        conn,
        &Actor::cli(),
        &username,
        &password,
        role,
        clock::Clock::system().now(),
    )?;
    writeln!(out, "Created {} '{}'.", u.role.as_str(), u.username).map_err(io)
}

fn user_named(conn: &mut AnyConnection, username: &str) -> Result<user::User, AppError> {
    user::store::find_by_name(conn, username)?
        .ok_or_else(|| AppError::NotFound(format!("no user named '{username}'")))
}
