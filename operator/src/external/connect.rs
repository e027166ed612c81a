//! The HTTP client of one external handshake: TLS verified against the system's CA
//! certificates plus the app's optional CA bundle, name resolution through the system resolver
//! or the operator's `--external-probe-resolve` overrides, redirects never followed. What the
//! connection showed on the way (the server's certificate, the verifier's verdict, a failed
//! name lookup) is kept in a [`Seen`], so a failure can be told apart by cause and the
//! certificate's expiry is known even when it was refused.
//!
//! Each handshake gets its own client: the connection is never reused, so every handshake sees
//! the certificate the server presents now.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use k8s_openapi::jiff::Timestamp;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use crate::text::clip;

/// Bytes of a CA bundle read from a Secret at most: hundreds of certificates.
pub const MAX_CA_BUNDLE_BYTES: usize = 256 * 1024;
/// Certificates of a CA bundle used at most.
const MAX_CA_BUNDLE_CERTS: usize = 500;
/// Names of a certificate quoted in a message at most, and the bytes of each.
const NAMES_QUOTED: usize = 4;
const NAME_BYTES: usize = 64;

/// What every external handshake shares: the system's trust anchors (read once) and the name
/// overrides from the command line.
#[derive(Clone)]
pub struct Connect {
    provider: Arc<CryptoProvider>,
    system_roots: Arc<RootCertStore>,
    overrides: Arc<Vec<(String, SocketAddr)>>,
}

/// What one connection showed, filled in while it is made.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// The certificate the server presented.
    pub peer: Option<Peer>,
    /// Why the verifier refused it.
    pub refused: Option<rustls::Error>,
    /// Why the host name did not resolve.
    pub dns: Option<String>,
}

/// The server's (end-entity) certificate, as far as messages and the status need it.
#[derive(Debug, Clone, PartialEq)]
pub struct Peer {
    pub not_after: Option<Timestamp>,
    /// Whether it names the host that was asked for.
    pub valid_for_host: bool,
    /// Its DNS names (or its subject's common name), clipped, for messages.
    pub names: Vec<String>,
    /// Its issuer's common name, clipped.
    pub issuer: String,
}

type Shared = Arc<Mutex<Seen>>;

fn lock(seen: &Shared) -> std::sync::MutexGuard<'_, Seen> {
    // A panicking holder cannot leave half of a record that matters.
    seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Connect {
    /// Reads the system's CA certificates (the image's `/etc/ssl/certs`, or `SSL_CERT_FILE`);
    /// `overrides` send a host name to a fixed address, like curl's `--resolve`.
    pub fn new(overrides: Vec<(String, SocketAddr)>) -> Self {
        let mut roots = RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::warn!("reading the system's CA certificates: {e}");
        }
        let (added, ignored) = roots.add_parsable_certificates(found.certs);
        tracing::info!(
            added,
            ignored,
            "system CA certificates for external handshakes"
        );
        Self::with_roots(roots, overrides)
    }

    /// Trusts exactly `roots` besides each app's CA bundle.
    pub fn with_roots(roots: RootCertStore, overrides: Vec<(String, SocketAddr)>) -> Self {
        Connect {
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            system_roots: Arc::new(roots),
            overrides: Arc::new(
                overrides
                    .into_iter()
                    .map(|(host, addr)| (host.to_ascii_lowercase(), addr))
                    .collect(),
            ),
        }
    }

    /// A client for one handshake, trusting `ca_bundle` (PEM) too, recording into the returned
    /// [`Seen`] what the connection shows. Fails on a CA bundle without usable certificates.
    pub fn client(
        &self,
        ca_bundle: Option<&[u8]>,
    ) -> Result<(reqwest::Client, Arc<Mutex<Seen>>), String> {
        let mut roots = (*self.system_roots).clone();
        if let Some(pem) = ca_bundle {
            add_bundle(&mut roots, pem)?;
        }
        if roots.is_empty() {
            return Err(
                "no CA certificate to verify the server with: the operator found none \
                        in the system's store and the app sets no caBundleSecretRef"
                    .into(),
            );
        }
        let inner =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                .build()
                .map_err(|e| format!("the TLS verifier cannot be built: {e}"))?;
        let seen = Shared::default();
        let verifier = Watching {
            inner,
            seen: seen.clone(),
        };
        let tls = rustls::ClientConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS versions: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        let mut builder = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            // A fresh connection each time: the certificate is looked at on every handshake.
            .pool_max_idle_per_host(0)
            // The public URL is reached directly; a proxy would hide which step failed.
            .no_proxy()
            // A redirect is a failed handshake, never a new target.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(crate::probe::user_agent())
            .dns_resolver(Arc::new(SystemDns { seen: seen.clone() }));
        for (host, addr) in self.overrides.iter() {
            builder = builder.resolve(host, *addr);
        }
        let client = builder
            .build()
            .map_err(|e| format!("the HTTP client cannot be built: {e}"))?;
        Ok((client, seen))
    }
}

