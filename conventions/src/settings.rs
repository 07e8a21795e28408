//! Reading a program's settings: every bad value is collected, so one run shows them
//! all, each as `NAME="value" is not valid: reason` with `NAME` as the user wrote it.
//!
//! ```
//! use std::collections::BTreeMap;
//! use conventions::{parse, Checker};
//!
//! let env: BTreeMap<String, String> = [("APP_TIMEOUT".into(), "soon".into())].into();
//! let mut c = Checker::new(&env);
//! let timeout = c.value("APP_TIMEOUT", std::time::Duration::from_secs(5), parse::duration);
//! let errors = c.finish(timeout).unwrap_err();
//! assert!(errors[0].to_string().starts_with(r#"APP_TIMEOUT="soon" is not valid: "#));
//! ```

use std::fmt;

use crate::env::Env;

/// What a bad value calls for: a different value of the setting, or a fix in what it
/// names (a secret id, a pattern, a file) — the agent exits 64 for the first and 78 for
/// the second; the other programs have one code for both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kind {
    /// The value does not follow the setting's grammar.
    #[default]
    Usage,
    /// The value is well formed but what it names needs fixing.
    Config,
}

/// A setting whose value cannot be used.
#[derive(Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The variable, or the flag, as the user set it.
    pub name: String,
    /// The value as given; [`Invalid::HIDDEN`] when it may hold a password; empty when
    /// a required setting is not set at all ([`Invalid::missing`]).
    pub value: String,
    /// The rule it breaks, and how to write it instead.
    pub reason: String,
    pub kind: Kind,
}

impl Invalid {
    /// What is shown instead of a value that may hold a password.
    pub const HIDDEN: &'static str = "(hidden: it may hold a password)";

    pub fn new(
        name: impl Into<String>,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Invalid {
            name: name.into(),
            value: value.into(),
            reason: reason.into(),
            kind: Kind::Usage,
        }
    }

    /// A required setting that is not set: `NAME is not set: reason`, where the reason
    /// says where the value may come from instead.
    pub fn missing(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Invalid::new(name, "", reason)
    }

    /// The same error, as one that names something to fix ([`Kind::Config`]).
    pub fn config(mut self) -> Self {
        self.kind = Kind::Config;
        self
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A blank value reads as unset ([`Checker::raw`]), so an empty one was not given.
        if self.value.is_empty() {
            return write!(f, "{} is not set: {}", self.name, self.reason);
        }
        write!(
            f,
            "{}={:?} is not valid: {}",
            self.name, self.value, self.reason
        )
    }
}

impl fmt::Debug for Invalid {
    /// As `Display`: the value shown is the one the user gave (or hidden).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Invalid {}

/// Several bad settings, one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report(pub Vec<Invalid>);

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Report {}

impl Report {
    /// [`Kind::Config`] when any error is one, else [`Kind::Usage`].
    pub fn kind(&self) -> Kind {
        if self.0.iter().any(|e| e.kind == Kind::Config) {
            Kind::Config
        } else {
            Kind::Usage
        }
    }
}

/// Reads settings from an [`Env`] and collects every bad value.
pub struct Checker<'e, E: Env + ?Sized> {
    env: &'e E,
    errors: Vec<Invalid>,
}

impl<'e, E: Env + ?Sized> Checker<'e, E> {
    pub fn new(env: &'e E) -> Self {
        Checker {
            env,
            errors: Vec::new(),
        }
    }

    /// The settings `read` reads from `env` when every value was good; else every error:
    /// a program's `from_env` (`Checker::read(env, Config::read)`).
    pub fn read<T>(env: &'e E, read: impl FnOnce(&mut Self) -> T) -> Result<T, Vec<Invalid>> {
        let mut c = Checker::new(env);
        let settings = read(&mut c);
        c.finish(settings)
    }

