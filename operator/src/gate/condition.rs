//! The pod condition `mcp-operator.dev/mcp-handshake` the gate wants, given the latest outcome.
//!
//! A pod that never passed is marked False at once, with the reason, so users see why a new
//! version is held back. A pod that passed keeps True through `failureThreshold - 1` failures
//! (one dropped handshake must not empty the endpoints) and turns False at the threshold.

use k8s_openapi::api::core::v1::Pod;

use super::book::Outcome;
use crate::api::HANDSHAKE_CONDITION;
use crate::api::conditions::reasons;

/// The parts of the condition the gate decides; equal values mean no write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub ok: bool,
    pub reason: String,
    pub message: String,
}

impl Wanted {
    pub fn status(&self) -> &'static str {
        if self.ok { "True" } else { "False" }
    }
}

/// The condition after `outcome`, or None to leave the current one as it is.
pub fn wanted(
    current: Option<&Wanted>,
    outcome: &Outcome,
    failures_in_a_row: u32,
    threshold: u32,
) -> Option<Wanted> {
    if outcome.is_err() && current.is_some_and(|c| c.ok) && failures_in_a_row < threshold {
        return None;
    }
    let next = describing(outcome);
    (current != Some(&next)).then_some(next)
}

/// The condition that states `outcome` as it is.
pub fn describing(outcome: &Outcome) -> Wanted {
    match outcome {
        Ok(h) => Wanted {
            ok: true,
            reason: reasons::HANDSHAKE_SUCCEEDED.into(),
            message: format!(
                "{}{} answered the MCP handshake (protocol {}, {} tools)",
                h.server_name,
                h.server_version
                    .as_deref()
                    .map(|v| format!(" {v}"))
                    .unwrap_or_default(),
                h.protocol_version,
                h.tools
            ),
        },
        Err(f) => Wanted {
            ok: false,
            reason: f.reason.into(),
            message: f.message.clone(),
        },
    }
}

/// The handshake condition the pod carries now.
pub fn current(pod: &Pod) -> Option<Wanted> {
    let c = pod
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == HANDSHAKE_CONDITION)?;
    Some(Wanted {
        ok: c.status == "True",
        reason: c.reason.clone().unwrap_or_default(),
        message: c.message.clone().unwrap_or_default(),
    })
}

/// Whether the pod's containers are running and ready: only then is a handshake meaningful.
pub fn containers_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c.type_ == "ContainersReady" && c.status == "True")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::book::Failure;
    use crate::probe::Handshake;

    fn ok() -> Outcome {
        let mut handshake = Handshake::fixture("weather", 3);
        handshake.server_version = Some("2.1.0".into());
        Ok(handshake)
    }

    fn failed() -> Outcome {
        Err(Failure {
            reason: "ToolsMissing",
            message: "tools missing from tools/list: forecast".into(),
        })
    }

    #[test]
    fn success_marks_the_pod_true_with_what_the_server_said() {
        let w = wanted(None, &ok(), 0, 3).unwrap();
        assert!(w.ok);
        assert_eq!(w.reason, "HandshakeSucceeded");
        assert_eq!(
            w.message,
            "weather 2.1.0 answered the MCP handshake (protocol 2025-11-25, 3 tools)"
        );
        assert_eq!(wanted(Some(&w), &ok(), 0, 3), None, "unchanged: no write");
    }

    #[test]
    fn a_pod_that_never_passed_is_false_at_the_first_failure() {
        let w = wanted(None, &failed(), 1, 3).unwrap();
        assert!(!w.ok);
        assert_eq!(w.reason, "ToolsMissing");
        assert_eq!(w.message, "tools missing from tools/list: forecast");
        assert_eq!(wanted(Some(&w), &failed(), 2, 3), None);
    }

    #[test]
    fn a_passing_pod_stays_true_until_the_threshold() {
        let good = wanted(None, &ok(), 0, 3).unwrap();
        assert_eq!(wanted(Some(&good), &failed(), 1, 3), None);
        assert_eq!(wanted(Some(&good), &failed(), 2, 3), None);
        let out = wanted(Some(&good), &failed(), 3, 3).unwrap();
        assert!(!out.ok);
        let back = wanted(Some(&out), &ok(), 0, 3).unwrap();
        assert!(back.ok, "one success puts it back");
    }
}
