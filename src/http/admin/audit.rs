//! The audit log page: newest first, filtered by client and by actor, paginated.

use actix_web::http::StatusCode;
use actix_web::web;
use serde::Deserialize;

use super::{Page, Viewer};
use crate::audit::store::AuditFilter;

const PER_PAGE: i64 = 50;

/// Query of the audit page.
#[derive(Deserialize)]
pub struct AuditParams {
    client: Option<String>,
    actor: Option<String>,
    page: Option<String>,
}

fn href(filter: &AuditFilter, page: i64) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    if let Some(c) = &filter.client_id {
        s.append_pair("client", c);
    }
    if let Some(a) = &filter.actor {
        s.append_pair("actor", a);
    }
    s.append_pair("page", &page.to_string());
    format!("/admin/audit?{}", s.finish())
}

/// `GET /admin/audit`.
pub async fn page(admin: Viewer, params: web::Query<AuditParams>) -> Page {
    let nonempty = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let filter = AuditFilter {
        client_id: nonempty(&params.client),
        actor: nonempty(&params.actor),
    };
    let paging = crate::db::paging::Paging::parse(params.page.as_deref(), PER_PAGE)?;
    let page = paging.page;
    let f = filter.clone();
    let (events, total) = admin
        .run(move |conn, _| crate::audit::store::page(conn, &f, paging.offset(), paging.per_page))
        .await?;
    let pages = ((total + PER_PAGE - 1) / PER_PAGE).max(1);
    let rows: Vec<serde_json::Value> = events
        .iter()
        .map(|e| {
            let by = |client_id: Option<String>, actor: Option<String>| {
                href(&AuditFilter { client_id, actor }, 1)
            };
            serde_json::json!({
                "time": crate::clock::human(e.at),
                "actor": e.actor,
                "actor_href": by(None, Some(e.actor.clone())),
                "action": e.action,
                "client_id": e.client_id,
                "client_href": by(e.client_id.clone(), None),
                "target": e.target,
                "details": e.details,
                "remote_addr": e.remote_addr,
            })
        })
        .collect();
    let mut ctx = admin.context("audit");
    ctx.insert("events", &rows);
    ctx.insert("client_filter", filter.client_id.as_deref().unwrap_or(""));
    ctx.insert("actor_filter", filter.actor.as_deref().unwrap_or(""));
    ctx.insert("total", &total);
    ctx.insert("page", &page);
    ctx.insert("pages", &pages);
    if page > 1 {
        ctx.insert("prev_href", &href(&filter, page - 1));
    }
    if page < pages {
        ctx.insert("next_href", &href(&filter, page + 1));
    }
    Ok(admin.render(StatusCode::OK, "admin/audit.html", &ctx))
}
