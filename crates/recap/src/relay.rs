//! A relay (`saksi relay`): an independent intake for citizens' reports that anyone can run (a
//! party, a university, a newspaper) so that blocking the main server does not silence a reporter.
//!
//! A relay keeps its own tlog-tiles log, signed with its own key, of every report it accepted, and
//! answers with a receipt from that log. It then forwards each report upstream, in log order,
//! retrying while the upstream is unreachable. Its log is the public evidence for `saksi audit
//! relay`: a report the relay logged that the main log does not hold after a stated delay was not
//! forwarded, or was dropped upstream, and the relay's signed entry says which report and when.
//!
//! ```text
//! DIR/log/                  the relay's log (tlog-tiles, served at /log/)
//! DIR/relay.vkey            its verifier key, for auditors to pin
//! DIR/keys/relay.key        its signing key (Go note format), mode 0600
//! DIR/reports/              report texts by SHA-256 (as on the main server)
//! DIR/evidence/             photos by SHA-256 (as on the main server)
//! DIR/forwarding.ndjson     what the upstream answered for each entry, one line per entry
//! ```
//!
//! An entry is `{"type":"relayed","received_at":T,"report":{...},"signature":"..."}` (JCS): the
//! reporter's signed report exactly as the main log holds it, and when the relay received it. Two
//! relays given the same report log it each, and the main log holds it once (same signature, same
//! entry).
//!
//! # Invariants
//! - A report is acknowledged only once its entry is in a durable checkpoint of the relay's log.
//! - One entry per report signature: the same report again answers its first entry.
//! - The forwarding record is advisory (a crash may forget an answer; the report is then forwarded
//!   again, and the upstream answers the same entry). The auditor trusts only the two logs.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use serde_json::{json, Value};

use saksi_election::canonical;
use saksi_election::report::{Report, ReportSubmission, SignedReport};
use saksi_election::sign::Signature;
use saksi_tlog::note::{Signer, Verifier, TYPE_ED25519};
use saksi_tlog::tproof::TlogProof;
use saksi_tlog::{DirStorage, Log, LogError, Published, TileReader};

use crate::entry::Entry;
use crate::evidence::EvidenceStore;
use crate::report_texts::ReportTexts;

/// The entry type of a relay's log.
pub const RELAYED: &str = "relayed";
/// The most entries a relay keeps (in memory, one report each, about 1 KiB): a relay that fills
/// up refuses new reports (503) rather than run out of memory.
pub const MAX_RELAY_ENTRIES: u64 = 4_000_000;

/// One entry of a relay's log: a reporter's signed report and when the relay received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayedReport {
    /// Unix seconds, by the relay's clock: the start of `--max-delay` for the auditor.
    pub received_at: u64,
    pub report: SignedReport,
}

impl RelayedReport {
    pub fn encode(&self) -> Vec<u8> {
        canonical::to_vec(&json!({
            "type": RELAYED,
            "received_at": self.received_at,
            "report": self.report.report.to_json(),
            "signature": self.report.signature.to_base64(),
        }))
        .expect("a relayed report is canonicalisable")
    }

    /// Reads an entry of a relay's log: exactly its members, each well-formed, canonical bytes.
    pub fn decode(bytes: &[u8]) -> Result<RelayedReport, String> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
        let object = value.as_object().ok_or("not an object")?;
        if object.get("type").and_then(Value::as_str) != Some(RELAYED) {
            return Err(format!("not a {RELAYED:?} entry"));
        }
        if let Some(extra) = object
            .keys()
            .find(|k| !["type", "received_at", "report", "signature"].contains(&k.as_str()))
        {
            return Err(format!("unknown member {extra:?}"));
        }
        let received_at = object
            .get("received_at")
            .and_then(Value::as_u64)
            .ok_or("received_at is not a time in Unix seconds")?;
        let report = Report::from_json(&object["report"])?;
        let signature = object
            .get("signature")
            .and_then(Value::as_str)
            .and_then(|s| Signature::from_base64(s).ok())
            .ok_or("signature is not a base64 Ed25519 signature")?;
        let relayed = RelayedReport {
            received_at,
            report: SignedReport { report, signature },
        };
        if relayed.encode() != bytes {
            return Err("not in canonical form".into());
        }
        Ok(relayed)
    }

    /// The bytes the main log holds for this report: what the auditor looks for there.
    pub fn upstream_entry(&self) -> Vec<u8> {
        Entry::Report {
            report: self.report.clone(),
        }
        .encode()
    }
}

