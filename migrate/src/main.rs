//! `migrate`: see `migrate --help` and docs/migrate.md. All logic lives in the library.

fn main() -> std::process::ExitCode {
    migrate::entry::main()
}
