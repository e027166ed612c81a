//! `McpAppStatus`: what the operator observed, and the condition vocabulary it reports with.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What the operator last observed about an McpApp.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct McpAppStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Ready`, `Progressing` and `Degraded`, one entry per type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".to_owned()]))]
    pub conditions: Vec<Condition>,

    /// Pods of the app that exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,

    /// Pods that passed their MCP handshake and receive traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,

    /// Where MCP clients connect: the Ingress or HTTPRoute URL, else the in-cluster Service URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,

    /// The server as it described itself in the last successful handshake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerInfo>,

    /// The most recent handshake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_probe: Option<LastProbe>,

    /// The handshake through the public URL (`spec.probe.external`), absent when it is off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalStatus>,

    /// Revision (ControllerRevision name) that last passed its handshakes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_revision: Option<String>,

    /// Revision that was aborted; it is not retried until the spec changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_revision: Option<String>,

    /// How callers and the handshake authenticate; absent when the app is open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthStatus>,
}

/// How callers and the operator's handshake authenticate.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthStatus {
    /// `OAuth`: the companion requires access tokens from `issuer`. `BearerToken`: the server
    /// checks tokens itself, and the handshake sends one.
    pub mode: String,

    /// The authorization server (mode `OAuth`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,

    /// The resource identifier tokens are asked for (mode `OAuth`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,

    /// How the handshake authenticates: `ClientCredentials` or `BearerToken`; absent when it
    /// sends no token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handshake: Option<String>,
}

/// The server's self-description from a successful handshake.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerInfo {
    /// `serverInfo.name`.
    pub name: String,

    /// `serverInfo.version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,

    /// Protocol version the handshake negotiated.
    pub protocol_version: String,

    /// Number of tools `tools/list` returned.
    pub tools: i32,

    /// The first tool names, sorted (at most 64; `tools` counts them all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_names: Vec<String>,

    /// SHA-256 of the tool contract (names, schemas, hints): it changes when any tool does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_contract_digest: Option<String>,
}

/// One handshake with one pod.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastProbe {
    /// When the handshake finished.
    pub time: Time,

    /// Pod the handshake was sent to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,

    /// Whether it succeeded.
    pub result: ProbeResult,

    /// How long it took, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_milliseconds: Option<i64>,

    /// Why it failed (refused, timeout, HTTP status, not JSON-RPC, version mismatch, tools
    /// missing), in words a person can act on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// What the handshake through the public URL found. Written when the `Reachable` condition or
/// the certificate changes, not after every handshake: the time and latency are those of the
/// handshake that found the current result.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalStatus {
    /// The URL probed.
    pub url: String,

    /// When the handshake that found the current result finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_time: Option<Time>,

    /// How long that handshake took, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_milliseconds: Option<i64>,

    /// The `notAfter` of the certificate the server presented (also when it was refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_not_after: Option<Time>,

    /// True while the certificate expires within `certificateExpiryWarningDays`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub certificate_expires_soon: bool,
}

/// Outcome of one handshake.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ProbeResult {
    /// The pod completed the handshake (and listed every required tool).
    Succeeded,
    /// The pod did not; `message` says why.
    Failed,
}

/// Condition types and reasons of `McpAppStatus.conditions` (CamelCase, as Kubernetes expects).
pub mod conditions {
    /// The app answers MCP handshakes through its Service. `kubectl wait --for=condition=Ready`.
    pub const READY: &str = "Ready";
    /// A new revision is rolling out.
    pub const PROGRESSING: &str = "Progressing";
    /// Something needs the user's attention.
    pub const DEGRADED: &str = "Degraded";
    /// The app answers an MCP handshake through its public URL, TLS verified
    /// (`spec.probe.external`). `kubectl wait --for=condition=Reachable`.
    pub const REACHABLE: &str = "Reachable";

    /// Reasons, shared by the conditions above and by Events.
    pub mod reasons {
        pub const HANDSHAKE_SUCCEEDED: &str = "HandshakeSucceeded";
        pub const HANDSHAKE_FAILED: &str = "HandshakeFailed";
        pub const ROLLOUT_IN_PROGRESS: &str = "RolloutInProgress";
        pub const ROLLOUT_COMPLETE: &str = "RolloutComplete";
        pub const ROLLOUT_ABORTED: &str = "RolloutAborted";
        pub const PROGRESS_DEADLINE_EXCEEDED: &str = "ProgressDeadlineExceeded";
        pub const INVALID_SPEC: &str = "InvalidSpec";
        pub const INGRESS_CLASS_NOT_FOUND: &str = "IngressClassNotFound";
        pub const SECRET_NOT_FOUND: &str = "SecretNotFound";
        pub const GATEWAY_API_NOT_INSTALLED: &str = "GatewayApiNotInstalled";
        pub const BACKEND_CONFIG_NOT_INSTALLED: &str = "BackendConfigNotInstalled";
        pub const STABLE_REVISION_MISSING: &str = "StableRevisionMissing";
        pub const APPLY_FAILED: &str = "ApplyFailed";
        /// A new revision's tools break the stable revision's tool contract.
        pub const TOOL_CONTRACT_BROKEN: &str = "ToolContractBroken";
        /// A revision that changed tools became the stable one (an Event).
        pub const TOOL_CONTRACT_CHANGED: &str = "ToolContractChanged";
        /// `Reachable=Unknown`: no handshake through the public URL has finished yet.
        pub const NOT_PROBED_YET: &str = "NotProbedYet";
        /// `Reachable=False`: the app has no public URL to probe.
        pub const NO_URL: &str = "NoUrl";
    }
}
