//! `squall bench`: write throughput and latency at several concurrency levels, and failover time, over a real
//! 3-node cluster (real processes, fsync on, every peer link through the idle proxy). Ends with one JSON line.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use squall_node::client::KvClient;
use squall_node::kv::KvOp;

use crate::cli::BenchArgs;
use crate::cluster::command::{Command, Target};
use crate::cluster::{Cluster, ClusterSpec};
use crate::session::{SessionConfig, start_session};

/// The `p` quantile of `values` (0 when empty), from an HDR histogram (3 significant figures).
fn percentile(values: &[u64], p: f64) -> u64 {
    if values.is_empty() {
        return 0;
    }
    let mut h =
        hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds");
    for &v in values {
        h.saturating_record(v.max(1));
    }
    h.value_at_quantile(p)
}

async fn wait_for_leader(cluster: &Cluster, timeout: Duration) -> Option<(u64, u64)> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(l) = cluster.leader() {
            return Some(l);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

/// Polls (through the cluster's own status pollers) until `node` is back and has applied everything the
/// leader had committed when the wait began.
async fn wait_caught_up(cluster: &Cluster, node: u64) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut target = None;
    while Instant::now() < deadline {
        if let Some((l, _)) = cluster.leader()
            && l != node
            && let (Some(ls), Some(ns)) = (cluster.status(l), cluster.status(node))
        {
            let goal = *target.get_or_insert(ls.core.commit_index);
            if ns.applied_index >= goal {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(format!(
        "node {node} did not catch up within 20 s after its restart"
    ))
}

/// The session of the bench's 3-node cluster in `dir` (default timings, seed 42, no workload, no event log),
/// with or without the fault filesystem. `Err` names a `--node-bin` that is not a file.
pub(crate) fn bench_session(
    args: &BenchArgs,
    dir: std::path::PathBuf,
    disk_faults: bool,
) -> Result<SessionConfig, String> {
    let kind = crate::setup::load_kind(None)?;
    let (node_program, node_prefix_args) =
        crate::setup::node_program(&kind, args.node_bin.as_deref())?;
    Ok(SessionConfig {
        spec: ClusterSpec {
            nodes: 3,
            dir,
            kind,
            node_program,
            node_prefix_args,
            options: Vec::new(),
            cluster_id: crate::setup::cluster_id(42),
            election_timeout: (Duration::from_millis(150), Duration::from_millis(300)),
            heartbeat: Duration::from_millis(50),
            snapshot_every: 10_000,
            seed: 42,
            rate: 1,
            disk_faults,
            unsafe_no_fsync: false,
            hosts: None,
        },
        events: None,
        workload: None,
        node_bin: args.node_bin.clone(),
        dump_screens: None,
        node_args: Vec::new(),
    })
}

/// Starts the bench's session; its events are drained unread (the benches read the cluster's figures, not
/// the feed). `Err` is the message and the exit code: 2 for a bad flag, 1 for a cluster that did not start.
pub(crate) async fn start(config: Result<SessionConfig, String>) -> Result<Cluster, (u8, String)> {
    let config = config.map_err(|e| (2, e))?;
    let (cluster, _session, mut rx) = start_session(config).await.map_err(|e| (1, e))?;
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    Ok(cluster)
}

/// Runs the write benchmark and prints its figures (human lines, then one JSON line).
pub async fn run(args: BenchArgs) -> ExitCode {
    let dir = std::env::temp_dir().join(format!("squall-bench-{}", std::process::id()));
    let cluster = match start(bench_session(&args, dir.clone(), false)).await {
        Ok(c) => c,
        Err((code, e)) => return crate::setup::fail(code, e),
    };
    let result = measure(&cluster, &args).await;
    cluster.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    match result {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => crate::setup::fail(1, e),
    }
}

/// Throughput at each of `args.clients`, then `args.failovers` failover trials, as one JSON value.
pub(crate) async fn measure(
    cluster: &Cluster,
    args: &BenchArgs,
) -> Result<serde_json::Value, String> {
    wait_for_leader(cluster, Duration::from_secs(10))
        .await
        .ok_or("no leader within 10 s")?;
    let mut levels = Vec::new();
    let mut one_client_p50 = None;
    for &clients in &args.clients {
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        let started = Instant::now();
        for c in 0..clients {
            let addrs = cluster.api_addrs();
            let stop = stop.clone();
            tasks.push(tokio::spawn(async move {
                let mut client = KvClient::new(addrs);
                let mut lat = Vec::new();
                let mut errors = 0u64;
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let t = Instant::now();
                    match client
                        .execute(KvOp::Put {
                            key: format!("c{c}-{}", i % 100),
                            value: format!("{i}"),
                        })
                        .await
                    {
                        Ok(_) => lat.push(t.elapsed().as_micros() as u64),
                        Err(_) => errors += 1,
                    }
                }
                (lat, errors)
            }));
        }
        tokio::time::sleep(args.duration).await;
        stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        let mut errors = 0;
        for t in tasks {
            let (lat, e) = t.await.map_err(|e| e.to_string())?;
            all.extend(lat);
            errors += e;
        }
        let secs = started.elapsed().as_secs_f64();
        all.sort_unstable();
        let rate = all.len() as f64 / secs;
        let (p50, p99) = (percentile(&all, 0.5), percentile(&all, 0.99));
        eprintln!(
            "clients {clients:>3}: {rate:>8.0} writes/s  p50 {:.2} ms  p99 {:.2} ms  ({} ok, {errors} failed)",
            p50 as f64 / 1000.0,
            p99 as f64 / 1000.0,
            all.len()
        );
        let mut level = serde_json::json!({
            "clients": clients, "writes_per_sec": rate.round(), "p50_ms": p50 as f64 / 1000.0,
            "p99_ms": p99 as f64 / 1000.0, "ok": all.len(), "failed": errors,
        });
        if clients == 1 {
            // The nodes keep their last few thousand samples per stage: with one client first, that is this
            // level's writes (and the few before it).
            if let Some((leader, _)) = cluster.leader() {
                let stages = super::write_path::stages(cluster).await;
                // A node that keeps no stage timings (squall's Paxos node) has no breakdown to show.
                if stages.iter().any(|(_, s)| !s.is_empty()) {
                    let (lines, json) = super::write_path::breakdown(leader, &stages, p50);
                    for line in lines {
                        eprintln!("{line}");
                    }
                    level["write_path"] = json;
                }
            }
            one_client_p50 = Some(p50);
        }
        levels.push(level);
    }

    // The floor, on this machine now, in the directory the nodes write to.
    let floor = super::write_path::measure_floor(cluster.dir()).await?;
    eprintln!(
        "floor: fdatasync of a {}-byte record {:.3} ms + 2 proxy round trips of {:.3} ms = {:.3} ms",
        128,
        floor.fsync_us as f64 / 1000.0,
        floor.proxy_round_trip_us as f64 / 1000.0,
        floor.total_us() as f64 / 1000.0
    );
    if let Some(over) = floor.overwrite_fsync_us {
        eprintln!(
            "floor with the node's preallocated WAL: fdatasync overwriting fallocated space {:.3} ms = {:.3} ms",
            over as f64 / 1000.0,
            floor.overwrite_total_us().unwrap_or(0) as f64 / 1000.0
        );
    }
    if let Some(p50) = one_client_p50 {
        eprintln!(
            "1-client p50 {:.3} ms is {:.2}x the floor (target: within 2x, {:.3} ms)",
            p50 as f64 / 1000.0,
            p50 as f64 / floor.total_us().max(1) as f64,
            2.0 * floor.total_us() as f64 / 1000.0
        );
        if let Some(total) = floor.overwrite_total_us() {
            eprintln!(
                "1-client p50 is {:.2}x the floor with the preallocated overwrite",
                p50 as f64 / total.max(1) as f64
            );
        }
    }

    let mut failovers = Vec::new();
    for trial in 0..args.failovers {
        let (leader, term) = wait_for_leader(cluster, Duration::from_secs(10))
            .await
            .ok_or("no leader")?;
        let mut client = KvClient::new(cluster.api_addrs());
        client.op_timeout = Duration::from_secs(10);
        client.call_timeout = Duration::from_millis(100);
        // Retry every few milliseconds, so the figure is the cluster's recovery, not the client's backoff.
        client.max_backoff = Duration::from_millis(5);
        // Warm the client up so it knows the leader and has its connections open.
        client
            .execute(KvOp::Put {
                key: "failover".into(),
                value: "warm".into(),
            })
            .await
            .map_err(|e| e.to_string())?;
        let leader_status = cluster.status(leader);
        let t0 = Instant::now();
        cluster
            .perform(Command::Kill(Target::Node(leader)))
            .await
            .into_result()?;
        client
            .execute(KvOp::Put {
                key: "failover".into(),
                value: format!("{trial}"),
            })
            .await
            .map_err(|e| format!("failover trial {trial}: {e}"))?;
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        // A Paxos leader's term is its ballot packed into one number: say `ballot 1.1`, not `term 65537`.
        let led = match &leader_status {
            Some(s) if s.paxos.is_some() => {
                format!("ballot {}", squall_node::paxos::Ballot::unpack(term))
            }
            _ => format!("term {term}"),
        };
        eprintln!(
            "failover {trial:>2}: killed leader {leader} ({led}); next write committed after {ms:.0} ms"
        );
        failovers.push(ms);
        cluster
            .perform(Command::Restart(Target::Node(leader)))
            .await
            .into_result()?;
        // Let the restarted node rejoin before the next trial, so every trial starts from three live nodes
        // that hold the whole log.
        wait_caught_up(cluster, leader).await?;
    }
    let mut sorted: Vec<u64> = failovers.iter().map(|m| (*m * 1000.0) as u64).collect();
    sorted.sort_unstable();
    let (f50, f99) = (
        percentile(&sorted, 0.5) as f64 / 1000.0,
        percentile(&sorted, 0.99) as f64 / 1000.0,
    );
    if !failovers.is_empty() {
        eprintln!(
            "failover over {} trials: median {f50:.0} ms, p99 {f99:.0} ms",
            failovers.len()
        );
    }
    Ok(serde_json::json!({
        "bench": "squall", "nodes": 3, "fsync": true, "levels": levels, "floor": floor.json(),
        "failover": { "trials": failovers.len(), "median_ms": f50, "p99_ms": f99, "all_ms": failovers },
    }))
}
