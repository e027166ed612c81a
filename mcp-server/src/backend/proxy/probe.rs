//! The readiness handshake with the upstream: `initialize`, `notifications/initialized`, then
//! the session is ended (DELETE, or the legacy stream dropped). In `auto` mode it also finds
//! the transport: Streamable HTTP unless the upstream refuses it with 400, 404 or 405, as the
//! specification's backward-compatibility rules say.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::http::UpstreamError;
use super::legacy::Legacy;
use super::session::Upstream;
use super::streamable::Streamable;
use super::{Proxy, Transport};
use crate::backend::CHANNEL_DEPTH;
use crate::backend::readiness::{answers_probe, probe_initialize};
use crate::config::UpstreamTransport;
use crate::message::Message;

/// Completes one handshake within the handshake timeout; says which transport worked.
pub async fn handshake(proxy: &Proxy) -> Result<Transport, UpstreamError> {
    let limit = proxy.config.handshake_timeout;
    tokio::time::timeout(limit, detect(proxy))
        .await
        .unwrap_or(Err(UpstreamError::Timeout(limit)))
}

async fn detect(proxy: &Proxy) -> Result<Transport, UpstreamError> {
    match proxy.config.transport {
        UpstreamTransport::Streamable => streamable(proxy).await,
        UpstreamTransport::Sse => legacy(proxy).await,
        UpstreamTransport::Auto => match streamable(proxy).await {
            Err(UpstreamError::Status(s)) if matches!(s.as_u16(), 400 | 404 | 405) => {
                legacy(proxy).await
            }
            other => other,
        },
    }
}

fn initialized() -> Message {
    Message::notification("notifications/initialized", serde_json::json!({}))
}

/// An `initialize` answer must be a result, not an error.
fn check_answer(answer: &Message) -> Result<(), UpstreamError> {
    match answer.result() {
        Some(_) => Ok(()),
        None => Err(UpstreamError::Protocol(
            "initialize was answered with an error",
        )),
    }
}

async fn streamable(proxy: &Proxy) -> Result<Transport, UpstreamError> {
    let link = Streamable::new(Arc::clone(&proxy.http), proxy.uri.clone(), None);
    let (events, mut from_upstream) = mpsc::channel(CHANNEL_DEPTH);
    let exchange = Arc::clone(&link).exchange(probe_initialize(), None, events);
    let answered = async {
        while let Some(event) = from_upstream.recv().await {
            match event {
                Upstream::Message { message, .. } if answers_probe(&message) => return Ok(message),
                Upstream::Message { .. } => {}
                Upstream::Failed { error, .. } | Upstream::Gone(error) => return Err(error),
            }
        }
        Err(UpstreamError::Protocol("initialize was not answered"))
    };
    let ((), answer) = tokio::join!(exchange, answered);
    check_answer(&answer?)?;
    link.notify(&initialized(), None).await?;
    link.close().await;
    Ok(Transport::Streamable)
}

async fn legacy(proxy: &Proxy) -> Result<Transport, UpstreamError> {
    let (link, mut stream) =
        Legacy::connect(Arc::clone(&proxy.http), &proxy.config.upstream, None).await?;
    link.post(&probe_initialize(), None).await?;
    let answer = loop {
        match stream.next_message().await? {
            Some(message) if answers_probe(&message) => break message,
            Some(_) => {}
            None => return Err(UpstreamError::Broken),
        }
    };
    check_answer(&answer)?;
    link.post(&initialized(), None).await?;
    // Dropping the stream ends the upstream session.
    Ok(Transport::Legacy)
}
