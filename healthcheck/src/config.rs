//! Settings of `healthcheck serve` and `healthcheck probe`. [`ServeArgs`] and
//! [`ProbeArgs`] declare the flags and their variables (so `--help` and docs/healthcheck.md show
//! them, with the defaults of [`default`]); [`Config::from_env`] and
//! [`ProbeConfig::from_env`] read and validate the values from a [`conventions::Env`],
//! reporting every bad one as `NAME="value" is not valid: reason`.
//!
//! The standalone binary hands `from_env` its command line over the process environment
//! ([`conventions::CommandLine`]: a flag wins over its variable, and an error names the
//! flag as typed). The `agent` does not parse these flags: it serves `/health` in
//! process with [`Config::from_env`] over the app's resolved environment, so a
//! `HEALTH_*` setting or a `DATABASE_URL` that came from a secret works.
//!
//! The database settings are pgconn's (`DATABASE_URL`, else `PG*`), read from the same
//! environment; this module only decides whether there is a database to check at all.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use conventions::{parse, Checker, Env, Invalid};
use hyper::Uri;
use pgconn::PgConfig;

use crate::report::Status;

/// `application_name` of the check's connection, so an operator can tell it apart in
/// `pg_stat_activity`.
pub const APPLICATION_NAME: &str = "deckhand-healthcheck";

/// The most `HEALTH_MAX_CONNECTIONS` may be: the limit of open files Fargate gives a
/// container (`nofile`, soft and hard, 65535 by default).
pub const MAX_CONNECTIONS: u32 = 65535;

/// The documented defaults, as `--help` shows them: the flags' `default_value`s, and
/// what an unset variable means to `from_env` (which parses them like a value).
pub mod default {
    pub const ADDR: &str = "0.0.0.0:8080";
    pub const PATH: &str = "/health";
    pub const DB_URL_VAR: &str = "DATABASE_URL";
    pub const DB_CACHE: &str = "1s";
    pub const DB_TIMEOUT: &str = "1500ms";
    pub const DB_SLOW: &str = "500ms";
    pub const MEMORY_DEGRADED_PERCENT: &str = "90";
    pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";
    pub const APP_TIMEOUT: &str = "1s";
    pub const DRAIN: &str = "5s";
    pub const MIGRATIONS_PENDING: &str = "degraded";
    pub const LOGS_MAX_LAG: &str = "60s";
    pub const SHOW_DETAILS: &str = "always";
    pub const MAX_CONNECTIONS: &str = "256";
    /// healthcheck's own version.
    pub const VERSION: &str = env!("CARGO_PKG_VERSION");
    /// Where `healthcheck probe` looks unless told otherwise: the liveness path of a
    /// server started with the defaults.
    pub const PROBE_URL: &str = "http://127.0.0.1:8080/health/live";
    pub const PROBE_TIMEOUT: &str = "2s";
}

