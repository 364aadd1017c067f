//! Node kinds end to end: a kind file is the only source of how squall runs its nodes (a copy of
//! kinds/squall.toml, loaded from a temporary directory, runs a real cluster through an election, a leader
//! kill and a checked lin-kv workload), `squall kinds` lists the built-in kinds, and a kind file with a mistake
//! stops `up` with exit 2 naming the file, line and field.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::killed_leader;
use support::session::Up;

const SQUALL_KIND: &str = include_str!("../kinds/squall.toml");

fn squall() -> Command {
    Command::new(env!("CARGO_BIN_EXE_squall"))
}

/// The squall kind with `from` replaced by `to` (which must occur once).
fn edited(from: &str, to: &str) -> String {
    assert_eq!(
        SQUALL_KIND.matches(from).count(),
        1,
        "`{from}` is in kinds/squall.toml once"
    );
    SQUALL_KIND.replacen(from, to, 1)
}

/// The 1-based line of `needle` in `text`.
fn line_of(text: &str, needle: &str) -> usize {
    text[..text.find(needle).expect("needle")]
        .matches('\n')
        .count()
        + 1
}

/// A node process's command line, its arguments split.
fn cmdline(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|c| *c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_copy_of_the_squall_kind_file_runs_a_cluster_through_a_leader_kill_and_a_checked_workload() {
    let files = tempfile::tempdir().unwrap();
    // Two edits make the file's hand visible: the snapshot interval is a literal the session's flags never
    // give, and pausing is refused with the file's own reason.
    let text = edited(
        "\"--snapshot-every\", \"{snapshot_every}\"",
        "\"--snapshot-every\", \"777\"",
    ) + "\n[limits]\npause = \"this test's kind file refuses pauses\"\n";
    let kind = files.path().join("copy.toml");
    std::fs::write(&kind, &text).unwrap();
    let mut s = Up::new(&[
        "-n",
        "3",
        "--seed",
        "31",
        "--workload",
        "lin-kv",
        "--rate",
        "50",
        "--node-kind",
        kind.to_str().unwrap(),
    ])
    .start();
    assert_eq!(s.pids.len(), 3, "three nodes: {:?}", s.pids);
    for &pid in &s.pids {
        let args = cmdline(pid);
        let at = args.iter().position(|a| a == "--snapshot-every");
        assert_eq!(
            at.and_then(|i| args.get(i + 1)).map(String::as_str),
            Some("777"),
            "node {pid} runs the file's command line: {args:?}"
        );
    }
    let refused = s.refused("pause 1");
    assert!(
        refused.contains("this test's kind file refuses pauses")
            && refused.contains("nothing was done"),
        "{refused}"
    );

    let kill = s.ask("kill leader", "kill node");
    let (old, term) = killed_leader(&kill).expect("the kill names the leader and its term");
    s.out
        .wait_for("a new leader in a higher term", s.wait, |l| {
            support::leader_term(l).filter(|(n, t)| *n != old && *t > term)
        });
    s.ok(&format!("restart {old}"));

    // The workload goes on through the new leader, and its history is linearizable.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        writeln!(s.stdin, "check").unwrap();
        let verdict = s.out.wait_for("the check's verdict", s.wait, |l| {
            (l.starts_with("ok: linearizability check") || l.starts_with("error:"))
                .then(|| l.to_string())
        });
        assert!(
            verdict.starts_with("ok: linearizability check passed"),
            "{verdict}"
        );
        let operations: usize = verdict
            .split("valid: ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if operations >= 300 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the history stayed short: {verdict}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    s.quit();
}

#[test]
fn squall_kinds_lists_the_builtin_kinds_and_whether_their_program_is_found() {
    let out = squall().arg("kinds").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("squall\t"))
        .unwrap_or_else(|| panic!("no squall line:\n{text}"));
    assert!(
        line.contains("squall's own Raft node (the reference)") && line.contains("\tready ("),
        "{line}"
    );
}

/// `squall up --headless --node-kind FILE` with `text` as the file: its exit code and standard error.
fn up_with_kind(dir: &Path, text: &str) -> (Option<i32>, String) {
    let kind = dir.join("bad.toml");
    std::fs::write(&kind, text).unwrap();
    let out = squall()
        .args(["up", "--headless", "--node-kind"])
        .arg(&kind)
        .arg("--dir")
        .arg(dir.join("cluster"))
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_kind_file_with_a_mistake_stops_up_with_exit_2_naming_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml").display().to_string();

    let text = edited("\"--seed\", \"{seed}\"", "\"--seed\", \"{sed}\"");
    let (code, err) = up_with_kind(dir.path(), &text);
    assert_eq!(code, Some(2), "{err}");
    let at = format!("{file}:{}:", line_of(&text, "{sed}"));
    assert!(
        err.contains(&at) && err.contains("launch.args") && err.contains("{sed}"),
        "{err}"
    );

    let text = edited(
        "[client]\nprotocol = \"squall\"",
        "[client]\nprotocol = \"squall\"\ntimeout = 3",
    );
    let (code, err) = up_with_kind(dir.path(), &text);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!("{file}:{}:", line_of(&text, "timeout = 3")))
            && err.contains("client.timeout: unknown field `timeout`"),
        "the mistake names its field: {err}"
    );

    let text = edited(
        "ready = { addr_file",
        "command = \"x\"\nready = { addr_file",
    );
    let (code, err) = up_with_kind(dir.path(), &text);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!("{file}:{}:", line_of(&text, "command = \"x\"")))
            && err.contains("launch.command: unknown field `command`"),
        "the mistake names its field: {err}"
    );

    let text = edited("[status]\nprotocol = \"squall\"\n", "[status]\n");
    let (code, err) = up_with_kind(dir.path(), &text);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("status.protocol: missing field `protocol`"),
        "the mistake names its field: {err}"
    );

    let text = edited(
        "program = \"{squall}\"",
        "program = \"no-such-raft-node-anywhere\"",
    );
    let (code, err) = up_with_kind(dir.path(), &text);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("program: program `no-such-raft-node-anywhere` is not on PATH")
            && err.contains("build squall: cargo build --release"),
        "{err}"
    );
    assert!(
        !dir.path().join("cluster").join("node-1").exists(),
        "nothing was started"
    );
}

