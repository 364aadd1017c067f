//! The network fault vocabulary: targets (a node, a directed link, both directions, everything a node sends or
//! receives, partition shapes), kinds with their parameters, a message filter and a duration. Pure values:
//! parsing and printing only; `crate::cluster::faultset` turns these into proxy faults.
//!
//! A new fault kind is one [`FaultKind`] variant (its words in [`super::parse_fault`], its proxy fault in
//! `crate::cluster::fault`) and one file in the chaos crate's `proxy/` for what it does to frames.

use std::fmt;
use std::sync::LazyLock;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::target::{NodeId, Target};

/// The message kinds a Maelstrom node's peer messages are labelled with, by body `type`, in the classifier's
/// index order (`kind::maelstrom::classify`); the last one takes every type not listed.
pub const MAELSTROM_LABELS: [&str; 16] = [
    "read",
    "read_ok",
    "write",
    "write_ok",
    "cas",
    "cas_ok",
    "error",
    "broadcast",
    "broadcast_ok",
    "gossip",
    "add",
    "request_vote",
    "request_vote_res",
    "append_entries",
    "append_entries_res",
    "other",
];

/// The message kinds of squall's node run with `--protocol paxos` (`kind::paxos_classify`), for `only` filters.
/// Index order is the label order.
pub const PAXOS_LABELS: [&str; 9] = [
    "prepare",
    "promise",
    "accept",
    "accepted",
    "nack",
    "heartbeat",
    "catch-up",
    "chosen",
    "snapshot",
];

/// The message kinds a fault can be limited to (`only KIND[,KIND]`) on squall's own node kind, as its wire
/// classifier labels frames (`crate::cluster::classify`). Index order is the label order. A pre-vote (Raft
/// dissertation §9.6) is its own kind, never a `vote`: `only vote` leaves pre-votes alone.
pub const MESSAGE_KINDS: [&str; 11] = [
    "vote",
    "vote-reply",
    "append",
    "heartbeat",
    "append-reply",
    "snapshot",
    "snapshot-reply",
    "timeout-now",
    "client",
    "pre-vote",
    "pre-vote-reply",
];

/// The message kinds etcd's raft messages are labelled with (by `raftpb.MessageType`, etcd-io/raft's
/// `raftpb/raft.proto`), in the `etcd-raft` classifier's index order (`kind::etcd::classify`). Names match
/// squall's own where the meaning is the same.
pub const ETCD_LABELS: [&str; 14] = [
    "vote",
    "vote-reply",
    "append",
    "heartbeat",
    "append-reply",
    "snapshot",
    "timeout-now",
    "pre-vote",
    "pre-vote-reply",
    "heartbeat-reply",
    "read-index",
    "read-index-reply",
    "proposal",
    "link-heartbeat",
];

/// What a target and a message kind are on squall's own (Raft) node, for hints about no verb in particular,
/// where the running node kind is not known (a line read before the cluster judges it); the console's
/// `help` names the running kind's ([`super::verbs::help_lines`]).
pub static TARGETS_AND_KINDS: LazyLock<String> =
    LazyLock::new(|| super::verbs::targets_and_kinds(&MESSAGE_KINDS));

/// The console's help text where the running node kind is not known: squall's own (Raft) kinds.
pub const HEADLESS_HELP: super::verbs::ConsoleHelp<'static> =
    super::verbs::ConsoleHelp(&MESSAGE_KINDS);

/// Whether some node kind labels frames `kind`: what `only` accepts when a line is read (the cluster then
/// refuses a kind its own node kind does not label, naming the ones it does).
pub fn is_message_kind(kind: &str) -> bool {
    MESSAGE_KINDS.contains(&kind)
        || ETCD_LABELS.contains(&kind)
        || MAELSTROM_LABELS.contains(&kind)
        || PAXOS_LABELS.contains(&kind)
}

