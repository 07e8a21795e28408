//! `migrate`: versioned SQL migrations for PostgreSQL, applied exactly once even when
//! many ECS tasks start at the same moment.
//!
//! Built on refinery's conventions (file names `V{n}__{name}.sql`, the
//! `refinery_schema_history` table, its checksums) and extended where refinery has no
//! answer: a polled advisory lock with holder reporting, checked to be held by the
//! connection's own backend (a transaction pool is refused), one transaction per migration,
//! files that run outside a transaction, `lock_timeout`/`statement_timeout` with retry,
//! drift detection, connect retries, a client-side watchdog for a server that stops
//! answering, `down` migrations, and `repair` for an applied file edited on purpose
//! (showing the edit, from the SQL text kept in `deckhand_migration_text`).
//!
//! The library is what the `migrate` binary and the `agent` (`DECKHAND_MIGRATE_ON_START`)
//! call; it prints nothing itself but tracing events.

#![forbid(unsafe_code)]

mod applied_text;
mod apply;
pub mod cli;
mod connect;
pub mod diff;
pub mod entry;
mod error;
pub mod history;
mod lock;
mod repair;
mod session;
pub mod source;
pub mod sql;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use conventions::{parse, Checker, Env, Invalid};
use pgconn::PgConfig;
use serde::Serialize;
use session::Session;

pub use connect::Retry;
pub use error::{Error, Failure, Lost, Pooled};
use history::Applied;
pub use lock::judge_answer;
pub use repair::{repair, Edit, RepairReport, Repaired, Which};
pub use session::GRACE;
use source::MigrationFile;

/// `application_name` prefix; `HOSTNAME` (the task's host name on ECS) is appended.
const APPLICATION_NAME: &str = "deckhand-migrate";
/// PostgreSQL truncates `application_name` to NAMEDATALEN - 1 bytes.
const MAX_APPLICATION_NAME: usize = 63;

/// The documented defaults, as `migrate --help` shows them: the flags' `default_value`s,
/// and what an unset variable means to [`Settings::from_env`] (which parses them like a
/// value).
pub mod default {
    pub const DIR: &str = "./migrations";
    pub const CONNECT_RETRIES: &str = "3";
    pub const LOCK_TIMEOUT: &str = "60s";
    pub const DDL_LOCK_TIMEOUT: &str = "5s";
    pub const STATEMENT_TIMEOUT: &str = "10m";
    pub const LOCK_RETRIES: &str = "3";
    pub const KEEP_TEXT: &str = "true";
}

/// Everything the commands need besides the connection. `Default` is the documented
/// defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Where the `V{n}__{name}.sql` files are.
    pub dir: PathBuf,
    /// Apply up to and including this version only.
    pub target: Option<i32>,
    /// How long to wait for another runner's lock.
    pub lock_timeout: Duration,
    /// `lock_timeout` for migration SQL.
    pub ddl_lock_timeout: Duration,
    /// `statement_timeout` for migration SQL (zero: none). With [`GRACE`], it also
    /// bounds every round trip on the client side (zero: no bound either).
    pub statement_timeout: Duration,
    /// Retries of a migration that hit `lock_timeout` or a deadlock.
    pub lock_retries: u32,
    pub connect: Retry,
    /// Tolerate applied versions whose files are gone.
    pub allow_missing: bool,
    /// Apply a pending migration older than the newest applied one.
    pub out_of_order: bool,
    /// Keep each applied (or repaired) migration's SQL in `deckhand_migration_text`,
    /// so that `repair` can show what an edit changed.
    pub keep_text: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings::read(&mut Checker::new(&no_variables()), Parts::UP)
    }
}

/// Which settings a command takes besides those every command takes (`MIGRATIONS_DIR`,
/// `MIGRATE_CONNECT_RETRIES`, `MIGRATE_WAIT`, `MIGRATE_ALLOW_MISSING`); the others keep
/// their defaults, whatever their variables say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts {
    /// `MIGRATE_LOCK_TIMEOUT` (`up`, `down`, `repair`: the commands that take the
    /// migration lock).
    pub lock: bool,
    /// `MIGRATE_DDL_LOCK_TIMEOUT`, `MIGRATE_STATEMENT_TIMEOUT`, `MIGRATE_LOCK_RETRIES`
    /// (`up`, `down`: the commands that run migration SQL).
    pub envelope: bool,
    /// `MIGRATE_TARGET`, `MIGRATE_OUT_OF_ORDER` (`up`, `plan`).
    pub selection: bool,
    /// `MIGRATE_KEEP_TEXT` (`up`, `repair`: the commands that record a migration's text).
    pub text: bool,
}

