//! The build script of every package with a binary (`build = "../build/link-flags.rs"`):
//! link flags that belong to the binaries, not to every crate compiled.
//!
//! `-z pack-relative-relocs` stores the binary's ~35,000 relative relocations as a
//! bitmap (`.relr.dyn`, about 11 KiB) instead of 832 KiB of `.rela.dyn`: the loader
//! reads and applies far less at every start, and the table is not resident. It needs
//! a glibc of 2.36 or later where the binary runs (the linker records that as the
//! version `GLIBC_ABI_DT_RELR`, so an older glibc refuses it with that name): always
//! true of a static build (the image's), which carries its own; for a dynamic build it
//! is turned on when the build machine's own glibc reads it.
//!
//! `-T build/hot-code.ld` (optimized x86-64 builds) places the functions the agent runs
//! at start, idle and shipping in one output section ahead of the rest of `.text`.
//! The kernel maps a binary's code 64 KiB at a time around each fault, so an idle agent
//! whose few MiB of running code were spread over the 10 MiB of `.text` had nearly all
//! of it resident. The script names functions by path (without the legacy symbol hash,
//! which differs from one build's metadata to another), so the image's static
//! multi-call build gets the same order; a function missing from it is only placed
//! with the rest. `scripts/hot-code` regenerates it. See docs/performance-history.md,
//! the sixth round.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let linux_gnu = var("CARGO_CFG_TARGET_OS") == "linux" && var("CARGO_CFG_TARGET_ENV") == "gnu";
    let static_glibc = var("CARGO_CFG_TARGET_FEATURE")
        .split(',')
        .any(|f| f == "crt-static");
    let runs_here = var("HOST") == var("TARGET") && glibc_reads_relr();
    if linux_gnu && (static_glibc || runs_here) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }

    // Debug builds keep their default layout: nothing measures them, and the script's
    // patterns cost link time. DECKHAND_HOT_CODE=off leaves it out (to measure without).
    let hot_code = format!("{}/../build/hot-code.ld", var("CARGO_MANIFEST_DIR"));
    println!("cargo:rerun-if-changed={hot_code}");
    println!("cargo:rerun-if-env-changed=DECKHAND_HOT_CODE");
    let optimized = var("PROFILE") == "release";
    let wanted = var("DECKHAND_HOT_CODE") != "off";
    if linux_gnu && var("CARGO_CFG_TARGET_ARCH") == "x86_64" && optimized && wanted {
        // Two arguments, not `-Wl,-T,PATH`: `-Wl` splits at commas, and a checkout's path
        // may hold one.
        println!("cargo:rustc-link-arg-bins=-Xlinker");
        println!("cargo:rustc-link-arg-bins=--script={hot_code}");
    }
}

/// Whether this machine's glibc is 2.36 or later (`getconf` prints `glibc 2.36`).
fn glibc_reads_relr() -> bool {
    let Ok(out) = Command::new("getconf").arg("GNU_LIBC_VERSION").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text
        .trim()
        .strip_prefix("glibc ")
        .unwrap_or_default()
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let version = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    version >= (2, 36)
}
