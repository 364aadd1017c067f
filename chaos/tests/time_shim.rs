//! The time shim on real processes: each test starts this test binary again as a child with the shim
//! preloaded (the child runs the same test, sees `PROBE_ENV` and serves clock readings over its stdin and
//! stdout), changes the child's clocks through a [`FakeClock`] and compares what the child reads with the
//! real clocks of this process.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use squall_chaos::clock::{FakeClock, install_shim, monotonic_now, preload_env};

const PROBE_ENV: &str = "SQUALL_SHIM_PROBE";
const S: i64 = 1_000_000_000;

fn realtime_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// In the child: answers requests until stdin closes, then exits. In the parent: returns.
fn serve_if_probe() {
    if std::env::var_os(PROBE_ENV).is_none() {
        return;
    }
    let mut out = std::io::stdout();
    for line in std::io::stdin().lines() {
        let line = line.unwrap();
        let words: Vec<&str> = line.split_whitespace().collect();
        let answer = match words.as_slice() {
            ["now"] => format!("{} {}", monotonic_now(), realtime_now()),
            ["sleep", ms] => {
                std::thread::sleep(Duration::from_millis(ms.parse().unwrap()));
                "slept".into()
            }
            ["tokio", ms] => {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let d = Duration::from_millis(ms.parse().unwrap());
                rt.block_on(async { tokio::time::sleep(d).await });
                "slept".into()
            }
            // Reads both clocks in a tight loop for `ms` (faked) ms; reports the most each went back between
            // two readings and the largest step forward, in ns.
            ["samples", ms] => {
                let end = monotonic_now() + ms.parse::<i64>().unwrap() * 1_000_000;
                let (mut m, mut r) = (monotonic_now(), realtime_now());
                let (mut m_back, mut m_step, mut r_back, mut r_step) = (0i64, 0i64, 0i64, 0i64);
                while m < end {
                    let (m2, r2) = (monotonic_now(), realtime_now());
                    m_back = m_back.max(m - m2);
                    m_step = m_step.max(m2 - m);
                    r_back = r_back.max(r - r2);
                    r_step = r_step.max(r2 - r);
                    (m, r) = (m2, r2);
                }
                format!("{m_back} {m_step} {r_back} {r_step}")
            }
            other => panic!("unknown probe request {other:?}"),
        };
        writeln!(out, "probe: {answer}").unwrap();
        out.flush().unwrap();
    }
    std::process::exit(0);
}

struct Probe {
    child: Child,
    stdin: ChildStdin,
    /// The child's stdout, line by line (read on a thread, so a silent child fails the test, not hangs it).
    lines: mpsc::Receiver<String>,
    clock: FakeClock,
    _dir: tempfile::TempDir,
}

impl Probe {
    /// Starts this binary's test `name` as a probe with the shim preloaded and its clocks true.
    fn start(name: &str) -> Probe {
        let dir = tempfile::tempdir().unwrap();
        let shim = install_shim(dir.path()).unwrap();
        let clock = FakeClock::create(&dir.path().join("clock")).unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", name, "--nocapture", "--test-threads", "1"])
            .env(PROBE_ENV, "1")
            .envs(preload_env(&shim, clock.path()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Probe {
            child,
            stdin,
            lines,
            clock,
            _dir: dir,
        }
    }

    fn ask(&mut self, req: &str) -> Vec<i64> {
        writeln!(self.stdin, "{req}").unwrap();
        self.answer(req)
    }

    /// Waits (at most a minute) for the answer to `req`, already sent.
    fn answer(&mut self, req: &str) -> Vec<i64> {
        let mut seen = Vec::new();
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|e| {
                    panic!(
                        "no answer to `{req}` from the probe within 60 s ({e}); it printed {seen:?}"
                    )
                });
            // libtest's own `test NAME ... ` may start the line.
            if let Some((_, rest)) = line.split_once("probe: ") {
                return rest
                    .split_whitespace()
                    .filter_map(|w| w.parse().ok())
                    .collect();
            }
            seen.push(line);
        }
    }

    /// The probe's (monotonic, realtime) offsets from this process's real clocks, in ns. A reading is
    /// bracketed by two local readings, so the error is at most the round trip, which is returned too.
    fn offsets(&mut self) -> (i64, i64, i64) {
        let (m0, r0) = (monotonic_now(), realtime_now());
        let v = self.ask("now");
        let (m1, r1) = (monotonic_now(), realtime_now());
        (v[0] - (m0 + m1) / 2, v[1] - (r0 + r1) / 2, m1 - m0)
    }

