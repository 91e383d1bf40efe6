//! The state every published figure comes from, derived from the log alone: the registry, each TPS's
//! history and current result, and the tallies of every region at every level. Applying the same
//! entries in the same order always gives the same state.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use saksi_election::code::{Code, Level};
use saksi_election::form::CHasil;
use saksi_election::recap::{RecapForm, RecapLevel};
use saksi_election::sheet::{Col, Field, Row, Sheet};
use saksi_election::{Election, Registry};

use crate::entry::{Admin, Entry, EntryError, Genesis, RecordedVerdict};

/// A fast multiplicative hash for maps keyed by region and TPS codes. Those keys come from the
/// authority's registry, not from submitters, so flooding attacks on the hash do not apply; maps keyed
/// by submitted data (form digests) keep the standard keyed hash.
#[derive(Default, Clone, Copy)]
pub struct CodeHasher(u64);

impl Hasher for CodeHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type CodeMap<V> = HashMap<Code, V, BuildHasherDefault<CodeHasher>>;

/// Totals for a region (or the nation).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
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
}

/// Per figure, how many counted TPS did not report it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Unreported {
    /// TPS where some candidate's count is missing.
    pub votes: u64,
    pub valid: u64,
    pub invalid: u64,
    pub voters: u64,
}

/// What a TPS's current result adds to the tallies.
#[derive(Clone, Debug, PartialEq, Eq)]
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

#[derive(Clone, Debug)]
pub struct HistoryItem {
    pub index: u64,
    pub source: Source,
    pub verdict: RecordedVerdict,
}

#[derive(Clone, Debug, Default)]
pub struct TpsRecord {
    pub history: Vec<HistoryItem>,
    /// Leaf index of the accepted version the tallies use (the latest accepted).
    pub current: Option<u64>,
    pub counts: Option<Counts>,
}

#[derive(Default)]
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
    /// Signature of every authority statement logged -> its index: a statement is logged once, so
    /// whoever holds a copy cannot log it again (e.g. restore an older witness policy). Ed25519
    /// signatures are deterministic, and an honest signature has one encoding.
    admin_signatures: HashMap<[u8; 64], u64>,
}

/// A region's recapitulation forms.
#[derive(Clone, Debug, Default)]
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
