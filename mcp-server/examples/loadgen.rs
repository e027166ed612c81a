//! Load generator for the benchmark in `BENCHMARKS.md` (run by `bench/run.sh`).
//!
//! `loadgen echo URL SESSIONS SECONDS [CALLS_URL]`: opens SESSIONS Streamable HTTP sessions at
//! URL, then each session calls the `echo` tool back to back on its own keep-alive connection for
//! SECONDS; prints one JSON line with requests/s and latency percentiles. Works against any server
//! that follows the transport (JSON or SSE answers). With CALLS_URL the calls go there instead
//! (another replica of the same app, which forwards them to the session's owner).
//!
//! `loadgen idle URL COUNT SECONDS`: opens COUNT legacy SSE streams (`GET URL`), waits for each
//! one's first event, and holds them all open for SECONDS (the caller measures the server's RSS).

use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// A minimal HTTP/1.1 keep-alive connection: enough for fixed-shape benchmark traffic, and
/// identical for every server measured.
struct Connection {
    reader: BufReader<TcpStream>,
    host: String,
}

struct Answer {
    status: u16,
    session: Option<String>,
    body: String,
}

impl Connection {
    async fn open(host: &str) -> Result<Self, Error> {
        let stream = TcpStream::connect(host).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            reader: BufReader::new(stream),
            host: host.to_owned(),
        })
    }

    async fn post(
        &mut self,
        path: &str,
        session: Option<&str>,
        body: &str,
    ) -> Result<Answer, Error> {
        let mut request = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2025-06-18\r\nContent-Length: {}\r\n",
            self.host,
            body.len()
        );
        if let Some(id) = session {
            request.push_str(&format!("Mcp-Session-Id: {id}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(body);
        self.reader.get_mut().write_all(request.as_bytes()).await?;
        self.read_answer().await
    }

    async fn read_answer(&mut self) -> Result<Answer, Error> {
        let mut line = String::new();
        self.reader.read_line(&mut line).await?;
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or("bad status line")?;
        let (mut length, mut chunked, mut session) = (None, false, None);
        loop {
            line.clear();
            self.reader.read_line(&mut line).await?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                let value = value.trim();
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => length = value.parse::<usize>().ok(),
                    "transfer-encoding" => chunked = value.contains("chunked"),
                    "mcp-session-id" => session = Some(value.to_owned()),
                    _ => {}
                }
            }
        }
        let body = if chunked {
            self.read_chunked().await?
        } else {
            let mut buf = vec![0; length.unwrap_or(0)];
            self.reader.read_exact(&mut buf).await?;
            String::from_utf8_lossy(&buf).into_owned()
        };
        Ok(Answer {
            status,
            session,
            body,
        })
    }

    async fn read_chunked(&mut self) -> Result<String, Error> {
        let mut body = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line).await?;
            let size = usize::from_str_radix(line.trim(), 16)?;
            let mut chunk = vec![0; size + 2];
            self.reader.read_exact(&mut chunk).await?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
        Ok(String::from_utf8_lossy(&body).into_owned())
    }
}

fn split_url(url: &str) -> Result<(String, String), Error> {
    let rest = url.strip_prefix("http://").ok_or("only http:// URLs")?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    Ok((host.to_owned(), format!("/{path}")))
}

/// Opens a session on its own connection: `initialize`, then `notifications/initialized`.
async fn open_session(host: String, path: String) -> Result<(Connection, String), Error> {
    let mut conn = Connection::open(&host).await?;
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"loadgen","version":"1"}}}"#;
    let answer = conn.post(&path, None, init).await?;
    let session = answer.session.ok_or("no session id")?;
    let note = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    conn.post(&path, Some(&session), note).await?;
    Ok((conn, session))
}

/// Calls `echo` back to back until `until`, returning each call's latency in microseconds.
async fn call_echo(
    mut conn: Connection,
    path: String,
    session: String,
    until: Instant,
) -> Result<Vec<u32>, Error> {
    let mut latencies = Vec::new();
    let mut id = 1u64;
    while Instant::now() < until {
        let call = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo","arguments":{{"message":"hello"}}}}}}"#
        );
        let started = Instant::now();
        let answer = conn.post(&path, Some(&session), &call).await?;
        latencies.push(started.elapsed().as_micros() as u32);
        if answer.status != 200 || !answer.body.contains("hello") {
            return Err(format!("unexpected answer {}: {}", answer.status, answer.body).into());
        }
        id += 1;
    }
    Ok(latencies)
}

async fn echo(
    url: &str,
    sessions: usize,
    seconds: u64,
    calls_url: Option<&str>,
) -> Result<(), Error> {
    let (host, path) = split_url(url)?;
    let calls_host = calls_url.map(split_url).transpose()?.map(|(host, _)| host);
    // Sessions are opened first and the clock starts after, so a bridge's child start-up is not
    // counted as request latency.
    let opening: Vec<_> = (0..sessions)
        .map(|_| tokio::spawn(open_session(host.clone(), path.clone())))
        .collect();
    let mut opened = Vec::new();
    for task in opening {
        let (conn, session) = task.await??;
        let conn = match &calls_host {
            Some(other) => Connection::open(other).await?,
            None => conn,
        };
        opened.push((conn, session));
    }
    // One warm-up call per session (a bridged child's first call loads its code paths).
    let warming: Vec<_> = opened
        .into_iter()
        .map(|(conn, session)| {
            let path = path.clone();
            tokio::spawn(async move {
                let mut conn = conn;
                let call = r#"{"jsonrpc":"2.0","id":0,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hello"}}}"#;
                conn.post(&path, Some(&session), call).await?;
                Ok::<_, Error>((conn, session))
            })
        })
        .collect();
    let mut ready = Vec::new();
    for task in warming {
        ready.push(task.await??);
    }
    let until = Instant::now() + Duration::from_secs(seconds);
    let tasks: Vec<_> = ready
        .into_iter()
        .map(|(conn, session)| tokio::spawn(call_echo(conn, path.clone(), session, until)))
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    all.sort_unstable();
    let pick = |q: f64| {
        all.get(((all.len() as f64 * q) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    println!(
        r#"{{"requests":{},"rps":{:.0},"p50_ms":{:.3},"p99_ms":{:.3}}}"#,
        all.len(),
        all.len() as f64 / seconds as f64,
        f64::from(pick(0.50)) / 1000.0,
        f64::from(pick(0.99)) / 1000.0
    );
    Ok(())
}

async fn idle(url: &str, count: usize, seconds: u64) -> Result<(), Error> {
    let (host, path) = split_url(url)?;
    let mut streams = Vec::with_capacity(count);
    for _ in 0..count {
        let mut stream = TcpStream::connect(&host).await?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        while !seen.windows(2).any(|w| w == b"\n\n") {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Err("stream closed early".into());
            }
            seen.extend_from_slice(&buf[..n]);
        }
        streams.push(stream);
    }
    println!(r#"{{"open_streams":{}}}"#, streams.len());
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mode, url, n, seconds, calls_url) = match args.as_slice() {
        [mode, url, n, seconds] => (mode, url, n, seconds, None),
        [mode, url, n, seconds, calls] => (mode, url, n, seconds, Some(calls.as_str())),
        _ => return Err("usage: loadgen <echo|idle> URL N SECONDS [CALLS_URL]".into()),
    };
    let (n, seconds) = (n.parse()?, seconds.parse()?);
    match mode.as_str() {
        "echo" => echo(url, n, seconds, calls_url).await,
        "idle" => idle(url, n, seconds).await,
        other => Err(format!("unknown mode {other}").into()),
    }
}
