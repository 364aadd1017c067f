//! Out-of-turn status polls, so a command that judges by the nodes' state (a `step` saying its receiver will
//! refuse a frame) judges by what the nodes are now, not by a status up to a poll interval old.
//!
//! A count of polls asked, and per node the count its poller had seen when it began the last poll it finished:
//! a node whose count reached `n` has been polled since ask number `n`. Kept apart from the handle (which
//! holds it) so the handle and the pollers share it without using each other (`tests/house.rs`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::command::NodeId;

/// The asked and finished counts of out-of-turn polls.
pub(super) struct Fresh {
    asked: watch::Sender<u64>,
    finished: watch::Sender<BTreeMap<NodeId, u64>>,
}

impl Fresh {
    pub(super) fn new() -> Fresh {
        Fresh {
            asked: watch::Sender::new(0),
            finished: watch::Sender::new(BTreeMap::new()),
        }
    }

    /// Asks every poller for a poll now; answers the ask's number, for [`Fresh::wait`].
    pub(super) fn ask(&self) -> u64 {
        let mut n = 0;
        self.asked.send_modify(|a| {
            *a += 1;
            n = *a;
        });
        n
    }

    /// What a poller waits on between its regular polls.
    pub(super) fn asks(&self) -> watch::Receiver<u64> {
        self.asked.subscribe()
    }

    /// Node `id`'s poller finished a poll it began when `asked` polls had been asked (answered or not: a node
    /// that does not answer has nothing newer to say).
    pub(super) fn finished(&self, id: NodeId, asked: u64) {
        self.finished.send_if_modified(|m| {
            let at = m.entry(id).or_default();
            if *at >= asked {
                return false;
            }
            *at = asked;
            true
        });
    }

    /// Waits until each of `ids` finished a poll begun at or after ask number `ask`, for at most `limit`.
    /// Answers the ids that did not in time (a node whose poller is stopped, or whose call hangs).
    pub(super) async fn wait(&self, ids: &[NodeId], ask: u64, limit: Duration) -> Vec<NodeId> {
        let behind = |m: &BTreeMap<NodeId, u64>| -> Vec<NodeId> {
            ids.iter()
                .copied()
                .filter(|id| m.get(id).is_none_or(|&at| at < ask))
                .collect()
        };
        let mut rx = self.finished.subscribe();
        let deadline = Instant::now() + limit;
        loop {
            let left = behind(&rx.borrow_and_update());
            if left.is_empty() {
                return left;
            }
            let changed = tokio::time::timeout_at(deadline.into(), rx.changed()).await;
            if !matches!(changed, Ok(Ok(()))) {
                return behind(&rx.borrow());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wait_ends_once_every_node_named_finished_a_poll_begun_after_the_ask() {
        let fresh = std::sync::Arc::new(Fresh::new());
        // A poll begun before the ask does not count.
        fresh.finished(1, 0);
        let ask = fresh.ask();
        assert_eq!(ask, 1);
        let f = fresh.clone();
        let waiting =
            tokio::spawn(async move { f.wait(&[1, 2], ask, Duration::from_secs(30)).await });
        fresh.finished(1, ask);
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "n2 has not been polled since");
        fresh.finished(2, ask);
        assert_eq!(waiting.await.unwrap(), Vec::<NodeId>::new());
    }

    #[tokio::test]
    async fn a_wait_gives_up_at_its_limit_naming_the_nodes_not_polled() {
        let fresh = Fresh::new();
        let ask = fresh.ask();
        fresh.finished(2, ask);
        let left = fresh.wait(&[1, 2, 3], ask, Duration::from_millis(20)).await;
        assert_eq!(left, vec![1, 3]);
    }
}
