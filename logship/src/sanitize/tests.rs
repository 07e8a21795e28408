//! The sanitizer's behaviour end to end: every detector through `sanitize` (events)
//! and `redact_text` (raw lines), the validity of the output, linearity, and the
//! property tests over any line and any set of loaded secrets.

use super::*;
use crate::json::json_string;
use base64::Engine;

/// Everything but RFC 3986's unreserved characters is percent-encoded.
const URL_RESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn sanitizer(secrets: &[(&str, &str)]) -> Sanitizer {
    Sanitizer::new(Config {
        secrets: secrets
            .iter()
            .map(|(n, v)| KnownSecret::new(*n, *v))
            .collect(),
        ..Config::default()
    })
    .unwrap()
    .0
}

/// A sanitizer with `keys` as extra sensitive key names (`DECKHAND_REDACT_KEYS`).
fn keyed(keys: &[&str]) -> Sanitizer {
    Sanitizer::new(Config {
        extra_keys: keys.iter().map(|k| (*k).to_owned()).collect(),
        ..Config::default()
    })
    .unwrap()
    .0
}

/// Wraps a text line the way `structure` does, sanitizes, checks the JSON.
fn text(s: &Sanitizer, line: &str) -> String {
    let event = format!("{{\"level\":\"info\",\"message\":{}}}", json_string(line));
    let out = s.sanitize(&event).into_owned();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    v["message"].as_str().unwrap().to_owned()
}

fn json(s: &Sanitizer, event: &str) -> serde_json::Value {
    let out = s.sanitize(event);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

const PW: &str = "p@ss:w/rd%?\"quoted\\";

#[test]
fn loaded_secrets_in_every_encoding() {
    let s = sanitizer(&[("DB_PASSWORD", PW), ("API", "sk_live_51HxYzAbCdEfGh1234")]);
    let b64 = base64::engine::general_purpose::STANDARD.encode(PW);
    let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(PW);
    let pct = percent_encoding::utf8_percent_encode(PW, URL_RESERVED).to_string();
    let as_json = json_string(PW);
    for line in [
        format!("raw {PW} end"),
        format!("b64 {b64} end"),
        format!("b64url {b64url} end"),
        format!("url postgres://app:{pct}@db/x end"),
        format!("logged json {{\"pw\":{as_json}}} end"),
        "key sk_live_51HxYzAbCdEfGh1234 end".to_owned(),
    ] {
        let out = text(&s, &line);
        assert!(out.contains("[REDACTED]"), "{line} -> {out}");
        assert!(
            !out.contains("sk_live") && !out.contains("w/rd") && !out.contains(&b64),
            "{out}"
        );
    }
    assert!(s.counts().iter().any(|(n, c)| *n == "secret" && *c >= 5));
}

/// A secret an app prints as its bytes: hex in either case, and hex with a space
/// between bytes (Node's `<Buffer …>`), inside longer hex too (hex is byte-aligned), in
/// text and in a JSON event; a JSON secret's password leaf and a URL's password too.
#[test]
fn loaded_secrets_printed_as_hex() {
    let hex = |v: &str| v.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    let spaced = |v: &str| {
        let bytes: Vec<String> = v.bytes().map(|b| format!("{b:02x}")).collect();
        bytes.join(" ")
    };
    let doc = r#"{"username":"app","password":"Xy7-long-pass","host":"db"}"#;
    let s = sanitizer(&[
        ("DB_PASSWORD", PW),
        ("DB_SECRET", doc),
        ("DB_URL", "postgres://app:url-pass-77@db/x"),
    ]);
    for secret in [PW, "Xy7-long-pass", "url-pass-77"] {
        let plain = hex(secret);
        let middle = &plain[4..plain.len() - 4];
        for line in [
            format!("hex {plain} end"),
            format!("HEX {} end", plain.to_uppercase()),
            format!("<Buffer {}> end", spaced(secret)),
            format!("inside 00ff{plain}ff00 end"),
            // Across the gate's 64-byte blocks.
            format!("{} {plain} end", "x".repeat(60)),
        ] {
            let out = text(&s, &line);
            assert!(out.contains("[REDACTED]"), "{line} -> {out}");
            assert!(out.ends_with(" end"), "{line} -> {out}");
            assert!(!out.to_lowercase().contains(middle), "{line} -> {out}");
            assert!(s.redact_text(&line).contains("[REDACTED]"), "{line}");
        }
        // As an event's own field.
        let v = json(&s, &format!("{{\"buf\":\"{plain}\",\"n\":1}}"));
        assert_eq!(v["buf"], "[REDACTED]");
        assert_eq!(v["n"], 1);
    }
    // All digits: a bare JSON number becomes the string.
    let digits = sanitizer(&[("PIN", "123456789")]);
    let v = json(&digits, &format!("{{\"n\":{},\"m\":2}}", hex("123456789")));
    assert_eq!(v["n"], "[REDACTED]");
    assert_eq!(v["m"], 2);
}

/// A secret inside longer base64, at any of the three offsets a byte can start at and
/// with anything after it (an SMTP client's `AUTH PLAIN` of `\0user\0password`, a
/// document encoded whole): what is left of the base64 around the redaction holds no
/// bit of the secret, in either alphabet, padded or not.
#[test]
fn a_secret_inside_longer_base64_leaves_none_of_its_bits() {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use base64::Engine;
    for secret in [
        "hunter",
        "hunter2",
        "hunter2!",
        "correct-horse-battery-staple?>",
    ] {
        let s = sanitizer(&[("SMTP_PASSWORD", secret)]);
        for before in 0..5 {
            for after in 0..5 {
                let mut bytes = b"\0app@example.com\0"
                    .get(..before * 3)
                    .unwrap_or_default()
                    .to_vec();
                bytes.extend_from_slice(secret.as_bytes());
                bytes.extend_from_slice(&b"\xff\xfe\x00\x01"[..after.min(4)]);
                for encoded in [STANDARD.encode(&bytes), URL_SAFE_NO_PAD.encode(&bytes)] {
                    let line = format!("send: 'AUTH PLAIN {encoded}' end");
                    let out = text(&s, &line);
                    let inner = out
                        .strip_prefix("send: 'AUTH PLAIN ")
                        .and_then(|o| o.strip_suffix("' end"))
                        .unwrap_or_else(|| panic!("{line} -> {out}"));
                    let (left, right) = inner
                        .split_once("[REDACTED]")
                        .unwrap_or_else(|| panic!("{line} -> {out}"));
                    assert!(
                        encoded.starts_with(left) && encoded.ends_with(right),
                        "{out}"
                    );
                    // The characters left on each side hold only the other bytes' bits.
                    let secret_bits = (8 * (before * 3), 8 * (before * 3 + secret.len()));
                    assert!(6 * left.len() <= secret_bits.0, "{line} -> {out}");
                    let right_from = encoded.len() - right.len();
                    assert!(6 * right_from >= secret_bits.1, "{line} -> {out}");
                }
            }
        }
    }
    // Base64 that only shares a few characters with a secret's is left alone.
    let s = sanitizer(&[("SMTP_PASSWORD", "hunter2")]);
    let other = STANDARD.encode(b"\0user\0hunted2");
    assert_eq!(text(&s, &other), other);
}

/// A long line of one short secret's hex over and over is one cut, found in linear
/// time: the overlapping matches fold as they are found.
#[test]
fn a_line_of_a_secrets_hex_repeated_is_one_redaction() {
    let s = sanitizer(&[("SHORT", "aaaaaa")]);
    let line = format!("x {} y", "61".repeat(2_000_000));
    let spans = s.text_spans(&line);
    assert_eq!(spans.len(), 1);
    assert_eq!((spans[0].start, spans[0].end), (2, line.len() - 2));
    assert_eq!(s.redact_text(&line), "x [REDACTED] y");
}

/// A secret an app prints as a list of its bytes: a Node `Buffer` in JSON (pino,
/// `JSON.stringify`), Rust's `{:?}` of bytes (Python's `list`, Java's
/// `Arrays.toString`), Go's `%v`: its numbers are redacted, in text and in a JSON event
/// (valid JSON still); numbers that only end like the secret's are left alone.
#[test]
fn loaded_secrets_printed_as_lists_of_bytes() {
    let secret = "hunter2-xyz";
    let s = sanitizer(&[("API_KEY", secret)]);
    let numbers: Vec<String> = secret.bytes().map(|b| b.to_string()).collect();
    for sep in [",", ", ", " "] {
        let list = numbers.join(sep);
        for (line, want) in [
            (
                format!("key [{list}] end"),
                "key [[REDACTED]] end".to_owned(),
            ),
            (
                format!("key [7{sep}{list}{sep}9] end"),
                format!("key [7{sep}[REDACTED]{sep}9] end"),
            ),
            (format!("key: {list} end"), "key: [REDACTED] end".to_owned()),
            // Not the secret's: the first number is 1104, the last 1210.
            (format!("key [1{list}] end"), format!("key [1{list}] end")),
            (format!("key [{list}0] end"), format!("key [{list}0] end")),
        ] {
            assert_eq!(text(&s, &line), want, "{line}");
        }
    }
    // A list longer than the decoder's window, the secret across its edge.
    let ones = vec!["1"; 4090].join(",");
    let line = format!("[{ones},{},{ones}]", numbers.join(","));
    assert_eq!(text(&s, &line), format!("[{ones},[REDACTED],{ones}]"));
    let event = format!(
        r#"{{"key":{{"type":"Buffer","data":[{}]}},"n":1}}"#,
        numbers.join(",")
    );
    let out = s.sanitize(&event);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v["n"], 1, "{out}");
    assert_eq!(v["key"]["type"], "Buffer", "{out}");
    assert!(
        out.contains("[REDACTED]") && !out.contains(&numbers[3..].join(",")),
        "{out}"
    );
}

/// A secret longer than Node shows of a `Buffer` (50 bytes): the head Node prints is
/// redacted, and where the hex goes on, as much of it as the secret has; the whole
/// value of a multi-line secret too, but not each of its lines as hex (their raw forms
/// are still redacted).
#[test]
fn longer_secrets_printed_as_hex_whole_or_as_nodes_head() {
    let hex = |v: &[u8]| v.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let spaced = |v: &[u8]| {
        let bytes: Vec<String> = v.iter().map(|b| format!("{b:02x}")).collect();
        bytes.join(" ")
    };
    let sixty = "k".repeat(10) + &"0123456789".repeat(5);
    let long: String = (0..75).map(|i| format!("{i:03}-")).collect();
    let line = "a-line-of-a-pem-key-0123456789";
    let pem = format!("-----BEGIN KEY-----\n{line}\n-----END KEY-----\n");
    let s = sanitizer(&[("SIXTY", &sixty), ("LONG", &long), ("PEM", &pem)]);
    for value in [sixty.as_str(), long.as_str(), pem.trim_end()] {
        let bytes = value.as_bytes();
        let more = bytes.len() - 50;
        for (line, want) in [
            (
                format!("hex {} end", hex(bytes)),
                "hex [REDACTED] end".to_owned(),
            ),
            (
                format!("HEX {} end", hex(bytes).to_uppercase()),
                "HEX [REDACTED] end".to_owned(),
            ),
            (
                format!("hex {} end", spaced(bytes)),
                "hex [REDACTED] end".to_owned(),
            ),
            // As Node prints it.
            (
                format!("<Buffer {} ... {more} more bytes>", spaced(&bytes[..50])),
                format!("<Buffer [REDACTED] ... {more} more bytes>"),
            ),
            // Hex after the secret's is not the secret's.
            (
                format!("hex {}00ff end", hex(bytes)),
                "hex [REDACTED]00ff end".to_owned(),
            ),
            (
                format!("hex {} 00 ff end", spaced(bytes)),
                "hex [REDACTED] 00 ff end".to_owned(),
            ),
        ] {
            assert_eq!(text(&s, &line), want, "{line}");
        }
    }
    let out = text(&s, &format!("hex {} end", hex(line.as_bytes())));
    assert!(!out.contains("[REDACTED"), "{out}");
    assert!(text(&s, &format!("raw {line} end")).contains("[REDACTED"));
    // The whole spaced hex and list forms are what a streamed line holds back for.
    let list: Vec<String> = long.bytes().map(|b| b.to_string()).collect();
    assert!(s.longest_secret_form() >= list.join(", ").len().max(3 * long.len() - 1));
    assert!(s.longest_secret_form() <= 5 * long.len());
}

