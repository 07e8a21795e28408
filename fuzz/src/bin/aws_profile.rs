//! The AWS profile files as the start-up check reads them (`aws::sdk::check`): any text
//! in `~/.aws/config` and `~/.aws/credentials`, any profile name. No panic; a profile
//! that sets a region is found, and a region is only ever said to come from a file that
//! exists.
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
            env.push(("AWS_PROFILE".into(), profile.into()));
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
    });
}
