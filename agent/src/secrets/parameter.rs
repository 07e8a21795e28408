//! Parameter Store references, paths and names: what a `ssm:` or
//! `arn:aws:ssm:…:parameter/…` value says, the rules AWS sets for names, and how a
//! parameter found under a `DECKHAND_ENV_PARAMETERS` path is named in the environment.
//!
//! - `arn:aws:ssm:REGION:ACCOUNT:parameter/NAME[:SELECTOR]` — as ECS task definitions
//!   write it; read in the ARN's region (the ARN itself is sent, so a parameter shared
//!   from another account works too).
//! - `ssm:NAME[:SELECTOR]` (usually `ssm:/app/NAME`) — in the default region
//!   (`AWS_REGION`).
//!
//! `SELECTOR` is a version number (`:3`) or a label (`:stable`), as in the AWS CLI.
//! Parameter names never contain `:`, so splitting on it is exact. This module only
//! parses; fetching is [`super::ssm`].
//!
//! The service checks names too, but an emulator may not, and a name that can never
//! exist is better refused before the app's start depends on a request.

use std::fmt;

/// The short form's prefix.
pub const SHORT_PREFIX: &str = "ssm:";

/// AWS: "the maximum length for a parameter name, including the full length of the
/// parameter ARN, is 1011 characters".
pub const MAX_NAME_LEN: usize = 1011;
/// AWS: "Parameter hierarchies are limited to a maximum depth of fifteen levels."
pub const MAX_DEPTH: usize = 15;
/// AWS (LabelParameterVersion): a label has at most 100 characters.
pub const MAX_LABEL_LEN: usize = 100;

const SHORT_SYNTAX: &str = "ssm:/NAME[:VERSION|:LABEL]";
const ARN_SYNTAX: &str = "arn:aws:ssm:REGION:ACCOUNT:parameter/NAME[:VERSION|:LABEL]";
const PATH_SYNTAX: &str = "/PATH/ (or ssm:/PATH/, or arn:aws:ssm:REGION:ACCOUNT:parameter/PATH), with a trailing ? when it may be empty";

/// One parameter to read with GetParameters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParameterKey {
    /// The ARN's region; `None`: the default region.
    pub region: Option<String>,
    /// The name, or the ARN as written (GetParameters takes either).
    pub name: String,
    /// `3` or `stable`, without the `:`.
    pub selector: Option<String>,
}

impl ParameterKey {
    /// What GetParameters is asked for: `NAME:SELECTOR`.
    pub fn request_name(&self) -> String {
        match &self.selector {
            Some(s) => format!("{}:{s}", self.name),
            None => self.name.clone(),
        }
    }

    /// The parameter's name without the ARN part, and without a leading `/`: two keys
    /// with the same one may be the same parameter (`ssm:/a` and `…:parameter/a`).
    pub fn bare_name(&self) -> &str {
        let name = match self.name.split_once(":parameter/") {
            Some((_, after)) if self.name.starts_with("arn:") => after,
            _ => &self.name,
        };
        name.trim_start_matches('/')
    }

    /// Whether the selector is a version number, and which.
    pub fn version(&self) -> Option<i64> {
        self.selector.as_deref().and_then(|s| s.parse().ok())
    }
}

impl fmt::Display for ParameterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.request_name())
    }
}

/// Every parameter under a path (recursively), read with GetParametersByPath.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PathKey {
    /// The ARN's region; `None`: the default region.
    pub region: Option<String>,
    /// Starts with `/`; no trailing `/` except for the root.
    pub path: String,
}

impl fmt::Display for PathKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.ends_with('/') {
            f.write_str(&self.path)
        } else {
            write!(f, "{}/", self.path)
        }
    }
}

/// One entry of `DECKHAND_ENV_PARAMETERS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathSetting {
    pub key: PathKey,
    /// Written with a trailing `?`: holding no parameter is not an error.
    pub optional: bool,
}

/// Whether `value` is written as a parameter reference (possibly a malformed one).
pub fn is_reference(value: &str) -> bool {
    value.starts_with(SHORT_PREFIX) || is_ssm_arn(value)
}

fn is_ssm_arn(value: &str) -> bool {
    let mut parts = value.splitn(4, ':');
    parts.next() == Some("arn")
        && parts.next().is_some_and(|p| p.starts_with("aws"))
        && parts.next() == Some("ssm")
}

