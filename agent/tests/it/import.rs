//! `agent import-task-definition` end to end: the output registers with ECS (moto's
//! RegisterTaskDefinition, called through boto3 from the test services' virtualenv, which
//! checks the request against the ECS API model as the AWS CLI does), and the built agent
//! run with the output container's `environment` gives the app the variables ECS would
//! have injected from the original `secrets[]`.
//!
//! Each test creates its own secrets and parameters (unique names), so tests run in
//! parallel.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use aws_sdk_ssm::types::ParameterType;
use serde_json::{json, Value};

use crate::support::*;

/// What boto3 runs: RegisterTaskDefinition with the task definition on stdin.
const REGISTER: &str = "import boto3, json, os, sys\n\
td = json.load(sys.stdin)\n\
r = boto3.client('ecs', region_name=os.environ['AWS_REGION']).register_task_definition(**td)\n\
print(r['taskDefinition']['revision'])\n";

/// Variables the test's own set-up puts in the app's environment (the clean command's,
/// the moto ones, the app script's `OUT`, and the shell's).
const SETUP_VARS: [&str; 12] = [
    "PATH",
    "HOME",
    "LANG",
    "OUT",
    "PWD",
    "SHLVL",
    "_",
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
    "AWS_EC2_METADATA_DISABLED",
];

/// The imported task definition, the notes on stderr, and the policy.
struct Imported {
    td: Value,
    stderr: String,
    policy: Value,
}

fn import(td: &Value, args: &[&str]) -> Imported {
    let dir = scratch();
    let file = dir.write("task-definition.json", &td.to_string());
    let policy = dir.join("policy.json");
    let out = bare_agent()
        .arg("import-task-definition")
        .arg(&file)
        .arg("--policy-out")
        .arg(&policy)
        .args(args)
        .output()
        .expect("run the agent");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    Imported {
        td: serde_json::from_slice(&out.stdout).expect("the output is JSON"),
        stderr,
        policy: serde_json::from_str(&std::fs::read_to_string(&policy).unwrap()).unwrap(),
    }
}

