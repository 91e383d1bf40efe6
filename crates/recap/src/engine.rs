//! The engine: one writer that owns the log and keeps the state in step with it.
//!
//! Ingest order: a batch is decided against the state *plus its own earlier entries*
//! ([`crate::batch`]), appended (durably, see the log's commit protocol), and only then applied to
//! the state; then [`crate::publication`] decides when readers see it. So a reader never sees a
//! figure that is not yet in a published checkpoint.
//!
//! Any failure after the append began poisons the engine: the log and the state may disagree, so
//! it refuses further writes until a restart rebuilds the state from the log ([`crate::replay`]).

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use saksi_election::form::EncodedForm;
use saksi_election::recap::SignedRecap;
use saksi_election::sheet::Sheet;
use saksi_election::sign::SecretKey;
use saksi_election::{Election, Registry};
use saksi_tlog::log::{MAX_BATCH_BYTES, MAX_BATCH_ENTRIES};
use saksi_tlog::{DirStorage, Log, Published, Publishing, Storage, CHECKPOINT_PATH};

pub use crate::batch::{recap_verdict, IngestOutcome};
pub use crate::cosign::{WITNESS_DEADLINE, WITNESS_REQUEST_TIMEOUT};
pub use crate::datadir::{DataDir, ServerKeys};
pub use crate::error::EngineError;
pub use crate::publication::{Moment, PUBLISH_INTERVAL};
pub use crate::shared::Shared;
pub use crate::statements::{check_witness_policy, genesis_statements, MAX_STATEMENT_BYTES};

use crate::batch::{self, Batch};
use crate::entry::{Admin, Entry, RecordedVerdict, WitnessPolicy};
use crate::publication::Publication;
use crate::replay::replay;
use crate::shared::RECEIPT_TILE_CACHE;

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

pub struct Engine {
    log: Log,
    shared: Arc<Shared>,
    operator: Option<SecretKey>,
    poisoned: Option<String>,
    publication: Publication,
    /// The data directory: its key reopens the log on a takeover.
    dir: DataDir,
    /// Another server writes this log (a store shared by several, PostgreSQL): this engine follows
    /// the published checkpoint, serves reads, and writes nothing until [`Engine::try_take_over`].
    standby: bool,
    /// The store is shared by several servers, so a poisoned engine may recover by taking over
    /// again (after a database failover, or to become a standby when another server won).
    shared_store: bool,
    /// Whether (and how) this engine keeps its form signers' points once it writes: set by
    /// [`Engine::hold_key_points`], `None` for the tools that check no form's signature.
    key_points: Option<KeyPointsFill>,
}

/// How a writer fills its form signers' points ([`Shared::refresh_key_points`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyPointsFill {
    /// Before the call returns: an import, about to check every form on every core.
    Now,
    /// On a thread of its own: a server, which answers at once (on opening, on taking over, after
    /// a registry change) while the points fill in (~2-3 s for a national registry on 2 cores).
    Background,
}

impl Drop for Engine {
    /// Best effort: a `checkpoint` left behind is republished by the next open anyway.
    fn drop(&mut self) {
        self.settle_publication(WITNESS_DEADLINE + WITNESS_REQUEST_TIMEOUT);
    }
}

/// Why a standby refuses writes.
pub const STANDBY: &str = "this server is a standby: another server writes this log (it serves reads, follows the published checkpoint, and takes over if the writer stops)";

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

/// Where a data directory's log lives. Keys stay in the data directory either way.
#[derive(Clone)]
pub enum LogStore {
    /// The directory's own `log/`, laid out as it is served, and its `evidence/` and
    /// `report-texts/`: the embedded default.
    Dir,
    /// Storage the caller opened (the binary's `--store postgres://...`).
    Opened(OpenedStore),
}

/// A log store the caller opened, shared by several servers.
#[derive(Clone)]
pub struct OpenedStore {
    pub log: Arc<dyn Storage>,
    /// Photos and report texts in the same store, so that every server of the log serves the same
    /// ones and they survive the loss of one server; `None`: in the data directory.
    pub files: Option<StoreFiles>,
}

/// Evidence photos and report texts kept beside the log in a shared store.
#[derive(Clone)]
pub struct StoreFiles {
    pub evidence: Arc<crate::evidence::EvidenceStore>,
    pub report_texts: Arc<crate::report_texts::ReportTexts>,
}

