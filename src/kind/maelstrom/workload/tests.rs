use super::*;

fn op(node: u64, body: Value, outcome: Outcome, at: u64) -> Op {
    Op {
        req: Request { node, body },
        invoked_ns: at * 1_000_000,
        completed_ns: (at + 1) * 1_000_000,
        outcome,
    }
}

fn ok(v: Value) -> Outcome {
    Outcome::Ok(v)
}

fn workload(kind: WorkloadKind, ops: Vec<Op>) -> Workload {
    let w = Workload::new(1);
    w.select(kind, 0).expect("a Maelstrom workload");
    for o in ops {
        if let Some(v) = o.req.body["message"].as_u64() {
            w.inner.lock().unwrap().broadcast_drawn.insert(v);
        }
        if let Some(d) = o.req.body["delta"].as_u64() {
            w.inner.lock().unwrap().adds_drawn += d;
        }
        w.record(o);
    }
    w
}

fn finals(reads: &[(u64, Value)]) -> BTreeMap<u64, Result<Value, String>> {
    reads.iter().map(|(n, v)| (*n, Ok(v.clone()))).collect()
}

#[test]
fn the_grid_links_each_node_to_its_neighbours_both_ways() {
    let g = grid(&[1, 2, 3]);
    // Two columns: n1 n2 / n3.
    assert_eq!(g["n1"], vec!["n2", "n3"]);
    assert_eq!(g["n2"], vec!["n1"]);
    assert_eq!(g["n3"], vec!["n1"]);
    let g = grid(&(1..=9).collect::<Vec<_>>());
    assert_eq!(g["n5"], vec!["n2", "n4", "n6", "n8"]);
    for (n, near) in &g {
        for m in near {
            assert!(g[m].contains(n), "{n} -> {m} but not back");
        }
    }
}

#[test]
fn squall_s_own_workloads_are_refused_by_type_and_change_nothing() {
    let w = Workload::new(1);
    w.select(WorkloadKind::Echo, 0)
        .expect("echo is Maelstrom's");
    for own in [
        WorkloadKind::Counter,
        WorkloadKind::LinKv,
        WorkloadKind::Lock,
        WorkloadKind::LockFenced,
    ] {
        let e = w.select(own, 0).unwrap_err();
        assert_eq!(e, NotMaelstrom(own));
        assert!(
            e.to_string()
                .contains(&format!("workload `{}` is squall's own", own.as_str())),
            "{e}"
        );
        // The choice before stands: still echo, still drawing.
        assert_eq!(w.kind(), Some(WorkloadKind::Echo));
        assert!(w.next(&[1]).is_some());
    }
    for k in WorkloadKind::ALL {
        assert_eq!(
            MaelstromWorkload::try_from(k).is_ok(),
            k.is_maelstrom_only(),
            "{k:?}"
        );
        if let Ok(m) = MaelstromWorkload::try_from(k) {
            assert_eq!(WorkloadKind::from(m), k);
        }
    }
}

