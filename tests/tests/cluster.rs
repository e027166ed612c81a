//! The test environment proves itself on the real control plane: Deployments become Available
//! with processes as pods, EndpointSlices list real pod IPs that answer HTTP, readiness gates
//! hold pods back, the garbage collector's deletions stop processes, crashing containers
//! restart with back-off, and `kubectl logs` reaches containers' output through the kubelet.

use std::net::SocketAddr;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use mcp_testenv::TestEnv;
use mcp_testenv::binaries::Binaries;
use mcp_testenv::kubelet::HOST_IP;
use mcp_testenv::kubelet::server::KUBELET_PORT;
use mcp_testenv::wait::{processes_with, until};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

const TIMEOUT: Duration = Duration::from_secs(60);

/// An environment where image `python` runs `python3 -m http.server`.
async fn env() -> TestEnv {
    TestEnv::builder()
        .image("python", ["python3", "-m", "http.server"])
        .restart_backoff(Duration::from_secs(2))
        .start()
        .await
        .expect("test environment starts")
}

fn from<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).expect("valid object")
}

/// A Deployment of `python` serving on 8080, with `marker` on its command line.
fn web_deployment(name: &str, replicas: i32, marker: &str) -> Deployment {
    from(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 5,
                    "containers": [{
                        "name": "web",
                        "image": "python:3.11",
                        "args": ["$(PORT)", "--directory", "/tmp", "--bind", "0.0.0.0"],
                        "env": [{"name": "PORT", "value": "8080"}, {"name": "MARKER", "value": marker}],
                        "ports": [{"name": "http", "containerPort": 8080}],
                        "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1},
                    }],
                },
            },
        },
    }))
}

fn service(name: &str) -> Service {
    from(json!({
        "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]},
    }))
}

/// The addresses of `service`'s EndpointSlices, with their `ready` condition.
async fn endpoints(client: &Client, service: &str) -> Vec<(String, bool)> {
    let slices: Api<EndpointSlice> = Api::default_namespaced(client.clone());
    let lp = ListParams::default().labels(&format!("kubernetes.io/service-name={service}"));
    let mut out: Vec<(String, bool)> = slices
        .list(&lp)
        .await
        .expect("list endpointslices")
        .items
        .into_iter()
        .flat_map(|s| s.endpoints.into_iter().flatten())
        .flat_map(|e| {
            let ready = e.conditions.and_then(|c| c.ready).unwrap_or(false);
            e.addresses.into_iter().map(move |a| (a, ready))
        })
        .collect();
    out.sort();
    out
}

/// The processes whose command line carries `marker` (passed in an env var, the
/// `MARKER` value appears in /proc only through argv, so markers are put in argv).
fn count(marker: &str) -> usize {
    processes_with(marker).len()
}

#[tokio::test]
async fn two_replica_deployment_becomes_available_and_each_pod_ip_answers() {
    let env = env().await;
    let client = env.client();
    let deployments: Api<Deployment> = Api::default_namespaced(client.clone());
    let services: Api<Service> = Api::default_namespaced(client.clone());
    let pp = PostParams::default();
    deployments
        .create(&pp, &web_deployment("web", 2, "m-avail"))
        .await
        .unwrap();
    services.create(&pp, &service("web")).await.unwrap();

    until(
        "the Deployment to be Available with 2 ready replicas",
        TIMEOUT,
        || async {
            let d = deployments.get("web").await.unwrap();
            let status = d.status.unwrap_or_default();
            let available = status.conditions.iter().flatten().any(|c| {
                c.type_.as_deref() == Some("Available") && c.status.as_deref() == Some("True")
            });
            if available && status.ready_replicas == Some(2) {
                Ok(())
            } else {
                Err(status)
            }
        },
    )
    .await;

    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let mut ips: Vec<String> = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|p| p.status.and_then(|s| s.pod_ip))
        .collect();
    ips.sort();
    assert_eq!(ips.len(), 2);
    assert_ne!(ips[0], ips[1], "every pod has its own IP");

    let listed = until(
        "the EndpointSlice to list both pods as ready",
        TIMEOUT,
        || async {
            let eps = endpoints(&client, "web").await;
            if eps.len() == 2 && eps.iter().all(|(_, ready)| *ready) {
                Ok(eps)
            } else {
                Err(eps)
            }
        },
    )
    .await;
    let listed: Vec<String> = listed.into_iter().map(|(ip, _)| ip).collect();
    assert_eq!(listed, ips);

    for ip in &ips {
        let addr: SocketAddr = format!("{ip}:8080").parse().unwrap();
        let (status, body) = env.http_get(addr, "/").await.expect("pod answers");
        assert_eq!(status, 200, "GET http://{addr}/");
        assert!(
            body.contains("Directory listing"),
            "python's http.server answered: {body}"
        );
    }
}

