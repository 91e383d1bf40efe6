//! A transparency log following C2SP: tlog-tiles storage and paths, RFC 6962 hashing and proofs,
//! signed-note, tlog-checkpoint, tlog-cosignature and tlog-proof. Knows nothing of elections or HTTP:
//! it stores opaque entries, signs checkpoints, and proves inclusion and consistency.
//!
//! Spec-level modules (`hash`, `merkle`, `note`, `checkpoint`, `tile`, `tproof`) have no I/O; `storage`,
//! `log` and `sequencer` add durability and group commit on top.

pub mod audit;
pub mod checkpoint;
pub mod hash;
pub mod log;
pub mod merkle;
pub mod note;
pub mod sequencer;
pub mod storage;
pub mod tile;
pub mod tproof;
pub mod witness;

pub use hash::{leaf_hash, node_hash, Hash};
pub use log::{Log, LogError, Published, TileCache, TileReader};
pub use storage::{DirStorage, FaultyStorage, ReadOnlyDir, Storage};
