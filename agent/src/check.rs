//! `agent check`: the start without the app. It reads the settings, resolves every
//! reference, whole secret, parameter path and database secret with the start's own
//! code (the same plan, AWS checks, fetch with its retries and deadline), sets up
//! redaction the way the start does, and instead of running anything prints one row
//! per variable the app would get: its name, where it comes from, and what happened.
//! It exits with the code the start would exit with before the app (0: it would
//! start), except that a `DECKHAND_*` variable that is not a setting is an error here
//! (78), where the start only warns.
//!
//! What it is not: it never prints a value, a hash or a length of one (a row holds
//! none: see [`Row`]), and it runs neither the migrations nor `/health`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use conventions::{Env, ProcessEnv};
use logship::sanitize::{Config, Sanitizer};
use serde_json::json;

use crate::config::Settings;
use crate::exit;
use crate::secrets::key::Key;
use crate::secrets::plan::{self, Origin, Plan};
use crate::secrets::{source, Sources};

/// How long the exit waits for the agent's last messages to reach stderr.
const STDERR_FLUSH: std::time::Duration = std::time::Duration::from_millis(500);

/// `agent check`'s own flags; the agent's settings are read from the `DECKHAND_*`
/// variables, as for the start.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "agent check",
    bin_name = "agent check",
    version,
    about = "Does everything the start does up to the app (secrets, parameters, the database secret, required variables, settings, redaction) and prints one row per variable the app would get: its name, where it comes from and what happened. Never a value. The agent's settings are read from the DECKHAND_* variables.",
    after_help = "Exit codes: the start's — 0 it would start, 64 a bad setting, 69 AWS not reachable in time, 78 configuration (a reference, secret, key, parameter, access, required variable), and 78 for a DECKHAND_* variable that is not a setting (the start only warns). An app named check runs as `agent -- check`."
)]
pub struct CheckArgs {
    /// Print one JSON object, {"rows":[…],"summary":{…}}, instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Check an ECS task definition's container instead of this process's environment: a JSON file as `aws ecs describe-task-definition` prints it ({"taskDefinition":{…}}) or as registered ({…}). The container's environment is the app's environment and the agent's settings; each of its secrets becomes the reference the agent reads with the same meaning. AWS credentials and region still come from this process.
    #[arg(long, value_name = "FILE")]
    pub task_definition: Option<std::path::PathBuf>,
    /// The container of --task-definition to check (needed when it has several).
    #[arg(long, value_name = "NAME", requires = "task_definition")]
    pub container: Option<String>,
}

/// The command of `agent check`, for `--help` and the docs tests.
pub fn command() -> clap::Command {
    <CheckArgs as clap::CommandFactory>::command()
}

/// What happened to one variable, as `agent check` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    NotFound,
    AccessDenied,
    DecryptionFailed,
    Malformed,
    Invalid,
    TimedOut,
    Shadowed,
    RequiredMissing,
    RequiredEmpty,
    /// A secret shorter than `logship::sanitize::MIN_SECRET_LEN`: not redacted.
    TooShortToRedact,
    /// Listed in `DECKHAND_REDACT_SKIP`.
    NotRedactedSkip,
    /// A `String` or `StringList` parameter.
    NotRedactedConfiguration,
    /// A `DECKHAND_*` variable that is not a setting.
    UnknownSetting,
    /// A setting with a value that is not valid.
    InvalidSetting,
    /// No credentials, no region for what is named without one, or a file or an
    /// endpoint the AWS SDK could not use.
    AwsConfiguration,
}

impl Verdict {
    /// The JSON code.
    pub fn code(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::NotFound => "not_found",
            Verdict::AccessDenied => "access_denied",
            Verdict::DecryptionFailed => "decryption_failed",
            Verdict::Malformed => "malformed",
            Verdict::Invalid => "invalid",
            Verdict::TimedOut => "timed_out",
            Verdict::Shadowed => "shadowed",
            Verdict::RequiredMissing => "required_missing",
            Verdict::RequiredEmpty => "required_empty",
            Verdict::TooShortToRedact => "too_short_to_redact",
            Verdict::NotRedactedSkip => "not_redacted_skip",
            Verdict::NotRedactedConfiguration => "not_redacted_configuration",
            Verdict::UnknownSetting => "unknown_setting",
            Verdict::InvalidSetting => "invalid_setting",
            Verdict::AwsConfiguration => "aws_configuration",
        }
    }

    /// Whether it stops the start (or, for an unknown setting, fails the check).
    pub fn is_problem(self) -> bool {
        !matches!(
            self,
            Verdict::Ok
                | Verdict::Shadowed
                | Verdict::TooShortToRedact
                | Verdict::NotRedactedSkip
                | Verdict::NotRedactedConfiguration
        )
    }
}

