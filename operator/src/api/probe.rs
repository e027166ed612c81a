//! The MCP handshake that gates readiness, and how new versions roll out.

use std::time::Duration;

use kube::KubeSchema;
use mcp_wire::Revision;

use super::ClientCredentialsSpec;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The MCP handshake the operator performs against every pod before it receives traffic, and
/// periodically afterwards.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.timeoutSeconds <= self.periodSeconds")
        .message("probe.timeoutSeconds must not exceed probe.periodSeconds, or handshakes to one pod overlap")
        .field_path(".timeoutSeconds")
        .reason(Reason::FieldValueInvalid),
    validation = Rule::new("!(has(self.bearerTokenSecretRef) && has(self.clientCredentials))")
        .message("set either probe.bearerTokenSecretRef or probe.clientCredentials, not both: the handshake sends one token")
        .field_path(".clientCredentials")
        .reason(Reason::FieldValueForbidden)
)]
pub struct ProbeSpec {
    /// Seconds between handshakes with a ready pod.
    #[serde(default = "default_period_seconds")]
    #[schemars(range(min = 1, max = 3600))]
    pub period_seconds: i32,

    /// Seconds one handshake may take.
    #[serde(default = "default_timeout_seconds")]
    #[schemars(range(min = 1, max = 300))]
    pub timeout_seconds: i32,

    /// Failed handshakes in a row before a pod is taken out of the Service (and a new
    /// revision is aborted).
    #[serde(default = "default_failure_threshold")]
    #[schemars(range(min = 1, max = 100))]
    pub failure_threshold: i32,

    /// MCP protocol version the handshake asks for. `auto` tries the newest protocol era and
    /// falls back to the older one.
    #[serde(default)]
    pub protocol_version: ProtocolVersion,

    /// Tool names `tools/list` must contain for a handshake to succeed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 128)))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub required_tools: Vec<String>,

    /// Bearer token the handshake sends, for servers that require authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_secret_ref: Option<SecretKeyRef>,

    /// An OAuth client the handshake gets its token with, for apps with `auth.oauth`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_credentials: Option<ClientCredentialsSpec>,

    /// A handshake through the app's public URL (its Ingress or route, TLS verified), reported
    /// as the `Reachable` condition. Not part of the pods' revision: changing it rolls nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalProbeSpec>,
}

/// The handshake the operator sends to the app's public URL, the way a client outside the
/// cluster connects.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.timeoutSeconds <= self.periodSeconds")
        .message("probe.external.timeoutSeconds must not exceed probe.external.periodSeconds")
        .field_path(".timeoutSeconds")
        .reason(Reason::FieldValueInvalid)
)]
pub struct ExternalProbeSpec {
    /// Probe the public URL. False keeps the settings but sends nothing.
    #[serde(default = "default_external_enabled")]
    pub enabled: bool,

    /// Seconds between handshakes.
    #[serde(default = "default_external_period_seconds")]
    #[schemars(range(min = 10, max = 3600))]
    pub period_seconds: i32,

    /// Seconds one handshake may take, name resolution and TLS included.
    #[serde(default = "default_external_timeout_seconds")]
    #[schemars(range(min = 1, max = 60))]
    pub timeout_seconds: i32,

    /// The URL to probe instead of `status.url` (for an app exposed by something the operator
    /// does not manage). http or https; no user name or password in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 2048),
        regex(pattern = r"^https?://[^/?#@\s]+(/[^\s]*)?$")
    )]
    pub url: Option<String>,

    /// PEM CA certificates trusted besides the system's, for a private CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle_secret_ref: Option<SecretKeyRef>,

    /// Days before the certificate's expiry from which a Warning Event and the expiry metric
    /// say it expires soon.
    #[serde(default = "default_certificate_expiry_warning_days")]
    #[schemars(range(min = 1, max = 365))]
    pub certificate_expiry_warning_days: i32,
}

impl Default for ExternalProbeSpec {
    fn default() -> Self {
        Self {
            enabled: default_external_enabled(),
            period_seconds: default_external_period_seconds(),
            timeout_seconds: default_external_timeout_seconds(),
            url: None,
            ca_bundle_secret_ref: None,
            certificate_expiry_warning_days: default_certificate_expiry_warning_days(),
        }
    }
}

impl ExternalProbeSpec {
    /// Time between handshakes (at least the schema's minimum, whatever an old object says).
    pub fn period(&self) -> Duration {
        seconds(self.period_seconds).max(Duration::from_secs(10))
    }

    /// Time one handshake may take.
    pub fn timeout(&self) -> Duration {
        seconds(self.timeout_seconds)
    }

    /// How long before expiry a certificate counts as expiring soon.
    pub fn warning(&self) -> Duration {
        Duration::from_secs(
            86_400 * u64::try_from(self.certificate_expiry_warning_days).unwrap_or(1),
        )
    }
}

fn default_external_enabled() -> bool {
    true
}

fn default_external_period_seconds() -> i32 {
    60
}

fn default_external_timeout_seconds() -> i32 {
    10
}

fn default_certificate_expiry_warning_days() -> i32 {
    14
}

