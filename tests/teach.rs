//! Teaching mode end to end (issue 20): real node processes, every peer link through the proxy, the headless
//! console's `freeze`, `timeout N`, `heartbeat`, `thaw`, `held` and `drop-stale`, and a person's walk through
//! an election one message at a time.

mod support;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use support::session::{Ready, Session, Up};

const WAIT: Duration = Duration::from_secs(60);
static SERIAL: Mutex<()> = Mutex::new(());

/// A `--slow` session of `nodes` nodes (the teaching timings), one at a time, started once a leader exists.
fn start(nodes: u64) -> Session {
    let n = nodes.to_string();
    Up::new(&["-n", n.as_str(), "--seed", "7", "--slow"])
        .ready(Ready::Leader)
        .wait(WAIT)
        .serial(&SERIAL)
        .start()
}

/// Waits until every node runs, agrees on one leader, and holds the same last entry; returns the leader.
fn settled(s: &mut Session, nodes: u64) -> (u64, u64) {
    s.until("every node following one leader, logs equal", |ns| {
        if ns.len() as u64 != nodes || ns.values().any(|n| !n.running) {
            return None;
        }
        let leader = ns.values().find(|n| n.role == "leader")?;
        let last = |line: &str| {
            line.split(" last ")
                .nth(1)
                .map(|r| r.split_whitespace().next().unwrap_or("").to_string())
        };
        let want = last(&leader.line)?;
        ns.values()
            .all(|n| {
                n.leader == Some(leader.id)
                    && n.term == leader.term
                    && n.commit == leader.commit
                    && last(&n.line).as_deref() == Some(want.as_str())
            })
            .then_some((leader.id, leader.term))
    })
}

