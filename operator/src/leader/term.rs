//! The timing of leadership, pure with the clock passed in.
//!
//! A leader's term runs from the moment it *sent* its last successful renewal; it steps down
//! when the term ends without a new one, `renew_deadline` later. A standby takes the Lease only
//! after it has seen the same Lease record unchanged for the whole `lease` duration, measured on
//! its own clock from the moment it first saw that record. Since a record is seen only after the
//! renewal that wrote it was sent, the standby takes over no sooner than `lease` after the
//! leader's last renewal, while the leader stopped `lease - renew_deadline` before that.
//! Comparing monotonic instants on each side keeps clock skew between machines out of it.

use std::time::{Duration, Instant};

/// How long things take, from the Lease duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How long a Lease record stays valid without renewal.
    pub lease: Duration,
    /// How long a leader acts after its last successful renewal was sent.
    pub renew_deadline: Duration,
    /// The pause between attempts to renew or acquire.
    pub retry: Duration,
    /// Bound on one request to the API server.
    pub request: Duration,
}

impl Timing {
    /// Timings for a Lease of `lease_seconds`: a leader stops acting a third of the lease before
    /// anyone may take it over.
    pub fn new(lease_seconds: u64) -> Self {
        let lease = Duration::from_secs(lease_seconds.max(1));
        Timing {
            lease,
            renew_deadline: lease * 2 / 3,
            retry: lease / 6,
            request: lease / 3,
        }
    }
}

/// A leader's current term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Term {
    renewal_sent: Instant,
}

impl Term {
    /// A term won by a write sent at `sent`.
    pub fn won(sent: Instant) -> Self {
        Term { renewal_sent: sent }
    }

    /// A renewal sent at `sent` succeeded.
    pub fn renewed(&mut self, sent: Instant) {
        self.renewal_sent = self.renewal_sent.max(sent);
    }

    /// When the leader must have stopped acting unless it renews before.
    pub fn ends(&self, timing: &Timing) -> Instant {
        self.renewal_sent + timing.renew_deadline
    }
}

/// The Lease record as a standby sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub holder: Option<String>,
    /// The Lease's resourceVersion: any write changes it.
    pub version: String,
}

/// A record and when this replica first saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sighting {
    pub record: Record,
    pub since: Instant,
}

/// The sighting after reading `record` at `now`: an unchanged record keeps its first sighting.
pub fn sight(previous: Option<Sighting>, record: Record, now: Instant) -> Sighting {
    match previous {
        Some(p) if p.record == record => p,
        _ => Sighting { record, since: now },
    }
}

/// Whether a standby may take the Lease: nobody holds it, or its holder has not renewed it for
/// a whole Lease duration as far as this replica saw.
pub fn may_take(sighting: &Sighting, now: Instant, timing: &Timing) -> bool {
    let held = sighting
        .record
        .holder
        .as_deref()
        .is_some_and(|h| !h.is_empty());
    !held || now.saturating_duration_since(sighting.since) >= timing.lease
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(holder: Option<&str>, version: &str) -> Record {
        Record {
            holder: holder.map(str::to_owned),
            version: version.into(),
        }
    }

    #[test]
    fn the_leader_stops_before_a_standby_may_take_over() {
        for seconds in [2, 4, 15, 300] {
            let t = Timing::new(seconds);
            let start = Instant::now();
            // The leader renews, then loses its connection.
            let mut term = Term::won(start);
            let last_sent = start + t.retry;
            term.renewed(last_sent);
            // The standby first sees that renewal's record only after it was sent.
            let seen = sight(None, record(Some("a"), "7"), last_sent);
            let step_down = term.ends(&t);
            assert!(!may_take(&seen, step_down, &t), "lease {seconds}s");
            let earliest = seen.since + t.lease;
            assert!(may_take(&seen, earliest, &t));
            assert!(
                earliest - step_down >= t.lease / 3,
                "lease {seconds}s leaves a third of the lease to stop in-flight writes"
            );
        }
    }

    #[test]
    fn a_changing_record_restarts_the_standbys_count_and_a_free_lease_is_taken_at_once() {
        let t = Timing::new(4);
        let start = Instant::now();
        let first = sight(None, record(Some("a"), "1"), start);
        let same = sight(
            Some(first.clone()),
            record(Some("a"), "1"),
            start + t.lease / 2,
        );
        assert_eq!(
            same.since, start,
            "unchanged: still counting from the first sighting"
        );
        let renewed = sight(Some(same), record(Some("a"), "2"), start + t.lease);
        assert!(
            !may_take(&renewed, start + t.lease, &t),
            "a renewal restarts the count"
        );
        let released = sight(Some(renewed), record(None, "3"), start + t.lease);
        assert!(may_take(&released, start + t.lease, &t));
        let emptied = sight(None, record(Some(""), "4"), start);
        assert!(may_take(&emptied, start, &t));
    }

    #[test]
    fn a_late_answer_to_an_older_renewal_does_not_extend_the_term() {
        let t = Timing::new(15);
        let start = Instant::now();
        let mut term = Term::won(start + Duration::from_secs(5));
        term.renewed(start);
        assert_eq!(
            term.ends(&t),
            start + Duration::from_secs(5) + t.renew_deadline
        );
    }
}
