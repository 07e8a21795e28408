//! `DECKHAND_DATABASE_SECRET`: an RDS-style JSON secret (`host, port, username,
//! password, dbname`, as RDS and its rotation functions write them) becomes a
//! `DATABASE_URL` and the libpq `PG*` variables.
//!
//! `port` is often a JSON number, sometimes a string; both work. User, password and
//! database name are percent-encoded in the URL, so a password like `p@ss:w/rd%?`
//! survives every URL parser.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::Value;

use super::value::json_object;

/// The port PostgreSQL listens on when the secret gives none.
const DEFAULT_PORT: u16 = 5432;

/// Everything but RFC 3986's unreserved characters is encoded in userinfo and path.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The variables of a database secret that are connection settings, not secrets: the
/// log sanitizer leaves them alone (redacting the host name or `verify-full` everywhere
/// helps no one). The URL and `PGPASSWORD` carry the password and stay secret.
pub const NOT_SECRET: &[&str] = &["PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGSSLMODE"];

pub fn compose(
    secret_text: &str,
    url_var: &str,
    sslmode: Option<&str>,
) -> Result<Vec<(String, String)>, String> {
    let obj = json_object(secret_text)?;
    let text = |field: &str| -> Result<Option<String>, String> {
        match obj.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("has a \"{field}\" that is not a string")),
        }
    };
    let required = |field: &str| -> Result<String, String> {
        text(field)?.filter(|s| !s.is_empty()).ok_or_else(|| {
            format!("has no \"{field}\" (an RDS secret has host, port, username, password, dbname)")
        })
    };
    if let Some(engine) = text("engine")? {
        if !engine.is_empty() && !engine.contains("postgres") {
            return Err(format!(
                "is for engine {engine:?}; DECKHAND_DATABASE_SECRET needs a PostgreSQL secret"
            ));
        }
    }
    let host = required("host")?;
    let user = required("username")?;
    let password = text("password")?.ok_or_else(|| {
        "has no \"password\" (an RDS secret has host, port, username, password, dbname)".to_owned()
    })?;
    // RDS writes `dbname`; some hand-made secrets say `database`.
    let dbname = match text("dbname")? {
        Some(name) => Some(name),
        None => text("database")?,
    }
    .filter(|s| !s.is_empty());
    let port = match obj.get("port") {
        None | Some(Value::Null) => DEFAULT_PORT,
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p > 0)
            .ok_or("has a \"port\" that is not a port number (1-65535)")?,
        Some(Value::String(s)) => s
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or("has a \"port\" that is not a port number (1-65535)")?,
        Some(_) => return Err("has a \"port\" that is not a port number (1-65535)".into()),
    };
    let url_host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.clone()
    };
    let mut url = format!(
        "postgres://{}:{}@{url_host}:{port}/",
        utf8_percent_encode(&user, COMPONENT),
        utf8_percent_encode(&password, COMPONENT),
    );
    if let Some(db) = &dbname {
        url.extend(utf8_percent_encode(db, COMPONENT));
    }
    if let Some(mode) = sslmode {
        url.push_str("?sslmode=");
        url.push_str(mode);
    }
    let mut vars = vec![
        (url_var.to_owned(), url),
        ("PGHOST".to_owned(), host),
        ("PGPORT".to_owned(), port.to_string()),
        ("PGUSER".to_owned(), user),
        ("PGPASSWORD".to_owned(), password),
    ];
    if let Some(db) = dbname {
        vars.push(("PGDATABASE".to_owned(), db));
    }
    if let Some(mode) = sslmode {
        vars.push(("PGSSLMODE".to_owned(), mode.to_owned()));
    }
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(vars: &'a [(String, String)], name: &str) -> &'a str {
        &vars.iter().find(|(n, _)| n == name).unwrap().1
    }

    #[test]
    fn an_rds_secret_with_a_numeric_port_and_a_hostile_password() {
        let vars = compose(
            r#"{"engine":"postgres","host":"db.example.internal","port":5432,
                "username":"app user","password":"p@ss:w/rd%?","dbname":"app/main"}"#,
            "DATABASE_URL",
            Some("verify-full"),
        )
        .unwrap();
        assert_eq!(
            get(&vars, "DATABASE_URL"),
            "postgres://app%20user:p%40ss%3Aw%2Frd%25%3F@db.example.internal:5432/app%2Fmain?sslmode=verify-full"
        );
        assert_eq!(get(&vars, "PGPASSWORD"), "p@ss:w/rd%?");
        assert_eq!(get(&vars, "PGPORT"), "5432");
        assert_eq!(get(&vars, "PGDATABASE"), "app/main");
        assert_eq!(get(&vars, "PGSSLMODE"), "verify-full");
    }

    #[test]
    fn a_string_port_a_renamed_variable_and_no_dbname() {
        let vars = compose(
            r#"{"host":"::1","port":"6543","username":"u","password":"pw"}"#,
            "POSTGRES_URL",
            None,
        )
        .unwrap();
        assert_eq!(get(&vars, "POSTGRES_URL"), "postgres://u:pw@[::1]:6543/");
        assert!(vars
            .iter()
            .all(|(n, _)| n != "DATABASE_URL" && n != "PGDATABASE"));
        let default_port = compose(
            r#"{"host":"h","username":"u","password":"p"}"#,
            "DATABASE_URL",
            None,
        )
        .unwrap();
        assert_eq!(get(&default_port, "PGPORT"), "5432");
        let database_key = compose(
            r#"{"host":"h","username":"u","password":"p","database":"streamline"}"#,
            "DATABASE_URL",
            None,
        )
        .unwrap();
        assert_eq!(get(&database_key, "PGDATABASE"), "streamline");
        assert_eq!(
            get(&database_key, "DATABASE_URL"),
            "postgres://u:p@h:5432/streamline"
        );
    }

    #[test]
    fn what_is_missing_is_named_and_no_value_is_shown() {
        let e = compose(
            r#"{"host":"h","password":"secret-pw"}"#,
            "DATABASE_URL",
            None,
        )
        .unwrap_err();
        assert!(e.contains("\"username\""), "{e}");
        assert!(!e.contains("secret-pw"));
        let e = compose(
            r#"{"host":"h","username":"u","password":"p","port":"99999"}"#,
            "DATABASE_URL",
            None,
        )
        .unwrap_err();
        assert!(e.contains("port"), "{e}");
        let e = compose(
            r#"{"engine":"mysql","host":"h","username":"u","password":"p"}"#,
            "DATABASE_URL",
            None,
        )
        .unwrap_err();
        assert!(e.contains("mysql"), "{e}");
        assert!(compose("not json", "DATABASE_URL", None)
            .unwrap_err()
            .contains("not a JSON object"));
    }
}
