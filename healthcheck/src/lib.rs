//! The `/health` server an ALB target group checks, and the `probe` an ECS container
//! health check runs.
//!
//! `GET /health` (readiness) reports the database, the memory of the container and,
//! optionally, whether the app itself listens, the schema version (the migration files
//! against the history table) and, under the agent, the delivery of the app's logs;
//! `GET /health/live` (liveness) reports only that this process answers, and never
//! touches the database, so a database outage makes the ALB fail open instead of making
//! ECS replace every task.
//!
//! The standalone binary and the `agent` (which serves the same thing in process) both
//! call [`run`] with a bound listener, a validated [`Config`] (read from an environment:
//! the process's, or the app's resolved one under the agent), a [`Host`] (how far the
//! start has got, and the log delivery: the agent's; [`Host::default`] is ready with no
//! logs) and a [`CancellationToken`] that switches the server to draining:
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use healthcheck::Config;
//!
//! let config = Config::from_env(&conventions::ProcessEnv)
//!     .map_err(conventions::settings::Report)?;
//! let listener = tokio::net::TcpListener::bind(config.addr).await?;
//! let drain = tokio_util::sync::CancellationToken::new();
//! // On SIGTERM: drain.cancel(); the server answers 503 for HEALTH_DRAIN, then stops.
//! healthcheck::run(listener, config, healthcheck::Host::default(), drain).await?;
//! # Ok(())
//! # }
//! ```
//!
//! This crate does not decide when a task is stopped or restarted: it reports, and the
//! ALB and ECS act on the reports.

#![forbid(unsafe_code)]

mod app;
mod cache;
pub mod cli;
mod config;
mod database;
pub mod entry;
mod host;
mod logs;
mod memory;
mod migrations;
mod probe;
mod report;
mod server;
mod signal;

pub use config::{
    AppConfig, AppTarget, Config, DatabaseConfig, Details, MemoryConfig, MigrationsConfig,
    ProbeArgs, ProbeConfig, ServeArgs,
};
pub use host::{Host, LogDelivery, LogsProvider, Phase, Stage};
pub use memory::cgroup_limit;
pub use probe::{probe, ProbeOutcome};
pub use report::Status;
pub use server::{run, Error};
pub use signal::drain_on_signal;
pub use tokio_util::sync::CancellationToken;
