//! A new user's configuration mistakes through the built agent: each stops the start
//! at once with what to set (or, for a misspelt setting, is named at start), instead
//! of failing at the secrets deadline or being silently ignored.
//!
//! Every agent here runs with its own empty HOME (no profile files) unless a test gives
//! it one; the EC2 instance metadata service is either disabled or pointed at a
//! stand-in with `AWS_EC2_METADATA_SERVICE_ENDPOINT`, never the machine's own.

use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};

use crate::support::*;

/// "At once": nothing is fetched, nothing is waited for. Generous for a loaded 2-core
/// machine (the measured time is about 40 ms), and still well short of the 10 s
/// secrets deadline a wait would run into.
const AT_ONCE: Duration = Duration::from_secs(3);

/// An agent with moto's endpoint and region, no credentials at all, an empty HOME,
/// and the instance metadata service disabled (`AWS_EC2_METADATA_DISABLED=true`).
fn agent_without_credentials(home: &Scratch) -> Command {
    let mut cmd = agent();
    cmd.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("HOME", home.path())
        .env("AWS_EC2_METADATA_DISABLED", "true");
    cmd
}

/// The same with the instance metadata service at `endpoint` instead.
fn agent_with_instance_metadata(home: &Scratch, endpoint: String) -> Command {
    let mut cmd = agent_without_credentials(home);
    cmd.env_remove("AWS_EC2_METADATA_DISABLED")
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", endpoint);
    cmd
}

/// Runs `cmd` (an app that records its environment) and how long it took.
async fn timed(cmd: Command) -> (AppRun, Duration) {
    let started = Instant::now();
    let run = run_app(cmd).await;
    (run, started.elapsed())
}

/// Runs `cmd` and checks that the start stopped at once, 78, the app not run, stderr
/// naming each of `names`; the run, for more checks.
async fn refused_at_once(cmd: Command, names: &[&str]) -> AppRun {
    let (run, took) = timed(cmd).await;
    run.assert_refused(78, names, &[]);
    assert!(took < AT_ONCE, "{names:?}: took {took:?}");
    run
}

#[tokio::test(flavor = "multi_thread")]
async fn no_credentials_anywhere_stops_at_once_with_the_fix() {
    let _timing = TIMING.read().await;
    let home = scratch();
    let mut cmd = agent_without_credentials(&home);
    cmd.env("DB_PASSWORD", "secretsmanager:mistakes/db:password");
    let names = [
        "no AWS credentials are configured",
        "AWS_EC2_METADATA_DISABLED=true",
        "task role",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        "AWS_PROFILE",
    ];
    refused_at_once(cmd, &names).await;
}

