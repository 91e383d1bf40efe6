//! `saksi gen`: a deterministic synthetic national election on the real region hierarchy, with faults
//! injected at known places and rates.
//!
//! Output directory:
//! - `forms.ndjson`: one signed form C.Hasil per line (plus injected duplicates);
//! - `registry/regions.csv`, `registry/tps.csv`: the registry it used (regions, TPS kinds, DPT, officer keys);
//! - `election.json`: the election definition;
//! - `truth.json`: the seed, the fault rates, and every injected fault with its line, TPS and the rule
//!   that must catch it.
//!
//! Officer keys are derived from the seed ([`officer_key`]), so anyone with the seed can sign as any
//! officer: generated elections are for demos and tests only.

pub mod copies;
pub mod photo;
pub mod recap;
pub mod rng;
pub mod tally;

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use saksi_election::code::{Code, Level, OVERSEAS_PROVINCE};
use saksi_election::form::{CHasil, Lpj};
use saksi_election::recap::Figures;
use saksi_election::registry::{Registry, RegistryError, TpsKind};
use saksi_election::rules::codes;
use saksi_election::rules::REGULAR_DPT_CAP;
use saksi_election::sign::SecretKey;
use saksi_election::Election;

use rng::Rng;

/// TPS in Pemilu 2024: 820,161 domestic + 3,059 overseas.
pub const NATIONAL_TPS: usize = 823_220;
pub const NATIONAL_OVERSEAS_TPS: usize = 3_059;
/// Largest election we generate: bounds memory and keeps every village under 900 regular TPS.
pub const MAX_TPS: usize = 2_000_000;
/// Default chance, per TPS, of each fault kind: 1 in 2,000, about 410 of each kind nationally.
pub const DEFAULT_FAULT_RATE: f64 = 0.0005;
/// TPS generated per unit of parallel work.
const BLOCK_TPS: usize = 8192;

/// Domestic TPS per province in KPU's 2024 list (facts, from `shared/data/wilayah/SUMMARY...`).
pub const DOMESTIC_TPS_BY_PROVINCE: [(u8, u32); 38] = [
    (11, 16046),
    (12, 45875),
    (13, 17569),
    (14, 19366),
    (15, 11160),
    (16, 25985),
    (17, 6210),
    (18, 25825),
    (19, 4116),
    (21, 5914),
    (31, 30766),
    (32, 140457),
    (33, 117299),
    (34, 11932),
    (35, 120666),
    (36, 33324),
    (51, 12809),
    (52, 16243),
    (53, 16746),
    (61, 17626),
    (62, 7830),
    (63, 13584),
    (64, 11441),
    (65, 2295),
    (71, 8240),
    (72, 9462),
    (73, 26357),
    (74, 8154),
    (75, 3539),
    (76, 4219),
    (81, 5622),
    (82, 4192),
    (91, 3109),
    (92, 1923),
    (93, 1770),
    (94, 4484),
    (95, 5850),
    (96, 2156),
];
/// Share of domestic TPS that are TPS lokasi khusus (1,822 of 820,161 in KPU's list).
const KHUSUS_SHARE: f64 = 1822.0 / 820_161.0;

#[derive(Clone, Debug)]
pub struct Config {
    pub tps: usize,
    pub seed: u64,
    /// Chance per TPS of each fault kind; 0 gives an election with no fault at all.
    pub fault_rate: f64,
    /// Also write the photos the forms' `evidence` names, under `photos/` in the evidence store's
    /// layout (`sha256/<2 hex>/<64 hex>`): about 5 KB per TPS.
    pub photos: bool,
    /// Chance per unwatched regular TPS (outside noken regions, no poll witness) of a forensic fault: a
    /// form that passes every rule but is wrong (20% of the valid votes switched from one pair to
    /// another, 20% more votes stuffed into one pair with the voter and ballot rows to match, or a
    /// neighbouring TPS's figures copied), listed in `truth.json` as `forensic_faults` for
    /// `saksi audit forensics` to find. 0: none.
    pub forensic_rate: f64,
}

