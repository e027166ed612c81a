//! mcp-operator: runs Model Context Protocol servers on Kubernetes.
//!
//! - [`api`]: the `McpApp` custom resource (types, schema, CRD).
//! - [`build`]: pure functions from an `McpApp` to the objects the operator owns.
//! - [`reconcile`]: the controller that applies them and reports [`status`].
//! - [`probe`]: the MCP handshake; [`gate`]: the controller that probes pods, patches their
//!   readiness condition and rolls back revisions that fail; [`external`]: the handshake
//!   through each app's public URL, behind the `Reachable` condition.
//! - [`config`], [`telemetry`], [`metrics`], [`serve`], [`leader`]: running the operator.

pub mod api;
pub mod build;
pub mod config;
pub mod contract;
pub mod external;
pub mod gate;
pub mod leader;
pub mod metrics;
pub mod oauth;
pub mod probe;
pub mod reconcile;
pub mod secrets;
pub mod serve;
pub mod status;
pub mod telemetry;
pub mod text;
