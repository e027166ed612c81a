//! Cluster DNS: CoreDNS (`addons/coredns.yaml`) behind the `kube-dns` Service, and the
//! `/etc/resolv.conf` and `/etc/hosts` that a kubelet writes for each pod, so that
//! `NAME.NAMESPACE.svc` resolves in pods and in `testenv exec`.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, PodDNSConfig};
use kube::Client;

use crate::Error;

/// The `kube-dns` Service's ClusterIP.
pub const CLUSTER_DNS: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);
pub const CLUSTER_DOMAIN: &str = "cluster.local";
/// The image `addons/coredns.yaml` runs; the environment maps it to the CoreDNS binary.
pub const COREDNS_IMAGE: &str = "registry.k8s.io/coredns/coredns";
const MANIFEST: &str = include_str!("../addons/coredns.yaml");

/// Applies the CoreDNS add-on and waits until it answers (its Deployment is available).
pub async fn install(client: &Client) -> Result<(), Error> {
    crate::manifests::apply(client, MANIFEST, "kube-system").await?;
    crate::manifests::wait_available(client, "kube-system", "coredns", Duration::from_secs(60))
        .await
}

/// The resolver configuration of `pod` as kubelet renders it for its `dnsPolicy` and
/// `dnsConfig`, or None when the pod uses the machine's own (`dnsPolicy: Default`).
pub fn resolv_conf(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let policy = spec.dns_policy.as_deref().unwrap_or("ClusterFirst");
    let config = spec.dns_config.clone().unwrap_or_default();
    match policy {
        "Default" => None,
        "None" => Some(render(&PodDNSConfig::default(), &config)),
        // ClusterFirst, and ClusterFirstWithHostNet (pods here never use the host's network).
        _ => Some(render(&cluster_first(namespace), &config)),
    }
}

/// What `testenv exec` resolves with: a pod's view from the `default` namespace.
pub fn environment_resolv_conf() -> String {
    render(&cluster_first("default"), &PodDNSConfig::default())
}

fn cluster_first(namespace: &str) -> PodDNSConfig {
    PodDNSConfig {
        nameservers: Some(vec![CLUSTER_DNS.to_string()]),
        searches: Some(vec![
            format!("{namespace}.svc.{CLUSTER_DOMAIN}"),
            format!("svc.{CLUSTER_DOMAIN}"),
            CLUSTER_DOMAIN.to_string(),
        ]),
        options: Some(vec![k8s_openapi::api::core::v1::PodDNSConfigOption {
            name: Some("ndots".into()),
            value: Some("5".into()),
        }]),
    }
}

/// `base` with the pod's `dnsConfig` merged in as kubelet merges it: nameservers and search
/// domains appended (duplicates dropped), options overriding by name.
fn render(base: &PodDNSConfig, pod: &PodDNSConfig) -> String {
    fn merged(a: &Option<Vec<String>>, b: &Option<Vec<String>>) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for s in a.iter().chain(b).flatten() {
            if !out.contains(s) {
                out.push(s.clone());
            }
        }
        out
    }
    let mut text = String::new();
    for ns in merged(&base.nameservers, &pod.nameservers) {
        text += &format!("nameserver {ns}\n");
    }
    let searches = merged(&base.searches, &pod.searches);
    if !searches.is_empty() {
        text += &format!("search {}\n", searches.join(" "));
    }
    let mut options: Vec<(String, Option<String>)> = Vec::new();
    for o in base.options.iter().chain(&pod.options).flatten() {
        let Some(name) = o.name.clone() else { continue };
        options.retain(|(n, _)| *n != name);
        options.push((name, o.value.clone()));
    }
    if !options.is_empty() {
        let rendered: Vec<String> = options
            .into_iter()
            .map(|(n, v)| v.map_or(n.clone(), |v| format!("{n}:{v}")))
            .collect();
        text += &format!("options {}\n", rendered.join(" "));
    }
    text
}

/// The `/etc/hosts` kubelet writes for a pod: loopback names, then the pod's own address.
pub fn hosts(pod_ip: &str, hostname: &str) -> String {
    format!(
        "# Kubernetes-managed hosts file.\n\
         127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         {pod_ip}\t{hostname}\n"
    )
}

/// Writes `content` to `dir/name`, for a bind mount.
pub fn write(dir: &Path, name: &str, content: &str) -> Result<std::path::PathBuf, Error> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let path = dir.join(name);
    std::fs::write(&path, content).map_err(|e| Error::io(&path, e))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodDNSConfigOption, PodSpec};

    fn pod(policy: Option<&str>, config: Option<PodDNSConfig>) -> Pod {
        Pod {
            metadata: kube::api::ObjectMeta {
                namespace: Some("team-a".into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                dns_policy: policy.map(String::from),
                dns_config: config,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn cluster_first_is_what_kubelet_writes() {
        assert_eq!(
            resolv_conf(&pod(None, None)).unwrap(),
            "nameserver 10.96.0.10\n\
             search team-a.svc.cluster.local svc.cluster.local cluster.local\n\
             options ndots:5\n"
        );
    }

    #[test]
    fn dns_config_is_merged_and_options_override_by_name() {
        let config = PodDNSConfig {
            nameservers: Some(vec!["10.96.0.10".into(), "1.1.1.1".into()]),
            searches: Some(vec!["corp.example".into()]),
            options: Some(vec![
                PodDNSConfigOption {
                    name: Some("ndots".into()),
                    value: Some("2".into()),
                },
                PodDNSConfigOption {
                    name: Some("edns0".into()),
                    value: None,
                },
            ]),
        };
        assert_eq!(
            resolv_conf(&pod(Some("ClusterFirst"), Some(config))).unwrap(),
            "nameserver 10.96.0.10\nnameserver 1.1.1.1\n\
             search team-a.svc.cluster.local svc.cluster.local cluster.local corp.example\n\
             options ndots:2 edns0\n"
        );
    }

    #[test]
    fn policy_none_takes_only_the_pods_config_and_default_keeps_the_machines() {
        let config = PodDNSConfig {
            nameservers: Some(vec!["10.0.0.53".into()]),
            ..Default::default()
        };
        assert_eq!(
            resolv_conf(&pod(Some("None"), Some(config))).unwrap(),
            "nameserver 10.0.0.53\n"
        );
        assert_eq!(resolv_conf(&pod(Some("Default"), None)), None);
    }
}
