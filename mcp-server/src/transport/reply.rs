//! Turning backend answers into HTTP responses: JSON-RPC errors with the right status, plain JSON
//! answers, and SSE streams with event ids and keep-alives.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::stream::{self, BoxStream, Stream, StreamExt};
use mcp_wire::sse::Frame;
use tokio_util::sync::CancellationToken;

use super::AppState;
use super::session::{Event, EventReceiver};
use super::sse_body;
use crate::config::ResponseMode;
use crate::message::jsonrpc::INTERNAL_ERROR;
use crate::message::{Message, RpcError};

/// How long `auto` mode waits for a complete answer before switching to an SSE stream, so slow
/// calls get keep-alives and resumability instead of a silent connection.
const JSON_WINDOW: Duration = Duration::from_secs(1);

/// A request refused before it reached a backend: an HTTP status with a JSON-RPC error body.
pub struct Rejection {
    status: StatusCode,
    error: Box<RpcError>,
}

/// Seconds a client is asked to wait before retrying a 503.
const RETRY_AFTER_SECONDS: &str = "5";

impl Rejection {
    pub fn new(status: StatusCode, error: RpcError) -> Self {
        Self {
            status,
            error: Box::new(error),
        }
    }

    /// 503 with `Retry-After`: full, or shutting down.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            RpcError::new(INTERNAL_ERROR, message),
        )
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let retry = self.status == StatusCode::SERVICE_UNAVAILABLE;
        let mut response = rpc_error(self.status, *self.error);
        if retry {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECONDS),
            );
        }
        response
    }
}

/// A JSON-RPC error as the whole HTTP response.
pub fn rpc_error(status: StatusCode, error: RpcError) -> Response {
    json_body(status, error.to_response().to_string())
}

fn json_body(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(super::headers::JSON),
        )],
        body,
    )
        .into_response()
}

/// Messages as one JSON body: an array for a batch, the message itself otherwise.
fn json_messages(status: StatusCode, messages: &[Message], batch: bool) -> Response {
    let body = match messages {
        [single] if !batch => single.text().to_owned(),
        many => {
            let parts: Vec<&str> = many.iter().map(Message::text).collect();
            format!("[{}]", parts.join(","))
        }
    };
    json_body(status, body)
}

/// A stream's events, as a stream.
pub fn channel_stream(rx: EventReceiver) -> BoxStream<'static, Event> {
    rx.boxed()
}

/// What the answer to a POST looks like.
pub struct Answer {
    /// Responses expected before the exchange is complete.
    pub expected: usize,
    pub batch: bool,
    /// 2026-07-28 maps JSON-RPC errors onto HTTP statuses; session revisions answer 200.
    pub status_from_error: bool,
    /// Whether SSE events carry ids (resumable streams only).
    pub event_ids: bool,
    /// The priming event's id, sent first when the answer is an SSE stream.
    pub prime: Option<u64>,
}

/// A POST's answer, and whether it went out as plain JSON (then none of its events can be
/// resumed).
pub struct Answered {
    pub response: Response,
    pub as_json: bool,
}

impl Answered {
    fn json(response: Response) -> Self {
        Self {
            response,
            as_json: true,
        }
    }
}

/// Answers a POST from its stream of events: JSON when the answer is complete quickly with
/// nothing streamed before it (in `auto` mode), an SSE stream otherwise.
pub async fn answer(
    app: &AppState,
    mut events: BoxStream<'static, Event>,
    shape: Answer,
) -> Answered {
    let mut first = Vec::new();
    if app.settings.response_mode == ResponseMode::Auto {
        let deadline = tokio::time::Instant::now() + JSON_WINDOW;
        let mut responses = 0;
        loop {
            match tokio::time::timeout_at(deadline, events.next()).await {
                Ok(Some(event)) => {
                    let is_response = event.message.is_response();
                    first.push(event);
                    if !is_response {
                        break;
                    }
                    responses += 1;
                    if responses == shape.expected {
                        return Answered::json(complete_json(&first, &shape));
                    }
                }
                // A primed stream that ends before its answers was released for the client to
                // resume: it gets the priming event, and the rest on the resumed stream.
                Ok(None) if shape.prime.is_some() => break,
                // Ended with answers missing on a resumable stream: the client fell behind and
                // its queue overflowed. As SSE, with event ids, it can resume for the rest.
                Ok(None) if shape.event_ids && !first.is_empty() => break,
                Ok(None) if !first.is_empty() => {
                    return Answered::json(complete_json(&first, &shape));
                }
                Ok(None) => {
                    return Answered::json(rpc_error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        RpcError::new(INTERNAL_ERROR, "the session ended before answering"),
                    ));
                }
                Err(_) => break,
            }
        }
    }
    let response = event_stream(
        app,
        stream::iter(first).chain(events),
        None,
        shape.event_ids,
        None,
    );
    let response = match shape.prime {
        Some(id) => prepend(response, priming_event(id)),
        None => response,
    };
    Answered {
        response,
        as_json: false,
    }
}

