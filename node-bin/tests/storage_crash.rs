//! Storage against real process death: a child process writes to a data directory and is SIGKILLed at a
//! seeded random moment; the parent reopens the directory and checks that nothing acknowledged was lost.
//! Also the directory lock across processes, including that a SIGKILLed holder leaves no stale lock.
//!
//! The child is this same test binary, re-executed with an environment variable that turns
//! [`child_process_entry`] into the child's main function.
//!
//! Rerun a crash seed with `SQUALL_CRASH_SEED=N`; run more rounds with `SQUALL_CRASH_ROUNDS=N`.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use squall_node::raft::{Entry, HardState, Index, Payload, Snapshot, SnapshotMeta};
use squall_node::storage::{InitialState, Storage, StorageError};

const ROLE_VAR: &str = "SQUALL_STORAGE_TEST_CHILD";
const DIR_VAR: &str = "SQUALL_STORAGE_TEST_DIR";
const SEED_VAR: &str = "SQUALL_STORAGE_TEST_SEED";
/// Marks the child's protocol lines on stdout, among libtest's own output.
const TAG: &str = "@@ ";
/// Steps a writer child runs at most, so an orphaned child ends on its own.
const CHILD_MAX_STEPS: u64 = 3000;
/// Generous bound that only catches a hang.
const HANG_BOUND: Duration = Duration::from_secs(120);

/// One unit of work, made durable by one storage call.
#[derive(Debug, Clone)]
enum Step {
    Persist {
        hard_state: Option<HardState>,
        truncate_from: Option<Index>,
        entries: Vec<Entry>,
    },
    SaveSnapshot(Snapshot),
    InstallSnapshot(Snapshot),
}

/// What the directory must hold after some prefix of the steps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Model {
    hard_state: HardState,
    snapshot: Option<Snapshot>,
    entries: Vec<Entry>,
}

impl Model {
    fn base(&self) -> SnapshotMeta {
        self.snapshot.as_ref().map(|s| s.meta).unwrap_or_default()
    }
    fn last_index(&self) -> Index {
        self.entries
            .last()
            .map_or(self.base().last_index, |e| e.index)
    }
}

/// A seeded stream of steps that always keeps the log valid, tracking the state it leads to.
struct Workload {
    rng: ChaCha8Rng,
    model: Model,
    step: u64,
}

impl Workload {
    fn new(seed: u64) -> Self {
        Workload {
            rng: ChaCha8Rng::seed_from_u64(seed),
            model: Model::default(),
            step: 0,
        }
    }

    fn entry(&self, index: Index, term: u64) -> Entry {
        // The step number makes every version of an index distinct, so a resurrected old entry is caught.
        Entry {
            index,
            term,
            payload: Payload::Command(format!("{index}@{term} step {}", self.step).into_bytes()),
        }
    }

    fn next(&mut self) -> Step {
        self.step += 1;
        let m = &self.model;
        let last = m.last_index();
        let base = m.base();
        let roll = self.rng.random_range(0..100);
        let step = if roll < 8 && last > base.last_index {
            // A snapshot of a prefix the log holds.
            let at = self.rng.random_range(base.last_index + 1..=last);
            let term = m.entries[(at - base.last_index - 1) as usize].term;
            Step::SaveSnapshot(snapshot(at, term, self.step))
        } else if roll < 10 {
            // A leader's snapshot ahead of the log.
            let term = m.hard_state.term.max(1);
            Step::InstallSnapshot(snapshot(
                last + self.rng.random_range(1..20),
                term,
                self.step,
            ))
        } else if roll < 20 && last > base.last_index {
            // A new leader overwrites part of the tail.
            let from = self.rng.random_range(base.last_index + 1..=last);
            let term = m.hard_state.term + 1;
            let n = self.rng.random_range(1..5);
            let entries = (from..from + n).map(|i| self.entry(i, term)).collect();
            Step::Persist {
                hard_state: Some(HardState { term, vote: None }),
                truncate_from: Some(from),
                entries,
            }
        } else {
            let mut hard_state = None;
            let mut term = m.hard_state.term.max(1);
            if m.hard_state.term == 0 || self.rng.random_range(0..10) == 0 {
                term = m.hard_state.term + 1;
                hard_state = Some(HardState {
                    term,
                    vote: Some(self.rng.random_range(1..4)),
                });
            }
            let n = self.rng.random_range(1..=32);
            let entries = (last + 1..=last + n).map(|i| self.entry(i, term)).collect();
            Step::Persist {
                hard_state,
                truncate_from: None,
                entries,
            }
        };
        self.apply(&step);
        step
    }

