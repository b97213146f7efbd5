//! What admins do to clients, redirect URIs and secrets from the admin area: each change and
//! its audit event in one transaction, and the local client cache dropped right after, so that
//! this instance applies the change at once (others within `PORTCULLIS_CLIENT_CACHE_MS`).

use crate::audit::NewEvent;
use crate::client::cache::ClientCache;
use crate::client::{Client, NewClient};
use crate::db::AnyConnection;
use crate::error::AppError;
use crate::secret::store::SecretRow;

/// Who acts, for the audit log.
#[derive(Debug, Clone)]
pub struct Actor {
    /// Username.
    pub username: String,
    /// Remote address of the request.
    pub remote_addr: String,
}

impl Actor {
    /// The person running the CLI: `cli:<OS user>` from `local`.
    pub fn cli() -> Actor {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .ok()
            .filter(|u| !u.is_empty() && u.len() <= 64 && u.chars().all(|c| c.is_ascii_graphic()))
            .unwrap_or_else(|| "unknown".into());
        Actor {
            username: format!("cli:{user}"),
            remote_addr: "local".into(),
        }
    }

    fn record(
        &self,
        conn: &mut AnyConnection,
        action: &str,
        client: Option<&Client>,
        target: &str,
        details: &str,
        now: i64,
    ) -> Result<(), AppError> {
        crate::audit::store::record(
            conn,
            &NewEvent {
                actor: &self.username,
                action,
                client_id: client.map(|c| c.client_id.as_str()),
                target,
                details,
                remote_addr: &self.remote_addr,
            },
            now,
        )
    }
}

fn changed<T>(cache: &ClientCache, result: Result<T, AppError>) -> Result<T, AppError> {
    if result.is_ok() {
        cache.clear();
    }
    result
}

/// Registers a client (and, if confidential, its first generated secret or client_secret_jwt
/// key, returned once).
pub fn create_client(
    conn: &mut AnyConnection,
    state: &crate::AppState,
    actor: &Actor,
    new: &NewClient,
    now: i64,
) -> Result<(Client, Option<String>), AppError> {
    create_client_with(conn, &state.clients, &state.master_key, actor, new, now)
}

/// [`create_client`] for a caller without a running server's state (the CLI).
pub fn create_client_with(
    conn: &mut AnyConnection,
    cache: &ClientCache,
    master: &crate::seal::MasterKey,
    actor: &Actor,
    new: &NewClient,
    now: i64,
) -> Result<(Client, Option<String>), AppError> {
    changed(
        cache,
        crate::db::transaction(conn, |conn| {
            let (client, secret) = crate::client::store::register(conn, new, now, master)?;
            let kind = if client.public {
                "public"
            } else {
                "confidential"
            };
            actor.record(
                conn,
                "client.create",
                Some(&client),
                &client.name,
                kind,
                now,
            )?;
            Ok((client, secret))
        }),
    )
}

/// Changes a client's settings. Switching a client to client_secret_jwt creates its shared
/// HMAC key, returned to be shown once; switching away removes it.
pub fn update_client(
    conn: &mut AnyConnection,
    state: &crate::AppState,
    actor: &Actor,
    client: &Client,
    settings: &NewClient,
    enabled: bool,
    now: i64,
) -> Result<Option<String>, AppError> {
    update_client_with(
        conn,
        &state.clients,
        &state.master_key,
        actor,
        client,
        settings,
        enabled,
        now,
    )
}

/// [`update_client`] for a caller without a running server's state (the CLI).
#[allow(clippy::too_many_arguments)]
pub fn update_client_with(
    conn: &mut AnyConnection,
    cache: &ClientCache,
    master: &crate::seal::MasterKey,
    actor: &Actor,
    client: &Client,
    settings: &NewClient,
    enabled: bool,
    now: i64,
) -> Result<Option<String>, AppError> {
    let wants_hmac = settings.auth_method == Some(crate::client::AuthMethod::ClientSecretJwt);
    let new_key = if wants_hmac && client.hmac_key_sealed.is_none() {
        Some(crate::client::store::new_hmac_key(
            master,
            &client.client_id,
        )?)
    } else {
        None
    };
    changed(
        cache,
        crate::db::transaction(conn, |conn| {
            crate::client::store::update(conn, client.id, settings, enabled, now)?;
            match &new_key {
                Some((_, sealed)) => {
                    crate::client::store::set_hmac_key(conn, client.id, Some(sealed))?
                }
                None if !wants_hmac && client.hmac_key_sealed.is_some() => {
                    crate::client::store::set_hmac_key(conn, client.id, None)?
                }
                None => {}
            }
            let mut what = Vec::new();
            if settings.name != client.name {
                what.push(format!("renamed from '{}'", client.name));
            }
            if enabled != client.enabled {
                what.push(if enabled { "enabled" } else { "disabled" }.to_string());
            }
            if settings.scopes != client.allowed_scopes {
                what.push(format!("scopes: {}", settings.scopes.join(" ")));
            }
            let grants: Vec<GrantTypeName> =
                settings.grant_types.iter().map(|g| g.as_str()).collect();
            let before: Vec<GrantTypeName> = client
                .allowed_grant_types
                .iter()
                .map(|g| g.as_str())
                .collect();
            if grants != before {
                what.push(format!("grant types: {}", grants.join(" ")));
            }
            if settings.loopback_any_port != client.loopback_any_port {
                what.push(
                    if settings.loopback_any_port {
                        "loopback redirect URIs match any port"
                    } else {
                        "loopback redirect URIs match their registered port"
                    }
                    .to_string(),
                );
            }
            actor.record(
                conn,
                "client.update",
                Some(client),
                &settings.name,
                &what.join("; "),
                now,
            )?;
            Ok(new_key.map(|k| k.0))
        }),
    )
}

