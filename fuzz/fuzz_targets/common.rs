//! Shared by the fuzz targets: a registered client to check requests against.
#![allow(dead_code)]

use portcullis::client::{Client, GrantType, RedirectUri, ScopeSet};
use portcullis::ids::ClientKey;

/// A confidential client with the given redirect URIs.
pub fn client(redirect_uris: Vec<String>, loopback_any_port: bool) -> Client {
    Client {
        id: ClientKey(1),
        client_id: "app".into(),
        name: "App".into(),
        description: String::new(),
        logo_url: None,
        public: false,
        enabled: true,
        allowed_scopes: ScopeSet::from_stored("read write openid"),
        allowed_grant_types: vec![
            GrantType::AuthorizationCode,
            GrantType::ClientCredentials,
            GrantType::RefreshToken,
        ],
        access_token_ttl: None,
        refresh_token_ttl: None,
        redirect_uris: redirect_uris
            .into_iter()
            .map(RedirectUri::from_stored)
            .collect(),
        loopback_any_port,
        ip_allowlist: Vec::new(),
        rate_limit_per_minute: None,
        auth_method: None,
        jwks: None,
        hmac_key_sealed: None,
        created_at: 0,
        updated_at: 0,
        last_used_at: None,
    }
}

/// Splits the input at the first newline: (first line, rest).
pub fn split_line(data: &str) -> (&str, &str) {
    data.split_once('\n').unwrap_or((data, ""))
}
