//! The `saksi` command line. Library crates do the work; this edge parses arguments, prints, and maps
//! outcomes to fixed exit codes:
//! - 0: done, and (for `check`) every form was accepted;
//! - 1: done, and some form was rejected or malformed (a result, not a failure);
//! - 2: could not do it (bad arguments, unreadable input).

mod bench;
mod check;
mod progress;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

use saksi_election::{rules, Election, Registry};

const EXIT_OK: u8 = 0;
const EXIT_REJECTIONS: u8 = 1;
const EXIT_ERROR: u8 = 2;

#[derive(Parser)]
#[command(name = "saksi", version, about = "saksi (\"witness\"): election recapitulation that nobody can change unseen")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build (or reuse) a synthetic national election and check every form in it.
    Demo {
        /// Where the generated election lives.
        #[arg(long, default_value = "data/demo")]
        data: PathBuf,
        /// Number of TPS (default: all 823,220 of 2024).
        #[arg(long, default_value_t = saksi_gen::NATIONAL_TPS)]
        tps: usize,
    },
    /// Generate a deterministic synthetic election with injected faults.
    Gen {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = saksi_gen::NATIONAL_TPS)]
        tps: usize,
        #[arg(long, default_value_t = 2024)]
        seed: u64,
        /// Chance per TPS of each kind of fault (0 for none).
        #[arg(long, default_value_t = saksi_gen::DEFAULT_FAULT_RATE)]
        fault_rate: f64,
    },
    /// Check signed forms (FILE, one per line) or Sirekap's published rows (--sirekap) against the rulebook.
    Check {
        /// Signed forms, one JSON envelope per line (.gz accepted).
        #[arg(required_unless_present = "sirekap", conflicts_with = "sirekap")]
        file: Option<PathBuf>,
        /// The registry directory for signed forms (default: `registry/` beside FILE).
        #[arg(long)]
        registry: Option<PathBuf>,
        /// Sirekap per-TPS CSV files (.csv or .csv.gz).
        #[arg(long, num_args = 1..)]
        sirekap: Vec<PathBuf>,
        /// KPU's Sirekap region list (kpu_sirekap_wilayah_ppwp.csv.gz), to know each TPS and its kind.
        #[arg(long, requires = "sirekap")]
        kpu_registry: Option<PathBuf>,
        /// Write one verdict per form or row to this CSV file.
        #[arg(long)]
        verdicts: Option<PathBuf>,
        /// How many rejected forms to explain in full.
        #[arg(long, default_value_t = 3)]
        show: usize,
    },
    /// Measure: `saksi bench log` appends a national-size log durably and prints entries/s.
    Bench {
        #[command(subcommand)]
        target: BenchTarget,
    },
    /// Print the rulebook: every rule's code, severity, fields and messages.
    Rules {
        /// Print the canonical JSON that identifies this rulebook version.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum BenchTarget {
    /// Durable appends to a transparency log.
    Log {
        #[arg(long, default_value = "data/bench-log")]
        dir: PathBuf,
        #[arg(long, default_value_t = saksi_gen::NATIONAL_TPS as u64)]
        entries: u64,
        #[arg(long, default_value_t = 600)]
        entry_bytes: usize,
        /// Entries per commit (one round of fsyncs each).
        #[arg(long, default_value_t = 4096)]
        batch: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("saksi: error: {error:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn run(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Gen { out, tps, seed, fault_rate } => {
            generate(&out, &saksi_gen::Config { tps, seed, fault_rate })?;
            Ok(EXIT_OK)
        }
        Command::Demo { data, tps } => demo(&data, tps),
        Command::Check { file, registry, sirekap, kpu_registry, verdicts, show } => {
            let election = Election::pemilu_2024();
            let mut verdicts_file = match &verdicts {
                Some(path) => Some(std::io::BufWriter::new(
                    std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
                )),
                None => None,
            };
            let verdicts_out = verdicts_file.as_mut().map(|w| w as &mut dyn Write);
            let report = if let Some(file) = file {
                let registry_dir = registry.unwrap_or_else(|| file.parent().unwrap_or(Path::new(".")).join("registry"));
                let registry = Registry::load_dir(&registry_dir)
                    .with_context(|| format!("cannot load the registry in {}", registry_dir.display()))?;
                let started = Instant::now();
                let report = check::check_forms(&file, &registry, &election, verdicts_out, show)?;
                report.print(&mut std::io::stdout().lock(), &format!("{}", file.display()))?;
                println!("checked in {:.1}s", started.elapsed().as_secs_f64());
                report
            } else {
                let registry = match kpu_registry {
                    Some(path) => {
                        let reader = std::io::BufReader::new(flate2::read::MultiGzDecoder::new(
                            std::fs::File::open(&path).with_context(|| format!("cannot open {}", path.display()))?,
                        ));
                        Some(Registry::from_kpu_wilayah(reader, &path.display().to_string())?)
                    }
                    None => None,
                };
                let report = check::check_sirekap(&sirekap, registry.as_ref(), &election, verdicts_out, show)?;
                report.print(&mut std::io::stdout().lock(), &format!("Sirekap ({} files)", sirekap.len()))?;
                report
            };
            if let Some(mut file) = verdicts_file {
                file.flush()?;
            }
            Ok(if report.rejected + report.malformed > 0 { EXIT_REJECTIONS } else { EXIT_OK })
        }
        Command::Bench { target: BenchTarget::Log { dir, entries, entry_bytes, batch } } => {
            bench::log_append(&dir, entries, entry_bytes, batch)?;
            Ok(EXIT_OK)
        }
        Command::Rules { json } => {
            let mut out = std::io::stdout().lock();
            if json {
                out.write_all(&rules::rulebook_json())?;
                writeln!(out)?;
            } else {
                writeln!(out, "{} (sha256 {})\n", rules::RULEBOOK_VERSION, rules::digest())?;
                for rule in rules::RULES {
                    writeln!(out, "{:<24} {:?}  [{}]", rule.code, rule.severity, rule.fields)?;
                    writeln!(out, "    en: {}", rule.en)?;
                    writeln!(out, "    id: {}", rule.id)?;
                }
            }
            Ok(EXIT_OK)
        }
    }
}

