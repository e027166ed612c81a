//! The app's Deployment: pods gated on the MCP handshake, hardened to Pod Security "restricted",
//! rolled out without ever dropping below the serving capacity.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::{
        apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment},
        core::v1::{
            Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, HTTPGetAction,
            Lifecycle, LifecycleHandler, PodReadinessGate, PodSecurityContext, PodSpec,
            PodTemplateSpec, Probe, SeccompProfile, SecurityContext, SleepAction, TCPSocketAction,
            Volume, VolumeMount,
        },
    },
    apimachinery::pkg::{
        apis::meta::v1::{LabelSelector, ObjectMeta},
        util::intstr::IntOrString,
    },
};

use super::{
    BuildError, BuildInputs, bridge, front_door,
    meta::{labels, owned_meta, selector_labels},
    oauth,
    probe_settings::{PROBE_SETTINGS_ANNOTATION, ProbeSettings},
    secrets::secret_wiring,
};
use crate::api::{FRONT_DOOR_PORT, HANDSHAKE_CONDITION, McpApp, Transport};

/// Name of the container that runs the MCP server.
pub const MCP_CONTAINER: &str = "mcp";
/// Pod template annotation holding the Secrets' checksum: a change rolls the pods.
pub const SECRETS_CHECKSUM_ANNOTATION: &str = "mcp-operator.dev/secrets-checksum";
/// Pod template label naming the app revision: a hash of the rest of the template, so any change
/// that rolls the pods is a new revision, and the rollout gate can tell the pods of a new
/// revision from the old ones.
pub const REVISION_LABEL: &str = "mcp-operator.dev/revision";
/// Seconds a pod gets after its drain delay to shut down on SIGTERM.
pub const SHUTDOWN_GRACE_SECONDS: i64 = 15;

/// The non-root user and group pods run as, whatever the image's USER: many MCP server images
/// (node, python) default to root, which Pod Security "restricted" refuses.
const RUN_AS_ID: i64 = 65532;
const TMP_VOLUME: &str = "tmp";
/// The port the Service targets: the companion's wherever it serves.
const HTTP_PORT: &str = "http";
/// An own image's port behind a front-door container.
const UPSTREAM_PORT: &str = "upstream";

/// The app's Deployment. With `spec.autoscaling` it carries no `replicas`, so a server-side
/// apply never takes the count back from the HorizontalPodAutoscaler.
pub fn deployment(app: &McpApp, inputs: &BuildInputs) -> Result<Deployment, BuildError> {
    let spec = &app.spec;
    Ok(Deployment {
        metadata: owned_meta(app, BTreeMap::new())?,
        spec: DeploymentSpec {
            replicas: match spec.autoscaling {
                Some(_) => None,
                None => Some(spec.fixed_replicas()),
            },
            selector: LabelSelector {
                match_labels: Some(selector_labels(app)),
                match_expressions: None,
            },
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                // Old pods keep serving until new ones pass their handshake.
                rolling_update: Some(RollingUpdateDeployment {
                    max_unavailable: Some(IntOrString::Int(0)),
                    max_surge: Some(IntOrString::String("25%".into())),
                }),
            }),
            progress_deadline_seconds: Some(spec.rollout.progress_deadline_seconds),
            template: with_revision(pod_template(app, inputs)),
            ..DeploymentSpec::default()
        },
        status: None,
    })
}

/// The revision of the pods `deployment` runs.
pub fn revision(deployment: &Deployment) -> Option<&str> {
    deployment
        .spec
        .template
        .metadata
        .as_ref()?
        .labels
        .as_ref()?
        .get(REVISION_LABEL)
        .map(String::as_str)
}

/// `template` labelled with its revision: the first 10 hex digits of the SHA-256 of its JSON.
fn with_revision(mut template: PodTemplateSpec) -> PodTemplateSpec {
    use sha2::{Digest, Sha256};
    // Serializing derived structs of BTreeMaps is deterministic.
    let json = serde_json::to_vec(&template).unwrap_or_default();
    let hash = Sha256::digest(&json);
    let revision: String = hash.iter().take(5).map(|b| format!("{b:02x}")).collect();
    template
        .metadata
        .get_or_insert_with(Default::default)
        .labels
        .get_or_insert_with(Default::default)
        .insert(REVISION_LABEL.into(), revision);
    template
}

