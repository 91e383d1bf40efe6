//! Recapitulation forms (D.Hasil) for every level of a generated election, honest by default, with
//! inflation of realistic kinds injected at known places (`truth.json` under `recap_inflation`).
//!
//! Honest recaps are the sums of the TPS's true figures. Injection sites are chosen only where every
//! TPS below was counted, so that an honest auditor can tell inflation from missing TPS.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::Path;

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use saksi_election::code::{Code, Level};
use saksi_election::recap::{Figures, RecapForm, RecapLevel, RecapRow};
use saksi_election::sign::SecretKey;
use saksi_election::Registry;

use crate::rng::Rng;
use crate::{Config, GenError};

/// About one injection of each kind per this many candidate regions (at least one of each).
const REGIONS_PER_INJECTION: usize = 400;

#[derive(Clone, Debug, Serialize)]
pub struct Inflation {
    /// kecamatan, kabkota, provinsi or nasional: the level of the recap form with the wrong figure.
    pub level: &'static str,
    /// The region whose recap form carries it ("nasional" at the top).
    pub region: String,
    /// The row's child region, or none when the form's total does not add up its rows.
    pub child: Option<String>,
    pub kind: &'static str,
    /// The change made, by field (`votes.02`, `valid`, `invalid`).
    pub delta: BTreeMap<String, i64>,
}

/// The key of a generated recapitulation committee (purpose "saksi-gen/recap-officer/v1\n").
pub fn recap_officer_key(seed: u64, region: Option<Code>) -> SecretKey {
    let mut hasher = Sha256::new();
    hasher.update(b"saksi-gen/recap-officer/v1\n");
    hasher.update(seed.to_le_bytes());
    hasher.update(
        region
            .map_or("nasional".to_string(), |c| c.to_string())
            .as_bytes(),
    );
    SecretKey::from_seed(hasher.finalize().into())
}

fn figures_zero(positions: &[String]) -> Figures {
    Figures {
        votes: positions.iter().map(|p| (p.clone(), 0)).collect(),
        ..Default::default()
    }
}