/// One row: never a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The variable (or the setting, for a whole secret, path or setting problem).
    pub name: String,
    /// `plain`, `secret`, `parameter`, `path`, `database`, `required`, `setting`, `aws`.
    pub kind: &'static str,
    /// Where it comes from, for people: `secret "app/db" key "password"`.
    pub source: String,
    pub verdict: Verdict,
    /// What happened, for people: `ok`, `not found`, `shadowed by NAME …`.
    pub status: String,
    /// A problem's message as the start prints it (names, never a value).
    pub message: Option<String>,
}

/// The rows and the exit code the start would have.
#[derive(Debug, Clone)]
pub struct Report {
    pub rows: Vec<Row>,
    pub exit_code: u8,
}

/// Runs `agent check` with `args` (`check` first) over the process's environment.
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    std::panic::set_hook(Box::new(crate::diagnostics::report_panic));
    let args = match CheckArgs::try_parse_from(args) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.exit_code() == 0 { 0 } else { exit::USAGE });
        }
    };
    let (env, mut untranslated) = match &args.task_definition {
        None => (None, Vec::new()),
        Some(file) => match read_task_definition(file, args.container.as_deref()) {
            Ok((env, rows)) => (Some(env), rows),
            Err(e) => {
                eprintln!("agent check: {e}");
                return ExitCode::from(exit::USAGE);
            }
        },
    };
    match env {
        Some(env) => run(&args, &env, &mut untranslated),
        None => run(&args, &ProcessEnv, &mut untranslated),
    }
}

/// The check over `env` (the process's, or a task definition's container's).
fn run(args: &CheckArgs, env: &impl Env, first: &mut Vec<Row>) -> ExitCode {
    let settings = match Settings::from_env(env, &[]) {
        Ok(s) => s,
        Err(invalid) => {
            let code = crate::config::ParseError::Invalid(invalid.clone()).exit_code();
            let rows = invalid
                .iter()
                .map(|i| Row {
                    name: i.name.clone(),
                    kind: "setting",
                    source: "setting".into(),
                    verdict: Verdict::InvalidSetting,
                    status: "invalid setting".into(),
                    message: Some(i.to_string()),
                })
                .collect();
            print(
                &Report {
                    rows,
                    exit_code: code,
                },
                args.json,
            );
            return ExitCode::from(code);
        }
    };
    let diagnostics = crate::init_logging(settings.log_level, settings.log_format);
    let runtime = match crate::entry::runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let mut report = runtime.block_on(check(&settings, env, &ProcessEnv));
    if !first.is_empty() {
        report.exit_code = exit::CONFIG;
        first.append(&mut report.rows);
        report.rows = std::mem::take(first);
    }
    print(&report, args.json);
    diagnostics.flush_stderr(STDERR_FLUSH);
    ExitCode::from(report.exit_code)
}

/// The start up to the app, with every outcome kept: see the module's doc. `env` is the
/// app's environment (and the settings'); `aws` is where the AWS credentials and
/// region are looked for (the same, but for a task definition's container).
pub async fn check(settings: &Settings, env: &impl Env, aws: &impl Env) -> Report {
    let mut rows: Vec<Row> = settings.unknown.iter().map(|w| unknown_row(w)).collect();
    let mut exit_code = if rows.is_empty() { 0 } else { exit::CONFIG };
    let (plan, malformed) = Plan::parse(env.vars(), settings.secrets.clone());
    if !malformed.is_empty() {
        exit_code = exit::CONFIG;
    }
    let none = Redaction::default();
    rows.extend(malformed.into_iter().map(|(row, _)| convert(row, &none)));
    // The start refuses these before anything else it would do with AWS.
    let keys = plan.keys();
    if let Err(failure) = crate::check_aws(settings, aws, &keys).await {
        return aws_failure(rows, failure);
    }
    let fetched = if keys.is_empty() {
        Default::default()
    } else {
        let sdk = aws::sdk::Shared::default();
        let sources = Arc::new(Sources::new(&sdk.get().await));
        source::fetch_all(&sources, keys, settings.secrets_timeout).await
    };
    let explained = plan.explain(&fetched);
    if let Some(failure) = &explained.failure {
        if exit_code == 0 || failure.exit_code() == exit::CONFIG {
            exit_code = failure.exit_code();
        }
    }
    // The redaction set-up of the start (`start_logs`): the same sanitizer, built from
    // the same values, says which are too short to redact.
    let config = Config {
        secrets: crate::redactable(settings, &explained.secrets),
        redact_name: settings.logs.redact_name,
        extra_patterns: settings.logs.redact_patterns.clone(),
        extra_keys: settings.logs.redact_keys.clone(),
    };
    let too_short = Sanitizer::new(config).map(|(_, s)| s).unwrap_or_default();
    let redaction = Redaction {
        skip: &settings.redact_skip,
        too_short: &too_short,
    };
    rows.extend(explained.rows.into_iter().map(|r| convert(r, &redaction)));
    Report { rows, exit_code }
}

