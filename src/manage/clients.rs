use super::{Actor, Ctx, changed};
use crate::client::{AuthMethod, Client, NewClient};
use crate::db::AnyConnection;
use crate::error::AppError;

/// Registers a validated client, enabled or not, with its redirect URIs and, for a
/// confidential client, its first credential, in one transaction with one audit event: a
/// generated secret, or for client_secret_jwt the shared HMAC key (sealed with the master
/// key), or nothing for private_key_jwt (its keys are its JWKS). Returns the client and the
/// value to show once.
pub fn create_client(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    actor: &Actor,
    new: &NewClient,
    enabled: bool,
    now: i64,
) -> Result<(Client, Option<String>), AppError> {
    let client_id = crate::crypto::generate_id()?;
    let credential = match new.auth_method {
        Some(AuthMethod::ClientSecretJwt) => {
            Credential::HmacKey(new_hmac_key(ctx.master_key, &client_id)?)
        }
        Some(AuthMethod::PrivateKeyJwt) => Credential::None,
        _ if new.public => Credential::None,
        _ => Credential::Secret(crate::secret::prepare(None)?),
    };
    changed(conn, ctx, |conn| {
        let mut client = crate::client::store::insert(conn, new, &client_id, now)?;
        if !enabled {
            crate::client::store::set_enabled(conn, &client_id, false, now)?;
            client.enabled = false;
        }
        let shown = match credential {
            Credential::HmacKey((value, sealed)) => {
                crate::client::store::set_hmac_key(conn, client.id, Some(&sealed))?;
                Some(value)
            }
            Credential::Secret(p) => {
                crate::secret::store::insert(
                    conn,
                    client.id,
                    "Initial secret",
                    &p.hash,
                    &p.hint,
                    None,
                    now,
                )?;
                p.generated
            }
            Credential::None => None,
        };
        let kind = if client.public {
            "public"
        } else {
            "confidential"
        };
        let details = if enabled {
            kind.to_string()
        } else {
            format!("{kind}; disabled")
        };
        actor.record(
            conn,
            "client.create",
            Some(&client),
            &client.name,
            &details,
            now,
        )?;
        Ok((client, shown))
    })
}

/// A new client's first credential.
enum Credential {
    /// A generated client secret.
    Secret(crate::secret::PreparedSecret),
    /// A client_secret_jwt key: (the value to show once, its sealed form).
    HmacKey((String, String)),
    /// A public or private_key_jwt client.
    None,
}

/// A new client_secret_jwt key: (the value to show once, its sealed form to store, bound to
/// the client_id).
fn new_hmac_key(
    master: &crate::seal::MasterKey,
    client_id: &str,
) -> Result<(String, String), AppError> {
    let value = crate::crypto::generate_secret()?;
    let sealed = master.seal(
        crate::seal::Aad::client_hmac_key(client_id),
        value.as_bytes(),
    )?;
    Ok((value, sealed))
}

