//! The stdio bridge: serves a stdio MCP server over the HTTP transports.
//!
//! Process model: one child process per MCP session. A stdio server is written for exactly one
//! client, so sharing one child would mix clients' ids, capabilities, subscriptions and
//! server-to-client requests; a child per session needs no id rewriting and keeps every message
//! byte-for-byte as the client and child wrote it (only line breaks, which are insignificant
//! whitespace in JSON, are removed so a message fits on one stdio line).
//!
//! When a child exits, every request it had not answered gets a JSON-RPC error (-32603), and the
//! child is restarted with the client's own `initialize` and `notifications/initialized` replayed
//! (the replayed response is swallowed), so the session carries on; state the child kept in
//! memory is lost. After `max_restarts` exits the session ends and the client gets 404 for it, as
//! for any ended session, and starts a new one.
//!
//! A request the child cannot answer readably still gets an answer: a line over the length limit
//! or not UTF-8 fails the request whose id it carries (-32603, `data.reason = "invalid-output"`),
//! and a request unanswered for `request_timeout` fails (`"timeout"`) and is cancelled in the
//! child. Each child runs in its own process group, stopped as a whole with its session.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::process::{ChildStdin, ChildStdout, Command};
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use super::child_lines::{ChildLine, ChildLines};
use super::pending::{Pending, cancellation};
use super::process::GroupChild;
use super::readiness::{Readiness, answers_probe, probe_initialize};
use super::{BackendError, CHANNEL_DEPTH, Outbound, Outlet};
use crate::message::partial::id_of_truncated;
use crate::message::{Kind, Message, RequestId};
use crate::metrics::Metrics;

/// What to run and how to look after it.
#[derive(Clone, Debug)]
pub struct BridgeConfig {
    pub command: String,
    pub args: Vec<String>,
    /// Restarts allowed per session before the session is ended.
    pub max_restarts: u32,
    /// How long the readiness probe waits for the child's `initialize` answer.
    pub handshake_timeout: Duration,
    /// Longest stdout line accepted from the child.
    pub max_line_bytes: usize,
    /// How long a request may go unanswered (progress notifications restart the clock).
    pub request_timeout: Duration,
}

pub struct Bridge {
    config: BridgeConfig,
    ready: Arc<Readiness>,
    metrics: Arc<Metrics>,
}

/// A running child: its process, a writer task feeding stdin, and its stdout lines.
struct ChildIo {
    process: GroupChild,
    /// Bounded, and never waited on: the session loop must keep reading stdout while a child is
    /// not reading stdin (it may be blocked writing to us), so a full queue fails the message
    /// instead of blocking.
    stdin: mpsc::Sender<String>,
    lines: FramedRead<ChildStdout, ChildLines>,
}

#[derive(Debug, thiserror::Error)]
enum ProbeError {
    #[error(transparent)]
    Spawn(#[from] BackendError),
    #[error("no answer to initialize within {0:?}")]
    Timeout(Duration),
    #[error("the child exited before answering initialize")]
    Exited,
}

impl Bridge {
    pub fn new(config: BridgeConfig, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            config,
            ready: Arc::default(),
            metrics,
        })
    }

    pub fn is_ready(&self) -> bool {
        self.ready.is_ready()
    }

    /// Probes the command in the background until one child answers `initialize`, so `/readyz`
    /// reports ready only once the bridged server really works.
    pub fn probe_until_ready(self: &Arc<Self>, shutdown: CancellationToken) {
        let bridge = Arc::clone(self);
        self.ready.probe_until_ready(
            shutdown,
            "bridged server",
            self.config.command.clone(),
            move || {
                let bridge = Arc::clone(&bridge);
                async move { bridge.probe().await }
            },
        );
    }

    async fn probe(&self) -> Result<(), ProbeError> {
        let mut child = self.spawn()?;
        let request = probe_initialize();
        let _ = child.stdin.try_send(request.text().to_owned());
        let answered = async {
            while let Some(line) = child.lines.next().await {
                let Ok(ChildLine::Text(line)) = line else {
                    continue;
                };
                if Message::parse(&line).is_ok_and(|m| answers_probe(&m)) {
                    return Ok(());
                }
            }
            Err(ProbeError::Exited)
        };
        let result = tokio::time::timeout(self.config.handshake_timeout, answered)
            .await
            .unwrap_or(Err(ProbeError::Timeout(self.config.handshake_timeout)));
        let _ = child.process.stop().await;
        result
    }

    fn spawn(&self) -> Result<ChildIo, BackendError> {
        let spawn_error = |source| BackendError::Spawn {
            command: self.config.command.clone(),
            source,
        };
        let mut command = Command::new(&self.config.command);
        command
            .args(&self.config.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // The child's logs belong with ours.
            .stderr(Stdio::inherit());
        let mut process = GroupChild::spawn(&mut command).map_err(spawn_error)?;
        let pipes = process.child_mut();
        let (Some(stdin), Some(stdout)) = (pipes.stdin.take(), pipes.stdout.take()) else {
            return Err(spawn_error(std::io::Error::other(
                "child has no stdio pipes",
            )));
        };
        let (stdin_tx, stdin_rx) = mpsc::channel(CHANNEL_DEPTH);
        // Writing happens on its own task: a child blocked writing stdout must never stop us
        // from reading it.
        tokio::spawn(write_lines(stdin, stdin_rx));
        Ok(ChildIo {
            process,
            stdin: stdin_tx,
            lines: FramedRead::new(stdout, ChildLines::new(self.config.max_line_bytes)),
        })
    }

    /// Starts a child for a new session; the returned sender feeds it until `end`.
    pub fn open(
        self: &Arc<Self>,
        outlet: Arc<dyn Outlet>,
        end: CancellationToken,
    ) -> Result<mpsc::Sender<Message>, BackendError> {
        let child = self.spawn()?;
        let (to_backend, inbox) = mpsc::channel(CHANNEL_DEPTH);
        let session = BridgedSession {
            bridge: Arc::clone(self),
            outlet,
            pending: Pending::new(self.config.request_timeout),
            initialize: None,
            initialized: None,
            swallow: None,
        };
        tokio::spawn(session.run(child, inbox, end));
        Ok(to_backend)
    }
}

