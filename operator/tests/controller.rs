//! The McpApp controller against a real control plane: the objects it creates and how it keeps
//! them, what the API server rejects, leader election, and silence at rest.

mod support;

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use mcp_operator::api::HANDSHAKE_CONDITION;
use mcp_testenv::audit;
use mcp_testenv::wait::until;
use serde_json::json;
use support::{Cluster, TIMEOUT, app_when, condition, from, is};

async fn get_when<K>(api: &Api<K>, name: &str) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    until(&format!("{name} to exist"), TIMEOUT, || async {
        api.get_opt(name).await.unwrap().ok_or("absent")
    })
    .await
}

/// Waits until `name` no longer exists.
async fn gone_when<K>(api: &Api<K>, name: &str, what: &str)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    until(what, TIMEOUT, || async {
        match api.get_opt(name).await.unwrap() {
            None => Ok(()),
            Some(_) => Err("still there"),
        }
    })
    .await;
}

#[tokio::test]
async fn apply_creates_every_owned_object_with_sse_safe_settings() {
    let cluster = Cluster::start().await;
    let client = cluster.client.clone();
    let classes: Api<IngressClass> = Api::all(client.clone());
    classes
        .create(
            &PostParams::default(),
            &from(json!({
                "metadata": {"name": "nginx"},
                "spec": {"controller": "k8s.io/ingress-nginx"},
            })),
        )
        .await
        .unwrap();
    let _operator = cluster.start_operator("operator", 18080, &[]).await;
    let app = cluster
        .apply_app(json!({
            "metadata": {"name": "weather"},
            "spec": {
                "replicas": 2,
                "session": {"affinity": "ClientIP", "timeoutSeconds": 3600},
                "sse": {"streamTimeoutSeconds": 7200, "keepAliveSeconds": 15},
                "ingress": {
                    "className": "nginx",
                    "host": "weather.example.com",
                    "annotations": {"nginx.ingress.kubernetes.io/proxy-body-size": "8m"},
                },
            },
        }))
        .await
        .unwrap();
    let uid = app.uid().unwrap();

    let deployment = get_when(
        &Api::<Deployment>::default_namespaced(client.clone()),
        "weather",
    )
    .await;
    let owner = &deployment.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("McpApp", uid.as_str())
    );
    assert_eq!(owner.controller, Some(true));
    assert_eq!(deployment.spec.replicas, Some(2));
    let strategy = deployment
        .spec
        .strategy
        .clone()
        .unwrap()
        .rolling_update
        .unwrap();
    assert_eq!(
        strategy.max_unavailable,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(0)),
        "old pods keep serving while a new version proves itself"
    );
    let pod_spec = deployment.spec.template.spec.clone().unwrap();
    let gates: Vec<String> = pod_spec
        .readiness_gates
        .iter()
        .flatten()
        .map(|g| g.condition_type.clone())
        .collect();
    assert_eq!(gates, [HANDSHAKE_CONDITION]);
    let security = pod_spec.containers[0].security_context.clone().unwrap();
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(
        security.capabilities.unwrap().drop,
        Some(vec!["ALL".to_string()])
    );

    let service = get_when(
        &Api::<Service>::default_namespaced(client.clone()),
        "weather",
    )
    .await;
    let spec = service.spec.unwrap();
    assert_eq!(spec.session_affinity.as_deref(), Some("ClientIP"));
    assert_eq!(
        spec.session_affinity_config
            .unwrap()
            .client_ip
            .unwrap()
            .timeout_seconds,
        Some(3600)
    );

    let ingress = get_when(
        &Api::<Ingress>::default_namespaced(client.clone()),
        "weather",
    )
    .await;
    let annotations = ingress.annotations();
    assert_eq!(
        annotations
            .get("nginx.ingress.kubernetes.io/proxy-read-timeout")
            .map(String::as_str),
        Some("7200"),
        "ingress-nginx must not cut SSE streams after its 60 s default: {annotations:?}"
    );
    assert_eq!(
        annotations
            .get("nginx.ingress.kubernetes.io/proxy-buffering")
            .map(String::as_str),
        Some("off")
    );
    assert_eq!(
        annotations
            .get("nginx.ingress.kubernetes.io/proxy-body-size")
            .map(String::as_str),
        Some("8m"),
        "the user's annotations are applied too"
    );

    let pdb = get_when(
        &Api::<PodDisruptionBudget>::default_namespaced(client.clone()),
        "weather",
    )
    .await;
    let budget = pdb.spec.unwrap();
    assert_eq!(
        budget.max_unavailable,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1)),
        "drains evict one pod at a time"
    );
    assert_eq!(
        budget.selector.and_then(|s| s.match_labels),
        deployment.spec.selector.match_labels.clone(),
        "the budget covers the app's pods"
    );

    let status = until("the status to be written", TIMEOUT, || async {
        let app = cluster.apps().get("weather").await.unwrap();
        match app.status {
            Some(s) if s.observed_generation == app.metadata.generation => Ok(s),
            other => Err(other),
        }
    })
    .await;
    assert_eq!(
        status.url.as_deref(),
        Some("http://weather.example.com/mcp")
    );
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(
        ready.status, "False",
        "no pod has passed a handshake yet: {ready:?}"
    );

    // Every condition set for the first time is recorded as an Event on the app.
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::default_namespaced(client.clone());
    until("Events about the app", TIMEOUT, || async {
        let list = events.list(&Default::default()).await.unwrap();
        let reasons: Vec<String> = list
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("weather"))
            .filter_map(|e| e.reason)
            .collect();
        // Progressing (RolloutInProgress) and Degraded (AsExpected), in whatever order the
        // operator's event recorder publishes them.
        let has = |reason: &str| reasons.iter().any(|r| r == reason);
        if has("RolloutInProgress") && has("AsExpected") {
            Ok(reasons)
        } else {
            Err(reasons)
        }
    })
    .await;

    // The operator's own endpoints, inside the environment.
    let addr = "127.0.0.1:18080".parse().unwrap();
    let (code, body) = cluster.env.http_get(addr, "/metrics").await.unwrap();
    assert_eq!(code, 200);
    assert!(body.contains("mcp_operator_reconciles_total"), "{body}");
    assert!(
        body.contains("mcp_operator_reconcile_duration_seconds_bucket"),
        "{body}"
    );
    assert_eq!(cluster.env.http_get(addr, "/healthz").await.unwrap().0, 200);
    assert_eq!(cluster.env.http_get(addr, "/readyz").await.unwrap().0, 200);
}

