//! Admin pages of a client's secrets: the Secrets tab, add (value shown once), edit
//! description and expiry, delete with a confirmation step.

use std::collections::HashMap;

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::{Admin, OrPage, Page, context, done, failed, load_client, require_post};
use super::{Editor, Viewer};
use crate::AppState;
use crate::client::{Client, EXPIRY_WARNING_SECONDS};
use crate::error::AppError;
use crate::http::session::CsrfOnly;
use crate::ids::SecretId;
use crate::manage;
use crate::secret::store::SecretRow;

async fn client_and_secrets(
    state: &web::Data<AppState>,
    client_id: String,
) -> Result<(Client, Vec<SecretRow>), AppError> {
    crate::http::with_client(state, client_id, move |conn, client| {
        let secrets = crate::secret::store::list(conn, client.id)?;
        Ok((client, secrets))
    })
    .await
}

/// `GET /admin/clients/{client_id}/secrets`.
pub async fn list(
    Viewer(admin): Viewer,
    state: web::Data<AppState>,
    session: Session,
    path: web::Path<String>,
) -> Page {
    let (client, secrets) = client_and_secrets(&state, path.into_inner())
        .await
        .or_page(&state, &session)?;
    let now = state.clock.now();
    let rows: Vec<serde_json::Value> = secrets
        .iter()
        .map(|s| {
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
        })
        .collect();
    let mut ctx = context(&session, &admin, "clients");
    ctx.insert("client", &client);
    ctx.insert("tab", "secrets");
    ctx.insert("secrets", &rows);
    Ok(state
        .pages
        .render(StatusCode::OK, "admin/secrets.html", &ctx))
}

/// Field errors, by field name (`form` for the whole form).
type Errors = HashMap<&'static str, String>;

/// A checked secret form: description, expiry, typed value.
struct Valid(String, Option<i64>, Option<String>);

/// The secret form as typed. The value is never sent back to the page.
#[derive(Deserialize, Default, serde::Serialize)]
pub struct SecretForm {
    #[serde(default, deserialize_with = "crate::text::line")]
    description: String,
    #[serde(default, deserialize_with = "crate::text::line")]
    expires: String,
    #[serde(default, skip_serializing)]
    value: String,
    #[serde(skip_serializing)]
    csrf_token: Option<String>,
}

