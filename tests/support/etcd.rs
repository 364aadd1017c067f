//! The steps of an etcd session shared by the tests that run real etcd members under `squall up --node-kind
//! etcd` (`tests/etcd_up.rs` here, `tests/remote_etcd.rs` on hosts): whether etcd is installed, `status` as
//! etcd's kind shows it, waiting for the members to agree on a leader, a restarted member's command line, the
//! lin-kv verdict, and etcd's own member list.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::leader_term;
use super::session::Session;

/// Whether `etcd` is on PATH (Debian's `etcd-server`); without it, outside CI, `test` is skipped with a loud
/// message, and under CI (the `CI` variable set) it fails.
pub fn present(test: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("etcd").is_file()));
    if found {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: etcd is not on PATH under CI; .ci/run installs the etcd-server package"
    );
    eprintln!("\n!!! SKIPPED {test}: etcd is not on PATH (apt-get install etcd-server) !!!\n");
    false
}

/// One member in `status` as etcd's kind shows it (`n1 running pid 9 follower term 2 leader n2 commit —
/// applied 274`: etcd reports no commit index).
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// Running and answering now (not a `(last known)` or `(not answering)` status).
    pub running: bool,
    /// The leader it names, if any.
    pub leader: Option<u64>,
    /// Its pid, while its process runs.
    pub pid: Option<u32>,
}

/// Every member `status` lists with a term, by node id.
pub fn members(s: &mut Session) -> BTreeMap<u64, Member> {
    s.listing("status", "status:")
        .iter()
        .filter_map(|l| parse_member(l))
        .collect()
}

/// One `status` line (without its prefix) of etcd's kind; `None` for a line without a term.
pub fn parse_member(line: &str) -> Option<(u64, Member)> {
    let w: Vec<&str> = line.split_whitespace().collect();
    let id = w.first()?.strip_prefix('n')?.parse().ok()?;
    let live = !line.contains("(last known)") && !line.contains("(not answering)");
    let running = live && w.get(1) == Some(&"running");
    let t = w.iter().position(|x| *x == "term")?;
    let leader = w[t..]
        .iter()
        .position(|x| *x == "leader")
        .and_then(|i| w.get(t + i + 1)?.strip_prefix('n')?.parse().ok());
    // The supervisor's pid, shown while the member runs, even before it answers.
    let pid = (w.get(1) == Some(&"running") && w.get(2) == Some(&"pid"))
        .then(|| w.get(3)?.parse().ok())
        .flatten();
    Some((
        id,
        Member {
            running,
            leader,
            pid,
        },
    ))
}

/// Polls `status` until exactly `count` running members all name one leader; that leader. `what` names the
/// moment in the failure message, which shows the members last seen.
pub fn agreed_leader(s: &mut Session, count: usize, what: &str) -> u64 {
    let deadline = Instant::now() + s.wait;
    loop {
        let seen = members(s);
        let leaders: Vec<Option<u64>> = seen
            .values()
            .filter(|m| m.running)
            .map(|m| m.leader)
            .collect();
        if let Some(Some(first)) = leaders.first().copied()
            && leaders.len() == count
            && leaders.iter().all(|l| *l == Some(first))
        {
            return first;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {count} members did not agree on a leader within {:?}: {seen:#?}",
            s.wait
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits for a feed line naming a leader that `accept` takes; (leader, term).
pub fn leader_where(s: &mut Session, what: &str, accept: impl Fn(u64, u64) -> bool) -> (u64, u64) {
    s.out.wait_for(what, s.wait, |l| {
        if l.contains("no leader") {
            return None;
        }
        leader_term(l).filter(|(n, t)| accept(*n, *t))
    })
}

/// The command line of node `n`'s process once it runs again after a restart: its pid from `status`, its
/// arguments from `/proc` (on hosts too: they are network namespaces of this machine, one pid namespace).
pub fn restarted_args(s: &mut Session, n: u64) -> Vec<String> {
    let deadline = Instant::now() + s.wait;
    loop {
        let pid = members(s).get(&n).and_then(|m| m.pid);
        let args: Vec<String> = pid
            .and_then(|p| std::fs::read(format!("/proc/{p}/cmdline")).ok())
            .unwrap_or_default()
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.len() > 1 {
            return args;
        }
        assert!(
            Instant::now() < deadline,
            "n{n} was not running again within {:?} (pid {pid:?})",
            s.wait
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Sends `check` until the lin-kv verdict is conclusive and judges at least `at_least` operations (or
/// fails), for up to the session's wait; the verdict line (`ok: linearizability check passed … valid: N …`),
/// which the caller judges, and its number of operations.
pub fn lin_kv_check(s: &mut Session, at_least: usize) -> (String, usize) {
    let deadline = Instant::now() + s.wait;
    loop {
        writeln!(s.stdin, "check").unwrap();
        let verdict = s
            .out
            .wait_for("the check's verdict", Duration::from_secs(90), |l| {
                ((l.starts_with("ok:") || l.starts_with("error:")) && l.contains("check"))
                    .then(|| l.to_string())
            });
        let judged = operations(&verdict);
        let conclusive = !verdict.contains("inconclusive");
        if (conclusive && judged >= at_least) || verdict.contains("FAILED") {
            return (verdict, judged);
        }
        assert!(
            Instant::now() < deadline,
            "no conclusive check of at least {at_least} operations within {:?}: {verdict}",
            s.wait
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The number of operations a lin-kv verdict judged (`… valid: 312 operations …`); 0 when it names none.
pub fn operations(verdict: &str) -> usize {
    verdict
        .split("valid: ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// etcd's own member list, asked of the member at client address `api` over plain HTTP/1.1 (its JSON
/// gateway), so a test reads etcd's word rather than squall's: each member's JSON object (`name`, empty for
/// a member added but not started yet; `isLearner`; `peerURLs`).
pub fn member_list(api: SocketAddr) -> Vec<serde_json::Value> {
    let mut conn = std::net::TcpStream::connect_timeout(&api, Duration::from_secs(5)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        conn,
        "POST /v3/cluster/member/list HTTP/1.1\r\nHost: {api}\r\nContent-Type: application/json\r\n\
         Content-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    )
    .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    let json = &answer[answer.find("\r\n\r\n").expect("an HTTP answer") + 4..];
    let v: serde_json::Value = serde_json::from_str(json.trim())
        .unwrap_or_else(|e| panic!("member list answer {answer:?}: {e}"));
    v["members"].as_array().cloned().unwrap_or_default()
}

/// Asserts that every member's stored peer URL (etcd's member list, asked of the member at client address
/// `api`) is listened on: a resumed cluster's proxies came back where the members stored they are. Returns the
/// number of members.
pub fn stored_peer_urls_listened(api: SocketAddr) -> usize {
    let members = member_list(api);
    for m in &members {
        let name = m["name"].as_str().unwrap_or("?");
        let url = m["peerURLs"][0].as_str().unwrap_or_default();
        let addr: SocketAddr = url
            .trim_start_matches("http://")
            .parse()
            .unwrap_or_else(|e| panic!("{name}'s peer URL {url:?}: {e}"));
        let reached = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5));
        assert!(
            reached.is_ok(),
            "{name}'s stored peer URL {url} is not listened on: {reached:?}"
        );
    }
    members.len()
}
