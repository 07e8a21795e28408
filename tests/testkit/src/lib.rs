//! Support for deckhand's integration tests, which run against the real PostgreSQL and
//! moto server that `scripts/services start` launches (the test command `scripts/test`
//! does that and exports their variables).
//!
//! What it gives: a fresh database per test, unique names for anything a test creates
//! (so tests run in parallel), polling with a deadline instead of sleeps, and a way to
//! run the workspace's built binaries. It is not a mock of anything.

#![forbid(unsafe_code)]

pub mod docs;
pub mod http;
pub mod leaks;
pub mod net;
pub mod temp;

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use pgconn::PgConfig;

/// A variable the test services export; panics with the fix when it is missing, so a
/// test run without the services fails loudly instead of passing vacuously.
pub fn service_var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: integration tests need the test services. Run them with \
             scripts/test, or: scripts/services start && eval \"$(scripts/services env)\""
        )
    })
}

/// The superuser URL of the throwaway cluster (database `postgres`).
pub fn admin_url() -> String {
    service_var("DATABASE_URL")
}

/// A name no other test in this run (or an earlier run on the same cluster) uses:
/// `prefix_<pid>_<counter>`, lower case, safe as a database or log group name.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{}_{}_{n}_{:x}",
        prefix.to_lowercase(),
        std::process::id(),
        nanos & 0xffff
    )
}

/// A database created for one test.
#[derive(Debug, Clone)]
pub struct TestDb {
    pub name: String,
    /// Connection settings for this database, as the superuser, without TLS.
    pub config: PgConfig,
    /// The same as a URL, for passing to a binary as `DATABASE_URL`.
    pub url: String,
}

impl TestDb {
    /// Creates a new, empty database named after `prefix`.
    pub async fn create(prefix: &str) -> TestDb {
        let admin = PgConfig::from_url(&admin_url()).expect("DATABASE_URL from the services");
        let name = unique_name(prefix);
        let client = admin.connect().await.expect("connect to the test cluster");
        client
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .expect("create the test database");
        let url = replace_dbname(&admin_url(), &name);
        TestDb {
            config: admin.with_dbname(&name),
            name,
            url,
        }
    }

    /// A connected client to this database.
    pub async fn client(&self) -> tokio_postgres::Client {
        self.config
            .connect()
            .await
            .expect("connect to the test database")
    }

    /// The versions recorded in refinery's history table, in order (`int4` and `int8`
    /// tables alike).
    pub async fn applied_versions(&self) -> Vec<i64> {
        self.client()
            .await
            .query(
                "SELECT version::int8 FROM refinery_schema_history ORDER BY version",
                &[],
            )
            .await
            .expect("read refinery_schema_history")
            .iter()
            .map(|r| r.get(0))
            .collect()
    }
}

