//! Admin pages of a client's redirect URIs: the list, add, remove.

use std::collections::HashMap;

use actix_web::web;
use serde::Deserialize;

use super::{AdminUser, Editor, Page, Viewer};
use crate::error::AppError;
use crate::manage;

/// The Redirect URIs tab, with what was typed and the error beside the field, if any.
async fn uris_page<A>(
    admin: &AdminUser<A>,
    client_id: String,
    typed: &str,
    error: Option<&str>,
) -> Page {
    let (client, uris) = admin
        .on_client(client_id, move |conn, _, client| {
            let uris = crate::client::store::redirect_uris(conn, client.id)?;
            Ok((client, uris))
        })
        .await?;
    let mut ctx = admin.client_context(&client, "redirect_uris");
    let list: Vec<serde_json::Value> = uris
        .iter()
        .map(|(id, uri)| serde_json::json!({ "id": id, "uri": uri }))
        .collect();
    ctx.insert("uris", &list);
    ctx.insert("form_uri", typed);
    let errors: HashMap<&str, &str> = error.map(|e| ("uri", e)).into_iter().collect();
    ctx.insert("errors", &errors);
    Ok(admin.render(
        super::form_status(&errors),
        "admin/redirect_uris.html",
        &ctx,
    ))
}

/// `GET /admin/clients/{client_id}/redirect-uris`.
pub async fn list(admin: Viewer, path: web::Path<String>) -> Page {
    uris_page(&admin, path.into_inner(), "", None).await
}

/// Form of adding a redirect URI.
#[derive(Deserialize)]
pub struct UriForm {
    #[serde(deserialize_with = "crate::text::line")]
    uri: String,
}

/// After a change: back to the tab with a notice, or the tab again with the error beside
/// the field (and what was typed).
async fn finish(
    admin: &Editor,
    client_id: String,
    changed: Result<(), AppError>,
    notice: &str,
    typed: &str,
) -> Page {
    match changed {
        Ok(()) => Ok(admin.done(notice, &format!("/admin/clients/{client_id}/redirect-uris"))),
        Err(AppError::Invalid(m) | AppError::Conflict(m)) => {
            uris_page(admin, client_id, typed, Some(&m)).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /admin/clients/{client_id}/redirect-uris`.
pub async fn add(admin: Editor, path: web::Path<String>, form: web::Form<UriForm>) -> Page {
    let (client_id, uri) = (path.into_inner(), form.uri.clone());
    let added = admin
        .on_client(client_id.clone(), move |conn, c, client| {
            manage::add_redirect_uri(conn, &c.manage(), &c.actor, &client, &uri, c.now)
        })
        .await;
    finish(&admin, client_id, added, "Redirect URI added.", &form.uri).await
}

/// `POST /admin/clients/{client_id}/redirect-uris/{id}/delete`.
pub async fn remove(admin: Editor, path: web::Path<(String, i64)>) -> Page {
    let (client_id, uri_id) = path.into_inner();
    let removed = admin
        .on_client(client_id.clone(), move |conn, c, client| {
            manage::remove_redirect_uri(conn, &c.manage(), &c.actor, &client, uri_id, c.now)
        })
        .await;
    finish(&admin, client_id, removed, "Redirect URI removed.", "").await
}
