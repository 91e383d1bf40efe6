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
//!    `checkpoints/<size>` is durable, then its directory fsynced. That is the log's own step only
//!    with [`Publishing::WithEachCommit`]; with [`Publishing::ByCaller`] the caller does it with
//!    [`Log::publish`] when its policy says so (after gathering witness cosignatures, or every so
//!    often under load, two fsyncs fewer per batch).
//! 5. Update the in-memory state and acknowledge the entries.
//!
//! `checkpoints/<size>` is created once ([`Storage::create_durable`]): storage refuses to replace it
//! with other bytes, the last guard against signing two trees of one size.
//!
//! Any storage error poisons the log: it refuses further appends until reopened, because after a
//! failed fsync the state of the files is unknown (and retrying can report success for lost data).
//!
//! # Recovery (on open)
//! The newest `checkpoints/<size>` that exists is the committed state: its signature is checked, the
//! right-edge tiles and bundle for that size are read, and the root they give must equal the
//! checkpoint's. If `checkpoint` is ahead of it (this protocol never leaves that, but a copy made file
//! by file can), it is the committed state if the tiles give its root, and step 3 is completed from it;
//! otherwise the log refuses to open. If `checkpoint` is behind (a crash between steps 3 and 4), it
//! is republished, unless publishing is the caller's ([`Publishing::ByCaller`]). A log with no
//! checkpoint at all starts at size 0 with a signed empty checkpoint.
//!
//! # Invariants
//! - A file under a path that a published checkpoint covers is never rewritten with other bytes.
//! - An acknowledged entry is in a checkpoint that is durable in `checkpoints/`, and in `checkpoint`
//!   too when the log publishes with each commit.
//! - `checkpoint` only ever holds a checkpoint that is durable in `checkpoints/`; it never goes back.
//! - At most one checkpoint is ever signed for a given size.

use std::fmt;
use std::io;
use std::sync::Arc;

use crate::checkpoint::{self, Checkpoint};
use crate::hash::{empty_root, leaf_hash, node_hash, perfect_root, Hash};
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
    /// The edge's shape, asserted where it is made (after staging a batch) and where it is read
    /// back (on open): every partial tile holds fewer than a tile's width, each level holds what
    /// the size says, and the bundle holds the size's remainder.
    fn check(&self) {
        for (level, hashes) in self.hashes.iter().enumerate() {
            let stored = tile::stored_hashes_at(level as u8, self.size);
            assert!(
                hashes.len() < TILE_WIDTH as usize,
                "a full tile left at the edge"
            );
            assert_eq!(
                hashes.len() as u64,
                stored % TILE_WIDTH,
                "level {level} at size {}",
                self.size
            );
        }
        assert_eq!(u64::from(self.bundle_entries), self.size % TILE_WIDTH);
    }

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

/// A signed checkpoint: the log's own note, perhaps with witness cosignatures appended.
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
    /// The latest committed checkpoint (in `checkpoints/<size>`).
    committed: Arc<Published>,
    poisoned: Option<String>,
    publishing: Publishing,
}

/// Who writes `checkpoint` (step 4 of the commit protocol).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Publishing {
    /// The log, in each commit's own storage round, and on open if a crash left it behind.
    WithEachCommit,
    /// The caller, with [`Log::publish`], when its policy says so (witness cosignatures first, or a
    /// lag that saves two fsyncs per batch). The log never writes it after creation.
    ByCaller,
}

/// The latest published checkpoint: the path tlog-tiles clients fetch first.
pub const CHECKPOINT_PATH: &str = "checkpoint";

/// Where the checkpoint committed for `size` is kept: saksi's own, beside the spec's layout, and the
/// commit point of the protocol above.
pub fn checkpoints_path(size: u64) -> String {
    format!("checkpoints/{size}")
}

/// `note` as the `checkpoint` file: the one shape in which creation, recovery, each commit and the
/// caller's publishing write it.
fn checkpoint_file(note: &str) -> (String, Vec<u8>) {
    (CHECKPOINT_PATH.to_string(), note.as_bytes().to_vec())
}

