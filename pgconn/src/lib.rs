//! PostgreSQL connection settings, shared by `migrate` and `healthcheck`.
//!
//! Reads `DATABASE_URL` (`postgres://…`), else the libpq variables `PGHOST PGPORT PGUSER
//! PGPASSWORD PGDATABASE PGSSLMODE PGSSLROOTCERT PGAPPNAME PGCONNECT_TIMEOUT`, the way
//! libpq does: what the URL leaves out, the variables fill in. TLS is rustls, with the
//! five `sslmode`s our users know from libpq.
//!
//! The variables are read through [`conventions::Env`] (re-exported here as [`Env`], with
//! [`ProcessEnv`]), so the agent can hand over the app's resolved environment and a test
//! a map. Every bad setting is reported, each as a [`conventions::Invalid`] named after
//! the variable or URL parameter that holds it.
//!
//! This crate only builds settings and opens connections; retry policy belongs to the
//! caller, because `migrate` and a health check want very different ones.

#![forbid(unsafe_code)]

mod tls;
mod url;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use conventions::settings::Report;
use conventions::{parse, Checker, Invalid};

/// Re-exported, so a program that only connects needs no other crate for them.
pub use conventions::{Env, ProcessEnv};
pub use tls::TlsError;
pub use tokio_postgres;
pub use url::UrlError;

/// The port libpq uses when none is given.
const DEFAULT_PORT: u16 = 5432;
/// How long one connection attempt may take unless `connect_timeout` says otherwise.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A password: kept out of every `Debug` and `Display` output.
pub type Password = conventions::Secret;

/// libpq's `sslmode`, minus `allow` (plain first, TLS on refusal), which no managed
/// PostgreSQL needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// Plain TCP only.
    Disable,
    /// TLS when the server offers it, certificate not checked; plain otherwise.
    #[default]
    Prefer,
    /// TLS always; the certificate is checked only when a root certificate is given
    /// (then it behaves as `verify-ca`, as libpq does).
    Require,
    /// TLS, certificate chain checked against the root certificate; host name not.
    VerifyCa,
    /// TLS, chain and host name checked: what RDS with `rds.force_ssl=1` wants.
    VerifyFull,
}

impl FromStr for SslMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "disable" => Ok(Self::Disable),
            "prefer" => Ok(Self::Prefer),
            "require" => Ok(Self::Require),
            "verify-ca" => Ok(Self::VerifyCa),
            "verify-full" => Ok(Self::VerifyFull),
            _ => Err("must be one of disable, prefer, require, verify-ca, verify-full".into()),
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        })
    }
}

/// The trust anchors for `verify-ca` / `verify-full`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    /// A PEM bundle, e.g. the RDS `global-bundle.pem`.
    File(PathBuf),
    /// `sslrootcert=system`: the system bundle (`SSL_CERT_FILE`, else
    /// `/etc/ssl/certs/ca-certificates.crt`).
    System,
}

/// The form a `postgres://` URL is expected in, for its errors.
const EXPECTED_URL: &str = "expected postgres://USER:PASSWORD@HOST:PORT/DBNAME?sslmode=verify-full";

/// Why [`PgConfig::from_url`] refused a URL. Never carries a password: a bad value is
/// shown only for parameters that cannot hold one.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The URL does not parse. `reason` is a fixed sentence: no part of the URL, which
    /// holds the password.
    #[error("DATABASE_URL is not valid: {reason} ({EXPECTED_URL})")]
    Url { reason: UrlError },
    /// It parses, but its parameters break a rule: every one, named.
    #[error(transparent)]
    Invalid(Report),
}

/// Validated connection settings. `Debug` and `Display` never show the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgConfig {
    /// One or more hosts, tried in order (libpq's `host=a,b`).
    pub hosts: Vec<String>,
    pub port: u16,
    pub user: String,
    pub password: Option<Password>,
    pub dbname: String,
    pub sslmode: SslMode,
    pub root_cert: Option<RootCert>,
    /// Shown in `pg_stat_activity`, so an operator can tell which task holds a lock.
    pub application_name: Option<String>,
    pub connect_timeout: Duration,
    /// URL parameters we do not use (e.g. Prisma's `schema`), kept so callers can warn.
    pub ignored_params: Vec<String>,
}

