//! The log's invariants, re-checked from a store alone (tests only, feature `testing`): every
//! acknowledged entry is there at its index, every stored checkpoint verifies and no two of one size
//! differ, inclusion proofs verify, and every root ever seen is consistent with the newest. Shared
//! by the directory store's fault tests and the PostgreSQL store's, so both stores are held to one
//! definition.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::audit::audit;
use crate::merkle::{consistency_proof, inclusion_proof, verify_consistency, verify_inclusion};
use crate::note::Verifier;
use crate::{checkpoint, Hash, Log, LogError, Storage, TileReader};

/// What a test has seen of a log: what was acknowledged, and every root of every size.
#[derive(Default)]
pub struct Invariants {
    /// Entries acknowledged so far, by index.
    pub acknowledged: BTreeMap<u64, Vec<u8>>,
    /// Every root seen for each size (from `checkpoints/` and from acknowledgements).
    pub roots: BTreeMap<u64, Hash>,
}

impl Invariants {
    /// Appends `entries` and, if the log acknowledges them, records them and the new root.
    pub fn append(&mut self, log: &mut Log, entries: &[Vec<u8>]) -> Result<u64, LogError> {
        let refs: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
        let (first, published) = log.append(&refs)?;
        self.acknowledge(first, entries);
        self.roots
            .insert(published.checkpoint.size, published.checkpoint.root);
        Ok(first)
    }

    /// Records entries acknowledged from `first` on.
    pub fn acknowledge(&mut self, first: u64, entries: &[Vec<u8>]) {
        for (i, entry) in entries.iter().enumerate() {
            self.acknowledged.insert(first + i as u64, entry.clone());
        }
    }

    /// Panics, saying which, if any invariant fails on `storage`.
    pub fn check(&mut self, storage: Arc<dyn Storage>, verifier: &Verifier) {
        let mut entries = BTreeMap::new();
        let audited = audit(storage.as_ref(), verifier, |i, e| {
            entries.insert(i, e.to_vec());
        })
        .unwrap_or_else(|e| panic!("audit failed: {e}"));
        for (index, bytes) in &self.acknowledged {
            assert_eq!(
                entries.get(index),
                Some(bytes),
                "acknowledged entry {index} lost or changed"
            );
        }
        for name in storage.list("checkpoints").unwrap() {
            let note = storage
                .read(&format!("checkpoints/{name}"))
                .unwrap()
                .unwrap();
            let cp = checkpoint::open(&note, verifier, &[]).unwrap().checkpoint;
            assert_eq!(cp.size.to_string(), name);
            if let Some(root) = self.roots.insert(cp.size, cp.root) {
                assert_eq!(
                    root, cp.root,
                    "two checkpoints of size {} with different roots",
                    cp.size
                );
            }
        }
        let size = audited.checkpoint.size;
        let mut reader = TileReader::new(storage, size);
        for index in [0, size / 3, size / 2, size.saturating_sub(1)] {
            if index < size {
                let proof = inclusion_proof(&mut reader, index, size).unwrap();
                let leaf = &audited.leaf_hashes[index as usize];
                verify_inclusion(leaf, index, size, &proof, &audited.checkpoint.root).unwrap();
            }
        }
        for (&old, old_root) in self.roots.range(1..=size.max(1)) {
            let proof = consistency_proof(&mut reader, old, size).unwrap();
            verify_consistency(old, size, &proof, old_root, &audited.checkpoint.root).unwrap();
        }
    }
}
