//! Registered clients: the model and its validation rules (no actix, no diesel here).

pub mod assertion;
pub mod auth_throttle;
pub mod cache;
pub mod cors;
pub mod ratelimit;
pub mod redirect_uri;
pub mod scope;
pub mod store;

pub use redirect_uri::RedirectUri;
pub use scope::{ScopeSet, validate_scope};

use crate::ids::ClientKey;
use serde::Serialize;

/// Grant types a client may be allowed to use (RFC 6749 4.1, 4.4, 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    /// RFC 6749 4.1 (with PKCE, RFC 7636).
    AuthorizationCode,
    /// RFC 6749 4.4.
    ClientCredentials,
    /// RFC 6749 6.
    RefreshToken,
}

impl GrantType {
    /// Every grant type portcullis knows.
    pub const ALL: [GrantType; 3] = [
        GrantType::AuthorizationCode,
        GrantType::ClientCredentials,
        GrantType::RefreshToken,
    ];

    /// The `grant_type` parameter value.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::ClientCredentials => "client_credentials",
            GrantType::RefreshToken => "refresh_token",
        }
    }

    /// Parses a `grant_type` value.
    pub fn parse(s: &str) -> Option<GrantType> {
        GrantType::ALL.into_iter().find(|g| g.as_str() == s)
    }
}

/// How a client must authenticate at the token, introspection and revocation endpoints
/// (RFC 7591 2, `token_endpoint_auth_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// HTTP Basic with the client secret (RFC 6749 2.3.1).
    ClientSecretBasic,
    /// client_id and client_secret in the body (RFC 6749 2.3.1).
    ClientSecretPost,
    /// A JWT signed with the client's private key (RFC 7523 2.2).
    PrivateKeyJwt,
    /// A JWT signed with HS256 under a key shared with the server (OpenID Connect Core 9).
    ClientSecretJwt,
}

impl AuthMethod {
    /// Every method that can be chosen.
    pub const ALL: [AuthMethod; 4] = [
        AuthMethod::ClientSecretBasic,
        AuthMethod::ClientSecretPost,
        AuthMethod::PrivateKeyJwt,
        AuthMethod::ClientSecretJwt,
    ];

    /// The registered name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
            AuthMethod::ClientSecretJwt => "client_secret_jwt",
        }
    }

    /// Parses a registered name.
    pub fn parse(s: &str) -> Option<AuthMethod> {
        AuthMethod::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

/// A registered client as the domain sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Client {
    /// Internal primary key.
    #[serde(skip)]
    pub id: ClientKey,
    /// The public identifier (RFC 6749 2.2).
    pub client_id: String,
    /// Display name, unique (case-insensitively).
    pub name: String,
    /// Free text shown to admins and on the consent page.
    pub description: String,
    /// Logo shown on the consent page (http/https).
    pub logo_url: Option<String>,
    /// Public clients (RFC 6749 2.1) have no secret.
    pub public: bool,
    /// Disabled clients are refused everywhere.
    pub enabled: bool,
    /// Scopes the client may ask for; also its default scope.
    pub allowed_scopes: ScopeSet,
    /// Grant types the client may use.
    pub allowed_grant_types: Vec<GrantType>,
    /// Per-client access-token lifetime in seconds (None = the server default).
    pub access_token_ttl: Option<i64>,
    /// Per-client refresh-token lifetime in seconds (None = the server default).
    pub refresh_token_ttl: Option<i64>,
    /// Registered redirect URIs (RFC 6749 3.1.2), exactly as the admin typed them.
    pub redirect_uris: Vec<RedirectUri>,
    /// RFC 8252 7.3: a registered `http://127.0.0.1/...` or `http://[::1]/...` redirect URI
    /// matches the same URI with any port (native apps listen on an ephemeral port).
    pub loopback_any_port: bool,
    /// Addresses allowed at the token, introspection and revocation endpoints; empty = any.
    pub ip_allowlist: Vec<ipnet::IpNet>,
    /// Token requests per minute (per instance); None = no limit.
    pub rate_limit_per_minute: Option<i64>,
    /// The one authentication method allowed; None = client_secret_basic or
    /// client_secret_post (public clients: none).
    pub auth_method: Option<AuthMethod>,
    /// Public keys for private_key_jwt (a JWKS document or PEM).
    pub jwks: Option<String>,
    /// The client_secret_jwt HMAC key, sealed with the master key (never shown or serialized).
    #[serde(skip)]
    pub hmac_key_sealed: Option<String>,
    /// Seconds since the epoch.
    pub created_at: i64,
    /// Seconds since the epoch.
    pub updated_at: i64,
    /// Last successful authentication (batched; may lag by the flush interval).
    pub last_used_at: Option<i64>,
}

