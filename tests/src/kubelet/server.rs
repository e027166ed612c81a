//! The kubelet's HTTPS API, as much of it as `kubectl logs` needs: the API server proxies
//! `pods/log` to `GET /containerLogs/{namespace}/{pod}/{container}` on the node's InternalIP and
//! `daemonEndpoints.kubeletEndpoint.Port`. Like a kubelet with anonymous auth off, it serves only
//! clients with a certificate of the environment's CA (the API server's
//! `--kubelet-client-certificate`); a request without one gets 401.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use super::logfile::{self, ReadOptions};
use super::logs::LogIndex;
use crate::Error;

/// kubelet's port.
pub const KUBELET_PORT: u16 = 10250;
/// Connections served at once; more wait to be accepted.
const MAX_CONNECTIONS: usize = 64;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The kubelet's serving certificate and the CA its clients' certificates must chain to.
#[derive(Debug, Clone)]
pub struct ServingTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: PathBuf,
}

type Body = UnsyncBoxBody<Bytes, std::io::Error>;

pub struct Server {
    listener: TcpListener,
    tls: TlsAcceptor,
}

impl Server {
    /// Binds `addr`. Runs on the sandbox thread, where the node's address exists.
    pub async fn bind(addr: SocketAddr, tls: &ServingTls) -> Result<Self, Error> {
        let config = tls_config(tls).map_err(|e| {
            Error::io(
                &tls.cert,
                std::io::Error::other(format!("kubelet TLS: {e}")),
            )
        })?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| Error::io(format!("kubelet port {addr}"), e))?;
        Ok(Server {
            listener,
            tls: TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// Serves until the task is dropped.
    pub async fn serve(self, logs: Arc<LogIndex>) {
        let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let Ok(permit) = limit.clone().acquire_owned().await else {
                return;
            };
            let tcp = match self.listener.accept().await {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    tracing::warn!("kubelet server: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let tls = self.tls.clone();
            let logs = logs.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(tcp)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => return tracing::debug!("kubelet server: TLS: {e}"),
                    Err(_) => return tracing::debug!("kubelet server: TLS handshake timed out"),
                };
                // The verifier has checked any certificate presented against the CA.
                let authenticated = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .is_some_and(|certs| !certs.is_empty());
                let service = service_fn(move |req| {
                    let logs = logs.clone();
                    async move { Ok::<_, Infallible>(route(req, authenticated, logs).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service);
                if let Err(e) = conn.await {
                    tracing::debug!("kubelet server: {e}");
                }
            });
        }
    }
}

fn tls_config(tls: &ServingTls) -> Result<rustls::ServerConfig, Box<dyn std::error::Error>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = CertificateDer::pem_file_iter(&tls.cert)?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(&tls.key)?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(&tls.client_ca)? {
        roots.add(ca?)?;
    }
    // A client without a certificate completes the handshake and is answered 401, as kubelet
    // answers; a certificate of another CA fails the handshake.
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The routes, in one place.
async fn route(req: Request<Incoming>, authenticated: bool, logs: Arc<LogIndex>) -> Response<Body> {
    if !authenticated {
        return text(StatusCode::UNAUTHORIZED, "Unauthorized".into());
    }
    let segments: Option<Vec<&str>> = req
        .uri()
        .path()
        .strip_prefix("/containerLogs/")
        .map(|rest| rest.split('/').collect());
    match (req.method(), segments.as_deref()) {
        (&Method::GET, Some([namespace, pod, container])) => {
            container_logs(namespace, pod, container, req.uri().query(), logs).await
        }
        _ => text(StatusCode::NOT_FOUND, "404 page not found".into()),
    }
}

/// `GET /containerLogs/{namespace}/{pod}/{container}`.
async fn container_logs(
    namespace: &str,
    pod: &str,
    container: &str,
    query: Option<&str>,
    logs: Arc<LogIndex>,
) -> Response<Body> {
    if let Some(bad) = [namespace, pod, container]
        .into_iter()
        .find(|s| !is_object_name(s))
    {
        return text(StatusCode::BAD_REQUEST, format!("invalid name {bad:?}"));
    }
    let (previous, options) = match parse_query(query) {
        Ok(q) => q,
        Err(message) => return text(StatusCode::BAD_REQUEST, message),
    };
    let selected = match logs.select(namespace, pod, container, previous) {
        Ok(s) => s,
        Err(refusal) => return text(refusal.status, refusal.message),
    };
    let (namespace, pod, container) = (namespace.to_owned(), pod.to_owned(), container.to_owned());
    let instance = selected.instance;
    let writing = move || logs.is_running(&namespace, &pod, &container, instance);
    match logfile::open(&selected.path, options, writing).await {
        Ok(stream) => Response::builder()
            .header(http::header::CONTENT_TYPE, "text/plain")
            .body(StreamBody::new(stream.map(|chunk| chunk.map(Frame::data))).boxed_unsync())
            .unwrap_or_else(|e| text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{}: {e}", selected.path.display()),
        ),
    }
}

/// The query of a log request: `previous`, and what to read. Options that need per-line times
/// (which the process kubelet does not record, its containers writing straight to the file) and
/// a split of stdout from stderr (which share one file) are refused rather than ignored.
fn parse_query(query: Option<&str>) -> Result<(bool, ReadOptions), String> {
    let mut previous = false;
    let mut options = ReadOptions::default();
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "follow" => options.follow = parse_bool(key, value)?,
            "previous" => previous = parse_bool(key, value)?,
            "tailLines" => options.tail_lines = Some(parse_count(key, value)?),
            "limitBytes" => options.limit_bytes = Some(parse_count(key, value)?),
            "timestamps" if parse_bool(key, value)? => return Err(no_line_times(key)),
            "sinceSeconds" | "sinceTime" => return Err(no_line_times(key)),
            "stream" if value != "All" => {
                return Err(format!(
                    "stream={value} is not supported: the test environment's process kubelet \
                     keeps stdout and stderr in one file"
                ));
            }
            _ => {}
        }
    }
    Ok((previous, options))
}

fn no_line_times(key: &str) -> String {
    format!(
        "{key} is not supported: the test environment's process kubelet does not record when \
         each line was written"
    )
}

fn parse_bool(key: &str, value: &str) -> Result<bool, String> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(format!("invalid {key}: {value:?} is not a boolean")),
    }
}

