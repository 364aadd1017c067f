//! Node kinds: everything squall knows about one Raft implementation — how to launch it, where its peers are,
//! how its frames are cut and labelled, how to read its status, how a client talks to it, how its membership
//! changes and which faults cannot reach it — read from one TOML file. squall's own node is the kind
//! `squall` (kinds/squall.toml), loaded by the same code as a person's file; the orchestrator asks the kind,
//! never "is this squall's node". The format is documented in the README, "Node kinds".
//!
//! Protocol, framing and classifier names select built-in drivers (`squall`, later `etcd-v3`, `http-json`…);
//! a name the format knows but this build does not drive yet is refused at load time with that reason.

pub mod drivers;
pub mod etcd;
pub mod maelstrom;
mod maelstrom_kind;
pub use maelstrom_kind::{
    kind_for as maelstrom_kind_for, needs_program, program_of as maelstrom_program_of,
};
mod file;
pub mod http_json;
pub mod json_tag;
pub mod launch;
pub mod membership;
pub mod paxos_classify;
mod refuse;
mod squall;
pub mod tarpc_head;
mod template;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::ops::Range;
use std::path::{Path, PathBuf};

pub use template::Template;

/// The built-in kinds: name and file text (embedded, so an installed binary has them).
pub const BUILTINS: &[(&str, &str)] = &[
    ("squall", include_str!("../../kinds/squall.toml")),
    (
        crate::kind::maelstrom::KIND,
        include_str!("../../kinds/maelstrom.toml"),
    ),
    ("etcd", include_str!("../../kinds/etcd.toml")),
    ("paxos", include_str!("../../kinds/paxos.toml")),
];

/// The kind `--node-kind` defaults to.
pub const DEFAULT: &str = crate::state::DEFAULT_KIND;

pub use crate::state::KindRecord;

/// Placeholders every launch string may use.
const NODE_PLACEHOLDERS: &[&str] = &[
    "squall",
    "id",
    "cluster_id",
    "node_dir",
    "data_dir",
    "host",
    "peers",
    "initial_state",
    "seed",
    "election_timeout_min_ms",
    "election_timeout_max_ms",
    "heartbeat_ms",
    "snapshot_every",
    "own_proxy",
];
/// Placeholders `[peers] entry` may use besides the node's own.
const ENTRY_PLACEHOLDERS: &[&str] = &["peer_id", "proxy"];

/// Peer models: how squall puts its proxy on each directed link.
const MODELS: &[&str] = &["per-sender", "per-destination"];
/// Framings and whether this build cuts frames that way.
const FRAMINGS: &[(&str, Option<&str>)] = &[
    ("length-prefixed", None),
    ("rafthttp", None),
    ("bytes", None),
];
/// Classifiers and whether this build has them.
const CLASSIFIERS: &[(&str, Option<&str>)] = &[
    ("squall-raft", None),
    ("etcd-raft", None),
    ("maelstrom", None),
    ("json-tag", None),
    ("squall-paxos", None),
    ("none", None),
];
/// Status drivers.
const STATUS_PROTOCOLS: &[(&str, Option<&str>)] = &[
    ("squall", None),
    ("maelstrom", None),
    ("http-json", None),
    ("etcd-v3", None),
];
/// Client drivers.
const CLIENT_PROTOCOLS: &[(&str, Option<&str>)] = &[
    ("squall", None),
    ("maelstrom", None),
    ("http-json", None),
    ("etcd-v3", None),
];
/// Membership drivers.
const MEMBERSHIP_PROTOCOLS: &[(&str, Option<&str>)] =
    &[("squall", None), ("etcd-v3", None), ("http-json", None)];
/// Sender identification for the per-destination model.
const SENDERS: &[&str] = &["x-server-from"];
/// Abilities `[controls]` may name: squall's teaching controls and leadership transfer, which go through
/// squall's control RPC; a kind whose file does not list one refuses it.
pub const CONTROLS: &[&str] = &["freeze", "thaw", "timeout", "heartbeat", "transfer"];
/// Switches `[options]` may name, each a flag of `squall up`.
const OPTIONS: &[&str] = &[
    "unsafe-no-fsync",
    "no-pre-vote",
    "no-check-quorum",
    "no-leases",
];

/// Fault families a kind may refuse in `[limits]`, with the commands each covers.
pub const LIMIT_FAMILIES: &[(&str, &str)] = &[
    ("clock", "clock faults (`clock N …`)"),
    (
        "disk",
        "disk faults and power cuts (`disk N …`, `powercut …`)",
    ),
    ("pause", "pausing a process (`pause N`)"),
    (
        "messages",
        "message filters and held frames (`only …`, `hold`)",
    ),
    ("transfer", "leadership transfer (`transfer N`)"),
    ("wipe", "wiping a node's data (`wipe N`)"),
    (
        "membership",
        "membership changes (`add`, `remove`, `replace`, `promote`, `demote`)",
    ),
];

