//! The state every published figure comes from, derived from the log alone: the registry, each TPS's
//! history and current result, and the tallies of every region at every level. Applying the same
//! entries in the same order always gives the same state.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use saksi_election::code::{Code, Level};
use saksi_election::form::CHasil;
use saksi_election::recap::{RecapForm, RecapLevel};
use saksi_election::registry::RegistryHasher;
use saksi_election::sheet::{Col, Field, Row, Sheet};
use saksi_election::{Election, Registry};

use crate::entry::{Admin, Entry, EntryError, Genesis, RecordedVerdict};

/// Maps keyed by region and TPS codes: the registry's, so [`RegistryHasher`] serves.
type CodeMap<V> = HashMap<Code, V, BuildHasherDefault<RegistryHasher>>;

/// Totals for a region (or the nation).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tally {
    /// Votes per candidate, in the contest's ballot order.
    pub votes: Vec<i64>,
    pub valid: i64,
    pub invalid: i64,
    /// Voters (B.4) of the TPS counted.
    pub voters: i64,
    /// Registered voters of every TPS in the region, as the registry says.
    pub dpt: i64,
    pub tps_total: u64,
    /// TPS with an accepted result.
    pub tps_reported: u64,
    /// Logged entries that were rejected.
    pub rejected_entries: u64,
    /// Counted TPS whose result did not report a figure (only transcriptions of published rows can
    /// miss one): missing is not zero, so such a TPS adds nothing to that figure and is counted here.
    pub unreported: Unreported,
    /// What the poll witnesses' copies say about the region's TPS.
    pub copies: CopyTally,
}

/// Poll witnesses' copies in a region, by TPS.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CopyTally {
    /// TPS with at least one copy logged.
    pub tps_with_copies: u64,
    /// TPS where only poll witnesses have spoken: copies, but no accepted official result.
    pub tps_witness_only: u64,
    /// TPS where some poll witness's latest copy disagrees with the official current result.
    pub tps_disagreeing: u64,
    /// The same, per participant in ballot order (a TPS may count for several).
    pub disagreeing_by_participant: Vec<u64>,
}

/// A TPS's standing in [`CopyTally`]; a bit per participant (ballot index < 64) for disagreement.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct CopyStatus {
    with_copies: bool,
    witness_only: bool,
    disagreeing: u64,
}

impl CopyTally {
    fn add(&mut self, status: CopyStatus, sign: i64) {
        let step = |total: &mut u64, on: bool| {
            if on {
                *total = if sign > 0 { *total + 1 } else { *total - 1 };
            }
        };
        step(&mut self.tps_with_copies, status.with_copies);
        step(&mut self.tps_witness_only, status.witness_only);
        step(&mut self.tps_disagreeing, status.disagreeing != 0);
        let participants = 64 - status.disagreeing.leading_zeros() as usize;
        if self.disagreeing_by_participant.len() < participants {
            self.disagreeing_by_participant.resize(participants, 0);
        }
        for (bit, total) in self.disagreeing_by_participant.iter_mut().enumerate() {
            step(total, status.disagreeing & (1 << bit) != 0);
        }
    }
}

/// Most participants a contest may have for copies (one bit each in a TPS's status).
pub const MAX_PARTICIPANTS: usize = 64;

/// Most copies logged for one TPS: three pairs' witnesses, each resending a few times, fit many
/// times over; past it a TPS's comparison (recomputed on each copy) would grow without bound.
pub const MAX_COPIES_PER_TPS: usize = 64;

/// A poll witness's copy as the state keeps it: who, where in the log, and the figures compared.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct CopyRecord {
    pub index: u64,
    /// The participant's ballot index (0 for "01").
    pub participant: usize,
    pub signer: saksi_election::sign::PublicKey,
    pub counts: Counts,
    /// The rulebook's verdict on the copy's own figures.
    pub verdict: RecordedVerdict,
}

/// One figure where a copy and the official result differ. `official` is `None` when the official
/// result did not report it (a transcription); such a figure is never a difference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldDifference {
    /// `votes.01`, `valid`, `invalid` or `voters` (B.4, voters who voted).
    pub field: String,
    pub official: i64,
    pub copy: i64,
}

