//! The `postgres://` URL parser: no panic on any text, and an error never shows a
//! piece of the password.
//!
//! The password is taken by a simple rule on the input: after `scheme://`, from the
//! first `:` to the last `@` (what a user with an unencoded `/ ? # @` in the password
//! means). No 4-character window of it may appear in the error's `Display` or `Debug`,
//! unless it also appears in the error for the same URL with the password's letters
//! and digits replaced (a canary): that text is the message's own (`USER`, `sslmode`).
//! When the canary is refused for another reason, the two cannot be compared.

use deckhand_fuzz::windows;
use pgconn::{ConfigError, PgConfig};

/// The shortest piece of a password that counts as a leak.
const WINDOW: usize = 4;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let url = String::from_utf8_lossy(data);
        let Err(error) = PgConfig::from_url(&url) else {
            return;
        };
        let shown = format!("{error} {error:?}");
        let Some((start, end)) = password_span(&url) else {
            return;
        };
        let password = &url[start..end];
        let canary = format!("{}{}{}", &url[..start], canary(password), &url[end..]);
        // A canary that parses changed more than the password's text: no comparison.
        let Err(canary_error) = PgConfig::from_url(&canary) else {
            return;
        };
        // Refused for another reason: another message, whose fixed text may differ.
        if std::mem::discriminant(&error) != std::mem::discriminant(&canary_error) {
            return;
        }
        if let (ConfigError::Url { reason: a }, ConfigError::Url { reason: b }) =
            (&error, &canary_error)
        {
            if a != b {
                return;
            }
        }
        let canary_shown = format!("{canary_error} {canary_error:?}");
        for window in windows(password, WINDOW) {
            assert!(
                !shown.contains(window) || canary_shown.contains(window),
                "the error shows {window:?} of the password {password:?}: {shown}"
            );
        }
    });
}

/// Byte range of the password: `scheme://user:PASSWORD@…`, up to the last `@`.
fn password_span(url: &str) -> Option<(usize, usize)> {
    let authority = url.find("://")? + 3;
    let at = authority + url[authority..].rfind('@')?;
    let colon = authority + url[authority..at].find(':')?;
    Some((colon + 1, at))
}

/// The same shape with other text: digits stay digits, hex letters stay hex letters,
/// other letters stay letters; percent-escapes (`%41`) and the rest (the URL's
/// punctuation) are kept, so the canary decodes to the same kind of bytes.
fn canary(password: &str) -> String {
    let chars: Vec<char> = password.chars().collect();
    let mut out = String::with_capacity(password.len());
    let mut i = 0;
    while i < chars.len() {
        let escape = chars[i] == '%'
            && chars.len() > i + 2
            && chars[i + 1..i + 3].iter().all(char::is_ascii_hexdigit);
        if escape {
            out.extend(&chars[i..i + 3]);
            i += 3;
            continue;
        }
        out.push(match chars[i] {
            '0'..='9' => '7',
            'a'..='f' | 'A'..='F' => 'C',
            c if c.is_ascii_alphabetic() => 'Q',
            c if !c.is_ascii() && c.is_alphanumeric() => 'Ω',
            c => c,
        });
        i += 1;
    }
    out
}
