//! Independent verification of a saksi log, from its files alone (a directory, a mirror, or a server's
//! `/log/` through any [`Storage`]): the checkpoint's signature; every tile and entry bundle against
//! the root; every authority, officer and operator signature; every enrolment against the registry as
//! logged up to that entry; every verdict re-derived with the rulebook; and the tallies recomputed.
//! Problems are collected with exactly what and where; only "could not check" stops it.

use std::collections::{HashMap, HashSet};

use saksi_election::form::PhotoDigest;
use saksi_election::parallel::on_every_core;
use saksi_election::rules::codes;
use saksi_election::rules::{check_sheet_in, check_signed_form_in, Rulebook, TpsFacts, Verdict};
use saksi_election::sign::{verify_batch, BatchItem, KeyError, KeyPoint, PublicKey};
use saksi_tlog::audit::audit_from;
use saksi_tlog::checkpoint::Checkpoint;
use saksi_tlog::hash::Hash;
use saksi_tlog::merkle::CompactRange;
use saksi_tlog::note::Verifier;
use saksi_tlog::{LogError, Storage};

use crate::entry::{Admin, Entry, RecordedVerdict};
use crate::state::State;

/// Entries decoded and signature-checked together.
const CHUNK: usize = 16 * 1024;

/// Chunks the auditor may read ahead of the replay: enough to keep both stages busy, and a bound
/// on memory (2 x 16,384 entries of at most a few KiB).
const AUDIT_AHEAD: usize = 2;

pub struct Verified {
    pub checkpoint: Checkpoint,
    pub state: State,
    pub forms_checked: u64,
    pub problems: Vec<String>,
    /// Every photo the logged forms name (their `evidence`), each once, sorted: what
    /// `saksi verify --evidence` fetches and `saksi mirror --evidence` copies.
    pub evidence: Vec<PhotoDigest>,
    /// The size this verification continued from (0: the whole log was checked).
    pub resumed_at: u64,
    /// What a later [`verify_from`] needs beyond the state.
    frontier: CompactRange,
    digests: HashSet<[u8; 32]>,
}

/// The version of [`Resume`]'s encoding; a saved state of another version is not read (the verifier
/// starts over from the whole log).
const RESUME_FORMAT: u32 = 1;

/// Where a verification left off, as [`Verified::resume_bytes`] saved it: the state derived from the
/// verified entries, the tree's frontier, and the verifier's own records. Trusting it means trusting
/// the earlier run of this verifier, which is why it lives with the verifier (`saksi verify
/// --state`), never with the log.
#[derive(serde::Deserialize)]
pub struct Resume {
    /// Read on its own first, by [`Resume::from_bytes`].
    _format: u32,
    origin: String,
    size: u64,
    frontier: Vec<[u8; 32]>,
    state: State,
    forms_checked: u64,
    digests: HashSet<[u8; 32]>,
    evidence: Vec<PhotoDigest>,
}

/// [`Resume`] by reference, for writing without copying the state.
#[derive(serde::Serialize)]
struct ResumeRef<'a> {
    format: u32,
    origin: &'a str,
    size: u64,
    frontier: Vec<[u8; 32]>,
    state: &'a State,
    forms_checked: u64,
    digests: &'a HashSet<[u8; 32]>,
    evidence: &'a [PhotoDigest],
}

impl Resume {
    /// Reads a saved state for the log `log_key` names. `Err` says why it cannot be used.
    pub fn from_bytes(bytes: &[u8], log_key: &Verifier) -> Result<Resume, String> {
        let format = postcard::take_from_bytes::<u32>(bytes)
            .map_err(|e| format!("not a saved verification: {e}"))?
            .0;
        if format != RESUME_FORMAT {
            return Err(format!(
                "saved by another version of saksi (format {format}, this one reads {RESUME_FORMAT})"
            ));
        }
        let resume: Resume =
            postcard::from_bytes(bytes).map_err(|e| format!("not a saved verification: {e}"))?;
        if resume.origin != log_key.name {
            return Err(format!(
                "saved for the log {}, not {}",
                resume.origin, log_key.name
            ));
        }
        if resume.state.size != resume.size {
            return Err("inconsistent: its state and its tree differ in size".into());
        }
        Ok(resume)
    }

    /// The number of entries verified when it was saved.
    pub fn size(&self) -> u64 {
        self.size
    }
}

