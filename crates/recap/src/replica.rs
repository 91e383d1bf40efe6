//! A read replica: the state rebuilt from a copy of the log that another process keeps current (a
//! PostgreSQL hot standby of the shared store, or a directory `saksi mirror --follow` writes), and
//! followed from there. It holds no key and writes nothing, so any number can run, anywhere, and a
//! compromised replica can serve stale figures at worst: every figure it serves is under a
//! checkpoint the log's key signed, and every checkpoint it moves to is proved to extend the last.

use std::path::Path;
use std::sync::{Arc, RwLock};

use saksi_tlog::note::Verifier;
use saksi_tlog::{LogError, Published, Storage, TileCache, TileReader, CHECKPOINT_PATH};

use crate::engine::StoreFiles;
use crate::error::EngineError;
use crate::evidence::EvidenceStore;
use crate::replay::replay;
use crate::report_texts::ReportTexts;
use crate::shared::{Role, Shared, RECEIPT_TILE_CACHE};

/// Photos and report texts other processes store, for a replica to serve: directories `saksi
/// mirror --evidence` and `--reports` keep (`None`: it serves none), read without a lock.
pub fn files_in_dirs(evidence: Option<&Path>, report_texts: Option<&Path>) -> StoreFiles {
    StoreFiles {
        evidence: Arc::new(match evidence {
            Some(dir) => EvidenceStore::open_read_only(dir),
            None => EvidenceStore::none(),
        }),
        report_texts: Arc::new(match report_texts {
            Some(dir) => ReportTexts::open_read_only(dir),
            None => ReportTexts::none(),
        }),
    }
}

pub struct Replica {
    shared: Arc<Shared>,
    verifier: Verifier,
}

impl Replica {
    /// Rebuilds the state up to the store's published checkpoint, which must verify with
    /// `verifier` and whose root the store's tiles must give.
    pub fn open(
        storage: Arc<dyn Storage>,
        verifier: Verifier,
        files: StoreFiles,
    ) -> Result<Replica, EngineError> {
        let note = storage
            .read(CHECKPOINT_PATH)
            .map_err(EngineError::io("reading the checkpoint"))?
            .ok_or_else(|| {
                EngineError::Config(
                    "the log copy has no published checkpoint yet (is the mirror or standby \
                     set up?)"
                        .into(),
                )
            })?;
        let checkpoint = saksi_tlog::checkpoint::open(&note, &verifier, &[])
            .map_err(|e| {
                EngineError::Config(format!(
                    "the log copy's checkpoint does not verify with the key given: {e}"
                ))
            })?
            .checkpoint;
        let mut reader = TileReader::new(storage.clone(), checkpoint.size);
        let root = saksi_tlog::merkle::NodeSource::range_hash(&mut reader, 0, checkpoint.size)
            .map_err(EngineError::Log)?;
        if root != checkpoint.root {
            return Err(EngineError::Log(LogError::Corrupt(format!(
                "the copy's tiles give root {root} at size {}, its checkpoint says {}",
                checkpoint.size, checkpoint.root
            ))));
        }
        let state = replay(storage.clone(), checkpoint.size)?;
        let shared = Arc::new(Shared {
            state: RwLock::new(state),
            key_points: Default::default(),
            key_points_refresh: Default::default(),
            key_points_pending: Default::default(),
            published: RwLock::new(Arc::new(Published {
                checkpoint,
                note: String::from_utf8(note).expect("a verified note is UTF-8"),
            })),
            storage,
            vkey: verifier.encode(),
            evidence: files.evidence,
            intake_signer: None,
            report_texts: files.report_texts,
            tiles: Arc::new(TileCache::new(RECEIPT_TILE_CACHE)),
            publication: Default::default(),
            role: Default::default(),
            followed_at: Default::default(),
            observer: Default::default(),
        });
        shared.set_role(Role::Replica);
        *shared.followed_at.lock().expect("not poisoned") = Some(std::time::Instant::now());
        Ok(Replica { shared, verifier })
    }

    /// Moves to the copy's newest checkpoint if it grew (see [`Shared::follow`]); returns the
    /// served size. On an error nothing moved: the replica keeps serving what it had.
    pub fn follow(&self) -> Result<u64, EngineError> {
        self.shared.follow(&self.verifier)
    }

    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }
}

/// Storage with no file that refuses every write: photos and texts on a replica given none.
pub(crate) struct NoFiles;

impl Storage for NoFiles {
    fn read(&self, _: &str) -> std::io::Result<Option<Vec<u8>>> {
        Ok(None)
    }

    fn list(&self, _: &str) -> std::io::Result<Vec<String>> {
        Ok(Vec::new())
    }

    fn write_durable(&self, _: &[(String, Vec<u8>)]) -> std::io::Result<()> {
        Err(read_only())
    }

    fn create_durable(&self, _: &[(String, Vec<u8>)]) -> std::io::Result<()> {
        Err(read_only())
    }

    fn remove_dir(&self, _: &str) -> std::io::Result<()> {
        Err(read_only())
    }
}

fn read_only() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::PermissionDenied,
        "a read replica stores nothing",
    )
}