#[test]
fn the_teaching_walk_elects_the_node_timed_out_in_few_steps() {
    let mut s = start(5);
    let (old, term) = settled(&mut s, 5);
    // The node to time out: n3, unless it leads already.
    let c = if old == 3 { 4 } else { 3 };
    let frozen = s.ok("freeze");
    assert!(
        frozen.contains("timers stopped on n1 n2 n3 n4 n5"),
        "{frozen}"
    );
    s.ok("hold *");
    // Frozen, the leader sends nothing on its own, so the queue stays empty until the timeout.
    let t = s.ok(&format!("timeout {c}"));
    assert!(
        t.contains(&format!("n{c} asks for pre-votes for term {}", term + 1)),
        "{t}"
    );
    let mut steps: Vec<String> = Vec::new();
    let deadline = Instant::now() + WAIT;
    // Votes granted to n{c} by others: with its own, two make a majority of five.
    let mut grants = 0;
    while grants < 2 {
        assert!(Instant::now() < deadline, "no leader; steps: {steps:#?}");
        let held = s.listing("held", "held:");
        if held.is_empty() {
            // A delivered request's answer is on its way back to the proxy.
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        assert!(
            steps.len() < 15,
            "n{c} has no majority after 15 steps: {steps:#?}\nheld: {held:#?}"
        );
        let answer = s.ok("step * 1");
        eprintln!("step {}: {answer}", steps.len() + 1);
        // The kind is said once (`vote-reply n1 term 2 granted`); a pre-vote's answer is `pre-vote-reply`.
        if answer.contains(" vote-reply n") && answer.ends_with(" granted") {
            grants += 1;
        }
        steps.push(answer);
    }
    let leads = s.until(&format!("n{c} leading"), |ns| {
        ns.get(&c).filter(|n| n.role == "leader").map(|n| n.term)
    });
    assert_eq!(leads, term + 1, "n{c} leads the next term: {steps:#?}");
    // Every step said which message it delivered, in the order of the protocol: the pre-votes, their answers,
    // the votes, their answers.
    // `ok: deliver 3->1 pre-vote n3 term 2 last 1/1`: a pre-vote is its own kind, said once.
    let kind = |a: &str| -> &'static str {
        let w: Vec<&str> = a.split_whitespace().collect();
        match (w.get(3).copied(), w.get(4).copied()) {
            (Some(k), Some(w)) if w.starts_with('n') => match k {
                "pre-vote" => "pre-vote",
                "vote" => "vote",
                "pre-vote-reply" => "pre-vote-reply",
                "vote-reply" => "vote-reply",
                _ => "other",
            },
            _ => "other",
        }
    };
    let kinds: Vec<&str> = steps.iter().map(|a| kind(a)).collect();
    assert!(
        !kinds.contains(&"other"),
        "only the campaign's messages were held: {steps:#?}"
    );
    let first = |k: &str| kinds.iter().position(|x| *x == k).unwrap_or(usize::MAX);
    let last = |k: &str| kinds.iter().rposition(|x| *x == k).unwrap_or(0);
    assert!(
        last("pre-vote") < first("vote") && first("pre-vote-reply") < first("vote"),
        "pre-votes and their grants come before the votes: {kinds:?}"
    );
    assert!(first("vote") < first("vote-reply"), "{kinds:?}");
    // Tester (issue 20): a grant arriving after its candidate won counts for nothing, and the step says so.
    // Two pre-vote grants win n{c} its pre-vote: the ones stepped after them are surplus.
    let won_pre_vote = format!(
        "surplus: n{c} already won its pre-vote for term {}",
        term + 1
    );
    for (i, a) in steps
        .iter()
        .enumerate()
        .filter(|(i, _)| kinds[*i] == "pre-vote-reply")
        .skip(2)
    {
        assert!(a.contains(&won_pre_vote), "step {}: {a}\n{steps:#?}", i + 1);
    }
    // The other two voters' grants are still held: stepped now, n{c} already leads.
    let held = s.listing("held", "held:");
    let late = held
        .iter()
        .find_map(|h| {
            let link = h.split_whitespace().nth(1)?;
            (h.contains(" vote-reply n") && link.ends_with(&format!("->{c}"))).then_some(link)
        })
        .unwrap_or_else(|| panic!("a late vote answer to n{c} held: {held:#?}"));
    let answer = s.ok(&format!("step {late} 1"));
    assert!(
        answer.contains(&format!(
            "(delivered, but surplus: n{c} already leads term {})",
            term + 1
        )),
        "{answer}"
    );
    // The new leader's first appends wait in the queue; `thaw` and `release *` let the cluster run on.
    s.ok("thaw");
    s.ok("release *");
    s.until("every node following the new leader", |ns| {
        ns.values()
            .all(|n| n.running && n.leader == Some(c) && n.term == term + 1)
            .then_some(())
    });
    s.assert_no_invariant_broken();
    s.quit();
}

