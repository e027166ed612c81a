//! The external probe on the real data plane: apps exposed through Traefik's TLS entry point
//! with certificates of a test CA (trusted through `probe.external.caBundleSecretRef`), their
//! public names sent to Traefik's ClusterIP with `--external-probe-resolve`. A good certificate
//! makes the app `Reachable` (and `kubectl wait --for=condition=Reachable` returns), with its
//! expiry and the handshake's latency in `status.external`; an expired certificate, a
//! certificate for another name, an Ingress deleted by hand and a path that answers 404 each
//! make it `Reachable=False` with their own reason. Between results the operator writes nothing.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use mcp_operator::api::McpApp;
use mcp_testenv::ingress::{CLASS, SERVICE_TLS};
use mcp_testenv::wait::until;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use serde_json::json;
use support::{
    Cluster, OPERATOR_USER, READY_TIMEOUT, app_when, condition, from, operator_settled,
    operator_writes_since,
};

const METRICS_PORT: u16 = 18301;
const CA_SECRET: &str = "test-ca";
const DAY: u64 = 86_400;
/// Every app's external period: the schema's minimum.
const PERIOD: Duration = Duration::from_secs(10);

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// A CA of this test, whose certificate the apps' CA bundle Secret holds.
struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl TestCa {
    fn new() -> Self {
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "reachable test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        TestCa {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A serving certificate and key (PEM) for `name`, valid between the Unix times given.
    fn serving(&self, name: &str, not_before: u64, not_after: u64) -> (String, String) {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.subject_alt_names = vec![SanType::DnsName(name.try_into().expect("a DNS name"))];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let epoch = rcgen::date_time_ymd(1970, 1, 1);
        params.not_before = epoch + Duration::from_secs(not_before);
        params.not_after = epoch + Duration::from_secs(not_after);
        let cert = params.signed_by(&key, &self.issuer).expect("certificate");
        (cert.pem(), key.serialize_pem())
    }
}

async fn create_secret(cluster: &Cluster, secret: serde_json::Value) {
    let secrets: Api<Secret> = Api::default_namespaced(cluster.client.clone());
    secrets
        .create(&PostParams::default(), &from(secret))
        .await
        .expect("Secret created");
}

async fn tls_secret(cluster: &Cluster, name: &str, (cert, key): (String, String)) {
    create_secret(
        cluster,
        json!({"metadata": {"name": name}, "type": "kubernetes.io/tls",
               "stringData": {"tls.crt": cert, "tls.key": key}}),
    )
    .await;
}

fn external() -> serde_json::Value {
    json!({"periodSeconds": PERIOD.as_secs(), "timeoutSeconds": 5,
           "caBundleSecretRef": {"name": CA_SECRET, "key": "ca.crt"}})
}

/// An app of the companion's tools at `host` through Traefik, with TLS from Secret `tls`.
async fn exposed(cluster: &Cluster, name: &str, host: &str, tls: &str) {
    cluster
        .apply_app(json!({"metadata": {"name": name}, "spec": {
            "ingress": {"className": CLASS, "host": host, "tls": {"secretName": tls}},
            "probe": {"periodSeconds": 2, "timeoutSeconds": 2, "external": external()},
        }}))
        .await
        .expect("app applies");
}

/// The app once its Reachable condition has `status` and `reason`.
async fn reachable(cluster: &Cluster, name: &str, status: &str, reason: &str) -> McpApp {
    app_when(
        cluster,
        name,
        &format!("{name}: Reachable={status} ({reason})"),
        READY_TIMEOUT,
        |a| condition(a, "Reachable").is_some_and(|c| c.status == status && c.reason == reason),
    )
    .await
}

fn not_after(app: &McpApp) -> Option<i64> {
    let external = app.status.as_ref()?.external.as_ref()?;
    Some(external.certificate_not_after.as_ref()?.0.as_second())
}

async fn metrics(cluster: &Cluster) -> String {
    let addr = format!("127.0.0.1:{METRICS_PORT}").parse().unwrap();
    let (code, body) = cluster
        .env
        .http_get(addr, "/metrics")
        .await
        .expect("metrics");
    assert_eq!(code, 200);
    body
}

#[tokio::test]
async fn the_public_url_is_probed_with_verified_tls_and_each_failure_has_its_reason() {
    let cluster = Cluster::start_with(|env| env.ingress(0)).await;
    let ca = TestCa::new();
    let t = now();
    create_secret(
        &cluster,
        json!({"metadata": {"name": CA_SECRET}, "stringData": {"ca.crt": ca.pem}}),
    )
    .await;
    // Ten days left: within the default 14 days of warning.
    let demo_expiry = t + 10 * DAY;
    tls_secret(
        &cluster,
        "demo-tls",
        ca.serving("demo.example.test", t - DAY, demo_expiry),
    )
    .await;
    let expired_at = t - 2 * DAY;
    tls_secret(
        &cluster,
        "expired-tls",
        ca.serving("expired.example.test", t - 30 * DAY, expired_at),
    )
    .await;
    tls_secret(
        &cluster,
        "other-tls",
        ca.serving("other.example.test", t - DAY, t + 90 * DAY),
    )
    .await;
    tls_secret(
        &cluster,
        "byhand-tls",
        ca.serving("byhand.example.test", t - DAY, t + 90 * DAY),
    )
    .await;

    let hosts = ["demo", "expired", "wrong", "byhand"];
    let resolve: Vec<String> = hosts
        .iter()
        .map(|h| format!("--external-probe-resolve={h}.example.test={SERVICE_TLS}"))
        .collect();
    let resolve: Vec<&str> = resolve.iter().map(String::as_str).collect();
    let _operator = cluster
        .start_operator("operator", METRICS_PORT, &resolve)
        .await;

    exposed(&cluster, "demo", "demo.example.test", "demo-tls").await;
    exposed(&cluster, "expired", "expired.example.test", "expired-tls").await;
    // A certificate for another name than the host: Traefik has none for the host.
    exposed(&cluster, "wrong", "wrong.example.test", "other-tls").await;
    // Exposed by an Ingress the operator does not manage, probed at an explicit URL.
    let mut byhand_probe = external();
    byhand_probe["url"] = json!("https://byhand.example.test/mcp");
    cluster
        .apply_app(json!({"metadata": {"name": "byhand"}, "spec": {
            "probe": {"periodSeconds": 2, "timeoutSeconds": 2, "external": byhand_probe},
        }}))
        .await
        .expect("app applies");
    let ingresses: Api<Ingress> = Api::default_namespaced(cluster.client.clone());
    ingresses
        .create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": "byhand"}, "spec": {
                "ingressClassName": CLASS,
                "tls": [{"hosts": ["byhand.example.test"], "secretName": "byhand-tls"}],
                "rules": [{"host": "byhand.example.test", "http": {"paths": [{
                    "path": "/", "pathType": "Prefix",
                    "backend": {"service": {"name": "byhand", "port": {"number": 80}}},
                }]}}],
            }})),
        )
        .await
        .expect("Ingress created");

    // kubectl waits for it like for Ready.
    let kubectl = mcp_testenv::binaries::Binaries::locate()
        .expect("kubectl built")
        .kubectl;
    let out = tokio::process::Command::new(kubectl)
        .env("KUBECONFIG", cluster.env.kubeconfig())
        .args([
            "wait",
            "--for=condition=Reachable",
            "--timeout=150s",
            "mcpapp/demo",
        ])
        .output()
        .await
        .expect("kubectl runs");
    let demo = cluster.apps().get("demo").await.unwrap();
    assert!(
        out.status.success(),
        "kubectl wait: {}{}; status {:?}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        demo.status
    );
    let shown = demo.status.as_ref().unwrap().external.clone().unwrap();
    assert_eq!(shown.url, "https://demo.example.test/mcp");
    assert_eq!(not_after(&demo), Some(demo_expiry as i64));
    assert!(shown.certificate_expires_soon, "{shown:?}");
    let latency = shown.latency_milliseconds.expect("a latency");
    assert!((0..5000).contains(&latency), "{latency} ms");
    assert!(shown.probe_time.is_some());

    let expired = reachable(&cluster, "expired", "False", "CertificateExpired").await;
    assert_eq!(not_after(&expired), Some(expired_at as i64));
    let message = condition(&expired, "Reachable").unwrap().message;
    assert!(
        message.contains("expired at") && message.contains("renew"),
        "{message}"
    );

    let wrong = reachable(&cluster, "wrong", "False", "CertificateNotValidForHost").await;
    let message = condition(&wrong, "Reachable").unwrap().message;
    assert!(message.contains("not for wrong.example.test"), "{message}");

    reachable(&cluster, "byhand", "True", "HandshakeSucceeded").await;

    // The expiring certificate is a Warning Event, once.
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::default_namespaced(cluster.client.clone());
    until(
        "a CertificateExpiresSoon Event for demo",
        READY_TIMEOUT,
        || async {
            let list = events.list(&Default::default()).await.unwrap();
            let found: Vec<_> = list
                .items
                .into_iter()
                .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("demo"))
                .filter(|e| e.reason.as_deref() == Some("CertificateExpiresSoon"))
                .collect();
            match found.as_slice() {
                [one] if one.type_.as_deref() == Some("Warning") => Ok(()),
                other => Err(format!("{} such Events", other.len())),
            }
        },
    )
    .await;

    // Per-app series for the alerts.
    let text = metrics(&cluster).await;
    for line in [
        "mcp_operator_app_reachable{namespace=\"default\",name=\"demo\"} 1",
        "mcp_operator_app_reachable{namespace=\"default\",name=\"expired\"} 0",
        "mcp_operator_app_certificate_expiring{namespace=\"default\",name=\"demo\"} 1",
        "mcp_operator_app_certificate_expiring{namespace=\"default\",name=\"byhand\"} 0",
        "mcp_operator_app_ready{namespace=\"default\",name=\"demo\"} 1",
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }

    // Handshakes every 10 s find the same pictures: the operator writes nothing.
    let settled = operator_settled(&cluster).await;
    tokio::time::sleep(PERIOD * 2 + Duration::from_secs(5)).await;
    let writes = operator_writes_since(&cluster, settled);
    assert!(
        writes.is_empty(),
        "{OPERATOR_USER} wrote at rest: {writes:?}"
    );

    // The Ingress deleted by hand: Traefik has no certificate for the host any more and serves
    // its default one.
    ingresses
        .delete("byhand", &DeleteParams::default())
        .await
        .expect("Ingress deleted");
    let byhand = reachable(&cluster, "byhand", "False", "CertificateNotValidForHost").await;
    let message = condition(&byhand, "Reachable").unwrap().message;
    assert!(message.contains("Ingress or route"), "{message}");

    // A path that is not MCP's: the status the server answered.
    let apps = cluster.apps();
    apps.patch(
        "demo",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"probe": {"external": {
            "url": "https://demo.example.test/nothing-here"}}}})),
    )
    .await
    .unwrap();
    let demo = reachable(&cluster, "demo", "False", "HttpStatus").await;
    let message = condition(&demo, "Reachable").unwrap().message;
    assert!(message.contains("HTTP 404"), "{message}");

    // Off: the condition, the status and the series go.
    apps.patch(
        "expired",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"probe": {"external": {"enabled": false}}}})),
    )
    .await
    .unwrap();
    app_when(
        &cluster,
        "expired",
        "no Reachable condition",
        READY_TIMEOUT,
        |a| {
            condition(a, "Reachable").is_none()
                && a.status.as_ref().is_some_and(|s| s.external.is_none())
        },
    )
    .await;
    until(
        "expired's external series removed",
        Duration::from_secs(10),
        || async {
            let text = metrics(&cluster).await;
            match text
                .contains("mcp_operator_app_reachable{namespace=\"default\",name=\"expired\"}")
            {
                false => Ok(()),
                true => Err("still there"),
            }
        },
    )
    .await;
}
