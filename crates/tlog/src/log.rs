//! The durable, append-only log: tiles, entry bundles and signed checkpoints in a [`Storage`].
//!
//! # Layout (exactly tlog-tiles, so any static web server can serve the directory)
//! ```text
//! checkpoint                 the latest signed checkpoint
//! checkpoints/<size>         every checkpoint ever signed, by tree size
//! tile/<L>/<N>[.p/<W>]       hash tiles
//! tile/entries/<N>[.p/<W>]   entry bundles
//! ```
//!
//! # Commit protocol (one batch)
//! 1. Build, in memory, every tile and bundle the batch creates or extends: the full ones it completes
//!    and the partial ones at the new right edge. Nothing in memory changes yet.
//! 2. Write them all durably, in place: files and directories fsynced together, in the same round as
//!    the data of steps 3 and 4's files ([`Storage::commit`] does steps 2 to 4). Every such path is
//!    beyond what the last checkpoint covers (asserted), so a crash that leaves some missing or torn
//!    leaves files no reader trusts, which the next batch overwrites.
//! 3. Sign the checkpoint for the new size and write it durably to `checkpoints/<size>` (renamed into
//!    place and its directory fsynced once step 2's round is done). This is the commit point: the
//!    batch's data was durable before its checkpoint existed, and from now on the log can only
//!    complete this batch, never sign another tree of this size.
//! 4. Write the same checkpoint durably to `checkpoint` (publish): renamed into place only once
//!    `checkpoints/<size>` is durable, then its directory fsynced. With the publication lag
//!    ([`Log::set_publish_lag`]) the caller does this step later with [`Log::publish_lagging`] (when
//!    idle, or every so often under load): two fewer fsyncs per batch. A caller that gathers witness
//!    cosignatures first does it with [`Log::publish`].
//! 5. Update the in-memory state and acknowledge the entries.
//!
//! Any storage error poisons the log: it refuses further appends until reopened, because after a
//! failed fsync the state of the files is unknown (and retrying can report success for lost data).
//!
//! # Recovery (on open)
//! The newest `checkpoints/<size>` that exists is the committed state: its signature is checked, the
//! right-edge tiles and bundle for that size are read, and the root they give must equal the
//! checkpoint's. If `checkpoint` is ahead of it (this protocol never leaves that, but a copy made file
//! by file can), it is the committed state if the tiles give its root, and step 3 is completed from it;
//! otherwise the log refuses to open. If `checkpoint` is behind (a crash between steps 3 and
//! 4), it is republished. A log with no checkpoint at all starts at size 0 with a signed empty
//! checkpoint.
//!
//! # Invariants
//! - A file under a path that a published checkpoint covers is never rewritten with other bytes.
//! - An acknowledged entry is in a checkpoint that is durable in `checkpoints/`, and in `checkpoint`
//!   too unless the publication lag holds it back (until the caller's next publish_lagging).
//! - `checkpoint` only ever holds a checkpoint that is durable in `checkpoints/`; it never goes back.
//! - At most one checkpoint is ever signed for a given size.

use std::fmt;
use std::io;
use std::sync::Arc;

use crate::checkpoint::{self, Checkpoint};
use crate::hash::{empty_root, leaf_hash, node_hash, Hash};
use crate::merkle::{decompose, NodeSource};
use crate::note::{self, NoteError, Signer, Verifier};
use crate::storage::Storage;
use crate::tile::{self, Tile, TileKind, MAX_ENTRY_BYTES, TILE_WIDTH};

