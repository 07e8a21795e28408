//! Shipping to CloudWatch Logs: the stream (and group) set up once, PutLogEvents calls
//! with their errors classified, and the delivery loop that drains the buffer into
//! batches, flushes every interval, retries without limit while the buffer has room, and
//! drains everything it can before the stop deadline.
//!
//! A failure is one of three kinds ([`FailureKind`]), read from the workspace's one
//! classification of SDK errors ([`aws::Class`]): passing (throttling, 5xx, timeouts:
//! retried with backoff), about the destination (access denied, the group gone:
//! retried every minute while events wait in the buffer), or about the batch itself (a
//! request the service will refuse however often it is sent: dropped, counted as
//! `rejected_invalid`, and delivery moves on, so one bad batch never blocks the events
//! behind it).
//!
//! Sequence tokens are not used: the service ignores them since January 2023.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws::class::{HttpResponse, ProvideErrorMetadata, SdkError};
use aws::sdk::{SdkConfig, Timeouts};
use aws::Class;
use aws_sdk_cloudwatchlogs::Client;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;
use conventions::Backoff;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::account::{emf_event, Counters};
use crate::batch::{Batch, Batcher, EVENT_OVERHEAD_BYTES};
use crate::buffer::{Buffer, Drops};
use crate::json::{json_string, push_json_string_bytes};
use crate::structure::Event;
use crate::time::{now_ms, push_rfc3339};

/// Pauses before retrying a retryable failure: 200 ms first, doubled up to 10 s.
const RETRY: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
/// After a failure about the destination (access denied, bad group name), try again
/// this often: a person has to fix something, hammering the service will not.
const DESTINATION_RETRY: Duration = Duration::from_secs(60);
/// Retried failures in a row (throttling, a 5xx, an endpoint that does not answer)
/// before they are warned of: a few seconds of them, past a blip.
const RETRIES_BEFORE_WARNING: u32 = 6;
/// While they go on, the warning is given again this often, with the count.
const RETRY_WARNING_EVERY: Duration = Duration::from_secs(300);
/// Events moved from the buffer per step, so batches close promptly under load.
const TAKE: usize = 2_048;

/// Where events go.
#[derive(Debug, Clone)]
pub struct Destination {
    pub group: String,
    pub stream: String,
    /// `CLOUDWATCH_LOG_RETENTION_DAYS`, applied only to a group we create.
    pub retention_days: Option<i32>,
}

/// What a failed call means for the events in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Throttling, 5xx, timeouts, connection errors: the same call may succeed soon.
    Retryable,
    /// The destination refuses everything (access denied, unknown credentials, the
    /// group or stream missing, a bad name): a person must fix something. Events wait
    /// in the buffer meanwhile.
    Destination,
    /// The service refuses this batch as such (invalid parameter, an event too large
    /// or out of order, already accepted, a request it cannot read): sending it again
    /// would fail again.
    Batch,
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ShipError {
    pub kind: FailureKind,
    /// The service's error code (`ThrottlingException`), when it sent one.
    pub code: Option<String>,
    /// What failed and, where we know it, what to fix.
    pub message: String,
}

impl ShipError {
    fn new(kind: FailureKind, code: Option<&str>, message: impl Into<String>) -> Self {
        ShipError {
            kind,
            code: code.map(str::to_owned),
            message: message.into(),
        }
    }

    fn is_code(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

/// What the service did with one call.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PutResult {
    pub accepted: u64,
    pub too_new: u64,
    pub too_old: u64,
    pub expired: u64,
}

/// A call that cannot connect in 3 s is retried (a blackholed endpoint must not hold a
/// batch for the SDK's default); one PutLogEvents attempt of up to 1 MiB gets 15 s.
const TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_secs(3),
    attempt: Duration::from_secs(15),
};

/// A CloudWatch Logs client bound to one stream.
#[derive(Debug, Clone)]
pub struct Shipper {
    client: Client,
    dest: Destination,
}

impl Shipper {
    /// A client with the SDK's own retries off: the delivery loop retries, and counts.
    pub fn new(sdk: &SdkConfig, dest: Destination) -> Self {
        Shipper {
            client: Client::new(&TIMEOUTS.apply(sdk)),
            dest,
        }
    }

    pub fn destination(&self) -> &Destination {
        &self.dest
    }

