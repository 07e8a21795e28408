//! The agent: the container's ENTRYPOINT. It resolves secret references into the app's
//! environment, then runs the app as PID 1.
//!
//! - [`config`]: the command line and `DECKHAND_*` variables, validated.
//! - [`secrets`]: references → fetched values → the app's environment, fail-closed.
//! - [`startup`]: what runs between the secrets and the app (migrations, `/health`).
//! - [`process`]: signals, the one reaper, spawning (the only module with `unsafe`).
//! - [`launch`]: why the app's file could not be started, from its first bytes.
//! - [`supervise`]: forwarding, the stop sequence, rotation, leftover processes.
//! - [`diagnostics`]: the agent's own messages, to stderr and into the app's stream.
//! - [`exit`]: the agent's rows of the toolkit's exit-code table.
//! - [`check`]: `agent check`, the start without the app: what each variable would be.
//!
//! [`run`] puts them together; [`entry::main`] (what `main.rs` and the multi-call
//! binary call) only parses, starts logging and maps the result to an exit code.

#![deny(unsafe_code)]

pub mod check;
pub mod config;
pub mod diagnostics;
pub mod entry;
pub mod exit;
pub mod headroom;
pub mod import;
pub mod launch;
pub mod memory;
pub mod process;
pub mod secrets;
pub mod startup;
pub mod supervise;

use std::sync::Arc;
use std::time::Duration;

use logship::sanitize::KnownSecret;
use logship::structure::Stream;
use logship::Logs;
use nix::sys::signal::Signal;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use config::Settings;
use process::{ChildSpec, Event, Output, ProcessControl};
use secrets::{Plan, Resolver, Secrets, Sources};

pub use conventions::{Env, ProcessEnv};

/// Resolves the secrets, starts the log pipeline, runs the startup extras, runs the
/// app, ships what it wrote, and returns the agent's exit code. Nothing of the app runs
/// unless every secret resolved (and the migrations, when asked for, succeeded).
pub async fn run(
    settings: Settings,
    mut control: ProcessControl,
    env: &impl Env,
    diagnostics: &diagnostics::Diagnostics,
) -> u8 {
    for warning in &settings.unknown {
        tracing::warn!("{warning}");
    }
    let cloud = Aws {
        sdk: aws::sdk::Shared::default(),
        metadata_uri: aws::ecs::metadata_uri(env),
    };
    if let Err(code) = check_stop_budget(&settings, &cloud).await {
        return code;
    }
    let resolver = tokio::select! {
        r = prepare(&settings, env, &cloud) => r,
        code = startup_stop(&mut control) => return code,
    };
    let resolver = match resolver {
        Ok(r) => Arc::new(r),
        Err(Unprepared::Plan(failure)) => {
            return fail_before_app(&settings, &failure, diagnostics, &cloud).await
        }
        Err(Unprepared::Aws(failure)) => return fail(&failure),
    };
    let resolved = tokio::select! {
        r = resolver.resolve() => r,
        code = startup_stop(&mut control) => return code,
    };
    let resolved = match resolved {
        Ok(r) => r,
        Err(failure) => return fail_before_app(&settings, &failure, diagnostics, &cloud).await,
    };
    let logs = tokio::select! {
        l = start_logs(&settings, &resolved.secrets, diagnostics, &cloud) => l,
        code = startup_stop(&mut control) => return code,
    };
    let logs = match logs {
        Ok(logs) => logs,
        Err(code) => return code,
    };
    for notice in &resolved.notices {
        tracing::warn!("{notice}");
    }
    if let Some(buffers) = headroom::buffers(&settings.logs) {
        logs.spawn(headroom::check(buffers, cloud.metadata_uri.clone()));
    }
    if !resolved.secrets.is_empty() {
        tracing::info!(variables = ?resolved.secrets, "loaded secrets into the app's environment");
    }
    let outcome = run_app(&settings, &mut control, &resolver, resolved, &logs).await;
    finish_logs(logs, &settings, outcome.stop_requested, diagnostics).await;
    outcome.code
}

