//! Admin pages of clients: the list, create, settings, enable/disable, delete (the form is in
//! `client_form`, the list's view in `client_list`, the redirect URIs in `redirect_uris`).

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::web;

use super::client_form::ClientForm;
use super::client_list::{self, ListParams};
use super::{Confirm, Editor, Page, Viewer};
use crate::client::GrantType;
use crate::error::AppError;
use crate::manage;

/// `GET /admin/clients`.
pub async fn list(admin: Viewer, params: web::Query<ListParams>) -> Page {
    let q = params.to_query()?;
    let (query, now) = (q.clone(), admin.now());
    let (rows, total) = admin
        .run(move |conn, _| crate::client::store::list_page(conn, &query, now))
        .await?;
    let mut ctx = admin.context("clients");
    client_list::insert(&mut ctx, &q, &rows, total);
    Ok(admin.render(StatusCode::OK, "admin/clients.html", &ctx))
}

/// `GET /admin/clients/new`.
pub async fn new(admin: Editor) -> Page {
    let form = ClientForm {
        kind: "confidential".into(),
        grant_type: vec![GrantType::ClientCredentials.as_str().into()],
        enabled: Some("on".into()),
        ..ClientForm::default()
    };
    Ok(form.page(&admin, None, &HashMap::new()))
}

/// `POST /admin/clients`: register; a confidential client's first secret is shown once.
pub async fn create(admin: Editor, body: web::Bytes) -> Page {
    let form = ClientForm::parse(&body);
    let (new, enabled) = match form.validate(None) {
        Ok(v) => v,
        Err(errors) => return Ok(form.page(&admin, None, &errors)),
    };
    let created = admin
        .run(move |conn, c| {
            manage::create_client(conn, &c.manage(), &c.actor, &new, enabled, c.now)
        })
        .await;
    Ok(match created {
        Ok((client, Some(secret))) => admin.secret_shown(&client, &secret, "Client created"),
        Ok((client, None)) => admin.done(
            "Client created.",
            &format!("/admin/clients/{}", client.client_id),
        ),
        Err(AppError::Conflict(m)) => form.page(&admin, None, &HashMap::from([("name", m)])),
        Err(e) => return Err(e.into()),
    })
}

/// `GET /admin/clients/{client_id}`: the Settings tab.
pub async fn show(admin: Viewer, path: web::Path<String>) -> Page {
    let client = admin.client(path.into_inner()).await?;
    Ok(ClientForm::of(&client).page(&admin, Some(&client), &HashMap::new()))
}

/// `POST /admin/clients/{client_id}`: save the settings.
pub async fn update(admin: Editor, path: web::Path<String>, body: web::Bytes) -> Page {
    let form = ClientForm::parse(&body);
    let client = admin.client(path.into_inner()).await?;
    let (settings, enabled) = match form.validate(Some(&client)) {
        Ok(v) => v,
        Err(errors) => return Ok(form.page(&admin, Some(&client), &errors)),
    };
    let saved = admin
        .on_client(client.client_id.clone(), move |conn, c, client| {
            let ctx = c.manage();
            manage::update_client(conn, &ctx, &c.actor, &client, &settings, enabled, c.now)
        })
        .await;
    Ok(match saved {
        Ok(Some(key)) => {
            admin.secret_shown(&client, &key, "Settings saved: the client_secret_jwt key")
        }
        Ok(None) => admin.done(
            "Settings saved.",
            &format!("/admin/clients/{}", client.client_id),
        ),
        Err(AppError::Conflict(m)) => {
            form.page(&admin, Some(&client), &HashMap::from([("name", m)]))
        }
        Err(e) => return Err(e.into()),
    })
}

/// `POST /admin/clients/{client_id}/enable` and `.../disable`.
pub async fn set_enabled(admin: Editor, path: web::Path<(String, String)>) -> Page {
    let (client_id, toggle) = path.into_inner();
    let enabled = toggle == "enable";
    let client = admin
        .on_client(client_id, move |conn, c, client| {
            manage::set_enabled(conn, &c.manage(), &c.actor, &client, enabled, c.now)?;
            Ok(client)
        })
        .await?;
    let notice = if enabled {
        "Client enabled."
    } else {
        "Client disabled: it is refused everywhere until enabled again."
    };
    Ok(admin.done(notice, &format!("/admin/clients/{}", client.client_id)))
}

/// `GET /admin/clients/{client_id}/delete`: the confirmation page.
pub async fn confirm_delete(admin: Editor, path: web::Path<String>) -> Page {
    let client = admin.client(path.into_inner()).await?;
    Ok(admin.confirm(
        "clients",
        &Confirm {
            heading: format!("Delete {}?", client.name),
            message: format!(
                "This deletes the client “{}” ({}) with its secrets, redirect URIs and consents, and revokes its tokens. Apps using it stop working at once. This cannot be undone.",
                client.name, client.client_id
            ),
            action: format!("/admin/clients/{}/delete", client.client_id),
            cancel: format!("/admin/clients/{}", client.client_id),
            confirm_label: "Delete client",
        },
    ))
}

/// `POST /admin/clients/{client_id}/delete`.
pub async fn delete(admin: Editor, path: web::Path<String>) -> Page {
    let client = admin
        .on_client(path.into_inner(), move |conn, c, client| {
            manage::delete_client(conn, &c.manage(), &c.actor, &client, c.now)?;
            Ok(client)
        })
        .await?;
    Ok(admin.done(
        &format!("Client “{}” deleted.", client.name),
        "/admin/clients",
    ))
}
