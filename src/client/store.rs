//! Client queries. Every function takes the one connection of its caller.

use diesel::prelude::*;

use super::{
    Client, ClientSummary, EXPIRY_WARNING_SECONDS, GrantType, ListQuery, NewClient, RedirectUri,
    ScopeSet, SortKey,
};
use crate::db::AnyConnection;
use crate::db::schema::{client_secrets, clients, redirect_uris};
use crate::error::AppError;
use crate::ids::ClientKey;
use crate::secret::store::SecretRow;

/// A client's last authentication, from its narrow table (migration 000015; written by the
/// usage flush, read only to be shown).
const LAST_USED: &str =
    "(SELECT at FROM client_last_used WHERE client_last_used.client_id = clients.id)";

#[derive(Queryable, Selectable)]
#[diesel(table_name = clients)]
pub(crate) struct ClientRow {
    id: ClientKey,
    client_id: String,
    name: String,
    description: String,
    logo_url: Option<String>,
    public: bool,
    enabled: bool,
    allowed_scopes: String,
    allowed_grant_types: String,
    access_token_ttl: Option<i64>,
    refresh_token_ttl: Option<i64>,
    created_at: i64,
    updated_at: i64,
    #[diesel(select_expression = diesel::dsl::sql::<diesel::sql_types::Nullable<diesel::sql_types::BigInt>>(LAST_USED))]
    #[diesel(select_expression_type = diesel::expression::SqlLiteral<diesel::sql_types::Nullable<diesel::sql_types::BigInt>>)]
    last_used_at: Option<i64>,
    ip_allowlist: String,
    rate_limit_per_minute: Option<i64>,
    token_endpoint_auth_method: Option<String>,
    jwks: Option<String>,
    hmac_key: Option<String>,
    loopback_any_port: bool,
}

impl ClientRow {
    fn into_client(self, redirect_uris: Vec<RedirectUri>) -> Client {
        Client {
            id: self.id,
            client_id: self.client_id,
            name: self.name,
            description: self.description,
            logo_url: self.logo_url,
            public: self.public,
            enabled: self.enabled,
            allowed_scopes: ScopeSet::from_stored(&self.allowed_scopes),
            allowed_grant_types: self
                .allowed_grant_types
                .split_whitespace()
                .filter_map(GrantType::parse)
                .collect(),
            access_token_ttl: self.access_token_ttl,
            refresh_token_ttl: self.refresh_token_ttl,
            redirect_uris,
            loopback_any_port: self.loopback_any_port,
            // Validated when written; a line that no longer parses is left out (never widened).
            ip_allowlist: self
                .ip_allowlist
                .split_whitespace()
                .filter_map(|n| crate::client::parse_ip_net(n).ok())
                .collect(),
            rate_limit_per_minute: self.rate_limit_per_minute,
            auth_method: self
                .token_endpoint_auth_method
                .as_deref()
                .and_then(crate::client::AuthMethod::parse),
            jwks: self.jwks,
            hmac_key_sealed: self.hmac_key,
            created_at: self.created_at,
            updated_at: self.updated_at,
            last_used_at: self.last_used_at,
        }
    }
}

#[derive(Insertable)]
#[diesel(table_name = clients)]
struct NewClientRow<'a> {
    client_id: &'a str,
    name: &'a str,
    name_lower: String,
    description: &'a str,
    logo_url: Option<&'a str>,
    public: bool,
    enabled: bool,
    allowed_scopes: String,
    allowed_grant_types: String,
    access_token_ttl: Option<i64>,
    refresh_token_ttl: Option<i64>,
    ip_allowlist: String,
    rate_limit_per_minute: Option<i64>,
    token_endpoint_auth_method: Option<&'a str>,
    jwks: Option<&'a str>,
    loopback_any_port: bool,
    created_at: i64,
    updated_at: i64,
}

