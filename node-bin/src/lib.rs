//! squall's Raft node: the consensus core, its storage, the replicated key-value store, the RPC wire and
//! the server that drives them.

pub mod cli;
pub mod client;
pub mod kv;
pub mod paxos;
pub mod raft;
pub mod rpc;
pub mod server;
pub mod storage;
pub mod transport;
