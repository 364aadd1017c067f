//! The `etcd-v3` drivers: a node's status from `/v3/maintenance/status` ([`EtcdStatusSource`]) and the
//! workloads' operations through the JSON gateway ([`EtcdKv`]).
//!
//! etcd names members by a 64-bit member id; squall by node id. The drivers read the node id from the member's
//! name, which the etcd kind file sets to `n{id}` (`--name n{id}`): a leader whose member has another name is
//! reported as unknown, never guessed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use squall_node::raft::Role;

use super::client::{EtcdClient, EtcdError, Member};
use crate::kind::drivers::{
    Addrs, KvAnswer, KvClient, KvOutcome, KvRequest, StatusReport, StatusSource,
};

/// squall's node id of an etcd member named `n{id}` (or a bare number).
pub fn node_of_name(name: &str) -> Option<u64> {
    name.strip_prefix('n').unwrap_or(name).parse().ok()
}

/// One member's status: role from whether it names itself as leader, term (see the poll: etcd's is the term of
/// the last applied entry), leader and applied index. etcd reports no commit index, no votes and no log, so `commit` and `detail` stay `None`; a member
/// that knows no leader is reported with no role (it may be a follower or a candidate: etcd does not say). A
/// learner that knows its leader is reported as a follower with `learner` set (squall's roles have no
/// learner; the displays show it as `learner`).
pub struct EtcdStatusSource {
    client: EtcdClient,
    /// Member id to node id, from the member list; read again when a leader id is not in it.
    names: BTreeMap<u64, u64>,
    /// The term this member reported when last seen not leading.
    term_not_leading: Option<u64>,
}

impl EtcdStatusSource {
    /// A source for the member whose client port is `addr`; every call has `timeout`.
    pub fn new(addr: SocketAddr, timeout: Duration) -> EtcdStatusSource {
        EtcdStatusSource {
            client: EtcdClient::new(addr, timeout),
            names: BTreeMap::new(),
            term_not_leading: None,
        }
    }

    async fn node_of(&mut self, member: u64) -> Option<u64> {
        if !self.names.contains_key(&member)
            && let Ok(members) = self.client.members().await
        {
            self.names = members
                .iter()
                .filter_map(|m| Some((m.id, node_of_name(&m.name)?)))
                .collect();
        }
        self.names.get(&member).copied()
    }

    async fn poll_inner(&mut self) -> Result<StatusReport, String> {
        let s = self.client.status().await.map_err(|e| e.to_string())?;
        // etcd says 0 for "no leader"; a leader whose member is not named `n{id}` is unknown, not none.
        let leader = match s.leader {
            Some(l) => self.node_of(l).await.map(Some),
            None => Some(None),
        };
        let role = match s.leader {
            Some(l) if l == s.member_id => Some(Role::Leader),
            Some(_) => Some(Role::Follower),
            None => None,
        };
        let term = reported_term(
            &mut self.term_not_leading,
            role == Some(Role::Leader),
            s.term,
        );
        Ok(StatusReport {
            role,
            term,
            leader,
            commit: None,
            applied: Some(s.applied),
            pid: None,
            learner: s.is_learner,
            detail: None,
            feed: Vec::new(),
            messages: None,
            notes: Vec::new(),
        })
    }
}

/// The term to report for a member that says `term` and whether it leads, given the term it had when last seen
/// not leading (updated here). etcd 3.4's status term is the term of the last entry the member applied, so a
/// member that has just won an election names itself leader with the previous term until its first entry of
/// the new term applies; paired, the two would say two members led one term. So until the term moves past the
/// one it had while not leading, a leader's term is unknown (`None`).
fn reported_term(term_not_leading: &mut Option<u64>, leading: bool, term: u64) -> Option<u64> {
    if leading {
        term_not_leading.is_none_or(|t| term > t).then_some(term)
    } else {
        *term_not_leading = Some(term);
        Some(term)
    }
}

impl StatusSource for EtcdStatusSource {
    fn poll(&mut self) -> BoxFuture<'_, Result<StatusReport, String>> {
        self.poll_inner().boxed()
    }
}

/// How many times an increment reads and compare-and-sets before it gives up (as `fail`: the last
/// compare-and-set did not happen).
const INCR_TRIES: usize = 32;

/// The workloads' client: each operation goes to one member (any member forwards to the leader; reads are
/// linearizable, etcd's default). A member that cannot be reached, before anything was sent, is left for the
/// next one. An increment is a read and a compare-and-set of the value read, retried while the compare does
/// not hold: etcd has no server-side increment, and a transaction is atomic.
pub struct EtcdKv {
    members: Vec<(u64, EtcdClient)>,
    next: usize,
}

impl EtcdKv {
    /// A client of the members whose client ports are `addrs`.
    pub fn new(addrs: Addrs) -> EtcdKv {
        EtcdKv {
            members: addrs
                .into_iter()
                .map(|(id, a)| (id, EtcdClient::new(a, Duration::from_secs(2))))
                .collect(),
            next: 0,
        }
    }