/// Inserts a validated client with its redirect URIs. A duplicate name is a Conflict.
pub fn insert(
    conn: &mut AnyConnection,
    new: &NewClient,
    client_id: &str,
    now: i64,
) -> Result<Client, AppError> {
    let grant_types: Vec<&str> = new.grant_types.iter().map(|g| g.as_str()).collect();
    let row = NewClientRow {
        client_id,
        name: &new.name,
        name_lower: new.name.to_lowercase(),
        description: &new.description,
        logo_url: new.logo_url.as_deref(),
        public: new.public,
        enabled: true,
        allowed_scopes: new.scopes.join(" "),
        allowed_grant_types: grant_types.join(" "),
        access_token_ttl: new.access_token_ttl,
        refresh_token_ttl: new.refresh_token_ttl,
        ip_allowlist: new.ip_allowlist.join("\n"),
        rate_limit_per_minute: new.rate_limit_per_minute,
        token_endpoint_auth_method: new.auth_method.map(|m| m.as_str()),
        jwks: new.jwks.as_deref(),
        loopback_any_port: new.loopback_any_port,
        created_at: now,
        updated_at: now,
    };
    let result = crate::db::transaction(conn, |conn| {
        let id: i64 = diesel::insert_into(clients::table)
            .values(&row)
            .returning(clients::id)
            .get_result(conn)?;
        for uri in &new.redirect_uris {
            diesel::insert_into(redirect_uris::table)
                .values((
                    redirect_uris::client_id.eq(id),
                    redirect_uris::uri.eq(uri),
                    redirect_uris::created_at.eq(now),
                ))
                .execute(conn)?;
        }
        Ok::<_, AppError>(id)
    });
    match result {
        Ok(_) => find(conn, client_id)?
            .ok_or_else(|| AppError::Internal("client vanished after insert".into())),
        Err(e) if e.is_unique_violation() => Err(AppError::Conflict(format!(
            "a client named '{}' already exists",
            new.name
        ))),
        Err(e) => Err(e),
    }
}

fn uris_of(conn: &mut AnyConnection, client_pk: ClientKey) -> Result<Vec<RedirectUri>, AppError> {
    Ok(redirect_uris::table
        .filter(redirect_uris::client_id.eq(client_pk))
        .order(redirect_uris::id)
        .select(redirect_uris::uri)
        .load::<String>(conn)?
        .into_iter()
        .map(RedirectUri::from_stored)
        .collect())
}

/// The redirect URIs of every enabled client (for the CORS origins, see `client::cors`).
pub fn enabled_redirect_uris(conn: &mut AnyConnection) -> Result<Vec<String>, AppError> {
    Ok(redirect_uris::table
        .inner_join(clients::table)
        .filter(clients::enabled.eq(true))
        .select(redirect_uris::uri)
        .load(conn)?)
}

/// The redirect URIs of those of these clients that are enabled (the CORS origins a change
/// may have added), in chunks that stay under either backend's bind limit.
pub fn enabled_redirect_uris_of(
    conn: &mut AnyConnection,
    client_pks: &[ClientKey],
) -> Result<Vec<String>, AppError> {
    let mut uris = Vec::new();
    for chunk in client_pks.chunks(5_000) {
        uris.extend(
            redirect_uris::table
                .inner_join(clients::table)
                .filter(clients::enabled.eq(true))
                .filter(clients::id.eq_any(chunk))
                .select(redirect_uris::uri)
                .load::<String>(conn)?,
        );
    }
    Ok(uris)
}

/// The client with this public client_id, with its redirect URIs.
pub fn find(conn: &mut AnyConnection, client_id: &str) -> Result<Option<Client>, AppError> {
    let row: Option<ClientRow> = clients::table
        .filter(clients::client_id.eq(client_id))
        .select(ClientRow::as_select())
        .get_result(conn)
        .optional()?;
    match row {
        None => Ok(None),
        Some(row) => {
            let uris = uris_of(conn, row.id)?;
            Ok(Some(row.into_client(uris)))
        }
    }
}

