//! Disk full: a byte budget; once spent, writes fail with ENOSPC (a write that straddles the limit is cut
//! short, as on a real full disk, so the writer's next write gets the error). Growing a file by truncation
//! spends the budget too, all or nothing (a truncation cannot be cut short); and once it is spent, creating a
//! file or a directory fails with ENOSPC as well, as on a disk with no free block for a new directory entry.

/// How many more bytes may be written; `None` when there is no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Budget(Option<u64>);

impl Budget {
    pub(crate) fn unlimited() -> Budget {
        Budget(None)
    }

    pub(crate) fn limited(bytes: u64) -> Budget {
        Budget(Some(bytes))
    }

    pub(crate) fn remaining(&self) -> Option<u64> {
        self.0
    }

    /// Whether nothing more may be written: new names fail with ENOSPC.
    pub(crate) fn spent(&self) -> bool {
        self.0 == Some(0)
    }

    /// Spends exactly `want` bytes if that many are left; `false` (spending nothing) means ENOSPC.
    pub(crate) fn take_all(&mut self, want: u64) -> bool {
        match &mut self.0 {
            None => true,
            Some(left) if *left >= want => {
                *left -= want;
                true
            }
            Some(_) => false,
        }
    }

    /// How many of `want` bytes may be written now; `None` means fail with ENOSPC. Spends what it grants.
    pub(crate) fn take(&mut self, want: usize) -> Option<usize> {
        match &mut self.0 {
            None => Some(want),
            Some(0) if want > 0 => None,
            Some(left) => {
                let n = (*left).min(want as u64);
                *left -= n;
                Some(n as usize)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_cuts_short_then_refuses() {
        let mut b = Budget::unlimited();
        assert_eq!(b.take(1 << 20), Some(1 << 20));
        let mut b = Budget::limited(10);
        assert_eq!(b.take(4), Some(4));
        assert_eq!(
            b.take(8),
            Some(6),
            "a write straddling the limit is cut short"
        );
        assert_eq!(b.take(1), None, "then ENOSPC");
        assert_eq!(b.take(0), Some(0));
        assert_eq!(b.remaining(), Some(0));
        assert!(b.spent());
        assert!(b.take_all(0));
        let mut b = Budget::limited(10);
        assert!(!b.take_all(11), "all or nothing");
        assert!(b.take_all(10));
        assert!(b.spent());
        assert!(Budget::unlimited().take_all(u64::MAX));
    }
}
