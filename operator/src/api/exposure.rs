//! How clients reach an McpApp: session stickiness, SSE timeouts, Ingress and Gateway API.

use std::collections::BTreeMap;

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How the requests of one MCP session reach the pod that holds the session.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SessionSpec {
    /// Runs the companion `mcp-server` as every pod's front door with session routing: a
    /// request that lands on another replica than its session's is forwarded there, so no
    /// client sees "session not found" because of where a balancer sent it. For an own image
    /// serving HTTP this adds a front-door container on port 8099 in front of `port`. Stickiness
    /// (`affinity`) then only saves forwarded hops.
    #[serde(default = "default_front_door")]
    pub front_door: bool,

    /// How requests stick to a pod. See `docs/api.md` for what each controller supports.
    #[serde(default)]
    pub affinity: SessionAffinity,

    /// How long a client stays on its pod after its last request, in seconds (the ceiling of
    /// Kubernetes Service ClientIP affinity is 86400).
    #[serde(default = "default_session_timeout_seconds")]
    #[schemars(range(min = 1, max = 86400))]
    pub timeout_seconds: i32,
}

/// How requests of one MCP session stick to one pod.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum SessionAffinity {
    /// No stickiness: only for stateless servers or a single replica.
    None,
    /// By client address: the Service's ClientIP affinity, and the closest equivalent at the
    /// ingress controller. Works with every MCP client, cookies or not.
    #[default]
    #[serde(rename = "ClientIP")]
    ClientIp,
    /// By a cookie the ingress controller issues. Only clients that keep cookies stick.
    Cookie,
    /// By hashing the `Mcp-Session-Id` header. The first request of a session carries no id
    /// yet, so use it only when any pod can pick up a new session's follow-up requests.
    Header,
}

impl SessionAffinity {
    /// Whether requests should stick to a pod at all.
    pub fn is_sticky(self) -> bool {
        self != Self::None
    }
}

impl Default for SessionSpec {
    fn default() -> Self {
        Self {
            front_door: default_front_door(),
            affinity: SessionAffinity::default(),
            timeout_seconds: default_session_timeout_seconds(),
        }
    }
}

fn default_front_door() -> bool {
    true
}

fn default_session_timeout_seconds() -> i32 {
    86400
}

/// Timeouts that keep long-lived SSE streams open through every proxy on the way.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.keepAliveSeconds < self.streamTimeoutSeconds")
        .message("sse.keepAliveSeconds must be less than sse.streamTimeoutSeconds, or proxies close idle streams before a keep-alive arrives")
        .field_path(".keepAliveSeconds")
        .reason(Reason::FieldValueInvalid)
)]
pub struct SseSpec {
    /// How long a proxy may keep one request or SSE stream open, in seconds. Sets the ingress
    /// controller's read/idle timeouts and the HTTPRoute's request timeouts.
    #[serde(default = "default_stream_timeout_seconds")]
    #[schemars(range(min = 10, max = 86400))]
    pub stream_timeout_seconds: i32,

    /// How often the server sends an SSE keep-alive comment, in seconds. Keep it well below
    /// every proxy's idle timeout (AWS ALB and ingress-nginx default to 60 s). Applied to the
    /// companion server; other images must be configured to match.
    #[serde(default = "default_keep_alive_seconds")]
    #[schemars(range(min = 1, max = 3600))]
    pub keep_alive_seconds: i32,
}

impl Default for SseSpec {
    fn default() -> Self {
        Self {
            stream_timeout_seconds: default_stream_timeout_seconds(),
            keep_alive_seconds: default_keep_alive_seconds(),
        }
    }
}

fn default_stream_timeout_seconds() -> i32 {
    3600
}

fn default_keep_alive_seconds() -> i32 {
    15
}

/// Exposes the app through a Kubernetes Ingress, with the SSE and stickiness settings of the
/// controller that serves `className`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IngressSpec {
    /// IngressClass to use. Unset means the cluster's default IngressClass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub class_name: Option<String>,

    /// Host name clients use, e.g. `mcp.example.com` (a leading `*.` wildcard is allowed).
    #[schemars(
        length(min = 1, max = 253),
        regex(
            pattern = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
        )
    )]
    pub host: String,

    /// Terminates TLS at the ingress controller with a certificate from a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<IngressTls>,

    /// Extra Ingress annotations. They override the operator's own for the same key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// TLS for an Ingress host.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IngressTls {
    /// Secret of type `kubernetes.io/tls` in the app's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: String,
}

/// Exposes the app through a Gateway API HTTPRoute attached to existing Gateways.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GatewaySpec {
    /// Gateways (or listeners of them) the route attaches to.
    #[schemars(length(min = 1, max = 32))]
    pub parent_refs: Vec<GatewayParentRef>,

    /// Host names the route answers, e.g. `mcp.example.com`. Unset means every host of the
    /// Gateway's listeners.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 16),
        inner(
            length(min = 1, max = 253),
            regex(
                pattern = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
            )
        )
    )]
    pub hostnames: Vec<String>,

    /// Extra HTTPRoute annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A Gateway an HTTPRoute attaches to (a subset of Gateway API's `ParentReference`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayParentRef {
    /// Name of the Gateway.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,

    /// Namespace of the Gateway. Defaults to the app's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,

    /// Listener of the Gateway to attach to. Defaults to every listener that allows the route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub section_name: Option<String>,

    /// Listener port to attach to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
}
