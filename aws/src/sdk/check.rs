//! Before the first AWS call: is anything configured that could give the SDK
//! credentials, and a region when one is needed? A configuration mistake is not a
//! transient fault: with nothing configured, the SDK's chains would fail every attempt
//! alike (or probe the EC2 instance metadata service for seconds each time), and a
//! caller that retries under a deadline would wait it out and report a timeout.
//!
//! The answer comes from the configuration itself, read the way the SDK's default
//! chains read it ([`configured`]): the variables (through [`Env`]), the profile
//! files (by the SDK's own parser, over the text read here without waiting), the
//! container credentials and web identity variables. Only the EC2 instance
//! metadata service (IMDS) cannot be known without asking it: when it is the only
//! possible source of what is needed, [`check_configuration`] asks it once, bounded by
//! [`IMDS_PROBE_TIMEOUT`]. `AWS_EC2_METADATA_DISABLED=true` (or any other source)
//! skips the probe.
//!
//! What it is not: a check that the credentials are valid or allowed anything (the
//! first real call says so, classified by [`crate::class`]), nor a credentials
//! provider: the SDK's own chain still loads them.

use std::fmt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_config::imds::client::error::ImdsError;
use conventions::Env;

use crate::chain::Chain;

/// The longest the one look at IMDS may take, token included. IMDS answers a
/// reachable caller in milliseconds; the SDK's own client gives each connection 1 s.
pub const IMDS_PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Profile and token files are a few hundred bytes; a larger one is refused, by this
/// check and before the SDK reads it.
const MAX_FILE_BYTES: u64 = 1024 * 1024;
const MAX_FILE_WORDS: &str = "1 MiB";

/// A CA bundle is a few hundred KB (the system's, RDS's global bundle); the limit
/// PostgreSQL's `PGSSLROOTCERT` has too.
const MAX_BUNDLE_BYTES: u64 = 16 << 20;
const MAX_BUNDLE_WORDS: &str = "16 MiB";

/// `/dev/null`'s device number (major 1, minor 3) as `st_rdev` holds it: a file the SDK
/// may read, at once and empty (`AWS_CONFIG_FILE=/dev/null` is how some images say "no
/// profile").
const DEV_NULL: u64 = (1 << 8) | 3;

/// What IMDS is asked: the instance profile's role (404 when the instance has none),
/// and the instance's region.
const IMDS_ROLE_PATH: &str = "/latest/meta-data/iam/security-credentials/";
const IMDS_REGION_PATH: &str = "/latest/meta-data/placement/region";

/// What the SDK would need and cannot have: each says what to set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// No credentials provider of the SDK's default chain has anything to work with.
    NoCredentials {
        /// What IMDS, the last provider of the chain, said (or why it was not asked).
        imds: Imds,
        /// Half-made settings worth pointing at (`AWS_ACCESS_KEY_ID is set but
        /// AWS_SECRET_ACCESS_KEY is not`).
        hints: Vec<String>,
    },
    /// No region, and something is named without one.
    NoRegion { imds: Imds },
    /// The region the SDK would use is not a region's name (see [`region_fault`]).
    Region {
        /// Where it comes from, with its value: `AWS_REGION="US-EAST-1"`, `the region
        /// "eu west 1" of profile "prod" (in "/root/.aws/config")`.
        named: String,
        /// What is wrong with it: `it is empty`, `it has capital letters`.
        why: &'static str,
    },
    /// An endpoint variable or profile setting holds what the SDK cannot call (see
    /// [`unusable_endpoints`]).
    Endpoint {
        /// `AWS_ENDPOINT_URL="not a url"`, `endpoint_url="" of the profile "default"`
        /// (the value hidden when it may hold a password).
        named: String,
        /// What is wrong with it: `it is not a URL`, `it names no host`.
        why: &'static str,
        /// How to call AWS's own endpoints instead: `unset AWS_ENDPOINT_URL`.
        undo: String,
    },
    /// A file the SDK reads by itself, whole and without a time limit, is one that read
    /// would never finish: a named pipe (waited on for a writer for ever), a device
    /// such as `/dev/zero`, or a file larger than any profile or token file.
    File {
        /// The setting that names it (`AWS_CONFIG_FILE="/x"`), or where it was found
        /// (`the profile file "/root/.aws/config" (~/.aws/config)`).
        named: String,
        /// What it is: `a named pipe (FIFO)`, `a device`, `larger than 1 MiB`.
        what: String,
        /// What to do instead.
        fix: String,
    },
}

/// Why IMDS gave nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Imds {
    /// `AWS_EC2_METADATA_DISABLED=true`: the SDK never asks it.
    Disabled,
    /// It did not answer, or refused: the reason.
    Unavailable(String),
    /// It answered, but the instance has no IAM instance profile.
    NoInstanceProfile,
}

impl fmt::Display for Imds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Imds::Disabled => {
                f.write_str("EC2 instance metadata: not asked, AWS_EC2_METADATA_DISABLED=true")
            }
            Imds::Unavailable(why) => write!(f, "EC2 instance metadata: {why}"),
            Imds::NoInstanceProfile => {
                f.write_str("EC2 instance metadata: the instance has no IAM instance profile")
            }
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::NoCredentials { imds, hints } => {
                write!(
                    f,
                    "no AWS credentials are configured (looked at: AWS_ACCESS_KEY_ID, \
                     AWS_PROFILE and the profile files, AWS_CONTAINER_CREDENTIALS_RELATIVE_URI \
                     and _FULL_URI, AWS_WEB_IDENTITY_TOKEN_FILE; {imds})"
                )?;
                for hint in hints {
                    write!(f, "; {hint}")?;
                }
                f.write_str(
                    ". In ECS, give the task a task role (taskRoleArn in the task \
                     definition: ECS then sets AWS_CONTAINER_CREDENTIALS_RELATIVE_URI); \
                     outside ECS, set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or \
                     AWS_PROFILE (a profile of ~/.aws/config), or AWS_WEB_IDENTITY_TOKEN_FILE \
                     and AWS_ROLE_ARN",
                )
            }
            Problem::NoRegion { imds } => write!(
                f,
                "no AWS region is configured (looked at: AWS_REGION, AWS_DEFAULT_REGION, the \
                 profile's region; {imds}). Set AWS_REGION (e.g. AWS_REGION=us-east-1; ECS \
                 on Fargate sets it)"
            ),
            Problem::Region { named, why } => write!(
                f,
                "{named} is not an AWS region: {why}; a region's name is lowercase letters, \
                 digits and '-' (e.g. AWS_REGION=us-east-1; ECS on Fargate sets AWS_REGION \
                 to the task's own)"
            ),
            Problem::Endpoint { named, why, undo } => write!(
                f,
                "{named} is not an endpoint the AWS SDK can call: {why}; write it as \
                 http(s)://HOST[:PORT] (e.g. http://127.0.0.1:5000 for a local emulator), or \
                 {undo} to call AWS's own endpoints"
            ),
            Problem::File { named, what, fix } => write!(
                f,
                "{named} cannot be used: it is {what}, and the AWS SDK reads such a file \
                 whole, with no time limit: it would wait on it for ever or fill memory; \
                 {fix}"
            ),
        }
    }
}

impl std::error::Error for Problem {}

/// What the configuration offers the SDK's default chains, read without a network call.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Configured {
    /// The first credentials source the SDK's chain would use, besides IMDS
    /// (`"AWS_ACCESS_KEY_ID"`, `profile "default"`, …); `None` when there is none.
    pub credentials: Option<String>,
    /// The default region, as the SDK's region chain finds it before IMDS.
    pub region: Option<FoundRegion>,
    /// Whether the SDK may ask IMDS (it does unless `AWS_EC2_METADATA_DISABLED=true`).
    pub imds: bool,
    /// Half-made credential settings, for the message when nothing is configured.
    pub hints: Vec<String>,
}

