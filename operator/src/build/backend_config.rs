//! GKE BackendConfig: where the GCE ingress controller takes timeouts, stickiness and draining.

use kube::{
    ResourceExt,
    api::{ApiResource, DynamicObject, GroupVersionKind},
};
use serde_json::json;

use super::{BuildError, IngressDialect, meta::owned_meta};
use crate::api::{McpApp, SessionAffinity};

/// `cloud.google.com/v1` BackendConfig.
pub static BACKEND_CONFIG_API: std::sync::LazyLock<ApiResource> = std::sync::LazyLock::new(|| {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("cloud.google.com", "v1", "BackendConfig"),
        "backendconfigs",
    )
});

/// The BackendConfig for an app behind the GCE ingress controller, `None` for other dialects.
pub fn backend_config(
    app: &McpApp,
    dialect: Option<&IngressDialect>,
) -> Result<Option<DynamicObject>, BuildError> {
    if !dialect.is_some_and(|d| d.backend_config) {
        return Ok(None);
    }
    let mut spec = json!({
        // A GCE backend service timeout bounds the whole response, i.e. an SSE stream's life.
        "timeoutSec": app.spec.sse.stream_timeout_seconds,
        "connectionDraining": {"drainingTimeoutSec": app.spec.rollout.drain_seconds},
    });
    // GCE has client IP and generated-cookie affinity; header hashing falls back to client IP,
    // which, unlike a cookie, every MCP client honours.
    let affinity_type = match app.spec.session.affinity {
        SessionAffinity::None => None,
        SessionAffinity::ClientIp | SessionAffinity::Header => Some("CLIENT_IP"),
        SessionAffinity::Cookie => Some("GENERATED_COOKIE"),
    };
    if let Some(affinity_type) = affinity_type {
        spec["sessionAffinity"] = json!({
            "affinityType": affinity_type,
            "affinityCookieTtlSec": app.spec.session.timeout_seconds,
        });
    }
    let mut object =
        DynamicObject::new(&app.name_any(), &BACKEND_CONFIG_API).data(json!({ "spec": spec }));
    object.metadata = owned_meta(app, Default::default())?;
    Ok(Some(object))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::McpAppSpec;
    use crate::build::{
        fixtures::{self, app_with_ingress},
        resolve_dialect,
    };

    fn gce() -> &'static IngressDialect {
        resolve_dialect(Some("k8s.io/ingress-gce"), None)
    }

    #[test]
    fn gce_backend_config_carries_stream_timeout_draining_and_client_ip_affinity() {
        let app = app_with_ingress(Some("gce"));
        let config = backend_config(&app, Some(gce()))
            .unwrap()
            .expect("GCE gets a BackendConfig");
        let types = config
            .types
            .as_ref()
            .expect("apply needs apiVersion and kind");
        assert_eq!(types.api_version, "cloud.google.com/v1");
        assert_eq!(types.kind, "BackendConfig");
        assert_eq!(config.metadata.name.as_deref(), Some(fixtures::NAME));
        assert_eq!(
            config.metadata.namespace.as_deref(),
            Some(fixtures::NAMESPACE)
        );
        assert_eq!(config.data["spec"]["timeoutSec"], 3600);
        assert_eq!(
            config.data["spec"]["connectionDraining"]["drainingTimeoutSec"],
            30
        );
        assert_eq!(
            config.data["spec"]["sessionAffinity"]["affinityType"],
            "CLIENT_IP"
        );
        assert_eq!(
            config.data["spec"]["sessionAffinity"]["affinityCookieTtlSec"],
            86400
        );
    }

    #[test]
    fn gce_cookie_affinity_uses_a_generated_cookie_and_none_sets_no_affinity() {
        let mut app = app_with_ingress(Some("gce"));
        app.spec.session.affinity = SessionAffinity::Cookie;
        let config = backend_config(&app, Some(gce())).unwrap().unwrap();
        assert_eq!(
            config.data["spec"]["sessionAffinity"]["affinityType"],
            "GENERATED_COOKIE"
        );

        app.spec.session.affinity = SessionAffinity::None;
        let config = backend_config(&app, Some(gce())).unwrap().unwrap();
        assert!(config.data["spec"].get("sessionAffinity").is_none());
    }

    #[test]
    fn other_dialects_and_apps_without_ingress_get_no_backend_config() {
        let app = app_with_ingress(Some("nginx"));
        let nginx = resolve_dialect(Some("k8s.io/ingress-nginx"), None);
        assert_eq!(backend_config(&app, Some(nginx)).unwrap(), None);
        assert_eq!(
            backend_config(&fixtures::app(McpAppSpec::default()), None).unwrap(),
            None
        );
    }
}
