//! The CRD's validation as the API server applies it: CEL rules evaluated on whole McpApps,
//! and the schema's defaults, ranges and list semantics.

use k8s_openapi::api::core::v1::ResourceRequirements;
use kube::CustomResourceExt;
use serde_json::{Value, json};

use super::examples::stdio_spec;
use super::*;

fn app(spec: McpAppSpec) -> McpApp {
    McpApp::new("weather", spec)
}

/// The messages of every CEL rule the app breaks, empty when the API server would accept it.
fn cel_rejections(app: &McpApp) -> Vec<String> {
    match kube::core::cel::validate_cel(app) {
        Ok(()) => Vec::new(),
        Err(errors) => errors.into_vec().into_iter().map(|e| e.message).collect(),
    }
}

fn assert_rejected_with(spec: McpAppSpec, expected: &str) {
    let messages = cel_rejections(&app(spec));
    assert!(
        messages.iter().any(|m| m.contains(expected)),
        "expected a rejection containing {expected:?}, got {messages:?}"
    );
}

fn ingress() -> IngressSpec {
    IngressSpec {
        class_name: Some("nginx".into()),
        host: "mcp.example.com".into(),
        tls: None,
        annotations: Default::default(),
    }
}

fn gateway() -> GatewaySpec {
    GatewaySpec {
        parent_refs: vec![GatewayParentRef {
            name: "public".into(),
            namespace: None,
            section_name: None,
            port: None,
        }],
        hostnames: vec!["mcp.example.com".into()],
        annotations: Default::default(),
    }
}

