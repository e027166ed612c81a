//! Command-line flags and their environment-variable equivalents.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// An MCP endpoint: built-in demo tools by default, any stdio MCP server bridged to HTTP, or a
/// front door for an MCP server that already speaks HTTP.
///
/// Serves Streamable HTTP at /mcp (revisions 2025-03-26, 2025-06-18, 2025-11-25, and stateless
/// 2026-07-28 requests in built-in mode and to a Streamable HTTP upstream in proxy mode), the
/// legacy HTTP+SSE transport at GET /sse +
/// POST /messages (2024-11-05), and /healthz, /readyz and /metrics for operations.
#[derive(Debug, Parser)]
#[command(name = "mcp-server", version, about, long_about)]
#[command(
    after_help = "Examples:\n  mcp-server                          built-in tools on 0.0.0.0:8080\n  mcp-server bridge -- npx -y @modelcontextprotocol/server-everything\n  mcp-server proxy --upstream http://127.0.0.1:3000/mcp\n  MCP_LISTEN=127.0.0.1:9000 mcp-server --log-format json"
)]
pub struct Cli {
    #[command(flatten)]
    pub server: ServerArgs,

    #[command(subcommand)]
    pub mode: Option<Mode>,
}

#[derive(Debug, Subcommand)]
pub enum Mode {
    /// Serve a stdio MCP server over HTTP: `mcp-server bridge -- COMMAND [ARGS...]`.
    ///
    /// Each MCP session gets its own child process. A child that exits is restarted with the
    /// session's handshake replayed; its unanswered requests fail with JSON-RPC error -32603.
    Bridge(BridgeArgs),