/// Parses a reference; the error is the rule that was broken.
pub fn parse(value: &str) -> Result<ParameterKey, String> {
    if let Some(rest) = value.strip_prefix(SHORT_PREFIX) {
        let (name, selector) = split_selector(rest, SHORT_SYNTAX)?;
        check_name(name)?;
        return Ok(ParameterKey {
            region: None,
            name: name.to_owned(),
            selector,
        });
    }
    let (region, resource, selector) = split_arn(value, ARN_SYNTAX)?;
    let Some(name) = resource
        .strip_prefix("parameter/")
        .filter(|n| !n.is_empty())
    else {
        return Err(format!(
            "the ARN's resource is {resource:?}, not parameter/NAME; expected {ARN_SYNTAX}"
        ));
    };
    // In an ARN a hierarchical name's leading `/` is the one after `parameter`.
    check_name(&format!("/{name}"))?;
    let arn = &value[..value.len() - selector.as_ref().map_or(0, |s| s.len() + 1)];
    if arn.len() > MAX_NAME_LEN {
        return Err(format!(
            "the ARN is {} characters long; a parameter's ARN has at most {MAX_NAME_LEN}",
            arn.len()
        ));
    }
    Ok(ParameterKey {
        region: Some(region.to_owned()),
        name: arn.to_owned(),
        selector,
    })
}

/// Parses one `DECKHAND_ENV_PARAMETERS` entry: `/PATH/`, `ssm:/PATH/` or an ARN, with a
/// trailing `?` when the path may hold nothing.
pub fn parse_path(value: &str) -> Result<PathSetting, String> {
    let value = value.trim();
    let (value, optional) = match value.strip_suffix('?') {
        Some(v) => (v, true),
        None => (value, false),
    };
    let (region, path) = if is_ssm_arn(value) {
        let (region, resource, selector) = split_arn(value, PATH_SYNTAX)?;
        if selector.is_some() {
            return Err(format!(
                "a path has no version or label; expected {PATH_SYNTAX}"
            ));
        }
        let Some(path) = resource.strip_prefix("parameter") else {
            return Err(format!(
                "the ARN's resource is {resource:?}, not parameter/PATH; expected {PATH_SYNTAX}"
            ));
        };
        // In an ARN the path's leading `/` is the one after `parameter`.
        (Some(region.to_owned()), path.to_owned())
    } else {
        let path = value.strip_prefix(SHORT_PREFIX).unwrap_or(value);
        (None, path.to_owned())
    };
    if !path.starts_with('/') {
        return Err(format!(
            "{path:?} does not start with '/'; expected {PATH_SYNTAX}"
        ));
    }
    let trimmed = path.trim_end_matches('/');
    let path = if trimmed.is_empty() { "/" } else { trimmed };
    if path != "/" {
        check_name(path)?;
    }
    Ok(PathSetting {
        key: PathKey {
            region,
            path: path.to_owned(),
        },
        optional,
    })
}

/// `arn:PARTITION:ssm:REGION:ACCOUNT:RESOURCE[:SELECTOR]` → (region, resource, selector).
fn split_arn<'a>(
    value: &'a str,
    syntax: &str,
) -> Result<(&'a str, &'a str, Option<String>), String> {
    if !is_ssm_arn(value) {
        return Err(format!(
            "not a Parameter Store reference; expected {syntax}"
        ));
    }
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    if parts.len() < 6 {
        return Err(format!("the ARN is incomplete; expected {syntax}"));
    }
    if parts[3].is_empty() {
        return Err(format!("the ARN has no region; expected {syntax}"));
    }
    if let Some(why) = aws::sdk::check::region_fault(parts[3]) {
        return Err(format!(
            "the ARN's region is not an AWS region: {why} (a region's name is lowercase \
             letters, digits and '-', like us-east-1); expected {syntax}"
        ));
    }
    if parts[4].is_empty() {
        return Err(format!("the ARN has no account; expected {syntax}"));
    }
    let (resource, selector) = split_selector(parts[5], syntax)?;
    Ok((parts[3], resource, selector))
}