/// Where a kind was read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A built-in kind (its file is kinds/NAME.toml in the repository).
    Builtin(String),
    /// A file a person named.
    File(PathBuf),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Builtin(n) => write!(f, "kinds/{n}.toml (built in)"),
            Source::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// A mistake in a kind file: where it is and what to do. Printed as `FILE:LINE:COL: FIELD: MESSAGE`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}{at}: {field}{message}", at = self.at(), field = self.field_part())]
pub struct KindError {
    /// The file (or built-in name) it is in.
    pub source_name: String,
    /// 1-based line and column, when the mistake is at a place in the file.
    pub line_col: Option<(usize, usize)>,
    /// The field, dotted (`launch.args`), when known.
    pub field: Option<String>,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl KindError {
    fn at(&self) -> String {
        match self.line_col {
            Some((l, c)) => format!(":{l}:{c}"),
            None => String::new(),
        }
    }

    fn field_part(&self) -> String {
        match &self.field {
            Some(f) => format!("{f}: "),
            None => String::new(),
        }
    }
}

/// How squall tells that a started node is ready.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ready {
    /// The status driver answers.
    Status,
    /// The named port accepts a TCP connection.
    Tcp(String),
    /// The node binds its ports itself (port 0) and writes a JSON object to this file naming each port's
    /// address (`{"peer": "127.0.0.1:4100", "api": "…"}`); the file appearing with every port is readiness.
    AddrFile(Template),
}

/// How squall puts its proxy on each directed link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerModel {
    /// The node is told, per peer, an address to dial: one proxy per directed link (squall's node).
    PerSender,
    /// Every member stores one address per peer cluster-wide: one proxy per destination, the sender told
    /// apart per connection (etcd).
    PerDestination,
}

/// `[peers]`, checked.
#[derive(Clone, Debug)]
pub struct Peers {
    /// The proxy model.
    pub model: PeerModel,
    /// The node's port its peers reach.
    pub port: String,
    /// One peer in `{peers}`: may use `{peer_id}` and `{proxy}` besides the node's placeholders.
    pub entry: Template,
    /// What joins the entries.
    pub separator: String,
    /// Whether `{peers}` lists the node itself too (an `--initial-cluster` that names every member).
    pub include_self: bool,
    /// How frames are cut from a connection (`length-prefixed`).
    pub framing: String,
    /// Which built-in classifier labels frames (`squall-raft`, `none`).
    pub classifier: String,
    /// How the sender of a connection is identified (per-destination only).
    pub sender: Option<String>,
    /// `[peers.json-tag]`, for the `json-tag` classifier.
    pub json_tag: Option<std::sync::Arc<json_tag::JsonTag>>,
}

/// A built-in driver, and the port it reaches the node on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Protocol {
    /// The driver's name (`squall`).
    pub name: String,
    /// The node's port it talks to.
    pub port: Option<String>,
}

/// A checked node kind.
#[derive(Clone, Debug)]
pub struct Kind {
    /// Its name (`squall`).
    pub name: String,
    /// One line for `squall kinds`.
    pub description: String,
    /// Where it was read from.
    pub source: Source,
    /// `program` as written: `{squall}`, a path, or a name looked up on PATH.
    pub program: String,
    /// Leading arguments (before the launch arguments); they belong to `program`, so `--node-bin` drops them.
    pub args: Vec<String>,
    /// What to say when the program is not found.
    pub missing: Option<String>,
    /// The port names the node listens on.
    pub ports: Vec<String>,
    /// The launch arguments of a member of the initial configuration.
    pub launch_args: Vec<Template>,
    /// The launch arguments of a node added later (`{args}` splices `launch_args`).
    pub join_args: Vec<Template>,
    /// Readiness.
    pub ready: Ready,
    /// The links.
    pub peers: Peers,
    /// The status driver.
    pub status: Protocol,
    /// The client driver (lin-kv and counter workloads).
    pub client: Protocol,
    /// `[status.http]`, for the `http-json` status driver.
    pub status_http: Option<std::sync::Arc<http_json::StatusConfig>>,
    /// `[client.http]`, for the `http-json` client driver.
    pub client_http: Option<std::sync::Arc<http_json::ClientConfig>>,
    /// `[membership.http]`, checked, when the membership driver is `http-json`.
    pub membership_http: Option<std::sync::Arc<http_json::MembershipConfig>>,
    /// The membership driver, if the kind can change membership.
    pub membership: Option<Protocol>,
    /// Optional abilities (`freeze` …) and the driver of each.
    pub controls: BTreeMap<String, String>,
    /// Switches a session may ask for (`unsafe-no-fsync` …) and the arguments each adds.
    pub options: BTreeMap<String, Vec<Template>>,
    /// Fault families the kind cannot take, each with the reason.
    pub limits: BTreeMap<String, String>,
    /// Files in the data directory (relative paths) the node's data does not depend on — its lock file,
    /// markers — which `disk N flip` without a file never picks (`[disk] not_data`).
    pub not_data: Vec<std::path::PathBuf>,
    /// Where `program` is in the file (for the missing-program message).
    program_at: Option<(usize, usize)>,
    /// A digest of the file's text ([`digest`]): tells a later reader (`squall status`, replay, report)
    /// whether the file it finds under the recorded path is the one the session ran.
    pub digest: String,
}

