//! Starting a container's process: argv from the image map and the container's command/args,
//! its environment, and its volume mounts, in the pod's network, PID and UTS namespaces and a
//! mount namespace of its own where each volume is bind-mounted at its `mountPath`.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use k8s_openapi::api::core::v1::Container;

use super::envvars::expand;
use super::network::PodSandbox;
use super::volumes::PreparedVolume;
use crate::ImageMap;
use crate::process::Supervised;
use crate::sandbox::{self, check};

/// Everything needed to start one process of a container.
#[derive(Debug, Clone)]
pub struct Launch {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
    pub mounts: Vec<Mount>,
    pub hostname: String,
}

#[derive(Debug, Clone)]
pub struct Mount {
    pub source: PathBuf,
    pub target: PathBuf,
    pub read_only: bool,
}

/// The argv of `container`: its `command` replaces the image's entrypoint, its `args` follow,
/// and `$(VAR)` references are expanded from `env`. Err names the image missing from the map.
pub fn argv(
    container: &Container,
    images: &ImageMap,
    env: &[(String, String)],
) -> Result<Vec<String>, String> {
    let vars: BTreeMap<String, String> = env.iter().cloned().collect();
    let image = container.image.as_deref().unwrap_or_default();
    let entrypoint = match container.command.as_deref() {
        Some(command) if !command.is_empty() => command.to_vec(),
        _ => images
            .entrypoint(image)
            .ok_or_else(|| format!("image {image:?} is not in the test environment's image map"))?
            .to_vec(),
    };
    Ok(entrypoint
        .iter()
        .chain(container.args.iter().flatten())
        .map(|s| expand(s, &vars))
        .collect())
}

/// The bind mounts of `container`: the files its image contains, then its `volumeMounts`.
pub fn mounts(
    container: &Container,
    images: &ImageMap,
    volumes: &BTreeMap<String, PreparedVolume>,
) -> Result<Vec<Mount>, String> {
    let image = container.image.as_deref().unwrap_or_default();
    let image_files = images.files(image).iter().map(|(target, source)| {
        Ok(Mount {
            source: source.clone(),
            target: target.clone(),
            read_only: true,
        })
    });
    let volume_mounts = container.volume_mounts.iter().flatten().map(|m| {
        let volume = volumes
            .get(&m.name)
            .ok_or_else(|| format!("volumeMount {:?} names no volume of the pod", m.name))?;
        let source = match m.sub_path.as_deref().filter(|s| !s.is_empty()) {
            Some(sub) => volume.path.join(sub),
            None => volume.path.clone(),
        };
        Ok(Mount {
            source,
            target: PathBuf::from(&m.mount_path),
            read_only: volume.read_only || m.read_only.unwrap_or(false),
        })
    });
    image_files.chain(volume_mounts).collect()
}

/// Mount points the kubelet had to create on the machine, removed when it stops.
#[derive(Default)]
pub struct MountPoints(Mutex<Vec<PathBuf>>);

impl MountPoints {
    /// Creates `target` (a directory, or a file when `source` is a file) unless it exists.
    fn ensure(&self, source: &Path, target: &Path) -> std::io::Result<()> {
        if target.exists() {
            return Ok(());
        }
        let mut missing = target.to_path_buf();
        while let Some(parent) = missing.parent() {
            if parent.exists() {
                break;
            }
            missing = parent.to_path_buf();
        }
        if source.is_dir() {
            std::fs::create_dir_all(target)?;
        } else {
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::File::create(target)?;
        }
        self.0.lock().expect("mount points").push(missing);
        Ok(())
    }

    /// Removes the mount points created, if nothing else was put in them.
    pub fn remove_all(&self) {
        for path in self.0.lock().expect("mount points").drain(..).rev() {
            let _ = if path.is_dir() {
                std::fs::remove_dir(&path).or_else(|_| remove_empty_tree(&path))
            } else {
                std::fs::remove_file(&path)
            };
        }
    }
}

fn remove_empty_tree(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            remove_empty_tree(&path)?;
        } else if std::fs::metadata(&path)?.len() == 0 {
            std::fs::remove_file(&path)?;
        }
    }
    std::fs::remove_dir(dir)
}

/// Starts `launch` inside the pod. Runs on the sandbox thread.
pub fn spawn(
    name: &str,
    launch: &Launch,
    pod: &PodSandbox,
    mount_points: &MountPoints,
    log: &Path,
) -> Result<Supervised, String> {
    let (program, args) = launch
        .argv
        .split_first()
        .ok_or_else(|| "the container has no command".to_string())?;
    for m in &launch.mounts {
        mount_points
            .ensure(&m.source, &m.target)
            .map_err(|e| format!("mount point {}: {e}", m.target.display()))?;
    }
    let mut setup = ChildSetup::new(launch, pod)?;
    let mut cmd = sandbox::command(program);
    cmd.args(args).env_clear().envs(launch.env.iter().cloned());
    // SAFETY: the closure only makes syscalls on data prepared before the fork.
    unsafe {
        cmd.pre_exec(move || setup.apply());
    }
    // The child must start in the pod's PID namespace; only the forking thread's
    // pid_for_children decides that, so switch it around the spawn.
    let _pid_ns = PidNamespaceSwitch::enter(pod.pid.as_raw_fd()).map_err(|e| e.to_string())?;
    Supervised::spawn(name, cmd, log).map_err(|e| e.to_string())
}

/// What the child does between fork and exec, with every string already a `CString`.
struct ChildSetup {
    net: RawFd,
    uts: RawFd,
    hostname: CString,
    /// (source, target, read-only).
    mounts: Vec<(CString, CString, bool)>,
    /// One slot per mount for its source's descriptor: every source is opened before the first
    /// mount, because a mount over a directory that holds another mount's source (an emptyDir
    /// at `/tmp` while the volumes live under `/tmp`) would hide that source.
    sources: Vec<RawFd>,
    working_dir: Option<CString>,
}

