//! What every deckhand program does the same way, written once:
//!
//! - [`env`]: where settings come from ([`Env`]: the process, a map in tests, the app's
//!   resolved environment under the agent, or a command line layered over any of them);
//! - [`settings`]: reading them, every bad value collected into one report of
//!   [`Invalid`] — `NAME="value" is not valid: reason`, named the way the user set it;
//! - [`parse`]: the value grammars (durations, one boolean grammar, sizes, addresses);
//! - [`exit`]: the toolkit's exit codes, one table;
//! - [`file`]: files named by a setting, read only when they are regular files;
//! - [`logging`]: the `LOG_FORMAT` switch and the tracing set-up on stderr;
//! - [`backoff`]: the jittered exponential backoff every retry loop uses;
//! - [`secret`]: a string that never prints, for every secret value;
//! - [`suggest`]: the known name closest to a mistyped one ("did you mean …?").
//!
//! Adding a setting to a program: declare its flag and variable in the program's clap
//! arguments (that is its `--help` and its documentation), then read it in the
//! program's `from_env` with [`settings::Checker::value`] and a parser from [`parse`].

#![forbid(unsafe_code)]

pub mod backoff;
pub mod env;
pub mod exit;
pub mod file;
pub mod logging;
pub mod parse;
pub mod secret;
pub mod settings;
pub mod suggest;

pub use backoff::Backoff;
pub use env::{CommandLine, Env, ProcessEnv};
pub use secret::Secret;
pub use settings::{Checker, Invalid, Kind};
