//! The `migrate` command line: its flags (each with an environment variable) and
//! `--help`, the settings each command reads through [`conventions::CommandLine`], the
//! output of `status`, `plan` and `repair`, and the mapping of results to exit codes
//! (`conventions::exit::migrate`).

use std::fmt;
use std::io::Write;
use std::path::PathBuf;

use clap::builder::FalseyValueParser;
use clap::{Args, Parser, Subcommand};
use conventions::exit::migrate as exit;
use conventions::exit::OK;
use conventions::{parse, Checker, Env, Invalid};
use pgconn::PgConfig;

use crate::{default, Error, Parts, Settings, State, Which};

/// `--steps`'s documented default.
const STEPS: &str = "1";
/// `repair --version`'s variable.
const REPAIR_VERSION: &str = "MIGRATE_REPAIR_VERSION";
/// `repair --all-modified`'s variable.
const REPAIR_ALL_MODIFIED: &str = "MIGRATE_REPAIR_ALL_MODIFIED";

/// Versioned SQL migrations for PostgreSQL, applied exactly once even when many tasks
/// start together.
///
/// Connection: DATABASE_URL (postgres://USER:PASSWORD@HOST:5432/DB?sslmode=verify-full&sslrootcert=/path/ca.pem),
/// else PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE PGSSLMODE PGSSLROOTCERT.
///
/// Exit codes: 0 done or nothing to do, 1 a migration failed, 2 usage error, 3 lock not
/// acquired in time, 4 drift (modified or missing migrations), 5 database unreachable,
/// 6 pending (status --exit-code only).
#[derive(Debug, Parser)]
#[command(
    name = "migrate",
    version,
    max_term_width = 100,
    after_help = "Log filter: MIGRATE_LOG (e.g. debug; default info)."
)]
pub struct Cli {
    #[command(flatten)]
    pub log_format: conventions::logging::LogFormatArg,

    #[command(subcommand)]
    pub command: Command,
}

/// The commands and their flags, for the command line and `--help`. The values are read
/// by [`Invocation::read`] from the environment under the command line, not from these
/// fields: clap takes any value of a flag's variable (`FalseyValueParser`), and the one
/// boolean grammar (`conventions::parse::boolean`) judges it.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending migrations, in version order, under the migration lock.
    Up {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        envelope: EnvelopeArgs,
        #[command(flatten)]
        selection: SelectionArgs,
        #[command(flatten)]
        text: TextArgs,
    },
    /// Show every migration: version, name, applied_on, state (applied, pending, modified, missing).
    Status {
        #[command(flatten)]
        common: Common,
        /// Print JSON instead of a table.
        #[arg(long, env = "MIGRATE_STATUS_JSON", value_parser = FalseyValueParser::new())]
        json: bool,
        /// Exit 6 when migrations are pending and 4 on drift, instead of 0.
        #[arg(long, env = "MIGRATE_STATUS_EXIT_CODE", value_parser = FalseyValueParser::new())]
        exit_code: bool,
    },
    /// Show what `up` would apply, with the first lines of each file; applies nothing.
    Plan {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        selection: SelectionArgs,
    },
    /// Revert the newest N applied migrations with their V<N>__<NAME>.down.sql files.
    Down {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        envelope: EnvelopeArgs,
        /// How many applied migrations to revert, newest first.
        #[arg(long, env = "MIGRATE_STEPS", default_value = STEPS)]
        steps: String,
    },
    /// Record the checksum of applied migrations whose files were edited on purpose; runs no SQL.
    ///
    /// For an edit that changes nothing the database needs (a comment, formatting): the
    /// history row takes the file's checksum and name, under the migration lock and in one
    /// transaction. Give exactly one of --version and --all-modified. The old and new
    /// checksums are shown, with the first differing lines between the file and the SQL
    /// text kept when it was applied (none is kept by refinery or an older deckhand: then
    /// review the edit in version control). A migration whose file is missing is not
    /// touched (up --allow-missing carries on without it).
    Repair {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        lock: LockArgs,
        #[command(flatten)]
        text: TextArgs,
        /// The applied migration to repair, by version.
        #[arg(long = "version", id = "repair_version", env = REPAIR_VERSION, value_name = "N")]
        version: Option<String>,
        /// Repair every applied migration whose file changed (those whose file is missing are left as they are).
        #[arg(long, env = REPAIR_ALL_MODIFIED, value_parser = FalseyValueParser::new())]
        all_modified: bool,
    },
}

