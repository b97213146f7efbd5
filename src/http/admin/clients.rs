//! Admin pages of clients: the list, create, settings, enable/disable, delete (the form is in
//! `client_form`, the redirect URIs in `redirect_uris`).

use std::collections::HashMap;

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::http::session::CsrfOnly;

use super::client_form::{ClientForm, grant_choices};
use super::{Admin, OrPage, Page, context, done, failed, load_client, require_post};
use super::{Editor, Viewer};
use crate::AppState;
use crate::client::{Client, ClientSummary, GrantType, ListQuery, PAGE_SIZES, SortKey};
use crate::error::AppError;
use crate::manage;

/// Query of the clients list.
#[derive(Deserialize, Default)]
pub struct ListParams {
    q: Option<String>,
    sort: Option<String>,
    dir: Option<String>,
    page: Option<String>,
    per_page: Option<String>,
}

impl ListParams {
    /// Unknown or malformed values fall back to the defaults (newest first, 25 per page); a
    /// page number beyond `db::paging::MAX_PAGE` is refused.
    fn to_query(&self) -> Result<ListQuery, AppError> {
        let default = ListQuery::default();
        let sort = self
            .sort
            .as_deref()
            .and_then(SortKey::parse)
            .unwrap_or(default.sort);
        let descending = match self.dir.as_deref() {
            Some("asc") => false,
            Some("desc") => true,
            _ => sort == SortKey::Created,
        };
        let per_page = self
            .per_page
            .as_deref()
            .and_then(|p| p.parse().ok())
            .filter(|p| PAGE_SIZES.contains(p))
            .unwrap_or(default.per_page);
        let paging = crate::db::paging::Paging::parse(self.page.as_deref(), per_page)?;
        Ok(ListQuery {
            search: self
                .q
                .as_deref()
                .map(str::trim)
                .filter(|q| !q.is_empty())
                .map(|q| q.chars().take(100).collect()),
            sort,
            descending,
            page: paging.page,
            per_page,
        })
    }
}

/// A link to the list with these settings (search, sort and page size kept).
fn list_href(q: &ListQuery, sort: SortKey, descending: bool, page: i64) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    if let Some(search) = &q.search {
        s.append_pair("q", search);
    }
    s.append_pair("sort", sort.as_str());
    s.append_pair("dir", if descending { "desc" } else { "asc" });
    s.append_pair("per_page", &q.per_page.to_string());
    s.append_pair("page", &page.to_string());
    format!("/admin/clients?{}", s.finish())
}

fn column_label(key: SortKey) -> &'static str {
    match key {
        SortKey::ClientId => "Client ID",
        SortKey::Name => "Name",
        SortKey::RedirectUris => "Redirect URIs",
        SortKey::Secrets => "Secrets",
        SortKey::Status => "Status",
        SortKey::Created => "Created",
        SortKey::LastUsed => "Last used",
    }
}

fn row_json(s: &ClientSummary) -> serde_json::Value {
    let c = &s.client;
    serde_json::json!({
        "client_id": c.client_id,
        "name": c.name,
        "logo_url": c.logo_url,
        "public": c.public,
        "redirect_uris": c.redirect_uris,
        "secret_count": s.secret_count,
        "expiring_soon": s.expiring_soon,
        "all_expired": s.all_expired,
        "enabled": c.enabled,
        "created": crate::clock::date(c.created_at),
        "last_used": c.last_used_at.map_or_else(|| "Never".to_string(), crate::clock::human),
    })
}

