//! The token, introspection and revocation requests as parsed from HTTP ([`ClientRequest`],
//! [`TokenRequest`]), our response type ([`OAuthResponse`]), and the request checks
//! oxide-auth does not make.
//!
//! oxide-auth 0.6.1 deviates from the RFCs in ways corrected here and in `grants`:
//! - error JSON uses `description`/`uri`; RFC 6749 5.2 says `error_description`/`error_uri`:
//!   we write every response body ourselves;
//! - scope strings come out in hash-set order; we sort them;
//! - Basic credentials are not form-urldecoded (RFC 6749 2.3.1 requires it): we decode them
//!   before oxide-auth's state machines see them;
//! - duplicated parameters, a missing client authentication and non-form bodies do not get
//!   the error codes RFC 6749 5.2 names: [`TokenRequest::parse`] answers them first.

use crate::client::GrantType;
use crate::oauth::error::ErrorCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Largest accepted token-endpoint body. A token request is a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// A response of an OAuth endpoint, independent of the web framework (it crosses the
/// blocking-thread boundary, so it is plain data).
#[derive(Debug, Clone, Default)]
pub struct OAuthResponse {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: String,
    /// Send `WWW-Authenticate: Basic realm="portcullis"` (RFC 6749 5.2: the client used Basic).
    pub basic_challenge: bool,
    /// Send `Retry-After` with this many seconds (rate limited).
    pub retry_after: Option<u64>,
}

impl OAuthResponse {
    /// An RFC 6749 5.2 error response.
    pub fn error(status: u16, error: ErrorCode, description: &str) -> OAuthResponse {
        OAuthResponse {
            status,
            body: serde_json::json!({ "error": error, "error_description": description })
                .to_string(),
            ..Default::default()
        }
    }

    /// 400 `invalid_request`.
    pub fn invalid_request(description: &str) -> OAuthResponse {
        OAuthResponse::error(400, ErrorCode::InvalidRequest, description)
    }

    /// 401 `invalid_client`, with the Basic challenge when the client used Basic.
    pub fn invalid_client(description: &str, basic: bool) -> OAuthResponse {
        OAuthResponse {
            basic_challenge: basic,
            ..OAuthResponse::error(401, ErrorCode::InvalidClient, description)
        }
    }

    /// 503 `temporarily_unavailable` (RFC 6749 5.2 lists it for the authorization endpoint;
    /// the token endpoint uses it the same way) with `Retry-After`: the server is overloaded
    /// or its database is unreachable, and the client should retry.
    pub fn temporarily_unavailable(retry_after: u64) -> OAuthResponse {
        OAuthResponse {
            retry_after: Some(retry_after),
            ..OAuthResponse::error(
                503,
                ErrorCode::TemporarilyUnavailable,
                "the server is busy or its database is unavailable; retry later",
            )
        }
    }

    /// 429 with `Retry-After` (RFC 6585 4): a limit was reached.
    pub fn too_many_requests(description: &str, retry_after: u64) -> OAuthResponse {
        OAuthResponse {
            retry_after: Some(retry_after),
            ..OAuthResponse::error(429, ErrorCode::TooManyRequests, description)
        }
    }

    /// The answer to a storage failure: 503 `temporarily_unavailable` with `Retry-After` when
    /// the database is unavailable ([`AppError::is_unavailable`]; RFC 6749 5.2), else 500
    /// `server_error`.
    pub fn storage_failed(e: &crate::error::AppError) -> OAuthResponse {
        if e.is_unavailable() {
            OAuthResponse::temporarily_unavailable(crate::error::UNAVAILABLE_RETRY_AFTER)
        } else {
            OAuthResponse::server_error()
        }
    }

    /// 500 `server_error` with an opaque description.
    pub fn server_error() -> OAuthResponse {
        OAuthResponse::error(
            500,
            ErrorCode::ServerError,
            "the server could not complete the request",
        )
    }
}

