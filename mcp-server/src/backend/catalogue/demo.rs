//! The demo catalogue, the built-in mode's default: tools `echo`, `add`, `time`, `whoami` and
//! `sleep`, one resource and one prompt, so every client capability can be exercised against
//! the default image.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::{Call, Catalogue, ToolFuture, text};
use crate::message::RpcError;

const ABOUT_URI: &str = "mcp-server://about";
/// Longest `sleep` accepted, so a demo call cannot pin a task for hours.
const MAX_SLEEP_SECONDS: f64 = 300.0;
/// Interval between progress notifications of `sleep`.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);

/// The demo tools, the `about` resource and the `greet` prompt.
pub struct Demo;

impl Catalogue for Demo {
    fn tools(&self) -> Vec<Value> {
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

    fn call_tool<'a>(
        &'a self,
        name: &'a str,
        args: &'a Value,
        call: &'a dyn Call,
    ) -> ToolFuture<'a> {
        Box::pin(async move {
            let result = match name {
                "echo" => echo(args),
                "add" => add(args),
                "time" => Ok(text_result(rfc3339_utc(SystemTime::now()))),
                "whoami" => Ok(text_result(host_name())),
                "sleep" => sleep(args, call).await,
                _ => return None,
            };
            Some(result)
        })
    }

    fn resources(&self) -> Vec<Value> {
        vec![json!({
            "uri": ABOUT_URI,
            "name": "about",
            "title": "About this server",
            "description": "What this mcp-server is and which tools it offers",
            "mimeType": "text/plain",
        })]
    }

    fn read_resource(&self, uri: &str) -> Option<Value> {
        if uri != ABOUT_URI {
            return None;
        }
        let text = format!(
            "mcp-server {}: built-in tools echo, add, time and sleep; prompt greet.",
            env!("CARGO_PKG_VERSION")
        );
        Some(json!({ "contents": [{ "uri": ABOUT_URI, "mimeType": "text/plain", "text": text }] }))
    }

    fn prompts(&self) -> Vec<Value> {
        vec![json!({
            "name": "greet",
            "title": "Greeting",
            "description": "Asks the model to greet someone by name.",
            "arguments": [{ "name": "name", "description": "Who to greet", "required": true }],
        })]
    }

    fn get_prompt(&self, name: &str, args: &Value) -> Option<Result<Value, RpcError>> {
        if name != "greet" {
            return None;
        }
        let greeting = args
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| RpcError::invalid_params("prompt `greet` needs argument `name`"))
            .map(|who| {
                json!({
                    "description": "A friendly greeting",
                    "messages": [{
                        "role": "user",
                        "content": text(format!("Please greet {who} warmly.")),
                    }],
                })
            });
        Some(greeting)
    }

    fn completions(&self, reference: &Value, _argument: &str) -> Option<&'static [&'static str]> {
        let is_greet = reference.get("type").and_then(Value::as_str) == Some("ref/prompt")
            && reference.get("name").and_then(Value::as_str) == Some("greet");
        // Names are the user's own; there is nothing to suggest.
        is_greet.then_some(&[])
    }

    fn instructions(&self) -> Option<&'static str> {
        Some("Built-in demo tools: echo, add, time, sleep (with progress).")
    }
}

fn echo(args: &Value) -> Result<Value, RpcError> {
    let message = args
        .get("message")
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::invalid_params("argument `message` must be a string"))?;
    Ok(text_result(message))
}

fn add(args: &Value) -> Result<Value, RpcError> {
    let sum = number_arg(args, "a")? + number_arg(args, "b")?;
    Ok(text_result(format_number(sum)))
}

async fn sleep(args: &Value, call: &dyn Call) -> Result<Value, RpcError> {
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

fn text_result(message: impl Into<String>) -> Value {
    json!({ "content": [text(message)], "isError": false })
}

fn number_arg(args: &Value, name: &str) -> Result<f64, RpcError> {
    args.get(name)
        .and_then(Value::as_f64)
        .ok_or_else(|| RpcError::invalid_params(format!("argument `{name}` must be a number")))
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

async fn sleep_with_progress(seconds: f64, call: &dyn Call) {
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
    use crate::backend::catalogue::testing::Recorder;
    use crate::message::jsonrpc::INVALID_PARAMS;

    async fn call(name: &str, args: Value) -> Option<Result<Value, RpcError>> {
        Demo.call_tool(name, &args, &Recorder::default()).await
    }

    fn text(result: &Value) -> &str {
        result["content"][0]["text"].as_str().unwrap()
    }

    #[tokio::test]
    async fn echo_returns_its_message() {
        let result = call("echo", json!({"message": "hi ✓"})).await.unwrap();
        assert_eq!(text(&result.unwrap()), "hi ✓");
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
        let result = call("whoami", json!({})).await.unwrap();
        assert_eq!(text(&result.unwrap()), expected);
    }

    #[tokio::test]
    async fn add_sums_integers_and_fractions() {
        let sum = call("add", json!({"a": 2, "b": 3})).await.unwrap();
        assert_eq!(text(&sum.unwrap()), "5");
        let sum = call("add", json!({"a": 0.5, "b": 0.25})).await.unwrap();
        assert_eq!(text(&sum.unwrap()), "0.75");
    }

    #[tokio::test]
    async fn bad_arguments_are_invalid_params() {
        for (name, args) in [
            ("echo", json!({})),
            ("add", json!({"a": "1", "b": 2})),
            ("add", json!({"a": 1})),
            ("sleep", json!({"seconds": -1})),
        ] {
            let result = call(name, args).await.expect("a demo tool");
            assert_eq!(result.unwrap_err().code, INVALID_PARAMS, "{name}");
        }
    }

    #[tokio::test]
    async fn other_names_are_left_to_other_catalogues() {
        assert!(call("nope", json!({})).await.is_none());
        assert!(Demo.get_prompt("nope", &json!({})).is_none());
        assert!(Demo.read_resource("mcp-server://nope").is_none());
        let other = json!({"type": "ref/prompt", "name": "nope"});
        assert!(Demo.completions(&other, "name").is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn sleep_reports_progress_up_to_the_total() {
        let recorder = Recorder::default();
        let result = Demo
            .call_tool("sleep", &json!({"seconds": 1}), &recorder)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(text(&result), "slept 1 seconds");
        let progress = recorder.progress.into_inner().unwrap();
        assert_eq!(progress.len(), 4);
        assert!(
            progress.windows(2).all(|w| w[1].0 > w[0].0),
            "progress must increase: {progress:?}"
        );
        assert_eq!(progress.last(), Some(&(1.0, 1.0)));
    }

    #[test]
    fn time_is_formatted_as_rfc3339() {
        let t = UNIX_EPOCH + Duration::from_secs(1_709_210_096); // 2024-02-29T12:34:56Z
        assert_eq!(rfc3339_utc(t), "2024-02-29T12:34:56Z");
        assert_eq!(rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn greet_prompt_needs_a_name() {
        let nameless = Demo.get_prompt("greet", &json!({})).unwrap();
        assert_eq!(nameless.unwrap_err().code, INVALID_PARAMS);
        let got = Demo
            .get_prompt("greet", &json!({"name": "Ada"}))
            .unwrap()
            .unwrap();
        assert_eq!(
            got["messages"][0]["content"]["text"],
            "Please greet Ada warmly."
        );
    }
}
