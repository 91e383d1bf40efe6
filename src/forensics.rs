//! `saksi audit forensics` and `saksi eval forensics`: the edge between files (Sirekap CSV, a data
//! directory) and the forensics crate, and the evaluation that measures it on real 2024 rows.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use saksi_election::rules::{check_sheet, TpsFacts};
use saksi_election::sheet::{Col, Field, Row, Sheet};
use saksi_election::sirekap::{SirekapColumns, SirekapRow};
use saksi_election::{Code, Election, Level, Registry};
use saksi_forensics::{analyze, Analysis, Settings, Stratum, TpsRow};
use saksi_gen::rng::Rng;

use crate::cli::AuditForensicsArgs;

/// Sirekap rows the rulebook accepts, with what the rulebook knew of each TPS.
struct Accepted {
    sheets: Vec<(Sheet, TpsFacts)>,
    lines: usize,
    rejected: usize,
    unusable: usize,
}

fn load_sirekap(paths: &[PathBuf], registry: Option<&Registry>) -> Result<Accepted> {
    let election = Election::pemilu_2024();
    let mut accepted = Accepted {
        sheets: Vec::new(),
        lines: 0,
        rejected: 0,
        unusable: 0,
    };
    for path in paths {
        let mut lines = crate::check::open_maybe_gz(path)?.lines();
        let header = lines
            .next()
            .context("empty file")?
            .with_context(|| format!("reading {}", path.display()))?;
        let columns =
            SirekapColumns::from_header(&header).with_context(|| format!("{}", path.display()))?;
        for (index, line) in lines.enumerate() {
            let line = line.with_context(|| format!("reading {}", path.display()))?;
            if line.is_empty() {
                continue;
            }
            accepted.lines += 1;
            let Ok(SirekapRow::Reported(sheet)) = columns.parse(&line, index + 2) else {
                accepted.unusable += 1;
                continue;
            };
            let facts = crate::check::facts_for(sheet.tps, registry);
            if !check_sheet(&sheet, facts, &election).accepted() {
                accepted.rejected += 1;
                continue;
            }
            match facts {
                Some(facts) => accepted.sheets.push((sheet, facts)),
                None => accepted.unusable += 1,
            }
            if accepted.sheets.len() > saksi_forensics::MAX_ROWS {
                bail!("more than {} rows", saksi_forensics::MAX_ROWS);
            }
        }
    }
    Ok(accepted)
}

fn to_u32(value: Option<i64>) -> Option<u32> {
    value.and_then(|v| u32::try_from(v).ok())
}

/// The forensics' view of an accepted sheet; None when a pair's count is missing.
fn row_from_sheet(sheet: &Sheet, facts: &TpsFacts) -> Option<TpsRow> {
    let votes: Option<Vec<u32>> = sheet.votes.iter().map(|(_, v)| to_u32(*v)).collect();
    Some(TpsRow {
        tps: sheet.tps,
        kind: facts.kind,
        dpt: facts
            .dpt
            .map(|lp| lp.total())
            .or_else(|| to_u32(sheet.get(Field::registered(Row::Dpt, Col::J)))),
        // Voters from the DPT list, who cannot exceed it: total voters also count DPTb and DPK voters,
        // who lawfully take a TPS past 100% of its DPT.
        voters: to_u32(sheet.get(Field::voted(Row::Dpt, Col::J)))
            .or_else(|| to_u32(sheet.get(Field::voted(Row::Total, Col::J))))
            .or_else(|| to_u32(sheet.get(Field::TOTAL))),
        votes: votes?,
        disagreeing_copies: false,
    })
}

fn pair_labels(sheets: &[(Sheet, TpsFacts)]) -> Vec<String> {
    sheets
        .first()
        .map(|(s, _)| {
            s.votes
                .iter()
                .map(|(label, _)| format!("paslon {label}"))
                .collect()
        })
        .unwrap_or_default()
}

