//! What each subcommand does, apart from the live dashboard loop (see [`crate::app`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use squall_node::client::{KvClient, fetch_status};
use squall_node::kv::{KvOp, KvResult};

use crate::cli::{BenchArgs, KvArgs, KvCmd, ReplayArgs, StatusArgs, Target, UpArgs};
use crate::cluster::{ClusterFile, ClusterSpec};

/// The tick of the nodes `up` starts (squall-node's default `--tick`): no heartbeat can be shorter.
const NODE_TICK: Duration = Duration::from_millis(10);

/// Prints an error the way every subcommand does and returns the exit code.
pub fn fail(code: u8, msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("squall: error: {msg}");
    ExitCode::from(code)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("the tokio runtime starts")
}

/// Resolves `--dir` / `--peers` into API addresses.
pub fn resolve_target(t: &Target) -> Result<(Option<String>, BTreeMap<u64, SocketAddr>), String> {
    match (&t.dir, &t.peers) {
        (_, Some(peers)) if !peers.is_empty() => Ok((None, peers.clone())),
        (Some(dir), _) => {
            let file = ClusterFile::read(dir)?;
            let addrs = file.api_addrs();
            if addrs.is_empty() {
                return Err(format!("{} lists no node that is listening yet", dir.display()));
            }
            Ok((Some(file.cluster_id), addrs))
        }
        _ => Err("say where the cluster is: --dir DIR (the directory `squall up` printed) or --peers 1=ADDR,2=ADDR,...".into()),
    }
}

/// `squall status`.
pub fn status(args: StatusArgs) -> ExitCode {
    let (cluster_id, addrs) = match resolve_target(&args.target) {
        Ok(t) => t,
        Err(e) => return fail(2, e),
    };
    let timeout = args.target.timeout;
    let results = runtime().block_on(async {
        let mut handles = Vec::new();
        for (&id, &addr) in &addrs {
            handles.push((id, addr, tokio::spawn(fetch_status(addr, timeout))));
        }
        let mut out = Vec::new();
        for (id, addr, h) in handles {
            out.push((id, addr, h.await.unwrap_or_else(|e| Err(e.to_string()))));
        }
        out
    });
    let answered = results.iter().filter(|(_, _, r)| r.is_ok()).count();
    if args.json {
        let nodes: Vec<serde_json::Value> = results
            .iter()
            .map(|(id, addr, r)| match r {
                Ok(s) => serde_json::json!({
                    "id": id, "addr": addr.to_string(), "reachable": true, "pid": s.pid,
                    "role": s.core.role.as_str(), "term": s.core.term, "vote": s.core.vote,
                    "leader": s.core.leader, "commit_index": s.core.commit_index,
                    "applied_index": s.applied_index, "last_log_index": s.core.last_log_index,
                    "last_log_term": s.core.last_log_term, "snapshot_index": s.core.snapshot_index,
                }),
                Err(e) => serde_json::json!({
                    "id": id, "addr": addr.to_string(), "reachable": false, "error": e,
                    "pid": null, "role": null, "term": null, "leader": null,
                    "commit_index": null, "last_log_index": null,
                }),
            })
            .collect();
        let doc = serde_json::json!({ "cluster_id": cluster_id, "nodes": nodes });
        println!("{}", serde_json::to_string_pretty(&doc).expect("JSON"));
    } else {
        println!(
            "{:<5} {:>8} {:<13} {:>6} {:>7} {:>8} {:>8}",
            "NODE", "PID", "ROLE", "TERM", "LEADER", "COMMIT", "LAST"
        );
        for (id, addr, r) in &results {
            match r {
                Ok(s) => println!(
                    "{:<5} {:>8} {:<13} {:>6} {:>7} {:>8} {:>8}",
                    id,
                    s.pid,
                    s.core.role.as_str(),
                    s.core.term,
                    s.core
                        .leader
                        .map(|l| l.to_string())
                        .unwrap_or_else(|| "-".into()),
                    s.core.commit_index,
                    s.core.last_log_index
                ),
                Err(e) => println!("{id:<5} unreachable at {addr}: {e}"),
            }
        }
    }
    if answered == 0 {
        return fail(
            1,
            format!("no node answered within {timeout:?}; is the cluster running?"),
        );
    }
    ExitCode::SUCCESS
}

