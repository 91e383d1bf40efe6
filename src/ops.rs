//! The server-side commands: init, import (signed forms or Sirekap rows), serve, submit, keygen.

use std::collections::BTreeMap;
use std::io::{BufRead, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use saksi_election::form::{EncodedForm, SignedForm};
use saksi_election::rules::codes;
use saksi_election::sign::SecretKey;
use saksi_election::sirekap::{SirekapColumns, SirekapRow};
use saksi_election::{Election, Registry};
use saksi_recap::engine::{Engine, IngestOutcome, LogStore};

use crate::progress::Progress;

/// An import line that does not decode: counted under this code beside the rule codes.
const MALFORMED: &str = "MALFORMED";

/// Lines decoded, verified and committed together during an import.
const IMPORT_CHUNK: usize = 32 * 1024;

/// The authority's key file in its own directory (kept offline; see `authority_key`).
pub const AUTHORITY_KEY: &str = "authority.key";

/// The directory `init` keeps the authority's key in unless told: beside the data directory, never
/// in it (`DATA-authority` for `DATA`).
pub fn default_authority_dir(data: &Path) -> std::path::PathBuf {
    let name = data
        .file_name()
        .map_or("data".into(), |n| n.to_string_lossy().to_string());
    data.with_file_name(format!("{name}-authority"))
}

/// The election authority's secret key from `dir/authority.key`, made there first if `dir` is new.
/// `dir` must be outside the data directory: the server refuses to run with the key in it.
pub fn authority_key(dir: &Path, data: &Path) -> Result<SecretKey> {
    let inside = |a: &Path, b: &Path| -> bool {
        let a = std::path::absolute(a).unwrap_or_else(|_| a.to_path_buf());
        let b = std::path::absolute(b).unwrap_or_else(|_| b.to_path_buf());
        a.starts_with(b)
    };
    if inside(dir, data) {
        bail!(
            "the authority's key directory {} is inside the data directory {}: give one the server \
             never sees (it will be taken offline)",
            dir.display(),
            data.display()
        );
    }
    let path = dir.join(AUTHORITY_KEY);
    if path.exists() {
        return read_key(&path);
    }
    crate::owned::claim(dir, "authority")?;
    keygen_quiet(&path)?;
    let key = read_key(&path)?;
    std::fs::write(dir.join("authority.pub"), format!("{}\n", key.public()))?;
    Ok(key)
}

/// Where the log lives: `--store URL` (PostgreSQL), or the data directory's own `log/`.
pub fn log_store(store: Option<&str>) -> Result<LogStore> {
    let Some(url) = store else {
        return Ok(LogStore::Dir);
    };
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        bail!("--store takes a PostgreSQL URL (postgres://USER@HOST:PORT/DB), not {url:?}");
    }
    let storage = saksi_pgstore::PgStorage::connect(url, saksi_pgstore::DEFAULT_CONNECTIONS)
        .context("opening the log's PostgreSQL store")?;
    let files = store_files(&storage)?;
    Ok(LogStore::Opened(saksi_recap::engine::OpenedStore {
        log: Arc::new(storage),
        files: Some(files),
    }))
}

/// Photos and report texts in the PostgreSQL store beside the log.
fn store_files(storage: &saksi_pgstore::PgStorage) -> Result<saksi_recap::engine::StoreFiles> {
    let photos = storage.files("evidence");
    let usage = photos.usage().context("counting the store's photos")?;
    Ok(saksi_recap::engine::StoreFiles {
        evidence: Arc::new(saksi_recap::evidence::EvidenceStore::in_storage(
            Box::new(photos),
            usage,
        )),
        report_texts: Arc::new(saksi_recap::report_texts::ReportTexts::in_storage(
            Box::new(storage.files("report-texts")),
        )),
    })
}

/// `saksi serve --read-only`: a replica of the log copy in `log` (a directory) or `store` (a
/// PostgreSQL database, typically a hot standby), checked against `vkey`.
pub fn open_replica(
    log: Option<&Path>,
    store: Option<&str>,
    vkey: saksi_tlog::note::Verifier,
    evidence: Option<&Path>,
    reports: Option<&Path>,
) -> Result<saksi_recap::replica::Replica> {
    let (storage, files): (Arc<dyn saksi_tlog::Storage>, _) = match (log, store) {
        (Some(dir), None) => {
            if !dir.join(saksi_tlog::CHECKPOINT_PATH).is_file() {
                bail!(
                    "{} holds no log copy (no checkpoint): make one with saksi mirror --url URL --dir {} --vkey KEY --follow",
                    dir.display(),
                    dir.display()
                );
            }
            (
                Arc::new(saksi_tlog::ReadOnlyDir::new(dir)),
                saksi_recap::replica::files_in_dirs(evidence, reports),
            )
        }
        (None, Some(url)) => {
            if evidence.is_some() || reports.is_some() {
                bail!("with --store, a replica serves the store's own photos and report texts: drop --evidence and --reports");
            }
            let storage = saksi_pgstore::PgStorage::connect_read_only(
                url,
                saksi_pgstore::DEFAULT_CONNECTIONS,
            )
            .context("opening the PostgreSQL store to read")?;
            let files = store_files(&storage)?;
            (Arc::new(storage), files)
        }
        _ => bail!("--read-only takes exactly one of --log DIR or --store URL"),
    };
    println!("read replica: following the log copy every 250 ms; submissions are refused (503)");
    Ok(saksi_recap::replica::Replica::open(storage, vkey, files)?)
}

/// Opens the engine to write: refused while another server writes the same store.
pub fn open_as_writer(data: &Path, store: &LogStore) -> Result<Engine> {
    if let LogStore::Opened(store) = store {
        if !store.log.try_become_writer()? {
            bail!("another server writes this log (it holds the store's writer lock): import through it, or stop it first");
        }
    }
    Ok(Engine::open_in(data, store)?)
}

/// Opens the engine for `serve`. On a store shared by several servers it opens as a standby: the
/// writer thread takes over as soon as the store's writer lock is free (at once, if no other server
/// holds it), on the same path as every later takeover, so a start that races another writer (or a
/// dead writer's last commit) retries instead of failing.
pub fn open_for_serving(data: &Path, store: &LogStore) -> Result<Engine> {
    if let LogStore::Opened(_) = store {
        println!("shared store: this server writes only while it holds the store's writer lock, and serves reads as a standby until then");
        return Ok(Engine::open_standby_in(data, store)?);
    }
    Ok(Engine::open_in(data, store)?)
}

fn log_dir_has_log(data: &Path, store: &LogStore) -> bool {
    matches!(store, LogStore::Dir) && saksi_recap::DataDir::new(data).holds_log()
}

