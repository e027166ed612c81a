//! Accepting connections and serving HTTP/1.1 on each with hyper's connection builder directly.
//!
//! `axum::serve` goes through hyper-util's HTTP/1-or-2 builder, whose per-connection future and
//! buffers are sized for both protocols; an MCP server holding thousands of idle SSE streams pays
//! that for every stream. Serving HTTP/1.1 only (the protocol every MCP client speaks here; axum
//! is built without HTTP/2) keeps each connection to what HTTP/1.1 needs. See BENCHMARKS.md.
//!
//! Connections are also where a hostile client is cheapest to stop: each one must send its
//! request header within a deadline, and at most `max_connections` are served at once.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Pause after a failed `accept` (out of file descriptors, usually) before trying again, so the
/// loop does not spin while connections close.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Largest request head (request line and headers) a connection may buffer; larger ones get 431.
/// hyper's default (about 400 KiB) would let each of thousands of connections hold that much.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// What one client may cost at the connection level.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// Time to send a complete request head, counted from when the server starts waiting for
    /// one: on a new connection and after each response. It therefore also closes keep-alive
    /// connections idle for that long. A response being sent (an SSE stream) is never cut by it.
    pub header_read_timeout: Duration,
    /// Connections served at once; further ones wait in the listen backlog until one closes.
    pub max_connections: usize,
}

/// Serves `router` on every connection `listener` accepts until `shutdown` completes, then stops
/// accepting, asks each open connection to finish its current request and close, and returns
/// once all have closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = http1::Builder::new();
    builder
        .keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_HEAD_BYTES);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        // A free slot first: while all are taken, new connections wait in the kernel's backlog
        // rather than costing memory here.
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let service = TowerToHyperService::new(router.clone());
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