/// `GET /admin/clients`.
pub async fn list(
    Viewer(admin): Viewer,
    state: web::Data<AppState>,
    session: Session,
    params: web::Query<ListParams>,
) -> Page {
    let q = params.to_query().or_page(&state, &session)?;
    let (query, now) = (q.clone(), state.clock.now());
    let page = crate::db::run(&state.pool, move |conn| {
        crate::client::store::list_page(conn, &query, now)
    })
    .await;
    let (rows, total) = page.or_page(&state, &session)?;
    let pages = ((total + q.per_page - 1) / q.per_page).max(1);
    let mut ctx = context(&session, &admin, "clients");
    ctx.insert("q", q.search.as_deref().unwrap_or(""));
    ctx.insert("sort", q.sort.as_str());
    ctx.insert("dir", if q.descending { "desc" } else { "asc" });
    ctx.insert("per_page", &q.per_page);
    ctx.insert("page_sizes", &PAGE_SIZES);
    let columns: Vec<serde_json::Value> = SortKey::ALL
        .iter()
        .map(|&key| {
            // Clicking the sorted column reverses it; another column starts ascending
            // (dates newest first).
            let descending = if key == q.sort {
                !q.descending
            } else {
                matches!(key, SortKey::Created | SortKey::LastUsed)
            };
            serde_json::json!({
                "key": key.as_str(),
                "label": column_label(key),
                "href": list_href(&q, key, descending, 1),
            })
        })
        .collect();
    ctx.insert("columns", &columns);
    ctx.insert("rows", &rows.iter().map(row_json).collect::<Vec<_>>());
    ctx.insert("total", &total);
    ctx.insert("page", &q.page);
    ctx.insert("pages", &pages);
    ctx.insert("first", &((q.page - 1) * q.per_page + 1).min(total));
    ctx.insert("last", &((q.page - 1) * q.per_page + rows.len() as i64));
    if q.page > 1 {
        ctx.insert(
            "prev_href",
            &list_href(&q, q.sort, q.descending, (q.page - 1).min(pages)),
        );
    }
    if q.page < pages {
        ctx.insert(
            "next_href",
            &list_href(&q, q.sort, q.descending, q.page + 1),
        );
    }
    Ok(state
        .pages
        .render(StatusCode::OK, "admin/clients.html", &ctx))
}

#[allow(clippy::too_many_arguments)]
fn form_page(
    state: &AppState,
    session: &Session,
    admin: &Admin,
    client: Option<&Client>,
    form: &ClientForm,
    errors: &HashMap<&'static str, String>,
    status: StatusCode,
) -> HttpResponse {
    let mut ctx = context(session, admin, "clients");
    ctx.insert("creating", &client.is_none());
    if let Some(c) = client {
        ctx.insert("client", c);
        ctx.insert("tab", "settings");
    }
    ctx.insert("form", form);
    ctx.insert("grant_types", &grant_choices(&form.grant_type));
    let methods: Vec<serde_json::Value> = std::iter::once(serde_json::json!({
        "value": "", "label": "client_secret_basic or client_secret_post (a secret)",
    }))
    .chain(crate::client::AuthMethod::ALL.iter().map(|m| {
        let label = match m {
            crate::client::AuthMethod::ClientSecretBasic => "client_secret_basic only",
            crate::client::AuthMethod::ClientSecretPost => "client_secret_post only",
            crate::client::AuthMethod::PrivateKeyJwt => {
                "private_key_jwt (a JWT signed with the client's key)"
            }
            crate::client::AuthMethod::ClientSecretJwt => {
                "client_secret_jwt (a JWT signed with a shared HMAC key)"
            }
        };
        serde_json::json!({ "value": m.as_str(), "label": label })
    }))
    .collect();
    ctx.insert("auth_methods", &methods);
    ctx.insert("default_access_ttl", &state.access_token_ttl);
    ctx.insert("default_refresh_ttl", &state.refresh_token_ttl);
    // Always defined: the template looks up `errors.FIELD`.
    ctx.insert("errors", errors);
    state.pages.render(status, "admin/client_form.html", &ctx)
}

/// `GET /admin/clients/new`.
pub async fn new(Editor(admin): Editor, state: web::Data<AppState>, session: Session) -> Page {
    let form = ClientForm {
        kind: "confidential".into(),
        grant_type: vec![GrantType::ClientCredentials.as_str().into()],
        enabled: Some("on".into()),
        ..ClientForm::default()
    };
    Ok(form_page(
        &state,
        &session,
        &admin,
        None,
        &form,
        &HashMap::new(),
        StatusCode::OK,
    ))
}

/// `POST /admin/clients`: register; a confidential client's first secret is shown once.
pub async fn create(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    body: web::Bytes,
) -> Page {
    let form = ClientForm::parse(&body);
    let admin = require_post(&state, &session, &req, form.csrf_token.as_deref()).await?;
    let (new, enabled) = match form.validate(None) {
        Ok(v) => v,
        Err(errors) => {
            return Ok(form_page(
                &state,
                &session,
                &admin,
                None,
                &form,
                &errors,
                StatusCode::BAD_REQUEST,
            ));
        }
    };
    let st = state.clone();
    let actor = admin.actor.clone();
    let now = state.clock.now();
    let created = crate::db::run(&state.pool, move |conn| {
        manage::create_client(conn, &st.manage(), &actor, &new, enabled, now)
    })
    .await;
    Ok(match created {
        Ok((client, Some(secret))) => {
            super::secret_shown(&state, &session, &admin, &client, &secret, "Client created")
        }
        Ok((client, None)) => done(
            &session,
            "Client created.",
            &format!("/admin/clients/{}", client.client_id),
        ),
        Err(AppError::Conflict(m)) => form_page(
            &state,
            &session,
            &admin,
            None,
            &form,
            &HashMap::from([("name", m)]),
            StatusCode::BAD_REQUEST,
        ),
        Err(e) => failed(&state, &session, &e),
    })
}

