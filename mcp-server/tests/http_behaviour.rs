//! The transport rules, checked over raw HTTP against the real binary: status codes, headers,
//! JSON-RPC errors, sessions, resumption, limits, authentication, origins and shutdown.

mod common;

use std::time::Duration;

use common::{Server, http, open, parse_response, read_until, sse_events};
use serde_json::json;

const V: &str = "2025-11-25";
const ECHO: &str = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}}"#;

#[test]
fn malformed_json_is_400_with_parse_error() {
    let server = Server::start(&[]);
    let reply = server.post_mcp(&[], "{\"jsonrpc\": ");
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"]["code"], -32700);
    assert_eq!(reply.json()["id"], serde_json::Value::Null);
}

#[test]
fn json_that_is_not_json_rpc_is_400_with_invalid_request() {
    let server = Server::start(&[]);
    let session = server.initialize(V);
    let reply = server.post_mcp(&[("Mcp-Session-Id", &session)], r#"{"hello":"world"}"#);
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"]["code"], -32600);
}

#[test]
fn unknown_method_is_method_not_found_and_bad_params_are_invalid_params() {
    let server = Server::start(&[]);
    let session = server.initialize(V);
    let headers = [
        ("Mcp-Session-Id", session.as_str()),
        ("MCP-Protocol-Version", V),
    ];
    let unknown = server.post_mcp(&headers, r#"{"jsonrpc":"2.0","id":1,"method":"no/such"}"#);
    assert_eq!(unknown.status, 200);
    assert_eq!(unknown.json()["error"]["code"], -32601);
    assert_eq!(unknown.json()["id"], 1);
    let bad = server.post_mcp(&headers, r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"add","arguments":{"a":1}}}"#);
    assert_eq!(bad.json()["error"]["code"], -32602);
}

#[test]
fn wrong_verb_is_405_with_allow() {
    let server = Server::start(&[]);
    let reply = server.request("PUT", "/mcp", &[], "");
    assert_eq!(reply.status, 405);
    let allow = reply.header("allow").expect("Allow header");
    for verb in ["GET", "POST", "DELETE"] {
        assert!(allow.contains(verb), "{allow}");
    }
    assert_eq!(server.request("GET", "/messages", &[], "").status, 405);
}

#[test]
fn accept_and_content_type_are_enforced() {
    let server = Server::start(&[]);
    let no_sse = server.request(
        "POST",
        "/mcp",
        &[
            ("Content-Type", "application/json"),
            ("Accept", "application/json"),
        ],
        ECHO,
    );
    assert_eq!(no_sse.status, 406);
    let not_json = server.request(
        "POST",
        "/mcp",
        &[
            ("Content-Type", "text/plain"),
            ("Accept", "application/json, text/event-stream"),
        ],
        ECHO,
    );
    assert_eq!(not_json.status, 415);
    let get_without_sse = server.request("GET", "/mcp", &[("Accept", "application/json")], "");
    assert_eq!(get_without_sse.status, 406);
}

#[test]
fn sessions_are_required_enforced_and_ended_by_delete() {
    let server = Server::start(&[]);
    assert_eq!(server.post_mcp(&[], ECHO).status, 400, "missing session id");
    assert_eq!(
        server.post_mcp(&[("Mcp-Session-Id", "nope")], ECHO).status,
        404
    );
    let session = server.initialize(V);
    let ok = server.post_mcp(&[("Mcp-Session-Id", &session)], ECHO);
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["result"]["content"][0]["text"], "hi");
    let deleted = server.request("DELETE", "/mcp", &[("Mcp-Session-Id", &session)], "");
    assert_eq!(deleted.status, 204);
    assert_eq!(
        server
            .post_mcp(&[("Mcp-Session-Id", &session)], ECHO)
            .status,
        404
    );
    assert_eq!(
        server
            .request("DELETE", "/mcp", &[("Mcp-Session-Id", &session)], "")
            .status,
        404
    );
}

#[test]
fn initialize_negotiates_the_revision_and_issues_distinct_session_ids() {
    let server = Server::start(&[]);
    let init = |version: &str| {
        server.post_mcp(
            &[],
            &format!(r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"{version}","capabilities":{{}},"clientInfo":{{"name":"t","version":"1"}}}}}}"#),
        )
    };
    let old = init("2025-03-26");
    assert_eq!(old.json()["result"]["protocolVersion"], "2025-03-26");
    let future = init("2099-01-01");
    assert_eq!(future.json()["result"]["protocolVersion"], "2025-11-25");
    assert_ne!(
        old.header("mcp-session-id"),
        future.header("mcp-session-id")
    );
    let batch = server.post_mcp(
        &[],
        &format!(
            "[{}]",
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#
        ),
    );
    assert_eq!(batch.status, 400, "initialize must not be batched");
    assert!(batch.header("mcp-session-id").is_none());
}

