//! The HTTP server: routing, the answers, and the drain sequence.
//!
//! Routes: `GET|HEAD <path>` (readiness: every check), `GET|HEAD <path>/live` and
//! `/health/live` (liveness: no check at all, so never the database); any other method
//! on those paths is 405, any other path 404.
//!
//! Until the host's [`Phase`] is ready (the agent migrating, then starting the app),
//! the readiness path answers 503 `"status":"starting"` with its `phase`, without
//! running a check; liveness answers 200 all along.
//!
//! Draining starts when the token given to [`run`] is cancelled: the readiness path
//! answers 503 with `"draining": true` (so the ALB stops routing here), for
//! `Config::drain`; then the server stops accepting, lets requests in flight finish, and
//! `run` returns.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONNECTION, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::app::AppCheck;
use crate::config::{Config, Details};
use crate::database::{DatabaseCheck, SetupError};
use crate::host::{Host, LogsProvider, Phase, Stage};
use crate::memory::MemoryCheck;
use crate::report::{Checks, Mode, Report};

/// Liveness is always answered here too, so the default `probe` URL works whatever
/// `HEALTH_PATH` says.
const DEFAULT_LIVE_PATH: &str = "/health/live";
/// After the drain period, requests still in flight get this long to finish. Every
/// check is bounded by its own timeout (1.5 s by default), so this is a backstop
/// against clients that stall, not a wait anyone should reach.
const IN_FLIGHT_GRACE: Duration = Duration::from_secs(10);
/// Pause after a failed accept (e.g. out of file descriptors) before the next one, so
/// the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// At most one warning this often about connections closed unanswered for
/// `HEALTH_MAX_CONNECTIONS`, with their count since the last one.
const REFUSED_WARNING_EVERY: Duration = Duration::from_secs(10);

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Database(#[from] SetupError),
}

/// Everything a request needs, shared by all connections.
struct Health {
    /// For `uptime`.
    started: Instant,
    /// For `version`.
    version: String,
    /// `HEALTH_PATH`: every check.
    ready_path: String,
    /// `HEALTH_PATH/live`: no check.
    live_path: String,
    /// `None` when no database is configured: the check is omitted.
    database: Option<DatabaseCheck>,
    memory: MemoryCheck,
    /// `None` unless `HEALTH_APP_URL` or `HEALTH_APP_PORT` is set.
    app: Option<AppCheck>,
    /// The log pipeline's delivery (the agent with a log group); `None` omits the check.
    logs: Option<LogsProvider>,
    /// `HEALTH_LOGS_MAX_LAG`: the log check's limit.
    logs_max_lag: Duration,
    /// How far the host's start has got: readiness is 503 `starting` until ready.
    phase: Phase,
    /// `HEALTH_SHOW_DETAILS`: whether error texts go into the body.
    details: Details,
    /// Cancelled once draining starts: readiness answers 503 from then on.
    draining: CancellationToken,
}

/// The connections served at once, at most `HEALTH_MAX_CONNECTIONS`: one more is closed
/// at once, unanswered, and counted for a warning.
struct Slots {
    free: Arc<tokio::sync::Semaphore>,
    max: usize,
    refused: std::sync::Mutex<Refused>,
}

/// The connections closed unanswered that no warning has counted yet.
#[derive(Default)]
struct Refused {
    count: u64,
    /// Where the last one came from.
    last: Option<SocketAddr>,
    /// When the last warning was.
    warned: Option<Instant>,
    /// A warning is due at the end of the current window (see [`Slots::take`]).
    due: bool,
}

impl Slots {
    fn new(max: usize) -> Arc<Self> {
        Arc::new(Slots {
            free: Arc::new(tokio::sync::Semaphore::new(max)),
            max,
            refused: std::sync::Mutex::new(Refused::default()),
        })
    }

