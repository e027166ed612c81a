//! Pod sandboxes: each pod gets network, PID and UTS namespaces of its own, held by an
//! `unshare ... sleep infinity` process, and a veth pair to the environment's bridge with an
//! address from 10.244.0.0/16. The bridge port is in hairpin mode, as kubelet sets it, so that a
//! pod reaches itself through a Service's ClusterIP. When the holder dies, the kernel kills every process of the pod
//! (the end of a PID namespace's init) and removes the veth pair (the end of its network).

use std::collections::BTreeSet;
use std::fs::File;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::Error;
use crate::process::Supervised;
use crate::sandbox::{self, BRIDGE, GATEWAY, POD_PREFIX_LEN, ip_batch};

/// Addresses 10.244.0.2 to 10.244.255.254, lowest free first.
#[derive(Debug, Default)]
pub struct IpPool {
    in_use: BTreeSet<u32>,
}

impl IpPool {
    const FIRST: u32 = u32::from_be_bytes([10, 244, 0, 2]);
    const LAST: u32 = u32::from_be_bytes([10, 244, 255, 254]);

    pub fn allocate(&mut self) -> Option<Ipv4Addr> {
        let ip = (Self::FIRST..=Self::LAST).find(|ip| !self.in_use.contains(ip))?;
        self.in_use.insert(ip);
        Some(Ipv4Addr::from(ip))
    }

    pub fn release(&mut self, ip: Ipv4Addr) {
        self.in_use.remove(&u32::from(ip));
    }
}

/// A pod's namespaces and address.
pub struct PodSandbox {
    pub ip: Ipv4Addr,
    holder: Supervised,
    pub net: File,
    pub pid: File,
    pub uts: File,
}

impl PodSandbox {
    /// Creates the namespaces and wires the pod's `eth0` to the bridge. Runs on the sandbox thread.
    pub async fn create(ip: Ipv4Addr, veth: &str, log: &Path) -> Result<Self, Error> {
        let mut cmd = sandbox::command("unshare");
        cmd.args([
            "--net",
            "--pid",
            "--uts",
            "--ipc",
            "--fork",
            "--kill-child=SIGKILL",
            "--",
            "sleep",
            "infinity",
        ]);
        let holder = Supervised::spawn("pod sandbox", cmd, log)?;
        let init = init_pid(&holder).await?;
        let ns = |kind: &str| {
            let path = format!("/proc/{init}/ns/{kind}");
            File::open(&path).map_err(|e| Error::io(&path, e))
        };
        let (net, pid, uts) = (ns("net")?, ns("pid")?, ns("uts")?);
        ip_batch(
            None,
            &format!(
                "link add {veth} type veth peer name eth0 netns {init}\n\
                 link set {veth} master {BRIDGE}\n\
                 link set {veth} type bridge_slave hairpin on\n\
                 link set {veth} up\n"
            ),
        )
        .await?;
        ip_batch(
            Some(init),
            &format!(
                "link set lo up\n\
                 addr add {ip}/{POD_PREFIX_LEN} dev eth0\n\
                 link set eth0 up\n\
                 route add default via {GATEWAY}\n"
            ),
        )
        .await?;
        Ok(PodSandbox {
            ip,
            holder,
            net,
            pid,
            uts,
        })
    }

    /// Ends the pod's namespaces and with them every process still in the pod.
    pub async fn destroy(&self) {
        self.holder.terminate(Duration::from_secs(2)).await;
    }
}

/// The pid (in our namespace) of the `sleep` that `unshare --fork` started as the pod's init.
async fn init_pid(holder: &Supervised) -> Result<u32, Error> {
    let children = format!("/proc/{0}/task/{0}/children", holder.pid());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&children).unwrap_or_default();
        if let Some(pid) = text.split_whitespace().next().and_then(|p| p.parse().ok()) {
            return Ok(pid);
        }
        if holder.exit_status().is_some() {
            return Err(Error::Sandbox(
                "unshare exited before starting the pod's init".into(),
            ));
        }
        if Instant::now() > deadline {
            return Err(Error::Timeout("the pod sandbox's init process".into()));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_reuses_released_addresses() {
        let mut pool = IpPool::default();
        let a = pool.allocate().unwrap();
        let b = pool.allocate().unwrap();
        assert_eq!(a, Ipv4Addr::new(10, 244, 0, 2));
        assert_eq!(b, Ipv4Addr::new(10, 244, 0, 3));
        pool.release(a);
        assert_eq!(pool.allocate().unwrap(), a);
    }
}
