//! One TPS's synthetic figures: DPT, turnout, DPTb/DPK voters, ballots, invalid votes and pair shares,
//! drawn so that they vary smoothly by region (a province leans one way, its regencies a little
//! differently, its villages a little more) and always satisfy every rule of the rulebook.

use saksi_election::code::{is_noken, Code, Level};
use saksi_election::form::{Ballots, CHasil, Disability, Lpj, PhotoDigest, VoterRows};
use saksi_election::registry::{Lp, TpsKind};
use saksi_election::rules::{ballot_cap, REGULAR_DPT_CAP};
use saksi_election::sign::PublicKey;

use crate::rng::{region_noise, Rng};

/// National vote shares in 2024 (KPU 360/2024): 24.9%, 58.6%, 16.5%. Regions scatter around them.
const NATIONAL_SHARES: [f64; 3] = [0.249, 0.586, 0.165];
/// Share of TPS in noken provinces that vote as a bloc.
const NOKEN_BLOC_SHARE: f64 = 0.4;

const PURPOSE_DPT: u64 = 1;
const PURPOSE_TALLY: u64 = 2;

/// The registered voters of a TPS, by kind.
pub fn draw_dpt(seed: u64, code: Code, kind: TpsKind) -> Lp {
    let mut rng = Rng::new(seed, code.as_u64(), PURPOSE_DPT);
    let total = match kind {
        // Mostly 150..300: KPU fills TPS up to the cap, with smaller ones in sparse villages.
        TpsKind::Regular => (250.0 + 45.0 * rng.normal())
            .round()
            .clamp(40.0, REGULAR_DPT_CAP as f64) as i64,
        // Prisons and dormitories: most under 300, some far above.
        TpsKind::Khusus => {
            if rng.unit() < 0.8 {
                rng.range(60, 300)
            } else {
                rng.range(301, 700)
            }
        }
        TpsKind::Tpsln => rng.range(150, 900),
        TpsKind::Ksk => rng.range(50, 1500),
        TpsKind::Pos => rng.range(200, 4000),
    };
    let l = ((total as f64) * (0.5 + 0.03 * rng.normal()))
        .round()
        .clamp(0.0, total as f64) as i64;
    Lp {
        l: l as u32,
        p: (total - l) as u32,
    }
}

fn split(rng: &mut Rng, total: i64) -> Lpj {
    let l = ((total as f64) * (0.49 + 0.04 * rng.normal()))
        .round()
        .clamp(0.0, total as f64) as i64;
    Lpj {
        l,
        p: total - l,
        j: total,
    }
}

fn lpj_sum(rows: [Lpj; 3]) -> Lpj {
    Lpj {
        l: rows.iter().map(|r| r.l).sum(),
        p: rows.iter().map(|r| r.p).sum(),
        j: rows.iter().map(|r| r.j).sum(),
    }
}

/// Splits `total` into parts proportional to `weights`, exactly (largest remainder).
pub fn apportion(total: i64, weights: &[f64]) -> Vec<i64> {
    let sum: f64 = weights.iter().sum();
    let exact: Vec<f64> = weights.iter().map(|w| total as f64 * w / sum).collect();
    let mut parts: Vec<i64> = exact.iter().map(|x| x.floor() as i64).collect();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| {
        (exact[b] - exact[b].floor())
            .total_cmp(&(exact[a] - exact[a].floor()))
            .then(a.cmp(&b))
    });
    let missing = total - parts.iter().sum::<i64>();
    for &i in order.iter().take(missing.max(0) as usize) {
        parts[i] += 1;
    }
    parts
}

fn pair_shares(seed: u64, code: Code, rng: &mut Rng) -> [f64; 3] {
    let mut logits = [0.0; 3];
    for (i, logit) in logits.iter_mut().enumerate() {
        let channel = i as u64;
        *logit = NATIONAL_SHARES[i].ln()
            + 0.8
                * region_noise(
                    seed,
                    code.ancestor(Level::Provinsi).unwrap().as_u64(),
                    channel,
                )
            + 0.4
                * region_noise(
                    seed,
                    code.ancestor(Level::KabKota).unwrap().as_u64(),
                    channel,
                )
            + 0.2
                * region_noise(
                    seed,
                    code.ancestor(Level::Kecamatan).unwrap().as_u64(),
                    channel,
                )
            + 0.1 * region_noise(seed, code.ancestor(Level::Desa).unwrap().as_u64(), channel)
            + 0.12 * rng.normal();
    }
    let max = logits.iter().cloned().fold(f64::MIN, f64::max);
    let exp: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
    let sum: f64 = exp.iter().sum();
    [exp[0] / sum, exp[1] / sum, exp[2] / sum]
}