/// The health server, migrations, then the app under supervision, its pipes read by
/// the log pipeline. The health server comes first, so `/health/live` answers during a
/// long migration and `/health` says `starting` (with the phase) until the app runs.
async fn run_app(
    settings: &Settings,
    control: &mut ProcessControl,
    resolver: &Arc<Resolver<Sources>>,
    resolved: secrets::Resolved,
    logs: &Logs,
) -> supervise::Outcome {
    let early = |code, health: Option<startup::Health>| {
        if let Some(server) = health {
            server.stop();
        }
        supervise::Outcome {
            code,
            stop_requested: None,
        }
    };
    let phase = healthcheck::Phase::new(if settings.migrate_on_start {
        healthcheck::Stage::Migrating
    } else {
        healthcheck::Stage::StartingApp
    });
    let draining = healthcheck::CancellationToken::new();
    let health = match settings.health_addr {
        Some(addr) => {
            let host = healthcheck::Host {
                phase: phase.clone(),
                logs: startup::logs_provider(logs),
            };
            let stop_delay = settings.supervision.stop_delay;
            match startup::health(addr, &resolved.env, host, draining.clone(), stop_delay).await {
                Ok(task) => Some(task),
                Err(code) => return early(code, None),
            }
        }
        None => None,
    };
    if settings.migrate_on_start {
        let url_var = settings
            .secrets
            .database
            .as_ref()
            .map_or("DATABASE_URL", |d| d.url_var.as_str());
        let migrated = tokio::select! {
            r = startup::migrate(&resolved.env, url_var) => r,
            code = startup_stop(control) => Err(code),
        };
        if let Err(code) = migrated {
            return early(code, health);
        }
        phase.set(healthcheck::Stage::StartingApp);
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
        stdout: Output::Pipe,
        stderr: Output::Pipe,
    };
    let mut captures = Vec::new();
    let mut handing_back = false;
    let redactions = logs.shared_sanitizer();
    let hooks = supervise::Hooks {
        on_spawn: Box::new(|child: &mut process::Spawned| {
            captures.extend(capture(logs, child));
            // Once the start has settled, its memory goes back (on the logs thread).
            if !handing_back {
                handing_back = true;
                logs.spawn(memory::after_start(logs.activity()));
            }
            phase.set(healthcheck::Stage::Ready);
        }),
        stopping: Some(draining),
        on_rotated: Box::new(|loaded: &Secrets| {
            let skipped = redactions.add_secrets(redactable(settings, loaded));
            if !skipped.is_empty() {
                tracing::warn!(variables = ?skipped, "rotated secrets shorter than {} characters are not redacted from logs: {}", logship::sanitize::MIN_SECRET_LEN, skipped.join(", "));
            }
        }),
    };
    let outcome = supervise::supervise(
        control,
        spec,
        &settings.supervision,
        rotation,
        &secrets,
        hooks,
    )
    .await;
    // The app and everything it left behind are gone: the pipes reach their end.
    let deadline = flush_deadline(settings, outcome.stop_requested);
    for task in captures {
        if tokio::time::timeout_at(deadline, task).await.is_err() {
            tracing::warn!(
                "the app's output was still open at the stop deadline; the rest of it is not read"
            );
        }
    }
    if let Some(server) = health {
        server.stop();
    }
    outcome
}

/// Starts reading the app's pipes (on the log pipeline's thread).
fn capture(logs: &Logs, child: &mut process::Spawned) -> Vec<tokio::task::JoinHandle<()>> {
    let pipes = [
        (
            child.stdout.take().map(std::os::fd::OwnedFd::from),
            Stream::Stdout,
        ),
        (
            child.stderr.take().map(std::os::fd::OwnedFd::from),
            Stream::Stderr,
        ),
    ];
    let mut tasks = Vec::new();
    for (pipe, stream) in pipes {
        let Some(pipe) = pipe else { continue };
        match logs.capture_pipe(pipe, stream) {
            Ok(task) => tasks.push(task),
            Err(e) => tracing::error!("cannot read the app's {}: {e}", stream.as_str()),
        }
    }
    tasks
}

/// The AWS side of a run, made once in [`run`]: the SDK configuration the secret stores
/// and the log shipper share (loaded when first needed), and the task metadata
/// endpoint (`ECS_CONTAINER_METADATA_URI_V4`).
struct Aws {
    sdk: aws::sdk::Shared,
    metadata_uri: Option<String>,
}

/// How long the start waits for the task document: the endpoint is link-local, in
/// the task, and answers in milliseconds; a start must not wait on it for long.
const LAUNCH_TYPE_TIMEOUT: Duration = Duration::from_millis(500);

