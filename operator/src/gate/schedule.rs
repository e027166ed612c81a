//! When each pod is probed next: every `periodSeconds`, spread by a jitter of up to a tenth of
//! the period either way, so pods started together (1,000 apps after an operator restart) do not
//! probe in lockstep. The jitter is derived from the pod's UID and probe count: no RNG state.
//! Also how long this process must have watched an app before its rollout deadline counts.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::{Duration, Instant};

/// The delay before the next handshake with a pod.
pub fn next_delay(period: Duration, pod_uid: &str, probes: u64) -> Duration {
    let mut h = DefaultHasher::new();
    (pod_uid, probes).hash(&mut h);
    // A fraction in [-0.1, 0.1] of the period.
    let unit = (h.finish() % 2001) as f64 / 1000.0 - 1.0;
    period.mul_f64(1.0 + unit / 10.0)
}

/// The delay before this process's first handshake with a pod: none for a pod without a
/// handshake condition (a new pod waits for its first judgement), and a point of the first
/// period, derived from the pod's UID, for a pod an earlier process already judged.
pub fn first_delay(period: Duration, pod_uid: &str, judged: bool) -> Duration {
    if !judged {
        return Duration::ZERO;
    }
    let mut h = DefaultHasher::new();
    (pod_uid, "first").hash(&mut h);
    period.mul_f64((h.finish() % 1000) as f64 / 1000.0)
}

/// Whether this process has watched an app for its whole progress deadline: a rollout is not
/// aborted at its deadline for time in which no operator was there to probe its pods.
pub fn watched_long_enough(since: Instant, now: Instant, deadline: Duration) -> bool {
    now.saturating_duration_since(since) >= deadline
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_counts_only_after_a_whole_deadline_of_watching() {
        let start = Instant::now();
        let deadline = Duration::from_secs(600);
        assert!(!watched_long_enough(start, start, deadline));
        assert!(!watched_long_enough(
            start,
            start + Duration::from_secs(599),
            deadline
        ));
        assert!(watched_long_enough(start, start + deadline, deadline));
        // A clock read before `since` is not a negative duration.
        assert!(!watched_long_enough(start + deadline, start, deadline));
    }

    #[test]
    fn first_handshakes_of_judged_pods_spread_over_a_period_and_new_pods_go_first() {
        let period = Duration::from_secs(10);
        assert_eq!(first_delay(period, "new", false), Duration::ZERO);
        let delays: Vec<Duration> = (0..1000)
            .map(|i| first_delay(period, &format!("uid-{i}"), true))
            .collect();
        assert!(delays.iter().all(|d| *d < period));
        // Evenly spread: every tenth of the period holds roughly a tenth of the pods.
        let mut tenths = [0usize; 10];
        for d in &delays {
            tenths[(d.as_millis() / 1000) as usize] += 1;
        }
        assert!(
            tenths.iter().all(|n| (60..=140).contains(n)),
            "first handshakes per tenth of the period: {tenths:?}"
        );
        assert_eq!(
            first_delay(period, "a", true),
            first_delay(period, "a", true)
        );
    }

    #[test]
    fn delays_stay_within_a_tenth_of_the_period_and_spread_out() {
        let period = Duration::from_secs(30);
        let delays: Vec<Duration> = (0..200)
            .map(|i| next_delay(period, &format!("uid-{i}"), 0))
            .collect();
        assert!(
            delays
                .iter()
                .all(|d| *d >= Duration::from_secs(27) && *d <= Duration::from_secs(33))
        );
        let distinct: std::collections::BTreeSet<_> = delays.iter().collect();
        assert!(distinct.len() > 150, "pods spread out: {}", distinct.len());
        assert_eq!(next_delay(period, "a", 7), next_delay(period, "a", 7));
    }
}
