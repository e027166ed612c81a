//! The built-in backend (the default, no upstream): tools `echo`, `add`, `time` and `sleep`, one
//! resource and one prompt, so every client capability can be exercised against the default image.
//!
//! The same request handler serves session-based revisions (through a [`BuiltinSession`]) and the
//! stateless 2026-07-28 revision (one request at a time, see [`Builtin::answer_one`]). A session
//! costs no task of its own: each request runs on a task that lives as long as the request.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;

use super::{ChannelOutlet, Outbound, Outlet, Stopped, conformance};
use crate::message::envelope::{self, SERVER_INFO_KEY};
use crate::message::jsonrpc::{INTERNAL_ERROR, INVALID_PARAMS, RESOURCE_NOT_FOUND};
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

/// How long a tool waits for the client to answer a request it sent (sampling, elicitation):
/// a person may be answering.
const CLIENT_ANSWER_TIMEOUT: Duration = Duration::from_secs(600);

/// One request being answered: what a tool needs to report progress, log, and ask the client.
pub struct Call {
    request: RequestId,
    progress_token: Option<Value>,
    outlet: Arc<dyn Outlet>,
    /// The session the request belongs to; stateless requests have none.
    session: Option<Arc<BuiltinSession>>,
}

impl Call {
    fn for_request(
        request: &Message,
        outlet: Arc<dyn Outlet>,
        session: Option<Arc<BuiltinSession>>,
    ) -> Option<Self> {
        Some(Self {
            request: request.id()?.clone(),
            progress_token: request.params().pointer("/_meta/progressToken").cloned(),
            outlet,
            session,
        })
    }

    /// A message on this request's stream.
    fn send(&self, message: Message) {
        self.outlet.send(Outbound {
            message,
            related: Some(self.request.clone()),
        });
    }

    /// Reports progress when the client asked for it (with a progress token).
    pub fn progress(&self, progress: f64, total: f64, message: Option<String>) {
        let Some(token) = &self.progress_token else {
            return;
        };
        let mut params = json!({ "progressToken": token, "progress": progress, "total": total });
        if let Some(message) = message {
            params["message"] = json!(message);
        }
        self.send(Message::notification("notifications/progress", params));
    }

    /// Ends the HTTP response carrying this call while the call goes on: the client resumes
    /// the stream with `Last-Event-ID` and gets the rest there (SEP-1699 polling).
    pub fn release_stream(&self) {
        self.outlet.release_stream(&self.request);
    }

    /// Sends a log message (`notifications/message`) if the session's level admits it.
    pub fn log(&self, level: &str, data: Value) {
        if self.session.as_ref().is_some_and(|s| s.logs(level)) {
            self.send(Message::notification(
                "notifications/message",
                json!({ "level": level, "logger": "mcp-server", "data": data }),
            ));
        }
    }

    /// Whether the client declared `capability` (`sampling`, `elicitation`, `roots`) when it
    /// initialized the session.
    pub fn client_can(&self, capability: &str) -> bool {
        self.session.as_ref().is_some_and(|s| {
            s.state()
                .client_capabilities
                .as_ref()
                .is_some_and(|c| c.get(capability).is_some())
        })
    }

    /// Sends a request to the client and waits for its result. The request travels on this
    /// call's stream, so the client sees it while the call is open.
    pub async fn ask(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        let session = self.session.as_ref().ok_or_else(|| {
            RpcError::new(
                INTERNAL_ERROR,
                format!("{method} needs a session; this request has none"),
            )
        })?;
        let (id, answer) = session.expect_answer();
        let request = Message::from_value(&json!({
            "jsonrpc": "2.0", "id": id.to_value(), "method": method, "params": params,
        }));
        self.send(request);
        let answer = tokio::time::timeout(CLIENT_ANSWER_TIMEOUT, answer).await;
        take(&mut session.state().asked, &id);
        let answer = match answer {
            Ok(Ok(answer)) => answer,
            _ => {
                return Err(RpcError::new(
                    INTERNAL_ERROR,
                    format!("the client did not answer {method}"),
                ));
            }
        };
        let value: Value = serde_json::from_str(answer.text()).unwrap_or(Value::Null);
        match (value.get("result"), value.get("error")) {
            (Some(result), _) => Ok(result.clone()),
            (None, error) => Err(RpcError::new(
                INTERNAL_ERROR,
                format!(
                    "the client refused {method}: {}",
                    error
                        .and_then(|e| e.get("message"))
                        .and_then(Value::as_str)
                        .unwrap_or("no reason given")
                ),
            )),
        }
    }
}

