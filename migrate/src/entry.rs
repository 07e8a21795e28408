//! The `migrate` program: what `main` runs (also linked into the image's multi-call binary).

use std::process::ExitCode;

use conventions::exit::migrate::USAGE;
use conventions::logging::{self, LogFormat};
use conventions::{Checker, CommandLine, ProcessEnv};

use crate::cli::{run, Cli, Invocation};

/// Runs the program with the process's arguments and environment.
pub fn main() -> ExitCode {
    let (cli, env) = CommandLine::parse::<Cli>(ProcessEnv);
    let mut c = Checker::new(&env);
    logging::init("migrate", LogFormat::read(&mut c), "MIGRATE_LOG");
    let invocation = Invocation::read(&mut c, &cli.command);
    let invocation = match c.finish(invocation) {
        Ok(invocation) => invocation,
        Err(errors) => {
            for e in errors {
                tracing::error!(exit_code = USAGE, "{e}");
            }
            return ExitCode::from(USAGE);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("migrate: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    ExitCode::from(runtime.block_on(run(invocation)))
}