impl Parts {
    /// What `up` takes: everything.
    pub const UP: Parts = Parts {
        lock: true,
        envelope: true,
        selection: true,
        text: true,
    };
}

impl Settings {
    /// What `migrate up` reads: `MIGRATIONS_DIR` and the `MIGRATE_*` variables, every bad
    /// value reported. The `migrate` binary hands it its command line over the process
    /// environment; the agent's `DECKHAND_MIGRATE_ON_START` the app's resolved one.
    pub fn from_env(env: &impl Env) -> Result<Settings, Vec<Invalid>> {
        Checker::read(env, |c| Settings::read(c, Parts::UP))
    }

    /// Reads the settings of `parts` into `c`, with a program's own; a bad value is
    /// recorded there, and [`Checker::finish`] refuses the result.
    pub fn read<E: Env + ?Sized>(c: &mut Checker<'_, E>, parts: Parts) -> Settings {
        let dir = c.get("MIGRATIONS_DIR", default::DIR, |s| Ok(PathBuf::from(s)));
        let connect = Retry {
            retries: c.get(
                "MIGRATE_CONNECT_RETRIES",
                default::CONNECT_RETRIES,
                parse::count,
            ),
            wait: c.optional("MIGRATE_WAIT", parse::duration),
        };
        let allow_missing = c.value("MIGRATE_ALLOW_MISSING", false, parse::boolean);
        let none = no_variables();
        let mut unset = Checker::new(&none);
        let lock_timeout = if parts.lock {
            lock_timeout(c)
        } else {
            lock_timeout(&mut unset)
        };
        let limits = if parts.envelope {
            Limits::read(c)
        } else {
            Limits::read(&mut unset)
        };
        let (target, out_of_order) = if parts.selection {
            selection(c)
        } else {
            selection(&mut unset)
        };
        let keep_text = if parts.text {
            keep_text(c)
        } else {
            keep_text(&mut unset)
        };
        Settings {
            dir,
            target,
            lock_timeout,
            ddl_lock_timeout: limits.ddl_lock_timeout,
            statement_timeout: limits.statement_timeout,
            lock_retries: limits.lock_retries,
            connect,
            allow_missing,
            out_of_order,
            keep_text,
        }
    }

    /// Connects (with the retries) and wraps the connection in the watchdog.
    async fn session(&self, db: &PgConfig) -> Result<Session, Error> {
        let client = connect::connect(db, self.connect).await?;
        Ok(Session::new(
            client,
            self.statement_timeout,
            db.application_name.as_deref(),
        ))
    }

    /// The migration files and a session, the files read while the connection is made
    /// ([`source::load_aside`]). What is wrong with the files is said first, as soon as
    /// it is known, as when they were read before connecting: the connection attempt
    /// is then dropped, whatever it was waiting on.
    async fn files_and_session(
        &self,
        db: &PgConfig,
    ) -> Result<(Vec<MigrationFile>, Session), Error> {
        let loading = source::load_aside(&self.dir);
        let connecting = self.session(db);
        tokio::pin!(loading, connecting);
        let mut connected = None;
        let files = loop {
            tokio::select! {
                biased;
                files = &mut loading => break files?,
                session = &mut connecting, if connected.is_none() => connected = Some(session),
            }
        };
        let session = match connected {
            Some(session) => session?,
            None => connecting.await?,
        };
        Ok((files, session))
    }

    fn envelope(&self) -> apply::Envelope {
        apply::Envelope {
            ddl_lock_timeout: self.ddl_lock_timeout,
            statement_timeout: self.statement_timeout,
            lock_retries: self.lock_retries,
        }
    }
}

/// What `up` did.
#[derive(Debug, Clone, Serialize)]
pub struct UpReport {
    /// Migrations applied by this run, in order, with their duration.
    pub applied: Vec<Done>,
    /// The newest applied version afterwards.
    pub current: Option<i32>,
}

/// One migration applied or reverted.
#[derive(Debug, Clone, Serialize)]
pub struct Done {
    pub label: String,
    pub millis: u64,
}

