//! Secrets Manager references through the built agent: every reference form, whole
//! secrets, RDS secrets, failing closed, retries, container credentials, rotation, and a
//! slow secrets endpoint against the deadline. A proxy in front of moto injects the
//! faults moto does not produce.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_secretsmanager::primitives::Blob;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};

use crate::support::*;

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
    let run = run_app(cmd).await;
    let env = run.assert_started();
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
    assert_no_leak(&run.out, [&password]);
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
    let mut cmd = agent();
    cmd.env("DECKHAND_ENV_SECRETS", format!("{base},{over}"))
        .env("NODE_ENV", "staging")
        .env("DECKHAND_REQUIRED_ENV", "CLERK_SECRET_KEY,ENCRYPTION_KEY");
    let run = run_app(cmd).await;
    let env = run.assert_started();
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
    let (_, stderr) = text(&run.out);
    assert!(
        stderr.contains("NODE_ENV is set in the environment"),
        "{stderr}"
    );
    assert!(stderr.contains("SHARED is in secrets"), "{stderr}");
    assert_no_leak(
        &run.out,
        [
            "sk_live_abcdef123",
            "production",
            "from-base-1",
            "from-over-22",
        ],
    );
}

/// `NODE_ENV=production` in a whole secret is redacted all the same, and named at start
/// by variable with the reason, never with the value; a short value has its own
/// message, and `DECKHAND_REDACT_SKIP` makes it readable without a warning.
#[tokio::test(flavor = "multi_thread")]
async fn a_secret_value_that_looks_like_configuration_is_named_and_still_redacted() {
    let client = sm("us-east-1").await;
    let key = format!("key-{}", testkit::unique_name("k"));
    let (name, _) = create_secret(
        &client,
        "app/env",
        &format!(r#"{{"NODE_ENV":"production","APP_KEY":"{key}","LEVEL":"debug"}}"#),
    )
    .await;
    let printing = |skip: Option<&str>| {
        let mut cmd = agent();
        cmd.env("DECKHAND_ENV_SECRETS", &name);
        if let Some(skip) = skip {
            cmd.env("DECKHAND_REDACT_SKIP", skip);
        }
        cmd.args(["--", "sh", "-c", "echo \"mode $NODE_ENV app $APP_KEY\""]);
        cmd
    };

    let out = run_async(printing(None)).await;
    assert_code(&out, 0);
    let (stdout, stderr) = text(&out);
    assert!(
        stdout.contains("mode [REDACTED] app [REDACTED]"),
        "{stdout}"
    );
    assert!(
        stderr.contains(&format!(
            "NODE_ENV's value (from secret \"{name}\") looks like configuration, not a secret (a common word); it is redacted from logs anyway — list it in DECKHAND_REDACT_SKIP if that is intended"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("APP_KEY's value"), "{stderr}");
    // "debug" is too short to redact: named by the message that says so, not this one.
    assert!(!stderr.contains("LEVEL's value"), "{stderr}");
    assert!(stderr.contains("not redacted from logs: LEVEL"), "{stderr}");
    assert_no_leak(&out, ["production", &key]);

    let out = run_async(printing(Some("NODE_ENV"))).await;
    assert_code(&out, 0);
    let (stdout, stderr) = text(&out);
    assert!(
        stdout.contains("mode production app [REDACTED]"),
        "{stdout}"
    );
    assert!(!stderr.contains("looks like configuration"), "{stderr}");
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
    let mut cmd = agent();
    cmd.env("DECKHAND_DATABASE_SECRET", &name)
        .env("DECKHAND_DATABASE_URL_VAR", "POSTGRES_URL")
        .env("DECKHAND_DATABASE_SSLMODE", "require");
    let run = run_app(cmd).await;
    let env = run.assert_started();
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
    assert_no_leak(&run.out, [password]);
}

/// Outside the emulator AWS is HTTPS: the secret is read through TLS that the agent
/// checks against the CA bundle it is given (`SSL_CERT_FILE`, here the test CA; in the
/// image, the image's bundle). A bundle that did not sign the endpoint's certificate
/// fails the start closed at once (no retry changes the bundle: exit 78, not the
/// deadline's 69), the app never run, and says what the image needs.
#[tokio::test(flavor = "multi_thread")]
async fn secrets_are_read_over_https_checked_against_the_ca_bundle() {
    let client = sm("us-east-1").await;
    let (name, _) = create_secret(&client, "https", "over-tls-value-1").await;
    let front = testkit::net::TlsFront::start(testkit::net::moto_addr());
    let endpoint = format!("https://localhost:{}", front.addr().port());
    let with_ca = |ca: &str| {
        let mut cmd = agent();
        cmd.env("AWS_ENDPOINT_URL", &endpoint)
            .env("SSL_CERT_FILE", testkit::service_var(ca))
            .env("SECRET", format!("secretsmanager:{name}"))
            .env("DECKHAND_SECRETS_TIMEOUT", "3s");
        cmd
    };
    let env = run_app(with_ca("DECKHAND_TEST_PG_CA"))
        .await
        .assert_started();
    assert_eq!(var(&env, "SECRET"), Some("over-tls-value-1"));
    let shaken = front.handshakes();
    assert!(shaken >= 1, "{shaken} TLS handshakes");

    let run = run_app(with_ca("DECKHAND_TEST_PG_WRONG_CA")).await;
    run.assert_refused(
        78,
        &["SECRET", &name, "invalid peer certificate", "CA bundle"],
        &["over-tls-value-1"],
    );
    assert_eq!(front.handshakes(), shaken, "no handshake completes");
}

/// A secret of 60 KB that repeats itself (one character over and over): building its
/// redaction took two minutes of CPU, before the app started (aho-corasick's DFA is
/// quadratic in such a needle). Now the app starts with it, and what it prints of it
/// is redacted. Three of them are more than a program may be started with under a
/// stack limit of 600 KiB (150 KiB of arguments and environment): the kernel's E2BIG
/// was `cannot run true: Argument list too long`; it is named now with the sizes and
/// the variables that weigh most, never their values.
#[tokio::test(flavor = "multi_thread")]
async fn a_long_secret_that_repeats_itself_and_too_large_an_environment() {
    let client = sm("us-east-1").await;
    let value = "x".repeat(60_000);
    let (name, _) = create_secret(&client, "long", &value).await;
    let reference = format!("secretsmanager:{name}");

    let scratch = scratch();
    let mut cmd = agent();
    cmd.env("BIG", &reference);
    shell_app(&mut cmd, &scratch, r#"echo "length ${#BIG}: $BIG""#);
    let out = run(cmd);
    assert_code(&out, 0);
    let (stdout, _) = text(&out);
    assert!(stdout.contains("length 60000: [REDACTED"), "{stdout:.300}");
    assert!(!stdout.contains("xxxxxxxx"), "{stdout:.300}");

    let mut cmd = testkit::clean_command("sh");
    cmd.envs(testkit::aws_env())
        .args(["-c", "ulimit -s 600 && exec \"$0\" -- true", AGENT])
        .env("BIG_A", &reference)
        .env("BIG_B", &reference)
        .env("BIG_C", &reference);
    let out = run(cmd);
    assert_code(&out, 126);
    let (_, stderr) = text(&out);
    for said in [
        "cannot run true: its arguments and environment are more than Linux lets a program \
         start with (E2BIG, Argument list too long)",
        "where Linux allows 150 KiB (a quarter of the stack's limit, `ulimit -s`)",
        "the largest: BIG_A (59 KiB), BIG_B (59 KiB), BIG_C (59 KiB)",
        "Give the app fewer or smaller values",
    ] {
        assert!(stderr.contains(said), "{said:?} not in {stderr:.2000}");
    }
    assert!(!stderr.contains("xxxxxxxx"), "{stderr:.2000}");
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
        let mut cmd = agent();
        cmd.env(variable, &reference)
            .env("OK", format!("secretsmanager:{json}:present"));
        run_app(cmd)
            .await
            .assert_refused(78, &[variable, &secret, why], &[value]);
    }
    // A value with a NUL byte, which no environment variable can hold (the app's start
    // refused the whole environment, exit 126, naming no variable).
    let (nul, _) = create_secret(&client, "fail", &format!("{value}\0after-nul-77")).await;
    let mut cmd = agent();
    cmd.env("WITH_NUL", format!("secretsmanager:{nul}"));
    run_app(cmd).await.assert_refused(
        78,
        &["WITH_NUL", &nul, "holds a NUL byte"],
        &[value, "after-nul-77"],
    );

    // A whole-secret expansion of a non-object, a malformed reference, a required
    // variable that nothing set.
    let mut cmd = agent();
    cmd.env("DECKHAND_ENV_SECRETS", &text_secret);
    run_app(cmd)
        .await
        .assert_refused(78, &["DECKHAND_ENV_SECRETS", &text_secret], &[value]);

    let mut cmd = agent();
    cmd.env("BROKEN", "arn:aws:secretsmanager:us-east-1:123:secret");
    run_app(cmd).await.assert_refused(
        78,
        &["BROKEN=\"arn:aws:secretsmanager:us-east-1:123:secret\" is not valid"],
        &[],
    );

    let mut cmd = agent();
    cmd.env("DECKHAND_REQUIRED_ENV", "PRESENT,SESSION_SECRET")
        .env("PRESENT", format!("secretsmanager:{json}:present"));
    run_app(cmd)
        .await
        .assert_refused(78, &["SESSION_SECRET is required"], &[value]);
}

#[tokio::test(flavor = "multi_thread")]
async fn aws_out_of_reach_exits_69_at_the_deadline() {
    let mut cmd = agent();
    cmd.env(
        "AWS_ENDPOINT_URL",
        format!("http://{}", testkit::net::closed_port()),
    )
    .env("DECKHAND_SECRETS_TIMEOUT", "700ms")
    .env("DB_PASSWORD", "secretsmanager:somewhere/db:password");
    let started = Instant::now();
    run_app(cmd)
        .await
        .assert_refused(69, &["DB_PASSWORD", "somewhere/db", "within 700ms"], &[]);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
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
    let mut cmd = agent();
    cmd.env("AWS_ENDPOINT_URL", &endpoint)
        .env("K", format!("secretsmanager:{name}:k"));
    let env = run_app(cmd).await.assert_started();
    assert_eq!(var(&env, "K"), Some("retried-value-1"));
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
    let addr = testkit::http::serve(move |req: Request<Incoming>| {
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
    let mut cmd = agent();
    cmd.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            format!("http://{addr}/v2/credentials/task"),
        )
        .env("AWS_CONTAINER_AUTHORIZATION_TOKEN", "test-auth-token")
        .env("V", format!("secretsmanager:{name}"));
    let env = run_app(cmd).await.assert_started();
    assert_eq!(var(&env, "V"), Some("container-creds-value-1"));
    let asked = asked.lock().unwrap();
    assert!(
        asked
            .iter()
            .any(|a| a == "/v2/credentials/task test-auth-token"),
        "{asked:?}"
    );
}

// ---------------------------------------------------------------------------------
// Rotation
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_secret_restarts_the_app_with_the_new_value() {
    let client = sm("us-east-1").await;
    let (name, _) = create_secret(&client, "rotate", r#"{"token":"first-token-1"}"#).await;
    let scratch = scratch();
    let log = scratch.join("starts");
    let mut cmd = agent();
    cmd.env("TOKEN", format!("secretsmanager:{name}:token"))
        .env("DECKHAND_REFRESH_INTERVAL", "1s");
    shell_app(
        &mut cmd,
        &scratch,
        r#"echo "$TOKEN" >> "$DIR/starts"; echo "started with $TOKEN"; trap 'exit 0' TERM; while :; do sleep 0.05; done"#,
    );
    let agent = Running::start(cmd);
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
    agent.signal("TERM");
    let out = tokio::task::spawn_blocking(move || agent.wait())
        .await
        .unwrap();
    assert_code(&out, 0);
    let (stdout, stderr) = text(&out);
    assert!(stderr.contains("TOKEN"), "{stderr}");
    assert_no_leak(&out, ["second-token-2"]);
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
    let scratch = scratch();
    let mut cmd = agent();
    cmd.env("V", format!("secretsmanager:{name}"))
        .env("DECKHAND_REFRESH_INTERVAL", "1s")
        .env("DECKHAND_ON_ROTATE", "signal:SIGHUP");
    shell_app(
        &mut cmd,
        &scratch,
        r#"echo start >> "$DIR/events"; trap 'echo hup >> "$DIR/events"' HUP; trap 'exit 0' TERM; while :; do sleep 0.05; done"#,
    );
    let agent = Running::start(cmd);
    let events = scratch.join("events");
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
    agent.signal("TERM");
    let out = tokio::task::spawn_blocking(move || agent.wait())
        .await
        .unwrap();
    assert_code(&out, 0);
}

// ---------------------------------------------------------------------------------
// A slow secrets endpoint against the deadline
// ---------------------------------------------------------------------------------

/// The secrets endpoint answers every request D after it arrived, against
/// `DECKHAND_SECRETS_TIMEOUT=2s`. The SDK's own attempt timeout (4 s) is longer than
/// both delays and its retries are off, so there is one request and the outcome is the
/// deadline's alone. The deadline starts after the agent's start-up and before its
/// request, so an answer sent less than 2 s after the spawn is surely in time: 1 s
/// leaves 1 s for start-up and sending under load (the figure prints what was left).
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
            let scratch = scratch();
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

    // Under: the app starts with the value.
    let under = Duration::from_millis(1000);
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
    // The answer would come 2.5 s after the request; an exit 69 is already the proof
    // that the deadline, not the answer, ended the wait; the margin only bounds how
    // promptly.
    let margin = Duration::from_millis(2500);
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
