//! The authorization server's signing keys. Found through its metadata (RFC 8414, then OpenID
//! Connect discovery) unless a JWKS URL is configured, fetched with bounded size and time, and
//! kept in memory. A token naming a key id the cache lacks (the server rotated its keys) makes
//! one fetch, at most once per refetch floor ([`REFETCH_FLOOR`] by default), so a flood of
//! made-up key ids costs one request per floor, not one per token.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use serde::Deserialize;
use url::Url;

/// Fetches for an unknown key id are this far apart at least, by default.
pub const REFETCH_FLOOR: Duration = Duration::from_secs(30);
/// Keys older than this are fetched again at the next token (servers retire keys).
const MAX_AGE: Duration = Duration::from_secs(600);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_METADATA_BYTES: usize = 64 * 1024;
const MAX_JWKS_BYTES: usize = 256 * 1024;
/// Keys kept at most from one JWKS (real ones hold a handful).
const MAX_KEYS: usize = 32;

#[derive(Debug, Clone, thiserror::Error)]
pub enum KeyError {
    #[error("the token's key {0:?} is not among the authorization server's keys")]
    Unknown(String),
    #[error("the token names no key and the authorization server has several")]
    Ambiguous,
    #[error("the authorization server's keys cannot be fetched: {0}")]
    Unavailable(String),
}

/// The keys, and how to fetch them again.
pub struct Keys {
    http: reqwest::Client,
    issuer: String,
    configured_jwks: Option<Url>,
    refetch_floor: Duration,
    cached: RwLock<Cached>,
    /// One fetch at a time; the others wait for it and use its result.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Cached {
    keys: Arc<Vec<Jwk>>,
    fetched: Option<Instant>,
    /// Found by discovery, kept so a refetch skips it.
    jwks_url: Option<Url>,
}

/// The fields of authorization server metadata read here.
#[derive(Deserialize)]
struct Metadata {
    issuer: String,
    jwks_uri: Option<String>,
}

