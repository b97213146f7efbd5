//! Client queries. Every function takes the one connection of its caller.

use diesel::prelude::*;

use super::{Client, GrantType, NewClient, join_scopes, split_scopes};
use crate::db::AnyConnection;
use crate::db::schema::{client_secrets, clients, redirect_uris};
use crate::error::AppError;
use crate::secret::store::SecretRow;

#[derive(Queryable, Selectable)]
#[diesel(table_name = clients)]
pub(crate) struct ClientRow {
    id: i64,
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
    last_used_at: Option<i64>,
}

impl ClientRow {
    fn into_client(self, redirect_uris: Vec<String>) -> Client {
        Client {
            id: self.id,
            client_id: self.client_id,
            name: self.name,
            description: self.description,
            logo_url: self.logo_url,
            public: self.public,
            enabled: self.enabled,
            allowed_scopes: split_scopes(&self.allowed_scopes),
            allowed_grant_types: self
                .allowed_grant_types
                .split_whitespace()
                .filter_map(GrantType::parse)
                .collect(),
            access_token_ttl: self.access_token_ttl,
            refresh_token_ttl: self.refresh_token_ttl,
            redirect_uris,
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
        allowed_scopes: join_scopes(&new.scopes),
        allowed_grant_types: grant_types.join(" "),
        created_at: now,
        updated_at: now,
    };
    let result = conn.transaction(|conn| {
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

fn uris_of(conn: &mut AnyConnection, client_pk: i64) -> Result<Vec<String>, AppError> {
    Ok(redirect_uris::table
        .filter(redirect_uris::client_id.eq(client_pk))
        .order(redirect_uris::id)
        .select(redirect_uris::uri)
        .load(conn)?)
}

/// The client with this public client_id, with its redirect URIs.
pub fn find(conn: &mut AnyConnection, client_id: &str) -> Result<Option<Client>, AppError> {
    let row: Option<ClientRow> = clients::table
        .filter(clients::client_id.eq(client_id))
        .select(ClientRow::as_select())
        .first(conn)
        .optional()?;
    match row {
        None => Ok(None),
        Some(row) => {
            let uris = uris_of(conn, row.id)?;
            Ok(Some(row.into_client(uris)))
        }
    }
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
    let mut uris: std::collections::HashMap<i64, Vec<String>> = std::collections::HashMap::new();
    for (client_pk, uri) in redirect_uris::table
        .order(redirect_uris::id)
        .select((redirect_uris::client_id, redirect_uris::uri))
        .load::<(i64, String)>(conn)?
    {
        uris.entry(client_pk).or_default().push(uri);
    }
    let counts: std::collections::HashMap<i64, i64> = client_secrets::table
        .group_by(client_secrets::client_id)
        .select((client_secrets::client_id, diesel::dsl::count_star()))
        .load::<(i64, i64)>(conn)?
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

/// Records batched last-use times: (client primary key, time).
pub fn record_last_used(conn: &mut AnyConnection, uses: &[(i64, i64)]) -> Result<(), AppError> {
    for (id, at) in uses {
        diesel::update(clients::table.filter(clients::id.eq(id)))
            .set(clients::last_used_at.eq(at))
            .execute(conn)?;
    }
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

/// Registers a validated client: inserts it with its redirect URIs and, for a confidential
/// client, a first generated secret, in one transaction. Returns the client and the secret
/// value, to be shown once.
pub fn register(
    conn: &mut AnyConnection,
    new: &NewClient,
    now: i64,
) -> Result<(Client, Option<String>), AppError> {
    let client_id = crate::crypto::generate_id()?;
    let prepared = if new.public {
        None
    } else {
        Some(crate::secret::prepare(None)?)
    };
    conn.transaction(|conn| {
        let client = insert(conn, new, &client_id, now)?;
        let mut value = None;
        if let Some(p) = prepared {
            crate::secret::store::insert(
                conn,
                client.id,
                "Initial secret",
                &p.hash,
                &p.hint,
                None,
                now,
            )?;
            value = p.generated;
        }
        Ok((client, value))
    })
}

/// The counter that triggers increment on every change to clients, secrets and redirect URIs
/// (migration 2026-11-23-000003): when it moves, cached clients are stale.
pub fn generation(conn: &mut AnyConnection) -> Result<i64, AppError> {
    use crate::db::schema::cache_generation;
    Ok(cache_generation::table
        .find("clients")
        .select(cache_generation::value)
        .first(conn)?)
}

/// A client with its redirect URIs and all its secrets, as the in-memory cache keeps it,
/// and the generation it was read under (read first: see [`super::cache::ClientCache`]).
pub fn load_with_secrets(
    conn: &mut AnyConnection,
    client_id: &str,
) -> Result<Option<(i64, Client, Vec<SecretRow>)>, AppError> {
    let generation = generation(conn)?;
    let Some((client, secrets)) = load_for_auth(conn, client_id)? else {
        return Ok(None);
    };
    let uris = uris_of(conn, client.id)?;
    Ok(Some((
        generation,
        Client {
            redirect_uris: uris,
            ..client
        },
        secrets,
    )))
}