/// Most entries in one batch: bounds the memory a batch holds (up to 64 Ki entries of up to 64 KiB
/// each would be 4 GiB, so in practice the byte bound below binds first).
pub const MAX_BATCH_ENTRIES: usize = 65_536;
/// Most entry bytes in one batch.
pub const MAX_BATCH_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug)]
pub enum LogError {
    Io {
        what: String,
        error: io::Error,
    },
    /// An earlier write failed; reopen the log to recover.
    Poisoned(String),
    EntryTooLarge {
        position: usize,
        bytes: usize,
    },
    BatchTooLarge {
        entries: usize,
        bytes: usize,
    },
    /// Storage holds something the log did not write, or lost something it did.
    Corrupt(String),
    Note(NoteError),
}

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogError::Io { what, error } => write!(f, "{what}: {error}"),
            LogError::Poisoned(why) => write!(f, "the log refuses writes after an earlier failure ({why}); restart to recover"),
            LogError::EntryTooLarge { position, bytes } => {
                write!(f, "entry {position} of the batch is {bytes} bytes, the limit is {MAX_ENTRY_BYTES}")
            }
            LogError::BatchTooLarge { entries, bytes } => write!(
                f,
                "batch of {entries} entries and {bytes} bytes exceeds {MAX_BATCH_ENTRIES} entries or {MAX_BATCH_BYTES} bytes"
            ),
            LogError::Corrupt(why) => write!(f, "log storage is corrupt: {why}"),
            LogError::Note(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for LogError {}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> LogError {
    let what = what.into();
    move |error| LogError::Io { what, error }
}

/// The state at the right edge of the tree: everything needed to append without reading storage.
#[derive(Clone, Debug)]
struct Edge {
    size: u64,
    /// `hashes[L]`: the hashes of the partial tile at tile level L (fewer than 256 each).
    hashes: Vec<Vec<Hash>>,
    /// The partial entry bundle's bytes, and how many entries it holds.
    bundle: Vec<u8>,
    bundle_entries: u16,
}

impl Edge {
    fn empty() -> Edge {
        Edge {
            size: 0,
            hashes: Vec::new(),
            bundle: Vec::new(),
            bundle_entries: 0,
        }
    }

    /// The root: the partial tiles from the top level down give the tree's perfect subtrees left to right.
    fn root(&self) -> Hash {
        let mut nodes = Vec::new();
        for level_hashes in self.hashes.iter().rev() {
            for (height, index) in decompose(0, level_hashes.len() as u64) {
                let start = (index << height) as usize;
                nodes.push(perfect_root(
                    &level_hashes[start..start + (1usize << height)],
                ));
            }
        }
        let mut iter = nodes.into_iter().rev();
        let Some(mut root) = iter.next() else {
            return empty_root();
        };
        for left in iter {
            root = node_hash(&left, &root);
        }
        root
    }
}

/// MTH of a power-of-two number of hashes.
fn perfect_root(hashes: &[Hash]) -> Hash {
    debug_assert!(hashes.len().is_power_of_two());
    let mut level: Vec<Hash> = hashes.to_vec();
    while level.len() > 1 {
        level = level
            .chunks_exact(2)
            .map(|pair| node_hash(&pair[0], &pair[1]))
            .collect();
    }
    level[0]
}

/// A signed checkpoint as published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    pub checkpoint: Checkpoint,
    /// The whole signed note.
    pub note: String,
}

pub struct Log {
    storage: Arc<dyn Storage>,
    signer: Signer,
    verifier: Verifier,
    edge: Edge,
    /// The latest committed checkpoint (published too, unless `auto_publish` is off).
    published: Arc<Published>,
    poisoned: Option<String>,
    auto_publish: bool,
    /// With a publication lag, `checkpoint` is written one commit late (see the module docs).
    publish_lag: bool,
    /// The latest committed note when `checkpoint` does not hold it yet (only with the lag).
    lagging: Option<String>,
}

fn checkpoint_path(size: u64) -> String {
    format!("checkpoints/{size}")
}

impl Log {
    /// Opens the log in `storage`, recovering from any interrupted batch, or creates it empty.
    /// `signer` is the log's key; its name is the checkpoint origin.
    pub fn open(storage: Arc<dyn Storage>, signer: Signer) -> Result<Log, LogError> {
        Log::open_with(storage, signer, true)
    }

