//! The probe results the gate hands to the McpApp reconciler: per app, each pod's latest outcome
//! and how many handshakes it failed in a row, plus the latest change of any pod's outcome.
//!
//! Status fields are fed from *changes* only (a new pod, success turning into failure, a new
//! error message), so a healthy app's status stays byte-identical between probes and the
//! operator writes nothing at rest.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::runtime::reflector::ObjectRef;

use crate::api::{LastProbe, McpApp, ProbeResult, ServerInfo};
use crate::contract::Contract;
use crate::probe::{Handshake, ProbeError};
use crate::text::clip;

/// Why a handshake could not succeed: the probe's own error, or a reason found before sending
/// it (for example a missing token Secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub reason: &'static str,
    pub message: String,
}

/// Longest failure message kept: it becomes a condition message and an Event.
pub const MESSAGE_BYTES: usize = 512;
/// Longest server name, version or tool name shown in the status.
pub const SERVER_FIELD_BYTES: usize = 128;
/// Tool names shown in the status at most.
pub const STATUS_TOOL_NAMES: usize = 64;

impl From<&ProbeError> for Failure {
    fn from(e: &ProbeError) -> Self {
        // The probe clips what it quotes; this bounds the whole message whatever it holds.
        Failure {
            reason: e.reason(),
            message: clip(&e.to_string(), MESSAGE_BYTES),
        }
    }
}

pub type Outcome = Result<Handshake, Failure>;

/// One pod's record.
#[derive(Debug, Clone)]
pub struct PodRecord {
    /// The app revision the pod runs (its `mcp-operator.dev/revision` label).
    pub revision: Option<String>,
    pub failures_in_a_row: u32,
    pub last: Outcome,
}

/// An app's records.
#[derive(Debug, Clone, Default)]
pub struct AppRecord {
    pub pods: BTreeMap<String, PodRecord>,
    /// The latest handshake that changed a pod's outcome.
    pub last_change: Option<LastProbe>,
    /// The server as the latest such successful handshake described it.
    pub server: Option<ServerInfo>,
    /// What the gate saw of the app's rollout deadline.
    pub watch: Watch,
    /// Per revision (pod label) with pods, the tool contract its latest successful handshake
    /// listed: kept with the revision once it passes.
    pub contracts: BTreeMap<String, Arc<Contract>>,
}

/// Whether a rollout's deadline may count against it: only time in which this process watched
/// the app, and not while pods of the revision wait for their first handshake.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Watch {
    /// This process has watched the app for a whole `rollout.progressDeadlineSeconds`.
    pub long_enough: bool,
    /// Revisions (pod labels) with pods whose containers are ready but which had no handshake
    /// from this process yet.
    pub awaiting_handshake: BTreeSet<String>,
}

impl Watch {
    /// Whether the deadline of `revision` may count against it.
    pub fn deadline_counts(&self, revision: &str) -> bool {
        self.long_enough && !self.awaiting_handshake.contains(revision)
    }
}

impl AppRecord {
    /// The first pod of `revision` that failed `threshold` handshakes in a row, with its failure.
    pub fn failing(&self, revision: &str, threshold: u32) -> Option<(&str, &Failure)> {
        self.pods
            .iter()
            .find_map(|(pod, record)| match &record.last {
                Err(f)
                    if record.revision.as_deref() == Some(revision)
                        && record.failures_in_a_row >= threshold =>
                {
                    Some((pod.as_str(), f))
                }
                _ => None,
            })
    }

    /// Some pod of `revision` whose latest handshake failed, with its failure.
    pub fn latest_failure(&self, revision: &str) -> Option<(&str, &Failure)> {
        self.pods
            .iter()
            .find_map(|(pod, record)| match &record.last {
                Err(f) if record.revision.as_deref() == Some(revision) => Some((pod.as_str(), f)),
                _ => None,
            })
    }
}

/// What changed when a result was recorded, so the gate knows whether the app needs a look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// The pod's outcome differs from its previous one (or it had none).
    pub changed: bool,
    /// The pod's failures in a row after this result.
    pub failures_in_a_row: u32,
}

/// One finished handshake with a pod.
#[derive(Debug, Clone)]
pub struct Handshook {
    /// The app revision the pod runs (its `mcp-operator.dev/revision` label).
    pub revision: Option<String>,
    pub outcome: Outcome,
    /// The pod's condition already states this outcome: the first handshake after an operator
    /// restart then brings no news.
    pub shown: bool,
    pub latency: Duration,
    pub at: Timestamp,
}

/// Probe results of every app, shared between the gate (writer) and the reconciler (reader).
#[derive(Clone, Default)]
pub struct Book {
    apps: Arc<Mutex<HashMap<ObjectRef<McpApp>, AppRecord>>>,
}

