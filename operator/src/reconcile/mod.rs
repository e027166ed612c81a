//! The McpApp controller: the only place that writes the objects an app owns.
//!
//! Each reconcile reads the app's inputs, renders the revision the spec asks for (pure, in
//! `build`), decides whether it may roll out or must be rolled back (`rollout::decide`), renders
//! the revision to apply (the same path for a kept good revision), converges every owned kind
//! (`owned`), books which revision passed (`rollout::book`, kept in `revisions`), and writes the
//! status when it differs. Owned objects are read from caches fed by the same watches that
//! trigger reconciles, so a reconcile at rest makes no API request that writes.
//!
//! The rollout gate ([`crate::gate`]) runs beside the controller on the same caches, and asks
//! for a reconcile when a handshake result changes an app's picture. The watches are wired in
//! [`run`].

mod apply;
mod backoff;
mod compact;
mod drift;
mod inputs;
mod owned;
mod render;
mod revisions;
mod rollout;
mod session_keys;
mod watches;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::networking::v1::IngressClass;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource, ResourceExt};

pub use apply::{APPLIED_HASH_ANNOTATION, Applied};
pub use compact::Compact;
pub use inputs::ClusterApis;
pub use watches::{Settings, run};

use crate::api::conditions::{DEGRADED, reasons};
use crate::api::{McpApp, McpAppStatus};
use crate::build::{BuildError, BuildInputs, FIELD_MANAGER};
use crate::contract::{self, Contract};
use crate::gate::Book;
use crate::metrics::{AppLabels, Metrics};
use crate::secrets::{ReadError, SecretReads};
use crate::status::{self, Observed, Problem, Reach};
use backoff::Backoff;
use owned::OwnedCaches;
use render::Rendered;

/// Reconcile every app this often even when nothing changed, to catch what no watch reports.
const RESYNC: Duration = Duration::from_secs(300);
/// A key rotation step is taken no sooner than this after another (the clock's granularity).
const KEY_STEP_MIN: Duration = Duration::from_secs(1);
/// Look again this soon when the caches have not synced yet.
const CACHE_SYNC_RETRY: Duration = Duration::from_millis(200);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Secret(#[from] ReadError),
    #[error(transparent)]
    SessionKeys(#[from] session_keys::Error),
}

impl Error {
    fn reason(&self) -> &'static str {
        match self {
            Error::Kube(_) => "KubeApi",
            Error::Build(_) => "Build",
            Error::Secret(_) => "SecretRead",
            Error::SessionKeys(_) => "SessionKeys",
        }
    }
}

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub metrics: Arc<Metrics>,
    pub recorder: Recorder,
    pub apis: ClusterApis,
    pub companion_image: String,
    pub operator_namespace: Option<String>,
    book: Book,
    /// The external probe's results.
    external: crate::external::Book,
    owned: OwnedCaches,
    ingress_classes: Store<IngressClass>,
    secrets: SecretReads,
    key_secrets: session_keys::KeySecrets,
    revisions: Store<ControllerRevision>,
    backoff: Backoff,
}

impl Context {
    /// Whether every cache has listed its objects once. (Waiting for that inside a reconcile
    /// would stall the controller that feeds the caches.)
    fn caches_ready(&self) -> bool {
        self.owned.ready()
            && watches::listed(&self.ingress_classes)
            && watches::listed(self.secrets.meta())
            && watches::listed(&self.revisions)
    }

    /// The builders' inputs for `app`, as the cluster is now.
    async fn inputs(&self, app: &McpApp) -> Result<BuildInputs, ReadError> {
        inputs::read(
            app,
            &self.ingress_classes,
            &self.secrets,
            &self.apis,
            &self.companion_image,
            self.operator_namespace.as_deref(),
        )
        .await
    }
}

