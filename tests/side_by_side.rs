//! Paxos in scenarios and side by side with Raft (issue 23): `protocol = "paxos"` in a scenario's
//! `[cluster]`, `squall run --protocol raft,paxos` running one scenario on both protocols with the same seed
//! into one comparison table, and the refusals of both (exit 2, naming the line or the flag).

use std::path::Path;
use std::process::{Command, Stdio};

fn squall(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_squall"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("squall runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The numbers after the console's `term` words (a Raft run's terms).
fn terms(text: &str) -> Vec<u64> {
    after(text, "term")
        .filter_map(|w| w.parse::<u64>().ok())
        .collect()
}

/// The ballots the console names after `ballot`, as `round.proposer` (a Paxos run's, issue 23).
fn ballots(text: &str) -> Vec<(u64, u64)> {
    after(text, "ballot")
        .filter_map(|w| {
            let (r, p) = w.split_once('.')?;
            Some((r.parse().ok()?, p.parse().ok()?))
        })
        .collect()
}

/// The words that follow `word`, without trailing punctuation.
fn after<'a>(text: &'a str, word: &'a str) -> impl Iterator<Item = &'a str> {
    let words: Vec<&str> = text.split_whitespace().collect();
    words
        .windows(2)
        .filter(|w| w[0] == word)
        .map(|w| w[1].trim_end_matches([',', ')', ';', ':']))
        .collect::<Vec<_>>()
        .into_iter()
}

fn ran_paxos(text: &str) -> bool {
    !ballots(text).is_empty()
}

fn ran_raft(text: &str) -> bool {
    !terms(text).is_empty() && ballots(text).is_empty()
}

/// One line of a plan as `--dry-run` and `run` print it.
fn setting(key: &str, value: &str) -> String {
    format!("{key:<22} {value}")
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn a_scenario_with_protocol_paxos_runs_on_paxos_nodes_to_its_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "short-paxos.toml",
        "# a short Paxos run\nname = \"short-paxos\"\n[cluster]\nnodes = 3\nprotocol = \"paxos\"\n\
         [workload]\nkind = \"lin-kv\"\nrate = 40\n[run]\nduration = \"5s\"\nrecovery = \"3s\"\n\
         [[timeline]]\nat = \"2s\"\ndo = \"kill leader\"\nuntil = \"4s\"\n",
    );
    let bundle = dir.path().join("bundle");
    let (code, out, err) = squall(&[
        "run",
        &file,
        "--seed",
        "5",
        "--out",
        bundle.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "--- stdout\n{out}\n--- stderr\n{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("protocol") && l.trim_end().ends_with("paxos")),
        "{out}"
    );
    assert!(out.contains("verdict: valid (expected valid)"), "{out}");
    assert!(
        ran_paxos(&out),
        "no packed Paxos ballot in the output:\n{out}"
    );
    assert!(bundle.join("report.html").is_file());
    // The rerun script is the same run: the file says paxos, so it needs no flag.
    let repro = std::fs::read_to_string(bundle.join("repro.sh")).unwrap();
    assert!(!repro.contains("--protocol"), "{repro}");
}

#[test]
fn side_by_side_runs_kill_leader_on_raft_then_paxos_and_prints_one_table() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/kill-leader.toml");
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    let (code, out, err) = squall(&[
        "run",
        file.to_str().unwrap(),
        "--protocol",
        "raft,paxos",
        "--scale",
        "0.5",
        "--seed",
        "11",
        "--out",
        bundle.to_str().unwrap(),
    ]);
    let all = format!("--- stdout\n{out}\n--- stderr\n{err}");
    assert_eq!(code, Some(0), "{all}");
    // One after the other, each on its own protocol.
    let raft_at = out.find("=== raft ===").unwrap_or_else(|| panic!("{all}"));
    let paxos_at = out.find("=== paxos ===").unwrap_or_else(|| panic!("{all}"));
    let table_at = out
        .find("side by side: kill-leader, seed 11")
        .unwrap_or_else(|| panic!("{all}"));
    assert!(raft_at < paxos_at && paxos_at < table_at, "{all}");
    assert!(
        ran_raft(&out[raft_at..paxos_at]),
        "the raft run showed no Raft term\n{all}"
    );
    assert!(
        ran_paxos(&out[paxos_at..table_at]),
        "the paxos run showed no Paxos ballot\n{all}"
    );
    // The same seed for both: each prints its plan.
    assert_eq!(out.matches(&setting("seed", "11")).count(), 2, "{all}");
    // One table: a header and one row per protocol, every verdict valid, a failover measured in each.
    let table: Vec<&str> = out[table_at..].lines().skip(1).take(3).collect();
    assert!(
        table[0].starts_with("protocol")
            && table[0].contains("linearizable")
            && table[0].contains("invariants")
            && table[0].contains("liveness")
            && table[0].contains("failover")
            && table[0].contains("recovery")
            && table[0].contains("writes/s")
            && table[0].contains("msgs/write"),
        "{all}"
    );
    for (row, protocol) in table[1..].iter().zip(["raft", "paxos"]) {
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells[0], protocol, "{all}");
        // protocol, verdict, expected, linearizable, invariants, liveness
        assert_eq!(
            &cells[1..6],
            &["valid", "yes", "valid", "valid", "valid"],
            "{row}\n{all}"
        );
        assert!(
            cells[6].ends_with("ms"),
            "no failover measured: {row}\n{all}"
        );
    }
    // The bundle: a sub-bundle per protocol and the comparison, as text and JSON.
    for p in ["raft", "paxos"] {
        for f in [
            "scenario.toml",
            "events.jsonl.gz",
            "report.html",
            "repro.sh",
        ] {
            assert!(bundle.join(p).join(f).is_file(), "no {p}/{f} in the bundle");
        }
        let repro = std::fs::read_to_string(bundle.join(p).join("repro.sh")).unwrap();
        assert!(repro.contains(&format!("--protocol {p} ")), "{repro}");
    }
    let text = std::fs::read_to_string(bundle.join("comparison.txt")).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bundle.join("comparison.json")).unwrap())
            .unwrap();
    assert_eq!(json["seed"], 11);
    let runs = json["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    for (r, p) in runs.iter().zip(["raft", "paxos"]) {
        assert_eq!(r["protocol"], p);
        assert_eq!(r["verdict"], "valid");
        assert!(r["writes"].as_u64().unwrap() > 0, "{r}");
        assert!(r["messages_per_write"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["failover_median_ms"].as_f64().unwrap() > 0.0, "{r}");
    }
    let repro = std::fs::read_to_string(bundle.join("repro.sh")).unwrap();
    assert!(repro.contains("--protocol raft,paxos"), "{repro}");
}

