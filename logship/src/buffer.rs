//! The byte-bounded queue between the app-facing side (capture tasks) and a sink: the
//! shipper, or the writer of the agent's stdout copy.
//!
//! When full, `drop-oldest` (the default) discards the oldest events so the app never
//! waits, and remembers the run of drops for a summary event; `block` makes producers
//! wait for space, which slows the app (backpressure) instead of losing lines.
//!
//! Consumers are async (the shipper: [`Buffer::arrived`]) or a plain thread that may
//! block in `write(2)` (the stdout writer: [`Buffer::take_blocking`]).

use std::collections::VecDeque;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use crate::account::Counters;
use crate::batch::event_bytes;
use crate::structure::Event;

/// What to do when the buffer is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FullPolicy {
    #[default]
    DropOldest,
    Block,
}

/// A run of drops not yet reported: "N events dropped between T1 and T2".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drops {
    pub count: u64,
    pub first_ms: i64,
    pub last_ms: i64,
}

#[derive(Debug)]
pub struct Buffer {
    state: Mutex<State>,
    capacity: usize,
    policy: FullPolicy,
    counters: Arc<Counters>,
    /// The counter a drop adds to: each sink has its own.
    dropped: fn(&Counters) -> &AtomicU64,
    /// Wakes the shipper when events arrive.
    pub(crate) arrived: Notify,
    /// Wakes a consumer thread waiting in [`Buffer::take_blocking`].
    arrived_sync: Condvar,
    /// Wakes blocked producers when space frees up.
    space: Notify,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Event>,
    bytes: usize,
    drops: Option<Drops>,
    /// Consumer threads asleep in [`Buffer::take_blocking`]. std's `Condvar::notify_one`
    /// is a `futex` system call whether or not anyone waits; with this count a push
    /// makes it only for a sleeper.
    sleepers: usize,
}

impl Buffer {
    /// The shipper's buffer: drops count as `dropped_buffer_full`.
    pub fn new(capacity: usize, policy: FullPolicy, counters: Arc<Counters>) -> Self {
        Self::counting(capacity, policy, counters, |c| &c.dropped_buffer_full)
    }

