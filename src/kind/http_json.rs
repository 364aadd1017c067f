//! The `http-json` drivers: status and the workloads' client for any node that answers HTTP with JSON. The
//! kind file says where each value is (`[status.http]`: a request path and a field path per value) and how
//! each operation is asked and judged (`[client.http]`: a request per operation, the field its answer is in,
//! which HTTP codes mean "did not happen"). Nothing here knows one implementation; the README's "Node kinds"
//! documents the tables.
//!
//! The `http-json` membership driver ([`HttpMembership`], `[membership.http]`) asks one request per
//! single-server change and reads the configuration from the status (see [`MembershipConfig`]).
//!
//! Field paths are dotted (`raft.term`, `members.0.id`: a number indexes an array). A value that is absent or
//! `null` is not reported (shown as `—`). Numbers may be JSON numbers or strings of digits.
//!
//! How an operation is judged, conservatively (a history that calls something failed which happened is
//! judged wrongly; one that calls it unknown is only judged less sharply):
//! - a 2xx answer: done, with the answer read from the configured field;
//! - a code in `fail_status`: did not happen; the client tries the leader the answer names (the `leader`
//!   field) or the next node, until the operation's time is up;
//! - no connection could be made: not sent, so did not happen; the next node is tried;
//! - anything else (another code, a cut connection, no answer in time, an answer that is not the JSON
//!   expected): unknown (`info`) for a write or cas; a read changes nothing, so a read is `fail`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::FutureExt as _;
use futures::future::BoxFuture;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::Value;
use squall_node::raft::Role;
use tokio::net::TcpStream;

use super::Template;
use super::drivers::{Addrs, KvAnswer, KvClient, KvOutcome, KvRequest, StatusReport, StatusSource};
use super::membership::{ChangeAnswer, MemberChange, MembershipDriver};
use squall_node::raft::types::Membership;

/// `[status.http]`: where the status is and where each value is in it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusConfig {
    /// The path GET asks (`/status`).
    #[serde(default = "status_path")]
    pub path: String,
    /// Field path of the role; its values are mapped by `roles`.
    pub role: Option<String>,
    /// Field path of the current term.
    pub term: Option<String>,
    /// Field path of the leader's node id (as squall numbers nodes, 1..=n).
    pub leader: Option<String>,
    /// Field path of the commit index.
    pub commit: Option<String>,
    /// Field path of the applied index.
    pub applied: Option<String>,
    /// Field path of the process id.
    pub pid: Option<String>,
    /// The node's role words and what each is: `leader`, `follower`, `candidate` or `precandidate`. Without
    /// this table those four words are taken as they are, in any case. A word not listed is not reported.
    #[serde(default)]
    pub roles: BTreeMap<String, String>,
}

fn status_path() -> String {
    "/status".to_string()
}

/// `[client.http]`: one request per operation and how its answer is judged.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// How long one operation may take, retries included, in milliseconds.
    #[serde(default = "op_timeout_ms")]
    pub timeout_ms: u64,
    /// HTTP codes the node gives only when it did nothing (not the leader, a refused request).
    #[serde(default)]
    pub fail_status: Vec<u16>,
    /// Field path, in a refused answer, of the node id of the leader to ask instead.
    pub leader: Option<String>,
    /// Field path of an error answer's message.
    pub error: Option<String>,
    /// Reads: placeholder `{key}`; `value` names the field holding the value (absent or `null`: no value).
    pub read: OpConfig,
    /// Writes: placeholders `{key}`, `{value}`.
    pub write: OpConfig,
    /// Compare-and-set: placeholders `{key}`, `{from}`, `{to}`; `swapped` names the boolean field saying
    /// whether it swapped.
    pub cas: OpConfig,
    /// Counter increments (optional): placeholders `{key}`, `{by}`; `value` names the new value's field.
    pub incr: Option<OpConfig>,
}

fn op_timeout_ms() -> u64 {
    4000
}

/// One operation's request.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpConfig {
    /// `POST` (the default), `PUT` or `GET`.
    #[serde(default = "post")]
    pub method: String,
    /// The path, a template (placeholders are percent-encoded).
    pub path: String,
    /// The JSON body: a TOML value whose strings are templates. A string that is only a placeholder becomes
    /// a JSON string of its value.
    pub body: Option<toml::Value>,
    /// Field path of a read's (or increment's) value.
    pub value: Option<String>,
    /// Field path of a cas's outcome.
    pub swapped: Option<String>,
}

fn post() -> String {
    "POST".to_string()
}

/// A mistake in one of these tables: the field (below `[status.http]` or `[client.http]`) and what to do.
pub type ConfigError = (String, String);

const ROLE_WORDS: &[(&str, Role)] = &[
    ("leader", Role::Leader),
    ("follower", Role::Follower),
    ("candidate", Role::Candidate),
    ("precandidate", Role::PreCandidate),
];