#[test]
fn protocol_mistakes_exit_2_naming_the_line_or_the_flag_and_dry_run_shows_both_plans() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let disagree = write(
        d,
        "disagree.toml",
        "[cluster]\nkind = \"etcd\"\nprotocol = \"paxos\"\n",
    );
    let (code, _, err) = squall(&["run", "--dry-run", &disagree]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("disagree.toml:3:") && err.contains("cluster.kind = \"etcd\" (line 2)"),
        "{err}"
    );
    let unknown = write(d, "unknown.toml", "[cluster]\nprotocol = \"zab\"\n");
    let (code, _, err) = squall(&["run", "--dry-run", &unknown]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("unknown.toml:2:") && err.contains("\"raft\" or \"paxos\""),
        "{err}"
    );
    // --protocol on a scenario of another kind, or naming a protocol twice.
    let etcd = write(d, "etcd.toml", "[cluster]\nkind = \"etcd\"\n");
    let (code, _, err) = squall(&["run", "--dry-run", &etcd, "--protocol", "raft,paxos"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--protocol raft") && err.contains("`etcd`"),
        "{err}"
    );
    let plain = write(d, "plain.toml", "# plain\n[cluster]\nnodes = 3\n");
    let (code, _, err) = squall(&["run", "--dry-run", &plain, "--protocol", "paxos,paxos"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("names paxos twice"), "{err}");
    let (code, _, err) = squall(&["run", "--dry-run", &plain, "--protocol", "zab"]);
    assert_eq!(code, Some(2), "{err}");
    // The dry run of a side by side prints each protocol's plan, with the same seed.
    let (code, out, err) = squall(&[
        "run",
        "--dry-run",
        &plain,
        "--protocol",
        "raft,paxos",
        "--seed",
        "3",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let raft = out
        .find("# --protocol raft")
        .unwrap_or_else(|| panic!("{out}"));
    let paxos = out
        .find("# --protocol paxos")
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        out[raft..paxos].contains(&setting("kind", "squall")),
        "{out}"
    );
    assert!(out[paxos..].contains(&setting("kind", "paxos")), "{out}");
    assert_eq!(
        out.matches(&format!("{}\n", setting("seed", "3"))).count(),
        2,
        "{out}"
    );
    // The library's Paxos-only scenario is refused on Raft before anything runs.
    let dueling =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/paxos-dueling-proposers.toml");
    let (code, _, err) = squall(&[
        "run",
        "--dry-run",
        dueling.to_str().unwrap(),
        "--protocol",
        "raft,paxos",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--no-leases"), "{err}");
}

#[test]
fn bench_protocol_measures_both_protocols_in_one_run_and_refuses_a_protocol_named_twice() {
    let (code, _, err) = squall(&["bench", "--protocol", "paxos,paxos"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("names paxos twice"), "{err}");
    let (code, _, err) = squall(&["bench", "--protocol", "raft", "--membership"]);
    assert_eq!(code, Some(2), "{err}");
    // A short run: one level, one failover trial each. Figures are not judged here (BENCHMARKS.md has them),
    // only that both protocols were measured, in order, into one table and one JSON line.
    let (code, out, err) = squall(&[
        "bench",
        "--protocol",
        "raft,paxos",
        "--clients",
        "1",
        "--duration",
        "1s",
        "--failovers",
        "1",
    ]);
    assert_eq!(code, Some(0), "--- stdout\n{out}\n--- stderr\n{err}");
    let raft = err.find("=== raft ===").unwrap_or_else(|| panic!("{err}"));
    let paxos = err.find("=== paxos ===").unwrap_or_else(|| panic!("{err}"));
    assert!(raft < paxos, "{err}");
    let table: Vec<&str> = err
        .lines()
        .skip_while(|l| !l.starts_with("protocol"))
        .collect();
    assert!(table.len() >= 3, "{err}");
    assert!(
        table[1].starts_with("raft") && table[2].starts_with("paxos"),
        "{err}"
    );
    let json: serde_json::Value =
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(json["bench"], "protocols");
    let runs = json["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{json}");
    for (r, p) in runs.iter().zip(["raft", "paxos"]) {
        assert_eq!(r["protocol"], p);
        assert!(r["levels"][0]["ok"].as_u64().unwrap() > 0, "{r}");
        assert_eq!(r["failover"]["trials"], 1, "{r}");
    }
}
