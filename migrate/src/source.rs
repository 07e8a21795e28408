//! Migration files on disk: `V{n}__{name}.sql`, with an optional companion
//! `V{n}__{name}.down.sql` for `migrate down`.
//!
//! Names, versions and checksums are refinery's (`refinery_core::Migration`), so a
//! history table written by refinery and one written by us agree. What refinery lacks,
//! the down companions and the `-- deckhand:no-transaction` marker, is read here too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The first line that makes a file run outside a transaction.
pub const NO_TRANSACTION_MARKER: &str = "-- deckhand:no-transaction";

/// One versioned migration found on disk.
#[derive(Debug, Clone)]
pub struct MigrationFile {
    pub version: i32,
    /// The part after `__`, as refinery stores it in the history table.
    pub name: String,
    pub path: PathBuf,
    pub sql: String,
    /// refinery's checksum of name, version and SQL.
    pub checksum: u64,
    /// The file starts with [`NO_TRANSACTION_MARKER`].
    pub no_transaction: bool,
    /// The companion `.down.sql`, if there is one.
    pub down: Option<PathBuf>,
}

impl MigrationFile {
    /// `V3__add_index`: how refinery and our messages name a migration.
    pub fn label(&self) -> String {
        label(self.version, &self.name)
    }
}

pub fn label(version: i32, name: &str) -> String {
    format!("V{version}__{name}")
}

/// The migration directory cannot be used as it is.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("MIGRATIONS_DIR={dir:?} is not valid: {reason}; point --dir (MIGRATIONS_DIR) at the folder with the V{{n}}__{{name}}.sql files")]
    Dir { dir: PathBuf, reason: String },
    #[error("cannot read {path:?}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path:?}: {reason}")]
    Name { path: PathBuf, reason: String },
    #[error("version {version} is used twice, by {first:?} and {second:?}: migration versions must be unique")]
    Duplicate {
        version: i32,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("{path:?} has no up migration V{version}__{name}.sql beside it: rename it, or add the up file")]
    OrphanDown {
        path: PathBuf,
        version: i32,
        name: String,
    },
}

enum Kind {
    Up,
    Down,
}

