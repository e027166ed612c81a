//! The companion as every pod's front door: session routing wherever the companion serves (the
//! key file from the app's key Secret, the pod's own address), and in front of an own image that
//! speaks HTTP a container running `mcp-server proxy` to it on loopback.

use k8s_openapi::api::core::v1::{
    EnvVar, EnvVarSource, ObjectFieldSelector, SecretVolumeSource, Volume, VolumeMount,
};

use super::session_keys::{KEY_FILE, secret_name};
use crate::api::{McpApp, Transport};

/// Name of the front-door container in front of an own image.
pub const FRONT_DOOR_CONTAINER: &str = "front-door";
/// Where the key Secret is mounted (the CRD keeps `secrets.files` away from it).
pub const SESSION_KEYS_PATH: &str = "/mcp-session-keys";

const SESSION_KEYS_VOLUME: &str = "mcp-session-keys";
/// Readable by the pods' group (`fsGroup`), nobody else.
const KEY_FILE_MODE: i32 = 0o440;

/// The app's key Secret as a volume.
pub(super) fn keys_volume(app: &McpApp) -> Volume {
    Volume {
        name: SESSION_KEYS_VOLUME.into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret_name(app)),
            default_mode: Some(KEY_FILE_MODE),
            ..SecretVolumeSource::default()
        }),
        ..Volume::default()
    }
}

/// The key volume, read-only, for the container where the companion serves.
pub(super) fn keys_mount() -> VolumeMount {
    VolumeMount {
        name: SESSION_KEYS_VOLUME.into(),
        mount_path: SESSION_KEYS_PATH.into(),
        read_only: Some(true),
        ..VolumeMount::default()
    }
}

/// The companion's routing settings: the key file, and the pod IP as the address other replicas
/// forward to (the companion adds its listen port, so an IPv6 pod IP needs no brackets).
pub(super) fn routing_env() -> Vec<EnvVar> {
    vec![
        EnvVar {
            name: "MCP_SESSION_KEY_FILE".into(),
            value: Some(format!("{SESSION_KEYS_PATH}/{KEY_FILE}")),
            value_from: None,
        },
        EnvVar {
            name: "MCP_ADVERTISE_ADDRESS".into(),
            value: None,
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: "status.podIP".into(),
                    api_version: None,
                }),
                ..EnvVarSource::default()
            }),
        },
    ]
}

/// The front door's arguments to the companion: proxy to the image on loopback, in the
/// transport the image speaks.
pub(super) fn proxy_args(app: &McpApp) -> Vec<String> {
    let spec = &app.spec;
    let (path, transport) = match spec.transport {
        Transport::Sse => ("/sse", "sse"),
        Transport::StreamableHttp | Transport::Stdio => (spec.path.as_str(), "streamable"),
    };
    [
        "proxy".to_owned(),
        "--upstream".to_owned(),
        format!("http://127.0.0.1:{}{path}", spec.port),
        "--upstream-transport".to_owned(),
        transport.to_owned(),
    ]
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::McpAppSpec;
    use crate::build::fixtures::app;

    fn own_image(transport: Transport) -> McpApp {
        app(McpAppSpec {
            image: Some("example/weather:1".into()),
            port: 9000,
            path: "/api/mcp".into(),
            transport,
            ..McpAppSpec::default()
        })
    }

    #[test]
    fn the_front_door_proxies_to_the_images_endpoint_in_its_transport() {
        assert_eq!(
            proxy_args(&own_image(Transport::StreamableHttp)),
            [
                "proxy",
                "--upstream",
                "http://127.0.0.1:9000/api/mcp",
                "--upstream-transport",
                "streamable"
            ]
        );
        assert_eq!(
            proxy_args(&own_image(Transport::Sse)),
            [
                "proxy",
                "--upstream",
                "http://127.0.0.1:9000/sse",
                "--upstream-transport",
                "sse"
            ]
        );
    }

    #[test]
    fn the_key_file_comes_from_the_apps_secret_and_the_address_from_the_pod() {
        let app = own_image(Transport::StreamableHttp);
        let volume = keys_volume(&app);
        let secret = volume.secret.unwrap();
        assert_eq!(secret.secret_name.as_deref(), Some("weather-session-keys"));
        assert_eq!(secret.default_mode, Some(0o440));
        assert_eq!(keys_mount().read_only, Some(true));
        let env = routing_env();
        assert_eq!(
            env[0].value.as_deref(),
            Some("/mcp-session-keys/keys"),
            "the key file is the Secret's `keys` entry"
        );
        let field = env[1].value_from.as_ref().unwrap().field_ref.as_ref();
        assert_eq!(field.unwrap().field_path, "status.podIP");
    }
}