    /// Like [`Log::open`]; with `auto_publish` false, step 4 is left to the caller (who may first
    /// gather witness cosignatures, see [`Log::publish`]), on open as after each batch.
    pub fn open_with(
        storage: Arc<dyn Storage>,
        signer: Signer,
        auto_publish: bool,
    ) -> Result<Log, LogError> {
        if signer.kind != note::TYPE_ED25519 {
            return Err(LogError::Note(NoteError::BadKey(
                "a log signs with an Ed25519 (type 0x01) key".into(),
            )));
        }
        let verifier = signer.verifier();
        let mut sizes: Vec<u64> = storage
            .list("checkpoints")
            .map_err(io_err("listing checkpoints"))?
            .iter()
            .filter_map(|name| name.parse().ok())
            .collect();
        sizes.sort_unstable();
        let Some(&newest) = sizes.last() else {
            if storage
                .read("checkpoint")
                .map_err(io_err("reading checkpoint"))?
                .is_some()
            {
                return Err(LogError::Corrupt(
                    "a checkpoint is published but checkpoints/ is empty".into(),
                ));
            }
            return Log::create(storage, signer, verifier);
        };
        let current = match storage
            .read("checkpoint")
            .map_err(io_err("reading checkpoint"))?
        {
            Some(bytes) => {
                let signed = checkpoint::open(&bytes, &verifier, &[]).map_err(|e| {
                    LogError::Corrupt(format!("the published checkpoint does not verify: {e}"))
                })?;
                Some((signed.checkpoint, bytes))
            }
            None => None,
        };
        // `checkpoint` ahead of `checkpoints/`: not left by this protocol (which makes
        // `checkpoints/<size>` durable first) but by a copy made file by file. If the tiles give its
        // root, finish step 3 from it.
        let committed = match &current {
            Some((cp, bytes)) if cp.size > newest => {
                let edge = read_edge(storage.as_ref(), cp.size)?;
                if edge.root() != cp.root {
                    return Err(LogError::Corrupt(format!(
                        "published checkpoint is at size {}, beyond every checkpoint in checkpoints/, and the tiles do not give its root",
                        cp.size
                    )));
                }
                storage
                    .write_durable(&[(checkpoint_path(cp.size), bytes.clone())])
                    .map_err(io_err("completing the last commit"))?;
                cp.size
            }
            _ => newest,
        };
        let note_bytes = storage
            .read(&checkpoint_path(committed))
            .map_err(io_err("reading the newest checkpoint"))?
            .ok_or_else(|| LogError::Corrupt(format!("checkpoints/{committed} vanished")))?;
        let signed = checkpoint::open(&note_bytes, &verifier, &[]).map_err(|e| {
            LogError::Corrupt(format!(
                "checkpoints/{committed} does not verify with the log key: {e}"
            ))
        })?;
        if signed.checkpoint.size != committed {
            return Err(LogError::Corrupt(format!(
                "checkpoints/{committed} is for size {}",
                signed.checkpoint.size
            )));
        }
        let edge = read_edge(storage.as_ref(), committed)?;
        let root = edge.root();
        if root != signed.checkpoint.root {
            return Err(LogError::Corrupt(format!(
                "the tiles at size {committed} give root {root}, the checkpoint says {}",
                signed.checkpoint.root
            )));
        }
        let note = String::from_utf8(note_bytes).expect("a note that opened is UTF-8");
        let published = Published {
            checkpoint: signed.checkpoint,
            note,
        };
        // Republish if the crash came between steps 3 and 4.
        match current {
            Some((current, _)) => {
                if current.size == committed && current != published.checkpoint {
                    return Err(LogError::Corrupt(format!(
                        "two different checkpoints of size {committed}"
                    )));
                }
                if current.size < committed && auto_publish {
                    storage
                        .write_durable(&[(
                            "checkpoint".into(),
                            published.note.clone().into_bytes(),
                        )])
                        .map_err(io_err("republishing the checkpoint"))?;
                }
            }
            None if auto_publish => storage
                .write_durable(&[("checkpoint".into(), published.note.clone().into_bytes())])
                .map_err(io_err("republishing the checkpoint"))?,
            None => {}
        }
        Ok(Log {
            storage,
            signer,
            verifier,
            edge,
            published: Arc::new(published),
            poisoned: None,
            auto_publish,
            publish_lag: false,
            lagging: None,
        })
    }

    /// Step 4 done by the caller: publishes `note`, a committed checkpoint's note with any
    /// cosignature lines appended (checked: log signature valid, and the same checkpoint as the one
    /// committed for its size in `checkpoints/<size>`). It may be older than the latest committed one
    /// (cosignatures are gathered while the log goes on committing), but the caller must never
    /// publish a size below one it published before: `checkpoint` never goes back.
    pub fn publish(&mut self, note: &str) -> Result<(), LogError> {
        let signed =
            checkpoint::open(note.as_bytes(), &self.verifier, &[]).map_err(LogError::Note)?;
        if signed.checkpoint != self.published.checkpoint {
            let committed = self
                .storage
                .read(&checkpoint_path(signed.checkpoint.size))
                .map_err(io_err("reading a committed checkpoint"))?
                .and_then(|bytes| checkpoint::open(&bytes, &self.verifier, &[]).ok())
                .map(|c| c.checkpoint);
            if committed.as_ref() != Some(&signed.checkpoint) {
                return Err(LogError::Corrupt(format!(
                    "publishing a checkpoint of size {} that is not the one committed for that size",
                    signed.checkpoint.size
                )));
            }
        }
        if let Err(e) = self
            .storage
            .write_durable(&[("checkpoint".into(), note.as_bytes().to_vec())])
        {
            return Err(self.poison("publishing the checkpoint", e));
        }
        self.lagging = None;
        Ok(())
    }