/// tester2 item 1: an `add` whose learner step never committed (no majority when the session ended) was
/// recorded in `members.json` as a member, so the next `up --dir` started nodes {1,2,3,4} with 4 a voter in
/// every node's boot configuration and 4 recovering forever: a 3-node cluster that no longer survived one
/// failure. The added node is not a member until its learner step commits.
#[test]
fn an_add_that_never_committed_is_not_a_member_of_the_next_session() {
    let mut s = Up::new(&["-n", "3", "--seed", "3"]).start();
    let (leader, _) = s.first_leader.expect("a leader");
    // Two of three down: the add can start node 4 but its learner step cannot commit.
    for n in (1..=3).filter(|&n| n != leader) {
        s.ok(&format!("kill {n}"));
    }
    s.ask("add", "add node 4");
    let cdir = s.cdir.clone();
    let kept = s.quit();

    let members = std::fs::read_to_string(cdir.join("members.json")).unwrap();
    let mut again = Up::new(&["-n", "3", "--seed", "3"])
        .dir(cdir.clone())
        .start();
    let nodes: Vec<u64> = again
        .listing("status", "status:")
        .iter()
        .filter_map(|l| l.strip_prefix('n')?.split(' ').next()?.parse().ok())
        .collect();
    assert_eq!(
        nodes,
        [1, 2, 3],
        "node 4 never joined, so it is not started again; members.json: {members}"
    );
    // Three voters: one of them down still leaves a majority that elects a leader.
    let (old, term) = again.current_leader();
    let killed = again.ok("kill leader");
    assert_eq!(
        killed_leader(&killed).map(|(n, _)| n),
        Some(old),
        "{killed}"
    );
    let (new, new_term) = again.until("a new leader after the kill", |ns| {
        ns.values()
            .filter(|n| n.running && n.role == "leader" && n.term > term)
            .map(|n| (n.id, n.term))
            .next()
    });
    assert_ne!(new, old, "term {new_term}");
    again.quit();
    drop(kept);
}

