//! Parameter Store through the built `agent` binary, against the moto server that
//! `scripts/services` starts; a proxy in front of moto counts the requests and injects
//! throttling, access and KMS errors (which moto does not produce).
//!
//! Every test puts its parameters under its own path (`/params_<pid>_<n>_…/`), so tests run
//! in parallel. The app writes its environment to a file: the file (or its absence) is
//! the proof of what the app saw, or that it never ran.

use std::time::{Duration, Instant};

use aws_sdk_ssm::types::ParameterType;

use crate::support::*;

/// GetParameters' and GetParametersByPath's page limit, as the service sets it.
const AWS_PAGE: usize = 10;

/// A path no other test uses, like `/params_1234_5_ab12` (names may not start with
/// "ssm" or "aws").
pub(crate) fn unique_path() -> String {
    format!("/{}", testkit::unique_name("params"))
}

/// Creates or overwrites a parameter; returns its version.
pub(crate) async fn put(
    client: &aws_sdk_ssm::Client,
    name: &str,
    value: &str,
    kind: ParameterType,
) -> i64 {
    client
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(kind)
        .overwrite(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {name} in moto: {e:?}"))
        .version
}

/// Creates or overwrites each (name, value, type).
async fn put_all(client: &aws_sdk_ssm::Client, parameters: &[(&str, &str, ParameterType)]) {
    for (name, value, kind) in parameters {
        put(client, name, value, kind.clone()).await;
    }
}

async fn arn_of(client: &aws_sdk_ssm::Client, name: &str) -> String {
    client
        .get_parameter()
        .name(name)
        .send()
        .await
        .unwrap()
        .parameter
        .and_then(|p| p.arn)
        .expect("an ARN")
}

/// 63 parameter names in the style of the reference deployment's `/spotter-app/*`
/// (upper-case, and lower-case with `-` and `.`; two one level deeper), each with the
/// variable it becomes.
fn spotter_names() -> Vec<(String, String)> {
    let mut names: Vec<String> = [
        "AUTH_SECRET",
        "NEXTAUTH_URL",
        "AUTH_GOOGLE_ID",
        "AUTH_GOOGLE_SECRET",
        "AUTH_FACEBOOK_ID",
        "AUTH_FACEBOOK_SECRET",
        "STRIPE_SECRET_KEY",
        "STRIPE_PUBLISHABLE_KEY",
        "STRIPE_WEBHOOK_SECRET",
        "BEDROCK_MODEL_ID",
        "SES_SMTP_HOST",
        "SES_SMTP_PORT",
        "SES_SMTP_USER",
        "SES_SMTP_PASSWORD",
        "SES_FROM_ADDRESS",
        "UPSTASH_REDIS_REST_URL",
        "UPSTASH_REDIS_REST_TOKEN",
        "aws/region",
        "aws/dynamodb-endpoint",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for plan in ["core", "pro", "elite"] {
        for period in ["monthly", "annual"] {
            names.push(format!("stripe-price-id.{plan}-{period}"));
            names.push(format!("stripe-price-id.{plan}-{period}-trial"));
        }
    }
    for table in [
        "users",
        "workouts",
        "exercises",
        "programs",
        "sessions",
        "sets",
        "goals",
        "metrics",
        "subscriptions",
        "invoices",
        "feedback",
        "notifications",
        "uploads",
        "templates",
        "friends",
        "messages",
        "streaks",
        "badges",
        "audit",
        "settings",
        "plans",
        "coaches",
        "clients",
        "gyms",
        "classes",
        "bookings",
        "payments",
        "refunds",
        "coupons",
        "referrals",
        "challenges",
        "leaderboards",
    ] {
        names.push(format!("dynamodb-table.{table}"));
    }
    names.truncate(63);
    assert_eq!(names.len(), 63);
    names
        .into_iter()
        .map(|n| {
            let last = n.rsplit('/').next().unwrap();
            let var = last.replace(['-', '.'], "_").to_uppercase();
            (n, var)
        })
        .collect()
}

/// The value the test stores for a parameter of [`spotter_names`].
fn spotter_value(i: usize) -> String {
    format!("spotter-value-{i:02}-x9")
}

// ---------------------------------------------------------------------------------
// References
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn every_reference_form_and_parameter_type_resolves() {
    let client = ssm("us-east-1").await;
    let base = unique_path();
    let plain = format!("{base}/NEXTAUTH_URL");
    let list = format!("{base}/ALLOWED_ORIGINS");
    let secure = format!("{base}/AUTH_SECRET");
    let rotated = format!("{base}/STRIPE_SECRET_KEY");
    put_all(
        &client,
        &[
            (&plain, "https://spotter.example", ParameterType::String),
            (&list, "a.example,b.example", ParameterType::StringList),
            (&secure, "auth-secret-value-1", ParameterType::SecureString),
        ],
    )
    .await;
    let v1 = put(
        &client,
        &rotated,
        "sk_old_value_1",
        ParameterType::SecureString,
    )
    .await;
    let v2 = put(
        &client,
        &rotated,
        "sk_new_value_2",
        ParameterType::SecureString,
    )
    .await;
    assert_eq!((v1, v2), (1, 2));
    client
        .label_parameter_version()
        .name(&rotated)
        .parameter_version(1)
        .labels("previous")
        .send()
        .await
        .unwrap();
    // A name without a hierarchy, and a parameter in another region by its ARN.
    let flat = testkit::unique_name("flat");
    put(&client, &flat, "flat-value-1", ParameterType::String).await;
    let west = ssm("us-west-2").await;
    let west_name = format!("{base}/WEST");
    put(
        &west,
        &west_name,
        "west-value-1",
        ParameterType::SecureString,
    )
    .await;
    let west_arn = arn_of(&west, &west_name).await;
    let secure_arn = arn_of(&client, &secure).await;
    let rotated_arn = arn_of(&client, &rotated).await;

    let mut cmd = agent();
    cmd.env("PLAIN", format!("ssm:{plain}"))
        .env("LIST", format!("ssm:{list}"))
        .env("SECURE", format!("ssm:{secure}"))
        .env("SECURE_ARN", &secure_arn)
        .env("CURRENT", format!("ssm:{rotated}"))
        .env("VERSION_1", format!("ssm:{rotated}:1"))
        .env("VERSION_2", format!("ssm:{rotated}:2"))
        .env("ARN_VERSION_1", format!("{rotated_arn}:1"))
        .env("LABELLED", format!("ssm:{rotated}:previous"))
        .env("FLAT", format!("ssm:{flat}"))
        .env("OTHER_REGION", &west_arn);
    let run = run_app(cmd).await;
    let env = run.assert_started();
    assert_eq!(var(&env, "PLAIN"), Some("https://spotter.example"));
    assert_eq!(var(&env, "LIST"), Some("a.example,b.example"));
    assert_eq!(var(&env, "SECURE"), Some("auth-secret-value-1"));
    assert_eq!(var(&env, "SECURE_ARN"), Some("auth-secret-value-1"));
    assert_eq!(var(&env, "CURRENT"), Some("sk_new_value_2"));
    assert_eq!(var(&env, "VERSION_1"), Some("sk_old_value_1"));
    assert_eq!(var(&env, "VERSION_2"), Some("sk_new_value_2"));
    assert_eq!(var(&env, "ARN_VERSION_1"), Some("sk_old_value_1"));
    assert_eq!(var(&env, "LABELLED"), Some("sk_old_value_1"));
    assert_eq!(var(&env, "FLAT"), Some("flat-value-1"));
    assert_eq!(var(&env, "OTHER_REGION"), Some("west-value-1"));
    assert_no_leak(
        &run.out,
        ["auth-secret-value-1", "sk_old_value_1", "sk_new_value_2"],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sixty_three_references_take_seven_get_parameters_calls() {
    let client = ssm("us-east-1").await;
    let base = unique_path();
    let names = spotter_names();
    for (i, (name, _)) in names.iter().enumerate() {
        put(
            &client,
            &format!("{base}/{name}"),
            &spotter_value(i),
            ParameterType::SecureString,
        )
        .await;
    }
    let (endpoint, seen) = proxy(|_, _| None).await;
    let mut cmd = agent();
    cmd.env("AWS_ENDPOINT_URL", &endpoint);
    for (name, variable) in &names {
        cmd.env(variable, format!("ssm:{base}/{name}"));
    }
    let run = run_app(cmd).await;
    let env = run.assert_started();
    for (i, (_, variable)) in names.iter().enumerate() {
        assert_eq!(
            var(&env, variable),
            Some(spotter_value(i).as_str()),
            "{variable}"
        );
    }
    let seen = seen.lock().unwrap();
    let calls: Vec<usize> = seen
        .iter()
        .filter(|s| s.target == "AmazonSSM.GetParameters")
        .map(|s| s.body["Names"].as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(calls.len(), 7, "{calls:?}");
    assert!(calls.iter().all(|n| *n <= AWS_PAGE), "{calls:?}");
    assert_eq!(calls.iter().sum::<usize>(), 63);
    assert!(seen
        .iter()
        .filter(|s| s.target == "AmazonSSM.GetParameters")
        .all(|s| s.body["WithDecryption"] == true));
}

// ---------------------------------------------------------------------------------
// Whole paths
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_path_of_sixty_three_parameters_becomes_sixty_three_variables() {
    let client = ssm("us-east-1").await;
    let base = unique_path();
    let names = spotter_names();
    for (i, (name, _)) in names.iter().enumerate() {
        let kind = if i % 3 == 0 {
            ParameterType::String
        } else {
            ParameterType::SecureString
        };
        put(
            &client,
            &format!("{base}/spotter-app/{name}"),
            &spotter_value(i),
            kind,
        )
        .await;
    }
    let (endpoint, seen) = proxy(|_, _| None).await;
    let mut cmd = agent();
    cmd.env("AWS_ENDPOINT_URL", &endpoint)
        .env("DECKHAND_ENV_PARAMETERS", format!("{base}/spotter-app/"))
        .env(
            "DECKHAND_REQUIRED_ENV",
            "AUTH_SECRET,STRIPE_PRICE_ID_PRO_ANNUAL",
        );
    let run = run_app(cmd).await;
    let env = run.assert_started();
    for (i, (name, variable)) in names.iter().enumerate() {
        assert_eq!(
            var(&env, variable),
            Some(spotter_value(i).as_str()),
            "{name} → {variable}"
        );
    }
    assert_eq!(
        var(&env, "STRIPE_SECRET_KEY"),
        Some(spotter_value(6).as_str())
    );
    assert!(var(&env, "STRIPE_PRICE_ID_CORE_MONTHLY").is_some());
    assert!(var(&env, "REGION").is_some(), "nested /aws/region");
    // Pages of at most 10, one after the other: 63 parameters are 7 pages.
    let seen = seen.lock().unwrap();
    let pages: Vec<_> = seen
        .iter()
        .filter(|s| s.target == "AmazonSSM.GetParametersByPath")
        .collect();
    assert_eq!(pages.len(), 7, "{:?}", seen.len());
    for page in &pages {
        assert_eq!(page.body["MaxResults"], AWS_PAGE);
        assert_eq!(page.body["Recursive"], true);
        assert_eq!(page.body["WithDecryption"], true);
    }
    assert!(pages[0].body.get("NextToken").is_none());
    assert!(pages[1..].iter().all(|p| p.body["NextToken"].is_string()));
    assert_no_leak(&run.out, (0..63).map(spotter_value));
}

#[tokio::test(flavor = "multi_thread")]
async fn explicit_variables_win_and_collisions_between_paths_are_named() {
    let client = ssm("us-east-1").await;
    let base = unique_path();
    put_all(
        &client,
        &[
            (
                &format!("{base}/app/NODE_ENV"),
                "production-from-path",
                ParameterType::String,
            ),
            (
                &format!("{base}/app/shared-flag"),
                "app-flag-value",
                ParameterType::String,
            ),
            (
                &format!("{base}/app/db-url"),
                "app-db-value",
                ParameterType::SecureString,
            ),
            (
                &format!("{base}/shared/SHARED_FLAG"),
                "shared-flag-value",
                ParameterType::String,
            ),
        ],
    )
    .await;
    let mut cmd = agent();
    cmd.env(
        "DECKHAND_ENV_PARAMETERS",
        format!("{base}/app/,{base}/shared/,{base}/absent/?"),
    )
    .env("NODE_ENV", "staging");
    let run = run_app(cmd).await;
    let env = run.assert_started();
    assert_eq!(var(&env, "NODE_ENV"), Some("staging"), "explicit wins");
    assert_eq!(
        var(&env, "SHARED_FLAG"),
        Some("shared-flag-value"),
        "later path wins"
    );
    assert_eq!(var(&env, "DB_URL"), Some("app-db-value"));
    let (_, stderr) = text(&run.out);
    assert!(
        stderr.contains(&format!(
            "NODE_ENV is set in the environment; the value of parameter \"{base}/app/NODE_ENV\""
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "SHARED_FLAG is in parameters \"{base}/app/shared-flag\" (under \"{base}/app/\") and \"{base}/shared/SHARED_FLAG\""
        )),
        "{stderr}"
    );
    assert_no_leak(
        &run.out,
        [
            "production-from-path",
            "app-flag-value",
            "shared-flag-value",
            "app-db-value",
        ],
    );

    // Keeping the case.
    let mut cmd = agent();
    cmd.env("DECKHAND_ENV_PARAMETERS", format!("{base}/app/"))
        .env("DECKHAND_ENV_PARAMETERS_KEEP_CASE", "true");
    let run = run_app(cmd).await;
    let env = run.assert_started();
    assert_eq!(var(&env, "db_url"), Some("app-db-value"));
    assert_eq!(var(&env, "shared_flag"), Some("app-flag-value"));
}

// ---------------------------------------------------------------------------------
// Failing closed
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_parameter_version_or_path_stops_the_start() {
    let client = ssm("us-east-1").await;
    let base = unique_path();
    let present = format!("{base}/PRESENT");
    let value = "present-value-7331";
    put(&client, &present, value, ParameterType::SecureString).await;
    let missing = format!("{base}/AUTH_SECRET");
    let cases = [
        ("AUTH_SECRET", format!("ssm:{missing}"), missing.clone()),
        ("OLD", format!("ssm:{present}:9"), format!("{present}:9")),
        (
            "LABELLED",
            format!("ssm:{present}:nolabel"),
            format!("{present}:nolabel"),
        ),
    ];
    for (variable, reference, name) in cases {
        let mut cmd = agent();
        cmd.env(variable, &reference)
            .env("OK", format!("ssm:{present}"));
        run_app(cmd).await.assert_refused(
            78,
            &[&format!("{variable}: parameter \"{name}\" was not found")],
            &[value],
        );
    }

    // A path that holds nothing, and two parameters of one path with one variable name.
    put_all(
        &client,
        &[
            (
                &format!("{base}/dup/db-url"),
                "dup-value-1",
                ParameterType::String,
            ),
            (
                &format!("{base}/dup/DB_URL"),
                "dup-value-2",
                ParameterType::String,
            ),
        ],
    )
    .await;
    let mut cmd = agent();
    cmd.env(
        "DECKHAND_ENV_PARAMETERS",
        format!("{base}/nothing-here/,{base}/dup/"),
    )
    .env("OK", format!("ssm:{present}"));
    run_app(cmd).await.assert_refused(
        78,
        &[
            &format!("parameter path \"{base}/nothing-here/\" holds no parameter"),
            &format!("\"{base}/nothing-here/?\""),
            "would both become DB_URL",
        ],
        &[value, "dup-value-1", "dup-value-2"],
    );

    // A malformed reference never reaches AWS.
    let mut cmd = agent();
    cmd.env("BROKEN", "ssm:spotter-app/AUTH_SECRET");
    run_app(cmd).await.assert_refused(
        78,
        &[
            "BROKEN=\"ssm:spotter-app/AUTH_SECRET\" is not valid",
            "does not start with '/'",
        ],
        &[],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn access_denied_and_kms_refusals_name_the_parameter() {
    let client = ssm("us-east-1").await;
    let base = unique_path();
    let allowed = format!("{base}/ALLOWED");
    let denied = format!("{base}/DENIED");
    let sealed = format!("{base}/SEALED");
    put_all(
        &client,
        &[
            (&allowed, "allowed-value-1", ParameterType::SecureString),
            (&denied, "denied-value-2", ParameterType::SecureString),
            (&sealed, "sealed-value-3", ParameterType::SecureString),
        ],
    )
    .await;
    // As IAM does: a GetParameters call naming a parameter the role may not read is
    // refused whole; so is one whose SecureString's KMS key refuses to decrypt.
    let (endpoint, seen) = {
        let denied = denied.clone();
        let sealed = sealed.clone();
        proxy(move |_, s| {
            let names = s.body["Names"].to_string();
            if names.contains(&denied) {
                Some((400, "AccessDeniedException", format!("User: arn:aws:sts::123456789012:assumed-role/task is not authorized to perform: ssm:GetParameters on resource: {denied}")))
            } else if names.contains(&sealed) {
                Some((400, "AccessDeniedException", "The ciphertext refers to a customer master key that does not exist, or you are not allowed to access it (Service: AWSKMS; Status Code: 400; Error Code: AccessDeniedException); kms:Decrypt denied".to_owned()))
            } else {
                None
            }
        })
        .await
    };
    let mut cmd = agent();
    cmd.env("AWS_ENDPOINT_URL", &endpoint)
        .env("ALLOWED", format!("ssm:{allowed}"))
        .env("DENIED", format!("ssm:{denied}"))
        .env("SEALED", format!("ssm:{sealed}"));
    let run = run_app(cmd).await;
    run.assert_refused(
        78,
        &[
            &format!("DENIED: parameter \"{denied}\" may not be read (the task role needs ssm:GetParameters"),
            &format!("SEALED: parameter \"{sealed}\" could not be decrypted (the task role needs kms:Decrypt"),
        ],
        &["allowed-value-1", "denied-value-2", "sealed-value-3"],
    );
    let (_, stderr) = text(&run.out);
    assert!(!stderr.contains("ALLOWED:"), "{stderr}");
    // One batch refused whole, then each parameter asked alone to find the culprit.
    let calls: Vec<usize> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.body["Names"].as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(calls, [3, 1, 1, 1], "{calls:?}");
}

// ---------------------------------------------------------------------------------
// Both stores, retries, rotation
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn secrets_manager_and_parameter_store_in_one_start() {
    let client = ssm("us-east-1").await;
    let base = unique_path();
    put_all(
        &client,
        &[
            (
                &format!("{base}/spotter-app/AUTH_SECRET"),
                "auth-from-path-1",
                ParameterType::SecureString,
            ),
            (
                &format!("{base}/spotter-app/PORT"),
                "3000",
                ParameterType::String,
            ),
            (
                &format!("{base}/single/TOKEN"),
                "token-from-parameter-2",
                ParameterType::SecureString,
            ),
        ],
    )
    .await;
    let sm_client = sm("us-east-1").await;
    let (secret, _) = create_secret(
        &sm_client,
        "mixed",
        r#"{"STRIPE_SECRET_KEY":"sk_from_secret_3","PORT":"8080"}"#,
    )
    .await;
    let (db, _) = create_secret(&sm_client, "mixed", r#"{"password":"db-password-4"}"#).await;
    let mut cmd = agent();
    cmd.env("DECKHAND_ENV_PARAMETERS", format!("{base}/spotter-app/"))
        .env("DECKHAND_ENV_SECRETS", &secret)
        .env("TOKEN", format!("ssm:{base}/single/TOKEN"))
        .env("DB_PASSWORD", format!("secretsmanager:{db}:password"));
    let run = run_app(cmd).await;
    let env = run.assert_started();
    assert_eq!(var(&env, "AUTH_SECRET"), Some("auth-from-path-1"));
    assert_eq!(var(&env, "TOKEN"), Some("token-from-parameter-2"));
    assert_eq!(var(&env, "STRIPE_SECRET_KEY"), Some("sk_from_secret_3"));
    assert_eq!(var(&env, "DB_PASSWORD"), Some("db-password-4"));
    assert_eq!(var(&env, "PORT"), Some("8080"), "a secret wins over a path");
    let (_, stderr) = text(&run.out);
    assert!(stderr.contains("PORT is set by a secret"), "{stderr}");
    assert_no_leak(
        &run.out,
        [
            "auth-from-path-1",
            "token-from-parameter-2",
            "sk_from_secret_3",
            "db-password-4",
        ],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_is_retried_and_earlier_pages_are_kept() {
    let client = ssm("us-east-1").await;
    let base = unique_path();
    for i in 0..25 {
        put(
            &client,
            &format!("{base}/app/P{i:02}"),
            &format!("paged-{i:02}"),
            ParameterType::String,
        )
        .await;
    }
    put(
        &client,
        &format!("{base}/one/TOKEN"),
        "throttled-token-1",
        ParameterType::SecureString,
    )
    .await;
    // Throttle the first GetParameters twice, and the second and third page of the path
    // once each (as Parameter Store answers when its shared 40/s quota is used up).
    let (endpoint, seen) = {
        // (GetParameters, GetParametersByPath) requests so far.
        let counts = std::sync::Mutex::new((0usize, 0usize));
        proxy(move |_, s| {
            let throttle = Some((400, "ThrottlingException", "Rate exceeded".to_owned()));
            let mut counts = counts.lock().unwrap();
            match s.target.as_str() {
                "AmazonSSM.GetParameters" => {
                    counts.0 += 1;
                    if counts.0 <= 2 {
                        return throttle;
                    }
                }
                "AmazonSSM.GetParametersByPath" => {
                    counts.1 += 1;
                    // Requests 2 and 4: the first try of pages 2 and 3.
                    if counts.1 == 2 || counts.1 == 4 {
                        return throttle;
                    }
                }
                _ => {}
            }
            None
        })
        .await
    };
    let mut cmd = agent();
    cmd.env("AWS_ENDPOINT_URL", &endpoint)
        .env("DECKHAND_ENV_PARAMETERS", format!("{base}/app/"))
        .env("TOKEN", format!("ssm:{base}/one/TOKEN"));
    let run = run_app(cmd).await;
    let env = run.assert_started();
    assert_eq!(var(&env, "TOKEN"), Some("throttled-token-1"));
    for i in 0..25 {
        assert_eq!(
            var(&env, &format!("P{i:02}")),
            Some(format!("paged-{i:02}").as_str())
        );
    }
    let seen = seen.lock().unwrap();
    let count = |target: &str| seen.iter().filter(|s| s.target == target).count();
    assert_eq!(
        count("AmazonSSM.GetParameters"),
        3,
        "2 throttled, then the answer"
    );
    assert_eq!(
        count("AmazonSSM.GetParametersByPath"),
        5,
        "3 pages, 2 of them throttled once; page 1 is not read again"
    );
    let first_pages = seen
        .iter()
        .filter(|s| {
            s.target == "AmazonSSM.GetParametersByPath" && s.body.get("NextToken").is_none()
        })
        .count();
    assert_eq!(first_pages, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_that_never_ends_exits_69_at_the_deadline() {
    let client = ssm("us-east-1").await;
    let base = unique_path();
    put(
        &client,
        &format!("{base}/app/A"),
        "never-seen-1",
        ParameterType::SecureString,
    )
    .await;
    let (endpoint, seen) =
        proxy(|_, _| Some((400, "ThrottlingException", "Rate exceeded".to_owned()))).await;
    // Time for a retry or two even on a loaded machine; the deadline is what is tested.
    let mut cmd = agent();
    cmd.env("AWS_ENDPOINT_URL", &endpoint)
        .env("DECKHAND_SECRETS_TIMEOUT", "2s")
        .env("DECKHAND_ENV_PARAMETERS", format!("{base}/app/"))
        .env("TOKEN", format!("ssm:{base}/app/A"));
    let started = Instant::now();
    run_app(cmd).await.assert_refused(
        69,
        &[
            &format!("DECKHAND_ENV_PARAMETERS: parameter path \"{base}/app/\" could not be fetched within 2s (last error: ThrottlingException: Rate exceeded"),
            &format!("TOKEN: parameter \"{base}/app/A\" could not be fetched within 2s"),
        ],
        &["never-seen-1"],
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert!(seen.lock().unwrap().len() > 2, "retried before giving up");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_parameter_under_a_path_restarts_the_app() {
    let client = ssm("us-east-1").await;
    let base = unique_path();
    let name = format!("{base}/app/session-token");
    put(&client, &name, "first-token-1", ParameterType::SecureString).await;
    let scratch = scratch();
    let starts = scratch.join("starts");
    let mut cmd = agent();
    cmd.env("DECKHAND_ENV_PARAMETERS", format!("{base}/app/"))
        .env("DECKHAND_REFRESH_INTERVAL", "1s");
    shell_app(
        &mut cmd,
        &scratch,
        r#"echo "$SESSION_TOKEN" >> "$DIR/starts"; trap 'exit 0' TERM; while :; do sleep 0.05; done"#,
    );
    let agent = Running::start(cmd);
    let started = testkit::wait_until(Duration::from_secs(15), || lines(&starts).len() == 1);
    if started {
        put(
            &client,
            &name,
            "second-token-2",
            ParameterType::SecureString,
        )
        .await;
    }
    let restarted =
        started && testkit::wait_until(Duration::from_secs(15), || lines(&starts).len() == 2);
    agent.signal("TERM");
    let out = tokio::task::spawn_blocking(move || agent.wait())
        .await
        .unwrap();
    assert!(
        restarted,
        "no restart: {:?} {}",
        lines(&starts),
        text(&out).1
    );
    assert_eq!(lines(&starts), ["first-token-1", "second-token-2"]);
    assert_code(&out, 0);
    let (_, stderr) = text(&out);
    assert!(stderr.contains("SESSION_TOKEN"), "{stderr}");
    assert_no_leak(&out, ["second-token-2"]);
}

// ---------------------------------------------------------------------------------
// Redaction: String and StringList parameters are configuration
// ---------------------------------------------------------------------------------

/// The app prints a String parameter, a StringList and two SecureStrings: the first two
/// stay readable in its events and are named at start, the SecureStrings are
/// `[REDACTED]` (one that looks like configuration without a warning: a SecureString is
/// an explicit choice); with `DECKHAND_REDACT_PARAMETERS=all` every one is redacted.
#[tokio::test(flavor = "multi_thread")]
async fn string_parameters_stay_readable_and_secure_strings_are_redacted() {
    let client = ssm("us-east-1").await;
    let base = unique_path();
    let plain = format!("plain-{}", testkit::unique_name("v"));
    let listed = format!("{},b.example", testkit::unique_name("origin"));
    let sealed = format!("sealed-{}", testkit::unique_name("v"));
    put_all(
        &client,
        &[
            (
                &format!("{base}/app/LOG_TARGET"),
                &plain,
                ParameterType::String,
            ),
            (
                &format!("{base}/app/ORIGINS"),
                &listed,
                ParameterType::StringList,
            ),
            (
                &format!("{base}/app/API_TOKEN"),
                &sealed,
                ParameterType::SecureString,
            ),
            (
                &format!("{base}/one/MODE"),
                "staging",
                ParameterType::SecureString,
            ),
        ],
    )
    .await;
    let printing = |redact: Option<&str>| {
        let mut cmd = agent();
        cmd.env("DECKHAND_ENV_PARAMETERS", format!("{base}/app/"))
            .env("MODE", format!("ssm:{base}/one/MODE"));
        if let Some(redact) = redact {
            cmd.env("DECKHAND_REDACT_PARAMETERS", redact);
        }
        cmd.args([
            "--",
            "sh",
            "-c",
            "echo \"target $LOG_TARGET origins $ORIGINS sealed $API_TOKEN mode $MODE\"",
        ]);
        cmd
    };

    let out = run_async(printing(None)).await;
    assert_code(&out, 0);
    let (stdout, stderr) = text(&out);
    assert!(
        stdout.contains(&format!(
            "target {plain} origins {listed} sealed [REDACTED] mode [REDACTED]"
        )),
        "{stdout}"
    );
    assert!(
        stderr.contains(&format!(
            "not redacting the values of String and StringList parameters, which are configuration (DECKHAND_REDACT_PARAMETERS=all redacts them too): LOG_TARGET (\"{base}/app/LOG_TARGET\"), ORIGINS (\"{base}/app/ORIGINS\")"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("looks like configuration"), "{stderr}");
    assert_no_leak(&out, [sealed.as_str(), "staging"]);

    let out = run_async(printing(Some("all"))).await;
    assert_code(&out, 0);
    let (stdout, stderr) = text(&out);
    assert!(
        stdout.contains("target [REDACTED] origins [REDACTED] sealed [REDACTED] mode [REDACTED]"),
        "{stdout}"
    );
    assert!(!stderr.contains("not redacting"), "{stderr}");
    assert_no_leak(&out, [&plain, &listed, &sealed]);
}

#[test]
fn the_help_names_the_parameter_options_and_syntax() {
    assert_help_names(&[
        "DECKHAND_ENV_PARAMETERS",
        "DECKHAND_ENV_PARAMETERS_KEEP_CASE",
        "DECKHAND_REDACT_PARAMETERS",
        "arn:aws:ssm:REGION:ACCOUNT:parameter/NAME[:VERSION|:LABEL]",
        "ssm:/NAME[:VERSION|:LABEL]",
    ]);
}
