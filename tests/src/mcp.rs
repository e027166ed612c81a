//! A small MCP client over Streamable HTTP for data-path tests: every request on a new TCP
//! connection, so a load balancer (kube-proxy, the ingress controller) places each one afresh and
//! only a session's own stickiness keeps it on one pod. The official SDKs test the server itself;
//! this measures where traffic goes.

use std::net::SocketAddr;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::{Value, json};

use crate::http::{self, Response};

const PROTOCOL: &str = "2025-11-25";
const STATELESS_PROTOCOL: &str = "2026-07-28";

/// Opens a new connection to the endpoint.
pub type Connect =
    Arc<dyn Fn() -> BoxFuture<'static, std::io::Result<tokio::net::TcpStream>> + Send + Sync>;

/// Where requests go: a connection factory (inside the environment, see
/// [`crate::TestEnv::connector`], or from the caller's network) and the Host header and path of
/// the MCP endpoint.
#[derive(Clone)]
pub struct Endpoint {
    connect: Connect,
    host: String,
    path: String,
}

/// A session: its id and, for clients that keep cookies, the cookie a load balancer set.
#[derive(Debug, Clone, Default)]
pub struct Session {
    pub id: Option<String>,
    pub cookie: Option<String>,
    keep_cookies: bool,
    next_id: u64,
}

impl Endpoint {
    pub fn new(connect: Connect, host: impl Into<String>, path: impl Into<String>) -> Self {
        Endpoint {
            connect,
            host: host.into(),
            path: path.into(),
        }
    }

    /// An endpoint reached from the caller's own network, e.g. the ingress controller's
    /// loopback port with `host` naming the app.
    pub fn from_here(addr: SocketAddr, host: impl Into<String>, path: impl Into<String>) -> Self {
        let connect: Connect = Arc::new(move || {
            Box::pin(tokio::net::TcpStream::connect(addr)) as BoxFuture<'static, _>
        });
        Endpoint::new(connect, host, path)
    }

    /// `initialize`, then `notifications/initialized`. With `keep_cookies` the session sends back
    /// the cookie the first answer set, as a browser would.
    pub async fn initialize(&self, keep_cookies: bool) -> Result<Session, String> {
        let mut session = Session {
            keep_cookies,
            ..Default::default()
        };
        let params = json!({"protocolVersion": PROTOCOL, "capabilities": {},
            "clientInfo": {"name": "mcp-testenv", "version": "0"}});
        self.rpc(&mut session, "initialize", params).await?;
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let response = self.post(&session, &note).await?;
        if response.status != 202 {
            return Err(format!(
                "notifications/initialized: HTTP {}",
                response.status
            ));
        }
        Ok(session)
    }

    /// `tools/call` of `name`: the text of the result's first content item.
    pub async fn call_tool(
        &self,
        session: &mut Session,
        name: &str,
        arguments: Value,
    ) -> Result<String, String> {
        let result = self
            .rpc(
                session,
                "tools/call",
                json!({"name": name, "arguments": arguments}),
            )
            .await?;
        result["content"][0]["text"]
            .as_str()
            .map(String::from)
            .ok_or_else(|| format!("tools/call {name}: no text in {result}"))
    }

    /// `tools/call` of `name` as a stateless 2026-07-28 request (no session): the text of the
    /// result's first content item.
    pub async fn call_tool_stateless(
        &self,
        name: &str,
        arguments: Value,
    ) -> Result<String, String> {
        let meta = json!({"io.modelcontextprotocol/protocolVersion": STATELESS_PROTOCOL,
                          "io.modelcontextprotocol/clientCapabilities": {}});
        let request = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": name, "arguments": arguments, "_meta": meta}});
        let stream = (self.connect)().await.map_err(|e| e.to_string())?;
        let headers = [
            ("content-type", "application/json"),
            ("accept", "application/json, text/event-stream"),
            ("mcp-protocol-version", STATELESS_PROTOCOL),
            ("mcp-method", "tools/call"),
            ("mcp-name", name),
        ];
        let response = http::request(
            stream,
            &self.host,
            "POST",
            &self.path,
            &headers,
            &request.to_string(),
        )
        .await
        .map_err(|e| e.to_string())?;
        let answer = answer(&response.body, 1).ok_or_else(|| {
            format!(
                "tools/call {name}: HTTP {}: {}",
                response.status, response.body
            )
        })?;
        answer["result"]["content"][0]["text"]
            .as_str()
            .map(String::from)
            .ok_or_else(|| format!("tools/call {name}: {answer}"))
    }

    /// Opens the session's standalone SSE stream (GET).
    pub async fn open_stream(&self, session: &Session) -> Result<EventStream, String> {
        let mut headers = session_headers(session);
        headers.push(("accept", "text/event-stream".into()));
        self.get_stream(&self.path, &headers).await
    }

