//! Turns SIGTERM (what ECS sends to stop a task) and SIGINT (Ctrl-C) into draining, for
//! the standalone server. The agent owns the signals of its process and cancels the
//! token itself.

use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

/// Cancels `drain` on the first SIGTERM or SIGINT. Must be called inside a tokio runtime.
pub fn drain_on_signal(drain: CancellationToken) -> std::io::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
            _ = drain.cancelled() => return,
        };
        tracing::info!(signal = name, "Received {name}; draining.");
        drain.cancel();
    });
    Ok(())
}
