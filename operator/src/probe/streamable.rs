//! The `initialize` handshake over Streamable HTTP (2025-03-26, 2025-06-18, 2025-11-25):
//! `initialize`, `notifications/initialized`, `tools/list`, then DELETE of the session, so probes
//! every few seconds do not leave sessions behind on the server.

use mcp_wire::jsonrpc::{self, RequestId};
use mcp_wire::meta::header::{PROTOCOL_VERSION, SESSION_ID};
use mcp_wire::revision::Revision;
use reqwest::header::HeaderValue;
use reqwest::{Method, RequestBuilder, Url};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::time::Instant;

use super::ProbeError;
use super::Reached;
use super::http::{self, Http};
use super::mcp::{self, Rpc};

struct Session<'a> {
    http: Http<'a>,
    url: &'a Url,
    /// Absent when the server runs without sessions.
    id: Option<HeaderValue>,
    /// The negotiated revision, once it goes in `MCP-Protocol-Version`.
    version_header: Option<HeaderValue>,
    next_id: u64,
}

impl<'a> Session<'a> {
    fn new(http: Http<'a>, url: &'a Url) -> Self {
        Self {
            http,
            url,
            id: None,
            version_header: None,
            next_id: 1,
        }
    }

    /// Adds the session's headers to a request after `initialize`.
    fn in_session(&self, mut request: RequestBuilder) -> RequestBuilder {
        if let Some(id) = &self.id {
            request = request.header(SESSION_ID, id.clone());
        }
        if let Some(version) = &self.version_header {
            request = request.header(PROTOCOL_VERSION, version.clone());
        }
        request
    }

    async fn initialize(&mut self, asked: Revision) -> Result<mcp::Greeting, ProbeError> {
        const METHOD: &str = "initialize";
        let id = self.take_id();
        let message = jsonrpc::request(&id, METHOD, mcp::initialize_params(asked));
        let response = self
            .http
            .send(self.http.post(self.url, &message), METHOD, self.url)
            .await?;
        if !response.status().is_success() {
            return Err(self.http.status_error(response, METHOD).await);
        }
        self.id = response.headers().get(SESSION_ID).cloned();
        let result = http::read_answer(response, METHOD, &id, self.url)
            .await?
            .map_err(|e| mcp::rpc_error(METHOD, e))?;
        let greeting = mcp::read_initialize(result, asked)?;
        if greeting.revision.requires_version_header() {
            self.version_header = Some(HeaderValue::from_static(greeting.revision.as_str()));
        }
        Ok(greeting)
    }

    async fn initialized(&self) -> Result<(), ProbeError> {
        const METHOD: &str = "notifications/initialized";
        let message = jsonrpc::notification(METHOD, None);
        let request = self.in_session(self.http.post(self.url, &message));
        let response = self.http.send(request, METHOD, self.url).await?;
        // 202 is what the transport specifies; any 2xx means the server took it.
        if !response.status().is_success() {
            return Err(self.http.status_error(response, METHOD).await);
        }
        Ok(())
    }

    /// Ends the session. Best effort: servers may refuse DELETE (405), and the handshake has
    /// already succeeded or failed by now.
    async fn close(&self, deadline: Instant) {
        if self.id.is_none() {
            return;
        }
        let request = self.in_session(self.http.request(Method::DELETE, self.url));
        match tokio::time::timeout_at(deadline, request.send()).await {
            Ok(Ok(response)) if !response.status().is_success() => {
                tracing::debug!(url = %self.url, status = %response.status(), "the server did not delete the probe's session");
            }
            Ok(Err(e)) => {
                tracing::debug!(url = %self.url, error = %e, "deleting the probe's session failed")
            }
            _ => {}
        }
    }

    fn take_id(&mut self) -> RequestId {
        let id = self.next_id;
        self.next_id += 1;
        RequestId::from(id)
    }
}

impl Rpc for Session<'_> {
    async fn call<T: DeserializeOwned>(
        &mut self,
        method: &str,
        params: Value,
    ) -> Result<T, ProbeError> {
        let id = self.take_id();
        let message = jsonrpc::request(&id, method, params);
        let request = self.in_session(self.http.post(self.url, &message));
        let response = self.http.send(request, method, self.url).await?;
        if !response.status().is_success() {
            return Err(self.http.status_error(response, method).await);
        }
        http::read_answer(response, method, &id, self.url)
            .await?
            .map_err(|e| mcp::rpc_error(method, e))
    }
}

/// The whole exchange, asking for revision `asked`. `deadline` bounds the closing DELETE.
pub async fn handshake(
    http: Http<'_>,
    url: &Url,
    asked: Revision,
    deadline: Instant,
) -> Result<Reached, ProbeError> {
    let mut session = Session::new(http, url);
    let greeting = session.initialize(asked).await?;
    let rest = async {
        session.initialized().await?;
        if greeting.lists_tools {
            mcp::list_tools(&mut session).await
        } else {
            Ok(mcp::Listed::default())
        }
    }
    .await;
    session.close(deadline).await;
    Ok(Reached {
        greeting,
        tools: rest?,
    })
}
