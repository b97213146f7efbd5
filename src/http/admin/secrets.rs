//! Admin pages of a client's secrets: the Secrets tab, add (value shown once), edit
//! description and expiry, delete with a confirmation step (the form is in `secret_form`).

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::web;

use super::secret_form::{SecretForm, Valid};
use super::{AdminUser, Confirm, Editor, Page, Viewer};
use crate::client::{Client, EXPIRY_WARNING_SECONDS};
use crate::error::AppError;
use crate::ids::SecretId;
use crate::manage;
use crate::secret::store::SecretRow;

fn secret_row(s: &SecretRow, now: i64) -> serde_json::Value {
    serde_json::json!({
        "id": s.id,
        "description": s.description,
        "hint": s.hint,
        "expires": s.expires_at.map_or_else(|| "Never".to_string(), crate::clock::date),
        "expired": s.expires_at.is_some_and(|e| e <= now),
        "expiring_soon": s.expires_at.is_some_and(|e| e > now && e <= now + EXPIRY_WARNING_SECONDS),
        "created": crate::clock::date(s.created_at),
        "last_used": s.last_used_at.map_or_else(|| "Never".to_string(), crate::clock::human),
    })
}

/// `GET /admin/clients/{client_id}/secrets`.
pub async fn list(admin: Viewer, path: web::Path<String>) -> Page {
    let (client, secrets) = admin
        .on_client(path.into_inner(), |conn, _, client| {
            let secrets = crate::secret::store::list(conn, client.id)?;
            Ok((client, secrets))
        })
        .await?;
    let now = admin.now();
    let rows: Vec<_> = secrets.iter().map(|s| secret_row(s, now)).collect();
    let mut ctx = admin.client_context(&client, "secrets");
    ctx.insert("secrets", &rows);
    Ok(admin.render(StatusCode::OK, "admin/secrets.html", &ctx))
}

/// `GET /admin/clients/{client_id}/secrets/new`.
pub async fn new(admin: Editor, path: web::Path<String>) -> Page {
    let client = admin.client(path.into_inner()).await?;
    Ok(SecretForm::default().page(&admin, &client, None, &HashMap::new()))
}

/// `POST /admin/clients/{client_id}/secrets`: add; a generated value is shown once.
pub async fn add(admin: Editor, path: web::Path<String>, form: web::Form<SecretForm>) -> Page {
    let client = admin.client(path.into_inner()).await?;
    let Valid(description, expires_at, value) = match form.validate(true, admin.now()) {
        Ok(v) => v,
        Err(errors) => return Ok(form.page(&admin, &client, None, &errors)),
    };
    let c = client.clone();
    let added = admin
        .run(move |conn, by| {
            let input = manage::SecretInput {
                description: &description,
                expires_at,
                value: value.as_deref(),
            };
            manage::add_secret(conn, &by.manage(), &by.actor, &c, &input, by.now)
        })
        .await;
    Ok(match added {
        Ok((_, Some(generated))) => admin.secret_shown(&client, &generated, "Secret added"),
        Ok((row, None)) => admin.done(
            &format!(
                "Secret ••••{} added. Its value is stored only as an argon2id hash.",
                row.hint
            ),
            &format!("/admin/clients/{}/secrets", client.client_id),
        ),
        Err(AppError::Invalid(m)) => {
            form.page(&admin, &client, None, &HashMap::from([("form", m)]))
        }
        Err(e) => return Err(e.into()),
    })
}

/// The client and one of its secrets.
async fn client_and_secret<A>(
    admin: &AdminUser<A>,
    (client_id, secret_id): (String, SecretId),
) -> Result<(Client, SecretRow), AppError> {
    admin
        .on_client(client_id, move |conn, _, client| {
            let secret = crate::secret::store::find(conn, client.id, secret_id)?
                .ok_or_else(|| AppError::NotFound("This client has no such secret.".into()))?;
            Ok((client, secret))
        })
        .await
}

/// `GET /admin/clients/{client_id}/secrets/{id}/edit`.
pub async fn edit(admin: Editor, path: web::Path<(String, SecretId)>) -> Page {
    let (client, secret) = client_and_secret(&admin, path.into_inner()).await?;
    let form = SecretForm::of(&secret);
    Ok(form.page(&admin, &client, Some(&secret), &HashMap::new()))
}

/// `POST /admin/clients/{client_id}/secrets/{id}`: save description and expiry.
pub async fn update(
    admin: Editor,
    path: web::Path<(String, SecretId)>,
    form: web::Form<SecretForm>,
) -> Page {
    let (client, secret) = client_and_secret(&admin, path.into_inner()).await?;
    let Valid(description, expires_at, _) = match form.validate(false, admin.now()) {
        Ok(v) => v,
        Err(errors) => return Ok(form.page(&admin, &client, Some(&secret), &errors)),
    };
    let (c, s) = (client.clone(), secret.clone());
    admin
        .run(move |conn, by| {
            let input = manage::SecretInput {
                description: &description,
                expires_at,
                value: None,
            };
            manage::update_secret(conn, &by.manage(), &by.actor, &c, &s, &input, by.now)
        })
        .await?;
    Ok(admin.done(
        &format!("Secret ••••{} saved.", secret.hint),
        &format!("/admin/clients/{}/secrets", client.client_id),
    ))
}

/// `GET /admin/clients/{client_id}/secrets/{id}/delete`: the confirmation step.
pub async fn confirm_delete(admin: Editor, path: web::Path<(String, SecretId)>) -> Page {
    let (client, secret) = client_and_secret(&admin, path.into_inner()).await?;
    let name = if secret.description.is_empty() {
        "This secret".to_string()
    } else {
        format!("The secret “{}”", secret.description)
    };
    Ok(admin.confirm(
        "clients",
        &Confirm {
            heading: format!("Delete secret ••••{}?", secret.hint),
            message: format!(
                "{name} of {} stops working at once: apps still using it get invalid_client. Its other secrets keep working.",
                client.name
            ),
            action: format!(
                "/admin/clients/{}/secrets/{}/delete",
                client.client_id, secret.id
            ),
            cancel: format!("/admin/clients/{}/secrets", client.client_id),
            confirm_label: "Delete secret",
        },
    ))
}

/// `POST /admin/clients/{client_id}/secrets/{id}/delete`.
pub async fn delete(admin: Editor, path: web::Path<(String, SecretId)>) -> Page {
    let (client, secret) = client_and_secret(&admin, path.into_inner()).await?;
    let (c, s) = (client.clone(), secret.clone());
    admin
        .run(move |conn, by| manage::delete_secret(conn, &by.manage(), &by.actor, &c, &s, by.now))
        .await?;
    Ok(admin.done(
        &format!("Secret ••••{} deleted.", secret.hint),
        &format!("/admin/clients/{}/secrets", client.client_id),
    ))
}
