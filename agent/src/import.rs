//! `agent import-task-definition FILE`: an ECS task definition rewritten to run under
//! the agent, and the task-role policy the result needs.
//!
//! What changes, per rewritten container:
//!
//! - `entryPoint` becomes `[AGENT, "--"]`; the old `entryPoint` + `command` becomes the
//!   `command` (without an `entryPoint` the image's own ENTRYPOINT cannot be known here:
//!   `command` is kept, and a note says so).
//! - each `secrets[]` entry becomes an `environment` entry whose value is the same
//!   `valueFrom`, which the agent reads as a reference with the same meaning (a bare
//!   parameter name, which ECS reads in the task's region, becomes `ssm:NAME`). Every
//!   value is checked with the agent's own parsers ([`reference::parse`]); one the
//!   agent cannot express stays in `secrets[]` (ECS keeps injecting it) and is reported.
//! - with `--collapse`, the keys of one secret (or the parameters of one path) become one
//!   `DECKHAND_ENV_SECRETS` (`DECKHAND_ENV_PARAMETERS`) entry when every variable has
//!   the name the agent would give it. Without AWS nobody can check that the secret holds
//!   no other key (the path no other parameter): that is the user's promise, so it is
//!   off by default and each collapse is reported.
//! - a `healthCheck` that runs curl or wget against localhost becomes
//!   `healthcheck probe --url …` (interval, timeout, retries and start period kept).
//!
//! The read-only fields DescribeTaskDefinition adds are dropped, so the output is what
//! RegisterTaskDefinition takes. It never calls AWS and never loses an entry. This module
//! is pure functions over JSON plus the thin [`main`]; nothing of the agent's run is here.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use serde_json::{json, Map, Value};

use crate::exit;
use crate::secrets::parameter::{self, ParameterKey};
use crate::secrets::plan::OWN_PREFIX;
use crate::secrets::reference::{self, Reference, SmKey};
use crate::secrets::Key;

/// The subcommand's name: `agent import-task-definition …`.
pub const COMMAND: &str = "import-task-definition";

/// Where the agent is in the deckhand images.
pub const DEFAULT_AGENT: &str = "/usr/local/bin/agent";

/// The fields DescribeTaskDefinition adds that RegisterTaskDefinition does not take.
pub const READ_ONLY_FIELDS: [&str; 8] = [
    "taskDefinitionArn",
    "revision",
    "status",
    "requiresAttributes",
    "compatibilities",
    "registeredAt",
    "registeredBy",
    "deregisteredAt",
];

/// Hosts a container health check reaches the container itself on.
const LOCAL_HOSTS: [&str; 5] = ["localhost", "127.0.0.1", "0.0.0.0", "[::1]", "::1"];

/// Secrets Manager: a full ARN ends in `-` and 6 random characters.
const SECRET_SUFFIX_LEN: usize = 6;

/// The command line of `agent import-task-definition`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "agent import-task-definition",
    about = "Rewrites an ECS task definition to run under the agent: secrets[] become references in environment, entryPoint the agent; prints it, and the task role's IAM policy on stderr. Never calls AWS.",
    disable_version_flag = true
)]
pub struct Args {
    /// The task definition: `{"taskDefinition": …}` as describe-task-definition prints
    /// it, or the registered form; `-` reads stdin.
    pub file: PathBuf,
    /// Rewrite only this container (default: every container with `secrets`, or the
    /// only container).
    #[arg(long)]
    pub container: Option<String>,
    /// The agent's path in the image.
    #[arg(long, default_value = DEFAULT_AGENT)]
    pub agent: String,
    /// Write the task role's IAM policy here instead of stderr.
    #[arg(long)]
    pub policy_out: Option<PathBuf>,
    /// Collapse the keys of one secret into DECKHAND_ENV_SECRETS and the parameters of
    /// one path into DECKHAND_ENV_PARAMETERS, when each variable is named as the agent
    /// would name it; the secret must then hold no other key, the path (recursively) no
    /// other parameter.
    #[arg(long)]
    pub collapse: bool,
}

/// What to rewrite and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// Only this container; `None`: every container with `secrets`, or the only one.
    pub container: Option<String>,
    /// The agent's path in the image (`healthcheck` is looked for beside it).
    pub agent: String,
    /// Whether to collapse into `DECKHAND_ENV_SECRETS` / `DECKHAND_ENV_PARAMETERS`.
    pub collapse: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            container: None,
            agent: DEFAULT_AGENT.to_owned(),
            collapse: false,
        }
    }
}

/// How much a note matters: a warning needs the user's attention before deploying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Note,
    Warning,
}

/// One line for stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub level: Level,
    pub text: String,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.level {
            Level::Note => write!(f, "agent: {}", self.text),
            Level::Warning => write!(f, "agent: warning: {}", self.text),
        }
    }
}

/// The result: the task definition to register, the task role's policy, what to tell.
#[derive(Debug, Clone)]
pub struct Imported {
    pub task_definition: Value,
    pub policy: Value,
    pub notes: Vec<Note>,
}

/// Why a file cannot be imported (all exit 64).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error("not a task definition: {0}")]
    Shape(String),
    #[error("--container {name:?} is not in the task definition (its containers: {available})")]
    NoSuchContainer { name: String, available: String },
}

fn shape(text: impl Into<String>) -> ImportError {
    ImportError::Shape(text.into())
}

/// Runs the subcommand; `args` start with the subcommand's name.
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let args = match Args::try_parse_from(args) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                conventions::exit::OK
            });
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::from(conventions::exit::OK),
        Err(message) => {
            eprintln!("agent: {message}");
            ExitCode::from(exit::USAGE)
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let name = args.file.display();
    let mut text = String::new();
    let read = if args.file == Path::new("-") {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::read_to_string(&args.file).map(|t| text = t)
    };
    read.map_err(|e| format!("cannot read {name}: {e}"))?;
    let input: Value =
        serde_json::from_str(&text).map_err(|e| format!("{name} is not valid JSON: {e}"))?;
    let options = Options {
        container: args.container.clone(),
        agent: args.agent.clone(),
        collapse: args.collapse,
    };
    let imported = import(&input, &options).map_err(|e| format!("{name}: {e}"))?;
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default();
    for note in &imported.notes {
        eprintln!("{note}");
    }
    match &args.policy_out {
        Some(path) => std::fs::write(path, pretty(&imported.policy) + "\n")
            .map_err(|e| format!("cannot write --policy-out {}: {e}", path.display()))?,
        None => eprintln!(
            "agent: the task role's policy:\n{}",
            pretty(&imported.policy)
        ),
    }
    println!("{}", pretty(&imported.task_definition));
    Ok(())
}

