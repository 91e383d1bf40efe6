//! One batch of submissions, decided before anything is written: for each item either an outcome
//! (refused, or logged before) or a log entry with its verdict, judged against the state *plus the
//! earlier entries of the same batch*. The three kinds (TPS forms, recap forms, transcriptions) are
//! built here the same way, and a repeat within a batch is always the same entry, as a repeat of
//! something logged before is. Pure: the engine commits what comes out, then resolves the outcomes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use saksi_election::code::Code;
use saksi_election::copy::SignedCopy;
use saksi_election::form::EncodedForm;
use saksi_election::recap::{RecapForm, SignedRecap};
use saksi_election::registry::CopyRefusal;
use saksi_election::rules::codes;
use saksi_election::rules::{self, check_sheet_in, check_signed_form_in, Rulebook, TpsFacts};
use saksi_election::sheet::Sheet;
use saksi_election::sign::SecretKey;
use saksi_election::Election;
use sha2::Digest as _;

use crate::entry::{copy_entry_bytes, form_entry_bytes, Entry, RecordedVerdict};
use crate::error::EngineError;
use crate::state::State;

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

/// Where one item's outcome comes from.
enum Slot {
    Decided(IngestOutcome),
    /// The n-th entry of this batch.
    Entry(usize),
    /// The same signed bytes as the n-th entry of this batch.
    Repeat(usize),
}

/// A batch being built (see the module docs).
#[derive(Default)]
pub(crate) struct Batch {
    slots: Vec<Slot>,
    entries: Vec<Entry>,
    /// `encoded[n]` is exactly `entries[n].encode()`, made once.
    encoded: Vec<Vec<u8>>,
    verdicts: Vec<RecordedVerdict>,
    /// The entry of this batch holding each digest.
    digests: HashMap<[u8; 32], usize>,
}

/// The outcomes of a batch, waiting for the index its first entry gets.
pub(crate) struct Pending {
    slots: Vec<Slot>,
    verdicts: Vec<RecordedVerdict>,
}

impl Batch {
    fn decided(&mut self, outcome: IngestOutcome) {
        self.slots.push(Slot::Decided(outcome));
    }

    /// Records the item as a repeat if its digest is in the batch already.
    fn repeat(&mut self, digest: &[u8; 32]) -> bool {
        match self.digests.get(digest) {
            Some(&n) => {
                self.slots.push(Slot::Repeat(n));
                true
            }
            None => false,
        }
    }

    fn add(&mut self, digest: Option<[u8; 32]>, entry: Entry, encoded: Vec<u8>) {
        debug_assert_eq!(
            entry.encode(),
            encoded,
            "pre-encoded bytes must be Entry::encode's"
        );
        let n = self.entries.len();
        if let Some(digest) = digest {
            self.digests.insert(digest, n);
        }
        // A report carries no verdict: its outcome says "logged" under the current rulebook name.
        let verdict = entry.verdict().cloned().unwrap_or_else(|| {
            RecordedVerdict::from_verdict(&rules::Verdict::default(), Rulebook::CURRENT)
        });
        self.verdicts.push(verdict);
        self.slots.push(Slot::Entry(n));
        self.entries.push(entry);
        self.encoded.push(encoded);
    }

    /// What to commit (entries and their bytes), and the outcomes to resolve once committed.
    pub(crate) fn split(self) -> (Vec<Entry>, Vec<Vec<u8>>, Pending) {
        let pending = Pending {
            slots: self.slots,
            verdicts: self.verdicts,
        };
        (self.entries, self.encoded, pending)
    }
}

impl Pending {
    /// One outcome per item, in order, the batch's first entry being at `first`.
    pub(crate) fn resolve(self, first: u64) -> Vec<IngestOutcome> {
        let logged = |n: usize, duplicate: bool| IngestOutcome::Logged {
            index: first + n as u64,
            verdict: self.verdicts[n].clone(),
            duplicate,
        };
        self.slots
            .iter()
            .map(|slot| match slot {
                Slot::Decided(outcome) => outcome.clone(),
                Slot::Entry(n) => logged(*n, false),
                Slot::Repeat(n) => logged(*n, true),
            })
            .collect()
    }
}

