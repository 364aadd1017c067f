//! Named partition shapes (Jepsen's nemesis vocabulary), described as the set of directed links they cut.
//!
//! A [`Partition`] is pure data: which `from -> to` links lose their traffic. The proxy's
//! [`Network::apply_partition`](crate::proxy::Network::apply_partition) turns it into link faults. Groupings are
//! written by people (`1,2|3,4,5`), so every mistake in one gets an error naming the node and the fix.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::PartitionError;
use crate::proxy::{Endpoint, LinkId};

/// A named way to split a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Shape {
    /// Cut one node off from all others, both ways.
    Isolate(Endpoint),
    /// Split the sorted node list into a minority (first ⌊n/2⌋) and a majority.
    Halves,
    /// Like `Halves`, but over a seeded shuffle of the nodes.
    RandomHalves,
    /// Two halves that cannot see each other, joined by one node that sees both.
    Bridge,
    /// Every node receives from a majority (itself included), and no two nodes receive from the same majority.
    MajoritiesRing,
    /// Any grouping: nodes in different groups cannot reach each other.
    Custom(Vec<Vec<Endpoint>>),
}

impl Shape {
    /// The shape's name as a person types it.
    pub fn name(&self) -> &'static str {
        match self {
            Shape::Isolate(_) => "isolate",
            Shape::Halves => "halves",
            Shape::RandomHalves => "random-halves",
            Shape::Bridge => "bridge",
            Shape::MajoritiesRing => "majorities-ring",
            Shape::Custom(_) => "custom",
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shape::Isolate(n) => write!(f, "isolate:{n}"),
            Shape::Custom(groups) => f.write_str(&format_groups(groups, "|")),
            other => f.write_str(other.name()),
        }
    }
}

/// Reads `isolate:N` (or `isolate N`), `halves`, `random-halves`, `bridge`, `majorities-ring`, or a grouping
/// such as `1,2|3,4,5`.
impl FromStr for Shape {
    type Err = PartitionError;

    fn from_str(s: &str) -> Result<Shape, PartitionError> {
        let t = s.trim();
        let unknown = || PartitionError::UnknownShape {
            input: s.to_string(),
        };
        match t {
            "halves" => return Ok(Shape::Halves),
            "random-halves" => return Ok(Shape::RandomHalves),
            "bridge" => return Ok(Shape::Bridge),
            "majorities-ring" | "ring" => return Ok(Shape::MajoritiesRing),
            _ => {}
        }
        if let Some(rest) = t.strip_prefix("isolate") {
            let n = rest.trim_start_matches([':', ' ']).trim();
            return n.parse().map(Shape::Isolate).map_err(|_| unknown());
        }
        if t.contains('|') {
            return Partition::parse_grouping(t).map(Shape::Custom);
        }
        Err(unknown())
    }
}

/// A set of cut directed links over a known set of nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    nodes: Vec<Endpoint>,
    cut: BTreeSet<(Endpoint, Endpoint)>,
    description: String,
}