/// Rewrites `input` (either shape) for the agent.
pub fn import(input: &Value, options: &Options) -> Result<Imported, ImportError> {
    let top = input
        .as_object()
        .ok_or_else(|| shape("the top level is not a JSON object"))?;
    let (mut td, tags) = match top.get("taskDefinition") {
        Some(Value::Object(td)) => (td.clone(), top.get("tags").cloned()),
        Some(_) => return Err(shape("\"taskDefinition\" is not an object")),
        None => (top.clone(), None),
    };
    let account = Account::of(&td);
    for field in READ_ONLY_FIELDS {
        td.remove(field);
    }
    if let Some(tags) = tags.filter(|t| t.as_array().is_some_and(|a| !a.is_empty())) {
        td.entry("tags").or_insert(tags);
    }
    let containers = match td.get_mut("containerDefinitions") {
        Some(Value::Array(c)) if !c.is_empty() => c,
        Some(Value::Array(_)) => return Err(shape("\"containerDefinitions\" is empty")),
        Some(_) => return Err(shape("\"containerDefinitions\" is not an array")),
        None => return Err(shape("it has no \"containerDefinitions\"")),
    };
    let mut names = Vec::new();
    for (i, c) in containers.iter().enumerate() {
        names.push(check_container(c, i)?);
    }
    let chosen: Vec<usize> = match &options.container {
        Some(name) => match names.iter().position(|n| n == name) {
            Some(i) => vec![i],
            None => {
                return Err(ImportError::NoSuchContainer {
                    name: name.clone(),
                    available: names.join(", "),
                })
            }
        },
        None => {
            let with_secrets: Vec<usize> = (0..containers.len())
                .filter(|&i| {
                    containers[i]
                        .get("secrets")
                        .and_then(Value::as_array)
                        .is_some_and(|s| !s.is_empty())
                })
                .collect();
            if with_secrets.is_empty() && containers.len() == 1 {
                vec![0]
            } else {
                with_secrets
            }
        }
    };
    let mut notes = Vec::new();
    let mut needs = Needs::default();
    for (i, c) in containers.iter_mut().enumerate() {
        if chosen.contains(&i) {
            rewrite_container(c, options, &account, &mut notes, &mut needs);
        } else {
            notes.push(Note {
                level: Level::Note,
                text: format!(
                    "container {:?} left as it is ({})",
                    names[i],
                    if options.container.is_some() {
                        "not the --container"
                    } else {
                        "it has no secrets; name it with --container to rewrite it"
                    }
                ),
            });
        }
        if let Some(log) = c.get("logConfiguration") {
            if log.get("secretOptions").is_some() {
                notes.push(Note {
                    level: Level::Note,
                    text: format!(
                        "container {:?}: logConfiguration.secretOptions stay with ECS (the log driver reads them with the execution role)",
                        names[i]
                    ),
                });
            }
        }
    }
    let policy = needs.policy(&account);
    notes.extend(needs.notes());
    Ok(Imported {
        task_definition: Value::Object(td),
        policy,
        notes,
    })
}

/// Checks the parts of a container this rewrite reads; returns its name.
fn check_container(c: &Value, i: usize) -> Result<String, ImportError> {
    let at = format!("containerDefinitions[{i}]");
    let c = c
        .as_object()
        .ok_or_else(|| shape(format!("{at} is not an object")))?;
    let name = c
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| shape(format!("{at} has no \"name\" string")))?;
    for list in ["entryPoint", "command"] {
        match c.get(list) {
            None | Some(Value::Null) => {}
            Some(Value::Array(a)) if a.iter().all(Value::is_string) => {}
            Some(_) => return Err(shape(format!("{at}.{list} is not an array of strings"))),
        }
    }
    for (list, value_field, required) in [
        ("environment", "value", false),
        ("secrets", "valueFrom", true),
    ] {
        match c.get(list) {
            None | Some(Value::Null) => {}
            Some(Value::Array(entries)) => {
                for (j, e) in entries.iter().enumerate() {
                    let value_ok = match e.get(value_field) {
                        None | Some(Value::Null) => !required,
                        Some(v) => v.is_string(),
                    };
                    if !value_ok || !e.get("name").is_some_and(Value::is_string) {
                        return Err(shape(format!(
                            "{at}.{list}[{j}] is not {{\"name\": string, \"{value_field}\": string}}"
                        )));
                    }
                }
            }
            Some(_) => return Err(shape(format!("{at}.{list} is not an array"))),
        }
    }
    if let Some(hc) = c.get("healthCheck") {
        let ok = match hc.get("command") {
            None => true,
            Some(cmd) => cmd
                .as_array()
                .is_some_and(|a| a.iter().all(Value::is_string)),
        };
        if !hc.is_object() || !ok {
            return Err(shape(format!(
                "{at}.healthCheck is not an object with a \"command\" array of strings"
            )));
        }
    }
    Ok(name.to_owned())
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `program` is the agent (the examples' `/usr/local/bin/agent`, or `agent`).
fn is_agent(program: &str, agent: &str) -> bool {
    program == agent || Path::new(program).file_name().is_some_and(|f| f == "agent")
}

/// One `secrets[]` entry that became a reference.
#[derive(Debug, Clone)]
struct Moved {
    name: String,
    value: String,
    reference: Reference,
}

fn rewrite_container(
    c: &mut Value,
    options: &Options,
    account: &Account,
    notes: &mut Vec<Note>,
    needs: &mut Needs,
) {
    let Some(c) = c.as_object_mut() else { return };
    let name = c
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let note = |notes: &mut Vec<Note>, level, text: String| {
        notes.push(Note {
            level,
            text: format!("container {name:?}: {text}"),
        })
    };

    // The entry point.
    let entry_point = strings(c.get("entryPoint"));
    let command = strings(c.get("command"));
    let already = entry_point
        .first()
        .is_some_and(|p| is_agent(p, &options.agent));
    if already {
        note(
            notes,
            Level::Note,
            "already runs the agent: entryPoint and command kept".into(),
        );
    } else {
        let new_command: Vec<String> = entry_point.iter().chain(&command).cloned().collect();
        if entry_point.is_empty() && command.is_empty() {
            note(notes, Level::Warning, "has neither entryPoint nor command: the image's ENTRYPOINT and CMD cannot be known here; set command to them, or the agent refuses to start (exit 64)".into());
        } else if entry_point.is_empty() {
            note(notes, Level::Warning, format!("has no entryPoint, so the image's ENTRYPOINT (which the agent replaces) cannot be known here: command kept as {}; if the image has an ENTRYPOINT, put it in front", json!(command)));
        }
        c.insert("entryPoint".into(), json!([options.agent.as_str(), "--"]));
        if new_command.is_empty() {
            c.remove("command");
        } else {
            c.insert("command".into(), json!(new_command));
        }
    }

    // Plain values that the agent would read as references (under the agent already,
    // they are references).
    let environment = strings_pairs(c.get("environment"));
    for (n, v) in environment.iter().filter(|_| !already) {
        if !n.starts_with(OWN_PREFIX) && reference::is_reference(v) {
            note(notes, Level::Warning, format!("environment variable {n} holds a value the agent reads as a reference (under ECS it was plain text): {}", match reference::parse(v) {
                Ok(_) => "the app will get the secret, not the text".to_owned(),
                Err(e) => format!("malformed ({e}), so the agent refuses to start (exit 78)"),
            }));
        }
    }
    if c.get("environmentFiles").is_some() {
        note(notes, Level::Note, "environmentFiles are not read here: a value in them that looks like a reference (ssm:…, secretsmanager:…, arn:aws:…) would be read as one".into());
    }

    // secrets[] → environment.
    let mut taken: BTreeSet<String> = environment.iter().map(|(n, _)| n.clone()).collect();
    let mut kept = Vec::new();
    let mut moved = Vec::new();
    for entry in c
        .get("secrets")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        let n = entry["name"].as_str().unwrap_or_default().to_owned();
        let from = entry
            .get("valueFrom")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let problem = if taken.contains(&n) {
            Some("its name is already in environment (or an earlier secret)".to_owned())
        } else if n.starts_with(OWN_PREFIX) {
            Some(format!(
                "the agent keeps every {OWN_PREFIX}* variable from the app"
            ))
        } else {
            match translate(from) {
                Ok((value, reference)) => {
                    taken.insert(n.clone());
                    moved.push(Moved {
                        name: n.clone(),
                        value,
                        reference,
                    });
                    None
                }
                Err(reason) => Some(reason),
            }
        };
        if let Some(problem) = problem {
            note(notes, Level::Warning, format!("secret {n} (valueFrom {from:?}) stays in secrets[], read by ECS with the execution role: {problem}"));
            kept.push(entry);
        }
    }
    let mut added: Vec<(String, String)> = Vec::new();
    if options.collapse {
        let (rest, settings) = collapse(moved, account, notes, &name);
        moved = rest;
        for (setting, value) in settings {
            let existing = environment.iter().find(|(n, _)| *n == setting);
            let value = match existing {
                Some((_, v)) if !v.trim().is_empty() => format!("{v},{value}"),
                _ => value,
            };
            set_env(c, setting, &value);
        }
    }
    added.extend(moved.into_iter().map(|m| (m.name, m.value)));
    if !added.is_empty() {
        let env = c
            .entry("environment")
            .or_insert_with(|| Value::Array(Vec::new()));
        if !env.is_array() {
            *env = Value::Array(Vec::new());
        }
        if let Some(env) = env.as_array_mut() {
            env.extend(added.iter().map(|(n, v)| json!({"name": n, "value": v})));
        }
    }
    if kept.is_empty() {
        c.remove("secrets");
    } else {
        c.insert("secrets".into(), Value::Array(kept));
    }

    // The health check.
    if let Some(hc) = c.get_mut("healthCheck").and_then(Value::as_object_mut) {
        let command = strings(hc.get("command"));
        match probe_url(&command) {
            Some(rewrite) => {
                let probe = Path::new(&options.agent)
                    .parent()
                    .unwrap_or(Path::new("/"))
                    .join("healthcheck");
                let new = json!([
                    "CMD",
                    probe.to_string_lossy(),
                    "probe",
                    "--url",
                    rewrite.url
                ]);
                note(notes, Level::Note, format!("healthCheck {} became {new} (interval, timeout, retries and startPeriod kept): healthy now means a 2xx answer{}", json!(command), rewrite.difference));
                hc.insert("command".into(), new);
            }
            None if command
                .iter()
                .any(|a| a.contains("curl") || a.contains("wget")) =>
            {
                note(notes, Level::Warning, format!("healthCheck {} left as it is (not one curl or wget of a local http:// URL): the image still needs curl or wget (distroless and scratch images have neither); `healthcheck probe --url URL` needs none", json!(command)));
            }
            None => {}
        }
    }

    needs.add_environment(&strings_pairs(c.get("environment")));
}

