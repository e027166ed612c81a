//! One access token checked: a JWT signed with an asymmetric algorithm by a key of the
//! authorization server, for this resource, from that issuer, within its lifetime (give or take
//! the allowed skew), carrying the required scopes. `alg: none` and HMAC algorithms are refused
//! before any key is looked at: a token signed with HS256 using the server's public key as the
//! secret is the classic way around a verifier that trusts the token's header.

use std::collections::BTreeSet;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::Settings;
use super::keys::{KeyError, Keys};

/// Tokens longer than this are refused unread (real ones are a few KiB at most).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Scopes kept from one token at most.
const MAX_SCOPES: usize = 64;
/// Longest scope kept; longer ones are dropped, never cut (a cut one could equal another).
const MAX_SCOPE_CHARS: usize = 128;
/// Longest `sub` and client id accepted. They name the caller to the server behind, so they are
/// kept exactly as signed: a longer one refuses the token rather than being cut, which could
/// make two callers one.
const MAX_NAME_CHARS: usize = 256;

/// Who called, as their token says: the exact claims (control characters included, so any
/// display of them must clip and clean them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub subject: String,
    pub scopes: BTreeSet<String>,
    pub client_id: Option<String>,
}

/// A token that passed: its caller, and when it expires (`exp`, seconds since the epoch).
#[derive(Debug, Clone)]
pub struct Verified {
    pub caller: Caller,
    pub exp: u64,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No bearer token: 401 with where to find the authorization server.
    Missing,
    /// A token that does not pass: 401 `invalid_token`, with why.
    Invalid(String),
    /// A valid token without these scopes: 403 `insufficient_scope`.
    InsufficientScope(BTreeSet<String>),
    /// The authorization server's keys could not be read: 503.
    Unavailable(String),
}

/// The claims read from a token besides those the library checks.
#[derive(Deserialize)]
struct Claims {
    /// Required (the validation says so when it is missing), optional here so that it does.
    sub: Option<String>,
    /// Required and checked by the library; kept for how long a pass may be remembered.
    exp: u64,
    /// RFC 9068 and most servers: one space-separated string.
    scope: Option<String>,
    /// Okta and Entra ID: a list (Entra's `scp` is a space-separated string).
    scp: Option<ScopeClaim>,
    client_id: Option<String>,
    azp: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ScopeClaim {
    Text(String),
    List(Vec<String>),
}

pub struct Verifier {
    keys: Keys,
    issuer: String,
    audiences: Vec<String>,
    required_scopes: BTreeSet<String>,
    leeway: u64,
}

impl Verifier {
    pub fn new(settings: &Settings, keys: Keys) -> Self {
        Verifier {
            keys,
            issuer: settings.issuer.clone(),
            audiences: settings.accepted_audiences(),
            required_scopes: settings.required_scopes.clone(),
            leeway: settings.clock_skew.as_secs(),
        }
    }

    pub async fn verify(&self, token: &str) -> Result<Verified, Refusal> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(invalid("the token is longer than 16 KiB"));
        }
        // The header names an algorithm this library knows, or it is no JWT we accept (this is
        // where `alg: none` ends).
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| invalid("the token is not a JWT signed with a known algorithm"))?;
        if !asymmetric(header.alg) {
            return Err(invalid(&format!(
                "algorithm {:?} is not accepted: only asymmetric signatures are",
                header.alg
            )));
        }
        let jwk = self
            .keys
            .find(header.kid.as_deref())
            .await
            .map_err(|e| match e {
                KeyError::Unavailable(why) => Refusal::Unavailable(why),
                other => Refusal::Invalid(other.to_string()),
            })?;
        let key = decoding_key(&jwk, header.alg)?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[self.issuer.as_str(), self.issuer.trim_end_matches('/')]);
        validation.set_audience(&self.audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = self.leeway;
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|e| invalid(why(e.kind())))?
            .claims;
        let scopes = scopes(&claims);
        let exp = claims.exp;
        let subject = claims.sub.unwrap_or_default();
        if subject.is_empty() {
            return Err(invalid("the token's sub is empty"));
        }
        let client_id = claims.client_id.or(claims.azp);
        if subject.chars().count() > MAX_NAME_CHARS
            || client_id
                .as_ref()
                .is_some_and(|c| c.chars().count() > MAX_NAME_CHARS)
        {
            return Err(invalid(
                "the token's sub or client id is longer than 256 characters",
            ));
        }
        let caller = Caller {
            subject,
            scopes,
            client_id,
        };
        let missing: BTreeSet<String> = self
            .required_scopes
            .difference(&caller.scopes)
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(Refusal::InsufficientScope(missing));
        }
        Ok(Verified { caller, exp })
    }
}

fn invalid(why: &str) -> Refusal {
    Refusal::Invalid(why.to_owned())
}

fn asymmetric(alg: Algorithm) -> bool {
    !matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

/// The key, if it may verify `alg`: its type fits the algorithm's family, and an `alg` the key
/// itself names is the token's.
fn decoding_key(jwk: &Jwk, alg: Algorithm) -> Result<DecodingKey, Refusal> {
    let fits = matches!(
        (&jwk.algorithm, alg.family()),
        (
            AlgorithmParameters::RSA(_),
            jsonwebtoken::AlgorithmFamily::Rsa
        ) | (
            AlgorithmParameters::EllipticCurve(_),
            jsonwebtoken::AlgorithmFamily::Ec
        ) | (
            AlgorithmParameters::OctetKeyPair(_),
            jsonwebtoken::AlgorithmFamily::Ed
        )
    );
    let named = jwk
        .common
        .key_algorithm
        .and_then(|k| Algorithm::try_from(k).ok());
    if !fits || named.is_some_and(|named| named != alg) {
        return Err(invalid(&format!(
            "the token's algorithm {alg:?} does not fit its key"
        )));
    }
    DecodingKey::from_jwk(jwk).map_err(|_| invalid("the authorization server's key is unusable"))
}

/// The token's scopes, from `scope` or `scp`, bounded: over-long ones and ones with control
/// characters are dropped (a token loses a scope, never gains one).
fn scopes(claims: &Claims) -> BTreeSet<String> {
    let words: Vec<&str> = match (&claims.scope, &claims.scp) {
        (Some(text), _) | (None, Some(ScopeClaim::Text(text))) => text.split(' ').collect(),
        (None, Some(ScopeClaim::List(list))) => list.iter().map(String::as_str).collect(),
        (None, None) => Vec::new(),
    };
    words
        .into_iter()
        .filter(|w| !w.is_empty() && w.chars().count() <= MAX_SCOPE_CHARS)
        .filter(|w| !w.chars().any(char::is_control))
        .take(MAX_SCOPES)
        .map(str::to_owned)
        .collect()
}

/// A failed check in words a client's developer can act on.
fn why(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::ExpiredSignature => "the token has expired",
        ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)",
        ErrorKind::InvalidAudience => "the token is for another audience (aud)",
        ErrorKind::InvalidIssuer => "the token is from another issuer (iss)",
        ErrorKind::InvalidSignature => "the token's signature does not verify",
        ErrorKind::MissingRequiredClaim(_) => {
            "the token lacks a required claim (exp, iss, aud, sub)"
        }
        ErrorKind::InvalidAlgorithm => "the token's algorithm does not fit its key",
        _ => "the token is malformed",
    }
}
