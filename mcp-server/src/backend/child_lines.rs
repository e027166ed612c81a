//! Framing a bridged child's stdout into lines, bounded in memory: once a line passes the limit,
//! only its first and last bytes are kept (enough to find the id of the request it answers) and
//! the rest is skipped without being buffered; it is reported when it ends. A line that is not
//! UTF-8 is reported as such. Unlike `LinesCodec`, which only says that some line was
//! too long, this lets the bridge fail the one request such a line answers.

use tokio_util::bytes::{Buf, BytesMut};
use tokio_util::codec::Decoder;

/// Bytes kept from each end of an over-long line.
pub const KEPT_ENDS: usize = 64 * 1024;

#[derive(Debug, PartialEq, Eq)]
pub enum ChildLine {
    /// A complete line, without its line break.
    Text(String),
    /// A line that is not valid UTF-8.
    NotUtf8(Vec<u8>),
    /// A line over the limit: its first and last bytes.
    TooLong { head: Vec<u8>, tail: Vec<u8> },
}

pub struct ChildLines {
    max: usize,
    /// Where the search for a line break resumes in the buffer.
    searched: usize,
    /// Inside an over-long line: its first bytes, and its last bytes so far.
    skipping: Option<(Vec<u8>, Vec<u8>)>,
}

impl ChildLines {
    pub fn new(max_line_bytes: usize) -> Self {
        Self {
            max: max_line_bytes,
            searched: 0,
            skipping: None,
        }
    }
}

/// Appends `bytes` to `tail`, keeping only its last `KEPT_ENDS` bytes.
fn keep_tail(tail: &mut Vec<u8>, bytes: &[u8]) {
    tail.extend_from_slice(&bytes[bytes.len().saturating_sub(KEPT_ENDS)..]);
    let excess = tail.len().saturating_sub(KEPT_ENDS);
    tail.drain(..excess);
}

fn line(bytes: &[u8]) -> ChildLine {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => ChildLine::Text(text.to_owned()),
        Err(_) => ChildLine::NotUtf8(bytes.to_vec()),
    }
}

impl Decoder for ChildLines {
    type Item = ChildLine;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<ChildLine>, std::io::Error> {
        let newline = buf[self.searched..]
            .iter()
            .position(|b| *b == b'\n')
            .map(|at| at + self.searched);
        if let Some((head, mut tail)) = self.skipping.take() {
            return Ok(match newline {
                Some(at) => {
                    keep_tail(&mut tail, &buf[..at]);
                    buf.advance(at + 1);
                    self.searched = 0;
                    Some(ChildLine::TooLong { head, tail })
                }
                None => {
                    keep_tail(&mut tail, buf);
                    buf.clear();
                    self.searched = 0;
                    self.skipping = Some((head, tail));
                    None
                }
            });
        }
        match newline {
            Some(at) if at <= self.max => {
                let text = buf.split_to(at + 1);
                self.searched = 0;
                Ok(Some(line(&text[..at])))
            }
            _ if buf.len() > self.max || newline.is_some() => {
                // Over the limit: keep the ends, drop the middle, and go on skipping to the line
                // break. Reported once the line ends, so the tail (where some writers put the id)
                // is known.
                let head = buf[..KEPT_ENDS.min(buf.len())].to_vec();
                self.skipping = Some((head, Vec::new()));
                self.searched = 0;
                self.decode(buf)
            }
            _ => {
                self.searched = buf.len();
                Ok(None)
            }
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<ChildLine>, std::io::Error> {
        if let Some(item) = self.decode(buf)? {
            return Ok(Some(item));
        }
        // A last line without its line break.
        if let Some((head, tail)) = self.skipping.take() {
            return Ok(Some(ChildLine::TooLong { head, tail }));
        }
        if buf.is_empty() {
            return Ok(None);
        }
        let rest = buf.split();
        self.searched = 0;
        Ok(Some(line(&rest)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(max: usize, input: &[u8]) -> Vec<ChildLine> {
        let mut codec = ChildLines::new(max);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        // Fed in small pieces, as a pipe delivers them.
        for chunk in input.chunks(7) {
            buf.extend_from_slice(chunk);
            while let Some(item) = codec.decode(&mut buf).unwrap() {
                out.push(item);
            }
        }
        while let Some(item) = codec.decode_eof(&mut buf).unwrap() {
            out.push(item);
        }
        out
    }

    #[test]
    fn lines_within_the_limit_pass_whole() {
        assert_eq!(
            decode_all(10, b"ab\ncd\r\nlast"),
            [
                ChildLine::Text("ab".into()),
                ChildLine::Text("cd".into()),
                ChildLine::Text("last".into())
            ]
        );
    }

    #[test]
    fn an_over_long_line_is_reported_with_its_ends_and_the_next_line_survives() {
        let long = format!("{{\"id\":1,{}\"end\":2}}", "x".repeat(200_000));
        let input = format!("{long}\nok\n");
        let out = decode_all(1000, input.as_bytes());
        assert_eq!(out.len(), 2, "{:?}", out.len());
        let ChildLine::TooLong { head, tail } = &out[0] else {
            panic!("expected TooLong");
        };
        assert!(head.starts_with(b"{\"id\":1,") && head.len() <= KEPT_ENDS);
        assert!(tail.ends_with(b"\"end\":2}") && tail.len() <= KEPT_ENDS);
        assert_eq!(out[1], ChildLine::Text("ok".into()));
    }

    #[test]
    fn the_buffer_stays_bounded_while_a_line_is_skipped() {
        let mut codec = ChildLines::new(100);
        let mut buf = BytesMut::new();
        for _ in 0..1000 {
            buf.extend_from_slice(&[b'x'; 4096]);
            assert!(codec.decode(&mut buf).unwrap().is_none());
            assert!(buf.len() <= 4096 + 100);
        }
    }

    #[test]
    fn invalid_utf8_is_reported_as_such() {
        assert_eq!(
            decode_all(100, b"\xff\xfe\nok\n"),
            [
                ChildLine::NotUtf8(vec![0xff, 0xfe]),
                ChildLine::Text("ok".into())
            ]
        );
    }
}
