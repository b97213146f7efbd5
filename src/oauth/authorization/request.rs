//! Checks of an authorization request (RFC 6749 4.1.1, RFC 7636 4.3) made before oxide-auth's
//! flow runs, so that every refusal has the shape the RFCs require:
//!
//! - without a known, enabled client and a registered redirect URI there is nobody safe to
//!   redirect to: the user gets an error page and is NEVER redirected (RFC 6749 4.1.2.1,
//!   3.1.2.4); oxide-auth would answer `DenySilently`;
//! - everything else is redirected back with `error`, `error_description` and `state`
//!   (RFC 6749 4.1.2.1).

use crate::client::{Client, GrantType, ScopeSet};
use crate::oauth::error::ErrorCode;
use crate::oauth::scope::{Grantor, granted};

/// Why an authorization request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Show an error page with this message (status 400); never redirect.
    Page(String),
    /// Redirect to the client with this error (RFC 6749 4.1.2.1).
    Redirect {
        /// The registered redirect URI to send the error to.
        redirect_uri: String,
        /// RFC 6749 4.1.2.1 error code.
        error: ErrorCode,
        /// Human-readable description.
        description: String,
        /// The client's `state`, echoed unchanged.
        state: Option<String>,
    },
}

/// Adds `iss` (RFC 9207 2) to an authorization response, success or error: the client checks
/// that the response comes from the authorization server it sent the person to (a defence
/// against mix-up attacks, RFC 9700 4.4). Every redirect to a client goes through here.
pub fn with_iss(mut url: url::Url, issuer: &str) -> url::Url {
    url.query_pairs_mut().append_pair("iss", issuer);
    url
}

impl Refusal {
    /// The redirect URL of a redirecting refusal: the error parameters appended to the
    /// registered URI's own query (RFC 6749 3.1.2: its query component is kept), with `iss`
    /// (RFC 9207 2).
    pub fn location(&self, issuer: &str) -> Option<url::Url> {
        let Refusal::Redirect {
            redirect_uri,
            error,
            description,
            state,
        } = self
        else {
            return None;
        };
        let mut url = url::Url::parse(redirect_uri).ok()?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("error", error.as_str());
            q.append_pair("error_description", description);
            if let Some(s) = state {
                q.append_pair("state", s);
            }
        }
        Some(with_iss(url, issuer))
    }
}

/// The parameters of an authorization request, each present at most once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizeParams {
    /// `client_id`
    pub client_id: Option<String>,
    /// `redirect_uri`
    pub redirect_uri: Option<String>,
    /// `response_type`
    pub response_type: Option<String>,
    /// `scope`
    pub scope: Option<String>,
    /// `state`
    pub state: Option<String>,
    /// `code_challenge` (RFC 7636 4.3)
    pub code_challenge: Option<String>,
    /// `code_challenge_method` (RFC 7636 4.3)
    pub code_challenge_method: Option<String>,
    /// `prompt` (OpenID Connect Core 3.1.2.1)
    pub prompt: Option<String>,
}

/// The `prompt` parameter (OpenID Connect Core 3.1.2.1): a space-delimited list of `none`,
/// `login` and `consent`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompt {
    /// `none`: show no page at all; `login_required` / `consent_required` instead
    /// (OpenID Connect Core 3.1.2.6).
    pub none: bool,
    /// `login`: the person signs in again, even with a live session.
    pub login: bool,
    /// `consent`: the consent page is shown, even when consent was remembered.
    pub consent: bool,
}

impl Prompt {
    /// Parses the parameter. An unknown value, or `none` with any other value (OpenID Connect
    /// Core 3.1.2.1), is refused with this description (`invalid_request`).
    pub fn parse(value: Option<&str>) -> Result<Prompt, String> {
        let mut p = Prompt::default();
        for v in value.unwrap_or("").split(' ').filter(|v| !v.is_empty()) {
            match v {
                "none" => p.none = true,
                "login" => p.login = true,
                "consent" => p.consent = true,
                other => {
                    return Err(format!(
                        "prompt '{other}' is not supported; use none, login or consent"
                    ));
                }
            }
        }
        if p.none && (p.login || p.consent) {
            return Err("prompt=none cannot be combined with other values".into());
        }
        Ok(p)
    }
}

