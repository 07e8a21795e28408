//! The agent's start beside its secrets: options and their documentation, migrations on
//! start (fifty agents at once among them), and `/health` served in process.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

const EXAMPLE_MIGRATIONS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/migrations");

// ---------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_option_is_a_usage_error_in_the_house_format() {
    let mut cmd = agent();
    cmd.env("DECKHAND_STOP_TIMEOUT", "soon");
    run_app(cmd)
        .await
        .assert_refused(64, &["DECKHAND_STOP_TIMEOUT=\"soon\" is not valid:"], &[]);
    let out = run_async(agent()).await;
    assert_code(&out, 64);
}

#[test]
fn the_help_names_every_variable() {
    assert_help_names(&[
        "DECKHAND_ENV_SECRETS",
        "DECKHAND_DATABASE_SECRET",
        "DECKHAND_DATABASE_URL_VAR",
        "DECKHAND_DATABASE_SSLMODE",
        "DECKHAND_REQUIRED_ENV",
        "DECKHAND_SECRETS_TIMEOUT",
        "DECKHAND_REFRESH_INTERVAL",
        "DECKHAND_ON_ROTATE",
        "DECKHAND_SIGNAL_GROUP",
        "DECKHAND_STOP_SIGNAL",
        "DECKHAND_STOP_TIMEOUT",
    ]);
}

/// The README's configuration table lists every flag with its variable and default.
#[test]
fn the_readme_documents_every_option() {
    use clap::CommandFactory;
    testkit::assert_readme_documents(agent::config::Args::command(), "## `agent`");
}