/// The figures a copy is compared on, field by field: those the tallies carry (each pair's votes,
/// valid, invalid, voters). A figure the official result did not report is not compared.
pub fn compare(positions: &[String], official: &Counts, copy: &Counts) -> Vec<FieldDifference> {
    let mut out = Vec::new();
    let mut check = |field: String, official: i64, missing: bool, copy: i64| {
        if !missing && official != copy {
            out.push(FieldDifference {
                field,
                official,
                copy,
            });
        }
    };
    for (i, position) in positions.iter().enumerate() {
        check(
            format!("votes.{position}"),
            official.votes.get(i).copied().unwrap_or(0),
            official.unreported.votes > 0,
            copy.votes.get(i).copied().unwrap_or(0),
        );
    }
    check(
        "valid".into(),
        official.valid,
        official.unreported.valid > 0,
        copy.valid,
    );
    check(
        "invalid".into(),
        official.invalid,
        official.unreported.invalid > 0,
        copy.invalid,
    );
    check(
        "voters".into(),
        official.voters,
        official.unreported.voters > 0,
        copy.voters,
    );
    out
}

/// What an accepted correction did to the agreement between the official result and the copies.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CorrectionEffect {
    pub index: u64,
    pub tps: Code,
    /// Latest copies (one per poll witness) disagreeing before and after the correction.
    pub disagreeing_before: usize,
    pub disagreeing_after: usize,
    pub copies: usize,
}

impl CorrectionEffect {
    /// `aligned` (brought in line with every copy), `diverged` (away from copies that agreed),
    /// or `changed` (neither).
    pub fn kind(&self) -> &'static str {
        match (self.disagreeing_before, self.disagreeing_after) {
            (b, 0) if b > 0 => "aligned",
            (0, a) if a > 0 => "diverged",
            _ => "changed",
        }
    }
}

/// Per figure, how many counted TPS did not report it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Unreported {
    /// TPS where some candidate's count is missing.
    pub votes: u64,
    pub valid: u64,
    pub invalid: u64,
    pub voters: u64,
}

/// What a TPS's current result adds to the tallies.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counts {
    pub votes: Vec<i64>,
    pub valid: i64,
    pub invalid: i64,
    pub voters: i64,
    /// Which figures the result did not report (each counted as 0 above, and as 1 in
    /// [`Tally::unreported`]).
    pub unreported: Unreported,
}

impl Tally {
    fn add(&mut self, counts: &Counts, sign: i64) {
        if self.votes.len() < counts.votes.len() {
            self.votes.resize(counts.votes.len(), 0);
        }
        for (total, v) in self.votes.iter_mut().zip(&counts.votes) {
            *total += sign * v;
        }
        self.valid += sign * counts.valid;
        self.invalid += sign * counts.invalid;
        self.voters += sign * counts.voters;
        let step = |total: &mut u64, count: u64| {
            *total = if sign > 0 {
                *total + count
            } else {
                *total - count
            }
        };
        step(&mut self.unreported.votes, counts.unreported.votes);
        step(&mut self.unreported.valid, counts.unreported.valid);
        step(&mut self.unreported.invalid, counts.unreported.invalid);
        step(&mut self.unreported.voters, counts.unreported.voters);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Source {
    Officer,
    Correction,
    Transcription,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Officer => "officer",
            Source::Correction => "correction",
            Source::Transcription => "transcription",
        }
    }
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct HistoryItem {
    pub index: u64,
    pub source: Source,
    pub verdict: RecordedVerdict,
}

#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct TpsRecord {
    pub history: Vec<HistoryItem>,
    /// Leaf index of the accepted version the tallies use (the latest accepted).
    pub current: Option<u64>,
    pub counts: Option<Counts>,
}

/// serde derives arrays up to 32 bytes: a map keyed by 64-byte signatures travels as its
/// pairs, the signature in halves.
mod signature_map {
    use std::collections::HashMap;