/// The registry of a `saksi gen` directory or of KPU's Sirekap region list.
pub fn load_registry(gen: Option<&Path>, kpu_registry: Option<&Path>) -> Result<Registry> {
    Ok(match (gen, kpu_registry) {
        (Some(dir), None) => Registry::load_dir(&dir.join("registry"))
            .with_context(|| format!("loading {}/registry", dir.display()))?,
        (None, Some(file)) => load_kpu_registry(file)?,
        _ => bail!("give exactly one of --gen DIR or --kpu-registry FILE"),
    })
}

/// KPU's Sirekap region list (kpu_sirekap_wilayah_ppwp.csv.gz) as a registry.
pub fn load_kpu_registry(file: &Path) -> Result<Registry> {
    let reader = std::io::BufReader::new(flate2::read::MultiGzDecoder::new(
        std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?,
    ));
    Ok(Registry::from_kpu_wilayah(
        reader,
        &file.display().to_string(),
    )?)
}

/// Where `init --keys-only` leaves the public keys the authority's genesis must name.
pub const GENESIS_REQUEST: &str = "genesis-request.json";

/// `init --keys-only`: the server's own keys, and the request the authority signs a genesis for.
pub fn init_keys(data: &Path, origin: &str) -> Result<()> {
    crate::owned::claim(data, "data")?;
    let keys = saksi_recap::DataDir::new(data).create_keys(origin)?;
    let request = data.join(GENESIS_REQUEST);
    std::fs::write(
        &request,
        format!("{}\n", serde_json::to_string_pretty(&keys.to_json())?),
    )?;
    println!(
        "keys made in {}; log verifier key {}; operator {}",
        data.display(),
        keys.log_vkey,
        keys.operator
    );
    println!(
        "next, where the authority's key is kept: saksi genesis --authority-key KEY --gen DIR \
         --request {} --out GENESIS; then here: saksi init --data {} --genesis GENESIS",
        request.display(),
        data.display()
    );
    Ok(())
}

/// `saksi genesis`: the authority signs the genesis and the registry for a server's keys, offline.
pub fn sign_genesis(
    authority_key: &Path,
    request: &Path,
    gen: Option<&Path>,
    kpu_registry: Option<&Path>,
    out: &Path,
) -> Result<()> {
    let authority = read_key(authority_key)?;
    let request_json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(request).with_context(|| format!("cannot read {}", request.display()))?,
    )
    .with_context(|| format!("{} is not JSON", request.display()))?;
    let keys = saksi_recap::engine::ServerKeys::from_json(&request_json)?;
    let registry = load_registry(gen, kpu_registry)?;
    let statements = saksi_recap::engine::genesis_statements(
        &keys,
        Election::pemilu_2024(),
        &registry,
        &authority,
    );
    let mut file = std::io::BufWriter::new(create_new_file(out)?);
    for statement in &statements {
        file.write_all(statement)?;
        file.write_all(b"\n")?;
    }
    file.into_inner()
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .sync_all()?;
    println!(
        "{} statements (genesis and registry) signed by {} for log {} -> {}",
        statements.len(),
        authority.public(),
        keys.log_vkey,
        out.display()
    );
    Ok(())
}

/// `init --genesis FILE`: the log of a data directory made by `init --keys-only`, from the
/// statements the authority signed offline.
pub fn init_from_genesis(data: &Path, store: &LogStore, genesis: &Path) -> Result<Engine> {
    let started = Instant::now();
    let text =
        std::fs::read(genesis).with_context(|| format!("cannot read {}", genesis.display()))?;
    let statements: Vec<Vec<u8>> = text
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    let engine = Engine::init_from_statements_in(data, store, &statements)?;
    let _ = std::fs::remove_file(data.join(GENESIS_REQUEST));
    println!(
        "initialised {} in {:.1}s from {} statements the authority signed; the authority's key never came here",
        data.display(),
        started.elapsed().as_secs_f64(),
        statements.len()
    );
    Ok(engine)
}

pub fn init(
    data: &Path,
    store: &LogStore,
    gen: Option<&Path>,
    kpu_registry: Option<&Path>,
    origin: &str,
    authority_dir: &Path,
) -> Result<Engine> {
    let started = Instant::now();
    // The registry first: a command that fails on its input leaves no directory or key behind.
    let registry = load_registry(gen, kpu_registry)?;
    if log_dir_has_log(data, store) {
        bail!(
            "{} already holds a log (nothing was changed)",
            data.display()
        );
    }
    crate::owned::claim(data, "data")?;
    let authority = authority_key(authority_dir, data)?;
    let mut engine = Engine::init_in(
        data,
        store,
        origin,
        Election::pemilu_2024(),
        &registry,
        &authority,
    )?;
    // A generated election's participants enrol their poll witnesses (as they would before
    // election day), so its copies can be imported next.
    if let Some(gen) = gen.filter(|g| g.join("poll-witnesses.csv").exists()) {
        let step = Instant::now();
        let enrolled = enrol_generated_poll_witnesses(&mut engine, gen)?;
        println!(
            "the participants enrolled {enrolled} poll witnesses (signed by each participant's key) in {:.1}s",
            step.elapsed().as_secs_f64()
        );
    }
    let shared = engine.shared();
    let published = shared.published();
    println!(
        "initialised {} in {:.1}s: {} regions, {} TPS, {} log entries (genesis and registry)",
        data.display(),
        started.elapsed().as_secs_f64(),
        registry.regions().count(),
        registry.all_tps().len(),
        published.checkpoint.size
    );
    println!(
        "log verifier key ({}): {}",
        saksi_recap::DataDir::new(data).vkey().display(),
        shared.vkey
    );
    println!(
        "the election authority's key is in {} (public key {}): it signed the genesis and signs \
         every registry change; take it offline now, the server never needs it",
        authority_dir.join(AUTHORITY_KEY).display(),
        authority.public()
    );
    drop(published);
    Ok(engine)
}

/// A new file for a statement to carry elsewhere: never over an existing one (a statement is
/// evidence; overwriting one could lose what was signed).
fn create_new_file(path: &Path) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

