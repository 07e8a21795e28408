//! From the agent's environment to the app's: which variables are references, which
//! secrets are expanded whole, what the database secret becomes, what must be set —
//! and, once the values are fetched, the app's environment itself.
//!
//! Precedence, highest first: variables set in the environment (plain or references),
//! then `DECKHAND_DATABASE_SECRET`, then the `DECKHAND_ENV_SECRETS` secrets (a later one
//! wins over an earlier one), then the `DECKHAND_ENV_PARAMETERS` paths (likewise).
//! Every collision is reported by name, never by value.
//!
//! What is redacted follows AWS's own line between secrets and configuration: every
//! Secrets Manager value and every `SecureString` parameter is a secret; a `String` or
//! `StringList` parameter is configuration, left readable in logs unless
//! `DECKHAND_REDACT_PARAMETERS=all` ([`RedactParameters`]).
//!
//! [`Plan::apply`] and [`Plan::explain`] (what `agent check` prints) run the same steps:
//! each step records, besides the start's errors and notices, one [`Row`] per variable
//! it placed, shadowed or could not resolve.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};
use std::fmt;

use super::database;
use super::key::Key;
use super::parameter::{self, PathSetting};
use super::reference::{self, Reference};
use super::source::{Entry, FetchError, FetchErrorKind, Fetched, Value};
use super::value::{env_text, json_object, looks_like_configuration, SecretString, Secrets};
use crate::exit;

/// The agent's own variables, never passed to the app.
pub const OWN_PREFIX: &str = "DECKHAND_";

/// What to resolve, besides the references found in the environment.
#[derive(Debug, Clone, Default)]
pub struct SecretSettings {
    /// `DECKHAND_ENV_SECRETS`: every top-level key becomes a variable.
    pub env_secrets: Vec<Key>,
    /// `DECKHAND_DATABASE_SECRET` and how to name what it becomes.
    pub database: Option<DatabaseSettings>,
    /// `DECKHAND_REQUIRED_ENV`: must be set and non-empty in the app's environment.
    pub required: Vec<String>,
    /// `DECKHAND_ENV_PARAMETERS`: every parameter under each path becomes a variable.
    pub env_parameters: Vec<PathSetting>,
    /// `DECKHAND_ENV_PARAMETERS_KEEP_CASE`: name those variables without upper-casing.
    pub keep_case: bool,
    /// `DECKHAND_REDACT_PARAMETERS`: which parameters are redacted from logs.
    pub redact_parameters: RedactParameters,
}

/// `DECKHAND_REDACT_PARAMETERS`: which Parameter Store parameters are secrets for the
/// log sanitizer. Secrets Manager values always are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RedactParameters {
    /// `secure`: only `SecureString` parameters; `String` and `StringList` parameters
    /// are configuration and stay readable.
    #[default]
    Secure,
    /// `all`: every parameter, whatever its type.
    All,
}

impl RedactParameters {
    pub fn parse(v: &str) -> Result<RedactParameters, String> {
        match v.trim().to_ascii_lowercase().as_str() {
            "secure" => Ok(RedactParameters::Secure),
            "all" => Ok(RedactParameters::All),
            _ => Err("must be secure (only SecureString parameters are redacted) or all".into()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    pub key: Key,
    /// `DECKHAND_DATABASE_URL_VAR` (default `DATABASE_URL`).
    pub url_var: String,
    /// `DECKHAND_DATABASE_SSLMODE`, appended to the URL as `sslmode`.
    pub sslmode: Option<String>,
}

/// One reason the app cannot start, as a sentence naming the variable and the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretError {
    /// [`exit::CONFIG`] or [`exit::UNAVAILABLE`].
    pub exit_code: u8,
    pub message: String,
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Every reason the app cannot start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub errors: Vec<SecretError>,
}

impl Failure {
    /// 78 when anything needs a configuration change, else 69 (AWS not reachable in
    /// time).
    pub fn exit_code(&self) -> u8 {
        if self.errors.iter().any(|e| e.exit_code == exit::CONFIG) {
            exit::CONFIG
        } else {
            exit::UNAVAILABLE
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Failure {}

fn config_error(message: String) -> SecretError {
    SecretError {
        exit_code: exit::CONFIG,
        message,
    }
}

/// What a failed fetch means for a row of [`Plan::explain`].
fn fetch_status(kind: FetchErrorKind) -> Status {
    match kind {
        FetchErrorKind::NotFound => Status::NotFound,
        FetchErrorKind::AccessDenied => Status::AccessDenied,
        FetchErrorKind::Decryption => Status::Decryption,
        FetchErrorKind::Invalid | FetchErrorKind::Transient => Status::Invalid,
        FetchErrorKind::TimedOut => Status::TimedOut,
    }
}

fn fetch_error(variable: &str, key: &Key, e: &FetchError) -> SecretError {
    let what = match (e.kind, key) {
        (FetchErrorKind::NotFound, _) => "was not found",
        (FetchErrorKind::AccessDenied, Key::SecretsManager(_)) => "may not be read (the task role needs secretsmanager:GetSecretValue on it, and kms:Decrypt when it is encrypted with a customer-managed KMS key)",
        (FetchErrorKind::AccessDenied, Key::Parameter(_)) => "may not be read (the task role needs ssm:GetParameters on it, and kms:Decrypt when it is a SecureString with a customer-managed KMS key)",
        (FetchErrorKind::AccessDenied, Key::ParameterPath(_)) => "may not be read (the task role needs ssm:GetParametersByPath on it, and kms:Decrypt for SecureStrings with a customer-managed KMS key)",
        (FetchErrorKind::Decryption, Key::SecretsManager(_)) => "could not be decrypted (the task role needs kms:Decrypt on the secret's KMS key)",
        (FetchErrorKind::Decryption, _) => "could not be decrypted (the task role needs kms:Decrypt on the SecureString's KMS key)",
        (FetchErrorKind::Invalid | FetchErrorKind::Transient, _) => "could not be used",
        (FetchErrorKind::TimedOut, _) => "",
    };
    let noun = key.noun();
    let message = if what.is_empty() {
        format!("{variable}: {noun} \"{key}\" {}", e.detail)
    } else {
        format!("{variable}: {noun} \"{key}\" {what}: {}", e.detail)
    };
    SecretError {
        exit_code: if e.kind == FetchErrorKind::TimedOut {
            exit::UNAVAILABLE
        } else {
            exit::CONFIG
        },
        message,
    }
}

/// The app's environment. `Debug` shows the names only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ChildEnv(BTreeMap<OsString, OsString>);

impl ChildEnv {
    pub fn get(&self, name: &str) -> Option<&OsStr> {
        self.0.get(OsStr::new(name)).map(|v| v.as_os_str())
    }

    pub fn to_vec(&self) -> Vec<(OsString, OsString)> {
        self.0.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// Names whose values differ between the two (added, removed or changed).
    pub fn changed_names(&self, other: &ChildEnv) -> Vec<String> {
        let names: BTreeSet<&OsString> = self.0.keys().chain(other.0.keys()).collect();
        names
            .into_iter()
            .filter(|n| self.0.get(*n) != other.0.get(*n))
            .map(|n| n.to_string_lossy().into_owned())
            .collect()
    }
}

/// The app's environment is where the settings of what runs for it (migrations, the
/// in-process `/health`) are read: a `DATABASE_URL` or `HEALTH_*` from a secret counts.
impl conventions::Env for ChildEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name)
            .and_then(OsStr::to_str)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }

    fn vars(&self) -> Vec<(OsString, OsString)> {
        self.to_vec()
    }
}

impl fmt::Debug for ChildEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

/// The outcome of a resolution.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub env: ChildEnv,
    /// Every value placed into `env` from a secret.
    pub secrets: Secrets,
    /// Collisions, by name, for the log.
    pub notices: Vec<String>,
}

/// Where a variable of the app's environment comes from (a row of [`Plan::explain`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Set in the environment as it is.
    Plain,
    /// A reference set in the environment, with its JSON key.
    Reference { key: Key, json_key: Option<String> },
    /// A value that starts like a reference but is not one the agent can read.
    Unparsed,
    /// A key of a `DECKHAND_ENV_SECRETS` secret (or the secret itself, on an error).
    EnvSecret(Key),
    /// One of the variables `DECKHAND_DATABASE_SECRET` becomes (or the secret itself).
    Database(Key),
    /// A parameter under a `DECKHAND_ENV_PARAMETERS` path (or the path itself).
    Path {
        path: String,
        parameter: Option<String>,
    },
    /// `DECKHAND_REQUIRED_ENV`.
    Required,
}

/// What happened to one variable (a row of [`Plan::explain`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// The app gets it.
    Ok,
    /// No such secret, parameter, version, JSON key, or nothing under a path.
    NotFound,
    AccessDenied,
    /// KMS refused to decrypt it.
    Decryption,
    /// Not JSON, or not the JSON the setting needs.
    Malformed,
    /// Anything else that cannot be used (two parameters of one path for one variable).
    Invalid,
    /// AWS did not answer in time (exit 69).
    TimedOut,
    /// A source of higher precedence sets the same variable: what, for the row.
    ShadowedBy(String),
    /// `DECKHAND_REQUIRED_ENV` names it and it is not set.
    RequiredMissing,
    /// `DECKHAND_REQUIRED_ENV` names it and it is empty.
    RequiredEmpty,
}

