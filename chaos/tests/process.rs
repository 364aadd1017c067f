//! Process faults against real child processes: exits observed, kill / terminate / pause / resume / restart /
//! wipe, process groups, shutdown, and the no-orphans promise when the parent is SIGKILLed.
//!
//! Helper roles run by re-executing this test binary with `SQUALL_CHAOS_TEST_ROLE` set and only the
//! `helper_entry` test selected.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use squall_chaos::{
    ChaosError, ExitEvent, LIFELINE_ENV, LIFELINE_EXIT_CODE, ProcState, ProcessSpec, Supervisor,
};
use tokio::sync::broadcast;

const ROLE: &str = "SQUALL_CHAOS_TEST_ROLE";

/// Not a test by itself: the entry point of the helper roles. Without the variable it does nothing.
#[test]
fn helper_entry() {
    match std::env::var(ROLE).as_deref() {
        Ok("parent") => run_parent(),
        Ok("lifeline-child") => run_lifeline_child(),
        _ => {}
    }
}

fn helper_command(role: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("test binary path"));
    cmd.args(["--exact", "helper_entry", "--nocapture", "--test-threads=1"])
        .env(ROLE, role);
    cmd
}

fn helper_spec(role: &str, name: &str, dir: &Path) -> ProcessSpec {
    ProcessSpec {
        name: name.into(),
        program: std::env::current_exe().expect("test binary path"),
        args: ["--exact", "helper_entry", "--nocapture", "--test-threads=1"]
            .into_iter()
            .map(OsString::from)
            .collect(),
        env: vec![(ROLE.into(), role.into())],
        log_path: dir.join(format!("{name}.log")),
        data_dir: None,
    }
}

/// A parent orchestrator: spawns a running sleeper, a paused sleeper and a lifeline-watching child, prints
/// their pids, then waits to be killed.
fn run_parent() {
    let dir = PathBuf::from(std::env::var("SQUALL_CHAOS_TEST_DIR").expect("test dir"));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let sup = Supervisor::new().expect("supervisor");
    let pids = rt.block_on(async {
        let running = sup
            .spawn(sh("running", "exec sleep 1000", &dir))
            .await
            .expect("spawn running");
        let paused = sup
            .spawn(sh("paused", "exec sleep 1000", &dir))
            .await
            .expect("spawn paused");
        sup.pause("paused").expect("pause");
        let watcher = sup
            .spawn(helper_spec("lifeline-child", "watcher", &dir))
            .await
            .expect("spawn watcher");
        wait_for_log(&dir.join("watcher.log"), "WATCHING").await;
        [running, paused, watcher]
    });
    println!("PIDS {} {} {}", pids[0], pids[1], pids[2]);
    loop {
        std::thread::park();
    }
}

fn run_lifeline_child() {
    assert!(
        squall_chaos::watch_lifeline_from_env().expect("lifeline"),
        "no lifeline in the environment"
    );
    println!("WATCHING");
    loop {
        std::thread::park();
    }
}

fn sh(name: &str, script: &str, dir: &Path) -> ProcessSpec {
    ProcessSpec {
        name: name.into(),
        program: "/bin/sh".into(),
        args: vec!["-c".into(), script.into()],
        env: vec![("DATA".into(), dir.join(format!("{name}-data")).into())],
        log_path: dir.join(format!("logs/{name}.log")),
        data_dir: Some(dir.join(format!("{name}-data"))),
    }
}

/// The scheduler state letter from /proc (R, S, T, Z...), or None when the pid is gone.
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next())
}

/// Gone, or a zombie nobody has reaped yet (it runs nothing and holds nothing).
fn dead(pid: u32) -> bool {
    matches!(proc_state(pid), None | Some('Z') | Some('X'))
}

