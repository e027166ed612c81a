//! Reading request bodies whole, within a deadline. MCP bodies are buffered before parsing
//! anyway; reading them here, once, bounds how long a client may take to send one (a body sent a
//! byte at a time would otherwise hold its connection and buffer for as long as it likes). The
//! size limit is applied outside this layer and reported as 413 here when a body exceeds it.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use http_body_util::{BodyExt, LengthLimitError};

use super::reply::rpc_error;
use crate::message::RpcError;
use crate::message::jsonrpc::INVALID_REQUEST;

/// Reads the body within `limit` and hands the request on with the body in memory: 408 when it
/// takes longer, 413 when it is larger than the size limit, 400 when the connection fails.
pub async fn read_within(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    match tokio::time::timeout(limit, body.collect()).await {
        Ok(Ok(collected)) => {
            next.run(Request::from_parts(parts, Body::from(collected.to_bytes())))
                .await
        }
        Ok(Err(e)) if is_too_large(&e) => rpc_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            RpcError::new(INVALID_REQUEST, "the request body is too large"),
        ),
        Ok(Err(e)) => rpc_error(
            StatusCode::BAD_REQUEST,
            RpcError::new(
                INVALID_REQUEST,
                format!("the request body could not be read: {e}"),
            ),
        ),
        Err(_) => rpc_error(
            StatusCode::REQUEST_TIMEOUT,
            RpcError::new(
                INVALID_REQUEST,
                format!(
                    "the request body did not arrive within {} s",
                    limit.as_secs()
                ),
            ),
        ),
    }
}

fn is_too_large(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::post;
    use tower::ServiceExt as _;
    use tower_http::limit::RequestBodyLimitLayer;

    fn app(limit: Duration) -> Router {
        Router::new()
            .route(
                "/",
                post(|body: axum::body::Bytes| async move { body.len().to_string() }),
            )
            .layer(axum::middleware::from_fn_with_state(limit, read_within))
            .layer(RequestBodyLimitLayer::new(16))
    }

    async fn status(app: Router, body: Body) -> StatusCode {
        let request = Request::post("/").body(body).unwrap();
        app.oneshot(request).await.unwrap().status()
    }

    #[tokio::test]
    async fn a_complete_body_is_handed_on() {
        assert_eq!(
            status(app(Duration::from_secs(1)), Body::from("hello")).await,
            StatusCode::OK
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_never_ends_gets_408() {
        let never =
            Body::from_stream(futures::stream::pending::<Result<Vec<u8>, std::io::Error>>());
        assert_eq!(
            status(app(Duration::from_secs(30)), never).await,
            StatusCode::REQUEST_TIMEOUT
        );
    }

    #[tokio::test]
    async fn a_streamed_body_over_the_limit_gets_413() {
        let chunks = futures::stream::iter((0..4).map(|_| Ok::<_, std::io::Error>(vec![b'x'; 8])));
        assert_eq!(
            status(app(Duration::from_secs(1)), Body::from_stream(chunks)).await,
            StatusCode::PAYLOAD_TOO_LARGE
        );
    }
}
