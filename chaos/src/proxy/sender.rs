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

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use crate::proxy::{Fault, FaultSpec, Framing, LinkId, Network};

    const OK: &[u8] = b"HTTP/1.1 204 No Content\r\n\r\n";

    /// Answers every complete `POST /raft` (a 3-byte body) with 204.
    async fn raft_server() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    loop {
                        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n")
                            && buf.len() >= end + 4 + 3
                        {
                            buf.drain(..end + 7);
                            if s.write_all(OK).await.is_err() {
                                return;
                            }
                            continue;
                        }
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                });
            }
        });
        addr
    }

    /// Sends one pipeline POST naming `member` as its sender; the answer, or what happened instead.
    async fn post(proxy: SocketAddr, member: u64) -> Result<Vec<u8>, String> {
        let mut s = TcpStream::connect(proxy).await.map_err(|e| e.to_string())?;
        let req = format!(
            "POST /raft HTTP/1.1\r\nHost: t\r\nX-Server-From: {member:x}\r\nContent-Length: 3\r\n\r\nabc"
        );
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut got = vec![0u8; OK.len()];
        match tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut got)).await {
            Ok(Ok(_)) => Ok(got),
            Ok(Err(e)) => Err(format!("closed: {e}")),
            Err(_) => Err("no answer within 5 s".into()),
        }
    }

    #[tokio::test]
    async fn a_connection_follows_its_senders_link_once_the_table_names_it() {
        let net = Network::with_framing(3, Framing::RaftHttp, None);
        net.set_upstream(2, raft_server().await);
        let proxy = net.add_destination(2).await.unwrap();
        net.add_fault([LinkId::new(1, 2)], FaultSpec::permanent(Fault::Blackhole));
        // Member 0x1f is not in the table yet: unattributed, so no fault applies.
        assert_eq!(post(proxy, 0x1f).await.as_deref(), Ok(OK));
        assert!(net.link_stats(LinkId::new(1, 2)).unwrap().frames_dropped == 0);
        // Once named, its requests follow link 1 -> 2: the blackhole drops the POST and closes the connection.
        net.senders().set(0x1f, 1);
        let cut = post(proxy, 0x1f).await;
        assert!(
            cut.is_err(),
            "a dropped pipeline POST closes its connection: {cut:?}"
        );
        let stats = net.link_stats(LinkId::new(1, 2)).unwrap();
        assert_eq!((stats.frames_dropped, stats.connections_total), (1, 1));
        // Another sender's link has no fault.
        net.senders().set(0x3, 3);
        assert_eq!(post(proxy, 0x3).await.as_deref(), Ok(OK));
        assert_eq!(
            net.link_stats(LinkId::new(3, 2)).unwrap().frames_forwarded,
            1
        );
        assert_eq!(
            net.link_stats(LinkId::new(2, 3)).unwrap().bytes_forwarded,
            OK.len() as u64,
            "the answer went on the reverse link"
        );
    }

    /// A proxy in front of a node comes back on the address an earlier one listened on (a node that stored it,
    /// as etcd stores peer URLs, reaches its peer there again), and an address in use is refused, named.
    #[tokio::test]
    async fn a_destination_comes_back_at_its_earlier_address_and_a_taken_one_is_named() {
        let server = raft_server().await;
        let first = Network::with_framing(5, Framing::RaftHttp, None);
        first.set_upstream(2, server);
        let at = first.add_destination(2).await.unwrap();
        assert_eq!(post(at, 0x1).await.as_deref(), Ok(OK));

        // While the first proxy listens, the address is taken: refused, naming it.
        let second = Network::with_framing(6, Framing::RaftHttp, None);
        second.set_upstream(2, server);
        let taken = second.add_destination_at(2, at).await.unwrap_err();
        assert!(
            matches!(&taken, crate::ChaosError::Bind { addr, .. } if *addr == at),
            "{taken}"
        );
        assert!(taken.to_string().contains(&at.to_string()), "{taken}");
        // polish2 item 5: it named the pseudo-link the proxy is kept under ("link 2->2").
        assert!(
            taken
                .to_string()
                .contains("the proxy in front of node 2 on")
                && !taken.to_string().contains("2->2"),
            "{taken}"
        );

        // The first network gone (its listener closes once its task is dropped), the address is bound again.
        drop(first);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let again = loop {
            match second.add_destination_at(2, at).await {
                Ok(a) => break a,
                Err(e) => assert!(
                    std::time::Instant::now() < deadline,
                    "{at} was not free within 10 s of the first proxy's end: {e}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert_eq!(again, at);
        assert_eq!(post(at, 0x1).await.as_deref(), Ok(OK));
        // Asked again, the running proxy's address, whatever address is asked for.
        let other: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert_eq!(second.add_destination_at(2, other).await.unwrap(), at);
    }

    #[tokio::test]
    async fn bytes_framing_applies_link_faults_to_whole_reads() {
        let net = Network::with_framing(4, Framing::Bytes, None);
        net.set_upstream(2, raft_server().await);
        let proxy = net.add_link(1, 2).await.unwrap();
        assert_eq!(post(proxy, 1).await.as_deref(), Ok(OK));
        net.add_fault(
            [LinkId::new(1, 2)],
            FaultSpec::permanent(Fault::Loss { p: 1.0 }),
        );
        assert!(post(proxy, 1).await.is_err(), "every read is lost");
        assert!(net.link_stats(LinkId::new(1, 2)).unwrap().frames_dropped >= 1);
    }
}
