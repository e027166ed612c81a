//! The replay history of one session: the events a client may still ask for again with
//! `Last-Event-ID` (or that wait for a GET stream to open), bounded in events and bytes per
//! session and in bytes across all sessions. When a budget is exceeded the oldest events are
//! dropped; the session learns which, so a resume that needs them can be refused rather than
//! answered with a silent gap.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::message::Message;

/// Bytes of history held by all sessions together, against one limit.
#[derive(Debug)]
pub struct HistoryBudget {
    used: AtomicUsize,
    limit: usize,
}

impl HistoryBudget {
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            used: AtomicUsize::new(0),
            limit,
        })
    }

    /// Bytes held now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn reserve(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.limit)
            })
            .is_ok()
    }

    fn release(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// How much history one session may keep.
#[derive(Clone, Debug)]
pub struct HistoryLimits {
    pub events: usize,
    pub bytes: usize,
    pub total: Arc<HistoryBudget>,
}

impl HistoryLimits {
    /// Limits for tests and tools: `events` events, and bytes without a practical bound.
    pub fn events(events: usize) -> Self {
        Self {
            events,
            bytes: usize::MAX,
            total: HistoryBudget::new(usize::MAX),
        }
    }
}

/// One event as kept: `message` is `None` for a priming event, which carries no data.
#[derive(Debug)]
pub struct Entry {
    pub id: u64,
    pub stream: u64,
    pub message: Option<Message>,
    /// Whether it reached a connected client (undelivered ones wait for a GET stream).
    pub delivered: bool,
}

impl Entry {
    fn bytes(&self) -> usize {
        self.message.as_ref().map_or(0, |m| m.text().len())
    }
}

#[derive(Debug)]
pub struct History {
    entries: VecDeque<Entry>,
    bytes: usize,
    limits: HistoryLimits,
}

impl History {
    pub fn new(limits: HistoryLimits) -> Self {
        Self {
            entries: VecDeque::new(),
            bytes: 0,
            limits,
        }
    }

    /// Keeps `entry`, first dropping the oldest entries as far as the budgets require. Returns
    /// every entry dropped, `entry` itself when it cannot fit at all.
    pub fn push(&mut self, entry: Entry) -> Vec<Entry> {
        let size = entry.bytes();
        let mut dropped = Vec::new();
        if size > self.limits.bytes || self.limits.events == 0 {
            dropped.push(entry);
            return dropped;
        }
        while self.entries.len() >= self.limits.events || self.bytes + size > self.limits.bytes {
            dropped.extend(self.pop_front());
        }
        // Other sessions' history counts too: this session gives up its own oldest events
        // until the new one fits, and keeps nothing new if that is not enough.
        while !self.limits.total.reserve(size) {
            match self.pop_front() {
                Some(old) => dropped.push(old),
                None => {
                    dropped.push(entry);
                    return dropped;
                }
            }
        }
        self.bytes += size;
        self.entries.push_back(entry);
        dropped
    }

    fn pop_front(&mut self) -> Option<Entry> {
        let entry = self.entries.pop_front()?;
        self.release(entry.bytes());
        Some(entry)
    }

    fn release(&mut self, bytes: usize) {
        self.bytes -= bytes;
        self.limits.total.release(bytes);
    }

    /// The kept entries of `stream`, oldest first.
    pub fn of_stream(&mut self, stream: u64) -> impl Iterator<Item = &mut Entry> {
        self.entries.iter_mut().filter(move |e| e.stream == stream)
    }

    /// Forgets `stream`'s entries (its answer went out as plain JSON: nothing to resume).
    pub fn remove_stream(&mut self, stream: u64) {
        let mut freed = 0;
        self.entries.retain(|e| {
            let keep = e.stream != stream;
            if !keep {
                freed += e.bytes();
            }
            keep
        });
        self.release(freed);
    }

    /// Bytes held by this session.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for History {
    fn drop(&mut self) {
        self.limits.total.release(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u64, bytes: usize) -> Entry {
        let text = format!(
            r#"{{"jsonrpc":"2.0","method":"n","params":{{"p":"{}"}}}}"#,
            "x".repeat(bytes.saturating_sub(45))
        );
        Entry {
            id,
            stream: 1,
            message: Some(Message::parse(&text).unwrap()),
            delivered: true,
        }
    }

    fn ids(dropped: &[Entry]) -> Vec<u64> {
        dropped.iter().map(|e| e.id).collect()
    }

    #[test]
    fn the_oldest_events_go_when_the_session_budget_is_full() {
        let total = HistoryBudget::new(usize::MAX);
        let mut h = History::new(HistoryLimits {
            events: 100,
            bytes: 1000,
            total,
        });
        for id in 0..3 {
            assert!(h.push(entry(id, 300)).is_empty());
        }
        // 4 x 300 > 1000: the first goes when the fourth arrives.
        assert_eq!(ids(&h.push(entry(3, 300))), [0]);
        assert!(h.bytes() <= 1000);
        // Larger than the whole budget: sent, never kept.
        assert_eq!(ids(&h.push(entry(5, 2000))), [5]);
    }

    #[test]
    fn all_sessions_together_stay_within_the_total() {
        let total = HistoryBudget::new(1000);
        let limits = HistoryLimits {
            events: 100,
            bytes: 1000,
            total: Arc::clone(&total),
        };
        let mut a = History::new(limits.clone());
        let mut b = History::new(limits);
        for id in 0..3 {
            assert!(a.push(entry(id, 300)).is_empty());
        }
        // b has nothing of its own to give up, so its event is not kept.
        assert_eq!(ids(&b.push(entry(10, 300))), [10]);
        assert!(total.used() <= 1000);
        drop(a);
        assert_eq!(total.used(), 0);
        assert!(b.push(entry(11, 300)).is_empty());
        b.remove_stream(1);
        assert_eq!((b.bytes(), total.used()), (0, 0));
    }
}