impl Status {
    /// Whether the row is a reason the app would not start.
    pub fn is_problem(&self) -> bool {
        !matches!(self, Status::Ok | Status::ShadowedBy(_))
    }
}

/// One variable, where it comes from and what happened: never its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The variable, or the setting (`DECKHAND_ENV_SECRETS`, …) when the problem is
    /// with a whole secret or path.
    pub name: String,
    pub origin: Origin,
    pub status: Status,
    /// A problem's message, as the start prints it (names, never a value).
    pub message: Option<String>,
    /// An `Ok` value the log sanitizer is given (every Secrets Manager value, every
    /// `SecureString`, every parameter with `DECKHAND_REDACT_PARAMETERS=all`).
    pub secret: bool,
    /// An `Ok` value its store calls configuration (a `String` or `StringList`
    /// parameter), left readable in logs unless it is also `secret`.
    pub configuration: bool,
}

impl Row {
    fn new(name: &str, origin: Origin, status: Status) -> Row {
        Row {
            name: name.to_owned(),
            origin,
            status,
            message: None,
            secret: false,
            configuration: false,
        }
    }
}

/// What [`Plan::explain`] finds: a row per variable, and what the start would do.
#[derive(Debug, Clone)]
pub struct Explained {
    pub rows: Vec<Row>,
    /// The loaded values, for the redaction set-up (which values are too short).
    pub secrets: Secrets,
    /// Exactly what [`Plan::apply`] returns as its error; `None` when it succeeds.
    pub failure: Option<Failure>,
}

/// What to fetch and how to place it.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Variables passed through as they are (not references, not `DECKHAND_*`). Not
    /// secret, but `Debug` is kept to names anyway by [`ChildEnv`].
    plain: ChildEnv,
    references: Vec<(String, Reference)>,
    settings: SecretSettings,
}

impl Plan {
    /// Finds the references in `env` and drops the agent's own variables.
    pub fn new(
        env: impl IntoIterator<Item = (OsString, OsString)>,
        settings: SecretSettings,
    ) -> Result<Plan, Failure> {
        let (plan, problems) = Plan::parse(env, settings);
        if !problems.is_empty() {
            return Err(Failure {
                errors: problems.into_iter().map(|(_, e)| e).collect(),
            });
        }
        Ok(plan)
    }

    /// [`Plan::new`] that goes on past a malformed reference: the plan without it, and
    /// a row and an error for each (for `agent check`).
    pub fn parse(
        env: impl IntoIterator<Item = (OsString, OsString)>,
        settings: SecretSettings,
    ) -> (Plan, Vec<(Row, SecretError)>) {
        let mut plain = BTreeMap::new();
        let mut references = Vec::new();
        let mut errors = Vec::new();
        for (name, value) in env {
            if name.to_string_lossy().starts_with(OWN_PREFIX) {
                continue;
            }
            match (name.to_str(), value.to_str()) {
                (Some(n), Some(v)) if reference::is_reference(v) => match reference::parse(v) {
                    Ok(r) => references.push((n.to_owned(), r)),
                    Err(reason) => {
                        let e = config_error(format!("{n}={v:?} is not valid: {reason}"));
                        let mut row = Row::new(n, Origin::Unparsed, Status::Malformed);
                        row.message = Some(e.message.clone());
                        errors.push((row, e));
                    }
                },
                _ => {
                    plain.insert(name, value);
                }
            }
        }
        let plan = Plan {
            plain: ChildEnv(plain),
            references,
            settings,
        };
        (plan, errors)
    }

    /// Every distinct secret (with stage and version) to fetch.
    pub fn keys(&self) -> BTreeSet<Key> {
        let mut keys: BTreeSet<Key> = self.references.iter().map(|(_, r)| r.key.clone()).collect();
        keys.extend(self.settings.env_secrets.iter().cloned());
        keys.extend(self.settings.database.iter().map(|d| d.key.clone()));
        keys.extend(
            self.settings
                .env_parameters
                .iter()
                .map(|p| Key::ParameterPath(p.key.clone())),
        );
        keys
    }

