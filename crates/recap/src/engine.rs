//! The engine: one writer that owns the log and keeps the state in step with it.
//!
//! A data directory holds:
//! ```text
//! DATA/log/               the transparency log (C2SP tlog-tiles layout, served as-is)
//! DATA/log.vkey           the log's verifier key, one line
//! DATA/keys/log.key       the log's signing key (Go note format), mode 0600
//! DATA/keys/operator.key  the operator's key (signs transcriptions of published data)
//! ```
//! The election authority's key, which signs the genesis and every later registry change and witness
//! policy, is never here: whoever held it on the server could enrol a corrector and "correct" any TPS
//! under the commission's name. It signs offline, and the engine logs the signed statements it is
//! given ([`Engine::submit_statement`]); [`Engine::open`] refuses a data directory that holds it.
//! Ingest order: verdicts are computed against the state *plus the earlier forms of the same batch*,
//! the batch is appended (durably, see the log's commit protocol), and only then is the state updated,
//! so a reader never sees a figure that is not yet in a published checkpoint.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use saksi_election::code::Code;
use saksi_election::form::SignedForm;
use saksi_election::rules::{self, check_sheet_in, check_signed_form_in, Rulebook, TpsFacts};
use saksi_election::sheet::Sheet;
use saksi_election::sign::SecretKey;
use saksi_election::{Election, Registry};
use saksi_tlog::log::{MAX_BATCH_BYTES, MAX_BATCH_ENTRIES};
use saksi_tlog::merkle::inclusion_proof;
use saksi_tlog::note::{Signer, TYPE_ED25519};
use saksi_tlog::tproof::TlogProof;
use saksi_tlog::{DirStorage, Log, LogError, Published, Storage, TileReader};

use crate::entry::{registry_parts, Admin, Entry, EntryError, Genesis, RecordedVerdict};
use crate::state::State;

#[derive(Debug)]
pub enum EngineError {
    Io(String),
    Log(LogError),
    Entry(EntryError),
    /// A data directory that is not what it should be (already initialised, missing keys, ...).
    Setup(String),
    /// An earlier failure left the state unsure; restart to rebuild it from the log.
    Poisoned(String),
    /// No entry `index` in the published log of `size` entries (a reader asked past its end).
    NoEntry {
        index: u64,
        size: u64,
    },
    /// A submitted authority statement that cannot be logged (malformed, not signed by the authority
    /// the genesis names, or a change that does not apply). Nothing was written.
    Statement(String),
}

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EngineError::Io(e) => write!(f, "{e}"),
            EngineError::Log(e) => write!(f, "log: {e}"),
            EngineError::Entry(e) => write!(f, "{e}"),
            EngineError::Setup(e) => write!(f, "{e}"),
            EngineError::Statement(e) => write!(f, "statement refused: {e}"),
            EngineError::NoEntry { index, size } => {
                write!(f, "no entry {index}: the published log has {size}")
            }
            EngineError::Poisoned(e) => write!(
                f,
                "refusing writes after an earlier failure ({e}); restart to recover"
            ),
        }
    }
}

impl std::error::Error for EngineError {}

impl From<LogError> for EngineError {
    fn from(e: LogError) -> Self {
        EngineError::Log(e)
    }
}

impl From<EntryError> for EngineError {
    fn from(e: EntryError) -> Self {
        EngineError::Entry(e)
    }
}

fn io(what: &str) -> impl FnOnce(std::io::Error) -> EngineError + '_ {
    move |e| EngineError::Io(format!("{what}: {e}"))
}

/// What happened to one submitted form.
#[derive(Clone, Debug)]
pub enum IngestOutcome {
    /// In the log at `index` (now, or earlier if `duplicate`).
    Logged {
        index: u64,
        verdict: RecordedVerdict,
        duplicate: bool,
    },
    /// Not authenticated for its TPS: not logged.
    Refused { code: &'static str, detail: String },
}

/// The state plus the checkpoint it reflects, shared with readers.
pub struct Shared {
    pub state: RwLock<State>,
    pub published: RwLock<Arc<Published>>,
    pub storage: Arc<dyn Storage>,
    pub vkey: String,
    /// Hash tiles with their inner nodes, shared by every receipt and entry read.
    pub tiles: Arc<saksi_tlog::TileCache>,
    /// Signalled whenever `published` moves or a witness round ends without a quorum, for readers
    /// waiting for a checkpoint to be published ([`Shared::wait_published`]).
    publication: (std::sync::Mutex<PublicationNews>, std::sync::Condvar),
}

/// What a reader waiting for publication needs to know besides the published checkpoint.
#[derive(Default)]
struct PublicationNews {
    /// The largest size whose witness round ended without a quorum: waiting for it is pointless
    /// until a later round (the next commit) succeeds.
    failed_up_to: u64,
}

/// Tiles kept for receipts: 8,192 x 16 KiB = 128 MiB at most (a national log has about 6,500).
const RECEIPT_TILE_CACHE: usize = 8192;
/// How far behind the log's `checkpoint` file may fall while batches keep committing (they skip it,
/// see [`Engine::publish_lagging`]): every commit that finds the file this old brings it up to date,
/// whoever the writer is (server, import, enrolment).
pub const PUBLISH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

impl Shared {
    pub fn published(&self) -> Arc<Published> {
        self.published.read().expect("not poisoned").clone()
    }

    /// Waits until a checkpoint of at least `size` entries is published, a witness round for it
    /// ended without a quorum, or `timeout` passed; returns the published checkpoint then. Without
    /// a witness policy every commit is published before it is acknowledged, so this returns at once.
    pub fn wait_published(&self, size: u64, timeout: std::time::Duration) -> Arc<Published> {
        let deadline = std::time::Instant::now() + timeout;
        let (lock, signal) = &self.publication;
        let mut news = lock.lock().expect("not poisoned");
        loop {
            let published = self.published();
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if published.checkpoint.size >= size || news.failed_up_to >= size || left.is_zero() {
                return published;
            }
            news = signal.wait_timeout(news, left).expect("not poisoned").0;
        }
    }

