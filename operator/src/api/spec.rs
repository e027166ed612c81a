//! `McpAppSpec`, the resource's root type, and the rules that span several of its fields.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, EnvVar, LocalObjectReference, ResourceRequirements, Toleration,
};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    AuthSpec, AutoscalingSpec, GatewaySpec, IngressSpec, McpAppStatus, NetworkPolicySpec,
    ProbeSpec, RolloutSpec, SecretsSpec, SessionSpec, SseSpec,
};

/// An MCP server running on Kubernetes: its pods, Service, optional Ingress or HTTPRoute,
/// autoscaling and disruption budget, kept healthy by real MCP handshakes.
// Each printer column repeats `type_ = "..."`; clippy reads that as a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "mcp-operator.dev",
    version = "v1alpha1",
    kind = "McpApp",
    namespaced,
    status = "McpAppStatus",
    derive = "PartialEq",
    shortname = "mcpapp",
    category = "mcp",
    // The app's name names its Service, Deployment, pods' labels and routes: a DNS label, as a
    // Service name must be. Refused here, it never becomes an object the API server rejects later.
    validation = Rule::new("size(self.metadata.name) <= 63 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')")
        .message("metadata.name must be a DNS label: at most 63 lowercase letters, digits and '-', starting with a letter and ending with a letter or digit (it names the app's Service)")
        .reason(Reason::FieldValueInvalid),
    doc = "McpApp runs a Model Context Protocol server: pods gated on a real MCP handshake, a Service, optional Ingress or Gateway API route with SSE-safe timeouts and session stickiness, and autoscaling.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "Whether the app answers MCP handshakes"
    ),
    printcolumn(
        name = "Replicas",
        type_ = "integer",
        json_path = ".status.replicas",
        description = "Pods the app currently runs"
    ),
    printcolumn(
        name = "URL",
        type_ = "string",
        json_path = ".status.url",
        description = "Where MCP clients connect"
    ),
    printcolumn(
        name = "Protocol",
        type_ = "string",
        json_path = ".status.server.protocolVersion",
        description = "MCP protocol version negotiated in the last good handshake"
    ),
    printcolumn(
        name = "Tools",
        type_ = "integer",
        json_path = ".status.server.tools",
        description = "Tools the server listed in the last good handshake"
    ),
    printcolumn(
        name = "Auth",
        type_ = "string",
        json_path = ".status.auth.mode",
        description = "How callers authenticate: OAuth or BearerToken",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!(has(self.replicas) && has(self.autoscaling))")
        .message("set either replicas or autoscaling, not both: with autoscaling the HorizontalPodAutoscaler owns the replica count")
        .field_path(".autoscaling")
        .reason(Reason::FieldValueForbidden),
    validation = Rule::new("!(has(self.ingress) && has(self.gateway))")
        .message("set either ingress or gateway, not both: an app is exposed by one Ingress or one HTTPRoute")
        .field_path(".gateway")
        .reason(Reason::FieldValueForbidden),
    validation = Rule::new("self.transport != 'stdio' || (has(self.command) && size(self.command) > 0)")
        .message("transport stdio needs command: the stdio MCP server to run, for example [\"npx\", \"-y\", \"@modelcontextprotocol/server-everything\"]")
        .field_path(".command")
        .reason(Reason::FieldValueRequired),
    validation = Rule::new("self.transport != 'stdio' || has(self.image)")
        .message("transport stdio needs image: the image that contains the stdio MCP server's command")
        .field_path(".image")
        .reason(Reason::FieldValueRequired),
    validation = Rule::new("!has(self.podLabels) || !self.podLabels.exists(k, k in ['app.kubernetes.io/name', 'app.kubernetes.io/instance', 'app.kubernetes.io/managed-by'])")
        .message("podLabels must not set app.kubernetes.io/name, app.kubernetes.io/instance or app.kubernetes.io/managed-by: the operator selects the app's pods by them")
        .field_path(".podLabels")
        .reason(Reason::FieldValueForbidden),
    validation = Rule::new("!has(self.image) || self.transport == 'stdio' || !self.session.frontDoor || self.port != 8099")
        .message("port 8099 is the front door's (session.frontDoor): serve the image on another port, or set session.frontDoor to false")
        .field_path(".port")
        .reason(Reason::FieldValueInvalid),
    validation = Rule::new("!has(self.auth) || !has(self.auth.oauth) || !has(self.image) || self.transport == 'stdio' || self.session.frontDoor")
        .message("auth.oauth is enforced by the companion in front of the server: with an own image, set session.frontDoor to true (or use transport stdio)")
        .field_path(".auth.oauth")
        .reason(Reason::FieldValueForbidden),
    validation = Rule::new("!has(self.auth) || !has(self.auth.oauth) || has(self.probe.clientCredentials) || has(self.probe.bearerTokenSecretRef)")
        .message("auth.oauth needs probe.clientCredentials (or probe.bearerTokenSecretRef): the handshake must send a token the app accepts")
        .field_path(".probe.clientCredentials")
        .reason(Reason::FieldValueRequired),
    validation = Rule::new("!has(self.probe.clientCredentials) || has(self.probe.clientCredentials.tokenUrl) || (has(self.auth) && has(self.auth.oauth))")
        .message("probe.clientCredentials needs a token endpoint: set probe.clientCredentials.tokenUrl, or auth.oauth.issuer to find it in the issuer's metadata")
        .field_path(".probe.clientCredentials.tokenUrl")
        .reason(Reason::FieldValueRequired),
)]
pub struct McpAppSpec {
    /// Container image of the MCP server. Defaults to the companion `mcp-server` image released
    /// with the operator, which serves built-in demo tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub image: Option<String>,

