//! `agent`: see `agent --help` and docs/agent.md. All logic lives in the library.

fn main() -> std::process::ExitCode {
    agent::entry::main()
}
