//! The tool contract at the gate: a pod of a revision other than the stable one must list tools
//! that keep the stable revision's contract. With `Enforce`, a pod that breaks it fails its
//! handshake (reason `ToolContractBroken`, the changes in the message), so it never takes
//! traffic and its revision is aborted like one that fails the handshake; with `Warn` it passes
//! and the reconciler reports the changes when the revision becomes stable.

use k8s_openapi::api::apps::v1::ControllerRevision;
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};

use super::book::{Failure, MESSAGE_BYTES, Outcome};
use crate::api::conditions::reasons::TOOL_CONTRACT_BROKEN;
use crate::api::{McpApp, ToolContract};
use crate::build::{ContractSettings, REVISION_LABEL};
use crate::contract::{self, Contract, diff};
use crate::probe::Handshake;

/// The stable revision's contract, as kept with its ControllerRevision.
pub struct Stable {
    pub name: String,
    pub contract: Contract,
}

/// `handshake` with a pod of `pod_revision` held to the contract of `app`'s stable revision.
/// Pods of the stable revision itself, apps with no stable revision or none kept with a
/// contract, and `Off` pass without a comparison (and the stored contract is read only when
/// one is made).
pub fn check(
    revisions: &Store<ControllerRevision>,
    app: &McpApp,
    settings: &ContractSettings,
    pod_revision: Option<&str>,
    handshake: Handshake,
) -> Outcome {
    if settings.mode == ToolContract::Off {
        return Ok(handshake);
    }
    let kept = app
        .status
        .as_ref()
        .and_then(|s| s.stable_revision.clone())
        .zip(app.namespace())
        .and_then(|(name, ns)| Some((revisions.get(&ObjectRef::new(&name).within(&ns))?, name)));
    let Some((revision, name)) = kept else {
        return Ok(handshake);
    };
    if revision.labels().get(REVISION_LABEL).map(String::as_str) == pod_revision {
        return Ok(handshake);
    }
    match contract::kept_by(&revision) {
        Some(contract) => judge(&Stable { name, contract }, settings, handshake),
        None => Ok(handshake),
    }
}

/// `handshake` held to `stable`'s contract.
pub fn judge(stable: &Stable, settings: &ContractSettings, handshake: Handshake) -> Outcome {
    let changes = diff::diff(&stable.contract, &handshake.contract).accepting(&settings.accept);
    if changes.breaking.is_empty() || settings.mode != ToolContract::Enforce {
        return Ok(handshake);
    }
    let intro = format!("tools/list breaks the tool contract of {}: ", stable.name);
    let outro = "; list a tool in rollout.acceptToolChanges to accept its change";
    let room = MESSAGE_BYTES.saturating_sub(intro.len() + outro.len());
    Err(Failure {
        reason: TOOL_CONTRACT_BROKEN,
        message: format!("{intro}{}{outro}", diff::describe(&changes.breaking, room)),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::contract::Tool;

    fn contract(required: &[&str]) -> Contract {
        Contract::new([(
            "search".to_owned(),
            Tool {
                input_schema: Some(json!({"type": "object", "required": required})),
                ..Tool::default()
            },
        )])
    }

    fn listing(contract: Contract) -> Handshake {
        let mut h = Handshake::fixture("search", contract.len());
        h.contract_digest = contract.digest();
        h.contract = Arc::new(contract);
        h
    }

    fn stable() -> Stable {
        Stable {
            name: "demo-aaaa".into(),
            contract: contract(&["q"]),
        }
    }

    fn settings(mode: ToolContract, accept: &[&str]) -> ContractSettings {
        ContractSettings {
            mode,
            accept: accept.iter().map(|a| (*a).to_owned()).collect(),
        }
    }

    #[test]
    fn a_breaking_revision_fails_its_handshake_with_the_changes() {
        let broken = listing(contract(&["q", "limit"]));
        let failure = judge(&stable(), &settings(ToolContract::Enforce, &[]), broken).unwrap_err();
        assert_eq!(failure.reason, "ToolContractBroken");
        assert!(
            failure
                .message
                .contains("tool \"search\": argument \"limit\" is now required"),
            "{}",
            failure.message
        );
        assert!(failure.message.contains("demo-aaaa"), "{}", failure.message);
    }

    #[test]
    fn warn_accepted_and_compatible_changes_pass() {
        let stable = stable();
        let broken = || listing(contract(&["q", "limit"]));
        for settings in [
            settings(ToolContract::Warn, &[]),
            settings(ToolContract::Enforce, &["search"]),
        ] {
            assert!(judge(&stable, &settings, broken()).is_ok());
        }
        let wider = listing(contract(&[]));
        assert!(judge(&stable, &settings(ToolContract::Enforce, &[]), wider).is_ok());
    }

    /// A revision store holding the stable revision `demo-aaaa` (pods labelled `aaaa`), with
    /// `contract` in its annotation, and an app whose status names it.
    fn kept(contract: Option<&Contract>) -> (Store<ControllerRevision>, McpApp) {
        let mut revision = ControllerRevision::default();
        revision.metadata.name = Some("demo-aaaa".into());
        revision.metadata.namespace = Some(crate::build::fixtures::NAMESPACE.into());
        revision.metadata.labels = Some([(REVISION_LABEL.to_owned(), "aaaa".to_owned())].into());
        revision.metadata.annotations = contract
            .map(|c| [(contract::REVISION_ANNOTATION.to_owned(), c.canonical_json())].into());
        let (store, mut writer) = kube::runtime::reflector::store();
        writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(revision));
        let mut app = crate::build::fixtures::app(Default::default());
        app.status = Some(crate::api::McpAppStatus {
            stable_revision: Some("demo-aaaa".into()),
            ..Default::default()
        });
        (store, app)
    }

    #[test]
    fn the_gate_compares_only_new_revisions_with_a_kept_contract() {
        let enforce = settings(ToolContract::Enforce, &[]);
        let broken = || listing(contract(&["q", "limit"]));
        let (store, app) = kept(Some(&contract(&["q"])));
        let failed = check(&store, &app, &enforce, Some("bbbb"), broken());
        assert_eq!(failed.unwrap_err().reason, "ToolContractBroken");
        // The stable revision's own pods, `Off`, and a revision kept without a contract pass.
        assert!(check(&store, &app, &enforce, Some("aaaa"), broken()).is_ok());
        let off = settings(ToolContract::Off, &[]);
        assert!(check(&store, &app, &off, Some("bbbb"), broken()).is_ok());
        let (bare, app) = kept(None);
        assert!(check(&bare, &app, &enforce, Some("bbbb"), broken()).is_ok());
        // No stable revision yet: the first rollout is not compared.
        let mut first = app.clone();
        first.status = None;
        assert!(check(&store, &first, &enforce, Some("bbbb"), broken()).is_ok());
    }

    #[test]
    fn the_message_stays_within_a_condition_message() {
        let many = Contract::new((0..500).map(|i| (format!("tool-{i}"), Tool::default())));
        let stable = Stable {
            contract: many,
            ..stable()
        };
        let failure = judge(
            &stable,
            &settings(ToolContract::Enforce, &[]),
            listing(Contract::default()),
        )
        .unwrap_err();
        assert!(
            failure.message.len() <= MESSAGE_BYTES,
            "{}",
            failure.message
        );
        assert!(failure.message.contains("more"), "{}", failure.message);
    }
}