/// A fault no rule can see, for the forensics to find.
#[derive(Clone, Debug, Serialize)]
pub struct ForensicFault {
    pub tps: String,
    /// `switching`: `moved` votes (20% of the valid votes) from pair `from` to pair `to`.
    /// `stuffing`: `moved` more voters (20% of them), all voting validly for `to`, written into the
    /// DPT voter rows and the ballot account so that every sum on the form still holds.
    /// `copied`: every figure but the registered voters copied from TPS `from` of the same desa.
    pub kind: &'static str,
    pub from: Option<String>,
    pub to: Option<String>,
    pub moved: i64,
}

/// The share of a TPS's votes a switching or stuffing fault moves: the "20% of a TPS's votes",
/// where forensics is asked to find at least half.
const FORENSIC_SHARE: f64 = 0.2;

impl Default for Config {
    fn default() -> Self {
        Config {
            tps: NATIONAL_TPS,
            seed: 2024,
            fault_rate: DEFAULT_FAULT_RATE,
            photos: false,
            forensic_rate: 0.0,
        }
    }
}

#[derive(Debug)]
pub enum GenError {
    Io(io::Error),
    Registry(RegistryError),
    Config(String),
}

impl fmt::Display for GenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GenError::Io(e) => write!(f, "{e}"),
            GenError::Registry(e) => write!(f, "registry: {e}"),
            GenError::Config(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for GenError {}

impl From<io::Error> for GenError {
    fn from(e: io::Error) -> Self {
        GenError::Io(e)
    }
}

impl From<RegistryError> for GenError {
    fn from(e: RegistryError) -> Self {
        GenError::Registry(e)
    }
}

/// The faults the generator injects, each caught by one rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// OCR-style misread of a digit 3 as 8 in a pair's votes.
    Misread3To8,
    /// A digit 2 read as 7.
    Misread2To7,
    /// A digit added: 85 -> 855.
    ExtraDigit,
    /// A form whose own arithmetic does not add up.
    BrokenArithmetic,
    /// A regular TPS claiming more than 300 registered voters.
    DptOverCap,
    /// The same signed form submitted twice.
    Duplicate,
    /// A signature that is not the named officer's.
    ForgedSignature,
    /// A valid signature by an officer enrolled for a different TPS.
    WrongOfficer,
}

impl FaultKind {
    pub const ALL: [FaultKind; 8] = [
        FaultKind::Misread3To8,
        FaultKind::Misread2To7,
        FaultKind::ExtraDigit,
        FaultKind::BrokenArithmetic,
        FaultKind::DptOverCap,
        FaultKind::Duplicate,
        FaultKind::ForgedSignature,
        FaultKind::WrongOfficer,
    ];
}

#[derive(Clone, Debug, Serialize)]
pub struct Fault {
    /// 1-based line of `forms.ndjson` holding the faulty form.
    pub line: usize,
    pub tps: String,
    pub kind: FaultKind,
    /// The rule code that must reject it.
    pub rule: &'static str,
    pub detail: String,
}

#[derive(Debug, Serialize)]
pub struct Truth {
    pub generator: &'static str,
    pub seed: u64,
    pub tps: usize,
    pub domestic_tps: usize,
    pub overseas_tps: usize,
    pub forms_lines: usize,
    /// Chance per TPS of each fault kind.
    pub fault_rate: f64,
    pub fault_counts: BTreeMap<FaultKind, usize>,
    /// Forms that should be accepted: every TPS whose form carries no fault.
    pub honest_forms: usize,
    /// How officer keys derive from the seed.
    pub officer_key_derivation: &'static str,
    pub faults: Vec<Fault>,
    /// Chance per regular TPS of a forensic fault, and every one injected (forms that pass the rules).
    pub forensic_rate: f64,
    pub forensic_faults: Vec<ForensicFault>,
    /// Every inflation injected into the recapitulation forms (`recap.ndjson`).
    pub recap_inflation: Vec<recap::Inflation>,
    /// Poll witnesses, their copies (`copies.ndjson`), and every disagreement injected.
    #[serde(flatten)]
    pub copies: copies::CopyTruth,
}

