//! Full verification of a stored log, as an outside auditor would do it: verify the checkpoint,
//! re-hash every entry, rebuild every tile and compare it with what is stored, and recompute the root.
//! Used by tests after every injected fault, and by verifiers of a mirrored log directory.

use crate::checkpoint::{self, Checkpoint};
use crate::hash::{leaf_hash, perfect_root, Hash};
use crate::log::LogError;
use crate::merkle::CompactRange;
use crate::note::Verifier;
use crate::storage::Storage;
use crate::tile::{self, Tile, TileKind, TILE_WIDTH};

/// What a successful audit established.
#[derive(Clone, Debug)]
pub struct Audited {
    pub checkpoint: Checkpoint,
    /// Every entry's leaf hash, in order (handy for checking proofs afterwards).
    pub leaf_hashes: Vec<Hash>,
    /// The tree's frontier at the checkpoint: where a later [`audit_from`] starts.
    pub range: CompactRange,
}

/// Audits the log in `storage` at its published checkpoint, calling `visit(index, entry)` for each
/// entry so callers can check entry contents in the same pass.
pub fn audit(
    storage: &dyn Storage,
    log_key: &Verifier,
    visit: impl FnMut(u64, &[u8]),
) -> Result<Audited, LogError> {
    audit_from(storage, log_key, CompactRange::new(), visit)
}

/// Audits only what the log appended after a tree already audited, given that tree's frontier:
/// `visit` sees the entries from `from.size()` on, and their leaf hashes appended to `from` must
/// give the checkpoint's root. That one comparison proves the new tree extends the audited one (no
/// entry before `from.size()` changed) and holds exactly these new entries. A checkpoint smaller
/// than `from` is a rollback. From an empty range this is [`audit`], which also rebuilds and
/// compares every hash tile; from a later point the hash tiles are not compared (they serve proofs,
/// which their readers check against signed checkpoints themselves). `leaf_hashes` holds the new
/// entries' hashes only.
pub fn audit_from(
    storage: &dyn Storage,
    log_key: &Verifier,
    from: CompactRange,
    mut visit: impl FnMut(u64, &[u8]),
) -> Result<Audited, LogError> {
    let note = storage
        .read(crate::log::CHECKPOINT_PATH)
        .map_err(|error| LogError::Io {
            what: "reading checkpoint".into(),
            error,
        })?
        .ok_or_else(|| LogError::Corrupt("no checkpoint".into()))?;
    let signed = checkpoint::open(&note, log_key, &[])
        .map_err(|e| LogError::Corrupt(format!("checkpoint: {e}")))?;
    let size = signed.checkpoint.size;
    let start = from.size();
    if size < start {
        return Err(LogError::Corrupt(format!(
            "rollback: the checkpoint has size {size}, below the {start} entries already verified"
        )));
    }
    // Tiles are rebuilt and compared only by a whole audit: they need every hash from the start.
    let whole = start == 0;
    let mut leaf_hashes = Vec::with_capacity((size - start).min(1 << 24) as usize);
    let mut range = from;
    let mut levels = Levels {
        size,
        pending: vec![Vec::new()],
        full_tiles: vec![0],
    };
    let read = |tile: Tile| -> Result<Vec<u8>, LogError> {
        storage
            .read(&tile.path())
            .map_err(|error| LogError::Io {
                what: format!("reading {}", tile.path()),
                error,
            })?
            .ok_or_else(|| LogError::Corrupt(format!("{} is missing", tile.path())))
    };
    let bundles = size.div_ceil(TILE_WIDTH);
    for n in start / TILE_WIDTH..bundles {
        let width = (size - n * TILE_WIDTH).min(TILE_WIDTH) as u16;
        let tile = Tile {
            kind: TileKind::Entries,
            index: n,
            width,
        };
        let bytes = read(tile)?;
        let entries = tile::decode_bundle(&bytes, width)
            .map_err(|e| LogError::Corrupt(format!("{}: {e}", tile.path())))?;
        for (i, entry) in entries.iter().enumerate() {
            let index = n * TILE_WIDTH + i as u64;
            if index < start {
                continue;
            }
            let hash = leaf_hash(entry);
            visit(index, entry);
            range.push(hash);
            leaf_hashes.push(hash);
            if whole {
                levels.pending[0].push(hash);
            }
        }
        if whole {
            levels.check_full(&read)?;
        }
    }
    if whole {
        levels.check_partial(&read)?;
    }
    if range.root() != signed.checkpoint.root {
        return Err(LogError::Corrupt(format!(
            "entries give root {} at size {size}, the checkpoint says {}",
            range.root(),
            signed.checkpoint.root
        )));
    }
    Ok(Audited {
        checkpoint: signed.checkpoint,
        leaf_hashes,
        range,
    })
}

/// Hashes recomputed from the entries, per tile level, waiting to fill a tile.
struct Levels {
    size: u64,
    pending: Vec<Vec<Hash>>,
    /// Full tiles already compared, per level.
    full_tiles: Vec<u64>,
}

impl Levels {
    /// Compares every tile that has filled, carrying its root up a level.
    fn check_full(
        &mut self,
        read: &dyn Fn(Tile) -> Result<Vec<u8>, LogError>,
    ) -> Result<(), LogError> {
        let mut level = 0;
        while level < self.pending.len() {
            while self.pending[level].len() as u64 >= TILE_WIDTH {
                let full: Vec<Hash> = self.pending[level].drain(..TILE_WIDTH as usize).collect();
                let tile = Tile {
                    kind: TileKind::Hashes { level: level as u8 },
                    index: self.full_tiles[level],
                    width: TILE_WIDTH as u16,
                };
                compare(&tile, &full, read)?;
                self.full_tiles[level] += 1;
                if self.pending.len() <= level + 1 {
                    self.pending.push(Vec::new());
                    self.full_tiles.push(0);
                }
                self.pending[level + 1].push(perfect_root(&full));
            }
            level += 1;
        }
        Ok(())
    }

    /// At the end: what is left at each level is that level's partial tile.
    fn check_partial(
        &self,
        read: &dyn Fn(Tile) -> Result<Vec<u8>, LogError>,
    ) -> Result<(), LogError> {
        for (level, hashes) in self.pending.iter().enumerate() {
            let expected = tile::stored_hashes_at(level as u8, self.size) % TILE_WIDTH;
            if hashes.len() as u64 != expected {
                return Err(LogError::Corrupt(format!(
                    "level {level} ends with {} hashes, expected {expected}",
                    hashes.len()
                )));
            }
            if !hashes.is_empty() {
                let tile = Tile {
                    kind: TileKind::Hashes { level: level as u8 },
                    index: self.full_tiles[level],
                    width: hashes.len() as u16,
                };
                compare(&tile, hashes, read)?;
            }
        }
        Ok(())
    }
}

fn compare(
    tile: &Tile,
    hashes: &[Hash],
    read: &dyn Fn(Tile) -> Result<Vec<u8>, LogError>,
) -> Result<(), LogError> {
    let stored = read(*tile)?;
    if stored != tile::encode_hashes(hashes) {
        return Err(LogError::Corrupt(format!(
            "{} does not match the entries",
            tile.path()
        )));
    }
    Ok(())
}
