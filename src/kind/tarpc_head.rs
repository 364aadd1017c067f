//! The head of a tarpc request frame, as squall's own node kinds (`squall`, `paxos`) send their peer calls:
//! the envelope up to the call's message, which a classifier mirrors with types that stop where they have
//! read enough (the proxy streams big frames and hands a classifier only their first bytes).

use bincode::Options as _;
use serde::Deserialize;

/// tarpc's framing uses bincode with these options (tokio-serde's default); trailing bytes are allowed so a
/// prefix can be read.
pub fn options() -> impl bincode::Options {
    bincode::DefaultOptions::new().allow_trailing_bytes()
}

/// Mirrors `tarpc::ClientMessage`: a request whose message is read as `M`, or a cancellation.
#[derive(Deserialize)]
pub enum ClientMessageHead<M> {
    /// A call.
    Request(RequestHead<M>),
    /// A cancellation (nothing in it is read).
    #[allow(dead_code)]
    Cancel,
}

/// Mirrors `tarpc::Request` up to its message.
#[derive(Deserialize)]
pub struct RequestHead<M> {
    #[allow(dead_code)]
    context: tarpc::context::Context,
    #[allow(dead_code)]
    id: u64,
    /// The call's message, read as far as `M` goes.
    pub message: M,
}

impl<M> ClientMessageHead<M> {
    /// The call's message, `None` for a cancellation.
    pub fn into_message(self) -> Option<M> {
        match self {
            ClientMessageHead::Request(r) => Some(r.message),
            ClientMessageHead::Cancel => None,
        }
    }
}
