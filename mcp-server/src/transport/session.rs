//! One MCP session's routing: which SSE stream each backend message goes to, event ids, and the
//! bounded history that lets a client resume a broken stream with `Last-Event-ID`.
//!
//! Every client request is tied to the stream its POST opened; the response closes that stream
//! once all of the POST's requests are answered. Messages tied to a request (progress) follow it;
//! other server messages go to the standalone stream (GET, or the legacy `/sse` stream), and a
//! server request with no standalone stream falls back to the newest open request stream, so a
//! client that never opened a GET stream still sees it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use tokio::time::Instant;

use tokio_util::sync::CancellationToken;

use super::history::{Entry, History, HistoryLimits};
use super::stream_queue::{self, EventSender};
use crate::backend::{Inbox, Outbound};
use crate::message::jsonrpc::INTERNAL_ERROR;
use crate::message::{Message, RequestId, Revision, RpcError};
use crate::oauth::{Identity, ToolScreen};

pub type StreamId = u64;
/// The GET stream of Streamable HTTP, or the one stream of a legacy session.
pub const STANDALONE: StreamId = 0;

/// An event id names its stream (high 32 bits) and its place in that stream (low 32 bits), so a
/// `Last-Event-ID` says which stream to resume even when none of its events are kept any more.
fn event_id(stream: StreamId, seq: u64) -> u64 {
    (stream << 32) | (seq & 0xffff_ffff)
}

fn split_event_id(id: u64) -> (StreamId, u64) {
    (id >> 32, id & 0xffff_ffff)
}

/// A message as sent on a stream, with its session-unique event id.
#[derive(Clone, Debug)]
pub struct Event {
    pub id: u64,
    pub message: Message,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportKind {
    Streamable,
    /// 2024-11-05 HTTP+SSE: everything travels on the one `/sse` stream.
    Legacy,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("the session has ended")]
    Gone,
    #[error("request id {0:?} is already awaiting a response in this session")]
    DuplicateId(RequestId),
}

/// Why a stream cannot be resumed from a `Last-Event-ID`.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResumeError {
    #[error("Last-Event-ID {0} is not an event id of this session")]
    Unknown(u64),
    #[error(
        "events after Last-Event-ID {0} are no longer kept (the session's replay history is full); \
         the stream cannot be resumed"
    )]
    Dropped(u64),
}

pub use super::stream_queue::EventReceiver;

struct Slot {
    tx: Option<EventSender>,
    /// Requests on this stream still awaiting their response.
    outstanding: usize,
    /// The next event's place in the stream.
    next_seq: u64,
    /// The latest place whose event was dropped from the history.
    dropped_through: Option<u64>,
    /// Entries of this stream in the history.
    kept: usize,
    /// A request stream whose requests are all answered: it only waits to be replayed.
    finished: bool,
    /// Whether it started with a priming event (it can then be released and resumed).
    primed: bool,
}

impl Slot {
    fn new(tx: Option<EventSender>, outstanding: usize) -> Self {
        Self {
            tx,
            outstanding,
            next_seq: 0,
            dropped_through: None,
            kept: 0,
            finished: false,
            primed: false,
        }
    }
}

struct Routes {
    next_stream: StreamId,
    awaiting: HashMap<RequestId, StreamId>,
    /// Awaited `tools/list` requests whose answers the caller may see only part of.
    screens: HashMap<RequestId, Arc<ToolScreen>>,
    /// Open streams, and finished ones while the history holds some of their events.
    streams: HashMap<StreamId, Slot>,
    history: History,
    /// Legacy streams cannot be resumed, so their events are never kept.
    keeps_history: bool,
}

/// The stream a POST answers on.
pub struct RequestStream {
    pub stream: StreamId,
    pub events: EventReceiver,
    /// The id of the priming event to send first on an SSE answer: an id with empty data, which
    /// lets the client resume the stream before any message arrived (2025-11-25, SEP-1699).
    pub prime: Option<u64>,
}

pub struct Session {
    pub id: String,
    pub kind: TransportKind,
    /// Set once the backend side is open, before the session is reachable by id.
    inbox: OnceLock<Inbox>,
    /// Cancelled when the session ends; the backend stops with it.
    end: CancellationToken,
    /// The protocol version the backend's `initialize` answer chose.
    revision: OnceLock<String>,
    routes: Mutex<Routes>,
    last_active: Mutex<Instant>,
}

