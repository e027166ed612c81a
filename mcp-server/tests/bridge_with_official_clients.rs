//! Bridge mode: a stdio server built with the official TypeScript SDK, served over HTTP and
//! driven by the official TypeScript and Python clients; plus byte-faithful passthrough and
//! readiness checked over raw HTTP.

mod common;

use std::time::Duration;

use common::{Server, assert_bridged_exchange, bridge_to_sdk_server, clients_dir, run_client};

/// Starts `mcp-server bridge -- python3 raw_echo_server.py`, whose child answers every request
/// with the exact line it read.
fn bridge_to_raw_echo() -> Server {
    let script = clients_dir().join("raw_echo_server.py");
    Server::start(&[
        "bridge",
        "--",
        "python3",
        script.to_str().expect("utf-8 path"),
    ])
}

#[test]
fn typescript_client_reaches_a_bridged_sdk_server_over_streamable_http() {
    let server = bridge_to_sdk_server();
    let out = run_client(
        "node",
        &["ts_client.cjs", "streamable", &server.url("/mcp"), "bridge"],
    );
    assert_bridged_exchange(&out, "through the bridge", "teal");
    assert_eq!(out["serverInfo"]["name"], "bridged-ts-server");
    let metrics = server.request("GET", "/metrics", &[], "").body;
    assert!(
        metrics.contains("mcp_server_child_restarts_total 1"),
        "{metrics}"
    );
}

#[test]
fn typescript_client_reaches_a_bridged_sdk_server_over_legacy_sse() {
    let server = bridge_to_sdk_server();
    let out = run_client(
        "node",
        &["ts_client.cjs", "sse", &server.url("/sse"), "bridge"],
    );
    assert_bridged_exchange(&out, "through the bridge", "teal");
}

#[test]
fn python_client_reaches_a_bridged_sdk_server_over_streamable_http() {
    let server = bridge_to_sdk_server();
    let out = run_client(
        "python",
        &["py_client.py", "streamable", &server.url("/mcp"), "bridge"],
    );
    assert_bridged_exchange(&out, "python through the bridge", "amber");
    assert_eq!(out["serverInfo"]["name"], "bridged-ts-server");
}

#[test]
fn python_client_reaches_a_bridged_sdk_server_over_legacy_sse() {
    let server = bridge_to_sdk_server();
    let out = run_client(
        "python",
        &["py_client.py", "sse", &server.url("/sse"), "bridge"],
    );
    assert_bridged_exchange(&out, "python through the bridge", "amber");
}

#[test]
fn unknown_methods_and_fields_reach_the_child_byte_for_byte() {
    let server = bridge_to_raw_echo();
    server.wait_ready(Duration::from_secs(20));
    let session = server.initialize("2025-06-18");
    let sent = r#"{"jsonrpc":"2.0","id":"v-1","method":"vendor/frobnicate","params":{"big":123456789012345678901234567890,"float":1.50,"nested":{"ünïcode":"\u00e9"}},"x-extension":[true,null]}"#;
    let reply = server.post_mcp(&[("Mcp-Session-Id", &session)], sent);
    assert_eq!(reply.status, 200, "{}", reply.body);
    // The child reports the exact line it read.
    assert_eq!(reply.json()["result"]["received"], sent);
}

#[test]
fn a_bridge_is_not_ready_until_its_child_answers_the_handshake() {
    let server = Server::start(&["bridge", "--", "sleep", "30"]);
    std::thread::sleep(Duration::from_millis(500));
    let reply = server.request("GET", "/readyz", &[], "");
    assert_eq!(reply.status, 503, "a silent child is not ready");
    assert_eq!(
        server.request("GET", "/healthz", &[], "").status,
        200,
        "but the process is alive"
    );
}

#[test]
fn stateless_requests_to_a_bridge_are_told_which_revisions_it_speaks() {
    let server = bridge_to_raw_echo();
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;
    let reply = server.post_mcp(
        &[
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", "server/discover"),
        ],
        body,
    );
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"]["code"], -32022);
    let supported = reply.json()["error"]["data"]["supported"].clone();
    assert!(
        supported
            .as_array()
            .is_some_and(|s| s.iter().any(|v| v == "2025-11-25")),
        "{supported}"
    );
}
