//! Session-owner routing: with a session key, every session id names the replica that owns the
//! session and is signed (see [`session_id`]), and a request for a session owned by another
//! replica is forwarded there. A request whose id does not verify is answered 404 without any
//! connection being made, so a client can never choose where a replica connects.
//!
//! The layer sits inside authentication, origin checks and body limits: only requests this
//! replica would itself accept cross to another pod, and the owner checks them again.

pub mod forward;
pub mod keys;
pub mod session_id;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;

use super::headers::SESSION_ID;
use super::reply::rpc_error;
use super::{legacy, routes, streamable};
use crate::message::RpcError;
use crate::message::jsonrpc::INVALID_REQUEST;
use crate::metrics::Metrics;
use forward::Forwarder;
use keys::{KeyFileError, KeyRing};

/// Set on forwarded requests: their receiver serves them locally or answers 404, never forwards
/// again. A client setting it gains nothing: it only loses the forwarding.
pub const FORWARDED: &str = "mcp-session-forwarded";

#[derive(Debug, thiserror::Error)]
pub enum RoutingError {
    #[error(transparent)]
    Keys(#[from] KeyFileError),
    #[error(
        "--session-key-file needs --advertise-address (MCP_ADVERTISE_ADDRESS): the IP and port other replicas reach this one at"
    )]
    NoAdvertiseAddress,
    #[error(
        "--advertise-address {0} is not an address other replicas can connect to (unspecified IP or port 0)"
    )]
    Unroutable(SocketAddr),
}

/// What a replica needs to name its sessions and route requests for others'.
pub struct Routing {
    keys: KeyRing,
    advertise: SocketAddr,
    forwarder: Forwarder,
    metrics: Arc<Metrics>,
}

/// Where a request for a session goes.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Local,
    /// The id does not verify: forged, tampered, from another key, or not an id at all.
    Rejected,
    /// Names another replica but already was forwarded once.
    AlreadyForwarded,
    Forward(SocketAddr),
}

impl Routing {
    /// Routing from the flags: `None` without a key file (ids stay local and random).
    /// `header_read_timeout` is how long replicas keep idle connections (all replicas run with
    /// the same flags); connections to owners are reused for half that.
    pub fn from_flags(
        key_file: Option<&Path>,
        advertise: Option<SocketAddr>,
        header_read_timeout: Duration,
        metrics: &Arc<Metrics>,
    ) -> Result<Option<Arc<Self>>, RoutingError> {
        let Some(key_file) = key_file else {
            return Ok(None);
        };
        let advertise = advertise.ok_or(RoutingError::NoAdvertiseAddress)?;
        if advertise.ip().is_unspecified() || advertise.port() == 0 {
            return Err(RoutingError::Unroutable(advertise));
        }
        Ok(Some(Arc::new(Self {
            keys: KeyRing::load(key_file)?,
            advertise,
            forwarder: Forwarder::new(header_read_timeout / 2),
            metrics: Arc::clone(metrics),
        })))
    }

    /// The public id of this replica's session `local`, signed with the current signing key.
    pub fn name(&self, local: &str) -> String {
        session_id::sign(&self.keys.keys()[0], self.advertise, local)
    }

    fn route(&self, id: &[u8], forwarded: bool) -> Route {
        match session_id::verify(self.keys.keys().iter(), id) {
            None => Route::Rejected,
            Some(owner) if owner == self.advertise => Route::Local,
            Some(_) if forwarded => Route::AlreadyForwarded,
            Some(owner) => Route::Forward(owner),
        }
    }

    fn count(&self, outcome: &'static str) {
        self.metrics.count_session_routing(outcome);
    }
}

/// The middleware: serves requests for this replica's sessions (and those naming none) here,
/// forwards those for another replica's, and answers 404 for ids that do not verify.
pub async fn route(State(routing): State<Arc<Routing>>, request: Request, next: Next) -> Response {
    let Some(id) = session_named_by(&request) else {
        return next.run(request).await;
    };
    let forwarded = request.headers().contains_key(FORWARDED);
    match routing.route(&id, forwarded) {
        Route::Local => next.run(request).await,
        Route::Rejected => {
            routing.count("rejected_id");
            not_found()
        }
        Route::AlreadyForwarded => {
            routing.count("already_forwarded");
            not_found()
        }
        Route::Forward(owner) => match routing.forwarder.forward(owner, request).await {
            Ok(response) => {
                routing.count("forwarded");
                response
            }
            Err(e) => {
                routing.count(e.label());
                tracing::debug!(%owner, error = %e, "cannot forward to the session's owner");
                not_found()
            }
        },
    }
}

/// The session id a request names, as sent: the `Mcp-Session-Id` header at `/mcp` (except on
/// stateless requests, which ignore it), the `sessionId` query parameter at `/messages`.
fn session_named_by(request: &Request) -> Option<Vec<u8>> {
    match request.uri().path() {
        routes::MCP if !streamable::stateless_header(request.headers()) => request
            .headers()
            .get(SESSION_ID)
            .map(|v| v.as_bytes().to_vec()),
        routes::MESSAGES => legacy::session_in(request.uri()).map(String::into_bytes),
        _ => None,
    }
}

/// The spec's answer for a session that is not (or no longer) there: the client starts anew.
fn not_found() -> Response {
    rpc_error(
        StatusCode::NOT_FOUND,
        RpcError::new(
            INVALID_REQUEST,
            "unknown or ended session; initialize a new one",
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    const IDLE: Duration = Duration::from_secs(10);

    fn routing(advertise: &str) -> Routing {
        let dir = std::env::temp_dir().join(format!(
            "mcp-server-routing-{}-{advertise}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("keys");
        let key = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
        std::fs::write(&path, key).unwrap();
        let metrics = Arc::new(Metrics::new());
        let routing = Routing::from_flags(Some(&path), advertise.parse().ok(), IDLE, &metrics)
            .unwrap()
            .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        Arc::into_inner(routing).unwrap()
    }

    #[test]
    fn ids_are_routed_by_their_owner_and_signature() {
        let here = routing("10.0.0.1:8080");
        let there = routing("10.0.0.2:8080");
        let local = "00112233445566778899aabbccddeeff";
        let mine = here.name(local);
        let theirs = there.name(local);
        assert_eq!(here.route(mine.as_bytes(), false), Route::Local);
        assert_eq!(here.route(mine.as_bytes(), true), Route::Local);
        assert_eq!(
            here.route(theirs.as_bytes(), false),
            Route::Forward("10.0.0.2:8080".parse().unwrap())
        );
        assert_eq!(here.route(theirs.as_bytes(), true), Route::AlreadyForwarded);
        assert_eq!(here.route(local.as_bytes(), false), Route::Rejected);
    }

    #[test]
    fn a_key_file_needs_a_routable_advertise_address() {
        let metrics = Arc::new(Metrics::new());
        let path = Path::new("/nonexistent/keys");
        assert!(matches!(
            Routing::from_flags(Some(path), None, IDLE, &metrics),
            Err(RoutingError::NoAdvertiseAddress)
        ));
        for unroutable in ["0.0.0.0:8080", "10.0.0.1:0"] {
            assert!(matches!(
                Routing::from_flags(Some(path), unroutable.parse().ok(), IDLE, &metrics),
                Err(RoutingError::Unroutable(_))
            ));
        }
        assert!(matches!(
            Routing::from_flags(None, None, IDLE, &metrics),
            Ok(None)
        ));
    }
}