/// The flags of `healthcheck serve`, for the command line and `--help`. The values are
/// read by [`Config::from_env`] from the environment under the command line, not from
/// these fields.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, env = "HEALTH_ADDR", default_value = default::ADDR)]
    pub addr: String,

    /// Readiness path for the ALB (e.g. /api/health). Liveness is answered at PATH/live,
    /// and always at /health/live.
    #[arg(long, env = "HEALTH_PATH", default_value = default::PATH)]
    pub path: String,

    /// Variable that holds the database URL (e.g. POSTGRES_URL). Without it, PGHOST,
    /// PGUSER, PGDATABASE... are used; with neither, the database check is omitted.
    #[arg(long, env = "HEALTH_DB_URL_VAR", default_value = default::DB_URL_VAR)]
    pub db_url_var: String,

    /// How long one database check is reused; concurrent requests also share one check.
    #[arg(long, env = "HEALTH_DB_CACHE", default_value = default::DB_CACHE)]
    pub db_cache: String,

    /// Longest the database check may take (connect + SELECT 1) before it counts as
    /// unhealthy. Keep it under the ALB's timeout (2 s at the least).
    #[arg(long, env = "HEALTH_DB_TIMEOUT", default_value = default::DB_TIMEOUT)]
    pub db_timeout: String,

    /// A database slower than this reports "degraded" (HTTP 200).
    #[arg(long, env = "HEALTH_DB_SLOW", default_value = default::DB_SLOW)]
    pub db_slow: String,

    /// Memory use above this percentage of the limit reports "degraded" (HTTP 200).
    #[arg(long, env = "HEALTH_MEMORY_DEGRADED_PERCENT", default_value = default::MEMORY_DEGRADED_PERCENT)]
    pub memory_degraded_percent: String,

    /// Root of the cgroup file system the memory limit and use are read from.
    #[arg(long, env = "HEALTH_CGROUP_ROOT", default_value = default::CGROUP_ROOT)]
    pub cgroup_root: String,

    /// ECS task metadata endpoint v4 (ECS sets it); its task `Limits.Memory` is the
    /// memory limit on Fargate.
    #[arg(long, env = aws::ecs::METADATA_URI_VAR)]
    pub metadata_uri: Option<String>,

    /// The app must answer this http:// URL with a 2xx for /health to be healthy.
    #[arg(long, env = "HEALTH_APP_URL", conflicts_with = "app_port")]
    pub app_url: Option<String>,

    /// The app must accept TCP connections on this port of 127.0.0.1 for /health to be
    /// healthy.
    #[arg(long, env = "HEALTH_APP_PORT")]
    pub app_port: Option<String>,

    /// Longest the app check may take before it counts as unhealthy.
    #[arg(long, env = "HEALTH_APP_TIMEOUT", default_value = default::APP_TIMEOUT)]
    pub app_timeout: String,

    /// After SIGTERM, answer 503 on PATH this long (so the ALB stops routing here), then
    /// stop.
    #[arg(long, env = "HEALTH_DRAIN", default_value = default::DRAIN)]
    pub drain: String,

    /// Reported as "version" in every answer.
    #[arg(long = "app-version", env = "APP_VERSION", default_value = default::VERSION)]
    pub version: String,

    /// Folder of the V{n}__{name}.sql migrations: /health then reports the schema version
    /// (checks.migrations). Unset: MIGRATIONS_DIR (migrate's), else no check. Needs the
    /// database.
    #[arg(long, env = "HEALTH_MIGRATIONS_DIR")]
    pub migrations_dir: Option<String>,

    /// What pending migrations make /health: degraded (HTTP 200) or unhealthy (503, for a
    /// service that must not serve an old schema). Drift is always unhealthy.
    #[arg(long, env = "HEALTH_MIGRATIONS_PENDING", default_value = default::MIGRATIONS_PENDING)]
    pub migrations_pending: String,

    /// Under the agent with a log group: delivery to CloudWatch Logs behind by more than
    /// this, or events dropped within it, reports degraded (never unhealthy).
    #[arg(long, env = "HEALTH_LOGS_MAX_LAG", default_value = default::LOGS_MAX_LAG)]
    pub logs_max_lag: String,

    /// What any caller sees: always (everything) or status (the same shape, statuses and
    /// figures, but no error texts).
    #[arg(long, env = "HEALTH_SHOW_DETAILS", default_value = default::SHOW_DETAILS)]
    pub show_details: String,

    /// Most connections served at once; one more is closed at once, unanswered, so that
    /// no caller can hold every file descriptor of the process.
    #[arg(long, env = "HEALTH_MAX_CONNECTIONS", default_value = default::MAX_CONNECTIONS)]
    pub max_connections: String,
}

/// The flags of `healthcheck probe`; [`ProbeConfig::from_env`] reads the values.
#[derive(Debug, Clone, clap::Args)]
pub struct ProbeArgs {
    /// URL to GET; any 2xx answer is healthy.
    #[arg(long, env = "HEALTH_PROBE_URL", default_value = default::PROBE_URL)]
    pub url: String,

    /// Longest to wait for the whole answer.
    #[arg(long, env = "HEALTH_PROBE_TIMEOUT", default_value = default::PROBE_TIMEOUT)]
    pub timeout: String,
}