impl StatusConfig {
    /// Reads and checks `[status.http]`.
    pub fn from_toml(v: toml::Value) -> Result<StatusConfig, ConfigError> {
        let c: StatusConfig = StatusConfig::deserialize(v)
            .map_err(|e| (String::new(), e.message().trim().to_string()))?;
        if !c.path.starts_with('/') {
            return Err(("path".into(), format!("`{}` must start with /", c.path)));
        }
        for (word, role) in &c.roles {
            if !ROLE_WORDS.iter().any(|(w, _)| w == role) {
                return Err((
                    format!("roles.{word}"),
                    format!(
                        "`{role}` is not a role; use one of {}",
                        ROLE_WORDS
                            .iter()
                            .map(|(w, _)| *w)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        Ok(c)
    }

    fn role(&self, word: &str) -> Option<Role> {
        let name = if self.roles.is_empty() {
            word.to_ascii_lowercase()
        } else {
            self.roles.get(word)?.clone()
        };
        ROLE_WORDS.iter().find(|(w, _)| *w == name).map(|(_, r)| *r)
    }

    /// The report one status answer gives.
    pub fn report(&self, v: &Value) -> StatusReport {
        let num = |p: &Option<String>| p.as_deref().and_then(|p| number(field(v, p)?));
        StatusReport {
            role: self
                .role
                .as_deref()
                .and_then(|p| field(v, p)?.as_str())
                .and_then(|w| self.role(w)),
            term: num(&self.term),
            // A configured field that is absent or null: the node knows of no leader.
            leader: self.leader.as_deref().map(|p| field(v, p).and_then(number)),
            commit: num(&self.commit),
            applied: num(&self.applied),
            pid: num(&self.pid).and_then(|p| u32::try_from(p).ok()),
            learner: false,
            detail: None,
            feed: Vec::new(),
            messages: None,
            notes: Vec::new(),
        }
    }
}

impl ClientConfig {
    /// Reads and checks `[client.http]`.
    pub fn from_toml(v: toml::Value) -> Result<ClientConfig, ConfigError> {
        let c: ClientConfig = ClientConfig::deserialize(v)
            .map_err(|e| (String::new(), e.message().trim().to_string()))?;
        c.read.check("read", &["key"], Some("value"))?;
        c.write.check("write", &["key", "value"], None)?;
        c.cas
            .check("cas", &["key", "from", "to"], Some("swapped"))?;
        if let Some(i) = &c.incr {
            i.check("incr", &["key", "by"], Some("value"))?;
        }
        if let Some(code) = c.fail_status.iter().find(|c| !(400..600).contains(*c)) {
            return Err((
                "fail_status".into(),
                format!("{code} is not an error code (400..=599)"),
            ));
        }
        Ok(c)
    }
}

impl OpConfig {
    fn check(&self, op: &str, holes: &[&str], answer: Option<&str>) -> Result<(), ConfigError> {
        if !["GET", "POST", "PUT"].contains(&self.method.as_str()) {
            return Err((
                format!("{op}.method"),
                format!("`{}`: use GET, POST or PUT", self.method),
            ));
        }
        if !self.path.starts_with('/') {
            return Err((
                format!("{op}.path"),
                format!("`{}` must start with /", self.path),
            ));
        }
        let mut strings = vec![(format!("{op}.path"), self.path.clone())];
        if let Some(b) = &self.body {
            collect_strings(b, &format!("{op}.body"), &mut strings);
        }
        for (field, s) in strings {
            let t = Template::parse(&s).map_err(|e| (field.clone(), format!("`{s}`: {e}")))?;
            if let Some(h) = t.holes().find(|h| !holes.contains(h)) {
                return Err((
                    field,
                    format!(
                        "unknown placeholder {{{h}}}; known here: {}",
                        holes
                            .iter()
                            .map(|h| format!("{{{h}}}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        match answer {
            Some("value") if self.value.is_none() => Err((
                format!("{op}.value"),
                "give the field path of the value in the answer".into(),
            )),
            Some("swapped") if self.swapped.is_none() => Err((
                format!("{op}.swapped"),
                "give the field path of the boolean saying whether the cas swapped".into(),
            )),
            _ => Ok(()),
        }
    }

    /// The path and body with `values` put in.
    fn request(&self, values: &BTreeMap<String, String>) -> (String, Option<Value>) {
        let encoded: BTreeMap<String, String> = values
            .iter()
            .map(|(k, v)| (k.clone(), percent_encode(v)))
            .collect();
        let path = Template::parse(&self.path)
            .map(|t| t.expand(&encoded).unwrap_or_default())
            .unwrap_or_default();
        (path, self.body.as_ref().map(|b| json_body(b, values)))
    }
}

fn collect_strings(v: &toml::Value, at: &str, out: &mut Vec<(String, String)>) {
    match v {
        toml::Value::String(s) => out.push((at.to_string(), s.clone())),
        toml::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                collect_strings(x, &format!("{at}.{i}"), out);
            }
        }
        toml::Value::Table(t) => {
            for (k, x) in t {
                collect_strings(x, &format!("{at}.{k}"), out);
            }
        }
        _ => {}
    }
}

/// The TOML body as JSON, each string a template expanded with `values` (checked at load).
fn json_body(v: &toml::Value, values: &BTreeMap<String, String>) -> Value {
    match v {
        toml::Value::String(s) => Value::String(
            Template::parse(s)
                .ok()
                .and_then(|t| t.expand(values).ok())
                .unwrap_or_default(),
        ),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => Value::from(*f),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.iter().map(|x| json_body(x, values)).collect()),
        toml::Value::Table(t) => Value::Object(
            t.iter()
                .map(|(k, x)| (k.clone(), json_body(x, values)))
                .collect(),
        ),
    }
}

fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The value at a dotted field path, `None` when absent or `null`.
pub fn field<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut at = v;
    for seg in path.split('.') {
        at = match at {
            Value::Object(m) => m.get(seg)?,
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    (!at.is_null()).then_some(at)
}

/// A JSON number or a string of digits.
fn number(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_str()?.trim().parse().ok())
}

/// Why a call has no answer to judge.
enum CallError {
    /// No connection could be made: the request never left.
    NotSent(String),
    /// It may have arrived: the connection broke or the answer did not come in time.
    NoAnswer(String),
}

/// One node's HTTP/1.1 connection, made on first use and after any failure.
struct Conn {
    addr: SocketAddr,
    send: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    fn new(addr: SocketAddr) -> Conn {
        Conn { addr, send: None }
    }

    /// One request; the code and JSON answer (`Value::Null` if the body is not JSON).
    async fn call(
        &mut self,
        method: &str,
        path: &str,
        body: Option<Value>,
        timeout: Duration,
    ) -> Result<(u16, Value), CallError> {
        let res = tokio::time::timeout(timeout, self.exchange(method, path, body)).await;
        let out = match res {
            Ok(r) => r,
            Err(_) => Err(CallError::NoAnswer(format!(
                "no answer from {} within {timeout:?}",
                self.addr
            ))),
        };
        if out.is_err() {
            self.send = None;
        }
        out
    }

    async fn exchange(
        &mut self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), CallError> {
        if self.send.as_ref().is_none_or(|c| c.is_closed()) {
            let stream = TcpStream::connect(self.addr)
                .await
                .map_err(|e| CallError::NotSent(format!("cannot connect to {}: {e}", self.addr)))?;
            let _ = stream.set_nodelay(true);
            let (send, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| {
                    CallError::NotSent(format!("HTTP handshake with {} failed: {e}", self.addr))
                })?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            self.send = Some(send);
        }
        let send = self.send.as_mut().expect("connected above");
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, self.addr.to_string());
        let bytes = match body {
            Some(b) => {
                req = req.header(hyper::header::CONTENT_TYPE, "application/json");
                Bytes::from(b.to_string())
            }
            None => Bytes::new(),
        };
        let req = req
            .body(Full::new(bytes))
            .map_err(|e| CallError::NotSent(format!("bad request {method} {path}: {e}")))?;
        // A connection that closed before the request was written: nothing was sent on it.
        send.ready()
            .await
            .map_err(|e| CallError::NotSent(format!("connection to {} closed: {e}", self.addr)))?;
        let resp = send
            .send_request(req)
            .await
            .map_err(|e| CallError::NoAnswer(format!("connection to {} lost: {e}", self.addr)))?;
        let code = resp.status().as_u16();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| CallError::NoAnswer(format!("answer from {} cut short: {e}", self.addr)))?
            .to_bytes();
        Ok((code, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
    }
}

/// Status over HTTP JSON.
pub struct HttpStatus {
    conn: Conn,
    timeout: Duration,
    config: Arc<StatusConfig>,
}

impl HttpStatus {
    /// A source for the node whose status port is `addr`; every call has `timeout`.
    pub fn new(addr: SocketAddr, timeout: Duration, config: Arc<StatusConfig>) -> HttpStatus {
        HttpStatus {
            conn: Conn::new(addr),
            timeout,
            config,
        }
    }

    async fn poll_inner(&mut self) -> Result<StatusReport, String> {
        let path = self.config.path.clone();
        match self.conn.call("GET", &path, None, self.timeout).await {
            Ok((code, v)) if (200..300).contains(&code) && v.is_object() => {
                Ok(self.config.report(&v))
            }
            Ok((code, v)) => Err(format!("GET {path} answered {code}: {v}")),
            Err(CallError::NotSent(e) | CallError::NoAnswer(e)) => Err(e),
        }
    }
}

impl StatusSource for HttpStatus {
    fn poll(&mut self) -> BoxFuture<'_, Result<StatusReport, String>> {
        self.poll_inner().boxed()
    }
}

/// The workloads' client over HTTP JSON: asks the node it last found leading, follows leader hints in
/// refusals, and judges each answer as the module says.
pub struct HttpKv {
    conns: BTreeMap<u64, Conn>,
    config: Arc<ClientConfig>,
    /// The node asked first.
    guess: u64,
}

impl HttpKv {
    /// A client of the nodes whose client ports are `addrs`.
    pub fn new(addrs: Addrs, config: Arc<ClientConfig>) -> HttpKv {
        let guess = addrs.keys().next().copied().unwrap_or(1);
        HttpKv {
            conns: addrs
                .into_iter()
                .map(|(id, a)| (id, Conn::new(a)))
                .collect(),
            config,
            guess,
        }
    }

    fn next_after(&self, id: u64) -> u64 {
        self.conns
            .range(id + 1..)
            .next()
            .or_else(|| self.conns.iter().next())
            .map_or(id, |(k, _)| *k)
    }

    fn message(&self, code: u16, v: &Value) -> String {
        let said = self
            .config
            .error
            .as_deref()
            .and_then(|p| field(v, p))
            .map(|m| m.as_str().map_or_else(|| m.to_string(), str::to_string))
            .unwrap_or_else(|| v.to_string());
        format!("HTTP {code}: {said}")
    }

    async fn run(&mut self, req: KvRequest) -> KvOutcome {
        let config = self.config.clone();
        let (op, values, is_read) = match &req {
            KvRequest::Read { key } => (&config.read, vec![("key", key.clone())], true),
            KvRequest::Write { key, value } => (
                &config.write,
                vec![("key", key.clone()), ("value", value.clone())],
                false,
            ),
            KvRequest::Cas { key, from, to } => (
                &config.cas,
                vec![
                    ("key", key.clone()),
                    ("from", from.clone()),
                    ("to", to.clone()),
                ],
                false,
            ),
            KvRequest::Incr { key, by } => match &config.incr {
                Some(op) => (
                    op,
                    vec![("key", key.clone()), ("by", by.to_string())],
                    false,
                ),
                None => {
                    return KvOutcome::Fail(
                        "this kind's [client.http] has no `incr`: the counter workload cannot run"
                            .into(),
                    );
                }
            },
        };
        let values: BTreeMap<String, String> = values
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let (path, body) = op.request(&values);
        let deadline = Instant::now() + Duration::from_millis(config.timeout_ms);
        let mut last = String::from("no node to ask");
        let mut asked = 0usize;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return KvOutcome::Fail(format!(
                    "not done within {} ms: {last}",
                    config.timeout_ms
                ));
            }
            let target = self.guess;
            let Some(conn) = self.conns.get_mut(&target) else {
                return KvOutcome::Fail(format!("no address for node {target}"));
            };
            asked += 1;
            match conn.call(&op.method, &path, body.clone(), left).await {
                Err(CallError::NotSent(e)) => {
                    last = e;
                    self.guess = self.next_after(target);
                }
                Err(CallError::NoAnswer(e)) => {
                    self.guess = self.next_after(target);
                    return if is_read {
                        KvOutcome::Fail(format!("node {target}: {e} (a read changes nothing)"))
                    } else {
                        KvOutcome::Info(format!("node {target}: {e}"))
                    };
                }
                Ok((code, v)) if (200..300).contains(&code) => {
                    return match answer(&req, op, &v) {
                        Some(a) => KvOutcome::Done(a),
                        None if is_read => KvOutcome::Fail(format!(
                            "node {target} answered {code} without the expected field: {v}"
                        )),
                        None => KvOutcome::Info(format!(
                            "node {target} answered {code} without the expected field: {v}"
                        )),
                    };
                }
                Ok((code, v)) if config.fail_status.contains(&code) => {
                    last = format!("node {target}: {}", self.message(code, &v));
                    let hint = config
                        .leader
                        .as_deref()
                        .and_then(|p| number(field(&v, p)?))
                        .filter(|h| *h != target && self.conns.contains_key(h));
                    self.guess = hint.unwrap_or_else(|| self.next_after(target));
                    // A full round of refusals with no leader named: there is none now; give the cluster a
                    // moment before the next round instead of spinning.
                    if hint.is_none() && asked.is_multiple_of(self.conns.len().max(1)) {
                        tokio::time::sleep(Duration::from_millis(50).min(left)).await;
                    }
                }
                Ok((code, v)) => {
                    let why = format!("node {target}: {}", self.message(code, &v));
                    self.guess = self.next_after(target);
                    return if is_read {
                        KvOutcome::Fail(why)
                    } else {
                        KvOutcome::Info(why)
                    };
                }
            }
        }
    }
}

/// The answer of a 2xx reply, `None` when the field it needs is missing or of the wrong type.
fn answer(req: &KvRequest, op: &OpConfig, v: &Value) -> Option<KvAnswer> {
    match req {
        KvRequest::Read { .. } => {
            let path = op.value.as_deref()?;
            if !v.is_object() {
                return None;
            }
            Some(KvAnswer::Value(field(v, path).map(|x| {
                x.as_str().map_or_else(|| x.to_string(), str::to_string)
            })))
        }
        KvRequest::Write { .. } => Some(KvAnswer::Written),
        KvRequest::Cas { .. } => Some(KvAnswer::Swapped(
            field(v, op.swapped.as_deref()?)?.as_bool()?,
        )),
        KvRequest::Incr { .. } => {
            let x = field(v, op.value.as_deref()?)?;
            Some(KvAnswer::Counter(
                x.as_i64().or_else(|| x.as_str()?.trim().parse().ok())?,
            ))
        }
    }
}

impl KvClient for HttpKv {
    fn execute(&mut self, req: KvRequest) -> BoxFuture<'_, KvOutcome> {
        self.run(req).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_toml() -> toml::Value {
        toml::from_str(
            r#"
            fail_status = [421, 503]
            leader = "leader"
            error = "error"
            read = { path = "/read", body = { key = "{key}" }, value = "value" }
            write = { path = "/kv/{key}", method = "PUT", body = { value = "{value}" } }
            cas = { path = "/cas", body = { key = "{key}", from = "{from}", to = "{to}" }, swapped = "swapped" }
            "#,
        )
        .unwrap()
    }

    #[test]
    fn field_paths_walk_objects_and_arrays_and_null_is_absent() {
        let v: Value =
            serde_json::from_str(r#"{"raft": {"term": 7, "ids": [4, "5"]}, "leader": null}"#)
                .unwrap();
        assert_eq!(field(&v, "raft.term"), Some(&Value::from(7)));
        assert_eq!(number(field(&v, "raft.ids.1").unwrap()), Some(5));
        assert_eq!(field(&v, "leader"), None);
        assert_eq!(field(&v, "raft.nope"), None);
        assert_eq!(field(&v, "raft.term.deeper"), None);
    }

    #[test]
    fn a_status_answer_becomes_a_report_with_unlisted_values_absent() {
        let cfg = StatusConfig::from_toml(
            toml::from_str(
                r#"
                term = "current_term"
                role = "state"
                leader = "leader"
                [roles]
                Leader = "leader"
                Follower = "follower"
                "#,
            )
            .unwrap(),
        )
        .unwrap();
        let r = cfg.report(
            &serde_json::from_str(r#"{"current_term": "12", "state": "Leader", "leader": 2}"#)
                .unwrap(),
        );
        assert_eq!(
            (r.role, r.term, r.leader),
            (Some(Role::Leader), Some(12), Some(Some(2)))
        );
        assert_eq!((r.commit, r.applied, r.pid), (None, None, None));
        let r =
            cfg.report(&serde_json::from_str(r#"{"state": "Learner", "leader": null}"#).unwrap());
        assert_eq!(
            r.role, None,
            "a word the table does not list is not guessed"
        );
        assert_eq!(
            r.leader,
            Some(None),
            "a null leader is a node that knows of none"
        );
        let no_leader_field =
            StatusConfig::from_toml(toml::from_str("term = \"t\"").unwrap()).unwrap();
        assert_eq!(
            no_leader_field.report(&serde_json::json!({"t": 1})).leader,
            None
        );
    }

    #[test]
    fn status_tables_with_mistakes_name_the_field() {
        let e = StatusConfig::from_toml(toml::from_str("[roles]\nLeader = \"boss\"").unwrap())
            .unwrap_err();
        assert_eq!(e.0, "roles.Leader");
        assert!(e.1.contains("boss"), "{e:?}");
        let e = StatusConfig::from_toml(toml::from_str("trem = \"term\"").unwrap()).unwrap_err();
        assert!(e.1.contains("trem"), "{e:?}");
    }

    #[test]
    fn client_requests_fill_paths_encoded_and_bodies_as_json_strings() {
        let cfg = ClientConfig::from_toml(client_toml()).unwrap();
        let values = BTreeMap::from([
            ("key".to_string(), "a b/c".to_string()),
            ("value".to_string(), "7".to_string()),
        ]);
        let (path, body) = cfg.write.request(&values);
        assert_eq!(path, "/kv/a%20b%2Fc");
        assert_eq!(body.unwrap(), serde_json::json!({"value": "7"}));
        let (path, body) = cfg.read.request(&values);
        assert_eq!(path, "/read");
        assert_eq!(body.unwrap(), serde_json::json!({"key": "a b/c"}));
    }

    #[test]
    fn client_tables_with_mistakes_name_the_field() {
        let mut v = client_toml();
        v["cas"]
            .as_table_mut()
            .unwrap()
            .insert("body".into(), toml::Value::String("{value}".into()));
        let e = ClientConfig::from_toml(v).unwrap_err();
        assert_eq!(e.0, "cas.body");
        assert!(e.1.contains("{value}"), "{e:?}");
        let mut v = client_toml();
        v["read"].as_table_mut().unwrap().remove("value");
        assert_eq!(ClientConfig::from_toml(v).unwrap_err().0, "read.value");
        let mut v = client_toml();
        v.as_table_mut()
            .unwrap()
            .insert("fail_status".into(), toml::Value::Array(vec![200.into()]));
        assert_eq!(ClientConfig::from_toml(v).unwrap_err().0, "fail_status");
    }

    #[test]
    fn answers_are_read_from_their_fields() {
        let cfg = ClientConfig::from_toml(client_toml()).unwrap();
        let read = KvRequest::Read { key: "k".into() };
        let cas = KvRequest::Cas {
            key: "k".into(),
            from: "1".into(),
            to: "2".into(),
        };
        assert_eq!(
            answer(&read, &cfg.read, &serde_json::json!({"value": 3})),
            Some(KvAnswer::Value(Some("3".into())))
        );
        assert_eq!(
            answer(&read, &cfg.read, &serde_json::json!({"value": null})),
            Some(KvAnswer::Value(None))
        );
        assert_eq!(
            answer(&cas, &cfg.cas, &serde_json::json!({"swapped": false})),
            Some(KvAnswer::Swapped(false))
        );
        assert_eq!(answer(&cas, &cfg.cas, &serde_json::json!({})), None);
    }

    const EXAMPLE: &str = include_str!("../../examples/openraft-kv/openraft.toml");

    fn parse(text: &str) -> Result<super::super::Kind, super::super::KindError> {
        super::super::Kind::parse(text, super::super::Source::File("k.toml".into()))
    }

    #[test]
    fn the_openraft_example_kind_loads_with_both_http_tables() {
        let k = parse(EXAMPLE).unwrap();
        assert_eq!(
            (k.status.name.as_str(), k.client.name.as_str()),
            ("http-json", "http-json")
        );
        assert_eq!(
            k.status_http.as_ref().unwrap().term.as_deref(),
            Some("term")
        );
        assert_eq!(k.client_http.as_ref().unwrap().fail_status, [400, 421, 503]);
    }

    #[test]
    fn an_http_table_missing_misplaced_or_wrong_is_a_load_error_naming_line_and_field() {
        let (a, b) = (
            EXAMPLE.find("[status.http]").unwrap(),
            EXAMPLE.find("[client]").unwrap(),
        );
        let text = format!("{}{}", &EXAMPLE[..a], &EXAMPLE[b..]);
        let e = parse(&text).unwrap_err().to_string();
        assert!(
            e.contains("status.http") && e.contains("needs a [status.http]"),
            "{e}"
        );

        let text = EXAMPLE.replacen("term = \"term\"", "term = \"term\"\nterms = 1", 1);
        let e = parse(&text).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("status.http"), "{e}");
        assert!(e.message.contains("terms") && e.line_col.is_some(), "{e}");

        let text = EXAMPLE.replacen(
            "body = { key = \"{key}\" }",
            "body = { key = \"{kee}\" }",
            1,
        );
        let e = parse(&text).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("client.http.read.body.key"), "{e}");

        let text = EXAMPLE.replacen(
            "[client]\nprotocol = \"http-json\"",
            "[client]\nprotocol = \"squall\"",
            1,
        );
        let e = parse(&text).unwrap_err().to_string();
        assert!(
            e.contains("only the http-json driver reads [client.http]"),
            "{e}"
        );
    }

    fn membership(extra: &str) -> HttpMembership {
        let v: toml::Value = toml::from_str(&format!(
            r#"
            voters = "members"
            error = "error"
            add_learner = {{ path = "/add-learner", body = {{ id = "{{id}}", addr = "{{peer}}" }} }}
            promote = {{ path = "/promote", body = {{ id = "{{id}}" }} }}
            remove = {{ path = "/remove", body = {{ id = "{{id}}" }} }}
            already_status = [409]
            wait_status = [421, 503]
            {extra}
            "#
        ))
        .unwrap();
        HttpMembership {
            config: Arc::new(MembershipConfig::from_toml(v).unwrap()),
        }
    }

    #[test]
    fn membership_answers_map_to_what_the_orchestrator_does() {
        let m = membership("");
        let err = serde_json::json!({"error": "not the leader"});
        assert_eq!(m.judge(200, &Value::Null), ChangeAnswer::Committed(None));
        assert_eq!(m.judge(409, &err), ChangeAnswer::Already);
        assert_eq!(
            m.judge(421, &err),
            ChangeAnswer::Wait("the node answered 421: not the leader".into())
        );
        assert!(matches!(m.judge(400, &err), ChangeAnswer::Refused(w) if w.contains("400")));
        // A 5xx may have been proposed: unknown, asked again.
        assert_eq!(m.judge(504, &err), ChangeAnswer::Timeout);
        assert_eq!(m.judge(500, &err), ChangeAnswer::Timeout);
        // No demote request: demote can never happen, and says why.
        assert!(m.cannot(MemberChange::Demote(2)).is_some());
        assert!(m.cannot(MemberChange::Remove(2)).is_none());
        let with = membership(r#"demote = { path = "/demote", body = { id = "{id}" } }"#);
        assert!(with.cannot(MemberChange::Demote(2)).is_none());
    }

    #[test]
    fn a_membership_table_with_a_mistake_names_the_field() {
        let v: toml::Value = toml::from_str(
            r#"
            voters = "members"
            add_learner = { path = "/add-learner", body = { id = "{key}" } }
            promote = { path = "/promote" }
            remove = { path = "/remove" }
            "#,
        )
        .unwrap();
        let (field, why) = MembershipConfig::from_toml(v).unwrap_err();
        assert_eq!(field, "add_learner.body.id");
        assert!(why.contains("{key}"), "{why}");
    }
}

/// `[membership.http]`: one request per single-server change, how its answer is judged, and where the
/// configuration is in the status. Placeholders: `{id}` (the node the change is about) and `{peer}` (where the
/// members reach it: squall's proxy in front of it, as `HOST:PORT`; empty when the orchestrator has none).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembershipConfig {
    /// How long one change may take, in milliseconds (an add may wait for the learner to catch up).
    #[serde(default = "change_timeout_ms")]
    pub timeout_ms: u64,
    /// The path GET asks for the configuration (`/status`).
    #[serde(default = "status_path")]
    pub status: String,
    /// Field path, in that answer, of the voters' node ids (an array).
    pub voters: String,
    /// Field path of the learners' node ids (an array); absent: the kind has no learners to report.
    pub learners: Option<String>,
    /// Field path of an error answer's message.
    pub error: Option<String>,
    /// Add node `{id}` as a learner, reached at `{peer}`.
    pub add_learner: OpConfig,
    /// Make learner `{id}` a voter.
    pub promote: OpConfig,
    /// Take node `{id}` out of the configuration.
    pub remove: OpConfig,
    /// Make voter `{id}` a learner (optional: without it `demote` is refused).
    pub demote: Option<OpConfig>,
    /// Tell the node asked that node `{id}` is reached at `{peer}` (optional: for a node that learns a new
    /// peer's address at run time).
    pub peer: Option<OpConfig>,
    /// HTTP codes that mean the configuration already is as asked (nothing was done; done once committed).
    #[serde(default)]
    pub already_status: Vec<u16>,
    /// HTTP codes that mean "not now, nothing was done" (not the leader, a change under way): asked again.
    #[serde(default)]
    pub wait_status: Vec<u16>,
}

fn change_timeout_ms() -> u64 {
    15_000
}

impl MembershipConfig {
    /// Reads and checks `[membership.http]`.
    pub fn from_toml(v: toml::Value) -> Result<MembershipConfig, ConfigError> {
        let c: MembershipConfig = MembershipConfig::deserialize(v)
            .map_err(|e| (String::new(), e.message().trim().to_string()))?;
        if !c.status.starts_with('/') {
            return Err(("status".into(), format!("`{}` must start with /", c.status)));
        }
        c.add_learner.check("add_learner", &["id", "peer"], None)?;
        c.promote.check("promote", &["id"], None)?;
        c.remove.check("remove", &["id", "peer"], None)?;
        if let Some(d) = &c.demote {
            d.check("demote", &["id"], None)?;
        }
        if let Some(p) = &c.peer {
            p.check("peer", &["id", "peer"], None)?;
        }
        for (field, codes) in [
            ("already_status", &c.already_status),
            ("wait_status", &c.wait_status),
        ] {
            if let Some(code) = codes.iter().find(|c| !(400..600).contains(*c)) {
                return Err((
                    field.into(),
                    format!("{code} is not an error code (400..=599)"),
                ));
            }
        }
        Ok(c)
    }
}

/// Membership changes over HTTP JSON, as `[membership.http]` describes them. How an answer is judged:
/// 2xx: committed; a code in `already_status`: already so; in `wait_status`: asked again; any other 4xx:
/// it cannot be (the message says why); a 5xx, a cut connection or no answer in time: the outcome is unknown,
/// so squall asks again (a change already made then answers `already_status`).
pub struct HttpMembership {
    /// The table.
    pub config: Arc<MembershipConfig>,
}

impl HttpMembership {
    fn timeout(&self) -> Duration {
        Duration::from_millis(self.config.timeout_ms)
    }

    fn message(&self, code: u16, v: &Value) -> String {
        let text = self
            .config
            .error
            .as_deref()
            .and_then(|p| field(v, p))
            .map(|e| {
                e.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| e.to_string())
            })
            .unwrap_or_else(|| v.to_string());
        format!("the node answered {code}: {text}")
    }

    async fn change_inner(
        &self,
        addr: SocketAddr,
        change: MemberChange,
        peer: Option<SocketAddr>,
    ) -> ChangeAnswer {
        let op = match change {
            MemberChange::AddLearner(_) => &self.config.add_learner,
            MemberChange::Promote(_) => &self.config.promote,
            MemberChange::Remove(_) => &self.config.remove,
            MemberChange::Demote(_) => match &self.config.demote {
                Some(d) => d,
                None => return ChangeAnswer::Refused(NO_DEMOTE.into()),
            },
        };
        let values = BTreeMap::from([
            ("id".to_string(), change.node().to_string()),
            (
                "peer".to_string(),
                peer.map(|p| p.to_string()).unwrap_or_default(),
            ),
        ]);
        let (path, body) = op.request(&values);
        let mut conn = Conn::new(addr);
        match conn.call(&op.method, &path, body, self.timeout()).await {
            Ok((code, v)) => self.judge(code, &v),
            Err(CallError::NoAnswer(_)) => ChangeAnswer::Timeout,
            Err(CallError::NotSent(e)) => ChangeAnswer::Wait(e),
        }
    }

    /// What an answer with HTTP code `code` and JSON `v` means (see [`HttpMembership`]).
    fn judge(&self, code: u16, v: &Value) -> ChangeAnswer {
        match code {
            200..300 => ChangeAnswer::Committed(None),
            c if self.config.already_status.contains(&c) => ChangeAnswer::Already,
            c if self.config.wait_status.contains(&c) => ChangeAnswer::Wait(self.message(c, v)),
            400..500 => ChangeAnswer::Refused(self.message(code, v)),
            _ => ChangeAnswer::Timeout,
        }
    }

    async fn config_inner(&self, addr: SocketAddr) -> Option<Membership> {
        let (code, v) = Conn::new(addr)
            .call("GET", &self.config.status, None, self.timeout())
            .await
            .ok()?;
        if !(200..300).contains(&code) {
            return None;
        }
        let ids = |p: &str| -> Option<std::collections::BTreeSet<u64>> {
            field(&v, p)?.as_array()?.iter().map(number).collect()
        };
        Some(Membership {
            voters: ids(&self.config.voters)?,
            learners: match &self.config.learners {
                Some(p) => ids(p).unwrap_or_default(),
                None => Default::default(),
            },
        })
    }

    async fn tell_peer_inner(
        &self,
        addr: SocketAddr,
        id: u64,
        peer: SocketAddr,
    ) -> Result<(), String> {
        let Some(op) = &self.config.peer else {
            return Ok(());
        };
        let values = BTreeMap::from([
            ("id".to_string(), id.to_string()),
            ("peer".to_string(), peer.to_string()),
        ]);
        let (path, body) = op.request(&values);
        match Conn::new(addr)
            .call(&op.method, &path, body, self.timeout())
            .await
        {
            Ok((code, _)) if (200..300).contains(&code) => Ok(()),
            Ok((code, v)) => Err(self.message(code, &v)),
            Err(CallError::NotSent(e) | CallError::NoAnswer(e)) => Err(e),
        }
    }
}

/// Why `demote` is refused when `[membership.http]` has no `demote`.
const NO_DEMOTE: &str =
    "the kind file's [membership.http] has no `demote` request: `remove N`, then `add`, instead";

impl MembershipDriver for HttpMembership {
    fn change(
        &self,
        addr: SocketAddr,
        change: MemberChange,
        peer: Option<SocketAddr>,
    ) -> BoxFuture<'_, ChangeAnswer> {
        self.change_inner(addr, change, peer).boxed()
    }

    fn cannot(&self, change: MemberChange) -> Option<String> {
        (matches!(change, MemberChange::Demote(_)) && self.config.demote.is_none())
            .then(|| NO_DEMOTE.to_string())
    }

    fn config(&self, addr: SocketAddr) -> BoxFuture<'_, Option<Membership>> {
        self.config_inner(addr).boxed()
    }

    fn tell_peer(
        &self,
        addr: SocketAddr,
        id: u64,
        peer: SocketAddr,
    ) -> BoxFuture<'_, Result<(), String>> {
        self.tell_peer_inner(addr, id, peer).boxed()
    }
}
