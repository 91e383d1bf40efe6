//! The region registry: every region from provinsi down to kelurahan/desa, and every TPS with its kind,
//! its DPT (registered voters, L/P) and the officer keys enrolled for it.
//!
//! Three sources fill it:
//! - KPU's own Sirekap master list (`tingkat,kode,id_kpu,nama,kode_induk`), used on real data;
//! - the region names embedded in this crate, derived from the npm package `idn-area-data` (ODbL, see
//!   `assets/`), which `saksi gen` fills with synthetic TPS;
//! - a registry directory written by [`Registry::write_dir`] (`regions.csv`, `tps.csv`).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::{self, BufRead, Write};
use std::path::Path;

use crate::code::{Code, Level};
use crate::csv;
use crate::sign::{KeyError, PublicKey};

/// A fast multiplicative hash for maps keyed by what the authority's registry holds (region and TPS
/// codes, enrolled keys). Those keys come from the registry, never from submitters (a submitted key
/// is only looked up), so no one can flood such a map with colliding keys and the keyed default
/// hash is not needed; maps keyed by submitted data (form digests) keep the standard keyed hash.
#[derive(Default, Clone, Copy)]
pub struct RegistryHasher(u64);

impl std::hash::Hasher for RegistryHasher {
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

/// Maximum officers enrolled for one TPS: the KPPS has seven members; a few spare slots for replacements.
pub const MAX_OFFICERS_PER_TPS: usize = 16;

/// The kinds of voting unit. Caps differ by kind: only a regular TPS is bound by the 300-voter cap.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum TpsKind {
    /// An ordinary TPS in a kelurahan/desa.
    Regular,
    /// "TPS lokasi khusus": prisons, dormitories, hospitals. KPU numbers them 901 and up.
    Khusus,
    /// An overseas polling station (TPS luar negeri).
    Tpsln,
    /// "Kotak suara keliling": an overseas mobile ballot box.
    Ksk,
    /// Overseas postal voting.
    Pos,
}

impl TpsKind {
    pub const ALL: [TpsKind; 5] = [
        TpsKind::Regular,
        TpsKind::Khusus,
        TpsKind::Tpsln,
        TpsKind::Ksk,
        TpsKind::Pos,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TpsKind::Regular => "regular",
            TpsKind::Khusus => "khusus",
            TpsKind::Tpsln => "tpsln",
            TpsKind::Ksk => "ksk",
            TpsKind::Pos => "pos",
        }
    }

    pub fn parse(text: &str) -> Option<TpsKind> {
        TpsKind::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    pub fn is_overseas(self) -> bool {
        matches!(self, TpsKind::Tpsln | TpsKind::Ksk | TpsKind::Pos)
    }
}

/// A male/female pair of counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Lp {
    pub l: u32,
    pub p: u32,
}

impl Lp {
    pub fn total(self) -> u32 {
        self.l + self.p
    }
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tps {
    pub code: Code,
    pub kind: TpsKind,
    /// The DPT as the registry knows it. KPU's public master list has none; generated registries do.
    pub dpt: Option<Lp>,
    /// Keys of the officers (KPPS) who may sign this TPS's forms.
    pub officers: Vec<PublicKey>,
}

#[derive(Debug)]
pub enum RegistryError {
    Io(io::Error),
    /// A line of an input file that could not be read.
    Line {
        source: String,
        line: usize,
        message: String,
    },
    UnknownParent {
        code: Code,
    },
    Duplicate {
        code: Code,
    },
    UnknownTps {
        code: Code,
    },
    Key {
        code: Code,
        error: KeyError,
    },
    TooManyOfficers {
        code: Code,
    },
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryError::Io(e) => write!(f, "{e}"),
            RegistryError::Line {
                source,
                line,
                message,
            } => write!(f, "{source}:{line}: {message}"),
            RegistryError::UnknownParent { code } => {
                write!(f, "{code}: its parent region is not registered")
            }
            RegistryError::Duplicate { code } => write!(f, "{code}: registered twice"),
            RegistryError::UnknownTps { code } => write!(f, "{code}: no such TPS"),
            RegistryError::Key { code, error } => write!(f, "{code}: officer key refused: {error}"),
            RegistryError::TooManyOfficers { code } => {
                write!(f, "{code}: more than {MAX_OFFICERS_PER_TPS} officers")
            }
        }
    }
}

impl std::error::Error for RegistryError {}

impl From<io::Error> for RegistryError {
    fn from(e: io::Error) -> Self {
        RegistryError::Io(e)
    }
}

