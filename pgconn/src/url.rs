//! `postgres://` URL parsing, libpq's URI form.
//!
//! The URL holds the password, so no error carries any text of it: every [`UrlError`] is
//! a fixed sentence that states the rule and the fix. A user name or password with an
//! unencoded `/ ? # @` moves where the host part seems to start, so pieces of the
//! password would land in the host, port, path or query; such a URL is refused (an `@`
//! anywhere after the first `/ ? #`, or a second `@`) instead of guessing, before any
//! part of it is looked at. A port that is not a number is refused without showing it
//! either: a URL that forgot its `@host` puts the password there.
//!
//! This module does not validate values (`sslmode`, timeouts): [`crate::PgConfig`] does,
//! for the URL and the `PG*` variables alike.

use percent_encoding::percent_decode_str;

use crate::{Password, Raw};

/// Why a `postgres://` URL was refused. Never holds any text of the URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("the scheme must be postgres:// or postgresql://")]
    Scheme,
    #[error(
        "the user name or password holds an unencoded '/', '?', '#' or '@' (an '@' may appear \
         only once, right before the host), so where the password ends is ambiguous; \
         percent-encode it: / is %2F, ? is %3F, # is %23, @ is %40"
    )]
    AmbiguousUserInfo,
    #[error(
        "it has a '#' fragment, which PostgreSQL URLs do not use; if the '#' belongs to a \
         value, percent-encode it as %23"
    )]
    Fragment,
    #[error("an IPv6 host is missing its ']'")]
    Ipv6Bracket,
    #[error("a host name is empty")]
    EmptyHost,
    #[error(
        "a port is not a TCP port number (1 to 65535); if the ':' belongs to the password, \
         check that the URL has an '@' before the host"
    )]
    Port,
    #[error("all hosts must use the same port")]
    DifferentPorts,
    #[error("the {0} is not valid UTF-8 after percent-decoding")]
    NotUtf8(&'static str),
    #[error(
        "a query parameter has no value: write key=value pairs joined by '&', and \
         percent-encode '&' as %26 and '=' as %3D inside a value"
    )]
    ParameterWithoutValue,
}

/// Splits a URL into raw settings.
pub(crate) fn parse(url: &str) -> Result<Raw, UrlError> {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .ok_or(UrlError::Scheme)?;
    // The authority ends at the first '/', '?' or '#' (RFC 3986). An '@' after that can
    // only close a user info that held one of them unencoded; a second '@' before it
    // is an unencoded '@'. Either way the split is a guess, so refuse.
    let (authority, tail) = split_at_first(rest, &['/', '?', '#']);
    if tail.contains('@') || authority.matches('@').count() > 1 {
        return Err(UrlError::AmbiguousUserInfo);
    }
    if tail.contains('#') {
        return Err(UrlError::Fragment);
    }
    let (path, query) = match tail.strip_prefix('/') {
        Some(after) => match after.split_once('?') {
            Some((p, q)) => (Some(p), Some(q)),
            None => (Some(after), None),
        },
        None => (None, tail.strip_prefix('?')),
    };
    let (userinfo, hostport) = match authority.split_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };

    let mut raw = Raw::default();
    if let Some(userinfo) = userinfo {
        let (user, password) = match userinfo.split_once(':') {
            Some((u, p)) => (u, Some(p)),
            None => (userinfo, None),
        };
        raw.user = non_empty(decode(user, "user name")?);
        raw.password = password
            .map(|p| decode(p, "password"))
            .transpose()?
            .and_then(non_empty)
            .map(Password::new);
    }
    if !hostport.is_empty() {
        let (hosts, port) = split_hosts(hostport)?;
        raw.hosts = Some(hosts);
        raw.port = port;
    }
    if let Some(path) = path {
        raw.dbname = non_empty(decode(path, "database name")?);
    }
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or(UrlError::ParameterWithoutValue)?;
        let slot = match key {
            "sslmode" => &mut raw.sslmode,
            "sslrootcert" => &mut raw.sslrootcert,
            "application_name" => &mut raw.application_name,
            "connect_timeout" => &mut raw.connect_timeout,
            "user" => &mut raw.user,
            "dbname" => &mut raw.dbname,
            "port" => &mut raw.port,
            "password" => {
                raw.password = Some(Password::new(decode(value, "password")?));
                continue;
            }
            "host" => {
                let hosts = decode(value, "host")?;
                raw.hosts = Some(hosts.split(',').map(str::to_owned).collect());
                continue;
            }
            other => {
                raw.ignored_params.push(shown_parameter(other));
                continue;
            }
        };
        *slot = Some(decode(value, known_parameter(key))?);
    }
    Ok(raw)
}

