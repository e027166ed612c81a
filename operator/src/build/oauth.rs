//! `auth.oauth` as the companion's settings: the `MCP_OAUTH_*` environment variables of the
//! container that serves the app (the companion itself, the bridge or the front door), and the
//! issuer's CA bundle mounted from its Secret.

use k8s_openapi::api::core::v1::{EnvVar, KeyToPath, SecretVolumeSource, Volume, VolumeMount};

use super::url::oauth_resource;
use crate::api::{McpApp, OAuthSpec};

/// Volume of the issuer's CA bundle.
const CA_VOLUME: &str = "oauth-ca";
/// Where the CA bundle is mounted.
const CA_DIR: &str = "/etc/mcp-server/oauth-ca";
const CA_FILE: &str = "ca.crt";

fn oauth(app: &McpApp) -> Option<&OAuthSpec> {
    app.spec.auth.as_ref()?.oauth.as_ref()
}

/// The companion's OAuth settings; empty when the app has no `auth.oauth`.
pub(super) fn env(app: &McpApp) -> Vec<EnvVar> {
    let Some(oauth) = oauth(app) else {
        return Vec::new();
    };
    let mut vars = vec![
        ("MCP_OAUTH_ISSUER", oauth.issuer.clone()),
        ("MCP_OAUTH_RESOURCE", oauth_resource(app)),
        (
            "MCP_OAUTH_CLOCK_SKEW_SECONDS",
            oauth.clock_skew_seconds.max(0).to_string(),
        ),
    ];
    if !oauth.audiences.is_empty() {
        vars.push(("MCP_OAUTH_AUDIENCES", oauth.audiences.join(",")));
    }
    if !oauth.required_scopes.is_empty() {
        vars.push(("MCP_OAUTH_REQUIRED_SCOPES", oauth.required_scopes.join(",")));
    }
    if let Some(jwks) = &oauth.jwks_url {
        vars.push(("MCP_OAUTH_JWKS_URL", jwks.clone()));
    }
    if !oauth.tool_scopes.is_empty() {
        // TOOL=SCOPE[,SCOPE] per tool, tools separated by `;` (the schema keeps these
        // characters out of names and scopes).
        let tools: Vec<String> = oauth
            .tool_scopes
            .iter()
            .map(|t| format!("{}={}", t.tool, t.scopes.join(",")))
            .collect();
        vars.push(("MCP_OAUTH_TOOL_SCOPES", tools.join(";")));
    }
    if oauth.ca_bundle_secret_ref.is_some() {
        vars.push(("MCP_OAUTH_CA_FILE", format!("{CA_DIR}/{CA_FILE}")));
    }
    if oauth.pass_token {
        vars.push(("MCP_OAUTH_PASS_TOKEN", "true".to_owned()));
    }
    vars.into_iter()
        .map(|(name, value)| EnvVar {
            name: name.into(),
            value: Some(value),
            value_from: None,
        })
        .collect()
}

/// The issuer's CA bundle from its Secret, when `auth.oauth` names one.
pub(super) fn ca_volume(app: &McpApp) -> Option<Volume> {
    let r = oauth(app)?.ca_bundle_secret_ref.as_ref()?;
    Some(Volume {
        name: CA_VOLUME.into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(r.name.clone()),
            items: Some(vec![KeyToPath {
                key: r.key.clone(),
                path: CA_FILE.into(),
                ..KeyToPath::default()
            }]),
            default_mode: Some(0o444),
            ..SecretVolumeSource::default()
        }),
        ..Volume::default()
    })
}

