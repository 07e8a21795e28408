//! A tokio runtime on a thread of its own, for work that must never share a thread
//! with the agent's PID-1 duties (signals, the stop timeout, reaping): the log
//! pipeline, and the in-process `/health` server.
//!
//! Why not one multi-threaded runtime: a task that runs long (a pathological line in
//! the sanitizer) or blocks in `write(2)` holds its worker, and the tasks queued behind
//! it on that worker wait too. A thread per concern makes "the stop sequence never
//! waits on logging" true by construction.
//!
//! Not here: what runs on it.

use std::future::Future;
use std::io;

use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A current-thread runtime driven by a named thread until this value is dropped.
#[derive(Debug)]
pub struct Dedicated {
    handle: Handle,
    /// Dropping it (with `self`) ends the thread's `block_on`.
    _stop: oneshot::Sender<()>,
}

impl Dedicated {
    /// Starts the thread `name` with its runtime (timers and I/O enabled).
    pub fn start(name: &str) -> io::Result<Dedicated> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                runtime.block_on(async {
                    let _ = stopped.await;
                });
                // Never wait for a task stuck in a blocking call: the process is
                // about to exit anyway.
                runtime.shutdown_background();
            })?;
        Ok(Dedicated {
            handle,
            _stop: stop,
        })
    }

    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Runs `future` on this runtime's thread.
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(future)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tasks_run_on_the_named_thread_and_a_busy_one_blocks_nothing_here() {
        let rt = Dedicated::start("test-dedicated").unwrap();
        let name = rt
            .spawn(async { std::thread::current().name().map(str::to_owned) })
            .await
            .unwrap();
        assert_eq!(name.as_deref(), Some("test-dedicated"));
        // A task that blocks its thread does not block this runtime's timers.
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let busy = rt.spawn(async move {
            let _ = rx.recv();
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        tx.send(()).unwrap();
        busy.await.unwrap();
    }
}
