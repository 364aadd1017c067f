//! `squall maelstrom-node`: the process squall starts for one Maelstrom node. It starts the node's executable
//! with its stdin and stdout on pipes (stderr stays the log file squall gave this process, and the working
//! directory is the node's data directory), sends it `init`, and is from then on the node's network card:
//!
//! - every line the node writes is read as a message; one for node `nK` goes as a frame to the squall proxy of
//!   the link to `K` (whose faults decide its fate), one for a client `cK` back on that client's connection,
//!   one to itself straight to its stdin. A line that is not a message, or names a destination nobody knows,
//!   is written to the log with its reason, counted, and dropped.
//! - frames arriving on the peer port (from other nodes' proxies) and requests arriving on the client port
//!   (from squall's workload clients) are written to the node's stdin.
//!
//! The address file (`{"peer": …, "client": …}`) is written once the node has answered `init` with
//! `init_ok`: that is readiness. Frames on both ports carry a 4-byte big-endian length; a peer frame's payload
//! is the body's type, a newline, then the message as the node wrote it (so the classifier reads the type
//! from the first bytes, however long the message). A client frame is the bare message; the frame
//! [`STATUS_REQUEST`] asks for the bridge's counters instead ([`Status`]).
//!
//! The bridge and the node share a process group, so squall's kill, pause and restart reach both; if squall
//! goes away the lifeline ends the bridge and the node sees its stdin close.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::{Malformed, head, node_id, node_name};

/// The client frame that asks for the bridge's [`Status`].
pub const STATUS_REQUEST: &[u8] = b"?status";
/// The sender name of the `init` message.
const INIT_SRC: &str = "c0";
/// How long the node has to answer `init`.
const INIT_DEADLINE: Duration = Duration::from_secs(20);
/// The longest frame accepted on either port (a bigger length prefix is a broken peer).
const MAX_FRAME: usize = 64 << 20;
/// How many gone clients the bridge remembers (a client is replaced after each timed-out operation).
const GONE_KEPT: usize = 65_536;
/// Malformed lines kept for [`Status::recent_malformed`].
const RECENT: usize = 8;

pub use crate::cli::BridgeArgs;

/// The reserved destination a node writes to tell squall its role, term, leader and commit index (README,
/// "The destination `squall`"): a message `{"dest": "squall", "body": {"type": "status", …}}`, never answered.
pub const SQUALL_DEST: &str = "squall";

/// What a node last told squall of itself through [`SQUALL_DEST`]; a field it left out is `None` (shown `—`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reported {
    /// `leader`, `follower`, `candidate` or `pre-candidate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The node's current term.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<u64>,
    /// The leader it knows of (`n1`); `Some(None)` when it said `null`: it knows of none.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub leader: Option<Option<String>>,
    /// The highest index it knows committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<u64>,
}

/// A field that is there, `null` included (`Some(None)`); `default` makes an absent one `None`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// The roles a report may name.
pub const ROLES: &[&str] = &["leader", "follower", "candidate", "pre-candidate"];

/// Reads a report's body; `Err` says what is wrong with it.
pub fn reported(body: &serde_json::Value) -> Result<Reported, String> {
    if body["type"] != "status" {
        return Err(format!(
            "a message to `{SQUALL_DEST}` has type `status`, not {}",
            body["type"]
        ));
    }
    let r: Reported = serde_json::from_value(body.clone())
        .map_err(|e| format!("a `status` to `{SQUALL_DEST}`: {e}"))?;
    if let Some(role) = &r.role
        && !ROLES.contains(&role.as_str())
    {
        return Err(format!(
            "a `status` to `{SQUALL_DEST}` names role `{role}`; use one of {}",
            ROLES.join(", ")
        ));
    }
    if let Some(Some(l)) = &r.leader
        && node_id(l).is_none()
    {
        return Err(format!(
            "a `status` to `{SQUALL_DEST}` names leader `{l}`, not a node (n1, n2, …) or null"
        ));
    }
    Ok(r)
}

