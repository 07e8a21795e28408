//! Secret values: a string type that never prints, the store of every value the agent
//! loaded (for the log sanitizer, with, by name only, what it leaves readable and what
//! looks misplaced), and the rules that turn JSON values into environment text.

use std::fmt;

use serde_json::{Map, Value};

/// A secret value: the toolkit's one string that never prints.
pub type SecretString = conventions::Secret;

/// One value the agent placed into the app's environment from a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The variable it went into.
    pub variable: String,
    /// The secret it came from, as the user named it (never a value).
    pub source: String,
    pub value: SecretString,
}

/// A variable named for the start's messages, never with its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub variable: String,
    /// The secret or parameter it came from, as the user named it.
    pub source: String,
    /// Why it is named, as a class ("a common word"), never the value.
    pub reason: &'static str,
}

/// Every secret value the agent loaded, kept so the log sanitizer can redact each one.
/// Values of earlier versions stay after a rotation: the app may still print them.
/// `Debug` lists variable names only.
///
/// Also, by name only, for the messages at start: the parameters placed as
/// configuration (not redacted), and the Secrets Manager values that look like
/// configuration (redacted all the same). A rotation adds values, not these.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    entries: Vec<Loaded>,
    configuration: Vec<Named>,
    looks_like_configuration: Vec<Named>,
}

impl Secrets {
    pub fn push(&mut self, variable: &str, source: &str, value: SecretString) {
        let loaded = Loaded {
            variable: variable.to_owned(),
            source: source.to_owned(),
            value,
        };
        if !self.entries.contains(&loaded) {
            self.entries.push(loaded);
        }
    }

    /// Records a value placed into the app's environment that is not redacted: a
    /// `String` or `StringList` parameter.
    pub fn push_configuration(&mut self, variable: &str, parameter: &str) {
        push_named(
            &mut self.configuration,
            variable,
            parameter,
            "a String or StringList parameter",
        );
    }

    /// Records a secret (redacted all the same) whose value looks like configuration,
    /// for one warning at start.
    pub fn push_looks_like_configuration(
        &mut self,
        variable: &str,
        source: &str,
        reason: &'static str,
    ) {
        push_named(&mut self.looks_like_configuration, variable, source, reason);
    }

    /// The values placed as configuration, not redacted.
    pub fn configuration(&self) -> &[Named] {
        &self.configuration
    }

    /// The secrets whose values look like configuration.
    pub fn looks_like_configuration(&self) -> &[Named] {
        &self.looks_like_configuration
    }