impl SecretForm {
    /// Description required (so that an empty form is an error, not a surprise secret),
    /// expiry optional (YYYY-MM-DD or DD/MM/YYYY, in the future), value empty or 16+.
    fn validate(&self, adding: bool, now: i64) -> Result<Valid, Errors> {
        let mut errors = HashMap::new();
        if self.description.trim().is_empty()
            && self.expires.trim().is_empty()
            && self.value.is_empty()
        {
            errors.insert(
                "form",
                "The form is empty: give the secret a description (what or who uses it).".into(),
            );
            return Err(errors);
        }
        let description = match crate::secret::validate_description(&self.description) {
            Ok(d) if d.is_empty() => {
                errors.insert("description", "A description is required.".into());
                d
            }
            Ok(d) => d,
            Err(e) => {
                errors.insert("description", e);
                String::new()
            }
        };
        let expires_at = match self.expires.trim() {
            "" => None,
            e => match crate::clock::parse_expiry(e, now) {
                Ok(ts) => Some(ts),
                Err(m) => {
                    errors.insert("expires", m);
                    None
                }
            },
        };
        let value = if adding && !self.value.is_empty() {
            if let Err(m) = crate::secret::validate_chosen(&self.value) {
                errors.insert("value", m);
            }
            Some(self.value.clone())
        } else {
            None
        };
        if errors.is_empty() {
            Ok(Valid(description, expires_at, value))
        } else {
            Err(errors)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn form_page(
    state: &AppState,
    session: &Session,
    admin: &Admin,
    client: &Client,
    editing: Option<&SecretRow>,
    form: &SecretForm,
    errors: &HashMap<&'static str, String>,
) -> HttpResponse {
    let mut ctx = context(session, admin, "clients");
    ctx.insert("client", client);
    ctx.insert("tab", "secrets");
    ctx.insert("editing", &editing.is_some());
    if let Some(s) = editing {
        ctx.insert("secret_id", &s.id);
        ctx.insert("hint", &s.hint);
    }
    ctx.insert("form", form);
    // Always defined: the template looks up `errors.FIELD`.
    ctx.insert("errors", errors);
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    state.pages.render(status, "admin/secret_form.html", &ctx)
}

/// `GET /admin/clients/{client_id}/secrets/new`.
pub async fn new(
    Editor(admin): Editor,
    state: web::Data<AppState>,
    session: Session,
    path: web::Path<String>,
) -> Page {
    Ok(match load_client(&state, path.into_inner()).await {
        Ok(client) => form_page(
            &state,
            &session,
            &admin,
            &client,
            None,
            &SecretForm::default(),
            &HashMap::new(),
        ),
        Err(e) => failed(&state, &session, &e),
    })
}

/// `POST /admin/clients/{client_id}/secrets`: add; a generated value is shown once.
pub async fn add(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<SecretForm>,
) -> Page {
    let admin = require_post(&state, &session, &req, form.csrf_token.as_deref()).await?;
    let client = load_client(&state, path.into_inner())
        .await
        .or_page(&state, &session)?;
    let form = form.into_inner();
    let Valid(description, expires_at, value) = match form.validate(true, state.clock.now()) {
        Ok(v) => v,
        Err(errors) => {
            return Ok(form_page(
                &state, &session, &admin, &client, None, &form, &errors,
            ));
        }
    };
    let (st, c, actor) = (state.clone(), client.clone(), admin.actor.clone());
    let now = state.clock.now();
    let added = crate::db::run(&state.pool, move |conn| {
        let input = manage::SecretInput {
            description: &description,
            expires_at,
            value: value.as_deref(),
        };
        manage::add_secret(conn, &st.manage(), &actor, &c, &input, now)
    })
    .await;
    let target = format!("/admin/clients/{}/secrets", client.client_id);
    Ok(match added {
        Ok((_, Some(generated))) => super::secret_shown(
            &state,
            &session,
            &admin,
            &client,
            &generated,
            "Secret added",
        ),
        Ok((row, None)) => done(
            &session,
            &format!(
                "Secret ••••{} added. Its value is stored only as an argon2id hash.",
                row.hint
            ),
            &target,
        ),
        Err(AppError::Invalid(m)) => form_page(
            &state,
            &session,
            &admin,
            &client,
            None,
            &form,
            &HashMap::from([("form", m)]),
        ),
        Err(e) => failed(&state, &session, &e),
    })
}

async fn client_and_secret(
    state: &web::Data<AppState>,
    client_id: String,
    secret_id: SecretId,
) -> Result<(Client, SecretRow), AppError> {
    crate::http::with_client(state, client_id, move |conn, client| {
        let secret = crate::secret::store::find(conn, client.id, secret_id)?
            .ok_or_else(|| AppError::NotFound("This client has no such secret.".into()))?;
        Ok((client, secret))
    })
    .await
}

/// `GET /admin/clients/{client_id}/secrets/{id}/edit`.
pub async fn edit(
    Editor(admin): Editor,
    state: web::Data<AppState>,
    session: Session,
    path: web::Path<(String, SecretId)>,
) -> Page {
    let (client_id, secret_id) = path.into_inner();
    Ok(
        match client_and_secret(&state, client_id, secret_id).await {
            Ok((client, secret)) => {
                let form = SecretForm {
                    description: secret.description.clone(),
                    expires: secret
                        .expires_at
                        .map(crate::clock::date)
                        .unwrap_or_default(),
                    ..SecretForm::default()
                };
                form_page(
                    &state,
                    &session,
                    &admin,
                    &client,
                    Some(&secret),
                    &form,
                    &HashMap::new(),
                )
            }
            Err(e) => failed(&state, &session, &e),
        },
    )
}

/// `POST /admin/clients/{client_id}/secrets/{id}`: save description and expiry.
pub async fn update(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    path: web::Path<(String, SecretId)>,
    form: web::Form<SecretForm>,
) -> Page {
    let admin = require_post(&state, &session, &req, form.csrf_token.as_deref()).await?;
    let (client_id, secret_id) = path.into_inner();
    let (client, secret) = client_and_secret(&state, client_id, secret_id)
        .await
        .or_page(&state, &session)?;
    let form = form.into_inner();
    let Valid(description, expires_at, _) = match form.validate(false, state.clock.now()) {
        Ok(v) => v,
        Err(errors) => {
            return Ok(form_page(
                &state,
                &session,
                &admin,
                &client,
                Some(&secret),
                &form,
                &errors,
            ));
        }
    };
    let (st, c, s, actor) = (
        state.clone(),
        client.clone(),
        secret.clone(),
        admin.actor.clone(),
    );
    let now = state.clock.now();
    let result = crate::db::run(&state.pool, move |conn| {
        let input = manage::SecretInput {
            description: &description,
            expires_at,
            value: None,
        };
        manage::update_secret(conn, &st.manage(), &actor, &c, &s, &input, now)
    })
    .await;
    Ok(match result {
        Ok(()) => done(
            &session,
            &format!("Secret ••••{} saved.", secret.hint),
            &format!("/admin/clients/{}/secrets", client.client_id),
        ),
        Err(e) => failed(&state, &session, &e),
    })
}

/// `GET /admin/clients/{client_id}/secrets/{id}/delete`: the confirmation step.
pub async fn confirm_delete(
    Editor(admin): Editor,
    state: web::Data<AppState>,
    session: Session,
    path: web::Path<(String, SecretId)>,
) -> Page {
    let (client_id, secret_id) = path.into_inner();
    let (client, secret) = client_and_secret(&state, client_id, secret_id)
        .await
        .or_page(&state, &session)?;
    let name = if secret.description.is_empty() {
        "This secret".to_string()
    } else {
        format!("The secret “{}”", secret.description)
    };
    Ok(super::confirm_page(
        &state,
        &session,
        &admin,
        "clients",
        &super::Confirm {
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
pub async fn delete(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    path: web::Path<(String, SecretId)>,
    form: web::Form<CsrfOnly>,
) -> Page {
    let admin = require_post(&state, &session, &req, form.csrf_token.as_deref()).await?;
    let (client_id, secret_id) = path.into_inner();
    let (client, secret) = client_and_secret(&state, client_id, secret_id)
        .await
        .or_page(&state, &session)?;
    let (st, c, s) = (state.clone(), client.clone(), secret.clone());
    let now = state.clock.now();
    let result = crate::db::run(&state.pool, move |conn| {
        manage::delete_secret(conn, &st.manage(), &admin.actor, &c, &s, now)
    })
    .await;
    Ok(match result {
        Ok(()) => done(
            &session,
            &format!("Secret ••••{} deleted.", secret.hint),
            &format!("/admin/clients/{}/secrets", client.client_id),
        ),
        Err(e) => failed(&state, &session, &e),
    })
}