/// Parameters other tools put in the URL that we do not use: libpq's own and the common
/// ORMs' (Prisma, node-postgres, SQLAlchemy). Callers warn that they are ignored.
const KNOWN_ELSEWHERE: &[&str] = &[
    "schema",
    "connection_limit",
    "pool_timeout",
    "socket_timeout",
    "pgbouncer",
    "statement_cache_size",
    "sslaccept",
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslidentity",
    "sslcrl",
    "sslnegotiation",
    "options",
    "target_session_attrs",
    "load_balance_hosts",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "client_encoding",
    "gssencmode",
    "channel_binding",
    "requiressl",
    "fallback_application_name",
    "service",
    "passfile",
    "hostaddr",
    "ssl",
];

/// The name of an ignored parameter as callers may print it: a name other tools use
/// as it is, anything else not at all. A password with an unencoded `&` in a
/// `password=` parameter turns its tail into a "parameter" name.
fn shown_parameter(name: &str) -> String {
    if KNOWN_ELSEWHERE.contains(&name) {
        name.to_owned()
    } else {
        "(a parameter whose name is not shown: it could be a piece of a password with an unencoded '&'; encode '&' as %26)".to_owned()
    }
}

/// `s` split before the first of `delimiters`; `(s, "")` when there is none.
fn split_at_first<'a>(s: &'a str, delimiters: &[char]) -> (&'a str, &'a str) {
    s.find(delimiters)
        .and_then(|i| s.split_at_checked(i))
        .unwrap_or((s, ""))
}

/// A fixed name for the value of a parameter we use, for error messages.
fn known_parameter(key: &str) -> &'static str {
    match key {
        "sslmode" => "value of sslmode",
        "sslrootcert" => "value of sslrootcert",
        "application_name" => "value of application_name",
        "connect_timeout" => "value of connect_timeout",
        "user" => "value of user",
        "dbname" => "value of dbname",
        "port" => "value of port",
        _ => "value of a query parameter",
    }
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn decode(s: &str, what: &'static str) -> Result<String, UrlError> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| UrlError::NotUtf8(what))
}