/// The officer enrolled for a generated TPS: Ed25519 seed = SHA-256("saksi-gen/officer/v1\n" ||
/// seed as 8 little-endian bytes || TPS code in decimal).
pub fn officer_key(seed: u64, tps: Code) -> SecretKey {
    derived_key(b"saksi-gen/officer/v1\n", seed, tps)
}

/// The correction key of a generated kabupaten/kota's KPU: like [`officer_key`] with purpose
/// "saksi-gen/corrector/v1\n" and the region's code.
pub fn corrector_key(seed: u64, region: Code) -> SecretKey {
    derived_key(b"saksi-gen/corrector/v1\n", seed, region)
}

fn derived_key(purpose: &[u8], seed: u64, tps: Code) -> SecretKey {
    let mut hasher = Sha256::new();
    hasher.update(purpose);
    hasher.update(seed.to_le_bytes());
    hasher.update(tps.to_string().as_bytes());
    SecretKey::from_seed(hasher.finalize().into())
}

/// Where each TPS goes: `(code, kind)` in code order.
pub fn plan_tps(regions: &Registry, config: &Config) -> Result<Vec<(Code, TpsKind)>, GenError> {
    if config.tps == 0 || config.tps > MAX_TPS {
        return Err(GenError::Config(format!(
            "--tps must be between 1 and {MAX_TPS}"
        )));
    }
    let overseas =
        ((config.tps as f64) * NATIONAL_OVERSEAS_TPS as f64 / NATIONAL_TPS as f64).round() as usize;
    let domestic = config.tps - overseas;
    let province_weights: Vec<f64> = DOMESTIC_TPS_BY_PROVINCE
        .iter()
        .map(|&(_, n)| n as f64)
        .collect();
    let per_province = tally::apportion(domestic as i64, &province_weights);

    let mut villages_by_province: BTreeMap<u8, Vec<Code>> = BTreeMap::new();
    for (code, _) in regions.regions_at(Level::Desa) {
        villages_by_province
            .entry(code.province())
            .or_default()
            .push(code);
    }
    let mut planned = Vec::with_capacity(config.tps);
    for (&(province, _), &count) in DOMESTIC_TPS_BY_PROVINCE.iter().zip(&per_province) {
        let villages = villages_by_province
            .get(&province)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        if villages.is_empty() && count > 0 {
            return Err(GenError::Config(format!(
                "province {province} has no villages in the registry"
            )));
        }
        for (village, n) in spread(config.seed, villages, count as usize) {
            let mut rng = Rng::new(config.seed, village.as_u64(), 3);
            let khusus = (0..n).filter(|_| rng.unit() < KHUSUS_SHARE).count();
            for number in 1..=(n - khusus) {
                planned.push((tps_code(village, number as u64)?, TpsKind::Regular));
            }
            for number in 0..khusus {
                planned.push((tps_code(village, 901 + number as u64)?, TpsKind::Khusus));
            }
        }
    }
    let cities = villages_by_province
        .get(&OVERSEAS_PROVINCE)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if cities.is_empty() && overseas > 0 {
        return Err(GenError::Config("no overseas units in the registry".into()));
    }
    for (city, n) in spread(config.seed, cities, overseas) {
        let mut rng = Rng::new(config.seed, city.as_u64(), 4);
        for number in 1..=n {
            let roll = rng.unit();
            let kind = if roll < 0.35 {
                TpsKind::Tpsln
            } else if roll < 0.8 {
                TpsKind::Ksk
            } else {
                TpsKind::Pos
            };
            planned.push((tps_code(city, number as u64)?, kind));
        }
    }
    planned.sort_by_key(|(code, _)| *code);
    Ok(planned)
}

fn tps_code(village: Code, number: u64) -> Result<Code, GenError> {
    if number > 999 {
        return Err(GenError::Config(format!(
            "village {village} would need more than 999 TPS"
        )));
    }
    Code::tps(village, number as u16)
        .ok_or_else(|| GenError::Config(format!("no TPS {number} in {village}")))
}