/// Adds the certificates of a PEM bundle; fails when it holds none that can be used.
fn add_bundle(roots: &mut RootCertStore, pem: &[u8]) -> Result<(), String> {
    if pem.len() > MAX_CA_BUNDLE_BYTES {
        return Err(format!(
            "the CA bundle is larger than {MAX_CA_BUNDLE_BYTES} bytes"
        ));
    }
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .take(MAX_CA_BUNDLE_CERTS)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("the CA bundle is not PEM: {e}"))?;
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err("the CA bundle holds no usable PEM certificate".into());
    }
    Ok(())
}

/// The standard verifier, recording what it was shown and what it decided.
#[derive(Debug)]
struct Watching {
    inner: Arc<WebPkiServerVerifier>,
    seen: Shared,
}

impl ServerCertVerifier for Watching {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        let mut seen = lock(&self.seen);
        seen.peer = Some(Peer::read(end_entity, server_name));
        seen.refused = verdict.as_ref().err().cloned();
        verdict
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }

    fn root_hint_subjects(&self) -> Option<&[rustls::DistinguishedName]> {
        self.inner.root_hint_subjects()
    }
}

impl Peer {
    /// Reads what messages need from a DER certificate the TLS layer already bounded in size.
    pub fn read(der: &CertificateDer<'_>, server_name: &ServerName<'_>) -> Self {
        let valid_for_host = rustls::server::ParsedCertificate::try_from(der)
            .is_ok_and(|cert| rustls::client::verify_server_name(&cert, server_name).is_ok());
        let Ok((_, cert)) = X509Certificate::from_der(der.as_ref()) else {
            return Peer {
                not_after: None,
                valid_for_host,
                names: Vec::new(),
                issuer: String::new(),
            };
        };
        let not_after = Timestamp::from_second(cert.validity().not_after.timestamp()).ok();
        let mut names: Vec<String> = cert
            .subject_alternative_name()
            .ok()
            .flatten()
            .map(|san| {
                san.value
                    .general_names
                    .iter()
                    .filter_map(|n| match n {
                        GeneralName::DNSName(name) => Some(clip(name, NAME_BYTES)),
                        _ => None,
                    })
                    .take(NAMES_QUOTED)
                    .collect()
            })
            .unwrap_or_default();
        if names.is_empty() {
            names.extend(common_name(cert.subject()));
        }
        Peer {
            not_after,
            valid_for_host,
            names,
            issuer: common_name(cert.issuer()).unwrap_or_default(),
        }
    }
}

fn common_name(name: &x509_parser::x509::X509Name<'_>) -> Option<String> {
    name.iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(|cn| clip(cn, NAME_BYTES))
}

/// The system resolver, recording a failed lookup.
struct SystemDns {
    seen: Shared,
}

