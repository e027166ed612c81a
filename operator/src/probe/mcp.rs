//! The MCP layer of the handshake, common to every transport: the parameters the probe sends,
//! reading `initialize` / `server/discover` / `tools/list` results, and paging through
//! `tools/list`.

use mcp_wire::jsonrpc::RpcError;
use mcp_wire::jsonrpc::answer::kind_of;
use mcp_wire::meta::{
    CLIENT_CAPABILITIES_KEY, CLIENT_INFO_KEY, META, PROTOCOL_VERSION_KEY, SERVER_INFO_KEY,
};
use mcp_wire::revision::{Handshake, Revision};
use serde_json::{Value, json};

use super::ProbeError;

pub const CLIENT_NAME: &str = "mcp-operator-probe";
pub const CLIENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The revision the probe speaks statelessly, reached with `server/discover`.
pub const STATELESS: Revision = Revision::V2026_07_28;

/// A server whose `nextCursor` never ends must not keep a probe busy forever.
pub const MAX_TOOL_PAGES: usize = 100;

fn client_info() -> Value {
    json!({ "name": CLIENT_NAME, "version": CLIENT_VERSION })
}

pub fn initialize_params(revision: Revision) -> Value {
    json!({ "protocolVersion": revision, "capabilities": {}, "clientInfo": client_info() })
}

/// The per-request envelope of the stateless revision, merged into `params`.
pub fn with_stateless_meta(mut params: Value) -> Value {
    let meta = json!({
        PROTOCOL_VERSION_KEY: STATELESS,
        CLIENT_CAPABILITIES_KEY: {},
        CLIENT_INFO_KEY: client_info(),
    });
    if let Some(object) = params.as_object_mut() {
        object.insert(META.into(), meta);
    }
    params
}

/// Who answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub name: String,
    pub version: Option<String>,
}

/// What `initialize` or `server/discover` established.
#[derive(Debug, Clone, PartialEq)]
pub struct Greeting {
    pub identity: Identity,
    pub revision: Revision,
    /// Whether `tools/list` is worth calling: a server that declares capabilities without
    /// `tools` has none, and may not implement the method at all.
    pub lists_tools: bool,
}

/// A JSON-RPC error answer to `method`.
pub fn rpc_error(method: &str, error: RpcError) -> ProbeError {
    ProbeError::JsonRpcError {
        method: method.into(),
        code: error.code,
        message: error.message,
    }
}

fn not_json_rpc(method: &str, detail: impl Into<String>) -> ProbeError {
    ProbeError::NotJsonRpc {
        method: method.into(),
        detail: detail.into(),
    }
}

fn result_object<'a>(
    result: &'a Value,
    method: &str,
) -> Result<&'a serde_json::Map<String, Value>, ProbeError> {
    result.as_object().ok_or_else(|| {
        not_json_rpc(
            method,
            format!("the result is {}, not an object", kind_of(result)),
        )
    })
}

