//! Merkle tree math: compact ranges, proof generation from any source of node hashes, and
//! verification of inclusion and consistency proofs (RFC 6962 / RFC 9162), including the subtree
//! generalisations of draft-ietf-plants-merkle-tree-certs section 4 used by tlog-witness.
//!
//! Nodes are named by (level, index): level 0 holds leaf hashes; node (l, i) covers leaves
//! `[i * 2^l, (i + 1) * 2^l)`. Only such *perfect* nodes are stored; the hash of any other range the
//! proofs need is folded from the perfect nodes that tile it.

use std::fmt;

use crate::hash::{empty_root, node_hash, Hash};

/// The longest proof we accept: a tree has at most 2^63 leaves, so no path is longer.
pub const MAX_PROOF_HASHES: usize = 64;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProofError {
    /// A size or index that cannot hold (index >= size, size1 > size2, an invalid subtree, ...).
    Range(String),
    /// The proof has the wrong number of hashes for these sizes.
    Length { got: usize, want: usize },
    /// The hashes do not chain to the claimed root.
    RootMismatch { which: &'static str },
}

impl fmt::Display for ProofError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProofError::Range(why) => write!(f, "{why}"),
            ProofError::Length { got, want } => {
                write!(f, "proof has {got} hashes, expected {want}")
            }
            ProofError::RootMismatch { which } => write!(f, "proof does not lead to the {which}"),
        }
    }
}

impl std::error::Error for ProofError {}

/// The perfect subtrees that cover `[0, size)`, left to right: enough to append and to compute roots.
/// Invariant: `hashes[k]` is the node covering the k-th set bit of `size`, from the most significant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompactRange {
    size: u64,
    hashes: Vec<Hash>,
}

impl CompactRange {
    pub fn new() -> CompactRange {
        CompactRange::default()
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn push(&mut self, leaf: Hash) {
        let mut hash = leaf;
        // Each trailing one bit of the old size is a perfect subtree that the new leaf completes.
        let mut size = self.size;
        while size & 1 == 1 {
            let left = self.hashes.pop().expect("invariant: one hash per set bit");
            hash = node_hash(&left, &hash);
            size >>= 1;
        }
        self.hashes.push(hash);
        self.size += 1;
    }

    pub fn root(&self) -> Hash {
        let mut iter = self.hashes.iter().rev();
        let Some(mut root) = iter.next().copied() else {
            return empty_root();
        };
        for left in iter {
            root = node_hash(left, &root);
        }
        root
    }

    /// Builds a range from its node hashes (as read from storage), checking the count matches `size`.
    pub fn from_parts(size: u64, hashes: Vec<Hash>) -> Option<CompactRange> {
        (hashes.len() == size.count_ones() as usize).then_some(CompactRange { size, hashes })
    }

    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }
}

/// The perfect nodes covering `[begin, end)` (a valid subtree or a prefix of the tree), left to right,
/// as (level, index).
pub fn decompose(begin: u64, end: u64) -> Vec<(u32, u64)> {
    let mut nodes = Vec::new();
    let mut at = begin;
    while at < end {
        // The largest aligned perfect node starting at `at` that fits before `end`.
        let mut level = if at == 0 { 63 } else { at.trailing_zeros() };
        while level > 0 && (1u64.checked_shl(level).is_none_or(|w| at + w > end)) {
            level -= 1;
        }
        nodes.push((level, at >> level));
        at += 1u64 << level;
    }
    nodes
}

/// A source of perfect node hashes: storage tiles, or an in-memory tree in tests.
pub trait NodeSource {
    type Error;
    fn node(&mut self, level: u32, index: u64) -> Result<Hash, Self::Error>;

    /// MTH of leaves `[begin, end)` folded from its perfect nodes.
    fn range_hash(&mut self, begin: u64, end: u64) -> Result<Hash, Self::Error> {
        let nodes = decompose(begin, end);
        let mut hash: Option<Hash> = None;
        for &(level, index) in nodes.iter().rev() {
            let node = self.node(level, index)?;
            hash = Some(match hash {
                None => node,
                Some(right) => node_hash(&node, &right),
            });
        }
        Ok(hash.unwrap_or_else(empty_root))
    }
}

