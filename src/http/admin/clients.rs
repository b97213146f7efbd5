//! Admin pages of clients: the list, create, settings, enable/disable, delete, redirect URIs.

use std::collections::HashMap;

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::http::session::CsrfOnly;

use super::{Admin, OrPage, Page, context, done, failed, load_client, require_post};
use super::{Editor, Viewer};
use crate::AppState;
use crate::client::{Client, ClientSummary, GrantType, ListQuery, NewClient, PAGE_SIZES, SortKey};
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

/// The client form as typed (kept on errors).
#[derive(Default, serde::Serialize, Clone)]
pub struct ClientForm {
    name: String,
    description: String,
    logo_url: String,
    kind: String,
    redirect_uris: String,
    scopes: String,
    grant_type: Vec<String>,
    access_token_ttl: String,
    refresh_token_ttl: String,
    ip_allowlist: String,
    rate_limit: String,
    auth_method: String,
    jwks: String,
    loopback_any_port: Option<String>,
    enabled: Option<String>,
    #[serde(skip_serializing)]
    csrf_token: Option<String>,
}

impl ClientForm {
    /// Parses the form body by hand: `grant_type` is a repeated checkbox, which
    /// `serde_urlencoded` cannot put in a list.
    fn parse(body: &[u8]) -> ClientForm {
        let mut f = ClientForm::default();
        for (k, v) in url::form_urlencoded::parse(body) {
            let v = v.into_owned();
            match k.as_ref() {
                "name" => f.name = v,
                "description" => f.description = v,
                "logo_url" => f.logo_url = v,
                "kind" => f.kind = v,
                "redirect_uris" => f.redirect_uris = v,
                "scopes" => f.scopes = v,
                "grant_type" => f.grant_type.push(v),
                "access_token_ttl" => f.access_token_ttl = v,
                "refresh_token_ttl" => f.refresh_token_ttl = v,
                "ip_allowlist" => f.ip_allowlist = v,
                "rate_limit" => f.rate_limit = v,
                "auth_method" => f.auth_method = v,
                "jwks" => f.jwks = v,
                "loopback_any_port" => f.loopback_any_port = Some(v),
                "enabled" => f.enabled = Some(v),
                "csrf_token" => f.csrf_token = Some(v),
                _ => {}
            }
        }
        f
    }

    fn of(client: &Client) -> ClientForm {
        ClientForm {
            name: client.name.clone(),
            description: client.description.clone(),
            logo_url: client.logo_url.clone().unwrap_or_default(),
            kind: if client.public {
                "public"
            } else {
                "confidential"
            }
            .into(),
            redirect_uris: client.redirect_uris.join("\n"),
            scopes: client.allowed_scopes.join(" "),
            grant_type: client
                .allowed_grant_types
                .iter()
                .map(|g| g.as_str().to_string())
                .collect(),
            access_token_ttl: client
                .access_token_ttl
                .map(|t| t.to_string())
                .unwrap_or_default(),
            refresh_token_ttl: client
                .refresh_token_ttl
                .map(|t| t.to_string())
                .unwrap_or_default(),
            ip_allowlist: client
                .ip_allowlist
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
            rate_limit: client
                .rate_limit_per_minute
                .map(|r| r.to_string())
                .unwrap_or_default(),
            auth_method: client
                .auth_method
                .map(|m| m.as_str().to_string())
                .unwrap_or_default(),
            jwks: client.jwks.clone().unwrap_or_default(),
            loopback_any_port: client.loopback_any_port.then(|| "on".to_string()),
            enabled: client.enabled.then(|| "on".to_string()),
            csrf_token: None,
        }
    }