    fn create(
        storage: Arc<dyn Storage>,
        signer: Signer,
        verifier: Verifier,
    ) -> Result<Log, LogError> {
        let checkpoint = Checkpoint {
            origin: signer.name.clone(),
            size: 0,
            root: empty_root(),
            extensions: Vec::new(),
        };
        let note = note::sign(&checkpoint.text(), &[&signer], 0).map_err(LogError::Note)?;
        storage
            .write_durable(&[(checkpoint_path(0), note.clone().into_bytes())])
            .map_err(io_err("writing the first checkpoint"))?;
        storage
            .write_durable(&[("checkpoint".into(), note.clone().into_bytes())])
            .map_err(io_err("publishing"))?;
        Ok(Log {
            storage,
            signer,
            verifier,
            edge: Edge::empty(),
            published: Arc::new(Published { checkpoint, note }),
            poisoned: None,
            auto_publish: true,
            publish_lag: false,
            lagging: None,
        })
    }

    pub fn size(&self) -> u64 {
        self.edge.size
    }

    /// Whether each batch publishes its own checkpoint (step 4 in step 3's round); a caller that
    /// needs witness cosignatures first turns this off and calls [`Log::publish`].
    pub fn auto_publish(&self) -> bool {
        self.auto_publish
    }

    pub fn set_auto_publish(&mut self, on: bool) {
        self.auto_publish = on;
    }

    /// With `on`, a batch does not write `checkpoint` (step 4); the caller does, with
    /// [`Log::publish_lagging`], when it suits it (when idle, or every so often under load). A commit
    /// then costs two fsyncs fewer, and nothing acknowledged depends on `checkpoint`: the commit point
    /// is `checkpoints/<size>`, and a `checkpoint` behind it is republished on open.
    pub fn set_publish_lag(&mut self, on: bool) -> Result<(), LogError> {
        self.publish_lag = on;
        if on {
            Ok(())
        } else {
            self.publish_lagging()
        }
    }

    /// Writes the latest committed checkpoint to `checkpoint` if the publication lag left it behind.
    pub fn publish_lagging(&mut self) -> Result<(), LogError> {
        if let Some(why) = &self.poisoned {
            return Err(LogError::Poisoned(why.clone()));
        }
        let Some(note) = self.lagging.take() else {
            return Ok(());
        };
        if let Err(e) = self
            .storage
            .write_durable(&[("checkpoint".into(), note.into_bytes())])
        {
            return Err(self.poison("publishing the checkpoint", e));
        }
        Ok(())
    }

    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    pub fn published(&self) -> Arc<Published> {
        self.published.clone()
    }

    pub fn storage(&self) -> Arc<dyn Storage> {
        self.storage.clone()
    }