impl LogStore {
    fn open(&self, dir: &DataDir) -> Result<Arc<dyn Storage>, EngineError> {
        Ok(match self {
            LogStore::Dir => {
                Arc::new(DirStorage::open(&dir.log()).map_err(EngineError::io("opening the log"))?)
            }
            LogStore::Opened(store) => store.log.clone(),
        })
    }

    /// The photos and report texts: the store's, or the data directory's.
    fn files(&self, dir: &DataDir) -> Result<StoreFiles, EngineError> {
        if let LogStore::Opened(OpenedStore {
            files: Some(files), ..
        }) = self
        {
            return Ok(files.clone());
        }
        Ok(StoreFiles {
            evidence: Arc::new(
                crate::evidence::EvidenceStore::open(&dir.evidence())
                    .map_err(EngineError::io("opening the evidence store"))?,
            ),
            report_texts: Arc::new(
                crate::report_texts::ReportTexts::open(&dir.report_texts())
                    .map_err(EngineError::io("opening the report texts"))?,
            ),
        })
    }

    fn refuse_existing_log(&self, dir: &DataDir) -> Result<(), EngineError> {
        match self {
            LogStore::Dir => dir.refuse_existing_log(),
            LogStore::Opened(store) => {
                let checkpoints = store
                    .log
                    .list("checkpoints")
                    .map_err(EngineError::io("reading the store"))?;
                if !checkpoints.is_empty() {
                    return Err(EngineError::data_dir(
                        dir.root(),
                        "the store already holds a log (init makes a new one; serve and import open it)",
                    ));
                }
                Ok(())
            }
        }
    }
}

impl Engine {
    /// Creates a new election's data directory: keys, the log, and its first entries (genesis, then
    /// the registry), signed here with `authority`. Refuses a directory that already holds a log.
    /// (Where the authority's key must never meet the server, use [`DataDir::create_keys`],
    /// [`genesis_statements`] offline, and [`Engine::init_from_statements`].)
    pub fn init(
        data: &Path,
        origin: &str,
        election: Election,
        registry: &Registry,
        authority: &SecretKey,
    ) -> Result<Engine, EngineError> {
        Engine::init_in(data, &LogStore::Dir, origin, election, registry, authority)
    }

    /// [`Engine::init`] with the log in `store`.
    pub fn init_in(
        data: &Path,
        store: &LogStore,
        origin: &str,
        election: Election,
        registry: &Registry,
        authority: &SecretKey,
    ) -> Result<Engine, EngineError> {
        let dir = DataDir::new(data);
        store.refuse_existing_log(&dir)?;
        let keys = dir.create_keys(origin)?;
        let statements = genesis_statements(&keys, election, registry, authority);
        Engine::create_log(&dir, store, &statements)
    }

    /// Creates the log of a data directory whose keys [`DataDir::create_keys`] made, from the genesis
    /// and registry statements the authority signed elsewhere ([`genesis_statements`]), after
    /// checking them ([`crate::statements::check_genesis_statements`]).
    pub fn init_from_statements(
        data: &Path,
        statements: &[Vec<u8>],
    ) -> Result<Engine, EngineError> {
        Engine::init_from_statements_in(data, &LogStore::Dir, statements)
    }

    /// [`Engine::init_from_statements`] with the log in `store`.
    pub fn init_from_statements_in(
        data: &Path,
        store: &LogStore,
        statements: &[Vec<u8>],
    ) -> Result<Engine, EngineError> {
        let dir = DataDir::new(data);
        store.refuse_existing_log(&dir)?;
        let keys = dir.server_keys()?;
        crate::statements::check_genesis_statements(&keys, statements)
            .map_err(EngineError::Statement)?;
        Engine::create_log(&dir, store, statements)
    }

    fn create_log(
        dir: &DataDir,
        store: &LogStore,
        statements: &[Vec<u8>],
    ) -> Result<Engine, EngineError> {
        let signer = dir.log_signer()?;
        let mut log = Log::open(store.open(dir)?, signer)?;
        append_all(&mut log, statements)?;
        drop(log);
        Engine::open_in(dir.root(), store)
    }

    /// Opens a data directory: recovers the log (see its commit protocol), rebuilds the state by
    /// replaying every entry, and publishes what the publication policy allows.
    pub fn open(data: &Path) -> Result<Engine, EngineError> {
        Engine::open_in(data, &LogStore::Dir)
    }

    /// [`Engine::open`] with the log in `store`.
    pub fn open_in(data: &Path, store: &LogStore) -> Result<Engine, EngineError> {
        let mut engine = Engine::open_as(data, store, false)?;
        engine.tick_publication(Moment::Idle)?;
        Ok(engine)
    }

