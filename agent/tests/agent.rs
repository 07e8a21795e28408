//! The built `agent` binary against the moto server and PostgreSQL that
//! `scripts/services` starts, plus small HTTP doubles (a fault-injecting proxy in front
//! of moto, a container-credentials endpoint) and PID namespaces from `unshare`.
//!
//! Every test uses its own secret names and temporary directory, so they run in
//! parallel. The app is usually `sh -c '…'` writing its environment to a file: the file
//! (or its absence) is the proof of what the app saw, or that it never ran.

mod common;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_secretsmanager::primitives::Blob;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};

use common::*;

// ---------------------------------------------------------------------------------
// Helpers for PID 1 tests
// ---------------------------------------------------------------------------------

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The pid, outside the namespace, of the agent that `unshare --fork` started.
fn child_of(parent: u32) -> Option<i32> {
    std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok())
        .find_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let after = &stat[stat.rfind(')')? + 1..];
            let ppid: u32 = after.split_whitespace().nth(1)?.parse().ok()?;
            (ppid == parent).then_some(pid)
        })
}

fn kill(pid: i32, signal: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{signal} {pid}");
}

fn wait_for_file(path: &Path) {
    assert!(
        testkit::wait_until(Duration::from_secs(15), || path.exists()),
        "{} did not appear",
        path.display()
    );
}

fn pid_alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

