//! Migration files on disk: `V{n}__{name}.sql`, with an optional companion
//! `V{n}__{name}.down.sql` for `migrate down`.
//!
//! Names, versions and checksums are refinery's (`refinery_core::Migration`), so a
//! history table written by refinery and one written by us agree. What refinery lacks,
//! the down companions and the `-- deckhand:no-transaction` marker, is read here too.

use std::collections::hash_map::{Entry, HashMap};
use std::collections::BTreeMap;
use std::future::Future;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
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

/// refinery's checksum of a migration (its name, version and SQL), as the history
/// table records it.
pub fn checksum(version: i32, name: &str, sql: &str) -> Result<u64, String> {
    refinery_core::Migration::unapplied(&label(version, name), sql)
        .map(|m| m.checksum())
        .map_err(|e| e.to_string())
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

/// Whether a file is a migration or the reverse of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Up,
    Down,
}

/// A migration file name, read by [`parse_file_name`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileName {
    pub kind: Kind,
    pub version: i32,
    /// The part after `__`, without `.sql` / `.down.sql`.
    pub name: String,
}

/// A `.sql` file whose name breaks the rule; the message states the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "migration files must be named V{{number}}__{{name}}.sql, down files \
     V{{number}}__{{name}}.down.sql: a capital V, a version of digits 0-9 from 0 to {max}, \
     two underscores, then a name of letters, digits 0-9 and _ ({problem})",
    max = i32::MAX
)]
pub struct NameError {
    /// What this name got wrong, in words; never the name itself (the caller shows the path).
    pub problem: &'static str,
}