/// A long line of one long periodic secret's hex over and over (its head matches every
/// two bytes, and each match has a tail), or of its list of bytes, is one cut, found in
/// linear time.
#[test]
fn a_line_of_a_long_secrets_hex_repeated_is_one_redaction() {
    let secret = "ab".repeat(60);
    let s = sanitizer(&[("PERIODIC", &secret)]);
    // Hex, hex with spaces, and the list of its bytes (a match at every number).
    for (unit, spaced) in [("6162", false), (" 61 62", true), (",97,98", true)] {
        let body = unit.repeat(1_000_000);
        let body = if spaced { &body[1..] } else { &body[..] };
        let line = format!("x {body} y");
        let spans = s.text_spans(&line);
        assert_eq!(spans.len(), 1, "{}", &line[..40]);
        assert_eq!((spans[0].start, spans[0].end), (2, line.len() - 2));
        assert_eq!(s.redact_text(&line), "x [REDACTED] y");
        // Linear: twice the line, at most about twice the bytes looked at.
        let event = |n: usize| format!("{{\"message\":\"{}\"}}", &unit.repeat(n)[1..]);
        let (wa, wb) = (work(&s, &event(20_000)), work(&s, &event(40_000)));
        assert!(
            wb <= wa * 21 / 10 + 64,
            "{spaced}: {wa} then {wb} when doubled"
        );
    }
}

#[test]
fn every_built_in_pattern_compiles() {
    // The built-in detectors are trigger words and hand-written shapes: with extra
    // key names (outside input) the automaton is built at once, so it is checked here.
    let s = keyed(&["ssn"]);
    assert!(s.triggers.kinds.len() > 40);
    assert!(matches!(s.triggers.table, Table::Small(_)));
    assert_eq!(text(&s, "ssn=078-05-1120"), "ssn=[REDACTED]");
}

#[test]
fn the_built_in_trigger_words_take_the_generated_table() {
    // Nothing is built at start: the built-in words' table is in the binary.
    let s = sanitizer(&[("A", "first-value-1")]);
    assert!(matches!(s.triggers.table, Table::Builtin));
    assert_eq!(text(&s, "token=abc123"), "token=[REDACTED]");
    // Key names that are built in already add no word, and keep it.
    let s = keyed(&["Password", " token "]);
    assert!(matches!(s.triggers.table, Table::Builtin));
    // A new one does not.
    let s = keyed(&["pin_code"]);
    assert!(matches!(s.triggers.table, Table::Small(_)));
    assert_eq!(
        text(&s, "pin_code=1234 token=abc"),
        "pin_code=[REDACTED] token=[REDACTED]"
    );
}

#[test]
fn secrets_added_later_are_redacted_and_counts_carry_over() {
    let config = Config {
        secrets: vec![KnownSecret::new("A", "first-value-1")],
        ..Config::default()
    };
    let (first, _) = Sanitizer::new(config.clone()).unwrap();
    let first_triggers = first.triggers.clone();
    let current = Current::new(first, config);
    assert_eq!(text(&current.get(), "x first-value-1"), "x [REDACTED]");
    assert_eq!(text(&current.get(), "y second-value-2"), "y second-value-2");
    let skipped = current.add_secrets([
        KnownSecret::new("A", "second-value-2"),
        KnownSecret::new("B", "abc"),
    ]);
    assert_eq!(skipped, ["B"]);
    let s = current.get();
    // A rotation changes the secrets only: the trigger words are the same automaton.
    assert!(Arc::ptr_eq(&s.triggers, &first_triggers));
    assert_eq!(text(&s, "y second-value-2"), "y [REDACTED]");
    assert_eq!(text(&s, "x first-value-1"), "x [REDACTED]");
    let secret_count = |s: &Sanitizer| s.counts().iter().find(|(n, _)| *n == "secret").unwrap().1;
    assert_eq!(secret_count(&s), 3);
}

#[test]
fn an_arn_names_a_secret_and_is_left_alone() {
    let s = sanitizer(&[]);
    let line = "the value from secret arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf is not used";
    assert_eq!(text(&s, line), line);
    assert_eq!(text(&s, "secret: hunter2-x"), "secret: [REDACTED]");
}

#[test]
fn the_password_of_a_url_secret_is_a_secret_too() {
    let s = sanitizer(&[(
        "DATABASE_URL",
        "postgres://app:s3cr%40t-pw@db.internal:5432/app",
    )]);
    assert_eq!(
        text(&s, "connecting with s3cr@t-pw"),
        "connecting with [REDACTED]"
    );
    assert_eq!(secrets::url_password("https://example.com/a:b@c"), None);
    assert_eq!(secrets::url_password("postgres://only-user@h/d"), None);
    assert_eq!(secrets::url_password("not a url"), None);
}

#[test]
fn redact_name_and_short_secrets() {
    let (s, skipped) = Sanitizer::new(Config {
        secrets: vec![
            KnownSecret::new("DATABASE_URL", "hunter2-long"),
            KnownSecret::new("PIN", "1234"),
        ],
        redact_name: true,
        ..Config::default()
    })
    .unwrap();
    assert_eq!(skipped, ["PIN"]);
    assert_eq!(
        text(&s, "pw hunter2-long pin 1234"),
        "pw [REDACTED:DATABASE_URL] pin 1234"
    );
}

#[test]
fn sensitive_json_keys_at_any_depth() {
    let s = sanitizer(&[]);
    let v = json(
        &s,
        r#"{"user":"ann","password":"hunter2","auth":{"api_key":12345,"Session-Token":{"a":[1,"x"]},"note":"ok"},"db_passwd":null,"pwd":""}"#,
    );
    assert_eq!(v["password"], "[REDACTED]");
    assert_eq!(v["auth"]["api_key"], "[REDACTED]");
    assert_eq!(v["auth"]["Session-Token"], "[REDACTED]");
    assert_eq!(v["auth"]["note"], "ok");
    assert_eq!(v["user"], "ann");
}