    fn apply(&mut self, step: &Step) {
        let m = &mut self.model;
        match step {
            Step::Persist {
                hard_state,
                truncate_from,
                entries,
            } => {
                if let Some(hs) = hard_state {
                    m.hard_state = *hs;
                }
                if let Some(t) = truncate_from {
                    m.entries.retain(|e| e.index < *t);
                }
                m.entries.extend(entries.iter().cloned());
            }
            Step::SaveSnapshot(s) => {
                m.entries.retain(|e| e.index > s.meta.last_index);
                m.snapshot = Some(s.clone());
            }
            Step::InstallSnapshot(s) => {
                m.entries.clear();
                m.snapshot = Some(s.clone());
            }
        }
    }
}

fn snapshot(last_index: Index, last_term: u64, step: u64) -> Snapshot {
    let data =
        format!("state machine at {last_index} (step {step})").repeat(1 + (step % 7) as usize);
    Snapshot {
        meta: SnapshotMeta {
            last_index,
            last_term,
        },
        data: data.into_bytes(),
        config: None,
    }
}

fn run_step(st: &mut Storage, step: &Step) -> Result<(), StorageError> {
    match step {
        Step::Persist {
            hard_state,
            truncate_from,
            entries,
        } => st.persist(hard_state.as_ref(), *truncate_from, entries),
        Step::SaveSnapshot(s) => st.save_snapshot(s),
        Step::InstallSnapshot(s) => st.install_snapshot(s, &[]),
    }
}

/// The child's main function when re-executed; a no-op test otherwise.
#[test]
fn child_process_entry() {
    let Ok(role) = std::env::var(ROLE_VAR) else {
        return;
    };
    let dir = std::path::PathBuf::from(std::env::var(DIR_VAR).expect("child needs its directory"));
    let mut out = std::io::stdout().lock();
    match role.as_str() {
        "writer" => {
            let seed: u64 = std::env::var(SEED_VAR)
                .expect("writer needs a seed")
                .parse()
                .expect("numeric seed");
            let (mut st, _) = Storage::open(&dir).expect("child opens the directory");
            let mut work = Workload::new(seed);
            for _ in 0..CHILD_MAX_STEPS {
                let step = work.next();
                run_step(&mut st, &step).unwrap_or_else(|e| panic!("step {}: {e}", work.step));
                writeln!(out, "{TAG}ack {}", work.step)
                    .and_then(|()| out.flush())
                    .expect("stdout");
            }
        }
        "opener" => {
            let outcome = match Storage::open(&dir) {
                Ok(_) => "opened".to_string(),
                Err(StorageError::Locked { path }) => format!("locked {}", path.display()),
                Err(e) => format!("error {e}"),
            };
            writeln!(out, "{TAG}outcome: {outcome}")
                .and_then(|()| out.flush())
                .expect("stdout");
        }
        "holder" => {
            let _held = Storage::open(&dir).expect("holder opens the directory");
            writeln!(out, "{TAG}holding")
                .and_then(|()| out.flush())
                .expect("stdout");
            // Keep the lock until killed (or until the parent closes our stdin).
            let _ = std::io::stdin().read_line(&mut String::new());
        }
        other => panic!("unknown child role {other}"),
    }
}

fn spawn_child(role: &str, dir: &Path, seed: u64) -> Child {
    Command::new(std::env::current_exe().expect("test binary path"))
        .args([
            "child_process_entry",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE_VAR, role)
        .env(DIR_VAR, dir)
        .env(SEED_VAR, seed.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn child test process")
}

/// Forwards the child's protocol lines (not libtest's chatter) to a channel, so the parent can wait with a
/// deadline.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // libtest may print "test child_process_entry ... " on the same line before ours.
            let Some(at) = line.find(TAG) else { continue };
            if tx.send(line[at + TAG.len()..].to_string()).is_err() {
                break;
            }
        }
    });
    rx
}

