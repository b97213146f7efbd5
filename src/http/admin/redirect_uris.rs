//! Admin pages of a client's redirect URIs: the list, add, remove.

use std::collections::HashMap;

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::{Admin, OrPage, Page, Viewer, context, done, failed, load_client, require_post};
use crate::AppState;
use crate::client::Client;
use crate::error::AppError;
use crate::http::session::CsrfOnly;
use crate::manage;

fn uris_page(
    state: &AppState,
    session: &Session,
    admin: &Admin,
    client: &Client,
    uris: &[(i64, String)],
    typed: &str,
    error: Option<&str>,
) -> HttpResponse {
    let mut ctx = context(session, admin, "clients");
    ctx.insert("client", client);
    ctx.insert("tab", "redirect_uris");
    let list: Vec<serde_json::Value> = uris
        .iter()
        .map(|(id, uri)| serde_json::json!({ "id": id, "uri": uri }))
        .collect();
    ctx.insert("uris", &list);
    ctx.insert("form_uri", typed);
    let errors: HashMap<&str, &str> = error.map(|e| ("uri", e)).into_iter().collect();
    ctx.insert("errors", &errors);
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    state.pages.render(status, "admin/redirect_uris.html", &ctx)
}

async fn client_and_uris(
    state: &web::Data<AppState>,
    client_id: String,
) -> Result<(Client, Vec<(i64, String)>), AppError> {
    crate::http::with_client(state, client_id, move |conn, client| {
        let uris = crate::client::store::redirect_uris(conn, client.id)?;
        Ok((client, uris))
    })
    .await
}

/// `GET /admin/clients/{client_id}/redirect-uris`.
pub async fn list(
    Viewer(admin): Viewer,
    state: web::Data<AppState>,
    session: Session,
    path: web::Path<String>,
) -> Page {
    Ok(match client_and_uris(&state, path.into_inner()).await {
        Ok((client, uris)) => uris_page(&state, &session, &admin, &client, &uris, "", None),
        Err(e) => failed(&state, &session, &e),
    })
}

/// Form of adding a redirect URI.
#[derive(Deserialize)]
pub struct UriForm {
    #[serde(deserialize_with = "crate::text::line")]
    uri: String,
    csrf_token: Option<String>,
}

/// `POST /admin/clients/{client_id}/redirect-uris`.
pub async fn add(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<UriForm>,
) -> Page {
    let admin = require_post(&state, &session, &req, form.csrf_token.as_deref()).await?;
    let client = load_client(&state, path.into_inner())
        .await
        .or_page(&state, &session)?;
    let (st, c, actor, uri) = (
        state.clone(),
        client.clone(),
        admin.actor.clone(),
        form.uri.clone(),
    );
    let now = state.clock.now();
    let result = crate::db::run(&state.pool, move |conn| {
        manage::add_redirect_uri(conn, &st.manage(), &actor, &c, &uri, now)
    })
    .await;
    let target = format!("/admin/clients/{}/redirect-uris", client.client_id);
    Ok(match result {
        Ok(()) => done(&session, "Redirect URI added.", &target),
        Err(AppError::Invalid(m) | AppError::Conflict(m)) => {
            match client_and_uris(&state, client.client_id.clone()).await {
                Ok((client, uris)) => uris_page(
                    &state,
                    &session,
                    &admin,
                    &client,
                    &uris,
                    &form.uri,
                    Some(&m),
                ),
                Err(e) => failed(&state, &session, &e),
            }
        }
        Err(e) => failed(&state, &session, &e),
    })
}

/// `POST /admin/clients/{client_id}/redirect-uris/{id}/delete`.
pub async fn remove(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    path: web::Path<(String, i64)>,
    form: web::Form<CsrfOnly>,
) -> Page {
    let admin = require_post(&state, &session, &req, form.csrf_token.as_deref()).await?;
    let (client_id, uri_id) = path.into_inner();
    let client = load_client(&state, client_id)
        .await
        .or_page(&state, &session)?;
    let (st, c, actor) = (state.clone(), client.clone(), admin.actor.clone());
    let now = state.clock.now();
    let result = crate::db::run(&state.pool, move |conn| {
        manage::remove_redirect_uri(conn, &st.manage(), &actor, &c, uri_id, now)
    })
    .await;
    let target = format!("/admin/clients/{}/redirect-uris", client.client_id);
    Ok(match result {
        Ok(()) => done(&session, "Redirect URI removed.", &target),
        Err(AppError::Invalid(m)) => {
            match client_and_uris(&state, client.client_id.clone()).await {
                Ok((client, uris)) => {
                    uris_page(&state, &session, &admin, &client, &uris, "", Some(&m))
                }
                Err(e) => failed(&state, &session, &e),
            }
        }
        Err(e) => failed(&state, &session, &e),
    })
}
