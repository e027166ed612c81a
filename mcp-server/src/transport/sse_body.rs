//! The body of an SSE response: events already framed with [`mcp_wire::sse`], and a keep-alive
//! comment whenever nothing was sent for a while, so that proxies do not close idle streams.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use futures::{Stream, StreamExt};
use mcp_wire::sse::{Frame, KEEP_ALIVE};
use tokio::time::{Instant, Sleep};

use super::headers::EVENT_STREAM;

/// The bytes of an event this server builds. Its event names are constants and its event ids
/// numbers, neither of which can hold the line breaks the writer refuses.
pub fn frame(frame: Frame<'_>) -> Bytes {
    Bytes::from(
        frame
            .encode()
            .expect("constant event names and numeric ids hold no line breaks"),
    )
}

/// An event-stream response sending `frames`, with a keep-alive after every `keep_alive` of
/// silence. The response ends when `frames` does.
pub fn response(
    frames: impl Stream<Item = Bytes> + Send + 'static,
    keep_alive: Duration,
) -> Response {
    let body = KeepAlive::new(frames, keep_alive).map(Ok::<_, Infallible>);
    let mut response = Response::new(Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(EVENT_STREAM));
    // Caches and proxies must pass every event on as it comes.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

pin_project_lite::pin_project! {
    /// Passes `inner` on, adding [`KEEP_ALIVE`] whenever it was silent for `interval`.
    struct KeepAlive<S> {
        #[pin]
        inner: S,
        interval: Duration,
        #[pin]
        timer: Sleep,
    }
}

impl<S> KeepAlive<S> {
    fn new(inner: S, interval: Duration) -> Self {
        Self {
            inner,
            interval,
            timer: tokio::time::sleep(interval),
        }
    }
}

impl<S: Stream<Item = Bytes>> Stream for KeepAlive<S> {
    type Item = Bytes;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let mut this = self.project();
        let item = match this.inner.poll_next(cx) {
            Poll::Ready(Some(bytes)) => bytes,
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => {
                ready!(this.timer.as_mut().poll(cx));
                Bytes::from_static(KEEP_ALIVE)
            }
        };
        this.timer.reset(Instant::now() + *this.interval);
        Poll::Ready(Some(item))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::stream;

    #[tokio::test(start_paused = true)]
    async fn silence_is_filled_with_keep_alives_and_events_restart_the_clock() {
        let (tx, rx) = futures::channel::mpsc::unbounded::<Bytes>();
        let mut body = std::pin::pin!(KeepAlive::new(rx, Duration::from_secs(15)));
        let started = Instant::now();
        assert_eq!(body.next().await.as_deref(), Some(KEEP_ALIVE));
        assert_eq!(started.elapsed(), Duration::from_secs(15));

        tokio::time::sleep(Duration::from_secs(10)).await;
        tx.unbounded_send(Bytes::from_static(b"data: x\n\n"))
            .unwrap();
        assert_eq!(body.next().await.as_deref(), Some(&b"data: x\n\n"[..]));
        let sent = Instant::now();
        assert_eq!(body.next().await.as_deref(), Some(KEEP_ALIVE));
        assert_eq!(sent.elapsed(), Duration::from_secs(15));

        drop(tx);
        assert_eq!(body.next().await, None);
    }

    #[tokio::test]
    async fn the_response_is_an_uncached_event_stream() {
        let frames = stream::iter([frame(Frame::new("x").event("message"))]);
        let response = response(frames, Duration::from_secs(15));
        let headers = response.headers();
        assert_eq!(headers[header::CONTENT_TYPE], EVENT_STREAM);
        assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(&body[..], b"event: message\ndata: x\n\n");
    }
}