async fn poll<F: FnMut() -> (bool, String)>(what: &str, deadline: Duration, mut f: F) {
    let end = Instant::now() + deadline;
    loop {
        let (ok, seen) = f();
        if ok {
            return;
        }
        assert!(
            Instant::now() < end,
            "timed out after {deadline:?} waiting for {what}; last seen: {seen}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn wait_for_log(path: &Path, needle: &str) {
    poll(
        &format!("{needle:?} in {}", path.display()),
        Duration::from_secs(10),
        || {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            (text.contains(needle), text)
        },
    )
    .await;
}

async fn next_exit(rx: &mut broadcast::Receiver<ExitEvent>) -> ExitEvent {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("no exit event within 10 s")
        .expect("exit channel closed")
}

#[tokio::test]
async fn output_is_logged_and_exits_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let sup = Supervisor::new().unwrap();
    let mut exits = sup.exits();
    let pid = sup
        .spawn(sh(
            "crash",
            "echo to-out; echo to-err >&2; exit 3",
            dir.path(),
        ))
        .await
        .unwrap();
    let e = next_exit(&mut exits).await;
    assert_eq!(
        (
            e.name.as_str(),
            e.pid,
            e.code,
            e.signal.as_deref(),
            e.expected
        ),
        ("crash", pid, Some(3), None, false)
    );
    assert!(matches!(
        sup.state("crash"),
        Some(ProcState::Exited { code: Some(3), .. })
    ));
    let log = std::fs::read_to_string(dir.path().join("logs/crash.log")).unwrap();
    assert!(
        log.contains("to-out") && log.contains("to-err"),
        "log: {log:?}"
    );
    // A crash loop: restart it and see a second exit; the log is appended to, not replaced.
    let pid2 = sup.restart("crash", false).await.unwrap();
    let e = next_exit(&mut exits).await;
    assert_eq!((e.pid, e.code), (pid2, Some(3)));
    let log = std::fs::read_to_string(dir.path().join("logs/crash.log")).unwrap();
    assert_eq!(log.matches("to-out").count(), 2, "log: {log:?}");
}

#[tokio::test]
async fn kill_and_terminate_send_their_signals_to_the_whole_group() {
    let dir = tempfile::tempdir().unwrap();
    let sup = Supervisor::new().unwrap();
    let mut exits = sup.exits();
    let grandchild_file = dir.path().join("grandchild");
    let script = format!("sleep 1000 & echo $! > {}; wait", grandchild_file.display());
    let pid = sup.spawn(sh("group", &script, dir.path())).await.unwrap();
    poll("the grandchild pid", Duration::from_secs(5), || {
        let t = std::fs::read_to_string(&grandchild_file).unwrap_or_default();
        (t.ends_with('\n'), t)
    })
    .await;
    let grandchild: u32 = std::fs::read_to_string(&grandchild_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(!dead(grandchild));
    sup.kill("group").unwrap();
    let e = next_exit(&mut exits).await;
    assert_eq!(
        (e.pid, e.signal.as_deref(), e.code, e.expected),
        (pid, Some("SIGKILL"), None, true)
    );
    poll(
        "the grandchild to die with its group",
        Duration::from_secs(5),
        || (dead(grandchild), format!("{:?}", proc_state(grandchild))),
    )
    .await;

    let pid = sup
        .spawn(sh("term", "exec sleep 1000", dir.path()))
        .await
        .unwrap();
    sup.terminate("term").unwrap();
    let e = next_exit(&mut exits).await;
    assert_eq!(
        (e.pid, e.signal.as_deref(), e.expected),
        (pid, Some("SIGTERM"), true)
    );
}

#[tokio::test]
async fn pause_stops_and_resume_continues() {
    let dir = tempfile::tempdir().unwrap();
    let sup = Supervisor::new().unwrap();
    let pid = sup
        .spawn(sh("p", "exec sleep 1000", dir.path()))
        .await
        .unwrap();
    sup.pause("p").unwrap();
    assert_eq!(sup.state("p"), Some(ProcState::Paused { pid }));
    poll("state T", Duration::from_secs(5), || {
        (
            proc_state(pid) == Some('T'),
            format!("{:?}", proc_state(pid)),
        )
    })
    .await;
    sup.resume("p").unwrap();
    assert_eq!(sup.state("p"), Some(ProcState::Running { pid }));
    poll("state S", Duration::from_secs(5), || {
        (
            matches!(proc_state(pid), Some('S' | 'R')),
            format!("{:?}", proc_state(pid)),
        )
    })
    .await;
    // A paused process still dies of SIGTERM: terminate resumes it so it can.
    let mut exits = sup.exits();
    sup.pause("p").unwrap();
    sup.terminate("p").unwrap();
    assert_eq!(
        next_exit(&mut exits).await.signal.as_deref(),
        Some("SIGTERM")
    );
}

#[tokio::test]
async fn restart_keeps_or_wipes_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let sup = Supervisor::new().unwrap();
    let spec = sh(
        "node",
        "mkdir -p \"$DATA\"; echo start >> \"$DATA/starts\"; exec sleep 1000",
        dir.path(),
    );
    let starts = spec.data_dir.clone().unwrap().join("starts");
    let count = |n: usize| {
        let starts = starts.clone();
        move || {
            let t = std::fs::read_to_string(&starts).unwrap_or_default();
            (t.lines().count() == n, t)
        }
    };
    let pid1 = sup.spawn(spec).await.unwrap();
    poll("first start recorded", Duration::from_secs(5), count(1)).await;
    let mut exits = sup.exits();
    let pid2 = sup.restart("node", false).await.unwrap();
    assert_ne!(pid1, pid2);
    let e = next_exit(&mut exits).await;
    assert_eq!(
        (e.pid, e.signal.as_deref(), e.expected),
        (pid1, Some("SIGKILL"), true)
    );
    assert_eq!(sup.state("node"), Some(ProcState::Running { pid: pid2 }));
    poll(
        "data kept across a restart",
        Duration::from_secs(5),
        count(2),
    )
    .await;
    let pid3 = sup.restart("node", true).await.unwrap();
    poll(
        "data wiped, one fresh start",
        Duration::from_secs(5),
        count(1),
    )
    .await;
    assert!(!dead(pid3) && dead(pid2));
}

/// A restart right after a kill (the dashboard's `k` then `r`) finds the process dying or already reaped;
/// either way it starts it again. (Once, the reaper recorded the exit between the restart's look and its
/// SIGKILL, and the restart failed with "not running".)
#[tokio::test]
async fn restart_right_after_a_kill_always_starts_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let sup = Supervisor::new().unwrap();
    let mut pid = sup
        .spawn(sh("node", "exec sleep 1000", dir.path()))
        .await
        .unwrap();
    for round in 0..30 {
        sup.kill("node").unwrap();
        let next = sup
            .restart("node", false)
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_ne!(next, pid);
        assert_eq!(sup.state("node"), Some(ProcState::Running { pid: next }));
        pid = next;
    }
}