    /// Appends a batch by the commit protocol above. Returns the index of the first entry and the
    /// checkpoint that includes them all; when this returns Ok, every entry is durable and committed
    /// (in `checkpoints/<size>`). It is also published in `checkpoint` only when the log publishes
    /// itself without the publication lag; otherwise the caller publishes (see step 4).
    pub fn append(&mut self, entries: &[&[u8]]) -> Result<(u64, Arc<Published>), LogError> {
        if let Some(why) = &self.poisoned {
            return Err(LogError::Poisoned(why.clone()));
        }
        let bytes: usize = entries.iter().map(|e| e.len()).sum();
        if entries.len() > MAX_BATCH_ENTRIES || bytes > MAX_BATCH_BYTES {
            return Err(LogError::BatchTooLarge {
                entries: entries.len(),
                bytes,
            });
        }
        if let Some((position, entry)) = entries
            .iter()
            .enumerate()
            .find(|(_, e)| e.len() > MAX_ENTRY_BYTES)
        {
            return Err(LogError::EntryTooLarge {
                position,
                bytes: entry.len(),
            });
        }
        let first = self.edge.size;
        if entries.is_empty() {
            return Ok((first, self.published.clone()));
        }
        // Step 1: the new edge and the files, in memory.
        let mut edge = self.edge.clone();
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        let leaves = leaf_hashes(entries);
        for (entry, leaf) in entries.iter().zip(leaves) {
            tile::push_entry(&mut edge.bundle, entry);
            edge.bundle_entries += 1;
            edge.size += 1;
            if edge.bundle_entries as u64 == TILE_WIDTH {
                let tile = Tile {
                    kind: TileKind::Entries,
                    index: edge.size / TILE_WIDTH - 1,
                    width: TILE_WIDTH as u16,
                };
                files.push((tile.path(), std::mem::take(&mut edge.bundle)));
                edge.bundle_entries = 0;
            }
            add_hash(&mut edge, 0, leaf, &mut files);
        }
        let old_partials = tile::partial_tiles(first);
        for tile in tile::partial_tiles(edge.size) {
            if old_partials.contains(&tile) {
                continue; // unchanged since the last checkpoint, already on disk
            }
            let bytes = match tile.kind {
                TileKind::Entries => edge.bundle.clone(),
                TileKind::Hashes { level } => tile::encode_hashes(&edge.hashes[level as usize]),
            };
            files.push((tile.path(), bytes));
        }
        // Step 2: tiles and bundles, durable. Every path here is beyond what the last checkpoint
        // covers (new widths of partial tiles, newly full tiles), so nothing trusts these files until
        // step 3; storage may therefore write them in place, and a crash that tears one only leaves a
        // file the next batch overwrites.
        assert!(files
            .iter()
            .all(|(path, _)| { Tile::parse(path).is_ok_and(|tile| !tile.covered_by(first)) }));
        // Step 3: sign and commit. One storage call does steps 2 to 4: the tiles and the checkpoint
        // files' data are fsynced in one round, then `checkpoints/<size>` is renamed and made
        // durable, then `checkpoint`; so a checkpoint exists only once its tiles are durable, and no
        // reader ever sees a `checkpoint` that a crash could take back.
        let checkpoint = Checkpoint {
            origin: self.signer.name.clone(),
            size: edge.size,
            root: edge.root(),
            extensions: Vec::new(),
        };
        let note = note::sign(&checkpoint.text(), &[&self.signer], 0).map_err(LogError::Note)?;
        let mut commit = vec![(checkpoint_path(edge.size), note.clone().into_bytes())];
        // Step 4 in the same call (`checkpoint` renamed only once `checkpoints/<size>` is durable),
        // unless the caller publishes after witnessing or the publication lag holds it back.
        let publish_now = self.auto_publish && !self.publish_lag;
        if publish_now {
            commit.push(("checkpoint".into(), note.clone().into_bytes()));
        }
        if let Err(e) = self.storage.commit(&files, &commit) {
            return Err(self.poison("committing tiles and checkpoint", e));
        }
        if publish_now {
            self.lagging = None;
        } else if self.auto_publish {
            self.lagging = Some(note.clone());
        }
        // Step 5.
        self.edge = edge;
        self.published = Arc::new(Published { checkpoint, note });
        // Partial versions of a tile are needed only until the full tile exists (tlog-tiles allows
        // deleting them then). Without this a log committing small batches would keep up to 255
        // growing copies of every tile and bundle.
        for (path, _) in &files {
            if !path.contains(".p/") && path.starts_with("tile/") {
                let _ = self.storage.remove_dir(&format!("{path}.p"));
            }
        }
        Ok((first, self.published.clone()))
    }

    fn poison(&mut self, what: &str, error: io::Error) -> LogError {
        let why = format!("{what}: {error}");
        self.poisoned = Some(why.clone());
        LogError::Io {
            what: what.into(),
            error,
        }
    }

    /// A reader of this log's tiles at its current size (for proofs and entries).
    pub fn reader(&self) -> TileReader {
        TileReader::new(self.storage.clone(), self.edge.size)
    }
}

/// Leaf hashes of a batch, on every core when the batch is large enough to be worth a thread.
fn leaf_hashes(entries: &[&[u8]]) -> Vec<Hash> {
    const PER_THREAD_MIN: usize = 1024;
    if entries.len() < 2 * PER_THREAD_MIN {
        // Checked first: asking for the core count reads cgroup files, costly on every small commit.
        return entries.iter().map(|e| leaf_hash(e)).collect();
    }
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(entries.len() / PER_THREAD_MIN)
        .max(1);
    if threads == 1 {
        return entries.iter().map(|e| leaf_hash(e)).collect();
    }
    let per = entries.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = entries
            .chunks(per)
            .map(|part| scope.spawn(move || part.iter().map(|e| leaf_hash(e)).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("hashing thread panicked"))
            .collect()
    })
}