/// Validated settings of the `/health` server.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where `healthcheck serve` binds; [`crate::run`] takes an already bound listener,
    /// so tests and the agent choose their own.
    pub addr: SocketAddr,
    /// The readiness path the ALB checks; several deployments use `/api/health`.
    pub path: String,
    /// `version` in the body: the app's release, so a dashboard shows which one answers.
    pub version: String,
    /// `None` when no database is configured: the check is omitted, not faked.
    pub database: Option<DatabaseConfig>,
    pub memory: MemoryConfig,
    /// `None` unless `HEALTH_APP_URL` or `HEALTH_APP_PORT` is set.
    pub app: Option<AppConfig>,
    /// How long `/health` answers 503 after draining starts, before the server stops:
    /// long enough for the ALB to see the target fail.
    pub drain: Duration,
    /// `None` unless `HEALTH_MIGRATIONS_DIR` or `MIGRATIONS_DIR` is set (and there is a
    /// database): the schema version is then part of readiness.
    pub migrations: Option<MigrationsConfig>,
    /// Log delivery (under the agent) further behind than this is "degraded"; the same
    /// window decides whether drops are recent.
    pub logs_max_lag: Duration,
    /// Whether error texts go into the body: they can name the database's user, its
    /// name and the client's address, which an anonymous caller need not learn.
    pub details: Details,
    /// Connections served at once: each holds a file descriptor (under the agent, of the
    /// process that also reads the app's output and ships it), and a caller that opens
    /// connections and never finishes a request holds each until hyper's header timeout.
    pub max_connections: usize,
}

/// How the schema version is checked: the migration files against the history table.
#[derive(Debug, Clone, PartialEq)]
pub struct MigrationsConfig {
    /// Where the `V{n}__{name}.sql` files are (the image's own copy).
    pub dir: PathBuf,
    /// What pending migrations make the answer: [`Status::Degraded`] (still routed) or
    /// [`Status::Unhealthy`] (for a service that must not serve an old schema).
    pub pending: Status,
    /// `MIGRATE_ALLOW_MISSING`: an applied version whose file is gone is not drift, as
    /// `migrate up` tolerates it then (else every task would stay 503).
    pub allow_missing: bool,
}

/// `HEALTH_SHOW_DETAILS`: what every caller of `/health` may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Details {
    /// Everything, error texts included (the default, as before the setting existed).
    Always,
    /// The same shape, statuses and figures, without error texts.
    Status,
}

/// How the database is checked.
#[derive(Debug, Clone, PartialEq)]
pub struct DatabaseConfig {
    /// Connection settings; `Debug` and `Display` never show the password.
    pub pg: PgConfig,
    /// How long a result is reused, so the database sees at most one query per interval
    /// whatever the ALB's request rate.
    pub cache: Duration,
    /// Bound on connect + query, so the answer comes back in time even when the database
    /// hangs.
    pub timeout: Duration,
    /// Answers slower than this are "degraded".
    pub slow: Duration,
}

/// Where memory figures come from.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryConfig {
    /// The ECS task metadata endpoint v4: on Fargate the only place that knows the task's
    /// real limit (the container cgroup may show none).
    pub metadata_uri: Option<Uri>,
    /// `/sys/fs/cgroup` in production; tests point it at a fake tree.
    pub cgroup_root: PathBuf,
    /// Use above this percentage of the limit is "degraded".
    pub degraded_percent: u8,
}

/// The optional check that the app itself is up.
#[derive(Debug, Clone, PartialEq)]
pub struct AppConfig {
    pub target: AppTarget,
    /// Bound on the check, like the database's.
    pub timeout: Duration,
}

/// What "the app is up" means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppTarget {
    /// An http:// URL that answers 2xx.
    Url(Uri),
    /// A port on 127.0.0.1 that accepts TCP connections.
    Port(u16),
}

/// Validated settings of `healthcheck probe`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeConfig {
    pub url: Uri,
    pub timeout: Duration,
}

impl Default for Config {
    /// The documented defaults (those of `healthcheck serve --help`), with no database and
    /// no app check.
    fn default() -> Self {
        Config::read(&mut Checker::new(&no_variables()))
    }
}

impl DatabaseConfig {
    /// The documented cache, timeout and slow threshold for `pg`.
    pub fn new(pg: PgConfig) -> Self {
        let timing = Timing::read(&mut Checker::new(&no_variables()));
        timing.of(pg)
    }
}

/// The database check's own settings, read whether or not there is a database.
struct Timing {
    cache: Duration,
    timeout: Duration,
    slow: Duration,
}

