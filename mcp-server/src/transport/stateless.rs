//! Stateless 2026-07-28 requests on `/mcp`: one POST, one request, no session. Each request is
//! admitted by its envelope (see [`crate::message::envelope`]) and answered by a backend that
//! needs no session ([`crate::backend::Stateless`]: the built-in one, or a proxy in front of a
//! Streamable HTTP upstream); a bridge has none and says which revisions it does speak.

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use futures::stream;

use super::AppState;
use super::headers;
use super::reply::{self, Answer, rpc_error};
use super::session::Event;
use crate::message::envelope::{self, MirroredHeaders};
use crate::message::jsonrpc::INVALID_REQUEST;
use crate::message::version::HANDSHAKE_REVISIONS;
use crate::message::{Payload, RpcError};
use crate::oauth::Grant;

pub async fn post(
    app: &AppState,
    headers: &HeaderMap,
    payload: Payload,
    grant: Option<&Grant>,
) -> Response {
    let Payload::Single(message) = payload else {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            RpcError::new(
                INVALID_REQUEST,
                "JSON-RPC batches are not allowed in protocol revision 2026-07-28",
            ),
        );
    };
    let (Some(id), Some(method)) = (message.id().cloned(), message.method()) else {
        // Notifications and stray responses have nothing to act on without a session.
        return StatusCode::ACCEPTED.into_response();
    };
    let params = message.params();
    let mirrored = MirroredHeaders {
        protocol_version: headers::text(headers, headers::PROTOCOL_VERSION),
        method: headers::text(headers, headers::METHOD),
        name: headers::text(headers, headers::NAME),
    };
    let Some(backend) = app.backend.stateless() else {
        let requested = params
            .pointer(&format!(
                "/_meta/{}",
                envelope::PROTOCOL_VERSION_KEY.replace('/', "~1")
            ))
            .and_then(|v| v.as_str())
            .or(mirrored.protocol_version)
            .unwrap_or_default();
        return rpc_error(
            StatusCode::BAD_REQUEST,
            envelope::unsupported_version(requested, &HANDSHAKE_REVISIONS).with_id(Some(id)),
        );
    };
    if let Err(e) = envelope::admit(method, &params, mirrored, envelope::stateless_revisions()) {
        return rpc_error(StatusCode::BAD_REQUEST, e.with_id(Some(id)));
    }
    // The caller sees only the tools it may call (see `Session::route` for sessions).
    let screen = grant
        .and_then(|g| g.screen.clone())
        .filter(|_| method == "tools/list");
    let mut answers = backend.answer_one(message, grant.map(|g| Arc::clone(&g.identity)));
    let mut next_id = 0;
    let events = stream::poll_fn(move |cx| answers.poll_recv(cx))
        .map(move |out| {
            next_id += 1;
            let message = match &screen {
                Some(screen) if out.message.is_response() => screen.apply(out.message),
                _ => out.message,
            };
            Event {
                id: next_id,
                message,
            }
        })
        .boxed();
    let shape = Answer {
        expected: 1,
        batch: false,
        status_from_error: true,
        // The stateless revision has no resumption, so events need no ids.
        event_ids: false,
        prime: None,
    };
    reply::answer(app, events, shape).await.response
}

/// The stateless revision has no GET stream and no sessions to delete.
pub fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::ALLOW, HeaderValue::from_static("POST"))],
    )
        .into_response()
}
