//! Settings of `healthcheck serve` and `healthcheck probe`, in two steps: [`ServeArgs`]
//! and [`ProbeArgs`] hold the values as given (a flag or its environment variable,
//! through clap), and [`Config::from_args`] / [`ProbeConfig::from_args`] turn them into
//! typed settings. A bad value is reported as `NAME="value" is not valid: reason`.
//!
//! The database settings are pgconn's (`DATABASE_URL`, else `PG*`); this module only
//! decides whether there is a database to check at all.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use hyper::Uri;
use pgconn::{Env, PgConfig};

/// `application_name` of the check's connection, so an operator can tell it apart in
/// `pg_stat_activity`.
pub const APPLICATION_NAME: &str = "deckhand-healthcheck";

/// Where `healthcheck probe` looks unless told otherwise: the liveness path of a server
/// started with the defaults.
pub const DEFAULT_PROBE_URL: &str = "http://127.0.0.1:8080/health/live";

/// Raw settings of `healthcheck serve`. The `agent` flattens this into its own command
/// line, so both binaries read the same variables.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, env = "HEALTH_ADDR", default_value = "0.0.0.0:8080")]
    pub addr: String,

    /// Readiness path for the ALB (e.g. /api/health). Liveness is answered at PATH/live,
    /// and always at /health/live.
    #[arg(long, env = "HEALTH_PATH", default_value = "/health")]
    pub path: String,

    /// Variable that holds the database URL (e.g. POSTGRES_URL). Without it, PGHOST,
    /// PGUSER, PGDATABASE... are used; with neither, the database check is omitted.
    #[arg(long, env = "HEALTH_DB_URL_VAR", default_value = "DATABASE_URL")]
    pub db_url_var: String,

    /// How long one database check is reused; concurrent requests also share one check.
    #[arg(long, env = "HEALTH_DB_CACHE", default_value = "1s")]
    pub db_cache: String,

    /// Longest the database check may take (connect + SELECT 1) before it counts as
    /// unhealthy. Keep it under the ALB's timeout (2 s at the least).
    #[arg(long, env = "HEALTH_DB_TIMEOUT", default_value = "1500ms")]
    pub db_timeout: String,

    /// A database slower than this reports "degraded" (HTTP 200).
    #[arg(long, env = "HEALTH_DB_SLOW", default_value = "500ms")]
    pub db_slow: String,

    /// Memory use above this percentage of the limit reports "degraded" (HTTP 200).
    #[arg(long, env = "HEALTH_MEMORY_DEGRADED_PERCENT", default_value = "90")]
    pub memory_degraded_percent: String,

    /// Root of the cgroup file system the memory limit and use are read from.
    #[arg(long, env = "HEALTH_CGROUP_ROOT", default_value = "/sys/fs/cgroup")]
    pub cgroup_root: PathBuf,

    /// ECS task metadata endpoint v4 (ECS sets it); its task `Limits.Memory` is the
    /// memory limit on Fargate.
    #[arg(long, env = "ECS_CONTAINER_METADATA_URI_V4")]
    pub metadata_uri: Option<String>,

    /// The app must answer this http:// URL with a 2xx for /health to be healthy.
    #[arg(long, env = "HEALTH_APP_URL", conflicts_with = "app_port")]
    pub app_url: Option<String>,

    /// The app must accept TCP connections on this port of 127.0.0.1 for /health to be
    /// healthy.
    #[arg(long, env = "HEALTH_APP_PORT")]
    pub app_port: Option<String>,

    /// Longest the app check may take before it counts as unhealthy.
    #[arg(long, env = "HEALTH_APP_TIMEOUT", default_value = "1s")]
    pub app_timeout: String,

    /// After SIGTERM, answer 503 on PATH this long (so the ALB stops routing here), then
    /// stop.
    #[arg(long, env = "HEALTH_DRAIN", default_value = "5s")]
    pub drain: String,

    /// Reported as "version" in every answer.
    #[arg(long = "app-version", env = "APP_VERSION", default_value = env!("CARGO_PKG_VERSION"))]
    pub version: String,
}