/// A named or explicit partition shape, as `partition SHAPE` names it. Typed, so a misspelt shape
/// (`partition hlaves`) is refused when the line is read, not when the fault is put in place.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PartitionShape {
    /// A minority (the first half of the sorted node ids, rounded down) and a majority.
    Halves,
    /// Like `Halves`, over a seeded shuffle of the nodes.
    RandomHalves,
    /// Two halves that cannot see each other, joined by one node that sees both.
    Bridge,
    /// Every node receives from a majority, and no two from the same one (`ring`, `majorities-ring`).
    Ring,
    /// Explicit groups (`1,2|3,4,5`): nodes in different groups cannot reach each other.
    Groups(Vec<Vec<NodeId>>),
}

impl PartitionShape {
    /// Parses a shape word: `halves`, `random-halves` (`random`), `bridge`, `ring` (`majorities-ring`), or a
    /// grouping like `1,2|3,4,5` (spaces allowed; every node at most once, no empty group).
    pub fn parse(s: &str) -> Result<PartitionShape, String> {
        Ok(match s.trim() {
            "halves" => PartitionShape::Halves,
            "random-halves" | "random" => PartitionShape::RandomHalves,
            "bridge" => PartitionShape::Bridge,
            "ring" | "majorities-ring" => PartitionShape::Ring,
            grouping => {
                let looks_like_groups = grouping
                    .chars()
                    .all(|c| c.is_ascii_digit() || matches!(c, ',' | '|' | ' '));
                if !looks_like_groups {
                    return Err(format!(
                        "`{grouping}` is not a partition shape: use halves, random-halves, bridge, ring, or \
                         groups of node ids like 1,2|3,4,5"
                    ));
                }
                let mut seen = std::collections::BTreeSet::new();
                let mut groups = Vec::new();
                for part in grouping.split('|') {
                    let group: Vec<NodeId> = part
                        .split([',', ' '])
                        .filter(|w| !w.is_empty())
                        .map(|w| {
                            w.parse::<NodeId>()
                                .map_err(|_| format!("`{w}` in `{grouping}` is not a node id"))
                        })
                        .collect::<Result<_, _>>()?;
                    if group.is_empty() {
                        return Err(format!("`{grouping}` has an empty group"));
                    }
                    for (i, n) in group.iter().enumerate() {
                        if group[..i].contains(n) {
                            return Err(format!(
                                "node {n} is named twice in one group of `{grouping}`; name each node once"
                            ));
                        }
                        if !seen.insert(*n) {
                            return Err(format!("node {n} is in two groups of `{grouping}`"));
                        }
                    }
                    groups.push(group);
                }
                if groups.len() < 2 {
                    return Err(format!(
                        "`{grouping}` is one group; a partition needs two or more (`1,2|3,4,5`)"
                    ));
                }
                PartitionShape::Groups(groups)
            }
        })
    }
}

impl fmt::Display for PartitionShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PartitionShape::Halves => f.write_str("halves"),
            PartitionShape::RandomHalves => f.write_str("random-halves"),
            PartitionShape::Bridge => f.write_str("bridge"),
            PartitionShape::Ring => f.write_str("ring"),
            PartitionShape::Groups(groups) => {
                let parts: Vec<String> = groups
                    .iter()
                    .map(|g| g.iter().map(u64::to_string).collect::<Vec<_>>().join(","))
                    .collect();
                f.write_str(&parts.join("|"))
            }
        }
    }
}

/// What a fault covers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum FaultTarget {
    /// Every link to and from a node (`2`, `leader`).
    Node(Target),
    /// One directed link (`1->2`).
    Link(NodeId, NodeId),
    /// Both directions between two nodes (`1<->2`).
    Both(NodeId, NodeId),
    /// Everything a node sends (`2->*`).
    From(Target),
    /// Everything a node receives (`*->2`).
    To(Target),
    /// Every link (`*`).
    All,
    /// The links a partition shape cuts: `halves`, `random-halves`, `bridge`, `ring`, or a grouping like
    /// `1,2|3,4,5`.
    Shape(PartitionShape),
}

impl fmt::Display for FaultTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultTarget::Node(t) => write!(f, "{t}"),
            FaultTarget::Link(a, b) => write!(f, "{a}->{b}"),
            FaultTarget::Both(a, b) => write!(f, "{a}<->{b}"),
            FaultTarget::From(t) => write!(f, "{t}->*"),
            FaultTarget::To(t) => write!(f, "*->{t}"),
            FaultTarget::All => f.write_str("*"),
            FaultTarget::Shape(s) => write!(f, "{s}"),
        }
    }
}