/// How long a client whose stream this server closed waits before resuming it (the SSE `retry`
/// field of the priming event).
const RESUME_AFTER: Duration = Duration::from_secs(1);

/// An event with an id, a `retry` hint and empty data (SEP-1699).
fn priming_event(id: u64) -> Bytes {
    let id = id.to_string();
    sse_body::frame(Frame::new("").id(&id).retry(RESUME_AFTER))
}

/// The response with `first` sent ahead of its body.
fn prepend(response: Response, first: Bytes) -> Response {
    let (parts, body) = response.into_parts();
    let body = stream::once(async move { Ok(first) }).chain(body.into_data_stream());
    Response::from_parts(parts, Body::from_stream(body))
}

fn complete_json(events: &[Event], shape: &Answer) -> Response {
    let messages: Vec<Message> = events.iter().map(|e| e.message.clone()).collect();
    let status = match (&messages[..], shape.status_from_error) {
        ([single], true) => status_for(single),
        _ => StatusCode::OK,
    };
    json_messages(status, &messages, shape.batch)
}

/// The HTTP status for a stateless answer: method-not-found is 404, request and parameter
/// problems are 400.
fn status_for(message: &Message) -> StatusCode {
    use crate::message::jsonrpc::*;
    let code = serde_json::from_str::<serde_json::Value>(message.text())
        .ok()
        .and_then(|v| v.pointer("/error/code").and_then(serde_json::Value::as_i64));
    match code {
        Some(METHOD_NOT_FOUND) => StatusCode::NOT_FOUND,
        Some(
            PARSE_ERROR
            | INVALID_REQUEST
            | INVALID_PARAMS
            | HEADER_MISMATCH
            | UNSUPPORTED_PROTOCOL_VERSION,
        ) => StatusCode::BAD_REQUEST,
        _ => StatusCode::OK,
    }
}

/// An SSE response. `stop` ends it early (shutdown); `prelude` is sent first (the legacy
/// transport's `endpoint` event). The stream counts in the active-streams gauge while open.
pub fn event_stream(
    app: &AppState,
    events: impl Stream<Item = Event> + Send + 'static,
    stop: Option<CancellationToken>,
    event_ids: bool,
    prelude: Option<Bytes>,
) -> Response {
    let guard = app.metrics.open_stream();
    let body = events.map(move |event| {
        let _counted = &guard;
        let frame = Frame::new(event.message.text()).event("message");
        match event_ids.then(|| event.id.to_string()) {
            Some(id) => sse_body::frame(frame.id(&id)),
            None => sse_body::frame(frame),
        }
    });
    let body = stream::iter(prelude).chain(body);
    let body = match stop {
        Some(stop) => body.take_until(stop.cancelled_owned()).boxed(),
        None => body.boxed(),
    };
    compact_headers(sse_body::response(body, app.settings.keep_alive))
}

/// Moves a response's headers into a map sized for them. hyper keeps the last response's header
/// map on its connection for reuse, so for a stream that stays open this map is held for the
/// connection's life; the default-sized one is several times larger than two headers need.
fn compact_headers(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let mut headers = HeaderMap::with_capacity(parts.headers.len());
    headers.extend(parts.headers.drain());
    parts.headers = headers;
    Response::from_parts(parts, body)
}
