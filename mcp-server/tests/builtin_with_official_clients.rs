//! The built-in mode, driven by the official TypeScript and Python clients over Streamable HTTP,
//! the legacy HTTP+SSE transport, and (Python) the stateless 2026-07-28 revision.

mod common;

use common::{Server, assert_builtin_exchange, run_client};

#[test]
fn typescript_client_uses_every_builtin_capability_over_streamable_http() {
    let server = Server::start(&[]);
    let out = run_client(
        "node",
        &[
            "ts_client.cjs",
            "streamable",
            &server.url("/mcp"),
            "builtin",
        ],
    );
    assert_builtin_exchange(&out, "hello from typescript", "42");
    assert_eq!(out["protocolVersion"], "2025-11-25");
    assert_eq!(out["serverInfo"]["name"], "mcp-server");
    assert_eq!(out["promptText"], "Please greet Ada warmly.");
}

#[test]
fn typescript_client_uses_every_builtin_capability_over_legacy_sse() {
    let server = Server::start(&[]);
    let out = run_client(
        "node",
        &["ts_client.cjs", "sse", &server.url("/sse"), "builtin"],
    );
    assert_builtin_exchange(&out, "hello from typescript", "42");
    assert_eq!(out["serverInfo"]["name"], "mcp-server");
}

#[test]
fn typescript_client_works_when_every_answer_is_an_sse_stream() {
    let server = Server::start(&["--response-mode", "sse"]);
    let out = run_client(
        "node",
        &[
            "ts_client.cjs",
            "streamable",
            &server.url("/mcp"),
            "builtin",
        ],
    );
    assert_builtin_exchange(&out, "hello from typescript", "42");
}

#[test]
fn python_client_uses_every_builtin_capability_over_streamable_http() {
    let server = Server::start(&[]);
    let out = run_client(
        "python",
        &["py_client.py", "streamable", &server.url("/mcp"), "builtin"],
    );
    assert_builtin_exchange(&out, "hello from python", "3.75");
    assert_eq!(out["protocolVersion"], "2025-11-25");
    assert_eq!(out["promptText"], "Please greet Grace warmly.");
}

#[test]
fn python_client_uses_every_builtin_capability_over_legacy_sse() {
    let server = Server::start(&[]);
    let out = run_client(
        "python",
        &["py_client.py", "sse", &server.url("/sse"), "builtin"],
    );
    assert_builtin_exchange(&out, "hello from python", "3.75");
}

#[test]
fn python_client_speaks_stateless_2026_07_28_after_server_discover() {
    let server = Server::start(&[]);
    let out = run_client(
        "python",
        &[
            "py_client.py",
            "streamable",
            &server.url("/mcp"),
            "stateless",
        ],
    );
    assert_eq!(out["supportedVersions"], serde_json::json!(["2026-07-28"]));
    assert_builtin_exchange(&out, "hello from python", "3.75");
}

#[test]
fn official_clients_authenticate_with_a_bearer_token() {
    let tokens = common::token_file("client-auth", "s3cret-token\n");
    let server = Server::start(&["--auth-token-file", tokens.to_str().expect("utf-8 path")]);
    let ts = run_client(
        "node",
        &[
            "ts_client.cjs",
            "streamable",
            &server.url("/mcp"),
            "builtin",
            "s3cret-token",
        ],
    );
    assert_eq!(ts["echo"], "hello from typescript");
    let py = run_client(
        "python",
        &[
            "py_client.py",
            "sse",
            &server.url("/sse"),
            "builtin",
            "s3cret-token",
        ],
    );
    assert_eq!(py["echo"], "hello from python");
}
