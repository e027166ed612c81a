//! The rollout gate: every pod of every McpApp gets a real MCP handshake once its containers are
//! ready and then every `probe.periodSeconds`; the result becomes the pod condition
//! `mcp-operator.dev/mcp-handshake`, which the pods' readiness gate turns into endpoint
//! membership.
//!
//! One task owns the schedule. It scans the pod cache a few times a second, starts the
//! handshakes that are due as far as free permits allow (at most `concurrency` at once, apps
//! taking turns, none holding more than its share: [`queue`]), each pod probed with the settings
//! of the revision it runs ([`crate::build::ProbeSettings`]), and, as results come back, records
//! them in the [`Book`], patches pod conditions that must change, and asks the McpApp controller
//! to look at apps whose picture changed (a pod passed, a new revision failed its threshold).
//! Nothing is written for a result that changes nothing.

pub mod book;
pub mod condition;
pub mod contract;
pub mod patch;
pub mod queue;
pub mod schedule;
pub mod target;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::{Pod, PodStatus};
use k8s_openapi::jiff::Timestamp;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

pub use book::{AppRecord, Book, Failure, Handshook, Outcome, Watch};
use condition::Wanted;

use crate::api::McpApp;
use crate::api::conditions::READY;
use crate::build::{INSTANCE_LABEL, ProbeSettings, REVISION_LABEL};
use crate::metrics::Metrics;
use crate::oauth::Credentials;
use crate::probe::{ProbeError, Prober};

/// How often the schedule looks for due handshakes.
const TICK: Duration = Duration::from_millis(250);

/// What the gate reads and writes.
pub struct Gate {
    pub client: Client,
    pub pods: Store<Pod>,
    pub apps: Store<McpApp>,
    /// Kept revisions: the stable one holds the tool contract new revisions are held to.
    pub revisions: Store<ControllerRevision>,
    /// The handshakes' tokens.
    pub credentials: Credentials,
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

/// An app by namespace and name, ordered for the round-robin of [`queue::pick`].
type AppKey = (String, String);

/// The schedule's memory of one pod.
#[derive(Debug)]
struct PodState {
    app: ObjectRef<McpApp>,
    due: Instant,
    in_flight: bool,
    probes: u64,
    /// A handshake sent by this process has finished.
    answered: bool,
    /// When the pod's containers last became ready: a restart makes the next handshake due now.
    ready_since: Option<String>,
    /// The condition last written (the cache may not show it yet).
    written: Option<Wanted>,
    /// Failed handshakes in a row before the pod is taken out (its revision's setting).
    threshold: u32,
}

/// What the schedule keeps between ticks.
#[derive(Default)]
struct Schedule {
    pods: HashMap<PodKey, PodState>,
    /// The app served last: the next round-robin turn starts after it.
    turn: Option<AppKey>,
    /// When this process first saw each app.
    watched_since: HashMap<ObjectRef<McpApp>, Instant>,
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

/// What one read of the pod cache found.
#[derive(Default)]
struct Scan {
    /// Pods ready for handshakes.
    seen: HashSet<PodKey>,
    /// Pods whose handshake is due now.
    candidates: Vec<queue::Candidate<PodKey, AppKey>>,
    due: HashMap<PodKey, Due>,
    /// Per app, the revisions with pods awaiting their first handshake.
    awaiting: HashMap<ObjectRef<McpApp>, BTreeSet<String>>,
}

/// A due pod, with what its handshake needs.
struct Due {
    pod: Arc<Pod>,
    app: Arc<McpApp>,
}

impl Gate {
    /// Runs until `stop`; sends the apps that need a reconcile to `reconcile`. Condition writes
    /// in flight are abandoned when `stop` is cancelled.
    pub async fn run(
        self,
        reconcile: mpsc::UnboundedSender<ObjectRef<McpApp>>,
        stop: CancellationToken,
    ) {
        let gate = Arc::new(self);
        let limit = Arc::new(Semaphore::new(gate.concurrency.max(1)));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut schedule = Schedule::default();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => gate.start_due(&mut schedule, &limit, &tx, &reconcile),
                Some(message) = rx.recv() => match message {
                    Message::Probed(done) => gate.finish(&mut schedule.pods, done, &tx, &reconcile, &stop),
                    Message::PatchFailed(key) => {
                        if let Some(state) = schedule.pods.get_mut(&key) {
                            state.written = None;
                        }
                    }
                },
            }
        }
    }

