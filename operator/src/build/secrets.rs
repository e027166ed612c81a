//! `spec.secrets` as container environment and read-only volumes.

use k8s_openapi::api::core::v1::{
    EnvFromSource, EnvVar, EnvVarSource, KeyToPath, SecretEnvSource, SecretKeySelector,
    SecretVolumeSource, Volume, VolumeMount,
};

use crate::api::SecretsSpec;

/// How the container sees its Secrets.
#[derive(Default)]
pub(super) struct SecretWiring {
    pub env: Vec<EnvVar>,
    pub env_from: Vec<EnvFromSource>,
    pub volumes: Vec<Volume>,
    pub mounts: Vec<VolumeMount>,
}

/// Volumes are named by position: Secret names can be longer than a volume name may be.
pub(super) fn secret_wiring(secrets: Option<&SecretsSpec>) -> SecretWiring {
    let Some(secrets) = secrets else {
        return SecretWiring::default();
    };
    let env = secrets
        .env
        .iter()
        .map(|var| EnvVar {
            name: var.name.clone(),
            value: None,
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: var.secret_name.clone(),
                    key: var.key.clone(),
                    optional: Some(false),
                }),
                ..EnvVarSource::default()
            }),
        })
        .collect();
    let env_from = secrets
        .env_from
        .iter()
        .map(|from| EnvFromSource {
            prefix: from.prefix.clone(),
            secret_ref: Some(SecretEnvSource {
                name: from.secret_name.clone(),
                optional: Some(false),
            }),
            config_map_ref: None,
        })
        .collect();
    let (volumes, mounts) = secrets
        .files
        .iter()
        .enumerate()
        .map(|(index, files)| {
            let name = format!("secret-{index}");
            let items = files
                .items
                .iter()
                .map(|item| KeyToPath {
                    key: item.key.clone(),
                    path: item.path.clone(),
                    ..KeyToPath::default()
                })
                .collect::<Vec<_>>();
            let volume = Volume {
                name: name.clone(),
                secret: Some(SecretVolumeSource {
                    secret_name: Some(files.secret_name.clone()),
                    items: (!items.is_empty()).then_some(items),
                    optional: Some(false),
                    ..SecretVolumeSource::default()
                }),
                ..Volume::default()
            };
            let mount = VolumeMount {
                name,
                mount_path: files.mount_path.clone(),
                read_only: Some(true),
                ..VolumeMount::default()
            };
            (volume, mount)
        })
        .unzip();
    SecretWiring {
        env,
        env_from,
        volumes,
        mounts,
    }
}
