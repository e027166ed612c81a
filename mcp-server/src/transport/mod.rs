//! The HTTP transport: routing, sessions and SSE streams for Streamable HTTP, the legacy HTTP+SSE
//! transport and stateless requests, plus the operations endpoints. The router is assembled here,
//! in one place, with limits, authentication, origin checks, session routing, metrics and tracing
//! as tower layers.

pub mod auth;
pub mod body;
pub mod guard;
pub mod headers;
pub mod history;
pub mod legacy;
pub mod listen;
pub mod ops;
pub mod reply;
pub mod routing;
pub mod session;
pub mod sessions;
pub mod sse_body;
pub mod stateless;
pub mod stream_queue;
pub mod streamable;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use tokio_util::sync::CancellationToken;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::{DefaultOnFailure, TraceLayer};
use tracing::Level;

use axum::http::StatusCode;

use crate::backend::Backend;
use crate::config::ResponseMode;
use crate::message::jsonrpc::INTERNAL_ERROR;
use crate::message::{RequestId, RpcError};
use crate::metrics::{HttpLabels, Metrics, RouteLabels, http_method_label, known_or_other};
use crate::oauth::Identity;
use reply::Rejection;
use session::{Session, TransportKind};
use sessions::CreateError;

/// Settings the handlers read.
#[derive(Clone, Debug)]
pub struct Settings {
    pub keep_alive: Duration,
    pub response_mode: ResponseMode,
    pub max_body_bytes: usize,
    /// Time allowed to receive a request body.
    pub body_read_timeout: Duration,
}

/// Shutdown state: once draining, no new sessions start, `/readyz` fails, and standalone streams
/// close so that connections can finish.
#[derive(Default)]
pub struct Lifecycle {
    draining: AtomicBool,
    pub streams_closing: CancellationToken,
}

impl Lifecycle {
    pub fn begin_drain(&self) {
        self.draining.store(true, Ordering::Relaxed);
        self.streams_closing.cancel();
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }
}

