//! Tokens that passed, remembered by their SHA-256 so that a client sending the same token on
//! every request pays for one signature check, not one per request (an ES256 check costs more
//! than most tool calls: BENCHMARKS.md).
//!
//! A token is remembered until it expires (`exp` plus the allowed skew, as the check itself
//! allows) and for [`MAX_AGE`] at most, so a key the authorization server withdraws stops
//! vouching for its tokens within that time. Only passes are remembered: a refused token is
//! checked again each time, and junk tokens fill nothing. The memory is bounded in bytes, the
//! least used entries going first; the tokens themselves are never kept.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use quick_cache::Weighter;
use quick_cache::sync::Cache;
use sha2::{Digest, Sha256};

use super::verify::{Caller, MAX_TOKEN_BYTES, Verified};

/// Longest a passed token is taken on trust without a new signature check.
const MAX_AGE: Duration = Duration::from_secs(60);
/// Bytes of callers remembered at most (their subjects, client ids and scopes).
const CAPACITY_BYTES: u64 = 4 * 1024 * 1024;
/// Entries expected, to size the table.
const EXPECTED_ENTRIES: usize = 4096;

#[derive(Clone)]
struct Entry {
    caller: Caller,
    until: Instant,
}

/// An entry's weight: about the bytes it holds.
#[derive(Clone)]
struct Bytes;

impl Weighter<[u8; 32], Entry> for Bytes {
    fn weight(&self, _key: &[u8; 32], entry: &Entry) -> u64 {
        let caller = &entry.caller;
        let scopes: usize = caller.scopes.iter().map(|s| s.len() + 48).sum();
        let client = caller.client_id.as_ref().map_or(0, String::len);
        (128 + caller.subject.len() + client + scopes) as u64
    }
}

pub struct Memo {
    passed: Cache<[u8; 32], Entry, Bytes>,
}

impl Default for Memo {
    fn default() -> Self {
        Memo {
            passed: Cache::with_weighter(EXPECTED_ENTRIES, CAPACITY_BYTES, Bytes),
        }
    }
}

impl Memo {
    /// The caller of `token`, if it passed within [`MAX_AGE`] and has not expired since.
    pub fn recall(&self, token: &str) -> Option<Caller> {
        if token.len() > MAX_TOKEN_BYTES {
            return None;
        }
        let key = digest(token);
        let entry = self.passed.get(&key)?;
        if Instant::now() < entry.until {
            return Some(entry.caller);
        }
        self.passed.remove(&key);
        None
    }

    /// Remembers that `token` passed, as `verified`, while `skew` past its `exp` is allowed.
    pub fn remember(&self, token: &str, verified: &Verified, skew: Duration) {
        let Some(left) = lifetime_left(verified.exp, skew, SystemTime::now()) else {
            return;
        };
        let entry = Entry {
            caller: verified.caller.clone(),
            until: Instant::now() + left.min(MAX_AGE),
        };
        self.passed.insert(digest(token), entry);
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// How long a token expiring at `exp` (seconds since the epoch) stays acceptable from `now`,
/// with `skew` allowed; `None` once it is not.
fn lifetime_left(exp: u64, skew: Duration, now: SystemTime) -> Option<Duration> {
    let until = UNIX_EPOCH + Duration::from_secs(exp).checked_add(skew)?;
    until
        .duration_since(now)
        .ok()
        .filter(|left| !left.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn verified(subject: &str, exp: u64) -> Verified {
        Verified {
            caller: Caller {
                subject: subject.to_owned(),
                scopes: BTreeSet::from(["mcp".to_owned()]),
                client_id: None,
            },
            exp,
        }
    }

    fn epoch_now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[test]
    fn a_passed_token_is_recalled_and_another_is_not() {
        let memo = Memo::default();
        memo.remember(
            "a.b.c",
            &verified("alice", epoch_now() + 3600),
            Duration::ZERO,
        );
        assert_eq!(memo.recall("a.b.c").unwrap().subject, "alice");
        assert!(memo.recall("a.b.d").is_none());
    }

    #[test]
    fn an_expired_token_is_not_remembered_even_within_max_age() {
        let memo = Memo::default();
        memo.remember(
            "old",
            &verified("bob", epoch_now() - 120),
            Duration::from_secs(60),
        );
        assert!(memo.recall("old").is_none());
    }

    #[test]
    fn the_lifetime_left_counts_the_skew_and_ends_at_expiry() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let skew = Duration::from_secs(30);
        assert_eq!(
            lifetime_left(1_010, skew, now),
            Some(Duration::from_secs(40))
        );
        assert_eq!(lifetime_left(970, skew, now), None);
        assert_eq!(lifetime_left(900, skew, now), None);
        assert_eq!(lifetime_left(u64::MAX, Duration::MAX, now), None);
    }

    #[test]
    fn a_remembered_token_is_checked_again_after_its_deadline() {
        let memo = Memo::default();
        memo.remember("t", &verified("carol", epoch_now() + 3600), Duration::ZERO);
        assert!(memo.recall("t").is_some());
        // The deadline is at most MAX_AGE away; it is moved to now rather than waited for.
        let key = digest("t");
        let mut entry = memo.passed.get(&key).unwrap();
        assert!(entry.until <= Instant::now() + MAX_AGE);
        entry.until = Instant::now();
        memo.passed.insert(key, entry);
        assert!(memo.recall("t").is_none());
        assert!(
            memo.passed.get(&key).is_none(),
            "the stale entry is dropped"
        );
    }

    #[test]
    fn memory_stays_bounded_by_bytes() {
        let memo = Memo::default();
        let exp = epoch_now() + 3600;
        let subject = "s".repeat(256);
        for i in 0..40_000 {
            memo.remember(
                &format!("token-{i}"),
                &verified(&subject, exp),
                Duration::ZERO,
            );
        }
        assert!(memo.passed.weight() <= CAPACITY_BYTES);
        assert!(memo.passed.len() < 40_000);
    }
}
