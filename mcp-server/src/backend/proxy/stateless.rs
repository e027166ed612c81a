//! Stateless (2026-07-28) requests through the proxy: each is one POST to a Streamable HTTP
//! upstream, with the request's protocol version and mirrored headers, whose answer streams
//! back as it arrives. A legacy upstream has no stateless revision, so the proxy then offers
//! none either.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::Proxy;
use super::http::{UpstreamError, header_value};
use super::session::Upstream;
use super::streamable::Streamable;
use crate::backend::pending::failure;
use crate::backend::{CHANNEL_DEPTH, ChannelOutlet, Outbound, Outlet, Stateless};
use crate::message::Message;
use crate::message::envelope::mirrored_values;
use crate::oauth::Identity;
use crate::transport::headers::{METHOD, NAME};

impl Stateless for Proxy {
    fn answer_one(
        self: Arc<Self>,
        request: Message,
        identity: Option<Arc<Identity>>,
    ) -> mpsc::UnboundedReceiver<Outbound> {
        let (outlet, answers) = ChannelOutlet::new();
        tokio::spawn(async move {
            let (Some(id), Some(method)) = (request.id().cloned(), request.method()) else {
                return;
            };
            let (version, name) = mirrored_values(method, &request.params());
            let mut mirrored: Vec<(&'static str, _)> = header_value(method)
                .map(|m| (METHOD, m))
                .into_iter()
                .collect();
            mirrored.extend(name.as_deref().and_then(header_value).map(|n| (NAME, n)));
            let link = Streamable::stateless(
                Arc::clone(&self.http),
                self.uri.clone(),
                version.as_deref().and_then(header_value),
                mirrored,
            );
            let (events, mut from_upstream) = mpsc::channel(CHANNEL_DEPTH);
            let exchange = tokio::spawn(link.exchange(request, identity, events));
            let fail = |error: UpstreamError| {
                tracing::warn!(%error, "a stateless request to the upstream server failed");
                self.metrics.count_upstream_failure(error.reason());
                outlet.send(failure(id.clone(), error.to_string(), error.reason()));
            };
            let limit = self.config.request_timeout;
            let relayed = tokio::time::timeout(limit, async {
                while let Some(event) = from_upstream.recv().await {
                    match event {
                        Upstream::Message { message, via } => outlet.send(Outbound {
                            message,
                            related: via,
                        }),
                        Upstream::Failed { error, .. } | Upstream::Gone(error) => fail(error),
                    }
                }
            })
            .await;
            if relayed.is_err() {
                exchange.abort();
                fail(UpstreamError::Timeout(limit));
            }
            outlet.closed();
        });
        answers
    }
}