    /// Be the HTTP front door of an MCP server that already speaks HTTP:
    /// `mcp-server proxy --upstream http://127.0.0.1:3000/mcp`.
    ///
    /// Each MCP session opens one session upstream (Streamable HTTP, or the legacy HTTP+SSE
    /// transport). The client's Authorization header is not passed on (unless
    /// --oauth-pass-token); with OAuth the upstream gets the caller as X-MCP-Subject,
    /// X-MCP-Scopes and X-MCP-Client-Id. When the upstream forgets a session, the client's
    /// session ends too (404) and the client starts over.
    #[command(
        after_help = "Examples:\n  mcp-server proxy --upstream http://127.0.0.1:3000/mcp\n  mcp-server --auth-token-file /etc/mcp/tokens proxy --upstream http://127.0.0.1:8000/sse --upstream-transport sse"
    )]
    Proxy(ProxyArgs),

    /// Copy this binary to DEST and exit (for init containers of images without a shell).
    Install {
        /// Where to put the copy.
        dest: std::path::PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct BridgeArgs {
    /// Restarts of a session's child before the session is ended.
    #[arg(long, env = "MCP_BRIDGE_MAX_RESTARTS", default_value_t = 3)]
    pub max_restarts: u32,

    /// Seconds the readiness probe waits for the child to answer `initialize`.
    #[arg(long, env = "MCP_BRIDGE_HANDSHAKE_TIMEOUT", default_value_t = 30)]
    pub handshake_timeout: u64,

    /// Seconds a request may go unanswered by the child (each progress notification for it
    /// starts the clock again); then it fails with JSON-RPC error -32603 and the child gets
    /// `notifications/cancelled`.
    #[arg(long, env = "MCP_BRIDGE_REQUEST_TIMEOUT", default_value_t = 600)]
    pub request_timeout: u64,

    /// The stdio server to run, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND [ARGS]...")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// The upstream MCP endpoint: a plain `http://` URL in the same pod (its Streamable HTTP
    /// endpoint, or the legacy transport's SSE URL).
    #[arg(long, env = "MCP_PROXY_UPSTREAM", value_name = "URL")]
    pub upstream: url::Url,

    /// How to speak to the upstream. `auto` tries Streamable HTTP and falls back to the legacy
    /// HTTP+SSE transport when the upstream refuses (400, 404 or 405).
    #[arg(long, env = "MCP_PROXY_UPSTREAM_TRANSPORT", value_enum, default_value_t = UpstreamTransport::Auto)]
    pub upstream_transport: UpstreamTransport,

    /// Seconds to connect to the upstream and receive the head of its answer.
    #[arg(long, env = "MCP_PROXY_CONNECT_TIMEOUT", default_value_t = 10)]
    pub connect_timeout: u64,

    /// Seconds a request may go unanswered by the upstream (each progress notification for it
    /// starts the clock again); then it fails with JSON-RPC error -32603. An upstream stream
    /// silent this long (not even a keep-alive comment) is dropped.
    #[arg(long, env = "MCP_PROXY_REQUEST_TIMEOUT", default_value_t = 600)]
    pub request_timeout: u64,

    /// Seconds the readiness probe waits for the upstream to complete its handshake.
    #[arg(long, env = "MCP_PROXY_HANDSHAKE_TIMEOUT", default_value_t = 30)]
    pub handshake_timeout: u64,
}

/// The transport spoken to a proxied upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum UpstreamTransport {
    /// Streamable HTTP, else the legacy transport.
    Auto,
    /// Streamable HTTP (2025-03-26 and later).
    Streamable,
    /// The 2024-11-05 HTTP+SSE transport.
    Sse,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// How POST answers are sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ResponseMode {
    /// Plain JSON when the answer is ready quickly with nothing to stream first; otherwise an
    /// SSE stream (progress, server requests, or a slow answer that needs keep-alives).
    Auto,
    /// Always an SSE stream (every message gets an event id and can be resumed).
    Sse,
}

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Address to listen on (port 0 picks a free port, printed on stdout).
    #[arg(
        long,
        env = "MCP_LISTEN",
        default_value = "0.0.0.0:8080",
        global = true
    )]
    pub listen: SocketAddr,

    /// Seconds between SSE keep-alive comments.
    #[arg(long, env = "MCP_KEEP_ALIVE", default_value_t = 15, global = true)]
    pub keep_alive: u64,

    /// Seconds to let in-flight requests finish after SIGTERM before exiting.
    #[arg(long, env = "MCP_DRAIN_SECONDS", default_value_t = 10, global = true)]
    pub drain_seconds: u64,

    /// Log output format.
    #[arg(long, env = "MCP_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// Log filter (tracing env-filter syntax, e.g. `info` or `mcp_server=debug`).
    #[arg(long, env = "MCP_LOG", default_value = "info", global = true)]
    pub log: String,

    /// File with accepted bearer tokens, one per line. Without it (and without --oauth-issuer),
    /// no authentication.
    #[arg(long, env = "MCP_AUTH_TOKEN_FILE", global = true)]
    pub auth_token_file: Option<PathBuf>,

    /// Issuer of the OAuth 2.1 authorization server whose JWT access tokens the MCP routes then
    /// require (the MCP authorization spec). Its keys are found through its metadata (RFC 8414
    /// or OpenID Connect discovery) unless --oauth-jwks-url is given. Needs --oauth-resource.
    #[arg(
        long,
        env = "MCP_OAUTH_ISSUER",
        global = true,
        conflicts_with = "auth_token_file",
        requires = "oauth_resource",
        value_parser = crate::oauth::parse_issuer
    )]
    pub oauth_issuer: Option<String>,

    /// This server's public MCP URL, its OAuth resource identifier: named in the protected
    /// resource metadata, and the audience tokens must carry unless --oauth-audiences is given.
    #[arg(long, env = "MCP_OAUTH_RESOURCE", global = true)]
    pub oauth_resource: Option<url::Url>,

    /// Accepted token audiences (comma-separated); default: the --oauth-resource URL.
    #[arg(
        long,
        env = "MCP_OAUTH_AUDIENCES",
        value_delimiter = ',',
        global = true
    )]
    pub oauth_audiences: Vec<String>,

    /// Scopes every token must carry (comma-separated).
    #[arg(
        long,
        env = "MCP_OAUTH_REQUIRED_SCOPES",
        value_delimiter = ',',
        global = true
    )]
    pub oauth_required_scopes: Vec<String>,

    /// The authorization server's JWKS URL, to skip discovery.
    #[arg(long, env = "MCP_OAUTH_JWKS_URL", global = true)]
    pub oauth_jwks_url: Option<url::Url>,

    /// Seconds of clock skew allowed when checking a token's exp and nbf.
    #[arg(
        long,
        env = "MCP_OAUTH_CLOCK_SKEW_SECONDS",
        default_value_t = 60,
        global = true
    )]
    pub oauth_clock_skew_seconds: u64,

    /// Seconds between fetches of the authorization server's keys for a token whose key id is
    /// unknown (a key rotation), at least.
    #[arg(
        long,
        env = "MCP_OAUTH_KEY_REFETCH_SECONDS",
        default_value_t = crate::oauth::keys::REFETCH_FLOOR.as_secs(),
        global = true
    )]
    pub oauth_key_refetch_seconds: u64,

    /// Scopes needed to call a tool, as TOOL=SCOPE[,SCOPE...] (repeat the flag; in the
    /// environment variable, separate tools with `;`).
    #[arg(
        long = "oauth-tool-scope",
        env = "MCP_OAUTH_TOOL_SCOPES",
        value_delimiter = ';',
        value_parser = crate::oauth::parse_tool_scope,
        global = true
    )]
    pub oauth_tool_scopes: Vec<(String, std::collections::BTreeSet<String>)>,

    /// PEM file of CA certificates trusted for the authorization server, besides the system's.
    #[arg(long, env = "MCP_OAUTH_CA_FILE", global = true)]
    pub oauth_ca_file: Option<PathBuf>,

    /// Proxy mode: also pass the client's Authorization header to the upstream, which then sees
    /// the access token itself. Off by default: the MCP authorization spec forbids passing
    /// tokens through; the upstream always gets the caller as X-MCP-Subject, X-MCP-Scopes and
    /// X-MCP-Client-Id. Built-in and bridge mode have no upstream and ignore it.
    #[arg(long, env = "MCP_OAUTH_PASS_TOKEN", global = true)]
    pub oauth_pass_token: bool,

    /// File of keys that sign session ids (one base64 key of at least 32 bytes per line; the
    /// first signs, every line verifies), shared by all replicas. With it, each session id names
    /// the replica that owns the session, and a replica forwards requests for another's sessions
    /// there. Re-read when it changes. Needs --advertise-address.
    #[arg(long, env = "MCP_SESSION_KEY_FILE", global = true)]
    pub session_key_file: Option<PathBuf>,

    /// IP:PORT at which other replicas reach this one (the pod IP and serving port), named in
    /// the ids of the sessions this replica owns; an IP alone means the --listen port (so a
    /// pod IP, v4 or v6, can be passed as it is). Used with --session-key-file.
    #[arg(long, env = "MCP_ADVERTISE_ADDRESS", global = true, value_parser = parse_advertise)]
    pub advertise_address: Option<Advertise>,

    /// Largest accepted request body in bytes (larger ones get 413).
    #[arg(long, env = "MCP_MAX_BODY_BYTES", default_value_t = 4 * 1024 * 1024, global = true)]
    pub max_body_bytes: usize,

    /// Most concurrent MCP sessions (503 with Retry-After when full). Default: 10000 built-in,
    /// 100 in bridge mode (each bridged session is a process), 1000 in proxy mode (each
    /// proxied session holds upstream connections).
    #[arg(long, env = "MCP_MAX_SESSIONS", global = true)]
    pub max_sessions: Option<usize>,

    /// Seconds without requests or open streams after which a session is closed.
    #[arg(
        long,
        env = "MCP_SESSION_IDLE_SECONDS",
        default_value_t = 900,
        global = true
    )]
    pub session_idle_seconds: u64,

    /// Browser origins allowed to call the server (comma-separated, `*` for any). Requests
    /// without an Origin header are always allowed. Default: loopback origins only.
    #[arg(
        long,
        env = "MCP_ALLOWED_ORIGINS",
        value_delimiter = ',',
        global = true
    )]
    pub allowed_origins: Vec<String>,

    /// Host names accepted in the Host header (comma-separated, `*` for any). Default: any
    /// host, or only loopback names when listening on a loopback address.
    #[arg(long, env = "MCP_ALLOWED_HOSTS", value_delimiter = ',', global = true)]
    pub allowed_hosts: Vec<String>,

    /// How POST answers are sent.
    #[arg(long, env = "MCP_RESPONSE_MODE", value_enum, default_value_t = ResponseMode::Auto, global = true)]
    pub response_mode: ResponseMode,

    /// Built-in mode: also offer the reference fixtures of the @modelcontextprotocol/conformance
    /// server scenarios (tools test_*, resources test://..., prompts test_*), for running that
    /// suite against this server. Only a build with the `conformance` cargo feature has them.
    #[arg(long, env = "MCP_CONFORMANCE_FIXTURES", global = true)]
    pub conformance_fixtures: bool,

    /// Seconds a client may take to send a request header, counted from when the server starts
    /// waiting for one (a new connection, or the end of the previous response): closes
    /// half-sent requests and keep-alive connections idle that long. Streams being sent are not
    /// affected.
    #[arg(
        long,
        env = "MCP_HEADER_READ_TIMEOUT",
        default_value_t = 10,
        global = true
    )]
    pub header_read_timeout: u64,

    /// Seconds a client may take to send a request body (408 when exceeded).
    #[arg(
        long,
        env = "MCP_BODY_READ_TIMEOUT",
        default_value_t = 30,
        global = true
    )]
    pub body_read_timeout: u64,

    /// Most connections served at once; further ones wait in the listen backlog. An idle
    /// connection costs about 8 KiB.
    #[arg(
        long,
        env = "MCP_MAX_CONNECTIONS",
        default_value_t = 16384,
        global = true
    )]
    pub max_connections: usize,

    /// Messages kept per session for resuming broken SSE streams with Last-Event-ID. Only
    /// messages sent on SSE streams (or waiting for a GET stream) are kept.
    #[arg(long, env = "MCP_EVENT_HISTORY", default_value_t = 256, global = true)]
    pub event_history: usize,

    /// Bytes of messages kept per session for resuming streams; the oldest go first, and a
    /// resume that needs one of them gets 400.
    #[arg(long, env = "MCP_EVENT_HISTORY_BYTES", default_value_t = 1024 * 1024, global = true)]
    pub event_history_bytes: usize,

    /// Bytes of messages kept for resuming streams by all sessions together.
    #[arg(
        long,
        env = "MCP_EVENT_HISTORY_TOTAL_BYTES",
        default_value_t = 64 * 1024 * 1024,
        global = true
    )]
    pub event_history_total_bytes: usize,
}

