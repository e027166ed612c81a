//! The app's Gateway API HTTPRoute, with request timeouts long enough for SSE streams.

use std::sync::LazyLock;

use kube::{
    ResourceExt,
    api::{ApiResource, DynamicObject, GroupVersionKind},
};
use serde_json::{Value, json};

use super::{AFFINITY_COOKIE, BuildError, SERVICE_PORT, meta::owned_meta};
use crate::api::{GatewayParentRef, McpApp, SessionAffinity};

/// `gateway.networking.k8s.io/v1` HTTPRoute.
pub static HTTP_ROUTE_API: LazyLock<ApiResource> = LazyLock::new(|| {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute"),
        "httproutes",
    )
});

/// The HTTPRoute for `spec.gateway`, `None` when the app has none. Both timeouts are the stream
/// timeout: Envoy-based gateways otherwise end every response, SSE streams included, after 15 s.
/// Cookie stickiness is added only when the installed CRD has `sessionPersistence`
/// (`session_persistence_supported`), since that field is experimental and has changed shape.
pub fn http_route(
    app: &McpApp,
    session_persistence_supported: bool,
) -> Result<Option<DynamicObject>, BuildError> {
    let Some(gateway) = &app.spec.gateway else {
        return Ok(None);
    };
    let timeout = format!("{}s", app.spec.sse.stream_timeout_seconds);
    let mut rule = json!({
        "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
        "backendRefs": [{"name": app.name_any(), "port": SERVICE_PORT}],
        "timeouts": {"request": timeout, "backendRequest": timeout},
    });
    if session_persistence_supported && app.spec.session.affinity == SessionAffinity::Cookie {
        rule["sessionPersistence"] = json!({
            "sessionName": AFFINITY_COOKIE,
            "type": "Cookie",
            "absoluteTimeout": format!("{}s", app.spec.session.timeout_seconds),
        });
    }
    let mut spec = json!({
        "parentRefs": gateway.parent_refs.iter().map(parent_ref).collect::<Vec<_>>(),
        "rules": [rule],
    });
    if !gateway.hostnames.is_empty() {
        spec["hostnames"] = json!(gateway.hostnames);
    }
    let mut route =
        DynamicObject::new(&app.name_any(), &HTTP_ROUTE_API).data(json!({ "spec": spec }));
    route.metadata = owned_meta(app, gateway.annotations.clone())?;
    Ok(Some(route))
}

fn parent_ref(parent: &GatewayParentRef) -> Value {
    let mut value =
        json!({"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": parent.name});
    if let Some(namespace) = &parent.namespace {
        value["namespace"] = json!(namespace);
    }
    if let Some(section) = &parent.section_name {
        value["sectionName"] = json!(section);
    }
    if let Some(port) = parent.port {
        value["port"] = json!(port);
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{GatewaySpec, McpAppSpec};
    use crate::build::fixtures::{self, app};

    fn app_with_gateway() -> McpApp {
        app(McpAppSpec {
            gateway: Some(GatewaySpec {
                parent_refs: vec![
                    GatewayParentRef {
                        name: "public".into(),
                        namespace: Some("infra".into()),
                        section_name: Some("https".into()),
                        port: None,
                    },
                    GatewayParentRef {
                        name: "internal".into(),
                        namespace: None,
                        section_name: None,
                        port: Some(8443),
                    },
                ],
                hostnames: vec!["mcp.example.com".into()],
                annotations: [("example.com/team".to_owned(), "search".to_owned())].into(),
            }),
            ..McpAppSpec::default()
        })
    }

    #[test]
    fn route_sends_every_path_to_the_service_with_stream_long_timeouts() {
        let route = http_route(&app_with_gateway(), false)
            .unwrap()
            .expect("gateway gives a route");
        let types = route.types.as_ref().unwrap();
        assert_eq!(
            (types.api_version.as_str(), types.kind.as_str()),
            ("gateway.networking.k8s.io/v1", "HTTPRoute")
        );
        assert_eq!(route.metadata.name.as_deref(), Some(fixtures::NAME));
        assert_eq!(
            route.metadata.annotations.as_ref().unwrap()["example.com/team"],
            "search"
        );
        let spec = &route.data["spec"];
        assert_eq!(spec["hostnames"], json!(["mcp.example.com"]));
        let rule = &spec["rules"][0];
        assert_eq!(
            rule["matches"][0]["path"],
            json!({"type": "PathPrefix", "value": "/"})
        );
        assert_eq!(
            rule["backendRefs"],
            json!([{"name": "weather", "port": 80}])
        );
        assert_eq!(
            rule["timeouts"],
            json!({"request": "3600s", "backendRequest": "3600s"})
        );
        assert!(rule.get("sessionPersistence").is_none());
    }

    #[test]
    fn parent_refs_keep_namespace_section_and_port() {
        let route = http_route(&app_with_gateway(), false).unwrap().unwrap();
        assert_eq!(
            route.data["spec"]["parentRefs"],
            json!([
                {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "public", "namespace": "infra", "sectionName": "https"},
                {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "internal", "port": 8443},
            ])
        );
    }

    #[test]
    fn cookie_affinity_uses_session_persistence_only_where_the_crd_has_it() {
        let mut app = app_with_gateway();
        app.spec.session.affinity = SessionAffinity::Cookie;
        let route = http_route(&app, true).unwrap().unwrap();
        assert_eq!(
            route.data["spec"]["rules"][0]["sessionPersistence"],
            json!({"sessionName": "mcp-affinity", "type": "Cookie", "absoluteTimeout": "86400s"})
        );
        let route = http_route(&app, false).unwrap().unwrap();
        assert!(
            route.data["spec"]["rules"][0]
                .get("sessionPersistence")
                .is_none()
        );
    }

    #[test]
    fn route_without_hostnames_omits_them() {
        let mut app = app_with_gateway();
        app.spec.gateway.as_mut().unwrap().hostnames.clear();
        let route = http_route(&app, false).unwrap().unwrap();
        assert!(route.data["spec"].get("hostnames").is_none());
    }

    #[test]
    fn app_without_gateway_gets_no_route() {
        assert_eq!(http_route(&app(McpAppSpec::default()), true).unwrap(), None);
    }
}
