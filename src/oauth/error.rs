//! The error codes of the OAuth endpoints, each documented with the text of the RFC that
//! defines it (as oxide-auth's `AccessTokenErrorType` does). Responses carry them as the
//! `error` member (RFC 6749 5.2), the `error` query parameter of a redirect (4.1.2.1), or the
//! `error` attribute of a `WWW-Authenticate: Bearer` challenge (RFC 6750 3.1).

use std::fmt;

/// An OAuth error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// RFC 6749 5.2: "The request is missing a required parameter, includes an unsupported
    /// parameter value (other than grant type), repeats a parameter, includes multiple
    /// credentials, utilizes more than one mechanism for authenticating the client, or is
    /// otherwise malformed."
    InvalidRequest,
    /// RFC 6749 5.2: "Client authentication failed (e.g., unknown client, no client
    /// authentication included, or unsupported authentication method)."
    InvalidClient,
    /// RFC 6749 5.2: "The provided authorization grant (e.g., authorization code, resource
    /// owner credentials) or refresh token is invalid, expired, revoked, does not match the
    /// redirection URI used in the authorization request, or was issued to another client."
    InvalidGrant,
    /// RFC 6749 5.2: "The authenticated client is not authorized to use this authorization
    /// grant type." (4.1.2.1: "... to request an authorization code using this method.")
    UnauthorizedClient,
    /// RFC 6749 5.2: "The authorization grant type is not supported by the authorization
    /// server."
    UnsupportedGrantType,
    /// RFC 6749 5.2: "The requested scope is invalid, unknown, malformed, or exceeds the scope
    /// granted by the resource owner."
    InvalidScope,
    /// RFC 6749 4.1.2.1: "The resource owner or authorization server denied the request."
    AccessDenied,
    /// RFC 6749 4.1.2.1: "The authorization server does not support obtaining an
    /// authorization code using this method."
    UnsupportedResponseType,
    /// RFC 6749 4.1.2.1: "The authorization server encountered an unexpected condition that
    /// prevented it from fulfilling the request." (Also used on the token endpoint.)
    ServerError,
    /// RFC 6749 4.1.2.1: "The authorization server is currently unable to handle the request
    /// due to a temporary overloading or maintenance of the server." (Also used on the token,
    /// introspection and revocation endpoints, with `Retry-After`.)
    TemporarilyUnavailable,
    /// OpenID Connect Core 3.1.2.6: "The Authorization Server requires End-User
    /// authentication." (`prompt=none` without a session.)
    LoginRequired,
    /// OpenID Connect Core 3.1.2.6: "The Authorization Server requires End-User consent."
    /// (`prompt=none` when consent would be asked.)
    ConsentRequired,
    /// Not an RFC 6749 code: a client over its own rate limit gets 429 with `Retry-After`
    /// (RFC 6585 4), which clients and their HTTP libraries already know to back off on.
    TooManyRequests,
    /// RFC 6750 3.1: "The access token provided is expired, revoked, malformed, or invalid for
    /// other reasons."
    InvalidToken,
    /// RFC 6750 3.1: "The request requires higher privileges than provided by the access
    /// token."
    InsufficientScope,
}

impl ErrorCode {
    /// The code as it goes on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::LoginRequired => "login_required",
            ErrorCode::ConsentRequired => "consent_required",
            ErrorCode::TooManyRequests => "too_many_requests",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::InsufficientScope => "insufficient_scope",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}