pub fn audit(args: AuditForensicsArgs) -> Result<u8> {
    let started = Instant::now();
    let (rows, pairs, preamble) = if let Some(data) = &args.data {
        rows_from_data_dir(data)?
    } else {
        let registry = match &args.kpu_registry {
            Some(path) => Some(crate::ops::load_kpu_registry(path)?),
            None => None,
        };
        let accepted = load_sirekap(&args.sirekap, registry.as_ref())?;
        let pairs = pair_labels(&accepted.sheets);
        let rows: Vec<TpsRow> = accepted
            .sheets
            .iter()
            .filter_map(|(s, f)| row_from_sheet(s, f))
            .collect();
        let preamble = format!(
            "{} rows read: {} rejected by the rulebook, {} unusable (not reported or unparsable), {} scored",
            accepted.lines,
            accepted.rejected,
            accepted.unusable,
            rows.len()
        );
        (rows, pairs, preamble)
    };
    if rows.is_empty() {
        bail!("no accepted TPS results to score");
    }
    let settings = Settings {
        fdr: args.fdr,
        ..Settings::default()
    };
    let loaded_seconds = started.elapsed().as_secs_f64();
    let scoring = Instant::now();
    let analysis = analyze(&rows, &pairs, &settings)?;
    let timing = format!(
        "scored {} TPS in {:.1}s ({loaded_seconds:.1}s reading them)",
        rows.len(),
        scoring.elapsed().as_secs_f64()
    );
    if args.json {
        print_json(&analysis)?;
        eprintln!("{timing}");
    } else {
        print_text(&analysis, &preamble, args.show)?;
        println!("\n{timing}");
    }
    Ok(0)
}

/// The accepted results of a data directory's log, with poll witnesses' disagreements.
fn rows_from_data_dir(data: &Path) -> Result<(Vec<TpsRow>, Vec<String>, String)> {
    let engine = saksi_recap::Engine::open(data)?;
    let shared = engine.shared();
    let state = shared.state.read().expect("not poisoned");
    let (rows, pairs, left_out) = saksi_server::flags::rows_from_state(&state);
    let preamble = format!(
        "{} accepted TPS results in {} ({left_out} left out: a pair's count not reported)",
        rows.len() + left_out,
        data.display(),
    );
    Ok((rows, pairs, preamble))
}

fn print_json(analysis: &Analysis) -> Result<()> {
    let flagged: Vec<_> = analysis.tps.iter().filter(|t| t.flagged).collect();
    let out = serde_json::json!({
        "fdr": analysis.fdr,
        "pairs": analysis.pairs,
        "rows_by_stratum": analysis.rows_by_stratum.iter().map(|(s, n)| (s.name(), n)).collect::<std::collections::BTreeMap<_, _>>(),
        "tps": flagged,
        "regions": analysis.regions,
    });
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer(&mut stdout, &out)?;
    writeln!(stdout)?;
    Ok(())
}

