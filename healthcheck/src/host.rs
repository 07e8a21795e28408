//! What the process that serves `/health` tells the server while it runs, besides the
//! settings: how far its start has got ([`Phase`]), and how the delivery of the app's
//! logs is doing ([`LogsProvider`]). The standalone binary has neither to tell
//! ([`Host::default`]: ready, no logs); the agent has both.
//!
//! Not here: what the server makes of them (`server.rs`, `logs.rs`).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How far the start has got. `/health` answers 503 `"status":"starting"` with the
/// stage as `"phase"` until it is [`Stage::Ready`]; `/health/live` answers 200 all along.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// `DECKHAND_MIGRATE_ON_START` is running `migrate up`.
    Migrating,
    /// Between the migrations and the app's spawn.
    StartingApp,
    /// The app has been started: the checks decide.
    Ready,
}

impl Stage {
    /// As the body's `phase` shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Migrating => "migrating",
            Stage::StartingApp => "starting-app",
            Stage::Ready => "ready",
        }
    }

    fn from_u8(value: u8) -> Stage {
        match value {
            0 => Stage::Migrating,
            1 => Stage::StartingApp,
            _ => Stage::Ready,
        }
    }
}

/// The current [`Stage`], shared: the agent moves it forward, the server reads it on
/// every request. Clones share one value.
#[derive(Debug, Clone)]
pub struct Phase(Arc<AtomicU8>);

impl Phase {
    pub fn new(stage: Stage) -> Self {
        Phase(Arc::new(AtomicU8::new(stage as u8)))
    }

    /// Ready from the start: the standalone server, whose app starts on its own.
    pub fn ready() -> Self {
        Phase::new(Stage::Ready)
    }

    pub fn set(&self, stage: Stage) {
        self.0.store(stage as u8, Ordering::Release);
    }

    pub fn get(&self) -> Stage {
        Stage::from_u8(self.0.load(Ordering::Acquire))
    }
}

impl Default for Phase {
    fn default() -> Self {
        Phase::ready()
    }
}

/// What the log pipeline reports of its delivery to CloudWatch Logs, read when a
/// request needs it. The agent fills it from `logship`'s snapshot; healthcheck does
/// not depend on `logship`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogDelivery {
    /// Events CloudWatch Logs accepted.
    pub shipped: u64,
    /// Events dropped (the buffer was full, or still full at the stop).
    pub dropped: u64,
    /// Events CloudWatch Logs refused (their timestamps, or a batch refused for good).
    pub rejected: u64,
    /// How long events have been waiting for delivery to make progress; zero when
    /// nothing waits.
    pub lag: Duration,
    /// How long ago events were last dropped; `None` when never.
    pub last_drop: Option<Duration>,
}

/// Reads the log pipeline's delivery; called on the health server's thread, so it
/// must only read (atomics, a short lock).
pub type LogsProvider = Arc<dyn Fn() -> LogDelivery + Send + Sync>;

/// What [`crate::run`] gets from the process it runs in.
#[derive(Clone, Default)]
pub struct Host {
    /// How far the start has got; [`Phase::ready`] for the standalone server.
    pub phase: Phase,
    /// The delivery of the app's logs, when a log group is set (the agent): `None`
    /// omits `checks.logs`, as every check that is not configured.
    pub logs: Option<LogsProvider>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("phase", &self.phase.get())
            .field("logs", &self.logs.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_stage_and_the_default_is_ready() {
        let phase = Phase::new(Stage::Migrating);
        let seen = phase.clone();
        assert_eq!(seen.get(), Stage::Migrating);
        phase.set(Stage::StartingApp);
        assert_eq!(seen.get().as_str(), "starting-app");
        phase.set(Stage::Ready);
        assert_eq!(seen.get(), Stage::Ready);
        assert_eq!(Host::default().phase.get(), Stage::Ready);
        assert!(Host::default().logs.is_none());
    }
}
