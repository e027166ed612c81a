//! The 2024-11-05 HTTP+SSE transport towards the upstream: one GET stream per session, whose
//! `endpoint` event names where to POST; every answer comes back on the stream. Dropping the
//! stream ends the upstream session.

use std::sync::Arc;

use hyper::{Method, Uri};
use tokio::sync::mpsc;
use url::Url;

use super::http::{Answer, EventStream, UpstreamError, UpstreamHttp};
use super::session::Upstream;
use crate::message::Message;
use crate::oauth::Identity;

/// One session with a legacy upstream: where its messages are POSTed.
pub struct Legacy {
    http: Arc<UpstreamHttp>,
    endpoint: Uri,
}

impl Legacy {
    /// Opens the session's stream for `identity` (who started the session) and waits (up to
    /// the connect bound) for the endpoint it announces.
    pub async fn connect(
        http: Arc<UpstreamHttp>,
        url: &Url,
        identity: Option<&Identity>,
    ) -> Result<(Self, Box<EventStream>), UpstreamError> {
        let mut request = http.request(Method::GET, &to_uri(url)?);
        if let Some(identity) = identity {
            request = identity.apply(request);
        }
        let response = http.send(request, None).await?;
        if !response.status().is_success() {
            return Err(UpstreamError::Status(response.status()));
        }
        let Answer::Stream(mut stream) = http.answer(response).await? else {
            return Err(UpstreamError::Protocol(
                "the SSE URL did not open an event stream",
            ));
        };
        let connect = http.bounds.connect;
        let announced = tokio::time::timeout(connect, async {
            loop {
                match stream.next_event().await? {
                    Some(event) if event.event == "endpoint" => return Ok(event.data),
                    Some(_) => {}
                    None => {
                        return Err(UpstreamError::Protocol(
                            "the stream ended before announcing its endpoint",
                        ));
                    }
                }
            }
        })
        .await
        .map_err(|_| UpstreamError::Timeout(connect))??;
        let endpoint = resolve_endpoint(url, announced.trim())?;
        Ok((Self { http, endpoint }, stream))
    }

    /// POSTs one message from `identity`; its answer, if any, comes on the stream.
    pub async fn post(
        &self,
        message: &Message,
        identity: Option<&Identity>,
    ) -> Result<(), UpstreamError> {
        let text = message.text();
        let mut request = self.http.request(Method::POST, &self.endpoint);
        if let Some(identity) = identity {
            request = identity.apply(request);
        }
        let response = self.http.send(request, Some(text.to_owned())).await?;
        match response.status() {
            s if s.is_success() => Ok(()),
            hyper::StatusCode::NOT_FOUND => Err(UpstreamError::SessionGone),
            s => Err(UpstreamError::Status(s)),
        }
    }
}

/// Relays the stream's messages until it ends, which ends the session.
pub async fn relay(mut stream: Box<EventStream>, events: mpsc::Sender<Upstream>) {
    let error = loop {
        match stream.next_message().await {
            Ok(Some(message)) => {
                let out = Upstream::Message { message, via: None };
                if events.send(out).await.is_err() {
                    return;
                }
            }
            Ok(None) => break UpstreamError::Broken,
            Err(e) => break e,
        }
    };
    let _ = events.send(Upstream::Gone(error)).await;
}

/// The announced endpoint, resolved against the stream's URL; one on another scheme, host or
/// port is refused, so the upstream cannot send the session's messages elsewhere.
pub fn resolve_endpoint(base: &Url, announced: &str) -> Result<Uri, UpstreamError> {
    let joined = base
        .join(announced)
        .map_err(|_| UpstreamError::Protocol("the announced endpoint is not a URL"))?;
    if joined.origin() != base.origin() {
        return Err(UpstreamError::Protocol(
            "the announced endpoint is on another host or port",
        ));
    }
    to_uri(&joined)
}

pub fn to_uri(url: &Url) -> Result<Uri, UpstreamError> {
    url.as_str()
        .parse()
        .map_err(|_| UpstreamError::Protocol("a URL the HTTP client cannot use"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_resolve_against_the_stream_url_and_stay_on_its_origin() {
        let base = Url::parse("http://127.0.0.1:8000/mcp/sse").unwrap();
        let relative = resolve_endpoint(&base, "/messages?sessionId=abc").unwrap();
        assert_eq!(
            relative.to_string(),
            "http://127.0.0.1:8000/messages?sessionId=abc"
        );
        let sibling = resolve_endpoint(&base, "messages/?session_id=1").unwrap();
        assert_eq!(
            sibling.to_string(),
            "http://127.0.0.1:8000/mcp/messages/?session_id=1"
        );
        let absolute = resolve_endpoint(&base, "http://127.0.0.1:8000/m").unwrap();
        assert_eq!(absolute.path(), "/m");
        for elsewhere in [
            "http://127.0.0.1:9000/messages",
            "http://evil.example/messages",
            "//evil.example/messages",
            "https://127.0.0.1:8000/messages",
        ] {
            assert!(
                matches!(
                    resolve_endpoint(&base, elsewhere),
                    Err(UpstreamError::Protocol(_))
                ),
                "{elsewhere}"
            );
        }
    }
}