/// The client with this public client_id, or NotFound.
pub fn get(conn: &mut AnyConnection, client_id: &str) -> Result<Client, AppError> {
    find(conn, client_id)?
        .ok_or_else(|| AppError::NotFound(format!("no client with client_id '{client_id}'")))
}

/// A client with the number of its secrets, for listings.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ClientListItem {
    /// The client.
    #[serde(flatten)]
    pub client: Client,
    /// How many secrets it has (expired ones included).
    pub secret_count: i64,
}

/// All clients, newest first, with their redirect URIs and secret counts.
pub fn list(conn: &mut AnyConnection) -> Result<Vec<ClientListItem>, AppError> {
    let rows: Vec<ClientRow> = clients::table
        .order((clients::created_at.desc(), clients::id.desc()))
        .select(ClientRow::as_select())
        .load(conn)?;
    let mut uris: std::collections::HashMap<ClientKey, Vec<RedirectUri>> =
        std::collections::HashMap::new();
    for (client_pk, uri) in redirect_uris::table
        .order(redirect_uris::id)
        .select((redirect_uris::client_id, redirect_uris::uri))
        .load::<(ClientKey, String)>(conn)?
    {
        uris.entry(client_pk)
            .or_default()
            .push(RedirectUri::from_stored(uri));
    }
    let counts: std::collections::HashMap<ClientKey, i64> = client_secrets::table
        .group_by(client_secrets::client_id)
        .select((client_secrets::client_id, diesel::dsl::count_star()))
        .load::<(ClientKey, i64)>(conn)?
        .into_iter()
        .collect();
    Ok(rows
        .into_iter()
        .map(|row| {
            let id = row.id;
            ClientListItem {
                client: row.into_client(uris.remove(&id).unwrap_or_default()),
                secret_count: counts.get(&id).copied().unwrap_or(0),
            }
        })
        .collect())
}

/// Enables or disables a client. False if there is no such client.
pub fn set_enabled(
    conn: &mut AnyConnection,
    client_id: &str,
    enabled: bool,
    now: i64,
) -> Result<bool, AppError> {
    let n = diesel::update(clients::table.filter(clients::client_id.eq(client_id)))
        .set((clients::enabled.eq(enabled), clients::updated_at.eq(now)))
        .execute(conn)?;
    Ok(n > 0)
}

/// Deletes a client; its redirect URIs and secrets go with it (ON DELETE CASCADE).
/// False if there is no such client.
pub fn delete(conn: &mut AnyConnection, client_id: &str) -> Result<bool, AppError> {
    let n =
        diesel::delete(clients::table.filter(clients::client_id.eq(client_id))).execute(conn)?;
    Ok(n > 0)
}

/// Records batched last-use times: (client primary key, time), in one statement per 5,000.
pub fn record_last_used(
    conn: &mut AnyConnection,
    uses: &[(ClientKey, i64)],
) -> Result<(), AppError> {
    let rows: Vec<[i64; 2]> = uses.iter().map(|(id, at)| [id.0, *at]).collect();
    crate::db::prepared::batch(
        conn,
        "INSERT INTO client_last_used (client_id, at) \
         SELECT v.column1, v.column2 FROM {values} AS v \
         WHERE EXISTS (SELECT 1 FROM clients WHERE clients.id = v.column1) \
         ON CONFLICT (client_id) DO UPDATE SET at = excluded.at \
         WHERE excluded.at > client_last_used.at",
        &rows,
    )?;
    Ok(())
}

