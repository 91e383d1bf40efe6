//! The TPS tests. Each returns a p-value under "this TPS is like its peers" and the evidence a person
//! needs to judge it, in Indonesian and English.
//!
//! | code        | strata            | what it asks                                                      |
//! |-------------|-------------------|-------------------------------------------------------------------|
//! | F_SHARE     | regular, khusus, overseas | is a pair's count far from what the peers predict (two-sided)? |
//! | F_MISREAD   | (a label on F_SHARE) | does one deleted or changed digit make the count ordinary?     |
//! | F_TURNOUT   | regular, khusus   | is turnout far from the peers'? (evidence only, see `turnout_test`) |
//! | F_STUFFING  | regular           | are turnout *and* one pair's share both high (Fisher)? F_BLOC when both are >= 95% |
//! | F_COPIED    | regular           | does another TPS of the desa have exactly the same pair counts?   |
//! | F_ROUND     | all but noken     | is every count of 10 or more a multiple of 10?                    |
//! | F_COPY_DISAGREES | all          | does a poll witness's copy of the result disagree with it?        |
//!
//! Noken TPS get no test: a 100% bloc vote there is what the law allows, and no peer model describes
//! agreements between communities.

use std::collections::HashMap;

use saksi_election::{Code, Level};
use serde::Serialize;

use crate::math::fisher2;
use crate::peers::{Dim, Model, Prediction};
use crate::{Settings, Stratum, TpsRow, TpsScore};

/// A share test below this p-value looks for a misread digit.
const MISREAD_SEARCH_P: f64 = 1e-3;
/// A corrected reading is "ordinary" when its own two-sided p-value is at least this.
const MISREAD_PLAUSIBLE_P: f64 = 0.05;
/// Identical pair counts are only evidence when there are enough votes for a tie to be unlikely.
const MIN_COPY_VOTES: u32 = 20;
/// Turnout and share at or above this make a stuffing flag a bloc flag.
const BLOC_FRACTION: f64 = 0.95;
/// The nominal p-value of a poll witness's disagreeing copy: small enough that it is always flagged.
const COPY_DISAGREES_P: f64 = 1e-12;
/// Counts below this are multiples of 10 too often by nature (0 above all) to count as round.
const MIN_ROUND_COUNT: u32 = 10;

/// One test's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct TestResult {
    pub code: &'static str,
    pub p: f64,
    /// The pair's label, or "turnout".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<f64>,
    /// The peers' typical range (expected ± 2 standard deviations of the model).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub typical: Option<[u32; 2]>,
    /// For F_MISREAD: the reading that makes the TPS ordinary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggested: Option<u32>,
    /// For F_COPIED: the other TPS with the same figures.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub same_as: Vec<String>,
    /// Shown as evidence, but its p-value does not count towards the TPS's flag (F_TURNOUT).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub evidence_only: bool,
    pub en: String,
    pub id: String,
}

impl TestResult {
    /// A test with its p-value and explanation; the other fields are set where they apply.
    fn new(code: &'static str, p: f64, en: String, id: String) -> TestResult {
        TestResult {
            code,
            p,
            field: None,
            observed: None,
            expected: None,
            typical: None,
            suggested: None,
            same_as: Vec::new(),
            evidence_only: false,
            en,
            id,
        }
    }

    /// A test of one figure against its peer prediction: the figure, expected value and typical range.
    fn compared(
        code: &'static str,
        p: f64,
        field: &str,
        prediction: &Prediction,
        en: String,
        id: String,
    ) -> TestResult {
        TestResult {
            field: Some(field.to_string()),
            observed: Some(prediction.x),
            expected: Some(prediction.expected()),
            typical: Some(typical(prediction)),
            ..TestResult::new(code, p, en, id)
        }
    }
}

/// How many flag-bearing tests a TPS of a stratum gets (the Bonferroni factor within a TPS).
fn tests_in(stratum: Stratum) -> usize {
    match stratum {
        Stratum::Regular => 4,
        Stratum::Khusus => 2,
        Stratum::Overseas => 2,
        Stratum::Noken => 0,
    }
}

