//! Throughput of capture + structure + sanitize + batch on one core, over the shared
//! log corpus (`../shared/bench/corpus.py`, the corpus the peers were measured on).
//! Prints figures; asserts nothing.
//!
//!   cargo bench -p logship --bench pipeline          (generates a 200 MB corpus once)
//!   DECKHAND_CORPUS=/path/corpus.log cargo bench -p logship --bench pipeline

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use logship::account::Counters;
use logship::batch::Batcher;
use logship::buffer::{Buffer, FullPolicy};
use logship::capture::{capture, Pipeline};
use logship::sanitize::{Config, Current, KnownSecret, Sanitizer};
use logship::structure::{Options, Stream};

fn corpus() -> (PathBuf, Vec<String>) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let script = root.join("../shared/bench/corpus.py");
    let path = std::env::var_os("DECKHAND_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/bench-corpus-200.log"));
    // The secrets are printed by the generator; regenerate to read them (deterministic).
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(&path)
        .arg(std::env::var("DECKHAND_CORPUS_MB").unwrap_or_else(|_| "200".into()))
        .output()
        .expect("run corpus.py");
    assert!(
        out.status.success(),
        "corpus.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stderr).expect("corpus.py metadata");
    let secrets = meta["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    (path, secrets)
}

fn main() {
    let (path, secrets) = corpus();
    let data = std::fs::read(&path).expect("read corpus");
    let lines = memchr::memchr_iter(b'\n', &data).count();
    let new_sanitizer = || {
        let config = Config {
            secrets: secrets
                .iter()
                .enumerate()
                .map(|(i, s)| KnownSecret::new(format!("SECRET_{i}"), s.clone()))
                .collect(),
            ..Config::default()
        };
        let sanitizer = Sanitizer::new(config.clone()).expect("sanitizer").0;
        Arc::new(Current::new(sanitizer, config))
    };
    let mut sanitizer = new_sanitizer();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut best = Duration::MAX;
    let mut batches = 0;
    let mut shipped_events = 0;
    for _ in 0..3 {
        sanitizer = new_sanitizer();
        let counters = Arc::new(Counters::default());
        let buffer = Arc::new(Buffer::new(64 << 20, FullPolicy::Block, counters.clone()));
        let pipeline = Arc::new(Pipeline {
            options: Options::default(),
            sanitizer: sanitizer.clone(),
            buffer: Some(buffer.clone()),
            stdout: false,
            counters: counters.clone(),
            max_event_bytes: logship::batch::MAX_EVENT_BYTES,
            multiline_window: Duration::from_millis(100),
        });
        let input = std::io::Cursor::new(data.clone());
        let started = Instant::now();
        let (b, e) = runtime.block_on(async {
            let producer = tokio::spawn(capture(input, Stream::Stdout, pipeline));
            // The sink: batch everything as the shipper would, and answer at once.
            let mut batcher = Batcher::new();
            let (mut batches, mut events) = (0, 0);
            loop {
                let taken = buffer.take(4096);
                if taken.is_empty() {
                    if producer.is_finished() && buffer.is_empty() {
                        break;
                    }
                    tokio::task::yield_now().await;
                    continue;
                }
                for event in taken {
                    events += 1;
                    if batcher.push(event).is_some() {
                        batches += 1;
                    }
                }
            }
            if batcher.take().is_some() {
                batches += 1;
            }
            producer.await.unwrap();
            (batches, events)
        });
        best = best.min(started.elapsed());
        batches = b;
        shipped_events = e;
    }
    let secs = best.as_secs_f64();
    println!(
        "corpus: {} ({:.0} MB, {lines} lines)",
        path.display(),
        data.len() as f64 / 1e6
    );
    println!("capture + structure + sanitize + batch, one core (best of 3):");
    println!(
        "  {:.0} MB/s, {:.0} lines/s",
        data.len() as f64 / 1e6 / secs,
        lines as f64 / secs
    );
    println!("  {shipped_events} events in {batches} PutLogEvents batches");
    let mut counts = sanitizer.get().counts();
    counts.sort();
    println!("  redactions by detector: {counts:?}");
}
