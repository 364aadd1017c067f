//! `squall maelstrom-bench-node`: a Maelstrom node in Rust for the routing benchmark (BENCHMARKS.md,
//! "Maelstrom message routing"), so the node's own cost is small beside the router's.
//!
//! It answers `echo` with `echo_ok`. An `echo` whose body has `"via": "nK"` is first relayed: the node sends
//! `relay` to `nK`, which answers `relay_ok`, and only then answers the client — so a relayed echo crosses two
//! node-to-node hops through squall's proxies that a plain echo does not, and the difference of their round
//! trips is the added latency of two hops.

use std::collections::HashMap;
use std::io::{BufRead as _, BufWriter, Write as _};
use std::process::ExitCode;

use serde_json::{Value, json};

/// Runs the node on stdin and stdout until stdin closes.
pub fn run() -> ExitCode {
    let stdin = std::io::stdin().lock();
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut me = String::new();
    let mut next = 0u64;
    // Relayed echoes waiting for their relay_ok: our msg_id -> the client's request.
    let mut waiting: HashMap<u64, Value> = HashMap::new();
    for line in stdin.lines() {
        let Ok(line) = line else { break };
        let Ok(msg) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let body = &msg["body"];
        next += 1;
        let answer = match body["type"].as_str().unwrap_or("") {
            "init" => {
                me = body["node_id"].as_str().unwrap_or("").to_string();
                reply(&me, next, &msg, json!({"type": "init_ok"}))
            }
            "echo" => match body["via"].as_str() {
                Some(via) if via != me => {
                    waiting.insert(next, msg.clone());
                    json!({"src": me, "dest": via, "body": {"type": "relay", "msg_id": next}})
                }
                _ => reply(
                    &me,
                    next,
                    &msg,
                    json!({"type": "echo_ok", "echo": body["echo"]}),
                ),
            },
            "relay" => reply(&me, next, &msg, json!({"type": "relay_ok"})),
            "relay_ok" => {
                let Some(req) = body["in_reply_to"]
                    .as_u64()
                    .and_then(|id| waiting.remove(&id))
                else {
                    continue;
                };
                reply(
                    &me,
                    next,
                    &req,
                    json!({"type": "echo_ok", "echo": req["body"]["echo"]}),
                )
            }
            _ => continue,
        };
        let ok = serde_json::to_writer(&mut out, &answer).is_ok()
            && out.write_all(b"\n").is_ok()
            && out.flush().is_ok();
        if !ok {
            break;
        }
    }
    ExitCode::SUCCESS
}

/// The answer from `me` to request `to`, as message `msg_id`.
fn reply(me: &str, msg_id: u64, to: &Value, mut body: Value) -> Value {
    body["msg_id"] = json!(msg_id);
    body["in_reply_to"] = to["body"]["msg_id"].clone();
    json!({"src": me, "dest": to["src"], "body": body})
}
