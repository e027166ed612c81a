//! The handshake target of one pod: its IP, and the port, path and probe settings of the
//! revision it runs, with the bearer token from the app's Secret (read on demand, see
//! [`crate::secrets`]).

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use super::book::Failure;
use crate::api::{McpApp, Transport};
use crate::build::ProbeSettings;
use crate::probe::Target;
use crate::secrets::{SecretData, SecretReads};

/// Where to send the handshake for `pod`, probed with `settings` and `bearer_token`, or why it
/// cannot be sent.
pub fn for_pod(
    settings: &ProbeSettings,
    pod: &Pod,
    bearer_token: Option<String>,
) -> Result<Target, Failure> {
    let ip = pod
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .ok_or_else(|| Failure {
            reason: "NoPodIP",
            message: "the pod has no IP address yet".into(),
        })?;
    // An IPv6 address needs brackets in a URL.
    let host = if ip.contains(':') {
        format!("[{ip}]")
    } else {
        ip.to_owned()
    };
    let probe = &settings.probe;
    let legacy_sse = settings.transport == Transport::Sse;
    let path = if legacy_sse { "/sse" } else { &settings.path };
    Ok(Target {
        url: format!("http://{host}:{}{path}", settings.port),
        legacy_sse,
        protocol: probe.protocol_version,
        required_tools: probe.required_tools.clone(),
        bearer_token,
        timeout: probe.timeout(),
    })
}

/// The bearer token `settings` ask for, from a Secret in `app`'s namespace, if they ask for one.
pub async fn bearer_token(
    app: &McpApp,
    settings: &ProbeSettings,
    secrets: &SecretReads,
) -> Result<Option<String>, Failure> {
    let Some(r) = &settings.probe.bearer_token_secret_ref else {
        return Ok(None);
    };
    let ns = app.namespace().unwrap_or_default();
    let field = "probe.bearerTokenSecretRef";
    let data = read(secrets, &ns, &r.name, field).await?;
    secret_text(data.as_deref(), field, &ns, &r.name, &r.key).map(Some)
}

/// Secret `ns/name`, named for `field` when it cannot be read.
pub async fn read(
    secrets: &SecretReads,
    ns: &str,
    name: &str,
    field: &str,
) -> Result<Option<std::sync::Arc<SecretData>>, Failure> {
    secrets.data(ns, name).await.map_err(|e| Failure {
        reason: "SecretUnreadable",
        message: format!("{field}: {e}"),
    })
}

/// Longest credential taken from a Secret key.
const MAX_SECRET_TEXT_BYTES: usize = 16 * 1024;

/// The text under `key` of Secret `ns/name` (whose data is `data`, None when it is missing),
/// trimmed; failures name `field`, the spec field that points there.
pub fn secret_text(
    data: Option<&SecretData>,
    field: &str,
    ns: &str,
    name: &str,
    key: &str,
) -> Result<String, Failure> {
    let data = data.ok_or_else(|| Failure {
        reason: "SecretNotFound",
        message: format!("{field}: Secret {ns}/{name} not found"),
    })?;
    let value = data.get(key).ok_or_else(|| Failure {
        reason: "SecretNotFound",
        message: format!("{field}: Secret {ns}/{name} has no key {key}"),
    })?;
    let invalid = |why: &str| Failure {
        reason: "InvalidToken",
        message: format!("{field}: key {key} of Secret {ns}/{name} {why}"),
    };
    if value.0.len() > MAX_SECRET_TEXT_BYTES {
        return Err(invalid(&format!(
            "is longer than {MAX_SECRET_TEXT_BYTES} bytes"
        )));
    }
    let text = std::str::from_utf8(&value.0).map_err(|_| invalid("is not UTF-8"))?;
    Ok(text.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use k8s_openapi::ByteString;

    use super::*;
    use crate::api::ProtocolVersion;

    fn app(spec: serde_json::Value) -> McpApp {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "mcp-operator.dev/v1alpha1", "kind": "McpApp",
            "metadata": {"name": "demo", "namespace": "tools"},
            "spec": spec,
        }))
        .unwrap()
    }

    fn pod(ip: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "demo-1", "namespace": "tools"},
            "status": {"podIP": ip},
        }))
        .unwrap()
    }

    #[test]
    fn streamable_http_target_uses_the_apps_port_path_and_probe_settings() {
        let app = app(serde_json::json!({
            "port": 3000, "path": "/api/mcp",
            "probe": {"timeoutSeconds": 2, "protocolVersion": "2025-06-18", "requiredTools": ["echo"]},
        }));
        let t = for_pod(&ProbeSettings::of(&app), &pod("10.244.0.7"), None).unwrap();
        assert_eq!(t.url, "http://10.244.0.7:3000/api/mcp");
        assert!(!t.legacy_sse);
        assert_eq!(t.protocol, ProtocolVersion::V2025_06_18);
        assert_eq!(t.required_tools, vec!["echo".to_owned()]);
        assert_eq!(t.timeout, std::time::Duration::from_secs(2));
        assert_eq!(t.bearer_token, None);
    }

    #[test]
    fn legacy_sse_apps_are_probed_on_their_stream_and_ipv6_gets_brackets() {
        let app = app(serde_json::json!({"transport": "sse", "image": "x"}));
        let t = for_pod(&ProbeSettings::of(&app), &pod("fd00::5"), None).unwrap();
        assert_eq!(
            t.url, "http://[fd00::5]:8099/sse",
            "an own image is probed through its front door"
        );
        assert!(t.legacy_sse);
    }

    #[test]
    fn the_bearer_token_comes_from_the_secret_or_the_failure_names_it() {
        let field = "probe.bearerTokenSecretRef";
        let missing = secret_text(None, field, "tools", "probe-token", "token").unwrap_err();
        assert_eq!(missing.reason, "SecretNotFound");
        assert!(
            missing.message.contains("tools/probe-token"),
            "{}",
            missing.message
        );
        let data = SecretData::from([("token".to_owned(), ByteString(b"s3cr3t\n".to_vec()))]);
        let no_key = secret_text(Some(&data), field, "tools", "probe-token", "other").unwrap_err();
        assert!(
            no_key.message.contains("no key other"),
            "{}",
            no_key.message
        );
        let token = secret_text(Some(&data), field, "tools", "probe-token", "token").unwrap();
        assert_eq!(token, "s3cr3t");
        let huge = SecretData::from([("token".to_owned(), ByteString(vec![b'a'; 20_000]))]);
        let too_long = secret_text(Some(&huge), field, "tools", "probe-token", "token");
        assert_eq!(too_long.unwrap_err().reason, "InvalidToken");
    }
}
