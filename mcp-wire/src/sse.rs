//! `text/event-stream` framing, both ways: a [`Parser`] that turns bytes, in whatever chunks the
//! network delivers them, into events under a size bound (the WHATWG parsing rules the MCP
//! transports rely on), and a [`Frame`] writer for events, comments and keep-alives.

use std::time::Duration;

/// A keep-alive: an empty comment, which every client skips.
pub const KEEP_ALIVE: &[u8] = b":\n\n";

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Why bytes could not be read or written as an event stream.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    #[error("an event is larger than {limit} bytes")]
    EventTooLarge { limit: usize },
    #[error("the {field} field of an event cannot contain a line break")]
    LineBreakInField { field: &'static str },
    #[error("an event id cannot contain a NUL character (clients ignore such ids)")]
    NulInId,
}

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field; `message` when the server sent none.
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// The last event id seen on the stream, as a browser's `EventSource` keeps it.
    pub id: Option<String>,
}

/// Incremental parser: feed it chunks, it returns the events they complete. The `retry` field
/// and unknown fields are skipped.
#[derive(Debug)]
pub struct Parser {
    /// Most bytes held for one event: its unfinished line and the fields read so far.
    max_event_bytes: usize,
    line: Vec<u8>,
    /// The previous chunk ended in CR: an LF starting this one belongs to that line ending.
    after_cr: bool,
    started: bool,
    event: Option<String>,
    /// `Some` once a `data:` line was seen for the pending event (even an empty one).
    data: Option<String>,
    id: Option<String>,
}

impl Parser {
    /// A parser that refuses events (or lines) larger than `max_event_bytes`.
    pub fn new(max_event_bytes: usize) -> Self {
        Self {
            max_event_bytes,
            line: Vec::new(),
            after_cr: false,
            started: false,
            event: None,
            data: None,
            id: None,
        }
    }

    /// The events `bytes` complete. After an error the stream cannot be trusted: stop reading.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<Vec<Event>, SseError> {
        let mut events = Vec::new();
        if self.after_cr && !bytes.is_empty() {
            if bytes[0] == b'\n' {
                bytes = &bytes[1..];
            }
            self.after_cr = false;
        }
        while let Some(end) = bytes.iter().position(|b| *b == b'\n' || *b == b'\r') {
            self.line.extend_from_slice(&bytes[..end]);
            self.check_size()?;
            let crlf = bytes[end] == b'\r' && bytes.get(end + 1) == Some(&b'\n');
            if bytes[end] == b'\r' && end + 1 == bytes.len() {
                self.after_cr = true;
            }
            bytes = &bytes[end + if crlf { 2 } else { 1 }..];
            let line = std::mem::take(&mut self.line);
            if let Some(event) = self.line_done(&line) {
                events.push(event);
            }
            self.check_size()?;
        }
        self.line.extend_from_slice(bytes);
        self.check_size()?;
        Ok(events)
    }

    fn held(&self) -> usize {
        let field = |f: &Option<String>| f.as_ref().map_or(0, String::len);
        self.line.len() + field(&self.event) + field(&self.data) + field(&self.id)
    }

    fn check_size(&self) -> Result<(), SseError> {
        if self.held() > self.max_event_bytes {
            return Err(SseError::EventTooLarge {
                limit: self.max_event_bytes,
            });
        }
        Ok(())
    }

    fn line_done(&mut self, mut line: &[u8]) -> Option<Event> {
        if !self.started {
            // A byte-order mark may open the stream, and only there.
            self.started = true;
            line = line.strip_prefix(BOM).unwrap_or(line);
        }
        if line.is_empty() {
            return self.dispatch();
        }
        if line.starts_with(b":") {
            // Comments: servers send them as keep-alives.
            return None;
        }
        let text = String::from_utf8_lossy(line);
        let (field, value) = match text.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (text.as_ref(), ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            "id" if !value.contains('\0') => self.id = Some(value.to_owned()),
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<Event> {
        let event = self.event.take();
        // An event without data lines is not dispatched (the specification's rule).
        let data = self.data.take()?;
        Some(Event {
            event: event
                .filter(|e| !e.is_empty())
                .unwrap_or_else(|| "message".into()),
            data,
            id: self.id.clone(),
        })
    }
}

/// One event to write. Line breaks in `data` become separate `data:` lines (a reader joins them
/// with `\n`, so CRLF and CR arrive as LF); the other fields cannot hold line breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Frame<'a> {
    event: Option<&'a str>,
    id: Option<&'a str>,
    retry: Option<Duration>,
    data: &'a str,
}