/// `--advertise-address` as given: a full address, or an IP whose port is the listen port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Advertise {
    Address(SocketAddr),
    Ip(IpAddr),
}

fn parse_advertise(text: &str) -> Result<Advertise, String> {
    if let Ok(address) = text.parse() {
        return Ok(Advertise::Address(address));
    }
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    bare.parse()
        .map(Advertise::Ip)
        .map_err(|_| format!("{text:?} is neither IP:PORT nor an IP address"))
}

impl ServerArgs {
    /// Combinations of flags clap cannot check. (A `requires` between global flags fails when
    /// one is given before the subcommand and the other after it.)
    pub fn check(&self) -> Result<(), String> {
        if self.oauth_pass_token && self.oauth_issuer.is_none() {
            return Err(
                "--oauth-pass-token needs --oauth-issuer: without OAuth there is no checked token to pass"
                    .into(),
            );
        }
        Ok(())
    }

    /// The OAuth settings, when --oauth-issuer is given.
    pub fn oauth(&self) -> Option<crate::oauth::Settings> {
        let issuer = self.oauth_issuer.clone()?;
        // clap makes --oauth-issuer require --oauth-resource.
        let resource = self.oauth_resource.clone()?;
        Some(crate::oauth::Settings {
            issuer,
            resource,
            audiences: self.oauth_audiences.clone(),
            required_scopes: self.oauth_required_scopes.iter().cloned().collect(),
            jwks_url: self.oauth_jwks_url.clone(),
            clock_skew: Duration::from_secs(self.oauth_clock_skew_seconds),
            refetch_floor: Duration::from_secs(self.oauth_key_refetch_seconds),
            tool_scopes: self.oauth_tool_scopes.iter().cloned().collect(),
            ca_file: self.oauth_ca_file.clone(),
            pass_token: self.oauth_pass_token,
        })
    }

