//! Pure functions from an `McpApp` to the objects the operator owns: no I/O, no clock, no
//! randomness, so the same inputs always give byte-identical objects and a server-side apply of
//! an unchanged app writes nothing.
//!
//! Every object carries apiVersion and kind, the app's namespace, a deterministic name (the
//! app's), the operator's labels and a controller owner reference, ready for
//! `Patch::Apply` with [`FIELD_MANAGER`]. What a builder cannot know from the McpApp alone (the
//! IngressClass's controller, the Secrets' checksum, the companion image) comes in through
//! [`BuildInputs`], read by the reconciler.

mod backend_config;
mod bridge;
mod deployment;
mod dialects;
mod front_door;
mod hpa;
mod http_route;
mod ingress;
mod meta;
mod network_policy;
mod oauth;
mod pdb;
mod probe_settings;
mod secrets;
mod service;
mod session_keys;
mod url;

#[cfg(test)]
pub(crate) mod fixtures;

use k8s_openapi::api::{
    apps::v1::Deployment,
    autoscaling::v2::HorizontalPodAutoscaler,
    core::v1::Service,
    networking::v1::{Ingress, NetworkPolicy},
    policy::v1::PodDisruptionBudget,
};
use kube::api::{ApiResource, DynamicObject};

use crate::api::conditions::reasons;
use crate::api::{DEFAULT_COMPANION_IMAGE, McpApp};

pub use backend_config::{BACKEND_CONFIG_API, backend_config};
pub use bridge::{BRIDGE_BINARY, BRIDGE_VOLUME_PATH, COMPANION_BINARY};
pub use deployment::{
    MCP_CONTAINER, REVISION_LABEL, SECRETS_CHECKSUM_ANNOTATION, SHUTDOWN_GRACE_SECONDS, deployment,
    revision,
};
pub use dialects::{AFFINITY_COOKIE, IngressDialect, resolve_dialect};
pub use front_door::{FRONT_DOOR_CONTAINER, SESSION_KEYS_PATH};
pub use hpa::horizontal_pod_autoscaler;
pub use http_route::{HTTP_ROUTE_API, http_route};
pub use ingress::ingress;
pub use meta::{INSTANCE_LABEL, labels, selector_labels};
pub use network_policy::network_policy;
pub use pdb::{can_run_more_than_one_pod, pod_disruption_budget};
pub use probe_settings::{ContractSettings, PROBE_SETTINGS_ANNOTATION, ProbeSettings};
pub use service::{SERVICE_PORT, service};
pub use session_keys::{
    KEY_BYTES, KEY_FILE, KeyRing, secret as session_keys_secret,
    secret_name as session_keys_secret_name,
};
pub use url::{app_url, external_url, oauth_resource, service_url};

/// The field manager of every server-side apply the operator makes.
pub const FIELD_MANAGER: &str = "mcp-operator";

/// What the builders need besides the McpApp itself. Kept with every good revision, so a
/// rollback renders that revision exactly as it ran.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildInputs {
    /// Image of the companion `mcp-server`: run when `spec.image` is unset, and copied into the
    /// pod as the stdio bridge.
    pub companion_image: String,

    /// `spec.controller` of the IngressClass named by `spec.ingress.className` (or of the
    /// cluster's default IngressClass). `None` when it was not found: the dialect is then guessed
    /// from the class name, else the generic one is used.
    pub ingress_controller: Option<String>,

    /// Checksum of the data of every Secret in `spec.secrets` (see
    /// [`crate::api::SecretsSpec::secret_names`]). Put on the pod template when
    /// `secrets.restartOnChange` is set, so a Secret change rolls the pods.
    pub secrets_checksum: Option<String>,

    /// Whether the installed HTTPRoute CRD has `rules[].sessionPersistence` (experimental
    /// channel). Without it, cookie stickiness is left to the Service.
    pub gateway_session_persistence: bool,

    /// The operator's own namespace: an app's NetworkPolicy that lists peers admits it, so the
    /// handshakes get through. `None` when unknown (the operator runs outside the cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_namespace: Option<String>,
}

impl Default for BuildInputs {
    fn default() -> Self {
        Self {
            companion_image: DEFAULT_COMPANION_IMAGE.to_owned(),
            ingress_controller: None,
            secrets_checksum: None,
            gateway_session_persistence: false,
            operator_namespace: None,
        }
    }
}

