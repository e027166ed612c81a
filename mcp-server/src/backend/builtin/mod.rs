//! The built-in backend (the default, no upstream): answers from a [`Catalogue`] (the demo
//! tools, and with `--conformance-fixtures` the conformance suite's fixtures, see
//! [`crate::backend::catalogue`]).
//!
//! The same request handler ([`dispatch`]) serves session-based revisions (through a
//! [`BuiltinSession`]) and the stateless 2026-07-28 revision (one request at a time, see
//! [`Stateless::answer_one`]). A session costs no task of its own: each request runs on a task
//! that lives as long as the request.

mod dispatch;
mod request;
mod session;

use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use self::dispatch::Flavor;
pub use self::session::BuiltinSession;
use self::session::Responder;
use super::catalogue::{self, Catalogue};
use super::{ChannelOutlet, Outbound, Outlet, Stateless};
use crate::message::Message;

/// The built-in backend: what it offers is its catalogue's.
pub struct Builtin {
    catalogue: Arc<dyn Catalogue>,
}

impl Default for Builtin {
    fn default() -> Self {
        Self::new()
    }
}

impl Builtin {
    /// The built-in backend with the demo catalogue.
    pub fn new() -> Self {
        Self::with_catalogue(Arc::new(catalogue::demo::Demo))
    }

    /// The built-in backend offering `catalogue` (see [`catalogue::builtin`]).
    pub fn with_catalogue(catalogue: Arc<dyn Catalogue>) -> Self {
        Self { catalogue }
    }

    /// Starts serving one session.
    pub fn open(
        self: &Arc<Self>,
        outlet: Arc<dyn Outlet>,
        end: CancellationToken,
    ) -> Arc<BuiltinSession> {
        BuiltinSession::new(Arc::clone(self) as Arc<dyn Responder>, outlet, end)
    }
}

impl Responder for Builtin {
    fn respond(
        self: Arc<Self>,
        request: Message,
        session: Arc<BuiltinSession>,
    ) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let outlet = Arc::clone(session.outlet());
            dispatch::reply(
                &*self.catalogue,
                request,
                Flavor::Session,
                outlet,
                Some(session),
            )
            .await;
        })
    }
}

impl Stateless for Builtin {
    fn answer_one(
        self: Arc<Self>,
        request: Message,
        _identity: Option<Arc<crate::oauth::Identity>>,
    ) -> mpsc::UnboundedReceiver<Outbound> {
        let (outlet, rx) = ChannelOutlet::new();
        tokio::spawn(async move {
            dispatch::reply(&*self.catalogue, request, Flavor::Stateless, outlet, None).await;
        });
        rx
    }
}

#[cfg(all(test, feature = "conformance"))]
mod tests {
    //! The session plumbing and the dispatch together, driven by the conformance fixtures
    //! (which log, and ask the client).

    use std::time::Duration;

    use serde_json::{Value, json};

    use super::*;
    use crate::message::jsonrpc::RESOURCE_NOT_FOUND;

    /// A session of a built-in backend with the conformance fixtures, and what it sends.
    fn fixture_session() -> (Arc<BuiltinSession>, mpsc::UnboundedReceiver<Outbound>) {
        let catalogue = catalogue::builtin(true).unwrap();
        let builtin = Arc::new(Builtin::with_catalogue(catalogue));
        let (outlet, rx) = ChannelOutlet::new();
        (builtin.open(outlet, CancellationToken::new()), rx)
    }

    fn request(id: u64, method: &str, params: Value) -> Message {
        Message::from_value(
            &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
        )
    }

    async fn next(rx: &mut mpsc::UnboundedReceiver<Outbound>) -> Value {
        let out = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("an answer in time")
            .expect("the backend still runs");
        serde_json::from_str(out.message.text()).unwrap()
    }

    #[tokio::test]
    async fn log_messages_below_the_sessions_level_are_not_sent() {
        let (session, mut rx) = fixture_session();
        let call = json!({"name": "test_tool_with_logging", "arguments": {}});
        session
            .receive(request(1, "logging/setLevel", json!({"level": "warning"})))
            .unwrap();
        assert_eq!(next(&mut rx).await["id"], 1);
        session
            .receive(request(2, "tools/call", call.clone()))
            .unwrap();
        assert_eq!(next(&mut rx).await["id"], 2, "no info messages first");
        session
            .receive(request(3, "logging/setLevel", json!({"level": "info"})))
            .unwrap();
        assert_eq!(next(&mut rx).await["id"], 3);
        session.receive(request(4, "tools/call", call)).unwrap();
        for _ in 0..3 {
            let note = next(&mut rx).await;
            assert_eq!(note["method"], "notifications/message");
            assert_eq!(note["params"]["level"], "info");
        }
        assert_eq!(next(&mut rx).await["id"], 4);
    }

    #[tokio::test]
    async fn a_tool_asks_the_client_and_answers_with_what_it_said() {
        let (session, mut rx) = fixture_session();
        let init = json!({
            "protocolVersion": "2025-06-18",
            "capabilities": {"sampling": {}},
            "clientInfo": {"name": "t", "version": "1"},
        });
        session.receive(request(1, "initialize", init)).unwrap();
        assert_eq!(next(&mut rx).await["id"], 1);
        let call = json!({"name": "test_sampling", "arguments": {"prompt": "hi?"}});
        session.receive(request(2, "tools/call", call)).unwrap();
        let asked = next(&mut rx).await;
        assert_eq!(asked["method"], "sampling/createMessage");
        assert_eq!(asked["params"]["messages"][0]["content"]["text"], "hi?");
        let answer = json!({
            "jsonrpc": "2.0",
            "id": asked["id"],
            "result": {"role": "assistant", "content": {"type": "text", "text": "hello"}, "model": "m"},
        });
        session.receive(Message::from_value(&answer)).unwrap();
        let result = next(&mut rx).await;
        assert_eq!(result["id"], 2);
        assert_eq!(
            result["result"]["content"][0]["text"],
            "LLM response: hello"
        );
    }

    #[tokio::test]
    async fn asking_a_client_without_the_capability_is_a_tool_error() {
        let (session, mut rx) = fixture_session();
        let call = json!({"name": "test_elicitation", "arguments": {"message": "name?"}});
        session.receive(request(1, "tools/call", call)).unwrap();
        let result = next(&mut rx).await;
        assert_eq!(result["result"]["isError"], true);
    }

    #[tokio::test]
    async fn subscriptions_need_a_known_resource() {
        let (session, mut rx) = fixture_session();
        let known = json!({"uri": "test://watched-resource"});
        session
            .receive(request(1, "resources/subscribe", known.clone()))
            .unwrap();
        assert_eq!(next(&mut rx).await["result"], json!({}));
        assert_eq!(session.subscriptions(), ["test://watched-resource"]);
        session
            .receive(request(2, "resources/unsubscribe", known))
            .unwrap();
        assert_eq!(next(&mut rx).await["result"], json!({}));
        assert!(session.subscriptions().is_empty());
        let unknown = json!({"uri": "test://nope"});
        session
            .receive(request(3, "resources/subscribe", unknown))
            .unwrap();
        assert_eq!(next(&mut rx).await["error"]["code"], RESOURCE_NOT_FOUND);
    }
}
