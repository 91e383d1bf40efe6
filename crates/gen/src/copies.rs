//! Poll witnesses and their copies (salinan) for a generated election.
//!
//! Each participant (pairs 01, 02, 03) has a key (enrolled by the authority in the registry) and a
//! poll witness per kelurahan/desa where it watches at least one TPS; it watches a TPS with chance
//! [`COPY_SHARE`], keyed by the seed and the TPS. A watched TPS gets a copy from that participant's
//! witness, the figures the witness received. Injected disagreements (each listed in `truth.json`):
//! - [`CopyFault::OfficialRaised`]: the official form raises a pair's votes (valid up and invalid
//!   down by as much, so the form's own arithmetic still holds): only the copies show it;
//! - [`CopyFault::CopyMisread`]: one copy has a digit of a pair's votes wrong;
//! - [`CopyFault::CopyWrongTps`]: a witness writes a neighbouring TPS's code (in its own desa, so it
//!   is entitled) on its own TPS's figures.
//!
//! Outputs: `poll-witnesses.csv` (`participant,key,scope`) and `copies.ndjson` (signed copies). Keys
//! derive from the seed like officers' ([`participant_key`], [`poll_witness_key`]).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use saksi_election::code::{Code, Level};
use saksi_election::copy::WitnessCopy;
use saksi_election::recap::Figures;
use saksi_election::registry::TpsKind;
use saksi_election::sign::SecretKey;

use crate::rng::Rng;
use crate::{tally, Config};

/// The participants: the 2024 presidential contest's three pairs, by ballot position.
pub const PARTICIPANTS: [&str; 3] = ["01", "02", "03"];
/// Chance that a participant's poll witness sends a copy for a TPS.
pub const COPY_SHARE: f64 = 0.1;
/// Chance per copy (per TPS for `OfficialRaised`) of each injected disagreement, relative to the
/// configured fault rate, capped.
const COPY_FAULT_FACTOR: f64 = 10.0;
const MAX_COPY_FAULT_RATE: f64 = 0.05;

const PURPOSE_COVER: u64 = 31;
const PURPOSE_COPY_FAULT: u64 = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CopyFault {
    OfficialRaised,
    CopyMisread,
    CopyWrongTps,
}

/// One injected disagreement: the TPS a copy names, whose copy, and the fields that differ from the
/// official result.
#[derive(Clone, Debug, Serialize)]
pub struct CopyDisagreement {
    pub tps: String,
    pub participant: String,
    pub fields: Vec<String>,
    pub kind: CopyFault,
}

#[derive(Debug, Default, Serialize)]
pub struct CopyTruth {
    pub participants: Vec<String>,
    pub participant_key_derivation: &'static str,
    pub poll_witness_key_derivation: &'static str,
    pub poll_witnesses: usize,
    pub copies_lines: usize,
    /// Copies for TPS whose official form is not counted (rejected or refused): only witnesses speak.
    pub copies_without_official: usize,
    pub copy_disagreements: Vec<CopyDisagreement>,
}

/// A participant's key: Ed25519 seed = SHA-256("saksi-gen/participant/v1\n" || seed (u64 LE) ||
/// participant).
pub fn participant_key(seed: u64, participant: &str) -> SecretKey {
    let mut hasher = Sha256::new();
    hasher.update(b"saksi-gen/participant/v1\n");
    hasher.update(seed.to_le_bytes());
    hasher.update(participant.as_bytes());
    SecretKey::from_seed(hasher.finalize().into())
}

/// A participant's poll witness for a kelurahan/desa: SHA-256("saksi-gen/poll-witness/v1\n" ||
/// seed (u64 LE) || participant || "/" || desa code).
pub fn poll_witness_key(seed: u64, participant: &str, desa: Code) -> SecretKey {
    let mut hasher = Sha256::new();
    hasher.update(b"saksi-gen/poll-witness/v1\n");
    hasher.update(seed.to_le_bytes());
    hasher.update(participant.as_bytes());
    hasher.update(b"/");
    hasher.update(desa.as_str().as_bytes());
    SecretKey::from_seed(hasher.finalize().into())
}

/// Whether participant `p` (index into [`PARTICIPANTS`]) has a copy of this TPS.
pub fn covers(seed: u64, p: usize, tps: Code) -> bool {
    Rng::new(seed, tps.as_u64(), PURPOSE_COVER + 100 * p as u64).unit() < COPY_SHARE
}

fn copy_fault_rate(config: &Config) -> f64 {
    (config.fault_rate * COPY_FAULT_FACTOR).min(MAX_COPY_FAULT_RATE)
}