/// Sends a statement signed by the authority where the command was told: a file (`out`), a running
/// server (`url`, its /api/v1/statements), or a data directory whose log takes it now (`data`).
pub fn deliver_statement(
    statement: &[u8],
    what: &str,
    to: &crate::cli::StatementTarget,
) -> Result<u8> {
    match (to.out.as_deref(), to.url.as_deref(), to.data.as_deref()) {
        (Some(out), None, None) => {
            let mut file = create_new_file(out)?;
            file.write_all(statement)?;
            file.write_all(b"\n")?;
            file.sync_all()?;
            println!(
                "{what}: signed, written to {}; log it with saksi log-statement --data DIR (or --url URL) {}",
                out.display(),
                out.display()
            );
            Ok(crate::EXIT_OK)
        }
        (None, Some(url), None) => {
            let (status, body) = http(
                "POST",
                &format!("{}/api/v1/statements", url.trim_end_matches('/')),
                statement,
            )?;
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            if status == 201 || status == 200 {
                println!("{what}: log entry {}", body["index"]);
                Ok(crate::EXIT_OK)
            } else {
                println!("{what}: refused ({status}): {}", body["error"]);
                Ok(crate::EXIT_REJECTIONS)
            }
        }
        (None, None, Some(data)) => {
            let mut engine = Engine::open(data)?;
            let index = engine.submit_statement(statement.trim_ascii_end())?;
            println!("{what}: log entry {index}");
            // With a witness policy, publication waits for cosignatures: for them, before saying.
            engine.settle_publication(saksi_recap::engine::WITNESS_DEADLINE * 2);
            if let Some(problem) = engine.publication_problem() {
                println!("not yet published: {problem}");
            }
            Ok(crate::EXIT_OK)
        }
        _ => bail!("give one of --out FILE, --url URL or --data DIR"),
    }
}

/// Counts of an import, by outcome and rule.
#[derive(Default)]
pub struct ImportSummary {
    pub lines: usize,
    pub logged: usize,
    pub accepted: usize,
    pub rejected: usize,
    pub duplicates: usize,
    pub refused: BTreeMap<String, usize>,
    pub by_rule: BTreeMap<String, usize>,
    /// Time decoding and verifying signatures (all cores), and in the single writer.
    pub verify_seconds: f64,
    pub ingest_seconds: f64,
}

impl ImportSummary {
    /// Counts one outcome: refused (not logged), already in the log, or logged with its verdict.
    pub fn count(&mut self, outcome: IngestOutcome) {
        match outcome {
            IngestOutcome::Refused { code, .. } => {
                *self.refused.entry(code.to_string()).or_default() += 1
            }
            IngestOutcome::Logged {
                duplicate: true, ..
            } => self.duplicates += 1,
            IngestOutcome::Logged { verdict, .. } => self.count_verdict(verdict),
        }
    }

    fn count_verdict(&mut self, verdict: saksi_recap::entry::RecordedVerdict) {
        self.logged += 1;
        if verdict.accepted {
            self.accepted += 1;
        } else {
            self.rejected += 1;
            for code in verdict.rejected_by {
                *self.by_rule.entry(code).or_default() += 1;
            }
        }
    }

    /// The command's exit code (see main.rs): 0 when every line is in the log as an accepted entry
    /// (now or before), 1 when anything was rejected, refused or malformed, or the file held nothing.
    pub fn exit_code(&self) -> u8 {
        let refused: usize = self.refused.values().sum();
        if self.lines == 0 || self.rejected > 0 || refused > 0 {
            crate::EXIT_REJECTIONS
        } else {
            crate::EXIT_OK
        }
    }

    pub fn print(&self) {
        if self.lines == 0 {
            println!("nothing to import: the input holds no forms");
        }
        println!(
            "{} lines: {} logged ({} accepted, {} rejected by the rulebook), {} already in the log",
            self.lines, self.logged, self.accepted, self.rejected, self.duplicates
        );
        if self.verify_seconds > 0.0 {
            println!("  stages (overlapped): decode + signatures {:.1}s on all cores, rulebook + log + tallies {:.1}s in the writer", self.verify_seconds, self.ingest_seconds);
        }
        for (code, n) in &self.refused {
            println!("  not logged, {code}: {n}");
        }
        if !self.by_rule.is_empty() {
            println!("rejections by rule:");
            for rule in saksi_election::rules::RULES {
                if let Some(n) = self.by_rule.get(rule.code) {
                    println!("  {:<24} {:>8}  {}", rule.code, n, rule.en);
                }
            }
        }
    }
}

/// Decodes and verifies a chunk of lines on every core: (line number, form with a valid signature)
/// or the code of why it was not.
pub fn decode_and_verify(
    lines: &[String],
    key_points: &saksi_election::sign::KeyPoints,
) -> Vec<Result<EncodedForm, &'static str>> {
    saksi_election::parallel::on_every_core(lines, |part| {
        let mut decoded: Vec<Result<EncodedForm, &'static str>> = part
            .iter()
            .map(|l| {
                SignedForm::decode(l.as_bytes())
                    .map(EncodedForm::new)
                    .map_err(|_| MALFORMED)
            })
            .collect();
        let forms: Vec<Option<&EncodedForm>> = decoded.iter().map(|d| d.as_ref().ok()).collect();
        let valid = EncodedForm::verify_signatures(&forms, key_points);
        for (result, ok) in decoded.iter_mut().zip(valid) {
            if result.is_ok() && !ok {
                *result = Err(codes::SIGNATURE_INVALID);
            }
        }
        decoded
    })
}

/// Imports recapitulation forms (D.Hasil), one signed form per line.
pub fn import_recaps(engine: &mut Engine, file: &Path) -> Result<ImportSummary> {
    use saksi_election::recap::SignedRecap;
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let mut summary = ImportSummary::default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    for chunk in lines.chunks(4096) {
        summary.lines += chunk.len();
        let mut forms = Vec::new();
        for line in chunk {
            match SignedRecap::decode(line.as_bytes()) {
                Ok(form) if form.signature_valid() => forms.push(form),
                Ok(_) => {
                    *summary
                        .refused
                        .entry(codes::SIGNATURE_INVALID.into())
                        .or_default() += 1
                }
                Err(_) => *summary.refused.entry(MALFORMED.into()).or_default() += 1,
            }
        }
        for outcome in engine.ingest_recaps(forms)? {
            summary.count(outcome);
        }
    }
    Ok(summary)
}

/// What a file of signed lines holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Forms,
    Recaps,
    /// Poll witnesses' copies.
    Copies,
    /// Statements (the authority's, or a participant's about its poll witnesses), one per line.
    Statements,
}

/// What a file holds, decided by decoding its first line (not by searching its text, which
/// ordinary JSON spacing defeats): recapitulation forms when that line's `form.format` is
/// `saksi/d-hasil/v1`, copies when it has a `copy`, statements when its `type` is `admin` or
/// `participant`, TPS forms otherwise (a line that is none of them is then refused as malformed,
/// and counted).
pub fn file_kind(file: &Path) -> Result<FileKind> {
    let f = std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let limit = saksi_recap::statements::MAX_STATEMENT_BYTES as u64 + 2;
    let mut reader = std::io::BufReader::new(f).take(limit);
    let mut first = String::new();
    while first.trim().is_empty() {
        first.clear();
        if reader.read_line(&mut first).unwrap_or(0) == 0 {
            return Ok(FileKind::Forms);
        }
    }
    let value: serde_json::Value = match serde_json::from_str(first.trim()) {
        Ok(value) => value,
        Err(_) => return Ok(FileKind::Forms),
    };
    Ok(if value["form"]["format"] == "saksi/d-hasil/v1" {
        FileKind::Recaps
    } else if value.get("copy").is_some() {
        FileKind::Copies
    } else if value["type"] == "admin" || value["type"] == "participant" {
        FileKind::Statements
    } else {
        FileKind::Forms
    })
}