/// Invariants: every region's and every TPS's parent is registered (the hierarchy is closed); codes are
/// unique; every enrolled key passed [`PublicKey::check_enrollable`].
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Registry {
    regions: BTreeMap<Code, String>,
    tps: Vec<Tps>,
    tps_index: HashMap<Code, usize>,
    /// Keys of commissions that may enter corrections for any TPS under a region (a kecamatan's PPK, a
    /// kabupaten/kota's KPU, ...).
    correctors: BTreeMap<Code, Vec<PublicKey>>,
    /// Keys of the recapitulation committees that sign a region's D.Hasil (None: the national one).
    recap_officers: BTreeMap<Option<Code>, Vec<PublicKey>>,
    /// Participants (candidate pairs by ballot position) and the keys the authority enrolled for
    /// each: a participant's key enrols and revokes its poll witnesses.
    participants: BTreeMap<String, Vec<PublicKey>>,
    /// Poll witnesses (saksi TPS) by key, as their participants enrolled them.
    poll_witnesses: HashMap<PublicKey, PollWitness>,
    /// Moderators of citizens' reports, enrolled by the authority: they append statements about
    /// reports (status, hide, restore), never edit or delete.
    moderators: Vec<PublicKey>,
}

/// Most moderators the authority enrols (a commission's staff and observers' delegates).
pub const MAX_MODERATORS: usize = 256;

/// Most keys the authority enrols for one participant (a campaign's HQ and a few spares).
pub const MAX_PARTICIPANT_KEYS: usize = 16;
/// Most TPS or regions one poll witness may speak for: a witness stands at a TPS, a coordinator
/// covers a desa or a kecamatan; a long list is a sign of a mistake.
pub const MAX_POLL_WITNESS_SCOPE: usize = 64;

/// A poll witness (saksi TPS): whom it speaks for, and where.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PollWitness {
    pub participant: String,
    /// TPS codes or region codes (every TPS under the region), registered when enrolled.
    pub scope: Vec<Code>,
    /// A revoked key never speaks again (it may have been lost or stolen), and cannot be re-enrolled.
    pub revoked: bool,
}

/// Why a poll witness's copy is not entitled to speak for its TPS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyRefusal {
    /// The key is not a poll witness of this participant (or of any).
    NotEnrolled,
    Revoked,
    /// Enrolled, but not for this TPS.
    OutOfScope,
}

impl CopyRefusal {
    /// The API's stable code.
    pub fn code(self) -> &'static str {
        match self {
            CopyRefusal::NotEnrolled => "POLL_WITNESS_NOT_ENROLLED",
            CopyRefusal::Revoked => "POLL_WITNESS_REVOKED",
            CopyRefusal::OutOfScope => "POLL_WITNESS_OUT_OF_SCOPE",
        }
    }
}

/// A participant's statement about its poll witnesses: keys to enrol (with the TPS or regions each
/// speaks for) and keys to revoke. Signed by one of the participant's keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PollWitnessChange {
    pub participant: String,
    pub enrol: Vec<(PublicKey, Vec<Code>)>,
    pub revoke: Vec<PublicKey>,
}

/// Why a participant's enrolment or revocation does not apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PollWitnessError {
    UnknownParticipant(String),
    /// The signing key is not one the authority enrolled for this participant.
    NotParticipantKey,
    Key(KeyError),
    /// A scope code that is not a registered region or TPS.
    UnknownScope(Code),
    ScopeTooLarge,
    /// The key already speaks for another participant.
    OtherParticipant(String),
    Revoked,
    NotEnrolled,
}

impl fmt::Display for PollWitnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PollWitnessError::UnknownParticipant(p) => {
                write!(f, "participant {p:?} is not registered")
            }
            PollWitnessError::NotParticipantKey => {
                write!(
                    f,
                    "not signed by a key the authority enrolled for this participant"
                )
            }
            PollWitnessError::Key(e) => write!(f, "poll witness key refused: {e}"),
            PollWitnessError::UnknownScope(code) => {
                write!(f, "{code}: not a registered region or TPS")
            }
            PollWitnessError::ScopeTooLarge => {
                write!(
                    f,
                    "a poll witness speaks for at most {MAX_POLL_WITNESS_SCOPE} TPS or regions"
                )
            }
            PollWitnessError::OtherParticipant(p) => {
                write!(f, "this key is already a poll witness of participant {p}")
            }
            PollWitnessError::Revoked => {
                write!(f, "this key was revoked and cannot be enrolled again")
            }
            PollWitnessError::NotEnrolled => write!(f, "not a poll witness of this participant"),
        }
    }
}