impl AuthorizeParams {
    /// Parses a query string. A repeated parameter is refused (RFC 6749 3.1: "Request and
    /// response parameters MUST NOT be included more than once"); as the client cannot be
    /// trusted yet, that refusal is a page.
    pub fn parse(query: &str) -> Result<AuthorizeParams, Refusal> {
        let mut p = AuthorizeParams::default();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            let slot = match k.as_ref() {
                "client_id" => &mut p.client_id,
                "redirect_uri" => &mut p.redirect_uri,
                "response_type" => &mut p.response_type,
                "scope" => &mut p.scope,
                "state" => &mut p.state,
                "code_challenge" => &mut p.code_challenge,
                "code_challenge_method" => &mut p.code_challenge_method,
                "prompt" => &mut p.prompt,
                // RFC 6749 3.1: unrecognized parameters are ignored.
                _ => continue,
            };
            if slot.is_some() {
                return Err(Refusal::Page(format!(
                    "The parameter '{k}' appears more than once in this authorization request."
                )));
            }
            *slot = Some(v.into_owned());
        }
        Ok(p)
    }
}

/// An authorization request that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The registered redirect URI the response goes to.
    pub redirect_uri: String,
    /// Whether the request named it (then the token request must too, RFC 6749 4.1.3).
    pub redirect_uri_given: bool,
    /// Requested scopes, sorted; the client's allowed scopes when none were requested.
    pub scopes: ScopeSet,
    /// The client's `state`.
    pub state: Option<String>,
    /// The S256 code challenge, if any.
    pub code_challenge: Option<String>,
    /// What the client asked to be shown (or not).
    pub prompt: Prompt,
}

impl Checked {
    /// A refusal sent back to the client (RFC 6749 4.1.2.1).
    pub fn refuse(&self, error: ErrorCode, description: &str) -> Refusal {
        Refusal::Redirect {
            redirect_uri: self.redirect_uri.clone(),
            error,
            description: description.into(),
            state: self.state.clone(),
        }
    }
}