fn stderr_of(child: &mut Child) -> String {
    let mut s = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut s);
    }
    s
}

fn crash_round(seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    let kill_after = rng.random_range(1..300u64);
    let extra_delay = Duration::from_micros(rng.random_range(0..3000));
    eprintln!(
        "crash round: seed {seed} (rerun with SQUALL_CRASH_SEED={seed}), kill after ack {kill_after} + {extra_delay:?}"
    );

    let tmp = tempfile::tempdir().unwrap();
    let mut child = spawn_child("writer", tmp.path(), seed);
    let pid = Pid::from_raw(child.id() as i32);
    let rx = lines_of(&mut child);
    let deadline = Instant::now() + HANG_BOUND;
    let mut acked = 0u64;
    let mut seen = Vec::new();
    while acked < kill_after {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                if let Some(n) = line.strip_prefix("ack ") {
                    acked = n.parse().expect("ack number");
                }
                seen.push(line);
            }
            Err(e) => {
                let _ = kill(pid, Signal::SIGKILL);
                let _ = child.wait();
                panic!(
                    "seed {seed}: child stopped acknowledging at {acked} ({e}); stdout tail {:?}; stderr:\n{}",
                    &seen[seen.len().saturating_sub(5)..],
                    stderr_of(&mut child)
                );
            }
        }
    }
    // Not synchronisation: a random extra moment so the kill lands anywhere inside a later step.
    std::thread::sleep(extra_delay);
    kill(pid, Signal::SIGKILL).expect("SIGKILL the writer");
    let status = child.wait().expect("reap the writer");
    assert!(
        !status.success(),
        "seed {seed}: writer finished before the kill; raise CHILD_MAX_STEPS"
    );
    // Acks already in the pipe count too: the child only printed them after persist returned.
    for line in rx.iter() {
        if let Some(n) = line.strip_prefix("ack ") {
            acked = n.parse().expect("ack number");
        }
    }

    let (_st, rec) =
        Storage::open(tmp.path()).unwrap_or_else(|e| panic!("seed {seed}: reopen failed: {e}"));
    let got = Model {
        hard_state: rec.hard_state,
        snapshot: rec.snapshot,
        entries: rec.entries,
    };
    // The directory must hold the state after the last acknowledged step, or after the next one (which may
    // have become durable before the kill without being acknowledged).
    let mut work = Workload::new(seed);
    for _ in 0..acked {
        work.next();
    }
    let after_acked = work.model.clone();
    work.next();
    let after_next = work.model.clone();
    assert!(
        got == after_acked || got == after_next,
        "seed {seed}: recovered state matches neither step {acked} nor {}.\n got: term {:?}, snapshot {:?}, \
         entries {}..={}\n want (step {acked}): term {:?}, snapshot {:?}, last index {}\n truncated tail: {} bytes",
        acked + 1,
        got.hard_state,
        got.snapshot.as_ref().map(|s| s.meta),
        got.entries.first().map_or(0, |e| e.index),
        got.last_index(),
        after_acked.hard_state,
        after_acked.snapshot.as_ref().map(|s| s.meta),
        after_acked.last_index(),
        rec.truncated_tail_bytes,
    );
    eprintln!(
        "crash round: seed {seed} ok: {acked} steps acknowledged, recovered step {}, last index {}, {} tail bytes cut",
        if got == after_acked { acked } else { acked + 1 },
        got.last_index(),
        rec.truncated_tail_bytes
    );
}

#[test]
fn sigkilled_writer_loses_no_acknowledged_write() {
    if std::env::var(ROLE_VAR).is_ok() {
        return;
    }
    if let Ok(seed) = std::env::var("SQUALL_CRASH_SEED") {
        crash_round(seed.parse().expect("SQUALL_CRASH_SEED must be a number"));
        return;
    }
    let rounds: u64 =
        std::env::var("SQUALL_CRASH_ROUNDS").map_or(4, |r| r.parse().expect("SQUALL_CRASH_ROUNDS"));
    let base: u64 = rand::rng().random();
    for i in 0..rounds {
        crash_round(base.wrapping_add(i));
    }
}