/// Flags every command takes.
#[derive(Debug, Args)]
pub struct Common {
    /// Folder with the V<N>__<NAME>.sql files (searched recursively).
    #[arg(long, env = "MIGRATIONS_DIR", default_value = default::DIR)]
    pub dir: PathBuf,
    /// Connection retries after the first attempt (exponential backoff with jitter).
    #[arg(long, env = "MIGRATE_CONNECT_RETRIES", default_value = default::CONNECT_RETRIES)]
    pub connect_retries: String,
    /// Keep retrying the connection for up to this long (e.g. 2m), instead of a number of retries.
    #[arg(long, env = "MIGRATE_WAIT")]
    pub wait: Option<String>,
    /// Carry on when an applied migration's file is missing (it is reported as a warning).
    #[arg(long, env = "MIGRATE_ALLOW_MISSING", value_parser = FalseyValueParser::new())]
    pub allow_missing: bool,
}

/// The migration lock, for the commands that take it (`up`, `down`, `repair`).
#[derive(Debug, Args)]
pub struct LockArgs {
    /// How long to wait for another runner holding the migration lock.
    #[arg(long, env = "MIGRATE_LOCK_TIMEOUT", default_value = default::LOCK_TIMEOUT)]
    pub lock_timeout: String,
}

/// The lock and the limits for migration SQL (`up`, `down`).
#[derive(Debug, Args)]
pub struct EnvelopeArgs {
    #[command(flatten)]
    pub lock: LockArgs,
    /// PostgreSQL lock_timeout for migration SQL: how long a statement may queue for a table lock.
    #[arg(long, env = "MIGRATE_DDL_LOCK_TIMEOUT", default_value = default::DDL_LOCK_TIMEOUT)]
    pub ddl_lock_timeout: String,
    /// PostgreSQL statement_timeout for migration SQL; 0s turns it off.
    #[arg(long, env = "MIGRATE_STATEMENT_TIMEOUT", default_value = default::STATEMENT_TIMEOUT)]
    pub statement_timeout: String,
    /// Retries (with backoff) of a migration that failed on lock_timeout (55P03) or a deadlock (40P01).
    #[arg(long, env = "MIGRATE_LOCK_RETRIES", default_value = default::LOCK_RETRIES)]
    pub lock_retries: String,
}

/// Keeping each migration's SQL text (`up`, `repair`).
#[derive(Debug, Args)]
pub struct TextArgs {
    /// Keep each applied migration's SQL in deckhand_migration_text (owner-only), for repair to show an edit; false keeps none.
    #[arg(long, env = "MIGRATE_KEEP_TEXT", default_value = default::KEEP_TEXT, value_name = "BOOL")]
    pub keep_text: String,
}

/// Which pending migrations `up` and `plan` take.
#[derive(Debug, Args)]
pub struct SelectionArgs {
    /// Apply (or plan) up to and including this version only.
    #[arg(long, env = "MIGRATE_TARGET")]
    pub target: Option<String>,
    /// Apply (or plan) a pending migration that is older than the newest applied one.
    #[arg(long, env = "MIGRATE_OUT_OF_ORDER", value_parser = FalseyValueParser::new())]
    pub out_of_order: bool,
}

/// A command with every setting it takes read and checked.
#[derive(Debug)]
pub struct Invocation {
    action: Action,
    settings: Settings,
    /// `None` when no database is configured (refused when the command runs).
    db: Option<PgConfig>,
}

#[derive(Debug)]
enum Action {
    Up,
    Down { steps: u32 },
    Status { json: bool, exit_code: bool },
    Plan,
    Repair { which: Which },
}