    /// Opens a data directory whose log another server writes: the state is rebuilt and followed
    /// ([`Engine::follow`]), and nothing is written, not even the publication, until
    /// [`Engine::try_take_over`] makes this server the writer.
    pub fn open_standby_in(data: &Path, store: &LogStore) -> Result<Engine, EngineError> {
        Engine::open_as(data, store, true)
    }

    fn open_as(data: &Path, store: &LogStore, standby: bool) -> Result<Engine, EngineError> {
        let dir = DataDir::new(data);
        dir.refuse_authority_key()?;
        let signer = dir.log_signer()?;
        let vkey = signer.verifier().encode();
        let operator = dir.operator().ok();
        let storage = store.open(&dir)?;
        // Step 4 of the log's commit protocol (publish) is ours: see crate::publication.
        let log = Log::open_with(storage.clone(), signer, Publishing::ByCaller)?;
        let state = replay(storage.clone(), log.committed().checkpoint.size)?;
        let StoreFiles {
            evidence,
            report_texts,
        } = store.files(&dir)?;
        let served = match storage
            .read(CHECKPOINT_PATH)
            .map_err(EngineError::io("reading the checkpoint"))?
        {
            Some(note) => {
                let checkpoint = saksi_tlog::checkpoint::open(&note, log.verifier(), &[])
                    .map_err(|e| {
                        EngineError::data_dir(
                            dir.log().join(CHECKPOINT_PATH),
                            format!("the published checkpoint does not verify: {e}"),
                        )
                    })?
                    .checkpoint;
                Arc::new(Published {
                    checkpoint,
                    note: String::from_utf8(note).expect("a verified note is UTF-8"),
                })
            }
            None => log.committed(),
        };
        let publication = Publication::new(served.checkpoint.size);
        let shared = Arc::new(Shared {
            state: RwLock::new(state),
            key_points: Default::default(),
            key_points_refresh: Default::default(),
            key_points_pending: Default::default(),
            published: RwLock::new(served),
            storage,
            vkey,
            evidence,
            intake_signer: operator.as_ref().map(|k| SecretKey::from_seed(k.seed())),
            report_texts,
            tiles: Arc::new(saksi_tlog::TileCache::new(RECEIPT_TILE_CACHE)),
            publication: Default::default(),
            role: Default::default(),
            followed_at: Default::default(),
            observer: Default::default(),
        });
        shared.set_role(if standby {
            crate::shared::Role::Standby
        } else {
            crate::shared::Role::Writer
        });
        Ok(Engine {
            log,
            shared,
            operator,
            poisoned: None,
            publication,
            dir,
            standby,
            shared_store: matches!(store, LogStore::Opened(_)),
            key_points: None,
        })
    }

    /// Whether another server writes this log (see [`Engine::open_standby_in`]).
    pub fn is_standby(&self) -> bool {
        self.standby
    }

    /// Whether the engine refuses writes until it is reopened or takes over, and why.
    pub fn poisoned(&self) -> Option<&str> {
        self.poisoned.as_deref()
    }

    /// Whether a refusing engine can recover by [`Engine::try_take_over`]: on a store shared by
    /// several servers. (A directory store stays refused until the server restarts: after a failed
    /// fsync only a fresh open knows what is on disk.)
    pub fn can_take_over(&self) -> bool {
        self.shared_store
    }

    /// Makes this engine the writer if the store lets it ([`Storage::try_become_writer`]): the
    /// log is reopened from the store (recovering the committed checkpoint), the state catches up
    /// with every committed entry it lacks, and the publication resumes. `false`: another server
    /// writes; nothing changed.
    pub fn try_take_over(&mut self) -> Result<bool, EngineError> {
        let storage = self.shared.storage.clone();
        if !storage
            .try_become_writer()
            .map_err(EngineError::io("taking over as the writer"))?
        {
            return Ok(false);
        }
        let signer = self.dir.log_signer()?;
        let log = Log::open_with(storage, signer, Publishing::ByCaller)?;
        self.catch_up(log.committed().checkpoint.size)?;
        self.refresh_key_points();
        self.log = log;
        self.poisoned = None;
        self.standby = false;
        self.shared.set_role(crate::shared::Role::Writer);
        self.publication = Publication::new(self.shared.published().checkpoint.size);
        self.tick_publication(Moment::Idle)?;
        Ok(true)
    }