/// Splits `count` TPS over `villages` by random weights: every village gets one when there are enough.
fn spread(seed: u64, villages: &[Code], count: usize) -> Vec<(Code, usize)> {
    if villages.is_empty() || count == 0 {
        return Vec::new();
    }
    if count < villages.len() {
        // Fewer TPS than villages: pick `count` villages spread over the list.
        return (0..count)
            .map(|i| (villages[i * villages.len() / count], 1))
            .collect();
    }
    let weights: Vec<f64> = villages
        .iter()
        .map(|v| (0.7 * Rng::new(seed, v.as_u64(), 5).normal()).exp())
        .collect();
    let extra = tally::apportion((count - villages.len()) as i64, &weights);
    villages
        .iter()
        .zip(extra)
        .map(|(&v, e)| (v, 1 + e as usize))
        .collect()
}

struct BlockOut {
    forms: Vec<u8>,
    tps_csv: Vec<u8>,
    /// (line within block, 0-based; fault)
    faults: Vec<(usize, Fault)>,
    lines: usize,
    /// Each TPS's true figures, and whether its form will be counted (no fault other than a duplicate).
    honest: Vec<(Code, Figures, bool)>,
    /// With `Config::photos`: (path under `photos/`, PNG bytes).
    photos: Vec<(String, Vec<u8>)>,
    forensic: Vec<ForensicFault>,
}

/// Decides whether a TPS gets a fault, and which.
fn pick_fault(config: &Config, code: Code) -> Option<FaultKind> {
    let roll = Rng::new(config.seed, code.as_u64(), 6).unit();
    let index = (roll / config.fault_rate.max(f64::MIN_POSITIVE)) as usize;
    FaultKind::ALL.get(index).copied()
}

/// Moves 20% of the valid votes from the largest other pair to a random pair: every rule still holds.
fn switch_votes(config: &Config, form: &mut CHasil) -> Option<ForensicFault> {
    let pairs = form.votes.len();
    if pairs < 2 {
        return None;
    }
    let mut rng = Rng::new(config.seed, form.tps.as_u64(), 9);
    let to = rng.range(0, pairs as i64 - 1) as usize;
    let from = (0..pairs)
        .filter(|&j| j != to)
        .max_by_key(|&j| form.votes[j].1)?;
    let moved = ((form.valid as f64) * FORENSIC_SHARE).round() as i64;
    let moved = moved.min(form.votes[from].1);
    if moved <= 0 {
        return None;
    }
    form.votes[from].1 -= moved;
    form.votes[to].1 += moved;
    Some(ForensicFault {
        tps: form.tps.to_string(),
        kind: "switching",
        from: Some(form.votes[from].0.clone()),
        to: Some(form.votes[to].0.clone()),
        moved,
    })
}

/// Adds 20% more voters, all valid votes for one random pair, as a careful stuffer would: into the
/// DPT voter rows (as registered voters who did not come) and out of the unused ballots, so every sum
/// and cap on the form still holds. `None` where the TPS has no such room (turnout already near full).
fn stuff_votes(config: &Config, form: &mut CHasil) -> Option<ForensicFault> {
    let pairs = form.votes.len();
    let extra = ((form.voted.total.j as f64) * FORENSIC_SHARE).round() as i64;
    let room_l = form.registered.dpt.l - form.voted.dpt.l;
    let room_p = form.registered.dpt.p - form.voted.dpt.p;
    if pairs == 0 || extra <= 0 || extra > room_l + room_p || extra > form.ballots.unused {
        return None;
    }
    let to = Rng::new(config.seed, form.tps.as_u64(), 9).range(0, pairs as i64 - 1) as usize;
    let into_l = extra.min(room_l);
    for rows in [&mut form.voted.dpt, &mut form.voted.total] {
        rows.l += into_l;
        rows.p += extra - into_l;
        rows.j += extra;
    }
    form.ballots.used += extra;
    form.ballots.unused -= extra;
    form.valid += extra;
    form.total += extra;
    form.votes[to].1 += extra;
    Some(ForensicFault {
        tps: form.tps.to_string(),
        kind: "stuffing",
        from: None,
        to: Some(form.votes[to].0.clone()),
        moved: extra,
    })
}