/// `h1:5432,h2,[::1]:5433` → hosts and the (single) port. libpq allows a port per host;
/// tokio-postgres takes one port for all, so differing ports are refused.
fn split_hosts(s: &str) -> Result<(Vec<String>, Option<String>), UrlError> {
    let mut hosts = Vec::new();
    let mut port: Option<String> = None;
    for part in s.split(',') {
        let (host, p) = if let Some(v6) = part.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or(UrlError::Ipv6Bracket)?;
            match after.strip_prefix(':') {
                Some(p) => (h, Some(p)),
                None if after.is_empty() => (h, None),
                None => return Err(UrlError::Port),
            }
        } else {
            match part.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (part, None),
            }
        };
        if host.is_empty() {
            return Err(UrlError::EmptyHost);
        }
        // An empty port (`host:`) means the default, as in libpq.
        if let Some(p) = p.filter(|p| !p.is_empty()) {
            let valid =
                p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok_and(|n| n != 0);
            if !valid {
                return Err(UrlError::Port);
            }
            if port.as_deref().is_some_and(|q| q != p) {
                return Err(UrlError::DifferentPorts);
            }
            port = Some(p.to_owned());
        }
        hosts.push(decode(host, "host")?);
    }
    Ok((hosts, port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PgConfig;
    use proptest::prelude::*;

    #[test]
    fn full_url() {
        let r = parse("postgresql://u%3Ax:p%40ss%3Aw%2Frd%25%3F%23@h1:5433,h2:5433/my%20db?sslmode=require&schema=public").unwrap();
        assert_eq!(r.user.as_deref(), Some("u:x"));
        assert_eq!(r.password.unwrap().expose(), "p@ss:w/rd%?#");
        assert_eq!(r.hosts.unwrap(), vec!["h1", "h2"]);
        assert_eq!(r.port.as_deref(), Some("5433"));
        assert_eq!(r.dbname.as_deref(), Some("my db"));
        assert_eq!(r.sslmode.as_deref(), Some("require"));
        assert_eq!(r.ignored_params, vec!["schema"]);
        let r = parse("postgres://u@h/d?password=ab&cdSecretTail=x").unwrap();
        assert!(
            r.ignored_params.iter().all(|p| !p.contains("cdSecret")),
            "{:?}",
            r.ignored_params
        );
    }

    #[test]
    fn ipv6_and_bare() {
        let r = parse("postgres://[::1]:6000/d").unwrap();
        assert_eq!(r.hosts.unwrap(), vec!["::1"]);
        assert_eq!(r.port.as_deref(), Some("6000"));
        let r = parse("postgres://").unwrap();
        assert!(r.hosts.is_none() && r.user.is_none());
        let r = parse("postgres://h?dbname=x").unwrap();
        assert_eq!(r.dbname.as_deref(), Some("x"));
        let r = parse("postgres://u:p@h:/d").unwrap();
        assert_eq!(r.port, None, "an empty port is the default");
    }

    #[test]
    fn a_colon_in_the_password_needs_no_encoding() {
        let r = parse("postgres://u:a:b:c@h:5432/d").unwrap();
        assert_eq!(r.password.unwrap().expose(), "a:b:c");
        assert_eq!(r.hosts.unwrap(), vec!["h"]);
    }

    /// Every way an unencoded delimiter in the password used to leak it: each is refused
    /// with the rule and the fix, and the message holds no piece of the password.
    #[test]
    fn unencoded_delimiters_in_the_password_are_refused_without_echo() {
        for (url, expected) in [
            // The cases: a '/' made the password the port, a '?' made its tail a
            // query parameter.
            (
                "postgres://app:Sup3rS3cret/xyz@host/db",
                UrlError::AmbiguousUserInfo,
            ),
            (
                "postgres://app:abcdSecret?cdSecretTail@127.0.0.1:5432/app",
                UrlError::AmbiguousUserInfo,
            ),
            (
                "postgres://app:Sup3r#S3cret@host:5432/db",
                UrlError::AmbiguousUserInfo,
            ),
            (
                "postgres://app:Sup3r@S3cret@host:5432/db",
                UrlError::AmbiguousUserInfo,
            ),
            (
                "postgres://Sup3rS3cret/xyz@host/db",
                UrlError::AmbiguousUserInfo,
            ),
            (
                "postgres://app:Sup3r@S3cret/x?y#z@host/db",
                UrlError::AmbiguousUserInfo,
            ),
            // A URL that forgot '@host': the password sits where the port goes.
            ("postgres://app:Sup3rS3cret/db", UrlError::Port),
            ("postgres://app:Sup3rS3cret", UrlError::Port),
            ("postgres://u:p@h/db#Sup3rS3cret", UrlError::Fragment),
            (
                "postgres://h/db?password=Sup3r&S3cret",
                UrlError::ParameterWithoutValue,
            ),
            (
                "postgres://u:Sup3r%ffS3cret@h/db",
                UrlError::NotUtf8("password"),
            ),
        ] {
            let error = parse(url)
                .err()
                .unwrap_or_else(|| panic!("{url} must be refused"));
            assert_eq!(error, expected, "{url}");
            let shown = format!("{error} {error:?}");
            for piece in ["Sup3r", "S3cret", "cdSecretTail", "xyz"] {
                assert!(!shown.contains(piece), "{url}: {shown}");
            }
            let config = PgConfig::from_url(url).unwrap_err();
            let shown = format!("{config} {config:?}");
            assert!(
                !shown.contains("S3cret") && !shown.contains("Secret"),
                "{shown}"
            );
        }
        assert!(UrlError::AmbiguousUserInfo
            .to_string()
            .contains("percent-encode it: / is %2F, ? is %3F, # is %23, @ is %40"));
    }

    #[test]
    fn bad_ports_are_refused_without_the_value() {
        for url in [
            "postgres://u:p@h:0/d",
            "postgres://u:p@h:65536/d",
            "postgres://u:p@h:+5/d",
            "postgres://u:p@[::1]x/d",
        ] {
            assert_eq!(parse(url).err(), Some(UrlError::Port), "{url}");
        }
    }

    #[test]
    fn other_errors_do_not_echo_the_url() {
        for bad in [
            "http://u:topsecret@h/d",
            "postgres://u:topsecret@[::1/d",
            "postgres://u:topsecret@a:1,b:2/d",
            "postgres://u:topsecret@,/d",
        ] {
            let e = parse(bad).err().unwrap();
            assert!(!format!("{e} {e:?}").contains("topsecret"), "{e}");
        }
    }

    /// Fixed wording the parser and validation may print whatever the password: a
    /// window of a generated password that also occurs here is not a leak.
    fn own_wording() -> String {
        let mut text = String::from("postgres://user:@host:5432/db?sslmode=require");
        for url in [
            "mysql://x",
            "postgres://a/b@c",
            "postgres://h/d#f",
            "postgres://[h/d",
            "postgres://,/d",
            "postgres://h:x/d",
            "postgres://a:1,b:2/d",
            "postgres://%ff@h/d",
            "postgres://u:%ff@h/d",
            "postgres://h/%ff",
            "postgres://%ff/d",
            "postgres://h/d?k",
            "postgres://u@h/d?sslmode=%ff",
            "postgres://u@h/d?sslmode=on",
            "postgres://u@h/d?connect_timeout=0",
            "postgres://u@h/d?sslmode=verify-full",
            "postgres://h/d",
        ] {
            if let Err(e) = PgConfig::from_url(url) {
                text.push_str(&format!("\n{e}\n{e:?}"));
            }
        }
        text
    }

    /// True if some run of four or more characters of `secret` shows in `shown` and is
    /// not part of the parser's own wording.
    fn leaks(shown: &str, secret: &str, wording: &str) -> bool {
        let chars: Vec<char> = secret.chars().collect();
        chars.windows(4).any(|w| {
            let piece: String = w.iter().collect();
            shown.contains(&piece) && !wording.contains(&piece)
        })
    }

    fn password() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            4 => any::<char>(),
            3 => prop::sample::select(vec!['/', '?', '#', '@', ':', '%', '&', '=', '[', ']', ',']),
            3 => proptest::char::range('a', 'z'),
            1 => proptest::char::range('0', '9'),
        ];
        prop::collection::vec(piece, 0..32).prop_map(|c| c.into_iter().collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Any password, put in unencoded: the URL parses, or the error shows no run of
        /// four characters of it, through `from_url` and `from_env` alike.
        #[test]
        fn no_piece_of_an_unencoded_password_in_any_error(secret in password()) {
            let wording = own_wording();
            let url = format!("postgres://user:{secret}@host:5432/db?sslmode=require");
            let env: std::collections::HashMap<String, String> =
                [("DATABASE_URL".to_string(), url.clone())].into();
            let errors = [
                parse(&url).err().map(|e| format!("{e}\n{e:?}")),
                PgConfig::from_url(&url).err().map(|e| format!("{e}\n{e:?}")),
                PgConfig::from_env(&env).err().map(|e| format!("{e}\n{e:?}")),
            ];
            for shown in errors.into_iter().flatten() {
                prop_assert!(!leaks(&shown, &secret, &wording), "{url:?} → {shown}");
            }
            // A URL that parses must carry the password whole, or percent-decoded.
            if let Ok(config) = PgConfig::from_url(&url) {
                prop_assert_eq!(config.hosts, vec!["host".to_string()]);
                prop_assert_eq!(config.port, 5432);
            }
        }

        #[test]
        fn any_text_parses_or_fails_without_panicking(url in ".*") {
            let _ = parse(&url);
            let _ = PgConfig::from_url(&url);
            let prefixed = format!("postgres://{url}");
            let _ = parse(&prefixed);
            let _ = PgConfig::from_url(&prefixed);
        }
    }
}