impl Verified {
    /// This verification as a starting point for [`verify_from`], kept in memory (a follower's next
    /// round). Only meaningful for a verification that found no problems.
    pub fn into_resume(self) -> Resume {
        Resume {
            _format: RESUME_FORMAT,
            origin: self.checkpoint.origin,
            size: self.checkpoint.size,
            frontier: self.frontier.hashes().iter().map(|h| h.0).collect(),
            state: self.state,
            forms_checked: self.forms_checked,
            digests: self.digests,
            evidence: self.evidence,
        }
    }

    /// This verification, encoded for [`verify_from`] to continue from. Only meaningful for a
    /// verification that found no problems (a later run would not repeat them).
    pub fn resume_bytes(&self) -> Vec<u8> {
        debug_assert_eq!(self.frontier.size(), self.checkpoint.size);
        postcard::to_stdvec(&ResumeRef {
            format: RESUME_FORMAT,
            origin: &self.checkpoint.origin,
            size: self.checkpoint.size,
            frontier: self.frontier.hashes().iter().map(|h| h.0).collect(),
            state: &self.state,
            forms_checked: self.forms_checked,
            digests: &self.digests,
            evidence: &self.evidence,
        })
        .expect("encoding to memory does not fail")
    }
}

struct Replayer {
    state: State,
    problems: Vec<String>,
    forms_checked: u64,
    digests: HashSet<[u8; 32]>,
    evidence: Vec<PhotoDigest>,
    stopped: bool,
}

/// Limits the problems listed: past this, the log is plainly not trustworthy and the list says so.
const MAX_PROBLEMS: usize = 1000;

