//! `agent`: see `agent --help` and the README. All logic lives in the library.

fn main() -> std::process::ExitCode {
    agent::entry::main()
}
