//! The `agent` program: what `main` runs (also linked into the image's multi-call binary).

use std::process::ExitCode;

use crate::config::{self, ParseError};
use crate::process::ProcessControl;
use crate::{exit, ProcessEnv};

/// How long the exit waits for the agent's last messages to reach stderr.
const STDERR_FLUSH: std::time::Duration = std::time::Duration::from_millis(500);

/// Runs the program with the process's arguments and environment: `agent check …` or
/// `agent import-task-definition …` (recognised only as the first argument, so an app
/// named `check` runs as `agent -- check`), or the start of the app.
pub fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    match args.next() {
        Some(first) if first == "check" => crate::check::main(std::env::args_os().skip(1)),
        Some(first) if first == crate::import::COMMAND => {
            crate::import::main(std::env::args_os().skip(1))
        }
        _ => start(),
    }
}

/// The start: secrets, then the app as PID 1.
fn start() -> ExitCode {
    // A panic's message may quote the app's output: never print it (see the hook).
    std::panic::set_hook(Box::new(crate::diagnostics::report_panic));
    // PID-1 duties first, before any thread exists: every thread created later inherits
    // the blocked signals, and the reaper owns every waitpid.
    let control = match ProcessControl::start() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("agent: {e}");
            return ExitCode::from(exit::SOFTWARE);
        }
    };
    let settings = match config::parse(std::env::args_os()) {
        Ok(s) => s,
        Err(e) => {
            match &e {
                ParseError::Clap(clap) => {
                    let _ = clap.print();
                }
                ParseError::Invalid(errors) => {
                    for err in errors {
                        eprintln!("agent: {err}");
                    }
                }
            }
            return ExitCode::from(e.exit_code());
        }
    };
    let diagnostics = crate::init_logging(settings.log_level, settings.log_format);
    // From here a panic's report waits in the stderr queue like every other line.
    let hook = diagnostics.clone();
    std::panic::set_hook(Box::new(move |info| hook.report_panic(info)));
    let runtime = match runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    // The future on the heap: on the stack its tens of KiB (every state of the start,
    // the AWS SDK's calls among them) were a frame the stack probe touched page by page
    // at every start, wherever the start went.
    let run = Box::pin(crate::run(settings, control, &ProcessEnv, &diagnostics));
    let code = runtime.block_on(run);
    // The last messages out, briefly: a stderr nobody reads must not hold the exit.
    diagnostics.flush_stderr(STDERR_FLUSH);
    // Not dropping the runtime: a refresh still in flight must not delay the exit.
    std::process::exit(code.into())
}

/// The agent's async runtime: one thread, the caller's (the PID-1 duties have their own
/// threads already). A system that refuses it is the agent's failure (70).
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("agent: cannot start the async runtime: {e}");
            ExitCode::from(exit::SOFTWARE)
        })
}
