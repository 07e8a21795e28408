//! The `healthcheck` program: what `main` runs (also linked into the image's multi-call binary).

use std::process::ExitCode;

use anyhow::Context;
use conventions::exit::{self, healthcheck::FAILED, healthcheck::USAGE};
use conventions::logging::{self, LogFormat};
use conventions::{Checker, CommandLine, Invalid, ProcessEnv};

use crate::cli::{Cli, Command};
use crate::{CancellationToken, Config, ProbeConfig};

/// Runs the program with the process's arguments and environment.
pub fn main() -> ExitCode {
    let (cli, env) = CommandLine::parse::<Cli>(ProcessEnv);
    let mut c = Checker::new(&env);
    let format = LogFormat::read(&mut c);
    match cli.command {
        Command::Serve(_) => {
            logging::init("healthcheck", format, "HEALTH_LOG");
            let config = Config::read(&mut c);
            let config = match c.finish(config) {
                Ok(config) => config,
                Err(errors) => return usage(&errors),
            };
            match serve(config) {
                Ok(()) => ExitCode::from(exit::OK),
                Err(e) => {
                    tracing::error!("{e:#}");
                    ExitCode::from(FAILED)
                }
            }
        }
        Command::Probe(_) => {
            let config = ProbeConfig::read(&mut c);
            let config = match c.finish(config) {
                Ok(config) => config,
                Err(errors) => return usage(&errors),
            };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            let Ok(runtime) = runtime else {
                println!("unhealthy: cannot start the async runtime");
                return ExitCode::from(FAILED);
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
        // Standalone, the app starts on its own: ready from the start, no log pipeline.
        crate::run(listener, config, crate::Host::default(), drain).await?;
        Ok(())
    })
}

/// Every bad setting, one line each; exit 2.
fn usage(errors: &[Invalid]) -> ExitCode {
    for error in errors {
        eprintln!("healthcheck: error: {error}");
    }
    ExitCode::from(USAGE)
}
