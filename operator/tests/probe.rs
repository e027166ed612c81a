//! The handshake probe against the real companion server in every protocol era, and against
//! deliberately broken servers: each failure must come back as the right error, with a message a
//! person can act on.
//!
//! Needs the `mcp-server` binary: `cargo build -p mcp-server` first.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use mcp_operator::api::ProtocolVersion;
use mcp_operator::probe::{Handshake, ProbeError, Prober, Target};
use serde_json::{Value, json};

const BUILTIN_TOOLS: usize = 5;

/// A running `mcp-server`, killed when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(args: &[&str]) -> Self {
        let binary = mcp_testenv::workspace_binary("mcp-server")
            .expect("the mcp-server binary is built: run `cargo build -p mcp-server`");
        let mut child = Command::new(binary)
            .args(["--listen", "127.0.0.1:0", "--log", "warn"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("mcp-server starts");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .expect("mcp-server prints its address");
        let addr = line
            .trim()
            .strip_prefix("mcp-server listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        // Keep the pipe drained so later output can never block the server.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        Self { child, addr }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory of its own for one test's files.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mcp-probe-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn target(url: String, protocol: ProtocolVersion) -> Target {
    Target {
        url,
        legacy_sse: false,
        protocol,
        required_tools: Vec::new(),
        bearer_token: None,
        timeout: Duration::from_secs(10),
    }
}

async fn probe(target: &Target) -> Result<Handshake, ProbeError> {
    Prober::new().handshake(target).await
}

fn assert_builtin(handshake: &Handshake, protocol: &str) {
    assert_eq!(handshake.server_name, "mcp-server");
    assert_eq!(
        handshake.server_version.as_deref(),
        Some(env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(handshake.protocol_version, protocol);
    assert_eq!(handshake.tools, BUILTIN_TOOLS);
    assert!(handshake.latency < Duration::from_secs(10));
}

// --- the real companion server ------------------------------------------------------------

#[tokio::test]
async fn auto_reaches_the_builtin_server_through_server_discover() {
    let server = Server::start(&[]);
    let got = probe(&target(server.url("/mcp"), ProtocolVersion::Auto))
        .await
        .unwrap();
    assert_builtin(&got, "2026-07-28");
}

#[tokio::test]
async fn explicit_stateless_revision_uses_server_discover() {
    let server = Server::start(&[]);
    let got = probe(&target(server.url("/mcp"), ProtocolVersion::V2026_07_28))
        .await
        .unwrap();
    assert_builtin(&got, "2026-07-28");
}

#[tokio::test]
async fn every_initialize_revision_is_agreed_as_asked() {
    let server = Server::start(&[]);
    for (version, name) in [
        (ProtocolVersion::V2025_03_26, "2025-03-26"),
        (ProtocolVersion::V2025_06_18, "2025-06-18"),
        (ProtocolVersion::V2025_11_25, "2025-11-25"),
    ] {
        let got = probe(&target(server.url("/mcp"), version))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_builtin(&got, name);
    }
}

#[tokio::test]
async fn answers_streamed_as_server_sent_events_are_read() {
    // Every POST is answered with an event stream in this mode.
    let server = Server::start(&["--response-mode", "sse"]);
    for (version, name) in [
        (ProtocolVersion::V2025_11_25, "2025-11-25"),
        (ProtocolVersion::V2025_03_26, "2025-03-26"),
        (ProtocolVersion::V2026_07_28, "2026-07-28"),
    ] {
        let got = probe(&target(server.url("/mcp"), version))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_builtin(&got, name);
    }
}

#[tokio::test]
async fn legacy_sse_transport_is_probed_through_its_endpoint_event() {
    let server = Server::start(&[]);
    let mut legacy = target(server.url("/sse"), ProtocolVersion::Auto);
    legacy.legacy_sse = true;
    legacy.required_tools = vec!["echo".into()];
    let got = probe(&legacy).await.unwrap();
    assert_builtin(&got, "2024-11-05");
}

#[tokio::test]
async fn required_tools_that_are_listed_pass_and_missing_ones_are_named_sorted() {
    let server = Server::start(&[]);
    let mut t = target(server.url("/mcp"), ProtocolVersion::Auto);
    t.required_tools = vec!["echo".into(), "add".into(), "time".into()];
    probe(&t).await.unwrap();

    for protocol in [ProtocolVersion::Auto, ProtocolVersion::V2025_06_18] {
        t.protocol = protocol;
        t.required_tools = vec!["echo".into(), "summarize".into(), "fetch".into()];
        let e = probe(&t).await.unwrap_err();
        assert_eq!(
            e,
            ProbeError::ToolsMissing(vec!["fetch".into(), "summarize".into()])
        );
        assert_eq!(e.reason(), "ToolsMissing");
        assert_eq!(
            e.to_string(),
            "tools missing from tools/list: fetch, summarize"
        );
    }
}

#[tokio::test]
async fn bearer_token_is_sent_and_its_absence_is_a_401() {
    let tokens = scratch("bearer").join("tokens");
    std::fs::write(&tokens, "s3cret\n").unwrap();
    let server = Server::start(&["--auth-token-file", tokens.to_str().unwrap()]);

    for protocol in [ProtocolVersion::Auto, ProtocolVersion::V2025_06_18] {
        let mut t = target(server.url("/mcp"), protocol);
        t.bearer_token = Some("s3cret".into());
        probe(&t).await.unwrap();
    }
    let mut legacy = target(server.url("/sse"), ProtocolVersion::Auto);
    legacy.legacy_sse = true;
    legacy.bearer_token = Some("s3cret".into());
    probe(&legacy).await.unwrap();

    // A 401 is not about the protocol era: auto reports it from server/discover, no fallback.
    let e = probe(&target(server.url("/mcp"), ProtocolVersion::Auto))
        .await
        .unwrap_err();
    let ProbeError::HttpStatus {
        method,
        status,
        hint,
        ..
    } = &e
    else {
        panic!("expected HttpStatus, got {e:?}");
    };
    assert_eq!((method.as_str(), *status), ("server/discover", 401));
    assert!(hint.contains("wants a bearer token"), "{hint}");
    assert_eq!(e.reason(), "HttpStatus");

    let mut wrong = target(server.url("/mcp"), ProtocolVersion::V2025_11_25);
    wrong.bearer_token = Some("guess".into());
    let e = probe(&wrong).await.unwrap_err();
    assert!(
        matches!(&e, ProbeError::HttpStatus { status: 401, method, .. } if method == "initialize"),
        "{e:?}"
    );
    // The message tells a rejected token from a missing one.
    assert!(
        e.to_string().contains("rejected the probe's bearer token"),
        "{e}"
    );
}

/// A stdio MCP server with one tool, for bridge mode.
const BRIDGED_CHILD: &str = r#"
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if "id" not in m or "method" not in m:
        continue
    if m["method"] == "initialize":
        r = {"protocolVersion": m["params"]["protocolVersion"], "capabilities": {"tools": {}},
             "serverInfo": {"name": "bridged", "version": "2.0"}}
    elif m["method"] == "tools/list":
        r = {"tools": [{"name": "lookup", "inputSchema": {"type": "object"}}]}
    else:
        r = None
    out = {"jsonrpc": "2.0", "id": m["id"]}
    if r is None:
        out["error"] = {"code": -32601, "message": "Method not found"}
    else:
        out["result"] = r
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
"#;

#[tokio::test]
async fn auto_falls_back_to_initialize_on_a_bridge_and_explicit_stateless_is_a_mismatch() {
    let script = scratch("bridge").join("child.py");
    std::fs::write(&script, BRIDGED_CHILD).unwrap();
    let server = Server::start(&["bridge", "--", "python3", script.to_str().unwrap()]);

    let mut t = target(server.url("/mcp"), ProtocolVersion::Auto);
    t.required_tools = vec!["lookup".into()];
    let got = probe(&t).await.unwrap();
    assert_eq!(got.server_name, "bridged");
    assert_eq!(got.server_version.as_deref(), Some("2.0"));
    assert_eq!(got.protocol_version, "2025-11-25");
    assert_eq!(got.tools, 1);

    // The bridge has no stateless backend and says which revisions it speaks.
    let e = probe(&target(server.url("/mcp"), ProtocolVersion::V2026_07_28))
        .await
        .unwrap_err();
    let ProbeError::VersionMismatch { asked, offered } = &e else {
        panic!("expected VersionMismatch, got {e:?}");
    };
    assert_eq!(asked, "2026-07-28");
    assert!(offered.contains("2025-11-25"), "{offered}");
}

// --- servers that get it wrong ------------------------------------------------------------

/// Serves `router` on a free loopback port for the rest of the test.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

fn json_response(body: Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// The request's id and method.
fn parse_request(body: &[u8]) -> (Value, String) {
    let m: Value = serde_json::from_slice(body).unwrap();
    (
        m["id"].clone(),
        m["method"].as_str().unwrap_or("").to_owned(),
    )
}

#[tokio::test]
async fn nothing_listening_is_connection_refused() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let e = probe(&target(
        format!("http://127.0.0.1:{port}/mcp"),
        ProtocolVersion::Auto,
    ))
    .await
    .unwrap_err();
    assert_eq!(e, ProbeError::Refused(format!("127.0.0.1:{port}")));
    assert_eq!(e.reason(), "ConnectionRefused");
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_within_the_bound() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let mut t = target(format!("http://{addr}/mcp"), ProtocolVersion::Auto);
    t.timeout = Duration::from_millis(500);
    let started = Instant::now();
    let e = probe(&t).await.unwrap_err();
    assert_eq!(e, ProbeError::Timeout(Duration::from_millis(500)));
    assert_eq!(e.reason(), "Timeout");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_html_page_is_not_json_rpc() {
    let base = serve(Router::new().route(
        "/mcp",
        any(|| async {
            (
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                "<!doctype html>\n<html><body>Welcome to nginx!</body></html>",
            )
        }),
    ))
    .await;
    for protocol in [ProtocolVersion::Auto, ProtocolVersion::V2025_11_25] {
        let e = probe(&target(format!("{base}/mcp"), protocol))
            .await
            .unwrap_err();
        let ProbeError::NotJsonRpc { method, detail } = &e else {
            panic!("expected NotJsonRpc, got {e:?}");
        };
        // Auto tried server/discover first, then reported the initialize it fell back to.
        assert_eq!(method, "initialize");
        assert!(detail.contains("text/html"), "{detail}");
        // The body is the server's: it is never quoted.
        assert!(!detail.contains("Welcome to nginx!"), "{detail}");
        assert_eq!(e.reason(), "NotJsonRpc");
    }
}

#[tokio::test]
async fn a_missing_endpoint_is_an_http_404_even_when_the_server_is_healthy() {
    let base = serve(Router::new().route("/healthz", get(|| async { "ok" }))).await;
    let health = reqwest_free_get(&format!("{base}/healthz")).await;
    assert_eq!(health, 200);
    let e = probe(&target(format!("{base}/mcp"), ProtocolVersion::Auto))
        .await
        .unwrap_err();
    assert_eq!(
        e,
        ProbeError::HttpStatus {
            method: "initialize".into(),
            status: 404,
            path: "/mcp".into(),
            hint: "; is MCP served at this path?".into(),
        }
    );
    assert_eq!(
        e.to_string(),
        "HTTP 404 from initialize at /mcp; is MCP served at this path?"
    );
}

/// Status of a GET, spoken with a raw socket so the test depends on nothing but the probe.
async fn reqwest_free_get(url: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap();
    let (addr, path) = rest.split_once('/').unwrap();
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    socket
        .write_all(
            format!("GET /{path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut reply = String::new();
    socket.read_to_string(&mut reply).await.unwrap();
    reply.split(' ').nth(1).unwrap().parse().unwrap()
}

/// Answers `initialize` with `answer(id)` and every other method with "method not found".
fn initialize_only(answer: fn(Value) -> Value) -> Router {
    Router::new().route(
        "/mcp",
        post(move |body: Bytes| async move {
            let (id, method) = parse_request(&body);
            if method == "initialize" {
                json_response(answer(id))
            } else {
                json_response(json!({"jsonrpc": "2.0", "id": id,
                    "error": {"code": -32601, "message": format!("Method not found: {method}")}}))
            }
        }),
    )
}

#[tokio::test]
async fn an_unknown_protocol_revision_is_a_version_mismatch() {
    let base = serve(initialize_only(|id| {
        json!({"jsonrpc": "2.0", "id": id, "result": {
            "protocolVersion": "1999-01-01", "capabilities": {"tools": {}},
            "serverInfo": {"name": "ancient", "version": "0.0.1"}}})
    }))
    .await;
    // Auto: server/discover is "method not found", so initialize is tried, and refused.
    let e = probe(&target(format!("{base}/mcp"), ProtocolVersion::Auto))
        .await
        .unwrap_err();
    assert_eq!(
        e,
        ProbeError::VersionMismatch {
            asked: "2025-11-25".into(),
            offered: "1999-01-01".into()
        }
    );
    assert_eq!(e.reason(), "VersionMismatch");
    assert_eq!(
        e.to_string(),
        "version mismatch: asked for 2025-11-25, server offers 1999-01-01"
    );
}

#[tokio::test]
async fn a_json_rpc_error_names_method_code_and_message() {
    let base = serve(initialize_only(|id| {
        json!({"jsonrpc": "2.0", "id": id,
            "error": {"code": -32603, "message": "upstream database unreachable"}})
    }))
    .await;
    let e = probe(&target(format!("{base}/mcp"), ProtocolVersion::V2025_06_18))
        .await
        .unwrap_err();
    assert_eq!(
        e,
        ProbeError::JsonRpcError {
            method: "initialize".into(),
            code: -32603,
            message: "upstream database unreachable".into()
        }
    );
    assert_eq!(e.reason(), "JsonRpcError");
    assert_eq!(
        e.to_string(),
        "initialize failed with JSON-RPC error -32603: upstream database unreachable"
    );
}

/// What a recording server saw: HTTP method, headers and body of each request.
type Seen = Arc<Mutex<Vec<(String, HeaderMap, String)>>>;

/// A session server that negotiates down to 2025-06-18, streams its answers as SSE (CRLF line
/// ends, keep-alive comments, a notification first), pages `tools/list`, and refuses DELETE.
fn recording_session_server(seen: Seen) -> Router {
    Router::new().route(
        "/mcp",
        any(
            move |method: axum::http::Method, headers: HeaderMap, body: Bytes| {
                let seen = Arc::clone(&seen);
                async move {
                    let text = String::from_utf8_lossy(&body).into_owned();
                    seen.lock()
                        .unwrap()
                        .push((method.to_string(), headers, text));
                    if method == axum::http::Method::DELETE {
                        return StatusCode::METHOD_NOT_ALLOWED.into_response();
                    }
                    let (id, rpc) = parse_request(&body);
                    let result = match rpc.as_str() {
                        "notifications/initialized" => {
                            return StatusCode::ACCEPTED.into_response();
                        }
                        "initialize" => json!({"protocolVersion": "2025-06-18",
                            "capabilities": {"tools": {"listChanged": true}},
                            "serverInfo": {"name": "recorder"}}),
                        "tools/list" => {
                            let cursor = serde_json::from_slice::<Value>(&body).unwrap()["params"]
                                ["cursor"]
                                .clone();
                            if cursor.is_null() {
                                json!({"tools": [{"name": "a"}, {"name": "b"}], "nextCursor": "page-2"})
                            } else {
                                json!({"tools": [{"name": "c"}]})
                            }
                        }
                        _ => {
                            return (StatusCode::NOT_FOUND, "no such method").into_response();
                        }
                    };
                    let answer = json!({"jsonrpc": "2.0", "id": id, "result": result});
                    let note = json!({"jsonrpc": "2.0", "method": "notifications/message",
                        "params": {"level": "info", "data": "working"}});
                    let stream = format!(
                        ": keep-alive\r\n\r\nid: 1\r\ndata:\r\n\r\nevent: message\r\ndata: {note}\r\n\r\ndata: {answer}\r\n\r\n"
                    );
                    (
                        [
                            (header::CONTENT_TYPE, "text/event-stream"),
                            (
                                header::HeaderName::from_static("mcp-session-id"),
                                "sess-42",
                            ),
                        ],
                        stream,
                    )
                        .into_response()
                }
            },
        ),
    )
}

#[tokio::test]
async fn the_session_exchange_sends_its_headers_pages_tools_and_deletes_the_session() {
    let seen: Seen = Arc::default();
    let base = serve(recording_session_server(Arc::clone(&seen))).await;
    let mut t = target(format!("{base}/mcp"), ProtocolVersion::V2025_11_25);
    // As read from a Secret written with `echo`: the newline is not part of the token.
    t.bearer_token = Some("tok\n".into());
    t.required_tools = vec!["c".into()];
    let got = probe(&t).await.unwrap();
    // The server picked an older revision the probe speaks: accepted and reported.
    assert_eq!(got.protocol_version, "2025-06-18");
    assert_eq!(got.server_name, "recorder");
    assert_eq!(got.server_version, None);
    assert_eq!(got.tools, 3);

    let seen = seen.lock().unwrap();
    let steps: Vec<String> = seen
        .iter()
        .map(|(method, _, body)| {
            let rpc = serde_json::from_str::<Value>(body)
                .ok()
                .and_then(|m| m["method"].as_str().map(str::to_owned))
                .unwrap_or_default();
            format!("{method} {rpc}").trim().to_owned()
        })
        .collect();
    assert_eq!(
        steps,
        [
            "POST initialize",
            "POST notifications/initialized",
            "POST tools/list",
            "POST tools/list",
            "DELETE"
        ]
    );
    let (_, init_headers, init_body) = &seen[0];
    let init: Value = serde_json::from_str(init_body).unwrap();
    assert_eq!(init["params"]["protocolVersion"], "2025-11-25");
    assert_eq!(init["params"]["clientInfo"]["name"], "mcp-operator-probe");
    assert_eq!(init["params"]["capabilities"], json!({}));
    assert_eq!(
        init_headers["accept"].to_str().unwrap(),
        "application/json, text/event-stream"
    );
    assert!(init_headers.get("mcp-session-id").is_none());
    for (_, headers, _) in &seen[..] {
        assert_eq!(headers["authorization"], "Bearer tok");
    }
    for (_, headers, _) in &seen[1..] {
        assert_eq!(headers["mcp-session-id"], "sess-42");
        // The negotiated revision, not the asked one.
        assert_eq!(headers["mcp-protocol-version"], "2025-06-18");
    }
    let second_page: Value = serde_json::from_str(&seen[3].2).unwrap();
    assert_eq!(second_page["params"]["cursor"], "page-2");
}

#[tokio::test]
async fn a_legacy_endpoint_on_another_origin_is_refused() {
    let base = serve(Router::new().route(
        "/sse",
        get(|| async {
            (
                [(header::CONTENT_TYPE, "text/event-stream")],
                "event: endpoint\ndata: http://collector.example/messages?sessionId=1\n\n",
            )
        }),
    ))
    .await;
    let mut t = target(format!("{base}/sse"), ProtocolVersion::Auto);
    t.legacy_sse = true;
    t.bearer_token = Some("must-not-leak".into());
    let e = probe(&t).await.unwrap_err();
    let ProbeError::NotJsonRpc { method, detail } = &e else {
        panic!("expected NotJsonRpc, got {e:?}");
    };
    assert_eq!(method, "GET /sse");
    // The stream's origin is named; the server's endpoint text is not quoted.
    assert!(detail.contains(&base), "{detail}");
    assert!(!detail.contains("collector.example"), "{detail}");
}

#[test]
fn prober_is_shareable_across_tasks() {
    fn shareable<T: Clone + Send + Sync + 'static>() {}
    shareable::<Prober>();
}

/// A listener that records whether anything connected to it.
async fn tripwire() -> (String, Arc<std::sync::atomic::AtomicBool>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let touched = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = touched.clone();
    tokio::spawn(async move {
        while listener.accept().await.is_ok() {
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    });
    (format!("http://{addr}/internal/secret"), touched)
}

#[tokio::test]
async fn a_redirect_fails_the_handshake_and_is_never_followed() {
    let (elsewhere, touched) = tripwire().await;
    let location = elsewhere.clone();
    let base = serve(Router::new().route(
        "/mcp",
        any(move || {
            let location = location.clone();
            async move { (StatusCode::FOUND, [(header::LOCATION, location)], "moved") }
        }),
    ))
    .await;
    for protocol in [ProtocolVersion::Auto, ProtocolVersion::V2025_11_25] {
        let e = probe(&target(format!("{base}/mcp"), protocol))
            .await
            .unwrap_err();
        assert!(
            matches!(&e, ProbeError::Redirect { status: 302, .. }),
            "{e:?}"
        );
        let message = e.to_string();
        assert!(
            message.contains("HTTP 302") && message.contains("redirect"),
            "{message}"
        );
        assert!(!message.contains("/internal/secret"), "{message}");
        assert_eq!(e.reason(), "Redirected");
    }
    assert!(
        !touched.load(std::sync::atomic::Ordering::SeqCst),
        "the probe contacted the redirect's target"
    );
}

#[tokio::test]
async fn a_huge_body_is_cut_at_one_mebibyte_without_quoting_it() {
    let base = serve(Router::new().route(
        "/mcp",
        any(|| async {
            let filler = "A".repeat(8 << 20);
            (
                [(header::CONTENT_TYPE, "application/json")],
                format!(r#"{{"jsonrpc":"2.0","id":1,"result":{{"x":"{filler}"}}}}"#),
            )
        }),
    ))
    .await;
    let e = probe(&target(format!("{base}/mcp"), ProtocolVersion::V2025_11_25))
        .await
        .unwrap_err();
    let message = e.to_string();
    assert!(message.contains("larger than 1048576 bytes"), "{message}");
    assert!(!message.contains("AAAA"), "{message}");
}

#[tokio::test]
async fn a_drip_fed_body_is_cut_by_the_deadline() {
    let base = serve(Router::new().route(
        "/mcp",
        any(|| async {
            let drip = futures::stream::unfold(0u32, |n| async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Some((Ok::<_, std::io::Error>(Bytes::from_static(b" ")), n + 1))
            });
            (
                [(header::CONTENT_TYPE, "application/json")],
                axum::body::Body::from_stream(drip),
            )
        }),
    ))
    .await;
    let mut slow = target(format!("{base}/mcp"), ProtocolVersion::V2025_11_25);
    slow.timeout = Duration::from_secs(1);
    let started = Instant::now();
    let e = probe(&slow).await.unwrap_err();
    assert_eq!(e, ProbeError::Timeout(Duration::from_secs(1)));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}
