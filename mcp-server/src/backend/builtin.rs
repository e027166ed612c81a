//! The built-in backend (the default, no upstream): tools `echo`, `add`, `time` and `sleep`, one
//! resource and one prompt, so every client capability can be exercised against the default image.
//!
//! The same request handler serves session-based revisions (through a [`BuiltinSession`]) and the
//! stateless 2026-07-28 revision (one request at a time, see [`Builtin::answer_one`]). A session
//! costs no task of its own: each request runs on a task that lives as long as the request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;

use super::{ChannelOutlet, Outbound, Outlet, Stopped};
use crate::message::envelope::{self, SERVER_INFO_KEY};
use crate::message::jsonrpc::{INVALID_PARAMS, RESOURCE_NOT_FOUND};
use crate::message::{Kind, Message, RequestId, RpcError, version};

const ABOUT_URI: &str = "mcp-server://about";
/// Longest `sleep` accepted, so a demo call cannot pin a task for hours.
const MAX_SLEEP_SECONDS: f64 = 300.0;
/// Interval between progress notifications of `sleep`.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);

/// Which protocol family a request arrived under; a few answers differ between them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// A revision with an `initialize` handshake and a session.
    Session,
    /// 2026-07-28: no handshake, `server/discover`, `resultType` on every result.
    Stateless,
}

/// Sends progress notifications for one request when the client asked for them.
pub struct Progress {
    token: Option<Value>,
    request: RequestId,
    outlet: Arc<dyn Outlet>,
}

impl Progress {
    fn for_request(request: &Message, outlet: Arc<dyn Outlet>) -> Option<Self> {
        let id = request.id()?.clone();
        let token = request.params().pointer("/_meta/progressToken").cloned();
        Some(Self {
            token,
            request: id,
            outlet,
        })
    }

    fn report(&self, progress: f64, total: f64, message: String) {
        let Some(token) = &self.token else { return };
        let note = Message::notification(
            "notifications/progress",
            json!({ "progressToken": token, "progress": progress, "total": total, "message": message }),
        );
        self.outlet.send(Outbound {
            message: note,
            related: Some(self.request.clone()),
        });
    }
}

/// One session of the built-in backend.
pub struct BuiltinSession {
    builtin: Arc<Builtin>,
    outlet: Arc<dyn Outlet>,
    /// Cancelled when the session ends; its running requests stop with it.
    end: CancellationToken,
    /// Requests run concurrently (a slow `sleep` must not block `echo`); kept so that
    /// `notifications/cancelled` can stop them.
    running: Mutex<HashMap<RequestId, AbortHandle>>,
}

impl BuiltinSession {
    /// Takes one client message: a request starts its own task, a cancellation stops one.
    pub fn receive(self: &Arc<Self>, message: Message) -> Result<(), Stopped> {
        if self.end.is_cancelled() {
            return Err(Stopped);
        }
        match message.kind() {
            Kind::Request { id, .. } => {
                let id = id.clone();
                let reply = Arc::clone(&self.builtin).reply(
                    message,
                    Flavor::Session,
                    Arc::clone(&self.outlet),
                );
                let end = self.end.clone();
                let task = tokio::spawn(async move {
                    tokio::select! {
                        () = end.cancelled() => {}
                        () = reply => {}
                    }
                });
                let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
                running.retain(|_, task| !task.is_finished());
                running.insert(id, task.abort_handle());
            }
            Kind::Notification { method } if method == "notifications/cancelled" => {
                let params = message.params();
                let task = params
                    .get("requestId")
                    .and_then(RequestId::from_value)
                    .and_then(|id| {
                        self.running
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .remove(&id)
                    });
                // A cancelled request gets no response, as the protocol asks.
                if let Some(task) = task {
                    task.abort();
                }
            }
            // Other notifications (initialized, roots changed) and responses need no answer.
            Kind::Notification { .. } | Kind::Response { .. } => {}
        }
        Ok(())
    }
}

pub struct Builtin {
    server_version: &'static str,
}

impl Default for Builtin {
    fn default() -> Self {
        Self::new()
    }
}

impl Builtin {
    pub fn new() -> Self {
        Self {
            server_version: env!("CARGO_PKG_VERSION"),
        }
    }

    /// Starts serving one session.
    pub fn open(
        self: &Arc<Self>,
        outlet: Arc<dyn Outlet>,
        end: CancellationToken,
    ) -> Arc<BuiltinSession> {
        Arc::new(BuiltinSession {
            builtin: Arc::clone(self),
            outlet,
            end,
            running: Mutex::new(HashMap::new()),
        })
    }

