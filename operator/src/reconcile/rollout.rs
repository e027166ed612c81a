//! Whether the revision the spec asks for may roll out, must be aborted, or is already known to
//! fail: pure, from the app's status, the live Deployment and the probe results.
//!
//! A revision is aborted when one of its pods fails `failureThreshold` handshakes in a row, or
//! when its Deployment passes `progressDeadlineSeconds` (pods that crash never reach a
//! handshake) and the gate has watched it for that long with every ready pod probed (operator
//! downtime and starved handshakes do not count). An aborted revision is remembered in `status.failedRevision` and not retried
//! until the spec changes; with `autoRollback` the last good revision is applied instead.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use crate::api::conditions::reasons;
use crate::gate::AppRecord;
use crate::status::Problem;

/// What the reconciler knows about the rollout.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// Revision name the current spec builds.
    pub wanted: &'a str,
    /// `status.stableRevision`: the last revision that passed, when its spec is still kept.
    pub stable: Option<&'a str>,
    /// `status.failedRevision`.
    pub failed: Option<&'a str>,
    pub auto_rollback: bool,
    /// Revision name the live Deployment's pod template carries.
    pub live: Option<&'a str>,
    /// The live Deployment reports `ProgressDeadlineExceeded`.
    pub deadline_exceeded: bool,
    pub threshold: u32,
}

/// The reconciler's course.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Apply the spec of this revision instead of the current spec.
    pub roll_back_to: Option<String>,
    /// `status.failedRevision` from now on.
    pub failed: Option<String>,
    /// Set when the wanted revision is aborted by this reconcile: why (`RolloutAborted`, or
    /// `ToolContractBroken` when its tools broke the contract).
    pub aborted_now: Option<Problem>,
}

/// Decides, given the facts and the app's probe records (keyed by the revision's pod label,
/// the hash after the app name in `wanted`).
pub fn decide(facts: Facts<'_>, record: &AppRecord, pod_label: &str) -> Decision {
    let roll_back_to = |failed: &str| {
        facts
            .stable
            .filter(|s| facts.auto_rollback && *s != failed)
            .map(str::to_owned)
    };
    if facts.failed == Some(facts.wanted) {
        return Decision {
            roll_back_to: roll_back_to(facts.wanted),
            failed: Some(facts.wanted.to_owned()),
            aborted_now: None,
        };
    }
    if facts.stable == Some(facts.wanted) {
        return keep(facts);
    }
    let failing = record.failing(pod_label, facts.threshold);
    // The deadline counts only for time the gate watched and pods that got their handshakes.
    let late = facts.deadline_exceeded
        && facts.live == Some(facts.wanted)
        && record.watch.deadline_counts(pod_label);
    let (reason, why) = match (failing, late) {
        (Some((pod, failure)), _) if failure.reason == reasons::TOOL_CONTRACT_BROKEN => (
            reasons::TOOL_CONTRACT_BROKEN,
            format!("pod {pod}: {}", failure.message),
        ),
        (Some((pod, failure)), _) => (
            reasons::ROLLOUT_ABORTED,
            format!(
                "pod {pod} failed {} MCP handshakes in a row: {}",
                facts.threshold, failure.message
            ),
        ),
        (None, true) => {
            let last = record
                .latest_failure(pod_label)
                .map(|(pod, f)| format!("; last handshake with pod {pod}: {}", f.message))
                .unwrap_or_else(|| "; no pod got as far as a handshake".to_owned());
            (
                reasons::ROLLOUT_ABORTED,
                format!(
                    "its pods did not pass the MCP handshake within rollout.progressDeadlineSeconds{last}"
                ),
            )
        }
        (None, false) => return keep(facts),
    };
    let target = roll_back_to(facts.wanted);
    let action = match &target {
        Some(stable) => format!("; rolled back to {stable}"),
        None if facts.auto_rollback => {
            "; no earlier revision passed, so there is nothing to roll back to".to_owned()
        }
        None => "; autoRollback is off, so its pods stay out of the Service".to_owned(),
    };
    Decision {
        roll_back_to: target,
        failed: Some(facts.wanted.to_owned()),
        aborted_now: Some(Problem {
            reason,
            message: format!(
                "revision {} aborted: {why}{action}. Change the spec to try again.",
                facts.wanted
            ),
        }),
    }
}

