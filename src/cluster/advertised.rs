//! `advertised.json` in a cluster directory: the addresses squall handed its members that they keep in their
//! own data, so that a later session on the directory hands them the same ones and the members find each other
//! again. For a per-destination kind that is the proxy in front of each member: etcd stores every member's peer
//! URL (the `--initial-advertise-peer-urls` squall gave it: its proxy) in its membership, and a restarted member
//! dials the URLs it stored, whatever its flags say. A per-sender kind's node is told its peers on every start
//! (squall's own), so nothing is recorded for it.
//!
//! The ports squall picks for a node (`{port.NAME}`) are not recorded: etcd keeps no listen address in its
//! data, and the client URLs it advertises it publishes anew each time it starts, so a resumed etcd member on
//! new ports serves (`tests/etcd_up.rs` resumes one so).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Mutex;

use anyhow::anyhow;
use serde::{Deserialize, Serialize};

use super::Cluster;
use super::backend::Links;
use super::command::NodeId;

/// Name of the file recording the addresses squall handed the members of a cluster directory.
pub const ADVERTISED_FILE: &str = "advertised.json";

/// Serialises the read-modify-write of `advertised.json` within one session (two `add`s at once).
static WRITING: Mutex<()> = Mutex::new(());

/// `advertised.json`: per member, the address its peers were told to reach it at.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Advertised {
    /// The proxy in front of each member of a per-destination kind (node id → address, port included).
    #[serde(default)]
    pub destinations: BTreeMap<NodeId, SocketAddr>,
}

impl Advertised {
    /// Reads `advertised.json` from `dir`: empty when there is none (a new directory, or one from before the
    /// file existed). `Err` names the file and what to do.
    pub fn read(dir: &Path) -> Result<Advertised, String> {
        let path = dir.join(ADVERTISED_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Advertised::default());
            }
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        serde_json::from_slice(&bytes).map_err(|e| {
            format!(
                "{} is not squall's record of its members' addresses: {e}; its members stored those addresses, \
                 so without it they cannot find each other: put the file back as an earlier session wrote it, \
                 or use a new --dir",
                path.display()
            )
        })
    }

    /// Writes `advertised.json` into `dir` durably: a temporary file, synced, renamed over the old one, and the
    /// directory synced, since the members' own data (synced by them) depends on it.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        use std::io::Write as _;
        let tmp = dir.join(format!("{ADVERTISED_FILE}.tmp"));
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?)?;
        file.sync_all()?;
        std::fs::rename(&tmp, dir.join(ADVERTISED_FILE))?;
        std::fs::File::open(dir)?.sync_all()
    }
}

/// Starts the proxy in front of each of `ids` (a per-destination kind): on a resumed directory (`resume`) where
/// `advertised.json` says it listened before, else on a port the OS chooses, recording the new ones before any
/// member starts. `Err` for a person (exit 2): an address that cannot be bound again, naming the node, the
/// address and what to do; a record that cannot be read or written. Nothing in `dir` is changed on `Err`
/// beyond new addresses recorded.
pub(super) async fn start_destinations(
    links: &Links,
    dir: &Path,
    ids: &[NodeId],
    resume: bool,
) -> anyhow::Result<BTreeMap<NodeId, SocketAddr>> {
    // A first start's record (of an earlier attempt that never started a member) is stored by no member.
    let mut record = if resume {
        recorded(dir).map_err(|e| anyhow!(e))?;
        Advertised::read(dir).map_err(|e| anyhow!(e))?
    } else {
        Advertised::default()
    };
    let mut started = BTreeMap::new();
    let mut new = false;
    for &to in ids {
        let addr = match record.destinations.get(&to) {
            Some(&at) => links
                .add_destination_at(to, at)
                .await
                .map_err(|e| anyhow!(taken(dir, to, at, &e)))?,
            None => {
                let addr = links
                    .add_destination(to)
                    .await
                    .map_err(|e| anyhow!("starting the proxy in front of node {to}: {e}"))?;
                record.destinations.insert(to, addr);
                new = true;
                addr
            }
        };
        started.insert(to, addr);
    }
    if new || !resume {
        let _held = WRITING.lock().unwrap_or_else(|e| e.into_inner());
        record.write(dir).map_err(|e| {
            anyhow!(
                "cannot record the members' addresses in {}: {e}; a later session could not resume them",
                dir.join(ADVERTISED_FILE).display()
            )
        })?;
    }
    Ok(started)
}

/// `Ok` when a resumed directory `dir` has its record. Without one (a directory from before squall kept it)
/// the members stored addresses squall no longer knows and could not find each other: `Err` says so and what
/// to do, before anything starts.
fn recorded(dir: &Path) -> Result<(), String> {
    if dir.join(ADVERTISED_FILE).exists() {
        return Ok(());
    }
    Err(format!(
        "cannot resume {dir}: it has no {ADVERTISED_FILE}, the record of the addresses its members store for \
         each other (the proxy in front of each; a directory from before squall kept that record, or one whose \
         record was removed), so its members could not find each other. Start a fresh cluster with a new --dir \
         (or put back the {ADVERTISED_FILE} an earlier session wrote). Nothing in {dir} was changed.",
        dir = dir.display()
    ))
}

