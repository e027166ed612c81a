//! The McpApp's status, computed from what the operator observed: no I/O here.
//!
//! - `Ready`: enough pods passed their MCP handshake to serve (all desired replicas, or the
//!   autoscaler's minimum), so `kubectl wait --for=condition=Ready` means "answers MCP".
//! - `Progressing`: a new revision is rolling out.
//! - `Degraded`: something needs the user: an invalid spec, a missing dependency, a revision
//!   aborted because its pods failed the handshake (`RolloutAborted`) or broke the tool contract
//!   (`ToolContractBroken`), a rollout past its deadline.
//!
//! - `Reachable` (with `spec.probe.external` on): a handshake through the public URL succeeded
//!   ([`reachable`]).
//!
//! A condition's `lastTransitionTime` changes only when its status does; the Events a status
//! change records are chosen in [`events`].

mod events;
mod reachable;

pub use events::events;
pub use reachable::Reach;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use crate::api::conditions::{DEGRADED, PROGRESSING, READY, reasons};
use crate::api::{AuthStatus, LastProbe, McpApp, McpAppStatus, ServerInfo};

/// A problem that makes the app Degraded, found while reconciling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub reason: &'static str,
    pub message: String,
}

/// What the reconciler observed.
#[derive(Default)]
pub struct Observed<'a> {
    pub deployment: Option<&'a Deployment>,
    pub url: Option<String>,
    pub problem: Option<Problem>,
    /// Why the API server refused the objects of the current spec: it is not applied.
    pub not_applied: Option<String>,
    /// Why the wanted revision is aborted, while it is.
    pub aborted: Option<Problem>,
    /// The latest failed handshake of a pod of the revision rolling out: `pod X: error`.
    pub handshake_failure: Option<String>,
    pub stable_revision: Option<String>,
    pub failed_revision: Option<String>,
    /// From the probe results; None keeps what the status shows.
    pub server: Option<ServerInfo>,
    pub last_probe: Option<LastProbe>,
    /// What the external probe found.
    pub external: Reach,
}

/// The status to report; probe results the operator has not seen since it started are kept
/// from `app`'s current status.
pub fn compute(app: &McpApp, observed: &Observed<'_>, now: Timestamp) -> McpAppStatus {
    let previous = app.status.clone().unwrap_or_default();
    let generation = app.metadata.generation;
    let rollout = Rollout::of(app, observed.deployment);

    let ready = if let Some(why) = &observed.not_applied {
        cond(READY, false, reasons::APPLY_FAILED, why.clone())
    } else if rollout.ready >= rollout.needed && rollout.needed > 0 {
        cond(
            READY,
            true,
            reasons::HANDSHAKE_SUCCEEDED,
            format!(
                "{} of {} pods passed the MCP handshake",
                rollout.ready, rollout.desired
            ),
        )
    } else {
        let waiting = format!(
            "{} of {} pods passed the MCP handshake; waiting for {}",
            rollout.ready,
            rollout.desired,
            rollout.needed.max(1)
        );
        match &observed.handshake_failure {
            Some(failure) => cond(
                READY,
                false,
                reasons::HANDSHAKE_FAILED,
                format!("{waiting}; {failure}"),
            ),
            None => cond(READY, false, reasons::ROLLOUT_IN_PROGRESS, waiting),
        }
    };
    let progressing = if rollout.complete {
        cond(
            PROGRESSING,
            false,
            reasons::ROLLOUT_COMPLETE,
            format!("{} pods run the current revision", rollout.updated),
        )
    } else {
        cond(
            PROGRESSING,
            true,
            reasons::ROLLOUT_IN_PROGRESS,
            format!(
                "{} of {} pods run the current revision",
                rollout.updated, rollout.desired
            ),
        )
    };
    let degraded = match (
        observed
            .not_applied
            .as_ref()
            .map(|why| Problem {
                reason: reasons::APPLY_FAILED,
                message: why.clone(),
            })
            .or_else(|| observed.problem.clone()),
        &observed.aborted,
        rollout.deadline_exceeded,
    ) {
        (Some(p), _, _) => cond(DEGRADED, true, p.reason, p.message),
        (None, Some(why), _) => cond(DEGRADED, true, why.reason, why.message.clone()),
        (None, None, Some(message)) => {
            cond(DEGRADED, true, reasons::PROGRESS_DEADLINE_EXCEEDED, message)
        }
        (None, None, None) => cond(DEGRADED, false, "AsExpected", "no problem found".into()),
    };

    let (reachable, external) = reachable::compute(&previous, &observed.external);
    let conditions = [Some(ready), Some(progressing), Some(degraded), reachable]
        .into_iter()
        .flatten()
        .map(|mut c| {
            c.observed_generation = generation;
            c.last_transition_time = previous
                .conditions
                .iter()
                .find(|p| p.type_ == c.type_ && p.status == c.status)
                .map(|p| p.last_transition_time.clone())
                .unwrap_or_else(|| api_time(now));
            c
        })
        .collect();

    McpAppStatus {
        observed_generation: generation,
        conditions,
        replicas: Some(rollout.current),
        ready_replicas: Some(rollout.ready),
        url: observed.url.clone(),
        server: observed.server.clone().or(previous.server),
        last_probe: observed.last_probe.clone().or(previous.last_probe),
        external,
        stable_revision: observed.stable_revision.clone(),
        failed_revision: observed.failed_revision.clone(),
        auth: auth(app),
    }
}