fn identity(info: Option<&Value>, method: &str) -> Result<Identity, ProbeError> {
    let name = info
        .and_then(|i| i.get("name"))
        .and_then(Value::as_str)
        .ok_or_else(|| not_json_rpc(method, "the result has no serverInfo.name"))?;
    Ok(Identity {
        name: name.to_owned(),
        version: info
            .and_then(|i| i.get("version"))
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

fn lists_tools(result: &serde_json::Map<String, Value>) -> bool {
    match result.get("capabilities").and_then(Value::as_object) {
        Some(capabilities) => capabilities.contains_key("tools"),
        // No capabilities at all is malformed, but asking costs one request.
        None => true,
    }
}

/// Reads an `initialize` result. A revision the server picked other than `asked` is fine when
/// the probe can continue in it after `initialize` (that is how version negotiation works);
/// anything else cannot continue.
pub fn read_initialize(result: &Value, asked: Revision) -> Result<Greeting, ProbeError> {
    const METHOD: &str = "initialize";
    let object = result_object(result, METHOD)?;
    let offered = object
        .get("protocolVersion")
        .and_then(Value::as_str)
        .ok_or_else(|| not_json_rpc(METHOD, "the result has no protocolVersion"))?;
    let revision = Revision::parse(offered)
        .filter(|r| r.handshake() == Handshake::Initialize)
        .ok_or_else(|| ProbeError::VersionMismatch {
            asked: asked.to_string(),
            offered: offered.into(),
        })?;
    Ok(Greeting {
        identity: identity(object.get("serverInfo"), METHOD)?,
        revision,
        lists_tools: lists_tools(object),
    })
}

/// Reads a `server/discover` result: the server must list the stateless revision among the
/// ones it supports (when it lists any), and say who it is.
pub fn read_discover(result: &Value) -> Result<Greeting, ProbeError> {
    const METHOD: &str = "server/discover";
    let object = result_object(result, METHOD)?;
    if let Some(supported) = object.get("supportedVersions").and_then(Value::as_array) {
        let names: Vec<&str> = supported.iter().filter_map(Value::as_str).collect();
        if !names.contains(&STATELESS.as_str()) {
            return Err(ProbeError::VersionMismatch {
                asked: STATELESS.to_string(),
                offered: offered_list(&names),
            });
        }
    }
    // serverInfo is a result field; some servers put it only in the result's `_meta`.
    let info = object
        .get("serverInfo")
        .or_else(|| object.get(META).and_then(|m| m.get(SERVER_INFO_KEY)));
    Ok(Greeting {
        identity: identity(info, METHOD)?,
        revision: STATELESS,
        lists_tools: lists_tools(object),
    })
}

/// The versions an unsupported-version error (-32022) lists in `data.supported`.
pub fn supported_in_error(data: Option<&Value>) -> String {
    let names: Vec<&str> = data
        .and_then(|d| d.get("supported"))
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    offered_list(&names)
}

fn offered_list(names: &[&str]) -> String {
    if names.is_empty() {
        "no version it names".into()
    } else {
        names.join(", ")
    }
}

/// One page of `tools/list`.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolsPage {
    pub names: Vec<String>,
    pub next_cursor: Option<String>,
}

pub fn read_tools_page(result: &Value) -> Result<ToolsPage, ProbeError> {
    const METHOD: &str = "tools/list";
    let object = result_object(result, METHOD)?;
    let tools = object
        .get("tools")
        .and_then(Value::as_array)
        .ok_or_else(|| not_json_rpc(METHOD, "the result has no tools array"))?;
    let names = tools
        .iter()
        .map(|tool| {
            tool.get("name")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| not_json_rpc(METHOD, "a tool has no name"))
        })
        .collect::<Result<_, _>>()?;
    let next_cursor = object
        .get("nextCursor")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .map(str::to_owned);
    Ok(ToolsPage { names, next_cursor })
}

/// A transport after its set-up: it carries one request and returns the result, with JSON-RPC
/// errors already turned into [`ProbeError`]s.
pub trait Rpc {
    async fn call(&mut self, method: &str, params: Value) -> Result<Value, ProbeError>;
}

/// Every tool name `tools/list` returns, following `nextCursor` for at most [`MAX_TOOL_PAGES`].
pub async fn list_tools(rpc: &mut impl Rpc) -> Result<Vec<String>, ProbeError> {
    let mut names = Vec::new();
    let mut seen_cursors = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_TOOL_PAGES {
        let params = match &cursor {
            Some(c) => json!({ "cursor": c }),
            None => json!({}),
        };
        let page = read_tools_page(&rpc.call("tools/list", params).await?)?;
        names.extend(page.names);
        match page.next_cursor {
            None => return Ok(names),
            Some(next) if seen_cursors.contains(&next) => {
                return Err(not_json_rpc(
                    "tools/list",
                    format!("nextCursor {next:?} was returned before: the pages loop"),
                ));
            }
            Some(next) => {
                seen_cursors.push(next.clone());
                cursor = Some(next);
            }
        }
    }
    Err(not_json_rpc(
        "tools/list",
        format!("still returned nextCursor after {MAX_TOOL_PAGES} pages"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initialize_accepts_the_asked_or_any_spoken_revision() {
        let result = |v: &str| json!({"protocolVersion": v, "capabilities": {"tools": {}}, "serverInfo": {"name": "s", "version": "1.2"}});
        let g = read_initialize(&result("2025-06-18"), Revision::V2025_06_18).unwrap();
        assert_eq!(g.revision, Revision::V2025_06_18);
        assert_eq!(
            g.identity,
            Identity {
                name: "s".into(),
                version: Some("1.2".into())
            }
        );
        assert!(g.lists_tools);
        // Negotiated down to another revision the probe speaks: normal.
        let g = read_initialize(&result("2025-03-26"), Revision::V2025_11_25).unwrap();
        assert_eq!(g.revision, Revision::V2025_03_26);
        assert_eq!(
            read_initialize(&result("1999-01-01"), Revision::V2025_11_25),
            Err(ProbeError::VersionMismatch {
                asked: "2025-11-25".into(),
                offered: "1999-01-01".into()
            })
        );
    }

    #[test]
    fn initialize_without_server_info_or_version_is_not_mcp() {
        let e = read_initialize(
            &json!({"protocolVersion": "2025-11-25"}),
            Revision::V2025_11_25,
        );
        assert!(
            matches!(e, Err(ProbeError::NotJsonRpc { detail, .. }) if detail.contains("serverInfo"))
        );
        let e = read_initialize(&json!({"serverInfo": {"name": "s"}}), Revision::V2025_11_25);
        assert!(
            matches!(e, Err(ProbeError::NotJsonRpc { detail, .. }) if detail.contains("protocolVersion"))
        );
        let e = read_initialize(&json!([]), Revision::V2025_11_25);
        assert!(
            matches!(e, Err(ProbeError::NotJsonRpc { detail, .. }) if detail.contains("an array"))
        );
    }

    #[test]
    fn capabilities_without_tools_mean_no_tools_list() {
        let g = read_initialize(
            &json!({"protocolVersion": "2025-11-25", "capabilities": {"prompts": {}}, "serverInfo": {"name": "s"}}),
            Revision::V2025_11_25,
        )
        .unwrap();
        assert!(!g.lists_tools);
        assert_eq!(g.identity.version, None);
    }

    #[test]
    fn discover_needs_the_stateless_revision_and_reads_server_info_from_meta_too() {
        let g = read_discover(&json!({
            "supportedVersions": ["2026-07-28"],
            "capabilities": {"tools": {}},
            "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "m", "version": "3"}},
        }))
        .unwrap();
        assert_eq!(g.identity.name, "m");
        assert_eq!(g.revision, STATELESS);
        assert_eq!(
            read_discover(
                &json!({"supportedVersions": ["2027-01-01", "2026-01-26"], "serverInfo": {"name": "m"}})
            ),
            Err(ProbeError::VersionMismatch {
                asked: STATELESS.to_string(),
                offered: "2027-01-01, 2026-01-26".into()
            })
        );
    }

    #[test]
    fn stateless_meta_names_version_and_capabilities() {
        let p = with_stateless_meta(json!({"cursor": "c"}));
        assert_eq!(p["cursor"], "c");
        assert_eq!(p["_meta"][PROTOCOL_VERSION_KEY], STATELESS.as_str());
        assert_eq!(p["_meta"][CLIENT_CAPABILITIES_KEY], json!({}));
    }

    /// Serves `tools/list` pages from a list of results, recording the params it got.
    struct Pages {
        results: Vec<Value>,
        params: Vec<Value>,
    }

    impl Rpc for Pages {
        async fn call(&mut self, method: &str, params: Value) -> Result<Value, ProbeError> {
            assert_eq!(method, "tools/list");
            self.params.push(params);
            Ok(self.results.remove(0))
        }
    }

    fn pages(results: Vec<Value>) -> Pages {
        Pages {
            results,
            params: Vec::new(),
        }
    }

    #[tokio::test]
    async fn pagination_follows_next_cursor_until_it_ends() {
        let mut rpc = pages(vec![
            json!({"tools": [{"name": "a"}, {"name": "b"}], "nextCursor": "p2"}),
            json!({"tools": [{"name": "c"}], "nextCursor": ""}),
        ]);
        assert_eq!(list_tools(&mut rpc).await.unwrap(), ["a", "b", "c"]);
        assert_eq!(rpc.params, [json!({}), json!({"cursor": "p2"})]);
    }

    #[tokio::test]
    async fn pagination_that_loops_or_never_ends_is_an_error() {
        let mut rpc = pages(vec![
            json!({"tools": [], "nextCursor": "a"}),
            json!({"tools": [], "nextCursor": "b"}),
            json!({"tools": [], "nextCursor": "a"}),
        ]);
        let e = list_tools(&mut rpc).await.unwrap_err();
        assert!(e.to_string().contains("returned before"), "{e}");

        let endless = (0..MAX_TOOL_PAGES)
            .map(|i| json!({"tools": [], "nextCursor": format!("c{i}")}))
            .collect();
        let e = list_tools(&mut pages(endless)).await.unwrap_err();
        assert!(e.to_string().contains("after 100 pages"), "{e}");
    }

    #[test]
    fn tools_pages_must_list_named_tools() {
        assert!(read_tools_page(&json!({"tools": [{"description": "x"}]})).is_err());
        assert!(read_tools_page(&json!({})).is_err());
        assert_eq!(
            read_tools_page(&json!({"tools": [], "nextCursor": null})),
            Ok(ToolsPage {
                names: vec![],
                next_cursor: None
            })
        );
    }
}
