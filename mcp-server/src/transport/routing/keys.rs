//! The session-id keys, read from a file that a mounted Secret replaces under the running
//! process: one base64 key per line, the first signs, every one verifies. The file is checked
//! for a change at most once per [`CHECK_INTERVAL`] (a `stat`), re-read only when it changed,
//! and an invalid new version is logged once while the last good keys stay in use.

use std::io::Read as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};

use super::session_id::{Key, MIN_KEY_BYTES};

/// How often the file may be looked at: rotations apply within this time.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// Largest key file read: a few keys take well under a kilobyte.
const MAX_FILE_BYTES: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read the session key file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the session key file {path} is larger than {MAX_FILE_BYTES} bytes")]
    TooLarge { path: PathBuf },
    #[error("the session key file {path} holds no key")]
    Empty { path: PathBuf },
    #[error(
        "line {line} of the session key file {path} is not a base64 key of at least {MIN_KEY_BYTES} bytes"
    )]
    BadKey { path: PathBuf, line: usize },
}

/// What identifies one version of the file: a swapped Secret is a new inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    inode: u64,
    device: u64,
    modified: i64,
    modified_nanos: i64,
    len: u64,
}

struct State {
    keys: Arc<[Key]>,
    /// The version last read, good or bad: a bad one is not read (nor logged) again.
    stamp: Option<Stamp>,
    checked: Instant,
}

pub struct KeyRing {
    path: PathBuf,
    state: Mutex<State>,
}

impl KeyRing {
    /// Reads the file now: a missing or invalid file stops the server at start-up.
    pub fn load(path: &Path) -> Result<Self, KeyFileError> {
        let stamp = stamp(path).ok();
        let keys = read(path)?;
        Ok(Self {
            path: path.to_owned(),
            state: Mutex::new(State {
                keys,
                stamp,
                checked: Instant::now(),
            }),
        })
    }

    /// The current keys, the signing one first; re-reads the file first when it is due for a
    /// check and has changed.
    pub fn keys(&self) -> Arc<[Key]> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.checked.elapsed() >= CHECK_INTERVAL {
            state.checked = Instant::now();
            self.refresh(&mut state);
        }
        Arc::clone(&state.keys)
    }

    fn refresh(&self, state: &mut State) {
        let now = stamp(&self.path).ok();
        if now.is_none() || now == state.stamp {
            // Unchanged, or momentarily missing during a swap: keep what we have.
            return;
        }
        state.stamp = now;
        match read(&self.path) {
            Ok(keys) => {
                tracing::info!(path = %self.path.display(), keys = keys.len(), "session keys reloaded");
                state.keys = keys;
            }
            Err(e) => {
                tracing::error!(error = %e, "keeping the previous session keys");
            }
        }
    }
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    let m = std::fs::metadata(path)?;
    Ok(Stamp {
        inode: m.ino(),
        device: m.dev(),
        modified: m.mtime(),
        modified_nanos: m.mtime_nsec(),
        len: m.len(),
    })
}

fn read(path: &Path) -> Result<Arc<[Key]>, KeyFileError> {
    let failed = |source| KeyFileError::Read {
        path: path.to_owned(),
        source,
    };
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_string(&mut text))
        .map_err(failed)?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(KeyFileError::TooLarge {
            path: path.to_owned(),
        });
    }
    parse(&text).map_err(|line| match line {
        None => KeyFileError::Empty {
            path: path.to_owned(),
        },
        Some(line) => KeyFileError::BadKey {
            path: path.to_owned(),
            line,
        },
    })
}

/// The keys of a file's text, or the number of the first bad line (`None`: no key at all).
/// Blank lines and `#` comments are skipped.
fn parse(text: &str) -> Result<Arc<[Key]>, Option<usize>> {
    let keys = text
        .lines()
        .enumerate()
        .map(|(n, line)| (n + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .map(|(n, line)| {
            STANDARD
                .decode(line)
                .or_else(|_| STANDARD_NO_PAD.decode(line))
                .ok()
                .and_then(|secret| Key::new(&secret))
                .ok_or(Some(n))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if keys.is_empty() {
        return Err(None);
    }
    Ok(keys.into())
}

#[cfg(test)]
mod tests {
    use super::super::session_id::{sign, verify};
    use super::*;

    fn encoded(byte: u8) -> String {
        STANDARD.encode([byte; 32])
    }

    #[test]
    fn the_first_key_signs_and_every_key_verifies() {
        let keys = parse(&format!("# new first\n{}\n\n{}\n", encoded(1), encoded(2))).unwrap();
        assert_eq!(keys.len(), 2);
        let owner = "10.0.0.1:80".parse().unwrap();
        let local = "00112233445566778899aabbccddeeff";
        let old = sign(&Key::new(&[2; 32]).unwrap(), owner, local);
        assert_eq!(verify(keys.iter(), old.as_bytes()), Some(owner));
        assert_eq!(
            sign(&keys[0], owner, local),
            sign(&Key::new(&[1; 32]).unwrap(), owner, local)
        );
    }

    #[test]
    fn bad_files_name_the_line() {
        assert_eq!(parse("\n# only a comment\n").err(), Some(None));
        let short = STANDARD.encode([1; 31]);
        assert_eq!(
            parse(&format!("{}\n{short}\n", encoded(1))).err(),
            Some(Some(2))
        );
        assert_eq!(parse("not base64!\n").err(), Some(Some(1)));
    }

    #[test]
    fn a_swapped_file_is_picked_up_and_a_bad_one_keeps_the_last_good_keys() {
        let dir = std::env::temp_dir().join(format!("mcp-server-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("keys");
        let swap = |contents: &str| {
            // As a Secret volume does: a new file renamed over the old name.
            let next = dir.join("keys.next");
            std::fs::write(&next, contents).unwrap();
            std::fs::rename(&next, &path).unwrap();
        };
        swap(&encoded(1));
        let ring = KeyRing::load(&path).unwrap();
        let due = |ring: &KeyRing| {
            ring.state.lock().unwrap().checked -= CHECK_INTERVAL;
        };
        let first = ring.keys()[0].clone();
        swap(&format!("{}\n{}\n", encoded(2), encoded(1)));
        // Not looked at again before the interval.
        assert_eq!(ring.keys().len(), 1);
        due(&ring);
        assert_eq!(ring.keys().len(), 2);
        swap("garbage\n");
        due(&ring);
        assert_eq!(ring.keys().len(), 2, "the last good keys stay");
        std::fs::remove_file(&path).unwrap();
        due(&ring);
        assert_eq!(ring.keys().len(), 2, "a missing file keeps them too");
        let owner = "10.0.0.1:80".parse().unwrap();
        let id = sign(&first, owner, "00112233445566778899aabbccddeeff");
        assert_eq!(verify(ring.keys().iter(), id.as_bytes()), Some(owner));
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(KeyRing::load(&path).is_err());
    }
}
