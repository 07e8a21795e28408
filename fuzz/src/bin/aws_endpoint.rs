//! The endpoint variables as the start-up check reads them (`aws::sdk::check`): any text
//! in `AWS_ENDPOINT_URL`. No panic; what passes is an `http://` or `https://` URL with a
//! host, which is what the SDK can call; an empty value never passes; a value with an
//! `@` is never shown.
//!
//! Input: the value.

use std::ffi::OsString;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let value = String::from_utf8_lossy(data).into_owned();
        let env: Vec<(OsString, OsString)> =
            vec![("AWS_ENDPOINT_URL".into(), value.clone().into())];
        let problems = aws::sdk::check::unusable_endpoints(&env);
        match problems.first() {
            None => {
                let uri: hyper::Uri = value.parse().expect("what passes is a URL");
                assert!(matches!(uri.scheme_str(), Some("http" | "https")));
                assert!(uri.host().is_some_and(|h| !h.is_empty()));
                assert!(!value.trim().is_empty());
            }
            Some(problem) => {
                let said = problem.to_string();
                assert!(said.starts_with("AWS_ENDPOINT_URL="), "{said}");
                if value.contains('@') {
                    assert!(said.contains("(hidden: it may hold a password)"), "{said}");
                }
            }
        }
    });
}
