//! The queue between a session and the connection carrying one of its SSE streams, bounded in
//! events and in bytes. The session never waits on it: a client that falls further behind has
//! its response ended (the events stay in the session's bounded history and the client resumes
//! with `Last-Event-ID`), so a slow reader holds a bounded queue rather than everything the
//! server sends.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use futures::channel::mpsc;
use futures::{Stream, StreamExt};

use super::session::Event;

/// Events queued for one stream at most, besides the answers its requests expect (a batch's
/// answers all fit: their number is bounded by the request body).
pub const STREAM_QUEUE: usize = 256;

/// Bytes queued for one stream at most. A single larger event still passes when nothing else
/// waits, so a big answer is never refused outright.
pub const STREAM_QUEUE_BYTES: usize = 4 * 1024 * 1024;

/// A new queue with room for `answers` answers besides [`STREAM_QUEUE`] other events.
pub fn channel(answers: usize) -> (EventSender, EventReceiver) {
    // The futures channel (for its size: an idle stream holds one, and tokio's preallocates a
    // block of slots) holds `buffer + senders` messages; there is one sender.
    let (tx, rx) = mpsc::channel(STREAM_QUEUE - 1 + answers);
    let queued = Arc::new(AtomicUsize::new(0));
    (
        EventSender {
            tx,
            queued: Arc::clone(&queued),
        },
        EventReceiver { rx, queued },
    )
}

fn size(event: &Event) -> usize {
    event.message.text().len()
}

pub struct EventSender {
    tx: mpsc::Sender<Event>,
    /// Bytes sent and not yet taken by the connection.
    queued: Arc<AtomicUsize>,
}

impl EventSender {
    /// Queues `event` unless the queue is full (in events or bytes) or the connection is gone.
    pub fn try_send(&mut self, event: Event) -> bool {
        let bytes = size(&event);
        let queued = self.queued.load(Ordering::Acquire);
        if queued > 0 && queued + bytes > STREAM_QUEUE_BYTES {
            return false;
        }
        if self.tx.try_send(event).is_err() {
            return false;
        }
        self.queued.fetch_add(bytes, Ordering::AcqRel);
        true
    }

    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// The events of one SSE stream, in order; the stream ends when the session drops the sender.
pub struct EventReceiver {
    rx: mpsc::Receiver<Event>,
    queued: Arc<AtomicUsize>,
}

impl EventReceiver {
    fn taken(&self, event: &Event) {
        self.queued.fetch_sub(size(event), Ordering::AcqRel);
    }

    /// The next queued event without waiting (tests and replays).
    pub fn try_recv(&mut self) -> Result<Event, mpsc::TryRecvError> {
        let event = self.rx.try_recv()?;
        self.taken(&event);
        Ok(event)
    }
}

impl Stream for EventReceiver {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        let next = self.rx.poll_next_unpin(cx);
        if let Poll::Ready(Some(event)) = &next {
            self.taken(event);
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;

    fn event(id: u64, bytes: usize) -> Event {
        let text = format!(
            r#"{{"jsonrpc":"2.0","method":"n","params":{{"p":"{}"}}}}"#,
            "x".repeat(bytes)
        );
        Event {
            id,
            message: Message::parse(&text).unwrap(),
        }
    }

    #[test]
    fn the_queue_is_bounded_in_events() {
        let (mut tx, mut rx) = channel(0);
        let sent = (0..STREAM_QUEUE as u64 * 2)
            .take_while(|n| tx.try_send(event(*n, 1)))
            .count();
        assert_eq!(sent, STREAM_QUEUE);
        assert!(rx.try_recv().is_ok());
        assert!(tx.try_send(event(0, 1)), "room again once one is taken");
    }

    #[test]
    fn the_queue_is_bounded_in_bytes_but_takes_one_big_event_when_empty() {
        let (mut tx, mut rx) = channel(0);
        assert!(tx.try_send(event(0, STREAM_QUEUE_BYTES * 2)));
        assert!(!tx.try_send(event(1, 10)), "full while the big one waits");
        assert!(rx.try_recv().is_ok());
        let sent = (0..100)
            .take_while(|n| tx.try_send(event(*n, 1 << 20)))
            .count();
        assert!(sent < 4, "{sent} MiB queued");
    }
}
