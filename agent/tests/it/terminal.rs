//! The agent on a terminal (`docker run -it`): under a real pty (util-linux `script`),
//! the app's lines come out as text, sanitized exactly as the JSON events are, and the
//! agent's own messages as `agent: …` lines; `DECKHAND_LOG_STDOUT=json` still gives
//! JSON events there.

use std::process::{Command, Output};

use serde_json::Value;

use crate::support::*;

/// Writes a plain line, a JSON line and the loaded secret to stdout, a line to stderr.
const APP: &str = r#"printf 'plain line from the app\n'
printf '{"level":"info","msg":"json line from the app","n":1}\n'
printf 'the token is %s\n' "$TOKEN"
printf 'a line to stderr\n' >&2"#;

/// The agent running [`APP`] with `TOKEN` a loaded secret, under a pty: its stdout
/// and stderr are the terminal, which `script` copies to its own stdout.
async fn on_a_terminal(extra: &[(&str, &str)]) -> (String, String) {
    let region = testkit::service_var("AWS_REGION");
    let token = format!("tty-{}", testkit::unique_name("token"));
    let (name, _) = create_secret(&sm(&region).await, "terminal", &token).await;
    let mut cmd: Command = testkit::clean_command("script");
    cmd.envs(testkit::aws_env())
        .env("TOKEN", format!("secretsmanager:{name}"))
        .env("APP", APP)
        .envs(extra.iter().copied())
        // -e: the agent's exit code; -f: flush as it comes; the command as sh reads it.
        .args([
            "-qfec",
            &format!("exec '{AGENT}' -- sh -c \"$APP\""),
            "/dev/null",
        ]);
    let out: Output = tokio::task::spawn_blocking(move || run_within(cmd, LOG_RUN_LIMIT))
        .await
        .unwrap();
    assert_code(&out, 0);
    // The terminal writes every newline as CRLF.
    let screen = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
    (screen, token)
}

#[tokio::test(flavor = "multi_thread")]
async fn on_a_terminal_the_app_is_text_and_sanitized_and_the_agent_speaks_text() {
    let (screen, token) = on_a_terminal(&[]).await;
    let lines: Vec<&str> = screen.lines().collect();
    assert!(
        lines.contains(&"plain line from the app"),
        "the plain line as the app wrote it, not a JSON event:\n{screen}"
    );
    assert!(
        lines.contains(&r#"{"level":"info","msg":"json line from the app","n":1}"#),
        "the app's JSON line as it is:\n{screen}"
    );
    assert!(lines.contains(&"the token is [REDACTED]"), "{screen}");
    assert!(lines.contains(&"a line to stderr"), "{screen}");
    assert!(!screen.contains(&token), "the secret leaked:\n{screen}");
    assert!(
        !screen.contains(r#""message":"#),
        "no JSON events on the terminal:\n{screen}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("agent: ") && l.contains("loaded secrets")),
        "the agent's own messages as text:\n{screen}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn json_is_still_json_on_a_terminal() {
    let (screen, token) = on_a_terminal(&[("DECKHAND_LOG_STDOUT", "json")]).await;
    assert!(!screen.contains(&token), "the secret leaked:\n{screen}");
    let events: Vec<Value> = screen
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect();
    let messages: Vec<&str> = events
        .iter()
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert!(
        messages.contains(&"plain line from the app"),
        "the plain line as a JSON event:\n{screen}"
    );
    assert!(messages.contains(&"the token is [REDACTED]"), "{screen}");
    assert!(
        events
            .iter()
            .any(|e| e["stream"] == "stderr" && e["message"] == "a line to stderr"),
        "{screen}"
    );
    // The agent's messages follow DECKHAND_LOG_STDOUT: JSON too.
    assert!(
        !screen.lines().any(|l| l.starts_with("agent: ")),
        "{screen}"
    );
}

/// On a terminal the app is started by `fork` and `exec` in the child, where a program
/// for another CPU would be handed to `sh` as a script: it is refused before, as
/// without a terminal (`supervision::a_file_that_cannot_start_says_why`).
#[test]
fn on_a_terminal_a_program_for_another_cpu_is_refused_and_named() {
    let dir = scratch();
    let (path, name) = foreign_program(dir.path());
    let mut cmd: Command = testkit::clean_command("script");
    cmd.args([
        "-qfec",
        &format!("exec '{AGENT}' -- '{}'", path.display()),
        "/dev/null",
    ]);
    let out = run_within(cmd, LOG_RUN_LIMIT);
    assert_code(&out, 126);
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(
        screen.contains(&format!("it is a program for {name}")) && !screen.contains("Syntax error"),
        "{screen}"
    );
}
