//! Forwarding a request to the replica that owns its session, and streaming the owner's answer
//! back as it arrives (an SSE stream stays open for as long as both sides keep it open).

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::uri::{PathAndQuery, Scheme};
use axum::http::{Response, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::FORWARDED;

/// Time to connect to the owner: a replica in the same cluster answers in milliseconds, so a
/// longer wait means it is gone.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Time for the owner's response head. Every answer starts promptly (a slow one turns into an SSE
/// stream), so this only bounds a stalled owner.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(60);
/// Idle connections to owners kept for reuse.
const IDLE_PER_OWNER: usize = 16;

/// Why a request did not reach its owner. Each is one value of the forwards metric's label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ForwardError {
    #[error("the session's owner did not accept a connection in time")]
    ConnectTimeout,
    #[error("the session's owner refused the connection")]
    ConnectFailed,
    #[error("the connection to the session's owner failed before it answered")]
    Broken,
    #[error("the session's owner did not answer in time")]
    HeadTimeout,
}

impl ForwardError {
    pub fn label(self) -> &'static str {
        match self {
            Self::ConnectTimeout => "connect_timeout",
            Self::ConnectFailed => "connect_failed",
            Self::Broken => "broken",
            Self::HeadTimeout => "head_timeout",
        }
    }
}

/// An HTTP/1.1 client to owners, with a connection pool.
#[derive(Clone)]
pub struct Forwarder {
    client: Client<HttpConnector, Body>,
}

impl Forwarder {
    /// A forwarder keeping idle connections for `idle` at most. That must be shorter than the
    /// time owners keep an idle connection open: a request sent on a connection the owner is
    /// just closing fails, and its session would be reported gone.
    pub fn new(idle: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(IDLE_PER_OWNER)
            .pool_idle_timeout(idle)
            .build(connector);
        Self { client }
    }

    /// Sends `request` to `owner` as it came (minus hop-by-hop headers, plus the marker) and
    /// returns the owner's response with its body still streaming.
    pub async fn forward(
        &self,
        owner: SocketAddr,
        request: Request,
    ) -> Result<Response<Body>, ForwardError> {
        let (mut parts, body) = request.into_parts();
        let path = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        parts.uri = Uri::builder()
            .scheme(Scheme::HTTP)
            .authority(owner.to_string())
            .path_and_query(path)
            .build()
            .map_err(|_| ForwardError::ConnectFailed)?;
        strip_hop_by_hop(&mut parts.headers);
        parts
            .headers
            .insert(FORWARDED, HeaderValue::from_static("1"));
        let sent = self.client.request(Request::from_parts(parts, body));
        let response = match tokio::time::timeout(HEAD_TIMEOUT, sent).await {
            Err(_) => return Err(ForwardError::HeadTimeout),
            Ok(Err(e)) => return Err(classify(&e)),
            Ok(Ok(response)) => response,
        };
        let (mut parts, body) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        Ok(Response::from_parts(parts, Body::new(body)))
    }
}

fn classify(error: &hyper_util::client::legacy::Error) -> ForwardError {
    if !error.is_connect() {
        return ForwardError::Broken;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return ForwardError::ConnectTimeout;
        }
        source = e.source();
    }
    ForwardError::ConnectFailed
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1), including any the
/// `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
    ] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_go_and_end_to_end_ones_stay() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("connection", "close, x-private"),
            ("x-private", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("authorization", "Bearer t"),
            ("mcp-session-id", "m1.x"),
            ("last-event-id", "7"),
        ] {
            headers.insert(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        strip_hop_by_hop(&mut headers);
        let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["authorization", "last-event-id", "mcp-session-id"]);
    }

    #[tokio::test]
    async fn a_closed_port_is_a_connect_failure() {
        // Bound and dropped: nothing listens there any more.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let request = Request::get("/mcp").body(Body::empty()).unwrap();
        let result = Forwarder::new(Duration::from_secs(1))
            .forward(port, request)
            .await;
        assert_eq!(result.err(), Some(ForwardError::ConnectFailed));
    }
}
