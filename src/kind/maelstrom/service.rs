//! Maelstrom's key-value services, provided by squall: a node may send `read`, `write` and `cas` to the
//! destinations `lin-kv`, `seq-kv` and `lww-kv` (jepsen-io/maelstrom, doc/services.md) and gets the answer
//! back as from a node.
//!
//! One store per service, held in the squall process and served to every bridge over loopback (frames as on
//! a bridge's client port). Each operation is applied in arrival order under one lock, so every service is
//! linearizable: stronger than `seq-kv` (sequential) and `lww-kv` (last write wins) promise, which is within
//! their promise though it will not expose a node that leans on more than they guarantee. Messages to and from
//! a service cross no link proxy, so network faults do not reach them (process faults of the calling node do).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::{BufMut, BytesMut};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// The service names a node may address.
pub const SERVICES: &[&str] = &["lin-kv", "seq-kv", "lww-kv"];

/// The environment variable that tells a bridge where the services listen.
pub const ENV: &str = "SQUALL_MAELSTROM_SERVICES";

static ADDRESS: OnceLock<SocketAddr> = OnceLock::new();

/// Starts the services in this process (once; later calls return the same address). Needs a tokio runtime.
pub async fn start() -> std::io::Result<SocketAddr> {
    if let Some(a) = ADDRESS.get() {
        return Ok(*a);
    }
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    if let Err(existing) = ADDRESS.set(addr) {
        return Ok(existing);
    }
    let stores: Arc<Mutex<HashMap<String, HashMap<String, Value>>>> = Arc::default();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            let _ = conn.set_nodelay(true);
            let stores = stores.clone();
            tokio::spawn(async move {
                let (r, mut w) = conn.into_split();
                let mut r = BufReader::new(r);
                loop {
                    let mut len = [0u8; 4];
                    if r.read_exact(&mut len).await.is_err() {
                        return;
                    }
                    let mut payload = vec![0u8; u32::from_be_bytes(len) as usize];
                    if r.read_exact(&mut payload).await.is_err() {
                        return;
                    }
                    let Ok(msg) = serde_json::from_slice::<Value>(&payload) else {
                        continue;
                    };
                    let service = msg["dest"].as_str().unwrap_or("").to_string();
                    let body = {
                        let mut stores = stores.lock().unwrap();
                        apply(stores.entry(service.clone()).or_default(), &msg["body"])
                    };
                    let reply = json!({"src": service, "dest": msg["src"], "body": body});
                    let bytes = serde_json::to_vec(&reply).expect("json");
                    let mut f = BytesMut::with_capacity(4 + bytes.len());
                    f.put_u32(bytes.len() as u32);
                    f.put_slice(&bytes);
                    if w.write_all(&f).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(addr)
}

/// Where the services listen, if [`start`] ran in this process.
pub fn address() -> Option<SocketAddr> {
    ADDRESS.get().copied()
}

/// Applies one request to a store and returns the answer body (doc/services.md: `read` answers `read_ok`
/// or error 20; `write` answers `write_ok`; `cas` error 20 on a missing key unless `create_if_not_exists`,
/// error 22 when the value is not `from`).
pub fn apply(store: &mut HashMap<String, Value>, body: &Value) -> Value {
    let key = body["key"].to_string();
    let mut answer = match body["type"].as_str().unwrap_or("") {
        "read" => match store.get(&key) {
            Some(v) => json!({"type": "read_ok", "value": v}),
            None => json!({"type": "error", "code": 20, "text": "key does not exist"}),
        },
        "write" => {
            store.insert(key, body["value"].clone());
            json!({"type": "write_ok"})
        }
        "cas" => match store.get(&key) {
            None if body["create_if_not_exists"].as_bool() == Some(true) => {
                store.insert(key, body["to"].clone());
                json!({"type": "cas_ok"})
            }
            None => json!({"type": "error", "code": 20, "text": "key does not exist"}),
            Some(v) if *v != body["from"] => json!({
                "type": "error", "code": 22,
                "text": format!("expected {}, found {v}", body["from"])
            }),
            Some(_) => {
                store.insert(key, body["to"].clone());
                json!({"type": "cas_ok"})
            }
        },
        other => {
            json!({"type": "error", "code": 10, "text": format!("the kv services have no `{other}`")})
        }
    };
    answer["in_reply_to"] = body["msg_id"].clone();
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_answers_as_maelstrom_s_kv_services_do() {
        let mut s = HashMap::new();
        let r = apply(&mut s, &json!({"type": "read", "key": 1, "msg_id": 5}));
        assert_eq!(
            (r["code"].as_u64(), r["in_reply_to"].as_u64()),
            (Some(20), Some(5))
        );
        let c = apply(
            &mut s,
            &json!({"type": "cas", "key": 1, "from": 0, "to": 1}),
        );
        assert_eq!(c["code"], 20);
        let c = apply(
            &mut s,
            &json!({"type": "cas", "key": 1, "from": 0, "to": 1, "create_if_not_exists": true}),
        );
        assert_eq!(c["type"], "cas_ok");
        let c = apply(
            &mut s,
            &json!({"type": "cas", "key": 1, "from": 0, "to": 2}),
        );
        assert_eq!(c["code"], 22);
        assert_eq!(
            apply(&mut s, &json!({"type": "write", "key": 1, "value": 7}))["type"],
            "write_ok"
        );
        assert_eq!(
            apply(&mut s, &json!({"type": "read", "key": 1}))["value"],
            7
        );
        // Keys are told apart by their JSON: the number 1 and the string "1" are two keys.
        assert_eq!(
            apply(&mut s, &json!({"type": "read", "key": "1"}))["code"],
            20
        );
    }
}
