//! The hostile-client suite of `BENCHMARKS.md` (run by `bench/hostile.sh` against the release
//! binary): what an attacker or an unlucky client can cost the server, case by case.
//!
//! `hostile builtin ADDR PID`: runs every built-in-mode case against the server listening at ADDR,
//! whose process is PID, and prints one Markdown table row per case: what was sent, how the
//! server answered, how long the case took, and the server's RSS (resident, and the peak so
//! far) after it.
//!
//! `hostile bridge ADDR PID SESSIONS`: against a bridge whose child forks (`bench/hostile.sh`
//! starts it), opens and deletes SESSIONS sessions, and asks for a 5 MiB answer; prints the
//! processes under the server before, during and after, and how long the over-long answer took
//! to fail.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

type Error = Box<dyn std::error::Error>;

/// An HTTP answer read to its end (every request asks for `Connection: close`).
struct Answer {
    status: u16,
    head: String,
    body: String,
}

fn request(addr: &str, head: &str, body: &[u8]) -> Result<Answer, Error> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let head = format!(
        "{head}Host: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    // The server may answer (431, 413) and close before reading everything.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok(Answer {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    })
}

const MCP_HEADERS: &str =
    "Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n";

fn post(addr: &str, session: Option<&str>, body: &str) -> Result<Answer, Error> {
    let session = session.map_or(String::new(), |s| format!("Mcp-Session-Id: {s}\r\n"));
    request(
        addr,
        &format!("POST /mcp HTTP/1.1\r\n{MCP_HEADERS}{session}"),
        body.as_bytes(),
    )
}

fn initialize(addr: &str, version: &str) -> Result<String, Error> {
    let init = format!(
        r#"{{"jsonrpc":"2.0","id":0,"method":"initialize","params":{{"protocolVersion":"{version}","capabilities":{{}},"clientInfo":{{"name":"hostile","version":"1"}}}}}}"#
    );
    let answer = post(addr, None, &init)?;
    let session = answer
        .head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("mcp-session-id")
                .then(|| value.trim().to_owned())
        })
        .ok_or_else(|| format!("initialize answered {}: {}", answer.status, answer.body))?;
    post(
        addr,
        Some(&session),
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    )?;
    Ok(session)
}

/// `VmRSS` and `VmHWM` (peak) of a process, in MiB.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
            / 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Runs one case and prints its row.
fn case(pid: u32, name: &str, sent: &str, run: impl FnOnce() -> Result<String, Error>) {
    let started = Instant::now();
    let answer = run().unwrap_or_else(|e| format!("error: {e}"));
    let seconds = started.elapsed().as_secs_f64();
    let (rss, peak) = memory(pid);
    println!("| {name} | {sent} | {answer} | {seconds:.2} | {rss} | {peak} |");
}

fn count<T: PartialEq>(items: &[T], wanted: &T) -> usize {
    items.iter().filter(|i| *i == wanted).count()
}

