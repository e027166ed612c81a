//! Container probes (httpGet, tcpSocket, exec) and the counting kubelet does around them:
//! initial delay, period, timeout, success and failure thresholds.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use http_body_util::Empty;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The outcome of one probe: Ok, or what failed, in words for the pod's events and logs.
pub type Outcome = Result<(), String>;

/// What a probe needs to know about where it runs.
pub struct Target<'a> {
    pub pod_ip: IpAddr,
    pub container: &'a Container,
}

/// Runs `probe` once. `exec` runs an exec action's command inside the container.
pub async fn run<F, Fut>(probe: &Probe, target: &Target<'_>, exec: F) -> Outcome
where
    F: FnOnce(Vec<String>, Duration) -> Fut,
    Fut: Future<Output = Outcome>,
{
    let timeout = Duration::from_secs(probe.timeout_seconds.unwrap_or(1).max(1) as u64);
    if let Some(http) = &probe.http_get {
        if http
            .scheme
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("HTTPS"))
        {
            return Err("HTTPS probes are not supported by the test kubelet".into());
        }
        let ip = match &http.host {
            Some(host) if !host.is_empty() => host
                .parse()
                .map_err(|_| format!("probe host {host:?} is not an IP address"))?,
            _ => target.pod_ip,
        };
        let port = port(&http.port, target.container)?;
        let path = http.path.clone().unwrap_or_else(|| "/".into());
        let headers: Vec<(String, String)> = http
            .http_headers
            .iter()
            .flatten()
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect();
        return tokio::time::timeout(
            timeout,
            http_get(SocketAddr::new(ip, port), &path, &headers),
        )
        .await
        .unwrap_or_else(|_| Err(format!("Get \"http://{ip}:{port}{path}\": timeout")));
    }
    if let Some(tcp) = &probe.tcp_socket {
        let ip = tcp
            .host
            .as_deref()
            .and_then(|h| h.parse().ok())
            .unwrap_or(target.pod_ip);
        let addr = SocketAddr::new(ip, port(&tcp.port, target.container)?);
        return match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("dial tcp {addr}: {e}")),
            Err(_) => Err(format!("dial tcp {addr}: timeout")),
        };
    }
    if let Some(action) = &probe.exec {
        return exec(action.command.clone().unwrap_or_default(), timeout).await;
    }
    Err("probe has no supported handler (httpGet, tcpSocket or exec)".into())
}

async fn http_get(addr: SocketAddr, path: &str, headers: &[(String, String)]) -> Outcome {
    let fail = |e: &dyn std::fmt::Display| format!("Get \"http://{addr}{path}\": {e}");
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| fail(&e))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| fail(&e))?;
    tokio::spawn(conn);
    let mut request = hyper::Request::get(path)
        .header(hyper::header::HOST, addr.to_string())
        .header(hyper::header::USER_AGENT, "kube-probe/testenv");
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let request = request.body(Empty::<Bytes>::new()).map_err(|e| fail(&e))?;
    let response = sender.send_request(request).await.map_err(|e| fail(&e))?;
    let status = response.status().as_u16();
    if (200..400).contains(&status) {
        Ok(())
    } else {
        Err(format!("HTTP probe failed with statuscode: {status}"))
    }
}

/// A probe's port: a number, or the name of one of the container's ports.
fn port(port: &IntOrString, container: &Container) -> Result<u16, String> {
    match port {
        IntOrString::Int(n) => u16::try_from(*n).map_err(|_| format!("invalid port {n}")),
        IntOrString::String(name) => container
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name))
            .and_then(|p| u16::try_from(p.container_port).ok())
            .ok_or_else(|| format!("container has no port named {name:?}")),
    }
}

/// Counts a probe's results the way kubelet does.
#[derive(Debug, Clone)]
pub struct Tracker {
    probe: Probe,
    next: Instant,
    successes: i32,
    failures: i32,
    /// The verdict so far: None until the thresholds decide.
    pub passing: Option<bool>,
    pub last_error: Option<String>,
}

impl Tracker {
    pub fn new(probe: Probe, container_started: Instant) -> Self {
        let delay = Duration::from_secs(probe.initial_delay_seconds.unwrap_or(0).max(0) as u64);
        Tracker {
            probe,
            next: container_started + delay,
            successes: 0,
            failures: 0,
            passing: None,
            last_error: None,
        }
    }

    pub fn probe(&self) -> &Probe {
        &self.probe
    }

    pub fn due(&self, now: Instant) -> bool {
        now >= self.next
    }

    pub fn next_run(&self) -> Instant {
        self.next
    }

    /// Records a result; returns true when the verdict changed.
    pub fn record(&mut self, outcome: Outcome, now: Instant) -> bool {
        self.next =
            now + Duration::from_secs(self.probe.period_seconds.unwrap_or(10).max(1) as u64);
        let before = self.passing;
        match outcome {
            Ok(()) => {
                self.successes += 1;
                self.failures = 0;
                self.last_error = None;
                if self.successes >= self.probe.success_threshold.unwrap_or(1).max(1) {
                    self.passing = Some(true);
                }
            }
            Err(e) => {
                self.failures += 1;
                self.successes = 0;
                self.last_error = Some(e);
                if self.failures >= self.probe.failure_threshold.unwrap_or(3).max(1) {
                    self.passing = Some(false);
                }
            }
        }
        before != self.passing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_decide_the_verdict() {
        let probe = Probe {
            success_threshold: Some(2),
            failure_threshold: Some(2),
            period_seconds: Some(1),
            ..Default::default()
        };
        let now = Instant::now();
        let mut t = Tracker::new(probe, now);
        assert!(t.due(now));
        assert!(!t.record(Ok(()), now));
        assert_eq!(t.passing, None);
        assert!(t.record(Ok(()), now));
        assert_eq!(t.passing, Some(true));
        assert!(!t.due(now));
        t.record(Err("boom".into()), now);
        assert_eq!(t.passing, Some(true), "one failure is below the threshold");
        t.record(Err("boom".into()), now);
        assert_eq!(t.passing, Some(false));
        assert_eq!(t.last_error.as_deref(), Some("boom"));
    }

    #[test]
    fn named_ports_resolve_from_the_container() {
        let container: Container = serde_json::from_value(serde_json::json!({
            "name": "c", "ports": [{"name": "http", "containerPort": 8080}]
        }))
        .unwrap();
        assert_eq!(
            port(&IntOrString::String("http".into()), &container),
            Ok(8080)
        );
        assert_eq!(port(&IntOrString::Int(81), &container), Ok(81));
        assert!(port(&IntOrString::String("grpc".into()), &container).is_err());
    }
}
