//! The token endpoint of an issuer, from its metadata: RFC 8414 first, then OpenID Connect
//! discovery, as the MCP authorization spec asks of clients.

use reqwest::Url;
use serde::Deserialize;

use super::http::{self, Fetched};

/// What the operator needs of an authorization server's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub token_url: Url,
    /// Send the client secret in the form body instead of HTTP Basic (only when the server
    /// names `client_secret_post` and not `client_secret_basic`).
    pub secret_in_body: bool,
}

#[derive(Deserialize)]
struct Metadata {
    issuer: Option<String>,
    token_endpoint: Option<String>,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
}

/// The metadata URLs to try for `issuer`, in order: RFC 8414 inserts the well-known segment
/// before the issuer's path, OpenID Connect appends it.
pub fn metadata_urls(issuer: &str) -> Result<Vec<Url>, String> {
    let parsed = Url::parse(issuer).map_err(|e| format!("issuer {issuer:?} is not a URL: {e}"))?;
    let path = parsed.path().trim_end_matches('/').to_owned();
    let mut rfc8414 = parsed.clone();
    rfc8414.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
    let mut oidc = parsed;
    oidc.set_path(&format!("{path}/.well-known/openid-configuration"));
    Ok(vec![rfc8414, oidc])
}

/// Reads the issuer's metadata with `client`; the first document that names this issuer and a
/// token endpoint wins.
pub async fn token_endpoint(client: &reqwest::Client, issuer: &str) -> Result<Endpoint, String> {
    let mut tried = Vec::new();
    for url in metadata_urls(issuer)? {
        match http::get_json::<Metadata>(client, &url).await {
            Fetched::Ok(metadata) => match endpoint_of(metadata, issuer) {
                Ok(endpoint) => return Ok(endpoint),
                Err(why) => tried.push(format!("{url}: {why}")),
            },
            Fetched::Failed(why) => tried.push(format!("{url}: {why}")),
        }
    }
    Err(format!(
        "no usable metadata for issuer {issuer}: {}",
        tried.join("; ")
    ))
}

fn endpoint_of(metadata: Metadata, issuer: &str) -> Result<Endpoint, String> {
    // A document naming another issuer is not this issuer's (RFC 8414 §3.3).
    if metadata.issuer.as_deref().map(|i| i.trim_end_matches('/'))
        != Some(issuer.trim_end_matches('/'))
    {
        return Err("it names another issuer".into());
    }
    let token = metadata
        .token_endpoint
        .ok_or("it names no token_endpoint")?;
    let token_url = Url::parse(&token).map_err(|_| "its token_endpoint is not a URL".to_owned())?;
    if !matches!(token_url.scheme(), "https" | "http") {
        return Err("its token_endpoint is not an http(s) URL".into());
    }
    let methods = metadata
        .token_endpoint_auth_methods_supported
        .unwrap_or_default();
    let secret_in_body = methods.iter().any(|m| m == "client_secret_post")
        && !methods.iter().any(|m| m == "client_secret_basic");
    Ok(Endpoint {
        token_url,
        secret_in_body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(issuer: &str, methods: Option<&[&str]>) -> Metadata {
        Metadata {
            issuer: Some(issuer.into()),
            token_endpoint: Some("https://id.example.com/oauth2/token".into()),
            token_endpoint_auth_methods_supported: methods
                .map(|m| m.iter().map(|s| (*s).to_owned()).collect()),
        }
    }

    #[test]
    fn rfc8414_goes_before_the_path_and_oidc_after_it() {
        let urls = metadata_urls("https://id.example.com/realms/mcp/").unwrap();
        assert_eq!(
            urls[0].as_str(),
            "https://id.example.com/.well-known/oauth-authorization-server/realms/mcp"
        );
        assert_eq!(
            urls[1].as_str(),
            "https://id.example.com/realms/mcp/.well-known/openid-configuration"
        );
        let root = metadata_urls("https://id.example.com").unwrap();
        assert_eq!(
            root[0].as_str(),
            "https://id.example.com/.well-known/oauth-authorization-server"
        );
        assert!(metadata_urls("id.example.com").is_err());
    }

    #[test]
    fn only_this_issuers_document_with_a_token_endpoint_counts() {
        let ok = endpoint_of(
            metadata("https://id.example.com/", None),
            "https://id.example.com",
        )
        .unwrap();
        assert_eq!(ok.token_url.as_str(), "https://id.example.com/oauth2/token");
        assert!(!ok.secret_in_body);
        assert!(
            endpoint_of(
                metadata("https://evil.example", None),
                "https://id.example.com"
            )
            .is_err()
        );
        let mut no_token = metadata("https://id.example.com", None);
        no_token.token_endpoint = None;
        assert!(endpoint_of(no_token, "https://id.example.com").is_err());
        let mut not_http = metadata("https://id.example.com", None);
        not_http.token_endpoint = Some("file:///etc/passwd".into());
        assert!(endpoint_of(not_http, "https://id.example.com").is_err());
    }

    #[test]
    fn the_secret_goes_in_the_body_only_when_basic_is_not_offered() {
        let issuer = "https://id.example.com";
        let post = endpoint_of(metadata(issuer, Some(&["client_secret_post"])), issuer).unwrap();
        assert!(post.secret_in_body);
        let both = endpoint_of(
            metadata(issuer, Some(&["client_secret_post", "client_secret_basic"])),
            issuer,
        )
        .unwrap();
        assert!(!both.secret_in_body);
    }
}
