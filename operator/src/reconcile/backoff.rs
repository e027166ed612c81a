//! Retries of failed reconciles, per app: each failure in a row doubles the delay, so one app
//! the API server keeps refusing costs little and others are not held up by it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use kube::runtime::reflector::ObjectRef;

use crate::api::McpApp;

/// The first retry's delay.
const FIRST: Duration = Duration::from_secs(5);
/// The longest delay.
const MAX: Duration = Duration::from_secs(300);

/// Failures in a row, per app that is failing.
#[derive(Default)]
pub struct Backoff(Mutex<HashMap<ObjectRef<McpApp>, u32>>);

impl Backoff {
    /// Counts a failure of `app`; returns when to try again.
    pub fn failed(&self, app: &ObjectRef<McpApp>) -> Duration {
        let mut failures = self.0.lock().expect("not poisoned");
        let n = failures.entry(app.clone()).or_default();
        *n = n.saturating_add(1);
        delay(*n)
    }

    /// Forgets the failures of `app`.
    pub fn succeeded(&self, app: &ObjectRef<McpApp>) {
        self.0.lock().expect("not poisoned").remove(app);
    }
}

/// The delay after `failures` failures in a row: 5 s, 10 s, 20 s, … up to 5 minutes.
fn delay(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    (FIRST * 2u32.pow(doublings)).min(MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_per_failure_up_to_the_maximum_and_reset_on_success() {
        let backoff = Backoff::default();
        let app = ObjectRef::new("demo").within("default");
        let other = ObjectRef::new("other").within("default");
        let delays: Vec<_> = (0..8).map(|_| backoff.failed(&app).as_secs()).collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(backoff.failed(&other).as_secs(), 5, "per app");
        backoff.succeeded(&app);
        assert_eq!(backoff.failed(&app).as_secs(), 5);
        assert_eq!(delay(u32::MAX), MAX);
    }
}