    use saksi_election::sign::Signature;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        map: &HashMap<[u8; 64], u64>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(map.iter().map(|(key, index)| (Signature(*key), *index)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<HashMap<[u8; 64], u64>, D::Error> {
        let pairs: Vec<(Signature, u64)> = Deserialize::deserialize(deserializer)?;
        Ok(pairs
            .into_iter()
            .map(|(key, index)| (key.0, index))
            .collect())
    }
}

#[derive(Default, serde::Serialize, serde::Deserialize)]
pub struct State {
    pub genesis: Option<Genesis>,
    pub registry: Registry,
    /// Entries applied: the tree size this state reflects.
    pub size: u64,
    tps: CodeMap<TpsRecord>,
    /// Digest of every logged form -> its leaf index (identical resubmissions get the original back).
    digests: HashMap<[u8; 32], u64>,
    tallies: CodeMap<Tally>,
    national: Tally,
    children: CodeMap<Vec<Code>>,
    provinces: Vec<Code>,
    /// The contest's ballot positions, in order, once the genesis is applied.
    positions: Vec<String>,
    /// Every rejected TPS entry (form or transcription) as (log index, TPS), in log order: the
    /// site's rejections list reads it instead of walking 823,220 TPS records.
    pub rejections: Vec<(u64, Code)>,
    /// Every correction entry, accepted or not, as (log index, TPS), in log order.
    pub corrections: Vec<(u64, Code)>,
    /// The witness policy in force (the latest logged), if any.
    pub witness_policy: Option<crate::entry::WitnessPolicy>,
    /// Recapitulation forms by (level, region).
    pub recaps: std::collections::BTreeMap<(RecapLevel, Option<Code>), RecapRecord>,
    recap_digests: HashMap<[u8; 32], u64>,
    /// Signature of every authority or participant statement logged -> its index: a statement is
    /// logged once, so whoever holds a copy cannot log it again (e.g. restore an older witness
    /// policy, or re-enrol through an old statement). Ed25519 signatures are deterministic, and an
    /// honest signature has one encoding.
    #[serde(with = "signature_map")]
    admin_signatures: HashMap<[u8; 64], u64>,
    /// Poll witnesses' copies by TPS, in log order.
    copies: CodeMap<Vec<CopyRecord>>,
    copy_digests: HashMap<[u8; 32], u64>,
    copy_status: CodeMap<CopyStatus>,
    /// TPS where some poll witness's latest copy disagrees with the official result, in code order.
    pub disagreeing: std::collections::BTreeSet<Code>,
    /// Every accepted correction of a TPS with copies, and what it did to the agreement.
    pub correction_effects: Vec<CorrectionEffect>,
    /// Citizens' reports, in log order (index, report).
    pub reports: Vec<(u64, saksi_election::report::Report)>,
    /// Signature of every report -> its index: a report filed twice (or through several relays)
    /// is one report.
    #[serde(with = "signature_map")]
    report_signatures: HashMap<[u8; 64], u64>,
    /// First reports (not follow-ups) by category, nationally and for every place and its
    /// ancestors: the counts region pages show, kept as reports arrive.
    pub report_counts: ReportCounts,
    /// The operator's current report intake setting (proof of work, per-key bound).
    pub intake: crate::entry::IntakeSetting,
    /// The oversight body's age recipient, to which reporters encrypt contact details (registry).
    pub oversight_recipient: Option<String>,
    /// The reports naming each text digest (usually one): a text is served unless every report
    /// naming it is hidden.
    pub reports_by_text: HashMap<[u8; 32], Vec<u64>>,
    /// Each report's follow-ups and withdrawal by its reporter, by the first report's index.
    pub threads: HashMap<u64, ReportThread>,
    /// A follow-up's first report, by the follow-up's index.
    pub follow_up_of: HashMap<u64, u64>,
    /// What moderators have said about each report, by the report's index.
    pub moderation: HashMap<u64, ReportModeration>,
    /// Reports hidden now, by the moderator who hid them: public, so a moderator who hides much
    /// is seen to.
    pub hidden_by_moderator: HashMap<saksi_election::sign::PublicKey, u64>,
}

/// Reports by category (in `Category::ALL` order).
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct ReportCounts {
    pub national: [u64; 8],
    pub by_region: HashMap<Code, [u64; 8]>,
}

impl ReportCounts {
    /// The counts for a region (`None`: the nation).
    pub fn of(&self, region: Option<Code>) -> [u64; 8] {
        match region {
            None => self.national,
            Some(code) => self.by_region.get(&code).copied().unwrap_or_default(),
        }
    }
}

/// What a reporter added to a report: follow-ups (in log order) and a withdrawal.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct ReportThread {
    pub follow_ups: Vec<u64>,
    /// The follow-up that withdrew the report: its entries stay, its reporter no longer stands by it.
    pub withdrawn: Option<u64>,
}

/// A follow-up names a report that is not logged (it must be logged first).
pub const REPORT_FOLLOWS_UNKNOWN: &str = "REPORT_FOLLOWS_UNKNOWN";
/// A follow-up signed by another key than the first report's.
pub const REPORT_NOT_REPORTER: &str = "REPORT_NOT_REPORTER";
/// A follow-up to a report its reporter withdrew.
pub const REPORT_WITHDRAWN: &str = "REPORT_WITHDRAWN";

/// Moderators' statements about one report, as they stand.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct ReportModeration {
    /// The latest status and the entry that set it.
    pub status: Option<(String, u64)>,
    /// Hidden now: the reason, who hid it, the entry.
    pub hidden: Option<(String, saksi_election::sign::PublicKey, u64)>,
    /// Every moderation entry about the report, in log order.
    pub history: Vec<u64>,
}

