//! The lock workloads (`lock`, `lock-fenced`): Kleppmann's "How to do distributed locking" (2016) on real
//! processes. [`CLIENTS`] clients take turns at a lease lock and, holding it, write to a resource; the
//! checker ([`crate::check::lock`]) judges whether two clients' writes ever interleaved at the resource.
//!
//! - **The lock** is one key of the cluster's key-value store holding `TOKEN HOLDER UNTIL` (`HOLDER` is `-`
//!   when free; `UNTIL` is when the lease runs out, in ms of session time). A client reads it, and when it
//!   is free or its lease ran out, takes it with a compare-and-swap through the node kind's own client (so the
//!   workload runs on every kind with cas) that raises the token by one: the consensus service issues the
//!   fencing token with each grant, and no two grants get the same one.
//! - **The resource** ([`Resource`]) is a TCP server on 127.0.0.1 (a port from the OS), one line a write:
//!   `write CLIENT TOKEN VALUE` answered `ok N` or `rejected N HIGHEST`. Under `lock-fenced` it rejects a
//!   write whose token is below the highest it has seen; under `lock` it takes every write (the lease alone,
//!   as a naive lock does). Its log goes into the event log ([`LockEvent::Wrote`]).
//! - **A client's round**: read the lock; if free, cas it to itself; check that its lease has not run out;
//!   write to the resource with its token; release the lock (a cas back to free, which fails harmlessly when
//!   another client took it meanwhile).
//! - **Client faults**: `pause-client C DUR` stops client C at its next protected write, after its lease
//!   check and before the write, as a garbage-collection pause would, so the demonstration does not depend on
//!   when the command was typed; `slow-client C DUR` adds DUR before every step of client C until `heal`.
//!
//! The lease is judged on the orchestrator's clock, which every client shares: the clients are tasks of this
//! process, and the pause is the client task stopping, not a SIGSTOP of the node processes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::Cluster;
use super::lock::{CLIENTS, LEASE};
use super::workload::Done;
use crate::check::lock::LockEvent;
use crate::kind::drivers::{KvAnswer, KvClient, KvOutcome, KvRequest};
use crate::state::Event;

/// How long a client waits for the resource's answer.
const RESOURCE_TIMEOUT: Duration = Duration::from_secs(2);

/// The lock key of the session tagged `session`.
pub fn lock_key(session: &str) -> String {
    format!("lock.{session}")
}

/// The lock's value: `TOKEN HOLDER UNTIL` (`HOLDER` `-` when free).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct LockValue {
    token: u64,
    holder: Option<u64>,
    until_ms: u64,
}

impl LockValue {
    fn parse(s: &str) -> Option<LockValue> {
        let mut w = s.split_whitespace();
        let token = w.next()?.parse().ok()?;
        let holder = match w.next()? {
            "-" => None,
            h => Some(h.parse().ok()?),
        };
        let until_ms = w.next()?.parse().ok()?;
        w.next().is_none().then_some(LockValue {
            token,
            holder,
            until_ms,
        })
    }

    fn text(&self) -> String {
        match self.holder {
            Some(h) => format!("{} {h} {}", self.token, self.until_ms),
            None => format!("{} - {}", self.token, self.until_ms),
        }
    }
}

impl Cluster {
    /// The lock workload's mutual-exclusion check ([`crate::check::lock`]) over every record so far; `None`
    /// when the lock workload did not run this session.
    pub(super) fn lock_check(&self) -> Option<(crate::state::Verdict, String)> {
        use crate::check::lock::LockVerdict;
        use crate::state::WorkloadKind as W;
        let lock = &self.inner.workload.lock;
        // Judged while a lock workload is selected (even with nothing to judge yet, which it says), and after
        // another is selected only if the clients took or wrote anything: selecting `lock` and moving on
        // leaves nothing for the lock check, and the check of what is selected answers instead.
        let selected = matches!(self.inner.workload.kind(), W::Lock | W::LockFenced);
        if !selected && !lock.ran() {
            return None;
        }
        let r = lock.report();
        let verdict = match r.verdict() {
            LockVerdict::Valid => crate::state::Verdict::Ok,
            LockVerdict::Invalid => crate::state::Verdict::Violated,
            LockVerdict::Unknown => crate::state::Verdict::Inconclusive,
        };
        Some((verdict, r.text()))
    }
}