/// A client and all its secrets, loaded in one query for authentication at the token endpoint.
/// Redirect URIs are not loaded (the token endpoint of client_credentials does not need them).
pub fn load_for_auth(
    conn: &mut AnyConnection,
    client_id: &str,
) -> Result<Option<(Client, Vec<SecretRow>)>, AppError> {
    let rows: Vec<(ClientRow, Option<SecretRow>)> = clients::table
        .left_join(client_secrets::table)
        .filter(clients::client_id.eq(client_id))
        .select((ClientRow::as_select(), Option::<SecretRow>::as_select()))
        .load(conn)?;
    let mut secrets = Vec::with_capacity(rows.len());
    let mut client = None;
    for (row, secret) in rows {
        if client.is_none() {
            client = Some(row.into_client(Vec::new()));
        }
        secrets.extend(secret);
    }
    Ok(client.map(|c| (c, secrets)))
}

/// The clients changed after generation `after` up to `upto` (migration 000016), one per
/// change in generation order: (client primary key, generation). Fewer than `upto - after`
/// rows means some were pruned, and the caller cannot know which clients changed.
pub fn changes_between(
    conn: &mut AnyConnection,
    after: i64,
    upto: i64,
) -> Result<Vec<(ClientKey, i64)>, AppError> {
    use crate::db::schema::client_changes;
    Ok(client_changes::table
        .filter(client_changes::generation.gt(after))
        .filter(client_changes::generation.le(upto))
        .order(client_changes::generation)
        .select((client_changes::client_pk, client_changes::generation))
        .load(conn)?)
}

/// Every change after generation `after` up to `upto`, or None when the log does not hold
/// them all (one row per generation; rows were pruned, or PostgreSQL, which does not write
/// the log yet): then nobody can tell which clients changed.
pub fn all_changes_between(
    conn: &mut AnyConnection,
    after: i64,
    upto: i64,
) -> Result<Option<Vec<(ClientKey, i64)>>, AppError> {
    if after == i64::MIN || upto < after {
        return Ok(None);
    }
    let changes = changes_between(conn, after, upto)?;
    Ok((changes.len() as i64 == upto - after).then_some(changes))
}

/// Deletes all but the latest `keep` rows of `client_changes` (an instance that falls further
/// behind drops its whole cache instead). Returns how many went.
pub fn prune_changes(conn: &mut AnyConnection, keep: i64) -> Result<usize, AppError> {
    use crate::db::schema::client_changes;
    let latest = generation(conn)?;
    Ok(
        diesel::delete(client_changes::table.filter(client_changes::generation.le(latest - keep)))
            .execute(conn)?,
    )
}

/// The counter that triggers increment on every change to clients, secrets and redirect URIs
/// (migration 2026-11-23-000003): when it moves, cached clients are stale.
pub fn generation(conn: &mut AnyConnection) -> Result<i64, AppError> {
    crate::db::generation(conn, "clients")
}

/// A client with all its secrets, as the in-memory cache keeps it.
pub type ClientWithSecrets = (Client, Vec<SecretRow>);

/// A client with its redirect URIs and all its secrets, as the in-memory cache keeps it,
/// and the generation it was read under (read first: see [`super::cache::ClientCache`]).
pub fn load_with_secrets(
    conn: &mut AnyConnection,
    client_id: &str,
) -> Result<(i64, Option<ClientWithSecrets>), AppError> {
    let generation = generation(conn)?;
    let Some((client, secrets)) = load_for_auth(conn, client_id)? else {
        return Ok((generation, None));
    };
    let uris = uris_of(conn, client.id)?;
    Ok((
        generation,
        Some((
            Client {
                redirect_uris: uris,
                ..client
            },
            secrets,
        )),
    ))
}

