//! Every manifest in `config/samples/` is a valid McpApp: no unknown or misspelt fields, accepted
//! by the CRD's CEL rules, and buildable into owned objects.

use std::path::{Path, PathBuf};

use mcp_operator::api::McpApp;
use mcp_operator::build::{BuildInputs, owned_objects};
use serde_json::Value;

fn samples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/samples");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    paths.sort();
    paths
}

/// Paths of `written` that are missing from `kept`: fields serde ignored as unknown.
fn dropped_fields(written: &Value, kept: &Value, at: &str, out: &mut Vec<String>) {
    match (written, kept) {
        (Value::Object(w), Value::Object(k)) => {
            for (key, value) in w {
                let path = format!("{at}.{key}");
                match k.get(key) {
                    Some(kept_value) => dropped_fields(value, kept_value, &path, out),
                    None => out.push(path),
                }
            }
        }
        (Value::Array(w), Value::Array(k)) => {
            for (i, (wv, kv)) in w.iter().zip(k).enumerate() {
                dropped_fields(wv, kv, &format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn samples_cover_the_documented_use_cases() {
    let names: Vec<String> = samples()
        .iter()
        .filter_map(|p| p.file_stem()?.to_str().map(str::to_owned))
        .collect();
    for expected in [
        "minimal",
        "stdio-bridge",
        "ingress-nginx",
        "gateway",
        "autoscaling",
        "secrets",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "config/samples/{expected}.yaml is missing"
        );
    }
}

#[test]
fn every_sample_is_a_valid_buildable_mcp_app() {
    for path in samples() {
        let text = std::fs::read_to_string(&path).expect("sample is readable");
        let written: Value = serde_norway::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()));
        let mut app: McpApp = serde_json::from_value(written.clone())
            .unwrap_or_else(|e| panic!("{} is not an McpApp: {e}", path.display()));

        let mut dropped = Vec::new();
        let kept = serde_json::to_value(&app).expect("McpApp serializes");
        dropped_fields(&written, &kept, "", &mut dropped);
        assert!(
            dropped.is_empty(),
            "{}: unknown fields {dropped:?}",
            path.display()
        );

        if let Err(errors) = kube::core::cel::validate_cel(&app) {
            panic!("{} breaks CEL rules: {errors}", path.display());
        }

        app.metadata.namespace = Some("default".into());
        app.metadata.uid = Some("00000000-0000-4000-8000-000000000000".into());
        owned_objects(&app, &BuildInputs::default())
            .unwrap_or_else(|e| panic!("{} does not build: {e}", path.display()));
    }
}