    /// Builds the app's environment from the fetched values; fails closed, with every
    /// problem found.
    pub fn apply(&self, fetched: &Fetched) -> Result<Resolved, Failure> {
        let (resolved, out, required) = self.assemble(fetched);
        match failure(&out, &required) {
            Some(f) => Err(f),
            None => Ok(resolved),
        }
    }

    /// What [`Plan::apply`] does, variable by variable, through the same steps: a row
    /// for every variable the app would get, every value shadowed by another, and every
    /// problem (a required variable only when nothing else explains its absence).
    pub fn explain(&self, fetched: &Fetched) -> Explained {
        let (resolved, out, required) = self.assemble(fetched);
        let failure = failure(&out, &required);
        let mut rows = out.rows;
        let failed: BTreeSet<String> = rows
            .iter()
            .filter(|r| r.status.is_problem())
            .map(|r| r.name.clone())
            .collect();
        rows.extend(
            required
                .rows
                .into_iter()
                .filter(|r| !failed.contains(&r.name)),
        );
        Explained {
            rows,
            secrets: resolved.secrets,
            failure,
        }
    }

    /// The steps, lowest precedence first (each later source overrides and says so):
    /// what the environment would be, the problems and rows, and the required
    /// variables' problems (which count only when there is no other).
    fn assemble(&self, fetched: &Fetched) -> (Resolved, Outcome, Outcome) {
        let mut out = Outcome::default();
        let mut from_secrets = self.expand_secrets(fetched, &mut out);
        self.compose_database(fetched, &mut from_secrets, &mut out);
        let from_paths = self.expand_paths(fetched, &mut out);
        let references = self.resolve_references(fetched, &mut out);

        let mut env = self.plain.0.clone();
        for name in env.keys() {
            let name = name.to_string_lossy();
            out.rows.push(Row::new(&name, Origin::Plain, Status::Ok));
        }
        let mut secrets = Secrets::default();
        for (name, placed) in references {
            placed.place(&name, &mut env, &mut secrets, &mut out);
        }
        for (name, placed) in from_secrets {
            if env.contains_key(OsStr::new(&name)) {
                out.notices.push(format!(
                    "{name} is set in the environment; the value from secret \"{}\" is not used",
                    placed.source
                ));
                out.shadowed(
                    &name,
                    placed.origin,
                    format!("{name} set in the environment"),
                );
                continue;
            }
            placed.place(&name, &mut env, &mut secrets, &mut out);
        }
        for (name, FromPath { placed, path }) in from_paths {
            if env.contains_key(OsStr::new(&name)) {
                let by = if self.is_set_explicitly(&name) {
                    "in the environment"
                } else {
                    "by a secret"
                };
                out.notices.push(format!(
                    "{name} is set {by}; the value of parameter \"{}\" (under \"{path}\" of {ENV_PARAMETERS}) is not used",
                    placed.source
                ));
                out.shadowed(&name, placed.origin, format!("{name} set {by}"));
                continue;
            }
            placed.place(&name, &mut env, &mut secrets, &mut out);
        }
        let mut required = Outcome::default();
        self.check_required(&env, &mut required);
        let resolved = Resolved {
            env: ChildEnv(env),
            secrets,
            notices: std::mem::take(&mut out.notices),
        };
        (resolved, out, required)
    }

    /// Whether `name` is set in the agent's environment, plainly or as a reference.
    fn is_set_explicitly(&self, name: &str) -> bool {
        self.plain.0.contains_key(OsStr::new(name))
            || self.references.iter().any(|(n, _)| n == name)
    }

    /// The `DECKHAND_ENV_SECRETS` variables: every top-level key of each secret; a later
    /// secret wins over an earlier one, with a notice.
    fn expand_secrets(&self, fetched: &Fetched, out: &mut Outcome) -> BTreeMap<String, Placed> {
        let mut vars: BTreeMap<String, Placed> = BTreeMap::new();
        for key in &self.settings.env_secrets {
            let origin = Origin::EnvSecret(key.clone());
            let Some(text) = out.text(fetched, ENV_SECRETS, key, &origin) else {
                continue;
            };
            let obj = match json_object(text.value.expose()) {
                Ok(o) => o,
                Err(reason) => {
                    out.error(
                        ENV_SECRETS,
                        &origin,
                        Status::Malformed,
                        format!("{ENV_SECRETS}: secret \"{key}\" {reason}"),
                    );
                    continue;
                }
            };
            let source = key.to_string();
            for (name, value) in obj {
                if name.is_empty() || name.contains('=') || name.contains('\0') {
                    out.error(ENV_SECRETS, &origin, Status::Malformed, format!(
                        "{ENV_SECRETS}: secret \"{key}\" has the key {name:?}, which cannot be a variable name (empty, or contains '=' or NUL)"
                    ));
                    continue;
                }
                if let Some(earlier) = vars.get(&name).filter(|e| e.source != source) {
                    out.notices.push(format!(
                        "{name} is in secrets \"{}\" and \"{source}\" of {ENV_SECRETS}; the value from \"{source}\" (listed later) is used",
                        earlier.source
                    ));
                    let by = format!("{name} of secret \"{source}\"");
                    out.shadowed(&name, earlier.origin.clone(), by);
                }
                let value = SecretString::new(env_text(&value));
                let stored = self.stored(value, &source, text.secure, key, origin.clone());
                vars.insert(name, stored);
            }
        }
        vars
    }

    /// `DECKHAND_DATABASE_SECRET`'s variables, over those of `DECKHAND_ENV_SECRETS`.
    fn compose_database(
        &self,
        fetched: &Fetched,
        vars: &mut BTreeMap<String, Placed>,
        out: &mut Outcome,
    ) {
        const DB: &str = "DECKHAND_DATABASE_SECRET";
        let Some(db) = &self.settings.database else {
            return;
        };
        let origin = Origin::Database(db.key.clone());
        let Some(text) = out.text(fetched, DB, &db.key, &origin) else {
            return;
        };
        // Whatever the store's type: the setting itself says this is a secret.
        match database::compose(text.value.expose(), &db.url_var, db.sslmode.as_deref()) {
            Ok(composed) => {
                let source = db.key.to_string();
                for (name, value) in composed {
                    if let Some(earlier) = vars.get(&name) {
                        out.notices.push(format!(
                            "{name} is in secret \"{}\" of {ENV_SECRETS} and is also set by {DB}; the value from {DB} is used",
                            earlier.source
                        ));
                        let by = format!("{name} of {DB}");
                        out.shadowed(&name, earlier.origin.clone(), by);
                    }
                    let secret = !database::NOT_SECRET.contains(&name.as_str());
                    let placed = Placed::database(value, &source, secret, origin.clone());
                    vars.insert(name, placed);
                }
            }
            Err(reason) => out.error(
                DB,
                &origin,
                Status::Malformed,
                format!("{DB}: secret \"{}\" {reason}", db.key),
            ),
        }
    }