/// The bridge's counters, as a status request answers them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The node's name (`n2`).
    #[serde(default)]
    pub node: String,
    /// What the node last told squall of itself, if it ever did.
    #[serde(default)]
    pub reported: Option<Reported>,
    /// Messages the node sent to other nodes (each through a link proxy).
    #[serde(default)]
    pub to_nodes: u64,
    /// The bridge's process id.
    pub pid: u32,
    /// The node executable's process id.
    pub node_pid: Option<u32>,
    /// Messages the node wrote, by body type.
    pub sent: BTreeMap<String, u64>,
    /// Messages written to the node's stdin, by body type (`init` included).
    pub received: BTreeMap<String, u64>,
    /// Lines the node wrote that were dropped as malformed.
    pub malformed: u64,
    /// The last few of them: the reason and the start of the line.
    pub recent_malformed: Vec<String>,
    /// Replies the node wrote to a client that had gone (its operation timed out and its connection
    /// closed): late, not malformed; dropped.
    #[serde(default)]
    pub late_replies: u64,
}

/// Parses `--peers`: `ID=ADDR` entries joined by commas.
fn parse_peers(s: &str) -> anyhow::Result<BTreeMap<u64, SocketAddr>> {
    let mut out = BTreeMap::new();
    for entry in s.split(',').filter(|e| !e.trim().is_empty()) {
        let (id, addr) = entry
            .split_once('=')
            .ok_or_else(|| anyhow!("--peers entry `{entry}`: expected ID=ADDR"))?;
        let id: u64 = id
            .trim()
            .parse()
            .map_err(|_| anyhow!("--peers entry `{entry}`: `{id}` is not a node id"))?;
        let addr: SocketAddr = addr
            .trim()
            .parse()
            .map_err(|_| anyhow!("--peers entry `{entry}`: `{addr}` is not an address"))?;
        out.insert(id, addr);
    }
    Ok(out)
}

/// Runs the bridge to the node's exit, and exits as the node did (128 + signal for a signal).
pub fn run(args: BridgeArgs) -> ExitCode {
    if let Err(e) = squall_chaos::watch_lifeline_from_env() {
        eprintln!("squall maelstrom-node: error: {e}");
        return ExitCode::from(2);
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("squall maelstrom-node: error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(serve(args)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("squall maelstrom-node: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// What the tasks of one bridge share.
struct Shared {
    id: u64,
    /// Lines (newline included) for the node's stdin.
    stdin: mpsc::UnboundedSender<Bytes>,
    /// Each connected client's name and the sender of its connection's frames, with the connection's number.
    clients: Mutex<HashMap<String, (u64, mpsc::UnboundedSender<Bytes>)>>,
    /// The clients whose connection closed: a reply to one of them is late (its operation timed out), not
    /// sent to a destination nobody knows.
    gone: Mutex<HashSet<String>>,
    status: Mutex<Status>,
    next_conn: AtomicU64,
}

impl Shared {
    fn deliver(&self, kind: &str, line: Bytes) {
        *self
            .status
            .lock()
            .unwrap()
            .received
            .entry(kind.to_string())
            .or_default() += 1;
        let _ = self.stdin.send(line);
    }

    /// Sends what the node wrote to client `dest` on that client's connection. A client that has gone (its
    /// operation timed out and it closed its connection) gets nothing: the reply is late, counted as such
    /// (tester: `unknown destination c65` was counted as malformed). A name no client ever had is malformed.
    fn to_client(&self, dest: &str, line: &[u8]) {
        let client = self.clients.lock().unwrap().get(dest).cloned();
        match client {
            Some((_, tx)) => {
                let _ = tx.send(frame(&[line]));
            }
            None if self.gone.lock().unwrap().contains(dest) => {
                let mut s = self.status.lock().unwrap();
                s.late_replies += 1;
                eprintln!(
                    "squall maelstrom-node {}: dropped a late reply to client {dest}, which had gone (its \
                     operation timed out; {} late replies in all)",
                    node_name(self.id),
                    s.late_replies
                );
            }
            None => self.malformed(&Malformed::UnknownDest(dest.to_string()), line),
        }
    }

    /// Client `name` sends on connection `number`: its replies go there.
    fn connected(&self, name: &str, number: u64, tx: &mpsc::UnboundedSender<Bytes>) {
        self.clients
            .lock()
            .unwrap()
            .insert(name.to_string(), (number, tx.clone()));
        self.gone.lock().unwrap().remove(name);
    }

    /// Connection `number` closed: the clients on it have gone.
    fn disconnected(&self, number: u64) {
        let mut clients = self.clients.lock().unwrap();
        let names: Vec<String> = clients
            .iter()
            .filter(|(_, (n, _))| *n == number)
            .map(|(name, _)| name.clone())
            .collect();
        clients.retain(|_, (n, _)| *n != number);
        let mut gone = self.gone.lock().unwrap();
        if gone.len() >= GONE_KEPT {
            // A reply this late (after this many clients came and went) counts as malformed again.
            gone.clear();
        }
        gone.extend(names);
    }

    fn malformed(&self, why: &Malformed, line: &[u8]) {
        let shown: String = String::from_utf8_lossy(line).chars().take(120).collect();
        let mut s = self.status.lock().unwrap();
        s.malformed += 1;
        eprintln!(
            "squall maelstrom-node {}: dropped line #{} the node wrote: {why}: {shown}",
            node_name(self.id),
            s.malformed
        );
        s.recent_malformed.push(format!("{why}: {shown}"));
        if s.recent_malformed.len() > RECENT {
            s.recent_malformed.remove(0);
        }
    }
}

/// A frame: the 4-byte big-endian length, then the parts.
fn frame(parts: &[&[u8]]) -> Bytes {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut b = BytesMut::with_capacity(4 + len);
    b.put_u32(len as u32);
    for p in parts {
        b.put_slice(p);
    }
    b.freeze()
}

/// Reads one frame's payload; `Ok(None)` at a clean end of stream.
async fn read_frame(r: &mut (impl AsyncReadExt + Unpin)) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::other(format!(
            "a frame of {len} bytes is over the limit"
        )));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).await?;
    Ok(Some(payload))
}