fn schema() -> Value {
    let crd = serde_json::to_value(McpApp::crd()).expect("CRD serializes");
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

fn spec_property(path: &str) -> Value {
    let pointer = path
        .split('.')
        .fold(String::from("/properties/spec"), |acc, field| {
            format!("{acc}/properties/{field}")
        });
    schema()
        .pointer(&pointer)
        .unwrap_or_else(|| panic!("no schema at spec.{path}"))
        .clone()
}

#[test]
fn empty_spec_is_accepted() {
    assert_eq!(
        cel_rejections(&app(McpAppSpec::default())),
        Vec::<String>::new()
    );
}

#[test]
fn a_spec_using_every_section_is_accepted() {
    let spec = McpAppSpec {
        replicas: None,
        autoscaling: Some(AutoscalingSpec::between(2, 5)),
        ingress: Some(ingress()),
        secrets: Some(SecretsSpec {
            files: vec![SecretFiles {
                secret_name: "creds".into(),
                mount_path: "/etc/creds".into(),
                items: vec![],
            }],
            restart_on_change: true,
            ..SecretsSpec::default()
        }),
        probe: ProbeSpec {
            required_tools: vec!["forecast".into()],
            external: Some(ExternalProbeSpec {
                url: Some("https://weather.example.com/mcp".into()),
                ca_bundle_secret_ref: Some(SecretKeyRef {
                    name: "ca".into(),
                    key: "ca.crt".into(),
                }),
                ..ExternalProbeSpec::default()
            }),
            ..ProbeSpec::default()
        },
        ..stdio_spec()
    };
    assert_eq!(cel_rejections(&app(spec)), Vec::<String>::new());
}

#[test]
fn replicas_and_autoscaling_together_are_rejected() {
    let spec = McpAppSpec {
        replicas: Some(3),
        autoscaling: Some(AutoscalingSpec::between(1, 4)),
        ..McpAppSpec::default()
    };
    assert_rejected_with(spec, "set either replicas or autoscaling, not both");
}

#[test]
fn rejections_point_at_the_field_to_fix() {
    let spec = McpAppSpec {
        replicas: Some(3),
        autoscaling: Some(AutoscalingSpec::between(1, 4)),
        ..McpAppSpec::default()
    };
    let errors = kube::core::cel::validate_cel(&app(spec)).expect_err("the spec is invalid");
    let paths: Vec<String> = errors
        .into_vec()
        .into_iter()
        .map(|e| e.field_path)
        .collect();
    assert!(
        paths.iter().any(|p| p.ends_with("spec.autoscaling")),
        "{paths:?}"
    );
}

#[test]
fn ingress_and_gateway_together_are_rejected() {
    let spec = McpAppSpec {
        ingress: Some(ingress()),
        gateway: Some(gateway()),
        ..McpAppSpec::default()
    };
    assert_rejected_with(spec, "set either ingress or gateway, not both");
}

#[test]
fn stdio_without_command_is_rejected() {
    let spec = McpAppSpec {
        command: vec![],
        ..stdio_spec()
    };
    assert_rejected_with(spec, "transport stdio needs command");
}

#[test]
fn stdio_without_image_is_rejected() {
    let spec = McpAppSpec {
        image: None,
        ..stdio_spec()
    };
    assert_rejected_with(spec, "transport stdio needs image");
}

#[test]
fn an_image_behind_the_front_door_cannot_take_its_port() {
    let own_image = McpAppSpec {
        image: Some("example/weather:1".into()),
        port: crate::api::FRONT_DOOR_PORT,
        ..McpAppSpec::default()
    };
    assert_rejected_with(own_image.clone(), "port 8099 is the front door's");
    let mut without_front_door = own_image.clone();
    without_front_door.session.front_door = false;
    assert!(cel_rejections(&app(without_front_door)).is_empty());
    // The companion serving itself has no front-door container: any port is its own.
    let built_in = McpAppSpec {
        image: None,
        ..own_image
    };
    assert!(cel_rejections(&app(built_in)).is_empty());
}

#[test]
fn pod_labels_that_would_change_the_selector_are_rejected() {
    for key in [
        "app.kubernetes.io/name",
        "app.kubernetes.io/instance",
        "app.kubernetes.io/managed-by",
    ] {
        let spec = McpAppSpec {
            pod_labels: [(key.to_owned(), "x".to_owned())].into(),
            ..McpAppSpec::default()
        };
        assert_rejected_with(spec, "podLabels must not set");
    }
    let harmless = McpAppSpec {
        pod_labels: [("team".to_owned(), "search".to_owned())].into(),
        ..McpAppSpec::default()
    };
    assert!(cel_rejections(&app(harmless)).is_empty());
}

#[test]
fn keep_alive_not_below_stream_timeout_is_rejected() {
    let spec = McpAppSpec {
        sse: SseSpec {
            stream_timeout_seconds: 60,
            keep_alive_seconds: 60,
        },
        ..McpAppSpec::default()
    };
    assert_rejected_with(
        spec,
        "sse.keepAliveSeconds must be less than sse.streamTimeoutSeconds",
    );
}

#[test]
fn min_replicas_above_max_replicas_is_rejected() {
    let spec = McpAppSpec {
        autoscaling: Some(AutoscalingSpec::between(5, 2)),
        ..McpAppSpec::default()
    };
    assert_rejected_with(
        spec,
        "autoscaling.minReplicas must not exceed autoscaling.maxReplicas",
    );
}

#[test]
fn probe_timeout_longer_than_its_period_is_rejected() {
    let spec = McpAppSpec {
        probe: ProbeSpec {
            period_seconds: 5,
            timeout_seconds: 10,
            ..ProbeSpec::default()
        },
        ..McpAppSpec::default()
    };
    assert_rejected_with(
        spec,
        "probe.timeoutSeconds must not exceed probe.periodSeconds",
    );
}

#[test]
fn external_probe_timeout_longer_than_its_period_is_rejected() {
    let spec = McpAppSpec {
        probe: ProbeSpec {
            external: Some(ExternalProbeSpec {
                period_seconds: 10,
                timeout_seconds: 30,
                ..ExternalProbeSpec::default()
            }),
            ..ProbeSpec::default()
        },
        ..McpAppSpec::default()
    };
    assert_rejected_with(
        spec,
        "probe.external.timeoutSeconds must not exceed probe.external.periodSeconds",
    );
}

#[test]
fn external_probe_defaults_and_url_pattern() {
    let external = spec_property("probe.external");
    let properties = &external["properties"];
    let defaults = ExternalProbeSpec::default();
    assert_eq!(properties["enabled"]["default"], json!(defaults.enabled));
    assert_eq!(properties["periodSeconds"]["default"], json!(60));
    assert_eq!(properties["timeoutSeconds"]["default"], json!(10));
    assert_eq!(
        properties["certificateExpiryWarningDays"]["default"],
        json!(14)
    );
    // The URL: http or https, a host, no user info, no blanks (checked like the API server's
    // regular expressions: anchored).
    let pattern = regex_of(&spec_property("probe.external.url"));
    assert!(pattern.starts_with("^https?://"), "{pattern}");
    assert!(pattern.contains('@'), "user info is excluded: {pattern}");
}

fn secret_files(secret_name: &str, mount_path: &str) -> SecretFiles {
    SecretFiles {
        secret_name: secret_name.into(),
        mount_path: mount_path.into(),
        items: vec![],
    }
}

#[test]
fn two_secrets_mounted_at_one_path_are_rejected() {
    let spec = McpAppSpec {
        secrets: Some(SecretsSpec {
            files: vec![
                secret_files("a", "/etc/creds"),
                secret_files("b", "/etc/creds"),
            ],
            ..SecretsSpec::default()
        }),
        ..McpAppSpec::default()
    };
    assert_rejected_with(spec, "every mountPath must be different");
}

#[test]
fn secret_files_over_the_operators_own_mounts_are_rejected() {
    for path in ["/tmp", "/tmp/creds", "/mcp-bridge", "/mcp-session-keys/x"] {
        let spec = McpAppSpec {
            secrets: Some(SecretsSpec {
                files: vec![secret_files("a", path)],
                ..SecretsSpec::default()
            }),
            ..McpAppSpec::default()
        };
        assert_rejected_with(spec, "must not be /tmp, /mcp-bridge or /mcp-session-keys");
    }
    let spec = McpAppSpec {
        secrets: Some(SecretsSpec {
            files: vec![secret_files("a", "/tmpfiles")],
            ..SecretsSpec::default()
        }),
        ..McpAppSpec::default()
    };
    assert!(cel_rejections(&app(spec)).is_empty());
}

#[test]
fn schema_defaults_match_the_rust_defaults() {
    let defaults = McpAppSpec::default();
    assert_eq!(spec_property("port")["default"], json!(defaults.port));
    assert_eq!(spec_property("path")["default"], json!("/mcp"));
    assert_eq!(
        spec_property("transport")["default"],
        json!("streamable-http")
    );
    assert_eq!(
        spec_property("session")["default"],
        json!({"affinity": "ClientIP", "frontDoor": true, "timeoutSeconds": 86400})
    );
    assert_eq!(
        spec_property("sse")["default"],
        json!({"keepAliveSeconds": 15, "streamTimeoutSeconds": 3600})
    );
    assert_eq!(
        spec_property("probe")["default"],
        json!({"failureThreshold": 3, "periodSeconds": 30, "protocolVersion": "auto", "timeoutSeconds": 5})
    );
    assert_eq!(
        spec_property("rollout")["default"],
        json!({"autoRollback": true, "drainSeconds": 30, "progressDeadlineSeconds": 600, "toolContract": "Enforce"})
    );
}

#[test]
fn session_timeout_is_limited_to_what_service_affinity_accepts() {
    let timeout = spec_property("session.timeoutSeconds");
    assert_eq!(bound(&timeout, "minimum"), 1.0);
    assert_eq!(bound(&timeout, "maximum"), 86400.0);
}

#[test]
fn enums_list_exactly_the_supported_values() {
    assert_eq!(
        enum_values(&spec_property("transport")),
        ["streamable-http", "sse", "stdio"]
    );
    assert_eq!(
        enum_values(&spec_property("session.affinity")),
        ["None", "ClientIP", "Cookie", "Header"]
    );
    assert_eq!(
        enum_values(&spec_property("probe.protocolVersion")),
        [
            "auto",
            "2024-11-05",
            "2025-03-26",
            "2025-06-18",
            "2025-11-25",
            "2026-07-28"
        ]
    );
    assert_eq!(
        enum_values(&spec_property("imagePullPolicy")),
        ["Always", "IfNotPresent", "Never"]
    );
}

#[test]
fn ranges_reject_nonsense_numbers() {
    for (path, min, max) in [
        ("port", 1, 65535),
        ("replicas", 0, 1000),
        ("sse.streamTimeoutSeconds", 10, 86400),
        ("sse.keepAliveSeconds", 1, 3600),
        ("autoscaling.minReplicas", 1, 1000),
        ("autoscaling.maxReplicas", 1, 1000),
        ("rollout.drainSeconds", 0, 3600),
        ("probe.periodSeconds", 1, 3600),
        ("probe.external.periodSeconds", 10, 3600),
        ("probe.external.timeoutSeconds", 1, 60),
        ("probe.external.certificateExpiryWarningDays", 1, 365),
    ] {
        let property = spec_property(path);
        assert_eq!(
            bound(&property, "minimum"),
            f64::from(min),
            "minimum of spec.{path}"
        );
        assert_eq!(
            bound(&property, "maximum"),
            f64::from(max),
            "maximum of spec.{path}"
        );
    }
}

#[test]
fn path_and_host_must_look_like_a_path_and_a_host() {
    let path = regex_of(&spec_property("path"));
    assert!(path.starts_with("^/"), "{path}");
    let host = regex_of(&spec_property("ingress.host"));
    assert!(host.contains("[a-z0-9]"), "{host}");
}

fn bound(property: &Value, which: &str) -> f64 {
    property[which]
        .as_f64()
        .unwrap_or_else(|| panic!("no {which} in {property}"))
}

/// The allowed values of an enum property, without the `null` optional fields also accept.
fn enum_values(property: &Value) -> Vec<&str> {
    property["enum"]
        .as_array()
        .unwrap_or_else(|| panic!("no enum in {property}"))
        .iter()
        .filter_map(Value::as_str)
        .collect()
}

fn regex_of(property: &Value) -> String {
    property["pattern"]
        .as_str()
        .unwrap_or_else(|| panic!("no pattern in {property}"))
        .to_owned()
}

#[test]
fn conditions_are_a_list_map_keyed_by_type() {
    let conditions = &schema()["properties"]["status"]["properties"]["conditions"];
    assert_eq!(conditions["x-kubernetes-list-type"], json!("map"));
    assert_eq!(conditions["x-kubernetes-list-map-keys"], json!(["type"]));
}

#[test]
fn crd_has_names_status_subresource_and_printer_columns() {
    let crd = McpApp::crd();
    assert_eq!(
        crd.metadata.name.as_deref(),
        Some("mcpapps.mcp-operator.dev")
    );
    assert_eq!(crd.spec.group, GROUP);
    assert_eq!(crd.spec.names.short_names, Some(vec!["mcpapp".to_owned()]));
    assert_eq!(crd.spec.names.categories, Some(vec!["mcp".to_owned()]));
    let version = &crd.spec.versions[0];
    assert_eq!(version.name, "v1alpha1");
    assert!(
        version
            .subresources
            .as_ref()
            .and_then(|s| s.status.as_ref())
            .is_some()
    );
    let columns: Vec<&str> = version
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        columns,
        [
            "Ready", "Replicas", "URL", "Protocol", "Tools", "Auth", "Age"
        ]
    );
}