fn strings_pairs(v: Option<&Value>) -> Vec<(String, String)> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|e| {
                    let n = e.get("name")?.as_str()?;
                    let v = e.get("value").and_then(Value::as_str).unwrap_or_default();
                    Some((n.to_owned(), v.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Sets (or replaces) one `environment` entry.
fn set_env(c: &mut Map<String, Value>, name: &str, value: &str) {
    let env = c
        .entry("environment")
        .or_insert_with(|| Value::Array(Vec::new()));
    if !env.is_array() {
        *env = Value::Array(Vec::new());
    }
    let Some(env) = env.as_array_mut() else {
        return;
    };
    match env
        .iter_mut()
        .find(|e| e.get("name").and_then(Value::as_str) == Some(name))
    {
        Some(e) => e["value"] = json!(value),
        None => env.push(json!({"name": name, "value": value})),
    }
}

/// An ECS `valueFrom` as the agent's reference with the same meaning: ARNs as they are,
/// a bare parameter name (ECS reads it in the task's region, as the agent reads
/// `ssm:NAME` in `AWS_REGION`) with `ssm:` in front.
pub fn translate(value_from: &str) -> Result<(String, Reference), String> {
    if reference::is_reference(value_from) {
        return reference::parse(value_from).map(|r| (value_from.to_owned(), r));
    }
    let text = format!("{}{value_from}", parameter::SHORT_PREFIX);
    match reference::parse(&text) {
        Ok(r) => Ok((text, r)),
        Err(e) => Err(format!(
            "not a Secrets Manager or Parameter Store ARN, and not a parameter name either: {e}"
        )),
    }
}

/// `--collapse`: takes the entries that one `DECKHAND_ENV_SECRETS` or
/// `DECKHAND_ENV_PARAMETERS` entry gives the same names; returns the rest and the
/// settings' values to append.
fn collapse(
    moved: Vec<Moved>,
    account: &Account,
    notes: &mut Vec<Note>,
    container: &str,
) -> (Vec<Moved>, Vec<(&'static str, String)>) {
    // Secrets: every entry of one secret (stage and version included) takes a JSON key
    // named like its variable.
    let mut by_secret: BTreeMap<SmKey, Vec<usize>> = BTreeMap::new();
    for (i, m) in moved.iter().enumerate() {
        if let Key::SecretsManager(k) = &m.reference.key {
            by_secret.entry(k.clone()).or_default().push(i);
        }
    }
    let mut gone = BTreeSet::new();
    let mut secrets = Vec::new();
    for (key, entries) in &by_secret {
        let same_names = entries
            .iter()
            .all(|&i| moved[i].reference.json_key.as_deref() == Some(moved[i].name.as_str()));
        if entries.len() < 2 || !same_names {
            continue;
        }
        let id = secret_setting(key);
        if reference::parse_secret_id(&id).ok() != Some(Key::SecretsManager(key.clone())) {
            continue;
        }
        let vars: Vec<&str> = entries.iter().map(|&i| moved[i].name.as_str()).collect();
        notes.push(Note { level: Level::Warning, text: format!("container {container:?}: {} collapsed into DECKHAND_ENV_SECRETS={id}, because each takes the JSON key of its own name; the secret must hold no other key (any other becomes a variable too), which only AWS can tell", vars.join(", ")) });
        gone.extend(entries.iter().copied());
        secrets.push(id);
    }
    // Parameters: every entry names a parameter directly under one path, without a
    // version, and is named as the path's reading names it; no other reference names a
    // parameter deeper under that path (the path is read recursively).
    let mut by_path: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, m) in moved.iter().enumerate() {
        if let Key::Parameter(k) = &m.reference.key {
            if let Some(path) = parent_path(k) {
                by_path.entry(path).or_default().push(i);
            }
        }
    }
    let mut paths = Vec::new();
    for (path, entries) in &by_path {
        let same_names = entries.iter().all(|&i| {
            let m = &moved[i];
            matches!(&m.reference.key, Key::Parameter(k) if k.selector.is_none()
                && parameter::variable_name(&k.name, false) == m.name)
        });
        let deeper = moved.iter().enumerate().any(|(i, m)| {
            !entries.contains(&i)
                && matches!(&m.reference.key, Key::Parameter(k) if parameter_text(k).starts_with(&format!("{path}/")))
        });
        let setting = format!("{path}/");
        if entries.len() < 2 || !same_names || deeper || parameter::parse_path(&setting).is_err() {
            continue;
        }
        let vars: Vec<&str> = entries.iter().map(|&i| moved[i].name.as_str()).collect();
        notes.push(Note { level: Level::Warning, text: format!("container {container:?}: {} collapsed into DECKHAND_ENV_PARAMETERS={setting}, because each is the parameter of its own name under that path; the path must hold no other parameter, at any depth (any other becomes a variable too), which only AWS can tell", vars.join(", ")) });
        gone.extend(entries.iter().copied());
        paths.push(setting);
    }
    // A path written both ways (`/p/` and its ARN, some entries each) is one path when
    // the ARN is in the task's region and account: read it once.
    let local_arn = |path: &str| {
        account.arn(
            "ssm",
            &format!("parameter/{}", path.trim_start_matches('/')),
        )
    };
    let both: Vec<String> = paths
        .iter()
        .filter(|p| p.starts_with('/') && paths.contains(&local_arn(p)))
        .cloned()
        .collect();
    if account.region != "*" && account.account != "*" {
        paths.retain(|p| !both.contains(p));
    }
    let mut settings = Vec::new();
    if !secrets.is_empty() {
        settings.push(("DECKHAND_ENV_SECRETS", secrets.join(",")));
    }
    if !paths.is_empty() {
        settings.push(("DECKHAND_ENV_PARAMETERS", paths.join(",")));
    }
    let rest = moved
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !gone.contains(i))
        .map(|(_, m)| m)
        .collect();
    (rest, settings)
}

/// A secret as `DECKHAND_ENV_SECRETS` names it, stage and version included.
fn secret_setting(k: &SmKey) -> String {
    let base = if k.region.is_some() {
        k.secret_id.clone()
    } else {
        format!("{}{}", reference::SHORT_PREFIX, k.secret_id)
    };
    match (&k.version_stage, &k.version_id) {
        (None, None) => base,
        (stage, None) => format!("{base}::{}", stage.as_deref().unwrap_or_default()),
        (stage, Some(id)) => format!("{base}::{}:{id}", stage.as_deref().unwrap_or_default()),
    }
}

/// The parameter as written: `/a/b` or `arn:…:parameter/a/b`.
fn parameter_text(k: &ParameterKey) -> &str {
    &k.name
}

/// The path a parameter is directly under, as a `DECKHAND_ENV_PARAMETERS` entry writes
/// it without its trailing `/` (`/spotter-app`, `arn:…:parameter/spotter-app`); `None`
/// for a name without a hierarchy.
fn parent_path(k: &ParameterKey) -> Option<String> {
    let bare = k.bare_name();
    let (parent, _) = bare.rsplit_once('/')?;
    if parent.is_empty() {
        return None;
    }
    let text = parameter_text(k);
    Some(text[..text.len() - bare.len() + parent.len()].to_owned())
}

/// A local health check URL turned into `healthcheck probe`'s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeRewrite {
    pub url: String,
    /// What the old check accepted that the probe does not (or the reverse).
    pub difference: &'static str,
}

/// The URL for `healthcheck probe`, when `command` is one curl or wget of a local
/// `http://` URL (`["CMD-SHELL", "curl -f http://localhost:3000 || exit 1"]`).
pub fn probe_url(command: &[String]) -> Option<ProbeRewrite> {
    let (kind, rest) = command.split_first()?;
    let words: Vec<String> = match kind.as_str() {
        "CMD-SHELL" => {
            let text = rest.join(" ");
            let text = text.trim();
            let text = ["|| exit 1", "||exit 1", "|| exit"]
                .iter()
                .find_map(|s| text.strip_suffix(s))
                .unwrap_or(text)
                .trim();
            if text.contains(['&', ';', '|', '`', '$', '>', '<', '\n']) {
                return None;
            }
            text.split_whitespace()
                .map(|w| w.trim_matches(['"', '\'']).to_owned())
                .collect()
        }
        "CMD" => rest.to_vec(),
        _ => return None,
    };
    let (program, args) = words.split_first()?;
    let program = Path::new(program).file_name()?.to_str()?;
    let mut url = None;
    let mut fail = false;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let flag = match program {
            "curl" => curl_flag(a, &mut fail),
            "wget" => wget_flag(a),
            _ => return None,
        };
        let next_is_value = match flag {
            Some(takes_value) => takes_value,
            // An option not known here may change what the command checks.
            None if a.starts_with('-') => return None,
            None => {
                if url.replace(a).is_some() {
                    return None;
                }
                false
            }
        };
        i += if next_is_value { 2 } else { 1 };
    }
    let url = local_url(url?)?;
    let difference = match program {
        "curl" if fail => " (curl -f accepted any answer under 400, redirects included)",
        "curl" => " (curl without -f accepted any answer, errors included)",
        _ => " (wget followed redirects)",
    };
    Some(ProbeRewrite { url, difference })
}

