//! Secret values: a string type that never prints, the store of every value the agent
//! loaded (for the log sanitizer), and the rules that turn JSON values into
//! environment text.

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

/// Every secret value the agent loaded, kept so the log sanitizer can redact each one.
/// Values of earlier versions stay after a rotation: the app may still print them.
/// `Debug` lists variable names only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    entries: Vec<Loaded>,
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

    /// Adds what `other` holds and this does not.
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