fn pod_template(app: &McpApp, inputs: &BuildInputs) -> PodTemplateSpec {
    let spec = &app.spec;
    let mut pod_labels = spec.pod_labels.clone();
    pod_labels.extend(labels(app));
    let mut annotations = spec.pod_annotations.clone();
    annotations.insert(
        "kubectl.kubernetes.io/default-container".into(),
        MCP_CONTAINER.into(),
    );
    if let (Some(secrets), Some(checksum)) = (&spec.secrets, &inputs.secrets_checksum)
        && secrets.restart_on_change
    {
        annotations.insert(SECRETS_CHECKSUM_ANNOTATION.into(), checksum.clone());
    }
    // The probe settings are part of the revision: the gate probes each pod with its own.
    annotations.insert(
        PROBE_SETTINGS_ANNOTATION.into(),
        ProbeSettings::of(app).annotation(),
    );

    let secrets = secret_wiring(spec.secrets.as_ref());
    let stdio = spec.transport == Transport::Stdio;
    let mut volumes = vec![Volume {
        name: TMP_VOLUME.into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }];
    let mut init_containers = Vec::new();
    if stdio {
        volumes.push(bridge::volume());
        init_containers.push(bridge::install_container(
            &inputs.companion_image,
            container_security(),
        ));
    }
    if spec.session.front_door {
        volumes.push(front_door::keys_volume(app));
    }
    volumes.extend(oauth::ca_volume(app));
    volumes.extend(secrets.volumes.iter().cloned());
    let mut containers = vec![mcp_container(app, inputs, &secrets)];
    if spec.runs_front_door_container() {
        containers.push(front_door_container(app, inputs));
    }

    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(pod_labels),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            init_containers: (!init_containers.is_empty()).then_some(init_containers),
            containers,
            volumes: Some(volumes),
            // The pod takes traffic only after the operator's MCP handshake succeeded.
            readiness_gates: Some(vec![PodReadinessGate {
                condition_type: HANDSHAKE_CONDITION.into(),
            }]),
            termination_grace_period_seconds: Some(
                i64::from(spec.rollout.drain_seconds) + SHUTDOWN_GRACE_SECONDS,
            ),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(RUN_AS_ID),
                run_as_group: Some(RUN_AS_ID),
                fs_group: Some(RUN_AS_ID),
                seccomp_profile: Some(runtime_default_seccomp()),
                ..PodSecurityContext::default()
            }),
            service_account_name: spec.service_account_name.clone(),
            // A token is a credential for the API server: only for apps that asked for one.
            automount_service_account_token: Some(spec.mounts_service_account_token()),
            image_pull_secrets: (!spec.image_pull_secrets.is_empty())
                .then(|| spec.image_pull_secrets.clone()),
            node_selector: (!spec.node_selector.is_empty()).then(|| spec.node_selector.clone()),
            tolerations: (!spec.tolerations.is_empty()).then(|| spec.tolerations.clone()),
            affinity: spec.affinity.clone(),
            ..PodSpec::default()
        }),
    }
}

fn mcp_container(
    app: &McpApp,
    inputs: &BuildInputs,
    secrets: &super::secrets::SecretWiring,
) -> Container {
    let spec = &app.spec;
    let stdio = spec.transport == Transport::Stdio;
    // The companion serves when it bridges stdio or when no image is given.
    let companion_serves = stdio || spec.image.is_none();

    let (command, args) = if stdio {
        (Some(bridge::bridged_command(app)), spec.args.clone())
    } else {
        (
            (!spec.command.is_empty()).then(|| spec.command.clone()),
            spec.args.clone(),
        )
    };

    let routes_here = companion_serves && spec.session.front_door;
    let mut ours = Vec::new();
    if companion_serves {
        ours.extend(bridge::companion_env(app, spec.port));
        ours.extend(oauth::env(app));
    }
    if routes_here {
        ours.extend(front_door::routing_env());
    }
    if stdio {
        // npx, uvx and pip need a writable home for their caches; the root filesystem is not.
        ours.push(EnvVar {
            name: "HOME".into(),
            value: Some("/tmp".into()),
            value_from: None,
        });
    }
    let env = user_env_wins(ours, &spec.env, &secrets.env);

    let mut mounts = vec![VolumeMount {
        name: TMP_VOLUME.into(),
        mount_path: "/tmp".into(),
        ..VolumeMount::default()
    }];
    if stdio {
        mounts.push(bridge::app_mount());
    }
    if routes_here {
        mounts.push(front_door::keys_mount());
    }
    if companion_serves {
        mounts.extend(oauth::ca_mount(app));
    }
    mounts.extend(secrets.mounts.iter().cloned());

    // Behind a front door the image's port is only the front door's upstream.
    let port_name = if spec.runs_front_door_container() {
        UPSTREAM_PORT
    } else {
        HTTP_PORT
    };
    let (readiness_probe, liveness_probe) = if companion_serves {
        companion_probes()
    } else {
        (Some(accepts_connections(port_name)), None)
    };

    Container {
        name: MCP_CONTAINER.into(),
        image: Some(
            spec.image
                .clone()
                .unwrap_or_else(|| inputs.companion_image.clone()),
        ),
        image_pull_policy: spec.image_pull_policy.map(|p| p.as_str().to_owned()),
        command,
        args: (!args.is_empty()).then_some(args),
        env: (!env.is_empty()).then_some(env),
        env_from: (!secrets.env_from.is_empty()).then(|| secrets.env_from.clone()),
        ports: Some(vec![container_port(port_name, spec.port)]),
        resources: spec.resources.clone(),
        volume_mounts: Some(mounts),
        readiness_probe,
        liveness_probe,
        lifecycle: drain(app),
        security_context: Some(container_security()),
        ..Container::default()
    }
}