fn node(word: &str) -> Result<Target, String> {
    match word {
        "leader" => Ok(Target::Leader),
        w => w
            .parse::<NodeId>()
            .map(Target::Node)
            .map_err(|_| format!("`{w}` is not a node id (expected a number or `leader`)")),
    }
}

fn plain_node(word: &str) -> Result<NodeId, String> {
    word.parse::<NodeId>()
        .map_err(|_| format!("`{word}` is not a node id in a link (use numbers, e.g. 1->2)"))
}

impl FaultTarget {
    /// Parses a target word: `2`, `leader`, `1->2`, `1<->2`, `2->*`, `*->2`, `*`.
    pub fn parse(word: &str) -> Result<FaultTarget, String> {
        if word == "*" || word == "*->*" {
            return Ok(FaultTarget::All);
        }
        if let Some((a, b)) = word.split_once("<->") {
            let (a, b) = (plain_node(a)?, plain_node(b)?);
            if a == b {
                return Err(format!("`{word}` links a node to itself"));
            }
            return Ok(FaultTarget::Both(a, b));
        }
        if let Some((a, b)) = word.split_once("->") {
            return match (a, b) {
                ("*", b) => Ok(FaultTarget::To(node(b)?)),
                (a, "*") => Ok(FaultTarget::From(node(a)?)),
                (a, b) => {
                    let (a, b) = (plain_node(a)?, plain_node(b)?);
                    if a == b {
                        return Err(format!("`{word}` links a node to itself"));
                    }
                    Ok(FaultTarget::Link(a, b))
                }
            };
        }
        node(word).map(FaultTarget::Node).map_err(|_| {
            format!(
                "`{word}` is not a target: use a node (2, leader), a link (1->2), both ways (1<->2), what a node \
                 sends (2->*) or receives (*->2), or * for every link"
            )
        })
    }
}

/// What a fault does to the frames it covers. Each kind is one proxy fault (see the chaos crate's
/// `proxy/` files for exactly what it does to frames).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum FaultKind {
    /// Drop every frame (the connections stay open): a one-way or two-way cut.
    Cut,
    /// Hold every frame for `delay` ± `jitter` (uniform); order is kept.
    Delay {
        /// Added latency.
        delay: Duration,
        /// Spread around it; `None` means a tenth of the delay (what `delay NODE DUR` always meant).
        jitter: Option<Duration>,
    },
    /// Drop this percentage of frames, whole.
    Loss(f64),
    /// Send this percentage of frames twice.
    Dup(f64),
    /// Give each frame an extra random delay up to this long, so later frames may overtake it.
    Reorder(Duration),
    /// Carry at most this many bytes per second.
    Bandwidth(u64),
    /// Accept connections and forward nothing (frames sent meanwhile are dropped).
    Blackhole,
    /// Close connections with a TCP reset and refuse new ones.
    Reset,
    /// Queue frames until a person steps, drops or releases them.
    Hold,
}

impl FaultKind {
    /// The verb that introduces this kind in the vocabulary.
    pub fn verb(&self) -> &'static str {
        match self {
            FaultKind::Cut => "cut",
            FaultKind::Delay { .. } => "delay",
            FaultKind::Loss(_) => "loss",
            FaultKind::Dup(_) => "dup",
            FaultKind::Reorder(_) => "reorder",
            FaultKind::Bandwidth(_) => "bandwidth",
            FaultKind::Blackhole => "blackhole",
            FaultKind::Reset => "reset",
            FaultKind::Hold => "hold",
        }
    }

    /// True when the fault does nothing (a zero delay or percentage): asking for it removes the same fault.
    pub fn is_zero(&self) -> bool {
        match self {
            FaultKind::Delay { delay, .. } => delay.is_zero(),
            FaultKind::Loss(p) | FaultKind::Dup(p) => *p == 0.0,
            FaultKind::Reorder(d) => d.is_zero(),
            _ => false,
        }
    }

    /// Whether two faults are "the same fault" for replacement: same kind, parameters aside.
    pub fn same_kind(&self, other: &FaultKind) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultKind::Delay {
                delay,
                jitter: None,
            } => write!(f, "delay {}", human(*delay)),
            FaultKind::Delay {
                delay,
                jitter: Some(j),
            } => write!(f, "delay {} jitter {}", human(*delay), human(*j)),
            FaultKind::Loss(p) => write!(f, "loss {}%", pct(*p)),
            FaultKind::Dup(p) => write!(f, "dup {}%", pct(*p)),
            FaultKind::Reorder(d) => write!(f, "reorder {}", human(*d)),
            FaultKind::Bandwidth(r) => write!(f, "bandwidth {}", rate(*r)),
            other => f.write_str(other.verb()),
        }
    }
}

