//! `healthcheck`: see `healthcheck --help` and the README. All logic lives in the library.

fn main() -> std::process::ExitCode {
    healthcheck::entry::main()
}
