//! The app's session key Secret (`<app>-session-keys`) and its rotation, as pure functions of
//! the Secret as read, the clock and a fresh key passed in.
//!
//! The Secret's `keys` entry is the companion's key file (one base64 key per line, the first
//! signs). Rotation takes the three steps of `docs/mcp-server.md`: the new key added second,
//! moved first once every pod has the file, the old one removed after the session idle time.
//! Which step the ring is at, and since when, is kept in the Secret's annotations.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;

use super::{BuildError, meta::owned_meta};
use crate::api::McpApp;

/// The Secret's entry holding the key file.
pub const KEY_FILE: &str = "keys";
/// Annotation: the step the key ring is at (`signing`, `added` or `promoted`).
pub const STEP_ANNOTATION: &str = "mcp-operator.dev/session-keys-step";
/// Annotation: when the ring reached that step (RFC 3339).
pub const SINCE_ANNOTATION: &str = "mcp-operator.dev/session-keys-since";

/// How long a key signs before a new one replaces it.
pub const ROTATE_EVERY: Duration = Duration::from_secs(30 * 24 * 3600);
/// Time for every pod's copy of the Secret to be updated (the kubelet syncs within about a
/// minute) before the new key signs.
pub const PROPAGATION: Duration = Duration::from_secs(180);
/// Time the old key still verifies after the new one signs: well past the companion's session
/// idle time (900 s), so sessions started before have ended or been replaced.
pub const GRACE: Duration = Duration::from_secs(3600);

/// Bytes of a fresh key.
pub const KEY_BYTES: usize = 32;

/// Where a key ring is in its rotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// One key, signing.
    Signing,
    /// The new key second: verified everywhere soon, not signing yet.
    Added,
    /// The new key first and signing, the old one second, still verified.
    Promoted,
}

impl Step {
    fn as_str(self) -> &'static str {
        match self {
            Step::Signing => "signing",
            Step::Added => "added",
            Step::Promoted => "promoted",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [Step::Signing, Step::Added, Step::Promoted]
            .into_iter()
            .find(|s| s.as_str() == text)
    }

    /// How long the ring stays at this step.
    fn lasts(self) -> Duration {
        match self {
            Step::Signing => ROTATE_EVERY,
            Step::Added => PROPAGATION,
            Step::Promoted => GRACE,
        }
    }
}

/// The keys (base64, signing key first) and where their rotation is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRing {
    pub keys: Vec<String>,
    pub step: Step,
    pub since: Timestamp,
}

impl KeyRing {
    /// A ring of one fresh key.
    pub fn new(fresh: String, now: Timestamp) -> Self {
        KeyRing {
            keys: vec![fresh],
            step: Step::Signing,
            since: now,
        }
    }

    /// The ring a Secret holds. A Secret without keys gets a fresh ring; one whose annotations
    /// are missing, unreadable or contradict its keys is taken as signing with its first key
    /// since `now` (the keys clients hold stay valid).
    pub fn read(secret: &Secret, now: Timestamp, fresh: impl FnOnce() -> String) -> Self {
        let keys: Vec<String> = secret
            .data
            .as_ref()
            .and_then(|data| data.get(KEY_FILE))
            .map(|file| String::from_utf8_lossy(&file.0).into_owned())
            .unwrap_or_default()
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(str::to_owned)
            .collect();
        let Some(first) = keys.first().cloned() else {
            return Self::new(fresh(), now);
        };
        let annotations = secret.annotations();
        let step = annotations
            .get(STEP_ANNOTATION)
            .and_then(|s| Step::parse(s));
        let since = annotations
            .get(SINCE_ANNOTATION)
            .and_then(|s| s.parse::<Timestamp>().ok());
        match (step, since) {
            (Some(Step::Signing), Some(since)) if keys.len() == 1 => KeyRing {
                keys,
                step: Step::Signing,
                since,
            },
            (Some(step @ (Step::Added | Step::Promoted)), Some(since)) if keys.len() == 2 => {
                KeyRing { keys, step, since }
            }
            _ => Self::new(first, now),
        }
    }

    /// When the next step is due.
    pub fn due(&self) -> Timestamp {
        self.since
            .checked_add(SignedDuration::try_from(self.step.lasts()).unwrap_or(SignedDuration::MAX))
            .unwrap_or(Timestamp::MAX)
    }

    /// The ring after the step due at `now`, or `None` when none is due. `fresh` makes the new
    /// key of a rotation.
    pub fn next(&self, now: Timestamp, fresh: impl FnOnce() -> String) -> Option<Self> {
        if now < self.due() {
            return None;
        }
        let (keys, step) = match (self.step, self.keys.as_slice()) {
            (Step::Signing, [old]) => (vec![old.clone(), fresh()], Step::Added),
            (Step::Added, [old, new]) => (vec![new.clone(), old.clone()], Step::Promoted),
            (Step::Promoted, [new, _old]) => (vec![new.clone()], Step::Signing),
            // `read` only makes rings of these shapes.
            _ => return None,
        };
        Some(KeyRing {
            keys,
            step,
            since: now,
        })
    }
}

