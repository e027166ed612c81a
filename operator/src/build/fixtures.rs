//! McpApps for builder tests, shaped like objects read from the API server.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::api::{IngressSpec, McpApp, McpAppSpec};

pub const NAMESPACE: &str = "tools";
pub const NAME: &str = "weather";
pub const UID: &str = "7f1d7c2e-0000-4000-8000-000000000001";

/// A stored McpApp named `weather` in namespace `tools`.
pub fn app(spec: McpAppSpec) -> McpApp {
    let mut app = McpApp::new(NAME, spec);
    app.metadata = ObjectMeta {
        name: Some(NAME.into()),
        namespace: Some(NAMESPACE.into()),
        uid: Some(UID.into()),
        generation: Some(1),
        ..ObjectMeta::default()
    };
    app
}

/// An McpApp exposed at `mcp.example.com` through the given IngressClass.
pub fn app_with_ingress(class_name: Option<&str>) -> McpApp {
    app(McpAppSpec {
        ingress: Some(IngressSpec {
            class_name: class_name.map(str::to_owned),
            host: "mcp.example.com".into(),
            tls: None,
            annotations: Default::default(),
        }),
        ..McpAppSpec::default()
    })
}