fn largest_power_of_two_below(n: u64) -> u64 {
    debug_assert!(n > 1);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// RFC 6962 PATH(index, D[0:size]): the inclusion proof, leaf sibling first.
pub fn inclusion_proof<S: NodeSource>(
    source: &mut S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, ProofErrorOr<S::Error>> {
    if index >= size {
        return Err(ProofErrorOr::Proof(ProofError::Range(format!(
            "index {index} is not below size {size}"
        ))));
    }
    let mut proof = Vec::new();
    path(source, index, 1, 0, size, &mut proof).map_err(ProofErrorOr::Source)?;
    Ok(proof)
}

/// The inclusion proof of perfect node (level, index) in the tree of `size` leaves: the leaf path with
/// the levels below the node left out.
pub fn node_inclusion_proof<S: NodeSource>(
    source: &mut S,
    level: u32,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, ProofErrorOr<S::Error>> {
    path_shape(level, index, size).map_err(ProofErrorOr::Proof)?;
    let mut proof = Vec::new();
    path(source, index << level, 1 << level, 0, size, &mut proof).map_err(ProofErrorOr::Source)?;
    Ok(proof)
}

/// RFC 6962 PATH over `[lo, hi)` for leaf offset `m`, stopping at ranges of `width` leaves or fewer.
fn path<S: NodeSource>(
    source: &mut S,
    m: u64,
    width: u64,
    lo: u64,
    hi: u64,
    out: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    let n = hi - lo;
    if n <= width {
        return Ok(());
    }
    let k = largest_power_of_two_below(n);
    if m < k {
        path(source, m, width, lo, lo + k, out)?;
        out.push(source.range_hash(lo + k, hi)?);
    } else {
        path(source, m - k, width, lo + k, hi, out)?;
        out.push(source.range_hash(lo, lo + k)?);
    }
    Ok(())
}

/// The proof [`verify_subtree_consistency`] checks.
pub fn subtree_consistency_proof<S: NodeSource>(
    source: &mut S,
    start: u64,
    end: u64,
    size: u64,
) -> Result<Vec<Hash>, ProofErrorOr<S::Error>> {
    if !is_valid_subtree(start, end) || end > size {
        return Err(ProofErrorOr::Proof(ProofError::Range(format!(
            "[{start}, {end}) is not a subtree of a tree of size {size}"
        ))));
    }
    if start == end || (start == 0 && end == size) {
        return Ok(Vec::new());
    }
    let width = end - start;
    if width.is_power_of_two() {
        let level = width.trailing_zeros();
        return node_inclusion_proof(source, level, start >> level, size);
    }
    let level = end.trailing_zeros();
    let index = (end - 1) >> level;
    let mut proof = vec![source.node(level, index).map_err(ProofErrorOr::Source)?];
    proof.extend(node_inclusion_proof(source, level, index, size)?);
    Ok(proof)
}

/// RFC 6962 PROOF(size1, D[0:size2]): the consistency proof.
pub fn consistency_proof<S: NodeSource>(
    source: &mut S,
    size1: u64,
    size2: u64,
) -> Result<Vec<Hash>, ProofErrorOr<S::Error>> {
    if size1 > size2 {
        return Err(ProofErrorOr::Proof(ProofError::Range(format!(
            "size {size1} is beyond size {size2}"
        ))));
    }
    let mut proof = Vec::new();
    if size1 > 0 && size1 < size2 {
        subproof(source, size1, 0, size2, true, &mut proof).map_err(ProofErrorOr::Source)?;
    }
    Ok(proof)
}

fn subproof<S: NodeSource>(
    source: &mut S,
    m: u64,
    lo: u64,
    hi: u64,
    whole: bool,
    out: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    let n = hi - lo;
    if m == n {
        if !whole {
            out.push(source.range_hash(lo, hi)?);
        }
        return Ok(());
    }
    let k = largest_power_of_two_below(n);
    if m <= k {
        subproof(source, m, lo, lo + k, whole, out)?;
        out.push(source.range_hash(lo + k, hi)?);
    } else {
        subproof(source, m - k, lo + k, hi, false, out)?;
        out.push(source.range_hash(lo, lo + k)?);
    }
    Ok(())
}

/// Either a proof could not exist, or the node source failed.
#[derive(Debug)]
pub enum ProofErrorOr<E> {
    Proof(ProofError),
    Source(E),
}

impl<E: fmt::Display> fmt::Display for ProofErrorOr<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProofErrorOr::Proof(e) => write!(f, "{e}"),
            ProofErrorOr::Source(e) => write!(f, "{e}"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for ProofErrorOr<E> {}

/// The shape of the path from node (level, index) to the root of a tree of `size` leaves: for each
/// sibling, the level of the node it joins and whether it is on the left. Checks the node is inside the
/// tree.
///
/// Below the point where the node's path meets the tree's right edge (`inner` levels), there is one
/// sibling per level, on either side (the topmost right one may be the incomplete right-hand range).
/// Above it, the path follows the right edge: a left sibling for each set bit of the node's index there,
/// and no sibling where the bit is clear.
fn path_shape(level: u32, index: u64, size: u64) -> Result<Vec<(u32, bool)>, ProofError> {
    let covered = 1u64
        .checked_shl(level)
        .and_then(|w| index.checked_add(1)?.checked_mul(w));
    if covered.is_none_or(|end| end > size) {
        return Err(ProofError::Range(format!(
            "node ({level}, {index}) is not inside a tree of size {size}"
        )));
    }
    let last = (size - 1) >> level;
    let inner = 64 - (index ^ last).leading_zeros();
    let mut shape = Vec::new();
    for i in 0..inner {
        shape.push((level + i, (index >> i) & 1 == 1));
    }
    let mut position = index >> inner;
    let mut at = level + inner;
    while position != 0 {
        if position & 1 == 1 {
            shape.push((at, true));
        }
        position >>= 1;
        at += 1;
    }
    Ok(shape)
}

/// Climbs from `hash` at node (level, index) to the root of a tree of `size` leaves using `proof`.
fn root_from_node(
    level: u32,
    index: u64,
    size: u64,
    hash: Hash,
    proof: &[Hash],
) -> Result<Hash, ProofError> {
    let shape = path_shape(level, index, size)?;
    if proof.len() != shape.len() {
        return Err(ProofError::Length {
            got: proof.len(),
            want: shape.len(),
        });
    }
    Ok(shape
        .iter()
        .zip(proof)
        .fold(hash, |hash, (&(_, left), sibling)| {
            if left {
                node_hash(sibling, &hash)
            } else {
                node_hash(&hash, sibling)
            }
        }))
}

pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::Range(format!(
            "index {index} is not below size {size}"
        )));
    }
    let computed = root_from_node(0, index, size, *leaf, proof)?;
    if computed != *root {
        return Err(ProofError::RootMismatch { which: "root" });
    }
    Ok(())
}

/// RFC 9162 section 2.1.4.2. Equal sizes need equal roots and an empty proof; a proof from the empty
/// tree to a larger one proves nothing and is refused.
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    proof: &[Hash],
    root1: &Hash,
    root2: &Hash,
) -> Result<(), ProofError> {
    if size1 > size2 {
        return Err(ProofError::Range(format!(
            "size {size1} is beyond size {size2}"
        )));
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(ProofError::Length {
                got: proof.len(),
                want: 0,
            });
        }
        if size1 == 0 && *root1 != empty_root() {
            // The empty tree has exactly one root.
            return Err(ProofError::RootMismatch {
                which: "first root",
            });
        }
        return if root1 == root2 {
            Ok(())
        } else {
            Err(ProofError::RootMismatch {
                which: "second root",
            })
        };
    }
    if size1 == 0 {
        return Err(ProofError::Range(
            "a consistency proof from the empty tree proves nothing".into(),
        ));
    }
    verify_subtree_consistency(0, size1, size2, proof, root1, root2).map_err(|e| match e {
        ProofError::RootMismatch {
            which: "subtree hash",
        } => ProofError::RootMismatch {
            which: "first root",
        },
        ProofError::RootMismatch { which: "root" } => ProofError::RootMismatch {
            which: "second root",
        },
        other => other,
    })
}