/// A kind without a membership driver refuses `add`, `remove`, `replace` and `promote` with its reason and
/// changes nothing: the file's `[limits] membership` reason when it gives one, else that it has no
/// `[membership]`.
#[test]
fn a_kind_without_membership_refuses_membership_changes_with_its_reason() {
    let files = tempfile::tempdir().unwrap();
    let without = edited("[membership]\nprotocol = \"squall\"\n", "");
    let reasons = [
        (without.clone(), "has no [membership]".to_string()),
        (
            without + "\n[limits]\nmembership = \"this test's node has a fixed configuration\"\n",
            "this test's node has a fixed configuration".to_string(),
        ),
    ];
    for (i, (text, reason)) in reasons.into_iter().enumerate() {
        let kind = files.path().join(format!("fixed-{i}.toml"));
        std::fs::write(&kind, &text).unwrap();
        let mut s = Up::new(&[
            "-n",
            "3",
            "--seed",
            "5",
            "--node-kind",
            kind.to_str().unwrap(),
        ])
        .start();
        for cmd in ["add", "remove 2", "replace 3", "promote 2"] {
            let refusal = s.refused(cmd);
            assert!(
                refusal.contains("node kind `squall` cannot")
                    && refusal.contains("membership")
                    && refusal.contains(&reason)
                    && refusal.contains("nothing was done"),
                "{cmd}: {refusal}"
            );
        }
        let nodes: Vec<String> = s.listing("status", "status:");
        assert_eq!(nodes.len(), 3, "no node was added: {nodes:#?}");
        s.quit();
    }
}

/// The kind a session runs is recorded where later commands find it: `cluster.json` (name, file, digest) for
/// the one-shot `squall status`, which reads the nodes through that kind, and the event log's settings, so
/// `squall scenario LOG` exports `[cluster] kind` and the rerun uses the same file.
#[test]
fn the_kind_is_recorded_in_cluster_json_and_the_event_log_and_exported_with_the_scenario() {
    let files = tempfile::tempdir().unwrap();
    let kind = files.path().join("mine.toml");
    std::fs::write(&kind, edited("name = \"squall\"", "name = \"mine\"")).unwrap();
    let mut s = Up::new(&[
        "-n",
        "3",
        "--seed",
        "9",
        "--node-kind",
        kind.to_str().unwrap(),
    ])
    .start();
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.cdir.join("cluster.json")).unwrap()).unwrap();
    assert_eq!(file["kind"]["name"], "mine", "{file:#}");
    assert_eq!(file["kind"]["file"], kind.to_str().unwrap(), "{file:#}");
    assert!(
        file["kind"]["digest"]
            .as_str()
            .is_some_and(|d| d.len() == 16),
        "{file:#}"
    );
    assert!(
        file["nodes"][0]["ports"]["api"].is_string(),
        "every node's ports by the kind's names: {file:#}"
    );

    let doc = support::status_json(&s.cdir);
    let leaders = doc["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["role"] == "leader")
        .count();
    assert_eq!(leaders, 1, "{doc:#}");

    // The file changed after the start: status still works and says so.
    std::fs::write(
        &kind,
        edited("name = \"squall\"", "name = \"mine\"") + "\n# edited\n",
    )
    .unwrap();
    let status = squall()
        .args(["status", "--dir"])
        .arg(&s.cdir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&status.stderr);
    assert!(status.status.success(), "{err}");
    assert!(err.contains("changed since the session started"), "{err}");

    let events = s.cdir.join("events.jsonl.gz");
    s.ask("isolate 2", "isolate");
    s.ok("heal");
    let kept = s.quit();
    let o = squall().arg("scenario").arg(&events).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let toml = String::from_utf8(o.stdout).unwrap();
    assert!(
        toml.contains(&format!("kind = \"{}\"", kind.display())),
        "[cluster] kind names the file:\n{toml}"
    );
    drop(kept);
}

/// The kind squall.toml describes without its `[controls]` table (the section, up to the next blank line).
fn without_controls() -> String {
    match SQUALL_KIND.find("[controls]") {
        None => SQUALL_KIND.to_string(),
        Some(at) => {
            let end = SQUALL_KIND[at..]
                .find("\n\n")
                .map_or(SQUALL_KIND.len(), |e| at + e + 1);
            format!("{}{}", &SQUALL_KIND[..at], &SQUALL_KIND[end..])
        }
    }
}