/// One session of the built-in backend.
pub struct BuiltinSession {
    builtin: Arc<Builtin>,
    outlet: Arc<dyn Outlet>,
    /// Cancelled when the session ends; its running requests stop with it.
    end: CancellationToken,
    state: Mutex<SessionState>,
}

/// Kept small: an idle session holds one. The lists are short (requests in flight, questions
/// to the client, subscriptions), so they are plain vectors.
#[derive(Default)]
struct SessionState {
    /// Requests run concurrently (a slow `sleep` must not block `echo`); kept so that
    /// `notifications/cancelled` can stop them.
    running: Vec<(RequestId, AbortHandle)>,
    /// Requests this server sent to the client, with whoever waits for the answer.
    asked: Vec<(RequestId, oneshot::Sender<Message>)>,
    next_ask: u64,
    /// What the client declared in `initialize`.
    client_capabilities: Option<Box<Value>>,
    /// The least severe level the client wants (`logging/setLevel`); all until it says.
    log_level: Option<u8>,
    subscriptions: Vec<String>,
}

/// Removes and returns the value kept for `key`.
fn take<V>(list: &mut Vec<(RequestId, V)>, key: &RequestId) -> Option<V> {
    let at = list.iter().position(|(k, _)| k == key)?;
    Some(list.swap_remove(at).1)
}

impl BuiltinSession {
    fn state(&self) -> MutexGuard<'_, SessionState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes one client message: a request starts its own task, a cancellation stops one, an
    /// answer goes to the tool that asked.
    pub fn receive(self: &Arc<Self>, message: Message) -> Result<(), Stopped> {
        if self.end.is_cancelled() {
            return Err(Stopped);
        }
        match message.kind() {
            Kind::Request { id, method } => {
                if method == "initialize" {
                    let capabilities = message.params().get("capabilities").cloned();
                    self.state().client_capabilities = capabilities.map(Box::new);
                }
                let id = id.clone();
                let reply = Arc::clone(&self.builtin).reply(
                    message,
                    Flavor::Session,
                    Arc::clone(&self.outlet),
                    Some(Arc::clone(self)),
                );
                let end = self.end.clone();
                let task = tokio::spawn(async move {
                    tokio::select! {
                        () = end.cancelled() => {}
                        () = reply => {}
                    }
                });
                let mut state = self.state();
                state.running.retain(|(_, task)| !task.is_finished());
                state.running.push((id, task.abort_handle()));
            }
            Kind::Notification { method } if method == "notifications/cancelled" => {
                let params = message.params();
                let task = params
                    .get("requestId")
                    .and_then(RequestId::from_value)
                    .and_then(|id| take(&mut self.state().running, &id));
                // A cancelled request gets no response, as the protocol asks.
                if let Some(task) = task {
                    task.abort();
                }
            }
            Kind::Response { id } => {
                let waiting = take(&mut self.state().asked, id);
                match waiting {
                    Some(tx) => {
                        let _ = tx.send(message);
                    }
                    None => tracing::debug!(?id, "dropping an answer nobody waits for"),
                }
            }
            // Other notifications (initialized, roots changed) need no answer.
            Kind::Notification { .. } => {}
        }
        Ok(())
    }

    /// A fresh id for a request to the client, and where its answer will arrive.
    fn expect_answer(&self) -> (RequestId, oneshot::Receiver<Message>) {
        let mut state = self.state();
        state.next_ask += 1;
        let id = RequestId::from_value(&json!(format!("mcp-server-{}", state.next_ask)))
            .expect("a string is a request id");
        let (tx, rx) = oneshot::channel();
        state.asked.push((id.clone(), tx));
        (id, rx)
    }

