//! The `McpApp` API (`mcp-operator.dev/v1alpha1`): the Rust types a user's manifest deserializes
//! into, their schema with defaults, ranges and CEL rules, and the CRD generated from them.
//!
//! This module is the only source of `crds/`: `cargo run -p mcp-operator --bin crdgen` prints
//! the CRD, and a test fails when the committed YAML differs.

mod auth;
mod crd;
mod exposure;
mod network;
mod probe;
mod scaling;
mod secrets;
mod spec;
mod status;

pub use auth::{AuthSpec, ClientCredentialsSpec, OAuthSpec, TokenEndpointAuthMethod, ToolScopes};
pub use crd::{CRD_FILE, crd_yaml};
pub use exposure::{
    GatewayParentRef, GatewaySpec, IngressSpec, IngressTls, SessionAffinity, SessionSpec, SseSpec,
};
pub use network::NetworkPolicySpec;
pub use probe::{
    ExternalProbeSpec, ProbeSpec, ProtocolVersion, RolloutSpec, SecretKeyRef, ToolContract,
};
pub use scaling::{AutoscalingSpec, DEFAULT_CPU_UTILIZATION_PERCENTAGE};
pub use secrets::{SecretEnvFrom, SecretEnvVar, SecretFileItem, SecretFiles, SecretsSpec};
pub use spec::{FRONT_DOOR_PATH, FRONT_DOOR_PORT, ImagePullPolicy, McpApp, McpAppSpec, Transport};
pub use status::{
    AuthStatus, ExternalStatus, LastProbe, McpAppStatus, ProbeResult, ServerInfo, conditions,
};

/// The API group of every resource the operator defines, and the prefix of its annotations.
pub const GROUP: &str = "mcp-operator.dev";

/// The pod condition that must be True before a pod receives traffic: the operator sets it after
/// a real MCP handshake with that pod succeeds. Every pod of an McpApp carries it as a readiness
/// gate.
pub const HANDSHAKE_CONDITION: &str = "mcp-operator.dev/mcp-handshake";

/// The companion `mcp-server` image released with this operator: the image an McpApp runs when
/// `spec.image` is unset, and the source of the stdio bridge binary. Versioned with the operator so
/// that the bridge and the operator that injects it always agree on its command line.
pub const DEFAULT_COMPANION_IMAGE: &str = concat!(
    "ghcr.io/mcp-operator/mcp-server:",
    env!("CARGO_PKG_VERSION")
);

#[cfg(test)]
pub(crate) mod examples;
#[cfg(test)]
mod schema_tests;
