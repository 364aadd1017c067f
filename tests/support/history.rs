//! Doctoring a lin-kv history, for the tests that show the checker finds what was spliced in.

/// Splices a stale read into a JSON Lines history; returns the new history and how the read's line in the
/// window reads (`process P read → V`).
pub fn splice_stale_read(history: &str) -> Option<(String, String)> {
    let events: Vec<serde_json::Value> = history
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Completed writes per key: (value, invoke time, completion time).
    let mut invoked = std::collections::HashMap::new();
    let mut writes: std::collections::BTreeMap<i64, Vec<(i64, u64, u64)>> = Default::default();
    for e in &events {
        if e["f"] != "write" {
            continue;
        }
        let p = e["process"].as_u64().unwrap();
        let t = e["time"].as_u64().unwrap();
        match e["type"].as_str().unwrap() {
            "invoke" => {
                invoked.insert(p, t);
            }
            "ok" => {
                let k = e["value"][0].as_i64().unwrap();
                let v = e["value"][1].as_i64().unwrap();
                writes.entry(k).or_default().push((v, invoked[&p], t));
            }
            _ => {}
        }
    }
    let max_process = events
        .iter()
        .map(|e| e["process"].as_u64().unwrap())
        .max()?;
    for (key, ws) in writes {
        for (i, &(v1, _, done1)) in ws.iter().enumerate() {
            if let Some(&(_, _, done2)) = ws[i + 1..].iter().find(|(_, start2, _)| *start2 > done1)
            {
                let p = max_process + 1;
                let mut lines: Vec<(u64, String)> = events
                    .iter()
                    .map(|e| (e["time"].as_u64().unwrap(), e.to_string()))
                    .collect();
                lines.push((
                    done2 + 1,
                    format!(
                        "{{\"index\": 0, \"type\": \"invoke\", \"f\": \"read\", \"process\": {p}, \"time\": {}, \"value\": [{key}, null]}}",
                        done2 + 1
                    ),
                ));
                lines.push((
                    done2 + 2,
                    format!(
                        "{{\"index\": 0, \"type\": \"ok\", \"f\": \"read\", \"process\": {p}, \"time\": {}, \"value\": [{key}, {v1}]}}",
                        done2 + 2
                    ),
                ));
                lines.sort_by_key(|(t, _)| *t);
                let mut out = String::new();
                for (_, l) in lines {
                    out.push_str(&l);
                    out.push('\n');
                }
                return Some((out, format!("process {p} read → {v1}")));
            }
        }
    }
    None
}
