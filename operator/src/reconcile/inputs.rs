//! What the builders need from the cluster besides the McpApp: the IngressClass's controller,
//! a checksum of the app's Secrets, and which optional APIs (Gateway API, GKE BackendConfig) the
//! cluster serves.

use k8s_openapi::api::networking::v1::IngressClass;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::discovery::ApiResource;
use kube::runtime::reflector::Store;
use kube::{Api, Client, ResourceExt};
use sha2::{Digest, Sha256};

use crate::api::McpApp;
use crate::build::{BACKEND_CONFIG_API, BuildInputs, HTTP_ROUTE_API};
use crate::secrets::{ReadError, SecretReads};

/// The annotation that marks the cluster's default IngressClass.
const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";

/// Optional APIs, found once at start.
#[derive(Debug, Clone, Default)]
pub struct ClusterApis {
    /// The HTTPRoute API, when the Gateway API CRDs are installed.
    pub http_route: Option<ApiResource>,
    /// Whether that HTTPRoute CRD has `rules[].sessionPersistence` (experimental channel).
    pub http_route_session_persistence: bool,
    /// GKE's BackendConfig API, when installed.
    pub backend_config: Option<ApiResource>,
}

impl ClusterApis {
    /// Reads the CRDs of the optional APIs. Without permission to read CRDs, both are treated
    /// as absent (and apps that need them report it).
    pub async fn discover(client: &Client) -> Self {
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        let http_route_crd = crds
            .get_opt("httproutes.gateway.networking.k8s.io")
            .await
            .ok()
            .flatten();
        let backend_crd = crds
            .get_opt("backendconfigs.cloud.google.com")
            .await
            .ok()
            .flatten();
        let session_persistence = http_route_crd.as_ref().is_some_and(|crd| {
            serde_json::to_string(&crd.spec.versions)
                .is_ok_and(|schema| schema.contains("\"sessionPersistence\""))
        });
        ClusterApis {
            http_route: http_route_crd.map(|_| HTTP_ROUTE_API.clone()),
            http_route_session_persistence: session_persistence,
            backend_config: backend_crd.map(|_| BACKEND_CONFIG_API.clone()),
        }
    }
}

/// The builders' inputs for `app`, from the controller's caches (and the data of its Secrets,
/// read when their resourceVersion is not the one last read).
pub async fn read(
    app: &McpApp,
    ingress_classes: &Store<IngressClass>,
    secrets: &SecretReads,
    apis: &ClusterApis,
    companion_image: &str,
    operator_namespace: Option<&str>,
) -> Result<BuildInputs, ReadError> {
    Ok(BuildInputs {
        companion_image: companion_image.to_owned(),
        operator_namespace: operator_namespace.map(str::to_owned),
        ingress_controller: app
            .spec
            .ingress
            .as_ref()
            .and_then(|i| ingress_controller(ingress_classes, i.class_name.as_deref())),
        secrets_checksum: secrets_checksum(secrets, app).await?,
        gateway_session_persistence: apis.http_route_session_persistence,
    })
}

/// `spec.controller` of the named IngressClass, or of the default class when none is named.
fn ingress_controller(classes: &Store<IngressClass>, name: Option<&str>) -> Option<String> {
    let classes = classes.state();
    let class = match name {
        Some(name) => classes.iter().find(|c| c.name_any() == name),
        None => classes.iter().find(|c| {
            c.annotations()
                .get(DEFAULT_CLASS_ANNOTATION)
                .is_some_and(|v| v == "true")
        }),
    };
    class.and_then(|c| c.spec.as_ref()?.controller.clone())
}

/// A checksum of the data of every Secret the app references, when it asked to be restarted on
/// Secret changes. A missing Secret contributes its name only, so creating it later rolls the pods.
///
/// The checksum is of the data, not of the resourceVersion: a write that changes only the
/// Secret's labels or annotations (a tool stamping it, a re-apply) must not restart pods.
async fn secrets_checksum(reads: &SecretReads, app: &McpApp) -> Result<Option<String>, ReadError> {
    let Some(secrets) = app.spec.secrets.as_ref().filter(|s| s.restart_on_change) else {
        return Ok(None);
    };
    let ns = app.namespace().unwrap_or_default();
    let mut names = secrets.secret_names();
    names.sort_unstable();
    names.dedup();
    let mut hasher = Sha256::new();
    for name in names {
        hasher.update(name.as_bytes());
        hasher.update([0]);
        if let Some(data) = reads.data(&ns, name).await? {
            for (key, value) in data.iter() {
                hasher.update(key.as_bytes());
                hasher.update([0]);
                hasher.update(&value.0);
                hasher.update([0]);
            }
        }
    }
    let digest = hasher.finalize();
    Ok(Some(
        digest[..16].iter().map(|b| format!("{b:02x}")).collect(),
    ))
}
