//! The client form of the admin area: parsed by hand (repeated checkboxes), validated into a
//! `NewClient` with the errors beside their fields.

use std::collections::HashMap;

use actix_web::HttpResponse;

use super::AdminUser;
use crate::client::{AuthMethod, Client, GrantType, NewClient};

/// The client form as typed (kept on errors).
#[derive(Default, serde::Serialize, Clone)]
pub struct ClientForm {
    pub(super) name: String,
    pub(super) description: String,
    pub(super) logo_url: String,
    pub(super) kind: String,
    pub(super) redirect_uris: String,
    pub(super) scopes: String,
    pub(super) grant_type: Vec<String>,
    pub(super) access_token_ttl: String,
    pub(super) refresh_token_ttl: String,
    pub(super) ip_allowlist: String,
    pub(super) rate_limit: String,
    pub(super) auth_method: String,
    pub(super) jwks: String,
    pub(super) loopback_any_port: Option<String>,
    pub(super) enabled: Option<String>,
}

impl ClientForm {
    /// Parses the form body by hand: `grant_type` is a repeated checkbox, which
    /// `serde_urlencoded` cannot put in a list.
    pub(super) fn parse(body: &[u8]) -> ClientForm {
        let mut f = ClientForm::default();
        for (k, v) in url::form_urlencoded::parse(body) {
            let v = v.into_owned();
            match k.as_ref() {
                "name" => f.name = v,
                "description" => f.description = v,
                "logo_url" => f.logo_url = v,
                "kind" => f.kind = v,
                "redirect_uris" => f.redirect_uris = v,
                "scopes" => f.scopes = v,
                "grant_type" => f.grant_type.push(v),
                "access_token_ttl" => f.access_token_ttl = v,
                "refresh_token_ttl" => f.refresh_token_ttl = v,
                "ip_allowlist" => f.ip_allowlist = v,
                "rate_limit" => f.rate_limit = v,
                "auth_method" => f.auth_method = v,
                "jwks" => f.jwks = v,
                "loopback_any_port" => f.loopback_any_port = Some(v),
                "enabled" => f.enabled = Some(v),
                _ => {}
            }
        }
        f
    }

    pub(super) fn of(client: &Client) -> ClientForm {
        ClientForm {
            name: client.name.clone(),
            description: client.description.clone(),
            logo_url: client.logo_url.clone().unwrap_or_default(),
            kind: if client.public {
                "public"
            } else {
                "confidential"
            }
            .into(),
            redirect_uris: client.redirect_uri_texts().join("\n"),
            scopes: client.allowed_scopes.to_string(),
            grant_type: client
                .allowed_grant_types
                .iter()
                .map(|g| g.as_str().to_string())
                .collect(),
            access_token_ttl: client
                .access_token_ttl
                .map(|t| t.to_string())
                .unwrap_or_default(),
            refresh_token_ttl: client
                .refresh_token_ttl
                .map(|t| t.to_string())
                .unwrap_or_default(),
            ip_allowlist: client
                .ip_allowlist
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
            rate_limit: client
                .rate_limit_per_minute
                .map(|r| r.to_string())
                .unwrap_or_default(),
            auth_method: client
                .auth_method
                .map(|m| m.as_str().to_string())
                .unwrap_or_default(),
            jwks: client.jwks.clone().unwrap_or_default(),
            loopback_any_port: client.loopback_any_port.then(|| "on".to_string()),
            enabled: client.enabled.then(|| "on".to_string()),
        }
    }

