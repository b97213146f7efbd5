//! Client authentication (RFC 6749 2.3, 3.2.1; RFC 7523 2.2): the one judge, run before any
//! grant, introspection or revocation does anything.
//!
//! [`authenticate`] decides who the caller is. Nothing else is looked at or changed before it
//! has: a rotated refresh token presented without the client's secret revokes nothing, a code
//! presented by an unauthenticated caller is not consumed. The oxide-auth flows that follow
//! are handed the authenticated client and only compare client_ids (see
//! `DbRegistrar::check`).
//!
//! What a failure costs is bounded: the strict (client_id, address) throttle answers 429
//! before any lookup; an unknown client or a client whose secrets are all generated costs
//! SHA-256 comparisons (RFC 6749 2.2: a client_id is public); argon2 runs only for a client
//! with typed secrets, through the bounded [`crate::argon2_pool::Argon2Pool`], with no
//! database connection held, after a failure is reserved against both limits. Every failure
//! of presented credentials gets the same `invalid_client` description, so that the answer
//! never confirms that a stolen secret is right (expired, disabled, wrong address).

use std::net::IpAddr;
use std::sync::Arc;

use super::context::OAuthContext;
use super::request::{ClientAuth, OAuthResponse};
use crate::argon2_pool::{self, Purpose};
use crate::client::cache::CachedClient;
use crate::client::{AuthMethod, assertion};
use crate::crypto;
use crate::ids::SecretId;
use crate::secret::Check;

/// Where a client authenticates: the rate limit applies at the token endpoint only, and a
/// public client may send its client_id alone where RFC 6749 / RFC 7009 allow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// The token endpoint (RFC 6749 3.2).
    Token,
    /// Introspection (RFC 7662 2.1): only clients that can authenticate.
    Introspection,
    /// Revocation (RFC 7009 2.1): public clients with their client_id.
    Revocation,
}

/// A client that proved who it is.
#[derive(Clone)]
pub struct Authenticated {
    /// The client, with its secrets and redirect URIs.
    pub client: Arc<CachedClient>,
    /// The secret it used (for "last used"), None for other methods.
    pub secret_id: Option<SecretId>,
}

/// The description of every refused credential.
const GENERIC: &str = "client authentication failed";

/// Authenticates the client of a request. Errors are complete RFC 6749 5.2 responses (with the
/// Basic challenge when Basic was used).
pub async fn authenticate(
    ctx: &OAuthContext<'_>,
    auth: &ClientAuth,
    address: Option<IpAddr>,
    endpoint: Endpoint,
) -> Result<Authenticated, OAuthResponse> {
    let now = ctx.clock.now();
    let mut result = judge(ctx, auth, address, endpoint, now).await;
    if let Err(refused) = &mut result {
        // RFC 6749 5.2: the challenge matches the scheme the client used.
        refused.basic_challenge = refused.status == 401 && auth.is_basic();
    }
    result
}

/// A refusal, logged with the reason and answered generically. With `count`, it is a failed
/// guess (unknown client, wrong credential) and counts against the throttle; a right
/// credential refused by policy (disabled client, expired secret, address) does not, so that
/// a client re-enabled after a while is not locked out by its own retries.
fn refuse(
    ctx: &OAuthContext<'_>,
    client_id: &str,
    address: Option<IpAddr>,
    now: i64,
    reason: &str,
    count: bool,
) -> OAuthResponse {
    if count {
        ctx.auth_throttle.failed(client_id, address, now);
    }
    tracing::info!(client_id, reason, "client authentication failed");
    ctx.metrics.auth_failed(reason);
    OAuthResponse::invalid_client(GENERIC, false)
}