    /// Creates the stream (already existing is success), and the group first if it
    /// is missing, with the retention when configured.
    pub async fn prepare(&self) -> Result<(), ShipError> {
        match self.create_stream().await {
            Err(e) if e.is_code("ResourceNotFoundException") => {
                self.create_group().await?;
                self.create_stream().await
            }
            other => other,
        }
    }

    async fn create_stream(&self) -> Result<(), ShipError> {
        let result = self
            .client
            .create_log_stream()
            .log_group_name(&self.dest.group)
            .log_stream_name(&self.dest.stream)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("ResourceAlreadyExistsException") => Ok(()),
            Err(e) => Err(classify(e, Call::Setup("CreateLogStream"))),
        }
    }

    async fn create_group(&self) -> Result<(), ShipError> {
        let created = match self
            .client
            .create_log_group()
            .log_group_name(&self.dest.group)
            .send()
            .await
        {
            Ok(_) => true,
            Err(e) if e.code() == Some("ResourceAlreadyExistsException") => false,
            Err(e) => return Err(classify(e, Call::Setup("CreateLogGroup"))),
        };
        if let (true, Some(days)) = (created, self.dest.retention_days) {
            self.client
                .put_retention_policy()
                .log_group_name(&self.dest.group)
                .retention_in_days(days)
                .send()
                .await
                .map_err(|e| classify(e, Call::Setup("PutRetentionPolicy")))?;
        }
        Ok(())
    }

    /// One PutLogEvents call; the events must already be sorted (batches are). The body
    /// is written by [`put_body`], not by the SDK's serializer (see [`PreparedBody`]).
    pub async fn put(&self, batch: &Batch) -> Result<PutResult, ShipError> {
        let body = put_body(&self.dest, batch);
        let out = self
            .client
            .put_log_events()
            .log_group_name(&self.dest.group)
            .log_stream_name(&self.dest.stream)
            .set_log_events(Some(Vec::new()))
            .customize()
            .interceptor(PreparedBody::new(body))
            .send()
            .await
            .map_err(|e| classify(e, Call::Put))?;
        Ok(rejections(
            batch.events.len(),
            out.rejected_log_events_info().map(|r| {
                (
                    r.too_new_log_event_start_index(),
                    r.too_old_log_event_end_index(),
                    r.expired_log_event_end_index(),
                )
            }),
        ))
    }
}

/// The PutLogEvents request body, the JSON the SDK's serializer would write for
/// `batch` (`logGroupName`, `logStreamName`, `logEvents` of `timestamp` and
/// `message`). Written here because that serializer escapes each message a byte at a
/// time, a third of the agent's CPU while it ships (docs/performance.md); the
/// pipeline's escaper copies the runs that need no escape, and writes the blocks whose
/// only escapes are quotes (an event's JSON) in one pass each.
pub fn put_body(dest: &Destination, batch: &Batch) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        64 + dest.group.len() + dest.stream.len() + batch.bytes + batch.bytes / 8,
    );
    out.extend_from_slice(b"{\"logGroupName\":");
    push_json_string_bytes(&mut out, &dest.group);
    out.extend_from_slice(b",\"logStreamName\":");
    push_json_string_bytes(&mut out, &dest.stream);
    out.extend_from_slice(b",\"logEvents\":[");
    let mut digits = itoa::Buffer::new();
    for (i, e) in batch.events.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"timestamp\":");
        out.extend_from_slice(digits.format(e.timestamp_ms).as_bytes());
        out.extend_from_slice(b",\"message\":");
        push_json_string_bytes(&mut out, &e.json);
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    out
}

/// Puts the body [`put_body`] wrote in place of the one the SDK serialized (from an
/// empty event list), with its length, before the request is signed: the signature
/// covers the body that is sent. The body is moved, not copied (up to 1 MiB a call):
/// the SDK's own retries are off, so a request is signed once; were it signed again,
/// the attempt fails and the delivery loop's retry writes the body anew.
struct PreparedBody(Mutex<Option<Vec<u8>>>);

impl PreparedBody {
    fn new(body: Vec<u8>) -> PreparedBody {
        PreparedBody(Mutex::new(Some(body)))
    }
}

impl fmt::Debug for PreparedBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PreparedBody")
    }
}