/// One network fault as asked for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultCmd {
    /// What it covers.
    pub target: FaultTarget,
    /// What it does.
    pub kind: FaultKind,
    /// Only frames of these message kinds ([`MESSAGE_KINDS`] names); empty: every frame.
    pub only: Vec<String>,
    /// Removes itself after this long.
    pub duration: Option<Duration>,
}

impl FaultCmd {
    /// True for `isolate N`: a cut of every frame on every link of one node, for good.
    pub fn is_isolate(&self) -> bool {
        matches!(self.target, FaultTarget::Node(_))
            && self.kind == FaultKind::Cut
            && self.only.is_empty()
    }

    /// A fault on every frame, until removed.
    pub fn new(target: FaultTarget, kind: FaultKind) -> FaultCmd {
        FaultCmd {
            target,
            kind,
            only: Vec::new(),
            duration: None,
        }
    }

    /// Whether `other` is the same fault for replacement (same target, kind and filter; parameters and
    /// duration may differ).
    pub fn replaces(&self, other: &FaultCmd) -> bool {
        self.target == other.target && self.kind.same_kind(&other.kind) && self.only == other.only
    }
}

impl fmt::Display for FaultCmd {
    /// The fault in the headless vocabulary (`loss *->1 100% only vote-reply for 10s`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.kind, &self.target) {
            (FaultKind::Cut, FaultTarget::Shape(s)) => write!(f, "partition {s}")?,
            (FaultKind::Cut, FaultTarget::Node(t)) => write!(f, "isolate {t}")?,
            (kind, target) => {
                let verb = kind.verb();
                let rest = kind.to_string();
                let params = rest.strip_prefix(verb).unwrap_or("").trim_start();
                write!(f, "{verb} {target}")?;
                if !params.is_empty() {
                    write!(f, " {params}")?;
                }
            }
        }
        if !self.only.is_empty() {
            write!(f, " only {}", self.only.join(","))?;
        }
        if let Some(d) = self.duration {
            write!(f, " for {}", human(d))?;
        }
        Ok(())
    }
}

/// A duration exactly, as [`parse_duration`] reads it back (the one ladder of units, [`crate::units::exact`]).
pub use crate::units::exact as human;

fn pct(p: f64) -> String {
    if p.fract() == 0.0 {
        format!("{p:.0}")
    } else {
        format!("{p}")
    }
}

/// A rate as a person writes it (`100kB/s`, `1MB/s`).
pub fn rate(bytes_per_sec: u64) -> String {
    match bytes_per_sec {
        r if r >= 1_000_000 && r % 1_000_000 == 0 => format!("{}MB/s", r / 1_000_000),
        r if r >= 1000 && r % 1000 == 0 => format!("{}kB/s", r / 1000),
        r => format!("{r}B/s"),
    }
}

/// Why a word is no duration squall takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadDuration {
    /// It is not a duration at all.
    NotOne,
    /// It is one, longer than [`crate::units::MAX_DURATION`] (or too long to count).
    TooLong,
}

/// Parses a duration: `200ms`, `1.5s`, `2m`, or `0`.
///
/// # Errors
/// The message names `word`: not a `what`, or too long (at most 7 days).
pub fn parse_duration(word: &str, what: &str) -> Result<Duration, String> {
    read_duration(word).map_err(|e| match e {
        BadDuration::NotOne => format!("`{word}` is not a {what} like 200ms, 1.5s or 2m"),
        BadDuration::TooLong => crate::units::too_long(word),
    })
}