// ---------------------------------------------------------------------------------
// References
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn every_reference_form_resolves_and_own_variables_are_removed() {
    let client = sm("us-east-1").await;
    let password = format!("pw-{}", testkit::unique_name("v"));
    let json =
        format!(r#"{{"password":"{password}","port":5432,"debug":true,"nested":{{"a":[1,2]}}}}"#);
    let (name, arn) = create_secret(&client, "refs", &json).await;
    let (plain_name, plain_arn) = create_secret(&client, "refs", "plain-text-value-1").await;
    // Stage and version: after put-secret-value the old value is AWSPREVIOUS.
    let (rot_name, _) = create_secret(&client, "refs", "old-value-1").await;
    let put = client
        .put_secret_value()
        .secret_id(&rot_name)
        .secret_string("new-value-2")
        .send()
        .await
        .unwrap();
    let new_version = put.version_id.unwrap();
    // Another region, reached only through its ARN's region.
    let west = sm("us-west-2").await;
    let (_, west_arn) = create_secret(&west, "refs", "west-value-1").await;
    // A binary secret that is valid UTF-8.
    let bin_name = format!("refs/{}", testkit::unique_name("bin"));
    client
        .create_secret()
        .name(&bin_name)
        .secret_binary(Blob::new("binary-text-1".as_bytes()))
        .send()
        .await
        .unwrap();
    assert!(arn.len() > 7 && arn.as_bytes()[arn.len() - 7] == b'-');
    let partial_arn = &arn[..arn.len() - 7];

    let scratch = Scratch::new();
    let mut cmd = agent();
    cmd.env("FULL_ARN_KEY", format!("{arn}:password::"))
        .env("PARTIAL_ARN_KEY", format!("{partial_arn}:password"))
        .env("FULL_ARN_WHOLE", &plain_arn)
        .env("SHORT_WHOLE", format!("secretsmanager:{plain_name}"))
        .env("SHORT_KEY", format!("secretsmanager:{name}:password"))
        .env("NUMBER", format!("secretsmanager:{name}:port"))
        .env("BOOLEAN", format!("secretsmanager:{name}:debug"))
        .env("OBJECT", format!("secretsmanager:{name}:nested"))
        .env("CURRENT", format!("secretsmanager:{rot_name}"))
        .env(
            "PREVIOUS",
            format!("secretsmanager:{rot_name}::AWSPREVIOUS"),
        )
        .env(
            "BY_VERSION",
            format!("secretsmanager:{rot_name}:::{new_version}"),
        )
        .env("OTHER_REGION", &west_arn)
        .env("BINARY", format!("secretsmanager:{bin_name}"))
        .env("PLAIN", "not a reference")
        .env("DECKHAND_STOP_TIMEOUT", "5s");
    app_writing_env(&mut cmd, &scratch);
    let out = run_async(cmd).await;
    assert_code(&out, 0);
    let env = app_env(&scratch);
    assert_eq!(var(&env, "FULL_ARN_KEY"), Some(password.as_str()));
    assert_eq!(var(&env, "PARTIAL_ARN_KEY"), Some(password.as_str()));
    assert_eq!(var(&env, "SHORT_KEY"), Some(password.as_str()));
    assert_eq!(var(&env, "FULL_ARN_WHOLE"), Some("plain-text-value-1"));
    assert_eq!(var(&env, "SHORT_WHOLE"), Some("plain-text-value-1"));
    assert_eq!(var(&env, "NUMBER"), Some("5432"));
    assert_eq!(var(&env, "BOOLEAN"), Some("true"));
    assert_eq!(var(&env, "OBJECT"), Some(r#"{"a":[1,2]}"#));
    assert_eq!(var(&env, "CURRENT"), Some("new-value-2"));
    assert_eq!(var(&env, "PREVIOUS"), Some("old-value-1"));
    assert_eq!(var(&env, "BY_VERSION"), Some("new-value-2"));
    assert_eq!(var(&env, "OTHER_REGION"), Some("west-value-1"));
    assert_eq!(var(&env, "BINARY"), Some("binary-text-1"));
    assert_eq!(var(&env, "PLAIN"), Some("not a reference"));
    assert!(
        env.iter().all(|(k, _)| !k.starts_with("DECKHAND_")),
        "{env:?}"
    );
    let (stdout, stderr) = text(&out);
    assert!(
        !stdout.contains(&password) && !stderr.contains(&password),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn whole_secrets_expand_and_collisions_are_reported_by_name() {
    let client = sm("us-east-1").await;
    let (base, _) = create_secret(
        &client,
        "streamline/app-env",
        r#"{"CLERK_SECRET_KEY":"sk_live_abcdef123","ENCRYPTION_KEY":"k-32-characters-long-0123456789","NODE_ENV":"production","PORT":8080,"SHARED":"from-base-1"}"#,
    )
    .await;
    let (over, _) = create_secret(
        &client,
        "streamline/override",
        r#"{"SHARED":"from-over-22","LIMITS":{"rps":5}}"#,
    )
    .await;
    let scratch = Scratch::new();
    let mut cmd = agent();
    cmd.env("DECKHAND_ENV_SECRETS", format!("{base},{over}"))
        .env("NODE_ENV", "staging")
        .env("DECKHAND_REQUIRED_ENV", "CLERK_SECRET_KEY,ENCRYPTION_KEY");
    app_writing_env(&mut cmd, &scratch);
    let out = run_async(cmd).await;
    assert_code(&out, 0);
    let env = app_env(&scratch);
    assert_eq!(var(&env, "CLERK_SECRET_KEY"), Some("sk_live_abcdef123"));
    assert_eq!(var(&env, "PORT"), Some("8080"));
    assert_eq!(
        var(&env, "NODE_ENV"),
        Some("staging"),
        "an explicit variable wins"
    );
    assert_eq!(
        var(&env, "SHARED"),
        Some("from-over-22"),
        "the later secret wins"
    );
    assert_eq!(var(&env, "LIMITS"), Some(r#"{"rps":5}"#));
    let (stdout, stderr) = text(&out);
    assert!(
        stderr.contains("NODE_ENV is set in the environment"),
        "{stderr}"
    );
    assert!(stderr.contains("SHARED is in secrets"), "{stderr}");
    for v in [
        "sk_live_abcdef123",
        "production",
        "from-base-1",
        "from-over-22",
    ] {
        assert!(
            !stdout.contains(v) && !stderr.contains(v),
            "{v} leaked: {stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_rds_secret_becomes_a_database_url_that_connects() {
    let db = testkit::TestDb::create("agent_rds").await;
    let role = testkit::unique_name("agent_role");
    let password = "p@ss:w/rd%?";
    db.client()
        .await
        .batch_execute(&format!(
            "CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'; GRANT ALL ON DATABASE \"{}\" TO \"{role}\"",
            db.name
        ))
        .await
        .unwrap();
    let client = sm("us-east-1").await;
    let secret = serde_json::json!({
        "engine": "postgres",
        "host": db.config.hosts[0],
        "port": db.config.port,
        "username": role,
        "password": password,
        "dbname": db.name,
    });
    let (name, _) = create_secret(&client, "rds", &secret.to_string()).await;
    let scratch = Scratch::new();
    let mut cmd = agent();
    cmd.env("DECKHAND_DATABASE_SECRET", &name)
        .env("DECKHAND_DATABASE_URL_VAR", "POSTGRES_URL")
        .env("DECKHAND_DATABASE_SSLMODE", "require");
    app_writing_env(&mut cmd, &scratch);
    let out = run_async(cmd).await;
    assert_code(&out, 0);
    let env = app_env(&scratch);
    let url = var(&env, "POSTGRES_URL").expect("POSTGRES_URL");
    assert!(url.contains("p%40ss%3Aw%2Frd%25%3F"), "{url}");
    assert!(url.ends_with("?sslmode=require"), "{url}");
    assert_eq!(var(&env, "PGPASSWORD"), Some(password));
    assert_eq!(
        var(&env, "PGPORT"),
        Some(db.config.port.to_string().as_str())
    );
    assert!(var(&env, "DATABASE_URL").is_none());

    // The URL really connects as the role, with that password.
    let config = pgconn::PgConfig::from_url(url).expect("a valid URL");
    let conn = config
        .connect()
        .await
        .expect("connect with the composed URL");
    let row = conn
        .query_one("SELECT current_user::text", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), role);
    // And so do the PG* variables alone.
    let pg: std::collections::HashMap<String, String> = env
        .iter()
        .filter(|(k, _)| k.starts_with("PG"))
        .cloned()
        .collect();
    let config = pgconn::PgConfig::from_env(&pg)
        .unwrap()
        .expect("PG* settings");
    config.connect().await.expect("connect with PG* variables");
    let (stdout, stderr) = text(&out);
    assert!(!stdout.contains(password) && !stderr.contains(password));
}

// ---------------------------------------------------------------------------------
// Failing closed
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_secret_key_or_malformed_json_stops_the_start() {
    let client = sm("us-east-1").await;
    let value = "hidden-value-4242";
    let (json, _) = create_secret(&client, "fail", &format!(r#"{{"present":"{value}"}}"#)).await;
    let (text_secret, _) = create_secret(&client, "fail", &format!("{{not json {value}")).await;
    let missing = format!("fail/{}", testkit::unique_name("missing"));
    let cases = [
        (
            "DB_PASSWORD",
            format!("secretsmanager:{missing}"),
            missing.clone(),
            "was not found",
        ),
        (
            "API_KEY",
            format!("secretsmanager:{json}:absent"),
            json.clone(),
            "has no JSON key \"absent\"",
        ),
        (
            "TOKEN",
            format!("secretsmanager:{text_secret}:present"),
            text_secret.clone(),
            "is not a JSON object",
        ),
    ];
    for (variable, reference, secret, why) in cases {
        let scratch = Scratch::new();
        let mut cmd = agent();
        cmd.env(variable, &reference)
            .env("OK", format!("secretsmanager:{json}:present"));
        app_writing_env(&mut cmd, &scratch);
        let out = run_async(cmd).await;
        assert_refused(&out, &scratch, 78, &[variable, &secret, why], &[value]);
    }
    // A whole-secret expansion of a non-object, a malformed reference, a required
    // variable that nothing set.
    let scratch = Scratch::new();
    let mut cmd = agent();
    cmd.env("DECKHAND_ENV_SECRETS", &text_secret);
    app_writing_env(&mut cmd, &scratch);
    let out = run_async(cmd).await;
    assert_refused(
        &out,
        &scratch,
        78,
        &["DECKHAND_ENV_SECRETS", &text_secret],
        &[value],
    );

    let scratch = Scratch::new();
    let mut cmd = agent();
    cmd.env("BROKEN", "arn:aws:secretsmanager:us-east-1:123:secret");
    app_writing_env(&mut cmd, &scratch);
    let out = run_async(cmd).await;
    assert_refused(
        &out,
        &scratch,
        78,
        &["BROKEN=\"arn:aws:secretsmanager:us-east-1:123:secret\" is not valid"],
        &[],
    );

    let scratch = Scratch::new();
    let mut cmd = agent();
    cmd.env("DECKHAND_REQUIRED_ENV", "PRESENT,SESSION_SECRET")
        .env("PRESENT", format!("secretsmanager:{json}:present"));
    app_writing_env(&mut cmd, &scratch);
    let out = run_async(cmd).await;
    assert_refused(
        &out,
        &scratch,
        78,
        &["SESSION_SECRET is required"],
        &[value],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn aws_out_of_reach_exits_69_at_the_deadline() {
    let scratch = Scratch::new();
    let mut cmd = agent();
    cmd.env(
        "AWS_ENDPOINT_URL",
        format!("http://127.0.0.1:{}", closed_port()),
    )
    .env("DECKHAND_SECRETS_TIMEOUT", "700ms")
    .env("DB_PASSWORD", "secretsmanager:somewhere/db:password");
    app_writing_env(&mut cmd, &scratch);
    let started = Instant::now();
    let out = run_async(cmd).await;
    assert_refused(
        &out,
        &scratch,
        69,
        &["DB_PASSWORD", "somewhere/db", "within 700ms"],
        &[],
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_option_is_a_usage_error_in_the_house_format() {
    let scratch = Scratch::new();
    let mut cmd = agent();
    cmd.env("DECKHAND_STOP_TIMEOUT", "soon");
    app_writing_env(&mut cmd, &scratch);
    let out = run_async(cmd).await;
    assert_refused(
        &out,
        &scratch,
        64,
        &["DECKHAND_STOP_TIMEOUT=\"soon\" is not valid:"],
        &[],
    );
    let out = run_async(agent()).await;
    assert_code(&out, 64);
}

// ---------------------------------------------------------------------------------
// Retries and credentials
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn throttling_and_server_errors_are_retried() {
    let client = sm("us-east-1").await;
    let (name, _) = create_secret(&client, "retry", r#"{"k":"retried-value-1"}"#).await;
    let (endpoint, requests) = fault_proxy(vec![
        (400, "ThrottlingException"),
        (500, "InternalServiceError"),
        (400, "ThrottlingException"),
        (503, "ServiceUnavailable"),
    ])
    .await;
    let scratch = Scratch::new();
    let mut cmd = agent();
    cmd.env("AWS_ENDPOINT_URL", &endpoint)
        .env("K", format!("secretsmanager:{name}:k"));
    app_writing_env(&mut cmd, &scratch);
    let out = run_async(cmd).await;
    assert_code(&out, 0);
    assert_eq!(var(&app_env(&scratch), "K"), Some("retried-value-1"));
    assert_eq!(
        requests.lock().unwrap().len(),
        5,
        "4 faults, then the real answer"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_come_from_the_container_credentials_endpoint() {
    let client = sm("us-east-1").await;
    let (name, _) = create_secret(&client, "creds", "container-creds-value-1").await;
    let asked: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = asked.clone();
    let expiration =
        humantime::format_rfc3339_seconds(SystemTime::now() + Duration::from_secs(3600))
            .to_string();
    let addr = serve(move |req: Request<Incoming>| {
        let auth = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        seen.lock()
            .unwrap()
            .push(format!("{} {auth}", req.uri().path()));
        let body = serde_json::json!({
            "AccessKeyId": "AKIDCONTAINERTEST",
            "SecretAccessKey": "container-secret-key",
            "Token": "container-session-token",
            "Expiration": expiration,
        })
        .to_string();
        async move { Response::new(Full::new(Bytes::from(body))) }
    })
    .await;
    let scratch = Scratch::new();
    let mut cmd = agent();
    cmd.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            format!("http://{addr}/v2/credentials/task"),
        )
        .env("AWS_CONTAINER_AUTHORIZATION_TOKEN", "test-auth-token")
        .env("V", format!("secretsmanager:{name}"));
    app_writing_env(&mut cmd, &scratch);
    let out = run_async(cmd).await;
    assert_code(&out, 0);
    assert_eq!(
        var(&app_env(&scratch), "V"),
        Some("container-creds-value-1")
    );
    let asked = asked.lock().unwrap();
    assert!(
        asked
            .iter()
            .any(|a| a == "/v2/credentials/task test-auth-token"),
        "{asked:?}"
    );
}

// ---------------------------------------------------------------------------------
// PID 1 and supervision
// ---------------------------------------------------------------------------------

/// A running agent; killed (with its PID namespace, if any) when a test fails early.
struct Running {
    child: Option<Child>,
    /// The agent's pid as seen from here.
    pid: i32,
}

impl Running {
    fn wait(mut self) -> Output {
        wait_output(self.child.take().unwrap(), RUN_LIMIT)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-9", &self.pid.to_string()])
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts `cmd` (an `unshare` or a bare agent) and finds the agent's pid.
fn start(mut cmd: Command, in_namespace: bool) -> Running {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start");
    let outer = child.id();
    let mut running = Running {
        child: Some(child),
        pid: outer as i32,
    };
    if in_namespace {
        let mut found = None;
        assert!(
            testkit::wait_until(Duration::from_secs(10), || {
                found = child_of(outer);
                found.is_some()
            }),
            "unshare started no child"
        );
        running.pid = found.unwrap();
    }
    running
}

#[test]
fn the_app_starts_with_no_signal_blocked() {
    let mut cmd = agent();
    cmd.args(["--", "grep", "^SigBlk", "/proc/self/status"]);
    let out = run(cmd);
    assert_code(&out, 0);
    assert_eq!(
        text(&out).0.split_whitespace().nth(1),
        Some("0000000000000000")
    );
}

#[test]
fn as_pid1_sigterm_is_forwarded_and_the_app_exit_code_returned() {
    let scratch = Scratch::new();
    let mut cmd = agent_as_pid1();
    cmd.env("DIR", &scratch.0).args([
        "--",
        "sh",
        "-c",
        r#"echo $PPID > "$DIR/app-parent"; trap 'touch "$DIR/got-term"; exit 7' TERM; touch "$DIR/ready"; while :; do sleep 0.05; done"#,
    ]);
    let agent = start(cmd, true);
    wait_for_file(&scratch.path("ready"));
    let parent = std::fs::read_to_string(scratch.path("app-parent")).unwrap();
    assert_eq!(
        parent.trim(),
        "1",
        "the agent is PID 1 and the app's parent"
    );
    kill(agent.pid, "TERM");
    let out = agent.wait();
    assert_code(&out, 7);
    assert!(scratch.path("got-term").exists());
}

#[test]
fn an_app_ignoring_sigterm_is_killed_after_the_stop_timeout() {
    let scratch = Scratch::new();
    let mut cmd = agent_as_pid1();
    cmd.env("DIR", &scratch.0)
        .env("DECKHAND_STOP_TIMEOUT", "1s")
        .args([
            "--",
            "sh",
            "-c",
            r#"trap '' TERM; touch "$DIR/ready"; while :; do sleep 0.05; done"#,
        ]);
    let agent = start(cmd, true);
    wait_for_file(&scratch.path("ready"));
    let sent = Instant::now();
    kill(agent.pid, "TERM");
    let out = agent.wait();
    let took = sent.elapsed();
    assert_code(&out, 128 + 9);
    assert!(took >= Duration::from_secs(1), "killed too early: {took:?}");
    assert!(took < Duration::from_secs(10), "killed too late: {took:?}");
    let (_, stderr) = text(&out);
    assert!(
        stderr.contains("did not exit within the stop timeout"),
        "{stderr}"
    );
}

#[test]
fn as_pid1_orphaned_grandchildren_are_reaped() {
    let scratch = Scratch::new();
    let mut cmd = agent_as_pid1();
    // Three grandchildren are orphaned at once (their parent subshell exits) and exit
    // after recording their pid. The app then waits, with a deadline, for each pid to
    // disappear from /proc: a zombie nobody reaps would stay there.
    cmd.env("DIR", &scratch.0).args([
        "--",
        "sh",
        "-c",
        r#"
        for i in 1 2 3; do ( sh -c 'echo $$ > "$DIR/orphan.$0"' $i & ); done
        n=0; while [ ! -s "$DIR/orphan.1" ] || [ ! -s "$DIR/orphan.2" ] || [ ! -s "$DIR/orphan.3" ]; do
          n=$((n+1)); [ $n -gt 200 ] && exit 10; sleep 0.02; done
        n=0; for i in 1 2 3; do p=$(cat "$DIR/orphan.$i");
          while [ -e "/proc/$p" ]; do n=$((n+1)); [ $n -gt 250 ] && { grep State "/proc/$p/status" > "$DIR/zombie"; exit 11; }; sleep 0.02; done; done
        ps -eo stat= > "$DIR/states"
        exit 0
        "#,
    ]);
    let agent = start(cmd, true);
    let out = agent.wait();
    let zombie = std::fs::read_to_string(scratch.path("zombie")).unwrap_or_default();
    assert_code(&out, 0);
    assert!(zombie.is_empty(), "{zombie}");
    let states = std::fs::read_to_string(scratch.path("states")).unwrap();
    assert!(
        !states.lines().any(|s| s.starts_with('Z')),
        "<defunct> left: {states}"
    );
}

#[test]
fn as_pid1_a_signal_death_exits_128_plus_n() {
    let mut cmd = agent_as_pid1();
    cmd.args(["--", "sh", "-c", "kill -USR1 $$"]);
    let out = run(cmd);
    assert_code(&out, 128 + 10);
}

#[test]
fn without_pid1_processes_left_behind_are_ended_and_reaped() {
    let scratch = Scratch::new();
    let mut cmd = agent();
    // One leftover in the app's group, one that left it with setsid.
    cmd.env("DIR", &scratch.0).args([
        "--",
        "sh",
        "-c",
        r#"sleep 300 & echo $! > "$DIR/in-group"; setsid sleep 300 & echo $! > "$DIR/own-session"; exit 3"#,
    ]);
    let started = Instant::now();
    let out = run(cmd);
    assert_code(&out, 3);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    for f in ["in-group", "own-session"] {
        let pid: i32 = std::fs::read_to_string(scratch.path(f))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(!pid_alive(pid), "{f} process {pid} is still there");
    }
}

#[test]
fn the_stop_signal_is_rewritten_and_stdin_is_passed_through() {
    let scratch = Scratch::new();
    let mut cmd = agent();
    cmd.env("DIR", &scratch.0)
        .env("DECKHAND_STOP_SIGNAL", "SIGQUIT")
        .args([
            "--",
            "sh",
            "-c",
            r#"trap 'exit 5' QUIT; trap 'exit 6' TERM; touch "$DIR/ready"; while :; do sleep 0.05; done"#,
        ]);
    let running = start(cmd, false);
    wait_for_file(&scratch.path("ready"));
    kill(running.pid, "TERM");
    assert_code(&running.wait(), 5);

    let mut cmd = agent();
    cmd.args(["--", "cat"]);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"through the agent\n").unwrap();
    }
    let out = wait_output(child, RUN_LIMIT);
    assert_code(&out, 0);
    assert_eq!(text(&out).0, "through the agent\n");
}

/// A shell starts background jobs with SIGINT and SIGQUIT ignored, and an ignored signal
/// stays ignored across exec: an agent started so must still give its app the default
/// disposition of every signal it forwards (a shell app could not even trap it
/// otherwise). Found when the whole test command ran as a background job.
#[test]
fn signals_ignored_when_the_agent_started_are_not_ignored_in_the_app() {
    let scratch = Scratch::new();
    let mut cmd = testkit::clean_command("sh");
    cmd.envs(testkit::aws_env())
        .env("DIR", &scratch.0)
        .env("AGENT", AGENT)
        .env("DECKHAND_STOP_SIGNAL", "SIGQUIT")
        .args([
            "-c",
            r#"trap '' INT QUIT HUP; exec "$AGENT" -- sh -c 'trap "exit 5" QUIT; trap "exit 6" TERM; touch "$DIR/ready"; while :; do sleep 0.05; done'"#,
        ]);
    let running = start(cmd, false);
    wait_for_file(&scratch.path("ready"));
    kill(running.pid, "TERM");
    assert_code(&running.wait(), 5);
}

#[test]
fn other_signals_are_forwarded_to_the_app_or_its_group() {
    let scratch = Scratch::new();
    let mut cmd = agent();
    cmd.env("DIR", &scratch.0)
        .env("DECKHAND_SIGNAL_GROUP", "true")
        .args([
            "--",
            "sh",
            "-c",
            // The grandchild gets USR2 only when signals go to the whole group.
            r#"sh -c 'trap "touch \"$DIR/grandchild-usr2\"; exit 0" USR2; touch "$DIR/gc-ready"; while :; do sleep 0.05; done' &
               trap 'touch "$DIR/hup"' HUP; trap 'touch "$DIR/usr2"' USR2; trap 'exit 0' TERM
               touch "$DIR/ready"; while :; do sleep 0.05; done"#,
        ]);
    let agent = start(cmd, false);
    wait_for_file(&scratch.path("ready"));
    wait_for_file(&scratch.path("gc-ready"));
    kill(agent.pid, "USR2");
    wait_for_file(&scratch.path("usr2"));
    wait_for_file(&scratch.path("grandchild-usr2"));
    kill(agent.pid, "HUP");
    wait_for_file(&scratch.path("hup"));
    kill(agent.pid, "TERM");
    assert_code(&agent.wait(), 0);
}

// ---------------------------------------------------------------------------------
// Rotation
// ---------------------------------------------------------------------------------

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_secret_restarts_the_app_with_the_new_value() {
    let client = sm("us-east-1").await;
    let (name, _) = create_secret(&client, "rotate", r#"{"token":"first-token-1"}"#).await;
    let scratch = Scratch::new();
    let log = scratch.path("starts");
    let mut cmd = agent();
    cmd.env("DIR", &scratch.0)
        .env("TOKEN", format!("secretsmanager:{name}:token"))
        .env("DECKHAND_REFRESH_INTERVAL", "1s")
        .args([
            "--",
            "sh",
            "-c",
            r#"echo "$TOKEN" >> "$DIR/starts"; echo "started with $TOKEN"; trap 'exit 0' TERM; while :; do sleep 0.05; done"#,
        ]);
    let agent = start(cmd, false);
    assert!(testkit::wait_until(Duration::from_secs(15), || lines(&log)
        .len()
        == 1));
    client
        .put_secret_value()
        .secret_id(&name)
        .secret_string(r#"{"token":"second-token-2"}"#)
        .send()
        .await
        .unwrap();
    assert!(
        testkit::wait_until(Duration::from_secs(15), || lines(&log).len() == 2),
        "no restart: {:?}",
        lines(&log)
    );
    assert_eq!(lines(&log), ["first-token-1", "second-token-2"]);
    kill(agent.pid, "TERM");
    let out = tokio::task::spawn_blocking(move || agent.wait())
        .await
        .unwrap();
    assert_code(&out, 0);
    let (stdout, stderr) = text(&out);
    assert!(stderr.contains("TOKEN"), "{stderr}");
    assert!(!stderr.contains("second-token-2") && !stdout.contains("second-token-2"));
    // Both runs of the app went through the log pipeline, each value redacted: the
    // sanitizer learned the rotated one before the app was restarted with it.
    assert_eq!(
        stdout.matches("started with [REDACTED]").count(),
        2,
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_secret_can_signal_the_app_instead() {
    let client = sm("us-east-1").await;
    let (name, _) = create_secret(&client, "rotate", "value-one-1").await;
    let scratch = Scratch::new();
    let mut cmd = agent();
    cmd.env("DIR", &scratch.0)
        .env("V", format!("secretsmanager:{name}"))
        .env("DECKHAND_REFRESH_INTERVAL", "1s")
        .env("DECKHAND_ON_ROTATE", "signal:SIGHUP")
        .args([
            "--",
            "sh",
            "-c",
            r#"echo start >> "$DIR/events"; trap 'echo hup >> "$DIR/events"' HUP; trap 'exit 0' TERM; while :; do sleep 0.05; done"#,
        ]);
    let agent = start(cmd, false);
    let events = scratch.path("events");
    assert!(testkit::wait_until(Duration::from_secs(15), || lines(
        &events
    )
    .len()
        == 1));
    client
        .put_secret_value()
        .secret_id(&name)
        .secret_string("value-two-2")
        .send()
        .await
        .unwrap();
    assert!(
        testkit::wait_until(Duration::from_secs(15), || lines(&events)
            == ["start", "hup"]),
        "{:?}",
        lines(&events)
    );
    kill(agent.pid, "TERM");
    let out = tokio::task::spawn_blocking(move || agent.wait())
        .await
        .unwrap();
    assert_code(&out, 0);
}

#[test]
fn the_help_names_every_variable() {
    let out = Command::new(AGENT).arg("--help").output().unwrap();
    assert_code(&out, 0);
    let help = text(&out).0;
    for v in [
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
    ] {
        assert!(help.contains(v), "--help lacks {v}");
    }
}

/// The README's configuration table lists every flag with its variable and default.
#[test]
fn the_readme_documents_every_option() {
    use clap::CommandFactory;
    testkit::assert_readme_documents(agent::config::Args::command(), "## `agent`");
}

// ---------------------------------------------------------------------------------
// Fault matrix: a slow secrets endpoint, many agents at once
// ---------------------------------------------------------------------------------

/// The tests below that time one agent against a deadline hold this shared; the
/// 50-agent test holds it alone. Fifty agents starting on 2 cores starve any other agent
/// of CPU for seconds (measured: 0.9 s from the secrets deadline starting to the request
/// being sent), which would turn a measurement of the deadline into one of the load.
static TIMING: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// The secrets endpoint answers every request D after it arrived, against
/// `DECKHAND_SECRETS_TIMEOUT=2s`. The SDK's own attempt timeout (4 s) is longer than
/// both delays and its retries are off, so there is one request and the outcome is the
/// deadline's alone. The deadline starts after the agent's start-up and before its
/// request, so an answer sent less than 2 s after the spawn is surely in time: 1.2 s
/// leaves 0.8 s for start-up and sending under load (the figure prints what was left).
/// 2.5 s comes after the deadline however fast the agent is.
#[tokio::test(flavor = "multi_thread")]
async fn a_secrets_endpoint_just_under_the_deadline_works_and_just_over_exits_69() {
    const TIMEOUT: &str = "2s";
    let deadline = Duration::from_secs(2);
    let _timing = TIMING.read().await;
    let client = sm("us-east-1").await;
    let value = format!("slow-value-{}", testkit::unique_name("v"));
    let (name, _) = create_secret(&client, "deadline", &value).await;
    // One agent against an endpoint that answers `delay` late: its output, how long it
    // ran, when its request arrived (after the spawn), its scratch dir.
    let attempt = |delay: Duration| {
        let name = name.clone();
        async move {
            let (endpoint, arrivals) = delaying_proxy(delay).await;
            let scratch = Scratch::new();
            let mut cmd = agent();
            cmd.env("AWS_ENDPOINT_URL", &endpoint)
                .env("DECKHAND_SECRETS_TIMEOUT", TIMEOUT)
                .env("DB_PASSWORD", format!("secretsmanager:{name}"));
            app_writing_env(&mut cmd, &scratch);
            let started = Instant::now();
            let out = run_async(cmd).await;
            let took = started.elapsed();
            let arrivals: Vec<Duration> = arrivals
                .lock()
                .unwrap()
                .iter()
                .map(|at| at.duration_since(started))
                .collect();
            assert_eq!(arrivals.len(), 1, "one request, not retried: {arrivals:?}");
            (out, took, arrivals[0], scratch)
        }
    };

    // Just under: the app starts with the value.
    let under = Duration::from_millis(1200);
    let (out, took, arrived, scratch) = attempt(under).await;
    assert_code(&out, 0);
    assert_eq!(var(&app_env(&scratch), "DB_PASSWORD"), Some(value.as_str()));
    assert!(took >= under, "the answer was not delayed: {took:?}");
    // The deadline ends 2 s after a moment later than the spawn: this much of it at
    // least was still left when the answer went out.
    let left = deadline.saturating_sub(arrived + under);
    eprintln!(
        "figure: secrets endpoint answering {under:?} late, DECKHAND_SECRETS_TIMEOUT={TIMEOUT}: \
         exit 0 with the value after {took:.2?}; request sent {arrived:.2?} after the spawn, \
         at least {left:.2?} of the deadline left"
    );

    // Just over: exit 69 at the deadline, the app never runs.
    let over = Duration::from_millis(2500);
    let (out, took, arrived, scratch) = attempt(over).await;
    assert_refused(
        &out,
        &scratch,
        69,
        &["DB_PASSWORD", &name, &format!("within {TIMEOUT}")],
        &[&value],
    );
    let margin = Duration::from_millis(1500);
    eprintln!(
        "figure: secrets endpoint answering {over:?} late, DECKHAND_SECRETS_TIMEOUT={TIMEOUT}: \
         exit 69 after {took:.2?} (bound {:?}), app never ran; request sent {arrived:.2?} \
         after the spawn",
        deadline + margin
    );
    assert!(took >= deadline, "gave up before the deadline: {took:?}");
    assert!(
        took < deadline + margin,
        "exited {took:?} after the spawn, more than {margin:?} past the deadline"
    );
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
/// at once: they take turns on migrate's advisory lock (polled every 200–400 ms, for up
/// to `MIGRATE_LOCK_TIMEOUT`), one applies the five migrations (one of them takes a
/// second), the rest find nothing to do, and every app starts.
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
    let scratch = Scratch::new();
    let dir = scratch.path("migrations");
    std::fs::create_dir_all(&dir).unwrap();
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
        std::fs::write(dir.join(file), sql).unwrap();
    }
    let ran = scratch.path("ran");

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
                .stdout(std::fs::File::create(scratch.path(&format!("{i}.out"))).unwrap())
                .stderr(std::fs::File::create(scratch.path(&format!("{i}.err"))).unwrap());
            cmd
        })
        .collect();
    let output = |i: usize| {
        let read = |ext: &str| {
            std::fs::read_to_string(scratch.path(&format!("{i}.{ext}"))).unwrap_or_default()
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
