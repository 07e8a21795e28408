//! Checks that the documentation — `README.md` and every `docs/*.md` page — cannot drift
//! from the programs' `--help`: [`pages`] reads it, [`assert_docs_variables_in_help`]
//! checks that every variable it names is one a program really reads, and
//! [`crate::assert_readme_documents`] checks a section's settings table against a
//! command's flags. [`assert_links_resolve`] checks that every relative link of every
//! Markdown file in the repository leads to a file that exists and, with a `#`, to a
//! heading of that page.
//!
//! Not here: rendering the help texts (the test that calls this has the programs'
//! clap commands), checking what the prose says about a variable, or links to the web
//! (the tests run offline).

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

/// Folders no documentation lives in, by name wherever they are (build output,
/// dependencies)...
const NOT_DOCS: &[&str] = &["target", "node_modules"];
/// ...or by path from the root (the fuzzers' runs).
const NOT_DOCS_AT: &[&str] = &["fuzz/out"];

/// Every Markdown file below the repository's root as (path from the root with `/`,
/// text), hidden folders, [`NOT_DOCS`] and [`NOT_DOCS_AT`] left out, sorted by path.
pub fn markdown_files() -> Vec<(String, String)> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<(String, String)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let path = format!("{prefix}{name}");
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            let skipped = name.starts_with('.')
                || NOT_DOCS.contains(&name.as_str())
                || NOT_DOCS_AT.contains(&path.as_str());
            if is_dir && !skipped {
                walk(&entry.path(), &format!("{path}/"), out);
            } else if !is_dir && name.ends_with(".md") {
                let text = std::fs::read_to_string(entry.path())
                    .unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
                out.push((path, text));
            }
        }
    }
    let mut out = Vec::new();
    walk(&root(), "", &mut out);
    out.sort();
    out
}

/// The lines of `text` outside fenced code blocks (```` ``` ```` or `~~~`), numbered
/// from 1.
fn prose_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut fence: Option<&str> = None;
    text.lines().enumerate().filter_map(move |(i, line)| {
        let trimmed = line.trim_start();
        let opens = ["```", "~~~"].into_iter().find(|f| trimmed.starts_with(f));
        match (fence, opens) {
            (Some(open), Some(f)) if f == open => {
                fence = None;
                None
            }
            (Some(_), _) => None,
            (None, Some(f)) => {
                fence = Some(f);
                None
            }
            (None, None) => Some((i + 1, line)),
        }
    })
}

/// The anchor GitHub gives a heading: its text without link targets, lower case,
/// spaces as `-`, every character but letters, digits, `-` and `_` left out.
pub fn slug(heading: &str) -> String {
    let mut text = String::new();
    let mut rest = heading;
    // `[words](target)` shows as `words`.
    while let Some(open) = rest.find("](") {
        let Some(close) = rest[open..].find(')') else {
            break;
        };
        text.push_str(&rest[..open]);
        rest = &rest[open + close + 1..];
    }
    text.push_str(rest);
    text.trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a page's headings, a repeated one numbered as GitHub does (`x`,
/// `x-1`, `x-2`).
pub fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    for (_, line) in prose_lines(text) {
        let hashes = line.bytes().take_while(|b| *b == b'#').count();
        let Some(title) = line[hashes..].strip_prefix(' ') else {
            continue;
        };
        if !(1..=6).contains(&hashes) {
            continue;
        }
        let base = slug(title.trim_end_matches(['#', ' ']));
        let n = seen.entry(base.clone()).or_default();
        out.insert(if *n == 0 { base } else { format!("{base}-{n}") });
        *n += 1;
    }
    out
}

/// The link targets of one line, `[words](target)` and `![words](target)`, with inline
/// code spans left out (a `](` in `` `code` `` is no link).
fn link_targets(line: &str) -> Vec<&str> {
    let mut targets = Vec::new();
    for (i, piece) in line.split('`').enumerate() {
        if i % 2 == 1 {
            continue;
        }
        let mut rest = piece;
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let end = after
                .find(|c: char| c == ')' || c.is_whitespace())
                .unwrap_or(after.len());
            targets.push(&after[..end]);
            rest = &after[end..];
        }
    }
    targets
}

