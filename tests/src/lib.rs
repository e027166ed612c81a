//! `mcp-testenv`: a real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager,
//! built from their Go modules) plus a process kubelet that runs each container as a local
//! process with its own network namespace and pod IP, all inside a private network of the test
//! run. See `docs/testing.md`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), mcp_testenv::Error> {
//! let env = mcp_testenv::TestEnv::builder()
//!     .image("python:3", ["python3", "-m", "http.server"])
//!     .start()
//!     .await?;
//! let pods: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::default_namespaced(env.client());
//! # Ok(()) }
//! ```

pub mod audit;
pub mod binaries;
pub mod certs;
pub mod controlplane;
pub mod dns;
mod env;
pub mod http;
pub mod hydra;
pub mod images;
pub mod ingress;
pub mod kube_proxy;
pub mod kubelet;
pub mod manifests;
pub mod mcp;
pub mod process;
pub mod sandbox;
pub mod wait;

pub use binaries::workspace_binary;
pub use env::{TestEnv, TestEnvBuilder, join_network_command};
pub use images::ImageMap;

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0} not found: run tests/controlplane/build.sh to build the control plane")]
    MissingBinary(PathBuf),
    #[error("{0} not found: run `bash tests/controlplane/build.sh {1}` to build it")]
    MissingComponent(PathBuf, &'static str),
    #[error(
        "binary {0} of this workspace is not built: run the tests with `cargo test --workspace`"
    )]
    MissingWorkspaceBinary(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("cannot start {0}: {1}")]
    Spawn(String, std::io::Error),
    #[error("{name} exited ({status}); last lines of its log:\n{log}")]
    ProcessExited {
        name: String,
        status: String,
        log: String,
    },
    #[error("timed out waiting for {0}")]
    Timeout(String),
    #[error("Hydra: {0}")]
    Hydra(String),
    #[error("sandbox: {0}")]
    Sandbox(String),
    #[error("certificates: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("kubeconfig: {0}")]
    Kubeconfig(#[from] kube::config::KubeconfigError),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("manifest: {0}")]
    Manifest(String),
    #[error("invalid image map entry {0:?}: expected IMAGE=COMMAND")]
    ImageMap(String),
    #[error("invalid image file entry {0:?}: expected IMAGE=/PATH/IN/IMAGE=HOST_FILE")]
    ImageFile(String),
}

impl Error {
    pub(crate) fn io(context: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.as_ref().display().to_string(),
            source,
        }
    }
}