#[test]
fn key_value_text_and_escaped_json_in_messages() {
    let s = sanitizer(&[]);
    assert_eq!(
        text(&s, "login password=hunter2 ok"),
        "login password=[REDACTED] ok"
    );
    assert_eq!(
        text(&s, "client_secret: abc123def, next"),
        "client_secret: [REDACTED], next"
    );
    assert_eq!(
        text(&s, r#"body {"token": "t0k3n-value"} sent"#),
        r#"body {"token": "[REDACTED]"} sent"#
    );
}

#[test]
fn prose_is_left_alone() {
    let s = sanitizer(&[]);
    for line in [
        "reset your password to continue",
        "password reset email sent to ann",
        "user session cache miss",
        "Basic auth is disabled",
        "the bearer of bad news",
    ] {
        let event = format!("{{\"message\":{}}}", json_string(line));
        assert!(matches!(s.sanitize(&event), Cow::Borrowed(_)), "{line}");
    }
}

#[test]
fn bearer_basic_jwt() {
    let s = sanitizer(&[]);
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.3eabedcbbaa80dd4";
    assert_eq!(
        text(&s, &format!("Authorization: Bearer {jwt}")),
        "Authorization: Bearer [REDACTED]"
    );
    assert_eq!(
        text(&s, "Authorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l"),
        "Authorization: Basic [REDACTED]"
    );
    assert_eq!(
        text(&s, &format!("token in url ?t={jwt} end")),
        "token in url ?t=[REDACTED] end"
    );
    assert_eq!(text(&s, &format!("jwt {jwt} end")), "jwt [REDACTED] end");
}

#[test]
fn aws_keys() {
    let s = sanitizer(&[]);
    let out = text(
        &s,
        "using key AKIAIOSFODNN7EXAMPLE secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    );
    assert_eq!(out, "using key [REDACTED] secret_access_key=[REDACTED]");
    assert_eq!(text(&s, "AKIA is a prefix"), "AKIA is a prefix");
}

#[test]
fn pem_private_key_blocks() {
    let s = sanitizer(&[]);
    let pem =
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nabc==\n-----END RSA PRIVATE KEY-----";
    assert_eq!(
        text(&s, &format!("key:\n{pem}\ndone")),
        "key:\n[REDACTED]\ndone"
    );
    assert_eq!(
        text(&s, "-----BEGIN PRIVATE KEY-----\nMIIE cut off"),
        "[REDACTED]"
    );
}

#[test]
fn url_passwords() {
    let s = sanitizer(&[]);
    assert_eq!(
        text(
            &s,
            "connecting to postgres://app:s3cr3t@db.internal:5432/shop"
        ),
        "connecting to postgres://app:[REDACTED]@db.internal:5432/shop"
    );
    assert_eq!(
        text(&s, "see https://example.com/a@b"),
        "see https://example.com/a@b"
    );
}

#[test]
fn cards_need_luhn_and_a_network() {
    let s = sanitizer(&[]);
    assert_eq!(
        text(&s, "charged card 4111 1111 1111 1111 amount 5"),
        "charged card [REDACTED] amount 5"
    );
    assert_eq!(
        text(&s, "card 5500-0000-0000-0004 ok"),
        "card [REDACTED] ok"
    );
    assert_eq!(text(&s, "amex 340000000000009."), "amex [REDACTED].");
    // Fails Luhn: passes through.
    assert_eq!(
        text(&s, "card 4111 1111 1111 1112"),
        "card 4111 1111 1111 1112"
    );
    // Luhn-valid but no network prefix (epoch ms, ids).
    assert_eq!(
        text(&s, "ts 1795417380506 id 8000000000000009"),
        "ts 1795417380506 id 8000000000000009"
    );
    // Part of a longer word or number.
    assert_eq!(
        text(&s, "ref x4111111111111111 and 41111111111111110"),
        "ref x4111111111111111 and 41111111111111110"
    );
    let v = json(&s, r#"{"card":"4111111111111111","n":4111111111111111}"#);
    assert_eq!(v["card"], "[REDACTED]");
    assert_eq!(
        v["n"], "[REDACTED]",
        "a bare number becomes a string, the JSON stays valid"
    );
}

#[test]
fn custom_patterns_and_keys() {
    let (s, _) = Sanitizer::new(Config {
        extra_patterns: compile_patterns(&[r"ORD-[0-9]{6}".into()]).unwrap(),
        extra_keys: vec!["ssn".into()],
        ..Config::default()
    })
    .unwrap();
    assert_eq!(
        text(&s, "order ORD-123456 shipped"),
        "order [REDACTED] shipped"
    );
    assert_eq!(json(&s, r#"{"SSN":"078-05-1120"}"#)["SSN"], "[REDACTED]");
    let err = compile_patterns(&["(unclosed".into()]).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("DECKHAND_REDACT_PATTERNS=\"(unclosed\" is not valid"),
        "{err}"
    );
}

#[test]
fn several_custom_patterns_are_found_by_one_pass_and_each_where_it_matches() {
    let mut patterns: Vec<String> = [r"ORD-[0-9]{6}", r"acct_[a-z]{4}\b", r"(?i)internal-[0-9]+"]
        .map(String::from)
        .to_vec();
    let build = |patterns: &[String]| {
        Sanitizer::new(Config {
            extra_patterns: compile_patterns(patterns).unwrap(),
            ..Config::default()
        })
        .unwrap()
        .0
    };
    assert!(build(&patterns).custom_set.is_none(), "a few: one by one");
    patterns.extend((0..6).map(|i| format!(r"never{i}\d{{40}}")));
    let s = build(&patterns);
    assert!(s.custom_set.is_some(), "many patterns: one set");
    assert_eq!(
        text(
            &s,
            "ORD-123456 for acct_abcd, INTERNAL-77 and ORD-654321; acct_abcde stays"
        ),
        "[REDACTED] for [REDACTED], [REDACTED] and [REDACTED]; acct_abcde stays"
    );
    assert_eq!(text(&s, "nothing here"), "nothing here");
    assert_eq!(
        json(&s, r#"{"a":"ORD-000001","b":"x internal-1 y"}"#).to_string(),
        r#"{"a":"[REDACTED]","b":"x [REDACTED] y"}"#
    );
}

/// A sanitizer with enough patterns for the set (six that never match make up the
/// number), and one for each of its patterns alone: built once for the property below.
fn pattern_sanitizers() -> &'static (Sanitizer, Vec<Sanitizer>) {
    static BUILT: std::sync::OnceLock<(Sanitizer, Vec<Sanitizer>)> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let mut patterns = vec![
            r"ORD-[0-9]{6}".to_owned(),
            r"acct_[a-z]{4}".to_owned(),
            r"internal-[0-9]+".to_owned(),
        ];
        patterns.extend((0..6).map(|i| format!(r"never{i}\d{{40}}")));
        let build = |patterns: &[String]| {
            Sanitizer::new(Config {
                extra_patterns: compile_patterns(patterns).unwrap(),
                ..Config::default()
            })
            .unwrap()
            .0
        };
        let alone = patterns
            .iter()
            .map(|p| build(std::slice::from_ref(p)))
            .collect();
        (build(&patterns), alone)
    })
}

proptest::proptest! {
    /// One set of patterns finds what the patterns one by one find.
    #[test]
    fn a_set_of_patterns_redacts_as_the_patterns_one_by_one(
        words in proptest::collection::vec("(ORD-[0-9]{6}|acct_[a-z]{4}|[a-z ]{1,8}|internal-[0-9]{1,3})", 0..12),
    ) {
        let (together, each) = pattern_sanitizers();
        proptest::prop_assert!(together.custom_set.is_some());
        let line = words.join(" ");
        let mut alone = line.clone();
        for s in each {
            alone = text(s, &alone);
        }
        proptest::prop_assert_eq!(text(together, &line), alone);
    }
}

/// Text events as the structure stage makes them, of `stream`.
fn text_events(stream: crate::structure::Stream, line: &str) -> Vec<crate::structure::Event> {
    use crate::structure::{Options, Structurer};
    let mut s = Structurer::new(stream, &Options::default());
    let mut out = Vec::new();
    s.push(line.as_bytes(), 1_795_000_000_000, &mut out);
    s.flush(&mut out);
    out
}

/// Text events as the capture makes them: the message redacted by `s` as text, then
/// the event as the pipeline sanitizes it (its whole text searched for loaded secrets).
fn redacted_text_events(
    s: &std::sync::Arc<Sanitizer>,
    stream: crate::structure::Stream,
    line: &str,
) -> Vec<String> {
    use crate::structure::{Options, Structurer};
    let mut structurer = Structurer::new(stream, &Options::default());
    structurer.redact_with(s.clone());
    let mut out = Vec::new();
    structurer.push(line.as_bytes(), 1_795_000_000_000, &mut out);
    structurer.flush(&mut out);
    assert_eq!(structurer.take_failed(), 0);
    out.into_iter()
        .map(|e| {
            // Sanitized whole by the structurer: nothing is left to the pipeline.
            assert!(
                e.redacted_to == e.json.len() && e.redacted_to > e.head,
                "{}",
                e.json
            );
            e.sanitized(s).into_owned()
        })
        .collect()
}

/// A text event's message is redacted as the app wrote it, before it is escaped into
/// the event: what the event's redaction found, this finds, and the agent's own fields
/// are still searched for loaded secrets.
#[test]
fn a_text_events_message_is_redacted_before_it_is_escaped() {
    use crate::structure::Stream;
    let s = std::sync::Arc::new(sanitizer(&[("ODD", "stdout"), ("DB", "s3cr3t-Db-pw")]));
    let line = "ERROR password=\"hunter22\" card 4111 1111 1111 1111 db=s3cr\\u0033t-Db-pw \
                url=postgres://u:s3cr3t%2DDb%2Dpw@h/d {\"token\":\"s3cr3t-Db-pw\"}";
    let [event] = &redacted_text_events(&s, Stream::Stdout, line)[..] else {
        panic!("one event");
    };
    let v: serde_json::Value = serde_json::from_str(event).unwrap();
    assert_eq!(v["stream"], "[REDACTED]", "{event}");
    assert_eq!(v["level"], "error");
    let message = v["message"].as_str().unwrap();
    for leak in ["hunter22", "4111", "s3cr", "Db-pw", "Db%2Dpw"] {
        assert!(!message.contains(leak), "{leak} in {message}");
    }
    // A quoted value after `=` in plain text (a line streamed past the capture's cut).
    assert_eq!(
        s.redact_text("password=\"hunter22\" ok"),
        "password=\"[REDACTED]\" ok"
    );
    // What the event's own redaction makes of the same line, for comparison.
    let [old] = &text_events(Stream::Stdout, line)[..] else {
        panic!("one event");
    };
    let old: serde_json::Value =
        serde_json::from_str(&s.sanitize_after(&old.json, old.head)).unwrap();
    assert_eq!(v["message"], old["message"]);
}

/// Around a message redacted as text, the agent's own fields after it (the task's
/// `ecs` context) are searched for loaded secrets too.
#[test]
fn the_fields_after_a_redacted_message_are_searched_for_loaded_secrets() {
    use crate::structure::{Context, Options, Stream, Structurer};
    let s = std::sync::Arc::new(sanitizer(&[("DB", "s3cr3t-Db-pw")]));
    let options = Options {
        context: Some(Context {
            task_id: "task-s3cr3t-Db-pw".into(),
            container_name: "web".into(),
            task_definition: "app:3".into(),
        }),
        ..Options::default()
    };
    // A short message is searched again with the fields; a long one is left out.
    for pad in [0, 3000] {
        let mut structurer = Structurer::new(Stream::Stdout, &options);
        structurer.redact_with(s.clone());
        let mut out = Vec::new();
        let line = format!("login s3cr3t-Db-pw ok{}", " .".repeat(pad));
        structurer.push(line.as_bytes(), 1_795_000_000_000, &mut out);
        structurer.flush(&mut out);
        let [event] = &out[..] else {
            panic!("one event")
        };
        assert!(event.redacted_to > event.head);
        let v: serde_json::Value = serde_json::from_str(&event.sanitized(&s)).unwrap();
        let message = v["message"].as_str().unwrap();
        assert!(message.starts_with("login [REDACTED] ok"), "{message}");
        assert_eq!(v["ecs"]["task_id"], "task-[REDACTED]");
        assert_eq!(v["ecs"]["container_name"], "web");
        assert_eq!(v["stream"], "stdout");
    }
}

/// `lines` of `stream`, each at its time, through one structurer that redacts with
/// `s` (as the capture runs it): the events as made, before the sanitize step.
fn vouched_events(
    s: &std::sync::Arc<Sanitizer>,
    options: &crate::structure::Options,
    stream: crate::structure::Stream,
    lines: &[(i64, &str)],
) -> Vec<crate::structure::Event> {
    let mut structurer = crate::structure::Structurer::new(stream, options);
    structurer.redact_with(s.clone());
    let mut out = Vec::new();
    for (at, line) in lines {
        structurer.push(line.as_bytes(), *at, &mut out);
    }
    structurer.flush(&mut out);
    out
}

/// Options with a task's context (`ecs`: task `task-1`, container `web`, `app:3`).
fn ecs_options() -> crate::structure::Options {
    crate::structure::Options {
        context: Some(crate::structure::Context {
            task_id: "task-1".into(),
            container_name: "web".into(),
            task_definition: "app:3".into(),
        }),
        ..crate::structure::Options::default()
    }
}

/// The agent's own fields around a message are looked at once per sanitizer and
/// level, not per event: an event whose fields no loaded secret can stand in is done
/// when it is written, its message redacted.
#[test]
fn fields_found_clean_once_need_no_search_per_event() {
    use crate::structure::Stream;
    let lines = [
        (1_795_000_000_000, "ERROR login s3cr3t-Db-pw ok"),
        (1_795_000_000_001, "plain"),
    ];
    let s = std::sync::Arc::new(sanitizer(&[("DB", "s3cr3t-Db-pw")]));
    let events = vouched_events(&s, &ecs_options(), Stream::Stdout, &lines);
    assert_eq!(events.len(), 2);
    for e in &events {
        assert_eq!(e.redacted_to, e.json.len(), "{}", e.json);
        assert!(matches!(e.sanitized(&s), Cow::Borrowed(_)));
    }
    assert!(
        events[0].json.contains("login [REDACTED] ok"),
        "{}",
        events[0].json
    );
    // A secret spelled `stdout` cannot stand in a stderr event's fields.
    let odd = std::sync::Arc::new(sanitizer(&[("ODD", "stdout")]));
    for e in vouched_events(&odd, &ecs_options(), Stream::Stderr, &lines) {
        assert_eq!(e.redacted_to, e.json.len(), "{}", e.json);
    }
    // Nor can one with a `"`: it is not searched raw in JSON text at all.
    let quoted = std::sync::Arc::new(sanitizer(&[("APP", "task-1\",\"co")]));
    for e in vouched_events(&quoted, &ecs_options(), Stream::Stdout, &lines) {
        assert_eq!(e.redacted_to, e.json.len(), "{}", e.json);
    }
}

/// A structurer with a sanitizer writes only an event's sanitized text into its blocks
/// of texts: an app's JSON line replaced by its redaction is never written there (it
/// would stay in memory, counted by no queue, as long as any event beside it), and
/// nothing is left for the pipeline to sanitize.
#[test]
fn blocks_of_texts_hold_only_sanitized_texts() {
    use crate::structure::{Options, Stream, Structurer};
    let secret = "k3y-".repeat(250);
    let s = std::sync::Arc::new(sanitizer(&[("BIG", &secret)]));
    let mut structurer = Structurer::new(Stream::Stdout, &Options::default());
    structurer.redact_with(s.clone());
    let lines = [
        format!(r#"{{"token":"{secret}"}}"#),
        "plain".to_owned(),
        format!(r#"{{"n":1,"also":"{secret}"}}"#),
    ];
    let mut out = Vec::new();
    for line in &lines {
        structurer.push(line.as_bytes(), 1_795_000_000_000, &mut out);
    }
    structurer.flush(&mut out);
    assert_eq!(out.len(), 3);
    assert_eq!(out[0].json, r#"{"token":"[REDACTED]"}"#);
    assert_eq!(out[2].json, r#"{"n":1,"also":"[REDACTED]"}"#);
    for (e, next) in out.iter().zip(&out[1..]) {
        // One after the other: no text of the lines' own between them.
        assert_eq!(
            e.json.as_ptr() as usize + e.json.len(),
            next.json.as_ptr() as usize
        );
    }
    for e in &out {
        assert!(matches!(e.sanitized(&s), Cow::Borrowed(_)), "{}", e.json);
    }
}

/// What keeps the search of a text event's own fields: a secret that may stand in
/// them (`stdout`, a piece of the task's context, a piece of a time the first events
/// did not have), a pattern, a secret with a `\`, a rotation to such a secret. Each
/// such event is sanitized as before.
#[test]
fn fields_that_may_hold_a_secret_are_searched_in_every_event() {
    use crate::structure::{Stream, Structurer};
    let options = ecs_options();
    let lines = [
        (1_795_000_000_000, "ERROR login ok"),
        (1_795_000_000_001, "plain"),
    ];
    let searched = |s: &std::sync::Arc<Sanitizer>, lines: &[(i64, &str)]| {
        let events = vouched_events(s, &options, Stream::Stdout, lines);
        for e in &events {
            // Searched whole by the structurer: nothing is left to the pipeline.
            assert!(
                e.redacted_to > e.head && e.redacted_to == e.json.len(),
                "{}",
                e.json
            );
            assert!(matches!(e.sanitized(s), Cow::Borrowed(_)), "{}", e.json);
        }
        events
    };
    let odd = std::sync::Arc::new(sanitizer(&[("ODD", "stdout")]));
    searched(&odd, &lines);
    let task = std::sync::Arc::new(sanitizer(&[("TASK", "task-1")]));
    for e in searched(&task, &lines) {
        let v: serde_json::Value = serde_json::from_str(&e.sanitized(&task)).unwrap();
        assert_eq!(v["ecs"]["task_id"], "[REDACTED]");
    }
    // A piece of a time that only the second event's time holds.
    let later = 1_795_000_000_000 + 3_600_000;
    let mut time = String::new();
    crate::time::push_rfc3339(&mut time, later);
    let piece = &time[5..19];
    let timed = std::sync::Arc::new(sanitizer(&[("T", piece)]));
    let events = searched(&timed, &[(1_795_000_000_000, "first"), (later, "second")]);
    let [first, second] = &events[..] else {
        panic!("two events")
    };
    assert!(!first.json.contains(piece), "{piece}");
    assert!(!first.json.contains("[REDACTED]"), "{}", first.json);
    let v: serde_json::Value = serde_json::from_str(&second.json).unwrap();
    let stamp = v["timestamp"].as_str().unwrap_or_default();
    assert!(
        stamp.contains("[REDACTED]") && !stamp.contains(piece),
        "{stamp}"
    );
    // A pattern.
    let patterned = std::sync::Arc::new(
        Sanitizer::new(Config {
            extra_patterns: vec![regex::Regex::new("web").unwrap()],
            ..Config::default()
        })
        .unwrap()
        .0,
    );
    searched(&patterned, &lines);
    // A secret with a `\`, which the escaping of a tab spells: searched for in the
    // message too, short or long.
    let slashed = std::sync::Arc::new(sanitizer(&[("PW", "ab\\tcd-pw12")]));
    searched(&slashed, &lines);
    for pad in [0, 3000] {
        let line = format!("note ab\tcd-pw12{}", " .".repeat(pad));
        for e in searched(&slashed, &[(1, &line)]) {
            assert!(!e.json.contains("ab\\tcd-pw12"), "{}", &e.json[..80]);
            assert!(e.json.contains("note [REDACTED]"), "{}", &e.json[..80]);
        }
    }
    // A rotation to a secret that stands in the fields: the next event is searched.
    let mut structurer = Structurer::new(Stream::Stdout, &options);
    let mut out = Vec::new();
    structurer.redact_with(std::sync::Arc::new(sanitizer(&[("DB", "s3cr3t-Db-pw")])));
    structurer.push(b"one", 1, &mut out);
    structurer.flush(&mut out);
    structurer.redact_with(odd.clone());
    structurer.push(b"two", 2, &mut out);
    structurer.flush(&mut out);
    let [one, two] = &out[..] else {
        panic!("two events")
    };
    assert_eq!(one.redacted_to, one.json.len());
    assert_eq!(two.redacted_to, two.json.len());
    assert!(one.json.contains(r#""stream":"stdout""#), "{}", one.json);
    let v: serde_json::Value = serde_json::from_str(&two.json).unwrap();
    assert_eq!(v["stream"], "[REDACTED]");
}

/// A text event's own fields (time, level, stream) are searched for loaded secrets
/// only: a secret spelled `stdout` is still redacted there, a key name configured as
/// sensitive is not looked for in them.
#[test]
fn the_agents_own_fields_are_searched_for_loaded_secrets_only() {
    use crate::structure::Stream;
    let line = "ERROR stream=abcdef password=hunter22 card 4111 1111 1111 1111";
    let [event] = &text_events(Stream::Stdout, line)[..] else {
        panic!("one event");
    };
    assert!(event.head > 0);
    let s = sanitizer(&[("ODD", "stdout")]);
    let v: serde_json::Value =
        serde_json::from_str(&s.sanitize_after(&event.json, event.head)).unwrap();
    assert_eq!(v["stream"], "[REDACTED]");
    assert_eq!(v["level"], "error");
    let message = v["message"].as_str().unwrap();
    assert!(
        !message.contains("hunter22") && !message.contains("4111"),
        "{message}"
    );

    let s = keyed(&["stream"]);
    let v: serde_json::Value =
        serde_json::from_str(&s.sanitize_after(&event.json, event.head)).unwrap();
    assert_eq!(v["stream"], "stdout");
    assert_eq!(
        v["message"],
        "ERROR stream=[REDACTED] password=[REDACTED] card [REDACTED]"
    );
    // A head that is not one (past the end, inside a character) is no head.
    let odd = "{\"m\":\"é password=hunter22\"}";
    for head in [odd.len() + 1, 7] {
        assert_eq!(s.sanitize_after(odd, head), s.sanitize(odd));
    }
}

/// The search of a chunk of lines for loaded secrets ([`Sanitizer::secret_starts`]):
/// where each starts; a word only its own sanitizer takes, and not for a text with a
/// line end when a secret holds one.
#[test]
fn a_chunk_is_searched_once_and_vouches_only_for_its_own_sanitizer() {
    use crate::structure::{Options, Stream, Structurer};
    let s = std::sync::Arc::new(sanitizer(&[("DB", "s3cr3t-Db-pw")]));
    let chunk = b"clean\nthe s3cr3t-Db-pw here\nclean again";
    let mut starts = Vec::new();
    let word = s.secret_starts(chunk, &mut starts);
    assert!(word.is_some());
    assert_eq!(starts, [10]);
    assert_eq!(s.redact_text_vouched("s3cr3t-Db-pw", word), "s3cr3t-Db-pw");
    // Another sanitizer's word is not taken, nor is it after a rotation.
    let rotated = std::sync::Arc::new(sanitizer(&[("DB", "s3cr3t-Db-pw"), ("NEW", "n3w-s3cr3t")]));
    assert_eq!(
        rotated.redact_text_vouched("a n3w-s3cr3t", word),
        "a [REDACTED]"
    );
    let mut structurer = Structurer::new(Stream::Stdout, &Options::default());
    structurer.redact_with(s.clone());
    let mut out = Vec::new();
    structurer.push_vouched(b"a n3w-s3cr3t", 1, &mut out, word);
    structurer.redact_with(rotated.clone());
    structurer.flush(&mut out);
    let [event] = &out[..] else {
        panic!("one event")
    };
    let v: serde_json::Value = serde_json::from_str(&event.sanitized(&rotated)).unwrap();
    assert_eq!(v["message"], "a [REDACTED]");

    // A value of two lines too short to be secrets alone: only a text with a line end
    // can hold it, and such a text is searched for it whatever the word.
    let multi = sanitizer(&[("KEY", "ab12\ncd34")]);
    starts.clear();
    let word = multi.secret_starts(b"ab12\ncd34\nclean", &mut starts);
    assert!(word.is_some() && starts.is_empty());
    assert_eq!(
        multi.redact_text_vouched("x ab12\ncd34 y", word),
        "x [REDACTED] y"
    );
    assert_eq!(multi.redact_text_vouched("x ab12 y", word), "x ab12 y");
    // No secrets: every line is vouched for.
    let none = sanitizer(&[]);
    assert!(none.secret_starts(chunk, &mut starts).is_some() && starts.is_empty());
}

/// Whether a loaded secret can reach into the fields that close an app's JSON line.
#[test]
fn a_secret_reaching_into_the_closing_fields_is_seen() {
    let close = ",\"ecs\":{\"task_id\":\"task-1\"}}";
    // Ends in the comma that starts the fields: the line's end and the fields hold it.
    assert!(sanitizer(&[("A", "abcdef,")]).may_reach_into(close));
    assert!(sanitizer(&[("A", "task-1")]).may_reach_into(close));
    let s = sanitizer(&[("B", "zzzzzzzzzz")]);
    assert!(!s.may_reach_into(close));
    assert!(s.may_reach_into("zzzzzzzzzz}"), "inside");
    assert!(s.may_reach_into("zz}"), "across its start");
    assert!(!s.may_reach_into("}zz"));
}

#[test]
fn clean_lines_are_borrowed() {
    let s = sanitizer(&[("A", "Zq9-7f3c1a2b9d4e-pw")]);
    let line = r#"{"level":"info","time":"2026-11-22T10:30:02.677Z","msg":"order user latency","reqId":"3eabedcbbaa80dd4","latencyMs":168}"#;
    assert!(matches!(s.sanitize(line), Cow::Borrowed(_)));
    assert!(s.counts().iter().all(|(_, c)| *c == 0));
}

#[test]
fn nothing_secret_in_debug() {
    let config = Config {
        secrets: vec![KnownSecret::new("DB", "very-secret-value")],
        ..Config::default()
    };
    let shown = format!("{config:?}");
    assert!(
        !shown.contains("very-secret-value") && shown.contains("DB"),
        "{shown}"
    );
    let (s, _) = Sanitizer::new(config).unwrap();
    assert!(!format!("{s:?}").contains("very-secret"));
}

#[test]
fn output_is_always_valid_json() {
    let s = sanitizer(&[("X", "ab\\cd\"ef"), ("Y", "u0041bcdef")]);
    for line in [
        "tricky ab\\cd\"ef and \\u0041bcdef and \\\\u0041bcdef",
        "unicode päss=wörd ✓ password=naïve-value",
        "password=\\\"quoted\\\" token: \"x\"",
        "-----BEGIN PRIVATE KEY-----",
    ] {
        text(&s, line);
    }
    json(
        &s,
        r#"{"password":{"nested":"}"},"token":[1,{"a":"]"}],"x":"\u0041bcdef"}"#,
    );
}

// ---------------------------------------------------------------------------------
// Redaction by meaning: escape styles, nesting, percent-encoding.

const GO_PW: &str = "Pa&ss<word>123/x";

#[test]
fn every_escape_style_of_a_loaded_secret() {
    let s = sanitizer(&[
        ("DB", GO_PW),
        ("PY", "naïve-pässword"),
        ("Q", "quo\"te\\pw"),
    ]);
    for line in [
        // Go encoding/json, logrus.
        r#"{"pw":"Pa\u0026ss\u003cword\u003e123/x"}"#.to_owned(),
        // PHP escapes slashes.
        r#"{"pw":"Pa&ss<word>123\/x"}"#.to_owned(),
        // Python ensure_ascii.
        r#"{"pw":"na\u00efve-p\u00e4ssword"}"#.to_owned(),
        // Upper-case hex, every char escaped.
        r#"{"pw":"\u0050\u0061\u0026\u0073\u0073\u003C\u0077\u006F\u0072\u0064\u003E\u0031\u0032\u0033\u002F\u0078"}"#.to_owned(),
        // `"` and `\` in the value.
        format!("{{\"pw\":{}}}", json_string("quo\"te\\pw")),
    ] {
        let out = text(&s, &format!("logged {line} end"));
        assert!(out.starts_with("logged {\"pw\":\"[REDACTED]\"} end"), "{line} -> {out}");
        // The event itself (not wrapped) too.
        let v = json(&s, &line);
        assert_eq!(v["pw"], "[REDACTED]", "{line}");
    }
}

/// A secret that repeats itself at length (60 KB of one character, or of two) is found
/// whole, raw, in JSON and as base64, and the line around it kept.
#[test]
fn a_long_secret_that_repeats_itself_is_redacted_in_every_form() {
    for value in ["x".repeat(60_000), "ab".repeat(30_000)] {
        let s = sanitizer(&[("BIG", &value)]);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&value);
        for line in [format!("key {value} end"), format!("b64 {b64} end")] {
            let out = s.redact_text(&line);
            assert!(out.len() < 100, "{}", &out[..out.len().min(200)]);
            assert!(
                out.starts_with(&line[..4]) && out.ends_with(" end"),
                "{out}"
            );
            assert!(out.contains("[REDACTED"), "{out}");
        }
        let event = format!("{{\"msg\":\"{value}\",\"n\":1}}");
        let out = s.sanitize(&event);
        assert!(
            out.len() < 100 && out.contains("[REDACTED"),
            "{}",
            &out[..out.len().min(200)]
        );
    }
}

#[test]
fn a_secret_escaped_three_levels_deep() {
    let pw = "db\"pa\\ss-word";
    let s = sanitizer(&[("DB", pw)]);
    // The app logs a JSON document as a string inside a text line.
    let body = serde_json::json!({ "db": pw }).to_string();
    let line = format!("request {}", serde_json::json!({ "body": body }));
    let event = format!("{{\"message\":{}}}", json_string(&line));
    assert!(event.contains(r#"\\\\\\\""#), "three levels: {event}");
    let out = s.sanitize(&event);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let message = v["message"].as_str().unwrap();
    assert!(
        !message.contains("pa\\\\ss") && !message.contains("word"),
        "{message}"
    );
    assert!(message.contains("[REDACTED]"), "{message}");
    // The nested documents are still valid JSON at every level.
    let inner: serde_json::Value =
        serde_json::from_str(message.strip_prefix("request ").unwrap()).unwrap();
    let db: serde_json::Value = serde_json::from_str(inner["body"].as_str().unwrap()).unwrap();
    assert_eq!(db["db"], "[REDACTED]");
}

#[test]
fn percent_encoded_in_either_case_and_with_plus() {
    let s = sanitizer(&[("A", "my pass/wörd&x")]);
    for form in [
        "my+pass%2Fw%C3%B6rd%26x",
        "my+pass%2fw%c3%b6rd%26x",
        "my%20pass%2Fw%C3%B6rd%26x",
        "my pass%2Fwörd&x",
    ] {
        let out = text(&s, &format!("GET /login?pw={form}&next=1"));
        assert_eq!(out, "GET /login?pw=[REDACTED]&next=1", "{form}");
    }
}

#[test]
fn base64_forms_in_escaped_strings() {
    let pw = "a?>?>secret~~"; // base64 holds `/` and `+`
    let s = sanitizer(&[("A", pw)]);
    let b64 = base64::engine::general_purpose::STANDARD.encode(pw);
    assert!(b64.contains('/') || b64.contains('+'), "{b64}");
    let php = b64.replace('/', "\\/");
    let v = json(&s, &format!("{{\"x\":\"{php}\"}}"));
    assert_eq!(v["x"], "[REDACTED]");
}

// ---------------------------------------------------------------------------------
// Loaded values.

#[test]
fn a_trailing_newline_is_not_part_of_the_secret() {
    let s = sanitizer(&[("TOKEN", "tok-1234567890\n"), ("CRLF", "crlf-secret-9\r\n")]);
    assert_eq!(
        text(&s, "token is tok-1234567890 ok"),
        "token is [REDACTED] ok"
    );
    assert_eq!(text(&s, "and crlf-secret-9."), "and [REDACTED].");
}

#[test]
fn each_line_of_a_multi_line_value_is_a_secret() {
    let value =
        "-----BEGIN CERT-----\nMIIBszCCAVmgAwIBAgIU\nQm9ndXMgY2VydGlmaWNh\n-----END CERT-----\n";
    let s = sanitizer(&[("CERT", value)]);
    assert_eq!(text(&s, "line MIIBszCCAVmgAwIBAgIU"), "line [REDACTED]");
    assert_eq!(text(&s, "Qm9ndXMgY2VydGlmaWNh"), "[REDACTED]");
    // Punctuation-only lines are not secrets: `},` stays.
    let s = sanitizer(&[("J", "{\n  \"k\": \"a-long-secret-1\"\n},\n")]);
    assert_eq!(text(&s, "x },"), "x },");
}

#[test]
fn a_json_document_value_is_redacted_whole_and_by_leaf() {
    let doc = "{\n  \"username\": \"svc-app\",\n  \"password\": \"Xy7#long!pass\",\n  \"host\": \"db.internal\"\n}";
    let s = sanitizer(&[("DB_SECRET", doc)]);
    // Printed minified, as a line of its own: redacted whole.
    let minified = r#"{"username":"svc-app","password":"Xy7#long!pass","host":"db.internal"}"#;
    assert_eq!(text(&s, minified), "[REDACTED]");
    // Printed as the event itself (a JSON line): every leaf.
    let v = json(&s, minified);
    assert_eq!(v["password"], "[REDACTED]");
    assert_eq!(v["host"], "[REDACTED]");
    // Printed pretty, line by line.
    assert_eq!(text(&s, "  \"host\": \"db.internal\""), "  [REDACTED]");
    assert_eq!(text(&s, "using db.internal"), "using [REDACTED]");
}

#[test]
fn a_short_url_password_is_reported_by_name() {
    let (s, skipped) = Sanitizer::new(Config {
        secrets: vec![
            KnownSecret::new("DATABASE_URL", "postgres://app:abc@db.internal/app"),
            KnownSecret::new("OK_URL", "postgres://app:longer-pw@db/app"),
        ],
        ..Config::default()
    })
    .unwrap();
    assert_eq!(skipped, ["DATABASE_URL"]);
    assert_eq!(text(&s, "pw longer-pw"), "pw [REDACTED]");
}

// ---------------------------------------------------------------------------------
// Smaller defects.

#[test]
fn a_secret_equal_to_a_bare_number_stays_valid_json() {
    let s = sanitizer(&[("ACCT", "123456789")]);
    let out = s.sanitize(r#"{"acct":123456789,"b":[1,123456789],"c":91234567890}"#);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v["acct"], "[REDACTED]");
    assert_eq!(v["b"][1], "[REDACTED]");
    assert_eq!(
        v["c"], "[REDACTED]",
        "a number holding the secret is redacted whole"
    );
    assert_eq!(v["b"][0], 1);
}

#[test]
fn the_named_label_is_safe_in_json() {
    let (s, _) = Sanitizer::new(Config {
        secrets: vec![KnownSecret::new("WEIRD\"NAME\\x y", "hunter2-long")],
        redact_name: true,
        ..Config::default()
    })
    .unwrap();
    assert_eq!(text(&s, "pw hunter2-long"), "pw [REDACTED:WEIRD_NAME_x_y]");
}

#[test]
fn overlapping_secrets_leave_no_tail() {
    let s = sanitizer(&[("A", "abcdefgh"), ("B", "efghij34")]);
    assert_eq!(text(&s, "x abcdefghij34 y"), "x [REDACTED] y");
    assert_eq!(text(&s, "x efghij34abcdefgh y"), "x [REDACTED][REDACTED] y");
    let s = sanitizer(&[("A", "aaaaaa")]);
    assert_eq!(text(&s, &"a".repeat(50)), "[REDACTED]");
}

#[test]
fn more_sensitive_key_spellings() {
    let s = sanitizer(&[]);
    for key in [
        "X-Api-Key",
        "x-api-key",
        "ApiKey",
        "apiKey",
        "PrivateKey",
        "private_key",
        "clientSecret",
        "access_token",
        "refresh_token",
    ] {
        let v = json(
            &s,
            &format!("{{\"{key}\":\"abc123xyz\",\"other\":\"keep\"}}"),
        );
        assert_eq!(v[key], "[REDACTED]", "{key}");
        assert_eq!(v["other"], "keep");
        assert_eq!(
            text(&s, &format!("{key}=abc123xyz ok")),
            format!("{key}=[REDACTED] ok")
        );
        assert_eq!(
            text(&s, &format!("{key}: abc123xyz")),
            format!("{key}: [REDACTED]")
        );
    }
    assert_eq!(text(&s, "X-Api-Key: abc"), "X-Api-Key: [REDACTED]");
}

#[test]
fn sensitive_keys_in_any_casing() {
    let s = sanitizer(&[]);
    for key in [
        "PassWord",
        "pAsSwOrD",
        "X-API-Key",
        "Session_ID",
        "aUtHoRiZaTiOn",
    ] {
        assert_eq!(
            text(&s, &format!("{key}=abc123xyz ok")),
            format!("{key}=[REDACTED] ok")
        );
        let v = json(&s, &format!("{{\"{key}\":\"abc123xyz\"}}"));
        assert_eq!(v[key], "[REDACTED]", "{key}");
    }
    assert_eq!(
        text(&s, "AUTHORIZATION: BeArEr abcdefghijklmnopqrstuvwxyz"),
        "AUTHORIZATION: BeArEr [REDACTED]"
    );
    assert_eq!(
        text(
            &s,
            "aws_secret_Access_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
        ),
        "aws_secret_Access_KEY=[REDACTED]"
    );
    // A configured key name, too, written in another casing than configured.
    let custom = keyed(&["pin_code"]);
    assert_eq!(text(&custom, "PIN_Code=1234"), "PIN_Code=[REDACTED]");
}

#[test]
fn a_key_name_that_is_a_token_prefix_leaves_the_token_found() {
    // A configured key name that is also another detector's word is a trigger of both.
    let s = keyed(&["ghp_", "bearer"]);
    let token = format!("ghp_{}", "aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hJ6");
    assert_eq!(
        text(&s, &format!("pushed with {token} ok")),
        "pushed with [REDACTED] ok"
    );
    assert_eq!(text(&s, "ghp_name=abc123 ok"), "ghp_name=[REDACTED] ok");
    assert_eq!(
        text(&s, "Authorization: Bearer abcdefghijklmnop"),
        "Authorization: Bearer [REDACTED]"
    );
}

#[test]
fn a_token_prefix_counts_only_as_written() {
    // The automaton matches every word in any casing; a token's prefix is checked as
    // written: `akia…`, `GHP_…` and `EYJ…` are no tokens.
    let s = sanitizer(&[]);
    for line in [
        "id akiaiosfodnn7example done",
        "GHP_abcdefghijklmnopqrstuvwxyz0123456789 done",
        "EYJhbGciOiJIUzI1NiJ9.EYJzdWIiOiIxIn0.abcdEFGHijkl done",
        "ask the task about risk",
    ] {
        assert_eq!(text(&s, line), line);
    }
    assert_eq!(
        text(&s, "id AKIAIOSFODNN7EXAMPLE done"),
        "id [REDACTED] done"
    );
}

// ---------------------------------------------------------------------------------
// Well-known tokens: each detector, positive and negative.

fn detector_count(s: &Sanitizer, name: &str) -> u64 {
    s.counts()
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no detector {name}"))
        .1
}

#[test]
fn detectors_table_matches_the_enum() {
    for (i, (d, _)) in DETECTORS.iter().enumerate() {
        assert_eq!(*d as usize, i);
    }
}

#[test]
fn well_known_tokens_in_prose() {
    let a36 = "aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dF3gH5";
    assert_eq!(a36.len(), 36);
    let cases: Vec<(String, &str, &str)> = vec![
        (format!("key sk_live_{} used", "51HxYzAbCdEfGh1234xx"), "stripe", "key [REDACTED] used"),
        (format!("key rk_test_{} used", "4eC39HqLyjWDarjtT1zdp7dc"), "stripe", "key [REDACTED] used"),
        (format!("gh ghp_{a36} ok"), "github", "gh [REDACTED] ok"),
        (format!("gh gho_{a36}"), "github", "gh [REDACTED]"),
        (format!("pat github_pat_11ABCDEFG0123456789abc_{}", "x".repeat(59)), "github", "pat [REDACTED]"),
        ("lab glpat-xYz12AbC34dEf56GhI78j ok".to_owned(), "gitlab", "lab [REDACTED] ok"),
        ("bot xoxb-1234567890-0987654321-AbCdEfGhIjKl ok".to_owned(), "slack", "bot [REDACTED] ok"),
        (
            "post to https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX now".to_owned(),
            "slack_webhook",
            "post to https://hooks.slack.com/services/[REDACTED] now",
        ),
        ("twilio SK0123456789abcdef0123456789abcdef ok".to_owned(), "twilio", "twilio [REDACTED] ok"),
        (
            format!("sg SG.{}.{} ok", "abcdefghijABCDEFGHIJ_-", "abcdefghijABCDEFGHIJ0123456789abcdefghij-_x"),
            "sendgrid",
            "sg [REDACTED] ok",
        ),
        ("maps AIzaSyA1b2C3d4E5f6G7h8I9j0K_l-MnOpQrStU ok".to_owned(), "google_api_key", "maps [REDACTED] ok"),
        (
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFy+/==;EndpointSuffix=core.windows.net".to_owned(),
            "azure_storage_key",
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=[REDACTED];EndpointSuffix=core.windows.net",
        ),
        (format!("npm npm_{a36}"), "npm", "npm [REDACTED]"),
        (
            "openai sk-proj-Ab3dEf5hIj7lMn9pQr1tUv3xYz5bCd7fGh9jKl1nOp3r ok".to_owned(),
            "openai",
            "openai [REDACTED] ok",
        ),
        (
            "old sk-Ab3dEf5hIj7lMn9pQr1tUv3xYz5bCd7fGh9jKl1nOp3rSt5v".to_owned(),
            "openai",
            "old [REDACTED]",
        ),
        (
            "claude sk-ant-api03-Ab3dEf5hIj7lMn9pQr1tUv3xYz5bCd7fGh9jKl1nOp3rSt5vWx-AA ok".to_owned(),
            "anthropic",
            "claude [REDACTED] ok",
        ),
    ];
    for (line, detector, want) in cases {
        let s = sanitizer(&[]);
        assert_eq!(text(&s, &line), want, "{line}");
        assert_eq!(detector_count(&s, detector), 1, "{line}");
        // In a JSON value, and in a raw line, too.
        let v = json(&s, &format!("{{\"note\":{}}}", json_string(&line)));
        assert_eq!(v["note"], want);
        assert_eq!(s.redact_text(&line), want);
    }
}

#[test]
fn ordinary_ids_and_hashes_are_not_tokens() {
    let s = sanitizer(&[]);
    for line in [
        "commit 3f786850e387550fdab836ed7e6dc881de23001b merged",
        "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "request 550e8400-e29b-41d4-a716-446655440000 done",
        "task-1234 and sk-learn and scikit sk-learn-tutorial-for-beginners-and-experts",
        "SKU 12 SKIP SK0123 SKX0123456789abcdef0123456789abcdef",
        "ghp_short gho_ ghs_tooshort github_pat_ glpat-short xoxb-test npm_abc",
        "sk_live_short rk_test_ AIzaShort SG.abc.def AccountKey=short",
        "the hooks.slack.com/services/ page",
        // The webhook's trigger word is `hooks.slack`; the rest of the URL is checked.
        "hooks.slack.org/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
        "hooks.slack.com/servicesT00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
        "ends with hooks.slack",
        "asks-for-more desk_live_x",
        "mask-Ab3dEf5hIj7lMn9pQr1tUv3xYz5bCd7fGh9jKl1nOp3r",
        "twilio SK0123456789ABCDEF0123456789ABCDEF0 too long",
    ] {
        let event = format!("{{\"message\":{}}}", json_string(line));
        let out = s.sanitize(&event);
        assert!(matches!(out, Cow::Borrowed(_)), "{line} -> {out}");
    }
}

// ---------------------------------------------------------------------------------
// Linear work on adversarial lines.

/// The scan's own count of bytes looked at for one event.
fn work(s: &Sanitizer, event: &str) -> usize {
    let mut scan = Scan::new(event, Mode::Json);
    s.detect(&mut scan);
    s.settle(&mut scan);
    scan.work
}

fn adversarial(n: usize) -> Vec<(&'static str, String)> {
    vec![
        ("token", "token".repeat(n)),
        ("password=", "password=".repeat(n)),
        ("key json", "\"token\":".repeat(n)),
        ("cards", "4111 1111 1111 1111, ".repeat(n)),
        ("card run", "4111 1111 1111 1111 ".repeat(n)),
        ("digits", "4111 ".repeat(n)),
        ("urls", "http://a:b@".repeat(n)),
        ("schemes", "http://".repeat(n)),
        ("escapes", "\\u00".repeat(n)),
        ("backslashes", "\\".repeat(n)),
        ("quotes", "\\\"".repeat(n)),
        ("jwt", "eyJ".repeat(n)),
        ("pem", "-----BEGIN PRIVATE KEY-----".repeat(n)),
        ("bearer", "Bearer ".repeat(n)),
        ("tokens", "sk-ghp_xoxb-SK".repeat(n)),
        ("percent", "%2".repeat(n)),
        ("secret runs", "secret-value-1".repeat(n)),
        (
            "nested",
            format!("{}{}", "{\"a\":\"".repeat(n), "x".repeat(n)),
        ),
    ]
}

#[test]
fn adversarial_lines_are_redacted_and_valid() {
    let s = sanitizer(&[("A", "secret-value-1"), ("B", "p\"w\\d/é<&>")]);
    for (name, line) in adversarial(20_000) {
        let event = format!("{{\"message\":{}}}", json_string(&line));
        let out = s.sanitize(&event);
        let v: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{name}: {e}"));
        let message = v["message"].as_str().unwrap();
        match name {
            "cards" => assert!(message == "[REDACTED], ".repeat(20_000), "{name}"),
            "urls" => assert!(!message.contains(":b@"), "{name}"),
            "secret runs" => assert!(message == "[REDACTED]".repeat(20_000), "{name}"),
            _ => {}
        }
        // As a raw line too.
        s.text_spans(&line);
        s.redact_text(&line);
    }
    // Deeply nested escapes.
    let mut deep = "p\"w\\d/é<&>".to_owned();
    for _ in 0..12 {
        deep = json_string(&deep);
    }
    text(&s, &deep);
    json(&s, &format!("{{\"m\":{deep}}}"));
}

#[test]
fn work_grows_linearly_with_the_line() {
    let s = sanitizer(&[("A", "secret-value-1"), ("B", "p\"w\\d/é<&>")]);
    let (small, big) = (adversarial(2_000), adversarial(4_000));
    for ((name, a), (_, b)) in small.into_iter().zip(big) {
        let event = |l: &str| format!("{{\"message\":{}}}", json_string(l));
        let (ea, eb) = (event(&a), event(&b));
        let (wa, wb) = (work(&s, &ea), work(&s, &eb));
        assert!(
            wb <= wa * 21 / 10 + 64,
            "{name}: {wa} then {wb} when doubled"
        );
        assert!(wb <= eb.len() * 40, "{name}: {wb} for {} bytes", eb.len());
    }
}

// ---------------------------------------------------------------------------------
// Output validity and panics.

#[test]
fn odd_input_never_panics() {
    let s = sanitizer(&[("A", "secret-value-1"), ("B", "p\"w\\d/é<&>")]);
    for input in [
        "",
        "\"",
        "\\",
        "{\"a\":\"\\ud800\"}",
        "{\"a\":\"\\u12",
        "{\"a\":\"x\\",
        "\"\\u00e",
        "é\\",
        "{\"password\":",
        "{\"password\":{",
        "{\"password\":\"",
        "password=",
        "://",
        "x://u:",
        "-----BEGIN PRIVATE KEY-----",
        "{\"a\":1}}}]]",
        "eyJ",
        "AKIA",
        "\\\"secret-value-1",
        "secret-value-1\\",
        "%",
        "%e",
        "%é1",
        "sk-",
        "{\"k\":\"\\/\\/\\/\"}",
        "\u{feff}\u{fffd}",
    ] {
        s.sanitize(input);
        s.redact_text(input);
        for r in s.text_spans(input) {
            assert!(input.is_char_boundary(r.start) && input.is_char_boundary(r.end));
        }
    }
}

// ---------------------------------------------------------------------------------
// The capture stage's API.

#[test]
fn text_spans_and_redact_text() {
    let s = sanitizer(&[("A", "s3cr3t-value"), ("B", "quo\"ted-pw")]);
    let line = "user=ann password=hunter2 key s3cr3t-value json {\"x\":\"quo\\\"ted-pw\"} é card 4111 1111 1111 1111";
    let spans = s.text_spans(line);
    let pieces: Vec<&str> = spans.iter().map(|r| &line[r.clone()]).collect();
    assert_eq!(
        pieces,
        [
            "hunter2",
            "s3cr3t-value",
            "quo\\\"ted-pw",
            "4111 1111 1111 1111"
        ]
    );
    for w in spans.windows(2) {
        assert!(w[0].end < w[1].start);
    }
    assert_eq!(
        s.redact_text(line),
        "user=ann password=[REDACTED] key [REDACTED] json {\"x\":\"[REDACTED]\"} é card [REDACTED]"
    );
    assert!(matches!(s.redact_text("nothing here"), Cow::Borrowed(_)));
    assert!(s.text_spans("nothing here").is_empty());
    // The longest form: the longest value as a list of its bytes (`115, 51, …`),
    // longer than its hex with spaces and its base64.
    let list: Vec<String> = "s3cr3t-value".bytes().map(|b| b.to_string()).collect();
    assert_eq!(s.longest_secret_form(), list.join(", ").len());
    assert!(3 * "s3cr3t-value".len() - 1 < s.longest_secret_form());
    assert!(
        base64::engine::general_purpose::STANDARD
            .encode("s3cr3t-value")
            .len()
            < s.longest_secret_form()
    );
    assert_eq!(sanitizer(&[]).longest_secret_form(), 0);
    // Percent-encoded in a raw line.
    assert_eq!(
        s.redact_text("GET /?q=s3cr3t%2Dvalue"),
        "GET /?q=[REDACTED]"
    );
}

// ---------------------------------------------------------------------------------
// Properties.

mod props {
    use super::*;
    use proptest::prelude::*;

    /// A loaded secret: printable ASCII with the characters escapes care about, and
    /// some non-ASCII.
    fn secret() -> impl Strategy<Value = String> {
        "[ -~éü✓]{6,40}"
    }

    /// The encodings the README lists, as they can appear in an app's line.
    fn encode(secret: &str, how: usize, lower: bool) -> String {
        let once = |s: &str| {
            let j = json_string(s);
            j[1..j.len() - 1].to_owned()
        };
        match how {
            0 => secret.to_owned(),
            1 => once(secret),
            2 => once(&once(secret)),
            3 => secret
                .encode_utf16()
                .map(|u| {
                    if lower {
                        format!("\\u{u:04x}")
                    } else {
                        format!("\\u{u:04X}")
                    }
                })
                .collect(),
            4 => once(secret).replace('/', "\\/"),
            5 => {
                let p = percent_encoding::utf8_percent_encode(secret, URL_RESERVED)
                    .to_string()
                    .replace("%20", "+");
                if lower {
                    p.to_lowercase_hex()
                } else {
                    p
                }
            }
            _ => {
                let e = if lower {
                    base64::engine::general_purpose::URL_SAFE_NO_PAD
                } else {
                    base64::engine::general_purpose::STANDARD
                };
                e.encode(secret)
            }
        }
    }

    trait LowerHex {
        fn to_lowercase_hex(&self) -> String;
    }

    impl LowerHex for String {
        /// Lower-cases the hex digits of each `%XX`, nothing else.
        fn to_lowercase_hex(&self) -> String {
            let mut out = String::with_capacity(self.len());
            let mut left = 0;
            for c in self.chars() {
                if c == '%' {
                    left = 2;
                    out.push(c);
                } else if left > 0 {
                    left -= 1;
                    out.push(c.to_ascii_lowercase());
                } else {
                    out.push(c);
                }
            }
            out
        }
    }

    fn build(secrets: &[String]) -> Sanitizer {
        Sanitizer::new(Config {
            secrets: secrets
                .iter()
                .enumerate()
                .map(|(i, v)| KnownSecret::new(format!("S{i}"), v.clone()))
                .collect(),
            ..Config::default()
        })
        .unwrap()
        .0
    }

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            "\\PC{0,24}".prop_map(Value::String),
            "[0-9 -]{12,24}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
                prop::collection::btree_map("[a-zA-Z_-]{0,12}", inner, 0..6)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// `after` has `before`'s shape, where it was not redacted.
    fn same_shape(before: &serde_json::Value, after: &serde_json::Value) -> bool {
        use serde_json::Value;
        match (before, after) {
            (_, Value::String(s)) if s.contains("[REDACTED") => true,
            (Value::Object(a), Value::Object(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .all(|(k, v)| b.get(k).is_some_and(|w| same_shape(v, w)))
            }
            (Value::Array(a), Value::Array(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(v, w)| same_shape(v, w))
            }
            (Value::String(_), Value::String(_)) => true,
            // serde_json reads floats back to the nearest value, not always the same.
            (Value::Number(_), Value::Number(_)) => true,
            (a, b) => a == b,
        }
    }

    /// The trigger automaton's match states over `bytes`, walked a byte at a time.
    fn one_lane<I: Id>(dfa: &Rows<I>, bytes: &[u8]) -> Vec<(usize, I)> {
        let mut hits = Vec::new();
        let mut sid = dfa.start();
        for (i, &b) in bytes.iter().enumerate() {
            sid = dfa.next(sid, b);
            if dfa.is_match(sid) {
                hits.push((i, sid));
            }
        }
        hits
    }

    /// The built-in words' table, which has `u16` ids.
    fn small(view: View<'_>) -> Result<Rows<'_, u16>, TestCaseError> {
        match view {
            View::Small(rows) => Ok(rows),
            View::Large(_) => Err(TestCaseError::fail("the built-in table has u32 ids")),
        }
    }

    /// Every trigger word that ends in `bytes`, as (end, word id), by the table's walk.
    fn walked<I: Id>(rows: &Rows<'_, I>, bytes: &[u8], longest: usize) -> Vec<(usize, u32)> {
        let mut found = Vec::new();
        walk(rows, bytes, longest, None, |i, sid| {
            found.extend(rows.words(sid).iter().map(|&w| (i + 1, w)));
        });
        found.sort_unstable();
        found
    }

    /// The same by aho-corasick's own overlapping search over the same words, in any
    /// ASCII casing as the walk finds them.
    fn searched(words: &[String], bytes: &[u8]) -> Vec<(usize, u32)> {
        let ac = aho_corasick::AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .ascii_case_insensitive(true)
            .build(words)
            .expect("the words build");
        let mut found: Vec<(usize, u32)> = ac
            .find_overlapping_iter(bytes)
            .map(|m| (m.end(), m.pattern().as_u32()))
            .collect();
        found.sort_unstable();
        found
    }

    #[test]
    fn the_built_in_table_is_small() {
        let triggers = builtin_triggers().expect("the built-in words build");
        let rows = small(triggers.table.view()).expect("u16 ids");
        assert!(
            rows.memory() < 64 * 1024,
            "{} bytes (aho-corasick's DFA: about 245 KB)",
            rows.memory()
        );
        assert!(!rows.is_match(rows.start()));
    }

    /// The generated table (`table/builtin.rs`) is what the built-in words build now,
    /// and is the one in use. With `DECKHAND_TEST_REGENERATE=1` the test writes it instead.
    #[test]
    fn the_built_in_table_is_current() {
        let words = Triggers::words(&[]);
        let Ok(Table::Small(built)) = Triggers::build(&words) else {
            panic!("the built-in words build a table of u16 ids");
        };
        let kinds: Vec<Trigger> = words.iter().map(|&(_, k)| k).collect();
        let sources: Vec<String> = kinds.iter().map(|k| k.source()).collect();
        let words: Vec<String> = words.into_iter().map(|(w, _)| w).collect();
        let fresh = built.rows().source(&words, &sources);
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/sanitize/table/builtin.rs");
        if std::env::var_os("DECKHAND_TEST_REGENERATE").is_some() {
            std::fs::write(path, &fresh).expect("writes the generated table");
            return;
        }
        let current = include_str!("table/builtin.rs");
        assert!(
            fresh == current,
            "{path} is stale: the built-in trigger words changed. Regenerate it with \
             `DECKHAND_TEST_REGENERATE=1 cargo test -p logship --lib the_built_in_table_is_current`"
        );
        let in_use = Triggers::new(&[]).expect("the built-in words");
        assert!(matches!(in_use.table, Table::Builtin));
        assert_eq!(in_use.words, words);
        assert_eq!(in_use.kinds, kinds);
        assert_eq!(in_use.longest, words.iter().map(String::len).max().unwrap());
    }

    /// The built-in words' prefilter tables (`BUILTIN` in `prefilter.rs`) are what the
    /// words make now, and in use. With `DECKHAND_TEST_REGENERATE=1` the test writes them.
    #[test]
    fn the_built_in_prefilter_is_current() {
        let (words, _) = Table::builtin_words();
        let fresh = Prefilter::new(words).expect("no empty word");
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/sanitize/prefilter.rs");
        let head = "const BUILTIN: ([[u8; 16]; SPAN], [[u8; 16]; SPAN]) = ";
        if std::env::var_os("DECKHAND_TEST_REGENERATE").is_some() {
            let text = std::fs::read_to_string(path).expect("reads prefilter.rs");
            let at = text.find(head).expect("BUILTIN in prefilter.rs") + head.len();
            let end = at + text[at..].find(";\n").expect("BUILTIN ends");
            let text = format!("{}{}{}", &text[..at], fresh.source(), &text[end..]);
            std::fs::write(path, text).expect("writes prefilter.rs");
            return;
        }
        assert!(
            fresh == Prefilter::builtin(),
            "BUILTIN in {path} is stale: the built-in trigger words changed. Regenerate \
             it with `DECKHAND_TEST_REGENERATE=1 cargo test -p logship --lib \
             the_built_in_prefilter_is_current`"
        );
        let in_use = Triggers::new(&[]).expect("the built-in words");
        assert!(in_use.prefilter == Some(Prefilter::builtin()));
    }

    /// A text of pieces, some with a trigger word every few bytes (walked in lanes) and
    /// some with a few (walked from the prefilter's marks), with words across every
    /// border between them: the same matches as a walk of one lane.
    #[test]
    fn pieces_walked_in_lanes_and_from_marks_are_walked_as_one() {
        let triggers = builtin_triggers().expect("the built-in words build");
        let dfa = &small(triggers.table.view()).expect("u16 ids");
        let filter = triggers.prefilter.clone().expect("a prefilter");
        if !filter.usable() {
            return; // no AVX2 here: the walk has no prefilter to skip with
        }
        let mut text = String::new();
        for k in 0..6 {
            let piece = if k % 2 == 0 { "token=x " } else { "....... " };
            while text.len() < (k + 1) * PIECE - 5 {
                text.push_str(piece);
            }
            text.truncate((k + 1) * PIECE - 5);
            text.push_str(["password", "Bearer", "PRIVATE KEY", "eyJ", "sk"][k % 5]);
        }
        let mut marks = [0u64; PIECE / 64];
        let sparse: Vec<bool> = (0..text.len().div_ceil(PIECE))
            .map(|k| {
                let range = k * PIECE..text.len().min((k + 1) * PIECE);
                filter.sparse(text.as_bytes(), range, &mut marks)
            })
            .collect();
        assert!(
            sparse.contains(&true) && sparse.contains(&false),
            "{sparse:?}"
        );
        for skip in [0, 3, 4096] {
            let bytes = &text.as_bytes()[skip..];
            let mut hits = Vec::new();
            walk(dfa, bytes, triggers.longest, Some(&filter), |i, sid| {
                hits.push((i, sid))
            });
            let one = one_lane(dfa, bytes);
            assert!(one.len() > 1000, "{} hits", one.len());
            assert_eq!(hits, one, "skip {skip}");
        }
    }

    /// What the walk skips to costs little to build: the built-in words' tables are
    /// generated, and a thousand extra key names are placed without the moves.
    #[test]
    fn a_prefilter_of_many_key_names_builds() {
        let names: Vec<String> = (0..2000).map(|i| format!("k{i}_name")).collect();
        let filter = Prefilter::new(&names).expect("no empty name");
        let text = b"xx k1999_name=1 and K7_NAME: 2";
        let mut marks = [0u64; 1];
        filter.mark(text, 0..text.len(), &mut marks);
        assert!(
            marks[0] & (1 << 3) != 0 && marks[0] & (1 << 20) != 0,
            "{:b}",
            marks[0]
        );
        assert!(Prefilter::new(&["ok", ""]).is_none());
        // The same words in another order: the same filter.
        let reversed: Vec<&String> = names.iter().rev().collect();
        assert!(Prefilter::new(&reversed) == Some(filter));
    }

    /// Every state the DFA reaches, on every byte, goes where the DFA goes, and is a
    /// match with the same words.
    #[test]
    fn is_a_faithful_copy() {
        use aho_corasick::automaton::Automaton;
        let triggers = builtin_triggers().expect("the built-in words build");
        let rows = small(triggers.table.view()).expect("u16 ids");
        let dfa = DFA::builder()
            .match_kind(MatchKind::Standard)
            .ascii_case_insensitive(true)
            .prefilter(false)
            .build(&triggers.words)
            .expect("the words build");
        let no = aho_corasick::Anchored::No;
        let mut pairs = vec![(dfa.start_state(no).expect("a start"), rows.start())];
        let mut seen = std::collections::HashMap::from([(pairs[0].0, pairs[0].1)]);
        while let Some((s, t)) = pairs.pop() {
            assert_eq!(dfa.is_match(s), rows.is_match(t));
            let theirs: Vec<u32> = match dfa.is_match(s) {
                true => (0..dfa.match_len(s))
                    .map(|k| dfa.match_pattern(s, k).as_u32())
                    .collect(),
                false => Vec::new(),
            };
            assert_eq!(theirs, rows.words(t));
            for b in 0..=255u8 {
                let (s2, t2) = (dfa.next_state(no, s, b), rows.next(t, b));
                match seen.get(&s2) {
                    Some(&known) => assert_eq!(known, t2, "byte {b}"),
                    None => {
                        seen.insert(s2, t2);
                        pairs.push((s2, t2));
                    }
                }
            }
        }
        assert!(seen.len() > 200, "{} states", seen.len());
    }

    /// Key names enough for ids past `u16`: the table takes `u32` ids and finds the
    /// same words.
    #[test]
    fn many_extra_key_names_take_the_large_table() {
        let keys: Vec<String> = (0..300)
            .map(|i| format!("custom_field_number_{i}_value"))
            .collect();
        let triggers = Triggers::new(&keys).expect("the key names build");
        let View::Large(rows) = triggers.table.view() else {
            panic!("expected u32 ids");
        };
        let text = format!(
            "a custom_field_number_149_value=x and {} then Custom_Field_Number_7_VALUE: y",
            "z".repeat(300)
        );
        let found = walked(&rows, text.as_bytes(), triggers.longest);
        assert_eq!(found, searched(&triggers.words, text.as_bytes()));
        assert!(found.len() >= 2, "{found:?}");
    }

    /// A text of several pieces, with trigger words across the pieces' borders and
    /// their middles: the walk carries its state from piece to piece.
    #[test]
    fn a_long_text_is_walked_piece_by_piece_as_one() {
        let triggers = builtin_triggers().expect("the built-in words build");
        let dfa = &small(triggers.table.view()).expect("u16 ids");
        let mut text = String::new();
        let mut k = 0;
        while text.len() < 3 * PIECE + 1000 {
            let word = &triggers.words[k % triggers.words.len()];
            text.push_str(&"x".repeat(k % 37));
            text.push_str(word);
            text.push_str(if k % 3 == 0 { "=" } else { " " });
            k += 1;
        }
        for skip in [0, 1, 7, 24, 25] {
            let bytes = &text.as_bytes()[skip..];
            let mut lanes = Vec::new();
            walk(dfa, bytes, triggers.longest, None, |i, sid| {
                lanes.push((i, sid))
            });
            let one = one_lane(dfa, bytes);
            assert!(one.len() > 1000, "{} hits", one.len());
            assert_eq!(lanes, one, "skip {skip}");
        }
    }

    /// A piece of the agent's own fields around a text event's message (`len` bytes
    /// from `from`, wrapping): the event of `stream` of a line starting with `word` at
    /// `at`, with the task's context.
    fn frame_piece(
        at: i64,
        stream: crate::structure::Stream,
        word: &str,
        from: usize,
        len: usize,
    ) -> String {
        use crate::structure::Structurer;
        let mut structurer = Structurer::new(stream, &ecs_options());
        let mut out = Vec::new();
        structurer.push(word.as_bytes(), at, &mut out);
        structurer.flush(&mut out);
        let json = out.first().map(|e| e.json.clone()).unwrap_or_default();
        let head = out.first().map_or(0, |e| e.head);
        let ecs = json.rfind(",\"ecs\"").unwrap_or(json.len());
        let fields = format!("{}{}", &json[..head], &json[ecs..]);
        let from = from % fields.len().max(1);
        fields
            .get(from..(from + len).min(fields.len()))
            .unwrap_or_default()
            .to_owned()
    }

    /// Any one of the built-in trigger words.
    fn trigger_word() -> impl Strategy<Value = String> {
        any::<prop::sample::Index>().prop_map(|i| {
            builtin_triggers()
                .map(|t| i.get(&t.words).clone())
                .unwrap_or_default()
        })
    }

    /// A line of a chunk: text around one form of a loaded secret (`how` 0–6, see
    /// [`encode`]), a piece of one (7: all but its last character), or none (8, 9);
    /// maybe ending in `\r`.
    fn chunk_line(
    ) -> impl Strategy<Value = (String, String, prop::sample::Index, usize, bool, bool)> {
        (
            "\\PC{0,16}",
            "\\PC{0,16}",
            any::<prop::sample::Index>(),
            0usize..10,
            any::<bool>(),
            any::<bool>(),
        )
    }

    /// Each generated line of [`chunk_line`], made from `secrets`.
    fn chunk_lines(
        secrets: &[String],
        lines: &[(String, String, prop::sample::Index, usize, bool, bool)],
    ) -> Vec<String> {
        lines
            .iter()
            .map(|(before, after, which, how, lower, cr)| {
                let secret = which.get(secrets);
                let form = match how {
                    0..=6 => encode(secret, *how, *lower),
                    7 => {
                        let mut piece = secret.clone();
                        piece.pop();
                        piece
                    }
                    _ => String::new(),
                };
                format!("{before}{form}{after}{}", if *cr { "\r" } else { "" })
            })
            .collect()
    }

    /// The built-in trigger words and their automaton, built once for every case.
    fn builtin_triggers() -> Option<&'static Triggers> {
        static TRIGGERS: std::sync::OnceLock<Option<Triggers>> = std::sync::OnceLock::new();
        TRIGGERS.get_or_init(|| Triggers::new(&[]).ok()).as_ref()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

        /// The loaded secrets looked for once in a chunk of lines
        /// ([`crate::capture::Vouch`]) redact each line as its own search would: a
        /// line the chunk's search vouches for holds none, as text and as an app's
        /// JSON line.
        #[test]
        fn a_chunk_searched_once_redacts_each_line_as_its_own_search(
            lines in prop::collection::vec(chunk_line(), 1..12),
            secrets in prop::collection::vec(secret(), 1..=3),
        ) {
            use crate::structure::{Options, Stream, Structurer};
            let s = std::sync::Arc::new(build(&secrets));
            let lines = chunk_lines(&secrets, &lines);
            for json in [false, true] {
                let texts: Vec<String> = lines
                    .iter()
                    .map(|l| if json { format!("{{\"m\":{}}}", json_string(l)) } else { l.clone() })
                    .collect();
                let chunk = texts.join("\n") + "\n";
                let mut structurer = Structurer::new(Stream::Stdout, &Options::default());
                structurer.redact_with(s.clone());
                let mut starts = Vec::new();
                let mut vouch = crate::capture::Vouch::new(&structurer, chunk.as_bytes(), &mut starts);
                let mut at = 0;
                for t in &texts {
                    let word = vouch.line(at, at + t.len());
                    at += t.len() + 1;
                    if json {
                        prop_assert_eq!(s.sanitize_after_vouched(t, 0, word), s.sanitize(t));
                    } else {
                        prop_assert_eq!(s.redact_text_vouched(t, word), s.redact_text(t));
                    }
                }
            }
        }

        #[test]
        fn no_loaded_secret_survives_in_any_encoding(
            line in "\\PC{0,80}",
            secrets in prop::collection::vec(secret(), 1..=3),
            which in any::<prop::sample::Index>(),
            how in 0usize..7,
            lower in any::<bool>(),
            at in any::<prop::sample::Index>(),
        ) {
            let s = std::sync::Arc::new(build(&secrets));
            let secret = which.get(&secrets);
            let form = encode(secret, how, lower);
            let cut = line.char_indices().map(|(i, _)| i).chain([line.len()]).collect::<Vec<_>>();
            let p = *at.get(&cut);
            let line = format!("{} {form} {}", &line[..p], &line[p..]);
            let event = format!("{{\"level\":\"info\",\"message\":{}}}", json_string(&line));
            let out = s.sanitize(&event);
            let v: serde_json::Value = serde_json::from_str(&out)
                .map_err(|e| TestCaseError::fail(format!("{e}: {out}")))?;
            let message = v["message"].as_str().unwrap_or_default();
            prop_assert!(!message.contains(&form), "{form:?} survived in {message:?}");
            // The raw line through the capture stage's API, too.
            let raw = s.redact_text(&line);
            prop_assert!(!raw.contains(&form), "{form:?} survived in raw {raw:?}");
            // And through the structure stage that redacts a text event's message as
            // text, as the capture makes events: the event is JSON, with no trace.
            for out in redacted_text_events(&s, crate::structure::Stream::Stdout, &line) {
                let v: serde_json::Value = serde_json::from_str(&out)
                    .map_err(|e| TestCaseError::fail(format!("{e}: {out}")))?;
                let message = v["message"].as_str().unwrap_or_default();
                prop_assert!(!message.contains(&form), "{form:?} survived in {message:?}");
                prop_assert!(!out.contains(&form), "{form:?} survived in {out:?}");
            }
        }

        #[test]
        fn a_sensitive_key_in_any_casing_loses_its_value(
            stem in prop::sample::select(super::super::keys::KEY_STEMS),
            upper in prop::collection::vec(any::<bool>(), 16),
            value in "[a-z0-9]{4,16}",
            json_line in any::<bool>(),
        ) {
            let s = build(&[]);
            let key: String = stem
                .chars()
                .zip(upper.iter().cycle())
                .map(|(c, &u)| if u { c.to_ascii_uppercase() } else { c })
                .collect();
            prop_assume!(!stem.contains(value.as_str()));
            let out = if json_line {
                s.sanitize(&format!("{{\"{key}\":\"{value}\",\"n\":1}}")).into_owned()
            } else {
                s.redact_text(&format!("{key}={value} !")).into_owned()
            };
            prop_assert!(!out.contains(&value), "{key}: {value:?} survived in {out:?}");
            prop_assert!(out.contains(&key), "{key} is kept: {out:?}");
        }

        #[test]
        fn valid_json_stays_valid_with_its_shape(
            map in prop::collection::btree_map("[a-zA-Z_-]{0,12}", json_value(), 0..8),
            secrets in prop::collection::vec(secret(), 0..=2),
        ) {
            let s = build(&secrets);
            let before = serde_json::Value::Object(map.into_iter().collect());
            let event = before.to_string();
            let out = s.sanitize(&event);
            let after: serde_json::Value = serde_json::from_str(&out)
                .map_err(|e| TestCaseError::fail(format!("{e}: {event} -> {out}")))?;
            prop_assert!(same_shape(&before, &after), "{event} -> {out}");
            if !out.contains("[REDACTED") {
                prop_assert_eq!(&*out, &*event);
            }
        }

        /// The walk in lanes finds every trigger word a walk of one lane
        /// finds, at the same places, in the same order: texts of trigger words (the
        /// longest included), their parts and other bytes, across the lanes' borders.
        #[test]
        fn the_walk_in_lanes_is_the_walk_in_one(
            parts in prop::collection::vec(
                prop_oneof![
                    trigger_word(),
                    "[a-zA-Z_ .:/=-]{0,6}",
                    "\\PC{0,3}",
                ],
                0..120,
            ),
            cut in 0usize..30,
        ) {
            let triggers = builtin_triggers().ok_or_else(|| TestCaseError::fail("no trigger words"))?;
            let dfa = &small(triggers.table.view())?;
            let text = parts.concat();
            // A word cut at its start or end by the slice, too.
            let bytes = &text.as_bytes()[cut.min(text.len())..];
            let one = one_lane(dfa, bytes);
            let mut lanes = Vec::new();
            walk(dfa, bytes, triggers.longest, None, |i, sid| lanes.push((i, sid)));
            prop_assert_eq!(&lanes, &one);
            // From the prefilter's marks, whatever their number, and as chosen.
            if let Some(filter) = triggers.prefilter.clone().filter(Prefilter::usable) {
                for filter in [filter.clone().always(), filter] {
                    let mut marked = Vec::new();
                    walk(dfa, bytes, triggers.longest, Some(&filter), |i, sid| marked.push((i, sid)));
                    prop_assert_eq!(&marked, &one);
                }
            }
            // And the words it finds are every word aho-corasick finds, where it finds
            // them: the table is a faithful copy of its DFA.
            prop_assert_eq!(
                walked(dfa, bytes, triggers.longest),
                searched(&triggers.words, bytes)
            );
        }

        /// The prefilter marks every byte a trigger word starts at, in any ASCII casing
        /// (a word of its own list too: extra key names), and its 32 bytes at a time
        /// are its test a byte at a time, in any range of any text.
        #[test]
        fn the_prefilter_marks_every_word_start(
            parts in prop::collection::vec(
                prop_oneof![
                    trigger_word(),
                    "[a-zA-Z_ .:/=-]{0,6}",
                    "\\PC{0,3}",
                    prop::collection::vec(any::<u8>(), 0..4)
                        .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
                ],
                0..80,
            ),
            extra in prop::collection::vec("[a-zA-Z0-9_:.-]{1,5}", 0..4),
            flips in prop::collection::vec(any::<bool>(), 64),
            from in any::<prop::sample::Index>(),
            len in 0usize..300,
        ) {
            // Random casing, as apps write key names.
            let text: String = parts
                .concat()
                .chars()
                .zip(flips.iter().cycle())
                .map(|(c, &f)| if f { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() })
                .collect();
            let bytes = text.as_bytes();
            let triggers = builtin_triggers().ok_or_else(|| TestCaseError::fail("no trigger words"))?;
            let mut words: Vec<String> = triggers.words.clone();
            words.extend(extra);
            let filters = [
                ("built-in", Prefilter::builtin(), &triggers.words),
                ("built", Prefilter::new(&words).ok_or_else(|| TestCaseError::fail("empty word"))?, &words),
            ];
            let start = if bytes.is_empty() { 0 } else { from.index(bytes.len()) };
            let range = start..bytes.len().min(start + len);
            for (name, filter, words) in filters {
                // Left as the last text's walk left them: nothing is cleared first.
                let mut marks = [u64::MAX; 8];
                let count = filter.mark(bytes, range.clone(), &mut marks);
                let marked = |p: usize| marks[(p - range.start) / 64] >> ((p - range.start) % 64) & 1 == 1;
                prop_assert_eq!(count, range.clone().filter(|&p| marked(p)).count());
                // Past the range, in the words it uses, no mark.
                let used_end = range.start + range.len().div_ceil(64) * 64;
                for p in range.end..used_end {
                    prop_assert!(!marked(p), "{} marks {} past the range's end {}", name, p, range.end);
                }
                for p in range.clone() {
                    prop_assert_eq!(marked(p), filter.may_start(bytes, p), "{} at {}", name, p);
                    let starts = words.iter().any(|w| {
                        bytes.get(p..p + w.len()).is_some_and(|b| b.eq_ignore_ascii_case(w.as_bytes()))
                    });
                    prop_assert!(!starts || marked(p), "{} at {}: {:?}", name, p, text);
                }
            }
        }

        /// The agent's own fields at the start of a text event hold no trigger word
        /// and no card: starting the walk and the card check after them changes
        /// nothing, for any line through the real structure stage.
        #[test]
        fn skipping_the_agents_own_fields_changes_nothing(
            parts in prop::collection::vec(
                prop_oneof![
                    trigger_word(),
                    "[a-zA-Z_ .:/=\"-]{0,6}",
                    "(INFO|WARN|ERROR|stdout|stderr|message|timestamp|level)",
                    "([0-9]{4}[ -]?){3,4}[0-9]{1,4}",
                    "\\PC{0,3}",
                ],
                0..40,
            ),
            stderr in any::<bool>(),
            secrets in prop::collection::vec(
                prop_oneof![secret(), Just("stdout".to_owned()), Just("stderr".to_owned())],
                0..=2,
            ),
        ) {
            use crate::structure::Stream;
            let s = build(&secrets);
            let line = parts.concat();
            let stream = if stderr { Stream::Stderr } else { Stream::Stdout };
            for e in text_events(stream, &line) {
                if !line.trim_start().starts_with('{') {
                    prop_assert!(e.head > 0, "{}", e.json);
                }
                prop_assert_eq!(s.sanitize_after(&e.json, e.head), s.sanitize(&e.json));
            }
        }

        /// Vouching once for a text event's own fields changes nothing: each event is
        /// what searching all of it makes of it, with secrets spelled like pieces of
        /// those fields (at any time, of any level and stream, the task's context) or
        /// like anything else, and lines at any times through one structurer.
        #[test]
        fn fields_found_clean_once_are_clean_in_every_event(
            lines in prop::collection::vec(
                (
                    0i64..4_102_444_800_000,
                    prop::collection::vec(
                        prop_oneof![
                            "[a-z0-9 =:.,_\"{}-]{1,8}",
                            "(ERROR|WARN|info|stdout|stderr|message|level|task-1|web|app:3)",
                        ],
                        1..8,
                    ),
                ),
                1..6,
            ),
            pieces in prop::collection::vec(
                (any::<prop::sample::Index>(), "(ERROR|WARN|x)", 0usize..200, 6usize..24),
                0..=2,
            ),
            others in prop::collection::vec(prop_oneof!["[a-z0-9 =:._-]{6,12}", secret()], 0..=1),
            stderr in any::<bool>(),
        ) {
            use crate::structure::Stream;
            let stream = if stderr { Stream::Stderr } else { Stream::Stdout };
            let lines: Vec<(i64, String)> = lines.into_iter().map(|(at, parts)| (at, parts.concat())).collect();
            let lines: Vec<(i64, &str)> = lines.iter().map(|(at, l)| (*at, l.as_str())).collect();
            // Pieces of the fields of events at the lines' times (or a second off).
            let mut secrets = others;
            for (k, (line, word, from, len)) in pieces.iter().enumerate() {
                let at = line.get(&lines).0 + 1000 * (k as i64 % 2);
                secrets.push(frame_piece(at, stream, word, *from, *len));
            }
            let s = std::sync::Arc::new(build(&secrets));
            for e in vouched_events(&s, &ecs_options(), stream, &lines) {
                prop_assert_eq!(e.sanitized(&s), s.sanitize_outside(&e.json, e.head..e.head));
            }
        }

        #[test]
        fn any_text_never_panics(
            input in "(\\PC|[\\\\\"{}:,%+u0-9a-f])*",
            secrets in prop::collection::vec(secret(), 0..=2),
        ) {
            let s = build(&secrets);
            s.sanitize(&input);
            s.redact_text(&input);
            let spans = s.text_spans(&input);
            for r in &spans {
                prop_assert!(r.start < r.end && input.is_char_boundary(r.start) && input.is_char_boundary(r.end));
            }
            for w in spans.windows(2) {
                prop_assert!(w[0].end <= w[1].start);
            }
        }
    }
}

/// A message sanitized from a thread-local's destructor, after the walk's own buffer
/// (a thread-local too) is gone, is redacted as any other; it used to be a panic in a
/// destructor, which aborts the process. glibc runs a thread's destructors in the
/// reverse order of their registration: the guard's registers first, so it runs last.
#[test]
fn a_text_sanitized_while_the_threads_locals_are_destroyed_is_redacted() {
    use std::sync::mpsc;
    struct Guard(Option<(Sanitizer, mpsc::Sender<String>)>);
    impl Drop for Guard {
        fn drop(&mut self) {
            if let Some((s, sent)) = self.0.take() {
                let _ = sent.send(text(&s, "late password=hunter22 here"));
            }
        }
    }
    thread_local! {
        static GUARD: std::cell::RefCell<Guard> = const { std::cell::RefCell::new(Guard(None)) };
    }
    let (sent, got) = mpsc::channel();
    std::thread::spawn(move || {
        let s = sanitizer(&[]);
        GUARD.with(|g| g.borrow_mut().0 = Some((s, sent)));
        // The walk's buffer is made now, after the guard: destroyed before it.
        let g = GUARD.with(|g| text(&g.borrow().0.as_ref().unwrap().0, "password=x1y2z3w4"));
        assert_eq!(g, "password=[REDACTED]");
    })
    .join()
    .unwrap();
    assert_eq!(got.recv().unwrap(), "late password=[REDACTED] here");
}
