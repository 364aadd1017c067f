//! The one table of verbs. The console's help, the dashboard prompt's completion and grammar hints, the `?`
//! page's vocabulary and the README's list (checked by a test) are all generated from [`TABLE`]: a verb is
//! added here, with its words in [`super::parse()`] and [`std::fmt::Display`], and nowhere else.

use std::fmt;
use std::sync::LazyLock;

/// One verb of the vocabulary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verb {
    /// The word that starts the line (`kill`).
    pub name: &'static str,
    /// Other words for it (`term`, `stop` for `terminate`).
    pub aliases: &'static [&'static str],
    /// Its grammar with an example or what it does, as the prompt hints and error messages show it.
    pub grammar: &'static str,
    /// Whether it needs `squall up --disk-faults`.
    pub disk_faults: bool,
}

const fn verb(name: &'static str, grammar: &'static str) -> Verb {
    Verb {
        name,
        aliases: &[],
        grammar,
        disk_faults: false,
    }
}

const fn disk(name: &'static str, grammar: &'static str) -> Verb {
    Verb {
        name,
        aliases: &[],
        grammar,
        disk_faults: true,
    }
}

/// Every verb the console reads, in the order the help lists them.
pub const TABLE: &[Verb] = &[
    verb("kill", "kill NODE|leader — SIGKILL the node's process"),
    Verb {
        aliases: &["term", "stop"],
        ..verb(
            "terminate",
            "terminate NODE|leader — SIGTERM: the node stops cleanly",
        )
    },
    verb("pause", "pause NODE|leader — SIGSTOP the node's process"),
    Verb {
        aliases: &["cont"],
        ..verb("resume", "resume NODE|leader — SIGCONT a paused node")
    },
    verb(
        "restart",
        "restart NODE|leader|all — start the node (or every member) again with its data",
    ),
    verb(
        "wipe",
        "wipe NODE|leader — remove the node's data and start it empty",
    ),
    verb("transfer", "transfer NODE — hand leadership to the node"),
    verb(
        "isolate",
        "isolate NODE [for DUR] [only KIND,..] — cut every link to and from the node",
    ),
    verb(
        "partition",
        "partition halves|random-halves|bridge|ring|1,2|3,4,5 [for DUR] [only KIND,..] — cut the links between the groups",
    ),
    verb(
        "cut",
        "cut TARGET [for DUR] [only KIND,..] — drop every frame · e.g. cut 1->2 · cut *->3 · cut 2<->4",
    ),
    verb(
        "delay",
        "delay TARGET DUR [jitter DUR] [for DUR] [only KIND,..] — hold each frame DUR · e.g. delay 1->3 200ms only heartbeat",
    ),
    verb(
        "loss",
        "loss TARGET PCT [for DUR] [only KIND,..] — drop PCT % of frames · e.g. loss *->1 100% only vote-reply",
    ),
    verb(
        "dup",
        "dup TARGET PCT [for DUR] [only KIND,..] — send PCT % of frames twice · e.g. dup 2 20%",
    ),
    verb(
        "reorder",
        "reorder TARGET DUR [for DUR] [only KIND,..] — hold each frame a random 0..DUR more, so later frames overtake it",
    ),
    verb(
        "bandwidth",
        "bandwidth TARGET RATE [for DUR] [only KIND,..] — carry at most RATE · e.g. bandwidth 1->3 1MB/s",
    ),
    verb(
        "blackhole",
        "blackhole TARGET [for DUR] [only KIND,..] — accept connections and forward nothing",
    ),
    verb(
        "reset",
        "reset TARGET [for DUR] — close connections with RST, refuse new ones",
    ),
    verb(
        "hold",
        "hold TARGET [only KIND,..] — queue frames until `step`, `drop-held` or `release`; `held` lists them",
    ),
    verb(
        "step",
        "step TARGET [N] — deliver the N oldest held frames (default 1)",
    ),
    verb(
        "drop-held",
        "drop-held TARGET [N] — discard the N oldest held frames (default 1)",
    ),
    verb(
        "release",
        "release TARGET — deliver every held frame and stop holding there",
    ),
    verb(
        "held",
        "held — list the held frames, oldest first: the next one `step` delivers, and the stale ones",
    ),
    verb(
        "drop-stale",
        "drop-stale TARGET — drop held frames superseded by a newer round from the same sender, or whose receiver has passed their term or ballot",
    ),
    verb(
        "freeze",
        "freeze — the nodes' election and heartbeat timers stop (messages still flow, held frames stay held)",
    ),
    verb("thaw", "thaw — the nodes' timers run again (ends `freeze`)"),
    verb(
        "timeout",
        "timeout N — node N's election timer fires now (it starts a pre-vote or election as its rules say)",
    ),
    verb(
        "heartbeat",
        "heartbeat — the leader sends its heartbeats now",
    ),
    verb(
        "faults",
        "faults — list the faults in force with their ids and time left",
    ),
    verb(
        "heal",
        "heal · heal ID — remove every fault, or the one `faults` lists as #ID",
    ),
    verb(
        "links",
        "links — list every link's counters, with frames per message kind",
    ),
    verb(
        "add",
        "add [--learner] — start a new node; it joins as a learner and is promoted once caught up (never, with --learner)",
    ),
    verb(
        "remove",
        "remove NODE — take the node out of the configuration, then stop it",
    ),
    verb(
        "replace",
        "replace NODE — add a new node, then remove NODE once the new one votes",
    ),
    verb(
        "promote",
        "promote NODE — make learner NODE a voter by hand",
    ),
    verb(
        "demote",
        "demote NODE — make voter NODE a learner: it keeps the log but no longer votes",
    ),
    verb(
        "workload",
        "workload on|off · workload rate R · workload lin-kv|counter|lock|lock-fenced|echo|unique-ids|broadcast|g-counter|kafka — the built-in client workload (the last five: Maelstrom nodes)",
    ),
    verb(
        "pause-client",
        "pause-client C DUR — lock client C stops for DUR at its next protected write, as in a GC pause",
    ),
    verb(
        "slow-client",
        "slow-client C DUR — every step of lock client C takes DUR longer, until `heal`",
    ),
    verb(
        "check",
        "check — check the workload: counters, the lin-kv history for linearizability, the lock's mutual exclusion, or a Maelstrom workload by its checker",
    ),
    verb(
        "status",
        "status — list every node's role, term, log and process",
    ),
    disk(
        "powercut",
        "powercut NODE|leader|all [torn [writes|pages]] — SIGKILL and drop every unsynced byte (torn: part survives; needs --disk-faults)",
    ),
    disk(
        "disk",
        "disk NODE slow DUR [sync] | stall | fail-fsync [once|always] | full [after BYTES] | flip [FILE [at OFFSET]] | heal — slow, stall, fail or fill the node's disk, flip a bit of its data; heal ends them (needs --disk-faults)",
    ),
    disk(
        "clock",
        "clock NODE +DUR | -DUR | xRATE | strobe DUR | heal — jump, speed up, slow down or strobe the node's clock; heal makes it true (needs --disk-faults)",
    ),
    Verb {
        aliases: &["exit"],
        ..verb("quit", "quit — stop the cluster and end the session")
    },
    Verb {
        aliases: &["?"],
        ..verb("help", "help — list the commands")
    },
];