/// Whether `[start, end)` is a subtree in the sense of the MTC draft: `start` is a multiple of the
/// smallest power of two at least `end - start`.
pub fn is_valid_subtree(start: u64, end: u64) -> bool {
    if start > end {
        return false;
    }
    let width = (end - start).max(1);
    let ceil = width.checked_next_power_of_two();
    match ceil {
        Some(ceil) => start.is_multiple_of(ceil),
        None => start == 0,
    }
}

/// Inclusion of leaf `index` in the subtree `[start, end)` whose hash is `subtree`. A valid subtree
/// is shaped exactly like a tree of `end - start` leaves, so this is an ordinary inclusion proof there.
pub fn verify_subtree_inclusion(
    leaf: &Hash,
    index: u64,
    start: u64,
    end: u64,
    proof: &[Hash],
    subtree: &Hash,
) -> Result<(), ProofError> {
    if !is_valid_subtree(start, end) {
        return Err(ProofError::Range(format!(
            "[{start}, {end}) is not a valid subtree"
        )));
    }
    if index < start || index >= end {
        return Err(ProofError::Range(format!(
            "index {index} is outside [{start}, {end})"
        )));
    }
    verify_inclusion(leaf, index - start, end - start, proof, subtree)
}

/// That the subtree `[start, end)` with hash `subtree` sits at those leaves of the tree of `size` with
/// root `root`. With `start = 0` this is RFC 9162 consistency from `end` to `size`.
///
/// The proof is the inclusion path, in the tree of `size`, of the last perfect node of the subtree,
/// preceded by that node's hash unless the subtree is itself a perfect node. The subtree hash is then
/// recomputed from that node and the left siblings on its path that lie inside the subtree.
pub fn verify_subtree_consistency(
    start: u64,
    end: u64,
    size: u64,
    proof: &[Hash],
    subtree: &Hash,
    root: &Hash,
) -> Result<(), ProofError> {
    if !is_valid_subtree(start, end) {
        return Err(ProofError::Range(format!(
            "[{start}, {end}) is not a valid subtree"
        )));
    }
    if end > size {
        return Err(ProofError::Range(format!(
            "subtree end {end} is beyond size {size}"
        )));
    }
    if proof.len() > MAX_PROOF_HASHES {
        return Err(ProofError::Length {
            got: proof.len(),
            want: MAX_PROOF_HASHES,
        });
    }
    if start == end {
        // The empty subtree: only its own hash needs checking.
        if !proof.is_empty() {
            return Err(ProofError::Length {
                got: proof.len(),
                want: 0,
            });
        }
        return if *subtree == empty_root() {
            Ok(())
        } else {
            Err(ProofError::RootMismatch {
                which: "subtree hash",
            })
        };
    }
    if start == 0 && end == size {
        if !proof.is_empty() {
            return Err(ProofError::Length {
                got: proof.len(),
                want: 0,
            });
        }
        return if subtree == root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch { which: "root" })
        };
    }
    let width = end - start;
    if width.is_power_of_two() {
        let level = width.trailing_zeros();
        let computed = root_from_node(level, start >> level, size, *subtree, proof)?;
        return if computed == *root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch { which: "root" })
        };
    }
    // The last perfect node of the subtree, and the level of the aligned block that holds the subtree.
    let level = end.trailing_zeros();
    let index = (end - 1) >> level;
    let block_level = width.next_power_of_two().trailing_zeros();
    let Some((node, path)) = proof.split_first() else {
        return Err(ProofError::Length { got: 0, want: 1 });
    };
    let computed_root = root_from_node(level, index, size, *node, path)?;
    if computed_root != *root {
        return Err(ProofError::RootMismatch { which: "root" });
    }
    // Rebuild the subtree hash: the left siblings below the block's level lie inside the subtree.
    let shape = path_shape(level, index, size)?;
    let hash = shape
        .iter()
        .zip(path)
        .filter(|(&(at, left), _)| left && at < block_level)
        .fold(*node, |hash, (_, sibling)| node_hash(sibling, &hash));
    if hash != *subtree {
        return Err(ProofError::RootMismatch {
            which: "subtree hash",
        });
    }
    Ok(())
}

