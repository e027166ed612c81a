//! The HTTP client side of the proxy: sending to the upstream under time bounds, and reading its
//! answers (a JSON body or an event stream) under size and silence bounds.
//!
//! The upstream is trusted to be ours (same pod) but not to be well-behaved: every answer is
//! bounded in bytes per message and in time, and no error repeats what the upstream sent.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use hyper::http::request::Builder;
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use mcp_wire::meta::media::{EVENT_STREAM, JSON, POST_ACCEPT};
use mcp_wire::sse;

use crate::message::{Message, parse_body};
use crate::metrics::Metrics;

/// How long an idle connection to the upstream is kept for reuse: shorter than servers keep
/// one open (Node's default is 5 s), so a request is not sent on a connection the upstream is
/// just closing. Loopback connections are cheap to open again.
const POOL_IDLE: Duration = Duration::from_secs(2);

/// Why an exchange with the upstream failed. Messages are ours: the upstream's bodies are never
/// quoted.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot reach the upstream server")]
    Connect,
    #[error("the upstream server did not answer within {} s", .0.as_secs())]
    Timeout(Duration),
    #[error("the upstream server answered HTTP {0}")]
    Status(StatusCode),
    #[error("the upstream server no longer knows this session")]
    SessionGone,
    #[error("the upstream server sent a message larger than {0} bytes")]
    TooLarge(usize),
    #[error("the upstream server's answer is not MCP: {0}")]
    Protocol(&'static str),
    #[error("the upstream server's stream was silent for {} s", .0.as_secs())]
    Idle(Duration),
    #[error("the connection to the upstream server broke")]
    Broken,
}

impl UpstreamError {
    /// A fixed word for metrics and `data.reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            UpstreamError::Connect => "upstream-unreachable",
            UpstreamError::Timeout(_) | UpstreamError::Idle(_) => "upstream-timeout",
            UpstreamError::Status(_) => "upstream-status",
            UpstreamError::SessionGone => "upstream-session-gone",
            UpstreamError::TooLarge(_) => "upstream-too-large",
            UpstreamError::Protocol(_) => "upstream-protocol",
            UpstreamError::Broken => "upstream-broken",
        }
    }
}

/// Limits on what is read from the upstream.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    /// Time to connect and receive a response head.
    pub connect: Duration,
    /// Longest silence on a body being read (keep-alive comments count as activity).
    pub idle: Duration,
    /// Largest message.
    pub max_message_bytes: usize,
}

/// The client every proxied session shares (one connection pool).
pub struct UpstreamHttp {
    client: Client<HttpConnector, Full<Bytes>>,
    pub bounds: Bounds,
    metrics: Arc<Metrics>,
}

