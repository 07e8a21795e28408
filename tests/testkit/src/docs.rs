//! Checks that the documentation — `README.md` and every `docs/*.md` page — cannot drift
//! from the programs' `--help`: [`pages`] reads it, [`assert_docs_variables_in_help`]
//! checks that every variable it names is one a program really reads, and
//! [`crate::assert_readme_documents`] checks a section's settings table against a
//! command's flags.
//!
//! Not here: rendering the help texts (the test that calls this has the programs'
//! clap commands) or checking what the prose says about a variable.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The variable families deckhand's programs read: a name that starts with one of these
/// prefixes...
pub const OUR_PREFIXES: &[&str] = &["DECKHAND_", "HEALTH_", "MIGRATE_", "CLOUDWATCH_"];
/// ...or is one of these names.
pub const OUR_NAMES: &[&str] = &["MIGRATIONS_DIR", "LOG_FORMAT", "APP_VERSION"];

/// Variables the docs name that belong to someone else (or to the build, not to a
/// program), with whose they are: a name, or
/// a prefix ending in `*`. Only an entry that also matches [`OUR_PREFIXES`] or
/// [`OUR_NAMES`] changes the outcome today; the others are listed so that the check stays
/// right when the families above grow (pgconn's `PG*`, say).
pub const NOT_OURS: &[(&str, &str)] = &[
    ("AWS_*", "the AWS SDK's (credentials, region, endpoint)"),
    ("PG*", "libpq's, which pgconn reads the libpq way"),
    ("DATABASE_URL", "the app's, which pgconn reads"),
    ("ECS_*", "set by ECS in the task (the metadata endpoint)"),
    (
        "DECKHAND_TEST_*",
        "exported by scripts/services for the tests",
    ),
    (
        "DECKHAND_CACHE",
        "the cache of scripts/bench and scripts/services (peers, virtualenvs), not a program's",
    ),
    (
        "DECKHAND_PG_DURABLE",
        "read by scripts/services (PostgreSQL with fsync on, for the benchmarks)",
    ),
    (
        "DECKHAND_HOT_CODE",
        "read by the build script (build/link-flags.rs) when the binaries are built, not by a program",
    ),
];

/// The repository's root (this crate lives in `tests/testkit`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every documentation page as (path from the repository root, text): `README.md`, then
/// `docs/*.md` by name.
pub fn pages() -> Vec<(String, String)> {
    let root = root();
    let mut names = vec!["README.md".to_owned()];
    let mut docs: Vec<String> = std::fs::read_dir(root.join("docs"))
        .expect("the docs/ folder")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".md"))
        .map(|n| format!("docs/{n}"))
        .collect();
    docs.sort();
    names.extend(docs);
    names
        .into_iter()
        .map(|name| {
            let text = std::fs::read_to_string(root.join(&name))
                .unwrap_or_else(|e| panic!("cannot read {name}: {e}"));
            (name, text)
        })
        .collect()
}

/// An UPPER_CASE name in `text`, and whether it is written as a family (`DECKHAND_LOG_*`).
fn upper_names(text: &str) -> Vec<(&str, bool)> {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(is_word) {
        let run = &rest[start..];
        let len = run.find(|c: char| !is_word(c)).unwrap_or(run.len());
        let word = &run[..len];
        let upper = word.starts_with(|c: char| c.is_ascii_uppercase())
            && word
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if upper {
            out.push((word, run[len..].starts_with('*')));
        }
        rest = &run[len..];
    }
    out
}

fn is_ours(name: &str) -> bool {
    OUR_NAMES.contains(&name) || OUR_PREFIXES.iter().any(|p| name.starts_with(p))
}

fn not_ours(name: &str) -> bool {
    NOT_OURS
        .iter()
        .any(|(entry, _)| match entry.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == *entry,
        })
}

/// The variables of deckhand's families that `text` names: each name, and whether it is
/// a family (`HEALTH_DB_*`, which a help text matches with any name it starts).
pub fn named_variables(text: &str) -> BTreeSet<(String, bool)> {
    upper_names(text)
        .into_iter()
        .filter(|(name, _)| is_ours(name) && !not_ours(name))
        .map(|(name, family)| (name.to_owned(), family || name.ends_with('_')))
        .collect()
}

