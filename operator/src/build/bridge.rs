//! The stdio bridge and the companion server's settings.
//!
//! For `transport: stdio` an init container copies the companion `mcp-server` binary (static,
//! so it runs in any image) into a shared emptyDir, and the app's container runs the user's
//! command under `mcp-server bridge --`. The companion's command-line contract lives here.

use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, EnvVar, SecurityContext, Volume, VolumeMount,
};

use crate::api::McpApp;

/// Where the companion image keeps its binary.
pub const COMPANION_BINARY: &str = "/usr/local/bin/mcp-server";
/// Where the bridge binary is shared with the app's container.
pub const BRIDGE_VOLUME_PATH: &str = "/mcp-bridge";
/// The bridge binary as the app's container sees it.
pub const BRIDGE_BINARY: &str = "/mcp-bridge/mcp-server";

const BRIDGE_VOLUME: &str = "mcp-bridge";
const INSTALL_CONTAINER: &str = "install-mcp-bridge";

/// Seconds the companion takes to close its streams after SIGTERM; inside the pod's grace.
const COMPANION_DRAIN_SECONDS: i64 = 10;

/// The emptyDir the bridge binary is copied into.
pub(super) fn volume() -> Volume {
    Volume {
        name: BRIDGE_VOLUME.into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }
}

/// The bridge volume, read-only: the app cannot replace the bridge.
pub(super) fn app_mount() -> VolumeMount {
    VolumeMount {
        name: BRIDGE_VOLUME.into(),
        mount_path: BRIDGE_VOLUME_PATH.into(),
        read_only: Some(true),
        ..VolumeMount::default()
    }
}

/// The init container that copies the bridge binary. The companion image has no shell, so the
/// binary copies itself (`mcp-server install DEST`).
pub(super) fn install_container(companion_image: &str, security: SecurityContext) -> Container {
    Container {
        name: INSTALL_CONTAINER.into(),
        image: Some(companion_image.into()),
        command: Some(vec![
            COMPANION_BINARY.into(),
            "install".into(),
            BRIDGE_BINARY.into(),
        ]),
        volume_mounts: Some(vec![VolumeMount {
            name: BRIDGE_VOLUME.into(),
            mount_path: BRIDGE_VOLUME_PATH.into(),
            ..VolumeMount::default()
        }]),
        security_context: Some(security),
        ..Container::default()
    }
}

/// The app container's command for stdio: the user's command after `bridge --`. The user's
/// `args` stay in `args`, which Kubernetes appends, so they follow the command.
pub(super) fn bridged_command(app: &McpApp) -> Vec<String> {
    [BRIDGE_BINARY, "bridge", "--"]
        .into_iter()
        .map(str::to_owned)
        .chain(app.spec.command.iter().cloned())
        .collect()
}

/// Settings for the companion server listening on `port` (built-in, bridge or proxy mode), by
/// its environment variables.
pub(super) fn companion_env(app: &McpApp, port: i32) -> Vec<EnvVar> {
    [
        ("MCP_LISTEN", format!("0.0.0.0:{port}")),
        (
            "MCP_KEEP_ALIVE",
            app.spec.sse.keep_alive_seconds.to_string(),
        ),
        ("MCP_DRAIN_SECONDS", COMPANION_DRAIN_SECONDS.to_string()),
    ]
    .into_iter()
    .map(|(name, value)| EnvVar {
        name: name.into(),
        value: Some(value),
        value_from: None,
    })
    .collect()
}
