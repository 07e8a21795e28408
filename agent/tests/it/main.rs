//! The agent's integration tests, one binary (STYLE.md rule 9): the built `agent`
//! against the moto server and PostgreSQL that `scripts/services` starts, plus small
//! stand-ins (a fault-injecting proxy in front of moto, a container-credentials
//! endpoint, a CloudWatch Logs double) and PID namespaces from `unshare`.
//!
//! Every test uses its own secret and parameter names, log group, database and
//! temporary directory, so they run in parallel. The app is usually `sh -c '…'` writing
//! what it saw to a file: the file (or its absence) is the proof of what the app saw,
//! or that it never ran.

mod check;
mod drain;
mod health;
mod import;
mod logs;
mod mistakes;
mod parameter_store;
mod secrets_manager;
mod startup;
mod supervision;
mod support;
mod terminal;