/// TPS forms whose signatures the caller verified: enrolment, the rulebook and the TPS's history
/// (`rules::check_history`), in order.
pub(crate) fn forms(state: &State, forms: Vec<EncodedForm>) -> Result<Batch, EngineError> {
    let (election, rulebook) = judged_under(state)?;
    let mut batch = Batch::default();
    let mut accepted_in_batch: HashSet<Code> = HashSet::new();
    for form in forms {
        // Encoded once, where it was decoded: for the digest here and, spliced, for the log entry.
        let (form, envelope, digest) = form.into_parts();
        let tps = form.form.tps;
        if let Some(index) = state.logged_digest(&digest) {
            batch.decided(logged_before(state.tps_verdict(tps, index), index));
            continue;
        }
        if batch.repeat(&digest) {
            continue;
        }
        if state.registry.tps(tps).is_none() {
            batch.decided(IngestOutcome::Refused {
                code: codes::TPS_UNKNOWN,
                detail: format!("no TPS {tps}"),
            });
            continue;
        }
        let verdict = check_signed_form_in(rulebook, &form.form, true, &state.registry, &election);
        if let Some(finding) = verdict
            .findings
            .iter()
            .find(|f| f.code == codes::SIGNER_NOT_ENROLLED)
        {
            batch.decided(IngestOutcome::Refused {
                code: codes::SIGNER_NOT_ENROLLED,
                detail: finding.detail.clone(),
            });
            continue;
        }
        let taken = state.has_accepted(tps) || accepted_in_batch.contains(&tps);
        let verdict = rules::check_history(verdict, &form.form, taken, || format!("tps = {tps}"));
        if verdict.accepted() {
            accepted_in_batch.insert(tps);
        }
        let verdict = RecordedVerdict::from_verdict(&verdict, rulebook);
        let encoded = form_entry_bytes(envelope, &verdict);
        let entry = Entry::Form {
            form,
            verdict,
            digest,
        };
        batch.add(Some(digest), entry, encoded);
    }
    Ok(batch)
}

/// Citizens' reports whose signatures the caller verified: the place must be registered and the
/// election this log's; a report already logged (same signature) is that entry.
pub(crate) fn reports(
    state: &State,
    reports: Vec<saksi_election::report::SignedReport>,
) -> Result<Batch, EngineError> {
    let (election, _) = judged_under(state)?;
    let mut batch = Batch::default();
    let mut withdrawn_now = std::collections::HashSet::new();
    for report in reports {
        if let Some(index) = state.logged_report(&report.signature.0) {
            let verdict =
                RecordedVerdict::from_verdict(&rules::Verdict::default(), Rulebook::CURRENT);
            batch.decided(logged_before(verdict, index));
            continue;
        }
        let place = report.report.place;
        let known = if place.level() == saksi_election::Level::Tps {
            state.registry.tps(place).is_some()
        } else {
            state.registry.region_name(place).is_some()
        };
        if !known {
            batch.decided(IngestOutcome::Refused {
                code: REPORT_PLACE_UNKNOWN,
                detail: format!("{place} is not a registered region or TPS"),
            });
            continue;
        }
        if report.report.election != election.id {
            batch.decided(IngestOutcome::Refused {
                code: REPORT_ELECTION,
                detail: format!(
                    "the report is about election {}, this log is {}",
                    report.report.election, election.id
                ),
            });
            continue;
        }
        // A follow-up names a report logged before this batch; one withdrawal per report.
        match state.check_follow_up(&report.report) {
            Err((code, detail)) => {
                batch.decided(IngestOutcome::Refused { code, detail });
                continue;
            }
            Ok(Some(first)) if report.report.withdraw && !withdrawn_now.insert(first) => {
                batch.decided(IngestOutcome::Refused {
                    code: crate::state::REPORT_WITHDRAWN,
                    detail: format!("report {first} is withdrawn in this batch already"),
                });
                continue;
            }
            Ok(_) => {}
        }
        // A repeat inside one batch is the same entry, like a repeated form.
        let digest = report_digest(&report.signature.0);
        if batch.repeat(&digest) {
            continue;
        }
        let entry = Entry::Report { report };
        let encoded = entry.encode();
        batch.add(Some(digest), entry, encoded);
    }
    Ok(batch)
}

/// A batch-local name for a report (its signature hashed): reports share the batch's repeat table.
fn report_digest(signature: &[u8; 64]) -> [u8; 32] {
    let mut hasher = sha2::Sha256::new();
    hasher.update(b"report\n");
    hasher.update(signature);
    hasher.finalize().into()
}

pub const REPORT_PLACE_UNKNOWN: &str = "REPORT_PLACE_UNKNOWN";
pub const REPORT_ELECTION: &str = "REPORT_ELECTION";

/// The refusal of a copy past [`crate::state::MAX_COPIES_PER_TPS`].
pub const COPY_LIMIT: &str = "COPY_LIMIT";