    /// Publishes `published` to readers (never backwards) and wakes those waiting.
    fn set_published(&self, published: Arc<Published>) {
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
    fn set_round_failed(&self, size: u64) {
        let (lock, signal) = &self.publication;
        let mut news = lock.lock().expect("not poisoned");
        news.failed_up_to = news.failed_up_to.max(size);
        signal.notify_all();
    }

    /// A receipt (c2sp.org/tlog-proof) for leaf `index` in the latest checkpoint.
    pub fn receipt(&self, index: u64) -> Result<TlogProof, EngineError> {
        let published = self.published();
        let size = published.checkpoint.size;
        if index >= size {
            return Err(EngineError::NoEntry { index, size });
        }
        let mut reader = TileReader::with_cache(self.storage.clone(), size, self.tiles.clone());
        let proof = inclusion_proof(&mut reader, index, size)
            .map_err(|e| EngineError::Io(e.to_string()))?;
        Ok(TlogProof {
            extra: None,
            index,
            proof,
            checkpoint: published.note.clone(),
        })
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
                let proof = inclusion_proof(&mut reader, index, size)
                    .map_err(|e| EngineError::Io(e.to_string()))?;
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

pub struct Engine {
    log: Log,
    shared: Arc<Shared>,
    operator: Option<SecretKey>,
    poisoned: Option<String>,
    /// The tree size each witness (by key id) last cosigned, as far as we know.
    witness_sizes: HashMap<u32, u64>,
    /// Why the latest committed checkpoint is not published, if it is not.
    pub witness_problem: Option<String>,
    /// Made on first use (only logs with a witness policy need it).
    witness_client: Option<saksi_client::Client>,
    /// The witness round in progress, on its own thread: the writer never waits for witnesses.
    round: Option<WitnessRound>,
    /// The committed size the latest round asked witnesses to cosign.
    asked_up_to: u64,
    /// When the `checkpoint` file was last brought up to date (see PUBLISH_INTERVAL).
    checkpoint_file_at: std::time::Instant,
}

impl Drop for Engine {
    /// Best effort: a `checkpoint` left behind is republished by the next open anyway.
    fn drop(&mut self) {
        self.settle_publication(WITNESS_DEADLINE + WITNESS_REQUEST_TIMEOUT);
        let _ = self.publish_lagging();
    }
}

pub fn log_dir(data: &Path) -> PathBuf {
    data.join("log")
}

pub fn vkey_path(data: &Path) -> PathBuf {
    data.join("log.vkey")
}

/// Where earlier versions kept the authority's secret key: its presence is refused.
pub fn authority_secret_path(data: &Path) -> PathBuf {
    data.join("keys/authority.key")
}

/// Statements submitted from outside are at most one log entry (a registry change enrolling some
/// hundreds of keys; larger changes go in several statements). Larger would fail the append and
/// poison the engine; it is refused before.
pub const MAX_STATEMENT_BYTES: usize = saksi_tlog::tile::MAX_ENTRY_BYTES;

/// What a verdict adds to a form or recap entry, at most (rule codes, the rulebook's name).
pub(crate) const MAX_VERDICT_BYTES: usize = 2048;

// Every form and recap the decoders accept fits one log entry with its verdict: an oversized entry
// would fail the append and poison the engine.
const _: () = assert!(
    saksi_election::form::MAX_FORM_BYTES + MAX_VERDICT_BYTES <= saksi_tlog::tile::MAX_ENTRY_BYTES
);
const _: () = assert!(
    saksi_election::recap::MAX_RECAP_BYTES + MAX_VERDICT_BYTES <= saksi_tlog::tile::MAX_ENTRY_BYTES
);

fn write_secret(path: &Path, text: &str) -> Result<(), EngineError> {
    crate::keyfile::write_new_secret(path, text)
        .map_err(|e| EngineError::Io(format!("creating the key file {}: {e}", path.display())))
}

fn read_secret(path: &Path) -> Result<SecretKey, EngineError> {
    crate::keyfile::read_secret_key(path).map_err(EngineError::Setup)
}

fn secret_text(key: &SecretKey) -> String {
    crate::keyfile::secret_key_text(key)
}

/// The public half of a data directory's own keys: what the authority's genesis must name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerKeys {
    pub origin: String,
    pub log_vkey: String,
    pub operator: saksi_election::sign::PublicKey,
}

impl ServerKeys {
    /// As JSON, for the authority to sign a genesis with (`saksi genesis --request`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "origin": self.origin,
            "log_vkey": self.log_vkey,
            "operator": self.operator.to_base64(),
        })
    }

    pub fn from_json(value: &serde_json::Value) -> Result<ServerKeys, EngineError> {
        let text = |key: &str| {
            value[key]
                .as_str()
                .map(String::from)
                .ok_or_else(|| EngineError::Setup(format!("the key request has no {key}")))
        };
        let operator = saksi_election::sign::PublicKey::from_base64(&text("operator")?)
            .map_err(|e| EngineError::Setup(format!("operator key: {e}")))?;
        let log_vkey = text("log_vkey")?;
        saksi_tlog::note::Verifier::parse(&log_vkey)
            .map_err(|e| EngineError::Setup(format!("log key: {e}")))?;
        Ok(ServerKeys {
            origin: text("origin")?,
            log_vkey,
            operator,
        })
    }
}

/// Makes a data directory's own keys: the log's signing key, the operator's key, and `log.vkey`.
/// Refuses a directory that has them already.
pub fn create_keys(data: &Path, origin: &str) -> Result<ServerKeys, EngineError> {
    std::fs::create_dir_all(data.join("keys")).map_err(io("creating the data directory"))?;
    let log_signer =
        Signer::generate(origin, TYPE_ED25519).map_err(|e| EngineError::Setup(e.to_string()))?;
    let operator = SecretKey::generate();
    write_secret(
        &data.join("keys/log.key"),
        &format!("{}\n", log_signer.encode()),
    )?;
    write_secret(&data.join("keys/operator.key"), &secret_text(&operator))?;
    let vkey = log_signer.verifier().encode();
    std::fs::write(vkey_path(data), format!("{vkey}\n")).map_err(io("writing log.vkey"))?;
    Ok(ServerKeys {
        origin: origin.to_string(),
        log_vkey: vkey,
        operator: operator.public(),
    })
}

/// The public keys of an existing data directory.
pub fn server_keys(data: &Path) -> Result<ServerKeys, EngineError> {
    let signer = read_log_signer(data)?;
    let operator = read_secret(&data.join("keys/operator.key"))?;
    Ok(ServerKeys {
        origin: signer.name.clone(),
        log_vkey: signer.verifier().encode(),
        operator: operator.public(),
    })
}