/// `postgres://u:p@h:1/old?x` with `new` as the database.
pub fn replace_dbname(url: &str, new: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{new}?{q}"),
        None => format!("{base}/{new}"),
    }
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes; returns whether it
/// held. Tests wait for conditions this way, never with a fixed sleep.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The async form of [`wait_until`].
pub async fn wait_until_async<F, Fut>(timeout: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if condition().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Path of a binary of this workspace, built into the shared target directory
/// (`cargo test` builds a package's binaries before its integration tests; pass
/// `env!("CARGO_BIN_EXE_<name>")` when it is the package's own).
pub fn workspace_binary(name: &str) -> PathBuf {
    let mut dir = std::env::current_exe().expect("test executable path");
    dir.pop();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join(name)
}

/// A `Command` for a binary with a clean environment: only `PATH`, `HOME` and what the
/// test passes, so nothing of the developer's shell leaks into a test.
pub fn clean_command(program: impl Into<PathBuf>) -> Command {
    let mut cmd = Command::new(program.into());
    cmd.env_clear();
    for keep in ["PATH", "HOME", "LANG"] {
        if let Ok(v) = std::env::var(keep) {
            cmd.env(keep, v);
        }
    }
    cmd
}

/// The moto server's variables for the AWS SDK, for `Command::envs`.
pub fn aws_env() -> Vec<(String, String)> {
    [
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
        "AWS_EC2_METADATA_DISABLED",
    ]
    .iter()
    .map(|n| (n.to_string(), service_var(n)))
    .collect()
}

/// Checks the docs' configuration tables against a binary's real flags, so the
/// documentation cannot drift from `--help`: within the section that starts with
/// `section` (a heading line) in `README.md` or a `docs/*.md` page (the first that has
/// it), every flag must have a table row naming `--flag`, its environment variable and
/// its default.
pub fn assert_readme_documents(command: clap::Command, section: &str) {
    let heading = format!("\n{section}\n");
    let (page, doc) = docs::pages()
        .into_iter()
        .find(|(_, text)| text.contains(&heading))
        .unwrap_or_else(|| panic!("the docs (README.md, docs/*.md) have no section {section:?}"));
    let start = doc.find(&heading).unwrap_or_default();
    let level = section.chars().take_while(|c| *c == '#').count();
    let rest = &doc[start + section.len() + 2..];
    let end = rest
        .match_indices('\n')
        .find(|(i, _)| {
            let line = &rest[i + 1..];
            let hashes = line.chars().take_while(|c| *c == '#').count();
            hashes > 0 && hashes <= level && line[hashes..].starts_with(' ')
        })
        .map_or(rest.len(), |(i, _)| i);
    let text = &rest[..end];
    let mut args: Vec<clap::Arg> = command.get_arguments().cloned().collect();
    for sub in command.get_subcommands() {
        args.extend(sub.get_arguments().cloned());
    }
    for arg in args {
        let Some(long) = arg.get_long() else { continue };
        if long == "help" || long == "version" {
            continue;
        }
        let row = text
            .lines()
            .find(|l| l.starts_with('|') && l.contains(&format!("`--{long}`")))
            .unwrap_or_else(|| {
                panic!("the docs' section {section:?} ({page}) has no table row for --{long}")
            });
        if let Some(env) = arg.get_env() {
            let env = env.to_string_lossy();
            assert!(
                row.contains(&format!("`{env}`")),
                "the docs' row for --{long} ({page}) lacks `{env}`: {row}"
            );
        }
        for default in arg.get_default_values() {
            let default = default.to_string_lossy();
            // "the package's version" is documented in words; it changes every release.
            if default == env!("CARGO_PKG_VERSION") {
                continue;
            }
            assert!(
                row.contains(&format!("`{default}`")),
                "the docs' row for --{long} ({page}) lacks its default `{default}`: {row}"
            );
        }
    }
}

/// Every event of a CloudWatch Logs stream, oldest first, as (timestamp, message)
/// (GetLogEvents, paginated). Empty while the stream does not exist yet, so it can be
/// polled.
pub async fn log_events(
    client: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
    stream: &str,
) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let Ok(page) = client
            .get_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .start_from_head(true)
            .set_next_token(token.clone())
            .send()
            .await
        else {
            return out;
        };
        let events = page.events();
        out.extend(events.iter().map(|e| {
            (
                e.timestamp().unwrap_or(0),
                e.message().unwrap_or("").to_owned(),
            )
        }));
        let next = page.next_forward_token().map(str::to_owned);
        if events.is_empty() || next == token {
            return out;
        }
        token = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database_in_a_url() {
        assert_eq!(
            replace_dbname("postgres://u:p@h:5/postgres?sslmode=disable", "t1"),
            "postgres://u:p@h:5/t1?sslmode=disable"
        );
        assert_eq!(replace_dbname("postgres://u@h", "t2"), "postgres://u@h/t2");
    }

    #[test]
    fn unique_names_differ() {
        assert_ne!(unique_name("a"), unique_name("a"));
    }
}