/// Clients after `after` in primary-key order (at most `limit`), each with its redirect URIs
/// and all its secrets, as the cache keeps them: a page of the cache's preload
/// ([`super::cache::ClientCache::preload`]), three statements for the whole page.
pub fn page_with_secrets(
    conn: &mut AnyConnection,
    after: ClientKey,
    limit: i64,
) -> Result<Vec<ClientWithSecrets>, AppError> {
    let rows: Vec<ClientRow> = clients::table
        .filter(clients::id.gt(after))
        .order(clients::id)
        .limit(limit)
        .select(ClientRow::as_select())
        .load(conn)?;
    let (Some(first), Some(last)) = (rows.first().map(|r| r.id), rows.last().map(|r| r.id)) else {
        return Ok(Vec::new());
    };
    let secrets: Vec<SecretRow> = client_secrets::table
        .filter(client_secrets::client_id.between(first, last))
        .order((client_secrets::client_id, client_secrets::id))
        .select(SecretRow::as_select())
        .load(conn)?;
    let uris: Vec<(ClientKey, String)> = redirect_uris::table
        .filter(redirect_uris::client_id.between(first, last))
        .order((redirect_uris::client_id, redirect_uris::id))
        .select((redirect_uris::client_id, redirect_uris::uri))
        .load(conn)?;
    let mut secrets = secrets.into_iter().peekable();
    let mut uris = uris.into_iter().peekable();
    Ok(rows
        .into_iter()
        .map(|row| {
            let own_uris = rows_of(&mut uris, row.id, |(of, _)| *of)
                .into_iter()
                .map(|(_, uri)| RedirectUri::from_stored(uri))
                .collect();
            let own_secrets = rows_of(&mut secrets, row.id, |s| s.client_pk);
            (row.into_client(own_uris), own_secrets)
        })
        .collect())
}

/// The next rows of `rows` (in client order) that belong to client `pk`; rows of clients
/// before it (not in the page: deleted between the statements' snapshots, or inserted) are
/// skipped.
fn rows_of<T>(
    rows: &mut std::iter::Peekable<impl Iterator<Item = T>>,
    pk: ClientKey,
    of: impl Fn(&T) -> ClientKey,
) -> Vec<T> {
    let mut own = Vec::new();
    while let Some(row) = rows.peek() {
        match of(row).0.cmp(&pk.0) {
            std::cmp::Ordering::Less => drop(rows.next()),
            std::cmp::Ordering::Equal => own.extend(rows.next()),
            std::cmp::Ordering::Greater => break,
        }
    }
    own
}