/// MCP protocol versions the handshake can ask for.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ProtocolVersion {
    /// Try `server/discover` (2026-07-28), fall back to `initialize`.
    #[default]
    #[serde(rename = "auto")]
    Auto,
    /// Legacy HTTP+SSE era.
    #[serde(rename = "2024-11-05")]
    V2024_11_05,
    /// First Streamable HTTP revision.
    #[serde(rename = "2025-03-26")]
    V2025_03_26,
    /// Streamable HTTP with `MCP-Protocol-Version` headers.
    #[serde(rename = "2025-06-18")]
    V2025_06_18,
    /// Latest `initialize`-era revision.
    #[serde(rename = "2025-11-25")]
    V2025_11_25,
    /// Stateless era (`server/discover`).
    #[serde(rename = "2026-07-28")]
    V2026_07_28,
}

impl ProtocolVersion {
    /// The revision asked for, or `None` for `auto`.
    pub fn revision(self) -> Option<Revision> {
        match self {
            ProtocolVersion::Auto => None,
            ProtocolVersion::V2024_11_05 => Some(Revision::V2024_11_05),
            ProtocolVersion::V2025_03_26 => Some(Revision::V2025_03_26),
            ProtocolVersion::V2025_06_18 => Some(Revision::V2025_06_18),
            ProtocolVersion::V2025_11_25 => Some(Revision::V2025_11_25),
            ProtocolVersion::V2026_07_28 => Some(Revision::V2026_07_28),
        }
    }
}

/// A key of a Secret in the app's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,

    /// Key within the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

impl Default for ProbeSpec {
    fn default() -> Self {
        Self {
            period_seconds: default_period_seconds(),
            timeout_seconds: default_timeout_seconds(),
            failure_threshold: default_failure_threshold(),
            protocol_version: ProtocolVersion::default(),
            required_tools: Vec::new(),
            bearer_token_secret_ref: None,
            client_credentials: None,
            external: None,
        }
    }
}

impl ProbeSpec {
    /// Time between handshakes with a ready pod.
    pub fn period(&self) -> Duration {
        seconds(self.period_seconds)
    }

    /// Time one handshake may take.
    pub fn timeout(&self) -> Duration {
        seconds(self.timeout_seconds)
    }

    /// Failed handshakes in a row that take a pod out (at least one).
    pub fn threshold(&self) -> u32 {
        u32::try_from(self.failure_threshold).unwrap_or(1).max(1)
    }

    /// The external probe's settings, when it is on.
    pub fn external_enabled(&self) -> Option<&ExternalProbeSpec> {
        self.external.as_ref().filter(|e| e.enabled)
    }
}

/// A schema-bounded count of seconds; a negative value (which the schema refuses) counts as one.
fn seconds(value: i32) -> Duration {
    Duration::from_secs(u64::try_from(value).unwrap_or(1).max(1))
}

fn default_period_seconds() -> i32 {
    30
}

fn default_timeout_seconds() -> i32 {
    5
}

fn default_failure_threshold() -> i32 {
    3
}

/// How a new version replaces the old one, and how old pods let go of their streams.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RolloutSpec {
    /// Seconds a new revision has to pass its handshakes before it is aborted.
    #[serde(default = "default_progress_deadline_seconds")]
    #[schemars(range(min = 30, max = 86400))]
    pub progress_deadline_seconds: i32,

    /// Re-apply the last good revision when a new one is aborted.
    #[serde(default = "default_auto_rollback")]
    pub auto_rollback: bool,

    /// Seconds a terminating pod keeps serving its open SSE streams before it is asked to
    /// stop. Sets a preStop delay and the pod's termination grace period.
    #[serde(default = "default_drain_seconds")]
    #[schemars(range(min = 0, max = 3600))]
    pub drain_seconds: i32,

    /// What happens when a new revision's `tools/list` breaks the stable revision's tool
    /// contract (a tool removed, a new required argument, a narrowed type, a removed output
    /// field): `Enforce` aborts the revision like a failed handshake, `Warn` rolls it out with a
    /// Warning Event, `Off` does not compare.
    #[serde(default)]
    pub tool_contract: ToolContract,

    /// Tools whose breaking changes this spec accepts on purpose: their changes are reported,
    /// not enforced. Remove an entry once its rollout is done, or later changes to that tool
    /// pass unchecked too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 128)))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub accept_tool_changes: Vec<String>,
}

/// How the gate treats a new revision that breaks the tool contract.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ToolContract {
    /// Abort the revision (and roll back with `autoRollback`), reason `ToolContractBroken`.
    #[default]
    Enforce,
    /// Roll it out; record a Warning Event listing the breaking changes.
    Warn,
    /// Do not compare tools.
    Off,
}

impl Default for RolloutSpec {
    fn default() -> Self {
        Self {
            progress_deadline_seconds: default_progress_deadline_seconds(),
            auto_rollback: default_auto_rollback(),
            drain_seconds: default_drain_seconds(),
            tool_contract: ToolContract::default(),
            accept_tool_changes: Vec::new(),
        }
    }
}

fn default_progress_deadline_seconds() -> i32 {
    600
}

fn default_auto_rollback() -> bool {
    true
}

fn default_drain_seconds() -> i32 {
    30
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_revision_can_be_asked_for_by_its_wire_name() {
        for revision in mcp_wire::revision::ALL {
            let asked: ProtocolVersion =
                serde_json::from_value(serde_json::json!(revision.as_str())).unwrap();
            assert_eq!(asked.revision(), Some(revision));
        }
        assert_eq!(ProtocolVersion::Auto.revision(), None);
    }
}