/// The report of a start refused for its AWS configuration: `rows` so far and a row
/// for each problem, exit 78.
fn aws_failure(mut rows: Vec<Row>, failure: crate::secrets::Failure) -> Report {
    rows.extend(failure.errors.into_iter().map(|e| Row {
        name: "AWS".into(),
        kind: "aws",
        source: "AWS configuration".into(),
        verdict: Verdict::AwsConfiguration,
        status: "AWS not configured".into(),
        message: Some(e.message),
    }));
    Report {
        rows,
        exit_code: exit::CONFIG,
    }
}

/// Reads `file` (a task definition) and returns `container`'s environment as ECS would
/// give it to the agent, with a row for each `secrets` entry that has no reference
/// with the same meaning.
fn read_task_definition(
    file: &std::path::Path,
    container: Option<&str>,
) -> Result<(BTreeMap<String, String>, Vec<Row>), String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read --task-definition {}: {e}", file.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("--task-definition {} is not JSON: {e}", file.display()))?;
    task_environment(&json, container)
}

/// `container`'s environment of a task definition (`{"taskDefinition":{…}}` or `{…}`):
/// its `environment`, and each `secrets` entry as the reference the agent reads with the
/// same meaning ([`crate::import::translate`], the import's own reading of `valueFrom`).
pub fn task_environment(
    json: &serde_json::Value,
    container: Option<&str>,
) -> Result<(BTreeMap<String, String>, Vec<Row>), String> {
    let definition = json.get("taskDefinition").unwrap_or(json);
    let containers = definition
        .get("containerDefinitions")
        .and_then(|c| c.as_array())
        .ok_or("the task definition has no containerDefinitions")?;
    let name_of = |c: &serde_json::Value| {
        c.get("name")
            .and_then(|n| n.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let chosen = match container {
        Some(name) => containers
            .iter()
            .find(|c| name_of(c) == name)
            .ok_or_else(|| {
                let names: Vec<String> = containers.iter().map(name_of).collect();
                format!(
                    "the task definition has no container {name:?} (it has {})",
                    names.join(", ")
                )
            })?,
        None if containers.len() == 1 => &containers[0],
        None => {
            let names: Vec<String> = containers.iter().map(name_of).collect();
            return Err(format!(
                "the task definition has {} containers ({}): name one with --container",
                containers.len(),
                names.join(", ")
            ));
        }
    };
    let pairs = |field: &str, value: &str| -> Vec<(String, String)> {
        chosen
            .get(field)
            .and_then(|e| e.as_array())
            .into_iter()
            .flatten()
            .filter_map(|e| {
                let name = e.get("name")?.as_str()?;
                let value = e.get(value)?.as_str()?;
                Some((name.to_owned(), value.to_owned()))
            })
            .collect()
    };
    let mut env: BTreeMap<String, String> = pairs("environment", "value").into_iter().collect();
    let mut rows = Vec::new();
    for (name, value_from) in pairs("secrets", "valueFrom") {
        match crate::import::translate(&value_from) {
            Ok((reference, _)) => {
                env.insert(name, reference);
            }
            Err(reason) => rows.push(Row {
                kind: "reference",
                source: "secrets (task definition)".into(),
                verdict: Verdict::Malformed,
                status: "malformed".into(),
                message: Some(format!(
                    "{name}: valueFrom {value_from:?} is not valid: {reason}"
                )),
                name,
            }),
        }
    }
    Ok((env, rows))
}

/// What the start's redaction set-up says: the names it leaves alone.
#[derive(Debug, Default)]
struct Redaction<'a> {
    /// `DECKHAND_REDACT_SKIP`.
    skip: &'a [String],
    /// Shorter than `logship::sanitize::MIN_SECRET_LEN`, as the sanitizer found.
    too_short: &'a [String],
}

impl Redaction<'_> {
    /// What happens in the logs to the value of an `Ok` row.
    fn of(&self, row: &plan::Row) -> (Verdict, String) {
        if row.secret && self.skip.contains(&row.name) {
            (
                Verdict::NotRedactedSkip,
                "ok, not redacted: DECKHAND_REDACT_SKIP".to_owned(),
            )
        } else if row.secret && self.too_short.contains(&row.name) {
            (
                Verdict::TooShortToRedact,
                format!(
                    "ok, too short to redact (under {} characters)",
                    logship::sanitize::MIN_SECRET_LEN
                ),
            )
        } else if row.secret {
            (Verdict::Ok, "ok, redacted".to_owned())
        } else if row.configuration {
            (
                Verdict::NotRedactedConfiguration,
                "ok, not redacted: configuration (String parameter)".to_owned(),
            )
        } else {
            (Verdict::Ok, "ok".to_owned())
        }
    }
}

