//! The ingress controller: Traefik (`addons/traefik.yaml`) with its Kubernetes Ingress and
//! Gateway API providers, installed as a cluster runs it, its Service's port forwarded to the
//! invoking shell's loopback so that `http://NAME.localhost:PORT/` reaches an app's Ingress or
//! HTTPRoute from the machine.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use kube::Client;

use crate::Error;

/// The image `addons/traefik.yaml` runs; the environment maps it to the Traefik binary.
pub const TRAEFIK_IMAGE: &str = "traefik";
/// The `traefik` Service's ClusterIP and port: what the loopback port forwards to, through
/// kube-proxy like any client's traffic.
pub const SERVICE: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::new(10, 96, 0, 80)), 80);
/// The same Service's TLS port (entry point `websecure`), inside the environment only.
pub const SERVICE_TLS: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::new(10, 96, 0, 80)), 443);
/// The IngressClass and GatewayClass the add-on installs, and its Gateway (namespace `traefik`).
pub const CLASS: &str = "traefik";
pub const GATEWAY: &str = "traefik-gateway";
const MANIFEST: &str = include_str!("../addons/traefik.yaml");

/// Installs the Gateway API CRDs (experimental channel, a superset of the standard one) and
/// Traefik, and waits until Traefik is ready.
pub async fn install(client: &Client) -> Result<(), Error> {
    let crds = crate::binaries::gateway_api_crds("experimental")?;
    crate::manifests::apply_dir(client, &crds, "default").await?;
    crate::manifests::apply(client, MANIFEST, "traefik").await?;
    crate::manifests::wait_available(client, "traefik", "traefik", Duration::from_secs(90)).await
}
