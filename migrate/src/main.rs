//! `migrate`: see `migrate --help` and the README. All logic lives in the library.

fn main() -> std::process::ExitCode {
    migrate::entry::main()
}