/// A warning of [`Settings::unknown`] as a row: its name is what comes before
/// " is not a deckhand setting".
fn unknown_row(warning: &str) -> Row {
    let name = warning
        .split(" is not a deckhand setting")
        .next()
        .unwrap_or_default();
    Row {
        name: name.to_owned(),
        kind: "setting",
        source: "setting".into(),
        verdict: Verdict::UnknownSetting,
        status: "not a deckhand setting".into(),
        message: Some(warning.to_owned()),
    }
}

/// The plan's row, for people and machines.
fn convert(row: plan::Row, redaction: &Redaction) -> Row {
    let (kind, source) = origin(&row.origin);
    let (verdict, status) = match &row.status {
        plan::Status::Ok => redaction.of(&row),
        _ => (verdict(&row.status), words(&row.status)),
    };
    Row {
        name: row.name,
        kind,
        source,
        verdict,
        status,
        message: row.message,
    }
}

fn verdict(status: &plan::Status) -> Verdict {
    match status {
        plan::Status::Ok => Verdict::Ok,
        plan::Status::NotFound => Verdict::NotFound,
        plan::Status::AccessDenied => Verdict::AccessDenied,
        plan::Status::Decryption => Verdict::DecryptionFailed,
        plan::Status::Malformed => Verdict::Malformed,
        plan::Status::Invalid => Verdict::Invalid,
        plan::Status::TimedOut => Verdict::TimedOut,
        plan::Status::ShadowedBy(_) => Verdict::Shadowed,
        plan::Status::RequiredMissing => Verdict::RequiredMissing,
        plan::Status::RequiredEmpty => Verdict::RequiredEmpty,
    }
}

/// A problem or a shadowed value, for people.
fn words(status: &plan::Status) -> String {
    match status {
        plan::Status::Ok => "ok".to_owned(),
        plan::Status::NotFound => "not found".to_owned(),
        plan::Status::AccessDenied => "access denied".to_owned(),
        plan::Status::Decryption => "decryption refused (KMS)".to_owned(),
        plan::Status::Malformed => "malformed".to_owned(),
        plan::Status::Invalid => "cannot be used".to_owned(),
        plan::Status::TimedOut => "AWS did not answer in time".to_owned(),
        plan::Status::ShadowedBy(by) => format!("shadowed by {by}"),
        plan::Status::RequiredMissing => "required but missing".to_owned(),
        plan::Status::RequiredEmpty => "required but empty".to_owned(),
    }
}

/// The kind and the words for where a value comes from.
fn origin(origin: &Origin) -> (&'static str, String) {
    let store = |key: &Key| match key {
        Key::SecretsManager(_) => ("secret", format!("secret \"{key}\"")),
        Key::Parameter(_) => ("parameter", format!("parameter \"{key}\"")),
        Key::ParameterPath(_) => ("path", format!("path \"{key}\"")),
    };
    match origin {
        Origin::Plain => ("plain", "plain".into()),
        Origin::Unparsed => ("reference", "a reference that cannot be read".into()),
        Origin::Reference { key, json_key } => {
            let (kind, mut text) = store(key);
            if let Some(k) = json_key {
                text.push_str(&format!(" key \"{k}\""));
            }
            (kind, text)
        }
        Origin::EnvSecret(key) => {
            let (kind, text) = store(key);
            (kind, format!("{text} (DECKHAND_ENV_SECRETS)"))
        }
        Origin::Database(key) => ("database", format!("database {}", store(key).1)),
        Origin::Path { path, parameter } => match parameter {
            Some(p) => ("path", format!("path \"{path}\" parameter \"{p}\"")),
            None => ("path", format!("path \"{path}\"")),
        },
        Origin::Required => ("required", "DECKHAND_REQUIRED_ENV".into()),
    }
}