/// A migration's state, as `status` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Applied,
    Pending,
    /// Applied, but the file changed since.
    Modified,
    /// Applied, but the file is gone.
    Missing,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Applied => "applied",
            State::Pending => "pending",
            State::Modified => "modified",
            State::Missing => "missing",
        }
    }
}

/// One row of `status`.
#[derive(Debug, Clone, Serialize)]
pub struct StatusRow {
    pub version: i32,
    pub name: String,
    pub applied_on: Option<String>,
    pub state: State,
}

/// Applies pending migrations under the lock. Refuses on drift before touching
/// anything. A database that already has every migration is answered from one read of
/// the history, without the lock ([`up_to_date`]); so is a runner that waits for the
/// lock while another applies what it would have applied.
pub async fn up(db: &PgConfig, settings: &Settings) -> Result<UpReport, Error> {
    let (files, client) = settings.files_and_session(db).await?;
    if let Some(report) = up_to_date(&client, &files, settings).await? {
        return Ok(report);
    }
    let needless = || up_to_date(&client, &files, settings);
    let lock = match lock::take_unless(&client, db, settings.lock_timeout, needless).await? {
        lock::Turn::Held(lock) => lock,
        lock::Turn::Needless(report) => return Ok(report),
    };
    let result = async {
        history::ensure(&client).await?;
        let keeping = applied_text::prepare(&client, settings.keep_text).await?;
        let applied = history::read(&client).await?;
        let pending = pending(&files, &applied, settings)?;
        if pending.is_empty() {
            tracing::info!(
                current = applied.last().map(|a| a.version),
                "nothing to apply: {}",
                at_version(&applied)
            );
        }
        let mut done: Vec<Done> = Vec::new();
        for file in pending {
            let label = file.label();
            let applied_before = || done.iter().map(|d| d.label.clone()).collect();
            let step = apply::Step {
                label: &label,
                path: &file.path,
                sql: &file.sql,
                no_transaction: file.no_transaction,
                record: apply::Record::Applied {
                    version: file.version,
                    name: &file.name,
                    checksum: file.checksum,
                },
                keeping,
            };
            let when = format!("before applying {label}");
            let took = apply::run(&client, &step, &settings.envelope(), &lock, &when)
                .await
                .map_err(|e| e.after(applied_before()))?;
            let millis = took.as_millis() as u64;
            tracing::info!(
                migration = %label,
                version = file.version,
                duration_ms = millis,
                no_transaction = file.no_transaction,
                "applying {label} ... ok ({millis} ms)"
            );
            done.push(Done { label, millis });
        }
        let current = if done.is_empty() {
            applied.last().map(|a| a.version)
        } else {
            history::read(&client).await?.last().map(|a| a.version)
        };
        Ok(UpReport {
            applied: done,
            current,
        })
    }
    .await;
    lock.release(&client).await;
    result
}

/// `up`'s report when the history already holds every migration `up` would apply,
/// read without the lock as `plan` reads it (one snapshot: a migration another runner
/// is applying is not in it yet, so it reads as pending). `None` when there is anything
/// to apply, to refuse or to warn about (a file missing, with `--allow-missing`), no
/// history yet, or no table for the kept texts that `--keep-text` would create: the run
/// then takes the lock and does it all there, as before.
///
/// Tasks that start together with nothing to apply so do not queue for the lock, and
/// none opens the lock check's second connection. Behind a transaction pool such a run
/// succeeds: the pool is refused by the first run that has something to apply, before
/// it applies anything.
async fn up_to_date(
    client: &Session,
    files: &[MigrationFile],
    settings: &Settings,
) -> Result<Option<UpReport>, Error> {
    // The texts' table is looked for in the same round trip as the history table
    // (tokio-postgres pipelines queries made together on one connection).
    let texts_table = async {
        match settings.keep_text {
            true => applied_text::exists(client).await,
            false => Ok(true),
        }
    };
    let (applied, texts_table) = tokio::try_join!(history::read(client), texts_table)?;
    let on_disk = by_version(files);
    let every_file_there = applied
        .iter()
        .all(|a| on_disk.get(&a.version).is_some_and(|f| !modified(f, a)));
    if applied.is_empty()
        || !every_file_there
        || !pending(files, &applied, settings).is_ok_and(|p| p.is_empty())
        || !texts_table
    {
        return Ok(None);
    }
    tracing::info!(
        current = applied.last().map(|a| a.version),
        "nothing to apply: {}",
        at_version(&applied)
    );
    Ok(Some(UpReport {
        applied: Vec::new(),
        current: applied.last().map(|a| a.version),
    }))
}

