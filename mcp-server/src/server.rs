//! Start-up and shutdown: builds the backend and router from the configuration, listens, and on
//! SIGTERM (or Ctrl-C) drains: `/readyz` fails, standalone streams close, new connections are
//! refused, and in-flight requests get up to `--drain-seconds` to finish. With session routing,
//! new connections are still accepted while the replica owns sessions (other replicas forward
//! their requests here) until the drain time ends; no new session starts.

use std::io::Write as _;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::backend::Backend;
use crate::backend::bridge::{Bridge, BridgeConfig};
use crate::backend::builtin::Builtin;
use crate::backend::catalogue;
use crate::backend::proxy::http::Bounds;
use crate::backend::proxy::{Proxy, ProxyConfig};
use crate::config::{Cli, Mode};
use crate::metrics::Metrics;
use crate::transport::guard::{AllowList, OriginPolicy};
use crate::transport::history::{HistoryBudget, HistoryLimits};
use crate::transport::routing::Routing;
use crate::transport::{AppState, Lifecycle, Settings, auth, listen, router, sessions::Sessions};

/// Bridged sessions are processes, and proxied ones hold upstream connections, so their
/// default caps are lower.
const DEFAULT_MAX_SESSIONS_BUILTIN: usize = 10_000;
const DEFAULT_MAX_SESSIONS_BRIDGE: usize = 100;
const DEFAULT_MAX_SESSIONS_PROXY: usize = 1_000;

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let args = cli.server;
    args.check().map_err(anyhow::Error::msg)?;
    let metrics = Arc::new(Metrics::new());
    let lifecycle = Arc::new(Lifecycle::default());

    let (backend, default_max) = match cli.mode {
        None => {
            let builtin = Builtin::with_catalogue(catalogue::builtin(args.conformance_fixtures)?);
            (
                Backend::Builtin(Arc::new(builtin)),
                DEFAULT_MAX_SESSIONS_BUILTIN,
            )
        }
        Some(Mode::Install { dest }) => return crate::install::install(&dest),
        Some(Mode::Bridge(_) | Mode::Proxy(_)) if args.conformance_fixtures => {
            anyhow::bail!("--conformance-fixtures belongs to the built-in mode only")
        }
        Some(Mode::Bridge(bridge)) => {
            let (command, command_args) = bridge
                .command
                .split_first()
                .context("bridge mode needs a command after `--`")?;
            let bridge = Bridge::new(
                BridgeConfig {
                    command: command.clone(),
                    args: command_args.to_vec(),
                    max_restarts: bridge.max_restarts,
                    handshake_timeout: std::time::Duration::from_secs(bridge.handshake_timeout),
                    max_line_bytes: args.max_body_bytes,
                    request_timeout: std::time::Duration::from_secs(bridge.request_timeout.max(1)),
                },
                Arc::clone(&metrics),
            );
            bridge.probe_until_ready(lifecycle.streams_closing.clone());
            (Backend::Bridge(bridge), DEFAULT_MAX_SESSIONS_BRIDGE)
        }
        Some(Mode::Proxy(proxy)) => {
            let seconds = std::time::Duration::from_secs;
            let request_timeout = seconds(proxy.request_timeout.max(1));
            let proxy = Proxy::new(
                ProxyConfig {
                    upstream: proxy.upstream,
                    transport: proxy.upstream_transport,
                    bounds: Bounds {
                        connect: seconds(proxy.connect_timeout.max(1)),
                        idle: request_timeout,
                        max_message_bytes: args.max_body_bytes,
                    },
                    request_timeout,
                    handshake_timeout: seconds(proxy.handshake_timeout.max(1)),
                },
                Arc::clone(&metrics),
            )?;
            proxy.probe_until_ready(lifecycle.streams_closing.clone());
            (Backend::Proxy(proxy), DEFAULT_MAX_SESSIONS_PROXY)
        }
    };

    // As a container's PID 1, orphans (a bridged child's children) become ours to reap.
    crate::backend::process::reap_orphans_when_init();

    let routing = Routing::from_flags(
        args.session_key_file.as_deref(),
        args.advertise_address(),
        args.header_read_timeout(),
        &metrics,
    )?;
    let sessions = Sessions::routed(
        args.max_sessions.unwrap_or(default_max),
        args.session_idle(),
        HistoryLimits {
            events: args.event_history.max(1),
            bytes: args.event_history_bytes,
            total: HistoryBudget::new(args.event_history_total_bytes),
        },
        Arc::clone(&metrics),
        routing.clone(),
    );
    sessions.reap_idle(lifecycle.streams_closing.clone());

    let auth = match (&args.auth_token_file, args.oauth()) {
        (Some(path), _) => auth::Auth::Tokens(Arc::new(auth::Tokens::load(path)?)),
        (None, Some(oauth)) => auth::Auth::OAuth(Arc::new(crate::oauth::gate::OAuth::new(oauth)?)),
        (None, None) => auth::Auth::None,
    };
    let loopback = args.listen.ip().is_loopback();
    let origins = OriginPolicy {
        origins: AllowList::from_flag(&args.allowed_origins, AllowList::loopback()),
        hosts: AllowList::from_flag(
            &args.allowed_hosts,
            if loopback {
                AllowList::loopback()
            } else {
                AllowList::Any
            },
        ),
    };
    let app = AppState {
        backend,
        sessions: Arc::clone(&sessions),
        metrics,
        settings: Arc::new(Settings {
            keep_alive: args.keep_alive(),
            response_mode: args.response_mode,
            max_body_bytes: args.max_body_bytes,
            body_read_timeout: args.body_read_timeout(),
        }),
        lifecycle: Arc::clone(&lifecycle),
    };
    let routed = routing.is_some();
    let service = router(app, origins, auth, routing);

    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let local = listener.local_addr()?;
    // The one line on stdout: tests and wrappers read the bound address (port 0 picks one).
    println!("mcp-server listening on {local}");
    let _ = std::io::stdout().flush();
    tracing::info!(address = %local, "listening");

    let drain_lifecycle = Arc::clone(&lifecycle);
    let limits = listen::ConnectionLimits {
        header_read_timeout: args.header_read_timeout(),
        max_connections: args.max_connections,
    };
    let drain = args.drain();
    let drain_sessions = Arc::clone(&sessions);
    let server = listen::serve(listener, service, limits, async move {
        shutdown_signal().await;
        tracing::info!("shutdown requested; draining");
        drain_lifecycle.begin_drain();
        if routed {
            // Other replicas forward requests for our sessions on new connections: keep
            // accepting them until the drain time ends or no session is left.
            owned_sessions_end(&drain_sessions, drain).await;
        }
    });
    let deadline = async {
        lifecycle.streams_closing.cancelled().await;
        tokio::time::sleep(drain).await;
    };
    tokio::select! {
        () = server => {}
        () = deadline => tracing::warn!(seconds = drain.as_secs(), "drain time is up; closing remaining connections"),
    }
    sessions.close_all();
    tracing::info!("stopped");
    Ok(())
}

/// How often a draining replica looks whether its last session has ended.
const DRAIN_POLL: std::time::Duration = std::time::Duration::from_millis(200);

/// Returns when no session is left, or after `drain` at most.
async fn owned_sessions_end(sessions: &Sessions, drain: std::time::Duration) {
    let waiting = async {
        while !sessions.is_empty() {
            tokio::time::sleep(DRAIN_POLL).await;
        }
    };
    let _ = tokio::time::timeout(drain, waiting).await;
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