    /// The address other replicas reach this one at, the listen port filled in for a bare IP.
    pub fn advertise_address(&self) -> Option<SocketAddr> {
        self.advertise_address.map(|a| match a {
            Advertise::Address(address) => address,
            Advertise::Ip(ip) => SocketAddr::new(ip, self.listen.port()),
        })
    }

    pub fn keep_alive(&self) -> Duration {
        Duration::from_secs(self.keep_alive.max(1))
    }

    pub fn drain(&self) -> Duration {
        Duration::from_secs(self.drain_seconds)
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout.max(1))
    }

    pub fn body_read_timeout(&self) -> Duration {
        Duration::from_secs(self.body_read_timeout.max(1))
    }

    pub fn session_idle(&self) -> Duration {
        Duration::from_secs(self.session_idle_seconds.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bridge_takes_the_command_after_a_double_dash() {
        let cli = Cli::try_parse_from([
            "mcp-server",
            "bridge",
            "--max-restarts",
            "1",
            "--",
            "node",
            "s.js",
            "--flag",
        ])
        .unwrap();
        let Some(Mode::Bridge(b)) = cli.mode else {
            panic!("bridge mode expected")
        };
        assert_eq!(b.command, ["node", "s.js", "--flag"]);
        assert_eq!(b.max_restarts, 1);
    }

    #[test]
    fn proxy_takes_an_upstream_url_and_transport() {
        let cli = Cli::try_parse_from([
            "mcp-server",
            "proxy",
            "--upstream",
            "http://127.0.0.1:3000/sse",
            "--upstream-transport",
            "sse",
        ])
        .unwrap();
        let Some(Mode::Proxy(p)) = cli.mode else {
            panic!("proxy mode expected")
        };
        assert_eq!(p.upstream.as_str(), "http://127.0.0.1:3000/sse");
        assert_eq!(p.upstream_transport, UpstreamTransport::Sse);
        assert_eq!(p.connect_timeout, 10);
        assert!(Cli::try_parse_from(["mcp-server", "proxy", "--upstream", "not a url"]).is_err());
    }

    #[test]
    fn defaults_match_the_documentation() {
        let cli = Cli::try_parse_from(["mcp-server"]).unwrap();
        assert!(cli.mode.is_none());
        assert_eq!(cli.server.listen.to_string(), "0.0.0.0:8080");
        assert_eq!(cli.server.keep_alive, 15);
        assert_eq!(cli.server.max_body_bytes, 4 * 1024 * 1024);
        assert_eq!(cli.server.header_read_timeout, 10);
        assert_eq!(cli.server.body_read_timeout, 30);
        assert_eq!(cli.server.max_connections, 16384);
        assert_eq!(cli.server.event_history_bytes, 1024 * 1024);
        assert_eq!(cli.server.event_history_total_bytes, 64 * 1024 * 1024);
        assert!(cli.server.session_key_file.is_none() && cli.server.advertise_address.is_none());
    }

    #[test]
    fn routing_flags_apply_to_every_mode() {
        let cli = Cli::try_parse_from([
            "mcp-server",
            "bridge",
            "--session-key-file",
            "/keys/session",
            "--advertise-address",
            "10.0.0.7:8080",
            "--",
            "node",
        ])
        .unwrap();
        assert_eq!(
            cli.server.session_key_file.as_deref(),
            Some(std::path::Path::new("/keys/session"))
        );
        assert_eq!(
            cli.server.advertise_address(),
            Some("10.0.0.7:8080".parse().unwrap())
        );
    }

    #[test]
    fn passing_the_token_needs_oauth_and_reaches_the_settings() {
        let base = [
            "mcp-server",
            "--oauth-issuer",
            "https://id.example",
            "--oauth-resource",
            "https://mcp.example/mcp",
        ];
        let off = Cli::try_parse_from(base).unwrap().server.oauth().unwrap();
        assert!(!off.pass_token);
        let mut with = base.to_vec();
        with.extend([
            "proxy",
            "--upstream",
            "http://127.0.0.1:3000/mcp",
            "--oauth-pass-token",
        ]);
        let with = Cli::try_parse_from(with).unwrap().server;
        assert!(with.check().is_ok() && with.oauth().unwrap().pass_token);
        let alone = Cli::try_parse_from(["mcp-server", "--oauth-pass-token"]).unwrap();
        assert!(
            alone
                .server
                .check()
                .unwrap_err()
                .contains("needs --oauth-issuer")
        );
    }

    #[test]
    fn an_advertised_ip_alone_takes_the_listen_port() {
        let advertised = |listen: &str, ip: &str| {
            Cli::try_parse_from(["mcp-server", "--listen", listen, "--advertise-address", ip])
                .unwrap()
                .server
                .advertise_address()
        };
        assert_eq!(
            advertised("0.0.0.0:8099", "10.0.0.7"),
            Some("10.0.0.7:8099".parse().unwrap())
        );
        assert_eq!(
            advertised("[::]:8080", "fd00::7"),
            Some("[fd00::7]:8080".parse().unwrap())
        );
        assert_eq!(
            advertised("[::]:8080", "[fd00::7]"),
            Some("[fd00::7]:8080".parse().unwrap())
        );
        assert!(
            Cli::try_parse_from(["mcp-server", "--advertise-address", "pod-7:8080"]).is_err(),
            "a name is not an address"
        );
    }
}
