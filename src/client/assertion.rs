//! JWT client authentication (RFC 7523 2.2 and 3, OpenID Connect Core 9): with
//! `private_key_jwt` the client signs a short-lived JWT with its private key and we verify it
//! with the public keys it registered (a JWKS document or a PEM public key; RS256 or ES256);
//! with `client_secret_jwt` it signs with HS256 under a key it shares with us.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// `client_assertion_type` of a JWT assertion (RFC 7523 2.2).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Signing algorithms accepted for assertions (listed in the metadata).
pub const ALGORITHMS: [&str; 2] = ["RS256", "ES256"];

/// The longest an assertion may live (from now to its `exp`).
pub const MAX_LIFETIME: i64 = 300;

/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds. The same constant decides how
/// long a used `jti` is kept (until `exp + LEEWAY`, see `client::store::use_assertion_jti`):
/// an assertion is accepted exactly as long as its jti is remembered, so it is used at most
/// once (RFC 7523 3, item 7).
pub const LEEWAY: i64 = 5;

/// A registered public key.
pub struct AssertionKey {
    /// `kid`, when the JWKS names it.
    pub kid: Option<String>,
    /// RS256 or ES256.
    pub alg: Algorithm,
    key: DecodingKey,
}

impl AssertionKey {
    /// The shared key of a client_secret_jwt client (HS256, OpenID Connect Core 9).
    pub fn hmac(secret: &[u8]) -> AssertionKey {
        AssertionKey {
            kid: None,
            alg: Algorithm::HS256,
            key: DecodingKey::from_secret(secret),
        }
    }
}

/// Parses a client's registered keys: a JWKS document (`{"keys": [...]}`) or a PEM public
/// key. Only RSA (RS256) and P-256 (ES256) keys are accepted.
pub fn parse_keys(text: &str) -> Result<Vec<AssertionKey>, String> {
    let text = text.trim();
    if text.starts_with('{') {
        let set: JwkSet = serde_json::from_str(text).map_err(|e| {
            format!("the JWKS is not valid JSON of the form {{\"keys\": [...]}}: {e}")
        })?;
        let mut keys = Vec::new();
        for jwk in &set.keys {
            let alg = match (&jwk.algorithm, jwk.common.key_algorithm) {
                (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
                (AlgorithmParameters::EllipticCurve(ec), None | Some(KeyAlgorithm::ES256))
                    if ec.curve == EllipticCurve::P256 =>
                {
                    Algorithm::ES256
                }
                _ => {
                    return Err(
                        "only RSA (RS256) and P-256 (ES256) public keys are accepted".into(),
                    );
                }
            };
            let key = DecodingKey::from_jwk(jwk)
                .map_err(|e| format!("a key of the JWKS is unusable: {e}"))?;
            keys.push(AssertionKey {
                kid: jwk.common.key_id.clone(),
                alg,
                key,
            });
        }
        if keys.is_empty() {
            return Err("the JWKS has no keys".into());
        }
        return Ok(keys);
    }
    if text.starts_with("-----BEGIN") {
        if let Ok(key) = DecodingKey::from_rsa_pem(text.as_bytes()) {
            return Ok(vec![AssertionKey {
                kid: None,
                alg: Algorithm::RS256,
                key,
            }]);
        }
        if let Ok(key) = DecodingKey::from_ec_pem(text.as_bytes()) {
            return Ok(vec![AssertionKey {
                kid: None,
                alg: Algorithm::ES256,
                key,
            }]);
        }
        return Err("the PEM is not an RSA or EC public key".into());
    }
    Err("give a JWKS document ({\"keys\": [...]}) or a PEM public key".into())
}

/// The smallest RSA modulus accepted at registration, in bits (RFC 7518 3.3: "A key of size
/// 2048 bits or larger MUST be used with these algorithms"; NIST SP 800-131A).
pub const MIN_RSA_BITS: usize = 2048;

/// THE check of a client's public keys at registration (admin form, admin API and CLI all go
/// through `NewClient::validate`): a well-formed JWKS document or PEM public key, with RSA keys
/// of at least [`MIN_RSA_BITS`].
pub fn validate_keys(text: &str) -> Result<(), String> {
    parse_keys(text)?;
    let text = text.trim();
    let sizes: Vec<usize> = if text.starts_with('{') {
        let set: JwkSet = serde_json::from_str(text).map_err(|e| e.to_string())?;
        set.keys
            .iter()
            .filter_map(|jwk| match &jwk.algorithm {
                AlgorithmParameters::RSA(rsa) => Some(jwk_modulus_bits(&rsa.n)),
                _ => None,
            })
            .collect::<Result<_, _>>()?
    } else if DecodingKey::from_rsa_pem(text.as_bytes()).is_ok() {
        vec![pem_modulus_bits(text)?]
    } else {
        Vec::new()
    };
    match sizes.iter().find(|bits| **bits < MIN_RSA_BITS) {
        Some(bits) => Err(format!(
            "an RSA key of {bits} bits is too small: at least {MIN_RSA_BITS} bits are required (RFC 7518 3.3)"
        )),
        None => Ok(()),
    }
}

/// The size in bits of a JWK's base64url modulus `n`.
fn jwk_modulus_bits(n: &str) -> Result<usize, String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(n.trim_end_matches('='))
        .map_err(|_| "an RSA key of the JWKS has a modulus that is not base64url".to_string())?;
    let bytes: Vec<u8> = bytes.into_iter().skip_while(|b| *b == 0).collect();
    Ok(match bytes.first() {
        Some(first) => bytes.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    })
}

