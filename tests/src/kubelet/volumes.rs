//! Pod volumes as real directories under the pod's folder: emptyDir, secret, configMap,
//! downwardAPI, projected (with service-account tokens from the TokenRequest API) and hostPath.
//! Containers see them at their `mountPath` through bind mounts (see `container`).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use k8s_openapi::ByteString;
use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, DownwardAPIVolumeFile, KeyToPath, Pod, Secret, ServiceAccount, Volume,
};
use kube::api::PostParams;
use kube::{Api, Client};

use super::envvars::{RuntimeFields, field_value};

/// A volume ready to be mounted.
#[derive(Debug, Clone)]
pub struct PreparedVolume {
    pub path: PathBuf,
    /// Secret, configMap, downwardAPI and projected volumes are always mounted read-only.
    pub read_only: bool,
}

/// Writes every volume of `pod` under `dir`; a message says what is missing when it cannot.
pub async fn prepare(
    client: &Client,
    pod: &Pod,
    dir: &Path,
    fields: &RuntimeFields<'_>,
) -> Result<BTreeMap<String, PreparedVolume>, String> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let mut out = BTreeMap::new();
    let volumes = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.clone())
        .unwrap_or_default();
    for volume in &volumes {
        let path = dir.join(&volume.name);
        let read_only = prepare_one(client, pod, ns, volume, &path, fields).await?;
        out.insert(volume.name.clone(), PreparedVolume { path, read_only });
    }
    Ok(out)
}

async fn prepare_one(
    client: &Client,
    pod: &Pod,
    ns: &str,
    volume: &Volume,
    path: &Path,
    fields: &RuntimeFields<'_>,
) -> Result<bool, String> {
    if let Some(host) = &volume.host_path {
        // A hostPath is the machine's own path: mount it directly.
        std::fs::create_dir_all(&host.path).map_err(|e| format!("hostPath {}: {e}", host.path))?;
        std::os::unix::fs::symlink(&host.path, path)
            .or_else(ignore_exists)
            .map_err(|e| e.to_string())?;
        return Ok(false);
    }
    fresh_dir(path)?;
    if volume.empty_dir.is_some() {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777))
            .map_err(|e| e.to_string())?;
        return Ok(false);
    }
    let mut files = Files::default();
    if let Some(s) = &volume.secret {
        let name = s.secret_name.as_deref().unwrap_or_default();
        files
            .source::<Secret>(
                client,
                ns,
                name,
                Source {
                    items: s.items.as_deref(),
                    optional: s.optional,
                    mode: s.default_mode,
                },
            )
            .await?;
    } else if let Some(c) = &volume.config_map {
        files
            .source::<ConfigMap>(
                client,
                ns,
                &c.name,
                Source {
                    items: c.items.as_deref(),
                    optional: c.optional,
                    mode: c.default_mode,
                },
            )
            .await?;
    } else if let Some(d) = &volume.downward_api {
        files.downward(
            pod,
            d.items.as_deref().unwrap_or_default(),
            d.default_mode,
            fields,
        )?;
    } else if let Some(p) = &volume.projected {
        for source in p.sources.iter().flatten() {
            if let Some(s) = &source.secret {
                files
                    .source::<Secret>(
                        client,
                        ns,
                        &s.name,
                        Source {
                            items: s.items.as_deref(),
                            optional: s.optional,
                            mode: p.default_mode,
                        },
                    )
                    .await?;
            }
            if let Some(c) = &source.config_map {
                files
                    .source::<ConfigMap>(
                        client,
                        ns,
                        &c.name,
                        Source {
                            items: c.items.as_deref(),
                            optional: c.optional,
                            mode: p.default_mode,
                        },
                    )
                    .await?;
            }
            if let Some(d) = &source.downward_api {
                files.downward(
                    pod,
                    d.items.as_deref().unwrap_or_default(),
                    p.default_mode,
                    fields,
                )?;
            }
            if let Some(t) = &source.service_account_token {
                let token = service_account_token(
                    client,
                    pod,
                    t.audience.clone(),
                    t.expiration_seconds.unwrap_or(3600),
                )
                .await?;
                files.add(&t.path, token.into_bytes(), p.default_mode);
            }
        }
    } else {
        return Err(format!(
            "volume {:?}: this type is not supported by the test kubelet",
            volume.name
        ));
    }
    files.write(path)?;
    Ok(true)
}

/// Which keys of a Secret or ConfigMap a volume takes, and how.
struct Source<'a> {
    items: Option<&'a [KeyToPath]>,
    optional: Option<bool>,
    mode: Option<i32>,
}