#[tokio::test]
async fn spec_change_updates_the_deployment_in_place() {
    let cluster = Cluster::start().await;
    let _operator = cluster.start_operator("operator", 18080, &[]).await;
    let deployments: Api<Deployment> = Api::default_namespaced(cluster.client.clone());
    cluster
        .apply_app(json!({"metadata": {"name": "app"}, "spec": {"args": ["--first"]}}))
        .await
        .unwrap();
    let first = get_when(&deployments, "app").await;
    cluster
        .apply_app(json!({"metadata": {"name": "app"}, "spec": {"args": ["--second"]}}))
        .await
        .unwrap();
    let second = until("the Deployment to carry the new args", TIMEOUT, || async {
        let d = deployments.get("app").await.unwrap();
        let args = d.spec.template.spec.as_ref().unwrap().containers[0]
            .args
            .clone();
        if args == Some(vec!["--second".into()]) {
            Ok(d)
        } else {
            Err(args)
        }
    })
    .await;
    assert_eq!(first.uid(), second.uid(), "updated, not replaced");
}

#[tokio::test]
async fn replicas_set_by_the_autoscaler_survive_reconciles() {
    let cluster = Cluster::start().await;
    let _operator = cluster.start_operator("operator", 18080, &[]).await;
    let client = cluster.client.clone();
    let deployments: Api<Deployment> = Api::default_namespaced(client.clone());
    cluster
        .apply_app(json!({"metadata": {"name": "scaled"}, "spec": {
            "autoscaling": {"minReplicas": 1, "maxReplicas": 5},
        }}))
        .await
        .unwrap();
    let hpa = get_when(
        &Api::<HorizontalPodAutoscaler>::default_namespaced(client.clone()),
        "scaled",
    )
    .await;
    assert_eq!(hpa.spec.max_replicas, 5);
    get_when(&deployments, "scaled").await;

    // What the HPA controller does: set the scale through the scale subresource.
    deployments
        .patch_scale(
            "scaled",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    // A spec change makes the operator apply the Deployment again.
    cluster
        .apply_app(json!({"metadata": {"name": "scaled"}, "spec": {
            "autoscaling": {"minReplicas": 1, "maxReplicas": 5},
            "args": ["--changed"],
        }}))
        .await
        .unwrap();
    let d = until("the re-applied Deployment", TIMEOUT, || async {
        let d = deployments.get("scaled").await.unwrap();
        let args = d.spec.template.spec.as_ref().unwrap().containers[0]
            .args
            .clone();
        if args == Some(vec!["--changed".into()]) {
            Ok(d)
        } else {
            Err(args)
        }
    })
    .await;
    assert_eq!(
        d.spec.replicas,
        Some(3),
        "the autoscaler's replica count is kept"
    );
}

#[tokio::test]
async fn deleting_the_app_garbage_collects_what_it_owned() {
    let cluster = Cluster::start().await;
    let _operator = cluster.start_operator("operator", 18080, &[]).await;
    let client = cluster.client.clone();
    cluster
        .apply_app(json!({"metadata": {"name": "short-lived"}, "spec": {"replicas": 2}}))
        .await
        .unwrap();
    let deployments: Api<Deployment> = Api::default_namespaced(client.clone());
    let services: Api<Service> = Api::default_namespaced(client.clone());
    let budgets: Api<PodDisruptionBudget> = Api::default_namespaced(client.clone());
    get_when(&deployments, "short-lived").await;
    get_when(&services, "short-lived").await;
    get_when(&budgets, "short-lived").await;

    cluster
        .apps()
        .delete("short-lived", &DeleteParams::foreground())
        .await
        .unwrap();
    until("the owned objects to be gone", TIMEOUT, || async {
        let left = (
            deployments.get_opt("short-lived").await.unwrap().is_some(),
            services.get_opt("short-lived").await.unwrap().is_some(),
            budgets.get_opt("short-lived").await.unwrap().is_some(),
        );
        if left == (false, false, false) {
            Ok(())
        } else {
            Err(left)
        }
    })
    .await;
}

#[tokio::test]
async fn invalid_specs_are_rejected_by_the_api_server_with_messages_that_say_what_to_fix() {
    let cluster = Cluster::start().await;
    let cases = [
        (
            json!({"replicas": 2, "autoscaling": {"minReplicas": 1, "maxReplicas": 3}}),
            "set either replicas or autoscaling, not both",
        ),
        (
            json!({"ingress": {"host": "a.example.com"}, "gateway": {"parentRefs": [{"name": "gw"}]}}),
            "set either ingress or gateway, not both",
        ),
        (
            json!({"transport": "stdio", "image": "node:22"}),
            "transport stdio needs command",
        ),
        (
            json!({"transport": "stdio", "command": ["npx", "server"]}),
            "transport stdio needs image",
        ),
        (
            json!({"podLabels": {"app.kubernetes.io/instance": "other"}}),
            "podLabels must not set",
        ),
        (
            json!({"sse": {"streamTimeoutSeconds": 60, "keepAliveSeconds": 60}}),
            "sse.keepAliveSeconds must be less than sse.streamTimeoutSeconds",
        ),
        (
            json!({"autoscaling": {"minReplicas": 5, "maxReplicas": 2}}),
            "autoscaling.minReplicas must not exceed autoscaling.maxReplicas",
        ),
        (
            json!({"probe": {"periodSeconds": 5, "timeoutSeconds": 10}}),
            "probe.timeoutSeconds must not exceed probe.periodSeconds",
        ),
        (
            json!({"secrets": {"files": [
            {"secretName": "a", "mountPath": "/etc/creds"},
            {"secretName": "b", "mountPath": "/etc/creds"}]}}),
            "every mountPath must be different",
        ),
        (
            json!({"secrets": {"files": [{"secretName": "a", "mountPath": "/tmp"}]}}),
            "must not be /tmp, /mcp-bridge or /mcp-session-keys",
        ),
        (
            json!({"image": "registry.example/weather:1", "port": 8099}),
            "port 8099 is the front door's",
        ),
        (
            json!({"secrets": {"env": [
            {"name": "TOKEN", "secretName": "a", "key": "k"},
            {"name": "TOKEN", "secretName": "b", "key": "k"}]}}),
            "secrets.env: every name must be different",
        ),
        (
            json!({"networkPolicy": {"from": [{"podSelector": {}}]}}),
            "networkPolicy.from has no effect unless networkPolicy.enabled is true",
        ),
        (json!({"port": 70000}), "spec.port"),
        (json!({"transport": "websocket"}), "spec.transport"),
        (
            json!({"session": {"affinity": "ClientIP", "timeoutSeconds": 90000}}),
            "spec.session.timeoutSeconds",
        ),
        (json!({"path": "mcp"}), "spec.path"),
    ];
    assert!(cases.len() >= 12);
    for (i, (spec, expected)) in cases.into_iter().enumerate() {
        let name = format!("invalid-{i}");
        let err = cluster
            .apply_app(json!({"metadata": {"name": name}, "spec": spec.clone()}))
            .await
            .expect_err(&format!("the API server must reject {spec}"));
        let message = match err {
            kube::Error::Api(e) => {
                assert_eq!(e.code, 422, "{spec}: {e:?}");
                e.message
            }
            other => panic!("{spec}: unexpected error {other:?}"),
        };
        assert!(
            message.contains(expected),
            "{spec}: {message:?} should contain {expected:?}"
        );
    }
    // The name names the Service: a dotted or long name would pass as an object name and
    // then fail at the Service, after the Deployment was made.
    for name in ["mcp.example".to_owned(), "a".repeat(64), "1st".to_owned()] {
        let err = cluster
            .apply_app(json!({"metadata": {"name": name}, "spec": {}}))
            .await
            .expect_err(&format!("the API server must reject the name {name}"));
        assert!(
            matches!(&err, kube::Error::Api(e) if e.code == 422
                && e.message.contains("metadata.name must be a DNS label")),
            "{name}: {err:?}"
        );
    }
}

#[tokio::test]
async fn two_operators_elect_one_leader_and_the_standby_takes_over() {
    let cluster = Cluster::start().await;
    let lease_args = [
        "--leader-election",
        "--lease-seconds",
        "4",
        "--lease-namespace",
        "default",
    ];
    let first = cluster
        .start_operator(
            "operator-a",
            18081,
            &[&lease_args[..], &["--identity", "operator-a"]].concat(),
        )
        .await;
    let leases: Api<Lease> = Api::default_namespaced(cluster.client.clone());
    let holder = until("a leader", TIMEOUT, || async {
        let lease = leases.get_opt("mcp-operator-leader").await.unwrap();
        match lease.and_then(|l| l.spec?.holder_identity) {
            Some(h) => Ok(h),
            None => Err("no holder"),
        }
    })
    .await;
    assert_eq!(holder, "operator-a");
    let _second = cluster
        .start_operator(
            "operator-b",
            18082,
            &[&lease_args[..], &["--identity", "operator-b"]].concat(),
        )
        .await;
    cluster
        .apply_app(json!({"metadata": {"name": "before"}, "spec": {}}))
        .await
        .unwrap();
    let deployments: Api<Deployment> = Api::default_namespaced(cluster.client.clone());
    get_when(&deployments, "before").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let lease = leases.get("mcp-operator-leader").await.unwrap();
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some("operator-a"),
        "the standby does not take a held lease"
    );

    // The leader dies without releasing its Lease: the standby takes over once it expires.
    first.kill();
    until("operator-b to hold the Lease", TIMEOUT, || async {
        let lease = leases.get("mcp-operator-leader").await.unwrap();
        match lease.spec.and_then(|s| s.holder_identity) {
            Some(h) if h == "operator-b" => Ok(()),
            other => Err(other),
        }
    })
    .await;
    cluster
        .apply_app(json!({"metadata": {"name": "after"}, "spec": {}}))
        .await
        .unwrap();
    get_when(&deployments, "after").await;
}