/// Pushes `hash` onto tile level `level`; a tile that fills is written and its root carried up.
fn add_hash(edge: &mut Edge, level: usize, hash: Hash, files: &mut Vec<(String, Vec<u8>)>) {
    if edge.hashes.len() <= level {
        edge.hashes.push(Vec::new());
    }
    edge.hashes[level].push(hash);
    if edge.hashes[level].len() as u64 == TILE_WIDTH {
        let full = std::mem::take(&mut edge.hashes[level]);
        let stored = tile::stored_hashes_at(level as u8, edge.size);
        let tile = Tile {
            kind: TileKind::Hashes { level: level as u8 },
            index: stored / TILE_WIDTH - 1,
            width: TILE_WIDTH as u16,
        };
        files.push((tile.path(), tile::encode_hashes(&full)));
        add_hash(edge, level + 1, perfect_root(&full), files);
    }
}

/// Reads the right edge of the tree at `size` from its partial tiles.
fn read_edge(storage: &dyn Storage, size: u64) -> Result<Edge, LogError> {
    let mut edge = Edge::empty();
    edge.size = size;
    let levels = (0..=tile::MAX_TILE_LEVEL)
        .take_while(|&l| tile::stored_hashes_at(l, size) > 0)
        .count();
    edge.hashes = vec![Vec::new(); levels];
    for tile in tile::partial_tiles(size) {
        let bytes = storage
            .read(&tile.path())
            .map_err(io_err(format!("reading {}", tile.path())))?
            .ok_or_else(|| LogError::Corrupt(format!("{} is missing", tile.path())))?;
        match tile.kind {
            TileKind::Entries => {
                tile::decode_bundle(&bytes, tile.width)
                    .map_err(|e| LogError::Corrupt(format!("{}: {e}", tile.path())))?;
                edge.bundle = bytes;
                edge.bundle_entries = tile.width;
            }
            TileKind::Hashes { level } => {
                edge.hashes[level as usize] = tile::decode_hashes(&bytes, tile.width)
                    .map_err(|e| LogError::Corrupt(format!("{}: {e}", tile.path())))?;
            }
        }
    }
    // An empty top level can only come from a size that is an exact power of 256: trim it.
    while edge.hashes.last().is_some_and(Vec::is_empty) {
        edge.hashes.pop();
    }
    Ok(edge)
}

/// Reads tiles of a tree of a given size: node hashes for proofs, and entries. Caches the last tiles
/// it read (proofs touch few tiles, repeatedly).
pub struct TileReader {
    storage: Arc<dyn Storage>,
    size: u64,
    cache: Vec<(Tile, Arc<TileLevels>)>,
    shared: Option<Arc<TileCache>>,
}

/// A hash tile with every node inside it: `levels[0]` is the stored hashes, `levels[k]` the nodes
/// k levels above them (complete pairs only). A node lookup is then one index, not up to 127 hashes.
pub type TileLevels = Vec<Vec<Hash>>;

fn tile_levels(hashes: Vec<Hash>) -> TileLevels {
    let mut levels = vec![hashes];
    while levels.last().is_some_and(|l| l.len() > 1) {
        let next: Vec<Hash> = levels
            .last()
            .expect("non-empty")
            .chunks_exact(2)
            .map(|p| node_hash(&p[0], &p[1]))
            .collect();
        levels.push(next);
    }
    levels
}

/// Tiles (with their inner nodes) shared by every reader of one log, so that serving many receipts
/// does not rebuild the same nodes. A tile's content never changes under its path, so entries never
/// go stale; the cache is bounded and starts over when full.
pub struct TileCache {
    tiles: std::sync::Mutex<std::collections::HashMap<Tile, Arc<TileLevels>>>,
    capacity: usize,
}

impl TileCache {
    /// `capacity` tiles of up to 511 hashes each (16 KiB).
    pub fn new(capacity: usize) -> TileCache {
        TileCache {
            tiles: std::sync::Mutex::new(std::collections::HashMap::new()),
            capacity,
        }
    }

