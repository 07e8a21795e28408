//! The agent with its log pipeline, against the moto server (CloudWatch Logs, Secrets
//! Manager) that `scripts/services` starts: the app's output in CloudWatch, sanitized,
//! in order, complete across SIGTERM and an outage; access denied; hostile input. A
//! CloudWatch Logs double (testkit's) stands in for the faults moto cannot produce.
//!
//! Each test uses its own log group, secret names and temporary directory.

use std::collections::BTreeSet;
use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_cloudwatchlogs::Client as Logs;
use serde_json::Value;
use testkit::http::{LogsDouble, Outcome, THROTTLING};
use testkit::net::{ProxyMode, TcpProxy};

use crate::support::*;

// ---------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------

/// The SDK's configuration for moto, in the services' region.
async fn aws() -> aws_config::SdkConfig {
    sdk_config(&testkit::service_var("AWS_REGION")).await
}

/// The agent with a clean environment, the moto variables and a log group of its own.
fn shipping_agent(group: &str) -> Command {
    let mut cmd = agent();
    cmd.env("CLOUDWATCH_LOG_GROUP", group)
        .env("CLOUDWATCH_LOG_STREAM", "app")
        .env("DECKHAND_LOG_FLUSH", "200ms");
    cmd
}

/// Runs to completion within [`LOG_RUN_LIMIT`].
fn run_shipping(cmd: Command) -> Output {
    run_within(cmd, LOG_RUN_LIMIT)
}

async fn read_stream(client: &Logs, group: &str, stream: &str) -> Vec<(i64, String)> {
    testkit::log_events(client, group, stream).await
}

/// The app's events (the agent's own, `"source":"agent"`, and metrics left out).
fn app_events(events: &[(i64, String)]) -> Vec<(i64, Value)> {
    events
        .iter()
        .map(|(ts, m)| {
            (
                *ts,
                serde_json::from_str::<Value>(m).expect("events are JSON"),
            )
        })
        .filter(|(_, v)| v.get("source").is_none() && v.get("_aws").is_none())
        .collect()
}

/// The number of an app line `line N`, from the line or its JSON event's `message`.
fn line_number(message: &str) -> Option<u64> {
    message.strip_prefix("line ")?.parse().ok()
}

/// The numbered lines (`line N`) among the app's events, in stream order.
fn numbers(events: &[(i64, String)]) -> Vec<u64> {
    app_events(events)
        .iter()
        .filter_map(|(_, v)| line_number(v["message"].as_str()?))
        .collect()
}