#[test]
fn resources_are_the_kubernetes_type() {
    // Users paste `resources:` blocks from other manifests; quantities must accept both forms.
    let spec: McpAppSpec = serde_json::from_value(json!({
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": 1}}
    }))
    .expect("resources deserialize");
    let resources: ResourceRequirements = spec.resources.expect("resources are kept");
    assert_eq!(resources.requests.expect("requests")["cpu"].0, "100m");
}

#[test]
fn secret_names_lists_every_referenced_secret_once() {
    let secrets = SecretsSpec {
        env_from: vec![SecretEnvFrom {
            secret_name: "b".into(),
            prefix: None,
        }],
        env: vec![SecretEnvVar {
            name: "TOKEN".into(),
            secret_name: "a".into(),
            key: "token".into(),
        }],
        files: vec![secret_files("b", "/etc/b")],
        restart_on_change: true,
    };
    assert_eq!(secrets.secret_names(), ["a", "b"]);
}

fn secret_env(name: &str, secret_name: &str) -> SecretEnvVar {
    SecretEnvVar {
        name: name.into(),
        secret_name: secret_name.into(),
        key: "token".into(),
    }
}

#[test]
fn two_secret_env_vars_of_one_name_are_rejected() {
    let spec = |env| McpAppSpec {
        secrets: Some(SecretsSpec {
            env,
            ..SecretsSpec::default()
        }),
        ..McpAppSpec::default()
    };
    assert_rejected_with(
        spec(vec![secret_env("TOKEN", "a"), secret_env("TOKEN", "b")]),
        "secrets.env: every name must be different",
    );
    let distinct = spec(vec![secret_env("TOKEN", "a"), secret_env("OTHER", "a")]);
    assert!(cel_rejections(&app(distinct)).is_empty());
}

