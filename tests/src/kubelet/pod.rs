//! One task per pod bound to the node: it creates the pod's sandbox and volumes, runs init
//! containers in order and then the containers, restarts them per `restartPolicy` with back-off,
//! runs their probes, reports the pod's status, and on deletion runs preStop hooks, stops the
//! processes within the grace period and removes the pod object.
//!
//! The loop is level-triggered: each pass compares what runs with what should, so a missed
//! wake-up costs a tick, never a wrong state.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, LifecycleHandler, Pod, PodStatus};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use nix::sys::signal::Signal;
use tokio::sync::watch;
use tokio::time::sleep_until;

use super::container::{self, Launch};
use super::envvars::{self, RuntimeFields};
use super::logs::{self, ContainerLogState};
use super::network::PodSandbox;
use super::probe::{self, Tracker};
use super::status::{self, ContainerView, Exit, PodView, State};
use super::volumes::{self, PreparedVolume};
use super::{Ctx, NODE_NAME};
use crate::controlplane::KUBERNETES_SERVICE_IP;
use crate::dns;
use crate::process::Supervised;

/// How often the loop looks at its processes when nothing else wakes it.
const TICK: Duration = Duration::from_millis(200);
/// A container that ran this long without trouble starts its back-off over (as kubelet does).
const BACKOFF_RESET: Duration = Duration::from_secs(600);
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Runs the pod until it is deleted. `updates` carries the newest pod object; its sender is
/// dropped when the object is gone from the API.
pub async fn run(ctx: Arc<Ctx>, mut updates: watch::Receiver<Pod>) {
    let pod = updates.borrow_and_update().clone();
    let mut worker = PodWorker::new(ctx, &pod);
    loop {
        let pod = updates.borrow_and_update().clone();
        if pod.metadata.deletion_timestamp.is_some() {
            worker.terminate(&pod).await;
            return;
        }
        worker.sync(&pod).await;
        worker.report(&pod).await;
        let wake = worker.next_wake();
        tokio::select! {
            changed = updates.changed() => if changed.is_err() {
                worker.kill().await;
                return;
            },
            _ = sleep_until(wake.into()) => {}
        }
    }
}

struct PodWorker {
    ctx: Arc<Ctx>,
    name: String,
    namespace: String,
    uid: String,
    dir: PathBuf,
    logs: PathBuf,
    start_time: Timestamp,
    restart_policy: String,
    sandbox: Option<PodSandbox>,
    /// Why the pod cannot start yet (sandbox or volume errors), shown on every container.
    blocked: Option<(String, String)>,
    volumes: Option<BTreeMap<String, PreparedVolume>>,
    /// `/etc/hosts` and `/etc/resolv.conf`, written once the pod has its address.
    etc_mounts: Vec<container::Mount>,
    init: Vec<ContainerRun>,
    containers: Vec<ContainerRun>,
    next_init: usize,
    reported: Option<PodStatus>,
}

impl PodWorker {
    fn new(ctx: Arc<Ctx>, pod: &Pod) -> Self {
        let spec = pod.spec.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let dir = ctx.config.dir.join(&uid);
        let logs = logs::pod_dir(&ctx.config.log_dir, &namespace, &name);
        let _ = std::fs::create_dir_all(&logs);
        let backoff = ctx.config.restart_backoff;
        let run = |c: &Container, sidecar: bool| ContainerRun::new(c.clone(), sidecar, backoff);
        PodWorker {
            init: spec
                .init_containers
                .iter()
                .flatten()
                .map(|c| run(c, c.restart_policy.as_deref() == Some("Always")))
                .collect(),
            containers: spec.containers.iter().map(|c| run(c, false)).collect(),
            restart_policy: spec.restart_policy.unwrap_or_else(|| "Always".into()),
            ctx,
            name,
            namespace,
            uid,
            dir,
            logs,
            start_time: Timestamp::now(),
            sandbox: None,
            blocked: None,
            volumes: None,
            etc_mounts: Vec::new(),
            next_init: 0,
            reported: None,
        }
    }

    fn api(&self) -> Api<Pod> {
        Api::namespaced(self.ctx.client.clone(), &self.namespace)
    }

    fn pod_ip(&self) -> Option<IpAddr> {
        self.sandbox.as_ref().map(|s| IpAddr::V4(s.ip))
    }

