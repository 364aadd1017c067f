//! The real dashboard in a real terminal: a detached tmux session on its own socket runs `squall`,
//! `send-keys` types as a person would and `capture-pane` reads the screen, polled with a deadline.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// A tmux server of one session (`main`), killed when dropped.
pub struct Tmux {
    socket: String,
    /// How long [`Tmux::wait_for`] polls before failing.
    pub wait: Duration,
}

impl Tmux {
    /// A `tmux` command on this server's socket.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket]);
        c
    }

    /// The screen as text, one line per row.
    pub fn screen(&self) -> String {
        let out = self
            .cmd()
            .args(["capture-pane", "-p", "-t", "main"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Sends keys as tmux names them (`"Enter"`, `"Escape"`, `"-l"` then literal text).
    pub fn keys(&self, keys: &[&str]) {
        let st = self
            .cmd()
            .args(["send-keys", "-t", "main"])
            .args(keys)
            .status()
            .expect("tmux send-keys");
        assert!(st.success());
    }

    /// Types a line into the dashboard's prompt (`:`) and runs it.
    pub fn prompt(&self, line: &str) {
        self.keys(&[":"]);
        self.keys(&["-l", line]);
        self.keys(&["Enter"]);
    }

    /// Polls the screen until `f` finds what it wants; panics with the last screen otherwise.
    /// Waits (as [`Tmux::wait_for`], saying `what`) for the line `squall exited with N` that a session started
    /// by [`Tmux::start_sized`] prints once squall is gone, and returns N as printed.
    pub fn exit_status(&self, what: &str) -> String {
        self.wait_for(what, |s| {
            let line = s.lines().find(|l| l.starts_with("squall exited with "))?;
            Some(
                line.trim_start_matches("squall exited with ")
                    .trim()
                    .to_string(),
            )
        })
    }

    pub fn wait_for<T>(&self, what: &str, mut f: impl FnMut(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + self.wait;
        loop {
            let screen = self.screen();
            if let Some(v) = f(&screen) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "waited {:?} for {what}; the screen shows:\n{screen}",
                self.wait
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A handle on the tmux server of socket `squall-e2e-TAG-PID`, with no session started yet.
    pub fn on_socket(tag: &str) -> Tmux {
        Tmux {
            socket: format!("squall-e2e-{tag}-{}", std::process::id()),
            wait: Duration::from_secs(40),
        }
    }

    /// [`Tmux::start_sized`] at 160×48.
    pub fn start(tag: &str, dir: &Path, squall_args: &str) -> Tmux {
        Self::start_sized(tag, dir, squall_args, 160, 48)
    }

    /// Starts `squall SQUALL_ARGS` in a detached `width`×`height` session on its own socket (named after
    /// `tag`), with a config in `dir` that keeps the window after squall exits; the line
    /// `squall exited with N` follows its end.
    pub fn start_sized(tag: &str, dir: &Path, squall_args: &str, width: u16, height: u16) -> Tmux {
        let conf = dir.join("tmux.conf");
        std::fs::write(
            &conf,
            "set -g remain-on-exit on\nset -g default-terminal xterm-256color\n",
        )
        .unwrap();
        let tmux = Tmux::on_socket(tag);
        let command = format!(
            "sh -c '{} {squall_args}; echo squall exited with $?'",
            env!("CARGO_BIN_EXE_squall"),
        );
        let (w, h) = (width.to_string(), height.to_string());
        let st = tmux
            .cmd()
            .arg("-f")
            .arg(&conf)
            .args([
                "new-session",
                "-d",
                "-s",
                "main",
                "-x",
                &w,
                "-y",
                &h,
                &command,
            ])
            .status()
            .expect("tmux new-session");
        assert!(st.success());
        tmux
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").status();
    }
}

/// "leader n2  term 5" in the header.
pub fn header_leader(screen: &str) -> Option<(u64, u64)> {
    let line = screen.lines().find(|l| l.contains("leader n"))?;
    let rest = &line[line.find("leader n")? + "leader n".len()..];
    let leader: u64 = rest
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    let t = &line[line.find("term ")? + 5..];
    let term: u64 = t
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    Some((leader, term))
}

fn tmux_available() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// True (after saying so) when tmux is missing outside CI; in CI a missing tmux fails the test.
pub fn skipped_without_tmux() -> bool {
    if tmux_available() {
        return false;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "tmux is required in CI (.ci/run installs it)"
    );
    eprintln!("SKIPPED: tmux is not installed (apt-get install tmux)");
    true
}
