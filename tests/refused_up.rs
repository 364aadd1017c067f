//! tester-report-1 C11: a `squall up` that is refused before any node starts leaves no event log behind and
//! does not tell the person to replay one.

use std::process::{Command, Stdio};

#[test]
fn a_refused_up_writes_no_session_log_and_offers_no_replay() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let dir = tmp.path().join("cluster");
    // A directory squall cannot tell the membership of: refused when the cluster starts, after the session's
    // event log was named.
    std::fs::create_dir_all(dir.join("node-4")).expect("node-4");
    let out = Command::new(env!("CARGO_BIN_EXE_squall"))
        .args(["up", "--headless", "-n", "3", "--dir"])
        .arg(&dir)
        .stdin(Stdio::null())
        .output()
        .expect("squall runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("beyond -n 3"), "{text}");
    assert!(!text.contains("replay it with"), "{text}");
    let logs: Vec<String> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("events"))
                .collect()
        })
        .unwrap_or_default();
    assert!(logs.is_empty(), "left behind: {logs:?}\n{text}");
}

/// A node program that runs squall's node, but binds the API port of the nodes listed in `busy-ids` (beside
/// it) to `port`, which the test holds: those nodes cannot start, for a reason that has nothing to do with
/// their data.
fn busy_port_wrapper(dir: &std::path::Path, port: u16) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let script = dir.join("node-on-a-busy-port.sh");
    let ids = dir.join("busy-ids");
    std::fs::write(
        &script,
        format!(
            "#!/bin/bash\n\
             a=(\"$@\")\n\
             for i in \"${{!a[@]}}\"; do\n\
             \x20 if [[ ${{a[$i]}} == --id ]] && grep -qw -- \"${{a[$((i+1))]}}\" '{ids}'; then busy=1; fi\n\
             done\n\
             if [[ -n $busy ]]; then\n\
             \x20 for i in \"${{!a[@]}}\"; do\n\
             \x20   if [[ ${{a[$i]}} == --api-listen ]]; then a[$((i+1))]=127.0.0.1:{port}; fi\n\
             \x20 done\n\
             fi\n\
             exec '{squall}' node \"${{a[@]}}\"\n",
            ids = ids.display(),
            squall = env!("CARGO_BIN_EXE_squall"),
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

#[test]
fn a_node_that_does_not_start_is_not_said_to_have_refused_its_data() {
    use std::io::{BufRead, BufReader};
    use std::time::{Duration, Instant};
    let tmp = tempfile::tempdir().unwrap();
    // Held for the whole test: whichever port the OS hands out, a node told to listen there cannot.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let wrapper = busy_port_wrapper(tmp.path(), port);
    let dir = tmp.path().join("cluster");

    // Node 3 cannot listen; nodes 1 and 2 are a majority and run. The feed gives node 3's own words and
    // does not send the person to wipe its healthy data.
    std::fs::write(tmp.path().join("busy-ids"), "3\n").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_squall"))
        .args(["up", "--headless", "-n", "3", "--dir"])
        .arg(&dir)
        .arg("--node-bin")
        .arg(&wrapper)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    let line = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if l.contains("n3 refused") || l.contains("n3 did not start") => break l,
            Ok(l) => seen.push(l),
            Err(_) => panic!(
                "no feed line on node 3 not starting within 30s; seen:\n{}",
                seen.join("\n")
            ),
        }
    };
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(line.contains("n3 did not start: "), "{line}");
    assert!(line.contains("in use"), "node 3's own words: {line}");
    assert!(!line.contains("refused its data"), "{line}");
    let only_if = line
        .find("only if its data is damaged")
        .unwrap_or_else(|| panic!("{line}"));
    assert!(
        line.find("wipe").is_some_and(|w| w > only_if),
        "wipe is offered only for damaged data: {line}"
    );

    // Nodes 2 and 3 cannot listen: not a majority, nothing runs, exit 2; each node's own error comes before
    // its log's tail.
    std::fs::write(tmp.path().join("busy-ids"), "2 3\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_squall"))
        .args(["up", "--headless", "-n", "3", "--dir"])
        .arg(&dir)
        .arg("--node-bin")
        .arg(&wrapper)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for id in [2, 3] {
        let head = format!("node {id} did not start: ");
        let from = err.find(&head).unwrap_or_else(|| panic!("{head}…\n{err}"));
        let first_line = err[from..].lines().next().unwrap();
        assert!(
            first_line.contains("in use"),
            "node {id}'s error before its log: {first_line}\n{err}"
        );
    }
    assert!(!err.contains("refused its data"), "{err}");
    // F12: the refusal named an event log it never wrote.
    assert_named_paths_exist(&format!("{}{err}", String::from_utf8_lossy(&out.stdout)));
    drop(busy);
}

/// Every file or directory the output names as the session's (`cluster directory PATH`, `event log PATH`)
/// exists.
fn assert_named_paths_exist(text: &str) {
    for label in ["cluster directory ", "event log "] {
        for (at, _) in text.match_indices(label) {
            let path = text[at + label.len()..]
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .trim_end_matches([';', ',', ')', '.']);
            if path.starts_with('/') {
                assert!(
                    std::path::Path::new(path).exists(),
                    "names {label}{path}, which does not exist:\n{text}"
                );
            }
        }
    }
}

/// F12: a `squall up` refused once it has checked its flags (a workload the node kind cannot run, a cluster
/// directory it cannot read the membership of) named a cluster directory and an event log it never wrote.
#[test]
fn a_refused_up_names_no_file_it_did_not_write() {
    let tmp = tempfile::tempdir().unwrap();
    let fresh = tmp.path().join("fresh");
    let odd = tmp.path().join("odd");
    std::fs::create_dir_all(odd.join("node-4")).unwrap();
    for (dir, extra) in [(&fresh, &["--workload", "echo"][..]), (&odd, &[][..])] {
        let out = Command::new(env!("CARGO_BIN_EXE_squall"))
            .args(["up", "--headless", "-n", "3", "--dir"])
            .arg(dir)
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(2), "{text}");
        assert!(
            !text.contains("events.jsonl.gz"),
            "names an event log it never wrote:\n{text}"
        );
        assert_named_paths_exist(&text);
    }
}
