//! What readers share with the single writer: the state, the published checkpoint, and the log's
//! tiles, with receipts and entries read against the published checkpoint only (a reader never
//! sees a figure or an entry that no published checkpoint covers).

use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

use saksi_tlog::merkle::inclusion_proof;
use saksi_tlog::merkle::{consistency_proof, verify_consistency};
use saksi_tlog::note::Verifier;
use saksi_tlog::tproof::TlogProof;
use saksi_tlog::{LogError, Published, Storage, TileCache, TileReader, CHECKPOINT_PATH};

use saksi_election::sign::{KeyPoints, PublicKey};

use crate::entry::Entry;

use crate::error::EngineError;
use crate::state::State;

/// The state plus the checkpoint it reflects, shared with readers.
pub struct Shared {
    pub state: RwLock<State>,
    /// The points of the keys that sign TPS forms (officers, correctors), decompressed when the
    /// registry enrolled them rather than once per form: see [`Shared::refresh_key_points`].
    pub key_points: RwLock<KeyPoints>,
    /// Held by the one refresh of `key_points` that runs (two would decompress the same keys).
    pub(crate) key_points_refresh: Mutex<()>,
    /// Refreshes running on their own threads ([`Shared::refresh_key_points_in_background`]).
    pub(crate) key_points_pending: Mutex<Vec<std::thread::JoinHandle<()>>>,
    pub published: RwLock<Arc<Published>>,
    pub storage: Arc<dyn Storage>,
    pub vkey: String,
    /// The data directory's evidence photos.
    pub evidence: Arc<crate::evidence::EvidenceStore>,
    /// The operator's key, when the data directory holds it: it signs reports filed through the
    /// site without script, on the reporter's behalf (and the entry says whose key signed).
    pub intake_signer: Option<saksi_election::sign::SecretKey>,
    /// The data directory's report texts.
    pub report_texts: Arc<crate::report_texts::ReportTexts>,
    /// Hash tiles with their inner nodes, shared by every receipt and entry read.
    pub tiles: Arc<TileCache>,
    /// Signalled whenever `published` moves or a witness round ends without a quorum, for readers
    /// waiting for a checkpoint to be published ([`Shared::wait_published`]).
    pub(crate) publication: (Mutex<PublicationNews>, Condvar),
    /// What the writer thread is doing, for health checks (see [`Role`]).
    pub(crate) role: std::sync::atomic::AtomicU8,
    /// When [`Shared::follow`] last read the store without a problem: a standby's or a replica's
    /// freshness, for health checks.
    pub(crate) followed_at: Mutex<Option<Instant>>,
    /// Who hears the engine's [`Event`]s (the server's metrics); set once.
    pub(crate) observer: std::sync::OnceLock<Observer>,
}

/// What the engine tells an operator's metrics. The engine knows no metrics format: the server
/// turns these into its series.
#[derive(Clone, Copy, Debug)]
pub enum Event {
    /// A batch of `entries` was appended durably in `seconds` (the log's whole commit protocol).
    Committed { entries: usize, seconds: f64 },
    /// A witness round ended after `seconds`, with or without its quorum.
    WitnessRound { seconds: f64, quorum_met: bool },
}

pub type Observer = Box<dyn Fn(Event) + Send + Sync>;

/// A server's part in writing its log, as load balancers and operators see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// It writes: submissions are accepted.
    Writer,
    /// Another server writes the shared store; this one follows it and serves reads.
    Standby,
    /// A read replica (`saksi serve --read-only`): it follows a copy of the log and never writes.
    Replica,
    /// The log refused a write (a full disk, a failed fsync, a lost compare-and-swap): nothing is
    /// accepted until the server restarts or, on a shared store, takes over again.
    Refusing,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Writer => "writer",
            Role::Standby => "standby",
            Role::Replica => "replica",
            Role::Refusing => "refusing",
        }
    }
}

/// What a reader waiting for publication needs to know besides the published checkpoint.
#[derive(Default)]
pub(crate) struct PublicationNews {
    /// The largest size whose witness round ended without a quorum: waiting for it is pointless
    /// until a later round (the next commit) succeeds.
    failed_up_to: u64,
}

/// Tiles kept for receipts: 8,192 x 16 KiB = 128 MiB at most (a national log has about 6,500).
pub(crate) const RECEIPT_TILE_CACHE: usize = 8192;
impl Shared {
    /// What this server's writer is doing now.
    pub fn role(&self) -> Role {
        match self.role.load(std::sync::atomic::Ordering::Acquire) {
            0 => Role::Writer,
            1 => Role::Standby,
            3 => Role::Replica,
            _ => Role::Refusing,
        }
    }

    pub(crate) fn set_role(&self, role: Role) {
        let value = match role {
            Role::Writer => 0,
            Role::Standby => 1,
            Role::Refusing => 2,
            Role::Replica => 3,
        };
        self.role.store(value, std::sync::atomic::Ordering::Release);
    }

    pub fn published(&self) -> Arc<Published> {
        self.published.read().expect("not poisoned").clone()
    }