    /// A slot for a new connection, or `None` when every slot is taken: counted, and
    /// warned about at most every [`REFUSED_WARNING_EVERY`]. One within that time of
    /// the last warning is in the next one, at the end of the window, whether more
    /// come or not.
    fn take(self: &Arc<Self>, peer: SocketAddr) -> Option<tokio::sync::OwnedSemaphorePermit> {
        if let Ok(slot) = self.free.clone().try_acquire_owned() {
            return Some(slot);
        }
        let mut refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        refused.count += 1;
        refused.last = Some(peer);
        match refused.warned.map(|at| at + REFUSED_WARNING_EVERY) {
            Some(end) if end > Instant::now() => {
                if !refused.due {
                    refused.due = true;
                    let slots = Arc::clone(self);
                    tokio::spawn(async move {
                        tokio::time::sleep_until(end).await;
                        slots.warn(&mut slots.refused.lock().unwrap_or_else(|e| e.into_inner()));
                    });
                }
            }
            _ => self.warn(&mut refused),
        }
        None
    }

    /// The warning of the connections `refused` counts, if any; starts a new window.
    fn warn(&self, refused: &mut Refused) {
        let (count, max) = (refused.count, self.max);
        if let (1.., Some(peer)) = (count, refused.last) {
            tracing::warn!(
                refused = count,
                max_connections = max,
                %peer,
                "{count} health check connection(s) closed unanswered (the last from {peer}): {max} are open, HEALTH_MAX_CONNECTIONS; raise it if these are real callers."
            );
        }
        *refused = Refused {
            warned: Some(Instant::now()),
            ..Refused::default()
        };
    }
}

/// How connections are told to close when the server stops.
#[derive(Clone, Default)]
struct Closing {
    /// Answer the request in flight, then close.
    gracefully: CancellationToken,
    /// Close now: requests still in flight after `IN_FLIGHT_GRACE`.
    now: CancellationToken,
}

/// Serves `/health` on `listener` until draining has run its course.
///
/// `host` is what the process running the server reports: its start's [`Phase`] and,
/// under the agent, the log delivery ([`Host::default`] for the standalone binary:
/// ready, no logs). Cancel `drain` to start draining (the standalone binary does it on
/// SIGTERM, the agent when it begins to stop). `run` returns `Config::drain` later, once
/// requests in flight have been answered. It fails only when the database check cannot
/// be set up (unusable TLS settings).
pub async fn run(
    listener: TcpListener,
    config: Config,
    host: Host,
    drain: CancellationToken,
) -> Result<(), Error> {
    let health = Arc::new(Health::new(&config, host, drain.clone())?);
    let local = listener
        .local_addr()
        .map_or_else(|_| "unknown".to_string(), |a| a.to_string());
    let database = health
        .database
        .as_ref()
        .map_or("not configured (check omitted)", |d| d.target());
    tracing::info!(
        addr = %local,
        path = %health.ready_path,
        database,
        "healthcheck is listening on {local}: readiness at {}, database {database}.",
        health.ready_path
    );
    let closing = Closing::default();
    let tracker = TaskTracker::new();
    let slots = Slots::new(config.max_connections);
    let accept = |until| accept_until(&listener, until, &health, &tracker, &closing, &slots);
    accept(Box::pin(drain.cancelled())).await;
    let drain_for = humantime::format_duration(config.drain);
    tracing::info!(
        drain = %drain_for,
        "Draining: {} answers 503 until the server stops, in {drain_for}.",
        health.ready_path
    );
    accept(Box::pin(tokio::time::sleep(config.drain))).await;
    drop(listener);
    closing.gracefully.cancel();
    tracker.close();
    if tokio::time::timeout(IN_FLIGHT_GRACE, tracker.wait())
        .await
        .is_err()
    {
        let connections = tracker.len();
        tracing::warn!(
            connections,
            "{connections} connection(s) did not finish in time; closing them."
        );
        closing.now.cancel();
        tracker.wait().await;
    }
    tracing::info!("healthcheck has stopped.");
    Ok(())
}