/// The `init` line for node `id` of `ids`.
fn init_line(id: u64, ids: &[u64]) -> Bytes {
    let v = serde_json::json!({
        "src": INIT_SRC,
        "dest": node_name(id),
        "body": {
            "type": "init",
            "msg_id": 1,
            "node_id": node_name(id),
            "node_ids": ids.iter().map(|&i| node_name(i)).collect::<Vec<_>>(),
        }
    });
    let mut line = serde_json::to_vec(&v).expect("json");
    line.push(b'\n');
    Bytes::from(line)
}

async fn serve(args: BridgeArgs) -> anyhow::Result<u8> {
    let peers = parse_peers(&args.peers)?;
    if peers.contains_key(&args.id) {
        bail!("--peers names this node ({}) itself", args.id);
    }
    let mut ids: Vec<u64> = peers.keys().copied().chain([args.id]).collect();
    ids.sort_unstable();
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let peer_listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding the peer port on {}", args.listen))?;
    let client_listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding the client port on {}", args.listen))?;
    let mut child = tokio::process::Command::new(&args.program)
        .current_dir(&args.data_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", args.program.display()))?;
    let stdin = child.stdin.take().expect("piped");
    let stdout = child.stdout.take().expect("piped");
    let (in_tx, in_rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        id: args.id,
        stdin: in_tx,
        clients: Mutex::new(HashMap::new()),
        gone: Mutex::new(HashSet::new()),
        status: Mutex::new(Status {
            node: node_name(args.id),
            pid: std::process::id(),
            node_pid: child.id(),
            ..Status::default()
        }),
        next_conn: AtomicU64::new(0),
    });
    tokio::spawn(write_stdin(stdin, in_rx));
    shared.deliver("init", init_line(args.id, &ids));
    let mut links = BTreeMap::new();
    for (&peer, &addr) in &peers {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(send_to_peer(addr, rx));
        links.insert(peer, tx);
    }
    let peer_addr = peer_listener.local_addr()?;
    tokio::spawn(accept_peers(peer_listener, shared.clone()));
    let client_addr = client_listener.local_addr()?;
    tokio::spawn(accept_clients(client_listener, shared.clone()));
    // squall's kv services, when the orchestrator said where they are.
    let services = match std::env::var(super::service::ENV)
        .ok()
        .and_then(|a| a.parse().ok())
    {
        Some(addr) => {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(talk_to_services(addr, rx, shared.clone()));
            Some(tx)
        }
        None => None,
    };
    let addrs = serde_json::json!({
        "peer": peer_addr.to_string(),
        "client": client_addr.to_string(),
    });
    let mut ready = Some((args.addr_file.clone(), addrs, Instant::now()));
    let mut lines = BufReader::with_capacity(64 * 1024, stdout);
    let mut line = Vec::with_capacity(4096);
    loop {
        line.clear();
        let read = match &ready {
            Some((_, _, since)) => {
                let left = INIT_DEADLINE.saturating_sub(since.elapsed());
                match tokio::time::timeout(left, lines.read_until(b'\n', &mut line)).await {
                    Ok(r) => r,
                    Err(_) => bail!(
                        "node {} did not answer `init` with `init_ok` within {:?}; is {} a Maelstrom node?",
                        node_name(args.id),
                        INIT_DEADLINE,
                        args.program.display()
                    ),
                }
            }
            None => lines.read_until(b'\n', &mut line).await,
        };
        if read.context("reading the node's stdout")? == 0 {
            break;
        }
        let text = trim_line(&line);
        if text.is_empty() {
            continue;
        }
        let h = match head(text) {
            Ok(h) => h,
            Err(why) => {
                shared.malformed(&why, text);
                continue;
            }
        };
        *shared
            .status
            .lock()
            .unwrap()
            .sent
            .entry(h.body.kind.clone())
            .or_default() += 1;
        if h.dest == INIT_SRC {
            if h.body.kind == "init_ok"
                && let Some((path, addrs, _)) = ready.take()
            {
                write_addr_file(&path, &addrs)?;
            }
            continue;
        }
        if let Some(to) = node_id(&h.dest) {
            if to == args.id {
                shared.deliver(&h.body.kind, with_newline(text));
            } else if let Some(link) = links.get(&to) {
                shared.status.lock().unwrap().to_nodes += 1;
                let _ = link.send(frame(&[h.body.kind.as_bytes(), b"\n", text]));
            } else {
                shared.malformed(&Malformed::UnknownDest(h.dest.clone()), text);
            }
            continue;
        }
        if h.dest == SQUALL_DEST {
            let report = serde_json::from_slice::<serde_json::Value>(text)
                .map_err(|e| e.to_string())
                .and_then(|v| reported(&v["body"]));
            match report {
                Ok(r) => shared.status.lock().unwrap().reported = Some(r),
                Err(why) => shared.malformed(&Malformed::BadReport(why), text),
            }
            continue;
        }
        if super::service::SERVICES.contains(&h.dest.as_str()) {
            match &services {
                Some(tx) => {
                    let _ = tx.send(frame(&[text]));
                }
                None => shared.malformed(&Malformed::UnknownDest(h.dest.clone()), text),
            }
            continue;
        }
        shared.to_client(&h.dest, text);
    }
    // The node closed its stdout: it is exiting (or has). Exit as it did.
    let status = child.wait().await.context("waiting for the node")?;
    use std::os::unix::process::ExitStatusExt as _;
    let code = match (status.code(), status.signal()) {
        (Some(c), _) => c.clamp(0, 255) as u8,
        (None, Some(s)) => (128 + s).clamp(0, 255) as u8,
        _ => 1,
    };
    if ready.is_some() {
        // squall shows the end of this log when a node does not come up: say why, in Maelstrom's terms.
        bail!(
            "node {} ({}) ended ({status}) before answering `init` with `init_ok`; is it a Maelstrom node \
             (JSON messages on stdin and stdout)?",
            node_name(args.id),
            args.program.display()
        );
    }
    Ok(code)
}