/// [`parse_duration`] with the reason as a value, for callers that word the error themselves.
pub fn read_duration(word: &str) -> Result<Duration, BadDuration> {
    // A number too large to count (`99999999999999999999999s`) is a duration, too long.
    let digits = word.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    if digits.len() > 15 && digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(BadDuration::TooLong);
    }
    // A bare number is milliseconds, as a bare number is a percentage for `loss`.
    let d = if let Ok(ms) = word.parse::<u64>() {
        Duration::from_millis(ms)
    } else if let Some((whole, tenth)) = word.strip_suffix('s').and_then(|w| w.split_once('.'))
        && let (Ok(whole), true) = (whole.parse::<u64>(), tenth.len() == 1)
        && let Ok(tenth) = tenth.parse::<u64>()
    {
        // One decimal of seconds (`1.5s`), as [`human`] writes it; humantime reads only whole numbers.
        Duration::from_millis(whole.saturating_mul(1000).saturating_add(tenth * 100))
    } else {
        humantime::parse_duration(word).map_err(|e| match e {
            humantime::DurationError::NumberOverflow => BadDuration::TooLong,
            _ => BadDuration::NotOne,
        })?
    };
    if d > crate::units::MAX_DURATION {
        return Err(BadDuration::TooLong);
    }
    Ok(d)
}

/// Parses a percentage from 0 to 100 (`30%`, `30`, `0.5%`): digits with at most one decimal point, then an
/// optional `%`. Rust's float syntax is not a person's (`1e2`, `inf`, `+5`, `.5` were taken; `1e2` as 100 %).
pub fn parse_pct(word: &str) -> Result<f64, String> {
    let num = word.strip_suffix('%').unwrap_or(word);
    let (whole, frac) = num.split_once('.').unwrap_or((num, ""));
    let plain = !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
        && !num.ends_with('.');
    plain
        .then(|| num.parse::<f64>().ok())
        .flatten()
        .filter(|v| (0.0..=100.0).contains(v))
        .ok_or_else(|| {
            format!(
                "`{word}` is not a percentage from 0% to 100%: write digits with at most one decimal point, \
                 like 30%, 30 or 0.5% (no exponent, no sign)"
            )
        })
}

/// Parses a rate: `100kB/s`, `1MB/s`, `512KiB/s`, `2000B/s` (the `/s` may be left out).
pub fn parse_rate(word: &str) -> Result<u64, String> {
    let bad = || format!("`{word}` is not a rate like 100kB/s or 1MB/s");
    let w = word.strip_suffix("/s").unwrap_or(word);
    let split = w
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(w.len());
    let (num, unit) = w.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let mult = match unit {
        "" | "B" => 1.0,
        "kB" | "KB" | "k" => 1e3,
        "KiB" => 1024.0,
        "MB" | "M" => 1e6,
        "MiB" => 1024.0 * 1024.0,
        "GB" => 1e9,
        _ => return Err(bad()),
    };
    let r = (n * mult).round() as u64;
    if r == 0 {
        return Err(format!(
            "`{word}`: a rate must be at least 1 B/s (use `cut` to stop traffic)"
        ));
    }
    Ok(r)
}

/// The trailing options of a fault line: (duration, message kinds, jitter).
pub type Options = (Option<Duration>, Vec<String>, Option<Duration>);

