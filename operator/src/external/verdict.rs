//! What one external handshake means for the `Reachable` condition: a reason from a small
//! vocabulary and a message a person can act on, from the probe's error and what the
//! connection showed ([`Seen`]). Pure.

use rustls::CertificateError;

use super::connect::{Peer, Seen};
use crate::probe::ProbeError;
use crate::text::clip;

/// Reasons of the `Reachable` condition.
pub mod reasons {
    /// True: the handshake through the public URL succeeded.
    pub const HANDSHAKE_SUCCEEDED: &str = "HandshakeSucceeded";
    pub const DNS_FAILED: &str = "DnsFailed";
    pub const CONNECT_FAILED: &str = "ConnectFailed";
    pub const TLS_FAILED: &str = "TlsFailed";
    pub const CERTIFICATE_EXPIRED: &str = "CertificateExpired";
    pub const CERTIFICATE_NOT_VALID_FOR_HOST: &str = "CertificateNotValidForHost";
    pub const HTTP_STATUS: &str = "HttpStatus";
    pub const NOT_MCP: &str = "NotMcp";
    pub const TIMEOUT: &str = "Timeout";
    /// The CA bundle Secret is missing, unreadable or holds no certificate.
    pub const CA_BUNDLE_INVALID: &str = "CaBundleInvalid";
    /// The probe's bearer token Secret cannot be read.
    pub const SECRET_UNREADABLE: &str = "SecretUnreadable";
    /// The authorization server gave no token for `probe.clientCredentials`.
    pub const TOKEN_REQUEST_FAILED: &str = crate::oauth::TOKEN_REQUEST_FAILED;
}

/// Longest message kept: it goes into a condition and an Event.
pub const MESSAGE_BYTES: usize = 512;

/// The reason and message of one result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub reason: &'static str,
    pub message: String,
}

impl Verdict {
    pub fn new(reason: &'static str, message: impl AsRef<str>) -> Self {
        Verdict {
            reason,
            message: clip(message.as_ref(), MESSAGE_BYTES),
        }
    }

    pub fn ok(&self) -> bool {
        self.reason == reasons::HANDSHAKE_SUCCEEDED
    }
}

/// The verdict on a handshake with `url` (host `host`) that failed with `error`.
pub fn failure(error: &ProbeError, seen: &Seen, url: &str, host: &str) -> Verdict {
    use reasons::*;
    if let Some(dns) = &seen.dns {
        return Verdict::new(
            DNS_FAILED,
            format!(
                "cannot resolve {host}: {dns}. If the name resolves only outside the cluster, \
                 give the operator --external-probe-resolve {host}=IP"
            ),
        );
    }
    if let Some(refused) = &seen.refused {
        return certificate_refused(refused, seen.peer.as_ref(), host);
    }
    match error {
        ProbeError::Tls(m) => Verdict::new(TLS_FAILED, format!("TLS {m}")),
        ProbeError::Timeout(after) => Verdict::new(
            TIMEOUT,
            format!("no MCP answer from {url} within {after:?}"),
        ),
        ProbeError::Refused(_) | ProbeError::Transport(_) => {
            Verdict::new(CONNECT_FAILED, format!("{url}: {error}"))
        }
        ProbeError::HttpStatus { .. } | ProbeError::Redirect { .. } => {
            Verdict::new(HTTP_STATUS, format!("{url}: {error}"))
        }
        ProbeError::NotJsonRpc { .. }
        | ProbeError::JsonRpcError { .. }
        | ProbeError::VersionMismatch { .. }
        | ProbeError::ToolsMissing(_) => Verdict::new(
            NOT_MCP,
            format!("{url} does not answer as an MCP server: {error}"),
        ),
    }
}

/// The verdict on a certificate the verifier refused. A certificate for other names comes
/// first: it is what an ingress controller's default certificate looks like (no TLS Secret, or
/// no route, for this host), whatever else is wrong with it.
fn certificate_refused(error: &rustls::Error, peer: Option<&Peer>, host: &str) -> Verdict {
    use reasons::*;
    let names = peer.map(describe).unwrap_or_default();
    if peer.is_some_and(|p| !p.valid_for_host) {
        return Verdict::new(
            CERTIFICATE_NOT_VALID_FOR_HOST,
            format!(
                "the server presented a certificate for {names}, not for {host}{}: check that \
                 the Ingress or route for {host} exists and names a TLS Secret for it (an ingress \
                 controller without one serves its default certificate)",
                untrusted(error)
            ),
        );
    }
    let rustls::Error::InvalidCertificate(cause) = error else {
        return Verdict::new(TLS_FAILED, format!("the certificate of {host}: {error}"));
    };
    match cause {
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            let when = peer
                .and_then(|p| p.not_after)
                .map(|t| format!(" at {t}"))
                .unwrap_or_default();
            Verdict::new(
                CERTIFICATE_EXPIRED,
                format!("the certificate of {host} ({names}) expired{when}: renew it"),
            )
        }
        CertificateError::UnknownIssuer => Verdict::new(
            TLS_FAILED,
            format!(
                "the certificate of {host} ({names}) is not signed by a trusted CA: for a \
                 private CA set probe.external.caBundleSecretRef"
            ),
        ),
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            Verdict::new(
                TLS_FAILED,
                format!("the certificate of {host} ({names}) is not valid yet"),
            )
        }
        other => Verdict::new(
            TLS_FAILED,
            format!("the certificate of {host} ({names}) was refused: {other:?}"),
        ),
    }
}

