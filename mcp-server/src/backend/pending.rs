//! Client requests a forwarding backend (bridge, proxy) has not seen answered yet: when each
//! times out, and which progress token belongs to which request, so progress reaches the
//! request's own stream and restarts its clock.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use tokio_util::time::{DelayQueue, delay_queue};

use super::Outbound;
use crate::message::jsonrpc::INTERNAL_ERROR;
use crate::message::{Kind, Message, RequestId, RpcError};

pub struct Pending {
    timeout: Duration,
    /// Requests awaiting an answer, with their place in `deadlines`.
    in_flight: HashMap<RequestId, delay_queue::Key>,
    deadlines: DelayQueue<RequestId>,
    /// Progress tokens of in-flight requests.
    progress_owner: HashMap<String, RequestId>,
}

impl Pending {
    /// Requests go unanswered for at most `timeout` (progress restarts the clock).
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            in_flight: HashMap::new(),
            deadlines: DelayQueue::new(),
            progress_owner: HashMap::new(),
        }
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Starts the clock of a client request (other messages are not tracked).
    pub fn track(&mut self, message: &Message) {
        let Kind::Request { id, .. } = message.kind() else {
            return;
        };
        let deadline = self.deadlines.insert(id.clone(), self.timeout);
        if let Some(earlier) = self.in_flight.insert(id.clone(), deadline) {
            // A client reusing an id it is still waiting on: the newer request's clock.
            self.deadlines.try_remove(&earlier);
        }
        if let Some(token) = message.params().pointer("/_meta/progressToken") {
            self.progress_owner.insert(token.to_string(), id.clone());
        }
    }

    /// The client request a backend message belongs to: a response's own (which stops being
    /// pending), or the request a progress notification reports on (whose clock restarts).
    pub fn related(&mut self, message: &Message) -> Option<RequestId> {
        match message.kind() {
            Kind::Response { id } => {
                self.forget(id);
                Some(id.clone())
            }
            Kind::Notification { method } if method == "notifications/progress" => {
                let owner = message
                    .params()
                    .get("progressToken")
                    .and_then(|t| self.progress_owner.get(&t.to_string()))
                    .cloned()?;
                if let Some(key) = self.in_flight.get(&owner) {
                    self.deadlines.reset(key, self.timeout);
                }
                Some(owner)
            }
            Kind::Notification { .. } | Kind::Request { .. } => None,
        }
    }

    pub fn contains(&self, id: &RequestId) -> bool {
        self.in_flight.contains_key(id)
    }

    /// Stops tracking a request: answered, failed or timed out.
    pub fn forget(&mut self, id: &RequestId) {
        if let Some(key) = self.in_flight.remove(id) {
            self.deadlines.try_remove(&key);
        }
        self.progress_owner.retain(|_, owner| owner != id);
    }

    /// Every request still awaiting an answer.
    pub fn ids(&self) -> Vec<RequestId> {
        self.in_flight.keys().cloned().collect()
    }

    /// The next request whose time is up (no longer tracked once returned); never resolves
    /// while nothing is pending.
    pub async fn expired(&mut self) -> RequestId {
        loop {
            let Some(expired) = self.deadlines.next().await else {
                return std::future::pending().await;
            };
            let id = expired.into_inner();
            if self.in_flight.remove(&id).is_some() {
                self.progress_owner.retain(|_, owner| *owner != id);
                return id;
            }
        }
    }

    /// An error answering `id` in the backend's place, forgetting the request.
    pub fn fail(&mut self, id: RequestId, message: String, reason: &str) -> Outbound {
        self.forget(&id);
        failure(id, message, reason)
    }
}

/// An error (-32603) answering `id` in the place of the server behind the backend; `reason`
/// (`data.reason`) is a fixed word a client can act on.
pub fn failure(id: RequestId, message: String, reason: &str) -> Outbound {
    let error = RpcError::new(INTERNAL_ERROR, message)
        .with_data(json!({ "reason": reason }))
        .with_id(Some(id.clone()));
    Outbound {
        message: error.to_message(),
        related: Some(id),
    }
}

/// Tells the server behind the backend to stop working on a request that timed out.
pub fn cancellation(id: &RequestId) -> Message {
    Message::notification(
        "notifications/cancelled",
        json!({ "requestId": id.to_value(), "reason": "timed out in mcp-server" }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(text: &str) -> Message {
        Message::parse(text).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn progress_restarts_the_clock_and_silence_expires_the_request() {
        let mut pending = Pending::new(Duration::from_secs(10));
        pending.track(&msg(
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"_meta":{"progressToken":"p"}}}"#,
        ));
        tokio::time::sleep(Duration::from_secs(8)).await;
        let progress = msg(
            r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"p","progress":1}}"#,
        );
        let owner = pending.related(&progress).expect("progress has an owner");
        assert_eq!(owner.as_json(), "7");
        let started = tokio::time::Instant::now();
        let expired = pending.expired().await;
        assert_eq!(expired.as_json(), "7");
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        assert!(!pending.contains(&expired));
        assert!(
            pending.related(&progress).is_none(),
            "its token is gone too"
        );
    }

    #[tokio::test]
    async fn a_response_ends_its_request_and_failures_carry_a_reason() {
        let mut pending = Pending::new(Duration::from_secs(10));
        pending.track(&msg(r#"{"jsonrpc":"2.0","id":"a","method":"ping"}"#));
        let answer = msg(r#"{"jsonrpc":"2.0","id":"a","result":{}}"#);
        let id = pending.related(&answer).unwrap();
        assert!(!pending.contains(&id));
        let failed = pending.fail(id, "nope".into(), "timeout");
        let value: serde_json::Value = serde_json::from_str(failed.message.text()).unwrap();
        assert_eq!(value["error"]["code"], INTERNAL_ERROR);
        assert_eq!(value["error"]["data"]["reason"], "timeout");
        assert_eq!(value["id"], "a");
    }
}