/// What a reconcile saw after applying.
#[derive(Debug, Clone, Copy)]
pub struct Applied<'a> {
    /// Revision name the current spec builds.
    pub wanted: &'a str,
    /// `status.stableRevision` before this reconcile.
    pub stable: Option<&'a str>,
    /// The applied revision, when its Deployment settled with enough pods through the handshake.
    pub passed: Option<&'a str>,
    /// The Degraded condition before this reconcile.
    pub degraded: Option<&'a Condition>,
}

/// The revisions to report, and the one to keep, after a reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bookkeeping {
    /// `status.stableRevision` from now on.
    pub stable: Option<String>,
    /// `status.failedRevision` from now on.
    pub failed: Option<String>,
    /// A revision that passed and must be kept for later rollbacks.
    pub keep: Option<String>,
    /// Why the wanted revision is held back, while it is.
    pub aborted: Option<Problem>,
}

/// Books the outcome of `decision` once the objects were applied: a revision that passed
/// becomes the stable one (and clears a failure of the same revision); an aborted revision
/// stays reported with the message written when it was aborted.
pub fn book(applied: Applied<'_>, decision: &Decision) -> Bookkeeping {
    let newly_passed = applied.passed.filter(|p| applied.stable != Some(*p));
    let stable = applied.passed.or(applied.stable).map(str::to_owned);
    // The wanted revision passing clears whatever failed before it.
    let failed = decision
        .failed
        .clone()
        .filter(|_| applied.passed != Some(applied.wanted));
    let aborted = match (&decision.aborted_now, &failed) {
        (Some(why), _) => Some(why.clone()),
        (None, Some(f)) if f == applied.wanted => Some(held_back(applied.degraded, f)),
        _ => None,
    };
    Bookkeeping {
        stable,
        failed,
        keep: newly_passed.map(str::to_owned),
        aborted,
    }
}

/// The Degraded message of a revision aborted earlier: the one written when it was aborted.
fn held_back(degraded: Option<&Condition>, failed: &str) -> Problem {
    let written = [reasons::ROLLOUT_ABORTED, reasons::TOOL_CONTRACT_BROKEN];
    degraded
        .and_then(|c| {
            let reason = written.into_iter().find(|r| *r == c.reason)?;
            c.message.contains(failed).then(|| Problem {
                reason,
                message: c.message.clone(),
            })
        })
        .unwrap_or_else(|| Problem {
            reason: reasons::ROLLOUT_ABORTED,
            message: format!(
                "revision {failed} failed its MCP handshakes earlier. Change the spec to try again."
            ),
        })
}