    /// The environment the settings are read from.
    pub fn env(&self) -> &'e E {
        self.env
    }

    /// The variable's value, trimmed; `None` when unset or blank.
    pub fn raw(&self, var: &str) -> Option<String> {
        self.env
            .var(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// The setting `var` parsed, or `default` when it is unset — or when it is bad, which
    /// is recorded (so the value returned is never used: [`Checker::finish`] refuses).
    pub fn value<T>(
        &mut self,
        var: &str,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> T {
        self.optional(var, parse).unwrap_or(default)
    }

    /// The setting `var` parsed, or its documented `default` (the same text the flag's
    /// `default_value` shows in `--help`) when unset. A bad value is recorded and
    /// `T::default()` returned in its place (never used: [`Checker::finish`] refuses).
    pub fn get<T: Default>(
        &mut self,
        var: &str,
        default: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> T {
        let value = self.raw(var).unwrap_or_else(|| default.to_owned());
        let parsed = parse(&value);
        self.check(var, &value, parsed).unwrap_or_default()
    }

    /// The setting `var` parsed; `None` when unset, or bad (and recorded).
    pub fn optional<T>(
        &mut self,
        var: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let raw = self.raw(var)?;
        let parsed = parse(&raw);
        self.check(var, &raw, parsed)
    }

    /// Records `parsed`'s error against `var` (named as the user set it) and `value`.
    pub fn check<T>(&mut self, var: &str, value: &str, parsed: Result<T, String>) -> Option<T> {
        match parsed {
            Ok(v) => Some(v),
            Err(reason) => {
                self.errors
                    .push(Invalid::new(self.env.origin(var), value, reason));
                None
            }
        }
    }

    /// As [`Checker::check`], for a value whose error names something to fix
    /// ([`Kind::Config`]).
    pub fn check_config<T>(
        &mut self,
        var: &str,
        value: &str,
        parsed: Result<T, String>,
    ) -> Option<T> {
        let before = self.errors.len();
        let out = self.check(var, value, parsed);
        if let Some(e) = self.errors.get_mut(before) {
            e.kind = Kind::Config;
        }
        out
    }

    /// Records an error made elsewhere.
    pub fn push(&mut self, error: Invalid) {
        self.errors.push(error);
    }

    /// The name `var` is reported under (the variable, or the flag that set it).
    pub fn origin(&self, var: &str) -> String {
        self.env.origin(var)
    }

    /// Whether a bad value was recorded so far.
    pub fn failed(&self) -> bool {
        !self.errors.is_empty()
    }

    /// `settings` when every value was good; else every error, in the order found.
    pub fn finish<T>(self, settings: T) -> Result<T, Vec<Invalid>> {
        if self.errors.is_empty() {
            Ok(settings)
        } else {
            Err(self.errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::parse;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn every_bad_value_is_reported_not_only_the_first() {
        let env = env(&[("A", "soon"), ("B", "maybe"), ("C", " 3s ")]);
        let mut c = Checker::new(&env);
        let a = c.value("A", Duration::ZERO, parse::duration);
        let b = c.value("B", false, parse::boolean);
        let d = c.value("C", Duration::ZERO, parse::duration);
        assert_eq!(d, Duration::from_secs(3));
        let errors = c.finish((a, b, d)).unwrap_err();
        assert_eq!(errors.len(), 2);
        assert!(errors[0]
            .to_string()
            .starts_with(r#"A="soon" is not valid: "#));
        assert_eq!(
            errors[1].to_string(),
            r#"B="maybe" is not valid: must be true or false (also 1/0, yes/no, on/off)"#
        );
        assert_eq!(Report(errors).kind(), Kind::Usage);
    }

    #[test]
    fn a_documented_default_is_parsed_like_a_value() {
        let env = env(&[("SET", "2s")]);
        let mut c = Checker::new(&env);
        assert_eq!(c.get("SET", "1s", parse::duration), Duration::from_secs(2));
        assert_eq!(
            c.get("UNSET", "1s", parse::duration),
            Duration::from_secs(1)
        );
        assert!(c.finish(()).is_ok());
    }

    #[test]
    fn unset_and_blank_take_the_default() {
        let env = env(&[("BLANK", "  ")]);
        let mut c = Checker::new(&env);
        assert!(c.value("BLANK", true, parse::boolean));
        assert_eq!(c.optional("UNSET", parse::duration), None);
        assert!(c.finish(()).is_ok());
    }

    #[test]
    fn read_is_new_then_finish() {
        let bad = env(&[("A", "soon")]);
        let read = |c: &mut Checker<'_, _>| c.value("A", Duration::ZERO, parse::duration);
        assert_eq!(Checker::read(&bad, read).unwrap_err()[0].name, "A");
        assert_eq!(Checker::read(&env(&[]), read), Ok(Duration::ZERO));
    }

    #[test]
    fn a_missing_setting_says_so_instead_of_showing_an_empty_value() {
        let e = Invalid::missing("PGUSER", "set PGUSER or put the user in DATABASE_URL");
        assert_eq!(
            e.to_string(),
            "PGUSER is not set: set PGUSER or put the user in DATABASE_URL"
        );
        assert_eq!(e.kind, Kind::Usage);
    }

    #[test]
    fn config_errors_are_told_apart() {
        let env = env(&[("ID", "x")]);
        let mut c = Checker::new(&env);
        let _: Option<()> = c.check_config("ID", "x", Err("not found".into()));
        let errors = c.finish(()).unwrap_err();
        assert_eq!(errors[0].kind, Kind::Config);
        assert_eq!(Report(errors).kind(), Kind::Config);
    }
}
