//! `saksi bench`: measured figures, printed. Not tests: nothing here asserts a timing.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use saksi_tlog::note::{Signer, TYPE_ED25519};
use saksi_tlog::{DirStorage, Log, Storage};

/// Appends `entries` entries of `entry_bytes` bytes durably to a fresh log in `dir`, `batch` per
/// commit, and prints entries/s, MB/s and the time per commit.
pub fn log_append(dir: &Path, entries: u64, entry_bytes: usize, batch: usize) -> Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    let storage: Arc<dyn Storage> = Arc::new(DirStorage::open(&dir.join("log")).context("opening the bench log")?);
    let signer = Signer::generate("bench.saksi.invalid/log", TYPE_ED25519)?;
    let mut log = Log::open(storage, signer)?;
    // Distinct entries so that nothing could be deduplicated or cached.
    let make = |i: u64| {
        let mut e = format!("{i:012}").into_bytes();
        e.resize(entry_bytes, (i % 251) as u8);
        e
    };
    let hash_started = Instant::now();
    let sample: Vec<Vec<u8>> = (0..20_000).map(make).collect();
    for e in &sample {
        std::hint::black_box(saksi_tlog::leaf_hash(e));
    }
    let hash_rate = (sample.len() * entry_bytes) as f64 / hash_started.elapsed().as_secs_f64() / 1e6;
    // Only the appends are timed, not making the entries.
    let mut seconds = 0.0;
    let mut commits = 0u64;
    let mut next = 0u64;
    while next < entries {
        let n = (entries - next).min(batch as u64);
        let chunk: Vec<Vec<u8>> = (next..next + n).map(make).collect();
        let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        let started = Instant::now();
        log.append(&refs)?;
        seconds += started.elapsed().as_secs_f64();
        next += n;
        commits += 1;
    }
    println!("log append (durable, fsync per commit): {entries} entries of {entry_bytes} bytes, {batch} per commit");
    println!("  {:.0} entries/s, {:.0} MB/s of entries, {commits} commits, {:.1} ms per commit, {seconds:.2} s total",
        entries as f64 / seconds,
        (entries as f64 * entry_bytes as f64) / seconds / 1e6,
        seconds * 1e3 / commits as f64);
    println!("  SHA-256 leaf hashing alone: {hash_rate:.0} MB/s (sha2 0.10)");
    println!("  final checkpoint: size {}, root {}", log.size(), log.published().checkpoint.root);
    Ok(())
}
