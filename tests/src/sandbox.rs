//! The environment's private network.
//!
//! A dedicated thread moves itself into a fresh network namespace, creates the pod bridge there
//! (`br0`, 10.244.0.1/16) and runs a single-threaded tokio runtime. Everything that belongs inside
//! the environment runs on that runtime: control plane processes, the kubelet, pod processes,
//! and connections to pod IPs. Two things follow from spawning on that one thread:
//! - children inherit its network namespace, so nothing touches the machine's own network;
//! - children get `PR_SET_PDEATHSIG`, which fires when the *thread* that forked them ends, so
//!   every process dies with the environment, however the test process ends.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Stdio;
use std::thread::JoinHandle;

use nix::sched::CloneFlags;
use tokio::io::AsyncWriteExt;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

use crate::Error;
use crate::controlplane::SERVICE_CIDR;

/// The bridge's address: the pods' default gateway and the API server's advertise address.
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 244, 0, 1);
/// Prefix length of the pod network 10.244.0.0/16.
pub const POD_PREFIX_LEN: u8 = 16;
/// The bridge every pod's veth is attached to.
pub const BRIDGE: &str = "br0";

pub struct Sandbox {
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    netns: PathBuf,
}

impl Sandbox {
    /// Starts the sandbox thread and sets up its network. What runs inside logs to `log`.
    pub fn start(log: &std::path::Path) -> Result<Self, Error> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| Error::io(log, e))?;
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("testenv-sandbox".into())
            .spawn(move || {
                let subscriber = tracing_subscriber::fmt()
                    .with_writer(std::sync::Mutex::new(log))
                    .with_ansi(false)
                    .with_env_filter(
                        tracing_subscriber::EnvFilter::try_from_env("TESTENV_LOG")
                            .unwrap_or_else(|_| "info".into()),
                    )
                    .finish();
                let _log = tracing::subscriber::set_default(subscriber);
                let runtime = match enter_new_network() {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let netns = PathBuf::from(format!(
                    "/proc/{}/task/{}/ns/net",
                    std::process::id(),
                    nix::unistd::gettid()
                ));
                let _ = ready_tx.send(Ok((runtime.handle().clone(), netns)));
                runtime.block_on(async {
                    let _ = stop_rx.await;
                });
                // Dropping the runtime kills the children it still holds (kill_on_drop); the
                // thread's end sends PR_SET_PDEATHSIG to any that escaped that.
                drop(runtime);
            })
            .map_err(|e| Error::io("sandbox thread", e))?;
        let (handle, netns) = ready_rx
            .recv()
            .map_err(|_| Error::Sandbox("sandbox thread ended during setup".into()))??;
        Ok(Sandbox {
            handle,
            stop: Some(stop_tx),
            thread: Some(thread),
            netns,
        })
    }

    /// The runtime inside the sandbox.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// `/proc/PID/task/TID/ns/net` of the sandbox: other processes join the environment's network
    /// by `setns` on it (`testenv exec`).
    pub fn netns_path(&self) -> &PathBuf {
        &self.netns
    }

    /// Runs a future inside the sandbox and returns its output.
    pub async fn run<F>(&self, future: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match self.handle.spawn(future).await {
            Ok(output) => output,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    /// Opens a TCP connection from inside the environment (to a pod IP, or to a control plane
    /// port), usable from any runtime.
    pub async fn connect(&self, addr: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
        connect_from(self.handle.clone(), addr).await
    }

    /// Forwards `listener` (a socket of the caller's network) into the environment: every
    /// connection it accepts is joined to `target` inside.
    pub fn forward(
        &self,
        listener: std::net::TcpListener,
        target: SocketAddr,
    ) -> Result<(), Error> {
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::io("forward listener", e))?;
        self.handle.spawn(async move {
            let listener = match tokio::net::TcpListener::from_std(listener) {
                Ok(listener) => listener,
                Err(e) => {
                    tracing::error!("port forward: {e}");
                    return;
                }
            };
            loop {
                let mut outside = match listener.accept().await {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of descriptors, typically: back off instead of spinning.
                        tracing::warn!("port forward: accept: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                };
                tokio::spawn(async move {
                    if let Ok(mut inside) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut outside, &mut inside).await;
                    }
                });
            }
        });
        Ok(())
    }
}

