//! The Paxos actor and its persist thread on squall's fault filesystem (FUSE; needs /dev/fuse, as CI has):
//! driven turn by turn as its loop does, with no ports and no timer, checking that a promise or an accepted
//! answer never leaves before what it claims is durable, and that the actor is not stuck behind its disk.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use squall_chaos::disk::{DiskFaults, MountedDisk};
use tokio::sync::mpsc;

use super::{Cmd, PaxosNode};
use crate::paxos::{Accepted, Ballot, Config, Message, Payload, Slot};
use crate::raft::NodeId;
use crate::server::NodeConfig;
use crate::storage::paxos::PaxosStorage;
use crate::storage::{InitialState, StorageError};

/// Node 1 of {1, 2, 3} on a fault disk; nodes 2 and 3 are played by the test.
struct Harness {
    node: PaxosNode,
    /// The actor's inbox: the persist thread's wake-ups arrive here.
    inbox: mpsc::UnboundedReceiver<Cmd>,
    _tx: mpsc::UnboundedSender<Cmd>,
    /// What node 1 sends to 2 and 3.
    sent: BTreeMap<NodeId, mpsc::UnboundedReceiver<Message>>,
    /// Taken by [`Harness::stop`].
    disk: Option<MountedDisk>,
    tmp: Option<tempfile::TempDir>,
    data_dir: PathBuf,
}

impl Drop for Harness {
    fn drop(&mut self) {
        // A persist thread blocked on a stalled disk would keep the mount busy.
        if let Some(disk) = &self.disk {
            disk.faults().heal();
        }
        // A persist thread still inside a filesystem call when the mount goes away (a test that failed with
        // work in flight) would never return, and the test process could not exit: let it finish first.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.node.persist.io.idle() && Instant::now() < deadline {
            if self.node.persist.io.try_answer().is_none() {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

/// Node 2's first ballot.
const B2: Ballot = Ballot {
    round: 1,
    proposer: 2,
};

impl Harness {
    fn new() -> Harness {
        let tmp = tempfile::tempdir().unwrap();
        let disk = MountedDisk::mount(&tmp.path().join("backing"), &tmp.path().join("mnt"))
            .unwrap_or_else(|e| panic!("mounting the fault filesystem: {e}"));
        let data_dir = disk.mountpoint().join("n1");
        let any: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
        let cfg = NodeConfig {
            id: 1,
            cluster_id: "test".into(),
            listen: any,
            api_listen: any,
            peers: [(2, any), (3, any)].into(),
            join: false,
            data_dir: data_dir.clone(),
            initial_state: InitialState::New,
            tick: Duration::from_millis(10),
            election_timeout: (Duration::from_millis(150), Duration::from_millis(300)),
            heartbeat: Duration::from_millis(50),
            pre_vote: true,
            check_quorum: true,
            frozen: false,
            snapshot_every: 0,
            max_inflight: 4,
            seed: 7,
            addr_file: None,
        };
        let core_cfg = Config {
            id: 1,
            peers: vec![2, 3],
            leases: true,
            lease_ticks_min: 15,
            lease_ticks_max: 30,
            heartbeat_ticks: 5,
            max_batch: 64,
            seed: 7,
        };
        let (storage, recovered) = PaxosStorage::open_as(&data_dir, InitialState::New).unwrap();
        let (tx, inbox) = mpsc::unbounded_channel();
        let mut peers = BTreeMap::new();
        let mut sent = BTreeMap::new();
        for id in [2, 3] {
            let (ptx, prx) = mpsc::unbounded_channel();
            peers.insert(id, ptx);
            sent.insert(id, prx);
        }
        let node = PaxosNode::assemble(
            cfg,
            core_cfg,
            storage,
            recovered,
            peers,
            &tx,
            Instant::now(),
        )
        .unwrap();
        Harness {
            node,
            inbox,
            _tx: tx,
            sent,
            disk: Some(disk),
            tmp: Some(tmp),
            data_dir,
        }
    }

    fn faults(&self) -> DiskFaults {
        self.disk.as_ref().expect("mounted").faults()
    }

    /// One actor turn over these commands; the actor's error (the node would stop) is handed back.
    fn turn(&mut self, cmds: Vec<Cmd>) -> anyhow::Result<()> {
        let mut status = Vec::new();
        for cmd in cmds {
            self.node.handle(cmd, &mut status)?;
        }
        self.node.drain();
        for tx in status {
            self.node.status_when_durable(tx);
        }
        Ok(())
    }

    /// Waits until the persist thread answers a job and lets the actor take it.
    fn persisted(&mut self, what: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match self.inbox.try_recv() {
                Ok(cmd @ Cmd::Persisted) => return self.turn(vec![cmd]),
                Ok(_) => {}
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => panic!("{what}: the persist thread answered nothing in 20 s ({e})"),
            }
        }
    }

    /// Everything node 1 sent to `to` so far.
    fn sent_to(&mut self, to: NodeId) -> Vec<Message> {
        let rx = self.sent.get_mut(&to).expect("a peer");
        std::iter::from_fn(|| rx.try_recv().ok()).collect()
    }

    /// Stops the node and hands back its disk, the temporary directory it is mounted in, and the data
    /// directory.
    fn stop(mut self) -> (MountedDisk, tempfile::TempDir, PathBuf) {
        let disk = self.disk.take().expect("mounted");
        let tmp = self.tmp.take().expect("present");
        let dir = self.data_dir.clone();
        drop(self);
        (disk, tmp, dir)
    }
}

/// Heals `faults` after `bound` unless told first (by dropping the returned sender): a test stuck behind a
/// stalled disk ends and says so instead of hanging. The flag tells whether it fired.
fn watchdog(faults: DiskFaults, bound: Duration) -> (std::sync::mpsc::Sender<()>, Arc<AtomicBool>) {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let fired = Arc::new(AtomicBool::new(false));
    let flag = fired.clone();
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(bound) {
            flag.store(true, Ordering::SeqCst);
            faults.heal();
        }
    });
    (tx, fired)
}

