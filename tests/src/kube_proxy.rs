//! kube-proxy in nftables mode, started inside the environment as the node's own proxy: it turns
//! Services into nftables rules in the environment's network namespace, so ClusterIPs (and
//! NodePorts on the node address) route from the environment and from pods, with Service
//! `sessionAffinity` honoured by the rules themselves.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::Error;
use crate::kubelet::NODE_NAME;
use crate::process::{Supervised, log_tail};
use crate::sandbox;

/// The pod network, from which kube-proxy tells pod traffic from outside traffic.
pub const CLUSTER_CIDR: &str = "10.244.0.0/16";
/// The user whose client certificate kube-proxy presents: the bootstrap RBAC policy binds it to
/// the `system:node-proxier` ClusterRole.
pub const USER: &str = "system:kube-proxy";
const HEALTHZ: &str = "127.0.0.1:10256";

/// Starts kube-proxy with `kubeconfig` (a kubeconfig for [`USER`]) and waits until it has
/// programmed the rules for every Service once. Runs on the sandbox thread.
pub async fn start(
    binary: &Path,
    kubeconfig: &Path,
    dir: &Path,
    log: &Path,
) -> Result<Supervised, Error> {
    let config = dir.join("kube-proxy.json");
    let text = serde_json::json!({
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "nftables",
        "clientConnection": {"kubeconfig": kubeconfig},
        "hostnameOverride": NODE_NAME,
        "clusterCIDR": CLUSTER_CIDR,
        // NodePorts on the node's own address (10.244.0.1), as in a cluster.
        "nodePortAddresses": ["primary"],
        "healthzBindAddress": HEALTHZ,
        "metricsBindAddress": "127.0.0.1:10249",
        // The conntrack table's size and timeouts are the machine's, read-only in a network
        // namespace: zero tells kube-proxy to leave them as they are.
        "conntrack": {
            "maxPerCore": 0, "min": 0,
            "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s",
            "udpTimeout": "0s", "udpStreamTimeout": "0s",
        },
    });
    std::fs::write(&config, text.to_string()).map_err(|e| Error::io(&config, e))?;
    let mut cmd = sandbox::command(binary);
    cmd.arg(format!("--config={}", config.display()))
        .arg("--v=1");
    let proxy = Supervised::spawn("kube-proxy", cmd, log)?;
    wait_synced(&proxy, log).await?;
    Ok(proxy)
}

/// kube-proxy's `/healthz` answers 200 once its first full sync of Services and EndpointSlices
/// is in the kernel.
async fn wait_synced(proxy: &Supervised, log: &Path) -> Result<(), Error> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if healthz_ok().await {
            return Ok(());
        }
        if let Some(status) = proxy.exit_status() {
            return Err(Error::ProcessExited {
                name: proxy.name().into(),
                status: status.to_string(),
                log: log_tail(log, 40),
            });
        }
        if Instant::now() > deadline {
            return Err(Error::Timeout(format!(
                "kube-proxy's first sync\n{}",
                log_tail(log, 40)
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn healthz_ok() -> bool {
    let Ok(stream) = tokio::net::TcpStream::connect(HEALTHZ).await else {
        return false;
    };
    matches!(
        crate::http::request(stream, HEALTHZ, "GET", "/healthz", &[], "").await,
        Ok(response) if response.status == 200
    )
}
