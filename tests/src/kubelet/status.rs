//! The pod status the kubelet reports, computed from what it knows of the pod's containers: no
//! I/O here. Conditions keep their transition time while their status stays the same; `Ready`
//! requires every readiness gate to be True, as kubelet computes it.

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// What a container is doing now.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    Waiting {
        reason: String,
        message: Option<String>,
    },
    Running {
        started_at: Timestamp,
    },
    Terminated(Exit),
}

/// How a run of a container ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Exit {
    pub exit_code: i32,
    pub signal: Option<i32>,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
}

impl Exit {
    pub fn succeeded(&self) -> bool {
        self.exit_code == 0
    }
}

/// The kubelet's view of one container.
#[derive(Debug, Clone)]
pub struct ContainerView {
    pub name: String,
    pub image: String,
    pub state: State,
    pub last: Option<Exit>,
    pub restart_count: i32,
    pub ready: bool,
    pub started: bool,
    pub pid: Option<u32>,
}

/// The kubelet's view of a pod.
#[derive(Debug, Clone)]
pub struct PodView {
    pub pod_ip: Option<String>,
    pub host_ip: String,
    pub start_time: Timestamp,
    pub sandbox_ready: bool,
    pub init: Vec<ContainerView>,
    pub containers: Vec<ContainerView>,
    /// All init containers completed (or, for sidecars, started).
    pub initialized: bool,
    pub restart_policy: String,
}

/// The status to report for `pod` given the kubelet's `view`, at time `now`. Conditions keep
/// their transition times from `written`, the status this kubelet last wrote, else from the
/// pod: the watched pod lags the kubelet's own writes, and taking its older times would flip
/// them back and forth (each flip a write and a watch event), as a real kubelet's status cache
/// does not.
pub fn pod_status(
    pod: &Pod,
    written: Option<&PodStatus>,
    view: &PodView,
    now: Timestamp,
) -> PodStatus {
    let previous = written
        .or(pod.status.as_ref())
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let condition = |type_: &str, ok: bool, reason: Option<&str>, message: Option<String>| {
        let status = if ok { "True" } else { "False" };
        let since = previous
            .iter()
            .find(|c| c.type_ == type_ && c.status == status)
            .and_then(|c| c.last_transition_time.clone())
            .unwrap_or(Time(now));
        PodCondition {
            type_: type_.into(),
            status: status.into(),
            last_transition_time: Some(since),
            reason: reason.filter(|_| !ok).map(String::from),
            message: message.filter(|_| !ok),
            ..Default::default()
        }
    };

    let incomplete: Vec<&str> = view
        .init
        .iter()
        .filter(|c| !matches!(&c.state, State::Terminated(e) if e.succeeded()) && !c.started)
        .map(|c| c.name.as_str())
        .collect();
    let unready: Vec<&str> = view
        .containers
        .iter()
        .filter(|c| !c.ready)
        .map(|c| c.name.as_str())
        .collect();
    let containers_ready = view.initialized && unready.is_empty();
    let gate_problem = readiness_gate_problem(pod);
    let (ready, ready_reason, ready_message) = match (containers_ready, &gate_problem) {
        (false, _) => (
            false,
            "ContainersNotReady",
            format!("containers with unready status: [{}]", unready.join(" ")),
        ),
        (true, Some(problem)) => (false, "ReadinessGatesNotReady", problem.clone()),
        (true, None) => (true, "", String::new()),
    };

    let conditions = vec![
        condition("PodReadyToStartContainers", view.sandbox_ready, None, None),
        condition(
            "Initialized",
            view.initialized,
            Some("ContainersNotInitialized"),
            Some(format!(
                "containers with incomplete status: [{}]",
                incomplete.join(" ")
            )),
        ),
        condition(
            "ContainersReady",
            containers_ready,
            Some("ContainersNotReady"),
            Some(format!(
                "containers with unready status: [{}]",
                unready.join(" ")
            )),
        ),
        condition("Ready", ready, Some(ready_reason), Some(ready_message)),
    ];

    PodStatus {
        phase: Some(phase(view).into()),
        conditions: Some(conditions),
        host_ip: Some(view.host_ip.clone()),
        host_ips: Some(vec![HostIP {
            ip: view.host_ip.clone(),
        }]),
        pod_ip: view.pod_ip.clone(),
        pod_ips: view
            .pod_ip
            .as_ref()
            .map(|ip| vec![PodIP { ip: ip.clone() }]),
        start_time: Some(Time(view.start_time)),
        init_container_statuses: (!view.init.is_empty())
            .then(|| view.init.iter().map(container_status).collect()),
        container_statuses: Some(view.containers.iter().map(container_status).collect()),
        ..Default::default()
    }
}

