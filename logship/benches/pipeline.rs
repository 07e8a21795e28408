//! Throughput of capture + structure + sanitize + batch on one core, over the shared
//! log corpus (`../shared/bench/corpus.py`, the corpus the peers were measured on),
//! and over the same lines cut to 40 bytes: what a line costs whatever its length, and
//! what each further byte adds. Prints figures; asserts nothing.
//!
//!   cargo bench -p logship --bench pipeline          (generates a 200 MB corpus once)
//!   BENCH_PIPELINE_CORPUS=/path/corpus.log cargo bench -p logship --bench pipeline
//!
//! For profiling and for comparing two builds' output:
//!   BENCH_PIPELINE_ROUNDS=1            runs per input (default 3: the best is reported)
//!   BENCH_PIPELINE_ADVERSARIAL_MB=0    no adversarial inputs
//!   BENCH_PIPELINE_LINES=0             the corpus only: neither the lines cut to 40
//!                                      bytes nor the adversarial inputs
//!   BENCH_PIPELINE_ONLY=escapes        only the adversarial inputs whose name has this
//!   BENCH_PIPELINE_OUT=/path           writes every shipped event of the corpus's last
//!                                      run, one per line, in the order the sink took them
//!   BENCH_PIPELINE_BODY=1              the sink also writes each batch's PutLogEvents
//!                                      body, as the shipper does (its cost, measured
//!                                      against a run without)

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use logship::account::Counters;
use logship::batch::Batcher;
use logship::buffer::{Buffer, FullPolicy};
use logship::capture::{capture, Pipeline};
use logship::sanitize::{Config, Current, KnownSecret, Sanitizer};
use logship::ship::{put_body, Destination};
use logship::structure::{Options, Stream};

