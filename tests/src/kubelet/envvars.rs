//! A container's environment, resolved the way kubelet does it: the `kubernetes` Service
//! variables, then `envFrom` in order, then `env` in order, each value able to refer to the ones
//! before it with `$(VAR)`. The same expansion applies to `command` and `args`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Container, ObjectFieldSelector, Pod, Secret};
use kube::{Api, Client};

/// A reason the container cannot be created yet (kubelet's `CreateContainerConfigError`).
pub type ConfigError = String;

/// Values of the pod that `fieldRef` can select and that are known only at run time.
pub struct RuntimeFields<'a> {
    pub pod_ip: &'a str,
    pub host_ip: &'a str,
    pub node_name: &'a str,
}

/// Resolves the environment of `container`. `base` holds the variables every container gets.
pub async fn resolve(
    client: &Client,
    pod: &Pod,
    container: &Container,
    fields: &RuntimeFields<'_>,
    base: &[(String, String)],
) -> Result<Vec<(String, String)>, ConfigError> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let mut lookup = Lookup::new(client, ns);
    let mut env = Env::default();
    for (k, v) in base {
        env.set(k, v.clone());
    }
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.as_deref().unwrap_or("");
        let data = if let Some(r) = &from.config_map_ref {
            lookup
                .config_map(&r.name, r.optional.unwrap_or(false))
                .await?
        } else if let Some(r) = &from.secret_ref {
            lookup.secret(&r.name, r.optional.unwrap_or(false)).await?
        } else {
            continue;
        };
        for (k, v) in data {
            env.set(&format!("{prefix}{k}"), v);
        }
    }
    for var in container.env.iter().flatten() {
        let value = match &var.value_from {
            None => expand(var.value.as_deref().unwrap_or(""), &env.map),
            Some(source) => {
                if let Some(r) = &source.secret_key_ref {
                    let optional = r.optional.unwrap_or(false);
                    match lookup.secret(&r.name, optional).await?.remove(&r.key) {
                        Some(v) => v,
                        None if optional => continue,
                        None => {
                            return Err(format!(
                                "couldn't find key {} in Secret {ns}/{}",
                                r.key, r.name
                            ));
                        }
                    }
                } else if let Some(r) = &source.config_map_key_ref {
                    let optional = r.optional.unwrap_or(false);
                    match lookup.config_map(&r.name, optional).await?.remove(&r.key) {
                        Some(v) => v,
                        None if optional => continue,
                        None => {
                            return Err(format!(
                                "couldn't find key {} in ConfigMap {ns}/{}",
                                r.key, r.name
                            ));
                        }
                    }
                } else if let Some(r) = &source.field_ref {
                    field_value(pod, r, fields)?
                } else if let Some(r) = &source.resource_field_ref {
                    let resources = container.resources.as_ref();
                    let (kind, name) = r.resource.split_once('.').unwrap_or(("", ""));
                    let list = match kind {
                        "limits" => resources.and_then(|r| r.limits.as_ref()),
                        "requests" => resources.and_then(|r| r.requests.as_ref()),
                        _ => None,
                    };
                    list.and_then(|l| l.get(name))
                        .map(|q| q.0.clone())
                        .unwrap_or_else(|| "0".into())
                } else {
                    continue;
                }
            }
        };
        env.set(&var.name, value);
    }
    Ok(env.into_vec())
}

/// The value a `fieldRef` selects.
pub fn field_value(
    pod: &Pod,
    selector: &ObjectFieldSelector,
    fields: &RuntimeFields<'_>,
) -> Result<String, ConfigError> {
    let meta = &pod.metadata;
    let path = selector.field_path.as_str();
    let keyed = |prefix: &str, map: Option<&BTreeMap<String, String>>| {
        path.strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix("']"))
            .map(|key| map.and_then(|m| m.get(key)).cloned().unwrap_or_default())
    };
    let value = match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "spec.nodeName" => fields.node_name.to_string(),
        "spec.serviceAccountName" => pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.podIP" | "status.podIPs" => fields.pod_ip.to_string(),
        "status.hostIP" | "status.hostIPs" => fields.host_ip.to_string(),
        _ => keyed("metadata.labels['", meta.labels.as_ref())
            .or_else(|| keyed("metadata.annotations['", meta.annotations.as_ref()))
            .ok_or_else(|| format!("unsupported fieldRef {path}"))?,
    };
    Ok(value)
}