/// The default region and where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundRegion {
    /// `AWS_REGION`, `AWS_DEFAULT_REGION`, `the region of profile "prod" (in FILES)`.
    pub from: String,
    /// The value, as the SDK would use it.
    pub value: String,
}

impl FoundRegion {
    /// Where it was found, with its value (escaped, and cut short if long): for a
    /// message about it. A region is configuration, never a secret.
    fn named(&self) -> String {
        const SHOWN: usize = 64;
        let mut shown: String = self.value.chars().take(SHOWN).collect();
        if shown.len() < self.value.len() {
            shown.push('…');
        }
        match self.from.strip_prefix("the region of ") {
            Some(profile) => format!("the region {shown:?} of {profile}"),
            None => format!("{}={shown:?}", self.from),
        }
    }
}

/// Why `value` cannot be an AWS region's name (`us-east-1`, `us-gov-west-1`,
/// `cn-north-1`, `eu-isoe-west-1`): those are lowercase letters, digits and '-', a DNS
/// label (1 to 63 characters, no '-' at either end). The SDK refuses a value that is
/// not a DNS label at its first call, in its own words ("must be a valid host label"),
/// without saying which setting holds it; one in capitals it sends, signed for a
/// region that does not exist (an emulator answers HTTP 500, retried to the deadline).
pub fn region_fault(value: &str) -> Option<&'static str> {
    let fault = if value.is_empty() {
        "it is empty"
    } else if value.chars().any(char::is_whitespace) {
        "it has spaces or other blank characters"
    } else if value.bytes().any(|b| b.is_ascii_uppercase()) {
        "it has capital letters"
    } else if !value
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        "it has characters other than lowercase letters, digits and '-'"
    } else if value.len() > 63 {
        "it is longer than 63 characters"
    } else if value.starts_with('-') || value.ends_with('-') {
        "it begins or ends with '-'"
    } else {
        return None;
    };
    Some(fault)
}

/// Reads what the SDK's default credentials chain (environment, profile, web identity,
/// container endpoint, IMDS) and region chain (environment, profile, IMDS) would find,
/// as they read it: variables from `env`, the profile files from disk.
pub fn configured(env: &impl Env) -> Configured {
    configured_from(env, &read_small)
}

/// [`configured`], with the profile files read by `read_file` (tests and the fuzz
/// target hand it the files' text).
pub fn configured_from(env: &impl Env, read_file: &dyn Fn(&Path) -> Option<String>) -> Configured {
    configured_with(env, Profile::read(env, read_file))
}

/// [`configured`], with the profile files already read.
fn configured_with(env: &impl Env, profile: Option<Result<Profile, String>>) -> Configured {
    let vars = env.vars();
    let var = |name: &str| env.var(name).filter(|v| !v.trim().is_empty());
    let mut hints = Vec::new();
    let mut credentials = None;

    let key_id = var("AWS_ACCESS_KEY_ID");
    // The SDK falls back to SECRET_ACCESS_KEY.
    let secret = var("AWS_SECRET_ACCESS_KEY").or_else(|| var("SECRET_ACCESS_KEY"));
    match (&key_id, &secret) {
        (Some(_), Some(_)) => credentials = Some("AWS_ACCESS_KEY_ID".to_owned()),
        (Some(_), None) => {
            hints.push("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not".to_owned())
        }
        (None, Some(_)) => {
            hints.push("AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not".to_owned())
        }
        (None, None) => {}
    }

    let profile_name = var("AWS_PROFILE");
    let selected = profile_name.clone().unwrap_or_else(|| "default".to_owned());
    let (found, profile_region) = match profile {
        Some(Ok(profile)) => (profile.found(), profile.region()),
        Some(Err(refused)) => {
            hints.push(format!(
                "the AWS SDK cannot read the profile files: {refused}"
            ));
            (false, None)
        }
        None => (false, None),
    };
    if credentials.is_none() && found {
        credentials = Some(format!("profile {selected:?}"));
    }
    if let (Some(name), false) = (&profile_name, found) {
        let home = var("HOME");
        let shown: Vec<String> = [
            profile_file(&home, set_value(&vars, "AWS_CONFIG_FILE"), ".aws/config"),
            profile_file(
                &home,
                set_value(&vars, "AWS_SHARED_CREDENTIALS_FILE"),
                ".aws/credentials",
            ),
        ]
        .iter()
        .filter_map(|p| p.as_ref().map(|p| p.display().to_string()))
        .collect();
        hints.push(format!(
            "AWS_PROFILE={name:?} names no profile in {}",
            if shown.is_empty() {
                "any profile file (HOME is not set)".to_owned()
            } else {
                shown.join(" or ")
            }
        ));
    }

    match (var("AWS_WEB_IDENTITY_TOKEN_FILE"), var("AWS_ROLE_ARN")) {
        (Some(_), Some(_)) => {
            credentials.get_or_insert_with(|| "AWS_WEB_IDENTITY_TOKEN_FILE".to_owned());
        }
        (Some(_), None) => {
            hints.push("AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not".to_owned())
        }
        (None, Some(_)) => {
            hints.push("AWS_ROLE_ARN is set but AWS_WEB_IDENTITY_TOKEN_FILE is not".to_owned())
        }
        (None, None) => {}
    }

    for container in [
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ] {
        if var(container).is_some() {
            credentials.get_or_insert_with(|| container.to_owned());
        }
    }

    // As the SDK's chain: AWS_REGION when set (even empty), then AWS_DEFAULT_REGION,
    // then the profile's (or its source profile's).
    let region = ["AWS_REGION", "AWS_DEFAULT_REGION"]
        .into_iter()
        .find_map(|name| {
            set_value(&vars, name).map(|value| FoundRegion {
                from: name.to_owned(),
                value,
            })
        })
        .or(profile_region);

    // As the SDK reads it: exactly `true`, in any case; anything else leaves IMDS on.
    let imds = !env
        .var("AWS_EC2_METADATA_DISABLED")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));

    Configured {
        credentials,
        region,
        imds,
        hints,
    }
}

