//! Builds the time shim (`shim/time_shim.rs`) into a shared library in `OUT_DIR`, which `src/clock.rs`
//! embeds. It is one self-contained `no_std` file compiled by the same `rustc` that builds this crate, so
//! `cargo build` on a fresh clone needs no C compiler and no system library.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = "shim/time_shim.rs";
    println!("cargo::rerun-if-changed={src}");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("libsquall_time_shim.so");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let target = std::env::var("TARGET").expect("cargo sets TARGET");
    let mut cmd = Command::new(rustc);
    cmd.args([
        "--edition",
        "2024",
        "--crate-type",
        "cdylib",
        "--crate-name",
        "squall_time_shim",
        "--target",
        &target,
        "-C",
        "panic=abort",
        "-C",
        "opt-level=2",
        "-C",
        "debuginfo=0",
        "-C",
        "strip=symbols",
        "-o",
    ])
    .arg(&out)
    .arg(src);
    // The linker cargo was told to use for this target, if any (cross builds).
    let key = format!(
        "CARGO_TARGET_{}_LINKER",
        target.to_uppercase().replace('-', "_")
    );
    println!("cargo::rerun-if-env-changed={key}");
    if let Some(linker) = std::env::var_os(&key) {
        cmd.arg("-C")
            .arg(format!("linker={}", linker.to_string_lossy()));
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run rustc to build the time shim {src}: {e}"));
    assert!(
        status.success(),
        "rustc failed to build the time shim {src}"
    );
}
