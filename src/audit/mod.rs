//! The audit log: every change made in the admin area, and every token generated there, with
//! time, actor, action, target and remote address. Never a secret value.

pub mod store;

use serde::Serialize;

/// One recorded event.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEvent {
    /// Row id.
    pub id: i64,
    /// Seconds since the epoch.
    pub at: i64,
    /// Username of who did it.
    pub actor: String,
    /// What was done, e.g. `client.create`, `secret.delete`.
    pub action: String,
    /// The client concerned, if any (public client_id).
    pub client_id: Option<String>,
    /// What was acted on, in words (a client name, a secret's description and hint, a URI).
    pub target: String,
    /// More detail, if any.
    pub details: String,
    /// The remote address of the request.
    pub remote_addr: String,
}

/// An event to record.
pub struct NewEvent<'a> {
    /// Username of who did it.
    pub actor: &'a str,
    /// What was done.
    pub action: &'a str,
    /// The client concerned, if any.
    pub client_id: Option<&'a str>,
    /// What was acted on.
    pub target: &'a str,
    /// More detail.
    pub details: &'a str,
    /// Remote address.
    pub remote_addr: &'a str,
}
