//! `deckhand`: agent, migrate and healthcheck in one binary, chosen by the name it is run
//! as (`/usr/local/bin/migrate` is a link to it). The image ships this one binary: the
//! three programs share the AWS SDK, tokio, rustls and the PostgreSQL client, so one
//! binary is about half the size of three. Each runs exactly what its own binary runs.

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

fn program(arg: Option<&OsString>) -> Option<&str> {
    let name = Path::new(arg?).file_name()?.to_str()?;
    ["agent", "migrate", "healthcheck"]
        .into_iter()
        .find(|p| *p == name)
}

fn main() -> ExitCode {
    // Each program reads std::env::args itself, argv[0] included, as when run alone.
    let argv0 = std::env::args_os().next();
    match program(argv0.as_ref()) {
        Some("agent") => agent::entry::main(),
        Some("migrate") => migrate::entry::main(),
        Some("healthcheck") => healthcheck::entry::main(),
        _ => {
            eprintln!("deckhand: run me as agent, migrate or healthcheck (a link with that name)");
            ExitCode::from(conventions::exit::UNKNOWN_PROGRAM)
        }
    }
}
