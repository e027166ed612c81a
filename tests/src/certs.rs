//! The control plane's PKI: one CA, the API server's serving certificate, an admin client
//! certificate, the service-account signing key, and the certificates of the API server ↔ kubelet
//! connection (the kubelet's serving certificate, the API server's client certificate). Written as
//! PEM files into the environment's directory, where the control plane's flags and the kubeconfig
//! point.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};

use crate::Error;
use crate::kubelet::NODE_NAME;
use crate::sandbox::GATEWAY;

/// Paths of the PEM files the control plane is started with.
#[derive(Debug, Clone)]
pub struct Pki {
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub serving_cert: PathBuf,
    pub serving_key: PathBuf,
    pub admin_cert: PathBuf,
    pub admin_key: PathBuf,
    pub service_account_key: PathBuf,
    pub service_account_pub: PathBuf,
    /// The kubelet's serving certificate (SANs: the node's address and name).
    pub kubelet_serving_cert: PathBuf,
    pub kubelet_serving_key: PathBuf,
    /// The client certificate the API server presents to the kubelet (logs).
    pub kubelet_client_cert: PathBuf,
    pub kubelet_client_key: PathBuf,
    /// The CA certificate, admin certificate and key as PEM, for the kubeconfig.
    pub ca_pem: String,
    pub ca_key_pem: String,
    pub admin_cert_pem: String,
    pub admin_key_pem: String,
}

impl Pki {
    /// Generates the PKI into `dir`. `ips` and `dns_names` are the serving certificate's SANs.
    pub fn generate(dir: &Path, ips: &[IpAddr], dns_names: &[&str]) -> Result<Self, Error> {
        let ca = CertifiedIssuer::self_signed(ca_params(), KeyPair::generate()?)?;

        let (serving_cert, serving_key) =
            serving_certificate(&ca, "kube-apiserver", ips, dns_names)?;
        let (kubelet_serving_cert, kubelet_serving_key) =
            serving_certificate(&ca, NODE_NAME, &[GATEWAY.into()], &[NODE_NAME])?;
        // Any client certificate of the CA authenticates to the kubelet; this one is the API
        // server's (`--kubelet-client-certificate`).
        let (kubelet_client_cert, kubelet_client_key) =
            client_certificate(&ca, "kube-apiserver-kubelet-client", &[])?;

        // system:masters bypasses authorization: the admin identity of tests, kubectl and the
        // controller-manager.
        let (admin_cert_pem, admin_key_pem) =
            client_certificate(&ca, "mcp-testenv-admin", &["system:masters"])?;

        let sa_key = KeyPair::generate()?;

        let pki = Pki {
            ca_cert: dir.join("ca.crt"),
            ca_key: dir.join("ca.key"),
            serving_cert: dir.join("apiserver.crt"),
            serving_key: dir.join("apiserver.key"),
            admin_cert: dir.join("admin.crt"),
            admin_key: dir.join("admin.key"),
            service_account_key: dir.join("sa.key"),
            service_account_pub: dir.join("sa.pub"),
            kubelet_serving_cert: dir.join("kubelet.crt"),
            kubelet_serving_key: dir.join("kubelet.key"),
            kubelet_client_cert: dir.join("apiserver-kubelet-client.crt"),
            kubelet_client_key: dir.join("apiserver-kubelet-client.key"),
            ca_pem: ca.pem(),
            ca_key_pem: ca.key().serialize_pem(),
            admin_cert_pem,
            admin_key_pem,
        };
        let files = [
            (&pki.ca_cert, pki.ca_pem.clone()),
            (&pki.ca_key, pki.ca_key_pem.clone()),
            (&pki.serving_cert, serving_cert),
            (&pki.serving_key, serving_key),
            (&pki.admin_cert, pki.admin_cert_pem.clone()),
            (&pki.admin_key, pki.admin_key_pem.clone()),
            (&pki.service_account_key, sa_key.serialize_pem()),
            (&pki.service_account_pub, sa_key.public_key_pem()),
            (&pki.kubelet_serving_cert, kubelet_serving_cert),
            (&pki.kubelet_serving_key, kubelet_serving_key),
            (&pki.kubelet_client_cert, kubelet_client_cert),
            (&pki.kubelet_client_key, kubelet_client_key),
        ];
        for (path, pem) in files {
            std::fs::write(path, pem).map_err(|e| Error::io(path, e))?;
        }
        Ok(pki)
    }
}

impl Pki {
    /// A client certificate and key (PEM) for `user` in `groups`, signed by the CA.
    pub fn user_certificate(&self, user: &str, groups: &[&str]) -> Result<(String, String), Error> {
        // The CA's parameters are fixed, so its issuer is rebuilt from them and its key.
        let ca = Issuer::new(ca_params(), KeyPair::from_pem(&self.ca_key_pem)?);
        client_certificate(&ca, user, groups)
    }
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = name("mcp-testenv-ca", None);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// A serving certificate and key (PEM) for `ips` and `dns_names`, signed by the CA.
fn serving_certificate(
    ca: &Issuer<'_, KeyPair>,
    common_name: &str,
    ips: &[IpAddr],
    dns_names: &[&str],
) -> Result<(String, String), Error> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    params.distinguished_name = name(common_name, None);
    params.subject_alt_names = ips
        .iter()
        .map(|ip| SanType::IpAddress(*ip))
        .chain(
            dns_names
                .iter()
                .map(|n| Ok::<_, rcgen::Error>(SanType::DnsName((*n).try_into()?)))
                .collect::<Result<Vec<_>, _>>()?,
        )
        .collect();
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, ca)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Kubernetes reads the user from the CN and the groups from the O entries.
fn client_certificate(
    ca: &Issuer<'_, KeyPair>,
    user: &str,
    groups: &[&str],
) -> Result<(String, String), Error> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, user);
    for group in groups {
        dn.push(DnType::OrganizationName, *group);
    }
    params.distinguished_name = dn;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, ca)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn name(common_name: &str, organization: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    if let Some(o) = organization {
        dn.push(DnType::OrganizationName, o);
    }
    dn
}