/// Logs statements, one per line, each checked as `saksi log-statement` checks one.
pub fn import_statements(engine: &mut Engine, file: &Path) -> Result<ImportSummary> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let mut summary = ImportSummary::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        summary.lines += 1;
        match engine.submit_statement(line.as_bytes()) {
            Ok(_) => {
                summary.logged += 1;
                summary.accepted += 1;
            }
            Err(saksi_recap::EngineError::Statement(detail)) => {
                println!("  statement refused: {detail}");
                *summary
                    .refused
                    .entry("STATEMENT_REFUSED".into())
                    .or_default() += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(summary)
}

/// Prints the inflation report: discrepancies largest first, and coverage gaps.
pub fn audit_recap(state: &saksi_recap::State, json: bool) -> Result<u8> {
    let started = Instant::now();
    let (found, coverage) = saksi_recap::inflation::discrepancies(state);
    let seconds = started.elapsed().as_secs_f64();
    if json {
        let items: Vec<serde_json::Value> =
            found.iter().map(saksi_server::discrepancy_json).collect();
        println!("{}", serde_json::to_string_pretty(&items)?);
    } else {
        println!(
            "{} discrepancies between recap forms and the figures below them; {} rows with TPS still missing (coverage, not inflation); cross-checked {} recap forms in {:.3}s",
            found.len(),
            coverage.len(),
            state.recaps.len(),
            seconds
        );
        for d in &found {
            let fields: Vec<String> = d
                .fields
                .iter()
                .map(|(k, f)| format!("{k} {} vs {} ({:+})", f.recap, f.below, f.delta))
                .collect();
            println!(
                "  {:<9} {:<10} child {:<10} {:<22} basis {:<5} {}",
                d.level.as_str(),
                d.region.map_or("nasional".to_string(), |c| c.to_string()),
                d.child.map_or("-".to_string(), |c| c.to_string()),
                d.kind,
                d.basis,
                fields.join(", ")
            );
        }
    }
    Ok(if found.is_empty() {
        crate::EXIT_OK
    } else {
        crate::EXIT_REJECTIONS
    })
}

/// Prints every poll witness's latest copy that disagrees with its TPS's official current result
/// (`--json`: `[{tps, participant, fields, official, copy, official_index, copy_index}]`), in TPS
/// code order, and the counts. Exit 1 if any disagreement.
pub fn audit_copies(state: &saksi_recap::State, json: bool) -> Result<u8> {
    let started = Instant::now();
    let positions = state.positions();
    let mut items = Vec::new();
    for &tps in &state.disagreeing {
        let official_index = state.tps_record(tps).and_then(|r| r.current);
        for (copy, differences) in state.latest_copies(tps) {
            let Some(differences) = differences.filter(|d| !d.is_empty()) else {
                continue;
            };
            let participant = positions.get(copy.participant).cloned().unwrap_or_default();
            items.push((tps, participant, differences, official_index, copy.index));
        }
    }
    let tally = &state.national().copies;
    if json {
        let out: Vec<serde_json::Value> = items
            .iter()
            .map(
                |(tps, participant, differences, official_index, copy_index)| {
                    let side = |pick: fn(&saksi_recap::state::FieldDifference) -> i64| {
                        differences
                            .iter()
                            .map(|d| (d.field.clone(), serde_json::Value::from(pick(d))))
                            .collect::<serde_json::Map<_, _>>()
                    };
                    serde_json::json!({
                        "tps": tps.as_str(),
                        "participant": participant,
                        "fields": differences.iter().map(|d| d.field.as_str()).collect::<Vec<_>>(),
                        "official": side(|d| d.official),
                        "copy": side(|d| d.copy),
                        "official_index": official_index,
                        "copy_index": copy_index,
                    })
                },
            )
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "{} copies disagree with the official result at {} TPS; {} TPS have copies, {} of them only copies (no accepted official result); compared in {:.3}s",
            items.len(),
            tally.tps_disagreeing,
            tally.tps_with_copies,
            tally.tps_witness_only,
            started.elapsed().as_secs_f64()
        );
        for (tps, participant, differences, official_index, copy_index) in &items {
            let fields: Vec<String> = differences
                .iter()
                .map(|d| format!("{} official {} copy {}", d.field, d.official, d.copy))
                .collect();
            println!(
                "  {tps}  participant {participant}  entries {}/{copy_index}  {}",
                official_index.map_or("-".to_string(), |i| i.to_string()),
                fields.join(", ")
            );
        }
        for effect in &state.correction_effects {
            println!(
                "  correction at entry {} for {}: {} ({} of {} copies disagreed before, {} after)",
                effect.index,
                effect.tps,
                effect.kind(),
                effect.disagreeing_before,
                effect.copies,
                effect.disagreeing_after
            );
        }
    }
    Ok(if items.is_empty() {
        crate::EXIT_OK
    } else {
        crate::EXIT_REJECTIONS
    })
}