impl Session {
    pub fn new(
        id: String,
        kind: TransportKind,
        end: CancellationToken,
        history: HistoryLimits,
    ) -> Self {
        Self {
            id,
            kind,
            inbox: OnceLock::new(),
            end,
            revision: OnceLock::new(),
            routes: Mutex::new(Routes {
                next_stream: STANDALONE + 1,
                awaiting: HashMap::new(),
                screens: HashMap::new(),
                streams: HashMap::new(),
                history: History::new(history),
                keeps_history: kind == TransportKind::Streamable,
            }),
            last_active: Mutex::new(Instant::now()),
        }
    }

    /// Connects the session to its backend.
    pub fn connect(&self, inbox: Inbox) {
        let _ = self.inbox.set(inbox);
    }

    fn routes(&self) -> MutexGuard<'_, Routes> {
        // A panic while holding this lock cannot leave routes half-updated in a way that matters
        // more than losing the session, so a poisoned lock is simply taken over.
        self.routes.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn ended(&self) -> &CancellationToken {
        &self.end
    }

    pub fn revision(&self) -> Option<&str> {
        self.revision.get().map(String::as_str)
    }

    pub fn set_revision(&self, revision: &str) {
        let _ = self.revision.set(revision.to_owned());
    }

    /// Batches are allowed unless the negotiated revision forbids them.
    pub fn allows_batches(&self) -> bool {
        self.revision()
            .and_then(Revision::parse)
            .is_none_or(Revision::allows_batches)
    }

