//! What a hostile or unlucky client can cost, checked against the real binary: metric series,
//! connections that never finish a request, and memory kept per session. Each test states the
//! bound it proves.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Server, parse_response};

/// Waits until the server closes `stream` (end of file or a reset), up to `limit`; returns how
/// long it took, or `None` if the connection is still open.
fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout can be set");
    let mut buf = [0u8; 4096];
    while started.elapsed() < limit {
        match stream.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some(started.elapsed()),
        }
    }
    None
}

fn connect(server: &Server) -> TcpStream {
    TcpStream::connect(&server.addr).expect("server accepts connections")
}

#[test]
fn invented_http_methods_do_not_grow_the_metrics() {
    let server = Server::start(&[]);
    let before = server.request("GET", "/metrics", &[], "").body.len();
    for n in 0..200 {
        let reply = server.request(&format!("BREW{n}"), "/healthz", &[], "");
        assert_eq!(reply.status, 405);
    }
    let metrics = server.request("GET", "/metrics", &[], "").body;
    assert!(!metrics.contains("BREW"), "{metrics}");
    assert!(
        metrics.contains(
            r#"mcp_server_http_requests_total{method="other",route="/healthz",status="405"} 200"#
        ),
        "{metrics}"
    );
    // One new series (and its histogram) for `other`, not one per invented method.
    assert!(
        metrics.len() < before + 4096,
        "{before} -> {} bytes",
        metrics.len()
    );
}

#[test]
fn a_half_sent_request_head_is_closed_after_the_header_timeout() {
    let server = Server::start(&["--header-read-timeout", "1"]);
    let mut stream = connect(&server);
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        .expect("sent");
    let closed = closed_within(&mut stream, Duration::from_secs(5));
    assert!(
        closed.is_some_and(|t| t < Duration::from_secs(3)),
        "closed after {closed:?}"
    );
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_header_timeout() {
    let server = Server::start(&["--header-read-timeout", "1"]);
    let mut stream = connect(&server);
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .expect("sent");
    let mut buf = [0u8; 1024];
    let n = stream.read(&mut buf).expect("an answer");
    assert_eq!(parse_response(&buf[..n]).status, 200);
    let closed = closed_within(&mut stream, Duration::from_secs(5));
    assert!(
        closed.is_some_and(|t| t < Duration::from_secs(3)),
        "closed after {closed:?}"
    );
}

#[test]
fn a_body_sent_too_slowly_gets_408() {
    let server = Server::start(&["--body-read-timeout", "1"]);
    let mut stream = connect(&server);
    stream
        .write_all(
            b"POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
              Accept: application/json, text/event-stream\r\nContent-Length: 100\r\n\r\n{\"jsonrpc\"",
        )
        .expect("sent");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout can be set");
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    let n = stream
        .read(&mut buf)
        .expect("an answer before the read timeout");
    assert_eq!(parse_response(&buf[..n]).status, 408);
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn an_sse_stream_outlives_the_connection_timeouts() {
    let server = Server::start(&[
        "--header-read-timeout",
        "1",
        "--body-read-timeout",
        "1",
        "--keep-alive",
        "1",
    ]);
    let session = server.initialize("2025-11-25");
    let mut stream = common::open(
        &server.addr,
        "GET",
        "/mcp",
        &[
            ("Accept", "text/event-stream"),
            ("Mcp-Session-Id", &session),
        ],
        "",
    );
    // Three keep-alive comments take about three seconds, three times the timeouts.
    let seen = common::read_until(&mut stream, |s| s.matches("\n:").count() >= 3);
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    assert!(
        seen.matches("\n:").count() >= 3,
        "the stream was cut: {seen:?}"
    );
}

#[test]
fn connections_beyond_the_cap_wait_until_one_closes() {
    let server = Server::start(&["--max-connections", "2"]);
    let first = connect(&server);
    let _second = connect(&server);
    // The server holds two connections; a third request is not served yet.
    std::thread::sleep(Duration::from_millis(200));
    let mut third = connect(&server);
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .expect("sent");
    third
        .set_read_timeout(Some(Duration::from_millis(700)))
        .expect("timeout can be set");
    let mut buf = [0u8; 1024];
    assert!(third.read(&mut buf).is_err(), "served beyond the cap");
    drop(first);
    third
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout can be set");
    let n = third.read(&mut buf).expect("served once a slot is free");
    assert_eq!(parse_response(&buf[..n]).status, 200);
}

/// Resident memory of a process, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("process status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS")
        * 1024
}

/// RSS growth of a server answering `calls` echo calls of 1 MiB in one session.
fn rss_growth_after_big_echoes(mode: &str, calls: usize) -> u64 {
    let server = Server::start(&["--response-mode", mode]);
    let session = server.initialize("2025-11-25");
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":ID,"method":"tools/call","params":{{"name":"echo","arguments":{{"message":"{}"}}}}}}"#,
        "x".repeat(1 << 20)
    );
    let call = |n: usize| {
        let reply = server.post_mcp(
            &[("Mcp-Session-Id", &session)],
            &body.replacen("ID", &n.to_string(), 1),
        );
        assert_eq!(reply.status, 200);
    };
    // Warm up the allocator, so that growth means memory kept.
    call(0);
    let before = rss(server.pid());
    for n in 1..=calls {
        call(n);
    }
    rss(server.pid()).saturating_sub(before)
}

#[test]
fn big_answers_sent_as_json_are_not_kept() {
    let growth = rss_growth_after_big_echoes("auto", 64);
    // 64 MiB of answers went out; what stays is allocator slack, not history.
    assert!(growth < 24 << 20, "RSS grew by {} MiB", growth >> 20);
}

#[test]
fn big_answers_on_sse_streams_are_kept_within_the_session_budget() {
    let growth = rss_growth_after_big_echoes("sse", 64);
    // The default budget keeps 1 MiB per session, not 64 answers.
    assert!(growth < 24 << 20, "RSS grew by {} MiB", growth >> 20);
}

#[test]
fn a_resume_past_dropped_events_gets_400_and_a_forged_id_too() {
    let server = Server::start(&["--response-mode", "sse", "--event-history", "4"]);
    let session = server.initialize("2025-11-25");
    let first = server.post_mcp(
        &[("Mcp-Session-Id", &session)],
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"a"}}}"#,
    );
    let first_id = common::sse_events(&first.body)
        .first()
        .and_then(|(id, _)| id.clone())
        .expect("an event id");
    for n in 2..10 {
        server.post_mcp(
            &[("Mcp-Session-Id", &session)],
            &format!(r#"{{"jsonrpc":"2.0","id":{n},"method":"ping"}}"#),
        );
    }
    let resume = |id: &str| {
        server.request(
            "GET",
            "/mcp",
            &[
                ("Accept", "text/event-stream"),
                ("Mcp-Session-Id", &session),
                ("Last-Event-ID", id),
            ],
            "",
        )
    };
    let dropped = resume(&first_id);
    assert_eq!(dropped.status, 400, "{}", dropped.body);
    assert_eq!(dropped.json()["error"]["code"], -32600);
    for forged in ["0", "999999999999", "18446744073709551615", "-1", "x"] {
        assert_eq!(resume(forged).status, 400, "{forged}");
    }
}

#[test]
fn a_request_without_host_is_refused_like_a_wrong_host() {
    let server = Server::start(&[]);
    let mut stream = connect(&server);
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    write!(
        stream,
        "POST /mcp HTTP/1.1\r\nConnection: close\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("sent");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("an answer");
    assert_eq!(parse_response(&raw).status, 403);
}