impl Replayer {
    fn problem(&mut self, text: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(text);
        } else if self.problems.len() == MAX_PROBLEMS {
            self.problems.push("... more problems not listed".into());
        }
    }

    /// Checks and applies decoded entries in log order (one thread: the state is sequential).
    fn apply_decoded(&mut self, decoded: Vec<Decoded>) {
        if self.stopped {
            return;
        }
        for Decoded {
            index,
            entry,
            signature_ok,
            bad_keys,
        } in decoded
        {
            for (key, e) in bad_keys {
                self.problem(format!(
                    "entry {index}: registry enrols a bad key {key}: {e}"
                ));
            }
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    self.problem(format!("entry {index}: cannot be read: {e}"));
                    continue;
                }
            };
            self.check(index, &entry, signature_ok);
            if let Err(e) = self.state.apply(index, &entry) {
                // The state cannot follow a log that breaks its own rules (e.g. an admin entry not signed
                // by the authority): report and stop replaying; tallies would be meaningless.
                self.problem(format!("entry {index}: {e}; replay stopped here"));
                self.stopped = true;
                return;
            }
        }
    }

    /// Re-derives what the server should have decided about `entry`, before it is applied.
    fn check(&mut self, index: u64, entry: &Entry, signature_ok: bool) {
        if let Entry::Admin { signature, .. }
        | Entry::Participant { signature, .. }
        | Entry::Intake { signature, .. }
        | Entry::Moderation { signature, .. } = entry
        {
            if let Some(first) = self.state.logged_statement(&signature.0) {
                let whose = match entry {
                    Entry::Admin { .. } => "authority",
                    Entry::Participant { .. } => "participant",
                    Entry::Intake { .. } => "operator",
                    _ => "moderator",
                };
                self.problem(format!(
                    "entry {index}: the {whose} statement of entry {first} logged again (a replay: \
                     a statement counts once)"
                ));
            }
        }
        match entry {
            Entry::Admin {
                statement: Admin::Genesis(genesis),
                ..
            } => match Rulebook::named(&genesis.rulebook_version) {
                Some(rulebook) if rulebook.digest() != genesis.rulebook_sha256 => {
                    self.problem(format!(
                        "entry {index}: the genesis gives {} the digest {}, but its text has {}",
                        genesis.rulebook_version,
                        genesis.rulebook_sha256,
                        rulebook.digest()
                    ))
                }
                Some(_) => {}
                None => self.problem(format!(
                    "entry {index}: the genesis names rulebook {}, which this verifier does not know; \
                     verdicts are checked against {}",
                    genesis.rulebook_version,
                    Rulebook::CURRENT.name()
                )),
            },
            Entry::Admin { .. } => {}
            Entry::Form {
                form,
                verdict,
                digest,
            } => {
                self.forms_checked += 1;
                self.evidence.extend_from_slice(&form.form.evidence);
                let tps = form.form.tps;
                if !signature_ok {
                    self.problem(format!("entry {index}: TPS {tps}: the form's signature does not verify (signer {})", form.form.signer));
                    return;
                }
                let Some(election) = self.state.election().cloned() else {
                    self.problem(format!("entry {index}: a form before the genesis"));
                    return;
                };
                if self.state.registry.tps(tps).is_none() {
                    self.problem(format!(
                        "entry {index}: TPS {tps} is not in the logged registry"
                    ));
                    return;
                }
                if !self.digests.insert(*digest) {
                    self.problem(format!(
                        "entry {index}: TPS {tps}: the same signed form was logged twice"
                    ));
                }
                let expected =
                    check_signed_form_in(
                        self.rulebook(),
                        &form.form,
                        true,
                        &self.state.registry,
                        &election,
                    );
                if expected
                    .findings
                    .iter()
                    .any(|f| f.code == codes::SIGNER_NOT_ENROLLED)
                {
                    self.problem(format!(
                        "entry {index}: TPS {tps}: signed by {}, who is not enrolled for it in the logged registry",
                        form.form.signer
                    ));
                    return;
                }
                let expected = saksi_election::rules::check_history(
                    expected,
                    &form.form,
                    self.state.has_accepted(tps),
                    String::new,
                );
                self.compare_verdict(index, &format!("TPS {tps}"), &expected, verdict);
            }
            Entry::Moderation {
                statement,
                moderator,
                ..
            } => {
                if !entry.moderation_signature_valid() {
                    self.problem(format!(
                        "entry {index}: a moderation statement whose signature is not {moderator}'s"
                    ));
                }
                // A hidden report's entry must be there: hiding withholds words, never the entry.
                if let Err(e) = self.state.check_moderation(statement, moderator) {
                    self.problem(format!("entry {index}: moderation that does not apply: {e}"));
                }
            }
            Entry::Intake { .. } => {
                if let Err(e) = self.state.check_intake(entry) {
                    self.problem(format!("entry {index}: an intake setting that does not apply: {e}"));
                }
            }
            Entry::Report { report } => {
                let place = report.report.place;
                self.evidence.extend_from_slice(&report.report.photos);
                if !signature_ok {
                    self.problem(format!(
                        "entry {index}: a report about {place}: the signature is not its reporter's ({})",
                        report.report.reporter
                    ));
                }
                if let Some(first) = self.state.logged_report(&report.signature.0) {
                    self.problem(format!(
                        "entry {index}: the report of entry {first} logged again (a report counts once)"
                    ));
                }
                let known = if place.level() == saksi_election::Level::Tps {
                    self.state.registry.tps(place).is_some()
                } else {
                    self.state.registry.region_name(place).is_some()
                };
                if !known {
                    self.problem(format!(
                        "entry {index}: a report about {place}, which is not in the logged registry"
                    ));
                }
                if let Err((code, detail)) = self.state.check_follow_up(&report.report) {
                    self.problem(format!(
                        "entry {index}: a follow-up that does not apply ({code}: {detail})"
                    ));
                }
            }
            Entry::Participant {
                statement, signer, ..
            } => {
                if !entry.participant_signature_valid() {
                    self.problem(format!(
                        "entry {index}: participant {}'s statement: the signature does not verify",
                        statement.change.participant
                    ));
                }
                let applies = self
                    .state
                    .registry
                    .check_poll_witness_change(&statement.change, signer);
                if let Err(e) = applies {
                    self.problem(format!(
                        "entry {index}: participant {}'s statement does not apply: {e}",
                        statement.change.participant
                    ));
                }
            }
            Entry::Copy {
                copy,
                verdict,
                digest,
            } => {
                let tps = copy.copy.form.tps;
                self.evidence.extend_from_slice(&copy.copy.form.evidence);
                if !signature_ok {
                    self.problem(format!(
                        "entry {index}: TPS {tps}: the copy's signature does not verify (poll witness {})",
                        copy.copy.form.signer
                    ));
                    return;
                }
                if let Err(refusal) = self.state.registry.poll_witness_entitlement(
                    &copy.copy.form.signer,
                    &copy.copy.participant,
                    tps,
                ) {
                    self.problem(format!(
                        "entry {index}: TPS {tps}: a copy by {} for participant {} that should have been refused ({})",
                        copy.copy.form.signer,
                        copy.copy.participant,
                        refusal.code()
                    ));
                    return;
                }
                if self.state.copies(tps).len() >= crate::state::MAX_COPIES_PER_TPS {
                    self.problem(format!(
                        "entry {index}: TPS {tps}: more copies than one TPS takes ({})",
                        crate::state::MAX_COPIES_PER_TPS
                    ));
                }
                if self.state.logged_copy(digest).is_some() {
                    self.problem(format!(
                        "entry {index}: TPS {tps}: the same copy was logged twice"
                    ));
                }
                let Some(election) = self.state.election().cloned() else {
                    self.problem(format!("entry {index}: a copy before the genesis"));
                    return;
                };
                let expected = saksi_election::rules::check_copy_in(
                    self.rulebook(),
                    &copy.copy,
                    &self.state.registry,
                    &election,
                );
                self.compare_verdict(index, &format!("copy for TPS {tps}"), &expected, verdict);
            }
            Entry::Recap { form, verdict, .. } => {
                if !form.signature_valid() {
                    self.problem(format!(
                        "entry {index}: the recap form's signature does not verify (signer {})",
                        form.form.signer
                    ));
                    return;
                }
                if !self
                    .state
                    .registry
                    .is_recap_officer(form.form.region, &form.form.signer)
                {
                    self.problem(format!(
                        "entry {index}: recap signed by {}, who is not enrolled for that region",
                        form.form.signer
                    ));
                    return;
                }
                let expected = crate::engine::recap_verdict(&self.state, &form.form);
                if expected.accepted != verdict.accepted
                    || expected.rejected_by != verdict.rejected_by
                {
                    self.problem(format!(
                        "entry {index}: recap verdict {:?}, its arithmetic gives {:?}",
                        verdict.rejected_by, expected.rejected_by
                    ));
                }
            }
            Entry::Transcription {
                sheet,
                verdict,
                operator,
                ..
            } => {
                let genesis_operator = self.state.genesis.as_ref().map(|g| g.operator);
                if genesis_operator != Some(*operator) || !entry.transcription_signature_valid() {
                    self.problem(format!("entry {index}: TPS {}: transcription not signed by the operator named in the genesis", sheet.tps));
                    return;
                }
                let Some(election) = self.state.election().cloned() else {
                    return;
                };
                let facts = self.state.registry.tps(sheet.tps).map(|t| TpsFacts {
                    kind: t.kind,
                    dpt: t.dpt,
                });
                let expected = check_sheet_in(self.rulebook(), sheet, facts, &election);
                self.compare_verdict(index, &format!("TPS {}", sheet.tps), &expected, verdict);
            }
        }
    }

    /// The rulebook of the log's genesis (a genesis naming an unknown one is reported when it is read).
    fn rulebook(&self) -> Rulebook {
        self.state.rulebook().unwrap_or(Rulebook::CURRENT)
    }

    fn compare_verdict(
        &mut self,
        index: u64,
        what: &str,
        expected: &Verdict,
        recorded: &RecordedVerdict,
    ) {
        let rulebook = self.rulebook();
        if *recorded.rulebook != *rulebook.name() {
            self.problem(format!(
                "entry {index}: {what}: verdict made under {}, but the genesis names {}",
                recorded.rulebook,
                rulebook.name()
            ));
        }
        let codes: Vec<String> = expected
            .rejecting_codes()
            .into_iter()
            .map(String::from)
            .collect();
        if expected.accepted() != recorded.accepted || codes != recorded.rejected_by {
            self.problem(format!(
                "entry {index}: {what}: logged verdict {} {:?}, the rulebook gives {} {:?}",
                if recorded.accepted {
                    "accept"
                } else {
                    "reject"
                },
                recorded.rejected_by,
                if expected.accepted() {
                    "accept"
                } else {
                    "reject"
                },
                codes
            ));
        }
    }
}

