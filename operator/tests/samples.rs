//! Every manifest in `config/samples/` is a valid McpApp (no unknown or misspelt fields, accepted
//! by the CRD's CEL rules, buildable into owned objects), and every one of them, applied to the
//! real control plane with the operator running, becomes Ready through the MCP handshake.

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::Api;
use kube::api::{ListParams, PostParams};
use mcp_operator::api::McpApp;
use mcp_operator::build::{BuildInputs, INSTANCE_LABEL, owned_objects};
use serde_json::{Value, json};
use support::{Cluster, apply_sample, from, ready_app};

/// The sample files, sorted.
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

/// A sample as JSON, with its name.
fn sample(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../config/samples/{name}.yaml"));
    let text = std::fs::read_to_string(&path).expect("sample is readable");
    serde_norway::from_str(&text).expect("sample is YAML")
}

/// Runs the stdio sample's `npx -y PACKAGE` once outside the pod network (which has no
/// registry), so that npm's cache holds the package and its dependencies. Returns the
/// environment that points the pod's npx at that cache.
async fn prefill_npx_cache(command: &[String]) -> Vec<Value> {
    let home = std::env::var_os("HOME").expect("HOME is set");
    let cache = Path::new(&home).join(".cache/mcp-operator/npm-stdio-sample");
    let (program, args) = command.split_first().expect("the sample has a command");
    // The server reads stdin and exits at its end: started with an empty one, it installs and
    // stops.
    let output = tokio::time::timeout(
        Duration::from_secs(300),
        tokio::process::Command::new(program)
            .args(args)
            .env("npm_config_cache", &cache)
            .env("npm_config_update_notifier", "false")
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("npx installs the stdio sample's server within 5 minutes")
    .expect("npx runs");
    assert!(
        output.status.success(),
        "npx {args:?} failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    vec![
        json!({"name": "npm_config_cache", "value": cache.display().to_string()}),
        json!({"name": "npm_config_prefer_offline", "value": "true"}),
        json!({"name": "npm_config_update_notifier", "value": "false"}),
    ]
}

async fn create_secret(cluster: &Cluster, name: &str, key: &str, value: &str) {
    let secrets: Api<Secret> = Api::default_namespaced(cluster.client.clone());
    secrets
        .create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": name}, "stringData": {key: value}})),
        )
        .await
        .unwrap_or_else(|e| panic!("Secret {name}: {e}"));
}

#[tokio::test]
async fn every_sample_becomes_ready_on_the_real_control_plane() {
    let mut stdio = sample("stdio-bridge");
    let command: Vec<String> = serde_json::from_value(stdio["spec"]["command"].clone())
        .expect("the stdio sample's command is a list of strings");
    let npm_env = prefill_npx_cache(&command).await;

    let cluster = Cluster::start().await;
    let client = cluster.client.clone();
    let _operator = cluster.start_operator("operator", 18301, &[]).await;
    // The Secrets the secrets sample says to create first.
    create_secret(&cluster, "mcp-auth", "token", "s3cret").await;
    create_secret(&cluster, "weather-api", "key", "abc123").await;

    let mut names = Vec::new();
    for path in samples() {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        if file == "stdio-bridge.yaml" {
            // Only the environment is added: npx finds the package in the prefilled cache.
            let env = stdio["spec"]["env"].as_array().cloned().unwrap_or_default();
            stdio["spec"]["env"] = Value::Array(env.into_iter().chain(npm_env.clone()).collect());
            cluster
                .apply_app(stdio.clone())
                .await
                .expect("stdio sample applies");
        } else {
            apply_sample(&client, &file, "default").await;
        }
        names.push(
            sample(path.file_stem().unwrap().to_str().unwrap())["metadata"]["name"]
                .as_str()
                .expect("a sample has a name")
                .to_owned(),
        );
    }

    for name in &names {
        let app = ready_app(&client, "default", name).await;
        let status = app.status.expect("a Ready app has a status");
        let server = status.server.expect("status.server from the handshake");
        assert!(server.tools > 0, "{name}: {server:?}");
        let desired = app
            .spec
            .autoscaling
            .as_ref()
            .map_or(app.spec.replicas.unwrap_or(1), |a| a.min_replicas);
        assert!(
            status.ready_replicas >= Some(desired),
            "{name}: {:?} ready of {desired}",
            status.ready_replicas
        );
    }

    // What each sample is for, beyond Ready.
    let everything = ready_app(&client, "default", "everything").await;
    let server = everything.status.unwrap().server.unwrap();
    assert_ne!(
        server.name, "mcp-server",
        "the bridged server answers, not the bridge: {server:?}"
    );
    let hpas: Api<HorizontalPodAutoscaler> = Api::default_namespaced(client.clone());
    let hpa = hpas
        .get("busy")
        .await
        .expect("the autoscaling sample has an HPA");
    assert_eq!(hpa.spec.min_replicas, Some(2));
    // The private app's server demands the token: its pods became Ready only because the
    // handshake sent it from the Secret.
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let private = pods
        .list(&ListParams::default().labels(&format!("{INSTANCE_LABEL}=private")))
        .await
        .unwrap();
    let ip = private.items[0]
        .status
        .as_ref()
        .unwrap()
        .pod_ip
        .clone()
        .unwrap();
    let addr = std::net::SocketAddr::new(ip.parse().unwrap(), 8080);
    let (code, _) = cluster
        .env
        .http_request(
            addr,
            "POST",
            "/mcp",
            &[("Content-Type", "application/json")],
            "{}",
        )
        .await
        .expect("the private app's pod answers");
    assert_eq!(
        code, 401,
        "the secrets sample's server requires its bearer token"
    );
}