    /// One pass: sandbox, volumes, init containers, containers, probes.
    async fn sync(&mut self, pod: &Pod) {
        if self.sandbox.is_none() {
            if !self.create_sandbox().await {
                return;
            }
            match self.etc_files(pod) {
                Ok(mounts) => self.etc_mounts = mounts,
                Err(e) => {
                    self.blocked = Some(("ContainerCreating".into(), e.to_string()));
                    return;
                }
            }
        }
        if self.volumes.is_none() {
            let ip = self.pod_ip().map(|ip| ip.to_string()).unwrap_or_default();
            let fields = self.fields(&ip);
            match volumes::prepare(&self.ctx.client, pod, &self.dir.join("volumes"), &fields).await
            {
                Ok(v) => {
                    self.volumes = Some(v);
                    self.blocked = None;
                }
                Err(message) => {
                    self.blocked = Some(("ContainerCreating".into(), message));
                    return;
                }
            }
        }
        let now = Instant::now();
        // Init containers, one at a time; a sidecar (restartPolicy Always) only has to start.
        while self.next_init < self.init.len() {
            let policy = self.restart_policy.clone();
            let i = self.next_init;
            self.step(Which::Init(i), &policy, pod, now).await;
            let c = &self.init[i];
            let done = if c.sidecar {
                c.process.is_some() && c.started
            } else {
                matches!(&c.state, State::Terminated(e) if e.succeeded())
            };
            if !done {
                break;
            }
            self.next_init += 1;
        }
        for i in 0..self.next_init {
            if self.init[i].sidecar {
                self.step(Which::Init(i), "Always", pod, now).await;
            }
        }
        if self.initialized() {
            let policy = self.restart_policy.clone();
            for i in 0..self.containers.len() {
                self.step(Which::Main(i), &policy, pod, now).await;
            }
        }
    }

    async fn create_sandbox(&mut self) -> bool {
        let Some(ip) = self.ctx.ips.lock().expect("ip pool").allocate() else {
            self.blocked = Some(("ContainerCreating".into(), "no pod IP left".into()));
            return false;
        };
        let veth = format!("veth{}", self.ctx.next_veth());
        match PodSandbox::create(ip, &veth, &self.logs.join("sandbox.log")).await {
            Ok(sandbox) => {
                self.sandbox = Some(sandbox);
                true
            }
            Err(e) => {
                self.ctx.ips.lock().expect("ip pool").release(ip);
                self.blocked = Some(("ContainerCreating".into(), e.to_string()));
                false
            }
        }
    }

    /// The `/etc/hosts` and `/etc/resolv.conf` kubelet gives every container of the pod.
    fn etc_files(&self, pod: &Pod) -> Result<Vec<container::Mount>, crate::Error> {
        let dir = self.dir.join("etc");
        let ip = self.pod_ip().map(|ip| ip.to_string()).unwrap_or_default();
        let mut files = vec![("/etc/hosts", dns::hosts(&ip, &self.name))];
        files.extend(dns::resolv_conf(pod).map(|conf| ("/etc/resolv.conf", conf)));
        files
            .into_iter()
            .map(|(target, content)| {
                let name = target.trim_start_matches("/etc/");
                Ok(container::Mount {
                    source: dns::write(&dir, name, &content)?,
                    target: target.into(),
                    read_only: false,
                })
            })
            .collect()
    }

    fn initialized(&self) -> bool {
        self.next_init == self.init.len()
    }

