//! Secrets an McpApp's server reads: as environment variables or as files.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Secrets exposed to the MCP server container. Every Secret must be in the app's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.files) || self.files.all(f, self.files.exists_one(g, g.mountPath == f.mountPath))")
        .message("secrets.files: every mountPath must be different")
        .field_path(".files")
        // Not FieldValueDuplicate: the API server drops the message for that reason.
        .reason(Reason::FieldValueInvalid),
    validation = Rule::new("!has(self.env) || self.env.all(e, self.env.exists_one(f, f.name == e.name))")
        .message("secrets.env: every name must be different, or one variable silently hides the other")
        .field_path(".env")
        .reason(Reason::FieldValueInvalid),
)]
pub struct SecretsSpec {
    /// Every key of each Secret becomes an environment variable (optionally prefixed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub env_from: Vec<SecretEnvFrom>,

    /// Single environment variables, each from one key of a Secret.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 128))]
    pub env: Vec<SecretEnvVar>,

    /// Secrets mounted as read-only files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub files: Vec<SecretFiles>,

    /// Restart the pods (a normal rolling update) when a referenced Secret's data changes.
    #[serde(default)]
    pub restart_on_change: bool,
}

/// All keys of a Secret as environment variables.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretEnvFrom {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: String,

    /// Prepended to every variable name, e.g. `GITHUB_`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

/// One environment variable from one key of a Secret.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretEnvVar {
    /// Name of the environment variable, e.g. `GITHUB_TOKEN`.
    #[schemars(
        length(min = 1, max = 256),
        regex(pattern = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
    )]
    pub name: String,

    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: String,

    /// Key within the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// A Secret mounted as files, one file per key (or per listed item).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretFiles {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: String,

    /// Absolute directory the files appear in, e.g. `/etc/mcp/credentials`.
    #[schemars(length(min = 2, max = 1024), regex(pattern = r"^/"))]
    #[x_kube(
        validation = Rule::new("self != '/tmp' && !self.startsWith('/tmp/') && self != '/mcp-bridge' && !self.startsWith('/mcp-bridge/') && self != '/mcp-session-keys' && !self.startsWith('/mcp-session-keys/')")
            .message("secrets.files[].mountPath must not be /tmp, /mcp-bridge or /mcp-session-keys (or below them): the operator mounts its own volumes there")
            .reason(Reason::FieldValueForbidden)
    )]
    pub mount_path: String,

    /// Only these keys, at these relative paths. Unset means every key as a file of its name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub items: Vec<SecretFileItem>,
}

/// One key of a Secret mounted at a relative path.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretFileItem {
    /// Key within the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,

    /// File path relative to `mountPath`, e.g. `token`.
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[^/]"))]
    pub path: String,
}

impl SecretsSpec {
    /// Names of every Secret the server reads, sorted and without repeats: the Secrets whose
    /// data goes into the restart checksum.
    pub fn secret_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .env_from
            .iter()
            .map(|s| s.secret_name.as_str())
            .chain(self.env.iter().map(|s| s.secret_name.as_str()))
            .chain(self.files.iter().map(|s| s.secret_name.as_str()))
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }
}
