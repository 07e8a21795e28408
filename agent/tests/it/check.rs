//! `agent check` through the built binary, against moto (and the proxy of `support`
//! that answers AccessDeniedException, which moto does not): one row per variable, the
//! start's exit codes, and never a value in the table or the JSON.

use aws_sdk_ssm::types::ParameterType;
use serde_json::Value;

use crate::parameter_store::{put, unique_path};
use crate::support::*;

/// `agent check ARGS` with `vars` over the moto variables.
fn check(vars: &[(&str, String)], args: &[&str]) -> std::process::Command {
    let mut cmd = agent();
    cmd.arg("check").args(args);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd
}

/// The JSON report: its rows and summary.
fn report(out: &std::process::Output) -> (Vec<Value>, Value) {
    let text = String::from_utf8_lossy(&out.stdout);
    let json: Value = serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("check --json printed no JSON ({e}): {text}"));
    let rows = json["rows"].as_array().expect("rows").clone();
    (rows, json["summary"].clone())
}

/// The row of `name` with `status`, or a failure listing the rows.
#[track_caller]
fn row<'a>(rows: &'a [Value], name: &str, status: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["name"] == name && r["status"] == status)
        .unwrap_or_else(|| panic!("no {status} row for {name}: {rows:#?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_start_that_would_succeed_is_reported_row_by_row_without_values() {
    let sm = sm("us-east-1").await;
    let values = [
        "api-key-value-check-1",
        "q7Zx",
        "production-mode-check-2",
        "from-the-secret-check-3",
        "stdout-json-target-check-4",
        "token-value-check-5",
        "plain-value-check-6",
        "shadowing-value-check-7",
    ];
    let (env_secret, _) = create_secret(
        &sm,
        "check",
        &format!(
            r#"{{"API_KEY":"{}","PIN":"{}","NODE_ENV":"{}","SHADOW":"{}"}}"#,
            values[0], values[1], values[2], values[3]
        ),
    )
    .await;
    let ssm = ssm("us-east-1").await;
    let base = unique_path();
    let target = format!("{base}/LOG_TARGET");
    let token = format!("{base}/TOKEN");
    put(&ssm, &target, values[4], ParameterType::String).await;
    put(&ssm, &token, values[5], ParameterType::SecureString).await;
    let vars = [
        ("DECKHAND_ENV_SECRETS", env_secret.clone()),
        ("DECKHAND_REDACT_SKIP", "NODE_ENV".to_owned()),
        ("DECKHAND_REQUIRED_ENV", "API_KEY,TOKEN".to_owned()),
        ("LOG_TARGET", format!("ssm:{target}")),
        ("TOKEN", format!("ssm:{token}")),
        ("KEEP", values[6].to_owned()),
        ("SHADOW", values[7].to_owned()),
    ];

    let out = run_async(check(&vars, &["--json"])).await;
    assert_code(&out, 0);
    assert_no_leak(&out, values);
    let (rows, summary) = report(&out);
    assert_eq!(summary["exit_code"], 0, "{summary}");
    assert_eq!(summary["would_start"], true, "{summary}");
    assert_eq!(summary["problems"], 0, "{summary}");
    assert_eq!(row(&rows, "KEEP", "ok")["source"], "plain");
    let api = row(&rows, "API_KEY", "ok");
    assert_eq!(
        api["source"],
        format!("secret \"{env_secret}\" (DECKHAND_ENV_SECRETS)")
    );
    assert_eq!(api["detail"], "ok, redacted");
    row(&rows, "PIN", "too_short_to_redact");
    row(&rows, "NODE_ENV", "not_redacted_skip");
    let shadowed = row(&rows, "SHADOW", "shadowed");
    assert_eq!(
        shadowed["detail"],
        "shadowed by SHADOW set in the environment"
    );
    row(&rows, "SHADOW", "ok");
    let log_target = row(&rows, "LOG_TARGET", "not_redacted_configuration");
    assert_eq!(log_target["source"], format!("parameter \"{target}\""));
    assert_eq!(
        log_target["detail"],
        "ok, not redacted: configuration (String parameter)"
    );
    assert_eq!(row(&rows, "TOKEN", "ok")["detail"], "ok, redacted");
    // The agent's own variables are not the app's.
    assert!(
        !rows.iter().any(|r| r["name"] == "DECKHAND_ENV_SECRETS"),
        "{rows:#?}"
    );

    // The table for people: the same rows, no value either.
    let out = run_async(check(&vars, &[])).await;
    assert_code(&out, 0);
    assert_no_leak(&out, values);
    let (table, _) = text(&out);
    assert!(table.starts_with("NAME"), "{table}");
    for needle in [
        "too short to redact",
        "not redacted: DECKHAND_REDACT_SKIP",
        "not redacted: configuration (String parameter)",
        "shadowed by SHADOW",
        "the app would start (exit 0)",
    ] {
        assert!(table.contains(needle), "{needle}: {table}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_problem_is_a_row_and_the_exit_is_the_starts() {
    let sm = sm("us-east-1").await;
    let values = ["not-json-value-check-8", "denied-value-check-9"];
    let (text_secret, _) = create_secret(&sm, "check", values[0]).await;
    let ssm = ssm("us-east-1").await;
    let denied = format!("{}/DENIED", unique_path());
    put(&ssm, &denied, values[1], ParameterType::SecureString).await;
    let (endpoint, _) = {
        let denied = denied.clone();
        proxy(move |_, s| {
            s.body["Names"].to_string().contains(&denied).then(|| {
                (
                    400,
                    "AccessDeniedException",
                    format!("User: arn:aws:sts::123456789012:assumed-role/task is not authorized to perform: ssm:GetParameters on resource: {denied}"),
                )
            })
        })
        .await
    };
    let missing = testkit::unique_name("check-missing");
    let vars = [
        ("AWS_ENDPOINT_URL", endpoint),
        ("MISSING", format!("secretsmanager:{missing}")),
        ("BADJSON", format!("secretsmanager:{text_secret}:password")),
        ("DENIED", format!("ssm:{denied}")),
        ("DECKHAND_REQUIRED_ENV", "ABSENT".to_owned()),
        ("DECKHAND_ENV_SECRET", "typo".to_owned()),
    ];
    let out = run_async(check(&vars, &["--json"])).await;
    assert_code(&out, 78);
    assert_no_leak(&out, values);
    let (rows, summary) = report(&out);
    assert_eq!(summary["exit_code"], 78, "{summary}");
    assert_eq!(summary["would_start"], false, "{summary}");
    let not_found = row(&rows, "MISSING", "not_found");
    assert!(
        not_found["message"]
            .as_str()
            .unwrap()
            .contains(&format!("secret \"{missing}\" was not found")),
        "{not_found}"
    );
    assert_eq!(
        row(&rows, "BADJSON", "malformed")["source"],
        format!("secret \"{text_secret}\" key \"password\"")
    );
    assert!(row(&rows, "DENIED", "access_denied")["message"]
        .as_str()
        .unwrap()
        .contains("may not be read (the task role needs ssm:GetParameters"));
    assert_eq!(
        row(&rows, "ABSENT", "required_missing")["source"],
        "DECKHAND_REQUIRED_ENV"
    );
    let unknown = row(&rows, "DECKHAND_ENV_SECRET", "unknown_setting");
    assert!(
        unknown["message"]
            .as_str()
            .unwrap()
            .contains("did you mean DECKHAND_ENV_SECRETS?"),
        "{unknown}"
    );
    assert!(rows
        .iter()
        .filter(|r| r["problem"] == true)
        .all(|r| r["message"].is_string()));

    let out = run_async(check(&vars, &[])).await;
    assert_code(&out, 78);
    assert_no_leak(&out, values);
    let (table, _) = text(&out);
    for needle in [
        "not found",
        "malformed",
        "access denied",
        "required but missing",
        "not a deckhand setting",
        "the app would not start: 5 problems (exit 78)",
    ] {
        assert!(table.contains(needle), "{needle}: {table}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_misspelt_setting_alone_fails_the_check() {
    let out = run_async(check(
        &[
            ("DECKHAND_STOP_TIMEOUTS", "5s".to_owned()),
            ("KEEP", "x".to_owned()),
        ],
        &["--json"],
    ))
    .await;
    assert_code(&out, 78);
    let (rows, _) = report(&out);
    row(&rows, "DECKHAND_STOP_TIMEOUTS", "unknown_setting");
    row(&rows, "KEEP", "ok");
    // A bad value is the start's usage error.
    let out = run_async(check(
        &[("DECKHAND_STOP_TIMEOUT", "soon".to_owned())],
        &["--json"],
    ))
    .await;
    assert_code(&out, 64);
    let (rows, _) = report(&out);
    row(&rows, "DECKHAND_STOP_TIMEOUT", "invalid_setting");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_log_group_alone_is_checked_as_the_start_checks_it() {
    // No reference: shipping alone loads the AWS SDK, and the start refuses an endpoint
    // it could not call before anything else.
    let group = testkit::unique_name("/deckhand/check/group");
    let mut vars = vec![("CLOUDWATCH_LOG_GROUP", group), ("KEEP", "x".to_owned())];
    let out = run_async(check(&vars, &["--json"])).await;
    assert_code(&out, 0);
    row(&report(&out).0, "KEEP", "ok");

    vars.push((
        "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS",
        "ftp://user:hunter2-check@host".to_owned(),
    ));
    let out = run_async(check(&vars, &["--json"])).await;
    assert_code(&out, 78);
    assert_no_leak(&out, ["hunter2-check"]);
    let (rows, summary) = report(&out);
    assert_eq!(summary["would_start"], false, "{summary}");
    let message = row(&rows, "AWS", "aws_configuration")["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for needle in [
        "CLOUDWATCH_LOG_GROUP",
        "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS=(hidden: it may hold a password)",
        "its scheme is neither http nor https",
    ] {
        assert!(message.contains(needle), "{needle}: {message}");
    }

    // Shipping needs a region, as the start says.
    vars.pop();
    vars.push(("AWS_REGION", "US-EAST-1".to_owned()));
    let out = run_async(check(&vars, &["--json"])).await;
    assert_code(&out, 78);
    let message = row(&report(&out).0, "AWS", "aws_configuration")["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.starts_with("shipping to CloudWatch Logs (CLOUDWATCH_LOG_GROUP): AWS_REGION=\"US-EAST-1\" is not an AWS region"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_definitions_container_is_checked_as_ecs_would_start_it() {
    let sm = sm("us-east-1").await;
    let values = [
        "task-definition-secret-check-10",
        "task-definition-param-check-11",
    ];
    let (_, arn) = create_secret(&sm, "check", &format!(r#"{{"password":"{}"}}"#, values[0])).await;
    let ssm = ssm("us-east-1").await;
    let parameter = format!("{}/P", unique_path());
    put(&ssm, &parameter, values[1], ParameterType::SecureString).await;
    let scratch = scratch();
    let definition = serde_json::json!({"taskDefinition": {"family": "web", "containerDefinitions": [
        {"name": "web",
         "environment": [
            {"name": "DECKHAND_REQUIRED_ENV", "value": "DB_PASSWORD,P"},
            {"name": "NODE_ENV", "value": "production"}],
         "secrets": [
            {"name": "DB_PASSWORD", "valueFrom": format!("{arn}:password::")},
            {"name": "P", "valueFrom": parameter}]},
        {"name": "sidecar", "environment": [{"name": "DECKHAND_BOGUS", "value": "x"}]}]}});
    let file = scratch.write("task.json", &definition.to_string());
    let file = file.to_str().unwrap();
    let out = run_async(check(
        &[],
        &["--json", "--task-definition", file, "--container", "web"],
    ))
    .await;
    assert_code(&out, 0);
    assert_no_leak(&out, values);
    let (rows, _) = report(&out);
    assert_eq!(
        row(&rows, "DB_PASSWORD", "ok")["source"],
        format!("secret \"{arn}\" key \"password\"")
    );
    assert_eq!(
        row(&rows, "P", "ok")["source"],
        format!("parameter \"{parameter}\"")
    );
    row(&rows, "NODE_ENV", "ok");
    // The container's environment, not this process's.
    assert!(!rows.iter().any(|r| r["name"] == "PATH"), "{rows:#?}");

    let out = run_async(check(
        &[],
        &["--task-definition", file, "--container", "sidecar"],
    ))
    .await;
    assert_code(&out, 78);
    let out = run_async(check(&[], &["--task-definition", file])).await;
    assert_code(&out, 64);
    let (_, stderr) = text(&out);
    assert!(stderr.contains("name one with --container"), "{stderr}");
}