/// The companion in front of an own image: `mcp-server proxy` to it on loopback, serving with
/// session routing on the front door's port, hardened and drained like the server.
fn front_door_container(app: &McpApp, inputs: &BuildInputs) -> Container {
    let mut env = bridge::companion_env(app, FRONT_DOOR_PORT);
    env.extend(front_door::routing_env());
    env.extend(oauth::env(app));
    let mut mounts = vec![front_door::keys_mount()];
    mounts.extend(oauth::ca_mount(app));
    // Not the proxy's /readyz, which waits for the image's handshake: that is the gate's to
    // judge, so a broken image fails its handshake (and is rolled back) instead of never
    // becoming ready.
    let (_, liveness_probe) = companion_probes();
    let readiness_probe = Some(accepts_connections(HTTP_PORT));
    Container {
        name: front_door::FRONT_DOOR_CONTAINER.into(),
        image: Some(inputs.companion_image.clone()),
        command: Some(vec![bridge::COMPANION_BINARY.into()]),
        args: Some(front_door::proxy_args(app)),
        env: Some(env),
        ports: Some(vec![container_port(HTTP_PORT, FRONT_DOOR_PORT)]),
        volume_mounts: Some(mounts),
        readiness_probe,
        liveness_probe,
        lifecycle: drain(app),
        security_context: Some(container_security()),
        ..Container::default()
    }
}

fn container_port(name: &str, port: i32) -> ContainerPort {
    ContainerPort {
        name: Some(name.into()),
        container_port: port,
        protocol: Some("TCP".into()),
        ..ContainerPort::default()
    }
}

/// Any HTTP server accepts connections once it is up; whether it speaks MCP is the handshake's
/// job.
fn accepts_connections(port_name: &str) -> Probe {
    Probe {
        tcp_socket: Some(TCPSocketAction {
            port: IntOrString::String(port_name.into()),
            host: None,
        }),
        period_seconds: Some(5),
        ..Probe::default()
    }
}

/// The companion's health endpoints: readiness, liveness.
fn companion_probes() -> (Option<Probe>, Option<Probe>) {
    (
        Some(http_probe("/readyz", 5)),
        Some(http_probe("/healthz", 10)),
    )
}

/// Endpoints drop the pod at once; open SSE streams get `drainSeconds` before SIGTERM.
fn drain(app: &McpApp) -> Option<Lifecycle> {
    let seconds = app.spec.rollout.drain_seconds;
    (seconds > 0).then(|| Lifecycle {
        pre_stop: Some(LifecycleHandler {
            sleep: Some(SleepAction {
                seconds: i64::from(seconds),
            }),
            ..LifecycleHandler::default()
        }),
        ..Lifecycle::default()
    })
}

/// The operator's variables, minus any the user sets, then the user's, then Secret variables.
fn user_env_wins(ours: Vec<EnvVar>, user: &[EnvVar], from_secrets: &[EnvVar]) -> Vec<EnvVar> {
    let user_names: Vec<&str> = user
        .iter()
        .chain(from_secrets)
        .map(|v| v.name.as_str())
        .collect();
    ours.into_iter()
        .filter(|v| !user_names.contains(&v.name.as_str()))
        .chain(user.iter().cloned())
        .chain(from_secrets.iter().cloned())
        .collect()
}

fn http_probe(path: &str, period_seconds: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String(HTTP_PORT.into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period_seconds),
        ..Probe::default()
    }
}

fn runtime_default_seccomp() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".into(),
        localhost_profile: None,
    }
}