// ---------------------------------------------------------------------------------
// Migrations on start
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn migrations_run_on_start_with_the_database_url_from_a_secret() {
    let db = testkit::TestDb::create("agent_migrate").await;
    let (secret, _) = create_secret(
        &sm(&testkit::service_var("AWS_REGION")).await,
        "logs",
        &db.url,
    )
    .await;
    let scratch = scratch();
    let mut cmd = agent();
    cmd.env("DATABASE_URL", format!("secretsmanager:{secret}"))
        .env("DECKHAND_MIGRATE_ON_START", "true")
        .env("MIGRATIONS_DIR", EXAMPLE_MIGRATIONS)
        .env("OUT", scratch.join("ran"))
        .args(["--", "sh", "-c", "touch \"$OUT\""]);
    let out = run_within(cmd, LOG_RUN_LIMIT);
    assert_code(&out, 0);
    assert!(scratch.join("ran").exists());
    assert_eq!(db.applied_versions().await, [1, 2, 3]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("migrations done: 3 applied"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_migration_on_start_keeps_the_app_from_starting() {
    let db = testkit::TestDb::create("agent_migrate_fail").await;
    let scratch = scratch();
    scratch.write("migrations/V1__ok.sql", "CREATE TABLE t (id int);");
    scratch.write(
        "migrations/V2__broken.sql",
        "CREATE TABLE u (id int);\nSELECT no_such_function();",
    );
    let mut cmd = bare_agent();
    cmd.env("DATABASE_URL", &db.url)
        .env("DECKHAND_MIGRATE_ON_START", "true")
        .env("MIGRATIONS_DIR", scratch.join("migrations"))
        .env("OUT", scratch.join("ran"))
        .args(["--", "sh", "-c", "touch \"$OUT\""]);
    let out = run_within(cmd, LOG_RUN_LIMIT);
    assert_code(&out, 1);
    assert!(!scratch.join("ran").exists(), "the app ran");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("V2__broken"),
        "the failed migration is named: {stderr}"
    );
    let client = db.client().await;
    let u: Option<String> = client
        .query_one("SELECT to_regclass('u')::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(u, None, "the failed migration was rolled back");
}

/// Children that are killed and reaped if a test ends before they exit.
struct Fleet(Vec<Child>);

impl Drop for Fleet {
    fn drop(&mut self) {
        for child in &mut self.0 {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// 50 agents with `DECKHAND_MIGRATE_ON_START` against one empty database, all started
/// at once: one takes migrate's advisory lock and applies the five migrations (one of
/// them takes a second); the rest wait for it (polled every 200–400 ms, for up to
/// `MIGRATE_LOCK_TIMEOUT`) and find nothing to do, and every app starts.
///
/// Spawning 50 processes one after the other takes seconds on a loaded machine, so
/// each agent is spawned behind a gate: a shell that waits for its stdin to close and
/// then `exec`s the agent (same pid). Closing the 50 stdin pipes starts them together.
#[tokio::test(flavor = "multi_thread")]
async fn fifty_agents_starting_at_once_with_migrations_on_start_apply_each_migration_once() {
    const AGENTS: usize = 50;
    /// Budget for the fleet; the lock timeout is inside it, so a runner that gives up
    /// says so (exit 3) before the test would.
    const LIMIT: Duration = Duration::from_secs(55);
    let _alone = TIMING.write().await;
    let db = testkit::TestDb::create("agent_fleet").await;
    let scratch = scratch();
    let dir = scratch.join("migrations");
    let migrations = [
        (
            "V1__effects.sql",
            "CREATE TABLE effects (version int NOT NULL, by_pid int NOT NULL DEFAULT pg_backend_pid());\n\
             INSERT INTO effects (version) VALUES (1);",
        ),
        ("V2__second.sql", "INSERT INTO effects (version) VALUES (2);"),
        (
            "V3__slow.sql",
            "SELECT pg_sleep(1);\nINSERT INTO effects (version) VALUES (3);",
        ),
        ("V4__fourth.sql", "INSERT INTO effects (version) VALUES (4);"),
        ("V5__fifth.sql", "INSERT INTO effects (version) VALUES (5);"),
    ];
    for (file, sql) in migrations {
        scratch.write(&format!("migrations/{file}"), sql);
    }
    let ran = scratch.join("ran");

    let commands: Vec<Command> = (0..AGENTS)
        .map(|i| {
            let mut cmd = testkit::clean_command("sh");
            cmd.args(["-c", r#"read -r _; exec "$0" "$@""#])
                .arg(AGENT)
                .args(["--", "sh", "-c", r#"echo "$N" >> "$OUT""#])
                .env("DATABASE_URL", &db.url)
                .env("DECKHAND_MIGRATE_ON_START", "true")
                .env("MIGRATIONS_DIR", &dir)
                .env("MIGRATE_LOCK_TIMEOUT", "45s")
                // 50 connections at once on 2 cores: keep retrying for a while rather
                // than a number of times.
                .env("MIGRATE_WAIT", "30s")
                .env("OUT", &ran)
                .env("N", i.to_string())
                .stdin(Stdio::piped())
                .stdout(std::fs::File::create(scratch.join(format!("{i}.out"))).unwrap())
                .stderr(std::fs::File::create(scratch.join(format!("{i}.err"))).unwrap());
            cmd
        })
        .collect();
    let output = |i: usize| {
        let read = |ext: &str| {
            std::fs::read_to_string(scratch.join(format!("{i}.{ext}"))).unwrap_or_default()
        };
        (read("out"), read("err"))
    };

    let (spawning, exits, codes) = tokio::task::spawn_blocking(move || {
        let first = Instant::now();
        let mut fleet = Fleet(Vec::with_capacity(AGENTS));
        for mut cmd in commands {
            fleet.0.push(cmd.spawn().expect("start an agent"));
        }
        let spawning = first.elapsed();
        let gates: Vec<_> = fleet.0.iter_mut().map(|c| c.stdin.take()).collect();
        let opened = Instant::now();
        drop(gates);
        let mut exits: Vec<Option<(Duration, Option<i32>)>> = vec![None; AGENTS];
        let all_exited = testkit::wait_until(LIMIT, || {
            for (child, exit) in fleet.0.iter_mut().zip(exits.iter_mut()) {
                if exit.is_none() {
                    if let Some(status) = child.try_wait().unwrap() {
                        *exit = Some((opened.elapsed(), status.code()));
                    }
                }
            }
            exits.iter().all(Option::is_some)
        });
        let stuck: Vec<usize> = (0..AGENTS).filter(|&i| exits[i].is_none()).collect();
        assert!(all_exited, "agents {stuck:?} did not exit within {LIMIT:?}");
        let exits: Vec<(Duration, Option<i32>)> = exits.into_iter().map(Option::unwrap).collect();
        (
            spawning,
            exits.iter().map(|e| e.0).collect::<Vec<_>>(),
            exits.iter().map(|e| e.1).collect::<Vec<_>>(),
        )
    })
    .await
    .unwrap();

    for (i, code) in codes.iter().enumerate() {
        let (stdout, stderr) = output(i);
        assert_eq!(
            *code,
            Some(0),
            "agent {i} exited {code:?}\nstdout: {stdout}\nstderr: {stderr}"
        );
    }

    let client = db.client().await;
    let counts = |sql: &'static str| {
        let client = &client;
        async move {
            client
                .query(sql, &[])
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get::<_, i32>(0), r.get::<_, i64>(1)))
                .collect::<Vec<_>>()
        }
    };
    let once: Vec<(i32, i64)> = (1..=5).map(|v| (v, 1)).collect();
    assert_eq!(
        counts("SELECT version, count(*) FROM refinery_schema_history GROUP BY version ORDER BY version").await,
        once,
        "each version is in the history once"
    );
    assert_eq!(
        counts("SELECT version, count(*) FROM effects GROUP BY version ORDER BY version").await,
        once,
        "each migration's effect happened once"
    );
    let sessions: i64 = client
        .query_one("SELECT count(DISTINCT by_pid) FROM effects", &[])
        .await
        .unwrap()
        .get(0);

    let mut apps: Vec<usize> = std::fs::read_to_string(&ran)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    apps.sort_unstable();
    assert_eq!(
        apps,
        (0..AGENTS).collect::<Vec<_>>(),
        "every agent's app ran once"
    );
    // The agents' own reports agree: five migrations applied in all.
    let applied: Vec<usize> = (0..AGENTS)
        .map(|i| {
            let stderr = output(i).1;
            let (_, rest) = stderr
                .split_once("migrations done: ")
                .unwrap_or_else(|| panic!("agent {i} did not report its migrations: {stderr}"));
            rest.split(' ').next().unwrap().parse().unwrap()
        })
        .collect();
    assert_eq!(
        applied.iter().sum::<usize>(),
        5,
        "the agents report 5 migrations applied in all: {applied:?}"
    );

    let mut sorted = exits.clone();
    sorted.sort_unstable();
    let slowest = (0..AGENTS).max_by_key(|&i| exits[i]).unwrap();
    eprintln!(
        "figure: {AGENTS} agents with DECKHAND_MIGRATE_ON_START (5 migrations, one of 1 s), \
         started together (spawning them took {spawning:.2?}): all exit 0, each migration \
         applied once (by {} agent, {sessions} session), {} app runs; start to last exit \
         {:.2?} (the slowest, #{slowest}), fastest {:.2?}, median {:.2?}",
        applied.iter().filter(|&&n| n > 0).count(),
        apps.len(),
        sorted[AGENTS - 1],
        sorted[0],
        sorted[AGENTS / 2],
    );
}

// ---------------------------------------------------------------------------------
// /health in process
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn health_is_served_in_process_and_drains_on_sigterm() {
    let db = testkit::TestDb::create("agent_health").await;
    let addr = testkit::net::closed_port();
    let scratch = scratch();
    let mut cmd = bare_agent();
    cmd.env("DATABASE_URL", &db.url)
        .env("DECKHAND_HEALTH_ADDR", addr.to_string());
    shell_app(
        &mut cmd,
        &scratch,
        // The app takes 5 s to stop: /health answers 503 that long, and a loaded
        // machine's polls do not miss it.
        r#"trap 'sleep 5; exit 0' TERM; touch "$DIR/ready"; while :; do sleep 0.05; done"#,
    );
    let running = Running::start(cmd);
    let url = format!("http://{addr}/health");
    let get = get_json;
    assert!(
        testkit::wait_until_async(Duration::from_secs(10), || async {
            scratch.join("ready").exists() && get(url.clone()).await.is_some()
        })
        .await
    );
    let (status, body) = get(url.clone()).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["database"]["status"], "healthy", "{body}");
    let password = db
        .config
        .tokio_config()
        .get_password()
        .map(|p| String::from_utf8_lossy(p).into_owned());
    if let Some(p) = password.filter(|p| p.len() >= 4) {
        testkit::leaks::assert_absent(&[("/health", &body.to_string())], [p]);
    }
    running.signal("TERM");
    assert!(
        testkit::wait_until_async(Duration::from_secs(5), || async {
            matches!(get(url.clone()).await, Some((503, _)))
        })
        .await,
        "/health does not report draining after SIGTERM"
    );
    assert_code(&running.wait_within(LOG_RUN_LIMIT), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_taken_health_port_stops_the_start() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let scratch = scratch();
    let mut cmd = bare_agent();
    cmd.env(
        "DECKHAND_HEALTH_ADDR",
        taken.local_addr().unwrap().to_string(),
    )
    .env("OUT", scratch.join("ran"))
    .args(["--", "sh", "-c", "touch \"$OUT\""]);
    let out = run_within(cmd, LOG_RUN_LIMIT);
    assert_code(&out, 78);
    assert!(String::from_utf8_lossy(&out.stderr).contains("DECKHAND_HEALTH_ADDR"));
    assert!(!scratch.join("ran").exists(), "the app ran");
}