/// Reverts the newest `steps` applied migrations with their `.down.sql` files, newest
/// first. Refuses before touching anything if a down file is missing.
pub async fn down(db: &PgConfig, settings: &Settings, steps: u32) -> Result<Vec<Done>, Error> {
    let (files, client) = settings.files_and_session(db).await?;
    let on_disk = by_version(&files);
    let lock = lock::take(&client, db, settings.lock_timeout).await?;
    let result = async {
        let applied = history::read(&client).await?;
        let targets: Vec<&Applied> = applied.iter().rev().take(steps as usize).collect();
        if targets.is_empty() {
            tracing::info!("nothing to revert: no migration is applied");
            return Ok(Vec::new());
        }
        let mut plan = Vec::new();
        let mut lacking = Vec::new();
        for a in &targets {
            match on_disk.get(&a.version).and_then(|f| f.down.as_ref().map(|d| (f, d))) {
                Some((file, down)) => plan.push((*a, *file, down.clone())),
                None => lacking.push(format!("{}.down.sql", source::label(a.version, &a.name))),
            }
        }
        if !lacking.is_empty() {
            return Err(Error::Config(format!(
                "cannot revert {} migration(s): no down file for {} in {}; nothing was reverted",
                targets.len(),
                lacking.join(", "),
                settings.dir.display()
            )));
        }
        // A reverted migration's kept text goes with its history row (down records
        // none, so it creates no table).
        let keeping = applied_text::prepare(&client, false).await?;
        let mut done: Vec<Done> = Vec::new();
        for (applied, file, down_path) in plan {
            let sql = source::read_text(&down_path, &mut Vec::new()).map_err(|e| {
                Error::Config(format!("cannot read {}: {e}", down_path.display()))
            })?;
            let label = source::label(applied.version, &applied.name);
            let step = apply::Step {
                label: &label,
                path: &down_path,
                no_transaction: sql.lines().next().map(str::trim) == Some(source::NO_TRANSACTION_MARKER),
                sql: &sql,
                record: apply::Record::Reverted {
                    version: file.version,
                },
                keeping,
            };
            let when = format!("before reverting {label}");
            let took = apply::run(&client, &step, &settings.envelope(), &lock, &when)
                .await
                .map_err(|e| {
                    let mut e = e.after(done.iter().map(|d| d.label.clone()).collect());
                    if let Error::MigrationFailed(f) = &mut e {
                        f.outcome = f.outcome.replace("applied", "reverted");
                    }
                    e
                })?;
            let millis = took.as_millis() as u64;
            tracing::info!(migration = %label, version = applied.version, duration_ms = millis, "reverting {label} ... ok ({millis} ms)");
            done.push(Done { label, millis });
        }
        Ok(done)
    }
    .await;
    lock.release(&client).await;
    result
}

/// Every migration on disk or in the history table, by version.
pub async fn status(db: &PgConfig, settings: &Settings) -> Result<Vec<StatusRow>, Error> {
    let (files, client) = settings.files_and_session(db).await?;
    let applied = history::read(&client).await?;
    Ok(reconcile(&files, &applied))
}

/// What `up` would apply, without applying anything (drift is refused as in `up`).
pub async fn plan(db: &PgConfig, settings: &Settings) -> Result<Vec<MigrationFile>, Error> {
    let (files, client) = settings.files_and_session(db).await?;
    let applied = history::read(&client).await?;
    Ok(pending(&files, &applied, settings)?
        .into_iter()
        .cloned()
        .collect())
}

/// Lines up files and history rows.
pub fn reconcile(files: &[MigrationFile], applied: &[Applied]) -> Vec<StatusRow> {
    let mut rows: BTreeMap<i32, StatusRow> = BTreeMap::new();
    for f in files {
        rows.insert(
            f.version,
            StatusRow {
                version: f.version,
                name: f.name.clone(),
                applied_on: None,
                state: State::Pending,
            },
        );
    }
    let on_disk = by_version(files);
    for a in applied {
        let state = match on_disk.get(&a.version) {
            None => State::Missing,
            Some(f) if modified(f, a) => State::Modified,
            Some(_) => State::Applied,
        };
        rows.insert(
            a.version,
            StatusRow {
                version: a.version,
                name: a.name.clone(),
                applied_on: Some(a.applied_on.clone()),
                state,
            },
        );
    }
    rows.into_values().collect()
}