/// tester4 F4: squall's teaching controls (`freeze`, `thaw`, `timeout`, `heartbeat`) and leadership
/// `transfer` go through squall's own control RPC, so a kind gets them only when its file lists them under
/// `[controls]` (kinds/squall.toml does). Without, each is refused at once, naming the kind and the control,
/// and nothing is done (on etcd, `freeze` used to wait 6 s and blame the nodes).
#[test]
fn a_kind_without_controls_refuses_them_naming_the_kind_and_the_control() {
    assert!(
        SQUALL_KIND.contains("[controls]"),
        "kinds/squall.toml lists its controls"
    );
    let files = tempfile::tempdir().unwrap();
    let kind = files.path().join("no-controls.toml");
    std::fs::write(&kind, without_controls()).unwrap();
    let mut s = Up::new(&[
        "-n",
        "3",
        "--seed",
        "6",
        "--node-kind",
        kind.to_str().unwrap(),
    ])
    .start();
    for (cmd, control) in [
        ("freeze", "freeze"),
        ("thaw", "thaw"),
        ("timeout 1", "timeout"),
        ("heartbeat", "heartbeat"),
        ("transfer 2", "transfer"),
    ] {
        let refused = s.refused(cmd);
        assert!(
            refused.contains("node kind `squall`")
                && refused.contains(&format!("`{control}`"))
                && refused.contains("[controls]")
                && refused.contains("nothing was done"),
            "{cmd}: {refused}"
        );
    }
    s.quit();
}

/// `squall run --dry-run` loads the scenario's node kind, so a broken kind file stops it with exit 2 naming
/// the file, line and field, as `up` does, instead of a plan that cannot run.
#[test]
fn a_dry_run_loads_the_kind_and_refuses_a_broken_kind_file() {
    let dir = tempfile::tempdir().unwrap();
    let kind = dir.path().join("bad.toml");
    let text = edited(
        "[client]\nprotocol = \"squall\"",
        "[client]\nprotocol = \"squal\"",
    );
    std::fs::write(&kind, &text).unwrap();
    let scenario = dir.path().join("s.toml");
    std::fs::write(
        &scenario,
        format!(
            "name = \"k\"\nexpect = \"valid\"\n\n[cluster]\nnodes = 3\nkind = \"{}\"\n\n[run]\nduration = \"5s\"\n",
            kind.display()
        ),
    )
    .unwrap();
    let out = squall()
        .args(["run", "--dry-run"])
        .arg(&scenario)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "{}:{}:",
            kind.display(),
            line_of(&text, "\"squal\"")
        )) && err.contains("client.protocol")
            && err.contains("`squal`"),
        "{err}"
    );
    // The same scenario with a good kind file passes the dry run.
    std::fs::write(&kind, SQUALL_KIND).unwrap();
    let out = squall()
        .args(["run", "--dry-run"])
        .arg(&scenario)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// F11: a scenario step the kind refuses (`freeze` on etcd, which has no `freeze` control; `wipe` on etcd,
/// refused by its `[limits]`) is a mistake in the file: `--dry-run` exits 2 naming the file, the step's line
/// and the kind file, as a run would before starting anything, instead of ending `unknown` (exit 3).
#[test]
fn a_scenario_step_the_kind_refuses_fails_at_load_naming_its_line() {
    let dir = tempfile::tempdir().unwrap();
    for (step, why) in [
        ("freeze", "no `freeze` control"),
        ("wipe 2", "[limits] wipe in kinds/etcd.toml"),
    ] {
        let f = dir.path().join("etcd-step.toml");
        std::fs::write(
            &f,
            format!(
                "name = \"refused-step\"\nexpect = \"valid\"\n\n[cluster]\nnodes = 3\nkind = \"etcd\"\n\n\
                 [run]\nduration = \"10s\"\n\n[[timeline]]\nat = \"2s\"\ndo = \"{step}\"\n"
            ),
        )
        .unwrap();
        for args in [&["run", "--dry-run"][..], &["run", "--out"][..]] {
            let mut cmd = squall();
            cmd.args(args);
            if args.contains(&"--out") {
                cmd.arg(dir.path().join("bundle"));
            }
            let o = cmd.arg(&f).output().unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "`{step}` with {args:?}: {err}");
            assert!(
                err.contains("etcd-step.toml:13:")
                    && err.contains(why)
                    && err.contains("kinds/etcd.toml"),
                "`{step}` with {args:?}: {err}"
            );
            assert!(
                !dir.path().join("bundle").exists(),
                "`{step}` with {args:?}: a refused run left a bundle behind"
            );
        }
    }
}