fn read_log_signer(data: &Path) -> Result<Signer, EngineError> {
    let path = data.join("keys/log.key");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| EngineError::Setup(format!("{}: {e}", path.display())))?;
    Signer::parse(text.trim()).map_err(|e| EngineError::Setup(e.to_string()))
}

/// The genesis (election, rulebook, the authority's and the server's keys) and the registry, as
/// statements signed by `authority`: what an authority signs offline for [`Engine::init_from_statements`].
pub fn genesis_statements(
    keys: &ServerKeys,
    election: Election,
    registry: &Registry,
    authority: &SecretKey,
) -> Vec<Vec<u8>> {
    let genesis = Genesis {
        election,
        authority: authority.public(),
        operator: keys.operator,
        log_vkey: keys.log_vkey.clone(),
        rulebook_version: rules::RULEBOOK_VERSION.to_string(),
        rulebook_sha256: rules::digest(),
    };
    let mut statements = vec![Admin::Genesis(genesis).sign(authority).encode()];
    statements.extend(
        registry_parts(registry)
            .into_iter()
            .map(|part| Admin::Registry(part).sign(authority).encode()),
    );
    statements
}

/// Appends entries in batches within the log's limits; returns the first index.
fn append_all(log: &mut Log, entries: &[Vec<u8>]) -> Result<u64, EngineError> {
    let first = log.size();
    let mut start = 0;
    while start < entries.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < entries.len()
            && end - start < MAX_BATCH_ENTRIES
            && bytes + entries[end].len() <= MAX_BATCH_BYTES
        {
            bytes += entries[end].len();
            end += 1;
        }
        let refs: Vec<&[u8]> = entries[start..end].iter().map(Vec::as_slice).collect();
        log.append(&refs)?;
        start = end;
    }
    Ok(first)
}

impl Engine {
    /// Creates a new election's data directory: keys, the log, and its first entries (genesis, then
    /// the registry), signed here with `authority`. Refuses a directory that already holds a log.
    /// (Where the authority's key must never meet the server, use [`create_keys`],
    /// [`genesis_statements`] offline, and [`Engine::init_from_statements`].)
    pub fn init(
        data: &Path,
        origin: &str,
        election: Election,
        registry: &Registry,
        authority: &SecretKey,
    ) -> Result<Engine, EngineError> {
        if log_dir(data).join("checkpoint").exists() {
            return Err(EngineError::Setup(format!(
                "{} already holds a log",
                data.display()
            )));
        }
        let keys = create_keys(data, origin)?;
        let statements = genesis_statements(&keys, election, registry, authority);
        Engine::create_log(data, &statements)
    }

    /// Creates the log of a data directory whose keys [`create_keys`] made, from the genesis and
    /// registry statements the authority signed elsewhere ([`genesis_statements`]). Checks before
    /// writing anything: the genesis names this directory's log and operator keys and a rulebook
    /// this build knows (with its digest), and every statement applies, signed by the authority the
    /// genesis names.
    pub fn init_from_statements(
        data: &Path,
        statements: &[Vec<u8>],
    ) -> Result<Engine, EngineError> {
        if log_dir(data).join("checkpoint").exists() {
            return Err(EngineError::Setup(format!(
                "{} already holds a log",
                data.display()
            )));
        }
        let keys = server_keys(data)?;
        let refuse = |why: String| Err(EngineError::Statement(why));
        let mut state = State::default();
        for (n, bytes) in statements.iter().enumerate() {
            let entry = match Entry::decode(bytes) {
                Ok(entry @ Entry::Admin { .. }) => entry,
                Ok(_) => return refuse(format!("statement {n} is not an authority statement")),
                Err(e) => return refuse(format!("statement {n}: {e}")),
            };
            if let Entry::Admin {
                statement: Admin::Genesis(genesis),
                ..
            } = &entry
            {
                if genesis.log_vkey != keys.log_vkey || genesis.operator != keys.operator {
                    return refuse(format!(
                        "the genesis names log key {} and operator {}, but this directory's are {} and {}",
                        genesis.log_vkey, genesis.operator, keys.log_vkey, keys.operator
                    ));
                }
                match Rulebook::named(&genesis.rulebook_version) {
                    Some(r) if r.digest() == genesis.rulebook_sha256 => {}
                    _ => {
                        return refuse(format!(
                        "the genesis names rulebook {} (sha256 {}), which this saksi does not have",
                        genesis.rulebook_version, genesis.rulebook_sha256
                    ))
                    }
                }
            }
            if let Err(e) = state.apply(n as u64, &entry) {
                return refuse(e.to_string());
            }
        }
        if state.genesis.is_none() {
            return refuse("no statements".into());
        }
        Engine::create_log(data, statements)
    }

    fn create_log(data: &Path, statements: &[Vec<u8>]) -> Result<Engine, EngineError> {
        let signer = read_log_signer(data)?;
        let storage: Arc<dyn Storage> =
            Arc::new(DirStorage::open(&log_dir(data)).map_err(io("opening the log"))?);
        let mut log = Log::open(storage, signer)?;
        append_all(&mut log, statements)?;
        drop(log);
        Engine::open(data)
    }

