//! The agent's log pipeline. Data flows one way, one module each:
//! capture → structure → sanitize → batch → ship, with accounting alongside.
//!
//! - [`capture`]: read the app's pipes, split lines, drive the stages below.
//! - [`structure`]: lines become JSON events with a timestamp.
//! - [`sanitize`]: the one place where anything is redacted.
//! - [`batch`]: PutLogEvents batches within every limit of the service; splitting.
//! - [`buffer`]: the byte-bounded queue in front of the shipper (drop-oldest or block).
//! - [`ship`]: CloudWatch Logs calls, retries, and the delivery loop.
//! - [`stdout`]: the agent's stdout copy, a sink behind a buffer like CloudWatch.
//! - [`account`]: counters for every line, published as Embedded Metric Format.
//! - [`config`] and [`ecs`]: settings, and the task metadata that names the stream.
//! - [`runtime`]: the thread of its own the whole pipeline runs on.
//! - [`json`] and [`time`]: JSON string escaping and checks, RFC 3339 and calendar
//!   maths, shared by the stages (no stage imports another stage's helpers).
//!
//! [`Logs`] puts them together for the agent. The promise: every line the app writes
//! is in CloudWatch (sanitized), or counted as dropped with a reason, and the app is
//! never slowed down by the agent (unless `DECKHAND_LOG_FULL=block` asks for it).
//!
//! Threads: the capture tasks and the delivery loop run on the `logs` thread's runtime
//! ([`runtime::Dedicated`]), the stdout copy is written by the `stdout` thread. Nothing
//! of the pipeline runs on the caller's thread, so the agent's PID-1 duties there never
//! wait on a line, a sink or CloudWatch.

// `unsafe` only in `sanitize::prefilter` and `sanitize::cards` (AVX2 chosen at run
// time), which allow it.
#![deny(unsafe_code)]

pub mod account;
pub mod batch;
pub mod buffer;
pub mod capture;
pub mod config;
pub mod ecs;
pub mod json;
pub mod runtime;
pub mod sanitize;
pub mod ship;
pub mod stdout;
pub mod structure;
pub mod time;

use std::future::Future;
use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use account::{Counters, DeliveryHealth, LogHealth, Progress};
use buffer::Buffer;
use capture::Pipeline;
use config::{AutoSwitch, LogSettings, StdoutMode};
use sanitize::{KnownSecret, Sanitizer};
use ship::{Delivery, Destination, Shipper, StopHandle, Summary};
use structure::{Context, Event, Stream};

/// How long a multi-line event waits for its next continuation line.
const MULTILINE_WINDOW: Duration = Duration::from_millis(200);
/// How often the delivery's progress is sampled for `/health` ([`Logs::health`]): the
/// lag it reports is exact to this much, well under any sensible `HEALTH_LOGS_MAX_LAG`.
const HEALTH_SAMPLE: Duration = Duration::from_secs(1);

/// The running pipeline.
pub struct Logs {
    pipeline: Arc<Pipeline>,
    delivery: Option<(StopHandle, JoinHandle<Summary>)>,
    /// The stdout copy's writer, when the copy is on.
    stdout: Option<stdout::Stdout>,
    /// The writer of the app's stderr events to the agent's stderr, in text.
    stderr: Option<stdout::Stdout>,
    counters: Arc<Counters>,
    destination: Option<Destination>,
    /// The delivery as `/health` shows it, when events are shipped.
    health: Option<DeliveryHealth>,
    /// Where every task of the pipeline runs; dropped last.
    runtime: runtime::Dedicated,
}

/// Why the pipeline could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Sanitizer(#[from] conventions::Invalid),
    #[error("cannot start the log pipeline's threads: {0}")]
    Thread(#[from] std::io::Error),
}