fn print_text(analysis: &Analysis, preamble: &str, show: usize) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{preamble}")?;
    let strata: Vec<String> = analysis
        .rows_by_stratum
        .iter()
        .map(|(s, n)| format!("{} {n}", s.name()))
        .collect();
    writeln!(
        out,
        "strata: {} (noken TPS are not tested: a bloc vote is lawful there)",
        strata.join(", ")
    )?;
    let mut flagged: Vec<_> = analysis.tps.iter().filter(|t| t.flagged).collect();
    flagged.sort_by(|a, b| b.score.total_cmp(&a.score));
    let tested = analysis.tested;
    writeln!(
        out,
        "{} of {tested} tested TPS flagged at FDR {} ({:.2}%)",
        flagged.len(),
        analysis.fdr,
        100.0 * flagged.len() as f64 / tested.max(1) as f64
    )?;
    for score in flagged.iter().take(show) {
        writeln!(
            out,
            "\n  TPS {} ({}), score {:.1}, q = {:.1e}",
            score.tps,
            score.stratum.name(),
            score.score,
            score.q
        )?;
        for test in &score.tests {
            writeln!(out, "    {} p = {:.1e}: {}", test.code, test.p, test.en)?;
        }
    }
    if flagged.len() > show {
        writeln!(
            out,
            "\n  ... and {} more (--show N, or --json for all)",
            flagged.len() - show
        )?;
    }
    let tested_regions: Vec<_> = analysis
        .regions
        .iter()
        .filter(|r| r.tests.iter().any(|t| t.applicable))
        .collect();
    let flagged_regions: Vec<_> = tested_regions.iter().filter(|r| r.flagged).collect();
    writeln!(
        out,
        "\n{} of {} tested regions flagged (digit tests); {} not tested (noken, overseas)",
        flagged_regions.len(),
        tested_regions.len(),
        analysis
            .regions
            .iter()
            .filter(|r| r.not_tested.is_some())
            .count()
    )?;
    for region in flagged_regions.iter().take(show) {
        writeln!(
            out,
            "  {} {} ({} TPS), q = {:.1e}",
            region.level, region.region, region.tps, region.q
        )?;
        for test in region.tests.iter().filter(|t| t.applicable) {
            writeln!(out, "    {}: {}", test.code, test.en)?;
        }
    }
    let mut fingerprints: Vec<_> = analysis
        .regions
        .iter()
        .filter(|r| r.level == "provinsi")
        .filter_map(|r| r.fingerprint.as_ref().map(|f| (r, f)))
        .collect();
    fingerprints.sort_by(|a, b| {
        (b.1.incremental + b.1.extreme).total_cmp(&(a.1.incremental + a.1.extreme))
    });
    writeln!(
        out,
        "\nfingerprints per province (descriptive), largest fitted fraud fractions first:"
    )?;
    for (region, f) in fingerprints.iter().take(show) {
        writeln!(
            out,
            "  {} ({} TPS): f_i {:.1}%, f_e {:.1}%, r(turnout, {} share) = {:.2}",
            region.region,
            region.tps,
            100.0 * f.incremental,
            100.0 * f.extreme,
            f.winner,
            f.turnout_share_r
        )?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The evaluation.

/// The faults the evaluation injects, each in its own run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// A hundreds digit added (x < 100) or changed (x >= 100) in one pair's count; only the pair
    /// counts (and DPT) reported, as in Sirekap rows read from the first page only.
    MisreadPairsOnly,
    /// The same misread with every other field as the form had it.
    MisreadAllFields,
    /// A fraction of the TPS's voters added as ballots for one pair, every field kept consistent.
    Stuffing(u8),
    /// 20% of the TPS's votes moved from the largest other pair to one pair.
    Switching,
    /// Another TPS of the same desa's form copied (every figure).
    Copied,
}

impl Fault {
    fn all() -> [Fault; 7] {
        [
            Fault::MisreadPairsOnly,
            Fault::MisreadAllFields,
            Fault::Stuffing(10),
            Fault::Stuffing(20),
            Fault::Stuffing(50),
            Fault::Switching,
            Fault::Copied,
        ]
    }

    fn name(self) -> String {
        match self {
            Fault::MisreadPairsOnly => "misread hundreds digit, pair counts only".to_string(),
            Fault::MisreadAllFields => "misread hundreds digit, all fields".to_string(),
            Fault::Stuffing(p) => format!("consistent stuffing {p}%"),
            Fault::Switching => "switching 20% between pairs".to_string(),
            Fault::Copied => "copied figures (same desa)".to_string(),
        }
    }
}

/// The stream purpose of the evaluation's samples ("eval").
const EVAL_PURPOSE: u64 = 0x6576_616c;

/// Uniform in 0..n (n > 0), from the generator's SplitMix64: the evaluation's only randomness, one
/// stream per (seed, fault type).
fn below(rng: &mut Rng, n: usize) -> usize {
    rng.range(0, n as i64 - 1) as usize
}

