//! The app's optional NetworkPolicy: ingress to the MCP port only, from the peers the app lists
//! (anyone when it lists none), and always from the app's own pods and the operator's namespace.

use k8s_openapi::{
    api::networking::v1::{
        NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
        NetworkPolicySpec,
    },
    apimachinery::pkg::{apis::meta::v1::LabelSelector, util::intstr::IntOrString},
};

use super::{
    BuildError,
    meta::{owned_meta, selector_labels},
};
use crate::api::McpApp;

/// The label every namespace carries with its own name.
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// The policy when `spec.networkPolicy.enabled`, else `None`. The MCP port also carries the
/// companion's `/metrics` and health endpoints and the operator's handshakes, so it is the only
/// port admitted; `operator_namespace` is admitted with the listed peers, or no pod would pass
/// its handshake.
pub fn network_policy(
    app: &McpApp,
    operator_namespace: Option<&str>,
) -> Result<Option<NetworkPolicy>, BuildError> {
    let Some(settings) = app.spec.network_policy() else {
        return Ok(None);
    };
    let pods = LabelSelector {
        match_labels: Some(selector_labels(app)),
        match_expressions: None,
    };
    // Replicas reach each other (a session held by another pod is forwarded to it).
    let from = (!settings.from.is_empty()).then(|| {
        let own_pods = NetworkPolicyPeer {
            pod_selector: Some(pods.clone()),
            ..NetworkPolicyPeer::default()
        };
        let operator = operator_namespace.map(|ns| NetworkPolicyPeer {
            namespace_selector: Some(LabelSelector {
                match_labels: Some([(NAMESPACE_NAME_LABEL.to_owned(), ns.to_owned())].into()),
                match_expressions: None,
            }),
            ..NetworkPolicyPeer::default()
        });
        std::iter::once(own_pods)
            .chain(operator.filter(|peer| !settings.from.contains(peer)))
            .chain(settings.from.iter().cloned())
            .collect()
    });
    Ok(Some(NetworkPolicy {
        metadata: owned_meta(app, Default::default())?,
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(pods),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from,
                ports: Some(vec![NetworkPolicyPort {
                    port: Some(IntOrString::Int(app.spec.serving_port())),
                    protocol: Some("TCP".into()),
                    end_port: None,
                }]),
            }]),
            egress: None,
        }),
    }))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::api::{McpAppSpec, NetworkPolicySpec as Settings};
    use crate::build::fixtures::{self, app};

    fn with_policy(enabled: bool, from: Vec<NetworkPolicyPeer>) -> McpApp {
        app(McpAppSpec {
            port: 9000,
            network_policy: Some(Settings { enabled, from }),
            ..McpAppSpec::default()
        })
    }

    fn namespace_peer(name: &str) -> NetworkPolicyPeer {
        NetworkPolicyPeer {
            namespace_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([(
                    NAMESPACE_NAME_LABEL.to_owned(),
                    name.to_owned(),
                )])),
                match_expressions: None,
            }),
            ..NetworkPolicyPeer::default()
        }
    }

    fn only_rule(policy: &NetworkPolicy) -> &NetworkPolicyIngressRule {
        let rules = policy.spec.as_ref().unwrap().ingress.as_ref().unwrap();
        assert_eq!(rules.len(), 1, "one rule: the MCP port");
        &rules[0]
    }

    #[test]
    fn no_policy_unless_enabled() {
        assert_eq!(
            network_policy(&app(McpAppSpec::default()), None).unwrap(),
            None
        );
        assert_eq!(
            network_policy(&with_policy(false, vec![]), Some("mcp-system")).unwrap(),
            None
        );
    }

    #[test]
    fn behind_a_front_door_the_policy_admits_the_front_doors_port() {
        let mut app = with_policy(true, vec![]);
        app.spec.image = Some("example/weather:1".into());
        let policy = network_policy(&app, None).unwrap().unwrap();
        let ports = only_rule(&policy).ports.clone().unwrap();
        assert_eq!(
            ports[0].port,
            Some(IntOrString::Int(crate::api::FRONT_DOOR_PORT))
        );
    }

    #[test]
    fn enabled_policy_admits_anyone_to_the_mcp_port_and_nothing_else() {
        let policy = network_policy(&with_policy(true, vec![]), Some("mcp-system"))
            .unwrap()
            .expect("an enabled policy is built");
        assert_eq!(policy.metadata.name.as_deref(), Some(fixtures::NAME));
        let spec = policy.spec.as_ref().unwrap();
        assert_eq!(spec.policy_types, Some(vec!["Ingress".to_owned()]));
        let selected = spec.pod_selector.as_ref().unwrap().match_labels.as_ref();
        assert_eq!(
            selected,
            Some(&selector_labels(&app(McpAppSpec::default())))
        );
        let rule = only_rule(&policy);
        assert_eq!(rule.from, None, "no peers listed: any source");
        let ports = rule.ports.as_ref().unwrap();
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0].port, Some(IntOrString::Int(9000)));
        assert_eq!(spec.egress, None, "egress is left alone");
    }

    #[test]
    fn listed_peers_and_the_apps_own_pods_are_admitted() {
        let app = with_policy(true, vec![namespace_peer("tenants")]);
        let policy = network_policy(&app, None).unwrap().unwrap();
        let from = only_rule(&policy).from.as_ref().unwrap();
        assert_eq!(from.len(), 2);
        assert_eq!(
            from[0]
                .pod_selector
                .as_ref()
                .and_then(|s| s.match_labels.as_ref()),
            Some(&selector_labels(&app))
        );
        assert_eq!(from[0].namespace_selector, None, "own pods: own namespace");
        assert_eq!(from[1], namespace_peer("tenants"));
    }

    #[test]
    fn the_operators_namespace_is_admitted_with_listed_peers_once() {
        let app = with_policy(true, vec![namespace_peer("tenants")]);
        let policy = network_policy(&app, Some("mcp-system")).unwrap().unwrap();
        let from = only_rule(&policy).from.clone().unwrap();
        assert_eq!(from.len(), 3);
        assert_eq!(from[1], namespace_peer("mcp-system"));
        assert_eq!(from[2], namespace_peer("tenants"));

        // Listed already by the user: not twice.
        let app = with_policy(true, vec![namespace_peer("mcp-system")]);
        let policy = network_policy(&app, Some("mcp-system")).unwrap().unwrap();
        let from = only_rule(&policy).from.clone().unwrap();
        assert_eq!(from.len(), 2);
        assert_eq!(from[1], namespace_peer("mcp-system"));
    }
}
