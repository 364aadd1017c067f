//! Hosts of a cluster spread over machines (`--hosts`, issue 24) as the dashboard sees them: a host that stops
//! answering makes its nodes *unreachable* (never guessed dead or alive) until it is back, and every reconnect
//! attempt is said in the feed.

use super::cluster::ClusterState;
use super::event::HostChange;
use super::feed::FeedKind;

/// `n1, n2`.
fn node_list(nodes: &[u64]) -> String {
    nodes
        .iter()
        .map(|n| format!("n{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl ClusterState {
    /// Folds in what happened to host `host`, which runs `nodes`.
    pub(super) fn on_host(&mut self, at: u64, host: &str, nodes: &[u64], change: &HostChange) {
        let list = node_list(nodes);
        let (kind, text) = match change {
            HostChange::Unreachable { why } => {
                self.mark(nodes, Some(host), false);
                (
                    FeedKind::Error,
                    format!(
                        "host {host} unreachable ({why}): {list} unreachable, neither dead nor alive as far as \
                         squall knows; reconnecting"
                    ),
                )
            }
            HostChange::Reconnecting { attempt } => (
                FeedKind::Info,
                format!("host {host}: reconnecting (attempt {attempt})"),
            ),
            HostChange::AttemptFailed {
                attempt,
                why,
                retry_in_ms,
            } => (
                FeedKind::Error,
                format!(
                    "host {host}: reconnect attempt {attempt} failed ({why}); next in {}",
                    crate::units::duration(std::time::Duration::from_millis(*retry_in_ms))
                ),
            ),
            HostChange::Back { pid } => {
                self.mark(nodes, None, false);
                (
                    FeedKind::Info,
                    format!("host {host} back (agent pid {pid}): {list} as the agent kept them"),
                )
            }
            HostChange::Lost { why, .. } => {
                self.mark(nodes, Some(host), true);
                (
                    FeedKind::Error,
                    format!(
                        "host {host} lost ({why}): its agent is gone and {list} with it; squall stopped trying"
                    ),
                )
            }
        };
        self.push(at, None, kind, text);
        for &n in nodes {
            self.refresh_node(at, n);
        }
    }

    /// Marks `nodes` as on `host` while it is unreachable (or `lost`), or (`None`) as reachable again.
    fn mark(&mut self, nodes: &[u64], host: Option<&str>, lost: bool) {
        for &n in nodes {
            let v = self.node_mut(n);
            v.host_unreachable = host.map(str::to_string);
            v.host_lost = lost;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::state::{ClusterState, Event, FeedKind, HostChange, Stamped};

    fn host(at_ms: u64, change: HostChange) -> Stamped {
        Stamped {
            at_ms,
            event: Event::Host {
                host: "db-2".into(),
                nodes: vec![2, 3],
                change,
            },
        }
    }

    #[test]
    fn a_host_unreachable_marks_its_nodes_until_it_is_back_and_the_feed_says_each_step() {
        let mut s = ClusterState::default();
        s.apply(&host(
            10,
            HostChange::Unreachable {
                why: "its ssh connection ended".into(),
            },
        ));
        assert_eq!(s.nodes[&2].host_unreachable.as_deref(), Some("db-2"));
        assert_eq!(s.nodes[&3].host_unreachable.as_deref(), Some("db-2"));
        // The console's `status` says so too, and guesses nothing.
        let line = crate::state::describe_node(&s.nodes[&2]);
        assert!(
            line.starts_with("n2 unreachable (host db-2 does not answer; last known: "),
            "{line}"
        );
        s.apply(&host(20, HostChange::Reconnecting { attempt: 1 }));
        s.apply(&host(
            30,
            HostChange::AttemptFailed {
                attempt: 1,
                why: "cannot reach host db-2 over ssh".into(),
                retry_in_ms: 500,
            },
        ));
        s.apply(&host(40, HostChange::Back { pid: 4242 }));
        assert_eq!(s.nodes[&2].host_unreachable, None);
        assert!(!crate::state::describe_node(&s.nodes[&2]).contains("unreachable"));
        let texts: Vec<(FeedKind, String)> =
            s.feed.iter().map(|l| (l.kind, l.text.clone())).collect();
        let want = [
            (
                FeedKind::Error,
                "host db-2 unreachable (its ssh connection ended): n2, n3 unreachable, neither dead nor alive \
                 as far as squall knows; reconnecting",
            ),
            (FeedKind::Info, "host db-2: reconnecting (attempt 1)"),
            (
                FeedKind::Error,
                "host db-2: reconnect attempt 1 failed (cannot reach host db-2 over ssh); next in 500ms",
            ),
            (
                FeedKind::Info,
                "host db-2 back (agent pid 4242): n2, n3 as the agent kept them",
            ),
        ];
        for (kind, text) in want {
            assert!(
                texts.iter().any(|(k, t)| *k == kind && t == text),
                "missing {kind:?} {text:?} in {texts:?}"
            );
        }
        s.apply(&host(
            50,
            HostChange::Lost {
                why: "no agent runs there any more".into(),
                details: vec![],
            },
        ));
        assert_eq!(s.nodes[&3].host_unreachable.as_deref(), Some("db-2"));
    }

    /// tester9's finding 3: a lost host's node said `n2 unreachable (host host2 does not answer; last known:
    /// running) pid 29060 (not answering)`, a process its agent had stopped. Seen failing (that line).
    #[test]
    fn a_lost_host_s_node_is_gone_with_it_with_no_pid_and_nothing_last_known_of_a_process() {
        use crate::state::ProcessState;
        let mut s = ClusterState::default();
        for node in [2, 3] {
            let state = ProcessState::Running { pid: 29060 };
            s.apply(&Stamped::new(1, Event::Process { node, state }));
        }
        s.apply(&host(
            10,
            HostChange::Unreachable {
                why: "its ssh connection ended".into(),
            },
        ));
        s.apply(&host(
            20,
            HostChange::Lost {
                why: "no agent runs there any more".into(),
                details: vec![],
            },
        ));
        let line = crate::state::describe_node(&s.nodes[&2]);
        assert!(
            line.starts_with(
                "n2 gone with host db-2 (its agent is gone and stopped it; `quit`, then `squall up` again with \
                 the same --dir and hosts file starts it on its data)"
            ),
            "{line}"
        );
        for word in [
            "last known: running",
            "pid 29060",
            "not answering",
            "unreachable",
        ] {
            assert!(!line.contains(word), "`{word}` in {line}");
        }
        // A new agent there: the node is reachable again (its restart then says what runs).
        s.apply(&host(30, HostChange::Back { pid: 77 }));
        assert!(!s.nodes[&2].host_lost);
        assert!(!crate::state::describe_node(&s.nodes[&2]).contains("gone"));
    }
}

#[cfg(test)]
mod late_exit {
    use crate::state::{ClusterState, Event, ProcessState, Stamped};

    fn process(at_ms: u64, state: ProcessState) -> Stamped {
        Stamped {
            at_ms,
            event: Event::Process { node: 2, state },
        }
    }

    /// A restart on another host: the old process's exit may reach the session after the new one runs
    /// (it comes through the fleet, the new pid through the restart's answer). It does not mark the running
    /// node killed.
    #[test]
    fn an_old_process_s_exit_told_after_the_new_one_runs_leaves_it_running() {
        let mut s = ClusterState::default();
        s.apply(&process(1, ProcessState::Running { pid: 10 }));
        s.apply(&process(2, ProcessState::Restarting { wipe: false }));
        s.apply(&process(3, ProcessState::Running { pid: 11 }));
        s.apply(&process(4, ProcessState::Killed { pid: 10 }));
        assert_eq!(s.nodes[&2].process, ProcessState::Running { pid: 11 });
        // The running process's own exit still counts.
        s.apply(&process(5, ProcessState::Killed { pid: 11 }));
        assert_eq!(s.nodes[&2].process, ProcessState::Killed { pid: 11 });
    }
}
