//! What each subcommand does, apart from the live dashboard loop (see [`crate::app`]). Shared helpers live in
//! [`crate::setup`], below this module, `app` and `bench`, so the three never import each other in a circle.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use squall_node::client::{ClientError, KvClient};
use squall_node::kv::{KvOp, KvResult};

use crate::cli::{BenchArgs, KvArgs, KvCmd, ReplayArgs, StatusArgs, Target, UpArgs};
use crate::cluster::ClusterFile;
use crate::setup::{cluster_spec, fail, runtime, say};

/// The tick of the nodes `up` starts (squall-node's default `--tick`): no heartbeat can be shorter.
const NODE_TICK: Duration = Duration::from_millis(10);

/// The longest `squall status` waits for any one node.
const STATUS_NODE_WAIT: Duration = Duration::from_secs(1);

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

/// The node kind of the cluster `--dir` names (what its `cluster.json` records; squall's for a file from
/// before kinds were recorded, and for `--peers`), with a warning when its file changed since. `Err` names the
/// kind file that cannot be loaded.
fn target_kind(t: &Target) -> Result<(crate::kind::Kind, Option<String>), String> {
    let record = match (&t.dir, &t.peers) {
        (Some(dir), None) => ClusterFile::read(dir)?.kind,
        _ => None,
    };
    match record {
        Some(r) => crate::kind::Kind::from_record(&r).map_err(|e| {
            format!(
                "the cluster runs node kind `{}`, which cannot be loaded: {e}",
                r.name
            )
        }),
        None => Ok((
            crate::kind::Kind::builtin(crate::kind::DEFAULT).expect("the default kind is built in"),
            None,
        )),
    }
}

/// Where `port` (one of the kind's port names) of each node is: from `cluster.json`'s per-port addresses;
/// `fallback` (the API addresses) for `--peers` and a file from before they were recorded.
fn port_addrs(
    t: &Target,
    port: Option<&str>,
    fallback: BTreeMap<u64, SocketAddr>,
) -> BTreeMap<u64, SocketAddr> {
    let recorded = match (&t.dir, &t.peers, port) {
        (Some(dir), None, Some(port)) => ClusterFile::read(dir)
            .map(|f| f.port_addrs(port))
            .unwrap_or_default(),
        _ => BTreeMap::new(),
    };
    if recorded.is_empty() {
        fallback
    } else {
        recorded
    }
}