/// `names [..] issued by CN`, for messages.
fn describe(peer: &Peer) -> String {
    let names = if peer.names.is_empty() {
        "no name".to_owned()
    } else {
        peer.names.join(", ")
    };
    match peer.issuer.as_str() {
        "" => names,
        issuer => format!("{names} (issued by {issuer})"),
    }
}

/// `, and it is not trusted` when the certificate also fails for its issuer.
fn untrusted(error: &rustls::Error) -> &'static str {
    match error {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            " and not signed by a trusted CA"
        }
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use k8s_openapi::jiff::Timestamp;

    use super::*;

    fn peer(valid_for_host: bool) -> Peer {
        Peer {
            not_after: Some(Timestamp::from_second(1_700_000_000).unwrap()),
            valid_for_host,
            names: vec!["other.example.test".into()],
            issuer: "test CA".into(),
        }
    }

    fn refused(cause: CertificateError, peer: Peer) -> Seen {
        Seen {
            peer: Some(peer),
            refused: Some(rustls::Error::InvalidCertificate(cause)),
            dns: None,
        }
    }

    const URL: &str = "https://demo.example.test/mcp";
    const HOST: &str = "demo.example.test";

    fn tls_error() -> ProbeError {
        ProbeError::Tls("with demo.example.test:443: invalid peer certificate".into())
    }

    #[test]
    fn a_certificate_for_another_name_says_so_before_anything_else() {
        let seen = refused(CertificateError::UnknownIssuer, peer(false));
        let v = failure(&tls_error(), &seen, URL, HOST);
        assert_eq!(v.reason, reasons::CERTIFICATE_NOT_VALID_FOR_HOST);
        assert!(
            v.message.contains(
                "other.example.test (issued by test CA), not for demo.example.test and not signed"
            ),
            "{}",
            v.message
        );
    }

    #[test]
    fn expired_and_untrusted_certificates_have_their_reasons() {
        let v = failure(
            &tls_error(),
            &refused(CertificateError::Expired, peer(true)),
            URL,
            HOST,
        );
        assert_eq!(v.reason, reasons::CERTIFICATE_EXPIRED);
        assert!(
            v.message.contains("expired at 2023-11-14T22:13:20Z"),
            "{}",
            v.message
        );
        let v = failure(
            &tls_error(),
            &refused(CertificateError::UnknownIssuer, peer(true)),
            URL,
            HOST,
        );
        assert_eq!(v.reason, reasons::TLS_FAILED);
        assert!(v.message.contains("caBundleSecretRef"), "{}", v.message);
    }

    #[test]
    fn errors_without_a_certificate_are_told_apart_by_the_probe_error() {
        let none = Seen::default();
        let cases = [
            (
                ProbeError::Timeout(Duration::from_secs(10)),
                reasons::TIMEOUT,
            ),
            (
                ProbeError::Refused("demo.example.test:443".into()),
                reasons::CONNECT_FAILED,
            ),
            (
                ProbeError::Transport("cannot connect".into()),
                reasons::CONNECT_FAILED,
            ),
            (tls_error(), reasons::TLS_FAILED),
            (
                ProbeError::HttpStatus {
                    method: "initialize".into(),
                    status: 404,
                    path: "/nope".into(),
                    hint: String::new(),
                },
                reasons::HTTP_STATUS,
            ),
            (
                ProbeError::NotJsonRpc {
                    method: "initialize".into(),
                    detail: "expected JSON".into(),
                },
                reasons::NOT_MCP,
            ),
        ];
        for (error, reason) in cases {
            assert_eq!(failure(&error, &none, URL, HOST).reason, reason, "{error}");
        }
    }

    #[test]
    fn a_failed_lookup_names_the_host_and_the_override_flag() {
        let seen = Seen {
            dns: Some("failed to lookup address information".into()),
            ..Seen::default()
        };
        let v = failure(&ProbeError::Transport("x".into()), &seen, URL, HOST);
        assert_eq!(v.reason, reasons::DNS_FAILED);
        assert!(
            v.message
                .contains("--external-probe-resolve demo.example.test=IP"),
            "{}",
            v.message
        );
    }

    #[test]
    fn messages_are_clipped() {
        let long = ProbeError::Transport("x".repeat(10_000));
        let v = failure(&long, &Seen::default(), URL, HOST);
        assert!(v.message.len() <= MESSAGE_BYTES, "{}", v.message.len());
    }
}