impl Intercept for PreparedBody {
    fn name(&self) -> &'static str {
        "deckhand::PreparedBody"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let body = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or("the PutLogEvents body was already sent once")?;
        let request = context.request_mut();
        request
            .headers_mut()
            .insert("content-length", body.len().to_string());
        *request.body_mut() = SdkBody::from(body);
        Ok(())
    }
}

/// Counts from `rejectedLogEventsInfo`: events from `tooNewLogEventStartIndex` on are too
/// new; events up to and including `tooOldLogEventEndIndex` / `expiredLogEventEndIndex`
/// are too old / expired.
pub fn rejections(
    total: usize,
    info: Option<(Option<i32>, Option<i32>, Option<i32>)>,
) -> PutResult {
    let total = total as u64;
    let (new_start, old_end, expired_end) = info.unwrap_or_default();
    let too_new = new_start.map_or(0, |i| total.saturating_sub(i.max(0) as u64));
    let expired = expired_end.map_or(0, |i| (i.max(-1) + 1) as u64).min(total);
    let too_old = old_end
        .map_or(0, |i| (i.max(-1) + 1) as u64)
        .saturating_sub(expired)
        .min(total);
    PutResult {
        accepted: total.saturating_sub(too_new + too_old + expired),
        too_new,
        too_old,
        expired,
    }
}

/// Which call failed: the kind of a failure depends on it (an invalid parameter of
/// CreateLogStream is the stream's name, of PutLogEvents the batch).
#[derive(Debug, Clone, Copy)]
enum Call {
    /// Setting the destination up: CreateLogStream, CreateLogGroup, PutRetentionPolicy.
    Setup(&'static str),
    /// PutLogEvents.
    Put,
}

impl Call {
    fn name(self) -> &'static str {
        match self {
            Call::Setup(name) => name,
            Call::Put => "PutLogEvents",
        }
    }
}

/// Sorts an SDK error by [`FailureKind`], with a message that says what to fix.
fn classify<E>(e: SdkError<E, HttpResponse>, call: Call) -> ShipError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let failure = aws::classify(&e);
    let kind = failure_kind(failure.class, matches!(call, Call::Put));
    let fix = match (kind, failure.class) {
        (FailureKind::Destination, Class::AccessDenied) => {
            " — give the task role logs:CreateLogStream, logs:PutLogEvents (and logs:CreateLogGroup) on the group"
        }
        (FailureKind::Destination, Class::NotFound) => {
            " — create the log group, or allow logs:CreateLogGroup"
        }
        (FailureKind::Destination, Class::Invalid) => {
            " — check CLOUDWATCH_LOG_GROUP / CLOUDWATCH_LOG_STREAM"
        }
        _ => "",
    };
    ShipError {
        kind,
        code: failure.code,
        message: format!("{} failed: {}{fix}", call.name(), failure.detail),
    }
}

/// What a class of failure means for the events of a call. `put`: the call was
/// PutLogEvents, where a refusal of the request (an event too large or out of order,
/// DataAlreadyAcceptedException, a request the service cannot read) is about the
/// batch; in the setup calls every refusal is about the destination (its name, its
/// permissions). Not found, access and KMS failures are always the destination's.
pub fn failure_kind(class: Class, put: bool) -> FailureKind {
    match class {
        Class::Retryable | Class::Throttled => FailureKind::Retryable,
        // Not trusting the endpoint's certificate is about where the events go, never
        // about the batch: the events wait, the detail says what to give the image.
        Class::AccessDenied | Class::Decryption | Class::NotFound | Class::Untrusted => {
            FailureKind::Destination
        }
        Class::Invalid if put => FailureKind::Batch,
        Class::Invalid => FailureKind::Destination,
    }
}

