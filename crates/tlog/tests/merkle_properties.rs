//! For random trees: every inclusion, consistency and subtree proof the generator makes verifies, and
//! any flipped bit in a proof or a root makes it fail.

use proptest::prelude::*;
use saksi_tlog::hash::{leaf_hash, root_of};
use saksi_tlog::merkle::*;
use saksi_tlog::Hash;

fn leaves(n: u64) -> Vec<Hash> {
    (0..n).map(|i| leaf_hash(&i.to_le_bytes())).collect()
}

fn flip(hash: &Hash, bit: usize) -> Hash {
    let mut out = *hash;
    out.0[(bit / 8) % 32] ^= 1 << (bit % 8);
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn inclusion_proofs_verify(size in 1u64..600, index_seed in any::<u64>(), bit in 0usize..256) {
        let leaves = leaves(size);
        let index = index_seed % size;
        let root = root_of(&leaves);
        let mut tree = MemoryTree::new(&leaves);
        let proof = inclusion_proof(&mut tree, index, size).unwrap();
        prop_assert!(verify_inclusion(&leaves[index as usize], index, size, &proof, &root).is_ok());
        prop_assert!(verify_inclusion(&leaves[index as usize], index, size, &proof, &flip(&root, bit)).is_err());
        prop_assert!(verify_inclusion(&flip(&leaves[index as usize], bit), index, size, &proof, &root).is_err());
        for i in 0..proof.len() {
            let mut bad = proof.clone();
            bad[i] = flip(&bad[i], bit);
            prop_assert!(verify_inclusion(&leaves[index as usize], index, size, &bad, &root).is_err());
        }
        if size > 1 {
            // The same proof for another index must not verify.
            let other = (index + 1) % size;
            prop_assert!(verify_inclusion(&leaves[index as usize], other, size, &proof, &root).is_err());
        }
    }

    #[test]
    fn consistency_proofs_verify(size2 in 1u64..600, size1_seed in any::<u64>(), bit in 0usize..256) {
        let leaves = leaves(size2);
        let size1 = 1 + size1_seed % size2;
        let (root1, root2) = (root_of(&leaves[..size1 as usize]), root_of(&leaves));
        let mut tree = MemoryTree::new(&leaves);
        let proof = consistency_proof(&mut tree, size1, size2).unwrap();
        prop_assert!(verify_consistency(size1, size2, &proof, &root1, &root2).is_ok());
        prop_assert!(verify_consistency(size1, size2, &proof, &flip(&root1, bit), &root2).is_err());
        prop_assert!(verify_consistency(size1, size2, &proof, &root1, &flip(&root2, bit)).is_err());
        for i in 0..proof.len() {
            let mut bad = proof.clone();
            bad[i] = flip(&bad[i], bit);
            prop_assert!(verify_consistency(size1, size2, &bad, &root1, &root2).is_err());
        }
    }

    #[test]
    fn subtree_proofs_verify(size in 1u64..600, start_seed in any::<u64>(), width_seed in any::<u64>(), bit in 0usize..256) {
        let leaves = leaves(size);
        // A random valid subtree inside the tree: pick a width, then an aligned start.
        let width = 1 + width_seed % size;
        let align = width.next_power_of_two();
        let starts = (size - width) / align + 1;
        let start = (start_seed % starts) * align;
        let end = start + width;
        prop_assume!(end <= size && is_valid_subtree(start, end));
        let subtree = root_of(&leaves[start as usize..end as usize]);
        let root = root_of(&leaves);
        let mut tree = MemoryTree::new(&leaves);
        let proof = subtree_consistency_proof(&mut tree, start, end, size).unwrap();
        prop_assert!(verify_subtree_consistency(start, end, size, &proof, &subtree, &root).is_ok());
        prop_assert!(verify_subtree_consistency(start, end, size, &proof, &flip(&subtree, bit), &root).is_err());
        prop_assert!(verify_subtree_consistency(start, end, size, &proof, &subtree, &flip(&root, bit)).is_err());
        for i in 0..proof.len() {
            let mut bad = proof.clone();
            bad[i] = flip(&bad[i], bit);
            prop_assert!(verify_subtree_consistency(start, end, size, &bad, &subtree, &root).is_err());
        }
        // Inclusion of each leaf in the subtree.
        let mut sub = MemoryTree::new(&leaves[start as usize..end as usize]);
        let index = start + width_seed % width;
        let inclusion = inclusion_proof(&mut sub, index - start, width).unwrap();
        prop_assert!(verify_subtree_inclusion(&leaves[index as usize], index, start, end, &inclusion, &subtree).is_ok());
    }
}