fn peers_en(stratum: Stratum) -> &'static str {
    match stratum {
        Stratum::Regular => "the other TPS of its desa and kecamatan",
        Stratum::Khusus => "the other TPS lokasi khusus of its kabupaten/kota and province",
        _ => "the other overseas units of its country office",
    }
}

fn peers_id(stratum: Stratum) -> &'static str {
    match stratum {
        Stratum::Regular => "TPS lain di desa dan kecamatannya",
        Stratum::Khusus => "TPS lokasi khusus lain di kabupaten/kota dan provinsinya",
        _ => "unit luar negeri lain di perwakilannya",
    }
}

fn percent(x: f64, n: f64) -> f64 {
    if n > 0.0 {
        100.0 * x / n
    } else {
        0.0
    }
}

fn typical(prediction: &Prediction) -> [u32; 2] {
    let (e, sd) = (prediction.expected(), prediction.sd());
    let clip = |v: f64| v.clamp(0.0, prediction.n as f64).round() as u32;
    [clip(e - 2.0 * sd), clip(e + 2.0 * sd)]
}

/// Every reading one deleted or changed digit away from `x` (Sirekap's 2024 misreads: a blank box
/// read as a digit adds one, a digit read as another changes one).
pub fn one_digit_readings(x: u32) -> Vec<u32> {
    let digits: Vec<u8> = x.to_string().bytes().map(|b| b - b'0').collect();
    let mut out = Vec::new();
    let value = |ds: &[u8]| ds.iter().fold(0u32, |acc, &d| acc * 10 + d as u32);
    if digits.len() > 1 {
        for i in 0..digits.len() {
            let mut ds = digits.clone();
            ds.remove(i);
            out.push(value(&ds));
        }
    }
    for i in 0..digits.len() {
        for d in 0..10u8 {
            if d != digits[i] {
                let mut ds = digits.clone();
                ds[i] = d;
                out.push(value(&ds));
            }
        }
    }
    out.retain(|&c| c != x);
    out.sort_unstable();
    out.dedup();
    out
}

/// The share test for one pair.
fn share_test(stratum: Stratum, label: &str, prediction: &Prediction) -> TestResult {
    let p = prediction.distribution().two_sided(prediction.x);
    let expected = prediction.expected();
    let range = typical(prediction);
    let (x, n) = (prediction.x, prediction.n);
    TestResult::compared(
        "F_SHARE",
        p,
        label,
        prediction,
        format!(
            "{label} got {x} of {n} valid votes ({:.1}%); {} predict about {expected:.0} (typically {}-{})",
            percent(x as f64, n as f64),
            peers_en(stratum),
            range[0],
            range[1]
        ),
        format!(
            "{label} memperoleh {x} dari {n} suara sah ({:.1}%); {} memperkirakan sekitar {expected:.0} (biasanya {}-{})",
            percent(x as f64, n as f64),
            peers_id(stratum),
            range[0],
            range[1]
        ),
    )
}

/// The one-digit reading of one pair's count that makes every pair's count ordinary: (pair, reading,
/// the smallest two-sided p-value over the pairs with that reading). None when no reading does.
fn misread_search(row: &TpsRow, shares: &[Option<Prediction>]) -> Option<(usize, u32, f64)> {
    let valid = row.valid_votes();
    let mut best: Option<(usize, u32, f64)> = None;
    for (j, prediction) in shares.iter().enumerate() {
        let Some(prediction) = prediction else {
            continue;
        };
        let x = prediction.x;
        for c in one_digit_readings(x) {
            let n = valid - x + c;
            let joint = shares
                .iter()
                .enumerate()
                .filter_map(|(k, p)| p.as_ref().map(|p| (k, p)))
                .map(|(k, p)| {
                    let xk = if k == j { c } else { p.x };
                    p.with_reading(xk, n).distribution().two_sided(xk)
                })
                .fold(1.0f64, f64::min);
            if best.is_none_or(|b| joint > b.2) {
                best = Some((j, c, joint));
            }
        }
    }
    best.filter(|b| b.2 >= MISREAD_PLAUSIBLE_P)
}