#[tokio::test]
async fn readiness_gate_holds_a_pod_back_until_its_condition_is_true() {
    let env = env().await;
    let client = env.client();
    let gate = "example.com/handshake";
    let pod: Pod = from(json!({
        "metadata": {"name": "gated", "labels": {"app": "gated"}},
        "spec": {
            "readinessGates": [{"conditionType": gate}],
            "containers": [{
                "name": "web", "image": "python", "args": ["8080"],
                "ports": [{"containerPort": 8080}],
            }],
        },
    }));
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let services: Api<Service> = Api::default_namespaced(client.clone());
    pods.create(&PostParams::default(), &pod).await.unwrap();
    services
        .create(&PostParams::default(), &service("gated"))
        .await
        .unwrap();

    let condition = |p: &Pod, t: &str| {
        p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == t).cloned())
    };
    let ready = until(
        "containers ready while the gate holds the pod",
        TIMEOUT,
        || async {
            let p = pods.get("gated").await.unwrap();
            match (condition(&p, "ContainersReady"), condition(&p, "Ready")) {
                (Some(c), Some(r)) if c.status == "True" => Ok(r),
                other => Err(other),
            }
        },
    )
    .await;
    assert_eq!(ready.status, "False");
    assert_eq!(ready.reason.as_deref(), Some("ReadinessGatesNotReady"));

    let eps = until("the endpoint, listed as not ready", TIMEOUT, || async {
        let eps = endpoints(&client, "gated").await;
        if eps.len() == 1 { Ok(eps) } else { Err(eps) }
    })
    .await;
    assert!(
        !eps[0].1,
        "a gated pod must not be a ready endpoint: {eps:?}"
    );

    let patch =
        json!({"status": {"conditions": [{"type": gate, "status": "True", "reason": "Test"}]}});
    pods.patch_status("gated", &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .unwrap();
    until("the pod to become Ready", TIMEOUT, || async {
        let p = pods.get("gated").await.unwrap();
        match condition(&p, "Ready") {
            Some(r) if r.status == "True" => Ok(()),
            other => Err(other),
        }
    })
    .await;
    until("the endpoint to become ready", TIMEOUT, || async {
        let eps = endpoints(&client, "gated").await;
        if eps.len() == 1 && eps[0].1 {
            Ok(())
        } else {
            Err(eps)
        }
    })
    .await;
}

#[tokio::test]
async fn scaling_down_and_deleting_stop_the_processes() {
    let env = env().await;
    let deployments: Api<Deployment> = Api::default_namespaced(env.client());
    let marker = "--directory=/tmp/scale-marker";
    let mut d = web_deployment("scaled", 3, marker);
    // The marker must reach the command line to be seen in /proc.
    d.spec.template.spec.as_mut().unwrap().containers[0].args =
        Some(vec!["8080".into(), marker.into()]);
    deployments
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
    until("3 processes", TIMEOUT, || async {
        let n = count(marker);
        if n == 3 { Ok(()) } else { Err(n) }
    })
    .await;

    let scale = json!({"spec": {"replicas": 1}});
    deployments
        .patch_scale("scaled", &PatchParams::default(), &Patch::Merge(scale))
        .await
        .unwrap();
    until("1 process after scaling down", TIMEOUT, || async {
        let n = count(marker);
        if n == 1 { Ok(()) } else { Err(n) }
    })
    .await;

    // Foreground deletion: the garbage collector removes the ReplicaSet and its pods.
    deployments
        .delete("scaled", &DeleteParams::foreground())
        .await
        .unwrap();
    until(
        "no process after deleting the Deployment",
        TIMEOUT,
        || async {
            let n = count(marker);
            if n == 0 { Ok(()) } else { Err(n) }
        },
    )
    .await;
    let pods: Api<Pod> = Api::default_namespaced(env.client());
    until("no pod left", TIMEOUT, || async {
        let left = pods
            .list(&ListParams::default().labels("app=scaled"))
            .await
            .unwrap();
        if left.items.is_empty() {
            Ok(())
        } else {
            Err(left.items.len())
        }
    })
    .await;
}