/// RFC 7636 4.1/4.2: a code challenge or verifier is 43 to 128 characters of
/// `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`.
pub fn is_pkce_value(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Whether the client must use PKCE: public clients must (RFC 7636 1, RFC 9700 2.1.1: their
/// client_id proves nothing, so the code's only protection is the verifier). The one rule,
/// asked by [`check`] and, for every code exchange, by `codes::verify_pkce`.
pub fn pkce_required(client: &Client) -> bool {
    client.public
}

/// The one judge of an authorization request: checks it against its client (None = unknown
/// client_id). What it accepts, [`crate::oauth::codes::new_code`] carries out.
pub fn check(params: &AuthorizeParams, client: Option<&Client>) -> Result<Checked, Refusal> {
    let Some(client_id) = params.client_id.as_deref() else {
        return Err(Refusal::Page(
            "This authorization request names no application (client_id is missing).".into(),
        ));
    };
    let Some(client) = client.filter(|c| c.client_id == client_id) else {
        return Err(Refusal::Page(
            "The application that sent you here is not registered with this server.".into(),
        ));
    };
    if !client.enabled {
        return Err(Refusal::Page(
            "The application that sent you here has been disabled by the administrators.".into(),
        ));
    }
    // The one rule for redirect URIs (exact string; RFC 8252 7.3 loopback ports on opt-in).
    let Some(redirect_uri) = client.redirect_uri_for(params.redirect_uri.as_deref()) else {
        return Err(Refusal::Page(match params.redirect_uri {
            Some(_) => "The address this application asked to return you to is not registered for it, so you were not sent there.".into(),
            None => "This authorization request does not say where to return you (redirect_uri is missing).".into(),
        }));
    };
    let state = params.state.clone();
    let refuse = |error: ErrorCode, description: String| Refusal::Redirect {
        redirect_uri: redirect_uri.clone(),
        error,
        description,
        state: state.clone(),
    };
    match params.response_type.as_deref() {
        Some("code") => {}
        None => {
            return Err(refuse(
                ErrorCode::InvalidRequest,
                "response_type is required".into(),
            ));
        }
        Some(other) => {
            return Err(refuse(
                ErrorCode::UnsupportedResponseType,
                format!("response_type '{other}' is not supported; use 'code'"),
            ));
        }
    }
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(refuse(
            ErrorCode::UnauthorizedClient,
            "this client may not use the authorization code grant".into(),
        ));
    }
    // RFC 7636 4.3/4.4.1 and RFC 9700 2.1.1: S256 only. A missing method means `plain`
    // (RFC 7636 4.3), which is refused like an explicit `plain`.
    let code_challenge = match (
        params.code_challenge.as_deref(),
        params.code_challenge_method.as_deref(),
    ) {
        (None, None) if pkce_required(client) => {
            return Err(refuse(
                ErrorCode::InvalidRequest,
                "code_challenge is required: public clients must use PKCE with S256 (RFC 7636)"
                    .into(),
            ));
        }
        (None, None) => None,
        (None, Some(_)) => {
            return Err(refuse(
                ErrorCode::InvalidRequest,
                "code_challenge_method was sent without code_challenge".into(),
            ));
        }
        (Some(_), None | Some("plain")) => {
            return Err(refuse(
                ErrorCode::InvalidRequest,
                "code_challenge_method must be S256; plain is not supported (RFC 7636 4.4.1)"
                    .into(),
            ));
        }
        (Some(_), Some(m)) if m != "S256" => {
            return Err(refuse(
                ErrorCode::InvalidRequest,
                format!("code_challenge_method '{m}' is not supported; use S256"),
            ));
        }
        (Some(c), Some(_)) if !is_pkce_value(c) => {
            return Err(refuse(
                ErrorCode::InvalidRequest,
                "code_challenge must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636 4.2)"
                    .into(),
            ));
        }
        (Some(c), Some(_)) => Some(c.to_string()),
    };
    let prompt = Prompt::parse(params.prompt.as_deref())
        .map_err(|d| refuse(ErrorCode::InvalidRequest, d))?;
    // RFC 6749 3.3, 4.1.2.1 `invalid_scope`: server scopes are never granted here.
    let scopes = granted(client, params.scope.as_deref(), Grantor::Person)
        .map_err(|d| refuse(ErrorCode::InvalidScope, d))?;
    Ok(Checked {
        redirect_uri,
        redirect_uri_given: params.redirect_uri.is_some(),
        scopes,
        state,
        code_challenge,
        prompt,
    })
}

/// A scope in plain words for the consent page: `invoices:read` is "Read your invoices".
pub fn describe_scope(scope: &str) -> String {
    let known = match scope {
        "openid" => Some("Confirm who you are"),
        "profile" => Some("See your basic profile"),
        "email" => Some("See your email address"),
        "offline_access" => Some("Keep access while you are away"),
        "read" => Some("Read your data"),
        "write" => Some("Change your data"),
        _ => None,
    };
    if let Some(k) = known {
        return k.to_string();
    }
    let parts: Vec<&str> = scope
        .split([':', '.', '/'])
        .filter(|p| !p.is_empty())
        .collect();
    let verb = |v: &str| match v {
        "read" | "view" | "get" | "list" => Some("Read"),
        "write" | "edit" | "update" | "create" => Some("Change"),
        "delete" | "remove" => Some("Delete"),
        "admin" | "manage" => Some("Manage"),
        _ => None,
    };
    let words = |s: &str| s.replace(['_', '-'], " ");
    match parts.as_slice() {
        [resource, action] => match verb(action).or_else(|| verb(resource)) {
            Some(v) if verb(action).is_some() => format!("{v} your {}", words(resource)),
            Some(v) => format!("{v} your {}", words(action)),
            None => format!("Use \"{}\"", scope),
        },
        _ => format!("Use \"{}\"", scope),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn client(public: bool, uris: &[&str]) -> Client {
        Client {
            public,
            allowed_scopes: ScopeSet::parse("invoices:read invoices:write").unwrap(),
            allowed_grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            redirect_uris: uris
                .iter()
                .map(|s| crate::client::RedirectUri::from_stored(s.to_string()))
                .collect(),
            name: "App".into(),
            ..Client::fixture("app")
        }
    }

    fn params(q: &str) -> AuthorizeParams {
        AuthorizeParams::parse(q).unwrap()
    }

    fn redirect_error(r: Result<Checked, Refusal>) -> &'static str {
        match r {
            Err(Refusal::Redirect { error, .. }) => error.as_str(),
            other => panic!("expected a redirect, got {other:?}"),
        }
    }

    #[test]
    fn a_good_request_passes_with_sorted_scopes() {
        let c = client(true, &["https://app.example.com/cb"]);
        let p = params(&format!(
            "response_type=code&client_id=app&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb&scope=invoices:write%20invoices:read&state=xyz&code_challenge={CHALLENGE}&code_challenge_method=S256"
        ));
        let ok = check(&p, Some(&c)).unwrap();
        assert_eq!(ok.redirect_uri, "https://app.example.com/cb");
        assert!(ok.redirect_uri_given);
        assert_eq!(ok.scopes.to_vec(), ["invoices:read", "invoices:write"]);
        assert_eq!(ok.state.as_deref(), Some("xyz"));
        assert_eq!(ok.code_challenge.as_deref(), Some(CHALLENGE));
    }

    #[test]
    fn malicious_redirect_uris_are_never_redirected_to() {
        let c = client(false, &["https://app.example.com/cb"]);
        let evil = [
            "https://app.example.com/cb/",
            "https://app.example.com/cb/../cb",
            "https://app.example.com/cbx",
            "https://app.example.com/c",
            "https://app.example.com/cb?x=1",
            "https://app.example.com/cb#frag",
            "https://app.example.com/cb%2F..%2Fevil",
            "https://app.example.com/%63b",
            "https://app.example.com:443/cb",
            "https://app.example.com:8443/cb",
            "http://app.example.com/cb",
            "HTTPS://app.example.com/cb",
            "https://APP.example.com/cb",
            "https://app.example.com./cb",
            "https://app.example.com.evil.example/cb",
            "https://evil.example/app.example.com/cb",
            "https://app.example.com@evil.example/cb",
            "https://user@app.example.com/cb",
            "https://evil.example/?next=https://app.example.com/cb",
            "https://xn--pp-8ja.example.com/cb",
            "https://аpp.example.com/cb",
            "//app.example.com/cb",
            "https://app.example.com\\@evil.example/cb",
            " https://app.example.com/cb",
            "https://app.example.com/cb\u{0}",
            "javascript:alert(1)//https://app.example.com/cb",
        ];
        for uri in evil {
            let q = format!(
                "response_type=code&client_id=app&redirect_uri={}&state=s",
                url::form_urlencoded::byte_serialize(uri.as_bytes()).collect::<String>()
            );
            let refusal = check(&params(&q), Some(&c)).unwrap_err();
            assert!(
                matches!(refusal, Refusal::Page(_)),
                "{uri:?} must get an error page, got {refusal:?}"
            );
            assert_eq!(refusal.location("https://as.example"), None);
        }
    }

    #[test]
    fn unknown_disabled_or_missing_client_is_a_page() {
        let mut c = client(false, &["https://app.example.com/cb"]);
        assert!(matches!(
            check(&params("response_type=code&client_id=other"), Some(&c)),
            Err(Refusal::Page(_))
        ));
        assert!(matches!(
            check(&params("response_type=code&client_id=app"), None),
            Err(Refusal::Page(_))
        ));
        assert!(matches!(
            check(&params("response_type=code"), Some(&c)),
            Err(Refusal::Page(_))
        ));
        c.enabled = false;
        assert!(matches!(
            check(&params("response_type=code&client_id=app"), Some(&c)),
            Err(Refusal::Page(_))
        ));
    }

    #[test]
    fn redirect_uri_may_be_omitted_only_with_one_registered() {
        let one = client(false, &["https://app.example.com/cb"]);
        let ok = check(&params("response_type=code&client_id=app"), Some(&one)).unwrap();
        assert_eq!(ok.redirect_uri, "https://app.example.com/cb");
        assert!(!ok.redirect_uri_given);
        let two = client(
            false,
            &["https://app.example.com/cb", "https://app.example.com/cb2"],
        );
        assert!(matches!(
            check(&params("response_type=code&client_id=app"), Some(&two)),
            Err(Refusal::Page(_))
        ));
    }

    #[test]
    fn repeated_parameters_are_a_page() {
        assert!(matches!(
            AuthorizeParams::parse("client_id=app&client_id=evil"),
            Err(Refusal::Page(_))
        ));
    }

    #[test]
    fn errors_after_the_redirect_check_go_back_with_state() {
        let c = client(true, &["https://app.example.com/cb?tenant=1"]);
        let base = "client_id=app&state=st%20ate";
        let r = check(&params(&format!("{base}&response_type=token")), Some(&c));
        let loc = r
            .clone()
            .unwrap_err()
            .location("https://as.example")
            .unwrap();
        assert_eq!(loc.host_str(), Some("app.example.com"));
        let q: Vec<(String, String)> = loc.query_pairs().into_owned().collect();
        assert!(q.contains(&("tenant".into(), "1".into())), "{q:?}");
        assert!(q.contains(&("error".into(), "unsupported_response_type".into())));
        assert!(q.contains(&("state".into(), "st ate".into())));
        assert!(q.iter().any(|(k, _)| k == "error_description"));
        assert!(q.contains(&("iss".into(), "https://as.example".into())));
        assert_eq!(redirect_error(r), "unsupported_response_type");
        assert_eq!(
            redirect_error(check(&params(base), Some(&c))),
            "invalid_request"
        );
    }

    #[test]
    fn pkce_rules() {
        let public = client(true, &["https://app.example.com/cb"]);
        let confidential = client(false, &["https://app.example.com/cb"]);
        let base = "response_type=code&client_id=app";
        // Required for public clients, optional for confidential ones.
        assert_eq!(
            redirect_error(check(&params(base), Some(&public))),
            "invalid_request"
        );
        assert!(check(&params(base), Some(&confidential)).is_ok());
        for bad in [
            format!("code_challenge={CHALLENGE}"),
            format!("code_challenge={CHALLENGE}&code_challenge_method=plain"),
            format!("code_challenge={CHALLENGE}&code_challenge_method=S512"),
            "code_challenge=short&code_challenge_method=S256".to_string(),
            format!(
                "code_challenge={}%21&code_challenge_method=S256",
                &CHALLENGE[1..]
            ),
            "code_challenge_method=S256".to_string(),
        ] {
            for c in [&public, &confidential] {
                assert_eq!(
                    redirect_error(check(&params(&format!("{base}&{bad}")), Some(c))),
                    "invalid_request",
                    "{bad}"
                );
            }
        }
    }

    #[test]
    fn scopes_must_be_allowed_and_default_to_all() {
        let c = client(false, &["https://app.example.com/cb"]);
        let base = "response_type=code&client_id=app";
        assert_eq!(
            redirect_error(check(&params(&format!("{base}&scope=admin")), Some(&c))),
            "invalid_scope"
        );
        let all = check(&params(base), Some(&c)).unwrap();
        assert_eq!(all.scopes.to_vec(), ["invoices:read", "invoices:write"]);
        let one = check(&params(&format!("{base}&scope=invoices:read")), Some(&c)).unwrap();
        assert_eq!(one.scopes.to_vec(), ["invoices:read"]);
    }

    #[test]
    fn server_scopes_are_never_requested_or_defaulted() {
        let mut c = client(false, &["https://app.example.com/cb"]);
        c.allowed_scopes = c
            .allowed_scopes
            .union(&ScopeSet::parse("portcullis:admin").unwrap());
        let base = "response_type=code&client_id=app";
        assert_eq!(
            redirect_error(check(
                &params(&format!("{base}&scope=portcullis:admin")),
                Some(&c)
            )),
            "invalid_scope"
        );
        let all = check(&params(base), Some(&c)).unwrap();
        assert_eq!(all.scopes.to_vec(), ["invoices:read", "invoices:write"]);
    }

    #[test]
    fn prompt_values() {
        assert_eq!(Prompt::parse(None), Ok(Prompt::default()));
        let p = Prompt::parse(Some("login consent")).unwrap();
        assert!(p.login && p.consent && !p.none);
        assert!(Prompt::parse(Some("none")).unwrap().none);
        assert!(Prompt::parse(Some("none login")).is_err());
        assert!(Prompt::parse(Some("select_account")).is_err());
        let c = client(false, &["https://app.example.com/cb"]);
        assert_eq!(
            redirect_error(check(
                &params("response_type=code&client_id=app&prompt=bogus"),
                Some(&c)
            )),
            "invalid_request"
        );
    }

    #[test]
    fn client_without_the_code_grant_is_unauthorized() {
        let mut c = client(false, &["https://app.example.com/cb"]);
        c.allowed_grant_types = vec![GrantType::ClientCredentials];
        assert_eq!(
            redirect_error(check(&params("response_type=code&client_id=app"), Some(&c))),
            "unauthorized_client"
        );
    }

    #[test]
    fn scopes_in_plain_words() {
        assert_eq!(describe_scope("invoices:read"), "Read your invoices");
        assert_eq!(
            describe_scope("write:user_profiles"),
            "Change your user profiles"
        );
        assert_eq!(describe_scope("email"), "See your email address");
        assert_eq!(describe_scope("weird"), "Use \"weird\"");
    }

    #[test]
    fn pkce_values() {
        assert!(is_pkce_value(CHALLENGE));
        assert!(!is_pkce_value(&"a".repeat(42)));
        assert!(is_pkce_value(&"a".repeat(128)));
        assert!(!is_pkce_value(&"a".repeat(129)));
        assert!(!is_pkce_value(&format!("{}=", &CHALLENGE[1..])));
    }
}