    /// A standby's step: reads the published checkpoint from the store and, if it grew, applies the
    /// new entries and publishes it to this server's readers. Returns the published size.
    pub fn follow(&mut self) -> Result<u64, EngineError> {
        self.shared.follow(self.log.verifier())
    }

    /// Applies the entries from the state's size up to `size`, read from the store.
    fn catch_up(&mut self, size: u64) -> Result<(), EngineError> {
        self.shared.catch_up(size)
    }

    /// Keeps the registry's form signers' points from now on (see [`Shared::key_points`]), filled
    /// as `fill` says: at once if this engine writes, else when it takes over. Asking again with
    /// the same `fill` does nothing.
    pub fn hold_key_points(&mut self, fill: KeyPointsFill) {
        if self.key_points == Some(fill) {
            return;
        }
        self.key_points = Some(fill);
        if !self.standby {
            self.refresh_key_points();
        }
    }

    fn refresh_key_points(&self) {
        match self.key_points {
            None => {}
            Some(KeyPointsFill::Now) => self.shared.refresh_key_points(),
            Some(KeyPointsFill::Background) => self.shared.refresh_key_points_in_background(),
        }
    }

    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// Why the latest committed checkpoint is not published, if it is not (a witness round short of
    /// its quorum).
    pub fn publication_problem(&self) -> Option<&str> {
        self.publication.problem()
    }

    fn witness_policy(&self) -> Option<WitnessPolicy> {
        let state = self.shared.state.read().expect("not poisoned");
        state.witness_policy.clone()
    }

    /// One step of the publication policy ([`crate::publication`]). The server's writer calls it with
    /// [`Moment::Idle`] when [`Engine::next_publication_tick`] says; commits call it themselves.
    /// A failure (writing `checkpoint`) poisons the engine.
    pub fn tick_publication(&mut self, moment: Moment) -> Result<(), EngineError> {
        self.check_poisoned()?;
        let policy = self.witness_policy();
        let ticked = self
            .publication
            .tick(&mut self.log, &self.shared, policy.as_ref(), moment);
        self.poison_on(ticked)
    }

    /// How long an idle writer may wait before ticking the publication again; `None`: until the
    /// next commit.
    pub fn next_publication_tick(&self) -> Option<Duration> {
        if self.poisoned.is_some() {
            return None;
        }
        self.publication
            .next_tick(&self.log, self.witness_policy().as_ref())
    }

    /// Waits (at most `timeout`) for the running witness round, publishes what it brings, and brings
    /// the `checkpoint` file up to date: for commands that exit after their writes.
    pub fn settle_publication(&mut self, timeout: Duration) {
        if self.poisoned.is_some() || self.standby {
            return;
        }
        let policy = self.witness_policy();
        let settled =
            self.publication
                .settle(&mut self.log, &self.shared, policy.as_ref(), timeout);
        let _ = self.poison_on(settled);
    }

    fn check_poisoned(&self) -> Result<(), EngineError> {
        if self.standby {
            return Err(EngineError::Poisoned(STANDBY.into()));
        }
        match &self.poisoned {
            Some(why) => Err(EngineError::Poisoned(why.clone())),
            None => Ok(()),
        }
    }

    /// Any failure once a write began leaves log and state unsure: refuse writes until restart.
    fn poison_on<T, E: Into<EngineError>>(
        &mut self,
        result: Result<T, E>,
    ) -> Result<T, EngineError> {
        result.map_err(|e| {
            let e = e.into();
            self.poisoned = Some(e.to_string());
            self.shared.set_role(crate::shared::Role::Refusing);
            e
        })
    }

    /// Appends entries (`encoded[i]` is exactly `entries[i].encode()`) and applies them to the state,
    /// then ticks the publication. Returns the first entry's index.
    fn commit(&mut self, entries: Vec<Entry>, encoded: Vec<Vec<u8>>) -> Result<u64, EngineError> {
        assert_eq!(entries.len(), encoded.len());
        let started = std::time::Instant::now();
        let appended = append_all(&mut self.log, &encoded);
        let first = self.poison_on(appended)?;
        self.shared.observe(crate::shared::Event::Committed {
            entries: encoded.len(),
            seconds: started.elapsed().as_secs_f64(),
        });
        let mut state = self.shared.state.write().expect("not poisoned");
        let applied: Result<(), _> = entries
            .iter()
            .enumerate()
            .try_for_each(|(i, entry)| state.apply(first + i as u64, entry));
        drop(state);
        self.poison_on(applied)?;
        let enrols = entries.iter().any(|entry| {
            matches!(
                entry,
                Entry::Admin {
                    statement: Admin::Registry(_),
                    ..
                }
            )
        });
        if enrols {
            self.refresh_key_points();
        }
        // The batch is committed whatever happens here; a failure poisons the engine, and the next
        // write is refused.
        let _ = self.tick_publication(Moment::Committed);
        Ok(first)
    }

