//! The 2024-11-05 HTTP+SSE transport: GET opens a stream whose first event, `endpoint`, names
//! where to POST; every answer comes back on the stream. Dropping the stream ends the session.

use mcp_wire::jsonrpc::{self, RequestId};
use mcp_wire::meta::media::EVENT_STREAM;
use mcp_wire::revision::Revision;
use reqwest::header::ACCEPT;
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::http::{self, EventReader, Http};
use super::mcp::{self, Rpc};
use super::{ProbeError, Reached};

struct Session<'a> {
    http: Http<'a>,
    endpoint: Url,
    events: EventReader,
    /// The stream's URL, for errors about reading it.
    stream_url: &'a Url,
    next_id: u64,
}

/// POSTs one message; the server answers it on the stream, not in the POST's response.
async fn post(
    http: Http<'_>,
    endpoint: &Url,
    message: &Value,
    what: &str,
) -> Result<(), ProbeError> {
    let response = http
        .send(http.post(endpoint, message), what, endpoint)
        .await?;
    if !response.status().is_success() {
        return Err(http.status_error(response, what).await);
    }
    Ok(())
}

impl Rpc for Session<'_> {
    async fn call<T: DeserializeOwned>(
        &mut self,
        method: &str,
        params: Value,
    ) -> Result<T, ProbeError> {
        let id = RequestId::from(self.next_id);
        self.next_id += 1;
        let message = jsonrpc::request(&id, method, params);
        let Session {
            http,
            endpoint,
            events,
            stream_url,
            ..
        } = self;
        // Read while posting: a server may write the answer before it finishes the POST.
        let ((), outcome) = tokio::try_join!(
            post(*http, endpoint, &message, method),
            http::answer_from_events(events, method, &id, stream_url)
        )?;
        outcome.map_err(|e| mcp::rpc_error(method, e))
    }
}

/// Opens the stream and reads the endpoint it announces, which must be on the stream's origin
/// (the bearer token goes there).
async fn connect<'a>(http: Http<'a>, url: &'a Url) -> Result<Session<'a>, ProbeError> {
    let what = format!("GET {}", url.path());
    let request = http.request(Method::GET, url).header(ACCEPT, EVENT_STREAM);
    let response = http.send(request, &what, url).await?;
    if !response.status().is_success() {
        return Err(http.status_error(response, &what).await);
    }
    let media_type = http::media_type(response.headers());
    if media_type != EVENT_STREAM {
        return Err(ProbeError::NotJsonRpc {
            method: what,
            detail: format!(
                "expected {EVENT_STREAM}, got {}",
                if media_type.is_empty() {
                    "no Content-Type"
                } else {
                    &media_type
                }
            ),
        });
    }
    let mut events = EventReader::new(response);
    let endpoint = loop {
        match events.next(&what, url).await? {
            Some(event) if event.event == "endpoint" => break event.data,
            Some(_) => continue,
            None => {
                return Err(ProbeError::NotJsonRpc {
                    method: what,
                    detail: "the stream ended before its endpoint event".into(),
                });
            }
        }
    };
    let resolved = url
        .join(endpoint.trim())
        .ok()
        .filter(|e| e.origin() == url.origin())
        .ok_or_else(|| ProbeError::NotJsonRpc {
            method: what.clone(),
            detail: format!(
                "the endpoint event must name a URL on {}",
                url.origin().ascii_serialization()
            ),
        })?;
    Ok(Session {
        http,
        endpoint: resolved,
        events,
        stream_url: url,
        next_id: 1,
    })
}

pub async fn handshake(http: Http<'_>, url: &Url, asked: Revision) -> Result<Reached, ProbeError> {
    let mut session = connect(http, url).await?;
    let result = session
        .call("initialize", mcp::initialize_params(asked))
        .await?;
    let greeting = mcp::read_initialize(result, asked)?;
    const INITIALIZED: &str = "notifications/initialized";
    let note = jsonrpc::notification(INITIALIZED, None);
    post(session.http, &session.endpoint, &note, INITIALIZED).await?;
    let tools = if greeting.lists_tools {
        mcp::list_tools(&mut session).await?
    } else {
        mcp::Listed::default()
    };
    // Dropping the session closes the stream, which ends the session on the server.
    Ok(Reached { greeting, tools })
}
