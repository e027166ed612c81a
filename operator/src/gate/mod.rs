//! The rollout gate: every pod of every McpApp gets a real MCP handshake once its containers are
//! ready and then every `probe.periodSeconds`; the result becomes the pod condition
//! `mcp-operator.dev/mcp-handshake`, which the pods' readiness gate turns into endpoint
//! membership.
//!
//! One task owns the schedule. It scans the pod cache a few times a second, starts the
//! handshakes that are due (at most `concurrency` at once), and, as results come back, records
//! them in the [`Book`], patches pod conditions that must change, and asks the McpApp controller
//! to look at apps whose picture changed (a pod passed, a new revision failed its threshold).
//! Nothing is written for a result that changes nothing.

pub mod book;
pub mod condition;
pub mod schedule;
pub mod target;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, ResourceExt};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

pub use book::{AppRecord, Book, Failure, Handshook, Outcome};
use condition::Wanted;

use crate::api::conditions::READY;
use crate::api::{HANDSHAKE_CONDITION, McpApp};
use crate::build::{INSTANCE_LABEL, REVISION_LABEL};
use crate::metrics::Metrics;
use crate::probe::Prober;

/// How often the schedule looks for due handshakes.
const TICK: Duration = Duration::from_millis(250);

/// What the gate reads and writes.
pub struct Gate {
    pub client: Client,
    pub pods: Store<Pod>,
    pub apps: Store<McpApp>,
    pub secrets: Store<Secret>,
    pub book: Book,
    pub metrics: Arc<Metrics>,
    pub prober: Prober,
    /// Handshakes in flight at most.
    pub concurrency: usize,
}

/// A pod, by namespace, name and UID (a re-created pod of the same name starts afresh).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PodKey {
    namespace: String,
    name: String,
    uid: String,
}

/// The schedule's memory of one pod.
#[derive(Debug)]
struct PodState {
    app: ObjectRef<McpApp>,
    due: Instant,
    in_flight: bool,
    probes: u64,
    /// When the pod's containers last became ready: a restart makes the next handshake due now.
    ready_since: Option<String>,
    /// The condition last written (the cache may not show it yet).
    written: Option<Wanted>,
}

/// One finished handshake.
struct Done {
    pod: PodKey,
    revision: Option<String>,
    outcome: Outcome,
    latency: Duration,
}

enum Message {
    Probed(Done),
    /// Writing the pod condition failed: write it again after the next handshake.
    PatchFailed(PodKey),
}

