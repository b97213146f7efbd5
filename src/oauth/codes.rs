//! Authorization codes (RFC 6749 4.1.2, 4.1.3) and their PKCE (RFC 7636): [`issue`] for an
//! approved authorization request, and the exchange's own rules, [`exchange_redirect_uri`]
//! and [`verify_pkce`], carried out by oxide-auth's `Authorizer` ([`DbAuthorizer`]) and
//! extension ([`PkceVerifier`]).
//!
//! Codes are 256-bit random values, stored only as SHA-256, valid for 60 seconds, single use
//! (redeemed by an atomic conditional update), and bound to the client, the redirect URI and
//! the PKCE challenge. The row stays after redemption as the head of the family of tokens
//! issued from it, so that a replayed code revokes them (RFC 6749 4.1.2).

use std::borrow::Cow;
use std::cell::RefCell;

use oxide_auth::code_grant::accesstoken;
use oxide_auth::code_grant::extensions::Pkce;
use oxide_auth::primitives::authorizer::Authorizer;
use oxide_auth::primitives::grant::{Extensions, Grant, Value};

use super::Outcome;
use super::authorization::request::{Checked, is_pkce_value, pkce_required};
use super::client_auth::Authenticated;
use super::context::OAuthContext;
use super::error::ErrorCode;
use super::issuer::StoredAhead;
use crate::client::Client;
use crate::crypto::{HashedToken, PlainToken};
use crate::db::AnyConnection;
use crate::error::AppError;
use crate::ids::UserId;
use crate::token::store::{self, RedeemedGrant, Redemption};

/// RFC 6749 4.1.2 recommends a maximum lifetime of 10 minutes; RFC 9700 2.1.1 suggests short
/// ones. Ours is 60 seconds: the client exchanges the code right after the redirect.
pub const CODE_TTL: i64 = 60;

/// Stands for "no redirect_uri in the token request" (oxide-auth requires one). It equals a
/// redeemed grant's redirect URI only when the authorization request omitted it too, which is
/// exactly when RFC 6749 4.1.3 lets the token request omit it.
pub const OMITTED_REDIRECT_URI: &str = "urn:portcullis:redirect-uri-omitted";

/// The PKCE key of oxide-auth's grant extensions.
fn pkce() -> Pkce {
    Pkce::optional()
}

/// A code chosen for an approved, checked request, not yet stored: its row and the redirect
/// that carries it ([`issue`], [`crate::oauth::authorization::Step::Issue`]).
pub struct NewCode {
    /// What the database keeps of it.
    pub row: store::IssueItem,
    /// The redirect to the client with `code` and `state`.
    pub redirect: url::Url,
}

/// Chooses the code for an authorization request that
/// [`super::authorization::request::check`] accepted and the person approved (RFC 6749
/// 4.1.2): to be stored by hash, bound to the client, the person, the redirect URI, the scopes
/// and the S256 challenge (RFC 7636 4.4, in oxide-auth's encoding, which the exchange verifies
/// with, 4.6), and the redirect URI with `code` and `state` appended to its own query (RFC 6749
/// 3.1.2). Nothing is judged again here: it carries out the decision `check` made.
pub fn new_code(
    client: &Client,
    checked: &Checked,
    user_id: UserId,
    now: i64,
) -> Result<NewCode, AppError> {
    let internal = |what: &str| AppError::Internal(format!("issuing a code: {what}"));
    let mut redirect =
        url::Url::parse(&checked.redirect_uri).map_err(|_| internal("redirect URI"))?;
    let challenge = match checked.code_challenge.as_deref() {
        Some(c) => encoded_challenge(c).map_err(|()| internal("code challenge"))?,
        None => None,
    };
    let code = PlainToken::generate()?;
    let row = store::IssueItem {
        code_hash: code.hashed(),
        client_pk: client.id,
        user_id,
        redirect_uri: checked.redirect_uri.clone(),
        redirect_uri_given: checked.redirect_uri_given,
        scope: checked.scopes.to_string(),
        pkce: challenge,
        code_expires_at: now + CODE_TTL,
        now,
        only_if_approved: false,
    };
    redirect
        .query_pairs_mut()
        .append_pair("code", code.expose())
        .extend_pairs(checked.state.as_deref().map(|s| ("state", s)));
    Ok(NewCode { row, redirect })
}