    fn get(&self, tile: &Tile) -> Option<Arc<TileLevels>> {
        self.tiles.lock().expect("not poisoned").get(tile).cloned()
    }

    fn put(&self, tile: Tile, levels: Arc<TileLevels>) {
        let mut tiles = self.tiles.lock().expect("not poisoned");
        if tiles.len() >= self.capacity {
            tiles.clear();
        }
        tiles.insert(tile, levels);
    }
}

/// Tiles kept by one reader.
const READER_CACHE_TILES: usize = 16;

impl TileReader {
    pub fn new(storage: Arc<dyn Storage>, size: u64) -> TileReader {
        TileReader {
            storage,
            size,
            cache: Vec::new(),
            shared: None,
        }
    }

    /// A reader that also uses (and fills) a cache shared with other readers of the same log.
    pub fn with_cache(storage: Arc<dyn Storage>, size: u64, shared: Arc<TileCache>) -> TileReader {
        TileReader {
            storage,
            size,
            cache: Vec::new(),
            shared: Some(shared),
        }
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    fn tile_levels(&mut self, tile: Tile) -> Result<Arc<TileLevels>, LogError> {
        if let Some((_, levels)) = self.cache.iter().find(|(t, _)| *t == tile) {
            return Ok(levels.clone());
        }
        let levels = match self.shared.as_ref().and_then(|shared| shared.get(&tile)) {
            Some(levels) => levels,
            None => {
                let bytes = self
                    .storage
                    .read(&tile.path())
                    .map_err(io_err(format!("reading {}", tile.path())))?
                    .ok_or_else(|| LogError::Corrupt(format!("{} is missing", tile.path())))?;
                let hashes = tile::decode_hashes(&bytes, tile.width)
                    .map_err(|e| LogError::Corrupt(format!("{}: {e}", tile.path())))?;
                let levels = Arc::new(tile_levels(hashes));
                if let Some(shared) = &self.shared {
                    shared.put(tile, levels.clone());
                }
                levels
            }
        };
        if self.cache.len() >= READER_CACHE_TILES {
            self.cache.remove(0);
        }
        self.cache.push((tile, levels.clone()));
        Ok(levels)
    }

    /// The entries of bundle `index` as of this tree size.
    pub fn bundle(&mut self, index: u64) -> Result<Vec<Vec<u8>>, LogError> {
        let start = index * TILE_WIDTH;
        if start >= self.size {
            return Err(LogError::Corrupt(format!(
                "bundle {index} is beyond size {}",
                self.size
            )));
        }
        let width = (self.size - start).min(TILE_WIDTH) as u16;
        let tile = Tile {
            kind: TileKind::Entries,
            index,
            width,
        };
        let bytes = self
            .storage
            .read(&tile.path())
            .map_err(io_err(format!("reading {}", tile.path())))?
            .ok_or_else(|| LogError::Corrupt(format!("{} is missing", tile.path())))?;
        let entries = tile::decode_bundle(&bytes, width)
            .map_err(|e| LogError::Corrupt(format!("{}: {e}", tile.path())))?;
        Ok(entries.into_iter().map(<[u8]>::to_vec).collect())
    }

    pub fn entry(&mut self, index: u64) -> Result<Vec<u8>, LogError> {
        let mut bundle = self.bundle(index / TILE_WIDTH)?;
        Ok(bundle.swap_remove((index % TILE_WIDTH) as usize))
    }
}

impl NodeSource for TileReader {
    type Error = LogError;

    /// Node (level, index): tile level level / 8 stores the nodes at tree level 8 * (level / 8); this
    /// node is the root of 2^(level % 8) consecutive stored hashes, all inside one tile.
    fn node(&mut self, level: u32, index: u64) -> Result<Hash, LogError> {
        let tile_level = (level / tile::TILE_HEIGHT) as u8;
        let height = level % tile::TILE_HEIGHT;
        let first = index << height;
        let count = 1u64 << height;
        let last = first + count - 1;
        let tile = tile::tile_for(tile_level, last, self.size).ok_or_else(|| {
            LogError::Corrupt(format!(
                "node ({level}, {index}) is not in a tree of size {}",
                self.size
            ))
        })?;
        let levels = self.tile_levels(tile)?;
        let offset = (first % TILE_WIDTH) as usize;
        debug_assert!(offset + count as usize <= levels[0].len());
        Ok(levels[height as usize][offset >> height])
    }
}