#[test]
fn protocol_version_header_must_name_a_supported_revision() {
    let server = Server::start(&[]);
    let session = server.initialize("2025-06-18");
    let with = |v: &str| {
        server.post_mcp(
            &[("Mcp-Session-Id", &session), ("MCP-Protocol-Version", v)],
            ECHO,
        )
    };
    assert_eq!(with("2025-06-18").status, 200);
    assert_eq!(with("1999-01-01").status, 400);
    // Another supported revision is served under the negotiated one's rules.
    assert_eq!(with("2025-03-26").status, 200);
    // Without the header the client is taken to speak 2025-03-26 and is served.
    assert_eq!(
        server
            .post_mcp(&[("Mcp-Session-Id", &session)], ECHO)
            .status,
        200
    );
}

#[test]
fn batches_are_answered_in_2025_03_26_and_refused_from_2025_06_18() {
    let server = Server::start(&[]);
    let batch = format!(
        "[{ECHO},{}]",
        r#"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"add","arguments":{"a":1,"b":2}}}"#
    );
    let old = server.initialize("2025-03-26");
    let reply = server.post_mcp(&[("Mcp-Session-Id", &old)], &batch);
    assert_eq!(reply.status, 200);
    let answers = reply.json();
    let mut ids: Vec<i64> = answers
        .as_array()
        .expect("a batch answer")
        .iter()
        .map(|a| a["id"].as_i64().unwrap_or(0))
        .collect();
    ids.sort();
    assert_eq!(ids, [7, 8]);
    let new = server.initialize("2025-06-18");
    let refused = server.post_mcp(&[("Mcp-Session-Id", &new)], &batch);
    assert_eq!(refused.status, 400);
    assert_eq!(refused.json()["error"]["code"], -32600);
}

#[test]
fn notifications_and_responses_are_accepted_with_202() {
    let server = Server::start(&[]);
    let session = server.initialize(V);
    let note = server.post_mcp(
        &[("Mcp-Session-Id", &session)],
        r#"{"jsonrpc":"2.0","method":"notifications/roots/list_changed"}"#,
    );
    assert_eq!(note.status, 202);
    assert!(note.body.is_empty());
    let response = server.post_mcp(
        &[("Mcp-Session-Id", &session)],
        r#"{"jsonrpc":"2.0","id":"srv-1","result":{}}"#,
    );
    assert_eq!(response.status, 202);
}

#[test]
fn slow_calls_stream_progress_as_sse_with_event_ids() {
    let server = Server::start(&[]);
    let session = server.initialize(V);
    let reply = server.post_mcp(
        &[("Mcp-Session-Id", &session)],
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"sleep","arguments":{"seconds":0.6},"_meta":{"progressToken":"p1"}}}"#,
    );
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .header("content-type")
            .unwrap_or_default()
            .starts_with("text/event-stream")
    );
    let events = sse_events(&reply.body);
    assert!(events.len() >= 3, "{events:?}");
    assert!(
        events.iter().all(|(id, _)| id.is_some()),
        "every event has an id"
    );
    let (last, rest) = events.split_last().expect("events");
    assert_eq!(last.1["id"], 3);
    assert!(
        rest.iter()
            .all(|(_, m)| m["method"] == "notifications/progress"
                && m["params"]["progressToken"] == "p1")
    );
}

#[test]
fn a_broken_stream_is_resumed_with_last_event_id() {
    let server = Server::start(&["--response-mode", "sse"]);
    let session = server.initialize(V);
    let body = r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"sleep","arguments":{"seconds":1},"_meta":{"progressToken":"p"}}}"#;
    let headers = [
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
        ("Mcp-Session-Id", session.as_str()),
    ];
    let mut stream = open(&server.addr, "POST", "/mcp", &headers, body);
    // Read the first progress event, then drop the connection mid-call.
    let first = read_until(&mut stream, |seen| {
        seen.contains("\n\n") && seen.contains("id:")
    });
    drop(stream);
    let first_id = sse_events(first.split_once("\r\n\r\n").map_or("", |(_, b)| b))
        .first()
        .and_then(|(id, _)| id.clone())
        .or_else(|| {
            first
                .lines()
                .find_map(|l| l.strip_prefix("id:").map(|v| v.trim().to_owned()))
        })
        .expect("an event id before the break");
    let resumed = http(
        &server.addr,
        "GET",
        "/mcp",
        &[
            ("Accept", "text/event-stream"),
            ("Mcp-Session-Id", &session),
            ("Last-Event-ID", &first_id),
        ],
        "",
    );
    assert_eq!(resumed.status, 200);
    let events = sse_events(&resumed.body);
    let ids: Vec<u64> = events
        .iter()
        .filter_map(|(id, _)| id.as_deref()?.parse().ok())
        .collect();
    let first_id: u64 = first_id.parse().expect("numeric id");
    assert!(
        ids.iter().all(|id| *id > first_id),
        "only events after {first_id}: {ids:?}"
    );
    let last = events.last().expect("the rest of the stream").1.clone();
    assert_eq!(last["id"], 4, "the response arrives on the resumed stream");
    assert_eq!(last["result"]["content"][0]["text"], "slept 1 seconds");
}

