//! etcd as a node kind: what the kind file's names `rafthttp`, `etcd-raft`, `per-destination` with
//! `sender = "x-server-from"` and `etcd-v3` stand for, as library pieces.
//!
//! - framing `rafthttp`: [`squall_chaos::Framing::RaftHttp`] (the proxy cuts etcd's peer HTTP into raft messages);
//! - classifier `etcd-raft`: [`classify::EtcdClassifier`];
//! - peers `per-destination`, `sender = "x-server-from"`: [`squall_chaos::Network::add_destination`] with the
//!   member ids of [`member_id`] in [`squall_chaos::Network::senders`];
//! - status, client and membership `etcd-v3`: [`client::EtcdClient`].

pub mod classify;
pub mod client;

use sha1::{Digest, Sha1};

/// The member id etcd gives a member of a new cluster: the first 8 bytes (big-endian) of the SHA-1 of its
/// sorted peer URLs joined, followed by the cluster token (etcd 3.4, `membership.NewMember`, without a time:
/// members added later get a time in the hash, so take their id from the member-add answer instead). Lets the
/// caller fill the sender table before the members start, so their first elections are already attributed.
pub fn member_id(peer_urls: &[&str], token: &str) -> u64 {
    let mut urls: Vec<&str> = peer_urls.to_vec();
    urls.sort_unstable();
    let mut h = Sha1::new();
    for u in urls {
        h.update(u.as_bytes());
    }
    h.update(token.as_bytes());
    let d = h.finalize();
    u64::from_be_bytes(d[..8].try_into().expect("SHA-1 has 20 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_ids_are_those_etcd_computes() {
        // etcd 3.4.23 started with this peer URL and the default token reported this id.
        assert_eq!(
            member_id(&["http://127.0.0.1:23801"], "etcd-cluster"),
            13668033151171901709
        );
    }
}