impl Partition {
    /// Builds the partition `shape` over `nodes`; `rng_seed` drives the random shapes (same seed, same cut).
    pub fn build(
        shape: &Shape,
        nodes: &[Endpoint],
        rng_seed: u64,
    ) -> Result<Partition, PartitionError> {
        let mut sorted = nodes.to_vec();
        sorted.sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(PartitionError::Duplicate { node: w[0] });
        }
        let need = |shape: &'static str, need: usize| {
            if sorted.len() < need {
                Err(PartitionError::TooFewNodes {
                    shape,
                    need,
                    have: sorted.len(),
                })
            } else {
                Ok(())
            }
        };
        match shape {
            Shape::Isolate(n) => {
                need("isolate", 2)?;
                if !sorted.contains(n) {
                    return Err(unknown(*n, &sorted));
                }
                let rest: Vec<_> = sorted.iter().copied().filter(|m| m != n).collect();
                Ok(Self::from_groups(&sorted, vec![vec![*n], rest]))
            }
            Shape::Halves => {
                need("halves", 2)?;
                let (a, b) = sorted.split_at(sorted.len() / 2);
                Ok(Self::from_groups(&sorted, vec![a.to_vec(), b.to_vec()]))
            }
            Shape::RandomHalves => {
                need("random-halves", 2)?;
                let mut shuffled = sorted.clone();
                shuffled.shuffle(&mut ChaCha8Rng::seed_from_u64(rng_seed));
                let (a, b) = shuffled.split_at(shuffled.len() / 2);
                let (mut a, mut b) = (a.to_vec(), b.to_vec());
                a.sort_unstable();
                b.sort_unstable();
                Ok(Self::from_groups(&sorted, vec![a, b]))
            }
            Shape::Bridge => {
                need("bridge", 3)?;
                let (left, right) = sorted.split_at(sorted.len() / 2);
                let (bridge, right) = (right[0], &right[1..]);
                let mut cut = BTreeSet::new();
                for &l in left {
                    for &r in right {
                        cut.insert((l, r));
                        cut.insert((r, l));
                    }
                }
                let description = format!(
                    "{} | {} | {} (bridge {bridge})",
                    join(left, ","),
                    bridge,
                    join(right, ",")
                );
                Ok(Partition {
                    nodes: sorted,
                    cut,
                    description,
                })
            }
            Shape::MajoritiesRing => {
                need("majorities-ring", 3)?;
                Ok(Self::majorities_ring(sorted, rng_seed))
            }
            Shape::Custom(groups) => {
                Self::check_grouping(groups, &sorted)?;
                Ok(Self::from_groups(&sorted, groups.clone()))
            }
        }
    }

    /// Reads a grouping written like `1,2|3,4,5` (spaces allowed). Whether the groups cover the cluster is
    /// checked by [`Partition::build`], which knows the nodes.
    pub fn parse_grouping(s: &str) -> Result<Vec<Vec<Endpoint>>, PartitionError> {
        let mut seen = BTreeSet::new();
        let mut groups = Vec::new();
        for (i, part) in s.split('|').enumerate() {
            let mut group = Vec::new();
            for piece in part.split([',', ' ']).filter(|p| !p.trim().is_empty()) {
                let node: Endpoint = piece.trim().parse().map_err(|_| PartitionError::BadNode {
                    text: piece.trim().to_string(),
                    input: s.to_string(),
                })?;
                if !seen.insert(node) {
                    return Err(PartitionError::Duplicate { node });
                }
                group.push(node);
            }
            if group.is_empty() {
                return Err(PartitionError::EmptyGroup {
                    index: i + 1,
                    input: s.to_string(),
                });
            }
            groups.push(group);
        }
        if groups.len() < 2 {
            return Err(PartitionError::OneGroup {
                input: s.to_string(),
            });
        }
        Ok(groups)
    }

    /// Whether traffic from `from` to `to` is cut. Nodes outside the partition are never cut.
    pub fn cut(&self, from: Endpoint, to: Endpoint) -> bool {
        self.cut.contains(&(from, to))
    }

    /// Whether `to` receives what `from` sends (a node always reaches itself).
    pub fn reaches(&self, from: Endpoint, to: Endpoint) -> bool {
        !self.cut(from, to)
    }

    /// A person-readable description, e.g. `1,2 | 3,4,5`.
    pub fn describe(&self) -> String {
        self.description.clone()
    }

    /// The nodes the partition was built over, sorted.
    pub fn nodes(&self) -> &[Endpoint] {
        &self.nodes
    }

    /// Every cut directed link, sorted.
    pub fn cut_links(&self) -> Vec<LinkId> {
        self.cut
            .iter()
            .map(|&(from, to)| LinkId { from, to })
            .collect()
    }

    fn check_grouping(groups: &[Vec<Endpoint>], nodes: &[Endpoint]) -> Result<(), PartitionError> {
        let mut seen = BTreeSet::new();
        for (i, g) in groups.iter().enumerate() {
            if g.is_empty() {
                return Err(PartitionError::EmptyGroup {
                    index: i + 1,
                    input: format_groups(groups, "|"),
                });
            }
            for &n in g {
                if !nodes.contains(&n) {
                    return Err(unknown(n, nodes));
                }
                if !seen.insert(n) {
                    return Err(PartitionError::Duplicate { node: n });
                }
            }
        }
        let missing: Vec<_> = nodes
            .iter()
            .copied()
            .filter(|n| !seen.contains(n))
            .collect();
        if !missing.is_empty() {
            return Err(PartitionError::LeftOut {
                missing: join(&missing, ","),
            });
        }
        if groups.len() < 2 {
            return Err(PartitionError::OneGroup {
                input: format_groups(groups, "|"),
            });
        }
        Ok(())
    }

    fn from_groups(nodes: &[Endpoint], groups: Vec<Vec<Endpoint>>) -> Partition {
        let mut cut = BTreeSet::new();
        for (i, a) in groups.iter().enumerate() {
            for (j, b) in groups.iter().enumerate() {
                if i != j {
                    for &x in a {
                        for &y in b {
                            cut.insert((x, y));
                        }
                    }
                }
            }
        }
        Partition {
            nodes: nodes.to_vec(),
            cut,
            description: format_groups(&groups, " | "),
        }
    }

    /// Nodes sit on a seeded ring; each receives from itself and the nearest ⌊n/2⌋ ring neighbours (the extra
    /// one on the right when the count is odd). The windows are all different because each is shorter than the
    /// ring, and with an odd window the cut is one-way, which only directed links can express.
    fn majorities_ring(nodes: Vec<Endpoint>, seed: u64) -> Partition {
        let n = nodes.len();
        let mut ring = nodes.clone();
        ring.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        let others = n / 2; // majority = n/2 + 1 including itself
        let left = others / 2;
        let right = others - left;
        let mut cut = BTreeSet::new();
        let mut views = Vec::new();
        for (i, &me) in ring.iter().enumerate() {
            let mut sees: Vec<Endpoint> = (0..=left + right)
                .map(|k| ring[(i + n - left + k) % n])
                .collect();
            for &other in &nodes {
                if !sees.contains(&other) {
                    cut.insert((other, me));
                }
            }
            sees.sort_unstable();
            views.push((me, sees));
        }
        views.sort_unstable();
        let description = format!(
            "majorities ring: {}",
            views
                .iter()
                .map(|(me, sees)| format!("{me} hears {}", join(sees, ",")))
                .collect::<Vec<_>>()
                .join("; ")
        );
        Partition {
            nodes,
            cut,
            description,
        }
    }
}