/// A region's recapitulation forms.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct RecapRecord {
    pub history: Vec<(u64, RecordedVerdict)>,
    /// The latest accepted version.
    pub current: Option<(u64, RecapForm)>,
    /// The latest version, accepted or not.
    pub latest: Option<(u64, RecapForm, RecordedVerdict)>,
}

impl State {
    pub fn election(&self) -> Option<&Election> {
        self.genesis.as_ref().map(|g| &g.election)
    }

    /// The rulebook version the genesis names: every verdict of this log is made under it. `None`
    /// before the genesis, or for a version this build does not know.
    pub fn rulebook(&self) -> Option<saksi_election::rules::Rulebook> {
        self.genesis
            .as_ref()
            .and_then(|g| saksi_election::rules::Rulebook::named(&g.rulebook_version))
    }

    pub fn national(&self) -> &Tally {
        &self.national
    }

    pub fn tally(&self, region: Code) -> Option<&Tally> {
        self.tallies.get(&region)
    }

    pub fn provinces(&self) -> &[Code] {
        &self.provinces
    }

    /// Child regions (or, for a desa, its TPS), in code order.
    pub fn children(&self, region: Code) -> &[Code] {
        self.children.get(&region).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn tps_record(&self, tps: Code) -> Option<&TpsRecord> {
        self.tps.get(&tps)
    }

    /// Where the authority statement with this signature was logged, if it was.
    pub fn logged_statement(&self, signature: &[u8; 64]) -> Option<u64> {
        self.admin_signatures.get(signature).copied()
    }

    pub fn logged_digest(&self, digest: &[u8; 32]) -> Option<u64> {
        self.digests.get(digest).copied()
    }

    pub fn logged_recap(&self, digest: &[u8; 32]) -> Option<u64> {
        self.recap_digests.get(digest).copied()
    }

    /// The verdict recorded for the TPS form logged at `index` (found by [`State::logged_digest`]).
    pub fn tps_verdict(&self, tps: Code, index: u64) -> RecordedVerdict {
        self.tps_record(tps)
            .and_then(|r| r.history.iter().find(|h| h.index == index))
            .map(|h| h.verdict.clone())
            .expect("invariant: a logged digest has its TPS history entry")
    }

    /// The verdict recorded for the recap form logged at `index` (found by [`State::logged_recap`]).
    pub fn logged_recap_verdict(
        &self,
        key: (RecapLevel, Option<Code>),
        index: u64,
    ) -> RecordedVerdict {
        self.recaps
            .get(&key)
            .and_then(|r| r.history.iter().find(|(i, _)| *i == index))
            .map(|(_, v)| v.clone())
            .expect("invariant: a logged recap digest has its history entry")
    }

    pub fn positions(&self) -> &[String] {
        &self.positions
    }

    /// The TPS already has an accepted result.
    pub fn has_accepted(&self, tps: Code) -> bool {
        self.tps.get(&tps).is_some_and(|r| r.current.is_some())
    }

    fn ancestors(tps: Code) -> impl Iterator<Item = Code> {
        [
            Level::Desa,
            Level::Kecamatan,
            Level::KabKota,
            Level::Provinsi,
        ]
        .into_iter()
        .filter_map(move |l| tps.ancestor(l))
    }

    fn for_each_tally(&mut self, tps: Code, mut f: impl FnMut(&mut Tally)) {
        for region in State::ancestors(tps) {
            f(self.tallies.entry(region).or_default());
        }
        f(&mut self.national);
    }

    /// Applies the entry at leaf `index`. Entries must come in log order, from 0.
    pub fn apply(&mut self, index: u64, entry: &Entry) -> Result<(), EntryError> {
        if index != self.size {
            return Err(EntryError(format!(
                "entry {index} applied at size {}",
                self.size
            )));
        }
        match entry {
            Entry::Admin {
                statement,
                signature,
            } => self.apply_admin(index, entry, statement, signature)?,
            Entry::Form {
                form,
                verdict,
                digest,
            } => {
                let source = if form.form.correction.is_some() {
                    Source::Correction
                } else {
                    Source::Officer
                };
                self.digests.insert(*digest, index);
                let counts = verdict.accepted.then(|| self.counts_of_form(&form.form));
                self.record(form.form.tps, index, source, verdict.clone(), counts);
            }
            Entry::Recap {
                form,
                verdict,
                digest,
            } => self.apply_recap(index, &form.form, verdict, digest),
            Entry::Transcription { sheet, verdict, .. } => {
                let counts = verdict.accepted.then(|| self.counts_of_sheet(sheet));
                let source = Source::Transcription;
                self.record(sheet.tps, index, source, verdict.clone(), counts);
            }
            Entry::Moderation {
                statement,
                moderator,
                signature,
            } => {
                self.apply_moderation(index, statement, moderator)?;
                self.admin_signatures.entry(signature.0).or_insert(index);
            }
            Entry::Intake {
                setting, signature, ..
            } => {
                // The verifier checks the operator's signature; the state takes the setting.
                self.intake = setting.clone();
                self.admin_signatures.entry(signature.0).or_insert(index);
            }
            Entry::Report { report } => {
                // A follow-up that does not apply (only a rewritten log has one) is kept as a
                // report and flagged by the verifier; it joins no thread.
                if let Ok(Some(first)) = self.check_follow_up(&report.report) {
                    let thread = self.threads.entry(first).or_default();
                    thread.follow_ups.push(index);
                    if report.report.withdraw {
                        thread.withdrawn = Some(index);
                    }
                    self.follow_up_of.insert(index, first);
                } else {
                    let category = report.report.category as usize;
                    self.report_counts.national[category] += 1;
                    let mut place = Some(report.report.place);
                    while let Some(code) = place {
                        self.report_counts.by_region.entry(code).or_default()[category] += 1;
                        place = code.parent();
                    }
                }
                self.report_signatures
                    .entry(report.signature.0)
                    .or_insert(index);
                self.reports_by_text
                    .entry(report.report.text_sha256)
                    .or_default()
                    .push(index);
                self.reports.push((index, report.report.clone()));
            }
            Entry::Participant {
                statement,
                signer,
                signature,
            } => {
                if !entry.participant_signature_valid() {
                    return Err(EntryError(format!(
                        "entry {index}: participant statement with a bad signature"
                    )));
                }
                // Keys were checked before the statement was logged (statements::check_statement);
                // an independent verifier re-checks them (verify.rs).
                self.registry
                    .change_poll_witnesses(&statement.change, signer, true)
                    .map_err(|e| EntryError(format!("entry {index}: {e}")))?;
                self.admin_signatures.entry(signature.0).or_insert(index);
            }
            Entry::Copy {
                copy,
                verdict,
                digest,
            } => {
                let participant =
                    self.participant_index(&copy.copy.participant)
                        .ok_or_else(|| {
                            EntryError(format!("entry {index}: a copy for an unknown participant"))
                        })?;
                let record = CopyRecord {
                    index,
                    participant,
                    signer: copy.copy.form.signer,
                    counts: self.counts_of_form(&copy.copy.form),
                    verdict: verdict.clone(),
                };
                let tps = copy.copy.form.tps;
                self.copy_digests.insert(*digest, index);
                self.copies.entry(tps).or_default().push(record);
                self.refresh_copy_status(tps);
            }
        }
        self.size += 1;
        Ok(())
    }

    /// An authority statement: signed by the genesis's authority (the genesis by its own), and
    /// only one genesis, first.
    fn apply_admin(
        &mut self,
        index: u64,
        entry: &Entry,
        statement: &Admin,
        signature: &saksi_election::sign::Signature,
    ) -> Result<(), EntryError> {
        let authority = match (&self.genesis, statement) {
            (None, Admin::Genesis(g)) if index == 0 => g.authority,
            (None, _) => return Err(EntryError("the first entry must be the genesis".into())),
            (Some(g), _) => g.authority,
        };
        if !entry.admin_signature_valid(&authority) {
            return Err(EntryError(format!(
                "entry {index}: admin statement not signed by the authority"
            )));
        }
        match statement {
            Admin::Genesis(g) => {
                if self.genesis.is_some() {
                    return Err(EntryError(format!("entry {index}: a second genesis")));
                }
                self.positions = g
                    .election
                    .contests
                    .first()
                    .map(|c| c.candidates.iter().map(|p| p.number.clone()).collect())
                    .unwrap_or_default();
                self.genesis = Some(g.clone());
            }
            Admin::Registry(part) => self.apply_registry(part)?,
            Admin::Witnesses(policy) => self.witness_policy = Some(policy.clone()),
        }
        self.admin_signatures.entry(signature.0).or_insert(index);
        Ok(())
    }

    /// A recap form: its history, its latest version, and (if accepted) its current one.
    fn apply_recap(
        &mut self,
        index: u64,
        form: &RecapForm,
        verdict: &RecordedVerdict,
        digest: &[u8; 32],
    ) {
        self.recap_digests.insert(*digest, index);
        let record = self.recaps.entry((form.level, form.region)).or_default();
        record.history.push((index, verdict.clone()));
        record.latest = Some((index, form.clone(), verdict.clone()));
        if verdict.accepted {
            record.current = Some((index, form.clone()));
        }
    }

    /// The ballot index of a participant, if the contest has it and it fits a TPS's status bits.
    pub fn participant_index(&self, participant: &str) -> Option<usize> {
        self.positions
            .iter()
            .position(|p| p == participant)
            .filter(|&i| i < MAX_PARTICIPANTS)
    }

    /// The report logged at `index`, if that entry is a report.
    pub fn report_at(&self, index: u64) -> Option<&saksi_election::report::Report> {
        self.reports
            .binary_search_by_key(&index, |(i, _)| *i)
            .ok()
            .map(|at| &self.reports[at].1)
    }

    /// Whether the operator's intake setting applies: signed by the operator key the genesis names.
    pub fn check_intake(&self, entry: &Entry) -> Result<(), String> {
        let Entry::Intake { operator, .. } = entry else {
            return Err("not an intake setting".into());
        };
        let Some(genesis) = &self.genesis else {
            return Err("the log has no genesis".into());
        };
        if *operator != genesis.operator {
            return Err(format!(
                "signed by {operator}, not the operator the genesis names ({})",
                genesis.operator
            ));
        }
        if !entry.intake_signature_valid() {
            return Err(format!("the signature is not {operator}'s"));
        }
        Ok(())
    }

    /// Whether a report's follow-up applies: it names a logged report (a follow-up names its
    /// thread's first report or any follow-up in it), signed by the same reporter, not withdrawn.
    /// Answers the thread's first report, or `None` for a first report.
    pub fn check_follow_up(
        &self,
        report: &saksi_election::report::Report,
    ) -> Result<Option<u64>, (&'static str, String)> {
        let Some(follows) = &report.follows else {
            return Ok(None);
        };
        let Some(named) = self.logged_report(&follows.0) else {
            return Err((
                REPORT_FOLLOWS_UNKNOWN,
                "the report it follows is not in the log (file that first)".into(),
            ));
        };
        let first = self.follow_up_of.get(&named).copied().unwrap_or(named);
        let Some(first_report) = self.report_at(first) else {
            return Err((
                REPORT_FOLLOWS_UNKNOWN,
                format!("entry {first} is not a report"),
            ));
        };
        if first_report.reporter != report.reporter {
            return Err((
                REPORT_NOT_REPORTER,
                format!("report {first} was signed by another reporter's key"),
            ));
        }
        if let Some(at) = self.threads.get(&first).and_then(|t| t.withdrawn) {
            return Err((
                REPORT_WITHDRAWN,
                format!("report {first} was withdrawn by its reporter at entry {at}"),
            ));
        }
        Ok(Some(first))
    }

    /// Whether a photo is named by a report hidden now: then it is not served (its digest stays).
    pub fn photo_withheld(&self, digest: &saksi_election::form::PhotoDigest) -> bool {
        self.moderation
            .iter()
            .filter(|(_, m)| m.hidden.is_some())
            .filter_map(|(index, _)| self.report_at(*index))
            .any(|report| report.photos.contains(digest))
    }

    /// Whether a moderation statement applies: an enrolled moderator, about a logged report, and
    /// a restore only of a hidden one.
    pub fn check_moderation(
        &self,
        statement: &crate::entry::ModerationStatement,
        moderator: &saksi_election::sign::PublicKey,
    ) -> Result<(), String> {
        if !self.registry.is_moderator(moderator) {
            return Err(format!("{moderator} is not an enrolled moderator"));
        }
        if self.report_at(statement.report).is_none() {
            return Err(format!("entry {} is not a report", statement.report));
        }
        let hidden = self
            .moderation
            .get(&statement.report)
            .is_some_and(|m| m.hidden.is_some());
        if statement.action == crate::entry::ModerationAction::Restore && !hidden {
            return Err(format!("report {} is not hidden", statement.report));
        }
        Ok(())
    }

    fn apply_moderation(
        &mut self,
        index: u64,
        statement: &crate::entry::ModerationStatement,
        moderator: &saksi_election::sign::PublicKey,
    ) -> Result<(), EntryError> {
        use crate::entry::ModerationAction;
        self.check_moderation(statement, moderator)
            .map_err(|e| EntryError(format!("entry {index}: {e}")))?;
        let record = self.moderation.entry(statement.report).or_default();
        record.history.push(index);
        let previous = match &statement.action {
            ModerationAction::Status(status) => {
                record.status = Some((status.clone(), index));
                None
            }
            ModerationAction::Hide(reason) => {
                let before = record.hidden.replace((reason.clone(), *moderator, index));
                *self.hidden_by_moderator.entry(*moderator).or_default() += 1;
                before
            }
            ModerationAction::Restore => record.hidden.take(),
        };
        if let Some((_, hider, _)) = previous {
            if let Some(count) = self.hidden_by_moderator.get_mut(&hider) {
                *count -= 1;
            }
        }
        Ok(())
    }

    /// Where the report with this signature was logged, if it was.
    pub fn logged_report(&self, signature: &[u8; 64]) -> Option<u64> {
        self.report_signatures.get(signature).copied()
    }

    pub fn logged_copy(&self, digest: &[u8; 32]) -> Option<u64> {
        self.copy_digests.get(digest).copied()
    }

    /// The copies logged for a TPS, in log order.
    pub fn copies(&self, tps: Code) -> &[CopyRecord] {
        self.copies.get(&tps).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The verdict of the copy logged at `index` (found by [`State::logged_copy`]).
    pub fn copy_verdict(&self, tps: Code, index: u64) -> RecordedVerdict {
        self.copies(tps)
            .iter()
            .find(|c| c.index == index)
            .map(|c| c.verdict.clone())
            .expect("invariant: a logged copy digest has its TPS's copy record")
    }

    /// Each poll witness's latest copy for a TPS (a witness who sent again replaced its own word),
    /// in log order, with its differences from the official current result (None when there is
    /// none).
    pub fn latest_copies(&self, tps: Code) -> Vec<(&CopyRecord, Option<Vec<FieldDifference>>)> {
        let copies = self.copies(tps);
        let official = self.tps.get(&tps).and_then(|r| r.counts.as_ref());
        // Newest first, each signer once, then back to log order.
        let mut seen = std::collections::HashSet::with_capacity(copies.len());
        let mut latest: Vec<(&CopyRecord, Option<Vec<FieldDifference>>)> = copies
            .iter()
            .rev()
            .filter(|c| seen.insert(c.signer))
            .map(|c| {
                let differences = official.map(|o| compare(&self.positions, o, &c.counts));
                (c, differences)
            })
            .collect();
        latest.reverse();
        latest
    }

    fn compute_copy_status(&self, tps: Code) -> CopyStatus {
        let latest = self.latest_copies(tps);
        if latest.is_empty() {
            return CopyStatus::default();
        }
        let mut status = CopyStatus {
            with_copies: true,
            witness_only: !self.has_accepted(tps),
            disagreeing: 0,
        };
        for (copy, differences) in latest {
            if differences.is_some_and(|d| !d.is_empty()) {
                status.disagreeing |= 1 << copy.participant;
            }
        }
        status
    }

    /// Recomputes a TPS's copy status after a copy or an official result changed, and moves the
    /// region tallies from the old status to the new.
    fn refresh_copy_status(&mut self, tps: Code) {
        let new = self.compute_copy_status(tps);
        let old = self.copy_status.get(&tps).copied().unwrap_or_default();
        if new == old {
            return;
        }
        self.copy_status.insert(tps, new);
        if new.disagreeing != 0 {
            self.disagreeing.insert(tps);
        } else {
            self.disagreeing.remove(&tps);
        }
        self.for_each_tally(tps, |t| {
            t.copies.add(old, -1);
            t.copies.add(new, 1);
        });
    }

    fn disagreeing_copies(&self, tps: Code) -> usize {
        self.latest_copies(tps)
            .into_iter()
            .filter(|(_, d)| d.as_ref().is_some_and(|d| !d.is_empty()))
            .count()
    }

    fn apply_registry(&mut self, part: &crate::entry::RegistryPart) -> Result<(), EntryError> {
        for (code, name) in &part.regions {
            self.registry
                .add_region(*code, name)
                .map_err(|e| EntryError(e.to_string()))?;
            self.tallies.entry(*code).or_default();
            match code.parent() {
                Some(parent) => self.children.entry(parent).or_default().push(*code),
                None => self.provinces.push(*code),
            }
        }
        for tps in &part.tps {
            // Keys were checked before the authority signed the entry (see Engine::init).
            self.registry
                .add_tps_with_checked_keys(tps.clone())
                .map_err(|e| EntryError(e.to_string()))?;
            let dpt = tps.dpt.map_or(0, |d| d.total() as i64);
            self.for_each_tally(tps.code, |t| {
                t.tps_total += 1;
                t.dpt += dpt;
            });
            if let Some(parent) = tps.code.parent() {
                self.children.entry(parent).or_default().push(tps.code);
            }
        }
        for (region, key) in &part.correctors {
            self.registry
                .add_corrector(*region, *key)
                .map_err(|e| EntryError(e.to_string()))?;
        }
        for (tps, key) in &part.enrollments {
            self.registry
                .enroll(*tps, *key)
                .map_err(|e| EntryError(e.to_string()))?;
        }
        for (region, key) in &part.recap_officers {
            self.registry
                .add_recap_officer(*region, *key)
                .map_err(|e| EntryError(e.to_string()))?;
        }
        for key in &part.moderators {
            self.registry
                .add_moderator(*key)
                .map_err(|e| EntryError(e.to_string()))?;
        }
        if let Some(recipient) = &part.oversight_recipient {
            crate::contact::check_recipient(recipient).map_err(EntryError)?;
            self.oversight_recipient = Some(recipient.clone());
        }
        for (participant, key) in &part.participants {
            if self.participant_index(participant).is_none() {
                return Err(EntryError(format!(
                    "participant {participant} is not a ballot position of the contest"
                )));
            }
            self.registry
                .add_participant(participant, *key)
                .map_err(|e| EntryError(e.to_string()))?;
        }
        Ok(())
    }

    fn record(
        &mut self,
        tps: Code,
        index: u64,
        source: Source,
        verdict: RecordedVerdict,
        counts: Option<Counts>,
    ) {
        let accepted = verdict.accepted;
        if !accepted {
            self.rejections.push((index, tps));
        }
        if source == Source::Correction {
            self.corrections.push((index, tps));
        }
        let has_copies = self.copies.contains_key(&tps);
        let disagreeing_before = if has_copies && accepted && source == Source::Correction {
            Some(self.disagreeing_copies(tps))
        } else {
            None
        };
        let record = self.tps.entry(tps).or_default();
        record.history.push(HistoryItem {
            index,
            source,
            verdict,
        });
        let previous = if accepted { record.counts.take() } else { None };
        if accepted {
            record.current = Some(index);
            record.counts = counts.clone();
        }
        match (accepted, previous, counts) {
            (true, previous, Some(new)) => {
                let first_time = previous.is_none();
                self.for_each_tally(tps, |t| {
                    if let Some(old) = &previous {
                        t.add(old, -1);
                    }
                    t.add(&new, 1);
                    if first_time {
                        t.tps_reported += 1;
                    }
                });
            }
            _ => self.for_each_tally(tps, |t| t.rejected_entries += 1),
        }
        if has_copies && accepted {
            self.refresh_copy_status(tps);
        }
        if let Some(disagreeing_before) = disagreeing_before {
            self.correction_effects.push(CorrectionEffect {
                index,
                tps,
                disagreeing_before,
                disagreeing_after: self.disagreeing_copies(tps),
                copies: self.latest_copies(tps).len(),
            });
        }
    }

    fn counts_of_form(&self, form: &CHasil) -> Counts {
        Counts {
            votes: self
                .positions
                .iter()
                .map(|p| form.votes_for(p).unwrap_or(0))
                .collect(),
            valid: form.valid,
            invalid: form.invalid,
            voters: form.voted.total.j,
            unreported: Unreported::default(),
        }
    }

    fn counts_of_sheet(&self, sheet: &Sheet) -> Counts {
        let votes: Vec<Option<i64>> = self
            .positions
            .iter()
            .map(|p| {
                sheet
                    .votes
                    .iter()
                    .find(|(q, _)| q == p)
                    .and_then(|(_, v)| *v)
            })
            .collect();
        let (valid, invalid, voters) = (
            sheet.get(Field::VALID),
            sheet.get(Field::INVALID),
            sheet.get(Field::voted(Row::Total, Col::J)),
        );
        Counts {
            votes: votes.iter().map(|v| v.unwrap_or(0)).collect(),
            valid: valid.unwrap_or(0),
            invalid: invalid.unwrap_or(0),
            voters: voters.unwrap_or(0),
            unreported: Unreported {
                votes: votes.iter().any(Option::is_none) as u64,
                valid: valid.is_none() as u64,
                invalid: invalid.is_none() as u64,
                voters: voters.is_none() as u64,
            },
        }
    }
}
