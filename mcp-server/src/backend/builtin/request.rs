//! One request being answered by the built-in backend: where its messages go (its stream) and
//! the session it belongs to, offered to tools as a [`Call`].

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::session::BuiltinSession;
use crate::backend::catalogue::Call;
use crate::backend::{Outbound, Outlet};
use crate::message::jsonrpc::INTERNAL_ERROR;
use crate::message::{Message, RequestId, RpcError};

/// How long a tool waits for the client to answer a request it sent (sampling, elicitation):
/// a person may be answering.
const CLIENT_ANSWER_TIMEOUT: Duration = Duration::from_secs(600);

pub(super) struct Request {
    id: RequestId,
    progress_token: Option<Value>,
    outlet: Arc<dyn Outlet>,
    /// The session the request belongs to; stateless requests have none.
    session: Option<Arc<BuiltinSession>>,
}

impl Request {
    /// `None` for a message that is no request.
    pub(super) fn new(
        request: &Message,
        outlet: Arc<dyn Outlet>,
        session: Option<Arc<BuiltinSession>>,
    ) -> Option<Self> {
        Some(Self {
            id: request.id()?.clone(),
            progress_token: request.params().pointer("/_meta/progressToken").cloned(),
            outlet,
            session,
        })
    }

    pub(super) fn id(&self) -> &RequestId {
        &self.id
    }

    pub(super) fn session(&self) -> Option<&BuiltinSession> {
        self.session.as_deref()
    }

    /// A message on this request's stream.
    pub(super) fn send(&self, message: Message) {
        self.outlet.send(Outbound {
            message,
            related: Some(self.id.clone()),
        });
    }
}

impl Call for Request {
    fn progress(&self, progress: f64, total: f64, message: Option<String>) {
        let Some(token) = &self.progress_token else {
            return;
        };
        let mut params = json!({ "progressToken": token, "progress": progress, "total": total });
        if let Some(message) = message {
            params["message"] = json!(message);
        }
        self.send(Message::notification("notifications/progress", params));
    }

    fn log(&self, level: &str, data: Value) {
        if self.session().is_some_and(|s| s.logs(level)) {
            self.send(Message::notification(
                "notifications/message",
                json!({ "level": level, "logger": "mcp-server", "data": data }),
            ));
        }
    }

    fn client_can(&self, capability: &str) -> bool {
        self.session().is_some_and(|s| s.client_can(capability))
    }

    /// The request travels on this call's stream, so the client sees it while the call is open.
    fn ask<'a>(&'a self, method: &'a str, params: Value) -> BoxFuture<'a, Result<Value, RpcError>> {
        Box::pin(async move {
            let session = self.session().ok_or_else(|| {
                RpcError::new(
                    INTERNAL_ERROR,
                    format!("{method} needs a session; this request has none"),
                )
            })?;
            let (id, answer) = session.expect_answer();
            let request = Message::from_value(&json!({
                "jsonrpc": "2.0", "id": id.to_value(), "method": method, "params": params,
            }));
            self.send(request);
            let answer = tokio::time::timeout(CLIENT_ANSWER_TIMEOUT, answer).await;
            session.forget_answer(&id);
            let Ok(Ok(answer)) = answer else {
                return Err(RpcError::new(
                    INTERNAL_ERROR,
                    format!("the client did not answer {method}"),
                ));
            };
            let value: Value = serde_json::from_str(answer.text()).unwrap_or(Value::Null);
            match (value.get("result"), value.get("error")) {
                (Some(result), _) => Ok(result.clone()),
                (None, error) => Err(RpcError::new(
                    INTERNAL_ERROR,
                    format!(
                        "the client refused {method}: {}",
                        error
                            .and_then(|e| e.get("message"))
                            .and_then(Value::as_str)
                            .unwrap_or("no reason given")
                    ),
                )),
            }
        })
    }

    fn release_stream(&self) {
        self.outlet.release_stream(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::ChannelOutlet;

    fn tools_call(meta: Value) -> Message {
        Message::from_value(&json!({
            "jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": "sleep", "_meta": meta},
        }))
    }

    #[test]
    fn progress_goes_on_the_requests_stream_with_its_token() {
        let (outlet, mut rx) = ChannelOutlet::new();
        let request =
            Request::new(&tools_call(json!({"progressToken": "p"})), outlet, None).unwrap();
        request.progress(0.5, 1.0, Some("half".into()));
        let out = rx.try_recv().unwrap();
        assert_eq!(out.related.as_ref(), Some(request.id()));
        let params = out.message.params();
        assert_eq!(out.message.method(), Some("notifications/progress"));
        assert_eq!(
            params,
            json!({"progressToken": "p", "progress": 0.5, "total": 1.0, "message": "half"})
        );
    }

    #[test]
    fn progress_without_a_token_is_not_sent() {
        let (outlet, mut rx) = ChannelOutlet::new();
        let request = Request::new(&tools_call(json!({})), outlet, None).unwrap();
        request.progress(0.5, 1.0, None);
        assert!(rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn asking_needs_a_session() {
        let (outlet, _rx) = ChannelOutlet::new();
        let request = Request::new(&tools_call(json!({})), outlet, None).unwrap();
        let refused = request.ask("sampling/createMessage", json!({})).await;
        assert_eq!(refused.unwrap_err().code, INTERNAL_ERROR);
    }
}
