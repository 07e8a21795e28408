//! `DECKHAND_STOP_DELAY`, as the load balancer sees it: on SIGTERM the in-process
//! `/health` answers 503 draining at once while the app keeps serving and gets no
//! signal; the app gets its stop signal when the delay ends — or at once on a second
//! SIGTERM or a SIGINT — and the agent exits with its code. A delay whose stop cannot
//! fit Fargate's longest `stopTimeout` is refused at start on Fargate (the task
//! metadata's `LaunchType`), and only a warning on EC2 or where the launch type is
//! unknown.

use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::support::*;

/// Longest the tests wait for a state they poll for; generous, it is not a measurement.
const DEADLINE: Duration = Duration::from_secs(30);

/// A request sent this soon after `kill` returned may reach `/health` before the agent
/// has read the signal (its reaper thread, then its supervisor, must be scheduled: a
/// millisecond when idle, more under the load of the whole suite). Measured: 200 at
/// 1.3 ms, 503 from the next request on; the bound leaves room for a loaded machine.
const SIGNAL_READ: Duration = Duration::from_millis(1500);

/// The app's exit code when it gets SIGTERM: the agent must exit with it.
const APP_CODE: i32 = 7;

/// A small web app: `GET` anything answers 200 JSON on `127.0.0.1:$PORT`; on SIGTERM it
/// writes the time (seconds since the epoch) to `$DIR/term` and exits [`APP_CODE`].
const APP: &str = r#"
import http.server, os, signal, time
def term(*_):
    path = os.path.join(os.environ["DIR"], "term")
    with open(path + ".tmp", "w") as f:
        f.write(repr(time.time()))
    os.replace(path + ".tmp", path)
    os._exit(7)
signal.signal(signal.SIGTERM, term)
class App(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"app":"ok"}')
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), App).serve_forever()
"#;

/// A started agent running [`APP`], with its health and app URLs.
struct Served {
    running: Running,
    scratch: Scratch,
    health: String,
    app: String,
}

/// Starts the agent with `/health` in process and `delay` as its stop delay, and waits
/// until both `/health` and the app answer 200.
async fn start(delay: &str, stop_timeout: &str) -> Served {
    let scratch = scratch();
    let health_addr = testkit::net::closed_port();
    let app_addr = testkit::net::closed_port();
    let mut cmd = bare_agent();
    cmd.env("DECKHAND_HEALTH_ADDR", health_addr.to_string())
        .env("DECKHAND_STOP_DELAY", delay)
        .env("DECKHAND_STOP_TIMEOUT", stop_timeout)
        // Shorter than any delay here: /health must answer through the delay anyway.
        .env("HEALTH_DRAIN", "1s")
        .env("DIR", scratch.path())
        .env("PORT", app_addr.port().to_string())
        .args(["--", "python3", "-c", APP]);
    let served = Served {
        running: Running::start(cmd),
        scratch,
        health: format!("http://{health_addr}/health"),
        app: format!("http://{app_addr}/"),
    };
    let ready = testkit::wait_until_async(DEADLINE, || {
        let (health, app) = (served.health.clone(), served.app.clone());
        async move {
            matches!(get_json(health).await, Some((200, _)))
                && matches!(get_json(app).await, Some((200, _)))
        }
    })
    .await;
    assert!(ready, "/health and the app never both answered 200");
    served
}

fn draining(answer: &Option<(u16, Value)>) -> bool {
    matches!(answer, Some((503, body)) if body["draining"] == true)
}

/// When the app got SIGTERM, by its own clock.
fn app_got_term(scratch: &Scratch) -> Option<SystemTime> {
    let text = std::fs::read_to_string(scratch.join("term")).ok()?;
    let seconds: f64 = text.trim().parse().ok()?;
    Some(UNIX_EPOCH + Duration::from_secs_f64(seconds))
}