/// Why the readiness gates keep the pod out of Ready, in kubelet's words, or None.
fn readiness_gate_problem(pod: &Pod) -> Option<String> {
    let gates = pod.spec.as_ref()?.readiness_gates.as_ref()?;
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    gates.iter().find_map(|gate| {
        let t = &gate.condition_type;
        match conditions.and_then(|cs| cs.iter().find(|c| &c.type_ == t)) {
            None => Some(format!(
                "corresponding condition of pod readiness gate \"{t}\" does not exist."
            )),
            Some(c) if c.status != "True" => Some(format!(
                "the status of pod readiness gate \"{t}\" is not \"True\", but {}",
                c.status
            )),
            Some(_) => None,
        }
    })
}

/// The pod phase from its containers, following kubelet's rules.
fn phase(view: &PodView) -> &'static str {
    let init_failed = view.restart_policy == "Never"
        && view
            .init
            .iter()
            .any(|c| matches!(&c.state, State::Terminated(e) if !e.succeeded()));
    if init_failed {
        return "Failed";
    }
    if !view.initialized {
        return "Pending";
    }
    let (mut running, mut waiting, mut succeeded, mut failed) = (0, 0, 0, 0);
    for c in &view.containers {
        match &c.state {
            State::Running { .. } => running += 1,
            // A container waiting to be restarted has run before: the pod is running.
            State::Waiting { .. } if c.last.is_some() => running += 1,
            State::Waiting { .. } => waiting += 1,
            State::Terminated(e) if e.succeeded() => succeeded += 1,
            State::Terminated(_) => failed += 1,
        }
    }
    if waiting > 0 {
        return "Pending";
    }
    if running > 0 {
        return "Running";
    }
    match view.restart_policy.as_str() {
        "Always" => "Running",
        "OnFailure" if failed > 0 => "Running",
        _ if failed > 0 => "Failed",
        _ if succeeded > 0 => "Succeeded",
        _ => "Pending",
    }
}

