//! How the CLI prints: aligned tables for people, JSON for scripts.

use std::io::Write;

use serde::Serialize;

use crate::client;
use crate::clock;
use crate::error::AppError;
use crate::secret::SecretView;

/// Output format of list and show commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Aligned text for people.
    Text,
    /// JSON for scripts.
    Json,
}

pub(super) fn io(e: std::io::Error) -> AppError {
    AppError::Internal(format!("cannot write output: {e}"))
}

pub(super) fn json<T: Serialize>(out: &mut dyn Write, value: &T) -> Result<(), AppError> {
    let s = serde_json::to_string_pretty(value).map_err(|e| AppError::Internal(e.to_string()))?;
    writeln!(out, "{s}").map_err(io)
}

pub(super) fn table(
    out: &mut dyn Write,
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
pub(super) struct ClientJson<'a> {
    #[serde(flatten)]
    pub(super) client: &'a client::Client,
    pub(super) created: String,
    pub(super) last_used: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) secrets: Option<Vec<SecretJson>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) secret_count: Option<i64>,
}

#[derive(Serialize)]
pub(super) struct SecretJson {
    #[serde(flatten)]
    pub(super) view: SecretView,
    pub(super) expires: Option<String>,
    pub(super) expired: bool,
    pub(super) last_used: Option<String>,
    pub(super) created: String,
}

pub(super) fn secret_json(view: SecretView, now: i64) -> SecretJson {
    SecretJson {
        expires: view.expires_at.map(clock::rfc3339),
        expired: view.expires_at.is_some_and(|e| e <= now),
        last_used: view.last_used_at.map(clock::rfc3339),
        created: clock::rfc3339(view.created_at),
        view,
    }
}

pub(super) fn expiry_text(expires_at: Option<i64>, now: i64) -> String {
    match expires_at {
        None => "Never".into(),
        Some(e) if e <= now => format!("Expired {}", clock::date(e)),
        Some(e) => clock::date(e),
    }
}

pub(super) fn secret_rows(secrets: &[SecretView], now: i64) -> Vec<Vec<String>> {
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

pub(super) const SECRET_HEADERS: [&str; 7] = [
    "ID",
    "DESCRIPTION",
    "HINT",
    "KIND",
    "EXPIRES",
    "LAST USED",
    "CREATED",
];

/// The fields `client show` prints, in order, with readable values.
pub(super) fn client_fields(c: &client::Client) -> Vec<(&'static str, String)> {
    let none = |v: String| {
        if v.is_empty() {
            "(none)".to_string()
        } else {
            v
        }
    };
    let grants: Vec<&str> = c.allowed_grant_types.iter().map(|g| g.as_str()).collect();
    vec![
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
        ("scopes", none(c.allowed_scopes.to_string())),
        ("grant types", grants.join(" ")),
        (
            "redirect URIs",
            none(c.redirect_uri_texts().join("\n               ")),
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
    ]
}