/// What the spec says of authentication, for the status.
fn auth(app: &McpApp) -> Option<AuthStatus> {
    let probe = &app.spec.probe;
    let handshake = if probe.client_credentials.is_some() {
        Some("ClientCredentials")
    } else if probe.bearer_token_secret_ref.is_some() {
        Some("BearerToken")
    } else {
        None
    };
    let oauth = app.spec.auth.as_ref().and_then(|a| a.oauth.as_ref());
    let mode = match (oauth, handshake) {
        (Some(_), _) => "OAuth",
        (None, Some(_)) => "BearerToken",
        (None, None) => return None,
    };
    Some(AuthStatus {
        mode: mode.into(),
        issuer: oauth.map(|o| o.issuer.clone()),
        resource: oauth.map(|_| crate::build::oauth_resource(app)),
        handshake: handshake.map(str::to_owned),
    })
}

/// `at` as the API server keeps it: whole seconds (a `Time` is written without its fraction).
/// Every time in the status is made with it, so that a status computed again compares equal to
/// the one read back, and a reconcile that finds nothing new writes nothing.
pub fn api_time(at: Timestamp) -> Time {
    Time(Timestamp::from_second(at.as_second()).unwrap_or(at))
}

fn cond(type_: &str, ok: bool, reason: &str, message: String) -> Condition {
    Condition {
        type_: type_.into(),
        status: if ok { "True" } else { "False" }.into(),
        reason: reason.into(),
        message,
        observed_generation: None,
        last_transition_time: Time(Timestamp::UNIX_EPOCH),
    }
}

/// The Deployment's progress, in the app's terms.
struct Rollout {
    desired: i32,
    /// Ready pods needed for the app to be Ready.
    needed: i32,
    current: i32,
    ready: i32,
    updated: i32,
    complete: bool,
    deadline_exceeded: Option<String>,
}

impl Rollout {
    fn of(app: &McpApp, deployment: Option<&Deployment>) -> Self {
        let spec_replicas = deployment.and_then(|d| d.spec.replicas).unwrap_or(1);
        let needed = match &app.spec.autoscaling {
            Some(a) => a.min_replicas.min(spec_replicas),
            None => spec_replicas,
        };
        let Some(d) = deployment else {
            return Rollout {
                desired: spec_replicas,
                needed,
                current: 0,
                ready: 0,
                updated: 0,
                complete: false,
                deadline_exceeded: None,
            };
        };
        let status = d.status.clone().unwrap_or_default();
        let observed = status.observed_generation >= d.metadata.generation;
        let updated = status.updated_replicas.unwrap_or(0);
        let current = status.replicas.unwrap_or(0);
        let complete = observed
            && updated >= spec_replicas
            && current == updated
            && status.available_replicas.unwrap_or(0) >= spec_replicas;
        let deadline_exceeded = deadline_exceeded(d).map(|message| {
            format!("the rollout did not finish within rollout.progressDeadlineSeconds: {message}")
        });
        Rollout {
            desired: spec_replicas,
            needed,
            current,
            ready: status.ready_replicas.unwrap_or(0),
            updated,
            complete,
            deadline_exceeded,
        }
    }
}