/// The anonymous resident memory of a process (heap and stacks, not the mapped
/// binary, which a debug build makes large), in KiB.
fn rss_kib(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("RssAnon:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A secret with a unique name under `logs/`; returns the name.
async fn create_logs_secret(sdk: &aws_config::SdkConfig, value: &str) -> String {
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    create_secret(&client, "logs", value).await.0
}

fn group_name() -> String {
    format!("/deckhand/test/{}", testkit::unique_name("agent"))
}

/// Every message of a stream as one text, for leak checks.
fn all_text(events: &[(i64, String)]) -> String {
    events
        .iter()
        .map(|(_, m)| m.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Asserts `needle` is nowhere: not in CloudWatch, the agent's stdout or its stderr
/// (as they are, not decoded).
#[track_caller]
fn assert_nowhere(needle: &str, events: &[(i64, String)], out: &Output) {
    testkit::leaks::assert_absent(
        &[
            ("CloudWatch", &all_text(events)),
            ("stdout", &String::from_utf8_lossy(&out.stdout)),
            ("stderr", &String::from_utf8_lossy(&out.stderr)),
        ],
        [needle],
    );
}

/// An app that writes `ready` once its output is out, and `term` when SIGTERM reaches
/// it, then exits 0.
fn trapping_app(scratch: &Scratch, produce: &str) -> String {
    format!(
        r#"trap 'echo > {term}; exit 0' TERM
{produce}
echo > {ready}
while :; do sleep 0.05; done"#,
        term = scratch.join("term").display(),
        ready = scratch.join("ready").display(),
    )
}

// ---------------------------------------------------------------------------------
// The app's output in CloudWatch
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn app_output_arrives_structured_sanitized_and_in_order() {
    let sdk = aws().await;
    // Longer than the 50 bytes Node's `console.log` shows of a `Buffer`.
    let password = format!(
        "Pw-{}-x/y+z-{}",
        testkit::unique_name("s"),
        "0123456789".repeat(4)
    );
    let secret = create_logs_secret(&sdk, &password).await;
    let group = group_name();
    let three_days_ago = {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        (now.as_millis() as i64) - 3 * 24 * 3600 * 1000
    };
    let three_hours_ahead = three_days_ago + 3 * 24 * 3600 * 1000 + 3 * 3600 * 1000;
    let script = format!(
        r#"
echo '{{"level":"warn","msg":"json line","n":1}}'
echo 'text line 2'
echo "connecting with $DB_PASSWORD"
printf 'base64 %s\n' "$(printf %s "$DB_PASSWORD" | base64 -w0)"
printf 'bytes [%s]\n' "$(printf %s "$DB_PASSWORD" | od -An -v -tu1 | tr -s ' \n' '  ' | sed 's/^ //; s/ $//')"
printf 'AUTH PLAIN %s\n' "$(printf '\000app\000%s' "$DB_PASSWORD" | base64 -w0)"
printf 'hex %s\n' "$(printf %s "$DB_PASSWORD" | od -An -v -tx1 | tr -d ' \n')"
printf '<Buffer %s ... %s more bytes>\n' "$(printf %s "$DB_PASSWORD" | head -c 50 | od -An -v -tx1 | tr -s ' \n' '  ' | sed 's/^ //; s/ $//')" "$(( ${{#DB_PASSWORD}} - 50 ))"
echo 'card 4111 1111 1111 1111 and 4111 1111 1111 1112' >&2
echo 'reset your password to continue'
printf 'bad \377 byte and nul \000 here\n'
echo '{{"ts":{three_days_ago},"msg":"from three days ago"}}'
echo '{{"ts":{three_hours_ahead},"msg":"from three hours ahead"}}'
exit 3
"#
    );
    let mut cmd = shipping_agent(&group);
    cmd.env("DB_PASSWORD", format!("secretsmanager:{secret}"))
        // The exit's waits (the agent's messages into the pipeline, the stdout copy,
        // stderr) end when the last line is through, not at this deadline: a missed
        // wake-up would outlast the run's limit.
        .env("DECKHAND_STOP_TIMEOUT", "100s")
        .args(["--", "sh", "-c", &script]);
    let out = run_shipping(cmd);
    assert_code(&out, 3);

    let client = Logs::new(&sdk);
    let events = read_stream(&client, &group, "app").await;
    let all = all_text(&events);
    let b64 = {
        use std::process::Command as C;
        let o = C::new("sh")
            .args(["-c", "printf %s \"$P\" | base64 -w0"])
            .env("P", &password)
            .output()
            .unwrap();
        String::from_utf8(o.stdout).unwrap()
    };
    let hex: String = password.bytes().map(|b| format!("{b:02x}")).collect();
    let node_head: Vec<String> = password
        .bytes()
        .take(50)
        .map(|b| format!("{b:02x}"))
        .collect();
    let node_head = node_head.join(" ");
    let more = format!("<Buffer [REDACTED] ... {} more bytes>", password.len() - 50);
    for leak in [
        password.as_str(),
        b64.as_str(),
        hex.as_str(),
        node_head.as_str(),
        "4111 1111 1111 1111",
    ] {
        assert_nowhere(leak, &events, &out);
    }
    let app = app_events(&events);
    let messages: Vec<String> = app
        .iter()
        .map(|(_, v)| {
            v["message"]
                .as_str()
                .or(v["msg"].as_str())
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    // The stderr line may overtake stdout lines (two pipes); stdout keeps its order.
    let stdout_order: Vec<&str> = messages
        .iter()
        .map(String::as_str)
        .filter(|m| !m.starts_with("card"))
        .collect();
    assert_eq!(
        stdout_order,
        [
            "json line",
            "text line 2",
            "connecting with [REDACTED]",
            "base64 [REDACTED]",
            // Its bytes as Go's `%v` lists them.
            "bytes [[REDACTED]]",
            // Base64 of `\0app\0` and the password: the first six characters hold
            // only `\0app`'s bits.
            "AUTH PLAIN AGFwcA[REDACTED]",
            "hex [REDACTED]",
            more.as_str(),
            "reset your password to continue",
            "bad \u{fffd} byte and nul \u{0} here",
            "from three days ago",
            "from three hours ahead",
        ],
        "{all}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m == "card [REDACTED] and 4111 1111 1111 1112"),
        "a Luhn-valid card is redacted, an invalid one left alone: {messages:?}"
    );
    // A JSON line keeps its own fields; a text line gets timestamp and stream, and a
    // level only when it states one (neither of these does).
    let (_, json) = &app[0];
    assert_eq!(
        (json["n"].as_i64(), json["level"].as_str()),
        (Some(1), Some("warn"))
    );
    let text = app
        .iter()
        .find(|(_, v)| v["message"] == "text line 2")
        .unwrap();
    assert_eq!(text.1["stream"], "stdout");
    assert!(text.1["timestamp"].is_string());
    assert_eq!(text.1.get("level"), None);
    let card = app
        .iter()
        .find(|(_, v)| v["message"].as_str().is_some_and(|m| m.starts_with("card")))
        .unwrap();
    assert_eq!(card.1["stream"], "stderr");
    assert_eq!(card.1.get("level"), None, "stderr is no error by itself");
    // Three days old is outside what the service accepts: receive time instead.
    let old = app
        .iter()
        .find(|(_, v)| v["msg"] == "from three days ago")
        .unwrap();
    assert!(
        old.0 > three_days_ago + 2 * 24 * 3600 * 1000,
        "the event kept a timestamp the service would reject"
    );
    let ahead = app
        .iter()
        .find(|(_, v)| v["msg"] == "from three hours ahead")
        .unwrap();
    assert!(
        ahead.0 < three_hours_ahead - 2 * 3600 * 1000,
        "the event kept a timestamp the service would reject"
    );
    // The agent's own messages are in the stream too, marked.
    assert!(
        events
            .iter()
            .any(|(_, m)| m.starts_with(r#"{"source":"agent""#) && m.contains("the app exited")),
        "no agent event in the stream: {all}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_a_flood_ships_every_line_before_exit() {
    let sdk = aws().await;
    let group = group_name();
    let scratch = scratch();
    let mut cmd = shipping_agent(&group);
    shell_app(
        &mut cmd,
        &scratch,
        r#"i=0; trap 'echo $i > "$DIR/last"; exit 7' TERM; while :; do echo "line $i"; i=$((i+1)); done"#,
    );
    let running = Running::start(cmd);
    let client = Logs::new(&sdk);
    // In the middle of the flood: some lines are already in CloudWatch.
    assert!(
        testkit::wait_until_async(Duration::from_secs(20), || async {
            numbers(&read_stream(&client, &group, "app").await).len() > 1000
        })
        .await,
        "no lines arrived"
    );
    running.signal("TERM");
    let out = running.wait_within(LOG_RUN_LIMIT);
    assert_code(&out, 7);
    let last: u64 = std::fs::read_to_string(scratch.join("last"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let got = numbers(&read_stream(&client, &group, "app").await);
    // The trap may run between `echo "line $i"` and `i=$((i+1))`: line `last` may exist.
    let n = got.len() as u64;
    assert!(n == last || n == last + 1, "{n} lines for {last} written");
    assert!(
        got == (0..n).collect::<Vec<_>>(),
        "lines lost, duplicated or out of order"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cloudwatch_unreachable_for_ten_seconds_loses_nothing() {
    let sdk = aws().await;
    let group = group_name();
    // CloudWatch behind a proxy that the test takes down.
    let switch = TcpProxy::start(testkit::net::moto_addr().to_string(), ProxyMode::Forward);
    let scratch = scratch();
    let mut cmd = shipping_agent(&group);
    // The app writes a line every 20 ms until the test says stop.
    cmd.env("AWS_ENDPOINT_URL", format!("http://{}", switch.addr()));
    shell_app(
        &mut cmd,
        &scratch,
        r#"i=0; while [ ! -e "$DIR/stop" ]; do echo "line $i"; i=$((i+1)); sleep 0.02; done; echo $i > "$DIR/last""#,
    );
    let running = Running::start(cmd);
    let client = Logs::new(&sdk);
    let arrived = || async { numbers(&read_stream(&client, &group, "app").await).len() };
    assert!(
        testkit::wait_until_async(Duration::from_secs(20), || async { arrived().await > 10 }).await
    );
    switch.set(ProxyMode::Down);
    // The outage itself is the scenario: ten seconds of refused connections.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let during = arrived().await;
    switch.set(ProxyMode::Forward);
    std::fs::write(scratch.join("stop"), "").unwrap();
    let out = running.wait_within(LOG_RUN_LIMIT);
    assert_code(&out, 0);
    let last: u64 = std::fs::read_to_string(scratch.join("last"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        last as usize > during + 100,
        "the app wrote during the outage"
    );
    // The outage is said once it has lasted (six retries in a row: 3 to 6 s), and
    // its end, each once; the retries themselves are not.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr
            .matches("CloudWatch Logs calls keep failing (6 retries in a row; the last: ")
            .count(),
        1,
        "{stderr}"
    );
    assert_eq!(
        stderr
            .matches("shipping to CloudWatch Logs works again")
            .count(),
        1,
        "{stderr}"
    );
    let got = numbers(&read_stream(&client, &group, "app").await);
    assert_eq!(
        got,
        (0..last).collect::<Vec<_>>(),
        "lines lost, duplicated or reordered"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn access_denied_keeps_the_app_running_with_its_lines_on_stdout() {
    // A CloudWatch Logs endpoint that refuses everything: access denied.
    let denying = LogsDouble::start(|_, _| {
        Outcome::Fail(
            400,
            r#"{"__type":"AccessDeniedException","message":"User is not authorized to perform: logs:CreateLogStream"}"#,
        )
    })
    .await;
    let group = group_name();
    let mut cmd = shipping_agent(&group);
    cmd.env("AWS_ENDPOINT_URL", &denying.url)
        .env("DECKHAND_LOG_STDOUT", "json")
        .env("DECKHAND_STOP_TIMEOUT", "20s")
        .args([
            "--",
            "sh",
            "-c",
            "for i in 1 2 3; do echo \"line $i\"; done; exit 4",
        ]);
    let started = std::time::Instant::now();
    let out = run_shipping(cmd);
    assert_code(&out, 4);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("stdout lines are JSON events"))
        .collect();
    let messages: Vec<&str> = lines.iter().filter_map(|v| v["message"].as_str()).collect();
    assert_eq!(messages, ["line 1", "line 2", "line 3"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("cannot ship logs to CloudWatch").count(),
        1,
        "reported once: {stderr}"
    );
    assert!(stderr.contains("AccessDenied"), "{stderr}");
    // The count of what was not shipped says why.
    let unshipped = stderr
        .lines()
        .find(|l| l.contains("could not be shipped"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        unshipped.contains("(the calls were failing: ") && unshipped.contains("AccessDenied"),
        "{unshipped}"
    );
    assert!(!denying.calls().is_empty());
    // Nothing can be shipped: the agent does not sit out the stop timeout.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the exit waited {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_redaction_pattern_stops_the_start_naming_it() {
    let scratch = scratch();
    let mut cmd = bare_agent();
    cmd.env("DECKHAND_REDACT_PATTERNS", "ok-[0-9]+,broken(")
        .env("OUT", scratch.join("ran"))
        .args(["--", "sh", "-c", "touch \"$OUT\""]);
    let out = run_shipping(cmd);
    assert_code(&out, 78);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("DECKHAND_REDACT_PATTERNS") && stderr.contains("broken("),
        "{stderr}"
    );
    assert!(!scratch.join("ran").exists(), "the app ran");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_start_ships_its_error_to_cloudwatch() {
    let sdk = aws().await;
    let group = group_name();
    let mut cmd = shipping_agent(&group);
    cmd.env("API_KEY", "secretsmanager:logs/does-not-exist-at-all")
        .args(["--", "true"]);
    let out = run_shipping(cmd);
    assert_code(&out, 78);
    let events = read_stream(&Logs::new(&sdk), &group, "app").await;
    assert!(
        events
            .iter()
            .any(|(_, m)| m.contains(r#""source":"agent""#) && m.contains("API_KEY")),
        "{events:?}"
    );
}

/// All the lines of two streams arrive, none twice (set semantics over 20,000 lines on
/// both pipes at once).
#[tokio::test(flavor = "multi_thread")]
async fn both_pipes_at_once_lose_nothing() {
    let sdk = aws().await;
    let group = group_name();
    let mut cmd = shipping_agent(&group);
    cmd.args([
        "--",
        "sh",
        "-c",
        r#"(i=0; while [ $i -lt 10000 ]; do echo "line $i"; i=$((i+1)); done) & (i=10000; while [ $i -lt 20000 ]; do echo "line $i" >&2; i=$((i+1)); done); wait"#,
    ]);
    assert_code(&run_shipping(cmd), 0);
    let got = numbers(&read_stream(&Logs::new(&sdk), &group, "app").await);
    let set: BTreeSet<u64> = got.iter().copied().collect();
    assert_eq!(got.len(), 20_000, "duplicates or losses");
    assert_eq!(set, (0..20_000).collect::<BTreeSet<_>>());
}

/// The app writes far faster than CloudWatch accepts: the agent's memory stays near its
/// buffer bound, the app is never blocked (drop-oldest), and the drops are counted and
/// reported in the stream.
#[tokio::test(flavor = "multi_thread")]
async fn an_app_faster_than_shipping_stays_within_the_buffer_and_drops_are_counted() {
    // A CloudWatch Logs endpoint that takes 400 ms to accept each PutLogEvents call.
    let slow = LogsDouble::start(|operation, _| match operation {
        "PutLogEvents" => Outcome::AcceptAfter(Duration::from_millis(400)),
        _ => Outcome::Accept,
    })
    .await;
    let group = group_name();
    let mut cmd = shipping_agent(&group);
    // About 60 MB of lines, 15 times the buffer.
    cmd.env("AWS_ENDPOINT_URL", &slow.url)
        .env("DECKHAND_LOG_BUFFER", "4MiB")
        .env("DECKHAND_STOP_TIMEOUT", "3s")
        .args([
            "--",
            "sh",
            "-c",
            "yes 'a line of an app that logs far too much, padded to about one hundred bytes ....' | head -n 600000",
        ]);
    let running = Running::start(cmd);
    let pid = running.pid();
    let mut peak = 0;
    let _ = testkit::wait_until(LOG_RUN_LIMIT, || {
        match rss_kib(pid) {
            Some(kib) => {
                peak = peak.max(kib);
                false
            }
            None => true, // exited
        }
    });
    let out = running.wait_within(LOG_RUN_LIMIT);
    assert_code(&out, 0);
    // Without the bound the agent would hold ~60 MB; with it, the buffer (4 MiB) plus
    // the batches in flight (1 MiB each) and the agent itself.
    eprintln!("agent anonymous RSS peak: {peak} KiB");
    assert!(peak < 32 * 1024, "agent memory peaked at {peak} KiB");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("dropped because the log buffer was full"),
        "drops not reported: {stderr}"
    );
    let accepted = slow.accepted.lock().unwrap();
    assert!(
        accepted
            .iter()
            .any(|m| m.contains(r#""reason":"buffer_full""#)),
        "no drop summary event was shipped"
    );
}

/// `DECKHAND_REDACT_SKIP` leaves a loaded configuration value readable; every other
/// loaded value is still redacted, on stdout as in CloudWatch.
#[tokio::test(flavor = "multi_thread")]
async fn redact_skip_keeps_configuration_values_readable() {
    let sdk = aws().await;
    let mode = format!("production-{}", testkit::unique_name("m"));
    let key = format!("sk_live_{}", testkit::unique_name("k"));
    let secret = create_logs_secret(
        &sdk,
        &serde_json::json!({ "NODE_ENV": mode, "STRIPE_KEY": key }).to_string(),
    )
    .await;
    let mut cmd = agent();
    cmd.env("DECKHAND_ENV_SECRETS", &secret)
        .env("DECKHAND_REDACT_SKIP", "NODE_ENV")
        .args(["--", "sh", "-c", "echo \"mode $NODE_ENV key $STRIPE_KEY\""]);
    let out = run_shipping(cmd);
    assert_code(&out, 0);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let event: Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(event["message"], format!("mode {mode} key [REDACTED]"));
    assert!(!String::from_utf8_lossy(&out.stderr).contains(&key));
}

// ---------------------------------------------------------------------------------
// Hostile and odd input: every case of the issue that reproduced against the built
// agent, each with its own group and secrets.
// ---------------------------------------------------------------------------------

/// Case 1: a JSON line whose timestamp holds a non-ASCII character used to panic the
/// capture task; the app then died of SIGPIPE and every later line was lost.
#[tokio::test(flavor = "multi_thread")]
async fn a_line_that_once_panicked_is_shipped_and_the_app_lives_on() {
    let sdk = aws().await;
    let group = group_name();
    let script = r#"
echo '{"time":"2026-11-22T10:30:0é","msg":"odd stamp"}'
echo '{"time":"2026-11-22T10:30:0é"}' >&2
i=0; while [ $i -lt 100 ]; do echo "line $i"; i=$((i+1)); done
exit 0
"#;
    let mut cmd = shipping_agent(&group);
    cmd.args(["--", "sh", "-c", script]);
    let out = run_shipping(cmd);
    assert_code(&out, 0);
    let events = read_stream(&Logs::new(&sdk), &group, "app").await;
    assert_eq!(numbers(&events), (0..100).collect::<Vec<_>>());
    let odd = app_events(&events)
        .into_iter()
        .filter(|(_, v)| v["msg"] == "odd stamp")
        .count();
    assert_eq!(odd, 1, "the line itself is shipped: {}", all_text(&events));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    // The app's date, not its time: the agent's own messages are stamped, and at
    // 10:30:0x UTC their stamps hold "10:30:0" too.
    assert!(
        !stderr.contains("2026-11-22"),
        "no app text on stderr: {stderr}"
    );
}

/// Case 2: a value stored from a file ends in a newline; a multi-line value (a
/// pretty-printed JSON credential) is printed line by line.
#[tokio::test(flavor = "multi_thread")]
async fn secrets_with_a_trailing_newline_or_several_lines_are_redacted() {
    let sdk = aws().await;
    let unique = testkit::unique_name("nl").replace('-', "");
    let token = format!("tok{unique}abcdef");
    let key = format!("pk{unique}longvalue");
    let token_secret = create_logs_secret(&sdk, &format!("{token}\n")).await;
    let cred = format!("{{\n  \"client_id\": \"cid-{unique}\",\n  \"private\": \"{key}\"\n}}\n");
    let cred_secret = create_logs_secret(&sdk, &cred).await;
    let group = group_name();
    let mut cmd = shipping_agent(&group);
    cmd.env("TOKEN", format!("secretsmanager:{token_secret}"))
        .env("CRED", format!("secretsmanager:{cred_secret}"))
        .env("DECKHAND_LOG_STDOUT", "json")
        .args([
            "--",
            "sh",
            "-c",
            r#"echo "token is $TOKEN"; printf 'credential:\n%s\n' "$CRED"; echo "private alone: $(printf %s "$CRED" | sed -n 3p)""#,
        ]);
    let out = run_shipping(cmd);
    assert_code(&out, 0);
    let events = read_stream(&Logs::new(&sdk), &group, "app").await;
    assert!(
        all_text(&events).contains("token is"),
        "{}",
        all_text(&events)
    );
    assert_nowhere(&token, &events, &out);
    assert_nowhere(&key, &events, &out);
}

/// Case 3: other escape styles of JSON and percent-encoding, and a value with `"` and
/// `\` escaped twice inside a text line.
#[tokio::test(flavor = "multi_thread")]
async fn every_escape_style_of_a_secret_is_redacted() {
    let sdk = aws().await;
    let unique = testkit::unique_name("esc").replace('-', "");
    let amp = format!("Pa&ss<word>123/x{unique}");
    let quote = format!("q\"uo\\te{unique}");
    let amp_secret = create_logs_secret(&sdk, &amp).await;
    let quote_secret = create_logs_secret(&sdk, &quote).await;
    let group = group_name();
    let go = format!(r#"{{"msg":"login","pw":"Pa\u0026ss\u003cword\u003e123/x{unique}"}}"#);
    let php = format!(r#"{{"msg":"login","pw":"Pa&ss<word>123\/x{unique}"}}"#);
    let python = format!(r#"{{"msg":"login","pw":"\u0050a&ss<word>123/x{unique}"}}"#);
    let pct_lower = format!("GET /login?pw=Pa%26ss%3cword%3e123%2fx{unique} 200");
    let nested = format!(r#"request {{"body": "{{\"db\": \"q\\\"uo\\\\te{unique}\"}}"}}"#);
    let script = [go, php, python, pct_lower, nested]
        .iter()
        .map(|l| format!("printf '%s\\n' '{}'", l.replace('\'', "'\\''")))
        .collect::<Vec<_>>()
        .join("\n");
    let mut cmd = shipping_agent(&group);
    cmd.env("AMP", format!("secretsmanager:{amp_secret}"))
        .env("QUOTE", format!("secretsmanager:{quote_secret}"))
        .args(["--", "sh", "-c", &script]);
    let out = run_shipping(cmd);
    assert_code(&out, 0);
    let events = read_stream(&Logs::new(&sdk), &group, "app").await;
    assert_eq!(app_events(&events).len(), 5, "{}", all_text(&events));
    // Every form carries the unique tail verbatim: redacted, it is gone.
    assert_nowhere(&unique, &events, &out);
}

/// Case 3b: well-known token formats standing in a sentence.
#[tokio::test(flavor = "multi_thread")]
async fn well_known_token_formats_in_prose_are_redacted() {
    let sdk = aws().await;
    let group = group_name();
    let tokens = [
        format!("sk_live_{}", "4eC39HqLyjWDarjtT1zdp7dc"),
        format!("ghp_{}", "wWPw5k4aXcaT4fNP0UcnZwJUVFk6LO0pINUx"),
        format!(
            "github_pat_{}",
            "11ABCDEFG0abcdefghijkl_mnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcd"
        ),
        format!("glpat-{}", "xxxxxxxxxxxxxxxxxxxx"),
        format!(
            "xoxb-{}",
            "1234567890-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
        ),
        format!("AIza{}", "SyA-abcdefghijklmnopqrstuvwxyz01234"),
        format!(
            "SG.{}.{}",
            "abcdefghijklmnopqrstuv", "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ"
        ),
        format!("npm_{}", "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"),
    ];
    let script = tokens
        .iter()
        .map(|t| format!("echo 'calling the API with {t} now'"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut cmd = shipping_agent(&group);
    cmd.args(["--", "sh", "-c", &script]);
    let out = run_shipping(cmd);
    assert_code(&out, 0);
    let events = read_stream(&Logs::new(&sdk), &group, "app").await;
    assert_eq!(app_events(&events).len(), tokens.len());
    for t in &tokens {
        assert_nowhere(t, &events, &out);
    }
}

/// Case 4: lines that were quadratic in the sanitizer froze the agent's one thread:
/// no signal was forwarded meanwhile. Now SIGTERM reaches the app at once, whatever the
/// pipeline is doing.
#[tokio::test(flavor = "multi_thread")]
async fn pathological_lines_never_delay_the_stop_signal() {
    // The signal is timed: not while fifty agents start.
    let _timing = TIMING.read().await;
    let sdk = aws().await;
    let group = group_name();
    let scratch = scratch();
    let produce = r#"python3 -c '
import sys
w = sys.stdout.write
for _ in range(20): w("token" * 40000 + "\n")
for _ in range(5): w("4111 1111 1111 1112 " * 20000 + "\n")
for _ in range(5): w("http://a:b@" * 20000 + "\n")
sys.stdout.flush()'"#;
    let mut cmd = shipping_agent(&group);
    cmd.env("DECKHAND_STOP_TIMEOUT", "5s").args([
        "--",
        "sh",
        "-c",
        &trapping_app(&scratch, produce),
    ]);
    let running = Running::start(cmd);
    assert!(
        testkit::wait_until(LOG_RUN_LIMIT, || scratch.join("ready").exists()),
        "the app wrote its lines"
    );
    running.signal("TERM");
    // Milliseconds when the signal does not wait on the pipeline; seconds of room for
    // a loaded machine, and still far less than the lines take.
    assert!(
        testkit::wait_until(Duration::from_secs(5), || scratch.join("term").exists()),
        "SIGTERM reached the app within 5 s"
    );
    let out = running.wait_within(LOG_RUN_LIMIT);
    assert_code(&out, 0);
    let events = read_stream(&Logs::new(&sdk), &group, "app").await;
    assert!(!events.is_empty());
}

/// Case 5: nobody reads the agent's stdout (a full pipe, the awslogs driver in
/// blocking mode). The app's output still drains, SIGTERM still reaches the app, the
/// stop timeout still holds, and the copies that could not be written are counted.
#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_stdout_stalls_neither_the_app_nor_the_stop() {
    let _timing = TIMING.read().await;
    let scratch = scratch();
    let produce =
        r#"i=0; while [ $i -lt 2000 ]; do printf 'line %05d %01000d\n' $i 0; i=$((i+1)); done"#;
    let mut cmd = bare_agent();
    cmd.env("DECKHAND_STOP_TIMEOUT", "2s")
        .env("DECKHAND_LOG_BUFFER", "1MiB")
        .args(["--", "sh", "-c", &trapping_app(&scratch, produce)])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    // Held open, never read.
    let _stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let err = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stderr.read_to_end(&mut b);
        b
    });
    let ready = testkit::wait_until(Duration::from_secs(20), || scratch.join("ready").exists());
    if !ready {
        let _ = child.kill();
    }
    assert!(
        ready,
        "the app's writes never blocked on the agent's stdout"
    );
    kill(child.id() as i32, "TERM");
    assert!(
        testkit::wait_until(Duration::from_secs(5), || scratch.join("term").exists()),
        "SIGTERM reached the app"
    );
    // The stop timeout is 2 s: room for a loaded machine, far less than a stalled stop.
    let exited = testkit::wait_until(Duration::from_secs(10), || {
        child.try_wait().unwrap().is_some()
    });
    if !exited {
        let _ = child.kill();
    }
    assert!(
        exited,
        "the agent exited within the stop timeout and its flush"
    );
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let stderr = String::from_utf8_lossy(&err.join().unwrap()).into_owned();
    assert!(
        stderr.contains("could not be written to stdout"),
        "the lost copies are counted: {stderr}"
    );
}

/// Case 7: a line over the capture's 8 MiB cut is one group of parts that reassembles,
/// and a secret across the cut is redacted.
#[tokio::test(flavor = "multi_thread")]
async fn a_ten_megabyte_line_is_one_part_group_with_a_secret_across_the_cut() {
    let sdk = aws().await;
    let secret_value = format!("S3cr3t-{}", testkit::unique_name("cut"));
    let secret = create_logs_secret(&sdk, &secret_value).await;
    let group = group_name();
    let scratch = scratch();
    // The secret straddles byte 8 MiB of the line.
    let before = 8 * 1024 * 1024 - 5;
    let after = 10 * 1024 * 1024 - before;
    let script = format!(
        r#"python3 -c '
import os, sys
sys.stdout.write("a" * {before} + os.environ["PW"] + "b" * {after} + "\n")
sys.stdout.write("after the long line\n")'"#
    );
    let mut cmd = shipping_agent(&group);
    cmd.env("PW", format!("secretsmanager:{secret}"))
        .env("DECKHAND_LOG_BUFFER", "64MiB")
        .args(["--", "sh", "-c", &script]);
    let out = run_shipping(cmd);
    assert_code(&out, 0);
    drop(scratch);
    let events = read_stream(&Logs::new(&sdk), &group, "app").await;
    let mut parts: Vec<Value> = events
        .iter()
        .filter_map(|(_, m)| serde_json::from_str::<Value>(m).ok())
        .filter(|v| v.get("deckhand_part").is_some())
        .collect();
    let ids: BTreeSet<String> = parts
        .iter()
        .map(|p| p["deckhand_part"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1, "one group: {ids:?}");
    parts.sort_by_key(|p| p["deckhand_part"]["index"].as_u64().unwrap());
    let indexes: Vec<u64> = parts
        .iter()
        .map(|p| p["deckhand_part"]["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, (1..=parts.len() as u64).collect::<Vec<_>>());
    let lasts: Vec<bool> = parts
        .iter()
        .map(|p| p["deckhand_part"]["last"].as_bool().unwrap())
        .collect();
    assert!(lasts[..lasts.len() - 1].iter().all(|l| !l) && lasts[lasts.len() - 1]);
    let whole: String = parts.iter().map(|p| p["data"].as_str().unwrap()).collect();
    let event: Value = serde_json::from_str(&whole).expect("the parts rebuild one JSON event");
    let message = event["message"].as_str().unwrap();
    assert!(!message.contains(&secret_value));
    assert!(
        message.contains("[REDACTED]"),
        "the secret across the cut is redacted"
    );
    assert!(message.starts_with("aaaa") && message.ends_with("bbbb"));
    assert_eq!(
        message.len(),
        before + "[REDACTED]".len() + after,
        "nothing else is lost"
    );
    assert_nowhere(&secret_value, &events, &out);
    assert!(all_text(&events).contains("after the long line"));
}

/// Levels that don't lie: the app's stderr lines keep the level they state — a level
/// word, Go's `panic:` (fatal), a Python traceback, a Node error (errors) — and a line
/// that states none (Go's `log` package) gets no level, or the one
/// `DECKHAND_LOG_STDERR_LEVEL` gives; stdout text never gets one it does not state.
#[test]
fn stderr_lines_keep_the_level_they_state_and_get_none_otherwise() {
    let script = r#"echo 'plain stdout line'
exec >&2
echo '2026/11/18 08:00:00 listening on :8080'
printf 'panic: runtime error: index out of range [3] with length 3\n\ngoroutine 1 [running]:\nmain.main()\n\t/app/main.go:8 +0x1d\n'
printf 'Traceback (most recent call last):\n  File "/app/main.py", line 3, in <module>\nValueError: bad value\n'
printf 'Error: boom\n    at Object.<anonymous> (/app/index.js:1:7)\n'
echo '[warn] x'
"#;
    // Each multi-line message is one write: the test is about levels, and a machine
    // that holds `sh` back longer than the multi-line window between two writes would
    // split a message into two events.

    // (first line of the message, stream, level, lines in the message) of each event
    // on the agent's stdout.
    let events = |stderr_level: Option<&str>| {
        let mut cmd = bare_agent();
        cmd.env("DECKHAND_LOG_STDOUT", "json");
        if let Some(level) = stderr_level {
            cmd.env("DECKHAND_LOG_STDERR_LEVEL", level);
        }
        cmd.args(["--", "sh", "-c", script]);
        let out = run_shipping(cmd);
        assert_code(&out, 0);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).expect("stdout lines are JSON events"))
            .map(|v| {
                let message = v["message"].as_str().unwrap_or_default();
                (
                    message.lines().next().unwrap_or_default().to_owned(),
                    v["stream"].as_str().unwrap_or_default().to_owned(),
                    v.get("level")
                        .map(|l| l.as_str().expect("a level is a string").to_owned()),
                    message.lines().count(),
                )
            })
            .collect::<BTreeSet<_>>()
    };
    let expect = |go_log_level: Option<&str>| {
        [
            ("plain stdout line", "stdout", None, 1),
            (
                "2026/11/18 08:00:00 listening on :8080",
                "stderr",
                go_log_level,
                1,
            ),
            (
                "panic: runtime error: index out of range [3] with length 3",
                "stderr",
                Some("fatal"),
                4,
            ),
            (
                "Traceback (most recent call last):",
                "stderr",
                Some("error"),
                3,
            ),
            ("Error: boom", "stderr", Some("error"), 2),
            ("[warn] x", "stderr", Some("warn"), 1),
        ]
        .into_iter()
        .map(|(first, stream, level, lines)| {
            (
                first.to_owned(),
                stream.to_owned(),
                level.map(str::to_owned),
                lines,
            )
        })
        .collect::<BTreeSet<_>>()
    };
    assert_eq!(events(None), expect(None));
    assert_eq!(events(Some("info")), expect(Some("info")));
}

/// The pipes the app writes into hold 1 MiB (Linux's default ceiling for an
/// unprivileged process), or as much as this system allows: the agent reads them a few
/// milliseconds apart, and the app's writes must not wait for that.
#[test]
fn the_apps_output_pipes_are_as_large_as_the_system_allows() {
    let ceiling: i64 = std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1 << 20);
    let expected = ceiling.min(1 << 20);
    // F_GETPIPE_SZ is 1032 on Linux.
    let report = "import fcntl, sys\n\
                  print('stdout pipe', fcntl.fcntl(1, 1032))\n\
                  print('stderr pipe', fcntl.fcntl(2, 1032), file=sys.stderr)";
    let mut cmd = bare_agent();
    cmd.env("DECKHAND_LOG_STDOUT", "json")
        .args(["--", "python3", "-c", report]);
    let out = run_shipping(cmd);
    assert_code(&out, 0);
    let stdout = String::from_utf8_lossy(&out.stdout);
    for stream in ["stdout", "stderr"] {
        let size = stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| v["message"].as_str().map(str::to_owned))
            .find_map(|m| {
                m.strip_prefix(&format!("{stream} pipe "))
                    .map(str::to_owned)
            })
            .and_then(|n| n.parse::<i64>().ok());
        assert_eq!(size, Some(expected), "{stream}: {stdout}");
    }
}

/// Case 7: with no log group, turning the stdout copy off would discard every line: a
/// bad option (64), like every other.
#[test]
fn stdout_off_without_a_log_group_is_refused() {
    let mut cmd = bare_agent();
    cmd.env("DECKHAND_LOG_STDOUT", "off").args(["--", "true"]);
    let out = run_shipping(cmd);
    assert_code(&out, 64);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("DECKHAND_LOG_STDOUT"), "{stderr}");
    assert!(stderr.contains("CLOUDWATCH_LOG_GROUP"), "{stderr}");
}

/// The fault matrix's CloudWatch row: 30 s of ThrottlingException on every call while
/// the app writes a million lines; every one arrives once, in order, after it.
#[tokio::test(flavor = "multi_thread")]
async fn thirty_seconds_of_throttling_during_a_million_lines_loses_nothing() {
    const LINES: u64 = 1_000_000;
    const OUTAGE: Duration = Duration::from_secs(30);
    // A CloudWatch Logs endpoint that answers ThrottlingException to every call while
    // `throttling` is set, and otherwise accepts, keeping the numbers of `line N`
    // messages (not stored in moto: a million events would take its memory).
    let throttling = Arc::new(AtomicBool::new(true));
    let sink = {
        let throttling = throttling.clone();
        LogsDouble::keeping(
            move |_, _| {
                if throttling.load(Ordering::SeqCst) {
                    Outcome::Fail(400, THROTTLING)
                } else {
                    Outcome::Accept
                }
            },
            |message| {
                let event: Value = serde_json::from_str(message).unwrap();
                line_number(event["message"].as_str()?)
            },
        )
        .await
    };
    let scratch = scratch();
    let produce = format!(
        r#"python3 -c '
import sys
w = sys.stdout.write
for i in range({LINES}): w("line %d\n" % i)
sys.stdout.flush()'"#
    );
    let mut cmd = shipping_agent(&group_name());
    cmd.env("AWS_ENDPOINT_URL", &sink.url)
        .env("DECKHAND_LOG_BUFFER", "512MiB")
        .args(["--", "sh", "-c", &trapping_app(&scratch, &produce)]);
    let started = std::time::Instant::now();
    let running = Running::start(cmd);
    assert!(
        testkit::wait_until(Duration::from_secs(60), || scratch.join("ready").exists()),
        "the app wrote its lines during the outage"
    );
    let written_after = started.elapsed();
    let rest = OUTAGE.saturating_sub(started.elapsed());
    tokio::time::sleep(rest).await; // the outage is the scenario, not a wait for something
    assert!(
        sink.accepted.lock().unwrap().is_empty(),
        "nothing got through the outage"
    );
    throttling.store(false, Ordering::SeqCst);
    let recovered = std::time::Instant::now();
    let all = testkit::wait_until_async(Duration::from_secs(240), || async {
        sink.accepted.lock().unwrap().len() as u64 >= LINES
    })
    .await;
    let delivered_in = recovered.elapsed();
    running.signal("TERM");
    let out = running.wait_within(LOG_RUN_LIMIT);
    assert_code(&out, 0);
    let got = sink.accepted.lock().unwrap().clone();
    eprintln!(
        "figure: {LINES} lines written in {written_after:.1?}; {} throttled calls in {OUTAGE:?}; all shipped {delivered_in:.1?} after the outage ended",
        sink.calls().iter().filter(|c| c.status == 400).count()
    );
    assert!(all, "only {} of {LINES} lines arrived", got.len());
    assert_eq!(
        got,
        (0..LINES).collect::<Vec<_>>(),
        "lines lost, duplicated or reordered"
    );
}

/// Case 7, the sanitizer's smaller defects, through the built agent: a secret that is a
/// bare JSON number, a `[REDACTED:NAME]` label whose name needs escaping, two
/// overlapping secrets, header-style keys, and a URL secret whose password is too short
/// to redact (reported by name, not silently left).
#[tokio::test(flavor = "multi_thread")]
async fn the_sanitizers_smaller_defects_are_gone() {
    let sdk = aws().await;
    // Digits only, thirteen or more of them: fewer could turn up by chance in the
    // output's own timestamps and counts, where the test looks for them too.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let unique = format!("{}{nanos:09}", std::process::id());
    let number = format!("9{}", &unique[unique.len().saturating_sub(9)..]);
    let first = format!("abcd{unique}efgh");
    let second = format!("{unique}efghij34");
    let url = "postgres://app:abc@db.internal:5432/app".to_owned();
    let [n, a, b, u] = [
        create_logs_secret(&sdk, &number).await,
        create_logs_secret(&sdk, &first).await,
        create_logs_secret(&sdk, &second).await,
        create_logs_secret(&sdk, &url).await,
    ];
    let group = group_name();
    let script = format!(
        r#"echo '{{"acct":{number},"msg":"number"}}'
echo "overlap abcd{unique}efghij34 end"
echo 'X-Api-Key: k3yValue123456'
echo '{{"msg":"header","x-api-key":"k3yValue654321","ApiKey":"k3yValue111111","PrivateKey":"k3yValue222222"}}'"#
    );
    let mut cmd = shipping_agent(&group);
    cmd.env("ACCT", format!("secretsmanager:{n}"))
        .env("A\"B", format!("secretsmanager:{a}"))
        .env("SECOND", format!("secretsmanager:{b}"))
        .env("DATABASE_URL", format!("secretsmanager:{u}"))
        .env("DECKHAND_REDACT_NAME", "true")
        .args(["--", "sh", "-c", &script]);
    let out = run_shipping(cmd);
    assert_code(&out, 0);
    let events = read_stream(&Logs::new(&sdk), &group, "app").await;
    let app = app_events(&events);
    assert_eq!(
        app.len(),
        4,
        "every event is valid JSON: {}",
        all_text(&events)
    );
    let number_event = app.iter().find(|(_, v)| v["msg"] == "number").unwrap();
    assert!(
        number_event.1["acct"]
            .as_str()
            .is_some_and(|s| s.starts_with("[REDACTED")),
        "{}",
        number_event.1
    );
    assert_nowhere(&number, &events, &out);
    assert_nowhere(&unique, &events, &out);
    assert_nowhere("ij34 end", &events, &out);
    assert_nowhere("k3yValue", &events, &out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("DATABASE_URL") && stderr.contains("not redacted"),
        "the short URL password is reported by name: {stderr}"
    );
}

/// `/health` in process keeps answering within its bound while the log pipeline is
/// saturated: it has a thread of its own.
#[tokio::test(flavor = "multi_thread")]
async fn health_answers_while_the_pipeline_is_saturated() {
    let addr = testkit::net::closed_port();
    let scratch = scratch();
    // Pathological lines, without end, as fast as the pipeline takes them.
    let flood = r#"python3 -c '
import sys
line = "http://a:b@" * 20000 + "\n"
while True: sys.stdout.write(line)' &
touch "$DIR/ready"; wait"#;
    let mut cmd = shipping_agent(&group_name());
    cmd.env("DECKHAND_HEALTH_ADDR", addr.to_string())
        .env("DECKHAND_STOP_TIMEOUT", "2s");
    shell_app(&mut cmd, &scratch, flood);
    let running = Running::start(cmd);
    let url = format!("http://{addr}/health");
    assert!(
        testkit::wait_until_async(Duration::from_secs(10), || async {
            scratch.join("ready").exists() && get_json(url.clone()).await.is_some()
        })
        .await
    );
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let asked = std::time::Instant::now();
        let answer = tokio::time::timeout(Duration::from_secs(2), get_json(url.clone())).await;
        slowest = slowest.max(asked.elapsed());
        assert!(
            matches!(answer, Ok(Some((200, _)))),
            "/health did not answer 200 within 2 s under a saturated pipeline: {answer:?}"
        );
    }
    eprintln!(
        "figure: /health under a saturated log pipeline: slowest of 20 answers {slowest:.1?}"
    );
    running.signal("TERM");
    let out = running.wait_within(LOG_RUN_LIMIT);
    assert!(out.status.code().is_some(), "the agent exited on its own");
}