/// Copies every figure of `source` (another TPS of the same desa) but the registered DPT and the
/// ballots received, which the registry fixes: the copy a lazy or dishonest officer would write.
/// `None` where the source's voters do not fit this TPS's DPT or ballots.
fn copy_figures(form: &mut CHasil, source: &CHasil) -> Option<ForensicFault> {
    let (voted, dpt) = (&source.voted.dpt, &form.registered.dpt);
    let ballots_left = form.ballots.received - source.ballots.used - source.ballots.damaged;
    if voted.l > dpt.l
        || voted.p > dpt.p
        || form.disability.voted.j > source.voted.total.j
        || ballots_left < 0
    {
        return None;
    }
    // DPTb and DPK registrations come with their voters (people who moved in or came with an ID card).
    form.registered.dptb = source.registered.dptb;
    form.registered.dpk = source.registered.dpk;
    let rows = [
        form.registered.dpt,
        form.registered.dptb,
        form.registered.dpk,
    ];
    form.registered.total = Lpj {
        l: rows.iter().map(|r| r.l).sum(),
        p: rows.iter().map(|r| r.p).sum(),
        j: rows.iter().map(|r| r.j).sum(),
    };
    form.voted = source.voted;
    form.ballots.used = source.ballots.used;
    form.ballots.damaged = source.ballots.damaged;
    form.ballots.unused = ballots_left;
    form.votes = source.votes.clone();
    form.valid = source.valid;
    form.invalid = source.invalid;
    form.total = source.total;
    Some(ForensicFault {
        tps: form.tps.to_string(),
        kind: "copied",
        from: Some(source.tps.to_string()),
        to: None,
        moved: 0,
    })
}

/// Replaces the first occurrence of digit `from` in `value` with `to`; `None` if there is none.
pub(crate) fn misread(value: i64, from: u8, to: u8) -> Option<i64> {
    let text = value.to_string();
    let at = text.bytes().position(|b| b == b'0' + from)?;
    let mut bytes = text.into_bytes();
    bytes[at] = b'0' + to;
    String::from_utf8(bytes).ok()?.parse().ok()
}