#[tokio::test]
async fn crashing_container_restarts_and_shows_its_restart_count() {
    let env = env().await;
    let pods: Api<Pod> = Api::default_namespaced(env.client());
    let pod: Pod = from(json!({
        "metadata": {"name": "crasher"},
        "spec": {"containers": [{
            "name": "crash", "image": "busybox",
            "command": ["sh", "-c", "echo starting; exit 3"],
        }]},
    }));
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let status = until("two restarts and a CrashLoopBackOff", TIMEOUT, || async {
        let p = pods.get("crasher").await.unwrap();
        let cs = p
            .status
            .and_then(|s| s.container_statuses)
            .and_then(|cs| cs.into_iter().next());
        match cs {
            Some(c)
                if c.restart_count >= 2
                    && c.state
                        .as_ref()
                        .and_then(|s| s.waiting.as_ref())
                        .and_then(|w| w.reason.as_deref())
                        == Some("CrashLoopBackOff") =>
            {
                Ok(c)
            }
            other => Err(other),
        }
    })
    .await;
    let last = status
        .last_state
        .and_then(|s| s.terminated)
        .expect("last state terminated");
    assert_eq!(last.exit_code, 3);
    assert_eq!(last.reason.as_deref(), Some("Error"));
    // One file per run, named by its restart count; `crash.log` is the newest.
    let logs = env.dir().join("logs/pods/default_crasher");
    for run in ["crash/0.log", "crash/1.log", "crash/2.log", "crash.log"] {
        let log = std::fs::read_to_string(logs.join(run)).unwrap();
        assert_eq!(log, "starting\n", "{run}");
    }
}

/// `kubectl ARGS` from the host against `env`: its stdout, or its stderr if it failed.
async fn kubectl(env: &TestEnv, args: &[&str]) -> Result<String, String> {
    let out = kubectl_command(env, args)
        .output()
        .await
        .expect("kubectl runs");
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    if out.status.success() {
        Ok(text(out.stdout))
    } else {
        Err(text(out.stderr))
    }
}

fn kubectl_command(env: &TestEnv, args: &[&str]) -> tokio::process::Command {
    let bins = Binaries::locate().expect("control plane binaries");
    let mut cmd = tokio::process::Command::new(bins.kubectl);
    cmd.arg("--kubeconfig").arg(env.kubeconfig()).args(args);
    cmd
}

