//! The agent: the container's ENTRYPOINT. It resolves secret references into the app's
//! environment, then runs the app as PID 1.
//!
//! - [`config`]: the command line and `DECKHAND_*` variables, validated.
//! - [`secrets`]: references → fetched values → the app's environment, fail-closed.
//! - [`process`]: signals, the one reaper, spawning (the only module with `unsafe`).
//! - [`supervise`]: forwarding, the stop sequence, rotation, leftover processes.
//!
//! [`run`] puts them together; `main.rs` only parses, starts logging and maps the result
//! to an exit code.

#![deny(unsafe_code)]

pub mod config;
pub mod exit;
pub mod process;
pub mod secrets;
pub mod supervise;

use std::sync::Arc;

use nix::sys::signal::Signal;
use tokio::sync::{mpsc, watch};

use config::Settings;
use process::{ChildSpec, Event, Output, ProcessControl};
use secrets::{Plan, Resolver, Secrets, Sources};

pub use config::{Env, ProcessEnv};

/// Resolves the secrets, runs the app and returns the agent's exit code. Nothing of
/// the app runs unless every secret resolved.
pub async fn run(settings: Settings, mut control: ProcessControl, env: &impl Env) -> u8 {
    let resolver = tokio::select! {
        r = prepare(&settings, env) => r,
        code = startup_stop(&mut control) => return code,
    };
    let resolver = match resolver {
        Ok(r) => Arc::new(r),
        Err(failure) => return fail(&failure),
    };
    let resolved = tokio::select! {
        r = resolver.resolve() => r,
        code = startup_stop(&mut control) => return code,
    };
    let resolved = match resolved {
        Ok(r) => r,
        Err(failure) => return fail(&failure),
    };
    for notice in &resolved.notices {
        tracing::warn!("{notice}");
    }
    if !resolved.secrets.is_empty() {
        tracing::info!(variables = ?resolved.secrets, "loaded secrets into the app's environment");
    }
    let (secrets, _) = watch::channel(resolved.secrets.clone());
    let rotation = settings.rotation.filter(|_| resolver.fetches()).map(|r| {
        let (tx, updates) = mpsc::channel(1);
        tokio::spawn(refresh(resolver.clone(), r.interval, tx));
        supervise::Rotation {
            on_rotate: r.on_rotate,
            updates,
            current: resolved.env.clone(),
        }
    });
    let spec = ChildSpec {
        program: settings.program.clone(),
        args: settings.args.clone(),
        env: resolved.env.to_vec(),
        stdout: Output::Inherit,
        stderr: Output::Inherit,
    };
    supervise::supervise(
        &mut control,
        spec,
        &settings.supervision,
        rotation,
        &secrets,
    )
    .await
}

/// The plan, and the AWS SDK only when there is something to fetch.
async fn prepare(
    settings: &Settings,
    env: &impl Env,
) -> Result<Resolver<Sources>, secrets::Failure> {
    let plan = Plan::new(env.vars(), settings.secrets.clone())?;
    let source = if plan.keys().is_empty() {
        None
    } else {
        Some(Arc::new(Sources::from_env().await))
    };
    Ok(Resolver::new(plan, source, settings.secrets_timeout))
}

fn fail(failure: &secrets::Failure) -> u8 {
    for e in &failure.errors {
        tracing::error!("{e}");
    }
    let code = failure.exit_code();
    tracing::error!(exit_code = code, "the app was not started");
    code
}

/// Before the app runs, SIGTERM, SIGINT or SIGQUIT end the start (exit 128 + n); other
/// signals have no one to go to.
async fn startup_stop(control: &mut ProcessControl) -> u8 {
    loop {
        match control.next_event().await {
            Some(Event::Signal(sig @ (Signal::SIGTERM | Signal::SIGINT | Signal::SIGQUIT))) => {
                tracing::warn!(signal = %sig, "stopped before the app was started");
                return exit::SIGNAL_BASE + sig as i32 as u8;
            }
            Some(_) => {}
            None => std::future::pending::<()>().await,
        }
    }
}

/// Re-resolves every `interval`; each success goes to the supervisor, which compares.
async fn refresh(
    resolver: Arc<Resolver<Sources>>,
    interval: std::time::Duration,
    tx: mpsc::Sender<secrets::Resolved>,
) {
    loop {
        tokio::time::sleep(interval).await;
        match resolver.resolve().await {
            Ok(resolved) => {
                if tx.send(resolved).await.is_err() {
                    return;
                }
            }
            Err(failure) => {
                tracing::warn!(error = %failure, "refreshing the secrets failed; the app keeps its values");
            }
        }
    }
}

/// The loaded secrets, for callers that build on [`run`]'s pieces (the log sanitizer).
pub fn known_secrets(secrets: &Secrets) -> impl Iterator<Item = (&str, &str)> {
    secrets
        .iter()
        .map(|l| (l.variable.as_str(), l.value.expose()))
}

/// Starts the agent's own diagnostics on stderr. Only the agent's crate logs at
/// `level`; libraries (the AWS SDK among them) at warn, so no request or response body
/// is ever logged.
pub fn init_logging(level: tracing::Level) {
    let filter = tracing_subscriber::EnvFilter::new(format!("warn,agent={level}"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