/// Whether the SDK could find credentials, and a region when `needs_default_region`
/// (something is named without a region of its own: a secret by name, not by ARN):
/// every problem at once, each saying what to set. No network call, except one look
/// at IMDS (at most [`IMDS_PROBE_TIMEOUT`]) when it is the only possible source of
/// what is needed. That look uses the SDK's own IMDS client, which reads its endpoint
/// (`AWS_EC2_METADATA_SERVICE_ENDPOINT`, `_MODE`) from the process, as the SDK will.
pub async fn check_configuration(
    env: &impl Env,
    needs_default_region: bool,
) -> Result<(), Vec<Problem>> {
    // Read once, for the endpoints they give and what they configure. (Opened without
    // waiting, only a regular file of at most 1 MiB: what the SDK would read for ever
    // is not read here, and is refused just below.)
    let profile = Profile::read(env, &read_small);
    let mut before = unreadable_files(env);
    before.extend(endpoints_in(
        env,
        profile.as_ref().and_then(|p| p.as_ref().ok()),
    ));
    if !before.is_empty() {
        return Err(before);
    }
    let found = configured_with(env, profile);
    let needs_credentials_from_imds = found.credentials.is_none();
    let needs_region_from_imds = needs_default_region && found.region.is_none();
    let mut paths = Vec::new();
    if needs_credentials_from_imds {
        paths.push(IMDS_ROLE_PATH);
    }
    if needs_region_from_imds {
        paths.push(IMDS_REGION_PATH);
    }
    let answers = if paths.is_empty() {
        Vec::new()
    } else if found.imds {
        probe_imds(&paths).await
    } else {
        vec![Err(Imds::Disabled); paths.len()]
    };
    let mut problems = Vec::new();
    let mut answers = answers.into_iter();
    if needs_credentials_from_imds {
        if let Some(Err(imds)) = answers.next() {
            problems.push(Problem::NoCredentials {
                imds,
                hints: found.hints.clone(),
            });
        }
    }
    if needs_region_from_imds {
        if let Some(Err(imds)) = answers.next() {
            // A missing instance profile says nothing about the region.
            problems.push(Problem::NoRegion { imds });
        }
    }
    if let (true, Some(region)) = (needs_default_region, &found.region) {
        if let Some(why) = region_fault(&region.value) {
            problems.push(Problem::Region {
                named: region.named(),
                why,
            });
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Asks IMDS for each path, once, all within [`IMDS_PROBE_TIMEOUT`], with the SDK's own
/// IMDS client (its endpoint settings, its session token): one outcome per path.
async fn probe_imds(paths: &[&str]) -> Vec<Result<(), Imds>> {
    // The client's own limits are longer than the probe's: the probe's deadline is
    // the one that ends a silent service, and says so.
    let client_limit = IMDS_PROBE_TIMEOUT * 2;
    let client = aws_config::imds::Client::builder()
        .max_attempts(1)
        .connect_timeout(client_limit)
        .read_timeout(client_limit)
        .operation_timeout(client_limit)
        .build();
    let deadline = tokio::time::Instant::now() + IMDS_PROBE_TIMEOUT;
    let mut out = Vec::new();
    for path in paths {
        let answer = match tokio::time::timeout_at(deadline, client.get(*path)).await {
            Err(_) => Err(no_answer()),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(imds_problem(path, &e)),
        };
        // Not reachable for one path, not reachable for the next: do not wait twice.
        let unreachable = matches!(answer, Err(Imds::Unavailable(_)));
        out.push(answer.clone());
        if unreachable {
            out.resize(paths.len(), answer);
            break;
        }
    }
    out
}

/// IMDS did not answer in time.
fn no_answer() -> Imds {
    // From a container, the instance's metadata hop limit must be 2 or more: at 1 the
    // answer is dropped on the way, and this is what it looks like.
    Imds::Unavailable(format!(
        "no answer within {} (from a container, the instance's metadata hop limit must \
         be 2 or more)",
        humantime::format_duration(IMDS_PROBE_TIMEOUT)
    ))
}

/// What an IMDS error means, safe to print (never a response body).
fn imds_problem(path: &str, e: &ImdsError) -> Imds {
    match e {
        ImdsError::ErrorResponse(r) => {
            let status = r.response().status().as_u16();
            if path == IMDS_ROLE_PATH && status == 404 {
                Imds::NoInstanceProfile
            } else {
                Imds::Unavailable(format!("{path} answered HTTP {status}"))
            }
        }
        ImdsError::FailedToLoadToken(t) if t.is_dispatch_failure() => {
            Imds::Unavailable(format!("not reachable ({})", Chain(e)))
        }
        ImdsError::FailedToLoadToken(_) => {
            Imds::Unavailable(format!("refused a session token ({})", Chain(e)))
        }
        _ => Imds::Unavailable(Chain(e).to_string()),
    }
}

/// The profile file the SDK reads: the variable's path (`~/` expanded), else `default`
/// under HOME.
fn profile_file(home: &Option<String>, set: Option<String>, default: &str) -> Option<PathBuf> {
    match set {
        Some(path) => match (path.strip_prefix("~/"), home) {
            (Some(rest), Some(home)) => Some(PathBuf::from(home).join(rest)),
            _ => Some(PathBuf::from(path)),
        },
        None => home.as_ref().map(|h| PathBuf::from(h).join(default)),
    }
}

/// A profile file's text, when it can be read (a missing one is the usual case): opened
/// without waiting, and only a regular file of at most [`MAX_FILE_BYTES`]
/// ([`unreadable_files`] says why another is refused).
fn read_small(path: &Path) -> Option<String> {
    let bytes = conventions::file::read_regular(path, MAX_FILE_BYTES, MAX_FILE_WORDS).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// The files the AWS SDK reads by itself that it could never finish reading: each a
/// [`Problem::File`] that names its setting and what to do. The SDK reads them whole,
/// with a plain blocking read inside its async loading, at its first call and at each
/// credentials refresh: the profile files (`AWS_CONFIG_FILE`,
/// `AWS_SHARED_CREDENTIALS_FILE`, or their default places under HOME), the token files
/// of web identity (`AWS_WEB_IDENTITY_TOKEN_FILE`) and of the container credentials
/// endpoint (`AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`), and the CA bundle of its HTTPS
/// client (`SSL_CERT_FILE`).
///
/// Only what is looked at, never opened (`stat`): a named pipe or a device other than
/// `/dev/null`, and a regular file over [`MAX_FILE_BYTES`] (a CA bundle: over
/// [`MAX_BUNDLE_BYTES`]). A missing file, a folder or a socket is left to the SDK, whose
/// read of it fails at once and which says so itself.
pub fn unreadable_files(env: &impl Env) -> Vec<Problem> {
    let vars = env.vars();
    let var = |name: &str| env.var(name).filter(|v| !v.trim().is_empty());
    let home = var("HOME");
    let small = (MAX_FILE_BYTES, MAX_FILE_WORDS);
    let mut files = Vec::new();
    for (variable, place) in [
        ("AWS_CONFIG_FILE", ".aws/config"),
        ("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials"),
    ] {
        // As the SDK reads it: set is set, even empty (a path that names no file).
        let set = set_value(&vars, variable);
        // Named by where it was found when no variable names it.
        let default = set.is_none().then_some(place);
        if let Some(path) = profile_file(&home, set, place) {
            files.push((variable, default, path, small));
        }
    }
    for (variable, limit) in [
        ("AWS_WEB_IDENTITY_TOKEN_FILE", small),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", small),
        ("SSL_CERT_FILE", (MAX_BUNDLE_BYTES, MAX_BUNDLE_WORDS)),
    ] {
        if let Some(path) = var(variable) {
            files.push((variable, None, PathBuf::from(path), limit));
        }
    }
    files
        .into_iter()
        .filter_map(|(variable, default, path, limit)| {
            let what = unreadable(&path, limit)?;
            let (named, fix) = match default {
                Some(default) => (
                    format!("the profile file {path:?} (~/{default})"),
                    format!(
                        "replace it with a regular file, or set {variable} to one \
                         ({variable}=/dev/null for none)"
                    ),
                ),
                None => (
                    format!("{variable}={path:?}"),
                    format!("point {variable} at a regular file, or unset it"),
                ),
            };
            Some(Problem::File { named, what, fix })
        })
        .collect()
}

/// The services deckhand calls as the SDK names them (the STS one for web identity
/// credentials): its service id, which a profile's `[services NAME]` section writes in
/// lower case with hyphens (`secrets-manager`), and its endpoint variable.
const SERVICES: [(&str, &str); 4] = [
    ("Secrets Manager", "AWS_ENDPOINT_URL_SECRETS_MANAGER"),
    ("SSM", "AWS_ENDPOINT_URL_SSM"),
    ("CloudWatch Logs", "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS"),
    ("STS", "AWS_ENDPOINT_URL_STS"),
];

/// The global endpoint variable, and the profile key the SDK reads where it is unset.
const ENDPOINT_VARIABLE: &str = "AWS_ENDPOINT_URL";
const ENDPOINT_KEY: &str = "endpoint_url";

/// The endpoints configured for the services deckhand calls that the SDK cannot call:
/// each a [`Problem::Endpoint`]. The SDK takes such a value at load and fails every
/// call with it (a debug dump of the request as the reason), or, when it is empty,
/// panics at the first call.
///
/// Where the SDK looks, in its order: each service's variable (`AWS_ENDPOINT_URL_SSM`),
/// `AWS_ENDPOINT_URL`, the selected profile's `[services NAME]` section (`ssm =` then
/// `  endpoint_url = …`), the profile's own `endpoint_url`. Every variable that is set
/// is checked, whichever wins; a profile's value only where no variable stands before
/// it, as only then does the SDK use it. With `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` (or
/// the profile's `ignore_configured_endpoint_urls`) true the SDK reads none of them,
/// and neither does this.
pub fn unusable_endpoints(env: &impl Env) -> Vec<Problem> {
    unusable_endpoints_from(env, &read_small)
}

/// [`unusable_endpoints`], with the profile files read by `read_file` (tests and the
/// fuzz target hand it the files' text).
pub fn unusable_endpoints_from(
    env: &impl Env,
    read_file: &dyn Fn(&Path) -> Option<String>,
) -> Vec<Problem> {
    let profile = Profile::read(env, read_file).and_then(Result::ok);
    endpoints_in(env, profile.as_ref())
}

/// [`unusable_endpoints`], with the profile files already read (`None` when there are
/// none, or the SDK's parser refuses them: then the SDK reads no endpoint from them).
fn endpoints_in(env: &impl Env, profile: Option<&Profile>) -> Vec<Problem> {
    let vars = env.vars();
    let value_of = |name: &str| set_value(&vars, name);
    let ignored = match value_of("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS") {
        Some(set) => set.eq_ignore_ascii_case("true"),
        None => profile
            .and_then(|p| p.sections.get("ignore_configured_endpoint_urls"))
            .is_some_and(|set| set.eq_ignore_ascii_case("true")),
    };
    if ignored {
        return Vec::new();
    }
    let mut problems = Vec::new();
    let mut judge = |(before, after): (String, String), value: &str, undo: String| {
        let Some(why) = endpoint_fault(value) else {
            return;
        };
        // A URL with a user part may carry a password: not shown.
        let shown = if value.contains('@') {
            "(hidden: it may hold a password)".to_owned()
        } else {
            format!("{value:?}")
        };
        let named = format!("{before}{shown}{after}");
        if !problems
            .iter()
            .any(|p| matches!(p, Problem::Endpoint { named: n, .. } if *n == named))
        {
            problems.push(Problem::Endpoint { named, why, undo });
        }
    };
    let variables = std::iter::once(ENDPOINT_VARIABLE).chain(SERVICES.map(|(_, v)| v));
    for variable in variables {
        if let Some(value) = value_of(variable) {
            let named = (format!("{variable}="), String::new());
            judge(named, &value, format!("unset {variable}"));
        }
    }
    let Some(profile) = profile else {
        return problems;
    };
    for (service, variable) in SERVICES {
        if value_of(variable).is_some() || value_of(ENDPOINT_VARIABLE).is_some() {
            continue;
        }
        if let Some((named, value, undo)) = profile.endpoint(service) {
            judge(named, &value, undo);
        }
    }
    problems
}

/// The value of `name` in `vars` as the SDK reads a variable: set is set, even empty
/// (`Env::var` reads an empty value as unset; the SDK does not, and panics on an empty
/// endpoint); not UTF-8 is unset.
fn set_value(vars: &[(std::ffi::OsString, std::ffi::OsString)], name: &str) -> Option<String> {
    vars.iter()
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| v.to_str())
        .map(str::to_owned)
}

/// The selected profile as the SDK reads it, by the SDK's own parser (the files' text
/// handed to it in memory, under their own paths), and the files it was read from, for
/// messages.
struct Profile {
    sections: aws_config::profile::ProfileSet,
    files: String,
}

impl Profile {
    /// The profile files of `env` that exist and can be read (by `read_file`), parsed
    /// as the SDK parses them: `None` when there are none; the parser's own message
    /// (its file and line, none of the text) when it refuses them, as the SDK's load
    /// would at the first call.
    fn read(
        env: &impl Env,
        read_file: &dyn Fn(&Path) -> Option<String>,
    ) -> Option<Result<Profile, String>> {
        let vars = env.vars();
        let var = |name: &str| env.var(name).filter(|v| !v.trim().is_empty());
        let home = var("HOME");
        let places = [
            ("AWS_CONFIG_FILE", ".aws/config"),
            ("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials"),
        ];
        let mut files = std::collections::HashMap::new();
        let mut sdk_env = std::collections::HashMap::new();
        let mut read = Vec::new();
        for (variable, place) in places {
            // As the SDK reads it: set is set, even empty (a path that names no file).
            let path = profile_file(&home, set_value(&vars, variable), place);
            let text = path.as_deref().and_then(read_file);
            // A file that is not read is an empty one, for the parser.
            let path = match (path, &text) {
                (Some(path), Some(_)) => path.display().to_string(),
                _ => format!("/{variable} (not read)"),
            };
            if text.is_some() {
                read.push(format!("{path:?}"));
            }
            files.insert(path.clone(), text.unwrap_or_default());
            sdk_env.insert(variable.to_owned(), path);
        }
        if read.is_empty() {
            return None;
        }
        if let Some(name) = set_value(&env.vars(), "AWS_PROFILE") {
            sdk_env.insert("AWS_PROFILE".to_owned(), name);
        }
        let fs = aws_types::os_shim_internal::Fs::from_map(files);
        let sdk_env = aws_types::os_shim_internal::Env::from(sdk_env);
        let profile_files = aws_runtime::env_config::file::EnvConfigFiles::default();
        // What the parser warns of, the SDK's own load says again.
        let loaded = tracing::subscriber::with_default(
            tracing::subscriber::NoSubscriber::default(),
            || {
                ready(aws_config::profile::load(
                    &fs,
                    &sdk_env,
                    &profile_files,
                    None,
                ))
            },
        )?;
        Some(match loaded {
            Ok(sections) => Ok(Profile {
                sections,
                files: read.join(" and "),
            }),
            Err(refused) => Err(Chain(&refused).to_string()),
        })
    }

    /// The region of the selected profile, or of the profile its `source_profile`
    /// names (and so on), as the SDK's profile region provider follows them: a loop,
    /// or a profile without either, ends with none.
    fn region(&self) -> Option<FoundRegion> {
        let mut name = self.sections.selected_profile();
        let mut visited = Vec::new();
        loop {
            let profile = self.sections.get_profile(name)?;
            if visited.contains(&name) {
                return None;
            }
            visited.push(name);
            if let Some(value) = profile.get("region") {
                return Some(FoundRegion {
                    from: format!("the region of profile {name:?} (in {})", self.files),
                    value: value.to_owned(),
                });
            }
            name = profile.get("source_profile")?;
        }
    }

    /// Whether the selected profile exists in either file.
    fn found(&self) -> bool {
        let selected = self.sections.selected_profile();
        self.sections.get_profile(selected).is_some()
    }

    /// The endpoint the profile gives `service` (its `[services NAME]` entry, else the
    /// profile's own `endpoint_url`): how a message names it (the words before the
    /// value and after it), the value, and how to undo it.
    fn endpoint(&self, service: &str) -> Option<((String, String), String, String)> {
        let profile = self.sections.selected_profile();
        let files = &self.files;
        let id = service.to_lowercase().replace(' ', "-");
        let own = self.sections.get("services").and_then(|section| {
            let key = aws_runtime::env_config::property::PropertiesKey::builder()
                .section_key("services")
                .section_name(section)
                .property_name(&id)
                .sub_property_name(ENDPOINT_KEY)
                .build()
                .ok()?;
            let value = self.sections.other_sections().get(&key)?;
            Some((
                (
                    format!("{ENDPOINT_KEY}="),
                    format!(
                        " for {id} in [services {section}] (the services of the profile \
                         {profile:?}, in {files})"
                    ),
                ),
                value.to_owned(),
                format!("remove it from [services {section}]"),
            ))
        });
        own.or_else(|| {
            let value = self.sections.get(ENDPOINT_KEY)?;
            Some((
                (
                    format!("{ENDPOINT_KEY}="),
                    format!(" of the profile {profile:?} (in {files})"),
                ),
                value.to_owned(),
                format!("remove {ENDPOINT_KEY} from the profile"),
            ))
        })
    }
}

/// The output of a future that finishes without waiting (the SDK's profile loader over
/// files in memory), polled once; `None` if it would wait.
fn ready<F: std::future::Future>(future: F) -> Option<F::Output> {
    struct Nobody;
    impl std::task::Wake for Nobody {
        fn wake(self: std::sync::Arc<Self>) {}
    }
    let waker = std::task::Waker::from(std::sync::Arc::new(Nobody));
    let mut context = std::task::Context::from_waker(&waker);
    match std::pin::pin!(future).poll(&mut context) {
        std::task::Poll::Ready(output) => Some(output),
        std::task::Poll::Pending => None,
    }
}

/// What keeps `value` from being an endpoint the SDK can call, or `None`.
fn endpoint_fault(value: &str) -> Option<&'static str> {
    if value.trim().is_empty() {
        return Some("it is empty");
    }
    let Ok(uri) = value.parse::<hyper::Uri>() else {
        return Some("it is not a URL");
    };
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(_) => return Some("its scheme is neither http nor https"),
        None => return Some("it has no scheme (http:// or https://)"),
    }
    let Some(authority) = uri.authority().filter(|a| !a.host().is_empty()) else {
        return Some("it names no host");
    };
    // A port, when there is one (after the user part, after an IPv6 host's brackets),
    // must be a number from 1 to 65535.
    let host_port = authority.as_str().rsplit('@').next().unwrap_or_default();
    let has_port = host_port
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.ends_with(']'));
    if has_port && !matches!(authority.port_u16(), Some(1..)) {
        return Some("its port is not a number from 1 to 65535");
    }
    None
}