/// `NAME[:SELECTOR]` → (name, selector), checking the selector.
fn split_selector<'a>(text: &'a str, syntax: &str) -> Result<(&'a str, Option<String>), String> {
    let mut parts = text.split(':');
    let name = parts.next().unwrap_or_default();
    let selector = parts.next();
    if parts.next().is_some() {
        return Err(format!(
            "too many ':' separated parts (a parameter name cannot contain ':'); expected {syntax}"
        ));
    }
    if name.is_empty() {
        return Err(format!("the parameter name is empty; expected {syntax}"));
    }
    match selector {
        None => Ok((name, None)),
        Some(s) => {
            check_selector(s)?;
            Ok((name, Some(s.to_owned())))
        }
    }
}

/// AWS's rules for a parameter name (or a path, which is a name's prefix).
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the parameter name is empty".into());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "the parameter name is {} characters long; AWS allows at most {MAX_NAME_LEN}",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/')))
    {
        return Err(format!(
            "the parameter name contains {c:?}; names use only letters, digits and _ . - /"
        ));
    }
    if name.contains('/') && !name.starts_with('/') {
        return Err(format!(
            "{name:?} has a hierarchy but does not start with '/'; write it fully qualified, like /{name}"
        ));
    }
    if name.contains("//") {
        return Err(format!("{name:?} has an empty level ('//')"));
    }
    let depth = name.trim_start_matches('/').split('/').count();
    if depth > MAX_DEPTH {
        return Err(format!(
            "{name:?} is {depth} levels deep; AWS allows at most {MAX_DEPTH}"
        ));
    }
    Ok(())
}

/// A version number (1 or more) or a label (letters, digits, `_ . -`, at most 100
/// characters, not starting with a digit).
fn check_selector(s: &str) -> Result<(), String> {
    const RULE: &str = "write a version number (:3) or a label (:stable): letters, digits, _ . -, not starting with a digit";
    if s.is_empty() {
        return Err(format!("the version or label after ':' is empty; {RULE}"));
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return match s.parse::<u64>() {
            Ok(n) if n > 0 => Ok(()),
            _ => Err(format!("version {s:?} is not valid; versions start at 1")),
        };
    }
    if s.len() > MAX_LABEL_LEN {
        return Err(format!(
            "the label is {} characters long; AWS allows at most {MAX_LABEL_LEN}",
            s.len()
        ));
    }
    let valid_chars = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !valid_chars || s.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(format!("{s:?} is not a version or a label; {RULE}"));
    }
    Ok(())
}

