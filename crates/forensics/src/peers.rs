//! The peer model: what a TPS's pair counts and turnout would look like if it were like its peers.
//!
//! For a TPS i and one dimension (a pair's share of valid votes, or turnout of the DPT):
//! - the *near* peers are the other TPS of its desa/kelurahan (regular TPS) or of its kabupaten/kota
//!   (khusus, overseas); the *broad* peers are the other TPS of its kecamatan (regular) or province;
//! - the predicted share is p = (X_near - x_i + kappa * s_broad) / (N_near - n_i + kappa), with s_broad the
//!   broad peers' share without i, and kappa = `Settings::prior_votes`: the near peers speak when they
//!   have votes, the broad ones fill in when they do not. Leaving i out means a TPS cannot vouch for
//!   itself, and a stuffed TPS does not pull its own prediction towards it.
//! - the count is beta-binomial around n_i * p with intra-class correlation rho_eff = rho + (1 + (n_i - 1)
//!   rho) / N_eff, N_eff = N_near - n_i + kappa: rho is the real spread between TPS, the second term the
//!   uncertainty of p itself.
//! - rho is calibrated per kabupaten/kota (province for khusus and overseas) and dimension, robustly: the
//!   value for which the median of the squared standardized residuals is the chi-square(1) median. A
//!   median ignores the few wrong TPS, so they cannot widen the model that should catch them.

use std::collections::HashMap;

use saksi_election::{Code, Level};

use crate::math::BetaBinomial;
use crate::{Settings, Stratum, TpsRow, MAX_PAIRS};

/// Fewer TPS than this in a calibration group and the stratum-wide rho is used: a median of a handful
/// of residuals is itself too noisy.
pub const MIN_CALIBRATION_TPS: usize = 30;
/// rho is searched in [RHO_MIN, RHO_MAX] (log-bisection).
const RHO_MIN: f64 = 1e-5;
const RHO_MAX: f64 = 0.9;

/// A dimension of a TPS: one pair's share, or turnout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dim {
    Pair(u8),
    Turnout,
}

/// The sums one peer group holds.
#[derive(Clone, Debug, Default)]
struct Sums {
    valid: u64,
    votes: [u64; MAX_PAIRS],
    /// Only TPS with both DPT and voters known count towards turnout.
    turnout_dpt: u64,
    turnout_voters: u64,
}

impl Sums {
    fn add(&mut self, row: &TpsRow) {
        self.valid += row.valid_votes() as u64;
        for (sum, &v) in self.votes.iter_mut().zip(&row.votes) {
            *sum += v as u64;
        }
        if let Some((x, n)) = turnout_of(row) {
            self.turnout_dpt += n as u64;
            self.turnout_voters += x as u64;
        }
    }

    /// (successes, trials) for a dimension.
    fn get(&self, dim: Dim) -> (u64, u64) {
        match dim {
            Dim::Pair(j) => (self.votes[j as usize], self.valid),
            Dim::Turnout => (self.turnout_voters, self.turnout_dpt),
        }
    }
}

/// (voters, DPT) for the turnout test: voters above DPT (DPTb and DPK voters) count as full turnout.
/// Where the form does not say how many voted, the valid votes are a lower bound on it.
pub fn turnout_of(row: &TpsRow) -> Option<(u32, u32)> {
    let voters = row.voters.unwrap_or(0).max(row.valid_votes());
    match row.dpt {
        Some(dpt) if dpt > 0 => Some((voters.min(dpt), dpt)),
        _ => None,
    }
}

/// Where a row's peers are, per stratum.
fn peer_codes(row: &TpsRow, stratum: Stratum) -> Option<(Code, Code, Code)> {
    let at = |level| row.tps.ancestor(level);
    match stratum {
        Stratum::Regular => Some((at(Level::Desa)?, at(Level::Kecamatan)?, at(Level::KabKota)?)),
        Stratum::Khusus | Stratum::Overseas => Some((
            at(Level::KabKota)?,
            at(Level::Provinsi)?,
            at(Level::Provinsi)?,
        )),
        Stratum::Noken => None,
    }
}

/// Where the broad peers' share comes from when the broad group holds no other TPS (a kecamatan with
/// one counted TPS early on election night, or in a sparse sample): the kabupaten/kota, then the
/// province, before the whole stratum. Without this a lone TPS was judged against the national share
/// (4.3% of a 20,000-TPS synthetic election flagged, against 0.0% at national density).
fn wider_codes(row: &TpsRow, stratum: Stratum) -> Vec<Code> {
    match stratum {
        Stratum::Regular => [Level::KabKota, Level::Provinsi]
            .into_iter()
            .filter_map(|level| row.tps.ancestor(level))
            .collect(),
        _ => Vec::new(),
    }
}

