//! Where the control plane's binaries live: built by `tests/controlplane/build.sh` into the cache
//! directory, one folder per component and version (`tests/versions.env`).

use std::path::PathBuf;

use crate::Error;

const VERSIONS: &str = include_str!("../versions.env");

/// A version from `tests/versions.env`, e.g. `version("KUBERNETES_VERSION")`.
pub fn version(key: &str) -> &'static str {
    VERSIONS
        .lines()
        .filter_map(|line| line.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim())
        .unwrap_or_else(|| panic!("tests/versions.env has no {key}"))
}

/// The cache directory: `$MCP_OPERATOR_CACHE`, else `~/.cache/mcp-operator`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MCP_OPERATOR_CACHE") {
        return dir.into();
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".cache/mcp-operator")
}

/// Paths of the control plane's executables.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub etcd: PathBuf,
    pub kube_apiserver: PathBuf,
    pub kube_controller_manager: PathBuf,
    pub kube_proxy: PathBuf,
    pub kubectl: PathBuf,
    pub helm: PathBuf,
    pub coredns: PathBuf,
    pub traefik: PathBuf,
}

impl Binaries {
    /// Finds the binaries of the pinned versions, or says how to build them.
    pub fn locate() -> Result<Self, Error> {
        let cache = cache_dir();
        let k8s = cache.join(format!("kubernetes-v{}", version("KUBERNETES_VERSION")));
        let bins = Binaries {
            etcd: cache
                .join(format!("etcd-v{}", version("ETCD_VERSION")))
                .join("etcd"),
            kube_apiserver: k8s.join("kube-apiserver"),
            kube_controller_manager: k8s.join("kube-controller-manager"),
            kube_proxy: k8s.join("kube-proxy"),
            kubectl: k8s.join("kubectl"),
            helm: cache
                .join(format!("helm-v{}", version("HELM_VERSION")))
                .join("helm"),
            coredns: cache
                .join(format!("coredns-v{}", version("COREDNS_VERSION")))
                .join("coredns"),
            traefik: cache
                .join(format!("traefik-v{}", version("TRAEFIK_VERSION")))
                .join("traefik"),
        };
        for path in [
            &bins.etcd,
            &bins.kube_apiserver,
            &bins.kube_controller_manager,
            &bins.kube_proxy,
            &bins.kubectl,
            &bins.helm,
            &bins.coredns,
            &bins.traefik,
        ] {
            if !path.is_file() {
                return Err(Error::MissingBinary(path.clone()));
            }
        }
        Ok(bins)
    }
}

/// The pinned helm alone, for tests that render or lint charts without a control plane.
pub fn helm() -> Result<PathBuf, Error> {
    let path = cache_dir()
        .join(format!("helm-v{}", version("HELM_VERSION")))
        .join("helm");
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::MissingBinary(path))
    }
}

/// The pinned Ory Hydra, the authorization server of the OAuth tests
/// (`tests/controlplane/build.sh hydra`).
pub fn hydra() -> Result<PathBuf, Error> {
    let path = cache_dir()
        .join(format!("hydra-v{}", version("HYDRA_VERSION")))
        .join("hydra");
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::MissingComponent(path, "hydra"))
    }
}

/// A binary of this workspace (`mcp-server`, `mcp-operator`), from the target directory the
/// running test was built in. `cargo test --workspace` builds every package's binaries.
pub fn workspace_binary(name: &str) -> Result<PathBuf, Error> {
    let exe = std::env::current_exe().map_err(|e| Error::io("current executable", e))?;
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join(name))
        .ok_or_else(|| Error::MissingWorkspaceBinary(name.into()))?;
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::MissingWorkspaceBinary(name.into()))
    }
}

/// The Gateway API CRDs of the pinned version: the `standard` or the `experimental` channel.
pub fn gateway_api_crds(channel: &str) -> Result<PathBuf, Error> {
    let dir = cache_dir()
        .join(format!("gateway-api-v{}", version("GATEWAY_API_VERSION")))
        .join(channel);
    if dir.is_dir() {
        Ok(dir)
    } else {
        Err(Error::MissingBinary(dir))
    }
}

/// The directory holding the pinned prometheus-operator's ServiceMonitor CRD.
pub fn service_monitor_crd() -> Result<PathBuf, Error> {
    let dir = cache_dir().join(format!(
        "prometheus-operator-v{}",
        version("PROMETHEUS_OPERATOR_VERSION")
    ));
    if dir.join("servicemonitors.yaml").is_file() {
        Ok(dir)
    } else {
        Err(Error::MissingBinary(dir))
    }
}
