//! Streamable HTTP at `/mcp` (2025-03-26, 2025-06-18, 2025-11-25): POST carries client messages
//! and answers them as JSON or SSE, GET opens the stream for server-initiated messages (or resumes
//! a broken one with `Last-Event-ID`), DELETE ends the session.
//!
//! Stateless 2026-07-28 requests share the endpoint and are handed to [`super::stateless`].

use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

use super::headers::{self, EVENT_STREAM, JSON};
use super::reply::{self, Answer, Rejection, rpc_error};
use super::session::{Session, SessionError, TransportKind};
use super::{AppState, stateless};
use crate::message::jsonrpc::{INTERNAL_ERROR, INVALID_REQUEST};
use crate::message::{Payload, Revision, RpcError, envelope, parse_body};
use crate::oauth::Grant;

/// How long an `initialize` may take (a bridged child has to start and answer).
const INITIALIZE_TIMEOUT: Duration = Duration::from_secs(60);

fn bad_request(message: impl Into<String>) -> Response {
    invalid(StatusCode::BAD_REQUEST, message).into_response()
}

fn invalid(status: StatusCode, message: impl Into<String>) -> Rejection {
    Rejection::new(status, RpcError::new(INVALID_REQUEST, message))
}

pub async fn post(
    State(app): State<AppState>,
    grant: Option<Extension<Grant>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let grant = grant.as_deref();
    if !headers::is_json_body(&headers) {
        return rpc_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            RpcError::new(INVALID_REQUEST, "Content-Type must be application/json"),
        );
    }
    if !(headers::accepts(&headers, JSON) && headers::accepts(&headers, EVENT_STREAM)) {
        return rpc_error(
            StatusCode::NOT_ACCEPTABLE,
            RpcError::new(
                INVALID_REQUEST,
                "Accept must include application/json and text/event-stream",
            ),
        );
    }
    let payload = match parse_body(&body) {
        Ok(p) => p,
        Err(e) => return rpc_error(StatusCode::BAD_REQUEST, e),
    };
    for method in payload.request_methods() {
        app.metrics.count_rpc(method);
    }
    let version = headers::text(&headers, headers::PROTOCOL_VERSION);
    let session_id = headers::text(&headers, headers::SESSION_ID);
    if is_stateless(version, session_id, &payload) {
        return stateless::post(&app, &headers, payload, grant).await;
    }
    if payload
        .messages()
        .iter()
        .any(|m| m.method() == Some("initialize"))
    {
        return initialize(&app, payload, grant).await;
    }
    let session = match find_session(&app, &headers) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    if payload.is_batch() && !session.allows_batches() {
        return bad_request(format!(
            "JSON-RPC batches are not allowed in protocol revision {}",
            session.revision().unwrap_or_default()
        ));
    }
    session.touch();
    deliver(&app, &session, payload, grant).await
}

/// A request is stateless when it names the stateless revision in its header, or carries a
/// per-request protocol version in `_meta` without belonging to a session.
fn is_stateless(version: Option<&str>, session: Option<&str>, payload: &Payload) -> bool {
    if version
        .and_then(Revision::parse)
        .is_some_and(Revision::is_stateless)
    {
        return true;
    }
    session.is_none()
        && !payload.is_batch()
        && payload
            .messages()
            .iter()
            .all(|m| m.method() != Some("initialize") && envelope::names_a_version(&m.params()))
}

/// Looks up the session a request names and checks its protocol-version header.
fn find_session(app: &AppState, headers: &HeaderMap) -> Result<Arc<Session>, Rejection> {
    let Some(id) = headers::text(headers, headers::SESSION_ID) else {
        return Err(invalid(
            StatusCode::BAD_REQUEST,
            "Mcp-Session-Id header is required",
        ));
    };
    let Some(session) = app
        .sessions
        .get(id)
        .filter(|s| s.kind == TransportKind::Streamable)
    else {
        return Err(invalid(
            StatusCode::NOT_FOUND,
            "unknown or ended session; initialize a new one",
        ));
    };
    if let Some(version) = headers::text(headers, headers::PROTOCOL_VERSION) {
        // Without the header a client is taken to speak 2025-03-26, as the transport specifies.
        // Only unknown revisions are refused: what the session allows (batches) follows the
        // negotiated revision, so a client naming another supported one changes nothing.
        if Revision::parse(version).is_none() {
            return Err(invalid(
                StatusCode::BAD_REQUEST,
                format!(
                    "unsupported MCP-Protocol-Version {version:?}; supported: {}",
                    crate::message::version::all_names().join(", ")
                ),
            ));
        }
    }
    Ok(session)
}

