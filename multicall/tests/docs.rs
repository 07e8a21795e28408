//! The docs against the three programs' `--help`: every variable of deckhand's families
//! that `README.md` or a `docs/*.md` page names must appear in the full help of some
//! program or subcommand (`testkit::docs`). It lives here because this crate links all
//! three programs; it needs no test services.

use clap::CommandFactory;

/// The long help of `command` and of each of its subcommands, as a user would print it
/// with `--help` (clap's own `help` subcommand left out).
fn long_helps(mut command: clap::Command) -> Vec<String> {
    command.build();
    let mut helps = vec![command.render_long_help().to_string()];
    for sub in command.get_subcommands() {
        if sub.get_name() != "help" {
            helps.extend(long_helps(sub.clone()));
        }
    }
    helps
}

/// Every help text of `agent`, `migrate` and `healthcheck`.
fn every_help() -> Vec<String> {
    let mut helps = long_helps(agent::config::Args::command());
    helps.extend(long_helps(agent::check::command()));
    helps.extend(long_helps(migrate::cli::Cli::command()));
    helps.extend(long_helps(healthcheck::cli::Cli::command()));
    helps
}

#[test]
fn every_variable_the_docs_name_is_in_some_programs_help() {
    testkit::docs::assert_docs_variables_in_help(&every_help());
}

#[test]
fn the_help_texts_cover_every_program_and_subcommand() {
    let helps = every_help();
    // agent and agent check; migrate and each of its commands; healthcheck and serve, probe.
    let subcommands = migrate::cli::Cli::command().get_subcommands().count()
        + healthcheck::cli::Cli::command().get_subcommands().count();
    assert!(
        subcommands >= 6,
        "migrate's and healthcheck's commands are found"
    );
    assert_eq!(helps.len(), 4 + subcommands, "{helps:#?}");
    for variable in ["DECKHAND_STOP_TIMEOUT", "MIGRATE_STEPS", "HEALTH_PROBE_URL"] {
        assert!(
            helps.iter().any(|h| h.contains(variable)),
            "no help text mentions {variable}: is clap's `env` feature still on?"
        );
    }
}

#[test]
fn every_relative_link_in_the_docs_leads_somewhere() {
    testkit::docs::assert_links_resolve();
}