    /// Adds the values `other` holds and this does not (what is said at start is not
    /// repeated for a rotation).
    pub fn extend(&mut self, other: &Secrets) {
        for l in &other.entries {
            if !self.entries.contains(l) {
                self.entries.push(l.clone());
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Loaded> {
        self.entries.iter()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn push_named(list: &mut Vec<Named>, variable: &str, source: &str, reason: &'static str) {
    let named = Named {
        variable: variable.to_owned(),
        source: source.to_owned(),
        reason,
    };
    if !list.contains(&named) {
        list.push(named);
    }
}

/// The words configuration is made of, compared without case: environments, log levels,
/// booleans.
const CONFIGURATION_WORDS: &[&str] = &[
    "production",
    "staging",
    "development",
    "dev",
    "prod",
    "test",
    "debug",
    "info",
    "warn",
    "warning",
    "error",
    "true",
    "false",
    "yes",
    "no",
    "on",
    "off",
];

/// The most digits a number that looks like configuration has (ports, timeouts, sizes,
/// counts). Numbers of up to 5 digits are shorter than the sanitizer's
/// `MIN_SECRET_LEN` (6) and never redacted anyway; 6 to 8 digits are, and redacting one
/// also cuts it out of every longer number that contains it.
pub const SHORT_NUMBER_MAX_DIGITS: usize = 8;

/// The directions of AWS region names (`us-east-1`, `ap-southeast-2`, `il-central-1`).
const REGION_DIRECTIONS: &[&str] = &[
    "north",
    "south",
    "east",
    "west",
    "central",
    "northeast",
    "northwest",
    "southeast",
    "southwest",
];

/// Whether a secret's value looks like configuration rather than a secret, and as what
/// ("a common word", "an AWS region name", "a short number"): a hint for a warning,
/// never a reason not to redact. The whole value is compared (a trailing newline and
/// surrounding blanks aside): `production` is, `production-db-password` is not.
pub fn looks_like_configuration(value: &str) -> Option<&'static str> {
    let v = value.trim();
    if v.is_empty() {
        return None;
    }
    if CONFIGURATION_WORDS
        .iter()
        .any(|w| w.eq_ignore_ascii_case(v))
    {
        return Some("a common word");
    }
    if v.len() <= SHORT_NUMBER_MAX_DIGITS && v.bytes().all(|b| b.is_ascii_digit()) {
        return Some("a short number");
    }
    if is_region_name(v) {
        return Some("an AWS region name");
    }
    None
}

/// `us-east-1`, `eu-central-2`, `us-gov-west-1`, `cn-northwest-1`, `us-isob-east-1`,
/// `eusc-de-east-1`: one or two groups of 2 to 5 letters, a direction, a number of 1
/// or 2 digits.
fn is_region_name(v: &str) -> bool {
    let parts: Vec<&str> = v.split('-').collect();
    let Some((number, rest)) = parts.split_last() else {
        return false;
    };
    let Some((direction, prefix)) = rest.split_last() else {
        return false;
    };
    let number_ok = (1..=2).contains(&number.len()) && number.bytes().all(|b| b.is_ascii_digit());
    let prefix_ok = (1..=2).contains(&prefix.len())
        && prefix
            .iter()
            .all(|p| (2..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_lowercase()));
    number_ok && prefix_ok && REGION_DIRECTIONS.contains(direction)
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|l| &l.variable))
            .finish()
    }
}

/// The environment text of a JSON value: strings as they are, numbers and booleans as
/// their JSON text (`5432`, `true`), objects and arrays as compact JSON, `null` as empty.
pub fn env_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Parses a secret as a JSON object. The error describes the problem without quoting
/// any of the text (which is the secret).
pub fn json_object(text: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(format!(
            "is JSON but not an object (it is {})",
            match other {
                Value::Array(_) => "an array",
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                Value::Bool(_) => "a boolean",
                _ => "null",
            }
        )),
        Err(e) => Err(format!(
            "is not a JSON object: invalid JSON at line {} column {}",
            e.line(),
            e.column()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = SecretString::new("hunter2-very-secret");
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
        let mut all = Secrets::default();
        all.push("DB_PASSWORD", "prod/db", s.clone());
        all.push("DB_PASSWORD", "prod/db", s);
        assert_eq!(all.len(), 1);
        let shown = format!("{all:?} {:?}", all.iter().next().unwrap());
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("DB_PASSWORD"));
    }

    #[test]
    fn configuration_words_regions_and_short_numbers_are_recognised() {
        for word in [
            "production",
            "Production",
            "STAGING",
            "development\n",
            "warning",
            "dev",
            "off",
        ] {
            assert_eq!(
                looks_like_configuration(word),
                Some("a common word"),
                "{word}"
            );
        }
        for region in [
            "us-east-1",
            "eu-west-3",
            "ap-southeast-2",
            "us-gov-west-1",
            "cn-northwest-1",
            "il-central-1",
            "us-isob-east-1",
            "eusc-de-east-1",
        ] {
            assert_eq!(
                looks_like_configuration(region),
                Some("an AWS region name"),
                "{region}"
            );
        }
        for number in ["8080", "300000", "12345678"] {
            assert_eq!(
                looks_like_configuration(number),
                Some("a short number"),
                "{number}"
            );
        }
        for secret in [
            "hunter2-Secret",
            "production-db-password",
            "sk_live_abcdef123",
            "123456789",
            "12ab34",
            "us-east-1-key",
            "US-EAST-1x",
            "a-east-1",
            "us-up-1",
            "",
            "  ",
        ] {
            assert_eq!(looks_like_configuration(secret), None, "{secret:?}");
        }
    }

    #[test]
    fn names_for_the_start_carry_no_value() {
        let mut all = Secrets::default();
        all.push_configuration("LOG_LEVEL", "/app/LOG_LEVEL");
        all.push_configuration("LOG_LEVEL", "/app/LOG_LEVEL");
        all.push_looks_like_configuration("NODE_ENV", "app/env", "a common word");
        assert_eq!(all.configuration().len(), 1);
        assert!(all.is_empty(), "names are not values to redact");
        let mut later = Secrets::default();
        later.extend(&all);
        assert!(later.configuration().is_empty() && later.looks_like_configuration().is_empty());
    }

    #[test]
    fn json_values_become_text() {
        let v: Value = serde_json::json!({"s": "x", "n": 5432, "f": 1.5, "b": true,
            "o": {"a": [1, 2]}, "z": null});
        assert_eq!(env_text(&v["s"]), "x");
        assert_eq!(env_text(&v["n"]), "5432");
        assert_eq!(env_text(&v["f"]), "1.5");
        assert_eq!(env_text(&v["b"]), "true");
        assert_eq!(env_text(&v["o"]), r#"{"a":[1,2]}"#);
        assert_eq!(env_text(&v["z"]), "");
    }

    #[test]
    fn bad_json_is_described_without_its_text() {
        let e = json_object(r#"{"password": "s3cr3t-value"#).unwrap_err();
        assert!(e.contains("line 1"), "{e}");
        assert!(!e.contains("s3cr3t"), "{e}");
        assert!(json_object("[1]").unwrap_err().contains("an array"));
        assert!(json_object("plain-text-secret")
            .unwrap_err()
            .contains("not a JSON object"));
    }
}