async fn judge(
    ctx: &OAuthContext<'_>,
    auth: &ClientAuth,
    address: Option<IpAddr>,
    endpoint: Endpoint,
    now: i64,
) -> Result<Authenticated, OAuthResponse> {
    let Some(client_id) = auth.client_id() else {
        // RFC 6749 3.2.1: nothing presented at all.
        return Err(OAuthResponse::invalid_client(
            "client authentication is required: HTTP Basic, client_id and client_secret in the body, a client assertion, or client_id alone for a public client",
            false,
        ));
    };
    if let Err(wait) = ctx.auth_throttle.check(client_id, address, now) {
        tracing::info!(client_id, "client authentication throttled");
        ctx.metrics.auth_failed("throttled");
        return Err(OAuthResponse::too_many_requests(
            &format!(
                "too many failed authentications for this client from this address; retry in {wait} s"
            ),
            wait,
        ));
    }
    let loaded = load(ctx, client_id).await?;
    let fail = |reason: &str| refuse(ctx, client_id, address, now, reason, true);
    let deny = |reason: &str| refuse(ctx, client_id, address, now, reason, false);
    // Guesses at a client_id that does not exist are not tracked: they cost one SHA-256
    // anyway, and tracking made-up ids would let a spray of them grow (or, at its bound,
    // reset) the throttle's memory. client_ids are public (RFC 6749 2.2).
    let unknown = || refuse(ctx, client_id, address, now, "unknown client", false);
    let secret_id = match auth {
        ClientAuth::None => return Err(fail("no credentials")),
        // RFC 6749 2.1, 3.2.1: a public client identifies itself by client_id alone, at the
        // token endpoint; RFC 7009 2.1 lets it revoke its own tokens the same way.
        ClientAuth::IdOnly { .. } => match &loaded {
            Some(c) if c.client.public && endpoint != Endpoint::Introspection => None,
            Some(c) if c.client.public => return Err(deny("public client at introspection")),
            Some(_) => return Err(fail("no secret")),
            None => return Err(unknown()),
        },
        ClientAuth::Assertion { assertion, .. } => {
            let Some(c) = &loaded else {
                return Err(unknown());
            };
            verify_assertion(ctx, c, client_id, assertion, now)
                .await?
                .map_err(&fail)?;
            None
        }
        ClientAuth::Basic { secret, .. } | ClientAuth::Post { secret, .. } => {
            // A client registered for one method is refused with any other (RFC 7591 2).
            let used = if auth.is_basic() {
                AuthMethod::ClientSecretBasic
            } else {
                AuthMethod::ClientSecretPost
            };
            if let Some(c) = &loaded
                && c.client.auth_method.is_some_and(|m| m != used)
            {
                return Err(fail("wrong method"));
            }
            let (id, expires_at) =
                verify_secret(ctx, loaded.as_ref(), client_id, secret, address, now).await?;
            if expires_at.is_some_and(|exp| exp <= now) {
                return Err(deny("expired secret"));
            }
            Some(id)
        }
    };
    let Some(client) = loaded else {
        return Err(unknown());
    };
    if !may_act(&client.client) {
        return Err(deny("disabled client"));
    }
    // The client's policies, once it proved who it is.
    if !client.client.allows_ip(address) {
        return Err(deny("address not allowed"));
    }
    if endpoint == Endpoint::Token
        && let Some(limit) = client.client.rate_limit_per_minute
        && let Err(wait) = ctx.rate_limiter.check(client.client.id, limit, now)
    {
        tracing::info!(client_id, "rate limit reached");
        ctx.metrics.auth_failed("rate limited");
        return Err(OAuthResponse::too_many_requests(
            &format!("this client may make {limit} token requests per minute; retry in {wait} s"),
            wait,
        ));
    }
    Ok(Authenticated { client, secret_id })
}

/// The client from the cache, or read with a connection that is released before anything
/// else happens. None when there is no such client.
async fn load(
    ctx: &OAuthContext<'_>,
    client_id: &str,
) -> Result<Option<Arc<CachedClient>>, OAuthResponse> {
    if let Some(known) = ctx.clients.lookup(client_id) {
        return Ok(known);
    }
    let id = client_id.to_string();
    let pool = ctx.pool.clone();
    let clients = ctx.clients.clone();
    crate::db::run(&pool, move |conn| clients.load(conn, &id))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "loading a client failed");
            OAuthResponse::storage_failed(&e)
        })
}

