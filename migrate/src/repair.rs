//! `migrate repair`: records the current checksum (and name) of an applied migration
//! whose file was edited on purpose — a comment, a formatting fix — so that `up` stops
//! reporting it as drift. Flyway's `repair`, for refinery's history table.
//!
//! It rewrites history rows and nothing else: no migration SQL runs, `applied_on` stays
//! as it was, pending files stay pending, and a row whose file is missing is left alone
//! (there is no file to take a checksum from; `--allow-missing` is how `up` carries on
//! without it). It takes the migration lock, as `up` does, so it never rewrites a row a
//! runner is reading, and it writes all its rows in one transaction.
//!
//! It shows the edit: the history keeps only a checksum, but `up` keeps the SQL text
//! it applied in `deckhand_migration_text` ([`crate::applied_text`]), so `repair`
//! prints the first differing lines between that text and the file ([`crate::diff`]),
//! then records the file's text along with its checksum, in the same transaction. A
//! migration applied without keeping its text (by refinery, by an older deckhand, with
//! `MIGRATE_KEEP_TEXT` off) gets one line saying so, and the edit is for version
//! control to show; so is one whose kept text is not what the history's checksum
//! says was applied. It is not a review tool: whether the edit changes nothing the
//! database needs is for the operator to judge.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pgconn::PgConfig;

use crate::applied_text::{self, Keeping};
use crate::diff::{self, Diff};
use crate::history::{self, Applied, TABLE};
use crate::session::{DbError, Session};
use crate::source::{self, MigrationFile};
use crate::{lock, modified, Error, Settings};

/// How long the repair's `UPDATE` may queue for a history row another session holds (a
/// tool that does not take deckhand's lock, a hand-run `UPDATE`) before it fails with
/// PostgreSQL's precise error instead of running into the watchdog; the default of
/// `--ddl-lock-timeout`.
const ROW_LOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// How many applied versions on each side of a version that is not applied the refusal
/// lists.
const NEARBY: usize = 3;

/// Which applied migrations to repair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// `--version N`: this one, refused when it is not applied or its file is missing.
    Version(i32),
    /// `--all-modified`: every applied migration whose file changed; one whose file is
    /// missing is left as it is.
    AllModified,
}

/// A history row that `repair` rewrites: what it held, and what the file says now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repaired {
    pub version: i32,
    /// The name the history held.
    pub old_name: String,
    /// The file's name, recorded by the repair.
    pub name: String,
    /// The checksum the history held; `None` when it was not a number (another tool).
    pub old_checksum: Option<u64>,
    /// The file's checksum (refinery's), recorded by the repair.
    pub checksum: u64,
    /// The file, for the operator to review the edit in version control.
    pub path: PathBuf,
    /// What the repair can show of the edit.
    pub edit: Edit,
}

/// What `repair` can show of an edit, from the SQL text kept when the migration was
/// applied (or last repaired).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    /// The first lines where the kept text and the file differ.
    Diff(Diff),
    /// The kept text is the file's: only the name changed.
    SameText,
    /// No text was kept: applied by refinery, by a deckhand that kept none, or with
    /// `MIGRATE_KEEP_TEXT` off.
    NotKept,
    /// A text is kept, but its checksum is not the history's: it is not what was
    /// applied (changed outside deckhand), so it is not compared.
    Stale,
}

impl Repaired {
    /// `V3__add_index`, by the file's (new) name.
    pub fn label(&self) -> String {
        source::label(self.version, &self.name)
    }
}

/// `V3__add_index: checksum 123 → 456 (name unchanged)`, or with `(name add_idx →
/// add_index)` when the file was renamed.
impl fmt::Display for Repaired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: checksum ", self.label())?;
        match self.old_checksum {
            Some(old) => write!(f, "{old}")?,
            None => f.write_str("unreadable")?,
        }
        write!(f, " → {} (", self.checksum)?;
        if self.old_name == self.name {
            f.write_str("name unchanged)")
        } else {
            write!(f, "name {} → {})", self.old_name, self.name)
        }
    }
}

/// What `repair` did (before it runs: what it is going to do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairReport {
    /// The rows rewritten, by version.
    pub repaired: Vec<Repaired>,
    /// `--version N` of a migration whose file matches its row: its label; nothing done.
    pub unchanged: Option<String>,
    /// `--all-modified`: applied migrations whose file is missing, left as they are.
    pub missing: Vec<String>,
}

