//! The agent's exit codes (BSD `sysexits.h` for its own failures, shell conventions for
//! the app's). Once the app has run, the agent exits with the app's code, or 128 + n
//! when signal n killed it.

/// The command line or an agent option is wrong (`EX_USAGE`).
pub const USAGE: u8 = 64;
/// AWS could not be reached, or did not answer, within `DECKHAND_SECRETS_TIMEOUT`
/// (`EX_UNAVAILABLE`).
pub const UNAVAILABLE: u8 = 69;
/// The agent itself failed (`EX_SOFTWARE`): e.g. the reaper thread could not start.
pub const SOFTWARE: u8 = 70;
/// A reference or secret needs fixing: malformed reference, secret or JSON key not
/// found, access denied, malformed JSON, a required variable missing (`EX_CONFIG`).
pub const CONFIG: u8 = 78;
/// The command exists but cannot be run (permissions, not an executable), as in shells.
pub const CANNOT_EXECUTE: u8 = 126;
/// The command was not found, as in shells.
pub const NOT_FOUND: u8 = 127;
/// Added to a signal's number when a signal ended the app (or the agent's start).
pub const SIGNAL_BASE: u8 = 128;
