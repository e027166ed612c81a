//! etcd, kube-apiserver and kube-controller-manager, started inside the sandbox.
//!
//! The API server listens on 0.0.0.0:PORT inside the environment, where PORT is the port of the
//! host loopback listener that forwards into it: `https://127.0.0.1:PORT` therefore reaches the API
//! server both from the invoking shell and from inside the environment, and one kubeconfig serves
//! both. Pods reach it through the `kubernetes` Service (10.96.0.1:443), which kube-proxy routes
//! to its advertise address `10.244.0.1:PORT`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::Error;
use crate::binaries::Binaries;
use crate::certs::Pki;
use crate::process::{Supervised, log_tail};
use crate::sandbox::{self, GATEWAY};

/// The Service network (ClusterIPs).
pub const SERVICE_CIDR: &str = "10.96.0.0/16";
/// The `kubernetes` Service: the API server's address for pods, routed by kube-proxy.
pub const KUBERNETES_SERVICE_IP: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 96, 0, 1);
const ETCD_CLIENT: &str = "127.0.0.1:2379";

/// Controllers of kube-controller-manager that need a cloud or a real kubelet's heartbeats.
const DISABLED_CONTROLLERS: &[&str] = &["node-lifecycle-controller", "node-ipam-controller"];

/// Audit policy: every write at Metadata level, and the reads of the users in `reads_of` (none
/// by default), so tests can count API writes by user and verb and benchmarks every request of
/// one client (`logs/audit.log`). Writes of McpApp status carry their request body too (they are
/// small), so a test or benchmark can tell what a status write changed.
fn audit_policy_json(reads_of: &[String]) -> String {
    let writes = concat!(
        r#"{"level":"Request","verbs":["update","patch"],"#,
        r#""resources":[{"group":"mcp-operator.dev","resources":["mcpapps/status"]}]},"#,
        r#"{"level":"Metadata","verbs":["create","update","patch","delete","deletecollection"]}"#
    );
    let reads = if reads_of.is_empty() {
        String::new()
    } else {
        format!(
            r#",{{"level":"Metadata","users":{}}}"#,
            serde_json::to_string(reads_of).expect("strings serialize")
        )
    };
    format!(
        r#"{{"apiVersion":"audit.k8s.io/v1","kind":"Policy","omitStages":["RequestReceived"],"rules":[{writes}{reads},{{"level":"None"}}]}}"#
    )
}

pub struct ControlPlane {
    pub etcd: Supervised,
    pub apiserver: Supervised,
    pub controller_manager: Supervised,
    pub logs: PathBuf,
}

/// Where the control plane's files are and which port it serves on.
#[derive(Debug, Clone)]
pub struct Layout {
    pub dir: PathBuf,
    pub logs: PathBuf,
    pub pki: Pki,
    pub kubeconfig: PathBuf,
    pub port: u16,
    pub bins: Binaries,
    /// Users whose read requests the audit log records too.
    pub audit_reads_of: Vec<String>,
    /// kube-controller-manager's `--kube-api-qps` (its `--kube-api-burst` is twice that), when
    /// not its default of 20.
    pub controller_manager_qps: Option<u32>,
}

impl ControlPlane {
    /// Starts etcd and kube-apiserver and waits until the API server's port accepts connections.
    /// Runs on the sandbox thread.
    pub async fn start_apiserver(l: &Layout) -> Result<(Supervised, Supervised), Error> {
        let etcd_log = l.logs.join("etcd.log");
        let mut etcd = sandbox::command(&l.bins.etcd);
        etcd.args([
            "--name=testenv",
            &format!("--data-dir={}", l.dir.join("etcd").display()),
            &format!("--listen-client-urls=http://{ETCD_CLIENT}"),
            &format!("--advertise-client-urls=http://{ETCD_CLIENT}"),
            "--listen-peer-urls=http://127.0.0.1:2380",
            "--initial-advertise-peer-urls=http://127.0.0.1:2380",
            "--initial-cluster=testenv=http://127.0.0.1:2380",
            // Test data need not survive a power cut; fsync dominates etcd's latency on shared disks.
            "--unsafe-no-fsync",
            "--log-level=warn",
        ]);
        let etcd = Supervised::spawn("etcd", etcd, &etcd_log)?;
        wait_for_port(&etcd, ETCD_CLIENT, &etcd_log).await?;
        let apiserver = Self::start_kube_apiserver(l).await?;
        Ok((etcd, apiserver))
    }