impl std::error::Error for PollWitnessError {}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    pub fn add_region(&mut self, code: Code, name: &str) -> Result<(), RegistryError> {
        if code.level() == Level::Tps {
            return Err(RegistryError::Line {
                source: "registry".into(),
                line: 0,
                message: format!("{code} is a TPS code, not a region"),
            });
        }
        if let Some(parent) = code.parent() {
            if !self.regions.contains_key(&parent) {
                return Err(RegistryError::UnknownParent { code });
            }
        }
        // Checked before inserting: a refused duplicate must not rename the region.
        if self.regions.contains_key(&code) {
            return Err(RegistryError::Duplicate { code });
        }
        self.regions.insert(code, name.to_string());
        Ok(())
    }

    pub fn add_tps(&mut self, tps: Tps) -> Result<(), RegistryError> {
        let code = tps.code;
        let parent = code.parent().filter(|_| code.level() == Level::Tps);
        match parent {
            Some(parent) if self.regions.contains_key(&parent) => {}
            _ => return Err(RegistryError::UnknownParent { code }),
        }
        if self.tps_index.contains_key(&code) {
            return Err(RegistryError::Duplicate { code });
        }
        if tps.officers.len() > MAX_OFFICERS_PER_TPS {
            return Err(RegistryError::TooManyOfficers { code });
        }
        for key in &tps.officers {
            key.check_enrollable()
                .map_err(|error| RegistryError::Key { code, error })?;
        }
        self.add_tps_with_checked_keys(tps)
    }

    /// `add_tps` for a TPS whose keys the caller has already passed through
    /// [`PublicKey::check_enrollable`] (e.g. on another thread): checking a key costs a point
    /// decompression, and a national registry has 823,220 of them.
    pub fn add_tps_with_checked_keys(&mut self, tps: Tps) -> Result<(), RegistryError> {
        let code = tps.code;
        match code.parent() {
            Some(parent) if code.level() == Level::Tps && self.regions.contains_key(&parent) => {}
            _ => return Err(RegistryError::UnknownParent { code }),
        }
        if self.tps_index.contains_key(&code) {
            return Err(RegistryError::Duplicate { code });
        }
        self.tps_index.insert(code, self.tps.len());
        self.tps.push(tps);
        Ok(())
    }

    /// Enrols one more officer key for a TPS, refusing weak keys.
    pub fn enroll(&mut self, code: Code, key: PublicKey) -> Result<(), RegistryError> {
        key.check_enrollable()
            .map_err(|error| RegistryError::Key { code, error })?;
        let index = *self
            .tps_index
            .get(&code)
            .ok_or(RegistryError::UnknownTps { code })?;
        let officers = &mut self.tps[index].officers;
        if officers.contains(&key) {
            return Ok(());
        }
        if officers.len() >= MAX_OFFICERS_PER_TPS {
            return Err(RegistryError::TooManyOfficers { code });
        }
        officers.push(key);
        Ok(())
    }

    /// Enrols a corrector key for a region (provinsi, kabupaten/kota or kecamatan).
    pub fn add_corrector(&mut self, region: Code, key: PublicKey) -> Result<(), RegistryError> {
        key.check_enrollable().map_err(|error| RegistryError::Key {
            code: region,
            error,
        })?;
        if !self.regions.contains_key(&region) || region.level() == Level::Desa {
            return Err(RegistryError::UnknownParent { code: region });
        }
        let keys = self.correctors.entry(region).or_default();
        if !keys.contains(&key) {
            if keys.len() >= MAX_OFFICERS_PER_TPS {
                return Err(RegistryError::TooManyOfficers { code: region });
            }
            keys.push(key);
        }
        Ok(())
    }

    /// Enrols a recapitulation officer for a kecamatan, kabupaten/kota, provinsi, or (None) the nation.
    pub fn add_recap_officer(
        &mut self,
        region: Option<Code>,
        key: PublicKey,
    ) -> Result<(), RegistryError> {
        let at = region.unwrap_or(Code::parse("99").expect("a valid code"));
        key.check_enrollable()
            .map_err(|error| RegistryError::Key { code: at, error })?;
        if let Some(code) = region {
            if !self.regions.contains_key(&code)
                || !matches!(
                    code.level(),
                    Level::Kecamatan | Level::KabKota | Level::Provinsi
                )
            {
                return Err(RegistryError::UnknownParent { code });
            }
        }
        let keys = self.recap_officers.entry(region).or_default();
        if !keys.contains(&key) {
            if keys.len() >= MAX_OFFICERS_PER_TPS {
                return Err(RegistryError::TooManyOfficers { code: at });
            }
            keys.push(key);
        }
        Ok(())
    }

    /// Enrols a key for a participant (a ballot position; the caller checks it is one of the
    /// contest's).
    pub fn add_participant(
        &mut self,
        participant: &str,
        key: PublicKey,
    ) -> Result<(), RegistryError> {
        let at = Code::parse("99").expect("a valid code");
        key.check_enrollable()
            .map_err(|error| RegistryError::Key { code: at, error })?;
        if !crate::copy::valid_participant(participant) {
            return Err(RegistryError::Line {
                source: "participants".into(),
                line: 0,
                message: format!("{participant:?} is not a participant number"),
            });
        }
        let keys = self
            .participants
            .entry(participant.to_string())
            .or_default();
        if !keys.contains(&key) {
            if keys.len() >= MAX_PARTICIPANT_KEYS {
                return Err(RegistryError::TooManyOfficers { code: at });
            }
            keys.push(key);
        }
        Ok(())
    }

    /// Enrols a moderator of citizens' reports.
    pub fn add_moderator(&mut self, key: PublicKey) -> Result<(), RegistryError> {
        let at = Code::parse("99").expect("a valid code");
        key.check_enrollable()
            .map_err(|error| RegistryError::Key { code: at, error })?;
        if !self.moderators.contains(&key) {
            if self.moderators.len() >= MAX_MODERATORS {
                return Err(RegistryError::TooManyOfficers { code: at });
            }
            self.moderators.push(key);
        }
        Ok(())
    }

    pub fn is_moderator(&self, key: &PublicKey) -> bool {
        self.moderators.contains(key)
    }

    pub fn moderators(&self) -> &[PublicKey] {
        &self.moderators
    }

    pub fn participants(&self) -> impl Iterator<Item = (&str, &[PublicKey])> {
        self.participants
            .iter()
            .map(|(p, keys)| (p.as_str(), keys.as_slice()))
    }

    pub fn is_participant_key(&self, participant: &str, key: &PublicKey) -> bool {
        self.participants
            .get(participant)
            .is_some_and(|keys| keys.contains(key))
    }

    /// Makes a participant's change to its poll witnesses (signed by `signer`): all or nothing.
    /// Enrolments come first, then revocations; enrolling a key again widens its scope.
    /// `keys_checked`: the caller already passed every enrolled key through
    /// [`PublicKey::check_enrollable`] (a logged statement was checked before it was logged, and
    /// a national election enrols some 128,000 poll witnesses: a point decompression each).
    pub fn change_poll_witnesses(
        &mut self,
        change: &PollWitnessChange,
        signer: &PublicKey,
        keys_checked: bool,
    ) -> Result<(), PollWitnessError> {
        let changed = self.plan_poll_witness_change(change, signer, !keys_checked)?;
        self.poll_witnesses.extend(changed);
        Ok(())
    }

    /// Whether [`Registry::change_poll_witnesses`] would succeed, changing nothing.
    pub fn check_poll_witness_change(
        &self,
        change: &PollWitnessChange,
        signer: &PublicKey,
    ) -> Result<(), PollWitnessError> {
        self.plan_poll_witness_change(change, signer, true)
            .map(|_| ())
    }

    fn plan_poll_witness_change(
        &self,
        change: &PollWitnessChange,
        signer: &PublicKey,
        check_keys: bool,
    ) -> Result<HashMap<PublicKey, PollWitness>, PollWitnessError> {
        let participant = change.participant.as_str();
        self.check_participant_signer(participant, signer)?;
        // The witnesses this change touches, as they will be: checked in full before any is stored.
        let mut changed: HashMap<PublicKey, PollWitness> = HashMap::new();
        for (key, scope) in &change.enrol {
            if check_keys {
                key.check_enrollable().map_err(PollWitnessError::Key)?;
            }
            if let Some(&code) = scope.iter().find(|&&code| {
                if code.level() == Level::Tps {
                    self.tps(code).is_none()
                } else {
                    !self.regions.contains_key(&code)
                }
            }) {
                return Err(PollWitnessError::UnknownScope(code));
            }
            let existing = changed.get(key).or_else(|| self.poll_witnesses.get(key));
            if let Some(witness) = existing {
                if witness.participant != participant {
                    return Err(PollWitnessError::OtherParticipant(
                        witness.participant.clone(),
                    ));
                }
                if witness.revoked {
                    return Err(PollWitnessError::Revoked);
                }
            }
            let mut merged = existing.map(|w| w.scope.clone()).unwrap_or_default();
            for code in scope {
                if !merged.contains(code) {
                    merged.push(*code);
                }
            }
            if merged.is_empty() || merged.len() > MAX_POLL_WITNESS_SCOPE {
                return Err(PollWitnessError::ScopeTooLarge);
            }
            let witness = PollWitness {
                participant: participant.to_string(),
                scope: merged,
                revoked: false,
            };
            changed.insert(*key, witness);
        }
        for key in &change.revoke {
            let existing = changed.get(key).or_else(|| self.poll_witnesses.get(key));
            match existing {
                Some(witness) if witness.participant == participant => {
                    let mut witness = witness.clone();
                    witness.revoked = true;
                    changed.insert(*key, witness);
                }
                _ => return Err(PollWitnessError::NotEnrolled),
            }
        }
        Ok(changed)
    }

    fn check_participant_signer(
        &self,
        participant: &str,
        signer: &PublicKey,
    ) -> Result<(), PollWitnessError> {
        if !self.participants.contains_key(participant) {
            return Err(PollWitnessError::UnknownParticipant(
                participant.to_string(),
            ));
        }
        if !self.is_participant_key(participant, signer) {
            return Err(PollWitnessError::NotParticipantKey);
        }
        Ok(())
    }

    pub fn poll_witness(&self, key: &PublicKey) -> Option<&PollWitness> {
        self.poll_witnesses.get(key)
    }

    pub fn poll_witnesses(&self) -> impl Iterator<Item = (&PublicKey, &PollWitness)> {
        self.poll_witnesses.iter()
    }

    /// Whether `key` may speak for `participant` at `tps`: enrolled by that participant, not
    /// revoked, and the TPS in its scope (itself, or under one of its regions).
    pub fn poll_witness_entitlement(
        &self,
        key: &PublicKey,
        participant: &str,
        tps: Code,
    ) -> Result<(), CopyRefusal> {
        let witness = match self.poll_witnesses.get(key) {
            Some(w) if w.participant == participant => w,
            _ => return Err(CopyRefusal::NotEnrolled),
        };
        if witness.revoked {
            return Err(CopyRefusal::Revoked);
        }
        let covered = witness
            .scope
            .iter()
            .any(|code| *code == tps || tps.ancestor(code.level()) == Some(*code));
        if covered {
            Ok(())
        } else {
            Err(CopyRefusal::OutOfScope)
        }
    }

    pub fn recap_officers(&self) -> impl Iterator<Item = (Option<Code>, &[PublicKey])> {
        self.recap_officers
            .iter()
            .map(|(code, keys)| (*code, keys.as_slice()))
    }

    pub fn is_recap_officer(&self, region: Option<Code>, key: &PublicKey) -> bool {
        self.recap_officers
            .get(&region)
            .is_some_and(|keys| keys.contains(key))
    }

    /// The child regions of a region (None: the provinces), in code order.
    pub fn child_regions(&self, region: Option<Code>) -> Vec<Code> {
        match region {
            None => self
                .regions
                .keys()
                .filter(|c| c.level() == Level::Provinsi)
                .copied()
                .collect(),
            Some(code) => {
                let Some(level) = Level::ALL
                    .into_iter()
                    .find(|l| l.parent() == Some(code.level()))
                else {
                    return Vec::new();
                };
                if level == Level::Tps {
                    return Vec::new();
                }
                let prefix = code.as_str();
                self.regions
                    .range(code..)
                    .skip(1)
                    .take_while(|(c, _)| c.as_str().starts_with(prefix))
                    .filter(|(c, _)| c.level() == level)
                    .map(|(c, _)| *c)
                    .collect()
            }
        }
    }

    /// The region above `tps` for which `key` is an enrolled corrector, if any.
    pub fn corrector_region(&self, tps: Code, key: &PublicKey) -> Option<Code> {
        [Level::Kecamatan, Level::KabKota, Level::Provinsi]
            .into_iter()
            .filter_map(|level| tps.ancestor(level))
            .find(|region| {
                self.correctors
                    .get(region)
                    .is_some_and(|keys| keys.contains(key))
            })
    }

    pub fn correctors(&self) -> impl Iterator<Item = (Code, &[PublicKey])> {
        self.correctors
            .iter()
            .map(|(code, keys)| (*code, keys.as_slice()))
    }

    pub fn region_name(&self, code: Code) -> Option<&str> {
        self.regions.get(&code).map(String::as_str)
    }

    pub fn regions(&self) -> impl Iterator<Item = (Code, &str)> {
        self.regions
            .iter()
            .map(|(code, name)| (*code, name.as_str()))
    }

    pub fn regions_at(&self, level: Level) -> impl Iterator<Item = (Code, &str)> {
        self.regions()
            .filter(move |(code, _)| code.level() == level)
    }

    pub fn tps(&self, code: Code) -> Option<&Tps> {
        self.tps_index.get(&code).map(|&i| &self.tps[i])
    }

    pub fn all_tps(&self) -> &[Tps] {
        &self.tps
    }

    /// Regions registered, every level: regions are only ever added, so this names a version.
    pub fn regions_len(&self) -> usize {
        self.regions.len()
    }

    pub fn region_count(&self, level: Level) -> usize {
        match level {
            Level::Tps => self.tps.len(),
            _ => self
                .regions
                .keys()
                .filter(|code| code.level() == level)
                .count(),
        }
    }

    /// The regions (provinsi..desa) embedded in this crate: `idn-area-data` (ODbL) for the domestic
    /// hierarchy, and our own list of overseas missions for province 99. No TPS: a generator adds them.
    pub fn embedded_regions() -> Registry {
        let mut registry = Registry::new();
        let gz: &[u8] = include_bytes!("../../../assets/idn-area-wilayah.csv.gz");
        let reader = io::BufReader::new(flate2::read::GzDecoder::new(gz));
        registry
            .load_regions_csv(reader, "assets/idn-area-wilayah.csv.gz")
            .expect("invariant: the embedded region list is well-formed");
        let overseas: &[u8] = include_bytes!("../../../assets/luar-negeri.csv");
        registry
            .load_regions_csv(overseas, "assets/luar-negeri.csv")
            .expect("invariant: the embedded overseas list is well-formed");
        registry
    }

    /// Reads `kode,nama` lines (with a header). Parents must come before children.
    pub fn load_regions_csv(
        &mut self,
        reader: impl BufRead,
        source: &str,
    ) -> Result<(), RegistryError> {
        for (number, line) in reader.lines().enumerate() {
            let line = line?;
            if number == 0 || line.is_empty() {
                continue;
            }
            let bad = |message: String| RegistryError::Line {
                source: source.into(),
                line: number + 1,
                message,
            };
            let fields = csv::split_line(&line).ok_or_else(|| bad("malformed CSV".into()))?;
            let [code, name] = fields.as_slice() else {
                return Err(bad("expected kode,nama".into()));
            };
            let code = Code::parse(code).map_err(|e| bad(e.to_string()))?;
            self.add_region(code, name)?;
        }
        Ok(())
    }

    /// Reads KPU's Sirekap master list (`tingkat,kode,id_kpu,nama,kode_induk`, levels 1..5). KPU's list
    /// has no DPT and no keys. A TPS's kind comes from its name (`TPS`, `KSK`, `POS`), its province (99 is
    /// overseas) and its number (901 and up are TPS lokasi khusus).
    pub fn from_kpu_wilayah(reader: impl BufRead, source: &str) -> Result<Registry, RegistryError> {
        let mut registry = Registry::new();
        let mut tps_rows = Vec::new();
        for (number, line) in reader.lines().enumerate() {
            let line = line?;
            if number == 0 || line.is_empty() {
                continue;
            }
            let bad = |message: String| RegistryError::Line {
                source: source.into(),
                line: number + 1,
                message,
            };
            let fields = csv::split_line(&line).ok_or_else(|| bad("malformed CSV".into()))?;
            let [tingkat, code, _id_kpu, name, _parent] = fields.as_slice() else {
                return Err(bad("expected tingkat,kode,id_kpu,nama,kode_induk".into()));
            };
            let code = Code::parse(code).map_err(|e| bad(e.to_string()))?;
            if tingkat == "5" {
                tps_rows.push((code, name.clone()));
            } else {
                registry.add_region(code, name)?;
            }
        }
        // TPS after regions: the file is ordered by level, but do not depend on that.
        for (code, name) in tps_rows {
            let kind = if code.is_overseas() {
                if name.starts_with("KSK") {
                    TpsKind::Ksk
                } else if name.starts_with("POS") {
                    TpsKind::Pos
                } else {
                    TpsKind::Tpsln
                }
            } else if code.tps_number().unwrap_or(0) >= 901 {
                TpsKind::Khusus
            } else {
                TpsKind::Regular
            };
            registry.add_tps(Tps {
                code,
                kind,
                dpt: None,
                officers: Vec::new(),
            })?;
        }
        Ok(registry)
    }

    /// Writes `regions.csv` (`kode,nama`) and `tps.csv` (`kode_tps,kind,dpt_l,dpt_p,officers`, officers as
    /// base64 keys joined by `;`, an unknown DPT as empty cells) into `dir`.
    pub fn write_dir(&self, dir: &Path) -> Result<(), RegistryError> {
        std::fs::create_dir_all(dir)?;
        let mut regions = io::BufWriter::new(std::fs::File::create(dir.join("regions.csv"))?);
        writeln!(regions, "kode,nama")?;
        for (code, name) in &self.regions {
            writeln!(regions, "{code},{}", csv::quote(name))?;
        }
        regions.flush()?;
        let mut tps_file = io::BufWriter::new(std::fs::File::create(dir.join("tps.csv"))?);
        writeln!(tps_file, "kode_tps,kind,dpt_l,dpt_p,officers")?;
        for tps in &self.tps {
            let (l, p) = match tps.dpt {
                Some(dpt) => (dpt.l.to_string(), dpt.p.to_string()),
                None => (String::new(), String::new()),
            };
            let officers: Vec<String> = tps.officers.iter().map(PublicKey::to_base64).collect();
            writeln!(
                tps_file,
                "{},{},{l},{p},{}",
                tps.code,
                tps.kind.as_str(),
                officers.join(";")
            )?;
        }
        tps_file.flush()?;
        let mut correctors = io::BufWriter::new(std::fs::File::create(dir.join("correctors.csv"))?);
        writeln!(correctors, "kode,key")?;
        for (code, keys) in &self.correctors {
            for key in keys {
                writeln!(correctors, "{code},{key}")?;
            }
        }
        correctors.flush()?;
        let mut recap = io::BufWriter::new(std::fs::File::create(dir.join("recap_officers.csv"))?);
        writeln!(recap, "kode,key")?;
        for (code, keys) in &self.recap_officers {
            for key in keys {
                writeln!(
                    recap,
                    "{},{key}",
                    code.map_or("nasional".to_string(), |c| c.to_string())
                )?;
            }
        }
        recap.flush()?;
        let mut participants =
            io::BufWriter::new(std::fs::File::create(dir.join("participants.csv"))?);
        writeln!(participants, "participant,key")?;
        for (participant, keys) in &self.participants {
            for key in keys {
                writeln!(participants, "{participant},{key}")?;
            }
        }
        participants.flush()?;
        Ok(())
    }

    /// Reads a directory written by [`Registry::write_dir`].
    pub fn load_dir(dir: &Path) -> Result<Registry, RegistryError> {
        let mut registry = Registry::new();
        let regions = io::BufReader::new(std::fs::File::open(dir.join("regions.csv"))?);
        registry.load_regions_csv(regions, "regions.csv")?;
        let tps_text = std::fs::read_to_string(dir.join("tps.csv"))?;
        let lines: Vec<(usize, &str)> = tps_text
            .lines()
            .enumerate()
            .skip(1)
            .filter(|(_, line)| !line.is_empty())
            .collect();
        // Checking a key costs a point decompression (~10 us); a national registry has 823,220 of them,
        // so parse on every core and insert in file order afterwards.
        let parsed: Vec<Result<Tps, RegistryError>> =
            crate::parallel::on_every_core(&lines, |part| {
                part.iter()
                    .map(|&(i, line)| parse_tps_line(i + 1, line))
                    .collect()
            });
        registry.tps.reserve(parsed.len());
        registry.tps_index.reserve(parsed.len());
        for tps in parsed {
            registry.add_tps_with_checked_keys(tps?)?;
        }
        if let Ok(text) = std::fs::read_to_string(dir.join("correctors.csv")) {
            for (number, line) in text
                .lines()
                .enumerate()
                .skip(1)
                .filter(|(_, l)| !l.is_empty())
            {
                let bad = |message: String| RegistryError::Line {
                    source: "correctors.csv".into(),
                    line: number + 1,
                    message,
                };
                let (code, key) = line
                    .split_once(',')
                    .ok_or_else(|| bad("expected kode,key".into()))?;
                let code = Code::parse(code).map_err(|e| bad(e.to_string()))?;
                let key = PublicKey::from_base64(key)
                    .map_err(|error| RegistryError::Key { code, error })?;
                registry.add_corrector(code, key)?;
            }
        }
        if let Ok(text) = std::fs::read_to_string(dir.join("recap_officers.csv")) {
            for (number, line) in text
                .lines()
                .enumerate()
                .skip(1)
                .filter(|(_, l)| !l.is_empty())
            {
                let bad = |message: String| RegistryError::Line {
                    source: "recap_officers.csv".into(),
                    line: number + 1,
                    message,
                };
                let (code, key) = line
                    .split_once(',')
                    .ok_or_else(|| bad("expected kode,key".into()))?;
                let region = if code == "nasional" {
                    None
                } else {
                    Some(Code::parse(code).map_err(|e| bad(e.to_string()))?)
                };
                let key = PublicKey::from_base64(key).map_err(|e| bad(e.to_string()))?;
                registry.add_recap_officer(region, key)?;
            }
        }
        if let Ok(text) = std::fs::read_to_string(dir.join("participants.csv")) {
            for (number, line) in text
                .lines()
                .enumerate()
                .skip(1)
                .filter(|(_, l)| !l.is_empty())
            {
                let bad = |message: String| RegistryError::Line {
                    source: "participants.csv".into(),
                    line: number + 1,
                    message,
                };
                let (participant, key) = line
                    .split_once(',')
                    .ok_or_else(|| bad("expected participant,key".into()))?;
                let key = PublicKey::from_base64(key).map_err(|e| bad(e.to_string()))?;
                registry
                    .add_participant(participant, key)
                    .map_err(|e| bad(e.to_string()))?;
            }
        }
        Ok(registry)
    }
}