/// The variable a parameter found under a path becomes: its last path segment,
/// upper-cased unless `keep_case`, with `-` and `.` turned into `_`
/// (`/spotter-app/stripe-price-id.pro` → `STRIPE_PRICE_ID_PRO`).
pub fn variable_name(parameter_name: &str, keep_case: bool) -> String {
    let last = parameter_name.rsplit('/').next().unwrap_or(parameter_name);
    last.chars()
        .map(|c| match c {
            '-' | '.' | '/' => '_',
            c if keep_case => c,
            c => c.to_ascii_uppercase(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_form_with_and_without_a_selector() {
        let k = parse("ssm:/spotter-app/AUTH_SECRET").unwrap();
        assert_eq!(k.region, None);
        assert_eq!(k.name, "/spotter-app/AUTH_SECRET");
        assert_eq!(k.selector, None);
        let k = parse("ssm:/spotter-app/AUTH_SECRET:3").unwrap();
        assert_eq!(k.selector.as_deref(), Some("3"));
        assert_eq!(k.version(), Some(3));
        assert_eq!(k.request_name(), "/spotter-app/AUTH_SECRET:3");
        let k = parse("ssm:plain-name:stable").unwrap();
        assert_eq!(k.name, "plain-name");
        assert_eq!(k.version(), None);
        assert_eq!(k.to_string(), "plain-name:stable");
    }

    #[test]
    fn arn_form_keeps_the_arn_and_takes_its_region() {
        let arn = "arn:aws:ssm:eu-west-1:123456789012:parameter/spotter-app/DATABASE_URL";
        let k = parse(arn).unwrap();
        assert_eq!(k.region.as_deref(), Some("eu-west-1"));
        assert_eq!(k.name, arn);
        assert_eq!(k.bare_name(), "spotter-app/DATABASE_URL");
        let k = parse(&format!("{arn}:7")).unwrap();
        assert_eq!(k.name, arn);
        assert_eq!(k.request_name(), format!("{arn}:7"));
        let gov = parse("arn:aws-us-gov:ssm:us-gov-west-1:1:parameter/x").unwrap();
        assert_eq!(gov.region.as_deref(), Some("us-gov-west-1"));
        assert_eq!(gov.bare_name(), "x");
        assert_eq!(parse("ssm:/x").unwrap().bare_name(), "x");
    }

    #[test]
    fn malformed_references_say_what_is_wrong() {
        let err = |v: &str| parse(v).unwrap_err();
        assert!(err("ssm:").contains("name is empty"));
        assert!(err("ssm:/a:1:2").contains("too many"));
        assert!(err("ssm:/a:").contains("is empty"));
        assert!(err("ssm:/a:0").contains("versions start at 1"));
        assert!(err("ssm:/a:1abc").contains("not a version or a label"));
        assert!(err("ssm:/a b").contains("' '"));
        assert!(err("ssm:app/x").contains("does not start with '/'"));
        assert!(err("ssm:/a//b").contains("empty level"));
        assert!(err("arn:aws:ssm:us-east-1:1").contains("incomplete"));
        assert!(err("arn:aws:ssm::1:parameter/x").contains("no region"));
        assert!(err("arn:aws:ssm:eu-west-1 :1:parameter/x")
            .contains("the ARN's region is not an AWS region: it has spaces"));
        assert!(err("arn:aws:ssm:r::parameter/x").contains("no account"));
        assert!(err("arn:aws:ssm:r:1:document/x").contains("not parameter/NAME"));
        assert!(err("arn:aws:ssm:r:1:parameter/").contains("not parameter/NAME"));
    }

    #[test]
    fn aws_name_limits_are_enforced() {
        let deepest = "/l".repeat(MAX_DEPTH);
        assert!(check_name(&deepest).is_ok());
        assert!(check_name(&format!("{deepest}/l"))
            .unwrap_err()
            .contains("16 levels deep"));
        let longest = format!("/{}", "n".repeat(MAX_NAME_LEN - 1));
        assert!(check_name(&longest).is_ok());
        assert!(check_name(&format!("{longest}n"))
            .unwrap_err()
            .contains("at most 1011"));
        let arn_prefix = "arn:aws:ssm:us-east-1:123456789012:parameter";
        let arn = format!(
            "{arn_prefix}/{}",
            "n".repeat(MAX_NAME_LEN - arn_prefix.len())
        );
        assert!(parse(&arn).unwrap_err().contains("at most 1011"));
        assert!(check_selector(&"l".repeat(MAX_LABEL_LEN)).is_ok());
        assert!(check_selector(&"l".repeat(MAX_LABEL_LEN + 1))
            .unwrap_err()
            .contains("at most 100"));
        assert!(check_name("/a/b_c.d-e/F9").is_ok());
        assert!(check_name("/a/b:c").is_err());
        assert!(check_name("/a/ü").is_err());
    }

    #[test]
    fn only_reference_shaped_values_are_references() {
        assert!(is_reference("ssm:/x"));
        assert!(is_reference("arn:aws:ssm:r:1:parameter/x"));
        assert!(is_reference("arn:aws-cn:ssm:x"));
        assert!(!is_reference("arn:aws:secretsmanager:r:1:secret:x"));
        assert!(!is_reference("SSM:/x"));
        assert!(!is_reference("ssmtp://mail"));
        assert!(!is_reference("/spotter-app/X"));
    }

    #[test]
    fn paths_in_every_form() {
        let p = parse_path("/spotter-app/").unwrap();
        assert_eq!(p.key.path, "/spotter-app");
        assert_eq!(p.key.to_string(), "/spotter-app/");
        assert!(!p.optional);
        let p = parse_path(" ssm:/shared? ").unwrap();
        assert_eq!(p.key.path, "/shared");
        assert!(p.optional);
        let p = parse_path("arn:aws:ssm:us-west-2:1:parameter/shared/db/").unwrap();
        assert_eq!(p.key.region.as_deref(), Some("us-west-2"));
        assert_eq!(p.key.path, "/shared/db");
        assert_eq!(parse_path("/").unwrap().key.path, "/");
        assert!(parse_path("spotter-app/")
            .unwrap_err()
            .contains("does not start with '/'"));
        assert!(parse_path("/a b/").is_err());
        assert!(parse_path("arn:aws:ssm:r:1:parameter/a:3")
            .unwrap_err()
            .contains("no version"));
    }

    #[test]
    fn variable_names_from_parameter_names() {
        assert_eq!(
            variable_name("/spotter-app/STRIPE_SECRET_KEY", false),
            "STRIPE_SECRET_KEY"
        );
        assert_eq!(
            variable_name("/spotter-app/stripe-price-id.pro", false),
            "STRIPE_PRICE_ID_PRO"
        );
        assert_eq!(
            variable_name("/spotter-app/stripe-price-id.pro", true),
            "stripe_price_id_pro"
        );
        assert_eq!(variable_name("/shared/db/nested/Url", false), "URL");
        assert_eq!(variable_name("top", false), "TOP");
    }

    /// Properties over generated and arbitrary input: the parsers never panic, give
    /// back every part of a well-formed reference or path, and name the broken rule
    /// otherwise.
    mod properties {
        use super::*;
        use proptest::option;
        use proptest::prelude::*;

        const PARTITIONS: [&str; 3] = ["aws", "aws-cn", "aws-us-gov"];

        /// Beginnings that reach the parsers' branches, for arbitrary tails.
        const PREFIXES: [&str; 6] = [
            "",
            "/",
            "ssm:",
            "ssm:/",
            "arn:aws:ssm:",
            "arn:aws:ssm:us-east-1:123456789012:parameter/",
        ];

        /// The phrases the errors state their rule with.
        const RULES: [&str; 9] = [
            "expected",
            "write a version number",
            "levels deep",
            "names use only",
            "at most",
            "is empty",
            "write it fully qualified",
            "empty level",
            "versions start at 1",
        ];

        fn names_a_rule(error: &str) -> bool {
            RULES.iter().any(|r| error.contains(r))
        }

        /// One level of a name: the characters AWS allows.
        fn segment() -> impl Strategy<Value = String> {
            "[A-Za-z0-9_.-]{1,12}"
        }

        /// The levels of a hierarchical name, at most as deep as AWS allows.
        fn levels() -> impl Strategy<Value = Vec<String>> {
            prop::collection::vec(segment(), 1..=MAX_DEPTH)
        }

        /// A version number or a label.
        fn selector() -> impl Strategy<Value = Option<String>> {
            option::of(prop_oneof![
                (1..=u32::MAX).prop_map(|n| n.to_string()),
                "[A-Za-z_.-][A-Za-z0-9_.-]{0,99}",
            ])
        }

        fn region() -> impl Strategy<Value = String> {
            "[a-z]{2}(-gov)?-[a-z]{4,9}-[1-9]"
        }

        fn with_selector(text: &str, selector: &Option<String>) -> String {
            match selector {
                Some(s) => format!("{text}:{s}"),
                None => text.to_owned(),
            }
        }

        /// A generated reference and the key it must parse into.
        fn any_reference() -> impl Strategy<Value = (String, ParameterKey)> {
            let short = (
                prop_oneof![
                    levels().prop_map(|l| format!("/{}", l.join("/"))),
                    segment()
                ],
                selector(),
            )
                .prop_map(|(name, selector)| {
                    let text = with_selector(&format!("{SHORT_PREFIX}{name}"), &selector);
                    (
                        text,
                        ParameterKey {
                            region: None,
                            name,
                            selector,
                        },
                    )
                });
            let arn = (
                prop::sample::select(&PARTITIONS[..]),
                region(),
                "[0-9]{12}",
                levels(),
                selector(),
            )
                .prop_map(|(partition, region, account, levels, selector)| {
                    let arn = format!(
                        "arn:{partition}:ssm:{region}:{account}:parameter/{}",
                        levels.join("/")
                    );
                    let text = with_selector(&arn, &selector);
                    (
                        text,
                        ParameterKey {
                            region: Some(region),
                            name: arn,
                            selector,
                        },
                    )
                });
            prop_oneof![short, arn]
        }

        /// Arbitrary text, and arbitrary tails after reference-like beginnings.
        fn any_text() -> impl Strategy<Value = String> {
            prop_oneof![
                any::<String>(),
                (
                    prop::sample::select(&PREFIXES[..]),
                    "[:a-zA-Z0-9/_.?#ü -]{0,60}|\\PC{0,20}"
                )
                    .prop_map(|(p, t)| format!("{p}{t}")),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn parsers_never_panic_and_errors_name_the_rule(
                s in any_text(),
                keep_case in any::<bool>(),
            ) {
                match parse(&s) {
                    Ok(k) => {
                        prop_assert!(is_reference(&s));
                        let request = k.request_name();
                        prop_assert!(s.starts_with(&request) || s.ends_with(&request));
                    }
                    Err(e) => prop_assert!(names_a_rule(&e), "{:?} -> {}", s, e),
                }
                match parse_path(&s) {
                    Ok(p) => {
                        prop_assert!(p.key.path.starts_with('/'));
                        prop_assert!(p.key.path == "/" || !p.key.path.ends_with('/'));
                        prop_assert!(p.key.path == "/" || check_name(&p.key.path).is_ok());
                    }
                    Err(e) => prop_assert!(names_a_rule(&e), "{:?} -> {}", s, e),
                }
                match check_name(&s) {
                    Ok(()) => {
                        prop_assert!(s.len() <= MAX_NAME_LEN && !s.contains("//"));
                        let allowed = |c: char| c.is_ascii_alphanumeric() || "_.-/".contains(c);
                        prop_assert!(s.chars().all(allowed));
                    }
                    Err(e) => prop_assert!(names_a_rule(&e), "{:?} -> {}", s, e),
                }
                let variable = variable_name(&s, keep_case);
                let last = s.rsplit('/').next().unwrap_or_default();
                prop_assert_eq!(variable.chars().count(), last.chars().count());
                prop_assert!(!variable.contains(['-', '.', '/']));
                prop_assert!(keep_case || !variable.chars().any(|c| c.is_ascii_lowercase()));
            }

            #[test]
            fn generated_references_give_back_their_parts((text, expected) in any_reference()) {
                prop_assert!(is_reference(&text));
                let parsed = parse(&text);
                prop_assert_eq!(parsed.as_ref(), Ok(&expected));
                let k = parsed.unwrap();
                prop_assert_eq!(k.request_name(), text.strip_prefix(SHORT_PREFIX).unwrap_or(&text));
                if let Some(n) = k.selector.as_deref().and_then(|s| s.parse::<i64>().ok()) {
                    prop_assert_eq!(k.version(), Some(n));
                }
            }

            #[test]
            fn generated_paths_give_back_their_parts(
                levels in option::of(levels()),
                form in 0..3usize,
                region in region(),
                trailing in "/{0,2}",
                optional in any::<bool>(),
                pad in "[ \t]{0,2}",
            ) {
                let path = levels.map_or_else(|| "/".to_owned(), |l| format!("/{}", l.join("/")));
                let written = match form {
                    0 => format!("{path}{trailing}"),
                    1 => format!("{SHORT_PREFIX}{path}{trailing}"),
                    _ => format!("arn:aws:ssm:{region}:123456789012:parameter{path}{trailing}"),
                };
                let text = format!("{pad}{written}{}{pad}", if optional { "?" } else { "" });
                let expected = PathSetting {
                    key: PathKey { region: (form == 2).then_some(region), path },
                    optional,
                };
                prop_assert_eq!(parse_path(&text), Ok(expected));
            }

            #[test]
            fn one_broken_rule_is_named(
                levels in levels(),
                broken in 0..9usize,
                bad in "[ #*$%ü!,]",
            ) {
                let name = format!("/{}", levels.join("/"));
                let (text, rule) = match broken {
                    0 => (format!("ssm:{name}{bad}"), "names use only"),
                    1 => (format!("ssm:{name}//x"), "empty level"),
                    2 => (format!("ssm:{}", &name[1..]), "write it fully qualified"),
                    3 => (format!("ssm:{}", "/l".repeat(MAX_DEPTH + 1)), "levels deep"),
                    4 => (format!("ssm:{name}:0"), "versions start at 1"),
                    5 => (format!("ssm:{name}:1a{}", levels[0]), "not a version or a label"),
                    6 => (format!("ssm:{name}:{}", "l".repeat(MAX_LABEL_LEN + 1)), "at most 100"),
                    7 => (format!("ssm:{name}:"), "is empty"),
                    _ => (format!("arn:aws:ssm:r:1:parameter{name}:1:2"), "too many"),
                };
                // A one-level name has no hierarchy to break.
                prop_assume!(broken != 2 || levels.len() > 1);
                let error = parse(&text).unwrap_err();
                prop_assert!(error.contains(rule), "{} -> {}", text, error);
            }
        }
    }
}
