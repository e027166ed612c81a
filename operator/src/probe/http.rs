//! HTTP plumbing shared by the transports: sending with the probe's headers, turning failures
//! into [`ProbeError`]s a person can act on, and reading a JSON-RPC answer from a JSON body or an
//! event stream.
//!
//! A pod is an untrusted server: redirects are failures (never followed), bodies are read up to
//! [`MAX_BODY_BYTES`] (the handshake's deadline bounds the time), and no error message quotes a
//! body: messages name the status and say in our words what it means.

use std::collections::VecDeque;
use std::error::Error as _;

use mcp_wire::jsonrpc::RequestId;
use mcp_wire::meta::media::{EVENT_STREAM, JSON, POST_ACCEPT};
use mcp_wire::sse;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, LOCATION};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::ProbeError;
use super::answer::{self, Incoming, Outcome};
use crate::text::clip;

/// Most bytes read from one response (a JSON body or a whole event stream): enough for thousands
/// of tools, bounded for a server that streams without end.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// Bytes of an error body read: the JSON-RPC error a 2026-07-28 server puts there is small.
const FAILED_BODY_BYTES: usize = 16 * 1024;
/// Longest host of a redirect's target named in a message.
const REDIRECT_HOST_BYTES: usize = 48;
/// Longest path named in a message (it is ours, from the spec, but still bounded).
const PATH_BYTES: usize = 100;

/// One target's connection settings.
#[derive(Clone, Copy)]
pub struct Http<'a> {
    pub client: &'a reqwest::Client,
    pub bearer_token: Option<&'a str>,
}

impl Http<'_> {
    pub fn request(&self, method: Method, url: &Url) -> RequestBuilder {
        let builder = self.client.request(method, url.clone());
        match self.bearer_token {
            // Tokens read from Secrets often end in a newline, which no header value may carry.
            Some(token) => builder.bearer_auth(token.trim()),
            None => builder,
        }
    }

    /// A POST of one JSON-RPC message, accepting JSON or an event stream back.
    pub fn post(&self, url: &Url, message: &Value) -> RequestBuilder {
        self.request(Method::POST, url)
            .header(ACCEPT, POST_ACCEPT)
            .header(CONTENT_TYPE, JSON)
            .body(message.to_string())
    }

    /// Sends `request`; `what` names it in errors (a JSON-RPC method, or `GET /sse`). A
    /// redirect is an error: the client never follows one, since a pod could point the operator
    /// at any address it can reach.
    pub async fn send(
        &self,
        request: RequestBuilder,
        what: &str,
        url: &Url,
    ) -> Result<Response, ProbeError> {
        let response = request
            .send()
            .await
            .map_err(|e| transport_error(&e, what, url))?;
        if response.status().is_redirection() {
            return Err(redirect_error(&response, what));
        }
        Ok(response)
    }

    /// The [`ProbeError::HttpStatus`] for a non-2xx answer.
    pub async fn status_error(&self, response: Response, what: &str) -> ProbeError {
        self.failed(response).await.into_error(what)
    }

    /// A non-2xx answer, with the start of its body for callers that parse it.
    pub async fn failed(&self, response: Response) -> Failed {
        Failed::read(response, self.bearer_token.is_some()).await
    }
}

/// The path of the URL a response answers, for messages.
fn path_of(response: &Response) -> String {
    clip(response.url().path(), PATH_BYTES)
}

/// A 3xx answer: the status and at most the host it points to, clipped; never the whole target.
fn redirect_error(response: &Response, what: &str) -> ProbeError {
    let host = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|location| response.url().join(location).ok())
        .and_then(|target| target.host_str().map(|h| clip(h, REDIRECT_HOST_BYTES)));
    ProbeError::Redirect {
        method: what.into(),
        status: response.status().as_u16(),
        path: path_of(response),
        to: host.map(|h| format!(" to host {h}")).unwrap_or_default(),
    }
}

/// `host:port` of a URL, for messages.
pub fn authority(url: &Url) -> String {
    // `host_str` keeps the brackets of an IPv6 address.
    match (url.host_str(), url.port_or_known_default()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        _ => url.to_string(),
    }
}

/// The innermost causes of an error, which say what actually happened (reqwest's own message
/// only repeats the URL).
fn causes(error: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    if parts.is_empty() {
        error.to_string()
    } else {
        parts.join(": ")
    }
}

fn is_refused(error: &reqwest::Error) -> bool {
    let mut source = error.source();
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        source = e.source();
    }
    false
}

/// The TLS error among the causes, if any: rustls errors travel inside I/O errors, whose
/// `source` skips them, so each I/O error's payload is looked at too.
fn tls_cause(error: &reqwest::Error) -> Option<&rustls::Error> {
    let mut source = error.source();
    while let Some(e) = source {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(tls) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(tls);
        }
        source = e.source();
    }
    None
}

pub fn transport_error(error: &reqwest::Error, what: &str, url: &Url) -> ProbeError {
    if let Some(tls) = tls_cause(error) {
        return ProbeError::Tls(format!("with {}: {tls}", authority(url)));
    }
    if error.is_connect() && is_refused(error) {
        return ProbeError::Refused(authority(url));
    }
    if error.is_connect() {
        return ProbeError::Transport(format!(
            "cannot connect to {}: {}",
            authority(url),
            causes(error)
        ));
    }
    ProbeError::Transport(format!("{what} to {}: {}", authority(url), causes(error)))
}

fn not_json_rpc(what: &str, detail: impl Into<String>) -> ProbeError {
    ProbeError::NotJsonRpc {
        method: what.into(),
        detail: detail.into(),
    }
}

