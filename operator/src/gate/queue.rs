//! Which due handshakes start now, given the free probe permits.
//!
//! A handshake starts only with a permit in hand (no task queues for one, so a permit is never
//! held longer than one handshake's timeout), apps take turns (round-robin, starting after the
//! app served last), and no app holds more than its share of the permits: the hanging pods of
//! one app cannot keep another app's new pods from their handshake. A due pod that is not
//! picked stays due and is considered again at the next tick; it has not failed anything.

use std::collections::BTreeMap;
use std::time::Instant;

/// A pod whose next handshake is due at `due`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate<P, A> {
    pub pod: P,
    pub app: A,
    pub due: Instant,
}

/// The permits one app may hold at once: a quarter of them, at least one.
pub fn per_app_limit(concurrency: usize) -> usize {
    (concurrency / 4).max(1)
}

/// The pods to start now, in order, and the app served last (where the next turn starts).
///
/// `running` counts each app's handshakes in flight, `free` the permits available, `after` the
/// app served last by the previous call.
pub fn pick<P, A: Ord + Clone>(
    candidates: Vec<Candidate<P, A>>,
    now: Instant,
    running: &BTreeMap<A, usize>,
    free: usize,
    per_app: usize,
    after: Option<&A>,
) -> (Vec<P>, Option<A>) {
    let mut by_app: BTreeMap<A, Vec<(Instant, P)>> = BTreeMap::new();
    for c in candidates.into_iter().filter(|c| c.due <= now) {
        by_app.entry(c.app).or_default().push((c.due, c.pod));
    }
    // Each app's longest-waiting pod first; popped from the end.
    for pods in by_app.values_mut() {
        pods.sort_by_key(|(due, _)| std::cmp::Reverse(*due));
    }
    // The turn order: the apps after the one served last, then the rest.
    let (before, from): (Vec<A>, Vec<A>) = by_app
        .keys()
        .cloned()
        .partition(|app| after.is_some_and(|last| app <= last));
    let order: Vec<A> = from.into_iter().chain(before).collect();
    let mut in_flight: BTreeMap<A, usize> = order
        .iter()
        .map(|a| (a.clone(), running.get(a).copied().unwrap_or(0)))
        .collect();

    let mut picked = Vec::new();
    let mut last = after.cloned();
    let mut free = free;
    let mut progress = true;
    while free > 0 && progress {
        progress = false;
        for app in &order {
            if free == 0 {
                break;
            }
            let count = in_flight
                .get_mut(app)
                .expect("every app in the order is counted");
            if *count >= per_app {
                continue;
            }
            let Some((_, pod)) = by_app.get_mut(app).and_then(Vec::pop) else {
                continue;
            };
            picked.push(pod);
            *count += 1;
            free -= 1;
            last = Some(app.clone());
            progress = true;
        }
    }
    (picked, last)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn due(
        pods: &[(&'static str, &'static str, u64)],
        at: Instant,
    ) -> Vec<Candidate<&'static str, &'static str>> {
        pods.iter()
            .map(|(pod, app, ago)| Candidate {
                pod: *pod,
                app: *app,
                due: at - Duration::from_secs(*ago),
            })
            .collect()
    }

    #[test]
    fn apps_take_turns_for_the_free_permits() {
        let now = Instant::now();
        let pods = due(
            &[
                ("a1", "a", 9),
                ("a2", "a", 8),
                ("a3", "a", 7),
                ("b1", "b", 1),
                ("c1", "c", 2),
            ],
            now,
        );
        let (picked, last) = pick(pods, now, &BTreeMap::new(), 4, 10, None);
        assert_eq!(picked, vec!["a1", "b1", "c1", "a2"]);
        assert_eq!(last, Some("a"));
    }

    #[test]
    fn the_next_turn_starts_after_the_app_served_last() {
        let now = Instant::now();
        let pods = due(&[("a1", "a", 5), ("b1", "b", 5), ("c1", "c", 5)], now);
        let (picked, last) = pick(pods, now, &BTreeMap::new(), 2, 10, Some(&"a"));
        assert_eq!(picked, vec!["b1", "c1"]);
        assert_eq!(last, Some("c"));
        let pods = due(&[("a1", "a", 5), ("b1", "b", 5)], now);
        let (picked, _) = pick(pods, now, &BTreeMap::new(), 1, 10, Some(&"c"));
        assert_eq!(picked, vec!["a1"], "the turn wraps around");
    }

    #[test]
    fn an_app_with_its_share_in_flight_leaves_the_permits_to_others() {
        let now = Instant::now();
        // App "hang" has 8 handshakes hanging and 40 more due; "new" has one pod due.
        let mut pods: Vec<_> = (0..40)
            .map(|i| Candidate {
                pod: format!("hang-{i}"),
                app: "hang",
                due: now - Duration::from_secs(60),
            })
            .collect();
        pods.push(Candidate {
            pod: "new-1".into(),
            app: "new",
            due: now,
        });
        let running = BTreeMap::from([("hang", per_app_limit(32))]);
        let (picked, _) = pick(pods, now, &running, 24, per_app_limit(32), None);
        assert_eq!(picked, vec!["new-1".to_owned()]);
    }

    #[test]
    fn nothing_starts_before_it_is_due_or_without_a_permit() {
        let now = Instant::now();
        let later = vec![Candidate {
            pod: "a1",
            app: "a",
            due: now + Duration::from_secs(1),
        }];
        assert!(pick(later, now, &BTreeMap::new(), 4, 4, None).0.is_empty());
        let pods = due(&[("a1", "a", 1)], now);
        assert!(pick(pods, now, &BTreeMap::new(), 0, 4, None).0.is_empty());
    }

    #[test]
    fn a_quarter_of_the_permits_per_app_and_never_none() {
        assert_eq!(per_app_limit(32), 8);
        assert_eq!(per_app_limit(3), 1);
        assert_eq!(per_app_limit(1), 1);
    }
}