async fn reconcile(app: Arc<McpApp>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile_started();
    if app.metadata.deletion_timestamp.is_some() {
        // Owner references let the garbage collector remove what the app owned.
        return Ok(Action::await_change());
    }
    // Before the caches have listed what exists, every owned object would look missing and be
    // re-applied: come back once they have.
    if !ctx.caches_ready() {
        return Ok(Action::requeue(CACHE_SYNC_RETRY));
    }
    let ns = app.namespace().unwrap_or_default();
    let name = app.name_any();
    let client = &ctx.client;

    // The key Secret first: the pods mount it, and cannot start without it.
    let next_key_step = match app.spec.session.front_door {
        true => {
            Some(session_keys::converge(client, &ctx.key_secrets, &app, Timestamp::now()).await?)
        }
        false => None,
    };

    let wanted = Rendered::new(&app, app.spec.clone(), ctx.inputs(&app).await?)?;
    let previous = app.status.clone().unwrap_or_default();
    let record = ctx.book.view(&ObjectRef::from_obj(app.as_ref()));
    let deployment = ctx.owned.deployment(&ns, &name);
    let live_revision = deployment
        .as_ref()
        .and_then(crate::build::revision)
        .map(|hash| revisions::name(&app, hash));
    let facts = rollout::Facts {
        wanted: &wanted.revision,
        stable: previous.stable_revision.as_deref(),
        failed: previous.failed_revision.as_deref(),
        auto_rollback: app.spec.rollout.auto_rollback,
        live: live_revision.as_deref(),
        deadline_exceeded: deployment
            .as_ref()
            .and_then(status::deadline_exceeded)
            .is_some(),
        threshold: app.spec.probe.threshold(),
    };
    let mut decision = rollout::decide(facts, &record, &wanted.hash);
    let (target, missing) = match decision.roll_back_to.as_deref() {
        None => (wanted.clone(), None),
        Some(stable) => match revisions::kept(&ctx.revisions, &app, stable) {
            // A rollback renders the kept revision with the inputs it ran with.
            Some(kept) => {
                let inputs = match kept.inputs {
                    // Where the operator runs is not part of a revision: its handshakes must
                    // get through the restored NetworkPolicy too.
                    Some(inputs) => BuildInputs {
                        operator_namespace: ctx.operator_namespace.clone(),
                        ..inputs
                    },
                    None => ctx.inputs(&app).await?,
                };
                let restored = Rendered::new(&app, kept.spec, inputs)?;
                if let Some(why) = decision.aborted_now.as_mut() {
                    why.message
                        .push_str(restored.caveat(&ctx.inputs(&restored.app).await?));
                }
                (restored, None)
            }
            None => (
                wanted.clone(),
                Some(stable_missing(&wanted.revision, stable)),
            ),
        },
    };
    if let Some(why) = &decision.aborted_now {
        tracing::warn!(app = %name, namespace = %ns, reason = why.reason, "{}", why.message);
    }

    // What the API server refuses (a webhook's denial, an invalid object) is the user's to fix:
    // reported in the status, retried with a growing delay. Anything else is retried as an error.
    let (not_served, not_applied) = match ctx
        .owned
        .converge(client, &ns, &name, &target.objects)
        .await
    {
        Ok(problem) => (problem, None),
        Err(kube::Error::Api(e)) if refused(&e) => (None, Some(apply_refused(&e))),
        Err(e) => return Err(e.into()),
    };

    // The applied revision passed once its Deployment settled with enough pods through the
    // handshake: keep it for later rollbacks.
    let deployment = ctx.owned.deployment(&ns, &name);
    let passed = deployment
        .as_ref()
        .filter(|d| crate::build::revision(d) == Some(target.hash.as_str()))
        .filter(|d| status::settled(&target.app, d))
        .map(|_| target.revision.as_str());
    let books = rollout::book(
        rollout::Applied {
            wanted: &wanted.revision,
            stable: previous.stable_revision.as_deref(),
            passed,
            degraded: status::condition(Some(&previous), DEGRADED),
        },
        &decision,
    );
    if let Some(passed) = &books.keep {
        let contract = record.contracts.get(&target.hash);
        revisions::keep(
            client,
            &ctx.revisions,
            &target.app,
            &target.inputs,
            (passed, &target.hash),
            contract.map(|c| c.as_ref()),
        )
        .await?;
        let before = previous
            .stable_revision
            .as_deref()
            .and_then(|stable| revisions::contract(&ctx.revisions, &app, stable));
        if let (Some(before), Some(after)) = (before, contract) {
            let accepted = &target.app.spec.rollout.accept_tool_changes;
            tool_changes(&ctx, &app, passed, &before, after, accepted).await;
        }
    } else if let Some(stable) = &books.stable {
        revisions::remember_contract(client, &ctx.revisions, &app, stable, &record.contracts)
            .await?;
    }

    let observed = Observed {
        deployment: deployment.as_ref(),
        url: Some(crate::build::app_url(&app)),
        problem: not_served.or(missing),
        not_applied: not_applied.clone(),
        aborted: books.aborted,
        handshake_failure: record
            .latest_failure(&target.hash)
            .map(|(pod, f)| format!("pod {pod}: {}", f.message)),
        stable_revision: books.stable,
        failed_revision: books.failed,
        server: record.server.clone(),
        last_probe: record.last_change.clone(),
        external: reach(&app, &ctx.external),
    };
    let new_status = status::compute(&app, &observed, Timestamp::now());
    if app.status.as_ref() != Some(&new_status) {
        write_status(&ctx, &app, &new_status).await?;
    }
    // Counted once the status says so: a reconcile that fails before retries the abort.
    if decision.aborted_now.is_some() {
        ctx.metrics
            .rollout_aborted(&AppLabels::of(&app), decision.roll_back_to.is_some());
    }
    let app_ref = ObjectRef::from_obj(app.as_ref());
    Ok(match not_applied {
        Some(_) => Action::requeue(ctx.backoff.failed(&app_ref)),
        None => {
            ctx.backoff.succeeded(&app_ref);
            // Back when a key rotation step is due, if that is sooner.
            Action::requeue(next_key_step.map_or(RESYNC, |due| due.clamp(KEY_STEP_MIN, RESYNC)))
        }
    })
}