/// `squall status`.
pub fn status(args: StatusArgs) -> ExitCode {
    let (cluster_id, addrs) = match resolve_target(&args.target) {
        Ok(t) => t,
        Err(e) => return fail(2, e),
    };
    let (kind, warning) = match target_kind(&args.target) {
        Ok(k) => k,
        Err(e) => return fail(2, e),
    };
    if let Some(w) = warning {
        eprintln!("squall: {w}");
    }
    let addrs = port_addrs(&args.target, kind.status_port(), addrs);
    // What cluster.json knows of a node that does not answer (a paused node keeps its pid).
    let known_pids: BTreeMap<u64, u32> = args
        .target
        .dir
        .as_deref()
        .and_then(|d| ClusterFile::read(d).ok())
        .map(|f| {
            f.nodes
                .iter()
                .filter_map(|n| Some((n.id, n.pid?)))
                .collect()
        })
        .unwrap_or_default();
    // Every node is asked at once, and none is waited for longer than this: a paused node answers nothing.
    let timeout = args.target.timeout.min(STATUS_NODE_WAIT);
    // Through the kind's status driver: a report with the full picture (squall's) is shown whole, one with
    // only the brief fields with `—` (`null` in JSON) for what the kind does not report.
    let reports = runtime().block_on(async {
        let mut handles = Vec::new();
        for (&id, &addr) in &addrs {
            let mut source = kind.status_once(addr, timeout);
            handles.push((id, addr, tokio::spawn(async move { source.poll().await })));
        }
        let mut out = Vec::new();
        for (id, addr, h) in handles {
            out.push((id, addr, h.await.unwrap_or_else(|e| Err(e.to_string()))));
        }
        out
    });
    let answered = reports.iter().filter(|(_, _, r)| r.is_ok()).count();
    let briefs: BTreeMap<u64, crate::kind::drivers::StatusReport> = reports
        .iter()
        .filter_map(|(id, _, r)| Some((*id, r.as_ref().ok()?.clone())))
        .filter(|(_, r)| r.detail.is_none())
        .collect();
    let results: Vec<(
        u64,
        SocketAddr,
        Result<squall_node::rpc::NodeStatus, String>,
    )> = reports
        .into_iter()
        .map(|(id, addr, r)| {
            let full = r.and_then(|r| {
                r.detail
                    .ok_or_else(|| "the kind reports only brief fields".to_string())
            });
            (id, addr, full)
        })
        .collect();
    // The configuration as the leader knows it (the highest term's leader), else the most recent one any node
    // has (highest configuration index).
    let statuses: Vec<&squall_node::rpc::NodeStatus> = results
        .iter()
        .filter_map(|(_, _, r)| r.as_ref().ok())
        .collect();
    let config_source = statuses
        .iter()
        .filter(|s| s.core.role == squall_node::raft::Role::Leader)
        .max_by_key(|s| s.core.term)
        .or_else(|| {
            statuses
                .iter()
                .filter(|s| !s.core.config.voters.is_empty())
                .max_by_key(|s| (s.core.config_index, s.core.config_committed))
        })
        .copied();
    let membership =
        |id: u64, own: Option<&squall_node::rpc::NodeStatus>| -> Option<&'static str> {
            let config = &config_source?.core.config;
            Some(match crate::state::role_in(config, id)? {
                // A node started by `add` has no configuration of its own until a leader sends it one.
                crate::state::MemberRole::Removed
                    if own.is_some_and(|s| s.core.config.voters.is_empty()) =>
                {
                    "joining"
                }
                // The leader's latest configuration leaves it out but has not committed: not removed yet.
                crate::state::MemberRole::Removed if !config_source?.core.config_committed => {
                    "removing"
                }
                m => m.as_str(),
            })
        };
    if args.json {
        let nodes: Vec<serde_json::Value> = results
            .iter()
            .map(|(id, addr, r)| match r {
                Ok(s) => serde_json::json!({
                    "id": id, "addr": addr.to_string(), "reachable": true, "pid": s.pid,
                    "role": s.core.role.as_str(), "recovering": s.recovering,
                    "recovery": recovery_json(s),
                    "term": s.core.term, "vote": s.core.vote,
                    // A Paxos node: its promised ballot as `round.proposer`, and its parts (`term` above stays
                    // the packed number scripts may read).
                    "ballot": s.paxos.as_ref().map(|p| p.promised.to_string()),
                    "ballot_round": s.paxos.as_ref().map(|p| p.promised.round),
                    "ballot_proposer": s.paxos.as_ref().map(|p| p.promised.proposer),
                    "leader": s.core.leader, "commit_index": s.core.commit_index,
                    "applied_index": s.applied_index, "last_log_index": s.core.last_log_index,
                    "last_log_term": s.core.last_log_term, "snapshot_index": s.core.snapshot_index,
                    "membership": membership(*id, Some(s)),
                    "own_config": {
                        "voters": s.core.config.voters, "learners": s.core.config.learners,
                        "index": s.core.config_index, "committed": s.core.config_committed,
                    },
                }),
                Err(_) if briefs.contains_key(id) => {
                    let b = &briefs[id];
                    serde_json::json!({
                        "id": id, "addr": addr.to_string(), "reachable": true,
                        "pid": b.pid.or(known_pids.get(id).copied()),
                        "role": b.role.map(|r| if b.learner { "learner" } else { r.as_str() }),
                        "term": b.term,
                        "leader": b.leader.flatten(), "leader_known": b.leader.is_some(),
                        "commit_index": b.commit, "applied_index": b.applied,
                        "last_log_index": null,
                        "membership": b.learner.then_some("learner"),
                        // Received ("in") and sent ("out") by message type, where the kind counts them.
                        "messages": b.messages,
                    })
                }
                Err(e) => serde_json::json!({
                    "id": id, "addr": addr.to_string(), "reachable": false, "error": e,
                    "pid": known_pids.get(id), "role": null, "term": null, "leader": null,
                    "commit_index": null, "last_log_index": null,
                    "membership": membership(*id, None),
                }),
            })
            .collect();
        let config = config_source.map(|s| {
            serde_json::json!({
                "voters": s.core.config.voters, "learners": s.core.config.learners,
                "index": s.core.config_index, "committed": s.core.config_committed,
                "from": s.core.id,
            })
        });
        let doc = serde_json::json!({ "cluster_id": cluster_id, "config": config, "nodes": nodes });
        println!("{}", serde_json::to_string_pretty(&doc).expect("JSON"));
    } else {
        // Messages by type, where the kind counts them: one more column, at the end.
        let counted = briefs.values().any(|b| b.messages.is_some());
        println!(
            "{:<5} {:>8} {:<13} {:<8} {:>6} {:>7} {:>8} {:>8}{}",
            "NODE",
            "PID",
            "ROLE",
            "MEMBER",
            // Paxos nodes show their promised ballot (round.proposer) where Raft nodes show a term.
            if statuses.iter().any(|s| s.paxos.is_some()) {
                "BALLOT"
            } else {
                "TERM"
            },
            "LEADER",
            "COMMIT",
            "LAST",
            if counted {
                "  MESSAGES (received/sent by type)"
            } else {
                ""
            }
        );
        for (id, addr, r) in &results {
            match r {
                Ok(s) => println!(
                    "{:<5} {:>8} {:<13} {:<8} {:>6} {:>7} {:>8} {:>8}",
                    id,
                    s.pid,
                    crate::state::role_label(s),
                    membership(*id, Some(s)).unwrap_or("-"),
                    s.term_label(),
                    s.core
                        .leader
                        .map(|l| l.to_string())
                        .unwrap_or_else(|| "-".into()),
                    s.core.commit_index,
                    s.core.last_log_index
                ),
                Err(_) if briefs.contains_key(id) => {
                    let b = &briefs[id];
                    let dash = |v: Option<u64>| v.map_or("—".to_string(), |v| v.to_string());
                    println!(
                        "{:<5} {:>8} {:<13} {:<8} {:>6} {:>7} {:>8} {:>8}{}",
                        id,
                        b.pid
                            .or(known_pids.get(id).copied())
                            .map_or("-".to_string(), |p| p.to_string()),
                        // etcd says a learner follows; squall shows what it is.
                        b.role
                            .map_or("—", |r| if b.learner { "learner" } else { r.as_str() }),
                        if b.learner { "learner" } else { "—" },
                        dash(b.term),
                        match b.leader {
                            Some(Some(l)) => l.to_string(),
                            Some(None) => "-".to_string(),
                            None => "—".to_string(),
                        },
                        dash(b.commit),
                        "—",
                        b.messages
                            .as_ref()
                            .map_or(String::new(), |m| format!("  {}", m.describe()))
                    )
                }
                Err(e) => {
                    let pid = known_pids
                        .get(id)
                        .map(|p| p.to_string())
                        .unwrap_or_else(|| "-".into());
                    println!(
                        "{id:<5} {pid:>8} not answering within {} at {addr} (paused, hung or stopped): {e}",
                        crate::units::duration(timeout)
                    )
                }
            }
        }
    }
    if answered == 0 {
        return fail(
            1,
            format!(
                "no node answered within {}; is the cluster running?",
                crate::units::duration(timeout)
            ),
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
        KvCmd::Put { key, value } => {
            let value = match value {
                Some(v) => v,
                None => match read_value_from_stdin() {
                    Ok(v) => v,
                    Err(e) => return fail(2, e),
                },
            };
            KvOp::Put { key, value }
        }
        KvCmd::Get { key } => KvOp::Get { key },
        KvCmd::Del { key } => KvOp::Delete { key },
        KvCmd::Cas { key, old, new } => KvOp::Cas {
            key,
            expected: (old != "-").then_some(old),
            new,
        },
        KvCmd::Incr { key, by } => KvOp::Incr { key, by },
    };
    if let Err(e) = op.check_size() {
        return fail(2, e);
    }
    let (kind, warning) = match target_kind(&args.target) {
        Ok(k) => k,
        Err(e) => return fail(2, e),
    };
    if let Some(w) = warning {
        eprintln!("squall: {w}");
    }
    // squall's own key-value API answers more than the workloads' seam carries (the previous value, deletes):
    // its client is used whole; any other kind's client goes through the kind's driver.
    if kind.client.name != "squall" {
        let addrs = port_addrs(&args.target, kind.client_port(), addrs);
        return kv_through_kind(&kind, addrs, op, args.target.timeout);
    }
    let mut client = KvClient::new(addrs);
    // The leader `squall up` last saw: asked first, so a paused or slow follower costs nothing.
    if args.target.peers.is_none()
        && let Some(leader) = args
            .target
            .dir
            .as_deref()
            .and_then(|d| ClusterFile::read(d).ok())
            .and_then(|f| f.leader)
    {
        client.prefer(leader);
    }
    client.op_timeout = args.target.timeout;
    client.call_timeout = args.target.timeout.min(Duration::from_secs(1));
    let result = runtime().block_on(client.execute(op));
    match result {
        Ok(KvResult::Value(Some(v))) => {
            // The value as stored; a newline is added only when it has none, so `put` from a file and `get`
            // round-trip exactly.
            if v.ends_with('\n') {
                print!("{v}");
            } else {
                println!("{v}");
            }
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
        Err(e @ ClientError::TooLarge(_)) => fail(2, e),
        Err(e) => fail(1, e),
    }
}

/// `squall kv` for a kind whose client is not squall's: read, write, cas and increment through the kind's
/// [`crate::kind::drivers::KvClient`]; an outcome that is not known is said as unknown, exit 1.
fn kv_through_kind(
    kind: &crate::kind::Kind,
    addrs: BTreeMap<u64, SocketAddr>,
    op: KvOp,
    timeout: Duration,
) -> ExitCode {
    use crate::kind::drivers::{KvAnswer, KvOutcome, KvRequest};
    let req = match op {
        KvOp::Get { key } => KvRequest::Read { key },
        KvOp::Put { key, value } => KvRequest::Write { key, value },
        KvOp::Cas {
            key,
            expected: Some(from),
            new,
        } => KvRequest::Cas { key, from, to: new },
        KvOp::Incr { key, by } => KvRequest::Incr { key, by },
        other => {
            let what = match other {
                KvOp::Delete { .. } => "del",
                _ => "cas from an absent value (`-`)",
            };
            return fail(
                2,
                format!(
                    "node kind `{}`'s client ({}) cannot do `{what}` on key `{}`; it reads, writes, \
                     compares-and-sets from a value and increments",
                    kind.name,
                    kind.client.name,
                    other.key()
                ),
            );
        }
    };
    let mut client = kind.kv_client(addrs);
    let outcome = runtime().block_on(async {
        tokio::time::timeout(timeout, client.execute(req))
            .await
            .unwrap_or_else(|_| {
                KvOutcome::Info(format!(
                    "no answer within {}",
                    crate::units::duration(timeout)
                ))
            })
    });
    match outcome {
        KvOutcome::Done(KvAnswer::Value(Some(v))) => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        KvOutcome::Done(KvAnswer::Value(None)) => {
            eprintln!("squall: the key is absent");
            ExitCode::from(1)
        }
        KvOutcome::Done(KvAnswer::Written | KvAnswer::Swapped(true)) => {
            println!("OK");
            ExitCode::SUCCESS
        }
        KvOutcome::Done(KvAnswer::Swapped(false)) => {
            println!("NOT SWAPPED");
            ExitCode::from(1)
        }
        KvOutcome::Done(KvAnswer::Counter(n)) => {
            println!("{n}");
            ExitCode::SUCCESS
        }
        KvOutcome::Fail(e) => fail(1, format!("did not happen: {e}")),
        KvOutcome::Info(e) => fail(1, format!("outcome unknown (it may have happened): {e}")),
    }
}

/// The value of `squall kv put KEY` without VALUE: all of standard input, as it is (no newline removed).
/// Reading stops one byte past the value limit, so a huge input is refused without being held whole.
fn read_value_from_stdin() -> Result<String, String> {
    use std::io::Read as _;
    let limit = squall_node::rpc::MAX_VALUE_BYTES;
    let mut buf = Vec::new();
    std::io::stdin()
        .lock()
        .take(limit as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read the value from standard input: {e}"))?;
    if buf.len() > limit {
        let mut rest = 0u64;
        if let Ok(n) = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink()) {
            rest = n;
        }
        return Err(format!(
            "value too large: {} bytes, the limit is {limit}",
            buf.len() as u64 + rest
        ));
    }
    String::from_utf8(buf).map_err(|e| {
        format!(
            "the value on standard input is not UTF-8 (invalid byte at offset {}); squall kv stores text",
            e.utf8_error().valid_up_to()
        )
    })
}

/// `squall up`.
pub fn up(args: UpArgs) -> ExitCode {
    let mut args = crate::setup::effective(&args);
    let seed = args.seed.unwrap_or_else(rand::random);
    if let Some(d) = &args.dir
        && d.exists()
        && !d.is_dir()
    {
        return fail(
            2,
            format!(
                "--dir {}: that is a file, not a directory; name a directory (squall creates it when it is missing)",
                d.display()
            ),
        );
    }
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
                "--heartbeat {} is shorter than a node's {} tick: use at least 10ms",
                crate::units::duration(args.heartbeat),
                crate::units::duration(NODE_TICK)
            ),
        );
    }
    if args.heartbeat >= args.election_timeout.0 {
        return fail(
            2,
            format!(
                "--heartbeat {} must be shorter than the election timeout's lower bound {}",
                crate::units::duration(args.heartbeat),
                crate::units::duration(args.election_timeout.0)
            ),
        );
    }
    if args.headless && args.record.is_some() {
        return fail(
            2,
            "--record records the dashboard, and --headless has none: drop one of them \
             (the headless session's event log is kept either way; replay it with `squall replay`)",
        );
    }
    let spec = match cluster_spec(&args, dir.clone(), seed) {
        Ok(s) => s,
        Err(e) => return fail(2, e),
    };
    let events = match session_log_path(&args, &dir, remove_after, &spec.cluster_id) {
        Ok(p) => p,
        Err(e) => return fail(2, e),
    };
    args.events = Some(events.clone());
    if args.disk_faults && args.hosts.is_none() && args.host.is_none() {
        // Checked before anything starts: without FUSE there are no disk faults, and running without them
        // silently would make every power cut a no-op. (Clock faults need nothing: squall ships its shim.) With
        // --hosts each host is asked instead, when the cluster starts.
        if let Err(e) = squall_chaos::disk::available() {
            return fail(2, format!("--disk-faults: {e}"));
        }
    }
    if let Ok(Some(roster)) = crate::cluster::files::Roster::read(&dir)
        && roster.changed()
    {
        let joined: Vec<u64> = roster
            .current()
            .into_iter()
            .filter(|id| roster.joined.contains(id))
            .collect();
        let removed: Vec<u64> = roster.removed.iter().copied().collect();
        let pending: Vec<u64> = roster
            .pending
            .difference(&roster.removed)
            .copied()
            .collect();
        say(format_args!(
            "squall: {} records membership changes: starting nodes {} as recorded (-n is not used){}{}{}",
            dir.join(crate::cluster::files::MEMBERS_FILE).display(),
            crate::cluster::membership::id_list(&roster.current()),
            if joined.is_empty() {
                String::new()
            } else {
                format!(
                    "; {} with --join",
                    crate::cluster::membership::id_list(&joined)
                )
            },
            if removed.is_empty() {
                String::new()
            } else {
                format!(
                    "; removed {} stay stopped",
                    crate::cluster::membership::id_list(&removed)
                )
            },
            if pending.is_empty() {
                String::new()
            } else {
                format!(
                    "; {} never joined (the add did not commit) and stay stopped",
                    crate::cluster::membership::id_list(&pending)
                )
            },
        ));
    }
    // Demonstration switches: what each turns off, said once so nobody mistakes the result for Raft's.
    let switches: Vec<(&str, &str)> = [
        (
            args.no_pre_vote,
            "--no-pre-vote",
            "a node rejoining after a partition disrupts the leader",
        ),
        (
            args.no_check_quorum,
            "--no-check-quorum",
            "a leader cut off from a majority keeps leading",
        ),
    ]
    .into_iter()
    .filter_map(|(on, flag, effect)| on.then_some((flag, effect)))
    .collect();
    if !switches.is_empty() {
        let flags: Vec<&str> = switches.iter().map(|(f, _)| *f).collect();
        let effects: Vec<&str> = switches.iter().map(|(_, e)| *e).collect();
        say(format_args!(
            "squall: demonstration switches {} on every node: {}",
            flags.join(" "),
            effects.join("; ")
        ));
    }
    if args.snapshot_every == 0 {
        say(format_args!(
            "squall: snapshots off (--snapshot-every 0): every node's log grows for the whole session"
        ));
    }
    // Said once the session has started: a `squall up` refused before (a workload the kind cannot run, a
    // directory it cannot read, nodes that cannot start) names no directory or log it never wrote (F12).
    let started = || {
        say(format_args!(
            "squall: cluster directory {} (seed {seed}); event log {}",
            dir.display(),
            events.display()
        ))
    };
    let ended = runtime().block_on(crate::app::run(args, spec, started));
    if remove_after {
        say(format_args!(
            "squall: removing cluster directory {} (node data and logs; pass --keep or --dir to keep it)",
            dir.display()
        ));
        let _ = std::fs::remove_dir_all(&dir);
    } else if dir.exists() {
        say(format_args!(
            "squall: kept cluster directory {}",
            dir.display()
        ));
    }
    if events.exists() {
        say(format_args!(
            "squall: event log {} (replay it with: squall replay {0})",
            events.display()
        ));
    }
    match ended {
        Ok(code) => code,
        // Said when it happened; now, with every node stopped, what to do.
        Err(broken) => fail(
            crate::session::Broken::EXIT,
            format!(
                "the session ended on an error ({broken}); {}",
                broken.advice(&dir, !remove_after)
            ),
        ),
    }
}

