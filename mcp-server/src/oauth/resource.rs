//! The protected resource metadata of RFC 9728: where a client that got a 401 learns which
//! authorization server issues tokens for this server and which scopes exist. Served without
//! authentication at the well-known path and at its form suffixed with the resource's path
//! (`/.well-known/oauth-protected-resource/mcp` for `https://host/mcp`).

use serde::Serialize;
use url::Url;

use super::Settings;

/// The well-known path segment of RFC 9728.
pub const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

#[derive(Debug, Serialize, PartialEq)]
pub struct Metadata {
    pub resource: String,
    pub authorization_servers: Vec<String>,
    pub scopes_supported: Vec<String>,
    pub bearer_methods_supported: Vec<&'static str>,
}

impl Metadata {
    pub fn of(settings: &Settings) -> Self {
        Metadata {
            resource: settings.resource.to_string(),
            authorization_servers: vec![settings.issuer.clone()],
            scopes_supported: settings.scopes_supported().into_iter().collect(),
            bearer_methods_supported: vec!["header"],
        }
    }
}

/// The URL of the metadata document of `resource` (named in every 401's challenge).
pub fn metadata_url(resource: &Url) -> Url {
    let mut url = resource.clone();
    url.set_path(&format!("{WELL_KNOWN}{}", suffix(resource)));
    url.set_query(None);
    url.set_fragment(None);
    url
}

/// The paths the metadata is served at: the plain one, and the resource-suffixed one.
pub fn paths(resource: &Url) -> Vec<String> {
    let suffixed = format!("{WELL_KNOWN}{}", suffix(resource));
    if suffixed == WELL_KNOWN {
        vec![WELL_KNOWN.to_owned()]
    } else {
        vec![WELL_KNOWN.to_owned(), suffixed]
    }
}

fn suffix(resource: &Url) -> &str {
    resource.path().trim_end_matches('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metadata_url_inserts_the_well_known_segment_before_the_resource_path() {
        let resource = Url::parse("https://mcp.example.com/mcp").unwrap();
        assert_eq!(
            metadata_url(&resource).as_str(),
            "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            paths(&resource),
            [WELL_KNOWN, "/.well-known/oauth-protected-resource/mcp"]
        );
        let root = Url::parse("https://mcp.example.com/").unwrap();
        assert_eq!(
            metadata_url(&root).as_str(),
            "https://mcp.example.com/.well-known/oauth-protected-resource"
        );
        assert_eq!(paths(&root), [WELL_KNOWN]);
    }
}