/// What the upstream said of an entry, as the forwarder recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Forwarded {
    /// Logged upstream at this index (its receipt checked when the relay knows the upstream's key).
    Logged { upstream_index: u64, at: u64 },
    /// Refused for good (a 4xx other than "come back later"): the code and detail the upstream gave.
    Refused { status: u16, error: String, at: u64 },
}

impl Forwarded {
    fn to_json(&self, index: u64) -> Value {
        match self {
            Forwarded::Logged { upstream_index, at } => {
                json!({"index": index, "upstream_index": upstream_index, "at": at})
            }
            Forwarded::Refused { status, error, at } => {
                json!({"index": index, "refused": {"status": status, "error": error}, "at": at})
            }
        }
    }

    fn from_json(value: &Value) -> Option<(u64, Forwarded)> {
        let index = value["index"].as_u64()?;
        let at = value["at"].as_u64()?;
        if let Some(upstream_index) = value["upstream_index"].as_u64() {
            return Some((index, Forwarded::Logged { upstream_index, at }));
        }
        let refused = &value["refused"];
        Some((
            index,
            Forwarded::Refused {
                status: u16::try_from(refused["status"].as_u64()?).ok()?,
                error: refused["error"].as_str()?.to_string(),
                at,
            },
        ))
    }
}

#[derive(Debug)]
pub enum RelayError {
    /// The submission does not decode, or its text is not the one it names.
    Malformed(String),
    /// The signature is not the named reporter's.
    SignatureInvalid,
    /// The relay holds [`MAX_RELAY_ENTRIES`].
    Full,
    Io(io::Error),
    Log(LogError),
}

impl std::fmt::Display for RelayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RelayError::Malformed(e) => write!(f, "malformed report: {e}"),
            RelayError::SignatureInvalid => write!(f, "the signature is not the reporter's"),
            RelayError::Full => write!(f, "the relay holds {MAX_RELAY_ENTRIES} reports"),
            RelayError::Io(e) => write!(f, "{e}"),
            RelayError::Log(e) => write!(f, "the relay's log: {e}"),
        }
    }
}

impl std::error::Error for RelayError {}

impl From<LogError> for RelayError {
    fn from(e: LogError) -> Self {
        RelayError::Log(e)
    }
}

impl From<io::Error> for RelayError {
    fn from(e: io::Error) -> Self {
        RelayError::Io(e)
    }
}

struct Inner {
    log: Log,
    entries: Vec<RelayedReport>,
    by_signature: HashMap<[u8; 64], u64>,
    forwarded: BTreeMap<u64, Forwarded>,
    forwarding_file: std::fs::File,
    /// The smallest index the upstream has not answered for: entries are forwarded in log order.
    cursor: u64,
    /// The last failure to reach the upstream, while it lasts: shown in the relay's status.
    upstream_trouble: Option<(u64, String)>,
}

impl Inner {
    fn advance_cursor(&mut self) {
        while self.forwarded.contains_key(&self.cursor) {
            self.cursor += 1;
        }
    }
}

pub struct RelayStore {
    inner: Mutex<Inner>,
    /// Signalled when an entry is added: wakes the forwarder.
    added: Condvar,
    storage: Arc<DirStorage>,
    pub texts: ReportTexts,
    pub evidence: Arc<EvidenceStore>,
    pub vkey: String,
}

/// An accepted report: its entry's index and whether it was new.
pub struct Accepted {
    pub index: u64,
    /// The entry as logged (with the relay's time of receipt): what the receipt proves.
    pub entry: RelayedReport,
    pub created: bool,
    pub receipt: TlogProof,
}