fn trim_line(line: &[u8]) -> &[u8] {
    let mut t = line;
    while let [rest @ .., b'\n' | b'\r'] = t {
        t = rest;
    }
    t
}

fn with_newline(text: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(text.len() + 1);
    b.put_slice(text);
    b.put_u8(b'\n');
    b.freeze()
}

/// Writes the address file whole (a reader never sees half of it).
fn write_addr_file(path: &Path, addrs: &serde_json::Value) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(addrs)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Writes queued lines to the node's stdin, flushing when the queue is empty (many lines, one write).
async fn write_stdin(stdin: tokio::process::ChildStdin, mut rx: mpsc::UnboundedReceiver<Bytes>) {
    let mut out = tokio::io::BufWriter::with_capacity(64 * 1024, stdin);
    while let Some(line) = rx.recv().await {
        if out.write_all(&line).await.is_err() {
            return;
        }
        while let Ok(more) = rx.try_recv() {
            if out.write_all(&more).await.is_err() {
                return;
            }
        }
        if out.flush().await.is_err() {
            return;
        }
    }
}

/// Sends frames for one peer to its link's proxy, over one connection made again after it breaks. A frame
/// that finds no connection is lost, as a message to an unreachable node is.
async fn send_to_peer(addr: SocketAddr, mut rx: mpsc::UnboundedReceiver<Bytes>) {
    let mut conn: Option<TcpStream> = None;
    let mut buf = BytesMut::new();
    while let Some(f) = rx.recv().await {
        buf.put_slice(&f);
        while buf.len() < 1 << 20
            && let Ok(more) = rx.try_recv()
        {
            buf.put_slice(&more);
        }
        if conn.is_none() {
            conn = TcpStream::connect(addr).await.ok();
            if let Some(c) = &conn {
                let _ = c.set_nodelay(true);
            }
        }
        if let Some(c) = &mut conn
            && c.write_all(&buf).await.is_err()
        {
            conn = None;
        }
        buf.clear();
    }
}