/// How the delivery loop behaves.
#[derive(Clone)]
pub struct Delivery {
    /// DECKHAND_LOG_FLUSH: a partly filled batch waits at most this long.
    pub flush: Duration,
    /// DECKHAND_METRICS_INTERVAL: how often an EMF event with the counters is shipped.
    pub metrics_interval: Duration,
    /// EMF dimensions (e.g. TaskId, ContainerName).
    pub dimensions: Vec<(String, String)>,
    /// The sanitizer's counts by detector, for the metrics.
    pub redactions: Arc<dyn Fn() -> Vec<(&'static str, u64)> + Send + Sync>,
}

/// Tells the delivery loop to finish: ship what is buffered, give up at the deadline.
#[derive(Debug, Clone)]
pub struct StopHandle(watch::Sender<Option<Instant>>);

impl StopHandle {
    pub fn stop_by(&self, deadline: Instant) {
        let _ = self.0.send(Some(deadline));
    }
}

/// What the loop achieved by the time it stopped.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub shipped: u64,
    /// Events not shipped by the deadline.
    pub unshipped: u64,
    /// Why the last call failed, when calls were failing at the stop: what kept the
    /// unshipped events.
    pub failing: Option<String>,
}

pub fn stop_handle() -> (StopHandle, watch::Receiver<Option<Instant>>) {
    let (tx, rx) = watch::channel(None);
    (StopHandle(tx), rx)
}

/// Drains `buffer` to CloudWatch until stopped. Never returns early on errors: a
/// logging problem must never stop the app.
pub async fn deliver(
    shipper: Shipper,
    buffer: Arc<Buffer>,
    counters: Arc<Counters>,
    options: Delivery,
    mut stop: watch::Receiver<Option<Instant>>,
) -> Summary {
    let mut batcher = Batcher::new();
    let mut ready: Vec<Batch> = Vec::new();
    let mut prepared = false;
    let mut next_flush = Instant::now() + options.flush;
    let mut next_metrics = Instant::now() + options.metrics_interval;
    let mut sender = Sender::new(shipper.clone(), counters.clone(), stop.clone());
    // A dropped StopHandle means nobody will ask us to stop: keep delivering.
    let mut orphaned = false;
    loop {
        let deadline = *stop.borrow();
        for event in buffer.take(TAKE) {
            ready.extend(batcher.push(event));
        }
        let now = Instant::now();
        if now >= next_metrics {
            ready.extend(batcher.push(metrics_event(&counters, &options)));
            next_metrics = now + options.metrics_interval;
        }
        let draining = deadline.is_some() && buffer.is_empty();
        if now >= next_flush || draining {
            ready.extend(batcher.take());
            next_flush = now + options.flush;
        }
        // false: a call gave up because the stop deadline would pass first.
        let mut in_time = true;
        if !ready.is_empty() && !prepared {
            prepared = sender.prepare().await;
            in_time = prepared;
        }
        while prepared && !ready.is_empty() {
            if !sender.send(&ready[0]).await {
                in_time = false;
                break;
            }
            ready.remove(0);
            if let Some(drops) = buffer.take_drops() {
                ready.extend(batcher.push(drop_event(drops)));
            }
        }
        let stopping = sender.deadline();
        if stopping.is_some_and(|d| Instant::now() >= d) || (stopping.is_some() && !in_time) {
            break;
        }
        if draining && ready.is_empty() && batcher.is_empty() {
            // Everything is out; the final metrics go with it.
            ready.extend(batcher.push(metrics_event(&counters, &options)));
            ready.extend(batcher.take());
            while let Some(batch) = ready.first() {
                if !prepared || !sender.send(batch).await {
                    break;
                }
                ready.remove(0);
            }
            break;
        }
        if buffer.len() >= TAKE || (deadline.is_some() && !buffer.is_empty()) {
            continue;
        }
        let wake = next_flush.min(next_metrics);
        tokio::select! {
            _ = buffer.arrived.notified() => {}
            _ = tokio::time::sleep_until(wake) => {}
            changed = stop.changed(), if !orphaned => orphaned = changed.is_err(),
        }
    }
    let unshipped = buffer.len() as u64
        + batcher.len() as u64
        + ready.iter().map(|b| b.events.len() as u64).sum::<u64>();
    Counters::add(&counters.dropped_at_shutdown, unshipped);
    Summary {
        shipped: counters.shipped.load(Ordering::Relaxed),
        unshipped,
        failing: sender.last_error,
    }
}

/// Sends batches with retries, and reports a lasting failure once per episode.
struct Sender {
    shipper: Shipper,
    counters: Arc<Counters>,
    /// A failure was reported (an error, or a warning of retries) and no call has
    /// succeeded since: the next success says that shipping works again.
    failing: bool,
    /// Retried failures since the last success, and when they were last warned of.
    retried: u32,
    warned: Option<Instant>,
    /// The last failure's message, until a call succeeds.
    last_error: Option<String>,
    stop: watch::Receiver<Option<Instant>>,
}