/// Imports signed forms. Two stages overlap: a reader decodes and verifies the next chunk on every
/// core while the single writer checks, logs and counts the current one.
pub fn import_forms(engine: &mut Engine, file: &Path) -> Result<ImportSummary> {
    let total = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    let mut reader = std::io::BufReader::with_capacity(
        1 << 20,
        std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?,
    );
    let mut summary = ImportSummary::default();
    // Every signer's point before the first batch (nothing to do if the engine holds them already).
    engine.hold_key_points(saksi_recap::engine::KeyPointsFill::Now);
    let mut progress = Progress::new("importing", total);
    type Chunk = (usize, Vec<Result<EncodedForm, &'static str>>, u64, f64);
    let shared = engine.shared();
    let shared = &shared;
    let (sender, receiver) = std::sync::mpsc::sync_channel::<std::io::Result<Chunk>>(1);
    std::thread::scope(|scope| -> Result<()> {
        scope.spawn(move || {
            let mut read = 0u64;
            loop {
                let mut lines = Vec::with_capacity(IMPORT_CHUNK);
                let mut text = String::new();
                while lines.len() < IMPORT_CHUNK {
                    text.clear();
                    match reader.read_line(&mut text) {
                        Ok(0) => break,
                        Ok(n) => read += n as u64,
                        Err(e) => {
                            let _ = sender.send(Err(e));
                            return;
                        }
                    }
                    let line = text.trim_end_matches(['\n', '\r']);
                    if !line.is_empty() {
                        lines.push(line.to_string());
                    }
                }
                if lines.is_empty() {
                    return;
                }
                let step = Instant::now();
                // The writer logs only forms here, never a registry change, so it never waits
                // for this read lock.
                let verified =
                    decode_and_verify(&lines, &shared.key_points.read().expect("not poisoned"));
                if sender
                    .send(Ok((
                        lines.len(),
                        verified,
                        read,
                        step.elapsed().as_secs_f64(),
                    )))
                    .is_err()
                {
                    return;
                }
            }
        });
        for chunk in receiver {
            let (count, verified, read, verify_seconds) = chunk?;
            summary.lines += count;
            summary.verify_seconds += verify_seconds;
            let step = Instant::now();
            let mut forms = Vec::with_capacity(verified.len());
            for result in verified {
                match result {
                    Ok(form) => forms.push(form),
                    Err(code) => *summary.refused.entry(code.to_string()).or_default() += 1,
                }
            }
            for outcome in engine.ingest(forms)? {
                summary.count(outcome);
            }
            summary.ingest_seconds += step.elapsed().as_secs_f64();
            progress.update(read);
        }
        Ok(())
    })?;
    progress.finish();
    Ok(summary)
}

pub fn import_sirekap(engine: &mut Engine, files: &[std::path::PathBuf]) -> Result<ImportSummary> {
    let mut summary = ImportSummary::default();
    let mut not_reported = 0usize;
    for file in files {
        let reader: Box<dyn Read> = if file.extension().is_some_and(|e| e == "gz") {
            Box::new(flate2::read::MultiGzDecoder::new(
                std::fs::File::open(file)
                    .with_context(|| format!("cannot open {}", file.display()))?,
            ))
        } else {
            Box::new(
                std::fs::File::open(file)
                    .with_context(|| format!("cannot open {}", file.display()))?,
            )
        };
        let mut lines = std::io::BufReader::new(reader).lines();
        let header = lines.next().context("empty file")??;
        let columns = SirekapColumns::from_header(&header)?;
        let mut sheets = Vec::new();
        for (i, line) in lines.enumerate() {
            let line = line?;
            summary.lines += 1;
            match columns.parse(&line, i + 2) {
                Ok(SirekapRow::Reported(sheet)) => sheets.push(sheet),
                Ok(SirekapRow::NotReported(_)) => not_reported += 1,
                Err(_) => *summary.refused.entry(MALFORMED.into()).or_default() += 1,
            }
        }
        for chunk in sheets.chunks(IMPORT_CHUNK) {
            for verdict in engine.transcribe("sirekap", chunk.to_vec())? {
                summary.count_verdict(verdict);
            }
        }
    }
    *summary.refused.entry("NOT_REPORTED".into()).or_default() += not_reported;
    Ok(summary)
}

pub fn print_totals(engine: &Engine) {
    let shared = engine.shared();
    let state = shared.state.read().expect("not poisoned");
    let national = state.national();
    let positions: Vec<String> = state
        .election()
        .and_then(|e| e.contests.first())
        .map(|c| c.candidates.iter().map(|p| p.number.clone()).collect())
        .unwrap_or_default();
    let votes: Vec<String> = positions
        .iter()
        .zip(&national.votes)
        .map(|(p, v)| format!("{p}: {v}"))
        .collect();
    println!(
        "national totals from the log: {}; valid {}, invalid {}; TPS reported {} of {}; rejected entries {}",
        votes.join(", "),
        national.valid,
        national.invalid,
        national.tps_reported,
        national.tps_total,
        national.rejected_entries
    );
    let published = shared.published();
    println!(
        "checkpoint: size {}, root {}",
        published.checkpoint.size, published.checkpoint.root
    );
}

pub fn keygen(out: &Path) -> Result<()> {
    let key = keygen_quiet(out)?;
    println!("{}", key.public());
    Ok(())
}

/// Makes a key file (mode 0600, never over an existing file, fsynced) and returns the key.
fn keygen_quiet(out: &Path) -> Result<SecretKey> {
    saksi_recap::keyfile::generate_secret_key_file(out)
        .with_context(|| format!("cannot create {}", out.display()))
}

pub fn read_key(path: &Path) -> Result<SecretKey> {
    saksi_recap::keyfile::read_secret_key(path).map_err(anyhow::Error::msg)
}

/// One HTTP exchange through the shared client (`saksi-client`: http:// and https://, timeouts,
/// bounded bodies, no redirects followed): `GET` or `POST`.
pub fn http(method: &str, url: &str, body: &[u8]) -> Result<(u16, Vec<u8>)> {
    static CLIENT: std::sync::OnceLock<saksi_client::Client> = std::sync::OnceLock::new();
    let client = match CLIENT.get() {
        Some(client) => client,
        None => {
            let client = saksi_client::Client::new(saksi_client::Options::default())?;
            CLIENT.get_or_init(|| client)
        }
    };
    let response = match method {
        "GET" => client.get(url),
        "POST" => client.post(url, body),
        other => bail!("HTTP method {other} is not used by saksi"),
    }
    .with_context(|| format!("{method} {url}"))?;
    Ok((response.status, response.body))
}

/// Signs a form (the `form` object, or a whole envelope whose form is re-signed) and posts it.
pub fn submit(url: &str, form_file: &Path, key: &SecretKey, copy: Option<&str>) -> Result<u8> {
    let text =
        std::fs::read(form_file).with_context(|| format!("cannot read {}", form_file.display()))?;
    let mut value: serde_json::Value =
        serde_json::from_slice(&text).context("the form file is not JSON")?;
    if value.get("copy").is_some() {
        value = value["copy"]["form"].take();
    } else if value.get("form").is_some() {
        value = value["form"].take();
    }
    value["signer"] = serde_json::Value::String(key.public().to_base64());
    let envelope = serde_json::json!({"form": value, "signature": "A".repeat(86) + "=="});
    let unsigned =
        SignedForm::decode(&serde_json::to_vec(&envelope)?).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (path, body) = match copy {
        Some(participant) => {
            if !saksi_election::copy::valid_participant(participant) {
                bail!("--copy {participant:?}: a participant's ballot position, e.g. 01");
            }
            let copy = saksi_election::copy::WitnessCopy {
                form: unsigned.form,
                participant: participant.to_string(),
            };
            ("copies", copy.sign(key).encode())
        }
        None => ("forms", unsigned.form.sign(key).encode()),
    };
    let (status, body) = http(
        "POST",
        &format!("{}/api/v1/{path}", url.trim_end_matches('/')),
        &body,
    )?;
    println!("{status}");
    println!("{}", String::from_utf8_lossy(&body));
    Ok(if (200..300).contains(&status) {
        crate::EXIT_OK
    } else {
        crate::EXIT_REJECTIONS
    })
}

/// Stores every file under `dir` in the engine's evidence store (durable, each once); prints what
/// was stored, what was there already and what was refused (with why, the first few by name).
/// Returns the number refused.
pub fn import_photos(engine: &saksi_recap::Engine, dir: &Path) -> Result<usize> {
    use saksi_recap::evidence::EvidenceError;
    const LISTED_MAX: usize = 10;
    let started = Instant::now();
    let store = engine.shared().evidence.clone();
    let (mut stored, mut before, mut refused, mut bytes) = (0usize, 0usize, 0usize, 0u64);
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        let meta = std::fs::metadata(&path).with_context(|| format!("{}", path.display()))?;
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                pending.push(entry?.path());
            }
            continue;
        }
        // Read at most one byte past the limit: a huge file is refused without reading it whole.
        let mut photo = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(
                std::fs::File::open(&path)?,
                saksi_recap::evidence::MAX_PHOTO_BYTES as u64 + 1,
            ),
            &mut photo,
        )?;
        match store.put(&photo) {
            Ok(s) if s.created => {
                stored += 1;
                bytes += s.bytes as u64;
            }
            Ok(_) => before += 1,
            Err(EvidenceError::Io(e)) => return Err(e).context("the evidence store"),
            Err(e) => {
                refused += 1;
                if refused <= LISTED_MAX {
                    println!("  refused {}: {e}", path.display());
                }
            }
        }
    }
    let (photos, store_bytes) = store.usage();
    println!(
        "photos: {stored} stored ({:.1} MB), {before} already stored, {refused} refused, in {:.1}s; the store holds {photos} photos, {:.1} MB",
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64(),
        store_bytes as f64 / 1e6
    );
    Ok(refused)
}

