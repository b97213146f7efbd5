//! Redirect URIs (RFC 6749 3.1.2): what may be registered ([`RedirectUri::parse`]) and which
//! requested URI matches a registered one ([`matching`]), each decided here once.

use std::fmt;

use serde::Serialize;

/// A registered redirect URI, checked when it was registered and kept exactly as typed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct RedirectUri(String);

impl RedirectUri {
    /// Checks a redirect URI for registration: absolute, no fragment (RFC 6749 3.1.2), https or
    /// http on a loopback address (RFC 8252 7.3, RFC 9700 2.6). Returns it as typed (only
    /// surrounding whitespace trimmed), never normalized: it is matched by exact string
    /// (RFC 6749 3.1.2.3), so `https://app.example` stays usable as typed; characters that a URL
    /// parser would silently drop or rewrite (controls, spaces, backslashes) are refused.
    pub fn parse(uri: &str) -> Result<RedirectUri, String> {
        let uri = uri.trim();
        if uri
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
        {
            return Err(format!(
                "invalid redirect URI '{}': it must not contain spaces, control characters or backslashes",
                uri.escape_debug()
            ));
        }
        let parsed = url::Url::parse(uri)
            .map_err(|e| format!("invalid redirect URI '{uri}': {e} (it must be absolute)"))?;
        if parsed.fragment().is_some() {
            return Err(format!(
                "invalid redirect URI '{uri}': it must not contain a fragment (RFC 6749 3.1.2)"
            ));
        }
        match parsed.scheme() {
            "https" => {}
            "http" => {
                let loopback = match parsed.host() {
                    Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                    Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                    Some(url::Host::Domain(d)) => d == "localhost",
                    None => false,
                };
                if !loopback {
                    return Err(format!(
                        "invalid redirect URI '{uri}': http is allowed only for loopback addresses; use https"
                    ));
                }
            }
            other => {
                return Err(format!(
                    "invalid redirect URI '{uri}': scheme '{other}' is not allowed; use https"
                ));
            }
        }
        Ok(RedirectUri(uri.to_string()))
    }

    /// A URI read back from the database (checked when it was written).
    pub fn from_stored(uri: String) -> Self {
        RedirectUri(uri)
    }

    /// The URI as registered.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URI as registered, moved out.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for RedirectUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for RedirectUri {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for RedirectUri {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for RedirectUri {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// The redirect URI an authorization request may use, or None: THE rule, used wherever a
/// redirect URI is matched (`oauth::authorization::request::check`, through
/// `Client::redirect_uri_for`). The requested string must equal a registered one exactly,
/// character for character, with no normalization (RFC 6749 3.1.2.3, RFC 9700 2.1 and 4.1.3
/// "exact string matching"); the one exception is RFC 8252 7.3, when the client opts in: for a
/// registered `http` URI on a loopback IP literal, the port may differ (or be absent),
/// nothing else may. `localhost` is not a loopback literal here (RFC 8252 8.3). A client
/// with exactly one registered URI may omit it (RFC 6749 3.1.2.3).
pub fn matching(
    registered: &[RedirectUri],
    loopback_any_port: bool,
    requested: Option<&str>,
) -> Option<String> {
    let Some(requested) = requested else {
        return match registered {
            [only] => Some(only.0.clone()),
            _ => None,
        };
    };
    if registered.iter().any(|r| r == requested) {
        return Some(requested.to_string());
    }
    if !loopback_any_port {
        return None;
    }
    let (host, port, rest) = split_loopback(requested)?;
    let port_ok = port.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 5
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u16>().is_ok()
    });
    // The parser must see the same loopback host, so that no trick in the string (userinfo,
    // backslashes, encodings) makes the browser go elsewhere.
    let parsed_host_ok = url::Url::parse(requested).ok().is_some_and(|u| {
        u.scheme() == "http"
            && u.username().is_empty()
            && u.password().is_none()
            && match u.host() {
                Some(url::Host::Ipv4(ip)) => ip.is_loopback() && ip.to_string() == host,
                Some(url::Host::Ipv6(ip)) => ip.is_loopback() && format!("[{ip}]") == host,
                _ => false,
            }
    });
    if !port_ok || !parsed_host_ok {
        return None;
    }
    registered
        .iter()
        .filter_map(|r| split_loopback(r.as_str()))
        .any(|(h, _, r)| h == host && r == rest)
        .then(|| requested.to_string())
}

/// Splits `http://HOST[:PORT]REST` where HOST is a loopback IP literal (`127.0.0.1`,
/// `[::1]`): (HOST, PORT, REST). None for anything else, `localhost` included (RFC 8252 8.3).
pub(super) fn split_loopback(uri: &str) -> Option<(&str, Option<&str>, &str)> {
    let after = uri.strip_prefix("http://")?;
    let host_end = if after.starts_with('[') {
        after.find(']')? + 1
    } else {
        after.find([':', '/', '?', '#']).unwrap_or(after.len())
    };
    let (host, tail) = after.split_at(host_end);
    let ip: std::net::IpAddr = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
        .parse()
        .ok()?;
    if !ip.is_loopback() {
        return None;
    }
    match tail.strip_prefix(':') {
        Some(p) => {
            let port_end = p.find(['/', '?', '#']).unwrap_or(p.len());
            Some((host, Some(&p[..port_end]), &p[port_end..]))
        }
        None => Some((host, None, tail)),
    }
}