impl UpstreamHttp {
    pub fn new(bounds: Bounds, metrics: Arc<Metrics>) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(bounds.connect));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE)
            .build(connector);
        Self {
            client,
            bounds,
            metrics,
        }
    }

    /// A request to `uri` with MCP's content negotiation: a POST carries a JSON message and
    /// accepts JSON or a stream back, other methods accept a stream.
    pub fn request(&self, method: Method, uri: &Uri) -> Builder {
        let post = method == Method::POST;
        let builder = Request::builder().method(method).uri(uri.clone());
        if post {
            builder
                .header(CONTENT_TYPE, JSON)
                .header(ACCEPT, POST_ACCEPT)
        } else {
            builder.header(ACCEPT, EVENT_STREAM)
        }
    }

    /// Sends `request`, waiting at most the connect bound for the response head. Counts the
    /// request; a failure is counted by whoever handles it, once.
    pub async fn send(
        &self,
        request: Builder,
        body: Option<String>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let body = Full::new(Bytes::from(body.unwrap_or_default()));
        let request = request
            .body(body)
            .map_err(|_| UpstreamError::Protocol("a header value the upstream cannot take"))?;
        self.metrics
            .count_upstream_request(request.method().as_str());
        let sent = tokio::time::timeout(self.bounds.connect, self.client.request(request)).await;
        match sent {
            Err(_) => Err(UpstreamError::Timeout(self.bounds.connect)),
            Ok(Err(e)) if e.is_connect() => Err(UpstreamError::Connect),
            Ok(Err(_)) => Err(UpstreamError::Broken),
            Ok(Ok(response)) => Ok(response),
        }
    }

    /// Reads an answer's body: the messages of a JSON body, or an event stream to read on.
    pub async fn answer(&self, response: Response<Incoming>) -> Result<Answer, UpstreamError> {
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .unwrap_or_default();
        if content_type == EVENT_STREAM {
            let stream = EventStream::new(response.into_body(), self.bounds);
            return Ok(Answer::Stream(Box::new(stream)));
        }
        if content_type != JSON {
            return Err(UpstreamError::Protocol("unexpected content type"));
        }
        let limited = Limited::new(response.into_body(), self.bounds.max_message_bytes);
        let body = match tokio::time::timeout(self.bounds.idle, limited.collect()).await {
            Err(_) => return Err(UpstreamError::Idle(self.bounds.idle)),
            Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
                return Err(UpstreamError::TooLarge(self.bounds.max_message_bytes));
            }
            Ok(Err(_)) => return Err(UpstreamError::Broken),
            Ok(Ok(collected)) => collected.to_bytes(),
        };
        let payload = parse_body(&body).map_err(|_| UpstreamError::Protocol("not JSON-RPC"))?;
        Ok(Answer::Json(payload.into_messages()))
    }
}

/// An upstream answer.
pub enum Answer {
    Json(Vec<Message>),
    /// Boxed: the parser's state is large next to a list of messages.
    Stream(Box<EventStream>),
}

/// An upstream event stream, read event by event.
pub struct EventStream {
    body: Incoming,
    parser: sse::Parser,
    ready: VecDeque<sse::Event>,
    bounds: Bounds,
    last_id: Option<String>,
}

impl EventStream {
    fn new(body: Incoming, bounds: Bounds) -> Self {
        Self {
            body,
            parser: sse::Parser::new(bounds.max_message_bytes),
            ready: VecDeque::new(),
            bounds,
            last_id: None,
        }
    }

    /// The next event; `None` when the upstream ended the stream.
    pub async fn next_event(&mut self) -> Result<Option<sse::Event>, UpstreamError> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                if event.id.is_some() {
                    self.last_id.clone_from(&event.id);
                }
                return Ok(Some(event));
            }
            let frame = match tokio::time::timeout(self.bounds.idle, self.body.frame()).await {
                Err(_) => return Err(UpstreamError::Idle(self.bounds.idle)),
                Ok(None) => return Ok(None),
                Ok(Some(Err(_))) => return Err(UpstreamError::Broken),
                Ok(Some(Ok(frame))) => frame,
            };
            if let Ok(data) = frame.into_data() {
                let events = self
                    .parser
                    .feed(&data)
                    .map_err(|_| UpstreamError::TooLarge(self.bounds.max_message_bytes))?;
                self.ready.extend(events);
            }
        }
    }

    /// The next JSON-RPC message, skipping events that carry none (priming events, other
    /// event types); `None` when the stream ended.
    pub async fn next_message(&mut self) -> Result<Option<Message>, UpstreamError> {
        loop {
            let Some(event) = self.next_event().await? else {
                return Ok(None);
            };
            if event.event != "message" || event.data.trim().is_empty() {
                continue;
            }
            return Message::parse(&event.data)
                .map(Some)
                .map_err(|_| UpstreamError::Protocol("an event that is not JSON-RPC"));
        }
    }

    /// The id of the last event received, for resuming the stream.
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_id.as_deref()
    }
}

/// A header value from text the upstream or the client chose, when it is a valid one.
pub fn header_value(text: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(text).ok()
}
