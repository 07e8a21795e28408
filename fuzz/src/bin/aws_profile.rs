//! The AWS profile files as the start-up check reads them (`aws::sdk::check`): any text
//! in `~/.aws/config` and `~/.aws/credentials`, any profile name. No panic; a profile
//! that sets a region is found, and a region is only ever said to come from a file that
//! sets one (the selected profile's, or a source profile's, loops included), and is
//! judged as a region's name without a panic; an endpoint is only ever refused when a file sets `endpoint_url`, and one
//! with an `@` (a password, perhaps) is never shown.
//!
//! Input: the profile name, NUL, the config file, NUL, the credentials file.

use std::ffi::OsString;
use std::path::Path;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let text = String::from_utf8_lossy(data);
        let mut parts = text.splitn(3, '\0');
        let profile = parts.next().unwrap_or("").to_owned();
        let config = parts.next().map(str::to_owned);
        let credentials = parts.next().map(str::to_owned);
        let mut env: Vec<(OsString, OsString)> = vec![
            ("AWS_CONFIG_FILE".into(), "/fuzz/config".into()),
            (
                "AWS_SHARED_CREDENTIALS_FILE".into(),
                "/fuzz/credentials".into(),
            ),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ];
        if !profile.is_empty() {
            env.push(("AWS_PROFILE".into(), profile.clone().into()));
        }
        let read = |path: &Path| match path.to_str() {
            Some("/fuzz/config") => config.clone(),
            Some("/fuzz/credentials") => credentials.clone(),
            _ => None,
        };
        let seen = aws::sdk::check::configured_from(&env, &read);
        assert!(!seen.imds, "IMDS is disabled");
        if config.is_none() && credentials.is_none() {
            assert_eq!(seen.credentials, None);
            assert_eq!(seen.region, None);
        }
        let set_word = |text: &Option<String>, word: &str| {
            text.as_deref()
                .is_some_and(|t| t.to_ascii_lowercase().contains(word))
        };
        if let Some(region) = &seen.region {
            assert!(
                set_word(&config, "region") || set_word(&credentials, "region"),
                "{region:?}"
            );
            assert!(
                region.from.starts_with("the region of profile "),
                "{region:?}"
            );
            let _ = aws::sdk::check::region_fault(&region.value);
        }
        let set = |text: &Option<String>| set_word(text, "endpoint_url");
        for problem in aws::sdk::check::unusable_endpoints_from(&env, &read) {
            let said = problem.to_string();
            assert!(said.starts_with("endpoint_url="), "{said}");
            assert!(set(&config) || set(&credentials), "{said}");
            // An `@` said can only be the profile's name or its services section's.
            assert!(
                !said.contains('@') || profile.contains('@') || said.contains("[services "),
                "{said}"
            );
        }
    });
}