/// How the client authenticated (RFC 6749 2.3.1), with form-urldecoded values.
#[derive(Clone, PartialEq, Eq)]
pub enum ClientAuth {
    /// `Authorization: Basic` (client_secret_basic).
    Basic {
        /// client_id
        id: String,
        /// client_secret
        secret: String,
    },
    /// `client_id` and `client_secret` in the body (client_secret_post).
    Post {
        /// client_id
        id: String,
        /// client_secret
        secret: String,
    },
    /// A JWT client assertion (RFC 7523 2.2: private_key_jwt).
    Assertion {
        /// The client it names (its `sub`, verified with the assertion).
        id: String,
        /// The JWT.
        assertion: String,
    },
    /// Only `client_id` in the body: a public client (RFC 6749 3.2.1).
    IdOnly {
        /// client_id
        id: String,
    },
    /// No client identification at all.
    None,
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientAuth::Basic { id, .. } => write!(f, "Basic({id}, <redacted>)"),
            ClientAuth::Post { id, .. } => write!(f, "Post({id}, <redacted>)"),
            ClientAuth::Assertion { id, .. } => write!(f, "Assertion({id}, <redacted>)"),
            ClientAuth::IdOnly { id } => write!(f, "IdOnly({id})"),
            ClientAuth::None => write!(f, "None"),
        }
    }
}

impl ClientAuth {
    /// The client_id, if any.
    pub fn client_id(&self) -> Option<&str> {
        match self {
            ClientAuth::Basic { id, .. }
            | ClientAuth::Post { id, .. }
            | ClientAuth::Assertion { id, .. }
            | ClientAuth::IdOnly { id } => Some(id),
            ClientAuth::None => None,
        }
    }

    /// True for client_secret_basic.
    pub fn is_basic(&self) -> bool {
        matches!(self, ClientAuth::Basic { .. })
    }

    /// The client id and the credential it presented (secret or assertion), if any.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        match self {
            ClientAuth::Basic { id, secret } | ClientAuth::Post { id, secret } => {
                Some((id, secret))
            }
            ClientAuth::Assertion { id, assertion } => Some((id, assertion)),
            ClientAuth::IdOnly { .. } | ClientAuth::None => None,
        }
    }
}

/// A request to an endpoint where clients authenticate (token, introspection, revocation):
/// a form body with each parameter once, and the client's authentication (RFC 6749 2.3).
pub struct ClientRequest {
    /// Every parameter except the client credentials, each present once.
    pub params: Vec<(String, String)>,
    /// The client's authentication.
    pub auth: ClientAuth,
    /// The client's address (for IP allowlists); None when unknown.
    pub client_ip: Option<std::net::IpAddr>,
}