/// Relabels a share test as a misread of pair `j` read as `c`.
fn label_misread(
    test: &mut TestResult,
    row: &TpsRow,
    stratum: Stratum,
    label: &str,
    prediction: &Prediction,
    c: u32,
    p_c: f64,
) {
    let x = prediction.x;
    let expected = prediction.expected();
    let over_dpt = row.dpt.is_some_and(|dpt| row.valid_votes() > dpt);
    test.code = "F_MISREAD";
    test.field = Some(label.to_string());
    test.observed = Some(x);
    test.expected = Some(expected);
    test.typical = Some(typical(prediction));
    test.suggested = Some(c);
    test.en = format!(
        "{label}'s {x} looks like a misread of {c}: with {c} every pair of the TPS is like {} (p >= {p_c:.2}), with {x} it is not (expected about {expected:.0}){}",
        peers_en(stratum),
        if over_dpt { "; the valid votes exceed the TPS's DPT" } else { "" }
    );
    test.id = format!(
        "{x} untuk {label} tampak salah baca dari {c}: dengan {c} semua paslon di TPS ini serupa {} (p >= {p_c:.2}), dengan {x} tidak (perkiraan sekitar {expected:.0}){}",
        peers_id(stratum),
        if over_dpt { "; suara sah melebihi DPT TPS" } else { "" }
    );
}

fn turnout_test(stratum: Stratum, prediction: &Prediction) -> TestResult {
    let p = prediction.distribution().two_sided(prediction.x);
    let (x, n) = (prediction.x, prediction.n);
    let range = typical(prediction);
    let expected_pct = 100.0 * prediction.p;
    let en = format!(
            "{x} of {n} registered voters voted ({:.1}%); {} predict about {expected_pct:.0}% (typically {}-{} voters)",
            percent(x as f64, n as f64),
            peers_en(stratum),
            range[0],
            range[1]
        );
    let id = format!(
            "{x} dari {n} pemilih terdaftar memilih ({:.1}%); {} memperkirakan sekitar {expected_pct:.0}% (biasanya {}-{} pemilih)",
            percent(x as f64, n as f64),
            peers_id(stratum),
            range[0],
            range[1]
        );
    // Turnout alone does not flag: 3.1% of the 2024 rows that report both figures (6,424 of 207,634)
    // have 99-100% of their DPT voting (lists cleaned well, or officers writing DPT as turnout), far
    // more than any peer model allows, and flagging them buried the stronger signals (untouched rows
    // flagged, development seed: 2.4% with it, 2.3% without, most of the rest being F_STUFFING on the
    // same TPS; docs/forensics.md). Turnout still counts inside F_STUFFING and F_BLOC.
    TestResult {
        evidence_only: true,
        ..TestResult::compared("F_TURNOUT", p, "turnout", prediction, en, id)
    }
}

