//! The `mcp-server` binary.

use clap::Parser;

/// jemalloc rather than the system allocator: with thousands of idle connections, each holding
/// mostly untouched buffers, it keeps far fewer pages resident (measured in BENCHMARKS.md).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = mcp_server::config::Cli::parse();
    mcp_server::telemetry::init(cli.server.log_format, &cli.server.log);
    match mcp_server::server::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "mcp-server failed");
            std::process::ExitCode::FAILURE
        }
    }
}
