//! How a connection's bytes are cut into frames: the choice a node kind makes, and the units the non-default
//! framings hand the pipe.
//!
//! [`Framing::LengthPrefixed`] is tarpc's 4-byte length prefix, handled by `frame` with its zero-copy path.
//! The others go through `Unit`s: each unit is a run of bytes to write on, and says whether it is a message
//! (which faults may drop, hold, delay, duplicate, and which the classifier labels), protocol bytes that must
//! reach the other side intact and in order (an HTTP head, a chunk terminator), or opaque bytes that link faults
//! apply to as a whole.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// How the proxy finds frame boundaries in a connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Framing {
    /// A 4-byte big-endian length, then that many payload bytes (tarpc's default framing): every frame is a
    /// message.
    #[default]
    LengthPrefixed,
    /// No frames: each read from the socket is one unlabelled unit. Every link fault applies (a loss drops a
    /// whole read, which most protocols take as a broken connection); message filters match nothing, and a
    /// hold holds reads, not messages.
    Bytes,
    /// etcd's peer protocol, rafthttp: HTTP/1.1 requests and responses, with the raft messages inside them
    /// as frames ([`rafthttp`](super::rafthttp) tells where they are and how they are re-emitted).
    RaftHttp,
}

impl Framing {
    /// The name a kind file uses for this framing.
    pub fn name(self) -> &'static str {
        match self {
            Framing::LengthPrefixed => "length-prefixed",
            Framing::Bytes => "bytes",
            Framing::RaftHttp => "rafthttp",
        }
    }

    /// The framing a kind file names, or `None` for an unknown name.
    pub fn from_name(name: &str) -> Option<Framing> {
        [Framing::LengthPrefixed, Framing::Bytes, Framing::RaftHttp]
            .into_iter()
            .find(|f| f.name() == name)
    }

    /// Whether frames carry messages a classifier can label (and so filters, hold and step make sense).
    pub fn has_messages(self) -> bool {
        !matches!(self, Framing::Bytes)
    }
}

/// What a unit is, for the faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnitKind {
    /// One message: labelled, and every fault applies. `whole_request` marks a message that is a whole HTTP
    /// request (rafthttp's pipeline POST): dropping it also closes the connection, since its sender would
    /// otherwise wait for a reply forever; and it is never duplicated (a second reply would confuse the
    /// sender's HTTP client).
    Message { whole_request: bool },
    /// Protocol bytes: never dropped, held or duplicated, only kept in order behind delayed messages.
    Protocol,
    /// Bytes without a message inside: every fault but the filters applies.
    Opaque,
}

/// A run of bytes cut out of the stream, as it is to be written on.
#[derive(Debug, Clone)]
pub(crate) struct Unit {
    /// The bytes to write (re-encoded where the framing needs it, e.g. re-chunked).
    pub wire: Bytes,
    /// For a message, the bytes the classifier reads (its protobuf), else `None`.
    pub payload: Option<Bytes>,
    /// What faults may do to it.
    pub kind: UnitKind,
}

impl Unit {
    pub(crate) fn protocol(wire: Bytes) -> Unit {
        Unit {
            wire,
            payload: None,
            kind: UnitKind::Protocol,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_names_round_trip() {
        for f in [Framing::LengthPrefixed, Framing::Bytes, Framing::RaftHttp] {
            assert_eq!(Framing::from_name(f.name()), Some(f));
        }
        assert_eq!(Framing::from_name("http"), None);
    }
}
