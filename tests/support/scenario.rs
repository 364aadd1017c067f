//! The harness of the tests that run scenario files through `squall run` (`tests/scenarios.rs`,
//! `tests/lock.rs`): the binary, the scenario library, and a shortened run whose exit
//! code and verdict line must be the ones its `expect` declares.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `squall` binary under test.
pub fn squall() -> Command {
    Command::new(env!("CARGO_BIN_EXE_squall"))
}

/// The scenario library's folder (`scenarios/`).
pub fn library_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

/// Library scenario `name`'s file (`scenarios/NAME.toml`).
pub fn library(name: &str) -> PathBuf {
    library_dir().join(format!("{name}.toml"))
}

/// Runs scenario `file` (whose text is `text`) shortened, `squall run FILE --scale 0.5 [--seed 11] --out
/// BUNDLE`, and checks it exits 0 with `verdict: valid (expected valid)`, or 1 with the invalid one when
/// `text` expects `invalid`. `seed` adds `--seed 11` (printed in the output, so a failure replays the same
/// plan). `label` names the run in failure messages. Returns the run's stdout.
pub fn run_scaled(file: &Path, text: &str, seed: bool, bundle: &Path, label: &str) -> String {
    run_at_scale(file, text, "0.5", seed, bundle, label)
}

/// [`run_scaled`] at `--scale SCALE` (`"1"`: the file's own times).
pub fn run_at_scale(
    file: &Path,
    text: &str,
    scale: &str,
    seed: bool,
    bundle: &Path,
    label: &str,
) -> String {
    let mut cmd = squall();
    cmd.arg("run").arg(file).args(["--scale", scale]);
    if seed {
        cmd.args(["--seed", "11"]);
    }
    let o = cmd.arg("--out").arg(bundle).output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&o.stderr);
    let (code, word) = if text.contains("expect = \"invalid\"") {
        (1, "invalid")
    } else {
        (0, "valid")
    };
    assert_eq!(
        o.status.code(),
        Some(code),
        "{label}: expected exit {code}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(
        stdout.contains(&format!("verdict: {word} (expected {word})")),
        "{label}:\n{stdout}"
    );
    stdout
}