/// A prediction for one TPS and dimension.
#[derive(Clone, Copy, Debug)]
pub struct Prediction {
    /// The observed count and its trials (valid votes, or DPT).
    pub x: u32,
    pub n: u32,
    /// The predicted share from the peers.
    pub p: f64,
    /// Votes behind `p` (near peers plus the prior's weight).
    pub n_eff: f64,
    /// The calibrated rho of the TPS's group, and the effective rho including the uncertainty of `p`.
    pub rho: f64,
    pub rho_eff: f64,
}

impl Prediction {
    pub fn distribution(&self) -> BetaBinomial {
        BetaBinomial::with_mean(self.n, self.p, self.rho_eff)
    }

    /// The same prediction for another count and size (a different reading of the form).
    pub fn with_reading(&self, x: u32, n: u32) -> Prediction {
        Prediction {
            x,
            n,
            rho_eff: effective_rho(self.rho, n, self.n_eff),
            ..*self
        }
    }

    pub fn expected(&self) -> f64 {
        self.n as f64 * self.p
    }

    pub fn sd(&self) -> f64 {
        let n = self.n as f64;
        (n * self.p * (1.0 - self.p) * (1.0 + (n - 1.0) * self.rho_eff)).sqrt()
    }
}

fn effective_rho(rho: f64, n: u32, n_eff: f64) -> f64 {
    rho + (1.0 + (n as f64 - 1.0).max(0.0) * rho) / n_eff.max(1.0)
}

/// The fitted model: every group's sums and every calibration group's rho.
pub struct Model {
    pairs: usize,
    prior_votes: f64,
    groups: HashMap<(Stratum, Code), Sums>,
    strata: HashMap<Stratum, Sums>,
    rho: HashMap<(Stratum, Code, Dim), f64>,
    stratum_rho: HashMap<(Stratum, Dim), f64>,
}

impl Model {
    pub fn fit(rows: &[TpsRow], pairs: usize, settings: &Settings) -> Model {
        assert!(pairs <= MAX_PAIRS);
        let mut model = Model {
            pairs,
            prior_votes: settings.prior_votes,
            groups: HashMap::new(),
            strata: HashMap::new(),
            rho: HashMap::new(),
            stratum_rho: HashMap::new(),
        };
        for row in rows {
            let stratum = Stratum::of(row);
            let Some((near, broad, _)) = peer_codes(row, stratum) else {
                continue;
            };
            model.strata.entry(stratum).or_default().add(row);
            // Near and broad codes are of different levels, so they never share an entry.
            model.groups.entry((stratum, near)).or_default().add(row);
            model.groups.entry((stratum, broad)).or_default().add(row);
            for wider in wider_codes(row, stratum) {
                model.groups.entry((stratum, wider)).or_default().add(row);
            }
        }
        model.calibrate(rows, settings);
        model
    }

    pub fn dims(&self) -> impl Iterator<Item = Dim> {
        (0..self.pairs as u8)
            .map(Dim::Pair)
            .chain(std::iter::once(Dim::Turnout))
    }

    /// Sets rho per calibration group and dimension (see the module comment).
    fn calibrate(&mut self, rows: &[TpsRow], settings: &Settings) {
        let quantile_of = |dim: Dim| match dim {
            Dim::Turnout => settings.turnout_calibration_quantile,
            Dim::Pair(_) => settings.calibration_quantile,
        };
        // Residual inputs per (stratum, calibration code, dimension), rho not yet known.
        let mut inputs: HashMap<(Stratum, Code, Dim), Vec<Prediction>> = HashMap::new();
        for row in rows {
            let stratum = Stratum::of(row);
            let Some((_, _, calibration)) = peer_codes(row, stratum) else {
                continue;
            };
            for dim in self.dims().collect::<Vec<_>>() {
                if let Some(prediction) = self.predict_with_rho(row, dim, 0.0) {
                    inputs
                        .entry((stratum, calibration, dim))
                        .or_default()
                        .push(prediction);
                }
            }
        }
        let mut by_stratum: HashMap<(Stratum, Dim), Vec<Prediction>> = HashMap::new();
        for ((stratum, _, dim), predictions) in &inputs {
            by_stratum
                .entry((*stratum, *dim))
                .or_default()
                .extend_from_slice(predictions);
        }
        for (key, predictions) in &by_stratum {
            self.stratum_rho
                .insert(*key, calibrate_rho(predictions, quantile_of(key.1)));
        }
        for ((stratum, code, dim), predictions) in &inputs {
            if predictions.len() >= MIN_CALIBRATION_TPS {
                self.rho.insert(
                    (*stratum, *code, *dim),
                    calibrate_rho(predictions, quantile_of(*dim)),
                );
            }
        }
    }