/// Hands messages to the session's backend and answers with whatever the requests produce.
async fn deliver(
    app: &AppState,
    session: &Session,
    payload: Payload,
    grant: Option<&Grant>,
) -> Response {
    let batch = payload.is_batch();
    let ids = payload.request_ids();
    let messages = payload.into_messages();
    // The stream is opened before anything is sent, so no answer can arrive ahead of it.
    let stream = if ids.is_empty() {
        None
    } else {
        match session.open_request_stream(&ids) {
            Ok(stream) => Some(stream),
            Err(e @ SessionError::DuplicateId(_)) => return bad_request(e.to_string()),
            Err(SessionError::Gone) => return gone(),
        }
    };
    session.screen_tool_lists(&messages, grant.and_then(|g| g.screen.as_ref()));
    let identity = grant.map(|g| &g.identity);
    for message in messages {
        if session.send(message, identity).await.is_err() {
            return gone();
        }
    }
    match stream {
        // Only notifications and responses: accepted, nothing to answer.
        None => StatusCode::ACCEPTED.into_response(),
        Some(stream) => {
            let shape = Answer {
                expected: ids.len(),
                batch,
                status_from_error: false,
                event_ids: true,
                prime: stream.prime,
            };
            let answered = reply::answer(app, reply::channel_stream(stream.events), shape).await;
            if answered.as_json {
                session.forget_stream(stream.stream);
            }
            answered.response
        }
    }
}

fn gone() -> Response {
    rpc_error(
        StatusCode::NOT_FOUND,
        RpcError::new(INVALID_REQUEST, "the session has ended"),
    )
}

/// Starts a session: the backend answers `initialize` and the answer carries the session id.
async fn initialize(app: &AppState, payload: Payload, grant: Option<&Grant>) -> Response {
    let Payload::Single(init) = payload else {
        return bad_request("initialize must not be part of a JSON-RPC batch");
    };
    let Some(id) = init.id().cloned() else {
        return bad_request("initialize must be a request");
    };
    let identity = grant.map(|g| &g.identity);
    let started = super::start_session(
        app,
        TransportKind::Streamable,
        Some(id.clone()),
        identity.cloned(),
    );
    let session = match started.await {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let answered = async {
        let stream = session
            .open_request_stream(std::slice::from_ref(&id))
            .ok()?;
        session.send(init, identity).await.ok()?;
        let mut events = stream.events;
        // What the server sends before its answer (a ping, a log message, progress) arrives on
        // this stream first; the answer is the response carrying the request's id.
        let answer = loop {
            let event = events.next().await?;
            if event.message.is_response() && event.message.id() == Some(&id) {
                break event;
            }
            tracing::debug!(session = %session.id, "dropping a message sent before the initialize answer");
        };
        // Answered as plain JSON: nothing of this stream can be resumed.
        session.forget_stream(stream.stream);
        Some(answer)
    };
    let answer = tokio::time::timeout(INITIALIZE_TIMEOUT, answered)
        .await
        .ok()
        .flatten();
    let Some(answer) = answer else {
        app.sessions.remove(&session.id);
        return rpc_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            RpcError::new(INTERNAL_ERROR, "the server did not answer initialize").with_id(Some(id)),
        );
    };
    let negotiated = answer.message.result().and_then(|r| {
        r.get("protocolVersion")
            .and_then(|v| v.as_str().map(str::to_owned))
    });
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, HeaderValue::from_static(JSON))],
        answer.message.text().to_owned(),
    )
        .into_response();
    match negotiated {
        Some(version) => {
            session.set_revision(&version);
            if let Ok(value) = HeaderValue::from_str(&session.id) {
                response.headers_mut().insert(headers::SESSION_ID, value);
            }
            tracing::info!(session = %session.id, %version, "session started");
        }
        // A failed initialize leaves no session behind.
        None => {
            app.sessions.remove(&session.id);
        }
    }
    response
}

/// GET opens the standalone stream, or resumes a broken stream from `Last-Event-ID`.
pub async fn get(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if !headers::accepts(&headers, EVENT_STREAM) {
        return rpc_error(
            StatusCode::NOT_ACCEPTABLE,
            RpcError::new(INVALID_REQUEST, "Accept must include text/event-stream"),
        );
    }
    if stateless_header(&headers) {
        return stateless::method_not_allowed();
    }
    let session = match find_session(&app, &headers) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let last_event = match headers::text(&headers, headers::LAST_EVENT_ID) {
        None => None,
        Some(text) => match text.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => return bad_request("Last-Event-ID is not an event id of this server"),
        },
    };
    session.touch();
    let rx = match last_event {
        None => session.attach_stream(),
        Some(last) => match session.resume_stream(last) {
            Ok(rx) => rx,
            Err(e) => return bad_request(e.to_string()),
        },
    };
    reply::event_stream(
        &app,
        rx,
        Some(app.lifecycle.streams_closing.clone()),
        true,
        None,
    )
}

/// DELETE ends the session.
pub async fn delete(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if stateless_header(&headers) {
        return stateless::method_not_allowed();
    }
    let session = match find_session(&app, &headers) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    app.sessions.remove(&session.id);
    StatusCode::NO_CONTENT.into_response()
}

/// Whether the request names the stateless revision (it then belongs to no session).
pub fn stateless_header(headers: &HeaderMap) -> bool {
    headers::text(headers, headers::PROTOCOL_VERSION)
        .and_then(Revision::parse)
        .is_some_and(Revision::is_stateless)
}