/// The disagreement injected at a TPS, if any, and the participant whose copy carries it (for
/// `OfficialRaised`: the pair whose votes are raised). Only at TPS some participant covers.
pub fn copy_fault(config: &Config, tps: Code) -> Option<(CopyFault, usize)> {
    let watchers: Vec<usize> = (0..PARTICIPANTS.len())
        .filter(|&p| covers(config.seed, p, tps))
        .collect();
    if watchers.is_empty() {
        return None;
    }
    let mut rng = Rng::new(config.seed, tps.as_u64(), PURPOSE_COPY_FAULT);
    let rate = copy_fault_rate(config);
    let roll = rng.unit();
    let kind = if roll < rate {
        CopyFault::OfficialRaised
    } else if roll < 2.0 * rate {
        CopyFault::CopyMisread
    } else if roll < 3.0 * rate {
        CopyFault::CopyWrongTps
    } else {
        return None;
    };
    let who = match kind {
        CopyFault::OfficialRaised => rng.range(0, PARTICIPANTS.len() as i64 - 1) as usize,
        _ => watchers[rng.range(0, watchers.len() as i64 - 1) as usize],
    };
    Some((kind, who))
}

/// Raises a pair's votes on the official form (valid up, invalid down by as much): returns whether
/// it could (a form with no invalid ballots cannot be raised this way and stays honest).
pub fn raise_official(config: &Config, form: &mut saksi_election::CHasil, pair: usize) -> bool {
    let mut rng = Rng::new(config.seed, form.tps.as_u64(), PURPOSE_COPY_FAULT + 1);
    if form.invalid < 1 || pair >= form.votes.len() {
        return false;
    }
    let by = rng.range(1, form.invalid.min(25));
    form.votes[pair].1 += by;
    form.valid += by;
    form.invalid -= by;
    true
}

/// The fields where a copy's figures differ from the official result's: each pair's votes, valid,
/// invalid, voters (what the tallies carry).
pub fn differing_fields(official: &Figures, copy: &Figures) -> Vec<String> {
    let mut out = Vec::new();
    for (position, votes) in &official.votes {
        let theirs = copy
            .votes
            .iter()
            .find(|(p, _)| p == position)
            .map_or(0, |(_, v)| *v);
        if theirs != *votes {
            out.push(format!("votes.{position}"));
        }
    }
    for (name, a, b) in [
        ("valid", official.valid, copy.valid),
        ("invalid", official.invalid, copy.invalid),
        ("voters", official.voters, copy.voters),
    ] {
        if a != b {
            out.push(name.to_string());
        }
    }
    out
}

fn figures_of(form: &saksi_election::CHasil) -> Figures {
    Figures {
        votes: form.votes.clone(),
        valid: form.valid,
        invalid: form.invalid,
        voters: form.voted.total.j,
    }
}

struct ChunkOut {
    copies: Vec<u8>,
    lines: usize,
    without_official: usize,
    disagreements: Vec<CopyDisagreement>,
    /// (participant index, desa) of every witness that sent a copy.
    witnesses: Vec<(usize, Code)>,
}

/// Writes `poll-witnesses.csv` and `copies.ndjson` for the TPS of `planned`, whose official results
/// are `official` (same order: figures as the official form says, and whether it is counted).
pub fn write_copies(
    config: &Config,
    dir: &Path,
    planned: &[(Code, TpsKind)],
    official: &[(Code, Figures, bool)],
) -> io::Result<CopyTruth> {
    assert_eq!(planned.len(), official.len(), "one official result per TPS");
    // Chunks end at a desa boundary, so a wrong-TPS neighbour is always in the same chunk.
    let mut bounds = vec![0];
    let target = 8192;
    let mut start = 0;
    while start < planned.len() {
        let mut end = (start + target).min(planned.len());
        while end < planned.len() && planned[end].0.parent() == planned[end - 1].0.parent() {
            end += 1;
        }
        bounds.push(end);
        start = end;
    }
    let chunks: Vec<(usize, usize)> = bounds.windows(2).map(|w| (w[0], w[1])).collect();
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<Option<ChunkOut>> = (0..chunks.len()).map(|_| None).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let (next, chunks) = (&next, &chunks);
                scope.spawn(move || {
                    let mut done = Vec::new();
                    loop {
                        let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(&(from, to)) = chunks.get(n) else {
                            break;
                        };
                        done.push((n, copies_of(config, planned, official, from, to)));
                    }
                    done
                })
            })
            .collect();
        for handle in handles {
            for (n, out) in handle.join().expect("a copy worker panicked") {
                results[n] = Some(out);
            }
        }
    });
    let mut truth = CopyTruth {
        participants: PARTICIPANTS.iter().map(|p| p.to_string()).collect(),
        participant_key_derivation: "Ed25519 seed = SHA-256(\"saksi-gen/participant/v1\\n\" || seed (u64 little-endian) || participant)",
        poll_witness_key_derivation: "Ed25519 seed = SHA-256(\"saksi-gen/poll-witness/v1\\n\" || seed (u64 little-endian) || participant || \"/\" || desa code)",
        ..Default::default()
    };
    let mut copies =
        io::BufWriter::with_capacity(1 << 22, std::fs::File::create(dir.join("copies.ndjson"))?);
    let mut witnesses: BTreeMap<(usize, Code), ()> = BTreeMap::new();
    for out in results.into_iter().flatten() {
        copies.write_all(&out.copies)?;
        truth.copies_lines += out.lines;
        truth.copies_without_official += out.without_official;
        truth.copy_disagreements.extend(out.disagreements);
        witnesses.extend(out.witnesses.into_iter().map(|w| (w, ())));
    }
    copies.flush()?;
    // Two wrong-TPS copies by one witness for one TPS: only the later counts (a witness's latest
    // copy replaces its earlier ones), as the log will say.
    let mut last: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (n, d) in truth.copy_disagreements.iter().enumerate() {
        last.insert((d.tps.clone(), d.participant.clone()), n);
    }
    let keep: std::collections::HashSet<usize> = last.into_values().collect();
    truth.copy_disagreements = std::mem::take(&mut truth.copy_disagreements)
        .into_iter()
        .enumerate()
        .filter(|(n, _)| keep.contains(n))
        .map(|(_, d)| d)
        .collect();
    let mut csv = io::BufWriter::new(std::fs::File::create(dir.join("poll-witnesses.csv"))?);
    writeln!(csv, "participant,key,scope")?;
    for &(p, desa) in witnesses.keys() {
        let key = poll_witness_key(config.seed, PARTICIPANTS[p], desa);
        writeln!(csv, "{},{},{desa}", PARTICIPANTS[p], key.public())?;
    }
    csv.flush()?;
    truth.poll_witnesses = witnesses.len();
    Ok(truth)
}