/// Stores a new code on `conn` (SQLite; on PostgreSQL codes are stored in batches,
/// [`crate::oauth::authorization::store_code`]) and returns the redirect that carries it.
pub fn issue(conn: &mut AnyConnection, code: NewCode) -> Result<url::Url, AppError> {
    store::insert_grant(conn, &code.row.as_new_grant())?;
    Ok(code.redirect)
}

/// An S256 code challenge (RFC 7636 4.2) in oxide-auth's encoding, as codes store it.
fn encoded_challenge(challenge: &str) -> Result<Option<String>, ()> {
    Ok(pkce()
        .challenge(Some(Cow::Borrowed("S256")), Some(Cow::Borrowed(challenge)))?
        .map(Value::into_private_value)
        .transpose()?
        .flatten())
}

/// The stored challenge that `verifier` answers (RFC 7636 4.6: BASE64URL(SHA256(verifier))),
/// for the code exchange in one statement to compare with; None when the verifier is not one
/// (RFC 7636 4.1), which only the slow path explains.
pub fn challenge_answered_by(verifier: &str) -> Option<String> {
    use base64::Engine;
    if !is_pkce_value(verifier) {
        return None;
    }
    let digest = crate::crypto::sha256(verifier.as_bytes());
    encoded_challenge(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest))
        .ok()
        .flatten()
}

/// RFC 6749 4.1.3: "ensure that the redirect_uri parameter is present if the redirect_uri
/// parameter was included in the initial authorization request ..., and if included ensure
/// that their values are identical" (compared as strings, not as parsed URLs). The URI the
/// grant stands for, or why the exchange is refused.
pub fn exchange_redirect_uri(
    presented: Option<&str>,
    code: &RedeemedGrant,
) -> Result<String, &'static str> {
    match (presented, code.redirect_uri_given) {
        (Some(given), _) if given == code.redirect_uri => Ok(code.redirect_uri.clone()),
        (Some(_), _) => {
            Err("redirect_uri differs from the one in the authorization request (RFC 6749 4.1.3)")
        }
        (None, false) => Ok(OMITTED_REDIRECT_URI.to_string()),
        (None, true) => {
            Err("redirect_uri is required: the authorization request included it (RFC 6749 4.1.3)")
        }
    }
}

/// The `Authorizer` of one code exchange: it redeems codes. Codes are issued by [`issue`],
/// never through oxide-auth's authorization flow.
pub struct DbAuthorizer<'a> {
    /// The request's connection, shared with the other adapters (None outside the exchange).
    pub conn: Option<&'a RefCell<&'a mut AnyConnection>>,
    /// Where refusals are recorded, and the family of a redeemed code.
    pub outcome: &'a Outcome,
    /// Request time.
    pub now: i64,
    /// The redirect URI the token request named, if any.
    pub token_redirect_uri: Option<&'a str>,
    /// The client that authenticated.
    pub authenticated: &'a Authenticated,
    /// Server settings (lifetimes), for the exchange in one statement.
    pub ctx: &'a OAuthContext<'a>,
    /// A code exchange that one statement already decided before the flow ran
    /// ([`store::RedeemBatch`]; PostgreSQL): `extract` takes its outcome instead of
    /// redeeming the code.
    pub decided: RefCell<Option<Decided>>,
}

