//! Leader election on a Lease. Only the holder runs the controllers; a replica that loses the
//! Lease stops acting at once and the process exits, so Kubernetes restarts it as a standby and no
//! half-stopped controller ever acts beside a new leader.

use std::time::Duration;

use kube::Client;
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct Leadership {
    state: watch::Receiver<bool>,
    task: JoinHandle<Result<LeaseManager, LeaseManagerError>>,
}

/// Starts competing for the Lease `namespace/name` as `identity`.
pub async fn compete(
    client: Client,
    namespace: &str,
    name: &str,
    identity: &str,
    lease_seconds: u64,
) -> Result<Leadership, LeaseManagerError> {
    let manager = LeaseManagerBuilder::new(client, name)
        .with_namespace(namespace)
        .with_identity(identity)
        .with_duration(lease_seconds)
        .with_grace((lease_seconds / 3).max(1))
        .with_field_manager(format!("mcp-operator-lease-{identity}"))
        .build()
        .await?;
    let (state, task) = manager.watch().await;
    Ok(Leadership { state, task })
}

impl Leadership {
    /// Waits until this replica holds the Lease.
    pub async fn acquired(&mut self) {
        let _ = self.state.wait_for(|leader| *leader).await;
    }

    /// Waits until this replica no longer holds the Lease (or the election task ended).
    pub async fn lost(&mut self) {
        let _ = self.state.wait_for(|leader| !*leader).await;
    }

    /// Gives the Lease up so a standby takes over without waiting for it to expire.
    pub async fn release(self) {
        drop(self.state);
        match tokio::time::timeout(Duration::from_secs(5), self.task).await {
            Ok(Ok(Ok(manager))) => {
                if let Err(e) = manager.release().await {
                    tracing::warn!("releasing the leader Lease: {e}");
                }
            }
            Ok(Ok(Err(e))) => tracing::warn!("leader election ended with: {e}"),
            _ => tracing::warn!("leader election did not stop in time"),
        }
    }
}