/// A secret (client_secret_basic / client_secret_post): the matching secret's id and expiry.
async fn verify_secret(
    ctx: &OAuthContext<'_>,
    loaded: Option<&Arc<CachedClient>>,
    client_id: &str,
    presented: &str,
    address: Option<IpAddr>,
    now: i64,
) -> Result<(SecretId, Option<i64>), OAuthResponse> {
    let digest = crypto::sha256(presented.as_bytes());
    let secrets = loaded.map_or(&[][..], |c| c.secrets.as_slice());
    let candidates: Vec<(SecretId, String)> = match ctx.verifier.check(secrets, &digest) {
        Check::Match(s) => return Ok((s.id, s.expires_at)),
        Check::NoMatch => {
            return Err(match loaded {
                Some(_) => refuse(ctx, client_id, address, now, "wrong secret", true),
                None => refuse(ctx, client_id, address, now, "unknown client", false),
            });
        }
        Check::NeedsArgon2(chosen) => chosen.iter().map(|s| (s.id, s.hash.clone())).collect(),
    };
    // Counted before it runs, so that parallel guesses cannot all pass the throttle.
    let reservation = match ctx.auth_throttle.reserve(client_id, address, now) {
        Ok(r) => r,
        Err(wait) => {
            tracing::info!(
                client_id,
                "argon2 refused: too many failures for this client"
            );
            ctx.metrics.auth_failed("throttled");
            return Err(OAuthResponse::too_many_requests(
                &format!("too many failed authentications for this client; retry in {wait} s"),
                wait,
            ));
        }
    };
    for (id, phc) in candidates {
        match ctx
            .argon2
            .verify(Purpose::ClientSecret, presented.as_bytes().to_vec(), phc)
            .await
        {
            Ok(true) => {
                ctx.auth_throttle.release(reservation);
                ctx.verifier.remember(id, digest);
                let expires_at = secrets
                    .iter()
                    .find(|s| s.id == id)
                    .and_then(|s| s.expires_at);
                return Ok((id, expires_at));
            }
            Ok(false) => {}
            Err(argon2_pool::Busy) => {
                ctx.auth_throttle.release(reservation);
                return Err(OAuthResponse::temporarily_unavailable(
                    argon2_pool::RETRY_AFTER_SECONDS,
                ));
            }
        }
    }
    // Already counted by the reservation.
    Err(refuse(ctx, client_id, address, now, "wrong secret", false))
}

/// A JWT client assertion (RFC 7523 2.2, 3): signature and claims, then single use of its
/// `jti`, which needs the database (a short query; nothing else is held meanwhile). The inner
/// error is the reason for refusing; the outer one, 503 when the database is unavailable.
async fn verify_assertion(
    ctx: &OAuthContext<'_>,
    c: &Arc<CachedClient>,
    client_id: &str,
    assertion: &str,
    now: i64,
) -> Result<Result<(), &'static str>, OAuthResponse> {
    let shared;
    let keys: &[assertion::AssertionKey] = match c.client.auth_method {
        Some(AuthMethod::PrivateKeyJwt) => &c.assertion_keys,
        Some(AuthMethod::ClientSecretJwt) => {
            let Some(sealed) = &c.client.hmac_key_sealed else {
                return Ok(Err("no shared key"));
            };
            match ctx.master_key.open(
                crate::seal::Aad::client_hmac_key(&c.client.client_id),
                sealed,
            ) {
                Ok(key) => {
                    shared = [assertion::AssertionKey::hmac(&key)];
                    &shared
                }
                Err(e) => {
                    tracing::error!(error = %e, client_id, "cannot read a client_secret_jwt key");
                    return Ok(Err("unreadable key"));
                }
            }
        }
        _ => return Ok(Err("wrong method")),
    };
    let audiences: Vec<&str> = ctx.assertion_audiences.iter().map(String::as_str).collect();
    let verified = match assertion::verify(keys, assertion, client_id, &audiences, now) {
        Ok(v) => v,
        Err(why) => {
            tracing::info!(client_id, why, "client assertion refused");
            return Ok(Err("invalid assertion"));
        }
    };
    let pk = c.client.id;
    let fresh = crate::db::run(ctx.pool, move |conn| {
        crate::client::store::use_assertion_jti(conn, pk, &verified.jti, verified.exp, now)
    })
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "recording an assertion jti failed");
        OAuthResponse::temporarily_unavailable(argon2_pool::RETRY_AFTER_SECONDS)
    })?;
    Ok(if fresh {
        Ok(())
    } else {
        Err("replayed assertion")
    })
}

/// Whether a client may act at all: a disabled client authenticates nowhere and its tokens
/// stop working at the admin API ([`still_allowed`]). The one rule, for both.
pub fn may_act(client: &crate::client::Client) -> bool {
    client.enabled
}

/// The rule for a verified admin-API token (RFC 6750), decided on every call (not only when
/// the token was issued): the client it was issued to must still exist and be allowed to act
/// ([`may_act`]), and only the scopes it still holds count ([`crate::client::Client::allows_scope`]).
/// So `client disable`, `client delete` or taking away `portcullis:admin` ends its API access
/// at once (within one client-cache poll on other instances), not when its token expires.
pub fn still_allowed<'s>(
    client: Option<&crate::client::Client>,
    granted: &[&'s str],
) -> Result<Vec<&'s str>, &'static str> {
    let Some(client) = client else {
        return Err("the client this access token was issued to no longer exists");
    };
    if !may_act(client) {
        return Err("the client this access token was issued to is disabled");
    }
    Ok(granted
        .iter()
        .copied()
        .filter(|s| client.allows_scope(s))
        .collect())
}