fn copies_of(
    config: &Config,
    planned: &[(Code, TpsKind)],
    official: &[(Code, Figures, bool)],
    from: usize,
    to: usize,
) -> ChunkOut {
    let mut out = ChunkOut {
        copies: Vec::new(),
        lines: 0,
        without_official: 0,
        disagreements: Vec::new(),
        witnesses: Vec::new(),
    };
    let mut keys: BTreeMap<(usize, Code), SecretKey> = BTreeMap::new();
    for i in from..to {
        let (code, kind) = planned[i];
        let desa = code.ancestor(Level::Desa).expect("a TPS has a desa");
        let fault = copy_fault(config, code);
        for (p, participant) in PARTICIPANTS.iter().enumerate() {
            if !covers(config.seed, p, code) {
                continue;
            }
            let key = keys
                .entry((p, desa))
                .or_insert_with(|| poll_witness_key(config.seed, participant, desa));
            let dpt = tally::draw_dpt(config.seed, code, kind);
            let mut form = tally::honest_form(config.seed, code, kind, dpt, key.public());
            let mut injected = None;
            let mut target = i;
            match fault {
                Some((CopyFault::CopyMisread, who)) if who == p => {
                    let mut rng = Rng::new(config.seed, code.as_u64(), PURPOSE_COPY_FAULT + 2);
                    let pair = rng.range(0, form.votes.len() as i64 - 1) as usize;
                    let votes = form.votes[pair].1;
                    form.votes[pair].1 = crate::misread(votes, 3, 8)
                        .or_else(|| crate::misread(votes, 2, 7))
                        .unwrap_or(votes * 10 + rng.range(1, 9));
                    injected = Some(CopyFault::CopyMisread);
                }
                Some((CopyFault::CopyWrongTps, who)) if who == p => {
                    // A neighbour in the same desa that this participant does not also cover (else
                    // the same witness would send two copies for it).
                    let neighbour = [i.wrapping_sub(1), i + 1].into_iter().find(|&j| {
                        j >= from
                            && j < to
                            && planned[j].0.parent() == code.parent()
                            && !covers(config.seed, p, planned[j].0)
                    });
                    if let Some(j) = neighbour {
                        form.tps = planned[j].0;
                        target = j;
                        injected = Some(CopyFault::CopyWrongTps);
                    }
                }
                _ => {}
            }
            if let Some((CopyFault::OfficialRaised, _)) = fault {
                injected = Some(CopyFault::OfficialRaised);
            }
            let (_, official_figures, counted) = &official[target];
            let fields = differing_fields(official_figures, &figures_of(&form));
            if !counted {
                out.without_official += 1;
            } else if let Some(kind) = injected.filter(|_| !fields.is_empty()) {
                out.disagreements.push(CopyDisagreement {
                    tps: planned[target].0.to_string(),
                    participant: participant.to_string(),
                    fields,
                    kind,
                });
            } else {
                assert!(
                    fields.is_empty(),
                    "an honest copy of {code} differs from its counted official result: {fields:?}"
                );
            }
            let signed = WitnessCopy {
                form,
                participant: participant.to_string(),
            }
            .sign(key);
            out.copies.extend_from_slice(&signed.encode());
            out.copies.push(b'\n');
            out.lines += 1;
            if out.witnesses.last() != Some(&(p, desa)) {
                out.witnesses.push((p, desa));
            }
        }
    }
    out
}
