//! Catching vote inflation ("penggelembungan") across the recapitulation levels: each recap figure
//! is compared with the sum of what is below it, and every difference is recorded with its level,
//! region, child, fields, values, delta per field and a classification.
//!
//! For each region's current (latest accepted) recap form, each row is compared with the sum of the
//! accepted TPS forms under its child when every TPS there is counted (basis "tps"). Where TPS are
//! still missing the row is reported as coverage, not inflation, and compared with the child's own
//! recap form instead, if there is one (basis "recap"). A row that agrees with the TPS but not with
//! the child's recap points at the child's recap, which its own check reports: so each inflation is
//! reported once, where it was written. A recap form whose total does not add up its rows (rejected
//! by `RECAP_TOTAL_SUM`) is reported with the difference (basis "rows").

use std::collections::BTreeMap;

use saksi_election::code::Code;
use saksi_election::recap::{Figures, RecapLevel};
use saksi_election::rules::codes;

use crate::state::{State, Tally};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldDelta {
    pub recap: i64,
    pub below: i64,
    pub delta: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discrepancy {
    pub level: RecapLevel,
    pub region: Option<Code>,
    pub child: Option<Code>,
    /// tps, recap or rows.
    pub basis: &'static str,
    pub kind: &'static str,
    /// Only the fields that differ, by name (`votes.02`, `valid`, `invalid`, `voters`).
    pub fields: BTreeMap<String, FieldDelta>,
    /// Log index of the recap form.
    pub index: u64,
}

impl Discrepancy {
    /// Sum of the absolute vote deltas: the order of the report.
    pub fn magnitude(&self) -> i64 {
        self.fields
            .iter()
            .filter(|(k, _)| k.starts_with("votes."))
            .map(|(_, f)| f.delta.abs())
            .sum::<i64>()
            + self.fields.get("valid").map_or(0, |f| f.delta.abs())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Coverage {
    pub level: RecapLevel,
    pub region: Option<Code>,
    pub child: Code,
    pub tps_reported: u64,
    pub tps_total: u64,
}

fn figures_of_tally(tally: &Tally, positions: &[String]) -> Figures {
    Figures {
        votes: positions
            .iter()
            .cloned()
            .zip(tally.votes.iter().copied().chain(std::iter::repeat(0)))
            .collect(),
        valid: tally.valid,
        invalid: tally.invalid,
        voters: tally.voters,
    }
}

fn compare(
    recap: &Figures,
    below: &Figures,
    positions: &[String],
    with_voters: bool,
) -> BTreeMap<String, FieldDelta> {
    let mut fields = BTreeMap::new();
    let mut put = |name: String, r: i64, b: i64| {
        if r != b {
            fields.insert(
                name,
                FieldDelta {
                    recap: r,
                    below: b,
                    delta: r - b,
                },
            );
        }
    };
    for p in positions {
        put(format!("votes.{p}"), recap.vote(p), below.vote(p));
    }
    put("valid".into(), recap.valid, below.valid);
    put("invalid".into(), recap.invalid, below.invalid);
    if with_voters {
        put("voters".into(), recap.voters, below.voters);
    }
    fields
}

/// Names the pattern of a difference.
pub fn classify(fields: &BTreeMap<String, FieldDelta>) -> &'static str {
    let votes: Vec<i64> = fields
        .iter()
        .filter(|(k, _)| k.starts_with("votes."))
        .map(|(_, f)| f.delta)
        .collect();
    let valid = fields.get("valid").map_or(0, |f| f.delta);
    let invalid = fields.get("invalid").map_or(0, |f| f.delta);
    let up = votes.iter().filter(|d| **d > 0).count();
    let down = votes.iter().filter(|d| **d < 0).count();
    if votes.is_empty() && valid == 0 && invalid == 0 {
        "voters_changed"
    } else if invalid != 0 && valid == -invalid {
        "valid_invalid_shift"
    } else if up >= 1 && down >= 1 && votes.iter().sum::<i64>() == 0 {
        "votes_moved"
    } else if up >= 1 && down == 0 {
        "votes_added"
    } else if down >= 1 && up == 0 {
        "votes_removed"
    } else {
        "other"
    }
}

/// Every discrepancy in the state, largest first, and the coverage gaps met on the way.
pub fn discrepancies(state: &State) -> (Vec<Discrepancy>, Vec<Coverage>) {
    let mut found = Vec::new();
    let mut coverage = Vec::new();
    for key in state.recaps.keys() {
        check_region(state, *key, &mut found, &mut coverage);
    }
    found.sort_by(|a, b| {
        b.magnitude()
            .cmp(&a.magnitude())
            .then(a.level.cmp(&b.level))
            .then(a.region.cmp(&b.region))
    });
    (found, coverage)
}

/// The discrepancies of one region's recap form (for a region's page).
pub fn discrepancies_of(
    state: &State,
    level: RecapLevel,
    region: Option<Code>,
) -> Vec<Discrepancy> {
    let (mut found, mut coverage) = (Vec::new(), Vec::new());
    check_region(state, (level, region), &mut found, &mut coverage);
    found
}

fn check_region(
    state: &State,
    key: (RecapLevel, Option<Code>),
    found: &mut Vec<Discrepancy>,
    coverage: &mut Vec<Coverage>,
) {
    let positions = state.positions().to_vec();
    let (level, region) = key;
    let Some(record) = state.recaps.get(&key) else {
        return;
    };
    if let Some((index, form, verdict)) = &record.latest {
        if !verdict.accepted
            && verdict
                .rejected_by
                .iter()
                .any(|c| c == codes::RECAP_TOTAL_SUM)
        {
            let mut rows = Figures {
                votes: positions.iter().map(|p| (p.clone(), 0)).collect(),
                ..Default::default()
            };
            for row in &form.rows {
                rows.add(&row.figures);
            }
            let fields = compare(&form.total, &rows, &positions, true);
            found.push(Discrepancy {
                level,
                region,
                child: None,
                basis: "rows",
                kind: "total_not_sum_of_rows",
                fields,
                index: *index,
            });
        }
        if !verdict.accepted
            && verdict
                .rejected_by
                .iter()
                .any(|c| c == codes::RECAP_CHILDREN)
        {
            // A child left out (its votes vanish) or one that does not belong (votes from nowhere).
            let children = state.registry.child_regions(region);
            let empty = Tally::default();
            for child in &children {
                if !form.rows.iter().any(|r| r.child == *child) {
                    let below = figures_of_tally(state.tally(*child).unwrap_or(&empty), &positions);
                    let zero = Figures {
                        votes: positions.iter().map(|p| (p.clone(), 0)).collect(),
                        ..Default::default()
                    };
                    let fields = compare(&zero, &below, &positions, false);
                    found.push(Discrepancy {
                        level,
                        region,
                        child: Some(*child),
                        basis: "tps",
                        kind: "child_missing",
                        fields,
                        index: *index,
                    });
                }
            }
            for row in form.rows.iter().filter(|r| !children.contains(&r.child)) {
                let zero = Figures {
                    votes: positions.iter().map(|p| (p.clone(), 0)).collect(),
                    ..Default::default()
                };
                let fields = compare(&row.figures, &zero, &positions, false);
                found.push(Discrepancy {
                    level,
                    region,
                    child: Some(row.child),
                    basis: "tps",
                    kind: "child_extra",
                    fields,
                    index: *index,
                });
            }
        }
    }
    let Some((index, form)) = &record.current else {
        return;
    };
    for row in &form.rows {
        let empty = Tally::default();
        let tally = state.tally(row.child).unwrap_or(&empty);
        let complete = tally.tps_reported == tally.tps_total;
        let child_recap = state
            .recaps
            .get(&(child_level(level), Some(row.child)))
            .and_then(|r| r.current.as_ref())
            .map(|(_, f)| f.total.clone());
        let (basis, below) = if complete {
            ("tps", figures_of_tally(tally, &positions))
        } else {
            coverage.push(Coverage {
                level,
                region,
                child: row.child,
                tps_reported: tally.tps_reported,
                tps_total: tally.tps_total,
            });
            match child_recap {
                Some(total) => ("recap", total),
                None => continue,
            }
        };
        let fields = compare(&row.figures, &below, &positions, false);
        if !fields.is_empty() {
            let kind = classify(&fields);
            found.push(Discrepancy {
                level,
                region,
                child: Some(row.child),
                basis,
                kind,
                fields,
                index: *index,
            });
        }
    }
}

/// The recap level of a row's child (kecamatan rows are desa: no recap form of their own).
fn child_level(level: RecapLevel) -> RecapLevel {
    match level {
        RecapLevel::Nasional => RecapLevel::Provinsi,
        RecapLevel::Provinsi => RecapLevel::KabKota,
        RecapLevel::KabKota => RecapLevel::Kecamatan,
        // Desa have no recap form: a lookup that finds nothing.
        RecapLevel::Kecamatan => RecapLevel::Nasional,
    }
}
