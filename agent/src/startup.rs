//! What runs between the secrets and the app: the in-process `/health` server
//! (`DECKHAND_HEALTH_ADDR`), then migrations (`DECKHAND_MIGRATE_ON_START`). Both read
//! the app's resolved environment, so a `DATABASE_URL` that came from a secret works.
//!
//! The health server starts first, so `/health/live` answers while a long migration
//! runs (the container health check does not kill it) and `/health` answers 503
//! `starting` with the [`healthcheck::Phase`] the agent moves forward (`migrating`,
//! `starting-app`) until the app is started. It runs on a thread of its own (`health`):
//! it keeps answering while the log pipeline is saturated, and nothing it does can
//! delay the stop sequence. With a log group, it reports the log delivery too
//! ([`logs_provider`]).

use std::net::SocketAddr;

use logship::runtime::Dedicated;
use tokio::net::TcpListener;

use crate::exit;
use crate::secrets::ChildEnv;

/// Logs each bad setting of a startup extra, under the agent's setting that asked for it.
fn report(setting: &str, errors: &[conventions::Invalid]) {
    for e in errors {
        tracing::error!("{setting}: {e}");
    }
}

/// `migrate up`, as the `migrate` binary would run it with the same `MIGRATIONS_DIR`
/// and `MIGRATE_*` variables, against the database in `url_var` (or the `PG*`
/// variables). Returns the exit code to stop with when it fails: migrate's own (1 a
/// migration failed and was rolled back, 3 lock not acquired in time, 4 drift, 5
/// database unreachable; see [`exit::from_migrate`]), 64 for a bad `MIGRATE_*` setting,
/// 78 for a bad migration file.
pub async fn migrate(env: &ChildEnv, url_var: &str) -> Result<(), u8> {
    let settings = match migrate::Settings::from_env(env) {
        Ok(s) => s,
        Err(errors) => {
            report("DECKHAND_MIGRATE_ON_START", &errors);
            return Err(exit::USAGE);
        }
    };
    let db = match pgconn::PgConfig::from_env_named(env, url_var) {
        Ok(Some(db)) => db.with_default_application_name(&migrate::application_name(env)),
        Ok(None) => {
            tracing::error!("DECKHAND_MIGRATE_ON_START needs a database: set {url_var} (a reference works) or DECKHAND_DATABASE_SECRET, or the PG* variables");
            return Err(exit::CONFIG);
        }
        Err(e) => {
            tracing::error!("DECKHAND_MIGRATE_ON_START: {e}");
            return Err(exit::CONFIG);
        }
    };
    tracing::info!(dir = %settings.dir.display(), "running migrations before the app (DECKHAND_MIGRATE_ON_START)");
    match migrate::up(&db, &settings).await {
        Ok(report) => {
            tracing::info!(
                applied = report.applied.len(),
                current = report.current,
                "migrations done: {} applied; the database is at version {}",
                report.applied.len(),
                report.current.map_or("none".into(), |v| v.to_string())
            );
            Ok(())
        }
        Err(e) => {
            let code = exit::from_migrate(e.exit_code());
            tracing::error!(
                exit_code = code,
                "migrations failed, the app was not started: {e}"
            );
            Err(code)
        }
    }
}

/// The in-process health server: healthcheck's settings from its `HEALTH_*` variables,
/// the address from `DECKHAND_HEALTH_ADDR`, the database from the app's environment,
/// the start's phase and the log delivery from `host`. Bound before the migrations and
/// the app, so a taken port stops the start (exit 78) before anything ran. It drains
/// (answers 503) for `HEALTH_DRAIN`, and at least for `stop_delay`
/// (`DECKHAND_STOP_DELAY`): the load balancer sees 503s, not a closed port, for as
/// long as the app keeps serving.
pub async fn health(
    addr: SocketAddr,
    env: &ChildEnv,
    host: healthcheck::Host,
    drain: healthcheck::CancellationToken,
    stop_delay: std::time::Duration,
) -> Result<Health, u8> {
    // DECKHAND_HEALTH_ADDR is the address: an app's own HEALTH_ADDR is not read.
    let mut vars = conventions::Env::vars(env);
    vars.push(("HEALTH_ADDR".into(), addr.to_string().into()));
    let config = match healthcheck::Config::from_env(&vars) {
        Ok(c) => healthcheck::Config {
            drain: c.drain.max(stop_delay),
            ..c
        },
        Err(errors) => {
            report("DECKHAND_HEALTH_ADDR", &errors);
            return Err(exit::USAGE);
        }
    };
    let runtime = match Dedicated::start("health") {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("cannot start the health server's thread: {e}");
            return Err(exit::SOFTWARE);
        }
    };
    // Bound on its own runtime, so the socket is served by that thread's reactor.
    let bound = runtime
        .spawn(async move { TcpListener::bind(addr).await })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
    let listener = match bound {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("DECKHAND_HEALTH_ADDR={addr}: cannot listen: {e}; choose a free port (the app's own PORT must differ)");
            return Err(exit::CONFIG);
        }
    };
    let path = config.path.clone();
    match listener.local_addr() {
        Ok(bound) => tracing::info!(addr = %bound, path = %path, "serving {path} in process"),
        Err(_) => tracing::info!(path = %path, "serving {path} in process"),
    }
    let task = runtime.spawn(async move {
        if let Err(e) = healthcheck::run(listener, config, host, drain).await {
            tracing::error!("the health server stopped: {e}");
        }
    });
    Ok(Health {
        task,
        _runtime: runtime,
    })
}

/// The log pipeline's delivery to CloudWatch Logs, for `/health`'s `checks.logs`;
/// `None` when nothing is shipped (no log group), which omits the check.
pub fn logs_provider(logs: &logship::Logs) -> Option<healthcheck::LogsProvider> {
    let handle = logs.health_handle()?;
    Some(std::sync::Arc::new(move || {
        let h = handle.snapshot();
        healthcheck::LogDelivery {
            shipped: h.shipped,
            dropped: h.dropped,
            rejected: h.rejected,
            lag: h.lag,
            last_drop: h.last_drop,
        }
    }))
}

/// The running in-process health server.
pub struct Health {
    task: tokio::task::JoinHandle<()>,
    /// Its thread; dropped after the task is aborted.
    _runtime: Dedicated,
}

impl Health {
    pub fn stop(self) {
        self.task.abort();
    }
}