/// What one look at both URLs saw, `at` after SIGTERM was sent.
#[derive(Debug)]
struct Look {
    at: Duration,
    health: Option<(u16, Value)>,
    app: Option<(u16, Value)>,
    /// The app had got SIGTERM once both answers were in.
    app_signalled: bool,
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_health_while_the_app_serves_then_stops_it_after_the_delay() {
    let _timing = TIMING.read().await;
    let served = start("4s", "5s").await;
    let delay = Duration::from_secs(4);

    let sent_at = SystemTime::now();
    let sent = Instant::now();
    served.running.signal("TERM");
    let looks: Mutex<Vec<Look>> = Mutex::new(Vec::new());
    let signalled = testkit::wait_until_async(DEADLINE, || {
        let (health, app) = (served.health.clone(), served.app.clone());
        let scratch = &served.scratch;
        let looks = &looks;
        async move {
            let at = sent.elapsed();
            let health = get_json(health).await;
            let app = get_json(app).await;
            let app_signalled = scratch.join("term").exists();
            looks.lock().unwrap().push(Look {
                at,
                health,
                app,
                app_signalled,
            });
            app_signalled
        }
    })
    .await;
    let looks = looks.into_inner().unwrap();
    assert!(signalled, "the app never got SIGTERM: {looks:?}");
    let out = served.running.wait();
    assert_code(&out, APP_CODE);

    // The ALB's view: from the first request after the agent read SIGTERM, /health is
    // 503 draining and never healthy again, and the app answers everything routed to
    // it until it gets its stop signal.
    // A look that starts near the delay's end can race it: /health closes as the app is
    // signalled, before the app has written down its SIGTERM. Looks that start well
    // inside the delay are judged.
    let inside = delay - Duration::from_secs(1);
    let before: Vec<&Look> = looks
        .iter()
        .filter(|l| !l.app_signalled && l.at < inside)
        .collect();
    assert!(!before.is_empty(), "{looks:?}");
    let first_drained = before
        .iter()
        .position(|l| draining(&l.health))
        .unwrap_or(before.len());
    for (i, look) in before.iter().enumerate() {
        if i < first_drained {
            assert!(look.at < SIGNAL_READ, "/health not draining yet: {look:?}");
            assert!(matches!(look.health, Some((200, _))), "{look:?}");
        } else {
            assert!(draining(&look.health), "/health during the delay: {look:?}");
        }
        assert!(
            matches!(look.app, Some((200, _))),
            "the app during the delay: {look:?}"
        );
    }
    assert!(
        before.iter().any(|l| l.at >= delay / 2),
        "no look well into the delay: {looks:?}"
    );

    // The app got SIGTERM only when the delay was over (the agent's timer starts when
    // it reads the signal, after it was sent), and not long after.
    let got = app_got_term(&served.scratch).expect("the app recorded its SIGTERM");
    let waited = got.duration_since(sent_at).unwrap_or_default();
    assert!(
        waited >= delay - Duration::from_millis(100),
        "the app got SIGTERM {waited:?} after the agent, before the 4 s delay was over"
    );
    assert!(
        waited < delay + Duration::from_secs(8),
        "the app got SIGTERM {waited:?} after the agent"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_sigterm_or_a_sigint_during_the_delay_stops_the_app_at_once() {
    let _timing = TIMING.read().await;
    for second in ["TERM", "INT"] {
        // 60 s + 5 s + the 5 s margin: more than ECS's default stopTimeout.
        let served = start("60s", "5s").await;
        served.running.signal("TERM");
        let health = served.health.clone();
        let drained = testkit::wait_until_async(DEADLINE, || {
            let health = health.clone();
            async move { draining(&get_json(health).await) }
        })
        .await;
        assert!(drained, "/health never drained");
        assert!(
            app_got_term(&served.scratch).is_none(),
            "the app got its stop signal during the delay"
        );
        // Still serving during the delay.
        assert!(matches!(get_json(served.app.clone()).await, Some((200, _))));

        let sent = Instant::now();
        served.running.signal(second);
        let stopped = testkit::wait_until(Duration::from_secs(10), || {
            served.scratch.join("term").exists()
        });
        let took = sent.elapsed();
        assert!(
            stopped,
            "a second SIG{second} did not end the delay within 10 s"
        );
        let out = served.running.wait();
        assert_code(&out, APP_CODE);
        assert!(took < Duration::from_secs(10), "{took:?}");
        let (_, stderr) = text(&out);
        assert!(
            stderr.contains(r#"set the container's "stopTimeout": 70 in the task definition"#),
            "no warning about the stop's length: {stderr}"
        );
        assert!(
            stderr.contains(&format!("SIG{second} during the stop delay")),
            "{stderr}"
        );
    }
}

/// A task metadata endpoint stand-in for a task of `launch_type`: the task document
/// (shaped like a real v4 one, trimmed) and the container's. Returns it and its
/// `ECS_CONTAINER_METADATA_URI_V4`.
async fn task_metadata(launch_type: &str) -> (testkit::http::Routes, String) {
    task_metadata_of(launch_type, 1024).await
}

/// [`task_metadata`] for a task of `memory_mib`.
async fn task_metadata_of(launch_type: &str, memory_mib: u32) -> (testkit::http::Routes, String) {
    let task = format!(
        r#"{{
  "Cluster": "arn:aws:ecs:us-east-1:123456789012:cluster/streamline",
  "TaskARN": "arn:aws:ecs:us-east-1:123456789012:task/streamline/6a1f0c2f6e8e4b8c9d7a0b1c2d3e4f50",
  "Family": "streamline-web",
  "Revision": "14",
  "Limits": {{ "CPU": 0.5, "Memory": {memory_mib} }},
  "AvailabilityZone": "us-east-1b",
  "LaunchType": "{launch_type}",
  "Containers": []
}}"#
    );
    let container = r#"{"Name": "web", "Labels": {
        "com.amazonaws.ecs.task-arn": "arn:aws:ecs:us-east-1:123456789012:task/streamline/6a1f0c2f6e8e4b8c9d7a0b1c2d3e4f50",
        "com.amazonaws.ecs.task-definition-family": "streamline-web",
        "com.amazonaws.ecs.task-definition-version": "14"}}"#;
    let routes = testkit::http::Routes::serve(vec![
        ("/v4/6a1f0c2f-2531612879/task", 200, task),
        ("/v4/6a1f0c2f-2531612879", 200, container.to_owned()),
    ])
    .await;
    let uri = format!("http://{}/v4/6a1f0c2f-2531612879", routes.addr);
    (routes, uri)
}

