//! Helpers every entry point shares (`commands`, `app`, `run`, `bench`): how errors end a command, the
//! runtime, the cluster specification (from `up`'s flags, or from parts for `run` and `bench`). It sits below
//! all of them, so none imports another to reach these.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crate::cli::UpArgs;
use crate::cluster::ClusterSpec;
use crate::kind::Kind;

/// Prints an error the way every subcommand does and returns the exit code.
pub fn fail(code: u8, msg: impl std::fmt::Display) -> ExitCode {
    use std::io::Write;
    // Not `eprintln!`: standard error may be a terminal that is gone (SIGHUP), and that must not panic.
    let _ = writeln!(std::io::stderr(), "squall: error: {msg}");
    ExitCode::from(code)
}

/// The multi-threaded runtime every subcommand runs on (two workers: the machines squall targets are small).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("the tokio runtime starts")
}

/// The `--slow` preset: election timeout 3–6 s, heartbeat 1 s, slow enough to follow an election (or step its
/// messages one at a time with `hold`) by eye.
pub const SLOW_ELECTION_TIMEOUT: (Duration, Duration) =
    (Duration::from_secs(3), Duration::from_secs(6));
/// The `--slow` preset's heartbeat.
pub const SLOW_HEARTBEAT: Duration = Duration::from_secs(1);

/// `up`'s flags with `--slow` applied to the timings.
pub fn effective(args: &UpArgs) -> UpArgs {
    let mut a = args.clone();
    if a.slow {
        a.election_timeout = SLOW_ELECTION_TIMEOUT;
        a.heartbeat = SLOW_HEARTBEAT;
    }
    a
}

/// The cluster specification for `up`'s flags, with the node kind loaded and its program resolved. `Err` is
/// the message for a person (exit 2): a kind file's mistake with its line, a missing program with the kind's
/// hint, a switch the kind does not offer.
pub fn cluster_spec(args: &UpArgs, dir: PathBuf, seed: u64) -> Result<ClusterSpec, String> {
    let kind = match &args.maelstrom {
        Some(program) => crate::kind::maelstrom_kind_for(program)?,
        None => load_kind(args.node_kind.as_deref().or(match args.protocol {
            Some(squall_node::cli::Protocol::Paxos) => Some("paxos"),
            Some(squall_node::cli::Protocol::Raft) => Some("squall"),
            None => None,
        }))?,
    };
    crate::kind::needs_program(&kind)?;
    // Nodes an earlier session removed need no host (tester 9's finding 5).
    let hosts = crate::remote::connect::hosts_of(
        args.hosts.as_deref(),
        args.host.as_deref(),
        &crate::cluster::nodes_needing_a_host(&dir, args.nodes),
        crate::cluster::guard::MAX_NODES,
    )?;
    let (node_program, node_prefix_args) =
        node_program_where(&kind, args.node_bin.as_deref(), hosts.is_some())?;
    // Switches of the node itself: the kind says how its node spells each, or that it has none.
    let mut options = Vec::new();
    for (asked, flag, name) in [
        (args.no_pre_vote, "--no-pre-vote", "no-pre-vote"),
        (args.no_check_quorum, "--no-check-quorum", "no-check-quorum"),
        (args.unsafe_no_fsync, "--unsafe-no-fsync", "unsafe-no-fsync"),
        (args.no_leases, "--no-leases", "no-leases"),
    ] {
        if !asked {
            continue;
        }
        if !kind.options.contains_key(name) {
            return Err(format!(
                "{flag}: node kind `{}` ({}) has no `{name}` in its [options]; drop the flag",
                kind.name, kind.source
            ));
        }
        if name != "unsafe-no-fsync" {
            options.push(name.to_string());
        }
    }
    Ok(ClusterSpec {
        nodes: args.nodes,
        dir,
        kind,
        node_program,
        node_prefix_args,
        options,
        cluster_id: cluster_id(seed),
        election_timeout: args.election_timeout,
        heartbeat: args.heartbeat,
        snapshot_every: args.snapshot_every,
        seed,
        rate: args.rate,
        disk_faults: args.disk_faults,
        unsafe_no_fsync: args.unsafe_no_fsync,
        hosts,
    })
}

/// `--node-kind`'s value (a built-in name or a kind file; `None`: the default kind), loaded and checked. A kind
/// file named by a relative path (relative to the working directory, as any path on the command line or in a
/// scenario's `[cluster] kind`) is recorded by its absolute path: the event log and an exported scenario then
/// name the same file from any directory a rerun starts in (F9b).
pub fn load_kind(name_or_path: Option<&str>) -> Result<Kind, String> {
    let mut kind =
        Kind::load(name_or_path.unwrap_or(crate::kind::DEFAULT)).map_err(|e| e.to_string())?;
    if let crate::kind::Source::File(path) = &mut kind.source
        && path.is_relative()
        && let Ok(absolute) = std::path::absolute(&*path)
    {
        *path = absolute;
    }
    Ok(kind)
}