impl Gate {
    /// Runs until `stop`; sends the apps that need a reconcile to `reconcile`.
    pub async fn run(
        self,
        reconcile: mpsc::UnboundedSender<ObjectRef<McpApp>>,
        stop: CancellationToken,
    ) {
        let gate = Arc::new(self);
        let limit = Arc::new(Semaphore::new(gate.concurrency.max(1)));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut pods: HashMap<PodKey, PodState> = HashMap::new();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => gate.start_due(&mut pods, &limit, &tx),
                Some(message) = rx.recv() => match message {
                    Message::Probed(done) => gate.finish(&mut pods, done, &tx, &reconcile),
                    Message::PatchFailed(key) => {
                        if let Some(state) = pods.get_mut(&key) {
                            state.written = None;
                        }
                    }
                },
            }
        }
    }

    /// Starts the handshakes that are due and forgets pods that are gone.
    fn start_due(
        self: &Arc<Self>,
        pods: &mut HashMap<PodKey, PodState>,
        limit: &Arc<Semaphore>,
        tx: &mpsc::UnboundedSender<Message>,
    ) {
        let now = Instant::now();
        let mut seen = HashSet::new();
        for pod in self.pods.state() {
            let Some((key, app)) = self.app_of(&pod) else {
                tracing::trace!(pod = %pod.name_any(), "pod of no known app");
                continue;
            };
            if pod.metadata.deletion_timestamp.is_some() || !condition::containers_ready(&pod) {
                continue;
            }
            seen.insert(key.clone());
            let ready_since = containers_ready_since(&pod);
            let state = pods.entry(key.clone()).or_insert_with(|| {
                tracing::debug!(pod = %key.name, namespace = %key.namespace, "pod ready for handshakes");
                PodState {
                app: ObjectRef::from_obj(app.as_ref()),
                due: now,
                in_flight: false,
                probes: 0,
                ready_since: ready_since.clone(),
                written: condition::current(&pod),
            }});
            if state.ready_since != ready_since {
                state.ready_since = ready_since;
                state.due = now;
            }
            if state.in_flight || state.due > now {
                continue;
            }
            state.in_flight = true;
            state.probes += 1;
            let period =
                Duration::from_secs(u64::try_from(app.spec.probe.period_seconds).unwrap_or(30));
            state.due = now + schedule::next_delay(period, &key.uid, state.probes);
            let target = target::for_pod(&app, &pod, &self.secrets);
            let revision = pod.labels().get(REVISION_LABEL).cloned();
            let (gate, limit, tx) = (self.clone(), limit.clone(), tx.clone());
            tokio::spawn(async move {
                let Ok(_permit) = limit.acquire_owned().await else {
                    return;
                };
                let started = Instant::now();
                let outcome = match target {
                    Ok(target) => gate
                        .prober
                        .handshake(&target)
                        .await
                        .map_err(|e| Failure::from(&e)),
                    Err(failure) => Err(failure),
                };
                let latency = started.elapsed();
                gate.metrics.probed(
                    outcome.as_ref().map(|_| ()).map_err(|f| f.reason),
                    latency.as_secs_f64(),
                );
                let _ = tx.send(Message::Probed(Done {
                    pod: key,
                    revision,
                    outcome,
                    latency,
                }));
            });
        }
        pods.retain(|key, state| {
            let keep = seen.contains(key) || state.in_flight;
            if !keep {
                self.book.forget_pod(&state.app, &key.name);
            }
            keep
        });
        self.count_apps();
    }

    /// Records a finished handshake, writes the pod condition if it changes, and asks for a
    /// reconcile of the app when its picture changed.
    fn finish(
        &self,
        pods: &mut HashMap<PodKey, PodState>,
        done: Done,
        tx: &mpsc::UnboundedSender<Message>,
        reconcile: &mpsc::UnboundedSender<ObjectRef<McpApp>>,
    ) {
        let Some(state) = pods.get_mut(&done.pod) else {
            return;
        };
        state.in_flight = false;
        let threshold = self
            .apps
            .get(&state.app)
            .map(|a| u32::try_from(a.spec.probe.failure_threshold).unwrap_or(3))
            .unwrap_or(3);
        if let Err(f) = &done.outcome {
            tracing::debug!(pod = %done.pod.name, reason = f.reason, "handshake failed: {}", f.message);
        }
        // The first handshake this process sent to a pod whose condition already says the same
        // (an earlier operator process wrote it) is no news for the app's status.
        let shown = state.probes == 1
            && state.written.as_ref() == Some(&condition::describing(&done.outcome));
        let recorded = self.book.record(
            &state.app,
            &done.pod.name,
            Handshook {
                revision: done.revision,
                outcome: done.outcome.clone(),
                shown,
                latency: done.latency,
                at: Timestamp::now(),
            },
        );
        let next = condition::wanted(
            state.written.as_ref(),
            &done.outcome,
            recorded.failures_in_a_row,
            threshold,
        );
        if let Some(next) = next {
            let previous = state.written.replace(next.clone());
            let status_changed = previous.as_ref().map(|p| p.ok) != Some(next.ok);
            self.patch(done.pod.clone(), next, status_changed, tx.clone());
        }
        if recorded.changed || recorded.failures_in_a_row == threshold {
            let _ = reconcile.send(state.app.clone());
        }
    }

    /// Patches the pod's handshake condition in the background.
    fn patch(
        &self,
        key: PodKey,
        wanted: Wanted,
        status_changed: bool,
        tx: mpsc::UnboundedSender<Message>,
    ) {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &key.namespace);
        let transition = if status_changed {
            Some(Timestamp::now())
        } else {
            None
        };
        let mut condition = serde_json::json!({
            "type": HANDSHAKE_CONDITION,
            "status": wanted.status(),
            "reason": wanted.reason,
            "message": wanted.message,
        });
        if let Some(t) = transition {
            condition["lastTransitionTime"] = t.to_string().into();
        }
        tracing::info!(pod = %key.name, namespace = %key.namespace, status = wanted.status(),
            reason = %wanted.reason, "handshake condition: {}", wanted.message);
        tokio::spawn(async move {
            // A strategic merge patch merges conditions by type: the kubelet's stay untouched.
            let patch = serde_json::json!({"status": {"conditions": [condition]}});
            let result = api
                .patch_status(
                    &key.name,
                    &PatchParams::default(),
                    &Patch::Strategic(&patch),
                )
                .await;
            match result {
                Ok(_) => {}
                // The pod is gone: nothing to mark.
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => {
                    tracing::warn!(pod = %key.name, "writing the handshake condition: {e}");
                    let _ = tx.send(Message::PatchFailed(key));
                }
            }
        });
    }

    /// The pod's key and app, for pods of an app the operator knows.
    fn app_of(&self, pod: &Pod) -> Option<(PodKey, Arc<McpApp>)> {
        let namespace = pod.namespace()?;
        let app = pod.labels().get(INSTANCE_LABEL)?;
        let app = self.apps.get(&ObjectRef::new(app).within(&namespace))?;
        let key = PodKey {
            namespace,
            name: pod.name_any(),
            uid: pod.uid()?,
        };
        Some((key, app))
    }

    /// Updates the app gauges and forgets the records of deleted apps.
    fn count_apps(&self) {
        let apps = self.apps.state();
        let ready = apps
            .iter()
            .filter(|a| {
                crate::status::condition(a.status.as_ref(), READY)
                    .is_some_and(|c| c.status == "True")
            })
            .count();
        self.metrics.apps.set(apps.len() as i64);
        self.metrics.apps_ready.set(ready as i64);
        for app in self.book.apps() {
            if self.apps.get(&app).is_none() {
                self.book.forget_app(&app);
            }
        }
    }
}

fn containers_ready_since(pod: &Pod) -> Option<String> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "ContainersReady")?
        .last_transition_time
        .as_ref()
        .map(|t| t.0.to_string())
}