    pub fn touch(&self) {
        *self.last_active.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    /// Idle: no open stream and no request for `idle`.
    pub fn is_idle(&self, now: Instant, idle: std::time::Duration) -> bool {
        let last = *self.last_active.lock().unwrap_or_else(|p| p.into_inner());
        let streaming = self
            .routes()
            .streams
            .values()
            .any(|s| s.tx.as_ref().is_some_and(|tx| !tx.is_closed()));
        !streaming && now.duration_since(last) >= idle
    }

    /// Hands a client message, sent by `identity`, to the backend.
    pub async fn send(
        &self,
        message: Message,
        identity: Option<&Arc<Identity>>,
    ) -> Result<(), SessionError> {
        if self.end.is_cancelled() {
            return Err(SessionError::Gone);
        }
        let inbox = self.inbox.get().ok_or(SessionError::Gone)?;
        inbox
            .send(message, identity)
            .await
            .map_err(|_| SessionError::Gone)
    }

    /// Screens the answers to the `tools/list` requests among `messages` (whose answers are
    /// awaited already, and not sent yet): the caller sees only the tools it may call.
    pub fn screen_tool_lists(&self, messages: &[Message], screen: Option<&Arc<ToolScreen>>) {
        let Some(screen) = screen else {
            return;
        };
        let mut routes = self.routes();
        for message in messages.iter().filter(|m| m.method() == Some("tools/list")) {
            if let Some(id) = message.id().filter(|id| routes.awaiting.contains_key(*id)) {
                routes.screens.insert(id.clone(), Arc::clone(screen));
            }
        }
    }

    /// Opens the stream a POST answers on, expecting responses to `ids`.
    pub fn open_request_stream(&self, ids: &[RequestId]) -> Result<RequestStream, SessionError> {
        let primes = self.primes_streams();
        let mut routes = self.routes();
        if let Some(dup) = ids.iter().find(|id| routes.awaiting.contains_key(*id)) {
            return Err(SessionError::DuplicateId(dup.clone()));
        }
        let stream = routes.next_stream;
        routes.next_stream += 1;
        let (tx, rx) = stream_queue::channel(ids.len());
        routes
            .streams
            .insert(stream, Slot::new(Some(tx), ids.len()));
        for id in ids {
            routes.awaiting.insert(id.clone(), stream);
        }
        // Taken before any message of the stream, so a resume from it replays them all.
        let prime = primes.then(|| routes.log(stream, None, true));
        Ok(RequestStream {
            stream,
            events: rx,
            prime,
        })
    }

    /// Whether the negotiated revision primes streams (see [`Revision::primes_streams`]).
    fn primes_streams(&self) -> bool {
        self.revision()
            .and_then(Revision::parse)
            .is_some_and(Revision::primes_streams)
    }

    /// Ends the HTTP response of the stream awaiting `request` while the request goes on; the
    /// client reconnects with `Last-Event-ID` and the stream continues there (SEP-1699 polling).
    /// Only a primed stream is released: without an event id the client could not resume it.
    pub fn release_request_stream(&self, request: &RequestId) {
        let mut routes = self.routes();
        let Some(stream) = routes.awaiting.get(request).copied() else {
            return;
        };
        if let Some(slot) = routes.streams.get_mut(&stream).filter(|s| s.primed) {
            // Dropping the sender ends the response once what is queued has been sent.
            slot.tx = None;
        }
    }

    /// The stream's answer went out as plain JSON: it has no event ids, so nothing of it can be
    /// resumed and its events need not be kept.
    pub fn forget_stream(&self, stream: StreamId) {
        let mut routes = self.routes();
        routes.history.remove_stream(stream);
        if routes.streams.get(&stream).is_some_and(|s| s.finished) {
            routes.streams.remove(&stream);
        } else if let Some(slot) = routes.streams.get_mut(&stream) {
            slot.kept = 0;
        }
    }

    /// Legacy transport: responses to `ids` travel on the standalone stream.
    pub fn expect_on_standalone(&self, ids: &[RequestId]) -> Result<(), SessionError> {
        let mut routes = self.routes();
        if let Some(dup) = ids.iter().find(|id| routes.awaiting.contains_key(*id)) {
            return Err(SessionError::DuplicateId(dup.clone()));
        }
        for id in ids {
            routes.awaiting.insert(id.clone(), STANDALONE);
        }
        Ok(())
    }

    /// Attaches a GET stream as the standalone stream; it first receives what was queued for it
    /// while none was open. A newer GET replaces an older one, whose connection ends.
    pub fn attach_stream(&self) -> EventReceiver {
        self.routes().attach(STANDALONE, None)
    }

    /// Resumes the stream `last_event` was sent on: the events after it are replayed, and if
    /// that stream is still expecting messages, they continue on this connection. A resume that
    /// would skip events (dropped from the history) or names an id never issued is refused.
    pub fn resume_stream(&self, last_event: u64) -> Result<EventReceiver, ResumeError> {
        let mut routes = self.routes();
        let (stream, seq) = split_event_id(last_event);
        let Some(slot) = routes.streams.get(&stream).filter(|s| seq < s.next_seq) else {
            return Err(ResumeError::Unknown(last_event));
        };
        if slot.dropped_through.is_some_and(|d| d > seq) {
            return Err(ResumeError::Dropped(last_event));
        }
        Ok(routes.attach(stream, Some(last_event)))
    }

    /// Puts a backend message on the stream it belongs to. A screened answer is screened
    /// here, before it is sent or kept for a replay.
    pub fn route(&self, out: Outbound) {
        let mut routes = self.routes();
        let is_response = out.message.is_response();
        let mut message = out.message;
        let target = if let Some(id) = message.id().filter(|_| is_response).cloned() {
            match routes.awaiting.remove(&id) {
                Some(stream) => {
                    if let Some(screen) = routes.screens.remove(&id) {
                        message = screen.apply(message);
                    }
                    stream
                }
                None => {
                    // An answer to a request that was cancelled or never made: nobody waits.
                    tracing::debug!(session = %self.id, ?id, "dropping response nobody awaits");
                    return;
                }
            }
        } else if let Some(stream) = out.related.as_ref().and_then(|r| routes.awaiting.get(r)) {
            *stream
        } else if message.is_request() && !routes.has_live(STANDALONE) {
            routes.newest_live_request_stream().unwrap_or(STANDALONE)
        } else {
            STANDALONE
        };
        routes.deliver(target, message, is_response);
    }

    /// Answers every awaited request with an error, when the backend is gone for good.
    pub fn fail_awaiting(&self, reason: &str) {
        let mut routes = self.routes();
        let ids: Vec<RequestId> = routes.awaiting.keys().cloned().collect();
        routes.screens.clear();
        for id in ids {
            let error = RpcError::new(INTERNAL_ERROR, reason).with_id(Some(id.clone()));
            if let Some(stream) = routes.awaiting.remove(&id) {
                routes.deliver(stream, error.to_message(), true);
            }
        }
    }

    /// Bytes of replay history this session holds.
    pub fn history_bytes(&self) -> usize {
        self.routes().history.bytes()
    }

    /// Ends the session: the backend stops and every stream closes.
    pub fn close(&self) {
        self.end.cancel();
        self.routes().streams.clear();
    }
}

impl Routes {
    fn has_live(&self, stream: StreamId) -> bool {
        self.streams
            .get(&stream)
            .and_then(|s| s.tx.as_ref())
            .is_some_and(|tx| !tx.is_closed())
    }

