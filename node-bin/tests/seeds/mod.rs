//! The seed-range driver the simulations share: which seeds a run takes (`SQUALL_SIM_SEED=N,M,...` replays
//! some, `SQUALL_SIM_BASE=B` and `SQUALL_SIM_SEEDS=N` choose the range B..B+N, the base otherwise changes every
//! run), and running them on two threads with a panic in one seed turned into that seed's failure.

#![allow(dead_code)]

/// A number from the environment variable `name`, if set; panics naming it when it is not a number.
pub fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|s| {
        s.parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, got {s:?}"))
    })
}

/// Parses a list of seeds such as `12,907,40213` (spaces allowed) from the variable `name`.
fn parse_seeds(name: &str, text: &str) -> Vec<u64> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse().unwrap_or_else(|_| {
                panic!("{name} must be seeds separated by commas, such as 12,907; {s:?} is not a number")
            })
        })
        .collect()
}

/// The seeds named in `SQUALL_SIM_SEED`, if it is set.
pub fn named_seeds() -> Option<Vec<u64>> {
    let list = std::env::var("SQUALL_SIM_SEED").ok()?;
    Some(parse_seeds("SQUALL_SIM_SEED", &list))
}

/// The range `(start, end)` of a run without `SQUALL_SIM_SEED`: `SQUALL_SIM_SEEDS` seeds (default
/// `default_count`) from `SQUALL_SIM_BASE` (default: whole thousands from the clock, so the printed base and
/// a failing seed are easy to read back).
pub fn seed_range(default_count: u64) -> (u64, u64) {
    let n = env_number("SQUALL_SIM_SEEDS").unwrap_or(default_count);
    let base = env_number("SQUALL_SIM_BASE").unwrap_or_else(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        (now % 1_000_000_000) * 1000
    });
    (base, base + n)
}

/// The seeds of this run: [`named_seeds`], else the [`seed_range`].
pub fn seeds_of_run(default_count: u64) -> Vec<u64> {
    named_seeds().unwrap_or_else(|| {
        let (start, end) = seed_range(default_count);
        (start..end).collect()
    })
}

/// Runs one seed, turning a panic inside it (a failed assertion in the core) into its failure.
pub fn run_caught<T>(run: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).unwrap_or_else(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        Err(format!("panic: {msg}"))
    })
}

/// Runs `run` for every seed on two threads (the seeds are independent and this box has two cores), each
/// through [`run_caught`]. Returns what the passing seeds gave, and the failures by seed, in seed order.
pub fn run_seeds<T: Send>(
    seeds: &[u64],
    run: impl Fn(u64) -> Result<T, String> + Sync,
) -> (Vec<T>, Vec<(u64, String)>) {
    let run = &run;
    let mut results: Vec<(u64, Result<T, String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|w| {
                let mine: Vec<u64> = seeds.iter().copied().skip(w).step_by(2).collect();
                s.spawn(move || {
                    mine.into_iter()
                        .map(|seed| (seed, run_caught(|| run(seed))))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("worker panicked"))
            .collect()
    });
    results.sort_by_key(|r| r.0);
    let mut passed = Vec::new();
    let mut failures = Vec::new();
    for (seed, r) in results {
        match r {
            Ok(v) => passed.push(v),
            Err(e) => failures.push((seed, e)),
        }
    }
    (passed, failures)
}

/// Fails naming every failing seed with the first line of what it found, the first one in full, and the
/// command that reruns them (`test`: the test target's name).
pub fn fail_on(failures: &[(u64, String)], test: &str) {
    let Some((seed, e)) = failures.first() else {
        return;
    };
    let all: Vec<u64> = failures.iter().map(|f| f.0).collect();
    let lines: Vec<String> = failures
        .iter()
        .map(|(s, e)| format!("  seed {s}: {}", e.lines().next().unwrap_or("")))
        .collect();
    panic!(
        "simulation failed for {} seeds:\n{}\nthe first, seed {seed}, in full:\n{e}\nrerun them with: \
         SQUALL_SIM_SEED={} cargo test -p squall-node --test {test}",
        failures.len(),
        lines.join("\n"),
        all.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
    );
}
