//! The MCP handshake the rollout gate sends to each pod: a typed result or a typed error.
//!
//! (Skeleton: the interface the gate codes against. The implementation fills it in.)

use std::time::Duration;

use crate::api::ProtocolVersion;

/// Where and how to probe one pod.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The MCP endpoint: `http://POD_IP:PORT/PATH` (Streamable HTTP), or the SSE stream URL
    /// (`http://POD_IP:PORT/sse`) when `legacy_sse` is set.
    pub url: String,
    /// The server speaks the 2024-11-05 HTTP+SSE transport (GET the stream, POST to the
    /// `endpoint` it announces).
    pub legacy_sse: bool,
    /// The protocol revision to ask for; `Auto` tries `server/discover`, then `initialize`.
    pub protocol: ProtocolVersion,
    /// Tools `tools/list` must contain.
    pub required_tools: Vec<String>,
    /// Sent as `Authorization: Bearer ...`.
    pub bearer_token: Option<String>,
    /// Bound on the whole handshake.
    pub timeout: Duration,
}

/// A successful handshake.
#[derive(Debug, Clone, PartialEq)]
pub struct Handshake {
    pub server_name: String,
    pub server_version: Option<String>,
    /// The revision the server agreed to.
    pub protocol_version: String,
    /// Tools `tools/list` returned.
    pub tools: usize,
    pub latency: Duration,
}

/// Why a handshake failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProbeError {
    #[error("connection refused by {0}")]
    Refused(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("HTTP {status} from {method}: {body}")]
    HttpStatus {
        method: String,
        status: u16,
        body: String,
    },
    #[error("the answer to {method} is not JSON-RPC: {detail}")]
    NotJsonRpc { method: String, detail: String },
    #[error("{method} failed with JSON-RPC error {code}: {message}")]
    JsonRpcError {
        method: String,
        code: i64,
        message: String,
    },
    #[error("version mismatch: asked for {asked}, server offers {offered}")]
    VersionMismatch { asked: String, offered: String },
    #[error("tools missing from tools/list: {}", .0.join(", "))]
    ToolsMissing(Vec<String>),
    #[error("transport: {0}")]
    Transport(String),
}

impl ProbeError {
    /// CamelCase reason for the pod condition, Events and metrics labels.
    pub fn reason(&self) -> &'static str {
        match self {
            ProbeError::Refused(_) => "ConnectionRefused",
            ProbeError::Timeout(_) => "Timeout",
            ProbeError::HttpStatus { .. } => "HttpStatus",
            ProbeError::NotJsonRpc { .. } => "NotJsonRpc",
            ProbeError::JsonRpcError { .. } => "JsonRpcError",
            ProbeError::VersionMismatch { .. } => "VersionMismatch",
            ProbeError::ToolsMissing(_) => "ToolsMissing",
            ProbeError::Transport(_) => "TransportError",
        }
    }
}

/// Sends handshakes; cheap to clone (one connection pool).
#[derive(Clone, Debug)]
pub struct Prober {}

impl Prober {
    pub fn new() -> Self {
        Prober {}
    }

    /// One handshake with `target`, bounded by `target.timeout`.
    pub async fn handshake(&self, target: &Target) -> Result<Handshake, ProbeError> {
        let _ = target;
        todo!("implemented by the probe client work")
    }
}

impl Default for Prober {
    fn default() -> Self {
        Self::new()
    }
}
