//! The stateless 2026-07-28 exchange: no handshake and no session; `server/discover` says who the
//! server is, then `tools/list`. Every request carries its revision in `params._meta` and mirrors
//! it, and its method, in headers.

use mcp_wire::jsonrpc::{self, RequestId, RpcError, UNSUPPORTED_PROTOCOL_VERSION};
use mcp_wire::meta::header::{METHOD, PROTOCOL_VERSION};
use reqwest::Url;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::{Value, json};

use super::answer;
use super::http::{self, Http};
use super::mcp::{self, Rpc, STATELESS};
use super::{ProbeError, Reached};

struct Stateless<'a> {
    http: Http<'a>,
    url: &'a Url,
    next_id: u64,
}

fn error_for(method: &str, error: RpcError) -> ProbeError {
    if error.code == UNSUPPORTED_PROTOCOL_VERSION {
        return ProbeError::VersionMismatch {
            asked: STATELESS.to_string(),
            offered: mcp::supported_in_error(error.data.as_ref()),
        };
    }
    mcp::rpc_error(method, error)
}

impl Rpc for Stateless<'_> {
    async fn call<T: DeserializeOwned>(
        &mut self,
        method: &str,
        params: Value,
    ) -> Result<T, ProbeError> {
        let id = RequestId::from(self.next_id);
        self.next_id += 1;
        let message = jsonrpc::request(&id, method, mcp::with_stateless_meta(params));
        let request = self
            .http
            .post(self.url, &message)
            .header(PROTOCOL_VERSION, STATELESS.as_str())
            .header(METHOD, method);
        let response = self.http.send(request, method, self.url).await?;
        if !response.status().is_success() {
            // This revision answers JSON-RPC errors with 4xx statuses; the error in the body
            // says more than the status.
            let failed = self.http.failed(response).await;
            return match answer::in_body::<IgnoredAny>(&failed.body, &id) {
                Ok(Some(Err(e))) => Err(error_for(method, e)),
                _ => Err(failed.into_error(method)),
            };
        }
        http::read_answer(response, method, &id, self.url)
            .await?
            .map_err(|e| error_for(method, e))
    }
}

pub async fn handshake(http: Http<'_>, url: &Url) -> Result<Reached, ProbeError> {
    let mut rpc = Stateless {
        http,
        url,
        next_id: 1,
    };
    let greeting = mcp::read_discover(rpc.call("server/discover", json!({})).await?)?;
    let tools = if greeting.lists_tools {
        mcp::list_tools(&mut rpc).await?
    } else {
        mcp::Listed::default()
    };
    Ok(Reached { greeting, tools })
}
