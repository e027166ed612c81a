//! The MCP layer of the handshake, common to every transport: the parameters the probe sends,
//! reading `initialize` / `server/discover` / `tools/list` results, and paging through
//! `tools/list`.

use mcp_wire::jsonrpc::RpcError;
use mcp_wire::meta::{CLIENT_CAPABILITIES_KEY, CLIENT_INFO_KEY, META, PROTOCOL_VERSION_KEY};
use mcp_wire::revision::{Handshake, Revision};
use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::{Value, json};

use super::ProbeError;
use crate::contract::{Builder, Contract, Tool};
use crate::text::clip;
use std::collections::BTreeSet;

pub const CLIENT_NAME: &str = "mcp-operator-probe";
pub const CLIENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The revision the probe speaks statelessly, reached with `server/discover`.
pub const STATELESS: Revision = Revision::V2026_07_28;

/// A server whose `nextCursor` never ends must not keep a probe busy forever.
pub const MAX_TOOL_PAGES: usize = 20;

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

/// Who answered, clipped for the status (see [`Identity::from_info`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub name: String,
    pub version: Option<String>,
}

/// Longest server name or version kept: they go into the status and conditions.
pub const IDENTITY_BYTES: usize = 128;
/// Longest tool name kept; MCP names are at most 128 characters, so a longer one cannot match a
/// required tool, and keeping it whole would let a server spend the probe's memory.
pub const TOOL_NAME_BYTES: usize = 256;
/// Most tool names read over all pages.
pub const MAX_TOOLS: usize = 5000;

/// What `initialize` or `server/discover` established.
#[derive(Debug, Clone, PartialEq)]
pub struct Greeting {
    pub identity: Identity,
    pub revision: Revision,
    /// Whether `tools/list` is worth calling: a server that declares capabilities without
    /// `tools` has none, and may not implement the method at all.
    pub lists_tools: bool,
}

/// A JSON-RPC error answer to `method` (its message already clipped when it was read).
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

/// `serverInfo`: only the fields the status shows; the rest of the object is skipped unread.
#[derive(Debug, Deserialize)]
pub struct ServerInfo {
    name: String,
    #[serde(default)]
    version: Option<String>,
}

impl Identity {
    fn from_info(info: Option<ServerInfo>, method: &str) -> Result<Self, ProbeError> {
        let info = info.ok_or_else(|| not_json_rpc(method, "the result has no serverInfo.name"))?;
        Ok(Identity {
            name: clip(&info.name, IDENTITY_BYTES),
            version: info.version.map(|v| clip(&v, IDENTITY_BYTES)),
        })
    }
}

/// `capabilities`: only whether `tools` is there.
#[derive(Debug, Deserialize)]
pub struct Capabilities {
    #[serde(default)]
    tools: Option<IgnoredAny>,
}

/// No capabilities at all is malformed, but asking for tools costs one request.
fn lists_tools(capabilities: Option<&Capabilities>) -> bool {
    capabilities.is_none_or(|c| c.tools.is_some())
}

/// The `initialize` result.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitializeResult {
    #[serde(default)]
    protocol_version: Option<String>,
    #[serde(default)]
    capabilities: Option<Capabilities>,
    #[serde(default)]
    server_info: Option<ServerInfo>,
}

/// The `server/discover` result.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscoverResult {
    #[serde(default)]
    supported_versions: Option<Vec<String>>,
    #[serde(default)]
    capabilities: Option<Capabilities>,
    #[serde(default)]
    server_info: Option<ServerInfo>,
    #[serde(default, rename = "_meta")]
    meta: Option<DiscoverMeta>,
}

/// A result's `_meta`, where some servers put `serverInfo` (key `mcp_wire::meta::SERVER_INFO_KEY`).
#[derive(Debug, Deserialize)]
pub struct DiscoverMeta {
    #[serde(default, rename = "io.modelcontextprotocol/serverInfo")]
    server_info: Option<ServerInfo>,
}

