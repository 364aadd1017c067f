//! Link proxies drain after a node stops reading and after a hold (issue 19): a paused node (SIGSTOP) leaves
//! its socket unread, so the kernel's buffers fill and the proxy's writes to it block, while its peers keep
//! sending and, timing out, give up on their connections and open new ones. Once the node reads again, or the
//! hold ends, every frame must arrive whole and in order, and every connection its sender closed must be
//! closed through the proxy too: none left open, none stuck.
//!
//! Real sockets on 127.0.0.1 with OS-chosen ports. The "node" is a reader that stops reading while paused,
//! which is what a stopped process's socket looks like from outside. Frame sizes come from a seed that is
//! printed (`SQUALL_SEED=N` replays it).

use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use squall_chaos::{Fault, FaultKind, FaultSpec, LinkId, Network};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

const A: u64 = 1;
const B: u64 = 2;
const WAIT: Duration = Duration::from_secs(30);

fn seed() -> u64 {
    let seed = std::env::var("SQUALL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("seed {seed} (rerun with SQUALL_SEED={seed})");
    seed
}

/// What the node read: a whole frame `(connection, seq)` or the end of a connection.
#[derive(Debug, PartialEq)]
enum Read {
    Frame(usize, u64),
    Closed(usize),
}

/// The node's side: accepts every connection and reads length-prefixed frames whose body starts with a
/// sequence number, checking the rest of the body (filled with `seq as u8`) is intact; reads nothing while
/// `paused` is true.
async fn node(
    paused: watch::Receiver<bool>,
) -> (std::net::SocketAddr, mpsc::UnboundedReceiver<Read>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        for conn in 0.. {
            let (mut s, _) = listener.accept().await.unwrap();
            let tx = tx.clone();
            let mut paused = paused.clone();
            tokio::spawn(async move {
                loop {
                    paused.wait_for(|p| !p).await.unwrap();
                    let mut len = [0u8; 4];
                    if s.read_exact(&mut len).await.is_err() {
                        let _ = tx.send(Read::Closed(conn));
                        return;
                    }
                    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
                    s.read_exact(&mut body).await.expect("a frame cut short");
                    let seq = u64::from_be_bytes(body[..8].try_into().unwrap());
                    assert!(
                        body[8..].iter().all(|&b| b == seq as u8),
                        "frame {seq} of connection {conn} arrived damaged"
                    );
                    let _ = tx.send(Read::Frame(conn, seq));
                }
            });
        }
    });
    (addr, rx)
}

fn frame(seq: u64, size: usize) -> Vec<u8> {
    let mut f = ((8 + size) as u32).to_be_bytes().to_vec();
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend(std::iter::repeat_n(seq as u8, size));
    f
}

