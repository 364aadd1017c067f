//! Node kinds: what squall knows about one Raft implementation (how to frame, classify, observe and drive it).

pub mod etcd;