impl Sender {
    fn new(
        shipper: Shipper,
        counters: Arc<Counters>,
        stop: watch::Receiver<Option<Instant>>,
    ) -> Self {
        Sender {
            shipper,
            counters,
            failing: false,
            retried: 0,
            warned: None,
            last_error: None,
            stop,
        }
    }

    /// A call succeeded: the failures, if any, are over.
    fn succeeded(&mut self) {
        if self.failing {
            tracing::info!(group = %self.shipper.dest.group, "shipping to CloudWatch Logs works again");
            self.failing = false;
        }
        self.retried = 0;
        self.warned = None;
        self.last_error = None;
    }

    /// The stop deadline, once the delivery loop has been asked to finish.
    fn deadline(&self) -> Option<Instant> {
        *self.stop.borrow()
    }

    /// Sets the stream up; false when the deadline passed first.
    async fn prepare(&mut self) -> bool {
        let mut attempt = 0;
        loop {
            let attempt_result = match self.deadline() {
                Some(d) => tokio::time::timeout_at(d, self.shipper.prepare())
                    .await
                    .unwrap_or_else(|_| Err(deadline_passed())),
                None => self.shipper.prepare().await,
            };
            match attempt_result {
                Ok(()) => {
                    self.succeeded();
                    return true;
                }
                Err(e) => {
                    attempt += 1;
                    if !self.pause(&e, attempt).await {
                        return false;
                    }
                }
            }
        }
    }

    /// Ships one batch, retrying until it is accepted, refused for good (counted as
    /// `rejected_invalid`), or the deadline passes (false).
    async fn send(&mut self, batch: &Batch) -> bool {
        let mut attempt = 0;
        loop {
            let attempt_result = match self.deadline() {
                Some(d) => tokio::time::timeout_at(d, self.shipper.put(batch))
                    .await
                    .unwrap_or_else(|_| Err(deadline_passed())),
                None => self.shipper.put(batch).await,
            };
            match attempt_result {
                Ok(r) => {
                    self.succeeded();
                    let c = &self.counters;
                    Counters::add(&c.shipped, r.accepted);
                    Counters::add(
                        &c.shipped_bytes,
                        (batch.bytes - batch.events.len() * EVENT_OVERHEAD_BYTES) as u64,
                    );
                    Counters::add(&c.rejected_too_new, r.too_new);
                    Counters::add(&c.rejected_too_old, r.too_old);
                    Counters::add(&c.rejected_expired, r.expired);
                    if r.too_new + r.too_old + r.expired > 0 {
                        tracing::warn!(
                            too_new = r.too_new,
                            too_old = r.too_old,
                            expired = r.expired,
                            "CloudWatch Logs rejected {} event(s) for their timestamps",
                            r.too_new + r.too_old + r.expired
                        );
                    }
                    return true;
                }
                Err(e) if e.kind == FailureKind::Batch => {
                    // Sent again it would be refused again, and every later event
                    // would wait behind it for ever: drop it, count it, move on.
                    let events = batch.events.len() as u64;
                    Counters::add(&self.counters.rejected_invalid, events);
                    tracing::warn!(
                        group = %self.shipper.dest.group,
                        events,
                        code = e.code.as_deref().unwrap_or(""),
                        error = %e.message,
                        "CloudWatch Logs refused a batch of {events} event(s) for good ({}); it is dropped and counted as rejected_invalid, delivery goes on",
                        e.message
                    );
                    return true;
                }
                Err(e) => {
                    attempt += 1;
                    if !self.pause(&e, attempt).await {
                        return false;
                    }
                    if e.is_code("ResourceNotFoundException") {
                        // The group or stream went away after it was set up: set it up
                        // again before the next attempt (its failure shows there).
                        self.reprepare().await;
                    }
                }
            }
        }
    }

