//! `postgres://` URL parsing, libpq's URI form. Errors never echo the URL: it holds the
//! password.

use percent_encoding::percent_decode_str;

use crate::{Password, Raw};

/// Splits a URL into raw settings; the reason on error is safe to print.
pub(crate) fn parse(url: &str) -> Result<Raw, String> {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .ok_or("the scheme must be postgres:// or postgresql://")?;
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match rest.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (rest, None),
    };
    // The password may itself contain '@' when not encoded; the last '@' ends userinfo.
    let (userinfo, hostport) = match authority.rsplit_once('@') {
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
            .map(Password);
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
            .ok_or_else(|| format!("query parameter {key:?} has no value", key = pair))?;
        let value = decode(value, key)?;
        match key {
            "sslmode" => raw.sslmode = Some(value),
            "sslrootcert" => raw.sslrootcert = Some(value),
            "application_name" => raw.application_name = Some(value),
            "connect_timeout" => raw.connect_timeout = Some(value),
            "user" => raw.user = Some(value),
            "password" => raw.password = Some(Password(value)),
            "dbname" => raw.dbname = Some(value),
            "host" => raw.hosts = Some(value.split(',').map(str::to_owned).collect()),
            "port" => raw.port = Some(value),
            other => raw.ignored_params.push(other.to_owned()),
        }
    }
    Ok(raw)
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn decode(s: &str, what: &str) -> Result<String, String> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| format!("the {what} is not valid UTF-8 after percent-decoding"))
}

/// `h1:5432,h2,[::1]:5433` → hosts and the (single) port. libpq allows a port per host;
/// tokio-postgres takes one port for all, so differing ports are refused.
fn split_hosts(s: &str) -> Result<(Vec<String>, Option<String>), String> {
    let mut hosts = Vec::new();
    let mut port: Option<String> = None;
    for part in s.split(',') {
        let (host, p) = if let Some(v6) = part.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or("an IPv6 host is missing its ']'")?;
            (h, after.strip_prefix(':'))
        } else {
            match part.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (part, None),
            }
        };
        if host.is_empty() {
            return Err("a host name is empty".into());
        }
        if let Some(p) = p {
            if port.as_deref().is_some_and(|q| q != p) {
                return Err("all hosts must use the same port".into());
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

    #[test]
    fn full_url() {
        let r = parse("postgresql://u%3Ax:p%40ss%3Aw%2Frd%25%3F@h1:5433,h2:5433/my%20db?sslmode=require&schema=public").unwrap();
        assert_eq!(r.user.as_deref(), Some("u:x"));
        assert_eq!(r.password.unwrap().expose(), "p@ss:w/rd%?");
        assert_eq!(r.hosts.unwrap(), vec!["h1", "h2"]);
        assert_eq!(r.port.as_deref(), Some("5433"));
        assert_eq!(r.dbname.as_deref(), Some("my db"));
        assert_eq!(r.sslmode.as_deref(), Some("require"));
        assert_eq!(r.ignored_params, vec!["schema"]);
    }

    #[test]
    fn ipv6_and_bare() {
        let r = parse("postgres://[::1]:6000/d").unwrap();
        assert_eq!(r.hosts.unwrap(), vec!["::1"]);
        assert_eq!(r.port.as_deref(), Some("6000"));
        let r = parse("postgres://").unwrap();
        assert!(r.hosts.is_none() && r.user.is_none());
    }

    #[test]
    fn unencoded_at_in_password_uses_last_at() {
        let r = parse("postgres://u:p@ss@h/d").unwrap();
        assert_eq!(r.password.unwrap().expose(), "p@ss");
        assert_eq!(r.hosts.unwrap(), vec!["h"]);
    }

    #[test]
    fn errors_do_not_echo_the_url() {
        for bad in [
            "http://u:topsecret@h/d",
            "postgres://u:topsecret@[::1/d",
            "postgres://u:topsecret@a:1,b:2/d",
        ] {
            let e = parse(bad).err().unwrap();
            assert!(!e.contains("topsecret"), "{e}");
        }
    }
}