fn generate_block(config: &Config, block: &[(Code, TpsKind)]) -> BlockOut {
    let mut out = BlockOut {
        forms: Vec::with_capacity(block.len() * 1100),
        tps_csv: Vec::new(),
        faults: Vec::new(),
        lines: 0,
        honest: Vec::with_capacity(block.len()),
        photos: Vec::new(),
        forensic: Vec::new(),
    };
    // The form just before, for the copied fault.
    let mut previous: Option<CHasil> = None;
    for &(code, kind) in block {
        if config.photos {
            for page in 1..=photo::PAGES {
                let png = photo::photo_png(config.seed, code, page);
                let hex = saksi_election::form::hex(&saksi_election::form::PhotoDigest::of(&png).0);
                out.photos
                    .push((format!("sha256/{}/{hex}", &hex[..2]), png));
            }
        }
        let key = officer_key(config.seed, code);
        let dpt = tally::draw_dpt(config.seed, code, kind);
        writeln!(
            out.tps_csv,
            "{code},{},{},{},{}",
            kind.as_str(),
            dpt.l,
            dpt.p,
            key.public().to_base64()
        )
        .expect("writing to a Vec cannot fail");
        let mut form = tally::honest_form(config.seed, code, kind, dpt, key.public());
        let fault = pick_fault(config, code);
        if fault.is_none() {
            // Inflation only the poll witnesses' copies can show: the form's arithmetic holds.
            let copy_fault = copies::copy_fault(config, code);
            if let Some((copies::CopyFault::OfficialRaised, pair)) = copy_fault {
                copies::raise_official(config, &mut form, pair);
            } else if config.forensic_rate > 0.0
                && kind == TpsKind::Regular
                && !saksi_election::code::is_noken(code)
                // Only where no poll witness watches: a witness's honest copy would show the switch
                // (that is `official_raised`'s job), and these faults are for the statistics alone.
                && (0..copies::PARTICIPANTS.len()).all(|p| !copies::covers(config.seed, p, code))
                && Rng::new(config.seed, code.as_u64(), 8).unit() < config.forensic_rate
            {
                // One kind in three each; the copied kind needs an honest neighbour of the same desa
                // just before this TPS in the block.
                let fault = match Rng::new(config.seed, code.as_u64(), 10).range(0, 2) {
                    0 => switch_votes(config, &mut form),
                    1 => stuff_votes(config, &mut form),
                    _ => previous
                        .as_ref()
                        .filter(|source: &&CHasil| {
                            source.tps.ancestor(Level::Desa) == code.ancestor(Level::Desa)
                        })
                        .and_then(|source| copy_figures(&mut form, source)),
                };
                out.forensic.extend(fault);
            }
        }
        if config.forensic_rate > 0.0 {
            // Only a form that will be counted is worth copying: a copy of a rejected form has no twin.
            previous = fault.is_none().then(|| form.clone());
        }
        let figures = Figures {
            votes: form.votes.clone(),
            valid: form.valid,
            invalid: form.invalid,
            voters: form.voted.total.j,
        };
        let mut rng = Rng::new(config.seed, code.as_u64(), 7);
        let record = |kind: FaultKind, rule: &'static str, detail: String, line: usize| {
            Some((
                line,
                Fault {
                    line: 0,
                    tps: code.to_string(),
                    kind,
                    rule,
                    detail,
                },
            ))
        };
        let line = out.lines;
        let mut injected = None;
        let mut signer = None;
        let mut flip_signature = false;
        match fault {
            Some(
                kind @ (FaultKind::Misread3To8 | FaultKind::Misread2To7 | FaultKind::ExtraDigit),
            ) => {
                let position = rng.range(0, 2) as usize;
                let (name, votes) = form.votes[position].clone();
                let changed = match kind {
                    FaultKind::Misread3To8 => misread(votes, 3, 8),
                    FaultKind::Misread2To7 => misread(votes, 2, 7),
                    _ => (votes > 0).then(|| votes * 10 + rng.range(0, 9)),
                };
                if let Some(changed) = changed {
                    form.votes[position].1 = changed;
                    injected = record(
                        kind,
                        codes::VOTES_SUM,
                        format!("votes.{name}: {votes} -> {changed}"),
                        line,
                    );
                }
            }
            Some(FaultKind::BrokenArithmetic) => {
                let (rule, detail) = match rng.range(0, 3) {
                    0 => {
                        form.voted.dpt.l += 1;
                        (codes::LP_SUM, "voted.dpt.l + 1")
                    }
                    1 => {
                        form.total += rng.range(1, 5);
                        (codes::VOTES_TOTAL, "total raised")
                    }
                    2 => {
                        form.ballots.unused += rng.range(1, 9);
                        (codes::BALLOTS_BALANCE, "ballots.unused raised")
                    }
                    _ => {
                        form.voted.total.l += 1;
                        form.voted.total.j += 1;
                        (codes::VOTED_SUM, "voted.total raised by one")
                    }
                };
                injected = record(FaultKind::BrokenArithmetic, rule, detail.into(), line);
            }
            Some(FaultKind::DptOverCap) if kind == TpsKind::Regular => {
                let claimed = rng.range(REGULAR_DPT_CAP + 1, REGULAR_DPT_CAP + 60);
                let extra = claimed - form.registered.dpt.j;
                form.registered.dpt.l += extra;
                form.registered.dpt.j += extra;
                form.registered.total.l += extra;
                form.registered.total.j += extra;
                injected = record(
                    FaultKind::DptOverCap,
                    codes::DPT_CAP,
                    format!("A.1 J = {claimed}"),
                    line,
                );
            }
            Some(FaultKind::ForgedSignature) => {
                if rng.unit() < 0.5 {
                    flip_signature = true;
                    injected = record(
                        FaultKind::ForgedSignature,
                        codes::SIGNATURE_INVALID,
                        "a bit of the signature flipped".into(),
                        line,
                    );
                } else {
                    signer = Some(derived_key(b"saksi-gen/forger/v1\n", config.seed, code));
                    injected = record(
                        FaultKind::ForgedSignature,
                        codes::SIGNATURE_INVALID,
                        "signed by a key that is not the named signer's".into(),
                        line,
                    );
                }
            }
            Some(FaultKind::WrongOfficer) => {
                // The officer of the next TPS number in the same village (it may not exist; its key is
                // still some other TPS's officer key in the same derivation).
                let other = Code::tps(
                    code.parent().expect("a TPS has a desa"),
                    code.tps_number().unwrap_or(1) % 999 + 1,
                )
                .unwrap_or(code);
                if other != code {
                    let other_key = officer_key(config.seed, other);
                    form.signer = other_key.public();
                    signer = Some(other_key);
                    injected = record(
                        FaultKind::WrongOfficer,
                        codes::SIGNER_NOT_ENROLLED,
                        format!("signed by the officer of {other}"),
                        line,
                    );
                }
            }
            _ => {}
        }
        let signing_key = signer.as_ref().unwrap_or(&key);
        let mut signed = form.sign(signing_key);
        if flip_signature {
            let bit = rng.range(0, 255) as usize;
            signed.signature.0[bit / 8] ^= 1 << (bit % 8);
        }
        let encoded = signed.encode();
        out.forms.extend_from_slice(&encoded);
        out.forms.push(b'\n');
        out.lines += 1;
        if fault == Some(FaultKind::Duplicate) {
            out.forms.extend_from_slice(&encoded);
            out.forms.push(b'\n');
            injected = record(
                FaultKind::Duplicate,
                codes::DUPLICATE,
                format!("copy of line {}", line + 1),
                out.lines,
            );
            out.lines += 1;
        }
        let counted = injected
            .as_ref()
            .is_none_or(|(_, f)| f.kind == FaultKind::Duplicate);
        out.honest.push((code, figures, counted));
        out.faults.extend(injected);
    }
    out
}