/// An entry as the decode stage leaves it.
struct Decoded {
    index: u64,
    /// The entry, or why it cannot be read.
    entry: Result<Entry, String>,
    /// Whether its signature verified (a form's, a copy's or a report's; other entries pass here
    /// and have theirs checked when applied).
    signature_ok: bool,
    /// For a registry entry, the keys it enrols that may not be enrolled, with why, in order.
    bad_keys: Vec<(PublicKey, KeyError)>,
}

/// The decode stage: decodes each chunk and checks its signatures on every core. It keeps every
/// enrolled key's point from the enrolment check, so no form's signature decompresses its key again
/// (a point decompression is a field square root; a national log has ~820,000 keys). The points are
/// a cache of the keys' decompression and nothing else: a verdict never depends on them.
#[derive(Default)]
struct Decoder {
    points: HashMap<PublicKey, KeyPoint>,
}

impl Decoder {
    fn decode_chunk(&mut self, pending: &[(u64, Vec<u8>)]) -> Vec<Decoded> {
        let entries: Vec<(u64, Result<Entry, String>)> = on_every_core(pending, |part| {
            part.iter()
                .map(|(i, bytes)| (*i, Entry::decode(bytes).map_err(|e| e.to_string())))
                .collect()
        });
        // The keys this chunk enrols, checked on every core (each check decompresses the key).
        let enrolled: Vec<(usize, PublicKey)> = entries
            .iter()
            .enumerate()
            .flat_map(|(at, (_, entry))| enrolled_keys(entry).map(move |key| (at, key)))
            .collect();
        let checked = on_every_core(&enrolled, |part| {
            part.iter()
                .map(|(at, key)| (*at, *key, key.enrollable_point()))
                .collect()
        });
        let mut bad_keys: HashMap<usize, Vec<(PublicKey, KeyError)>> = HashMap::new();
        for (at, key, point) in checked {
            match point {
                Ok(point) => {
                    self.points.insert(key, point);
                }
                Err(e) => bad_keys.entry(at).or_default().push((key, e)),
            }
        }
        let points = &self.points;
        let signature_ok: Vec<bool> = on_every_core(&entries, |part| {
            // The signatures of the many (forms, poll witnesses' copies, citizens' reports) are
            // checked here in batches; the few others (statements) where they are applied.
            let messages: Vec<Option<Vec<u8>>> = part
                .iter()
                .map(|(_, e)| match e {
                    Ok(Entry::Form { form, .. }) => Some(form.form.signed_message()),
                    Ok(Entry::Copy { copy, .. }) => Some(copy.signed_message()),
                    Ok(Entry::Report { report }) => Some(report.signed_message()),
                    _ => None,
                })
                .collect();
            let (positions, items): (Vec<usize>, Vec<BatchItem>) = part
                .iter()
                .zip(&messages)
                .enumerate()
                .filter_map(|(at, ((_, e), message))| {
                    let message = message.as_deref()?;
                    let mut item = match e {
                        Ok(Entry::Form { form, .. }) => form.batch_item(message),
                        Ok(Entry::Copy { copy, .. }) => copy.batch_item(message),
                        Ok(Entry::Report { report }) => report.batch_item(message),
                        _ => return None,
                    };
                    item.point = points.get(&item.key);
                    Some((at, item))
                })
                .unzip();
            let mut ok = vec![true; part.len()];
            for (at, valid) in positions.into_iter().zip(verify_batch(&items)) {
                ok[at] = valid;
            }
            ok
        });
        entries
            .into_iter()
            .zip(signature_ok)
            .enumerate()
            .map(|(at, ((index, entry), signature_ok))| Decoded {
                index,
                entry,
                signature_ok,
                bad_keys: bad_keys.remove(&at).unwrap_or_default(),
            })
            .collect()
    }
}