impl Client {
    /// Whether the client may use a grant type.
    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.allowed_grant_types.contains(&grant)
    }

    /// Whether the client holds a scope (may be granted it, and a token carrying it still
    /// counts for it).
    pub fn allows_scope(&self, scope: &str) -> bool {
        self.allowed_scopes.contains(scope)
    }

    /// A client for unit tests: confidential, enabled, nothing allowed, nothing registered.
    #[cfg(test)]
    pub(crate) fn fixture(client_id: &str) -> Client {
        Client {
            id: crate::ids::ClientKey(1),
            client_id: client_id.into(),
            name: client_id.into(),
            description: String::new(),
            logo_url: None,
            public: false,
            enabled: true,
            allowed_scopes: ScopeSet::default(),
            allowed_grant_types: vec![],
            access_token_ttl: None,
            refresh_token_ttl: None,
            redirect_uris: vec![],
            ip_allowlist: vec![],
            rate_limit_per_minute: None,
            auth_method: None,
            jwks: None,
            hmac_key_sealed: None,
            loopback_any_port: false,
            created_at: 0,
            updated_at: 0,
            last_used_at: None,
        }
    }

    /// The registered redirect URIs as text, in the order they were added (for settings forms
    /// and documents).
    pub fn redirect_uri_texts(&self) -> Vec<String> {
        self.redirect_uris
            .iter()
            .map(|u| u.as_str().to_string())
            .collect()
    }

    /// The redirect URI an authorization request may use, or None: the one rule,
    /// [`redirect_uri::matching`], for this client's registered URIs.
    pub fn redirect_uri_for(&self, requested: Option<&str>) -> Option<String> {
        redirect_uri::matching(&self.redirect_uris, self.loopback_any_port, requested)
    }

    /// Whether a request from `ip` may authenticate as this client (an unknown address is
    /// refused when there is an allowlist).
    pub fn allows_ip(&self, ip: Option<std::net::IpAddr>) -> bool {
        self.ip_allowlist.is_empty()
            || ip.is_some_and(|ip| self.ip_allowlist.iter().any(|net| net.contains(&ip)))
    }
}

/// What an admin supplies to register a client.
#[derive(Debug, Clone, Default)]
pub struct NewClient {
    /// Required, unique.
    pub name: String,
    /// Optional free text.
    pub description: String,
    /// Optional http(s) URL.
    pub logo_url: Option<String>,
    /// Public (no secret) or confidential.
    pub public: bool,
    /// Scopes; may be empty.
    pub scopes: Vec<String>,
    /// Grant types; empty = the default for the client kind.
    pub grant_types: Vec<GrantType>,
    /// Access-token lifetime in seconds; None = the server default.
    pub access_token_ttl: Option<i64>,
    /// Refresh-token lifetime in seconds; None = the server default.
    pub refresh_token_ttl: Option<i64>,
    /// Redirect URIs.
    pub redirect_uris: Vec<String>,
    /// RFC 8252 7.3: loopback redirect URIs match any port.
    pub loopback_any_port: bool,
    /// IPs and CIDR ranges allowed to authenticate as the client; empty = any.
    pub ip_allowlist: Vec<String>,
    /// Token requests per minute; None = no limit.
    pub rate_limit_per_minute: Option<i64>,
    /// The one authentication method allowed; None = either client-secret method.
    pub auth_method: Option<AuthMethod>,
    /// Public keys for private_key_jwt (a JWKS document or PEM).
    pub jwks: Option<String>,
}

