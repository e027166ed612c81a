//! The control plane's PKI: one CA, the API server's serving certificate, an admin client
//! certificate, and the service-account signing key. Written as PEM files into the environment's
//! directory, where the control plane's flags and the kubeconfig point.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};

use crate::Error;

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

        let serving_key = KeyPair::generate()?;
        let mut serving = CertificateParams::default();
        serving.distinguished_name = name("kube-apiserver", None);
        serving.subject_alt_names = ips
            .iter()
            .map(|ip| SanType::IpAddress(*ip))
            .chain(
                dns_names
                    .iter()
                    .map(|n| Ok::<_, rcgen::Error>(SanType::DnsName((*n).try_into()?)))
                    .collect::<Result<Vec<_>, _>>()?,
            )
            .collect();
        serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let serving_cert = serving.signed_by(&serving_key, &ca)?;

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
            ca_pem: ca.pem(),
            ca_key_pem: ca.key().serialize_pem(),
            admin_cert_pem,
            admin_key_pem,
        };
        let files = [
            (&pki.ca_cert, pki.ca_pem.clone()),
            (&pki.ca_key, pki.ca_key_pem.clone()),
            (&pki.serving_cert, serving_cert.pem()),
            (&pki.serving_key, serving_key.serialize_pem()),
            (&pki.admin_cert, pki.admin_cert_pem.clone()),
            (&pki.admin_key, pki.admin_key_pem.clone()),
            (&pki.service_account_key, sa_key.serialize_pem()),
            (&pki.service_account_pub, sa_key.public_key_pem()),
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
