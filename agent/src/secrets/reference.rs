//! Secret references: which environment values name a secret, and what they select.
//!
//! Two forms, as ECS task definitions write them and as people shorten them:
//!
//! - `arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME[-SUFFIX][:JSON_KEY[:VERSION_STAGE[:VERSION_ID]]]`
//!   — the full or partial ARN (Secrets Manager accepts an ARN without its 6-character
//!   suffix); the secret is read in the ARN's region.
//! - `secretsmanager:NAME[:JSON_KEY[:VERSION_STAGE[:VERSION_ID]]]` — in the default
//!   region (`AWS_REGION`).
//!
//! Empty parts mean "not given" (`…:password::`). Secret names never contain `:`, so
//! splitting on it is exact.
//!
//! Parameter Store references (`ssm:/NAME`, `arn:aws:ssm:…:parameter/NAME`) are parsed
//! by [`super::parameter`]; [`parse`] hands them over. This module only parses;
//! fetching is [`super::source`].

use super::key::Key;
use super::parameter;

/// The short form's prefix.
pub const SHORT_PREFIX: &str = "secretsmanager:";

/// One GetSecretValue request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SmKey {
    /// The ARN's region; `None` for a name, which is read in the default region.
    pub region: Option<String>,
    /// A name or a (partial) ARN, as GetSecretValue takes it.
    pub secret_id: String,
    pub version_stage: Option<String>,
    pub version_id: Option<String>,
}

/// A parsed reference: the secret, and the JSON key to take from it (the whole value
/// without one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub key: Key,
    pub json_key: Option<String>,
}

/// Whether `value` is written as a reference. It may still be a malformed one: then
/// [`parse`] says why, and the start fails rather than handing the app the reference
/// text as if it were the secret.
pub fn is_reference(value: &str) -> bool {
    value.starts_with(SHORT_PREFIX)
        || is_secretsmanager_arn(value)
        || parameter::is_reference(value)
}

fn is_secretsmanager_arn(value: &str) -> bool {
    let mut parts = value.splitn(4, ':');
    parts.next() == Some("arn")
        && parts.next().is_some_and(|p| p.starts_with("aws"))
        && parts.next() == Some("secretsmanager")
}

const SHORT_SYNTAX: &str = "secretsmanager:NAME[:JSON_KEY[:VERSION_STAGE[:VERSION_ID]]]";
const ARN_SYNTAX: &str =
    "arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME[:JSON_KEY[:VERSION_STAGE[:VERSION_ID]]]";

/// Parses a reference; the error is the rule that was broken.
pub fn parse(value: &str) -> Result<Reference, String> {
    if parameter::is_reference(value) {
        return Ok(Reference {
            key: Key::Parameter(parameter::parse(value)?),
            json_key: None,
        });
    }
    if let Some(rest) = value.strip_prefix(SHORT_PREFIX) {
        let parts: Vec<&str> = rest.split(':').collect();
        if parts.len() > 4 {
            return Err(format!(
                "too many ':' separated parts; expected {SHORT_SYNTAX}"
            ));
        }
        if parts[0].is_empty() {
            return Err(format!("the secret name is empty; expected {SHORT_SYNTAX}"));
        }
        return Ok(build(None, parts[0].to_owned(), &parts[1..]));
    }
    if !is_secretsmanager_arn(value) {
        return Err(format!(
            "not a reference; expected {SHORT_SYNTAX} or {ARN_SYNTAX}"
        ));
    }
    // arn : partition : secretsmanager : region : account : secret : name [: key : stage : version]
    let parts: Vec<&str> = value.split(':').collect();
    if parts.len() < 7 {
        return Err(format!("the ARN is incomplete; expected {ARN_SYNTAX}"));
    }
    if parts.len() > 10 {
        return Err(format!(
            "too many ':' separated parts; expected {ARN_SYNTAX}"
        ));
    }
    if parts[3].is_empty() {
        return Err(format!("the ARN has no region; expected {ARN_SYNTAX}"));
    }
    if let Some(why) = aws::sdk::check::region_fault(parts[3]) {
        return Err(format!(
            "the ARN's region is not an AWS region: {why} (a region's name is lowercase \
             letters, digits and '-', like us-east-1); expected {ARN_SYNTAX}"
        ));
    }
    if parts[4].is_empty() {
        return Err(format!("the ARN has no account; expected {ARN_SYNTAX}"));
    }
    if parts[5] != "secret" {
        return Err(format!(
            "the ARN's resource type is {:?}, not \"secret\"; expected {ARN_SYNTAX}",
            parts[5]
        ));
    }
    if parts[6].is_empty() {
        return Err(format!("the ARN has no secret name; expected {ARN_SYNTAX}"));
    }
    Ok(build(
        Some(parts[3].to_owned()),
        parts[..7].join(":"),
        &parts[7..],
    ))
}