/// RegisterTaskDefinition in moto; panics with boto3's message when refused.
fn register(td: &Value) {
    let python = PathBuf::from(testkit::service_var("DECKHAND_TEST_VENV")).join("bin/python");
    let mut cmd = testkit::clean_command(python);
    cmd.envs(testkit::aws_env())
        .args(["-c", REGISTER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run boto3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(td.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "RegisterTaskDefinition refused the output: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn pairs(list: &Value) -> Vec<(String, String)> {
    list.as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        e["name"].as_str().unwrap().to_owned(),
                        e["value"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Runs the agent with `container`'s environment and an app that records its own;
/// returns what the app saw.
async fn app_env_under_agent(container: &Value) -> Vec<(String, String)> {
    let mut cmd = agent();
    cmd.envs(pairs(&container["environment"]));
    run_app(cmd).await.assert_started()
}

/// Asserts that the app saw exactly `expected` (what ECS would have given it), besides
/// the test's own set-up.
#[track_caller]
fn assert_same_variables(seen: &[(String, String)], expected: &[(String, String)]) {
    for (name, value) in expected {
        let got = seen.iter().find(|(n, _)| n == name).map(|(_, v)| v);
        assert!(got == Some(value), "{name}: not the value ECS would inject");
    }
    for (name, _) in seen {
        assert!(
            SETUP_VARS.contains(&name.as_str()) || expected.iter().any(|(n, _)| n == name),
            "the app got {name}, which ECS would not have given it"
        );
    }
}

/// `examples/*/task-definition.json`.
fn example_task_definitions() -> Vec<(String, Value)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&root).unwrap() {
        let file = entry.unwrap().path().join("task-definition.json");
        if let Ok(text) = std::fs::read_to_string(&file) {
            found.push((
                file.display().to_string(),
                serde_json::from_str(&text).unwrap(),
            ));
        }
    }
    assert!(
        found.len() >= 5,
        "the examples' task definitions: {found:?}"
    );
    found
}

/// An example as it would be without deckhand: references in `environment` are ECS
/// `secrets[]`, and the image's own entry point runs the app.
fn without_deckhand(td: &Value) -> Value {
    let mut td = td.clone();
    let c = &mut td["containerDefinitions"][0];
    let (references, plain): (Vec<_>, Vec<_>) =
        pairs(&c["environment"]).into_iter().partition(|(n, v)| {
            !n.starts_with("DECKHAND_") && (v.starts_with("arn:aws:") || v.starts_with("ssm:/"))
        });
    c["environment"] = json!(plain
        .iter()
        .map(|(n, v)| json!({"name": n, "value": v}))
        .collect::<Vec<_>>());
    c["secrets"] = json!(references
        .iter()
        .map(|(n, v)| json!({"name": n, "valueFrom": v.strip_prefix("ssm:").unwrap_or(v)}))
        .collect::<Vec<_>>());
    c["entryPoint"] = json!(["docker-entrypoint.sh"]);
    td
}

#[test]
fn every_example_registers_and_deckhand_ones_are_left_as_they_are() {
    for (file, td) in example_task_definitions() {
        let out = import(&td, &[]);
        assert_eq!(
            out.td, td,
            "{file}: already under the agent, nothing changes"
        );
        register(&out.td);

        let native = without_deckhand(&td);
        let n = native["containerDefinitions"][0]["secrets"]
            .as_array()
            .unwrap()
            .len();
        let out = import(&native, &[]);
        register(&out.td);
        let c = &out.td["containerDefinitions"][0];
        assert!(c.get("secrets").is_none(), "{file}");
        let mut got = pairs(&c["environment"]);
        let mut original = pairs(&td["containerDefinitions"][0]["environment"]);
        got.sort();
        original.sort();
        assert_eq!(got, original, "{file}: {n} secrets back as references");
        assert_eq!(
            c["command"].as_array().unwrap()[0],
            "docker-entrypoint.sh",
            "{file}"
        );
        // Every secret the container reads is in the policy.
        let policy = out.policy.to_string();
        for (_, value) in &original {
            if let Some(name) = value.split(":secret:").nth(1) {
                let name = name.split(':').next().unwrap();
                assert!(
                    policy.contains(&format!("secret:{name}-??????")),
                    "{file}: {name}"
                );
            }
        }
    }
}

/// The reference deployment's shape (Kinex Fit / Spotter): 63 `secrets[]` from one
/// Parameter Store path, full ARNs and bare names, in describe-task-definition's output,
/// with a curl health check and no `entryPoint`.
async fn spotter_shaped(ssm: &aws_sdk_ssm::Client) -> (Value, Vec<(String, String)>) {
    let path = format!("/{}", testkit::unique_name("import"));
    let mut secrets = Vec::new();
    let mut expected = vec![
        ("NODE_ENV".to_owned(), "production".to_owned()),
        ("PORT".to_owned(), "3000".to_owned()),
    ];
    for i in 0..63 {
        let var = format!("SPOTTER_VAR_{i:02}");
        let name = format!("{path}/{var}");
        let value = format!("value-{i}-{}", testkit::unique_name("v"));
        let kind = if i % 3 == 0 {
            ParameterType::SecureString
        } else {
            ParameterType::String
        };
        ssm.put_parameter()
            .name(&name)
            .value(&value)
            .r#type(kind)
            .send()
            .await
            .unwrap();
        let arn = ssm
            .get_parameter()
            .name(&name)
            .send()
            .await
            .unwrap()
            .parameter
            .and_then(|p| p.arn)
            .unwrap();
        // Most by full ARN, as the deployment's file; some by name, as ECS also takes.
        let value_from = if i % 5 == 0 { name } else { arn };
        secrets.push(json!({"name": var, "valueFrom": value_from}));
        expected.push((var, value));
    }
    let td = json!({"taskDefinition": {
        "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/spotter-app-task:11",
        "family": "spotter-app-task",
        "revision": 11,
        "status": "ACTIVE",
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "compatibilities": ["EC2", "FARGATE"],
        "requiresAttributes": [{"name": "com.amazonaws.ecs.capability.ecr-auth"}],
        "registeredAt": "2025-01-07T10:00:00.000Z",
        "registeredBy": "arn:aws:iam::123456789012:user/deployer",
        "cpu": "256",
        "memory": "512",
        "taskRoleArn": "arn:aws:iam::123456789012:role/SpotterTaskRole",
        "executionRoleArn": "arn:aws:iam::123456789012:role/SpotterTaskExecutionRole",
        "containerDefinitions": [{
            "name": "spotter-web",
            "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/spotter-app:latest",
            "essential": true,
            "command": ["node", "server.js"],
            "portMappings": [{"containerPort": 3000, "protocol": "tcp"}],
            "environment": [
                {"name": "NODE_ENV", "value": "production"},
                {"name": "PORT", "value": "3000"}
            ],
            "secrets": secrets,
            "healthCheck": {
                "command": ["CMD-SHELL", "curl -f http://localhost:3000 || exit 1"],
                "interval": 30, "timeout": 10, "retries": 3, "startPeriod": 10
            },
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {
                    "awslogs-group": "/ecs/spotter-app",
                    "awslogs-region": "us-east-1",
                    "awslogs-stream-prefix": "ecs"
                }
            }
        }]
    }});
    (td, expected)
}

#[tokio::test]
async fn sixty_three_secrets_give_the_app_what_ecs_would() {
    let ssm = ssm(&testkit::service_var("AWS_REGION")).await;
    let (td, expected) = spotter_shaped(&ssm).await;

    let out = import(&td, &[]);
    register(&out.td);
    let c = &out.td["containerDefinitions"][0];
    assert_eq!(pairs(&c["environment"]).len(), 2 + 63);
    assert!(c.get("secrets").is_none());
    assert_eq!(c["entryPoint"], json!(["/usr/local/bin/agent", "--"]));
    assert_eq!(c["command"], json!(["node", "server.js"]));
    assert!(out.stderr.contains("no entryPoint"), "{}", out.stderr);
    assert_eq!(
        c["healthCheck"]["command"],
        json!([
            "CMD",
            "/usr/local/bin/healthcheck",
            "probe",
            "--url",
            "http://127.0.0.1:3000/"
        ])
    );
    assert_eq!(c["healthCheck"]["startPeriod"], 10);
    assert!(out.td.get("revision").is_none() && out.td.get("taskDefinitionArn").is_none());
    let policy = out.policy.to_string();
    assert!(policy.contains("ssm:GetParameters") && policy.contains("SPOTTER_VAR_62"));
    assert_same_variables(&app_env_under_agent(c).await, &expected);

    // Collapsed, the path gives the same variables (it holds exactly these parameters).
    let out = import(&td, &["--collapse"]);
    register(&out.td);
    let c = &out.td["containerDefinitions"][0];
    let env = pairs(&c["environment"]);
    assert!(env.len() < 2 + 63, "{env:?}");
    // Written by ARN and by name, in the task's region and account: one path, read once.
    let paths = env
        .iter()
        .find(|(n, _)| n == "DECKHAND_ENV_PARAMETERS")
        .unwrap();
    assert!(
        paths.1.starts_with("arn:aws:ssm:") && !paths.1.contains(','),
        "{paths:?}"
    );
    assert_eq!(env.len(), 3);
    assert!(out.stderr.contains("collapsed"), "{}", out.stderr);
    assert!(out.policy.to_string().contains("ssm:GetParametersByPath"));
    assert_same_variables(&app_env_under_agent(c).await, &expected);
}

#[tokio::test]
async fn every_secrets_manager_form_means_the_same_under_the_agent() {
    let region = testkit::service_var("AWS_REGION");
    let sm = sm(&region).await;
    let ssm = ssm(&region).await;
    let json_value = r#"{"API_KEY":"key-value-1","TOKEN":"token-value-1"}"#;
    let (name, arn) = create_secret(&sm, "import", json_value).await;
    let (_, plain_arn) = create_secret(&sm, "import", "whole-value-1").await;
    let put = sm
        .put_secret_value()
        .secret_id(&name)
        .secret_string(r#"{"API_KEY":"key-value-2","TOKEN":"token-value-2"}"#)
        .send()
        .await
        .unwrap();
    let current_version = put.version_id.unwrap();
    let partial = arn[..arn.len() - 7].to_owned();
    let parameter = format!("/{}/DB_HOST", testkit::unique_name("import"));
    ssm.put_parameter()
        .name(&parameter)
        .value("db-host-1")
        .r#type(ParameterType::String)
        .send()
        .await
        .unwrap();
    ssm.put_parameter()
        .name(&parameter)
        .value("db-host-2")
        .r#type(ParameterType::String)
        .overwrite(true)
        .send()
        .await
        .unwrap();

    let secrets = json!([
        {"name": "WHOLE", "valueFrom": plain_arn},
        {"name": "FULL_KEY", "valueFrom": format!("{arn}:API_KEY::")},
        {"name": "PARTIAL_KEY", "valueFrom": format!("{partial}:TOKEN::")},
        {"name": "PREVIOUS", "valueFrom": format!("{partial}:API_KEY:AWSPREVIOUS:")},
        {"name": "BY_VERSION", "valueFrom": format!("{arn}:TOKEN::{current_version}")},
        {"name": "PARAM_V1", "valueFrom": format!("{parameter}:1")},
        {"name": "PARAM", "valueFrom": parameter},
    ]);
    let expected: Vec<(String, String)> = [
        ("WHOLE", "whole-value-1"),
        ("FULL_KEY", "key-value-2"),
        ("PARTIAL_KEY", "token-value-2"),
        ("PREVIOUS", "key-value-1"),
        ("BY_VERSION", "token-value-2"),
        ("PARAM_V1", "db-host-1"),
        ("PARAM", "db-host-2"),
        ("APP_MODE", "web"),
    ]
    .iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect();
    let td = json!({
        "family": testkit::unique_name("import"),
        "taskRoleArn": "arn:aws:iam::123456789012:role/app",
        "containerDefinitions": [
            {
                "name": "app",
                "image": "app:1",
                "entryPoint": ["/bin/sh", "-c"],
                "command": ["exec node server.js"],
                "memory": 256,
                "environment": [{"name": "APP_MODE", "value": "web"}],
                "secrets": secrets,
            },
            {"name": "sidecar", "image": "proxy:1", "memory": 64}
        ]
    });
    let out = import(&td, &[]);
    register(&out.td);
    let c = &out.td["containerDefinitions"][0];
    assert_eq!(
        c["command"],
        json!(["/bin/sh", "-c", "exec node server.js"])
    );
    assert_eq!(
        out.td["containerDefinitions"][1],
        td["containerDefinitions"][1]
    );
    let policy = out.policy.to_string();
    assert!(policy.contains(&arn) && policy.contains(&format!("{partial}-??????")));
    assert_same_variables(&app_env_under_agent(c).await, &expected);
}

#[test]
fn bad_files_exit_64_naming_what_is_wrong() {
    let dir = scratch();
    let cases = [
        ("not json {", "is not valid JSON"),
        ("[1, 2]", "top level is not a JSON object"),
        (r#"{"family": "x"}"#, "no \"containerDefinitions\""),
    ];
    for (text, message) in cases {
        let file = dir.write("td.json", text);
        let out = bare_agent()
            .arg("import-task-definition")
            .arg(&file)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(64), "{text}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{text}: {stderr}");
        assert!(out.stdout.is_empty());
    }
    let out = bare_agent()
        .args(["import-task-definition", "/nonexistent/td.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let out = bare_agent()
        .args(["import-task-definition", "--no-such-flag"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let out = Command::new(AGENT)
        .args(["import-task-definition", "--help"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
}