/// Maximum length of a client name.
pub const MAX_NAME_LEN: usize = 100;

/// Checks a client name: required, at most 100 characters, no control, bidi-control or
/// zero-width characters.
pub fn validate_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("name is required".into());
    }
    if name.chars().count() > MAX_NAME_LEN {
        return Err(format!("name must be at most {MAX_NAME_LEN} characters"));
    }
    // Shown on the consent page: no control, bidirectional-control or zero-width character,
    // so that one client cannot pass for another (see `crate::text`).
    crate::text::check_name("name", name).map_err(|e| e.to_string())?;
    Ok(name.to_string())
}

/// Checks a redirect URI for registration ([`RedirectUri::parse`]) and returns it as typed.
pub fn validate_redirect_uri(uri: &str) -> Result<String, String> {
    RedirectUri::parse(uri).map(RedirectUri::into_string)
}

/// Checks a logo URL: http or https.
pub fn validate_logo_url(uri: &str) -> Result<String, String> {
    let parsed =
        url::Url::parse(uri.trim()).map_err(|e| format!("invalid logo URL '{uri}': {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "invalid logo URL '{uri}': only http and https are allowed"
        ));
    }
    Ok(parsed.to_string())
}

/// A field of a client's settings, as forms and error messages name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientField {
    /// The display name.
    Name,
    /// The description.
    Description,
    /// The logo URL.
    LogoUrl,
    /// The allowed scopes.
    Scopes,
    /// The redirect URIs.
    RedirectUris,
    /// The allowed grant types (and rules that span them).
    GrantTypes,
    /// The client's own access-token lifetime.
    AccessTokenTtl,
    /// The client's own refresh-token lifetime.
    RefreshTokenTtl,
    /// The IP allowlist.
    IpAllowlist,
    /// The token endpoint authentication method.
    AuthMethod,
    /// The keys of a private_key_jwt client.
    Jwks,
    /// The rate limit.
    RateLimit,
}

impl ClientField {
    /// The field's name in the admin form and the JSON API.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientField::Name => "name",
            ClientField::Description => "description",
            ClientField::LogoUrl => "logo_url",
            ClientField::Scopes => "scopes",
            ClientField::RedirectUris => "redirect_uris",
            ClientField::GrantTypes => "grant_types",
            ClientField::AccessTokenTtl => "access_token_ttl",
            ClientField::RefreshTokenTtl => "refresh_token_ttl",
            ClientField::IpAllowlist => "ip_allowlist",
            ClientField::AuthMethod => "auth_method",
            ClientField::Jwks => "jwks",
            ClientField::RateLimit => "rate_limit",
        }
    }
}

/// Why a client's settings were refused: the field to show it beside, and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field at fault (for a rule spanning fields, the one to change).
    pub field: ClientField,
    /// What is wrong, for a person.
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<FieldError> for crate::error::AppError {
    fn from(e: FieldError) -> Self {
        crate::error::AppError::Invalid(e.message)
    }
}

/// Attaches `field` to a validation message.
fn at(field: ClientField) -> impl Fn(String) -> FieldError {
    move |message| FieldError { field, message }
}

