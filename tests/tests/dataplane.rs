//! Traffic goes the way a cluster carries it: kube-proxy routes ClusterIPs and NodePorts (from
//! the environment and from pods) and honours Service affinity; CoreDNS resolves
//! `NAME.NAMESPACE.svc` in pods and in commands run inside the environment; pods reach the API
//! server through the `kubernetes` Service with their ServiceAccount's CA.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::PostParams;
use kube::{Api, Client};
use mcp_testenv::mcp::Endpoint;
use mcp_testenv::wait::until;
use mcp_testenv::{TestEnv, kubelet, workspace_binary};
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(60);
const COMPANION: &str = "ghcr.io/mcp-operator/mcp-server";

async fn env() -> TestEnv {
    TestEnv::builder()
        .image("python", ["python3", "-m", "http.server"])
        .image("shell", ["sh", "-c"])
        .image(
            COMPANION,
            [workspace_binary("mcp-server")
                .expect("mcp-server is built")
                .display()
                .to_string()],
        )
        .start()
        .await
        .expect("test environment starts")
}

fn from<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).expect("valid object")
}

/// A Deployment of `replicas` pods of `image` serving HTTP on 8080, ready when `ready_path`
/// answers.
fn deployment(
    name: &str,
    replicas: i32,
    image: &str,
    args: &[&str],
    ready_path: &str,
) -> Deployment {
    from(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 2,
                    "containers": [{
                        "name": "main",
                        "image": image,
                        "args": args,
                        "ports": [{"name": "http", "containerPort": 8080}],
                        "readinessProbe": {"httpGet": {"path": ready_path, "port": "http"}, "periodSeconds": 1},
                    }],
                },
            },
        },
    }))
}

/// A Service named `name` in front of the pods of Deployment `app`, port 80 → 8080.
fn service(name: &str, app: &str, extra: serde_json::Value) -> Service {
    let mut spec = json!({"selector": {"app": app}, "ports": [{"port": 80, "targetPort": 8080}]});
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    from(json!({"metadata": {"name": name}, "spec": spec}))
}

async fn available(client: &Client, name: &str, replicas: i32) {
    let deployments: Api<Deployment> = Api::default_namespaced(client.clone());
    until(
        &format!("{name} to have {replicas} ready replicas"),
        TIMEOUT,
        || async {
            let status = deployments
                .get(name)
                .await
                .unwrap()
                .status
                .unwrap_or_default();
            if status.ready_replicas == Some(replicas) {
                Ok(())
            } else {
                Err(status)
            }
        },
    )
    .await;
}

async fn cluster_ip(client: &Client, name: &str) -> IpAddr {
    let services: Api<Service> = Api::default_namespaced(client.clone());
    let svc = services.get(name).await.unwrap();
    svc.spec
        .and_then(|s| s.cluster_ip)
        .expect("a ClusterIP")
        .parse()
        .expect("an IP")
}

/// Runs `script` in a pod of image `shell` to completion and returns its output.
async fn run_in_pod(env: &TestEnv, name: &str, script: &str) -> String {
    let pods: Api<Pod> = Api::default_namespaced(env.client());
    let pod: Pod = from(json!({
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "shell", "args": [script]}],
        },
    }));
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let phase = until(&format!("pod {name} to finish"), TIMEOUT, || async {
        let phase = pods
            .get(name)
            .await
            .unwrap()
            .status
            .and_then(|s| s.phase)
            .unwrap_or_default();
        match phase.as_str() {
            "Succeeded" | "Failed" => Ok(phase),
            _ => Err(phase),
        }
    })
    .await;
    let log = std::fs::read_to_string(env.dir().join(format!("logs/pods/default_{name}/main.log")))
        .unwrap_or_default();
    assert_eq!(phase, "Succeeded", "pod {name} failed; its output:\n{log}");
    log
}

