//! mcp-operator: runs Model Context Protocol servers on Kubernetes.
//!
//! - [`api`]: the `McpApp` custom resource (types, schema, CRD).
//! - [`build`]: pure functions from an `McpApp` to the objects the operator owns.

pub mod api;
pub mod build;