/// A code exchange decided by one statement before the flow ran
/// ([`crate::oauth::grants::authorization_code_batched`]).
pub struct Decided {
    /// The challenge that the request's verifier answers (None without a verifier).
    pub pkce: Option<String>,
    /// The tokens the statement stored.
    pub ahead: StoredAhead,
    /// Its outcome (None: nothing redeemed, the slow path says why).
    pub redeemed: Result<Option<store::RedeemedInOne>, AppError>,
}

impl DbAuthorizer<'_> {
    /// `extract` from an exchange that one statement decided (PostgreSQL, issue 13): the code
    /// was redeemed, and the access and refresh tokens recorded, by the database in one
    /// atomic statement whose conditions are the checks of the slow path below (unredeemed,
    /// family not revoked, this client's, unexpired, the redirect URI, the PKCE challenge);
    /// what oxide-auth and [`verify_pkce`] check afterwards holds by then. When the statement
    /// redeemed nothing, [`Outcome::slow_path`] asks for the whole exchange again in a
    /// transaction, which says why and revokes the family of a replayed code.
    fn redeemed(
        &self,
        Decided {
            pkce,
            ahead,
            redeemed,
        }: Decided,
    ) -> Result<Option<Grant>, ()> {
        let client = &self.authenticated.client.client;
        let redeemed = self
            .outcome
            .stored_in_one(redeemed, "authorization code storage failed")
            .ok_or(())?;
        let mut extensions = Extensions::new();
        if let Some(p) = pkce {
            extensions.set_raw("pkce".into(), Value::private(Some(p)));
        }
        let redirect_uri = match self.token_redirect_uri {
            Some(_) => redeemed.redirect_uri,
            None => OMITTED_REDIRECT_URI.to_string(),
        };
        *self.outcome.stored_ahead.borrow_mut() = Some(ahead);
        Ok(Some(Grant {
            owner_id: redeemed.user_id.to_string(),
            client_id: client.client_id.clone(),
            scope: redeemed.scope.parse().map_err(|_| ())?,
            redirect_uri: url::Url::parse(&redirect_uri).map_err(|_| ())?,
            until: super::issuer::until(self.now + CODE_TTL, self.now)?,
            extensions,
        }))
    }

    fn refuse(&self, description: &str) -> Result<Option<Grant>, ()> {
        self.outcome.refuse(ErrorCode::InvalidGrant, description);
        Ok(None)
    }

    fn db_failed(&self, e: AppError) {
        self.outcome
            .storage_failed("authorization code storage failed", &e);
    }
}

impl Authorizer for DbAuthorizer<'_> {
    /// Not used: codes are issued by [`issue`].
    fn authorize(&mut self, _grant: Grant) -> Result<String, ()> {
        Err(())
    }

    /// Redeems a code. Exactly one of any number of concurrent redemptions gets the grant; a
    /// code seen again revokes every token issued from it (RFC 6749 4.1.2).
    /// The client was permitted the grant before the flow ran (`grants::permitted`).
    fn extract(&mut self, code: &str) -> Result<Option<Grant>, ()> {
        if let Some(decided) = self.decided.take() {
            return self.redeemed(decided);
        }
        let Some(conn) = self.conn else {
            return Err(());
        };
        let redeemed = store::redeem_code(&mut conn.borrow_mut(), &HashedToken::of(code), self.now);
        let grant = match redeemed {
            Ok(Redemption::Won(g)) => g,
            Ok(Redemption::Replayed { grant_id }) => {
                if let Err(e) = store::revoke_family(&mut conn.borrow_mut(), grant_id, self.now) {
                    self.db_failed(e);
                    return Err(());
                }
                tracing::warn!("an authorization code was used twice; its tokens are revoked");
                return self.refuse(
                    "the authorization code was already used; every token issued from it is revoked (RFC 6749 4.1.2)",
                );
            }
            Ok(Redemption::Unknown) => {
                return self.refuse("the authorization code is unknown or has expired");
            }
            Err(e) => {
                self.db_failed(e);
                return Err(());
            }
        };
        // RFC 6749 4.1.3: the code must have been issued to the authenticated client.
        let client = &self.authenticated.client.client;
        if grant.client_pk != client.id {
            return self.refuse("the authorization code was issued to another client");
        }
        if grant.code_expires_at <= self.now {
            return self.refuse(&format!(
                "the authorization code has expired (codes are valid for {CODE_TTL} seconds)"
            ));
        }
        let redirect_uri = match exchange_redirect_uri(self.token_redirect_uri, &grant) {
            Ok(uri) => uri,
            Err(why) => return self.refuse(why),
        };
        let mut extensions = Extensions::new();
        if let Some(p) = grant.pkce {
            // oxide-auth's PKCE encoding, stored as it produced it at authorization.
            extensions.set_raw("pkce".into(), Value::private(Some(p)));
        }
        self.outcome.family.set(Some(grant.id));
        Ok(Some(Grant {
            owner_id: grant.user_id.to_string(),
            client_id: client.client_id.clone(),
            scope: grant.scope.parse().map_err(|_| ())?,
            redirect_uri: url::Url::parse(&redirect_uri).map_err(|_| ())?,
            until: super::issuer::until(grant.code_expires_at, self.now)?,
            extensions,
        }))
    }
}