#[tokio::test]
async fn kubectl_logs_reads_container_output_through_the_api_server_and_the_kubelet() {
    let env = env().await;
    let pods: Api<Pod> = Api::default_namespaced(env.client());
    let pp = PostParams::default();
    let two: Pod = from(json!({
        "metadata": {"name": "two"},
        "spec": {"containers": [
            {"name": "ticker", "image": "busybox",
             "command": ["sh", "-c", "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.3; done"]},
            {"name": "side", "image": "busybox",
             "command": ["sh", "-c", "echo side-1; echo side-2; echo side-3; exec sleep 3600"]},
        ]},
    }));
    // Fails its first run only: the emptyDir keeps the count of runs across restarts.
    let flaky: Pod = from(json!({
        "metadata": {"name": "flaky"},
        "spec": {
            "volumes": [{"name": "state", "emptyDir": {}}],
            "containers": [{
                "name": "app", "image": "busybox",
                "volumeMounts": [{"name": "state", "mountPath": "/state"}],
                "command": ["sh", "-c", "n=$(($(cat /state/runs 2>/dev/null || echo 0) + 1)); \
                    echo $n > /state/runs; echo run $n; [ $n -ge 2 ] || exit 3; exec sleep 3600"],
            }],
        },
    }));
    let once: Pod = from(json!({
        "metadata": {"name": "once"},
        "spec": {"restartPolicy": "Never", "containers": [{
            "name": "job", "image": "busybox", "command": ["sh", "-c", "echo finished"],
        }]},
    }));
    for pod in [two, flaky, once] {
        pods.create(&pp, &pod).await.unwrap();
    }

    // -c picks one container of two.
    let side = until("the side container's output", TIMEOUT, || async {
        match kubectl(&env, &["logs", "two", "-c", "side"]).await {
            Ok(out) if out.lines().count() == 3 => Ok(out),
            other => Err(other),
        }
    })
    .await;
    assert_eq!(side, "side-1\nside-2\nside-3\n");
    let side_with = async |flag: &str| kubectl(&env, &["logs", "two", "-c", "side", flag]).await;
    assert_eq!(side_with("--tail=2").await, Ok("side-2\nside-3\n".into()));
    assert_eq!(side_with("--limit-bytes=9").await, Ok("side-1\nsi".into()));
    let no_previous = side_with("--previous").await.unwrap_err();
    assert!(
        no_previous.contains(r#"previous terminated container "side" in pod "two" not found"#),
        "{no_previous}"
    );
    let timestamps = side_with("--timestamps").await.unwrap_err();
    assert!(
        timestamps.contains("timestamps is not supported"),
        "{timestamps}"
    );

    // -f with --tail=0 sends only what is written after the request: a tick newer than the last.
    let last = kubectl(&env, &["logs", "two", "-c", "ticker", "--tail=1"]).await;
    let tick = |line: &str| {
        line.trim()
            .strip_prefix("tick ")
            .and_then(|n| n.parse::<u32>().ok())
    };
    let before = last.as_deref().ok().and_then(tick).expect("a tick line");
    let mut follow = kubectl_command(&env, &["logs", "-f", "--tail=0", "two", "-c", "ticker"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("kubectl logs -f starts");
    let mut lines = BufReader::new(follow.stdout.take().expect("stdout")).lines();
    for _ in 0..2 {
        let line = tokio::time::timeout(TIMEOUT, lines.next_line())
            .await
            .expect("a line while following")
            .unwrap()
            .expect("the stream goes on");
        assert!(
            tick(&line).is_some_and(|n| n > before),
            "{line} after tick {before}"
        );
    }
    follow.kill().await.unwrap();

    // --previous is the run that crashed; the current one is the run after it.
    until("flaky's second run", TIMEOUT, || async {
        match kubectl(&env, &["logs", "flaky"]).await {
            Ok(out) if out == "run 2\n" => Ok(()),
            other => Err(other),
        }
    })
    .await;
    assert_eq!(
        kubectl(&env, &["logs", "flaky", "--previous"]).await,
        Ok("run 1\n".into())
    );

    // Following a container that has ended returns once its output is read.
    until("once to succeed", TIMEOUT, || async {
        let phase = pods.get("once").await.unwrap().status.and_then(|s| s.phase);
        if phase.as_deref() == Some("Succeeded") {
            Ok(())
        } else {
            Err(phase)
        }
    })
    .await;
    let followed = tokio::time::timeout(TIMEOUT, kubectl(&env, &["logs", "-f", "once"]))
        .await
        .expect("follow ends with the container");
    assert_eq!(followed, Ok("finished\n".into()));

    // The kubelet's port itself: a client certificate of the cluster's CA is required.
    let kubelet = |path: &str, cert: bool| {
        let url = format!("https://{HOST_IP}:{KUBELET_PORT}/containerLogs/default/two/{path}");
        let mut curl = env.command("curl");
        curl.arg("-sS")
            .arg("--cacert")
            .arg(env.dir().join("ca.crt"));
        if cert {
            curl.arg("--cert").arg(env.dir().join("admin.crt"));
            curl.arg("--key").arg(env.dir().join("admin.key"));
        }
        let out = curl
            .args(["-w", "|%{http_code}", &url])
            .output()
            .expect("curl runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(kubelet("side", false), "Unauthorized|401");
    assert_eq!(kubelet("side", true), "side-1\nside-2\nside-3\n|200");
    assert_eq!(
        kubelet("nope", true),
        r#"container "nope" not found in pod "two"|404"#
    );
}

#[tokio::test]
async fn containers_get_env_volumes_hostname_and_expanded_args() {
    let env = env().await;
    let client = env.client();
    let secrets: Api<Secret> = Api::default_namespaced(client.clone());
    let config_maps: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let pp = PostParams::default();
    secrets
        .create(&pp, &from(json!({"metadata": {"name": "creds"}, "stringData": {"token": "s3cret", "user": "ada"}})))
        .await
        .unwrap();
    config_maps
        .create(
            &pp,
            &from(
                json!({"metadata": {"name": "settings"}, "data": {"mode": "fast", "level": "3"}}),
            ),
        )
        .await
        .unwrap();
    // The container writes what it sees into an emptyDir and serves that directory.
    let script = "set -e; cd /srv; env | sort > env.txt; hostname > hostname.txt; \
                  cat /etc/creds/token > token.txt; cat /etc/settings/mode > mode.txt; \
                  echo \"$1\" > arg.txt; exec python3 -m http.server 8080";
    let pod: Pod = from(json!({
        "metadata": {"name": "inspect", "labels": {"team": "blue"}},
        "spec": {
            "containers": [{
                "name": "inspect", "image": "busybox",
                "command": ["sh", "-c", script, "sh", "$(USER_NAME)-$(MODE)"],
                "env": [
                    {"name": "USER_NAME", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "user"}}},
                    {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}},
                    {"name": "MY_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    {"name": "MY_TEAM", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['team']"}}},
                    {"name": "GREETING", "value": "hello $(USER_NAME)"},
                ],
                "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "CFG_"}],
                "volumeMounts": [
                    {"name": "www", "mountPath": "/srv"},
                    {"name": "creds", "mountPath": "/etc/creds"},
                    {"name": "settings", "mountPath": "/etc/settings"},
                ],
                "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
            }],
            "volumes": [
                {"name": "www", "emptyDir": {}},
                {"name": "creds", "secret": {"secretName": "creds"}},
                {"name": "settings", "configMap": {"name": "settings"}},
            ],
        },
    }));
    pods.create(&pp, &pod).await.unwrap();
    let ip = until("the pod to be ready", TIMEOUT, || async {
        let p = pods.get("inspect").await.unwrap();
        let s = p.status.clone().unwrap_or_default();
        let ready = s
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        match s.pod_ip {
            Some(ip) if ready => Ok(ip),
            _ => Err(s),
        }
    })
    .await;
    let addr: SocketAddr = format!("{ip}:8080").parse().unwrap();
    let file = |name: &'static str| {
        let env = &env;
        async move {
            let (status, body) = env.http_get(addr, &format!("/{name}")).await.unwrap();
            assert_eq!(status, 200, "{name}");
            body.trim().to_string()
        }
    };
    let vars = file("env.txt").await;
    for expected in [
        "USER_NAME=ada".to_string(),
        "MODE=fast".into(),
        format!("MY_IP={ip}"),
        "MY_TEAM=blue".into(),
        "GREETING=hello ada".into(),
        "CFG_level=3".into(),
        "CFG_mode=fast".into(),
        "HOSTNAME=inspect".into(),
        // The `kubernetes` Service, which kube-proxy routes to the API server.
        "KUBERNETES_SERVICE_HOST=10.96.0.1".into(),
        "KUBERNETES_SERVICE_PORT=443".into(),
    ] {
        assert!(vars.lines().any(|l| l == expected), "{expected} in\n{vars}");
    }
    assert_eq!(file("hostname.txt").await, "inspect");
    assert_eq!(file("token.txt").await, "s3cret");
    assert_eq!(file("mode.txt").await, "fast");
    assert_eq!(file("arg.txt").await, "ada-fast");
}