/// Starts the lock clients; the pacer hands them one token per round through the returned sender.
pub(super) fn spawn(cluster: &Cluster, done: mpsc::UnboundedSender<Done>) -> mpsc::Sender<u64> {
    let (tx, rx) = mpsc::channel::<u64>(CLIENTS as usize);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    for me in 1..=CLIENTS {
        tokio::spawn(client(cluster.clone(), me, rx.clone(), done.clone()));
    }
    tx
}

/// The protected resource: a TCP server on 127.0.0.1 with a port from the OS.
pub struct Resource;

impl Resource {
    /// Binds the resource and serves it until the cluster stops; returns its address.
    async fn start(cluster: Cluster) -> Result<SocketAddr, String> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("the lock workload's resource cannot bind 127.0.0.1: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("the lock workload's resource has no address: {e}"))?;
        let mut stop = cluster.stopping();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => {
                            tokio::spawn(Resource::serve(cluster.clone(), stream));
                        }
                        Err(_) => continue,
                    },
                    _ = stop.changed() => return,
                }
            }
        });
        Ok(addr)
    }

    /// One client's connection: a write a line, an answer a line.
    async fn serve(cluster: Cluster, stream: TcpStream) {
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let answer = Resource::take(&cluster, &line);
            if write
                .write_all(format!("{answer}\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
        }
    }

    /// Takes one write line; its answer (the decision is the shared state's, [`super::lock::LockWorkload::take_write`]).
    fn take(cluster: &Cluster, line: &str) -> String {
        let w: Vec<&str> = line.split_whitespace().collect();
        let (client, token) = match w.as_slice() {
            ["write", c, t, _value] => match (c.parse::<u64>(), t.parse::<u64>()) {
                (Ok(c), Ok(t)) => (c, t),
                _ => return format!("error: `{line}`: client and token must be numbers"),
            },
            _ => return format!("error: `{line}`: expected `write CLIENT TOKEN VALUE`"),
        };
        cluster
            .inner
            .workload
            .lock
            .take_write(|e| cluster.emit(e), cluster.now_ms(), client, token)
    }
}

/// A client's connection to the resource.
struct Conn {
    lines: tokio::io::Lines<BufReader<tokio::net::tcp::OwnedReadHalf>>,
    write: tokio::net::tcp::OwnedWriteHalf,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Result<Conn, String> {
        let s = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot reach the resource at {addr}: {e}"))?;
        let (read, write) = s.into_split();
        Ok(Conn {
            lines: BufReader::new(read).lines(),
            write,
        })
    }

    async fn send(&mut self, line: &str) -> Result<String, String> {
        let go = async {
            self.write
                .write_all(format!("{line}\n").as_bytes())
                .await
                .map_err(|e| format!("resource: {e}"))?;
            match self.lines.next_line().await {
                Ok(Some(answer)) => Ok(answer),
                Ok(None) => Err("resource closed the connection".to_string()),
                Err(e) => Err(format!("resource: {e}")),
            }
        };
        tokio::time::timeout(RESOURCE_TIMEOUT, go)
            .await
            .unwrap_or_else(|_| Err("the resource did not answer in time".into()))
    }
}

/// What one round of a client came to, for the workload's counts.
enum Round {
    /// It wrote to the resource (taken or rejected).
    Wrote(bool),
    /// Someone else holds the lock: nothing to count.
    Busy,
    /// An operation failed or its outcome is unknown.
    Failed,
}