impl Timing {
    fn read<E: Env + ?Sized>(c: &mut Checker<'_, E>) -> Self {
        Timing {
            cache: c.get("HEALTH_DB_CACHE", default::DB_CACHE, parse::duration),
            timeout: c.get(
                "HEALTH_DB_TIMEOUT",
                default::DB_TIMEOUT,
                parse::positive_duration,
            ),
            slow: c.get("HEALTH_DB_SLOW", default::DB_SLOW, parse::duration),
        }
    }

    fn of(self, pg: PgConfig) -> DatabaseConfig {
        DatabaseConfig {
            pg,
            cache: self.cache,
            timeout: self.timeout,
            slow: self.slow,
        }
    }
}

impl Config {
    /// Reads the `HEALTH_*` settings, `APP_VERSION`, `ECS_CONTAINER_METADATA_URI_V4` and
    /// the database's (pgconn's) from `env`; every bad value is reported.
    pub fn from_env(env: &impl Env) -> Result<Self, Vec<Invalid>> {
        Checker::read(env, Config::read)
    }

    /// Reads the same settings into `c`, with a program's own; a bad value is recorded
    /// there, and [`Checker::finish`] refuses the result.
    pub fn read<E: Env + ?Sized>(c: &mut Checker<'_, E>) -> Self {
        // `SocketAddr` has no `Default`: a bad value is recorded and this one never used.
        let addr = c
            .get("HEALTH_ADDR", default::ADDR, |s| {
                parse::socket_addr(s).map(Some)
            })
            .unwrap_or(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
        let path = c.get("HEALTH_PATH", default::PATH, health_path);
        let url_var = c.get(
            "HEALTH_DB_URL_VAR",
            default::DB_URL_VAR,
            parse::variable_name,
        );
        let pg = PgConfig::read(c, &url_var);
        // Read even without a database, so a typo shows before the day one is added.
        let timing = Timing::read(c);
        let migrations = MigrationsConfig::read(c, pg.is_some());
        let memory = MemoryConfig {
            metadata_uri: http_uri_setting(c, aws::ecs::METADATA_URI_VAR, None),
            cgroup_root: c.get("HEALTH_CGROUP_ROOT", default::CGROUP_ROOT, |s| {
                Ok(PathBuf::from(s))
            }),
            degraded_percent: c.get(
                "HEALTH_MEMORY_DEGRADED_PERCENT",
                default::MEMORY_DEGRADED_PERCENT,
                parse::percent,
            ),
        };
        let app_target = match http_uri_setting(c, "HEALTH_APP_URL", None) {
            Some(url) => {
                if let Some(port) = c.raw("HEALTH_APP_PORT") {
                    let url = c.origin("HEALTH_APP_URL");
                    c.push(Invalid::new(
                        c.origin("HEALTH_APP_PORT"),
                        port,
                        format!("cannot be used with {url}: set one of the two"),
                    ));
                }
                Some(AppTarget::Url(url))
            }
            None => c
                .optional("HEALTH_APP_PORT", parse::port)
                .map(AppTarget::Port),
        };
        let app_timeout = c.get(
            "HEALTH_APP_TIMEOUT",
            default::APP_TIMEOUT,
            parse::positive_duration,
        );
        Config {
            addr,
            path,
            version: c.get("APP_VERSION", default::VERSION, |s| Ok(s.to_owned())),
            database: pg.map(|pg| timing.of(pg.with_default_application_name(APPLICATION_NAME))),
            memory,
            app: app_target.map(|target| AppConfig {
                target,
                timeout: app_timeout,
            }),
            drain: c.get("HEALTH_DRAIN", default::DRAIN, parse::duration),
            migrations,
            logs_max_lag: c.get(
                "HEALTH_LOGS_MAX_LAG",
                default::LOGS_MAX_LAG,
                parse::positive_duration,
            ),
            details: match c.get("HEALTH_SHOW_DETAILS", default::SHOW_DETAILS, |s| {
                parse::one_of(s, &["always", "status"])
            }) {
                "status" => Details::Status,
                _ => Details::Always,
            },
            max_connections: c.get("HEALTH_MAX_CONNECTIONS", default::MAX_CONNECTIONS, |s| {
                parse::count(s)
                    .ok()
                    .filter(|n| (1..=MAX_CONNECTIONS).contains(n))
                    .map(|n| n as usize)
                    .ok_or_else(|| format!("must be a whole number from 1 to {MAX_CONNECTIONS}"))
            }),
        }
    }
}

impl MigrationsConfig {
    /// `HEALTH_MIGRATIONS_DIR`, else `MIGRATIONS_DIR` (what `migrate` and the agent's
    /// `DECKHAND_MIGRATE_ON_START` read), with `HEALTH_MIGRATIONS_PENDING` and
    /// `MIGRATE_ALLOW_MISSING`. Without a database there is nothing to compare the files
    /// with: `HEALTH_MIGRATIONS_DIR` is then refused, `MIGRATIONS_DIR` (set for other
    /// reasons too) only ignored.
    fn read<E: Env + ?Sized>(c: &mut Checker<'_, E>, database: bool) -> Option<Self> {
        let pending = match c.get(
            "HEALTH_MIGRATIONS_PENDING",
            default::MIGRATIONS_PENDING,
            |s| parse::one_of(s, &["degraded", "unhealthy"]),
        ) {
            "unhealthy" => Status::Unhealthy,
            _ => Status::Degraded,
        };
        let (dir, asked) = match c.raw("HEALTH_MIGRATIONS_DIR") {
            Some(dir) => (dir, true),
            None => (c.raw("MIGRATIONS_DIR")?, false),
        };
        if !database {
            if asked {
                c.push(Invalid::new(
                    c.origin("HEALTH_MIGRATIONS_DIR"),
                    &dir,
                    "needs a database to compare the files with: set DATABASE_URL (or the \
                     variable HEALTH_DB_URL_VAR names) or the PG* variables, or unset it",
                ));
            }
            return None;
        }
        Some(MigrationsConfig {
            dir: PathBuf::from(dir),
            pending,
            allow_missing: c.value("MIGRATE_ALLOW_MISSING", false, parse::boolean),
        })
    }
}

impl ProbeConfig {
    /// Reads `HEALTH_PROBE_URL` and `HEALTH_PROBE_TIMEOUT` from `env`; every bad value is
    /// reported.
    pub fn from_env(env: &impl Env) -> Result<Self, Vec<Invalid>> {
        Checker::read(env, ProbeConfig::read)
    }

