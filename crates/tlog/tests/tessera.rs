//! Interoperability with a log written by transparency-dev/tessera (`../shared/reference/vectors/
//! tessera-log`): every checkpoint verifies, every root is rebuilt from the entries, and the same 15
//! entries appended here produce byte-identical tiles and entry bundles.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use saksi_tlog::checkpoint;
use saksi_tlog::hash::{leaf_hash, root_of};
use saksi_tlog::note::{Signer, Verifier, TYPE_ED25519};
use saksi_tlog::tile::{decode_bundle, Tile};
use saksi_tlog::{FaultyStorage, Log, Storage};

const VKEY: &str = "example.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx";
const ENTRIES: [&str; 15] = [
    "one", "two", "three", "four", "five", "six", "seven", "eit", "nain", "ten", "ileven", "twelf",
    "threeten", "fourten", "fivten",
];

fn tessera() -> Option<PathBuf> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference/vectors/tessera-log");
    if path.is_dir() {
        Some(path)
    } else {
        eprintln!("skipping: {} is absent", path.display());
        None
    }
}

fn tile_files(dir: &Path, prefix: &str, out: &mut BTreeMap<String, Vec<u8>>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = format!("{prefix}{}", entry.file_name().to_str().unwrap());
        if entry.file_type().unwrap().is_dir() {
            tile_files(&entry.path(), &format!("{name}/"), out);
        } else {
            out.insert(name, std::fs::read(entry.path()).unwrap());
        }
    }
}

#[test]
fn reads_and_verifies_the_tessera_log() {
    let Some(dir) = tessera() else { return };
    let verifier = Verifier::parse(VKEY).unwrap();
    // The entries, from the last partial bundle.
    let bundle = std::fs::read(dir.join("tile/entries/000.p/15")).unwrap();
    let entries = decode_bundle(&bundle, 15).unwrap();
    assert_eq!(
        entries,
        ENTRIES.iter().map(|e| e.as_bytes()).collect::<Vec<_>>()
    );
    let leaves: Vec<_> = entries.iter().map(|e| leaf_hash(e)).collect();
    for size in 0..=15usize {
        let note = std::fs::read(dir.join(format!("checkpoint.{size}"))).unwrap();
        let signed = checkpoint::open(&note, &verifier, &[])
            .unwrap_or_else(|e| panic!("checkpoint.{size}: {e}"));
        assert_eq!(signed.checkpoint.origin, "example.com/log/testdata");
        assert_eq!(signed.checkpoint.size, size as u64);
        assert_eq!(
            signed.checkpoint.root,
            root_of(&leaves[..size]),
            "root at size {size}"
        );
        // A tampered checkpoint fails.
        let tampered = String::from_utf8(note.clone()).unwrap().replacen(
            &format!("\n{size}\n"),
            &format!("\n{}\n", size + 1),
            1,
        );
        assert!(checkpoint::open(tampered.as_bytes(), &verifier, &[]).is_err());
    }
    let latest = std::fs::read(dir.join("checkpoint")).unwrap();
    assert_eq!(
        checkpoint::open(&latest, &verifier, &[])
            .unwrap()
            .checkpoint
            .size,
        15
    );
    // Every tile hash equals the leaf hashes of the bundle it indexes.
    for size in 1..=15u64 {
        let tile = Tile::parse(&format!("tile/0/000.p/{size}")).unwrap();
        let hashes = saksi_tlog::tile::decode_hashes(
            &std::fs::read(dir.join(tile.path())).unwrap(),
            tile.width,
        )
        .unwrap();
        assert_eq!(hashes, leaves[..size as usize]);
    }
}

#[test]
fn writes_byte_identical_tiles_and_bundles() {
    let Some(dir) = tessera() else { return };
    let mut expected = BTreeMap::new();
    tile_files(&dir.join("tile"), "tile/", &mut expected);
    assert_eq!(
        expected.len(),
        30,
        "15 partial hash tiles and 15 partial bundles"
    );

    let storage = Arc::new(FaultyStorage::new(1));
    let signer = Signer::new("example.com/log/testdata", TYPE_ED25519, [9; 32]).unwrap();
    let mut log = Log::open(storage.clone(), signer).unwrap();
    // Tessera integrated one entry per checkpoint here, so every partial size has its own tiles.
    for entry in ENTRIES {
        log.append(&[entry.as_bytes()]).unwrap();
    }
    let mut written = BTreeMap::new();
    for path in storage
        .paths()
        .into_iter()
        .filter(|p| p.starts_with("tile/"))
    {
        written.insert(path.clone(), storage.read(&path).unwrap().unwrap());
    }
    assert_eq!(
        written.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (path, bytes) in &expected {
        assert!(written[path] == *bytes, "{path} differs");
    }
    // Same entries, same root as Tessera's checkpoint.
    let tessera_cp = checkpoint::open(
        &std::fs::read(dir.join("checkpoint")).unwrap(),
        &Verifier::parse(VKEY).unwrap(),
        &[],
    )
    .unwrap();
    assert_eq!(log.committed().checkpoint.root, tessera_cp.checkpoint.root);
}