    /// The references found in the environment, each with its value (or its JSON key's).
    fn resolve_references(&self, fetched: &Fetched, out: &mut Outcome) -> Vec<(String, Placed)> {
        let mut vars = Vec::new();
        for (name, reference) in &self.references {
            let key = &reference.key;
            let origin = Origin::Reference {
                key: key.clone(),
                json_key: reference.json_key.clone(),
            };
            let Some(text) = out.text(fetched, name, key, &origin) else {
                continue;
            };
            let value = match &reference.json_key {
                None => text.value,
                Some(json_key) => match json_object(text.value.expose()) {
                    Ok(obj) => match obj.get(json_key) {
                        Some(v) => SecretString::new(env_text(v)),
                        None => {
                            out.error(
                                name,
                                &origin,
                                Status::NotFound,
                                format!("{name}: secret \"{key}\" has no JSON key \"{json_key}\""),
                            );
                            continue;
                        }
                    },
                    Err(reason) => {
                        out.error(
                            name,
                            &origin,
                            Status::Malformed,
                            format!(
                            "{name}: secret \"{key}\" {reason} (needed for JSON key \"{json_key}\")"
                        ),
                        );
                        continue;
                    }
                },
            };
            let placed = self.stored(value, &key.to_string(), text.secure, key, origin);
            vars.push((name.clone(), placed));
        }
        vars
    }

    /// `DECKHAND_REQUIRED_ENV`: each must be set and non-empty.
    fn check_required(&self, env: &BTreeMap<OsString, OsString>, out: &mut Outcome) {
        for name in &self.settings.required {
            match env.get(OsStr::new(name)) {
                None => out.error(
                    name,
                    &Origin::Required,
                    Status::RequiredMissing,
                    format!("{name} is required (DECKHAND_REQUIRED_ENV) but is not set"),
                ),
                Some(v) if v.is_empty() => out.error(
                    name,
                    &Origin::Required,
                    Status::RequiredEmpty,
                    format!("{name} is required (DECKHAND_REQUIRED_ENV) but is empty"),
                ),
                Some(_) => {}
            }
        }
    }

    /// The `DECKHAND_ENV_PARAMETERS` variables. A later path wins over an earlier one
    /// (with a notice); two parameters of one path that become the same variable are an
    /// error, as is a path that holds nothing unless it is optional.
    fn expand_paths(&self, fetched: &Fetched, out: &mut Outcome) -> BTreeMap<String, FromPath> {
        let mut vars: BTreeMap<String, FromPath> = BTreeMap::new();
        let mut done = BTreeSet::new();
        for setting in &self.settings.env_parameters {
            if !done.insert(&setting.key) {
                continue;
            }
            let key = Key::ParameterPath(setting.key.clone());
            let path = key.to_string();
            let origin = Origin::Path {
                path: path.clone(),
                parameter: None,
            };
            let tree = match fetched_value(fetched, ENV_PARAMETERS, &key) {
                Ok(Value::Tree(tree)) => tree,
                Ok(Value::Text(_)) => {
                    out.error(ENV_PARAMETERS, &origin, Status::Invalid, format!(
                        "{ENV_PARAMETERS}: \"{path}\" was read as one parameter, not a path (a bug in the agent)"
                    ));
                    continue;
                }
                Err((e, status)) => {
                    out.failed(ENV_PARAMETERS, &origin, status, e);
                    continue;
                }
            };
            if tree.is_empty() {
                if !setting.optional {
                    out.error(ENV_PARAMETERS, &origin, Status::NotFound, format!(
                        "{ENV_PARAMETERS}: parameter path \"{path}\" holds no parameter; check the path and the region, or write \"{path}?\" if it may be empty"
                    ));
                }
                continue;
            }
            let mut in_this_path: BTreeMap<String, &str> = BTreeMap::new();
            for (name, value) in tree {
                let variable = parameter::variable_name(name, self.settings.keep_case);
                let origin = Origin::Path {
                    path: path.clone(),
                    parameter: Some(name.clone()),
                };
                if let Some(other) = in_this_path.insert(variable.clone(), name) {
                    let fix = if self.settings.keep_case {
                        "rename one of them, or list a narrower path"
                    } else {
                        "rename one of them, list a narrower path, or set DECKHAND_ENV_PARAMETERS_KEEP_CASE=true if they differ only in case"
                    };
                    out.error(&variable, &origin, Status::Invalid, format!(
                        "{ENV_PARAMETERS}: parameters \"{other}\" and \"{name}\" under \"{path}\" would both become {variable}; {fix}"
                    ));
                    continue;
                }
                // Overlapping paths (`/app/` and `/app/db/`) list some parameters twice:
                // the same parameter is no collision.
                let earlier = vars.get(&variable).filter(|e| e.placed.source != *name);
                if let Some(earlier) = earlier {
                    out.notices.push(format!(
                        "{variable} is in parameters \"{}\" (under \"{}\") and \"{name}\" (under \"{path}\") of {ENV_PARAMETERS}; the value from \"{path}\" (listed later) is used",
                        earlier.placed.source, earlier.path
                    ));
                    let by = format!("{variable} of parameter \"{name}\"");
                    out.shadowed(&variable, earlier.placed.origin.clone(), by);
                }
                let placed = self.stored(value.value.clone(), name, value.secure, &key, origin);
                vars.insert(
                    variable,
                    FromPath {
                        placed,
                        path: path.clone(),
                    },
                );
            }
        }
        vars
    }
}

impl Plan {
    /// A value as its store gave it (`secure`: see [`Entry`]), from `key`: a secret
    /// when the store says so, and every parameter with `DECKHAND_REDACT_PARAMETERS=all`.
    fn stored(
        &self,
        value: SecretString,
        source: &str,
        secure: bool,
        key: &Key,
        origin: Origin,
    ) -> Placed {
        Placed {
            value,
            origin,
            source: source.to_owned(),
            secret: secure || self.settings.redact_parameters == RedactParameters::All,
            configuration: !secure,
            from_secrets_manager: matches!(key, Key::SecretsManager(_)),
        }
    }
}

