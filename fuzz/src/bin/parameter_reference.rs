//! The Parameter Store parsers (`ssm:…` and `arn:aws:ssm:…` references, the
//! `DECKHAND_ENV_PARAMETERS` paths, names, and the variable a parameter becomes): no
//! panic on any text, and what they accept follows AWS's name rules.

use agent::secrets::parameter::{check_name, is_reference, parse, parse_path, variable_name};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let text = String::from_utf8_lossy(data);
        if let Ok(key) = parse(&text) {
            assert!(is_reference(&text), "parsed a non-reference: {text:?}");
            let request = key.request_name();
            assert!(
                *text == request || text.strip_prefix("ssm:") == Some(request.as_str()),
                "{text:?} parsed into {key:?}"
            );
            let _ = (key.bare_name(), key.version());
        }
        if let Ok(path) = parse_path(&text) {
            assert!(path.key.path.starts_with('/'), "{text:?} -> {path:?}");
            let _ = path.key.to_string();
        }
        if check_name(&text).is_ok() {
            assert!(
                text.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c)),
                "check_name accepted {text:?}"
            );
        }
        for keep_case in [false, true] {
            let name = variable_name(&text, keep_case);
            assert!(!name.contains(['-', '.', '/']), "{text:?} -> {name:?}");
        }
    });
}
