//! Where settings are read from. A program reads its settings through [`Env`], never
//! through `std::env` directly, so the same code reads the process environment, a map in
//! a test, the app's resolved environment (under the agent, a `HEALTH_*` variable may
//! come from a secret), or a command line whose flags override variables
//! ([`CommandLine`]).

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;

/// A source of variables.
pub trait Env {
    /// The variable's value; unset, empty or not UTF-8 all read as `None` (as libpq
    /// treats an empty `PGHOST`).
    fn var(&self, name: &str) -> Option<String>;

    /// Every variable, as the process would pass them to a child.
    fn vars(&self) -> Vec<(OsString, OsString)>;

    /// How the user set `name`, for error messages: the variable's name, or the flag
    /// that overrode it (`--stop-timeout`).
    fn origin(&self, name: &str) -> String {
        name.to_owned()
    }
}

/// The process's own environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }

    fn vars(&self) -> Vec<(OsString, OsString)> {
        std::env::vars_os().collect()
    }
}

impl<T: Env + ?Sized> Env for &T {
    fn var(&self, name: &str) -> Option<String> {
        (**self).var(name)
    }

    fn vars(&self) -> Vec<(OsString, OsString)> {
        (**self).vars()
    }

    fn origin(&self, name: &str) -> String {
        (**self).origin(name)
    }
}

impl Env for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).filter(|v| !v.is_empty()).cloned()
    }

    fn vars(&self) -> Vec<(OsString, OsString)> {
        self.iter().map(|(k, v)| (k.into(), v.into())).collect()
    }
}

impl Env for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).filter(|v| !v.is_empty()).cloned()
    }

    fn vars(&self) -> Vec<(OsString, OsString)> {
        self.iter().map(|(k, v)| (k.into(), v.into())).collect()
    }
}

impl Env for Vec<(OsString, OsString)> {
    fn var(&self, name: &str) -> Option<String> {
        // The last one wins, as when a process builds its environment from a list.
        self.iter()
            .rev()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.to_str())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }

    fn vars(&self) -> Vec<(OsString, OsString)> {
        self.clone()
    }
}

/// A list written in place, `&[("HEALTH_DRAIN", "2s")]`: a test's environment. The last
/// one wins, as in a list of `OsString`s.
impl Env for [(&str, &str)] {
    fn var(&self, name: &str) -> Option<String> {
        self.iter()
            .rev()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
            .filter(|v| !v.is_empty())
    }

    fn vars(&self) -> Vec<(OsString, OsString)> {
        self.iter().map(|(k, v)| (k.into(), v.into())).collect()
    }
}

impl<const N: usize> Env for [(&str, &str); N] {
    fn var(&self, name: &str) -> Option<String> {
        self.as_slice().var(name)
    }

    fn vars(&self) -> Vec<(OsString, OsString)> {
        self.as_slice().vars()
    }
}

/// A command line over an environment: a flag given on the command line wins over its
/// variable, and an error about it names the flag the user typed.
///
/// Built from clap's matches, so clap stays what it is good at (flags, `--help`) and the
/// values go through the program's one `from_env`.
#[derive(Debug, Clone)]
pub struct CommandLine<E> {
    /// Variable name → (flag as typed, value).
    flags: BTreeMap<String, (String, String)>,
    base: E,
}

impl<E: Env> CommandLine<E> {
    /// The flags of `matches` (parsed with `command`) that were given on the command line
    /// and have a variable, over `base`; those of the subcommand it chose too
    /// (`migrate up --target 3`). Flags without a value (`--out-of-order`) read as `true`.
    pub fn new(command: &clap::Command, matches: &clap::ArgMatches, base: E) -> Self {
        let mut flags = BTreeMap::new();
        given_flags(command, matches, &mut flags);
        CommandLine { flags, base }
    }

    /// Parses the process's arguments as `P` — exiting as clap does on `--help` or a bad
    /// flag — and puts the flags given over `base`.
    pub fn parse<P: clap::Parser>(base: E) -> (P, Self) {
        let mut command = P::command();
        let matches = command.clone().get_matches();
        let parsed =
            P::from_arg_matches(&matches).unwrap_or_else(|e| e.format(&mut command).exit());
        (parsed, CommandLine::new(&command, &matches, base))
    }