/// Expands `$(VAR)` from `vars`; `$$` is a literal `$`; an unknown `$(VAR)` stays as written.
pub fn expand(input: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('(')
            && let Some(end) = body.find(')')
        {
            let name = &body[..end];
            match vars.get(name) {
                Some(value) => out.push_str(value),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Variables in definition order, a later definition replacing an earlier one in place.
#[derive(Default)]
struct Env {
    order: Vec<String>,
    map: BTreeMap<String, String>,
}

impl Env {
    fn set(&mut self, key: &str, value: String) {
        if self.map.insert(key.to_string(), value).is_none() {
            self.order.push(key.to_string());
        }
    }

    fn into_vec(mut self) -> Vec<(String, String)> {
        self.order
            .into_iter()
            .filter_map(|k| self.map.remove(&k).map(|v| (k, v)))
            .collect()
    }
}

/// Reads each ConfigMap and Secret once per resolution.
struct Lookup<'a> {
    client: &'a Client,
    ns: &'a str,
    config_maps: BTreeMap<String, Option<BTreeMap<String, String>>>,
    secrets: BTreeMap<String, Option<BTreeMap<String, String>>>,
}

impl<'a> Lookup<'a> {
    fn new(client: &'a Client, ns: &'a str) -> Self {
        Lookup {
            client,
            ns,
            config_maps: BTreeMap::new(),
            secrets: BTreeMap::new(),
        }
    }

    async fn config_map(
        &mut self,
        name: &str,
        optional: bool,
    ) -> Result<BTreeMap<String, String>, ConfigError> {
        if !self.config_maps.contains_key(name) {
            let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), self.ns);
            let cm = api.get_opt(name).await.map_err(|e| e.to_string())?;
            self.config_maps
                .insert(name.into(), cm.map(|cm| cm.data.unwrap_or_default()));
        }
        found(
            &self.config_maps[name],
            "configmap",
            self.ns,
            name,
            optional,
        )
    }

    async fn secret(
        &mut self,
        name: &str,
        optional: bool,
    ) -> Result<BTreeMap<String, String>, ConfigError> {
        if !self.secrets.contains_key(name) {
            let api: Api<Secret> = Api::namespaced(self.client.clone(), self.ns);
            let secret = api.get_opt(name).await.map_err(|e| e.to_string())?;
            self.secrets.insert(
                name.into(),
                secret.map(|s| {
                    s.data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                        .collect()
                }),
            );
        }
        found(&self.secrets[name], "secret", self.ns, name, optional)
    }
}

fn found(
    data: &Option<BTreeMap<String, String>>,
    kind: &str,
    ns: &str,
    name: &str,
    optional: bool,
) -> Result<BTreeMap<String, String>, ConfigError> {
    match data {
        Some(d) => Ok(d.clone()),
        None if optional => Ok(BTreeMap::new()),
        None => Err(format!("{kind} \"{name}\" not found in namespace {ns}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn expands_known_variables_and_keeps_unknown_ones() {
        let v = vars(&[("PORT", "8080"), ("HOST", "0.0.0.0")]);
        assert_eq!(
            expand("--listen=$(HOST):$(PORT)", &v),
            "--listen=0.0.0.0:8080"
        );
        assert_eq!(expand("$(MISSING)/x", &v), "$(MISSING)/x");
    }

    #[test]
    fn double_dollar_escapes_a_reference() {
        let v = vars(&[("A", "1")]);
        assert_eq!(expand("$$(A) $(A) $$ $", &v), "$(A) 1 $ $");
        assert_eq!(expand("$(unterminated", &v), "$(unterminated");
    }

    #[test]
    fn later_definitions_replace_earlier_ones_in_place() {
        let mut env = Env::default();
        env.set("A", "1".into());
        env.set("B", "2".into());
        env.set("A", "3".into());
        assert_eq!(
            env.into_vec(),
            vec![("A".into(), "3".into()), ("B".into(), "2".into())]
        );
    }

    #[test]
    fn field_refs_select_pod_metadata_and_runtime_values() {
        let mut pod = Pod::default();
        pod.metadata.name = Some("web-0".into());
        pod.metadata.namespace = Some("apps".into());
        pod.metadata.labels = Some(vars(&[("tier", "front")]));
        let fields = RuntimeFields {
            pod_ip: "10.244.0.7",
            host_ip: "10.244.0.1",
            node_name: "n",
        };
        let sel = |p: &str| ObjectFieldSelector {
            field_path: p.into(),
            ..Default::default()
        };
        assert_eq!(
            field_value(&pod, &sel("metadata.name"), &fields).unwrap(),
            "web-0"
        );
        assert_eq!(
            field_value(&pod, &sel("metadata.namespace"), &fields).unwrap(),
            "apps"
        );
        assert_eq!(
            field_value(&pod, &sel("status.podIP"), &fields).unwrap(),
            "10.244.0.7"
        );
        assert_eq!(
            field_value(&pod, &sel("metadata.labels['tier']"), &fields).unwrap(),
            "front"
        );
        assert!(field_value(&pod, &sel("spec.bogus"), &fields).is_err());
    }
}