fn corpus() -> (PathBuf, Vec<String>) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let script = root.join("../shared/bench/corpus.py");
    let path = std::env::var_os("BENCH_PIPELINE_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/bench-corpus-200.log"));
    let mb: u64 = std::env::var("BENCH_PIPELINE_CORPUS_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    // The generator's metadata (the secrets among them), kept beside the corpus as
    // `scripts/bench` keeps it: a corpus of the size asked for is not generated again.
    let mut meta_path = path.clone().into_os_string();
    meta_path.push(".json");
    let meta_path = PathBuf::from(meta_path);
    let kept = std::fs::read(&meta_path)
        .ok()
        .and_then(|m| serde_json::from_slice::<serde_json::Value>(&m).ok())
        .filter(|meta| {
            let bytes = meta["bytes"].as_u64();
            let on_disk = std::fs::metadata(&path).ok().map(|m| m.len());
            bytes.is_some()
                && bytes == on_disk
                && bytes.map(|b| (b + 500_000) / 1_000_000) == Some(mb)
        });
    let meta = match kept {
        Some(meta) => meta,
        None => {
            let out = std::process::Command::new("python3")
                .arg(&script)
                .arg(&path)
                .arg(mb.to_string())
                .output()
                .expect("run corpus.py");
            assert!(
                out.status.success(),
                "corpus.py failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::fs::write(&meta_path, &out.stderr).expect("write the corpus's metadata");
            serde_json::from_slice(&out.stderr).expect("corpus.py metadata")
        }
    };
    let secrets = meta["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    (path, secrets)
}

/// Inputs built to make a detector work hard, each about `size` bytes: many long lines,
/// and one line of 8 MiB (the capture's streaming cut) of the same content.
fn adversarial(size: usize) -> Vec<(String, Vec<u8>)> {
    let kinds: [(&str, &str); 6] = [
        ("repeated trigger words", "token "),
        // A word's start every 16 bytes, and a word in progress through every byte
        // between them (`s` begins `secret`): walked from few marks, but every byte.
        ("walks from sparse marks", "passssssssssssss"),
        ("key=value runs", "password=x "),
        ("card-like digit runs", "4111 1111 1111 1112 "),
        ("many ://", "http://a:b@"),
        ("JSON escapes", "\\u0041\\\" "),
    ];
    let mut inputs = Vec::new();
    for (name, unit) in kinds {
        // 200 KB lines, as in a long URL of an access log.
        let line = unit.repeat(200_000 / unit.len());
        let mut many = Vec::with_capacity(size + line.len());
        while many.len() < size {
            many.extend_from_slice(line.as_bytes());
            many.push(b'\n');
        }
        inputs.push((format!("{name}, 200 KB lines"), many));
        let mut one = unit.repeat(8 * 1024 * 1024 / unit.len()).into_bytes();
        one.push(b'\n');
        inputs.push((format!("{name}, one 8 MiB line"), one));
        // Past the capture's cut: streamed in windows, never held whole.
        let mut streamed = unit.repeat(16 * 1024 * 1024 / unit.len()).into_bytes();
        streamed.push(b'\n');
        inputs.push((format!("{name}, one 16 MiB line"), streamed));
    }
    inputs
}

/// The length [`cut_lines`] cuts the corpus's lines to: about the shortest lines apps
/// write (`GET /health 200 0.4 ms`), and short enough that what a line costs whatever
/// its length is most of it.
const SHORT_LINE: usize = 40;

/// `data` with each line cut to its first `len` bytes (its newline kept).
fn cut_lines(data: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for line in data.split_inclusive(|&b| b == b'\n') {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        out.extend_from_slice(&body[..body.len().min(len)]);
        out.push(b'\n');
    }
    out
}

/// Runs `data` through capture → structure → sanitize → batch `rounds` times; the best
/// time, the events and the batches.
fn measure(
    runtime: &tokio::runtime::Runtime,
    data: &[u8],
    new_sanitizer: &dyn Fn() -> Arc<Current>,
    mut out: Option<&mut Vec<u8>>,
    rounds: usize,
) -> (Duration, usize, usize, Arc<Current>) {
    let mut best = Duration::MAX;
    let (mut batches, mut shipped_events) = (0, 0);
    let bodies = bodies();
    let bodies = bodies.as_ref();
    let mut sanitizer = new_sanitizer();
    for _ in 0..rounds {
        // Only the last run's events are kept.
        if let Some(out) = out.as_deref_mut() {
            out.clear();
        }
        sanitizer = new_sanitizer();
        let counters = Arc::new(Counters::default());
        let buffer = Arc::new(Buffer::new(64 << 20, FullPolicy::Block, counters.clone()));
        let pipeline = Arc::new(Pipeline {
            options: Options::default(),
            sanitizer: sanitizer.clone(),
            buffer: Some(buffer.clone()),
            stdout: None,
            stderr: None,
            counters: counters.clone(),
            max_event_bytes: logship::batch::MAX_EVENT_BYTES,
            multiline_window: Duration::from_millis(100),
        });
        let input = std::io::Cursor::new(data.to_vec());
        let started = Instant::now();
        let (b, e) = runtime.block_on(async {
            let producer = tokio::spawn(capture(input, Stream::Stdout, pipeline));
            // The sink: batch everything as the shipper would, and answer at once.
            let mut batcher = Batcher::new();
            let (mut batches, mut events) = (0, 0);
            let mut body_bytes = 0;
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
                    if let Some(out) = out.as_deref_mut() {
                        out.extend_from_slice(event.json.as_bytes());
                        out.push(b'\n');
                    }
                    if let Some(batch) = batcher.push(event) {
                        batches += 1;
                        if let Some(dest) = bodies {
                            body_bytes += put_body(dest, &batch).len();
                        }
                    }
                }
            }
            if let Some(batch) = batcher.take() {
                batches += 1;
                if let Some(dest) = bodies {
                    body_bytes += put_body(dest, &batch).len();
                }
            }
            std::hint::black_box(body_bytes);
            producer.await.unwrap();
            (batches, events)
        });
        best = best.min(started.elapsed());
        batches = b;
        shipped_events = e;
    }
    (best, shipped_events, batches, sanitizer)
}