/// The size in bits of a PEM RSA public key (SubjectPublicKeyInfo or PKCS#1).
fn pem_modulus_bits(pem: &str) -> Result<usize, String> {
    use base64::Engine;
    let unreadable = || "the PEM RSA public key cannot be read".to_string();
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .map_err(|_| unreadable())?;
    // PKCS#1 RSAPublicKey is SEQUENCE { INTEGER n, INTEGER e }; SubjectPublicKeyInfo is
    // SEQUENCE { SEQUENCE algorithm, BIT STRING (0 unused bits, then an RSAPublicKey) }.
    let (outer, _) = der_item(&der, 0x30).ok_or_else(unreadable)?;
    let n = match der_item(outer, 0x02) {
        Some((n, _)) => n,
        None => {
            let (_, rest) = der_item(outer, 0x30).ok_or_else(unreadable)?;
            let (bits, _) = der_item(rest, 0x03).ok_or_else(unreadable)?;
            let (inner, _) =
                der_item(bits.get(1..).ok_or_else(unreadable)?, 0x30).ok_or_else(unreadable)?;
            der_item(inner, 0x02).ok_or_else(unreadable)?.0
        }
    };
    let n: Vec<u8> = n.iter().copied().skip_while(|b| *b == 0).collect();
    Ok(match n.first() {
        Some(first) => n.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    })
}

/// One DER item of type `tag` at the start of `input`: (its contents, what follows it).
fn der_item(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&t, rest) = input.split_first()?;
    if t != tag {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let count = (first & 0x7f) as usize;
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let len = rest[..count]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, &rest[count..])
    };
    if rest.len() < len {
        return None;
    }
    Some(rest.split_at(len))
}

/// The `aud` values an assertion may carry. By default only the issuer identifier: after the
/// 2025 audience-injection findings (draft-ietf-oauth-rfc7523bis, replacing RFC 7523 3 item
/// 3), an assertion naming an endpoint URL could have been made for another server that shares
/// that URL shape, so the unambiguous issuer is the one safe audience. `with_endpoints`
/// (`PORTCULLIS_ASSERTION_ACCEPT_ENDPOINT_AUDIENCE`) also accepts the token, introspection and
/// revocation endpoint URLs, for clients written against RFC 7523 that cannot be changed.
pub fn accepted_audiences(issuer: &str, with_endpoints: bool) -> Vec<String> {
    let mut audiences = vec![issuer.to_string()];
    if with_endpoints {
        for path in ["/oauth/token", "/oauth/introspect", "/oauth/revoke"] {
            audiences.push(format!("{issuer}{path}"));
        }
    }
    audiences
}

