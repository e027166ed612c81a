//! The `mcp-server` binary.

use clap::Parser;

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