impl Log {
    /// Opens the log in `storage`, recovering from any interrupted batch, or creates it empty.
    /// `signer` is the log's key; its name is the checkpoint origin.
    pub fn open(storage: Arc<dyn Storage>, signer: Signer) -> Result<Log, LogError> {
        Log::open_with(storage, signer, Publishing::WithEachCommit)
    }

    /// Like [`Log::open`], with step 4 left to `publishing`: on open as after each batch.
    pub fn open_with(
        storage: Arc<dyn Storage>,
        signer: Signer,
        publishing: Publishing,
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
                .read(CHECKPOINT_PATH)
                .map_err(io_err("reading checkpoint"))?
                .is_some()
            {
                return Err(LogError::Corrupt(
                    "a checkpoint is published but checkpoints/ is empty".into(),
                ));
            }
            return Log::create(storage, signer, verifier, publishing);
        };
        let current = read_published(storage.as_ref(), &verifier)?;
        // `checkpoint` ahead of `checkpoints/`: not left by this protocol (which makes
        // `checkpoints/<size>` durable first) but by a copy made file by file. If the tiles give its
        // root, finish step 3 from it.
        let committed = match &current {
            Some((cp, bytes)) if cp.size > newest => {
                complete_commit_from(storage.as_ref(), cp, bytes)?;
                cp.size
            }
            _ => newest,
        };
        let (signed, note) = read_committed(storage.as_ref(), &verifier, committed)?;
        let edge = read_edge(storage.as_ref(), committed)?;
        let root = edge.root();
        if root != signed.checkpoint.root {
            return Err(LogError::Corrupt(format!(
                "the tiles at size {committed} give root {root}, the checkpoint says {}",
                signed.checkpoint.root
            )));
        }
        let committed_checkpoint = Published {
            checkpoint: signed.checkpoint,
            note,
        };
        if let Some((current, _)) = &current {
            if current.size == committed && *current != committed_checkpoint.checkpoint {
                return Err(LogError::Corrupt(format!(
                    "two different checkpoints of size {committed}"
                )));
            }
        }
        // Republish if the crash came between steps 3 and 4 (when step 4 is the log's).
        let behind = current.is_none_or(|(current, _)| current.size < committed);
        if behind && publishing == Publishing::WithEachCommit {
            storage
                .write_durable(&[checkpoint_file(&committed_checkpoint.note)])
                .map_err(io_err("republishing the checkpoint"))?;
        }
        Ok(Log {
            storage,
            signer,
            verifier,
            edge,
            committed: Arc::new(committed_checkpoint),
            poisoned: None,
            publishing,
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
        if signed.checkpoint != self.committed.checkpoint {
            let committed = self
                .storage
                .read(&checkpoints_path(signed.checkpoint.size))
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
        if let Some(why) = &self.poisoned {
            return Err(LogError::Poisoned(why.clone()));
        }
        if let Err(e) = self.storage.write_durable(&[checkpoint_file(note)]) {
            return Err(self.poison("publishing the checkpoint", e));
        }
        Ok(())
    }

    fn create(
        storage: Arc<dyn Storage>,
        signer: Signer,
        verifier: Verifier,
        publishing: Publishing,
    ) -> Result<Log, LogError> {
        let checkpoint = Checkpoint {
            origin: signer.name.clone(),
            size: 0,
            root: empty_root(),
            extensions: Vec::new(),
        };
        let note = note::sign(&checkpoint.text(), &[&signer], 0).map_err(LogError::Note)?;
        // The empty tree is published whoever publishes later: a log is never served without a
        // `checkpoint`.
        storage
            .commit(
                &[],
                &[(checkpoints_path(0), note.clone().into_bytes())],
                &[checkpoint_file(&note)],
            )
            .map_err(io_err("writing the first checkpoint"))?;
        Ok(Log {
            storage,
            signer,
            verifier,
            edge: Edge::empty(),
            committed: Arc::new(Published { checkpoint, note }),
            poisoned: None,
            publishing,
        })
    }

    pub fn size(&self) -> u64 {
        self.edge.size
    }

    pub fn publishing(&self) -> Publishing {
        self.publishing
    }

    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// The latest committed checkpoint: durable in `checkpoints/<size>`; in `checkpoint` too only
    /// if the log publishes with each commit, or once the caller published it.
    pub fn committed(&self) -> Arc<Published> {
        self.committed.clone()
    }

    pub fn storage(&self) -> Arc<dyn Storage> {
        self.storage.clone()
    }

    /// Appends a batch by the commit protocol above. Returns the index of the first entry and the
    /// checkpoint that includes them all; when this returns Ok, every entry is durable and committed
    /// (in `checkpoints/<size>`). It is also published in `checkpoint` only with
    /// [`Publishing::WithEachCommit`]; otherwise the caller publishes (see step 4).
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
            return Ok((first, self.committed.clone()));
        }
        // Step 1: the new edge and the files, in memory.
        let (edge, files) = stage(&self.edge, entries);
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
        let created = [(checkpoints_path(edge.size), note.clone().into_bytes())];
        // Step 4 in the same call (`checkpoint` renamed only once `checkpoints/<size>` is durable),
        // unless the caller publishes.
        let replaced = match self.publishing {
            Publishing::WithEachCommit => vec![checkpoint_file(&note)],
            Publishing::ByCaller => Vec::new(),
        };
        // After the commit, partial versions of the tiles it completed: they are needed only until
        // the full tile exists (tlog-tiles allows deleting them then). Without this a log
        // committing small batches would keep up to 255 growing copies of every tile and bundle.
        // (A reader still at an older size falls back to the full tile: see TileReader.)
        let pruned: Vec<String> = files
            .iter()
            .filter(|(path, _)| !path.contains(".p/") && path.starts_with("tile/"))
            .map(|(path, _)| format!("{path}.p"))
            .collect();
        if let Err(e) = self
            .storage
            .commit_and_prune(&files, &created, &replaced, &pruned)
        {
            return Err(self.poison("committing tiles and checkpoint", e));
        }
        // Step 5.
        self.edge = edge;
        self.committed = Arc::new(Published { checkpoint, note });
        Ok((first, self.committed.clone()))
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

/// Step 1 of the commit protocol, pure: the right edge after appending `entries` to `edge`, and the
/// files that make it durable (tiles and bundles completed, and the new partial ones at the new
/// edge). Nothing is read or written.
fn stage(edge: &Edge, entries: &[&[u8]]) -> (Edge, Vec<(String, Vec<u8>)>) {
    let first = edge.size;
    let mut edge = edge.clone();
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
    edge.check();
    (edge, files)
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

/// The `checkpoint` file, if any, verified with the log's key.
fn read_published(
    storage: &dyn Storage,
    verifier: &Verifier,
) -> Result<Option<(Checkpoint, Vec<u8>)>, LogError> {
    let Some(bytes) = storage
        .read(CHECKPOINT_PATH)
        .map_err(io_err("reading checkpoint"))?
    else {
        return Ok(None);
    };
    let signed = checkpoint::open(&bytes, verifier, &[])
        .map_err(|e| LogError::Corrupt(format!("the published checkpoint does not verify: {e}")))?;
    Ok(Some((signed.checkpoint, bytes)))
}

/// Recovery of a `checkpoint` ahead of `checkpoints/`: step 3 completed from it, if the tiles give
/// its root.
fn complete_commit_from(
    storage: &dyn Storage,
    published: &Checkpoint,
    bytes: &[u8],
) -> Result<(), LogError> {
    let edge = read_edge(storage, published.size)?;
    if edge.root() != published.root {
        return Err(LogError::Corrupt(format!(
            "published checkpoint is at size {}, beyond every checkpoint in checkpoints/, and the tiles do not give its root",
            published.size
        )));
    }
    storage
        .create_durable(&[(checkpoints_path(published.size), bytes.to_vec())])
        .map_err(io_err("completing the last commit"))
}

/// `checkpoints/<size>`, verified with the log's key and checked to be for `size`.
fn read_committed(
    storage: &dyn Storage,
    verifier: &Verifier,
    size: u64,
) -> Result<(checkpoint::SignedCheckpoint, String), LogError> {
    let note_bytes = storage
        .read(&checkpoints_path(size))
        .map_err(io_err("reading the newest checkpoint"))?
        .ok_or_else(|| LogError::Corrupt(format!("checkpoints/{size} vanished")))?;
    let signed = checkpoint::open(&note_bytes, verifier, &[]).map_err(|e| {
        LogError::Corrupt(format!(
            "checkpoints/{size} does not verify with the log key: {e}"
        ))
    })?;
    if signed.checkpoint.size != size {
        return Err(LogError::Corrupt(format!(
            "checkpoints/{size} is for size {}",
            signed.checkpoint.size
        )));
    }
    let note = String::from_utf8(note_bytes).expect("a note that opened is UTF-8");
    Ok((signed, note))
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
    edge.check();
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
                let (bytes, stored) = self.read_tile(tile)?;
                let mut hashes = tile::decode_hashes(&bytes, stored)
                    .map_err(|e| LogError::Corrupt(format!("{}: {e}", tile.path())))?;
                hashes.truncate(tile.width as usize);
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
        let (bytes, stored) = self.read_tile(tile)?;
        let entries = tile::decode_bundle(&bytes, stored)
            .map_err(|e| LogError::Corrupt(format!("{}: {e}", tile.path())))?;
        Ok(entries
            .into_iter()
            .take(width as usize)
            .map(<[u8]>::to_vec)
            .collect())
    }

    /// A tile's bytes and the width they hold: the tile as of this size, or, when that is a
    /// partial tile the writer has since completed and deleted (tlog-tiles lets it), the full tile,
    /// whose first entries are the partial's (the log only appends; proofs check the rest).
    fn read_tile(&self, tile: Tile) -> Result<(Vec<u8>, u16), LogError> {
        let read = |tile: Tile| {
            self.storage
                .read(&tile.path())
                .map_err(io_err(format!("reading {}", tile.path())))
        };
        if let Some(bytes) = read(tile)? {
            return Ok((bytes, tile.width));
        }
        let full = Tile {
            width: TILE_WIDTH as u16,
            ..tile
        };
        if tile.width < full.width {
            if let Some(bytes) = read(full)? {
                return Ok((bytes, full.width));
            }
        }
        Err(LogError::Corrupt(format!("{} is missing", tile.path())))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::root_of;

    fn entries(range: std::ops::Range<u32>) -> Vec<Vec<u8>> {
        range.map(|i| format!("entry {i}").into_bytes()).collect()
    }

    /// Staging alone, without storage: the edge gives the RFC 6962 root of every entry so far,
    /// whether the entries come in one batch or several, and the files are exactly the tiles a
    /// batch completes plus the new partial ones.
    #[test]
    fn staging_a_batch_gives_the_root_and_the_files_of_the_new_edge() {
        let all = entries(0..300);
        let refs: Vec<&[u8]> = all.iter().map(Vec::as_slice).collect();
        let leaves: Vec<Hash> = all.iter().map(|e| leaf_hash(e)).collect();
        let (one_batch, files) = stage(&Edge::empty(), &refs);
        assert_eq!(one_batch.size, 300);
        assert_eq!(one_batch.root(), root_of(&leaves));
        let mut paths: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
        paths.sort_unstable();
        assert_eq!(
            paths,
            [
                "tile/0/000",
                "tile/0/001.p/44",
                "tile/1/000.p/1",
                "tile/entries/000",
                "tile/entries/001.p/44"
            ]
        );
        let mut edge = Edge::empty();
        for part in refs.chunks(7) {
            let (next, files) = stage(&edge, part);
            assert!(files
                .iter()
                .all(|(path, _)| Tile::parse(path).is_ok_and(|tile| !tile.covered_by(edge.size))));
            edge = next;
            let size = edge.size as usize;
            assert_eq!(edge.root(), root_of(&leaves[..size]), "size {size}");
        }
    }
}