pub fn write_recaps(
    config: &Config,
    dir: &Path,
    registry: &Registry,
    honest: &[(Code, Figures, bool)],
) -> Result<Vec<Inflation>, GenError> {
    let positions: Vec<String> = vec!["01".into(), "02".into(), "03".into()];
    // True sums and coverage per region, from the TPS up.
    let mut sums: HashMap<Option<Code>, Figures> = HashMap::new();
    let mut complete: HashMap<Option<Code>, bool> = HashMap::new();
    let mut has_tps: HashSet<Option<Code>> = HashSet::new();
    for (tps, figures, counted) in honest {
        let regions = [
            Level::Desa,
            Level::Kecamatan,
            Level::KabKota,
            Level::Provinsi,
        ]
        .into_iter()
        .map(|l| tps.ancestor(l))
        .chain([None]);
        for region in regions {
            sums.entry(region)
                .or_insert_with(|| figures_zero(&positions))
                .add(figures);
            let entry = complete.entry(region).or_insert(true);
            *entry &= *counted;
            has_tps.insert(region);
        }
    }
    let sum_of = |region: Option<Code>| {
        sums.get(&region)
            .cloned()
            .unwrap_or_else(|| figures_zero(&positions))
    };
    let recap_regions: Vec<Option<Code>> = registry
        .regions()
        .map(|(c, _)| c)
        .filter(|c| {
            matches!(
                c.level(),
                Level::Kecamatan | Level::KabKota | Level::Provinsi
            )
        })
        .map(Some)
        .chain([None])
        .filter(|r| has_tps.contains(r))
        .collect();
    let mut forms: BTreeMap<(RecapLevel, Option<Code>), RecapForm> = BTreeMap::new();
    for region in recap_regions {
        let level = RecapLevel::of_region(region).expect("recap regions have recap levels");
        let rows = registry
            .child_regions(region)
            .into_iter()
            .map(|child| RecapRow {
                child,
                figures: sum_of(Some(child)),
            })
            .collect();
        let form = RecapForm {
            election: "pemilu-2024".into(),
            contest: "ppwp".into(),
            level,
            region,
            rows,
            total: sum_of(region),
            signer: recap_officer_key(config.seed, region).public(),
            correction: None,
        };
        forms.insert((level, region), form);
    }

    // Injection.
    let mut injected = Vec::new();
    if config.fault_rate > 0.0 {
        let mut rng = Rng::new(config.seed, 0, 0x4ec4);
        let mut used: HashSet<(RecapLevel, Option<Code>)> = HashSet::new();
        let clean_kec: Vec<Code> = forms
            .keys()
            .filter(|(l, r)| *l == RecapLevel::Kecamatan && complete.get(r) == Some(&true))
            .filter_map(|(_, r)| *r)
            .collect();
        let clean_kab: Vec<Code> = forms
            .keys()
            .filter(|(l, r)| *l == RecapLevel::KabKota && complete.get(r) == Some(&true))
            .filter_map(|(_, r)| *r)
            .collect();
        let per_kind = (clean_kec.len() / REGIONS_PER_INJECTION).max(1);
        let kinds = [
            "votes_added",
            "votes_moved",
            "desa_changed",
            "kabkota_votes_added",
            "total_not_sum_of_rows",
        ];
        for kind in kinds {
            for _ in 0..per_kind {
                let pool = if kind == "kabkota_votes_added" || kind == "total_not_sum_of_rows" {
                    &clean_kab
                } else {
                    &clean_kec
                };
                if pool.is_empty() {
                    continue;
                }
                let mut region = pool[rng.range(0, pool.len() as i64 - 1) as usize];
                let mut level = if pool == &clean_kab {
                    RecapLevel::KabKota
                } else {
                    RecapLevel::Kecamatan
                };
                if kind == "total_not_sum_of_rows" && rng.unit() < 0.5 {
                    region = region
                        .ancestor(Level::Provinsi)
                        .expect("a kabkota has a province");
                    level = RecapLevel::Provinsi;
                }
                if !used.insert((level, Some(region))) {
                    continue;
                }
                let form = forms
                    .get_mut(&(level, Some(region)))
                    .expect("the form exists");
                let delta_size = rng.range(50, 500);
                let p = rng.range(0, 2) as usize;
                let q = (p + 1 + rng.range(0, 1) as usize) % 3;
                let mut delta = BTreeMap::new();
                let with_votes: Vec<usize> = (0..form.rows.len())
                    .filter(|&i| form.rows[i].figures.valid > 0)
                    .collect();
                if with_votes.is_empty() {
                    continue;
                }
                let row = with_votes[rng.range(0, with_votes.len() as i64 - 1) as usize];
                let mut child = Some(form.rows[row].child.to_string());
                // The amount is fixed from the row, so the row and the total change alike.
                let delta_size = match kind {
                    "votes_moved" => delta_size.min(form.rows[row].figures.votes[q].1),
                    "desa_changed" => delta_size.min(form.rows[row].figures.votes[p].1),
                    _ => delta_size,
                };
                let apply =
                    |f: &mut Figures, delta: &mut BTreeMap<String, i64>, record: bool| match kind {
                        "votes_added" | "kabkota_votes_added" | "total_not_sum_of_rows" => {
                            f.votes[p].1 += delta_size;
                            f.valid += delta_size;
                            if record {
                                delta.insert(format!("votes.{}", positions[p]), delta_size);
                                delta.insert("valid".into(), delta_size);
                            }
                        }
                        "votes_moved" => {
                            let moved = delta_size;
                            f.votes[p].1 += moved;
                            f.votes[q].1 -= moved;
                            if record {
                                delta.insert(format!("votes.{}", positions[p]), moved);
                                delta.insert(format!("votes.{}", positions[q]), -moved);
                            }
                        }
                        _ => {
                            // desa_changed: valid votes of one pair turned into invalid ones.
                            let changed = delta_size;
                            f.votes[p].1 -= changed;
                            f.valid -= changed;
                            f.invalid += changed;
                            if record {
                                delta.insert(format!("votes.{}", positions[p]), -changed);
                                delta.insert("valid".into(), -changed);
                                delta.insert("invalid".into(), changed);
                            }
                        }
                    };
                if kind == "total_not_sum_of_rows" {
                    apply(&mut form.total, &mut delta, true);
                    child = None;
                } else {
                    apply(&mut form.rows[row].figures, &mut delta, true);
                    apply(&mut form.total, &mut delta, false);
                }
                if delta.values().all(|v| *v == 0) {
                    continue;
                }
                injected.push(Inflation {
                    level: level.as_str(),
                    region: region.to_string(),
                    child,
                    kind: match kind {
                        "kabkota_votes_added" => "votes_added",
                        other => other,
                    },
                    delta,
                });
            }
        }
    }

    let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("recap.ndjson"))?);
    for ((_, region), form) in forms {
        let signed = form.sign(&recap_officer_key(config.seed, region));
        out.write_all(&signed.encode())?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(injected)
}