    /// A buffer whose drops add to `dropped`.
    pub fn counting(
        capacity: usize,
        policy: FullPolicy,
        counters: Arc<Counters>,
        dropped: fn(&Counters) -> &AtomicU64,
    ) -> Self {
        Buffer {
            state: Mutex::new(State::default()),
            capacity,
            policy,
            counters,
            dropped,
            arrived: Notify::new(),
            arrived_sync: Condvar::new(),
            space: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves the queue consistent (every update is
        // one push or pop): keep using it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the consumers after a push; `sleeper` is whether a thread sleeps in
    /// [`Buffer::take_blocking`], read under the lock the push held.
    fn wake_consumers(&self, sleeper: bool) {
        self.arrived.notify_one();
        if sleeper {
            self.arrived_sync.notify_one();
        }
    }

    /// Queues an event. With `drop-oldest` it never waits; with `block` it waits for
    /// room (an event larger than the whole buffer is admitted into an empty one).
    pub async fn push(&self, event: Event) {
        self.push_all(vec![event]).await;
    }

    /// Queues several events, in order, under one lock and with one wake-up as far as
    /// they fit (the capture path's common case: with `drop-oldest` always). With
    /// `block`, an event that does not fit waits for room, and the ones after it with
    /// it.
    pub async fn push_all(&self, mut events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        // Most pushes fit whole: queued in one move, not checked event by event.
        let bytes: usize = events.iter().map(event_bytes).sum();
        let sleeper = {
            let mut s = self.lock();
            let fits = s.bytes + bytes <= self.capacity;
            if fits {
                s.bytes += bytes;
                s.queue.extend(events.drain(..));
            }
            fits.then_some(s.sleepers > 0)
        };
        if let Some(sleeper) = sleeper {
            self.wake_consumers(sleeper);
            return;
        }
        let mut events = events.into_iter().peekable();
        while events.peek().is_some() {
            let waiter = self.space.notified();
            let sleeper = {
                let mut s = self.lock();
                while let Some(event) = events.next_if(|e| self.admits(&s, e)) {
                    self.admit(&mut s, event);
                }
                s.sleepers > 0
            };
            self.wake_consumers(sleeper);
            if events.peek().is_some() {
                waiter.await;
            }
        }
    }

    /// Whether `event` may be queued now: always with `drop-oldest` (the oldest make
    /// room); with `block` when it fits, or when the buffer is empty (an event larger
    /// than the whole buffer is admitted alone).
    fn admits(&self, s: &State, event: &Event) -> bool {
        self.policy == FullPolicy::DropOldest
            || s.queue.is_empty()
            || s.bytes + event_bytes(event) <= self.capacity
    }

    /// Drops the oldest events until `event` fits, then queues it.
    fn admit(&self, s: &mut State, event: Event) {
        let size = event_bytes(&event);
        while s.bytes + size > self.capacity {
            let Some(old) = s.queue.pop_front() else {
                break;
            };
            s.bytes -= event_bytes(&old);
            Counters::add((self.dropped)(&self.counters), 1);
            let d = s.drops.get_or_insert(Drops {
                count: 0,
                first_ms: old.timestamp_ms,
                last_ms: old.timestamp_ms,
            });
            d.count += 1;
            d.first_ms = d.first_ms.min(old.timestamp_ms);
            d.last_ms = d.last_ms.max(old.timestamp_ms);
        }
        s.bytes += size;
        s.queue.push_back(event);
    }

    /// Takes up to `max` events, oldest first.
    pub fn take(&self, max: usize) -> Vec<Event> {
        let mut s = self.lock();
        self.take_locked(&mut s, max)
    }

    fn take_locked(&self, s: &mut State, max: usize) -> Vec<Event> {
        let n = max.min(s.queue.len());
        let taken: Vec<Event> = s.queue.drain(..n).collect();
        s.bytes -= taken.iter().map(event_bytes).sum::<usize>();
        if !taken.is_empty() {
            self.space.notify_waiters();
        }
        taken
    }

    /// For a consumer thread: takes up to `max` events, waiting up to `wait` for the
    /// first one to arrive (an empty result after `wait`). `taken` is set to their
    /// number under the lock, so nobody sees an empty buffer and no events in flight
    /// while they are on their way.
    pub fn take_blocking(&self, max: usize, wait: Duration, taken: &AtomicU64) -> Vec<Event> {
        let mut s = self.lock();
        if s.queue.is_empty() {
            s.sleepers += 1;
            s = self
                .arrived_sync
                .wait_timeout_while(s, wait, |s| s.queue.is_empty())
                .unwrap_or_else(|e| e.into_inner())
                .0;
            s.sleepers -= 1;
        }
        let events = self.take_locked(&mut s, max);
        taken.store(events.len() as u64, std::sync::atomic::Ordering::Release);
        events
    }

    /// The drops since the last call, for a summary event.
    pub fn take_drops(&self) -> Option<Drops> {
        self.lock().drops.take()
    }

    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held, as the service would count them.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(ts: i64) -> Event {
        Event::new(ts, "{\"m\":\"0123456789\"}")
    }

    #[tokio::test]
    async fn drop_oldest_keeps_the_newest_and_counts() {
        let counters = Arc::new(Counters::default());
        let size = event_bytes(&ev(0));
        let b = Buffer::new(size * 3, FullPolicy::DropOldest, counters.clone());
        for ts in 1..=5 {
            b.push(ev(ts)).await;
        }
        let kept: Vec<i64> = b.take(10).iter().map(|e| e.timestamp_ms).collect();
        assert_eq!(kept, [3, 4, 5]);
        assert_eq!(
            b.take_drops(),
            Some(Drops {
                count: 2,
                first_ms: 1,
                last_ms: 2
            })
        );
        assert_eq!(b.take_drops(), None);
        assert_eq!(
            counters
                .dropped_buffer_full
                .load(std::sync::atomic::Ordering::Relaxed),
            2
        );
        assert_eq!(b.bytes(), 0);
    }

    #[tokio::test]
    async fn block_waits_for_space() {
        let counters = Arc::new(Counters::default());
        let size = event_bytes(&ev(0));
        let b = Arc::new(Buffer::new(size * 2, FullPolicy::Block, counters));
        b.push(ev(1)).await;
        b.push(ev(2)).await;
        let waiting =
            tokio::time::timeout(std::time::Duration::from_millis(50), b.push(ev(3))).await;
        assert!(waiting.is_err(), "a full buffer makes the producer wait");
        let producer = {
            let b = b.clone();
            tokio::spawn(async move { b.push(ev(3)).await })
        };
        assert_eq!(b.take(1)[0].timestamp_ms, 1);
        producer.await.unwrap();
        let rest: Vec<i64> = b.take(10).iter().map(|e| e.timestamp_ms).collect();
        assert_eq!(rest, [2, 3]);
        assert_eq!(b.take_drops(), None);
    }

    /// With `block`, `push_all` queues what fits at once and waits, in order, for room
    /// for the rest.
    #[tokio::test]
    async fn block_push_all_queues_what_fits_and_waits_for_the_rest() {
        let counters = Arc::new(Counters::default());
        let size = event_bytes(&ev(0));
        let b = Arc::new(Buffer::new(size * 2, FullPolicy::Block, counters));
        let producer = {
            let b = b.clone();
            tokio::spawn(async move { b.push_all((1..=4).map(ev).collect()).await })
        };
        let mut taken = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while taken.len() < 4 {
            assert!(std::time::Instant::now() < deadline, "took {taken:?}");
            assert!(b.bytes() <= size * 2, "never more than the capacity");
            match b.take(1).pop() {
                Some(e) => taken.push(e.timestamp_ms),
                None => tokio::task::yield_now().await,
            }
        }
        producer.await.unwrap();
        assert_eq!(taken, [1, 2, 3, 4]);
        assert_eq!(b.take_drops(), None);
    }

    /// A consumer thread asleep in `take_blocking` is woken by a push (the condition
    /// variable is signalled only for a sleeper: a missed signal would leave it asleep
    /// for its whole wait).
    #[test]
    fn a_sleeping_consumer_thread_is_woken_by_a_push() {
        let counters = Arc::new(Counters::default());
        for policy in [FullPolicy::DropOldest, FullPolicy::Block] {
            let b = Arc::new(Buffer::new(1 << 20, policy, counters.clone()));
            let consumer = {
                let b = b.clone();
                std::thread::spawn(move || {
                    let taken = AtomicU64::new(0);
                    // Far longer than the deadline below: only a wake-up ends it in time.
                    b.take_blocking(10, Duration::from_secs(3600), &taken)
                })
            };
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while b.lock().sleepers == 0 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the consumer never slept"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            runtime.block_on(b.push_all(vec![ev(7)]));
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while !consumer.is_finished() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the push did not wake the consumer"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            let got: Vec<i64> = consumer
                .join()
                .unwrap()
                .iter()
                .map(|e| e.timestamp_ms)
                .collect();
            assert_eq!(got, [7], "{policy:?}");
            assert_eq!(b.lock().sleepers, 0);
        }
    }
}