impl ChildSetup {
    fn new(launch: &Launch, pod: &PodSandbox) -> Result<Self, String> {
        let c = |p: &Path| {
            CString::new(p.as_os_str().as_bytes()).map_err(|_| format!("NUL in {}", p.display()))
        };
        Ok(ChildSetup {
            net: pod.net.as_raw_fd(),
            uts: pod.uts.as_raw_fd(),
            hostname: CString::new(launch.hostname.clone()).map_err(|e| e.to_string())?,
            mounts: launch
                .mounts
                .iter()
                .map(|m| Ok((c(&m.source)?, c(&m.target)?, m.read_only)))
                .collect::<Result<_, String>>()?,
            sources: vec![-1; launch.mounts.len()],
            working_dir: launch
                .working_dir
                .as_deref()
                .map(|d| c(Path::new(d)))
                .transpose()?,
        })
    }

    fn apply(&mut self) -> std::io::Result<()> {
        // SAFETY: plain syscalls on valid descriptors and NUL-terminated strings.
        unsafe {
            check(libc::setns(self.net, libc::CLONE_NEWNET))?;
            check(libc::setns(self.uts, libc::CLONE_NEWUTS))?;
            check(libc::sethostname(
                self.hostname.as_ptr(),
                self.hostname.as_bytes().len(),
            ))?;
            sandbox::enter_private_mount_namespace()?;
            // Opened in the new mount namespace: a bind mount's source must be in the caller's.
            for (slot, (source, _, _)) in self.sources.iter_mut().zip(&self.mounts) {
                *slot = libc::open(source.as_ptr(), libc::O_PATH | libc::O_CLOEXEC);
                check(*slot)?;
            }
            for (fd, (_, target, read_only)) in self.sources.iter().zip(&self.mounts) {
                let source = fd_path(*fd);
                check(libc::mount(
                    source.as_ptr().cast(),
                    target.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND | libc::MS_REC,
                    std::ptr::null(),
                ))?;
                if *read_only {
                    check(libc::mount(
                        std::ptr::null(),
                        target.as_ptr(),
                        std::ptr::null(),
                        libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
                        std::ptr::null(),
                    ))?;
                }
            }
            if let Some(dir) = &self.working_dir {
                check(libc::chdir(dir.as_ptr()))?;
            }
        }
        Ok(())
    }
}

/// `/proc/self/fd/{fd}` as a NUL-terminated string, without allocating (this runs between fork
/// and exec).
fn fd_path(fd: RawFd) -> [u8; 32] {
    let mut out = [0u8; 32];
    let prefix = b"/proc/self/fd/";
    out[..prefix.len()].copy_from_slice(prefix);
    let mut digits = [0u8; 10];
    let (mut n, mut len) = (fd.unsigned_abs(), 0);
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for (i, d) in digits[..len].iter().rev().enumerate() {
        out[prefix.len() + i] = *d;
    }
    out
}

/// Sets this thread's pid_for_children to a pod's PID namespace until dropped.
struct PidNamespaceSwitch {
    own: std::fs::File,
}

impl PidNamespaceSwitch {
    fn enter(pod_pid_ns: RawFd) -> std::io::Result<Self> {
        // The thread's active PID namespace never changes, so this is where to come back to.
        let own = std::fs::File::open("/proc/thread-self/ns/pid")?;
        // SAFETY: setns on a valid namespace descriptor.
        check(unsafe { libc::setns(pod_pid_ns, libc::CLONE_NEWPID) })?;
        Ok(PidNamespaceSwitch { own })
    }
}

impl Drop for PidNamespaceSwitch {
    fn drop(&mut self) {
        // SAFETY: setns on a valid namespace descriptor.
        let rc = unsafe { libc::setns(self.own.as_raw_fd(), libc::CLONE_NEWPID) };
        // A thread left in the pod's namespace could no longer create threads: fail loudly.
        assert!(
            rc == 0,
            "cannot restore the PID namespace: {}",
            std::io::Error::last_os_error()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_paths_are_nul_terminated_decimal() {
        let path = fd_path(1234);
        let end = path.iter().position(|b| *b == 0).unwrap();
        assert_eq!(&path[..end], b"/proc/self/fd/1234");
        assert!(fd_path(0).starts_with(b"/proc/self/fd/0\0"));
    }

    fn container(command: Option<&[&str]>, args: Option<&[&str]>) -> Container {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        Container {
            name: "c".into(),
            image: Some("python:3".into()),
            command: command.map(strings),
            args: args.map(strings),
            ..Default::default()
        }
    }

    fn images() -> ImageMap {
        let mut map = ImageMap::default();
        map.insert_spec("python=python3 -m http.server").unwrap();
        map
    }

    #[test]
    fn args_follow_the_image_entrypoint() {
        let argv = argv(
            &container(None, Some(&["$(PORT)"])),
            &images(),
            &[("PORT".into(), "9000".into())],
        )
        .unwrap();
        assert_eq!(argv, ["python3", "-m", "http.server", "9000"]);
    }

    #[test]
    fn command_replaces_the_entrypoint() {
        let argv = argv(
            &container(Some(&["sh", "-c"]), Some(&["exit 3"])),
            &images(),
            &[],
        )
        .unwrap();
        assert_eq!(argv, ["sh", "-c", "exit 3"]);
    }

    #[test]
    fn unknown_image_without_command_is_an_error() {
        let mut c = container(None, None);
        c.image = Some("nginx".into());
        let err = argv(&c, &images(), &[]).unwrap_err();
        assert!(err.contains("\"nginx\" is not in the test environment's image map"));
    }
}
