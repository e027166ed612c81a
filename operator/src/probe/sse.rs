//! `text/event-stream` framing: turns bytes, in whatever chunks the network delivers them, into
//! events, following the WHATWG event-stream parsing rules the MCP transports rely on.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field; `message` when the server sent none.
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    pub id: Option<String>,
}

/// Incremental parser: feed it chunks, it returns the events they complete.
#[derive(Debug, Default)]
pub struct Parser {
    line: Vec<u8>,
    /// The previous chunk ended in CR: an LF starting this one belongs to that line ending.
    after_cr: bool,
    started: bool,
    event: Option<String>,
    /// `Some` once a `data:` line was seen for the pending event (even an empty one).
    data: Option<String>,
    id: Option<String>,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

impl Parser {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn feed(&mut self, mut bytes: &[u8]) -> Vec<Event> {
        let mut events = Vec::new();
        if self.after_cr && !bytes.is_empty() {
            if bytes[0] == b'\n' {
                bytes = &bytes[1..];
            }
            self.after_cr = false;
        }
        while let Some(end) = bytes.iter().position(|b| *b == b'\n' || *b == b'\r') {
            self.line.extend_from_slice(&bytes[..end]);
            let crlf = bytes[end] == b'\r' && bytes.get(end + 1) == Some(&b'\n');
            if bytes[end] == b'\r' && end + 1 == bytes.len() {
                self.after_cr = true;
            }
            bytes = &bytes[end + if crlf { 2 } else { 1 }..];
            let line = std::mem::take(&mut self.line);
            if let Some(event) = self.line_done(&line) {
                events.push(event);
            }
        }
        self.line.extend_from_slice(bytes);
        events
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
            // `retry` and unknown fields do not matter to a handshake.
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
            // The last event id persists across events, as in a browser's EventSource.
            id: self.id.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in_chunks(input: &[u8], chunk: usize) -> Vec<Event> {
        let mut parser = Parser::new();
        input.chunks(chunk).flat_map(|c| parser.feed(c)).collect()
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
        let mut parser = Parser::new();
        assert!(parser.feed(b"\xEF\xBB\xBFdata: 1\n").is_empty());
        assert_eq!(parser.feed(b"\ndata: 2"), vec![message("1")]);
        assert!(parser.feed(b"\n").is_empty());
        assert_eq!(parser.feed(b"\n"), vec![message("2")]);
    }

    #[test]
    fn a_field_without_a_colon_has_an_empty_value() {
        let events = parse_in_chunks(b"data\ndata\n\n", 64);
        assert_eq!(events, vec![message("\n")]);
    }
}
