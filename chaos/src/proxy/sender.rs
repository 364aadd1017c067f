//! Sender identification for per-destination proxies.
//!
//! Some nodes cannot be told one address per peer: etcd stores one peer URL per member, cluster-wide, so every
//! member dials the same address to reach member B. squall then puts one proxy in front of each member
//! ([`Network::add_destination`](super::Network::add_destination)) and tells senders apart per connection: the
//! framing reports the member id the connection's opener gives for itself (for rafthttp, the `X-Server-From`
//! header, etcd's member id in hex), and a [`SenderTable`] the caller fills maps that id to a node.
//!
//! Once known, the request direction of the connection follows link `sender -> destination` and the response
//! direction link `destination -> sender` (a rafthttp stream carries the destination's messages back to the
//! sender in its responses). Until then (before the first request naming its sender has been parsed, or while
//! the table has no entry for the id it named) the connection is unattributed: its bytes are forwarded with no
//! fault and counted on no link. The request that names the sender is itself judged under the sender's link,
//! since it is parsed whole before anything of it is forwarded; attribution is retried on every later read, so
//! a table entry added late takes over open connections (a long-lived stream among them).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use super::Endpoint;
use super::link::Link;
use super::rafthttp::ConnState;

/// Maps the member ids a node reports for itself to squall's node ids. Cheap to clone; clones share entries.
#[derive(Debug, Clone, Default)]
pub struct SenderTable {
    ids: Arc<RwLock<HashMap<u64, Endpoint>>>,
}

impl SenderTable {
    /// Says that member id `member` is node `node` (replacing an earlier entry for `member`).
    pub fn set(&self, member: u64, node: Endpoint) {
        self.ids
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(member, node);
    }

    /// Forgets member id `member` (a member removed): its new connections stay unattributed.
    pub fn remove(&self, member: u64) {
        self.ids
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&member);
    }

    /// The node of member id `member`, if known.
    pub fn get(&self, member: u64) -> Option<Endpoint> {
        self.ids
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&member)
            .copied()
    }
}

/// One connection of a per-destination proxy: who it goes to, what its framing learnt, and its links once
/// the sender is known.
#[derive(Debug)]
pub(crate) struct Attribution {
    pub(crate) to: Endpoint,
    pub(crate) conn: Arc<ConnState>,
    /// (request link `sender -> to`, response link `to -> sender`), set once.
    links: OnceLock<(Arc<Link>, Arc<Link>)>,
}

impl Attribution {
    pub(crate) fn new(to: Endpoint, conn: Arc<ConnState>) -> Attribution {
        Attribution {
            to,
            conn,
            links: OnceLock::new(),
        }
    }

    /// The connection's links, resolving them now if the sender has become known.
    pub(crate) fn resolve(
        &self,
        table: &SenderTable,
        link: impl Fn(Endpoint, Endpoint) -> Arc<Link>,
    ) -> Option<&(Arc<Link>, Arc<Link>)> {
        if let Some(l) = self.links.get() {
            return Some(l);
        }
        let member = self.conn.sender()?;
        let from = table.get(member)?;
        let fwd = link(from, self.to);
        let back = link(self.to, from);
        let mut fresh = false;
        let got = self.links.get_or_init(|| {
            fresh = true;
            (fwd, back)
        });
        if fresh {
            use std::sync::atomic::Ordering::Relaxed;
            got.0.counters.connections_total.fetch_add(1, Relaxed);
            got.0.counters.connections_open.fetch_add(1, Relaxed);
        }
        Some(got)
    }

    /// The request link, if resolved.
    pub(crate) fn forward(&self) -> Option<&Arc<Link>> {
        self.links.get().map(|l| &l.0)
    }
}
