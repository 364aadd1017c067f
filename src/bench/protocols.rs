//! `squall bench --protocol raft,paxos` (issue 23): the write benchmark of [`super::writes`] on squall's own
//! node with each protocol, one after the other in one run — the same 3-node cluster settings, the same
//! concurrency levels, the same failover trials (SIGKILL the leader, time until the next write commits) — then
//! one table comparing them. Ends with one JSON line holding every run's figures.

use std::process::ExitCode;

use crate::cli::BenchArgs;
use crate::scenario::{protocol_kind, protocol_name};

/// Runs the benchmark on each protocol `args.protocol` names and prints the comparison (human lines on
/// standard error, then one JSON line). Exit 2 for a protocol named twice, 1 when a run failed.
pub async fn run(args: BenchArgs) -> ExitCode {
    for (i, p) in args.protocol.iter().enumerate() {
        if args.protocol[..i].contains(p) {
            return crate::setup::fail(
                2,
                format!(
                    "--protocol names {} twice: name each protocol once (raft,paxos)",
                    protocol_name(*p)
                ),
            );
        }
    }
    let mut runs = Vec::new();
    for p in &args.protocol {
        let name = protocol_name(*p);
        eprintln!("=== {name} ===");
        let dir = std::env::temp_dir().join(format!("squall-bench-{}-{name}", std::process::id()));
        let config = super::writes::bench_session(&args, dir.clone(), false).and_then(|mut c| {
            let kind = crate::setup::load_kind(Some(protocol_kind(*p)))?;
            let (program, prefix) = crate::setup::node_program(&kind, None)?;
            c.spec.kind = kind;
            c.spec.node_program = program;
            c.spec.node_prefix_args = prefix;
            Ok(c)
        });
        let cluster = match super::writes::start(config).await {
            Ok(c) => c,
            Err((code, e)) => return crate::setup::fail(code, format!("--protocol {name}: {e}")),
        };
        let result = super::writes::measure(&cluster, &args).await;
        cluster.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
        match result {
            Ok(json) => runs.push((name, json)),
            Err(e) => return crate::setup::fail(1, format!("--protocol {name}: {e}")),
        }
    }
    for line in table(&runs) {
        eprintln!("{line}");
    }
    let runs: Vec<serde_json::Value> = runs
        .into_iter()
        .map(|(name, mut json)| {
            json["protocol"] = name.into();
            json
        })
        .collect();
    println!(
        "{}",
        serde_json::json!({ "bench": "protocols", "nodes": 3, "fsync": true, "runs": runs })
    );
    ExitCode::SUCCESS
}

/// The side-by-side table of the runs' JSON figures ([`super::writes::measure`]): writes/s and p50 at each
/// concurrency level, then the failover median and p99, one line per protocol.
fn table(runs: &[(&'static str, serde_json::Value)]) -> Vec<String> {
    let mut header = vec!["protocol".to_string()];
    if let Some((_, first)) = runs.first() {
        for level in first["levels"].as_array().into_iter().flatten() {
            header.push(format!("c={} writes/s (p50)", level["clients"]));
        }
    }
    header.push("failover median / p99".into());
    let mut rows = vec![header];
    for (name, json) in runs {
        let mut row = vec![name.to_string()];
        for level in json["levels"].as_array().into_iter().flatten() {
            row.push(format!(
                "{} ({:.2} ms)",
                level["writes_per_sec"].as_f64().unwrap_or(0.0),
                level["p50_ms"].as_f64().unwrap_or(0.0)
            ));
        }
        let f = &json["failover"];
        row.push(if f["trials"].as_u64().unwrap_or(0) == 0 {
            "-".into()
        } else {
            format!(
                "{:.0} / {:.0} ms ({} trials)",
                f["median_ms"].as_f64().unwrap_or(0.0),
                f["p99_ms"].as_f64().unwrap_or(0.0),
                f["trials"]
            )
        });
        rows.push(row);
    }
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|r| {
            r.iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_string()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_a_column_per_level_and_a_line_per_protocol() {
        let run = |rate: f64, median: f64| {
            serde_json::json!({
                "levels": [
                    {"clients": 1, "writes_per_sec": rate, "p50_ms": 0.5},
                    {"clients": 16, "writes_per_sec": rate * 8.0, "p50_ms": 1.25},
                ],
                "failover": {"trials": 5, "median_ms": median, "p99_ms": median * 2.0},
            })
        };
        let t = table(&[("raft", run(1000.0, 300.0)), ("paxos", run(800.0, 900.0))]);
        assert_eq!(t.len(), 3, "{t:?}");
        assert!(
            t[0].contains("c=1 writes/s") && t[0].contains("c=16 writes/s"),
            "{t:?}"
        );
        assert!(
            t[1].starts_with("raft") && t[1].contains("8000 (1.25 ms)"),
            "{t:?}"
        );
        assert!(t[2].contains("900 / 1800 ms (5 trials)"), "{t:?}");
    }
}
