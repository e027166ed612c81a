//! Proxy mode: the front door of an MCP server that already speaks HTTP, in the same pod.
//!
//! Each client session opens one upstream session, over Streamable HTTP or the legacy HTTP+SSE
//! transport (found by the readiness probe in `auto` mode). Messages pass through unchanged in
//! both directions; only what HTTP carries is the proxy's own: session ids, protocol-version
//! headers and credentials (the client's `Authorization` never reaches the upstream, as MCP
//! forbids token passthrough, unless `--oauth-pass-token` says so; with OAuth the upstream
//! learns who called from [`crate::oauth::identity`]'s headers instead). When the upstream forgets a session or loses its stream for
//! good, the client's session ends too, so the client gets 404 and starts a new one.

pub mod http;
pub mod legacy;
pub mod probe;
pub mod session;
pub mod stateless;
pub mod streamable;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hyper::Uri;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::readiness::Readiness;
use super::{BackendError, CHANNEL_DEPTH, Outlet};
use crate::backend::Inbound;
use crate::config::UpstreamTransport;
use crate::metrics::Metrics;
use crate::oauth::Identity;
use http::{Bounds, UpstreamError, UpstreamHttp};

/// Where the upstream is and how to treat it.
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    pub upstream: Url,
    pub transport: UpstreamTransport,
    pub bounds: Bounds,
    /// How long a request may go unanswered (progress restarts the clock).
    pub request_timeout: Duration,
    /// How long the readiness probe's handshake may take.
    pub handshake_timeout: Duration,
}

/// The transport the upstream speaks, once known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Streamable,
    Legacy,
}

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("the upstream URL must be http:// (a server in the same pod), not {0}://")]
    Scheme(String),
    #[error("the upstream URL {url} cannot be used: {source}")]
    Url { url: Url, source: UpstreamError },
}

pub struct Proxy {
    config: ProxyConfig,
    uri: Uri,
    http: Arc<UpstreamHttp>,
    /// Set by the first successful probe.
    transport: OnceLock<Transport>,
    ready: Arc<Readiness>,
    metrics: Arc<Metrics>,
}

impl Proxy {
    pub fn new(config: ProxyConfig, metrics: Arc<Metrics>) -> Result<Arc<Self>, ProxyError> {
        if config.upstream.scheme() != "http" {
            return Err(ProxyError::Scheme(config.upstream.scheme().to_owned()));
        }
        let uri = legacy::to_uri(&config.upstream).map_err(|source| ProxyError::Url {
            url: config.upstream.clone(),
            source,
        })?;
        let http = Arc::new(UpstreamHttp::new(config.bounds, Arc::clone(&metrics)));
        Ok(Arc::new(Self {
            config,
            uri,
            http,
            transport: OnceLock::new(),
            ready: Arc::default(),
            metrics,
        }))
    }

    pub fn is_ready(&self) -> bool {
        self.ready.is_ready()
    }

    /// Probes the upstream in the background until it completes a handshake, so `/readyz`
    /// reports ready only once the upstream really works; the probe also finds its transport.
    pub fn probe_until_ready(self: &Arc<Self>, shutdown: CancellationToken) {
        let proxy = Arc::clone(self);
        self.ready.probe_until_ready(
            shutdown,
            "upstream server",
            self.config.upstream.to_string(),
            move || {
                let proxy = Arc::clone(&proxy);
                async move {
                    let transport = probe::handshake(&proxy).await.inspect_err(|e| {
                        proxy.metrics.count_upstream_failure(e.reason());
                    })?;
                    tracing::info!(?transport, "upstream transport");
                    let _ = proxy.transport.set(transport);
                    Ok::<_, UpstreamError>(())
                }
            },
        );
    }

    /// Whether stateless requests can be passed on: only to a Streamable HTTP upstream.
    pub fn serves_stateless(&self) -> bool {
        self.transport.get() == Some(&Transport::Streamable)
    }

    /// Starts the session's conversation with the upstream for `identity` (who started it);
    /// the returned sender feeds it until `end`.
    pub fn open(
        self: &Arc<Self>,
        outlet: Arc<dyn Outlet>,
        end: CancellationToken,
        identity: Option<Arc<Identity>>,
    ) -> Result<mpsc::Sender<Inbound>, BackendError> {
        let transport = *self.transport.get().ok_or(BackendError::UpstreamNotReady)?;
        let (to_backend, inbox) = mpsc::channel(CHANNEL_DEPTH);
        tokio::spawn(session::run(
            Arc::clone(self),
            transport,
            outlet,
            inbox,
            end,
            identity,
        ));
        Ok(to_backend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> ProxyConfig {
        let second = Duration::from_secs(1);
        ProxyConfig {
            upstream: Url::parse(url).unwrap(),
            transport: UpstreamTransport::Auto,
            bounds: Bounds {
                connect: second,
                idle: second,
                max_message_bytes: 1024,
            },
            request_timeout: second,
            handshake_timeout: second,
        }
    }

    #[tokio::test]
    async fn only_plain_http_upstreams_are_accepted_and_none_serves_before_its_handshake() {
        let metrics = Arc::new(Metrics::new());
        assert!(matches!(
            Proxy::new(config("https://127.0.0.1:3000/mcp"), Arc::clone(&metrics)),
            Err(ProxyError::Scheme(s)) if s == "https"
        ));
        let proxy = Proxy::new(config("http://127.0.0.1:3000/mcp"), metrics).unwrap();
        assert!(!proxy.is_ready());
        assert!(!proxy.serves_stateless());
        let (outlet, _) = crate::backend::ChannelOutlet::new();
        assert!(matches!(
            proxy.open(outlet, CancellationToken::new(), None),
            Err(BackendError::UpstreamNotReady)
        ));
    }
}