/// Secrets and ConfigMaps: objects whose keys become files.
trait KeyedData:
    kube::Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
    + Clone
    + serde::de::DeserializeOwned
    + std::fmt::Debug
{
    const WHAT: &'static str;
    fn into_data(self) -> BTreeMap<String, Vec<u8>>;
}

impl KeyedData for Secret {
    const WHAT: &'static str = "secret";
    fn into_data(self) -> BTreeMap<String, Vec<u8>> {
        let data = self.data.unwrap_or_default().into_iter();
        data.map(|(k, ByteString(v))| (k, v)).collect()
    }
}

impl KeyedData for ConfigMap {
    const WHAT: &'static str = "configmap";
    fn into_data(self) -> BTreeMap<String, Vec<u8>> {
        let text = self.data.unwrap_or_default().into_iter();
        let mut data: BTreeMap<String, Vec<u8>> = text.map(|(k, v)| (k, v.into_bytes())).collect();
        for (k, ByteString(v)) in self.binary_data.unwrap_or_default() {
            data.insert(k, v);
        }
        data
    }
}

/// Files of a volume, relative path → (content, mode).
#[derive(Default)]
struct Files(BTreeMap<String, (Vec<u8>, i32)>);

impl Files {
    fn add(&mut self, path: &str, content: Vec<u8>, mode: Option<i32>) {
        self.0
            .insert(path.to_string(), (content, mode.unwrap_or(0o644)));
    }

    fn keyed(
        &mut self,
        data: BTreeMap<String, Vec<u8>>,
        items: Option<&[KeyToPath]>,
        mode: Option<i32>,
        what: &str,
    ) -> Result<(), String> {
        match items {
            None => {
                for (k, v) in data {
                    self.add(&k, v, mode);
                }
            }
            Some(items) => {
                for item in items {
                    let value = data
                        .get(&item.key)
                        .ok_or_else(|| format!("{what} has no key {:?}", item.key))?;
                    self.add(&item.path, value.clone(), item.mode.or(mode));
                }
            }
        }
        Ok(())
    }

    /// Adds the keys of a Secret or ConfigMap (`source`), as `items` selects them.
    async fn source<K: KeyedData>(
        &mut self,
        client: &Client,
        ns: &str,
        name: &str,
        source: Source<'_>,
    ) -> Result<(), String> {
        let api: Api<K> = Api::namespaced(client.clone(), ns);
        match api.get_opt(name).await.map_err(|e| e.to_string())? {
            Some(object) => {
                let what = format!("{} {name:?}", K::WHAT);
                self.keyed(object.into_data(), source.items, source.mode, &what)
            }
            None if source.optional == Some(true) => Ok(()),
            None => Err(format!("{} \"{name}\" not found", K::WHAT)),
        }
    }

    fn downward(
        &mut self,
        pod: &Pod,
        items: &[DownwardAPIVolumeFile],
        mode: Option<i32>,
        fields: &RuntimeFields<'_>,
    ) -> Result<(), String> {
        for item in items {
            let Some(selector) = &item.field_ref else {
                return Err(format!(
                    "downwardAPI item {:?}: only fieldRef is supported",
                    item.path
                ));
            };
            let value = field_value(pod, selector, fields)?;
            self.add(&item.path, value.into_bytes(), item.mode.or(mode));
        }
        Ok(())
    }

    fn write(self, dir: &Path) -> Result<(), String> {
        for (rel, (content, mode)) in self.0 {
            let file = dir.join(&rel);
            if let Some(parent) = file.parent() {
                std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
            }
            std::fs::write(&file, content).map_err(|e| format!("{}: {e}", file.display()))?;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode as u32 & 0o777))
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// A token for the pod's ServiceAccount, bound to the pod, from the TokenRequest API.
async fn service_account_token(
    client: &Client,
    pod: &Pod,
    audience: Option<String>,
    expiration_seconds: i64,
) -> Result<String, String> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let sa = pod
        .spec
        .as_ref()
        .and_then(|s| s.service_account_name.as_deref())
        .unwrap_or("default");
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: audience.map(|a| vec![a]),
            expiration_seconds: Some(expiration_seconds),
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: pod.metadata.name.clone(),
                uid: pod.metadata.uid.clone(),
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    let response = api
        .create_token_request(sa, &PostParams::default(), &request)
        .await
        .map_err(|e| format!("token for serviceaccount {ns}/{sa}: {e}"))?;
    Ok(response.status.and_then(|s| s.token).unwrap_or_default())
}

fn fresh_dir(path: &Path) -> Result<(), String> {
    if path.exists() {
        std::fs::remove_dir_all(path).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    std::fs::create_dir_all(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn ignore_exists(e: std::io::Error) -> std::io::Result<()> {
    if e.kind() == std::io::ErrorKind::AlreadyExists {
        Ok(())
    } else {
        Err(e)
    }
}