    /// Starts kube-apiserver on the running etcd and waits until its port accepts connections
    /// (also to start it again after a test stopped it). Runs on the sandbox thread.
    pub async fn start_kube_apiserver(l: &Layout) -> Result<Supervised, Error> {
        let audit_policy = l.dir.join("audit-policy.json");
        std::fs::write(&audit_policy, audit_policy_json(&l.audit_reads_of))
            .map_err(|e| Error::io(&audit_policy, e))?;
        let pki = &l.pki;
        let api_log = l.logs.join("kube-apiserver.log");
        let mut api = sandbox::command(&l.bins.kube_apiserver);
        api.args([
            format!("--etcd-servers=http://{ETCD_CLIENT}"),
            "--bind-address=0.0.0.0".into(),
            format!("--secure-port={}", l.port),
            format!("--advertise-address={GATEWAY}"),
            format!("--tls-cert-file={}", pki.serving_cert.display()),
            format!("--tls-private-key-file={}", pki.serving_key.display()),
            format!("--client-ca-file={}", pki.ca_cert.display()),
            // `kubectl logs` goes through the API server to the process kubelet's HTTPS port.
            format!(
                "--kubelet-client-certificate={}",
                pki.kubelet_client_cert.display()
            ),
            format!("--kubelet-client-key={}", pki.kubelet_client_key.display()),
            format!("--kubelet-certificate-authority={}", pki.ca_cert.display()),
            "--kubelet-preferred-address-types=InternalIP".into(),
            format!(
                "--service-account-key-file={}",
                pki.service_account_pub.display()
            ),
            format!(
                "--service-account-signing-key-file={}",
                pki.service_account_key.display()
            ),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
            format!("--service-cluster-ip-range={SERVICE_CIDR}"),
            "--authorization-mode=RBAC".into(),
            "--allow-privileged=true".into(),
            format!("--cert-dir={}", l.dir.join("apiserver-certs").display()),
            format!("--audit-policy-file={}", audit_policy.display()),
            format!("--audit-log-path={}", l.logs.join("audit.log").display()),
            "--audit-log-format=json".into(),
            "--profiling=false".into(),
        ]);
        let apiserver = Supervised::spawn("kube-apiserver", api, &api_log)?;
        wait_for_port(&apiserver, &format!("127.0.0.1:{}", l.port), &api_log).await?;
        Ok(apiserver)
    }

    /// Starts kube-controller-manager. Runs on the sandbox thread.
    pub fn start_controller_manager(l: &Layout) -> Result<Supervised, Error> {
        let pki = &l.pki;
        let kubeconfig = l.kubeconfig.display().to_string();
        let controllers = std::iter::once("*".to_string())
            .chain(DISABLED_CONTROLLERS.iter().map(|c| format!("-{c}")))
            .collect::<Vec<_>>()
            .join(",");
        let mut kcm = sandbox::command(&l.bins.kube_controller_manager);
        if let Some(qps) = l.controller_manager_qps {
            kcm.args([
                format!("--kube-api-qps={qps}"),
                format!("--kube-api-burst={}", 2 * qps),
            ]);
        }
        kcm.args([
            format!("--kubeconfig={kubeconfig}"),
            format!("--authentication-kubeconfig={kubeconfig}"),
            format!("--authorization-kubeconfig={kubeconfig}"),
            format!("--controllers={controllers}"),
            format!(
                "--service-account-private-key-file={}",
                pki.service_account_key.display()
            ),
            format!("--root-ca-file={}", pki.ca_cert.display()),
            format!("--cluster-signing-cert-file={}", pki.ca_cert.display()),
            format!("--cluster-signing-key-file={}", pki.ca_key.display()),
            format!("--service-cluster-ip-range={SERVICE_CIDR}"),
            format!("--cert-dir={}", l.dir.join("kcm-certs").display()),
            "--leader-elect=false".into(),
            "--use-service-account-credentials=false".into(),
            "--bind-address=127.0.0.1".into(),
            "--profiling=false".into(),
        ]);
        Supervised::spawn(
            "kube-controller-manager",
            kcm,
            &l.logs.join("kube-controller-manager.log"),
        )
    }

    /// Stops the control plane, controller-manager first and etcd last.
    pub async fn stop(&self) {
        for p in [&self.controller_manager, &self.apiserver, &self.etcd] {
            p.terminate(Duration::from_secs(10)).await;
        }
    }
}

/// Waits until `addr` accepts TCP connections, failing early (with the log's tail) if the process
/// exits.
async fn wait_for_port(p: &Supervised, addr: &str, log: &Path) -> Result<(), Error> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        if let Some(status) = p.exit_status() {
            return Err(Error::ProcessExited {
                name: p.name().into(),
                status: status.to_string(),
                log: log_tail(log, 40),
            });
        }
        if Instant::now() > deadline {
            return Err(Error::Timeout(format!("{} to listen on {addr}", p.name())));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