/// The files `up` applies next, or the drift that stops it.
pub fn pending<'f>(
    files: &'f [MigrationFile],
    applied: &[Applied],
    settings: &Settings,
) -> Result<Vec<&'f MigrationFile>, Error> {
    let dir = settings.dir.display();
    let on_disk = by_version(files);
    let mut problems = Vec::new();
    for a in applied {
        match on_disk.get(&a.version).copied() {
            None if !settings.allow_missing => problems.push(format!(
                "{} is applied but its file is missing from {dir} (restore it, or pass --allow-missing)",
                source::label(a.version, &a.name)
            )),
            None => tracing::warn!(
                version = a.version,
                "{} is applied but its file is missing from {dir}; continuing (--allow-missing)",
                source::label(a.version, &a.name)
            ),
            Some(f) if modified(f, a) => problems.push(format!(
                "{} changed after it was applied as {} ({}: checksum {} in the database, {} on disk); \
                 restore the file and put the change in a new migration, or, when the edit changes \
                 nothing the database needs (a comment, formatting), record it with \
                 migrate repair --version {}",
                f.label(),
                source::label(a.version, &a.name),
                f.path.display(),
                a.checksum.map_or("unreadable".into(), |c| c.to_string()),
                f.checksum,
                f.version
            )),
            Some(_) => {}
        }
    }
    let newest = applied.last().map(|a| a.version);
    let done: BTreeSet<i32> = applied.iter().map(|a| a.version).collect();
    let mut todo = Vec::new();
    for f in files {
        if done.contains(&f.version) {
            continue;
        }
        if settings.target.is_some_and(|t| f.version > t) {
            continue;
        }
        if let Some(newest) = newest.filter(|n| f.version < *n) {
            if !settings.out_of_order {
                problems.push(format!(
                    "{} ({}) was never applied but is older than the newest applied version {newest}; \
                     give it a version above {newest}, or pass --out-of-order",
                    f.label(),
                    f.path.display()
                ));
                continue;
            }
        }
        todo.push(f);
    }
    if problems.is_empty() {
        Ok(todo)
    } else {
        Err(Error::Drift(format!(
            "refusing to migrate, the history does not match {dir}: {}",
            problems.join("; ")
        )))
    }
}

/// The files by version (versions are unique: [`source::load`] refuses two files with
/// one), so that lining them up with the history is linear in their number.
fn by_version(files: &[MigrationFile]) -> BTreeMap<i32, &MigrationFile> {
    files.iter().map(|f| (f.version, f)).collect()
}

/// True when an applied migration's file is not what was applied: another name, or
/// another checksum (refinery's covers the name, the version and the SQL). The one
/// definition of drift that `status`, `up` and `repair` share.
fn modified(file: &MigrationFile, applied: &Applied) -> bool {
    file.name != applied.name || Some(file.checksum) != applied.checksum
}

/// The grammar of a migration version in a setting (`MIGRATE_TARGET`,
/// `MIGRATE_REPAIR_VERSION`).
pub fn parse_version(s: &str) -> Result<i32, String> {
    s.parse::<i32>()
        .map_err(|_| "must be a migration version, a whole number like 3".to_owned())
}

/// Where the documented defaults are read from.
fn no_variables() -> BTreeMap<String, String> {
    BTreeMap::new()
}

/// `MIGRATE_LOCK_TIMEOUT`: how long the commands that take the migration lock wait for it.
fn lock_timeout<E: Env + ?Sized>(c: &mut Checker<'_, E>) -> Duration {
    c.get(
        "MIGRATE_LOCK_TIMEOUT",
        default::LOCK_TIMEOUT,
        parse::duration,
    )
}

/// The limits for migration SQL in `up` and `down`, as read (`apply::Envelope` is what a
/// step gets).
struct Limits {
    ddl_lock_timeout: Duration,
    statement_timeout: Duration,
    lock_retries: u32,
}

impl Limits {
    fn read<E: Env + ?Sized>(c: &mut Checker<'_, E>) -> Self {
        Limits {
            ddl_lock_timeout: c.get(
                "MIGRATE_DDL_LOCK_TIMEOUT",
                default::DDL_LOCK_TIMEOUT,
                pg_timeout,
            ),
            statement_timeout: c.get(
                "MIGRATE_STATEMENT_TIMEOUT",
                default::STATEMENT_TIMEOUT,
                pg_timeout,
            ),
            lock_retries: c.get("MIGRATE_LOCK_RETRIES", default::LOCK_RETRIES, parse::count),
        }
    }
}