fn now_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl RelayStore {
    /// Opens the relay in `dir`, creating its key (named `origin`) and log on first use; reads every
    /// entry back and the forwarding record (a torn last line, from a crash, is dropped).
    pub fn open(dir: &Path, origin: &str) -> Result<RelayStore, RelayError> {
        std::fs::create_dir_all(dir.join("keys"))?;
        let key_path = dir.join("keys/relay.key");
        let signer = match std::fs::read_to_string(&key_path) {
            Ok(text) => Signer::parse(text.trim()).map_err(|e| {
                RelayError::Io(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {e}", key_path.display()),
                ))
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let signer = Signer::generate(origin, TYPE_ED25519).map_err(|e| {
                    RelayError::Io(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("relay name {origin:?}: {e}"),
                    ))
                })?;
                crate::keyfile::write_new_secret(&key_path, &format!("{}\n", signer.encode()))?;
                signer
            }
            Err(e) => return Err(e.into()),
        };
        let vkey = signer.verifier().encode();
        std::fs::write(dir.join("relay.vkey"), format!("{vkey}\n"))?;
        let storage = Arc::new(DirStorage::open(&dir.join("log"))?);
        let log = Log::open(storage.clone(), signer)?;
        let size = log.size();
        let mut reader = TileReader::new(storage.clone(), size);
        let mut entries = Vec::with_capacity(size as usize);
        let mut by_signature = HashMap::new();
        let mut index = 0;
        while index < size {
            for bytes in reader.bundle(index)? {
                if index >= size {
                    break;
                }
                let relayed = RelayedReport::decode(&bytes).map_err(|e| {
                    LogError::Corrupt(format!("relay entry {index} does not decode: {e}"))
                })?;
                by_signature.insert(relayed.report.signature.0, index);
                entries.push(relayed);
                index += 1;
            }
        }
        let forwarding_path = forwarding_path(dir);
        let forwarded = read_forwarding(&forwarding_path)?;
        let forwarding_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&forwarding_path)?;
        let mut inner = Inner {
            log,
            entries,
            by_signature,
            forwarded,
            forwarding_file,
            cursor: 0,
            upstream_trouble: None,
        };
        inner.advance_cursor();
        Ok(RelayStore {
            inner: Mutex::new(inner),
            added: Condvar::new(),
            texts: ReportTexts::open(&dir.join("reports"))?,
            evidence: Arc::new(EvidenceStore::open(&dir.join("evidence"))?),
            storage,
            vkey,
        })
    }

    pub fn verifier(&self) -> Verifier {
        Verifier::parse(&self.vkey).expect("the relay's own key parses")
    }

    pub fn storage(&self) -> Arc<DirStorage> {
        self.storage.clone()
    }

    pub fn published(&self) -> Arc<Published> {
        self.inner.lock().expect("not poisoned").log.committed()
    }

    /// Checks and logs a report, durably, and returns its receipt. The text is stored first, so an
    /// acknowledged report can always be forwarded with its words.
    pub fn accept(&self, body: &[u8]) -> Result<Accepted, RelayError> {
        let submission = ReportSubmission::decode(body).map_err(RelayError::Malformed)?;
        if !submission.signed.signature_valid() {
            return Err(RelayError::SignatureInvalid);
        }
        if let Some(index) = self.index_of(&submission.signed.signature) {
            return Ok(Accepted {
                entry: self.entry(index),
                index,
                created: false,
                receipt: self.receipt(index)?,
            });
        }
        self.texts.put(&submission.text)?;
        let relayed = RelayedReport {
            received_at: now_seconds(),
            report: submission.signed,
        };
        let index = {
            let mut inner = self.inner.lock().expect("not poisoned");
            // Looked up again under the lock: two identical submissions at once log one entry.
            if let Some(&index) = inner.by_signature.get(&relayed.report.signature.0) {
                index
            } else {
                if inner.log.size() >= MAX_RELAY_ENTRIES {
                    return Err(RelayError::Full);
                }
                let (index, _) = inner.log.append(&[&relayed.encode()])?;
                inner.by_signature.insert(relayed.report.signature.0, index);
                inner.entries.push(relayed.clone());
                self.added.notify_all();
                return Ok(Accepted {
                    entry: relayed,
                    index,
                    created: true,
                    receipt: self.receipt_at(&inner, index)?,
                });
            }
        };
        Ok(Accepted {
            entry: self.entry(index),
            index,
            created: false,
            receipt: self.receipt(index)?,
        })
    }

    fn entry(&self, index: u64) -> RelayedReport {
        self.inner.lock().expect("not poisoned").entries[index as usize].clone()
    }

    fn index_of(&self, signature: &Signature) -> Option<u64> {
        let inner = self.inner.lock().expect("not poisoned");
        inner.by_signature.get(&signature.0).copied()
    }

    /// The receipt (c2sp.org/tlog-proof) of entry `index` against the latest checkpoint.
    pub fn receipt(&self, index: u64) -> Result<TlogProof, RelayError> {
        let inner = self.inner.lock().expect("not poisoned");
        self.receipt_at(&inner, index)
    }

    fn receipt_at(&self, inner: &Inner, index: u64) -> Result<TlogProof, RelayError> {
        let published = inner.log.committed();
        let size = published.checkpoint.size;
        let mut reader = TileReader::new(self.storage.clone(), size);
        let proof =
            saksi_tlog::merkle::inclusion_proof(&mut reader, index, size).map_err(|e| match e {
                saksi_tlog::merkle::ProofErrorOr::Source(e) => RelayError::Log(e),
                saksi_tlog::merkle::ProofErrorOr::Proof(e) => RelayError::Malformed(e.to_string()),
            })?;
        Ok(TlogProof {
            extra: None,
            index,
            proof,
            checkpoint: published.note.clone(),
        })
    }

    /// The first entry the upstream has not answered for, with its text: what to forward next.
    /// Waits up to `wait` for one to arrive.
    pub fn next_to_forward(&self, wait: std::time::Duration) -> Option<(u64, RelayedReport)> {
        let mut inner = self.inner.lock().expect("not poisoned");
        loop {
            if inner.cursor < inner.entries.len() as u64 {
                let index = inner.cursor;
                return Some((index, inner.entries[index as usize].clone()));
            }
            let (guard, timeout) = self.added.wait_timeout(inner, wait).expect("not poisoned");
            inner = guard;
            if timeout.timed_out() {
                return None;
            }
        }
    }

    /// Records the upstream's answer for entry `index` (appended and fsynced to the record).
    pub fn record_forwarded(&self, index: u64, outcome: Forwarded) -> io::Result<()> {
        let mut inner = self.inner.lock().expect("not poisoned");
        let mut line = serde_json::to_vec(&outcome.to_json(index)).expect("JSON");
        line.push(b'\n');
        inner.forwarding_file.write_all(&line)?;
        inner.forwarding_file.sync_data()?;
        inner.forwarded.insert(index, outcome);
        inner.upstream_trouble = None;
        inner.advance_cursor();
        Ok(())
    }

    /// Notes that the upstream could not be reached (shown in the status until the next answer).
    pub fn record_trouble(&self, problem: String) {
        let mut inner = self.inner.lock().expect("not poisoned");
        inner.upstream_trouble = Some((now_seconds(), problem));
    }

    /// The relay's status: its size, what was forwarded and refused, and any upstream trouble.
    pub fn status(&self) -> Value {
        let inner = self.inner.lock().expect("not poisoned");
        let logged = inner
            .forwarded
            .values()
            .filter(|f| matches!(f, Forwarded::Logged { .. }))
            .count();
        let refused: Vec<Value> = inner
            .forwarded
            .iter()
            .filter(|(_, f)| matches!(f, Forwarded::Refused { .. }))
            .map(|(i, f)| f.to_json(*i))
            .collect();
        json!({
            "size": inner.entries.len(),
            "forwarded": logged,
            "refused": refused,
            "pending": inner.entries.len() - inner.forwarded.len().min(inner.entries.len()),
            "upstream_trouble": inner.upstream_trouble.as_ref().map(|(at, why)| json!({"since": at, "error": why})),
        })
    }

    /// What the upstream answered for `index`, if anything yet.
    pub fn forwarded(&self, index: u64) -> Option<Forwarded> {
        let inner = self.inner.lock().expect("not poisoned");
        inner.forwarded.get(&index).cloned()
    }
}