    /// Waits until a checkpoint of at least `size` entries is published, a witness round for it
    /// ended without a quorum, or `timeout` passed; returns the published checkpoint then. Without
    /// a witness policy every commit is published before it is acknowledged, so this returns at once.
    pub fn wait_published(&self, size: u64, timeout: Duration) -> Arc<Published> {
        let deadline = Instant::now() + timeout;
        let (lock, signal) = &self.publication;
        let mut news = lock.lock().expect("not poisoned");
        loop {
            let published = self.published();
            let left = deadline.saturating_duration_since(Instant::now());
            if published.checkpoint.size >= size || news.failed_up_to >= size || left.is_zero() {
                return published;
            }
            news = signal.wait_timeout(news, left).expect("not poisoned").0;
        }
    }

    /// Publishes `published` to readers (never backwards) and wakes those waiting.
    /// Reads the store's published checkpoint and, if it is larger than the one served here, checks
    /// that the store's tiles give its root and extend the served tree (a consistency proof), applies
    /// the new entries, and serves it. Returns the served size. How a standby and a read replica
    /// follow the writer; the store is another process's, so nothing it says is taken on trust
    /// beyond what the log's key signed and the tree proves.
    pub(crate) fn follow(&self, verifier: &Verifier) -> Result<u64, EngineError> {
        let Some(note) = self
            .storage
            .read(CHECKPOINT_PATH)
            .map_err(EngineError::io("reading the checkpoint"))?
        else {
            return Ok(self.published().checkpoint.size);
        };
        let checkpoint = saksi_tlog::checkpoint::open(&note, verifier, &[])
            .map_err(|e| {
                EngineError::Config(format!("the store's checkpoint does not verify: {e}"))
            })?
            .checkpoint;
        let served = self.published();
        if checkpoint.size <= served.checkpoint.size {
            *self.followed_at.lock().expect("not poisoned") = Some(Instant::now());
            return Ok(served.checkpoint.size);
        }
        let mut reader = TileReader::new(self.storage.clone(), checkpoint.size);
        let root = saksi_tlog::merkle::NodeSource::range_hash(&mut reader, 0, checkpoint.size)
            .map_err(EngineError::Log)?;
        if root != checkpoint.root {
            return Err(EngineError::Log(LogError::Corrupt(format!(
                "the store's tiles give root {root} at size {}, its checkpoint says {}",
                checkpoint.size, checkpoint.root
            ))));
        }
        let old = &served.checkpoint;
        if old.size > 0 {
            let proof = consistency_proof(&mut reader, old.size, checkpoint.size).map_err(|e| {
                EngineError::Log(LogError::Corrupt(format!("a consistency proof: {e}")))
            })?;
            verify_consistency(
                old.size,
                checkpoint.size,
                &proof,
                &old.root,
                &checkpoint.root,
            )
            .map_err(|e| {
                EngineError::Log(LogError::Corrupt(format!(
                    "the store's checkpoint of size {} does not extend the one served here \
                         (size {}): {e}",
                    checkpoint.size, old.size
                )))
            })?;
        }
        self.catch_up(checkpoint.size)?;
        self.set_published(Arc::new(Published {
            checkpoint,
            note: String::from_utf8(note).expect("a verified note is UTF-8"),
        }));
        *self.followed_at.lock().expect("not poisoned") = Some(Instant::now());
        Ok(self.published().checkpoint.size)
    }

    /// Decompresses, on every core, the points of the registry's form signers (TPS officers and
    /// correctors) that [`Shared::key_points`] lacks. Called for a writer that holds points
    /// ([`crate::Engine::hold_key_points`]: an import, a server) when it starts writing (~820,000
    /// keys for a national registry: `saksi bench signatures` prints what filling them takes) and after it logs a registry change,
    /// so that checking a form's signature on election night never decompresses its key. Readers
    /// need no points, so replicas, standbys and the tools that check no signature never pay.
    pub(crate) fn refresh_key_points(&self) {
        let _only_refresh = self.key_points_refresh.lock().expect("not poisoned");
        let missing: Vec<PublicKey> = {
            let state = self.state.read().expect("not poisoned");
            let held = self.key_points.read().expect("not poisoned");
            let officers = state.registry.all_tps().iter().flat_map(|t| &t.officers);
            let correctors = state.registry.correctors().flat_map(|(_, keys)| keys);
            officers
                .chain(correctors)
                .filter(|key| held.get(key).is_none())
                .copied()
                .collect()
        };
        if missing.is_empty() {
            return;
        }
        // Decompressed outside the lock: signature checks go on meanwhile.
        let mut fresh = KeyPoints::default();
        fresh.add_keys(missing, saksi_election::parallel::cores());
        self.key_points.write().expect("not poisoned").merge(fresh);
    }