fn container_status(c: &ContainerView) -> ContainerStatus {
    ContainerStatus {
        name: c.name.clone(),
        image: c.image.clone(),
        image_id: format!("testenv://{}", c.image),
        container_id: c.pid.map(|pid| format!("testenv://{pid}")),
        ready: c.ready,
        started: Some(c.started),
        restart_count: c.restart_count,
        state: Some(state(&c.state)),
        last_state: c.last.as_ref().map(|e| ContainerState {
            terminated: Some(terminated(e)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn state(s: &State) -> ContainerState {
    match s {
        State::Waiting { reason, message } => ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.clone()),
                message: message.clone(),
            }),
            ..Default::default()
        },
        State::Running { started_at } => ContainerState {
            running: Some(ContainerStateRunning {
                started_at: Some(Time(*started_at)),
            }),
            ..Default::default()
        },
        State::Terminated(e) => ContainerState {
            terminated: Some(terminated(e)),
            ..Default::default()
        },
    }
}

fn terminated(e: &Exit) -> ContainerStateTerminated {
    ContainerStateTerminated {
        exit_code: e.exit_code,
        signal: e.signal,
        reason: Some(if e.succeeded() { "Completed" } else { "Error" }.into()),
        started_at: Some(Time(e.started_at)),
        finished_at: Some(Time(e.finished_at)),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodReadinessGate, PodSpec};

    fn running(name: &str, ready: bool) -> ContainerView {
        ContainerView {
            name: name.into(),
            image: "img".into(),
            state: State::Running {
                started_at: Timestamp::UNIX_EPOCH,
            },
            last: None,
            restart_count: 0,
            ready,
            started: true,
            pid: Some(42),
        }
    }

    fn view(containers: Vec<ContainerView>) -> PodView {
        PodView {
            pod_ip: Some("10.244.0.2".into()),
            host_ip: "10.244.0.1".into(),
            start_time: Timestamp::UNIX_EPOCH,
            sandbox_ready: true,
            init: vec![],
            containers,
            initialized: true,
            restart_policy: "Always".into(),
        }
    }

    fn gated_pod(gate_status: Option<&str>) -> Pod {
        let mut pod = Pod {
            spec: Some(PodSpec {
                readiness_gates: Some(vec![PodReadinessGate {
                    condition_type: "example.com/gate".into(),
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        if let Some(status) = gate_status {
            pod.status = Some(PodStatus {
                conditions: Some(vec![PodCondition {
                    type_: "example.com/gate".into(),
                    status: status.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            });
        }
        pod
    }

    fn ready_condition(status: &PodStatus) -> &PodCondition {
        let conditions = status.conditions.as_ref().unwrap();
        conditions.iter().find(|c| c.type_ == "Ready").unwrap()
    }

    #[test]
    fn ready_pod_needs_every_readiness_gate_true() {
        let v = view(vec![running("app", true)]);
        let now = Timestamp::UNIX_EPOCH;
        let missing = pod_status(&gated_pod(None), None, &v, now);
        assert_eq!(ready_condition(&missing).status, "False");
        assert_eq!(
            ready_condition(&missing).reason.as_deref(),
            Some("ReadinessGatesNotReady")
        );
        let false_gate = pod_status(&gated_pod(Some("False")), None, &v, now);
        assert!(
            ready_condition(&false_gate)
                .message
                .as_deref()
                .unwrap()
                .contains("is not \"True\", but False")
        );
        let true_gate = pod_status(&gated_pod(Some("True")), None, &v, now);
        assert_eq!(ready_condition(&true_gate).status, "True");
    }

    #[test]
    fn unready_container_names_itself() {
        let v = view(vec![running("a", true), running("b", false)]);
        let status = pod_status(&Pod::default(), None, &v, Timestamp::UNIX_EPOCH);
        let ready = ready_condition(&status);
        assert_eq!(ready.status, "False");
        assert_eq!(
            ready.message.as_deref(),
            Some("containers with unready status: [b]")
        );
    }

    #[test]
    fn transition_time_is_kept_while_the_status_stays() {
        let v = view(vec![running("app", true)]);
        let earlier = Timestamp::from_second(1_000).unwrap();
        let first = pod_status(&Pod::default(), None, &v, earlier);
        let pod = Pod {
            status: Some(first.clone()),
            ..Default::default()
        };
        let later = Timestamp::from_second(2_000).unwrap();
        let second = pod_status(&pod, None, &v, later);
        assert_eq!(
            ready_condition(&second).last_transition_time,
            Some(Time(earlier))
        );
        // The kubelet's own last write wins over a pod read before it (a lagging watch).
        let stale = Pod::default();
        let third = pod_status(&stale, Some(&first), &v, later);
        assert_eq!(
            ready_condition(&third).last_transition_time,
            Some(Time(earlier))
        );
    }

    #[test]
    fn phase_follows_restart_policy() {
        let exit = |code| Exit {
            exit_code: code,
            signal: None,
            started_at: Timestamp::UNIX_EPOCH,
            finished_at: Timestamp::UNIX_EPOCH,
        };
        let done = |code| ContainerView {
            state: State::Terminated(exit(code)),
            ready: false,
            ..running("job", false)
        };
        let mut v = view(vec![done(0)]);
        v.restart_policy = "Never".into();
        assert_eq!(phase(&v), "Succeeded");
        v.containers = vec![done(1)];
        assert_eq!(phase(&v), "Failed");
        v.restart_policy = "OnFailure".into();
        assert_eq!(phase(&v), "Running");
        let mut waiting = view(vec![ContainerView {
            state: State::Waiting {
                reason: "ContainerCreating".into(),
                message: None,
            },
            ..running("app", false)
        }]);
        assert_eq!(phase(&waiting), "Pending");
        waiting.containers[0].last = Some(exit(1));
        assert_eq!(phase(&waiting), "Running");
    }
}