/// Name of `app`'s key Secret.
pub fn secret_name(app: &McpApp) -> String {
    format!("{}-session-keys", app.name_any())
}

/// `app`'s key Secret holding `ring`: owned by the app, so deleting the app deletes it.
pub fn secret(app: &McpApp, ring: &KeyRing) -> Result<Secret, BuildError> {
    let annotations = BTreeMap::from([
        (STEP_ANNOTATION.to_owned(), ring.step.as_str().to_owned()),
        (SINCE_ANNOTATION.to_owned(), ring.since.to_string()),
    ]);
    let mut metadata = owned_meta(app, annotations)?;
    metadata.name = Some(secret_name(app));
    let file = ring
        .keys
        .iter()
        .map(|k| format!("{k}\n"))
        .collect::<String>();
    Ok(Secret {
        metadata,
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([(
            KEY_FILE.to_owned(),
            ByteString(file.into_bytes()),
        )])),
        ..Secret::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::McpAppSpec;
    use crate::build::fixtures::{self, app};

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    fn secs(d: Duration) -> i64 {
        d.as_secs() as i64
    }

    fn stored(ring: &KeyRing) -> Secret {
        secret(&app(McpAppSpec::default()), ring).unwrap()
    }

    fn never() -> String {
        panic!("no fresh key expected")
    }

    #[test]
    fn a_key_rotates_in_three_steps_and_the_old_one_verifies_until_the_grace_ends() {
        let start = KeyRing::new("old".into(), at(0));
        assert_eq!(start.next(at(secs(ROTATE_EVERY) - 1), never), None);

        let added = start.next(at(secs(ROTATE_EVERY)), || "new".into()).unwrap();
        assert_eq!(added.keys, ["old", "new"], "the new key is added second");
        assert_eq!(added.step, Step::Added);
        let t = secs(ROTATE_EVERY);
        assert_eq!(added.next(at(t + secs(PROPAGATION) - 1), never), None);

        let promoted = added.next(at(t + secs(PROPAGATION)), never).unwrap();
        assert_eq!(
            promoted.keys,
            ["new", "old"],
            "then signs, the old still verifies"
        );
        let t = t + secs(PROPAGATION);
        assert_eq!(promoted.next(at(t + secs(GRACE) - 1), never), None);

        let done = promoted.next(at(t + secs(GRACE)), never).unwrap();
        assert_eq!(done.keys, ["new"]);
        assert_eq!(done.step, Step::Signing);
        assert_eq!(done.due(), at(t + secs(GRACE) + secs(ROTATE_EVERY)));
    }

    #[test]
    fn a_stored_ring_reads_back_as_it_was() {
        let ring = KeyRing {
            keys: vec!["a".into(), "b".into()],
            step: Step::Promoted,
            since: at(42),
        };
        let secret = stored(&ring);
        assert_eq!(KeyRing::read(&secret, at(1000), never), ring);
        assert_eq!(secret.name_any(), "weather-session-keys");
        let owner = &secret.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(owner.uid, fixtures::UID);
        assert_eq!(owner.controller, Some(true));
        assert_eq!(
            secret.labels()["app.kubernetes.io/instance"],
            fixtures::NAME
        );
        assert_eq!(
            secret.data.as_ref().unwrap()[KEY_FILE].0,
            b"a\nb\n",
            "the companion's key file: one key per line, the signing key first"
        );
    }

    #[test]
    fn a_secret_without_keys_gets_a_fresh_one_and_odd_annotations_keep_the_first_key() {
        let empty = Secret::default();
        let fresh = KeyRing::read(&empty, at(5), || "fresh".into());
        assert_eq!(fresh, KeyRing::new("fresh".into(), at(5)));

        let mut edited = stored(&KeyRing {
            keys: vec!["a".into(), "b".into()],
            step: Step::Added,
            since: at(0),
        });
        edited
            .annotations_mut()
            .insert(STEP_ANNOTATION.into(), "signing".into());
        assert_eq!(
            KeyRing::read(&edited, at(7), never),
            KeyRing::new("a".into(), at(7)),
            "two keys cannot be at the signing step: the signing key stays"
        );
        edited.annotations_mut().remove(SINCE_ANNOTATION);
        edited
            .annotations_mut()
            .insert(STEP_ANNOTATION.into(), "added".into());
        assert_eq!(
            KeyRing::read(&edited, at(9), never),
            KeyRing::new("a".into(), at(9))
        );
    }
}