/// RFC 7636 4.6 at the token endpoint: the presented `code_verifier` against the challenge
/// stored with the code (oxide-auth's encoding), with the errors the RFCs name (oxide-auth
/// would answer `invalid_request` for a wrong verifier). The one judge of a verifier.
pub fn verify_pkce(
    client: &Client,
    stored: Option<Value>,
    verifier: Option<&str>,
) -> Result<(), (ErrorCode, &'static str)> {
    match (&stored, verifier) {
        // RFC 9700 2.1.1: a verifier for a code issued without a challenge is a downgrade
        // attempt and is refused.
        (None, Some(_)) => Err((
            ErrorCode::InvalidGrant,
            "code_verifier was sent, but the authorization request had no code_challenge (RFC 9700 2.1.1)",
        )),
        // `check` never lets such a code be issued; kept so that no code of a public client is
        // ever exchanged without PKCE.
        (None, None) if pkce_required(client) => Err((
            ErrorCode::InvalidGrant,
            "public clients must use PKCE (RFC 7636)",
        )),
        (None, None) => Ok(()),
        (Some(_), None) => Err((
            ErrorCode::InvalidGrant,
            "code_verifier is required: the authorization request used PKCE (RFC 7636 4.5)",
        )),
        // RFC 7636 4.1: 43 to 128 unreserved characters.
        (Some(_), Some(v)) if !is_pkce_value(v) => Err((
            ErrorCode::InvalidRequest,
            "code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636 4.1)",
        )),
        (Some(_), Some(v)) => pkce().verify(stored, Some(Cow::Borrowed(v))).map_err(|()| {
            // RFC 7636 4.6: "invalid_grant".
            (
                ErrorCode::InvalidGrant,
                "code_verifier does not match the code_challenge (RFC 7636 4.6)",
            )
        }),
    }
}

/// PKCE at the token endpoint: oxide-auth's extension point, carrying out [`verify_pkce`].
pub struct PkceVerifier<'a> {
    /// The client that authenticated.
    pub authenticated: &'a Authenticated,
    /// Where a refusal is recorded.
    pub outcome: &'a Outcome,
}

impl accesstoken::Extension for PkceVerifier<'_> {
    fn extend(
        &mut self,
        request: &dyn accesstoken::Request,
        mut data: Extensions,
    ) -> Result<Extensions, ()> {
        let stored = data.remove(&pkce());
        let verifier = request.extension("code_verifier");
        match verify_pkce(
            &self.authenticated.client.client,
            stored,
            verifier.as_deref(),
        ) {
            Ok(()) => Ok(Extensions::new()),
            Err((error, description)) => {
                self.outcome.refuse(error, description);
                Err(())
            }
        }
    }
}