/// What happened to the app's output, for the exit summary.
#[derive(Debug, Clone)]
pub struct Report {
    pub counters: Vec<(&'static str, u64)>,
    pub redactions: Vec<(&'static str, u64)>,
    /// Events not shipped by the deadline (0 when shipping is off).
    pub unshipped: u64,
    /// Why the last CloudWatch Logs call failed, when calls were failing at the stop.
    pub failing: Option<String>,
    /// Why a write of the stdout copy (or of the app's stderr, in text) failed, if one
    /// did: `Broken pipe (os error 32)`.
    pub not_written: Option<String>,
}

impl Logs {
    /// Builds the sanitizer from the loaded secrets, reads the task metadata (when
    /// `metadata_uri` is given and context or stream naming needs it), and starts the
    /// delivery loop when a log group is configured. Returns the names of secrets too
    /// short to redact. Only a `DECKHAND_REDACT_PATTERNS` entry that does not compile,
    /// or a thread the system refuses, fails it: CloudWatch being unreachable never
    /// does (events go to stdout and shipping keeps trying).
    pub async fn start(
        settings: &LogSettings,
        secrets: Vec<KnownSecret>,
        sdk: Option<&aws_config::SdkConfig>,
        metadata_uri: Option<&str>,
    ) -> Result<(Logs, Vec<String>), StartError> {
        let config = sanitize::Config {
            secrets,
            redact_name: settings.redact_name,
            extra_patterns: settings.redact_patterns.clone(),
            extra_keys: settings.redact_keys.clone(),
        };
        let (sanitizer, skipped) = Sanitizer::new(config.clone())?;
        let context = match (metadata_uri, settings.ecs_context) {
            (_, AutoSwitch::Off) | (None, _) => None,
            (Some(uri), _) => match ecs::read(uri).await {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the ECS task metadata; events carry no task context: {e}");
                    None
                }
            },
        };
        let runtime = runtime::Dedicated::start("logs")?;
        // The trigger walk's prefilter asks the CPU what it has once (the standard
        // library's detection, several `cpuid`s that trap to the hypervisor in a VM):
        // here, on the `logs` thread while the app starts, not in the first line
        // sanitized, which at a short run is the agent's own, after the app's exit.
        runtime.spawn(async { sanitize::ask_the_cpu() });
        let counters = Arc::new(Counters::default());
        let sanitizer = Arc::new(sanitize::Current::new(sanitizer, config));
        let (buffer, delivery, destination, health) = match (&settings.group, sdk) {
            (Some(group), Some(sdk)) => {
                let dest = Destination {
                    group: group.clone(),
                    stream: stream_name(settings, context.as_ref()),
                    retention_days: settings.retention_days,
                };
                let buffer = Arc::new(Buffer::new(
                    settings.buffer_bytes,
                    settings.full,
                    counters.clone(),
                ));
                let (stop, stopped) = ship::stop_handle();
                let redactions = sanitizer.clone();
                let options = Delivery {
                    flush: settings.flush,
                    metrics_interval: settings.metrics_interval,
                    dimensions: context
                        .as_ref()
                        .map(|c| vec![("TaskDefinition".to_owned(), c.task_definition.clone())])
                        .unwrap_or_default(),
                    redactions: Arc::new(move || redactions.get().counts()),
                };
                let task = runtime.spawn(ship::deliver(
                    Shipper::new(sdk, dest.clone()),
                    buffer.clone(),
                    counters.clone(),
                    options,
                    stopped,
                ));
                let health = DeliveryHealth {
                    progress: Arc::new(Progress::new(&counters)),
                    counters: counters.clone(),
                };
                runtime.spawn(follow_delivery(health.clone(), buffer.clone()));
                (Some(buffer), Some((stop, task)), Some(dest), Some(health))
            }
            _ => (None, None, None, None),
        };
        let format = match settings.stdout {
            StdoutMode::Off => None,
            StdoutMode::Json => Some(stdout::Format::Json),
            StdoutMode::Text => Some(stdout::Format::Text {
                ansi: !settings.strip_ansi,
            }),
        };
        let stdout = format
            .map(|format| {
                stdout::Stdout::start(
                    std::io::stdout(),
                    format,
                    settings.buffer_bytes,
                    settings.full,
                    counters.clone(),
                )
            })
            .transpose()?;
        // In text, for people: the app's stderr stays on stderr.
        let stderr = match format {
            Some(format @ stdout::Format::Text { .. }) => Some(stdout::Stdout::start(
                std::io::stderr(),
                format,
                settings.buffer_bytes,
                settings.full,
                counters.clone(),
            )?),
            _ => None,
        };
        let pipeline = Arc::new(Pipeline {
            options: structure::Options {
                multiline: settings.multiline,
                strip_ansi: settings.strip_ansi,
                context: context.filter(|_| settings.ecs_context != AutoSwitch::Off),
                stderr_level: settings.stderr_level,
            },
            sanitizer,
            buffer,
            stdout: stdout.as_ref().map(|s| s.buffer().clone()),
            stderr: stderr.as_ref().map(|s| s.buffer().clone()),
            counters: counters.clone(),
            max_event_bytes: settings.max_event_bytes,
            multiline_window: MULTILINE_WINDOW,
        });
        Ok((
            Logs {
                pipeline,
                delivery,
                stdout,
                stderr,
                counters,
                destination,
                health,
                runtime,
            },
            skipped,
        ))
    }

    /// Reads one of the app's pipes to its end in a task of its own (on the pipeline's
    /// thread).
    pub fn capture<R>(&self, reader: R, stream: Stream) -> JoinHandle<()>
    where
        R: capture::Source + Send + 'static,
    {
        self.runtime
            .spawn(capture::capture(reader, stream, self.pipeline.clone()))
    }

    /// [`Logs::capture`] for the read end of a pipe (the app's stdout or stderr),
    /// registered with the pipeline's own runtime.
    pub fn capture_pipe(&self, pipe: OwnedFd, stream: Stream) -> std::io::Result<JoinHandle<()>> {
        let _context = self.runtime.handle().enter();
        Ok(self.capture(capture::AppPipe::new(pipe)?, stream))
    }

    /// Runs `future` on the pipeline's thread (work that feeds the pipeline, like the
    /// agent's own messages, belongs there too).
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.runtime.spawn(future)
    }

