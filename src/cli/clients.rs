//! `portcullis client ...`: register, list, show, change, enable, disable and delete clients.

use std::io::Write;

use clap::Subcommand;

use super::Console;
use super::output::{
    ClientJson, Output, SECRET_HEADERS, io, json, secret_json, secret_rows, table,
};
use crate::client::{self, GrantType, NewClient};
use crate::clock;
use crate::db::AnyConnection;
use crate::error::AppError;
use crate::manage::Actor;

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

pub(super) fn run(cmd: ClientCmd, con: Console<'_>) -> Result<(), AppError> {
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
                crate::manage::create_client(con.conn, &con.ctx, &con.actor, &new, true, con.now)?;
            if output == Output::Json {
                return json(
                    con.out,
                    &serde_json::json!({ "client": client, "client_secret": secret_value }),
                );
            }
            writeln!(
                con.out,
                "Created {} client '{}'.",
                if client.public {
                    "public"
                } else {
                    "confidential"
                },
                client.name
            )
            .map_err(io)?;
            writeln!(con.out, "client_id:     {}", client.client_id).map_err(io)?;
            if let Some(value) = secret_value {
                writeln!(con.out, "client_secret: {value}").map_err(io)?;
                writeln!(
                    con.out,
                    "Store the secret now: it is shown only this once (portcullis keeps a hash and the hint ...{}).",
                    crate::crypto::hint(&value)
                )
                .map_err(io)?;
            }
            Ok(())
        }
        ClientCmd::List { output } => {
            let clients = client::store::list(con.conn)?;
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
                return json(con.out, &items);
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
                con.out,
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
            let (c, secrets) = super::secrets::client_with_secrets(con.conn, &client_id)?;
            if output == Output::Json {
                return json(
                    con.out,
                    &ClientJson {
                        client: &c,
                        created: clock::rfc3339(c.created_at),
                        last_used: c.last_used_at.map(clock::rfc3339),
                        secrets: Some(
                            secrets
                                .into_iter()
                                .map(|s| secret_json(s, con.now))
                                .collect(),
                        ),
                        secret_count: None,
                    },
                );
            }
            let fields = super::output::client_fields(&c);
            for (k, v) in fields {
                writeln!(con.out, "{:<15}{v}", format!("{k}:")).map_err(io)?;
            }
            writeln!(con.out, "secrets:").map_err(io)?;
            table(
                con.out,
                &SECRET_HEADERS,
                secret_rows(&secrets, con.now),
                "(none)",
            )
        }
        ClientCmd::Enable { client_id } => set_enabled(
            con.conn, &con.ctx, &con.actor, &client_id, true, con.now, con.out,
        ),
        ClientCmd::Disable { client_id } => set_enabled(
            con.conn, &con.ctx, &con.actor, &client_id, false, con.now, con.out,
        ),
        ClientCmd::Policy {
            client_id,
            loopback_any_port,
            exact_loopback_port,
            allow_ips,
            any_ip,
            rate_limit,
            no_rate_limit,
        } => {
            let c = client::store::get(con.conn, &client_id)?;
            let settings = NewClient {
                name: c.name.clone(),
                description: c.description.clone(),
                logo_url: c.logo_url.clone(),
                public: c.public,
                scopes: c.allowed_scopes.to_vec(),
                grant_types: c.allowed_grant_types.clone(),
                redirect_uris: c.redirect_uri_texts(),
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
            crate::manage::update_client(
                con.conn, &con.ctx, &con.actor, &c, &settings, c.enabled, con.now,
            )?;
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
            writeln!(con.out, "Client {client_id}: {allow}; {limit}; {ports}.").map_err(io)
        }
        ClientCmd::Delete { client_id } => {
            // The same operation as the admin area and the API: audited, tokens revoked.
            let c = client::store::get(con.conn, &client_id)?;
            crate::manage::delete_client(con.conn, &con.ctx, &con.actor, &c, con.now)?;
            writeln!(
                con.out,
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
    actor: &Actor,
    client_id: &str,
    enabled: bool,
    now: i64,
    out: &mut dyn Write,
) -> Result<(), AppError> {
    let c = client::store::get(conn, client_id)?;
    crate::manage::set_enabled(conn, ctx, actor, &c, enabled, now)?;
    writeln!(
        out,
        "Client {client_id} is {}.",
        if enabled { "enabled" } else { "disabled" }
    )
    .map_err(io)
}