fn unknown(node: Endpoint, nodes: &[Endpoint]) -> PartitionError {
    PartitionError::UnknownNode {
        node,
        known: join(nodes, ","),
    }
}

fn join(nodes: &[Endpoint], sep: &str) -> String {
    nodes
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(sep)
}

fn format_groups(groups: &[Vec<Endpoint>], sep: &str) -> String {
    groups
        .iter()
        .map(|g| join(g, ","))
        .collect::<Vec<_>>()
        .join(sep)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn five() -> Vec<Endpoint> {
        vec![1, 2, 3, 4, 5]
    }

    /// Checks the reachability matrix against a predicate over every ordered pair.
    fn assert_reach(p: &Partition, expect: impl Fn(Endpoint, Endpoint) -> bool) {
        for &a in p.nodes() {
            for &b in p.nodes() {
                let want = a == b || expect(a, b);
                assert_eq!(p.reaches(a, b), want, "{a}->{b} in {}", p.describe());
            }
        }
    }

    #[test]
    fn isolate_cuts_one_node_both_ways() {
        let p = Partition::build(&Shape::Isolate(3), &five(), 0).unwrap();
        assert_reach(&p, |a, b| a != 3 && b != 3);
        assert_eq!(p.describe(), "3 | 1,2,4,5");
        assert!(matches!(
            Partition::build(&Shape::Isolate(9), &five(), 0),
            Err(PartitionError::UnknownNode { node: 9, .. })
        ));
    }

    #[test]
    fn halves_make_a_minority_and_a_majority() {
        let p = Partition::build(&Shape::Halves, &[5, 4, 3, 2, 1], 0).unwrap();
        assert_eq!(p.describe(), "1,2 | 3,4,5");
        let side = |n: Endpoint| n <= 2;
        assert_reach(&p, |a, b| side(a) == side(b));
        assert_eq!(p.cut_links().len(), 2 * 2 * 3);
    }

    #[test]
    fn random_halves_are_seeded_and_still_halves() {
        for seed in 0..20 {
            let p = Partition::build(&Shape::RandomHalves, &five(), seed).unwrap();
            assert_eq!(
                p,
                Partition::build(&Shape::RandomHalves, &five(), seed).unwrap()
            );
            // Find the minority: the nodes node 1 cannot reach, or node 1's own side.
            let side1: Vec<_> = five().into_iter().filter(|&n| p.reaches(1, n)).collect();
            assert!(
                side1.len() == 2 || side1.len() == 3,
                "seed {seed}: {}",
                p.describe()
            );
            assert_reach(&p, |a, b| side1.contains(&a) == side1.contains(&b));
        }
        let differ = (0..20).any(|s| {
            Partition::build(&Shape::RandomHalves, &five(), s)
                .unwrap()
                .describe()
                != "1,2 | 3,4,5"
        });
        assert!(differ, "twenty seeds all gave the sorted halves");
    }

    #[test]
    fn bridge_node_sees_both_sides_which_cannot_see_each_other() {
        let p = Partition::build(&Shape::Bridge, &five(), 0).unwrap();
        let (left, bridge, right) = ([1, 2], 3, [4, 5]);
        assert_reach(&p, |a, b| {
            a == bridge
                || b == bridge
                || (left.contains(&a) == left.contains(&b)
                    && right.contains(&a) == right.contains(&b))
        });
        assert_eq!(p.describe(), "1,2 | 3 | 4,5 (bridge 3)");
        assert!(matches!(
            Partition::build(&Shape::Bridge, &[1, 2], 0),
            Err(PartitionError::TooFewNodes {
                need: 3,
                have: 2,
                ..
            })
        ));
    }

    #[test]
    fn majorities_ring_gives_every_node_a_distinct_majority() {
        for n in 3..=9u64 {
            let nodes: Vec<Endpoint> = (1..=n).collect();
            for seed in 0..10 {
                let p = Partition::build(&Shape::MajoritiesRing, &nodes, seed).unwrap();
                let mut views = BTreeSet::new();
                for &me in &nodes {
                    let hears: Vec<_> = nodes
                        .iter()
                        .copied()
                        .filter(|&o| p.reaches(o, me))
                        .collect();
                    assert!(
                        hears.len() as u64 > n / 2,
                        "n={n} seed={seed}: {me} hears only {hears:?}"
                    );
                    assert!(
                        hears.len() < n as usize,
                        "n={n} seed={seed}: {me} hears everyone"
                    );
                    assert!(
                        views.insert(hears.clone()),
                        "n={n} seed={seed}: view {hears:?} repeated"
                    );
                }
            }
        }
    }

    #[test]
    fn custom_grouping_cuts_between_groups_only() {
        let groups = Partition::parse_grouping("1,2|3, 4 ,5").unwrap();
        assert_eq!(groups, vec![vec![1, 2], vec![3, 4, 5]]);
        let p = Partition::build(&Shape::Custom(groups), &five(), 0).unwrap();
        assert_eq!(p.describe(), "1,2 | 3,4,5");
        assert_reach(&p, |a, b| (a <= 2) == (b <= 2));
        let three = Partition::parse_grouping("1|2|3,4,5").unwrap();
        let p = Partition::build(&Shape::Custom(three), &five(), 0).unwrap();
        assert!(p.cut(1, 2) && p.cut(2, 1) && p.reaches(3, 5));
    }

    #[test]
    fn bad_groupings_get_clear_errors() {
        let e = Partition::parse_grouping("1,2||3").unwrap_err();
        assert_eq!(
            e,
            PartitionError::EmptyGroup {
                index: 2,
                input: "1,2||3".into()
            }
        );
        assert!(e.to_string().contains("group 2"), "{e}");
        let e = Partition::parse_grouping("1,x|3").unwrap_err();
        assert!(e.to_string().contains("\"x\""), "{e}");
        assert_eq!(
            Partition::parse_grouping("1,2|2,3").unwrap_err(),
            PartitionError::Duplicate { node: 2 }
        );
        assert!(matches!(
            Partition::parse_grouping("1,2,3"),
            Err(PartitionError::OneGroup { .. })
        ));

        let unknown = Partition::build(&Shape::Custom(vec![vec![1, 2], vec![3, 9]]), &[1, 2, 3], 0);
        let e = unknown.unwrap_err();
        assert_eq!(
            e,
            PartitionError::UnknownNode {
                node: 9,
                known: "1,2,3".into()
            }
        );
        assert_eq!(e.to_string(), "node 9 is not in the cluster (nodes: 1,2,3)");
        let left_out = Partition::build(&Shape::Custom(vec![vec![1], vec![3]]), &five(), 0);
        let e = left_out.unwrap_err();
        assert_eq!(
            e,
            PartitionError::LeftOut {
                missing: "2,4,5".into()
            }
        );
        assert!(e.to_string().contains("leaves out node(s) 2,4,5"), "{e}");
    }

    #[test]
    fn shapes_read_from_text() {
        assert_eq!("isolate:3".parse::<Shape>().unwrap(), Shape::Isolate(3));
        assert_eq!("isolate 4".parse::<Shape>().unwrap(), Shape::Isolate(4));
        assert_eq!("halves".parse::<Shape>().unwrap(), Shape::Halves);
        assert_eq!(
            "majorities-ring".parse::<Shape>().unwrap(),
            Shape::MajoritiesRing
        );
        assert_eq!(
            "1,2|3".parse::<Shape>().unwrap(),
            Shape::Custom(vec![vec![1, 2], vec![3]])
        );
        assert!(matches!(
            "sideways".parse::<Shape>(),
            Err(PartitionError::UnknownShape { .. })
        ));
        for s in [
            "isolate:3",
            "halves",
            "random-halves",
            "bridge",
            "majorities-ring",
            "1,2|3",
        ] {
            assert_eq!(s.parse::<Shape>().unwrap().to_string(), s);
        }
    }
}