/// High turnout and a high share for one pair at once: what ballots added for one pair (or a bloc
/// vote) look like, and what neither test alone is sure of.
fn stuffing_test(
    turnout: &Prediction,
    share: &Prediction,
    label: &str,
    pairs: usize,
) -> TestResult {
    let p_turnout = turnout.distribution().upper_tail(turnout.x);
    let p_share = share.distribution().upper_tail(share.x);
    // Fisher's combination, not "both significant" (max of the two): on the 2024 rows the latter
    // took 20% stuffing's recall from 55% to 8% (development seed), as turnout alone is rarely far
    // enough out; flooring each p at 1e-4 gave 31%, for 1.3% instead of 2.3% untouched rows flagged.
    // Also measured on the development seed (docs/forensics.md): requiring each part to be below
    // 0.05 on its own, 33% recall on 20% stuffing with 1.3% of untouched rows flagged.
    let p = (fisher2(p_turnout, p_share) * pairs as f64).min(1.0);
    let t = percent(turnout.x as f64, turnout.n as f64);
    let s = percent(share.x as f64, share.n as f64);
    let bloc = t >= 100.0 * BLOC_FRACTION && s >= 100.0 * BLOC_FRACTION;
    let (code, en, id) = if bloc {
        (
            "F_BLOC",
            format!("turnout {t:.1}% with {s:.1}% for {label}: a bloc vote outside the noken regions (peers: {:.0}% turnout, {:.0}% for {label})", 100.0 * turnout.p, 100.0 * share.p),
            format!("partisipasi {t:.1}% dengan {s:.1}% untuk {label}: suara blok di luar wilayah noken (TPS sekitar: partisipasi {:.0}%, {:.0}% untuk {label})", 100.0 * turnout.p, 100.0 * share.p),
        )
    } else {
        (
            "F_STUFFING",
            format!("turnout ({t:.1}%, peers {:.0}%) and {label}'s share ({s:.1}%, peers {:.0}%) are both high: ballots added for one pair look like this", 100.0 * turnout.p, 100.0 * share.p),
            format!("partisipasi ({t:.1}%, TPS sekitar {:.0}%) dan perolehan {label} ({s:.1}%, TPS sekitar {:.0}%) sama-sama tinggi: pola penambahan surat suara untuk satu paslon", 100.0 * turnout.p, 100.0 * share.p),
        )
    };
    TestResult::compared(code, p, label, share, en, id)
}

fn round_test(row: &TpsRow) -> Option<TestResult> {
    let counts: Vec<u32> = row
        .votes
        .iter()
        .copied()
        .filter(|&c| c >= MIN_ROUND_COUNT)
        .collect();
    if counts.len() < 2 || counts.iter().any(|c| c % 10 != 0) {
        return None;
    }
    // Last digits of counts of 10 and more are close to uniform, so each is a multiple of 10 with
    // chance about 1/10, independently.
    let p = 0.1f64.powi(counts.len() as i32);
    let list = counts
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    Some(TestResult::new(
        "F_ROUND",
        p,
        format!("every count of 10 or more is a multiple of 10 ({list}); by chance about {p:.0e}"),
        format!("semua angka 10 ke atas kelipatan 10 ({list}); peluang kebetulan sekitar {p:.0e}"),
    ))
}

/// Another TPS of the same desa with exactly the same pair counts, and whether its voter count is the
/// same too.
#[derive(Clone, Copy, Debug)]
pub struct Twin {
    pub tps: Code,
    pub same_voters: bool,
}