/// Imports poll witnesses' copies, one signed copy per line (e.g. `saksi gen`'s copies.ndjson):
/// decoded and signature-checked on every core, then entitlement, rulebook and log in the writer.
pub fn import_copies(engine: &mut Engine, file: &Path) -> Result<ImportSummary> {
    use saksi_election::copy::SignedCopy;
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    let mut summary = ImportSummary::default();
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    for chunk in lines.chunks(IMPORT_CHUNK) {
        summary.lines += chunk.len();
        let step = Instant::now();
        let per = chunk.len().div_ceil(workers).max(1);
        let checked: Vec<Result<SignedCopy, &'static str>> = std::thread::scope(|scope| {
            let handles: Vec<_> = chunk
                .chunks(per)
                .map(|part| {
                    scope.spawn(move || {
                        part.iter()
                            .map(|line| match SignedCopy::decode(line.as_bytes()) {
                                Ok(copy) if copy.signature_valid() => Ok(copy),
                                Ok(_) => Err(codes::SIGNATURE_INVALID),
                                Err(_) => Err(MALFORMED),
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("a verifier thread panicked"))
                .collect()
        });
        summary.verify_seconds += step.elapsed().as_secs_f64();
        let step = Instant::now();
        let mut copies = Vec::with_capacity(checked.len());
        for result in checked {
            match result {
                Ok(copy) => copies.push(copy),
                Err(code) => *summary.refused.entry(code.to_string()).or_default() += 1,
            }
        }
        for outcome in engine.ingest_copies(copies)? {
            summary.count(outcome);
        }
        summary.ingest_seconds += step.elapsed().as_secs_f64();
    }
    Ok(summary)
}

/// Bytes of enrolments per participant statement: well under one log entry (64 KiB) with room
/// for the signature and envelope.
const POLL_WITNESS_STATEMENT_BUDGET: usize = 48 * 1024;

/// Poll witnesses to enrol: each key with the TPS or regions it speaks for.
pub type PollWitnessList = Vec<(saksi_election::sign::PublicKey, Vec<saksi_election::Code>)>;

/// Reads poll witnesses to enrol from a CSV (`participant,key,scope`, scope codes separated by
/// `;`): those of `participant`, and how many lines were for other participants.
pub fn read_poll_witnesses(file: &Path, participant: &str) -> Result<(PollWitnessList, usize)> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let mut out = Vec::new();
    let mut others = 0;
    for (n, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("{}:{}", file.display(), n + 1);
        let mut fields = line.split(',');
        let (Some(who), Some(key), Some(scope), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            bail!("{}: expected participant,key,scope", at());
        };
        if who != participant {
            others += 1;
            continue;
        }
        let key = saksi_election::sign::PublicKey::from_base64(key)
            .with_context(|| format!("{}: the key", at()))?;
        let scope = scope
            .split(';')
            .map(|code| {
                saksi_election::Code::parse(code.trim())
                    .map_err(|e| anyhow::anyhow!("{}: scope {code:?}: {e}", at()))
            })
            .collect::<Result<Vec<_>>>()?;
        out.push((key, scope));
    }
    Ok((out, others))
}

/// A participant's statements enrolling and revoking poll witnesses, each within one log entry,
/// signed with the participant's key. Revocations ride with the first statement.
pub fn poll_witness_statements(
    participant: &str,
    key: &SecretKey,
    enrol: PollWitnessList,
    revoke: Vec<saksi_election::sign::PublicKey>,
    issued_at: u64,
) -> Vec<Vec<u8>> {
    use saksi_election::registry::PollWitnessChange;
    use saksi_recap::entry::ParticipantStatement;
    let mut changes = vec![PollWitnessChange {
        participant: participant.to_string(),
        enrol: Vec::new(),
        revoke,
    }];
    let mut bytes = 0;
    for (witness, scope) in enrol {
        // A key in base64, a code of at most 13 digits, and JSON punctuation.
        let size = 52 + scope.len() * 16;
        if bytes + size > POLL_WITNESS_STATEMENT_BUDGET {
            changes.push(PollWitnessChange {
                participant: participant.to_string(),
                enrol: Vec::new(),
                revoke: Vec::new(),
            });
            bytes = 0;
        }
        bytes += size;
        changes
            .last_mut()
            .expect("at least one change")
            .enrol
            .push((witness, scope));
    }
    changes
        .into_iter()
        .filter(|c| !c.enrol.is_empty() || !c.revoke.is_empty())
        .map(|change| {
            ParticipantStatement { change, issued_at }
                .sign(key)
                .encode()
        })
        .collect()
}

/// Enrols a generated election's poll witnesses (its `poll-witnesses.csv`), each participant
/// signing with its key derived from the seed: what the participants would do before election day.
pub fn enrol_generated_poll_witnesses(engine: &mut Engine, gen: &Path) -> Result<usize> {
    let truth: serde_json::Value = serde_json::from_slice(
        &std::fs::read(gen.join("truth.json"))
            .with_context(|| format!("cannot read {}", gen.join("truth.json").display()))?,
    )?;
    let seed = truth["seed"].as_u64().context("truth.json names no seed")?;
    let file = gen.join("poll-witnesses.csv");
    let mut enrolled = 0;
    for participant in saksi_gen::copies::PARTICIPANTS {
        let (enrol, _) = read_poll_witnesses(&file, participant)?;
        enrolled += enrol.len();
        let key = saksi_gen::copies::participant_key(seed, participant);
        // A fixed time: generation is a pure function of its inputs, and so is this log.
        for statement in
            poll_witness_statements(participant, &key, enrol, Vec::new(), 1_707_868_800)
        {
            engine.submit_statement(&statement)?;
        }
    }
    Ok(enrolled)
}

/// The demo's photos: those of every TPS where the generator injected a copy disagreement (its
/// official form and its witnesses' copies name the same three photos), so the site shows the
/// evidence where a reader will look. Storing every TPS's would take some 12 GB; `saksi gen
/// --photos` and `saksi import --photos` do that when wanted.
pub fn store_disagreement_photos(engine: &Engine, gen: &Path) -> Result<(usize, f64)> {
    let started = Instant::now();
    let truth: serde_json::Value = serde_json::from_slice(&std::fs::read(gen.join("truth.json"))?)?;
    let seed = truth["seed"].as_u64().context("truth.json names no seed")?;
    let tps: std::collections::BTreeSet<&str> = truth["copy_disagreements"]
        .as_array()
        .map(|items| items.iter().filter_map(|d| d["tps"].as_str()).collect())
        .unwrap_or_default();
    let store = engine.shared().evidence.clone();
    let mut stored = 0;
    for code in tps {
        let code = saksi_election::Code::parse(code)?;
        for page in 1..=saksi_gen::photo::PAGES {
            let png = saksi_gen::photo::photo_png(seed, code, page);
            store
                .put(&png)
                .map_err(|e| anyhow::anyhow!("storing a photo of {code}: {e}"))?;
            stored += 1;
        }
    }
    Ok((stored, started.elapsed().as_secs_f64()))
}

/// `saksi report`: uploads the photos, signs the report with the reporter's key (made if missing),
/// files it, and checks the receipt against the log's key: the report as signed is in the log.
pub fn report(args: crate::cli::ReportArgs) -> Result<u8> {
    use saksi_election::report::{text_digest, Category, Report, ReportSubmission};
    let base = args.url.trim_end_matches('/').to_string();
    saksi_election::report::check_text(&args.text).map_err(|e| anyhow::anyhow!("--text: {e}"))?;
    // A follow-up: the report it follows, by index (read from the log at --url) or by signature.
    let followed = match &args.follows {
        None => None,
        Some(named) => Some(match named.parse::<u64>() {
            Ok(index) => {
                let (status, bytes) = http("GET", &format!("{base}/api/v1/entries/{index}"), b"")?;
                if status != 200 {
                    bail!("--follows {index}: the server has no entry {index} ({status})");
                }
                match saksi_recap::entry::Entry::decode(&bytes) {
                    Ok(saksi_recap::entry::Entry::Report { report }) => {
                        (report.signature, Some(report.report))
                    }
                    _ => bail!("--follows {index}: entry {index} is not a report"),
                }
            }
            Err(_) => (
                saksi_election::sign::Signature::from_base64(named).map_err(|_| {
                    anyhow::anyhow!("--follows is a log index or a report's base64 signature")
                })?,
                None,
            ),
        }),
    };
    let category = match (&args.category, &followed) {
        (Some(code), _) => Category::parse(code).with_context(|| {
            let codes: Vec<&str> = Category::ALL.iter().map(|c| c.code()).collect();
            format!("--category is one of {}", codes.join(", "))
        })?,
        (None, Some((_, Some(report)))) => report.category,
        (None, _) => bail!("give --category (a follow-up by signature does not know its report's)"),
    };
    let place = match (args.tps.or(args.region), &followed) {
        (Some(place), _) => place,
        (None, Some((_, Some(report)))) => report.place,
        (None, _) => bail!("give --tps or --region"),
    };
    let contact = match &args.contact {
        None => None,
        Some(details) => {
            let recipient = match &args.oversight_recipient {
                Some(recipient) => recipient.clone(),
                None => {
                    let (_, body) = http("GET", &format!("{base}/api/v1/moderation"), b"")?;
                    let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                    body["oversight_recipient"]
                        .as_str()
                        .context("the server's registry names no oversight body's key for contact details; leave out --contact or give --oversight-recipient")?
                        .to_string()
                }
            };
            Some(
                saksi_recap::contact::seal(&recipient, details)
                    .map_err(|e| anyhow::anyhow!("--contact: {e}"))?,
            )
        }
    };
    let key = if args.key.exists() {
        read_key(&args.key)?
    } else {
        let key = SecretKey::generate();
        saksi_recap::keyfile::write_new_secret(
            &args.key,
            &saksi_recap::keyfile::secret_key_text(&key),
        )
        .with_context(|| format!("cannot write {}", args.key.display()))?;
        println!(
            "made a reporter key in {} (public key {}): keep it to prove authorship and add follow-ups",
            args.key.display(),
            key.public()
        );
        key
    };
    let mut photos = Vec::new();
    for path in &args.photo {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let (status, body) = http("POST", &format!("{base}/api/v1/evidence"), &bytes)?;
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        if status != 200 && status != 201 {
            bail!(
                "{}: the photo was refused ({status}): {}",
                path.display(),
                body["error"]
            );
        }
        let digest = body["digest"]
            .as_str()
            .and_then(saksi_election::form::PhotoDigest::parse)
            .context("the evidence store answered without a digest")?;
        photos.push(digest);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let report = Report {
        election: Election::pemilu_2024().id,
        place,
        category,
        event_at: args.event_at.unwrap_or(now),
        filed_at: now,
        text_sha256: text_digest(&args.text),
        photos,
        reporter: key.public(),
        follows: followed.map(|(signature, _)| signature),
        withdraw: args.withdraw,
        contact,
    };
    let signed = report.sign(&key);
    // The work the intake asks under a flood (a relay asks none and has no /api/v1/intake).
    let pow_bits = match http("GET", &format!("{base}/api/v1/intake"), b"") {
        Ok((200, body)) => serde_json::from_slice::<serde_json::Value>(&body).unwrap_or_default()
            ["pow_bits"]
            .as_u64()
            .unwrap_or(0)
            .min(saksi_recap::entry::MAX_POW_BITS as u64) as u8,
        _ => 0,
    };
    let stamp = (pow_bits > 0).then(|| {
        println!("the intake asks for a proof-of-work stamp of {pow_bits} bits; working...");
        saksi_election::report::make_stamp(&signed.signature, pow_bits)
    });
    let submission = ReportSubmission {
        signed: signed.clone(),
        text: args.text.clone(),
        stamp,
    };
    let (status, body) = http(
        "POST",
        &format!("{base}/api/v1/reports"),
        &submission.encode(),
    )?;
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    if status != 200 && status != 201 {
        println!("refused ({status}): {}", body["error"]);
        return Ok(crate::EXIT_REJECTIONS);
    }
    let index = body["index"].as_u64().context("no index in the answer")?;
    let receipt = body["receipt"]
        .as_str()
        .context("no receipt in the answer")?;
    let vkey = match args.vkey {
        Some(vkey) => vkey,
        None => {
            let log: serde_json::Value =
                serde_json::from_slice(&http("GET", &format!("{base}/api/v1/log"), b"")?.1)?;
            let text = log["vkey"]
                .as_str()
                .context("the server names no log key")?;
            println!("checking the receipt with the server's own log key (pin one with --vkey)");
            saksi_tlog::note::Verifier::parse(text)?
        }
    };
    // The entry the log must hold is exactly the signed report: its bytes are ours to compute. A
    // relay's entry adds only when it received the report.
    let entry = match body["relay"].is_object() {
        false => saksi_recap::entry::Entry::Report { report: signed }.encode(),
        true => saksi_recap::relay::RelayedReport {
            received_at: body["received_at"]
                .as_u64()
                .context("the relay's answer has no received_at")?,
            report: signed,
        }
        .encode(),
    };
    let proof = saksi_tlog::tproof::TlogProof::parse(receipt)
        .map_err(|e| anyhow::anyhow!("the receipt does not parse: {e:?}"))?;
    if proof.index != index {
        bail!(
            "the receipt is for entry {}, the answer said {index}",
            proof.index
        );
    }
    match proof.verify(&saksi_tlog::hash::leaf_hash(&entry), &vkey, &[], 0) {
        Ok(checkpoint) => {
            if body["relay"].is_object() {
                println!(
                    "filed with a relay, which forwards it to {}",
                    body["relay"]["upstream"].as_str().unwrap_or("its upstream")
                );
            }
            println!(
                "report filed: log entry {index}{}; the receipt proves it is in the log signed by {} (checkpoint size {})",
                if status == 200 { " (filed before)" } else { "" },
                vkey.name,
                checkpoint.checkpoint.size
            );
            println!("{receipt}");
            Ok(crate::EXIT_OK)
        }
        Err(e) => {
            println!("the receipt does NOT prove the report is in the log: {e:?}");
            Ok(crate::EXIT_REJECTIONS)
        }
    }
}

/// Files copied to the store per transaction: a few MiB of tiles, so a national log loads in
/// bounded rounds.
const RESTORE_ROUND_BYTES: usize = 16 << 20;

/// `saksi restore`: verifies a log copy entry by entry (`audit`), then loads its files into an empty
/// PostgreSQL store in bounded rounds, the tiles first, then `checkpoints/<size>` (the commit point:
/// the store holds a log from then on) and `checkpoint`; then the photos and texts, each checked
/// against its digest by the store it goes into. A restore cut short leaves tiles without a
/// checkpoint, which the next restore overwrites.
pub fn restore(args: crate::cli::RestoreArgs) -> Result<u8> {
    use saksi_tlog::Storage;
    let started = std::time::Instant::now();
    let copy = saksi_tlog::ReadOnlyDir::new(&args.from);
    let audited = saksi_tlog::audit::audit(&copy, &args.vkey, |_, _| {})
        .map_err(|e| anyhow::anyhow!("{}: the copy does not verify: {e}", args.from.display()))?;
    let store = saksi_pgstore::PgStorage::connect(&args.store, saksi_pgstore::DEFAULT_CONNECTIONS)
        .context("opening the PostgreSQL store")?;
    if !store.list("checkpoints")?.is_empty() {
        bail!("the store already holds a log: restore loads an empty one");
    }
    let note = copy
        .read(saksi_tlog::CHECKPOINT_PATH)?
        .context("the copy has no checkpoint")?;
    let read_now = saksi_tlog::checkpoint::open(&note, &args.vkey, &[])
        .map_err(|e| anyhow::anyhow!("the copy's checkpoint: {e}"))?
        .checkpoint;
    if read_now != audited.checkpoint {
        bail!("the copy changed while it was verified (is a mirror still writing it?): stop it, then restore");
    }
    let mut tiles = Vec::new();
    collect_files(&args.from, "tile", &mut tiles)?;
    let (mut round, mut round_bytes, mut copied) = (Vec::new(), 0usize, 0usize);
    for path in tiles {
        let bytes = copy
            .read(&path)?
            .with_context(|| format!("{path} vanished"))?;
        round_bytes += bytes.len();
        round.push((path, bytes));
        if round_bytes >= RESTORE_ROUND_BYTES {
            copied += round.len();
            store.write_new(&std::mem::take(&mut round))?;
            round_bytes = 0;
        }
    }
    copied += round.len();
    store.write_new(&round)?;
    store.create_durable(&[(
        saksi_tlog::checkpoints_path(audited.checkpoint.size),
        note.clone(),
    )])?;
    store.write_durable(&[(saksi_tlog::CHECKPOINT_PATH.into(), note)])?;
    println!(
        "saksi restore: {} entries ({} tile files) loaded into {} in {:.1}s",
        audited.checkpoint.size,
        copied,
        store.target(),
        started.elapsed().as_secs_f64()
    );
    for (dir, kind) in [
        (&args.evidence, "evidence"),
        (&args.reports, "report-texts"),
    ] {
        let Some(dir) = dir else { continue };
        let mut names = Vec::new();
        collect_files(dir, "sha256", &mut names)?;
        let files = store.files(kind);
        let source = saksi_tlog::ReadOnlyDir::new(dir);
        for name in &names {
            let bytes = source
                .read(name)?
                .with_context(|| format!("{name} vanished"))?;
            // Photos and texts are both named by the SHA-256 of their bytes.
            let digest =
                saksi_election::form::hex(&saksi_election::form::PhotoDigest::of(&bytes).0);
            if !name.ends_with(&digest) {
                bail!(
                    "{}/{name} does not hash to its name: not loaded",
                    dir.display()
                );
            }
            files.create_durable(&[(name.clone(), bytes)])?;
        }
        println!(
            "saksi restore: {} {kind} files loaded from {}",
            names.len(),
            dir.display()
        );
    }
    Ok(crate::EXIT_OK)
}

/// Every file under `root/dir`, as paths relative to `root` (`/`-separated), in name order.
fn collect_files(root: &Path, dir: &str, out: &mut Vec<String>) -> Result<()> {
    let entries = match std::fs::read_dir(root.join(dir)) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("listing {}/{dir}", root.display())),
    };
    let mut names: Vec<(String, bool)> = Vec::new();
    for entry in entries {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(String::from) else {
            bail!("{}/{dir} holds a name that is not UTF-8", root.display());
        };
        names.push((name, entry.file_type()?.is_dir()));
    }
    names.sort();
    for (name, is_dir) in names {
        let path = format!("{dir}/{name}");
        if is_dir {
            collect_files(root, &path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}
