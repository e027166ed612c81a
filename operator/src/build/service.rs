//! The app's Service: a stable name for its pods, with ClientIP stickiness for in-cluster clients.

use k8s_openapi::{
    api::core::v1::{ClientIPConfig, Service, ServicePort, ServiceSpec, SessionAffinityConfig},
    apimachinery::pkg::util::intstr::IntOrString,
};

use super::{
    BuildError, IngressDialect,
    meta::{owned_meta, selector_labels},
};
use crate::api::McpApp;

/// Port of the Service; it forwards to the container's named port `http`.
pub const SERVICE_PORT: i32 = 80;

/// The Service in front of the app's pods. Whenever stickiness is on, the Service sticks by
/// client IP: ingress controllers route to pods directly and stick on their own, so this is
/// what in-cluster clients (and Gateways that route through the Service) get.
pub fn service(app: &McpApp, dialect: Option<&IngressDialect>) -> Result<Service, BuildError> {
    let annotations = dialect
        .map(|d| d.service_annotations(app))
        .unwrap_or_default();
    let session = &app.spec.session;
    let sticky = session.affinity.is_sticky();
    Ok(Service {
        metadata: owned_meta(app, annotations)?,
        spec: Some(ServiceSpec {
            selector: Some(selector_labels(app)),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: SERVICE_PORT,
                target_port: Some(IntOrString::String("http".into())),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            session_affinity: Some(if sticky { "ClientIP" } else { "None" }.into()),
            session_affinity_config: sticky.then_some(SessionAffinityConfig {
                client_ip: Some(ClientIPConfig {
                    timeout_seconds: Some(session.timeout_seconds),
                }),
            }),
            ..ServiceSpec::default()
        }),
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::api::{McpAppSpec, SessionAffinity, SessionSpec};
    use crate::build::{
        fixtures::{self, app, app_with_ingress},
        resolve_dialect,
    };

    fn spec_of(service: &Service) -> &ServiceSpec {
        service.spec.as_ref().expect("a Service has a spec")
    }

    #[test]
    fn service_selects_the_apps_pods_and_forwards_port_80_to_the_named_container_port() {
        let service = service(&app(McpAppSpec::default()), None).unwrap();
        assert_eq!(service.metadata.name.as_deref(), Some(fixtures::NAME));
        let spec = spec_of(&service);
        let selector = spec.selector.as_ref().unwrap();
        assert_eq!(selector["app.kubernetes.io/instance"], fixtures::NAME);
        assert_eq!(selector["app.kubernetes.io/name"], "mcp-server");
        let port = &spec.ports.as_ref().unwrap()[0];
        assert_eq!(port.port, 80);
        assert_eq!(port.target_port, Some(IntOrString::String("http".into())));
    }

    #[test]
    fn client_ip_affinity_uses_the_session_timeout() {
        let service = service(
            &app(McpAppSpec {
                session: SessionSpec {
                    affinity: SessionAffinity::ClientIp,
                    timeout_seconds: 600,
                    ..SessionSpec::default()
                },
                ..McpAppSpec::default()
            }),
            None,
        )
        .unwrap();
        let spec = spec_of(&service);
        assert_eq!(spec.session_affinity.as_deref(), Some("ClientIP"));
        let timeout = spec
            .session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref());
        assert_eq!(timeout.and_then(|c| c.timeout_seconds), Some(600));
    }

    #[test]
    fn cookie_and_header_affinity_still_stick_in_cluster_clients_by_ip() {
        for affinity in [SessionAffinity::Cookie, SessionAffinity::Header] {
            let mut app = app(McpAppSpec::default());
            app.spec.session.affinity = affinity;
            let service = service(&app, None).unwrap();
            assert_eq!(
                spec_of(&service).session_affinity.as_deref(),
                Some("ClientIP")
            );
        }
    }

    #[test]
    fn no_affinity_sets_none_and_no_config() {
        let mut app = app(McpAppSpec::default());
        app.spec.session.affinity = SessionAffinity::None;
        let service = service(&app, None).unwrap();
        assert_eq!(spec_of(&service).session_affinity.as_deref(), Some("None"));
        assert_eq!(spec_of(&service).session_affinity_config, None);
    }

    #[test]
    fn traefik_cookie_stickiness_is_set_on_the_service() {
        let app = app_with_ingress(Some("traefik"));
        let dialect = resolve_dialect(Some("traefik.io/ingress-controller"), None);
        let service = service(&app, Some(dialect)).unwrap();
        let annotations = service.metadata.annotations.unwrap();
        assert_eq!(
            annotations["traefik.ingress.kubernetes.io/service.sticky.cookie"],
            "true"
        );
        assert_eq!(
            annotations["traefik.ingress.kubernetes.io/service.sticky.cookie.name"],
            "mcp-affinity"
        );
        assert_eq!(
            annotations["traefik.ingress.kubernetes.io/service.sticky.cookie.maxage"],
            "86400"
        );
    }

    /// The Service annotations of `app` behind an IngressClass served by `controller`.
    fn annotations_of(app: &McpApp, controller: &str) -> BTreeMap<String, String> {
        let dialect = resolve_dialect(Some(controller), None);
        service(app, Some(dialect))
            .unwrap()
            .metadata
            .annotations
            .unwrap_or_default()
    }

    #[test]
    fn haproxy_cookie_persistence_is_set_on_the_service() {
        let mut app = app_with_ingress(Some("haproxy"));
        app.spec.session.affinity = SessionAffinity::Cookie;
        let annotations = annotations_of(&app, "haproxy.org/ingress-controller/haproxy");
        assert_eq!(
            annotations["haproxy.org/cookie-persistence"],
            "mcp-affinity"
        );
    }

    #[test]
    fn gce_service_points_at_its_backend_config_and_uses_negs() {
        let app = app_with_ingress(Some("gce"));
        let annotations = annotations_of(&app, "k8s.io/ingress-gce");
        assert_eq!(
            annotations["cloud.google.com/backend-config"],
            r#"{"default":"weather"}"#
        );
        assert_eq!(annotations["cloud.google.com/neg"], r#"{"ingress":true}"#);
    }

    #[test]
    fn service_without_ingress_has_no_annotations() {
        let service = service(&app(McpAppSpec::default()), None).unwrap();
        assert_eq!(service.metadata.annotations, None);
    }
}