fn add(sheet: &mut Sheet, field: Field, delta: i64) {
    let value = sheet.get(field).unwrap_or(0) + delta;
    sheet.set(field, Some(value));
}

/// Adds `extra` voters who all voted validly for pair `pair`, keeping every sum on the form true:
/// into the DPT rows while the DPT has room, the rest as DPTb voters (as a careful stuffer would).
fn stuff(sheet: &mut Sheet, pair: usize, extra: i64) {
    let registered = sheet.get(Field::registered(Row::Dpt, Col::J)).unwrap_or(0);
    let voted = sheet.get(Field::voted(Row::Dpt, Col::J)).unwrap_or(0);
    let into_dpt = extra.min((registered - voted).max(0));
    let into_dptb = extra - into_dpt;
    for (row, amount) in [
        (Row::Dpt, into_dpt),
        (Row::Dptb, into_dptb),
        (Row::Total, extra),
    ] {
        if amount == 0 {
            continue;
        }
        add(sheet, Field::voted(row, Col::J), amount);
        add(sheet, Field::voted(row, Col::L), amount / 2);
        add(sheet, Field::voted(row, Col::P), amount - amount / 2);
    }
    add(sheet, Field::VALID, extra);
    add(sheet, Field::TOTAL, extra);
    if let Some(v) = sheet.votes[pair].1.as_mut() {
        *v += extra;
    }
}

/// The misread of a count: a hundreds digit added in front of a count below 100, or changed.
fn misread(x: i64, rng: &mut Rng) -> i64 {
    if x < 100 {
        (1 + below(rng, 9) as i64) * 100 + x
    } else {
        let hundreds = (x / 100) % 10;
        let mut digit = below(rng, 9) as i64;
        if digit >= hundreds {
            digit += 1;
        }
        x - hundreds * 100 + digit * 100
    }
}

/// Injects `fault` into the sheet at `target`; `source` is the copied TPS for `Fault::Copied`.
fn inject(fault: Fault, sheet: &mut Sheet, source: Option<&Sheet>, rng: &mut Rng) {
    let pairs = sheet.votes.len();
    let votes: Vec<i64> = sheet.votes.iter().map(|(_, v)| v.unwrap_or(0)).collect();
    let voters = sheet
        .get(Field::voted(Row::Total, Col::J))
        .unwrap_or_else(|| votes.iter().sum());
    match fault {
        Fault::MisreadPairsOnly | Fault::MisreadAllFields => {
            let pair = below(rng, pairs);
            let read = misread(votes[pair], rng);
            sheet.votes[pair].1 = Some(read);
            if fault == Fault::MisreadPairsOnly {
                for field in Field::all() {
                    let keep = [
                        Field::registered(Row::Dpt, Col::J),
                        Field::registered(Row::Dpt, Col::L),
                        Field::registered(Row::Dpt, Col::P),
                    ];
                    if !keep.contains(&field) {
                        sheet.set(field, None);
                    }
                }
            }
        }
        Fault::Stuffing(percent) => {
            let extra = ((voters as f64) * percent as f64 / 100.0).round().max(1.0) as i64;
            stuff(sheet, below(rng, pairs), extra);
        }
        Fault::Switching => {
            let target = below(rng, pairs);
            let from = (0..pairs)
                .filter(|&j| j != target)
                .max_by_key(|&j| votes[j])
                .unwrap_or(target);
            let total: i64 = votes.iter().sum();
            let moved = ((total as f64 * 0.2).round() as i64).min(votes[from]);
            sheet.votes[from].1 = Some(votes[from] - moved);
            sheet.votes[target].1 = Some(votes[target] + moved);
        }
        Fault::Copied => {
            if let Some(source) = source {
                let tps = sheet.tps;
                *sheet = source.clone();
                sheet.tps = tps;
            }
        }
    }
}