/// One lock client: a round per token from the pacer.
async fn client(
    cluster: Cluster,
    me: u64,
    tokens: Arc<tokio::sync::Mutex<mpsc::Receiver<u64>>>,
    done: mpsc::UnboundedSender<Done>,
) {
    let mut addrs = cluster.api_addrs();
    let mut kv = cluster.inner.spec.kind.kv_client(addrs.clone());
    let mut conn: Option<Conn> = None;
    let mut stop = cluster.stopping();
    loop {
        if tokens.lock().await.recv().await.is_none() {
            return;
        }
        if cluster.api_addrs() != addrs {
            addrs = cluster.api_addrs();
            kv = cluster.inner.spec.kind.kv_client(addrs.clone());
        }
        let round = tokio::select! {
            r = round(&cluster, me, &mut kv, &mut conn) => r,
            _ = stop.changed() => return,
        };
        match round {
            Round::Wrote(taken) => {
                let _ = done.send(if taken { Done::Ok } else { Done::Failed });
            }
            Round::Failed => {
                let _ = done.send(Done::Failed);
                // Its outcome may be unknown: a fresh client, as the lin-kv clients do.
                kv = cluster.inner.spec.kind.kv_client(addrs.clone());
            }
            Round::Busy => {}
        }
    }
}

/// Waits out a `slow-client` delay, if client `me` has one.
async fn slow(cluster: &Cluster, me: u64) {
    if let Some(d) = cluster.inner.workload.lock.slow(me) {
        tokio::time::sleep(d).await;
    }
}

/// Runs `req` and reports it as a client operation.
async fn op(
    cluster: &Cluster,
    kv: &mut Box<dyn KvClient>,
    what: String,
    req: KvRequest,
) -> KvOutcome {
    let started = Instant::now();
    let out = kv.execute(req).await;
    cluster.emit(Event::ClientOp {
        op: what,
        result: match &out {
            KvOutcome::Done(KvAnswer::Swapped(false)) => "fail: precondition failed".to_string(),
            KvOutcome::Done(_) => "ok".to_string(),
            KvOutcome::Fail(e) => format!("fail: {e}"),
            KvOutcome::Info(e) => e.clone(),
        },
        latency_us: started.elapsed().as_micros() as u64,
    });
    out
}

/// The lock's value, written first as free with token 0 when the key is absent (once a session: only this
/// session's clients use its key).
async fn read_lock(
    cluster: &Cluster,
    me: u64,
    kv: &mut Box<dyn KvClient>,
    key: &str,
) -> Result<LockValue, ()> {
    let lock = &cluster.inner.workload.lock;
    let free = LockValue {
        token: 0,
        holder: None,
        until_ms: 0,
    };
    if lock.initialised.get().is_none() {
        let read = op(
            cluster,
            kv,
            format!("client {me}: read {key}"),
            KvRequest::Read { key: key.into() },
        )
        .await;
        match read {
            KvOutcome::Done(KvAnswer::Value(None)) => {
                let w = op(
                    cluster,
                    kv,
                    format!("client {me}: write {key} {}", free.text()),
                    KvRequest::Write {
                        key: key.into(),
                        value: free.text(),
                    },
                )
                .await;
                if !matches!(w, KvOutcome::Done(KvAnswer::Written)) {
                    return Err(());
                }
            }
            KvOutcome::Done(KvAnswer::Value(Some(_))) => {}
            _ => return Err(()),
        }
        let _ = lock.initialised.set(());
    }
    slow(cluster, me).await;
    match op(
        cluster,
        kv,
        format!("client {me}: read {key}"),
        KvRequest::Read { key: key.into() },
    )
    .await
    {
        KvOutcome::Done(KvAnswer::Value(Some(v))) => LockValue::parse(&v).ok_or_else(|| {
            cluster.emit(Event::Note {
                text: format!("lock key {key} holds `{v}`, not a lock value (TOKEN HOLDER UNTIL): written by hand?"),
            });
        }),
        _ => Err(()),
    }
}