/// A curl option the probe can stand in for: whether the next word is its value;
/// `None` for anything else. `-f` (alone or among `-fsS`) sets `fail`.
fn curl_flag(a: &str, fail: &mut bool) -> Option<bool> {
    match a {
        "-f" | "--fail" | "--fail-with-body" => {
            *fail = true;
            Some(false)
        }
        "-s" | "--silent" | "-S" | "--show-error" | "-q" => Some(false),
        "-o" | "--output" | "-m" | "--max-time" | "--connect-timeout" => Some(true),
        _ if a.starts_with("--max-time=") || a.starts_with("--connect-timeout=") => Some(false),
        _ => {
            let shorts = a
                .strip_prefix('-')
                .filter(|s| !s.is_empty() && !s.starts_with('-'))?;
            shorts.chars().all(|c| "fsSq".contains(c)).then(|| {
                *fail |= shorts.contains('f');
                false
            })
        }
    }
}

/// A wget option the probe can stand in for: whether the next word is its value;
/// `None` for anything else.
fn wget_flag(a: &str) -> Option<bool> {
    match a {
        "-q" | "--quiet" | "--spider" | "-nv" | "--no-verbose" => Some(false),
        "-O" | "-T" | "-t" | "--tries" | "--timeout" => Some(true),
        "-qO-" | "-qO" | "-O-" => Some(a == "-qO"),
        _ if a.starts_with("--tries=")
            || a.starts_with("--timeout=")
            || a.starts_with("-T")
            || a.starts_with("-t")
            || a.starts_with("--output-document=") =>
        {
            Some(false)
        }
        _ => None,
    }
}

/// `http://localhost:3000/x` → `http://127.0.0.1:3000/x`; `None` for any other host or
/// scheme.
fn local_url(url: &str) -> Option<String> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && !p.contains(']') => (h, p.parse::<u16>().ok()?),
        _ => (authority, 80),
    };
    if !LOCAL_HOSTS.contains(&host) {
        return None;
    }
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_owned()
    };
    Some(format!("http://127.0.0.1:{port}{path}"))
}

/// Where the task runs, as far as the task definition says: for resources written
/// without an ARN.
#[derive(Debug, Clone)]
struct Account {
    partition: String,
    /// The task definition ARN's region (describe's output has one); else `*`.
    region: String,
    /// The roles' account; else `*`.
    account: String,
}

impl Account {
    fn of(td: &Map<String, Value>) -> Account {
        let arn_part = |field: &str, i: usize| {
            td.get(field)
                .and_then(Value::as_str)
                .and_then(|a| a.split(':').nth(i))
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
        };
        Account {
            partition: ["taskRoleArn", "executionRoleArn", "taskDefinitionArn"]
                .iter()
                .find_map(|f| arn_part(f, 1))
                .unwrap_or_else(|| "aws".into()),
            region: arn_part("taskDefinitionArn", 3).unwrap_or_else(|| "*".into()),
            account: ["taskRoleArn", "executionRoleArn", "taskDefinitionArn"]
                .iter()
                .find_map(|f| arn_part(f, 4))
                .unwrap_or_else(|| "*".into()),
        }
    }

    fn arn(&self, service: &str, resource: &str) -> String {
        format!(
            "arn:{}:{service}:{}:{}:{resource}",
            self.partition, self.region, self.account
        )
    }
}

