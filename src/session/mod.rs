//! One running session: the cluster, the state its events fold into, the event log they are written to.
//! `squall up` (dashboard and console), `squall run` and `squall bench` all start one here and end it here, so
//! none of them reaches into another's loop.

mod broken;
mod console;
mod signals;

use std::path::PathBuf;

use tokio::sync::mpsc;

use crate::cluster::command::Command;
use crate::cluster::files::SessionLock;
use crate::cluster::{Cluster, ClusterSpec};
use crate::record::asciicast::Recorder;
use crate::record::eventlog::EventLogWriter;
use crate::state::{ClusterState, Event, Stamped, StatusCompressor, ViewState, WorkloadKind};

pub use broken::Broken;
pub use console::{Console, ConsoleFeed, console_line, eprintln_quiet};
pub use signals::StopSignals;

/// What a running session's events fold into: the cluster state every view draws from, the event log, and
/// (in the dashboard) the recording's markers. Replay folds a log through the same `ClusterState::apply`.
pub struct Session {
    log: Option<EventLogWriter<Stamped>>,
    /// The traced messages' own capped record beside the event log.
    messages: Option<crate::record::messages::MessageLog>,
    /// The state the session's events have folded into so far.
    pub state: ClusterState,
    /// The dashboard's recorder, which gets a marker for each notable feed line.
    pub recorder: Option<Recorder>,
    feed_seen: u64,
    compressor: StatusCompressor,
    dump_screens: Option<std::path::PathBuf>,
    applied: u64,
    /// The events a scenario is made of (settings, workload, actions), for `E` in the dashboard.
    scenario_events: Vec<Stamped>,
    /// The session's hold on its cluster directory, released when the session is dropped.
    _lock: SessionLock,
}

impl Session {
    /// The events a scenario is made of so far (settings, workload, actions), oldest first.
    pub fn scenario_events(&self) -> &[Stamped] {
        &self.scenario_events
    }

    /// Folds one event into the state and the event log; returns feed lines it added.
    pub fn apply(&mut self, mut e: Stamped) -> Vec<crate::state::FeedLine> {
        if let Event::Messages { messages, lost } = &e.event {
            // Thousands a second under a workload: they go to their own capped record, not the event log.
            self.state.apply(&e);
            if let Some(log) = &mut self.messages {
                log.append(messages, *lost);
            }
            return Vec::new();
        }
        // The compact form is what gets applied and logged, so a replay goes through the very same updates.
        e.event = self.compressor.encode(e.event);
        self.state.apply(&e);
        self.applied += 1;
        if matches!(
            e.event,
            Event::SessionStarted { .. }
                | Event::Settings { .. }
                | Event::WorkloadKind { .. }
                | Event::Performed { .. }
        ) {
            self.scenario_events.push(e.clone());
        }
        let fault = matches!(e.event, Event::Performed { .. });
        if let Some(log) = &self.log {
            log.append(e);
        }
        if fault {
            self.dump_screen();
        }
        let new: Vec<_> = self.state.feed_since(self.feed_seen).cloned().collect();
        self.feed_seen = self.state.feed_total();
        if let Some(rec) = &self.recorder {
            for line in &new {
                if line.kind.is_chapter() {
                    rec.marker(line.text.clone());
                }
            }
        }
        new
    }

    /// The session's record could not be written (the event log, or the message record beside it): the first
    /// such error, as soon as its writer met it. A loop checks it on its tick and ends the session
    /// ([`Broken::Record`]).
    pub fn record_failure(&self) -> Option<Broken> {
        let log = self.log.as_ref().and_then(|l| l.failed());
        let messages = self.messages.as_ref().and_then(|m| m.failed());
        log.or(messages).map(|why| Broken::Record(why.to_string()))
    }

    /// Writes the screen of the live state to the `--dump-screens` directory, if any.
    pub fn dump_screen(&self) {
        if let Some(dir) = &self.dump_screens {
            let text = crate::ui::render_text(&self.state, &ViewState::new(), 160, 48);
            let _ = std::fs::create_dir_all(dir);
            let _ = std::fs::write(dir.join(format!("screen-{}.txt", self.applied)), text);
        }
    }
}

/// A started session: the cluster, what folds its events, and where they arrive.
pub type Started = (Cluster, Session, mpsc::UnboundedReceiver<Stamped>);

/// What a session runs and where its record goes, decided before the cluster starts. `up` builds it from its
/// flags, `run` from a scenario's plan and `bench` from its own fixed settings: none of them goes through
/// another's command line.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// The cluster to start.
    pub spec: ClusterSpec,
    /// Where the event log is written; `None` writes none (the benches).
    pub events: Option<PathBuf>,
    /// The built-in workload to start at once, if any.
    pub workload: Option<WorkloadKind>,
    /// The node program a person named (`--node-bin`, a scenario's `node-bin`), recorded in the settings
    /// event; `None` when squall runs its own node.
    pub node_bin: Option<PathBuf>,
    /// For tests: where to write the screen of the live state after every fault and at the end.
    pub dump_screens: Option<PathBuf>,
    /// The node arguments a scenario's `node-args` added (already in `spec.node_prefix_args`), recorded in
    /// the settings event so an export passes them again.
    pub node_args: Vec<String>,
}