    /// Opens a data directory: recovers the log (see its commit protocol) and rebuilds the state by
    /// replaying every entry.
    pub fn open(data: &Path) -> Result<Engine, EngineError> {
        let secret = authority_secret_path(data);
        if secret.exists() {
            return Err(EngineError::Setup(format!(
                "{} is the election authority's secret key, and it must not be on the server: \
                 whoever holds it can enrol a corrector and change any TPS result under the \
                 commission's name. Move it to offline storage and sign registry changes there \
                 (saksi enroll --authority-key KEY --out STATEMENT), then log them here \
                 (saksi log-statement --data DIR STATEMENT). Nothing was changed.",
                secret.display()
            )));
        }
        let signer = read_log_signer(data)?;
        let vkey = signer.verifier().encode();
        let operator = read_secret(&data.join("keys/operator.key")).ok();
        let storage: Arc<dyn Storage> =
            Arc::new(DirStorage::open(&log_dir(data)).map_err(io("opening the log"))?);
        // Step 4 of the log's commit protocol (publish) is ours: with a witness policy, a checkpoint is
        // published only with enough cosignatures.
        let mut log = Log::open_with(storage.clone(), signer, false)?;
        // Batches do not write the `checkpoint` file (two fsyncs fewer each); the API and
        // `/log/checkpoint` serve the latest from memory, and [`Engine::publish_lagging`] brings the
        // file up to date: after a commit once PUBLISH_INTERVAL has passed, when the server's writer
        // is idle, and on drop.
        log.set_publish_lag(true)?;
        let committed = log.published();
        let state = replay(storage.clone(), committed.checkpoint.size)?;
        let served = match storage
            .read("checkpoint")
            .map_err(io("reading the checkpoint"))?
        {
            Some(note) => {
                let checkpoint = saksi_tlog::checkpoint::open(&note, log.verifier(), &[])
                    .map_err(|e| {
                        EngineError::Setup(format!("the published checkpoint does not verify: {e}"))
                    })?
                    .checkpoint;
                Arc::new(Published {
                    checkpoint,
                    note: String::from_utf8(note).expect("a verified note is UTF-8"),
                })
            }
            None => committed.clone(),
        };
        let tiles = Arc::new(saksi_tlog::TileCache::new(RECEIPT_TILE_CACHE));
        let shared = Arc::new(Shared {
            state: RwLock::new(state),
            published: RwLock::new(served),
            storage,
            vkey,
            tiles,
            publication: Default::default(),
        });
        let mut engine = Engine {
            log,
            shared,
            operator,
            poisoned: None,
            witness_sizes: HashMap::new(),
            witness_problem: None,
            witness_client: None,
            round: None,
            asked_up_to: 0,
            checkpoint_file_at: std::time::Instant::now(),
        };
        engine.publish_latest();
        Ok(engine)
    }

    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// Writes the latest committed checkpoint to the log's `checkpoint` file if the publication lag
    /// left it behind. Free when there is nothing to do; call it when idle.
    pub fn publish_lagging(&mut self) -> Result<(), EngineError> {
        self.check_poisoned()?;
        if let Err(e) = self.log.publish_lagging() {
            self.poisoned = Some(e.to_string());
            return Err(e.into());
        }
        self.checkpoint_file_at = std::time::Instant::now();
        Ok(())
    }

    fn check_poisoned(&self) -> Result<(), EngineError> {
        match &self.poisoned {
            Some(why) => Err(EngineError::Poisoned(why.clone())),
            None => Ok(()),
        }
    }

    /// Appends entries and applies them to the state; on failure the engine refuses further writes.
    fn commit(&mut self, entries: Vec<Entry>) -> Result<u64, EngineError> {
        let encoded: Vec<Vec<u8>> = entries.iter().map(Entry::encode).collect();
        self.commit_encoded(entries, encoded)
    }

    /// [`Engine::commit`] with each entry's bytes already made (`encoded[i]` is `entries[i].encode()`).
    fn commit_encoded(
        &mut self,
        entries: Vec<Entry>,
        encoded: Vec<Vec<u8>>,
    ) -> Result<u64, EngineError> {
        assert_eq!(entries.len(), encoded.len());
        debug_assert!(
            entries.iter().zip(&encoded).all(|(e, b)| e.encode() == *b),
            "pre-encoded entries must be exactly what Entry::encode gives"
        );
        // Without a witness policy (and not setting one now) the log publishes each checkpoint itself
        // (in memory at once; to the `checkpoint` file with the publication lag, see Engine::open).
        let unwitnessed = self
            .shared
            .state
            .read()
            .expect("not poisoned")
            .witness_policy
            .is_none();
        let sets_policy = entries.iter().any(|e| {
            matches!(
                e,
                Entry::Admin {
                    statement: Admin::Witnesses(_),
                    ..
                }
            )
        });
        self.log.set_auto_publish(unwitnessed && !sets_policy);
        let first = match append_all(&mut self.log, &encoded) {
            Ok(first) => first,
            Err(e) => {
                self.poisoned = Some(e.to_string());
                return Err(e);
            }
        };
        let mut state = self.shared.state.write().expect("not poisoned");
        for (i, entry) in entries.iter().enumerate() {
            if let Err(e) = state.apply(first + i as u64, entry) {
                self.poisoned = Some(e.to_string());
                return Err(e.into());
            }
        }
        drop(state);
        self.publish_latest();
        if self.checkpoint_file_at.elapsed() >= PUBLISH_INTERVAL {
            // The batch is committed whatever happens here; a failure poisons the engine, and the
            // next write is refused.
            let _ = self.publish_lagging();
        }
        Ok(first)
    }

    /// Publishes the latest committed checkpoint: at once without a witness policy; with one, once
    /// `quorum` of its witnesses cosigned it (their lines appended to the note). Witnesses are asked
    /// on a thread of their own ([`WitnessRound`]); its result is taken up by the next commit or
    /// [`Engine::poll_publication`], whichever comes first. A checkpoint left unpublished is retried
    /// with the next commit or restart; its entries stay committed.
    fn publish_latest(&mut self) {
        self.collect_round();
        let committed = self.log.published();
        if self.shared.published().checkpoint.size >= committed.checkpoint.size {
            return;
        }
        let policy = self
            .shared
            .state
            .read()
            .expect("not poisoned")
            .witness_policy
            .clone();
        match policy {
            None if self.log.auto_publish() => {
                // The log's commit already wrote it to `checkpoint`.
                self.witness_problem = None;
                self.shared.set_published(committed);
            }
            None => self.publish_note(committed.clone(), committed.note.clone()),
            Some(policy) => {
                // One round per committed size: a round that failed is retried by the next commit
                // (or restart), not in a loop against witnesses that are down.
                if self.round.is_none() && committed.checkpoint.size > self.asked_up_to {
                    self.asked_up_to = committed.checkpoint.size;
                    self.start_round(committed, policy);
                }
            }
        }
    }

    /// Takes up a finished witness round, if any; then asks again if more was committed since.
    /// Returns whether a round is still running. Cheap; the server's writer calls it between
    /// batches and, while a round runs, every millisecond when idle.
    pub fn poll_publication(&mut self) -> bool {
        self.publish_latest();
        self.round.is_some()
    }