impl Resolve for SystemDns {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let seen = self.seen.clone();
        Box::pin(async move {
            match tokio::net::lookup_host((host.as_str(), 0)).await {
                Ok(addrs) => {
                    let addrs: Vec<SocketAddr> = addrs.collect();
                    if addrs.is_empty() {
                        lock(&seen).dns = Some(format!("{} has no address", clip(&host, 253)));
                    }
                    Ok(Box::new(addrs.into_iter()) as Addrs)
                }
                Err(e) => {
                    lock(&seen).dns = Some(clip(&e.to_string(), 200));
                    Err(Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
                }
            }
        })
    }
}

/// Parses `HOST=IP[:PORT]` (the `--external-probe-resolve` flag). Without a port, the URL's
/// (or its scheme's) port is used.
pub fn parse_override(text: &str) -> Result<(String, SocketAddr), String> {
    let (host, addr) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not HOST=IP[:PORT]"))?;
    let host = host.trim();
    if host.is_empty() || host.contains(['/', ':', ' ']) {
        return Err(format!("{host:?} is not a host name"));
    }
    let addr = addr.trim();
    let addr = match addr.parse::<SocketAddr>() {
        Ok(a) => a,
        // Port 0: the URL's port, or its scheme's.
        Err(_) => SocketAddr::new(
            addr.trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .map_err(|_| format!("{addr:?} is not an IP address with an optional port"))?,
            0,
        ),
    };
    Ok((host.to_owned(), addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_take_an_address_with_or_without_a_port() {
        assert_eq!(
            parse_override("demo.example.test=10.96.0.80:443").unwrap(),
            (
                "demo.example.test".into(),
                "10.96.0.80:443".parse().unwrap()
            )
        );
        assert_eq!(
            parse_override("a.example=fd00::1").unwrap().1,
            "[fd00::1]:0".parse().unwrap()
        );
        assert_eq!(
            parse_override("a.example=[fd00::1]:8443").unwrap().1,
            "[fd00::1]:8443".parse().unwrap()
        );
        for bad in ["nothing", "=1.2.3.4", "a.example=not-an-ip", "a/b=1.2.3.4"] {
            assert!(parse_override(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_bundle_without_certificates_or_too_large_is_refused() {
        let mut roots = RootCertStore::empty();
        assert!(add_bundle(&mut roots, b"no pem here").is_err());
        let huge = vec![b'a'; MAX_CA_BUNDLE_BYTES + 1];
        let e = add_bundle(&mut roots, &huge).unwrap_err();
        assert!(e.contains("larger than"), "{e}");
        assert!(roots.is_empty());
    }

    #[test]
    fn the_peer_certificate_gives_expiry_names_issuer_and_whether_it_fits_the_host() {
        let mut ca = rcgen::CertificateParams::default();
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "unit test CA");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let mut leaf = rcgen::CertificateParams::new(vec!["demo.example.test".to_owned()]).unwrap();
        leaf.not_after = rcgen::date_time_ymd(2030, 1, 2);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = leaf.signed_by(&key, &issuer).unwrap();
        let name = |n: &str| ServerName::try_from(n.to_owned()).unwrap();

        let peer = Peer::read(cert.der(), &name("demo.example.test"));
        assert_eq!(
            peer.not_after,
            Some("2030-01-02T00:00:00Z".parse::<Timestamp>().unwrap())
        );
        assert!(peer.valid_for_host);
        assert_eq!(peer.names, ["demo.example.test"]);
        assert_eq!(peer.issuer, "unit test CA");
        assert!(!Peer::read(cert.der(), &name("other.example.test")).valid_for_host);
        // Not a certificate at all: nothing known, and not valid for any host.
        let junk = CertificateDer::from(vec![0u8; 16]);
        let peer = Peer::read(&junk, &name("demo.example.test"));
        assert_eq!((peer.not_after, peer.valid_for_host), (None, false));
    }

    #[test]
    fn without_any_trust_anchor_no_client_is_built() {
        let connect = Connect::with_roots(RootCertStore::empty(), Vec::new());
        let e = connect.client(None).unwrap_err();
        assert!(e.contains("caBundleSecretRef"), "{e}");
    }
}