    /// One tick: starts the due handshakes the free permits allow, apps taking turns, forgets
    /// pods and apps that are gone, and tells the book what it saw of each app's deadline.
    fn start_due(
        self: &Arc<Self>,
        schedule: &mut Schedule,
        limit: &Arc<Semaphore>,
        tx: &mpsc::UnboundedSender<Message>,
        reconcile: &mpsc::UnboundedSender<ObjectRef<McpApp>>,
    ) {
        let now = Instant::now();
        let mut scan = self.scan(&mut schedule.pods, now);
        let mut running: BTreeMap<AppKey, usize> = BTreeMap::new();
        for (key, state) in schedule.pods.iter().filter(|(_, s)| s.in_flight) {
            *running
                .entry((key.namespace.clone(), state.app.name.clone()))
                .or_default() += 1;
        }
        let (picked, turn) = queue::pick(
            std::mem::take(&mut scan.candidates),
            now,
            &running,
            limit.available_permits(),
            queue::per_app_limit(self.concurrency.max(1)),
            schedule.turn.as_ref(),
        );
        schedule.turn = turn;
        for key in picked {
            let (Some(state), Some(found)) = (schedule.pods.get_mut(&key), scan.due.remove(&key))
            else {
                continue;
            };
            let Ok(permit) = limit.clone().try_acquire_owned() else {
                break;
            };
            state.in_flight = true;
            state.probes += 1;
            let settings = ProbeSettings::for_pod(&found.app, &found.pod);
            state.threshold = settings.failure_threshold();
            let period = settings.probe.period();
            state.due = now + schedule::next_delay(period, &key.uid, state.probes);
            tracing::trace!(pod = %key.name, probes = state.probes, "handshake");
            self.spawn_handshake(key, &found, &settings, permit, tx.clone());
        }
        schedule.pods.retain(|key, state| {
            let keep = scan.seen.contains(key) || state.in_flight;
            if !keep {
                self.book.forget_pod(&state.app, &key.name);
            }
            keep
        });
        self.watch_apps(schedule, scan.awaiting, now, reconcile);
    }

    /// Reads the pod cache: the pods ready for handshakes, those due now, and per app the
    /// revisions whose pods still await their first handshake.
    fn scan(&self, pods: &mut HashMap<PodKey, PodState>, now: Instant) -> Scan {
        let mut scan = Scan::default();
        for pod in self.pods.state() {
            let Some((key, app)) = self.app_of(&pod) else {
                tracing::trace!(pod = %pod.name_any(), "pod of no known app");
                continue;
            };
            if pod.metadata.deletion_timestamp.is_some() || !condition::containers_ready(&pod) {
                continue;
            }
            scan.seen.insert(key.clone());
            let ready_since = containers_ready_since(&pod);
            let state = pods.entry(key.clone()).or_insert_with(|| {
                tracing::debug!(pod = %key.name, namespace = %key.namespace, "pod ready for handshakes");
                let settings = ProbeSettings::for_pod(&app, &pod);
                let written = condition::current(&pod);
                let first =
                    schedule::first_delay(settings.probe.period(), &key.uid, written.is_some());
                PodState {
                    app: ObjectRef::from_obj(app.as_ref()),
                    due: now + first,
                    in_flight: false,
                    probes: 0,
                    answered: false,
                    ready_since: ready_since.clone(),
                    written,
                    threshold: settings.failure_threshold(),
                }
            });
            if state.ready_since != ready_since {
                state.ready_since = ready_since;
                state.due = now;
            }
            if !state.answered
                && let Some(revision) = pod.labels().get(REVISION_LABEL)
            {
                scan.awaiting
                    .entry(state.app.clone())
                    .or_default()
                    .insert(revision.clone());
            }
            if state.in_flight || state.due > now {
                continue;
            }
            scan.candidates.push(queue::Candidate {
                pod: key.clone(),
                app: (key.namespace.clone(), app.name_any()),
                due: state.due,
            });
            scan.due.insert(key, Due { pod, app });
        }
        scan
    }

