//! Method dispatch of the built-in backend: which MCP methods it answers under which revision
//! family, the answers that belong to the server rather than to a catalogue (handshake,
//! discovery, logging level, subscriptions), argument checks, and the shape of 2026-07-28
//! results.

use std::sync::Arc;

use serde_json::{Value, json};

use super::request::Request;
use super::session::{BuiltinSession, LOG_LEVELS};
use crate::backend::Outlet;
use crate::backend::catalogue::Catalogue;
use crate::message::envelope::{self, SERVER_INFO_KEY};
use crate::message::jsonrpc::{INVALID_PARAMS, RESOURCE_NOT_FOUND};
use crate::message::{Message, RpcError, version};

/// Which protocol family a request arrived under; a few answers differ between them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// A revision with an `initialize` handshake and a session.
    Session,
    /// 2026-07-28: no handshake, `server/discover`, `resultType` on every result.
    Stateless,
}

/// How long a client may cache list and read answers under 2026-07-28: the built-in catalogue
/// never changes while the process runs.
const CACHE_TTL_MS: u64 = 300_000;

/// Answers `request` from `catalogue`: whatever the call sends while it runs, then the
/// response, all on `outlet` as belonging to the request.
pub async fn reply(
    catalogue: &dyn Catalogue,
    request: Message,
    flavor: Flavor,
    outlet: Arc<dyn Outlet>,
    session: Option<Arc<BuiltinSession>>,
) {
    let Some(method) = request.method() else {
        return;
    };
    let Some(call) = Request::new(&request, outlet, session) else {
        return;
    };
    let params = request.params();
    let message = match answer(catalogue, method, &params, flavor, &call).await {
        Ok(mut result) => {
            if flavor == Flavor::Stateless {
                stamp_stateless(method, &mut result);
            }
            Message::response(call.id(), result)
        }
        Err(e) => e.with_id(Some(call.id().clone())).to_message(),
    };
    call.send(message);
}

async fn answer(
    catalogue: &dyn Catalogue,
    method: &str,
    params: &Value,
    flavor: Flavor,
    call: &Request,
) -> Result<Value, RpcError> {
    match (method, flavor) {
        ("initialize", Flavor::Session) => initialize(catalogue, params),
        ("ping", Flavor::Session) => Ok(json!({})),
        ("logging/setLevel", Flavor::Session) => set_log_level(params, call),
        ("resources/subscribe", Flavor::Session) => subscribe(catalogue, params, call, true),
        ("resources/unsubscribe", Flavor::Session) => subscribe(catalogue, params, call, false),
        ("server/discover", Flavor::Stateless) => Ok(discover(catalogue)),
        ("tools/list", _) => Ok(json!({ "tools": catalogue.tools() })),
        ("tools/call", _) => call_tool(catalogue, params, call).await,
        ("resources/list", _) => Ok(json!({ "resources": catalogue.resources() })),
        ("resources/templates/list", _) => {
            Ok(json!({ "resourceTemplates": catalogue.resource_templates() }))
        }
        ("resources/read", _) => read_resource(catalogue, params, flavor),
        ("prompts/list", _) => Ok(json!({ "prompts": catalogue.prompts() })),
        ("prompts/get", _) => get_prompt(catalogue, params),
        ("completion/complete", _) => complete(catalogue, params),
        _ => Err(RpcError::method_not_found(method)),
    }
}

