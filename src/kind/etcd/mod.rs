//! etcd as a node kind: what the kind file's names `rafthttp`, `etcd-raft`, `per-destination` with
//! `sender = "x-server-from"` and `etcd-v3` stand for, as library pieces.
//!
//! - framing `rafthttp`: [`squall_chaos::Framing::RaftHttp`] (the proxy cuts etcd's peer HTTP into raft messages);
//! - classifier `etcd-raft`: [`classify::EtcdClassifier`];
//! - peers `per-destination`, `sender = "x-server-from"`: [`squall_chaos::Network::add_destination`] with the
//!   member ids of [`member_id`] in [`squall_chaos::Network::senders`];
//! - status and client `etcd-v3`: [`drivers`] over [`client::EtcdClient`];
//! - membership `etcd-v3`: [`membership::EtcdMembership`].

pub mod classify;
pub mod client;
pub mod drivers;
pub mod membership;

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

/// The member id an etcd started with `args` gives itself as a member of a new cluster, from its
/// `--initial-advertise-peer-urls` (comma-separated) and `--initial-cluster-token` (etcd's default
/// `etcd-cluster` when absent). `None` when the arguments name no advertised peer URL.
pub fn member_id_of_args(args: &[std::ffi::OsString]) -> Option<u64> {
    let value = |flag: &str| -> Option<String> {
        args.iter().enumerate().find_map(|(i, a)| {
            let a = a.to_str()?;
            if a == flag {
                args.get(i + 1)?.to_str().map(str::to_string)
            } else {
                a.strip_prefix(flag)?.strip_prefix('=').map(str::to_string)
            }
        })
    };
    let urls = value("--initial-advertise-peer-urls")?;
    let token = value("--initial-cluster-token").unwrap_or_else(|| "etcd-cluster".to_string());
    let urls: Vec<&str> = urls.split(',').collect();
    Some(member_id(&urls, &token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_ids_follow_from_the_command_line() {
        let args: Vec<std::ffi::OsString> = [
            "--name",
            "n1",
            "--initial-advertise-peer-urls",
            "http://127.0.0.1:23801",
        ]
        .iter()
        .map(Into::into)
        .collect();
        assert_eq!(member_id_of_args(&args), Some(13668033151171901709));
        let with_token: Vec<std::ffi::OsString> = [
            "--initial-advertise-peer-urls=http://127.0.0.1:23801",
            "--initial-cluster-token",
            "t",
        ]
        .iter()
        .map(Into::into)
        .collect();
        assert_eq!(
            member_id_of_args(&with_token),
            Some(member_id(&["http://127.0.0.1:23801"], "t"))
        );
        assert_eq!(member_id_of_args(&["--name".into()]), None);
    }

    #[test]
    fn member_ids_are_those_etcd_computes() {
        // etcd 3.4.23 started with this peer URL and the default token reported this id.
        assert_eq!(
            member_id(&["http://127.0.0.1:23801"], "etcd-cluster"),
            13668033151171901709
        );
    }
}