/// The holder of the operator Lease, if any.
async fn lease_holder(leases: &Api<Lease>) -> Option<String> {
    leases
        .get_opt("mcp-operator-leader")
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec?.holder_identity)
}

#[tokio::test]
async fn a_leader_cut_off_from_the_api_server_steps_down_before_the_standby_takes_over() {
    const PROXY_PORT: u16 = 18190;
    let cluster = Cluster::start_with(support::with_scripted_servers).await;
    // Operator A reaches the API server only through a proxy the test can freeze.
    let proxy_script = support::repo().join("operator/tests/servers/tcp_proxy.py");
    let proxy = cluster
        .env
        .spawn(
            "api-proxy",
            "python3",
            &[
                &proxy_script.display().to_string(),
                &PROXY_PORT.to_string(),
                &cluster.env.api_port().to_string(),
            ],
            &[],
        )
        .await
        .expect("proxy starts");
    let proxy_addr = std::net::SocketAddr::from(([127, 0, 0, 1], PROXY_PORT));
    until("the proxy to listen", TIMEOUT, || async {
        cluster.env.connect(proxy_addr).await.map(|_| ())
    })
    .await;
    let via_proxy = cluster.operator_kubeconfig("mcp-operator-a", Some(PROXY_PORT));
    let direct = cluster.operator_kubeconfig("mcp-operator-b", None);
    let lease_args = [
        "--leader-election",
        "--lease-seconds",
        "4",
        "--lease-namespace",
        "default",
    ];
    let a = cluster
        .start_operator_as(
            "operator-a",
            18083,
            &via_proxy,
            &[&lease_args[..], &["--identity", "operator-a"]].concat(),
        )
        .await;
    let leases: Api<Lease> = Api::default_namespaced(cluster.client.clone());
    until("operator-a to lead", TIMEOUT, || async {
        match lease_holder(&leases).await {
            Some(h) if h == "operator-a" => Ok(()),
            other => Err(other),
        }
    })
    .await;
    let _b = cluster
        .start_operator_as(
            "operator-b",
            18084,
            &direct,
            &[&lease_args[..], &["--identity", "operator-b"]].concat(),
        )
        .await;
    cluster
        .apply_app(json!({"metadata": {"name": "before"}, "spec": {
            "image": support::SCRIPTED, "replicas": 2,
            "probe": {"periodSeconds": 1, "timeoutSeconds": 1},
        }}))
        .await
        .unwrap();
    support::ready_app(&cluster.client, "default", "before").await;

    // Cut: every request of the leader hangs from now on, neither arriving nor failing.
    proxy.signal(mcp_testenv::process::Signal::SIGSTOP);
    let stepped_down = until("operator-a to step down and exit", TIMEOUT, || async {
        match a.exit_status() {
            Some(_) => Ok(k8s_openapi::jiff::Timestamp::now()),
            None => Err("still running"),
        }
    })
    .await;
    let lease = until("operator-b to take the Lease", TIMEOUT, || async {
        let lease = leases.get("mcp-operator-leader").await.unwrap();
        match lease
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref())
        {
            Some("operator-b") => Ok(lease),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let taken = lease.spec.unwrap().acquire_time.expect("acquireTime").0;
    println!("operator-a exited at {stepped_down}, operator-b took the Lease at {taken}");
    assert!(
        stepped_down < taken,
        "the cut-off leader stopped ({stepped_down}) before the standby took over ({taken})"
    );
    // The proxy dies with what it buffered: nothing the old leader sent arrives late.
    proxy.kill();

    // The new leader acts: a new app is reconciled and its pods pass their handshake.
    cluster
        .apply_app(json!({"metadata": {"name": "after"}, "spec": {
            "image": support::SCRIPTED,
            "probe": {"periodSeconds": 1, "timeoutSeconds": 1},
        }}))
        .await
        .unwrap();
    support::ready_app(&cluster.client, "default", "after").await;

    // No double writes: every write of the old leader came before the first of the new one.
    let log = cluster.env.audit_log();
    let at = |e: &audit::AuditEvent| -> k8s_openapi::jiff::Timestamp {
        e.request_received_timestamp
            .as_deref()
            .expect("audit events carry their time")
            .parse()
            .expect("an RFC 3339 time")
    };
    let old = audit::writes_by(&log, "mcp-operator-a");
    let new = audit::writes_by(&log, "mcp-operator-b");
    assert!(
        old.iter()
            .any(|w| w.describe().starts_with("patch pods/status")),
        "the first leader wrote pod conditions"
    );
    assert!(
        new.iter()
            .any(|w| w.describe().starts_with("patch pods/status")),
        "the new leader writes pod conditions"
    );
    let last_old = old
        .iter()
        .map(at)
        .max()
        .expect("writes of the first leader");
    let first_new = new.iter().map(at).min().expect("writes of the new leader");
    assert!(
        last_old < first_new,
        "the old leader wrote at {last_old}, after the new leader's first write at {first_new}"
    );
}

#[tokio::test]
async fn operator_writes_nothing_at_rest_nor_after_a_restart() {
    let cluster = Cluster::start().await;
    let operator = cluster.start_operator("operator", 18080, &[]).await;
    for name in ["quiet-a", "quiet-b"] {
        cluster
            .apply_app(json!({"metadata": {"name": name}, "spec": {"replicas": 2}}))
            .await
            .unwrap();
    }
    let deployments: Api<Deployment> = Api::default_namespaced(cluster.client.clone());
    for name in ["quiet-a", "quiet-b"] {
        get_when(&deployments, name).await;
    }
    // Settle: pods start, controllers write statuses, the operator reports them.
    let settled = support::operator_settled(&cluster).await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    let quiet = support::operator_writes_since(&cluster, settled);
    assert!(quiet.is_empty(), "writes during a quiet minute: {quiet:?}");

    operator.terminate(Duration::from_secs(10)).await;
    let _restarted = cluster
        .start_operator("operator-restarted", 18080, &[])
        .await;
    tokio::time::sleep(Duration::from_secs(15)).await;
    let after_restart = support::operator_writes_since(&cluster, settled);
    assert!(
        after_restart.is_empty(),
        "writes after a restart: {after_restart:?}"
    );
}

#[tokio::test]
async fn gateway_route_gets_stream_long_timeouts_and_the_experimental_session_persistence() {
    let cluster = Cluster::start().await;
    let _operator = cluster.start_operator("operator", 18080, &[]).await;
    cluster
        .apply_app(json!({"metadata": {"name": "routed"}, "spec": {
            "sse": {"streamTimeoutSeconds": 5400},
            "session": {"affinity": "Cookie"},
            "gateway": {"parentRefs": [{"name": "public", "namespace": "gateways"}], "hostnames": ["mcp.example.com"]},
        }}))
        .await
        .unwrap();
    let routes: Api<kube::api::DynamicObject> = Api::namespaced_with(
        cluster.client.clone(),
        "default",
        &*mcp_operator::build::HTTP_ROUTE_API,
    );
    let route = get_when(&routes, "routed").await;
    let spec = &route.data["spec"];
    assert_eq!(spec["parentRefs"][0]["name"], "public");
    assert_eq!(spec["hostnames"][0], "mcp.example.com");
    let rule = &spec["rules"][0];
    assert_eq!(
        rule["timeouts"],
        json!({"request": "5400s", "backendRequest": "5400s"})
    );
    assert_eq!(rule["backendRefs"][0]["name"], "routed");
    assert!(
        rule.get("sessionPersistence").is_some(),
        "the experimental CRD has sessionPersistence, so cookie stickiness goes there: {rule}"
    );
    let status = until("the status URL from the route", TIMEOUT, || async {
        let app = cluster.apps().get("routed").await.unwrap();
        match app.status.and_then(|s| s.url) {
            Some(url) if url.contains("mcp.example.com") => Ok(url),
            other => Err(other),
        }
    })
    .await;
    // Gateways terminate TLS for their listeners' hostnames.
    assert_eq!(status, "https://mcp.example.com/mcp");

    // The route is watched like the built-in kinds: one deleted by hand is put back at once,
    // not at the next resync.
    let old_uid = route.metadata.uid.clone();
    routes.delete("routed", &Default::default()).await.unwrap();
    until(
        "the deleted route to come back",
        Duration::from_secs(20),
        || async {
            match routes.get_opt("routed").await.unwrap() {
                Some(r) if r.metadata.uid != old_uid && r.metadata.deletion_timestamp.is_none() => {
                    Ok(())
                }
                other => Err(other.map(|r| r.metadata.uid)),
            }
        },
    )
    .await;

    // Without spec.gateway the operator deletes the route it made. (Applied again by the same
    // field manager, the spec without the field drops it.)
    cluster
        .apply_app(json!({"metadata": {"name": "routed"}, "spec": {
            "sse": {"streamTimeoutSeconds": 5400},
            "session": {"affinity": "Cookie"},
        }}))
        .await
        .unwrap();
    gone_when(&routes, "routed", "the route to go with spec.gateway").await;
}

#[tokio::test]
async fn changing_a_secret_rolls_the_pods_of_apps_that_asked_for_it() {
    let cluster = Cluster::start().await;
    let _operator = cluster.start_operator("operator", 18080, &[]).await;
    support::apply_app_restarted_by(&cluster, "keyed", "api-keys").await;
    let first = support::secrets_checksum(&cluster, "keyed").await;
    support::rotate_and_see_the_roll(&cluster, "api-keys", "keyed", &first).await;
}

#[tokio::test]
async fn operator_scoped_to_a_namespace_list_leaves_other_namespaces_alone() {
    let cluster = Cluster::start().await;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(cluster.client.clone());
    for ns in ["team-a", "team-b"] {
        namespaces
            .create(
                &PostParams::default(),
                &from(json!({"metadata": {"name": ns}})),
            )
            .await
            .unwrap();
    }
    let _operator = cluster
        .start_operator("operator", 18080, &["--watch-namespaces", "team-a"])
        .await;
    for ns in ["team-a", "team-b"] {
        let apps: Api<mcp_operator::api::McpApp> = Api::namespaced(cluster.client.clone(), ns);
        let app = json!({"apiVersion": "mcp-operator.dev/v1alpha1", "kind": "McpApp",
                         "metadata": {"name": "app"}, "spec": {}});
        apps.patch("app", &PatchParams::apply("test-user"), &Patch::Apply(&app))
            .await
            .unwrap();
    }
    get_when(
        &Api::<Deployment>::namespaced(cluster.client.clone(), "team-a"),
        "app",
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let other = Api::<Deployment>::namespaced(cluster.client.clone(), "team-b")
        .get_opt("app")
        .await
        .unwrap();
    assert!(other.is_none(), "team-b is not watched");
}

#[tokio::test]
async fn operator_without_its_crd_says_how_to_install_it() {
    let env = mcp_testenv::TestEnv::start().await.unwrap();
    let operator = env
        .spawn(
            "operator",
            env!("CARGO_BIN_EXE_mcp-operator"),
            &["--metrics-addr", "127.0.0.1:18080"],
            &[],
        )
        .await
        .unwrap();
    let status = tokio::time::timeout(TIMEOUT, operator.wait())
        .await
        .expect("operator exits");
    assert!(!status.unwrap().success());
    let log = std::fs::read_to_string(env.dir().join("logs/operator.log")).unwrap();
    assert!(
        log.contains("the McpApp CRD (mcpapps.mcp-operator.dev) is not installed: apply crds/ or install the Helm chart first"),
        "{log}"
    );
}

#[tokio::test]
async fn switching_from_replicas_to_autoscaling_keeps_the_running_pods() {
    let cluster = Cluster::start().await;
    let _operator = cluster.start_operator("operator", 18080, &[]).await;
    let deployments: Api<Deployment> = Api::default_namespaced(cluster.client.clone());
    cluster
        .apply_app(json!({"metadata": {"name": "growing"}, "spec": {"replicas": 3}}))
        .await
        .unwrap();
    get_when(&deployments, "growing").await;
    cluster
        .apply_app(json!({"metadata": {"name": "growing"}, "spec": {
            "autoscaling": {"minReplicas": 1, "maxReplicas": 5},
        }}))
        .await
        .unwrap();
    get_when(
        &Api::<HorizontalPodAutoscaler>::default_namespaced(cluster.client.clone()),
        "growing",
    )
    .await;
    // Give a wrong fallback time to show, then check the count the autoscaler starts from.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let d = deployments.get("growing").await.unwrap();
    assert_eq!(d.spec.replicas, Some(3), "not reset to the default of 1");
    let hash = d
        .annotations()
        .get(mcp_operator::reconcile::APPLIED_HASH_ANNOTATION)
        .cloned();
    assert!(hash.is_some(), "the autoscaled Deployment was applied");
}

/// GKE's BackendConfig CRD, as far as the operator needs it: served, with any spec.
const BACKEND_CONFIG_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: backendconfigs.cloud.google.com
spec:
  group: cloud.google.com
  names: {kind: BackendConfig, plural: backendconfigs, singular: backendconfig, listKind: BackendConfigList}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
"#;

#[tokio::test]
async fn pods_get_no_token_by_default_and_a_network_policy_comes_and_goes_with_the_field() {
    let cluster = Cluster::start().await;
    let _operator = cluster
        .start_operator("operator", 18097, &["--operator-namespace", "mcp-system"])
        .await;
    let app = |network_policy: serde_json::Value| json!({"metadata": {"name": "fenced"}, "spec": {"networkPolicy": network_policy}});
    cluster
        .apply_app(app(json!({"enabled": true})))
        .await
        .unwrap();

    // The ServiceAccount admission plugin mounts a token unless the pod says no.
    let pod = until("a pod of the app", TIMEOUT, || async {
        support::pods_of(&cluster, "fenced")
            .await
            .pop()
            .ok_or("no pod yet")
    })
    .await;
    let spec = pod.spec.unwrap();
    assert_eq!(spec.automount_service_account_token, Some(false));
    let volumes: Vec<String> = spec
        .volumes
        .iter()
        .flatten()
        .map(|v| v.name.clone())
        .collect();
    assert!(
        !volumes.iter().any(|v| v.starts_with("kube-api-access")),
        "no token volume: {volumes:?}"
    );

    let policies: Api<NetworkPolicy> = Api::default_namespaced(cluster.client.clone());
    let policy = get_when(&policies, "fenced").await.spec.unwrap();
    let rule = &policy.ingress.unwrap()[0];
    assert_eq!(
        rule.ports.as_ref().unwrap()[0].port,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(8080))
    );
    assert_eq!(rule.from, None, "no peers listed: anyone");

    // Peers listed: the app's pods and the operator's namespace come with them.
    let namespace = |name: &str| json!({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}});
    cluster
        .apply_app(app(
            json!({"enabled": true, "from": [namespace("tenants")]}),
        ))
        .await
        .unwrap();
    let from = until("the listed peers in the policy", TIMEOUT, || async {
        let policy = policies.get("fenced").await.map_err(|e| e.to_string())?;
        let from = policy.spec.and_then(|s| s.ingress?.pop()?.from);
        from.ok_or_else(|| "no peers yet".to_owned())
    })
    .await;
    let from = serde_json::to_value(&from).unwrap();
    assert_eq!(from.as_array().map(Vec::len), Some(3), "{from}");
    assert!(from[0]["podSelector"]["matchLabels"].is_object(), "{from}");
    assert_eq!(from[1], namespace("mcp-system"));
    assert_eq!(from[2], namespace("tenants"));

    cluster
        .apply_app(app(json!({"enabled": false})))
        .await
        .unwrap();
    gone_when(&policies, "fenced", "the NetworkPolicy to go").await;
}

#[tokio::test]
async fn a_backend_config_follows_the_ingress_dialect_and_goes_when_the_app_leaves_gce() {
    let cluster = Cluster::start().await;
    mcp_testenv::manifests::apply(&cluster.client, BACKEND_CONFIG_CRD, "default")
        .await
        .expect("BackendConfig CRD installs");
    let classes: Api<IngressClass> = Api::all(cluster.client.clone());
    for (class, controller) in [
        ("gce", "k8s.io/ingress-gce"),
        ("nginx", "k8s.io/ingress-nginx"),
    ] {
        classes
            .create(
                &PostParams::default(),
                &from(json!({"metadata": {"name": class}, "spec": {"controller": controller}})),
            )
            .await
            .unwrap();
    }
    // The operator finds the optional APIs at start.
    let _operator = cluster.start_operator("operator", 18090, &[]).await;
    let app = |class: &str| {
        json!({"metadata": {"name": "edge"}, "spec": {
            "ingress": {"className": class, "host": "mcp.example.com"},
            "session": {"affinity": "ClientIP"},
        }})
    };
    cluster.apply_app(app("gce")).await.unwrap();
    let configs: Api<kube::api::DynamicObject> = Api::namespaced_with(
        cluster.client.clone(),
        "default",
        &*mcp_operator::build::BACKEND_CONFIG_API,
    );
    let config = get_when(&configs, "edge").await;
    assert_eq!(
        config.data["spec"]["sessionAffinity"]["affinityType"],
        "CLIENT_IP"
    );
    // Put back when deleted by hand, like every owned kind.
    configs
        .delete("edge", &DeleteParams::default())
        .await
        .unwrap();
    until(
        "the deleted BackendConfig to come back",
        Duration::from_secs(20),
        || async {
            match configs.get_opt("edge").await.unwrap() {
                Some(c) if c.metadata.uid != config.metadata.uid => Ok(()),
                other => Err(other.map(|c| c.metadata.uid)),
            }
        },
    )
    .await;

    // Another controller serves the class now: the BackendConfig has no reader and goes.
    cluster.apply_app(app("nginx")).await.unwrap();
    gone_when(
        &configs,
        "edge",
        "the BackendConfig to go with the GCE dialect",
    )
    .await;
    let services: Api<Service> = Api::default_namespaced(cluster.client.clone());
    let service = services.get("edge").await.unwrap();
    assert!(
        !service
            .annotations()
            .contains_key("cloud.google.com/backend-config"),
        "the Service no longer points at it"
    );
}

#[tokio::test]
async fn owned_objects_edited_by_hand_are_put_back_without_writes_at_rest() {
    let cluster = Cluster::start().await;
    let _operator = cluster.start_operator("operator", 18091, &[]).await;
    cluster
        .apply_app(json!({"metadata": {"name": "kept"}, "spec": {"replicas": 2}}))
        .await
        .unwrap();
    let deployments: Api<Deployment> = Api::default_namespaced(cluster.client.clone());
    let gates = |d: &Deployment| {
        d.spec
            .template
            .spec
            .as_ref()
            .and_then(|p| p.readiness_gates.clone())
            .unwrap_or_default()
            .len()
    };
    let deployment = get_when(&deployments, "kept").await;
    assert_eq!(gates(&deployment), 1);
    // Another tool removes the readiness gate and scales the Deployment; the applied-hash
    // annotation stays as it was.
    deployments
        .patch(
            "kept",
            &PatchParams::default(),
            &Patch::Json::<()>(
                serde_json::from_value(json!([
                    {"op": "remove", "path": "/spec/template/spec/readinessGates"},
                    {"op": "replace", "path": "/spec/replicas", "value": 5},
                ]))
                .unwrap(),
            ),
        )
        .await
        .unwrap();
    let edited = std::time::Instant::now();
    until(
        "the readiness gate and replicas to come back",
        Duration::from_secs(10),
        || async {
            let d = deployments.get("kept").await.unwrap();
            match (gates(&d), d.spec.replicas) {
                (1, Some(2)) => Ok(()),
                other => Err(other),
            }
        },
    )
    .await;
    eprintln!("drift corrected {:?} after the edit", edited.elapsed());

    // Once corrected, the operator falls silent again: the correction converged.
    let settled = support::operator_settled(&cluster).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let writes = support::operator_writes_since(&cluster, settled);
    assert!(
        writes.is_empty(),
        "writes at rest after a correction: {writes:?}"
    );
}

#[tokio::test]
async fn a_spec_the_api_server_refuses_is_reported_and_retried_with_backoff() {
    let cluster = Cluster::start().await;
    // A policy of the cluster's own: no Deployments of images from forbidden.example.
    let policy = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: no-forbidden-images}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - apiGroups: [apps]
        apiVersions: [v1]
        operations: [CREATE, UPDATE]
        resources: [deployments]
  validations:
    - expression: "object.spec.template.spec.containers.all(c, !c.image.startsWith('forbidden.example/'))"
      message: "images from forbidden.example are not allowed in this cluster"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: no-forbidden-images}
