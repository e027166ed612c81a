//! Reading one log file as a stream: from the start or its last lines, up to a byte limit, and
//! with `follow`, on as the file grows until its writer is gone. Reads are in bounded chunks, so
//! no file is ever held in memory.

use std::io::SeekFrom;
use std::path::Path;
use std::time::Duration;

use futures::Stream;
use hyper::body::Bytes;
use tokio::fs::File;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

const CHUNK: usize = 32 * 1024;
/// How often a followed file is looked at once its end is reached.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// What to read (kubelet's `PodLogOptions`, as far as the file alone can answer them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadOptions {
    pub follow: bool,
    pub tail_lines: Option<u64>,
    pub limit_bytes: Option<u64>,
}

/// Opens `path` at the start of what `options` asks for. With `follow`, the stream goes on
/// while `writing()` says the file's writer may still add to it.
pub async fn open(
    path: &Path,
    options: ReadOptions,
    writing: impl Fn() -> bool + Send + 'static,
) -> std::io::Result<impl Stream<Item = std::io::Result<Bytes>> + Send + 'static> {
    let mut file = File::open(path).await?;
    if let Some(lines) = options.tail_lines {
        let start = tail_offset(&mut file, lines).await?;
        file.seek(SeekFrom::Start(start)).await?;
    }
    let state = Reader {
        file,
        remaining: options.limit_bytes,
        follow: options.follow,
        writing,
    };
    Ok(futures::stream::unfold(state, Reader::next))
}

struct Reader<W> {
    file: File,
    remaining: Option<u64>,
    follow: bool,
    writing: W,
}

impl<W: Fn() -> bool> Reader<W> {
    async fn next(mut self) -> Option<(std::io::Result<Bytes>, Self)> {
        let mut buf = vec![0; CHUNK];
        loop {
            let want = self
                .remaining
                .map_or(CHUNK, |r| r.min(CHUNK as u64) as usize);
            if want == 0 {
                return None;
            }
            // Asked before reading: if the writer was gone then, this read sees all it wrote.
            let writing = self.follow && (self.writing)();
            let n = match self.file.read(&mut buf[..want]).await {
                Ok(n) => n,
                // The error ends the stream: nothing is left to read.
                Err(e) => {
                    let done = Reader {
                        remaining: Some(0),
                        ..self
                    };
                    return Some((Err(e), done));
                }
            };
            if n == 0 {
                if !writing {
                    return None;
                }
                tokio::time::sleep(FOLLOW_POLL).await;
                continue;
            }
            if let Some(r) = self.remaining.as_mut() {
                *r -= n as u64;
            }
            buf.truncate(n);
            return Some((Ok(Bytes::from(buf)), self));
        }
    }
}

/// Where the last `lines` lines of `file` begin, found by reading backwards block by block. A
/// newline that ends the file ends the last line rather than starting an empty one.
async fn tail_offset(file: &mut File, lines: u64) -> std::io::Result<u64> {
    let len = file.metadata().await?.len();
    if lines == 0 {
        return Ok(len);
    }
    let mut buf = vec![0; CHUNK];
    let mut newlines = 0;
    let mut end = len;
    while end > 0 {
        let start = end.saturating_sub(CHUNK as u64);
        let block = &mut buf[..(end - start) as usize];
        file.seek(SeekFrom::Start(start)).await?;
        file.read_exact(block).await?;
        for (i, byte) in block.iter().enumerate().rev() {
            let offset = start + i as u64;
            if *byte == b'\n' && offset + 1 < len {
                newlines += 1;
                if newlines == lines {
                    return Ok(offset + 1);
                }
            }
        }
        end = start;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use futures::StreamExt;

    use super::*;

    async fn read_all(path: &Path, options: ReadOptions) -> String {
        let stream = open(path, options, || false).await.unwrap();
        let chunks: Vec<Bytes> = stream.map(|c| c.unwrap()).collect().await;
        String::from_utf8(chunks.concat()).unwrap()
    }

    fn file_with(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    #[tokio::test]
    async fn tail_takes_the_last_lines_with_or_without_a_final_newline() {
        let tail = |n| ReadOptions {
            tail_lines: Some(n),
            ..Default::default()
        };
        let f = file_with("a\nb\nc\n");
        assert_eq!(read_all(f.path(), tail(2)).await, "b\nc\n");
        assert_eq!(read_all(f.path(), tail(3)).await, "a\nb\nc\n");
        assert_eq!(read_all(f.path(), tail(9)).await, "a\nb\nc\n");
        assert_eq!(read_all(f.path(), tail(0)).await, "");
        let partial = file_with("a\nb\nc");
        assert_eq!(read_all(partial.path(), tail(1)).await, "c");
        assert_eq!(read_all(partial.path(), tail(2)).await, "b\nc");
    }

    #[tokio::test]
    async fn tail_finds_lines_across_blocks() {
        let long = "x".repeat(CHUNK + 10);
        let f = file_with(&format!("first\n{long}\n{long}\nlast\n"));
        let text = read_all(
            f.path(),
            ReadOptions {
                tail_lines: Some(2),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(text, format!("{long}\nlast\n"));
    }

    #[tokio::test]
    async fn limit_bytes_cuts_the_output() {
        let f = file_with(&"0123456789".repeat(CHUNK / 5));
        let limit = |n| ReadOptions {
            limit_bytes: Some(n),
            ..Default::default()
        };
        assert_eq!(read_all(f.path(), limit(4)).await, "0123");
        assert_eq!(
            read_all(f.path(), limit(CHUNK as u64 + 3)).await.len(),
            CHUNK + 3
        );
    }

    #[tokio::test]
    async fn follow_reads_what_is_appended_until_the_writer_is_gone() {
        let f = file_with("one\n");
        let writing = Arc::new(AtomicBool::new(true));
        let w = writing.clone();
        let options = ReadOptions {
            follow: true,
            ..Default::default()
        };
        let mut stream = Box::pin(
            open(f.path(), options, move || w.load(Ordering::SeqCst))
                .await
                .unwrap(),
        );
        assert_eq!(stream.next().await.unwrap().unwrap(), "one\n");
        let path = f.path().to_path_buf();
        let appender = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let mut text = std::fs::read_to_string(&path).unwrap();
            text.push_str("two\n");
            std::fs::write(&path, text).unwrap();
            writing.store(false, Ordering::SeqCst);
        });
        let rest: Vec<Bytes> = stream.map(|c| c.unwrap()).collect().await;
        appender.await.unwrap();
        assert_eq!(rest.concat(), b"two\n");
    }
}