/// The Deployment controller's message when the Deployment passed its progress deadline.
pub fn deadline_exceeded(d: &Deployment) -> Option<String> {
    d.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| {
            c.type_.as_deref() == Some("Progressing")
                && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
        })
        .map(|c| c.message.clone().unwrap_or_default())
}

/// Whether `d` finished rolling out its template and enough of its pods passed the handshake
/// for the app to be Ready.
pub fn settled(app: &McpApp, d: &Deployment) -> bool {
    let rollout = Rollout::of(app, Some(d));
    rollout.complete && rollout.needed > 0 && rollout.ready >= rollout.needed
}

/// The condition of `type_` in `status`, if present.
pub fn condition<'a>(status: Option<&'a McpAppStatus>, type_: &str) -> Option<&'a Condition> {
    status?.conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> McpApp {
        let mut app: McpApp = serde_json::from_value(serde_json::json!({
            "apiVersion": "mcp-operator.dev/v1alpha1",
            "kind": "McpApp",
            "metadata": {"name": "demo", "namespace": "default", "generation": 2},
            "spec": {},
        }))
        .expect("minimal McpApp");
        app.status = None;
        app
    }

    fn deployment(replicas: i32, ready: i32, updated: i32) -> Deployment {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "demo", "generation": 1},
            "spec": {"replicas": replicas, "selector": {}, "template": {}},
            "status": {
                "observedGeneration": 1, "replicas": updated.max(replicas),
                "readyReplicas": ready, "availableReplicas": ready, "updatedReplicas": updated,
            },
        }))
        .expect("deployment")
    }

    fn status_of(app: &McpApp, d: Option<&Deployment>) -> McpAppStatus {
        let observed = Observed {
            deployment: d,
            url: Some("http://demo.default.svc:80/mcp".into()),
            ..Observed::default()
        };
        compute(app, &observed, Timestamp::from_second(100).unwrap())
    }

    #[test]
    fn app_is_ready_when_every_desired_pod_passed_its_handshake() {
        let d = deployment(2, 2, 2);
        let status = status_of(&app(), Some(&d));
        let ready = condition(Some(&status), READY).unwrap();
        assert_eq!(ready.status, "True");
        assert_eq!(ready.reason, reasons::HANDSHAKE_SUCCEEDED);
        assert_eq!(ready.observed_generation, Some(2));
        let progressing = condition(Some(&status), PROGRESSING).unwrap();
        assert_eq!(progressing.status, "False");
        assert_eq!(status.ready_replicas, Some(2));
        assert_eq!(status.observed_generation, Some(2));
    }

    #[test]
    fn app_without_pods_is_not_ready_and_says_how_many_passed() {
        let d = deployment(2, 1, 1);
        let status = status_of(&app(), Some(&d));
        let ready = condition(Some(&status), READY).unwrap();
        assert_eq!(ready.status, "False");
        assert_eq!(
            ready.message,
            "1 of 2 pods passed the MCP handshake; waiting for 2"
        );
        assert_eq!(
            condition(Some(&status), PROGRESSING).unwrap().status,
            "True"
        );
    }

    #[test]
    fn problem_makes_the_app_degraded_with_its_reason() {
        let observed = Observed {
            deployment: None,
            url: None,
            problem: Some(Problem {
                reason: reasons::INVALID_SPEC,
                message: "bad".into(),
            }),
            ..Observed::default()
        };
        let status = compute(&app(), &observed, Timestamp::UNIX_EPOCH);
        let degraded = condition(Some(&status), DEGRADED).unwrap();
        assert_eq!(
            (degraded.status.as_str(), degraded.reason.as_str()),
            ("True", "InvalidSpec")
        );
    }

    #[test]
    fn a_spec_the_api_server_refused_is_not_ready_whatever_the_old_pods_do() {
        // The old pods all pass; the new generation never reached the cluster.
        let d = deployment(2, 2, 2);
        let observed = Observed {
            deployment: Some(&d),
            not_applied: Some("Service \"demo\" is invalid: spec.ports".into()),
            ..Observed::default()
        };
        let status = compute(&app(), &observed, Timestamp::UNIX_EPOCH);
        for type_ in [READY, DEGRADED] {
            let c = condition(Some(&status), type_).unwrap();
            assert_eq!(c.reason, reasons::APPLY_FAILED, "{type_}");
            assert!(c.message.contains("is invalid"), "{}", c.message);
            assert_eq!(
                c.observed_generation,
                Some(2),
                "kubectl wait sees this generation"
            );
        }
        assert_eq!(condition(Some(&status), READY).unwrap().status, "False");
        assert_eq!(condition(Some(&status), DEGRADED).unwrap().status, "True");
    }

    #[test]
    fn transition_time_changes_only_with_the_status() {
        let d = deployment(1, 1, 1);
        let mut app = app();
        let first = status_of(&app, Some(&d));
        app.status = Some(first.clone());
        let later = Observed {
            deployment: Some(&d),
            url: first.url.clone(),
            ..Observed::default()
        };
        let second = compute(&app, &later, Timestamp::from_second(999).unwrap());
        assert_eq!(first, second, "nothing changed, so nothing is written");
    }

    #[test]
    fn a_status_read_back_from_the_api_server_is_computed_again_unchanged() {
        let d = deployment(1, 1, 1);
        let mut app = app();
        let at = Timestamp::from_second(1_000).unwrap() + std::time::Duration::from_millis(250);
        let observed = Observed {
            deployment: Some(&d),
            url: Some("http://demo.default.svc:80/mcp".into()),
            last_probe: Some(LastProbe {
                time: api_time(at),
                pod: Some("demo-1".into()),
                result: crate::api::ProbeResult::Succeeded,
                latency_milliseconds: Some(3),
                message: None,
            }),
            ..Observed::default()
        };
        let written = compute(&app, &observed, at);
        let read_back: McpAppStatus =
            serde_json::from_value(serde_json::to_value(&written).unwrap()).unwrap();
        assert_eq!(read_back, written, "the API server keeps what was written");
        app.status = Some(read_back);
        let again = compute(&app, &observed, at + std::time::Duration::from_secs(300));
        assert_eq!(
            app.status,
            Some(again),
            "a resync with nothing new writes nothing"
        );
    }

    #[test]
    fn a_failed_handshake_says_why_the_app_is_not_ready() {
        let d = deployment(1, 0, 1);
        let observed = Observed {
            deployment: Some(&d),
            handshake_failure: Some("pod demo-1: tools missing from tools/list: forecast".into()),
            ..Observed::default()
        };
        let status = compute(&app(), &observed, Timestamp::UNIX_EPOCH);
        let ready = condition(Some(&status), READY).unwrap();
        assert_eq!(ready.reason, reasons::HANDSHAKE_FAILED);
        assert!(
            ready
                .message
                .ends_with("tools missing from tools/list: forecast"),
            "{}",
            ready.message
        );
    }

    #[test]
    fn an_aborted_rollout_degrades_the_app_while_the_old_pods_keep_it_ready() {
        let d = deployment(1, 1, 1);
        let observed = Observed {
            deployment: Some(&d),
            aborted: Some(Problem {
                reason: reasons::ROLLOUT_ABORTED,
                message: "revision demo-bbbb aborted: ...".into(),
            }),
            stable_revision: Some("demo-aaaa".into()),
            failed_revision: Some("demo-bbbb".into()),
            ..Observed::default()
        };
        let status = compute(&app(), &observed, Timestamp::UNIX_EPOCH);
        let degraded = condition(Some(&status), DEGRADED).unwrap();
        assert_eq!(
            (degraded.status.as_str(), degraded.reason.as_str()),
            ("True", "RolloutAborted")
        );
        assert_eq!(condition(Some(&status), READY).unwrap().status, "True");
        assert_eq!(status.failed_revision.as_deref(), Some("demo-bbbb"));
        assert_eq!(status.stable_revision.as_deref(), Some("demo-aaaa"));
    }
}