    /// Waits (at most `timeout`) for the running witness round and publishes what it brings: for
    /// commands that exit after one write (enrolment, a policy change, an import).
    pub fn settle_publication(&mut self, timeout: std::time::Duration) {
        let deadline = std::time::Instant::now() + timeout;
        while let Some(round) = &self.round {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return;
            }
            match round.result.recv_timeout(left) {
                Ok(result) => {
                    self.round = None;
                    self.finish_round(result);
                    // Anything committed since is asked for now, and waited for in this loop.
                    self.publish_latest();
                }
                Err(_) => return,
            }
        }
    }

    fn start_round(&mut self, committed: Arc<Published>, policy: crate::entry::WitnessPolicy) {
        let client = match &self.witness_client {
            Some(client) => client.clone(),
            None => match saksi_client::Client::new(saksi_client::Options {
                timeout: WITNESS_REQUEST_TIMEOUT,
                connect_timeout: WITNESS_REQUEST_TIMEOUT,
                max_response_bytes: WITNESS_MAX_RESPONSE_BYTES,
            }) {
                Ok(client) => {
                    self.witness_client = Some(client.clone());
                    client
                }
                Err(e) => {
                    self.witness_problem = Some(format!("cannot make an HTTP client: {e}"));
                    self.shared.set_round_failed(committed.checkpoint.size);
                    return;
                }
            },
        };
        let requests: Vec<WitnessRequest> = policy
            .witnesses
            .iter()
            .filter_map(|(vkey, url)| {
                let witness = saksi_tlog::note::Verifier::parse(vkey).ok()?;
                Some(WitnessRequest {
                    client: client.clone(),
                    storage: self.shared.storage.clone(),
                    note: committed.note.clone(),
                    size: committed.checkpoint.size,
                    old: self.witness_sizes.get(&witness.id).copied().unwrap_or(0),
                    url: format!("{}/add-checkpoint", url.trim_end_matches('/')),
                    log: self.log.verifier().clone(),
                    witness,
                })
            })
            .collect();
        let (sender, result) = std::sync::mpsc::sync_channel(1);
        let quorum = policy.quorum;
        let spawned = std::thread::Builder::new()
            .name("saksi-witnesses".into())
            .spawn(move || {
                let (lines, cosigned) = gather_cosignatures(requests, quorum);
                let _ = sender.send(RoundResult {
                    committed,
                    lines,
                    cosigned,
                    quorum,
                });
            });
        match spawned {
            Ok(_) => self.round = Some(WitnessRound { result }),
            Err(e) => self.witness_problem = Some(format!("cannot start a witness round: {e}")),
        }
    }

    /// Takes up the running round's result if it has arrived (never waits).
    fn collect_round(&mut self) {
        let Some(round) = &self.round else { return };
        match round.result.try_recv() {
            Ok(result) => {
                self.round = None;
                self.finish_round(result);
            }
            Err(std::sync::mpsc::TryRecvError::Empty) => {}
            Err(std::sync::mpsc::TryRecvError::Disconnected) => self.round = None,
        }
    }

    fn finish_round(&mut self, result: RoundResult) {
        let size = result.committed.checkpoint.size;
        for id in result.cosigned {
            self.witness_sizes.insert(id, size);
        }
        if result.lines.len() < result.quorum as usize {
            self.witness_problem = Some(format!(
                "checkpoint {size} has {} of the {} witness cosignatures the policy requires",
                result.lines.len(),
                result.quorum
            ));
            self.shared.set_round_failed(size);
            return;
        }
        if self.shared.published().checkpoint.size >= size {
            return;
        }
        let note = format!("{}{}", result.committed.note, result.lines.concat());
        self.publish_note(result.committed, note);
    }

    /// Writes `note` (the committed checkpoint's, perhaps cosigned) to `checkpoint` and serves it.
    fn publish_note(&mut self, committed: Arc<Published>, note: String) {
        match self.log.publish(&note) {
            Ok(()) => {
                self.witness_problem = None;
                self.shared.set_published(Arc::new(Published {
                    checkpoint: committed.checkpoint.clone(),
                    note,
                }));
            }
            Err(e) => self.poisoned = Some(e.to_string()),
        }
    }

    /// Logs a statement the election authority signed elsewhere: a registry change (officers or
    /// correctors enrolled, regions or TPS added) or a witness policy, as made by
    /// `Admin::sign(...).encode()` (`saksi enroll`/`saksi witnesses --out`). Checks, before anything
    /// is written, that it is one of those, signed by the authority the genesis names, and that it
    /// applies (keys enrollable, codes registered, the policy well-formed). Returns its index.
    pub fn submit_statement(&mut self, bytes: &[u8]) -> Result<u64, EngineError> {
        self.check_poisoned()?;
        let refuse = |why: String| Err(EngineError::Statement(why));
        if bytes.len() > MAX_STATEMENT_BYTES {
            return refuse(format!(
                "larger than one log entry ({MAX_STATEMENT_BYTES} bytes): split the change"
            ));
        }
        let entry = match Entry::decode(bytes) {
            Ok(entry) => entry,
            Err(e) => return refuse(format!("not a saksi statement: {e}")),
        };
        let Entry::Admin {
            statement,
            signature,
        } = &entry
        else {
            return refuse("not an authority statement".into());
        };
        // Logged as re-encoded, which may differ in length from what was sent.
        if entry.encode().len() > MAX_STATEMENT_BYTES {
            return refuse(format!(
                "larger than one log entry ({MAX_STATEMENT_BYTES} bytes): split the change"
            ));
        }
        {
            let state = self.shared.state.read().expect("not poisoned");
            if let Some(index) = state.logged_statement(&signature.0) {
                return refuse(format!(
                    "this statement is already in the log (entry {index}); a statement is logged once"
                ));
            }
            let Some(authority) = state.genesis.as_ref().map(|g| g.authority) else {
                return refuse("the log has no genesis".into());
            };
            if !entry.admin_signature_valid(&authority) {
                return refuse(format!(
                    "not signed by the authority named in the genesis ({authority})"
                ));
            }
            match statement {
                Admin::Genesis(_) => return refuse("a log has one genesis".into()),
                Admin::Registry(part) => {
                    // Dry run on a copy of the registry, in the order State::apply takes the parts,
                    // so a bad change is refused before it is logged. Every key is checked here
                    // (enrollable: canonical, not of small order) since the state trusts logged keys.
                    if let Err(e) = dry_run_registry(&state.registry, part) {
                        return refuse(e);
                    }
                }
                Admin::Witnesses(policy) => {
                    if let Err(e) = check_witness_policy(policy) {
                        return refuse(e);
                    }
                }
            }
        }
        self.commit(vec![entry])
    }

    /// Ingests forms whose signatures the caller has already verified (in batches, on all cores).
    /// Checks enrolment and the rulebook in order, logs authenticated forms with their verdicts, and
    /// returns one outcome per form.
    pub fn ingest(&mut self, forms: Vec<SignedForm>) -> Result<Vec<IngestOutcome>, EngineError> {
        self.check_poisoned()?;
        /// Where each form's outcome comes from.
        enum Slot {
            Done(IngestOutcome),
            /// The n-th entry of this batch.
            Entry(usize),
            /// The same bytes as the n-th entry of this batch.
            SameAs(usize),
        }
        let mut slots = Vec::with_capacity(forms.len());
        let mut entries = Vec::new();
        let mut encoded: Vec<Vec<u8>> = Vec::new();
        {
            let state = self.shared.state.read().expect("not poisoned");
            let election = state
                .election()
                .cloned()
                .ok_or_else(|| EngineError::Setup("no genesis in the log".into()))?;
            let rulebook = log_rulebook(&state)?;
            let mut batch_digests: HashMap<[u8; 32], usize> = HashMap::new();
            let mut batch_accepted: HashSet<Code> = HashSet::new();
            for form in forms {
                // Encoded once: for the digest here and, spliced, for the log entry below.
                let envelope = form.encode();
                let digest = SignedForm::envelope_digest(&envelope);
                let tps = form.form.tps;
                if let Some(index) = state.logged_digest(&digest) {
                    slots.push(Slot::Done(duplicate_of(&state, tps, index)));
                    continue;
                }
                if let Some(&n) = batch_digests.get(&digest) {
                    slots.push(Slot::SameAs(n));
                    continue;
                }
                if state.registry.tps(tps).is_none() {
                    slots.push(Slot::Done(IngestOutcome::Refused {
                        code: "TPS_UNKNOWN",
                        detail: format!("no TPS {tps}"),
                    }));
                    continue;
                }
                let verdict =
                    check_signed_form_in(rulebook, &form.form, true, &state.registry, &election);
                if let Some(finding) = verdict
                    .findings
                    .iter()
                    .find(|f| f.code == "SIGNER_NOT_ENROLLED")
                {
                    slots.push(Slot::Done(IngestOutcome::Refused {
                        code: "SIGNER_NOT_ENROLLED",
                        detail: finding.detail.clone(),
                    }));
                    continue;
                }
                let taken = state.has_accepted(tps) || batch_accepted.contains(&tps);
                let verdict =
                    rules::check_history(verdict, &form.form, taken, || format!("tps = {tps}"));
                if verdict.accepted() {
                    batch_accepted.insert(tps);
                }
                batch_digests.insert(digest, entries.len());
                slots.push(Slot::Entry(entries.len()));
                let verdict = RecordedVerdict::from_verdict(&verdict, rulebook);
                encoded.push(crate::entry::form_entry_bytes(envelope, &verdict));
                entries.push(Entry::Form {
                    form,
                    verdict,
                    digest,
                });
            }
        }
        let verdicts: Vec<RecordedVerdict> = entries
            .iter()
            .map(|e| match e {
                Entry::Form { verdict, .. } => verdict.clone(),
                _ => unreachable!("only forms here"),
            })
            .collect();
        let first = if entries.is_empty() {
            0
        } else {
            self.commit_encoded(entries, encoded)?
        };
        let logged = |n: usize, duplicate: bool| IngestOutcome::Logged {
            index: first + n as u64,
            verdict: verdicts[n].clone(),
            duplicate,
        };
        Ok(slots
            .into_iter()
            .map(|slot| match slot {
                Slot::Done(outcome) => outcome,
                Slot::Entry(n) => logged(n, false),
                Slot::SameAs(n) => logged(n, true),
            })
            .collect())
    }

    /// Records a change of the registry (new officer or corrector keys, new regions or TPS) as an
    /// entry signed by the authority key in `DATA/keys/authority.key`. Checks it applies first.
    pub fn change_registry(
        &mut self,
        data: &Path,
        part: crate::entry::RegistryPart,
    ) -> Result<u64, EngineError> {
        self.check_poisoned()?;
        let authority = read_secret(&data.join("keys/authority.key"))?;
        for (_, key) in part.enrollments.iter().chain(&part.correctors) {
            key.check_enrollable()
                .map_err(|e| EngineError::Setup(format!("key {key}: {e}")))?;
        }
        {
            // Dry run on a copy of the registry, so a bad change is refused before it is logged.
            let state = self.shared.state.read().expect("not poisoned");
            if state.genesis.as_ref().map(|g| g.authority) != Some(authority.public()) {
                return Err(EngineError::Setup(
                    "keys/authority.key is not the authority named in the genesis".into(),
                ));
            }
            let mut registry = state.registry.clone();
            for (tps, key) in &part.enrollments {
                registry
                    .enroll(*tps, *key)
                    .map_err(|e| EngineError::Setup(e.to_string()))?;
            }
            for (region, key) in &part.correctors {
                registry
                    .add_corrector(*region, *key)
                    .map_err(|e| EngineError::Setup(e.to_string()))?;
            }
        }
        self.commit(vec![Admin::Registry(part).sign(&authority)])
    }

    /// Ingests recapitulation forms whose signatures the caller verified: the signer must be enrolled
    /// for that level and region; the verdict is the form's own arithmetic and shape.
    pub fn ingest_recaps(
        &mut self,
        forms: Vec<saksi_election::recap::SignedRecap>,
    ) -> Result<Vec<IngestOutcome>, EngineError> {
        self.check_poisoned()?;
        let mut outcomes: Vec<Option<IngestOutcome>> = Vec::with_capacity(forms.len());
        let mut entries = Vec::new();
        let mut slots = Vec::new();
        {
            let state = self.shared.state.read().expect("not poisoned");
            let mut batch: HashMap<[u8; 32], usize> = HashMap::new();
            for form in forms {
                let digest = form.digest();
                if let Some(index) = state.logged_recap(&digest) {
                    let verdict = state
                        .recaps
                        .get(&(form.form.level, form.form.region))
                        .and_then(|r| r.history.iter().find(|(i, _)| *i == index))
                        .map(|(_, v)| v.clone())
                        .expect("a logged recap digest has its history entry");
                    outcomes.push(Some(IngestOutcome::Logged {
                        index,
                        verdict,
                        duplicate: true,
                    }));
                    continue;
                }
                if batch.contains_key(&digest) {
                    outcomes.push(Some(IngestOutcome::Refused {
                        code: "DUPLICATE",
                        detail: "the same recap twice in one batch".into(),
                    }));
                    continue;
                }
                if !state
                    .registry
                    .is_recap_officer(form.form.region, &form.form.signer)
                {
                    outcomes.push(Some(IngestOutcome::Refused {
                        code: "SIGNER_NOT_ENROLLED",
                        detail: format!(
                            "signer = {}, not a recapitulation officer for this region",
                            form.form.signer
                        ),
                    }));
                    continue;
                }
                let verdict = recap_verdict(&state, &form.form);
                batch.insert(digest, entries.len());
                slots.push((outcomes.len(), entries.len()));
                outcomes.push(None);
                entries.push(Entry::Recap {
                    form,
                    verdict,
                    digest,
                });
            }
        }
        let verdicts: Vec<RecordedVerdict> = entries
            .iter()
            .map(|e| match e {
                Entry::Recap { verdict, .. } => verdict.clone(),
                _ => unreachable!("recaps"),
            })
            .collect();
        let first = if entries.is_empty() {
            0
        } else {
            self.commit(entries)?
        };
        for (slot, n) in slots {
            outcomes[slot] = Some(IngestOutcome::Logged {
                index: first + n as u64,
                verdict: verdicts[n].clone(),
                duplicate: false,
            });
        }
        Ok(outcomes
            .into_iter()
            .map(|o| o.expect("every outcome is set"))
            .collect())
    }

    /// Logs published rows (e.g. Sirekap's) as transcriptions signed by the operator key, each with
    /// the rulebook's verdict. Returns the verdicts.
    pub fn transcribe(
        &mut self,
        source: &str,
        sheets: Vec<Sheet>,
    ) -> Result<Vec<RecordedVerdict>, EngineError> {
        self.check_poisoned()?;
        let operator = self
            .operator
            .as_ref()
            .ok_or_else(|| EngineError::Setup("keys/operator.key is missing".into()))?;
        let entries: Vec<Entry> = {
            let state = self.shared.state.read().expect("not poisoned");
            let election = state
                .election()
                .cloned()
                .ok_or_else(|| EngineError::Setup("no genesis in the log".into()))?;
            let rulebook = log_rulebook(&state)?;
            sheets
                .into_iter()
                .map(|sheet| {
                    let facts = state.registry.tps(sheet.tps).map(|t| TpsFacts {
                        kind: t.kind,
                        dpt: t.dpt,
                    });
                    let verdict = RecordedVerdict::from_verdict(
                        &check_sheet_in(rulebook, &sheet, facts, &election),
                        rulebook,
                    );
                    Entry::transcription(source, sheet, operator, verdict)
                })
                .collect()
        };
        let verdicts = entries
            .iter()
            .map(|e| match e {
                Entry::Transcription { verdict, .. } => verdict.clone(),
                _ => unreachable!("only transcriptions here"),
            })
            .collect();
        self.commit(entries)?;
        Ok(verdicts)
    }
}

