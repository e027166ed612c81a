//! Bridge mode with a child that misbehaves (`tests/clients/misbehaving_server.py`): answers it
//! cannot frame, answers it never sends, messages before its handshake answer, and processes it
//! leaves behind. Every request still gets an answer within seconds, the session goes on, and no
//! process outlives its session.

mod common;

use std::time::{Duration, Instant};

use common::{Server, clients_dir};
use serde_json::Value;

const V: &str = "2025-06-18";

fn script() -> String {
    clients_dir()
        .join("misbehaving_server.py")
        .to_str()
        .expect("utf-8 path")
        .to_owned()
}

/// `mcp-server bridge FLAGS -- python3 misbehaving_server.py CHILD_FLAGS`.
fn bridge(flags: &[&str], child_flags: &[&str]) -> Server {
    let script = script();
    let mut args = vec!["bridge"];
    args.extend_from_slice(flags);
    args.extend(["--", "python3", script.as_str()]);
    args.extend_from_slice(child_flags);
    Server::start(&args)
}

/// Calls `tool` and returns the answer and how long it took.
fn call(server: &Server, session: &str, id: u32, tool: &str) -> (Value, Duration) {
    let started = Instant::now();
    let reply = server.post_mcp(
        &[("Mcp-Session-Id", session), ("MCP-Protocol-Version", V)],
        &format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{{"message":"still here"}}}}}}"#
        ),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let answer = if reply
        .header("content-type")
        .unwrap_or_default()
        .starts_with("text/event-stream")
    {
        reply.sse_messages().pop().expect("an answer on the stream")
    } else {
        reply.json()
    };
    (answer, started.elapsed())
}

fn assert_failed_with(answer: &Value, id: u32, reason: &str) {
    assert_eq!(answer["id"], id, "{answer}");
    assert_eq!(answer["error"]["code"], -32603, "{answer}");
    assert_eq!(answer["error"]["data"]["reason"], reason, "{answer}");
}

#[test]
fn an_over_long_answer_fails_its_request_and_the_session_goes_on() {
    let server = bridge(&["--max-body-bytes", "1048576"], &[]);
    let session = server.initialize(V);
    for (id, tool) in [(1, "big_first"), (2, "big_last")] {
        let (answer, took) = call(&server, &session, id, tool);
        assert_failed_with(&answer, id, "invalid-output");
        assert!(took < Duration::from_secs(5), "{tool} took {took:?}");
    }
    let (answer, _) = call(&server, &session, 3, "echo");
    assert_eq!(answer["result"]["content"][0]["text"], "still here");
}

#[test]
fn an_answer_that_is_not_utf8_fails_its_request() {
    let server = bridge(&[], &[]);
    let session = server.initialize(V);
    let (answer, _) = call(&server, &session, 1, "bad_utf8");
    assert_failed_with(&answer, 1, "invalid-output");
    let (answer, _) = call(&server, &session, 2, "echo");
    assert_eq!(answer["result"]["content"][0]["text"], "still here");
}

#[test]
fn a_request_the_child_never_answers_fails_after_the_timeout() {
    // Long enough for the child to start and answer `initialize`, which it also bounds.
    let server = bridge(&["--request-timeout", "3"], &[]);
    let session = server.initialize(V);
    let (answer, took) = call(&server, &session, 1, "silent");
    assert_failed_with(&answer, 1, "timeout");
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(8),
        "took {took:?}"
    );
    let (answer, _) = call(&server, &session, 2, "echo");
    assert_eq!(answer["result"]["content"][0]["text"], "still here");
}

#[test]
fn initialize_takes_the_answer_not_the_messages_sent_before_it() {
    let server = bridge(&[], &["--ping-first"]);
    let session = server.initialize(V);
    let (answer, _) = call(&server, &session, 1, "echo");
    assert_eq!(answer["result"]["content"][0]["text"], "still here");
}

/// Processes (other than `except`) whose environment carries `marker`.
fn marked_processes(marker: &str, except: u32) -> Vec<u32> {
    let needle = format!("MCP_TEST_MARKER={marker}");
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != except)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .map(|env| env.split(|b| *b == 0).any(|var| var == needle.as_bytes()))
                .unwrap_or(false)
        })
        .collect()
}

fn wait_for_count(marker: &str, except: u32, expected: usize) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = marked_processes(marker, except);
        if found.len() == expected || Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn children_and_what_they_started_end_with_their_session() {
    let marker = format!("leak-{}", std::process::id());
    let script = script();
    // `sh -c` in front, as with `npx`: the bridged command is itself a parent.
    let command = format!("exec python3 {script} --fork");
    let server = Server::start_with_env(
        &["bridge", "--", "sh", "-c", &command],
        &[("MCP_TEST_MARKER", &marker)],
    );
    server.wait_ready(Duration::from_secs(20));
    // The readiness probe's child and its grandchild are gone once it answered.
    assert_eq!(wait_for_count(&marker, server.pid(), 0), Vec::<u32>::new());
    let sessions: Vec<String> = (0..3).map(|_| server.initialize(V)).collect();
    // Each session: the child and its `sleep`.
    assert_eq!(wait_for_count(&marker, server.pid(), 6).len(), 6);
    for session in &sessions {
        let deleted = server.request("DELETE", "/mcp", &[("Mcp-Session-Id", session)], "");
        assert_eq!(deleted.status, 204);
    }
    let left = wait_for_count(&marker, server.pid(), 0);
    assert!(left.is_empty(), "processes left after DELETE: {left:?}");
}

/// `(state, parent)` of every process, from `/proc/PID/stat`.
fn process_table() -> Vec<(u32, char, u32)> {
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
            let state = fields.next()?.chars().next()?;
            let parent = fields.next()?.parse().ok()?;
            Some((pid, state, parent))
        })
        .collect()
}

#[test]
fn as_pid_1_the_server_reaps_orphans() {
    // In a PID namespace of its own the server is PID 1: what its children leave behind is
    // reparented to it. The child's shell starts a short `sleep` in a subshell that exits at
    // once, so every child start orphans one process.
    let script = script();
    let command = format!("(sleep 0.2 &); exec python3 {script}");
    let server = Server::start_wrapped(
        // A user namespace too, so that this needs no root.
        &[
            "unshare",
            "--user",
            "--map-root-user",
            "--pid",
            "--fork",
            "--mount-proc",
            "--kill-child",
        ],
        &["bridge", "--", "sh", "-c", &command],
        &[],
    );
    server.wait_ready(Duration::from_secs(20));
    for _ in 0..3 {
        server.initialize(V);
    }
    std::thread::sleep(Duration::from_secs(1));
    let table = process_table();
    let inside = table
        .iter()
        .find(|(_, _, parent)| *parent == server.pid())
        .map(|(pid, _, _)| *pid)
        .expect("the server inside the namespace");
    let zombies: Vec<u32> = table
        .iter()
        .filter(|(_, state, parent)| *parent == inside && *state == 'Z')
        .map(|(pid, _, _)| *pid)
        .collect();
    assert!(zombies.is_empty(), "unreaped orphans: {zombies:?}");
}