impl Keys {
    pub fn new(
        http: reqwest::Client,
        issuer: String,
        configured_jwks: Option<Url>,
        refetch_floor: Duration,
    ) -> Self {
        Keys {
            http,
            issuer,
            configured_jwks,
            refetch_floor,
            cached: RwLock::new(Cached::default()),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// The signing key `kid` names (or the only one, for a token that names none).
    pub async fn find(&self, kid: Option<&str>) -> Result<Jwk, KeyError> {
        let stale = self.read().fetched.is_none_or(|at| at.elapsed() > MAX_AGE);
        if stale {
            self.refresh().await?;
        }
        match self.lookup(kid) {
            Err(KeyError::Unknown(_)) if !stale => {
                self.refresh().await?;
                self.lookup(kid)
            }
            found => found,
        }
    }

    fn lookup(&self, kid: Option<&str>) -> Result<Jwk, KeyError> {
        let keys = self.read().keys.clone();
        let mut signing = keys.iter().filter(|k| {
            !matches!(
                k.common.public_key_use,
                Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
            )
        });
        match kid {
            Some(kid) => signing
                .find(|k| k.common.key_id.as_deref() == Some(kid))
                .cloned()
                .ok_or_else(|| KeyError::Unknown(super::clip(kid, 64))),
            None => match (signing.next(), signing.next()) {
                (Some(only), None) => Ok(only.clone()),
                (None, _) => Err(KeyError::Unknown(String::new())),
                _ => Err(KeyError::Ambiguous),
            },
        }
    }

    /// Fetches the keys unless another task did within the refetch floor. A failed fetch keeps
    /// the keys already held (an outage of the authorization server does not lock out callers
    /// whose tokens it signed with a known key) and fails only when none are held.
    async fn refresh(&self) -> Result<(), KeyError> {
        let _one = self.fetching.lock().await;
        let (fetched, known_url) = {
            let cached = self.read();
            (cached.fetched, cached.jwks_url.clone())
        };
        if fetched.is_some_and(|at| at.elapsed() < self.refetch_floor) {
            return Ok(());
        }
        match self.fetch(known_url).await {
            Ok((keys, jwks_url)) => {
                tracing::info!(keys = keys.len(), jwks = %jwks_url, "fetched the authorization server's keys");
                *self.write() = Cached {
                    keys: Arc::new(keys),
                    fetched: Some(Instant::now()),
                    jwks_url: Some(jwks_url),
                };
                Ok(())
            }
            Err(e) => {
                let mut cached = self.write();
                let held = !cached.keys.is_empty();
                tracing::warn!(held, "fetching the authorization server's keys: {e}");
                // Counts as a fetch for the floor: a failing server is not asked on every token.
                cached.fetched = Some(Instant::now());
                if held {
                    Ok(())
                } else {
                    Err(KeyError::Unavailable(e))
                }
            }
        }
    }

    async fn fetch(&self, known_url: Option<Url>) -> Result<(Vec<Jwk>, Url), String> {
        let jwks_url = match self.configured_jwks.clone().or(known_url) {
            Some(url) => url,
            None => self.discover().await?,
        };
        let body = get_bounded(&self.http, &jwks_url, MAX_JWKS_BYTES).await?;
        // Keys of types this library does not know are skipped, not fatal: a JWKS may hold keys
        // for other uses.
        let raw: RawSet =
            serde_json::from_slice(&body).map_err(|e| format!("{jwks_url}: not a JWKS: {e}"))?;
        let keys: Vec<Jwk> = raw
            .keys
            .into_iter()
            .filter_map(|k| serde_json::from_value(k).ok())
            .take(MAX_KEYS)
            .collect();
        Ok((keys, jwks_url))
    }

    /// The JWKS URL from the issuer's metadata: RFC 8414's well-known location first, then
    /// OpenID Connect's. The metadata must name this issuer (RFC 8414 section 3.3).
    async fn discover(&self) -> Result<Url, String> {
        let mut problems = Vec::new();
        let issuer =
            Url::parse(&self.issuer).map_err(|e| format!("issuer {}: {e}", self.issuer))?;
        for url in metadata_urls(&issuer) {
            let found = get_bounded(&self.http, &url, MAX_METADATA_BYTES)
                .await
                .and_then(|body| {
                    serde_json::from_slice::<Metadata>(&body)
                        .map_err(|e| format!("{url}: not authorization server metadata: {e}"))
                })
                .and_then(|m| {
                    if !same_issuer(&m.issuer, &self.issuer) {
                        return Err(format!(
                            "{url}: names issuer {:?}, not {}",
                            super::clip(&m.issuer, 200),
                            self.issuer
                        ));
                    }
                    let jwks = m
                        .jwks_uri
                        .ok_or_else(|| format!("{url}: has no jwks_uri"))?;
                    Url::parse(&jwks).map_err(|e| format!("{url}: jwks_uri: {e}"))
                });
            match found {
                Ok(jwks) => return Ok(jwks),
                Err(e) => problems.push(e),
            }
        }
        Err(problems.join("; "))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Cached> {
        self.cached.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Cached> {
        self.cached.write().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

/// Where the issuer's metadata may be: RFC 8414 inserts the well-known segment before the
/// issuer's path; OpenID Connect appends it.
pub fn metadata_urls(issuer: &Url) -> Vec<Url> {
    let path = issuer.path().trim_end_matches('/');
    let mut rfc8414 = issuer.clone();
    rfc8414.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
    let mut oidc = issuer.clone();
    oidc.set_path(&format!("{path}/.well-known/openid-configuration"));
    vec![rfc8414, oidc]
}

/// Issuers compare as strings, but a trailing slash is commonly added or left out.
pub fn same_issuer(named: &str, configured: &str) -> bool {
    named.trim_end_matches('/') == configured.trim_end_matches('/')
}

/// GET `url`, refusing redirects, non-200 answers and bodies larger than `limit`.
async fn get_bounded(http: &reqwest::Client, url: &Url, limit: usize) -> Result<Vec<u8>, String> {
    let request = async {
        let mut response = http
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(format!("{url}: HTTP {}", response.status().as_u16()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| format!("{url}: {e}"))? {
            if body.len() + chunk.len() > limit {
                return Err(format!("{url}: larger than {limit} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    tokio::time::timeout(FETCH_TIMEOUT, request)
        .await
        .map_err(|_| format!("{url}: no answer within {} s", FETCH_TIMEOUT.as_secs()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_is_looked_for_where_both_specs_put_it() {
        let plain = Url::parse("https://auth.example.com").unwrap();
        assert_eq!(
            metadata_urls(&plain)
                .iter()
                .map(Url::as_str)
                .collect::<Vec<_>>(),
            [
                "https://auth.example.com/.well-known/oauth-authorization-server",
                "https://auth.example.com/.well-known/openid-configuration",
            ]
        );
        let realm = Url::parse("https://sso.example.com/realms/mcp/").unwrap();
        assert_eq!(
            metadata_urls(&realm)
                .iter()
                .map(Url::as_str)
                .collect::<Vec<_>>(),
            [
                "https://sso.example.com/.well-known/oauth-authorization-server/realms/mcp",
                "https://sso.example.com/realms/mcp/.well-known/openid-configuration",
            ]
        );
    }

    #[test]
    fn issuers_match_with_or_without_a_trailing_slash_only() {
        let issuer = "https://auth.example.com/";
        assert!(same_issuer("https://auth.example.com", issuer));
        assert!(same_issuer("https://auth.example.com/", issuer));
        assert!(!same_issuer("https://auth.example.com.evil", issuer));
        assert!(!same_issuer("http://auth.example.com", issuer));
    }
}