#[tokio::test]
async fn cluster_ips_route_and_cluster_names_resolve_from_the_environment_and_from_pods() {
    let env = env().await;
    let client = env.client();
    let pp = PostParams::default();
    let deployments: Api<Deployment> = Api::default_namespaced(client.clone());
    let services: Api<Service> = Api::default_namespaced(client.clone());
    let web = deployment(
        "web",
        2,
        "python:3.11",
        &["8080", "--bind", "0.0.0.0", "--directory", "/tmp"],
        "/",
    );
    deployments.create(&pp, &web).await.unwrap();
    let node_port =
        json!({"type": "NodePort", "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30555}]});
    services
        .create(&pp, &service("web", "web", node_port))
        .await
        .unwrap();
    available(&client, "web", 2).await;
    let ip = cluster_ip(&client, "web").await;

    // From the environment (the node): the ClusterIP, the NodePort on the node's address, and
    // the name through cluster DNS.
    // kube-proxy programs a new Service within its sync period.
    let answers = |addr: SocketAddr| {
        let env = &env;
        move || async move {
            match env.http_get(addr, "/").await {
                Ok((200, _)) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        }
    };
    let service = SocketAddr::new(ip, 80);
    until(
        &format!("ClusterIP {service} to answer"),
        TIMEOUT,
        answers(service),
    )
    .await;
    let node: SocketAddr = format!("{}:30555", kubelet::HOST_IP).parse().unwrap();
    until(
        &format!("NodePort {node} to answer"),
        TIMEOUT,
        answers(node),
    )
    .await;
    let out = env
        .command("getent")
        .args(["hosts", "web.default.svc"])
        .output()
        .unwrap();
    let resolved = String::from_utf8_lossy(&out.stdout);
    assert!(
        resolved.starts_with(&ip.to_string()),
        "web.default.svc resolves to {ip} in the environment: {resolved:?} {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // From a pod: short names through the search path, the Service by name, and the API server
    // through the `kubernetes` Service, verified with the ServiceAccount's CA.
    let script = "set -e
        cat /etc/resolv.conf
        getent hosts web
        getent hosts web.default.svc.cluster.local
        curl -sS -o /dev/null -w 'web %{http_code}\\n' http://web/
        curl -sS --cacert /var/run/secrets/kubernetes.io/serviceaccount/ca.crt \
             -o /dev/null -w 'api %{http_code}\\n' https://kubernetes.default.svc/version";
    let log = run_in_pod(&env, "dns-check", script).await;
    assert!(log.contains("nameserver 10.96.0.10"), "{log}");
    assert!(
        log.contains("search default.svc.cluster.local svc.cluster.local cluster.local"),
        "{log}"
    );
    assert!(log.contains("options ndots:5"), "{log}");
    assert_eq!(
        log.lines()
            .filter(|l| l.starts_with(&ip.to_string()))
            .count(),
        2,
        "both names resolve to {ip}: {log}"
    );
    assert!(log.contains("web 200"), "{log}");
    assert!(log.contains("api 200"), "{log}");
}

/// The MCP endpoint of the Service at ClusterIP `ip`, for a client inside the environment.
fn endpoint(env: &TestEnv, ip: IpAddr) -> Endpoint {
    let addr = SocketAddr::new(ip, 80);
    Endpoint::new(env.connector(addr), addr.to_string(), "/mcp")
}

#[tokio::test]
async fn client_ip_affinity_keeps_sessions_on_one_pod_and_none_spreads_requests() {
    let env = env().await;
    let client = env.client();
    let pp = PostParams::default();
    let deployments: Api<Deployment> = Api::default_namespaced(client.clone());
    let services: Api<Service> = Api::default_namespaced(client.clone());
    deployments
        .create(&pp, &deployment("who", 3, COMPANION, &[], "/readyz"))
        .await
        .unwrap();
    let sticky = json!({"sessionAffinity": "ClientIP",
                        "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 600}}});
    services
        .create(&pp, &service("who-sticky", "who", sticky))
        .await
        .unwrap();
    services
        .create(&pp, &service("who-spread", "who", json!({})))
        .await
        .unwrap();
    available(&client, "who", 3).await;

    // kube-proxy programs new endpoints within its sync period: wait until all three answer.
    let spread = endpoint(&env, cluster_ip(&client, "who-spread").await);
    let mut seen = BTreeSet::new();
    let deadline = std::time::Instant::now() + TIMEOUT;
    while seen.len() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "only {seen:?} answered"
        );
        seen.extend(spread.call_tool_stateless("whoami", json!({})).await.ok());
    }

    // ClientIP: 50 sessions of one client, each request on a new connection, all on one pod.
    let sticky = endpoint(&env, cluster_ip(&client, "who-sticky").await);
    let mut pods: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..50 {
        let mut session = sticky.initialize(false).await.expect("initialize");
        for _ in 0..2 {
            let pod = sticky
                .call_tool(&mut session, "whoami", json!({}))
                .await
                .expect("a sticky session's call reaches its pod");
            *pods.entry(pod).or_default() += 1;
        }
        assert_eq!(sticky.close(&session).await, Ok(204));
    }
    println!("ClientIP affinity, 50 sessions x 2 calls: {pods:?}");
    assert_eq!(pods.len(), 1, "every call on one pod: {pods:?}");

    // None: each connection is placed anew, so requests spread over the pods ...
    let mut pods: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..50 {
        let pod = spread
            .call_tool_stateless("whoami", json!({}))
            .await
            .expect("a stateless call");
        *pods.entry(pod).or_default() += 1;
    }
    println!("no affinity, 50 stateless calls: {pods:?}");
    assert_eq!(pods.len(), 3, "calls reach all three pods: {pods:?}");

    // ... and a stateful session's requests land on pods that do not hold it.
    let mut lost = 0;
    for _ in 0..20 {
        let session = async {
            let mut session = spread.initialize(false).await?;
            spread.call_tool(&mut session, "whoami", json!({})).await
        };
        if session.await.is_err() {
            lost += 1;
        }
    }
    println!("no affinity, 20 sessions: {lost} had a request reach a pod without the session");
    assert!(
        lost > 0,
        "without affinity some calls miss their session's pod"
    );
}