impl Invocation {
    /// The settings `command` takes, and the database's, read into `c`; a bad value is
    /// recorded there, and [`Checker::finish`] refuses the result.
    pub fn read<E: Env + ?Sized>(c: &mut Checker<'_, E>, command: &Command) -> Invocation {
        let (action, parts) = match command {
            Command::Up { .. } => (Action::Up, Parts::UP),
            Command::Down { .. } => {
                let steps = c.get("MIGRATE_STEPS", STEPS, |s| {
                    parse::count(s)
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| "must be a whole number from 1 to 4294967295".to_owned())
                });
                let parts = Parts {
                    lock: true,
                    envelope: true,
                    selection: false,
                    text: false,
                };
                (Action::Down { steps }, parts)
            }
            Command::Status { .. } => {
                let json = c.value("MIGRATE_STATUS_JSON", false, parse::boolean);
                let exit_code = c.value("MIGRATE_STATUS_EXIT_CODE", false, parse::boolean);
                let parts = Parts {
                    lock: false,
                    envelope: false,
                    selection: false,
                    text: false,
                };
                (Action::Status { json, exit_code }, parts)
            }
            Command::Plan { .. } => {
                let parts = Parts {
                    lock: false,
                    envelope: false,
                    selection: true,
                    text: false,
                };
                (Action::Plan, parts)
            }
            Command::Repair { .. } => {
                let parts = Parts {
                    lock: true,
                    envelope: false,
                    selection: false,
                    text: true,
                };
                (
                    Action::Repair {
                        which: repair_which(c),
                    },
                    parts,
                )
            }
        };
        let settings = Settings::read(c, parts);
        let name = crate::application_name(c.env());
        let db =
            PgConfig::read(c, "DATABASE_URL").map(|db| db.with_default_application_name(&name));
        Invocation {
            action,
            settings,
            db,
        }
    }
}

/// `MIGRATE_REPAIR_VERSION` or `MIGRATE_REPAIR_ALL_MODIFIED`: exactly one of them is
/// required. When that is not so, the error is recorded in `c` and the value returned is
/// never used ([`Checker::finish`] refuses).
fn repair_which<E: Env + ?Sized>(c: &mut Checker<'_, E>) -> Which {
    const CHOICE: &str = "--version N (MIGRATE_REPAIR_VERSION) to repair one applied \
                          migration, or --all-modified (MIGRATE_REPAIR_ALL_MODIFIED) for every \
                          applied migration whose file changed";
    let version_given = c.raw(REPAIR_VERSION);
    let all_given = c.raw(REPAIR_ALL_MODIFIED);
    let version = c.optional(REPAIR_VERSION, crate::parse_version);
    let all_modified = c.optional(REPAIR_ALL_MODIFIED, parse::boolean);
    if let (Some(given), Some(true)) = (&version_given, all_modified) {
        let reason = format!(
            "{} is set too; give one of them: {CHOICE}",
            c.origin(REPAIR_ALL_MODIFIED)
        );
        c.check::<()>(REPAIR_VERSION, given, Err(reason));
    } else if let Some(version) = version {
        return Which::Version(version);
    } else if all_modified == Some(true) {
        return Which::AllModified;
    } else if version_given.is_none() && (all_given.is_none() || all_modified == Some(false)) {
        c.push(Invalid::missing(
            c.origin(REPAIR_VERSION),
            format!("say which migration to repair: {CHOICE}"),
        ));
    }
    // Otherwise a bad value of either, already recorded.
    Which::AllModified
}

/// Runs the command; returns the exit code.
pub async fn run(invocation: Invocation) -> u8 {
    match execute(invocation).await {
        Ok(code) => code,
        Err(e) => {
            tracing::error!(exit_code = e.exit_code(), "{e}");
            e.exit_code()
        }
    }
}