impl<'a> Frame<'a> {
    /// An event carrying `data` (which may be empty: the event is still dispatched).
    pub fn new(data: &'a str) -> Self {
        Self {
            event: None,
            id: None,
            retry: None,
            data,
        }
    }

    /// The event's type (`endpoint`, `message`); readers take `message` when there is none.
    pub fn event(mut self, name: &'a str) -> Self {
        self.event = Some(name);
        self
    }

    /// The id a client names in `Last-Event-ID` to resume after this event.
    pub fn id(mut self, id: &'a str) -> Self {
        self.id = Some(id);
        self
    }

    /// How long a client waits before reconnecting once the stream ends.
    pub fn retry(mut self, after: Duration) -> Self {
        self.retry = Some(after);
        self
    }

    /// The event's bytes, ending with the blank line that dispatches it.
    pub fn encode(&self) -> Result<Vec<u8>, SseError> {
        let mut out = Vec::with_capacity(self.data.len() + 64);
        if let Some(event) = self.event {
            field(&mut out, "event", one_line("event", event)?);
        }
        if let Some(id) = self.id {
            if id.contains('\0') {
                return Err(SseError::NulInId);
            }
            field(&mut out, "id", one_line("id", id)?);
        }
        if let Some(retry) = self.retry {
            field(&mut out, "retry", &retry.as_millis().to_string());
        }
        let mut rest = self.data;
        loop {
            match rest.find(['\r', '\n']) {
                Some(end) => {
                    field(&mut out, "data", &rest[..end]);
                    let crlf = rest[end..].starts_with("\r\n");
                    rest = &rest[end + if crlf { 2 } else { 1 }..];
                }
                None => {
                    field(&mut out, "data", rest);
                    break;
                }
            }
        }
        out.push(b'\n');
        Ok(out)
    }
}

impl<'a> From<&'a Event> for Frame<'a> {
    fn from(event: &'a Event) -> Self {
        let frame = Frame::new(&event.data).event(&event.event);
        match &event.id {
            Some(id) => frame.id(id),
            None => frame,
        }
    }
}

/// A comment (`:text`), which readers skip; servers send them to keep idle connections open.
pub fn comment(text: &str) -> Result<Vec<u8>, SseError> {
    let text = one_line("comment", text)?;
    Ok(format!(":{text}\n\n").into_bytes())
}

fn one_line<'t>(name: &'static str, value: &'t str) -> Result<&'t str, SseError> {
    if value.contains(['\r', '\n']) {
        return Err(SseError::LineBreakInField { field: name });
    }
    Ok(value)
}

