//! The lifeline between squall's supervisor and the processes it starts: the supervisor hands each child the
//! read end of a pipe whose write end only it holds, and names the descriptor in [`LIFELINE_ENV`]. When the
//! supervisor is gone — however it ended, SIGKILL included — the kernel closes the write end, the child reads
//! end-of-file and exits with [`LIFELINE_EXIT_CODE`], so no node outlives its cluster.
//!
//! The child's half lives here, on its own, so a node program links only this (and `nix`), not the fault
//! engine that spawns it (`squall-chaos`, which brings FUSE).

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, FdFlag, fcntl};

/// The environment variable that tells a child which file descriptor is its lifeline.
pub const LIFELINE_ENV: &str = "SQUALL_LIFELINE_FD";

/// The exit code of a child whose lifeline closed (its supervisor is gone).
pub const LIFELINE_EXIT_CODE: i32 = 70;

/// Why the lifeline named in the environment cannot be watched.
#[derive(Debug, thiserror::Error)]
#[error("bad lifeline descriptor {value:?} in {LIFELINE_ENV}: {reason}")]
pub struct LifelineError {
    /// The environment variable's value.
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

/// For a child program: if [`LIFELINE_ENV`] is set, start a thread that exits the process with
/// [`LIFELINE_EXIT_CODE`] as soon as the supervisor's end of the lifeline closes. Returns whether a lifeline
/// is being watched. Call it first thing in `main`.
pub fn watch_from_env() -> Result<bool, LifelineError> {
    match std::env::var_os(LIFELINE_ENV) {
        None => Ok(false),
        Some(value) => watch(&value).map(|()| true),
    }
}

/// Watches the lifeline whose descriptor number is `value` (as [`LIFELINE_ENV`] holds it): takes the
/// descriptor over, marks it close-on-exec (this process's own children must not keep it open), and starts
/// the thread that exits the process at end-of-file. `Err` when `value` is not a number or names no open
/// descriptor.
pub fn watch(value: &OsStr) -> Result<(), LifelineError> {
    let bad = |reason: String| LifelineError {
        value: value.to_string_lossy().into_owned(),
        reason,
    };
    let fd: RawFd = value
        .to_str()
        .and_then(|s| s.trim().parse().ok())
        .filter(|fd| *fd >= 0)
        .ok_or_else(|| bad("not a file descriptor number".into()))?;
    // SAFETY: checked that the descriptor is open (F_GETFD) before taking ownership; the supervisor handed it
    // to this process for exactly this use and nothing else here refers to it.
    let owned = unsafe {
        fcntl(BorrowedFd::borrow_raw(fd), FcntlArg::F_GETFD)
            .map_err(|e| bad(format!("descriptor is not open: {e}")))?;
        OwnedFd::from_raw_fd(fd)
    };
    fcntl(owned.as_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
        .map_err(|e| bad(format!("cannot set close-on-exec: {e}")))?;
    std::thread::Builder::new()
        .name("squall-lifeline".into())
        .spawn(move || {
            let mut buf = [0u8; 64];
            loop {
                match nix::unistd::read(&owned, &mut buf) {
                    Ok(0) => break,
                    Ok(_) | Err(Errno::EINTR) => continue,
                    Err(_) => break,
                }
            }
            std::process::exit(LIFELINE_EXIT_CODE);
        })
        .map_err(|e| bad(format!("cannot start the watcher thread: {e}")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_that_names_no_open_descriptor_is_refused_with_the_value_and_why() {
        for (value, why) in [
            ("seven", "not a file descriptor number"),
            ("-3", "not a file descriptor number"),
            ("", "not a file descriptor number"),
            ("1000000", "descriptor is not open"),
        ] {
            let e = watch(OsStr::new(value)).unwrap_err();
            assert_eq!(e.value, value);
            assert!(e.reason.contains(why), "{value:?}: {e}");
            assert!(e.to_string().contains(LIFELINE_ENV), "{e}");
        }
    }
}