/// An honest form for one TPS: every rule holds.
pub fn honest_form(seed: u64, code: Code, kind: TpsKind, dpt: Lp, signer: PublicKey) -> CHasil {
    let mut rng = Rng::new(seed, code.as_u64(), PURPOSE_TALLY);
    let dpt_total = dpt.total() as i64;
    let cap = ballot_cap(dpt_total);
    let noken_bloc = is_noken(code) && kind == TpsKind::Regular && rng.unit() < NOKEN_BLOC_SHARE;

    let turnout = if noken_bloc {
        1.0
    } else {
        let base = match kind {
            TpsKind::Regular | TpsKind::Khusus => 0.82,
            // Overseas turnout was far lower, postal lowest.
            TpsKind::Tpsln => 0.55,
            TpsKind::Ksk => 0.6,
            TpsKind::Pos => 0.4,
        };
        (base
            + 0.05 * region_noise(seed, code.ancestor(Level::KabKota).unwrap().as_u64(), 10)
            + 0.03 * region_noise(seed, code.ancestor(Level::Kecamatan).unwrap().as_u64(), 10)
            + 0.03 * rng.normal())
        .clamp(0.3, 0.97)
    };
    let voted_dpt_total = ((dpt_total as f64) * turnout).round() as i64;
    let (dptb_voters, dpk_voters) = if noken_bloc {
        (0, 0)
    } else {
        (rng.poisson(1.5), rng.poisson(0.8))
    };
    // Voters never exceed the ballots a TPS has: trim DPTb/DPK first.
    let room = cap - voted_dpt_total;
    let dptb_voters = dptb_voters.min(room.max(0));
    let dpk_voters = dpk_voters.min((room - dptb_voters).max(0));

    let registered_dpt = Lpj {
        l: dpt.l as i64,
        p: dpt.p as i64,
        j: dpt_total,
    };
    let voted_dpt = {
        // Split voters between L and P without exceeding either registered column.
        let l = ((voted_dpt_total as f64) * (dpt.l as f64 / dpt_total.max(1) as f64) + rng.normal())
            .round()
            .clamp(
                (voted_dpt_total - dpt.p as i64).max(0) as f64,
                (dpt.l as i64).min(voted_dpt_total) as f64,
            ) as i64;
        Lpj {
            l,
            p: voted_dpt_total - l,
            j: voted_dpt_total,
        }
    };
    let voted_dptb = split(&mut rng, dptb_voters);
    let registered_dptb = {
        let extra_count = rng.poisson(0.5);
        let extra = split(&mut rng, extra_count);
        lpj_sum([voted_dptb, extra, Lpj::default()])
    };
    let voted_dpk = split(&mut rng, dpk_voters);
    let registered_dpk = voted_dpk; // DPK voters register by turning up with an ID card.
    let voted_total = lpj_sum([voted_dpt, voted_dptb, voted_dpk]);
    let registered_total = lpj_sum([registered_dpt, registered_dptb, registered_dpk]);

    let voters = voted_total.j;
    let invalid = if noken_bloc {
        0
    } else {
        ((voters as f64) * (0.01 + 0.025 * rng.unit())).round() as i64
    };
    let valid = voters - invalid;
    let votes = if noken_bloc {
        let shares = pair_shares(seed, code, &mut rng);
        let winner = if rng.unit() < shares[0] {
            0
        } else if rng.unit() < shares[1] / (shares[1] + shares[2]) {
            1
        } else {
            2
        };
        let mut v = vec![0; 3];
        v[winner] = valid;
        v
    } else {
        apportion(valid, &pair_shares(seed, code, &mut rng))
    };

    let damaged = rng.range(0, 3).min(cap - voters);
    let disability_count = rng.poisson(1.2);
    let disability_registered = split(&mut rng, disability_count);
    let disability_voted = {
        let j = ((disability_registered.j as f64) * 0.7).round() as i64;
        let j = j.min(voters);
        let l = disability_registered.l.min(j);
        Lpj { l, p: j - l, j }
    };
    // The digests of real (synthetic) photos, which `saksi gen --photos` writes.
    let evidence = (1..=crate::photo::PAGES)
        .map(|page| PhotoDigest::of(&crate::photo::photo_png(seed, code, page)))
        .collect();
    CHasil {
        election: "pemilu-2024".into(),
        contest: "ppwp".into(),
        correction: None,
        tps: code,
        registered: VoterRows {
            dpt: registered_dpt,
            dptb: registered_dptb,
            dpk: registered_dpk,
            total: registered_total,
        },
        voted: VoterRows {
            dpt: voted_dpt,
            dptb: voted_dptb,
            dpk: voted_dpk,
            total: voted_total,
        },
        disability: Disability {
            registered: disability_registered,
            voted: disability_voted,
        },
        ballots: Ballots {
            received: cap,
            used: voters,
            damaged,
            unused: cap - voters - damaged,
        },
        votes: vec![
            ("01".into(), votes[0]),
            ("02".into(), votes[1]),
            ("03".into(), votes[2]),
        ],
        valid,
        invalid,
        total: voters,
        evidence,
        signer,
    }
}
