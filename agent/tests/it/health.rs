//! `/health` in process while the agent starts and while it ships logs: liveness from
//! the moment the secrets are loaded, readiness `starting` (with its phase) through a
//! slow migration on start, the schema version once the app runs, and the log delivery
//! (behind, dropping: degraded, never unhealthy).

use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

/// Longest the tests wait for a state they poll for; generous, it is not a measurement.
const DEADLINE: Duration = Duration::from_secs(30);

/// What one look at both endpoints saw.
#[derive(Debug)]
struct Look {
    live: Option<u16>,
    ready: Option<(u16, Value)>,
    app_started: bool,
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_migration_on_start_is_live_and_starting_then_ready() {
    let db = testkit::TestDb::create("agent_health_migrating").await;
    // V1 waits at a gate the test opens once it has seen `/health` say "migrating" (a
    // row in `gate`; each statement of the loop reads it afresh), so the look lands
    // inside the migration however slowly the machine runs; it gives up after 60 s.
    let gate = db.client().await;
    gate.batch_execute("CREATE TABLE gate (opened boolean)")
        .await
        .expect("create the gate");
    let scratch = scratch();
    scratch.write(
        "migrations/V1__slow.sql",
        "DO $$\n\
         DECLARE give_up timestamptz := clock_timestamp() + interval '60 seconds';\n\
         BEGIN\n\
           WHILE NOT EXISTS (SELECT 1 FROM gate) AND clock_timestamp() < give_up LOOP\n\
             PERFORM pg_sleep(0.02);\n\
           END LOOP;\n\
         END $$;\n",
    );
    scratch.write("migrations/V2__table.sql", "CREATE TABLE t (id int);\n");
    let addr = testkit::net::closed_port();
    let mut cmd = bare_agent();
    cmd.env("DATABASE_URL", &db.url)
        .env("DECKHAND_MIGRATE_ON_START", "true")
        .env("MIGRATIONS_DIR", scratch.join("migrations"))
        .env("DECKHAND_HEALTH_ADDR", addr.to_string());
    shell_app(
        &mut cmd,
        &scratch,
        r#"trap 'exit 0' TERM; touch "$DIR/started"; while :; do sleep 0.05; done"#,
    );
    let running = Running::start(cmd);
    let live_url = format!("http://{addr}/health/live");
    let ready_url = format!("http://{addr}/health");

    let looks: Mutex<Vec<Look>> = Mutex::new(Vec::new());
    let ready = testkit::wait_until_async(DEADLINE, || {
        let (live_url, ready_url) = (live_url.clone(), ready_url.clone());
        let started = scratch.join("started");
        let (looks, gate) = (&looks, &gate);
        async move {
            // The app's marker first: an answer after it is from an app that runs.
            let app_started = started.exists();
            // Readiness first: the server may start listening between two requests, and
            // a liveness answer is only asked of a server that already answered.
            let ready = get_json(ready_url).await;
            let live = get_json(live_url).await.map(|(status, _)| status);
            let done = app_started && matches!(ready, Some((200, _)));
            if matches!(&ready, Some((_, body)) if body["phase"] == "migrating") {
                gate.batch_execute("INSERT INTO gate VALUES (true)")
                    .await
                    .expect("open the gate");
            }
            looks.lock().unwrap().push(Look {
                live,
                ready,
                app_started,
            });
            done
        }
    })
    .await;
    let looks = looks.into_inner().unwrap();
    assert!(ready, "/health never answered 200: {looks:?}");

    let migrating: Vec<&Look> = looks
        .iter()
        .filter(|l| matches!(&l.ready, Some((_, body)) if body["phase"] == "migrating"))
        .collect();
    assert!(
        !migrating.is_empty(),
        "/health never said it was migrating: {looks:?}"
    );
    for look in &migrating {
        assert!(
            !look.app_started,
            "the app ran during the migrations: {look:?}"
        );
        assert_eq!(
            look.live,
            Some(200),
            "liveness during the migration: {look:?}"
        );
        let (status, body) = look.ready.as_ref().unwrap();
        assert_eq!(*status, 503, "{body}");
        assert_eq!(body["status"], "starting", "{body}");
        assert_eq!(body["checks"], serde_json::json!({}), "{body}");
    }
    // Every answer was 503 `starting` until the first 200, which came after the
    // migrations (the ALB sends nothing before); none went back.
    let mut ready_seen = false;
    for look in &looks {
        match &look.ready {
            Some((200, body)) => {
                assert_eq!(body["checks"]["migrations"]["current"], 2, "{body}");
                ready_seen = true;
            }
            Some((status, body)) => {
                assert!(!ready_seen, "/health went back to {status}: {body}");
                assert_eq!(*status, 503, "{body}");
                let phase = body["phase"].as_str().unwrap_or("");
                assert!(["migrating", "starting-app"].contains(&phase), "{body}");
            }
            None => assert!(!ready_seen, "/health stopped answering: {looks:?}"),
        }
    }

    // Once the app runs: the checks, the schema version among them (MIGRATIONS_DIR).
    let (status, body) = get_json(ready_url.clone()).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.get("phase").is_none(), "{body}");
    assert_eq!(body["checks"]["database"]["status"], "healthy", "{body}");
    assert_eq!(
        body["checks"]["migrations"],
        serde_json::json!({"status": "healthy", "current": 2, "latest": 2, "pending": 0}),
        "{body}"
    );
    assert!(
        body["checks"].get("logs").is_none(),
        "no log group, no log check: {body}"
    );
    running.signal("TERM");
    assert_code(&running.wait_within(LOG_RUN_LIMIT), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn log_delivery_stuck_is_degraded_never_unhealthy() {
    let scratch = scratch();
    let addr = testkit::net::closed_port();
    // CloudWatch Logs where nothing listens: nothing is ever delivered.
    let unreachable = testkit::net::closed_port();
    let mut cmd = agent();
    cmd.env(
        "CLOUDWATCH_LOG_GROUP",
        testkit::unique_name("/deckhand/health"),
    )
    .env("CLOUDWATCH_LOG_STREAM", "app")
    .env("AWS_ENDPOINT_URL", format!("http://{unreachable}"))
    .env("DECKHAND_LOG_FLUSH", "200ms")
    .env("DECKHAND_LOG_BUFFER", "1MiB")
    .env("DECKHAND_STOP_TIMEOUT", "2s")
    .env("DECKHAND_HEALTH_ADDR", addr.to_string())
    .env("HEALTH_LOGS_MAX_LAG", "2s");
    // About 3 MB at once (three times the buffer: drops), then a line every 100 ms.
    shell_app(
        &mut cmd,
        &scratch,
        r#"trap 'exit 0' TERM
yes 'a line of an app that logs a lot, padded to about one hundred bytes ..........' | head -n 30000
touch "$DIR/started"
while :; do echo tick; sleep 0.1; done"#,
    );
    let running = Running::start(cmd);
    let url = format!("http://{addr}/health");

    let answers: Mutex<Vec<(u16, Value)>> = Mutex::new(Vec::new());
    let degraded = testkit::wait_until_async(DEADLINE, || {
        let url = url.clone();
        let answers = &answers;
        async move {
            let Some((status, body)) = get_json(url).await else {
                return false;
            };
            let logs = body["checks"]["logs"].clone();
            answers.lock().unwrap().push((status, body));
            logs["status"] == "degraded"
                && logs["lagSeconds"].as_u64().is_some_and(|s| s >= 2)
                && logs["dropped"].as_u64().is_some_and(|d| d > 0)
        }
    })
    .await;
    let answers = answers.into_inner().unwrap();
    let last = answers.last().map(|(_, body)| body.to_string());
    assert!(degraded, "no lag and drops in /health: {last:?}");
    for (status, body) in answers.iter().filter(|(_, b)| b["status"] != "starting") {
        assert_eq!(*status, 200, "log delivery made /health fail: {body}");
        let logs = &body["checks"]["logs"];
        assert_ne!(logs["status"], "unhealthy", "{body}");
        assert_eq!(logs["shipped"], 0, "{body}");
        assert!(logs["rejected"].is_u64(), "{body}");
    }
    assert_eq!(answers.last().unwrap().1["status"], "degraded");
    running.signal("TERM");
    let out = running.wait_within(LOG_RUN_LIMIT);
    assert_code(&out, 0);
}
