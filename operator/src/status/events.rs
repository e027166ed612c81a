//! The Events a status change records: one per condition whose status or reason changed, a
//! Warning for what a person must look at.

use kube::runtime::events::{Event, EventType};

use super::condition;
use crate::api::McpAppStatus;
use crate::api::conditions::{DEGRADED, READY};

/// The Events for going from `before` to `after`.
pub fn events(before: Option<&McpAppStatus>, after: &McpAppStatus) -> Vec<Event> {
    after
        .conditions
        .iter()
        .filter_map(|c| {
            let was = condition(before, &c.type_);
            if was.is_some_and(|b| b.status == c.status && b.reason == c.reason) {
                return None;
            }
            // Degraded=True and Ready turning False are what a person must look at.
            let warning = (c.type_ == DEGRADED && c.status == "True")
                || (c.type_ == READY
                    && c.status == "False"
                    && was.is_some_and(|b| b.status == "True"));
            Some(Event {
                type_: if warning {
                    EventType::Warning
                } else {
                    EventType::Normal
                },
                reason: c.reason.clone(),
                note: Some(format!("{}={}: {}", c.type_, c.status, c.message)),
                action: "Reconcile".into(),
                secondary: None,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    fn status(conditions: &[(&str, &str, &str)]) -> McpAppStatus {
        McpAppStatus {
            conditions: conditions
                .iter()
                .map(|(type_, status, reason)| Condition {
                    type_: (*type_).into(),
                    status: (*status).into(),
                    reason: (*reason).into(),
                    message: format!("{reason} happened"),
                    observed_generation: None,
                    last_transition_time: Time(Timestamp::UNIX_EPOCH),
                })
                .collect(),
            ..McpAppStatus::default()
        }
    }

    #[test]
    fn only_changed_conditions_are_recorded() {
        let before = status(&[("Ready", "True", "HandshakeSucceeded")]);
        assert!(events(Some(&before), &before).is_empty());
        let after = status(&[
            ("Ready", "True", "HandshakeSucceeded"),
            ("Degraded", "False", "AsExpected"),
        ]);
        let recorded = events(Some(&before), &after);
        assert_eq!(recorded.len(), 1);
        assert_eq!(recorded[0].type_, EventType::Normal);
        assert_eq!(
            recorded[0].note.as_deref(),
            Some("Degraded=False: AsExpected happened")
        );
    }

    #[test]
    fn losing_readiness_and_degrading_are_warnings() {
        let before = status(&[
            ("Ready", "True", "HandshakeSucceeded"),
            ("Degraded", "False", "AsExpected"),
        ]);
        let after = status(&[
            ("Ready", "False", "HandshakeFailed"),
            ("Degraded", "True", "RolloutAborted"),
        ]);
        let recorded = events(Some(&before), &after);
        let kinds: Vec<_> = recorded
            .iter()
            .map(|e| e.type_ == EventType::Warning)
            .collect();
        assert_eq!(kinds, [true, true]);
        // A new app that is not Ready yet has lost nothing.
        let first = events(None, &status(&[("Ready", "False", "RolloutInProgress")]));
        assert_eq!(first[0].type_, EventType::Normal);
    }
}