fn build(region: Option<String>, secret_id: String, rest: &[&str]) -> Reference {
    let part = |i: usize| {
        rest.get(i)
            .filter(|p| !p.is_empty())
            .map(|p| (*p).to_owned())
    };
    Reference {
        key: Key::SecretsManager(SmKey {
            region,
            secret_id,
            version_stage: part(1),
            version_id: part(2),
        }),
        json_key: part(0),
    }
}

/// A secret named in `DECKHAND_ENV_SECRETS` or `DECKHAND_DATABASE_SECRET`: a name, an
/// ARN, or a reference without a JSON key (`secretsmanager:NAME::AWSPREVIOUS`).
pub fn parse_secret_id(value: &str) -> Result<Key, String> {
    let value = value.trim();
    if value.is_empty() {
        return Err("a secret id is empty".into());
    }
    if is_reference(value) {
        let r = parse(value)?;
        if r.json_key.is_some() {
            return Err("a JSON key cannot be given here: the whole secret is used".into());
        }
        return Ok(r.key);
    }
    if value.contains(':') {
        return Err(format!(
            "a secret name cannot contain ':'; give a name, an ARN, or {SHORT_SYNTAX}"
        ));
    }
    Ok(Key::SecretsManager(SmKey {
        region: None,
        secret_id: value.to_owned(),
        version_stage: None,
        version_id: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sm(r: &Reference) -> &SmKey {
        match &r.key {
            Key::SecretsManager(k) => k,
            other => panic!("not a Secrets Manager key: {other:?}"),
        }
    }

    #[test]
    fn full_arn_with_suffix_key_stage_and_version() {
        let r = parse("arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf:password:AWSPREVIOUS:v-1").unwrap();
        let k = sm(&r);
        assert_eq!(k.region.as_deref(), Some("eu-west-1"));
        assert_eq!(
            k.secret_id,
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf"
        );
        assert_eq!(r.json_key.as_deref(), Some("password"));
        assert_eq!(k.version_stage.as_deref(), Some("AWSPREVIOUS"));
        assert_eq!(k.version_id.as_deref(), Some("v-1"));
    }

    #[test]
    fn partial_arn_with_empty_parts_as_ecs_writes_them() {
        let r = parse("arn:aws:secretsmanager:us-east-1:123456789012:secret:streamline/app-env:CLERK_SECRET_KEY::").unwrap();
        let k = sm(&r);
        assert_eq!(
            k.secret_id,
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:streamline/app-env"
        );
        assert_eq!(r.json_key.as_deref(), Some("CLERK_SECRET_KEY"));
        assert_eq!(k.version_stage, None);
        assert_eq!(k.version_id, None);
        let whole = parse("arn:aws-us-gov:secretsmanager:us-gov-west-1:1:secret:x").unwrap();
        assert_eq!(whole.json_key, None);
        assert_eq!(sm(&whole).region.as_deref(), Some("us-gov-west-1"));
    }

    #[test]
    fn short_form_in_every_length() {
        let r = parse("secretsmanager:app/env").unwrap();
        assert_eq!(sm(&r).secret_id, "app/env");
        assert_eq!(sm(&r).region, None);
        assert_eq!(r.json_key, None);
        let r = parse("secretsmanager:app/env:KEY").unwrap();
        assert_eq!(r.json_key.as_deref(), Some("KEY"));
        let r = parse("secretsmanager:app/env::AWSPENDING").unwrap();
        assert_eq!(r.json_key, None);
        assert_eq!(sm(&r).version_stage.as_deref(), Some("AWSPENDING"));
        let r = parse("secretsmanager:app/env:::abc").unwrap();
        assert_eq!(sm(&r).version_id.as_deref(), Some("abc"));
        assert_eq!(sm(&r).version_stage, None);
    }

    #[test]
    fn malformed_references_say_what_is_wrong() {
        assert!(parse("secretsmanager:")
            .unwrap_err()
            .contains("name is empty"));
        assert!(parse("secretsmanager:a:b:c:d:e")
            .unwrap_err()
            .contains("too many"));
        assert!(parse("arn:aws:secretsmanager:us-east-1:1:secret")
            .unwrap_err()
            .contains("incomplete"));
        assert!(parse("arn:aws:secretsmanager::1:secret:x")
            .unwrap_err()
            .contains("no region"));
        let capitals = parse("arn:aws:secretsmanager:US-EAST-1:1:secret:x").unwrap_err();
        assert!(
            capitals.contains("the ARN's region is not an AWS region: it has capital letters"),
            "{capitals}"
        );
        assert!(parse("arn:aws:secretsmanager:us-east-1:1:parameter:x")
            .unwrap_err()
            .contains("resource type"));
        assert!(parse("arn:aws:secretsmanager:r:1:secret:x:k:s:v:extra")
            .unwrap_err()
            .contains("too many"));
    }

    #[test]
    fn only_reference_shaped_values_are_references() {
        assert!(is_reference("secretsmanager:x"));
        assert!(is_reference("arn:aws:secretsmanager:r:1:secret:x"));
        assert!(is_reference("arn:aws-cn:secretsmanager:x"));
        assert!(is_reference("arn:aws:ssm:r:1:parameter/x"));
        assert!(is_reference("ssm:/x"));
        assert!(!is_reference("postgres://u:p@h/db"));
        assert!(!is_reference("SECRETSMANAGER:x"));
        assert!(!is_reference(""));
    }

    #[test]
    fn parameter_references_are_handed_to_the_parameter_parser() {
        let r = parse("ssm:/spotter-app/AUTH_SECRET:3").unwrap();
        assert_eq!(r.json_key, None);
        assert_eq!(r.key.noun(), "parameter");
        assert_eq!(r.key.to_string(), "/spotter-app/AUTH_SECRET:3");
        assert!(parse("arn:aws:ssm:r:1:parameter/a:b:c")
            .unwrap_err()
            .contains("too many"));
    }

    #[test]
    fn secret_ids_for_whole_secret_settings() {
        assert_eq!(
            parse_secret_id(" streamline/app-env ").unwrap().to_string(),
            "streamline/app-env"
        );
        assert_eq!(
            parse_secret_id("secretsmanager:x::AWSPREVIOUS")
                .unwrap()
                .to_string(),
            "x (stage AWSPREVIOUS)"
        );
        assert!(parse_secret_id("secretsmanager:x:KEY")
            .unwrap_err()
            .contains("JSON key"));
        assert!(parse_secret_id("a:b").unwrap_err().contains("':'"));
        assert!(parse_secret_id("").is_err());
    }

    /// Properties over generated and arbitrary input: the parser never panics, gives
    /// back every part of a well-formed reference, and names the broken rule otherwise.
    mod properties {
        use super::*;
        use proptest::option;
        use proptest::prelude::*;

        const PARTITIONS: [&str; 3] = ["aws", "aws-cn", "aws-us-gov"];

        /// Beginnings that reach the parser's branches, for arbitrary tails.
        const PREFIXES: [&str; 7] = [
            "",
            "secretsmanager:",
            "arn:aws:secretsmanager:",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:",
            "arn:aws-cn:secretsmanager:cn-north-1::secret:",
            "ssm:",
            "arn:aws:ssm:eu-west-1:1:parameter/",
        ];

        /// The phrases the errors state their rule with.
        const RULES: [&str; 3] = ["expected", "cannot", "is empty"];

        fn names_a_rule(error: &str) -> bool {
            RULES.iter().any(|r| error.contains(r))
        }

        /// A secret name: what Secrets Manager allows (letters, digits, `/ _ + = . @ -`).
        fn name() -> impl Strategy<Value = String> {
            "[A-Za-z0-9/_+=.@-]{1,64}"
        }

        /// A JSON key, version stage or version id: anything but `:` (and, so that
        /// `parse_secret_id`'s trim leaves it alone, whitespace).
        fn part() -> impl Strategy<Value = Option<String>> {
            option::of("[^:\\s]{1,24}")
        }

        /// A generated reference and the parts it was built from.
        #[derive(Debug, Clone)]
        struct Generated {
            text: String,
            expected: Reference,
        }

        /// `:KEY:STAGE:ID` up to the last given part, or all three (empty ones empty)
        /// as ECS writes them when `pad`.
        fn tail(parts: [&Option<String>; 3], pad: bool) -> String {
            let len = if pad {
                3
            } else {
                parts.iter().rposition(|p| p.is_some()).map_or(0, |i| i + 1)
            };
            parts[..len]
                .iter()
                .map(|p| format!(":{}", p.as_deref().unwrap_or_default()))
                .collect()
        }

        fn generated(
            region: Option<String>,
            secret_id: String,
            (key, stage, id, pad): (Option<String>, Option<String>, Option<String>, bool),
        ) -> Generated {
            let text = format!(
                "{}{}",
                if region.is_some() {
                    secret_id.clone()
                } else {
                    format!("{SHORT_PREFIX}{secret_id}")
                },
                tail([&key, &stage, &id], pad)
            );
            Generated {
                text,
                expected: Reference {
                    key: Key::SecretsManager(SmKey {
                        region,
                        secret_id,
                        version_stage: stage,
                        version_id: id,
                    }),
                    json_key: key,
                },
            }
        }

        fn parts() -> impl Strategy<Value = (Option<String>, Option<String>, Option<String>, bool)>
        {
            (part(), part(), part(), any::<bool>())
        }

        /// `arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME[-SUFFIX][:…]`.
        fn arn_reference() -> impl Strategy<Value = Generated> {
            (
                prop::sample::select(&PARTITIONS[..]),
                "[a-z]{2}(-gov)?-[a-z]{4,9}-[1-9]",
                "[0-9]{12}",
                name(),
                option::of("-[A-Za-z0-9]{6}"),
                parts(),
            )
                .prop_map(|(partition, region, account, name, suffix, parts)| {
                    let secret_id = format!(
                        "arn:{partition}:secretsmanager:{region}:{account}:secret:{name}{}",
                        suffix.unwrap_or_default()
                    );
                    generated(Some(region), secret_id, parts)
                })
        }

        /// `secretsmanager:NAME[:…]`.
        fn short_reference() -> impl Strategy<Value = Generated> {
            (name(), parts()).prop_map(|(name, parts)| generated(None, name, parts))
        }

        fn any_reference() -> impl Strategy<Value = Generated> {
            prop_oneof![arn_reference(), short_reference()]
        }

        /// Arbitrary text, and arbitrary tails after reference-like beginnings.
        fn any_text() -> impl Strategy<Value = String> {
            prop_oneof![
                any::<String>(),
                (
                    prop::sample::select(&PREFIXES[..]),
                    "[:a-zA-Z0-9/_+=.@ -]{0,60}|\\PC{0,20}"
                )
                    .prop_map(|(p, t)| format!("{p}{t}")),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn parsers_never_panic_and_errors_name_the_rule(s in any_text()) {
                let parsed = parse(&s);
                if parameter::is_reference(&s) {
                    // Handed over whole: the parameter parser's own tests cover it.
                    prop_assert_eq!(
                        parsed.map(|r| r.key),
                        parameter::parse(&s).map(Key::Parameter)
                    );
                } else {
                    match &parsed {
                        Ok(_) => prop_assert!(is_reference(&s)),
                        Err(e) => prop_assert!(names_a_rule(e), "{:?} -> {}", s, e),
                    }
                }
                if let Err(e) = parse_secret_id(&s) {
                    prop_assert!(
                        names_a_rule(&e) || parameter::is_reference(s.trim()),
                        "{:?} -> {}", s, e
                    );
                }
            }

            #[test]
            fn generated_references_give_back_their_parts(g in any_reference()) {
                prop_assert!(is_reference(&g.text));
                prop_assert_eq!(parse(&g.text), Ok(g.expected));
            }

            #[test]
            fn secret_ids_take_references_without_a_json_key(
                g in any_reference(),
                pad in "[ \t]{0,2}",
            ) {
                let padded = format!("{pad}{}{pad}", g.text);
                match g.expected.json_key {
                    None => prop_assert_eq!(parse_secret_id(&padded), Ok(g.expected.key)),
                    Some(_) => {
                        prop_assert!(parse_secret_id(&padded).unwrap_err().contains("JSON key"))
                    }
                }
            }

            #[test]
            fn secret_ids_take_bare_names(name in name()) {
                prop_assume!(!is_reference(&name));
                let expected = Key::SecretsManager(SmKey {
                    region: None,
                    secret_id: name.clone(),
                    version_stage: None,
                    version_id: None,
                });
                prop_assert_eq!(parse_secret_id(&name), Ok(expected));
                let with_colon = format!("{name}:{name}");
                prop_assume!(!is_reference(&with_colon));
                let error = parse_secret_id(&with_colon).unwrap_err();
                prop_assert!(error.contains("cannot contain ':'"));
            }

            #[test]
            fn one_broken_rule_is_named(g in arn_reference(), broken in 0..7usize, name in name()) {
                let Key::SecretsManager(k) = &g.expected.key else { unreachable!() };
                let arn: Vec<&str> = k.secret_id.split(':').collect();
                let with = |i: usize, v: &str| {
                    let mut a = arn.clone();
                    a[i] = v;
                    a.join(":")
                };
                let (text, rule) = match broken {
                    0 => (with(3, ""), "no region"),
                    1 => (with(4, ""), "no account"),
                    2 => (with(5, "parameter"), "resource type"),
                    3 => (with(6, ""), "no secret name"),
                    4 => (format!("{}:k:s:v:extra", k.secret_id), "too many"),
                    5 => (arn[..6].join(":"), "incomplete"),
                    _ => (format!("{SHORT_PREFIX}{name}:k:s:v:extra"), "too many"),
                };
                let error = parse(&text).unwrap_err();
                prop_assert!(error.contains(rule) && names_a_rule(&error), "{} -> {}", text, error);
            }
        }
    }
}