#[test]
fn network_policy_peers_without_the_policy_are_rejected() {
    use k8s_openapi::api::networking::v1::NetworkPolicyPeer;
    let spec = |enabled| McpAppSpec {
        network_policy: Some(NetworkPolicySpec {
            enabled,
            from: vec![NetworkPolicyPeer::default()],
        }),
        ..McpAppSpec::default()
    };
    assert_rejected_with(
        spec(false),
        "networkPolicy.from has no effect unless networkPolicy.enabled is true",
    );
    assert!(cel_rejections(&app(spec(true))).is_empty());
}

fn oauth_spec(issuer: &str) -> OAuthSpec {
    serde_json::from_value(json!({ "issuer": issuer })).expect("oauth spec")
}

fn client_credentials() -> ClientCredentialsSpec {
    serde_json::from_value(json!({ "secretName": "probe-client" })).expect("client credentials")
}

/// The companion's image with OAuth and a probe client: what every OAuth rule starts from.
fn oauth_app_spec() -> McpAppSpec {
    let mut spec = McpAppSpec {
        auth: Some(AuthSpec {
            oauth: Some(oauth_spec("https://id.example.com/realms/mcp")),
        }),
        ..McpAppSpec::default()
    };
    spec.probe.client_credentials = Some(client_credentials());
    spec
}