/// The keys a registry entry enrols (none for other entries).
fn enrolled_keys(entry: &Result<Entry, String>) -> impl Iterator<Item = PublicKey> + '_ {
    let part = match entry {
        Ok(Entry::Admin {
            statement: Admin::Registry(part),
            ..
        }) => Some(part),
        _ => None,
    };
    part.into_iter().flat_map(|part| {
        part.tps
            .iter()
            .flat_map(|t| t.officers.iter().copied())
            .chain(part.correctors.iter().map(|(_, k)| *k))
            .chain(part.enrollments.iter().map(|(_, k)| *k))
    })
}

/// Verifies the log in `storage` at its published checkpoint. `Err` means it could not be checked
/// at all (unreachable, no checkpoint); problems found are in the result.
pub fn verify(
    storage: &dyn Storage,
    log_key: &Verifier,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Verified, LogError> {
    verify_from(storage, log_key, None, progress)
}

/// [`verify`], continuing from where an earlier verification of the same log left off
/// ([`Verified::resume_bytes`]): only the entries appended since are read, hashed, decoded and
/// checked, against the state as it was (see [`saksi_tlog::audit::audit_from`] for what proves that
/// nothing before them changed). With `None`, the whole log.
pub fn verify_from(
    storage: &dyn Storage,
    log_key: &Verifier,
    resume: Option<Resume>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Verified, LogError> {
    let (mut replayer, from) = match resume {
        None => (
            Replayer {
                state: State::default(),
                problems: Vec::new(),
                forms_checked: 0,
                digests: HashSet::new(),
                evidence: Vec::new(),
                stopped: false,
            },
            CompactRange::new(),
        ),
        Some(resume) => {
            let frontier = resume.frontier.into_iter().map(Hash).collect();
            let from = CompactRange::from_parts(resume.size, frontier).ok_or_else(|| {
                LogError::Corrupt("the saved frontier does not match its size".into())
            })?;
            (
                Replayer {
                    state: resume.state,
                    problems: Vec::new(),
                    forms_checked: resume.forms_checked,
                    digests: resume.digests,
                    evidence: resume.evidence,
                    stopped: false,
                },
                from,
            )
        }
    };
    let resumed_at = from.size();
    // Three stages, overlapped: one thread audits (reads every tile, hashes every entry, checks the
    // tree against the checkpoint) and hands the entries over in chunks; a second decodes each
    // chunk and checks its signatures on every core; this thread checks and applies the decoded
    // entries in order. Run in turn, the audit's hashing and the in-order replay each left the
    // other cores idle.
    let mut size_hint = 0u64;
    let (chunks, received) = std::sync::mpsc::sync_channel::<Vec<(u64, Vec<u8>)>>(AUDIT_AHEAD);
    let (decoded_chunks, decoded) = std::sync::mpsc::sync_channel::<Vec<Decoded>>(AUDIT_AHEAD);
    let audited = std::thread::scope(|scope| {
        let auditor = scope.spawn(move || {
            let mut pending = Vec::with_capacity(CHUNK);
            let audited = audit_from(storage, log_key, from, |index, entry| {
                pending.push((index, entry.to_vec()));
                if pending.len() >= CHUNK {
                    // The receiver only stops when this thread does.
                    let _ = chunks.send(std::mem::replace(&mut pending, Vec::with_capacity(CHUNK)));
                }
            });
            // What the audit read before it ended (or before a problem ended it) is replayed too.
            if !pending.is_empty() {
                let _ = chunks.send(pending);
            }
            audited
        });
        scope.spawn(move || {
            let mut decoder = Decoder::default();
            for chunk in received {
                if decoded_chunks.send(decoder.decode_chunk(&chunk)).is_err() {
                    return;
                }
            }
        });
        for chunk in decoded {
            if let Some(first) = chunk.first().map(|d| d.index).filter(|i| i % 65_536 == 0) {
                progress(first, size_hint);
            }
            replayer.apply_decoded(chunk);
        }
        auditor.join().expect("the auditor thread panicked")
    });
    let audited = match audited {
        Ok(audited) => audited,
        // A signature or tile problem is a finding, not a failure to check.
        Err(LogError::Corrupt(why)) => {
            let mut problems = replayer.problems;
            problems.insert(0, why);
            let note = storage
                .read(saksi_tlog::CHECKPOINT_PATH)
                .ok()
                .flatten()
                .unwrap_or_default();
            let checkpoint = saksi_tlog::checkpoint::open(&note, log_key, &[])
                .map(|s| s.checkpoint)
                .unwrap_or(Checkpoint {
                    origin: log_key.name.clone(),
                    size: 0,
                    root: saksi_tlog::hash::empty_root(),
                    extensions: vec![],
                });
            return Ok(Verified {
                checkpoint,
                state: replayer.state,
                forms_checked: replayer.forms_checked,
                problems,
                evidence: unique(replayer.evidence),
                resumed_at,
                frontier: CompactRange::new(),
                digests: replayer.digests,
            });
        }
        Err(e) => return Err(e),
    };
    size_hint = audited.checkpoint.size;
    progress(size_hint, size_hint);
    Ok(Verified {
        checkpoint: audited.checkpoint,
        state: replayer.state,
        forms_checked: replayer.forms_checked,
        problems: replayer.problems,
        evidence: unique(replayer.evidence),
        resumed_at,
        frontier: audited.range,
        digests: replayer.digests,
    })
}

fn unique(mut digests: Vec<PhotoDigest>) -> Vec<PhotoDigest> {
    digests.sort_unstable_by_key(|d| d.0);
    digests.dedup();
    digests
}
