//! Region tests per kabupaten/kota and province, over regular and khusus TPS.
//!
//! - Digit tests (R_2BL, R_LAST_DIGIT): the second and last digits of pair counts of 10 and more,
//!   against the digit distribution *the peer model itself predicts* for each count, not against
//!   Benford's law: TPS counts are bounded by a few hundred votes, so their digits follow the size of
//!   the TPS, and a textbook Benford test would flag honest regions. Chi-square with 9 degrees of
//!   freedom, only with at least [`MIN_DIGIT_COUNTS`] counts (otherwise "not applicable", and why),
//!   and only counts whose predicted spread is at least [`MIN_DIGIT_SD`] votes (a narrow distribution's
//!   digits depend on the model's exact shape: on `saksi gen`'s honest national election, whose TPS
//!   vary less than real ones, 21 of 533 regions were flagged without this bound).
//!   Mebane's second-digit mean is reported beside it for comparison with the literature.
//! - The fingerprint (Klimek, Yegorov, Hanel, Thurner 2012): the 2-D histogram of turnout against the
//!   region winner's share, with the fraction of incremental fraud f_i and extreme fraud f_e fitted.
//!   Descriptive: the fit has no null distribution here, so it is shown, not flagged.
//! - The Pearson correlation of turnout and the winner's share across TPS (descriptive).
//!
//! Noken provinces and overseas units are listed with the reason they are not tested.

use std::collections::BTreeMap;

use saksi_election::{Code, Level};
use serde::Serialize;

use crate::math::{bh_q_values, chi_square_sf, median, BetaBinomial};
use crate::peers::{turnout_of, Dim, Model};
use crate::rng::SplitMix;
use crate::{Settings, Stratum, TpsRow};

/// A digit test needs this many counts to have the power to mean anything (expected >= 20 per digit).
pub const MIN_DIGIT_COUNTS: usize = 200;
/// The smallest predictive standard deviation (votes) of a count that enters the digit tests.
pub const MIN_DIGIT_SD: f64 = 10.0;
/// A fingerprint is fitted with at least this many TPS (a 25x25 histogram of fewer is mostly empty).
pub const MIN_FINGERPRINT_TPS: usize = 100;
/// Fingerprint bins per axis: 4 percentage points each.
pub const FINGERPRINT_BINS: usize = 25;
/// Mebane's expected mean of second digits under Benford's law.
const BENFORD_2BL_MEAN: f64 = 4.187;

