//! Audit log queries.

use diesel::prelude::*;

use super::{AuditEvent, NewEvent};
use crate::db::AnyConnection;
use crate::db::schema::audit_events;
use crate::error::AppError;

/// Records an event.
pub fn record(conn: &mut AnyConnection, e: &NewEvent, now: i64) -> Result<(), AppError> {
    diesel::insert_into(audit_events::table)
        .values((
            audit_events::at.eq(now),
            audit_events::actor.eq(e.actor),
            audit_events::action.eq(e.action),
            audit_events::client_id.eq(e.client_id),
            audit_events::target.eq(e.target),
            audit_events::details.eq(e.details),
            audit_events::remote_addr.eq(e.remote_addr),
        ))
        .execute(conn)?;
    Ok(())
}

/// Deletes the events recorded before `cutoff` (`PORTCULLIS_AUDIT_RETENTION_DAYS`, run by the
/// periodic purge). Returns how many.
pub fn purge_before(conn: &mut AnyConnection, cutoff: i64) -> Result<usize, AppError> {
    Ok(diesel::delete(audit_events::table.filter(audit_events::at.lt(cutoff))).execute(conn)?)
}

/// id, at, actor, action, client_id, target, details, remote_addr.
type EventRow = (
    i64,
    i64,
    String,
    String,
    Option<String>,
    String,
    String,
    String,
);

/// Filters of the audit log page.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only events about this client (public client_id).
    pub client_id: Option<String>,
    /// Only events by this actor.
    pub actor: Option<String>,
}

/// A page of events, newest first, and the number of events matching the filter.
pub fn page(
    conn: &mut AnyConnection,
    filter: &AuditFilter,
    offset: i64,
    limit: i64,
) -> Result<(Vec<AuditEvent>, i64), AppError> {
    let query = || {
        let mut q = audit_events::table.into_boxed();
        if let Some(c) = &filter.client_id {
            q = q.filter(audit_events::client_id.eq(c.clone()));
        }
        if let Some(a) = &filter.actor {
            q = q.filter(audit_events::actor.eq(a.clone()));
        }
        q
    };
    let total: i64 = query().count().get_result(conn)?;
    let rows: Vec<EventRow> = query()
        .order((audit_events::at.desc(), audit_events::id.desc()))
        .offset(offset)
        .limit(limit)
        .select((
            audit_events::id,
            audit_events::at,
            audit_events::actor,
            audit_events::action,
            audit_events::client_id,
            audit_events::target,
            audit_events::details,
            audit_events::remote_addr,
        ))
        .load(conn)?;
    Ok((
        rows.into_iter()
            .map(
                |(id, at, actor, action, client_id, target, details, remote_addr)| AuditEvent {
                    id,
                    at,
                    actor,
                    action,
                    client_id,
                    target,
                    details,
                    remote_addr,
                },
            )
            .collect(),
        total,
    ))
}
