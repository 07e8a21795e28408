//! The `healthcheck` program: what `main` runs (also linked into the image's multi-call binary).

use std::process::ExitCode;

use crate::cli::{init_tracing, Cli, Command, EXIT_CONFIG, EXIT_FAILED, EXIT_OK};
use crate::{CancellationToken, Config, ProbeConfig};
use anyhow::Context;
use clap::Parser;

/// Runs the program with the process's arguments and environment.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            init_tracing(cli.log_format);
            let config = match Config::from_args(&args, &pgconn::ProcessEnv) {
                Ok(config) => config,
                Err(e) => return config_error(&e),
            };
            match serve(config) {
                Ok(()) => ExitCode::from(EXIT_OK),
                Err(e) => {
                    tracing::error!("{e:#}");
                    ExitCode::from(EXIT_FAILED)
                }
            }
        }
        Command::Probe(args) => {
            let config = match ProbeConfig::from_args(&args) {
                Ok(config) => config,
                Err(e) => return config_error(&e),
            };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            let Ok(runtime) = runtime else {
                println!("unhealthy: cannot start the async runtime");
                return ExitCode::from(EXIT_FAILED);
            };
            let outcome = runtime.block_on(crate::probe(&config));
            println!("{}", outcome.message);
            ExitCode::from(outcome.exit_code())
        }
    }
}

fn serve(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.addr)
            .await
            .with_context(|| format!("cannot listen on {}", config.addr))?;
        let drain = CancellationToken::new();
        crate::drain_on_signal(drain.clone()).context("cannot handle SIGTERM")?;
        crate::run(listener, config, drain).await?;
        Ok(())
    })
}

fn config_error(error: &crate::ConfigError) -> ExitCode {
    eprintln!("healthcheck: error: {error}");
    ExitCode::from(EXIT_CONFIG)
}
