//! A C2SP tlog-witness: checks each submitted checkpoint against the latest one it cosigned for that
//! log (consistency proof), persists the new one, and only then returns its cosignature (type 0x04).
//! The check of the old size and the write of the new state happen under one lock, so two concurrent
//! submissions can never both be cosigned from the same old size.
//!
//! State: one file per log, `logs/<hex key id>` in the witness's [`Storage`], holding the latest
//! cosigned checkpoint note; written durably before any cosignature leaves.

use std::sync::Mutex;

use crate::checkpoint::{self, Checkpoint};
use crate::hash::{empty_root, Hash};
use crate::merkle::verify_consistency;
use crate::note::{NoteError, Signer, Verifier, TYPE_COSIGNATURE_V1};
use crate::storage::Storage;

/// The spec's limit on consistency proof lines.
pub const MAX_PROOF_LINES: usize = 63;
/// Largest request body we read.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// A refusal, with the HTTP status the spec assigns to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WitnessError {
    pub status: u16,
    pub message: String,
    /// For 409: the size of the latest cosigned checkpoint.
    pub latest_size: Option<u64>,
}

fn refuse(status: u16, message: impl Into<String>) -> WitnessError {
    WitnessError {
        status,
        message: message.into(),
        latest_size: None,
    }
}

pub struct Witness {
    signer: Signer,
    logs: Vec<Verifier>,
    storage: Box<dyn Storage>,
    lock: Mutex<()>,
    clock: Box<dyn Fn() -> u64 + Send + Sync>,
}

impl Witness {
    /// `signer` must be a cosignature (type 0x04) key; `logs` the log keys this witness follows.
    pub fn new(
        signer: Signer,
        logs: Vec<Verifier>,
        storage: Box<dyn Storage>,
    ) -> Result<Witness, NoteError> {
        if signer.kind != TYPE_COSIGNATURE_V1 {
            return Err(NoteError::BadKey(
                "a witness signs type 0x04 cosignatures".into(),
            ));
        }
        let clock = Box::new(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_secs().max(1))
        });
        Ok(Witness {
            signer,
            logs,
            storage,
            lock: Mutex::new(()),
            clock,
        })
    }

    pub fn verifier(&self) -> Verifier {
        self.signer.verifier()
    }

    fn state_path(log: &Verifier) -> String {
        format!("logs/{:08x}", log.id)
    }

    /// The latest checkpoint cosigned for a log, if any.
    pub fn latest(&self, log: &Verifier) -> Result<Option<Checkpoint>, WitnessError> {
        let note = self
            .storage
            .read(&Witness::state_path(log))
            .map_err(|e| refuse(500, format!("reading state: {e}")))?;
        match note {
            None => Ok(None),
            Some(note) => checkpoint::open(&note, log, &[])
                .map(|s| Some(s.checkpoint))
                .map_err(|e| refuse(500, format!("stored state does not verify: {e}"))),
        }
    }

    /// Handles an `add-checkpoint` request body; returns the cosignature lines.
    pub fn add_checkpoint(&self, body: &[u8]) -> Result<String, WitnessError> {
        if body.len() > MAX_REQUEST_BYTES {
            return Err(refuse(400, "request too large"));
        }
        let text = std::str::from_utf8(body).map_err(|_| refuse(400, "not UTF-8"))?;
        let (head, note) = text
            .split_once("\n\n")
            .ok_or_else(|| refuse(400, "no blank line before the checkpoint"))?;
        let mut lines = head.split('\n');
        let old_text = lines
            .next()
            .and_then(|l| l.strip_prefix("old "))
            .ok_or_else(|| refuse(400, "first line must be old <size>"))?;
        let canonical = !old_text.is_empty()
            && old_text.bytes().all(|b| b.is_ascii_digit())
            && (old_text == "0" || !old_text.starts_with('0'));
        let old_size: u64 = if canonical {
            old_text.parse().map_err(|_| refuse(400, "bad old size"))?
        } else {
            return Err(refuse(400, "bad old size"));
        };
        let proof: Vec<Hash> = lines
            .map(|l| {
                Hash::from_base64(l).ok_or_else(|| refuse(400, "a proof line is not a base64 hash"))
            })
            .collect::<Result<_, _>>()?;
        if proof.len() > MAX_PROOF_LINES {
            return Err(refuse(400, "too many proof lines"));
        }
        // Which log: by origin (the first line of the checkpoint).
        let origin = note.split('\n').next().unwrap_or_default();
        let log = self
            .logs
            .iter()
            .find(|l| l.name == origin)
            .ok_or_else(|| refuse(404, format!("unknown log {origin:?}")))?;
        let signed = checkpoint::open(note.as_bytes(), log, &[]).map_err(|e| match e {
            NoteError::Malformed(why) => refuse(400, why),
            other => refuse(403, other.to_string()),
        })?;
        let new = signed.checkpoint;
        if old_size > new.size {
            return Err(refuse(
                400,
                format!(
                    "old size {old_size} is beyond the checkpoint's {}",
                    new.size
                ),
            ));
        }
        if new.size == 0 && new.root != empty_root() {
            return Err(refuse(
                422,
                "a checkpoint of size 0 must have the empty root",
            ));
        }
        // Check against the latest cosigned state and persist the new one, atomically.
        let _guard = self
            .lock
            .lock()
            .map_err(|_| refuse(500, "state lock poisoned"))?;
        let latest = self.latest(log)?;
        let latest_size = latest.as_ref().map_or(0, |c| c.size);
        if old_size != latest_size {
            return Err(WitnessError {
                status: 409,
                message: format!("latest cosigned size is {latest_size}"),
                latest_size: Some(latest_size),
            });
        }
        if old_size == 0 {
            if !proof.is_empty() {
                return Err(refuse(422, "a proof from size 0 must be empty"));
            }
        } else {
            let old_root = latest.as_ref().expect("latest_size > 0").root;
            verify_consistency(old_size, new.size, &proof, &old_root, &new.root)
                .map_err(|e| refuse(422, format!("not consistent with size {old_size}: {e}")))?;
        }
        // Persist the note as received (its log signature is what makes it evidence).
        self.storage
            .write_durable(&[(Witness::state_path(log), note.as_bytes().to_vec())])
            .map_err(|e| refuse(500, format!("persisting state: {e}")))?;
        Ok(self.signer.sign_line(&new.text(), (self.clock)()))
    }
}