/// What `repair` prints on stdout: a line per repaired migration followed by its edit,
/// indented, or why there was nothing to do.
impl fmt::Display for RepairReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in &self.repaired {
            writeln!(f, "{r}")?;
            let review = || {
                format!(
                    "review the edit in version control (git log -p -- {})",
                    r.path.display()
                )
            };
            match &r.edit {
                Edit::Diff(diff) => {
                    for row in &diff.rows {
                        writeln!(f, "    {row}")?;
                    }
                }
                Edit::SameText => {
                    writeln!(f, "    the SQL text is unchanged; only the name changed")?
                }
                Edit::NotKept => writeln!(
                    f,
                    "    no SQL text was kept when it was applied (by refinery, by an older \
                     deckhand, or with MIGRATE_KEEP_TEXT off), so the edit cannot be shown: \
                     {}",
                    review()
                )?,
                Edit::Stale => writeln!(
                    f,
                    "    the SQL text kept in {} is not what {TABLE} says was applied (its \
                     checksum differs; it was changed outside deckhand), so the edit is not \
                     shown: {}",
                    applied_text::TABLE,
                    review()
                )?,
            }
        }
        if self.repaired.is_empty() {
            match &self.unchanged {
                Some(label) => writeln!(
                    f,
                    "{label} is not modified: its file matches the history; nothing to repair"
                )?,
                None => writeln!(f, "nothing to repair: no applied migration's file changed")?,
            }
        }
        Ok(())
    }
}

/// Records the current checksum, name and SQL text of the applied migrations `which`
/// names, under the migration lock and in one transaction; runs none of their SQL.
pub async fn repair(
    db: &PgConfig,
    settings: &Settings,
    which: Which,
) -> Result<RepairReport, Error> {
    let (files, client) = settings.files_and_session(db).await?;
    let lock = lock::take(&client, db, settings.lock_timeout).await?;
    let result = async {
        let applied = history::read(&client).await?;
        let mut report = plan(&files, &applied, which, &settings.dir)?;
        let dir = settings.dir.display();
        for label in &report.missing {
            if settings.allow_missing {
                tracing::info!(
                    migration = %label,
                    "{label} is applied but its file is missing from {dir}; repair leaves it \
                     as it is (--allow-missing)"
                );
            } else {
                tracing::warn!(
                    migration = %label,
                    "{label} is applied but its file is missing from {dir}; repair leaves it \
                     as it is, having no file to take a checksum from: restore the file and run \
                     repair again, or run up with --allow-missing (MIGRATE_ALLOW_MISSING) to \
                     carry on without it"
                );
            }
        }
        if !report.repaired.is_empty() {
            let exists = applied_text::exists(&client).await?;
            let versions: Vec<i32> = report.repaired.iter().map(|r| r.version).collect();
            let kept = if exists {
                applied_text::read(&client, &versions).await?
            } else {
                BTreeMap::new()
            };
            let rows: Vec<(&Repaired, &str)> = report
                .repaired
                .iter_mut()
                // `plan` takes every row it repairs from a file, so each finds its own.
                .filter_map(|r| {
                    let file = files.iter().find(|f| f.version == r.version)?;
                    r.edit = edit(r, kept.get(&r.version).map(Vec::as_slice), &file.sql);
                    Some((&*r, file.sql.as_str()))
                })
                .collect();
            let keeping = applied_text::keeping(settings.keep_text, exists);
            let create = applied_text::create_in_transaction(keeping, exists);
            lock.check(&client, "before repairing the history").await?;
            record(&client, &rows, keeping, create).await?;
        }
        for r in &report.repaired {
            let label = r.label();
            tracing::info!(
                migration = %label,
                version = r.version,
                old_checksum = r.old_checksum,
                checksum = r.checksum,
                "repaired {label}"
            );
        }
        Ok(report)
    }
    .await;
    lock.release(&client).await;
    result
}