impl Book {
    /// Records one handshake with `pod` of `app`.
    pub fn record(&self, app: &ObjectRef<McpApp>, pod: &str, handshake: Handshook) -> Recorded {
        let Handshook {
            revision,
            outcome,
            shown,
            latency,
            at,
        } = handshake;
        let mut apps = self.apps.lock().expect("probe book lock");
        let record = apps.entry(app.clone()).or_default();
        let previous = record.pods.get(pod);
        let changed = match previous {
            Some(p) => !same_outcome(&p.last, &outcome),
            None => !shown,
        };
        let failures_in_a_row = match (&outcome, previous) {
            (Ok(_), _) => 0,
            (Err(_), Some(p)) => p.failures_in_a_row.saturating_add(1),
            (Err(_), None) => 1,
        };
        if changed {
            record.last_change = Some(last_probe(pod, &outcome, latency, at));
            if let Ok(h) = &outcome {
                record.server = Some(server_info(h));
            }
        }
        if let (Ok(h), Some(revision)) = (&outcome, &revision) {
            record
                .contracts
                .insert(revision.clone(), h.contract.clone());
        }
        record.pods.insert(
            pod.to_owned(),
            PodRecord {
                revision,
                failures_in_a_row,
                last: outcome,
            },
        );
        Recorded {
            changed,
            failures_in_a_row,
        }
    }

    /// Records what the gate saw of `app`'s deadline; true when the deadline of some revision
    /// counts now and did not before (the app then needs a look).
    pub fn watch(&self, app: &ObjectRef<McpApp>, watch: Watch) -> bool {
        let mut apps = self.apps.lock().expect("probe book lock");
        let record = apps.entry(app.clone()).or_default();
        let before = std::mem::replace(&mut record.watch, watch);
        let now = &record.watch;
        now.long_enough
            && (!before.long_enough
                || before
                    .awaiting_handshake
                    .iter()
                    .any(|r| now.deadline_counts(r)))
    }

    /// Forgets a pod that no longer exists.
    pub fn forget_pod(&self, app: &ObjectRef<McpApp>, pod: &str) {
        let mut apps = self.apps.lock().expect("probe book lock");
        if let Some(record) = apps.get_mut(app) {
            record.pods.remove(pod);
            let pods = &record.pods;
            record
                .contracts
                .retain(|revision, _| pods.values().any(|p| p.revision.as_ref() == Some(revision)));
        }
    }

    /// Forgets an app that no longer exists.
    pub fn forget_app(&self, app: &ObjectRef<McpApp>) {
        self.apps.lock().expect("probe book lock").remove(app);
    }

    /// The apps that have records.
    pub fn apps(&self) -> Vec<ObjectRef<McpApp>> {
        let apps = self.apps.lock().expect("probe book lock");
        apps.keys().cloned().collect()
    }

    /// A copy of `app`'s records (empty when it has none).
    pub fn view(&self, app: &ObjectRef<McpApp>) -> AppRecord {
        let apps = self.apps.lock().expect("probe book lock");
        apps.get(app).cloned().unwrap_or_default()
    }
}

/// Whether two outcomes say the same thing (latency aside).
fn same_outcome(a: &Outcome, b: &Outcome) -> bool {
    match (a, b) {
        (Ok(a), Ok(b)) => server_info(a) == server_info(b) && a.server_version == b.server_version,
        (Err(a), Err(b)) => a == b,
        _ => false,
    }
}

pub fn server_info(h: &Handshake) -> ServerInfo {
    // Server-supplied strings: bounded and on one line before they reach the status.
    ServerInfo {
        name: clip(&h.server_name, SERVER_FIELD_BYTES),
        version: h
            .server_version
            .as_deref()
            .map(|v| clip(v, SERVER_FIELD_BYTES)),
        protocol_version: clip(&h.protocol_version, SERVER_FIELD_BYTES),
        tools: i32::try_from(h.tools).unwrap_or(i32::MAX),
        tool_names: h
            .contract
            .tools
            .keys()
            .take(STATUS_TOOL_NAMES)
            .map(|name| clip(name, SERVER_FIELD_BYTES))
            .collect(),
        tool_contract_digest: Some(h.contract_digest.clone()),
    }
}