    /// Answers one stateless request: progress notifications (if asked for) then the response,
    /// on the returned channel.
    pub fn answer_one(self: &Arc<Self>, request: Message) -> mpsc::UnboundedReceiver<Outbound> {
        let (outlet, rx) = ChannelOutlet::new();
        tokio::spawn(Arc::clone(self).reply(request, Flavor::Stateless, outlet));
        rx
    }

    async fn reply(self: Arc<Self>, request: Message, flavor: Flavor, outlet: Arc<dyn Outlet>) {
        let (Some(id), Some(method)) = (request.id().cloned(), request.method()) else {
            return;
        };
        let Some(progress) = Progress::for_request(&request, Arc::clone(&outlet)) else {
            return;
        };
        let params = request.params();
        let message = match self.answer(method, &params, flavor, &progress).await {
            Ok(mut result) => {
                if flavor == Flavor::Stateless {
                    stamp_stateless(method, &mut result);
                }
                Message::response(&id, result)
            }
            Err(e) => e.with_id(Some(id.clone())).to_message(),
        };
        outlet.send(Outbound {
            message,
            related: Some(id),
        });
    }

    async fn answer(
        &self,
        method: &str,
        params: &Value,
        flavor: Flavor,
        progress: &Progress,
    ) -> Result<Value, RpcError> {
        match (method, flavor) {
            ("initialize", Flavor::Session) => self.initialize(params),
            ("ping", Flavor::Session) => Ok(json!({})),
            // The built-in tools log nothing, so any level is accepted and changes nothing.
            ("logging/setLevel", Flavor::Session) => set_log_level(params),
            ("server/discover", Flavor::Stateless) => Ok(self.discover()),
            ("tools/list", _) => Ok(json!({ "tools": tool_definitions() })),
            ("tools/call", _) => call_tool(params, progress).await,
            ("resources/list", _) => Ok(json!({ "resources": [self.about_resource()] })),
            ("resources/templates/list", _) => Ok(json!({ "resourceTemplates": [] })),
            ("resources/read", _) => self.read_resource(params, flavor),
            ("prompts/list", _) => Ok(json!({ "prompts": [greet_prompt()] })),
            ("prompts/get", _) => get_prompt(params),
            _ => Err(RpcError::method_not_found(method)),
        }
    }

    fn server_info(&self) -> Value {
        json!({ "name": "mcp-server", "version": self.server_version })
    }

    fn capabilities() -> Value {
        json!({
            "logging": {},
            "tools": { "listChanged": false },
            "resources": { "subscribe": false, "listChanged": false },
            "prompts": { "listChanged": false },
        })
    }

    const INSTRUCTIONS: &str = "Built-in demo tools: echo, add, time, sleep (with progress).";

    fn initialize(&self, params: &Value) -> Result<Value, RpcError> {
        let requested = params
            .get("protocolVersion")
            .and_then(Value::as_str)
            .ok_or_else(|| RpcError::invalid_params("initialize needs params.protocolVersion"))?;
        Ok(json!({
            "protocolVersion": version::negotiate(requested).as_str(),
            "capabilities": Self::capabilities(),
            "serverInfo": self.server_info(),
            "instructions": Self::INSTRUCTIONS,
        }))
    }

    fn discover(&self) -> Value {
        json!({
            "supportedVersions": envelope::stateless_revisions().iter().map(|r| r.as_str()).collect::<Vec<_>>(),
            "capabilities": Self::capabilities(),
            "serverInfo": self.server_info(),
            "instructions": Self::INSTRUCTIONS,
            "_meta": { SERVER_INFO_KEY: self.server_info() },
        })
    }

    fn about_resource(&self) -> Value {
        json!({
            "uri": ABOUT_URI,
            "name": "about",
            "title": "About this server",
            "description": "What this mcp-server is and which tools it offers",
            "mimeType": "text/plain",
        })
    }

    fn read_resource(&self, params: &Value, flavor: Flavor) -> Result<Value, RpcError> {
        let uri = params
            .get("uri")
            .and_then(Value::as_str)
            .ok_or_else(|| RpcError::invalid_params("resources/read needs params.uri"))?;
        if uri != ABOUT_URI {
            // 2026-07-28 reports unknown resources as invalid params; earlier revisions use the
            // MCP-specific resource-not-found code.
            let code = match flavor {
                Flavor::Session => RESOURCE_NOT_FOUND,
                Flavor::Stateless => INVALID_PARAMS,
            };
            return Err(RpcError::new(code, format!("resource not found: {uri}"))
                .with_data(json!({ "uri": uri })));
        }
        let text = format!(
            "mcp-server {}: built-in tools echo, add, time and sleep; prompt greet.",
            self.server_version
        );
        Ok(json!({ "contents": [{ "uri": ABOUT_URI, "mimeType": "text/plain", "text": text }] }))
    }
}