    /// How long a request took in real time.
    fn timed(&mut self, req: &str) -> Duration {
        let t = Instant::now();
        self.ask(req);
        t.elapsed()
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asserts `v` is within `tol` of `want` (all ns), naming what was measured.
fn near(what: &str, v: i64, want: i64, tol: i64) {
    assert!(
        (v - want).abs() <= tol,
        "{what}: {:.3} s, expected {:.3} s ± {:.3} s",
        v as f64 / 1e9,
        want as f64 / 1e9,
        tol as f64 / 1e9
    );
}

#[test]
fn jumps_move_the_wall_clock_only_and_a_backward_jump_stalls_no_timer() {
    serve_if_probe();
    let mut p = Probe::start("jumps_move_the_wall_clock_only_and_a_backward_jump_stalls_no_timer");
    let (m, r, rtt) = p.offsets();
    near("true monotonic", m, 0, rtt + S / 100);
    near("true realtime", r, 0, rtt + S / 100);
    assert_eq!(p.clock.attached_pid(), Some(p.child.id()));

    p.clock.jump(-30 * S).unwrap();
    let (m, r, rtt) = p.offsets();
    near("realtime after -30s", r, -30 * S, rtt + S / 100);
    near("monotonic after -30s", m, 0, rtt + S / 100);
    // With libfaketime the monotonic clock went back too, and every timer waited 30 s.
    let slept = p.timed("tokio 200");
    assert!(
        slept < Duration::from_secs(10),
        "a 200 ms timer took {slept:?}"
    );
    let slept = p.timed("sleep 200");
    assert!(
        slept < Duration::from_secs(10),
        "a 200 ms sleep took {slept:?}"
    );

    p.clock.jump(3600 * S + 30 * S).unwrap();
    let (m, r, rtt) = p.offsets();
    near("realtime after +1h", r, 3600 * S, rtt + S / 100);
    near("monotonic after +1h", m, 0, rtt + S / 100);
    let lead = p.clock.heal();
    assert_eq!(lead, 0);
    let (m, r, rtt) = p.offsets();
    near("realtime healed", r, 0, rtt + S / 100);
    near("monotonic healed", m, 0, rtt + S / 100);
    let slept = p.timed("tokio 200");
    assert!(
        slept < Duration::from_secs(10),
        "a 200 ms timer took {slept:?} after the heal"
    );
}

#[test]
fn a_rate_reaches_sleeps_and_timers_and_its_heal_never_moves_monotonic_back() {
    serve_if_probe();
    let mut p =
        Probe::start("a_rate_reaches_sleeps_and_timers_and_its_heal_never_moves_monotonic_back");
    p.clock.set_rate(4.0).unwrap();
    let (m0, _, _) = p.offsets();
    let t = Instant::now();
    // A 2 s timer and a 2 s sleep on a ×4 clock end after about 0.5 s each.
    let timer = p.timed("tokio 2000");
    let sleep = p.timed("sleep 2000");
    let (m1, r1, rtt) = p.offsets();
    let real = t.elapsed().as_nanos() as i64;
    eprintln!(
        "×4: a 2 s timer took {timer:?}, a 2 s sleep {sleep:?}; real {real} ns, monotonic gained {} ns",
        m1 - m0
    );
    assert!(
        timer < Duration::from_millis(1500) && sleep < Duration::from_millis(1500),
        "timeouts not scaled: a 2 s timer took {timer:?}, a 2 s sleep {sleep:?} at ×4"
    );
    // Over that interval the monotonic clock gained 3 s per real second, within the round trips.
    near("monotonic gain at ×4", m1 - m0, 3 * real, 3 * rtt + S / 10);
    near("realtime gain at ×4", r1, m1, rtt + S / 10);

    // Heal while the probe reads its clocks in a loop: the monotonic clock never goes back.
    writeln!(p.stdin, "samples 1200").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let lead = p.clock.heal();
    let v = p.answer("samples 1200");
    assert_eq!(
        v[0], 0,
        "the monotonic clock went back {} ns across the heal",
        v[0]
    );
    assert!(v[2] > S, "the realtime clock steps back to true: {v:?}");
    let (m, r, rtt) = p.offsets();
    near("monotonic lead kept", m, lead, rtt + S / 100);
    assert!(lead > S, "×4 for over a second left a lead: {lead} ns");
    near("realtime healed", r, 0, rtt + S / 100);
    let slept = p.timed("tokio 500");
    assert!(
        slept >= Duration::from_millis(450),
        "after the heal a 500 ms timer runs at the real rate: {slept:?}"
    );
}

#[test]
fn a_strobe_holds_the_monotonic_clock_instead_of_moving_it_back() {
    serve_if_probe();
    let mut p = Probe::start("a_strobe_holds_the_monotonic_clock_instead_of_moving_it_back");
    p.clock.set_strobe(Duration::from_millis(200)).unwrap();
    let v = p.ask("samples 2500");
    let (m_back, m_step, r_back, r_step) = (v[0], v[1], v[2], v[3]);
    assert_eq!(m_back, 0, "the monotonic clock went back {m_back} ns");
    assert!(
        m_step >= S / 10,
        "the monotonic clock never stepped ahead: {m_step} ns"
    );
    near("realtime strobe back", r_back, S / 5, S / 20);
    assert!(
        r_step >= S / 10,
        "the realtime clock never stepped ahead: {r_step} ns"
    );
}

#[test]
fn without_a_control_file_the_shim_passes_real_time_through() {
    serve_if_probe();
    let dir = tempfile::tempdir().unwrap();
    let shim = install_shim(dir.path()).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "without_a_control_file_the_shim_passes_real_time_through",
            "--nocapture",
        ])
        .env(PROBE_ENV, "1")
        .envs(preload_env(&shim, &dir.path().join("missing")))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let before = realtime_now();
    writeln!(child.stdin.take().unwrap(), "now").unwrap();
    let out = child.wait_with_output().unwrap();
    let after = realtime_now();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.split_once("probe: ").map(|(_, r)| r))
        .unwrap_or_else(|| panic!("no answer from the probe: {text}"));
    let r: i64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(
        (before..=after).contains(&r),
        "realtime {r} outside [{before}, {after}]"
    );
}