fn last_probe(pod: &str, outcome: &Outcome, latency: Duration, at: Timestamp) -> LastProbe {
    LastProbe {
        time: crate::status::api_time(at),
        pod: Some(pod.to_owned()),
        result: match outcome {
            Ok(_) => ProbeResult::Succeeded,
            Err(_) => ProbeResult::Failed,
        },
        latency_milliseconds: Some(i64::try_from(latency.as_millis()).unwrap_or(i64::MAX)),
        message: outcome.as_ref().err().map(|f| f.message.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn app() -> ObjectRef<McpApp> {
        ObjectRef::new("demo").within("default")
    }

    fn ok(tools: usize) -> Outcome {
        Ok(Handshake::fixture("demo", tools))
    }

    fn failed(message: &str) -> Outcome {
        Err(Failure {
            reason: "HttpStatus",
            message: message.into(),
        })
    }

    fn record(book: &Book, pod: &str, rev: &str, outcome: Outcome, second: i64) -> Recorded {
        book.record(
            &app(),
            pod,
            Handshook {
                revision: Some(rev.into()),
                outcome,
                shown: false,
                latency: Duration::from_millis(second as u64),
                at: Timestamp::from_second(second).unwrap(),
            },
        )
    }

    #[test]
    fn repeated_outcomes_change_nothing_the_status_shows() {
        let book = Book::default();
        assert!(record(&book, "a", "r1", ok(4), 1).changed);
        let first = book.view(&app()).last_change;
        assert!(!record(&book, "a", "r1", ok(4), 2).changed);
        assert_eq!(
            book.view(&app()).last_change,
            first,
            "same outcome, same lastProbe"
        );
        assert_eq!(book.view(&app()).server.unwrap().tools, 4);
        // A different tool count is news.
        assert!(record(&book, "a", "r1", ok(5), 3).changed);
    }

    #[test]
    fn the_last_probe_time_is_what_the_api_server_keeps() {
        let book = Book::default();
        let at = Timestamp::from_second(7).unwrap() + Duration::from_millis(900);
        let handshake = Handshook {
            revision: Some("r1".into()),
            outcome: ok(4),
            shown: false,
            latency: Duration::from_millis(3),
            at,
        };
        book.record(&app(), "a", handshake);
        let shown = book.view(&app()).last_change.unwrap();
        let read_back: LastProbe =
            serde_json::from_value(serde_json::to_value(&shown).unwrap()).unwrap();
        assert_eq!(
            read_back, shown,
            "else every resync writes the status again"
        );
        assert_eq!(shown.time, Time(Timestamp::from_second(7).unwrap()));
    }

    #[test]
    fn failures_count_in_a_row_and_reset_on_success() {
        let book = Book::default();
        assert_eq!(
            record(&book, "a", "r2", failed("404"), 1).failures_in_a_row,
            1
        );
        let second = record(&book, "a", "r2", failed("404"), 2);
        assert_eq!((second.changed, second.failures_in_a_row), (false, 2));
        assert!(book.view(&app()).failing("r2", 3).is_none());
        record(&book, "a", "r2", failed("404"), 3);
        let view = book.view(&app());
        let (pod, failure) = view.failing("r2", 3).expect("three in a row");
        assert_eq!((pod, failure.message.as_str()), ("a", "404"));
        assert!(
            view.failing("r1", 3).is_none(),
            "only pods of that revision count"
        );
        assert_eq!(record(&book, "a", "r2", ok(1), 4).failures_in_a_row, 0);
        assert!(book.view(&app()).latest_failure("r2").is_none());
    }

    #[test]
    fn last_change_tells_the_latest_failure_and_keeps_the_server_of_the_last_success() {
        let book = Book::default();
        record(&book, "a", "r1", ok(2), 1);
        record(&book, "b", "r2", failed("timeout"), 2);
        let view = book.view(&app());
        let last = view.last_change.unwrap();
        assert_eq!(last.result, ProbeResult::Failed);
        assert_eq!(last.pod.as_deref(), Some("b"));
        assert_eq!(last.message.as_deref(), Some("timeout"));
        assert_eq!(view.server.unwrap().tools, 2);
        book.forget_pod(&app(), "b");
        assert!(book.view(&app()).latest_failure("r2").is_none());
    }

    #[test]
    fn a_deadline_counts_once_watched_long_enough_and_no_pod_awaits_its_handshake() {
        let book = Book::default();
        let awaiting = |revs: &[&str]| revs.iter().map(|r| (*r).to_owned()).collect();
        let watch = |long_enough, revs: &[&str]| Watch {
            long_enough,
            awaiting_handshake: awaiting(revs),
        };
        assert!(
            !book.watch(&app(), watch(false, &[])),
            "not watched long enough"
        );
        assert!(!book.view(&app()).watch.deadline_counts("r2"));
        assert!(
            book.watch(&app(), watch(true, &["r2"])),
            "r1's deadline counts now"
        );
        let view = book.view(&app());
        assert!(view.watch.deadline_counts("r1") && !view.watch.deadline_counts("r2"));
        assert!(!book.watch(&app(), watch(true, &["r2"])), "no news");
        assert!(
            book.watch(&app(), watch(true, &[])),
            "r2's pods got their handshake"
        );
        assert!(book.view(&app()).watch.deadline_counts("r2"));
    }

    #[test]
    fn a_first_outcome_the_pod_condition_already_shows_is_no_news() {
        let book = Book::default();
        let shown = |outcome| {
            book.record(
                &app(),
                "a",
                Handshook {
                    revision: Some("r1".into()),
                    outcome,
                    shown: true,
                    latency: Duration::ZERO,
                    at: Timestamp::UNIX_EPOCH,
                },
            )
        };
        assert!(!shown(ok(4)).changed, "an earlier process wrote it");
        let view = book.view(&app());
        assert!(view.last_change.is_none() && view.server.is_none());
        assert!(!record(&book, "a", "r1", ok(4), 2).changed);
        assert!(record(&book, "a", "r1", failed("503"), 3).changed);
    }
}