/// Settings gathered before validation; the URL and the variables both write here.
#[derive(Default)]
struct Raw {
    hosts: Option<Vec<String>>,
    port: Option<String>,
    user: Option<String>,
    password: Option<Password>,
    dbname: Option<String>,
    sslmode: Option<String>,
    sslrootcert: Option<String>,
    application_name: Option<String>,
    connect_timeout: Option<String>,
    ignored_params: Vec<String>,
}

impl PgConfig {
    /// Reads `DATABASE_URL`, else the `PG*` variables. `Ok(None)` means no database is
    /// configured at all (neither `DATABASE_URL` nor `PGHOST`/`PGDATABASE`/`PGUSER`).
    pub fn from_env(env: &impl Env) -> Result<Option<Self>, Report> {
        Self::from_env_named(env, "DATABASE_URL")
    }

    /// Like [`PgConfig::from_env`], with the URL in another variable (one reference
    /// deployment calls it `POSTGRES_URL`).
    pub fn from_env_named(env: &impl Env, url_var: &str) -> Result<Option<Self>, Report> {
        Checker::read(env, |c| Self::read(c, url_var)).map_err(Report)
    }

    /// Reads the settings into `c`, with a program's own: `None` when no database is
    /// configured (see [`PgConfig::is_configured`]), or when a value is bad (recorded in
    /// `c`, which then refuses to finish).
    pub fn read<E: Env + ?Sized>(c: &mut Checker<'_, E>, url_var: &str) -> Option<Self> {
        let env = c.env();
        let mut raw = match env.var(url_var) {
            Some(url) => match url::parse(&url) {
                Ok(raw) => raw,
                Err(reason) => {
                    let name = c.origin(url_var);
                    c.push(Invalid::new(
                        name,
                        Invalid::HIDDEN,
                        format!("{reason} ({EXPECTED_URL})"),
                    ));
                    return None;
                }
            },
            None if !Self::is_configured(env, url_var) => return None,
            None => Raw::default(),
        };
        raw.fill_from_env(env);
        match raw.validate() {
            Ok(config) => Some(config),
            Err(errors) => {
                errors.into_iter().for_each(|e| c.push(e));
                None
            }
        }
    }

    /// Whether `env` names a database at all: `url_var`, or one of `PGHOST`, `PGDATABASE`,
    /// `PGUSER` (a `PGPASSWORD` alone does not).
    pub fn is_configured(env: &(impl Env + ?Sized), url_var: &str) -> bool {
        [url_var, "PGHOST", "PGDATABASE", "PGUSER"]
            .iter()
            .any(|n| env.var(n).is_some())
    }

    /// Parses a `postgres://` URL on its own, without consulting any variable.
    pub fn from_url(url: &str) -> Result<Self, ConfigError> {
        url::parse(url)
            .map_err(|reason| ConfigError::Url { reason })?
            .validate()
            .map_err(|errors| ConfigError::Invalid(Report(errors)))
    }

    /// Sets `application_name` unless the configuration already names one.
    pub fn with_default_application_name(mut self, name: &str) -> Self {
        self.application_name.get_or_insert_with(|| name.into());
        self
    }

    /// The same settings with another database name (tests and tools that create one).
    pub fn with_dbname(mut self, dbname: &str) -> Self {
        self.dbname = dbname.into();
        self
    }

    /// Settings for `tokio-postgres`. TLS modes above `require` are enforced by the
    /// connector from [`PgConfig::tls`]; the wire-level mode is `require` for them.
    pub fn tokio_config(&self) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        for host in &self.hosts {
            c.host(host);
        }
        c.port(self.port)
            .user(&self.user)
            .dbname(&self.dbname)
            .connect_timeout(self.connect_timeout)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30))
            .ssl_mode(match self.sslmode {
                SslMode::Disable => tokio_postgres::config::SslMode::Disable,
                SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
                SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                    tokio_postgres::config::SslMode::Require
                }
            });
        if let Some(password) = &self.password {
            c.password(password.expose());
        }
        if let Some(name) = &self.application_name {
            c.application_name(name);
        }
        c
    }

    /// The TLS connector for this configuration's `sslmode` and root certificate.
    pub fn tls(&self) -> Result<tokio_postgres_rustls::MakeRustlsConnect, TlsError> {
        tls::connector(self.sslmode, self.root_cert.as_ref())
    }

    /// Opens one connection and drives it on the current tokio runtime.
    pub async fn connect(&self) -> Result<tokio_postgres::Client, ConnectError> {
        let tls = self.tls()?;
        let (client, connection) = self.tokio_config().connect(tls).await?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "PostgreSQL connection closed with an error: {error}");
            }
        });
        Ok(client)
    }
}

