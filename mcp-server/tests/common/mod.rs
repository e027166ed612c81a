//! Shared harness for the integration tests: starts the real `mcp-server` binary on a free
//! loopback port, speaks raw HTTP/1.1 to it, and runs the official client scripts installed by
//! `tests/clients/setup.sh`.

#![allow(dead_code)] // each test file uses a different part of the harness

pub mod issuer;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod oauth;

pub fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// The cache the official clients were installed into. Fails the test, saying what to run, when
/// they are missing: these tests must never pass without having run the clients.
pub fn installed_clients() -> PathBuf {
    if let Ok(dir) = std::env::var("MCP_TEST_CLIENTS_DIR") {
        return PathBuf::from(dir);
    }
    let output = Command::new("bash")
        .arg(clients_dir().join("setup.sh"))
        .arg("--check")
        .output()
        .expect("bash runs");
    assert!(
        output.status.success(),
        "the official MCP test clients are not installed: run `bash mcp-server/tests/clients/setup.sh` \
         first ({})",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    let dir = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    PathBuf::from(dir)
}

/// A bearer-token file with `contents`, in a directory of its own for the calling test.
pub fn token_file(test: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mcp-server-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("tokens");
    std::fs::write(&path, contents).expect("token file");
    path
}

/// A loopback port free at the time of the call (for a server that must know its address before
/// it starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A loopback address free at the time of the call.
pub fn free_address() -> String {
    format!("127.0.0.1:{}", free_port())
}

/// A session-key file holding `keys` (base64, one per line, the signing one first), replaced the
/// way a Secret volume is updated: a new file renamed over the old.
pub fn write_session_keys(path: &Path, keys: &[[u8; 32]]) {
    use base64::Engine as _;
    let text: String = keys
        .iter()
        .map(|k| base64::engine::general_purpose::STANDARD.encode(k) + "\n")
        .collect();
    let next = path.with_extension("next");
    std::fs::write(&next, text).expect("key file");
    std::fs::rename(&next, path).expect("key file swapped in");
}

/// Replicas of one app: servers sharing a session key file, each advertising its own address.
pub struct Replicas {
    pub servers: Vec<Server>,
    pub key_file: PathBuf,
}

impl Replicas {
    /// `n` replicas signing with `key`, each started with `extra` flags.
    pub fn start(test: &str, n: usize, key: [u8; 32], extra: &[&str]) -> Self {
        let dir = std::env::temp_dir().join(format!("mcp-server-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let key_file = dir.join("session-keys");
        write_session_keys(&key_file, &[key]);
        let servers = (0..n).map(|_| Self::replica(&key_file, extra)).collect();
        Self { servers, key_file }
    }

    /// One more replica sharing the key file.
    pub fn replica(key_file: &Path, extra: &[&str]) -> Server {
        let listen = format!("127.0.0.1:{}", free_port());
        let key_file = key_file.to_string_lossy();
        let mut args = vec![
            "--session-key-file",
            &key_file,
            "--advertise-address",
            &listen,
        ];
        args.extend_from_slice(extra);
        Server::start_listening(&listen, &args)
    }

    /// Every replica's URL for `path`, comma-separated (what the spreading clients take).
    pub fn urls(&self, path: &str) -> String {
        self.servers
            .iter()
            .map(|s| s.url(path))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// What a started process announces on the first line of its stdout (piped), after `prefix`.
pub fn announced(child: &mut Child, prefix: &str) -> String {
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the process announces itself");
    line.trim()
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned()
}

/// A running `mcp-server`, stopped when dropped.
pub struct Server {
    child: Child,
    pub addr: String,
}

impl Server {
    pub fn start(args: &[&str]) -> Self {
        Self::start_with_env(args, &[])
    }

    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_wrapped(&[], args, env)
    }

    /// Starts the server under `wrapper` (a command that runs the rest of its arguments, such
    /// as `unshare ...`), which then owns the process: `pid()` is the wrapper's.
    pub fn start_wrapped(wrapper: &[&str], args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::spawn(wrapper, "127.0.0.1:0", args, env)
    }

    /// Starts the server listening on `listen` (an address chosen before it starts).
    pub fn start_listening(listen: &str, args: &[&str]) -> Self {
        Self::spawn(&[], listen, args, &[])
    }

    fn spawn(wrapper: &[&str], listen: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let binary = env!("CARGO_BIN_EXE_mcp-server");
        let mut command = match wrapper.split_first() {
            None => Command::new(binary),
            Some((program, rest)) => {
                let mut command = Command::new(program);
                command.args(rest).arg(binary);
                command
            }
        };
        // Flags given before a subcommand apply to it too (they are global). A free port unless
        // the caller names an address.
        if !args.contains(&"--listen") {
            command.args(["--listen", listen]);
        }
        command
            .args(["--log", "warn"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("mcp-server starts");
        let addr = announced(&mut child, "mcp-server listening on ");
        Self { child, addr }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to exit, up to `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Polls `/readyz` until it answers 200.
    pub fn wait_ready(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.request("GET", "/readyz", &[], "").status == 200 {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("mcp-server did not become ready within {limit:?}");
    }

    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        http(&self.addr, method, path, headers, body)
    }

    /// POSTs a JSON-RPC body to `/mcp` with the headers a well-behaved client sends.
    pub fn post_mcp(&self, extra: &[(&str, &str)], body: &str) -> Reply {
        self.request("POST", "/mcp", &post_mcp_headers(extra), body)
    }

    /// Runs `initialize` at `version` (+ `notifications/initialized`) and returns the session id.
    pub fn initialize(&self, version: &str) -> String {
        let reply = self.post_mcp(
            &[],
            &format!(
                r#"{{"jsonrpc":"2.0","id":0,"method":"initialize","params":{{"protocolVersion":"{version}","capabilities":{{}},"clientInfo":{{"name":"raw","version":"1"}}}}}}"#
            ),
        );
        assert_eq!(reply.status, 200, "initialize failed: {}", reply.body);
        let session = reply
            .header("mcp-session-id")
            .expect("a session id")
            .to_owned();
        let note = self.post_mcp(
            &[
                ("Mcp-Session-Id", &session),
                ("MCP-Protocol-Version", version),
            ],
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        );
        assert_eq!(note.status, 202);
        session
    }

    /// The value of a sample in `/metrics` (0 when absent), e.g.
    /// `mcp_server_session_routing_total{outcome="forwarded"}`.
    pub fn metric(&self, sample: &str) -> f64 {
        let text = self.request("GET", "/metrics", &[], "").body;
        text.lines()
            .find_map(|line| line.strip_prefix(sample)?.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The headers a well-behaved client sends with a POST to `/mcp`, plus `extra`.
pub fn post_mcp_headers<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut headers = vec![
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
    ];
    headers.extend_from_slice(extra);
    headers
}

/// An HTTP response read to its end.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
    }

    /// The JSON messages of an SSE body, in order.
    pub fn sse_messages(&self) -> Vec<Value> {
        sse_events(&self.body)
            .into_iter()
            .map(|(_, data)| data)
            .collect()
    }
}

/// `(id, data)` of each SSE event carrying data.
pub fn sse_events(body: &str) -> Vec<(Option<String>, Value)> {
    body.split("\n\n")
        .filter_map(|block| {
            let mut id = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = Some(v.trim().to_owned());
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            let value = serde_json::from_str(&data).ok()?;
            Some((id, value))
        })
        .collect()
}

/// One HTTP/1.1 request on its own connection, read until the server closes it.
pub fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut stream = open(addr, method, path, headers, body);
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("response is readable");
    parse_response(&raw)
}

/// Sends a request and returns the connection, for reading a stream bit by bit.
pub fn open(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> TcpStream {
    let mut stream = TcpStream::connect(addr).expect("server accepts connections");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout can be set");
    let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        request.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream
        .write_all(request.as_bytes())
        .expect("request is sent");
    stream
}

/// Reads from a streaming response until `done` holds for what arrived so far (or times out).
pub fn read_until(stream: &mut TcpStream, done: impl Fn(&str) -> bool) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                seen.extend_from_slice(&buf[..n]);
                if done(&String::from_utf8_lossy(&seen)) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

pub fn parse_response(raw: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(raw);
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut body = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            break;
        }
        body.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    body
}

/// Runs an official client script and returns the JSON it printed.
pub fn run_client(program: &str, args: &[&str]) -> Value {
    let output = client_command(program, args)
        .output()
        .expect("client runtime starts");
    client_output(program, args, &output)
}

/// Runs a client script that prints `ready` and then waits for a line on stdin: `meanwhile`
/// runs in between. Returns the JSON it printed at the end.
pub fn run_client_pausing(program: &str, args: &[&str], meanwhile: impl FnOnce()) -> Value {
    let mut child = client_command(program, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("client runtime starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("the client reads");
    assert_eq!(line.trim(), "ready", "the client did not pause");
    meanwhile();
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(b"go\n")
        .expect("the client waits for a line");
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).expect("the client's output");
    let mut output = child.wait_with_output().expect("the client ends");
    output.stdout = rest;
    client_output(program, args, &output)
}

fn client_command(program: &str, args: &[&str]) -> Command {
    let clients = installed_clients();
    let script = clients_dir().join(args[0]);
    let (exe, node_path) = match program {
        "node" => ("node".to_owned(), clients.join("node_modules")),
        "python" => (
            clients
                .join("venv/bin/python")
                .to_string_lossy()
                .into_owned(),
            PathBuf::new(),
        ),
        other => panic!("unknown client runtime {other}"),
    };
    let mut command = Command::new(exe);
    command
        .arg(&script)
        .args(&args[1..])
        .env("NODE_PATH", node_path);
    command
}

/// The JSON a client printed last, once it succeeded.
fn client_output(program: &str, args: &[&str], output: &std::process::Output) -> Value {
    assert!(
        output.status.success(),
        "{} {:?} failed ({}):\nstdout: {}\nstderr: {}",
        program,
        args,
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("client printed no JSON ({e}): {stdout}"))
}

/// What every client must have seen from the built-in tools, whatever the transport.
pub fn assert_builtin_exchange(out: &Value, echo: &str, sum: &str) {
    assert_eq!(
        out["tools"],
        serde_json::json!(["add", "echo", "sleep", "time", "whoami"]),
        "{out}"
    );
    assert_eq!(out["echo"], echo);
    assert_eq!(out["add"], sum);
    let time = out["time"].as_str().expect("time is text");
    assert!(
        time.len() == 20 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
        "{time}"
    );
    assert_eq!(out["sleep"], "slept 1 seconds");
    let progress: Vec<f64> = out["progress"]
        .as_array()
        .expect("progress list")
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    assert!(
        progress.len() >= 2,
        "sleep should report progress: {progress:?}"
    );
    assert!(
        progress.windows(2).all(|w| w[0] < w[1]),
        "progress must increase: {progress:?}"
    );
    assert!(
        progress.iter().all(|p| *p > 0.0 && *p <= 1.0),
        "{progress:?}"
    );
    assert_eq!(out["resources"], serde_json::json!(["mcp-server://about"]));
    assert!(
        out["resourceText"]
            .as_str()
            .unwrap_or_default()
            .starts_with("mcp-server ")
    );
    assert_eq!(out["prompts"], serde_json::json!(["greet"]));
    assert_eq!(out["unknownToolError"]["code"], -32602);
    assert_eq!(out["badArgumentError"]["code"], -32602);
}

/// What a client must have seen from the SDK stdio server (`stdio_server.cjs`), bridged: its
/// tools, server-to-client requests answered, progress, and a crash failing only its call.
pub fn assert_bridged_exchange(out: &Value, echo: &str, elicited_color: &str) {
    assert_eq!(
        out["tools"],
        serde_json::json!(["ask_color", "countdown", "crash", "echo", "summarize"]),
        "{out}"
    );
    assert_eq!(out["echo"], echo);
    // Server-to-client requests reached the client and its answers reached the child.
    let elicited = out["elicited"].as_str().unwrap_or_default();
    assert!(
        elicited.starts_with(&format!(
            "accept: {elicited_color} (asked: Favourite colour?)"
        )),
        "{elicited}"
    );
    assert!(
        out["sampled"]
            .as_str()
            .unwrap_or_default()
            .starts_with("sampled: summarize "),
        "{out}"
    );
    assert_eq!(out["countdown"], "liftoff");
    let progress: Vec<f64> = out["progress"]
        .as_array()
        .map(|p| p.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    assert_eq!(
        progress,
        [1.0, 2.0, 3.0],
        "progress reached the client's request"
    );
    // The child's death fails the call in flight; the session goes on with a restarted child.
    assert_eq!(out["crashError"]["code"], -32603, "{out}");
    assert_eq!(out["afterCrash"], "still here");
}

/// Starts `mcp-server bridge -- node stdio_server.cjs` and waits until the child answered its
/// readiness handshake.
pub fn bridge_to_sdk_server() -> Server {
    let clients = installed_clients();
    let node_path = clients.join("node_modules");
    let script = clients_dir().join("stdio_server.cjs");
    let server = Server::start_with_env(
        &["bridge", "--", "node", script.to_str().expect("utf-8 path")],
        &[("NODE_PATH", node_path.to_str().expect("utf-8 path"))],
    );
    server.wait_ready(Duration::from_secs(30));
    server
}

/// `clients/misbehaving_upstream.py`: an upstream that misbehaves on request, echoes the headers
/// it got, pages its tools and speaks both transports. Stopped when dropped.
pub struct MisbehavingUpstream {
    child: Child,
    port: String,
}

impl MisbehavingUpstream {
    pub fn start() -> Self {
        let mut child = Command::new("python3")
            .arg(clients_dir().join("misbehaving_upstream.py"))
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 starts");
        let port = announced(&mut child, "listening on ");
        Self { child, port }
    }

    /// Its Streamable HTTP endpoint (`/mcp`) or its legacy stream (`/sse`).
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for MisbehavingUpstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `mcp-server proxy --upstream UPSTREAM` (then `extra` flags) and waits until the
/// upstream answered its readiness handshake.
pub fn proxy_to(upstream: &str, extra: &[&str]) -> Server {
    let mut args = vec!["proxy", "--upstream", upstream];
    args.extend_from_slice(extra);
    let proxy = Server::start(&args);
    proxy.wait_ready(Duration::from_secs(30));
    proxy
}

/// The JSON-RPC messages of a reply, whether it came as JSON or as an event stream.
pub fn reply_messages(reply: &Reply) -> Vec<Value> {
    if reply
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/event-stream"))
    {
        reply.sse_messages()
    } else {
        vec![reply.json()]
    }
}

/// Polls `done` every 100 ms until it holds (`true`) or `limit` passes (`false`).
pub fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