fn keep(facts: Facts<'_>) -> Decision {
    Decision {
        roll_back_to: None,
        failed: facts.failed.map(str::to_owned),
        aborted_now: None,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use k8s_openapi::jiff::Timestamp;
    use kube::runtime::reflector::ObjectRef;

    use super::*;
    use crate::gate::{Book, Failure, Handshook, Watch};

    fn facts<'a>() -> Facts<'a> {
        Facts {
            wanted: "demo-bbbb",
            stable: Some("demo-aaaa"),
            failed: None,
            auto_rollback: true,
            live: Some("demo-bbbb"),
            deadline_exceeded: false,
            threshold: 3,
        }
    }

    fn failing(times: usize) -> AppRecord {
        let book = Book::default();
        let app = ObjectRef::new("demo").within("default");
        for i in 0..times {
            book.record(
                &app,
                "demo-bbbb-x",
                Handshook {
                    revision: Some("bbbb".into()),
                    outcome: Err(Failure {
                        reason: "HttpStatus",
                        message: "HTTP 404 from initialize: not found".into(),
                    }),
                    shown: false,
                    latency: Duration::from_millis(2),
                    at: Timestamp::from_second(i as i64).unwrap(),
                },
            );
        }
        book.view(&app)
    }

    #[test]
    fn a_new_revision_rolls_out_while_its_pods_are_below_the_threshold() {
        let d = decide(facts(), &failing(2), "bbbb");
        assert_eq!(
            d,
            Decision {
                roll_back_to: None,
                failed: None,
                aborted_now: None
            }
        );
    }

    #[test]
    fn threshold_failures_abort_and_roll_back_with_the_probe_error() {
        let d = decide(facts(), &failing(3), "bbbb");
        assert_eq!(d.roll_back_to.as_deref(), Some("demo-aaaa"));
        assert_eq!(d.failed.as_deref(), Some("demo-bbbb"));
        let why = d.aborted_now.unwrap().message;
        assert!(
            why.contains("pod demo-bbbb-x failed 3 MCP handshakes in a row"),
            "{why}"
        );
        assert!(why.contains("HTTP 404 from initialize"), "{why}");
        assert!(why.contains("rolled back to demo-aaaa"), "{why}");
    }

    #[test]
    fn a_broken_tool_contract_aborts_with_its_own_reason_and_keeps_it_while_held_back() {
        let probes = Book::default();
        let app = ObjectRef::new("demo").within("default");
        for i in 0..3 {
            probes.record(
                &app,
                "demo-bbbb-x",
                Handshook {
                    revision: Some("bbbb".into()),
                    outcome: Err(Failure {
                        reason: reasons::TOOL_CONTRACT_BROKEN,
                        message: "tools/list breaks the tool contract of demo-aaaa: tool \"add\": removed".into(),
                    }),
                    shown: false,
                    latency: Duration::from_millis(2),
                    at: Timestamp::from_second(i).unwrap(),
                },
            );
        }
        let d = decide(facts(), &probes.view(&app), "bbbb");
        let why = d.aborted_now.clone().unwrap();
        assert_eq!(why.reason, reasons::TOOL_CONTRACT_BROKEN);
        assert!(why.message.contains("pod demo-bbbb-x: tools/list breaks the tool contract of demo-aaaa: tool \"add\": removed"), "{}", why.message);
        assert!(
            why.message.contains("rolled back to demo-aaaa"),
            "{}",
            why.message
        );
        // Held back in later reconciles, the condition keeps its reason and words.
        let condition = Condition {
            type_: "Degraded".into(),
            status: "True".into(),
            reason: why.reason.into(),
            message: why.message.clone(),
            observed_generation: None,
            last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                Timestamp::UNIX_EPOCH,
            ),
        };
        let held = Facts {
            failed: Some("demo-bbbb"),
            ..facts()
        };
        let later = decide(held, &AppRecord::default(), "bbbb");
        let books = book(
            Applied {
                degraded: Some(&condition),
                ..settled(Some("demo-aaaa"))
            },
            &later,
        );
        assert_eq!(books.aborted, Some(why));
    }

    #[test]
    fn a_failed_revision_is_not_retried_until_the_spec_changes() {
        let held = Facts {
            failed: Some("demo-bbbb"),
            ..facts()
        };
        let d = decide(held, &AppRecord::default(), "bbbb");
        assert_eq!(d.roll_back_to.as_deref(), Some("demo-aaaa"));
        assert_eq!(d.aborted_now, None, "already aborted: no second Event");
        let fixed = Facts {
            wanted: "demo-cccc",
            live: Some("demo-aaaa"),
            ..held
        };
        let d = decide(fixed, &AppRecord::default(), "cccc");
        assert_eq!(d.roll_back_to, None, "a changed spec rolls out");
        assert_eq!(d.failed.as_deref(), Some("demo-bbbb"));
    }

    fn watched(long_enough: bool, awaiting: &[&str]) -> AppRecord {
        AppRecord {
            watch: Watch {
                long_enough,
                awaiting_handshake: awaiting.iter().map(|r| (*r).to_owned()).collect(),
            },
            ..AppRecord::default()
        }
    }

    #[test]
    fn the_progress_deadline_aborts_pods_that_never_got_to_a_handshake() {
        let late = Facts {
            deadline_exceeded: true,
            ..facts()
        };
        let why = decide(late, &watched(true, &[]), "bbbb")
            .aborted_now
            .unwrap()
            .message;
        assert!(
            why.contains("within rollout.progressDeadlineSeconds; no pod got as far"),
            "{why}"
        );
        // The deadline of an older template says nothing about the wanted revision.
        let other = Facts {
            live: Some("demo-aaaa"),
            ..late
        };
        assert_eq!(decide(other, &watched(true, &[]), "bbbb").aborted_now, None);
    }

    #[test]
    fn the_deadline_does_not_count_operator_downtime_or_handshakes_that_never_ran() {
        let late = Facts {
            deadline_exceeded: true,
            ..facts()
        };
        // The operator started less than a deadline ago: the time before is not held against it.
        assert_eq!(decide(late, &watched(false, &[]), "bbbb").aborted_now, None);
        // Pods of the revision wait for their first handshake (all permits busy elsewhere).
        assert_eq!(
            decide(late, &watched(true, &["bbbb"]), "bbbb").aborted_now,
            None
        );
        // Another revision's waiting pods do not shield this one.
        assert!(
            decide(late, &watched(true, &["aaaa"]), "bbbb")
                .aborted_now
                .is_some()
        );
    }

    #[test]
    fn without_a_good_revision_or_auto_rollback_the_failure_is_reported_in_place() {
        let first = Facts {
            stable: None,
            ..facts()
        };
        let d = decide(first, &failing(3), "bbbb");
        assert_eq!(d.roll_back_to, None);
        assert!(
            d.aborted_now
                .unwrap()
                .message
                .contains("nothing to roll back to")
        );
        let manual = Facts {
            auto_rollback: false,
            ..facts()
        };
        let d = decide(manual, &failing(3), "bbbb");
        assert_eq!(d.roll_back_to, None);
        assert!(
            d.aborted_now
                .unwrap()
                .message
                .contains("autoRollback is off")
        );
    }

    fn settled<'a>(passed: Option<&'a str>) -> Applied<'a> {
        Applied {
            wanted: "demo-bbbb",
            stable: Some("demo-aaaa"),
            passed,
            degraded: None,
        }
    }

    #[test]
    fn a_revision_that_passed_becomes_stable_and_is_kept_once() {
        let rolled = keep(facts());
        let books = book(settled(Some("demo-bbbb")), &rolled);
        assert_eq!(books.stable.as_deref(), Some("demo-bbbb"));
        assert_eq!(books.keep.as_deref(), Some("demo-bbbb"));
        let again = book(
            Applied {
                stable: Some("demo-bbbb"),
                ..settled(Some("demo-bbbb"))
            },
            &rolled,
        );
        assert_eq!(again.keep, None, "already kept");
        let unsettled = book(settled(None), &rolled);
        assert_eq!(unsettled.stable.as_deref(), Some("demo-aaaa"));
        assert_eq!(unsettled.keep, None);
    }

    #[test]
    fn a_rolled_back_revision_that_settles_keeps_the_failure_of_the_wanted_one() {
        let aborted = decide(facts(), &failing(3), "bbbb");
        // The stable revision settles again after the rollback: still stable, still failed.
        let books = book(settled(Some("demo-aaaa")), &aborted);
        assert_eq!(books.stable.as_deref(), Some("demo-aaaa"));
        assert_eq!(books.keep, None);
        assert_eq!(books.failed.as_deref(), Some("demo-bbbb"));
        assert!(
            books
                .aborted
                .unwrap()
                .message
                .contains("rolled back to demo-aaaa")
        );
    }

    #[test]
    fn a_held_back_revision_keeps_the_message_written_when_it_was_aborted() {
        let held = Facts {
            failed: Some("demo-bbbb"),
            ..facts()
        };
        let decision = decide(held, &AppRecord::default(), "bbbb");
        let condition = Condition {
            type_: "Degraded".into(),
            status: "True".into(),
            reason: reasons::ROLLOUT_ABORTED.into(),
            message: "revision demo-bbbb aborted: pod x failed 3 MCP handshakes".into(),
            observed_generation: None,
            last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                Timestamp::UNIX_EPOCH,
            ),
        };
        let books = book(
            Applied {
                degraded: Some(&condition),
                ..settled(Some("demo-aaaa"))
            },
            &decision,
        );
        assert_eq!(
            books.aborted.map(|a| a.message),
            Some(condition.message.clone())
        );
        let without = book(settled(Some("demo-aaaa")), &decision);
        assert!(
            without
                .aborted
                .unwrap()
                .message
                .contains("failed its MCP handshakes earlier")
        );
    }

    #[test]
    fn a_failed_revision_that_later_passes_is_no_longer_failed() {
        // The user re-applied the same spec and its pods passed (say, a dependency came back).
        let held = Facts {
            failed: Some("demo-bbbb"),
            auto_rollback: false,
            ..facts()
        };
        let decision = decide(held, &AppRecord::default(), "bbbb");
        let books = book(settled(Some("demo-bbbb")), &decision);
        assert_eq!(books.failed, None);
        assert_eq!(books.aborted, None);
        assert_eq!(books.stable.as_deref(), Some("demo-bbbb"));
    }

    #[test]
    fn the_stable_revision_is_never_aborted() {
        let steady = Facts {
            wanted: "demo-aaaa",
            live: Some("demo-aaaa"),
            deadline_exceeded: true,
            ..facts()
        };
        assert_eq!(decide(steady, &failing(5), "aaaa").aborted_now, None);
    }
}