/// The media type of a response, lowercase and without parameters.
pub fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Reads a body, at most [`MAX_BODY_BYTES`] of it.
async fn read_body(mut response: Response, what: &str, url: &Url) -> Result<Vec<u8>, ProbeError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| transport_error(&e, what, url))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_BODY_BYTES {
            return Err(not_json_rpc(
                what,
                format!("the answer is larger than {MAX_BODY_BYTES} bytes"),
            ));
        }
    }
    Ok(body)
}

/// A non-2xx answer, read far enough to parse a JSON-RPC error from it (never to quote it).
pub struct Failed {
    pub status: StatusCode,
    path: String,
    /// Whether the probe sent a bearer token, which tells what a 401 means.
    sent_token: bool,
    /// The start of the body.
    pub body: Vec<u8>,
}

impl Failed {
    async fn read(mut response: Response, sent_token: bool) -> Self {
        let status = response.status();
        let path = path_of(&response);
        // A body that fails to arrive counts as what arrived; the deadline bounds the wait.
        let mut body = Vec::new();
        while body.len() < FAILED_BODY_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                _ => break,
            }
        }
        body.truncate(FAILED_BODY_BYTES);
        Self {
            status,
            path,
            sent_token,
            body,
        }
    }

    pub fn into_error(self, what: &str) -> ProbeError {
        let hint = match (self.status, self.sent_token) {
            (StatusCode::UNAUTHORIZED, false) => {
                "; the server wants a bearer token: set probe.bearerTokenSecretRef"
            }
            (StatusCode::UNAUTHORIZED, true) => "; the server rejected the probe's bearer token",
            (StatusCode::FORBIDDEN, _) => "; the server refuses the probe",
            (StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED, _) => {
                "; is MCP served at this path?"
            }
            _ => "",
        };
        ProbeError::HttpStatus {
            method: what.into(),
            status: self.status.as_u16(),
            path: self.path,
            hint: hint.into(),
        }
    }
}

/// Reads the answer to request `id` from a 2xx response: a JSON body (one message or a batch) or
/// an event stream, read until the answer arrives.
pub async fn read_answer<T: DeserializeOwned>(
    response: Response,
    method: &str,
    id: &RequestId,
    url: &Url,
) -> Result<Outcome<T>, ProbeError> {
    if media_type(response.headers()) == EVENT_STREAM {
        let mut events = EventReader::new(response);
        return answer_from_events(&mut events, method, id, url).await;
    }
    let status = response.status();
    let declared = media_type(response.headers());
    let body = read_body(response, method, url).await?;
    if body.is_empty() {
        return Err(not_json_rpc(
            method,
            format!(
                "HTTP {} with an empty body, no response to the request",
                status.as_u16()
            ),
        ));
    }
    match answer::in_body(&body, id) {
        Ok(Some(outcome)) => Ok(outcome),
        Ok(None) => Err(not_json_rpc(
            method,
            format!("the body holds no response to request id {}", id.as_json()),
        )),
        Err(why) if declared == JSON => Err(not_json_rpc(method, why)),
        Err(_) => Err(not_json_rpc(
            method,
            format!(
                "expected {JSON} or {EVENT_STREAM}, got {} ({} bytes)",
                if declared.is_empty() {
                    "no Content-Type".to_owned()
                } else {
                    clip(&declared, 64)
                },
                body.len()
            ),
        )),
    }
}

/// Reads events until the answer to `id`: server requests and notifications on the way are
/// skipped, and so are events without data (2025-11-25 servers prime streams with one).
pub async fn answer_from_events<T: DeserializeOwned>(
    events: &mut EventReader,
    method: &str,
    id: &RequestId,
    url: &Url,
) -> Result<Outcome<T>, ProbeError> {
    while let Some(event) = events.next(method, url).await? {
        if event.event != "message" || event.data.trim().is_empty() {
            continue;
        }
        let incoming = answer::in_message(&event.data, id)
            .map_err(|why| not_json_rpc(method, format!("an event's data: {why}")))?;
        match incoming {
            Incoming::Answer(outcome) => return Ok(outcome),
            Incoming::Unattributed(e) => return Ok(Err(e)),
            Incoming::Other => {}
        }
    }
    Err(not_json_rpc(
        method,
        "the event stream ended before the response arrived",
    ))
}

/// Events of a streaming response, read as they arrive.
pub struct EventReader {
    response: Response,
    parser: sse::Parser,
    ready: VecDeque<sse::Event>,
    read: usize,
}

impl EventReader {
    pub fn new(response: Response) -> Self {
        Self {
            response,
            // No event may be larger than the whole stream is allowed to be.
            parser: sse::Parser::new(MAX_BODY_BYTES),
            ready: VecDeque::new(),
            read: 0,
        }
    }

    /// The next event, or `None` when the stream ends.
    pub async fn next(&mut self, what: &str, url: &Url) -> Result<Option<sse::Event>, ProbeError> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Ok(Some(event));
            }
            let Some(chunk) = self
                .response
                .chunk()
                .await
                .map_err(|e| transport_error(&e, what, url))?
            else {
                return Ok(None);
            };
            self.read += chunk.len();
            if self.read > MAX_BODY_BYTES {
                return Err(not_json_rpc(
                    what,
                    format!(
                        "the event stream sent more than {MAX_BODY_BYTES} bytes without the response"
                    ),
                ));
            }
            let events = self
                .parser
                .feed(&chunk)
                .map_err(|e| not_json_rpc(what, clip(&e.to_string(), 160)))?;
            self.ready.extend(events);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_names_host_and_port() {
        let url = Url::parse("http://10.0.0.7:8080/mcp").unwrap();
        assert_eq!(authority(&url), "10.0.0.7:8080");
        let url = Url::parse("http://[fd00::7]/mcp").unwrap();
        assert_eq!(authority(&url), "[fd00::7]:80");
    }
}