    /// Sends one of the agent's own diagnostics (a JSON object) to the stream,
    /// sanitized. Not to stdout: the agent writes its diagnostics to stderr itself.
    pub async fn agent_event(&self, timestamp_ms: i64, json: String) {
        self.agent_events().send(timestamp_ms, json).await;
    }

    /// A handle for [`Logs::agent_event`] that a task can own.
    pub fn agent_events(&self) -> AgentEvents {
        AgentEvents(self.pipeline.clone())
    }

    /// The sanitizer in use (replaced when more secrets are added).
    pub fn sanitizer(&self) -> Arc<Sanitizer> {
        self.pipeline.sanitizer.get()
    }

    /// The sanitizer, for the agent's own stderr, and to add the secrets a rotation
    /// loads ([`sanitize::Current::add_secrets`]).
    pub fn shared_sanitizer(&self) -> Arc<sanitize::Current> {
        self.pipeline.sanitizer.clone()
    }

    /// Reads the pipeline's [`account::Activity`], from any thread, for as long as it
    /// is kept.
    pub fn activity(&self) -> impl Fn() -> account::Activity + Send + Sync + 'static {
        let counters = self.counters.clone();
        let ships = self.ships();
        move || counters.activity(ships)
    }

    /// Whether events are shipped to CloudWatch Logs.
    pub fn ships(&self) -> bool {
        self.delivery.is_some()
    }

    /// Where events are shipped, if anywhere.
    pub fn destination(&self) -> Option<&Destination> {
        self.destination.as_ref()
    }

    /// The delivery to CloudWatch Logs as `/health` shows it (shipped, dropped,
    /// rejected, lag); `None` when events are not shipped.
    pub fn health(&self) -> Option<LogHealth> {
        self.health.as_ref().map(DeliveryHealth::snapshot)
    }

    /// The same, as a handle another thread (the health server's) can keep and read.
    pub fn health_handle(&self) -> Option<DeliveryHealth> {
        self.health.clone()
    }

    /// Ships and writes what is buffered, giving up at `deadline`. Call after the
    /// capture tasks have finished (the app's pipes are closed).
    pub async fn finish(self, deadline: Instant) -> Report {
        let mut not_written = None;
        for copy in [&self.stdout, &self.stderr].into_iter().flatten() {
            copy.drain(deadline).await;
            not_written = not_written.or(copy.write_error().map(str::to_owned));
        }
        let (unshipped, failing) = match self.delivery {
            Some((stop, task)) => {
                stop.stop_by(deadline);
                task.await.map_or_else(
                    |_| (self.counters.events.load(Ordering::Relaxed), None),
                    |s| (s.unshipped, s.failing),
                )
            }
            None => (0, None),
        };
        Report {
            counters: self.counters.snapshot(),
            redactions: self.pipeline.sanitizer.get().counts(),
            unshipped,
            failing,
            not_written,
        }
    }
}