/// The verb named `word` (or one of its aliases).
pub fn find(word: &str) -> Option<&'static Verb> {
    TABLE
        .iter()
        .find(|v| v.name == word || v.aliases.contains(&word))
}

/// Every verb's name, for the prompt's completion.
pub static VERBS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    TABLE
        .iter()
        .flat_map(|v| std::iter::once(v.name).chain(v.aliases.iter().copied()))
        .filter(|w| *w != "?")
        .collect()
});

/// What a target is, for hints and the help.
pub const TARGETS: &str = "TARGET: 2 · leader · 1->2 · 1<->2 · 2->* · *->2 · *";

/// What a target is and which message kinds `only KIND,..` (and `held`, `step`, the links matrix) name on a
/// node kind that labels its frames `kinds` (its classifier's labels, in label order): `TARGET: … KIND:
/// prepare promise …`. A kind with no labels says that no `only` filter can match.
pub fn targets_and_kinds(kinds: &[&str]) -> String {
    if kinds.is_empty() {
        format!(
            "{TARGETS}   KIND: none (this node kind's frames carry no labels, so no `only` filter matches)"
        )
    } else {
        format!("{TARGETS}   KIND: {}", kinds.join(" "))
    }
}

/// The console's help: every verb's grammar, generated from [`TABLE`], then what a target is and the message
/// kinds of the node kind that labels its frames with these (prints with `{}`).
pub struct ConsoleHelp<'a>(pub &'a [&'a str]);

impl fmt::Display for ConsoleHelp<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let usage: Vec<&str> = TABLE
            .iter()
            .map(|v| v.grammar.split(" — ").next().unwrap_or(v.name))
            .collect();
        write!(
            f,
            "commands: {} ({})",
            usage.join("; "),
            targets_and_kinds(self.0)
        )
    }
}

/// The console's answer to `help`: one line per verb (its grammar and what it does), then what a target is
/// and the message kinds of the running node kind, `kinds` (tester: a Paxos cluster's help listed Raft's).
pub fn help_lines(kinds: &[&str]) -> Vec<String> {
    TABLE
        .iter()
        .map(|v| v.grammar.to_string())
        .chain(std::iter::once(targets_and_kinds(kinds)))
        .collect()
}

/// The console's answer to a line with nothing on it: an answer like any other line's, so a script that
/// reads one answer per line it writes never waits for one that does not come.
pub const EMPTY_LINE: &str = "empty line; type `help` for the commands";

/// The README's vocabulary list, one verb a line: its grammar and what it does.
pub fn readme_list() -> String {
    TABLE.iter().map(|v| format!("{}\n", v.grammar)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's vocabulary block, between its markers.
    fn readme_block() -> String {
        let readme = include_str!("../../README.md");
        let begin = "<!-- verbs: generated from src/command/verbs.rs -->\n```\n";
        let start = readme
            .find(begin)
            .expect("README.md has the verbs block marker")
            + begin.len();
        let len = readme[start..].find("```").expect("the block is closed");
        readme[start..start + len].to_string()
    }

    #[test]
    fn the_readme_lists_the_verbs_of_the_table() {
        let want = readme_list();
        assert_eq!(
            readme_block(),
            want,
            "README.md's vocabulary list differs from src/command/verbs.rs; paste this between the markers:\n{want}"
        );
    }

    #[test]
    fn every_verb_of_the_table_is_read_by_the_parser() {
        for v in TABLE {
            for word in std::iter::once(v.name).chain(v.aliases.iter().copied()) {
                if let Err(e) = super::super::parse(word) {
                    assert!(
                        !e.starts_with("unknown command"),
                        "`{word}` is in the table but the parser does not know it: {e}"
                    );
                }
            }
        }
        assert!(
            super::super::parse("frobnicate")
                .unwrap_err()
                .starts_with("unknown command")
        );
    }
}
