//! The 2024-11-05 HTTP+SSE transport: `GET /sse` opens a session whose one stream carries every
//! server message, announced by an `endpoint` event naming `POST /messages?sessionId=...`, where
//! the client sends its messages. The session lives as long as that stream.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use mcp_wire::sse::Frame;
use serde::Deserialize;

use super::AppState;
use super::headers::{self, EVENT_STREAM};
use super::reply::{self, rpc_error};
use super::session::TransportKind;
use super::sessions::Sessions;
use super::sse_body;
use crate::message::jsonrpc::INVALID_REQUEST;
use crate::message::{RpcError, parse_body};
use crate::oauth::Grant;

/// Ends the session when its stream is dropped (the client disconnected or the server stops).
struct EndWithStream {
    sessions: Arc<Sessions>,
    id: String,
}

impl Drop for EndWithStream {
    fn drop(&mut self) {
        self.sessions.remove(&self.id);
    }
}

pub async fn connect(
    State(app): State<AppState>,
    grant: Option<Extension<Grant>>,
    headers: HeaderMap,
) -> Response {
    if !headers::accepts(&headers, EVENT_STREAM) {
        return rpc_error(
            StatusCode::NOT_ACCEPTABLE,
            RpcError::new(INVALID_REQUEST, "Accept must include text/event-stream"),
        );
    }
    let identity = grant.map(|g| std::sync::Arc::clone(&g.identity));
    let session = match super::start_session(&app, TransportKind::Legacy, None, identity).await {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    tracing::info!(session = %session.id, "legacy SSE session started");
    let rx = session.attach_stream();
    let guard = EndWithStream {
        sessions: Arc::clone(&app.sessions),
        id: session.id.clone(),
    };
    let events = rx.map(move |event| {
        let _ends_session = &guard;
        event
    });
    let endpoint = format!("/messages?sessionId={}", session.id);
    let endpoint = sse_body::frame(Frame::new(&endpoint).event("endpoint"));
    reply::event_stream(
        &app,
        events,
        Some(app.lifecycle.streams_closing.clone()),
        false,
        Some(endpoint),
    )
}

#[derive(Deserialize)]
pub struct Target {
    #[serde(rename = "sessionId")]
    session_id: Option<String>,
}

/// The session a `POST /messages` names in its query string.
pub fn session_in(uri: &axum::http::Uri) -> Option<String> {
    Query::<Target>::try_from_uri(uri).ok()?.0.session_id
}

pub async fn post(
    State(app): State<AppState>,
    grant: Option<Extension<Grant>>,
    Query(target): Query<Target>,
    body: Bytes,
) -> Response {
    let Some(id) = target.session_id else {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            RpcError::new(INVALID_REQUEST, "sessionId query parameter is required"),
        );
    };
    let Some(session) = app
        .sessions
        .get(&id)
        .filter(|s| s.kind == TransportKind::Legacy)
    else {
        return rpc_error(
            StatusCode::NOT_FOUND,
            RpcError::new(INVALID_REQUEST, "unknown or ended session"),
        );
    };
    let payload = match parse_body(&body) {
        Ok(p) => p,
        Err(e) => return rpc_error(StatusCode::BAD_REQUEST, e),
    };
    for method in payload.request_methods() {
        app.metrics.count_rpc(method);
    }
    let ids = payload.request_ids();
    let messages = payload.into_messages();
    if let Err(e) = session.expect_on_standalone(&ids) {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            RpcError::new(INVALID_REQUEST, e.to_string()),
        );
    }
    session.touch();
    session.screen_tool_lists(&messages, grant.as_ref().and_then(|g| g.screen.as_ref()));
    let identity = grant.as_ref().map(|g| &g.identity);
    for message in messages {
        if session.send(message, identity).await.is_err() {
            return rpc_error(
                StatusCode::NOT_FOUND,
                RpcError::new(INVALID_REQUEST, "the session has ended"),
            );
        }
    }
    (StatusCode::ACCEPTED, "Accepted").into_response()
}