/// One line of `tps.csv`, keys checked for enrolment.
fn parse_tps_line(number: usize, line: &str) -> Result<Tps, RegistryError> {
    let bad = |message: String| RegistryError::Line {
        source: "tps.csv".into(),
        line: number,
        message,
    };
    let mut fields = line.split(',');
    let (Some(code), Some(kind), Some(l), Some(p), Some(officers), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(bad("expected kode_tps,kind,dpt_l,dpt_p,officers".into()));
    };
    let code = Code::parse(code).map_err(|e| bad(e.to_string()))?;
    if code.level() != Level::Tps {
        return Err(bad(format!("{code} is not a 13-digit TPS code")));
    }
    let kind = TpsKind::parse(kind).ok_or_else(|| bad(format!("unknown TPS kind {kind:?}")))?;
    let dpt = match (l, p) {
        ("", "") => None,
        (l, p) => Some(Lp {
            l: l.parse().map_err(|_| bad(format!("bad dpt_l {l:?}")))?,
            p: p.parse().map_err(|_| bad(format!("bad dpt_p {p:?}")))?,
        }),
    };
    let officers = officers
        .split(';')
        .filter(|k| !k.is_empty())
        .map(|k| {
            let key =
                PublicKey::from_base64(k).map_err(|error| RegistryError::Key { code, error })?;
            key.check_enrollable()
                .map_err(|error| RegistryError::Key { code, error })?;
            Ok::<_, RegistryError>(key)
        })
        .collect::<Result<Vec<_>, _>>()?;
    if officers.len() > MAX_OFFICERS_PER_TPS {
        return Err(RegistryError::TooManyOfficers { code });
    }
    Ok(Tps {
        code,
        kind,
        dpt,
        officers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_regions_cover_the_country() {
        let registry = Registry::embedded_regions();
        assert_eq!(
            registry.region_count(Level::Provinsi),
            39,
            "38 provinces and Luar Negeri"
        );
        assert!(registry.region_count(Level::KabKota) >= 514);
        assert!(registry.region_count(Level::Desa) > 83_000);
        assert_eq!(
            registry.region_name(Code::parse("95").unwrap()),
            Some("Papua Pegunungan")
        );
        assert!(crate::code::is_noken(Code::parse("9501").unwrap()));
    }

    #[test]
    fn hierarchy_is_closed() {
        let mut registry = Registry::new();
        assert!(matches!(
            registry.add_region(Code::parse("1101").unwrap(), "x"),
            Err(RegistryError::UnknownParent { .. })
        ));
        registry
            .add_region(Code::parse("11").unwrap(), "Aceh")
            .unwrap();
        assert!(matches!(
            registry.add_region(Code::parse("11").unwrap(), "Aceh"),
            Err(RegistryError::Duplicate { .. })
        ));
        let tps = Tps {
            code: Code::parse("1101012001001").unwrap(),
            kind: TpsKind::Regular,
            dpt: None,
            officers: vec![],
        };
        assert!(matches!(
            registry.add_tps(tps),
            Err(RegistryError::UnknownParent { .. })
        ));
    }

    #[test]
    fn poll_witnesses_speak_only_where_and_for_whom_they_were_enrolled() {
        use crate::sign::SecretKey;
        let code = |c: &str| Code::parse(c).unwrap();
        let mut registry = Registry::new();
        for (c, name) in [
            ("11", "Aceh"),
            ("1101", "K"),
            ("110101", "C"),
            ("1101012001", "D1"),
            ("1101012002", "D2"),
        ] {
            registry.add_region(code(c), name).unwrap();
        }
        for tps in ["1101012001001", "1101012002001"] {
            registry
                .add_tps(Tps {
                    code: code(tps),
                    kind: TpsKind::Regular,
                    dpt: None,
                    officers: vec![],
                })
                .unwrap();
        }
        let key = |n: u8| SecretKey::from_seed([n; 32]).public();
        let (p01, p02, witness, other) = (key(1), key(2), key(3), key(4));
        registry.add_participant("01", p01).unwrap();
        registry.add_participant("02", p02).unwrap();
        let enrol = |participant: &str, who, scope: &[&str]| PollWitnessChange {
            participant: participant.into(),
            enrol: vec![(who, scope.iter().map(|c| code(c)).collect())],
            revoke: vec![],
        };
        // Signed by another participant's key, an unknown participant, an unknown scope: refused,
        // and nothing changes.
        assert_eq!(
            registry.change_poll_witnesses(&enrol("01", witness, &["1101012001"]), &p02, false),
            Err(PollWitnessError::NotParticipantKey)
        );
        assert!(matches!(
            registry.change_poll_witnesses(&enrol("03", witness, &["1101012001"]), &p01, false),
            Err(PollWitnessError::UnknownParticipant(_))
        ));
        let mut bad = enrol("01", witness, &["1101012001"]);
        bad.enrol.push((other, vec![code("1101019999")]));
        assert!(matches!(
            registry.change_poll_witnesses(&bad, &p01, false),
            Err(PollWitnessError::UnknownScope(_))
        ));
        assert!(registry.poll_witness(&witness).is_none(), "all or nothing");
        registry
            .change_poll_witnesses(&enrol("01", witness, &["1101012001"]), &p01, false)
            .unwrap();
        let tps1 = code("1101012001001");
        let tps2 = code("1101012002001");
        assert_eq!(
            registry.poll_witness_entitlement(&witness, "01", tps1),
            Ok(())
        );
        assert_eq!(
            registry.poll_witness_entitlement(&witness, "01", tps2),
            Err(CopyRefusal::OutOfScope)
        );
        assert_eq!(
            registry.poll_witness_entitlement(&witness, "02", tps1),
            Err(CopyRefusal::NotEnrolled)
        );
        assert_eq!(
            registry.poll_witness_entitlement(&other, "01", tps1),
            Err(CopyRefusal::NotEnrolled)
        );
        // One key speaks for one participant.
        assert!(matches!(
            registry.change_poll_witnesses(&enrol("02", witness, &["1101012002001"]), &p02, false),
            Err(PollWitnessError::OtherParticipant(_))
        ));
        // Re-enrolling widens the scope; a revoked key is refused, and never comes back.
        registry
            .change_poll_witnesses(&enrol("01", witness, &["1101012002001"]), &p01, false)
            .unwrap();
        assert_eq!(
            registry.poll_witness_entitlement(&witness, "01", tps2),
            Ok(())
        );
        let revoke = PollWitnessChange {
            participant: "01".into(),
            enrol: vec![],
            revoke: vec![witness],
        };
        registry
            .change_poll_witnesses(&revoke, &p01, false)
            .unwrap();
        assert_eq!(
            registry.poll_witness_entitlement(&witness, "01", tps1),
            Err(CopyRefusal::Revoked)
        );
        assert_eq!(
            registry.change_poll_witnesses(&enrol("01", witness, &["1101012001"]), &p01, false),
            Err(PollWitnessError::Revoked)
        );
        // A scope past the limit.
        let codes: Vec<String> = (1..=MAX_POLL_WITNESS_SCOPE + 1)
            .map(|n| format!("1101012001{n:03}"))
            .collect();
        for c in &codes {
            let _ = registry.add_tps(Tps {
                code: code(c),
                kind: TpsKind::Regular,
                dpt: None,
                officers: vec![],
            });
        }
        let refs: Vec<&str> = codes.iter().map(String::as_str).collect();
        assert_eq!(
            registry.change_poll_witnesses(&enrol("01", other, &refs), &p01, false),
            Err(PollWitnessError::ScopeTooLarge)
        );
    }
}