/// `path` with `.` and `..` resolved against `base`, the folder of a page (`""` for the
/// root); `None` when it climbs above the root.
fn resolve(base: &str, path: &str) -> Option<String> {
    let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// Every relative link of `pages` (path from the root, text) that leads nowhere, as
/// `page:line: target (why)`: a file that `exists` denies (a page of `pages` always
/// exists), or an anchor that is not a heading of the page it names. Links with a
/// scheme (`https:`, `mailto:`) are not followed.
pub fn broken_links(pages: &[(String, String)], exists: &dyn Fn(&str) -> bool) -> Vec<String> {
    let by_path: BTreeMap<&str, &str> = pages
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    let mut anchor_sets: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut broken = Vec::new();
    for (page, text) in pages {
        let base = page.rsplit_once('/').map_or("", |(dir, _)| dir);
        for (n, line) in prose_lines(text) {
            for target in link_targets(line) {
                let scheme = target.split_once(':').is_some_and(|(s, _)| {
                    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphabetic())
                });
                if scheme || target.is_empty() {
                    continue;
                }
                let (path, fragment) = match target.split_once('#') {
                    Some((p, f)) => (p, Some(f)),
                    None => (target, None),
                };
                let resolved = if path.is_empty() {
                    Some(page.clone())
                } else {
                    resolve(base, path.trim_end_matches('/'))
                };
                let why = match resolved {
                    None => Some("climbs above the repository"),
                    Some(ref file) => match (by_path.get_key_value(file.as_str()), fragment) {
                        (Some((file, text)), Some(fragment)) => {
                            let anchors = anchor_sets.entry(file).or_insert_with(|| anchors(text));
                            (!anchors.contains(fragment)).then_some("no such heading on that page")
                        }
                        (Some(_), None) => None,
                        (None, _) if exists(file) => None,
                        (None, _) => Some("no such file"),
                    },
                };
                if let Some(why) = why {
                    broken.push(format!("{page}:{n}: {target} ({why})"));
                }
            }
        }
    }
    broken
}

/// Every relative link of every Markdown file in the repository leads somewhere
/// ([`broken_links`]).
pub fn assert_links_resolve() {
    let root = root();
    let pages = markdown_files();
    assert!(
        pages.iter().any(|(p, _)| p == "README.md") && pages.len() > 10,
        "the Markdown files were not found below {}",
        root.display()
    );
    let broken = broken_links(&pages, &|path| root.join(path).exists());
    assert!(
        broken.is_empty(),
        "{} link(s) in the docs lead nowhere; correct the target, or the heading it names \
         (an anchor is the heading in lower case, spaces as `-`, punctuation left out):\n{}",
        broken.len(),
        broken.join("\n")
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
    #[test]
    fn a_heading_gets_the_anchor_github_gives_it() {
        assert_eq!(
            slug("Twenty-fourth round (2026-12-04): the `stdout` writer, 3× — `posix_spawn`"),
            "twenty-fourth-round-2026-12-04-the-stdout-writer-3--posix_spawn"
        );
        assert_eq!(slug("Summary: `scripts/bench`"), "summary-scriptsbench");
        assert_eq!(
            slug("See [the agent](agent.md#x) twice"),
            "see-the-agent-twice"
        );
        let text = "# Page\n\n## Notes\n\n```\n## not a heading\n```\n\n## Notes\n#no\n";
        assert_eq!(
            anchors(text).into_iter().collect::<Vec<_>>(),
            ["notes", "notes-1", "page"]
        );
    }

    #[test]
    fn a_link_to_a_missing_file_or_heading_is_reported_with_its_line() {
        let pages = [
            (
                "README.md".to_owned(),
                "# Top\n\n[a](docs/b.md#part) [b](docs/b.md#gone) ![c](docs/c.png)\n\
                 `[not](a-link.md)` [web](https://example.com/x#y) [here](#top)\n\
                 ```\n[fenced](nowhere.md)\n```\n[up](../outside.md) [d](docs/d.md)\n"
                    .to_owned(),
            ),
            (
                "docs/b.md".to_owned(),
                "## Part\n[back](../README.md#top) [self](#nope)\n".to_owned(),
            ),
        ];
        let exists = |path: &str| path == "docs/c.png";
        assert_eq!(
            broken_links(&pages, &exists),
            [
                "README.md:3: docs/b.md#gone (no such heading on that page)",
                "README.md:8: ../outside.md (climbs above the repository)",
                "README.md:8: docs/d.md (no such file)",
                "docs/b.md:2: #nope (no such heading on that page)",
            ]
        );
    }
}
