//! The value grammars every setting uses. Each parser takes the trimmed text and returns
//! the value or the reason it is refused, written as the rule and an example, for
//! [`crate::Invalid`].

use std::net::SocketAddr;
use std::time::Duration;

/// The longest duration any setting takes. Longer means nothing to a container (and the
/// programs add a few durations, or one to the clock: `18446744073709551615s` overflowed
/// them).
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// `500ms`, `10s`, `5m`, `1h 30m`; at most [`MAX_DURATION`].
pub fn duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("{e}; write a duration like 500ms, 10s or 5m"))?;
    if d > MAX_DURATION {
        return Err("must be at most 365 days (e.g. 10s, 5m or 2h)".into());
    }
    Ok(d)
}

/// A duration longer than zero.
pub fn positive_duration(s: &str) -> Result<Duration, String> {
    match duration(s)? {
        d if d.is_zero() => Err("must be longer than zero (e.g. 10s)".into()),
        d => Ok(d),
    }
}

/// A duration, or `off` (also `0` or nothing) for none.
pub fn optional_duration(s: &str) -> Result<Option<Duration>, String> {
    match s.trim() {
        "" | "off" | "0" => Ok(None),
        other => duration(other).map(|d| Some(d).filter(|d| !d.is_zero())),
    }
}

/// The one boolean grammar: `true`/`false`, also `1`/`0`, `yes`/`no`, `on`/`off`, in
/// any case. Anything else is refused: `MIGRATE_OUT_OF_ORDER=maybe` must not mean yes.
pub fn boolean(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err("must be true or false (also 1/0, yes/no, on/off)".into()),
    }
}

/// A size in bytes: `1048576`, `512KiB`, `64MiB`, `1GiB` (also `K`, `M`, `G`; `KB`, `MB`,
/// `GB` are powers of 1000).
pub fn bytes(s: &str) -> Result<usize, String> {
    const RULE: &str = "write a size like 64MiB, 512KiB or 1048576";
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: usize = digits.parse().map_err(|_| RULE.to_owned())?;
    let factor: usize = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" => 1 << 10,
        "MiB" | "M" => 1 << 20,
        "GiB" | "G" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => return Err(format!("unknown unit {other:?}; {RULE}")),
    };
    n.checked_mul(factor)
        .ok_or_else(|| format!("too large; {RULE}"))
}

/// An IP address and a port: `0.0.0.0:8080`, `[::]:8080`.
pub fn socket_addr(s: &str) -> Result<SocketAddr, String> {
    s.trim().parse::<SocketAddr>().map_err(|_| {
        "must be an IP address and a port, like 0.0.0.0:8080 (a host name is not accepted)"
            .to_owned()
    })
}

/// A TCP port, 1 to 65535.
pub fn port(s: &str) -> Result<u16, String> {
    s.trim()
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| "must be a port number from 1 to 65535".to_owned())
}

/// A whole percentage, 1 to 100.
pub fn percent(s: &str) -> Result<u8, String> {
    s.trim()
        .parse::<u8>()
        .ok()
        .filter(|p| (1..=100).contains(p))
        .ok_or_else(|| "must be a whole number from 1 to 100".to_owned())
}

/// A whole number (`u32`), for counts such as retries.
pub fn count(s: &str) -> Result<u32, String> {
    s.trim()
        .parse::<u32>()
        .map_err(|_| "must be a whole number from 0 to 4294967295".to_owned())
}

/// One of `choices`, as written.
pub fn one_of<'a>(s: &str, choices: &[&'a str]) -> Result<&'a str, String> {
    let s = s.trim();
    choices
        .iter()
        .copied()
        .find(|c| *c == s)
        .ok_or_else(|| format!("must be one of {}", choices.join(", ")))
}

/// A comma-separated list; blank items are skipped.
pub fn list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|i| !i.is_empty())
        .map(str::to_owned)
        .collect()
}

/// An environment variable's name: not empty, no `=`, NUL or white space.
pub fn variable_name(s: &str) -> Result<String, String> {
    if s.is_empty() || s.contains(['=', '\0']) || s.contains(char::is_whitespace) {
        Err(format!("{s:?} is not a variable name"))
    } else {
        Ok(s.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_grammars() {
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(duration("5 parsecs").unwrap_err().contains("like 500ms"));
        assert_eq!(duration("365d"), Ok(MAX_DURATION));
        for past in ["365d 1ns", "18446744073709551615s", "584542046090y"] {
            assert_eq!(
                duration(past),
                Err("must be at most 365 days (e.g. 10s, 5m or 2h)".into()),
                "{past}"
            );
            assert!(positive_duration(past).is_err() && optional_duration(past).is_err());
        }
        assert!(positive_duration("0s").is_err());
        assert_eq!(optional_duration("off"), Ok(None));
        assert_eq!(optional_duration("0"), Ok(None));
        assert_eq!(optional_duration("1m"), Ok(Some(Duration::from_secs(60))));
        for t in ["true", "TRUE", "1", "yes", "On"] {
            assert_eq!(boolean(t), Ok(true), "{t}");
        }
        for f in ["false", "0", "no", "OFF"] {
            assert_eq!(boolean(f), Ok(false), "{f}");
        }
        assert!(boolean("maybe").is_err());
        assert!(boolean("").is_err());
        assert_eq!(bytes("64MiB"), Ok(64 << 20));
        assert_eq!(bytes("2KB"), Ok(2000));
        assert!(bytes("12 parsecs").is_err());
        assert!(bytes("99999999999999999999GiB").is_err());
        assert_eq!(port("3000"), Ok(3000));
        assert!(port("0").is_err() && port("70000").is_err());
        assert!(percent("101").is_err());
        assert_eq!(one_of("b", &["a", "b"]), Ok("b"));
        assert_eq!(one_of("c", &["a", "b"]).unwrap_err(), "must be one of a, b");
        assert_eq!(list(" a, ,b ,"), ["a", "b"]);
        assert!(variable_name("A B").is_err());
        assert!(socket_addr("localhost:80").is_err());
    }

    proptest! {
        #[test]
        fn no_parser_panics(s in any::<String>()) {
            let _ = duration(&s);
            let _ = optional_duration(&s);
            let _ = boolean(&s);
            let _ = bytes(&s);
            let _ = socket_addr(&s);
            let _ = port(&s);
            let _ = percent(&s);
            let _ = count(&s);
            let _ = variable_name(&s);
        }
    }
}