/// Where this session's event log goes: `--events FILE`, else `events.jsonl.gz` in a cluster directory that
/// is kept, else (a temporary cluster directory) the durable [`sessions_dir`]. Never an existing file: the
/// next free name of the series `events.jsonl.gz`, `events-2.jsonl.gz`, ... is taken instead.
pub fn session_log_path(
    args: &UpArgs,
    dir: &std::path::Path,
    dir_is_temporary: bool,
    cluster_id: &str,
) -> Result<PathBuf, String> {
    let base = match (&args.events, dir_is_temporary) {
        (Some(f), _) => {
            if f.is_dir() {
                return Err(format!(
                    "--events {}: that is a directory; name a file such as {}",
                    f.display(),
                    f.join("events.jsonl.gz").display()
                ));
            }
            f.clone()
        }
        (None, false) => dir.join("events.jsonl.gz"),
        (None, true) => {
            let sessions = sessions_dir();
            std::fs::create_dir_all(&sessions).map_err(|e| {
                format!(
                    "cannot create {} to keep the event log in: {e}; pass --events FILE or --dir DIR",
                    sessions.display()
                )
            })?;
            let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
                .to_string()
                .replace(':', "");
            sessions.join(format!("{cluster_id}-{stamp}.jsonl.gz"))
        }
    };
    if let Some(parent) = base.parent().filter(|p| !p.as_os_str().is_empty())
        && !parent.is_dir()
        && !base.starts_with(dir)
    {
        return Err(format!(
            "--events {}: directory {} does not exist; create it or name a file elsewhere",
            base.display(),
            parent.display()
        ));
    }
    Ok(crate::record::eventlog::next_free_path(&base))
}