struct Outcome {
    fault: Option<Fault>,
    injected: usize,
    rejected: usize,
    accepted: usize,
    flagged_injected: usize,
    flagged_sources: usize,
    flagged_other: usize,
    clean: usize,
    /// Flags of untouched rows by their most significant test.
    other_by_test: std::collections::BTreeMap<&'static str, usize>,
    seconds: f64,
}

pub fn eval(
    dir: &Path,
    per_fault: usize,
    seed: u64,
    fdr: f64,
    markdown: Option<&Path>,
) -> Result<u8> {
    if !dir.is_dir() {
        bail!(
            "{} is not a directory of Sirekap CSV files (the real 2024 rows live in ../shared/data/sirekap-2024)",
            dir.display()
        );
    }
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().contains(".csv"))
        .collect();
    paths.sort();
    let started = Instant::now();
    let base = load_sirekap(&paths, None)?;
    let pairs = pair_labels(&base.sheets);
    eprintln!(
        "{} rows: {} rejected by the rulebook, {} unusable, {} accepted ({:.1}s)",
        base.lines,
        base.rejected,
        base.unusable,
        base.sheets.len(),
        started.elapsed().as_secs_f64()
    );
    let election = Election::pemilu_2024();
    let settings = Settings {
        fdr,
        ..Settings::default()
    };
    // Rows eligible for injection: regular TPS with every pair count and DPT, in desa with another
    // such TPS (so the copy fault has a source).
    let rows0: Vec<Option<TpsRow>> = base
        .sheets
        .iter()
        .map(|(s, f)| row_from_sheet(s, f))
        .collect();
    let mut by_desa: std::collections::HashMap<Code, Vec<usize>> = Default::default();
    for (i, row) in rows0.iter().enumerate() {
        if let Some(row) = row {
            if Stratum::of(row) == Stratum::Regular && row.dpt.is_some() && row.voters.is_some() {
                if let Some(desa) = row.tps.ancestor(Level::Desa) {
                    by_desa.entry(desa).or_default().push(i);
                }
            }
        }
    }
    let eligible: Vec<usize> = {
        let mut e: Vec<usize> = by_desa
            .values()
            .filter(|v| v.len() >= 2)
            .flatten()
            .copied()
            .collect();
        e.sort_unstable();
        e
    };
    if eligible.len() < per_fault * 2 {
        bail!(
            "only {} eligible rows for {per_fault} faults",
            eligible.len()
        );
    }
    let mut outcomes = Vec::new();
    for fault in std::iter::once(None).chain(Fault::all().into_iter().map(Some)) {
        let fault_index = fault.map_or(0, |f| {
            1 + Fault::all().iter().position(|g| *g == f).unwrap_or(0) as u64
        });
        let mut rng = Rng::new(seed, fault_index, EVAL_PURPOSE);
        // Choose distinct targets.
        let mut targets = std::collections::BTreeSet::new();
        while fault.is_some() && targets.len() < per_fault {
            targets.insert(eligible[below(&mut rng, eligible.len())]);
        }
        let mut sources = std::collections::HashSet::new();
        let mut rows: Vec<TpsRow> = Vec::with_capacity(rows0.len());
        let mut injected_rows = std::collections::HashSet::new();
        let mut rejected = 0;
        for (i, (sheet, facts)) in base.sheets.iter().enumerate() {
            if let (Some(fault), true) = (fault, targets.contains(&i)) {
                let mut changed = sheet.clone();
                let source = if fault == Fault::Copied {
                    let desa = sheet.tps.ancestor(Level::Desa).expect("a TPS has a desa");
                    let peers = &by_desa[&desa];
                    let mut pick = peers[below(&mut rng, peers.len())];
                    if pick == i {
                        pick = peers
                            [(peers.iter().position(|&p| p == i).unwrap_or(0) + 1) % peers.len()];
                    }
                    sources.insert(base.sheets[pick].0.tps);
                    Some(&base.sheets[pick].0)
                } else {
                    None
                };
                inject(fault, &mut changed, source, &mut rng);
                if !check_sheet(&changed, Some(*facts), &election).accepted() {
                    rejected += 1;
                    continue;
                }
                if let Some(row) = row_from_sheet(&changed, facts) {
                    injected_rows.insert(row.tps);
                    rows.push(row);
                }
            } else if let Some(row) = &rows0[i] {
                rows.push(row.clone());
            }
        }
        let scoring = Instant::now();
        let analysis = analyze(&rows, &pairs, &settings)?;
        let seconds = scoring.elapsed().as_secs_f64();
        let mut outcome = Outcome {
            fault,
            injected: targets.len(),
            rejected,
            accepted: injected_rows.len(),
            flagged_injected: 0,
            flagged_sources: 0,
            flagged_other: 0,
            clean: 0,
            other_by_test: Default::default(),
            seconds,
        };
        for (row, score) in rows.iter().zip(&analysis.tps) {
            let injected = injected_rows.contains(&row.tps);
            let source = sources.contains(&row.tps);
            if !injected && !source && score.stratum != Stratum::Noken {
                outcome.clean += 1;
            }
            if !score.flagged {
                continue;
            }
            if injected {
                outcome.flagged_injected += 1;
            } else if source {
                outcome.flagged_sources += 1;
            } else {
                outcome.flagged_other += 1;
                let deciding = score.tests.iter().find(|t| !t.evidence_only);
                if let Some(test) = deciding {
                    *outcome.other_by_test.entry(test.code).or_default() += 1;
                }
            }
        }
        eprintln!(
            "{}: scored {} rows in {seconds:.1}s",
            fault.map_or("no faults".to_string(), |f| f.name()),
            rows.len()
        );
        outcomes.push(outcome);
    }
    let table = render_table(&outcomes, seed, fdr, &base);
    print!("{table}");
    if let Some(path) = markdown {
        std::fs::write(path, &table).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(0)
}