type GrantTypeName = &'static str;

/// Enables or disables a client.
pub fn set_enabled(
    conn: &mut AnyConnection,
    cache: &ClientCache,
    actor: &Actor,
    client: &Client,
    enabled: bool,
    now: i64,
) -> Result<(), AppError> {
    changed(
        cache,
        crate::db::transaction(conn, |conn| {
            crate::client::store::set_enabled(conn, &client.client_id, enabled, now)?;
            let action = if enabled {
                "client.enable"
            } else {
                "client.disable"
            };
            actor.record(conn, action, Some(client), &client.name, "", now)
        }),
    )
}

/// Deletes a client with its secrets, redirect URIs, consents and tokens.
pub fn delete_client(
    conn: &mut AnyConnection,
    cache: &ClientCache,
    actor: &Actor,
    client: &Client,
    now: i64,
) -> Result<(), AppError> {
    changed(
        cache,
        crate::db::transaction(conn, |conn| {
            crate::client::store::delete_with_tokens(conn, client.id, now)?;
            actor.record(conn, "client.delete", Some(client), &client.name, "", now)
        }),
    )
}

/// Adds a redirect URI (validated: absolute, https or loopback http, no fragment).
pub fn add_redirect_uri(
    conn: &mut AnyConnection,
    cache: &ClientCache,
    actor: &Actor,
    client: &Client,
    uri: &str,
    now: i64,
) -> Result<(), AppError> {
    let uri = crate::client::validate_redirect_uri(uri).map_err(AppError::Invalid)?;
    changed(
        cache,
        crate::db::transaction(conn, |conn| {
            crate::client::store::add_redirect_uri(conn, client.id, &uri, now)?;
            actor.record(conn, "redirect_uri.add", Some(client), &uri, "", now)
        }),
    )
}

/// Removes a redirect URI. A client allowed the authorization code grant keeps at least one.
pub fn remove_redirect_uri(
    conn: &mut AnyConnection,
    cache: &ClientCache,
    actor: &Actor,
    client: &Client,
    uri_id: i64,
    now: i64,
) -> Result<(), AppError> {
    changed(
        cache,
        crate::db::transaction(conn, |conn| {
            let remaining = crate::client::store::redirect_uris(conn, client.id)?.len();
            if remaining <= 1 && client.allows_grant(crate::client::GrantType::AuthorizationCode) {
                return Err(AppError::Invalid(
                    "this client uses the authorization code grant and needs at least one redirect URI; add another first".into(),
                ));
            }
            let Some(uri) = crate::client::store::remove_redirect_uri(conn, client.id, uri_id)?
            else {
                return Err(AppError::NotFound("no such redirect URI".into()));
            };
            actor.record(conn, "redirect_uri.remove", Some(client), &uri, "", now)
        }),
    )
}

/// What an admin enters for a secret.
pub struct SecretInput<'a> {
    /// What or who uses it.
    pub description: &'a str,
    /// Expiry; None = never.
    pub expires_at: Option<i64>,
    /// A typed value (16+ characters, stored with argon2id); None = generate one. Ignored
    /// when editing: a value never changes.
    pub value: Option<&'a str>,
}