async fn execute(invocation: Invocation) -> Result<u8, Error> {
    let Invocation {
        action,
        settings,
        db,
    } = invocation;
    let db = db.ok_or_else(|| {
        Error::Config(
            "no database configured: set DATABASE_URL (postgres://USER:PASSWORD@HOST:5432/DB) \
             or PGHOST, PGUSER, PGPASSWORD and PGDATABASE"
                .into(),
        )
    })?;
    for param in &db.ignored_params {
        tracing::warn!(parameter = %param, "a DATABASE_URL parameter is not used by migrate and is ignored: {param}");
    }
    match action {
        Action::Up => {
            let report = crate::up(&db, &settings).await?;
            if !report.applied.is_empty() {
                let total: u64 = report.applied.iter().map(|d| d.millis).sum();
                tracing::info!(
                    applied = report.applied.len(),
                    current = report.current,
                    "applied {} migration(s) in {total} ms; the database is at version {}",
                    report.applied.len(),
                    report.current.map_or("none".into(), |v| v.to_string())
                );
            }
            Ok(OK)
        }
        Action::Down { steps } => {
            let reverted = crate::down(&db, &settings, steps).await?;
            if !reverted.is_empty() {
                tracing::info!(
                    reverted = reverted.len(),
                    "reverted {} migration(s)",
                    reverted.len()
                );
            }
            Ok(OK)
        }
        Action::Status { json, exit_code } => {
            let rows = crate::status(&db, &settings).await?;
            let mut out = std::io::stdout().lock();
            if json {
                let _ = writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&rows).unwrap_or_default()
                );
            } else {
                let _ = write!(out, "{}", Table(&rows));
            }
            let drift = rows
                .iter()
                .any(|r| matches!(r.state, State::Modified | State::Missing));
            let pending = rows.iter().any(|r| r.state == State::Pending);
            Ok(match (exit_code, drift, pending) {
                (true, true, _) => exit::DRIFT,
                (true, false, true) => exit::PENDING,
                _ => OK,
            })
        }
        Action::Plan => {
            let todo = crate::plan(&db, &settings).await?;
            let mut out = std::io::stdout().lock();
            if todo.is_empty() {
                let _ = writeln!(out, "nothing to apply");
            }
            for f in &todo {
                let mode = if f.no_transaction {
                    ", no transaction"
                } else {
                    ""
                };
                let _ = writeln!(out, "{} ({}{mode})", f.label(), f.path.display());
                for line in f.sql.lines().filter(|l| !l.trim().is_empty()).take(5) {
                    let _ = writeln!(out, "    {line}");
                }
            }
            Ok(OK)
        }
        Action::Repair { which } => {
            let report = crate::repair(&db, &settings, which).await?;
            let _ = write!(std::io::stdout().lock(), "{report}");
            Ok(OK)
        }
    }
}

/// The `status` table.
struct Table<'a>(&'a [crate::StatusRow]);

