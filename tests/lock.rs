//! The lock workloads end to end (issue 23): Kleppmann's "How to do distributed locking" on real node
//! processes, a real resource on 127.0.0.1, and a real pause of a client task.
//!
//! - the library's `naive-lock-gc-pause` (a lease lock without fencing) is found invalid, the violation
//!   naming both clients, their leases and the write that slipped in; `fenced-lock-gc-pause` is valid, the
//!   paused client's stale write rejected by the resource; on squall's node, on etcd and on openraft
//!   (`examples/openraft-kv` through its kind file);
//! - `squall report` checks the lock again from the event log alone;
//! - the client faults through the console: refused without a lock workload, listed by `faults`, `heal`
//!   ends `slow-client`, bad input refused naming it.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use support::scenario::{library, run_scaled, squall};
use support::session::Up;

/// One cluster at a time in this binary: a run is three nodes, their proxies and three lock clients.
static SERIAL: Mutex<()> = Mutex::new(());

/// The `openraft-kv` binary beside this test's build, built first (`cargo build -p openraft-kv`) when it is
/// not there or older than its sources, as `tests/openraft.rs` does.
fn openraft_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("openraft-kv");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let newest_source = std::fs::read_dir(root.join("examples/openraft-kv/src"))
        .unwrap()
        .filter_map(|e| e.ok()?.metadata().ok()?.modified().ok())
        .max();
    let built = std::fs::metadata(&bin).and_then(|m| m.modified()).ok();
    if built.is_none() || newest_source > built {
        let mut cmd = Command::new(option_env!("CARGO").unwrap_or("cargo"));
        cmd.args(["build", "-p", "openraft-kv"]).current_dir(root);
        if exe.to_string_lossy().contains("/release/") {
            cmd.arg("--release");
        }
        assert!(
            cmd.status()
                .expect("running cargo build -p openraft-kv")
                .success(),
            "cargo build -p openraft-kv failed"
        );
    }
    assert!(bin.is_file(), "no node binary at {}", bin.display());
    bin
}

