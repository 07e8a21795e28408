//! `migrate` against the real PostgreSQL the test services start. Every test gets its
//! own database and migration folder, so they run in parallel.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use testkit::net::{ProxyMode, TcpProxy};
use testkit::temp::TempDir;
use testkit::{clean_command, wait_until, wait_until_async, TestDb};

/// A migration folder of its own holding `files` (name, SQL).
fn migrations(files: &[(&str, &str)]) -> TempDir {
    TempDir::with_files("migrations", files)
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn password_of(url: &str) -> String {
    let userinfo = url.split("://").nth(1).unwrap().split('@').next().unwrap();
    userinfo.split(':').nth(1).unwrap_or("").to_owned()
}

fn migrate(url: &str, dir: &TempDir, args: &[&str]) -> Command {
    let mut cmd = clean_command(env!("CARGO_BIN_EXE_migrate"));
    cmd.args(args)
        .env("DATABASE_URL", url)
        .env("MIGRATIONS_DIR", dir.path())
        .env("HOSTNAME", "test-runner");
    cmd
}

/// Runs to completion and checks that the password never appears in any output.
fn run(url: &str, dir: &TempDir, args: &[&str]) -> Out {
    let out = migrate(url, dir, args).output().expect("run migrate");
    let out = Out {
        code: out.status.code().expect("exit code"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    without_password(url, out)
}

/// As [`run`], with `vars` in the environment too.
fn run_with(url: &str, dir: &TempDir, args: &[&str], vars: &[(&str, &str)]) -> Out {
    let out = migrate(url, dir, args)
        .envs(vars.iter().copied())
        .output()
        .expect("run migrate");
    let out = Out {
        code: out.status.code().expect("exit code"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    without_password(url, out)
}

fn without_password(url: &str, out: Out) -> Out {
    let password = password_of(url);
    if password.len() >= 6 {
        testkit::leaks::assert_absent(
            &[("stdout", &out.stdout), ("stderr", &out.stderr)],
            [&password],
        );
    }
    out
}

async fn history(db: &TestDb) -> Vec<(i32, String)> {
    db.client()
        .await
        .query(
            "SELECT version, name FROM refinery_schema_history ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// Checks that stderr holds each of `parts`, and shows all of it when one is missing.
fn assert_says(out: &Out, parts: &[&str]) {
    for part in parts {
        assert!(out.stderr.contains(part), "{part:?} in {}", out.stderr);
    }
}

async fn table_exists(db: &TestDb, table: &str) -> bool {
    db.client()
        .await
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn applies_in_numeric_order_and_rerun_is_a_no_op() {
    let db = TestDb::create("apply").await;
    let dir = migrations(&[
        ("V1__create_items.sql", "CREATE TABLE items(id int PRIMARY KEY);"),
        ("V2__add_name.sql", "ALTER TABLE items ADD name text;"),
        // V10 must come after V2 although "V10" < "V2" as text.
        ("V10__name_not_null.sql", "UPDATE items SET name = '' WHERE name IS NULL;\nALTER TABLE items ALTER name SET NOT NULL;"),
    ]);
    let out = run(&db.url, &dir, &["up"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for label in ["V1__create_items", "V2__add_name", "V10__name_not_null"] {
        assert!(
            out.stderr.contains(&format!("applying {label} ... ok (")),
            "{}",
            out.stderr
        );
    }
    let v2 = out.stderr.find("V2__add_name").unwrap();
    let v10 = out.stderr.find("V10__name_not_null").unwrap();
    assert!(v2 < v10, "V2 must be applied before V10: {}", out.stderr);
    assert_eq!(
        history(&db).await,
        [
            (1, "create_items".into()),
            (2, "add_name".into()),
            (10, "name_not_null".into())
        ]
    );

    let again = run(&db.url, &dir, &["up"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again.stderr.contains("nothing to apply"),
        "{}",
        again.stderr
    );
    assert!(!again.stderr.contains("applying"), "{}", again.stderr);
    assert_eq!(history(&db).await.len(), 3);
}

#[tokio::test]
async fn history_is_compatible_with_refinery() {
    let db = TestDb::create("refinery").await;
    let sql = "CREATE TABLE t(id int);";
    let dir = migrations(&[("V1__init.sql", sql)]);
    assert_eq!(run(&db.url, &dir, &["up"]).code, 0);
    let row = db
        .client()
        .await
        .query_one(
            "SELECT checksum, applied_on FROM refinery_schema_history",
            &[],
        )
        .await
        .unwrap();
    let checksum: String = row.get(0);
    let expected = refinery_core::Migration::unapplied("V1__init", sql)
        .unwrap()
        .checksum();
    assert_eq!(checksum, expected.to_string());
    let applied_on: String = row.get(1);
    assert!(
        applied_on.len() >= 20 && applied_on.ends_with('Z') && applied_on.contains('T'),
        "applied_on must be RFC 3339 as refinery writes it: {applied_on}"
    );
}

#[tokio::test]
async fn failing_migration_is_rolled_back_and_named() {
    let db = TestDb::create("failing").await;
    let dir = migrations(&[
        ("V1__ok.sql", "CREATE TABLE first(id int);"),
        ("V2__broken.sql", "CREATE TABLE second(id int);\nINSERT INTO second VALUES (1);\nSELECT * FROM no_such_table;\n"),
        ("V3__never.sql", "CREATE TABLE third(id int);"),
    ]);
    let out = run(&db.url, &dir, &["up"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let err = out
        .stderr
        .lines()
        .find(|l| l.contains("error:"))
        .unwrap_or_default();
    assert!(err.contains("V2__broken"), "{err}");
    assert!(err.contains("V2__broken.sql"), "the file is named: {err}");
    assert!(err.contains("SQLSTATE 42P01"), "{err}");
    assert!(err.contains("line 3"), "{err}");
    assert!(err.contains("no_such_table"), "{err}");
    assert!(err.contains("rolled back"), "{err}");
    assert!(
        err.contains("applied earlier in this run and kept: V1__ok"),
        "{err}"
    );
    assert_eq!(history(&db).await, [(1, "ok".into())]);
    assert!(table_exists(&db, "first").await);
    assert!(
        !table_exists(&db, "second").await,
        "V2's first statement must be rolled back"
    );
    assert!(!table_exists(&db, "third").await);
}

#[tokio::test]
async fn modified_migration_is_refused() {
    let db = TestDb::create("modified").await;
    let dir = migrations(&[("V1__init.sql", "CREATE TABLE t(id int);")]);
    assert_eq!(run(&db.url, &dir, &["up"]).code, 0);
    dir.write("V1__init.sql", "CREATE TABLE t(id bigint);");
    dir.write("V2__next.sql", "CREATE TABLE u(id int);");
    let out = run(&db.url, &dir, &["up"]);
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&dir.join("V1__init.sql").display().to_string()),
        "{}",
        out.stderr
    );
    assert!(!table_exists(&db, "u").await, "nothing is applied on drift");

    let status = run(&db.url, &dir, &["status", "--json"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    let rows: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(rows[0]["state"], "modified");
    assert_eq!(rows[1]["state"], "pending");
    assert_eq!(run(&db.url, &dir, &["status", "--exit-code"]).code, 4);
}

#[tokio::test]
async fn missing_migration_is_refused_unless_allowed() {
    let db = TestDb::create("missing").await;
    let dir = migrations(&[
        ("V1__a.sql", "CREATE TABLE a(id int);"),
        ("V2__b.sql", "CREATE TABLE b(id int);"),
    ]);
    assert_eq!(run(&db.url, &dir, &["up"]).code, 0);
    std::fs::remove_file(dir.join("V2__b.sql")).unwrap();
    dir.write("V3__c.sql", "CREATE TABLE c(id int);");
    let out = run(&db.url, &dir, &["up"]);
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("V2__b is applied but its file is missing"),
        "{}",
        out.stderr
    );
    let status = run(&db.url, &dir, &["status"]);
    assert!(
        status
            .stdout
            .lines()
            .any(|l| l.contains(" b ") && l.ends_with("missing")),
        "{}",
        status.stdout
    );

    let allowed = run(&db.url, &dir, &["up", "--allow-missing"]);
    assert_eq!(allowed.code, 0, "{}", allowed.stderr);
    assert!(table_exists(&db, "c").await);
}

#[tokio::test]
async fn twenty_concurrent_runners_apply_each_migration_exactly_once() {
    let db = TestDb::create("concurrent").await;
    twenty_runners_apply_each_migration_once(&db, &db.url).await;
}

/// Starts twenty `migrate up` at once against `db` through `url` and checks that each
/// migration ran exactly once and that some runners waited for the lock.
async fn twenty_runners_apply_each_migration_once(db: &TestDb, url: &str) {
    let dir = migrations(&[
        ("V1__counter.sql", "CREATE TABLE counter(migration int);\nINSERT INTO counter VALUES (1);\nSELECT pg_sleep(1);"),
        ("V2__count.sql", "INSERT INTO counter VALUES (2);"),
        ("V3__count.sql", "INSERT INTO counter VALUES (3);"),
    ]);
    let children: Vec<Child> = (0..20)
        .map(|_| {
            migrate(url, &dir, &["up"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut waited = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        if stderr.contains("waiting for the migration lock") {
            waited += 1;
        }
    }
    assert!(waited > 0, "some runners must have waited for the lock");
    let counts: Vec<(i32, i64)> = db
        .client()
        .await
        .query(
            "SELECT migration, count(*) FROM counter GROUP BY migration ORDER BY migration",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(counts, [(1, 1), (2, 1), (3, 1)]);
}

/// The lock key `migrate` uses: "deck" and "migr" in ASCII.
const LOCK_KEY: (i32, i32) = (0x6465_636b, 0x6d69_6772);

/// Takes (`pg_advisory_lock`) or gives back (`pg_advisory_unlock`) the migration lock in
/// `client`'s session, as another runner would.
async fn as_another_runner(client: &tokio_postgres::Client, function: &str) {
    client
        .query_one(
            &format!("SELECT {function}($1, $2)"),
            &[&LOCK_KEY.0, &LOCK_KEY.1],
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn lock_holder_is_reported_and_lock_timeout_exits_3() {
    let db = TestDb::create("lockheld").await;
    let dir = migrations(&[("V1__a.sql", "CREATE TABLE a(id int);")]);
    let holder = db
        .config
        .clone()
        .with_default_application_name("the-other-runner")
        .connect()
        .await
        .unwrap();
    as_another_runner(&holder, "pg_advisory_lock").await;
    let pid: i32 = holder
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);

    let out = run(&db.url, &dir, &["up", "--lock-timeout", "1500ms"]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("waiting for the migration lock, held by"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains(&format!("pid {pid}")), "{}", out.stderr);
    assert!(
        out.stderr.contains("application_name=the-other-runner"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("client 127.0.0.1"), "{}", out.stderr);
    assert!(out.stderr.contains("connected since"), "{}", out.stderr);
    assert!(!table_exists(&db, "a").await);

    as_another_runner(&holder, "pg_advisory_unlock").await;
    assert_eq!(run(&db.url, &dir, &["up"]).code, 0);
}

/// `up` on a database that has every migration reads the history and stops: it does not
/// wait for the lock (another session holds it here) or open the lock check's second
/// connection. Anything else still goes through the lock: a pending file, an applied
/// file gone with `--allow-missing`, a missing table for the kept texts.
#[tokio::test]
async fn an_up_to_date_database_is_answered_without_the_lock() {
    let db = TestDb::create("uptodate").await;
    let dir = migrations(&[
        ("V1__a.sql", "CREATE TABLE a(id int);"),
        ("V2__b.sql", "CREATE TABLE b(id int);"),
    ]);
    let out = run(&db.url, &dir, &["up", "--keep-text", "false"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let holder = db.config.connect().await.unwrap();
    as_another_runner(&holder, "pg_advisory_lock").await;

    let proxy = cluster_proxy(&db, ProxyMode::Forward);
    let url = through(&proxy, &db);
    let waits = ["up", "--lock-timeout", "300ms", "--keep-text", "false"];
    let out = run(&url, &dir, &waits);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_says(&out, &["nothing to apply: the database is at V2__b"]);
    assert!(!out.stderr.contains("waiting"), "{}", out.stderr);
    assert_eq!(proxy.accepted(), 1, "one connection, no lock check");

    // The kept texts' table is missing: `up` takes the lock to create it.
    let out = run(&url, &dir, &["up", "--lock-timeout", "300ms"]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(!table_exists(&db, "deckhand_migration_text").await);

    dir.write("V3__c.sql", "CREATE TABLE c(id int);");
    let out = run(&url, &dir, &waits);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert_says(&out, &["waiting for the migration lock, held by"]);
    assert!(!table_exists(&db, "c").await);

    std::fs::remove_file(dir.path().join("V3__c.sql")).unwrap();
    std::fs::remove_file(dir.path().join("V1__a.sql")).unwrap();
    let missing = [
        "up",
        "--lock-timeout",
        "300ms",
        "--keep-text",
        "false",
        "--allow-missing",
    ];
    let out = run(&url, &dir, &missing);
    assert_eq!(out.code, 3, "{}", out.stderr);

    as_another_runner(&holder, "pg_advisory_unlock").await;
    let out = run(&url, &dir, &missing);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stderr
            .matches("V1__a is applied but its file is missing")
            .count(),
        1,
        "warned once: {}",
        out.stderr
    );
    assert_says(&out, &["nothing to apply: the database is at V2__b"]);
}

/// A runner that waits for the lock while another applies what it would have applied
/// is done when that one commits: it reads the history after each pause and stops
/// waiting, without a turn of its own with the lock. The first runner's migration waits
/// on a table the test keeps locked until the second says it is waiting, so the order
/// holds however slow the machine.
#[tokio::test]
async fn a_runner_waiting_for_the_lock_stops_when_the_holder_has_applied_everything() {
    let db = TestDb::create("waitdone").await;
    let gatekeeper = db.client().await;
    gatekeeper
        .batch_execute("CREATE TABLE gate(id int)")
        .await
        .unwrap();
    gatekeeper
        .batch_execute("BEGIN; LOCK TABLE gate")
        .await
        .unwrap();
    let dir = migrations(&[(
        "V1__gated.sql",
        "LOCK TABLE gate IN ACCESS SHARE MODE; CREATE TABLE a(id int);",
    )]);
    let first = Background::start(&db.url, &dir, &["up", "--ddl-lock-timeout", "60s"], &[]);
    assert!(
        wait_until_async(Duration::from_secs(30), || async {
            !lock_holders(&db).await.is_empty()
        })
        .await,
        "the first runner takes the lock: {}",
        first.stderr.lock().unwrap()
    );
    let proxy = cluster_proxy(&db, ProxyMode::Forward);
    let args = ["up", "--lock-timeout", "60s"];
    let second = Background::start(&through(&proxy, &db), &dir, &args, &[]);
    assert!(
        second.wait_for_stderr(
            "waiting for the migration lock, held by",
            Duration::from_secs(30)
        ),
        "{}",
        second.stderr.lock().unwrap()
    );
    gatekeeper.batch_execute("COMMIT").await.unwrap();
    let first = first.finish(Duration::from_secs(60));
    assert_eq!(first.code, 0, "{}", first.stderr);
    let second = second.finish(Duration::from_secs(60));
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_says(&second, &["nothing to apply: the database is at V1__gated"]);
    assert!(
        !second.stderr.contains("acquired the migration lock"),
        "{}",
        second.stderr
    );
    assert_eq!(proxy.accepted(), 1, "no lock check's second connection");
    assert_eq!(db.applied_versions().await, [1]);
}

#[tokio::test]
async fn create_index_concurrently_runs_without_a_transaction() {
    let db = TestDb::create("concurrently").await;
    let dir = migrations(&[
        ("V1__table.sql", "CREATE TABLE events(id int, kind text, at timestamptz);"),
        (
            "V2__indexes.sql",
            "-- deckhand:no-transaction\n-- two statements: each must run on its own\nCREATE INDEX CONCURRENTLY events_kind ON events(kind);\nCREATE INDEX CONCURRENTLY events_at ON events(at);\n",
        ),
    ]);
    let out = run(&db.url, &dir, &["up"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let valid: i64 = db
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
             WHERE c.relname IN ('events_kind', 'events_at') AND i.indisvalid",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(valid, 2);
    assert_eq!(history(&db).await.len(), 2);
}

#[tokio::test]
async fn failing_no_transaction_migration_reports_what_stayed() {
    let db = TestDb::create("notxfail").await;
    let dir = migrations(&[(
        "V1__half.sql",
        "-- deckhand:no-transaction\nCREATE TABLE kept(id int);\n\nCREATE INDEX CONCURRENTLY kept_id ON nope(id);\n",
    )]);
    let out = run(&db.url, &dir, &["up"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("line 4"), "{}", out.stderr);
    assert!(
        out.stderr.contains("1 of its 2 statement(s) completed"),
        "{}",
        out.stderr
    );
    assert!(
        table_exists(&db, "kept").await,
        "no transaction: the first statement stays"
    );
    assert!(history(&db).await.is_empty());
}

/// Collects a child's stderr as it arrives, so a test can wait for a line; the thread
/// ends at the pipe's end.
fn capture_stderr(child: &mut Child) -> (Arc<Mutex<String>>, JoinHandle<()>) {
    let buf = Arc::new(Mutex::new(String::new()));
    let mut pipe = child.stderr.take().unwrap();
    let sink = buf.clone();
    let reader = std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut chunk) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
    });
    (buf, reader)
}

/// A database with table `busy` applied (V1) and a pending V2 that alters it.
async fn busy_table(prefix: &str) -> (TestDb, TempDir) {
    let db = TestDb::create(prefix).await;
    let dir = migrations(&[("V1__t.sql", "CREATE TABLE busy(id int);")]);
    assert_eq!(run(&db.url, &dir, &["up"]).code, 0);
    dir.write("V2__alter.sql", "ALTER TABLE busy ADD note text;");
    (db, dir)
}

#[tokio::test]
async fn lock_timeout_on_a_busy_table_is_retried() {
    let (db, dir) = busy_table("ddlretry").await;

    let mut blocker = db.client().await;
    let tx = blocker.transaction().await.unwrap();
    tx.batch_execute("LOCK TABLE busy IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();

    let mut child = migrate(
        &db.url,
        &dir,
        &["up", "--ddl-lock-timeout", "100ms", "--lock-retries", "8"],
    )
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let (stderr, _reader) = capture_stderr(&mut child);
    assert!(
        wait_until(Duration::from_secs(20), || stderr
            .lock()
            .unwrap()
            .contains("SQLSTATE 55P03")),
        "migrate must report the lock timeout and retry: {}",
        stderr.lock().unwrap()
    );
    tx.commit().await.unwrap();
    let status = child.wait().unwrap();
    let text = stderr.lock().unwrap().clone();
    assert!(status.success(), "{text}");
    assert!(text.contains("retrying in"), "{text}");
    assert!(text.contains("applying V2__alter ... ok"), "{text}");
}

#[tokio::test]
async fn lock_timeout_gives_up_after_the_retries() {
    let (db, dir) = busy_table("ddlgiveup").await;
    let mut blocker = db.client().await;
    let tx = blocker.transaction().await.unwrap();
    tx.batch_execute("LOCK TABLE busy IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let out = run(
        &db.url,
        &dir,
        &["up", "--ddl-lock-timeout", "50ms", "--lock-retries", "1"],
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("retry 1 of 1"), "{}", out.stderr);
    assert!(out.stderr.contains("V2__alter failed"), "{}", out.stderr);
    assert!(out.stderr.contains("SQLSTATE 55P03"), "{}", out.stderr);
    tx.rollback().await.unwrap();
}

#[tokio::test]
async fn down_reverts_and_up_reapplies() {
    let db = TestDb::create("down").await;
    let dir = migrations(&[
        ("V1__a.sql", "CREATE TABLE a(id int);"),
        ("V1__a.down.sql", "DROP TABLE a;"),
        ("V2__b.sql", "CREATE TABLE b(id int);"),
        ("V2__b.down.sql", "DROP TABLE b;"),
        ("V3__c.sql", "CREATE TABLE c(id int);"),
    ]);
    assert_eq!(run(&db.url, &dir, &["up"]).code, 0);

    let refused = run(&db.url, &dir, &["down", "--steps", "2"]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("no down file for V3__c.down.sql"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        history(&db).await.len(),
        3,
        "nothing may be reverted when a down file is missing"
    );

    dir.write("V3__c.down.sql", "DROP TABLE c;");
    let out = run(&db.url, &dir, &["down", "--steps", "2"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let c = out.stderr.find("reverting V3__c").unwrap();
    let b = out.stderr.find("reverting V2__b").unwrap();
    assert!(c < b, "newest first: {}", out.stderr);
    assert_eq!(history(&db).await, [(1, "a".into())]);
    assert!(!table_exists(&db, "b").await && !table_exists(&db, "c").await);

    assert_eq!(run(&db.url, &dir, &["up"]).code, 0);
    assert_eq!(history(&db).await.len(), 3);
    assert!(table_exists(&db, "c").await);
}

#[tokio::test]
async fn status_plan_and_exit_codes() {
    let db = TestDb::create("status").await;
    let dir = migrations(&[
        ("V1__a.sql", "CREATE TABLE a(id int);"),
        ("V2__b.sql", "-- adds b\nCREATE TABLE b(id int);"),
    ]);
    assert_eq!(run(&db.url, &dir, &["up", "--target", "1"]).code, 0);
    assert!(!table_exists(&db, "b").await, "--target stops at version 1");

    let status = run(&db.url, &dir, &["status"]);
    assert_eq!(status.code, 0);
    let lines: Vec<&str> = status.stdout.lines().collect();
    assert!(lines[0].starts_with("VERSION"), "{}", status.stdout);
    assert!(
        lines[1].ends_with("applied") && lines[2].ends_with("pending"),
        "{}",
        status.stdout
    );
    assert_eq!(run(&db.url, &dir, &["status", "--exit-code"]).code, 6);

    let plan = run(&db.url, &dir, &["plan"]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert!(plan.stdout.starts_with("V2__b ("), "{}", plan.stdout);
    assert!(
        plan.stdout
            .contains("    -- adds b\n    CREATE TABLE b(id int);"),
        "{}",
        plan.stdout
    );
    assert!(!table_exists(&db, "b").await, "plan applies nothing");

    assert_eq!(run(&db.url, &dir, &["up"]).code, 0);
    assert_eq!(run(&db.url, &dir, &["status", "--exit-code"]).code, 0);
}

#[tokio::test]
async fn json_log_format_for_cloudwatch() {
    let db = TestDb::create("json").await;
    let dir = migrations(&[("V1__a.sql", "CREATE TABLE a(id int);")]);
    let out = run(&db.url, &dir, &["--log-format", "json", "up"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let events: Vec<serde_json::Value> = out
        .stderr
        .lines()
        .map(|l| serde_json::from_str(l).expect(l))
        .collect();
    let applied = events
        .iter()
        .find(|e| e["migration"] == "V1__a")
        .expect("an event per migration");
    assert_eq!(applied["version"], 1);
    assert!(applied["duration_ms"].is_u64());
    assert_eq!(applied["level"], "INFO");
}

#[tokio::test]
async fn tls_verify_full_accepts_the_right_ca_and_refuses_a_wrong_one() {
    let db = TestDb::create("tls").await;
    let dir = migrations(&[("V1__a.sql", "CREATE TABLE a(id int);")]);
    let base = db.url.replace("sslmode=disable", "sslmode=verify-full");
    let ca = testkit::service_var("DECKHAND_TEST_PG_CA");
    let wrong = testkit::service_var("DECKHAND_TEST_PG_WRONG_CA");

    let refused = run(&format!("{base}&sslrootcert={wrong}"), &dir, &["up"]);
    assert_eq!(refused.code, 5, "{}", refused.stderr);
    assert!(refused.stderr.contains("certificate"), "{}", refused.stderr);
    assert!(!table_exists(&db, "a").await);

    let ok = run(&format!("{base}&sslrootcert={ca}"), &dir, &["up"]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert!(table_exists(&db, "a").await);

    // The CA as PGSSLROOTCERT, with the URL giving only the mode.
    let mut cmd = migrate(&base, &dir, &["status"]);
    cmd.env("PGSSLROOTCERT", &ca);
    assert!(cmd.output().unwrap().status.success());
}

#[tokio::test]
async fn wrong_password_is_a_clear_error_without_the_password() {
    let db = TestDb::create("badpw").await;
    let dir = migrations(&[("V1__a.sql", "SELECT 1;")]);
    let wrong = db.url.replacen(
        &format!(":{}@", password_of(&db.url)),
        ":Wr0ng-Passw0rd-Xyzzy@",
        1,
    );
    let out = run(&wrong, &dir, &["up"]);
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert!(
        out.stderr.contains("password authentication failed"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("after 1 attempt(s)"),
        "wrong credentials are not retried: {}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("Wr0ng-Passw0rd-Xyzzy"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn database_down_is_retried_then_exit_5() {
    let port = testkit::net::closed_port().port();
    let url = format!("postgres://app:secret-pass-123@127.0.0.1:{port}/app?sslmode=disable");
    let dir = migrations(&[("V1__a.sql", "SELECT 1;")]);
    let out = run(&url, &dir, &["up", "--connect-retries", "2"]);
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert!(
        out.stderr.contains("(attempt 1)") && out.stderr.contains("(attempt 2)"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("after 3 attempt(s)"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("postgres://app@127.0.0.1:{port}/app")),
        "{}",
        out.stderr
    );
}

#[test]
fn configuration_errors_exit_2() {
    let dir = migrations(&[]);
    let mut cmd = clean_command(env!("CARGO_BIN_EXE_migrate"));
    let out = cmd
        .arg("up")
        .env("MIGRATIONS_DIR", dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no database configured"));

    let out = migrate(
        "postgres://u:p@127.0.0.1/d",
        &dir,
        &["up", "--lock-timeout", "soon"],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("like 500ms"));

    // One boolean grammar: a word that is not one is refused, not read as yes; and
    // every bad value is reported in one run, each named as the user set it.
    let out = migrate(
        "postgres://u:p@127.0.0.1/d",
        &dir,
        &["up", "--lock-timeout", "soon"],
    )
    .env("MIGRATE_OUT_OF_ORDER", "maybe")
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(r#"MIGRATE_OUT_OF_ORDER="maybe" is not valid: must be true or false"#),
        "{stderr}"
    );
    assert!(
        stderr.contains(r#"--lock-timeout="soon" is not valid"#),
        "{stderr}"
    );
    let out = migrate("postgres://u:p@127.0.0.1/d", &dir, &["plan"])
        .env("MIGRATE_OUT_OF_ORDER", "yes")
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(2), "yes is true");

    let missing = Path::new("/nonexistent/deckhand-migrations");
    let out = clean_command(env!("CARGO_BIN_EXE_migrate"))
        .args(["up", "--dir"])
        .arg(missing)
        .env("DATABASE_URL", "postgres://u:p@127.0.0.1/d")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("MIGRATIONS_DIR=\"/nonexistent/deckhand-migrations\" is not valid"));
}

/// The files are read while the connection is made; what is wrong with them is still
/// said first, and at once: a server that takes the connection and never answers (a
/// 10-minute connect_timeout) does not hold the answer back.
#[test]
fn a_folder_error_is_said_without_waiting_on_the_database() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "postgres://u:p@{}/d?sslmode=disable&connect_timeout=600",
        silent.local_addr().unwrap()
    );
    let dir = migrations(&[("V1__a.sql", "select 1;"), ("V01__b.sql", "select 2;")]);
    for command in [
        &["up"][..],
        &["plan"],
        &["status"],
        &["down"],
        &["repair", "--all-modified"],
    ] {
        let out = Background::start(&url, &dir, command, &[]).finish(Duration::from_secs(60));
        assert_eq!(out.code, 2, "{command:?}: {}", out.stderr);
        assert_says(&out, &["version 1 is used twice"]);
        let said = &out.stderr;
        assert!(!said.contains("connect"), "{command:?}: {said}");
    }
}

#[test]
fn readme_documents_every_flag_with_its_env_var_and_default() {
    use clap::CommandFactory;
    testkit::assert_readme_documents(migrate::cli::Cli::command(), "## `migrate`");
}

/// refinery with its `int8-versions` feature creates `version int8`; reading it must work
/// (it used to panic on the i32 read), and writing to it too.
#[tokio::test]
async fn int8_history_table_is_read_and_written() {
    let db = TestDb::create("int8hist").await;
    let v1 = "CREATE TABLE a(id int);";
    let dir = migrations(&[("V1__a.sql", v1), ("V2__b.sql", "CREATE TABLE b(id int);")]);
    let checksum = refinery_core::Migration::unapplied("V1__a", v1)
        .unwrap()
        .checksum();
    db.client()
        .await
        .batch_execute(&format!(
            "CREATE TABLE refinery_schema_history(version int8 PRIMARY KEY, name varchar(255), \
             applied_on varchar(255), checksum varchar(255));
             {v1}
             INSERT INTO refinery_schema_history VALUES (1, 'a', '2026-11-23T10:00:00Z', '{checksum}');"
        ))
        .await
        .unwrap();

    let status = run(&db.url, &dir, &["status", "--exit-code"]);
    assert_eq!(status.code, 6, "V2 pending: {}", status.stderr);
    let out = run(&db.url, &dir, &["up"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("applying V2__b ... ok"),
        "{}",
        out.stderr
    );
    assert!(table_exists(&db, "b").await);
    assert_eq!(db.applied_versions().await, [1, 2]);
    assert_eq!(run(&db.url, &dir, &["status", "--exit-code"]).code, 0);

    // A version no file name can hold is refused by name, not a panic.
    db.client()
        .await
        .batch_execute("INSERT INTO refinery_schema_history VALUES (3000000000, 'big', '', '')")
        .await
        .unwrap();
    let out = run(&db.url, &dir, &["status"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("refinery_schema_history holds version 3000000000"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn history_version_of_another_type_is_refused_with_the_fix() {
    let db = TestDb::create("texthist").await;
    let dir = migrations(&[("V1__a.sql", "CREATE TABLE a(id int);")]);
    db.client()
        .await
        .batch_execute(
            "CREATE TABLE refinery_schema_history(version text PRIMARY KEY, name varchar(255), \
             applied_on varchar(255), checksum varchar(255));",
        )
        .await
        .unwrap();
    let out = run(&db.url, &dir, &["up"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    assert_says(
        &out,
        &[
            "refinery_schema_history.version is of type text",
            "ALTER TABLE refinery_schema_history ALTER COLUMN version TYPE int8 USING version::int8",
        ],
    );
    assert!(!table_exists(&db, "a").await);
}

/// `CREATE INDEX CONCURRENTLY` that times out waiting for another transaction leaves an
/// INVALID index; `IF NOT EXISTS` then skips it. The migration must not be recorded
/// while the index is INVALID, and the error must say which index and how to drop it.
#[tokio::test]
async fn invalid_index_left_by_a_lock_timeout_is_reported_and_not_recorded() {
    let db = TestDb::create("invalidix").await;
    let dir = migrations(&[("V1__t.sql", "CREATE TABLE busy(id int);")]);
    assert_eq!(run(&db.url, &dir, &["up"]).code, 0);
    dir.write(
        "V2__index.sql",
        "-- deckhand:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS busy_id ON busy(id);\n",
    );

    // An open writing transaction: CREATE INDEX CONCURRENTLY gets its own lock, creates
    // the (INVALID) index, then waits for this transaction and hits lock_timeout.
    let mut blocker = db.client().await;
    let tx = blocker.transaction().await.unwrap();
    tx.batch_execute("INSERT INTO busy VALUES (1)")
        .await
        .unwrap();

    let args = ["up", "--ddl-lock-timeout", "300ms", "--lock-retries", "2"];
    let first = run(&db.url, &dir, &args);
    assert_eq!(first.code, 1, "{}", first.stderr);
    for expected in [
        "V2__index failed",
        "SQLSTATE 55P03",
        "INVALID index(es) public.busy_id",
        "DROP INDEX CONCURRENTLY public.busy_id;",
    ] {
        assert!(
            first.stderr.contains(expected),
            "{expected}: {}",
            first.stderr
        );
    }
    assert!(
        !first.stderr.contains("retrying in"),
        "a retry would only skip the INVALID index: {}",
        first.stderr
    );
    assert_eq!(history(&db).await, [(1, "t".into())]);

    // A second run: IF NOT EXISTS skips the INVALID index and every statement succeeds,
    // but the migration names it, so it is still not recorded.
    let second = run(&db.url, &dir, &args);
    assert_eq!(second.code, 1, "{}", second.stderr);
    for expected in [
        "an INVALID index it creates remains",
        "DROP INDEX CONCURRENTLY public.busy_id;",
    ] {
        assert!(
            second.stderr.contains(expected),
            "{expected}: {}",
            second.stderr
        );
    }
    assert_eq!(history(&db).await, [(1, "t".into())]);

    // Do what the message says, release the lock, run again: applied, index valid.
    tx.commit().await.unwrap();
    db.client()
        .await
        .batch_execute("DROP INDEX CONCURRENTLY public.busy_id;")
        .await
        .unwrap();
    let fixed = run(&db.url, &dir, &args);
    assert_eq!(fixed.code, 0, "{}", fixed.stderr);
    assert_eq!(history(&db).await, [(1, "t".into()), (2, "index".into())]);
    let valid: bool = db
        .client()
        .await
        .query_one(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'busy_id'::regclass",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(valid);
}

/// Case 6 of issue 12 against the binary: an unencoded '/' or '?' in the password is
/// refused with the rule and the fix, and no piece of the password is printed.
#[test]
fn unencoded_password_delimiters_are_refused_without_echo() {
    let dir = migrations(&[("V1__a.sql", "SELECT 1;")]);
    for url in [
        "postgres://app:Sup3rS3cret/xyz@127.0.0.1:5432/db",
        "postgres://app:abcd?cdSecretTail@127.0.0.1:5432/app",
        "postgres://app:Sup3r#S3cret@127.0.0.1:5432/app",
        "postgres://app:Sup3r@S3cret@127.0.0.1:5432/app",
    ] {
        let out = migrate(url, &dir, &["up"]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{url}: {stderr}");
        assert!(
            stderr.contains("percent-encode it: / is %2F, ? is %3F, # is %23, @ is %40"),
            "{url}: {stderr}"
        );
        for piece in ["Sup3r", "S3cret", "Secret", "xyz", "abcd"] {
            assert!(!stderr.contains(piece), "{url}: {stderr}");
        }
    }
}

// ---------------------------------------------------------------------------------
// PostgreSQL down, hung and restarted during `migrate up`: a TCP proxy in front of the
// test cluster that each test switches between the faults.

/// testkit's fault proxy in front of the test cluster, in `mode`.
fn cluster_proxy(db: &TestDb, mode: ProxyMode) -> TcpProxy {
    TcpProxy::start(format!("{}:{}", db.config.hosts[0], db.config.port), mode)
}

/// The test database's URL, through `proxy`.
fn through(proxy: &TcpProxy, db: &TestDb) -> String {
    let direct = format!("@{}/", proxy.upstream());
    assert!(db.url.contains(&direct), "{}", db.url);
    db.url.replacen(&direct, &format!("@{}/", proxy.addr()), 1)
}

/// A `migrate` process running in the background, its stderr collected as it arrives.
struct Background {
    child: Child,
    url: String,
    stderr: Arc<Mutex<String>>,
    reader: JoinHandle<()>,
}

impl Background {
    fn start(url: &str, dir: &TempDir, args: &[&str], env: &[(&str, &str)]) -> Background {
        let mut cmd = migrate(url, dir, args);
        cmd.envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let (stderr, reader) = capture_stderr(&mut child);
        Background {
            child,
            url: url.to_owned(),
            stderr,
            reader,
        }
    }

    fn wait_for_stderr(&self, text: &str, timeout: Duration) -> bool {
        wait_until(timeout, || self.stderr.lock().unwrap().contains(text))
    }

    /// Waits up to `timeout` for the exit; past it, kills the process and fails.
    fn finish(mut self, timeout: Duration) -> Out {
        let exited = wait_until(timeout, || self.child.try_wait().unwrap().is_some());
        if !exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
            panic!(
                "migrate did not exit within {timeout:?}: {}",
                self.stderr.lock().unwrap()
            );
        }
        let code = self.child.wait().unwrap().code().expect("exit code");
        self.reader.join().unwrap();
        let stderr = self.stderr.lock().unwrap().clone();
        without_password(
            &self.url,
            Out {
                code,
                stdout: String::new(),
                stderr,
            },
        )
    }
}

/// Waits until a statement containing `text` runs in `db` (other than this query).
async fn wait_for_active(db: &TestDb, text: &str, timeout: Duration) -> bool {
    let client = db.client().await;
    let client = &client;
    wait_until_async(timeout, || async move {
        client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND state = 'active' AND pid <> pg_backend_pid() AND strpos(query, $1) > 0",
                &[&text],
            )
            .await
            .is_ok_and(|r| r.get::<_, i64>(0) > 0)
    })
    .await
}

/// The state of every session a `migrate` run from this file left in `db`.
async fn migrate_sessions(db: &TestDb) -> Vec<String> {
    db.client()
        .await
        .query(
            "SELECT coalesce(state, '') FROM pg_stat_activity WHERE datname = current_database() \
             AND application_name = 'deckhand-migrate/test-runner'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Waits until the server has ended every session of an earlier `migrate` run (and so
/// rolled back its transaction and released its lock); returns how long that took.
async fn wait_for_sessions_gone(db: &TestDb, timeout: Duration) -> Duration {
    let started = Instant::now();
    assert!(
        wait_until_async(timeout, || async { migrate_sessions(db).await.is_empty() }).await,
        "the abandoned session is still there: {:?}",
        migrate_sessions(db).await
    );
    started.elapsed()
}

fn first_error(stderr: &str) -> &str {
    stderr
        .lines()
        .find(|l| l.contains("error:"))
        .unwrap_or_default()
}

/// Fault matrix, PostgreSQL down: down when `up` starts, back within the connect
/// retries, and `up` goes on to apply.
#[tokio::test]
async fn database_down_then_back_within_the_connect_retries_is_applied() {
    let db = TestDb::create("downback").await;
    let dir = migrations(&[("V1__a.sql", "CREATE TABLE a(id int);")]);
    let proxy = cluster_proxy(&db, ProxyMode::Down);
    let url = through(&proxy, &db);
    let started = Instant::now();
    let up = Background::start(&url, &dir, &["up", "--connect-retries", "6"], &[]);
    assert!(
        up.wait_for_stderr("(attempt 2)", Duration::from_secs(20)),
        "{}",
        up.stderr.lock().unwrap()
    );
    let refused = proxy.accepted();
    let back = Instant::now();
    proxy.set(ProxyMode::Forward);
    let out = up.finish(Duration::from_secs(30));
    let after_back = back.elapsed();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("applying V1__a ... ok"),
        "{}",
        out.stderr
    );
    assert!(table_exists(&db, "a").await);
    assert_eq!(history(&db).await, [(1, "a".into())]);
    eprintln!(
        "figure: PostgreSQL down at start: {} connection attempts ({refused} closed while \
         down), applied {} ms after it came back, {} ms in all",
        proxy.accepted(),
        after_back.as_millis(),
        started.elapsed().as_millis()
    );
}

/// Fault matrix, PostgreSQL hung while connecting: a server that accepts the TCP
/// connection but never answers the startup is given `connect_timeout` per attempt.
#[tokio::test]
async fn server_that_never_answers_the_startup_is_bounded() {
    let db = TestDb::create("hungconnect").await;
    let dir = migrations(&[("V1__a.sql", "CREATE TABLE a(id int);")]);
    let proxy = cluster_proxy(&db, ProxyMode::Hung);
    let url = format!("{}&connect_timeout=1", through(&proxy, &db));
    let started = Instant::now();
    let out = Background::start(&url, &dir, &["up", "--connect-retries", "1"], &[])
        .finish(Duration::from_secs(20));
    let took = started.elapsed();
    assert_eq!(out.code, 5, "{}", out.stderr);
    let err = first_error(&out.stderr);
    for expected in [
        "after 2 attempt(s)",
        "did not complete the startup",
        "PGCONNECT_TIMEOUT",
    ] {
        assert!(err.contains(expected), "{expected}: {}", out.stderr);
    }
    assert!(took < Duration::from_secs(10), "{took:?}");
    eprintln!(
        "figure: PostgreSQL hung in the startup: exit 5 after {} ms and {} attempts \
         (connect_timeout=1, --connect-retries 1)",
        took.as_millis(),
        proxy.accepted()
    );

    proxy.set(ProxyMode::Forward);
    let again = run(&url, &dir, &["up"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(history(&db).await, [(1, "a".into())]);
}

/// The migrations of the restart and hung cases: a quick one, then one that runs for
/// `seconds` in the server before it creates its table.
fn slow_migrations(seconds: &str) -> TempDir {
    migrations(&[
        ("V1__quick.sql", "CREATE TABLE quick(id int);"),
        (
            "V2__slow.sql",
            &format!("SELECT pg_sleep({seconds});\nCREATE TABLE slow_done(id int);\n"),
        ),
    ])
}

/// Fault matrix, PostgreSQL restarted during `up`: every connection is cut while a
/// migration runs. Exit 5 naming the migration, nothing of it recorded or left; the
/// rerun applies it once.
#[tokio::test]
async fn restart_during_up_exits_5_and_the_rerun_applies_once() {
    let db = TestDb::create("restartup").await;
    // Five seconds of the migration for the poll below to see it running and the cut
    // to land in, however loaded the machine.
    let dir = slow_migrations("5");
    let proxy = cluster_proxy(&db, ProxyMode::Forward);
    let url = through(&proxy, &db);
    let up = Background::start(&url, &dir, &["up"], &[]);
    assert!(
        wait_for_active(&db, "pg_sleep(5)", Duration::from_secs(20)).await,
        "V2__slow never ran: {}",
        up.stderr.lock().unwrap()
    );
    let cut = Instant::now();
    proxy.restart();
    let out = up.finish(Duration::from_secs(20));
    let detected = cut.elapsed();
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert!(!out.stderr.contains("retrying"), "{}", out.stderr);
    let err = first_error(&out.stderr);
    for expected in [
        "database unreachable while applying V2__slow (",
        "V2__slow.sql",
        "the connection was lost",
        "V2__slow is not recorded as applied",
        "PostgreSQL rolls back an open transaction when its connection drops",
        "applied earlier in this run and kept: V1__quick",
    ] {
        assert!(err.contains(expected), "{expected}: {}", out.stderr);
    }
    assert_eq!(history(&db).await, [(1, "quick".into())]);
    assert!(!table_exists(&db, "slow_done").await);
    let rolled_back = wait_for_sessions_gone(&db, Duration::from_secs(20)).await;
    assert!(!table_exists(&db, "slow_done").await);

    let attempts_before = proxy.accepted();
    let again = run(&url, &dir, &["up"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(
        again.stderr.matches("applying V2__slow ... ok").count(),
        1,
        "{}",
        again.stderr
    );
    assert!(!again.stderr.contains("V1__quick"), "{}", again.stderr);
    assert_eq!(
        history(&db).await,
        [(1, "quick".into()), (2, "slow".into())]
    );
    assert!(table_exists(&db, "slow_done").await);
    eprintln!(
        "figure: PostgreSQL restarted during up: exit 5 {} ms after the cut, the server's \
         session gone {} ms later; rerun applied V2 once with {} connection attempt(s)",
        detected.as_millis(),
        rolled_back.as_millis(),
        proxy.accepted() - attempts_before
    );
}

/// Round trips counted by the proxy: a run that applies 21 migrations against one that
/// applies 1, so that what every run costs once (the connection, the lock and its
/// second connection, the history's reads) cancels out. Each migration costs three:
/// `BEGIN` with its settings and the lock's check, its SQL, its history row with
/// `COMMIT`.
#[tokio::test]
async fn each_migration_costs_three_round_trips_its_lock_check_among_them() {
    let mut sends = Vec::new();
    for count in [1, 21] {
        let db = TestDb::create("roundtrips").await;
        let files: Vec<(String, String)> = (1..=count)
            .map(|i| {
                (
                    format!("V{i}__t{i}.sql"),
                    format!("CREATE TABLE t{i}(id int);"),
                )
            })
            .collect();
        let files: Vec<(&str, &str)> = files.iter().map(|(n, s)| (&n[..], &s[..])).collect();
        let dir = migrations(&files);
        let proxy = cluster_proxy(&db, ProxyMode::Forward);
        let out = run(&through(&proxy, &db), &dir, &["up"]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(db.applied_versions().await.len(), count);
        sends.push(proxy.sends());
    }
    assert_eq!(
        sends[1] - sends[0],
        3 * 20,
        "client sends for 1 and for 21 migrations: {sends:?}"
    );
}

/// A migration that gives the migration lock back (here by its key; a migration that
/// uses advisory locks of its own and ends with `pg_advisory_unlock_all()` does the
/// same): the check before the next one finds the lock gone and stops the run, in a
/// transaction's first round trip and before a migration without one alike.
#[tokio::test]
async fn a_lock_given_back_by_a_migration_stops_the_run_before_the_next_one() {
    let unlock = format!(
        "CREATE TABLE a(id int); SELECT pg_advisory_unlock({}, {});",
        LOCK_KEY.0, LOCK_KEY.1
    );
    for second in [
        "CREATE TABLE b(id int);",
        "-- deckhand:no-transaction\nCREATE TABLE b(id int);",
    ] {
        let db = TestDb::create("lockgone").await;
        let dir = migrations(&[("V1__a.sql", &unlock), ("V2__b.sql", second)]);
        let out = run(&db.url, &dir, &["up"]);
        assert_eq!(out.code, 2, "{}", out.stderr);
        assert_says(
            &out,
            &[
                "refusing to migrate",
                "before applying V2__b",
                "took the lock but no longer holds it",
                "a migration that calls pg_advisory_unlock_all()",
                "applied earlier in this run and kept: V1__a",
            ],
        );
        assert!(!out.stderr.contains("applying V2__b ..."), "{}", out.stderr);
        assert_eq!(db.applied_versions().await, [1]);
        assert!(table_exists(&db, "a").await);
        assert!(!table_exists(&db, "b").await);
        assert_eq!(lock_holders(&db).await, Vec::<i32>::new());
    }
}

/// Fault matrix, PostgreSQL hung during `up`: the proxy freezes as a migration reaches
/// the server. The watchdog stops migrate (exit 5) within 2 × 2 s + grace for the
/// two-statement file, the abandoned session is the one the message says how to find,
/// and after the thaw the server rolls it back and the rerun applies it once.
#[tokio::test]
async fn hung_database_during_up_is_stopped_by_the_watchdog() {
    let db = TestDb::create("hungup").await;
    let dir = slow_migrations("1.5");
    // The proxy freezes once V2's text has gone through to the server: while the server
    // runs it, however slow the machine.
    let proxy = cluster_proxy(&db, ProxyMode::HangAfter("pg_sleep(1.5)"));
    let url = through(&proxy, &db);
    let env = [("MIGRATE_STATEMENT_TIMEOUT", "2s")];
    let up = Background::start(&url, &dir, &["up"], &env);
    assert!(
        testkit::wait_until(Duration::from_secs(20), || proxy.mode() == ProxyMode::Hung),
        "V2__slow never reached the server: {}",
        up.stderr.lock().unwrap()
    );
    let frozen = Instant::now();
    let out = up.finish(Duration::from_secs(40));
    let detected = frozen.elapsed();
    assert_eq!(out.code, 5, "{}", out.stderr);
    let err = first_error(&out.stderr);
    for expected in [
        "database unreachable while applying V2__slow (",
        "the database stopped answering: no reply within 14 s (2 statement(s) at \
         --statement-timeout 2s each, plus 10 s grace)",
        "V2__slow is not recorded as applied",
        "rolls back an open transaction when its connection drops",
        "pg_stat_activity WHERE application_name = 'deckhand-migrate/test-runner'",
        "pg_terminate_backend(pid)",
        "applied earlier in this run and kept: V1__quick",
    ] {
        assert!(err.contains(expected), "{expected}: {}", out.stderr);
    }
    assert!(
        detected < Duration::from_secs(20),
        "the watchdog took {detected:?}"
    );
    // Frozen in between: the session is still there with its transaction open, as the
    // message says, and nothing of V2 is visible.
    assert_eq!(migrate_sessions(&db).await, ["idle in transaction"]);
    assert_eq!(history(&db).await, [(1, "quick".into())]);
    assert!(!table_exists(&db, "slow_done").await);

    let thawed = Instant::now();
    proxy.set(ProxyMode::Forward);
    let rolled_back = wait_for_sessions_gone(&db, Duration::from_secs(20)).await;
    assert!(!table_exists(&db, "slow_done").await);
    let attempts_before = proxy.accepted();
    let again = Background::start(&url, &dir, &["up"], &env).finish(Duration::from_secs(60));
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(
        again.stderr.matches("applying V2__slow ... ok").count(),
        1,
        "{}",
        again.stderr
    );
    assert_eq!(
        history(&db).await,
        [(1, "quick".into()), (2, "slow".into())]
    );
    assert!(table_exists(&db, "slow_done").await);
    eprintln!(
        "figure: PostgreSQL hung during up (MIGRATE_STATEMENT_TIMEOUT=2s): exit 5 {} ms \
         after the freeze (bound 14 s from the round trip's start), server session gone {} \
         ms after the thaw; rerun applied V2 once, done {} ms after the thaw, with {} \
         connection attempt(s)",
        detected.as_millis(),
        rolled_back.as_millis(),
        thawed.elapsed().as_millis(),
        proxy.accepted() - attempts_before
    );
}

/// refinery's checksum of a migration file, as the history records it.
fn checksum_of(label: &str, sql: &str) -> u64 {
    refinery_core::Migration::unapplied(label, sql)
        .unwrap()
        .checksum()
}

/// Every history row's version, name, checksum and applied_on.
async fn recorded(db: &TestDb) -> Vec<(i32, String, String, String)> {
    db.client()
        .await
        .query(
            "SELECT version, name, checksum, applied_on FROM refinery_schema_history \
             ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect()
}

/// Every row of deckhand's side table: version and the SQL text kept.
async fn kept_text(db: &TestDb) -> Vec<(i64, String)> {
    db.client()
        .await
        .query(
            "SELECT version, sql FROM deckhand_migration_text ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), String::from_utf8(r.get(1)).unwrap()))
        .collect()
}

/// Rows of a diff as `repair` prints them, each indented under its migration's line.
fn indented(rows: &[&str]) -> String {
    rows.iter().map(|r| format!("    {r}\n")).collect()
}

#[tokio::test]
async fn repair_records_an_edited_file_and_up_accepts_it() {
    let db = TestDb::create("repair").await;
    let v2 = "INSERT INTO a VALUES (2);";
    let dir = migrations(&[("V1__a.sql", "CREATE TABLE a(id int);"), ("V2__b.sql", v2)]);
    assert_eq!(run(&db.url, &dir, &["up"]).code, 0);
    let before = recorded(&db).await;
    let edited = format!("-- the first row of a\n{v2}");
    dir.write("V2__b.sql", &edited);
    let drift = run(&db.url, &dir, &["up"]);
    assert_eq!(drift.code, 4, "{}", drift.stderr);
    assert!(
        drift.stderr.contains("migrate repair --version 2"),
        "the drift error points at repair: {}",
        drift.stderr
    );

    let out = run(&db.url, &dir, &["repair", "--version", "2"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let (old, new) = (checksum_of("V2__b", v2), checksum_of("V2__b", &edited));
    assert_ne!(old, new);
    assert_eq!(
        out.stdout,
        format!(
            "V2__b: checksum {old} → {new} (name unchanged)\n    @@ line 1 @@\n    \
             +-- the first row of a\n     INSERT INTO a VALUES (2);\n"
        )
    );
    let after = recorded(&db).await;
    assert_eq!(after[0], before[0], "V1 is not touched");
    assert_eq!(
        after[1],
        (2, "b".into(), new.to_string(), before[1].3.clone()),
        "the new checksum, applied_on as it was"
    );
    let rows: i64 = db
        .client()
        .await
        .query_one("SELECT count(*) FROM a", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 1, "repair runs none of the migration's SQL");

    let status = run(&db.url, &dir, &["status", "--exit-code"]);
    assert_eq!(status.code, 0, "{}", status.stdout);
    assert!(
        status
            .stdout
            .lines()
            .skip(1)
            .all(|l| l.ends_with("applied")),
        "{}",
        status.stdout
    );
    let up = run(&db.url, &dir, &["up"]);
    assert_eq!(up.code, 0, "{}", up.stderr);
    assert!(up.stderr.contains("nothing to apply"), "{}", up.stderr);
    assert!(!up.stderr.contains("applying"), "{}", up.stderr);

    let again = run(&db.url, &dir, &["repair", "--version", "2"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(
        again.stdout,
        "V2__b is not modified: its file matches the history; nothing to repair\n"
    );
    assert_eq!(recorded(&db).await, after);

    // A renamed file: the name is recorded too, and both names are shown.
    std::fs::remove_file(dir.join("V2__b.sql")).unwrap();
    dir.write("V2__first_row.sql", &edited);
    let renamed = run(&db.url, &dir, &["repair", "--version", "2"]);
    assert_eq!(renamed.code, 0, "{}", renamed.stderr);
    let newer = checksum_of("V2__first_row", &edited);
    assert_eq!(
        renamed.stdout,
        format!(
            "V2__first_row: checksum {new} → {newer} (name b → first_row)\n    the SQL text \
             is unchanged; only the name changed\n"
        )
    );
    assert_eq!(
        history(&db).await,
        [(1, "a".into()), (2, "first_row".into())]
    );
    assert_eq!(run(&db.url, &dir, &["status", "--exit-code"]).code, 0);
}

#[tokio::test]
async fn repair_refuses_a_version_not_applied_or_without_its_file() {
    let db = TestDb::create("repairno").await;
    let dir = migrations(&[
        ("V1__a.sql", "CREATE TABLE a(id int);"),
        ("V2__b.sql", "CREATE TABLE b(id int);"),
        ("V3__c.sql", "CREATE TABLE c(id int);"),
    ]);
    assert_eq!(run(&db.url, &dir, &["up", "--target", "2"]).code, 0);
    dir.write("V2__b.sql", "-- edited\nCREATE TABLE b(id int);");
    let before = recorded(&db).await;

    let out = run(&db.url, &dir, &["repair", "--version", "9"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let error = first_error(&out.stderr);
    assert!(error.contains("version 9 is not applied"), "{error}");
    assert!(error.contains("applied near it: V1__a, V2__b"), "{error}");
    assert!(out.stdout.is_empty(), "{}", out.stdout);

    let pending = run(&db.url, &dir, &["repair", "--version", "3"]);
    assert_eq!(pending.code, 2, "{}", pending.stderr);
    assert!(
        first_error(&pending.stderr).contains("V3__c")
            && pending.stderr.contains("is pending: migrate up applies it"),
        "{}",
        pending.stderr
    );

    std::fs::remove_file(dir.join("V2__b.sql")).unwrap();
    let missing = run(&db.url, &dir, &["repair", "--version", "2"]);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    let error = first_error(&missing.stderr);
    assert!(
        error.contains("V2__b is applied but its file is missing"),
        "{error}"
    );
    assert!(error.contains("--allow-missing"), "{error}");
    assert_eq!(recorded(&db).await, before, "nothing changes on a refusal");
}

#[tokio::test]
async fn repair_all_modified_repairs_every_edited_file_in_one_run() {
    let db = TestDb::create("repairall").await;
    let (v1, v3) = ("CREATE TABLE a(id int);", "CREATE TABLE c(id int);");
    let dir = migrations(&[
        ("V1__a.sql", v1),
        ("V2__b.sql", "CREATE TABLE b(id int);"),
        ("V3__c.sql", v3),
        ("V4__d.sql", "CREATE TABLE d(id int);"),
    ]);
    assert_eq!(run(&db.url, &dir, &["up"]).code, 0);
    let before = recorded(&db).await;
    let v1_edited = "-- a: the accounts\nCREATE TABLE a(id int);";
    let v3_edited = "CREATE TABLE c (\n    id int\n);\n";
    dir.write("V1__a.sql", v1_edited);
    dir.write("V3__c.sql", v3_edited);
    std::fs::remove_file(dir.join("V4__d.sql")).unwrap();

    let out = run(&db.url, &dir, &["repair", "--all-modified"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let (new1, new3) = (
        checksum_of("V1__a", v1_edited),
        checksum_of("V3__c", v3_edited),
    );
    assert_eq!(
        out.stdout,
        format!(
            "V1__a: checksum {} → {new1} (name unchanged)\n{}V3__c: checksum {} → {new3} (name unchanged)\n{}",
            checksum_of("V1__a", v1),
            indented(&["@@ line 1 @@", "+-- a: the accounts", " CREATE TABLE a(id int);"]),
            checksum_of("V3__c", v3),
            indented(&[
                "@@ line 1 @@",
                "-CREATE TABLE c(id int);",
                "\\ No newline at end of file",
                "+CREATE TABLE c (",
                "+    id int",
                "+);"
            ]),
        )
    );
    assert_eq!(
        kept_text(&db).await,
        [
            (1, v1_edited.into()),
            (2, "CREATE TABLE b(id int);".into()),
            (3, v3_edited.into()),
            (4, "CREATE TABLE d(id int);".into())
        ],
        "the edited texts are kept; a missing file's is left as it is"
    );
    assert!(
        out.stderr
            .contains("V4__d is applied but its file is missing")
            && out.stderr.contains("--allow-missing"),
        "the missing one is named and left as it is: {}",
        out.stderr
    );
    let after = recorded(&db).await;
    assert_eq!(after[0].2, new1.to_string());
    assert_eq!(after[1], before[1]);
    assert_eq!(after[2].2, new3.to_string());
    assert_eq!(after[3], before[3], "a missing migration is not touched");

    let status = run(&db.url, &dir, &["status"]);
    let states: Vec<&str> = status
        .stdout
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().last())
        .collect();
    assert_eq!(states, ["applied", "applied", "applied", "missing"]);
    assert_eq!(run(&db.url, &dir, &["up"]).code, 4, "V4 is still missing");
    assert_eq!(run(&db.url, &dir, &["up", "--allow-missing"]).code, 0);

    let again = run(&db.url, &dir, &["repair", "--all-modified"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(
        again.stdout,
        "nothing to repair: no applied migration's file changed\n"
    );
}

#[tokio::test]
async fn repair_shows_the_edit_against_the_text_kept_when_it_was_applied() {
    let db = TestDb::create("repairdiff").await;
    let v1 = "CREATE TABLE a(id int);";
    let v2 = "-- b: the orders\nCREATE TABLE b(\n    id int,\n    a_id int\n);\n";
    let v3 =
        "-- deckhand:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS b_a ON b(a_id);\n";
    let dir = migrations(&[("V1__a.sql", v1), ("V2__b.sql", v2), ("V3__c.sql", v3)]);
    let up = run(&db.url, &dir, &["up"]);
    assert_eq!(up.code, 0, "{}", up.stderr);
    assert_eq!(
        kept_text(&db).await,
        [(1, v1.into()), (2, v2.into()), (3, v3.into())],
        "up keeps each file's text, the no-transaction one too"
    );
    let acl: Option<String> = db
        .client()
        .await
        .query_one(
            "SELECT relacl::text FROM pg_class WHERE oid = 'deckhand_migration_text'::regclass",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let acl = acl.expect("an explicit ACL: PUBLIC's privileges revoked");
    assert!(
        !acl.contains("{=") && !acl.contains(",="),
        "PUBLIC has no privilege on the kept text: {acl}"
    );

    let edit1 = v2.replace("the orders", "the orders, one row per order");
    dir.write("V2__b.sql", &edit1);
    let out = run(&db.url, &dir, &["repair", "--version", "2"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let (old, new) = (checksum_of("V2__b", v2), checksum_of("V2__b", &edit1));
    assert_eq!(
        out.stdout,
        format!(
            "V2__b: checksum {old} → {new} (name unchanged)\n{}",
            indented(&[
                "@@ line 1 @@",
                "--- b: the orders",
                "+-- b: the orders, one row per order",
                " CREATE TABLE b(",
                "     id int,"
            ])
        )
    );
    assert_eq!(kept_text(&db).await[1], (2, edit1.clone()));

    // A second edit is shown against the first, which the repair kept.
    let edit2 = edit1.replace("    id int,", "    id   int,");
    dir.write("V2__b.sql", &edit2);
    let out = run(&db.url, &dir, &["repair", "--version", "2"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let newer = checksum_of("V2__b", &edit2);
    assert_eq!(
        out.stdout,
        format!(
            "V2__b: checksum {new} → {newer} (name unchanged)\n{}",
            indented(&[
                "@@ line 3 @@",
                " -- b: the orders, one row per order",
                " CREATE TABLE b(",
                "-    id int,",
                "+    id   int,",
                "     a_id int",
                " );"
            ])
        )
    );
    assert_eq!(kept_text(&db).await[1], (2, edit2));
    assert_eq!(
        run(&db.url, &dir, &["up"]).code,
        0,
        "no drift after the repairs"
    );

    // down forgets the text with the history row.
    dir.write(
        "V3__c.down.sql",
        "-- deckhand:no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS b_a;\n",
    );
    dir.write("V2__b.down.sql", "DROP TABLE b;");
    let down = run(&db.url, &dir, &["down", "--steps", "2"]);
    assert_eq!(down.code, 0, "{}", down.stderr);
    assert_eq!(kept_text(&db).await, [(1, v1.into())]);
    assert_eq!(run(&db.url, &dir, &["up"]).code, 0);
    assert_eq!(kept_text(&db).await.len(), 3, "up keeps them again");
}

#[tokio::test]
async fn repair_without_the_applied_text_says_so_and_keeps_the_new_one() {
    let db = TestDb::create("repairnotext").await;
    let (v1, v2) = ("CREATE TABLE a(id int);", "CREATE TABLE b(id int);");
    let dir = migrations(&[("V1__a.sql", v1), ("V2__b.sql", v2)]);
    let off = [("MIGRATE_KEEP_TEXT", "false")];
    let up = run_with(&db.url, &dir, &["up"], &off);
    assert_eq!(up.code, 0, "{}", up.stderr);
    assert!(
        !table_exists(&db, "deckhand_migration_text").await,
        "MIGRATE_KEEP_TEXT=false keeps no text"
    );
    let not_kept = |file: &str| {
        format!(
            "    no SQL text was kept when it was applied (by refinery, by an older deckhand, or \
             with MIGRATE_KEEP_TEXT off), so the edit cannot be shown: review the edit in \
             version control (git log -p -- {})\n",
            dir.join(file).display()
        )
    };

    let v2_edited = format!("-- b\n{v2}");
    dir.write("V2__b.sql", &v2_edited);
    let out = run_with(&db.url, &dir, &["repair", "--version", "2"], &off);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let (old, new) = (checksum_of("V2__b", v2), checksum_of("V2__b", &v2_edited));
    assert_eq!(
        out.stdout,
        format!(
            "V2__b: checksum {old} → {new} (name unchanged)\n{}",
            not_kept("V2__b.sql")
        )
    );
    assert!(!table_exists(&db, "deckhand_migration_text").await);

    // With keeping on (the default), repair creates the table and keeps the new texts.
    let v1_edited = format!("-- a\n{v1}");
    let v2_edited2 = format!("-- b, again\n{v2}");
    dir.write("V1__a.sql", &v1_edited);
    dir.write("V2__b.sql", &v2_edited2);
    let out = run(&db.url, &dir, &["repair", "--all-modified"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        format!(
            "V1__a: checksum {} → {} (name unchanged)\n{}V2__b: checksum {new} → {} (name \
             unchanged)\n{}",
            checksum_of("V1__a", v1),
            checksum_of("V1__a", &v1_edited),
            not_kept("V1__a.sql"),
            checksum_of("V2__b", &v2_edited2),
            not_kept("V2__b.sql"),
        )
    );
    assert_eq!(
        kept_text(&db).await,
        [(1, v1_edited.clone()), (2, v2_edited2.clone())]
    );
    let v2_edited3 = format!("-- b, once more\n{v2}");
    dir.write("V2__b.sql", &v2_edited3);
    let out = run(&db.url, &dir, &["repair", "--version", "2"]);
    assert!(
        out.stdout.ends_with(&indented(&[
            "@@ line 1 @@",
            "--- b, again",
            "+-- b, once more",
            " CREATE TABLE b(id int);"
        ])),
        "{}",
        out.stdout
    );

    // A kept text that is not what the history says was applied is not compared.
    db.client()
        .await
        .batch_execute("UPDATE deckhand_migration_text SET sql = 'DROP TABLE b;' WHERE version = 2")
        .await
        .unwrap();
    dir.write("V2__b.sql", v2);
    let out = run(&db.url, &dir, &["repair", "--version", "2"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        format!(
            "V2__b: checksum {} → {old} (name unchanged)\n    the SQL text kept in \
             deckhand_migration_text is not what refinery_schema_history says was applied (its \
             checksum differs; it was changed outside deckhand), so the edit is not shown: \
             review the edit in version control (git log -p -- {})\n",
            checksum_of("V2__b", &v2_edited3),
            dir.join("V2__b.sql").display()
        )
    );
    assert_eq!(
        kept_text(&db).await[1],
        (2, v2.into()),
        "the file's text replaces it"
    );

    // A row gone from the side table (a migration applied by refinery has none).
    db.client()
        .await
        .batch_execute("DELETE FROM deckhand_migration_text WHERE version = 2")
        .await
        .unwrap();
    dir.write("V2__b.sql", &v2_edited);
    let out = run(&db.url, &dir, &["repair", "--version", "2"]);
    assert_eq!(
        out.stdout,
        format!(
            "V2__b: checksum {old} → {new} (name unchanged)\n{}",
            not_kept("V2__b.sql")
        )
    );
    assert_eq!(kept_text(&db).await[1], (2, v2_edited.clone()));

    // With keeping off, repair forgets the text it does not replace.
    dir.write("V1__a.sql", v1);
    let out = run_with(&db.url, &dir, &["repair", "--version", "1"], &off);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.ends_with(&indented(&[
            "@@ line 1 @@",
            "--- a",
            " CREATE TABLE a(id int);"
        ])),
        "{}",
        out.stdout
    );
    assert_eq!(kept_text(&db).await, [(2, v2_edited)]);
}

#[test]
fn repair_needs_exactly_one_of_version_and_all_modified() {
    let dir = migrations(&[]);
    // Refused before connecting: the database need not exist.
    let refused = |args: &[&str], vars: &[(&str, &str)]| {
        let out = migrate("postgres://u:p@127.0.0.1/d", &dir, args)
            .envs(vars.iter().copied())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        stderr
    };
    let neither = refused(&["repair"], &[]);
    assert!(
        neither.contains("MIGRATE_REPAIR_VERSION is not set: say which migration to repair"),
        "{neither}"
    );
    let both = refused(&["repair", "--version", "1", "--all-modified"], &[]);
    assert!(
        both.contains(r#"--version="1" is not valid: --all-modified is set too"#),
        "{both}"
    );
    let both = refused(
        &["repair", "--version", "1"],
        &[("MIGRATE_REPAIR_ALL_MODIFIED", "on")],
    );
    assert!(
        both.contains(r#"--version="1" is not valid: MIGRATE_REPAIR_ALL_MODIFIED is set too"#),
        "{both}"
    );
    let bad = refused(&["repair"], &[("MIGRATE_REPAIR_ALL_MODIFIED", "maybe")]);
    assert!(
        bad.contains(r#"MIGRATE_REPAIR_ALL_MODIFIED="maybe" is not valid: must be true or false"#),
        "{bad}"
    );
}

#[tokio::test]
async fn repair_waits_for_the_migration_lock_and_times_out_with_3() {
    let db = TestDb::create("repairlock").await;
    let dir = migrations(&[("V1__a.sql", "CREATE TABLE a(id int);")]);
    assert_eq!(run(&db.url, &dir, &["up"]).code, 0);
    let edited = "-- a: the accounts\nCREATE TABLE a(id int);";
    dir.write("V1__a.sql", edited);
    let before = recorded(&db).await;
    let holder = db.client().await;
    as_another_runner(&holder, "pg_advisory_lock").await;

    let args = ["repair", "--version", "1"];
    let out = Background::start(&db.url, &dir, &args, &[("MIGRATE_LOCK_TIMEOUT", "1s")])
        .finish(Duration::from_secs(30));
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("waiting for the migration lock, held by"),
        "{}",
        out.stderr
    );
    assert_eq!(recorded(&db).await, before);

    let waiting = Background::start(&db.url, &dir, &args, &[("MIGRATE_LOCK_TIMEOUT", "30s")]);
    assert!(
        waiting.wait_for_stderr("waiting for the migration lock", Duration::from_secs(10)),
        "{}",
        waiting.stderr.lock().unwrap()
    );
    assert_eq!(
        recorded(&db).await,
        before,
        "nothing changes while it waits"
    );
    as_another_runner(&holder, "pg_advisory_unlock").await;
    let out = waiting.finish(Duration::from_secs(30));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("acquired the migration lock after"),
        "{}",
        out.stderr
    );
    assert_eq!(
        recorded(&db).await[0].2,
        checksum_of("V1__a", edited).to_string()
    );
}

// The migration lock behind PgBouncer (Debian's, started by scripts/services): one in
// pool_mode=transaction, where a session advisory lock keeps nobody out and `migrate`
// must refuse, one in pool_mode=session, where it must work as on a direct connection.

/// `db` through the test services' PgBouncer whose URL is in `var`
/// (`DECKHAND_TEST_PGBOUNCER_TX_URL`, `DECKHAND_TEST_PGBOUNCER_SESSION_URL`); its `*`
/// entry serves every database of the cluster.
fn pgbouncer_url(var: &str, db: &TestDb) -> String {
    testkit::replace_dbname(&testkit::service_var(var), &db.name)
}

/// The backends of `db` that hold the migration lock.
async fn lock_holders(db: &TestDb) -> Vec<i32> {
    db.client()
        .await
        .query(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = $1::int4::oid \
             AND objid = $2::int4::oid AND objsubid = 2 \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[&LOCK_KEY.0, &LOCK_KEY.1],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Checks the refusal of a transaction-pooled connection: the cause, the fix, exit 2,
/// and nothing applied, not even the history table.
async fn assert_refused_as_pooled(db: &TestDb, out: &Out) {
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_says(
        out,
        &[
            "refusing to migrate: this connection has no database session of its own",
            "transaction-pooling connection (e.g. PgBouncer pool_mode=transaction)",
            "a proxy that moves statements between server connections",
            "point DATABASE_URL for migrate at the database or a session-mode pool",
            "no migration was applied in this run",
        ],
    );
    assert!(!out.stderr.contains("applying V1"), "{}", out.stderr);
    assert!(!table_exists(db, "refinery_schema_history").await);
    assert!(!table_exists(db, "a").await);
}

#[tokio::test]
async fn transaction_pooled_connection_is_refused_before_anything_is_applied() {
    let db = TestDb::create("pgbtx").await;
    let dir = migrations(&[
        ("V1__a.sql", "CREATE TABLE a(id int);"),
        ("V2__b.sql", "CREATE TABLE b(id int);"),
    ]);
    let url = pgbouncer_url("DECKHAND_TEST_PGBOUNCER_TX_URL", &db);
    let out = run(&url, &dir, &["up"]);
    assert_refused_as_pooled(&db, &out).await;
    // A fresh pool has one server connection; the second connection of the check lands
    // on it, and the lock is given back there.
    assert!(
        out.stderr
            .contains("a second connection of migrate ran its statement"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("the migration lock was released"),
        "{}",
        out.stderr
    );
    assert_eq!(lock_holders(&db).await, Vec::<i32>::new());
    let down = run(&url, &dir, &["down"]);
    assert_eq!(down.code, 2, "{}", down.stderr);
    // Nothing is left behind: a direct connection applies at once.
    let direct = run(&db.url, &dir, &["up", "--lock-timeout", "1s"]);
    assert_eq!(direct.code, 0, "{}", direct.stderr);
    assert_eq!(db.applied_versions().await, [1, 2]);
}

#[tokio::test]
async fn statements_moved_between_server_connections_are_refused() {
    let db = TestDb::create("pgbmoved").await;
    let dir = migrations(&[("V1__a.sql", "CREATE TABLE a(id int);")]);
    let url = pgbouncer_url("DECKHAND_TEST_PGBOUNCER_TX_URL", &db);
    // Three transactions open at once make the pool open three server connections,
    // which it then hands out in turn (server_round_robin = 1 in scripts/services).
    let config = pgconn::PgConfig::from_url(&url).unwrap();
    let mut clients = Vec::new();
    for _ in 0..3 {
        let client = config.connect().await.unwrap();
        client.batch_execute("BEGIN; SELECT 1").await.unwrap();
        clients.push(client);
    }
    let mut pids = Vec::new();
    for client in &clients {
        let row = client.query_one("SELECT pg_backend_pid()", &[]).await;
        pids.push(row.unwrap().get::<_, i32>(0));
        client.batch_execute("COMMIT").await.unwrap();
    }
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), 3, "three server connections: {pids:?}");
    drop(clients);

    // The statement that takes the lock, or the check after it, runs on another backend
    // than the one before (which of them depends on where the turn stands): refused
    // every time, and a lock that was taken is given back on its own backend.
    for _ in 0..3 {
        // With debug messages, so that a failure shows each try to give the lock back.
        let out = migrate(&url, &dir, &["up"])
            .env("MIGRATE_LOG", "debug")
            .output()
            .unwrap();
        let out = without_password(
            &url,
            Out {
                code: out.status.code().expect("exit code"),
                stdout: String::new(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            },
        );
        assert_refused_as_pooled(&db, &out).await;
        assert!(
            !out.stderr.contains("may stay held"),
            "the lock is given back: {}",
            out.stderr
        );
        assert_eq!(lock_holders(&db).await, Vec::<i32>::new());
    }
}

#[tokio::test]
async fn session_pooled_connection_applies_each_migration_once_with_twenty_runners() {
    let db = TestDb::create("pgbsession").await;
    let url = pgbouncer_url("DECKHAND_TEST_PGBOUNCER_SESSION_URL", &db);
    twenty_runners_apply_each_migration_once(&db, &url).await;
    assert_eq!(db.applied_versions().await, [1, 2, 3]);
    let dir = migrations(&[
        ("V1__a.sql", "CREATE TABLE a(id int);"),
        ("V1__a.down.sql", "DROP TABLE a;"),
    ]);
    let other = TestDb::create("pgbsessiondown").await;
    let url = pgbouncer_url("DECKHAND_TEST_PGBOUNCER_SESSION_URL", &other);
    let up = run(&url, &dir, &["up"]);
    assert_eq!(up.code, 0, "{}", up.stderr);
    let down = run(&url, &dir, &["down"]);
    assert_eq!(down.code, 0, "{}", down.stderr);
    assert!(!table_exists(&other, "a").await);
}
