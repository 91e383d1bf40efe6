//! Every RFC 6962 / subtree proof vector in `../shared/reference/vectors/merkle`, negative cases
//! included. Skips when `../shared` is absent.

use std::path::{Path, PathBuf};

use saksi_tlog::merkle::{
    verify_consistency, verify_inclusion, verify_subtree_consistency, verify_subtree_inclusion,
};
use saksi_tlog::Hash;
use serde_json::Value;

fn vectors() -> Option<PathBuf> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference/vectors/merkle");
    if path.is_dir() {
        Some(path)
    } else {
        eprintln!("skipping: {} is absent", path.display());
        None
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// A vector's hash. Some vectors use placeholder byte strings that are not 32 bytes ("don't care 1")
/// where only equality matters; those map to a distinct 32-byte value, equal exactly when the strings
/// are, so comparisons behave as they do on raw bytes.
fn hash(value: &Value) -> Option<Hash> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.as_str()?)
        .ok()?;
    Some(Hash::from_slice(&bytes).unwrap_or_else(|| {
        let mut tagged = b"placeholder that is not a hash:".to_vec();
        tagged.extend_from_slice(&bytes);
        saksi_tlog::hash::sha256(&tagged)
    }))
}

/// `None` when a proof element is not a 32-byte hash: such a proof cannot verify.
fn proof(value: &Value) -> Option<Vec<Hash>> {
    match value {
        Value::Null => Some(Vec::new()),
        Value::Array(items) => items.iter().map(hash).collect(),
        _ => None,
    }
}

/// Leaf hashes must be real 32-byte hashes.
fn leaf(value: &Value) -> Option<Hash> {
    Hash::from_base64(value.as_str()?)
}

fn num(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} missing"))
}

fn run(kind: &str, v: &Value) -> bool {
    let ok = |r: Result<(), saksi_tlog::merkle::ProofError>| r.is_ok();
    match kind {
        "inclusion" => (|| {
            Some(ok(verify_inclusion(
                &leaf(&v["leafHash"])?,
                num(v, "leafIdx"),
                num(v, "treeSize"),
                &proof(&v["proof"])?,
                &hash(&v["root"])?,
            )))
        })(),
        "consistency" => (|| {
            Some(ok(verify_consistency(
                num(v, "size1"),
                num(v, "size2"),
                &proof(&v["proof"])?,
                &hash(&v["root1"])?,
                &hash(&v["root2"])?,
            )))
        })(),
        "subtreeinclusion" => (|| {
            Some(ok(verify_subtree_inclusion(
                &leaf(&v["leafHash"])?,
                num(v, "leafIdx"),
                num(v, "start"),
                num(v, "end"),
                &proof(&v["proof"])?,
                &hash(&v["root"])?,
            )))
        })(),
        "subtreeconsistency" => (|| {
            Some(ok(verify_subtree_consistency(
                num(v, "start"),
                num(v, "end"),
                num(v, "size"),
                &proof(&v["proof"])?,
                &hash(&v["root1"])?,
                &hash(&v["root2"])?,
            )))
        })(),
        other => panic!("unknown vector kind {other}"),
    }
    .unwrap_or(false)
}

#[test]
fn all_merkle_vectors() {
    let Some(root) = vectors() else { return };
    let mut checked = 0;
    let mut failures = Vec::new();
    for kind in [
        "inclusion",
        "consistency",
        "subtreeinclusion",
        "subtreeconsistency",
    ] {
        for file in files(&root.join(kind)) {
            let v: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
            let want_err = v["wantErr"].as_bool().unwrap();
            let verified = run(kind, &v);
            if verified == want_err {
                failures.push(format!(
                    "{}: verified={verified}, wantErr={want_err}",
                    file.strip_prefix(&root).unwrap().display()
                ));
            }
            checked += 1;
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} vectors failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked > 300, "only {checked} vectors found");
    eprintln!("{checked} merkle vectors pass");
}