#[tokio::test]
async fn failing_liveness_probe_restarts_the_container() {
    let env = env().await;
    let pods: Api<Pod> = Api::default_namespaced(env.client());
    let pod: Pod = from(json!({
        "metadata": {"name": "unhealthy"},
        "spec": {"terminationGracePeriodSeconds": 2, "containers": [{
            "name": "web", "image": "python", "args": ["8080"],
            // Nothing listens on 8081: the probe fails from its first run.
            "livenessProbe": {"httpGet": {"path": "/", "port": 8081}, "periodSeconds": 1, "failureThreshold": 2},
        }]},
    }));
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let status = until(
        "a restart caused by the liveness probe",
        TIMEOUT,
        || async {
            let p = pods.get("unhealthy").await.unwrap();
            let cs = p
                .status
                .and_then(|s| s.container_statuses)
                .and_then(|c| c.into_iter().next());
            match cs {
                Some(c) if c.restart_count >= 1 => Ok(c),
                other => Err(other),
            }
        },
    )
    .await;
    let last = status
        .last_state
        .and_then(|s| s.terminated)
        .expect("last state");
    // Stopped with SIGTERM: 128 + 15, as a container runtime reports it.
    assert_eq!(last.exit_code, 143);
}

#[tokio::test]
async fn deletion_waits_for_the_grace_period_before_killing() {
    let env = env().await;
    let pods: Api<Pod> = Api::default_namespaced(env.client());
    let marker = "stubborn-grace-marker";
    let pod: Pod = from(json!({
        "metadata": {"name": "stubborn"},
        "spec": {"terminationGracePeriodSeconds": 3, "containers": [{
            "name": "main", "image": "busybox",
            "command": ["sh", "-c", "trap '' TERM; while true; do sleep 0.2; done", marker],
        }]},
    }));
    pods.create(&PostParams::default(), &pod).await.unwrap();
    until("the container to run", TIMEOUT, || async {
        let n = count(marker);
        if n == 1 { Ok(()) } else { Err(n) }
    })
    .await;
    let deleted_at = std::time::Instant::now();
    pods.delete("stubborn", &DeleteParams::default())
        .await
        .unwrap();
    until("the pod object to be gone", TIMEOUT, || async {
        match pods.get_opt("stubborn").await.unwrap() {
            None => Ok(()),
            Some(p) => Err(p.metadata.deletion_timestamp),
        }
    })
    .await;
    let took = deleted_at.elapsed();
    assert!(
        took >= Duration::from_millis(2900),
        "ignored SIGTERM, killed after the grace period, not before: {took:?}"
    );
    assert_eq!(count(marker), 0, "the process is gone with the pod");
}