/// The rows to rewrite, from the files and the history; refuses a `--version` that is
/// not applied, or whose file is missing.
fn plan(
    files: &[MigrationFile],
    applied: &[Applied],
    which: Which,
    dir: &Path,
) -> Result<RepairReport, Error> {
    let mut report = RepairReport::default();
    match which {
        Which::Version(version) => {
            let Some(a) = applied.iter().find(|a| a.version == version) else {
                return Err(Error::Config(not_applied(version, files, applied, dir)));
            };
            let Some(f) = files.iter().find(|f| f.version == version) else {
                return Err(Error::Config(format!(
                    "{} is applied but its file is missing from {}, so there is no checksum \
                     to record: restore the file (as edited) and run repair again; to carry on \
                     without it, run up with --allow-missing (MIGRATE_ALLOW_MISSING)",
                    source::label(a.version, &a.name),
                    dir.display()
                )));
            };
            if modified(f, a) {
                report.repaired.push(repaired(f, a));
            } else {
                report.unchanged = Some(f.label());
            }
        }
        Which::AllModified => {
            for a in applied {
                match files.iter().find(|f| f.version == a.version) {
                    None => report.missing.push(source::label(a.version, &a.name)),
                    Some(f) if modified(f, a) => report.repaired.push(repaired(f, a)),
                    Some(_) => {}
                }
            }
        }
    }
    Ok(report)
}

fn repaired(file: &MigrationFile, applied: &Applied) -> Repaired {
    Repaired {
        version: file.version,
        old_name: applied.name.clone(),
        name: file.name.clone(),
        old_checksum: applied.checksum,
        checksum: file.checksum,
        path: file.path.clone(),
        // Until the kept text is read.
        edit: Edit::NotKept,
    }
}

/// What can be shown of the edit of `r`, whose kept text is `kept` and whose file now
/// holds `sql`. The kept text is compared only when refinery's checksum of it, under
/// the history's name, is the history's checksum: then it is what was applied.
fn edit(r: &Repaired, kept: Option<&[u8]>, sql: &str) -> Edit {
    let Some(kept) = kept else {
        return Edit::NotKept;
    };
    let applied = std::str::from_utf8(kept)
        .ok()
        .and_then(|text| source::checksum(r.version, &r.old_name, text).ok());
    if applied.is_none() || applied != r.old_checksum {
        return Edit::Stale;
    }
    match diff::first_difference(kept, sql.as_bytes()) {
        Some(diff) => Edit::Diff(diff),
        None => Edit::SameText,
    }
}

/// The refusal of a version that is not applied: what it is instead, and the applied
/// versions around it (a typo is the likely cause).
fn not_applied(version: i32, files: &[MigrationFile], applied: &[Applied], dir: &Path) -> String {
    let mut text = format!(
        "version {version} is not applied, so there is no history row to repair (repair \
         records the checksum of an applied migration whose file was edited)"
    );
    match files.iter().find(|f| f.version == version) {
        Some(f) => text.push_str(&format!(
            "; {} ({}) is pending: migrate up applies it",
            f.label(),
            f.path.display()
        )),
        None => text.push_str(&format!(
            "; no file in {} has that version either",
            dir.display()
        )),
    }
    let near = nearby(applied, version);
    if near.is_empty() {
        text.push_str("; no migration is applied to this database yet");
    } else {
        let labels: Vec<String> = near
            .iter()
            .map(|a| source::label(a.version, &a.name))
            .collect();
        text.push_str(&format!("; applied near it: {}", labels.join(", ")));
        if near.len() < applied.len() {
            text.push_str(&format!(
                " ({} of {} applied; migrate status lists them all)",
                near.len(),
                applied.len()
            ));
        }
    }
    text
}

/// Up to [`NEARBY`] applied migrations below `version` and as many above, by version.
fn nearby(applied: &[Applied], version: i32) -> Vec<&Applied> {
    let mut sorted: Vec<&Applied> = applied.iter().collect();
    sorted.sort_by_key(|a| a.version);
    let at = sorted.partition_point(|a| a.version < version);
    let end = at.saturating_add(NEARBY).min(sorted.len());
    sorted.drain(at.saturating_sub(NEARBY)..end).collect()
}