#[test]
fn workload_replays_through_storage_without_crash() {
    // The model and the storage agree on a long run without any crash, including across reopens.
    let tmp = tempfile::tempdir().unwrap();
    let mut work = Workload::new(7);
    for round in 0..4 {
        let (mut st, rec) = Storage::open(tmp.path()).unwrap();
        let got = Model {
            hard_state: rec.hard_state,
            snapshot: rec.snapshot,
            entries: rec.entries,
        };
        assert_eq!(got, work.model, "after round {round}");
        for _ in 0..150 {
            let step = work.next();
            run_step(&mut st, &step).unwrap_or_else(|e| panic!("step {}: {e}", work.step));
        }
    }
}

/// A power loss can leave the WAL cut anywhere after the last fsync. For seeded runs of the workload, cut the
/// final WAL at random offsets (and sometimes add garbage): the directory must recover to exactly the state after
/// the last step whose records are whole.
#[test]
fn wal_cut_anywhere_recovers_the_last_whole_step() {
    let seed: u64 = std::env::var("SQUALL_CUT_SEED").map_or_else(
        |_| rand::rng().random(),
        |s| s.parse().expect("SQUALL_CUT_SEED"),
    );
    eprintln!("wal cut test: seed {seed} (rerun with SQUALL_CUT_SEED={seed})");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let wal_name = squall_node::storage::WAL_FILE_NAME;
    let snap_name = squall_node::storage::SNAPSHOT_FILE_NAME;
    for run in 0..6 {
        let tmp = tempfile::tempdir().unwrap();
        let mut work = Workload::new(seed.wrapping_add(run));
        let (mut st, _) = Storage::open(tmp.path()).unwrap();
        // (WAL length, state) after each step since the WAL was last rewritten.
        let mut marks = vec![(st.wal_bytes(), work.model.clone())];
        for _ in 0..rng.random_range(5..120) {
            let step = work.next();
            run_step(&mut st, &step).unwrap();
            if !matches!(step, Step::Persist { .. }) {
                marks.clear();
            }
            marks.push((st.wal_bytes(), work.model.clone()));
        }
        drop(st);
        let wal = std::fs::read(tmp.path().join(wal_name)).unwrap();
        let snapshot = std::fs::read(tmp.path().join(snap_name)).ok();
        for _ in 0..20 {
            let cut = rng.random_range(marks[0].0..=wal.len() as u64);
            let garbage: Vec<u8> = match rng.random_range(0..3) {
                0 => vec![],
                1 => vec![0; rng.random_range(1..600)],
                _ => (0..rng.random_range(1..600))
                    .map(|_| rng.random())
                    .collect(),
            };
            let case = tempfile::tempdir().unwrap();
            let mut bytes = wal[..cut as usize].to_vec();
            bytes.extend_from_slice(&garbage);
            std::fs::write(case.path().join(wal_name), &bytes).unwrap();
            if let Some(s) = &snapshot {
                std::fs::write(case.path().join(snap_name), s).unwrap();
            }
            let want = &marks
                .iter()
                .rev()
                .find(|(len, _)| *len <= cut)
                .expect("a mark at or before the cut")
                .1;
            let (_st, rec) = Storage::open(case.path()).unwrap_or_else(|e| {
                panic!(
                    "seed {seed} run {run}: cut at {cut} + {} garbage: {e}",
                    garbage.len()
                )
            });
            let got = Model {
                hard_state: rec.hard_state,
                snapshot: rec.snapshot,
                entries: rec.entries,
            };
            assert!(
                got == *want,
                "seed {seed} run {run}: cut at {cut} + {} bytes of garbage recovered last index {} (term {:?}), \
                 want {} (term {:?})",
                garbage.len(),
                got.last_index(),
                got.hard_state,
                want.last_index(),
                want.hard_state
            );
        }
    }
}

fn outcome_of_opener(dir: &Path) -> String {
    let mut child = spawn_child("opener", dir, 0);
    let rx = lines_of(&mut child);
    let line = rx
        .recv_timeout(HANG_BOUND)
        .unwrap_or_else(|e| panic!("opener said nothing ({e}): {}", stderr_of(&mut child)));
    let status = child.wait().expect("reap opener");
    assert!(status.success(), "opener failed: {}", stderr_of(&mut child));
    line
}

