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