/// What the rewritten containers read, for the task role's policy.
#[derive(Debug, Default)]
struct Needs {
    secrets: BTreeSet<SecretNeed>,
    parameters: BTreeSet<ParameterKey>,
    /// `DECKHAND_ENV_PARAMETERS` entries as written, without `?` and trailing `/`.
    paths: BTreeSet<String>,
    log_groups: BTreeSet<String>,
    /// Secrets or parameters the policy names with a `*` the task definition could not
    /// fill in.
    guessed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum SecretNeed {
    Arn(String),
    Name(String),
}

impl Needs {
    fn add_key(&mut self, key: &Key) {
        match key {
            Key::SecretsManager(k) if k.region.is_some() => {
                self.secrets.insert(SecretNeed::Arn(k.secret_id.clone()));
            }
            Key::SecretsManager(k) => {
                self.secrets.insert(SecretNeed::Name(k.secret_id.clone()));
            }
            Key::Parameter(k) => {
                self.parameters.insert(ParameterKey {
                    selector: None,
                    ..k.clone()
                });
            }
            Key::ParameterPath(_) => {}
        }
    }

    fn add_environment(&mut self, env: &[(String, String)]) {
        for (name, value) in env {
            let list = || value.split(',').map(str::trim).filter(|s| !s.is_empty());
            match name.as_str() {
                "DECKHAND_ENV_SECRETS" => {
                    for id in list() {
                        if let Ok(k) = reference::parse_secret_id(id) {
                            self.add_key(&k);
                        }
                    }
                }
                "DECKHAND_DATABASE_SECRET" => {
                    if let Ok(k) = reference::parse_secret_id(value) {
                        self.add_key(&k);
                    }
                }
                "DECKHAND_ENV_PARAMETERS" => {
                    for p in list() {
                        if parameter::parse_path(p).is_ok() {
                            let p = p.trim_end_matches('?').trim_end_matches('/');
                            self.paths.insert(p.to_owned());
                        }
                    }
                }
                "CLOUDWATCH_LOG_GROUP" if !value.is_empty() => {
                    self.log_groups.insert(value.clone());
                }
                n if n.starts_with(OWN_PREFIX) => {}
                _ => {
                    if let Ok(r) = reference::parse(value) {
                        self.add_key(&r.key);
                    }
                }
            }
        }
    }

    fn policy(&mut self, account: &Account) -> Value {
        let mut statements = Vec::new();
        let guess = |s: &str| s == "*";
        let secrets: Vec<String> = self
            .secrets
            .iter()
            .flat_map(|s| match s {
                SecretNeed::Arn(arn) => secret_resources(arn),
                // A name is always a name: GetSecretValue finds it with any suffix.
                SecretNeed::Name(name) => vec![format!(
                    "{}-??????",
                    account.arn("secretsmanager", &format!("secret:{name}"))
                )],
            })
            .collect();
        if self
            .secrets
            .iter()
            .any(|s| matches!(s, SecretNeed::Name(_)))
            && (guess(&account.region) || guess(&account.account))
        {
            self.guessed = true;
        }
        allow(
            &mut statements,
            "ReadSecrets",
            &["secretsmanager:GetSecretValue"],
            secrets,
        );
        let parameter_arn = |name: &str| {
            if name.starts_with("arn:") {
                name.to_owned()
            } else {
                account.arn(
                    "ssm",
                    &format!("parameter/{}", name.trim_start_matches('/')),
                )
            }
        };
        let parameters: BTreeSet<String> = self
            .parameters
            .iter()
            .map(|k| parameter_arn(&k.name))
            .collect();
        let paths: BTreeSet<String> = self
            .paths
            .iter()
            .flat_map(|p| {
                let p = p.strip_prefix(parameter::SHORT_PREFIX).unwrap_or(p);
                let arn = if p.is_empty() {
                    parameter_arn("/").trim_end_matches('/').to_owned()
                } else {
                    parameter_arn(p)
                };
                let arn = arn.trim_end_matches('/').to_owned();
                [arn.clone(), format!("{arn}/*")]
            })
            .collect();
        if (self.parameters.iter().any(|k| k.region.is_none())
            || self.paths.iter().any(|p| !p.starts_with("arn:")))
            && (guess(&account.region) || guess(&account.account))
        {
            self.guessed = true;
        }
        allow(
            &mut statements,
            "ReadParameters",
            &["ssm:GetParameters"],
            parameters,
        );
        allow(
            &mut statements,
            "ReadParameterPaths",
            &["ssm:GetParametersByPath"],
            paths,
        );
        let groups = self
            .log_groups
            .iter()
            .map(|g| account.arn("logs", &format!("log-group:{g}:*")));
        allow(
            &mut statements,
            "ShipLogs",
            &["logs:CreateLogStream", "logs:PutLogEvents"],
            groups,
        );
        json!({"Version": "2012-10-17", "Statement": statements})
    }

