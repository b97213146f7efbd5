//! Admin API call for the audit log.

use actix_web::http::StatusCode;
use actix_web::web;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiResult, Reader, json};

/// An audit event.
#[derive(Serialize, ToSchema)]
pub struct AuditEventOut {
    id: i64,
    at: i64,
    actor: String,
    action: String,
    client_id: Option<String>,
    target: String,
    details: String,
    remote_addr: String,
}

/// A page of audit events, newest first.
#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    items: Vec<AuditEventOut>,
    total: i64,
    page: i64,
    per_page: i64,
}

/// Filters of the audit log.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only events about this client_id.
    client_id: Option<String>,
    /// Only events by this actor (a username, or client:CLIENT_ID for API callers).
    actor: Option<String>,
    /// 1-based.
    #[param(minimum = 1, maximum = 1_000_000)]
    page: Option<i64>,
    /// 1 to 100, default 50.
    #[param(minimum = 1, maximum = 100)]
    per_page: Option<i64>,
}

/// `GET /admin/api/v1/audit-events`
#[utoipa::path(get, path = "/admin/api/v1/audit-events", params(AuditParams),
    responses((status = 200, body = AuditPage)), security(("bearer" = ["portcullis:read"])))]
pub async fn audit_events(caller: Reader, params: web::Query<AuditParams>) -> ApiResult {
    let filter = crate::audit::store::AuditFilter {
        client_id: params.client_id.clone(),
        actor: params.actor.clone(),
    };
    let paging = super::paging(
        params.page,
        params.per_page,
        50,
        |p| (1..=100).contains(&p),
        "from 1 to 100",
    )?;
    let (page, per_page) = (paging.page, paging.per_page);
    let (events, total) = caller
        .run(move |conn, _| crate::audit::store::page(conn, &filter, paging.offset(), per_page))
        .await?;
    Ok(json(
        StatusCode::OK,
        &AuditPage {
            items: events
                .into_iter()
                .map(|e| AuditEventOut {
                    id: e.id,
                    at: e.at,
                    actor: e.actor,
                    action: e.action,
                    client_id: e.client_id,
                    target: e.target,
                    details: e.details,
                    remote_addr: e.remote_addr,
                })
                .collect(),
            total,
            page,
            per_page,
        },
    ))
}