pub struct Summary {
    pub truth: Truth,
}

/// Generates an election into `dir`. `progress` is called with the number of TPS done so far.
pub fn generate(
    config: &Config,
    dir: &Path,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Summary, GenError> {
    if !(0.0..=1.0 / FaultKind::ALL.len() as f64).contains(&config.fault_rate) {
        return Err(GenError::Config(format!(
            "fault rate must be between 0 and 1/{}",
            FaultKind::ALL.len()
        )));
    }
    let mut regions = Registry::embedded_regions();
    let planned = plan_tps(&regions, config)?;
    // One corrector key per kabupaten/kota commission; one recapitulation key per committee.
    let kabkota: Vec<Code> = regions
        .regions_at(Level::KabKota)
        .map(|(code, _)| code)
        .collect();
    for code in kabkota {
        regions.add_corrector(code, corrector_key(config.seed, code).public())?;
    }
    let committees: Vec<Code> = regions
        .regions()
        .map(|(code, _)| code)
        .filter(|c| {
            matches!(
                c.level(),
                Level::Kecamatan | Level::KabKota | Level::Provinsi
            )
        })
        .collect();
    for code in committees {
        regions.add_recap_officer(
            Some(code),
            recap::recap_officer_key(config.seed, Some(code)).public(),
        )?;
    }
    regions.add_recap_officer(None, recap::recap_officer_key(config.seed, None).public())?;
    for participant in copies::PARTICIPANTS {
        regions.add_participant(
            participant,
            copies::participant_key(config.seed, participant).public(),
        )?;
    }
    // Regions first (this also writes an empty tps.csv); TPS lines then stream out with the forms, in
    // the same order, replacing it.
    regions.write_dir(&dir.join("registry"))?;
    let mut tps_csv = io::BufWriter::new(std::fs::File::create(dir.join("registry/tps.csv"))?);
    writeln!(tps_csv, "kode_tps,kind,dpt_l,dpt_p,officers")?;
    let mut forms =
        io::BufWriter::with_capacity(1 << 22, std::fs::File::create(dir.join("forms.ndjson"))?);

    let blocks: Vec<&[(Code, TpsKind)]> = planned.chunks(BLOCK_TPS).collect();
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(blocks.len().max(1));
    let (sender, receiver) = mpsc::sync_channel::<(usize, BlockOut)>(workers * 2);
    let mut forensic_faults = Vec::new();
    let mut faults = Vec::new();
    let mut honest: Vec<(Code, Figures, bool)> = Vec::with_capacity(planned.len());
    let mut lines = 0usize;
    let mut done = 0usize;
    std::thread::scope(|scope| -> Result<(), GenError> {
        for _ in 0..workers {
            let sender = sender.clone();
            let (next, blocks) = (&next, &blocks);
            scope.spawn(move || loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(block) = blocks.get(index) else {
                    break;
                };
                if sender.send((index, generate_block(config, block))).is_err() {
                    break;
                }
            });
        }
        drop(sender);
        // Write blocks in order; hold early arrivals (at most ~2 per worker) until their turn.
        let mut pending: BTreeMap<usize, BlockOut> = BTreeMap::new();
        let mut want = 0;
        for (index, block) in receiver {
            pending.insert(index, block);
            while let Some(block) = pending.remove(&want) {
                forms.write_all(&block.forms)?;
                for (path, png) in &block.photos {
                    let path = dir.join("photos").join(path);
                    std::fs::create_dir_all(path.parent().expect("a photo path has a parent"))?;
                    std::fs::write(path, png)?;
                }
                tps_csv.write_all(&block.tps_csv)?;
                for (local, mut fault) in block.faults {
                    fault.line = lines + local + 1;
                    faults.push(fault);
                }
                lines += block.lines;
                honest.extend(block.honest);
                forensic_faults.extend(block.forensic);
                done += blocks[want].len();
                progress(done, planned.len());
                want += 1;
            }
        }
        Ok(())
    })?;
    forms.flush()?;
    tps_csv.flush()?;

    let mut fault_counts: BTreeMap<FaultKind, usize> =
        FaultKind::ALL.iter().map(|&k| (k, 0)).collect();
    for fault in &faults {
        *fault_counts
            .get_mut(&fault.kind)
            .expect("all kinds present") += 1;
    }
    let recap_inflation = recap::write_recaps(config, dir, &regions, &honest)?;
    let copies = copies::write_copies(config, dir, &planned, &honest)?;
    let overseas = planned
        .iter()
        .filter(|(_, kind)| kind.is_overseas())
        .count();
    let duplicates = fault_counts[&FaultKind::Duplicate];
    let truth = Truth {
        generator: concat!("saksi-gen ", env!("CARGO_PKG_VERSION")),
        seed: config.seed,
        tps: planned.len(),
        domestic_tps: planned.len() - overseas,
        overseas_tps: overseas,
        forms_lines: lines,
        fault_rate: config.fault_rate,
        // A duplicated form is honest (its first copy counts); every other fault spoils its TPS's form.
        honest_forms: planned.len() - (faults.len() - duplicates),
        fault_counts,
        officer_key_derivation: "Ed25519 seed = SHA-256(\"saksi-gen/officer/v1\\n\" || seed (u64 little-endian) || TPS code)",
        faults,
        forensic_rate: config.forensic_rate,
        forensic_faults,
        recap_inflation,
        copies,
    };
    std::fs::write(
        dir.join("truth.json"),
        serde_json::to_vec_pretty(&truth).map_err(io::Error::other)?,
    )?;
    std::fs::write(
        dir.join("election.json"),
        serde_json::to_vec_pretty(&Election::pemilu_2024()).map_err(io::Error::other)?,
    )?;
    Ok(Summary { truth })
}

/// Helpers for tests and other crates: the registry a generated directory describes.
pub fn load_registry(dir: &Path) -> Result<Registry, GenError> {
    Ok(Registry::load_dir(&dir.join("registry"))?)
}