/// Raw settings of `healthcheck probe`.
#[derive(Debug, Clone, clap::Args)]
pub struct ProbeArgs {
    /// URL to GET; any 2xx answer is healthy.
    #[arg(long, env = "HEALTH_PROBE_URL", default_value = DEFAULT_PROBE_URL)]
    pub url: String,

    /// Longest to wait for the whole answer.
    #[arg(long, env = "HEALTH_PROBE_TIMEOUT", default_value = "2s")]
    pub timeout: String,
}

/// Validated settings of the `/health` server.
#[derive(Debug, Clone)]
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
}

/// How the database is checked.
#[derive(Debug, Clone)]
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
#[derive(Debug, Clone)]
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
#[derive(Debug, Clone)]
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
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    pub url: Uri,
    pub timeout: Duration,
}

/// A setting that is not valid. Values that may hold a password are not shown.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name}={value:?} is not valid: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
    #[error(transparent)]
    Database(#[from] pgconn::ConfigError),
}

impl Default for Config {
    /// The documented defaults (those of `healthcheck serve --help`), with no database and
    /// no app check.
    fn default() -> Self {
        Config {
            addr: SocketAddr::from(([0, 0, 0, 0], 8080)),
            path: "/health".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            database: None,
            memory: MemoryConfig {
                metadata_uri: None,
                cgroup_root: PathBuf::from("/sys/fs/cgroup"),
                degraded_percent: 90,
            },
            app: None,
            drain: Duration::from_secs(5),
        }
    }
}

impl DatabaseConfig {
    /// The documented cache, timeout and slow threshold for `pg`.
    pub fn new(pg: PgConfig) -> Self {
        DatabaseConfig {
            pg,
            cache: Duration::from_secs(1),
            timeout: Duration::from_millis(1500),
            slow: Duration::from_millis(500),
        }
    }
}

impl Config {
    /// Validates the raw settings; the database settings come from `env`.
    pub fn from_args(args: &ServeArgs, env: &impl Env) -> Result<Self, ConfigError> {
        let addr = args.addr.parse::<SocketAddr>().map_err(|_| {
            invalid(
                "HEALTH_ADDR",
                &args.addr,
                "must be an IP address and a port, like 0.0.0.0:8080",
            )
        })?;
        let path = validate_path(&args.path)?;
        // Validated even without a database, so a typo shows before the day one is added.
        let db_cache = duration("HEALTH_DB_CACHE", &args.db_cache)?;
        let db_timeout = positive_duration("HEALTH_DB_TIMEOUT", &args.db_timeout)?;
        let db_slow = duration("HEALTH_DB_SLOW", &args.db_slow)?;
        let database = PgConfig::from_env_named(env, &args.db_url_var)?.map(|pg| DatabaseConfig {
            pg: pg.with_default_application_name(APPLICATION_NAME),
            cache: db_cache,
            timeout: db_timeout,
            slow: db_slow,
        });
        let degraded_percent = args
            .memory_degraded_percent
            .parse::<u8>()
            .ok()
            .filter(|p| (1..=100).contains(p))
            .ok_or_else(|| {
                invalid(
                    "HEALTH_MEMORY_DEGRADED_PERCENT",
                    &args.memory_degraded_percent,
                    "must be a whole number from 1 to 100",
                )
            })?;
        let metadata_uri = match &args.metadata_uri {
            Some(uri) if !uri.is_empty() => Some(http_uri("ECS_CONTAINER_METADATA_URI_V4", uri)?),
            _ => None,
        };
        let app_target = match (&args.app_url, &args.app_port) {
            (Some(url), _) if !url.is_empty() => {
                Some(AppTarget::Url(http_uri("HEALTH_APP_URL", url)?))
            }
            (_, Some(port)) if !port.is_empty() => Some(AppTarget::Port(
                port.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| {
                        invalid(
                            "HEALTH_APP_PORT",
                            port,
                            "must be a port number from 1 to 65535",
                        )
                    })?,
            )),
            _ => None,
        };
        let app_timeout = positive_duration("HEALTH_APP_TIMEOUT", &args.app_timeout)?;
        let app = app_target.map(|target| AppConfig {
            target,
            timeout: app_timeout,
        });
        Ok(Config {
            addr,
            path,
            version: args.version.clone(),
            database,
            memory: MemoryConfig {
                metadata_uri,
                cgroup_root: args.cgroup_root.clone(),
                degraded_percent,
            },
            app,
            drain: duration("HEALTH_DRAIN", &args.drain)?,
        })
    }
}

