//! The MCP handshake the rollout gate sends to each pod: a typed result or a typed error.
//!
//! This module owns the types and picks the protocol era; the transports live in `streamable`
//! (`initialize` over Streamable HTTP), `stateless` (2026-07-28 `server/discover`) and
//! `legacy_sse` (2024-11-05 HTTP+SSE), over the shared `http` and `mcp` layers. What goes on the
//! wire (revisions, JSON-RPC, SSE framing, header names) is [`mcp_wire`]'s, shared with the
//! companion server.

mod answer;
mod http;
mod legacy_sse;
mod mcp;
mod stateless;
mod streamable;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use mcp_wire::jsonrpc::{INVALID_REQUEST, METHOD_NOT_FOUND, UNSUPPORTED_PROTOCOL_VERSION};
use mcp_wire::revision::{self, Handshake as Era, Revision};
use reqwest::Url;
use tokio::time::Instant;

use crate::api::ProtocolVersion;
use crate::contract::{self, Contract};

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
    /// What it said of them, as a contract (bounded).
    pub contract: Arc<Contract>,
    /// [`Contract::digest`], computed once.
    pub contract_digest: String,
    pub latency: Duration,
}

#[cfg(test)]
impl Handshake {
    /// A handshake with a server listing `tools` tools named `tool-N` that take anything.
    pub fn fixture(server_name: &str, tools: usize) -> Self {
        let contract = Contract::new((0..tools).map(|i| (format!("tool-{i}"), Default::default())));
        Handshake {
            server_name: server_name.into(),
            server_version: Some("1.0.0".into()),
            protocol_version: "2025-11-25".into(),
            tools,
            contract_digest: contract.digest(),
            contract: Arc::new(contract),
            latency: Duration::from_millis(3),
        }
    }
}

/// Why a handshake failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProbeError {
    #[error("connection refused by {0}: nothing listens on that port")]
    Refused(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// A non-2xx answer. `hint` is ours (never the body): what the status likely means.
    #[error("HTTP {status} from {method} at {path}{hint}")]
    HttpStatus {
        method: String,
        status: u16,
        path: String,
        hint: String,
    },
    /// A 3xx answer, never followed. `to` names at most the target's host, clipped.
    #[error(
        "HTTP {status} from {method} at {path} is a redirect{to}; the probe does not follow \
         redirects: serve MCP at this path"
    )]
    Redirect {
        method: String,
        status: u16,
        path: String,
        to: String,
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
    /// The TLS handshake failed (only for https URLs: the external probe).
    #[error("TLS: {0}")]
    Tls(String),
}

impl ProbeError {
    /// CamelCase reason for the pod condition, Events and metrics labels.
    pub fn reason(&self) -> &'static str {
        match self {
            ProbeError::Refused(_) => "ConnectionRefused",
            ProbeError::Timeout(_) => "Timeout",
            ProbeError::HttpStatus { .. } => "HttpStatus",
            ProbeError::Redirect { .. } => "Redirected",
            ProbeError::NotJsonRpc { .. } => "NotJsonRpc",
            ProbeError::JsonRpcError { .. } => "JsonRpcError",
            ProbeError::VersionMismatch { .. } => "VersionMismatch",
            ProbeError::ToolsMissing(_) => "ToolsMissing",
            ProbeError::Transport(_) => "TransportError",
            ProbeError::Tls(_) => "TlsFailed",
        }
    }
}

/// What a transport established before the required tools are checked.
struct Reached {
    greeting: mcp::Greeting,
    tools: mcp::Listed,
}

/// Sends handshakes; cheap to clone (one HTTP client).
#[derive(Clone, Debug)]
pub struct Prober {
    client: reqwest::Client,
    /// Whether https URLs are allowed: only with a client that verifies TLS ([`Prober::over`]).
    https: bool,
    /// Contracts of earlier handshakes: an equal one is shared, not held again.
    contracts: contract::Shared,
}

/// The User-Agent of every handshake.
pub fn user_agent() -> String {
    format!("{}/{}", mcp::CLIENT_NAME, mcp::CLIENT_VERSION)
}

impl Prober {
    pub fn new() -> Self {
        // Probes go to pod IPs over plain HTTP. TLS is configured with an explicit provider and
        // no trust roots only because the HTTP client insists on a TLS configuration; it keeps
        // the probe independent of a process-wide crypto provider.
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            // Pods come and go: a kept-alive connection to an old pod IP is worth nothing.
            .pool_max_idle_per_host(0)
            // Pod IPs are never reached through a proxy, whatever the environment says.
            .no_proxy()
            // A pod could point the operator at any address: a redirect is a failed handshake.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(user_agent())
            .build()
            .expect("the probe's HTTP client settings are valid");
        Prober {
            client,
            https: false,
            contracts: contract::Shared::default(),
        }
    }

