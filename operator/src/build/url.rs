//! Where MCP clients reach an app, for `status.url`.

use kube::ResourceExt;

use super::SERVICE_PORT;
use crate::api::{McpApp, Transport};

/// The in-cluster URL of the app's MCP endpoint, through its Service.
pub fn service_url(app: &McpApp) -> String {
    let namespace = app.namespace().unwrap_or_else(|| "default".into());
    let port = if SERVICE_PORT == 80 {
        String::new()
    } else {
        format!(":{SERVICE_PORT}")
    };
    format!(
        "http://{}.{namespace}.svc{port}{}",
        app.name_any(),
        endpoint_path(app)
    )
}

/// Where clients connect, for `status.url`: the external URL, else the Service URL.
pub fn app_url(app: &McpApp) -> String {
    external_url(app).unwrap_or_else(|| service_url(app))
}

/// The app's OAuth resource identifier: `auth.oauth.resource`, else [`app_url`]. Tokens are
/// asked for it and, unless `auth.oauth.audiences` says otherwise, must name it.
pub fn oauth_resource(app: &McpApp) -> String {
    app.spec
        .auth
        .as_ref()
        .and_then(|a| a.oauth.as_ref())
        .and_then(|o| o.resource.clone())
        .unwrap_or_else(|| app_url(app))
}

/// The external URL from the Ingress host or the route's first hostname, `None` when the app
/// is not exposed by name. An Ingress URL is `https` exactly when `tls` is set; a route's is
/// always `https`, since the TLS setting lives on the Gateway's listener, and Gateways that
/// publish host names terminate TLS in practice.
pub fn external_url(app: &McpApp) -> Option<String> {
    let (scheme_tls, host) = match (&app.spec.ingress, &app.spec.gateway) {
        (Some(ingress), _) => (ingress.tls.is_some(), ingress.host.as_str()),
        (None, Some(gateway)) => (true, gateway.hostnames.first()?.as_str()),
        (None, None) => return None,
    };
    let scheme = if scheme_tls { "https" } else { "http" };
    // A wildcard host names no single endpoint.
    (!host.starts_with('*')).then(|| format!("{scheme}://{host}{}", endpoint_path(app)))
}

/// The path a client connects to: the Streamable HTTP endpoint, or the legacy SSE stream.
fn endpoint_path(app: &McpApp) -> &str {
    match app.spec.transport {
        Transport::Sse => "/sse",
        Transport::StreamableHttp | Transport::Stdio => app.spec.serving_path(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{GatewayParentRef, GatewaySpec, IngressTls, McpAppSpec};
    use crate::build::fixtures::{app, app_with_ingress};

    #[test]
    fn service_url_is_the_cluster_dns_name_with_the_mcp_path() {
        assert_eq!(
            service_url(&app(McpAppSpec::default())),
            "http://weather.tools.svc/mcp"
        );
        let sse = app(McpAppSpec {
            transport: Transport::Sse,
            ..McpAppSpec::default()
        });
        assert_eq!(service_url(&sse), "http://weather.tools.svc/sse");
    }

    #[test]
    fn ingress_url_uses_https_only_with_tls() {
        let mut app = app_with_ingress(Some("nginx"));
        assert_eq!(
            external_url(&app).as_deref(),
            Some("http://mcp.example.com/mcp")
        );
        app.spec.ingress.as_mut().unwrap().tls = Some(IngressTls {
            secret_name: "tls".into(),
        });
        assert_eq!(
            external_url(&app).as_deref(),
            Some("https://mcp.example.com/mcp")
        );
    }

    #[test]
    fn route_url_uses_https_and_the_first_hostname() {
        let mut app = app(McpAppSpec {
            gateway: Some(GatewaySpec {
                parent_refs: vec![GatewayParentRef {
                    name: "gw".into(),
                    namespace: None,
                    section_name: None,
                    port: None,
                }],
                hostnames: vec!["a.example.com".into(), "b.example.com".into()],
                annotations: Default::default(),
            }),
            ..McpAppSpec::default()
        });
        assert_eq!(
            external_url(&app).as_deref(),
            Some("https://a.example.com/mcp")
        );
        app.spec.gateway.as_mut().unwrap().hostnames.clear();
        assert_eq!(external_url(&app), None);
    }

    #[test]
    fn wildcard_hosts_and_unexposed_apps_have_no_external_url() {
        let mut app = app_with_ingress(None);
        app.spec.ingress.as_mut().unwrap().host = "*.example.com".into();
        assert_eq!(external_url(&app), None);
        assert_eq!(
            external_url(&super::super::fixtures::app(McpAppSpec::default())),
            None
        );
    }
}