/// The stop's length against where the task runs ([`Settings::stop_budget`]): logs its
/// warnings, or refuses the start (exit 64) when a stop delay plus stop timeout cannot
/// fit Fargate's longest `stopTimeout` and the task runs on Fargate. The task metadata
/// is read only when the launch type matters
/// ([`config::Supervision::depends_on_launch_type`]).
async fn check_stop_budget(settings: &Settings, cloud: &Aws) -> Result<(), u8> {
    let launch = if settings.supervision.depends_on_launch_type() {
        launch_type(cloud.metadata_uri.as_deref(), LAUNCH_TYPE_TIMEOUT).await
    } else {
        config::LaunchType::Unknown("not read: the stop fits any stopTimeout".to_owned())
    };
    match settings.stop_budget(&launch) {
        Ok(warnings) => {
            let needed = settings.supervision.needed_stop_timeout().as_secs();
            for warning in warnings {
                tracing::warn!(stop_timeout_needed = needed, "{warning}");
            }
            Ok(())
        }
        Err(refusal) => {
            tracing::error!("{refusal}");
            tracing::error!(exit_code = exit::USAGE, "the app was not started");
            Err(exit::USAGE)
        }
    }
}

/// The task's launch type from the task document at `metadata_uri`; unknown, and why,
/// without an endpoint or when it cannot be read within `timeout`.
async fn launch_type(metadata_uri: Option<&str>, timeout: Duration) -> config::LaunchType {
    let Some(uri) = metadata_uri else {
        return config::LaunchType::Unknown(format!(
            "{} is not set: not on ECS",
            aws::ecs::METADATA_URI_VAR
        ));
    };
    let read = async { aws::ecs::Endpoint::new(uri)?.task(timeout).await };
    match read.await {
        Ok(task) => config::LaunchType::from_metadata(task.launch_type.as_deref()),
        Err(e) => config::LaunchType::Unknown(format!("cannot read the task metadata: {e}")),
    }
}

/// The log pipeline, with the loaded secrets for its sanitizer; the agent's own
/// messages go through it from here on. Fails (with the exit code) only when the
/// system refuses the pipeline's threads: the redaction patterns were compiled when the
/// settings were read.
async fn start_logs(
    settings: &Settings,
    secrets: &Secrets,
    diagnostics: &diagnostics::Diagnostics,
    cloud: &Aws,
) -> Result<Logs, u8> {
    let known = redactable(settings, secrets);
    let sdk = match &settings.logs.group {
        Some(_) => Some(cloud.sdk.get().await),
        None => None,
    };
    let metadata = &cloud.metadata_uri;
    let (logs, skipped) =
        match Logs::start(&settings.logs, known, sdk.as_ref(), metadata.as_deref()).await {
            Ok(started) => started,
            Err(e) => {
                tracing::error!("{e}");
                return Err(exit::SOFTWARE);
            }
        };
    if let Some(events) = diagnostics.attach(logs.shared_sanitizer(), logs.ships()) {
        logs.spawn(diagnostics.forward(logs.agent_events(), events));
    }
    if let Some(dest) = logs.destination() {
        tracing::info!(group = %dest.group, stream = %dest.stream, "shipping the app's output to CloudWatch Logs");
    }
    if !settings.redact_skip.is_empty() {
        tracing::info!(
            variables = ?settings.redact_skip,
            "not redacting the values of {} (DECKHAND_REDACT_SKIP)",
            settings.redact_skip.join(", ")
        );
    }
    let configuration = secrets.configuration();
    if !configuration.is_empty() {
        let variables: Vec<&str> = configuration.iter().map(|c| c.variable.as_str()).collect();
        let named: Vec<String> = configuration
            .iter()
            .map(|c| format!("{} (\"{}\")", c.variable, c.source))
            .collect();
        tracing::info!(
            ?variables,
            "not redacting the values of String and StringList parameters, which are configuration (DECKHAND_REDACT_PARAMETERS=all redacts them too): {}",
            named.join(", ")
        );
    }
    if !skipped.is_empty() {
        tracing::warn!(
            variables = ?skipped,
            "these secrets are shorter than {} characters and are not redacted from logs: {}",
            logship::sanitize::MIN_SECRET_LEN,
            skipped.join(", ")
        );
    }
    // Only what is redacted: a skipped or too short value has had its message.
    for s in secrets.looks_like_configuration() {
        let exempt = |name: &String| *name == s.variable;
        if settings.redact_skip.iter().any(exempt) || skipped.iter().any(exempt) {
            continue;
        }
        tracing::warn!(
            variable = %s.variable,
            source = %s.source,
            reason = s.reason,
            "{}'s value (from secret \"{}\") looks like configuration, not a secret ({}); it is redacted from logs anyway — list it in DECKHAND_REDACT_SKIP if that is intended",
            s.variable,
            s.source,
            s.reason
        );
    }
    Ok(logs)
}