/// Reads an `initialize` result. A revision the server picked other than `asked` is fine when
/// the probe can continue in it after `initialize` (that is how version negotiation works);
/// anything else cannot continue.
pub fn read_initialize(result: InitializeResult, asked: Revision) -> Result<Greeting, ProbeError> {
    const METHOD: &str = "initialize";
    let offered = result
        .protocol_version
        .ok_or_else(|| not_json_rpc(METHOD, "the result has no protocolVersion"))?;
    let revision = Revision::parse(&offered)
        .filter(|r| r.handshake() == Handshake::Initialize)
        .ok_or_else(|| ProbeError::VersionMismatch {
            asked: asked.to_string(),
            offered: clip(&offered, IDENTITY_BYTES),
        })?;
    Ok(Greeting {
        identity: Identity::from_info(result.server_info, METHOD)?,
        revision,
        lists_tools: lists_tools(result.capabilities.as_ref()),
    })
}

/// Reads a `server/discover` result: the server must list the stateless revision among the
/// ones it supports (when it lists any), and say who it is.
pub fn read_discover(result: DiscoverResult) -> Result<Greeting, ProbeError> {
    const METHOD: &str = "server/discover";
    if let Some(supported) = &result.supported_versions
        && !supported.iter().any(|v| v == STATELESS.as_str())
    {
        return Err(ProbeError::VersionMismatch {
            asked: STATELESS.to_string(),
            offered: offered_list(supported),
        });
    }
    // serverInfo is a result field; some servers put it only in the result's `_meta`.
    let info = result
        .server_info
        .or_else(|| result.meta.and_then(|m| m.server_info));
    Ok(Greeting {
        identity: Identity::from_info(info, METHOD)?,
        revision: STATELESS,
        lists_tools: lists_tools(result.capabilities.as_ref()),
    })
}

/// The versions an unsupported-version error (-32022) lists in `data.supported`.
pub fn supported_in_error(data: Option<&Value>) -> String {
    let names: Vec<String> = data
        .and_then(|d| d.get("supported"))
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    offered_list(&names)
}

/// A server's list of versions, for a message: clipped, whatever the server sent.
fn offered_list(names: &[String]) -> String {
    if names.is_empty() {
        "no version it names".into()
    } else {
        clip(&names.join(", "), IDENTITY_BYTES)
    }
}

/// One tool of a `tools/list` page: its name and what the tool contract keeps. (The page is
/// bounded by the HTTP layer; the contract bounds what is kept of it.)
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolEntry {
    name: Option<String>,
    #[serde(default)]
    input_schema: Option<Value>,
    #[serde(default)]
    output_schema: Option<Value>,
    #[serde(default)]
    annotations: Option<Value>,
}

/// One page of `tools/list`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolsResult {
    #[serde(default)]
    tools: Option<Vec<ToolEntry>>,
    #[serde(default)]
    next_cursor: Option<String>,
}

/// One page of `tools/list`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolsPage {
    pub tools: Vec<(String, Tool)>,
    pub next_cursor: Option<String>,
}

/// Longest cursor sent back: a cursor is an opaque token, not a place to store data.
const CURSOR_BYTES: usize = 1024;

pub fn read_tools_page(result: ToolsResult) -> Result<ToolsPage, ProbeError> {
    const METHOD: &str = "tools/list";
    let tools = result
        .tools
        .ok_or_else(|| not_json_rpc(METHOD, "the result has no tools array"))?;
    let tools = tools
        .into_iter()
        .map(|tool| {
            let mut name = tool
                .name
                .ok_or_else(|| not_json_rpc(METHOD, "a tool has no name"))?;
            if name.len() > TOOL_NAME_BYTES {
                name = clip(&name, TOOL_NAME_BYTES);
            }
            let described = Tool {
                input_schema: tool.input_schema,
                output_schema: tool.output_schema,
                annotations: tool.annotations,
                oversized: None,
            };
            Ok((name, described))
        })
        .collect::<Result<_, ProbeError>>()?;
    let next_cursor = result.next_cursor.filter(|c| !c.is_empty());
    if next_cursor.as_ref().is_some_and(|c| c.len() > CURSOR_BYTES) {
        return Err(not_json_rpc(
            METHOD,
            format!("nextCursor is longer than {CURSOR_BYTES} bytes"),
        ));
    }
    Ok(ToolsPage { tools, next_cursor })
}