impl ProbeConfig {
    pub fn from_args(args: &ProbeArgs) -> Result<Self, ConfigError> {
        Ok(ProbeConfig {
            url: http_uri("HEALTH_PROBE_URL", &args.url)?,
            timeout: positive_duration("HEALTH_PROBE_TIMEOUT", &args.timeout)?,
        })
    }
}

fn invalid(name: &'static str, value: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        name,
        value: value.into(),
        reason: reason.into(),
    }
}

/// `500ms`, `1s`, `5m`.
fn duration(name: &'static str, value: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(value).map_err(|e| {
        invalid(
            name,
            value,
            &format!("{e}; write a duration like 500ms, 1s or 5m"),
        )
    })
}

fn positive_duration(name: &'static str, value: &str) -> Result<Duration, ConfigError> {
    match duration(name, value)? {
        d if d.is_zero() => Err(invalid(name, value, "must be longer than zero")),
        d => Ok(d),
    }
}

fn validate_path(value: &str) -> Result<String, ConfigError> {
    let ok = value.starts_with('/')
        && value.len() > 1
        && !value.ends_with('/')
        && !value.contains(['?', '#', ' ']);
    if ok {
        Ok(value.into())
    } else {
        Err(invalid(
            "HEALTH_PATH",
            value,
            "must be a path like /health or /api/health (a leading /, no trailing /, no query)",
        ))
    }
}

