//! One table of limits, read by both the configuration (`config.rs`) and the validation of what
//! admins enter (`client::NewClient::validate`), so that the same thing has the same bounds
//! wherever it is set.

use std::ops::RangeInclusive;

/// Seconds in a day.
pub const DAY: i64 = 86_400;

/// A bounded number of seconds, with the words that name it in an error.
pub struct Limit {
    /// What is bounded, as an error message names it.
    pub what: &'static str,
    /// The accepted values, in seconds.
    pub range: RangeInclusive<i64>,
}

impl Limit {
    /// `value` if it is within the limit, else a message that says the bounds.
    pub fn check(&self, value: i64) -> Result<i64, String> {
        if self.range.contains(&value) {
            Ok(value)
        } else {
            Err(format!(
                "{} must be from {} to {} seconds",
                self.what,
                self.range.start(),
                self.range.end()
            ))
        }
    }
}

/// An access token's lifetime: the server default (`PORTCULLIS_ACCESS_TOKEN_TTL`) and a
/// client's own. Short-lived, as RFC 9700 2.2.1 recommends: revocation of a JWT only reaches
/// resource servers that introspect.
pub const ACCESS_TOKEN_TTL: Limit = Limit {
    what: "access token lifetime",
    range: 60..=DAY,
};

/// A refresh token's lifetime: the server default (`PORTCULLIS_REFRESH_TOKEN_TTL`) and a
/// client's own (each rotation starts a new one, RFC 9700 4.14.2).
pub const REFRESH_TOKEN_TTL: Limit = Limit {
    what: "refresh token lifetime",
    range: 60..=365 * DAY,
};

/// The longest lifetime of an access token with a `portcullis:` scope (the admin API,
/// `PORTCULLIS_ADMIN_TOKEN_TTL`).
pub const ADMIN_TOKEN_TTL: Limit = Limit {
    what: "admin token lifetime",
    range: 1..=DAY,
};

/// How long a rotated-in signing key is published before it signs (`keys rotate
/// --activate-in`).
pub const KEY_ACTIVATION_DELAY: Limit = Limit {
    what: "--activate-in",
    range: 0..=DAY,
};