/// Reopens the data directory after the node stopped (its persist thread may hold the lock for a moment).
fn reopen(dir: &std::path::Path, case: &str) -> crate::storage::paxos::PaxosRecovered {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match PaxosStorage::open_as(dir, InitialState::Existing) {
            Ok((_, rec)) => return rec,
            Err(StorageError::Locked { .. }) if Instant::now() < deadline => {
                std::thread::yield_now()
            }
            Err(e) => panic!("{case}: the data directory does not open: {e}"),
        }
    }
}

fn value(byte: u8) -> Payload {
    Payload::Command(vec![byte; 64])
}

/// Issue 23: a promise leaves only once it is durable, and the actor is not stuck behind its disk while the
/// promise is written: the write is the persist thread's. (On the driver that wrote on the actor, the turn
/// that took the prepare blocked until the watchdog healed the disk.)
#[test]
fn a_promise_leaves_only_once_durable_and_the_actor_is_not_stuck_behind_the_disk() {
    let mut h = Harness::new();
    h.faults().stall();
    let (done, fired) = watchdog(h.faults(), Duration::from_secs(20));
    let prepare = Message::Prepare {
        ballot: B2,
        from_slot: 1,
    };
    h.turn(vec![Cmd::Peer(2, vec![prepare])]).unwrap();
    assert!(
        !fired.load(Ordering::SeqCst),
        "the actor was stuck behind the stalled disk until the watchdog healed it: the promise was written \
         on the actor's loop"
    );
    let until = Instant::now() + Duration::from_millis(300);
    while Instant::now() < until {
        while let Ok(cmd) = h.inbox.try_recv() {
            h.turn(vec![cmd]).unwrap();
        }
        let early = h.sent_to(2);
        assert!(
            early.is_empty(),
            "sent to node 2 while the promise was not durable: {early:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    h.faults().heal();
    drop(done);
    h.persisted("the promise").unwrap();
    let sent = h.sent_to(2);
    assert!(
        sent.iter()
            .any(|m| matches!(m, Message::Promise { ballot, .. } if *ballot == B2)),
        "the promise leaves once durable: {sent:?}"
    );
    let (disk, _tmp, dir) = h.stop();
    let rec = reopen(&dir, "after the promise");
    assert_eq!(
        rec.restored.promised, B2,
        "the promise sent is the one on disk"
    );
    drop(disk);
}

/// Issue 23: a power cut right after each sync around an accept (the fault filesystem's cut at a sync): an
/// accepted answer that left always names values the reopened acceptor holds at that ballot, and none
/// leaves when the write's sync was cut.
#[test]
fn a_power_cut_right_after_an_accepted_answer_never_loses_what_it_claims() {
    for syncs in 0..=1 {
        let case = format!("cut after {syncs} syncs");
        let mut h = Harness::new();
        h.turn(vec![Cmd::Peer(
            2,
            vec![Message::Prepare {
                ballot: B2,
                from_slot: 1,
            }],
        )])
        .unwrap();
        h.persisted("the promise").unwrap();
        h.sent_to(2);
        h.faults().power_off_after_syncs(syncs);
        let accept = Message::Accept {
            ballot: B2,
            chosen_to: 0,
            values: vec![(1, value(1)), (2, value(2))],
        };
        let mut stopped = h.turn(vec![Cmd::Peer(2, vec![accept])]).err();
        let deadline = Instant::now() + Duration::from_secs(20);
        while stopped.is_none() && !h.node.persist.io.idle() {
            assert!(Instant::now() < deadline, "{case}: no answer in 20 s");
            stopped = h.persisted(&case).err();
        }
        let claimed: Vec<Slot> = h
            .sent_to(2)
            .into_iter()
            .flat_map(|m| match m {
                Message::Accepted { ballot, slots, .. } if ballot == B2 => slots,
                _ => Vec::new(),
            })
            .collect();
        let faults = h.faults();
        let (disk, _tmp, dir) = h.stop();
        faults.heal();
        faults.power_off();
        let report = faults
            .power_on(None)
            .unwrap_or_else(|e| panic!("{case}: power on: {e}"));
        let rec = reopen(&dir, &case);
        let case = format!("{case} (node stopped: {stopped:?}; power cut: {report:?})");
        assert_eq!(rec.restored.promised, B2, "{case}: the promise");
        for slot in &claimed {
            let want = Accepted {
                ballot: B2,
                value: value(*slot as u8),
            };
            assert!(
                rec.restored.accepted.contains(&(*slot, want)),
                "{case}: slot {slot} was answered accepted but the disk holds {:?}",
                rec.restored.accepted
            );
        }
        let expected: Vec<Slot> = if syncs == 0 { vec![] } else { vec![1, 2] };
        assert_eq!(claimed, expected, "{case}: the slots answered accepted");
        drop(disk);
    }
}
