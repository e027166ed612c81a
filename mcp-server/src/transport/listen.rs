//! Accepting connections and serving HTTP/1.1 on each with hyper's connection builder directly.
//!
//! `axum::serve` goes through hyper-util's HTTP/1-or-2 builder, whose per-connection future and
//! buffers are sized for both protocols; an MCP server holding thousands of idle SSE streams pays
//! that for every stream. Serving HTTP/1.1 only (the protocol every MCP client speaks here; axum
//! is built without HTTP/2) keeps each connection to what HTTP/1.1 needs. See BENCHMARKS.md.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

/// Pause after a failed `accept` (out of file descriptors, usually) before trying again, so the
/// loop does not spin while connections close.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `router` on every connection `listener` accepts until `shutdown` completes, then stops
/// accepting, asks each open connection to finish its current request and close, and returns
/// once all have closed.
pub async fn serve(listener: TcpListener, router: Router, shutdown: impl Future<Output = ()>) {
    let mut builder = http1::Builder::new();
    builder.keep_alive(true);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
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
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
