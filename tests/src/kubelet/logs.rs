//! Where container output goes and which of it a log request reads.
//!
//! Each run of a container (an *instance*, numbered by its restart count, as kubelet numbers
//! `/var/log/pods/{ns}_{pod}_{uid}/{container}/{n}.log`) writes to its own file,
//! `{log_dir}/{ns}_{pod}/{container}/{n}.log`, and `{container}.log` next to the folder is a
//! symlink to the newest. The pod workers publish what their containers are doing into a
//! [`LogIndex`]; a request picks its instance from it the way kubelet's
//! `validateContainerLogStatus` does, so `--previous` and the error messages match kubelet's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use http::StatusCode;

/// The folder of a pod's logs.
pub fn pod_dir(log_dir: &Path, namespace: &str, pod: &str) -> PathBuf {
    log_dir.join(format!("{namespace}_{pod}"))
}

fn instance_path(pod_dir: &Path, container: &str, instance: i32) -> PathBuf {
    pod_dir.join(container).join(format!("{instance}.log"))
}

/// Prepares the log file of a new instance and points `{container}.log` at it; returns the
/// file's path, for the process's output.
pub fn new_instance(pod_dir: &Path, container: &str, instance: i32) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(pod_dir.join(container))?;
    let path = instance_path(pod_dir, container, instance);
    // Relative, so the folder can be copied or moved; replaced by rename, which is atomic.
    let target = Path::new(container).join(format!("{instance}.log"));
    let link = pod_dir.join(format!("{container}.log"));
    let tmp = pod_dir.join(format!(".{container}.log.new"));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&target, &tmp)?;
    std::fs::rename(&tmp, &link)?;
    Ok(path)
}

/// What a container is doing, as far as its logs are concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerLogState {
    /// The newest instance started, if any.
    pub latest: Option<i32>,
    /// The newest instance is still running.
    pub running: bool,
    /// The container will not be started again.
    pub finished: bool,
    /// Why the container is waiting, shown when no instance has started yet.
    pub waiting_reason: String,
}

struct PodLogs {
    uid: String,
    dir: PathBuf,
    containers: BTreeMap<String, ContainerLogState>,
}

/// The pods this kubelet runs, by namespace and name, with their containers' log states.
#[derive(Default)]
pub struct LogIndex(Mutex<BTreeMap<(String, String), PodLogs>>);

/// The instance a request reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    pub path: PathBuf,
    pub instance: i32,
}

/// A refused log request: the status and kubelet's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub message: String,
}

impl Refusal {
    fn new(status: StatusCode, message: String) -> Self {
        Refusal { status, message }
    }
}

impl LogIndex {
    /// Records the state of a pod's containers (called by its worker on every pass).
    pub fn publish(
        &self,
        namespace: &str,
        pod: &str,
        uid: &str,
        dir: &Path,
        containers: BTreeMap<String, ContainerLogState>,
    ) {
        let entry = PodLogs {
            uid: uid.to_string(),
            dir: dir.to_path_buf(),
            containers,
        };
        self.pods()
            .insert((namespace.to_string(), pod.to_string()), entry);
    }

    /// Forgets a pod whose worker ended, unless a newer pod of the same name took its place.
    pub fn forget(&self, namespace: &str, pod: &str, uid: &str) {
        let mut pods = self.pods();
        let key = (namespace.to_string(), pod.to_string());
        if pods.get(&key).is_some_and(|p| p.uid == uid) {
            pods.remove(&key);
        }
    }

    /// The instance to read: the running one, else the last that ran; with `previous`, the one
    /// before the running one, or the last that ran while the container waits to restart.
    pub fn select(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        previous: bool,
    ) -> Result<Selected, Refusal> {
        let pods = self.pods();
        let entry = pods
            .get(&(namespace.to_string(), pod.to_string()))
            .ok_or_else(|| {
                Refusal::new(StatusCode::NOT_FOUND, format!("pod {pod:?} does not exist"))
            })?;
        let state = entry.containers.get(container).ok_or_else(|| {
            Refusal::new(
                StatusCode::NOT_FOUND,
                format!("container {container:?} not found in pod {pod:?}"),
            )
        })?;
        let instance = if previous {
            previous_instance(state).ok_or_else(|| {
                Refusal::new(
                    StatusCode::BAD_REQUEST,
                    format!("previous terminated container {container:?} in pod {pod:?} not found"),
                )
            })?
        } else {
            state.latest.ok_or_else(|| {
                Refusal::new(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "container {container:?} in pod {pod:?} is waiting to start: {}",
                        state.waiting_reason
                    ),
                )
            })?
        };
        Ok(Selected {
            path: instance_path(&entry.dir, container, instance),
            instance,
        })
    }

    /// Whether `instance` of the container is still running (and may write more output).
    pub fn is_running(&self, namespace: &str, pod: &str, container: &str, instance: i32) -> bool {
        self.pods()
            .get(&(namespace.to_string(), pod.to_string()))
            .and_then(|p| p.containers.get(container))
            .is_some_and(|c| c.running && c.latest == Some(instance))
    }

    fn pods(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), PodLogs>> {
        self.0.lock().expect("log index")
    }
}