#[tokio::test]
async fn mistakes_get_named_errors() {
    let dir = tempfile::tempdir().unwrap();
    let sup = Supervisor::new().unwrap();
    assert!(matches!(
        sup.kill("nobody"),
        Err(ChaosError::UnknownProcess { .. })
    ));
    let pid = sup
        .spawn(sh("a", "exec sleep 1000", dir.path()))
        .await
        .unwrap();
    match sup.spawn(sh("a", "exec sleep 1000", dir.path())).await {
        Err(ChaosError::AlreadyRunning { pid: p, .. }) => assert_eq!(p, pid),
        other => panic!("expected AlreadyRunning, got {other:?}"),
    }
    let mut missing = sh("b", "", dir.path());
    missing.program = dir.path().join("no-such-program");
    let e = sup.spawn(missing).await.unwrap_err();
    assert!(matches!(e, ChaosError::Spawn { .. }), "{e:?}");
    assert!(e.to_string().contains("no-such-program"), "{e}");
    let mut exits = sup.exits();
    sup.kill("a").unwrap();
    next_exit(&mut exits).await;
    assert!(matches!(
        sup.pause("a"),
        Err(ChaosError::NotRunning {
            signal: "SIGSTOP",
            ..
        })
    ));
}

#[tokio::test]
async fn shutdown_terminates_then_kills_the_stubborn() {
    let dir = tempfile::tempdir().unwrap();
    let sup = Supervisor::new().unwrap();
    let polite = sup
        .spawn(sh("polite", "exec sleep 1000", dir.path()))
        .await
        .unwrap();
    let stubborn = sup
        .spawn(sh(
            "stubborn",
            "trap '' TERM; echo trapped; while :; do sleep 1; done",
            dir.path(),
        ))
        .await
        .unwrap();
    let paused = sup
        .spawn(sh("paused", "exec sleep 1000", dir.path()))
        .await
        .unwrap();
    sup.pause("paused").unwrap();
    wait_for_log(&dir.path().join("logs/stubborn.log"), "trapped").await;
    let start = Instant::now();
    sup.shutdown(Duration::from_millis(200)).await;
    eprintln!("shutdown took {:?}", start.elapsed());
    let signal = |name| match sup.state(name) {
        Some(ProcState::Exited { signal, .. }) => signal,
        other => panic!("{name} not exited: {other:?}"),
    };
    assert_eq!(signal("polite").as_deref(), Some("SIGTERM"));
    assert_eq!(signal("paused").as_deref(), Some("SIGTERM"));
    assert_eq!(signal("stubborn").as_deref(), Some("SIGKILL"));
    for pid in [polite, stubborn, paused] {
        assert!(dead(pid), "pid {pid} alive after shutdown");
    }
}