/// The message for a proxy that cannot listen where the members stored it does: `why` is what binding said.
/// An address the machine does not have (EADDRNOTAVAIL) is not a busy port: the members stored the address of
/// the host they ran on (a directory run on hosts resumed here, or on hosts with another `address`: tester 9's
/// finding 8), and the message says so.
fn taken(dir: &Path, id: NodeId, at: SocketAddr, why: &str) -> String {
    if why.contains("os error 99") || why.contains("Cannot assign requested address") {
        return format!(
            "cannot resume {dir}: the proxy in front of node {id} must listen on {at} again, but {ip} is not an \
             address of the machine that runs node {id} ({why}). Node {id}'s peers stored that address in an \
             earlier session (recorded in {file}): it is the address of the host node {id} ran on. Resume the \
             directory where it ran: with the same --hosts (or --host), each host with the same `address`; or \
             start a fresh cluster with a new --dir. Nothing in {dir} was changed.",
            dir = dir.display(),
            ip = at.ip(),
            file = dir.join(ADVERTISED_FILE).display(),
        );
    }
    format!(
        "cannot resume {dir}: the proxy in front of node {id} must listen on {at} again, but it cannot ({why}). \
         Node {id}'s peers stored that address in an earlier session (its peer address, recorded in {file}) \
         and reach it only there. Free port {port} on the machine that runs node {id} (`ss -ltnp 'sport = \
         :{port}'` names the process holding it) and start again, or start a fresh cluster with a new --dir. \
         Nothing in {dir} was changed.",
        dir = dir.display(),
        file = dir.join(ADVERTISED_FILE).display(),
        port = at.port(),
    )
}

impl Cluster {
    /// Records the proxy in front of node `id` (a member added in this session, before its peers are told of
    /// it), so that a later session puts it there again. `Err` names the file.
    pub(super) fn record_destination(&self, id: NodeId, addr: SocketAddr) -> Result<(), String> {
        let dir = &self.inner.spec.dir;
        let _held = WRITING.lock().unwrap_or_else(|e| e.into_inner());
        let mut record = Advertised::read(dir)?;
        if record.destinations.insert(id, addr) == Some(addr) {
            return Ok(());
        }
        record.write(dir).map_err(|e| {
            format!(
                "cannot record node {id}'s address in {}: {e}",
                dir.join(ADVERTISED_FILE).display()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_round_trips_and_a_missing_one_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Advertised::read(dir.path()).unwrap(), Advertised::default());
        let record = Advertised {
            destinations: [
                (1, "127.0.0.1:40001".parse().unwrap()),
                (4, "10.0.0.2:40004".parse().unwrap()),
            ]
            .into(),
        };
        record.write(dir.path()).unwrap();
        assert_eq!(Advertised::read(dir.path()).unwrap(), record);
        assert!(!dir.path().join("advertised.json.tmp").exists());
    }

    #[test]
    fn a_damaged_record_is_refused_naming_the_file_and_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(ADVERTISED_FILE), "{ not json").unwrap();
        let e = Advertised::read(dir.path()).unwrap_err();
        assert!(
            e.contains("advertised.json") && e.contains("use a new --dir"),
            "{e}"
        );
    }

    #[test]
    fn a_resumed_directory_without_its_record_is_refused_before_anything_starts() {
        let dir = tempfile::tempdir().unwrap();
        let e = recorded(dir.path()).unwrap_err();
        assert!(
            e.contains("no advertised.json") && e.contains("new --dir"),
            "{e}"
        );
        Advertised::default().write(dir.path()).unwrap();
        assert_eq!(recorded(dir.path()), Ok(()));
    }

    #[test]
    fn a_taken_address_names_the_node_the_port_and_what_to_do() {
        let at: SocketAddr = "127.0.0.1:40123".parse().unwrap();
        let said = taken(Path::new("/tmp/c"), 2, at, "Address already in use");
        for part in [
            "node 2",
            "127.0.0.1:40123",
            "Address already in use",
            "Free port 40123",
            "new --dir",
            "Nothing in /tmp/c was changed",
        ] {
            assert!(said.contains(part), "{part}: {said}");
        }
        // Tester 9's finding 8: an etcd directory run on hosts, resumed here, was told to free a port; the
        // address is the host's, which this machine does not have.
        let at: SocketAddr = "10.77.200.1:39503".parse().unwrap();
        let said = taken(
            Path::new("/tmp/c"),
            1,
            at,
            "Cannot assign requested address (os error 99)",
        );
        assert!(!said.contains("Free port"), "{said}");
        for part in [
            "10.77.200.1 is not an address of the machine that runs node 1",
            "the address of the host node 1 ran on",
            "with the same --hosts",
            "Nothing in /tmp/c was changed",
        ] {
            assert!(said.contains(part), "{part}: {said}");
        }
    }
}