    /// One more [`Shipper::prepare`], within the deadline; its failure is left for the
    /// next call to report.
    async fn reprepare(&self) {
        let result = match self.deadline() {
            Some(d) => tokio::time::timeout_at(d, self.shipper.prepare())
                .await
                .unwrap_or_else(|_| Err(deadline_passed())),
            None => self.shipper.prepare().await,
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, "setting the log stream up again failed");
        }
    }

    /// Waits before the next attempt; false when that would pass the deadline.
    async fn pause(&mut self, e: &ShipError, attempt: u32) -> bool {
        let msg = &e.message;
        if msg == DEADLINE_PASSED {
            return false;
        }
        // Setting the stream up is retried as a batch is, and counted alike.
        Counters::add(&self.counters.retries, 1);
        self.last_error = Some(msg.clone());
        let delay = match e.kind {
            FailureKind::Retryable => {
                tracing::debug!(attempt, error = %msg, "retrying a CloudWatch Logs call");
                self.retried = self.retried.saturating_add(1);
                let due = self
                    .warned
                    .map_or(self.retried >= RETRIES_BEFORE_WARNING, |at| {
                        at.elapsed() >= RETRY_WARNING_EVERY
                    });
                if due {
                    tracing::warn!(
                        group = %self.shipper.dest.group,
                        retries = self.retried,
                        error = %msg,
                        "CloudWatch Logs calls keep failing ({} retries in a row; the last: {msg}); events wait in the buffer and are retried",
                        self.retried
                    );
                    self.warned = Some(Instant::now());
                    self.failing = true;
                }
                RETRY.delay(attempt)
            }
            // A batch failure never comes here (the batch is dropped); counted with
            // the destination's for safety.
            FailureKind::Destination | FailureKind::Batch => {
                Counters::add(&self.counters.ship_errors, 1);
                if !self.failing {
                    tracing::error!(
                        group = %self.shipper.dest.group,
                        error = %msg,
                        "cannot ship logs to CloudWatch: {msg}; events still go to stdout, trying again every minute"
                    );
                    self.failing = true;
                }
                DESTINATION_RETRY
            }
        };
        let until = Instant::now() + delay;
        match self.deadline() {
            // Stopping: waiting out a delay that ends past the deadline ships nothing
            // and only holds up the exit.
            Some(d) if until >= d => false,
            Some(_) => {
                tokio::time::sleep_until(until).await;
                true
            }
            // Not stopping (yet): a stop request ends the pause, for one more attempt
            // under the deadline.
            None => {
                let mut stop = self.stop.clone();
                let asked = tokio::select! {
                    () = tokio::time::sleep_until(until) => true,
                    asked = stop.wait_for(Option::is_some) => asked.is_ok(),
                };
                if !asked {
                    // Nobody can ask any more: wait the whole delay.
                    tokio::time::sleep_until(until).await;
                }
                true
            }
        }
    }
}

/// The error of an attempt cut short by the stop deadline.
fn deadline_passed() -> ShipError {
    ShipError::new(FailureKind::Retryable, None, DEADLINE_PASSED)
}

const DEADLINE_PASSED: &str = "the stop deadline passed";

fn metrics_event(counters: &Counters, options: &Delivery) -> Event {
    let dims: Vec<(&str, &str)> = options
        .dimensions
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    emf_event(counters, &(options.redactions)(), &dims, now_ms())
}