/// Adds a secret: generated when no value is given (and returned once), else the typed value.
pub fn add_secret(
    conn: &mut AnyConnection,
    cache: &ClientCache,
    actor: &Actor,
    client: &Client,
    input: &SecretInput,
    now: i64,
) -> Result<(SecretRow, Option<String>), AppError> {
    let SecretInput {
        description,
        expires_at,
        value,
    } = *input;
    if client.public {
        return Err(AppError::Invalid(
            "a public client has no secrets (it authenticates with PKCE)".into(),
        ));
    }
    let description =
        crate::secret::validate_description(description).map_err(AppError::Invalid)?;
    let prepared = crate::secret::prepare(value)?;
    changed(
        cache,
        crate::db::transaction(conn, |conn| {
            let row = crate::secret::store::insert(
                conn,
                client.id,
                &description,
                &prepared.hash,
                &prepared.hint,
                expires_at,
                now,
            )?;
            let kind = if prepared.generated.is_some() {
                "generated"
            } else {
                "typed"
            };
            actor.record(
                conn,
                "secret.add",
                Some(client),
                &secret_target(&row),
                &format!("{kind}; expires {}", expiry_words(expires_at)),
                now,
            )?;
            Ok((row, prepared.generated))
        }),
    )
}

fn secret_target(row: &SecretRow) -> String {
    let name = if row.description.is_empty() {
        format!("secret {}", row.id)
    } else {
        row.description.clone()
    };
    format!("{name} (••••{})", row.hint)
}

fn expiry_words(expires_at: Option<i64>) -> String {
    expires_at.map_or_else(|| "never".to_string(), crate::clock::date)
}

/// Changes a secret's description and expiry.
pub fn update_secret(
    conn: &mut AnyConnection,
    cache: &ClientCache,
    actor: &Actor,
    client: &Client,
    secret: &SecretRow,
    input: &SecretInput,
    now: i64,
) -> Result<(), AppError> {
    let SecretInput {
        description,
        expires_at,
        ..
    } = *input;
    let description =
        crate::secret::validate_description(description).map_err(AppError::Invalid)?;
    changed(
        cache,
        crate::db::transaction(conn, |conn| {
            crate::secret::store::update(conn, secret.id, &description, expires_at)?;
            let updated = SecretRow {
                description: description.clone(),
                ..secret.clone()
            };
            actor.record(
                conn,
                "secret.update",
                Some(client),
                &secret_target(&updated),
                &format!("expires {}", expiry_words(expires_at)),
                now,
            )
        }),
    )
}

/// Deletes a secret: it stops working at once.
pub fn delete_secret(
    conn: &mut AnyConnection,
    cache: &ClientCache,
    actor: &Actor,
    client: &Client,
    secret: &SecretRow,
    now: i64,
) -> Result<(), AppError> {
    changed(
        cache,
        crate::db::transaction(conn, |conn| {
            crate::secret::store::delete(conn, secret.id)?;
            actor.record(
                conn,
                "secret.delete",
                Some(client),
                &secret_target(secret),
                "",
                now,
            )
        }),
    )
}

/// A token generated in the admin area, with what it contains.
pub struct GeneratedToken {
    /// The JWT.
    pub token: String,
    /// Its claims.
    pub claims: crate::token::AccessClaims,
}

/// Issues a client_credentials access token for a client as the token endpoint would (its
/// default scope and lifetime), without its secret: for an admin to try an API. Refused, like
/// at the token endpoint, for a disabled client or one not allowed the grant. Audited (by
/// `jti`, never the token) and counted in the usage chart.
pub fn generate_token(
    conn: &mut AnyConnection,
    state: &crate::AppState,
    actor: &Actor,
    client: &Client,
    now: i64,
) -> Result<GeneratedToken, AppError> {
    if !client.enabled {
        return Err(AppError::Invalid(
            "This client is disabled: the token endpoint would refuse it.".into(),
        ));
    }
    if !client.allows_grant(crate::client::GrantType::ClientCredentials) {
        return Err(AppError::Invalid(
            "This client may not use the client_credentials grant, so no token can be generated for it.".into(),
        ));
    }
    let claims = crate::token::AccessClaims::new(
        &state.issuer,
        &state.audience,
        client.client_id.clone(),
        client.client_id.clone(),
        client.allowed_scopes.iter().map(String::as_str).collect(),
        now,
        client.access_token_ttl.unwrap_or(state.access_token_ttl),
    );
    let token = state.keys.get().current(now).sign(&claims)?;
    actor.record(
        conn,
        "token.generate",
        Some(client),
        &client.name,
        &format!(
            "jti {}; expires {}",
            claims.jti,
            crate::clock::rfc3339(claims.exp)
        ),
        now,
    )?;
    state.usage.count_token(client.id, now);
    state.metrics.token_issued("admin_generated");
    Ok(GeneratedToken { token, claims })
}

