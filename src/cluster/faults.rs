//! The network faults in force, as data: each with its id, what was asked, the proxy's id for it and the links
//! it is on. What adds, removes and expires them is in [`super::faultset`].

use std::collections::BTreeMap;

use squall_chaos::LinkId;

use super::fault::FaultCmd;

/// One fault in force.
#[derive(Clone, Debug)]
pub(super) struct Active {
    /// What was asked, with a `leader` target resolved to the node it named.
    pub cmd: FaultCmd,
    /// The proxy's id for it (one id across every link it is on).
    pub chaos: u64,
    /// The links it is on.
    pub links: Vec<LinkId>,
    /// The short name for the header.
    pub short: String,
    pub since_ms: u64,
    pub until_ms: Option<u64>,
}

/// Every fault in force, by id.
#[derive(Default)]
pub(super) struct FaultSet {
    next: u64,
    pub active: BTreeMap<u64, Active>,
}

impl FaultSet {
    pub(super) fn insert(&mut self, a: Active) -> u64 {
        self.next += 1;
        self.active.insert(self.next, a);
        self.next
    }
}