/// "N events dropped between T1 and T2: the buffer was full".
pub fn drop_event(d: Drops) -> Event {
    let mut first = String::new();
    push_rfc3339(&mut first, d.first_ms);
    let mut last = String::new();
    push_rfc3339(&mut last, d.last_ms);
    let now = now_ms();
    let mut ts = String::new();
    push_rfc3339(&mut ts, now);
    let message = format!(
        "{} events dropped between {first} and {last}: the log buffer was full (raise DECKHAND_LOG_BUFFER, or set DECKHAND_LOG_FULL=block)",
        d.count
    );
    let json = format!(
        "{{\"timestamp\":\"{ts}\",\"level\":\"warn\",\"source\":\"agent\",\"message\":{},\"dropped\":{},\"dropped_from\":\"{first}\",\"dropped_to\":\"{last}\",\"reason\":\"buffer_full\"}}",
        json_string(&message),
        d.count
    );
    Event::new(now, json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn dest(group: &str, stream: &str) -> Destination {
        Destination {
            group: group.to_owned(),
            stream: stream.to_owned(),
            retention_days: None,
        }
    }

    /// The body read back as the service reads it: group, stream, and each event's
    /// timestamp and message, in order.
    fn read_body(body: &[u8]) -> (String, String, Vec<(i64, String)>) {
        let v: serde_json::Value = serde_json::from_slice(body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)));
        let events = v["logEvents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let keys: Vec<&String> = e.as_object().unwrap().keys().collect();
                assert_eq!(keys, ["message", "timestamp"]);
                (
                    e["timestamp"].as_i64().unwrap(),
                    e["message"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let top: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(top, ["logEvents", "logGroupName", "logStreamName"]);
        (
            v["logGroupName"].as_str().unwrap().to_owned(),
            v["logStreamName"].as_str().unwrap().to_owned(),
            events,
        )
    }

    #[test]
    fn the_put_body_carries_every_event_as_the_sdk_would() {
        let events = [
            (
                1_700_000_000_123,
                r#"{"level":"info","message":"a \"quoted\" \\ value"}"#,
            ),
            (
                -5,
                "controls \u{0}\u{1f}\n\t\r and \u{7f}, U+FFFD \u{fffd}, é 日本 🚀",
            ),
            (i64::MAX, ""),
        ];
        let batch = Batch {
            events: events
                .iter()
                .map(|(t, m)| Event::new(*t, (*m).to_owned()))
                .collect(),
            bytes: 0,
        };
        let (group, stream, read) = read_body(&put_body(&dest("/ecs/app \"x\"", "web/1"), &batch));
        assert_eq!(
            (group.as_str(), stream.as_str()),
            ("/ecs/app \"x\"", "web/1")
        );
        let expected: Vec<(i64, String)> =
            events.iter().map(|(t, m)| (*t, (*m).to_owned())).collect();
        assert_eq!(read, expected);
        let empty = put_body(&dest("g", "s"), &Batch::default());
        assert_eq!(
            empty,
            br#"{"logGroupName":"g","logStreamName":"s","logEvents":[]}"#
        );
    }

    /// Any text, or text dense with what the body escapes (quotes and backslashes in
    /// most 16-byte blocks, beside controls, U+FFFD and characters of several bytes
    /// that a block's edge cuts).
    fn message() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            proptest::collection::vec(
                prop_oneof![
                    4 => Just("\"".to_owned()),
                    2 => Just("\\".to_owned()),
                    4 => "[a-z:,{}]{1,12}",
                    1 => "[\u{0}-\u{1f}\u{7f}]",
                    1 => Just("\u{fffd}".to_owned()),
                    1 => Just("\u{f000}".to_owned()),
                    1 => "[é日🚀]{1,3}",
                ],
                0..40
            )
            .prop_map(|parts| parts.concat()),
        ]
    }

    proptest! {
        #[test]
        fn any_events_read_back_from_the_put_body_as_written(
            group in ".{0,20}",
            stream in ".{0,20}",
            events in proptest::collection::vec((any::<i64>(), message()), 0..8),
        ) {
            let batch = Batch {
                events: events
                    .iter()
                    .map(|(t, m)| Event::new(*t, m.clone()))
                    .collect(),
                bytes: events.iter().map(|(_, m)| m.len()).sum(),
            };
            let (g, s, read) = read_body(&put_body(&dest(&group, &stream), &batch));
            prop_assert_eq!(g, group);
            prop_assert_eq!(s, stream);
            prop_assert_eq!(read, events);
        }
    }

    #[test]
    fn rejected_events_are_counted_by_reason() {
        assert_eq!(
            rejections(10, None),
            PutResult {
                accepted: 10,
                ..Default::default()
            }
        );
        assert_eq!(
            rejections(10, Some((Some(8), Some(1), None))),
            PutResult {
                accepted: 6,
                too_new: 2,
                too_old: 2,
                expired: 0
            }
        );
        assert_eq!(
            rejections(10, Some((None, Some(4), Some(1)))),
            PutResult {
                accepted: 5,
                too_new: 0,
                too_old: 3,
                expired: 2
            }
        );
    }

    #[test]
    fn failures_are_sorted_by_what_they_are_about() {
        use FailureKind::*;
        let put = |code, status| failure_kind(Class::of(Some(code), Some(status)), true);
        // Passing: retried with backoff.
        assert_eq!(put("ThrottlingException", 400), Retryable);
        assert_eq!(put("ServiceUnavailableException", 503), Retryable);
        assert_eq!(put("SomethingNew", 500), Retryable);
        assert_eq!(put("SomethingNew", 429), Retryable);
        assert_eq!(put("ExpiredTokenException", 400), Retryable);
        assert_eq!(put("RequestLimitExceeded", 400), Retryable);
        assert_eq!(put("SomethingNew", 408), Retryable);
        // The destination: retried every minute, events wait.
        assert_eq!(put("AccessDeniedException", 400), Destination);
        assert_eq!(put("UnrecognizedClientException", 400), Destination);
        assert_eq!(put("ResourceNotFoundException", 400), Destination);
        assert_eq!(put("SomethingNew", 403), Destination);
        assert_eq!(failure_kind(Class::Decryption, true), Destination);
        // A certificate not trusted: the events wait for the bundle, never dropped.
        assert_eq!(failure_kind(Class::Untrusted, true), Destination);
        assert_eq!(failure_kind(Class::Untrusted, false), Destination);
        // The batch: dropped and counted.
        assert_eq!(put("InvalidParameterException", 400), Batch);
        assert_eq!(put("DataAlreadyAcceptedException", 400), Batch);
        assert_eq!(put("SerializationException", 400), Batch);
        assert_eq!(put("ValidationException", 400), Batch);
        assert_eq!(put("SomethingNew", 413), Batch);
        assert_eq!(failure_kind(Class::of(None, Some(400)), true), Batch);
        // In the setup calls, a bad parameter is the group's or stream's name.
        let setup = |code, status| failure_kind(Class::of(Some(code), Some(status)), false);
        assert_eq!(setup("InvalidParameterException", 400), Destination);
        assert_eq!(setup("ThrottlingException", 400), Retryable);
        assert_eq!(setup("SomethingNew", 400), Destination);
    }

    #[test]
    fn a_failed_call_says_what_failed_and_what_to_fix() {
        use aws_sdk_cloudwatchlogs::error::ErrorMetadata;
        let refused = |code: &str, status: u16| {
            let meta = ErrorMetadata::builder()
                .code(code)
                .message("the service says why")
                .build();
            SdkError::service_error(
                meta,
                HttpResponse::new(status.try_into().unwrap(), "".into()),
            )
        };
        let e = classify(refused("InvalidParameterException", 400), Call::Put);
        assert_eq!(e.kind, FailureKind::Batch);
        assert_eq!(e.code.as_deref(), Some("InvalidParameterException"));
        assert_eq!(
            e.message,
            "PutLogEvents failed: InvalidParameterException: the service says why (HTTP 400)"
        );
        let e = classify(
            refused("InvalidParameterException", 400),
            Call::Setup("CreateLogStream"),
        );
        assert_eq!(e.kind, FailureKind::Destination);
        assert!(e
            .message
            .ends_with("check CLOUDWATCH_LOG_GROUP / CLOUDWATCH_LOG_STREAM"));
        let e = classify(refused("AccessDeniedException", 400), Call::Put);
        assert_eq!(e.kind, FailureKind::Destination);
        assert!(
            e.message
                .contains("give the task role logs:CreateLogStream"),
            "{}",
            e.message
        );
        let e = classify(refused("ResourceNotFoundException", 400), Call::Put);
        assert!(e.is_code("ResourceNotFoundException"));
        assert!(e
            .message
            .ends_with("create the log group, or allow logs:CreateLogGroup"));
        // No answer at all: retried.
        let e = classify(
            SdkError::<ErrorMetadata, _>::timeout_error("attempt timeout after 15s"),
            Call::Put,
        );
        assert_eq!(e.kind, FailureKind::Retryable);
        assert_eq!(
            e.message,
            "PutLogEvents failed: the request timed out: attempt timeout after 15s"
        );
    }

    #[test]
    fn drop_summary_is_valid_json() {
        let e = drop_event(Drops {
            count: 12,
            first_ms: 1_000,
            last_ms: 2_000,
        });
        let v: serde_json::Value = serde_json::from_str(&e.json).unwrap();
        assert_eq!(v["dropped"], 12);
        assert!(v["message"]
            .as_str()
            .unwrap()
            .starts_with("12 events dropped between 1970-01-01T00:00:01.000Z and"));
    }
}