/// Creates an account (admin, readonly, or a user who can only authorize apps).
pub fn create_user(
    conn: &mut AnyConnection,
    actor: &Actor,
    username: &str,
    password: &str,
    role: crate::user::Role,
    now: i64,
) -> Result<crate::user::User, AppError> {
    let username = crate::user::validate_username(username).map_err(AppError::Invalid)?;
    crate::user::validate_password(password).map_err(AppError::Invalid)?;
    let hash = crate::crypto::argon2_hash(password.as_bytes())?;
    crate::db::transaction(conn, |conn| {
        let user = crate::user::store::insert(conn, &username, &hash, role, now)?;
        actor.record(conn, "user.create", None, &username, role.as_str(), now)?;
        Ok(user)
    })
}

fn user_by_id(conn: &mut AnyConnection, id: i64) -> Result<crate::user::User, AppError> {
    crate::user::store::find(conn, id)?
        .ok_or_else(|| AppError::NotFound("There is no such user.".into()))
}

/// Refuses a change that would leave no admin (checked inside the changing transaction).
fn keep_an_admin(conn: &mut AnyConnection, user: &crate::user::User) -> Result<(), AppError> {
    if user.role == crate::user::Role::Admin && crate::user::store::count_admins(conn)? <= 1 {
        return Err(AppError::Invalid(format!(
            "{} is the last admin: make another user admin first",
            user.username
        )));
    }
    Ok(())
}

/// Changes a user's role; the last admin keeps theirs.
pub fn change_role(
    conn: &mut AnyConnection,
    actor: &Actor,
    user_id: i64,
    role: crate::user::Role,
    now: i64,
) -> Result<crate::user::User, AppError> {
    crate::db::transaction(conn, |conn| {
        crate::user::store::lock_admins(conn)?;
        let user = user_by_id(conn, user_id)?;
        if user.role != role {
            if role != crate::user::Role::Admin {
                keep_an_admin(conn, &user)?;
            }
            crate::user::store::set_role(conn, user.id, role)?;
            // A session signed in under the old role ends with it.
            crate::user::sessions::delete_for_user(conn, user.id)?;
            actor.record(
                conn,
                "user.role",
                None,
                &user.username,
                &format!("{} → {}", user.role.as_str(), role.as_str()),
                now,
            )?;
        }
        Ok(user)
    })
}

/// Sets a new password for a user and ends every session of theirs. Unless `keep_app_access`,
/// it also revokes every token the user's apps hold (a reset usually means the account was
/// taken over, and whoever took it may have authorized an app of their own).
pub fn reset_password(
    conn: &mut AnyConnection,
    actor: &Actor,
    user_id: i64,
    password: &str,
    keep_app_access: bool,
    now: i64,
) -> Result<crate::user::User, AppError> {
    crate::user::validate_password(password).map_err(AppError::Invalid)?;
    let hash = crate::crypto::argon2_hash(password.as_bytes())?;
    crate::db::transaction(conn, |conn| {
        let user = user_by_id(conn, user_id)?;
        crate::user::store::set_password_hash(conn, user.id, &hash)?;
        crate::user::sessions::delete_for_user(conn, user.id)?;
        let details = if keep_app_access {
            "reset; app access kept".to_string()
        } else {
            let n = crate::token::store::revoke_user_families(conn, user.id, now)?;
            format!("reset; app access revoked ({n} grants)")
        };
        actor.record(conn, "user.password", None, &user.username, &details, now)?;
        Ok(user)
    })
}

/// Ends every session of a user ("sign out everywhere"); returns how many there were.
pub fn sign_out_everywhere(
    conn: &mut AnyConnection,
    actor: &Actor,
    user_id: i64,
    now: i64,
) -> Result<(crate::user::User, usize), AppError> {
    crate::db::transaction(conn, |conn| {
        let user = user_by_id(conn, user_id)?;
        let ended = crate::user::sessions::delete_for_user(conn, user.id)?;
        actor.record(
            conn,
            "user.sign_out",
            None,
            &user.username,
            &format!("{ended} sessions ended"),
            now,
        )?;
        Ok((user, ended))
    })
}

/// Deletes a user; the last admin cannot be deleted.
pub fn delete_user(
    conn: &mut AnyConnection,
    actor: &Actor,
    user_id: i64,
    now: i64,
) -> Result<crate::user::User, AppError> {
    crate::db::transaction(conn, |conn| {
        crate::user::store::lock_admins(conn)?;
        let user = user_by_id(conn, user_id)?;
        keep_an_admin(conn, &user)?;
        // Before the rows go: the access tokens' jtis are only known through the grants.
        crate::token::store::revoke_user_families(conn, user.id, now)?;
        crate::user::sessions::delete_for_user(conn, user.id)?;
        crate::user::store::delete_by_id(conn, user.id)?;
        actor.record(
            conn,
            "user.delete",
            None,
            &user.username,
            user.role.as_str(),
            now,
        )?;
        Ok(user)
    })
}