    /// Commits a decided batch and resolves its outcomes.
    fn commit_batch(&mut self, batch: Batch) -> Result<Vec<IngestOutcome>, EngineError> {
        let (entries, encoded, pending) = batch.split();
        let first = if entries.is_empty() {
            0
        } else {
            self.commit(entries, encoded)?
        };
        Ok(pending.resolve(first))
    }

    /// Logs a statement the election authority signed elsewhere (a registry change or a witness
    /// policy), once [`crate::statements::check_statement`] accepts it. Returns its index.
    pub fn submit_statement(&mut self, bytes: &[u8]) -> Result<u64, EngineError> {
        self.check_poisoned()?;
        let (entry, encoded) = {
            let state = self.shared.state.read().expect("not poisoned");
            crate::statements::check_statement(&state, bytes).map_err(EngineError::Statement)?
        };
        self.commit(vec![entry], vec![encoded])
    }

    /// Ingests forms whose signatures the caller has already verified (in batches, on all cores).
    /// Checks enrolment and the rulebook in order, logs authenticated forms with their verdicts, and
    /// returns one outcome per form.
    pub fn ingest(&mut self, forms: Vec<EncodedForm>) -> Result<Vec<IngestOutcome>, EngineError> {
        self.check_poisoned()?;
        let batch = {
            let state = self.shared.state.read().expect("not poisoned");
            batch::forms(&state, forms)?
        };
        self.commit_batch(batch)
    }

    /// Ingests poll witnesses' copies whose signatures the caller verified: entitled copies are
    /// logged with the rulebook's verdict on their figures, others refused. One outcome per copy.
    pub fn ingest_copies(
        &mut self,
        copies: Vec<saksi_election::copy::SignedCopy>,
    ) -> Result<Vec<IngestOutcome>, EngineError> {
        self.check_poisoned()?;
        let batch = {
            let state = self.shared.state.read().expect("not poisoned");
            batch::copies(&state, copies)?
        };
        self.commit_batch(batch)
    }

    /// Logs citizens' reports whose signatures the caller verified and whose texts are stored: a
    /// report about an unregistered place or another election is refused; one logged before is
    /// answered with its entry.
    pub fn ingest_reports(
        &mut self,
        reports: Vec<saksi_election::report::SignedReport>,
    ) -> Result<Vec<IngestOutcome>, EngineError> {
        self.check_poisoned()?;
        let batch = {
            let state = self.shared.state.read().expect("not poisoned");
            batch::reports(&state, reports)?
        };
        self.commit_batch(batch)
    }

    /// Ingests recapitulation forms whose signatures the caller verified: the signer must be enrolled
    /// for that level and region; the verdict is the form's own arithmetic and shape.
    pub fn ingest_recaps(
        &mut self,
        forms: Vec<SignedRecap>,
    ) -> Result<Vec<IngestOutcome>, EngineError> {
        self.check_poisoned()?;
        let batch = {
            let state = self.shared.state.read().expect("not poisoned");
            batch::recaps(&state, forms)
        };
        self.commit_batch(batch)
    }

    /// Logs published rows (e.g. Sirekap's) as transcriptions signed by the operator key, each with
    /// the rulebook's verdict. Returns the verdicts.
    pub fn transcribe(
        &mut self,
        source: &str,
        sheets: Vec<Sheet>,
    ) -> Result<Vec<RecordedVerdict>, EngineError> {
        self.check_poisoned()?;
        let operator = self.operator.as_ref().ok_or_else(|| {
            EngineError::data_dir(
                Path::new("keys/operator.key"),
                "missing: transcriptions are signed by the operator",
            )
        })?;
        let batch = {
            let state = self.shared.state.read().expect("not poisoned");
            batch::transcriptions(&state, source, sheets, operator)?
        };
        Ok(self
            .commit_batch(batch)?
            .into_iter()
            .map(|outcome| match outcome {
                IngestOutcome::Logged { verdict, .. } => verdict,
                IngestOutcome::Refused { .. } => unreachable!("a transcription is never refused"),
            })
            .collect())
    }
}