/// Prints the report on stdout: a table for people, or one JSON object.
fn print(report: &Report, as_json: bool) {
    let text = if as_json {
        to_json(report).to_string()
    } else {
        table(report)
    };
    println!("{text}");
}

/// `{"rows":[{"name","kind","source","status","problem","message"}…],"summary":{…}}`.
pub fn to_json(report: &Report) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = report
        .rows
        .iter()
        .map(|r| {
            json!({
                "name": r.name,
                "kind": r.kind,
                "source": r.source,
                "status": r.verdict.code(),
                "detail": r.status,
                "problem": r.verdict.is_problem(),
                "message": r.message,
            })
        })
        .collect();
    let problems = report
        .rows
        .iter()
        .filter(|r| r.verdict.is_problem())
        .count();
    json!({
        "rows": rows,
        "summary": {
            "rows": report.rows.len(),
            "problems": problems,
            "would_start": report.exit_code == 0,
            "exit_code": report.exit_code,
        }
    })
}

/// Outside text (names come from the environment) as one line of a table: control
/// characters escaped.
fn shown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

/// NAME, SOURCE, STATUS columns; each problem's message under its row; a summary line.
pub fn table(report: &Report) -> String {
    let cells: Vec<[String; 3]> = report
        .rows
        .iter()
        .map(|r| [shown(&r.name), shown(&r.source), shown(&r.status)])
        .collect();
    let width = |i: usize, title: &str| {
        cells
            .iter()
            .map(|c| c[i].chars().count())
            .chain([title.len()])
            .max()
            .unwrap_or_default()
    };
    let (w0, w1) = (width(0, "NAME"), width(1, "SOURCE"));
    let mut out = format!("{:w0$}  {:w1$}  STATUS\n", "NAME", "SOURCE");
    for (row, c) in report.rows.iter().zip(&cells) {
        out.push_str(&format!("{:w0$}  {:w1$}  {}\n", c[0], c[1], c[2]));
        if let Some(m) = row.message.as_ref().filter(|_| row.verdict.is_problem()) {
            out.push_str(&format!("    {}\n", shown(m)));
        }
    }
    let problems = report
        .rows
        .iter()
        .filter(|r| r.verdict.is_problem())
        .count();
    if report.exit_code == 0 {
        out.push_str("the app would start (exit 0)");
    } else {
        out.push_str(&format!(
            "the app would not start: {problems} problem{} (exit {})",
            if problems == 1 { "" } else { "s" },
            report.exit_code
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::source::fetch_all;
    use crate::secrets::source::tests::Fake;
    use std::collections::BTreeMap;
    use std::time::Duration;

    fn settings(vars: &[(&str, &str)]) -> (Settings, BTreeMap<String, String>) {
        let env: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        (Settings::from_env(&env, &[]).unwrap(), env)
    }

    /// The rows `check` would print for `vars`, fetched from `fake`.
    async fn rows(fake: Fake, vars: &[(&str, &str)]) -> (Vec<Row>, Option<u8>) {
        let (settings, env) = settings(vars);
        let (plan, _) = Plan::parse(env.vars(), settings.secrets.clone());
        let fetched = fetch_all(&Arc::new(fake), plan.keys(), Duration::from_secs(2)).await;
        let explained = plan.explain(&fetched);
        let too_short = Sanitizer::new(Config {
            secrets: crate::redactable(&settings, &explained.secrets),
            redact_name: false,
            extra_patterns: Vec::new(),
            extra_keys: Vec::new(),
        })
        .unwrap()
        .1;
        let code = explained.failure.as_ref().map(|f| f.exit_code());
        let redaction = Redaction {
            skip: &settings.redact_skip,
            too_short: &too_short,
        };
        let rows = explained
            .rows
            .into_iter()
            .map(|r| convert(r, &redaction))
            .collect();
        (rows, code)
    }

    fn find<'a>(rows: &'a [Row], name: &str, verdict: Verdict) -> &'a Row {
        rows.iter()
            .find(|r| r.name == name && r.verdict == verdict)
            .unwrap_or_else(|| panic!("no {verdict:?} row for {name}: {rows:#?}"))
    }

    #[tokio::test]
    async fn every_outcome_has_its_row_and_no_value() {
        let fake = Fake::with(&[
            (
                "app/env",
                r#"{"NODE_ENV":"production","API_KEY":"api-key-value-1","PIN":"1234","SHADOW":"from-secret-2"}"#,
            ),
            ("text", "not-json-value-3"),
        ]);
        let (rows, code) = rows(
            fake,
            &[
                ("DECKHAND_ENV_SECRETS", "app/env"),
                ("DECKHAND_REDACT_SKIP", "NODE_ENV"),
                ("DECKHAND_REQUIRED_ENV", "ABSENT"),
                ("SHADOW", "plain-4"),
                ("MISSING", "secretsmanager:nope"),
                ("BADJSON", "secretsmanager:text:k"),
                ("KEEP", "as-is-5"),
            ],
        )
        .await;
        assert_eq!(code, Some(exit::CONFIG));
        assert_eq!(find(&rows, "KEEP", Verdict::Ok).source, "plain");
        assert_eq!(
            find(&rows, "API_KEY", Verdict::Ok).source,
            "secret \"app/env\" (DECKHAND_ENV_SECRETS)"
        );
        find(&rows, "NODE_ENV", Verdict::NotRedactedSkip);
        find(&rows, "PIN", Verdict::TooShortToRedact);
        let shadowed = find(&rows, "SHADOW", Verdict::Shadowed);
        assert_eq!(shadowed.status, "shadowed by SHADOW set in the environment");
        find(&rows, "MISSING", Verdict::NotFound);
        let bad = find(&rows, "BADJSON", Verdict::Malformed);
        assert_eq!(bad.source, "secret \"text\" key \"k\"");
        // Reported with the other problems (the start names it once they are fixed).
        find(&rows, "ABSENT", Verdict::RequiredMissing);
        let report = Report {
            rows,
            exit_code: exit::CONFIG,
        };
        let printed = format!("{}\n{}", table(&report), to_json(&report));
        for value in [
            "production",
            "api-key-value-1",
            "1234",
            "from-secret-2",
            "not-json-value-3",
            "plain-4",
            "as-is-5",
        ] {
            assert!(!printed.contains(value), "{value} in {printed}");
        }
        assert!(printed.contains("the app would not start"), "{printed}");
    }

    #[tokio::test]
    async fn a_required_variable_is_reported_when_nothing_else_is() {
        let (rows, code) = rows(
            Fake::default(),
            &[("DECKHAND_REQUIRED_ENV", "ABSENT,EMPTY"), ("EMPTY", "")],
        )
        .await;
        assert_eq!(code, Some(exit::CONFIG));
        find(&rows, "ABSENT", Verdict::RequiredMissing);
        find(&rows, "EMPTY", Verdict::RequiredEmpty);
    }

    #[test]
    fn a_task_definitions_container_gives_the_environment_ecs_would() {
        let described = serde_json::json!({"taskDefinition": {"containerDefinitions": [
            {"name": "web", "environment": [{"name": "PLAIN", "value": "x"}],
             "secrets": [
                {"name": "DB", "valueFrom": "arn:aws:secretsmanager:us-east-1:1:secret:db-AbCdEf:password::"},
                {"name": "P", "valueFrom": "/app/P"},
                {"name": "BAD", "valueFrom": "no spaces allowed"}]},
            {"name": "sidecar"}]}});
        let (env, rows) = task_environment(&described, Some("web")).unwrap();
        assert_eq!(env["PLAIN"], "x");
        assert_eq!(
            env["DB"],
            "arn:aws:secretsmanager:us-east-1:1:secret:db-AbCdEf:password::"
        );
        assert_eq!(env["P"], "ssm:/app/P");
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(
            (rows[0].name.as_str(), rows[0].verdict),
            ("BAD", Verdict::Malformed)
        );
        let registered = &described["taskDefinition"];
        let e = task_environment(registered, None).unwrap_err();
        assert!(e.contains("name one with --container"), "{e}");
        let e = task_environment(registered, Some("db")).unwrap_err();
        assert!(
            e.contains("no container \"db\" (it has web, sidecar)"),
            "{e}"
        );
    }

    #[test]
    fn an_unknown_setting_is_a_row_named_by_the_variable() {
        let row = unknown_row("DECKHAND_ENV_SECRET is not a deckhand setting (did you mean DECKHAND_ENV_SECRETS?); it is ignored and not passed to the app");
        assert_eq!(row.name, "DECKHAND_ENV_SECRET");
        assert!(row.verdict.is_problem());
    }
}