    /// Reads the same settings into `c`, as [`Config::read`] does.
    pub fn read<E: Env + ?Sized>(c: &mut Checker<'_, E>) -> Self {
        let url = http_uri_setting(c, "HEALTH_PROBE_URL", Some(default::PROBE_URL));
        ProbeConfig {
            url: url.unwrap_or_default(),
            timeout: c.get(
                "HEALTH_PROBE_TIMEOUT",
                default::PROBE_TIMEOUT,
                parse::positive_duration,
            ),
        }
    }
}

/// Where the documented defaults are read from.
fn no_variables() -> BTreeMap<String, String> {
    BTreeMap::new()
}

fn health_path(value: &str) -> Result<String, String> {
    let ok = value.starts_with('/')
        && value.len() > 1
        && !value.ends_with('/')
        && !value.contains(['?', '#', ' ']);
    if ok {
        Ok(value.into())
    } else {
        Err(
            "must be a path like /health or /api/health (a leading /, no trailing /, no query)"
                .into(),
        )
    }
}

/// The http:// URL in `var` (or `default` when unset). A URL may carry
/// `user:password@`: such a value is never shown.
fn http_uri_setting<E: Env + ?Sized>(
    c: &mut Checker<'_, E>,
    var: &str,
    default: Option<&str>,
) -> Option<Uri> {
    let value = c.raw(var).or_else(|| default.map(str::to_owned))?;
    let shown = if value.contains('@') {
        Invalid::HIDDEN
    } else {
        &value
    };
    c.check(var, shown, http_uri(&value))
}

/// An `http://host[:port]/path` URL; TLS is not needed for loopback and link-local
/// addresses, which are all this crate talks to.
fn http_uri(value: &str) -> Result<Uri, String> {
    let uri = value
        .parse::<Uri>()
        .map_err(|e| format!("{e}; write a URL like http://127.0.0.1:3000/"))?;
    if uri.scheme_str() != Some("http") {
        return Err("must start with http:// (https is not supported here)".into());
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("must name a host, like http://127.0.0.1:3000/".into());
    }
    if value.contains('@') {
        return Err("must not carry a user name or password".into());
    }
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};
    use conventions::CommandLine;