/// kubelet's `lastState.terminated`: while an instance runs, or after the last one ended for
/// good, the instance before it; while the container waits to restart, the one that ended.
fn previous_instance(state: &ContainerLogState) -> Option<i32> {
    let latest = state.latest?;
    if state.running || state.finished {
        (latest > 0).then_some(latest - 1)
    } else {
        Some(latest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(latest: Option<i32>, running: bool, finished: bool) -> ContainerLogState {
        ContainerLogState {
            latest,
            running,
            finished,
            waiting_reason: "ContainerCreating".into(),
        }
    }

    fn index_with(c: ContainerLogState) -> LogIndex {
        let index = LogIndex::default();
        let containers = BTreeMap::from([("app".to_string(), c)]);
        index.publish("ns", "web", "uid-1", Path::new("/logs/ns_web"), containers);
        index
    }

    fn instance(index: &LogIndex, previous: bool) -> Result<i32, String> {
        index
            .select("ns", "web", "app", previous)
            .map(|s| s.instance)
            .map_err(|r| r.message)
    }

    #[test]
    fn running_instance_is_current_and_the_one_before_is_previous() {
        let index = index_with(state(Some(2), true, false));
        assert_eq!(instance(&index, false), Ok(2));
        assert_eq!(instance(&index, true), Ok(1));
        let selected = index.select("ns", "web", "app", false).unwrap();
        assert_eq!(selected.path, Path::new("/logs/ns_web/app/2.log"));
    }

    #[test]
    fn crash_looping_container_shows_its_last_instance_for_both() {
        let index = index_with(state(Some(3), false, false));
        assert_eq!(instance(&index, false), Ok(3));
        assert_eq!(instance(&index, true), Ok(3));
    }

    #[test]
    fn first_instance_has_no_previous() {
        for finished in [false, true] {
            let index = index_with(state(Some(0), !finished, finished));
            assert_eq!(
                instance(&index, true),
                Err(r#"previous terminated container "app" in pod "web" not found"#.into())
            );
        }
    }

    #[test]
    fn waiting_container_and_unknown_names_are_refused_as_kubelet_does() {
        let index = index_with(state(None, false, false));
        assert_eq!(
            instance(&index, false),
            Err(r#"container "app" in pod "web" is waiting to start: ContainerCreating"#.into())
        );
        let missing = index.select("ns", "web", "db", false).unwrap_err();
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        assert_eq!(missing.message, r#"container "db" not found in pod "web""#);
        let gone = index.select("ns", "api", "app", false).unwrap_err();
        assert_eq!(gone.message, r#"pod "api" does not exist"#);
    }

    #[test]
    fn a_pod_is_forgotten_only_by_its_own_worker() {
        let index = index_with(state(Some(0), true, false));
        index.forget("ns", "web", "uid-of-an-older-pod");
        assert!(index.is_running("ns", "web", "app", 0));
        index.forget("ns", "web", "uid-1");
        assert!(!index.is_running("ns", "web", "app", 0));
    }

    #[test]
    fn new_instance_moves_the_plain_link_to_the_newest_file() {
        let dir = tempfile::tempdir().unwrap();
        for n in 0..2 {
            let path = new_instance(dir.path(), "app", n).unwrap();
            std::fs::write(&path, format!("run {n}\n")).unwrap();
        }
        let current = std::fs::read_to_string(dir.path().join("app.log")).unwrap();
        assert_eq!(current, "run 1\n");
        let first = std::fs::read_to_string(dir.path().join("app/0.log")).unwrap();
        assert_eq!(first, "run 0\n");
    }
}
