//! The agent's exit codes: its rows of the toolkit's one table
//! ([`conventions::exit`]). Once the app has run, the agent exits with the app's code,
//! or 128 + n when signal n killed it.

pub use conventions::exit::agent::*;