/// The openraft example's kind file, its program pointed at the built binary, written into `dir`.
fn openraft_kind(dir: &Path) -> PathBuf {
    let text = include_str!("../examples/openraft-kv/openraft.toml").replacen(
        "program = \"target/release/openraft-kv\"",
        &format!("program = \"{}\"", openraft_binary().display()),
        1,
    );
    let path = dir.join("openraft.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// What a run printed and where its bundle is.
struct Ran {
    stdout: String,
    bundle: PathBuf,
    _dir: tempfile::TempDir,
}

impl Ran {
    /// The evidence of the verdict table's `lock` row.
    fn lock_row(&self) -> &str {
        self.stdout
            .lines()
            .find(|l| l.starts_with("lock "))
            .unwrap_or_else(|| panic!("no lock row in the verdict table:\n{}", self.stdout))
    }
}

/// Runs library scenario `name` shortened, on node kind `kind` (`None`: squall's), and checks the exit code
/// and verdict line its `expect` calls for.
fn run(name: &str, kind: Option<&str>) -> Ran {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let mut text = std::fs::read_to_string(library(name)).unwrap();
    if let Some(k) = kind {
        text = text.replacen("[cluster]\n", &format!("[cluster]\nkind = \"{k}\"\n"), 1);
    }
    let file = dir.path().join(format!("{name}.toml"));
    std::fs::write(&file, &text).unwrap();
    let bundle = dir.path().join("bundle");
    let stdout = run_scaled(&file, &text, true, &bundle, &format!("{name} on {kind:?}"));
    Ran {
        stdout,
        bundle,
        _dir: dir,
    }
}

/// The violation names both clients, both leases and the write that slipped in, after its lease ran out.
fn assert_names_the_slipped_write(ran: &Ran) {
    let row = ran.lock_row();
    assert!(
        row.contains("lock        invalid") || row.contains(" invalid "),
        "{row}"
    );
    assert!(
        row.contains("mutual exclusion broken at the resource"),
        "{row}"
    );
    // client 1 was paused: its write slipped in, with its lease, after the lease ran out …
    assert!(
        row.contains("slipped in") && row.contains("by client 1 (token"),
        "{row}"
    );
    assert!(row.contains("after its lease ran out"), "{row}");
    // … and the other client and its lease are named too.
    let other = ["by client 2 (token", "by client 3 (token"];
    assert!(other.iter().any(|o| row.contains(o)), "{row}");
    assert!(row.matches(", lease ").count() >= 2, "{row}");
}

/// The fenced resource rejected client 1's stale write, and nothing interleaved.
fn assert_the_stale_write_was_rejected(ran: &Ran) {
    let row = ran.lock_row();
    assert!(row.contains("lock check passed (lock-fenced)"), "{row}");
    assert!(
        row.contains("the fencing token stopped write #") && row.contains("by client 1 (token"),
        "{row}"
    );
    assert!(!row.contains(" 0 rejected"), "{row}");
}

/// `squall report` on the run's event log: the lock checked again from the log alone, and the pause's
/// window in the fault table starting where it struck.
fn report_of(ran: &Ran) -> String {
    let out = ran.bundle.join("again.html");
    let o = squall()
        .arg("report")
        .arg(ran.bundle.join("events.jsonl.gz"))
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "squall report: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(
        html.contains("pause-client 1 3s: struck at its protected write under token"),
        "the report's fault table has no pause window starting at the strike"
    );
    html
}

#[test]
fn naive_lock_gc_pause_is_invalid_naming_both_clients_their_leases_and_the_write() {
    let ran = run("naive-lock-gc-pause", None);
    assert_names_the_slipped_write(&ran);
    let html = report_of(&ran);
    assert!(
        html.contains("mutual exclusion of the lock workload (checked for this report")
            && html.contains("lock check FAILED (lock (no fencing))"),
        "the report did not find the violation again from the log"
    );
    // The client fault is exported as the command it was, and the workload as its kind.
    let o = squall()
        .arg("scenario")
        .arg(ran.bundle.join("events.jsonl.gz"))
        .output()
        .unwrap();
    let exported = String::from_utf8_lossy(&o.stdout);
    assert!(
        exported.contains("kind = \"lock\"") && exported.contains("do = \"pause-client 1 3s\""),
        "{exported}"
    );
}

#[test]
fn fenced_lock_gc_pause_is_valid_with_the_stale_write_rejected() {
    let ran = run("fenced-lock-gc-pause", None);
    assert_the_stale_write_was_rejected(&ran);
    let html = report_of(&ran);
    assert!(
        html.contains("lock check passed (lock-fenced)"),
        "the report did not check the lock again from the log"
    );
}

#[test]
fn etcd_naive_lock_gc_pause_is_invalid() {
    if support::etcd::present("etcd_naive_lock_gc_pause_is_invalid") {
        let ran = run("naive-lock-gc-pause", Some("etcd"));
        assert_names_the_slipped_write(&ran);
    }
}

#[test]
fn etcd_fenced_lock_gc_pause_is_valid_with_the_stale_write_rejected() {
    if support::etcd::present("etcd_fenced_lock_gc_pause_is_valid") {
        let ran = run("fenced-lock-gc-pause", Some("etcd"));
        assert_the_stale_write_was_rejected(&ran);
    }
}

#[test]
fn openraft_naive_lock_gc_pause_is_invalid() {
    let kinds = tempfile::tempdir().unwrap();
    let kind = openraft_kind(kinds.path());
    let ran = run("naive-lock-gc-pause", Some(&kind.display().to_string()));
    assert_names_the_slipped_write(&ran);
}

#[test]
fn openraft_fenced_lock_gc_pause_is_valid_with_the_stale_write_rejected() {
    let kinds = tempfile::tempdir().unwrap();
    let kind = openraft_kind(kinds.path());
    let ran = run("fenced-lock-gc-pause", Some(&kind.display().to_string()));
    assert_the_stale_write_was_rejected(&ran);
}

/// Runs `text` as a scenario file (squall's node, `--seed 11`); the run's stdout, after checking it exits
/// `code`.
fn run_text(text: &str, code: i32) -> String {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(&file, text).unwrap();
    let o = squall()
        .arg("run")
        .arg(&file)
        .args(["--seed", "11", "--out"])
        .arg(dir.path().join("bundle"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(
        o.status.code(),
        Some(code),
        "--- stdout\n{stdout}\n--- stderr\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    stdout
}

/// Fencing holds whatever the cluster goes through: the leader killed, a partition, a one-way cut and a
/// paused client in one run, and mutual exclusion at the resource still holds.
#[test]
fn fenced_lock_holds_under_kill_partition_one_way_cut_and_a_paused_client() {
    let out = run_text(
        "[cluster]\nnodes = 3\n[workload]\nkind = \"lock-fenced\"\nrate = 30\n[run]\nduration = \"12s\"\n\
         recovery = \"3s\"\n\
         [[timeline]]\nat = \"1s\"\ndo = \"pause-client 2 2s\"\n\
         [[timeline]]\nat = \"2s\"\ndo = \"kill leader\"\nuntil = \"4s\"\n\
         [[timeline]]\nat = \"5s\"\ndo = \"partition halves\"\nuntil = \"7s\"\n\
         [[timeline]]\nat = \"8s\"\ndo = \"cut leader->*\"\nuntil = \"10s\"\n",
        0,
    );
    let row = out
        .lines()
        .find(|l| l.starts_with("lock "))
        .unwrap_or_else(|| panic!("no lock row:\n{out}"));
    assert!(row.contains("lock check passed (lock-fenced)"), "{row}");
}

#[test]
fn client_faults_through_the_console() {
    let mut s = Up::new(&["--workload", "counter"])
        .serial(&SERIAL)
        .wait(Duration::from_secs(60))
        .start();
    // The counter workload has no lock clients: nothing is armed, and the answer says how to start them.
    let e = s.refused("pause-client 1 3s");
    assert!(
        e.contains("acts on the lock workload's clients") && e.contains("workload lock"),
        "{e}"
    );
    let e = s.refused("pause-client 0 3s");
    assert!(e.contains("`0` is not a client number"), "{e}");
    s.ask("workload lock-fenced", "workload lock-fenced: 3 clients");
    let e = s.refused("slow-client 4 100ms");
    assert!(e.contains("there is no lock client 4"), "{e}");
    s.ask(
        "slow-client 2 20ms",
        "every step of client 2 takes 20ms longer",
    );
    s.ask(
        "pause-client 3 200ms",
        "armed, strikes at client 3's next protected write",
    );
    // The pause strikes at client 3's next protected write, whenever that comes.
    s.out.wait_for("the pause to strike", s.wait, |l| {
        l.contains("client 3 paused at its protected write")
            .then_some(())
    });
    let faults = s.listing("faults", "faults:");
    assert!(
        faults.iter().any(|f| f.contains("client 2 slow +20ms")),
        "{faults:#?}"
    );
    assert!(
        !faults.iter().any(|f| f.contains("client 3 pause")),
        "a pause that struck is no longer armed: {faults:#?}"
    );
    let healed = s.ok("heal");
    assert!(healed.contains("slow-client 2 20ms"), "{healed}");
    assert!(
        s.listing("faults", "faults:").is_empty(),
        "heal left a client fault"
    );
    // Mutual exclusion held: the check says so (retried while no write has reached the resource yet).
    let mut verdict = String::new();
    for _ in 0..20 {
        verdict = s.answer("check");
        if !verdict.contains("nothing to judge") {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        verdict.starts_with("ok: ") && verdict.contains("lock check passed (lock-fenced)"),
        "{verdict}"
    );
    s.quit();
}

/// tester5 F1 and F2: selecting `workload lock` while the workload is off says it is off (it used to describe
/// three clients taking the lock, none running), the client faults are refused until the clients run, and
/// once another workload is selected with the lock clients never having run, `check` judges that one, not the
/// lock.
#[test]
fn selecting_the_lock_while_the_workload_is_off_says_so_and_arms_nothing() {
    let mut s = Up::new(&["--workload", "counter"])
        .serial(&SERIAL)
        .wait(Duration::from_secs(60))
        .start();
    s.ask("workload off", "workload off");
    let said = s.ask("workload lock", "workload lock: 3 clients");
    assert!(
        said.contains("the workload is off: `workload on` starts it"),
        "{said}"
    );
    let e = s.refused("pause-client 1 3s");
    assert!(
        e.contains("the workload is off") && e.contains("nothing was done"),
        "{e}"
    );
    let e = s.refused("slow-client 2 20ms");
    assert!(e.contains("the workload is off"), "{e}");
    s.ask("workload lin-kv", "workload lin-kv");
    let verdict = s.answer("check");
    assert!(
        !verdict.contains("lock check"),
        "the lock clients never ran: {verdict}"
    );
    s.quit();
}