/// The longest `lock_timeout` or `statement_timeout` PostgreSQL takes: a whole number of
/// milliseconds that fits a 32-bit integer.
const PG_MAX_TIMEOUT: Duration = Duration::from_millis(i32::MAX as u64);

/// A duration PostgreSQL takes as a timeout (`SET lock_timeout`, `statement_timeout`):
/// a longer one failed at the first migration, blamed on its SQL.
fn pg_timeout(s: &str) -> Result<Duration, String> {
    match parse::duration(s)? {
        d if d > PG_MAX_TIMEOUT => Err(format!(
            "PostgreSQL's timeouts are at most {} ({}ms); write 0 for none",
            humantime::format_duration(PG_MAX_TIMEOUT),
            PG_MAX_TIMEOUT.as_millis()
        )),
        d => Ok(d),
    }
}

/// `MIGRATE_KEEP_TEXT`: whether `up` and `repair` keep each migration's SQL text.
fn keep_text<E: Env + ?Sized>(c: &mut Checker<'_, E>) -> bool {
    c.get("MIGRATE_KEEP_TEXT", default::KEEP_TEXT, parse::boolean)
}

/// `MIGRATE_TARGET` and `MIGRATE_OUT_OF_ORDER`: which pending migrations to apply.
fn selection<E: Env + ?Sized>(c: &mut Checker<'_, E>) -> (Option<i32>, bool) {
    let target = c.optional("MIGRATE_TARGET", parse_version);
    (
        target,
        c.value("MIGRATE_OUT_OF_ORDER", false, parse::boolean),
    )
}

/// `application_name` of migrate's connection: `deckhand-migrate/HOSTNAME` (the task's
/// host name on ECS, so `pg_stat_activity` and the lock holder's report name the task),
/// cut to what PostgreSQL keeps.
pub fn application_name(env: &(impl Env + ?Sized)) -> String {
    let mut name = match env.var("HOSTNAME") {
        Some(host) => format!("{APPLICATION_NAME}/{host}"),
        None => APPLICATION_NAME.to_owned(),
    };
    if name.len() > MAX_APPLICATION_NAME {
        let mut cut = MAX_APPLICATION_NAME;
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        name.truncate(cut);
    }
    name
}