/// Where the event logs of sessions without a kept cluster directory are kept:
/// `$XDG_STATE_HOME/squall/sessions`, else `~/.local/state/squall/sessions`, else under the temp dir.
pub fn sessions_dir() -> PathBuf {
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".local/state"))
        })
        .unwrap_or_else(std::env::temp_dir);
    state.join("squall").join("sessions")
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

/// `squall kinds`: one line per built-in node kind — its name, whether its program is found here (`ready`, or
/// `missing` with what to do), and its description.
pub fn kinds() -> ExitCode {
    for (name, _) in crate::kind::BUILTINS {
        let kind = crate::kind::Kind::builtin(name).expect("a built-in kind loads");
        let found = match kind.program_path() {
            Ok(p) => format!("ready ({})", p.display()),
            Err(e) => format!("missing: {}", e.message),
        };
        say(format_args!("{name}\t{}\t{found}", kind.description));
    }
    ExitCode::SUCCESS
}

/// `status --json`'s `recovery` object of one node: what a recovering node waits for (`waiting_for`, the
/// sentence the console's status line ends with, and `waiting_for_voters`, the voters whose terms it still
/// needs), and how many recoveries its process finished and how the latest ended (`recoveries`,
/// `recovered_by`). `null` for a node that neither recovers nor recovered.
fn recovery_json(s: &squall_node::rpc::NodeStatus) -> serde_json::Value {
    use squall_node::raft::RecoveryWait;
    if !s.recovering && s.recovered.is_none() {
        return serde_json::Value::Null;
    }
    let wait = s.recovery_wait.as_ref().filter(|_| s.recovering);
    let voters = match wait {
        Some(RecoveryWait::Terms { voters }) => voters.clone(),
        _ => Vec::new(),
    };
    serde_json::json!({
        "recovering": s.recovering,
        "waiting_for": wait.map(|w| w.to_string()),
        "waiting_for_voters": voters,
        "recoveries": s.recovered.as_ref().map_or(0, |r| r.count),
        "recovered_by": s.recovered.as_ref().map(|r| r.by.to_string()),
    })
}