    fn notes(&self) -> Vec<Note> {
        let mut notes = Vec::new();
        let note = |text: &str| Note {
            level: Level::Note,
            text: text.to_owned(),
        };
        if !self.secrets.is_empty() || !self.parameters.is_empty() || !self.paths.is_empty() {
            notes.push(note("the task role (taskRoleArn) needs the policy below: the agent reads the secrets and parameters with it. The execution role no longer needs secretsmanager:GetSecretValue or ssm:GetParameters for them (only for what stays with ECS: secrets[] entries left above, logConfiguration.secretOptions, repositoryCredentials)"));
            notes.push(note("add kms:Decrypt on the KMS keys of secrets and SecureString parameters encrypted with a customer-managed key (the default aws/secretsmanager and aws/ssm keys need nothing more)"));
        }
        if self.guessed {
            notes.push(note("resources named without an ARN have `*` for the region or account the task definition does not state (taskRoleArn gives the account; describe-task-definition's output the region): narrow them before use"));
        }
        if !self.log_groups.is_empty() {
            notes.push(note("CLOUDWATCH_LOG_GROUP: the agent ships the logs with the task role; add logs:CreateLogGroup (and logs:PutRetentionPolicy) if it is to create the group"));
        }
        notes
    }
}

/// Adds the statement `sid` that allows `actions` on `resources`, unless there are none
/// (a statement without a resource is not a valid policy).
fn allow(
    statements: &mut Vec<Value>,
    sid: &str,
    actions: &[&str],
    resources: impl IntoIterator<Item = String>,
) {
    let resources: Vec<String> = resources.into_iter().collect();
    if !resources.is_empty() {
        statements.push(json!({
            "Sid": sid,
            "Effect": "Allow",
            "Action": actions,
            "Resource": resources,
        }));
    }
}

/// A secret's ARN for a policy, with the `-??????` wildcard that matches the
/// 6-character suffix Secrets Manager adds, which a partial ARN leaves off. An ARN
/// that ends like a suffix may be either (a name like `app/auth-secret`): both.
fn secret_resources(arn: &str) -> Vec<String> {
    let name = arn.rsplit_once(":secret:").map_or(arn, |(_, n)| n);
    let may_have_suffix = name.len() > SECRET_SUFFIX_LEN
        && name.is_char_boundary(name.len() - SECRET_SUFFIX_LEN - 1)
        && name[name.len() - SECRET_SUFFIX_LEN - 1..].starts_with('-')
        && name[name.len() - SECRET_SUFFIX_LEN..]
            .chars()
            .all(|c| c.is_ascii_alphanumeric());
    let partial = format!("{arn}-??????");
    if may_have_suffix {
        vec![arn.to_owned(), partial]
    } else {
        vec![partial]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(td: &Value, i: usize) -> &Value {
        &td["containerDefinitions"][i]
    }

    fn env_of(c: &Value) -> Vec<(String, String)> {
        strings_pairs(c.get("environment"))
    }

    fn env_value(c: &Value, name: &str) -> Option<String> {
        env_of(c)
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    fn run(td: Value) -> Imported {
        import(&td, &Options::default()).unwrap()
    }

    fn warnings(i: &Imported) -> String {
        i.notes
            .iter()
            .filter(|n| n.level == Level::Warning)
            .map(|n| n.text.clone())
            .collect::<Vec<_>>()
            .join("\n")
    }

    const SM: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:";
    const PARAM: &str = "arn:aws:ssm:us-east-1:123456789012:parameter";

    fn one(secrets: Value) -> Value {
        json!({
            "family": "web",
            "taskRoleArn": "arn:aws:iam::123456789012:role/web",
            "containerDefinitions": [{
                "name": "web",
                "image": "web:1",
                "entryPoint": ["docker-entrypoint.sh"],
                "command": ["node", "server.js"],
                "environment": [{"name": "NODE_ENV", "value": "production"}],
                "secrets": secrets,
            }]
        })
    }

    #[test]
    fn each_value_from_form_becomes_a_reference_of_the_same_meaning() {
        let forms = [
            (format!("{SM}app/env"), format!("{SM}app/env")),
            (format!("{SM}app/env:KEY::"), format!("{SM}app/env:KEY::")),
            (
                format!("{SM}app/env-AbCdEf:KEY:AWSPREVIOUS:"),
                format!("{SM}app/env-AbCdEf:KEY:AWSPREVIOUS:"),
            ),
            (
                format!("{SM}app/env::AWSCURRENT:v-1"),
                format!("{SM}app/env::AWSCURRENT:v-1"),
            ),
            (format!("{PARAM}/app/X"), format!("{PARAM}/app/X")),
            (format!("{PARAM}/app/X:3"), format!("{PARAM}/app/X:3")),
            ("/app/X".to_owned(), "ssm:/app/X".to_owned()),
            ("plain-name".to_owned(), "ssm:plain-name".to_owned()),
            ("/app/X:stable".to_owned(), "ssm:/app/X:stable".to_owned()),
        ];
        for (from, expected) in forms {
            let (text, r) = translate(&from).unwrap();
            assert_eq!(text, expected);
            assert_eq!(reference::parse(&text).unwrap(), r);
            let out = run(one(json!([{"name": "V", "valueFrom": from}])));
            let c = container(&out.task_definition, 0);
            assert_eq!(env_value(c, "V"), Some(expected.clone()), "{from}");
            assert!(c.get("secrets").is_none());
        }
    }

    #[test]
    fn what_the_agent_cannot_express_stays_in_secrets_and_is_reported() {
        let bad = [
            "app/X",
            "",
            "arn:aws:secretsmanager:us-east-1:1:secret",
            "arn:aws:kms:us-east-1:1:key/x",
            "/a b",
        ];
        for from in bad {
            let out = run(one(json!([
                {"name": "BAD", "valueFrom": from},
                {"name": "GOOD", "valueFrom": "/app/GOOD"},
            ])));
            let c = container(&out.task_definition, 0);
            assert_eq!(
                c["secrets"],
                json!([{"name": "BAD", "valueFrom": from}]),
                "{from:?}"
            );
            assert_eq!(env_value(c, "GOOD").as_deref(), Some("ssm:/app/GOOD"));
            assert!(env_value(c, "BAD").is_none());
            assert!(warnings(&out).contains("secret BAD"), "{from:?}");
        }
    }

    #[test]
    fn a_name_taken_or_the_agents_own_stays_in_secrets() {
        let out = run(one(json!([
            {"name": "NODE_ENV", "valueFrom": "/app/NODE_ENV"},
            {"name": "DECKHAND_ENV_SECRETS", "valueFrom": "/app/x"},
            {"name": "A", "valueFrom": "/app/A"},
            {"name": "A", "valueFrom": "/app/A2"},
        ])));
        let c = container(&out.task_definition, 0);
        assert_eq!(c["secrets"].as_array().unwrap().len(), 3);
        assert_eq!(env_value(c, "NODE_ENV").as_deref(), Some("production"));
        assert_eq!(env_value(c, "A").as_deref(), Some("ssm:/app/A"));
        let w = warnings(&out);
        assert!(w.contains("already in environment"));
        assert!(w.contains("DECKHAND_*"));
    }

    #[test]
    fn entry_point_and_command_move_behind_the_agent() {
        let out = run(one(json!([])));
        let c = container(&out.task_definition, 0);
        assert_eq!(c["entryPoint"], json!([DEFAULT_AGENT, "--"]));
        assert_eq!(
            c["command"],
            json!(["docker-entrypoint.sh", "node", "server.js"])
        );

        let mut td = one(json!([]));
        td["containerDefinitions"][0]
            .as_object_mut()
            .unwrap()
            .remove("entryPoint");
        let options = Options {
            agent: "/opt/deckhand/agent".into(),
            ..Options::default()
        };
        let out = import(&td, &options).unwrap();
        let c = container(&out.task_definition, 0);
        assert_eq!(c["entryPoint"], json!(["/opt/deckhand/agent", "--"]));
        assert_eq!(c["command"], json!(["node", "server.js"]));
        assert!(warnings(&out).contains("no entryPoint"));

        // Already under the agent: nothing moves.
        let again = run(out.task_definition.clone());
        assert_eq!(again.task_definition, out.task_definition);
    }

    #[test]
    fn both_input_shapes_and_the_read_only_fields() {
        let registered = one(json!([{"name": "A", "valueFrom": "/app/A"}]));
        let mut described = registered.clone();
        let extra = json!({
            "taskDefinitionArn": "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:3",
            "revision": 3, "status": "ACTIVE", "requiresAttributes": [{"name": "x"}],
            "compatibilities": ["EC2", "FARGATE"], "registeredAt": 1.7e9,
            "registeredBy": "arn:aws:iam::123456789012:user/me", "deregisteredAt": 1.8e9,
        });
        for (k, v) in extra.as_object().unwrap() {
            described[k] = v.clone();
        }
        let wrapped = json!({"taskDefinition": described, "tags": [{"key": "team", "value": "a"}]});
        let from_registered = run(registered).task_definition;
        let from_described = run(wrapped);
        let mut expected = from_registered.clone();
        expected["tags"] = json!([{"key": "team", "value": "a"}]);
        assert_eq!(from_described.task_definition, expected);
        for field in READ_ONLY_FIELDS {
            assert!(from_described.task_definition.get(field).is_none());
        }
        // The region of describe's ARN names parameters written without one.
        let policy = from_described.policy.to_string();
        assert!(policy.contains("arn:aws:ssm:eu-west-1:123456789012:parameter/app/A"));
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let err = |v: Value| import(&v, &Options::default()).unwrap_err().to_string();
        assert!(err(json!([])).contains("top level"));
        assert!(err(json!({"taskDefinition": 1})).contains("\"taskDefinition\""));
        assert!(err(json!({"family": "x"})).contains("no \"containerDefinitions\""));
        assert!(err(json!({"containerDefinitions": []})).contains("empty"));
        assert!(err(json!({"containerDefinitions": [{}]})).contains("[0] has no \"name\""));
        assert!(
            err(json!({"containerDefinitions": [{"name": "a", "secrets": [{"name": "x"}]}]}))
                .contains("secrets[0]")
        );
        assert!(
            err(json!({"containerDefinitions": [{"name": "a", "command": "x"}]}))
                .contains("command")
        );
        let options = Options {
            container: Some("db".into()),
            ..Options::default()
        };
        let e = import(&one(json!([])), &options).unwrap_err();
        assert_eq!(
            e,
            ImportError::NoSuchContainer {
                name: "db".into(),
                available: "web".into()
            }
        );
    }

    #[test]
    fn multiple_containers_only_those_with_secrets_or_the_named_one() {
        let td = json!({
            "containerDefinitions": [
                {"name": "app", "image": "a", "command": ["run"],
                 "secrets": [{"name": "A", "valueFrom": "/app/A"}]},
                {"name": "router", "image": "fluent-bit", "entryPoint": ["/fluent-bit"]},
                {"name": "worker", "image": "w", "entryPoint": ["w"],
                 "secrets": [{"name": "B", "valueFrom": format!("{SM}w:B::")}]},
            ]
        });
        let out = run(td.clone());
        let t = &out.task_definition;
        assert_eq!(
            env_value(container(t, 0), "A").as_deref(),
            Some("ssm:/app/A")
        );
        assert_eq!(container(t, 1), &td["containerDefinitions"][1]);
        assert_eq!(container(t, 2)["command"], json!(["w"]));
        assert_eq!(env_value(container(t, 2), "B"), Some(format!("{SM}w:B::")));
        let options = Options {
            container: Some("router".into()),
            ..Options::default()
        };
        let out = import(&td, &options).unwrap();
        let t = &out.task_definition;
        assert_eq!(container(t, 0), &td["containerDefinitions"][0]);
        assert_eq!(container(t, 1)["command"], json!(["/fluent-bit"]));
    }

    #[test]
    fn health_checks_with_curl_or_wget_become_the_probe() {
        let cases: [(&[&str], Option<&str>); 14] = [
            (
                &["CMD-SHELL", "curl -f http://localhost:3000 || exit 1"],
                Some("http://127.0.0.1:3000/"),
            ),
            (
                &["CMD", "curl", "-fsS", "http://127.0.0.1:8080/api/health"],
                Some("http://127.0.0.1:8080/api/health"),
            ),
            (
                &[
                    "CMD-SHELL",
                    "wget -qO- http://localhost/health?x=1 || exit 1",
                ],
                Some("http://127.0.0.1:80/health?x=1"),
            ),
            (
                &["CMD", "wget", "--spider", "-q", "http://0.0.0.0:9000/"],
                Some("http://127.0.0.1:9000/"),
            ),
            (
                &[
                    "CMD-SHELL",
                    "curl -s -o /dev/null --max-time 2 'http://localhost:3000/h'",
                ],
                Some("http://127.0.0.1:3000/h"),
            ),
            (
                &["CMD-SHELL", "curl -f https://localhost:3000 || exit 1"],
                None,
            ),
            (
                &["CMD-SHELL", "curl -f http://example.com/ || exit 1"],
                None,
            ),
            (
                &["CMD-SHELL", "curl -f http://localhost/ && test -f /ok"],
                None,
            ),
            (&["CMD", "curl", "-H", "Host: x", "http://localhost/"], None),
            (&["CMD", "/usr/local/bin/healthcheck", "probe"], None),
            (&["CMD", "curl", "-fk", "http://localhost/"], None),
            (&["CMD", "curl", "-", "http://localhost/"], None),
            (
                &["CMD", "curl", "http://localhost/", "http://localhost/b"],
                None,
            ),
            (
                &[
                    "CMD",
                    "wget",
                    "-T5",
                    "-O",
                    "/dev/null",
                    "http://localhost:81/",
                ],
                Some("http://127.0.0.1:81/"),
            ),
        ];
        for (command, expected) in cases {
            let command: Vec<String> = command.iter().map(|s| s.to_string()).collect();
            assert_eq!(
                probe_url(&command).map(|p| p.url).as_deref(),
                expected,
                "{command:?}"
            );
        }
        // `-f` counts alone and among other short options.
        for (flags, fail) in [("-sSf", true), ("--fail", true), ("-sS", false)] {
            let command = ["CMD", "curl", flags, "http://localhost/"].map(String::from);
            let difference = probe_url(&command).unwrap().difference;
            assert_eq!(
                difference.contains("curl -f"),
                fail,
                "{flags}: {difference}"
            );
        }
        let mut td = one(json!([]));
        td["containerDefinitions"][0]["healthCheck"] = json!({
            "command": ["CMD-SHELL", "curl -f http://localhost:3000 || exit 1"],
            "interval": 30, "timeout": 10, "retries": 3, "startPeriod": 10
        });
        let out = run(td);
        assert_eq!(
            container(&out.task_definition, 0)["healthCheck"],
            json!({
                "command": ["CMD", "/usr/local/bin/healthcheck", "probe", "--url", "http://127.0.0.1:3000/"],
                "interval": 30, "timeout": 10, "retries": 3, "startPeriod": 10
            })
        );
    }

    #[test]
    fn the_policy_has_a_statement_only_for_what_the_agent_reads() {
        let sids = |td: Value| -> Vec<String> {
            let out = run(td);
            let statements = out.policy["Statement"].as_array().unwrap();
            statements
                .iter()
                .map(|s| s["Sid"].as_str().unwrap().to_owned())
                .collect()
        };
        let mut td = one(json!([]));
        td["containerDefinitions"][0]["environment"] = json!([
            {"name": "CLOUDWATCH_LOG_GROUP", "value": "/ecs/web"},
        ]);
        assert_eq!(sids(td), ["ShipLogs"]);
        let td = one(json!([{"name": "E", "valueFrom": "/app/E"}]));
        assert_eq!(sids(td), ["ReadParameters"]);
        assert_eq!(sids(one(json!([]))), Vec::<String>::new());
    }

    #[test]
    fn the_policy_names_every_secret_parameter_and_path() {
        let mut td = one(json!([
            {"name": "A", "valueFrom": format!("{SM}app/env:A::")},
            {"name": "B", "valueFrom": format!("{SM}app/env:B::")},
            {"name": "C", "valueFrom": format!("{SM}db-AbCdEf:password::")},
            {"name": "D", "valueFrom": format!("{PARAM}/app/D:2")},
            {"name": "E", "valueFrom": "/app/E"},
        ]));
        td["containerDefinitions"][0]["environment"] = json!([
            {"name": "DECKHAND_ENV_PARAMETERS", "value": "/shared/,arn:aws:ssm:us-west-2:123456789012:parameter/other/?"},
            {"name": "DECKHAND_DATABASE_SECRET", "value": "prod/db"},
            {"name": "CLOUDWATCH_LOG_GROUP", "value": "/ecs/web"},
        ]);
        let out = run(td);
        let statements = out.policy["Statement"].as_array().unwrap();
        let resources = |sid: &str| -> Vec<String> {
            let s = statements.iter().find(|s| s["Sid"] == sid).unwrap();
            strings(s.get("Resource"))
        };
        assert_eq!(
            resources("ReadSecrets"),
            vec![
                format!("{SM}app/env-??????"),
                format!("{SM}db-AbCdEf"),
                format!("{SM}db-AbCdEf-??????"),
                "arn:aws:secretsmanager:*:123456789012:secret:prod/db-??????".to_owned(),
            ]
        );
        assert_eq!(
            resources("ReadParameters"),
            vec![
                "arn:aws:ssm:*:123456789012:parameter/app/E".to_owned(),
                format!("{PARAM}/app/D"),
            ]
        );
        assert_eq!(
            resources("ReadParameterPaths"),
            vec![
                "arn:aws:ssm:*:123456789012:parameter/shared".to_owned(),
                "arn:aws:ssm:*:123456789012:parameter/shared/*".to_owned(),
                "arn:aws:ssm:us-west-2:123456789012:parameter/other".to_owned(),
                "arn:aws:ssm:us-west-2:123456789012:parameter/other/*".to_owned(),
            ]
        );
        assert_eq!(
            resources("ShipLogs"),
            vec!["arn:aws:logs:*:123456789012:log-group:/ecs/web:*".to_owned()]
        );
        let notes: Vec<String> = out.notes.iter().map(|n| n.text.clone()).collect();
        assert!(notes.iter().any(|n| n.contains("kms:Decrypt")));
        assert!(notes.iter().any(|n| n.contains("execution role no longer")));
    }

    #[test]
    fn collapse_only_when_each_variable_is_named_as_the_agent_would() {
        let td = one(json!([
            {"name": "A", "valueFrom": format!("{SM}app/env:A::")},
            {"name": "B", "valueFrom": format!("{SM}app/env:B::")},
            {"name": "X", "valueFrom": format!("{SM}other:A::")},
            {"name": "Y", "valueFrom": format!("{SM}other:Y::")},
            {"name": "P_ONE", "valueFrom": format!("{PARAM}/p/p-one")},
            {"name": "P_TWO", "valueFrom": format!("{PARAM}/p/P_TWO")},
            {"name": "Q", "valueFrom": "/q/Q"},
            {"name": "R", "valueFrom": "/q/R:2"},
        ]));
        let options = Options {
            collapse: true,
            ..Options::default()
        };
        let out = import(&td, &options).unwrap();
        let c = container(&out.task_definition, 0);
        assert_eq!(
            env_value(c, "DECKHAND_ENV_SECRETS"),
            Some(format!("{SM}app/env"))
        );
        assert_eq!(
            env_value(c, "DECKHAND_ENV_PARAMETERS"),
            Some(format!("{PARAM}/p/"))
        );
        for gone in ["A", "B", "P_ONE", "P_TWO"] {
            assert!(env_value(c, gone).is_none(), "{gone}");
        }
        for kept in ["X", "Y", "Q", "R"] {
            assert!(env_value(c, kept).is_some(), "{kept}");
        }
        assert!(warnings(&out).contains("must hold no other key"));
        // Without --collapse nothing collapses.
        let plain = run(td);
        assert!(env_value(container(&plain.task_definition, 0), "DECKHAND_ENV_SECRETS").is_none());
    }

    #[test]
    fn plain_values_that_look_like_references_are_reported() {
        let mut td = one(json!([]));
        td["containerDefinitions"][0]["environment"] =
            json!([{"name": "GREETING", "value": "ssm:hello"}]);
        let out = run(td);
        assert!(warnings(&out).contains("GREETING"));
    }

    #[test]
    fn partial_and_full_secret_arns_in_the_policy() {
        assert_eq!(
            secret_resources(&format!("{SM}a")),
            [format!("{SM}a-??????")]
        );
        assert_eq!(
            secret_resources(&format!("{SM}a-AbC123")),
            [format!("{SM}a-AbC123"), format!("{SM}a-AbC123-??????")]
        );
        assert_eq!(
            secret_resources(&format!("{SM}ü-abcd")),
            [format!("{SM}ü-abcd-??????")]
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn any_json() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(|n| json!(n)),
                prop_oneof![
                    any::<String>(),
                    "(arn:aws:(secretsmanager|ssm):r:1:(secret:|parameter/))?[a-z/:]{0,12}",
                    "CMD(-SHELL)?|curl|http://localhost:[0-9]{1,5}/"
                ]
                .prop_map(Value::String),
            ];
            leaf.prop_recursive(4, 48, 6, |inner| {
                let keys = prop_oneof![
                    Just("taskDefinition".to_owned()),
                    Just("containerDefinitions".to_owned()),
                    Just("name".to_owned()),
                    Just("secrets".to_owned()),
                    Just("valueFrom".to_owned()),
                    Just("environment".to_owned()),
                    Just("value".to_owned()),
                    Just("entryPoint".to_owned()),
                    Just("command".to_owned()),
                    Just("healthCheck".to_owned()),
                    "[a-z]{1,6}",
                ];
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                    prop::collection::btree_map(keys, inner, 0..6)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        /// A valueFrom in one of the forms ECS accepts.
        fn value_from() -> impl Strategy<Value = String> {
            let name = "[A-Za-z0-9_.-]{1,10}";
            prop_oneof![
                (name, prop::option::of(name)).prop_map(|(n, k)| match k {
                    Some(k) => format!("{SM}{n}:{k}::"),
                    None => format!("{SM}{n}"),
                }),
                (name, name).prop_map(|(a, b)| format!("{PARAM}/{a}/{b}")),
                (name, name).prop_map(|(a, b)| format!("/{a}/{b}")),
                name.prop_map(|n| n.to_owned()),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn any_json_never_panics(v in any_json(), collapse in any::<bool>()) {
                let options = Options { collapse, ..Options::default() };
                let _ = import(&v, &options);
                let _ = import(&json!({"taskDefinition": v.clone()}), &options);
                let _ = import(&json!({"containerDefinitions": [v]}), &options);
            }

            #[test]
            fn any_health_check_command_becomes_a_local_probe_or_none(
                kind in prop_oneof![3 => "CMD|CMD-SHELL", 1 => "[A-Z-]{0,4}"],
                program in prop_oneof![3 => "curl|wget|/usr/bin/curl", 1 => "[a-z]{1,5}"],
                mut args in prop::collection::vec(
                    prop_oneof![
                        4 => "-f|-s|-S|-q|-fsS|-sSf|--fail|-o|-O|-T5|-t|--spider|-qO-|/dev/null|2",
                        1 => any::<String>(),
                        1 => "-[fsSqkOTt-]{0,4}|--?[a-z-]{1,12}(=[0-9]{1,3})?",
                    ],
                    0..4,
                ),
                url in "http://(localhost|127\\.0\\.0\\.1|0\\.0\\.0\\.0|example\\.com|\\[::1\\])(:[0-9]{0,6})?([/?][a-zé?=]{0,8})?",
                at in any::<prop::sample::Index>(),
            ) {
                args.insert(at.index(args.len() + 1), url);
                let mut command = vec![kind, program];
                command.extend(args);
                if let Some(probe) = probe_url(&command) {
                    prop_assert!(probe.url.starts_with("http://127.0.0.1:"), "{}", probe.url);
                }
            }

            #[test]
            fn every_secret_becomes_one_more_variable(
                froms in prop::collection::vec(value_from(), 0..70),
                described in any::<bool>(),
            ) {
                let secrets: Vec<Value> = froms
                    .iter()
                    .enumerate()
                    .map(|(i, f)| json!({"name": format!("V{i}"), "valueFrom": f}))
                    .collect();
                let n = secrets.len();
                let td = one(Value::Array(secrets));
                let input = if described { json!({"taskDefinition": td}) } else { td };
                let out = import(&input, &Options::default()).unwrap();
                let c = container(&out.task_definition, 0);
                prop_assert_eq!(env_of(c).len(), 1 + n);
                prop_assert!(c.get("secrets").is_none());
                for (i, f) in froms.iter().enumerate() {
                    let v = env_value(c, &format!("V{i}")).unwrap();
                    let short = format!("ssm:{f}");
                    prop_assert!(v == *f || v == short);
                    prop_assert!(reference::parse(&v).is_ok());
                }
            }
        }
    }
}