    /// Checks every field; errors are keyed by field so that each shows beside its input.
    fn validate(
        &self,
        existing: Option<&Client>,
    ) -> Result<(NewClient, bool), HashMap<&'static str, String>> {
        let mut errors = HashMap::new();
        let mut check = |field: &'static str, r: Result<(), String>| {
            if let Err(e) = r {
                errors.entry(field).or_insert(e);
            }
        };
        check("name", crate::client::validate_name(&self.name).map(drop));
        if !self.logo_url.trim().is_empty() {
            check(
                "logo_url",
                crate::client::validate_logo_url(&self.logo_url).map(drop),
            );
        }
        for s in self.scopes.split_whitespace() {
            check("scopes", crate::client::validate_scope(s));
        }
        let redirect_uris: Vec<String> = match existing {
            Some(c) => c.redirect_uris.clone(),
            None => self
                .redirect_uris
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect(),
        };
        if existing.is_none() {
            for u in &redirect_uris {
                check(
                    "redirect_uris",
                    crate::client::validate_redirect_uri(u).map(drop),
                );
            }
        }
        let mut grant_types = Vec::new();
        for g in &self.grant_type {
            match GrantType::parse(g) {
                Some(g) => grant_types.push(g),
                None => check("grant_types", Err(format!("unknown grant type '{g}'"))),
            }
        }
        let ttl = |v: &str| -> Result<Option<i64>, String> {
            let v = v.trim();
            if v.is_empty() {
                return Ok(None);
            }
            v.parse::<i64>()
                .map(Some)
                .map_err(|_| "a whole number of seconds, or empty for the server default".into())
        };
        let access = ttl(&self.access_token_ttl);
        let refresh = ttl(&self.refresh_token_ttl);
        let rate_limit = match self.rate_limit.trim() {
            "" => None,
            r => match r.parse::<i64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    check(
                        "rate_limit",
                        Err("a whole number of requests per minute, or empty for no limit".into()),
                    );
                    None
                }
            },
        };
        for entry in self.ip_allowlist.split([',', ' ', '\n', '\r']) {
            if !entry.trim().is_empty() {
                check(
                    "ip_allowlist",
                    crate::client::parse_ip_net(entry.trim()).map(drop),
                );
            }
        }
        if let Err(e) = &access {
            check("access_token_ttl", Err(e.clone()));
        }
        if let Err(e) = &refresh {
            check("refresh_token_ttl", Err(e.clone()));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let public = existing.map_or(self.kind == "public", |c| c.public);
        let new = NewClient {
            name: self.name.clone(),
            description: self.description.clone(),
            logo_url: Some(self.logo_url.clone()),
            public,
            scopes: vec![self.scopes.clone()],
            grant_types,
            redirect_uris,
            loopback_any_port: self.loopback_any_port.is_some(),
            access_token_ttl: access.ok().flatten(),
            refresh_token_ttl: refresh.ok().flatten(),
            ip_allowlist: vec![self.ip_allowlist.clone()],
            rate_limit_per_minute: rate_limit,
            auth_method: crate::client::AuthMethod::parse(&self.auth_method),
            jwks: Some(self.jwks.clone()),
        };
        // The remaining rules span fields (grant types against kind and redirect URIs,
        // lifetimes): shown above the form.
        match new.validate() {
            Ok(valid) => Ok((valid, self.enabled.is_some())),
            Err(e) => {
                let field = if e.contains("lifetime") {
                    if e.contains("refresh") {
                        "refresh_token_ttl"
                    } else {
                        "access_token_ttl"
                    }
                } else if e.contains("grant") || e.contains("client_credentials") {
                    "grant_types"
                } else if e.contains("description") {
                    "description"
                } else if e.contains("rate limit") {
                    "rate_limit"
                } else if e.contains("JWKS") || e.contains("PEM") || e.contains("key") {
                    "jwks"
                } else if e.contains("method none") {
                    "auth_method"
                } else {
                    "form"
                };
                Err(HashMap::from([(field, e)]))
            }
        }
    }
}

fn grant_choices(checked: &[String]) -> Vec<serde_json::Value> {
    GrantType::ALL
        .iter()
        .map(|g| {
            let label = match g {
                GrantType::AuthorizationCode => "Authorization code (people sign in; PKCE)",
                GrantType::ClientCredentials => "Client credentials (the app acts for itself)",
                GrantType::RefreshToken => "Refresh token",
            };
            serde_json::json!({
                "value": g.as_str(),
                "label": label,
                "checked": checked.iter().any(|c| c == g.as_str()),
            })
        })
        .collect()
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
pub async fn redirect_uris(
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
pub async fn add_redirect_uri(
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
pub async fn remove_redirect_uri(
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