/// A value bound for the app's environment, and where it came from.
struct Placed {
    value: SecretString,
    /// Where it came from, for the rows of [`Plan::explain`].
    origin: Origin,
    /// The secret or parameter it came from, as the user named it.
    source: String,
    /// Whether it is redacted from logs: every Secrets Manager value and `SecureString`
    /// parameter (and every parameter with `DECKHAND_REDACT_PARAMETERS=all`); not a
    /// `String` or `StringList` parameter, nor a database secret's host, port, user and
    /// database name.
    secret: bool,
    /// Its store calls it configuration (a `String` or `StringList` parameter): named at
    /// start when it is not redacted.
    configuration: bool,
    /// From Secrets Manager, where a value that looks like configuration is worth a
    /// warning (a `SecureString` is an explicit choice, and a database secret is a
    /// secret by the setting that names it).
    from_secrets_manager: bool,
}

impl Placed {
    /// One of the variables a database secret becomes.
    fn database(value: String, source: &str, secret: bool, origin: Origin) -> Placed {
        Placed {
            value: SecretString::new(value),
            origin,
            source: source.to_owned(),
            secret,
            configuration: false,
            from_secrets_manager: false,
        }
    }

    /// Sets `name` in the app's environment, and among the loaded secrets when it is
    /// one (or among the configuration named at start when it is not), with its row; a
    /// value no environment variable can hold is a problem of its own.
    fn place(
        self,
        name: &str,
        env: &mut BTreeMap<OsString, OsString>,
        secrets: &mut Secrets,
        out: &mut Outcome,
    ) {
        if self.value.expose().contains('\0') {
            // A variable's value ends at its first NUL: the app's start would refuse
            // the whole environment, naming no variable ("cannot run sh: nul byte").
            out.error(
                name,
                &self.origin,
                Status::Invalid,
                format!(
                    "{name}: the value from \"{}\" holds a NUL byte, which an environment \
                     variable cannot hold; remove it from the value",
                    self.source
                ),
            );
            return;
        }
        env.insert(OsString::from(name), OsString::from(self.value.expose()));
        out.rows.push(Row {
            secret: self.secret,
            configuration: self.configuration,
            ..Row::new(name, self.origin, Status::Ok)
        });
        if self.secret {
            if self.from_secrets_manager {
                if let Some(reason) = looks_like_configuration(self.value.expose()) {
                    secrets.push_looks_like_configuration(name, &self.source, reason);
                }
            }
            secrets.push(name, &self.source, self.value);
        } else if self.configuration {
            secrets.push_configuration(name, &self.source);
        }
    }
}

/// A `DECKHAND_ENV_PARAMETERS` value, with the path that listed it.
struct FromPath {
    placed: Placed,
    path: String,
}

/// One resolution's problems, notices and rows, gathered as it goes.
#[derive(Default)]
struct Outcome {
    errors: Vec<SecretError>,
    notices: Vec<String>,
    rows: Vec<Row>,
}

impl Outcome {
    /// A configuration problem (exit 78) with `name`'s row.
    fn error(&mut self, name: &str, origin: &Origin, status: Status, message: String) {
        self.failed(name, origin, status, config_error(message));
    }

    fn failed(&mut self, name: &str, origin: &Origin, status: Status, e: SecretError) {
        self.rows.push(Row {
            message: Some(e.message.clone()),
            ..Row::new(name, origin.clone(), status)
        });
        self.errors.push(e);
    }

    /// `name`'s value from `origin` is not used: `by` sets it.
    fn shadowed(&mut self, name: &str, origin: Origin, by: String) {
        self.rows
            .push(Row::new(name, origin, Status::ShadowedBy(by)));
    }

    /// The single value of `key`, or `None` with the error recorded (for `variable`).
    fn text(
        &mut self,
        fetched: &Fetched,
        variable: &str,
        key: &Key,
        origin: &Origin,
    ) -> Option<Entry> {
        match fetched_value(fetched, variable, key) {
            Ok(Value::Text(v)) => Some(v.clone()),
            Ok(Value::Tree(_)) => {
                self.error(
                    variable,
                    origin,
                    Status::Invalid,
                    format!(
                        "{variable}: {} \"{key}\" holds several values, not one",
                        key.noun()
                    ),
                );
                None
            }
            Err((e, status)) => {
                self.failed(variable, origin, status, e);
                None
            }
        }
    }
}

/// What the start does with a resolution's problems: every problem of the steps, or,
/// when there is none, every required variable that is missing.
fn failure(out: &Outcome, required: &Outcome) -> Option<Failure> {
    [out, required]
        .into_iter()
        .find(|o| !o.errors.is_empty())
        .map(|o| Failure {
            errors: o.errors.clone(),
        })
}

const ENV_SECRETS: &str = "DECKHAND_ENV_SECRETS";
const ENV_PARAMETERS: &str = "DECKHAND_ENV_PARAMETERS";