    fn fields<'a>(&self, pod_ip: &'a str) -> RuntimeFields<'a> {
        RuntimeFields {
            pod_ip,
            host_ip: super::HOST_IP,
            node_name: NODE_NAME,
        }
    }

    fn run_mut(&mut self, which: Which) -> &mut ContainerRun {
        match which {
            Which::Init(i) => &mut self.init[i],
            Which::Main(i) => &mut self.containers[i],
        }
    }

    /// Advances one container: notices its exit, restarts it when due, stops it when its
    /// liveness or startup probe gave up, and runs its due probes.
    async fn step(&mut self, which: Which, policy: &str, pod: &Pod, now: Instant) {
        let grace = grace_period(pod);
        let pod_name = self.name.clone();
        let run = self.run_mut(which);
        run.notice_exit(policy, &pod_name);
        if let Some(deadline) = run.kill_at
            && now >= deadline
            && let Some(p) = &run.process
        {
            p.signal(Signal::SIGKILL);
        }
        if run.process.is_none() && !run.finished && run.restart_at.is_none_or(|t| now >= t) {
            self.start(which, pod).await;
            return;
        }
        self.probe(which, grace).await;
    }

    async fn start(&mut self, which: Which, pod: &Pod) {
        let ip = self.pod_ip().map(|ip| ip.to_string()).unwrap_or_default();
        let fields = self.fields(&ip);
        let base = self.ctx.base_env(&self.name);
        let spec = self.run_mut(which).spec.clone();
        let launch = match envvars::resolve(&self.ctx.client, pod, &spec, &fields, &base).await {
            Err(message) => Err(("CreateContainerConfigError", message)),
            Ok(env) => match container::argv(&spec, &self.ctx.config.images, &env) {
                Err(message) => Err(("ErrImagePull", message)),
                Ok(argv) => {
                    let volumes = self.volumes.as_ref().expect("volumes are prepared first");
                    container::mounts(&spec, &self.ctx.config.images, volumes)
                        .map(|mounts| Launch {
                            argv,
                            env,
                            working_dir: spec.working_dir.clone(),
                            // The pod's own files first: a volume mounted over them wins.
                            mounts: self.etc_mounts.iter().cloned().chain(mounts).collect(),
                            hostname: self.name.clone(),
                        })
                        .map_err(|m| ("CreateContainerConfigError", m))
                }
            },
        };
        let instance = self.run_mut(which).next_instance();
        let sandbox = self.sandbox.as_ref().expect("sandbox is created first");
        let spawned = launch.and_then(|launch| {
            let log = logs::new_instance(&self.logs, &spec.name, instance)
                .map_err(|e| ("RunContainerError", format!("log file: {e}")))?;
            container::spawn(&spec.name, &launch, sandbox, &self.ctx.mount_points, &log)
                .map(|p| (p, launch))
                .map_err(|m| ("RunContainerError", m))
        });
        let run = self.run_mut(which);
        match spawned {
            Ok((process, launch)) => run.started_process(process, launch),
            Err((reason, message)) => {
                run.state = State::Waiting {
                    reason: reason.into(),
                    message: Some(message),
                };
                run.restart_at = Some(Instant::now() + Duration::from_secs(2));
            }
        }
    }

    /// Runs the due probes of a running container and acts on their verdicts.
    async fn probe(&mut self, which: Which, grace: Duration) {
        let Some(pod_ip) = self.pod_ip() else { return };
        let now = Instant::now();
        let sandbox = self
            .sandbox
            .as_ref()
            .expect("sandbox exists while containers run");
        let mount_points = &self.ctx.mount_points;
        let logs = self.logs.clone();
        let run = match which {
            Which::Init(i) => &mut self.init[i],
            Which::Main(i) => &mut self.containers[i],
        };
        if run.process.is_none() || run.kill_at.is_some() {
            return;
        }
        let target = probe::Target {
            pod_ip,
            container: &run.spec,
        };
        let launch = run.launch.clone();
        let exec = |argv: Vec<String>, timeout: Duration| {
            let launch = launch.clone();
            let log = logs.join(format!("{}.probe.log", target.container.name));
            async move {
                let Some(mut launch) = launch else {
                    return Err("container is not running".to_string());
                };
                launch.argv = argv;
                let p = container::spawn("exec probe", &launch, sandbox, mount_points, &log)?;
                match tokio::time::timeout(timeout, p.wait()).await {
                    Ok(Some(s)) if s.success() => Ok(()),
                    Ok(s) => Err(format!("command exited with {s:?}")),
                    Err(_) => {
                        p.signal(Signal::SIGKILL);
                        Err("command timed out".into())
                    }
                }
            }
        };
        let mut kill = false;
        if let Some(t) = run
            .startup
            .as_mut()
            .filter(|t| t.due(now) && t.passing != Some(true))
        {
            let outcome = probe::run(&t.probe().clone(), &target, exec).await;
            t.record(outcome, Instant::now());
            match t.passing {
                Some(true) => run.started = true,
                Some(false) => kill = true,
                None => {}
            }
        } else if run.started {
            if let Some(t) = run.liveness.as_mut().filter(|t| t.due(now)) {
                let outcome = probe::run(&t.probe().clone(), &target, exec).await;
                t.record(outcome, Instant::now());
                kill |= t.passing == Some(false);
            }
            if let Some(t) = run.readiness.as_mut().filter(|t| t.due(now)) {
                let outcome = probe::run(&t.probe().clone(), &target, exec).await;
                t.record(outcome, Instant::now());
            }
        }
        run.ready = run.started
            && run
                .readiness
                .as_ref()
                .is_none_or(|t| t.passing == Some(true));
        if kill && let Some(p) = &run.process {
            // Kubelet restarts a container whose liveness or startup probe failed.
            p.signal(Signal::SIGTERM);
            run.kill_at = Some(Instant::now() + grace);
            run.ready = false;
        }
    }

    /// Writes the pod's status when it differs from the last one written.
    async fn report(&mut self, pod: &Pod) {
        let log_states = self
            .init
            .iter()
            .chain(&self.containers)
            .map(|run| (run.spec.name.clone(), run.log_state()))
            .collect();
        self.ctx.logs.publish(
            &self.namespace,
            &self.name,
            &self.uid,
            &self.logs,
            log_states,
        );
        let status =
            status::pod_status(pod, self.reported.as_ref(), &self.view(), Timestamp::now());
        if self.reported.as_ref() == Some(&status) {
            return;
        }
        let patch = serde_json::json!({ "status": status });
        match self
            .api()
            .patch_status(
                &self.name,
                &PatchParams::default(),
                &Patch::Strategic(patch),
            )
            .await
        {
            Ok(_) => self.reported = Some(status),
            Err(e) => tracing::warn!(pod = %self.name, "status update failed: {e}"),
        }
    }

    fn view(&self) -> PodView {
        let blocked = self.blocked.clone();
        let views = |runs: &[ContainerRun]| -> Vec<ContainerView> {
            runs.iter().map(|r| r.view(blocked.as_ref())).collect()
        };
        let mut containers = views(&self.containers);
        if !self.initialized() && blocked.is_none() {
            for c in &mut containers {
                c.state = State::Waiting {
                    reason: "PodInitializing".into(),
                    message: None,
                };
            }
        }
        PodView {
            pod_ip: self.pod_ip().map(|ip| ip.to_string()),
            host_ip: super::HOST_IP.into(),
            start_time: self.start_time,
            sandbox_ready: self.sandbox.is_some(),
            init: views(&self.init),
            containers,
            initialized: self.initialized(),
            restart_policy: self.restart_policy.clone(),
        }
    }

    fn next_wake(&self) -> Instant {
        let mut wake = Instant::now() + TICK;
        for run in self.init.iter().chain(&self.containers) {
            for t in [&run.startup, &run.liveness, &run.readiness]
                .into_iter()
                .flatten()
            {
                wake = wake.min(t.next_run().max(Instant::now()));
            }
        }
        wake
    }

    /// Graceful deletion: preStop hooks, SIGTERM, SIGKILL at the end of the grace period, then
    /// the pod object is removed.
    async fn terminate(&mut self, pod: &Pod) {
        let grace = pod
            .metadata
            .deletion_grace_period_seconds
            .map(|s| Duration::from_secs(s.max(0) as u64))
            .unwrap_or_else(|| grace_period(pod));
        let deadline = Instant::now() + grace;
        let pod_ip = self.pod_ip();
        let hooks = self
            .containers
            .iter()
            .filter(|c| c.process.is_some())
            .map(|c| {
                let hook = c.spec.lifecycle.as_ref().and_then(|l| l.pre_stop.clone());
                let container = c.spec.clone();
                async move {
                    if let (Some(hook), Some(ip)) = (hook, pod_ip) {
                        let run = pre_stop(&hook, ip, &container);
                        let _ = tokio::time::timeout_at(deadline.into(), run).await;
                    }
                }
            });
        futures::future::join_all(hooks).await;
        // Containers first, then sidecars, as kubelet does.
        stop_all(&self.containers, deadline).await;
        stop_all(&self.init, deadline).await;
        let policy = self.restart_policy.clone();
        for run in self.containers.iter_mut().chain(self.init.iter_mut()) {
            run.finished = true;
            run.notice_exit(&policy, "");
        }
        self.report(pod).await;
        self.release().await;
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(self.uid.clone()),
                resource_version: None,
            }),
            ..Default::default()
        };
        if let Err(e) = self.api().delete(&self.name, &params).await {
            tracing::debug!(pod = %self.name, "final delete: {e}");
        }
    }

    /// The pod object is gone: stop everything at once.
    async fn kill(&mut self) {
        for run in self.containers.iter().chain(&self.init) {
            if let Some(p) = &run.process {
                p.signal(Signal::SIGKILL);
            }
        }
        self.release().await;
    }

    async fn release(&mut self) {
        self.ctx.logs.forget(&self.namespace, &self.name, &self.uid);
        if let Some(sandbox) = self.sandbox.take() {
            sandbox.destroy().await;
            self.ctx.ips.lock().expect("ip pool").release(sandbox.ip);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[derive(Clone, Copy)]
enum Which {
    Init(usize),
    Main(usize),
}

/// A container and its current process.
struct ContainerRun {
    spec: Container,
    sidecar: bool,
    process: Option<Supervised>,
    launch: Option<Launch>,
    started_at: Option<(Timestamp, Instant)>,
    state: State,
    last: Option<Exit>,
    restart_count: i32,
    ever_started: bool,
    /// The delay before the next restart; zero before the first failure.
    backoff: Duration,
    initial_backoff: Duration,
    restart_at: Option<Instant>,
    kill_at: Option<Instant>,
    /// Terminated and not to be restarted.
    finished: bool,
    started: bool,
    ready: bool,
    startup: Option<Tracker>,
    liveness: Option<Tracker>,
    readiness: Option<Tracker>,
}

impl ContainerRun {
    fn new(spec: Container, sidecar: bool, initial_backoff: Duration) -> Self {
        ContainerRun {
            spec,
            sidecar,
            process: None,
            launch: None,
            started_at: None,
            state: State::Waiting {
                reason: "ContainerCreating".into(),
                message: None,
            },
            last: None,
            restart_count: 0,
            ever_started: false,
            backoff: Duration::ZERO,
            initial_backoff,
            restart_at: None,
            kill_at: None,
            finished: false,
            started: false,
            ready: false,
            startup: None,
            liveness: None,
            readiness: None,
        }
    }

    fn started_process(&mut self, process: Supervised, launch: Launch) {
        let now = Instant::now();
        self.restart_count = self.next_instance();
        self.ever_started = true;
        self.process = Some(process);
        self.launch = Some(launch);
        self.started_at = Some((Timestamp::now(), now));
        self.state = State::Running {
            started_at: Timestamp::now(),
        };
        self.restart_at = None;
        self.kill_at = None;
        self.startup = self
            .spec
            .startup_probe
            .clone()
            .map(|p| Tracker::new(p, now));
        self.liveness = self
            .spec
            .liveness_probe
            .clone()
            .map(|p| Tracker::new(p, now));
        self.readiness = self
            .spec
            .readiness_probe
            .clone()
            .map(|p| Tracker::new(p, now));
        self.started = self.startup.is_none();
        self.ready = self.started && self.readiness.is_none();
    }

    /// The number of the next process started: its restart count, and its log file's name.
    fn next_instance(&self) -> i32 {
        if self.ever_started {
            self.restart_count + 1
        } else {
            0
        }
    }

    fn log_state(&self) -> ContainerLogState {
        ContainerLogState {
            latest: self.ever_started.then_some(self.restart_count),
            running: self.process.is_some(),
            finished: self.finished,
            waiting_reason: match &self.state {
                State::Waiting { reason, .. } => reason.clone(),
                _ => String::new(),
            },
        }
    }

    /// Records the end of the process, if it ended, and schedules the restart `policy` asks for.
    fn notice_exit(&mut self, policy: &str, pod_name: &str) {
        let Some(status) = self.process.as_ref().and_then(Supervised::exit_status) else {
            return;
        };
        self.process = None;
        self.started = false;
        self.ready = false;
        self.kill_at = None;
        let (started_at, ran_since) = self
            .started_at
            .take()
            .unwrap_or((Timestamp::now(), Instant::now()));
        let exit = Exit {
            exit_code: status
                .code()
                .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
            signal: status.signal(),
            started_at,
            finished_at: Timestamp::now(),
        };
        let restart = !self.finished
            && match policy {
                "Always" => true,
                "OnFailure" => !exit.succeeded(),
                _ => false,
            };
        if !restart {
            self.finished = true;
            self.state = State::Terminated(exit);
            return;
        }
        if ran_since.elapsed() >= BACKOFF_RESET {
            self.backoff = Duration::ZERO;
        }
        let delay = self.backoff;
        self.backoff = (delay * 2).clamp(self.initial_backoff, MAX_BACKOFF);
        self.restart_at = Some(Instant::now() + delay);
        self.state = if delay.is_zero() {
            State::Terminated(exit.clone())
        } else {
            State::Waiting {
                reason: "CrashLoopBackOff".into(),
                message: Some(format!(
                    "back-off {}s restarting failed container={} pod={pod_name}",
                    delay.as_secs(),
                    self.spec.name
                )),
            }
        };
        self.last = Some(exit);
    }

    fn view(&self, blocked: Option<&(String, String)>) -> ContainerView {
        let state = match (blocked, &self.state) {
            (Some((reason, message)), State::Waiting { .. }) => State::Waiting {
                reason: reason.clone(),
                message: Some(message.clone()),
            },
            (_, s) => s.clone(),
        };
        ContainerView {
            name: self.spec.name.clone(),
            image: self.spec.image.clone().unwrap_or_default(),
            state,
            last: self.last.clone(),
            restart_count: self.restart_count,
            ready: self.ready,
            started: self.started && self.process.is_some(),
            pid: self.process.as_ref().map(Supervised::pid),
        }
    }
}

fn grace_period(pod: &Pod) -> Duration {
    let seconds = pod
        .spec
        .as_ref()
        .and_then(|s| s.termination_grace_period_seconds)
        .unwrap_or(30);
    Duration::from_secs(seconds.max(0) as u64)
}

/// SIGTERM to every running process, SIGKILL to those alive at `deadline`.
async fn stop_all(runs: &[ContainerRun], deadline: Instant) {
    let stops = runs
        .iter()
        .filter_map(|r| r.process.as_ref())
        .map(|p| async move {
            let grace = deadline.saturating_duration_since(Instant::now());
            p.terminate(grace).await;
        });
    futures::future::join_all(stops).await;
}

/// Runs a preStop hook: sleep, or an HTTP GET. (exec hooks are not supported.)
async fn pre_stop(hook: &LifecycleHandler, pod_ip: IpAddr, container: &Container) {
    if let Some(s) = &hook.sleep {
        tokio::time::sleep(Duration::from_secs(s.seconds.max(0) as u64)).await;
    } else if let Some(http) = &hook.http_get {
        let probe = k8s_openapi::api::core::v1::Probe {
            http_get: Some(http.clone()),
            timeout_seconds: Some(30),
            ..Default::default()
        };
        let target = probe::Target { pod_ip, container };
        let unsupported = |_: Vec<String>, _: Duration| async { Err(String::new()) };
        let _ = probe::run(&probe, &target, unsupported).await;
    } else if hook.exec.is_some() {
        tracing::warn!(container = %container.name, "exec preStop hooks are not supported");
    }
}

impl Ctx {
    /// Variables every container gets: PATH and HOME of the machine (the "image" is the
    /// machine's file system), the hostname, and the `kubernetes` Service's ClusterIP (routed to
    /// the API server by kube-proxy).
    fn base_env(&self, pod_name: &str) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = ["PATH", "HOME", "LANG"]
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
            .collect();
        env.extend([
            ("HOSTNAME".into(), pod_name.to_string()),
            (
                "KUBERNETES_SERVICE_HOST".into(),
                KUBERNETES_SERVICE_IP.to_string(),
            ),
            ("KUBERNETES_SERVICE_PORT".into(), "443".into()),
            ("KUBERNETES_SERVICE_PORT_HTTPS".into(), "443".into()),
            (
                "KUBERNETES_PORT".into(),
                format!("tcp://{KUBERNETES_SERVICE_IP}:443"),
            ),
        ]);
        env
    }
}