#[test]
fn oauth_defaults_and_a_full_setting_are_accepted() {
    let spec = oauth_app_spec();
    assert!(cel_rejections(&app(spec.clone())).is_empty());
    let o = spec.auth.as_ref().and_then(|a| a.oauth.as_ref()).unwrap();
    assert_eq!(o.clock_skew_seconds, 60);
    assert!(!o.pass_token);
    assert!(spec.probe.client_credentials.as_ref().unwrap().resource);

    let mut full = spec;
    let o = full.auth.as_mut().unwrap().oauth.as_mut().unwrap();
    o.tool_scopes = vec![ToolScopes {
        tool: "delete_record".into(),
        scopes: vec!["records:write".into()],
    }];
    assert_eq!(cel_rejections(&app(full)), Vec::<String>::new());
}

#[test]
fn oauth_needs_the_companion_in_front_of_the_server() {
    let mut own_image = oauth_app_spec();
    own_image.image = Some("example/weather:1".into());
    assert!(
        cel_rejections(&app(own_image.clone())).is_empty(),
        "front door on by default"
    );
    own_image.session.front_door = false;
    assert_rejected_with(own_image, "auth.oauth is enforced by the companion");
    let mut stdio = stdio_spec();
    stdio.auth = oauth_app_spec().auth;
    stdio.probe.client_credentials = Some(client_credentials());
    stdio.session.front_door = false;
    assert!(
        cel_rejections(&app(stdio)).is_empty(),
        "the bridge checks tokens itself"
    );
}

#[test]
fn oauth_needs_a_handshake_that_authenticates_and_one_token_only() {
    let mut no_client = oauth_app_spec();
    no_client.probe.client_credentials = None;
    assert_rejected_with(
        no_client.clone(),
        "auth.oauth needs probe.clientCredentials",
    );
    no_client.probe.bearer_token_secret_ref = Some(SecretKeyRef {
        name: "t".into(),
        key: "token".into(),
    });
    assert!(cel_rejections(&app(no_client.clone())).is_empty());
    no_client.probe.client_credentials = Some(client_credentials());
    assert_rejected_with(
        no_client,
        "set either probe.bearerTokenSecretRef or probe.clientCredentials",
    );

    // Without auth.oauth the client needs its token endpoint spelled out.
    let mut own_server = McpAppSpec::default();
    own_server.probe.client_credentials = Some(client_credentials());
    assert_rejected_with(
        own_server.clone(),
        "probe.clientCredentials needs a token endpoint",
    );
    own_server
        .probe
        .client_credentials
        .as_mut()
        .unwrap()
        .token_url = Some("https://id.example.com/token".into());
    assert!(cel_rejections(&app(own_server)).is_empty());
}

#[test]
fn oauth_urls_and_scopes_have_patterns_the_companion_accepts() {
    let issuer = spec_property("auth.oauth.issuer");
    assert_eq!(issuer["pattern"], r"^https?://[^\s?#]+$");
    let scopes = spec_property("auth.oauth.requiredScopes");
    assert_eq!(scopes["items"]["pattern"], r"^[!#-+\--:<-\[\]-~]+$");
    assert_eq!(
        spec_property("auth.oauth.clockSkewSeconds")["maximum"],
        600.0
    );
    assert_eq!(
        spec_property("probe.clientCredentials.resource")["default"],
        true
    );
    // The companion takes TOOL=SCOPE,SCOPE;TOOL=...: none of those separators in a name.
    let tools = spec_property("auth.oauth.toolScopes");
    assert_eq!(tools["x-kubernetes-list-type"], "map");
    assert_eq!(
        tools["items"]["properties"]["tool"]["pattern"],
        r"^[^=;,\s]+$"
    );
    assert_eq!(
        tools["items"]["properties"]["scopes"]["items"]["pattern"],
        scopes["items"]["pattern"]
    );
}
