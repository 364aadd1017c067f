//! How the network fault vocabulary ([`crate::command::fault`], re-exported here) maps onto the chaos crate's
//! proxy faults and partition shapes.

use squall_chaos::{Distribution, Fault, Shape};

pub use crate::command::fault::*;

/// The proxy fault of a [`FaultKind`].
pub trait ToChaos {
    /// The proxy fault that does this.
    fn to_chaos(&self) -> Fault;
}

impl ToChaos for FaultKind {
    fn to_chaos(&self) -> Fault {
        match *self {
            FaultKind::Cut | FaultKind::Blackhole => Fault::Blackhole,
            FaultKind::Delay { delay, jitter } => {
                let jitter = jitter.unwrap_or(delay / 10);
                Fault::Latency {
                    base: delay,
                    jitter,
                    dist: if jitter.is_zero() {
                        Distribution::Fixed
                    } else {
                        Distribution::Uniform
                    },
                }
            }
            FaultKind::Loss(p) => Fault::Loss { p: p / 100.0 },
            FaultKind::Dup(p) => Fault::Duplicate { p: p / 100.0 },
            FaultKind::Reorder(max_extra) => Fault::Reorder { max_extra, p: 1.0 },
            FaultKind::Bandwidth(bytes_per_sec) => Fault::Bandwidth { bytes_per_sec },
            FaultKind::Reset => Fault::Reset,
            FaultKind::Hold => Fault::Hold,
        }
    }
}

/// The chaos crate's shape for a partition shape.
pub fn chaos_shape(shape: &PartitionShape) -> Shape {
    match shape {
        PartitionShape::Halves => Shape::Halves,
        PartitionShape::RandomHalves => Shape::RandomHalves,
        PartitionShape::Bridge => Shape::Bridge,
        PartitionShape::Ring => Shape::MajoritiesRing,
        PartitionShape::Groups(groups) => Shape::Custom(groups.clone()),
    }
}