/// The node program and its leading arguments where the nodes run: as [`node_program`] finds them here, or, on
/// other hosts (`on_hosts`) without `--node-bin`, the kind's program as the kind names it (a bare name or a
/// path), which each host's agent looks for on its host before anything starts there; this machine need not
/// have it (issue 24). squall's own kinds (`{squall}`) are found here either way (the agent runs its copy).
pub fn node_program_where(
    kind: &Kind,
    node_bin: Option<&Path>,
    on_hosts: bool,
) -> Result<(PathBuf, Vec<OsString>), String> {
    if on_hosts && node_bin.is_none() && !kind.program.contains("{squall}") {
        return Ok((PathBuf::from(&kind.program), kind.leading_args()));
    }
    node_program(kind, node_bin)
}

/// The program every node runs and the arguments before its launch arguments: `node_bin` when given (it
/// replaces the kind's program, and the kind's leading arguments go with the program they belong to), else
/// the kind's program and leading arguments. `Err` names a `node_bin` that is not a file, or the kind's
/// missing program with the kind's hint.
pub fn node_program(
    kind: &Kind,
    node_bin: Option<&Path>,
) -> Result<(PathBuf, Vec<OsString>), String> {
    match node_bin {
        Some(p) => {
            if !p.is_file() {
                return Err(format!(
                    "--node-bin {}: no such file; build the node (for squall's: cargo build --release -p \
                     squall-node) or drop the flag to use the kind's program",
                    p.display()
                ));
            }
            // Refused here, not left to the process supervisor, which ran a file without the execute bit
            // through a shell.
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(p)
                .map(|m| m.permissions().mode())
                .unwrap_or(0);
            if mode & 0o111 == 0 {
                return Err(format!(
                    "--node-bin {}: the file is not executable; make it so (chmod +x {0}) or name the node \
                     program itself",
                    p.display()
                ));
            }
            Ok((p.to_path_buf(), vec![]))
        }
        None => Ok((
            kind.program_path().map_err(|e| e.to_string())?,
            kind.leading_args(),
        )),
    }
}

/// The cluster id of a session with this seed (what the nodes check their data against).
pub fn cluster_id(seed: u64) -> String {
    format!("squall-{:04x}", seed & 0xffff)
}

/// A line on standard output that may be closed by now (`squall up --headless | head`): `up` must still
/// stop its cluster and clean up, so a failed write is not an error.
pub fn say(line: std::fmt::Arguments) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tester 8's finding 3: `squall run --hosts` looked for etcd on this machine (`up --hosts` did not). On
    /// other hosts the kind's program is named as the kind names it, for each host to look up, whether or not
    /// this machine has it; squall's own kind is still this squall; `--node-bin` is still taken from here.
    #[test]
    fn on_other_hosts_a_kind_s_program_is_left_for_the_hosts_to_find() {
        let mut etcd = load_kind(Some("etcd")).unwrap();
        etcd.program = "no-such-program-here".into();
        let (program, _) = node_program_where(&etcd, None, true).unwrap();
        assert_eq!(program, PathBuf::from("no-such-program-here"));
        assert!(node_program_where(&etcd, None, false).is_err());
        let squall = load_kind(Some("squall")).unwrap();
        let (program, _) = node_program_where(&squall, None, true).unwrap();
        assert_ne!(program, PathBuf::from("{squall}"));
    }

    #[test]
    fn a_kind_file_named_by_a_relative_path_is_recorded_by_its_absolute_path() {
        // F9b: an export wrote the path as given, and a rerun from any other directory could not find it.
        // Tests run in the package's directory, where `kinds/squall.toml` is.
        let kind = load_kind(Some("kinds/squall.toml")).unwrap();
        let file = kind.record().file.expect("a kind file");
        assert!(Path::new(&file).is_absolute(), "{file}");
        assert_eq!(
            Path::new(&file),
            std::env::current_dir().unwrap().join("kinds/squall.toml")
        );
        assert_eq!(load_kind(Some("etcd")).unwrap().record().file, None);
    }

    #[test]
    fn a_node_bin_that_is_not_executable_is_refused_naming_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("node.sh");
        std::fs::write(&script, "#!/bin/sh\nexec true\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
        let kind = load_kind(None).unwrap();
        let e = node_program(&kind, Some(&script)).unwrap_err();
        assert!(
            e.contains("node.sh") && e.contains("not executable") && e.contains("chmod +x"),
            "{e}"
        );
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(node_program(&kind, Some(&script)).unwrap().0, script);
    }
}