fn render_table(outcomes: &[Outcome], seed: u64, fdr: f64, base: &Accepted) -> String {
    let mut out = String::new();
    let pct = |a: usize, b: usize| {
        if b == 0 {
            "-".to_string()
        } else {
            format!("{:.1}%", 100.0 * a as f64 / b as f64)
        }
    };
    out.push_str(&format!(
        "Real 2024 Sirekap rows: {} read, {} accepted by the rulebook. Seed {seed}, FDR {fdr}.\n\n",
        base.lines,
        base.sheets.len()
    ));
    out.push_str("| fault | injected | rejected by rulebook | accepted | flagged (of accepted) | caught by rulebook or flags | precision | other rows flagged | scoring time |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for o in outcomes {
        match o.fault {
            None => out.push_str(&format!(
                "| none (real rows as accepted) | 0 | - | - | - | - | - | {} of {} ({}) | {:.1}s |\n",
                o.flagged_other,
                o.clean,
                pct(o.flagged_other, o.clean),
                o.seconds
            )),
            Some(fault) => {
                let true_flags = o.flagged_injected + o.flagged_sources;
                out.push_str(&format!(
                    "| {} | {} | {} ({}) | {} | {} ({}) | {} | {} | {} ({}) | {:.1}s |\n",
                    fault.name(),
                    o.injected,
                    o.rejected,
                    pct(o.rejected, o.injected),
                    o.accepted,
                    o.flagged_injected,
                    pct(o.flagged_injected, o.accepted),
                    pct(o.rejected + o.flagged_injected, o.injected),
                    pct(true_flags, true_flags + o.flagged_other),
                    o.flagged_other,
                    pct(o.flagged_other, o.clean),
                    o.seconds
                ));
            }
        }
    }
    if let Some(clean) = outcomes.iter().find(|o| o.fault.is_none()) {
        out.push_str("\nUntouched rows flagged, by the test that flagged them: ");
        let parts: Vec<String> = clean
            .other_by_test
            .iter()
            .map(|(code, n)| format!("{code} {n}"))
            .collect();
        out.push_str(&parts.join(", "));
        out.push_str(".\n");
    }
    out
}