/// Why an McpApp cannot be turned into objects.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BuildError {
    /// Owner references and namespaces need an object that came from the API server.
    #[error("McpApp has no metadata.{0}; build from an object read from the API server")]
    MissingMetadata(&'static str),
}

/// Every object an McpApp should own right now. `None` means the object must not exist: the
/// reconciler deletes one it created earlier.
#[derive(Clone, Debug, PartialEq)]
pub struct OwnedObjects {
    pub deployment: Deployment,
    pub service: Service,
    pub ingress: Option<Ingress>,
    /// GKE BackendConfig (`cloud.google.com/v1`), only with the GCE ingress dialect.
    pub backend_config: Option<DynamicObject>,
    /// Gateway API HTTPRoute (`gateway.networking.k8s.io/v1`).
    pub http_route: Option<DynamicObject>,
    pub horizontal_pod_autoscaler: Option<HorizontalPodAutoscaler>,
    pub pod_disruption_budget: Option<PodDisruptionBudget>,
    /// Ingress to the MCP port only, when `spec.networkPolicy.enabled`.
    pub network_policy: Option<NetworkPolicy>,
}

/// Every kind of object an app can own, in the order a reconcile applies them (the Deployment
/// first: the rest point at its pods). Adding a kind: a builder, a field in [`OwnedObjects`],
/// a variant here; the reconciler watches, caches, applies and deletes it from this list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OwnedKind {
    Deployment,
    Service,
    Ingress,
    BackendConfig,
    HttpRoute,
    HorizontalPodAutoscaler,
    PodDisruptionBudget,
    NetworkPolicy,
}

impl OwnedKind {
    pub const ALL: [OwnedKind; 8] = [
        OwnedKind::Deployment,
        OwnedKind::Service,
        OwnedKind::Ingress,
        OwnedKind::BackendConfig,
        OwnedKind::HttpRoute,
        OwnedKind::HorizontalPodAutoscaler,
        OwnedKind::PodDisruptionBudget,
        OwnedKind::NetworkPolicy,
    ];

    /// The kind's API.
    pub fn api_resource(self) -> ApiResource {
        match self {
            OwnedKind::Deployment => ApiResource::erase::<Deployment>(&()),
            OwnedKind::Service => ApiResource::erase::<Service>(&()),
            OwnedKind::Ingress => ApiResource::erase::<Ingress>(&()),
            OwnedKind::BackendConfig => BACKEND_CONFIG_API.clone(),
            OwnedKind::HttpRoute => HTTP_ROUTE_API.clone(),
            OwnedKind::HorizontalPodAutoscaler => {
                ApiResource::erase::<HorizontalPodAutoscaler>(&())
            }
            OwnedKind::PodDisruptionBudget => ApiResource::erase::<PodDisruptionBudget>(&()),
            OwnedKind::NetworkPolicy => ApiResource::erase::<NetworkPolicy>(&()),
        }
    }

    /// For a kind served only when its CRDs are installed: what an app that needs it is told
    /// when they are not.
    pub fn when_not_installed(self) -> Option<(&'static str, &'static str)> {
        match self {
            OwnedKind::HttpRoute => Some((
                reasons::GATEWAY_API_NOT_INSTALLED,
                "spec.gateway needs the Gateway API (HTTPRoute CRD, gateway.networking.k8s.io/v1), \
                 which this cluster does not serve: install the Gateway API CRDs or use spec.ingress",
            )),
            OwnedKind::BackendConfig => Some((
                reasons::BACKEND_CONFIG_NOT_INSTALLED,
                "the GCE ingress controller takes stream timeouts and stickiness from a BackendConfig \
                 (cloud.google.com/v1), which this cluster does not serve: install GKE's BackendConfig \
                 CRD or use another IngressClass",
            )),
            _ => None,
        }
    }
}

