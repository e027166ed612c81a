//! Leader election on a Lease. Only the holder runs the controllers. The leader steps down on
//! its own clock when it could not renew in time ([`term`]), before any standby may take the
//! Lease over; the process then stops every controller and pending write and exits, so
//! Kubernetes restarts it as a standby and no half-stopped controller acts beside a new leader.

pub mod term;

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use term::{Record, Sighting, Term, Timing};

/// Why a request about the Lease failed.
#[derive(Debug, thiserror::Error)]
enum LeaseError {
    #[error("{0}")]
    Kube(#[from] kube::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// This replica's part in the election.
pub struct Leadership {
    state: watch::Receiver<bool>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// Starts competing for the Lease `namespace/name` as `identity`.
pub fn compete(
    client: Client,
    namespace: &str,
    name: &str,
    identity: &str,
    lease_seconds: u64,
) -> Leadership {
    let (tx, state) = watch::channel(false);
    let stop = CancellationToken::new();
    let elector = Elector {
        api: Api::namespaced(client, namespace),
        name: name.to_owned(),
        identity: identity.to_owned(),
        timing: Timing::new(lease_seconds),
        state: tx,
    };
    let task = tokio::spawn(elector.run(stop.clone()));
    Leadership { state, stop, task }
}

impl Leadership {
    /// Waits until this replica holds the Lease.
    pub async fn acquired(&mut self) {
        let _ = self.state.wait_for(|leader| *leader).await;
    }

    /// Waits until this replica no longer leads (stepped down, or the election ended).
    pub async fn lost(&mut self) {
        let _ = self.state.wait_for(|leader| !*leader).await;
    }

    /// Stops competing and gives the Lease up, if still held, so a standby takes over without
    /// waiting for it to expire.
    pub async fn release(self) {
        self.stop.cancel();
        if tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .is_err()
        {
            tracing::warn!("leader election did not stop in time");
        }
    }
}

struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    timing: Timing,
    state: watch::Sender<bool>,
}

impl Elector {
    async fn run(self, stop: CancellationToken) {
        let Some((mut term, mut version)) = self.acquire(&stop).await else {
            return;
        };
        tracing::info!(identity = %self.identity, lease = %self.name, "holding the leader Lease");
        self.state.send_replace(true);
        loop {
            let ends = term.ends(&self.timing).into();
            tokio::select! {
                biased;
                _ = tokio::time::sleep_until(ends) => {
                    tracing::error!(identity = %self.identity,
                        "could not renew the leader Lease in time: stepping down");
                    self.state.send_replace(false);
                    return;
                }
                _ = stop.cancelled() => {
                    self.state.send_replace(false);
                    self.release(&version).await;
                    return;
                }
                _ = tokio::time::sleep(self.timing.retry) => {}
            }
            let sent = Instant::now();
            let bound = (sent + self.timing.request).min(ends);
            match self.write(&version, self.holder_spec(None), bound).await {
                Ok(lease) => {
                    term.renewed(sent.into_std());
                    version = lease.resource_version().unwrap_or_default();
                }
                Err(LeaseError::Kube(kube::Error::Api(e))) if e.code == 409 => {
                    // Someone else wrote the Lease: it is no longer ours.
                    tracing::error!(identity = %self.identity, "the leader Lease was taken over: stepping down");
                    self.state.send_replace(false);
                    return;
                }
                Err(e) => {
                    tracing::warn!(identity = %self.identity, "renewing the leader Lease: {e}")
                }
            }
        }
    }

    /// Waits until this replica holds the Lease: its term and the Lease's resourceVersion.
    async fn acquire(&self, stop: &CancellationToken) -> Option<(Term, String)> {
        let mut seen: Option<Sighting> = None;
        let mut first = true;
        loop {
            if !first {
                tokio::select! {
                    _ = stop.cancelled() => return None,
                    _ = tokio::time::sleep(self.timing.retry) => {}
                }
            }
            first = false;
            let sent = Instant::now();
            let bound = sent + self.timing.request;
            let lease = match bounded(bound, self.api.get_opt(&self.name)).await {
                Ok(lease) => lease,
                Err(e) => {
                    tracing::warn!(identity = %self.identity, "reading the leader Lease: {e}");
                    continue;
                }
            };
            let result = match lease {
                None => self.create(bound).await,
                Some(lease) => {
                    let record = Record {
                        holder: lease.spec.as_ref().and_then(|s| s.holder_identity.clone()),
                        version: lease.resource_version().unwrap_or_default(),
                    };
                    let now = Instant::now().into_std();
                    let sighting = term::sight(seen.take(), record, now);
                    if !term::may_take(&sighting, now, &self.timing) {
                        seen = Some(sighting);
                        continue;
                    }
                    let version = sighting.record.version.clone();
                    seen = Some(sighting);
                    let transitions = lease.spec.and_then(|s| s.lease_transitions).unwrap_or(0);
                    let spec = self.holder_spec(Some(transitions.saturating_add(1)));
                    self.write(&version, spec, bound).await
                }
            };
            match result {
                Ok(lease) => {
                    let version = lease.resource_version().unwrap_or_default();
                    return Some((Term::won(sent.into_std()), version));
                }
                // Another replica was faster.
                Err(LeaseError::Kube(kube::Error::Api(e))) if e.code == 409 => {}
                Err(e) => tracing::warn!(identity = %self.identity, "taking the leader Lease: {e}"),
            }
        }
    }

    async fn create(&self, bound: Instant) -> Result<Lease, LeaseError> {
        let lease = serde_json::json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name},
            "spec": self.holder_spec(Some(0)),
        });
        let lease: Lease = serde_json::from_value(lease).expect("a Lease deserializes");
        bounded(bound, self.api.create(&PostParams::default(), &lease)).await
    }

    /// Writes `spec` into the Lease if it is still at `version`.
    async fn write(
        &self,
        version: &str,
        spec: serde_json::Value,
        bound: Instant,
    ) -> Result<Lease, LeaseError> {
        // The resourceVersion makes the patch conditional: 409 when anyone wrote in between.
        let patch = serde_json::json!({
            "metadata": {"resourceVersion": version},
            "spec": spec,
        });
        let (params, patch) = (PatchParams::default(), Patch::Merge(&patch));
        let request = self.api.patch(&self.name, &params, &patch);
        bounded(bound, request).await
    }

    /// Gives the Lease up if it is still at `version` (still ours).
    async fn release(&self, version: &str) {
        let patch = serde_json::json!({
            "metadata": {"resourceVersion": version},
            "spec": {"holderIdentity": null, "renewTime": null},
        });
        let bound = Instant::now() + self.timing.request;
        let (params, patch) = (PatchParams::default(), Patch::Merge(&patch));
        let request = self.api.patch(&self.name, &params, &patch);
        match bounded(bound, request).await {
            Ok(_) => tracing::info!(identity = %self.identity, "released the leader Lease"),
            Err(e) => tracing::warn!(identity = %self.identity, "releasing the leader Lease: {e}"),
        }
    }

    /// This replica as the holder, renewed now; with `acquired`, taken now as the given
    /// transition (a renewal leaves the acquire time and transitions as they are).
    fn holder_spec(&self, acquired: Option<i32>) -> serde_json::Value {
        let now = MicroTime(Timestamp::now());
        let mut spec = serde_json::json!({
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self.timing.lease.as_secs(),
            "renewTime": now,
        });
        if let Some(transitions) = acquired {
            spec["acquireTime"] = serde_json::json!(now);
            spec["leaseTransitions"] = transitions.into();
        }
        spec
    }
}

/// `request`, failed with a timeout at `bound`.
async fn bounded<T>(
    bound: Instant,
    request: impl Future<Output = kube::Result<T>>,
) -> Result<T, LeaseError> {
    let budget = bound.saturating_duration_since(Instant::now());
    match tokio::time::timeout_at(bound, request).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(LeaseError::Timeout(budget)),
    }
}