/// Why the SDK's read of `path` would never finish, or `None` (see [`unreadable_files`]):
/// `limit` is the largest regular file it may read, and its size in words.
fn unreadable(path: &Path, (limit, words): (u64, &str)) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    let kind = meta.file_type();
    if kind.is_file() {
        (meta.len() > limit).then(|| format!("larger than {words}"))
    } else if kind.is_fifo()
        || ((kind.is_char_device() || kind.is_block_device()) && meta.rdev() != DEV_NULL)
    {
        conventions::file::not_regular(kind).map(str::to_owned)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn env(vars: &[(&str, &str)]) -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
        vars.iter().map(|(k, v)| (k.into(), v.into())).collect()
    }

    /// The profile files under HOME `/home/u`, as `configured` would read them.
    fn with_files(
        vars: &[(&str, &str)],
        config: Option<&str>,
        credentials: Option<&str>,
    ) -> Configured {
        let read = |path: &Path| match path.to_str() {
            Some("/home/u/.aws/config") => config.map(str::to_owned),
            Some("/home/u/.aws/credentials") => credentials.map(str::to_owned),
            _ => None,
        };
        configured_from(&env(vars), &read)
    }

    /// What [`unreadable_files`] says of each file, as `(named, what)`.
    fn unreadable_in(vars: &[(&str, &str)]) -> Vec<(String, String)> {
        unreadable_files(&env(vars))
            .into_iter()
            .map(|p| match p {
                Problem::File { named, what, .. } => (named, what),
                other => panic!("not a file problem: {other}"),
            })
            .collect()
    }

    #[test]
    fn a_file_the_sdk_would_read_for_ever_is_named_with_its_setting() {
        let dir = testkit::temp::TempDir::new("aws-check-files");
        let pipe = dir.join("pipe");
        testkit::temp::fifo(&pipe);
        let pipe = pipe.to_str().unwrap();
        let huge = dir.join("huge");
        std::fs::File::create(&huge)
            .and_then(|f| f.set_len(MAX_FILE_BYTES + 1))
            .unwrap();
        let huge = huge.to_str().unwrap();
        let fine = dir.write("fine", "[default]\nregion = eu-west-1\n");
        let fine = fine.to_str().unwrap();
        let home = dir.path().to_str().unwrap();
        let pipe_said = "a named pipe (FIFO)".to_owned();
        for variable in [
            "AWS_CONFIG_FILE",
            "AWS_SHARED_CREDENTIALS_FILE",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            "SSL_CERT_FILE",
        ] {
            let named = |path: &str| format!("{variable}={path:?}");
            assert_eq!(
                unreadable_in(&[("HOME", home), (variable, pipe)]),
                [(named(pipe), pipe_said.clone())]
            );
            assert_eq!(
                unreadable_in(&[(variable, "/dev/zero")]),
                [(named("/dev/zero"), "a device".to_owned())]
            );
            if variable == "SSL_CERT_FILE" {
                // A CA bundle may be larger: up to PGSSLROOTCERT's 16 MiB.
                assert_eq!(unreadable_in(&[(variable, huge)]), []);
                let larger = dir.join("larger");
                std::fs::File::create(&larger)
                    .and_then(|f| f.set_len(MAX_BUNDLE_BYTES + 1))
                    .unwrap();
                let larger = larger.to_str().unwrap();
                assert_eq!(
                    unreadable_in(&[(variable, larger)]),
                    [(named(larger), "larger than 16 MiB".to_owned())]
                );
            } else {
                assert_eq!(
                    unreadable_in(&[(variable, huge)]),
                    [(named(huge), "larger than 1 MiB".to_owned())]
                );
            }
            // What the SDK reads at once, or fails to open at once, is its own business.
            for path in [fine, "/dev/null", home, "/nonexistent/file", " "] {
                assert_eq!(unreadable_in(&[(variable, path)]), [], "{variable}={path}");
            }
        }
        // The default places under HOME, named as such, and each problem at once.
        std::fs::create_dir(dir.join(".aws")).unwrap();
        testkit::temp::fifo(&dir.join(".aws/config"));
        std::os::unix::fs::symlink("/dev/zero", dir.join(".aws/credentials")).unwrap();
        let config = dir.join(".aws/config");
        let credentials = dir.join(".aws/credentials");
        assert_eq!(
            unreadable_in(&[("HOME", home)]),
            [
                (
                    format!("the profile file {config:?} (~/.aws/config)"),
                    pipe_said.clone()
                ),
                (
                    format!("the profile file {credentials:?} (~/.aws/credentials)"),
                    "a device".to_owned()
                ),
            ]
        );
        // A variable that moves the file moves the look with it.
        assert_eq!(
            unreadable_in(&[
                ("HOME", home),
                ("AWS_CONFIG_FILE", fine),
                ("AWS_SHARED_CREDENTIALS_FILE", "~/fine"),
            ]),
            []
        );
        let message = unreadable_files(&env(&[("AWS_CONFIG_FILE", pipe)]))[0].to_string();
        assert!(
            message.contains("point AWS_CONFIG_FILE at a regular file, or unset it"),
            "{message}"
        );
    }

    #[test]
    fn an_endpoint_the_sdk_cannot_call_is_named_with_what_is_wrong() {
        for (value, why) in [
            ("", Some("it is empty")),
            ("  ", Some("it is empty")),
            ("not a url", Some("it is not a URL")),
            ("http://[::1", Some("it is not a URL")),
            ("http://ex%ample.com", Some("it is not a URL")),
            ("ftp://x", Some("its scheme is neither http nor https")),
            (
                "127.0.0.1:5000",
                Some("it has no scheme (http:// or https://)"),
            ),
            ("localhost", Some("it has no scheme (http:// or https://)")),
            ("/path", Some("it has no scheme (http:// or https://)")),
            ("https://", Some("it is not a URL")),
            (
                "http://127.0.0.1:99999",
                Some("its port is not a number from 1 to 65535"),
            ),
            (
                "http://127.0.0.1:0",
                Some("its port is not a number from 1 to 65535"),
            ),
            ("http://127.0.0.1:5000", None),
            ("https://secretsmanager.us-east-1.amazonaws.com", None),
            ("http://[::1]:4566/prefix", None),
            ("http://[::1]", None),
            ("http://user:pw@127.0.0.1:1", None),
            ("http://user:pw@host", None),
            (
                "http://user:pw@host:",
                Some("its port is not a number from 1 to 65535"),
            ),
        ] {
            assert_eq!(endpoint_fault(value), why, "{value:?}");
        }
        let said: Vec<String> = unusable_endpoints(&env(&[
            ("AWS_ENDPOINT_URL", "not a url"),
            ("AWS_ENDPOINT_URL_SSM", "http://127.0.0.1:5000"),
            ("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", "ftp://u:pw@x"),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", ""),
        ]))
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(said.len(), 3, "{said:?}");
        assert!(
            said[0].starts_with(
                "AWS_ENDPOINT_URL=\"not a url\" is not an endpoint the AWS SDK can call: it is \
                 not a URL; write it as http(s)://HOST[:PORT]"
            ),
            "{}",
            said[0]
        );
        assert!(said[0].ends_with("or unset AWS_ENDPOINT_URL to call AWS's own endpoints"));
        assert!(said[1].starts_with("AWS_ENDPOINT_URL_SECRETS_MANAGER=\"\" is not"));
        assert!(
            said[2].starts_with(
                "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS=(hidden: it may hold a password) is not"
            ) && !said[2].contains("pw"),
            "{}",
            said[2]
        );
        // The SDK reads none of them then, nor does the check.
        assert_eq!(
            unusable_endpoints(&env(&[
                ("AWS_ENDPOINT_URL", "not a url"),
                ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "TRUE"),
            ])),
            []
        );
    }

    /// What [`unusable_endpoints_from`] says with the profile files under HOME
    /// `/home/u`.
    fn endpoints_with_files(
        vars: &[(&str, &str)],
        config: Option<&str>,
        credentials: Option<&str>,
    ) -> Vec<String> {
        let mut vars = vars.to_vec();
        vars.push(("HOME", "/home/u"));
        let read = |path: &Path| match path.to_str() {
            Some("/home/u/.aws/config") => config.map(str::to_owned),
            Some("/home/u/.aws/credentials") => credentials.map(str::to_owned),
            _ => None,
        };
        unusable_endpoints_from(&env(&vars), &read)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_profiles_endpoint_the_sdk_cannot_call_is_named_where_it_is_set() {
        // An empty one panicked the SDK at its first call, as the variable did.
        let said = endpoints_with_files(&[], Some("[default]\nendpoint_url =\n"), None);
        assert_eq!(
            said,
            [
                "endpoint_url=\"\" of the profile \"default\" (in \"/home/u/.aws/config\") \
              is not an endpoint the AWS SDK can call: it is empty; write it as \
              http(s)://HOST[:PORT] (e.g. http://127.0.0.1:5000 for a local emulator), or \
              remove endpoint_url from the profile to call AWS's own endpoints"
            ]
        );
        // Read by the SDK's rules: keys in any case, a comment after a space, the
        // credentials file's value over the config file's, `[profile NAME]` for
        // AWS_PROFILE in the config file.
        for (vars, config, credentials, value) in [
            (
                &[][..],
                "[default]\nEndpoint_URL = ftp://x ; old\n",
                "",
                "\"ftp://x\"",
            ),
            (
                &[],
                "[default]\nendpoint_url = http://127.0.0.1:1\n",
                "[default]\nendpoint_url = nope\n",
                "\"nope\"",
            ),
            (
                &[("AWS_PROFILE", "dev")],
                "[default]\nendpoint_url = http://127.0.0.1:1\n[profile dev]\nendpoint_url = x\n",
                "",
                "\"x\"",
            ),
            // A user part may hold a password: not shown.
            (
                &[],
                "[default]\nendpoint_url = http://u:hunter2@h:0\n",
                "",
                "(hidden: it may hold a password)",
            ),
        ] {
            let said = endpoints_with_files(vars, Some(config), Some(credentials));
            assert_eq!(said.len(), 1, "{config:?} {credentials:?}: {said:?}");
            assert!(
                said[0].starts_with(&format!("endpoint_url={value} of the profile")),
                "{said:?}"
            );
            assert!(!said[0].contains("hunter2"), "{said:?}");
        }
        // A service's own, in the profile's [services NAME] section (its id in lower
        // case with hyphens), stands before the profile's: one problem per value.
        let services = "[default]\nendpoint_url = also bad\nservices = local\n\
                        [services local]\nsecrets-manager =\n  endpoint_url = http://[::1\n\
                        ssm =\n  endpoint_url = http://127.0.0.1:4566\n";
        let said = endpoints_with_files(&[], Some(services), None);
        assert_eq!(said.len(), 2, "{said:?}");
        assert!(
            said[0].starts_with(
                "endpoint_url=\"http://[::1\" for secrets-manager in [services local] (the \
                 services of the profile \"default\", in \"/home/u/.aws/config\") is not an \
                 endpoint the AWS SDK can call: it is not a URL"
            ) && said[0]
                .ends_with("or remove it from [services local] to call AWS's own endpoints"),
            "{said:?}"
        );
        assert!(
            said[1].starts_with("endpoint_url=\"also bad\" of the profile"),
            "{said:?}"
        );
        // A variable stands before every profile value: the SDK never reads them then.
        let with = |vars: &[(&str, &str)]| endpoints_with_files(vars, Some(services), None);
        assert_eq!(
            with(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")]),
            Vec::<String>::new()
        );
        let said = with(&[("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://127.0.0.1:4566")]);
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(said[0].starts_with("endpoint_url=\"also bad\""), "{said:?}");
        // Ignored as the SDK ignores them: by the variable, else by the profile.
        assert_eq!(
            with(&[("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")]),
            Vec::<String>::new()
        );
        let ignoring = "[default]\nendpoint_url =\nignore_configured_endpoint_urls = TRUE\n";
        assert_eq!(
            endpoints_with_files(&[], Some(ignoring), None),
            Vec::<String>::new()
        );
        let said = endpoints_with_files(
            &[("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "false")],
            Some(ignoring),
            None,
        );
        assert_eq!(said.len(), 1, "{said:?}");
        // Nothing to say: a good value, another profile's, no file, a file the SDK's
        // parser refuses (its own load says why).
        for config in [
            "[default]\nendpoint_url = https://secretsmanager.us-east-1.amazonaws.com\n",
            "[profile other]\nendpoint_url =\n",
            "[default]\nendpoint_url\n",
        ] {
            assert_eq!(
                endpoints_with_files(&[], Some(config), None),
                Vec::<String>::new()
            );
        }
        assert_eq!(endpoints_with_files(&[], None, None), Vec::<String>::new());
    }

    #[test]
    fn the_check_refuses_such_a_file_without_opening_it() {
        let dir = testkit::temp::TempDir::new("aws-check-refuses");
        let pipe = dir.join("config");
        testkit::temp::fifo(&pipe);
        let vars = env(&[
            ("AWS_CONFIG_FILE", pipe.to_str().unwrap()),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]);
        // Before, `configured` opened the pipe and waited for a writer for ever, in the
        // runtime's thread: the answer is awaited from outside it.
        let (answer, answered) = std::sync::mpsc::channel();
        let reading = pipe.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let checked = runtime.block_on(check_configuration(&vars, true));
            answer.send((checked, read_small(&reading)))
        });
        let (checked, read) = answered
            .recv_timeout(Duration::from_secs(60))
            .expect("the check ends");
        let problems = checked.unwrap_err();
        assert!(
            matches!(&problems[..], [Problem::File { what, .. }] if what == "a named pipe (FIFO)"),
            "{problems:?}"
        );
        // The profile reader alone does not wait on it either.
        assert_eq!(read, None);
    }

    #[test]
    fn nothing_configured_is_nothing() {
        let found = with_files(&[("HOME", "/home/u")], None, None);
        assert_eq!(
            found,
            Configured {
                credentials: None,
                region: None,
                imds: true,
                hints: vec![],
            }
        );
        let off = configured(&env(&[("AWS_EC2_METADATA_DISABLED", "TRUE")]));
        assert!(!off.imds);
        // The SDK reads only `true`: `1` leaves IMDS on, and so does this check.
        assert!(configured(&env(&[("AWS_EC2_METADATA_DISABLED", "1")])).imds);
    }

    #[test]
    fn each_source_of_the_chain_counts() {
        let with = |extra: &[(&str, &str)]| {
            let mut vars = vec![("HOME", "/home/u")];
            vars.extend_from_slice(extra);
            with_files(&vars, None, None).credentials
        };
        assert_eq!(
            with(&[
                ("AWS_ACCESS_KEY_ID", "AKID"),
                ("AWS_SECRET_ACCESS_KEY", "s")
            ])
            .as_deref(),
            Some("AWS_ACCESS_KEY_ID")
        );
        assert_eq!(
            with(&[("AWS_ACCESS_KEY_ID", "AKID"), ("SECRET_ACCESS_KEY", "s")]).as_deref(),
            Some("AWS_ACCESS_KEY_ID")
        );
        assert_eq!(
            with(&[(
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "/v2/credentials/x"
            )])
            .as_deref(),
            Some("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        );
        assert_eq!(
            with(&[("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1/x")]).as_deref(),
            Some("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        );
        assert_eq!(
            with(&[
                ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"),
                ("AWS_ROLE_ARN", "arn:aws:iam::1:role/r")
            ])
            .as_deref(),
            Some("AWS_WEB_IDENTITY_TOKEN_FILE")
        );
        // Blank is unset, as the SDK reads it.
        assert_eq!(
            with(&[("AWS_ACCESS_KEY_ID", " "), ("AWS_SECRET_ACCESS_KEY", "s")]),
            None
        );
    }

    #[test]
    fn half_made_settings_are_named() {
        let found = configured(&env(&[
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_ROLE_ARN", "arn:aws:iam::1:role/r"),
            ("AWS_PROFILE", "prod"),
        ]));
        assert_eq!(found.credentials, None);
        assert_eq!(
            found.hints,
            [
                "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not",
                "AWS_PROFILE=\"prod\" names no profile in any profile file (HOME is not set)",
                "AWS_ROLE_ARN is set but AWS_WEB_IDENTITY_TOKEN_FILE is not",
            ]
        );
    }

    #[test]
    fn profiles_are_found_in_either_file_with_their_region() {
        let config = "# mine\n[default]\nregion = eu-west-1\n[profile prod]\nrole_arn = x\n  region = sub-property\n";
        let credentials = "[ci]\naws_access_key_id = AKID\naws_secret_access_key = s\n";
        let read = |vars: &[(&str, &str)]| with_files(vars, Some(config), Some(credentials));
        let default = read(&[("HOME", "/home/u")]);
        assert_eq!(default.credentials.as_deref(), Some("profile \"default\""));
        assert_eq!(
            default.region,
            Some(FoundRegion {
                from: "the region of profile \"default\" (in \"/home/u/.aws/config\" and \"/home/u/.aws/credentials\")".to_owned(),
                value: "eu-west-1".to_owned()
            })
        );
        let prod = read(&[("HOME", "/home/u"), ("AWS_PROFILE", "prod")]);
        assert_eq!(prod.credentials.as_deref(), Some("profile \"prod\""));
        assert_eq!(
            prod.region, None,
            "an indented line is not the profile's region"
        );
        let ci = read(&[("HOME", "/home/u"), ("AWS_PROFILE", "ci")]);
        assert_eq!(ci.credentials.as_deref(), Some("profile \"ci\""));
        let missing = read(&[("HOME", "/home/u"), ("AWS_PROFILE", "nope")]);
        assert_eq!(missing.credentials, None);
        assert_eq!(
            missing.hints,
            ["AWS_PROFILE=\"nope\" names no profile in /home/u/.aws/config or /home/u/.aws/credentials"]
        );
        // AWS_CONFIG_FILE moves the file (`~/` is HOME); AWS_REGION wins over the profile.
        let moved = with_files(
            &[
                ("HOME", "/elsewhere"),
                ("AWS_CONFIG_FILE", "/home/u/.aws/config"),
                ("AWS_REGION", "us-east-2"),
            ],
            Some(config),
            None,
        );
        assert_eq!(moved.credentials.as_deref(), Some("profile \"default\""));
        let tilde = with_files(
            &[
                ("HOME", "/home/u"),
                ("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"),
                ("AWS_PROFILE", "ci"),
            ],
            None,
            Some(credentials),
        );
        assert_eq!(tilde.credentials.as_deref(), Some("profile \"ci\""));
        assert_eq!(
            moved.region.map(|r| (r.from, r.value)),
            Some(("AWS_REGION".to_owned(), "us-east-2".to_owned()))
        );
    }

    #[test]
    fn an_empty_profile_file_variable_names_no_file_as_for_the_sdk() {
        // AWS_CONFIG_FILE="" is a path that names no file, not "unset": the SDK reads
        // nothing, so ~/.aws/config's profile and region are not the SDK's.
        let config = "[default]\nregion = eu-west-1\n";
        let vars = [("HOME", "/home/u"), ("AWS_CONFIG_FILE", "")];
        let seen = with_files(&vars, Some(config), None);
        assert_eq!((seen.credentials, seen.region), (None, None));
        let unset = with_files(&[("HOME", "/home/u")], Some(config), None);
        assert!(unset.credentials.is_some() && unset.region.is_some());
    }

    #[test]
    fn config_sections_need_their_prefix_and_credentials_sections_do_not() {
        let found = |config: Option<&str>, credentials: Option<&str>, name: &str| {
            let vars = [("HOME", "/home/u"), ("AWS_PROFILE", name)];
            with_files(&vars, config, credentials).credentials.is_some()
        };
        assert!(found(Some("[profile prod]"), None, "prod"));
        assert!(found(Some("[ profile  prod ]"), None, "prod"));
        assert!(!found(Some("[prod]"), None, "prod"));
        assert!(found(Some("[default]"), None, "default"));
        assert!(found(Some("[profile default]"), None, "default"));
        assert!(!found(Some("[profileprod]"), None, "prod"));
        assert!(found(None, Some("[prod]"), "prod"));
        assert!(!found(None, Some("[profile prod]"), "prod"));
        assert!(!found(Some("[sso-session prod]"), None, "prod"));
    }

    #[test]
    fn a_profile_file_the_sdk_cannot_parse_is_named_with_its_line() {
        let seen = with_files(
            &[("HOME", "/home/u")],
            Some("region = eu-west-1\n[default]\n"),
            None,
        );
        assert_eq!(seen.credentials, None);
        assert_eq!(seen.region, None);
        assert_eq!(seen.hints.len(), 1, "{:?}", seen.hints);
        let hint = &seen.hints[0];
        assert!(
            hint.starts_with("the AWS SDK cannot read the profile files: ")
                && hint.contains("/home/u/.aws/config")
                && hint.contains("line 1"),
            "{hint}"
        );
        assert!(!hint.contains("eu-west-1"), "{hint}");
    }

    #[tokio::test]
    async fn nothing_configured_and_imds_off_fails_at_once_with_every_problem() {
        let vars = env(&[
            ("HOME", "/nonexistent"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]);
        let started = std::time::Instant::now();
        let problems = check_configuration(&vars, true).await.unwrap_err();
        // No probe ran: half the probe's timeout, room for a loaded machine.
        assert!(started.elapsed() < IMDS_PROBE_TIMEOUT / 2);
        assert_eq!(problems.len(), 2, "{problems:?}");
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert!(
            text[0].starts_with("no AWS credentials are configured"),
            "{text:?}"
        );
        assert!(
            text[0].contains("AWS_EC2_METADATA_DISABLED=true"),
            "{text:?}"
        );
        assert!(text[0].contains("task role"), "{text:?}");
        assert!(
            text[1].starts_with("no AWS region is configured"),
            "{text:?}"
        );
        assert!(text[1].contains("Set AWS_REGION"), "{text:?}");
        // A region is not needed when everything is named by ARN.
        assert_eq!(
            check_configuration(&vars, false).await.unwrap_err().len(),
            1
        );
    }

    #[test]
    fn region_names_are_lowercase_dns_labels() {
        for fine in [
            "us-east-1",
            "us-gov-west-1",
            "cn-north-1",
            "eu-isoe-west-1",
            "local",
        ] {
            assert_eq!(region_fault(fine), None, "{fine}");
        }
        let long = "a".repeat(64);
        for (bad, why) in [
            ("", "it is empty"),
            ("us-east-1 ", "it has spaces or other blank characters"),
            ("us-east-1\n", "it has spaces or other blank characters"),
            ("US-EAST-1", "it has capital letters"),
            (
                "us_east_1",
                "it has characters other than lowercase letters, digits and '-'",
            ),
            (
                "us-east-1.x",
                "it has characters other than lowercase letters, digits and '-'",
            ),
            (
                "ü",
                "it has characters other than lowercase letters, digits and '-'",
            ),
            (&long, "it is longer than 63 characters"),
            ("-us", "it begins or ends with '-'"),
            ("us-", "it begins or ends with '-'"),
        ] {
            assert_eq!(region_fault(bad), Some(why), "{bad:?}");
        }
    }

    #[test]
    fn the_region_is_found_where_the_sdk_finds_it() {
        let region = |vars: &[(&str, &str)], config: Option<&str>| {
            let mut vars = vars.to_vec();
            vars.push(("HOME", "/home/u"));
            with_files(&vars, config, None)
                .region
                .map(|r| (r.from, r.value))
        };
        let pair = |from: &str, value: &str| Some((from.to_owned(), value.to_owned()));
        // Set is set: an empty AWS_REGION is the SDK's region, AWS_DEFAULT_REGION unread.
        assert_eq!(
            region(
                &[("AWS_REGION", ""), ("AWS_DEFAULT_REGION", "eu-west-1")],
                None
            ),
            pair("AWS_REGION", "")
        );
        assert_eq!(
            region(&[("AWS_DEFAULT_REGION", "eu-west-1")], None),
            pair("AWS_DEFAULT_REGION", "eu-west-1")
        );
        // A profile without a region takes its source profile's, as the SDK does; a
        // loop ends with none.
        let chained = "[profile prod]\nsource_profile = base\n[profile base]\nregion = eu-west-2\n";
        let (from, value) = region(&[("AWS_PROFILE", "prod")], Some(chained)).unwrap();
        assert_eq!(value, "eu-west-2");
        assert!(
            from.starts_with("the region of profile \"base\" (in "),
            "{from}"
        );
        let looped = "[profile a]\nsource_profile = b\n[profile b]\nsource_profile = a\n";
        assert_eq!(region(&[("AWS_PROFILE", "a")], Some(looped)), None);
        let own = "[profile a]\nsource_profile = a\n";
        assert_eq!(region(&[("AWS_PROFILE", "a")], Some(own)), None);
    }

    #[tokio::test]
    async fn a_region_that_is_not_a_regions_name_is_named_where_it_is_needed() {
        let with_region = |value: &str| {
            env(&[
                ("AWS_ACCESS_KEY_ID", "AKID"),
                ("AWS_SECRET_ACCESS_KEY", "s"),
                ("AWS_REGION", value),
                ("AWS_DEFAULT_REGION", "eu-west-1"),
            ])
        };
        let problems = check_configuration(&with_region("US-EAST-1 "), true)
            .await
            .unwrap_err();
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 1, "{text:?}");
        assert!(
            text[0].starts_with(
                "AWS_REGION=\"US-EAST-1 \" is not an AWS region: it has spaces or other blank characters; "
            ),
            "{text:?}"
        );
        // Not needed (everything named by ARN): not the SDK's to use, not refused.
        assert_eq!(
            check_configuration(&with_region("US-EAST-1"), false).await,
            Ok(())
        );
        // A long one is cut short.
        let long = "x".repeat(500);
        let said = check_configuration(&with_region(&long), true)
            .await
            .unwrap_err()[0]
            .to_string();
        assert!(
            said.contains(&format!("AWS_REGION=\"{}…\"", "x".repeat(64))),
            "{said}"
        );
        assert!(!said.contains(&"x".repeat(65)), "{said}");
    }

    #[tokio::test]
    async fn a_configured_source_needs_no_probe() {
        let vars = env(&[
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("AWS_REGION", "eu-west-1"),
        ]);
        assert_eq!(check_configuration(&vars, true).await, Ok(()));
    }

    proptest! {
        /// Any value of an endpoint variable: no panic; what passes is an http(s) URL
        /// with a host; a value with an `@` is never shown.
        #[test]
        fn any_endpoint_value_is_judged_without_panicking(
            value in "(http|https|ftp|:|/|@|\\[|\\]|%| |[0-9]|[a-z.]){0,40}",
        ) {
            let problems = unusable_endpoints(&env(&[("AWS_ENDPOINT_URL", &value)]));
            match problems.first() {
                None => {
                    let uri: hyper::Uri = value.parse().unwrap();
                    prop_assert!(matches!(uri.scheme_str(), Some("http" | "https")));
                    prop_assert!(uri.host().is_some_and(|h| !h.is_empty()));
                }
                Some(problem) => {
                    let said = problem.to_string();
                    prop_assert!(!value.contains('@') || !said.contains(&value));
                }
            }
        }

        /// Any profile text: no panic; a problem is only ever a profile's endpoint when
        /// a file sets one, and a value with an `@` is never shown.
        #[test]
        fn any_profile_endpoint_is_judged_without_panicking(
            config in "(\\[|\\]|=| |\n|#|;|profile|default|services|s|ssm|endpoint_url|ignore_configured_endpoint_urls|true|http://|u:pw@|:0|[a-z.]){0,200}",
        ) {
            let said = endpoints_with_files(&[], Some(&config), None);
            for said in &said {
                prop_assert!(said.starts_with("endpoint_url="), "{said}");
                prop_assert!(!said.contains("u:pw@"), "{said}");
            }
            prop_assert!(said.is_empty() || config.contains("endpoint_url"));
        }

        /// Any text as a region: no panic; what passes is a DNS label of lowercase
        /// letters, digits and '-'.
        #[test]
        fn any_region_is_judged_without_panicking(value in "\\PC{0,80}|[a-zA-Z0-9 _.-]{0,70}") {
            if region_fault(&value).is_none() {
                prop_assert!((1..=63).contains(&value.len()), "{value:?}");
                prop_assert!(value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'), "{value:?}");
                prop_assert!(!value.starts_with('-') && !value.ends_with('-'), "{value:?}");
            }
            let found = FoundRegion { from: "AWS_REGION".to_owned(), value: value.clone() };
            prop_assert!(found.named().starts_with("AWS_REGION=\""));
        }

        #[test]
        fn any_profile_text_is_read_without_panicking(text in "(\\[|\\]|=| |\n|#|profile|default|region|[a-z]){0,200}") {
            for (config, credentials) in [(Some(text.as_str()), None), (None, Some(text.as_str()))] {
                let seen = with_files(&[("HOME", "/home/u")], config, credentials);
                // A region of the profile only where the profile is found.
                prop_assert!(seen.credentials.is_some() || seen.region.is_none(), "{seen:?}");
            }
        }
    }
}