spec:
  policyName: no-forbidden-images
  validationActions: [Deny]
"#;
    mcp_testenv::manifests::apply(&cluster.client, policy, "default")
        .await
        .expect("admission policy installs");
    // The API server enforces a new policy a moment after it is created: wait for a dry run of
    // such a Deployment to be refused.
    let deployments: Api<Deployment> = Api::default_namespaced(cluster.client.clone());
    let probe: Deployment = from(json!({
        "metadata": {"name": "policy-probe"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {
            "metadata": {"labels": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "forbidden.example/x:1"}]}}},
    }));
    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    until("the admission policy to be enforced", TIMEOUT, || async {
        match deployments.create(&dry_run, &probe).await {
            Err(kube::Error::Api(e)) if e.code == 422 => Ok(()),
            other => Err(format!("{:?}", other.map(|_| "admitted"))),
        }
    })
    .await;
    let _operator = cluster.start_operator("operator", 18092, &[]).await;
    let app = |image: &str| json!({"metadata": {"name": "refused"}, "spec": {"image": image}});
    cluster
        .apply_app(app("forbidden.example/mcp:1"))
        .await
        .unwrap();
    let refused = app_when(
        &cluster,
        "refused",
        "Ready=False ApplyFailed",
        TIMEOUT,
        |a| condition(a, "Ready").is_some_and(|c| c.status == "False" && c.reason == "ApplyFailed"),
    )
    .await;
    let degraded = condition(&refused, "Degraded").unwrap();
    assert_eq!(
        (degraded.status.as_str(), degraded.reason.as_str()),
        ("True", "ApplyFailed")
    );
    assert!(
        degraded
            .message
            .contains("images from forbidden.example are not allowed"),
        "the API server's own words: {}",
        degraded.message
    );
    assert_eq!(
        condition(&refused, "Ready").unwrap().observed_generation,
        refused.metadata.generation,
        "kubectl wait sees the refusal for this generation"
    );
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::default_namespaced(cluster.client.clone());
    until("a Warning Event with the refusal", TIMEOUT, || async {
        let listed = events.list(&Default::default()).await.unwrap();
        listed
            .items
            .iter()
            .find(|e| {
                e.type_.as_deref() == Some("Warning")
                    && e.reason.as_deref() == Some("ApplyFailed")
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("refused")
            })
            .map(|_| ())
            .ok_or(listed.items.len())
    })
    .await;
    // Retries back off: over 12 s, at most a few refused attempts (5 s, then 10 s...).
    let since = support::operator_writes_since(&cluster, 0).len();
    tokio::time::sleep(Duration::from_secs(12)).await;
    let attempts = support::operator_writes_since(&cluster, since)
        .into_iter()
        .filter(|w| w.contains("deployments"))
        .count();
    assert!(attempts <= 3, "{attempts} attempts in 12 s");

    // Fixed by the user (the companion image): applied, and Ready once its pod passes.
    cluster
        .apply_app(json!({"metadata": {"name": "refused"}, "spec": {}}))
        .await
        .unwrap();
    app_when(
        &cluster,
        "refused",
        "Ready after the fix",
        support::READY_TIMEOUT,
        |a| is(a, "Ready", "True") && is(a, "Degraded", "False"),
    )
    .await;
}
