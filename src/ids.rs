//! The database keys of the things admins manage, one type each, so that a client's key cannot
//! be passed where a user's or a secret's is expected, and neither can be mistaken for the
//! public `client_id` (a `String` that clients present; [`ClientKey`] never leaves the server
//! except in admin URLs and the admin API's secret and redirect-URI ids).
//!
//! Each is stored as its `BIGINT`/`INTEGER` column (diesel through `DieselNewType`) and
//! serialized as the bare number, so pages, JSON and the CLI show what they showed before.

use diesel_derive_newtype::DieselNewType;
use serde::{Deserialize, Serialize};

macro_rules! database_key {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, DieselNewType, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::num::ParseIntError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map(Self)
            }
        }
    };
}

database_key!(
    /// A client's row (`clients.id`), not its public `client_id`.
    ClientKey
);
database_key!(
    /// A user's row (`users.id`): admins, readonly admins and people who authorize apps.
    UserId
);
database_key!(
    /// A client secret's row (`client_secrets.id`), shown to admins to tell secrets apart.
    SecretId
);
