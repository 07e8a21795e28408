//! `healthcheck`: see `healthcheck --help` and docs/healthcheck.md. All logic lives in the library.

fn main() -> std::process::ExitCode {
    healthcheck::entry::main()
}