diesel::define_sql_function! {
    /// SQL `lower()`, on SQLite and PostgreSQL alike.
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// `%` and `_` in a search are literal: escaped for `LIKE ... ESCAPE '\\'`.
fn like_pattern(search: &str) -> String {
    let mut p = String::with_capacity(search.len() + 2);
    p.push('%');
    for c in search.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// One page of the clients list and the number of clients matching the search. Search, sort
/// and pagination are done by the database (LIMIT/OFFSET over indexed columns), so a page
/// costs the same with a hundred clients or a hundred thousand.
pub fn list_page(
    conn: &mut AnyConnection,
    q: &ListQuery,
    now: i64,
) -> Result<(Vec<ClientSummary>, i64), AppError> {
    use diesel::dsl::sql;
    use diesel::sql_types::{BigInt, Nullable, Text};
    let pattern = q.search.as_deref().map(like_pattern);
    let filtered = || {
        let mut query = clients::table.into_boxed();
        if let Some(p) = &pattern {
            query = query.filter(
                clients::name_lower
                    .like(p.clone())
                    .escape('\\')
                    .or(lower(clients::client_id).like(p.clone()).escape('\\')),
            );
        }
        query
    };
    let total: i64 = filtered().count().get_result(conn)?;
    let mut query = filtered();
    let desc = q.descending;
    query = match (q.sort, desc) {
        (SortKey::ClientId, false) => query.order(clients::client_id.asc()),
        (SortKey::ClientId, true) => query.order(clients::client_id.desc()),
        (SortKey::Name, false) => query.order(clients::name_lower.asc()),
        (SortKey::Name, true) => query.order(clients::name_lower.desc()),
        (SortKey::Status, false) => query.order(clients::enabled.asc()),
        (SortKey::Status, true) => query.order(clients::enabled.desc()),
        (SortKey::Created, false) => query.order(clients::created_at.asc()),
        (SortKey::Created, true) => query.order(clients::created_at.desc()),
        (SortKey::LastUsed, false) => {
            query.order(sql::<BigInt>(&format!("COALESCE({LAST_USED}, 0)")).asc())
        }
        (SortKey::LastUsed, true) => {
            query.order(sql::<BigInt>(&format!("COALESCE({LAST_USED}, 0)")).desc())
        }
        (SortKey::Secrets, false) => query.order(
            sql::<BigInt>(
                "(SELECT COUNT(*) FROM client_secrets WHERE client_secrets.client_id = clients.id)",
            )
            .asc(),
        ),
        (SortKey::Secrets, true) => query.order(
            sql::<BigInt>(
                "(SELECT COUNT(*) FROM client_secrets WHERE client_secrets.client_id = clients.id)",
            )
            .desc(),
        ),
        (SortKey::RedirectUris, false) => query.order(
            sql::<Nullable<Text>>(
                "COALESCE((SELECT MIN(uri) FROM redirect_uris WHERE redirect_uris.client_id = clients.id), '')",
            )
            .asc(),
        ),
        (SortKey::RedirectUris, true) => query.order(
            sql::<Nullable<Text>>(
                "COALESCE((SELECT MIN(uri) FROM redirect_uris WHERE redirect_uris.client_id = clients.id), '')",
            )
            .desc(),
        ),
    };
    // A stable order for equal keys, so that pages neither repeat nor skip rows.
    query = if desc {
        query.then_order_by(clients::id.desc())
    } else {
        query.then_order_by(clients::id.asc())
    };
    let paging = crate::db::paging::Paging::new(Some(q.page), q.per_page)?;
    let rows: Vec<ClientRow> = query
        .select(ClientRow::as_select())
        .offset(paging.offset())
        .limit(paging.per_page)
        .load(conn)?;
    let ids: Vec<ClientKey> = rows.iter().map(|r| r.id).collect();
    let mut uris: std::collections::HashMap<ClientKey, Vec<RedirectUri>> =
        std::collections::HashMap::new();
    for (client_pk, uri) in redirect_uris::table
        .filter(redirect_uris::client_id.eq_any(&ids))
        .order(redirect_uris::id)
        .select((redirect_uris::client_id, redirect_uris::uri))
        .load::<(ClientKey, String)>(conn)?
    {
        uris.entry(client_pk)
            .or_default()
            .push(RedirectUri::from_stored(uri));
    }
    let mut expiries: std::collections::HashMap<ClientKey, Vec<Option<i64>>> =
        std::collections::HashMap::new();
    for (client_pk, exp) in client_secrets::table
        .filter(client_secrets::client_id.eq_any(&ids))
        .select((client_secrets::client_id, client_secrets::expires_at))
        .load::<(ClientKey, Option<i64>)>(conn)?
    {
        expiries.entry(client_pk).or_default().push(exp);
    }
    Ok((
        rows.into_iter()
            .map(|row| {
                let id = row.id;
                let exps = expiries.remove(&id).unwrap_or_default();
                let expired = |e: &Option<i64>| e.is_some_and(|e| e <= now);
                ClientSummary {
                    secret_count: exps.len(),
                    expiring_soon: exps
                        .iter()
                        .any(|e| e.is_some_and(|e| e > now && e <= now + EXPIRY_WARNING_SECONDS)),
                    all_expired: !exps.is_empty() && exps.iter().all(expired),
                    client: row.into_client(uris.remove(&id).unwrap_or_default()),
                }
            })
            .collect(),
        total,
    ))
}

/// Changes a client's settings (everything but its kind, client_id and redirect URIs). A
/// duplicate name is a Conflict.
pub fn update(
    conn: &mut AnyConnection,
    client_pk: ClientKey,
    settings: &NewClient,
    enabled: bool,
    now: i64,
) -> Result<(), AppError> {
    let grant_types: Vec<&str> = settings.grant_types.iter().map(|g| g.as_str()).collect();
    let result = diesel::update(clients::table.filter(clients::id.eq(client_pk)))
        .set((
            clients::name.eq(&settings.name),
            clients::name_lower.eq(settings.name.to_lowercase()),
            clients::description.eq(&settings.description),
            clients::logo_url.eq(settings.logo_url.as_deref()),
            clients::enabled.eq(enabled),
            clients::allowed_scopes.eq(settings.scopes.join(" ")),
            clients::allowed_grant_types.eq(grant_types.join(" ")),
            clients::access_token_ttl.eq(settings.access_token_ttl),
            clients::refresh_token_ttl.eq(settings.refresh_token_ttl),
            clients::ip_allowlist.eq(settings.ip_allowlist.join("\n")),
            clients::rate_limit_per_minute.eq(settings.rate_limit_per_minute),
            clients::token_endpoint_auth_method.eq(settings.auth_method.map(|m| m.as_str())),
            clients::jwks.eq(settings.jwks.as_deref()),
            clients::loopback_any_port.eq(settings.loopback_any_port),
            clients::updated_at.eq(now),
        ))
        .execute(conn)
        .map_err(AppError::from);
    match result {
        Ok(_) => Ok(()),
        Err(e) if e.is_unique_violation() => Err(AppError::Conflict(format!(
            "a client named '{}' already exists",
            settings.name
        ))),
        Err(e) => Err(e),
    }
}

/// A client's redirect URIs with their ids.
pub fn redirect_uris(
    conn: &mut AnyConnection,
    client_pk: ClientKey,
) -> Result<Vec<(i64, String)>, AppError> {
    Ok(redirect_uris::table
        .filter(redirect_uris::client_id.eq(client_pk))
        .order(redirect_uris::id)
        .select((redirect_uris::id, redirect_uris::uri))
        .load(conn)?)
}

/// Adds a validated redirect URI; a duplicate is a Conflict.
pub fn add_redirect_uri(
    conn: &mut AnyConnection,
    client_pk: ClientKey,
    uri: &RedirectUri,
    now: i64,
) -> Result<(), AppError> {
    let result = diesel::insert_into(redirect_uris::table)
        .values((
            redirect_uris::client_id.eq(client_pk),
            redirect_uris::uri.eq(uri.as_str()),
            redirect_uris::created_at.eq(now),
        ))
        .execute(conn)
        .map_err(AppError::from);
    match result {
        Ok(_) => Ok(()),
        Err(e) if e.is_unique_violation() => Err(AppError::Conflict(format!(
            "{uri} is already registered for this client"
        ))),
        Err(e) => Err(e),
    }
}

/// Removes a redirect URI of a client; returns it, None when there was no such URI.
pub fn remove_redirect_uri(
    conn: &mut AnyConnection,
    client_pk: ClientKey,
    uri_id: i64,
) -> Result<Option<String>, AppError> {
    crate::db::transaction(conn, |conn| {
        let uri: Option<String> = redirect_uris::table
            .filter(redirect_uris::id.eq(uri_id))
            .filter(redirect_uris::client_id.eq(client_pk))
            .select(redirect_uris::uri)
            .get_result(conn)
            .optional()?;
        if uri.is_some() {
            diesel::delete(redirect_uris::table.filter(redirect_uris::id.eq(uri_id)))
                .execute(conn)?;
        }
        Ok(uri)
    })
}

/// Deletes a client with everything it owns: secrets, redirect URIs, consents and token
/// families (codes and refresh tokens); the access tokens issued from those families are put
/// on the revocation list first, so that introspection reports them inactive.
pub fn delete_with_tokens(
    conn: &mut AnyConnection,
    client_pk: ClientKey,
    now: i64,
) -> Result<bool, AppError> {
    use crate::db::schema::grants;
    crate::db::transaction(conn, |conn| {
        let families: Vec<i64> = grants::table
            .filter(grants::client_id.eq(client_pk))
            .filter(grants::revoked_at.is_null())
            .select(grants::id)
            .load(conn)?;
        for id in families {
            crate::token::store::revoke_family(conn, id, now)?;
        }
        let n = diesel::delete(clients::table.filter(clients::id.eq(client_pk))).execute(conn)?;
        Ok(n > 0)
    })
}

/// Adds batched token counts: (client primary key, day, tokens). A client deleted meanwhile
/// is skipped.
pub fn add_token_counts(
    conn: &mut AnyConnection,
    counts: &[(ClientKey, i64, i64)],
) -> Result<(), AppError> {
    let rows: Vec<[i64; 3]> = counts.iter().map(|(c, d, n)| [c.0, *d, *n]).collect();
    // One upsert per 5,000 counts; another instance adding to the same day at once adds to
    // the same row. Counts of a client deleted meanwhile are dropped.
    crate::db::prepared::batch(
        conn,
        "INSERT INTO token_usage (client_id, day, count) \
         SELECT v.column1, v.column2, v.column3 FROM {values} AS v \
         WHERE EXISTS (SELECT 1 FROM clients WHERE clients.id = v.column1) \
         ON CONFLICT (client_id, day) DO UPDATE SET count = token_usage.count + excluded.count",
        &rows,
    )?;
    Ok(())
}

/// Tokens issued per day for a client from `first_day` on: (day, count), days without
/// tokens left out.
pub fn token_counts(
    conn: &mut AnyConnection,
    client_pk: ClientKey,
    first_day: i64,
) -> Result<Vec<(i64, i64)>, AppError> {
    use crate::db::schema::token_usage;
    Ok(token_usage::table
        .filter(token_usage::client_id.eq(client_pk))
        .filter(token_usage::day.ge(first_day))
        .order(token_usage::day)
        .select((token_usage::day, token_usage::count))
        .load(conn)?)
}

/// All tokens ever counted for a client (one row per day: summed here, which keeps the query
/// portable; `SUM` of a BIGINT is NUMERIC on PostgreSQL).
pub fn token_total(conn: &mut AnyConnection, client_pk: ClientKey) -> Result<i64, AppError> {
    use crate::db::schema::token_usage;
    let counts: Vec<i64> = token_usage::table
        .filter(token_usage::client_id.eq(client_pk))
        .select(token_usage::count)
        .load(conn)?;
    Ok(counts.iter().sum())
}

/// Records a client assertion's `jti` until it expires; false when it was seen before (a
/// replay, RFC 7523 3).
pub fn use_assertion_jti(
    conn: &mut AnyConnection,
    client_pk: ClientKey,
    jti: &str,
    expires_at: i64,
    now: i64,
) -> Result<bool, AppError> {
    use crate::db::schema::client_assertion_jtis as t;
    // Kept as long as verification could still accept the assertion (exp + LEEWAY), so that
    // one assertion is used once (RFC 7523 3).
    diesel::delete(t::table.filter(t::expires_at.lt(now - super::assertion::LEEWAY)))
        .execute(conn)?;
    crate::db::insert_new(conn, |conn| {
        diesel::insert_into(t::table)
            .values((
                t::client_id.eq(client_pk),
                t::jti.eq(jti),
                t::expires_at.eq(expires_at),
            ))
            .execute(conn)
    })
}

/// Stores (or with None removes) a client's sealed client_secret_jwt key.
pub fn set_hmac_key(
    conn: &mut AnyConnection,
    client_pk: ClientKey,
    sealed: Option<&str>,
) -> Result<(), AppError> {
    diesel::update(clients::table.filter(clients::id.eq(client_pk)))
        .set(clients::hmac_key.eq(sealed))
        .execute(conn)?;
    Ok(())
}