/// Rewrites the rows (each with its file's SQL text, as `keeping` says) in one
/// transaction, which first runs `create` (the side table, when it must be created):
/// all of them are recorded, or none.
async fn record(
    client: &Session,
    rows: &[(&Repaired, &str)],
    keeping: Keeping,
    create: Option<String>,
) -> Result<(), Error> {
    let doing = format!("recording the repaired checksum(s) in {TABLE}");
    let mut begin = format!(
        "BEGIN; SET LOCAL lock_timeout = {}",
        ROW_LOCK_TIMEOUT.as_millis()
    );
    if let Some(create) = create {
        begin.push_str("; ");
        begin.push_str(&create);
    }
    let written: Result<Option<&Repaired>, DbError> = async {
        client.batch_execute(&begin).await?;
        for (r, text) in rows {
            let sql = history::repair_sql(r.version, &r.name, r.checksum);
            if client.query(&sql, &[]).await?.is_empty() {
                return Ok(Some(*r));
            }
            if let Some(sql) = keeping.applied_sql(r.version, text) {
                client.batch_execute(&sql).await?;
            }
        }
        client.batch_execute("COMMIT").await?;
        Ok(None)
    }
    .await;
    match written {
        Ok(None) => Ok(()),
        Ok(Some(gone)) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(Error::Database {
                doing,
                reason: format!(
                    "the row of version {} is gone from {TABLE} (another session deleted it \
                     after repair read it); the transaction was rolled back and nothing was \
                     repaired",
                    gone.version
                ),
            })
        }
        Err(e) if e.connection_lost() => {
            let mut error = Error::db(&doing, &e);
            if let Error::Lost(lost) = &mut error {
                lost.outcome = "repair writes its rows in one transaction, so either all of \
                                them or none were recorded: run migrate status to see which"
                    .into();
            }
            Err(error)
        }
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(Error::Database {
                doing,
                reason: format!("{e}; the transaction was rolled back and nothing was repaired"),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use conventions::exit::migrate as exit;

    use super::*;
    use crate::tests::file;

    fn applied(version: i32, name: &str, checksum: Option<u64>) -> Applied {
        Applied {
            version,
            name: name.into(),
            applied_on: "2026-11-23T10:00:00.000000Z".into(),
            checksum,
        }
    }

    fn dir() -> &'static Path {
        Path::new("m")
    }

    #[test]
    fn a_line_per_repaired_migration() {
        let mut r = Repaired {
            version: 3,
            old_name: "add_index".into(),
            name: "add_index".into(),
            old_checksum: Some(123),
            checksum: 456,
            path: "m/V3__add_index.sql".into(),
            edit: Edit::NotKept,
        };
        assert_eq!(
            r.to_string(),
            "V3__add_index: checksum 123 → 456 (name unchanged)"
        );
        r.old_name = "add_idx".into();
        r.old_checksum = None;
        assert_eq!(
            r.to_string(),
            "V3__add_index: checksum unreadable → 456 (name add_idx → add_index)"
        );
    }

    #[test]
    fn version_repairs_that_one_only() {
        let files = [file(1, "a", 11), file(2, "b", 22), file(3, "c", 33)];
        let hist = [
            applied(1, "a", Some(1)),
            applied(2, "b", Some(2)),
            applied(3, "c", Some(33)),
        ];
        let report = plan(&files, &hist, Which::Version(2), dir()).unwrap();
        assert_eq!(report.repaired.len(), 1);
        assert_eq!(
            report.repaired[0].to_string(),
            "V2__b: checksum 2 → 22 (name unchanged)"
        );
        assert_eq!(report.unchanged, None);
    }

    #[test]
    fn a_version_that_is_not_modified_is_a_no_op() {
        let files = [file(1, "a", 1)];
        let report = plan(
            &files,
            &[applied(1, "a", Some(1))],
            Which::Version(1),
            dir(),
        )
        .unwrap();
        assert!(report.repaired.is_empty());
        assert_eq!(
            report.to_string(),
            "V1__a is not modified: its file matches the history; nothing to repair\n"
        );
    }

    #[test]
    fn a_renamed_file_is_repaired_with_both_names() {
        let files = [file(1, "create_users", 7)];
        let report = plan(
            &files,
            &[applied(1, "create_user", Some(7))],
            Which::Version(1),
            dir(),
        )
        .unwrap();
        assert_eq!(
            report.repaired[0].to_string(),
            "V1__create_users: checksum 7 → 7 (name create_user → create_users)"
        );
    }

    /// The kept text is compared only when its checksum is the history's, and what can
    /// be shown goes under the migration's line.
    #[test]
    fn the_edit_is_shown_under_its_line() {
        let applied_sql = "CREATE TABLE a(id int);\n";
        let mut r = Repaired {
            version: 1,
            old_name: "a".into(),
            name: "a".into(),
            old_checksum: source::checksum(1, "a", applied_sql).ok(),
            checksum: 2,
            path: "m/V1__a.sql".into(),
            edit: Edit::NotKept,
        };
        let edited = "-- the accounts\nCREATE TABLE a(id int);\n";
        r.edit = edit(&r, Some(applied_sql.as_bytes()), edited);
        let report = |r: &Repaired| {
            RepairReport {
                repaired: vec![r.clone()],
                ..RepairReport::default()
            }
            .to_string()
        };
        let line = r.to_string();
        assert_eq!(
            report(&r),
            format!(
                "{line}\n    @@ line 1 @@\n    +-- the accounts\n     CREATE TABLE a(id int);\n"
            )
        );
        assert_eq!(edit(&r, Some(edited.as_bytes()), edited), Edit::Stale);
        assert_eq!(edit(&r, Some(b"\xff"), edited), Edit::Stale);
        assert_eq!(edit(&r, None, edited), Edit::NotKept);
        r.old_checksum = None;
        assert_eq!(edit(&r, Some(applied_sql.as_bytes()), edited), Edit::Stale);
        r.old_checksum = source::checksum(1, "a", applied_sql).ok();
        r.name = "accounts".into();
        r.edit = edit(&r, Some(applied_sql.as_bytes()), applied_sql);
        assert_eq!(r.edit, Edit::SameText);
        assert!(report(&r).ends_with("\n    the SQL text is unchanged; only the name changed\n"));
        r.edit = Edit::Stale;
        assert!(report(&r).contains("\n    the SQL text kept in deckhand_migration_text is not"));
    }

    #[test]
    fn a_version_that_is_not_applied_is_refused_with_its_neighbours() {
        let hist: Vec<Applied> = [1, 2, 3, 4, 5, 10, 11, 12, 13]
            .iter()
            .map(|v| applied(*v, "x", Some(1)))
            .collect();
        let e = plan(&[file(7, "g", 7)], &hist, Which::Version(7), dir()).unwrap_err();
        assert_eq!(e.exit_code(), exit::USAGE);
        assert_eq!(
            e.to_string(),
            "version 7 is not applied, so there is no history row to repair (repair records \
             the checksum of an applied migration whose file was edited); V7__g \
             (m/V7__g.sql) is pending: migrate up applies it; applied near it: V3__x, V4__x, \
             V5__x, V10__x, V11__x, V12__x (6 of 9 applied; migrate status lists them all)"
        );
        let e = plan(&[], &hist[..2], Which::Version(9), dir()).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("; no file in m has that version either; applied near it: V1__x, V2__x"),
            "{e}"
        );
        let e = plan(&[], &[], Which::Version(1), dir()).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("; no migration is applied to this database yet"),
            "{e}"
        );
    }

    #[test]
    fn a_version_whose_file_is_missing_is_refused() {
        let e = plan(&[], &[applied(4, "d", Some(4))], Which::Version(4), dir()).unwrap_err();
        assert_eq!(e.exit_code(), exit::USAGE);
        let text = e.to_string();
        assert!(
            text.starts_with("V4__d is applied but its file is missing from m"),
            "{text}"
        );
        assert!(text.contains("--allow-missing"), "{text}");
    }

    #[test]
    fn all_modified_repairs_every_changed_file_and_leaves_missing_ones() {
        let files = [
            file(1, "a", 11),
            file(2, "b", 2),
            file(3, "c_renamed", 3),
            file(5, "pending", 5),
        ];
        let hist = [
            applied(1, "a", Some(1)),
            applied(2, "b", Some(2)),
            applied(3, "c", Some(3)),
            applied(4, "gone", Some(4)),
        ];
        let report = plan(&files, &hist, Which::AllModified, dir()).unwrap();
        let versions: Vec<i32> = report.repaired.iter().map(|r| r.version).collect();
        assert_eq!(versions, [1, 3]);
        assert_eq!(report.missing, ["V4__gone"]);
        let clean = plan(&files[1..2], &hist[1..2], Which::AllModified, dir()).unwrap();
        assert_eq!(
            clean.to_string(),
            "nothing to repair: no applied migration's file changed\n"
        );
    }

    #[test]
    fn the_update_keeps_applied_on_and_quotes_the_name() {
        let sql = history::repair_sql(3, "it's", 456);
        assert_eq!(
            sql,
            "UPDATE refinery_schema_history SET name = 'it''s', checksum = '456' \
             WHERE version = 3 RETURNING version::int8"
        );
    }
}