/// One round: take the lock if free, write under it, release it.
async fn round(
    cluster: &Cluster,
    me: u64,
    kv: &mut Box<dyn KvClient>,
    conn: &mut Option<Conn>,
) -> Round {
    let lock = &cluster.inner.workload.lock;
    let key = lock_key(&cluster.inner.workload.session);
    let addr = match lock
        .resource
        .get_or_try_init(|| Resource::start(cluster.clone()))
        .await
    {
        Ok(a) => *a,
        Err(e) => {
            cluster.emit(Event::Note { text: e });
            return Round::Failed;
        }
    };
    slow(cluster, me).await;
    let Ok(now) = read_lock(cluster, me, kv, &key).await else {
        return Round::Failed;
    };
    let from_ms = cluster.now_ms();
    if now.holder.is_some() && from_ms < now.until_ms {
        return Round::Busy;
    }
    // The lease counts from before the request is sent: the client cannot know how long it took.
    let mine = LockValue {
        token: now.token + 1,
        holder: Some(me),
        until_ms: from_ms + LEASE.as_millis() as u64,
    };
    slow(cluster, me).await;
    let cas = op(
        cluster,
        kv,
        format!("client {me}: acquire {key} token {}", mine.token),
        KvRequest::Cas {
            key: key.clone(),
            from: now.text(),
            to: mine.text(),
        },
    )
    .await;
    match cas {
        KvOutcome::Done(KvAnswer::Swapped(true)) => {}
        KvOutcome::Done(KvAnswer::Swapped(false)) => return Round::Busy,
        _ => return Round::Failed,
    }
    lock.record(
        |e| cluster.emit(e),
        LockEvent::Granted {
            client: me,
            token: mine.token,
            from_ms,
            until_ms: mine.until_ms,
        },
    );
    // The naive client's check: does it still hold the lease? A pause after this check is what the lease
    // alone cannot guard against.
    if cluster.now_ms() >= mine.until_ms {
        cluster.emit(Event::ClientOp {
            op: format!("client {me}: write under token {}", mine.token),
            result: "fail: its lease ran out before it could write (not sent)".into(),
            latency_us: 0,
        });
        return Round::Failed;
    }
    if let Some(pause) = lock.take_pause(me) {
        lock.record(
            |e| cluster.emit(e),
            LockEvent::PauseStruck {
                client: me,
                token: mine.token,
                pause_ms: pause.as_millis() as u64,
                at_ms: cluster.now_ms(),
            },
        );
        tokio::time::sleep(pause).await;
    }
    slow(cluster, me).await;
    let started = Instant::now();
    let answer = match conn {
        Some(c) => {
            c.send(&format!("write {me} {} c{me}t{}", mine.token, mine.token))
                .await
        }
        None => Err(String::new()),
    };
    let answer = match answer {
        Ok(a) => Ok(a),
        // A first write, or the connection broke: connect again and send once more (the resource logs what
        // it received, so a write sent twice is in its log twice, as it would be).
        Err(_) => match Conn::open(addr).await {
            Ok(mut c) => {
                let a = c
                    .send(&format!("write {me} {} c{me}t{}", mine.token, mine.token))
                    .await;
                *conn = Some(c);
                a
            }
            Err(e) => Err(e),
        },
    };
    let taken = answer.as_deref().map(|a| a.starts_with("ok"));
    cluster.emit(Event::ClientOp {
        op: format!("client {me}: write under token {}", mine.token),
        result: match &answer {
            Ok(a) if a.starts_with("ok") => "ok".into(),
            Ok(a) => format!("fail: {a}"),
            Err(e) => e.clone(),
        },
        latency_us: started.elapsed().as_micros() as u64,
    });
    if answer.is_err() {
        *conn = None;
    }
    slow(cluster, me).await;
    // Release: back to free with the same token. Fails harmlessly when another client took the lock after
    // this lease ran out.
    let free = LockValue {
        token: mine.token,
        holder: None,
        until_ms: 0,
    };
    let _ = op(
        cluster,
        kv,
        format!("client {me}: release {key} token {}", mine.token),
        KvRequest::Cas {
            key,
            from: mine.text(),
            to: free.text(),
        },
    )
    .await;
    match taken {
        Ok(t) => Round::Wrote(t),
        Err(_) => Round::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_value_reads_back_as_written_and_refuses_anything_else() {
        for v in [
            LockValue {
                token: 7,
                holder: Some(2),
                until_ms: 5_300,
            },
            LockValue {
                token: 0,
                holder: None,
                until_ms: 0,
            },
        ] {
            assert_eq!(LockValue::parse(&v.text()), Some(v));
        }
        for bad in ["", "7", "7 x 5", "7 2 5 9", "-1 - 0"] {
            assert_eq!(LockValue::parse(bad), None, "{bad}");
        }
    }
}