/// BENCH_PIPELINE_BODY: the destination whose PutLogEvents bodies the sink writes.
fn bodies() -> Option<Destination> {
    std::env::var_os("BENCH_PIPELINE_BODY").map(|_| Destination {
        group: "/ecs/bench".to_owned(),
        stream: "web/0123456789abcdef".to_owned(),
        retention_days: None,
    })
}

/// BENCH_PIPELINE_ROUNDS: runs per input, the best reported (3 unless set).
fn rounds() -> usize {
    std::env::var("BENCH_PIPELINE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
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
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let out_path = std::env::var_os("BENCH_PIPELINE_OUT").map(PathBuf::from);
    let mut out = out_path.as_ref().map(|_| Vec::new());
    let (best, shipped_events, batches, sanitizer) =
        measure(&runtime, &data, &new_sanitizer, out.as_mut(), rounds());
    if let (Some(path), Some(out)) = (&out_path, &out) {
        std::fs::write(path, out).expect("write BENCH_PIPELINE_OUT");
    }
    let secs = best.as_secs_f64();
    let corpus_mb_s = data.len() as f64 / 1e6 / secs;
    println!(
        "corpus: {} ({:.0} MB, {lines} lines)",
        path.display(),
        data.len() as f64 / 1e6
    );
    println!("capture + structure + sanitize + batch, one core (best of 3):");
    println!(
        "  {corpus_mb_s:.0} MB/s, {:.0} lines/s",
        lines as f64 / secs
    );
    println!("  {shipped_events} events in {batches} PutLogEvents batches");
    let mut counts = sanitizer.get().counts();
    counts.sort();
    println!("  redactions by detector: {counts:?}");
    // What a line costs as such, whatever its length: the same lines cut short, each
    // pass alternating with one of the corpus (the best of each), so that both figures
    // are of the same minutes.
    let short = cut_lines(&data, SHORT_LINE);
    let (mut best, mut short_best) = (best, Duration::MAX);
    let cut_rounds = match std::env::var("BENCH_PIPELINE_LINES").as_deref() {
        Ok("0") => 0,
        _ => rounds(),
    };
    for _ in 0..cut_rounds {
        short_best = short_best.min(measure(&runtime, &short, &new_sanitizer, None, 1).0);
        best = best.min(measure(&runtime, &data, &new_sanitizer, None, 1).0);
    }
    if cut_rounds == 0 {
        return;
    }
    let ns_a_line = |d: Duration| d.as_secs_f64() * 1e9 / lines.max(1) as f64;
    let (long_ns, short_ns) = (ns_a_line(best), ns_a_line(short_best));
    let mean_len = data.len() as f64 / lines.max(1) as f64;
    let short_len = short.len() as f64 / lines.max(1) as f64;
    // A line's cost as `a + b × its length`, through the two points.
    let per_byte = (long_ns - short_ns) / (mean_len - short_len).max(1.0);
    let per_line = short_ns - per_byte * short_len;
    println!(
        "  {long_ns:.0} ns a line of {mean_len:.0} bytes on average; the same lines cut to \
         {SHORT_LINE} bytes: {short_ns:.0} ns a line ({:.0} MB/s); so about {per_line:.0} ns \
         a line and {per_byte:.2} ns a byte",
        short.len() as f64 / 1e6 / short_best.as_secs_f64(),
    );

    let size: usize = std::env::var("BENCH_PIPELINE_ADVERSARIAL_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32)
        * 1_000_000;
    if size == 0 {
        return;
    }
    println!();
    println!("adversarial input, same pipeline and secrets (best of 3); cost per byte against the corpus:");
    println!("  {:<44} {:>8} {:>10}", "input", "MB/s", "x corpus");
    let only = std::env::var("BENCH_PIPELINE_ONLY").unwrap_or_default();
    for (name, input) in adversarial(size) {
        if !name.contains(only.as_str()) {
            continue;
        }
        let (best, _, _, _) = measure(&runtime, &input, &new_sanitizer, None, rounds());
        let mb_s = input.len() as f64 / 1e6 / best.as_secs_f64();
        println!("  {name:<44} {mb_s:>8.0} {:>10.2}", corpus_mb_s / mb_s);
    }
}