/// Identical pair counts in one desa: the chance that two TPS of this size and these peers tie on
/// every pair count under the peer model, times the other TPS of the desa it could have tied with
/// (`neighbours`, a union bound: in a desa of ten TPS a tie has nine chances, whichever one it falls
/// on). Where the voter count is the same too, times the chance that two TPS of the kabupaten/kota
/// differ from their valid votes by the same number of voters (`voters_tie`, measured on the data):
/// a copied form copies every figure, and each further figure makes a coincidence less likely.
fn copy_test(
    row: &TpsRow,
    shares: &[Option<Prediction>],
    turnout: Option<&Prediction>,
    same: &[Twin],
    neighbours: usize,
    voters_tie: f64,
) -> Option<TestResult> {
    if same.is_empty() {
        return None;
    }
    // The chance of the other TPS having the same number of valid votes: about one over the width of
    // its distribution (the turnout model's), or 1 when that is unknown.
    let p_size = turnout.map_or(1.0, |t| (1.0 / (2.5 * t.sd().max(1.0))).min(1.0));
    let voters = if same.iter().any(|t| t.same_voters) {
        voters_tie
    } else {
        1.0
    };
    let mut p = p_size * voters * neighbours.max(same.len()) as f64;
    // All pairs but the last (which the total then fixes). The chance of a tie anywhere, not the pmf
    // at the observed counts: a tie far from the peers' expectation is no more surprising than one
    // near it, and the pmf there would overstate it.
    for prediction in shares.iter().take(shares.len().saturating_sub(1)) {
        p *= prediction.as_ref()?.distribution().collision();
    }
    let p = p.min(1.0);
    let figures = row
        .votes
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join("/");
    let others = same
        .iter()
        .map(|t| t.tps.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let (voters_en, voters_id) = match row.voters {
        Some(voters) if same.iter().any(|t| t.same_voters) => (
            format!(" and voters ({voters})"),
            format!(" dan jumlah pemilih ({voters})"),
        ),
        _ => (String::new(), String::new()),
    };
    Some(TestResult {
        same_as: same.iter().map(|t| t.tps.to_string()).collect(),
        ..TestResult::new(
            "F_COPIED",
            p,
            format!("the same pair counts ({figures}){voters_en} as TPS {others} of the same desa; by chance about {p:.1e}"),
            format!("perolehan yang sama persis ({figures}){voters_id} dengan TPS {others} di desa yang sama; peluang kebetulan sekitar {p:.1e}"),
        )
    })
}

/// Scores one row. `same` lists the other TPS of its desa with identical pair counts, of its
/// `neighbours` (the other TPS of the desa a copy test considers).
fn score_row(
    row: &TpsRow,
    model: &Model,
    pairs: &[String],
    same: &[Twin],
    neighbours: usize,
    voters_tie: f64,
    settings: &Settings,
) -> TpsScore {
    let stratum = Stratum::of(row);
    let mut tests: Vec<TestResult> = Vec::new();
    if stratum != Stratum::Noken {
        let shares: Vec<Option<Prediction>> = (0..pairs.len())
            .map(|j| model.predict(row, Dim::Pair(j as u8)))
            .collect();
        let turnout = match stratum {
            Stratum::Regular | Stratum::Khusus => model.predict(row, Dim::Turnout),
            _ => None,
        };
        // The share test: the worst pair, times the number of pairs.
        let worst = shares
            .iter()
            .enumerate()
            .filter_map(|(j, p)| p.as_ref().map(|p| (j, p)))
            .map(|(j, prediction)| share_test(stratum, &pairs[j], prediction))
            .min_by(|a, b| a.p.total_cmp(&b.p));
        if let Some(mut test) = worst {
            if test.p <= MISREAD_SEARCH_P {
                if let Some((j, c, p_c)) = misread_search(row, &shares) {
                    if let Some(prediction) = &shares[j] {
                        label_misread(&mut test, row, stratum, &pairs[j], prediction, c, p_c);
                    }
                }
            }
            test.p = (test.p * pairs.len() as f64).min(1.0);
            tests.push(test);
        }
        if let Some(t) = &turnout {
            tests.push(turnout_test(stratum, t));
        }
        if stratum == Stratum::Regular {
            if let Some(t) = &turnout {
                let stuffing = shares
                    .iter()
                    .enumerate()
                    .filter_map(|(j, s)| s.as_ref().map(|s| (j, s)))
                    .map(|(j, s)| stuffing_test(t, s, &pairs[j], pairs.len()))
                    .min_by(|a, b| a.p.total_cmp(&b.p));
                tests.extend(stuffing);
            }
            tests.extend(copy_test(
                row,
                &shares,
                turnout.as_ref(),
                same,
                neighbours,
                voters_tie,
            ));
        }
        tests.extend(round_test(row));
    }
    if row.disagreeing_copies {
        tests.push(TestResult::new(
            "F_COPY_DISAGREES",
            COPY_DISAGREES_P,
            "a poll witness's copy of this TPS's result disagrees with it (saksi audit copies shows the fields); the p-value is nominal: this is a second record of the same count, not a statistic".to_string(),
            "salinan saksi TPS berbeda dengan hasil TPS ini (lihat saksi audit copies); nilai p hanya nominal: ini catatan kedua atas penghitungan yang sama, bukan statistik".to_string(),
        ));
    }
    let min_p = tests
        .iter()
        .filter(|t| !t.evidence_only)
        .map(|t| t.p)
        .fold(1.0f64, f64::min);
    let count = tests_in(stratum) + usize::from(row.disagreeing_copies);
    let p = (min_p * count.max(1) as f64).min(1.0);
    tests.retain(|t| t.p < settings.report_p);
    tests.sort_by(|a, b| a.p.total_cmp(&b.p));
    TpsScore {
        tps: row.tps.to_string(),
        stratum,
        score: -p.max(1e-300).log10(),
        p,
        q: 1.0,
        flagged: false,
        tests,
    }
}

/// Fewer regular TPS with a voter count than this in a kabupaten/kota and a voter tie is not used as
/// evidence: the measured chance of one would be too noisy.
const MIN_TIE_TPS: usize = 100;

/// Per kabupaten/kota: the chance that two of its regular TPS differ from their valid votes by the same
/// number of voters (the sum of the squared frequencies of that difference). Measured across the
/// kabupaten/kota rather than the desa, which has too few TPS; TPS of one desa are somewhat more alike,
/// so this understates a tie's chance a little, and the copy test's p-value is a lead, like every flag.
fn voters_tie_by_kabkota(rows: &[TpsRow]) -> HashMap<Code, f64> {
    let mut counts: HashMap<Code, HashMap<i64, u32>> = HashMap::new();
    for row in rows.iter().filter(|r| Stratum::of(r) == Stratum::Regular) {
        if let (Some(voters), Some(kabkota)) = (row.voters, row.tps.ancestor(Level::KabKota)) {
            let difference = i64::from(voters) - i64::from(row.valid_votes());
            *counts
                .entry(kabkota)
                .or_default()
                .entry(difference)
                .or_default() += 1;
        }
    }
    counts
        .into_iter()
        .filter_map(|(kabkota, by_difference)| {
            let total: u32 = by_difference.values().sum();
            (total as usize >= MIN_TIE_TPS).then(|| {
                let tie = by_difference
                    .values()
                    .map(|&n| (f64::from(n) / f64::from(total)).powi(2))
                    .sum::<f64>();
                (kabkota, tie)
            })
        })
        .collect()
}

/// Scores every row, in input order, on all cores.
pub fn score_all(
    rows: &[TpsRow],
    model: &Model,
    pairs: &[String],
    settings: &Settings,
) -> Vec<TpsScore> {
    // Identical pair counts within a desa, among regular TPS with enough votes for a tie to mean
    // something: (desa, counts) -> the TPS that have them.
    let desa_of_copyable = |row: &TpsRow| {
        (Stratum::of(row) == Stratum::Regular && row.valid_votes() >= MIN_COPY_VOTES)
            .then(|| row.tps.ancestor(Level::Desa))
            .flatten()
    };
    let mut by_figures: HashMap<(Code, &[u32]), Vec<&TpsRow>> = HashMap::new();
    let mut copyable_in_desa: HashMap<Code, usize> = HashMap::new();
    for row in rows {
        if let Some(desa) = desa_of_copyable(row) {
            *copyable_in_desa.entry(desa).or_default() += 1;
            by_figures
                .entry((desa, row.votes.as_slice()))
                .or_default()
                .push(row);
        }
    }
    let voters_tie = voters_tie_by_kabkota(rows);
    let parts = crate::in_parallel(rows, settings.thread_count(), |part| {
        part.iter()
            .map(|row| {
                let same: Vec<Twin> = desa_of_copyable(row)
                    .and_then(|desa| by_figures.get(&(desa, row.votes.as_slice())))
                    .map(|twins| {
                        twins
                            .iter()
                            .filter(|twin| twin.tps != row.tps)
                            .map(|twin| Twin {
                                tps: twin.tps,
                                same_voters: row.voters.is_some() && twin.voters == row.voters,
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let tie = row
                    .tps
                    .ancestor(Level::KabKota)
                    .and_then(|k| voters_tie.get(&k).copied())
                    .unwrap_or(1.0);
                let neighbours = desa_of_copyable(row)
                    .and_then(|desa| copyable_in_desa.get(&desa))
                    .map_or(0, |n| n.saturating_sub(1));
                score_row(row, model, pairs, &same, neighbours, tie, settings)
            })
            .collect::<Vec<_>>()
    });
    parts.into_iter().flatten().collect()
}
