//! The external probe: for every app with `spec.probe.external` on, an MCP handshake through
//! its public URL (`status.url`, or `probe.external.url`) every `periodSeconds`, TLS verified,
//! the way a client outside the cluster connects. The result becomes the `Reachable` condition
//! and `status.external`, which only the reconciler writes: this task records results in the
//! [`Book`] and asks for a reconcile when an app's picture changed, so nothing is written while
//! nothing changes.
//!
//! One task owns the schedule: it looks at the app cache every second, starts the handshakes
//! that are due (each app's own period, jittered by a tenth either way so apps started together
//! spread out) as far as `concurrency` allows, longest-waiting first, at most one per app at a
//! time. The same tick keeps the per-app metric series: set for the apps that exist, removed
//! when an app goes (or turns external probing off), so their number stays that of the apps.
//!
//! - [`connect`]: the TLS-verifying client of one handshake.
//! - [`verdict`]: what a failure means for the condition (pure).
//! - [`book`]: the shared results.

pub mod book;
pub mod connect;
pub mod verdict;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use reqwest::Url;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

pub use book::{Book, Picture, Record};
pub use connect::Connect;
use verdict::{Verdict, reasons};

use crate::api::conditions::READY;
use crate::api::{ExternalProbeSpec, McpApp, Transport};
use crate::build::ProbeSettings;
use crate::metrics::{AppLabels, Metrics};
use crate::oauth::Credentials;
use crate::probe::{ProbeError, Prober, Target};
use crate::secrets::SecretReads;

/// How often the schedule looks for due handshakes.
const TICK: Duration = Duration::from_secs(1);

/// The URL the external probe of `app` uses: `probe.external.url`, else the public URL of its
/// Ingress or route; None when it has neither.
pub fn target_url(app: &McpApp) -> Option<String> {
    let external = app.spec.probe.external.as_ref()?;
    external
        .url
        .clone()
        .or_else(|| crate::build::external_url(app))
}

/// What the external probe reads.
pub struct External {
    pub apps: Store<McpApp>,
    pub secrets: SecretReads,
    /// The handshakes' tokens, shared with the gate.
    pub credentials: Credentials,
    pub book: Book,
    pub metrics: Arc<Metrics>,
    pub connect: Connect,
    /// Handshakes in flight at most.
    pub concurrency: usize,
}

/// The schedule's memory of one app.
struct Slot {
    url: String,
    due: Instant,
    in_flight: bool,
    probes: u64,
}

/// One finished handshake.
struct Done {
    app: ObjectRef<McpApp>,
    picture: Picture,
    latency: Duration,
}