#[tokio::test]
async fn dropping_the_supervisor_kills_its_processes() {
    let dir = tempfile::tempdir().unwrap();
    let sup = Supervisor::new().unwrap();
    let pid = sup
        .spawn(sh("x", "exec sleep 1000", dir.path()))
        .await
        .unwrap();
    drop(sup);
    poll("the child to die", Duration::from_secs(5), || {
        (dead(pid), format!("{:?}", proc_state(pid)))
    })
    .await;
}

/// The lifeline alone, without the supervisor's other layers: closing the write end ends the child.
#[test]
fn a_closed_lifeline_ends_the_child() {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let fd = read.as_raw_fd();
    let mut cmd = helper_command("lifeline-child");
    cmd.env(LIFELINE_ENV, fd.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    // SAFETY: only fcntl runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let fd = BorrowedFd::borrow_raw(fd);
            nix::fcntl::fcntl(
                fd,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
            )
            .map(|_| ())
            .map_err(|e| std::io::Error::from_raw_os_error(e as i32))
        });
    }
    let mut child = KillOnDrop(cmd.spawn().unwrap());
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("WATCHING") {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "child ended before watching"
        );
    }
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "child exited while the lifeline was open"
    );
    drop(write);
    drop(read);
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "child still alive 5 s after its lifeline closed"
        );
        std::thread::sleep(Duration::from_millis(2));
    };
    eprintln!("lifeline EOF -> child exit in {:?}", start.elapsed());
    assert_eq!(status.code(), Some(LIFELINE_EXIT_CODE));
}

/// Kills a helper if the test fails before it does, so a failed run leaves nothing behind.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The promise: SIGKILL the orchestrator and none of its children survive, the paused one included.
#[test]
fn no_orphans_when_the_parent_is_sigkilled() {
    let dir = tempfile::tempdir().unwrap();
    let mut parent = KillOnDrop(
        helper_command("parent")
            .env("SQUALL_CHAOS_TEST_DIR", dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = parent.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some((_, rest)) = line.split_once("PIDS ") {
                let _ = tx.send(
                    rest.split(' ')
                        .map(|p| p.parse::<u32>().unwrap())
                        .collect::<Vec<_>>(),
                );
            }
        }
    });
    let pids = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the parent never printed its children's pids");
    assert_eq!(pids.len(), 3);
    // SIGSTOP takes effect when the child is next scheduled, which on a busy machine is not at once.
    let start = Instant::now();
    while proc_state(pids[1]) != Some('T') {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the paused child is not stopped: state {:?}",
            proc_state(pids[1])
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(
        pids.iter().all(|&p| !dead(p)),
        "a child died early: {pids:?}"
    );

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(parent.0.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let start = Instant::now();
    parent.0.wait().unwrap();
    loop {
        let alive: Vec<_> = pids.iter().copied().filter(|&p| !dead(p)).collect();
        if alive.is_empty() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "children alive 5 s after the parent's SIGKILL: {:?}",
            alive
                .iter()
                .map(|&p| (p, proc_state(p)))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    eprintln!(
        "parent SIGKILL -> all children gone in {:?}",
        start.elapsed()
    );
}
