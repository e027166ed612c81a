//! Proxy mode in front of an upstream that misbehaves (`clients/misbehaving_upstream.py`): every
//! client request still ends, in bounded time and memory, with a JSON-RPC error; and the
//! client's credentials never reach the upstream.

mod common;

use std::time::{Duration, Instant};

use common::{MisbehavingUpstream as Upstream, Server, proxy_to, reply_messages, token_file};
use serde_json::Value;

fn call(tool: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{{"name":"{tool}","arguments":{{}}}}}}"#
    )
}

/// Calls `tool` through the proxy; returns the answer and how long it took.
fn call_through(
    proxy: &Server,
    session: &str,
    tool: &str,
    auth: &[(&str, &str)],
) -> (Value, Duration) {
    let started = Instant::now();
    let mut headers = vec![("Mcp-Session-Id", session)];
    headers.extend_from_slice(auth);
    let reply = proxy.post_mcp(&headers, &call(tool));
    assert_eq!(reply.status, 200, "{}", reply.body);
    let answer = reply_messages(&reply)
        .into_iter()
        .find(|m| m["id"] == 9)
        .unwrap_or_else(|| panic!("no answer to the call: {}", reply.body));
    (answer, started.elapsed())
}

/// Peak resident memory of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("procfs");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

#[test]
fn a_hanging_upstream_fails_the_request_in_bounded_time() {
    let upstream = Upstream::start();
    let proxy = proxy_to(
        &upstream.url("/mcp"),
        &["--request-timeout", "2", "--connect-timeout", "1"],
    );
    let session = proxy.initialize("2025-11-25");
    // Silent after the head (the request timeout), or before it (the connect timeout).
    for tool in ["hang", "hang_head"] {
        let (answer, took) = call_through(&proxy, &session, tool, &[]);
        assert_eq!(answer["error"]["code"], -32603, "{tool}: {answer}");
        assert_eq!(answer["error"]["data"]["reason"], "upstream-timeout");
        assert!(took < Duration::from_secs(10), "{tool} took {took:?}");
    }
    // The session goes on.
    let (answer, _) = call_through(&proxy, &session, "echo", &[]);
    assert_eq!(answer["result"]["content"][0]["text"], "echo", "{answer}");
    let metrics = proxy.request("GET", "/metrics", &[], "").body;
    assert!(
        metrics.contains(r#"mcp_server_upstream_failures_total{reason="upstream-timeout"} 2"#),
        "{metrics}"
    );
}

#[test]
fn oversized_upstream_messages_fail_the_request_without_being_held() {
    let upstream = Upstream::start();
    let proxy = proxy_to(&upstream.url("/mcp"), &["--max-body-bytes", "1048576"]);
    let session = proxy.initialize("2025-11-25");
    for tool in ["big_event", "big_json"] {
        let (answer, took) = call_through(&proxy, &session, tool, &[]);
        assert_eq!(answer["error"]["code"], -32603, "{tool}: {answer}");
        assert_eq!(answer["error"]["data"]["reason"], "upstream-too-large");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.len() < 200 && !message.contains("xxx"), "{message}");
        assert!(took < Duration::from_secs(10), "{tool} took {took:?}");
    }
    // The upstream writes without end; the proxy stops reading at the limit.
    let peak = peak_rss_kib(proxy.pid());
    assert!(peak < 100 * 1024, "the proxy held {peak} KiB");
}

#[test]
fn the_clients_authorization_never_reaches_the_upstream() {
    let upstream = Upstream::start();
    let tokens = token_file("proxy-no-passthrough", "client-secret\n");
    let proxy = proxy_to(
        &upstream.url("/mcp"),
        &["--auth-token-file", tokens.to_str().expect("utf-8 path")],
    );
    let auth = [("Authorization", "Bearer client-secret")];
    let reply = proxy.post_mcp(
        &auth,
        r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#,
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let session = reply
        .header("mcp-session-id")
        .expect("a session")
        .to_owned();
    let (answer, _) = call_through(&proxy, &session, "headers", &auth);
    let seen: Value = serde_json::from_str(
        answer["result"]["content"][0]["text"]
            .as_str()
            .expect("headers as text"),
    )
    .expect("JSON");
    assert!(seen.get("authorization").is_none(), "{seen}");
    assert_eq!(seen["mcp-session-id"], "upstream-session-1");
    assert_eq!(seen["mcp-protocol-version"], "2025-06-18");
    // The proxy's own check still applies in front.
    let refused = proxy.post_mcp(&[("Mcp-Session-Id", &session)], &call("echo"));
    assert_eq!(refused.status, 401);
}
