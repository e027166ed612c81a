//! The bridge's child processes. Each runs as the leader of its own process group, so that what
//! it starts (a shell's commands, `npx`'s node) is stopped with it: the whole group gets SIGKILL
//! when the child is stopped, replaced or dropped. When this server is PID 1 (a container
//! without an init), orphans reparented to it are reaped, so none stays a zombie.

use std::collections::HashSet;
use std::sync::Mutex;

use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

/// Pids of the children this server waits for itself. The orphan reaper leaves them alone, so
/// their exit status still reaches the task that waits; the lock is held across spawning, so a
/// child cannot exit unregistered.
static OWN_CHILDREN: Mutex<Option<HashSet<u32>>> = Mutex::new(None);

fn own_children() -> std::sync::MutexGuard<'static, Option<HashSet<u32>>> {
    OWN_CHILDREN.lock().unwrap_or_else(|p| p.into_inner())
}

/// A child process leading its own process group.
pub struct GroupChild {
    child: Child,
    /// The group, until the leader has been waited for (its id may be reused after that).
    group: Option<Pid>,
}

impl GroupChild {
    /// Starts `command` as the leader of a new process group.
    pub fn spawn(command: &mut Command) -> std::io::Result<Self> {
        command.process_group(0).kill_on_drop(true);
        let mut own = own_children();
        let child = command.spawn()?;
        let group = child.id().map(|pid| {
            own.get_or_insert_with(HashSet::new).insert(pid);
            Pid::from_raw(pid as i32)
        });
        Ok(Self { child, group })
    }

    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Kills the whole group and waits for the leader. Safe before the wait: until the leader is
    /// reaped its id (and so the group id) cannot be taken by another process.
    pub async fn stop(&mut self) -> std::io::Result<std::process::ExitStatus> {
        self.kill_group();
        let status = self.child.wait().await;
        self.reaped(status)
    }

    /// Waits for the leader to exit by itself, then kills what is left of its group.
    pub async fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        let status = self.child.wait().await;
        self.kill_group();
        self.reaped(status)
    }

    fn kill_group(&self) {
        if let Some(group) = self.group {
            // Fails only when the group is already empty.
            let _ = killpg(group, Signal::SIGKILL);
        }
    }

    fn reaped(
        &mut self,
        status: std::io::Result<std::process::ExitStatus>,
    ) -> std::io::Result<std::process::ExitStatus> {
        if let Some(group) = self.group.take()
            && let Some(own) = own_children().as_mut()
        {
            own.remove(&(group.as_raw() as u32));
        }
        status
    }
}

impl Drop for GroupChild {
    fn drop(&mut self) {
        // Not stopped in order (a task aborted, shutdown): the group goes anyway. tokio reaps
        // the leader in the background (`kill_on_drop`).
        self.kill_group();
        if let Some(group) = self.group.take()
            && let Some(own) = own_children().as_mut()
        {
            own.remove(&(group.as_raw() as u32));
        }
    }
}

/// When this process is PID 1, reaps every orphan that is reparented to it and exits, for as
/// long as the runtime runs. Elsewhere the system's init does that, and this does nothing.
pub fn reap_orphans_when_init() {
    if std::process::id() != 1 {
        return;
    }
    tokio::spawn(async {
        let mut exits = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child())
        {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch child exits; orphans will not be reaped");
                return;
            }
        };
        while exits.recv().await.is_some() {
            reap_orphans();
        }
    });
}

/// Reaps the exited children of this process that are not its own (orphans it inherited).
fn reap_orphans() {
    let own = own_children();
    for pid in exited_children() {
        if own.as_ref().is_some_and(|o| o.contains(&pid)) {
            continue;
        }
        let _ = waitpid(Pid::from_raw(pid as i32), Some(WaitPidFlag::WNOHANG));
    }
}

/// Children of this process that have exited and wait to be reaped (zombies), from `/proc`.
fn exited_children() -> Vec<u32> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
                    let fields = stat.rsplit_once(')')?.1;
                    let mut fields = fields.split_whitespace();
                    let state = fields.next()?;
                    let ppid = fields.next()?.parse::<u32>().ok()?;
                    Some(state == "Z" && ppid == me)
                })
                .unwrap_or(false)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn alive(pid: i32) -> bool {
        // Signal 0 checks existence; a zombie is not alive for our purpose.
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                !s.rsplit_once(')')
                    .is_some_and(|(_, f)| f.trim_start().starts_with('Z'))
            })
            .unwrap_or(false)
    }

    #[tokio::test]
    async fn stopping_a_child_kills_what_it_started() {
        let mut command = Command::new("sh");
        command
            .args(["-c", "sleep 300 & echo $!; wait"])
            .stdout(std::process::Stdio::piped());
        let mut child = GroupChild::spawn(&mut command).unwrap();
        let mut out = child.child_mut().stdout.take().unwrap();
        let mut line = String::new();
        let mut buf = [0u8; 32];
        while !line.ends_with('\n') {
            let n = tokio::io::AsyncReadExt::read(&mut out, &mut buf)
                .await
                .unwrap();
            assert!(n > 0, "the shell printed its child's pid");
            line.push_str(std::str::from_utf8(&buf[..n]).unwrap());
        }
        let grandchild: i32 = line.trim().parse().unwrap();
        assert!(alive(grandchild));
        child.stop().await.unwrap();
        for _ in 0..50 {
            if !alive(grandchild) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the grandchild {grandchild} outlived its group");
    }
}