/// Reads every migration below `dir` (recursively, like refinery), sorted by version.
/// Files that are not `.sql` are skipped; `.sql` files with another name are reported
/// with a warning naming the rule, since a misnamed migration would otherwise never run.
pub fn load(dir: &Path) -> Result<Vec<MigrationFile>, SourceError> {
    let meta = std::fs::metadata(dir).map_err(|e| SourceError::Dir {
        dir: dir.to_owned(),
        reason: e.to_string(),
    })?;
    if !meta.is_dir() {
        return Err(SourceError::Dir {
            dir: dir.to_owned(),
            reason: "not a directory".into(),
        });
    }
    let mut paths = Vec::new();
    walk(dir, &mut paths)?;
    paths.sort();

    let mut ups: BTreeMap<i32, MigrationFile> = BTreeMap::new();
    let mut downs: Vec<(i32, String, PathBuf)> = Vec::new();
    for path in paths {
        let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !file_name.ends_with(".sql") {
            continue;
        }
        let (kind, stem) = match file_name.strip_suffix(".down.sql") {
            Some(stem) => (Kind::Down, stem),
            None => (Kind::Up, &file_name[..file_name.len() - 4]),
        };
        let Some((version, name)) = parse_stem(stem) else {
            tracing::warn!(
                file = %path.display(),
                "skipping {}: migration files must be named V{{number}}__{{name}}.sql \
                 (name: letters, digits, _), down files V{{number}}__{{name}}.down.sql",
                path.display()
            );
            continue;
        };
        match kind {
            Kind::Down => downs.push((version, name, path)),
            Kind::Up => {
                let sql = std::fs::read_to_string(&path).map_err(|e| SourceError::Read {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                let checksum = refinery_core::Migration::unapplied(stem, &sql)
                    .map_err(|e| SourceError::Name {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?
                    .checksum();
                let file = MigrationFile {
                    version,
                    name,
                    no_transaction: sql.lines().next().map(str::trim)
                        == Some(NO_TRANSACTION_MARKER),
                    path,
                    sql,
                    checksum,
                    down: None,
                };
                if let Some(first) = ups.get(&version) {
                    return Err(SourceError::Duplicate {
                        version,
                        first: first.path.clone(),
                        second: file.path,
                    });
                }
                ups.insert(version, file);
            }
        }
    }
    for (version, name, path) in downs {
        match ups.get_mut(&version) {
            Some(up) if up.name == name => up.down = Some(path),
            _ => {
                return Err(SourceError::OrphanDown {
                    path,
                    version,
                    name,
                })
            }
        }
    }
    Ok(ups.into_values().collect())
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), SourceError> {
    let entries = std::fs::read_dir(dir).map_err(|e| SourceError::Dir {
        dir: dir.to_owned(),
        reason: e.to_string(),
    })?;
    for entry in entries {
        let entry = entry.map_err(|e| SourceError::Dir {
            dir: dir.to_owned(),
            reason: e.to_string(),
        })?;
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// `V12__add_users` → (12, "add_users"), by refinery's rule, versioned migrations only.
fn parse_stem(stem: &str) -> Option<(i32, String)> {
    let (prefix, version, name) = refinery_core::parse_migration_name(stem).ok()?;
    // refinery's pattern is anchored at the start only: `V1__in-it` would pass as `in`.
    let whole = stem
        .strip_suffix(name.as_str())
        .is_some_and(|head| head.ends_with("__"));
    (prefix.to_string() == "V" && whole).then_some((version, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A temporary folder, removed when dropped.
    struct TempDir(PathBuf);

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    impl std::ops::Deref for TempDir {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    fn dir_with(files: &[(&str, &str)]) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "deckhand-source-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, body) in files {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, body).unwrap();
        }
        TempDir(dir)
    }

    #[test]
    fn versions_sort_numerically_and_downs_pair_up() {
        let dir = dir_with(&[
            ("V10__ten.sql", "select 10;"),
            ("V2__two.sql", "select 2;"),
            ("sub/V1__one.sql", "select 1;"),
            ("V2__two.down.sql", "select -2;"),
            ("README.md", "not sql"),
            ("seed.sql", "ignored with a warning"),
        ]);
        let found = load(&dir).unwrap();
        let labels: Vec<_> = found.iter().map(MigrationFile::label).collect();
        assert_eq!(labels, ["V1__one", "V2__two", "V10__ten"]);
        assert!(found[1].down.is_some() && found[0].down.is_none());
    }

    #[test]
    fn checksum_is_refinerys() {
        let dir = dir_with(&[("V1__init.sql", "create table t(id int);")]);
        let ours = load(&dir).unwrap()[0].checksum;
        let theirs = refinery_core::Migration::unapplied("V1__init", "create table t(id int);")
            .unwrap()
            .checksum();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn no_transaction_marker_on_first_line_only() {
        let dir = dir_with(&[
            (
                "V1__a.sql",
                "-- deckhand:no-transaction\ncreate index concurrently i on t(x);",
            ),
            ("V2__b.sql", "select 1;\n-- deckhand:no-transaction\n"),
        ]);
        let found = load(&dir).unwrap();
        assert!(found[0].no_transaction);
        assert!(!found[1].no_transaction);
    }

    #[test]
    fn duplicate_versions_are_refused() {
        let dir = dir_with(&[("V1__a.sql", ""), ("V01__b.sql", "")]);
        let e = load(&dir).unwrap_err();
        assert!(e.to_string().contains("version 1 is used twice"), "{e}");
    }

    #[test]
    fn down_without_up_is_refused() {
        let dir = dir_with(&[("V1__a.sql", ""), ("V1__b.down.sql", "")]);
        assert!(matches!(load(&dir), Err(SourceError::OrphanDown { .. })));
    }

    #[test]
    fn missing_dir_names_the_setting() {
        let e = load(Path::new("/nonexistent/deckhand")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("MIGRATIONS_DIR=\"/nonexistent/deckhand\" is not valid"),
            "{e}"
        );
    }

    #[test]
    fn misnamed_files_are_skipped() {
        assert_eq!(parse_stem("V1_init"), None);
        assert_eq!(parse_stem("V1__in-it"), None);
        assert_eq!(parse_stem("U1__init"), None);
        assert_eq!(parse_stem("V7__add_users"), Some((7, "add_users".into())));
    }
}