/// Starts a session of `kind` for `identity`, or says why none can start now: shutting down or
/// full (503 with `Retry-After`), or a backend that failed to start (500, answering `request`
/// when given).
pub async fn start_session(
    app: &AppState,
    kind: TransportKind,
    request: Option<RequestId>,
    identity: Option<Arc<Identity>>,
) -> Result<Arc<Session>, Rejection> {
    if app.lifecycle.is_draining() {
        return Err(Rejection::unavailable("the server is shutting down"));
    }
    match app.sessions.create(&app.backend, kind, identity).await {
        Ok(session) => Ok(session),
        Err(e @ CreateError::Full(_)) => Err(Rejection::unavailable(e.to_string())),
        Err(e) => {
            tracing::error!(error = %e, "could not start a session");
            Err(Rejection::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                RpcError::new(INTERNAL_ERROR, e.to_string()).with_id(request),
            ))
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub backend: Backend,
    pub sessions: Arc<sessions::Sessions>,
    pub metrics: Arc<Metrics>,
    pub settings: Arc<Settings>,
    pub lifecycle: Arc<Lifecycle>,
}

/// Every route of the router: its paths, and the only values of the `route` metric label.
pub mod routes {
    pub const MCP: &str = "/mcp";
    pub const SSE: &str = "/sse";
    pub const MESSAGES: &str = "/messages";
    pub const HEALTHZ: &str = "/healthz";
    pub const READYZ: &str = "/readyz";
    pub const METRICS: &str = "/metrics";
    /// The OAuth protected resource metadata (also served at this path plus the MCP path).
    pub const OAUTH_METADATA: &str = crate::oauth::resource::WELL_KNOWN;
    pub const ALL: [&str; 7] = [MCP, SSE, MESSAGES, HEALTHZ, READYZ, METRICS, OAUTH_METADATA];
    /// Requests no route matched.
    pub const UNMATCHED: &str = "unmatched";
}

/// The complete HTTP service.
pub fn router(
    app: AppState,
    origins: guard::OriginPolicy,
    auth: auth::Auth,
    routing: Option<Arc<routing::Routing>>,
) -> Router {
    let mut mcp = Router::new()
        .route(
            routes::MCP,
            get(streamable::get)
                .post(streamable::post)
                .delete(streamable::delete),
        )
        .route(routes::SSE, get(legacy::connect))
        .route(routes::MESSAGES, post(legacy::post));
    if let Some(routing) = routing {
        // Inside every check: only requests this replica accepts are forwarded to another.
        mcp = mcp.layer(middleware::from_fn_with_state(routing, routing::route));
    }
    if let auth::Auth::OAuth(oauth) = &auth {
        // On the body in memory: a tools/call needs the scopes of its tool.
        mcp = mcp.layer(middleware::from_fn_with_state(
            Arc::clone(oauth),
            crate::oauth::gate::check_tool_calls,
        ));
    }
    // Next: a body is read only from clients that passed the checks below.
    mcp = mcp.layer(middleware::from_fn_with_state(
        app.settings.body_read_timeout,
        body::read_within,
    ));
    let mut public = Router::new();
    match auth {
        auth::Auth::None => {}
        auth::Auth::Tokens(tokens) => {
            mcp = mcp.layer(middleware::from_fn_with_state(tokens, auth::require_bearer));
        }
        auth::Auth::OAuth(oauth) => {
            for path in oauth.metadata_paths() {
                public = public.route(
                    &path,
                    get(crate::oauth::gate::metadata).with_state(Arc::clone(&oauth)),
                );
            }
            mcp = mcp.layer(middleware::from_fn_with_state(
                oauth,
                crate::oauth::gate::require_token,
            ));
        }
    }
    let mcp = mcp
        .layer(middleware::from_fn_with_state(
            Arc::new(origins),
            guard::check_origin_and_host,
        ))
        // Before anything reads a request, with or without OAuth: nobody names the caller to
        // the server behind but the token (and a peer replica gets no copies to trust).
        .layer(middleware::from_fn(
            crate::oauth::identity::drop_client_copies,
        ))
        // Bodies are buffered whole, so the limit applies before any parsing: 413 when exceeded.
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(app.settings.max_body_bytes));
    let ops = Router::new()
        .route(routes::HEALTHZ, get(ops::healthz))
        .route(routes::READYZ, get(ops::readyz))
        .route(routes::METRICS, get(ops::metrics));
    Router::new()
        .merge(mcp)
        .merge(ops)
        .merge(public)
        .layer(middleware::from_fn_with_state(
            Arc::clone(&app.metrics),
            record_metrics,
        ))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&app.lifecycle),
            close_connections_when_draining,
        ))
        // 5xx answers here are expected states (not ready, full, draining) and are logged where
        // they arise when they are real faults, so the trace layer reports them quietly.
        .layer(TraceLayer::new_for_http().on_failure(DefaultOnFailure::new().level(Level::DEBUG)))
        .with_state(app)
}

/// Counts every request by method, route and status, and times it to the response head.
async fn record_metrics(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = http_method_label(request.method().as_str());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(routes::UNMATCHED, |m| {
            known_or_other(&routes::ALL, m.as_str())
        });
    let response = next.run(request).await;
    metrics
        .http_latency
        .get_or_create(&RouteLabels { method, route })
        .observe(started.elapsed().as_secs_f64());
    metrics
        .http_requests
        .get_or_create(&HttpLabels {
            method,
            route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

/// While draining, every answer asks the client to close its connection (hyper closes it once
/// the answer is written). Keep-alive connections, which a ClusterIP keeps pointing at this
/// pod, so move to replicas that stay one answer at a time, instead of by a close at the end of
/// the drain that could race a client's next request on an idle connection.
async fn close_connections_when_draining(
    State(lifecycle): State<Arc<Lifecycle>>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    if lifecycle.is_draining() {
        response.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    response
}
