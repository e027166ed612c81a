//! The app's Ingress, in the dialect of the controller that serves its IngressClass.

use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec as KubeIngressSpec, IngressTLS, ServiceBackendPort,
};
use kube::ResourceExt;

use super::{
    BuildError, IngressDialect, SERVICE_PORT,
    meta::{owned_meta, user_wins},
    resolve_dialect,
};
use crate::api::McpApp;

/// The legacy class annotation, still the only class selector GKE reads.
const CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

/// The Ingress for `spec.ingress`, `None` when the app has none. It routes every path of the
/// host to the Service, so `/mcp`, `/sse` and `/messages` all reach the server. `dialect` is the
/// IngressClass controller's (see [`resolve_dialect`]); `None` means the generic one.
pub fn ingress(
    app: &McpApp,
    dialect: Option<&IngressDialect>,
) -> Result<Option<Ingress>, BuildError> {
    let Some(spec) = &app.spec.ingress else {
        return Ok(None);
    };
    let dialect = dialect.unwrap_or_else(|| resolve_dialect(None, None));
    let mut ours = dialect.ingress_annotations(app);
    let class_name = match (&spec.class_name, dialect.class_by_annotation) {
        (Some(class), true) => {
            ours.insert(CLASS_ANNOTATION.to_owned(), class.clone());
            None
        }
        (class, _) => class.clone(),
    };
    let backend = IngressBackend {
        service: Some(IngressServiceBackend {
            name: app.name_any(),
            port: Some(ServiceBackendPort {
                number: Some(SERVICE_PORT),
                name: None,
            }),
        }),
        resource: None,
    };
    Ok(Some(Ingress {
        metadata: owned_meta(app, user_wins(ours, &spec.annotations))?,
        spec: Some(KubeIngressSpec {
            ingress_class_name: class_name,
            rules: Some(vec![IngressRule {
                host: Some(spec.host.clone()),
                http: Some(HTTPIngressRuleValue {
                    paths: vec![HTTPIngressPath {
                        path: Some("/".into()),
                        path_type: "Prefix".into(),
                        backend,
                    }],
                }),
            }]),
            tls: spec.tls.as_ref().map(|tls| {
                vec![IngressTLS {
                    hosts: Some(vec![spec.host.clone()]),
                    secret_name: Some(tls.secret_name.clone()),
                }]
            }),
            default_backend: None,
        }),
        status: None,
    }))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::api::{IngressTls, McpAppSpec, SessionAffinity};
    use crate::build::fixtures::{self, app, app_with_ingress};

    /// The Ingress annotations of `app` behind an IngressClass served by `controller`.
    fn annotations_of(app: &McpApp, controller: &str) -> BTreeMap<String, String> {
        let dialect = resolve_dialect(Some(controller), None);
        ingress(app, Some(dialect))
            .unwrap()
            .expect("the app has an ingress")
            .metadata
            .annotations
            .unwrap_or_default()
    }

    /// The Ingress annotations for an app behind `controller` with the given affinity.
    fn annotations(controller: &str, affinity: SessionAffinity) -> BTreeMap<String, String> {
        let mut app = app_with_ingress(Some("any"));
        app.spec.session.affinity = affinity;
        annotations_of(&app, controller)
    }

    const NGINX: &str = "k8s.io/ingress-nginx";
    const HAPROXY: &str = "haproxy.org/ingress-controller/haproxy";
    const ALB: &str = "ingress.k8s.aws/alb";

    #[test]
    fn ingress_routes_the_whole_host_to_the_service_port() {
        let ingress = ingress(&app_with_ingress(Some("nginx")), None)
            .unwrap()
            .unwrap();
        assert_eq!(ingress.metadata.name.as_deref(), Some(fixtures::NAME));
        let spec = ingress.spec.unwrap();
        assert_eq!(spec.ingress_class_name.as_deref(), Some("nginx"));
        let rule = &spec.rules.unwrap()[0];
        assert_eq!(rule.host.as_deref(), Some("mcp.example.com"));
        let path = &rule.http.as_ref().unwrap().paths[0];
        assert_eq!(
            (path.path.as_deref(), path.path_type.as_str()),
            (Some("/"), "Prefix")
        );
        let backend = path.backend.service.as_ref().unwrap();
        assert_eq!(backend.name, fixtures::NAME);
        assert_eq!(backend.port.as_ref().unwrap().number, Some(80));
        assert_eq!(spec.tls, None);
    }

    #[test]
    fn tls_secret_covers_the_host() {
        let mut app = app_with_ingress(None);
        app.spec.ingress.as_mut().unwrap().tls = Some(IngressTls {
            secret_name: "mcp-tls".into(),
        });
        let tls = ingress(&app, None)
            .unwrap()
            .unwrap()
            .spec
            .unwrap()
            .tls
            .unwrap();
        assert_eq!(tls[0].secret_name.as_deref(), Some("mcp-tls"));
        assert_eq!(tls[0].hosts, Some(vec!["mcp.example.com".to_owned()]));
    }

    #[test]
    fn no_class_name_leaves_the_choice_to_the_default_ingress_class() {
        let spec = ingress(&app_with_ingress(None), None)
            .unwrap()
            .unwrap()
            .spec
            .unwrap();
        assert_eq!(spec.ingress_class_name, None);
    }

    #[test]
    fn app_without_ingress_gets_none() {
        assert_eq!(ingress(&app(McpAppSpec::default()), None).unwrap(), None);
    }

    #[test]
    fn ingress_nginx_keeps_streams_open_and_unbuffered() {
        let a = annotations(NGINX, SessionAffinity::None);
        assert_eq!(a["nginx.ingress.kubernetes.io/proxy-read-timeout"], "3600");
        assert_eq!(a["nginx.ingress.kubernetes.io/proxy-send-timeout"], "3600");
        assert_eq!(a["nginx.ingress.kubernetes.io/proxy-buffering"], "off");
        assert!(!a.contains_key("nginx.ingress.kubernetes.io/upstream-hash-by"));
        assert!(!a.contains_key("nginx.ingress.kubernetes.io/affinity"));
    }

    #[test]
    fn ingress_nginx_sticks_by_client_address() {
        let a = annotations(NGINX, SessionAffinity::ClientIp);
        assert_eq!(
            a["nginx.ingress.kubernetes.io/upstream-hash-by"],
            "$remote_addr"
        );
    }

    #[test]
    fn ingress_nginx_sticks_by_persistent_cookie() {
        let a = annotations(NGINX, SessionAffinity::Cookie);
        assert_eq!(a["nginx.ingress.kubernetes.io/affinity"], "cookie");
        assert_eq!(a["nginx.ingress.kubernetes.io/affinity-mode"], "persistent");
        assert_eq!(
            a["nginx.ingress.kubernetes.io/session-cookie-name"],
            "mcp-affinity"
        );
        assert_eq!(
            a["nginx.ingress.kubernetes.io/session-cookie-max-age"],
            "86400"
        );
        assert!(!a.contains_key("nginx.ingress.kubernetes.io/upstream-hash-by"));
    }

    #[test]
    fn ingress_nginx_hashes_the_mcp_session_header() {
        let a = annotations(NGINX, SessionAffinity::Header);
        assert_eq!(
            a["nginx.ingress.kubernetes.io/upstream-hash-by"],
            "$http_mcp_session_id"
        );
    }

    #[test]
    fn stream_timeout_follows_the_sse_setting() {
        let mut app = app_with_ingress(Some("nginx"));
        app.spec.sse.stream_timeout_seconds = 7200;
        let a = annotations_of(&app, NGINX);
        assert_eq!(a["nginx.ingress.kubernetes.io/proxy-read-timeout"], "7200");
    }

    #[test]
    fn traefik_puts_nothing_on_the_ingress() {
        let a = annotations("traefik.io/ingress-controller", SessionAffinity::Cookie);
        assert!(a.is_empty(), "{a:?}");
    }

    #[test]
    fn haproxy_raises_the_server_timeout_and_balances_by_source_or_header() {
        let a = annotations(HAPROXY, SessionAffinity::ClientIp);
        assert_eq!(a["haproxy.org/timeout-server"], "3600s");
        assert_eq!(a["haproxy.org/load-balance"], "source");
        let a = annotations(HAPROXY, SessionAffinity::Header);
        assert_eq!(a["haproxy.org/load-balance"], "hdr(Mcp-Session-Id)");
        let a = annotations(HAPROXY, SessionAffinity::Cookie);
        assert!(
            !a.contains_key("haproxy.org/load-balance"),
            "cookie is on the Service"
        );
    }

    #[test]
    fn alb_raises_the_idle_timeout_targets_pods_and_sticks_by_its_cookie() {
        let a = annotations(ALB, SessionAffinity::ClientIp);
        assert_eq!(
            a["alb.ingress.kubernetes.io/load-balancer-attributes"],
            "idle_timeout.timeout_seconds=3600"
        );
        assert_eq!(a["alb.ingress.kubernetes.io/target-type"], "ip");
        assert_eq!(a["alb.ingress.kubernetes.io/healthcheck-path"], "/mcp");
        assert_eq!(a["alb.ingress.kubernetes.io/success-codes"], "200-499");
        assert_eq!(
            a["alb.ingress.kubernetes.io/target-group-attributes"],
            "stickiness.enabled=true,stickiness.type=lb_cookie,stickiness.lb_cookie.duration_seconds=86400"
        );
        let a = annotations(ALB, SessionAffinity::None);
        assert!(!a.contains_key("alb.ingress.kubernetes.io/target-group-attributes"));
    }

    #[test]
    fn alb_idle_timeout_is_capped_at_what_aws_accepts() {
        let mut app = app_with_ingress(Some("alb"));
        app.spec.sse.stream_timeout_seconds = 86400;
        let a = annotations_of(&app, ALB);
        assert_eq!(
            a["alb.ingress.kubernetes.io/load-balancer-attributes"],
            "idle_timeout.timeout_seconds=4000"
        );
    }

    #[test]
    fn gce_selects_its_class_by_annotation_not_by_class_name() {
        let app = app_with_ingress(Some("gce"));
        let dialect = resolve_dialect(Some("k8s.io/ingress-gce"), None);
        let ingress = ingress(&app, Some(dialect)).unwrap().unwrap();
        assert_eq!(
            ingress.metadata.annotations.unwrap()["kubernetes.io/ingress.class"],
            "gce"
        );
        assert_eq!(ingress.spec.unwrap().ingress_class_name, None);
    }

    #[test]
    fn generic_controller_gets_a_plain_ingress() {
        let a = annotations("example.com/some-controller", SessionAffinity::Cookie);
        assert!(a.is_empty(), "{a:?}");
    }

    #[test]
    fn user_annotations_override_the_operators() {
        let mut app = app_with_ingress(Some("nginx"));
        app.spec.ingress.as_mut().unwrap().annotations = BTreeMap::from([
            (
                "nginx.ingress.kubernetes.io/proxy-read-timeout".to_owned(),
                "120".to_owned(),
            ),
            ("example.com/team".to_owned(), "search".to_owned()),
        ]);
        let a = annotations_of(&app, NGINX);
        assert_eq!(a["nginx.ingress.kubernetes.io/proxy-read-timeout"], "120");
        assert_eq!(a["nginx.ingress.kubernetes.io/proxy-send-timeout"], "3600");
        assert_eq!(a["example.com/team"], "search");
    }
}