impl NewClient {
    /// Validates and normalizes the input: trims, deduplicates and sorts scopes and grant
    /// types, and fills in the default grant types. The one place a client's settings are
    /// judged, whichever face they come from; the error names its field.
    pub fn validate(mut self) -> Result<NewClient, FieldError> {
        use ClientField as F;
        self.name = validate_name(&self.name).map_err(at(F::Name))?;
        self.description = self.description.trim().to_string();
        crate::text::check_multi_line("description", &self.description)
            .map_err(|e| at(F::Description)(e.to_string()))?;
        if let Some(jwks) = &self.jwks {
            crate::text::check_multi_line("jwks", jwks).map_err(|e| at(F::Jwks)(e.to_string()))?;
        }
        if self.description.chars().count() > 1000 {
            return Err(at(F::Description)(
                "description must be at most 1000 characters".into(),
            ));
        }
        self.logo_url = match self.logo_url.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(u) => Some(validate_logo_url(u).map_err(at(F::LogoUrl))?),
        };
        self.scopes = ScopeSet::from_tokens(&self.scopes)
            .map_err(at(F::Scopes))?
            .to_vec();
        let mut uris = Vec::new();
        for u in &self.redirect_uris {
            uris.push(validate_redirect_uri(u).map_err(at(F::RedirectUris))?);
        }
        uris.dedup();
        self.redirect_uris = uris;
        if self.grant_types.is_empty() {
            self.grant_types = if self.public {
                vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
            } else if self.redirect_uris.is_empty() {
                vec![GrantType::ClientCredentials]
            } else {
                GrantType::ALL.to_vec()
            };
        }
        self.grant_types.sort();
        self.grant_types.dedup();
        if self.public && self.grant_types.contains(&GrantType::ClientCredentials) {
            // RFC 6749 4.4: the client credentials grant is for confidential clients only.
            return Err(at(F::GrantTypes)(
                "a public client cannot use client_credentials (it has no secret)".into(),
            ));
        }
        if let Some(t) = self.access_token_ttl {
            crate::limits::ACCESS_TOKEN_TTL
                .check(t)
                .map_err(at(F::AccessTokenTtl))?;
        }
        if let Some(t) = self.refresh_token_ttl {
            crate::limits::REFRESH_TOKEN_TTL
                .check(t)
                .map_err(at(F::RefreshTokenTtl))?;
        }
        let mut nets = Vec::new();
        for entry in self
            .ip_allowlist
            .iter()
            .flat_map(|l| l.split([',', ' ', '\n']))
        {
            let entry = entry.trim();
            if !entry.is_empty() {
                nets.push(parse_ip_net(entry).map_err(at(F::IpAllowlist))?.to_string());
            }
        }
        nets.dedup();
        self.ip_allowlist = nets;
        self.jwks = self
            .jwks
            .take()
            .map(|j| j.trim().to_string())
            .filter(|j| !j.is_empty());
        if let Some(j) = &self.jwks {
            assertion::validate_keys(j).map_err(at(F::Jwks))?;
        }
        if self.public && self.auth_method.is_some() {
            return Err(at(F::AuthMethod)(
                "a public client authenticates with its client_id alone (method none)".into(),
            ));
        }
        if self.auth_method == Some(AuthMethod::PrivateKeyJwt) && self.jwks.is_none() {
            return Err(at(F::Jwks)(
                "private_key_jwt needs the client's public keys (a JWKS document or PEM)".into(),
            ));
        }
        if self
            .rate_limit_per_minute
            .is_some_and(|r| !(1..=1_000_000).contains(&r))
        {
            return Err(at(F::RateLimit)(
                "rate limit must be from 1 to 1000000 requests per minute".into(),
            ));
        }
        if self.grant_types.contains(&GrantType::AuthorizationCode) && self.redirect_uris.is_empty()
        {
            return Err(at(F::GrantTypes)(
                "authorization_code needs at least one redirect URI".into(),
            ));
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::redirect_uri::split_loopback;
    use super::*;

    #[test]
    fn redirect_uris_must_be_https_or_loopback_without_fragment() {
        assert!(validate_redirect_uri("https://app.example/cb").is_ok());
        assert!(validate_redirect_uri("http://127.0.0.1:8000/cb").is_ok());
        assert!(validate_redirect_uri("http://localhost/cb").is_ok());
        assert!(validate_redirect_uri("http://app.example/cb").is_err());
        assert!(validate_redirect_uri("https://app.example/cb#x").is_err());
        assert!(validate_redirect_uri("/relative").is_err());
        assert!(validate_redirect_uri("javascript:alert(1)").is_err());
    }

    #[test]
    fn redirect_uris_are_kept_as_typed() {
        assert_eq!(
            validate_redirect_uri(" https://app.example ").unwrap(),
            "https://app.example"
        );
        assert_eq!(
            validate_redirect_uri("https://APP.example:443/a/../cb").unwrap(),
            "https://APP.example:443/a/../cb"
        );
        assert!(validate_redirect_uri("https://app.example/c\tb").is_err());
        assert!(validate_redirect_uri("https://app.example\\cb").is_err());
        assert!(validate_redirect_uri("https://app.example/c b").is_err());
    }

    #[test]
    fn loopback_uris_split_only_on_ip_literals() {
        assert_eq!(
            split_loopback("http://127.0.0.1:8080/cb?x=1"),
            Some(("127.0.0.1", Some("8080"), "/cb?x=1"))
        );
        assert_eq!(
            split_loopback("http://[::1]/cb"),
            Some(("[::1]", None, "/cb"))
        );
        assert_eq!(split_loopback("http://localhost:8080/cb"), None);
        assert_eq!(split_loopback("https://127.0.0.1:8080/cb"), None);
        assert_eq!(split_loopback("http://10.0.0.1:8080/cb"), None);
        assert_eq!(split_loopback("http://127.0.0.1@evil.example/cb"), None);
    }

    fn with_uris(uris: &[&str], any_port: bool) -> Client {
        Client {
            id: ClientKey(1),
            client_id: "c".into(),
            name: "c".into(),
            description: String::new(),
            logo_url: None,
            public: true,
            enabled: true,
            allowed_scopes: ScopeSet::default(),
            allowed_grant_types: vec![GrantType::AuthorizationCode],
            access_token_ttl: None,
            refresh_token_ttl: None,
            redirect_uris: uris
                .iter()
                .map(|u| redirect_uri::RedirectUri::from_stored(u.to_string()))
                .collect(),
            loopback_any_port: any_port,
            ip_allowlist: vec![],
            rate_limit_per_minute: None,
            auth_method: None,
            jwks: None,
            hmac_key_sealed: None,
            created_at: 0,
            updated_at: 0,
            last_used_at: None,
        }
    }

    #[test]
    fn redirect_uris_match_exactly_or_on_loopback_with_any_port() {
        let exact = with_uris(&["https://app.example", "http://127.0.0.1/cb"], false);
        assert_eq!(
            exact
                .redirect_uri_for(Some("https://app.example"))
                .as_deref(),
            Some("https://app.example")
        );
        assert_eq!(exact.redirect_uri_for(Some("https://app.example/")), None);
        assert_eq!(
            exact.redirect_uri_for(Some("http://127.0.0.1:8080/cb")),
            None
        );
        assert_eq!(exact.redirect_uri_for(None), None, "two registered");
        let any = with_uris(&["http://127.0.0.1/cb", "http://[::1]:9/cb?x=1"], true);
        for ok in [
            "http://127.0.0.1:8080/cb",
            "http://127.0.0.1/cb",
            "http://[::1]/cb?x=1",
            "http://[::1]:65535/cb?x=1",
        ] {
            assert_eq!(any.redirect_uri_for(Some(ok)).as_deref(), Some(ok));
        }
        for bad in [
            "http://127.0.0.1:65536/cb",
            "http://127.0.0.1:8080/cb/",
            "http://[::1]:80/cb",
            "http://localhost:8080/cb",
            "http://127.0.0.1:8080/cb#x",
            "http://127.0.0.1:8080@evil.example/cb",
        ] {
            assert_eq!(any.redirect_uri_for(Some(bad)), None, "{bad}");
        }
        let localhost = with_uris(&["http://localhost/cb"], true);
        assert_eq!(
            localhost.redirect_uri_for(Some("http://localhost:8080/cb")),
            None
        );
    }

    #[test]
    fn scopes_follow_rfc_6749_3_3() {
        assert!(validate_scope("read:orders").is_ok());
        assert!(validate_scope("a\"b").is_err());
        assert!(validate_scope("é").is_err());
    }

    #[test]
    fn defaults_and_rules_for_grant_types() {
        let c = NewClient {
            name: " x ".into(),
            ..Default::default()
        }
        .validate()
        .unwrap();
        assert_eq!(c.name, "x");
        assert_eq!(c.grant_types, vec![GrantType::ClientCredentials]);
        let public_cc = NewClient {
            name: "p".into(),
            public: true,
            grant_types: vec![GrantType::ClientCredentials],
            ..Default::default()
        };
        assert!(public_cc.validate().is_err());
    }
}

/// Columns the clients list can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    /// The public client_id.
    ClientId,
    /// The name (case-insensitive).
    Name,
    /// The first redirect URI.
    RedirectUris,
    /// The number of secrets.
    Secrets,
    /// Enabled or disabled.
    Status,
    /// Creation time.
    Created,
    /// Last use ("Never" sorts as the oldest).
    LastUsed,
}