#[test]
fn requests_follow_the_seed() {
    let draw = |seed| {
        let w = Workload::new(seed);
        w.select(WorkloadKind::Kafka, 0)
            .expect("a Maelstrom workload");
        (0..50)
            .map(|_| w.next(&[1, 2, 3]).unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(draw(5), draw(5));
    assert_ne!(draw(5), draw(6));
}

#[test]
fn echo_passes_its_echoes_and_fails_a_changed_one() {
    let req = json!({"type": "echo", "echo": "a"});
    let w = workload(
        WorkloadKind::Echo,
        vec![op(
            1,
            req.clone(),
            ok(json!({"type": "echo_ok", "echo": "a"})),
            1,
        )],
    );
    let j = w.judge(&BTreeMap::new(), u64::MAX, 0, 0);
    assert_eq!(j.verdict, Verdict::Ok, "{}", j.report);
    assert!(j.report.contains("1 operations"), "{}", j.report);
    w.record(op(2, req, ok(json!({"type": "echo_ok", "echo": "b"})), 2));
    let j = w.judge(&BTreeMap::new(), u64::MAX, 0, 0);
    assert_eq!(j.verdict, Verdict::Violated, "{}", j.report);
    assert!(
        j.report.starts_with("echo check FAILED") && j.report.contains("n2 answered"),
        "{}",
        j.report
    );
}

#[test]
fn unique_ids_fail_an_id_given_twice() {
    let generate = json!({"type": "generate"});
    let w = workload(
        WorkloadKind::UniqueIds,
        vec![
            op(
                1,
                generate.clone(),
                ok(json!({"type": "generate_ok", "id": 1})),
                1,
            ),
            op(
                2,
                generate.clone(),
                ok(json!({"type": "generate_ok", "id": "1"})),
                2,
            ),
        ],
    );
    assert_eq!(
        w.judge(&BTreeMap::new(), u64::MAX, 0, 0).verdict,
        Verdict::Ok
    );
    w.record(op(
        3,
        generate,
        ok(json!({"type": "generate_ok", "id": 1})),
        3,
    ));
    let j = w.judge(&BTreeMap::new(), u64::MAX, 0, 0);
    assert_eq!(j.verdict, Verdict::Violated);
    assert!(j.report.contains("1 by n1 and n3"), "{}", j.report);
}

#[test]
fn broadcast_waits_for_every_node_fails_a_value_never_read_and_reports_latency() {
    let w = workload(
        WorkloadKind::Broadcast,
        vec![
            op(
                1,
                json!({"type": "broadcast", "message": 1}),
                ok(json!({"type": "broadcast_ok"})),
                0,
            ),
            op(
                2,
                json!({"type": "read"}),
                ok(json!({"type": "read_ok", "messages": [1]})),
                10,
            ),
            op(
                3,
                json!({"type": "broadcast", "message": 2}),
                Outcome::Info("timeout".into()),
                20,
            ),
        ],
    );
    let all = json!({"type": "read_ok", "messages": [1, 2]});
    let j = w.judge(
        &finals(&[(1, all.clone()), (2, all.clone()), (3, all.clone())]),
        30_000_000,
        30,
        40_000_000,
    );
    assert_eq!(j.verdict, Verdict::Ok, "{}", j.report);
    assert!(
        j.report.contains("stable latency p50 40 ms"),
        "{}",
        j.report
    );
    assert!(
        j.report
            .contains("10.0 node-to-node messages per operation"),
        "{}",
        j.report
    );
    let j = w.judge(
        &finals(&[
            (1, all.clone()),
            (2, json!({"type": "read_ok", "messages": [2]})),
        ]),
        30_000_000,
        30,
        40,
    );
    assert_eq!(j.verdict, Verdict::Violated);
    assert!(!j.settled, "a value may still be on its way");
    assert!(
        j.report
            .contains("1 acknowledged values never read on n2 (1)"),
        "{}",
        j.report
    );
    // A value whose broadcast is still in flight (drawn, not completed) may show in a read already.
    let next = loop {
        let r = w.next(&[1]).unwrap();
        // Past the values the history already holds.
        if r.body["type"] == "broadcast" && r.body["message"].as_u64() > Some(2) {
            break r.body["message"].as_u64().unwrap();
        }
    };
    w.record(op(
        2,
        json!({"type": "read"}),
        ok(json!({"type": "read_ok", "messages": [1, next]})),
        45,
    ));
    let j = w.judge(&finals(&[(1, all.clone())]), 30_000_000, 0, 60);
    assert_eq!(j.verdict, Verdict::Ok, "{}", j.report);
    // A value nobody broadcast is wrong whatever comes later.
    w.record(op(
        1,
        json!({"type": "read"}),
        ok(json!({"type": "read_ok", "messages": [9]})),
        50,
    ));
    let j = w.judge(&finals(&[(1, all)]), u64::MAX, 0, 60);
    assert!(j.settled && j.verdict == Verdict::Violated, "{}", j.report);
}

#[test]
fn g_counter_needs_equal_final_reads_within_the_adds() {
    let add = |d: u64, o: Outcome| op(1, json!({"type": "add", "delta": d}), o, 1);
    let w = workload(
        WorkloadKind::GCounter,
        vec![
            add(3, ok(json!({"type": "add_ok"}))),
            add(2, Outcome::Info("timeout".into())),
            add(7, Outcome::Fail("error 11".into())),
        ],
    );
    let read = |v: u64| json!({"type": "read_ok", "value": v});
    let j = w.judge(&finals(&[(1, read(5)), (2, read(5))]), u64::MAX, 0, 0);
    assert_eq!(j.verdict, Verdict::Ok, "{}", j.report);
    assert!(j.report.contains("the same count"), "{}", j.report);
    let j = w.judge(&finals(&[(1, read(3)), (2, read(2))]), u64::MAX, 0, 0);
    assert_eq!(j.verdict, Verdict::Violated);
    assert!(
        j.report.contains("n2 reads 2") && j.report.contains("3 acknowledged"),
        "{}",
        j.report
    );
    // An add acknowledged after the reads began need not show in them.
    let j = w.judge(&finals(&[(1, read(0))]), 0, 0, 0);
    assert_eq!(j.verdict, Verdict::Ok, "{}", j.report);
    let j = w.judge(&finals(&[(1, read(12)), (2, read(12))]), u64::MAX, 0, 0);
    assert_eq!(j.verdict, Verdict::Violated);
    assert!(
        j.report.contains("more than was ever added"),
        "{}",
        j.report
    );
    // An add acknowledged by a node that is down now is owed once it is back, not before.
    let mut down = finals(&[(2, read(0))]);
    down.insert(1, Err("n1 unreachable".into()));
    let j = w.judge(&down, u64::MAX, 0, 0);
    assert_eq!(j.verdict, Verdict::Ok, "{}", j.report);
    assert!(j.report.contains("not read now: n1"), "{}", j.report);
    // An add handed out and still in flight may already show.
    let delta = loop {
        let r = w.next(&[1]).unwrap();
        if r.body["type"] == "add" {
            break r.body["delta"].as_u64().unwrap();
        }
    };
    let j = w.judge(&finals(&[(1, read(5 + delta))]), u64::MAX, 0, 0);
    assert_eq!(j.verdict, Verdict::Ok, "{}", j.report);
}

#[test]
fn kafka_fails_an_offset_given_twice_and_a_poll_that_reads_another_message() {
    let send = |n: u64, msg: u64, offset: u64| {
        op(
            n,
            json!({"type": "send", "key": "k1", "msg": msg}),
            ok(json!({"type": "send_ok", "offset": offset})),
            1,
        )
    };
    let w = workload(WorkloadKind::Kafka, vec![send(1, 5, 0), send(2, 6, 1)]);
    w.record(op(
        3,
        json!({"type": "poll", "offsets": {"k1": 0}}),
        ok(json!({"type": "poll_ok", "msgs": {"k1": [[0, 5], [1, 6]]}})),
        2,
    ));
    assert_eq!(
        w.judge(&BTreeMap::new(), u64::MAX, 0, 0).verdict,
        Verdict::Ok
    );
    w.record(send(3, 7, 1));
    let j = w.judge(&BTreeMap::new(), u64::MAX, 0, 0);
    assert_eq!(j.verdict, Verdict::Violated);
    assert!(
        j.report
            .contains("offset 1 of k1 given to two messages (6 and 7)"),
        "{}",
        j.report
    );
}

#[test]
fn kafka_fails_a_poll_that_skips_an_acknowledged_send() {
    let send = |msg: u64, offset: u64| {
        op(
            1,
            json!({"type": "send", "key": "k2", "msg": msg}),
            ok(json!({"type": "send_ok", "offset": offset})),
            1,
        )
    };
    let poll = |at: u64, from: u64, got: Value| {
        op(
            2,
            json!({"type": "poll", "offsets": {"k2": from}}),
            ok(json!({"type": "poll_ok", "msgs": {"k2": got}})),
            at,
        )
    };
    // Offset 1's send was acknowledged (at 2 ms) before this poll began (10 ms): skipping it is a lost send.
    let w = workload(
        WorkloadKind::Kafka,
        vec![
            send(5, 0),
            send(6, 1),
            send(7, 2),
            poll(10, 0, json!([[0, 5], [2, 7]])),
        ],
    );
    let j = w.judge(&BTreeMap::new(), u64::MAX, 0, 0);
    assert_eq!(j.verdict, Verdict::Violated, "{}", j.report);
    assert!(
        j.report.contains("skipped offset 1 (message 6"),
        "{}",
        j.report
    );
    // A poll that began before the send was acknowledged may miss it.
    let w = workload(
        WorkloadKind::Kafka,
        vec![
            send(5, 0),
            send(6, 1),
            send(7, 2),
            poll(0, 0, json!([[0, 5], [2, 7]])),
        ],
    );
    assert_eq!(
        w.judge(&BTreeMap::new(), u64::MAX, 0, 0).verdict,
        Verdict::Ok
    );
}

#[test]
fn nothing_to_judge_is_said_and_not_passed() {
    let w = workload(WorkloadKind::Echo, vec![]);
    let j = w.judge(&BTreeMap::new(), u64::MAX, 0, 0);
    assert_eq!(j.verdict, Verdict::Inconclusive);
    assert!(j.report.contains("nothing to judge"), "{}", j.report);
}