/// What the external probe found for `app`, as far as it concerns the URL the spec asks for.
fn reach(app: &McpApp, book: &crate::external::Book) -> Reach {
    if app.spec.probe.external_enabled().is_none() {
        return Reach::Off;
    }
    match crate::external::target_url(app) {
        None => Reach::NoUrl,
        Some(url) => {
            let record = book
                .view(&ObjectRef::from_obj(app))
                .filter(|r| r.picture.url == url);
            Reach::Probing { url, record }
        }
    }
}

/// Whether the API server refused a request for what it contained, so that sending it again
/// unchanged cannot help: invalid (422), bad (400), forbidden (403, a webhook's or a policy's
/// denial).
fn refused(e: &kube::core::Status) -> bool {
    matches!(e.code, 400 | 403 | 422)
}

/// The status message for a refused apply: the API server's own words, bounded.
fn apply_refused(e: &kube::core::Status) -> String {
    format!(
        "the API server refused the objects of this spec, which is therefore not applied: {}",
        crate::text::clip(&e.message, MESSAGE_BYTES)
    )
}

/// Bytes of an outside message kept in a condition.
const MESSAGE_BYTES: usize = 1024;

/// The problem of a rollback whose target is no longer kept.
fn stable_missing(wanted: &str, stable: &str) -> Problem {
    Problem {
        reason: reasons::STABLE_REVISION_MISSING,
        message: format!(
            "revision {wanted} failed and should be rolled back to {stable}, but that revision is \
             no longer kept (its ControllerRevision was deleted), so {wanted} stays applied. \
             Change the spec to roll out a fixed version."
        ),
    }
}

fn error_policy(app: Arc<McpApp>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(app = %app.name_any(), namespace = ?app.namespace(), "reconcile failed: {error}");
    ctx.metrics.reconcile_failed(error.reason());
    Action::requeue(ctx.backoff.failed(&ObjectRef::from_obj(app.as_ref())))
}

/// Records an Event listing what the revision `passed` changed in the tools of the stable
/// revision before it: Normal for compatible changes, Warning when it broke the contract (with
/// `toolContract: Warn`, or for tools the spec accepted).
async fn tool_changes(
    ctx: &Context,
    app: &McpApp,
    passed: &str,
    before: &Contract,
    after: &Contract,
    accepted: &[String],
) {
    let changes = contract::diff::diff(before, after).accepting(accepted);
    let Some((warning, note)) = contract::diff::summary(passed, &changes, EVENT_NOTE_BYTES) else {
        return;
    };
    let event = Event {
        type_: if warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: reasons::TOOL_CONTRACT_CHANGED.into(),
        note: Some(note),
        action: "Rollout".into(),
        // The revision the changes belong to: it also keeps the Events of successive
        // rollouts apart (Events with the same reason and objects are counted as one series).
        secondary: Some(k8s_openapi::api::core::v1::ObjectReference {
            api_version: Some("apps/v1".into()),
            kind: Some("ControllerRevision".into()),
            name: Some(passed.to_owned()),
            namespace: app.namespace(),
            ..Default::default()
        }),
    };
    if let Err(e) = ctx.recorder.publish(&event, &app.object_ref(&())).await {
        tracing::warn!("recording event: {e}");
    }
}

/// An Event's note is at most 1 KiB.
const EVENT_NOTE_BYTES: usize = 1000;

/// Writes the status and records an Event for every condition that changed.
async fn write_status(ctx: &Context, app: &McpApp, new: &McpAppStatus) -> Result<(), Error> {
    let api: Api<McpApp> =
        Api::namespaced(ctx.client.clone(), &app.namespace().unwrap_or_default());
    let patch = serde_json::json!({
        "apiVersion": McpApp::api_version(&()),
        "kind": McpApp::kind(&()),
        "status": new,
    });
    api.patch_status(
        &app.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    for event in status::events(app.status.as_ref(), new) {
        if let Err(e) = ctx.recorder.publish(&event, &app.object_ref(&())).await {
            tracing::warn!("recording event: {e}");
        }
    }
    Ok(())
}