fn forwarding_path(dir: &Path) -> PathBuf {
    dir.join("forwarding.ndjson")
}

/// Reads the forwarding record; a line that does not parse ends it (a crash mid-append), and the
/// file is cut back to the last whole line so later appends start clean.
fn read_forwarding(path: &Path) -> io::Result<BTreeMap<u64, Forwarded>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(e),
    };
    let mut record = BTreeMap::new();
    let mut good = 0;
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        let parsed = line
            .strip_suffix(b"\n")
            .and_then(|l| serde_json::from_slice::<Value>(l).ok())
            .and_then(|v| Forwarded::from_json(&v));
        let Some((index, outcome)) = parsed else {
            break;
        };
        record.insert(index, outcome);
        good += line.len();
    }
    if good < bytes.len() {
        let file = std::fs::OpenOptions::new().write(true).open(path)?;
        file.set_len(good as u64)?;
        file.sync_all()?;
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use saksi_election::code::Code;
    use saksi_election::report::{text_digest, Category};
    use saksi_election::sign::SecretKey;

    fn submission(text: &str, key: &SecretKey) -> Vec<u8> {
        let report = Report {
            election: "pemilu-2024".into(),
            place: Code::parse("3201010001001").unwrap(),
            category: Category::Counting,
            event_at: 1_707_868_800,
            filed_at: 1_707_900_000,
            text_sha256: text_digest(text),
            photos: vec![],
            reporter: key.public(),
            follows: None,
            withdraw: false,
            contact: None,
        };
        ReportSubmission {
            signed: report.sign(key),
            text: text.into(),
            stamp: None,
        }
        .encode()
    }

    #[test]
    fn a_report_is_logged_once_and_survives_reopening() {
        let dir = std::env::temp_dir().join(format!("saksi-relay-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let key = SecretKey::from_seed([7; 32]);
        let relay = RelayStore::open(&dir, "relay.test/a").unwrap();
        let first = relay.accept(&submission("suara dibeli", &key)).unwrap();
        assert!(first.created);
        let again = relay.accept(&submission("suara dibeli", &key)).unwrap();
        assert_eq!((again.index, again.created), (first.index, false));
        let second = relay.accept(&submission("kotak dibuka", &key)).unwrap();
        assert_eq!(second.index, 1);
        let leaf = saksi_tlog::hash::leaf_hash(&relay.inner.lock().unwrap().entries[1].encode());
        second
            .receipt
            .verify(&leaf, &relay.verifier(), &[], 0)
            .unwrap();
        relay
            .record_forwarded(
                0,
                Forwarded::Logged {
                    upstream_index: 9,
                    at: 1,
                },
            )
            .unwrap();
        assert!(matches!(relay.accept(b"{}"), Err(RelayError::Malformed(_))));
        drop(relay);
        // A torn line at the end of the record is dropped on open.
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(forwarding_path(&dir))
            .unwrap();
        file.write_all(b"{\"index\":1,\"upst").unwrap();
        let relay = RelayStore::open(&dir, "relay.test/a").unwrap();
        assert_eq!(relay.inner.lock().unwrap().entries.len(), 2);
        assert_eq!(
            relay.next_to_forward(std::time::Duration::ZERO).unwrap().0,
            1
        );
        assert!(matches!(
            relay.forwarded(0),
            Some(Forwarded::Logged {
                upstream_index: 9,
                ..
            })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