    /// Tells the book, for every app, which revisions have pods awaiting their first handshake
    /// and whether this process watched it for a whole progress deadline; asks for a reconcile
    /// where a deadline counts now that did not before. Forgets deleted apps.
    fn watch_apps(
        &self,
        schedule: &mut Schedule,
        mut awaiting: HashMap<ObjectRef<McpApp>, BTreeSet<String>>,
        now: Instant,
        reconcile: &mpsc::UnboundedSender<ObjectRef<McpApp>>,
    ) {
        for app in self.apps.state() {
            let key = ObjectRef::from_obj(app.as_ref());
            let since = *schedule.watched_since.entry(key.clone()).or_insert(now);
            let deadline = Duration::from_secs(
                u64::try_from(app.spec.rollout.progress_deadline_seconds).unwrap_or(600),
            );
            let watch = Watch {
                long_enough: schedule::watched_long_enough(since, now, deadline),
                awaiting_handshake: awaiting.remove(&key).unwrap_or_default(),
            };
            if self.book.watch(&key, watch) {
                let _ = reconcile.send(key);
            }
        }
        schedule
            .watched_since
            .retain(|app, _| self.apps.get(app).is_some());
        self.count_apps();
    }

    /// Sends one handshake in the background; the permit is held until it ends, which its
    /// timeout bounds whatever the server does.
    fn spawn_handshake(
        self: &Arc<Self>,
        key: PodKey,
        due: &Due,
        settings: &ProbeSettings,
        permit: OwnedSemaphorePermit,
        tx: mpsc::UnboundedSender<Message>,
    ) {
        let (app, pod, settings) = (due.app.clone(), due.pod.clone(), settings.clone());
        let revision = due.pod.labels().get(REVISION_LABEL).cloned();
        let gate = self.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            // The token is read (or asked for) here, under the permit, not on the schedule's loop.
            let target = match gate.credentials.bearer(&app, &settings).await {
                Ok(token) => target::for_pod(&settings, &pod, token),
                Err(failure) => Err(failure),
            };
            let outcome = match target {
                Ok(target) => {
                    let timeout = target.timeout;
                    match tokio::time::timeout(timeout, gate.prober.handshake(&target)).await {
                        Ok(Err(e @ ProbeError::HttpStatus { status: 401, .. })) => {
                            gate.credentials.refused(&app);
                            Err(Failure::from(&e))
                        }
                        Ok(result) => result.map_err(|e| Failure::from(&e)),
                        Err(_) => Err(Failure::from(&ProbeError::Timeout(timeout))),
                    }
                }
                Err(failure) => Err(failure),
            };
            let outcome = outcome.and_then(|handshake| {
                let settings = &settings.contract;
                contract::check(
                    &gate.revisions,
                    &app,
                    settings,
                    revision.as_deref(),
                    handshake,
                )
            });
            drop(permit);
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

    /// Records a finished handshake, writes the pod condition if it changes, and asks for a
    /// reconcile of the app when its picture changed.
    fn finish(
        &self,
        pods: &mut HashMap<PodKey, PodState>,
        done: Done,
        tx: &mpsc::UnboundedSender<Message>,
        reconcile: &mpsc::UnboundedSender<ObjectRef<McpApp>>,
        stop: &CancellationToken,
    ) {
        let Some(state) = pods.get_mut(&done.pod) else {
            return;
        };
        state.in_flight = false;
        state.answered = true;
        let threshold = state.threshold;
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
            self.patch(
                done.pod.clone(),
                next,
                status_changed,
                tx.clone(),
                stop.clone(),
            );
        }
        if recorded.changed || recorded.failures_in_a_row == threshold {
            let _ = reconcile.send(state.app.clone());
        }
    }

    /// Patches the pod's handshake condition in the background, abandoned at `stop`.
    fn patch(
        &self,
        key: PodKey,
        wanted: Wanted,
        status_changed: bool,
        tx: mpsc::UnboundedSender<Message>,
        stop: CancellationToken,
    ) {
        let transition = status_changed.then(Timestamp::now);
        tracing::info!(pod = %key.name, namespace = %key.namespace, status = wanted.status(),
            reason = %wanted.reason, "handshake condition: {}", wanted.message);
        let client = self.client.clone();
        tokio::spawn(async move {
            match patch::write(
                client,
                &key.namespace,
                &key.name,
                &wanted,
                transition,
                &stop,
            )
            .await
            {
                patch::Written::Done | patch::Written::Gone | patch::Written::Stopped => {}
                patch::Written::Failed(e) => {
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
        self.credentials.retain(|app| self.apps.get(app).is_some());
    }
}

/// Keeps of a watched pod only what the gate reads: its metadata (less managedFields), its
/// conditions and its IP. The spec and the container statuses are most of a pod, and the cache
/// holds every pod of every app.
pub fn lean_pod(pod: &mut Pod) {
    pod.metadata.managed_fields = None;
    pod.spec = None;
    pod.status = pod.status.take().map(|status| PodStatus {
        conditions: status.conditions,
        pod_ip: status.pod_ip,
        ..PodStatus::default()
    });
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
