//! One proxied session: client messages go up as they arrive, upstream messages come back to
//! the client's streams, and every client request ends answered: by the upstream, or by an
//! error (-32603) when the upstream fails, stays silent too long, or forgets the session.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use super::http::UpstreamError;
use super::legacy::{self, Legacy};
use super::streamable::Streamable;
use super::{Proxy, Transport};
use crate::backend::pending::{Pending, cancellation};
use crate::backend::{CHANNEL_DEPTH, Inbound, Outbound, Outlet};
use crate::message::{Message, RequestId};
use crate::oauth::Identity;

/// What the tasks talking to the upstream report to their session.
pub enum Upstream {
    /// A message from the upstream; `via` is the client request whose answer carried it.
    Message {
        message: Message,
        via: Option<RequestId>,
    },
    /// The exchange of `request` failed: it gets an error.
    Failed {
        request: RequestId,
        error: UpstreamError,
    },
    /// The upstream session is over (forgotten, or its stream lost for good).
    Gone(UpstreamError),
}

enum Link {
    Streamable(Arc<Streamable>),
    Legacy(Legacy),
}

struct ProxySession {
    proxy: Arc<Proxy>,
    outlet: Arc<dyn Outlet>,
    pending: Pending,
    /// Every task talking to the upstream for this session; they stop with it.
    tasks: JoinSet<()>,
    /// The POST exchange of each pending request (Streamable HTTP), stopped on timeout.
    exchanges: HashMap<RequestId, AbortHandle>,
    events: mpsc::Sender<Upstream>,
    /// Who started the session: named on the session's own requests to the upstream.
    owner: Option<Arc<Identity>>,
}

/// Runs a session, started by `owner`, until the client ends it (`end`) or the upstream does.
pub async fn run(
    proxy: Arc<Proxy>,
    transport: Transport,
    outlet: Arc<dyn Outlet>,
    mut inbox: mpsc::Receiver<Inbound>,
    end: CancellationToken,
    owner: Option<Arc<Identity>>,
) {
    let (events, mut upstream) = mpsc::channel(CHANNEL_DEPTH);
    let mut session = ProxySession {
        pending: Pending::new(proxy.config.request_timeout),
        proxy,
        outlet,
        tasks: JoinSet::new(),
        exchanges: HashMap::new(),
        events,
        owner,
    };
    let link = tokio::select! {
        () = end.cancelled() => return,
        link = session.connect(transport) => link,
    };
    let link = match link {
        Ok(link) => link,
        Err(error) => {
            tracing::warn!(%error, "could not open a session with the upstream server");
            session.proxy.metrics.count_upstream_failure(error.reason());
            session.outlet.closed();
            return;
        }
    };
    let gone = loop {
        let flow = tokio::select! {
            () = end.cancelled() => break None,
            m = inbox.recv() => match m {
                Some(m) => session.forward(&link, m.message, m.identity).await,
                None => break None,
            },
            Some(event) = upstream.recv() => session.on_upstream(event),
            id = session.pending.expired() => session.time_out(&link, id).await,
            Some(_) = session.tasks.join_next(), if !session.tasks.is_empty() => Ok(()),
        };
        if let Err(error) = flow {
            break Some(error);
        }
    };
    session.tasks.abort_all();
    match gone {
        Some(error) => {
            tracing::info!(%error, "the upstream ended the session");
            session.proxy.metrics.count_upstream_failure(error.reason());
            for id in session.pending.ids() {
                let failure = session.pending.fail(id, error.to_string(), error.reason());
                session.outlet.send(failure);
            }
        }
        None => {
            if let Link::Streamable(s) = &link {
                s.close().await;
            }
        }
    }
    session.outlet.closed();
}

impl ProxySession {
    async fn connect(&mut self, transport: Transport) -> Result<Link, UpstreamError> {
        let http = Arc::clone(&self.proxy.http);
        match transport {
            Transport::Streamable => Ok(Link::Streamable(Streamable::new(
                http,
                self.proxy.uri.clone(),
                self.owner.clone(),
            ))),
            Transport::Legacy => {
                let upstream = &self.proxy.config.upstream;
                let (link, stream) = Legacy::connect(http, upstream, self.owner.as_deref()).await?;
                self.tasks.spawn(legacy::relay(stream, self.events.clone()));
                Ok(Link::Legacy(link))
            }
        }
    }

    /// Sends a client message from `identity` up. Requests to a Streamable HTTP upstream run
    /// as tasks of their own (their answers may stream for long); other messages are sent in
    /// order, so that, for one, `notifications/initialized` arrives before the requests that
    /// follow it.
    async fn forward(
        &mut self,
        link: &Link,
        message: Message,
        identity: Option<Arc<Identity>>,
    ) -> Result<(), UpstreamError> {
        self.pending.track(&message);
        let sent = match link {
            Link::Streamable(s) => match message.id().cloned().filter(|_| message.is_request()) {
                Some(id) => {
                    let exchange = Arc::clone(s).exchange(message, identity, self.events.clone());
                    self.exchanges.insert(id, self.tasks.spawn(exchange));
                    return Ok(());
                }
                None => {
                    let sent = s.notify(&message, identity.as_deref()).await;
                    if sent.is_ok() && message.method() == Some("notifications/initialized") {
                        self.tasks.spawn(Arc::clone(s).listen(self.events.clone()));
                    }
                    sent
                }
            },
            Link::Legacy(l) => l.post(&message, identity.as_deref()).await,
        };
        match sent {
            Ok(()) => Ok(()),
            Err(error @ UpstreamError::SessionGone) => Err(error),
            Err(error) => {
                match message.id().filter(|_| message.is_request()) {
                    Some(id) => self.fail(id.clone(), &error),
                    None => {
                        tracing::warn!(%error, "a message for the upstream server was lost");
                        self.proxy.metrics.count_upstream_failure(error.reason());
                    }
                }
                Ok(())
            }
        }
    }

    fn on_upstream(&mut self, event: Upstream) -> Result<(), UpstreamError> {
        match event {
            Upstream::Message { message, via } => {
                let related = self.pending.related(&message).or(via);
                if let Some(id) = message.id().filter(|_| message.is_response()) {
                    self.exchanges.remove(id);
                }
                self.outlet.send(Outbound { message, related });
                Ok(())
            }
            Upstream::Failed { request, error } => {
                if self.pending.contains(&request) {
                    self.fail(request, &error);
                }
                Ok(())
            }
            Upstream::Gone(error) => Err(error),
        }
    }

    /// Answers `id` with an error in the upstream's place.
    fn fail(&mut self, id: RequestId, error: &UpstreamError) {
        tracing::warn!(?id, %error, "a request to the upstream server failed");
        self.proxy.metrics.count_upstream_failure(error.reason());
        if let Some(exchange) = self.exchanges.remove(&id) {
            exchange.abort();
        }
        let failure = self.pending.fail(id, error.to_string(), error.reason());
        self.outlet.send(failure);
    }

    /// `id` went unanswered too long: the client gets an error, the upstream a cancellation.
    async fn time_out(&mut self, link: &Link, id: RequestId) -> Result<(), UpstreamError> {
        let error = UpstreamError::Timeout(self.pending.timeout());
        self.fail(id.clone(), &error);
        let cancel = cancellation(&id);
        let owner = self.owner.as_deref();
        let sent = match link {
            Link::Streamable(s) => s.notify(&cancel, owner).await,
            Link::Legacy(l) => l.post(&cancel, owner).await,
        };
        match sent {
            Err(error @ UpstreamError::SessionGone) => Err(error),
            _ => Ok(()),
        }
    }
}
