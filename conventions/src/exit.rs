//! Every exit code of the toolkit, in one table.
//!
//! `migrate` and `healthcheck` are commands a person or a pipeline runs: small numbers,
//! one per outcome, 2 for a bad flag or setting as clap (and most CLIs) use it. The
//! `agent` is an ENTRYPOINT whose code is normally the app's, so its own failures use
//! BSD `sysexits.h` codes that an app rarely returns, and the shell's codes for a command
//! that cannot run or is not found.
//!
//! | code | agent | migrate | healthcheck |
//! |---|---|---|---|
//! | 0 | — (the app's 0) | done, nothing to do | `serve` drained; `probe` healthy |
//! | 1 | migration failed (migrate's 1) | a migration failed | `serve` cannot run; `probe` unhealthy |
//! | 2 | — | bad flag, setting or migration file; a connection without a session of its own (a transaction pool) | bad flag or setting |
//! | 3, 4, 5 | migrate's, passed through | lock timeout, drift, database unreachable | — |
//! | 6 | — | `status --exit-code`: pending | — |
//! | 64 | bad command line or setting | — | — |
//! | 69 | AWS not reachable in time | — | — |
//! | 70 | the agent itself failed | — | — |
//! | 78 | a reference, secret, access or required variable needs fixing; migrate's 2 | — | — |
//! | 126, 127 | the command cannot run / is not found | — | — |
//! | 128+n | the app (or the start) ended by signal n | — | — |

/// Success.
pub const OK: u8 = 0;

/// `migrate`'s codes.
pub mod migrate {
    /// A migration failed (and was rolled back, unless it ran without a transaction).
    pub const MIGRATION_FAILED: u8 = 1;
    /// Bad flags, variables or migration files, or a connection whose statements do
    /// not stay on one session (a transaction-pooling PgBouncer): the lock cannot hold.
    pub const USAGE: u8 = 2;
    /// Another runner held the lock for longer than `--lock-timeout`.
    pub const LOCK_TIMEOUT: u8 = 3;
    /// An applied migration's file changed or disappeared.
    pub const DRIFT: u8 = 4;
    /// The database could not be reached, refused the login, or was lost.
    pub const UNREACHABLE: u8 = 5;
    /// `status --exit-code` only: migrations are pending.
    pub const PENDING: u8 = 6;
}

/// `healthcheck`'s codes.
pub mod healthcheck {
    /// `probe`: the answer was not a 2xx; `serve`: it cannot listen or start.
    pub const FAILED: u8 = 1;
    /// A flag or variable is not valid.
    pub const USAGE: u8 = 2;
}

/// The `agent`'s own codes (otherwise it exits with the app's).
pub mod agent {
    /// The command line or an agent setting is wrong (`EX_USAGE`).
    pub const USAGE: u8 = 64;
    /// AWS could not be reached, or did not answer, within `DECKHAND_SECRETS_TIMEOUT`
    /// (`EX_UNAVAILABLE`).
    pub const UNAVAILABLE: u8 = 69;
    /// The agent itself failed (`EX_SOFTWARE`): e.g. a thread could not start.
    pub const SOFTWARE: u8 = 70;
    /// A reference or secret needs fixing: malformed reference, secret or JSON key not
    /// found, access denied, malformed JSON, a required variable missing, a bad
    /// migration file (`EX_CONFIG`).
    pub const CONFIG: u8 = 78;
    /// The command exists but cannot be run (permissions, not an executable), as in shells.
    pub const CANNOT_EXECUTE: u8 = 126;
    /// The command was not found, as in shells.
    pub const NOT_FOUND: u8 = 127;
    /// Added to a signal's number when a signal ended the app (or the agent's start).
    pub const SIGNAL_BASE: u8 = 128;

    /// The agent's code for a failed `DECKHAND_MIGRATE_ON_START`: migrate's own codes
    /// for what only migrate reports (1, 3, 4, 5), [`CONFIG`] for its usage error (a bad
    /// `MIGRATE_*` setting or migration file is the deployment's configuration), and
    /// [`SOFTWARE`] for anything else.
    pub fn from_migrate(code: u8) -> u8 {
        use super::migrate;
        match code {
            migrate::MIGRATION_FAILED
            | migrate::LOCK_TIMEOUT
            | migrate::DRIFT
            | migrate::UNREACHABLE => code,
            migrate::USAGE => CONFIG,
            _ => SOFTWARE,
        }
    }
}

/// The multi-call binary run under a name it does not know: a usage error, in the
/// agent's scheme (the image's ENTRYPOINT is the agent).
pub const UNKNOWN_PROGRAM: u8 = agent::USAGE;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrate_failures_keep_their_meaning_under_the_agent() {
        assert_eq!(agent::from_migrate(migrate::LOCK_TIMEOUT), 3);
        assert_eq!(agent::from_migrate(migrate::UNREACHABLE), 5);
        assert_eq!(agent::from_migrate(migrate::USAGE), agent::CONFIG);
        assert_eq!(agent::from_migrate(migrate::PENDING), agent::SOFTWARE);
    }
}
