//! `squall bench --node-kind KIND`: another implementation's write throughput through squall's proxies against
//! the same implementation with its peers linked directly, side by side in one run. Both clusters are three
//! nodes started from the kind's own command line; the direct one is told its peers' real addresses where the
//! session tells them squall's proxies (for a per-destination kind such as etcd, each node's advertised
//! address is then its own peer port). Writes go through the kind's client driver, the same one the lin-kv
//! workload uses; each client writes its own keys back to back. Ends with one JSON line.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::cli::BenchArgs;
use crate::kind::Kind;
use crate::kind::drivers::{KvAnswer, KvOutcome, KvRequest};
use crate::kind::launch::{InitialState, NodeFacts};

/// One concurrency level's figures.
struct Level {
    rate: f64,
    p50_us: u64,
    p99_us: u64,
    ok: usize,
    failed: u64,
}

/// Runs the comparison and prints its figures (human lines, then one JSON line).
pub async fn run(args: BenchArgs) -> ExitCode {
    let name = args.node_kind.clone().unwrap_or_default();
    let kind = match crate::setup::load_kind(Some(&name)) {
        Ok(k) => k,
        Err(e) => return crate::setup::fail(2, e),
    };
    let dir = std::env::temp_dir().join(format!("squall-bench-kind-{}", std::process::id()));
    let result = compare(&kind, &args, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    match result {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err((code, e)) => crate::setup::fail(code, e),
    }
}

async fn compare(
    kind: &Kind,
    args: &BenchArgs,
    dir: &std::path::Path,
) -> Result<serde_json::Value, (u8, String)> {
    // Direct first: its processes are gone before the session's start.
    let direct = {
        let nodes = DirectCluster::start(kind, args, &dir.join("direct"))
            .await
            .map_err(|e| (1, e))?;
        eprintln!("{} nodes linked directly:", kind.name);
        let levels = levels(kind, &nodes.client_addrs, args).await;
        nodes.stop();
        levels
    };
    let proxied = {
        let mut config = super::writes::bench_session(args, dir.join("proxied"), false);
        if let Ok(c) = &mut config {
            let (program, prefix) =
                crate::setup::node_program(kind, args.node_bin.as_deref()).map_err(|e| (2, e))?;
            c.spec.kind = kind.clone();
            c.spec.node_program = program;
            c.spec.node_prefix_args = prefix;
        }
        let cluster = super::writes::start(config).await?;
        let ready = wait_leader(kind, &cluster.api_addrs()).await;
        eprintln!("{} nodes through squall's proxies:", kind.name);
        let levels = match ready {
            Ok(()) => Ok(levels(kind, &cluster.api_addrs(), args).await),
            Err(e) => Err((1, e)),
        };
        cluster.shutdown().await;
        levels?
    };
    let mut out = Vec::new();
    for ((clients, d), p) in direct.iter().zip(proxied.iter().map(|(_, l)| l)) {
        let ratio = if d.rate > 0.0 { p.rate / d.rate } else { 0.0 };
        eprintln!(
            "clients {clients:>3}: direct {:>7.0} writes/s, proxied {:>7.0} writes/s: {ratio:.2} of direct",
            d.rate, p.rate
        );
        out.push(serde_json::json!({
            "clients": clients,
            "direct": level_json(d),
            "proxied": level_json(p),
            "proxied_over_direct": (ratio * 1000.0).round() / 1000.0,
        }));
    }
    Ok(serde_json::json!({
        "bench": "node-kind",
        "kind": kind.name,
        "seconds_per_level": args.duration.as_secs_f64(),
        "levels": out,
    }))
}

fn level_json(l: &Level) -> serde_json::Value {
    serde_json::json!({
        "writes_per_sec": l.rate.round(), "p50_ms": l.p50_us as f64 / 1000.0,
        "p99_ms": l.p99_us as f64 / 1000.0, "ok": l.ok, "failed": l.failed,
    })
}

/// Measures every level of `args.clients` against the nodes at `addrs`.
async fn levels(
    kind: &Kind,
    addrs: &BTreeMap<u64, SocketAddr>,
    args: &BenchArgs,
) -> Vec<(usize, Level)> {
    let mut out = Vec::new();
    for &clients in &args.clients {
        let level = level(kind, addrs, clients, args.duration).await;
        eprintln!(
            "  clients {clients:>3}: {:>8.0} writes/s  p50 {:.2} ms  p99 {:.2} ms  ({} ok, {} failed)",
            level.rate,
            level.p50_us as f64 / 1000.0,
            level.p99_us as f64 / 1000.0,
            level.ok,
            level.failed
        );
        out.push((clients, level));
    }
    out
}

async fn level(
    kind: &Kind,
    addrs: &BTreeMap<u64, SocketAddr>,
    clients: usize,
    duration: Duration,
) -> Level {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let mut client = kind.kv_client(addrs.clone());
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut failed = 0u64;
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let t = Instant::now();
                let req = KvRequest::Write {
                    key: format!("bench-c{c}-{}", i % 100),
                    value: i.to_string(),
                };
                match client.execute(req).await {
                    KvOutcome::Done(KvAnswer::Written) => lat.push(t.elapsed().as_micros() as u64),
                    _ => failed += 1,
                }
            }
            (lat, failed)
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    let mut failed = 0;
    for t in tasks {
        if let Ok((lat, f)) = t.await {
            all.extend(lat);
            failed += f;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let at = |p: f64| {
        all.get(((all.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0)
    };
    Level {
        rate: all.len() as f64 / secs,
        p50_us: at(0.5),
        p99_us: at(0.99),
        ok: all.len(),
        failed,
    }
}

/// Waits until every node at `addrs` names a leader (30 s at most).
async fn wait_leader(kind: &Kind, addrs: &BTreeMap<u64, SocketAddr>) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    for (id, addr) in addrs {
        let mut source = kind.status_once(*addr, Duration::from_millis(500));
        loop {
            if let Ok(r) = source.poll().await
                && matches!(r.leader, Some(Some(_)))
            {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("node {id} ({addr}) named no leader within 30 s"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}

/// Three nodes of a kind started from its command line with their peers' real addresses: no proxy anywhere.
struct DirectCluster {
    children: Vec<std::process::Child>,
    client_addrs: BTreeMap<u64, SocketAddr>,
}

impl DirectCluster {
    async fn start(
        kind: &Kind,
        args: &BenchArgs,
        dir: &std::path::Path,
    ) -> Result<DirectCluster, String> {
        if matches!(kind.ready, crate::kind::Ready::AddrFile(_)) {
            return Err(format!(
                "node kind `{}` picks its own ports (ready = addr_file), so its peers cannot be told each \
                 other's addresses before they start; the direct comparison needs a kind whose ports squall picks",
                kind.name
            ));
        }
        let (program, prefix) = crate::setup::node_program(kind, args.node_bin.as_deref())?;
        let ids = [1u64, 2, 3];
        let mut ports = BTreeMap::new();
        for &id in &ids {
            ports.insert(
                id,
                crate::cluster::pick_ports(kind).map_err(|e| e.to_string())?,
            );
        }
        let peer_addr = |id: u64| -> SocketAddr {
            SocketAddr::from(([127, 0, 0, 1], ports[&id][&kind.peers.port]))
        };
        let mut cluster = DirectCluster {
            children: Vec::new(),
            client_addrs: BTreeMap::new(),
        };
        for &id in &ids {
            let node_dir = dir.join(format!("node-{id}"));
            std::fs::create_dir_all(&node_dir)
                .map_err(|e| format!("cannot create {}: {e}", node_dir.display()))?;
            let peers = ids
                .iter()
                .filter(|&&p| p != id || kind.peers.model == crate::kind::PeerModel::PerDestination)
                .map(|&p| (p, peer_addr(p)))
                .collect();
            let facts = NodeFacts {
                id,
                cluster_id: crate::setup::cluster_id(43),
                node_dir: node_dir.clone(),
                data_dir: node_dir.join("data"),
                initial_state: InitialState::New,
                seed: 43 + id,
                election_timeout: (Duration::from_millis(150), Duration::from_millis(300)),
                heartbeat: Duration::from_millis(50),
                snapshot_every: 10_000,
                peers,
                ports: ports[&id].clone(),
                join: false,
                options: Vec::new(),
                host: std::net::IpAddr::from([127, 0, 0, 1]),
            };
            let mut line = prefix.clone();
            line.extend(kind.command_line(&facts)?);
            let log = std::fs::File::create(node_dir.join("node.log"))
                .map_err(|e| format!("cannot create the node log: {e}"))?;
            let child = std::process::Command::new(&program)
                .args(&line)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(log)
                .spawn()
                .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
            cluster.children.push(child);
            if let Some(port) = kind.client_port().and_then(|p| ports[&id].get(p)) {
                cluster
                    .client_addrs
                    .insert(id, SocketAddr::from(([127, 0, 0, 1], *port)));
            }
        }
        if let Err(e) = wait_leader(kind, &cluster.client_addrs).await {
            cluster.stop();
            return Err(format!("the directly linked nodes: {e}"));
        }
        Ok(cluster)
    }

    fn stop(mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.children.clear();
    }
}

impl Drop for DirectCluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