#[test]
fn lock_holds_across_processes_and_dies_with_its_holder() {
    if std::env::var(ROLE_VAR).is_ok() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // This process holds the lock: a child cannot open.
    let held = Storage::open(tmp.path()).unwrap();
    assert_eq!(
        outcome_of_opener(tmp.path()),
        format!("outcome: locked {}", tmp.path().display())
    );
    drop(held);
    assert_eq!(outcome_of_opener(tmp.path()), "outcome: opened");

    // A child holds the lock: this process cannot open; once the child is SIGKILLed, it can.
    let mut holder = spawn_child("holder", tmp.path(), 0);
    let rx = lines_of(&mut holder);
    let line = rx.recv_timeout(HANG_BOUND).expect("holder reports holding");
    assert_eq!(line, "holding");
    match Storage::open(tmp.path()) {
        Err(StorageError::Locked { path }) => assert_eq!(path, tmp.path()),
        other => panic!("expected Locked while the child holds the directory, got {other:?}"),
    }
    kill(Pid::from_raw(holder.id() as i32), Signal::SIGKILL).expect("SIGKILL the holder");
    holder.wait().expect("reap the holder");
    Storage::open(tmp.path()).expect("no stale lock after the holder was killed");
}

/// Issue 18, S1: a record a crashed process wrote but never synced is still in the page cache when the node
/// restarts. Opening must make it durable before the node answers for it, or a later power cut drops an entry
/// the node may since have acknowledged. Runs on the real fault filesystem (FUSE), whose power cut throws away
/// everything not synced.
#[test]
fn a_record_written_unsynced_before_a_crash_survives_a_power_cut_after_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let disk = squall_chaos::disk::MountedDisk::mount(
        &tmp.path().join("backing"),
        &tmp.path().join("mnt"),
    )
    .unwrap_or_else(|e| panic!("mounting the fault filesystem: {e}"));
    let dir = disk.mountpoint().join("data");
    let entry = |index: Index| Entry {
        index,
        term: 1,
        payload: Payload::Command(format!("entry {index}").into_bytes()),
    };
    let hs = HardState {
        term: 1,
        vote: Some(1),
    };
    // The same two appends on an ordinary directory give the exact bytes of the second record.
    let plain = tmp.path().join("plain");
    let (mut st, _) = Storage::open(&plain).unwrap();
    st.persist(Some(&hs), None, &[entry(1)]).unwrap();
    let first_len = st.wal_bytes() as usize;
    st.persist(None, None, &[entry(2)]).unwrap();
    drop(st);
    let second = std::fs::read(plain.join("wal.log")).unwrap()[first_len..].to_vec();

    let (mut st, _) = Storage::open(&dir).unwrap();
    st.persist(Some(&hs), None, &[entry(1)]).unwrap();
    drop(st);
    // The crashed process's write: in the page cache, never fdatasynced.
    let mut wal = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("wal.log"))
        .unwrap();
    wal.write_all(&second).unwrap();
    drop(wal);
    // The restarted node opens the directory (and from here on would acknowledge entry 2 as durable).
    let (st, rec) = Storage::open(&dir).unwrap();
    assert_eq!(rec.entries.len(), 2, "the unsynced record is read back");
    drop(st);
    let faults = disk.faults();
    faults.power_off();
    let report = faults.power_on(None).expect("power on");
    let (_st, rec) = Storage::open(&dir).unwrap();
    let indexes: Vec<Index> = rec.entries.iter().map(|e| e.index).collect();
    assert_eq!(
        indexes,
        vec![1, 2],
        "entry 2 was read back and used after the restart, then lost to a power cut ({report:?})"
    );
    drop(_st);
    // A child process another test of this binary forks at this instant can hold an inherited descriptor on
    // the mount until it execs, and the unmount then fails with EBUSY; it detaches the mount lazily in that
    // case, which is all this test needs (what it checks is above).
    if let Err(e) = disk.unmount() {
        eprintln!("unmounting the fault filesystem: {e} (detached lazily)");
    }
}

/// Syncs of one compaction ([`Storage::save_snapshot`]): the snapshot's temporary file, the directory after
/// its rename, the rewritten WAL's temporary file, the directory after its rename.
const COMPACTION_SYNCS: u64 = 4;