/// Pod Security "restricted" for every container, plus a read-only root filesystem.
fn container_security() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            add: None,
        }),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        seccomp_profile: Some(runtime_default_seccomp()),
        ..SecurityContext::default()
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{EnvVarSource, PodSpec};

    use super::*;
    use crate::api::examples::stdio_spec;
    use crate::api::{
        AutoscalingSpec, ImagePullPolicy, McpAppSpec, SecretEnvFrom, SecretEnvVar, SecretFileItem,
        SecretFiles, SecretsSpec,
    };
    use crate::build::fixtures::{self, app};

    fn build(spec: McpAppSpec) -> Deployment {
        deployment(&app(spec), &BuildInputs::default()).expect("a stored app builds")
    }

    fn pod(deployment: &Deployment) -> &PodSpec {
        deployment
            .spec
            .template
            .spec
            .as_ref()
            .expect("a pod template has a spec")
    }

    fn container(deployment: &Deployment) -> &Container {
        let container = &pod(deployment).containers[0];
        assert_eq!(container.name, MCP_CONTAINER);
        container
    }

    /// Whether the pod has a volume of the Secret `name`.
    fn has_secret_volume(deployment: &Deployment, name: &str) -> bool {
        pod(deployment)
            .volumes
            .iter()
            .flatten()
            .any(|v| v.secret.as_ref().and_then(|s| s.secret_name.as_deref()) == Some(name))
    }

    fn env_value<'a>(container: &'a Container, name: &str) -> Option<&'a str> {
        container
            .env
            .iter()
            .flatten()
            .find(|v| v.name == name)
            .and_then(|v| v.value.as_deref())
    }

    fn readiness_path(container: &Container) -> Option<&str> {
        container
            .readiness_probe
            .as_ref()?
            .http_get
            .as_ref()?
            .path
            .as_deref()
    }

    fn stdio() -> McpAppSpec {
        McpAppSpec {
            args: vec!["--verbose".into()],
            ..stdio_spec()
        }
    }

    #[test]
    fn every_pod_waits_for_the_mcp_handshake_gate() {
        let gates = pod(&build(McpAppSpec::default()))
            .readiness_gates
            .clone()
            .unwrap();
        assert_eq!(
            gates,
            [PodReadinessGate {
                condition_type: "mcp-operator.dev/mcp-handshake".into()
            }]
        );
    }

    #[test]
    fn rollouts_never_take_a_serving_pod_away_first() {
        let deployment = build(McpAppSpec::default());
        let strategy = deployment.spec.strategy.unwrap();
        assert_eq!(strategy.type_.as_deref(), Some("RollingUpdate"));
        let rolling = strategy.rolling_update.unwrap();
        assert_eq!(rolling.max_unavailable, Some(IntOrString::Int(0)));
        assert_eq!(deployment.spec.progress_deadline_seconds, Some(600));
    }

    #[test]
    fn deployment_is_named_labelled_and_owned_by_the_app() {
        let deployment = build(McpAppSpec::default());
        let meta = &deployment.metadata;
        assert_eq!(meta.name.as_deref(), Some(fixtures::NAME));
        assert_eq!(meta.namespace.as_deref(), Some(fixtures::NAMESPACE));
        let labels = meta.labels.as_ref().unwrap();
        assert_eq!(labels["app.kubernetes.io/name"], "mcp-server");
        assert_eq!(labels["app.kubernetes.io/instance"], fixtures::NAME);
        assert_eq!(labels["app.kubernetes.io/managed-by"], "mcp-operator");
        let owner = &meta.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
            ("McpApp", fixtures::NAME, fixtures::UID)
        );
        assert_eq!(owner.api_version, "mcp-operator.dev/v1alpha1");
        assert_eq!(owner.controller, Some(true));
        let selector = deployment.spec.selector.match_labels.clone().unwrap();
        let template_labels = deployment
            .spec
            .template
            .metadata
            .as_ref()
            .unwrap()
            .labels
            .clone()
            .unwrap();
        assert!(
            selector
                .iter()
                .all(|(k, v)| template_labels.get(k) == Some(v))
        );
    }

    #[test]
    fn app_read_without_uid_or_namespace_is_refused() {
        let mut app = app(McpAppSpec::default());
        app.metadata.uid = None;
        assert_eq!(
            deployment(&app, &BuildInputs::default()),
            Err(BuildError::MissingMetadata("uid"))
        );
        app.metadata.namespace = None;
        assert_eq!(
            deployment(&app, &BuildInputs::default()),
            Err(BuildError::MissingMetadata("namespace"))
        );
    }

    #[test]
    fn replicas_default_to_one_and_follow_the_spec() {
        assert_eq!(build(McpAppSpec::default()).spec.replicas, Some(1));
        assert_eq!(
            build(McpAppSpec {
                replicas: Some(4),
                ..McpAppSpec::default()
            })
            .spec
            .replicas,
            Some(4)
        );
    }

    #[test]
    fn autoscaled_deployment_leaves_replicas_to_the_hpa() {
        let deployment = build(McpAppSpec {
            autoscaling: Some(AutoscalingSpec::between(2, 5)),
            ..McpAppSpec::default()
        });
        assert_eq!(deployment.spec.replicas, None);
        let json = serde_json::to_value(&deployment).unwrap();
        assert!(
            json["spec"].get("replicas").is_none(),
            "an apply must not carry replicas"
        );
    }

    #[test]
    fn pods_meet_pod_security_restricted_with_a_read_only_root_and_writable_tmp() {
        let deployment = build(McpAppSpec::default());
        let pod = pod(&deployment);
        let pod_security = pod.security_context.as_ref().unwrap();
        assert_eq!(pod_security.run_as_non_root, Some(true));
        assert_eq!(pod_security.run_as_user, Some(65532));
        assert_eq!(
            pod_security.seccomp_profile.as_ref().unwrap().type_,
            "RuntimeDefault"
        );
        let security = container(&deployment).security_context.as_ref().unwrap();
        assert_eq!(security.allow_privilege_escalation, Some(false));
        assert_eq!(
            security.capabilities.as_ref().unwrap().drop,
            Some(vec!["ALL".to_owned()])
        );
        assert_eq!(security.read_only_root_filesystem, Some(true));
        assert_eq!(security.run_as_non_root, Some(true));
        let tmp = container(&deployment)
            .volume_mounts
            .iter()
            .flatten()
            .find(|m| m.mount_path == "/tmp")
            .unwrap();
        let volume = pod
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == tmp.name)
            .unwrap();
        assert!(volume.empty_dir.is_some());
    }

    #[test]
    fn pods_get_a_service_account_token_only_with_an_account_of_their_own_or_when_asked() {
        let automount = |spec: McpAppSpec| pod(&build(spec)).automount_service_account_token;
        assert_eq!(automount(McpAppSpec::default()), Some(false));
        let named = McpAppSpec {
            service_account_name: Some("weather".into()),
            ..McpAppSpec::default()
        };
        assert_eq!(automount(named.clone()), Some(true));
        assert_eq!(
            automount(McpAppSpec {
                automount_service_account_token: Some(false),
                ..named
            }),
            Some(false)
        );
        assert_eq!(
            automount(McpAppSpec {
                automount_service_account_token: Some(true),
                ..McpAppSpec::default()
            }),
            Some(true)
        );
    }

    #[test]
    fn default_image_is_the_companion_with_its_settings_and_health_endpoints() {
        let deployment = build(McpAppSpec::default());
        let c = container(&deployment);
        assert_eq!(
            c.image.as_deref(),
            Some(crate::api::DEFAULT_COMPANION_IMAGE)
        );
        assert_eq!(c.command, None);
        assert_eq!(env_value(c, "MCP_LISTEN"), Some("0.0.0.0:8080"));
        assert_eq!(env_value(c, "MCP_KEEP_ALIVE"), Some("15"));
        let readiness = c
            .readiness_probe
            .as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap();
        assert_eq!(readiness.path.as_deref(), Some("/readyz"));
        let liveness = c
            .liveness_probe
            .as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap();
        assert_eq!(liveness.path.as_deref(), Some("/healthz"));
        let port = &c.ports.as_ref().unwrap()[0];
        assert_eq!(
            (port.name.as_deref(), port.container_port),
            (Some("http"), 8080)
        );
    }

    #[test]
    fn users_http_image_runs_unchanged_with_a_tcp_readiness_probe() {
        let deployment = build(McpAppSpec {
            image: Some("ghcr.io/example/weather-mcp:1.2.0".into()),
            image_pull_policy: Some(ImagePullPolicy::IfNotPresent),
            command: vec!["/app/server".into()],
            args: vec!["--port".into(), "9000".into()],
            port: 9000,
            ..McpAppSpec::default()
        });
        let c = container(&deployment);
        assert_eq!(
            c.image.as_deref(),
            Some("ghcr.io/example/weather-mcp:1.2.0")
        );
        assert_eq!(c.image_pull_policy.as_deref(), Some("IfNotPresent"));
        assert_eq!(c.command, Some(vec!["/app/server".to_owned()]));
        assert_eq!(c.args, Some(vec!["--port".to_owned(), "9000".to_owned()]));
        assert_eq!(
            env_value(c, "MCP_LISTEN"),
            None,
            "only the companion reads MCP_* settings"
        );
        assert!(c.readiness_probe.as_ref().unwrap().tcp_socket.is_some());
        assert_eq!(c.liveness_probe, None);
        assert_eq!(c.ports.as_ref().unwrap()[0].container_port, 9000);
        assert_eq!(pod(&deployment).init_containers, None);
    }

    fn own_http_image(front_door: bool) -> McpAppSpec {
        let mut spec = McpAppSpec {
            image: Some("ghcr.io/example/weather-mcp:1.2.0".into()),
            port: 9000,
            ..McpAppSpec::default()
        };
        spec.session.front_door = front_door;
        spec
    }

    fn front_door_of(deployment: &Deployment) -> Option<&Container> {
        pod(deployment)
            .containers
            .iter()
            .find(|c| c.name == front_door::FRONT_DOOR_CONTAINER)
    }

    fn mounts_session_keys(container: &Container) -> bool {
        container
            .volume_mounts
            .iter()
            .flatten()
            .any(|m| m.mount_path == front_door::SESSION_KEYS_PATH && m.read_only == Some(true))
    }

    #[test]
    fn the_companion_routes_sessions_with_the_apps_key_unless_the_front_door_is_off() {
        for spec in [McpAppSpec::default(), stdio()] {
            let deployment = build(spec.clone());
            let c = container(&deployment);
            assert!(mounts_session_keys(c));
            assert_eq!(
                env_value(c, "MCP_SESSION_KEY_FILE"),
                Some("/mcp-session-keys/keys")
            );
            assert!(
                c.env
                    .iter()
                    .flatten()
                    .any(|v| v.name == "MCP_ADVERTISE_ADDRESS" && v.value_from.is_some())
            );
            assert!(has_secret_volume(&deployment, "weather-session-keys"));
            assert_eq!(
                front_door_of(&deployment),
                None,
                "the companion is its own door"
            );

            let mut off = spec;
            off.session.front_door = false;
            let deployment = build(off);
            let c = container(&deployment);
            assert!(!mounts_session_keys(c));
            assert_eq!(env_value(c, "MCP_SESSION_KEY_FILE"), None);
            assert!(
                !pod(&deployment)
                    .volumes
                    .iter()
                    .flatten()
                    .any(|v| v.secret.is_some())
            );
        }
    }

    #[test]
    fn an_own_http_image_gets_the_companion_as_front_door_on_a_port_of_its_own() {
        let mut spec = own_http_image(true);
        spec.rollout.drain_seconds = 45;
        let inputs = BuildInputs {
            companion_image: "registry.local/mcp-server:9.9.9".into(),
            ..BuildInputs::default()
        };
        let deployment = deployment(&app(spec), &inputs).unwrap();
        let server = container(&deployment);
        let server_port = &server.ports.as_ref().unwrap()[0];
        assert_eq!(
            (server_port.name.as_deref(), server_port.container_port),
            (Some(UPSTREAM_PORT), 9000),
            "the Service's named port moves to the front door"
        );
        let tcp = server.readiness_probe.as_ref().unwrap().tcp_socket.as_ref();
        assert_eq!(tcp.unwrap().port, IntOrString::String(UPSTREAM_PORT.into()));
        assert!(!mounts_session_keys(server), "the image never sees the key");
        assert_eq!(env_value(server, "MCP_SESSION_KEY_FILE"), None);

        let door = front_door_of(&deployment).expect("a front-door container");
        assert_eq!(
            door.image.as_deref(),
            Some("registry.local/mcp-server:9.9.9")
        );
        assert_eq!(
            door.command,
            Some(vec![bridge::COMPANION_BINARY.to_owned()])
        );
        assert_eq!(
            door.args.as_ref().unwrap()[..3],
            ["proxy", "--upstream", "http://127.0.0.1:9000/mcp"]
        );
        let door_port = &door.ports.as_ref().unwrap()[0];
        assert_eq!(
            (door_port.name.as_deref(), door_port.container_port),
            (Some(HTTP_PORT), FRONT_DOOR_PORT)
        );
        assert_eq!(env_value(door, "MCP_LISTEN"), Some("0.0.0.0:8099"));
        assert_eq!(
            env_value(door, "MCP_SESSION_KEY_FILE"),
            Some("/mcp-session-keys/keys")
        );
        assert!(mounts_session_keys(door));
        assert_eq!(door.security_context, Some(container_security()));
        assert_eq!(door.lifecycle, server.lifecycle, "drained like the server");
        let ready = door.readiness_probe.as_ref().unwrap().tcp_socket.as_ref();
        assert_eq!(
            ready.unwrap().port,
            IntOrString::String(HTTP_PORT.into()),
            "ready once it accepts connections: the handshake judges the image"
        );
        let live = door.liveness_probe.as_ref().unwrap().http_get.as_ref();
        assert_eq!(live.unwrap().path.as_deref(), Some("/healthz"));
    }

    /// `spec` with OAuth from a CA behind a Secret.
    fn with_oauth(mut spec: McpAppSpec) -> McpAppSpec {
        spec.auth = Some(
            serde_json::from_value(serde_json::json!({"oauth": {
                "issuer": "https://id.example.com",
                "caBundleSecretRef": {"name": "idp-ca", "key": "ca.crt"},
            }}))
            .expect("auth"),
        );
        spec
    }

    fn mounts_ca(container: &Container) -> bool {
        container
            .volume_mounts
            .iter()
            .flatten()
            .any(|m| m.mount_path == "/etc/mcp-server/oauth-ca")
    }

    #[test]
    fn tokens_are_checked_by_whichever_container_runs_the_companion() {
        // An own image: its front door checks; the image itself gets nothing.
        let own = build(with_oauth(own_http_image(true)));
        let door = front_door_of(&own).expect("a front door");
        assert_eq!(
            env_value(door, "MCP_OAUTH_ISSUER"),
            Some("https://id.example.com")
        );
        assert!(mounts_ca(door));
        assert_eq!(env_value(container(&own), "MCP_OAUTH_ISSUER"), None);
        assert!(!mounts_ca(container(&own)));
        assert!(has_secret_volume(&own, "idp-ca"));
        // The companion image and the bridge check in the app's own container.
        for spec in [McpAppSpec::default(), stdio_spec()] {
            let d = build(with_oauth(spec));
            assert_eq!(
                env_value(container(&d), "MCP_OAUTH_RESOURCE"),
                Some("http://weather.tools.svc/mcp")
            );
            assert!(mounts_ca(container(&d)));
        }
    }

    #[test]
    fn an_own_http_image_without_the_front_door_serves_the_service_itself() {
        let deployment = build(own_http_image(false));
        assert_eq!(front_door_of(&deployment), None);
        let port = &container(&deployment).ports.as_ref().unwrap()[0];
        assert_eq!(port.name.as_deref(), Some(HTTP_PORT));
    }

    #[test]
    fn stdio_runs_the_users_command_under_the_injected_bridge() {
        let inputs = BuildInputs {
            companion_image: "registry.local/mcp-server:9.9.9".into(),
            ..BuildInputs::default()
        };
        let deployment = deployment(&app(stdio()), &inputs).unwrap();
        let pod = pod(&deployment);

        let init = &pod
            .init_containers
            .as_ref()
            .expect("stdio injects an init container")[0];
        assert_eq!(
            init.image.as_deref(),
            Some("registry.local/mcp-server:9.9.9")
        );
        assert_eq!(
            init.command,
            Some(vec![
                "/usr/local/bin/mcp-server".to_owned(),
                "install".to_owned(),
                "/mcp-bridge/mcp-server".to_owned()
            ])
        );
        assert_eq!(
            init.security_context
                .as_ref()
                .unwrap()
                .read_only_root_filesystem,
            Some(true)
        );
        let init_mount = &init.volume_mounts.as_ref().unwrap()[0];
        assert_eq!(
            (init_mount.mount_path.as_str(), init_mount.read_only),
            ("/mcp-bridge", None)
        );

        let c = container(&deployment);
        assert_eq!(c.image.as_deref(), Some("node:22-alpine"));
        assert_eq!(
            c.command,
            Some(
                [
                    "/mcp-bridge/mcp-server",
                    "bridge",
                    "--",
                    "npx",
                    "-y",
                    "@modelcontextprotocol/server-everything"
                ]
                .map(str::to_owned)
                .to_vec()
            )
        );
        assert_eq!(c.args, Some(vec!["--verbose".to_owned()]));
        let mount = c
            .volume_mounts
            .iter()
            .flatten()
            .find(|m| m.mount_path == "/mcp-bridge")
            .unwrap();
        assert_eq!(mount.read_only, Some(true));
        assert_eq!(mount.name, init_mount.name);
        assert!(
            pod.volumes
                .iter()
                .flatten()
                .any(|v| v.name == mount.name && v.empty_dir.is_some())
        );
        assert_eq!(env_value(c, "MCP_LISTEN"), Some("0.0.0.0:8080"));
        assert_eq!(env_value(c, "HOME"), Some("/tmp"));
        assert_eq!(readiness_path(c), Some("/readyz"));
    }

    #[test]
    fn users_env_overrides_the_operators_defaults() {
        let mut spec = stdio();
        spec.env = vec![EnvVar {
            name: "HOME".into(),
            value: Some("/data".into()),
            value_from: None,
        }];
        let deployment = build(spec);
        let homes: Vec<_> = container(&deployment)
            .env
            .iter()
            .flatten()
            .filter(|v| v.name == "HOME")
            .collect();
        assert_eq!(homes.len(), 1);
        assert_eq!(homes[0].value.as_deref(), Some("/data"));
    }

    #[test]
    fn secrets_arrive_as_env_vars_env_from_and_read_only_files() {
        let deployment = build(McpAppSpec {
            secrets: Some(SecretsSpec {
                env_from: vec![SecretEnvFrom {
                    secret_name: "github".into(),
                    prefix: Some("GITHUB_".into()),
                }],
                env: vec![SecretEnvVar {
                    name: "API_TOKEN".into(),
                    secret_name: "weather-api".into(),
                    key: "token".into(),
                }],
                files: vec![SecretFiles {
                    secret_name: "client-cert".into(),
                    mount_path: "/etc/mcp/tls".into(),
                    items: vec![SecretFileItem {
                        key: "tls.crt".into(),
                        path: "cert.pem".into(),
                    }],
                }],
                restart_on_change: false,
            }),
            ..McpAppSpec::default()
        });
        let c = container(&deployment);
        let token = c
            .env
            .iter()
            .flatten()
            .find(|v| v.name == "API_TOKEN")
            .unwrap();
        let selector = token
            .value_from
            .as_ref()
            .and_then(|s: &EnvVarSource| s.secret_key_ref.as_ref())
            .unwrap();
        assert_eq!(
            (selector.name.as_str(), selector.key.as_str()),
            ("weather-api", "token")
        );
        let from = &c.env_from.as_ref().unwrap()[0];
        assert_eq!(from.prefix.as_deref(), Some("GITHUB_"));
        assert_eq!(from.secret_ref.as_ref().unwrap().name, "github");
        let mount = c
            .volume_mounts
            .iter()
            .flatten()
            .find(|m| m.mount_path == "/etc/mcp/tls")
            .unwrap();
        assert_eq!(mount.read_only, Some(true));
        let volume = pod(&deployment)
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == mount.name)
            .unwrap();
        let secret = volume.secret.as_ref().unwrap();
        assert_eq!(secret.secret_name.as_deref(), Some("client-cert"));
        let item = &secret.items.as_ref().unwrap()[0];
        assert_eq!(
            (item.key.as_str(), item.path.as_str()),
            ("tls.crt", "cert.pem")
        );
    }

    fn checksum_annotation(restart_on_change: bool, checksum: Option<&str>) -> Option<String> {
        let app = app(McpAppSpec {
            secrets: Some(SecretsSpec {
                env_from: vec![SecretEnvFrom {
                    secret_name: "github".into(),
                    prefix: None,
                }],
                restart_on_change,
                ..SecretsSpec::default()
            }),
            ..McpAppSpec::default()
        });
        let inputs = BuildInputs {
            secrets_checksum: checksum.map(str::to_owned),
            ..BuildInputs::default()
        };
        let deployment = deployment(&app, &inputs).unwrap();
        let annotations = deployment
            .spec
            .template
            .metadata
            .unwrap()
            .annotations
            .unwrap();
        annotations.get(SECRETS_CHECKSUM_ANNOTATION).cloned()
    }

    #[test]
    fn secret_checksum_rolls_the_pods_only_when_asked() {
        assert_eq!(
            checksum_annotation(true, Some("abc123")).as_deref(),
            Some("abc123")
        );
        assert_eq!(checksum_annotation(false, Some("abc123")), None);
        assert_eq!(checksum_annotation(true, None), None);
    }

    #[test]
    fn a_probe_only_change_is_a_new_revision_whose_pods_carry_its_settings() {
        let before = build(McpAppSpec::default());
        let mut spec = McpAppSpec::default();
        spec.probe.required_tools = vec!["forecast".into()];
        let after = build(spec.clone());
        assert_ne!(revision(&before), revision(&after));
        let annotations = after
            .spec
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.annotations.as_ref())
            .unwrap();
        assert_eq!(
            annotations[PROBE_SETTINGS_ANNOTATION],
            ProbeSettings::of(&app(spec)).annotation()
        );
    }

    #[test]
    fn draining_keeps_streams_for_drain_seconds_then_allows_a_clean_shutdown() {
        let mut spec = McpAppSpec::default();
        spec.rollout.drain_seconds = 120;
        let deployment = build(spec);
        assert_eq!(
            pod(&deployment).termination_grace_period_seconds,
            Some(120 + SHUTDOWN_GRACE_SECONDS)
        );
        let pre_stop = container(&deployment)
            .lifecycle
            .as_ref()
            .unwrap()
            .pre_stop
            .as_ref()
            .unwrap();
        assert_eq!(pre_stop.sleep.as_ref().map(|s| s.seconds), Some(120));
    }

    #[test]
    fn zero_drain_seconds_sets_no_pre_stop_hook() {
        let mut spec = McpAppSpec::default();
        spec.rollout.drain_seconds = 0;
        let deployment = build(spec);
        assert_eq!(container(&deployment).lifecycle, None);
        assert_eq!(
            pod(&deployment).termination_grace_period_seconds,
            Some(SHUTDOWN_GRACE_SECONDS)
        );
    }

    #[test]
    fn scheduling_and_pod_metadata_are_passed_through() {
        use k8s_openapi::api::core::v1::{LocalObjectReference, Toleration};
        let deployment = build(McpAppSpec {
            node_selector: [("kubernetes.io/arch".to_owned(), "arm64".to_owned())].into(),
            tolerations: vec![Toleration {
                key: Some("dedicated".into()),
                operator: Some("Exists".into()),
                ..Toleration::default()
            }],
            service_account_name: Some("weather".into()),
            image_pull_secrets: vec![LocalObjectReference {
                name: "regcred".into(),
            }],
            pod_annotations: [("prometheus.io/scrape".to_owned(), "true".to_owned())].into(),
            pod_labels: [("team".to_owned(), "search".to_owned())].into(),
            ..McpAppSpec::default()
        });
        let pod = pod(&deployment);
        assert_eq!(
            pod.node_selector.as_ref().unwrap()["kubernetes.io/arch"],
            "arm64"
        );
        assert_eq!(
            pod.tolerations.as_ref().unwrap()[0].key.as_deref(),
            Some("dedicated")
        );
        assert_eq!(pod.service_account_name.as_deref(), Some("weather"));
        assert_eq!(pod.image_pull_secrets.as_ref().unwrap()[0].name, "regcred");
        let meta = deployment.spec.template.metadata.as_ref().unwrap();
        assert_eq!(
            meta.annotations.as_ref().unwrap()["prometheus.io/scrape"],
            "true"
        );
        let labels = meta.labels.as_ref().unwrap();
        assert_eq!(labels["team"], "search");
        assert_eq!(labels["app.kubernetes.io/instance"], fixtures::NAME);
    }

    #[test]
    fn building_twice_gives_identical_objects() {
        let app = app(stdio());
        let inputs = BuildInputs {
            secrets_checksum: Some("x".into()),
            ..BuildInputs::default()
        };
        let first = serde_json::to_string(&deployment(&app, &inputs).unwrap()).unwrap();
        let second = serde_json::to_string(&deployment(&app, &inputs).unwrap()).unwrap();
        assert_eq!(first, second);
    }
}