/// Accepts connections, each served on its own task, until `until` completes.
async fn accept_until(
    listener: &TcpListener,
    mut until: Pin<Box<dyn Future<Output = ()> + Send + '_>>,
    health: &Arc<Health>,
    tracker: &TaskTracker,
    closing: &Closing,
    slots: &Arc<Slots>,
) {
    loop {
        let accepted = tokio::select! {
            biased;
            _ = &mut until => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                // Over the limit the stream is dropped here: closed, unanswered.
                let Some(slot) = slots.take(peer) else {
                    continue;
                };
                let (health, closing) = (health.clone(), closing.clone());
                tracker.spawn(async move {
                    serve_connection(stream, peer, health, closing).await;
                    drop(slot);
                });
            }
            Err(error) => {
                tracing::warn!(%error, "Could not accept a connection ({error}); trying again shortly.");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    health: Arc<Health>,
    closing: Closing,
) {
    let _ = stream.set_nodelay(true);
    let service = hyper::service::service_fn(move |request| {
        let health = health.clone();
        async move { Ok::<_, Infallible>(health.answer(&request).await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The timer enables hyper's header read timeout, so idle half-open clients do not
    // hold connections forever.
    builder.timer(TokioTimer::new());
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = closing.gracefully.cancelled() => {
            // Finishes the request in flight, then closes instead of waiting for another.
            connection.as_mut().graceful_shutdown();
            tokio::select! {
                result = connection => result,
                _ = closing.now.cancelled() => return,
            }
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, %peer, "A health check connection from {peer} ended with an error: {error}");
    }
}

impl Health {
    fn new(config: &Config, host: Host, draining: CancellationToken) -> Result<Self, SetupError> {
        Ok(Health {
            started: Instant::now(),
            version: config.version.clone(),
            ready_path: config.path.clone(),
            live_path: format!("{}/live", config.path),
            database: config
                .database
                .as_ref()
                .map(|db| DatabaseCheck::new(db, config.migrations.as_ref()))
                .transpose()?,
            memory: MemoryCheck::new(&config.memory),
            app: config.app.as_ref().map(AppCheck::new),
            logs: host.logs,
            logs_max_lag: config.logs_max_lag,
            phase: host.phase,
            details: config.details,
            draining,
        })
    }

    async fn answer(&self, request: &Request<Incoming>) -> Response<Full<Bytes>> {
        let path = request.uri().path();
        let ready = path == self.ready_path;
        let live = path == self.live_path || path == DEFAULT_LIVE_PATH;
        if !ready && !live {
            return plain(StatusCode::NOT_FOUND, "not found\n");
        }
        if request.method() != Method::GET && request.method() != Method::HEAD {
            let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            return response;
        }
        let draining = self.draining.is_cancelled();
        let stage = self.phase.get();
        // Liveness never looks at anything; a draining task skips its checks (it is going
        // away whatever they say), and so does one still starting (nothing to route to).
        let report = if !ready {
            self.report(Checks::default(), Mode::Serving)
        } else if draining {
            self.report(Checks::default(), Mode::Draining)
        } else if stage != Stage::Ready {
            self.report(Checks::default(), Mode::Starting(stage))
        } else {
            let checks = self.run_checks().await;
            let checks = match self.details {
                Details::Always => checks,
                Details::Status => checks.without_details(),
            };
            self.report(checks, Mode::Serving)
        };
        let mut response = Response::new(Full::new(Bytes::from(report.to_json())));
        *response.status_mut() = report.http_status();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if draining {
            // Tells keep-alive clients (the ALB) to reconnect, and so find the new tasks.
            headers.insert(CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }

    async fn run_checks(&self) -> Checks {
        let database = async {
            match &self.database {
                Some(check) => Some(check.check().await),
                None => None,
            }
        };
        let app = async {
            match &self.app {
                Some(check) => Some(check.check().await),
                None => None,
            }
        };
        let (database, memory, app) = tokio::join!(database, self.memory.check(), app);
        let (database, migrations) = match database {
            Some(readings) => (Some(readings.database), readings.migrations),
            None => (None, None),
        };
        let logs = self
            .logs
            .as_ref()
            .map(|read| crate::logs::judge(&read(), self.logs_max_lag));
        Checks {
            database,
            memory,
            app,
            migrations,
            logs,
        }
    }

    fn report(&self, checks: Checks, mode: Mode) -> Report {
        Report::new(
            checks,
            mode,
            &self.version,
            self.started.elapsed(),
            SystemTime::now(),
        )
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