/// A whole tree in memory, for tests and small tools.
pub struct MemoryTree {
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    pub fn new(leaves: &[Hash]) -> MemoryTree {
        let mut levels = vec![leaves.to_vec()];
        while levels.last().expect("non-empty").len() > 1 {
            let below = levels.last().expect("non-empty");
            let above: Vec<Hash> = below
                .chunks_exact(2)
                .map(|pair| node_hash(&pair[0], &pair[1]))
                .collect();
            levels.push(above);
        }
        MemoryTree { levels }
    }
}

impl NodeSource for MemoryTree {
    type Error = ProofError;
    fn node(&mut self, level: u32, index: u64) -> Result<Hash, ProofError> {
        self.levels
            .get(level as usize)
            .and_then(|hashes| hashes.get(index as usize))
            .copied()
            .ok_or_else(|| ProofError::Range(format!("no node ({level}, {index})")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;

    #[test]
    fn decompose_covers_ranges() {
        assert_eq!(decompose(0, 7), vec![(2, 0), (1, 2), (0, 6)]);
        assert_eq!(decompose(8, 14), vec![(2, 2), (1, 6)]);
        assert_eq!(decompose(0, 0), vec![]);
        assert_eq!(decompose(0, 1 << 40), vec![(40, 0)]);
    }

    #[test]
    fn compact_range_matches_recursive_mth() {
        let leaves: Vec<Hash> = (0..100u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        for n in 0..leaves.len() {
            let mut tree = MemoryTree::new(&leaves[..n.max(1)]);
            let expected = if n == 0 {
                empty_root()
            } else {
                tree.range_hash(0, n as u64).unwrap()
            };
            assert_eq!(crate::hash::root_of(&leaves[..n]), expected, "size {n}");
        }
    }
}