/// Polls `stats` of the link until `done` holds; panics with what was seen after [`WAIT`].
async fn until_stats(net: &Network, what: &str, done: impl Fn(&squall_chaos::LinkStats) -> bool) {
    let deadline = Instant::now() + WAIT;
    loop {
        let s = net.link_stats(LinkId::new(A, B)).unwrap();
        if done(&s) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {WAIT:?}: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads what the node got until `want` frames and `closes` connection ends have come; panics with what
/// arrived after [`WAIT`].
async fn collect(rx: &mut mpsc::UnboundedReceiver<Read>, want: usize, closes: usize) -> Vec<Read> {
    let mut got = Vec::new();
    let count = |got: &Vec<Read>| {
        let frames = got.iter().filter(|r| matches!(r, Read::Frame(..))).count();
        (frames, got.len() - frames)
    };
    while count(&got) != (want, closes) {
        match tokio::time::timeout(WAIT, rx.recv()).await {
            Ok(Some(r)) => got.push(r),
            _ => panic!(
                "the node got {:?} of {want} frames and {closes} closes within {WAIT:?}",
                count(&got)
            ),
        }
    }
    got
}

/// The sequence numbers connection `conn` delivered, in the order the node read them.
fn seqs(got: &[Read], conn: usize) -> Vec<u64> {
    got.iter()
        .filter_map(|r| match r {
            Read::Frame(c, s) if *c == conn => Some(*s),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_node_s_connections_drain_in_order_and_none_stays_open() {
    let mut rng = ChaCha8Rng::seed_from_u64(seed());
    let (pause, paused) = watch::channel(true);
    let (upstream, mut rx) = node(paused).await;
    let net = Network::new(rng.random());
    let proxy = net.add_link(A, B).await.unwrap();
    net.set_upstream(B, upstream);

    // The node is paused from the start. One long-lived connection streams far more than the socket buffers
    // hold (about 8 MB), so the proxy's writes to the node block and the sender's writes to the proxy stop too.
    const MAIN: u64 = 160;
    let sizes: Vec<usize> = (0..MAIN).map(|_| rng.random_range(0..100_000)).collect();
    let mut main = TcpStream::connect(proxy).await.unwrap();
    let writer = tokio::spawn(async move {
        for (seq, size) in sizes.into_iter().enumerate() {
            main.write_all(&frame(seq as u64, size)).await.unwrap();
        }
        main
    });
    // Meanwhile peers give up and reconnect, as a tarpc client does after its deadline: each of these
    // connections sends a few frames into the paused node and is closed by its sender.
    const GAVE_UP: usize = 6;
    for _ in 0..GAVE_UP {
        let mut c = TcpStream::connect(proxy).await.unwrap();
        for seq in 0..3 {
            c.write_all(&frame(seq, 1_000)).await.unwrap();
        }
        drop(c);
    }
    until_stats(&net, "every connection accepted by the proxy", |s| {
        s.connections_total == 1 + GAVE_UP as u64
    })
    .await;
    assert!(
        !writer.is_finished(),
        "8 MB went through a paused node: it was not stuck, so this test shows nothing"
    );

    // The node resumes: the long stream arrives whole and in order, each given-up connection's frames too,
    // followed by its end.
    pause.send(false).unwrap();
    let main = tokio::time::timeout(WAIT, writer)
        .await
        .expect("the stream never finished after the node resumed")
        .unwrap();
    let got = collect(&mut rx, MAIN as usize + 3 * GAVE_UP, GAVE_UP).await;
    let conns: std::collections::BTreeSet<usize> = got
        .iter()
        .map(|r| match r {
            Read::Frame(c, _) | Read::Closed(c) => *c,
        })
        .collect();
    assert_eq!(conns.len(), 1 + GAVE_UP, "{got:?}");
    for conn in conns {
        let s = seqs(&got, conn);
        let closed = got.contains(&Read::Closed(conn));
        if s.len() == MAIN as usize {
            assert_eq!(s, (0..MAIN).collect::<Vec<_>>(), "the long stream");
            assert!(!closed, "the long stream is still open");
        } else {
            assert_eq!(s, vec![0, 1, 2], "connection {conn}: {got:?}");
            // Its close came after its frames.
            let last_frame = got.iter().rposition(|r| *r == Read::Frame(conn, 2));
            let close = got.iter().position(|r| *r == Read::Closed(conn));
            assert!(close > last_frame, "connection {conn}: {got:?}");
        }
    }
    until_stats(&net, "only the live connection open", |s| {
        s.connections_open == 1
    })
    .await;
    drop(main);
    collect(&mut rx, 0, 1).await;
    until_stats(&net, "no connection left open", |s| s.connections_open == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_held_on_a_link_drain_in_order_when_the_hold_ends_and_no_connection_stays_open() {
    let mut rng = ChaCha8Rng::seed_from_u64(seed());
    let (_pause, paused) = watch::channel(false);
    let (upstream, mut rx) = node(paused).await;
    let net = Network::new(rng.random());
    let proxy = net.add_link(A, B).await.unwrap();
    net.set_upstream(B, upstream);
    let ab = LinkId::new(A, B);

    let mut c = TcpStream::connect(proxy).await.unwrap();
    c.write_all(&frame(0, 10)).await.unwrap();
    assert_eq!(collect(&mut rx, 1, 0).await, vec![Read::Frame(0, 0)]);

    // Three holds in a row, each lifted a different way: stepping every frame, releasing them, removing it.
    let mut next = 1u64;
    for round in 0..3 {
        net.set_fault(ab, FaultSpec::permanent(Fault::Hold));
        const N: u64 = 40;
        for _ in 0..N {
            c.write_all(&frame(next, rng.random_range(0..20_000)))
                .await
                .unwrap();
            next += 1;
        }
        let deadline = Instant::now() + WAIT;
        while net.held().len() < N as usize {
            assert!(
                Instant::now() < deadline,
                "round {round}: {} of {N} frames held within {WAIT:?}",
                net.held().len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        match round {
            0 => {
                for _ in 0..N {
                    assert_eq!(net.step(|l| l == ab, 1).len(), 1);
                }
                net.remove_fault(ab, FaultKind::Hold);
            }
            1 => {
                assert_eq!(net.release(|l| l == ab).len(), N as usize);
                net.remove_fault(ab, FaultKind::Hold);
            }
            _ => net.remove_fault(ab, FaultKind::Hold),
        }
        let got = collect(&mut rx, N as usize, 0).await;
        assert_eq!(
            seqs(&got, 0),
            (next - N..next).collect::<Vec<_>>(),
            "round {round}"
        );
        assert!(net.held().is_empty(), "round {round}: {:?}", net.held());
    }
    drop(c);
    collect(&mut rx, 0, 1).await;
    until_stats(&net, "no connection left open", |s| s.connections_open == 0).await;
}
