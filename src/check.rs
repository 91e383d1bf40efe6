//! `saksi check`: the rulebook applied offline to a file of signed forms, or to Sirekap's published rows.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

use anyhow::{Context, Result};

use saksi_election::checker::{Checker, Outcome};
use saksi_election::rules::{self, check_sheet, Finding, TpsFacts, Verdict};
use saksi_election::sirekap::{SirekapColumns, SirekapRow};
use saksi_election::{Code, Election, Registry, TpsKind};

use crate::progress::Progress;

/// Lines decoded and verified together; bounds memory to a few tens of MB whatever the file size.
const CHUNK_LINES: usize = 32 * 1024;

#[derive(Default)]
pub struct Report {
    pub lines: usize,
    pub accepted: usize,
    pub rejected: usize,
    pub malformed: usize,
    pub not_reported: usize,
    pub with_warnings: usize,
    /// Forms (rows) broken per rule code; a form counts once per rule however many rows break it.
    pub by_rule: BTreeMap<&'static str, usize>,
    /// A few examples to show, in file order: (line, tps, findings).
    pub examples: Vec<(usize, String, Vec<Finding>)>,
    pub malformed_examples: Vec<(usize, String)>,
}

impl Report {
    fn record(&mut self, line: usize, tps: Code, verdict: &Verdict, keep_examples: usize) {
        if verdict.accepted() {
            self.accepted += 1;
        } else {
            self.rejected += 1;
            if self.examples.len() < keep_examples {
                let findings = verdict
                    .findings
                    .iter()
                    .filter(|f| f.severity() == rules::Severity::Reject)
                    .cloned()
                    .collect();
                self.examples.push((line, tps.to_string(), findings));
            }
        }
        if !verdict.warning_codes().is_empty() {
            self.with_warnings += 1;
        }
        for code in verdict
            .rejecting_codes()
            .into_iter()
            .chain(verdict.warning_codes())
        {
            *self.by_rule.entry(code).or_default() += 1;
        }
    }

    pub fn print(&self, out: &mut impl Write, what: &str) -> std::io::Result<()> {
        writeln!(out, "{what}: {} lines", self.lines)?;
        writeln!(out, "  accepted      {:>9}", self.accepted)?;
        writeln!(out, "  rejected      {:>9}", self.rejected)?;
        if self.not_reported > 0 {
            writeln!(out, "  not reported  {:>9}", self.not_reported)?;
        }
        if self.malformed > 0 {
            writeln!(out, "  malformed     {:>9}", self.malformed)?;
        }
        writeln!(
            out,
            "  with warnings {:>9}  (warnings never reject)",
            self.with_warnings
        )?;
        writeln!(
            out,
            "rulebook {} (sha256 {})",
            rules::RULEBOOK_VERSION,
            &rules::digest()[..16]
        )?;
        if !self.by_rule.is_empty() {
            writeln!(out, "\n{:<24} {:>9}  rule", "code", "forms")?;
            for rule in rules::RULES {
                if let Some(count) = self.by_rule.get(rule.code) {
                    writeln!(out, "{:<24} {:>9}  {}", rule.code, count, rule.en)?;
                }
            }
        }
        for (line, tps, findings) in &self.examples {
            writeln!(out, "\nline {line}, TPS {tps}: rejected")?;
            for finding in findings {
                writeln!(out, "  en: {}", finding.render("en"))?;
                writeln!(out, "  id: {}", finding.render("id"))?;
            }
        }
        for (line, message) in &self.malformed_examples {
            writeln!(out, "\nline {line}: {message}")?;
        }
        Ok(())
    }
}

pub(crate) fn open_maybe_gz(path: &Path) -> Result<Box<dyn BufRead>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    Ok(Box::new(BufReader::with_capacity(1 << 20, reader)))
}