impl SortKey {
    /// Every key, in the order of the list's columns.
    pub const ALL: [SortKey; 7] = [
        SortKey::ClientId,
        SortKey::Name,
        SortKey::RedirectUris,
        SortKey::Secrets,
        SortKey::Status,
        SortKey::Created,
        SortKey::LastUsed,
    ];

    /// The query-string name.
    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::ClientId => "client_id",
            SortKey::Name => "name",
            SortKey::RedirectUris => "redirect_uris",
            SortKey::Secrets => "secrets",
            SortKey::Status => "status",
            SortKey::Created => "created",
            SortKey::LastUsed => "last_used",
        }
    }

    /// Parses a query-string name.
    pub fn parse(s: &str) -> Option<SortKey> {
        SortKey::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Page sizes the clients list offers.
pub const PAGE_SIZES: [i64; 4] = [10, 25, 50, 100];

/// One page of the clients list: search, sort and pagination, all done by the database.
#[derive(Debug, Clone)]
pub struct ListQuery {
    /// Case-insensitive substring of the name or the client_id.
    pub search: Option<String>,
    /// Sort column.
    pub sort: SortKey,
    /// Descending order.
    pub descending: bool,
    /// 1-based page number.
    pub page: i64,
    /// Rows per page, one of [`PAGE_SIZES`].
    pub per_page: i64,
}

impl Default for ListQuery {
    /// Newest first, 25 per page.
    fn default() -> ListQuery {
        ListQuery {
            search: None,
            sort: SortKey::Created,
            descending: true,
            page: 1,
            per_page: 25,
        }
    }
}

/// A row of the clients list.
#[derive(Debug, Clone, Serialize)]
pub struct ClientSummary {
    /// The client, with its redirect URIs.
    pub client: Client,
    /// How many secrets it has.
    pub secret_count: usize,
    /// Some secret expires within 14 days.
    pub expiring_soon: bool,
    /// It has secrets and every one has expired.
    pub all_expired: bool,
}

/// How far ahead an expiring secret is flagged in the clients list.
pub const EXPIRY_WARNING_SECONDS: i64 = 14 * crate::limits::DAY;

/// Parses an allowlist entry: an IP address (a host) or a CIDR range, IPv4 or IPv6.
pub fn parse_ip_net(entry: &str) -> Result<ipnet::IpNet, String> {
    entry
        .parse::<ipnet::IpNet>()
        .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map(|n| n.trunc())
        .map_err(|_| format!("'{entry}' is not an IP address or a CIDR range like 203.0.113.0/24 or 2001:db8::/32"))
}