/// Parses the trailing options of a fault line: `for DUR`, `only KIND[,KIND]`, and for delays `jitter DUR`.
pub fn parse_options(words: &[&str], verb: &str, jitter_ok: bool) -> Result<Options, String> {
    let (mut dur, mut only, mut jitter) = (None, Vec::new(), None);
    let mut i = 0;
    while i < words.len() {
        let key = words[i];
        let value = words.get(i + 1).copied();
        match (key, value) {
            ("for", Some(_)) if dur.is_some() => {
                return Err(format!(
                    "`for` is given twice in `{}`; give one duration",
                    words.join(" ")
                ));
            }
            ("jitter", Some(_)) if jitter_ok && jitter.is_some() => {
                return Err(format!(
                    "`jitter` is given twice in `{}`; give one",
                    words.join(" ")
                ));
            }
            ("for", Some(v)) => {
                let d = parse_duration(v, "duration")?;
                if d.is_zero() {
                    return Err(
                        "`for 0` would end the fault at once; leave `for` out to keep it".into(),
                    );
                }
                dur = Some(d);
            }
            ("only", Some(v)) => {
                for k in v.split(',').filter(|k| !k.is_empty()) {
                    // etcd's messages are labelled by raft message type, a Maelstrom node's by body type
                    // (`kind::etcd::classify`, `kind::maelstrom::classify`); the cluster refuses a kind its
                    // node kind does not label when the fault is put in place.
                    if !is_message_kind(k) {
                        let etcd: Vec<&str> = ETCD_LABELS
                            .iter()
                            .filter(|e| !MESSAGE_KINDS.contains(e))
                            .copied()
                            .collect();
                        return Err(format!(
                            "`{k}` is not a message kind; kinds: {} (etcd's also: {}; a Maelstrom node's: {}; a Paxos node's: {})",
                            MESSAGE_KINDS.join(", "),
                            etcd.join(", "),
                            MAELSTROM_LABELS.join(", "),
                            PAXOS_LABELS.join(", ")
                        ));
                    }
                    if !only.iter().any(|o| o == k) {
                        only.push(k.to_string());
                    }
                }
            }
            ("jitter", Some(v)) if jitter_ok => jitter = Some(parse_duration(v, "jitter")?),
            ("for" | "only" | "jitter", None) => {
                return Err(format!("`{key}` needs a value, e.g. {}", hint(verb)));
            }
            _ => {
                return Err(format!(
                    "`{}` is not understood here; {}",
                    words[i..].join(" "),
                    hint(verb)
                ));
            }
        }
        i += 2;
    }
    Ok((dur, only, jitter))
}

/// What each fault kind does to the frames on the links it covers, one line each (help, footer, README).
pub const WHAT_KINDS_DO: [(&str, &str); 9] = [
    (
        "cut",
        "drops every frame; connections stay open (a cable cut under live TCP)",
    ),
    (
        "delay",
        "holds each frame DUR ± jitter (default a tenth of DUR); order is kept",
    ),
    (
        "loss",
        "drops PCT % of frames, each whole (never half a frame)",
    ),
    ("dup", "sends PCT % of frames twice, back to back"),
    (
        "reorder",
        "holds each frame an extra random 0..DUR, so later frames overtake it",
    ),
    (
        "bandwidth",
        "queues frames so the link carries at most RATE bytes per second",
    ),
    (
        "blackhole",
        "accepts connections, forwards nothing (frames are dropped, not held)",
    ),
    (
        "reset",
        "closes the link's connections with a TCP RST, both ways, and refuses new ones",
    ),
    (
        "hold",
        "queues every frame until step (deliver), drop-held (discard) or release",
    ),
];