/// The fetched value of `key`, or the error naming `variable` and the key (with what
/// it means for a row).
fn fetched_value<'f>(
    fetched: &'f Fetched,
    variable: &str,
    key: &Key,
) -> Result<&'f Value, (SecretError, Status)> {
    match fetched.get(key) {
        Some(Ok(v)) => Ok(v),
        Some(Err(e)) => Err((fetch_error(variable, key, e), fetch_status(e.kind))),
        None => Err((
            SecretError {
                exit_code: exit::UNAVAILABLE,
                message: format!("{variable}: {} \"{key}\" was not fetched", key.noun()),
            },
            Status::TimedOut,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::reference::parse_secret_id;
    use crate::secrets::source::fetch_all;
    use crate::secrets::source::tests::Fake;
    use std::sync::Arc;
    use std::time::Duration;

    fn env(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    async fn resolve(
        fake: Fake,
        vars: &[(&str, &str)],
        settings: SecretSettings,
    ) -> Result<Resolved, Failure> {
        let plan = Plan::new(env(vars), settings)?;
        let fake = Arc::new(fake);
        let fetched = fetch_all(&fake, plan.keys(), Duration::from_secs(2)).await;
        plan.apply(&fetched)
    }

    fn value(r: &Resolved, name: &str) -> String {
        r.env.get(name).unwrap().to_string_lossy().into_owned()
    }

    #[tokio::test]
    async fn references_become_values_and_own_variables_are_dropped() {
        let fake = Fake::with(&[
            ("app/db", r#"{"password":"pw-123456","port":5432}"#),
            ("plain", "whole"),
        ]);
        let r = resolve(
            fake,
            &[
                ("A", "secretsmanager:plain"),
                ("B", "secretsmanager:app/db:password"),
                ("C", "secretsmanager:app/db:port"),
                ("KEEP", "as is"),
                ("DECKHAND_STOP_TIMEOUT", "5s"),
            ],
            SecretSettings::default(),
        )
        .await
        .unwrap();
        assert_eq!(value(&r, "A"), "whole");
        assert_eq!(value(&r, "B"), "pw-123456");
        assert_eq!(value(&r, "C"), "5432");
        assert_eq!(value(&r, "KEEP"), "as is");
        assert!(r.env.get("DECKHAND_STOP_TIMEOUT").is_none());
        let names: Vec<_> = r.secrets.iter().map(|l| l.variable.as_str()).collect();
        assert_eq!(names, ["A", "B", "C"]);
        assert!(!format!("{r:?}").contains("pw-123456"));
    }

    #[tokio::test]
    async fn whole_secrets_expand_with_explicit_variables_winning() {
        let fake = Fake::with(&[
            (
                "base",
                r#"{"NODE_ENV":"production","PORT":8080,"SHARED":"base"}"#,
            ),
            ("over", r#"{"SHARED":"over","FLAGS":{"a":true}}"#),
        ]);
        let settings = SecretSettings {
            env_secrets: vec![
                parse_secret_id("base").unwrap(),
                parse_secret_id("over").unwrap(),
            ],
            ..Default::default()
        };
        let r = resolve(fake, &[("NODE_ENV", "development")], settings)
            .await
            .unwrap();
        assert_eq!(value(&r, "NODE_ENV"), "development");
        assert_eq!(value(&r, "PORT"), "8080");
        assert_eq!(value(&r, "SHARED"), "over");
        assert_eq!(value(&r, "FLAGS"), r#"{"a":true}"#);
        let notices = r.notices.join("\n");
        assert!(
            notices.contains("NODE_ENV is set in the environment"),
            "{notices}"
        );
        assert!(
            notices.contains("SHARED is in secrets \"base\" and \"over\""),
            "{notices}"
        );
        assert!(!notices.contains("production"));
    }

    #[tokio::test]
    async fn the_database_secret_wins_over_whole_secrets() {
        let fake = Fake::with(&[
            (
                "db",
                r#"{"host":"h","port":"5432","username":"u","password":"p@ss:w/rd%?","dbname":"d"}"#,
            ),
            ("env", r#"{"PGHOST":"elsewhere"}"#),
        ]);
        let settings = SecretSettings {
            env_secrets: vec![parse_secret_id("env").unwrap()],
            database: Some(DatabaseSettings {
                key: parse_secret_id("db").unwrap(),
                url_var: "DATABASE_URL".into(),
                sslmode: None,
            }),
            ..Default::default()
        };
        let r = resolve(fake, &[], settings).await.unwrap();
        assert_eq!(value(&r, "PGHOST"), "h");
        assert_eq!(
            value(&r, "DATABASE_URL"),
            "postgres://u:p%40ss%3Aw%2Frd%25%3F@h:5432/d"
        );
        assert!(r.notices.join("").contains("PGHOST"));
        // Only what carries the password is kept for the log sanitizer.
        let loaded: Vec<&str> = r.secrets.iter().map(|l| l.variable.as_str()).collect();
        assert!(loaded.contains(&"DATABASE_URL") && loaded.contains(&"PGPASSWORD"));
        for setting in ["PGHOST", "PGPORT", "PGUSER", "PGDATABASE"] {
            assert!(!loaded.contains(&setting), "{setting} is kept as a secret");
        }
    }

    #[tokio::test]
    async fn failures_name_the_variable_and_secret_but_no_value() {
        let fake = Fake::with(&[("json", r#"{"a":"value-one"}"#), ("text", "not-json-value")]);
        let err = resolve(
            fake,
            &[
                ("MISSING", "secretsmanager:nope"),
                ("NOKEY", "secretsmanager:json:b"),
                ("BADJSON", "secretsmanager:text:a"),
                ("OK", "secretsmanager:json:a"),
            ],
            SecretSettings::default(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.exit_code(), exit::CONFIG);
        let text = err.to_string();
        assert!(
            text.contains("MISSING: secret \"nope\" was not found"),
            "{text}"
        );
        assert!(
            text.contains("NOKEY: secret \"json\" has no JSON key \"b\""),
            "{text}"
        );
        assert!(
            text.contains("BADJSON: secret \"text\" is not a JSON object"),
            "{text}"
        );
        assert!(
            !text.contains("value-one") && !text.contains("not-json-value"),
            "{text}"
        );
    }

    /// A NUL byte ends a variable's value: the app's start refused the whole environment
    /// ("cannot run sh: nul byte found", exit 126), naming no variable. Now each value
    /// that holds one is named, wherever it came from, and nothing of it is shown.
    #[tokio::test]
    async fn a_value_holding_a_nul_byte_is_named_and_refused() {
        let fake = Fake::with(&[
            ("whole", "before\0after-nul-s3cret"),
            (
                "json",
                r#"{"password":"pa\u0000ss-nul-s3cret","user":"app"}"#,
            ),
            ("env", r#"{"FROM_ENV":"x\u0000y-nul-s3cret"}"#),
        ]);
        let settings = SecretSettings {
            env_secrets: vec![parse_secret_id("env").unwrap()],
            ..SecretSettings::default()
        };
        let err = resolve(
            fake,
            &[
                ("WHOLE", "secretsmanager:whole"),
                ("KEYED", "secretsmanager:json:password"),
                ("FINE", "secretsmanager:json:user"),
            ],
            settings,
        )
        .await
        .unwrap_err();
        assert_eq!(err.exit_code(), exit::CONFIG);
        let text = err.to_string();
        for (variable, source) in [("WHOLE", "whole"), ("KEYED", "json"), ("FROM_ENV", "env")] {
            assert!(
                text.contains(&format!(
                    "{variable}: the value from \"{source}\" holds a NUL byte, which an \
                     environment variable cannot hold"
                )),
                "{text}"
            );
        }
        assert!(
            !text.contains("FINE") && !text.contains("nul-s3cret"),
            "{text}"
        );
    }

    fn paths(list: &[&str]) -> Vec<PathSetting> {
        list.iter()
            .map(|p| parameter::parse_path(p).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn parameter_paths_expand_below_secrets_and_explicit_variables() {
        let fake = Fake::with(&[
            ("/app/STRIPE_SECRET_KEY", "sk-1"),
            ("/app/stripe-price-id.pro", "price-2"),
            ("/app/nested/NODE_ENV", "production"),
            ("/app/SHARED", "from-app"),
            ("/app/FROM_SECRET", "from-parameter"),
            ("/shared/SHARED", "from-shared"),
            ("one", r#"{"FROM_SECRET":"from-secret"}"#),
            ("/single/TOKEN", "token-3"),
        ]);
        let settings = SecretSettings {
            env_parameters: paths(&["/app/", "/shared/", "/empty/?", "/app/nested/", "/app/"]),
            env_secrets: vec![parse_secret_id("one").unwrap()],
            ..Default::default()
        };
        let r = resolve(
            fake,
            &[("NODE_ENV", "staging"), ("T", "ssm:/single/TOKEN")],
            settings,
        )
        .await
        .unwrap();
        assert_eq!(value(&r, "STRIPE_SECRET_KEY"), "sk-1");
        assert_eq!(value(&r, "STRIPE_PRICE_ID_PRO"), "price-2");
        assert_eq!(value(&r, "NODE_ENV"), "staging");
        assert_eq!(value(&r, "SHARED"), "from-shared");
        assert_eq!(value(&r, "FROM_SECRET"), "from-secret");
        assert_eq!(value(&r, "T"), "token-3");
        let notices = r.notices.join("\n");
        assert!(
            notices.contains("SHARED is in parameters \"/app/SHARED\" (under \"/app/\") and \"/shared/SHARED\" (under \"/shared/\")"),
            "{notices}"
        );
        assert!(
            notices.contains("NODE_ENV is set in the environment; the value of parameter \"/app/nested/NODE_ENV\""),
            "{notices}"
        );
        assert!(
            notices.contains("FROM_SECRET is set by a secret"),
            "{notices}"
        );
        assert!(!notices.contains("from-"), "{notices}");
        // Listing /app/nested/ and /app/ again is not a collision with itself.
        assert_eq!(r.notices.len(), 3, "{notices}");
        let loaded: Vec<(&str, &str)> = r
            .secrets
            .iter()
            .map(|l| (l.variable.as_str(), l.source.as_str()))
            .collect();
        assert!(loaded.contains(&("STRIPE_PRICE_ID_PRO", "/app/stripe-price-id.pro")));
        assert!(loaded.contains(&("T", "/single/TOKEN")));
    }

    /// (variable, source) pairs.
    type Named<'a> = Vec<(&'a str, &'a str)>;

    /// What `r` redacts, and what it names as configuration.
    fn redacted_and_configuration(r: &Resolved) -> (Named<'_>, Named<'_>) {
        let redacted = r
            .secrets
            .iter()
            .map(|l| (l.variable.as_str(), l.source.as_str()))
            .collect();
        let configuration = r
            .secrets
            .configuration()
            .iter()
            .map(|c| (c.variable.as_str(), c.source.as_str()))
            .collect();
        (redacted, configuration)
    }

    #[tokio::test]
    async fn string_parameters_are_configuration_and_secure_strings_are_secrets() {
        let fake = || {
            Fake::with(&[
                ("/app/LOG_TARGET", "stdout-json"),
                ("/app/API_TOKEN", "token-value-1"),
                ("/one/ORIGINS", "a.example,b.example"),
                ("/one/SEALED", "sealed-value-2"),
                ("/one/json", r#"{"FEATURE_FLAGS":"beta-search"}"#),
                ("sm", r#"{"FROM_SM":"sm-value-3"}"#),
            ])
            .with_configuration(&["/app/LOG_TARGET", "/one/ORIGINS", "/one/json"])
        };
        let settings = |redact_parameters| SecretSettings {
            env_parameters: paths(&["/app/"]),
            env_secrets: vec![
                parse_secret_id("ssm:/one/json").unwrap(),
                parse_secret_id("sm").unwrap(),
            ],
            redact_parameters,
            ..Default::default()
        };
        let vars = [
            ("ORIGINS", "ssm:/one/ORIGINS"),
            ("SEALED", "ssm:/one/SEALED"),
        ];

        let r = resolve(fake(), &vars, settings(RedactParameters::Secure))
            .await
            .unwrap();
        assert_eq!(value(&r, "LOG_TARGET"), "stdout-json");
        assert_eq!(value(&r, "ORIGINS"), "a.example,b.example");
        assert_eq!(value(&r, "FEATURE_FLAGS"), "beta-search");
        let (redacted, configuration) = redacted_and_configuration(&r);
        assert_eq!(
            redacted,
            [
                ("SEALED", "/one/SEALED"),
                ("FROM_SM", "sm"),
                ("API_TOKEN", "/app/API_TOKEN")
            ]
        );
        assert_eq!(
            configuration,
            [
                ("ORIGINS", "/one/ORIGINS"),
                ("FEATURE_FLAGS", "/one/json"),
                ("LOG_TARGET", "/app/LOG_TARGET")
            ]
        );

        // With `all`, every parameter is a secret again.
        let r = resolve(fake(), &vars, settings(RedactParameters::All))
            .await
            .unwrap();
        let (redacted, configuration) = redacted_and_configuration(&r);
        let names: BTreeSet<&str> = redacted.iter().map(|(v, _)| *v).collect();
        assert_eq!(
            names,
            BTreeSet::from([
                "API_TOKEN",
                "FEATURE_FLAGS",
                "FROM_SM",
                "LOG_TARGET",
                "ORIGINS",
                "SEALED"
            ])
        );
        assert!(configuration.is_empty(), "{configuration:?}");
    }

    #[tokio::test]
    async fn a_database_secret_in_a_string_parameter_keeps_its_password_secret() {
        let fake = Fake::with(&[(
            "/db/json",
            r#"{"host":"h","username":"u","password":"db-pass-1","dbname":"d"}"#,
        )])
        .with_configuration(&["/db/json"]);
        let settings = SecretSettings {
            database: Some(DatabaseSettings {
                key: parse_secret_id("ssm:/db/json").unwrap(),
                url_var: "DATABASE_URL".into(),
                sslmode: None,
            }),
            ..Default::default()
        };
        let r = resolve(fake, &[], settings).await.unwrap();
        let (redacted, configuration) = redacted_and_configuration(&r);
        let names: Vec<&str> = redacted.iter().map(|(v, _)| *v).collect();
        assert_eq!(names, ["DATABASE_URL", "PGPASSWORD"]);
        assert!(configuration.is_empty(), "{configuration:?}");
    }

    #[tokio::test]
    async fn secrets_manager_values_that_look_like_configuration_are_named_not_shown() {
        let fake = Fake::with(&[
            (
                "app/env",
                r#"{"NODE_ENV":"production","AWS_REGION":"eu-west-1","TIMEOUT_MS":300000,"API_KEY":"hunter2-Secret","MODE":"production-db-password"}"#,
            ),
            ("app/level", "WARNING"),
            ("/app/STAGE", "staging"),
        ]);
        let settings = SecretSettings {
            env_secrets: vec![parse_secret_id("app/env").unwrap()],
            env_parameters: paths(&["/app/"]),
            ..Default::default()
        };
        let r = resolve(fake, &[("LOG_LEVEL", "secretsmanager:app/level")], settings)
            .await
            .unwrap();
        let named: Vec<(&str, &str, &str)> = r
            .secrets
            .looks_like_configuration()
            .iter()
            .map(|n| (n.variable.as_str(), n.source.as_str(), n.reason))
            .collect();
        // A SecureString (STAGE) is an explicit choice: not named.
        assert_eq!(
            named,
            [
                ("LOG_LEVEL", "app/level", "a common word"),
                ("AWS_REGION", "app/env", "an AWS region name"),
                ("NODE_ENV", "app/env", "a common word"),
                ("TIMEOUT_MS", "app/env", "a short number"),
            ]
        );
        // Redacted all the same.
        let redacted: Vec<&str> = r.secrets.iter().map(|l| l.variable.as_str()).collect();
        for name in ["LOG_LEVEL", "NODE_ENV", "AWS_REGION", "TIMEOUT_MS", "STAGE"] {
            assert!(redacted.contains(&name), "{name}: {redacted:?}");
        }
        let shown = format!("{r:?} {:?}", r.notices);
        assert!(
            !shown.contains("production") && !shown.contains("eu-west-1"),
            "{shown}"
        );
    }

    #[tokio::test]
    async fn an_empty_path_and_a_collision_within_a_path_stop_the_start() {
        let fake = Fake::with(&[("/app/db-url", "u-1"), ("/app/DB_URL", "u-2")]);
        let settings = SecretSettings {
            env_parameters: paths(&["/app/", "/missing/"]),
            ..Default::default()
        };
        let err = resolve(fake, &[], settings).await.unwrap_err();
        assert_eq!(err.exit_code(), exit::CONFIG);
        let text = err.to_string();
        assert!(
            text.contains("parameters \"/app/DB_URL\" and \"/app/db-url\" under \"/app/\" would both become DB_URL"),
            "{text}"
        );
        assert!(text.contains("DECKHAND_ENV_PARAMETERS_KEEP_CASE"), "{text}");
        assert!(
            text.contains("parameter path \"/missing/\" holds no parameter"),
            "{text}"
        );
        assert!(!text.contains("u-1") && !text.contains("u-2"), "{text}");

        let fake = Fake::with(&[("/app/db-url", "u-1"), ("/app/DB_URL", "u-2")]);
        let settings = SecretSettings {
            env_parameters: paths(&["/app/"]),
            keep_case: true,
            ..Default::default()
        };
        let r = resolve(fake, &[], settings).await.unwrap();
        assert_eq!(value(&r, "db_url"), "u-1");
        assert_eq!(value(&r, "DB_URL"), "u-2");
    }

    #[tokio::test]
    async fn a_missing_parameter_names_the_variable_and_the_parameter() {
        let err = resolve(
            Fake::default(),
            &[("AUTH_SECRET", "ssm:/spotter-app/AUTH_SECRET:3")],
            SecretSettings::default(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.exit_code(), exit::CONFIG);
        assert!(
            err.to_string()
                .starts_with("AUTH_SECRET: parameter \"/spotter-app/AUTH_SECRET:3\" was not found"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn required_variables_must_be_set_and_non_empty() {
        let settings = SecretSettings {
            required: vec!["SET".into(), "EMPTY".into(), "ABSENT".into()],
            ..Default::default()
        };
        let err = resolve(Fake::default(), &[("SET", "x"), ("EMPTY", "")], settings)
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(!text.contains("SET is"), "{text}");
        assert!(text.contains("EMPTY is required (DECKHAND_REQUIRED_ENV) but is empty"));
        assert!(text.contains("ABSENT is required (DECKHAND_REQUIRED_ENV) but is not set"));
    }

    #[test]
    fn a_malformed_reference_fails_the_plan() {
        let err =
            Plan::new(env(&[("X", "secretsmanager:")]), SecretSettings::default()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("X=\"secretsmanager:\" is not valid"),
            "{err}"
        );
        assert_eq!(err.exit_code(), exit::CONFIG);
    }

    #[tokio::test]
    async fn explain_fails_exactly_as_apply_does_and_names_every_variable() {
        let fake = Fake::with(&[("env", r#"{"A":"value-a-1","B":"value-b-2"}"#)]);
        let plan = Plan::new(
            env(&[
                ("A", "plain"),
                ("GONE", "secretsmanager:nope"),
                ("DECKHAND_X", "own"),
            ]),
            SecretSettings {
                env_secrets: vec![parse_secret_id("env").unwrap()],
                required: vec!["ABSENT".into(), "GONE".into()],
                ..Default::default()
            },
        )
        .unwrap();
        let fetched = fetch_all(&Arc::new(fake), plan.keys(), Duration::from_secs(2)).await;
        let explained = plan.explain(&fetched);
        assert_eq!(explained.failure, plan.apply(&fetched).err());
        let rows: Vec<(&str, &Status)> = explained
            .rows
            .iter()
            .map(|r| (r.name.as_str(), &r.status))
            .collect();
        assert_eq!(
            rows,
            [
                ("GONE", &Status::NotFound),
                ("A", &Status::Ok),
                ("A", &Status::ShadowedBy("A set in the environment".into())),
                ("B", &Status::Ok),
                // GONE's own row says why it is missing.
                ("ABSENT", &Status::RequiredMissing),
            ]
        );
        assert!(!format!("{explained:?}").contains("value-"));
    }

    #[tokio::test]
    async fn a_timeout_exits_unavailable() {
        let fake = Fake::default();
        fake.answer(
            "slow",
            vec![Err(FetchError::new(FetchErrorKind::Transient, "HTTP 500"))],
        );
        let plan = Plan::new(
            env(&[("S", "secretsmanager:slow")]),
            SecretSettings::default(),
        )
        .unwrap();
        let fake = Arc::new(fake);
        let fetched = fetch_all(&fake, plan.keys(), Duration::from_millis(300)).await;
        let err = plan.apply(&fetched).unwrap_err();
        assert_eq!(err.exit_code(), exit::UNAVAILABLE);
        assert!(
            err.to_string()
                .contains("S: secret \"slow\" could not be fetched within 300ms"),
            "{err}"
        );
    }
}