/// Issue 18: a compaction (snapshot saved, WAL rewritten after it) cut by a power cut at each of its syncs in
/// turn, on the real fault filesystem, loses nothing: the directory reopens with the term, the vote and every
/// entry, either as before the compaction or as after it, and once the last sync returned, as after it. Each
/// cut is also tried with each torn mode (part of the unsynced writes survive).
#[test]
fn a_power_cut_at_each_sync_of_a_compaction_loses_nothing() {
    use squall_chaos::disk::TornMode;
    let tmp = tempfile::tempdir().unwrap();
    let disk = squall_chaos::disk::MountedDisk::mount(
        &tmp.path().join("backing"),
        &tmp.path().join("mnt"),
    )
    .unwrap_or_else(|e| panic!("mounting the fault filesystem: {e}"));
    let faults = disk.faults();
    let hs = HardState {
        term: 3,
        vote: Some(1),
    };
    let entry = |index: Index| Entry {
        index,
        term: 1 + index / 6,
        payload: Payload::Command(format!("entry {index}").repeat(200).into_bytes()),
    };
    let torn_modes = [
        None,
        Some((TornMode::Prefix, 18)),
        Some((TornMode::Writes, 18)),
        Some((TornMode::Pages, 18)),
    ];
    for syncs in 0..=COMPACTION_SYNCS {
        for (t, torn) in torn_modes.iter().enumerate() {
            let case = format!("cut after {syncs} of the compaction's syncs, torn {torn:?}");
            let dir = disk.mountpoint().join(format!("data-{syncs}-{t}"));
            let (mut st, _) = Storage::open_as(&dir, InitialState::New).unwrap();
            // An earlier compaction, then entries after it: the one under test replaces a snapshot.
            st.persist(Some(&hs), None, &(1..=8).map(entry).collect::<Vec<_>>())
                .unwrap();
            st.save_snapshot(&snapshot(3, 1, 1)).unwrap();
            st.persist(None, None, &(9..=14).map(entry).collect::<Vec<_>>())
                .unwrap();
            faults.power_off_after_syncs(syncs);
            let saved = st.save_snapshot(&snapshot(10, entry(10).term, 2));
            assert_eq!(
                saved.is_ok(),
                syncs == COMPACTION_SYNCS,
                "{case}: the compaction answered {saved:?}"
            );
            drop(st);
            // The cut fell at a sync (or, once every sync returned, falls now).
            faults.heal();
            faults.power_off();
            let report = faults
                .power_on(*torn)
                .unwrap_or_else(|e| panic!("{case}: power on: {e}"));
            let (st, rec) =
                Storage::open(&dir).unwrap_or_else(|e| panic!("{case}: reopen ({report:?}): {e}"));
            drop(st);
            assert_eq!(rec.hard_state, hs, "{case}: term and vote ({report:?})");
            assert_eq!(rec.lost_data, None, "{case}: nothing was lost ({report:?})");
            let base = rec.snapshot.as_ref().map_or(0, |s| s.meta.last_index);
            let expected_base = if syncs == COMPACTION_SYNCS {
                vec![10]
            } else {
                vec![3, 10]
            };
            assert!(
                expected_base.contains(&base),
                "{case}: the snapshot is at {base}, expected one of {expected_base:?} ({report:?})"
            );
            if let Some(s) = &rec.snapshot {
                assert_eq!(
                    s.data,
                    snapshot(base, s.meta.last_term, if base == 3 { 1 } else { 2 }).data,
                    "{case}: the snapshot's state"
                );
            }
            let indexes: Vec<Index> = rec.entries.iter().map(|e| e.index).collect();
            assert_eq!(
                indexes,
                (base + 1..=14).collect::<Vec<_>>(),
                "{case}: the entries after the snapshot at {base} ({report:?})"
            );
            for e in &rec.entries {
                assert_eq!(e, &entry(e.index), "{case}: entry {}", e.index);
            }
        }
    }
    // See a_record_written_unsynced_before_a_crash_survives_a_power_cut_after_reopen.
    if let Err(e) = disk.unmount() {
        eprintln!("unmounting the fault filesystem: {e} (detached lazily)");
    }
}
