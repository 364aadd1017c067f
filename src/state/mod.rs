//! Pure dashboard state: the session's event type, the cluster state folded from it, and the view state.
//!
//! Nothing here does I/O or reads a clock. The live cluster layer and replay both feed
//! [`ClusterState::apply`], which is why a replayed session shows exactly what the live one showed.

mod cluster;
mod compress;
mod event;
pub mod fixture;
mod holdback;
mod lane;
mod membership;
mod series;
mod view;

pub use cluster::{
    CLIENT_OPS_CAPACITY, ClientOpView, ClusterState, FEED_CAPACITY, FeedKind, FeedLine, LinkRate,
    NodeView, WorkloadView, describe_links, describe_node, left_text,
};
pub use compress::StatusCompressor;
pub use event::{
    ActiveFault, Event, FaultEnd, HeldView, LinkState, LinkView, MembershipStep, ProcessState,
    Stamped, Verdict, WorkloadKind,
};
pub use holdback::HoldBack;
pub use lane::{LANE_WINDOW_MS, Lane, LaneRole};
pub use membership::{ConfigView, MemberRole, role_in};
pub use series::{RATE_HISTORY_SECS, RateSeries};
pub use view::{Tab, ViewState};

#[cfg(test)]
mod tests;