#[derive(Clone, Debug, Serialize)]
pub struct DigitTest {
    pub code: &'static str,
    /// Counts of 10 and more that entered the test.
    pub counts: usize,
    pub applicable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chi2: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p: Option<f64>,
    /// Observed and model-expected frequency of digits 0-9.
    pub observed: [u64; 10],
    pub expected: [f64; 10],
    /// R_2BL only: the observed mean second digit (Benford: 4.187).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    pub en: String,
    pub id: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Fingerprint {
    pub bins: usize,
    /// The region winner's label.
    pub winner: String,
    /// [turnout bin, share bin, TPS] for every non-empty cell.
    pub cells: Vec<[u32; 3]>,
    /// Fitted fraction of TPS with incremental fraud (f_i) and extreme fraud (f_e).
    pub incremental: f64,
    pub extreme: f64,
    /// Pearson correlation of turnout and the winner's share across TPS.
    pub turnout_share_r: f64,
    pub en: String,
    pub id: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct RegionResult {
    pub region: String,
    pub level: &'static str,
    pub tps: usize,
    /// Why the region is not tested at all (noken, overseas), in English and Indonesian.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_tested: Option<[String; 2]>,
    pub tests: Vec<DigitTest>,
    /// The smallest applicable test p-value times the number applicable; 1 when none is.
    pub p: f64,
    pub q: f64,
    pub flagged: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Fingerprint>,
}

#[derive(Default)]
struct Accumulator {
    tps: usize,
    stratum_note: Option<Stratum>,
    second: ([u64; 10], [f64; 10]),
    last: ([u64; 10], [f64; 10]),
    digit_counts: usize,
    /// (turnout, votes per pair, valid) per TPS with turnout known.
    points: Vec<(f64, Vec<u32>, u32)>,
}

/// The pmf of `d` over 0..=n, computed outward from the mode with the ratio recurrence (one
/// log-gamma evaluation per call).
fn pmf_vector(d: &BetaBinomial, out: &mut Vec<f64>) {
    let n = d.n as usize;
    let mean = d.n as f64 * d.alpha / (d.alpha + d.beta);
    let mode = (mean.round() as usize).min(n);
    out.clear();
    out.resize(n + 1, 0.0);
    out[mode] = d.pmf(mode as u32);
    let (nf, a, b) = (d.n as f64, d.alpha, d.beta);
    for k in mode..n {
        let j = k as f64;
        out[k + 1] = out[k] * (nf - j) / (j + 1.0) * (j + a) / (nf - j - 1.0 + b);
    }
    for k in (1..=mode).rev() {
        let j = k as f64;
        out[k - 1] = out[k] * j / (nf - j + 1.0) * (nf - j + b) / (j - 1.0 + a);
    }
}

/// The second digit of k >= 10.
fn second_digit(mut k: usize) -> usize {
    debug_assert!(k >= 10);
    while k >= 100 {
        k /= 10;
    }
    k % 10
}

type Key = (Code, &'static str);

/// Digit tallies and fingerprint points for a slice of rows, per region.
fn accumulate(rows: &[TpsRow], model: &Model, pairs: &[String]) -> BTreeMap<Key, Accumulator> {
    let mut regions: BTreeMap<Key, Accumulator> = BTreeMap::new();
    let mut pmf = Vec::new();
    for row in rows {
        let stratum = Stratum::of(row);
        let keys: Vec<Key> = [
            (row.tps.ancestor(Level::KabKota), "kabkota"),
            (row.tps.ancestor(Level::Provinsi), "provinsi"),
        ]
        .into_iter()
        .filter_map(|(c, l)| c.map(|c| (c, l)))
        .collect();
        for key in &keys {
            let acc = regions.entry(*key).or_default();
            acc.tps += 1;
            if matches!(stratum, Stratum::Noken | Stratum::Overseas) {
                acc.stratum_note = Some(stratum);
            }
        }
        if matches!(stratum, Stratum::Noken | Stratum::Overseas) {
            continue;
        }
        // Digits: one model-expected distribution per pair count.
        let mut second = ([0u64; 10], [0f64; 10]);
        let mut last = ([0u64; 10], [0f64; 10]);
        let mut counted = 0;
        for j in 0..pairs.len() {
            let Some(prediction) = model.predict(row, Dim::Pair(j as u8)) else {
                continue;
            };
            // A count enters only where the model's spread is wide (MIN_DIGIT_SD): a digit's
            // distribution then hardly depends on the exact shape of the model, which is an
            // approximation; with a narrow spread it would, and the test would measure the model.
            if prediction.x < 10 || prediction.sd() < MIN_DIGIT_SD {
                continue;
            }
            pmf_vector(&prediction.distribution(), &mut pmf);
            let mass: f64 = pmf.iter().skip(10).sum();
            if mass < 1e-6 {
                continue;
            }
            for (k, &p) in pmf.iter().enumerate().skip(10) {
                second.1[second_digit(k)] += p / mass;
                last.1[k % 10] += p / mass;
            }
            second.0[second_digit(prediction.x as usize)] += 1;
            last.0[prediction.x as usize % 10] += 1;
            counted += 1;
        }
        let point = turnout_of(row).and_then(|(x, n)| {
            let valid = row.valid_votes();
            (valid > 0).then(|| (x as f64 / n as f64, row.votes.clone(), valid))
        });
        for key in &keys {
            let acc = regions.get_mut(key).expect("inserted above");
            for d in 0..10 {
                acc.second.0[d] += second.0[d];
                acc.second.1[d] += second.1[d];
                acc.last.0[d] += last.0[d];
                acc.last.1[d] += last.1[d];
            }
            acc.digit_counts += counted;
            if let Some(point) = &point {
                acc.points.push(point.clone());
            }
        }
    }
    regions
}

impl Accumulator {
    fn merge(&mut self, other: Accumulator) {
        self.tps += other.tps;
        self.stratum_note = self.stratum_note.or(other.stratum_note);
        for d in 0..10 {
            self.second.0[d] += other.second.0[d];
            self.second.1[d] += other.second.1[d];
            self.last.0[d] += other.last.0[d];
            self.last.1[d] += other.last.1[d];
        }
        self.digit_counts += other.digit_counts;
        self.points.extend(other.points);
    }
}

pub fn analyze_regions(
    rows: &[TpsRow],
    model: &Model,
    pairs: &[String],
    settings: &Settings,
) -> Vec<RegionResult> {
    // Parts come back in input order, so the merged points (and the results) repeat exactly.
    let parts = crate::in_parallel(rows, settings.thread_count(), |part| {
        accumulate(part, model, pairs)
    });
    let mut regions: BTreeMap<Key, Accumulator> = BTreeMap::new();
    for part in parts {
        for (key, acc) in part {
            regions.entry(key).or_default().merge(acc);
        }
    }
    let mut results: Vec<RegionResult> = regions
        .into_iter()
        .map(|((code, level), acc)| finish_region(code, level, acc, pairs))
        .collect();
    let tested: Vec<usize> = (0..results.len())
        .filter(|&i| results[i].tests.iter().any(|t| t.applicable))
        .collect();
    let q = bh_q_values(&tested.iter().map(|&i| results[i].p).collect::<Vec<_>>());
    for (&i, q) in tested.iter().zip(q) {
        results[i].q = q;
        results[i].flagged = q <= settings.fdr;
    }
    results
}

fn digit_test(
    code: &'static str,
    observed: [u64; 10],
    expected: [f64; 10],
    counts: usize,
) -> DigitTest {
    let what_en = if code == "R_2BL" { "second" } else { "last" };
    let what_id = if code == "R_2BL" { "kedua" } else { "terakhir" };
    let mean = (code == "R_2BL" && counts > 0).then(|| {
        observed
            .iter()
            .enumerate()
            .map(|(d, &c)| d as f64 * c as f64)
            .sum::<f64>()
            / counts as f64
    });
    if counts < MIN_DIGIT_COUNTS {
        return DigitTest {
            code,
            counts,
            applicable: false,
            chi2: None,
            p: None,
            observed,
            expected,
            mean,
            en: format!("not applicable: {counts} counts of 10 or more, fewer than the {MIN_DIGIT_COUNTS} a {what_en}-digit test needs to mean anything"),
            id: format!("tidak berlaku: {counts} angka 10 ke atas, kurang dari {MIN_DIGIT_COUNTS} yang dibutuhkan uji digit {what_id}"),
        };
    }
    let chi2: f64 = (0..10)
        .filter(|&d| expected[d] > 0.0)
        .map(|d| (observed[d] as f64 - expected[d]).powi(2) / expected[d])
        .sum();
    let p = chi_square_sf(chi2, 9.0);
    let mean_note = mean
        .map(|m| format!("; mean {m:.3} (Benford {BENFORD_2BL_MEAN})"))
        .unwrap_or_default();
    DigitTest {
        code,
        counts,
        applicable: true,
        chi2: Some(chi2),
        p: Some(p),
        observed,
        expected,
        mean,
        en: format!("{what_en} digits of {counts} pair counts against the peer model's digit distribution: chi-square {chi2:.1} (9 df), p = {p:.2e}{mean_note}"),
        id: format!("digit {what_id} dari {counts} perolehan terhadap sebaran digit model TPS sekitar: chi-kuadrat {chi2:.1} (9 db), p = {p:.2e}{mean_note}"),
    }
}

fn finish_region(
    code: Code,
    level: &'static str,
    acc: Accumulator,
    pairs: &[String],
) -> RegionResult {
    let mut result = RegionResult {
        region: code.to_string(),
        level,
        tps: acc.tps,
        not_tested: None,
        tests: Vec::new(),
        p: 1.0,
        q: 1.0,
        flagged: false,
        fingerprint: None,
    };
    let tested_tps = acc.points.len();
    if acc.digit_counts == 0 && tested_tps == 0 {
        result.not_tested = Some(match acc.stratum_note {
            Some(Stratum::Noken) => [
                "noken region: a bloc vote by community agreement is lawful here, so shares, turnout and digits are not tested".to_string(),
                "wilayah noken: suara blok atas kesepakatan masyarakat sah di sini, sehingga perolehan, partisipasi dan digit tidak diuji".to_string(),
            ],
            Some(Stratum::Overseas) => [
                "overseas units: turnout and list sizes are not comparable with home TPS; only the TPS-level share tests apply".to_string(),
                "unit luar negeri: partisipasi dan jumlah pemilih tidak sebanding dengan TPS dalam negeri; hanya uji perolehan per TPS yang berlaku".to_string(),
            ],
            _ => [
                "no TPS with a model to test".to_string(),
                "tidak ada TPS yang dapat diuji".to_string(),
            ],
        });
        return result;
    }
    result.tests.push(digit_test(
        "R_2BL",
        acc.second.0,
        acc.second.1,
        acc.digit_counts,
    ));
    result.tests.push(digit_test(
        "R_LAST_DIGIT",
        acc.last.0,
        acc.last.1,
        acc.digit_counts,
    ));
    let applicable: Vec<f64> = result.tests.iter().filter_map(|t| t.p).collect();
    if !applicable.is_empty() {
        let min = applicable.iter().copied().fold(1.0f64, f64::min);
        result.p = (min * applicable.len() as f64).min(1.0);
    }
    if tested_tps >= MIN_FINGERPRINT_TPS {
        result.fingerprint = Some(fingerprint(code, &acc.points, pairs));
    }
    result
}

fn bin(x: f64) -> usize {
    ((x * FINGERPRINT_BINS as f64) as usize).min(FINGERPRINT_BINS - 1)
}

/// The spread of incremental fraud's stolen fraction (|N(0, s)|) and of extreme fraud's distance from
/// all (1 - |N(0, s)|), after Klimek et al.'s model: fraud moves a fraction x of the non-voters and the
/// same fraction of the other pairs' votes to the winner.
const INCREMENTAL_SPREAD: f64 = 0.15;
const EXTREME_SPREAD: f64 = 0.05;
/// Simulated TPS per regime: enough that the simulation's noise is small next to the data's.
const SIMULATED_TPS: usize = 8_000;

fn fingerprint(code: Code, points: &[(f64, Vec<u32>, u32)], pairs: &[String]) -> Fingerprint {
    let k = pairs.len();
    let mut totals = vec![0u64; k];
    for (_, votes, _) in points {
        for (t, &v) in totals.iter_mut().zip(votes) {
            *t += v as u64;
        }
    }
    let winner = (0..k).max_by_key(|&j| totals[j]).unwrap_or(0);
    let observed: Vec<(f64, f64)> = points
        .iter()
        .map(|(t, votes, valid)| (*t, votes[winner] as f64 / *valid as f64))
        .collect();
    let n = observed.len() as f64;
    let mut counts = vec![0u32; FINGERPRINT_BINS * FINGERPRINT_BINS];
    for &(t, v) in &observed {
        counts[bin(t) * FINGERPRINT_BINS + bin(v)] += 1;
    }
    // Pearson correlation.
    let (mt, mv) = (
        observed.iter().map(|p| p.0).sum::<f64>() / n,
        observed.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let (mut stt, mut svv, mut stv) = (0.0, 0.0, 0.0);
    for &(t, v) in &observed {
        stt += (t - mt) * (t - mt);
        svv += (v - mv) * (v - mv);
        stv += (t - mt) * (v - mv);
    }
    let r = if stt > 0.0 && svv > 0.0 {
        stv / (stt * svv).sqrt()
    } else {
        0.0
    };
    // The clean model (Klimek et al.): turnout and share each normal on the logit scale, where a
    // bounded and skewed rate becomes symmetric, around the region's medians with robust spreads.
    let logit = |x: f64| {
        let x = x.clamp(0.005, 0.995);
        (x / (1.0 - x)).ln()
    };
    let robust = |mut values: Vec<f64>| -> (f64, f64) {
        let m = median(&mut values).unwrap_or(0.0);
        let mut deviations: Vec<f64> = values.iter().map(|v| (v - m).abs()).collect();
        let mad = median(&mut deviations).unwrap_or(0.0);
        (m, (1.4826 * mad).max(0.01))
    };
    let (mu_t, sd_t) = robust(observed.iter().map(|p| logit(p.0)).collect());
    let (mu_v, sd_v) = robust(observed.iter().map(|p| logit(p.1)).collect());
    let inverse_logit = |y: f64| 1.0 / (1.0 + (-y).exp());
    let mut rng = SplitMix(code.as_u64() ^ 0x6b6c_696d_656b);
    let cells = FINGERPRINT_BINS * FINGERPRINT_BINS;
    let (mut clean, mut incremental, mut extreme) =
        (vec![0f64; cells], vec![0f64; cells], vec![0f64; cells]);
    let unit = 1.0 / SIMULATED_TPS as f64;
    for _ in 0..SIMULATED_TPS {
        // Common random numbers: the same clean TPS under each regime.
        let t = inverse_logit(mu_t + sd_t * rng.normal());
        let v = inverse_logit(mu_v + sd_v * rng.normal());
        let z = rng.normal().abs();
        let moved = |x: f64| {
            let x = x.clamp(0.0, 1.0);
            let winner_votes = v * t + x * (1.0 - t) + x * (t - v * t);
            let turnout = t + x * (1.0 - t);
            let share = if turnout > 0.0 {
                winner_votes / turnout
            } else {
                v
            };
            (turnout, share)
        };
        clean[bin(t) * FINGERPRINT_BINS + bin(v)] += unit;
        let (ti, vi) = moved(INCREMENTAL_SPREAD * z);
        incremental[bin(ti) * FINGERPRINT_BINS + bin(vi)] += unit;
        let (te, ve) = moved(1.0 - EXTREME_SPREAD * z);
        extreme[bin(te) * FINGERPRINT_BINS + bin(ve)] += unit;
    }
    let h: Vec<f64> = counts.iter().map(|&c| c as f64 / n).collect();
    let (fi, fe) = fit_fractions(&h, &clean, &incremental, &extreme);
    let cells_out = counts
        .iter()
        .enumerate()
        .filter(|(_, &c)| c > 0)
        .map(|(i, &c)| {
            [
                (i / FINGERPRINT_BINS) as u32,
                (i % FINGERPRINT_BINS) as u32,
                c,
            ]
        })
        .collect();
    let label = &pairs[winner];
    Fingerprint {
        bins: FINGERPRINT_BINS,
        winner: label.clone(),
        cells: cells_out,
        incremental: fi,
        extreme: fe,
        turnout_share_r: r,
        en: format!(
            "turnout against {label}'s share over {} TPS: fitted incremental fraud {:.1}%, extreme fraud {:.1}% of TPS; correlation of turnout and share r = {r:.2} (descriptive: a clean region's fit is near 0, real differences between villages also raise it)",
            points.len(), 100.0 * fi, 100.0 * fe
        ),
        id: format!(
            "partisipasi terhadap perolehan {label} di {} TPS: taksiran kecurangan bertahap {:.1}%, ekstrem {:.1}% TPS; korelasi partisipasi dan perolehan r = {r:.2} (deskriptif: wilayah bersih mendekati 0, perbedaan nyata antardesa juga menaikkannya)",
            points.len(), 100.0 * fi, 100.0 * fe
        ),
    }
}

/// Least squares for h ≈ (1 - fi - fe)·clean + fi·incremental + fe·extreme with fi, fe >= 0 and
/// fi + fe <= 1: the 2x2 normal equations, then the edges when the solution lies outside.
fn fit_fractions(h: &[f64], clean: &[f64], incremental: &[f64], extreme: &[f64]) -> (f64, f64) {
    let r: Vec<f64> = h.iter().zip(clean).map(|(h, c)| h - c).collect();
    let a: Vec<f64> = incremental.iter().zip(clean).map(|(x, c)| x - c).collect();
    let b: Vec<f64> = extreme.iter().zip(clean).map(|(x, c)| x - c).collect();
    let dot = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(x, y)| x * y).sum::<f64>();
    let (aa, bb, ab, ra, rb) = (
        dot(&a, &a),
        dot(&b, &b),
        dot(&a, &b),
        dot(&r, &a),
        dot(&r, &b),
    );
    let residual = |fi: f64, fe: f64| {
        r.iter()
            .zip(a.iter().zip(&b))
            .map(|(r, (a, b))| (r - fi * a - fe * b).powi(2))
            .sum::<f64>()
    };
    let mut candidates = vec![(0.0, 0.0)];
    let det = aa * bb - ab * ab;
    if det.abs() > 1e-18 {
        let fi = (ra * bb - rb * ab) / det;
        let fe = (rb * aa - ra * ab) / det;
        if fi >= 0.0 && fe >= 0.0 && fi + fe <= 1.0 {
            candidates.push((fi, fe));
        }
    }
    if aa > 0.0 {
        candidates.push(((ra / aa).clamp(0.0, 1.0), 0.0));
    }
    if bb > 0.0 {
        candidates.push((0.0, (rb / bb).clamp(0.0, 1.0)));
    }
    candidates
        .into_iter()
        .min_by(|x, y| residual(x.0, x.1).total_cmp(&residual(y.0, y.1)))
        .unwrap_or((0.0, 0.0))
}