#[derive(Deserialize)]
struct AssertionClaims {
    sub: String,
    exp: i64,
    jti: String,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    nbf: Option<i64>,
}

/// A verified assertion: its `jti` (to be used once) and `exp`.
#[derive(Debug, PartialEq, Eq)]
pub struct Verified {
    /// The assertion's unique id.
    pub jti: String,
    /// Its expiry.
    pub exp: i64,
}

/// The `sub` of an assertion, read without verifying it: only to know which client claims to
/// be calling (RFC 7523 3: iss and sub are the client_id). Verified later with its keys.
pub fn claimed_client(assertion: &str) -> Option<String> {
    use base64::Engine;
    let payload = assertion.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.get("sub")?.as_str().map(str::to_string)
}

/// Verifies an assertion (RFC 7523 3): signed by one of `keys`, `iss` = `sub` = `client_id`,
/// `aud` one of `audiences` (by default only the issuer identifier, see
/// `AppState::assertion_audiences`), not expired and expiring within [`MAX_LIFETIME`], not
/// before its `nbf`, not issued in the future (`iat`), with a `jti`; each time check tolerates
/// [`LEEWAY`] seconds of clock skew.
pub fn verify(
    keys: &[AssertionKey],
    assertion: &str,
    client_id: &str,
    audiences: &[&str],
    now: i64,
) -> Result<Verified, String> {
    let header = jsonwebtoken::decode_header(assertion)
        .map_err(|_| "the client assertion is not a JWT".to_string())?;
    // Only algorithms of the keys the caller passed can match (a private_key_jwt client has
    // no HMAC key, so an HS256 assertion made with its public key cannot pass).
    if !matches!(
        header.alg,
        Algorithm::RS256 | Algorithm::ES256 | Algorithm::HS256
    ) {
        return Err(
            "assertions must be signed with RS256 or ES256 (private_key_jwt) or HS256 (client_secret_jwt)"
                .into(),
        );
    }
    let candidates =
        keys.iter()
            .filter(|k| k.alg == header.alg)
            .filter(|k| match (&header.kid, &k.kid) {
                (Some(want), Some(have)) => want == have,
                _ => true,
            });
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[client_id]);
    validation.set_audience(audiences);
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    // exp and nbf are checked below by the server's clock (`now`), not jsonwebtoken's.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    let mut last = "no registered key matches the assertion's algorithm and kid".to_string();
    for key in candidates {
        match jsonwebtoken::decode::<AssertionClaims>(assertion, &key.key, &validation) {
            Ok(data) => {
                let c = data.claims;
                if c.sub != client_id {
                    return Err("the assertion's sub must be the client_id".into());
                }
                // RFC 7523 3 item 4, RFC 7519 4.1.4: not accepted on or after its exp, beyond
                // the clock skew.
                if now >= c.exp + LEEWAY {
                    return Err("the client assertion has expired".into());
                }
                // RFC 7523 3 item 5, RFC 7519 4.1.5: not accepted before its nbf.
                if c.nbf.is_some_and(|nbf| now < nbf - LEEWAY) {
                    return Err("the client assertion is not valid yet (nbf)".into());
                }
                // RFC 7523 3 item 6, RFC 7519 4.1.6: an assertion issued in the future is
                // refused, beyond the clock skew.
                if c.iat.is_some_and(|iat| iat > now + LEEWAY) {
                    return Err("the assertion's iat is in the future".into());
                }
                if c.exp > now + MAX_LIFETIME + LEEWAY {
                    return Err(format!(
                        "the assertion must expire within {MAX_LIFETIME} seconds"
                    ));
                }
                if c.jti.is_empty() {
                    return Err("the assertion needs a jti".into());
                }
                return Ok(Verified {
                    jti: c.jti,
                    exp: c.exp,
                });
            }
            Err(e) => last = format!("the client assertion is not valid: {e}"),
        }
    }
    Err(last)
}