impl External {
    /// Runs until `stop`; sends the apps whose picture changed to `reconcile`.
    pub async fn run(
        self,
        reconcile: mpsc::UnboundedSender<ObjectRef<McpApp>>,
        stop: CancellationToken,
    ) {
        let this = Arc::new(self);
        let limit = Arc::new(Semaphore::new(this.concurrency.max(1)));
        let (tx, mut rx) = mpsc::unbounded_channel::<Done>();
        let mut slots: HashMap<ObjectRef<McpApp>, Slot> = HashMap::new();
        let mut labelled: HashSet<AppLabels> = HashSet::new();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => this.start_due(&mut slots, &mut labelled, &limit, &tx),
                Some(done) = rx.recv() => {
                    if let Some(slot) = slots.get_mut(&done.app) {
                        slot.in_flight = false;
                        // A result for a URL the app no longer uses is stale.
                        if slot.url == done.picture.url
                            && this.book.record(&done.app, done.picture, Timestamp::now(), done.latency)
                        {
                            let _ = reconcile.send(done.app);
                        }
                    }
                }
            }
        }
    }

    /// One tick: per-app metric series, then the handshakes that are due, longest-waiting first.
    fn start_due(
        self: &Arc<Self>,
        slots: &mut HashMap<ObjectRef<McpApp>, Slot>,
        labelled: &mut HashSet<AppLabels>,
        limit: &Arc<Semaphore>,
        tx: &mpsc::UnboundedSender<Done>,
    ) {
        let now = Instant::now();
        let apps = self.apps.state();
        let mut present = HashSet::with_capacity(apps.len());
        let mut probed = HashSet::new();
        let mut due = Vec::new();
        for app in &apps {
            let labels = AppLabels::of(app);
            self.metrics.app_present(
                &labels,
                crate::status::condition(app.status.as_ref(), READY)
                    .is_some_and(|c| c.status == "True"),
            );
            present.insert(labels.clone());
            let key = ObjectRef::from_obj(app.as_ref());
            let Some(spec) = app.spec.probe.external_enabled() else {
                continue;
            };
            probed.insert(key.clone());
            let Some(url) = target_url(app) else {
                // Nothing to probe: the condition says why; the series says not reachable.
                slots.remove(&key);
                self.metrics.app_reachable(&labels, false);
                continue;
            };
            let slot = slots.entry(key.clone()).or_insert_with(|| Slot {
                url: url.clone(),
                due: now,
                in_flight: false,
                probes: 0,
            });
            if slot.url != url {
                *slot = Slot {
                    url,
                    due: now,
                    in_flight: slot.in_flight,
                    probes: 0,
                };
            }
            if !slot.in_flight && slot.due <= now {
                due.push((slot.due, key, app.clone(), spec.clone()));
            }
        }
        // Apps gone or no longer probed: their schedule, record and series go too.
        slots.retain(|key, _| probed.contains(key));
        for key in self.book_apps_not_in(&probed) {
            self.book.forget(&key);
        }
        for labels in labelled.difference(&present) {
            self.metrics.forget_app(labels);
        }
        for app in &apps {
            if app.spec.probe.external_enabled().is_none() {
                self.metrics.forget_external(&AppLabels::of(app));
            }
        }
        *labelled = present;

        due.sort_by_key(|(at, ..)| *at);
        for (_, key, app, spec) in due {
            let Ok(permit) = limit.clone().try_acquire_owned() else {
                break;
            };
            let Some(slot) = slots.get_mut(&key) else {
                continue;
            };
            slot.in_flight = true;
            slot.probes += 1;
            let uid = app.uid().unwrap_or_default();
            slot.due = now + crate::gate::schedule::next_delay(spec.period(), &uid, slot.probes);
            let (this, tx, url) = (self.clone(), tx.clone(), slot.url.clone());
            tokio::spawn(async move {
                let started = Instant::now();
                let picture = this.handshake(&app, &spec, url).await;
                drop(permit);
                let latency = started.elapsed();
                this.metrics.external_probed(
                    &AppLabels::of(&app),
                    picture.verdict.reason,
                    latency.as_secs_f64(),
                    certificate_left(&picture),
                );
                let _ = tx.send(Done {
                    app: key,
                    picture,
                    latency,
                });
            });
        }
    }

    fn book_apps_not_in(&self, probed: &HashSet<ObjectRef<McpApp>>) -> Vec<ObjectRef<McpApp>> {
        self.book
            .apps()
            .into_iter()
            .filter(|a| !probed.contains(a))
            .collect()
    }

    /// One handshake with `url`, bounded by the spec's timeout whatever the server does.
    async fn handshake(&self, app: &McpApp, spec: &ExternalProbeSpec, url: String) -> Picture {
        let (verdict, peer) = match self.exchange(app, spec, &url).await {
            Ok(peer) => (
                Verdict::new(
                    reasons::HANDSHAKE_SUCCEEDED,
                    format!("an MCP handshake through {url} succeeded"),
                ),
                peer,
            ),
            Err((verdict, peer)) => (verdict, peer),
        };
        let not_after = peer.and_then(|p| p.not_after);
        let expires_soon = not_after.is_some_and(|t| {
            let left = t.as_second().saturating_sub(Timestamp::now().as_second());
            left < i64::try_from(spec.warning().as_secs()).unwrap_or(i64::MAX)
        });
        Picture {
            url,
            verdict,
            not_after,
            expires_soon,
        }
    }

    /// The handshake; the server's certificate on success, the verdict (and the certificate,
    /// if one was seen) on failure.
    async fn exchange(
        &self,
        app: &McpApp,
        spec: &ExternalProbeSpec,
        url: &str,
    ) -> Result<Option<connect::Peer>, (Verdict, Option<connect::Peer>)> {
        let fail = |reason, message: String| (Verdict::new(reason, message), None);
        let parsed = Url::parse(url).map_err(|e| {
            fail(
                crate::api::conditions::reasons::NO_URL,
                format!("{url} is not a URL the probe can use: {e}"),
            )
        })?;
        let host = parsed.host_str().unwrap_or_default().to_owned();
        let bundle = self
            .ca_bundle(app, spec)
            .await
            .map_err(|m| fail(reasons::CA_BUNDLE_INVALID, m))?;
        // The probe's bearer token crosses the network only inside TLS.
        let bearer_token = match parsed.scheme() {
            "https" => self
                .credentials
                .bearer(app, &ProbeSettings::of(app))
                .await
                .map_err(|f| {
                    let reason = if f.reason == reasons::TOKEN_REQUEST_FAILED {
                        reasons::TOKEN_REQUEST_FAILED
                    } else {
                        reasons::SECRET_UNREADABLE
                    };
                    fail(reason, f.message)
                })?,
            _ => None,
        };
        let (client, seen) = self
            .connect
            .client(bundle.as_deref())
            .map_err(|m| fail(reasons::CA_BUNDLE_INVALID, m))?;
        let legacy_sse = app.spec.transport == Transport::Sse;
        let target = Target {
            url: url.to_owned(),
            legacy_sse,
            protocol: app.spec.probe.protocol_version,
            // Which tools the server lists is the pods' probe's business; this one asks whether
            // the way in works.
            required_tools: Vec::new(),
            bearer_token,
            timeout: spec.timeout(),
        };
        let result =
            match tokio::time::timeout(spec.timeout(), Prober::over(client).handshake(&target))
                .await
            {
                Ok(result) => result,
                Err(_) => Err(ProbeError::Timeout(spec.timeout())),
            };
        let seen = seen
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|p| p.into_inner().clone());
        match result {
            Ok(_) => Ok(seen.peer),
            Err(e) => Err((verdict::failure(&e, &seen, url, &host), seen.peer)),
        }
    }

    /// The app's CA bundle, when it names one.
    async fn ca_bundle(
        &self,
        app: &McpApp,
        spec: &ExternalProbeSpec,
    ) -> Result<Option<Vec<u8>>, String> {
        let Some(r) = &spec.ca_bundle_secret_ref else {
            return Ok(None);
        };
        let ns = app.namespace().unwrap_or_default();
        let what = format!("probe.external.caBundleSecretRef: Secret {ns}/{}", r.name);
        let data = self
            .secrets
            .data(&ns, &r.name)
            .await
            .map_err(|e| format!("probe.external.caBundleSecretRef: {e}"))?
            .ok_or_else(|| format!("{what} not found"))?;
        let value = data
            .get(&r.key)
            .ok_or_else(|| format!("{what} has no key {}", r.key))?;
        if value.0.len() > connect::MAX_CA_BUNDLE_BYTES {
            return Err(format!(
                "{what}: key {} is larger than {} bytes",
                r.key,
                connect::MAX_CA_BUNDLE_BYTES
            ));
        }
        Ok(Some(value.0.clone()))
    }
}

/// Seconds until the certificate expires (negative once it has), and whether that is soon.
fn certificate_left(picture: &Picture) -> Option<(i64, bool)> {
    let not_after = picture.not_after?;
    Some((
        not_after.as_second() - Timestamp::now().as_second(),
        picture.expires_soon,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::McpAppSpec;
    use crate::build::fixtures::{app, app_with_ingress};

    #[test]
    fn the_target_is_the_override_else_the_public_url_else_none() {
        let mut exposed = app_with_ingress(Some("nginx"));
        assert_eq!(target_url(&exposed), None, "external probing is off");
        exposed.spec.probe.external = Some(ExternalProbeSpec::default());
        assert_eq!(
            target_url(&exposed).as_deref(),
            Some("http://mcp.example.com/mcp")
        );
        exposed.spec.probe.external.as_mut().unwrap().url =
            Some("https://elsewhere.example/x".into());
        assert_eq!(
            target_url(&exposed).as_deref(),
            Some("https://elsewhere.example/x")
        );
        let mut internal = app(McpAppSpec::default());
        internal.spec.probe.external = Some(ExternalProbeSpec::default());
        assert_eq!(target_url(&internal), None, "a Service URL is not public");
    }
}