/// The grammar of one verb, for error messages and the dashboard's prompt (from [`super::verbs::TABLE`]);
/// for a word that is no verb, what a target and a message kind are.
pub fn hint(verb: &str) -> &'static str {
    super::verbs::find(verb).map_or(TARGETS_AND_KINDS.as_str(), |v| v.grammar)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tester (issue 23): on a Paxos cluster `help` listed Raft's message kinds. The help names the running
    /// kind's, and the README names each built-in kind's list as the help prints it. Seen failing before
    /// `help_lines` took the kinds.
    #[test]
    fn the_help_and_the_readme_name_the_running_kind_s_message_kinds() {
        use super::super::verbs::{ConsoleHelp, TABLE, TARGETS, help_lines};
        let paxos = help_lines(&PAXOS_LABELS);
        let last = paxos.last().expect("a kinds line");
        assert_eq!(
            last,
            &format!(
                "{TARGETS}   KIND: prepare promise accept accepted nack heartbeat catch-up chosen snapshot"
            )
        );
        assert!(!last.contains("vote"), "{last}");
        assert_eq!(paxos.len(), TABLE.len() + 1);
        assert!(ConsoleHelp(&PAXOS_LABELS).to_string().ends_with(
            "KIND: prepare promise accept accepted nack heartbeat catch-up chosen snapshot)"
        ));
        assert_eq!(help_lines(&MESSAGE_KINDS).last(), Some(&*TARGETS_AND_KINDS));
        assert!(help_lines(&[]).last().unwrap().contains("KIND: none"));
        let readme = include_str!("../../README.md").replace('\n', " ");
        for kinds in [&MESSAGE_KINDS[..], &PAXOS_LABELS[..]] {
            let list = format!("`{}`", kinds.join(" "));
            assert!(
                readme.contains(&list),
                "README.md should name the kinds as `help` lists them: {list}"
            );
        }
    }

    #[test]
    fn targets_parse_every_shape() {
        assert_eq!(
            FaultTarget::parse("2"),
            Ok(FaultTarget::Node(Target::Node(2)))
        );
        assert_eq!(
            FaultTarget::parse("leader"),
            Ok(FaultTarget::Node(Target::Leader))
        );
        assert_eq!(FaultTarget::parse("1->2"), Ok(FaultTarget::Link(1, 2)));
        assert_eq!(FaultTarget::parse("2<->4"), Ok(FaultTarget::Both(2, 4)));
        assert_eq!(
            FaultTarget::parse("*->3"),
            Ok(FaultTarget::To(Target::Node(3)))
        );
        assert_eq!(
            FaultTarget::parse("leader->*"),
            Ok(FaultTarget::From(Target::Leader))
        );
        assert_eq!(FaultTarget::parse("*"), Ok(FaultTarget::All));
        assert!(FaultTarget::parse("1->1").unwrap_err().contains("itself"));
        assert!(FaultTarget::parse("x->2").unwrap_err().contains("`x`"));
        assert!(
            FaultTarget::parse("two")
                .unwrap_err()
                .contains("not a target")
        );
    }

    #[test]
    fn rates_durations_and_percentages_read_as_people_write_them() {
        assert_eq!(parse_rate("100kB/s"), Ok(100_000));
        assert_eq!(parse_rate("1MB/s"), Ok(1_000_000));
        assert_eq!(parse_rate("512KiB/s"), Ok(512 * 1024));
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("0B/s").unwrap_err().contains("at least"));
        assert_eq!(parse_pct("30%"), Ok(30.0));
        assert_eq!(parse_pct("0.5%"), Ok(0.5));
        assert!(parse_pct("130%").is_err());
        assert_eq!(parse_pct("100"), Ok(100.0));
        // fixes3 item 5: `loss 1 1e2` was 100 %; Rust's other float forms are no percentages either.
        for word in [
            "1e2", "1e1%", "inf", "NaN", "+5", "-0", ".5", "5.", "1.2.3", "30%%", "",
        ] {
            let e = parse_pct(word).unwrap_err();
            assert!(
                e.contains(&format!("`{word}`")) && e.contains("no exponent"),
                "{word}: {e}"
            );
        }
        assert_eq!(human(Duration::from_millis(1500)), "1.5s");
        // Exact: a 1550 ms delay is written as 1550ms, not rounded to 1.6s (issue 19).
        assert_eq!(human(Duration::from_millis(1550)), "1550ms");
        for ms in [1, 999, 1500, 1550, 60_000, 61_001, 3_600_000] {
            let d = Duration::from_millis(ms);
            assert_eq!(parse_duration(&human(d), "duration"), Ok(d), "{ms} ms");
        }
        assert_eq!(
            parse_duration(&human(Duration::from_micros(1500)), "duration"),
            Ok(Duration::from_micros(1500))
        );
        assert_eq!(human(Duration::from_secs(10)), "10s");
        assert_eq!(rate(1_000_000), "1MB/s");
    }

    #[test]
    fn options_come_in_any_order_and_bad_ones_are_named() {
        let (d, only, j) =
            parse_options(&["only", "vote,heartbeat", "for", "10s"], "loss", false).unwrap();
        assert_eq!(d, Some(Duration::from_secs(10)));
        assert_eq!(only, vec!["vote", "heartbeat"]);
        assert_eq!(j, None);
        assert!(
            parse_options(&["only", "votes"], "loss", false)
                .unwrap_err()
                .contains("`votes` is not a message kind")
        );
        assert!(
            parse_options(&["jitter", "5ms"], "loss", false)
                .unwrap_err()
                .contains("not understood")
        );
        assert!(
            parse_options(&["for"], "cut", false)
                .unwrap_err()
                .contains("needs a value")
        );
    }
}