fn slowloris(addr: &str, connections: usize) -> Result<String, Error> {
    let mut open = Vec::new();
    for _ in 0..connections {
        let mut s = TcpStream::connect(addr)?;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")?;
        s.set_nonblocking(true)?;
        open.push(s);
    }
    // Meanwhile an honest probe still gets through.
    let probe = Instant::now();
    let healthz = request(addr, "GET /healthz HTTP/1.1\r\n", b"")?;
    let probe = probe.elapsed();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    while !open.is_empty() && started.elapsed() < Duration::from_secs(120) {
        open.retain_mut(|s| match s.read(&mut buf) {
            Ok(0) => false,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => true,
            _ => false,
        });
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(format!(
        "/healthz meanwhile: {} in {:.1} ms; {} of {connections} still open after {:.1} s",
        healthz.status,
        probe.as_secs_f64() * 1000.0,
        open.len(),
        started.elapsed().as_secs_f64()
    ))
}

fn builtin_cases(addr: &str, pid: u32) {
    println!("| case | sent | answer | seconds | RSS MiB | peak MiB |");
    println!("|---|---|---|---|---|---|");
    case(pid, "idle", "nothing", || Ok("-".into()));
    case(
        pid,
        "slowloris",
        "2,000 connections, half a request head each",
        || slowloris(addr, 2000),
    );
    case(
        pid,
        "invented methods",
        "2,000 requests `BREW0..` to /healthz",
        || {
            let before = request(addr, "GET /metrics HTTP/1.1\r\n", b"")?.body.len();
            let mut statuses = Vec::new();
            for n in 0..2000 {
                statuses
                    .push(request(addr, &format!("BREW{n} /healthz HTTP/1.1\r\n"), b"")?.status);
            }
            let after = request(addr, "GET /metrics HTTP/1.1\r\n", b"")?.body.len();
            Ok(format!(
                "{} x 405; /metrics {before} -> {after} bytes",
                count(&statuses, &405)
            ))
        },
    );
    case(
        pid,
        "huge headers",
        "100 requests with a 1 MiB header",
        || {
            let big = "x".repeat(1 << 20);
            let mut statuses = Vec::new();
            for _ in 0..100 {
                statuses.push(
                    request(
                        addr,
                        &format!("GET /healthz HTTP/1.1\r\nX-Big: {big}\r\n"),
                        b"",
                    )?
                    .status,
                );
            }
            Ok(format!("{} x 431", count(&statuses, &431)))
        },
    );
    case(
        pid,
        "deep JSON",
        "100 bodies of 1 MiB of `[`, in a session",
        || {
            let session = initialize(addr, "2025-11-25")?;
            let deep = "[".repeat(1 << 20);
            let mut statuses = Vec::new();
            for _ in 0..100 {
                statuses.push(post(addr, Some(&session), &deep)?.status);
            }
            Ok(format!("{} x 400", count(&statuses, &400)))
        },
    );
    case(
        pid,
        "batch",
        "a batch of 10,000 `ping`s (2025-03-26)",
        || {
            let session = initialize(addr, "2025-03-26")?;
            let pings: Vec<String> = (0..10_000)
                .map(|n| format!(r#"{{"jsonrpc":"2.0","id":{n},"method":"ping"}}"#))
                .collect();
            let answer = post(addr, Some(&session), &format!("[{}]", pings.join(",")))?;
            let answers = serde_json::from_str::<serde_json::Value>(&answer.body)
                .ok()
                .and_then(|v| v.as_array().map(Vec::len))
                .unwrap_or(0);
            Ok(format!("{} with {answers} answers", answer.status))
        },
    );
    case(
        pid,
        "big answers",
        "200 `echo` calls of 1 MiB in one session",
        || {
            let session = initialize(addr, "2025-11-25")?;
            let message = "x".repeat(1 << 20);
            let mut statuses = Vec::new();
            for n in 0..200 {
                let call = format!(
                    r#"{{"jsonrpc":"2.0","id":{n},"method":"tools/call","params":{{"name":"echo","arguments":{{"message":"{message}"}}}}}}"#
                );
                statuses.push(post(addr, Some(&session), &call)?.status);
            }
            Ok(format!("{} x 200", count(&statuses, &200)))
        },
    );
    case(
        pid,
        "forged resumes",
        "10,000 GETs with random `Last-Event-ID`s",
        || {
            let session = initialize(addr, "2025-11-25")?;
            let mut statuses = Vec::new();
            let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
            for _ in 0..10_000 {
                // xorshift: ids across the whole range, streams that exist and ones that do not.
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let id = if seed.is_multiple_of(2) {
                    seed
                } else {
                    seed % (1 << 34)
                };
                statuses.push(
                request(
                    addr,
                    &format!(
                        "GET /mcp HTTP/1.1\r\nAccept: text/event-stream\r\nMcp-Session-Id: {session}\r\nLast-Event-ID: {id}\r\n"
                    ),
                    b"",
                )?
                .status,
            );
            }
            Ok(format!("{} x 400", count(&statuses, &400)))
        },
    );
    case(
        pid,
        "abandoned sessions",
        "10,000 sessions opened, never used again",
        || {
            let mut refused = 0;
            for _ in 0..10_000 {
                if initialize(addr, "2025-11-25").is_err() {
                    refused += 1;
                }
            }
            let metrics = request(addr, "GET /metrics HTTP/1.1\r\n", b"")?.body;
            let active = metrics
                .lines()
                .find_map(|l| l.strip_prefix("mcp_server_sessions_active "))
                .unwrap_or("?")
                .to_owned();
            Ok(format!("{refused} refused (503); sessions_active {active}"))
        },
    );
}

/// Processes under `pid` (children, grandchildren, ...), from `/proc`.
fn descendants(pid: u32) -> usize {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
                .filter_map(|p| {
                    let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
                    let ppid = stat
                        .rsplit_once(')')?
                        .1
                        .split_whitespace()
                        .nth(1)?
                        .parse()
                        .ok()?;
                    Some((p, ppid))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut found = vec![pid];
    let mut at = 0;
    while at < found.len() {
        let parent = found[at];
        found.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        at += 1;
    }
    found.len() - 1
}

fn bridge_cases(addr: &str, pid: u32, sessions: usize) -> Result<(), Error> {
    let before = descendants(pid);
    let ids: Vec<String> = (0..sessions)
        .map(|_| initialize(addr, "2025-06-18"))
        .collect::<Result<_, _>>()?;
    std::thread::sleep(Duration::from_millis(500));
    let during = descendants(pid);
    let started = Instant::now();
    let big = post(
        addr,
        Some(&ids[0]),
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"big_last","arguments":{}}}"#,
    )?;
    let big_seconds = started.elapsed().as_secs_f64();
    let reason = big
        .body
        .split("\"reason\":\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or("none")
        .to_owned();
    for id in &ids {
        request(
            addr,
            &format!("DELETE /mcp HTTP/1.1\r\nMcp-Session-Id: {id}\r\n"),
            b"",
        )?;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut after = descendants(pid);
    while after > before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        after = descendants(pid);
    }
    let (rss, peak) = memory(pid);
    println!(
        "bridge: processes under the server {before} before, {during} with {sessions} sessions, \
         {after} after DELETE; a 5 MiB answer failed ({reason}) in {big_seconds:.2} s; \
         RSS {rss} MiB, peak {peak} MiB"
    );
    Ok(())
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[1..] {
        ["builtin", addr, pid] => builtin_cases(addr, pid.parse()?),
        ["bridge", addr, pid, sessions] => bridge_cases(addr, pid.parse()?, sessions.parse()?)?,
        _ => {
            return Err(
                "usage: hostile builtin ADDR PID | hostile bridge ADDR PID SESSIONS".into(),
            );
        }
    }
    Ok(())
}