async fn write_lines(mut stdin: ChildStdin, mut lines: mpsc::Receiver<String>) {
    while let Some(mut line) = lines.recv().await {
        line.push('\n');
        if stdin.write_all(line.as_bytes()).await.is_err() || stdin.flush().await.is_err() {
            // The child is gone; its exit is noticed on the stdout side.
            break;
        }
    }
}

/// One session's view of its child.
struct BridgedSession {
    bridge: Arc<Bridge>,
    outlet: Arc<dyn Outlet>,
    /// Client requests the child has not answered yet.
    pending: Pending,
    /// The client's handshake, replayed to a restarted child.
    initialize: Option<Message>,
    initialized: Option<Message>,
    /// The id of a replayed `initialize`, whose answer the client must not see twice.
    swallow: Option<RequestId>,
}

enum Step {
    Continue,
    ChildExited,
    Stop,
}

impl BridgedSession {
    async fn run(
        mut self,
        mut child: ChildIo,
        mut inbox: mpsc::Receiver<Message>,
        end: CancellationToken,
    ) {
        let mut restarts = 0;
        loop {
            let step = tokio::select! {
                () = end.cancelled() => Step::Stop,
                m = inbox.recv() => match m {
                    Some(m) => self.forward_to_child(m, &child).await,
                    None => Step::Stop,
                },
                line = child.lines.next() => match line {
                    Some(Ok(ChildLine::Text(line))) => self.forward_to_client(&line),
                    Some(Ok(unreadable)) => self.fail_unreadable(unreadable),
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "cannot read the bridged server's output");
                        Step::ChildExited
                    }
                    None => Step::ChildExited,
                },
                id = self.pending.expired() => self.time_out(id, &child),
            };
            match step {
                Step::Continue => {}
                Step::Stop => break,
                Step::ChildExited => {
                    let status = child.process.wait().await;
                    tracing::warn!(?status, restarts, "bridged server exited");
                    self.fail_in_flight(&status);
                    if restarts >= self.bridge.config.max_restarts {
                        break;
                    }
                    restarts += 1;
                    self.bridge.metrics.child_restarts.inc();
                    let backoff = Duration::from_millis(100 * 2u64.pow(restarts.min(6)));
                    tokio::select! {
                        () = end.cancelled() => break,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    match self.bridge.spawn() {
                        Ok(next) => {
                            child = next;
                            self.replay_handshake(&child).await;
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "could not restart the bridged server");
                            break;
                        }
                    }
                }
            }
        }
        let _ = child.process.stop().await;
        self.outlet.closed();
    }

    async fn forward_to_child(&mut self, message: Message, child: &ChildIo) -> Step {
        self.pending.track(&message);
        match message.method() {
            Some("initialize") if message.is_request() => {
                self.initialize = Some(message.clone());
            }
            Some("notifications/initialized") => self.initialized = Some(message.clone()),
            _ => {}
        }
        match child.stdin.try_send(message.text().to_owned()) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                // The child has stopped reading: this message fails rather than queueing more.
                match message.kind() {
                    Kind::Request { id, .. } => self.fail_request(
                        id.clone(),
                        format!(
                            "the bridged server is not reading its input ({CHANNEL_DEPTH} messages wait)"
                        ),
                        "child-busy",
                    ),
                    _ => tracing::warn!(
                        "dropping a message for the bridged server: it is not reading its input"
                    ),
                }
            }
            // The child is exiting; its stdout EOF handles the rest.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
        Step::Continue
    }

    fn forward_to_client(&mut self, line: &str) -> Step {
        if line.trim().is_empty() {
            return Step::Continue;
        }
        let message = match Message::parse(line) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "bridged server wrote a line that is not JSON-RPC");
                return Step::Continue;
            }
        };
        if let Kind::Response { id } = message.kind()
            && self.swallow.as_ref() == Some(id)
        {
            self.swallow = None;
            return Step::Continue;
        }
        let related = self.pending.related(&message);
        self.outlet.send(Outbound { message, related });
        Step::Continue
    }

    /// Answers `id` with an error in the child's place.
    fn fail_request(&mut self, id: RequestId, message: String, reason: &str) {
        let failure = self.pending.fail(id, message, reason);
        self.outlet.send(failure);
    }

    fn fail_in_flight(&mut self, status: &std::io::Result<std::process::ExitStatus>) {
        let message = match status {
            Ok(s) => format!("the bridged server exited ({s}) before answering"),
            Err(e) => format!("the bridged server was lost before answering: {e}"),
        };
        for id in self.pending.ids() {
            self.fail_request(id, message.clone(), "child-exited");
        }
    }

    /// A line that cannot be forwarded: fails the request it answers, when its id can be found
    /// in the bytes kept of it; otherwise it is skipped (a notification, or a request of the
    /// child's) and the request timeout covers what it might have answered.
    fn fail_unreadable(&mut self, line: ChildLine) -> Step {
        let (id, what) = match &line {
            ChildLine::NotUtf8(bytes) => (id_of_truncated(bytes, bytes), "not UTF-8".to_owned()),
            ChildLine::TooLong { head, tail } => (
                id_of_truncated(head, tail),
                format!("longer than {} bytes", self.bridge.config.max_line_bytes),
            ),
            ChildLine::Text(_) => return Step::Continue,
        };
        match id.filter(|id| self.pending.contains(id)) {
            Some(id) => {
                tracing::warn!(?id, "the bridged server answered with a line {what}");
                self.fail_request(
                    id,
                    format!("the bridged server's answer could not be forwarded: it is {what}"),
                    "invalid-output",
                );
            }
            None => tracing::warn!("skipping a line from the bridged server: it is {what}"),
        }
        Step::Continue
    }

    /// `id` went unanswered for the request timeout: the client gets an error, and the child is
    /// told to stop working on it.
    fn time_out(&mut self, id: RequestId, child: &ChildIo) -> Step {
        let timeout = self.bridge.config.request_timeout;
        tracing::warn!(?id, ?timeout, "the bridged server did not answer in time");
        let _ = child.stdin.try_send(cancellation(&id).text().to_owned());
        self.fail_request(
            id,
            format!(
                "the bridged server did not answer within {} s",
                timeout.as_secs()
            ),
            "timeout",
        );
        Step::Continue
    }

    async fn replay_handshake(&mut self, child: &ChildIo) {
        if let Some(init) = &self.initialize {
            self.swallow = init.id().cloned();
            let _ = child.stdin.try_send(init.text().to_owned());
        }
        if let Some(note) = &self.initialized {
            let _ = child.stdin.try_send(note.text().to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::ChannelOutlet;
    use crate::message::jsonrpc::INTERNAL_ERROR;
    use serde_json::Value;

    fn bridge_for(script: &str, max_restarts: u32) -> Arc<Bridge> {
        Bridge::new(
            BridgeConfig {
                command: "sh".into(),
                args: vec!["-c".into(), script.into()],
                max_restarts,
                handshake_timeout: Duration::from_secs(5),
                max_line_bytes: 1 << 20,
                request_timeout: Duration::from_secs(30),
            },
            Arc::new(Metrics::new()),
        )
    }

    /// A bridged session as the tests drive it: what goes to the child, what comes back, and
    /// the token that ends it.
    struct Conversation {
        to_backend: mpsc::Sender<Message>,
        from_backend: mpsc::UnboundedReceiver<Outbound>,
        end: CancellationToken,
    }

    fn open(bridge: &Arc<Bridge>) -> Conversation {
        let (outlet, from_backend) = ChannelOutlet::new();
        let end = CancellationToken::new();
        let to_backend = bridge.open(outlet, end.clone()).unwrap();
        Conversation {
            to_backend,
            from_backend,
            end,
        }
    }

    async fn next(conv: &mut Conversation) -> Value {
        let out = tokio::time::timeout(Duration::from_secs(5), conv.from_backend.recv())
            .await
            .expect("backend answered in time")
            .expect("backend still running");
        serde_json::from_str(out.message.text()).unwrap()
    }

    #[tokio::test]
    async fn lines_pass_through_unchanged_in_both_directions() {
        // `cat` answers every line with itself: requests come back as requests, byte for byte.
        let bridge = bridge_for("exec cat", 0);
        let mut conv = open(&bridge);
        let text = r#"{"jsonrpc":"2.0","id":1.50,"method":"vendor/x","params":{"n":12345678901234567890},"extra":true}"#;
        conv.to_backend
            .send(Message::parse(text).unwrap())
            .await
            .unwrap();
        let out = conv.from_backend.recv().await.unwrap();
        assert_eq!(out.message.text(), text);
        conv.end.cancel();
    }

    #[tokio::test]
    async fn a_crashed_child_fails_pending_requests_and_is_restarted_with_the_handshake() {
        // The child answers initialize, then dies on any other request; a restarted child sees
        // the replayed initialize first.
        let script = r#"
            read -r line
            id=$(printf '%s' "$line" | sed -n 's/.*"id":\([0-9]*\).*/\1/p')
            printf '{"jsonrpc":"2.0","id":%s,"result":{"protocolVersion":"2025-06-18","capabilities":{},"serverInfo":{"name":"t","version":"1"}}}\n' "$id"
            read -r line
            read -r line
            exit 3
        "#;
        let bridge = bridge_for(script, 1);
        let mut conv = open(&bridge);
        let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}"#;
        conv.to_backend
            .send(Message::parse(init).unwrap())
            .await
            .unwrap();
        assert_eq!(next(&mut conv).await["id"], 1);
        let initialized = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
        conv.to_backend
            .send(Message::parse(initialized).unwrap())
            .await
            .unwrap();
        let call = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"x"}}"#;
        conv.to_backend
            .send(Message::parse(call).unwrap())
            .await
            .unwrap();
        let failed = next(&mut conv).await;
        assert_eq!(failed["id"], 2);
        assert_eq!(failed["error"]["code"], INTERNAL_ERROR);
        // The restarted child's answer to the replayed initialize is not shown to the client;
        // it dies again after two more lines, and with no restarts left the session ends.
        conv.to_backend
            .send(Message::parse(call).unwrap())
            .await
            .unwrap();
        let failed = next(&mut conv).await;
        assert_eq!(failed["id"], 2);
        let end = tokio::time::timeout(Duration::from_secs(5), conv.from_backend.recv()).await;
        assert!(
            matches!(end, Ok(None)),
            "session must end after the last restart"
        );
        assert_eq!(bridge.metrics.child_restarts.get(), 1);
    }

    #[tokio::test]
    async fn a_child_that_stops_reading_fails_requests_instead_of_queueing_them() {
        // The child never reads stdin: the pipe fills, then the bounded queue in front of it.
        let bridge = bridge_for("exec sleep 300", 0);
        let mut conv = open(&bridge);
        let pad = "x".repeat(4096);
        let mut busy = None;
        for n in 0..1000 {
            let call = format!(
                r#"{{"jsonrpc":"2.0","id":{n},"method":"tools/call","params":{{"pad":"{pad}"}}}}"#
            );
            conv.to_backend
                .send(Message::parse(&call).unwrap())
                .await
                .unwrap();
            if let Ok(out) = conv.from_backend.try_recv() {
                busy = Some(serde_json::from_str::<Value>(out.message.text()).unwrap());
                break;
            }
            tokio::task::yield_now().await;
        }
        let busy = match busy {
            Some(b) => b,
            None => next(&mut conv).await,
        };
        assert_eq!(busy["error"]["data"]["reason"], "child-busy", "{busy}");
        conv.end.cancel();
    }

    #[tokio::test]
    async fn readiness_needs_an_answered_handshake() {
        let silent = bridge_for("sleep 30", 0);
        let err = tokio::time::timeout(Duration::from_secs(10), async {
            let b = Bridge::new(
                BridgeConfig {
                    handshake_timeout: Duration::from_millis(300),
                    ..silent.config.clone()
                },
                Arc::new(Metrics::new()),
            );
            b.probe().await
        })
        .await
        .unwrap();
        assert!(matches!(err, Err(ProbeError::Timeout(_))));
        let echoing = bridge_for(
            r#"read -r line; printf '{"jsonrpc":"2.0","id":"mcp-server-readiness","result":{}}\n'; sleep 5"#,
            0,
        );
        assert!(echoing.probe().await.is_ok());
    }
}