    /// A prober over `client`, which also takes https URLs: the caller's client decides how
    /// TLS is verified, and must not follow redirects (see [`crate::external`]).
    pub fn over(client: reqwest::Client) -> Self {
        Prober {
            client,
            https: true,
            contracts: contract::Shared::default(),
        }
    }

    /// One handshake with `target`, bounded by `target.timeout`.
    pub async fn handshake(&self, target: &Target) -> Result<Handshake, ProbeError> {
        let started = Instant::now();
        let deadline = started + target.timeout;
        let reached = tokio::time::timeout_at(deadline, self.exchange(target, deadline))
            .await
            .map_err(|_| ProbeError::Timeout(target.timeout))??;
        let latency = started.elapsed();
        let missing: BTreeSet<&str> = target
            .required_tools
            .iter()
            .map(String::as_str)
            .filter(|t| !reached.tools.names.contains(*t))
            .collect();
        if !missing.is_empty() {
            return Err(ProbeError::ToolsMissing(
                missing.into_iter().map(str::to_owned).collect(),
            ));
        }
        let contract_digest = reached.tools.contract.digest();
        Ok(Handshake {
            server_name: reached.greeting.identity.name,
            server_version: reached.greeting.identity.version,
            protocol_version: reached.greeting.revision.to_string(),
            tools: reached.tools.names.len(),
            contract: self
                .contracts
                .share(&contract_digest, reached.tools.contract),
            contract_digest,
            latency,
        })
    }

    async fn exchange(&self, target: &Target, deadline: Instant) -> Result<Reached, ProbeError> {
        let url = Url::parse(&target.url).map_err(|e| {
            ProbeError::Transport(format!("the probe URL {:?} is invalid: {e}", target.url))
        })?;
        match (url.scheme(), self.https) {
            ("http", _) | ("https", true) => {}
            (_, false) => {
                return Err(ProbeError::Transport(format!(
                    "the probe speaks plain HTTP to pods; {url} is not an http:// URL"
                )));
            }
            (_, true) => {
                return Err(ProbeError::Transport(format!(
                    "{url} is neither an http:// nor an https:// URL"
                )));
            }
        }
        let http = http::Http {
            client: &self.client,
            bearer_token: target.bearer_token.as_deref(),
        };
        let asked = target.protocol.revision();
        if target.legacy_sse {
            let asked = match asked {
                None => Revision::V2024_11_05,
                Some(stateless) if stateless.handshake() == Era::Discover => {
                    return Err(ProbeError::Transport(format!(
                        "protocol revision {stateless} has no HTTP+SSE transport; probe this \
                         server with protocol version auto or {}",
                        Revision::V2024_11_05
                    )));
                }
                Some(explicit) => explicit,
            };
            return legacy_sse::handshake(http, &url, asked).await;
        }
        match asked {
            None => match stateless::handshake(http, &url).await {
                Err(e) if speaks_another_era(&e) => {
                    tracing::debug!(url = %url, error = %e, "server/discover refused; trying initialize");
                    let latest = revision::LATEST_HANDSHAKE;
                    streamable::handshake(http, &url, latest, deadline).await
                }
                reached => reached,
            },
            Some(explicit) if explicit.handshake() == Era::Discover => {
                stateless::handshake(http, &url).await
            }
            Some(explicit) => streamable::handshake(http, &url, explicit, deadline).await,
        }
    }
}

/// Whether a failed `server/discover` means "not this era" (so `initialize` may work), rather
/// than a server that is down, slow or refuses us.
fn speaks_another_era(error: &ProbeError) -> bool {
    match error {
        ProbeError::HttpStatus { status, .. } => matches!(status, 400 | 404 | 405),
        // Invalid request: no session.
        ProbeError::JsonRpcError { code, .. } => matches!(
            *code,
            METHOD_NOT_FOUND | INVALID_REQUEST | UNSUPPORTED_PROTOCOL_VERSION
        ),
        ProbeError::VersionMismatch { .. } | ProbeError::NotJsonRpc { .. } => true,
        ProbeError::Refused(_)
        | ProbeError::Redirect { .. }
        | ProbeError::Timeout(_)
        | ProbeError::ToolsMissing(_)
        | ProbeError::Transport(_)
        | ProbeError::Tls(_) => false,
    }
}

impl Default for Prober {
    fn default() -> Self {
        Self::new()
    }
}
