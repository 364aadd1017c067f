//! `squall bench --membership`: what a membership change costs a live cluster. On a real 3-node cluster
//! (fsync on, every link through the idle proxy) loaded with about 10 MB of state, it times `add` from the
//! new process's start to its promotion to voter (committed), and measures write throughput during each
//! change against the spread of the same measurement with no change, side by side in one run.
//!
//! Throughput: `clients` writers put back to back for the whole run, each completion timestamped. The
//! baseline is several windows of `window` seconds with no change; a change's figure is the write rate over
//! the window from its start to its commit (at least `window` long). After each add, the four-voter cluster
//! is measured too with no change (it needs three acknowledgements of four, on the same cores), since an
//! add's window is mostly spent as a four-voter cluster. Ends with one JSON line.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use squall_node::client::KvClient;
use squall_node::kv::KvOp;

use crate::cli::BenchArgs;
use crate::cluster::command::Command;
use crate::cluster::{Cluster, Outcome};

/// Bytes of state loaded before the changes.
const STATE_BYTES: usize = 10 * 1024 * 1024;
/// Size of each loaded value.
const VALUE_BYTES: usize = 1024;
/// Writers running throughout.
const WRITERS: usize = 16;
/// Length of a baseline window, and the shortest change window.
const WINDOW: Duration = Duration::from_secs(2);
/// Baseline windows.
const BASELINES: usize = 6;

/// Writes acknowledged, by time.
struct Tally {
    done: Mutex<Vec<Instant>>,
    stop: AtomicBool,
}

impl Tally {
    fn rate(&self, from: Instant, to: Instant) -> f64 {
        let n = self
            .done
            .lock()
            .unwrap()
            .iter()
            .filter(|t| **t >= from && **t < to)
            .count();
        n as f64 / (to - from).as_secs_f64()
    }
}