/// Applies a registry change to a copy of `registry`, checking every key, as `State::apply` would.
fn dry_run_registry(registry: &Registry, part: &crate::entry::RegistryPart) -> Result<(), String> {
    let mut registry = registry.clone();
    for (code, name) in &part.regions {
        saksi_election::canonical::check_free_text("a region name", name)?;
        registry
            .add_region(*code, name)
            .map_err(|e| e.to_string())?;
    }
    for tps in &part.tps {
        registry.add_tps(tps.clone()).map_err(|e| e.to_string())?;
    }
    for (region, key) in &part.correctors {
        registry
            .add_corrector(*region, *key)
            .map_err(|e| e.to_string())?;
    }
    for (tps, key) in &part.enrollments {
        registry.enroll(*tps, *key).map_err(|e| e.to_string())?;
    }
    for (region, key) in &part.recap_officers {
        key.check_enrollable()
            .map_err(|e| format!("key {key}: {e}"))?;
        registry
            .add_recap_officer(*region, *key)
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// A witness policy's own shape: a quorum it can meet, keys of the cosignature type (0x04).
pub fn check_witness_policy(policy: &crate::entry::WitnessPolicy) -> Result<(), String> {
    if policy.quorum as usize > policy.witnesses.len() {
        return Err("the quorum is larger than the number of witnesses".into());
    }
    for (vkey, _) in &policy.witnesses {
        let key =
            saksi_tlog::note::Verifier::parse(vkey).map_err(|e| format!("witness key: {e}"))?;
        if key.kind != saksi_tlog::note::TYPE_COSIGNATURE_V1 {
            return Err(format!("{vkey}: a witness key has type 0x04"));
        }
    }
    Ok(())
}

/// The verdict on a recap form: its own arithmetic and rows against the logged registry.
pub fn recap_verdict(state: &State, form: &saksi_election::recap::RecapForm) -> RecordedVerdict {
    let mut codes: Vec<String> = Vec::new();
    let election_ok = state
        .election()
        .is_some_and(|e| e.id == form.election && e.contest(&form.contest).is_some());
    if !election_ok {
        codes.push("CONTEST_MISMATCH".into());
    }
    let children = state.registry.child_regions(form.region);
    for finding in saksi_election::recap::check_recap(form, &children, state.positions()) {
        if !codes.iter().any(|c| c == finding.code) {
            codes.push(finding.code.to_string());
        }
    }
    RecordedVerdict {
        accepted: codes.is_empty(),
        rejected_by: codes,
        warnings: Vec::new(),
        rulebook: Arc::from(state.rulebook().unwrap_or(Rulebook::CURRENT).name()),
    }
}

/// The rulebook the log's genesis names; a log made under a version this build does not know is
/// refused rather than judged by other rules.
fn log_rulebook(state: &State) -> Result<Rulebook, EngineError> {
    let genesis = state
        .genesis
        .as_ref()
        .ok_or_else(|| EngineError::Setup("no genesis in the log".into()))?;
    Rulebook::named(&genesis.rulebook_version).ok_or_else(|| {
        EngineError::Setup(format!(
            "the log's genesis names rulebook {}, which this saksi does not know",
            genesis.rulebook_version
        ))
    })
}

/// One witness's request: connect, send and read its answer (per the C2SP tlog-witness spec).
pub const WITNESS_REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);
/// All witnesses together: past this the checkpoint stays unpublished until the next commit.
pub const WITNESS_DEADLINE: std::time::Duration = std::time::Duration::from_secs(4);
/// A witness answers with cosignature lines (or a size): a few hundred bytes.
const WITNESS_MAX_RESPONSE_BYTES: u64 = 64 << 10;

/// A witness round running on its own thread.
struct WitnessRound {
    result: std::sync::mpsc::Receiver<RoundResult>,
}

struct RoundResult {
    committed: Arc<Published>,
    /// Valid cosignature lines, in the order they arrived.
    lines: Vec<String>,
    /// Key ids of the witnesses that cosigned (they have now seen this size).
    cosigned: Vec<u32>,
    quorum: u32,
}

/// Asks every witness at once, each on its own thread; returns the valid cosignature lines (and who
/// gave them) as soon as `quorum` arrived, or whatever arrived by WITNESS_DEADLINE. A witness still
/// answering then is left to its thread, which ends within WITNESS_REQUEST_TIMEOUT.
fn gather_cosignatures(requests: Vec<WitnessRequest>, quorum: u32) -> (Vec<String>, Vec<u32>) {
    let (sender, answers) = std::sync::mpsc::channel::<(u32, Option<String>)>();
    let mut asked = 0usize;
    for request in requests {
        let sender = sender.clone();
        let spawned = std::thread::Builder::new()
            .name("saksi-witness".into())
            .spawn(move || {
                let id = request.witness.id;
                let _ = sender.send((id, request.ask()));
            });
        if spawned.is_ok() {
            asked += 1;
        }
    }
    drop(sender);
    let deadline = std::time::Instant::now() + WITNESS_DEADLINE;
    let (mut lines, mut cosigned) = (Vec::new(), Vec::new());
    let mut heard = 0usize;
    while lines.len() < quorum as usize && heard < asked {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match answers.recv_timeout(left) {
            Ok((id, Some(line))) => {
                lines.push(line);
                cosigned.push(id);
            }
            Ok((_, None)) => {}
            Err(_) => break,
        }
        heard += 1;
    }
    (lines, cosigned)
}

/// What one witness thread needs: all owned, so the thread outlives nothing it borrows.
struct WitnessRequest {
    client: saksi_client::Client,
    storage: Arc<dyn Storage>,
    note: String,
    size: u64,
    /// The size this witness last cosigned, as far as we know (0: never).
    old: u64,
    url: String,
    log: saksi_tlog::note::Verifier,
    witness: saksi_tlog::note::Verifier,
}

impl WitnessRequest {
    /// The witness's valid cosignature line, or `None`. Once, or twice when the witness answers 409
    /// with the size it last saw (then with a proof from that size).
    fn ask(&self) -> Option<String> {
        let mut old = self.old;
        for _attempt in 0..2 {
            let proof = if old == 0 || old >= self.size {
                Vec::new()
            } else {
                let mut reader = TileReader::new(self.storage.clone(), self.size);
                saksi_tlog::merkle::consistency_proof(&mut reader, old, self.size).ok()?
            };
            let mut body = format!("old {old}\n");
            for hash in &proof {
                body.push_str(&hash.to_base64());
                body.push('\n');
            }
            body.push('\n');
            body.push_str(&self.note);
            let response = self.client.post(&self.url, body.as_bytes()).ok()?;
            match response.status {
                200 => {
                    let reply = String::from_utf8_lossy(&response.body);
                    let cosigned = format!("{}{reply}", self.note);
                    let known = [self.log.clone(), self.witness.clone()];
                    let note = saksi_tlog::note::open(cosigned.as_bytes(), &known).ok()?;
                    return note
                        .verified
                        .iter()
                        .find(|s| s.name == self.witness.name && s.id == self.witness.id)
                        .map(|line| line.encode());
                }
                409 => match String::from_utf8_lossy(&response.body)
                    .trim()
                    .parse::<u64>()
                {
                    Ok(latest) if latest <= self.size && latest != old => old = latest,
                    _ => return None,
                },
                _ => return None,
            }
        }
        None
    }
}

fn duplicate_of(state: &State, tps: Code, index: u64) -> IngestOutcome {
    let verdict = state
        .tps_record(tps)
        .and_then(|r| r.history.iter().find(|h| h.index == index))
        .map(|h| h.verdict.clone())
        .expect("invariant: a logged digest has its TPS history entry");
    IngestOutcome::Logged {
        index,
        verdict,
        duplicate: true,
    }
}

/// Entries decoded per parallel step of a replay.
const REPLAY_CHUNK_BUNDLES: u64 = 128;

/// Rebuilds the state from the first `size` entries of the log. Decoding runs on every core; applying
/// runs in log order.
pub fn replay(storage: Arc<dyn Storage>, size: u64) -> Result<State, EngineError> {
    let mut state = State::default();
    let bundles = size.div_ceil(256);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    let mut next = 0u64;
    while next < bundles {
        let end = (next + REPLAY_CHUNK_BUNDLES * workers).min(bundles);
        let per = (end - next).div_ceil(workers);
        let decoded: Vec<Result<Vec<Entry>, EngineError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|w| {
                    let storage = storage.clone();
                    let from = next + w * per;
                    let to = (from + per).min(end);
                    scope.spawn(move || -> Result<Vec<Entry>, EngineError> {
                        let mut reader = TileReader::new(storage, size);
                        let mut out = Vec::new();
                        for bundle in from..to {
                            for bytes in reader.bundle(bundle)? {
                                out.push(Entry::decode(&bytes)?);
                            }
                        }
                        Ok(out)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("replay worker panicked"))
                .collect()
        });
        for part in decoded {
            for entry in part? {
                let index = state.size;
                state.apply(index, &entry)?;
            }
        }
        next = end;
    }
    Ok(state)
}
