//! RFC 6962 hashing: leaf = SHA-256(0x00 || entry), node = SHA-256(0x01 || left || right), and the
//! empty tree hashes to SHA-256 of nothing.

use std::fmt;

use base64::Engine as _;
use sha2::{Digest, Sha256};

pub const HASH_SIZE: usize = 32;

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; HASH_SIZE]);

impl Hash {
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }

    /// Standard base64 of exactly 32 bytes.
    pub fn from_base64(text: &str) -> Option<Hash> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()?;
        Some(Hash(bytes.try_into().ok()?))
    }

    pub fn from_slice(bytes: &[u8]) -> Option<Hash> {
        Some(Hash(bytes.try_into().ok()?))
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_base64())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

/// The root of the empty tree.
pub fn empty_root() -> Hash {
    Hash(Sha256::digest([]).into())
}

pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0u8]);
    hasher.update(entry);
    Hash(hasher.finalize().into())
}

pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut block = [0u8; 1 + 2 * HASH_SIZE];
    block[0] = 1;
    block[1..33].copy_from_slice(&left.0);
    block[33..].copy_from_slice(&right.0);
    Hash(Sha256::digest(block).into())
}

/// MTH of a list of leaf hashes (RFC 6962 section 2.1), iteratively: O(n) hashes, O(log n) memory.
pub fn root_of(leaf_hashes: &[Hash]) -> Hash {
    let mut range = crate::merkle::CompactRange::new();
    for hash in leaf_hashes {
        range.push(*hash);
    }
    range.root()
}

/// Plain SHA-256 of `bytes` (no RFC 6962 prefix), for values that are not tree nodes.
/// The root of a perfect subtree: MTH of a power-of-two number of hashes (a full tile's, say).
pub fn perfect_root(hashes: &[Hash]) -> Hash {
    assert!(hashes.len().is_power_of_two(), "a perfect subtree");
    let mut level: Vec<Hash> = hashes.to_vec();
    while level.len() > 1 {
        level = level
            .chunks_exact(2)
            .map(|pair| node_hash(&pair[0], &pair[1]))
            .collect();
    }
    level[0]
}

pub fn sha256(bytes: &[u8]) -> Hash {
    Hash(Sha256::digest(bytes).into())
}