    /// Whether a log message at `level` is wanted.
    fn logs(&self, level: &str) -> bool {
        let wanted = self.state().log_level;
        let severity = LOG_LEVELS.iter().position(|l| *l == level);
        match (wanted, severity) {
            (Some(wanted), Some(severity)) => severity >= usize::from(wanted),
            _ => true,
        }
    }
}

pub struct Builtin {
    server_version: &'static str,
    /// The conformance suite's reference fixtures are offered too (`--conformance-fixtures`).
    fixtures: bool,
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
            fixtures: false,
        }
    }

    /// Also offers the reference fixtures of the conformance suite ([`super::conformance`]).
    pub fn with_conformance_fixtures(mut self) -> Self {
        self.fixtures = true;
        self
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
            state: Mutex::default(),
        })
    }

    /// Answers one stateless request: progress notifications (if asked for) then the response,
    /// on the returned channel.
    pub fn answer_one(self: &Arc<Self>, request: Message) -> mpsc::UnboundedReceiver<Outbound> {
        let (outlet, rx) = ChannelOutlet::new();
        tokio::spawn(Arc::clone(self).reply(request, Flavor::Stateless, outlet, None));
        rx
    }

    async fn reply(
        self: Arc<Self>,
        request: Message,
        flavor: Flavor,
        outlet: Arc<dyn Outlet>,
        session: Option<Arc<BuiltinSession>>,
    ) {
        let (Some(id), Some(method)) = (request.id().cloned(), request.method()) else {
            return;
        };
        let Some(call) = Call::for_request(&request, Arc::clone(&outlet), session) else {
            return;
        };
        let params = request.params();
        let message = match self.answer(method, &params, flavor, &call).await {
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
        call: &Call,
    ) -> Result<Value, RpcError> {
        match (method, flavor) {
            ("initialize", Flavor::Session) => self.initialize(params),
            ("ping", Flavor::Session) => Ok(json!({})),
            ("logging/setLevel", Flavor::Session) => set_log_level(params, call),
            ("resources/subscribe", Flavor::Session) => self.subscribe(params, call, true),
            ("resources/unsubscribe", Flavor::Session) => self.subscribe(params, call, false),
            ("server/discover", Flavor::Stateless) => Ok(self.discover()),
            ("tools/list", _) => Ok(json!({ "tools": self.tool_definitions() })),
            ("tools/call", _) => self.call_tool(params, call).await,
            ("resources/list", _) => Ok(json!({ "resources": self.resources() })),
            ("resources/templates/list", _) => {
                Ok(json!({ "resourceTemplates": self.resource_templates() }))
            }
            ("resources/read", _) => self.read_resource(params, flavor),
            ("prompts/list", _) => Ok(json!({ "prompts": self.prompts() })),
            ("prompts/get", _) => self.get_prompt(params),
            ("completion/complete", _) => self.complete(params),
            _ => Err(RpcError::method_not_found(method)),
        }
    }

    fn tool_definitions(&self) -> Vec<Value> {
        let mut tools = tool_definitions();
        if self.fixtures {
            tools.extend(conformance::tools());
        }
        tools
    }

    async fn call_tool(&self, params: &Value, call: &Call) -> Result<Value, RpcError> {
        if self.fixtures
            && let Some(name) = params.get("name").and_then(Value::as_str)
        {
            let args = params.get("arguments").cloned().unwrap_or(json!({}));
            if let Some(result) = conformance::call_tool(name, &args, call).await {
                return result;
            }
        }
        call_tool(params, call).await
    }

    fn resources(&self) -> Vec<Value> {
        let mut resources = vec![self.about_resource()];
        if self.fixtures {
            resources.extend(conformance::resources());
        }
        resources
    }

    fn resource_templates(&self) -> Vec<Value> {
        if self.fixtures {
            conformance::resource_templates()
        } else {
            Vec::new()
        }
    }

    fn prompts(&self) -> Vec<Value> {
        let mut prompts = vec![greet_prompt()];
        if self.fixtures {
            prompts.extend(conformance::prompts());
        }
        prompts
    }

    fn get_prompt(&self, params: &Value) -> Result<Value, RpcError> {
        if self.fixtures
            && let Some(name) = params.get("name").and_then(Value::as_str)
        {
            let args = params.get("arguments").cloned().unwrap_or(json!({}));
            if let Some(result) = conformance::get_prompt(name, &args) {
                return result;
            }
        }
        get_prompt(params)
    }

    /// Argument completion (`completion/complete`): the candidates of the argument that start
    /// with what the client typed so far.
    fn complete(&self, params: &Value) -> Result<Value, RpcError> {
        let reference = params
            .get("ref")
            .ok_or_else(|| RpcError::invalid_params("completion/complete needs params.ref"))?;
        let argument = params
            .pointer("/argument/name")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                RpcError::invalid_params("completion/complete needs params.argument.name")
            })?;
        let typed = params
            .pointer("/argument/value")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let is_greet = reference.get("type").and_then(Value::as_str) == Some("ref/prompt")
            && reference.get("name").and_then(Value::as_str) == Some("greet");
        let candidates: &[&str] = if is_greet {
            // Names are the user's own; there is nothing to suggest.
            &[]
        } else {
            self.fixtures
                .then(|| conformance::completions(reference, argument))
                .flatten()
                .ok_or_else(|| {
                    RpcError::invalid_params(format!("nothing to complete for {reference}"))
                })?
        };
        let values: Vec<&str> = candidates
            .iter()
            .copied()
            .filter(|c| c.starts_with(typed))
            .collect();
        Ok(json!({ "completion": { "values": values, "total": values.len(), "hasMore": false } }))
    }

    /// `resources/subscribe` and `resources/unsubscribe`. The built-in resources never change
    /// while the server runs, so a subscription is remembered but never notified.
    fn subscribe(&self, params: &Value, call: &Call, on: bool) -> Result<Value, RpcError> {
        let uri = params
            .get("uri")
            .and_then(Value::as_str)
            .ok_or_else(|| RpcError::invalid_params("params.uri is required"))?;
        // Unknown resources are refused the way reading them is.
        self.read_resource(params, Flavor::Session)?;
        if let Some(session) = &call.session {
            let mut state = session.state();
            state.subscriptions.retain(|u| u != uri);
            if on {
                state.subscriptions.push(uri.to_owned());
            }
        }
        Ok(json!({}))
    }

    fn server_info(&self) -> Value {
        json!({ "name": "mcp-server", "version": self.server_version })
    }

    fn capabilities() -> Value {
        json!({
            "logging": {},
            "completions": {},
            "tools": { "listChanged": false },
            "resources": { "subscribe": true, "listChanged": false },
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
            if let Some(read) = self
                .fixtures
                .then(|| conformance::read_resource(uri))
                .flatten()
            {
                return Ok(read);
            }
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

fn tool_definitions() -> Vec<Value> {
    vec![
        json!({
            "name": "echo",
            "description": "Returns the given message unchanged.",
            "inputSchema": {
                "type": "object",
                "properties": { "message": { "type": "string", "description": "Text to send back" } },
                "required": ["message"],
            },
        }),
        json!({
            "name": "add",
            "description": "Adds two numbers.",
            "inputSchema": {
                "type": "object",
                "properties": { "a": { "type": "number" }, "b": { "type": "number" } },
                "required": ["a", "b"],
            },
        }),
        json!({
            "name": "time",
            "description": "Returns the server's current time in UTC (RFC 3339).",
            "inputSchema": { "type": "object", "properties": {} },
        }),
        json!({
            "name": "whoami",
            "description": "Names the pod (host) that answered, to see where a load balancer sent the call.",
            "inputSchema": { "type": "object", "properties": {} },
        }),
        json!({
            "name": "sleep",
            "description": "Waits the given number of seconds, reporting progress if asked to.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "seconds": { "type": "number", "minimum": 0, "maximum": MAX_SLEEP_SECONDS },
                },
                "required": ["seconds"],
            },
        }),
    ]
}

fn text_result(text: impl Into<String>) -> Value {
    json!({ "content": [{ "type": "text", "text": text.into() }], "isError": false })
}

fn number_arg(args: &Value, name: &str) -> Result<f64, RpcError> {
    args.get(name)
        .and_then(Value::as_f64)
        .ok_or_else(|| RpcError::invalid_params(format!("argument `{name}` must be a number")))
}

async fn call_tool(params: &Value, call: &Call) -> Result<Value, RpcError> {
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
        "whoami" => Ok(text_result(host_name())),
        "sleep" => {
            let seconds = number_arg(args, "seconds")?;
            if !(0.0..=MAX_SLEEP_SECONDS).contains(&seconds) {
                return Err(RpcError::invalid_params(format!(
                    "argument `seconds` must be between 0 and {MAX_SLEEP_SECONDS}"
                )));
            }
            sleep_with_progress(seconds, call).await;
            Ok(text_result(format!(
                "slept {} seconds",
                format_number(seconds)
            )))
        }
        other => Err(RpcError::invalid_params(format!("unknown tool: {other}"))),
    }
}

