//! The tool contract on a real control plane: a revision whose `tools/list` breaks the stable
//! revision's tools (a tool removed, a new required argument) never takes traffic and is rolled
//! back with reason `ToolContractBroken`; one that only adds a tool rolls out; a change accepted
//! in the spec, or made with `toolContract: Warn`, rolls out with a Warning Event.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::ControllerRevision;
use kube::{Api, ResourceExt};
use mcp_operator::api::McpApp;
use mcp_operator::build::REVISION_LABEL;
use mcp_operator::contract::{Contract, REVISION_ANNOTATION};
use mcp_testenv::wait::until;
use serde_json::{Value, json};
use support::{
    Cluster, READY_TIMEOUT, SCRIPTED, app_when, condition, event, is, pods_of, ready_endpoints,
    stable_revision,
};

/// What the first version lists.
fn v1() -> Value {
    json!([
        {"name": "search", "inputSchema": {"type": "object",
            "properties": {"q": {"type": "string"}, "mode": {"enum": ["fast", "deep"]}},
            "required": ["q"]},
         "annotations": {"readOnlyHint": true}},
        {"name": "fetch", "inputSchema": {"type": "object",
            "properties": {"url": {"type": "string"}}, "required": ["url"]},
         "outputSchema": {"type": "object",
            "properties": {"status": {"type": "integer"}, "body": {"type": "string"}},
            "required": ["status"]}},
    ])
}

/// `v1` with `change` applied to the tool named `tool` (None removes it).
fn changed(tool: &str, change: impl Fn(&mut Value) -> Option<()>) -> Value {
    let mut tools = v1();
    let list = tools.as_array_mut().unwrap();
    let i = list.iter().position(|t| t["name"] == tool).unwrap();
    if change(&mut list[i]).is_none() {
        list.remove(i);
    }
    tools
}

/// The app's spec with `tools` as what its server lists.
fn spec(tools: &Value, rollout: Value) -> Value {
    let mut rollout = rollout;
    rollout["drainSeconds"] = 0.into();
    json!({
        "image": SCRIPTED,
        "replicas": 2,
        "env": [{"name": "SCRIPTED_TOOLS", "value": tools.to_string()}],
        "probe": {"periodSeconds": 1, "timeoutSeconds": 1, "failureThreshold": 2},
        "rollout": rollout,
        // The probe meets the server's own tools/list (the front door passes it through
        // unchanged, but there is no need for the extra hop here).
        "session": {"frontDoor": false},
    })
}

async fn apply(cluster: &Cluster, name: &str, tools: &Value, rollout: Value) {
    cluster
        .apply_app(json!({"metadata": {"name": name}, "spec": spec(tools, rollout)}))
        .await
        .expect("app applies");
}

/// The contract kept with revision `name`.
async fn kept_contract(cluster: &Cluster, name: &str) -> Contract {
    let revisions: Api<ControllerRevision> = Api::default_namespaced(cluster.client.clone());
    until("the revision's tool contract", READY_TIMEOUT, || async {
        let revision = revisions.get(name).await.map_err(|e| e.to_string())?;
        revision
            .annotations()
            .get(REVISION_ANNOTATION)
            .and_then(|text| Contract::parse(text))
            .ok_or_else(|| format!("{:?}", revision.annotations()))
    })
    .await
}

