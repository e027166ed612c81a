//! Streamable HTTP towards the upstream: each client request is one POST whose answer (JSON or
//! an event stream) is relayed message by message as it arrives; notifications and responses
//! are POSTed and accepted; the standalone GET stream carries server-initiated messages; DELETE
//! ends the upstream session.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::http::request::Builder;
use hyper::{Method, Response, StatusCode, Uri};
use tokio::sync::mpsc;

use super::http::{Answer, UpstreamError, UpstreamHttp, header_value};
use super::session::Upstream;
use crate::message::{Message, RequestId};
use crate::oauth::Identity;
use crate::transport::headers::{LAST_EVENT_ID, PROTOCOL_VERSION, SESSION_ID};

/// Consecutive failures to (re)open the standalone stream before the session is given up.
const STREAM_RETRIES: u32 = 5;
/// A standalone stream open at least this long was not refused, whatever ended it.
const HEALTHY_STREAM: Duration = Duration::from_secs(5);

/// What the upstream's `initialize` answer established, or a stateless request carries.
#[derive(Default)]
struct SessionHeaders {
    id: Option<HeaderValue>,
    version: Option<HeaderValue>,
    /// A stateless request's `Mcp-Method` and `Mcp-Name`.
    mirrored: Vec<(&'static str, HeaderValue)>,
}

/// One session with a Streamable HTTP upstream, or one stateless request.
pub struct Streamable {
    http: Arc<UpstreamHttp>,
    uri: Uri,
    session: Mutex<SessionHeaders>,
    /// Stateless (2026-07-28) errors come as an HTTP error status with the JSON-RPC error as
    /// the body, which is the answer to pass on.
    stateless: bool,
    /// Who started the session: named on the session's own requests (its GET stream, DELETE).
    owner: Option<Arc<Identity>>,
}

/// How a standalone stream ended.
enum Listened {
    /// The upstream offers none (405, or another refusal).
    NotOffered,
    /// The upstream closed it; `true` when it carried at least one message.
    Ended(bool),
}

impl Streamable {
    pub fn new(http: Arc<UpstreamHttp>, uri: Uri, owner: Option<Arc<Identity>>) -> Arc<Self> {
        Arc::new(Self {
            http,
            uri,
            session: Mutex::new(SessionHeaders::default()),
            stateless: false,
            owner,
        })
    }