/// The loaded secrets the sanitizer redacts: all but `DECKHAND_REDACT_SKIP`'s.
pub(crate) fn redactable(settings: &Settings, secrets: &Secrets) -> Vec<KnownSecret> {
    known_secrets(secrets)
        .filter(|(name, _)| !settings.redact_skip.iter().any(|s| s == name))
        .map(|(name, value)| KnownSecret::new(name, value))
        .collect()
}

/// When the rest of the output must be shipped by: what is left of the stop timeout
/// after the stop began — SIGTERM, or the end of `DECKHAND_STOP_DELAY` — (at least a
/// second), or a whole stop timeout after the app exited on its own.
fn flush_deadline(settings: &Settings, stop_requested: Option<Instant>) -> Instant {
    let timeout = settings.supervision.stop_timeout;
    match stop_requested {
        Some(t) => (t + timeout).max(Instant::now() + Duration::from_secs(1)),
        None => Instant::now() + timeout,
    }
}

/// Ships what is buffered by the deadline and reports what happened to the output.
async fn finish_logs(
    logs: Logs,
    settings: &Settings,
    stop_requested: Option<Instant>,
    diagnostics: &diagnostics::Diagnostics,
) {
    let deadline = flush_deadline(settings, stop_requested);
    diagnostics.drain(deadline).await;
    let ships = logs.ships();
    let report = logs.finish(deadline).await;
    let count = |name: &str| {
        report
            .counters
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, v)| *v)
    };
    if report.unshipped > 0 {
        let why = match &report.failing {
            Some(e) => format!(" (the calls were failing: {e})"),
            None => String::new(),
        };
        tracing::error!(
            unshipped = report.unshipped,
            "{} events could not be shipped to CloudWatch Logs before the stop deadline{why}",
            report.unshipped
        );
    }
    let not_written = count("dropped_stdout");
    if not_written > 0 {
        let why = match &report.not_written {
            Some(e) => format!("writing failed ({e}), or it was not read fast enough"),
            None => "it was not read fast enough".to_owned(),
        };
        tracing::warn!(
            dropped_stdout = not_written,
            "{not_written} events could not be written to stdout: {why} (the events still went to CloudWatch when a log group is set)"
        );
    }
    let failed = count("failed_lines");
    if failed > 0 {
        tracing::error!(
            failed_lines = failed,
            "{failed} lines were dropped by an internal error of the log pipeline (each was replaced by an event that says how many bytes were lost); please report it"
        );
    }
    let dropped = count("dropped_buffer_full");
    if dropped > 0 {
        tracing::warn!(
            dropped,
            "{dropped} events were dropped because the log buffer was full (raise DECKHAND_LOG_BUFFER, or set DECKHAND_LOG_FULL=block)"
        );
    }
    if ships {
        tracing::info!(counters = ?report.counters, redactions = ?report.redactions, "log pipeline finished");
    }
}

/// A start that failed before the app: the errors go to stderr, and to CloudWatch
/// when a log group is set (the only place some teams look).
async fn fail_before_app(
    settings: &Settings,
    failure: &secrets::Failure,
    diagnostics: &diagnostics::Diagnostics,
    cloud: &Aws,
) -> u8 {
    let logs = match &settings.logs.group {
        Some(_) => start_logs(settings, &Secrets::default(), diagnostics, cloud)
            .await
            .ok(),
        None => None,
    };
    let code = fail(failure);
    if let Some(logs) = logs {
        finish_logs(logs, settings, Some(Instant::now()), diagnostics).await;
    }
    code
}

/// Why the start stopped before anything was fetched.
enum Unprepared {
    /// A reference or setting that cannot be read: said on stderr, and shipped to
    /// CloudWatch when a log group is set.
    Plan(secrets::Failure),
    /// An AWS configuration that cannot work ([`check_aws`]): said on stderr only, as
    /// shipping could not work either (and it is among what is checked).
    Aws(secrets::Failure),
}

/// The plan, and the AWS SDK only when there is something to fetch — and something
/// configured that could fetch it, and ship (credentials, and a region for what is
/// named without one): a configuration mistake stops the start at once, not at the
/// deadline.
async fn prepare(
    settings: &Settings,
    env: &impl Env,
    cloud: &Aws,
) -> Result<Resolver<Sources>, Unprepared> {
    let plan = Plan::new(env.vars(), settings.secrets.clone());
    let keys = plan.as_ref().map(Plan::keys).unwrap_or_default();
    if let Err(mut failure) = check_aws(settings, env, &keys).await {
        if let Err(unread) = plan {
            failure.errors.splice(0..0, unread.errors);
        }
        return Err(Unprepared::Aws(failure));
    }
    let plan = plan.map_err(Unprepared::Plan)?;
    let source = if keys.is_empty() {
        None
    } else {
        Some(Arc::new(Sources::new(&cloud.sdk.get().await)))
    };
    Ok(Resolver::new(plan, source, settings.secrets_timeout))
}