fn at_version(applied: &[Applied]) -> String {
    match applied.last() {
        Some(a) => format!("the database is at {}", source::label(a.version, &a.name)),
        None => "no migration files to apply and none applied".into(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use conventions::exit::migrate as exit;

    use super::*;

    /// A migration file of `version` with `checksum`, for tests of this crate.
    pub(crate) fn file(version: i32, name: &str, checksum: u64) -> MigrationFile {
        MigrationFile {
            version,
            name: name.into(),
            path: PathBuf::from(format!("m/V{version}__{name}.sql")),
            sql: String::new(),
            checksum,
            no_transaction: false,
            down: None,
        }
    }

    fn applied(version: i32, name: &str, checksum: u64) -> Applied {
        Applied {
            version,
            name: name.into(),
            applied_on: "2026-11-23T10:00:00.000000Z".into(),
            checksum: Some(checksum),
        }
    }

    /// The agent's way in: the app's environment, every bad value reported.
    #[test]
    fn up_settings_from_an_environment() {
        let settings = Settings::from_env(&[
            ("MIGRATIONS_DIR", "/app/db"),
            ("MIGRATE_TARGET", "7"),
            ("MIGRATE_OUT_OF_ORDER", "on"),
            ("MIGRATE_WAIT", "2m"),
        ])
        .unwrap();
        assert_eq!(settings.dir, PathBuf::from("/app/db"));
        assert_eq!(settings.target, Some(7));
        assert!(settings.out_of_order);
        assert_eq!(settings.connect.wait, Some(Duration::from_secs(120)));
        let errors = Settings::from_env(&[
            ("MIGRATE_OUT_OF_ORDER", "maybe"),
            ("MIGRATE_LOCK_TIMEOUT", "soon"),
        ])
        .unwrap_err();
        let names: Vec<&str> = errors.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["MIGRATE_LOCK_TIMEOUT", "MIGRATE_OUT_OF_ORDER"]);
    }

    /// PostgreSQL takes `lock_timeout` and `statement_timeout` in 32-bit milliseconds: a
    /// longer one failed at the first migration, named as that migration's failure.
    #[test]
    fn timeouts_postgres_cannot_take_are_refused_as_settings() {
        let at_most = Settings::from_env(&[
            ("MIGRATE_STATEMENT_TIMEOUT", "2147483647ms"),
            ("MIGRATE_DDL_LOCK_TIMEOUT", "0"),
        ])
        .unwrap();
        assert_eq!(at_most.statement_timeout, PG_MAX_TIMEOUT);
        assert_eq!(at_most.ddl_lock_timeout, Duration::ZERO);
        let errors = Settings::from_env(&[
            ("MIGRATE_STATEMENT_TIMEOUT", "2147483648ms"),
            ("MIGRATE_DDL_LOCK_TIMEOUT", "30d"),
            // Not PostgreSQL's: only the limit every duration has.
            ("MIGRATE_LOCK_TIMEOUT", "30d"),
            ("MIGRATE_WAIT", "18446744073709551615s"),
        ])
        .unwrap_err();
        let said: Vec<(&str, String)> = errors
            .iter()
            .map(|e| (e.name.as_str(), e.to_string()))
            .collect();
        let names: Vec<&str> = said.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "MIGRATE_WAIT",
                "MIGRATE_DDL_LOCK_TIMEOUT",
                "MIGRATE_STATEMENT_TIMEOUT"
            ]
        );
        assert!(said[0].1.contains("at most 365 days"), "{}", said[0].1);
        for (name, text) in &said[1..] {
            assert!(
                text.contains("PostgreSQL's timeouts are at most 24days 20h 31m 23s 647ms"),
                "{name}: {text}"
            );
        }
    }

    #[test]
    fn the_application_name_fits_postgres() {
        assert_eq!(application_name(&no_variables()), "deckhand-migrate");
        let long = "é".repeat(40);
        let name = application_name(&[("HOSTNAME", long.as_str())]);
        assert!(
            name.len() <= 63 && name.starts_with("deckhand-migrate/é"),
            "{name}"
        );
    }

    #[test]
    fn reconcile_names_every_state() {
        let files = [file(1, "a", 1), file(2, "b", 22), file(4, "d", 4)];
        let hist = [applied(1, "a", 1), applied(2, "b", 2), applied(3, "c", 3)];
        let states: Vec<_> = reconcile(&files, &hist)
            .iter()
            .map(|r| (r.version, r.state))
            .collect();
        assert_eq!(
            states,
            [
                (1, State::Applied),
                (2, State::Modified),
                (3, State::Missing),
                (4, State::Pending)
            ]
        );
    }

    #[test]
    fn pending_respects_target() {
        let files = [file(1, "a", 1), file(2, "b", 2), file(10, "j", 10)];
        let settings = Settings {
            target: Some(2),
            ..Settings::default()
        };
        let todo = pending(&files, &[applied(1, "a", 1)], &settings).unwrap();
        assert_eq!(todo.iter().map(|f| f.version).collect::<Vec<_>>(), [2]);
    }

    #[test]
    fn drift_is_refused_with_the_file_named() {
        let files = [file(1, "a", 99)];
        let e = pending(&files, &[applied(1, "a", 1)], &Settings::default()).unwrap_err();
        assert_eq!(e.exit_code(), exit::DRIFT);
        assert!(e.to_string().contains("m/V1__a.sql"), "{e}");
    }

    #[test]
    fn missing_file_refused_unless_allowed() {
        let hist = [applied(1, "a", 1)];
        let e = pending(&[], &hist, &Settings::default()).unwrap_err();
        assert!(e.to_string().contains("--allow-missing"), "{e}");
        let allow = Settings {
            allow_missing: true,
            ..Settings::default()
        };
        assert!(pending(&[], &hist, &allow).unwrap().is_empty());
    }

    #[test]
    fn out_of_order_refused_unless_allowed() {
        let files = [file(1, "a", 1), file(2, "b", 2), file(3, "c", 3)];
        let hist = [applied(1, "a", 1), applied(3, "c", 3)];
        assert!(pending(&files, &hist, &Settings::default()).is_err());
        let allow = Settings {
            out_of_order: true,
            ..Settings::default()
        };
        assert_eq!(pending(&files, &hist, &allow).unwrap()[0].version, 2);
    }
}
