//! `docs/api.md` keeps up with the API: every field of the spec and status is documented, and
//! every CEL rule's message is quoted in its validation table.

use std::path::Path;

use kube::CustomResourceExt;
use mcp_operator::api::McpApp;
use serde_json::Value;

/// Fields whose schema is a Kubernetes type, documented by reference rather than field by field.
const KUBERNETES_TYPES: &[&str] = &[
    "resources",
    "affinity",
    "tolerations",
    "env",
    "imagePullSecrets",
    "behavior",
    // networkPolicy.from: NetworkPolicyPeers.
    "from",
    "conditions",
    "time",
];

fn docs() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/api.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn schema() -> Value {
    let crd = serde_json::to_value(McpApp::crd()).expect("CRD serializes");
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

/// Dotted paths of every field under `schema`, descending into arrays' items, but not into
/// Kubernetes types.
fn field_paths(schema: &Value, prefix: &str, out: &mut Vec<String>) {
    let schema = schema.get("items").unwrap_or(schema);
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (name, property) in properties {
        let path = format!("{prefix}.{name}");
        out.push(path.clone());
        if !KUBERNETES_TYPES.contains(&name.as_str()) {
            field_paths(property, &path, out);
        }
    }
}

fn rule_messages(schema: &Value, out: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::Array(rules)) = map.get("x-kubernetes-validations") {
                out.extend(
                    rules
                        .iter()
                        .filter_map(|r| r["message"].as_str().map(str::to_owned)),
                );
            }
            map.values().for_each(|v| rule_messages(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| rule_messages(v, out)),
        _ => {}
    }
}

#[test]
fn every_spec_and_status_field_is_documented() {
    // The document writes list fields as `files[].items[]`; schema paths have no brackets.
    let docs = docs().replace("[]", "");
    let schema = schema();
    let mut paths = Vec::new();
    field_paths(&schema["properties"]["spec"], "spec", &mut paths);
    field_paths(&schema["properties"]["status"], "status", &mut paths);
    let undocumented: Vec<&String> = paths
        .iter()
        .filter(|path| {
            let (parent, field) = path.rsplit_once('.').expect("paths are dotted");
            // Top-level fields appear by full path; nested ones at least by name next to their
            // parent's path somewhere in the document.
            let by_path = docs.contains(&format!("`{path}"));
            let by_name = docs.contains(&format!("`{parent}")) && docs.contains(field);
            !(by_path || (parent.contains('.') && by_name))
        })
        .collect();
    assert!(
        undocumented.is_empty(),
        "docs/api.md does not document {undocumented:?}"
    );
}

#[test]
fn every_validation_message_is_in_the_rules_table() {
    let docs = docs();
    let mut messages = Vec::new();
    rule_messages(&schema(), &mut messages);
    assert!(
        messages.len() >= 10,
        "expected the CRD's CEL rules, found {messages:?}"
    );
    let missing: Vec<&String> = messages
        .iter()
        .filter(|m| !docs.contains(m.as_str()))
        .collect();
    assert!(missing.is_empty(), "docs/api.md does not quote {missing:?}");
}
