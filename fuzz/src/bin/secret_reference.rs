//! The Secrets Manager reference parser (`secretsmanager:…`, `arn:aws:secretsmanager:…`)
//! and the whole-secret id parser: no panic on any text, and a parsed value is a
//! reference.

use agent::secrets::reference::{is_reference, parse, parse_secret_id};
use agent::secrets::Key;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let text = String::from_utf8_lossy(data);
        let reference = is_reference(&text);
        match parse(&text) {
            Ok(parsed) => {
                assert!(
                    reference,
                    "parsed a value that is not a reference: {text:?}"
                );
                if let Key::SecretsManager(k) = &parsed.key {
                    assert!(!k.secret_id.is_empty(), "empty secret id from {text:?}");
                    assert!(
                        k.region.as_ref().is_none_or(|r| !r.is_empty()),
                        "empty region from {text:?}"
                    );
                }
            }
            Err(e) => assert!(!e.is_empty(), "an empty error for {text:?}"),
        }
        if let Ok(key) = parse_secret_id(&text) {
            let _ = key.to_string();
        }
    });
}