/// `GET /admin/clients/{client_id}`: the Settings tab.
pub async fn show(
    Viewer(admin): Viewer,
    state: web::Data<AppState>,
    session: Session,
    path: web::Path<String>,
) -> Page {
    Ok(match load_client(&state, path.into_inner()).await {
        Ok(client) => {
            let form = ClientForm::of(&client);
            form_page(
                &state,
                &session,
                &admin,
                Some(&client),
                &form,
                &HashMap::new(),
                StatusCode::OK,
            )
        }
        Err(e) => failed(&state, &session, &e),
    })
}

/// `POST /admin/clients/{client_id}`: save the settings.
pub async fn update(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Page {
    let form = ClientForm::parse(&body);
    let admin = require_post(&state, &session, &req, form.csrf_token.as_deref()).await?;
    let client = load_client(&state, path.into_inner())
        .await
        .or_page(&state, &session)?;
    let (settings, enabled) = match form.validate(Some(&client)) {
        Ok(v) => v,
        Err(errors) => {
            return Ok(form_page(
                &state,
                &session,
                &admin,
                Some(&client),
                &form,
                &errors,
                StatusCode::BAD_REQUEST,
            ));
        }
    };
    let (st, actor, c) = (state.clone(), admin.actor.clone(), client.clone());
    let now = state.clock.now();
    let saved = crate::db::run(&state.pool, move |conn| {
        manage::update_client(conn, &st.manage(), &actor, &c, &settings, enabled, now)
    })
    .await;
    Ok(match saved {
        Ok(Some(hmac_key)) => super::secret_shown(
            &state,
            &session,
            &admin,
            &client,
            &hmac_key,
            "Settings saved: the client_secret_jwt key",
        ),
        Ok(None) => done(
            &session,
            "Settings saved.",
            &format!("/admin/clients/{}", client.client_id),
        ),
        Err(AppError::Conflict(m)) => form_page(
            &state,
            &session,
            &admin,
            Some(&client),
            &form,
            &HashMap::from([("name", m)]),
            StatusCode::BAD_REQUEST,
        ),
        Err(e) => failed(&state, &session, &e),
    })
}

/// `POST /admin/clients/{client_id}/enable` and `.../disable`.
pub async fn set_enabled(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    csrf: web::Form<CsrfOnly>,
) -> Page {
    let admin = require_post(&state, &session, &req, csrf.csrf_token.as_deref()).await?;
    let (client_id, toggle) = path.into_inner();
    let enabled = toggle == "enable";
    let client = load_client(&state, client_id)
        .await
        .or_page(&state, &session)?;
    let (st, c) = (state.clone(), client.clone());
    let now = state.clock.now();
    let result = crate::db::run(&state.pool, move |conn| {
        manage::set_enabled(conn, &st.manage(), &admin.actor, &c, enabled, now)
    })
    .await;
    Ok(match result {
        Ok(()) => done(
            &session,
            if enabled {
                "Client enabled."
            } else {
                "Client disabled: it is refused everywhere until enabled again."
            },
            &format!("/admin/clients/{}", client.client_id),
        ),
        Err(e) => failed(&state, &session, &e),
    })
}

/// `GET /admin/clients/{client_id}/delete`: the confirmation page.
pub async fn confirm_delete(
    Editor(admin): Editor,
    state: web::Data<AppState>,
    session: Session,
    path: web::Path<String>,
) -> Page {
    let client = load_client(&state, path.into_inner())
        .await
        .or_page(&state, &session)?;
    Ok(super::confirm_page(
        &state,
        &session,
        &admin,
        "clients",
        &super::Confirm {
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
pub async fn delete(
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
    let (st, c) = (state.clone(), client.clone());
    let now = state.clock.now();
    let result = crate::db::run(&state.pool, move |conn| {
        manage::delete_client(conn, &st.manage(), &admin.actor, &c, now)
    })
    .await;
    Ok(match result {
        Ok(()) => done(
            &session,
            &format!("Client “{}” deleted.", client.name),
            "/admin/clients",
        ),
        Err(e) => failed(&state, &session, &e),
    })
}