/// Poll witnesses' copies whose signatures the caller verified: each must be entitled (enrolled by
/// its participant for its TPS, not revoked), else refused and not logged; the verdict is the
/// rulebook's on its figures. Several copies may speak for one TPS, before or after its form.
pub(crate) fn copies(state: &State, copies: Vec<SignedCopy>) -> Result<Batch, EngineError> {
    let (election, rulebook) = judged_under(state)?;
    let mut batch = Batch::default();
    let mut in_batch: HashMap<Code, usize> = HashMap::new();
    for copy in copies {
        let envelope = copy.encode();
        let digest: [u8; 32] = sha2::Sha256::digest(&envelope).into();
        let tps = copy.copy.form.tps;
        if let Some(index) = state.logged_copy(&digest) {
            batch.decided(logged_before(state.copy_verdict(tps, index), index));
            continue;
        }
        if batch.repeat(&digest) {
            continue;
        }
        if state.registry.tps(tps).is_none() {
            batch.decided(IngestOutcome::Refused {
                code: codes::TPS_UNKNOWN,
                detail: format!("no TPS {tps}"),
            });
            continue;
        }
        let signer = copy.copy.form.signer;
        let participant = &copy.copy.participant;
        if let Err(refusal) = state
            .registry
            .poll_witness_entitlement(&signer, participant, tps)
        {
            let detail = match refusal {
                CopyRefusal::NotEnrolled => {
                    format!("{signer} is not a poll witness of participant {participant}")
                }
                CopyRefusal::Revoked => {
                    format!("{signer} was revoked by participant {participant}")
                }
                CopyRefusal::OutOfScope => {
                    format!("{signer} is not enrolled by participant {participant} for TPS {tps}")
                }
            };
            batch.decided(IngestOutcome::Refused {
                code: refusal.code(),
                detail,
            });
            continue;
        }
        let count = in_batch.entry(tps).or_default();
        if state.copies(tps).len() + *count >= crate::state::MAX_COPIES_PER_TPS {
            batch.decided(IngestOutcome::Refused {
                code: COPY_LIMIT,
                detail: format!(
                    "TPS {tps} has {} copies, the most one TPS takes",
                    crate::state::MAX_COPIES_PER_TPS
                ),
            });
            continue;
        }
        *count += 1;
        let verdict = rules::check_copy_in(rulebook, &copy.copy, &state.registry, &election);
        let verdict = RecordedVerdict::from_verdict(&verdict, rulebook);
        let encoded = copy_entry_bytes(envelope, &verdict);
        let entry = Entry::Copy {
            copy,
            verdict,
            digest,
        };
        batch.add(Some(digest), entry, encoded);
    }
    Ok(batch)
}

/// Recap forms whose signatures the caller verified: the signer must be enrolled for that level and
/// region; the verdict is the form's own arithmetic and shape ([`recap_verdict`]).
pub(crate) fn recaps(state: &State, forms: Vec<SignedRecap>) -> Batch {
    let mut batch = Batch::default();
    for form in forms {
        let digest = form.digest();
        if let Some(index) = state.logged_recap(&digest) {
            let key = (form.form.level, form.form.region);
            batch.decided(logged_before(state.logged_recap_verdict(key, index), index));
            continue;
        }
        if batch.repeat(&digest) {
            continue;
        }
        if !state
            .registry
            .is_recap_officer(form.form.region, &form.form.signer)
        {
            batch.decided(IngestOutcome::Refused {
                code: codes::SIGNER_NOT_ENROLLED,
                detail: format!(
                    "signer = {}, not a recapitulation officer for this region",
                    form.form.signer
                ),
            });
            continue;
        }
        let verdict = recap_verdict(state, &form.form);
        let entry = Entry::Recap {
            form,
            verdict,
            digest,
        };
        let encoded = entry.encode();
        batch.add(Some(digest), entry, encoded);
    }
    batch
}

/// Published rows (e.g. Sirekap's) as transcriptions signed by the operator key, each with the
/// rulebook's verdict. Every row is logged (a transcription records what was published, repeats
/// included).
pub(crate) fn transcriptions(
    state: &State,
    source: &str,
    sheets: Vec<Sheet>,
    operator: &SecretKey,
) -> Result<Batch, EngineError> {
    let (election, rulebook) = judged_under(state)?;
    let mut batch = Batch::default();
    for sheet in sheets {
        let facts = state.registry.tps(sheet.tps).map(|t| TpsFacts {
            kind: t.kind,
            dpt: t.dpt,
        });
        let verdict = RecordedVerdict::from_verdict(
            &check_sheet_in(rulebook, &sheet, facts, &election),
            rulebook,
        );
        let entry = Entry::transcription(source, sheet, operator, verdict);
        let encoded = entry.encode();
        batch.add(None, entry, encoded);
    }
    Ok(batch)
}

fn logged_before(verdict: RecordedVerdict, index: u64) -> IngestOutcome {
    IngestOutcome::Logged {
        index,
        verdict,
        duplicate: true,
    }
}

/// The verdict on a recap form: its own arithmetic and rows against the logged registry.
pub fn recap_verdict(state: &State, form: &RecapForm) -> RecordedVerdict {
    let mut codes: Vec<String> = Vec::new();
    let election_ok = state
        .election()
        .is_some_and(|e| e.id == form.election && e.contest(&form.contest).is_some());
    if !election_ok {
        codes.push(codes::CONTEST_MISMATCH.into());
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

/// The election and the rulebook the log's genesis names; a log made under a rulebook version this
/// build does not know is refused rather than judged by other rules.
fn judged_under(state: &State) -> Result<(Election, Rulebook), EngineError> {
    let genesis = state
        .genesis
        .as_ref()
        .ok_or_else(|| EngineError::Config("no genesis in the log".into()))?;
    let rulebook = Rulebook::named(&genesis.rulebook_version).ok_or_else(|| {
        EngineError::Config(format!(
            "the log's genesis names rulebook {}, which this saksi does not know",
            genesis.rulebook_version
        ))
    })?;
    Ok((genesis.election.clone(), rulebook))
}