    fn newest_live_request_stream(&self) -> Option<StreamId> {
        self.streams
            .iter()
            .filter(|(id, s)| **id != STANDALONE && s.outstanding > 0)
            .filter(|(id, _)| self.has_live(**id))
            .map(|(id, _)| *id)
            .max()
    }

    /// Connects a new response to `stream`, replaying its kept events after `after` (or, without
    /// it, those never delivered).
    fn attach(&mut self, stream: StreamId, after: Option<u64>) -> EventReceiver {
        let (mut tx, rx) = stream_queue::channel(0);
        let mut overflowed = false;
        let Routes {
            streams, history, ..
        } = self;
        for entry in history.of_stream(stream) {
            let wanted = match after {
                Some(last) => entry.id > last,
                None => !entry.delivered,
            };
            let Some(message) = entry.message.clone().filter(|_| wanted) else {
                continue;
            };
            let event = Event {
                id: entry.id,
                message,
            };
            if tx.try_send(event) {
                entry.delivered = true;
            } else {
                overflowed = true;
                break;
            }
        }
        let slot = streams.entry(stream).or_insert_with(|| Slot::new(None, 0));
        // A finished stream gets its replay only: `tx` drops here, ending the response. So does
        // a replay longer than the queue: the client resumes again from what it got. Any other
        // stream continues on this connection (a newer GET replaces an older one).
        if !slot.finished && !overflowed {
            slot.tx = Some(tx);
        }
        rx
    }

    /// Gives `stream` its next event id and keeps the event (`None`: a priming event) in the
    /// history, dropping old ones as its budgets require.
    fn log(&mut self, stream: StreamId, message: Option<Message>, delivered: bool) -> u64 {
        let slot = self
            .streams
            .entry(stream)
            .or_insert_with(|| Slot::new(None, 0));
        let seq = slot.next_seq;
        slot.next_seq += 1;
        slot.primed |= message.is_none();
        let id = event_id(stream, seq);
        if !self.keeps_history {
            return id;
        }
        slot.kept += 1;
        let dropped = self.history.push(Entry {
            id,
            stream,
            message,
            delivered,
        });
        for entry in dropped {
            let (stream, seq) = split_event_id(entry.id);
            let Some(slot) = self.streams.get_mut(&stream) else {
                continue;
            };
            slot.kept -= 1;
            slot.dropped_through = slot.dropped_through.max(Some(seq));
            if slot.finished && slot.kept == 0 {
                // Nothing of it is left to replay; a resume of it is now refused as unknown.
                self.streams.remove(&stream);
            }
        }
        id
    }

