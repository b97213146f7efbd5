//! The Permissions tab (scopes and grant types at a glance, "Generate token") and the Usage
//! tab (tokens per day for 30 days, as a server-rendered SVG chart).

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::Viewer;
use super::{Admin, OrPage, Page, context, load_client, require_post};
use crate::AppState;
use crate::client::{Client, GrantType};
use crate::error::AppError;
use crate::http::session::CsrfOnly;
use crate::manage;
use crate::oauth::authorization::request::describe_scope;

fn permissions_page(
    state: &AppState,
    session: &Session,
    admin: &Admin,
    client: &Client,
    generated: Option<Result<&manage::GeneratedToken, &str>>,
) -> HttpResponse {
    let mut ctx = context(session, admin, "clients");
    ctx.insert("client", client);
    ctx.insert("tab", "permissions");
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
        &client.access_token_ttl.unwrap_or(state.access_token_ttl),
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
    state.pages.render(status, "admin/permissions.html", &ctx)
}

/// `GET /admin/clients/{client_id}/permissions`.
pub async fn permissions(
    Viewer(admin): Viewer,
    state: web::Data<AppState>,
    session: Session,
    path: web::Path<String>,
) -> Page {
    let client = load_client(&state, path.into_inner())
        .await
        .or_page(&state, &session)?;
    Ok(permissions_page(&state, &session, &admin, &client, None))
}

/// `POST /admin/clients/{client_id}/token`: "Generate token" (admin only). The token is shown
/// once on the page that answers; it is never stored.
pub async fn generate(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<CsrfOnly>,
) -> Page {
    let admin = require_post(&state, &session, &req, form.csrf_token.as_deref()).await?;
    let client = load_client(&state, path.into_inner())
        .await
        .or_page(&state, &session)?;
    let (st, c, actor) = (state.clone(), client.clone(), admin.actor.clone());
    let now = state.clock.now();
    let generated = crate::db::run(&state.pool, move |conn| {
        manage::generate_token(conn, &st.oauth(), &actor, &c, now)
    })
    .await;
    Ok(match generated {
        Ok(g) => permissions_page(&state, &session, &admin, &client, Some(Ok(&g))),
        Err(AppError::Invalid(m)) => {
            permissions_page(&state, &session, &admin, &client, Some(Err(&m)))
        }
        Err(e) => super::failed(&state, &session, &e),
    })
}

const DAYS: i64 = 30;

/// `GET /admin/clients/{client_id}/usage`.
pub async fn usage(
    Viewer(admin): Viewer,
    state: web::Data<AppState>,
    session: Session,
    path: web::Path<String>,
) -> Page {
    let client_id = path.into_inner();
    let today = crate::usage::day_of(state.clock.now());
    let (client, counts, all_time) =
        crate::http::with_client(&state, client_id, move |conn, client| {
            let counts = crate::client::store::token_counts(conn, client.id, today - DAYS + 1)?;
            let total = crate::client::store::token_total(conn, client.id)?;
            Ok((client, counts, total))
        })
        .await
        .or_page(&state, &session)?;
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
    let mut ctx = context(&session, &admin, "clients");
    ctx.insert("client", &client);
    ctx.insert("tab", "usage");
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
    ctx.insert("flush_seconds", &state.usage_flush_seconds);
    Ok(state.pages.render(StatusCode::OK, "admin/usage.html", &ctx))
}