    /// Checks every field; errors are keyed by field so that each shows beside its input.
    pub(super) fn validate(
        &self,
        existing: Option<&Client>,
    ) -> Result<(NewClient, bool), HashMap<&'static str, String>> {
        let mut errors = HashMap::new();
        let mut check = |field: &'static str, r: Result<(), String>| {
            if let Err(e) = r {
                errors.entry(field).or_insert(e);
            }
        };
        check("name", crate::client::validate_name(&self.name).map(drop));
        if !self.logo_url.trim().is_empty() {
            check(
                "logo_url",
                crate::client::validate_logo_url(&self.logo_url).map(drop),
            );
        }
        for s in self.scopes.split_whitespace() {
            check("scopes", crate::client::validate_scope(s));
        }
        let redirect_uris: Vec<String> = match existing {
            Some(c) => c.redirect_uri_texts(),
            None => self
                .redirect_uris
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect(),
        };
        if existing.is_none() {
            for u in &redirect_uris {
                check(
                    "redirect_uris",
                    crate::client::validate_redirect_uri(u).map(drop),
                );
            }
        }
        let mut grant_types = Vec::new();
        for g in &self.grant_type {
            match GrantType::parse(g) {
                Some(g) => grant_types.push(g),
                None => check("grant_types", Err(format!("unknown grant type '{g}'"))),
            }
        }
        let ttl = |v: &str| -> Result<Option<i64>, String> {
            let v = v.trim();
            if v.is_empty() {
                return Ok(None);
            }
            v.parse::<i64>()
                .map(Some)
                .map_err(|_| "a whole number of seconds, or empty for the server default".into())
        };
        let access = ttl(&self.access_token_ttl);
        let refresh = ttl(&self.refresh_token_ttl);
        let rate_limit = match self.rate_limit.trim() {
            "" => None,
            r => match r.parse::<i64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    check(
                        "rate_limit",
                        Err("a whole number of requests per minute, or empty for no limit".into()),
                    );
                    None
                }
            },
        };
        for entry in self.ip_allowlist.split([',', ' ', '\n', '\r']) {
            if !entry.trim().is_empty() {
                check(
                    "ip_allowlist",
                    crate::client::parse_ip_net(entry.trim()).map(drop),
                );
            }
        }
        if let Err(e) = &access {
            check("access_token_ttl", Err(e.clone()));
        }
        if let Err(e) = &refresh {
            check("refresh_token_ttl", Err(e.clone()));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let public = existing.map_or(self.kind == "public", |c| c.public);
        let new = NewClient {
            name: self.name.clone(),
            description: self.description.clone(),
            logo_url: Some(self.logo_url.clone()),
            public,
            scopes: vec![self.scopes.clone()],
            grant_types,
            redirect_uris,
            loopback_any_port: self.loopback_any_port.is_some(),
            access_token_ttl: access.ok().flatten(),
            refresh_token_ttl: refresh.ok().flatten(),
            ip_allowlist: vec![self.ip_allowlist.clone()],
            rate_limit_per_minute: rate_limit,
            auth_method: crate::client::AuthMethod::parse(&self.auth_method),
            jwks: Some(self.jwks.clone()),
        };
        // The remaining rules (some span fields: grant types against kind and redirect URIs)
        // are judged once, by NewClient::validate, whose error names the field to show it by.
        match new.validate() {
            Ok(valid) => Ok((valid, self.enabled.is_some())),
            Err(e) => Err(HashMap::from([(e.field.as_str(), e.message)])),
        }
    }
}

pub(super) fn grant_choices(checked: &[String]) -> Vec<serde_json::Value> {
    GrantType::ALL
        .iter()
        .map(|g| {
            let label = match g {
                GrantType::AuthorizationCode => "Authorization code (people sign in; PKCE)",
                GrantType::ClientCredentials => "Client credentials (the app acts for itself)",
                GrantType::RefreshToken => "Refresh token",
            };
            serde_json::json!({
                "value": g.as_str(),
                "label": label,
                "checked": checked.iter().any(|c| c == g.as_str()),
            })
        })
        .collect()
}

impl ClientForm {
    /// The form's page: creating (no `client`) or the Settings tab, with the field errors.
    pub(super) fn page<A>(
        &self,
        admin: &AdminUser<A>,
        client: Option<&Client>,
        errors: &HashMap<&'static str, String>,
    ) -> HttpResponse {
        let mut ctx = match client {
            Some(c) => admin.client_context(c, "settings"),
            None => admin.context("clients"),
        };
        ctx.insert("creating", &client.is_none());
        ctx.insert("form", self);
        ctx.insert("grant_types", &grant_choices(&self.grant_type));
        ctx.insert("auth_methods", &auth_methods());
        ctx.insert("default_access_ttl", &admin.state.access_token_ttl);
        ctx.insert("default_refresh_ttl", &admin.state.refresh_token_ttl);
        // Always defined: the template looks up `errors.FIELD`.
        ctx.insert("errors", errors);
        admin.render(super::form_status(errors), "admin/client_form.html", &ctx)
    }
}

/// The choices of the token endpoint authentication method.
fn auth_methods() -> Vec<serde_json::Value> {
    std::iter::once(serde_json::json!({
        "value": "", "label": "client_secret_basic or client_secret_post (a secret)",
    }))
    .chain(AuthMethod::ALL.iter().map(|m| {
        let label = match m {
            AuthMethod::ClientSecretBasic => "client_secret_basic only",
            AuthMethod::ClientSecretPost => "client_secret_post only",
            AuthMethod::PrivateKeyJwt => "private_key_jwt (a JWT signed with the client's key)",
            AuthMethod::ClientSecretJwt => {
                "client_secret_jwt (a JWT signed with a shared HMAC key)"
            }
        };
        serde_json::json!({ "value": m.as_str(), "label": label })
    }))
    .collect()
}