/// A transport after its set-up: it carries one request and returns the result read into `T`,
/// with JSON-RPC errors already turned into [`ProbeError`]s.
pub trait Rpc {
    async fn call<T: DeserializeOwned>(
        &mut self,
        method: &str,
        params: Value,
    ) -> Result<T, ProbeError>;
}

/// What `tools/list` returned.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listed {
    /// Every name (the contract may keep fewer tools than a huge list has).
    pub names: BTreeSet<String>,
    pub contract: Contract,
}

/// Every tool `tools/list` returns, following `nextCursor` for at most [`MAX_TOOL_PAGES`]
/// pages and [`MAX_TOOLS`] tools.
pub async fn list_tools(rpc: &mut impl Rpc) -> Result<Listed, ProbeError> {
    let mut contract = Builder::default();
    let mut names = BTreeSet::new();
    let mut listed = 0;
    let mut seen_cursors = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_TOOL_PAGES {
        let params = match &cursor {
            Some(c) => json!({ "cursor": c }),
            None => json!({}),
        };
        let page = read_tools_page(rpc.call("tools/list", params).await?)?;
        listed += page.tools.len();
        for (name, tool) in page.tools {
            names.insert(name.clone());
            contract.add(name, tool);
        }
        if listed > MAX_TOOLS {
            return Err(not_json_rpc(
                "tools/list",
                format!("lists more than {MAX_TOOLS} tools, more than the probe reads"),
            ));
        }
        match page.next_cursor {
            None => {
                return Ok(Listed {
                    names,
                    contract: contract.build(),
                });
            }
            Some(next) if seen_cursors.contains(&next) => {
                return Err(not_json_rpc(
                    "tools/list",
                    "a nextCursor was returned before: the pages loop",
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

    fn typed<T: DeserializeOwned>(value: Value) -> T {
        serde_json::from_value(value).unwrap()
    }

    fn init(value: Value, asked: Revision) -> Result<Greeting, ProbeError> {
        read_initialize(typed(value), asked)
    }

    #[test]
    fn initialize_accepts_the_asked_or_any_spoken_revision() {
        let result = |v: &str| json!({"protocolVersion": v, "capabilities": {"tools": {}}, "serverInfo": {"name": "s", "version": "1.2"}});
        let g = init(result("2025-06-18"), Revision::V2025_06_18).unwrap();
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
        let g = init(result("2025-03-26"), Revision::V2025_11_25).unwrap();
        assert_eq!(g.revision, Revision::V2025_03_26);
        assert_eq!(
            init(result("1999-01-01"), Revision::V2025_11_25),
            Err(ProbeError::VersionMismatch {
                asked: "2025-11-25".into(),
                offered: "1999-01-01".into()
            })
        );
    }

    #[test]
    fn initialize_without_server_info_or_version_is_not_mcp() {
        let e = init(
            json!({"protocolVersion": "2025-11-25"}),
            Revision::V2025_11_25,
        );
        assert!(
            matches!(e, Err(ProbeError::NotJsonRpc { detail, .. }) if detail.contains("serverInfo"))
        );
        let e = init(json!({"serverInfo": {"name": "s"}}), Revision::V2025_11_25);
        assert!(
            matches!(e, Err(ProbeError::NotJsonRpc { detail, .. }) if detail.contains("protocolVersion"))
        );
    }

    #[test]
    fn server_supplied_strings_are_clipped_to_one_short_line() {
        let name = format!("evil\n{}", "n".repeat(10_000));
        let offered = "x".repeat(10_000);
        let g = init(
            json!({"protocolVersion": "2025-11-25", "serverInfo": {"name": name, "version": "1\r\n2"}}),
            Revision::V2025_11_25,
        )
        .unwrap();
        assert!(
            g.identity.name.len() <= IDENTITY_BYTES,
            "{}",
            g.identity.name.len()
        );
        assert!(g.identity.name.starts_with("evil n"));
        assert_eq!(g.identity.version.as_deref(), Some("1  2"));
        let Err(ProbeError::VersionMismatch { offered, .. }) = init(
            json!({"protocolVersion": offered, "serverInfo": {"name": "s"}}),
            Revision::V2025_11_25,
        ) else {
            panic!("expected a version mismatch");
        };
        assert!(offered.len() <= IDENTITY_BYTES);
    }

    #[test]
    fn capabilities_without_tools_mean_no_tools_list() {
        let g = init(
            json!({"protocolVersion": "2025-11-25", "capabilities": {"prompts": {}}, "serverInfo": {"name": "s"}}),
            Revision::V2025_11_25,
        )
        .unwrap();
        assert!(!g.lists_tools);
        assert_eq!(g.identity.version, None);
    }

    #[test]
    fn discover_needs_the_stateless_revision_and_reads_server_info_from_meta_too() {
        let g = read_discover(typed(json!({
            "supportedVersions": ["2026-07-28"],
            "capabilities": {"tools": {}},
            "_meta": {mcp_wire::meta::SERVER_INFO_KEY: {"name": "m", "version": "3"}},
        })))
        .unwrap();
        assert_eq!(g.identity.name, "m");
        assert_eq!(g.revision, STATELESS);
        assert_eq!(
            read_discover(typed(
                json!({"supportedVersions": ["2027-01-01", "2026-01-26"], "serverInfo": {"name": "m"}})
            )),
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
        async fn call<T: DeserializeOwned>(
            &mut self,
            method: &str,
            params: Value,
        ) -> Result<T, ProbeError> {
            assert_eq!(method, "tools/list");
            self.params.push(params);
            Ok(typed(self.results.remove(0)))
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
        let listed = list_tools(&mut rpc).await.unwrap();
        assert_eq!(
            listed.names,
            BTreeSet::from(["a", "b", "c"].map(String::from))
        );
        assert_eq!(
            listed.contract.tools.keys().collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
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
        assert!(
            e.to_string()
                .contains(&format!("after {MAX_TOOL_PAGES} pages")),
            "{e}"
        );
    }

    #[tokio::test]
    async fn tool_counts_and_names_are_capped() {
        let page = |from: usize| {
            let tools: Vec<Value> = (from..from + 1000)
                .map(|i| json!({"name": format!("t{i}")}))
                .collect();
            json!({"tools": tools, "nextCursor": format!("after{from}")})
        };
        let many = (0..MAX_TOOL_PAGES).map(|p| page(p * 1000)).collect();
        let e = list_tools(&mut pages(many)).await.unwrap_err();
        assert!(
            e.to_string()
                .contains(&format!("more than {MAX_TOOLS} tools")),
            "{e}"
        );

        let long = "t".repeat(100_000);
        let page = read_tools_page(typed(json!({"tools": [{"name": long}]}))).unwrap();
        assert!(page.tools[0].0.len() <= TOOL_NAME_BYTES);
    }

    #[test]
    fn tools_pages_must_list_named_tools() {
        assert!(read_tools_page(typed(json!({"tools": [{"description": "x"}]}))).is_err());
        assert!(read_tools_page(typed(json!({}))).is_err());
        assert_eq!(
            read_tools_page(typed(json!({"tools": [], "nextCursor": null}))),
            Ok(ToolsPage {
                tools: vec![],
                next_cursor: None
            })
        );
    }
}