    /// When the kubelet pulls the image. Defaults to Kubernetes' rule (Always for `:latest`,
    /// IfNotPresent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<ImagePullPolicy>,

    /// Secrets holding registry credentials for the image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub image_pull_secrets: Vec<LocalObjectReference>,

    /// Entrypoint override. With `transport: stdio` this is the stdio server to run under the
    /// bridge, and is required.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,

    /// Arguments to the entrypoint (or to the stdio command).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,

    /// Environment variables of the MCP server container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,

    /// Port the MCP server listens on inside the pod.
    #[serde(default = "default_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,

    /// HTTP path of the MCP endpoint (Streamable HTTP). The legacy `sse` transport serves
    /// `/sse` and `/messages` instead.
    #[serde(default = "default_path")]
    #[schemars(
        regex(pattern = r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$"),
        length(max = 255)
    )]
    pub path: String,

    /// CPU and memory requests and limits of the MCP server container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Node labels the pods must match.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,

    /// Taints the pods tolerate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,

    /// Pod scheduling constraints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,

    /// ServiceAccount the pods run as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,

    /// Whether the pods get a token of their ServiceAccount (mounted at
    /// `/var/run/secrets/kubernetes.io/serviceaccount`). Defaults to true when
    /// `serviceAccountName` is set and false otherwise: an MCP server talks to the Kubernetes API
    /// only when it was given an account of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automount_service_account_token: Option<bool>,

    /// Extra annotations on every pod.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 64))]
    pub pod_annotations: BTreeMap<String, String>,

    /// Extra labels on every pod. The operator's selector labels (`app.kubernetes.io/name`,
    /// `app.kubernetes.io/instance`, `app.kubernetes.io/managed-by`) cannot be overridden.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 64))]
    pub pod_labels: BTreeMap<String, String>,

    /// How the image speaks MCP.
    #[serde(default)]
    pub transport: Transport,

    /// Secrets exposed to the server as environment variables or files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<SecretsSpec>,

    /// How requests of an MCP session reach the pod that holds it: the front door's session
    /// routing, and stickiness.
    #[serde(default)]
    pub session: SessionSpec,

    /// Exposes the app through an Ingress. Mutually exclusive with `gateway`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<IngressSpec>,

    /// Exposes the app through a Gateway API HTTPRoute. Mutually exclusive with `ingress`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<GatewaySpec>,

    /// Timeouts that keep long-lived SSE streams open through proxies.
    #[serde(default)]
    pub sse: SseSpec,

    /// A NetworkPolicy admitting traffic to the MCP port only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_policy: Option<NetworkPolicySpec>,

    /// Fixed number of pods. Mutually exclusive with `autoscaling`; 1 when neither is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: Option<i32>,

    /// Scales the pods with a HorizontalPodAutoscaler. Mutually exclusive with `replicas`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<AutoscalingSpec>,

    /// Who may call the app: OAuth 2.1 access tokens checked in front of the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthSpec>,

    /// The MCP handshake that gates every pod's readiness.
    #[serde(default)]
    pub probe: ProbeSpec,

    /// How new versions roll out, drain and roll back.
    #[serde(default)]
    pub rollout: RolloutSpec,
}