impl std::fmt::Debug for ClientRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientRequest")
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl ClientRequest {
    /// Checks the body and the client authentication as RFC 6749 2.3 and 3.2 require.
    pub fn parse(
        content_type: Option<&str>,
        authorization: Option<&str>,
        body: &[u8],
    ) -> Result<ClientRequest, OAuthResponse> {
        // RFC 6749 3.2 (and RFC 7662 2.1, RFC 7009 2.1): parameters are sent "using the
        // application/x-www-form-urlencoded format".
        let is_form = content_type
            .and_then(|ct| ct.split(';').next())
            .is_some_and(|mime| {
                mime.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !is_form {
            return Err(OAuthResponse::invalid_request(
                "this endpoint accepts only application/x-www-form-urlencoded bodies (RFC 6749 3.2)",
            ));
        }
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).map_err(|_| {
            OAuthResponse::invalid_request("the request body is not valid form data")
        })?;
        // RFC 6749 Appendix A: every parameter is printable text; a control character (a NUL
        // that PostgreSQL cannot store, ...) is refused before anything is looked up.
        for (k, v) in &pairs {
            crate::text::check_single_line(k, k)
                .and_then(|()| crate::text::check_single_line(k, v))
                .map_err(|e| OAuthResponse::invalid_request(&e.to_string()))?;
        }
        // RFC 6749 3.2: "Request and response parameters MUST NOT be included more than once."
        let mut seen: Vec<&str> = Vec::with_capacity(pairs.len());
        for (k, _) in &pairs {
            if seen.contains(&k.as_str()) {
                return Err(OAuthResponse::invalid_request(&format!(
                    "parameter '{k}' is repeated (RFC 6749 3.2)"
                )));
            }
            seen.push(k);
        }
        let mut params: Vec<(String, String)> = Vec::with_capacity(pairs.len());
        let mut body_id = None;
        let mut body_secret = None;
        let mut assertion_type = None;
        let mut assertion = None;
        for (k, v) in pairs {
            match k.as_str() {
                "client_id" => body_id = Some(v),
                "client_secret" => body_secret = Some(v),
                "client_assertion_type" => assertion_type = Some(v),
                "client_assertion" => assertion = Some(v),
                // RFC 6749 3.3 / 4.4.2: an empty scope is the same as none.
                "scope" if v.trim().is_empty() => {}
                _ => params.push((k, v)),
            }
        }
        let basic = match authorization {
            None => None,
            Some(h) => Some(parse_basic(h)?),
        };
        // RFC 7523 2.2 / RFC 7521 4.2: a JWT assertion replaces the secret.
        if assertion.is_some() || assertion_type.is_some() {
            if basic.is_some() || body_secret.is_some() {
                return Err(OAuthResponse::invalid_request(
                    "the client sent a client_assertion and another credential; use exactly one method (RFC 6749 2.3)",
                ));
            }
            if assertion_type.as_deref() != Some(crate::client::assertion::JWT_BEARER) {
                return Err(OAuthResponse::invalid_request(&format!(
                    "client_assertion_type must be {} (RFC 7523 2.2)",
                    crate::client::assertion::JWT_BEARER
                )));
            }
            let Some(assertion) = assertion else {
                return Err(OAuthResponse::invalid_request(
                    "client_assertion_type was sent without client_assertion",
                ));
            };
            let Some(claimed) = crate::client::assertion::claimed_client(&assertion) else {
                return Err(OAuthResponse::invalid_client(
                    "the client_assertion is not a JWT with a sub claim",
                    false,
                ));
            };
            if body_id.as_ref().is_some_and(|id| *id != claimed) {
                return Err(OAuthResponse::invalid_client(
                    "client_id differs from the client_assertion's sub",
                    false,
                ));
            }
            return Ok(ClientRequest {
                params,
                auth: ClientAuth::Assertion {
                    id: claimed,
                    assertion,
                },
                client_ip: None,
            });
        }
        // RFC 6749 2.3: "The client MUST NOT use more than one authentication method in each request."
        let auth = match (basic, body_id, body_secret) {
            (Some(_), _, Some(_)) => {
                return Err(OAuthResponse::invalid_request(
                    "the client authenticated with both HTTP Basic and client_secret in the body; use exactly one method (RFC 6749 2.3)",
                ));
            }
            (Some((id, secret)), Some(body_id), None) => {
                if body_id != id {
                    return Err(OAuthResponse::invalid_request(
                        "client_id in the body differs from the one in the Authorization header",
                    ));
                }
                ClientAuth::Basic { id, secret }
            }
            (Some((id, secret)), None, None) => ClientAuth::Basic { id, secret },
            (None, Some(id), Some(secret)) => ClientAuth::Post { id, secret },
            (None, Some(id), None) => ClientAuth::IdOnly { id },
            (None, None, Some(_)) => {
                return Err(OAuthResponse::invalid_request(
                    "client_secret was sent without client_id",
                ));
            }
            (None, None, None) => ClientAuth::None,
        };
        Ok(ClientRequest {
            params,
            auth,
            client_ip: None,
        })
    }

    /// The value of a parameter.
    pub fn param(&self, key: &str) -> Option<&str> {
        param(&self.params, key)
    }
}

fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// A token request that passed the checks common to every grant type.
pub struct TokenRequest {
    /// The `grant_type` parameter, one the token endpoint knows.
    pub grant_type: GrantType,
    /// Every parameter except the client credentials, each present once.
    pub params: Vec<(String, String)>,
    /// The client's authentication.
    pub auth: ClientAuth,
    /// The client's address (for IP allowlists); None when unknown.
    pub client_ip: Option<std::net::IpAddr>,
}

impl std::fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRequest")
            .field("grant_type", &self.grant_type)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl TokenRequest {
    /// Checks the request as RFC 6749 3.2 and 5.2 require, before any grant-specific work.
    pub fn parse(
        content_type: Option<&str>,
        authorization: Option<&str>,
        body: &[u8],
    ) -> Result<TokenRequest, OAuthResponse> {
        TokenRequest::from_client(ClientRequest::parse(content_type, authorization, body)?)
    }

    /// Checks the token-endpoint parameters of a parsed client request.
    pub fn from_client(request: ClientRequest) -> Result<TokenRequest, OAuthResponse> {
        let ClientRequest {
            params,
            auth,
            client_ip,
        } = request;
        let grant_type = match params.iter().find(|(k, _)| k == "grant_type") {
            None => {
                return Err(OAuthResponse::invalid_request(
                    "missing parameter: grant_type (RFC 6749 4.4.2)",
                ));
            }
            // RFC 6749 5.2: a grant type the server does not know.
            Some((_, g)) => match GrantType::parse(g) {
                Some(grant) => grant,
                None => {
                    let known: Vec<&str> = GrantType::ALL.iter().map(|g| g.as_str()).collect();
                    return Err(OAuthResponse::error(
                        400,
                        ErrorCode::UnsupportedGrantType,
                        &format!(
                            "grant_type '{g}' is not supported; supported: {}",
                            known.join(", ")
                        ),
                    ));
                }
            },
        };
        if let Some((_, scope)) = params.iter().find(|(k, _)| k == "scope") {
            for s in scope.split(' ').filter(|s| !s.is_empty()) {
                if let Err(msg) = crate::client::validate_scope(s) {
                    return Err(OAuthResponse::error(400, ErrorCode::InvalidScope, &msg));
                }
            }
        }
        Ok(TokenRequest {
            grant_type,
            params,
            auth,
            client_ip,
        })
    }

    /// The value of a parameter.
    pub fn param(&self, key: &str) -> Option<&str> {
        param(&self.params, key)
    }
}

/// Parses `Authorization: Basic`, form-urldecoding id and secret (RFC 6749 2.3.1).
/// Anything else is `invalid_client` (RFC 6749 5.2: unsupported authentication method).
fn parse_basic(header: &str) -> Result<(String, String), OAuthResponse> {
    let fail = |why: &str| OAuthResponse::invalid_client(why, true);
    let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(fail(
            "only the Basic authentication scheme is accepted at the token endpoint",
        ));
    }
    let decoded = STANDARD
        .decode(rest.trim())
        .map_err(|_| fail("the Basic credentials are not valid base64"))?;
    let decoded =
        String::from_utf8(decoded).map_err(|_| fail("the Basic credentials are not UTF-8"))?;
    let (id, secret) = decoded.split_once(':').ok_or_else(|| {
        fail("the Basic credentials have no ':' between client_id and client_secret")
    })?;
    // application/x-www-form-urlencoded: '+' is a space, then percent-decoding.
    let decode = |s: &str| -> String {
        url::form_urlencoded::parse(format!("x={}", s.replace('&', "%26")).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let (id, secret) = (decode(id), decode(secret));
    if id.is_empty() {
        return Err(fail("the Basic credentials have an empty client_id"));
    }
    // Control characters: refused as in the body (see `crate::text`).
    crate::text::check_single_line("client_id", &id)
        .and_then(|()| crate::text::check_single_line("client_secret", &secret))
        .map_err(|e| OAuthResponse::invalid_request(&e.to_string()))?;
    Ok((id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

    #[test]
    fn basic_credentials_are_form_urldecoded() {
        let header = format!("Basic {}", STANDARD.encode("my%20client:p%2Bss+word%3A"));
        let req =
            TokenRequest::parse(FORM, Some(&header), b"grant_type=client_credentials").unwrap();
        assert_eq!(
            req.auth,
            ClientAuth::Basic {
                id: "my client".into(),
                secret: "p+ss word:".into()
            }
        );
    }

    #[test]
    fn rfc_6749_request_errors() {
        let err =
            |ct, auth, body: &str| TokenRequest::parse(ct, auth, body.as_bytes()).unwrap_err();
        assert!(
            err(
                FORM,
                None,
                "grant_type=client_credentials&grant_type=client_credentials"
            )
            .body
            .contains("repeated")
        );
        assert!(
            err(FORM, None, "grant_type=password")
                .body
                .contains("unsupported_grant_type")
        );
        assert!(err(FORM, None, "scope=a").body.contains("invalid_request"));
        assert!(
            err(Some("application/json"), None, "{}")
                .body
                .contains("invalid_request")
        );
        assert_eq!(
            err(FORM, Some("Bearer x"), "grant_type=client_credentials").status,
            401
        );
    }
}