async fn load_state(cluster: &Cluster) -> Result<(), String> {
    let n = STATE_BYTES / VALUE_BYTES;
    let per = n / WRITERS;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let addrs = cluster.api_addrs();
        tasks.push(tokio::spawn(async move {
            let mut client = KvClient::new(addrs);
            client.op_timeout = Duration::from_secs(20);
            for i in 0..per {
                client
                    .execute(KvOp::Put {
                        key: format!("state-{w}-{i}"),
                        value: "x".repeat(VALUE_BYTES),
                    })
                    .await
                    .map_err(|e| format!("loading state: {e}"))?;
            }
            Ok::<_, String>(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}

/// The new node's id: the node `add`'s effect names.
fn added(outcome: &Outcome) -> Result<u64, String> {
    let Outcome::Done(effect) = outcome else {
        return Err(format!("add was not done: {outcome:?}"));
    };
    effect
        .node
        .ok_or_else(|| format!("add named no node: {effect:?}"))
}

/// Waits until the leader's committed configuration has `id` as a voter (`voter`) or without it.
async fn until_config(cluster: &Cluster, id: u64, voter: bool) -> Result<Instant, String> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if let Some((l, _)) = cluster.leader()
            && let Some(s) = cluster.status(l)
            && s.core.config_committed
            && s.core.config.voters.contains(&id) == voter
            && !s.core.config.learners.contains(&id)
        {
            return Ok(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Err(format!("node {id}'s change did not commit within 120 s"))
}

/// Runs `squall bench --membership`.
pub async fn run(args: BenchArgs) -> ExitCode {
    let dir = std::env::temp_dir().join(format!("squall-bench-members-{}", std::process::id()));
    let config = super::writes::bench_session(&args, dir.clone(), false).map(|mut c| {
        // Compacted often, so a new node's state comes as a snapshot, as it would in a long-lived cluster.
        c.spec.snapshot_every = 1_000;
        c
    });
    let cluster = match super::writes::start(config).await {
        Ok(c) => c,
        Err((code, e)) => return crate::setup::fail(code, e),
    };
    let result = measure(&cluster).await;
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

async fn measure(cluster: &Cluster) -> Result<serde_json::Value, String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while cluster.leader().is_none() {
        if Instant::now() > deadline {
            return Err("no leader within 10 s".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let t = Instant::now();
    load_state(cluster).await?;
    eprintln!(
        "loaded {} MB of state ({} values of {VALUE_BYTES} B) in {:.1} s",
        STATE_BYTES / (1024 * 1024),
        STATE_BYTES / VALUE_BYTES,
        t.elapsed().as_secs_f64()
    );
    let tally = Arc::new(Tally {
        done: Mutex::new(Vec::new()),
        stop: AtomicBool::new(false),
    });
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let tally = tally.clone();
        let cluster = cluster.clone();
        writers.push(tokio::spawn(async move {
            let mut client = KvClient::new(cluster.api_addrs());
            let mut i = 0u64;
            while !tally.stop.load(Ordering::Relaxed) {
                i += 1;
                // New nodes join the address book as they come.
                if i.is_multiple_of(200) {
                    client = KvClient::new(cluster.api_addrs());
                }
                let op = KvOp::Put {
                    key: format!("w{w}-{}", i % 100),
                    value: format!("{i}"),
                };
                if client.execute(op).await.is_ok() {
                    tally.done.lock().unwrap().push(Instant::now());
                }
            }
        }));
    }
    // Warm up, then the baseline: windows with no change.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut baseline = Vec::new();
    for _ in 0..BASELINES {
        let from = Instant::now();
        tokio::time::sleep(WINDOW).await;
        baseline.push(tally.rate(from, Instant::now()));
    }
    let (lo, hi) = (
        baseline.iter().copied().fold(f64::MAX, f64::min),
        baseline.iter().copied().fold(0.0, f64::max),
    );
    let mean = baseline.iter().sum::<f64>() / baseline.len() as f64;
    eprintln!(
        "no change: {mean:.0} writes/s mean over {BASELINES} windows of {} s (spread {lo:.0}–{hi:.0})",
        WINDOW.as_secs()
    );
    // Changes: add (timed start → voter), then remove it again, three times.
    let mut adds = Vec::new();
    let mut during = Vec::new();
    let mut settled4 = Vec::new();
    for _ in 0..3 {
        let t0 = Instant::now();
        let outcome = cluster.perform(Command::Add).await;
        let id = added(&outcome)?;
        let voter = until_config(cluster, id, true).await?;
        let add_ms = (voter - t0).as_secs_f64() * 1000.0;
        let end = (t0 + WINDOW).max(voter);
        tokio::time::sleep(end.saturating_duration_since(Instant::now())).await;
        let rate = tally.rate(t0, end);
        eprintln!(
            "add node {id}: process start → voter in {add_ms:.0} ms; {rate:.0} writes/s during it"
        );
        adds.push(add_ms);
        during.push(serde_json::json!({"change": format!("add {id}"), "ms": add_ms.round(), "writes_per_sec": rate.round()}));
        // The cluster after the change, settled, with no change: four voters replicate to one more node
        // and need three acknowledgements, so its own spread is the fair comparison for the add.
        tokio::time::sleep(Duration::from_millis(500)).await;
        for _ in 0..2 {
            let from = Instant::now();
            tokio::time::sleep(WINDOW).await;
            settled4.push(tally.rate(from, Instant::now()));
        }
        let t0 = Instant::now();
        let outcome = cluster.perform(Command::Remove(id)).await;
        if !outcome.is_ok() {
            return Err(format!("remove {id}: {outcome:?}"));
        }
        let gone = until_config(cluster, id, false).await?;
        let end = (t0 + WINDOW).max(gone);
        tokio::time::sleep(end.saturating_duration_since(Instant::now())).await;
        let rate = tally.rate(t0, end);
        let ms = (gone - t0).as_secs_f64() * 1000.0;
        eprintln!("remove node {id}: committed in {ms:.0} ms; {rate:.0} writes/s during it");
        during.push(serde_json::json!({"change": format!("remove {id}"), "ms": ms.round(), "writes_per_sec": rate.round()}));
        // The removal's background step stops the process; the next add may start once it has.
        let deadline = Instant::now() + Duration::from_secs(20);
        while cluster.status(id).is_some() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let spread = |v: &[f64]| {
        (
            v.iter().copied().fold(f64::MAX, f64::min),
            v.iter().copied().fold(0.0, f64::max),
            v.iter().sum::<f64>() / v.len().max(1) as f64,
        )
    };
    let (lo4, hi4, mean4) = spread(&settled4);
    eprintln!(
        "no change with four voters (after each add): {mean4:.0} writes/s mean over {} windows (spread \
         {lo4:.0}–{hi4:.0})",
        settled4.len()
    );
    tally.stop.store(true, Ordering::Relaxed);
    for w in writers {
        let _ = w.await;
    }
    Ok(serde_json::json!({
        "bench": "squall-membership", "state_mb": STATE_BYTES / (1024 * 1024), "writers": WRITERS,
        "window_s": WINDOW.as_secs(),
        "no_change": {"mean": mean.round(), "min": lo.round(), "max": hi.round(),
                      "windows": baseline.iter().map(|r| r.round()).collect::<Vec<_>>()},
        "no_change_four_voters": {"mean": mean4.round(), "min": lo4.round(), "max": hi4.round(),
                      "windows": settled4.iter().map(|r| r.round()).collect::<Vec<_>>()},
        "add_ms": adds.iter().map(|m| m.round()).collect::<Vec<_>>(), "during": during,
    }))
}