/// `squall kv`.
pub fn kv(args: KvArgs) -> ExitCode {
    let (_, addrs) = match resolve_target(&args.target) {
        Ok(t) => t,
        Err(e) => return fail(2, e),
    };
    let op = match args.op.clone() {
        KvCmd::Put { key, value } => KvOp::Put { key, value },
        KvCmd::Get { key } => KvOp::Get { key },
        KvCmd::Del { key } => KvOp::Delete { key },
        KvCmd::Cas { key, old, new } => KvOp::Cas {
            key,
            expected: (old != "-").then_some(old),
            new,
        },
        KvCmd::Incr { key, by } => KvOp::Incr { key, by },
    };
    let mut client = KvClient::new(addrs);
    client.op_timeout = args.target.timeout;
    client.call_timeout = args.target.timeout.min(Duration::from_secs(1));
    let result = runtime().block_on(client.execute(op));
    match result {
        Ok(KvResult::Value(Some(v))) => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Ok(KvResult::Value(None)) => {
            if let KvCmd::Get { key } = &args.op {
                eprintln!("squall: key `{key}` is absent");
            }
            ExitCode::from(1)
        }
        Ok(KvResult::Ok { previous }) => {
            match (&args.op, previous) {
                (KvCmd::Del { .. }, None) => println!("OK (key was absent)"),
                (_, Some(p)) => println!("OK (was {p})"),
                (_, None) => println!("OK"),
            }
            ExitCode::SUCCESS
        }
        Ok(KvResult::Cas { swapped: true, .. }) => {
            println!("OK");
            ExitCode::SUCCESS
        }
        Ok(KvResult::Cas {
            swapped: false,
            current,
        }) => {
            println!(
                "NOT SWAPPED: value is {}",
                current.as_deref().unwrap_or("absent")
            );
            ExitCode::from(1)
        }
        Ok(KvResult::Counter(n)) => {
            println!("{n}");
            ExitCode::SUCCESS
        }
        Ok(KvResult::Error(e)) => fail(1, e),
        Err(e) => fail(1, e),
    }
}

/// The cluster specification for `up` and `bench`, with the node program resolved.
pub fn cluster_spec(args: &UpArgs, dir: PathBuf, seed: u64) -> Result<ClusterSpec, String> {
    let (program, prefix) = match &args.node_bin {
        Some(p) => {
            if !p.is_file() {
                return Err(format!(
                    "--node-bin {}: no such file; build squall-node (cargo build --release -p squall-node) or drop the flag to use squall itself",
                    p.display()
                ));
            }
            (p.clone(), vec![])
        }
        None => (
            std::env::current_exe()
                .map_err(|e| format!("cannot find the squall executable: {e}"))?,
            vec!["node".into()],
        ),
    };
    Ok(ClusterSpec {
        nodes: args.nodes,
        dir,
        node_program: program,
        node_prefix_args: prefix,
        cluster_id: format!("squall-{:04x}", seed & 0xffff),
        election_timeout: args.election_timeout,
        heartbeat: args.heartbeat,
        snapshot_every: args.snapshot_every,
        seed,
        rate: args.rate,
        disk_faults: args.disk_faults,
        unsafe_no_fsync: args.unsafe_no_fsync,
    })
}

/// `squall up`.
pub fn up(args: UpArgs) -> ExitCode {
    let seed = args.seed.unwrap_or_else(rand::random);
    let (dir, remove_after) = match &args.dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!(
                "squall-{}-{:08x}",
                std::process::id(),
                rand::random::<u32>()
            )),
            !args.keep,
        ),
    };
    if args.heartbeat < NODE_TICK {
        return fail(
            2,
            format!(
                "--heartbeat {:?} is shorter than a node's {NODE_TICK:?} tick: use at least 10ms",
                args.heartbeat
            ),
        );
    }
    if args.heartbeat >= args.election_timeout.0 {
        return fail(
            2,
            format!(
                "--heartbeat {:?} must be shorter than the election timeout's lower bound {:?}",
                args.heartbeat, args.election_timeout.0
            ),
        );
    }
    let spec = match cluster_spec(&args, dir.clone(), seed) {
        Ok(s) => s,
        Err(e) => return fail(2, e),
    };
    if args.disk_faults {
        // Checked before anything starts: without FUSE or libfaketime there are no disk or clock faults, and
        // running without them silently would make every power cut a no-op.
        if let Err(e) = squall_chaos::disk::available() {
            return fail(2, format!("--disk-faults: {e}"));
        }
        if let Err(e) = crate::cluster::clock::find_libfaketime() {
            return fail(2, format!("--disk-faults: {e}"));
        }
    }
    say(format_args!(
        "squall: cluster directory {} (seed {seed})",
        dir.display()
    ));
    let events = args
        .events
        .clone()
        .unwrap_or_else(|| dir.join("events.jsonl.gz"));
    let events_outside = !events.starts_with(&dir);
    let code = runtime().block_on(crate::app::run(args, spec));
    if remove_after {
        let _ = std::fs::remove_dir_all(&dir);
        say(format_args!(
            "squall: removed cluster directory {} (pass --keep or --dir to keep it)",
            dir.display()
        ));
    } else if dir.exists() {
        say(format_args!(
            "squall: kept cluster directory {}",
            dir.display()
        ));
    }
    if (!remove_after || events_outside) && events.exists() {
        say(format_args!(
            "squall: event log {} (replay it with: squall replay {0})",
            events.display()
        ));
    }
    code
}

/// A line on standard output that may be closed by now (`squall up --headless | head`): `up` must still
/// stop its cluster and clean up, so a failed write is not an error.
pub(crate) fn say(line: std::fmt::Arguments) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// `squall replay`.
pub fn replay(args: ReplayArgs) -> ExitCode {
    match crate::record::player::run_replay(&args.file) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(2, format!("{e:#}")),
    }
}

/// `squall bench`.
pub fn bench(args: BenchArgs) -> ExitCode {
    runtime().block_on(crate::bench::run(args))
}