/// Before the AWS SDK is loaded: whether its configuration could work for what loads
/// it, the references to fetch (`keys`) and shipping to CloudWatch Logs
/// ([`aws::sdk::check_configuration`]): a file the SDK would read for ever, an endpoint
/// it cannot call, no credentials, no region (or one that is not a region's name) where
/// one is needed — every problem named, with what needs it, exit 78. Shipping always
/// needs a region (a log group is named without one); without this, shipping that
/// could never work retried in silence until the stop, every event lost.
pub(crate) async fn check_aws(
    settings: &Settings,
    env: &impl Env,
    keys: &std::collections::BTreeSet<secrets::Key>,
) -> Result<(), secrets::Failure> {
    let ships = settings.logs.group.is_some();
    if keys.is_empty() && !ships {
        return Ok(());
    }
    const SHIPPING: &str = "shipping to CloudWatch Logs (CLOUDWATCH_LOG_GROUP)";
    let regionless: Vec<String> = keys
        .iter()
        .filter(|k| k.region().is_none())
        .map(|k| format!("{} \"{k}\"", k.noun()))
        .collect();
    let needs_region = ships || !regionless.is_empty();
    let problems = match aws::sdk::check_configuration(env, needs_region).await {
        Ok(()) => return Ok(()),
        Err(problems) => problems,
    };
    let message = |p: &aws::sdk::Problem| match p {
        aws::sdk::Problem::NoRegion { .. } | aws::sdk::Problem::Region { .. } => {
            const SHOWN: usize = 3;
            let mut named: Vec<&str> = regionless.iter().take(SHOWN).map(String::as_str).collect();
            if ships {
                named.insert(0, SHIPPING);
            }
            let mut named = named.join(", ");
            if regionless.len() > SHOWN {
                named.push_str(&format!(" and {} more", regionless.len() - SHOWN));
            }
            let by_arn = if regionless.is_empty() {
                ""
            } else {
                ", or name each secret and parameter by its full ARN, whose region is used \
                 (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME, \
                 arn:aws:ssm:REGION:ACCOUNT:parameter/NAME)"
            };
            format!("{named}: {p}{by_arn}")
        }
        aws::sdk::Problem::NoCredentials { .. } if keys.is_empty() => format!("{SHIPPING}: {p}"),
        aws::sdk::Problem::Endpoint { .. } | aws::sdk::Problem::File { .. } if ships => {
            format!("{SHIPPING} loads the AWS SDK: {p}")
        }
        _ => p.to_string(),
    };
    Err(config_failure(problems.iter().map(message)))
}

/// Configuration mistakes as a failed start: each message an error, exit 78.
fn config_failure(messages: impl Iterator<Item = String>) -> secrets::Failure {
    secrets::Failure {
        errors: messages
            .map(|message| secrets::SecretError {
                exit_code: exit::CONFIG,
                message,
            })
            .collect(),
    }
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

/// Starts the agent's own diagnostics on stderr (see [`diagnostics`]); [`run`] attaches
/// them to the log pipeline.
pub fn init_logging(level: tracing::Level, format: config::LogFormat) -> diagnostics::Diagnostics {
    diagnostics::init(level, format)
}

#[cfg(test)]
mod tests {
    use super::*;
    use config::LaunchType;

    #[tokio::test]
    async fn the_launch_type_is_unknown_without_a_readable_task_document() {
        let timeout = Duration::from_millis(500);
        let LaunchType::Unknown(why) = launch_type(None, timeout).await else {
            panic!("a launch type without an endpoint");
        };
        assert_eq!(why, "ECS_CONTAINER_METADATA_URI_V4 is not set: not on ECS");
        // A port nothing listens on: refused at once.
        let uri = format!("http://{}/v4/x", testkit::net::closed_port());
        let LaunchType::Unknown(why) = launch_type(Some(&uri), timeout).await else {
            panic!("a launch type from a closed port");
        };
        assert!(why.starts_with("cannot read the task metadata: "), "{why}");
        let LaunchType::Unknown(why) = launch_type(Some("not a url"), timeout).await else {
            panic!("a launch type from a bad address");
        };
        assert!(why.contains("is not an http:// URL"), "{why}");
    }
}