    /// As [`CommandLine::parse`], for the arguments `argv` (the program's name first),
    /// returning clap's error.
    pub fn try_parse_from<P, I, T>(argv: I, base: E) -> Result<(P, Self), clap::Error>
    where
        P: clap::Parser,
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let mut command = P::command();
        let matches = command.clone().try_get_matches_from(argv)?;
        let parsed = P::from_arg_matches(&matches).map_err(|e| e.format(&mut command))?;
        Ok((parsed, CommandLine::new(&command, &matches, base)))
    }

    /// The environment under the flags.
    pub fn base(&self) -> &E {
        &self.base
    }
}

/// Adds the flags of `matches` given on the command line (variable → (flag, value)),
/// then those of its subcommand, which win.
fn given_flags(
    command: &clap::Command,
    matches: &clap::ArgMatches,
    flags: &mut BTreeMap<String, (String, String)>,
) {
    for arg in command.get_arguments() {
        let id = arg.get_id().as_str();
        let Some(var) = arg.get_env().and_then(|v| v.to_str()) else {
            continue;
        };
        if matches.value_source(id) != Some(clap::parser::ValueSource::CommandLine) {
            continue;
        }
        let value = match matches.get_raw(id) {
            Some(mut raw) => raw
                .next()
                .map(|v| v.to_string_lossy().into_owned())
                .unwrap_or_else(|| "true".to_owned()),
            None => "true".to_owned(),
        };
        let flag = arg
            .get_long()
            .map_or_else(|| id.to_owned(), |l| format!("--{l}"));
        flags.insert(var.to_owned(), (flag, value));
    }
    if let Some((name, sub_matches)) = matches.subcommand() {
        if let Some(sub) = command.find_subcommand(name) {
            given_flags(sub, sub_matches, flags);
        }
    }
}

impl<E: Env> Env for CommandLine<E> {
    fn var(&self, name: &str) -> Option<String> {
        match self.flags.get(name) {
            Some((_, value)) => Some(value.clone()).filter(|v| !v.is_empty()),
            None => self.base.var(name),
        }
    }

    fn vars(&self) -> Vec<(OsString, OsString)> {
        let mut vars: Vec<(OsString, OsString)> = self
            .base
            .vars()
            .into_iter()
            .filter(|(k, _)| !k.to_str().is_some_and(|k| self.flags.contains_key(k)))
            .collect();
        vars.extend(
            self.flags
                .iter()
                .map(|(k, (_, v))| (OsString::from(k), OsString::from(v))),
        );
        vars
    }

    fn origin(&self, name: &str) -> String {
        match self.flags.get(name) {
            Some((flag, _)) => flag.clone(),
            None => self.base.origin(name),
        }
    }
}