/// Container credentials settings the SDK's provider cannot use (a relative URI that
/// is not a path, a full URI that is not a URI) were retried as if the endpoint were not
/// up yet, until `DECKHAND_SECRETS_TIMEOUT` (exit 69). The SDK calls them invalid
/// configuration: the start stops at once (78) with its words and what to fix.
#[tokio::test(flavor = "multi_thread")]
async fn container_credentials_settings_the_sdk_cannot_use_stop_the_start_at_once() {
    let _timing = TIMING.read().await;
    let home = scratch();
    for (variable, value, said) in [
        (
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "not a path",
            "invalid relative URI",
        ),
        (
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "http://[::1",
            "invalid full URI",
        ),
    ] {
        let mut cmd = agent_without_credentials(&home);
        cmd.env(variable, value).env(
            "DB_PASSWORD",
            "secretsmanager:mistakes/container-credentials",
        );
        let (run, took) = timed(cmd).await;
        run.assert_refused(
            78,
            &[
                "could not be used",
                "the credentials provider was not properly configured",
                said,
                "fix the credentials setting it names",
            ],
            &[],
        );
        assert!(took < AT_ONCE, "{variable}={value:?}: took {took:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_half_set_key_pair_is_named() {
    let home = scratch();
    let mut cmd = agent_without_credentials(&home);
    cmd.env("AWS_ACCESS_KEY_ID", "AKIDONLY")
        .env("V", "secretsmanager:mistakes/half");
    run_app(cmd).await.assert_refused(
        78,
        &["AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not"],
        &[],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn no_credentials_and_instance_metadata_out_of_reach_stop_within_the_probe() {
    let _timing = TIMING.read().await;
    // Nothing listens: refused at once.
    let home = scratch();
    let mut cmd =
        agent_with_instance_metadata(&home, format!("http://{}", testkit::net::closed_port()));
    cmd.env("V", "secretsmanager:mistakes/imds");
    let (run, took) = timed(cmd).await;
    run.assert_refused(
        78,
        &[
            "no AWS credentials are configured",
            "EC2 instance metadata",
            "task role",
        ],
        &[],
    );
    assert!(took < AT_ONCE, "took {took:?}");

    // Something accepts the connection and never answers (a metadata hop limit that
    // drops the answer looks like this): the one look is bounded.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut cmd =
        agent_with_instance_metadata(&home, format!("http://{}", silent.local_addr().unwrap()));
    cmd.env("V", "secretsmanager:mistakes/imds");
    let (run, took) = timed(cmd).await;
    run.assert_refused(
        78,
        &["no AWS credentials are configured", "no answer within 1s"],
        &[],
    );
    assert!(
        took < aws::sdk::IMDS_PROBE_TIMEOUT + AT_ONCE,
        "took {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_from_instance_metadata_still_work() {
    // The stand-in must answer within the probe's second: not while fifty agents start.
    let _timing = TIMING.read().await;
    let client = sm("us-east-1").await;
    let (name, _) = create_secret(&client, "mistakes", "from-imds-value-1").await;
    let imds = instance_metadata(true).await;
    let home = scratch();
    let mut cmd = agent_with_instance_metadata(&home, format!("http://{imds}"));
    cmd.env("V", format!("secretsmanager:{name}"));
    let env = run_app(cmd).await.assert_started();
    assert_eq!(var(&env, "V"), Some("from-imds-value-1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_instance_without_an_instance_profile_stops_at_once() {
    let _timing = TIMING.read().await;
    let imds = instance_metadata(false).await;
    let home = scratch();
    let mut cmd = agent_with_instance_metadata(&home, format!("http://{imds}"));
    cmd.env("V", "secretsmanager:mistakes/no-profile");
    run_app(cmd).await.assert_refused(
        78,
        &[
            "no AWS credentials are configured",
            "the instance has no IAM instance profile",
        ],
        &[],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn no_region_stops_at_once_naming_aws_region_and_the_full_arn() {
    let _timing = TIMING.read().await;
    let home = scratch();
    let mut cmd = agent();
    cmd.env_remove("AWS_REGION")
        .env("HOME", home.path())
        .env("DB_PASSWORD", "secretsmanager:mistakes/db:password")
        .env("FLAG", "ssm:/mistakes/flag");
    let (run, took) = timed(cmd).await;
    run.assert_refused(
        78,
        &[
            "secret \"mistakes/db\"",
            "parameter \"/mistakes/flag\"",
            "no AWS region is configured",
            "Set AWS_REGION",
            "full ARN",
            "arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME",
        ],
        &[],
    );
    assert!(took < AT_ONCE, "took {took:?}");
    let (_, stderr) = text(&run.out);
    assert!(
        !stderr.contains("no AWS credentials"),
        "the credentials are fine: {stderr}"
    );
}

/// Shipping needs credentials and a region as much as a reference does: without
/// either, it retried in silence until the stop, and every event was lost.
#[tokio::test(flavor = "multi_thread")]
async fn shipping_without_a_region_or_credentials_stops_at_once_naming_what_is_missing() {
    let _timing = TIMING.read().await;
    let home = scratch();
    let group = testkit::unique_name("/deckhand/mistakes/no-region");
    let mut cmd = agent();
    cmd.env_remove("AWS_REGION")
        .env("HOME", home.path())
        .env("CLOUDWATCH_LOG_GROUP", &group);
    let names = [
        "shipping to CloudWatch Logs (CLOUDWATCH_LOG_GROUP): no AWS region is configured",
        "Set AWS_REGION",
    ];
    let run = refused_at_once(cmd, &names).await;
    let (_, stderr) = text(&run.out);
    assert!(
        !stderr.contains("full ARN"),
        "a log group has no ARN form: {stderr}"
    );

    let mut cmd = agent_without_credentials(&home);
    cmd.env("CLOUDWATCH_LOG_GROUP", &group);
    let names = [
        "shipping to CloudWatch Logs (CLOUDWATCH_LOG_GROUP): no AWS credentials are configured",
        "task role",
    ];
    refused_at_once(cmd, &names).await;
}

/// A region that is not a region's name: the SDK refused most in its own words
/// ("must be a valid host label", no variable named; shipping retried them until the
/// stop), and sent one in capitals, which the emulator answers with HTTP 500, retried
/// to the secrets deadline (exit 69 after 10 s). Now refused at once by name.
#[tokio::test(flavor = "multi_thread")]
async fn a_region_that_is_not_a_regions_name_stops_the_start_at_once_by_name() {
    let _timing = TIMING.read().await;
    let group = testkit::unique_name("/deckhand/mistakes/region");
    for (region, shown, why) in [
        (
            "US-EAST-1",
            "AWS_REGION=\"US-EAST-1\"",
            "it has capital letters",
        ),
        ("us-east-1 ", "AWS_REGION=\"us-east-1 \"", "it has spaces"),
        ("", "AWS_REGION=\"\"", "it is empty"),
    ] {
        let set = |cmd: &mut Command| {
            // An empty AWS_REGION is the SDK's region: AWS_DEFAULT_REGION is not read.
            cmd.env("AWS_REGION", region)
                .env("AWS_DEFAULT_REGION", "us-east-1");
        };
        refused_at_once_either_way(set, &group, &[shown, why, "is not an AWS region"], &[]).await;
    }
    // In a reference's ARN, the same.
    let mut cmd = agent();
    cmd.env(
        "DB_PASSWORD",
        "arn:aws:secretsmanager:Us-East-1:123456789012:secret:mistakes/db",
    );
    let names = [
        "DB_PASSWORD",
        "the ARN's region is not an AWS region: it has capital letters",
    ];
    refused_at_once(cmd, &names).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_arn_carries_its_region_without_aws_region() {
    let west = sm("us-west-2").await;
    let (_, arn) = create_secret(&west, "mistakes", "west-without-region-1").await;
    let home = scratch();
    let mut cmd = agent();
    cmd.env_remove("AWS_REGION")
        .env("HOME", home.path())
        .env("V", &arn);
    let env = run_app(cmd).await.assert_started();
    assert_eq!(var(&env, "V"), Some("west-without-region-1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_misspelt_setting_is_named_with_the_right_one_and_the_app_still_starts() {
    let mut cmd = agent();
    cmd.env("DECKHAND_ENV_SECRET", "mistakes/app-env")
        .env("DECKHAND_AGENT_LOG_FORMAT", "text");
    let run = run_app(cmd).await;
    let env = run.assert_started();
    let (_, stderr) = text(&run.out);
    assert!(
        stderr.contains(
            "warning: DECKHAND_ENV_SECRET is not a deckhand setting (did you mean DECKHAND_ENV_SECRETS?); it is ignored and not passed to the app"
        ),
        "{stderr}"
    );
    assert_eq!(var(&env, "DECKHAND_ENV_SECRET"), None);
}

/// An EC2 instance metadata service stand-in (IMDSv2) whose instance profile, when
/// the instance has one (`role`), gives credentials moto takes.
async fn instance_metadata(role: bool) -> std::net::SocketAddr {
    let expiration =
        humantime::format_rfc3339_seconds(SystemTime::now() + Duration::from_secs(3600))
            .to_string();
    testkit::http::serve(move |req: Request<Incoming>| {
        let path = req.uri().path().to_owned();
        let credentials = serde_json::json!({
            "Code": "Success",
            "Type": "AWS-HMAC",
            "AccessKeyId": "AKIDFROMIMDS",
            "SecretAccessKey": "imds-secret-key",
            "Token": "imds-session-token",
            "Expiration": expiration,
            "LastUpdated": expiration,
        })
        .to_string();
        async move {
            let (status, body) = match path.as_str() {
                "/latest/api/token" => (200, "imds-token".to_owned()),
                "/latest/meta-data/iam/security-credentials/" if role => {
                    (200, "deckhand-role".to_owned())
                }
                "/latest/meta-data/iam/security-credentials/deckhand-role" => (200, credentials),
                _ => (404, String::new()),
            };
            Response::builder()
                .status(status)
                .header("x-aws-ec2-metadata-token-ttl-seconds", "21600")
                .body(Full::new(Bytes::from(body)))
                .unwrap()
        }
    })
    .await
}

/// A file the AWS SDK reads by itself (a profile, a token, its CA bundle), at a named pipe
/// or a device: the SDK's read of it
/// blocks the agent's one runtime thread for ever, so the app never started and even
/// SIGTERM went unanswered (ECS's SIGKILL ended it), with secrets to fetch or only logs
/// to ship. Now refused at once by name (78); `/dev/null`, read at once and empty, is
/// not.
#[tokio::test(flavor = "multi_thread")]
async fn a_file_the_sdk_would_read_for_ever_stops_the_start_at_once_by_name() {
    let _timing = TIMING.read().await;
    let home = scratch();
    let pipe = home.join("pipe");
    testkit::temp::fifo(&pipe);
    let group = testkit::unique_name("/deckhand/mistakes/files");
    for (variable, path, what) in [
        (
            "AWS_CONFIG_FILE",
            pipe.to_str().unwrap(),
            "a named pipe (FIFO)",
        ),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            pipe.to_str().unwrap(),
            "a named pipe (FIFO)",
        ),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", "/dev/zero", "a device"),
        (
            "SSL_CERT_FILE",
            pipe.to_str().unwrap(),
            "a named pipe (FIFO)",
        ),
    ] {
        let named = format!("{variable}={path:?}");
        refused_at_once_either_way(
            |cmd| {
                cmd.env("HOME", home.path()).env(variable, path);
            },
            &group,
            &[named.as_str(), what, "point", "or unset it"],
            &[],
        )
        .await;
    }
    // `/dev/null` holds no profile: the app starts.
    let mut cmd = agent();
    cmd.env("HOME", home.path())
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("CLOUDWATCH_LOG_GROUP", &group);
    run_app(cmd).await.assert_started();
}

/// An endpoint the SDK cannot call: an empty `AWS_ENDPOINT_URL` panicked the SDK at the
/// first call (the secret "not fetched", exit 69; the log shipper's thread gone, nothing
/// shipped), a malformed one failed every attempt until the deadline with a dump of the
/// request as the reason. Now refused at once by name (78), and a URL that may hold a
/// password is not shown.
#[tokio::test(flavor = "multi_thread")]
async fn an_endpoint_the_sdk_cannot_call_stops_the_start_at_once_by_name() {
    let _timing = TIMING.read().await;
    let group = testkit::unique_name("/deckhand/mistakes/endpoints");
    for (variable, value, shown, why) in [
        ("AWS_ENDPOINT_URL", "", "\"\"", "it is empty"),
        (
            "AWS_ENDPOINT_URL",
            "not a url",
            "\"not a url\"",
            "it is not a URL",
        ),
        (
            "AWS_ENDPOINT_URL_SECRETS_MANAGER",
            "ftp://user:hunter2-endpoint@host",
            "(hidden: it may hold a password)",
            "its scheme is neither http nor https",
        ),
        (
            "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS",
            "http://127.0.0.1:99999",
            "\"http://127.0.0.1:99999\"",
            "its port is not a number from 1 to 65535",
        ),
    ] {
        let named = format!("{variable}={shown}");
        refused_at_once_either_way(
            |cmd| {
                cmd.env(variable, value);
            },
            &group,
            &[named.as_str(), why],
            &["hunter2-endpoint"],
        )
        .await;
    }
}

/// The same mistake in a profile file (`endpoint_url` of the profile, or of a service in
/// its `[services NAME]` section), which the SDK reads where no endpoint variable is
/// set: an empty one panicked the SDK at its first call (exit 69, "not fetched"; the
/// shipper gone), a malformed one failed every attempt until the deadline. Refused at
/// once by name now; a good one is the SDK's to use, as before.
#[tokio::test(flavor = "multi_thread")]
async fn a_profiles_endpoint_the_sdk_cannot_call_stops_the_start_at_once_by_name() {
    let _timing = TIMING.read().await;
    let group = testkit::unique_name("/deckhand/mistakes/profile-endpoints");
    let home = scratch();
    let config = home.path().join("config");
    for (text, names) in [
        (
            "[default]\nendpoint_url =\n",
            &[
                "endpoint_url=\"\" of the profile \"default\"",
                "it is empty",
            ][..],
        ),
        (
            "[default]\nservices = local\n[services local]\nsecrets-manager =\n  \
             endpoint_url = http://user:hunter2-endpoint@\ncloudwatch-logs =\n  \
             endpoint_url = http://user:hunter2-endpoint@\n",
            &[
                "endpoint_url=(hidden: it may hold a password) for secrets-manager in \
                 [services local]",
                "remove it from [services local]",
            ],
        ),
    ] {
        std::fs::write(&config, text).unwrap();
        refused_at_once_either_way(
            |cmd| {
                cmd.env_remove("AWS_ENDPOINT_URL")
                    .env("AWS_CONFIG_FILE", &config);
            },
            &group,
            names,
            &["hunter2-endpoint"],
        )
        .await;
    }
    // The profile's endpoint is what the SDK calls: moto's here, and the app starts.
    let moto = testkit::service_var("AWS_ENDPOINT_URL");
    std::fs::write(&config, format!("[default]\nendpoint_url = {moto}\n")).unwrap();
    let mut cmd = agent();
    cmd.env_remove("AWS_ENDPOINT_URL")
        .env("AWS_CONFIG_FILE", &config)
        .env("CLOUDWATCH_LOG_GROUP", &group);
    run_app(cmd).await.assert_started();
}

/// The agent as `set` leaves it, run twice: with a secret to fetch, then with only a log
/// group to ship to. Each start stops at once, 78, the app not run, stderr naming each
/// of `names` (and, when shipping, CLOUDWATCH_LOG_GROUP) and none of `hidden`.
async fn refused_at_once_either_way(
    set: impl Fn(&mut Command),
    group: &str,
    names: &[&str],
    hidden: &[&str],
) {
    for ships in [false, true] {
        let mut cmd = agent();
        set(&mut cmd);
        let mut names = names.to_vec();
        if ships {
            cmd.env("CLOUDWATCH_LOG_GROUP", group);
            names.push("CLOUDWATCH_LOG_GROUP");
        } else {
            cmd.env("DB_PASSWORD", "secretsmanager:mistakes/before-load");
        }
        let (run, took) = timed(cmd).await;
        run.assert_refused(78, &names, hidden);
        assert!(took < AT_ONCE, "{names:?}, ships: {ships}: took {took:?}");
    }
}

/// `agent -- COMMAND` (the image's ENTRYPOINT) is read without clap, but a setting that
/// is not UTF-8 is refused as clap refuses it on any other command line: a usage error
/// (64) naming the fault, the app not started.
#[test]
fn a_setting_that_is_not_utf8_is_refused_in_the_entrypoint_form() {
    use std::os::unix::ffi::OsStrExt;
    let dir = scratch();
    let marker = dir.path().join("started");
    for flag_form in [false, true] {
        let mut cmd = bare_agent();
        cmd.env(
            "DECKHAND_STOP_TIMEOUT",
            std::ffi::OsStr::from_bytes(b"5\xffs"),
        );
        if flag_form {
            cmd.args(["--signal-group", "false"]);
        }
        cmd.args(["--", "touch"]).arg(&marker);
        let out = cmd.output().expect("the agent runs");
        assert_code(&out, 64);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("invalid UTF-8"), "{stderr}");
        assert!(!marker.exists(), "the app was started");
    }
}
