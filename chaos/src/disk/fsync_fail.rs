//! Fsync failure: the next (or every) `fsync`/`fdatasync` of a file fails with EIO. Like Linux after a
//! writeback error, the file's unsynced data is dropped (its pages counted clean and evicted), so a writer that
//! retries the fsync and sees success has still lost it — the lesson PostgreSQL learned in 2018.

/// Which syncs fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsyncFailure {
    /// Only the next one; then the fault clears itself.
    Once,
    /// Every one until healed.
    Always,
}

impl FsyncFailure {
    /// Whether a sync fails now, and what fault is left in force afterwards.
    pub(crate) fn fire(fault: Option<FsyncFailure>) -> (bool, Option<FsyncFailure>) {
        match fault {
            None => (false, None),
            Some(FsyncFailure::Once) => (true, None),
            Some(FsyncFailure::Always) => (true, Some(FsyncFailure::Always)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_clears_itself_always_stays() {
        assert_eq!(FsyncFailure::fire(None), (false, None));
        assert_eq!(FsyncFailure::fire(Some(FsyncFailure::Once)), (true, None));
        assert_eq!(
            FsyncFailure::fire(Some(FsyncFailure::Always)),
            (true, Some(FsyncFailure::Always))
        );
    }
}