/// Checks a file of signed forms (one JSON envelope per line).
pub fn check_forms(
    path: &Path,
    registry: &Registry,
    election: &Election,
    verdicts_out: Option<&mut dyn Write>,
    keep_examples: usize,
) -> Result<Report> {
    let mut reader = open_maybe_gz(path)?;
    let mut report = Report::default();
    let mut verdicts_out = verdicts_out;
    if let Some(out) = verdicts_out.as_deref_mut() {
        writeln!(out, "line,kode_tps,verdict,rules")?;
    }
    let mut checker = Checker::new(registry, election);
    let total_bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let mut progress = Progress::new("checking", total_bytes);
    let mut bytes_read = 0u64;
    let mut line_number = 0usize;
    loop {
        let mut chunk: Vec<(usize, String)> = Vec::with_capacity(CHUNK_LINES);
        let mut text = String::new();
        while chunk.len() < CHUNK_LINES {
            text.clear();
            let n = reader
                .read_line(&mut text)
                .with_context(|| format!("reading {}", path.display()))?;
            if n == 0 {
                break;
            }
            bytes_read += n as u64;
            line_number += 1;
            let line = text.trim_end_matches(['\n', '\r']);
            if !line.is_empty() {
                chunk.push((line_number, line.to_string()));
            }
        }
        if chunk.is_empty() {
            break;
        }
        let lines: Vec<(usize, &[u8])> = chunk
            .iter()
            .map(|(n, text)| (*n, text.as_bytes()))
            .collect();
        for (&(line, _), outcome) in lines.iter().zip(checker.check(&lines)) {
            report.lines += 1;
            match outcome {
                Outcome::Malformed(message) => {
                    report.malformed += 1;
                    if report.malformed_examples.len() < keep_examples {
                        report.malformed_examples.push((line, message));
                    }
                    if let Some(out) = verdicts_out.as_deref_mut() {
                        writeln!(out, "{line},,malformed,")?;
                    }
                }
                Outcome::Checked { form, verdict } => {
                    let tps = form.form.tps;
                    report.record(line, tps, &verdict, keep_examples);
                    if let Some(out) = verdicts_out.as_deref_mut() {
                        let word = if verdict.accepted() {
                            "accept"
                        } else {
                            "reject"
                        };
                        writeln!(
                            out,
                            "{line},{tps},{word},{}",
                            verdict.rejecting_codes().join(";")
                        )?;
                    }
                }
            }
        }
        progress.update(bytes_read);
    }
    progress.finish();
    Ok(report)
}

/// What the rulebook knows of a Sirekap row's TPS: from the registry when one is given (None when it
/// does not list the TPS), otherwise from its code.
pub(crate) fn facts_for(tps: Code, registry: Option<&Registry>) -> Option<TpsFacts> {
    match registry {
        Some(registry) => registry.tps(tps).map(|t| TpsFacts {
            kind: t.kind,
            dpt: t.dpt,
        }),
        None => Some(facts_from_code(tps)),
    }
}

/// The kind of a TPS when no registry is given: KPU numbers TPS lokasi khusus 901 and up.
fn facts_from_code(tps: Code) -> TpsFacts {
    let kind = if tps.is_overseas() {
        TpsKind::Tpsln
    } else if tps.tps_number().unwrap_or(0) >= 901 {
        TpsKind::Khusus
    } else {
        TpsKind::Regular
    };
    TpsFacts { kind, dpt: None }
}

/// Checks Sirekap CSV files and writes `kode_tps,verdict,rules` per row.
pub fn check_sirekap(
    paths: &[std::path::PathBuf],
    registry: Option<&Registry>,
    election: &Election,
    mut verdicts_out: Option<&mut dyn Write>,
    keep_examples: usize,
) -> Result<Report> {
    let mut report = Report::default();
    if let Some(out) = verdicts_out.as_deref_mut() {
        writeln!(out, "kode_tps,verdict,rules")?;
    }
    for path in paths {
        let reader = open_maybe_gz(path)?;
        let mut lines = reader.lines();
        let header = lines
            .next()
            .context("empty file")?
            .with_context(|| format!("reading {}", path.display()))?;
        let columns =
            SirekapColumns::from_header(&header).with_context(|| format!("{}", path.display()))?;
        for (index, line) in lines.enumerate() {
            let line = line.with_context(|| format!("reading {}", path.display()))?;
            let number = index + 2;
            if line.is_empty() {
                continue;
            }
            report.lines += 1;
            match columns.parse(&line, number) {
                Err(e) => {
                    report.malformed += 1;
                    if report.malformed_examples.len() < keep_examples {
                        report
                            .malformed_examples
                            .push((number, format!("{}: {e}", path.display())));
                    }
                }
                Ok(SirekapRow::NotReported(tps)) => {
                    report.not_reported += 1;
                    if let Some(out) = verdicts_out.as_deref_mut() {
                        writeln!(out, "{tps},not_reported,")?;
                    }
                }
                Ok(SirekapRow::Reported(sheet)) => {
                    let facts = facts_for(sheet.tps, registry);
                    let verdict = check_sheet(&sheet, facts, election);
                    report.record(number, sheet.tps, &verdict, keep_examples);
                    if let Some(out) = verdicts_out.as_deref_mut() {
                        let word = if verdict.accepted() {
                            "accept"
                        } else {
                            "reject"
                        };
                        writeln!(
                            out,
                            "{},{word},{}",
                            sheet.tps,
                            verdict.rejecting_codes().join(";")
                        )?;
                    }
                }
            }
        }
    }
    Ok(report)
}