fn field(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: usize = 1 << 16;

    fn parse_in_chunks(input: &[u8], chunk: usize) -> Vec<Event> {
        let mut parser = Parser::new(LIMIT);
        input
            .chunks(chunk)
            .flat_map(|c| parser.feed(c).unwrap())
            .collect()
    }

    fn message(data: &str) -> Event {
        Event {
            event: "message".into(),
            data: data.into(),
            id: None,
        }
    }

    #[test]
    fn multi_line_data_is_joined_with_newlines() {
        let events = parse_in_chunks(b"data: {\"a\":\ndata:  1}\n\n", 64);
        assert_eq!(events, vec![message("{\"a\":\n 1}")]);
    }

    #[test]
    fn comments_and_events_without_data_dispatch_nothing() {
        let events = parse_in_chunks(b": keep-alive\n\nevent: ping\n\n:\ndata: x\n\n", 64);
        assert_eq!(events, vec![message("x")]);
    }

    #[test]
    fn every_line_ending_works_in_every_chunking() {
        let input =
            b"event: endpoint\r\ndata: /messages?sessionId=1\r\n\r\nid: 7\rdata: a\r\rdata: b\n\n";
        let expected = vec![
            Event {
                event: "endpoint".into(),
                data: "/messages?sessionId=1".into(),
                id: None,
            },
            Event {
                event: "message".into(),
                data: "a".into(),
                id: Some("7".into()),
            },
            // The last event id carries over to later events.
            Event {
                event: "message".into(),
                data: "b".into(),
                id: Some("7".into()),
            },
        ];
        for chunk in 1..=input.len() {
            assert_eq!(parse_in_chunks(input, chunk), expected, "chunks of {chunk}");
        }
    }

    #[test]
    fn empty_data_is_an_event_and_missing_space_is_allowed() {
        // 2025-11-25 servers prime a stream with an id and empty data.
        let events = parse_in_chunks(b"id: 0\ndata:\n\ndata:x\n\n", 3);
        assert_eq!(events[0].data, "");
        assert_eq!(events[0].id.as_deref(), Some("0"));
        assert_eq!(events[1].data, "x");
    }

    #[test]
    fn a_leading_byte_order_mark_is_ignored_and_unterminated_lines_wait() {
        let mut parser = Parser::new(LIMIT);
        assert!(parser.feed(b"\xEF\xBB\xBFdata: 1\n").unwrap().is_empty());
        assert_eq!(parser.feed(b"\ndata: 2").unwrap(), vec![message("1")]);
        assert!(parser.feed(b"\n").unwrap().is_empty());
        assert_eq!(parser.feed(b"\n").unwrap(), vec![message("2")]);
    }

    #[test]
    fn a_field_without_a_colon_has_an_empty_value() {
        let events = parse_in_chunks(b"data\ndata\n\n", 64);
        assert_eq!(events, vec![message("\n")]);
    }

    #[test]
    fn a_line_without_end_is_refused_past_the_bound() {
        let mut parser = Parser::new(100);
        assert_eq!(parser.feed(&[b'x'; 60]), Ok(vec![]));
        assert_eq!(
            parser.feed(&[b'x'; 60]),
            Err(SseError::EventTooLarge { limit: 100 })
        );
    }

    #[test]
    fn many_short_data_lines_are_refused_past_the_bound() {
        let mut parser = Parser::new(100);
        let got = (0..20).try_for_each(|_| parser.feed(b"data: 0123456789\n").map(drop));
        assert_eq!(got, Err(SseError::EventTooLarge { limit: 100 }));
    }

    #[test]
    fn the_bound_is_per_event_not_per_stream() {
        let mut parser = Parser::new(100);
        for _ in 0..100 {
            let events = parser.feed(b"data: 0123456789\n\n: keep-alive\n").unwrap();
            assert_eq!(events, vec![message("0123456789")]);
        }
    }

    #[test]
    fn written_events_read_back_the_same() {
        let cases = [
            Event {
                event: "endpoint".into(),
                data: "/messages?sessionId=abc".into(),
                id: None,
            },
            Event {
                event: "message".into(),
                data: "{\"jsonrpc\":\"2.0\"}".into(),
                id: Some("42".into()),
            },
            Event {
                event: "message".into(),
                data: " leading space\nsecond line\n".into(),
                id: Some("43".into()),
            },
            Event {
                event: "message".into(),
                data: String::new(),
                id: Some("44".into()),
            },
        ];
        let mut stream = Vec::new();
        for event in &cases {
            stream.extend(Frame::from(event).encode().unwrap());
            stream.extend_from_slice(KEEP_ALIVE);
        }
        for chunk in [1, 7, stream.len()] {
            assert_eq!(parse_in_chunks(&stream, chunk), cases, "chunks of {chunk}");
        }
    }

    #[test]
    fn carriage_returns_in_data_become_separate_lines() {
        let bytes = Frame::new("a\r\nb\rc").encode().unwrap();
        assert_eq!(bytes, b"data: a\ndata: b\ndata: c\n\n");
        assert_eq!(parse_in_chunks(&bytes, 64), vec![message("a\nb\nc")]);
    }

    #[test]
    fn a_priming_event_carries_id_retry_and_empty_data() {
        let bytes = Frame::new("")
            .id("0")
            .retry(Duration::from_secs(1))
            .encode()
            .unwrap();
        assert_eq!(bytes, b"id: 0\nretry: 1000\ndata: \n\n");
    }

    #[test]
    fn line_breaks_in_names_ids_and_comments_are_refused() {
        let broken = SseError::LineBreakInField { field: "event" };
        assert_eq!(Frame::new("x").event("a\nb").encode(), Err(broken));
        let broken = SseError::LineBreakInField { field: "id" };
        assert_eq!(Frame::new("x").id("1\r").encode(), Err(broken));
        assert_eq!(Frame::new("x").id("1\0").encode(), Err(SseError::NulInId));
        let broken = SseError::LineBreakInField { field: "comment" };
        assert_eq!(comment("a\nb"), Err(broken));
        assert_eq!(comment(" ping").unwrap(), b": ping\n\n");
    }
}