/// Creates the cluster directory and the event log, starts every node, and starts the workload the config
/// names. `Err` is the message for a person (the cluster directory or the event log cannot be created, or a
/// node does not start).
pub async fn start_session(config: SessionConfig) -> Result<Started, String> {
    let SessionConfig {
        spec,
        events,
        workload,
        node_bin,
        dump_screens,
        node_args,
    } = config;
    if let Some(why) = workload.and_then(|w| spec.kind.workload_refusal(w)) {
        return Err(format!(
            "--workload {}: {why}",
            workload.expect("some").as_str()
        ));
    }
    std::fs::create_dir_all(&spec.dir).map_err(|e| {
        format!(
            "cannot create cluster directory {}: {e}",
            spec.dir.display()
        )
    })?;
    // Before anything in the directory is touched: a second session would remove the running one's
    // `cluster.json` and address files and start nodes on its data.
    let lock = SessionLock::take(&spec.dir)?;
    let log = match &events {
        Some(path) => Some(
            EventLogWriter::create(path, &spec.cluster_id)
                .map_err(|e| format!("{e}; name a writable file with --events FILE"))?,
        ),
        None => None,
    };
    let messages = match &events {
        Some(path) => Some(
            crate::record::messages::MessageLog::create(path, &spec.cluster_id)
                .map_err(|e| format!("{e}; name a writable file with --events FILE"))?,
        ),
        None => None,
    };
    let settings = Event::Settings {
        nodes: spec.nodes,
        election_timeout_ms: (
            spec.election_timeout.0.as_millis() as u64,
            spec.election_timeout.1.as_millis() as u64,
        ),
        heartbeat_ms: spec.heartbeat.as_millis() as u64,
        snapshot_every: spec.snapshot_every,
        seed: spec.seed,
        rate: spec.rate,
        disk_faults: spec.disk_faults,
        node_bin: node_bin.as_ref().map(|p| p.display().to_string()),
        unsafe_no_fsync: spec.unsafe_no_fsync,
        kind: Some(spec.kind.record()),
        options: spec.options.clone(),
        node_args,
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let default_workload = spec.kind.default_workload();
    let cluster = match Cluster::start(spec, tx.clone()).await {
        Ok(c) => c,
        Err(e) => {
            // Nothing happened: leave no empty log behind for a person to find and replay (C11).
            drop(log);
            drop(messages);
            if let Some(path) = &events {
                let _ = std::fs::remove_file(path);
                let _ = std::fs::remove_file(crate::record::messages::messages_path(path));
            }
            return Err(format!("{e:#}"));
        }
    };
    let mut session = Session {
        log,
        messages,
        state: ClusterState::new(),
        recorder: None,
        feed_seen: 0,
        compressor: StatusCompressor::new(),
        dump_screens,
        applied: 0,
        scenario_events: Vec::new(),
        _lock: lock,
    };
    session.apply(Stamped::new(cluster.now_ms(), settings));
    if workload.is_none() && default_workload != WorkloadKind::Counter {
        // The session shows (and `workload on` runs) the kind's own default: lin-kv for a Maelstrom node.
        let _ = cluster
            .perform(Command::SetWorkloadKind(Some(default_workload)))
            .await;
    }
    if let Some(kind) = workload {
        cluster.start_workload(kind).await;
    }
    Ok((cluster, session, rx))
}

/// Ends a session: what is still queued goes into the event log, then the end of the session, then every
/// node stops and the log is finished.
pub async fn end_session(
    cluster: &Cluster,
    session: &mut Session,
    rx: &mut mpsc::UnboundedReceiver<Stamped>,
) {
    // What happened up to the end (an action's report still queued) goes into the event log, then the end of
    // the session: what the last screen showed is what a replay shows at its end. The nodes' exits at
    // shutdown follow it in the log, where they change nothing on screen.
    while let Ok(e) = rx.try_recv() {
        session.apply(e);
    }
    session.apply(Stamped::new(cluster.now_ms(), Event::Quit));
    cluster.shutdown().await;
    while let Ok(e) = rx.try_recv() {
        session.apply(e);
    }
    session.dump_screen();
    if let Some(m) = session.messages.take()
        && let Err(e) = m.finish()
    {
        eprintln_quiet(&format!("squall: warning: message record incomplete: {e}"));
    }
    if let Some(log) = session.log.take() {
        // `up` says where the log is, once it knows whether the cluster directory is kept.
        if let Err(e) = log.finish() {
            eprintln_quiet(&format!("squall: warning: event log incomplete: {e}"));
        }
    }
}