#[test]
fn the_teaching_vocabulary_answers_and_refuses_honestly() {
    let mut s = start(3);
    let (l, term) = settled(&mut s, 3);
    let f = (1..=3).find(|n| *n != l).unwrap();
    // Outside teaching mode.
    assert!(s.refused("thaw").contains("not frozen"));
    let e = s.refused(&format!("timeout {l}"));
    assert!(
        e.contains("leads") && e.contains("no election timer"),
        "{e}"
    );
    assert!(s.refused("timeout 9").contains("there is no node 9"));
    assert!(s.refused("timeout leader").contains("takes a node id"));
    assert!(s.refused("timeout").contains("needs a node id"));
    assert!(s.refused("freeze now").contains("takes no arguments"));
    assert!(s.refused("drop-stale").contains("needs a target"));
    assert!(
        s.refused("drop-stale *")
            .contains("no held frame on * is stale")
    );
    // A leader's heartbeats by hand.
    let hb = s.ok("heartbeat");
    assert!(
        hb.contains(&format!(
            "n{l} (leader, term {term}) sent heartbeats to 2 followers"
        )),
        "{hb}"
    );
    s.ok("freeze");
    assert!(s.refused("freeze").contains("frozen already"));
    // Frozen, held heartbeats pile up only when sent by hand; the older ones are stale.
    s.ok("hold *");
    s.ok("heartbeat");
    s.ok("heartbeat");
    let held = s.listing("held", "held:");
    assert_eq!(held.len(), 4, "two rounds to two followers: {held:#?}");
    let stale: Vec<&String> = held.iter().filter(|h| h.contains("(stale)")).collect();
    assert_eq!(stale.len(), 2, "the first round is superseded: {held:#?}");
    assert!(held[0].ends_with("← next"), "{held:#?}");
    let dropped = s.ok("drop-stale *");
    assert!(dropped.contains("drop 2 stale frames"), "{dropped}");
    assert_eq!(s.listing("held", "held:").len(), 2);
    // A node that restarts while frozen starts frozen: it never times out on its own.
    s.ok("release *");
    let before = s.nodes()[&f].pid;
    s.ok(&format!("restart {f}"));
    let line = s.until("the restarted node answering", |ns| {
        ns.get(&f)
            .filter(|n| n.running && n.pid != before)
            .map(|n| n.line.clone())
    });
    assert!(line.contains(" frozen"), "{line}");
    // Its leader sends no heartbeats, yet nobody campaigns while frozen.
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(8) {
        let ns = s.nodes();
        assert!(
            ns.values().all(|n| n.term == term),
            "a frozen node campaigned on its own: {ns:#?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    s.ok("thaw");
    s.until("every node thawed", |ns| {
        ns.values()
            .all(|n| !n.line.contains(" frozen"))
            .then_some(())
    });
    s.quit();
}

#[test]
fn a_request_held_past_the_usual_deadline_still_counts_when_stepped() {
    // teach2 item 1 (tester4 F2): frames held at a teacher's pace expired at their sender after the usual RPC
    // deadline (four election timeouts: 1.2 s at the default timings used here, 24 s at `--slow`), so a grant
    // stepped after a pause was thrown away and the candidate never won.
    let mut s = Up::new(&["-n", "3", "--seed", "7"])
        .ready(Ready::Leader)
        .wait(WAIT)
        .serial(&SERIAL)
        .start();
    let (l, term) = settled(&mut s, 3);
    let c = (1..=3).find(|n| *n != l).unwrap();
    s.ok("freeze");
    s.ok("hold *");
    let t = s.ok(&format!("timeout {c}"));
    let asked = Instant::now();
    assert!(t.contains("asks for pre-votes"), "{t}");
    // The pre-votes wait in the queue well past the usual deadline: the time passing is what is tested.
    let usual = Duration::from_millis(1200);
    let mut held = Vec::new();
    while asked.elapsed() < usual * 3 || held.len() < 2 {
        assert!(
            asked.elapsed() < WAIT,
            "n{c}'s pre-votes never held: {held:#?}"
        );
        held = s.listing("held", "held:");
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut steps: Vec<String> = Vec::new();
    let mut empty_since: Option<Instant> = None;
    loop {
        let ns = s.nodes();
        if ns
            .get(&c)
            .is_some_and(|n| n.role == "leader" && n.term == term + 1)
        {
            break;
        }
        // Once n{c} sends appends in the new term it has won: its status, polled on its own schedule, may
        // lag the step answers (under load by seconds), so wait for it rather than stepping on.
        let won = steps.iter().any(|st| {
            st.contains(&format!("{c}->"))
                && st.contains(" append ")
                && st.contains(&format!(" n{c} term {} ", term + 1))
        });
        if won {
            s.until(
                &format!("n{c}'s status to say it leads term {}", term + 1),
                |ns| {
                    ns.get(&c)
                        .is_some_and(|n| n.role == "leader" && n.term == term + 1)
                        .then_some(())
                },
            );
            break;
        }
        assert!(
            steps.len() < 12,
            "n{c} does not lead term {} after 12 steps: {steps:#?}\nnodes: {ns:#?}",
            term + 1
        );
        if s.listing("held", "held:").is_empty() {
            // A delivered request's answer is on its way back to the proxy, or the candidate is done.
            let since = *empty_since.get_or_insert_with(Instant::now);
            assert!(
                since.elapsed() < Duration::from_secs(10),
                "nothing held for 10 s and n{c} does not lead term {}: steps {steps:#?}\nnodes: {ns:#?}",
                term + 1
            );
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        empty_since = None;
        steps.push(s.ok("step * 1"));
    }
    eprintln!("steps: {steps:#?}");
    s.ok("thaw");
    s.ok("release *");
    s.quit();
}

#[test]
fn releasing_one_link_under_a_wider_hold_delivers_only_that_links_frames() {
    // teach2 item 7: the links matrix's `a` (`release A->B` on the cursor's link) under `hold *` ended the
    // whole hold, which delivered every link's frames.
    let mut s = start(3);
    let (l, _) = settled(&mut s, 3);
    let (a, b) = {
        let mut f = (1..=3).filter(|n| *n != l);
        (f.next().unwrap(), f.next().unwrap())
    };
    s.ok("freeze");
    s.ok("hold *");
    s.ok("heartbeat");
    let deadline = Instant::now() + WAIT;
    let mut held = Vec::new();
    while held.len() < 2 {
        assert!(Instant::now() < deadline, "two heartbeats held: {held:#?}");
        held = s.listing("held", "held:");
    }
    let r = s.ok(&format!("release {l}->{a}"));
    assert!(
        r.contains(&format!("release 1 held frame on {l}->{a}")) && r.contains("goes on holding"),
        "{r}"
    );
    // The released heartbeat's answer (a->l) is held in turn under `hold *`, if it came back already; what
    // matters is that nothing on l->a is held and l->b's heartbeat still is.
    let left: Vec<String> = s
        .listing("held", "held:")
        .into_iter()
        .filter(|h| !h.contains(&format!(" {a}->{l} ")))
        .collect();
    assert_eq!(left.len(), 1, "{left:#?}");
    assert!(
        left[0].contains(&format!(" {l}->{b} heartbeat")),
        "{left:#?}"
    );
    let faults = s.listing("faults", "faults:");
    assert!(
        faults.iter().any(|f| f.contains("hold *")),
        "the hold on * goes on: {faults:#?}"
    );
    s.ok("release *");
    s.ok("thaw");
    s.quit();
}

/// Node `link`'s held listing once a frame is held on `link` (`1->2`), polled with a deadline.
fn held_on(s: &mut Session, link: &str) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let held = s.listing("held", "held:");
        if held.iter().any(|h| h.contains(&format!(" {link} "))) {
            return held;
        }
        assert!(
            Instant::now() < deadline,
            "nothing held on {link}: {held:#?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The opening the two stale-step tests share, on a settled 3-node session: frozen, every link held, the
/// leader's heartbeat to follower `a` held; `a` is timed out and wins its pre-vote from `b` (both frames
/// stepped), so it starts an election in the next term. Returns (leader, its term, a, b).
fn pre_vote_granted_past_a_held_heartbeat(s: &mut Session) -> (u64, u64, u64, u64) {
    let (l, term) = settled(s, 3);
    let (a, b) = {
        let mut f = (1..=3).filter(|n| *n != l);
        (f.next().unwrap(), f.next().unwrap())
    };
    s.ok("freeze");
    s.ok("hold *");
    s.ok("heartbeat");
    held_on(s, &format!("{l}->{a}"));
    s.ok(&format!("timeout {a}"));
    held_on(s, &format!("{a}->{b}"));
    s.ok(&format!("step {a}->{b} 1"));
    held_on(s, &format!("{b}->{a}"));
    s.ok(&format!("step {b}->{a} 1"));
    (l, term, a, b)
}

#[test]
fn a_step_its_receiver_will_refuse_says_so_and_held_marks_it_stale() {
    // teach2 item 2: a heartbeat of term 1 stepped to a node already in term 2 answered a plain `deliver`,
    // and `held` did not mark it stale.
    let mut s = start(3);
    let (l, term, a, _) = pre_vote_granted_past_a_held_heartbeat(&mut s);
    s.until(&format!("n{a} in term {}", term + 1), |ns| {
        (ns.get(&a)?.term == term + 1).then_some(())
    });
    let held = s.listing("held", "held:");
    let hb = held
        .iter()
        .find(|h| h.contains(&format!(" {l}->{a} heartbeat")))
        .unwrap_or_else(|| panic!("the heartbeat to n{a} still held: {held:#?}"));
    assert!(hb.contains("(stale)"), "{held:#?}");
    let answer = s.ok(&format!("step {l}->{a} 1"));
    assert!(
        answer.contains(&format!(
            "(delivered, but n{a} refuses it as stale: n{a} is already in term {})",
            term + 1
        )),
        "{answer}"
    );
    s.ok("release *");
    s.ok("thaw");
    s.quit();
}

/// Node `id`'s term as the node itself answers it now, asked over its control port (the address in
/// `cluster.json`), not through squall's pollers: what a step's effect on its receiver is seen by.
fn term_at_node(rt: &tokio::runtime::Runtime, cdir: &std::path::Path, id: u64) -> Option<u64> {
    let bytes = std::fs::read(cdir.join("cluster.json")).ok()?;
    let file: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let api: std::net::SocketAddr = file["nodes"]
        .as_array()?
        .iter()
        .find(|n| n["id"].as_u64() == Some(id))?["api"]
        .as_str()?
        .parse()
        .ok()?;
    rt.block_on(async {
        let client = squall_node::transport::connect_control(api, Duration::from_secs(1))
            .await
            .ok()?;
        let status = client
            .status(squall_node::transport::deadline(Duration::from_secs(1)))
            .await
            .ok()?;
        Some(status.core.term)
    })
}

#[test]
fn a_step_right_after_another_is_judged_by_the_term_the_first_left_its_receiver_in() {
    // teach3 item 1: squall's statuses lag the step answers by up to a poll interval, so a step right after
    // the one that moved its receiver's term judged its frame against the term before. Here n{a} moves to the
    // next term when the pre-vote grant is stepped to it; the node itself is asked until it did (a deadline,
    // no fixed wait), and the stale heartbeat stepped to it at once must be said to be refused.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut s = start(3);
    let (l, term, a, _) = pre_vote_granted_past_a_held_heartbeat(&mut s);
    // n{a} won its pre-vote and starts an election in the next term: seen at the node itself.
    let deadline = Instant::now() + WAIT;
    let mut seen = None;
    while seen != Some(term + 1) {
        assert!(
            Instant::now() < deadline,
            "n{a} never reached term {} (last seen {seen:?})",
            term + 1
        );
        seen = term_at_node(&rt, &s.cdir, a);
    }
    let answer = s.ok(&format!("step {l}->{a} 1"));
    assert!(
        answer.contains(&format!(
            "(delivered, but n{a} refuses it as stale: n{a} is already in term {})",
            term + 1
        )),
        "the step right after n{a}'s term moved judges by the new term: {answer}"
    );
    s.ok("release *");
    s.ok("thaw");
    s.quit();
}

/// Task held, item 1: on Raft, `kill N` discarded the frames held from N without a word or a count. They are
/// dropped with their connections, counted on N's links (`held-lost`), and the feed says so, naming the kill
/// when the process is seen gone by then (the proxy may notice the closed connections a moment before the
/// supervisor has reaped the process, and then says `connection closed`).
#[test]
fn frames_held_from_a_killed_node_are_counted_and_told() {
    let mut s = start(3);
    let (leader, _) = settled(&mut s, 3);
    s.ok("hold *");
    let from_leader = format!(" {leader}->");
    let deadline = Instant::now() + WAIT;
    loop {
        let held = s.listing("held", "held:");
        if held.iter().any(|l| l.contains(&from_leader)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "nothing held from n{leader}: {held:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    s.ok(&format!("kill {leader}"));
    let told = s.out.wait_for(
        "the feed to tell the frames held from the killed node dropped",
        WAIT,
        |l| {
            (l.contains(" held frame")
                && l.contains(" dropped: ")
                && l.contains(&format!("{leader}->")))
            .then(|| l.to_string())
        },
    );
    eprintln!("{told}");
    let links = s.listing("links", "links:");
    let lost: u64 = links
        .iter()
        .filter(|l| l.starts_with(&format!("{leader}->")))
        .map(|l| support::session::status_field(l, "held-lost"))
        .sum();
    assert!(lost > 0, "{told}; {links:#?}");
    s.quit();
}