/// How the image speaks MCP.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Transport {
    /// The image serves MCP Streamable HTTP at `path`.
    #[default]
    #[serde(rename = "streamable-http")]
    StreamableHttp,
    /// The image serves the legacy 2024-11-05 HTTP+SSE transport (`GET /sse`, `POST /messages`).
    #[serde(rename = "sse")]
    Sse,
    /// The image speaks MCP on stdin/stdout: the operator runs `command` under the companion
    /// `mcp-server bridge`, which serves it over HTTP.
    #[serde(rename = "stdio")]
    Stdio,
}

/// When the kubelet pulls the image (the Kubernetes `imagePullPolicy`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ImagePullPolicy {
    /// Pull on every pod start.
    Always,
    /// Pull only when the node lacks the image.
    IfNotPresent,
    /// Never pull; the image must be on the node.
    Never,
}

impl ImagePullPolicy {
    /// The value Kubernetes expects in a container's `imagePullPolicy`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "Always",
            Self::IfNotPresent => "IfNotPresent",
            Self::Never => "Never",
        }
    }
}

/// Port of the front-door container (see [`McpAppSpec::runs_front_door_container`]); the CRD
/// refuses it as `port` of an image behind a front door.
pub const FRONT_DOOR_PORT: i32 = 8099;
/// Where the companion serves Streamable HTTP.
pub const FRONT_DOOR_PATH: &str = "/mcp";

fn default_port() -> i32 {
    8080
}

fn default_path() -> String {
    "/mcp".to_owned()
}

impl Default for McpAppSpec {
    /// The spec the API server stores for `spec: {}`: every default applied.
    fn default() -> Self {
        Self {
            image: None,
            image_pull_policy: None,
            image_pull_secrets: Vec::new(),
            command: Vec::new(),
            args: Vec::new(),
            env: Vec::new(),
            port: default_port(),
            path: default_path(),
            resources: None,
            node_selector: BTreeMap::new(),
            tolerations: Vec::new(),
            affinity: None,
            service_account_name: None,
            automount_service_account_token: None,
            pod_annotations: BTreeMap::new(),
            pod_labels: BTreeMap::new(),
            transport: Transport::default(),
            secrets: None,
            session: SessionSpec::default(),
            ingress: None,
            gateway: None,
            network_policy: None,
            sse: SseSpec::default(),
            replicas: None,
            autoscaling: None,
            auth: None,
            probe: ProbeSpec::default(),
            rollout: RolloutSpec::default(),
        }
    }
}

impl McpAppSpec {
    /// The fixed pod count: `replicas`, 1 when unset. (With `autoscaling` the autoscaler decides.)
    pub fn fixed_replicas(&self) -> i32 {
        self.replicas.unwrap_or(1)
    }

    /// Whether the pods mount their ServiceAccount's token: as asked, else only when the app
    /// names a ServiceAccount (the namespace's `default` one is no reason to hand out a token).
    pub fn mounts_service_account_token(&self) -> bool {
        self.automount_service_account_token
            .unwrap_or(self.service_account_name.is_some())
    }

    /// Whether the pods run a front-door container: an own image serving HTTP, with
    /// `session.frontDoor` on. (The companion serving itself needs none: it routes sessions.)
    pub fn runs_front_door_container(&self) -> bool {
        self.session.front_door && self.image.is_some() && self.transport != Transport::Stdio
    }

    /// The port clients, the Service and the handshakes reach the pods at.
    pub fn serving_port(&self) -> i32 {
        if self.runs_front_door_container() {
            FRONT_DOOR_PORT
        } else {
            self.port
        }
    }

    /// The Streamable HTTP path clients reach the pods at: the companion's own in front of an
    /// own image.
    pub fn serving_path(&self) -> &str {
        if self.runs_front_door_container() {
            FRONT_DOOR_PATH
        } else {
            &self.path
        }
    }

    /// The NetworkPolicy settings when the app asks for one.
    pub fn network_policy(&self) -> Option<&NetworkPolicySpec> {
        self.network_policy.as_ref().filter(|p| p.enabled)
    }
}