    use super::*;
    use crate::cli::Cli;

    /// The one error of `vars`.
    fn error(vars: &[(&str, &str)]) -> String {
        let errors = Config::from_env(&vars).expect_err("must be refused");
        assert_eq!(errors.len(), 1, "{errors:?}");
        errors[0].to_string()
    }

    #[test]
    fn the_connection_limit_is_a_count_a_process_can_hold() {
        let read = |v: &str| Config::from_env(&[("HEALTH_MAX_CONNECTIONS", v)]);
        assert_eq!(read("1").unwrap().max_connections, 1);
        assert_eq!(read(" 65535 ").unwrap().max_connections, 65535);
        for bad in ["0", "-1", "65536", "4294967296", "lots"] {
            let message = error(&[("HEALTH_MAX_CONNECTIONS", bad)]);
            assert_eq!(
                message,
                format!(
                    "HEALTH_MAX_CONNECTIONS={bad:?} is not valid: must be a whole number from 1 to 65535"
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        let config = Config::from_env(&no_variables()).unwrap();
        let default = Config::default();
        assert_eq!(config, default);
        assert_eq!(config.addr, SocketAddr::from(([0, 0, 0, 0], 8080)));
        assert_eq!(config.path, "/health");
        assert_eq!(config.version, env!("CARGO_PKG_VERSION"));
        assert_eq!(config.drain, Duration::from_secs(5));
        assert_eq!(config.max_connections, 256);
        assert_eq!(config.memory.cgroup_root, PathBuf::from("/sys/fs/cgroup"));
        assert_eq!(config.memory.degraded_percent, 90);
        assert!(
            config.database.is_none(),
            "no database configured → no check"
        );
        assert!(config.app.is_none());
    }

    /// What `--help` shows is what an unset variable means.
    #[test]
    fn the_help_defaults_are_the_from_env_defaults() {
        let documented = conventions::env::documented_defaults(&Cli::command());
        assert!(
            documented.contains_key("HEALTH_DB_TIMEOUT"),
            "{documented:?}"
        );
        assert_eq!(
            Config::from_env(&documented).unwrap(),
            Config::from_env(&no_variables()).unwrap()
        );
        assert_eq!(
            ProbeConfig::from_env(&documented).unwrap(),
            ProbeConfig::from_env(&no_variables()).unwrap()
        );
        let db = DatabaseConfig::new(PgConfig::from_url("postgres://u@h/d").unwrap());
        assert_eq!(db.cache, Duration::from_secs(1));
        assert_eq!(db.timeout, Duration::from_millis(1500));
        assert_eq!(db.slow, Duration::from_millis(500));
    }

    /// `HEALTH_DB_TIMEOUT=18446744073709551615s` was taken, and each check then panicked
    /// adding it to the clock: `/health` never answered again. Every duration setting
    /// now has the one limit.
    #[test]
    fn a_duration_past_any_use_is_refused_by_name() {
        for name in [
            "HEALTH_DB_TIMEOUT",
            "HEALTH_DB_CACHE",
            "HEALTH_DB_SLOW",
            "HEALTH_DRAIN",
            "HEALTH_APP_TIMEOUT",
            "HEALTH_LOGS_MAX_LAG",
        ] {
            let said = error(&[
                ("DATABASE_URL", "postgres://u@db/app"),
                ("HEALTH_APP_PORT", "3000"),
                (name, "18446744073709551615s"),
            ]);
            assert_eq!(
                said,
                format!(
                    "{name}=\"18446744073709551615s\" is not valid: must be at most 365 \
                     days (e.g. 10s, 5m or 2h)"
                )
            );
        }
    }

    #[test]
    fn database_settings_come_from_the_env_and_get_an_application_name() {
        let config = Config::from_env(&[
            ("DATABASE_URL", "postgres://u:pw@db:5432/app"),
            ("HEALTH_DB_TIMEOUT", "900ms"),
        ])
        .unwrap();
        let db = config.database.unwrap();
        assert_eq!(db.timeout, Duration::from_millis(900));
        assert_eq!(db.cache, Duration::from_secs(1));
        assert_eq!(db.slow, Duration::from_millis(500));
        assert_eq!(db.pg.application_name.as_deref(), Some(APPLICATION_NAME));

        let config = Config::from_env(&[
            ("POSTGRES_URL", "postgres://u:pw@db:5432/app"),
            ("HEALTH_DB_URL_VAR", "POSTGRES_URL"),
        ])
        .unwrap();
        assert_eq!(config.database.unwrap().pg.dbname, "app");
    }

    #[test]
    fn bad_values_name_the_variable_show_the_value_and_state_the_rule() {
        assert_eq!(
            error(&[("HEALTH_ADDR", "8080")]),
            r#"HEALTH_ADDR="8080" is not valid: must be an IP address and a port, like 0.0.0.0:8080 (a host name is not accepted)"#
        );
        assert!(error(&[("HEALTH_DRAIN", "5 parsecs")])
            .starts_with(r#"HEALTH_DRAIN="5 parsecs" is not valid: "#));
        assert!(
            error(&[("HEALTH_PATH", "health")]).starts_with(r#"HEALTH_PATH="health" is not valid"#)
        );
        assert!(error(&[("HEALTH_PATH", "/health/")]).contains("no trailing /"));
        assert!(error(&[("HEALTH_MEMORY_DEGRADED_PERCENT", "120")]).contains("from 1 to 100"));
        assert!(error(&[("HEALTH_APP_PORT", "70000")]).starts_with(r#"HEALTH_APP_PORT="70000""#));
        assert!(error(&[("HEALTH_APP_URL", "https://x/")]).contains("http://"));
        assert!(
            error(&[("HEALTH_APP_PORT", "3000"), ("HEALTH_APP_TIMEOUT", "0s")])
                .contains("longer than zero")
        );
        assert!(error(&[("HEALTH_DB_TIMEOUT", "soon")])
            .starts_with(r#"HEALTH_DB_TIMEOUT="soon" is not valid"#));
        assert!(
            error(&[("ECS_CONTAINER_METADATA_URI_V4", "169.254.170.2/v4")])
                .starts_with("ECS_CONTAINER_METADATA_URI_V4=")
        );
    }

    #[test]
    fn every_bad_value_is_reported_the_database_s_too() {
        let errors = Config::from_env(&[
            ("HEALTH_ADDR", "8080"),
            ("HEALTH_DB_CACHE", "soon"),
            ("DATABASE_URL", "postgres://u:pw@db:0/app"),
            ("HEALTH_DRAIN", "later"),
        ])
        .unwrap_err();
        let names: Vec<&str> = errors.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "HEALTH_ADDR",
                "DATABASE_URL",
                "HEALTH_DB_CACHE",
                "HEALTH_DRAIN"
            ]
        );
        assert_eq!(errors[1].value, Invalid::HIDDEN);
    }

    #[test]
    fn a_url_with_a_password_is_refused_without_showing_it() {
        let text = error(&[("HEALTH_APP_URL", "http://user:hunter2@127.0.0.1:3000/")]);
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("HEALTH_APP_URL"), "{text}");
    }

    #[test]
    fn app_url_and_port_are_mutually_exclusive() {
        let cli = Cli::try_parse_from([
            "healthcheck",
            "serve",
            "--app-url",
            "http://127.0.0.1:3000/",
            "--app-port",
            "3000",
        ]);
        assert!(cli.is_err());
        assert!(error(&[
            ("HEALTH_APP_URL", "http://127.0.0.1:3000/"),
            ("HEALTH_APP_PORT", "3000")
        ])
        .starts_with(r#"HEALTH_APP_PORT="3000" is not valid: cannot be used with HEALTH_APP_URL"#));
        let config = Config::from_env(&[("HEALTH_APP_PORT", "3000")]).unwrap();
        assert_eq!(config.app.unwrap().target, AppTarget::Port(3000));
    }

    /// The binary's way: a flag wins over its variable, and an error names the flag.
    #[test]
    fn a_flag_wins_over_its_variable_and_its_error_names_it() {
        let read = |argv: &[&str]| {
            let vars = [("HEALTH_DRAIN", "1s"), ("HEALTH_PROBE_TIMEOUT", "soon")];
            let (_, env) = CommandLine::try_parse_from::<Cli, _, _>(argv, vars).unwrap();
            env
        };
        let config = Config::from_env(&read(&["healthcheck", "serve", "--drain", "2s"])).unwrap();
        assert_eq!(config.drain, Duration::from_secs(2));
        let errors =
            Config::from_env(&read(&["healthcheck", "serve", "--drain", "x"])).unwrap_err();
        assert!(errors[0]
            .to_string()
            .starts_with(r#"--drain="x" is not valid"#));
        let errors = ProbeConfig::from_env(&read(&["healthcheck", "probe"])).unwrap_err();
        assert!(errors[0]
            .to_string()
            .starts_with(r#"HEALTH_PROBE_TIMEOUT="soon""#));
        let probe = ProbeConfig::from_env(&read(&["healthcheck", "probe", "--timeout", "3s"]));
        assert_eq!(probe.unwrap().timeout, Duration::from_secs(3));
    }

    #[test]
    fn migrations_logs_and_details_settings() {
        let db = ("DATABASE_URL", "postgres://u:pw@db:5432/app");
        let config = Config::from_env(&no_variables()).unwrap();
        assert!(config.migrations.is_none(), "no folder → no check");
        assert_eq!(config.logs_max_lag, Duration::from_secs(60));
        assert_eq!(config.details, Details::Always);

        let config = Config::from_env(&[db, ("MIGRATIONS_DIR", "/app/migrations")]).unwrap();
        let migrations = config.migrations.unwrap();
        assert_eq!(migrations.dir, PathBuf::from("/app/migrations"));
        assert_eq!(migrations.pending, Status::Degraded);
        assert!(!migrations.allow_missing);

        let config = Config::from_env(&[
            db,
            ("MIGRATIONS_DIR", "/elsewhere"),
            ("HEALTH_MIGRATIONS_DIR", "/app/db"),
            ("HEALTH_MIGRATIONS_PENDING", "unhealthy"),
            ("MIGRATE_ALLOW_MISSING", "true"),
            ("HEALTH_LOGS_MAX_LAG", "10s"),
            ("HEALTH_SHOW_DETAILS", "status"),
        ])
        .unwrap();
        let migrations = config.migrations.unwrap();
        assert_eq!(migrations.dir, PathBuf::from("/app/db"));
        assert_eq!(migrations.pending, Status::Unhealthy);
        assert!(migrations.allow_missing);
        assert_eq!(config.logs_max_lag, Duration::from_secs(10));
        assert_eq!(config.details, Details::Status);

        // MIGRATIONS_DIR is migrate's setting too: without a database it is left alone.
        let config = Config::from_env(&[("MIGRATIONS_DIR", "/app/migrations")]).unwrap();
        assert!(config.migrations.is_none());
        assert!(error(&[("HEALTH_MIGRATIONS_DIR", "/app/db")])
            .starts_with(r#"HEALTH_MIGRATIONS_DIR="/app/db" is not valid: needs a database"#));
        assert_eq!(
            error(&[("HEALTH_MIGRATIONS_PENDING", "fatal")]),
            r#"HEALTH_MIGRATIONS_PENDING="fatal" is not valid: must be one of degraded, unhealthy"#
        );
        assert!(
            error(&[("HEALTH_SHOW_DETAILS", "never")]).contains("must be one of always, status")
        );
        assert!(error(&[("HEALTH_LOGS_MAX_LAG", "0s")]).contains("longer than zero"));
    }

    #[test]
    fn probe_settings() {
        let probe = ProbeConfig::from_env(&no_variables()).unwrap();
        assert_eq!(probe.timeout, Duration::from_secs(2));
        assert_eq!(probe.url.port_u16(), Some(8080));
        assert_eq!(probe.url.to_string(), default::PROBE_URL);
        let bad = ProbeConfig::from_env(&[("HEALTH_PROBE_URL", "127.0.0.1:8080/health")]);
        assert!(bad.unwrap_err()[0]
            .to_string()
            .starts_with("HEALTH_PROBE_URL="));
    }
}
