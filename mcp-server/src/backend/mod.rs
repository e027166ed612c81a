//! Backends answer MCP messages behind the transports: the built-in tools, a bridged stdio
//! server, or a proxied HTTP server. A transport opens one backend side per MCP session ([`Backend::open`]): it hands client
//! messages to the [`Inbox`] and receives the backend's through its [`Outlet`]; it never interprets
//! tool calls itself.

pub mod bridge;
pub mod builtin;
pub mod catalogue;
pub mod child_lines;
pub mod pending;
pub mod process;
pub mod proxy;
pub mod readiness;

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::message::{Message, RequestId};
use crate::oauth::Identity;

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

/// Where a backend puts what it sends to its session's client. The transport implements it on
/// the session, so backend messages are routed where they arrive, with no task or queue per
/// session in between.
pub trait Outlet: Send + Sync + 'static {
    /// A message for the client.
    fn send(&self, out: Outbound);
    /// The backend is gone for good; the session must end.
    fn closed(&self);

    /// Asks the transport to end the HTTP response carrying `request`'s stream while the
    /// request goes on; the client resumes the stream on a new connection. Transports that
    /// cannot resume it keep the response open.
    fn release_stream(&self, _request: &RequestId) {}
}

/// An outlet that queues on a channel: one stateless request's answers, and tests.
pub struct ChannelOutlet(Mutex<Option<mpsc::UnboundedSender<Outbound>>>);

impl ChannelOutlet {
    pub fn new() -> (Arc<Self>, mpsc::UnboundedReceiver<Outbound>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Arc::new(Self(Mutex::new(Some(tx)))), rx)
    }

    fn sender(&self) -> std::sync::MutexGuard<'_, Option<mpsc::UnboundedSender<Outbound>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Outlet for ChannelOutlet {
    fn send(&self, out: Outbound) {
        if let Some(tx) = self.sender().as_ref() {
            // A closed receiver means nobody waits for the answer any more.
            let _ = tx.send(out);
        }
    }

    /// Ends the channel, so the receiver sees the backend is gone.
    fn closed(&self) {
        self.sender().take();
    }
}

/// A backend that answers a request with no session around it (the stateless 2026-07-28
/// revision).
pub trait Stateless: Send + Sync {
    /// Answers one request from `identity` (see [`Inbound`]): what it sends while it runs
    /// (progress), then its response, on the returned channel.
    fn answer_one(
        self: Arc<Self>,
        request: Message,
        identity: Option<Arc<Identity>>,
    ) -> mpsc::UnboundedReceiver<Outbound>;
}

/// A client message for a backend that tells the server behind it who sent it (the proxy).
pub struct Inbound {
    pub message: Message,
    /// The sender's identity, from its verified OAuth token (`None` without OAuth).
    pub identity: Option<Arc<Identity>>,
}

/// The way into one session's backend.
pub enum Inbox {
    /// A bridged child: messages queue for the session's task.
    Channel(mpsc::Sender<Message>),
    /// A proxied upstream: messages and their senders queue for the session's task.
    Upstream(mpsc::Sender<Inbound>),
    /// The built-in backend answers in place.
    Builtin(Arc<builtin::BuiltinSession>),
}

impl Inbox {
    /// Hands a client message, sent by `identity`, to the backend. Only the proxy has someone
    /// to tell who sent it: a stdio child has no channel for it besides the message itself.
    pub async fn send(
        &self,
        message: Message,
        identity: Option<&Arc<Identity>>,
    ) -> Result<(), Stopped> {
        match self {
            Inbox::Channel(tx) => tx.send(message).await.map_err(|_| Stopped),
            Inbox::Upstream(tx) => {
                let identity = identity.cloned();
                let inbound = Inbound { message, identity };
                tx.send(inbound).await.map_err(|_| Stopped)
            }
            Inbox::Builtin(session) => session.receive(message),
        }
    }
}

/// The backend of a session has stopped and takes no more messages.
#[derive(Debug, thiserror::Error)]
#[error("the backend of this session has stopped")]
pub struct Stopped;

/// Depth of the queue in front of a bridged child: enough to absorb a burst without letting one
/// slow child queue unbounded memory.
pub(crate) const CHANNEL_DEPTH: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("could not start the bridged server `{command}`: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("the upstream server has not completed a handshake yet; try again shortly")]
    UpstreamNotReady,
}

/// The backend this server runs, chosen at start-up.
#[derive(Clone)]
pub enum Backend {
    Builtin(Arc<builtin::Builtin>),
    Bridge(Arc<bridge::Bridge>),
    Proxy(Arc<proxy::Proxy>),
}

impl Backend {
    /// Starts the backend side of a new session for `identity` (whoever started it): its
    /// messages go to `outlet`, and it stops when `end` is cancelled.
    pub async fn open(
        &self,
        outlet: Arc<dyn Outlet>,
        end: CancellationToken,
        identity: Option<Arc<Identity>>,
    ) -> Result<Inbox, BackendError> {
        match self {
            Backend::Builtin(b) => Ok(Inbox::Builtin(b.open(outlet, end))),
            Backend::Bridge(b) => b.open(outlet, end).map(Inbox::Channel),
            Backend::Proxy(p) => p.open(outlet, end, identity).map(Inbox::Upstream),
        }
    }

    /// Whether the backend can serve now (a bridge or proxy: once what it serves answered a
    /// handshake).
    pub fn is_ready(&self) -> bool {
        match self {
            Backend::Builtin(_) => true,
            Backend::Bridge(b) => b.is_ready(),
            Backend::Proxy(p) => p.is_ready(),
        }
    }

    /// The backend that answers stateless (2026-07-28) requests, if this one can.
    pub fn stateless(&self) -> Option<Arc<dyn Stateless>> {
        match self {
            Backend::Builtin(b) => Some(Arc::clone(b) as Arc<dyn Stateless>),
            Backend::Proxy(p) if p.serves_stateless() => Some(Arc::clone(p) as Arc<dyn Stateless>),
            Backend::Bridge(_) | Backend::Proxy(_) => None,
        }
    }
}