#[test]
fn the_get_stream_opens_and_sends_keep_alive_comments() {
    let server = Server::start(&["--keep-alive", "1"]);
    let session = server.initialize(V);
    let mut stream = open(
        &server.addr,
        "GET",
        "/mcp",
        &[
            ("Accept", "text/event-stream"),
            ("Mcp-Session-Id", &session),
        ],
        "",
    );
    let seen = read_until(&mut stream, |s| {
        s.matches("\n:").count() >= 1 || s.contains("\r\n:")
    });
    let head = parse_response(seen.as_bytes());
    assert_eq!(head.status, 200);
    assert!(
        head.header("content-type")
            .unwrap_or_default()
            .starts_with("text/event-stream")
    );
    assert!(
        seen.lines().any(|l| l.starts_with(':')),
        "a keep-alive comment: {seen:?}"
    );
}

#[test]
fn oversized_bodies_are_413() {
    let server = Server::start(&["--max-body-bytes", "1024"]);
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"pad":"{}"}}}}"#,
        "x".repeat(2048)
    );
    assert_eq!(server.post_mcp(&[], &big).status, 413);
}

#[test]
fn a_full_server_answers_503_with_retry_after() {
    let server = Server::start(&["--max-sessions", "1"]);
    let _first = server.initialize(V);
    let reply = server.post_mcp(&[], r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#);
    assert_eq!(reply.status, 503);
    assert!(reply.header("retry-after").is_some());
}

#[test]
fn bearer_auth_challenges_missing_and_wrong_tokens() {
    let tokens = common::token_file("http-auth", "right\n");
    let server = Server::start(&["--auth-token-file", tokens.to_str().expect("utf-8")]);
    let missing = server.post_mcp(&[], ECHO);
    assert_eq!(missing.status, 401);
    assert!(
        missing
            .header("www-authenticate")
            .unwrap_or_default()
            .starts_with("Bearer")
    );
    let wrong = server.post_mcp(&[("Authorization", "Bearer wrong")], ECHO);
    assert_eq!(wrong.status, 401);
    assert!(
        wrong
            .header("www-authenticate")
            .unwrap_or_default()
            .contains("invalid_token")
    );
    assert_eq!(
        server
            .post_mcp(&[("Authorization", "Bearer right")], ECHO)
            .status,
        400,
        "authenticated, then missing session"
    );
    // Probes stay open so the kubelet needs no token.
    assert_eq!(server.request("GET", "/healthz", &[], "").status, 200);
}

#[test]
fn foreign_origins_are_forbidden_and_allowed_ones_pass() {
    let server = Server::start(&["--allowed-origins", "https://app.example.com"]);
    let foreign = server.post_mcp(&[("Origin", "https://evil.example")], ECHO);
    assert_eq!(foreign.status, 403);
    let allowed = server.post_mcp(&[("Origin", "https://app.example.com")], ECHO);
    assert_eq!(
        allowed.status, 400,
        "past the origin check, then missing session"
    );
    let default = Server::start(&[]);
    assert_eq!(
        default
            .post_mcp(&[("Origin", "http://localhost:5173")], ECHO)
            .status,
        400
    );
    assert_eq!(
        default
            .post_mcp(&[("Origin", "https://evil.example")], ECHO)
            .status,
        403
    );
}

#[test]
fn a_rebinding_host_is_forbidden_on_a_loopback_listener() {
    let server = Server::start(&[]);
    let reply = server.post_mcp(&[("Host", "attacker.example")], ECHO);
    assert_eq!(reply.status, 403);
}

#[test]
fn operations_endpoints_report_health_readiness_and_metrics() {
    let server = Server::start(&[]);
    assert_eq!(server.request("GET", "/healthz", &[], "").status, 200);
    assert_eq!(server.request("GET", "/readyz", &[], "").status, 200);
    let session = server.initialize(V);
    server.post_mcp(&[("Mcp-Session-Id", &session)], ECHO);
    let metrics = server.request("GET", "/metrics", &[], "").body;
    for expected in [
        r#"mcp_server_http_requests_total{method="POST",route="/mcp",status="200"}"#,
        r#"mcp_server_rpc_requests_total{method="tools/call"} 1"#,
        "mcp_server_sessions_active 1",
        "mcp_server_streams_active",
        "mcp_server_http_request_duration_seconds_bucket",
        "mcp_server_child_restarts_total 0",
    ] {
        assert!(
            metrics.contains(expected),
            "missing {expected} in\n{metrics}"
        );
    }
}

#[test]
fn legacy_sse_announces_its_endpoint_and_answers_on_the_stream() {
    let server = Server::start(&[]);
    let mut stream = open(
        &server.addr,
        "GET",
        "/sse",
        &[("Accept", "text/event-stream")],
        "",
    );
    let seen = read_until(&mut stream, |s| {
        s.contains("sessionId=") && s.contains("\n\n")
    });
    let endpoint = seen
        .lines()
        .find_map(|l| l.strip_prefix("data: /messages"))
        .map(|rest| format!("/messages{rest}"))
        .expect("endpoint event");
    let post = server.request(
        "POST",
        &endpoint,
        &[("Content-Type", "application/json")],
        ECHO,
    );
    assert_eq!(post.status, 202);
    let answer = read_until(&mut stream, |s| s.contains(r#""id":7"#));
    assert!(answer.contains(r#""text":"hi""#), "{answer}");
    assert_eq!(
        server
            .request("POST", "/messages?sessionId=nope", &[], ECHO)
            .status,
        404
    );
    assert_eq!(server.request("POST", "/messages", &[], ECHO).status, 400);
}

#[test]
fn stateless_requests_check_headers_envelope_and_methods() {
    let server = Server::start(&[]);
    let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}});
    let call =
        |method: &str, name: Option<&str>, params: serde_json::Value, headers: &[(&str, &str)]| {
            let body =
                json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
            let mut all = vec![
                ("MCP-Protocol-Version", "2026-07-28"),
                ("Mcp-Method", method),
            ];
            if let Some(n) = name {
                all.push(("Mcp-Name", n));
            }
            all.extend_from_slice(headers);
            server.post_mcp(&all, &body)
        };
    let discover = call("server/discover", None, json!({"_meta": meta}), &[]);
    assert_eq!(discover.status, 200);
    assert_eq!(
        discover.json()["result"]["supportedVersions"],
        json!(["2026-07-28"])
    );
    assert_eq!(discover.json()["result"]["resultType"], "complete");
    assert!(
        discover.header("mcp-session-id").is_none(),
        "no sessions in 2026-07-28"
    );
    let echo = call(
        "tools/call",
        Some("echo"),
        json!({"name": "echo", "arguments": {"message": "x"}, "_meta": meta}),
        &[],
    );
    assert_eq!(echo.json()["result"]["content"][0]["text"], "x");
    let mismatch = call(
        "tools/call",
        Some("add"),
        json!({"name": "echo", "arguments": {"message": "x"}, "_meta": meta}),
        &[],
    );
    assert_eq!(
        (mismatch.status, mismatch.json()["error"]["code"].as_i64()),
        (400, Some(-32020))
    );
    let no_meta = call("tools/list", None, json!({}), &[]);
    assert_eq!(
        (no_meta.status, no_meta.json()["error"]["code"].as_i64()),
        (400, Some(-32602))
    );
    let removed = call("ping", None, json!({"_meta": meta}), &[]);
    assert_eq!(
        (removed.status, removed.json()["error"]["code"].as_i64()),
        (404, Some(-32601))
    );
    let future = json!({"io.modelcontextprotocol/protocolVersion": "2099-01-01", "io.modelcontextprotocol/clientCapabilities": {}});
    let body =
        json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list", "params": {"_meta": future}})
            .to_string();
    let unsupported = server.post_mcp(
        &[
            ("MCP-Protocol-Version", "2099-01-01"),
            ("Mcp-Method", "tools/list"),
        ],
        &body,
    );
    assert_eq!(unsupported.status, 400);
    assert_eq!(unsupported.json()["error"]["code"], -32022);
    assert_eq!(
        unsupported.json()["error"]["data"]["supported"],
        json!(["2026-07-28"])
    );
    let get = server.request(
        "GET",
        "/mcp",
        &[
            ("Accept", "text/event-stream"),
            ("MCP-Protocol-Version", "2026-07-28"),
        ],
        "",
    );
    assert_eq!(get.status, 405);
}

#[test]
fn sigterm_lets_in_flight_calls_finish_then_exits() {
    let mut server = Server::start(&["--drain-seconds", "5"]);
    let session = server.initialize(V);
    let headers = [
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
        ("Mcp-Session-Id", session.as_str()),
    ];
    let body = r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"sleep","arguments":{"seconds":1.5}}}"#;
    let mut call = open(&server.addr, "POST", "/mcp", &headers, body);
    std::thread::sleep(Duration::from_millis(300));
    server.terminate();
    let answer = read_until(&mut call, |s| s.contains(r#""id":5"#));
    assert!(
        answer.contains("slept 1.5 seconds"),
        "the in-flight call completed: {answer}"
    );
    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("exits after draining");
    assert!(status.success(), "{status}");
}