    /// The calibrated rho for a row's group (None for noken rows, which have no model).
    pub fn rho_for(&self, row: &TpsRow, dim: Dim) -> Option<f64> {
        let stratum = Stratum::of(row);
        let (_, _, calibration) = peer_codes(row, stratum)?;
        self.rho
            .get(&(stratum, calibration, dim))
            .or_else(|| self.stratum_rho.get(&(stratum, dim)))
            .copied()
    }

    /// The prediction for one row and dimension; None where there is nothing to compare (noken, no
    /// votes or no DPT, no peers at all).
    pub fn predict(&self, row: &TpsRow, dim: Dim) -> Option<Prediction> {
        let rho = self.rho_for(row, dim)?;
        self.predict_with_rho(row, dim, rho)
    }

    fn predict_with_rho(&self, row: &TpsRow, dim: Dim, rho: f64) -> Option<Prediction> {
        let stratum = Stratum::of(row);
        let (near, broad, _) = peer_codes(row, stratum)?;
        let (x, n) = match dim {
            Dim::Pair(j) => (row.votes[j as usize], row.valid_votes()),
            Dim::Turnout => turnout_of(row)?,
        };
        if n == 0 {
            return None;
        }
        let (x64, n64) = (x as u64, n as u64);
        let (near_x, near_n) = self.groups.get(&(stratum, near))?.get(dim);
        let (near_x, near_n) = (near_x.saturating_sub(x64), near_n.saturating_sub(n64));
        let mut broad_share = None;
        for code in std::iter::once(broad).chain(wider_codes(row, stratum)) {
            let (bx, bn) = self.groups.get(&(stratum, code))?.get(dim);
            let (bx, bn) = (bx.saturating_sub(x64), bn.saturating_sub(n64));
            if bn > 0 {
                broad_share = Some(bx as f64 / bn as f64);
                break;
            }
        }
        let broad_share = match broad_share {
            Some(share) => share,
            None => {
                let (sx, sn) = self.strata.get(&stratum)?.get(dim);
                if sn > n64 {
                    sx.saturating_sub(x64) as f64 / (sn - n64) as f64
                } else {
                    return None;
                }
            }
        };
        let n_eff = near_n as f64 + self.prior_votes;
        let p = (near_x as f64 + self.prior_votes * broad_share) / n_eff;
        Some(Prediction {
            x,
            n,
            p,
            n_eff,
            rho,
            rho_eff: effective_rho(rho, n, n_eff),
        })
    }
}

/// The rho at which the `quantile` of the squared standardized residuals equals the chi-square(1)
/// distribution's.
fn calibrate_rho(predictions: &[Prediction], quantile: f64) -> f64 {
    let target = chi_square_1_quantile(quantile);
    let mut scratch = Vec::with_capacity(predictions.len());
    let mut quantile_z2 = |rho: f64| {
        scratch.clear();
        scratch.extend(predictions.iter().map(|p| {
            let n = p.n as f64;
            let share = p.p.clamp(1e-4, 1.0 - 1e-4);
            let rho_eff = effective_rho(rho, p.n, p.n_eff);
            let variance = n * share * (1.0 - share) * (1.0 + (n - 1.0) * rho_eff);
            (p.x as f64 - n * share).powi(2) / variance
        }));
        crate::math::quantile(&mut scratch, quantile).unwrap_or(0.0)
    };
    if predictions.is_empty() || quantile_z2(RHO_MIN) <= target {
        return RHO_MIN;
    }
    if quantile_z2(RHO_MAX) >= target {
        return RHO_MAX;
    }
    let (mut lo, mut hi) = (RHO_MIN.ln(), RHO_MAX.ln());
    // 40 halvings of a range of ln(9e4) ~ 11.4 leave 1e-11: far below any effect on a p-value.
    for _ in 0..40 {
        let mid = 0.5 * (lo + hi);
        if quantile_z2(mid.exp()) > target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (0.5 * (lo + hi)).exp()
}

/// The `q` quantile of a chi-square with one degree of freedom: the square of the standard normal's
/// (1 + q) / 2 quantile, found by bisection on the normal tail.
pub fn chi_square_1_quantile(q: f64) -> f64 {
    let tail = (1.0 - q) / 2.0;
    let (mut lo, mut hi) = (0.0f64, 40.0f64);
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if crate::math::normal_sf(mid) > tail {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let z = 0.5 * (lo + hi);
    z * z
}