    /// [`Shared::refresh_key_points`] on a thread of its own, for a server: it answers at once, and
    /// a form that arrives before its signer's point is held decompresses the key itself (a verdict
    /// never depends on the cache). Runs in place if no thread can be started.
    pub(crate) fn refresh_key_points_in_background(self: &Arc<Self>) {
        let shared = self.clone();
        let spawned = std::thread::Builder::new()
            .name("saksi-key-points".into())
            .spawn(move || shared.refresh_key_points());
        match spawned {
            Ok(handle) => {
                let mut pending = self.key_points_pending.lock().expect("not poisoned");
                pending.retain(|h| !h.is_finished());
                pending.push(handle);
            }
            Err(_) => self.refresh_key_points(),
        }
    }

    /// Returns once every refresh started in the background has finished.
    pub fn wait_for_key_points(&self) {
        let pending = std::mem::take(&mut *self.key_points_pending.lock().expect("not poisoned"));
        for handle in pending {
            // A refresh that panicked left the cache as it was: forms decompress their own keys.
            let _ = handle.join();
        }
    }

    /// Sets who hears the engine's events; a second observer is refused (`false`).
    pub fn set_observer(&self, observer: Observer) -> bool {
        self.observer.set(observer).is_ok()
    }

    pub(crate) fn observe(&self, event: Event) {
        if let Some(observer) = self.observer.get() {
            observer(event);
        }
    }

    /// How long ago this server last followed its store without a problem (`None`: never; a
    /// writer does not follow).
    pub fn followed_ago(&self) -> Option<Duration> {
        self.followed_at
            .lock()
            .expect("not poisoned")
            .map(|at| at.elapsed())
    }

    /// Applies the entries from the state's size up to `size`, read from the store bundle by bundle
    /// (one read per 256 entries, not one per entry).
    pub(crate) fn catch_up(&self, size: u64) -> Result<(), EngineError> {
        let from = self.state.read().expect("not poisoned").size;
        if from >= size {
            return Ok(());
        }
        let mut reader = TileReader::new(self.storage.clone(), size);
        let mut entries = Vec::with_capacity((size - from) as usize);
        let width = saksi_tlog::tile::TILE_WIDTH;
        for bundle in from / width..size.div_ceil(width) {
            let first = bundle * width;
            for (i, bytes) in reader.bundle(bundle)?.iter().enumerate() {
                if first + i as u64 >= from {
                    entries.push(Entry::decode(bytes)?);
                }
            }
        }
        let mut state = self.state.write().expect("not poisoned");
        for (i, entry) in entries.iter().enumerate() {
            state.apply(from + i as u64, entry)?;
        }
        Ok(())
    }

    pub(crate) fn set_published(&self, published: Arc<Published>) {
        let (lock, signal) = &self.publication;
        let _news = lock.lock().expect("not poisoned");
        let mut current = self.published.write().expect("not poisoned");
        if published.checkpoint.size >= current.checkpoint.size {
            *current = published;
        }
        drop(current);
        signal.notify_all();
    }

    /// Records that the witness round for `size` ended without a quorum, and wakes waiters.
    pub(crate) fn set_round_failed(&self, size: u64) {
        let (lock, signal) = &self.publication;
        let mut news = lock.lock().expect("not poisoned");
        news.failed_up_to = news.failed_up_to.max(size);
        signal.notify_all();
    }

    /// A receipt (c2sp.org/tlog-proof) for leaf `index` in the latest checkpoint.
    pub fn receipt(&self, index: u64) -> Result<TlogProof, EngineError> {
        let mut receipts = self.receipts(&[index]);
        assert_eq!(receipts.len(), 1);
        receipts.remove(0)
    }

    /// Receipts for several entries against one published checkpoint, reading each tile once: how
    /// the server answers a whole committed batch.
    pub fn receipts(&self, indexes: &[u64]) -> Vec<Result<TlogProof, EngineError>> {
        let published = self.published();
        let size = published.checkpoint.size;
        let mut reader = TileReader::with_cache(self.storage.clone(), size, self.tiles.clone());
        indexes
            .iter()
            .map(|&index| {
                if index >= size {
                    return Err(EngineError::NoEntry { index, size });
                }
                let proof = inclusion_proof(&mut reader, index, size).map_err(proof_error)?;
                Ok(TlogProof {
                    extra: None,
                    index,
                    proof,
                    checkpoint: published.note.clone(),
                })
            })
            .collect()
    }

    /// The log entry at `index`, if published.
    pub fn entry(&self, index: u64) -> Result<Vec<u8>, EngineError> {
        let size = self.published().checkpoint.size;
        if index >= size {
            return Err(EngineError::NoEntry { index, size });
        }
        Ok(TileReader::new(self.storage.clone(), size).entry(index)?)
    }
}

/// A proof for an index below the published size fails only if the tiles do: their error, or a
/// proof that cannot hold, which is corruption.
fn proof_error(e: saksi_tlog::merkle::ProofErrorOr<LogError>) -> EngineError {
    match e {
        saksi_tlog::merkle::ProofErrorOr::Source(e) => EngineError::Log(e),
        saksi_tlog::merkle::ProofErrorOr::Proof(e) => {
            EngineError::Log(LogError::Corrupt(format!("a receipt's proof: {e}")))
        }
    }
}
