//! Takes the `main.rs` of agent, migrate and healthcheck as they are, so the multi-call
//! binary runs exactly their code: each becomes a module with a public `main` (the
//! file's `//!` lines are dropped, since an included file cannot carry inner doc
//! comments). Fails the build, naming the file, if a `main` cannot be found.

use std::path::Path;

fn main() {
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    for name in ["agent", "migrate", "healthcheck"] {
        let src = format!("../{name}/src/main.rs");
        println!("cargo:rerun-if-changed={src}");
        let text =
            std::fs::read_to_string(&src).unwrap_or_else(|e| panic!("cannot read {src}: {e}"));
        let body: String = text
            .lines()
            .filter(|l| !l.starts_with("//!"))
            .map(|l| format!("{l}\n"))
            .collect();
        let needle = "\nfn main() -> ExitCode {";
        assert!(
            body.matches(needle).count() == 1,
            "{src} must define exactly one `fn main() -> ExitCode` for the multi-call binary"
        );
        let body = body.replacen(needle, "\npub fn main() -> ExitCode {", 1);
        std::fs::write(Path::new(&out).join(format!("{name}_main.rs")), body)
            .expect("cannot write to OUT_DIR");
    }
}