/// The variables of deckhand's families that `pages` name and none of `helps` mention,
/// each with the pages that name it (a family shown as `HEALTH_DB_*`).
pub fn variables_missing_from_help(
    pages: &[(String, String)],
    helps: &[String],
) -> BTreeMap<String, BTreeSet<String>> {
    let in_help: BTreeSet<&str> = helps
        .iter()
        .flat_map(|h| upper_names(h))
        .map(|(name, _)| name)
        .collect();
    let mut missing: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (page, text) in pages {
        for (name, family) in named_variables(text) {
            let found = if family {
                in_help.iter().any(|h| h.starts_with(&name))
            } else {
                in_help.contains(name.as_str())
            };
            if !found {
                let shown = if family { format!("{name}*") } else { name };
                missing.entry(shown).or_default().insert(page.clone());
            }
        }
    }
    missing
}

/// Every variable the docs name from deckhand's families (`DECKHAND_*`, `HEALTH_*`,
/// `MIGRATE_*`, `CLOUDWATCH_*`, `MIGRATIONS_DIR`, `LOG_FORMAT`, `APP_VERSION`; see
/// [`NOT_OURS`] for what is exempt) must appear in at least one of `helps`, the full
/// `--help` texts of every program and subcommand. A variable the docs promise and no
/// program mentions is either not read at all or not discoverable from the command line.
pub fn assert_docs_variables_in_help(helps: &[String]) {
    let missing = variables_missing_from_help(&pages(), helps);
    let report: Vec<String> = missing
        .iter()
        .map(|(name, pages)| {
            let pages: Vec<&str> = pages.iter().map(String::as_str).collect();
            format!("{name} (named in {})", pages.join(", "))
        })
        .collect();
    assert!(
        report.is_empty(),
        "the docs name {} variable(s) that no program's --help mentions: {}. Add each to \
         the help of the program that reads it (clap `env = \"...\"`, or its help text), \
         or correct the docs; a variable that belongs to someone else goes on \
         testkit::docs::NOT_OURS",
        report.len(),
        report.join("; ")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<(String, bool)> {
        named_variables(text).into_iter().collect()
    }

    #[test]
    fn finds_our_variables_and_families_in_prose_tables_and_assignments() {
        let text = "| `--dir` | `MIGRATIONS_DIR` | set `DECKHAND_STOP_TIMEOUT=25s`; \
                    the `HEALTH_DB_*` and DECKHAND_* ones; LOG_FORMAT=json.";
        assert_eq!(
            names(text),
            vec![
                ("DECKHAND_".into(), true),
                ("DECKHAND_STOP_TIMEOUT".into(), false),
                ("HEALTH_DB_".into(), true),
                ("LOG_FORMAT".into(), false),
                ("MIGRATIONS_DIR".into(), false),
            ]
        );
    }

    #[test]
    fn leaves_out_other_owners_and_words_that_only_contain_a_prefix() {
        let text = "AWS_REGION PGHOST DATABASE_URL ECS_CONTAINER_METADATA_URI_V4 \
                    DECKHAND_TEST_PG_CA MY_HEALTH_PATH Health_PATH SIGTERM";
        assert!(names(text).is_empty(), "{:?}", names(text));
    }

    #[test]
    fn a_family_is_found_by_any_help_variable_it_starts() {
        let missing = |docs: &str, help: &str| -> Vec<String> {
            let pages = [("docs/x.md".to_owned(), docs.to_owned())];
            variables_missing_from_help(&pages, &[help.to_owned()])
                .into_keys()
                .collect()
        };
        let help = "[env: HEALTH_DB_TIMEOUT=] [env: DECKHAND_STOP_TIMEOUT=]";
        assert!(missing("`HEALTH_DB_*` and `DECKHAND_STOP_TIMEOUT`", help).is_empty());
        assert_eq!(
            missing("`HEALTH_LOG`, `MIGRATE_*`", help),
            ["HEALTH_LOG", "MIGRATE_*"]
        );
    }
}
