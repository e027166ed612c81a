//! A child process supervised from the sandbox runtime: its exit is observable, and it can be
//! stopped the way kubelet stops a container (SIGTERM to its process group, SIGKILL after a
//! grace period).

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

pub use nix::sys::signal::Signal;
use nix::sys::signal::killpg;
use nix::unistd::Pid;
use tokio::sync::watch;

use crate::Error;

#[derive(Debug, Clone)]
pub struct Supervised {
    name: String,
    pid: u32,
    exit: watch::Receiver<Option<ExitStatus>>,
}

impl Supervised {
    /// Spawns `cmd` in its own process group with stdout and stderr appended to `log`.
    /// Must be called on the sandbox thread (see [`crate::sandbox`]).
    pub fn spawn(
        name: impl Into<String>,
        mut cmd: tokio::process::Command,
        log: &Path,
    ) -> Result<Self, Error> {
        let name = name.into();
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| Error::io(log, e))?;
        let err = out.try_clone().map_err(|e| Error::io(log, e))?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .process_group(0);
        let mut child = cmd.spawn().map_err(|e| Error::Spawn(name.clone(), e))?;
        let pid = child
            .id()
            .ok_or_else(|| Error::Spawn(name.clone(), std::io::Error::other("exited at once")))?;
        let (tx, exit) = watch::channel(None);
        tokio::spawn(async move {
            let status = child.wait().await.ok();
            let _ = tx.send(status);
        });
        Ok(Supervised { name, pid, exit })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The exit status, once the process has exited.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        *self.exit.borrow()
    }

    /// Waits for the process to exit.
    pub async fn wait(&self) -> Option<ExitStatus> {
        let mut exit = self.exit.clone();
        match exit.wait_for(Option::is_some).await {
            Ok(status) => *status,
            // The supervising task is gone: the runtime is shutting down.
            Err(_) => None,
        }
    }

    /// Sends `signal` to the process group.
    pub fn signal(&self, signal: Signal) {
        if self.exit_status().is_none() {
            let _ = killpg(Pid::from_raw(self.pid as i32), signal);
        }
    }

    /// SIGKILL to the process group: the process dies without any chance to clean up.
    pub fn kill(&self) {
        self.signal(Signal::SIGKILL);
    }

    /// SIGTERM, then SIGKILL after `grace` if the process is still running.
    pub async fn terminate(&self, grace: Duration) -> Option<ExitStatus> {
        self.signal(Signal::SIGTERM);
        if let Ok(status) = tokio::time::timeout(grace, self.wait()).await {
            return status;
        }
        self.signal(Signal::SIGKILL);
        self.wait().await
    }
}

/// The last `lines` lines of a log file, for error messages.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