/// Opens a TCP connection from the sandbox whose runtime `handle` is, usable from any runtime.
pub async fn connect_from(
    handle: Handle,
    addr: SocketAddr,
) -> std::io::Result<tokio::net::TcpStream> {
    let stream = handle
        .spawn(async move { tokio::net::TcpStream::connect(addr).await?.into_std() })
        .await
        .map_err(std::io::Error::other)??;
    tokio::net::TcpStream::from_std(stream)
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Moves the calling thread into a new network namespace with `lo` up and the pod bridge, and
/// builds the runtime that will run there.
fn enter_new_network() -> Result<tokio::runtime::Runtime, Error> {
    nix::sched::unshare(CloneFlags::CLONE_NEWNET)
        .map_err(|e| Error::Sandbox(format!("unshare(CLONE_NEWNET): {e} (tests need root)")))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("sandbox runtime", e))?;
    let script = format!(
        "link set lo up\n\
         link add {BRIDGE} type bridge\n\
         addr add {GATEWAY}/{POD_PREFIX_LEN} dev {BRIDGE}\n\
         link set {BRIDGE} up\n\
         route add {SERVICE_CIDR} dev {BRIDGE}\n"
    );
    runtime.block_on(ip_batch(None, &script))?;
    // The Service network needs a route for connections from here to leave the routing decision
    // before kube-proxy's DNAT rewrites them (a node's default route plays that part).
    // kube-proxy's rules see pod traffic only if the node routes it (a ClusterIP is behind the
    // default gateway) and if bridged replies between pods pass through netfilter too, so that
    // conntrack can undo the DNAT on them. Both settings belong to this namespace alone.
    for (setting, value) in [
        ("net/ipv4/ip_forward", "1"),
        ("net/bridge/bridge-nf-call-iptables", "1"),
    ] {
        let path = format!("/proc/sys/{setting}");
        std::fs::write(&path, value).map_err(|e| Error::io(&path, e))?;
    }
    Ok(runtime)
}

/// Runs `ip -batch -` with `script`, inside the network namespace of process `pid` if given
/// (else the caller's). Must run on the sandbox thread.
pub async fn ip_batch(pid: Option<u32>, script: &str) -> Result<(), Error> {
    let mut cmd = match pid {
        Some(pid) => {
            let mut cmd = command("nsenter");
            cmd.arg(format!("--net=/proc/{pid}/ns/net")).arg("ip");
            cmd
        }
        None => command("ip"),
    };
    cmd.args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::Sandbox(format!("cannot run ip (install iproute2): {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .await
            .map_err(|e| Error::io("ip -batch", e))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| Error::io("ip -batch", e))?;
    if !out.status.success() {
        return Err(Error::Sandbox(format!(
            "ip -batch failed: {}\n{script}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// A command that dies with the sandbox thread. Spawn it on the sandbox thread.
pub fn command(program: impl AsRef<std::ffi::OsStr>) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(program);
    cmd.kill_on_drop(true);
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(die_with_parent_thread);
    }
    cmd
}

/// Moves the calling process into a mount namespace of its own whose mounts do not propagate
/// back to the machine. For use in `pre_exec` (plain syscalls, no allocation).
pub fn enter_private_mount_namespace() -> std::io::Result<()> {
    // SAFETY: plain syscalls with a static path.
    unsafe {
        check(libc::unshare(libc::CLONE_NEWNS))?;
        check(libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ))
    }
}

/// A syscall's `-1` as the `errno` error.
pub fn check(rc: libc::c_int) -> std::io::Result<()> {
    if rc == -1 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `PR_SET_PDEATHSIG(SIGKILL)`; for use in `pre_exec`.
pub fn die_with_parent_thread() -> std::io::Result<()> {
    // SAFETY: a plain syscall with integer arguments.
    let rc = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    if rc == -1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