/// The agent with a 100 s stop delay and the default 25 s stop timeout: 2m 5s, over
/// Fargate's 2 m, in the task metadata at `metadata_uri` when there is one.
fn over_fargates_limit(scratch: &Scratch, metadata_uri: Option<&str>) -> Command {
    let mut cmd: Command = bare_agent();
    cmd.env("DECKHAND_STOP_DELAY", "100s")
        .env("DECKHAND_STOP_TIMEOUT", "25s");
    if let Some(uri) = metadata_uri {
        cmd.env("ECS_CONTAINER_METADATA_URI_V4", uri);
    }
    app_writing_env(&mut cmd, scratch);
    cmd
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stop_delay_that_no_fargate_stop_timeout_fits_is_refused_at_start_on_fargate() {
    // The launch type is read within half a second: not while fifty agents start.
    let _timing = TIMING.read().await;
    let (metadata, uri) = task_metadata("FARGATE").await;
    let scratch = scratch();
    let out = run_async(over_fargates_limit(&scratch, Some(&uri))).await;
    assert_refused(
        &out,
        &scratch,
        64,
        &[
            r#"DECKHAND_STOP_DELAY="100s" is not valid: with DECKHAND_STOP_TIMEOUT="25s""#,
            "on Fargate, where this task runs (stopTimeout is at most 2m on Fargate)",
            "the app was not started",
        ],
        &[],
    );
    assert_eq!(
        *metadata.asked.lock().unwrap(),
        ["/v4/6a1f0c2f-2531612879/task"],
        "the task document, once, and nothing after the refusal"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn on_ec2_the_same_stop_delay_starts_and_warns_which_limit_applies() {
    let _timing = TIMING.read().await;
    let (metadata, uri) = task_metadata("EC2").await;
    let scratch = scratch();
    let out = run_async(over_fargates_limit(&scratch, Some(&uri))).await;
    assert_code(&out, 0);
    assert!(scratch.join("env.txt").exists(), "the app did not run");
    let (_, stderr) = text(&out);
    for needle in [
        "is 2m 5s, more than the 2m Fargate allows for a container's stopTimeout: the task metadata says this task runs on EC2, where the task definition's stopTimeout (or, when it sets none, the ECS container agent's ECS_CONTAINER_STOP_TIMEOUT) is the limit",
        // The over-30 s warning, asking for all the stop needs (no cap off Fargate).
        r#"set the container's "stopTimeout": 130 in the task definition, or ECS sends SIGKILL"#,
    ] {
        assert!(stderr.contains(needle), "no {needle:?} in: {stderr}");
    }
    assert!(!stderr.contains("is not valid"), "{stderr}");
    let asked = metadata.asked.lock().unwrap().clone();
    assert_eq!(
        asked
            .iter()
            .filter(|p| *p == "/v4/6a1f0c2f-2531612879/task")
            .count(),
        1,
        "the task document is read once: {asked:?}"
    );
}

#[test]
fn off_ecs_the_same_stop_delay_starts_and_warns_that_the_launch_type_is_unknown() {
    let scratch = scratch();
    let out = run(over_fargates_limit(&scratch, None));
    assert_code(&out, 0);
    assert!(scratch.join("env.txt").exists(), "the app did not run");
    let (_, stderr) = text(&out);
    for needle in [
        "the launch type is unknown (ECS_CONTAINER_METADATA_URI_V4 is not set: not on ECS), so the start goes on; on Fargate these settings are refused (exit 64)",
        r#"set the container's "stopTimeout": 130 in the task definition (on Fargate, where 120 is its maximum"#,
    ] {
        assert!(stderr.contains(needle), "no {needle:?} in: {stderr}");
    }
}

/// The log buffers against the task's memory: 64 MiB shipped and 64 MiB copied to stdout
/// may take 128 MiB of a 256 MiB task, and a task over its limit is stopped whole, the
/// app with it. Named a second after the start (the app waits for it, polling the
/// agent's stderr), with what fits; 512 MiB, the default's own task size, says nothing.
#[tokio::test(flavor = "multi_thread")]
async fn log_buffers_too_large_for_the_tasks_memory_are_named() {
    let group = testkit::unique_name("/deckhand/drain/headroom");
    for (memory_mib, warned) in [(256, true), (512, false)] {
        let (_metadata, uri) = task_metadata_of("FARGATE", memory_mib).await;
        let scratch = scratch();
        let stderr = scratch.join("agent-stderr");
        // The app ends once the warning is there; without it, after 3 s (the check
        // runs after 1 s).
        let app = format!(
            "i=0; until grep -q 'DECKHAND_LOG_BUFFER=' '{0}' || [ $i -ge 60 ]; do \
             sleep 0.05; i=$((i+1)); done",
            stderr.display()
        );
        let mut cmd = testkit::clean_command("sh");
        cmd.envs(testkit::aws_env())
            .env("ECS_CONTAINER_METADATA_URI_V4", &uri)
            .env("CLOUDWATCH_LOG_GROUP", &group)
            .env("DECKHAND_LOG_BUFFER", "64MiB")
            .env("DECKHAND_LOG_STDOUT", "json")
            .args(["-c", "exec \"$0\" -- sh -c \"$1\" 2>\"$2\"", AGENT, &app])
            .arg(&stderr);
        let out = run_async(cmd).await;
        assert_code(&out, 0);
        let said = std::fs::read_to_string(&stderr).unwrap_or_default();
        let warning = "DECKHAND_LOG_BUFFER=64 MiB may take more than a quarter of the memory";
        assert_eq!(
            said.contains(warning),
            warned,
            "{memory_mib} MiB: {said:.3000}"
        );
        if warned {
            assert!(
                said.contains(
                    "holds up to 128 MiB: as much of events waiting to be shipped as for \
                     the stdout copy, in 256 MiB (the task's memory limit)"
                ) && said.contains("Set DECKHAND_LOG_BUFFER to at most 32MiB"),
                "{said:.3000}"
            );
        }
    }
}
