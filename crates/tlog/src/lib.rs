//! A transparency log following C2SP tlog-tiles, with RFC 6962 hashing. Knows nothing of elections or
//! HTTP: it stores opaque entries, signs checkpoints, and proves inclusion and consistency.

pub mod hash;
pub mod merkle;

pub use hash::{leaf_hash, node_hash, Hash};