/// Shows the settings as a URL without the password: safe for logs and errors.
impl fmt::Display for PgConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hosts: Vec<String> = self
            .hosts
            .iter()
            .map(|h| {
                if h.contains(':') {
                    format!("[{h}]")
                } else {
                    h.clone()
                }
            })
            .collect();
        write!(
            f,
            "postgres://{}@{}:{}/{}?sslmode={}",
            self.user,
            hosts.join(","),
            self.port,
            self.dbname,
            self.sslmode
        )
    }
}

/// Why a connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("{}", describe(.0))]
    Postgres(#[from] tokio_postgres::Error),
}

impl ConnectError {
    /// True when trying again may help: network errors, timeouts, a server that is
    /// starting up or out of connections. False for wrong credentials, a missing
    /// database or a TLS setting that can never work.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Tls(_) => false,
            Self::Postgres(e) => match e.as_db_error() {
                Some(db) => matches!(db.code().code(), "57P03" | "53300" | "08006" | "08001"),
                None => !describe(e).contains("TLS handshake"),
            },
        }
    }
}

/// One line describing a `tokio_postgres::Error` with its causes (the crate's own
/// `Display` stops at "db error"). Never includes the password: tokio-postgres does not
/// put connection settings into its errors.
pub fn describe(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        );
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

impl Raw {
    /// libpq semantics: a variable supplies what the URL did not say.
    fn fill_from_env(&mut self, env: &(impl Env + ?Sized)) {
        fn fill<T>(slot: &mut Option<T>, value: Option<T>) {
            if slot.is_none() {
                *slot = value;
            }
        }
        fill(
            &mut self.hosts,
            env.var("PGHOST")
                .map(|h| h.split(',').map(str::to_owned).collect()),
        );
        fill(&mut self.port, env.var("PGPORT"));
        fill(&mut self.user, env.var("PGUSER"));
        fill(&mut self.password, env.var("PGPASSWORD").map(Password::new));
        fill(&mut self.dbname, env.var("PGDATABASE"));
        fill(&mut self.sslmode, env.var("PGSSLMODE"));
        fill(&mut self.sslrootcert, env.var("PGSSLROOTCERT"));
        fill(&mut self.application_name, env.var("PGAPPNAME"));
        fill(&mut self.connect_timeout, env.var("PGCONNECT_TIMEOUT"));
    }

    /// The settings, or every rule they break. The names are fixed (`PGPORT`, `sslmode`):
    /// a value may come from the URL or a variable, and no program has flags for them.
    fn validate(self) -> Result<PgConfig, Vec<Invalid>> {
        let names_only = BTreeMap::<String, String>::new();
        let mut c = Checker::new(&names_only);
        let hosts = self.hosts.unwrap_or_else(|| vec!["localhost".into()]);
        if hosts.iter().any(|h| h.starts_with('/')) {
            c.check::<()>(
                "PGHOST",
                &hosts.join(","),
                Err("Unix-domain sockets are not supported; use a TCP host name or address".into()),
            );
        }
        let port = match &self.port {
            None => DEFAULT_PORT,
            Some(p) => c.check("PGPORT", p, parse::port(p)).unwrap_or(DEFAULT_PORT),
        };
        let user = self.user.unwrap_or_else(|| {
            c.push(Invalid::missing(
                "PGUSER",
                "put the user in DATABASE_URL (postgres://USER:PASSWORD@HOST/DB) or set PGUSER",
            ));
            String::new()
        });
        let sslmode = match &self.sslmode {
            None => SslMode::default(),
            Some(m) => c.check("sslmode", m, m.parse()).unwrap_or_default(),
        };
        let root_cert = self.sslrootcert.map(|p| match p.as_str() {
            "system" => RootCert::System,
            _ => RootCert::File(p.into()),
        });
        if matches!(sslmode, SslMode::VerifyCa | SslMode::VerifyFull) && root_cert.is_none() {
            c.push(Invalid::missing(
                "PGSSLROOTCERT",
                tls::no_root_advice(sslmode),
            ));
        }
        let connect_timeout = match &self.connect_timeout {
            None => DEFAULT_CONNECT_TIMEOUT,
            Some(t) => c
                .check("connect_timeout", t, whole_seconds(t))
                .unwrap_or(DEFAULT_CONNECT_TIMEOUT),
        };
        c.finish(PgConfig {
            dbname: self.dbname.unwrap_or_else(|| user.clone()),
            hosts,
            port,
            user,
            password: self.password,
            sslmode,
            root_cert,
            application_name: self.application_name,
            connect_timeout,
            ignored_params: self.ignored_params,
        })
    }
}

