//! The tool contract: what a revision's `tools/list` promised (each tool's input schema, output
//! schema and behaviour hints), kept with the stable revision. A new revision's tools are
//! compared with it ([`diff`]) before its pods take traffic, so a rollout that renames a tool or
//! adds a required argument is caught before any agent calls it.
//!
//! A contract is built from server-supplied JSON, so it is bounded: each tool's schemas are kept
//! whole up to [`TOOL_BYTES`], larger ones by their digest alone, and the whole contract up to
//! [`CONTRACT_BYTES`] (it is stored in an annotation of the revision's ControllerRevision).

pub mod diff;
mod shared;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use diff::{Change, Diff};
pub use shared::Shared;

/// Annotation of a kept revision's ControllerRevision holding the contract its pods listed
/// (an annotation, because a ControllerRevision's data cannot change once written, and a
/// revision kept before its pods were probed gets its contract later).
pub const REVISION_ANNOTATION: &str = "mcp-operator.dev/tool-contract";

/// The contract kept with `revision`, if it has a readable one.
pub fn kept_by(revision: &k8s_openapi::api::apps::v1::ControllerRevision) -> Option<Contract> {
    let text = revision
        .metadata
        .annotations
        .as_ref()?
        .get(REVISION_ANNOTATION)?;
    Contract::parse(text)
}

/// Largest canonical JSON of one tool's schemas and hints kept whole.
pub const TOOL_BYTES: usize = 16 * 1024;
/// Largest contract kept: tools beyond it are not part of the contract (and it says so).
pub const CONTRACT_BYTES: usize = 160 * 1024;

/// One tool as `tools/list` described it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Tool {
    /// The JSON Schema of the tool's arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<Value>,
    /// The JSON Schema of the tool's structured result, when it declares one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
    /// Behaviour hints (`readOnlyHint`, `destructiveHint`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Value>,
    /// Set, with the fields above left out, when they were larger than [`TOOL_BYTES`]: their
    /// digest, so that a change is still noticed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oversized: Option<String>,
}

/// The tools of one revision, by name.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Contract {
    pub tools: BTreeMap<String, Tool>,
    /// Tools were left out to stay within [`CONTRACT_BYTES`]: removals cannot be told.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

impl Contract {
    /// The contract of `tools` in the order `tools/list` returned them.
    pub fn new(tools: impl IntoIterator<Item = (String, Tool)>) -> Self {
        let mut builder = Builder::default();
        for (name, tool) in tools {
            builder.add(name, tool);
        }
        builder.contract
    }

    pub fn len(&self) -> usize {
        self.tools.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }

    /// `sha256:` and the hex SHA-256 of the contract's canonical JSON: equal contracts, equal
    /// digests, whatever order the server listed its tools or keys in.
    pub fn digest(&self) -> String {
        sha256(&self.canonical_json())
    }

    /// The contract as JSON with sorted keys, as it is stored.
    pub fn canonical_json(&self) -> String {
        canonical(&serde_json::to_value(self).unwrap_or_default())
    }

    /// Reads a stored contract; None for anything that is not one.
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() > 2 * CONTRACT_BYTES {
            return None;
        }
        serde_json::from_str(text).ok()
    }
}

/// Builds a contract one tool at a time, keeping it within its bounds as it grows.
#[derive(Debug, Default)]
pub struct Builder {
    contract: Contract,
    size: usize,
}

impl Builder {
    /// Adds a tool; a name listed twice keeps its first description.
    pub fn add(&mut self, name: String, tool: Tool) {
        if self.contract.tools.contains_key(&name) {
            return;
        }
        let (tool, bytes) = bounded(tool);
        let size = name.len() + bytes;
        if self.size + size > CONTRACT_BYTES {
            self.contract.truncated = true;
            return;
        }
        self.size += size;
        self.contract.tools.insert(name, tool);
    }

    pub fn build(self) -> Contract {
        self.contract
    }
}

/// `tool` itself, or its digest alone when it is larger than [`TOOL_BYTES`].
/// Returns the tool as kept and the size of its canonical JSON (serialized once).
fn bounded(tool: Tool) -> (Tool, usize) {
    let json = canonical(&serde_json::to_value(&tool).unwrap_or_default());
    if json.len() <= TOOL_BYTES {
        return (tool, json.len());
    }
    let digest = sha256(&json);
    // `{"oversized":"sha256:..."}`
    let bytes = digest.len() + 16;
    let kept = Tool {
        oversized: Some(digest),
        ..Tool::default()
    };
    (kept, bytes)
}

fn sha256(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let mut hex = String::with_capacity(7 + 64);
    hex.push_str("sha256:");
    for byte in digest {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// `value` as compact JSON with every object's keys sorted (whatever map type serde_json was
/// built with), so equal values always give equal text.
pub fn canonical(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn tool(input: Value) -> Tool {
        Tool {
            input_schema: Some(input),
            ..Tool::default()
        }
    }

    #[test]
    fn the_digest_ignores_the_order_of_tools_and_keys() {
        let a = Contract::new([
            (
                "echo".into(),
                tool(json!({"type": "object", "properties": {"a": {"type": "string"}}})),
            ),
            (
                "add".into(),
                tool(json!({"properties": {}, "type": "object"})),
            ),
        ]);
        let b = Contract::new([
            (
                "add".into(),
                tool(json!({"type": "object", "properties": {}})),
            ),
            (
                "echo".into(),
                tool(json!({"properties": {"a": {"type": "string"}}, "type": "object"})),
            ),
        ]);
        assert_eq!(a.digest(), b.digest());
        assert!(a.digest().starts_with("sha256:") && a.digest().len() == 71);
        let c = Contract::new([("echo".into(), tool(json!({"type": "object"})))]);
        assert_ne!(a.digest(), c.digest());
    }

    #[test]
    fn a_stored_contract_reads_back_equal() {
        let a = Contract::new([(
            "search".into(),
            Tool {
                input_schema: Some(json!({"type": "object", "required": ["q"]})),
                output_schema: Some(json!({"type": "object"})),
                annotations: Some(json!({"readOnlyHint": true})),
                oversized: None,
            },
        )]);
        assert_eq!(Contract::parse(&a.canonical_json()), Some(a));
        assert_eq!(Contract::parse("not json"), None);
    }

    #[test]
    fn oversized_tools_are_kept_by_digest_and_the_whole_is_bounded() {
        let huge = |n: usize| tool(json!({"description": "x".repeat(n)}));
        let a = Contract::new([("big".into(), huge(TOOL_BYTES + 1))]);
        let kept = &a.tools["big"];
        assert_eq!(kept.input_schema, None);
        assert!(kept.oversized.as_deref().unwrap().starts_with("sha256:"));
        let b = Contract::new([("big".into(), huge(TOOL_BYTES + 2))]);
        assert_ne!(a.tools["big"].oversized, b.tools["big"].oversized);

        let many = Contract::new((0..100).map(|i| (format!("t{i}"), huge(TOOL_BYTES - 200))));
        assert!(many.truncated);
        assert!(many.canonical_json().len() <= CONTRACT_BYTES + 1024);
        assert!(many.len() < 100 && !many.is_empty());
    }

    #[test]
    fn a_name_listed_twice_keeps_its_first_description() {
        let a = Contract::new([
            ("echo".into(), tool(json!({"type": "object"}))),
            ("echo".into(), tool(json!({"type": "string"}))),
        ]);
        assert_eq!(a.len(), 1);
        assert_eq!(
            a.tools["echo"].input_schema,
            Some(json!({"type": "object"}))
        );
    }
}