impl OwnedObjects {
    /// The desired object of `kind` as a dynamic object (`None`: it must not exist).
    pub fn get(&self, kind: OwnedKind) -> Option<DynamicObject> {
        fn dynamic<K: serde::Serialize>(object: &K) -> DynamicObject {
            serde_json::to_value(object)
                .and_then(serde_json::from_value)
                .expect("a built object is a Kubernetes object")
        }
        match kind {
            OwnedKind::Deployment => Some(dynamic(&self.deployment)),
            OwnedKind::Service => Some(dynamic(&self.service)),
            OwnedKind::Ingress => self.ingress.as_ref().map(dynamic),
            OwnedKind::BackendConfig => self.backend_config.clone(),
            OwnedKind::HttpRoute => self.http_route.clone(),
            OwnedKind::HorizontalPodAutoscaler => {
                self.horizontal_pod_autoscaler.as_ref().map(dynamic)
            }
            OwnedKind::PodDisruptionBudget => self.pod_disruption_budget.as_ref().map(dynamic),
            OwnedKind::NetworkPolicy => self.network_policy.as_ref().map(dynamic),
        }
    }
}

/// Builds every object the app should own.
pub fn owned_objects(app: &McpApp, inputs: &BuildInputs) -> Result<OwnedObjects, BuildError> {
    let dialect = app.spec.ingress.as_ref().map(|ingress| {
        resolve_dialect(
            inputs.ingress_controller.as_deref(),
            ingress.class_name.as_deref(),
        )
    });
    Ok(OwnedObjects {
        deployment: deployment(app, inputs)?,
        service: service(app, dialect)?,
        ingress: ingress(app, dialect)?,
        backend_config: backend_config(app, dialect)?,
        http_route: http_route(app, inputs.gateway_session_persistence)?,
        horizontal_pod_autoscaler: horizontal_pod_autoscaler(app)?,
        pod_disruption_budget: pod_disruption_budget(app)?,
        network_policy: network_policy(app, inputs.operator_namespace.as_deref())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{AutoscalingSpec, McpAppSpec};
    use fixtures::{app, app_with_ingress};

    #[test]
    fn a_minimal_app_owns_a_deployment_and_a_service_only() {
        let objects = owned_objects(&app(McpAppSpec::default()), &BuildInputs::default()).unwrap();
        assert_eq!(objects.ingress, None);
        assert_eq!(objects.backend_config, None);
        assert_eq!(objects.http_route, None);
        assert_eq!(objects.horizontal_pod_autoscaler, None);
        assert_eq!(objects.pod_disruption_budget, None);
        assert_eq!(objects.network_policy, None);
    }

    #[test]
    fn ingress_class_controller_picks_the_dialect_for_ingress_service_and_backend_config() {
        let inputs = BuildInputs {
            ingress_controller: Some("k8s.io/ingress-gce".into()),
            ..BuildInputs::default()
        };
        // The class name says nginx, but the IngressClass's controller is what serves it.
        let objects = owned_objects(&app_with_ingress(Some("nginx")), &inputs).unwrap();
        assert!(objects.backend_config.is_some());
        let service_annotations = objects.service.metadata.annotations.unwrap();
        assert!(service_annotations.contains_key("cloud.google.com/backend-config"));
        let ingress_annotations = objects.ingress.unwrap().metadata.annotations.unwrap();
        assert!(
            !ingress_annotations
                .keys()
                .any(|k| k.starts_with("nginx.ingress.kubernetes.io/"))
        );
    }

    #[test]
    fn autoscaled_app_owns_an_hpa_and_a_budget() {
        let app = app(McpAppSpec {
            autoscaling: Some(AutoscalingSpec::between(2, 8)),
            ..McpAppSpec::default()
        });
        let objects = owned_objects(&app, &BuildInputs::default()).unwrap();
        assert!(objects.horizontal_pod_autoscaler.is_some());
        assert!(objects.pod_disruption_budget.is_some());
        assert_eq!(objects.deployment.spec.replicas, None);
    }

    #[test]
    fn typed_objects_serialize_with_api_version_and_kind_for_server_side_apply() {
        let objects = owned_objects(&app(McpAppSpec::default()), &BuildInputs::default()).unwrap();
        let deployment = serde_json::to_value(&objects.deployment).unwrap();
        assert_eq!(
            (
                deployment["apiVersion"].as_str(),
                deployment["kind"].as_str()
            ),
            (Some("apps/v1"), Some("Deployment"))
        );
        let service = serde_json::to_value(&objects.service).unwrap();
        assert_eq!(
            (service["apiVersion"].as_str(), service["kind"].as_str()),
            (Some("v1"), Some("Service"))
        );
        assert!(deployment.get("status").is_none());
    }
}