fn generate(out: &Path, config: &saksi_gen::Config) -> Result<saksi_gen::Summary> {
    let started = Instant::now();
    let progress = std::sync::Mutex::new(progress::Progress::new("generating", config.tps as u64));
    let summary = saksi_gen::generate(config, out, &|done, _total| {
        if let Ok(mut p) = progress.lock() {
            p.update(done as u64);
        }
    })
    .with_context(|| format!("generating into {}", out.display()))?;
    if let Ok(mut p) = progress.lock() {
        p.finish();
    }
    let truth = &summary.truth;
    println!(
        "generated {} TPS ({} domestic, {} overseas), {} form lines, {} injected faults in {:.1}s -> {}",
        truth.tps,
        truth.domestic_tps,
        truth.overseas_tps,
        truth.forms_lines,
        truth.faults.len(),
        started.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(summary)
}

fn demo(data: &Path, tps: usize) -> Result<u8> {
    let truth_path = data.join("truth.json");
    let reuse = match std::fs::read(&truth_path) {
        Ok(bytes) => serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|truth| truth.get("tps").and_then(|t| t.as_u64()))
            == Some(tps as u64),
        Err(_) => false,
    };
    if reuse {
        println!("reusing the election generated in {}", data.display());
    } else {
        if tps == 0 {
            bail!("--tps must be at least 1");
        }
        generate(data, &saksi_gen::Config { tps, ..Default::default() })?;
    }
    let registry = Registry::load_dir(&data.join("registry"))?;
    let started = Instant::now();
    let report = check::check_forms(&data.join("forms.ndjson"), &registry, &Election::pemilu_2024(), None, 2)?;
    report.print(&mut std::io::stdout().lock(), &data.join("forms.ndjson").display().to_string())?;
    println!("checked in {:.1}s", started.elapsed().as_secs_f64());
    println!(
        "\nEvery injected fault is listed in {} with the rule that must catch it.\n\
         The transparency log, the server and independent verification are being built (issues 3-5).",
        truth_path.display()
    );
    Ok(EXIT_OK)
}
