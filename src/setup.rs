//! Helpers every entry point shares (`commands`, `app`, `run`, `bench`): how errors end a command, the
//! runtime, the cluster specification (from `up`'s flags, or from parts for `run` and `bench`). It sits below
//! all of them, so none imports another to reach these.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crate::cli::UpArgs;
use crate::cluster::ClusterSpec;

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

/// The cluster specification for `up`'s flags, with the node program resolved.
pub fn cluster_spec(args: &UpArgs, dir: PathBuf, seed: u64) -> Result<ClusterSpec, String> {
    let (node_program, mut node_prefix_args) = node_program(args.node_bin.as_deref())?;
    // squall-node's own switches, so the node's flag parser is the one that knows them.
    if args.no_pre_vote {
        node_prefix_args.push("--no-pre-vote".into());
    }
    if args.no_check_quorum {
        node_prefix_args.push("--no-check-quorum".into());
    }
    Ok(ClusterSpec {
        nodes: args.nodes,
        dir,
        node_program,
        node_prefix_args,
        cluster_id: cluster_id(seed),
        election_timeout: args.election_timeout,
        heartbeat: args.heartbeat,
        snapshot_every: args.snapshot_every,
        seed,
        rate: args.rate,
        disk_faults: args.disk_faults,
        unsafe_no_fsync: args.unsafe_no_fsync,
    })
}

/// The program every node runs and the arguments before its own flags: `node_bin` (any build of
/// squall-node) with none, or squall itself with `node`. `Err` names a `node_bin` that is not a file.
pub fn node_program(node_bin: Option<&Path>) -> Result<(PathBuf, Vec<OsString>), String> {
    match node_bin {
        Some(p) => {
            if !p.is_file() {
                return Err(format!(
                    "--node-bin {}: no such file; build squall-node (cargo build --release -p squall-node) or drop the flag to use squall itself",
                    p.display()
                ));
            }
            Ok((p.to_path_buf(), vec![]))
        }
        None => Ok((
            std::env::current_exe()
                .map_err(|e| format!("cannot find the squall executable: {e}"))?,
            vec!["node".into()],
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