/// Sends the node's requests to squall's kv services over one connection (made again after it breaks) and
/// writes their answers to the node's stdin. A request that finds no connection is lost; its sender times out.
async fn talk_to_services(
    addr: SocketAddr,
    mut rx: mpsc::UnboundedReceiver<Bytes>,
    shared: Arc<Shared>,
) {
    let mut writer: Option<tokio::net::tcp::OwnedWriteHalf> = None;
    while let Some(f) = rx.recv().await {
        if writer.is_none()
            && let Ok(conn) = TcpStream::connect(addr).await
        {
            let _ = conn.set_nodelay(true);
            let (r, w) = conn.into_split();
            writer = Some(w);
            let shared = shared.clone();
            tokio::spawn(async move {
                let mut r = BufReader::new(r);
                while let Ok(Some(payload)) = read_frame(&mut r).await {
                    let kind = head(&payload).map(|h| h.body.kind).unwrap_or_default();
                    shared.deliver(&kind, with_newline(&payload));
                }
            });
        }
        if let Some(w) = &mut writer
            && w.write_all(&f).await.is_err()
        {
            writer = None;
        }
    }
}

/// Accepts connections from peers' proxies; each frame goes to the node's stdin.
async fn accept_peers(listener: TcpListener, shared: Arc<Shared>) {
    while let Ok((conn, _)) = listener.accept().await {
        let _ = conn.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut r = BufReader::with_capacity(64 * 1024, conn);
            while let Ok(Some(payload)) = read_frame(&mut r).await {
                let Some(nl) = payload.iter().position(|&b| b == b'\n') else {
                    continue;
                };
                let kind = String::from_utf8_lossy(&payload[..nl]).into_owned();
                shared.deliver(&kind, with_newline(&payload[nl + 1..]));
            }
        });
    }
}

