//! Backends answer MCP messages behind the transports: the built-in tools, or a bridged stdio
//! server. A transport opens one [`Conversation`] per MCP session and only moves messages; it
//! never interprets tool calls itself.

pub mod bridge;
pub mod builtin;

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::message::{Message, RequestId};

/// A message from the backend, with the client request it belongs to when the backend knows
/// (progress of a tool call), so the transport can put it on that request's stream.
#[derive(Debug)]
pub struct Outbound {
    pub message: Message,
    pub related: Option<RequestId>,
}

impl Outbound {
    pub fn unrelated(message: Message) -> Self {
        Self {
            message,
            related: None,
        }
    }
}

/// Messages in flight between one client session and the backend.
///
/// When `from_backend` ends, the backend is gone for good and the session must end too.
pub struct Conversation {
    pub to_backend: mpsc::Sender<Message>,
    pub from_backend: mpsc::Receiver<Outbound>,
    /// Cancelled by the transport when the session ends, so the backend can clean up (for a
    /// bridge: stop the child process).
    pub end: CancellationToken,
}

/// Channel depth per direction: enough to absorb a burst without letting one slow peer queue
/// unbounded memory.
pub(crate) const CHANNEL_DEPTH: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("could not start the bridged server `{command}`: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
}

/// The backend this server runs, chosen at start-up.
#[derive(Clone)]
pub enum Backend {
    Builtin(Arc<builtin::Builtin>),
    Bridge(Arc<bridge::Bridge>),
}

impl Backend {
    /// Starts the backend side of a new session.
    pub async fn open(&self) -> Result<Conversation, BackendError> {
        match self {
            Backend::Builtin(b) => Ok(b.open()),
            Backend::Bridge(b) => b.open().await,
        }
    }

    /// Whether the backend can serve now (a bridge: once its command answered a handshake).
    pub fn is_ready(&self) -> bool {
        match self {
            Backend::Builtin(_) => true,
            Backend::Bridge(b) => b.is_ready(),
        }
    }

    /// The backend that answers stateless (2026-07-28) requests, if this one can.
    pub fn stateless(&self) -> Option<&Arc<builtin::Builtin>> {
        match self {
            Backend::Builtin(b) => Some(b),
            Backend::Bridge(_) => None,
        }
    }
}
