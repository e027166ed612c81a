//! One session of the built-in backend: runs each client request on a task of its own, stops
//! requests the client cancels, hands answers to the requests this server asked the client,
//! and keeps what the session remembers (client capabilities, log level, subscriptions).
//! What a request is answered with is the [`Responder`]'s business.

use std::sync::{Arc, Mutex, MutexGuard};

use futures::future::BoxFuture;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;

use crate::backend::{Outlet, Stopped};
use crate::message::{Kind, Message, RequestId};

/// Answers a session's requests: the returned future sends the answer to the session's outlet.
pub(super) trait Responder: Send + Sync + 'static {
    fn respond(
        self: Arc<Self>,
        request: Message,
        session: Arc<BuiltinSession>,
    ) -> BoxFuture<'static, ()>;
}

/// Log levels from least to most severe, as `logging/setLevel` names them.
pub(super) const LOG_LEVELS: [&str; 8] = [
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

/// One session of the built-in backend.
pub struct BuiltinSession {
    responder: Arc<dyn Responder>,
    outlet: Arc<dyn Outlet>,
    /// Cancelled when the session ends; its running requests stop with it.
    end: CancellationToken,
    state: Mutex<SessionState>,
}

/// Kept small: an idle session holds one. The lists are short (requests in flight, questions
/// to the client, subscriptions), so they are plain vectors.
#[derive(Default)]
struct SessionState {
    /// Requests run concurrently (a slow `sleep` must not block `echo`); kept so that
    /// `notifications/cancelled` can stop them.
    running: Vec<(RequestId, AbortHandle)>,
    /// Requests this server sent to the client, with whoever waits for the answer.
    asked: Vec<(RequestId, oneshot::Sender<Message>)>,
    next_ask: u64,
    /// What the client declared in `initialize`.
    client_capabilities: Option<Box<Value>>,
    /// The least severe level the client wants (`logging/setLevel`); all until it says.
    log_level: Option<u8>,
    subscriptions: Vec<String>,
}

/// Removes and returns the value kept for `key`.
fn take<V>(list: &mut Vec<(RequestId, V)>, key: &RequestId) -> Option<V> {
    let at = list.iter().position(|(k, _)| k == key)?;
    Some(list.swap_remove(at).1)
}

impl BuiltinSession {
    pub(super) fn new(
        responder: Arc<dyn Responder>,
        outlet: Arc<dyn Outlet>,
        end: CancellationToken,
    ) -> Arc<Self> {
        Arc::new(Self {
            responder,
            outlet,
            end,
            state: Mutex::default(),
        })
    }

    fn state(&self) -> MutexGuard<'_, SessionState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where the session's messages to the client go.
    pub(super) fn outlet(&self) -> &Arc<dyn Outlet> {
        &self.outlet
    }

    /// Takes one client message: a request starts its own task, a cancellation stops one, an
    /// answer goes to the tool that asked.
    pub fn receive(self: &Arc<Self>, message: Message) -> Result<(), Stopped> {
        if self.end.is_cancelled() {
            return Err(Stopped);
        }
        match message.kind() {
            Kind::Request { id, method } => {
                if method == "initialize" {
                    let capabilities = message.params().get("capabilities").cloned();
                    self.state().client_capabilities = capabilities.map(Box::new);
                }
                let id = id.clone();
                let reply = Arc::clone(&self.responder).respond(message, Arc::clone(self));
                let end = self.end.clone();
                let task = tokio::spawn(async move {
                    tokio::select! {
                        () = end.cancelled() => {}
                        () = reply => {}
                    }
                });
                let mut state = self.state();
                state.running.retain(|(_, task)| !task.is_finished());
                state.running.push((id, task.abort_handle()));
            }
            Kind::Notification { method } if method == "notifications/cancelled" => {
                let params = message.params();
                let task = params
                    .get("requestId")
                    .and_then(RequestId::from_value)
                    .and_then(|id| take(&mut self.state().running, &id));
                // A cancelled request gets no response, as the protocol asks.
                if let Some(task) = task {
                    task.abort();
                }
            }
            Kind::Response { id } => {
                let waiting = take(&mut self.state().asked, id);
                match waiting {
                    Some(tx) => {
                        let _ = tx.send(message);
                    }
                    None => tracing::debug!(?id, "dropping an answer nobody waits for"),
                }
            }
            // Other notifications (initialized, roots changed) need no answer.
            Kind::Notification { .. } => {}
        }
        Ok(())
    }

    /// A fresh id for a request to the client, and where its answer will arrive.
    pub(super) fn expect_answer(&self) -> (RequestId, oneshot::Receiver<Message>) {
        let mut state = self.state();
        state.next_ask += 1;
        let id = RequestId::from_value(&json!(format!("mcp-server-{}", state.next_ask)))
            .expect("a string is a request id");
        let (tx, rx) = oneshot::channel();
        state.asked.push((id.clone(), tx));
        (id, rx)
    }

    /// Stops waiting for the answer to request `id` (answered, or given up on).
    pub(super) fn forget_answer(&self, id: &RequestId) {
        take(&mut self.state().asked, id);
    }

    /// Whether the client declared `capability` in `initialize`.
    pub(super) fn client_can(&self, capability: &str) -> bool {
        self.state()
            .client_capabilities
            .as_ref()
            .is_some_and(|c| c.get(capability).is_some())
    }

    /// Log messages less severe than `level` (an index into [`LOG_LEVELS`]) are no longer sent.
    pub(super) fn set_log_level(&self, level: usize) {
        self.state().log_level = u8::try_from(level).ok();
    }

    /// Whether a log message at `level` is wanted.
    pub(super) fn logs(&self, level: &str) -> bool {
        let wanted = self.state().log_level;
        let severity = LOG_LEVELS.iter().position(|l| *l == level);
        match (wanted, severity) {
            (Some(wanted), Some(severity)) => severity >= usize::from(wanted),
            _ => true,
        }
    }

    /// Remembers (`on`) or forgets a subscription to `uri`.
    pub(super) fn subscribe(&self, uri: &str, on: bool) {
        let mut state = self.state();
        state.subscriptions.retain(|u| u != uri);
        if on {
            state.subscriptions.push(uri.to_owned());
        }
    }

    #[cfg(test)]
    pub(super) fn subscriptions(&self) -> Vec<String> {
        self.state().subscriptions.clone()
    }
}
