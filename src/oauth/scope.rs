//! The one rule for which scopes a request gets (RFC 6749 3.3), for the authorization endpoint
//! and the client_credentials grant alike.

use crate::client::{Client, ScopeSet};

/// Who grants the scopes: a person at the authorization endpoint (never a `portcullis:*`
/// scope, see [`crate::token::grantable_by_person`]) or the client on its own behalf
/// (client_credentials, RFC 6749 4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grantor {
    /// A person, through the authorization endpoint.
    Person,
    /// The client itself.
    Client,
}

/// The scopes granted for `requested` (space-separated; None or blank = none requested),
/// sorted and without repeats. RFC 6749 3.3: no scope requested means the client's default,
/// its allowed scopes (those the grantor may grant); a requested scope outside them is
/// refused (`invalid_scope`, RFC 6749 4.1.2.1 and 5.2), never silently dropped. The error is
/// the description.
pub fn granted(
    client: &Client,
    requested: Option<&str>,
    grantor: Grantor,
) -> Result<ScopeSet, String> {
    let grantable = |s: &str| grantor == Grantor::Client || crate::token::grantable_by_person(s);
    match requested.map(str::trim) {
        None | Some("") => Ok(client.allowed_scopes.filter(grantable)),
        Some(requested) => {
            for s in requested.split(' ').filter(|s| !s.is_empty()) {
                if !grantable(s) {
                    return Err(format!(
                        "scope '{s}' cannot be granted through the authorization endpoint"
                    ));
                }
                if !client.allows_scope(s) {
                    return Err(format!("scope '{s}' is not allowed for this client"));
                }
            }
            // Each one is a scope the client is allowed (checked when it was registered).
            Ok(ScopeSet::from_stored(requested))
        }
    }
}
