//! A transparency log following C2SP: tlog-tiles storage and paths, RFC 6962 hashing and proofs,
//! signed-note, tlog-checkpoint, tlog-cosignature and tlog-proof. Knows nothing of elections or HTTP:
//! it stores opaque entries, signs checkpoints, and proves inclusion and consistency.
//!
//! Spec-level modules (`hash`, `merkle`, `note`, `checkpoint`, `tile`, `tproof`) have no I/O; `storage`
//! and `log` add durability on top (group commit is the caller's: the server's writer batches). The
//! fault-injecting `FaultyStorage` is a test double, built only for tests (feature `testing`).

pub mod audit;
pub mod checkpoint;
#[cfg(any(test, feature = "testing"))]
pub mod faulty;
pub mod hash;
#[cfg(any(test, feature = "testing"))]
pub mod invariants;
pub mod log;
pub mod merkle;
pub mod note;
pub mod storage;
pub mod tile;
pub mod tproof;
pub mod witness;

#[cfg(any(test, feature = "testing"))]
pub use faulty::{Fault, FaultyStorage};
pub use hash::{leaf_hash, node_hash, Hash};
pub use log::{
    checkpoints_path, Log, LogError, Published, Publishing, TileCache, TileReader, CHECKPOINT_PATH,
};
pub use storage::{DirStorage, ReadOnlyDir, Storage};