/// A kind file's digest: 64-bit FNV-1a of its text, in hex. It only tells whether a file changed (not a
/// security measure), so a small well-known hash serves without a dependency.
pub fn digest(text: &str) -> String {
    let h = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{h:016x}")
}

/// 1-based line and column of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1)
        + 1;
    (line, col)
}

/// Collects the mistakes of one file, pointing into its text.
struct Checker<'a> {
    text: &'a str,
    source_name: String,
}

impl Checker<'_> {
    fn err(&self, span: Range<usize>, field: &str, message: impl Into<String>) -> KindError {
        KindError {
            source_name: self.source_name.clone(),
            line_col: (span.end > 0 || span.start > 0).then(|| line_col(self.text, span.start)),
            field: Some(field.to_string()),
            message: message.into(),
        }
    }

    /// Checks `name` against a table of `(name, not-built reason)`.
    fn driver(
        &self,
        value: &toml::Spanned<String>,
        field: &str,
        table: &[(&str, Option<&str>)],
    ) -> Result<String, KindError> {
        match table.iter().find(|(n, _)| *n == value.get_ref()) {
            Some((_, None)) => Ok(value.get_ref().clone()),
            Some((_, Some(why))) => {
                Err(self.err(value.span(), field, format!("`{}`: {why}", value.get_ref())))
            }
            None => Err(self.err(
                value.span(),
                field,
                format!(
                    "unknown {} `{}`; known: {}",
                    field.rsplit('.').next().unwrap_or(field),
                    value.get_ref(),
                    table.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                ),
            )),
        }
    }

    /// Parses a template and checks its placeholders against `allowed` and the declared ports.
    fn template(
        &self,
        value: &toml::Spanned<String>,
        field: &str,
        allowed: &[&str],
        ports: &BTreeSet<String>,
    ) -> Result<Template, KindError> {
        let t = Template::parse(value.get_ref())
            .map_err(|e| self.err(value.span(), field, format!("`{}`: {e}", value.get_ref())))?;
        for hole in t.holes() {
            if let Some(port) = hole.strip_prefix("port.") {
                if !ports.contains(port) {
                    return Err(self.err(
                        value.span(),
                        field,
                        format!(
                            "{{{hole}}} uses port `{port}`, which [ports] names does not declare (declared: {})",
                            list_or_none(ports.iter())
                        ),
                    ));
                }
                continue;
            }
            if !allowed.contains(&hole) {
                return Err(self.err(
                    value.span(),
                    field,
                    format!(
                        "unknown placeholder {{{hole}}}; known here: {}, {{port.NAME}} (write {{{{ for a \
                         literal brace)",
                        allowed
                            .iter()
                            .map(|a| format!("{{{a}}}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        Ok(t)
    }

    fn port(
        &self,
        value: &toml::Spanned<String>,
        field: &str,
        ports: &BTreeSet<String>,
    ) -> Result<String, KindError> {
        if ports.contains(value.get_ref()) {
            Ok(value.get_ref().clone())
        } else {
            Err(self.err(
                value.span(),
                field,
                format!(
                    "port `{}` is not declared in [ports] names (declared: {})",
                    value.get_ref(),
                    list_or_none(ports.iter())
                ),
            ))
        }
    }
}

/// `status.http.role`: the dotted field of a mistake inside an http table.
fn http_field(section: &str, inner: &str) -> String {
    if inner.is_empty() {
        format!("{section}.http")
    } else {
        format!("{section}.http.{inner}")
    }
}

impl Checker<'_> {
    /// The `http` table of `[SECTION]`: required by the `http-json` driver, refused by every other.
    fn http_table(
        &self,
        p: &file::ProtocolFile,
        section: &str,
        driver: &str,
    ) -> Result<Option<(toml::Value, Range<usize>)>, KindError> {
        match (&p.http, driver == "http-json") {
            (Some(h), true) => Ok(Some((h.get_ref().clone(), h.span()))),
            (None, true) => Err(self.err(
                p.protocol.span(),
                &format!("{section}.http"),
                format!("the http-json driver needs a [{section}.http] table (see the README, \"Node kinds\")"),
            )),
            (Some(h), false) => Err(self.err(
                h.span(),
                &format!("{section}.http"),
                format!("only the http-json driver reads [{section}.http]; `{driver}` does not: drop it"),
            )),
            (None, false) => Ok(None),
        }
    }
}

/// The dotted field a TOML error at byte `at` is about (`launch.command`): the table whose header precedes it,
/// and the field the message names in backquotes (`unknown field `command``, `missing field `ready``), else
/// the key on that line. `None` when neither can be told.
fn field_at(text: &str, at: usize, message: &str) -> Option<String> {
    let at = at.min(text.len());
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    // The header on the error's own line counts: a missing field is reported at its table.
    let section = text[..line_end]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|h| {
            h.trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        });
    let named = ["unknown field `", "missing field `"]
        .iter()
        .find_map(|p| message.split(p).nth(1)?.split('`').next())
        .map(str::to_string);
    let key = named.or_else(|| {
        let line = text[line_start..line_end].trim();
        if line.starts_with('[') {
            return None;
        }
        let k = line.split('=').next()?.trim();
        (!k.is_empty() && !k.starts_with('#')).then(|| k.to_string())
    });
    match (section, key) {
        (Some(s), Some(k)) if !s.is_empty() => Some(format!("{s}.{k}")),
        (Some(s), None) if !s.is_empty() => Some(s),
        (_, k) => k,
    }
}

fn list_or_none<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let v: Vec<&str> = names.map(String::as_str).collect();
    if v.is_empty() {
        "none".to_string()
    } else {
        v.join(", ")
    }
}

impl Kind {
    /// Parses and checks a kind file's text. `source` names it in every error.
    pub fn parse(text: &str, source: Source) -> Result<Kind, KindError> {
        let c = Checker {
            text,
            source_name: source.to_string(),
        };
        let raw: file::KindFile = toml::from_str(text).map_err(|e| KindError {
            source_name: c.source_name.clone(),
            line_col: e.span().map(|s| line_col(text, s.start)),
            field: e.span().and_then(|s| field_at(text, s.start, e.message())),
            message: e.message().trim().to_string(),
        })?;
        if raw.name.get_ref().trim().is_empty() {
            return Err(c.err(raw.name.span(), "name", "the name is empty"));
        }
        let mut ports = BTreeSet::new();
        for p in &raw.ports.names {
            let ok = !p.get_ref().is_empty()
                && p.get_ref()
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-');
            if !ok {
                return Err(c.err(
                    p.span(),
                    "ports.names",
                    format!(
                        "`{}` is not a port name (letters, digits, `-`, `_`)",
                        p.get_ref()
                    ),
                ));
            }
            if !ports.insert(p.get_ref().clone()) {
                return Err(c.err(
                    p.span(),
                    "ports.names",
                    format!("port `{}` is declared twice", p.get_ref()),
                ));
            }
        }
        let program = Template::parse(raw.program.get_ref()).map_err(|e| {
            c.err(
                raw.program.span(),
                "program",
                format!("`{}`: {e}", raw.program.get_ref()),
            )
        })?;
        if program.holes().any(|h| h != "squall") {
            return Err(c.err(
                raw.program.span(),
                "program",
                "the only placeholder a program may use is {squall} (this squall binary)",
            ));
        }
        let mut args = Vec::new();
        for a in &raw.args {
            args.push(c.template(a, "args", &[], &BTreeSet::new())?);
        }
        let mut launch_args = Vec::new();
        for a in &raw.launch.args {
            launch_args.push(c.template(a, "launch.args", NODE_PLACEHOLDERS, &ports)?);
        }
        let join_args = match &raw.launch.join_args {
            None => launch_args.clone(),
            Some(v) => {
                let mut out = Vec::new();
                let mut allowed = NODE_PLACEHOLDERS.to_vec();
                allowed.push("args");
                for a in v {
                    let t = c.template(a, "launch.join_args", &allowed, &ports)?;
                    if t.is_only("args") {
                        out.extend(launch_args.iter().cloned());
                    } else if t.holes().any(|h| h == "args") {
                        return Err(c.err(
                            a.span(),
                            "launch.join_args",
                            "{args} splices the launch arguments and must stand alone as one element",
                        ));
                    } else {
                        out.push(t);
                    }
                }
                out
            }
        };
        let ready = match raw.launch.ready.get_ref() {
            file::ReadyFile::Word(w) if w == "status" => Ready::Status,
            file::ReadyFile::Word(w) => {
                return Err(c.err(
                    raw.launch.ready.span(),
                    "launch.ready",
                    format!(
                        "unknown readiness `{w}`; use \"status\", {{ tcp = \"PORT\" }} or {{ addr_file = \"PATH\" }}"
                    ),
                ));
            }
            file::ReadyFile::Table(t) => match (&t.tcp, &t.addr_file) {
                (Some(p), None) => {
                    let spanned = toml::Spanned::new(raw.launch.ready.span(), p.clone());
                    Ready::Tcp(c.port(&spanned, "launch.ready.tcp", &ports)?)
                }
                (None, Some(path)) => {
                    let spanned = toml::Spanned::new(raw.launch.ready.span(), path.clone());
                    Ready::AddrFile(c.template(
                        &spanned,
                        "launch.ready.addr_file",
                        NODE_PLACEHOLDERS,
                        &BTreeSet::new(),
                    )?)
                }
                _ => {
                    return Err(c.err(
                        raw.launch.ready.span(),
                        "launch.ready",
                        "give exactly one of tcp = \"PORT\" or addr_file = \"PATH\"",
                    ));
                }
            },
        };
        if let Ready::AddrFile(_) = ready {
            // The node picks its ports and reports them: there is nothing for squall to put in {port.NAME}.
            let uses_port = launch_args
                .iter()
                .chain(&join_args)
                .any(|t| t.holes().any(|h| h.starts_with("port.")));
            if uses_port {
                return Err(c.err(
                    raw.launch.ready.span(),
                    "launch.ready",
                    "with addr_file the node picks its own ports and reports them, so the launch arguments \
                     cannot use {port.NAME}; drop one or the other",
                ));
            }
        }
        let model = match raw.peers.model.get_ref().as_str() {
            "per-sender" => PeerModel::PerSender,
            "per-destination" => PeerModel::PerDestination,
            other => {
                return Err(c.err(
                    raw.peers.model.span(),
                    "peers.model",
                    format!("unknown model `{other}`; known: {}", MODELS.join(", ")),
                ));
            }
        };
        let sender = match (&raw.peers.sender, model) {
            (Some(s), PeerModel::PerSender) => {
                return Err(c.err(
                    s.span(),
                    "peers.sender",
                    "only the per-destination model identifies senders; drop this field",
                ));
            }
            (Some(s), PeerModel::PerDestination) => {
                if !SENDERS.contains(&s.get_ref().as_str()) {
                    return Err(c.err(
                        s.span(),
                        "peers.sender",
                        format!(
                            "unknown sender identification `{}`; known: {}",
                            s.get_ref(),
                            SENDERS.join(", ")
                        ),
                    ));
                }
                Some(s.get_ref().clone())
            }
            (None, PeerModel::PerDestination) => {
                return Err(c.err(
                    raw.peers.model.span(),
                    "peers.sender",
                    "the per-destination model needs `sender` (how a connection's sender is identified)",
                ));
            }
            (None, PeerModel::PerSender) => None,
        };
        let mut entry_allowed = NODE_PLACEHOLDERS.to_vec();
        entry_allowed.retain(|p| *p != "peers");
        entry_allowed.extend(ENTRY_PLACEHOLDERS);
        let classifier = c.driver(&raw.peers.classifier, "peers.classifier", CLASSIFIERS)?;
        let json_tag = match (&raw.peers.json_tag, classifier == "json-tag") {
            (Some(t), true) => Some(std::sync::Arc::new(
                json_tag::JsonTag::from_toml(t.get_ref().clone()).map_err(|(f, m)| {
                    let field = if f.is_empty() {
                        "peers.json-tag".to_string()
                    } else {
                        format!("peers.json-tag.{f}")
                    };
                    c.err(t.span(), &field, m)
                })?,
            )),
            (None, true) => {
                return Err(c.err(
                    raw.peers.classifier.span(),
                    "peers.json-tag",
                    "the json-tag classifier needs a [peers.json-tag] table: where the tag is and the message \
                     kind of each tag (see the README, \"Node kinds\")",
                ));
            }
            (Some(t), false) => {
                return Err(c.err(
                    t.span(),
                    "peers.json-tag",
                    format!(
                        "only the json-tag classifier reads [peers.json-tag]; `{classifier}` does not: drop it"
                    ),
                ));
            }
            (None, false) => None,
        };
        let peers = Peers {
            model,
            port: c.port(&raw.peers.port, "peers.port", &ports)?,
            entry: c.template(&raw.peers.entry, "peers.entry", &entry_allowed, &ports)?,
            separator: raw.peers.separator.clone(),
            include_self: raw.peers.include_self,
            framing: c.driver(&raw.peers.framing, "peers.framing", FRAMINGS)?,
            classifier,
            sender,
            json_tag,
        };
        let protocol = |p: &file::ProtocolFile,
                        field: &str,
                        table: &[(&str, Option<&str>)]|
         -> Result<Protocol, KindError> {
            Ok(Protocol {
                name: c.driver(&p.protocol, &format!("{field}.protocol"), table)?,
                port: match &p.port {
                    Some(port) => Some(c.port(port, &format!("{field}.port"), &ports)?),
                    None => None,
                },
            })
        };
        let status = protocol(&raw.status, "status", STATUS_PROTOCOLS)?;
        let client = protocol(&raw.client, "client", CLIENT_PROTOCOLS)?;
        let status_http = c
            .http_table(&raw.status, "status", &status.name)?
            .map(|(v, span)| {
                http_json::StatusConfig::from_toml(v)
                    .map(std::sync::Arc::new)
                    .map_err(|(f, m)| c.err(span, &http_field("status", &f), m))
            })
            .transpose()?;
        let client_http = c
            .http_table(&raw.client, "client", &client.name)?
            .map(|(v, span)| {
                http_json::ClientConfig::from_toml(v)
                    .map(std::sync::Arc::new)
                    .map_err(|(f, m)| c.err(span, &http_field("client", &f), m))
            })
            .transpose()?;
        let membership = match &raw.membership {
            Some(m) => Some(protocol(m, "membership", MEMBERSHIP_PROTOCOLS)?),
            None => None,
        };
        let membership_http = match (&raw.membership, &membership) {
            (Some(m), Some(p)) => c
                .http_table(m, "membership", &p.name)?
                .map(|(v, span)| {
                    http_json::MembershipConfig::from_toml(v)
                        .map(std::sync::Arc::new)
                        .map_err(|(f, m)| c.err(span, &http_field("membership", &f), m))
                })
                .transpose()?,
            _ => None,
        };
        let mut controls = BTreeMap::new();
        for (k, v) in &raw.controls {
            if !CONTROLS.contains(&k.get_ref().as_str()) {
                return Err(c.err(
                    k.span(),
                    "controls",
                    format!(
                        "unknown ability `{}`; known: {}",
                        k.get_ref(),
                        CONTROLS.join(", ")
                    ),
                ));
            }
            let driver = c.driver(v, &format!("controls.{}", k.get_ref()), &[("squall", None)])?;
            controls.insert(k.get_ref().clone(), driver);
        }
        let mut options = BTreeMap::new();
        for (k, v) in &raw.options {
            if !OPTIONS.contains(&k.get_ref().as_str()) {
                return Err(c.err(
                    k.span(),
                    "options",
                    format!(
                        "unknown option `{}`; known: {}",
                        k.get_ref(),
                        OPTIONS.join(", ")
                    ),
                ));
            }
            let field = format!("options.{}", k.get_ref());
            let mut ts = Vec::new();
            for a in v {
                ts.push(c.template(a, &field, NODE_PLACEHOLDERS, &ports)?);
            }
            options.insert(k.get_ref().clone(), ts);
        }
        let mut limits = BTreeMap::new();
        for (k, why) in &raw.limits {
            if !LIMIT_FAMILIES.iter().any(|(f, _)| f == k.get_ref()) {
                return Err(c.err(
                    k.span(),
                    "limits",
                    format!(
                        "unknown fault family `{}`; known: {}",
                        k.get_ref(),
                        LIMIT_FAMILIES
                            .iter()
                            .map(|(f, _)| *f)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            if why.trim().is_empty() {
                return Err(c.err(
                    k.span(),
                    &format!("limits.{}", k.get_ref()),
                    "give the reason the family cannot apply (it is what a refused command says)",
                ));
            }
            limits.insert(k.get_ref().clone(), why.clone());
        }
        let mut not_data = Vec::new();
        for f in &raw.disk.not_data {
            let path = std::path::PathBuf::from(f.get_ref());
            if f.get_ref().is_empty()
                || path.is_absolute()
                || path
                    .components()
                    .any(|c| !matches!(c, std::path::Component::Normal(_)))
            {
                return Err(c.err(
                    f.span(),
                    "disk.not_data",
                    format!(
                        "`{}` is not a path inside the data directory; name files relative to it, as `LOCK`",
                        f.get_ref()
                    ),
                ));
            }
            not_data.push(path);
        }
        Ok(Kind {
            name: raw.name.get_ref().clone(),
            description: raw.description.clone(),
            source,
            program: raw.program.get_ref().clone(),
            args: raw.args.iter().map(|a| a.get_ref().clone()).collect(),
            missing: raw.missing.clone(),
            ports: raw
                .ports
                .names
                .iter()
                .map(|p| p.get_ref().clone())
                .collect(),
            launch_args,
            join_args,
            ready,
            peers,
            status,
            client,
            status_http,
            client_http,
            membership_http,
            membership,
            controls,
            options,
            limits,
            not_data,
            program_at: Some(line_col(text, raw.program.span().start)),
            digest: digest(text),
        })
    }

    /// A built-in kind by name, `None` if there is none.
    pub fn builtin(name: &str) -> Option<Kind> {
        let (_, text) = BUILTINS.iter().find(|(n, _)| *n == name)?;
        Some(
            Kind::parse(text, Source::Builtin(name.to_string()))
                .unwrap_or_else(|e| panic!("the built-in kind {name} does not load: {e}")),
        )
    }

    /// `--node-kind`'s value: a built-in name, else a file. `Err` says which, and how to fix it.
    pub fn load(name_or_path: &str) -> Result<Kind, KindError> {
        if let Some(k) = Kind::builtin(name_or_path) {
            return Ok(k);
        }
        let path = Path::new(name_or_path);
        let text = std::fs::read_to_string(path).map_err(|e| KindError {
            source_name: name_or_path.to_string(),
            line_col: None,
            field: None,
            message: format!(
                "not a built-in kind ({}) and not a readable kind file: {e}",
                BUILTINS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })?;
        Kind::parse(&text, Source::File(path.to_path_buf()))
    }

    /// The program to run: `{squall}` is this squall binary, a value with a `/` a path, anything else a name
    /// looked up on PATH. `Err` names the program and says what `missing` says.
    pub fn program_path(&self) -> Result<PathBuf, KindError> {
        let not_found = |what: String| KindError {
            source_name: self.source.to_string(),
            line_col: self.program_at,
            field: Some("program".to_string()),
            message: match &self.missing {
                Some(hint) => format!("{what}: {hint}"),
                None => what,
            },
        };
        if self.program.contains("{squall}") {
            let exe = std::env::current_exe()
                .map_err(|e| not_found(format!("cannot find this squall binary: {e}")))?;
            let values = BTreeMap::from([("squall".to_string(), exe.display().to_string())]);
            let t = Template::parse(&self.program).expect("checked at load");
            return Ok(PathBuf::from(t.expand(&values).expect("only {squall}")));
        }
        if self.program.contains('/') {
            let p = PathBuf::from(&self.program);
            return if p.is_file() {
                Ok(p)
            } else {
                Err(not_found(format!("program {} does not exist", p.display())))
            };
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .map(|d| d.join(&self.program))
            .find(|p| is_executable(p))
            .ok_or_else(|| not_found(format!("program `{}` is not on PATH", self.program)))
    }

    /// Whether a node of this kind is told, at a start, that an empty data directory is one that lost its data
    /// (its launch arguments use `{initial_state}`), so it can recover before it votes again; a kind that is
    /// not told starts a wiped node as if new.
    pub fn told_of_lost_data(&self) -> bool {
        self.launch_args
            .iter()
            .chain(&self.join_args)
            .any(|t| t.holes().any(|h| h == "initial_state"))
    }

    /// Why the kind cannot take this fault family (`clock` …), if it cannot.
    pub fn limit(&self, family: &str) -> Option<&str> {
        self.limits.get(family).map(String::as_str)
    }

    /// The port the status driver reaches (`[status] port`).
    pub fn status_port(&self) -> Option<&str> {
        self.status.port.as_deref()
    }

    /// The port the workloads' client reaches (`[client] port`, else the status port).
    pub fn client_port(&self) -> Option<&str> {
        self.client.port.as_deref().or(self.status_port())
    }

    /// A status source for the node whose status port is `addr`; every call has `timeout`.
    pub fn status_source(
        &self,
        addr: std::net::SocketAddr,
        timeout: std::time::Duration,
    ) -> Box<dyn drivers::StatusSource> {
        match self.status.name.as_str() {
            "squall" => Box::new(squall::SquallStatus::new(addr, timeout)),
            "maelstrom" => Box::new(crate::kind::maelstrom::client::MaelstromStatus::new(
                addr, timeout,
            )),
            "http-json" => Box::new(http_json::HttpStatus::new(
                addr,
                timeout,
                self.status_http.clone().expect("checked at load"),
            )),
            "etcd-v3" => Box::new(etcd::drivers::EtcdStatusSource::new(addr, timeout)),
            other => unreachable!("status protocol {other} was refused at load"),
        }
    }

    /// A status source for one question (the leader now): like [`Kind::status_source`], without the event
    /// feed a poller follows.
    pub fn status_once(
        &self,
        addr: std::net::SocketAddr,
        timeout: std::time::Duration,
    ) -> Box<dyn drivers::StatusSource> {
        match self.status.name.as_str() {
            "squall" => Box::new(squall::SquallStatus::new(addr, timeout).without_feed()),
            "maelstrom" => Box::new(crate::kind::maelstrom::client::MaelstromStatus::new(
                addr, timeout,
            )),
            "http-json" => Box::new(http_json::HttpStatus::new(
                addr,
                timeout,
                self.status_http.clone().expect("checked at load"),
            )),
            "etcd-v3" => Box::new(etcd::drivers::EtcdStatusSource::new(addr, timeout)),
            other => unreachable!("status protocol {other} was refused at load"),
        }
    }

    /// A workload client of the nodes whose client ports are `addrs`.
    pub fn kv_client(&self, addrs: drivers::Addrs) -> Box<dyn drivers::KvClient> {
        match self.client.name.as_str() {
            "squall" => Box::new(squall::SquallKv::new(addrs)),
            "maelstrom" => Box::new(crate::kind::maelstrom::client::MaelstromKv::new(addrs)),
            "http-json" => Box::new(http_json::HttpKv::new(
                addrs,
                self.client_http.clone().expect("checked at load"),
            )),
            "etcd-v3" => Box::new(etcd::drivers::EtcdKv::new(addrs)),
            other => unreachable!("client protocol {other} was refused at load"),
        }
    }

    /// Why this kind cannot run workload `w`, if it cannot. A Maelstrom node (client protocol `maelstrom`)
    /// has no increment for squall's counter workload (Maelstrom's counter is `g-counter`); Maelstrom's own
    /// workloads besides lin-kv speak Maelstrom's bodies, which only a Maelstrom node answers.
    pub fn workload_refusal(&self, w: crate::command::WorkloadKind) -> Option<String> {
        let maelstrom = self.client.name == maelstrom::KIND;
        if maelstrom && w == crate::command::WorkloadKind::Counter {
            return Some(
                "a Maelstrom node has no increment for squall's counter workload; its counter workload is \
                 Maelstrom's grow-only counter: `workload g-counter` (or `workload lin-kv`)"
                    .to_string(),
            );
        }
        if !maelstrom && w.is_maelstrom_only() {
            return Some(format!(
                "`{}` is one of Maelstrom's workloads, for a Maelstrom node (`squall up --maelstrom ./mynode`); \
                 node kind `{}` runs `counter` and `lin-kv`",
                w.as_str(),
                self.name
            ));
        }
        None
    }

    /// The workload a session of this kind runs when none was chosen: squall's counter, or lin-kv where
    /// the kind has no counter.
    pub fn default_workload(&self) -> crate::command::WorkloadKind {
        use crate::command::WorkloadKind;
        if self.workload_refusal(WorkloadKind::Counter).is_some() {
            WorkloadKind::LinKv
        } else {
            WorkloadKind::Counter
        }
    }

    /// Loads the kind again; `Err` when it cannot be (a file gone or broken: the message names it). A file
    /// whose text changed since is loaded, and the warning says so.
    pub fn from_record(record: &KindRecord) -> Result<(Kind, Option<String>), KindError> {
        if let Some(program) = &record.maelstrom {
            let kind = maelstrom_kind_for(Path::new(program)).map_err(|message| KindError {
                source_name: record.arg().to_string(),
                line_col: None,
                field: None,
                message,
            })?;
            return Ok((kind, None));
        }
        let kind = Self::load(record.arg())?;
        let warning = (kind.digest != record.digest).then(|| {
            format!(
                "the kind file {} changed since the session started (digest {}, now {}); using it as it is now",
                record.arg(),
                record.digest,
                kind.digest
            )
        });
        Ok((kind, warning))
    }

    /// What `cluster.json` and the event log record of it.
    pub fn record(&self) -> KindRecord {
        KindRecord {
            name: self.name.clone(),
            file: match &self.source {
                Source::Builtin(_) => None,
                Source::File(p) => Some(p.display().to_string()),
            },
            digest: self.digest.clone(),
            maelstrom: (self.name == maelstrom::KIND)
                .then(|| {
                    self.args
                        .iter()
                        .position(|a| a == "--program")
                        .and_then(|i| self.args.get(i + 1).cloned())
                })
                .flatten(),
        }
    }

    /// The port the membership driver reaches (`[membership] port`, else the status port); `None` when the
    /// kind has no `[membership]`.
    pub fn membership_port(&self) -> Option<&str> {
        let m = self.membership.as_ref()?;
        m.port.as_deref().or(self.status_port())
    }

    /// The membership driver, or why the kind cannot change membership (its `[limits] membership` reason, or
    /// that its file has no `[membership]`).
    pub fn membership_driver(&self) -> Result<Box<dyn membership::MembershipDriver>, String> {
        if let Some(why) = self.limit("membership") {
            return Err(why.to_string());
        }
        match self.membership.as_ref().map(|m| m.name.as_str()) {
            Some("squall") => Ok(Box::new(membership::SquallMembership {
                timeout: squall_node::rpc::CONF_CHANGE_TIMEOUT,
            })),
            Some("etcd-v3") => Ok(Box::new(etcd::membership::EtcdMembership {
                timeout: std::time::Duration::from_secs(5),
            })),
            Some("http-json") => Ok(Box::new(http_json::HttpMembership {
                config: self.membership_http.clone().expect("checked at load"),
            })),
            Some(other) => Err(format!(
                "its file ({}) names the membership protocol `{other}`, which this build has no driver for",
                self.source
            )),
            None => Err(format!("its file ({}) has no [membership]", self.source)),
        }
    }

    /// The leading arguments, as the process gets them.
    pub fn leading_args(&self) -> Vec<OsString> {
        self.args.iter().map(OsString::from).collect()
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests;