    /// Opens a legacy (2024-11-05) HTTP+SSE session at `sse_path`: the stream and the URL path
    /// its `endpoint` event names for POSTs.
    pub async fn open_legacy(&self, sse_path: &str) -> Result<(EventStream, String), String> {
        let accept = [("accept", "text/event-stream".to_string())];
        let mut stream = self.get_stream(sse_path, &accept).await?;
        let mut seen = String::new();
        while let Some(chunk) = stream.next().await {
            seen += &chunk?;
            let endpoint = seen
                .split("\n\n")
                .filter(|event| event.lines().any(|l| l == "event: endpoint"))
                .find_map(|event| event.lines().find_map(|l| l.strip_prefix("data:")));
            if let Some(endpoint) = endpoint {
                return Ok((stream, endpoint.trim().to_string()));
            }
        }
        Err(format!(
            "the legacy stream ended before its endpoint event: {seen:?}"
        ))
    }

    /// POSTs `message` to a legacy session's `messages_path`; its answer travels on the stream.
    pub async fn post_legacy(&self, messages_path: &str, message: &Value) -> Result<u16, String> {
        let stream = (self.connect)().await.map_err(|e| e.to_string())?;
        let headers = [("content-type", "application/json")];
        http::request(
            stream,
            &self.host,
            "POST",
            messages_path,
            &headers,
            &message.to_string(),
        )
        .await
        .map(|r| r.status)
        .map_err(|e| e.to_string())
    }

    async fn get_stream(
        &self,
        path: &str,
        headers: &[(&'static str, String)],
    ) -> Result<EventStream, String> {
        let stream = (self.connect)().await.map_err(|e| e.to_string())?;
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let response = http::send(stream, &self.host, "GET", path, &headers, "")
            .await
            .map_err(|e| e.to_string())?;
        if response.status() != 200 {
            return Err(format!("GET {path}: HTTP {}", response.status()));
        }
        Ok(EventStream {
            body: response.into_body(),
        })
    }

    /// Ends the session with DELETE.
    pub async fn close(&self, session: &Session) -> Result<u16, String> {
        let stream = (self.connect)().await.map_err(|e| e.to_string())?;
        let headers = session_headers(session);
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        http::request(stream, &self.host, "DELETE", &self.path, &headers, "")
            .await
            .map(|r| r.status)
            .map_err(|e| e.to_string())
    }

    /// One request and its answer (JSON, or the SSE event that carries it).
    async fn rpc(
        &self,
        session: &mut Session,
        method: &str,
        params: Value,
    ) -> Result<Value, String> {
        session.next_id += 1;
        let id = session.next_id;
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let response = self.post(session, &request).await?;
        if response.status != 200 {
            return Err(format!(
                "{method}: HTTP {}: {}",
                response.status, response.body
            ));
        }
        if session.id.is_none() {
            session.id = header(&response, "mcp-session-id");
        }
        if session.keep_cookies
            && let Some(cookie) = header(&response, "set-cookie")
        {
            // name=value, without the attributes.
            session.cookie = cookie.split(';').next().map(String::from);
        }
        let answer = answer(&response.body, id)
            .ok_or_else(|| format!("{method}: no answer with id {id} in {:?}", response.body))?;
        match answer.get("result") {
            Some(result) => Ok(result.clone()),
            None => Err(format!("{method}: {}", answer["error"])),
        }
    }

    async fn post(&self, session: &Session, message: &Value) -> Result<Response, String> {
        let stream = (self.connect)().await.map_err(|e| e.to_string())?;
        let mut headers = session_headers(session);
        headers.push(("content-type", "application/json".into()));
        headers.push(("accept", "application/json, text/event-stream".into()));
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        http::request(
            stream,
            &self.host,
            "POST",
            &self.path,
            &headers,
            &message.to_string(),
        )
        .await
        .map_err(|e| e.to_string())
    }
}

/// An SSE response as it arrives.
pub struct EventStream {
    body: hyper::body::Incoming,
}

impl EventStream {
    /// The next piece of the stream as text; `None` once it ended cleanly, an error when the
    /// connection broke.
    pub async fn next(&mut self) -> Option<Result<String, String>> {
        use http_body_util::BodyExt;
        loop {
            match self.body.frame().await? {
                Ok(frame) => {
                    if let Ok(data) = frame.into_data() {
                        return Some(Ok(String::from_utf8_lossy(&data).into_owned()));
                    }
                }
                Err(e) => return Some(Err(e.to_string())),
            }
        }
    }
}

fn session_headers(session: &Session) -> Vec<(&'static str, String)> {
    let mut headers = vec![("mcp-protocol-version", PROTOCOL.to_string())];
    headers.extend(session.id.clone().map(|id| ("mcp-session-id", id)));
    headers.extend(session.cookie.clone().map(|c| ("cookie", c)));
    headers
}

fn header(response: &Response, name: &str) -> Option<String> {
    response
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(String::from)
}

/// The JSON-RPC answer with `id` in a JSON body or an SSE stream of messages.
fn answer(body: &str, id: u64) -> Option<Value> {
    let is_answer = |v: &Value| v["id"] == json!(id) && v.get("method").is_none();
    if let Ok(value) = serde_json::from_str::<Value>(body) {
        return is_answer(&value).then_some(value);
    }
    body.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .find(is_answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_is_found_among_other_events() {
        let body = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}}\n\n\
                    id: 7\ndata: {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"ok\":true}}\n\n";
        assert_eq!(answer(body, 2).unwrap()["result"]["ok"], true);
        assert!(answer(body, 3).is_none());
        assert_eq!(
            answer(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#, 1).unwrap()["id"],
            1
        );
    }
}