/// Its mount in the container that checks tokens.
pub(super) fn ca_mount(app: &McpApp) -> Option<VolumeMount> {
    oauth(app)?.ca_bundle_secret_ref.as_ref()?;
    Some(VolumeMount {
        name: CA_VOLUME.into(),
        mount_path: CA_DIR.into(),
        read_only: Some(true),
        ..VolumeMount::default()
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::api::{AuthSpec, McpAppSpec, SecretKeyRef, ToolScopes};
    use crate::build::fixtures::app;

    fn oauth_app(oauth: OAuthSpec) -> McpApp {
        app(McpAppSpec {
            auth: Some(AuthSpec { oauth: Some(oauth) }),
            ..McpAppSpec::default()
        })
    }

    fn spec(issuer: &str) -> OAuthSpec {
        serde_json::from_value(serde_json::json!({ "issuer": issuer })).expect("oauth spec")
    }

    fn vars(app: &McpApp) -> BTreeMap<String, String> {
        env(app)
            .into_iter()
            .map(|v| (v.name, v.value.unwrap_or_default()))
            .collect()
    }

    #[test]
    fn no_oauth_means_no_settings() {
        let plain = app(McpAppSpec::default());
        assert!(env(&plain).is_empty());
        assert!(ca_volume(&plain).is_none() && ca_mount(&plain).is_none());
    }

    #[test]
    fn the_minimal_settings_name_the_issuer_and_the_apps_own_url_as_resource() {
        let a = oauth_app(spec("https://id.example.com/realms/mcp"));
        let v = vars(&a);
        assert_eq!(v["MCP_OAUTH_ISSUER"], "https://id.example.com/realms/mcp");
        assert_eq!(v["MCP_OAUTH_RESOURCE"], "http://weather.tools.svc/mcp");
        assert_eq!(v["MCP_OAUTH_CLOCK_SKEW_SECONDS"], "60");
        assert_eq!(v.len(), 3, "{v:?}");
    }

    #[test]
    fn every_field_becomes_the_companions_variable() {
        let mut o = spec("https://id.example.com");
        o.resource = Some("https://mcp.example.com/mcp".into());
        o.audiences = vec!["api://weather".into(), "weather".into()];
        o.required_scopes = vec!["mcp".into(), "weather:read".into()];
        o.jwks_url = Some("https://id.example.com/keys".into());
        o.clock_skew_seconds = 5;
        o.tool_scopes = vec![
            ToolScopes {
                tool: "delete".into(),
                scopes: vec!["admin".into(), "weather:write".into()],
            },
            ToolScopes {
                tool: "forecast".into(),
                scopes: vec!["weather:read".into()],
            },
        ];
        o.ca_bundle_secret_ref = Some(SecretKeyRef {
            name: "idp-ca".into(),
            key: "ca.pem".into(),
        });
        o.pass_token = true;
        let a = oauth_app(o);
        let v = vars(&a);
        assert_eq!(v["MCP_OAUTH_RESOURCE"], "https://mcp.example.com/mcp");
        assert_eq!(v["MCP_OAUTH_AUDIENCES"], "api://weather,weather");
        assert_eq!(v["MCP_OAUTH_REQUIRED_SCOPES"], "mcp,weather:read");
        assert_eq!(v["MCP_OAUTH_JWKS_URL"], "https://id.example.com/keys");
        assert_eq!(v["MCP_OAUTH_CLOCK_SKEW_SECONDS"], "5");
        assert_eq!(
            v["MCP_OAUTH_TOOL_SCOPES"],
            "delete=admin,weather:write;forecast=weather:read"
        );
        assert_eq!(v["MCP_OAUTH_CA_FILE"], "/etc/mcp-server/oauth-ca/ca.crt");
        assert_eq!(v["MCP_OAUTH_PASS_TOKEN"], "true");

        let volume = ca_volume(&a).expect("CA volume");
        let secret = volume.secret.expect("from a Secret");
        assert_eq!(secret.secret_name.as_deref(), Some("idp-ca"));
        assert_eq!(secret.items.expect("one item")[0].key, "ca.pem");
        let mount = ca_mount(&a).expect("CA mount");
        assert_eq!(mount.name, volume.name);
        assert_eq!(mount.read_only, Some(true));
    }
}
