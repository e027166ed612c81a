//! OAuth 2.1 at the MCP endpoint, as the MCP authorization spec asks of a protected resource:
//! every request carries an access token (a JWT from the configured authorization server) in
//! its Authorization header; the token's signature, issuer, audience, lifetime and scopes are
//! checked here, so only callers that passed reach the server.
//!
//! - [`keys`]: the issuer's signing keys (RFC 8414 or OIDC discovery, then its JWKS), cached and
//!   fetched again for an unknown key id, at most once per refetch floor;
//! - [`verify`]: one token checked against those keys and the settings, into a [`Caller`];
//! - [`memo`]: tokens that passed, remembered for a minute at most so that each is verified
//!   once, not on every request;
//! - [`resource`]: the protected resource metadata of RFC 9728, which a client reads from the
//!   401 to find the authorization server;
//! - [`gate`]: the middleware that answers 401 and 403 with the `WWW-Authenticate` challenges
//!   of RFC 6750, and the check of `tools/call` against per-tool scopes;
//! - [`screen`]: `tools/list` answers without the tools the caller may not call;
//! - [`identity`]: the caller named to the server behind the proxy in headers, and clients'
//!   own copies of those headers removed.

pub mod gate;
pub mod identity;
pub mod keys;
pub mod memo;
pub mod resource;
pub mod screen;
pub mod verify;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use url::Url;

pub use identity::Identity;
pub use screen::ToolScreen;
pub use verify::{Caller, Refusal, Verifier};

/// What the rest of the server learns of a request whose token passed, attached to it by
/// [`gate::require_token`].
#[derive(Debug, Clone)]
pub struct Grant {
    /// The headers that tell the server behind the proxy who called.
    pub identity: Arc<Identity>,
    /// What the caller may see of `tools/list`; `None` when every caller sees everything.
    pub screen: Option<Arc<ToolScreen>>,
}

/// What the operator (or a person) configures.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The authorization server's issuer identifier, exactly as its tokens' `iss` (an HTTPS URL;
    /// kept as written: `Url` would add a trailing slash to a bare host).
    pub issuer: String,
    /// This server's resource identifier (its public MCP URL): named in the metadata, and the
    /// audience tokens must carry when `audiences` is empty.
    pub resource: Url,
    /// Accepted `aud` values; empty means `[resource]`.
    pub audiences: Vec<String>,
    /// Scopes every token must carry.
    pub required_scopes: BTreeSet<String>,
    /// The JWKS URL, when discovery should not be used.
    pub jwks_url: Option<Url>,
    /// Allowed clock skew for `exp` and `nbf`.
    pub clock_skew: Duration,
    /// Fetches of the keys for an unknown key id are this far apart at least.
    pub refetch_floor: Duration,
    /// Scopes a caller needs for a tool, on top of `required_scopes`.
    pub tool_scopes: BTreeMap<String, BTreeSet<String>>,
    /// PEM file of CA certificates trusted for the issuer, besides the system's.
    pub ca_file: Option<std::path::PathBuf>,
    /// Proxy mode: pass the client's `Authorization` header to the upstream too.
    pub pass_token: bool,
}

impl Settings {
    /// The audiences tokens must name (one of).
    pub fn accepted_audiences(&self) -> Vec<String> {
        if self.audiences.is_empty() {
            vec![self.resource.to_string()]
        } else {
            self.audiences.clone()
        }
    }

    /// Every scope the metadata advertises: the required ones and those of every tool.
    pub fn scopes_supported(&self) -> BTreeSet<String> {
        let mut all = self.required_scopes.clone();
        for scopes in self.tool_scopes.values() {
            all.extend(scopes.iter().cloned());
        }
        all
    }

    /// Scopes `tool` needs that `caller` lacks.
    pub fn missing_for_tool(&self, caller: &Caller, tool: &str) -> BTreeSet<String> {
        self.tool_scopes
            .get(tool)
            .map(|needed| needed.difference(&caller.scopes).cloned().collect())
            .unwrap_or_default()
    }
}

/// `text` cut to at most `max` characters, with control characters replaced: outside text made
/// safe for a log line or a message.
pub fn clip(text: &str, max: usize) -> String {
    text.chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Checks an issuer identifier (a URL without query or fragment, RFC 8414) and keeps it as written.
pub fn parse_issuer(text: &str) -> Result<String, String> {
    let url = Url::parse(text).map_err(|e| format!("{text:?}: not a URL: {e}"))?;
    if !matches!(url.scheme(), "https" | "http")
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(format!(
            "{text:?}: an issuer is an http(s) URL without query or fragment"
        ));
    }
    Ok(text.to_owned())
}

/// Parses `TOOL=SCOPE[,SCOPE...]` (a command-line value).
pub fn parse_tool_scope(text: &str) -> Result<(String, BTreeSet<String>), String> {
    let (tool, scopes) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected TOOL=SCOPE[,SCOPE...]"))?;
    let scopes: BTreeSet<String> = scopes
        .split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if tool.trim().is_empty() || scopes.is_empty() {
        return Err(format!("{text:?}: expected TOOL=SCOPE[,SCOPE...]"));
    }
    Ok((tool.trim().to_owned(), scopes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuers_are_http_urls_kept_as_written() {
        assert_eq!(
            parse_issuer("https://auth.example.com").unwrap(),
            "https://auth.example.com"
        );
        for bad in [
            "auth.example.com",
            "ftp://x",
            "https://a/?q=1",
            "https://a/#f",
        ] {
            assert!(parse_issuer(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tool_scopes_parse_and_bad_ones_say_the_expected_form() {
        let (tool, scopes) = parse_tool_scope("fetch=web.read, web.fetch").unwrap();
        assert_eq!(tool, "fetch");
        assert_eq!(
            scopes.into_iter().collect::<Vec<_>>(),
            ["web.fetch", "web.read"]
        );
        for bad in ["fetch", "=x", "fetch=", "fetch= , "] {
            assert!(
                parse_tool_scope(bad).unwrap_err().contains("TOOL=SCOPE"),
                "{bad}"
            );
        }
    }
}