/// Accepts squall's clients: each frame is a request for the node (its `src` names the client, whose replies
/// then come back on this connection) or a status request.
async fn accept_clients(listener: TcpListener, shared: Arc<Shared>) {
    while let Ok((conn, _)) = listener.accept().await {
        let _ = conn.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let number = shared.next_conn.fetch_add(1, Relaxed);
            let (r, mut w) = conn.into_split();
            let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
            tokio::spawn(async move {
                while let Some(f) = rx.recv().await {
                    if w.write_all(&f).await.is_err() {
                        return;
                    }
                }
            });
            let mut r = BufReader::with_capacity(64 * 1024, r);
            while let Ok(Some(payload)) = read_frame(&mut r).await {
                if payload == STATUS_REQUEST {
                    let s = shared.status.lock().unwrap().clone();
                    let _ = tx.send(frame(&[&serde_json::to_vec(&s).expect("json")]));
                    continue;
                }
                let Ok(h) = head(&payload) else { continue };
                shared.connected(&h.src, number, &tx);
                shared.deliver(&h.body.kind, with_newline(&payload));
            }
            shared.disconnected(number);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// fixes3 item 4: a reply to a client whose operation timed out (it closed its connection) is late, not
    /// malformed (`unknown destination c65`); a name no client ever had still is.
    #[test]
    fn a_reply_to_a_client_that_has_gone_is_late_not_malformed() {
        let (stdin, _node) = mpsc::unbounded_channel();
        let shared = Shared {
            id: 2,
            stdin,
            clients: Mutex::new(HashMap::new()),
            gone: Mutex::new(HashSet::new()),
            status: Mutex::new(Status::default()),
            next_conn: AtomicU64::new(0),
        };
        let (tx, mut conn) = mpsc::unbounded_channel();
        shared.connected("c65", 7, &tx);
        shared.to_client("c65", br#"{"dest":"c65"}"#);
        assert!(conn.try_recv().is_ok(), "a connected client gets its reply");
        shared.disconnected(7);
        shared.to_client("c65", br#"{"dest":"c65"}"#);
        shared.to_client("c99", br#"{"dest":"c99"}"#);
        let s = shared.status.lock().unwrap().clone();
        assert_eq!((s.late_replies, s.malformed), (1, 1), "{s:?}");
        assert!(s.recent_malformed[0].contains("c99"), "{s:?}");
        // Back on a new connection: its replies go there again.
        shared.connected("c65", 8, &tx);
        shared.to_client("c65", br#"{"dest":"c65"}"#);
        assert!(conn.try_recv().is_ok());
        assert_eq!(shared.status.lock().unwrap().late_replies, 1);
    }

    #[test]
    fn peers_parse_and_mistakes_are_named() {
        let p = parse_peers("2=127.0.0.1:4100,3=127.0.0.1:4101").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[&3], "127.0.0.1:4101".parse().unwrap());
        assert!(parse_peers("").unwrap().is_empty());
        let e = parse_peers("2:127.0.0.1:1").unwrap_err().to_string();
        assert!(e.contains("2:127.0.0.1:1"), "{e}");
    }

    #[test]
    fn a_report_to_squall_is_read_and_a_wrong_one_is_named() {
        let r = reported(&serde_json::json!({
            "type": "status", "role": "leader", "term": 3, "leader": "n1", "commit": 9
        }))
        .unwrap();
        assert_eq!(r.role.as_deref(), Some("leader"));
        assert_eq!((r.term, r.commit), (Some(3), Some(9)));
        assert_eq!(r.leader, Some(Some("n1".to_string())));
        let none = reported(&serde_json::json!({"type": "status", "leader": null})).unwrap();
        assert_eq!(none.leader, Some(None));
        assert_eq!(none.role, None);
        let e = reported(&serde_json::json!({"type": "status", "role": "boss"})).unwrap_err();
        assert!(
            e.contains("role `boss`") && e.contains("leader, follower"),
            "{e}"
        );
        let e = reported(&serde_json::json!({"type": "hello"})).unwrap_err();
        assert!(e.contains("type `status`"), "{e}");
        let e = reported(&serde_json::json!({"type": "status", "term": "x"})).unwrap_err();
        assert!(e.contains("status"), "{e}");
    }

    #[test]
    fn init_names_the_node_and_every_node() {
        let line = init_line(2, &[1, 2, 3]);
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["dest"], "n2");
        assert_eq!(v["body"]["node_id"], "n2");
        assert_eq!(v["body"]["node_ids"], serde_json::json!(["n1", "n2", "n3"]));
        assert!(line.ends_with(b"\n"));
    }
}