/// Sends the agent's own diagnostics down the pipeline (see [`Logs::agent_event`]).
#[derive(Clone)]
pub struct AgentEvents(Arc<Pipeline>);

impl AgentEvents {
    pub async fn send(&self, timestamp_ms: i64, json: String) {
        let mut events = vec![Event::new(timestamp_ms, json)];
        self.0.emit_to(&mut events, None).await;
    }
}

/// Samples the delivery for [`Logs::health`] until the pipeline's runtime goes away.
async fn follow_delivery(health: DeliveryHealth, buffer: Arc<Buffer>) {
    let mut every = tokio::time::interval(HEALTH_SAMPLE);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        health
            .progress
            .observe(&health.counters, buffer.len(), std::time::Instant::now());
    }
}

/// `CLOUDWATCH_LOG_STREAM`, else `PREFIX/CONTAINER/TASK_ID` (as the awslogs driver
/// names streams), else `HOSTNAME/START_TIME`. A default name is made one CloudWatch
/// accepts ([`stream_safe`]): its parts come from the task metadata and `HOSTNAME`,
/// which can hold anything, and a name it refuses would be refused at every try, the
/// message blaming settings nobody set.
fn stream_name(settings: &LogSettings, context: Option<&Context>) -> String {
    if let Some(s) = &settings.stream {
        return s.clone();
    }
    if let Some(c) = context {
        return stream_safe(format!(
            "{}/{}/{}",
            settings.stream_prefix, c.container_name, c.task_id
        ));
    }
    let host = settings.host.as_deref().unwrap_or("localhost");
    let mut started = String::new();
    time::push_rfc3339(&mut started, time::now_ms());
    stream_safe(format!("{host}/{started}"))
}

/// `name` as a log stream name CloudWatch accepts: ':' and '*' (which it refuses)
/// become '-', and a name over 512 bytes is cut at a character boundary.
fn stream_safe(name: String) -> String {
    const MAX: usize = 512;
    let mut name = name.replace([':', '*'], "-");
    name.truncate(json::floor_char_boundary(&name, MAX));
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_default_stream_name_is_one_cloudwatch_accepts() {
        assert_eq!(
            stream_safe("web/2026-12-05T17:00:00.000Z".into()),
            "web/2026-12-05T17-00-00.000Z"
        );
        assert_eq!(stream_safe("app/we*b/1".into()), "app/we-b/1");
        let long = format!("h{}", "é".repeat(300));
        let cut = stream_safe(long);
        assert_eq!(
            cut.len(),
            511,
            "cut before the character that would pass 512 bytes"
        );
        assert!(cut.ends_with('é'));
    }

    proptest! {
        /// Whatever HOSTNAME or the task metadata hold: a name CloudWatch accepts.
        #[test]
        fn any_parts_make_a_stream_name_cloudwatch_accepts(host in "\\PC{0,600}", container in "[^/]{0,40}") {
            for name in [format!("{host}/x"), format!("app/{container}/{host}")] {
                let safe = stream_safe(name);
                prop_assert!(!safe.is_empty() && safe.len() <= 512);
                prop_assert!(!safe.contains([':', '*']), "{safe}");
            }
        }
    }
}
