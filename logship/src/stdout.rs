//! The agent's stdout copy of the events, as a sink like CloudWatch: events wait in a
//! bounded [`Buffer`] and a thread of its own writes them.
//!
//! Why a thread: nobody has to read the agent's stdout (the awslogs driver in blocking
//! mode while CloudWatch is slow, any full pipe). A `write(2)` that blocks there must
//! not stop the capture from draining the app's pipes — an app blocked in its own
//! `write()` cannot run its SIGTERM handler — nor anything else of the agent's. With
//! the default `drop-oldest`, a stalled stdout loses the oldest copies, counted in
//! `dropped_stdout`; with `block`, the app waits, as it asked.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::account::Counters;
use crate::buffer::{Buffer, FullPolicy};

/// Events written per `write(2)` at most.
const TAKE: usize = 1_024;
/// How often the writer looks whether it should stop while idle.
const IDLE_WAIT: Duration = Duration::from_millis(100);
/// How often [`Stdout::drain`] looks whether everything is written.
const DRAIN_POLL: Duration = Duration::from_millis(5);

/// The queue and its writer thread.
#[derive(Debug)]
pub struct Stdout {
    buffer: Arc<Buffer>,
    /// Events the writer took and has not written yet.
    in_flight: Arc<AtomicU64>,
    /// Tells the writer to end once it is idle.
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
}

impl Stdout {
    /// Starts the writer thread for `out` (the process's stdout in the agent).
    pub fn start<W: Write + Send + 'static>(
        out: W,
        capacity: usize,
        policy: FullPolicy,
        counters: Arc<Counters>,
    ) -> std::io::Result<Stdout> {
        let buffer = Arc::new(Buffer::counting(capacity, policy, counters.clone(), |c| {
            &c.dropped_stdout
        }));
        let in_flight = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (b, w, s, c) = (
            buffer.clone(),
            in_flight.clone(),
            stop.clone(),
            counters.clone(),
        );
        std::thread::Builder::new()
            .name("stdout".into())
            .spawn(move || write_loop(out, &b, &w, &s, &c))?;
        Ok(Stdout {
            buffer,
            in_flight,
            stop,
            counters,
        })
    }

    pub fn buffer(&self) -> &Arc<Buffer> {
        &self.buffer
    }

    /// Waits until every queued event is written, or `deadline`; what is not written
    /// then (queued, or held by a writer stuck in `write(2)`) is counted in
    /// `dropped_stdout`, and the writer ends.
    pub async fn drain(&self, deadline: Instant) {
        while (!self.buffer.is_empty() || self.in_flight.load(Ordering::Acquire) > 0)
            && Instant::now() < deadline
        {
            tokio::time::sleep(DRAIN_POLL).await;
        }
        self.stop.store(true, Ordering::Release);
        let left = self.buffer.take(usize::MAX).len() as u64;
        let stuck = self.in_flight.load(Ordering::Acquire);
        Counters::add(&self.counters.dropped_stdout, left + stuck);
    }
}

fn write_loop<W: Write>(
    mut out: W,
    buffer: &Buffer,
    in_flight: &AtomicU64,
    stop: &AtomicBool,
    counters: &Counters,
) {
    let mut bytes = Vec::with_capacity(64 * 1024);
    loop {
        let events = buffer.take_blocking(TAKE, IDLE_WAIT, in_flight);
        if events.is_empty() {
            if stop.load(Ordering::Acquire) {
                return;
            }
            continue;
        }
        bytes.clear();
        for event in &events {
            bytes.extend_from_slice(event.json.as_bytes());
            bytes.push(b'\n');
        }
        // A closed stdout loses these copies: count them (the shipped ones still ship).
        if out.write_all(&bytes).and_then(|()| out.flush()).is_err() {
            Counters::add(&counters.dropped_stdout, events.len() as u64);
        }
        in_flight.store(0, Ordering::Release);
        if stop.load(Ordering::Acquire) {
            // Counted as not written when the stop came: end without writing more.
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structure::Event;
    use std::sync::Mutex;

    /// A writer that blocks until released, then records what it got.
    #[derive(Clone, Default)]
    struct Gate {
        open: Arc<(Mutex<bool>, std::sync::Condvar)>,
        got: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Gate {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let (lock, cv) = &*self.open;
            let mut open = lock.lock().unwrap();
            while !*open {
                open = cv.wait(open).unwrap();
            }
            self.got.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn event(n: usize) -> Event {
        Event {
            timestamp_ms: n as i64,
            json: format!("{{\"n\":{n}}}"),
        }
    }

    #[tokio::test]
    async fn a_stalled_stdout_never_blocks_producers_and_drops_are_counted() {
        let counters = Arc::new(Counters::default());
        let gate = Gate::default();
        let out = Stdout::start(
            gate.clone(),
            100 * 40,
            FullPolicy::DropOldest,
            counters.clone(),
        )
        .unwrap();
        // The writer is stuck in write(): 10,000 events still go through push_all at once.
        let pushed = tokio::time::timeout(Duration::from_secs(5), async {
            for n in 0..10_000 {
                out.buffer().push_all(vec![event(n)]).await;
            }
        })
        .await;
        assert!(pushed.is_ok(), "producers never wait on a stalled stdout");
        let dropped = counters.dropped_stdout.load(Ordering::Relaxed);
        assert!(dropped > 9_000, "{dropped}");
        // Released, the newest events come out.
        {
            let (lock, cv) = &*gate.open;
            *lock.lock().unwrap() = true;
            cv.notify_all();
        }
        out.drain(Instant::now() + Duration::from_secs(10)).await;
        let written = String::from_utf8(gate.got.lock().unwrap().clone()).unwrap();
        assert!(written.ends_with("{\"n\":9999}\n"), "{written}");
        let lines = written.lines().count() as u64;
        assert_eq!(
            lines + counters.dropped_stdout.load(Ordering::Relaxed),
            10_000
        );
    }

    #[tokio::test]
    async fn what_cannot_be_written_by_the_deadline_is_counted() {
        let counters = Arc::new(Counters::default());
        let gate = Gate::default();
        let out = Stdout::start(gate, 1 << 20, FullPolicy::DropOldest, counters.clone()).unwrap();
        out.buffer().push_all((0..50).map(event).collect()).await;
        out.drain(Instant::now() + Duration::from_millis(50)).await;
        // Queued or held by the stuck writer: every one is counted as not written.
        assert_eq!(counters.dropped_stdout.load(Ordering::Relaxed), 50);
        assert!(out.buffer().is_empty());
    }
}
