//! The built-in `maelstrom` kind given a node program: what `--maelstrom PATH` and a scenario's `maelstrom =
//! "PATH"` start (the kind's bridge, [`super::maelstrom::bridge`], runs the program).

use std::path::Path;

use super::Kind;
use super::maelstrom::KIND;

/// The kind that runs `program` (a Maelstrom node executable) under the bridge: the built-in `maelstrom`
/// kind with `--program PATH` added to its leading arguments. `Err` says what is wrong with `program`.
pub fn kind_for(program: &Path) -> Result<Kind, String> {
    let path = std::path::absolute(program)
        .map_err(|e| format!("--maelstrom {}: {e}", program.display()))?;
    if !path.is_file() {
        return Err(format!(
            "--maelstrom {}: no such file; give the path of your Maelstrom node executable",
            program.display()
        ));
    }
    if !is_executable(&path) {
        return Err(format!(
            "--maelstrom {}: not executable; chmod +x it (a script needs a #! line)",
            program.display()
        ));
    }
    let mut kind = Kind::builtin(KIND).expect("the maelstrom kind is built in");
    kind.args.push("--program".to_string());
    kind.args.push(path.display().to_string());
    Ok(kind)
}

/// Refuses the bare built-in `maelstrom` kind (`--node-kind maelstrom`, `kind = "maelstrom"`): it has no node
/// program until [`kind_for`] gives it one. Other kinds pass.
pub fn needs_program(kind: &Kind) -> Result<(), String> {
    if kind.name == KIND && !kind.args.iter().any(|a| a == "--program") {
        return Err(
            "node kind `maelstrom` runs your Maelstrom node: name it with `--maelstrom PATH` (or \
             `maelstrom = \"PATH\"` in a scenario's [cluster]) instead of the kind"
                .to_string(),
        );
    }
    Ok(())
}

/// The Maelstrom node program `kind` runs (what [`kind_for`] gave it), if it is a Maelstrom kind with one. On
/// other hosts it must be at the same path (issue 24).
pub fn program_of(kind: &Kind) -> Option<std::path::PathBuf> {
    if kind.name != KIND {
        return None;
    }
    let at = kind.args.iter().position(|a| a == "--program")?;
    kind.args.get(at + 1).map(std::path::PathBuf::from)
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