impl fmt::Display for Table<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return writeln!(f, "no migrations found and none applied");
        }
        let name_w = self
            .0
            .iter()
            .map(|r| r.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let on_w = self
            .0
            .iter()
            .filter_map(|r| r.applied_on.as_ref().map(String::len))
            .max()
            .unwrap_or(10)
            .max(10);
        writeln!(
            f,
            "{:>7}  {:<name_w$}  {:<on_w$}  STATE",
            "VERSION", "NAME", "APPLIED ON"
        )?;
        for r in self.0 {
            writeln!(
                f,
                "{:>7}  {:<name_w$}  {:<on_w$}  {}",
                r.version,
                r.name,
                r.applied_on.as_deref().unwrap_or("-"),
                r.state.as_str()
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use clap::CommandFactory;
    use conventions::CommandLine;

    use super::*;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_flag_has_an_env_var() {
        for sub in Cli::command().get_subcommands() {
            for arg in sub.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                assert!(
                    arg.get_env().is_some(),
                    "{} --{id} has no env var",
                    sub.get_name()
                );
            }
        }
    }

    /// The invocation `argv` over the variables `vars`, as the binary reads it.
    fn read(argv: &[&str], vars: &[(&str, &str)]) -> Result<Invocation, Vec<String>> {
        let (cli, env) = CommandLine::try_parse_from::<Cli, _, _>(argv, vars).unwrap();
        let mut c = Checker::new(&env);
        let invocation = Invocation::read(&mut c, &cli.command);
        c.finish(invocation)
            .map_err(|errors| errors.iter().map(ToString::to_string).collect())
    }

    /// What `--help` shows is what an unset variable means.
    #[test]
    fn the_help_defaults_are_the_from_env_defaults() {
        // Built, so the flags' implied defaults (`false`) are listed too.
        let mut command = Cli::command();
        command.build();
        let documented = conventions::env::documented_defaults(&command);
        assert_eq!(
            documented.get("MIGRATE_OUT_OF_ORDER").map(String::as_str),
            Some("false")
        );
        let from_help = Settings::from_env(&documented).unwrap();
        assert_eq!(from_help, Settings::from_env(&BTreeMap::new()).unwrap());
        assert_eq!(from_help, Settings::default());
        assert_eq!(from_help.statement_timeout, Duration::from_secs(600));
        assert_eq!(from_help.connect.retries, 3);
        let down = read(&["migrate", "down"], &[]).unwrap();
        assert!(matches!(down.action, Action::Down { steps: 1 }));
    }

    #[test]
    fn a_bare_flag_is_true_and_its_variable_takes_the_one_boolean_grammar() {
        let up = read(&["migrate", "up", "--out-of-order"], &[]).unwrap();
        assert!(up.settings.out_of_order);
        let up = read(&["migrate", "up"], &[("MIGRATE_OUT_OF_ORDER", "yes")]).unwrap();
        assert!(up.settings.out_of_order);
        let up = read(&["migrate", "up"], &[("MIGRATE_OUT_OF_ORDER", "0")]).unwrap();
        assert!(!up.settings.out_of_order);
        let errors = read(&["migrate", "up"], &[("MIGRATE_OUT_OF_ORDER", "maybe")]).unwrap_err();
        assert_eq!(
            errors,
            [
                r#"MIGRATE_OUT_OF_ORDER="maybe" is not valid: must be true or false (also 1/0, yes/no, on/off)"#
            ]
        );
        let errors = read(&["migrate", "status"], &[("MIGRATE_STATUS_JSON", "maybe")]).unwrap_err();
        assert!(errors[0].starts_with("MIGRATE_STATUS_JSON="), "{errors:?}");
    }

    #[test]
    fn every_bad_value_is_reported_by_the_name_the_user_gave() {
        let errors = read(
            &["migrate", "up", "--lock-timeout", "soon", "--target", "x"],
            &[
                ("MIGRATE_CONNECT_RETRIES", "-1"),
                ("DATABASE_URL", "postgres://u@h:0/d"),
            ],
        )
        .unwrap_err();
        let names: Vec<&str> = errors
            .iter()
            .map(|e| e.split('=').next().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "MIGRATE_CONNECT_RETRIES",
                "--lock-timeout",
                "--target",
                "DATABASE_URL"
            ]
        );
        assert!(errors[1].contains("like 500ms"), "{errors:?}");
    }

    /// A command reads only the settings it takes, as its flags say.
    #[test]
    fn a_command_ignores_the_variables_it_does_not_take() {
        let vars = [("MIGRATE_LOCK_TIMEOUT", "soon"), ("MIGRATE_TARGET", "x")];
        let status = read(&["migrate", "status"], &vars).unwrap();
        assert_eq!(status.settings, Settings::default());
        assert!(status.db.is_none());
        assert!(read(&["migrate", "plan"], &vars).unwrap_err()[0].starts_with("MIGRATE_TARGET="));
        assert!(
            read(&["migrate", "down"], &vars).unwrap_err()[0].starts_with("MIGRATE_LOCK_TIMEOUT=")
        );
    }

    /// `up` and `repair` keep the text unless told not to; the other commands record
    /// none and ignore the setting.
    #[test]
    fn keep_text_is_read_by_up_and_repair_only() {
        let off = [("MIGRATE_KEEP_TEXT", "off")];
        assert!(read(&["migrate", "up"], &[]).unwrap().settings.keep_text);
        assert!(!read(&["migrate", "up"], &off).unwrap().settings.keep_text);
        let flag = read(&["migrate", "up", "--keep-text", "false"], &[]).unwrap();
        assert!(!flag.settings.keep_text);
        let repair = read(&["migrate", "repair", "--all-modified"], &off).unwrap();
        assert!(!repair.settings.keep_text);
        let bad = [("MIGRATE_KEEP_TEXT", "maybe")];
        assert_eq!(
            read(&["migrate", "down"], &bad).unwrap().settings,
            Settings::default()
        );
        assert_eq!(
            read(&["migrate", "up"], &bad).unwrap_err(),
            [
                r#"MIGRATE_KEEP_TEXT="maybe" is not valid: must be true or false (also 1/0, yes/no, on/off)"#
            ]
        );
    }

    #[test]
    fn repair_takes_exactly_one_of_version_and_all_modified() {
        let which = |argv: &[&str], vars: &[(&str, &str)]| match read(argv, vars).map(|i| i.action)
        {
            Ok(Action::Repair { which }) => Ok(which),
            Ok(other) => panic!("{other:?}"),
            Err(errors) => Err(errors),
        };
        assert_eq!(
            which(&["migrate", "repair", "--version", "3"], &[]),
            Ok(Which::Version(3))
        );
        assert_eq!(
            which(&["migrate", "repair", "--all-modified"], &[]),
            Ok(Which::AllModified)
        );
        assert_eq!(
            which(
                &["migrate", "repair"],
                &[("MIGRATE_REPAIR_ALL_MODIFIED", "yes")]
            ),
            Ok(Which::AllModified)
        );
        assert_eq!(
            which(
                &["migrate", "repair"],
                &[
                    ("MIGRATE_REPAIR_VERSION", "2"),
                    ("MIGRATE_REPAIR_ALL_MODIFIED", "off")
                ]
            ),
            Ok(Which::Version(2))
        );
        assert_eq!(
            which(
                &["migrate", "repair", "--version", "3", "--all-modified"],
                &[]
            ),
            Err(vec![
                "--version=\"3\" is not valid: --all-modified is set too; give one of them: \
                 --version N (MIGRATE_REPAIR_VERSION) to repair one applied migration, or \
                 --all-modified (MIGRATE_REPAIR_ALL_MODIFIED) for every applied migration whose \
                 file changed"
                    .to_owned()
            ])
        );
        let both = which(
            &["migrate", "repair", "--all-modified"],
            &[("MIGRATE_REPAIR_VERSION", "3")],
        )
        .unwrap_err();
        assert!(
            both[0].starts_with(
                "MIGRATE_REPAIR_VERSION=\"3\" is not valid: --all-modified is set too;"
            ),
            "{both:?}"
        );
        for neither in [
            which(&["migrate", "repair"], &[]),
            which(
                &["migrate", "repair"],
                &[("MIGRATE_REPAIR_ALL_MODIFIED", "false")],
            ),
        ] {
            let errors = neither.unwrap_err();
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert!(
                errors[0].starts_with(
                    "MIGRATE_REPAIR_VERSION is not set: say which migration to repair: --version N"
                ),
                "{errors:?}"
            );
        }
        assert_eq!(
            which(&["migrate", "repair"], &[("MIGRATE_REPAIR_ALL_MODIFIED", "maybe")]),
            Err(vec![r#"MIGRATE_REPAIR_ALL_MODIFIED="maybe" is not valid: must be true or false (also 1/0, yes/no, on/off)"#.to_owned()])
        );
        assert_eq!(
            which(&["migrate", "repair", "--version", "V3"], &[]),
            Err(vec![r#"--version="V3" is not valid: must be a migration version, a whole number like 3"#.to_owned()])
        );
    }

    /// `repair` takes the lock's timeout, and none of the limits for migration SQL.
    #[test]
    fn repair_reads_the_lock_timeout_only() {
        let vars = [
            ("MIGRATE_LOCK_TIMEOUT", "2s"),
            ("MIGRATE_DDL_LOCK_TIMEOUT", "soon"),
            ("MIGRATE_TARGET", "x"),
        ];
        let repair = read(&["migrate", "repair", "--version", "1"], &vars).unwrap();
        assert_eq!(repair.settings.lock_timeout, Duration::from_secs(2));
        assert_eq!(
            Settings {
                lock_timeout: Settings::default().lock_timeout,
                ..repair.settings
            },
            Settings::default()
        );
        let errors = read(
            &[
                "migrate",
                "repair",
                "--all-modified",
                "--lock-timeout",
                "soon",
            ],
            &[],
        )
        .unwrap_err();
        assert!(
            errors[0].starts_with("--lock-timeout=\"soon\""),
            "{errors:?}"
        );
    }

    #[test]
    fn the_connection_is_named_after_the_task() {
        let up = read(
            &["migrate", "up"],
            &[
                ("DATABASE_URL", "postgres://u@h/d"),
                ("HOSTNAME", "ip-10-0-1-5"),
            ],
        )
        .unwrap();
        assert_eq!(
            up.db.unwrap().application_name.as_deref(),
            Some("deckhand-migrate/ip-10-0-1-5")
        );
    }
}