/// An `http://host[:port]/path` URL; TLS is not needed for loopback and link-local
/// addresses, which are all this crate talks to.
fn http_uri(name: &'static str, value: &str) -> Result<Uri, ConfigError> {
    // A URL may carry user:password@; never echo such a value back.
    let shown = if value.contains('@') {
        "(hidden: it may hold a password)"
    } else {
        value
    };
    let uri = value.parse::<Uri>().map_err(|e| {
        invalid(
            name,
            shown,
            &format!("{e}; write a URL like http://127.0.0.1:3000/"),
        )
    })?;
    if uri.scheme_str() != Some("http") {
        return Err(invalid(
            name,
            shown,
            "must start with http:// (https is not supported here)",
        ));
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid(
            name,
            shown,
            "must name a host, like http://127.0.0.1:3000/",
        ));
    }
    if value.contains('@') {
        return Err(invalid(
            name,
            shown,
            "must not carry a user name or password",
        ));
    }
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn args(extra: &[&str]) -> ServeArgs {
        let mut argv = vec!["healthcheck"];
        argv.extend_from_slice(extra);
        Cli::try_parse_from(argv).expect("arguments parse").serve
    }

    fn no_env() -> HashMap<String, String> {
        HashMap::new()
    }

    fn error(extra: &[&str]) -> String {
        Config::from_args(&args(extra), &no_env())
            .expect_err("must be refused")
            .to_string()
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        let config = Config::from_args(&args(&[]), &no_env()).unwrap();
        let default = Config::default();
        assert_eq!(config.addr, default.addr);
        assert_eq!(config.path, default.path);
        assert_eq!(config.version, default.version);
        assert_eq!(config.drain, default.drain);
        assert_eq!(config.memory.cgroup_root, default.memory.cgroup_root);
        assert_eq!(config.memory.degraded_percent, 90);
        assert!(
            config.database.is_none(),
            "no database configured → no check"
        );
        assert!(config.app.is_none());
    }

    #[test]
    fn database_settings_come_from_the_env_and_get_an_application_name() {
        let env: HashMap<String, String> = [(
            "DATABASE_URL".to_string(),
            "postgres://u:pw@db:5432/app".to_string(),
        )]
        .into();
        let config = Config::from_args(&args(&["--db-timeout", "900ms"]), &env).unwrap();
        let db = config.database.unwrap();
        assert_eq!(db.timeout, Duration::from_millis(900));
        assert_eq!(db.cache, Duration::from_secs(1));
        assert_eq!(db.slow, Duration::from_millis(500));
        assert_eq!(db.pg.application_name.as_deref(), Some(APPLICATION_NAME));

        let env: HashMap<String, String> = [(
            "POSTGRES_URL".to_string(),
            "postgres://u:pw@db:5432/app".to_string(),
        )]
        .into();
        let config = Config::from_args(&args(&["--db-url-var", "POSTGRES_URL"]), &env).unwrap();
        assert_eq!(config.database.unwrap().pg.dbname, "app");
    }

    #[test]
    fn bad_values_name_the_variable_show_the_value_and_state_the_rule() {
        assert_eq!(
            error(&["--addr", "8080"]),
            r#"HEALTH_ADDR="8080" is not valid: must be an IP address and a port, like 0.0.0.0:8080"#
        );
        assert!(error(&["--drain", "5 parsecs"])
            .starts_with(r#"HEALTH_DRAIN="5 parsecs" is not valid: "#));
        assert!(error(&["--path", "health"]).starts_with(r#"HEALTH_PATH="health" is not valid"#));
        assert!(error(&["--path", "/health/"]).contains("no trailing /"));
        assert!(error(&["--memory-degraded-percent", "120"]).contains("from 1 to 100"));
        assert!(error(&["--app-port", "70000"]).starts_with(r#"HEALTH_APP_PORT="70000""#));
        assert!(error(&["--app-url", "https://x/"]).contains("http://"));
        assert!(error(&["--app-port", "3000", "--app-timeout", "0s"]).contains("longer than zero"));
        assert!(error(&["--db-timeout", "soon"])
            .starts_with(r#"HEALTH_DB_TIMEOUT="soon" is not valid"#));
    }

    #[test]
    fn a_url_with_a_password_is_refused_without_showing_it() {
        let text = error(&["--app-url", "http://user:hunter2@127.0.0.1:3000/"]);
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("HEALTH_APP_URL"), "{text}");
    }

    #[test]
    fn app_url_and_port_are_mutually_exclusive() {
        let cli = Cli::try_parse_from([
            "healthcheck",
            "--app-url",
            "http://127.0.0.1:3000/",
            "--app-port",
            "3000",
        ]);
        assert!(cli.is_err());
        let config = Config::from_args(&args(&["--app-port", "3000"]), &no_env()).unwrap();
        assert_eq!(config.app.unwrap().target, AppTarget::Port(3000));
    }

    #[test]
    fn probe_settings() {
        let probe = ProbeConfig::from_args(&ProbeArgs {
            url: DEFAULT_PROBE_URL.into(),
            timeout: "2s".into(),
        })
        .unwrap();
        assert_eq!(probe.timeout, Duration::from_secs(2));
        assert_eq!(probe.url.port_u16(), Some(8080));
        let bad = ProbeConfig::from_args(&ProbeArgs {
            url: "127.0.0.1:8080/health".into(),
            timeout: "2s".into(),
        });
        assert!(bad
            .unwrap_err()
            .to_string()
            .starts_with("HEALTH_PROBE_URL="));
    }
}
