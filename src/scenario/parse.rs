//! Reading a scenario file: TOML into raw serde structs that keep each value's position, then validation
//! into a [`Scenario`], every error naming the file, the line and what is wrong.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{
    Checks, ClusterSettings, Expect, NemesisKind, NemesisSpec, Scenario, Step, Window,
    WorkloadKind, WorkloadSettings,
};

/// Why a scenario file cannot be used. Displays as `FILE:LINE: what is wrong`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ScenarioError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line, when the problem has one.
    pub line: Option<usize>,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawScenario {
    name: Option<String>,
    description: Option<String>,
    expect: Option<Spanned<String>>,
    #[serde(default)]
    cluster: RawCluster,
    #[serde(default)]
    workload: RawWorkload,
    #[serde(default)]
    run: RawRun,
    #[serde(default)]
    timeline: Vec<RawStep>,
    nemesis: Option<RawNemesis>,
    #[serde(default)]
    checks: RawChecks,
    #[serde(default)]
    beyond_tolerance: Vec<RawWindow>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawCluster {
    nodes: Option<Spanned<i64>>,
    election_timeout: Option<Spanned<String>>,
    heartbeat: Option<Spanned<String>>,
    snapshot_every: Option<Spanned<i64>>,
    seed: Option<Spanned<toml::Value>>,
    disk_faults: Option<bool>,
    node_bin: Option<PathBuf>,
    #[serde(default)]
    node_args: Vec<String>,
    kind: Option<Spanned<String>>,
    protocol: Option<Spanned<String>>,
    maelstrom: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawWorkload {
    kind: Option<Spanned<String>>,
    rate: Option<Spanned<i64>>,
    clients: Option<Spanned<i64>>,
    keys: Option<Spanned<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawRun {
    duration: Option<Spanned<String>>,
    recovery: Option<Spanned<String>>,
    final_heal: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawStep {
    at: Spanned<String>,
    #[serde(rename = "do")]
    command: Spanned<String>,
    until: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawNemesis {
    kinds: Spanned<Vec<Spanned<String>>>,
    interval: Option<Spanned<String>>,
    fault_duration: Option<Spanned<String>>,
    max_down: Option<Spanned<i64>>,
    start: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawChecks {
    counter: Option<bool>,
    linearizable: Option<bool>,
    lock: Option<bool>,
    invariants: Option<bool>,
    liveness: Option<bool>,
    liveness_bound: Option<Spanned<String>>,
    checker_deadline: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawWindow {
    from: Spanned<String>,
    to: Spanned<String>,
}

/// Reads a scenario from `text` (the contents of `file`, named in errors). `validate(line, nodes)` checks
/// one timeline command against the headless vocabulary and a cluster of `nodes` nodes (unknown command,
/// bad argument, node that does not exist) and returns what is wrong.
///
/// # Errors
/// A [`ScenarioError`] naming the file, the line and what is wrong: TOML syntax, an unknown key, a value
/// of the wrong type or out of range, an unknown fault kind, a step time outside the run, a command the
/// vocabulary refuses.
pub fn parse_scenario(
    file: &Path,
    text: &str,
    validate: &dyn Fn(&str, u64) -> Result<(), String>,
) -> Result<Scenario, ScenarioError> {
    let p = Parser { file, text };
    let raw: RawScenario = toml::from_str(text).map_err(|e| ScenarioError {
        file: file.to_path_buf(),
        line: e.span().map(|s| p.line_of(&s)),
        message: e.message().trim().to_string(),
    })?;

    let expect = match &raw.expect {
        None => Expect::Valid,
        Some(e) => match e.get_ref().as_str() {
            "valid" => Expect::Valid,
            "invalid" => Expect::Invalid,
            other => {
                return Err(p.err(
                    e.span(),
                    format!("expect = \"{other}\": use \"valid\" or \"invalid\""),
                ));
            }
        },
    };

    let c = &raw.cluster;
    let nodes = p.int_in(c.nodes.as_ref(), "cluster.nodes", 1..=9, 3)? as u64;
    let election_timeout = match &c.election_timeout {
        None => (Duration::from_millis(150), Duration::from_millis(300)),
        Some(s) => p.range(s, "cluster.election-timeout")?,
    };
    let heartbeat = p.dur_or(
        c.heartbeat.as_ref(),
        "cluster.heartbeat",
        Duration::from_millis(50),
    )?;
    if heartbeat < Duration::from_millis(10) {
        return Err(p.err(
            c.heartbeat.as_ref().map(|s| s.span()).unwrap_or_default(),
            "cluster.heartbeat must be at least 10ms (the nodes' tick)".into(),
        ));
    }
    if heartbeat >= election_timeout.0 {
        return Err(p.err(
            c.heartbeat.as_ref().map(|s| s.span()).unwrap_or_default(),
            "cluster.heartbeat must be shorter than the election timeout's minimum".into(),
        ));
    }
    let snapshot_every = p.int_in(
        c.snapshot_every.as_ref(),
        "cluster.snapshot-every",
        // 0 turns snapshots off, as `squall up --snapshot-every 0` does.
        0..=100_000_000,
        500,
    )? as u64;
    // An integer, or (for seeds above 2^63 - 1, which TOML integers cannot hold) a string of digits.
    let seed = match &c.seed {
        None => None,
        Some(s) => match s.get_ref() {
            toml::Value::Integer(i) if *i >= 0 => Some(*i as u64),
            toml::Value::String(t) if t.parse::<u64>().is_ok() => t.parse::<u64>().ok(),
            _ => {
                return Err(p.err(
                    s.span(),
                    "cluster.seed must be a number from 0 to 18446744073709551615 (write one above \
                     9223372036854775807 as a string)"
                        .into(),
                ));
            }
        },
    };
    // A Maelstrom node is the `maelstrom` kind with this program: it cannot be combined with another kind or
    // program.
    if let Some(m) = &c.maelstrom
        && (c.kind.is_some() || c.node_bin.is_some())
    {
        return Err(p.err(
            m.span(),
            "cluster.maelstrom names the node program itself: drop cluster.kind and cluster.node-bin".into(),
        ));
    }
    // `protocol = "raft" | "paxos"`: squall's own node with that core, as `squall up --protocol` (the kinds
    // `squall` and `paxos`). Beside a `kind` it must name the same kind.
    let protocol = match &c.protocol {
        None => None,
        Some(pr) => {
            let protocol = super::protocol_named(pr.get_ref()).ok_or_else(|| {
                p.err(
                    pr.span(),
                    format!(
                        "cluster.protocol = \"{}\": use \"raft\" or \"paxos\"",
                        pr.get_ref()
                    ),
                )
            })?;
            let kind = super::protocol_kind(protocol);
            if let Some(k) = &c.kind
                && k.get_ref() != kind
            {
                return Err(p.err(
                    pr.span(),
                    format!(
                        "cluster.protocol = \"{}\" runs node kind \"{kind}\", but cluster.kind = \"{}\" (line {}): \
                         drop one of them, or make them agree",
                        pr.get_ref(),
                        k.get_ref(),
                        p.line_of(&k.span())
                    ),
                ));
            }
            if c.maelstrom.is_some() {
                return Err(p.err(
                    pr.span(),
                    "cluster.protocol names squall's own node, cluster.maelstrom another program: drop one of them"
                        .into(),
                ));
            }
            Some(protocol)
        }
    };
    let cluster = ClusterSettings {
        nodes,
        election_timeout,
        heartbeat,
        snapshot_every,
        seed,
        disk_faults: c.disk_faults.unwrap_or(false),
        node_bin: c.node_bin.clone(),
        node_args: c.node_args.clone(),
        kind: c
            .kind
            .as_ref()
            .map(|k| k.get_ref().clone())
            .or_else(|| protocol.map(|p| super::protocol_kind(p).to_string())),
        protocol,
        maelstrom: c.maelstrom.as_ref().map(|m| PathBuf::from(m.get_ref())),
    };

    let w = &raw.workload;
    let maelstrom = c.maelstrom.is_some();
    let kind = match &w.kind {
        // A Maelstrom node has no counter for squall's counter workload: its default is lin-kv.
        None if maelstrom => WorkloadKind::LinKv,
        None => WorkloadKind::Counter,
        Some(k) => match k.get_ref().as_str() {
            "counter" => WorkloadKind::Counter,
            "lin-kv" => WorkloadKind::LinKv,
            "lock" => WorkloadKind::Lock,
            "lock-fenced" => WorkloadKind::LockFenced,
            "none" => WorkloadKind::None,
            other => match crate::command::WorkloadKind::parse(other) {
                Some(m) if m.is_maelstrom_only() => WorkloadKind::Maelstrom(m),
                _ => {
                    return Err(p.err(
                        k.span(),
                        format!(
                            "workload.kind = \"{other}\": use \"counter\", \"lin-kv\", \"lock\", \"lock-fenced\", \"none\", or for a \
                             Maelstrom node \"echo\", \"unique-ids\", \"broadcast\", \"g-counter\", \"kafka\""
                        ),
                    ));
                }
            },
        },
    };
    if let Some(k) = &w.kind {
        match kind {
            WorkloadKind::Counter if maelstrom => {
                return Err(p.err(
                    k.span(),
                    "workload.kind = \"counter\": a Maelstrom node has no increment for squall's counter \
                     workload; use \"g-counter\" (Maelstrom's counter) or \"lin-kv\""
                        .into(),
                ));
            }
            WorkloadKind::Maelstrom(m) if !maelstrom => {
                return Err(p.err(
                    k.span(),
                    format!(
                        "workload.kind = \"{}\" is one of Maelstrom's workloads: name your Maelstrom node \
                         with cluster.maelstrom = \"PATH\"",
                        m.as_str()
                    ),
                ));
            }
            _ => {}
        }
    }
    // The built-in lin-kv workload runs a fixed number of clients on a fixed number of keys (Maelstrom's
    // lin-kv defaults); a file asking for others is refused rather than silently run with these.
    let fixed = |v: Option<&Spanned<i64>>, key: &str, only: i64| {
        match v {
        Some(v) if *v.get_ref() != only => Err(p.err(
            v.span(),
            format!(
                "{key} = {}: the built-in lin-kv workload runs {only} (other values are not supported yet)",
                v.get_ref()
            ),
        )),
        _ => Ok(only as u32),
    }
    };
    let workload = WorkloadSettings {
        kind,
        rate: p.int_in(w.rate.as_ref(), "workload.rate", 1..=100_000, 20)? as u32,
        clients: fixed(w.clients.as_ref(), "workload.clients", 8)?,
        keys: fixed(w.keys.as_ref(), "workload.keys", 5)?,
    };

    let duration = p.dur_or(
        raw.run.duration.as_ref(),
        "run.duration",
        Duration::from_secs(30),
    )?;
    if duration.is_zero() {
        return Err(p.err(
            raw.run
                .duration
                .as_ref()
                .map(|s| s.span())
                .unwrap_or_default(),
            "run.duration must be more than 0s".into(),
        ));
    }
    let recovery = p.dur_or(
        raw.run.recovery.as_ref(),
        "run.recovery",
        Duration::from_secs(10),
    )?;

    let mut timeline = Vec::new();
    let mut spans = Vec::new();
    let mut texts: Vec<String> = Vec::new();
    for s in &raw.timeline {
        let at = p.dur(&s.at, "timeline.at")?;
        if at > duration {
            return Err(p.err(
                s.at.span(),
                format!(
                    "at = \"{}\" is after the end of the fault phase (run.duration = {})",
                    s.at.get_ref(),
                    super::fmt_duration(duration)
                ),
            ));
        }
        let until = match &s.until {
            None => None,
            Some(u) => {
                let t = p.dur(u, "timeline.until")?;
                if t <= at || t > duration {
                    return Err(p.err(
                        u.span(),
                        format!(
                            "until = \"{}\" must be after at = \"{}\" and no later than run.duration = {}",
                            u.get_ref(),
                            s.at.get_ref(),
                            super::fmt_duration(duration)
                        ),
                    ));
                }
                Some(t)
            }
        };
        let text = s.command.get_ref().trim().to_string();
        // Read here, once: a step that is no command (`partition hlaves`) fails at load, naming its line.
        let command = crate::command::parse(&text)
            .map_err(|why| p.err(s.command.span(), format!("`{text}`: {why}")))?;
        texts.push(text);
        spans.push(s.command.span());
        timeline.push(Step {
            at,
            command,
            until,
            line: p.line_of(&s.command.span()),
        });
    }
    // In the order the steps run (a stable sort: steps at the same moment run in file order), each step may
    // name only the nodes that can exist by then: 1..nodes, plus one per earlier `add`, `add --learner` or
    // `replace` (nine in all).
    let mut order: Vec<usize> = (0..timeline.len()).collect();
    order.sort_by_key(|&i| timeline[i].at);
    let mut named_nodes = nodes;
    for &i in &order {
        let text = &texts[i];
        validate(text, named_nodes)
            .map_err(|why| p.err(spans[i].clone(), format!("`{text}`: {why}")))?;
        if matches!(
            timeline[i].command,
            crate::command::Command::Add
                | crate::command::Command::AddLearner
                | crate::command::Command::Replace(_)
        ) {
            named_nodes = (named_nodes + 1).min(crate::cluster::guard::MAX_NODES);
        }
    }
    timeline.sort_by_key(|s| s.at);

    let nemesis = match &raw.nemesis {
        None => None,
        Some(n) => Some(p.nemesis(n, nodes)?),
    };

    let ch = &raw.checks;
    let liveness_bound = p.dur_or(
        ch.liveness_bound.as_ref(),
        "checks.liveness-bound",
        election_timeout.1 * 10,
    )?;
    let checker_deadline = p.dur_or(
        ch.checker_deadline.as_ref(),
        "checks.checker-deadline",
        Duration::from_secs(30),
    )?;
    let checks = Checks {
        counter: ch.counter.unwrap_or(kind == WorkloadKind::Counter),
        linearizable: ch.linearizable.unwrap_or(kind == WorkloadKind::LinKv),
        lock: ch.lock.unwrap_or(matches!(
            kind,
            WorkloadKind::Lock | WorkloadKind::LockFenced
        )),
        invariants: ch.invariants.unwrap_or(true),
        liveness: ch.liveness.unwrap_or(true),
        liveness_bound,
        checker_deadline,
    };
    if checks.counter && kind != WorkloadKind::Counter {
        return Err(p.err(
            0..0,
            format!("checks.counter needs workload.kind = \"counter\" (it is \"{kind}\")"),
        ));
    }
    if checks.lock && !matches!(kind, WorkloadKind::Lock | WorkloadKind::LockFenced) {
        return Err(p.err(
            0..0,
            format!(
                "checks.lock needs workload.kind = \"lock\" or \"lock-fenced\" (it is \"{kind}\")"
            ),
        ));
    }
    if checks.linearizable && kind != WorkloadKind::LinKv {
        return Err(p.err(
            0..0,
            format!("checks.linearizable needs workload.kind = \"lin-kv\" (it is \"{kind}\")"),
        ));
    }

    let mut beyond_tolerance = Vec::new();
    for w in &raw.beyond_tolerance {
        let from = p.dur(&w.from, "beyond-tolerance.from")?;
        let to = p.dur(&w.to, "beyond-tolerance.to")?;
        if to <= from {
            return Err(p.err(w.to.span(), "beyond-tolerance.to must be after from".into()));
        }
        beyond_tolerance.push(Window { from, to });
    }

    let name = raw.name.clone().unwrap_or_else(|| {
        file.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "scenario".into())
    });
    Ok(Scenario {
        name,
        description: raw.description.clone().unwrap_or_default(),
        expect,
        cluster,
        workload,
        duration,
        final_heal: raw.run.final_heal.unwrap_or(true),
        recovery,
        timeline,
        nemesis,
        checks,
        beyond_tolerance,
    })
}

struct Parser<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Parser<'_> {
    fn line_of(&self, span: &Range<usize>) -> usize {
        let end = span.start.min(self.text.len());
        self.text[..end].bytes().filter(|b| *b == b'\n').count() + 1
    }

    fn err(&self, span: Range<usize>, message: String) -> ScenarioError {
        ScenarioError {
            file: self.file.to_path_buf(),
            line: if span == (0..0) {
                None
            } else {
                Some(self.line_of(&span))
            },
            message,
        }
    }

    fn dur(&self, s: &Spanned<String>, key: &str) -> Result<Duration, ScenarioError> {
        parse_duration(s.get_ref())
            .map_err(|why| self.err(s.span(), format!("{key} = \"{}\": {why}", s.get_ref())))
    }

    fn dur_or(
        &self,
        s: Option<&Spanned<String>>,
        key: &str,
        default: Duration,
    ) -> Result<Duration, ScenarioError> {
        s.map_or(Ok(default), |s| self.dur(s, key))
    }

    fn range(&self, s: &Spanned<String>, key: &str) -> Result<(Duration, Duration), ScenarioError> {
        let bad = |why: String| self.err(s.span(), format!("{key} = \"{}\": {why}", s.get_ref()));
        let text = s.get_ref();
        let Some((a, b)) = text.split_once("..") else {
            return Err(bad("expected a range like \"150..300ms\"".into()));
        };
        let b_d = parse_duration(b).map_err(&bad)?;
        // `150..300ms`: the unit of the upper bound applies to a bare lower bound.
        let a_d = if a.chars().all(|c| c.is_ascii_digit()) && !a.is_empty() {
            let unit: String = b.chars().skip_while(|c| c.is_ascii_digit()).collect();
            parse_duration(&format!("{a}{unit}")).map_err(&bad)?
        } else {
            parse_duration(a).map_err(&bad)?
        };
        if a_d > b_d {
            return Err(bad("the lower bound is above the upper one".into()));
        }
        Ok((a_d, b_d))
    }

    fn int_in(
        &self,
        v: Option<&Spanned<i64>>,
        key: &str,
        range: std::ops::RangeInclusive<i64>,
        default: i64,
    ) -> Result<i64, ScenarioError> {
        match v {
            None => Ok(default),
            Some(v) if range.contains(v.get_ref()) => Ok(*v.get_ref()),
            Some(v) => Err(self.err(
                v.span(),
                format!(
                    "{key} = {} is out of range: use {} to {}",
                    v.get_ref(),
                    range.start(),
                    range.end()
                ),
            )),
        }
    }

    fn nemesis(&self, n: &RawNemesis, nodes: u64) -> Result<NemesisSpec, ScenarioError> {
        let mut kinds = Vec::new();
        for k in n.kinds.get_ref() {
            let kind = NemesisKind::from_name(k.get_ref()).ok_or_else(|| {
                let all: Vec<&str> = NemesisKind::ALL.iter().map(|k| k.name()).collect();
                self.err(
                    k.span(),
                    format!(
                        "unknown fault kind \"{}\" in nemesis.kinds; the kinds are {}",
                        k.get_ref(),
                        all.join(", ")
                    ),
                )
            })?;
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        if kinds.is_empty() {
            return Err(self.err(
                n.kinds.span(),
                "nemesis.kinds is empty: name at least one fault kind, or remove [nemesis]".into(),
            ));
        }
        let interval = match &n.interval {
            None => (Duration::from_secs(5), Duration::from_secs(10)),
            Some(s) => self.range(s, "nemesis.interval")?,
        };
        if interval.1.is_zero() {
            return Err(self.err(
                n.interval.as_ref().map(|s| s.span()).unwrap_or_default(),
                "nemesis.interval must be more than 0s".into(),
            ));
        }
        let fault_duration = match &n.fault_duration {
            None => (Duration::from_secs(2), Duration::from_secs(5)),
            Some(s) => self.range(s, "nemesis.fault-duration")?,
        };
        let max_down = self.int_in(
            n.max_down.as_ref(),
            "nemesis.max-down",
            0..=nodes as i64,
            ((nodes as i64) - 1) / 2,
        )? as u64;
        let start = self.dur_or(n.start.as_ref(), "nemesis.start", Duration::from_secs(2))?;
        Ok(NemesisSpec {
            kinds,
            interval,
            fault_duration,
            max_down,
            start,
        })
    }
}

/// Parses `250ms`, `5s`, `2m`, `1h`, `7d` (and `0`), and one decimal of seconds (`1.5s`) as
/// [`crate::units::exact`] writes it; no other fractions.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.contains('.') {
        return crate::command::fault::read_duration(s).map_err(|e| match e {
            crate::command::fault::BadDuration::TooLong => crate::units::too_long(s),
            _ => format!("`{s}` is not a duration like 250ms, 5s or 2m"),
        });
    }
    let d = humantime::parse_duration(s).map_err(|e| match e {
        humantime::DurationError::NumberOverflow => crate::units::too_long(s),
        _ => format!("`{s}` is not a duration like 250ms, 5s or 2m"),
    })?;
    crate::units::within_limit(d, s)
}