/// How long a client may cache list and read answers under 2026-07-28: the built-in catalogue
/// never changes while the process runs.
const CACHE_TTL_MS: u64 = 300_000;

/// 2026-07-28 results say what kind of result they are, and cacheable ones say for how long and
/// for whom they may be cached.
fn stamp_stateless(method: &str, result: &mut Value) {
    let Some(obj) = result.as_object_mut() else {
        return;
    };
    obj.insert("resultType".into(), json!("complete"));
    let cacheable = matches!(
        method,
        "server/discover"
            | "tools/list"
            | "resources/list"
            | "resources/templates/list"
            | "resources/read"
            | "prompts/list"
    );
    if cacheable {
        obj.insert("ttlMs".into(), json!(CACHE_TTL_MS));
        obj.insert("cacheScope".into(), json!("public"));
    }
}

fn tool_definitions() -> Value {
    json!([
        {
            "name": "echo",
            "description": "Returns the given message unchanged.",
            "inputSchema": {
                "type": "object",
                "properties": { "message": { "type": "string", "description": "Text to send back" } },
                "required": ["message"],
            },
        },
        {
            "name": "add",
            "description": "Adds two numbers.",
            "inputSchema": {
                "type": "object",
                "properties": { "a": { "type": "number" }, "b": { "type": "number" } },
                "required": ["a", "b"],
            },
        },
        {
            "name": "time",
            "description": "Returns the server's current time in UTC (RFC 3339).",
            "inputSchema": { "type": "object", "properties": {} },
        },
        {
            "name": "sleep",
            "description": "Waits the given number of seconds, reporting progress if asked to.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "seconds": { "type": "number", "minimum": 0, "maximum": MAX_SLEEP_SECONDS },
                },
                "required": ["seconds"],
            },
        },
    ])
}

fn text_result(text: impl Into<String>) -> Value {
    json!({ "content": [{ "type": "text", "text": text.into() }], "isError": false })
}

fn number_arg(args: &Value, name: &str) -> Result<f64, RpcError> {
    args.get(name)
        .and_then(Value::as_f64)
        .ok_or_else(|| RpcError::invalid_params(format!("argument `{name}` must be a number")))
}

async fn call_tool(params: &Value, progress: &Progress) -> Result<Value, RpcError> {
    let name = params
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::invalid_params("tools/call needs params.name"))?;
    let no_args = json!({});
    let args = match params.get("arguments") {
        None | Some(Value::Null) => &no_args,
        Some(a) if a.is_object() => a,
        Some(_) => {
            return Err(RpcError::invalid_params(
                "params.arguments must be an object",
            ));
        }
    };
    match name {
        "echo" => {
            let message = args
                .get("message")
                .and_then(Value::as_str)
                .ok_or_else(|| RpcError::invalid_params("argument `message` must be a string"))?;
            Ok(text_result(message))
        }
        "add" => {
            let sum = number_arg(args, "a")? + number_arg(args, "b")?;
            Ok(text_result(format_number(sum)))
        }
        "time" => Ok(text_result(rfc3339_utc(SystemTime::now()))),
        "sleep" => {
            let seconds = number_arg(args, "seconds")?;
            if !(0.0..=MAX_SLEEP_SECONDS).contains(&seconds) {
                return Err(RpcError::invalid_params(format!(
                    "argument `seconds` must be between 0 and {MAX_SLEEP_SECONDS}"
                )));
            }
            sleep_with_progress(seconds, progress).await;
            Ok(text_result(format!(
                "slept {} seconds",
                format_number(seconds)
            )))
        }
        other => Err(RpcError::invalid_params(format!("unknown tool: {other}"))),
    }
}

async fn sleep_with_progress(seconds: f64, progress: &Progress) {
    let total = Duration::from_secs_f64(seconds);
    let start = tokio::time::Instant::now();
    loop {
        let elapsed = start.elapsed();
        if elapsed >= total {
            break;
        }
        tokio::time::sleep((total - elapsed).min(PROGRESS_INTERVAL)).await;
        let done = start.elapsed().min(total).as_secs_f64();
        progress.report(
            done,
            seconds,
            format!("slept {done:.2} of {seconds} seconds"),
        );
    }
}

/// Integral sums print without a fractional part (`2 + 3` is `5`, not `5.0`).
fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