/// libpq's `connect_timeout`: whole seconds, above 0.
fn whole_seconds(s: &str) -> Result<Duration, String> {
    s.parse::<u64>()
        .ok()
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
        .ok_or_else(|| "must be whole seconds, above 0".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: [(&str, &str); 0] = [];

    #[test]
    fn nothing_configured_is_none() {
        assert_eq!(PgConfig::from_env(&NONE).unwrap(), None);
        assert_eq!(PgConfig::from_env(&[("PGPASSWORD", "x")]).unwrap(), None);
    }

    #[test]
    fn url_wins_and_variables_fill_gaps() {
        let c = PgConfig::from_env(&[
            (
                "DATABASE_URL",
                "postgres://app:s3cr%40t@db.example:6543/shop",
            ),
            ("PGHOST", "ignored"),
            ("PGSSLMODE", "verify-full"),
            ("PGSSLROOTCERT", "/certs/rds.pem"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(c.hosts, vec!["db.example"]);
        assert_eq!(c.port, 6543);
        assert_eq!(c.user, "app");
        assert_eq!(c.password.as_ref().unwrap().expose(), "s3cr@t");
        assert_eq!(c.dbname, "shop");
        assert_eq!(c.sslmode, SslMode::VerifyFull);
        assert_eq!(c.root_cert, Some(RootCert::File("/certs/rds.pem".into())));
    }

    #[test]
    fn libpq_variables_alone() {
        let c = PgConfig::from_env(&[
            ("PGHOST", "10.0.0.5"),
            ("PGUSER", "roast"),
            ("PGPASSWORD", "pw"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(c.port, 5432);
        assert_eq!(
            c.dbname, "roast",
            "dbname defaults to the user, as in libpq"
        );
        assert_eq!(c.sslmode, SslMode::Prefer);
    }

    #[test]
    fn verify_without_root_cert_is_refused_with_a_hint() {
        let e = PgConfig::from_env(&[("DATABASE_URL", "postgres://u:p@h/d?sslmode=verify-full")])
            .unwrap_err();
        assert!(e.to_string().contains("PGSSLROOTCERT"), "{e}");
    }

    #[test]
    fn bad_sslmode_names_the_rule() {
        let e =
            PgConfig::from_env(&[("DATABASE_URL", "postgres://u:p@h/d?sslmode=on")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "sslmode=\"on\" is not valid: must be one of disable, prefer, require, verify-ca, verify-full"
        );
    }

    #[test]
    fn every_bad_value_is_reported() {
        let errors = PgConfig::from_env(&[
            ("PGHOST", "h"),
            ("PGPORT", "0"),
            ("PGSSLMODE", "on"),
            ("PGCONNECT_TIMEOUT", "soon"),
        ])
        .unwrap_err()
        .0;
        let names: Vec<&str> = errors.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["PGPORT", "PGUSER", "sslmode", "connect_timeout"]);
        assert_eq!(
            errors[0].to_string(),
            r#"PGPORT="0" is not valid: must be a port number from 1 to 65535"#
        );
    }

    #[test]
    fn a_bad_url_is_named_by_its_variable_and_hidden() {
        for var in ["DATABASE_URL", "POSTGRES_URL"] {
            let e = PgConfig::from_env_named(&[(var, "mysql://u:hunter2@h/d")], var)
                .unwrap_err()
                .to_string();
            assert_eq!(
                e,
                format!(
                    "{var}=\"(hidden: it may hold a password)\" is not valid: the scheme must be \
                     postgres:// or postgresql:// ({EXPECTED_URL})"
                )
            );
        }
    }

    #[test]
    fn missing_user_is_refused() {
        let e = PgConfig::from_env(&[("PGHOST", "h")]).unwrap_err();
        assert!(e.to_string().starts_with("PGUSER is not set"), "{e}");
    }

    #[test]
    fn debug_and_display_never_show_the_password() {
        let c = PgConfig::from_url("postgres://app:hunter2-very-secret@h:5432/d?sslmode=require")
            .unwrap();
        let shown = format!("{c} {c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(c.to_string(), "postgres://app@h:5432/d?sslmode=require");
    }

    #[test]
    fn bad_url_error_hides_the_url() {
        let e = PgConfig::from_url("mysql://app:hunter2@h/d").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }
}