fn server_info() -> Value {
    json!({ "name": "mcp-server", "version": env!("CARGO_PKG_VERSION") })
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

fn initialize(catalogue: &dyn Catalogue, params: &Value) -> Result<Value, RpcError> {
    let requested = text_param(params, "initialize", "protocolVersion")?;
    Ok(json!({
        "protocolVersion": version::negotiate(requested).as_str(),
        "capabilities": capabilities(),
        "serverInfo": server_info(),
        "instructions": catalogue.instructions(),
    }))
}

fn discover(catalogue: &dyn Catalogue) -> Value {
    json!({
        "supportedVersions": envelope::stateless_revisions().iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        "capabilities": capabilities(),
        "serverInfo": server_info(),
        "instructions": catalogue.instructions(),
        "_meta": { SERVER_INFO_KEY: server_info() },
    })
}

/// `logging/setLevel`: log messages below `level` are no longer sent to this session.
fn set_log_level(params: &Value, call: &Request) -> Result<Value, RpcError> {
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
    if let Some(session) = call.session() {
        session.set_log_level(level);
    }
    Ok(json!({}))
}

async fn call_tool(
    catalogue: &dyn Catalogue,
    params: &Value,
    call: &Request,
) -> Result<Value, RpcError> {
    let name = text_param(params, "tools/call", "name")?;
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
    catalogue
        .call_tool(name, args, call)
        .await
        .unwrap_or_else(|| Err(RpcError::invalid_params(format!("unknown tool: {name}"))))
}

fn read_resource(
    catalogue: &dyn Catalogue,
    params: &Value,
    flavor: Flavor,
) -> Result<Value, RpcError> {
    let uri = text_param(params, "resources/read", "uri")?;
    catalogue.read_resource(uri).ok_or_else(|| {
        // 2026-07-28 reports unknown resources as invalid params; earlier revisions use the
        // MCP-specific resource-not-found code.
        let code = match flavor {
            Flavor::Session => RESOURCE_NOT_FOUND,
            Flavor::Stateless => INVALID_PARAMS,
        };
        RpcError::new(code, format!("resource not found: {uri}")).with_data(json!({ "uri": uri }))
    })
}

/// `resources/subscribe` and `resources/unsubscribe`. The built-in resources never change
/// while the server runs, so a subscription is remembered but never notified.
fn subscribe(
    catalogue: &dyn Catalogue,
    params: &Value,
    call: &Request,
    on: bool,
) -> Result<Value, RpcError> {
    let method = if on {
        "resources/subscribe"
    } else {
        "resources/unsubscribe"
    };
    let uri = text_param(params, method, "uri")?;
    // Unknown resources are refused the way reading them is.
    read_resource(catalogue, params, Flavor::Session)?;
    if let Some(session) = call.session() {
        session.subscribe(uri, on);
    }
    Ok(json!({}))
}

fn get_prompt(catalogue: &dyn Catalogue, params: &Value) -> Result<Value, RpcError> {
    let name = text_param(params, "prompts/get", "name")?;
    let no_args = json!({});
    let args = params.get("arguments").unwrap_or(&no_args);
    catalogue
        .get_prompt(name, args)
        .unwrap_or_else(|| Err(RpcError::invalid_params(format!("unknown prompt: {name}"))))
}

/// Argument completion (`completion/complete`): the candidates of the argument that start
/// with what the client typed so far.
fn complete(catalogue: &dyn Catalogue, params: &Value) -> Result<Value, RpcError> {
    let reference = params
        .get("ref")
        .ok_or_else(|| RpcError::invalid_params("completion/complete needs params.ref"))?;
    let argument = text_param(params, "completion/complete", "argument/name")?;
    let typed = params
        .pointer("/argument/value")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let candidates = catalogue
        .completions(reference, argument)
        .ok_or_else(|| RpcError::invalid_params(format!("nothing to complete for {reference}")))?;
    let values: Vec<&str> = candidates
        .iter()
        .copied()
        .filter(|c| c.starts_with(typed))
        .collect();
    Ok(json!({ "completion": { "values": values, "total": values.len(), "hasMore": false } }))
}

/// The string at `path` (`/`-separated) in the params of a `method` request, which must have it.
fn text_param<'a>(params: &'a Value, method: &str, path: &str) -> Result<&'a str, RpcError> {
    params
        .pointer(&format!("/{path}"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            RpcError::invalid_params(format!("{method} needs params.{}", path.replace('/', ".")))
        })
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::catalogue;

    #[tokio::test]
    async fn tool_calls_need_a_known_name_and_object_arguments() {
        let catalogue = catalogue::builtin(false).unwrap();
        let (outlet, _rx) = crate::backend::ChannelOutlet::new();
        let request =
            Message::from_value(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call"}));
        let call = Request::new(&request, outlet, None).unwrap();
        for params in [
            json!({"name": "nope"}),
            json!({"arguments": {}}),
            json!({"name": "echo", "arguments": ["hi"]}),
        ] {
            let refused = call_tool(&*catalogue, &params, &call).await.unwrap_err();
            assert_eq!(refused.code, INVALID_PARAMS, "{params}");
        }
        let echoed = call_tool(
            &*catalogue,
            &json!({"name": "echo", "arguments": {"message": "hi"}}),
            &call,
        )
        .await
        .unwrap();
        assert_eq!(echoed["content"][0]["text"], "hi");
    }

    #[test]
    fn unknown_resource_code_depends_on_the_revision_family() {
        let catalogue = catalogue::builtin(false).unwrap();
        let params = json!({"uri": "mcp-server://nope"});
        assert_eq!(
            read_resource(&*catalogue, &params, Flavor::Session)
                .unwrap_err()
                .code,
            RESOURCE_NOT_FOUND
        );
        assert_eq!(
            read_resource(&*catalogue, &params, Flavor::Stateless)
                .unwrap_err()
                .code,
            INVALID_PARAMS
        );
    }

    #[test]
    fn completion_offers_the_candidates_that_start_with_the_typed_text() {
        let plain = catalogue::builtin(false).unwrap();
        let greet = json!({"ref": {"type": "ref/prompt", "name": "greet"}, "argument": {"name": "name", "value": "A"}});
        assert_eq!(
            complete(&*plain, &greet).unwrap()["completion"]["values"],
            json!([])
        );
        let fixture = json!({
            "ref": {"type": "ref/prompt", "name": "test_prompt_with_arguments"},
            "argument": {"name": "arg1", "value": "par"},
        });
        assert_eq!(
            complete(&*plain, &fixture).unwrap_err().code,
            INVALID_PARAMS
        );
    }

    #[cfg(feature = "conformance")]
    #[test]
    fn completion_offers_the_fixtures_candidates_when_they_are_on() {
        let fixture = json!({
            "ref": {"type": "ref/prompt", "name": "test_prompt_with_arguments"},
            "argument": {"name": "arg1", "value": "par"},
        });
        let with_fixtures = catalogue::builtin(true).unwrap();
        assert_eq!(
            complete(&*with_fixtures, &fixture).unwrap()["completion"]["values"],
            json!(["paris", "park", "party"])
        );
    }

    #[test]
    fn stateless_lists_are_cacheable_and_calls_are_not() {
        let mut list = json!({"tools": []});
        stamp_stateless("tools/list", &mut list);
        assert_eq!(list["resultType"], "complete");
        assert_eq!(list["ttlMs"], CACHE_TTL_MS);
        let mut call = json!({"content": []});
        stamp_stateless("tools/call", &mut call);
        assert_eq!(call["resultType"], "complete");
        assert!(call.get("ttlMs").is_none());
    }
}