    /// Runs `call` on members in turn, moving on only while a member cannot be reached (nothing was sent).
    async fn on_some_member(&mut self, call: Call<'_>) -> Result<Option<String>, EtcdError> {
        let n = self.members.len();
        let mut last = None;
        for _ in 0..n {
            let (_, c) = &self.members[self.next % n];
            let res = match call {
                Call::Get(key) => c.get(key).await,
                Call::Put(key, value) => c.put(key, value).await.map(|()| None),
                Call::Cas(key, from, to) => c.cas(key, from, to).await.map(|()| None),
            };
            match res {
                Ok(v) => return Ok(v),
                Err(e) if is_unreached(&e) => {
                    self.next = (self.next + 1) % n;
                    last = Some(e);
                }
                Err(e) => {
                    // Another member may do better next time (this one may be cut off from the leader).
                    if !is_compare(&e) {
                        self.next = (self.next + 1) % n;
                    }
                    return Err(e);
                }
            }
        }
        Err(last.unwrap_or(EtcdError::Fail {
            op: "connect",
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            reason: "no member to send to".into(),
        }))
    }

    async fn incr(&mut self, key: &str, by: i64) -> KvOutcome {
        for _ in 0..INCR_TRIES {
            let now = match self.on_some_member(Call::Get(key)).await {
                Ok(v) => v,
                Err(e) => return outcome(e),
            };
            let current: i64 = match now.as_deref().map(str::parse) {
                None => 0,
                Some(Ok(n)) => n,
                Some(Err(_)) => {
                    return KvOutcome::Fail(format!("{key} holds {now:?}, not a number"));
                }
            };
            let new = current + by;
            let to = new.to_string();
            match self
                .on_some_member(Call::Cas(key, now.as_deref(), &to))
                .await
            {
                Ok(_) => return KvOutcome::Done(KvAnswer::Counter(new)),
                // The compare did not hold: someone else incremented first; nothing happened, try again.
                Err(e) if is_compare(&e) => continue,
                Err(e) => return outcome(e),
            }
        }
        KvOutcome::Fail(format!(
            "{key}: {INCR_TRIES} compare-and-sets in a row found another value (contention)"
        ))
    }
}

/// One call of [`EtcdKv::on_some_member`].
#[derive(Clone, Copy)]
enum Call<'a> {
    Get(&'a str),
    Put(&'a str, &'a str),
    Cas(&'a str, Option<&'a str>, &'a str),
}

fn is_unreached(e: &EtcdError) -> bool {
    matches!(e, EtcdError::Fail { reason, .. } if reason.starts_with("cannot connect") || reason.starts_with("HTTP handshake"))
}

fn is_compare(e: &EtcdError) -> bool {
    matches!(e, EtcdError::Fail { op: "cas", reason, .. } if reason.starts_with("the value was not"))
}

fn outcome(e: EtcdError) -> KvOutcome {
    if e.is_fail() {
        KvOutcome::Fail(e.to_string())
    } else {
        KvOutcome::Info(e.to_string())
    }
}

impl KvClient for EtcdKv {
    fn execute(&mut self, req: KvRequest) -> BoxFuture<'_, KvOutcome> {
        async move {
            match req {
                KvRequest::Read { key } => match self.on_some_member(Call::Get(&key)).await {
                    Ok(v) => KvOutcome::Done(KvAnswer::Value(v)),
                    Err(e) => outcome(e),
                },
                KvRequest::Write { key, value } => {
                    match self.on_some_member(Call::Put(&key, &value)).await {
                        Ok(_) => KvOutcome::Done(KvAnswer::Written),
                        Err(e) => outcome(e),
                    }
                }
                KvRequest::Cas { key, from, to } => {
                    match self.on_some_member(Call::Cas(&key, Some(&from), &to)).await {
                        Ok(_) => KvOutcome::Done(KvAnswer::Swapped(true)),
                        Err(e) if is_compare(&e) => KvOutcome::Done(KvAnswer::Swapped(false)),
                        Err(e) => outcome(e),
                    }
                }
                KvRequest::Incr { key, by } => self.incr(&key, by).await,
            }
        }
        .boxed()
    }
}

/// The node ids of a member list (members named `n{id}`), with their member ids.
pub fn member_nodes(members: &[Member]) -> BTreeMap<u64, u64> {
    members
        .iter()
        .filter_map(|m| Some((node_of_name(&m.name)?, m.id)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_leader_s_term_is_unknown_until_its_applied_term_moves() {
        // Seen in the etcd-paused-leader scenario: n2 won term 3 while its status still said term 2, and the
        // invariants read "n1 and n2 both led term 2".
        let mut seen = None;
        assert_eq!(reported_term(&mut seen, false, 2), Some(2));
        assert_eq!(
            reported_term(&mut seen, true, 2),
            None,
            "stale: the term it followed in"
        );
        assert_eq!(reported_term(&mut seen, true, 3), Some(3));
        assert_eq!(reported_term(&mut seen, false, 4), Some(4));
        // A source that never saw the member follow has nothing to compare with.
        assert_eq!(reported_term(&mut None, true, 5), Some(5));
    }

    #[test]
    fn node_ids_come_from_member_names() {
        assert_eq!(node_of_name("n3"), Some(3));
        assert_eq!(node_of_name("12"), Some(12));
        assert_eq!(node_of_name("default"), None);
        assert_eq!(node_of_name(""), None);
    }
}
