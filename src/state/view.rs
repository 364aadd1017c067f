//! [`ViewState`]: what the person looks at, as opposed to what the cluster does.

/// A panel shown on its own when the terminal is too small for the full layout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Tab {
    /// Nodes table and event feed.
    #[default]
    Nodes,
    /// Log strips and the writes sparkline.
    Logs,
    /// Role lanes and the event feed.
    Timeline,
    /// The link matrix.
    Links,
}

impl Tab {
    /// Every tab, in the order Tab cycles through them.
    pub const ALL: [Tab; 4] = [Tab::Nodes, Tab::Logs, Tab::Timeline, Tab::Links];

    /// The tab after this one.
    pub fn next(self) -> Tab {
        let i = Tab::ALL.iter().position(|t| *t == self).unwrap_or(0);
        Tab::ALL[(i + 1) % Tab::ALL.len()]
    }

    /// Its title.
    pub fn title(self) -> &'static str {
        match self {
            Tab::Nodes => "Nodes",
            Tab::Logs => "Logs",
            Tab::Timeline => "Timeline",
            Tab::Links => "Links",
        }
    }
}

/// UI-only state: selection, overlays, the partition prompt. Never recorded, never replayed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ViewState {
    /// The node node-level keys act on.
    pub selected: Option<u64>,
    /// The display is frozen (the cluster keeps running; the caller keeps showing an older state).
    pub frozen: bool,
    /// The message-flow panel is open (`M`) in place of the event feed.
    pub flow: bool,
    /// The help overlay is open.
    pub help: bool,
    /// The tab shown when the terminal is too small for every panel.
    pub tab: Tab,
    /// The partition prompt is open with this text typed so far.
    pub prompt: Option<String>,
    /// The fault prompt (any line of the headless vocabulary) is open with this text typed so far.
    pub command: Option<String>,
    /// The links matrix has the keyboard: the cell cursor is on link `(from, to)`.
    pub link_cursor: Option<(u64, u64)>,
    /// A mode line shown in the header instead of live-session hints (replay uses it: "▶ 2× 01:23 / 05:00").
    pub banner: Option<String>,
    /// Replaces the footer's key hints (replay has its own keys).
    pub footer: Option<String>,
    /// A short answer to the last key, shown in the footer until the next key ("no node 7").
    pub notice: Option<String>,
    /// How many lines the event feed is scrolled back from the newest (0: it follows new lines).
    pub feed_scroll: usize,
    /// Which page of the help overlay is open (0: keys, 1: symbols).
    pub help_page: usize,
    /// The view belongs to `squall replay`: its help lists replay's keys.
    pub replay: bool,
    /// The held-queue panel is open (`H`, or `held` in the prompt).
    pub held: bool,
    /// The log panel is scrolled (`[`, `]`, `log N` in the prompt): its window ends at this index (or at the
    /// longest log, if that is shorter). `None`: it follows the end.
    pub log_end: Option<u64>,
    /// Entries fetched from each node for the scrolled log window (`Cluster::log_range`), by node, oldest
    /// first: the log panel draws them where the status's tail does not reach.
    pub log_fetched: std::collections::BTreeMap<u64, Vec<squall_node::rpc::LogCell>>,
    /// The running node kind's message kinds (what `only KIND,..`, `held` and the links matrix name), in
    /// label order, for the help overlay; empty where not known (a replay).
    pub message_kinds: Vec<&'static str>,
}

impl ViewState {
    /// A view with nothing selected.
    pub fn new() -> Self {
        Self::default()
    }
}
