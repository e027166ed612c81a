//! The Events a status change records: one per condition whose status or reason changed, a
//! Warning for what a person must look at, and a Warning when the public URL's certificate
//! starts to expire soon (or a new one does).

use kube::runtime::events::{Event, EventType};

use super::condition;
use crate::api::McpAppStatus;
use crate::api::conditions::{DEGRADED, REACHABLE, READY};

/// The reason of the Event recorded when the certificate expires soon.
pub const CERTIFICATE_EXPIRES_SOON: &str = "CertificateExpiresSoon";

/// The Events for going from `before` to `after`.
pub fn events(before: Option<&McpAppStatus>, after: &McpAppStatus) -> Vec<Event> {
    let mut events = condition_events(before, after);
    events.extend(certificate_event(before, after));
    events
}

/// A Warning when the certificate expires soon and did not before, or is another one.
fn certificate_event(before: Option<&McpAppStatus>, after: &McpAppStatus) -> Option<Event> {
    let now = after
        .external
        .as_ref()
        .filter(|e| e.certificate_expires_soon)?;
    let was = before.and_then(|b| b.external.as_ref());
    if was.is_some_and(|w| {
        w.certificate_expires_soon && w.certificate_not_after == now.certificate_not_after
    }) {
        return None;
    }
    let when = now
        .certificate_not_after
        .as_ref()
        .map(|t| t.0.to_string())
        .unwrap_or_default();
    Some(Event {
        type_: EventType::Warning,
        reason: CERTIFICATE_EXPIRES_SOON.into(),
        note: Some(format!(
            "the certificate of {} expires at {when}, within probe.external.certificateExpiryWarningDays: renew it",
            now.url
        )),
        action: "ProbeExternal".into(),
        secondary: None,
    })
}

fn condition_events(before: Option<&McpAppStatus>, after: &McpAppStatus) -> Vec<Event> {
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
                || (c.type_ == REACHABLE && c.status == "False")
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
    fn an_expiring_certificate_is_a_warning_once_per_certificate() {
        let with = |not_after: i64, soon: bool| McpAppStatus {
            external: Some(crate::api::ExternalStatus {
                url: "https://demo.example.test/mcp".into(),
                probe_time: None,
                latency_milliseconds: None,
                certificate_not_after: Some(Time(Timestamp::from_second(not_after).unwrap())),
                certificate_expires_soon: soon,
            }),
            ..McpAppStatus::default()
        };
        let recorded = events(Some(&with(100, false)), &with(100, true));
        assert_eq!(recorded.len(), 1);
        assert_eq!(recorded[0].reason, CERTIFICATE_EXPIRES_SOON);
        assert_eq!(recorded[0].type_, EventType::Warning);
        assert!(
            recorded[0]
                .note
                .as_deref()
                .unwrap()
                .contains("demo.example.test")
        );
        assert!(events(Some(&with(100, true)), &with(100, true)).is_empty());
        assert_eq!(
            events(Some(&with(100, true)), &with(200, true)).len(),
            1,
            "another certificate"
        );
        assert!(events(Some(&with(100, false)), &with(200, false)).is_empty());
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
        // Not reachable is a warning from the first result on.
        let unreachable = events(None, &status(&[("Reachable", "False", "TlsFailed")]));
        assert_eq!(unreachable[0].type_, EventType::Warning);
        // A new app that is not Ready yet has lost nothing.
        let first = events(None, &status(&[("Ready", "False", "RolloutInProgress")]));
        assert_eq!(first[0].type_, EventType::Normal);
    }
}
