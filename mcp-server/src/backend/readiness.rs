//! Readiness of a backend that serves another program (a bridged command, a proxied upstream):
//! probed in the background, with backoff, until one handshake succeeds.

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::message::Message;

/// Longest wait between two probes.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

#[derive(Default)]
pub struct Readiness(AtomicBool);

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Runs `probe` until it succeeds (then the backend is ready) or `shutdown`. `what` and
    /// `name` say in the logs what is probed (`"bridged server"`, and its command).
    pub fn probe_until_ready<P, F, E>(
        self: &Arc<Self>,
        shutdown: CancellationToken,
        what: &'static str,
        name: String,
        mut probe: P,
    ) where
        P: FnMut() -> F + Send + 'static,
        F: Future<Output = Result<(), E>> + Send,
        E: Display + Send,
    {
        let readiness = Arc::clone(self);
        tokio::spawn(async move {
            let mut delay = Duration::from_millis(200);
            loop {
                match probe().await {
                    Ok(()) => {
                        tracing::info!(server = %name, "{what} answered its handshake");
                        readiness.0.store(true, Ordering::Relaxed);
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, server = %name, "{what} not ready");
                        tokio::select! {
                            () = shutdown.cancelled() => return,
                            () = tokio::time::sleep(delay) => {}
                        }
                        delay = (delay * 2).min(MAX_BACKOFF);
                    }
                }
            }
        });
    }
}

/// The id of the probe's `initialize` request.
const PROBE_ID: &str = "mcp-server-readiness";

/// The `initialize` request a probe sends.
pub fn probe_initialize() -> Message {
    Message::from_value(&json!({
        "jsonrpc": "2.0",
        "id": PROBE_ID,
        "method": "initialize",
        "params": {
            "protocolVersion": crate::message::version::LATEST_HANDSHAKE.as_str(),
            "capabilities": {},
            "clientInfo": { "name": PROBE_ID, "version": env!("CARGO_PKG_VERSION") },
        },
    }))
}

/// Whether `message` answers the probe's `initialize`.
pub fn answers_probe(message: &Message) -> bool {
    message.is_response()
        && message
            .id()
            .is_some_and(|id| id.as_json().trim_matches('"') == PROBE_ID)
}
