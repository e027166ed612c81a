//! The external handshakes' results, shared by the schedule (which records) and the reconciler
//! (which reads them into the status). A result is news only when the picture it gives differs
//! from the last one: the condition's reason or message, the certificate's expiry, whether it
//! expires soon, or the URL. Only then are the time and latency of the handshake kept, so the
//! status, which shows them, is written when the picture changes and not after every handshake
//! (the latency of every handshake is in the `external_probe_duration_seconds` histogram).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::runtime::reflector::ObjectRef;

use super::verdict::Verdict;
use crate::api::McpApp;

/// What one handshake found, as far as the status shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picture {
    pub url: String,
    pub verdict: Verdict,
    pub not_after: Option<Timestamp>,
    pub expires_soon: bool,
}

/// The current picture of one app and the handshake that first showed it.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub picture: Picture,
    pub at: Timestamp,
    pub latency: Duration,
}

/// Results by app; cheap to clone (one shared map).
#[derive(Clone, Default)]
pub struct Book {
    records: Arc<Mutex<HashMap<ObjectRef<McpApp>, Record>>>,
}

impl Book {
    /// Records a handshake's result; true when the picture changed (the reconciler must look).
    pub fn record(
        &self,
        app: &ObjectRef<McpApp>,
        picture: Picture,
        at: Timestamp,
        latency: Duration,
    ) -> bool {
        let mut records = self.lock();
        if records.get(app).is_some_and(|r| r.picture == picture) {
            return false;
        }
        records.insert(
            app.clone(),
            Record {
                picture,
                at,
                latency,
            },
        );
        true
    }

    /// The app's record, if a handshake finished since this process started.
    pub fn view(&self, app: &ObjectRef<McpApp>) -> Option<Record> {
        self.lock().get(app).cloned()
    }

    /// The apps with a record.
    pub fn apps(&self) -> Vec<ObjectRef<McpApp>> {
        self.lock().keys().cloned().collect()
    }

    pub fn forget(&self, app: &ObjectRef<McpApp>) {
        self.lock().remove(app);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectRef<McpApp>, Record>> {
        // Every update is one insert or remove: a panicking holder leaves no half-made record.
        self.records
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::external::verdict::reasons;

    fn picture(reason: &'static str, not_after: i64) -> Picture {
        Picture {
            url: "https://demo.example.test/mcp".into(),
            verdict: Verdict::new(reason, "m"),
            not_after: Timestamp::from_second(not_after).ok(),
            expires_soon: false,
        }
    }

    #[test]
    fn only_a_changed_picture_is_news_and_keeps_its_first_time_and_latency() {
        let book = Book::default();
        let app = ObjectRef::new("demo").within("tools");
        let t = |s| Timestamp::from_second(s).unwrap();
        let ok = picture(reasons::HANDSHAKE_SUCCEEDED, 1_000);
        assert!(book.record(&app, ok.clone(), t(10), Duration::from_millis(12)));
        assert!(!book.record(&app, ok.clone(), t(70), Duration::from_millis(40)));
        let kept = book.view(&app).unwrap();
        assert_eq!((kept.at, kept.latency), (t(10), Duration::from_millis(12)));
        // A renewed certificate is news, and so is a failure.
        assert!(book.record(
            &app,
            picture(reasons::HANDSHAKE_SUCCEEDED, 2_000),
            t(130),
            Duration::ZERO
        ));
        assert!(book.record(
            &app,
            picture(reasons::TIMEOUT, 2_000),
            t(190),
            Duration::ZERO
        ));
        book.forget(&app);
        assert_eq!(book.view(&app), None);
    }
}