/// Reads a file name by the documented rule, refinery's: `V{n}__{name}.sql` and
/// `V{n}__{name}.down.sql`. `Ok(None)` for files that are not `.sql` (they are not
/// migrations at all). Anything accepted is also accepted by refinery, with the same
/// version and name, so checksums agree.
///
/// refinery's own parser is not used: its prefix class `[U|V]` also matches `|` and
/// then panics (`unreachable!`), and its `\w` and `\d` take more of Unicode than the
/// rule says.
pub fn parse_file_name(file_name: &str) -> Result<Option<FileName>, NameError> {
    let (kind, stem) = match file_name.strip_suffix(".down.sql") {
        Some(stem) => (Kind::Down, stem),
        None => match file_name.strip_suffix(".sql") {
            Some(stem) => (Kind::Up, stem),
            None => return Ok(None),
        },
    };
    let err = |problem| Err(NameError { problem });
    let Some(rest) = stem.strip_prefix('V') else {
        return err("it does not start with V");
    };
    let Some((digits, name)) = rest.split_once("__") else {
        return err("there is no __ after the version");
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return err("the version is not digits 0-9");
    }
    let Ok(version) = digits.parse::<i32>() else {
        return err("the version is too large");
    };
    if name.is_empty() {
        return err("the name is empty");
    }
    if !name
        .chars()
        .all(|c| c.is_alphabetic() || c.is_ascii_digit() || c == '_')
    {
        return err("the name holds a character other than letters, digits 0-9 and _");
    }
    Ok(Some(FileName {
        kind,
        version,
        name: name.to_owned(),
    }))
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

    let mut scratch = Vec::with_capacity(FIRST_READ);
    let mut ups: BTreeMap<i32, MigrationFile> = BTreeMap::new();
    let mut downs: Vec<(i32, String, PathBuf)> = Vec::new();
    for (path, odd) in paths {
        let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let (kind, version, name) = match parse_file_name(file_name) {
            Ok(Some(f)) => (f.kind, f.version, f.name),
            Ok(None) => continue,
            Err(rule) => {
                tracing::warn!(file = %path.display(), "skipping {}: {rule}", path.display());
                continue;
            }
        };
        if let Some(what) = odd {
            return Err(SourceError::Read {
                path,
                reason: format!(
                    "it is {what}; a migration must be a regular file, or a link to one"
                ),
            });
        }
        match kind {
            Kind::Down => downs.push((version, name, path)),
            Kind::Up => {
                let sql = read_text(&path, &mut scratch).map_err(|e| SourceError::Read {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                let checksum =
                    checksum(version, &name, &sql).map_err(|reason| SourceError::Name {
                        path: path.clone(),
                        reason,
                    })?;
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

/// Reads [`load`]'s files on a thread of its own and answers when they are read, so
/// that the caller can connect to the database meanwhile: the server's start of a
/// session (a backend process, the login) and the files' reads no longer wait on each
/// other. Where no thread can be started, the files are read when this is awaited.
pub fn load_aside(dir: &Path) -> impl Future<Output = Result<Vec<MigrationFile>, SourceError>> {
    let (answer, answered) = tokio::sync::oneshot::channel();
    let owned = dir.to_owned();
    let started = std::thread::Builder::new()
        .name("migrate-files".into())
        .spawn(move || {
            let _ = answer.send(load(&owned));
        })
        .is_ok();
    let dir = dir.to_owned();
    async move {
        if !started {
            return load(&dir);
        }
        answered.await.unwrap_or_else(|_| {
            Err(SourceError::Dir {
                dir,
                reason: "reading it stopped before it was done".into(),
            })
        })
    }
}

/// A migration's text (an up or a down file): `fs::read_to_string` without its `statx`
/// for the size, read into `scratch`, kept from one file to the next, and copied out
/// at its own size. Opened by [`conventions::file::open_regular`]: the walk tells a pipe
/// or a device by its folder entry, but a file swapped for one between the walk and the
/// open would otherwise be waited on for ever, or read without end.
pub(crate) fn read_text(path: &Path, scratch: &mut Vec<u8>) -> std::io::Result<String> {
    let file = conventions::file::open_regular(path)?;
    scratch.clear();
    // Through `Take`: `File`'s own `read_to_end` asks for the file's size again.
    (&file).take(u64::MAX).read_to_end(scratch)?;
    std::str::from_utf8(scratch)
        .map(str::to_owned)
        .map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "stream did not contain valid UTF-8",
            )
        })
}

/// The room [`load`]'s read buffer starts with: most migrations fit one read.
const FIRST_READ: usize = 16 * 1024;

/// Every file below `dir`, through links, each folder once: a link back to a folder
/// already read (a link to `.` or to a parent, which made the walk endless, or two
/// links to one folder) is skipped with a warning. A folder's entries are told apart
/// by their directory entry's type, without a `stat` each; a link is followed. Each file
/// comes with what it is when it is not a regular file
/// ([`conventions::file::not_regular`]).
fn walk(dir: &Path, out: &mut Vec<(PathBuf, Option<&'static str>)>) -> Result<(), SourceError> {
    let mut read: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let mut folders = vec![dir.to_owned()];
    while let Some(folder) = folders.pop() {
        let unreadable = |e: std::io::Error| SourceError::Dir {
            dir: folder.clone(),
            reason: e.to_string(),
        };
        let meta = std::fs::metadata(&folder).map_err(unreadable)?;
        match read.entry((meta.dev(), meta.ino())) {
            Entry::Occupied(first) => {
                tracing::warn!(
                    folder = %folder.display(),
                    "skipping {}: it is {}, read already (a link leads back to it)",
                    folder.display(),
                    first.get().display()
                );
                continue;
            }
            Entry::Vacant(slot) => {
                slot.insert(folder.clone());
            }
        }
        for entry in std::fs::read_dir(&folder).map_err(unreadable)? {
            let entry = entry.map_err(unreadable)?;
            let path = entry.path();
            let kind = match entry.file_type() {
                Ok(kind) if !kind.is_symlink() => Some(kind),
                _ => std::fs::metadata(&path).ok().map(|meta| meta.file_type()),
            };
            match kind {
                Some(kind) if kind.is_dir() => folders.push(path),
                // A link to nothing: opening it says why.
                None => out.push((path, None)),
                Some(kind) => out.push((path, conventions::file::not_regular(kind))),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use testkit::temp::TempDir;

    fn dir_with(files: &[(&str, &str)]) -> TempDir {
        TempDir::with_files("deckhand-source", files)
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
        let found = load(dir.path()).unwrap();
        let labels: Vec<_> = found.iter().map(MigrationFile::label).collect();
        assert_eq!(labels, ["V1__one", "V2__two", "V10__ten"]);
        assert!(found[1].down.is_some() && found[0].down.is_none());
    }

    #[test]
    fn checksum_is_refinerys() {
        let dir = dir_with(&[("V1__init.sql", "create table t(id int);")]);
        let ours = load(dir.path()).unwrap()[0].checksum;
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
        let found = load(dir.path()).unwrap();
        assert!(found[0].no_transaction);
        assert!(!found[1].no_transaction);
    }

    #[test]
    fn duplicate_versions_are_refused() {
        let dir = dir_with(&[("V1__a.sql", ""), ("V01__b.sql", "")]);
        let e = load(dir.path()).unwrap_err();
        assert!(e.to_string().contains("version 1 is used twice"), "{e}");
    }

    #[test]
    fn down_without_up_is_refused() {
        let dir = dir_with(&[("V1__a.sql", ""), ("V1__b.down.sql", "")]);
        assert!(matches!(
            load(dir.path()),
            Err(SourceError::OrphanDown { .. })
        ));
    }

    /// `load` on another thread, answered within a deadline: a walk that never ends
    /// fails the test instead of hanging it.
    fn load_within_a_minute(dir: &Path) -> Result<Vec<MigrationFile>, SourceError> {
        let (answer, answered) = std::sync::mpsc::channel();
        let dir = dir.to_owned();
        std::thread::spawn(move || answer.send(load(&dir)));
        answered
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the folder's walk ends")
    }

    #[test]
    fn links_back_to_a_folder_are_read_once() {
        // Two links to the folder itself made the walk branch twice at every level:
        // it never ended. One made every file appear twice ("version 1 is used twice").
        let dir = dir_with(&[("V1__a.sql", "select 1;"), ("sub/V2__b.sql", "select 2;")]);
        let root = dir.path();
        std::os::unix::fs::symlink(".", root.join("again")).unwrap();
        std::os::unix::fs::symlink(root, root.join("and_again")).unwrap();
        std::os::unix::fs::symlink("..", root.join("sub/up")).unwrap();
        // A second way into one folder: its files are read once, through the first.
        std::os::unix::fs::symlink("sub", root.join("sub_too")).unwrap();
        let found = load_within_a_minute(root).unwrap();
        let labels: Vec<_> = found.iter().map(MigrationFile::label).collect();
        assert_eq!(labels, ["V1__a", "V2__b"]);
    }

    #[test]
    fn a_linked_folder_and_linked_files_are_read() {
        let outside = dir_with(&[("V3__c.sql", "select 3;"), ("V4__d.sql", "select 4;")]);
        let dir = dir_with(&[("V1__a.sql", "select 1;")]);
        std::os::unix::fs::symlink(outside.path(), dir.path().join("shared")).unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("V4__d.sql"),
            dir.path().join("V5__e.sql"),
        )
        .unwrap();
        // A link to nothing is a file that cannot be read, named in the error.
        let found = load_within_a_minute(dir.path()).unwrap();
        let labels: Vec<_> = found.iter().map(MigrationFile::label).collect();
        assert_eq!(labels, ["V1__a", "V3__c", "V4__d", "V5__e"]);
        assert_eq!(found[3].sql, "select 4;");
        std::os::unix::fs::symlink("nowhere.sql", dir.path().join("V6__f.sql")).unwrap();
        let e = load_within_a_minute(dir.path()).unwrap_err();
        assert!(
            matches!(&e, SourceError::Read { path, .. } if path.ends_with("V6__f.sql")),
            "{e}"
        );
    }

    #[test]
    fn a_migration_that_is_a_pipe_or_a_device_is_refused_by_name() {
        // A named pipe would be waited on for a writer for ever; a link to a device read
        // without end.
        for (name, make) in [
            ("V2__pipe.sql", "fifo"),
            ("V2__zero.sql", "/dev/zero"),
            ("V1__a.down.sql", "fifo"),
        ] {
            let dir = dir_with(&[("V1__a.sql", "select 1;")]);
            let path = dir.path().join(name);
            if make == "fifo" {
                testkit::temp::fifo(&path);
            } else {
                std::os::unix::fs::symlink(make, &path).unwrap();
            }
            let e = load_within_a_minute(dir.path()).unwrap_err();
            let said = e.to_string();
            assert!(
                said.contains(name) && said.contains("a migration must be a regular file"),
                "{said}"
            );
            assert!(said.contains(if make == "fifo" {
                "a named pipe"
            } else {
                "a device"
            }));
        }
        // Named otherwise, such files are passed over unread, as any other file.
        let dir = dir_with(&[("V1__a.sql", "select 1;")]);
        std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero")).unwrap();
        assert_eq!(load_within_a_minute(dir.path()).unwrap().len(), 1);
    }

    #[test]
    fn a_file_swapped_for_a_pipe_or_a_device_after_the_walk_is_refused_when_opened() {
        // What the walk saw may have changed by the time the file is read: the open
        // must not wait on a pipe, and the read must not follow a device without end.
        let dir = dir_with(&[]);
        let pipe = dir.path().join("V1__a.sql");
        testkit::temp::fifo(&pipe);
        let zero = dir.path().join("V2__b.sql");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        for (path, what) in [(pipe, "a named pipe"), (zero, "a device")] {
            let (answer, answered) = std::sync::mpsc::channel();
            let reading = path.clone();
            std::thread::spawn(move || answer.send(read_text(&reading, &mut Vec::new())));
            let said = answered
                .recv_timeout(std::time::Duration::from_secs(60))
                .expect("the read ends")
                .unwrap_err()
                .to_string();
            assert!(
                said.contains(what) && said.contains("not a regular file"),
                "{}: {said}",
                path.display()
            );
        }
    }

    #[test]
    fn text_that_is_not_utf8_is_refused_by_file() {
        let dir = dir_with(&[("V1__a.sql", "select 1;")]);
        std::fs::write(dir.path().join("V2__b.sql"), b"select '\xff\xfe';").unwrap();
        let e = load(dir.path()).unwrap_err();
        assert!(
            e.to_string().contains("V2__b.sql") && e.to_string().contains("valid UTF-8"),
            "{e}"
        );
    }

    #[test]
    fn a_migration_longer_than_the_first_read_is_read_whole() {
        let sql = format!("select '{}';", "x".repeat(3 * FIRST_READ));
        let dir = dir_with(&[("V1__a.sql", sql.as_str())]);
        assert_eq!(load(dir.path()).unwrap()[0].sql, sql);
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

    fn up(version: i32, name: &str) -> Option<FileName> {
        Some(FileName {
            kind: Kind::Up,
            version,
            name: name.into(),
        })
    }

    #[test]
    fn file_names_by_the_rule() {
        assert_eq!(parse_file_name("V7__add_users.sql"), Ok(up(7, "add_users")));
        assert_eq!(parse_file_name("V007__café.sql"), Ok(up(7, "café")));
        assert_eq!(
            parse_file_name("V2__two.down.sql").map(|f| f.map(|f| f.kind)),
            Ok(Some(Kind::Down))
        );
        assert_eq!(parse_file_name("README.md"), Ok(None));
        assert_eq!(parse_file_name("V1__a.sql.bak"), Ok(None));
        for bad in [
            "V1_init.sql",
            "V1__in-it.sql",
            "U1__init.sql",
            "v1__init.sql",
            "V__init.sql",
            "V1__.sql",
            "V1.5__init.sql",
            "V٣__init.sql",
            "V99999999999__init.sql",
            "V1__x².sql",
            ".sql",
            ".down.sql",
            // refinery's parser panics on this one (its prefix class is `[U|V]`).
            "|1__init.sql",
        ] {
            let e = parse_file_name(bad).expect_err(bad);
            assert!(
                e.to_string().starts_with(
                    "migration files must be named V{number}__{name}.sql, down files V{number}__{name}.down.sql"
                ),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn a_misnamed_file_is_skipped_and_loading_goes_on() {
        let dir = dir_with(&[("|1__pipe.sql", "select 1;"), ("V1__ok.sql", "select 1;")]);
        let labels: Vec<_> = load(dir.path())
            .unwrap()
            .iter()
            .map(MigrationFile::label)
            .collect();
        assert_eq!(labels, ["V1__ok"]);
    }

    /// The documented rule, written as plainly as possible.
    fn by_the_rule(file_name: &str) -> Option<(Kind, i32, String)> {
        let (kind, stem) = if let Some(s) = file_name.strip_suffix(".down.sql") {
            (Kind::Down, s)
        } else {
            (Kind::Up, file_name.strip_suffix(".sql")?)
        };
        let chars: Vec<char> = stem.chars().collect();
        if chars.first() != Some(&'V') {
            return None;
        }
        let digits: String = chars[1..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        let after: String = chars[1 + digits.chars().count()..].iter().collect();
        let name = after.strip_prefix("__")?;
        let name_ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_alphabetic() || c.is_ascii_digit() || c == '_');
        let version = digits.parse::<i32>().ok()?;
        name_ok.then(|| (kind, version, name.to_owned()))
    }

    fn file_name() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            3 => any::<char>().prop_map(String::from),
            2 => prop::sample::select(vec!["V", "U", "|", "_", "__", ".", ".sql", ".down.sql", "-", "é", "٣", "²"])
                .prop_map(String::from),
            2 => "[0-9]{1,11}",
            2 => "[a-z_]{1,6}",
        ];
        prop::collection::vec(piece, 0..8).prop_map(|p| p.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Any name: no panic; `.sql` names are read exactly by the rule (and refinery
        /// agrees on what we accept), the rest of `.sql` names are refused with the rule.
        #[test]
        fn any_file_name_is_read_by_the_rule_or_refused_with_it(name in file_name()) {
            match parse_file_name(&name) {
                Ok(None) => prop_assert!(!name.ends_with(".sql")),
                Ok(Some(f)) => {
                    prop_assert_eq!(by_the_rule(&name), Some((f.kind, f.version, f.name.clone())));
                    let stem = name.strip_suffix(".down.sql").or_else(|| name.strip_suffix(".sql"));
                    let theirs = refinery_core::Migration::unapplied(stem.unwrap_or_default(), "");
                    prop_assert!(theirs.is_ok(), "refinery refuses {:?}", name);
                    if let Ok(m) = theirs {
                        prop_assert_eq!((m.version(), m.name()), (f.version, f.name.as_str()));
                    }
                }
                Err(e) => {
                    prop_assert!(name.ends_with(".sql"));
                    prop_assert_eq!(by_the_rule(&name), None);
                    prop_assert!(e.to_string().contains("V{number}__{name}.sql"), "{}", e);
                }
            }
        }
    }
}