/// Changes a client's settings. Switching a client to client_secret_jwt creates its shared
/// HMAC key, returned to be shown once; switching away removes it.
pub fn update_client(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    actor: &Actor,
    client: &Client,
    settings: &NewClient,
    enabled: bool,
    now: i64,
) -> Result<Option<String>, AppError> {
    let wants_hmac = settings.auth_method == Some(crate::client::AuthMethod::ClientSecretJwt);
    let new_key = if wants_hmac && client.hmac_key_sealed.is_none() {
        Some(new_hmac_key(ctx.master_key, &client.client_id)?)
    } else {
        None
    };
    changed(conn, ctx, |conn| {
        crate::client::store::update(conn, client.id, settings, enabled, now)?;
        match &new_key {
            Some((_, sealed)) => crate::client::store::set_hmac_key(conn, client.id, Some(sealed))?,
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
        if !settings
            .scopes
            .iter()
            .map(String::as_str)
            .eq(client.allowed_scopes.iter())
        {
            what.push(format!("scopes: {}", settings.scopes.join(" ")));
        }
        let grants: Vec<GrantTypeName> = settings.grant_types.iter().map(|g| g.as_str()).collect();
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
    })
}

type GrantTypeName = &'static str;

/// Enables or disables a client.
pub fn set_enabled(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    actor: &Actor,
    client: &Client,
    enabled: bool,
    now: i64,
) -> Result<(), AppError> {
    changed(conn, ctx, |conn| {
        crate::client::store::set_enabled(conn, &client.client_id, enabled, now)?;
        let action = if enabled {
            "client.enable"
        } else {
            "client.disable"
        };
        actor.record(conn, action, Some(client), &client.name, "", now)
    })
}

/// Deletes a client with its secrets, redirect URIs, consents and tokens.
pub fn delete_client(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    actor: &Actor,
    client: &Client,
    now: i64,
) -> Result<(), AppError> {
    changed(conn, ctx, |conn| {
        crate::client::store::delete_with_tokens(conn, client.id, now)?;
        actor.record(conn, "client.delete", Some(client), &client.name, "", now)
    })
}

/// Adds a redirect URI (validated: absolute, https or loopback http, no fragment).
pub fn add_redirect_uri(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    actor: &Actor,
    client: &Client,
    uri: &str,
    now: i64,
) -> Result<(), AppError> {
    let uri = crate::client::RedirectUri::parse(uri).map_err(AppError::Invalid)?;
    changed(conn, ctx, |conn| {
        crate::client::store::add_redirect_uri(conn, client.id, &uri, now)?;
        actor.record(
            conn,
            "redirect_uri.add",
            Some(client),
            uri.as_str(),
            "",
            now,
        )
    })
}

/// Removes a redirect URI. A client allowed the authorization code grant keeps at least one.
pub fn remove_redirect_uri(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    actor: &Actor,
    client: &Client,
    uri_id: i64,
    now: i64,
) -> Result<(), AppError> {
    changed(conn, ctx, |conn| {
        let remaining = crate::client::store::redirect_uris(conn, client.id)?.len();
        if remaining <= 1 && client.allows_grant(crate::client::GrantType::AuthorizationCode) {
            return Err(AppError::Invalid(
                    "this client uses the authorization code grant and needs at least one redirect URI; add another first".into(),
                ));
        }
        let Some(uri) = crate::client::store::remove_redirect_uri(conn, client.id, uri_id)? else {
            return Err(AppError::NotFound("no such redirect URI".into()));
        };
        actor.record(conn, "redirect_uri.remove", Some(client), &uri, "", now)
    })
}

/// A token generated in the admin area, with what it contains.
pub struct GeneratedToken {
    /// The JWT.
    pub token: String,
    /// Its claims.
    pub claims: crate::token::AccessClaims,
}

/// Issues a client_credentials access token for a client as the token endpoint would (its
/// default scope and lifetime, signed by `oauth::issuer::sign_access_token`), without its
/// secret: for an admin to try an API. Refused, like at the token endpoint, for a disabled
/// client or one not allowed the grant. Audited (by `jti`, never the token) and counted in the
/// usage chart.
pub fn generate_token(
    conn: &mut AnyConnection,
    ctx: &crate::oauth::context::OAuthContext<'_>,
    actor: &Actor,
    client: &Client,
    now: i64,
) -> Result<GeneratedToken, AppError> {
    if !client.enabled {
        return Err(AppError::Invalid(
            "This client is disabled: the token endpoint would refuse it.".into(),
        ));
    }
    if crate::oauth::grants::permitted(client, crate::client::GrantType::ClientCredentials).is_err()
    {
        return Err(AppError::Invalid(
            "This client may not use the client_credentials grant, so no token can be generated for it.".into(),
        ));
    }
    // No scope requested: the client's default (RFC 6749 3.3), as at the token endpoint.
    let scopes = crate::oauth::scope::granted(client, None, crate::oauth::scope::Grantor::Client)
        .map_err(AppError::Invalid)?;
    let (token, claims) = crate::oauth::issuer::sign_access_token(
        ctx,
        client.client_id.clone(),
        client,
        scopes.iter().collect(),
        now,
    )?;
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
    ctx.usage.count_token(client.id, now);
    ctx.metrics.token_issued("admin_generated");
    Ok(GeneratedToken {
        token,
        claims: (*claims).clone(),
    })
}