/// Watches the app's ready endpoints while it runs: every address that is ever ready must
/// belong to a pod of `stable_label`'s revision.
async fn traffic_only_to(
    cluster: &Cluster,
    name: &str,
    stable_label: String,
    stop: Arc<AtomicBool>,
) -> (usize, Vec<String>) {
    let (mut samples, mut strays) = (0, Vec::new());
    while !stop.load(Ordering::Relaxed) {
        let pods = pods_of(cluster, name).await;
        for addr in ready_endpoints(cluster, name).await {
            let ip = addr.ip().to_string();
            let pod = pods
                .iter()
                .find(|p| p.status.as_ref().and_then(|s| s.pod_ip.as_deref()) == Some(ip.as_str()));
            let label = pod.and_then(|p| p.labels().get(REVISION_LABEL).cloned());
            if let Some(label) = label.filter(|l| *l != stable_label) {
                strays.push(format!("{ip} of revision {label}"));
            }
        }
        samples += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (samples, strays)
}

/// Applies `tools` and waits until the revision is aborted with `ToolContractBroken`; checks
/// that none of its pods was a ready endpoint meanwhile and returns the Degraded message.
async fn broken_rollout(cluster: &Cluster, name: &str, stable: &str, tools: &Value) -> String {
    let revisions: Api<ControllerRevision> = Api::default_namespaced(cluster.client.clone());
    let label = revisions.get(stable).await.unwrap().labels()[REVISION_LABEL].clone();
    let stop = Arc::new(AtomicBool::new(false));
    let watch = traffic_only_to(cluster, name, label, stop.clone());
    let failed_before = cluster
        .apps()
        .get(name)
        .await
        .unwrap()
        .status
        .unwrap()
        .failed_revision;
    let scenario = async {
        let updated = Instant::now();
        apply(cluster, name, tools, json!({})).await;
        let aborted = app_when(cluster, name, "ToolContractBroken", READY_TIMEOUT, |a| {
            condition(a, "Degraded").is_some_and(|c| c.reason == "ToolContractBroken")
                && a.status.as_ref().unwrap().failed_revision != failed_before
        })
        .await;
        println!("breaking revision → aborted: {:?}", updated.elapsed());
        let status = aborted.status.clone().unwrap();
        assert_eq!(status.stable_revision.as_deref(), Some(stable));
        assert!(status.failed_revision.is_some());
        assert!(
            is(&aborted, "Ready", "True"),
            "the stable pods keep serving"
        );
        let held = until("the breaking pods to be gone", READY_TIMEOUT, || async {
            let pods = pods_of(cluster, name).await;
            let wanted = stable.rsplit('-').next().unwrap();
            match pods.iter().all(|p| p.labels()[REVISION_LABEL] == wanted) {
                true => Ok(()),
                false => Err(format!("{} pods", pods.len())),
            }
        });
        held.await;
        stop.store(true, Ordering::Relaxed);
        condition(&aborted, "Degraded").unwrap().message
    };
    let (message, (samples, strays)) = tokio::join!(scenario, watch);
    println!("endpoint samples during the breaking rollout: {samples}");
    assert!(samples > 5, "the watch ran: {samples}");
    assert!(
        strays.is_empty(),
        "a pod of the breaking revision was a ready endpoint: {strays:?}"
    );
    message
}

/// Waits until a revision other than `before` is stable, Ready and not Degraded.
async fn rolled_out(cluster: &Cluster, name: &str, before: &str) -> McpApp {
    app_when(
        cluster,
        name,
        "the new revision to roll out",
        READY_TIMEOUT,
        |a| {
            is(a, "Ready", "True")
                && is(a, "Degraded", "False")
                && a.status.as_ref().is_some_and(|s| {
                    s.stable_revision.as_deref().is_some_and(|r| r != before)
                        && s.failed_revision.is_none()
                })
        },
    )
    .await
}

#[tokio::test]
async fn breaking_revisions_never_take_traffic_and_an_added_tool_rolls_out() {
    let cluster = Cluster::start_with(support::with_scripted_servers).await;
    let _operator = cluster.start_operator("operator", 18151, &[]).await;
    apply(&cluster, "tools", &v1(), json!({})).await;
    let stable = stable_revision(&cluster, "tools").await;

    // The stable revision keeps what its pods listed; the status names the tools.
    let contract = kept_contract(&cluster, &stable).await;
    assert_eq!(
        contract.tools.keys().collect::<Vec<_>>(),
        ["fetch", "search"]
    );
    assert_eq!(
        contract.tools["fetch"].output_schema.as_ref().unwrap()["required"],
        json!(["status"])
    );
    let app = app_when(&cluster, "tools", "the tool names", READY_TIMEOUT, |a| {
        a.status
            .as_ref()
            .and_then(|s| s.server.as_ref())
            .is_some_and(|s| s.tool_names == ["fetch", "search"])
    })
    .await;
    let server = app.status.unwrap().server.unwrap();
    assert_eq!(
        server.tool_contract_digest.as_deref(),
        Some(contract.digest().as_str())
    );

    // A tool removed.
    let without_fetch = changed("fetch", |_| None);
    let message = broken_rollout(&cluster, "tools", &stable, &without_fetch).await;
    assert!(message.contains("tool \"fetch\": removed"), "{message}");
    assert!(
        message.contains(&format!("rolled back to {stable}")),
        "{message}"
    );
    assert!(message.contains("acceptToolChanges"), "{message}");
    let kind = event(&cluster, "tools", "ToolContractBroken", "fetch").await;
    assert_eq!(kind, "Warning");

    // A new required argument.
    let limit = changed("search", |t| {
        t["inputSchema"]["properties"]["limit"] = json!({"type": "integer"});
        t["inputSchema"]["required"]
            .as_array_mut()?
            .push("limit".into());
        Some(())
    });
    let message = broken_rollout(&cluster, "tools", &stable, &limit).await;
    assert!(
        message.contains("tool \"search\": new required argument \"limit\""),
        "{message}"
    );

    // Only an added tool: compatible, it rolls out and the Event says what was added.
    let mut added = v1();
    added.as_array_mut().unwrap().push(json!({
        "name": "summarize", "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}
    }));
    let updated = Instant::now();
    apply(&cluster, "tools", &added, json!({})).await;
    let app = rolled_out(&cluster, "tools", &stable).await;
    println!("compatible revision → stable: {:?}", updated.elapsed());
    let next = app.status.unwrap().stable_revision.unwrap();
    let kind = event(
        &cluster,
        "tools",
        "ToolContractChanged",
        "compatible: tool \"summarize\": added",
    )
    .await;
    assert_eq!(kind, "Normal");
    let contract = kept_contract(&cluster, &next).await;
    assert!(contract.tools.contains_key("summarize"));
}

#[tokio::test]
async fn accepted_and_warned_changes_roll_out_with_a_warning() {
    let cluster = Cluster::start_with(support::with_scripted_servers).await;
    let _operator = cluster.start_operator("operator", 18152, &[]).await;
    apply(&cluster, "tools", &v1(), json!({})).await;
    let first = stable_revision(&cluster, "tools").await;
    kept_contract(&cluster, &first).await;

    // fetch's result loses a guaranteed field, on purpose: the spec accepts it.
    let loose = changed("fetch", |t| {
        t["outputSchema"]["required"] = json!([]);
        Some(())
    });
    apply(
        &cluster,
        "tools",
        &loose,
        json!({"acceptToolChanges": ["fetch"]}),
    )
    .await;
    let app = rolled_out(&cluster, "tools", &first).await;
    let second = app.status.unwrap().stable_revision.unwrap();
    let kind = event(
        &cluster,
        "tools",
        "ToolContractChanged",
        "breaking, accepted: tool \"fetch\": output field \"status\" is no longer always present",
    )
    .await;
    assert_eq!(kind, "Warning");

    // With Warn, search stops being read-only and still rolls out, with a Warning.
    let writes = changed("search", |t| {
        t["annotations"]["readOnlyHint"] = false.into();
        Some(())
    });
    let mut writes_too = loose.clone();
    let i = writes_too
        .as_array()
        .unwrap()
        .iter()
        .position(|t| t["name"] == "search")
        .unwrap();
    writes_too[i] = writes.as_array().unwrap()[0].clone();
    apply(
        &cluster,
        "tools",
        &writes_too,
        json!({"toolContract": "Warn"}),
    )
    .await;
    rolled_out(&cluster, "tools", &second).await;
    let kind = event(
        &cluster,
        "tools",
        "ToolContractChanged",
        "breaking (toolContract is Warn): tool \"search\": readOnlyHint true -> false",
    )
    .await;
    assert_eq!(kind, "Warning");
    let names: BTreeSet<String> = kept_contract(
        &cluster,
        &cluster
            .apps()
            .get("tools")
            .await
            .unwrap()
            .status
            .unwrap()
            .stable_revision
            .unwrap(),
    )
    .await
    .tools
    .into_keys()
    .collect();
    assert_eq!(names, BTreeSet::from(["fetch".into(), "search".into()]));
}
