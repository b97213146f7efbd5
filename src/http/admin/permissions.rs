//! The Permissions tab (scopes and grant types at a glance, "Generate token") and the Usage
//! tab (tokens per day for 30 days, as a server-rendered SVG chart).

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::web;

use super::{AdminUser, Editor, Page, Viewer};
use crate::client::{Client, GrantType};
use crate::error::AppError;
use crate::manage;
use crate::oauth::authorization::request::describe_scope;

fn permissions_page<A>(
    admin: &AdminUser<A>,
    client: &Client,
    generated: Option<Result<&manage::GeneratedToken, &str>>,
) -> HttpResponse {
    let mut ctx = admin.client_context(client, "permissions");
    let scopes: Vec<serde_json::Value> = client
        .allowed_scopes
        .iter()
        .map(|s| serde_json::json!({ "name": s, "text": describe_scope(s) }))
        .collect();
    ctx.insert("scopes", &scopes);
    let grants: Vec<serde_json::Value> = client
        .allowed_grant_types
        .iter()
        .map(|g| {
            let label = match g {
                GrantType::AuthorizationCode => "People sign in and approve (with PKCE)",
                GrantType::ClientCredentials => "The app gets tokens for itself",
                GrantType::RefreshToken => "Tokens are renewed without asking again",
            };
            serde_json::json!({ "name": g.as_str(), "label": label })
        })
        .collect();
    ctx.insert("grants", &grants);
    ctx.insert(
        "access_ttl",
        &client
            .access_token_ttl
            .unwrap_or(admin.state.access_token_ttl),
    );
    let mut status = StatusCode::OK;
    match generated {
        Some(Ok(g)) => {
            // The header as the token carries it, not as we think it is.
            let header = jsonwebtoken::decode_header(&g.token)
                .ok()
                .and_then(|h| serde_json::to_value(h).ok())
                .unwrap_or_default();
            ctx.insert("token", &g.token);
            ctx.insert(
                "header_json",
                &serde_json::to_string_pretty(&header).unwrap_or_default(),
            );
            ctx.insert(
                "claims_json",
                &serde_json::to_string_pretty(&g.claims).unwrap_or_default(),
            );
            ctx.insert("expires", &crate::clock::human(g.claims.exp));
        }
        Some(Err(e)) => {
            ctx.insert("error", e);
            status = StatusCode::BAD_REQUEST;
        }
        None => {}
    }
    admin.render(status, "admin/permissions.html", &ctx)
}

/// `GET /admin/clients/{client_id}/permissions`.
pub async fn permissions(admin: Viewer, path: web::Path<String>) -> Page {
    let client = admin.client(path.into_inner()).await?;
    Ok(permissions_page(&admin, &client, None))
}

/// `POST /admin/clients/{client_id}/token`: "Generate token" (admin only). The token is shown
/// once on the page that answers; it is never stored.
pub async fn generate(admin: Editor, path: web::Path<String>) -> Page {
    let client = admin.client(path.into_inner()).await?;
    let c = client.clone();
    let generated = admin
        .run(move |conn, by| {
            manage::generate_token(conn, &by.state().oauth(), &by.actor, &c, by.now)
        })
        .await;
    Ok(match generated {
        Ok(g) => permissions_page(&admin, &client, Some(Ok(&g))),
        Err(AppError::Invalid(m)) => permissions_page(&admin, &client, Some(Err(&m))),
        Err(e) => return Err(e.into()),
    })
}

const DAYS: i64 = 30;

/// `GET /admin/clients/{client_id}/usage`.
pub async fn usage(admin: Viewer, path: web::Path<String>) -> Page {
    let today = crate::usage::day_of(admin.now());
    let (client, counts, all_time) = admin
        .on_client(path.into_inner(), move |conn, _, client| {
            let counts = crate::client::store::token_counts(conn, client.id, today - DAYS + 1)?;
            let total = crate::client::store::token_total(conn, client.id)?;
            Ok((client, counts, total))
        })
        .await?;
    let per_day: Vec<(i64, i64)> = (today - DAYS + 1..=today)
        .map(|d| {
            let n = counts.iter().find(|(day, _)| *day == d).map_or(0, |c| c.1);
            (d, n)
        })
        .collect();
    let max = per_day.iter().map(|d| d.1).max().unwrap_or(0).max(1);
    let (width, height, base, slot) = (720i64, 180i64, 160i64, 24i64);
    let bars: Vec<serde_json::Value> = per_day
        .iter()
        .enumerate()
        .map(|(i, (day, n))| {
            let h = n * (base - 20) / max;
            serde_json::json!({
                "x": i as i64 * slot + 2, "y": base - h, "w": slot - 4, "h": h,
                "date": crate::clock::date(day * crate::limits::DAY), "count": n,
            })
        })
        .collect();
    let labels: Vec<serde_json::Value> = [0usize, 14, 29]
        .iter()
        .map(|&i| {
            serde_json::json!({
                "x": i as i64 * slot + slot / 2, "y": height - 4,
                "text": crate::clock::date(per_day[i].0 * crate::limits::DAY),
            })
        })
        .collect();
    let mut ctx = admin.client_context(&client, "usage");
    ctx.insert("bars", &bars);
    ctx.insert("labels", &labels);
    ctx.insert("width", &width);
    ctx.insert("height", &height);
    ctx.insert("base", &base);
    ctx.insert("max", &max);
    ctx.insert("total_30", &per_day.iter().map(|d| d.1).sum::<i64>());
    ctx.insert("today", &per_day.last().map_or(0, |d| d.1));
    ctx.insert("all_time", &all_time);
    ctx.insert(
        "last_used",
        &client
            .last_used_at
            .map_or_else(|| "Never".to_string(), crate::clock::date),
    );
    ctx.insert("flush_seconds", &admin.state.usage_flush_seconds);
    Ok(admin.render(StatusCode::OK, "admin/usage.html", &ctx))
}