    fn deliver(&mut self, stream: StreamId, message: Message, is_response: bool) {
        let slot = self
            .streams
            .entry(stream)
            .or_insert_with(|| Slot::new(None, 0));
        let id = event_id(stream, slot.next_seq);
        let event = Event {
            id,
            message: message.clone(),
        };
        let delivered = match &mut slot.tx {
            Some(tx) => tx.try_send(event),
            None => false,
        };
        if !delivered {
            // The client went away, or reads too slowly and its queue is full: its response
            // ends, and the event waits in the history for a resuming GET.
            slot.tx = None;
        }
        if is_response {
            slot.outstanding = slot.outstanding.saturating_sub(1);
            if slot.outstanding == 0 && stream != STANDALONE {
                // All of this POST's requests are answered: dropping the sender ends its stream.
                slot.finished = true;
                slot.tx = None;
            }
        }
        self.log(stream, Some(message), delivered);
        if let Some(slot) = self.streams.get(&stream)
            && slot.finished
            && slot.kept == 0
        {
            self.streams.remove(&stream);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::history::HistoryBudget;
    use crate::transport::stream_queue::STREAM_QUEUE;
    use futures::channel::mpsc;

    fn session() -> Session {
        Session::new(
            "s".into(),
            TransportKind::Streamable,
            CancellationToken::new(),
            HistoryLimits::events(16),
        )
    }

    /// Whether the stream has ended: nothing queued and the sender gone.
    fn ended(rx: &mut EventReceiver) -> bool {
        matches!(rx.try_recv(), Err(mpsc::TryRecvError::Closed))
    }

    fn msg(text: &str) -> Message {
        Message::parse(text).unwrap()
    }

    fn request_id(n: u64) -> RequestId {
        msg(&format!(r#"{{"jsonrpc":"2.0","id":{n},"method":"x"}}"#))
            .id()
            .unwrap()
            .clone()
    }

    fn response(n: u64) -> Outbound {
        Outbound::unrelated(msg(&format!(
            r#"{{"jsonrpc":"2.0","id":{n},"result":{{}}}}"#
        )))
    }

    fn progress_for(n: u64) -> Outbound {
        Outbound {
            message: msg(r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{}}"#),
            related: Some(request_id(n)),
        }
    }

    #[test]
    fn responses_go_to_the_requesting_stream_which_then_ends() {
        let s = session();
        let mut a = s.open_request_stream(&[request_id(1)]).unwrap().events;
        let mut b = s.open_request_stream(&[request_id(2)]).unwrap().events;
        s.route(progress_for(2));
        s.route(response(2));
        s.route(response(1));
        assert_eq!(a.try_recv().unwrap().message.id(), Some(&request_id(1)));
        assert!(ended(&mut a));
        assert_eq!(
            b.try_recv().unwrap().message.method(),
            Some("notifications/progress")
        );
        assert_eq!(b.try_recv().unwrap().message.id(), Some(&request_id(2)));
    }

    #[test]
    fn a_batch_stream_stays_open_until_every_request_is_answered() {
        let s = session();
        let mut rx = s
            .open_request_stream(&[request_id(1), request_id(2)])
            .unwrap()
            .events;
        s.route(response(2));
        assert_eq!(rx.try_recv().unwrap().message.id(), Some(&request_id(2)));
        assert!(matches!(rx.try_recv(), Err(mpsc::TryRecvError::Empty)));
        s.route(response(1));
        assert_eq!(rx.try_recv().unwrap().message.id(), Some(&request_id(1)));
        assert!(ended(&mut rx));
    }

    #[test]
    fn duplicate_request_ids_are_refused() {
        let s = session();
        let _rx = s.open_request_stream(&[request_id(1)]).unwrap();
        assert!(matches!(
            s.open_request_stream(&[request_id(1)]),
            Err(SessionError::DuplicateId(_))
        ));
    }

    /// The resumed stream carries request 1's progress, then its answer, and ends.
    fn assert_progress_then_answer_then_end(resumed: &mut EventReceiver) {
        assert_eq!(
            resumed.try_recv().unwrap().message.method(),
            Some("notifications/progress")
        );
        assert_eq!(
            resumed.try_recv().unwrap().message.id(),
            Some(&request_id(1))
        );
        assert!(ended(resumed));
    }

    #[test]
    fn a_broken_request_stream_is_resumed_from_the_last_event_id() {
        let s = session();
        let mut rx = s.open_request_stream(&[request_id(1)]).unwrap().events;
        s.route(progress_for(1));
        let seen = rx.try_recv().unwrap().id;
        drop(rx); // the connection breaks
        s.route(progress_for(1));
        let mut resumed = s.resume_stream(seen).unwrap();
        s.route(response(1));
        assert_progress_then_answer_then_end(&mut resumed);
    }

    #[test]
    fn messages_queued_without_a_get_stream_arrive_when_one_opens() {
        let s = session();
        s.route(Outbound::unrelated(msg(
            r#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#,
        )));
        let mut get = s.attach_stream();
        assert_eq!(
            get.try_recv().unwrap().message.method(),
            Some("notifications/tools/list_changed")
        );
        // Already delivered: a later GET does not see it again.
        let mut again = s.attach_stream();
        assert!(again.try_recv().is_err());
    }

    #[test]
    fn server_requests_use_a_request_stream_when_no_get_stream_is_open() {
        let s = session();
        let mut post = s.open_request_stream(&[request_id(1)]).unwrap().events;
        s.route(Outbound::unrelated(msg(
            r#"{"jsonrpc":"2.0","id":"srv-1","method":"elicitation/create"}"#,
        )));
        assert_eq!(
            post.try_recv().unwrap().message.method(),
            Some("elicitation/create")
        );
        let mut get = s.attach_stream();
        s.route(Outbound::unrelated(msg(
            r#"{"jsonrpc":"2.0","id":"srv-2","method":"sampling/createMessage"}"#,
        )));
        assert_eq!(
            get.try_recv().unwrap().message.method(),
            Some("sampling/createMessage")
        );
    }

    #[test]
    fn a_gone_backend_fails_every_awaited_request() {
        let s = session();
        let mut rx = s.open_request_stream(&[request_id(1)]).unwrap().events;
        s.fail_awaiting("backend ended");
        let v: serde_json::Value =
            serde_json::from_str(rx.try_recv().unwrap().message.text()).unwrap();
        assert_eq!(v["error"]["code"], INTERNAL_ERROR);
        assert!(ended(&mut rx));
    }

    #[test]
    fn history_is_bounded() {
        let s = session();
        for _ in 0..100 {
            s.route(Outbound::unrelated(msg(
                r#"{"jsonrpc":"2.0","method":"n"}"#,
            )));
        }
        let mut get = s.attach_stream();
        let mut n = 0;
        while get.try_recv().is_ok() {
            n += 1;
        }
        assert_eq!(n, 16);
    }

    fn bounded_session(bytes: usize) -> Session {
        Session::new(
            "s".into(),
            TransportKind::Streamable,
            CancellationToken::new(),
            HistoryLimits {
                events: 1000,
                bytes,
                total: HistoryBudget::new(usize::MAX),
            },
        )
    }

    fn progress_of(n: u64, pad: usize) -> Outbound {
        Outbound {
            message: msg(&format!(
                r#"{{"jsonrpc":"2.0","method":"notifications/progress","params":{{"pad":"{}"}}}}"#,
                "x".repeat(pad)
            )),
            related: Some(request_id(n)),
        }
    }

    #[test]
    fn history_is_bounded_in_bytes_and_a_resume_past_dropped_events_is_refused() {
        let s = bounded_session(4096);
        let mut rx = s.open_request_stream(&[request_id(1)]).unwrap().events;
        s.route(progress_of(1, 100));
        let early = rx.try_recv().unwrap().id;
        for _ in 0..100 {
            s.route(progress_of(1, 1000));
        }
        assert!(s.history_bytes() <= 4096, "{}", s.history_bytes());
        let mut last = early;
        while let Ok(event) = rx.try_recv() {
            last = event.id;
        }
        drop(rx);
        assert_eq!(
            s.resume_stream(early).err(),
            Some(ResumeError::Dropped(early))
        );
        // From the newest event nothing is missing: the stream continues.
        let mut resumed = s.resume_stream(last).unwrap();
        s.route(response(1));
        assert_eq!(
            resumed.try_recv().unwrap().message.id(),
            Some(&request_id(1))
        );
    }

    #[test]
    fn forged_event_ids_are_refused() {
        let s = session();
        let _rx = s.open_request_stream(&[request_id(1)]).unwrap();
        s.route(progress_for(1));
        for forged in [0, 1 << 32 | 7, 99 << 32, u64::MAX] {
            assert_eq!(
                s.resume_stream(forged).err(),
                Some(ResumeError::Unknown(forged)),
                "{forged}"
            );
        }
    }

    #[test]
    fn a_reader_that_falls_behind_has_its_response_ended_and_resumes() {
        let s = bounded_session(1 << 20);
        let mut rx = s.open_request_stream(&[request_id(1)]).unwrap().events;
        for _ in 0..STREAM_QUEUE + 10 {
            s.route(progress_of(1, 10));
        }
        let mut received = Vec::new();
        while let Ok(event) = rx.try_recv() {
            received.push(event.id);
        }
        // The queue holds STREAM_QUEUE events plus room for the stream's one answer.
        assert_eq!(received.len(), STREAM_QUEUE + 1, "the queue is bounded");
        assert!(ended(&mut rx), "the response ends once the queue overflows");
        // The rest waits in the history: resuming from the last event received gets it.
        s.route(response(1));
        let last = received[received.len() - 1];
        let mut resumed = s.resume_stream(last).unwrap();
        let mut rest = 0;
        while let Ok(event) = resumed.try_recv() {
            rest += 1;
            assert!(event.id > last);
        }
        assert_eq!(rest, 10, "nine notifications and the answer");
    }

    #[test]
    fn a_batch_stream_has_room_for_every_answer() {
        let s = session();
        let ids: Vec<RequestId> = (0..STREAM_QUEUE as u64 * 2).map(request_id).collect();
        let mut rx = s.open_request_stream(&ids).unwrap().events;
        for n in 0..ids.len() as u64 {
            s.route(response(n));
        }
        let mut answers = 0;
        while rx.try_recv().is_ok() {
            answers += 1;
        }
        assert_eq!(answers, ids.len());
    }

    #[test]
    fn a_stream_answered_as_json_keeps_nothing() {
        let s = bounded_session(1 << 20);
        let stream = s.open_request_stream(&[request_id(1)]).unwrap();
        s.route(progress_of(1, 1000));
        s.route(response(1));
        assert!(s.history_bytes() > 1000);
        s.forget_stream(stream.stream);
        assert_eq!(s.history_bytes(), 0);
    }

    #[test]
    fn a_released_stream_resumes_from_its_priming_event() {
        let s = session();
        s.set_revision("2025-11-25");
        let stream = s.open_request_stream(&[request_id(1)]).unwrap();
        let prime = stream.prime.expect("2025-11-25 streams are primed");
        let mut events = stream.events;
        s.release_request_stream(&request_id(1));
        assert!(ended(&mut events), "the response ends");
        s.route(progress_for(1));
        s.route(response(1));
        let mut resumed = s.resume_stream(prime).unwrap();
        assert_progress_then_answer_then_end(&mut resumed);
    }

    #[test]
    fn a_screened_answer_is_screened_before_it_is_sent_or_kept() {
        let s = session();
        let list = msg(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#);
        let call = msg(r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{}}"#);
        s.set_revision("2025-11-25");
        let stream = s
            .open_request_stream(&[request_id(1), request_id(2)])
            .unwrap();
        let settings = crate::oauth::Settings {
            tool_scopes: [("secret".to_owned(), ["s".to_owned()].into())].into(),
            ..crate::oauth::screen::tests::settings(&[])
        };
        let caller = crate::oauth::Caller {
            subject: "u".into(),
            scopes: Default::default(),
            client_id: None,
        };
        let screen = ToolScreen::for_caller(&settings, &caller).map(Arc::new);
        s.screen_tool_lists(&[list, call], screen.as_ref());
        let tools =
            r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"secret"},{"name":"open"}]}}"#;
        let other = r#"{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"secret"}]}}"#;
        s.route(Outbound::unrelated(msg(tools)));
        s.route(Outbound::unrelated(msg(other)));
        let mut events = stream.events;
        let first = events.try_recv().unwrap();
        assert!(!first.message.text().contains("secret"), "screened");
        assert!(first.message.text().contains("open"));
        let second = events.try_recv().unwrap();
        assert_eq!(
            second.message.text(),
            other,
            "only tools/list answers are screened"
        );
        // What a resume replays is what was sent.
        let mut replay = s.resume_stream(stream.prime.unwrap()).unwrap();
        assert_eq!(
            replay.try_recv().unwrap().message.text(),
            first.message.text()
        );
    }

    #[test]
    fn streams_of_older_revisions_are_neither_primed_nor_released() {
        let s = session();
        s.set_revision("2025-06-18");
        let stream = s.open_request_stream(&[request_id(1)]).unwrap();
        assert!(stream.prime.is_none());
        let mut events = stream.events;
        s.release_request_stream(&request_id(1));
        s.route(response(1));
        assert_eq!(
            events.try_recv().unwrap().message.id(),
            Some(&request_id(1))
        );
    }
}
