//! How long the linearizability checker takes on simulated lin-kv histories: a correct register and one that
//! returns stale reads, at 1k, 10k and 100k operations, 5 and 50 concurrent clients, 5 keys, 2 % of
//! operations with an unknown (`info`) outcome. One JSON line per case; the time covers pairing the events
//! into operations and the check (not generating the history).
//!
//! `cargo run --release --example check_bench -- [repeats] [seed]`

use std::time::{Duration, Instant};

use squall::check::sim::{SimSpec, simulate};
use squall::check::{Verdict, history, linear};

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let repeats = args.first().copied().unwrap_or(3).max(1);
    let seed = args.get(1).copied().unwrap_or(42);
    for ops in [1_000, 10_000, 100_000] {
        for clients in [5, 50] {
            for (register, stale) in [("correct", 0.0), ("stale-reads", 0.01)] {
                let spec = SimSpec {
                    ops,
                    clients,
                    keys: 5,
                    info: 0.02,
                    stale_reads: stale,
                    seed,
                };
                let events = simulate(spec);
                let mut times = Vec::new();
                let mut verdict = String::new();
                let mut explored = 0;
                for _ in 0..repeats {
                    let started = Instant::now();
                    let pairs = history::pair(&events).expect("well-formed");
                    let report = linear::check(&pairs, Some(started + Duration::from_secs(60)));
                    times.push(started.elapsed());
                    explored = report.explored;
                    verdict = match &report.verdict {
                        Verdict::Invalid(f) => format!("invalid (window {})", f.window.len()),
                        v => v.label().to_string(),
                    };
                }
                times.sort();
                println!(
                    "{{\"ops\":{ops},\"clients\":{clients},\"keys\":5,\"register\":\"{register}\",\"verdict\":\"{verdict}\",\"explored\":{explored},\"median_ms\":{:.2},\"max_ms\":{:.2},\"repeats\":{repeats},\"seed\":{seed}}}",
                    times[times.len() / 2].as_secs_f64() * 1e3,
                    times[times.len() - 1].as_secs_f64() * 1e3,
                );
            }
        }
    }
}
