//! The link report and the faults line: per-link traffic rates, the faults in force in words, and the time left
//! on each timed fault.

use std::collections::BTreeMap;

use super::cluster::{ClusterState, LinkRate};
use super::event::{LinkState, LinkView, ProcessState};

impl ClusterState {
    pub(super) fn on_links(&mut self, at: u64, links: &[LinkView]) {
        if let Some(prev_at) = self.links_at_ms
            && at > prev_at
        {
            let dt = (at - prev_at) as f64 / 1000.0;
            let old: BTreeMap<(u64, u64), &LinkView> =
                self.links.iter().map(|l| ((l.from, l.to), l)).collect();
            self.link_rates.clear();
            for l in links {
                if let Some(o) = old.get(&(l.from, l.to)) {
                    let d = |new: u64, old: u64| new.saturating_sub(old) as f64 / dt;
                    self.link_rates.insert(
                        (l.from, l.to),
                        LinkRate {
                            frames: d(l.frames, o.frames),
                            bytes: d(l.bytes, o.bytes),
                            dropped: d(l.dropped, o.dropped),
                        },
                    );
                }
            }
        }
        if self.links_at_ms.is_none_or(|p| at > p) {
            self.links_at_ms = Some(at);
        }
        self.links = links.to_vec();
        self.refresh_faults();
    }

    /// The faults line: [`ClusterState::faults`], with the time left on each timed fault of the set
    /// (`#3 cut *->1 8s`), as of the latest event.
    pub fn fault_labels(&self) -> Vec<String> {
        let Some(set) = &self.fault_set else {
            return self.faults.clone();
        };
        let mut out: Vec<String> = self
            .faults
            .iter()
            .filter(|f| !f.starts_with('#'))
            .cloned()
            .collect();
        for f in set {
            let left = f
                .until_ms
                .map(|u| format!(" {}", left_text(u.saturating_sub(self.now_ms))))
                .unwrap_or_default();
            out.push(format!("#{} {}{left}", f.id, f.short));
        }
        out
    }

    /// Recomputes [`ClusterState::faults`] from the process states and the link report.
    pub(super) fn refresh_faults(&mut self) {
        let mut faults = Vec::new();
        // A removed node stopped by `remove` left the cluster; its exit is not a fault.
        for n in self.nodes.values().filter(|n| !self.is_gone(n.id)) {
            match &n.process {
                ProcessState::Paused { .. } => faults.push(format!("n{} paused", n.id)),
                ProcessState::Killed { .. } => faults.push(format!("n{} killed", n.id)),
                ProcessState::Exited { .. } => faults.push(format!("n{} exited", n.id)),
                _ => {}
            }
            for d in &n.disk_faults {
                faults.push(format!("n{} disk {d}", n.id));
            }
            if let Some(c) = &n.clock_fault {
                faults.push(format!("n{} clock {c}", n.id));
            }
        }
        for (c, f) in &self.client_faults {
            if f.paused_until_ms.is_some_and(|u| u > self.now_ms) {
                faults.push(format!("client {c} paused"));
            }
            if let Some(d) = f.armed {
                faults.push(format!("client {c} pause {} armed", crate::units::exact(d)));
            }
            if let Some(d) = f.slow {
                faults.push(format!("client {c} slow +{}", crate::units::exact(d)));
            }
        }
        match &self.fault_set {
            Some(set) => faults.extend(set.iter().map(|f| format!("#{} {}", f.id, f.short))),
            None => faults.extend(describe_links(&self.links)),
        }
        self.faults = faults;
    }
}

/// Time left on a timed fault, as a person says it: `8s`, `1m05s`, `0.4s`.
pub fn left_text(ms: u64) -> String {
    if ms < 1000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else if ms < 60_000 {
        format!("{}s", ms.div_ceil(1000))
    } else {
        let s = ms.div_ceil(1000);
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

/// Names the network faults in a link report: isolated nodes and partitions from the cut links, then
/// per-node or per-link delays and losses.
pub fn describe_links(links: &[LinkView]) -> Vec<String> {
    let mut out = Vec::new();
    let mut ids: Vec<u64> = links.iter().flat_map(|l| [l.from, l.to]).collect();
    ids.sort_unstable();
    ids.dedup();
    let state = |a: u64, b: u64| {
        links
            .iter()
            .find(|l| l.from == a && l.to == b)
            .map(|l| l.state)
    };

    // Cuts: nodes that still talk both ways form groups.
    let cuts = links.iter().filter(|l| l.state == LinkState::Cut).count();
    if cuts > 0 {
        let mut group: BTreeMap<u64, u64> = ids.iter().map(|&i| (i, i)).collect();
        fn root(g: &BTreeMap<u64, u64>, mut x: u64) -> u64 {
            while g[&x] != x {
                x = g[&x];
            }
            x
        }
        for &a in &ids {
            for &b in &ids {
                let linked = a < b
                    && state(a, b).is_some_and(|s| s != LinkState::Cut)
                    && state(b, a).is_some_and(|s| s != LinkState::Cut);
                if linked {
                    let (ra, rb) = (root(&group, a), root(&group, b));
                    group.insert(ra.max(rb), ra.min(rb));
                }
            }
        }
        let mut groups: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        for &i in &ids {
            groups.entry(root(&group, i)).or_default().push(i);
        }
        let groups: Vec<Vec<u64>> = groups.into_values().collect();
        if groups.len() == 1 {
            out.push(format!("{cuts} links cut"));
        } else if groups.iter().filter(|g| g.len() > 1).count() <= 1 {
            for g in groups.iter().filter(|g| g.len() == 1) {
                out.push(format!("n{} isolated", g[0]));
            }
        } else {
            let shown: Vec<String> = groups
                .iter()
                .map(|g| g.iter().map(u64::to_string).collect::<Vec<_>>().join(","))
                .collect();
            out.push(format!("partition {}", shown.join("|")));
        }
    }

    // Delays and losses: a node whose every link carries the same fault is named once.
    let mut kinds: Vec<LinkState> = links
        .iter()
        .map(|l| l.state)
        .filter(|s| matches!(s, LinkState::Delayed(_) | LinkState::Lossy(_)))
        .collect();
    kinds.sort_by_key(|s| match s {
        LinkState::Delayed(d) => (0, *d),
        LinkState::Lossy(p) => (1, u32::from(*p)),
        _ => (2, 0),
    });
    kinds.dedup();
    for kind in kinds {
        let label = match kind {
            LinkState::Delayed(ms) => format!("+{ms}ms"),
            LinkState::Lossy(pct) => format!("{pct}% loss"),
            _ => unreachable!("filtered above"),
        };
        // Cut links are named above, so they do not stop a node from counting as wholly delayed or lossy.
        let covered: Vec<u64> = ids
            .iter()
            .copied()
            .filter(|&n| {
                let touching = || {
                    ids.iter()
                        .filter(move |&&m| m != n)
                        .flat_map(move |&m| [state(n, m), state(m, n)])
                };
                touching().all(|s| s == Some(kind) || s == Some(LinkState::Cut))
                    && touching().any(|s| s == Some(kind))
            })
            .collect();
        for n in &covered {
            out.push(format!("n{n} {label}"));
        }
        let rest = links
            .iter()
            .filter(|l| l.state == kind && !covered.contains(&l.from) && !covered.contains(&l.to))
            .count();
        if rest > 0 {
            let noun = if rest == 1 { "link" } else { "links" };
            out.push(format!("{rest} {noun} {label}"));
        }
    }
    out
}
