//! The `Reachable` condition and `status.external`, from what the external probe found
//! ([`crate::external`]). Absent while `spec.probe.external` is off; `Unknown` until the first
//! handshake through the URL finishes; `False` at once when the app has no public URL.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use super::condition;
use crate::api::conditions::{REACHABLE, reasons};
use crate::api::{ExternalStatus, McpAppStatus};
use crate::external::Record;

/// What the reconciler knows of an app's external probe.
#[derive(Debug, Clone, Default)]
pub enum Reach {
    /// `spec.probe.external` is absent or not enabled.
    #[default]
    Off,
    /// On, but the app has no public URL.
    NoUrl,
    /// On, probing `url`; the last result for this URL, when this process has one.
    Probing { url: String, record: Option<Record> },
}

/// The condition (its `lastTransitionTime` left to the caller) and `status.external`.
pub fn compute(
    previous: &McpAppStatus,
    reach: &Reach,
) -> (Option<Condition>, Option<ExternalStatus>) {
    let shown = condition(Some(previous), REACHABLE);
    match reach {
        Reach::Off => (None, None),
        Reach::NoUrl => (
            Some(cond(
                "False",
                reasons::NO_URL,
                "probe.external is on, but the app has no public URL to probe: set ingress.host \
                 or gateway.hostnames (not a wildcard), or probe.external.url"
                    .into(),
            )),
            None,
        ),
        Reach::Probing { url, record: None } => match (&previous.external, shown) {
            // This process has not probed yet (it just started): what the status shows stands.
            (Some(external), Some(shown)) if &external.url == url => {
                (Some(shown.clone()), Some(external.clone()))
            }
            _ => (
                Some(cond(
                    "Unknown",
                    reasons::NOT_PROBED_YET,
                    format!("the first handshake through {url} is due"),
                )),
                Some(ExternalStatus {
                    url: url.clone(),
                    probe_time: None,
                    latency_milliseconds: None,
                    certificate_not_after: None,
                    certificate_expires_soon: false,
                }),
            ),
        },
        Reach::Probing {
            url,
            record: Some(record),
        } => {
            let picture = &record.picture;
            let condition = cond(
                if picture.verdict.ok() {
                    "True"
                } else {
                    "False"
                },
                picture.verdict.reason,
                picture.verdict.message.clone(),
            );
            let mut external = ExternalStatus {
                url: url.clone(),
                probe_time: Some(super::api_time(record.at)),
                latency_milliseconds: Some(
                    i64::try_from(record.latency.as_millis()).unwrap_or(i64::MAX),
                ),
                certificate_not_after: picture.not_after.map(Time),
                certificate_expires_soon: picture.expires_soon,
            };
            // The same picture as shown, found again by a new process: keep the time and
            // latency shown, so a restart writes nothing.
            if let (Some(before), Some(shown)) = (&previous.external, shown)
                && same_picture(before, &external)
                && shown.status == condition.status
                && shown.reason == condition.reason
                && shown.message == condition.message
            {
                external.probe_time = before.probe_time.clone();
                external.latency_milliseconds = before.latency_milliseconds;
            }
            (Some(condition), Some(external))
        }
    }
}

fn same_picture(a: &ExternalStatus, b: &ExternalStatus) -> bool {
    a.url == b.url
        && a.certificate_not_after == b.certificate_not_after
        && a.certificate_expires_soon == b.certificate_expires_soon
}

fn cond(status: &str, reason: &str, message: String) -> Condition {
    Condition {
        type_: REACHABLE.into(),
        status: status.into(),
        reason: reason.into(),
        message,
        observed_generation: None,
        last_transition_time: Time(Timestamp::UNIX_EPOCH),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::external::Picture;
    use crate::external::verdict::{Verdict, reasons as why};

    const URL: &str = "https://demo.example.test/mcp";

    fn record(reason: &'static str, at: i64) -> Record {
        Record {
            picture: Picture {
                url: URL.into(),
                verdict: Verdict::new(reason, "m"),
                not_after: Timestamp::from_second(2_000_000_000).ok(),
                expires_soon: false,
            },
            at: Timestamp::from_second(at).unwrap(),
            latency: Duration::from_millis(42),
        }
    }

    fn probing(record: Option<Record>) -> Reach {
        Reach::Probing {
            url: URL.into(),
            record,
        }
    }

    fn status_with(c: Option<Condition>, external: Option<ExternalStatus>) -> McpAppStatus {
        McpAppStatus {
            conditions: c.into_iter().collect(),
            external,
            ..McpAppStatus::default()
        }
    }

    #[test]
    fn off_means_no_condition_and_no_url_means_false_at_once() {
        assert_eq!(compute(&McpAppStatus::default(), &Reach::Off), (None, None));
        let (c, external) = compute(&McpAppStatus::default(), &Reach::NoUrl);
        let c = c.unwrap();
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", "NoUrl"));
        assert!(c.message.contains("probe.external.url"), "{}", c.message);
        assert_eq!(external, None);
    }

    #[test]
    fn unknown_until_the_first_result_then_the_results_reason() {
        let (c, external) = compute(&McpAppStatus::default(), &probing(None));
        assert_eq!(c.unwrap().status, "Unknown");
        assert_eq!(external.unwrap().url, URL);
        let (c, external) = compute(
            &McpAppStatus::default(),
            &probing(Some(record(why::HANDSHAKE_SUCCEEDED, 100))),
        );
        let c = c.unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("True", "HandshakeSucceeded")
        );
        let external = external.unwrap();
        assert_eq!(external.latency_milliseconds, Some(42));
        assert_eq!(
            external.certificate_not_after,
            Timestamp::from_second(2_000_000_000).ok().map(Time)
        );
        let (c, _) = compute(
            &McpAppStatus::default(),
            &probing(Some(record(why::CERTIFICATE_EXPIRED, 100))),
        );
        assert_eq!(c.unwrap().status, "False");
    }

    #[test]
    fn a_new_process_finding_the_same_picture_keeps_what_is_shown() {
        let (c, external) = compute(
            &McpAppStatus::default(),
            &probing(Some(record(why::HANDSHAKE_SUCCEEDED, 100))),
        );
        let shown = status_with(c, external);
        // Restarted: nothing probed yet, then the same result at another time.
        assert_eq!(compute(&shown, &probing(None)).1, shown.external);
        let (_, again) = compute(
            &shown,
            &probing(Some(record(why::HANDSHAKE_SUCCEEDED, 999))),
        );
        assert_eq!(again, shown.external);
        // Another result is news with its own time.
        let (_, failed) = compute(&shown, &probing(Some(record(why::TIMEOUT, 999))));
        assert_eq!(
            failed.unwrap().probe_time,
            Some(Time(Timestamp::from_second(999).unwrap()))
        );
    }
}
