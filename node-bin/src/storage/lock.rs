//! The data directory lock: an exclusive, non-blocking `flock` on `LOCK`, held as long as the storage lives.
//! The kernel drops it when the process dies, so a SIGKILLed node never leaves a stale lock behind.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use super::StorageError;

/// File name of the lock inside the data directory.
pub const LOCK_FILE: &str = "LOCK";

/// Holds the lock until dropped.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: Flock<File>,
}

impl DirLock {
    /// Takes the lock on `dir`, or fails with [`StorageError::Locked`] at once if another holder has it.
    pub(crate) fn acquire(dir: &Path) -> Result<DirLock, StorageError> {
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|source| StorageError::Io {
                path: path.clone(),
                op: "open lock file",
                source,
            })?;
        let mut file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(f) => f,
            Err((_, Errno::EWOULDBLOCK)) => {
                return Err(StorageError::Locked {
                    path: dir.to_path_buf(),
                });
            }
            Err((_, errno)) => {
                return Err(StorageError::Io {
                    path,
                    op: "flock",
                    source: std::io::Error::from(errno),
                });
            }
        };
        // The pid is only for a person looking at the directory; the lock itself is the flock.
        let _ = file
            .set_len(0)
            .and_then(|()| writeln!(file, "{}", std::process::id()));
        Ok(DirLock { _file: file })
    }
}
