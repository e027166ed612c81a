//! What may reach an McpApp's pods over the network.

use k8s_openapi::api::networking::v1::NetworkPolicyPeer;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// An optional NetworkPolicy that admits traffic to the MCP port only.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.enabled || !has(self.from) || size(self.from) == 0")
        .message("networkPolicy.from has no effect unless networkPolicy.enabled is true")
        .field_path(".from")
        .reason(Reason::FieldValueForbidden)
)]
pub struct NetworkPolicySpec {
    /// Create a NetworkPolicy that admits ingress to the MCP port only (the companion also
    /// serves `/metrics` and its health endpoints there); every other port of the pods is closed.
    #[serde(default)]
    pub enabled: bool,

    /// Who may connect to the MCP port, as NetworkPolicy peers. Empty: anyone. When set, the
    /// app's own pods and the operator's namespace (for its handshakes) are admitted as well.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub from: Vec<NetworkPolicyPeer>,
}