    /// A link for one stateless request, sent with its protocol version and mirrored headers.
    pub fn stateless(
        http: Arc<UpstreamHttp>,
        uri: Uri,
        version: Option<HeaderValue>,
        mirrored: Vec<(&'static str, HeaderValue)>,
    ) -> Arc<Self> {
        Arc::new(Self {
            http,
            uri,
            session: Mutex::new(SessionHeaders {
                id: None,
                version,
                mirrored,
            }),
            stateless: true,
            owner: None,
        })
    }

    fn session(&self) -> MutexGuard<'_, SessionHeaders> {
        self.session.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A request carrying the session's headers once they are known, and `identity`'s.
    fn request(&self, method: Method, identity: Option<&Identity>) -> Builder {
        let mut builder = self.http.request(method, &self.uri);
        if let Some(identity) = identity {
            builder = identity.apply(builder);
        }
        let session = self.session();
        if let Some(id) = &session.id {
            builder = builder.header(SESSION_ID, id.clone());
        }
        if let Some(version) = &session.version {
            builder = builder.header(PROTOCOL_VERSION, version.clone());
        }
        for (name, value) in &session.mirrored {
            builder = builder.header(*name, value.clone());
        }
        builder
    }

    /// A 404 for a session the upstream gave us means it forgot it.
    fn check(&self, status: StatusCode) -> Result<(), UpstreamError> {
        if status == StatusCode::NOT_FOUND && self.session().id.is_some() {
            return Err(UpstreamError::SessionGone);
        }
        if self.stateless && status.is_client_error() {
            return Ok(());
        }
        if !status.is_success() {
            return Err(UpstreamError::Status(status));
        }
        Ok(())
    }

    /// Sends a client request from `identity` and hands everything the upstream answers on its
    /// stream to `events`, tagged with the request; a failure fails the request (or, when the
    /// upstream forgot the session, the session).
    pub async fn exchange(
        self: Arc<Self>,
        message: Message,
        identity: Option<Arc<Identity>>,
        events: mpsc::Sender<Upstream>,
    ) {
        let Some(request) = message.id().cloned() else {
            return;
        };
        let relayed = self
            .relay(&message, identity.as_deref(), &request, &events)
            .await;
        if let Err(error) = relayed {
            let event = match error {
                UpstreamError::SessionGone => Upstream::Gone(error),
                error => Upstream::Failed { request, error },
            };
            let _ = events.send(event).await;
        }
    }

    async fn relay(
        &self,
        message: &Message,
        identity: Option<&Identity>,
        request: &RequestId,
        events: &mpsc::Sender<Upstream>,
    ) -> Result<(), UpstreamError> {
        let response = self.post(message, identity).await?;
        let status = response.status();
        self.check(status)?;
        if status == StatusCode::ACCEPTED {
            return Err(UpstreamError::Protocol(
                "a request was accepted without an answer",
            ));
        }
        let initialize = message.method() == Some("initialize");
        if initialize {
            self.session().id = response.headers().get(SESSION_ID).cloned();
        }
        // A refusal (stateless only) is passed on when its body is the JSON-RPC error.
        let refused = UpstreamError::Status(status);
        let answer = match self.http.answer(response).await {
            Err(_) if !status.is_success() => return Err(refused),
            answer => answer?,
        };
        match answer {
            Answer::Json(messages) => {
                let mut answered = false;
                for m in messages {
                    answered |= self.pass(m, request, initialize, events).await;
                }
                if answered {
                    return Ok(());
                }
            }
            Answer::Stream(mut stream) => {
                while let Some(m) = stream.next_message().await? {
                    if self.pass(m, request, initialize, events).await {
                        return Ok(());
                    }
                }
            }
        }
        if !status.is_success() {
            return Err(refused);
        }
        Err(UpstreamError::Protocol(
            "the answer ended without a response",
        ))
    }

    /// Hands one message of `request`'s answer on; `true` when it is the response itself.
    async fn pass(
        &self,
        message: Message,
        request: &RequestId,
        initialize: bool,
        events: &mpsc::Sender<Upstream>,
    ) -> bool {
        let is_answer = message.is_response() && message.id() == Some(request);
        if is_answer && initialize {
            self.session().version = message
                .result()
                .and_then(|r| r.get("protocolVersion")?.as_str().and_then(header_value));
        }
        let via = Some(request.clone());
        // A closed receiver means the session has ended; nothing waits for the rest.
        let _ = events.send(Upstream::Message { message, via }).await;
        is_answer
    }

    /// Sends a notification or a response from `identity`; returns once the upstream accepted
    /// it.
    pub async fn notify(
        &self,
        message: &Message,
        identity: Option<&Identity>,
    ) -> Result<(), UpstreamError> {
        let response = self.post(message, identity).await?;
        self.check(response.status())
    }

    async fn post(
        &self,
        message: &Message,
        identity: Option<&Identity>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let text = message.text();
        let request = self.request(Method::POST, identity);
        self.http.send(request, Some(text.to_owned())).await
    }

    /// Relays the standalone stream's server-initiated messages, reopening it (resuming from
    /// the last event id) when it ends or breaks, until the upstream refuses it (405: it has none),
    /// forgot the session, or cannot be reached `STREAM_RETRIES` times in a row.
    pub async fn listen(self: Arc<Self>, events: mpsc::Sender<Upstream>) {
        let mut last_event = None;
        let mut failures = 0;
        loop {
            let opened = tokio::time::Instant::now();
            match self.listen_once(&mut last_event, &events).await {
                Ok(Listened::NotOffered) => return,
                // A stream that lasted is healthy; one closed at once, again and again, is not.
                Ok(Listened::Ended(carried)) if carried || opened.elapsed() >= HEALTHY_STREAM => {
                    failures = 0;
                }
                Ok(Listened::Ended(_)) => failures += 1,
                // Silence is not a fault: the stream is simply reopened.
                Err(UpstreamError::Idle(_)) => {}
                Err(error @ UpstreamError::SessionGone) => {
                    let _ = events.send(Upstream::Gone(error)).await;
                    return;
                }
                Err(error) => {
                    failures += 1;
                    if failures >= STREAM_RETRIES {
                        tracing::warn!(%error, "the upstream's standalone stream is lost");
                        let _ = events.send(Upstream::Gone(error)).await;
                        return;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(failures.min(5)))).await;
        }
    }

    async fn listen_once(
        &self,
        last_event: &mut Option<HeaderValue>,
        events: &mpsc::Sender<Upstream>,
    ) -> Result<Listened, UpstreamError> {
        let mut request = self.request(Method::GET, self.owner.as_deref());
        if let Some(last) = last_event.as_ref() {
            request = request.header(LAST_EVENT_ID, last.clone());
        }
        let response = self.http.send(request, None).await?;
        match self.check(response.status()) {
            Ok(()) => {}
            // 405 is the specification's "no stream here"; other refusals (an upstream without
            // sessions, say) mean the same here: asking again would not change them.
            Err(UpstreamError::Status(status)) if status.is_client_error() => {
                tracing::debug!(%status, "the upstream offers no standalone stream");
                return Ok(Listened::NotOffered);
            }
            Err(error) => return Err(error),
        }
        let Answer::Stream(mut stream) = self.http.answer(response).await? else {
            return Err(UpstreamError::Protocol(
                "the GET stream is not an event stream",
            ));
        };
        let mut carried = false;
        while let Some(message) = stream.next_message().await? {
            carried = true;
            *last_event = stream.last_event_id().and_then(header_value);
            if events
                .send(Upstream::Message { message, via: None })
                .await
                .is_err()
            {
                break;
            }
        }
        Ok(Listened::Ended(carried))
    }

    /// Ends the upstream session; an upstream that refuses (405) lets it expire instead.
    pub async fn close(&self) {
        if self.session().id.is_none() {
            return;
        }
        let request = self.request(Method::DELETE, self.owner.as_deref());
        if let Err(error) = self.http.send(request, None).await {
            tracing::debug!(%error, "could not end the upstream session");
        }
    }
}