/// The pod's name: `HOSTNAME`, which Kubernetes sets to it, else the kernel's host name.
fn host_name() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.is_empty())
            .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|| "unknown".into())
    })
}

async fn sleep_with_progress(seconds: f64, call: &Call) {
    let total = Duration::from_secs_f64(seconds);
    let start = tokio::time::Instant::now();
    loop {
        let elapsed = start.elapsed();
        if elapsed >= total {
            break;
        }
        tokio::time::sleep((total - elapsed).min(PROGRESS_INTERVAL)).await;
        let done = start.elapsed().min(total).as_secs_f64();
        call.progress(
            done,
            seconds,
            Some(format!("slept {done:.2} of {seconds} seconds")),
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

/// `logging/setLevel`: log messages below `level` are no longer sent to this session.
fn set_log_level(params: &Value, call: &Call) -> Result<Value, RpcError> {
    let level = params
        .get("level")
        .and_then(Value::as_str)
        .and_then(|level| LOG_LEVELS.iter().position(|l| *l == level))
        .ok_or_else(|| {
            RpcError::invalid_params(format!(
                "params.level must be one of {}",
                LOG_LEVELS.join(", ")
            ))
        })?;
    if let Some(session) = &call.session {
        session.state().log_level = u8::try_from(level).ok();
    }
    Ok(json!({}))
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

    fn progress() -> (Call, mpsc::UnboundedReceiver<Outbound>) {
        let (tx, rx) = ChannelOutlet::new();
        let request = Message::parse(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"_meta":{"progressToken":"p"}}}"#,
        )
        .unwrap();
        (Call::for_request(&request, tx, None).unwrap(), rx)
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
    async fn whoami_names_the_host_kubernetes_named() {
        let expected = std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| {
                std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .unwrap()
                    .trim()
                    .to_string()
            });
        assert_eq!(text(&call("whoami", json!({})).await.unwrap()), expected);
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

    /// A session of a built-in backend with the conformance fixtures, and what it sends.
    fn fixture_session() -> (Arc<BuiltinSession>, mpsc::UnboundedReceiver<Outbound>) {
        let builtin = Arc::new(Builtin::new().with_conformance_fixtures());
        let (outlet, rx) = ChannelOutlet::new();
        (builtin.open(outlet, CancellationToken::new()), rx)
    }

    fn request(id: u64, method: &str, params: Value) -> Message {
        Message::from_value(
            &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
        )
    }

    async fn next(rx: &mut mpsc::UnboundedReceiver<Outbound>) -> Value {
        let out = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("an answer in time")
            .expect("the backend still runs");
        serde_json::from_str(out.message.text()).unwrap()
    }

    #[tokio::test]
    async fn log_messages_below_the_sessions_level_are_not_sent() {
        let (session, mut rx) = fixture_session();
        let call = json!({"name": "test_tool_with_logging", "arguments": {}});
        session
            .receive(request(1, "logging/setLevel", json!({"level": "warning"})))
            .unwrap();
        assert_eq!(next(&mut rx).await["id"], 1);
        session
            .receive(request(2, "tools/call", call.clone()))
            .unwrap();
        assert_eq!(next(&mut rx).await["id"], 2, "no info messages first");
        session
            .receive(request(3, "logging/setLevel", json!({"level": "info"})))
            .unwrap();
        assert_eq!(next(&mut rx).await["id"], 3);
        session.receive(request(4, "tools/call", call)).unwrap();
        for _ in 0..3 {
            let note = next(&mut rx).await;
            assert_eq!(note["method"], "notifications/message");
            assert_eq!(note["params"]["level"], "info");
        }
        assert_eq!(next(&mut rx).await["id"], 4);
    }

    #[tokio::test]
    async fn a_tool_asks_the_client_and_answers_with_what_it_said() {
        let (session, mut rx) = fixture_session();
        let init = json!({
            "protocolVersion": "2025-06-18",
            "capabilities": {"sampling": {}},
            "clientInfo": {"name": "t", "version": "1"},
        });
        session.receive(request(1, "initialize", init)).unwrap();
        assert_eq!(next(&mut rx).await["id"], 1);
        let call = json!({"name": "test_sampling", "arguments": {"prompt": "hi?"}});
        session.receive(request(2, "tools/call", call)).unwrap();
        let asked = next(&mut rx).await;
        assert_eq!(asked["method"], "sampling/createMessage");
        assert_eq!(asked["params"]["messages"][0]["content"]["text"], "hi?");
        let answer = json!({
            "jsonrpc": "2.0",
            "id": asked["id"],
            "result": {"role": "assistant", "content": {"type": "text", "text": "hello"}, "model": "m"},
        });
        session.receive(Message::from_value(&answer)).unwrap();
        let result = next(&mut rx).await;
        assert_eq!(result["id"], 2);
        assert_eq!(
            result["result"]["content"][0]["text"],
            "LLM response: hello"
        );
    }

    #[tokio::test]
    async fn asking_a_client_without_the_capability_is_a_tool_error() {
        let (session, mut rx) = fixture_session();
        let call = json!({"name": "test_elicitation", "arguments": {"message": "name?"}});
        session.receive(request(1, "tools/call", call)).unwrap();
        let result = next(&mut rx).await;
        assert_eq!(result["result"]["isError"], true);
    }

    #[tokio::test]
    async fn subscriptions_need_a_known_resource() {
        let (session, mut rx) = fixture_session();
        let known = json!({"uri": "test://watched-resource"});
        session
            .receive(request(1, "resources/subscribe", known.clone()))
            .unwrap();
        assert_eq!(next(&mut rx).await["result"], json!({}));
        assert_eq!(session.state().subscriptions, ["test://watched-resource"]);
        session
            .receive(request(2, "resources/unsubscribe", known))
            .unwrap();
        assert_eq!(next(&mut rx).await["result"], json!({}));
        assert!(session.state().subscriptions.is_empty());
        let unknown = json!({"uri": "test://nope"});
        session
            .receive(request(3, "resources/subscribe", unknown))
            .unwrap();
        assert_eq!(next(&mut rx).await["error"]["code"], RESOURCE_NOT_FOUND);
    }

    #[test]
    fn completion_offers_the_candidates_that_start_with_the_typed_text() {
        let plain = Builtin::new();
        let greet = json!({"ref": {"type": "ref/prompt", "name": "greet"}, "argument": {"name": "name", "value": "A"}});
        assert_eq!(
            plain.complete(&greet).unwrap()["completion"]["values"],
            json!([])
        );
        let fixture = json!({
            "ref": {"type": "ref/prompt", "name": "test_prompt_with_arguments"},
            "argument": {"name": "arg1", "value": "par"},
        });
        assert_eq!(plain.complete(&fixture).unwrap_err().code, INVALID_PARAMS);
        let with_fixtures = Builtin::new().with_conformance_fixtures();
        assert_eq!(
            with_fixtures.complete(&fixture).unwrap()["completion"]["values"],
            json!(["paris", "park", "party"])
        );
    }
}