const LOG_LEVELS: [&str; 8] = [
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

fn set_log_level(params: &Value) -> Result<Value, RpcError> {
    match params.get("level").and_then(Value::as_str) {
        Some(level) if LOG_LEVELS.contains(&level) => Ok(json!({})),
        _ => Err(RpcError::invalid_params(format!(
            "params.level must be one of {}",
            LOG_LEVELS.join(", ")
        ))),
    }
}

fn greet_prompt() -> Value {
    json!({
        "name": "greet",
        "title": "Greeting",
        "description": "Asks the model to greet someone by name.",
        "arguments": [{ "name": "name", "description": "Who to greet", "required": true }],
    })
}

fn get_prompt(params: &Value) -> Result<Value, RpcError> {
    let name = params
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::invalid_params("prompts/get needs params.name"))?;
    if name != "greet" {
        return Err(RpcError::invalid_params(format!("unknown prompt: {name}")));
    }
    let who = params
        .pointer("/arguments/name")
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::invalid_params("prompt `greet` needs argument `name`"))?;
    Ok(json!({
        "description": "A friendly greeting",
        "messages": [{
            "role": "user",
            "content": { "type": "text", "text": format!("Please greet {who} warmly.") },
        }],
    }))
}

/// Formats a time as `YYYY-MM-DDTHH:MM:SSZ` without a calendar dependency.
fn rfc3339_utc(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil-from-days (proleptic Gregorian), after Howard Hinnant's public-domain algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress() -> (Progress, mpsc::UnboundedReceiver<Outbound>) {
        let (tx, rx) = ChannelOutlet::new();
        let request = Message::parse(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"_meta":{"progressToken":"p"}}}"#,
        )
        .unwrap();
        (Progress::for_request(&request, tx).unwrap(), rx)
    }

    async fn call(name: &str, args: Value) -> Result<Value, RpcError> {
        let (p, _rx) = progress();
        call_tool(&json!({ "name": name, "arguments": args }), &p).await
    }

    fn text(result: &Value) -> &str {
        result["content"][0]["text"].as_str().unwrap()
    }

    #[tokio::test]
    async fn echo_returns_its_message() {
        assert_eq!(
            text(&call("echo", json!({"message": "hi ✓"})).await.unwrap()),
            "hi ✓"
        );
    }

    #[tokio::test]
    async fn add_sums_integers_and_fractions() {
        assert_eq!(
            text(&call("add", json!({"a": 2, "b": 3})).await.unwrap()),
            "5"
        );
        assert_eq!(
            text(&call("add", json!({"a": 0.5, "b": 0.25})).await.unwrap()),
            "0.75"
        );
    }

    #[tokio::test]
    async fn bad_arguments_and_unknown_tools_are_invalid_params() {
        for (name, args) in [
            ("echo", json!({})),
            ("add", json!({"a": "1", "b": 2})),
            ("sleep", json!({"seconds": -1})),
            ("nope", json!({})),
        ] {
            assert_eq!(
                call(name, args).await.unwrap_err().code,
                INVALID_PARAMS,
                "{name}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn sleep_reports_progress_up_to_the_total() {
        let (p, mut rx) = progress();
        let result = call_tool(&json!({"name": "sleep", "arguments": {"seconds": 1}}), &p)
            .await
            .unwrap();
        assert_eq!(text(&result), "slept 1 seconds");
        let mut last = 0.0;
        let mut count = 0;
        while let Ok(out) = rx.try_recv() {
            let params = out.message.params();
            assert_eq!(params["progressToken"], "p");
            let value = params["progress"].as_f64().unwrap();
            assert!(value > last, "progress must increase");
            last = value;
            count += 1;
        }
        assert_eq!(count, 4);
        assert_eq!(last, 1.0);
    }

    #[test]
    fn time_is_formatted_as_rfc3339() {
        let t = UNIX_EPOCH + Duration::from_secs(1_709_210_096); // 2024-02-29T12:34:56Z
        assert_eq!(rfc3339_utc(t), "2024-02-29T12:34:56Z");
        assert_eq!(rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn unknown_resource_code_depends_on_the_revision_family() {
        let b = Builtin::new();
        let params = json!({"uri": "mcp-server://nope"});
        assert_eq!(
            b.read_resource(&params, Flavor::Session).unwrap_err().code,
            RESOURCE_NOT_FOUND
        );
        assert_eq!(
            b.read_resource(&params, Flavor::Stateless)
                .unwrap_err()
                .code,
            INVALID_PARAMS
        );
    }

    #[test]
    fn greet_prompt_needs_a_name() {
        assert_eq!(
            get_prompt(&json!({"name": "greet"})).unwrap_err().code,
            INVALID_PARAMS
        );
        let got = get_prompt(&json!({"name": "greet", "arguments": {"name": "Ada"}})).unwrap();
        assert_eq!(
            got["messages"][0]["content"]["text"],
            "Please greet Ada warmly."
        );
    }
}