/// Every variable a command documents, with its documented default (`default_value`):
/// for the test that a program's `from_env` defaults are the ones its `--help` shows.
pub fn documented_defaults(command: &clap::Command) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for arg in command.get_arguments() {
        let (Some(var), Some(default)) = (
            arg.get_env().and_then(|v| v.to_str()),
            arg.get_default_values().first(),
        ) else {
            continue;
        };
        out.insert(var.to_owned(), default.to_string_lossy().into_owned());
    }
    for sub in command.get_subcommands() {
        out.extend(documented_defaults(sub));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, ArgAction, Command};

    fn command() -> Command {
        Command::new("t")
            .arg(
                Arg::new("timeout")
                    .long("timeout")
                    .env("T_TIMEOUT")
                    .default_value("5s"),
            )
            .arg(
                Arg::new("flag")
                    .long("flag")
                    .env("T_FLAG")
                    .action(ArgAction::SetTrue),
            )
    }

    #[test]
    fn a_flag_wins_over_its_variable_and_is_named_as_typed() {
        let base: BTreeMap<String, String> = [
            ("T_TIMEOUT".to_owned(), "1s".to_owned()),
            ("OTHER".to_owned(), "x".to_owned()),
        ]
        .into();
        let cmd = command();
        let matches = cmd
            .clone()
            .try_get_matches_from(["t", "--timeout", "9s", "--flag"])
            .unwrap();
        let env = CommandLine::new(&cmd, &matches, base.clone());
        assert_eq!(env.var("T_TIMEOUT").as_deref(), Some("9s"));
        assert_eq!(env.origin("T_TIMEOUT"), "--timeout");
        assert_eq!(env.var("T_FLAG").as_deref(), Some("true"));
        assert_eq!(env.var("OTHER").as_deref(), Some("x"));
        assert_eq!(env.origin("OTHER"), "OTHER");

        // Neither given: the variable (clap read it too, but the base is the truth).
        let matches = cmd.clone().try_get_matches_from(["t"]).unwrap();
        let env = CommandLine::new(&cmd, &matches, base);
        assert_eq!(env.var("T_TIMEOUT").as_deref(), Some("1s"));
        assert_eq!(env.origin("T_TIMEOUT"), "T_TIMEOUT");
    }

    #[test]
    fn the_flags_of_the_chosen_subcommand_count_too() {
        let cmd = Command::new("t")
            .arg(
                Arg::new("format")
                    .long("format")
                    .env("T_FORMAT")
                    .global(true),
            )
            .subcommand(command().name("up"))
            .subcommand(
                Command::new("status").arg(Arg::new("timeout").long("wait").env("T_TIMEOUT")),
            );
        let matches = cmd
            .clone()
            .try_get_matches_from(["t", "up", "--flag", "--format", "json"])
            .unwrap();
        let env = CommandLine::new(&cmd, &matches, BTreeMap::<String, String>::new());
        assert_eq!(env.var("T_FLAG").as_deref(), Some("true"));
        assert_eq!(env.origin("T_FLAG"), "--flag");
        assert_eq!(env.var("T_FORMAT").as_deref(), Some("json"));
        assert_eq!(
            env.var("T_TIMEOUT"),
            None,
            "not given, and the default is clap's"
        );

        let matches = cmd
            .clone()
            .try_get_matches_from(["t", "status", "--wait", "3s"])
            .unwrap();
        let env = CommandLine::new(&cmd, &matches, BTreeMap::<String, String>::new());
        assert_eq!(env.origin("T_TIMEOUT"), "--wait");
    }

    #[derive(clap::Parser)]
    struct Cli {
        #[arg(long, env = "T_TIMEOUT", default_value = "5s")]
        timeout: String,
    }

    #[test]
    fn a_parser_s_flags_over_a_list_written_in_place() {
        let vars = [("T_TIMEOUT", "1s"), ("OTHER", "")];
        assert_eq!(vars.var("T_TIMEOUT").as_deref(), Some("1s"));
        assert_eq!(vars.var("OTHER"), None);
        let (cli, env) = CommandLine::try_parse_from::<Cli, _, _>(["t"], vars).unwrap();
        // clap's field holds its own reading (here the default): the values are `env`'s.
        assert_eq!(cli.timeout, "5s");
        assert_eq!(env.var("T_TIMEOUT").as_deref(), Some("1s"));
        let (_, env) =
            CommandLine::try_parse_from::<Cli, _, _>(["t", "--timeout", "2s"], vars).unwrap();
        assert_eq!(env.var("T_TIMEOUT").as_deref(), Some("2s"));
        assert!(CommandLine::try_parse_from::<Cli, _, _>(["t", "--bogus"], vars).is_err());
    }

    #[test]
    fn empty_values_read_as_unset_and_the_last_duplicate_wins() {
        let list: Vec<(OsString, OsString)> = vec![
            ("A".into(), "1".into()),
            ("A".into(), "2".into()),
            ("E".into(), "".into()),
        ];
        assert_eq!(list.var("A").as_deref(), Some("2"));
        assert_eq!(list.var("E"), None);
        assert_eq!(list.var("MISSING"), None);
    }

    #[test]
    fn defaults_are_listed_by_variable() {
        let d = documented_defaults(&command());
        assert_eq!(d.get("T_TIMEOUT").map(String::as_str), Some("5s"));
        assert!(!d.contains_key("T_FLAG") || d["T_FLAG"] == "false");
    }
}
