//! Pure dashboard state: the session's event type, the cluster state folded from it, and the view state.
//!
//! Nothing here does I/O or reads a clock. The live cluster layer and replay both feed
//! [`ClusterState::apply`], which is why a replayed session shows exactly what the live one showed.

mod cluster;
mod compress;
mod config;
mod event;
mod feed;
pub mod fixture;
pub mod flow;
pub mod held;
mod holdback;
mod hosts;
mod lane;
mod links;
mod membership;
mod narrate;
mod series;
mod view;

pub use crate::check::brief::{BriefStatus, MessageCounts};
pub use cluster::{
    CLIENT_OPS_CAPACITY, ClientOpView, ClusterState, LinkRate, NodeView, WorkloadView,
    describe_node, role_label,
};
pub use compress::StatusCompressor;
pub use config::{ConfigView, MemberRole, role_in};
pub use event::{
    ActiveFault, DEFAULT_KIND, Event, FaultEnd, HeldView, HostChange, KindRecord, LinkState,
    LinkView, MembershipStep, ProcessState, Stamped, Verdict, WorkloadKind,
};
pub use feed::{FEED_CAPACITY, FeedKind, FeedLine};
pub use holdback::HoldBack;
pub use lane::{LANE_WINDOW_MS, Lane, LaneRole};
pub use links::{describe_links, left_text};
pub use series::{RATE_HISTORY_SECS, RateSeries};
pub use view::{Tab, ViewState};

#[cfg(test)]
mod tests;