fn parse_count(key: &str, value: &str) -> Result<u64, String> {
    value
        .parse()
        .map_err(|_| format!("invalid {key}: {value:?} is not a non-negative integer"))
}

/// A namespace, pod or container name: DNS-1123 characters, and never a path step.
fn is_object_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

fn text(status: StatusCode, message: String) -> Response<Body> {
    let body = Full::new(Bytes::from(message))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_become_read_options() {
        let (previous, options) = parse_query(Some(
            "follow=true&previous=1&tailLines=5&limitBytes=100&x=y",
        ))
        .unwrap();
        assert!(previous);
        assert_eq!(
            options,
            ReadOptions {
                follow: true,
                tail_lines: Some(5),
                limit_bytes: Some(100),
            }
        );
        assert_eq!(parse_query(None).unwrap(), (false, ReadOptions::default()));
        assert!(parse_query(Some("timestamps=false&stream=All")).is_ok());
    }

    #[test]
    fn unsupported_or_malformed_parameters_are_refused() {
        for query in [
            "timestamps=true",
            "sinceSeconds=10",
            "sinceTime=2026-01-01T00%3A00%3A00Z",
            "stream=Stdout",
            "tailLines=-1",
            "follow=yes",
        ] {
            assert!(parse_query(Some(query)).is_err(), "{query}");
        }
    }

    #[test]
    fn names_that_could_step_out_of_the_log_folder_are_refused() {
        for name in ["..", ".", "", "a/b", "A", "pod%2F.."] {
            assert!(!is_object_name(name), "{name}");
        }
        assert!(is_object_name("web-7d9f.abc"));
    }
}
