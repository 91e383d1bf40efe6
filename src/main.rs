//! The `saksi` command line. Library crates do the work; this edge parses arguments, prints, and maps
//! outcomes to fixed exit codes:
//! - 0: done, and (for `check`) every form was accepted;
//! - 1: done, and some form was rejected or malformed (a result, not a failure);
//! - 2: could not do it (bad arguments, unreadable input).

mod bench;
mod check;
mod cli;
mod config;
mod forensics;
mod ops;
mod owned;
mod progress;
mod relay;
mod verify;

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Parser;

use cli::*;
use saksi_election::{rules, Election, Registry};

/// See Cargo.toml: chosen for allocation-heavy ingest (measured in docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// mimalloc's run-time options (its C API; the crate links the library).
extern "C" {
    fn mi_option_get(option: std::ffi::c_int) -> std::ffi::c_long;
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// Batch commands (import, verify) keep the memory they free for their own later allocations
/// instead of returning it to the system after mimalloc's purge delay: a national run frees and
/// allocates again hundreds of MB, and the kernel zeroes every page it hands back (about 2 s of
/// system CPU per national import: docs/benchmarks.md, issue 18's third step). A server keeps the
/// default, so that it gives memory back.
fn keep_freed_memory() {
    // `mi_option_purge_delay` in mimalloc v3's include/mimalloc.h, and its default there (ms). A
    // different value means the operator set MIMALLOC_PURGE_DELAY (respected) or another mimalloc
    // (left alone).
    const PURGE_DELAY: std::ffi::c_int = 15;
    const DEFAULT_PURGE_DELAY_MS: std::ffi::c_long = 1000;
    const NEVER: std::ffi::c_long = -1;
    // SAFETY: plain C calls on an option index within mimalloc's range; options may be set at run
    // time.
    unsafe {
        if mi_option_get(PURGE_DELAY) == DEFAULT_PURGE_DELAY_MS {
            mi_option_set(PURGE_DELAY, NEVER);
        }
    }
}

pub(crate) const EXIT_OK: u8 = 0;
pub(crate) const EXIT_REJECTIONS: u8 = 1;
pub(crate) const EXIT_ERROR: u8 = 2;

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, which turns a closed pipe into a panic on the next print; a command-line
    // tool should just stop, as `head` expects.
    // SAFETY: called once at start, before any thread exists; SIG_DFL is a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Before parsing, while no other thread exists: a configuration file's settings become the
    // environment clap reads each flag from (see ServeArgs::config).
    if let Err(error) = config::apply(std::env::args_os().collect()) {
        eprintln!("saksi: error: {error:#}");
        return ExitCode::from(EXIT_ERROR);
    }
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("saksi: error: {error:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// One function per command; each returns its exit code.
fn run(command: Command) -> Result<u8> {
    match command {
        Command::Demo(args) => demo(&args.data, args.tps, args.addr, args.no_serve),
        Command::Gen(args) => gen_command(args),
        Command::Init(args) => init_command(args),
        Command::Genesis(args) => genesis_command(args),
        Command::Import(args) => {
            keep_freed_memory();
            import_command(args)
        }
        Command::Serve(args) => serve_command(args),
        Command::Submit(args) => submit_command(args),
        Command::Enroll(args) => enroll_command(args),
        Command::PollWitnesses(args) => poll_witnesses_command(args),
        Command::Report(args) => ops::report(args),
        Command::Moderate(args) => moderate_command(args),
        Command::LogStatement(args) => log_statement_command(args),
        Command::Verify(args) => {
            keep_freed_memory();
            verify::run(
                args.dir.as_deref(),
                args.url.as_deref(),
                args.api.as_deref(),
                &args.vkey,
                args.state.as_deref(),
                args.follow,
                args.evidence
                    .then(|| match (&args.evidence_dir, &args.url, &args.dir) {
                        (Some(dir), _, _) => verify::PhotoSource::Dir(dir.clone()),
                        (None, Some(url), _) => verify::PhotoSource::Server(url.clone()),
                        (None, None, dir) => verify::PhotoSource::Dir(
                            dir.as_deref()
                                .and_then(|d| d.parent())
                                .unwrap_or(std::path::Path::new("."))
                                .join("evidence"),
                        ),
                    }),
            )
        }
        Command::Restore(args) => ops::restore(args),
        Command::Mirror(args) if args.follow => verify::mirror_follow(
            &args.url,
            &args.dir,
            &args.vkey,
            args.evidence.as_deref(),
            args.reports.as_deref(),
        ),
        Command::Mirror(args) => {
            let mut code = verify::mirror(&args.url, &args.dir, &args.vkey)?;
            if code == EXIT_OK {
                if let Some(evidence) = &args.evidence {
                    code = code.max(verify::mirror_photos(
                        &args.url, &args.dir, &args.vkey, evidence,
                    )?);
                }
                if let Some(texts) = &args.reports {
                    code = code.max(verify::mirror_report_texts(
                        &args.url, &args.dir, &args.vkey, texts,
                    )?);
                }
            }
            Ok(code)
        }
        Command::Witness(args) => witness_command(args),
        Command::Relay(args) => relay::relay_command(args),
        Command::Contact(args) => contact_command(args),
        Command::Intake(args) => intake_command(args),
        Command::Witnesses(args) => witnesses_command(args),
        Command::Audit(args) => audit_command(args.what),
        Command::Eval(args) => match args.what {
            EvalTarget::Forensics {
                sirekap_dir,
                per_fault,
                seed,
                fdr,
                markdown,
            } => forensics::eval(&sirekap_dir, per_fault, seed, fdr, markdown.as_deref()),
        },
        Command::Keygen(args) => {
            ops::keygen(&args.out)?;
            Ok(EXIT_OK)
        }
        Command::Check(args) => check_command(args),
        Command::Bench(args) => bench_command(args.target),
        Command::Rules(args) => rules_command(args.json),
    }
}

fn gen_command(args: GenArgs) -> Result<u8> {
    let config = saksi_gen::Config {
        tps: args.tps,
        seed: args.seed,
        fault_rate: args.fault_rate,
        photos: args.photos,
        forensic_rate: args.forensic_rate,
    };
    generate(&args.out, &config)?;
    Ok(EXIT_OK)
}

fn init_command(args: InitArgs) -> Result<u8> {
    if args.keys_only {
        ops::init_keys(&args.data, &args.origin)?;
    } else if let Some(genesis) = &args.genesis {
        ops::init_from_genesis(&args.data, &ops::log_store(args.store.as_deref())?, genesis)?;
    } else {
        let authority = args
            .authority
            .unwrap_or_else(|| ops::default_authority_dir(&args.data));
        ops::init(
            &args.data,
            &ops::log_store(args.store.as_deref())?,
            args.gen.as_deref(),
            args.kpu_registry.as_deref(),
            &args.origin,
            &authority,
        )?;
    }
    Ok(EXIT_OK)
}

fn genesis_command(args: GenesisArgs) -> Result<u8> {
    ops::sign_genesis(
        &args.authority_key,
        &args.request,
        args.gen.as_deref(),
        args.kpu_registry.as_deref(),
        &args.out,
    )?;
    Ok(EXIT_OK)
}

fn import_command(args: ImportArgs) -> Result<u8> {
    let started = Instant::now();
    let store = ops::log_store(args.store.as_deref())?;
    let kind = args.file.as_deref().map(ops::file_kind).transpose()?;
    let mut engine = ops::open_as_writer(&args.data, &store)?;
    if let Some(ops::FileKind::Forms) = kind {
        // Part of opening: the forms' signature batches need every signer's point from the first
        // line. Copies, recaps and statements are signed by other keys and never wait for them.
        engine.hold_key_points(saksi_recap::engine::KeyPointsFill::Now);
    }
    let opened = started.elapsed().as_secs_f64();
    let photos_refused = match &args.photos {
        Some(dir) => ops::import_photos(&engine, dir)?,
        None => 0,
    };
    if args.file.is_none() && args.sirekap.is_empty() {
        return Ok(if photos_refused > 0 {
            EXIT_REJECTIONS
        } else {
            EXIT_OK
        });
    }
    let summary = match (&args.file, kind) {
        (Some(file), Some(kind)) => match kind {
            ops::FileKind::Recaps => ops::import_recaps(&mut engine, file)?,
            ops::FileKind::Copies => ops::import_copies(&mut engine, file)?,
            ops::FileKind::Statements => ops::import_statements(&mut engine, file)?,
            ops::FileKind::Forms => ops::import_forms(&mut engine, file)?,
        },
        _ => ops::import_sirekap(&mut engine, &args.sirekap)?,
    };
    summary.print();
    ops::print_totals(&engine);
    // Opening (replaying the log so far) is its own figure: it grows with the log, not the input.
    let total = started.elapsed().as_secs_f64();
    println!(
        "imported in {:.1}s ({opened:.1}s opening the log, {:.1}s ingesting)",
        total,
        total - opened
    );
    Ok(if photos_refused > 0 {
        EXIT_REJECTIONS
    } else {
        summary.exit_code()
    })
}

fn serve_command(args: ServeArgs) -> Result<u8> {
    use std::time::Duration;
    if args.max_connections == 0 || args.max_connections_per_address == 0 {
        bail!("--max-connections and --max-connections-per-address must be at least 1");
    }
    init_logs(&args.log_level, &args.log_format)?;
    let started = Instant::now();
    let source = match (&args.data, &args.vkey) {
        (Some(data), _) => {
            let store = ops::log_store(args.store.as_deref())?;
            Served::Engine(Box::new(ops::open_for_serving(data, &store)?))
        }
        (None, Some(vkey)) => Served::Replica(ops::open_replica(
            args.log.as_deref(),
            args.store.as_deref(),
            vkey.clone(),
            args.evidence.as_deref(),
            args.reports.as_deref(),
        )?),
        (None, None) => bail!("give --data DIR, or --read-only with --vkey"),
    };
    println!(
        "state rebuilt from the log in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let limits = saksi_server::Limits {
        requests_per_second: args.rate_limit,
        burst: args.burst,
        photos_per_second: args.photo_rate,
        photo_burst: args.photo_burst,
        forensics_duty_percent: args.forensics_duty,
        trusted_proxies: args.trusted_proxies,
        request_timeout: Duration::from_secs(args.request_timeout),
        connections: saksi_server::ConnectionLimits {
            header_read_timeout: Duration::from_secs(args.header_timeout.max(1)),
            idle_timeout: Duration::from_secs(args.idle_timeout.max(1)),
            max_connections: args.max_connections,
            max_per_address: args.max_connections_per_address,
        },
        tls: match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some(saksi_server::load_tls(cert, key)?),
            _ => None,
        },
    };
    serve(source, args.addr, limits)?;
    Ok(EXIT_OK)
}

/// Log lines on stderr through `tracing`: one per request at info, refusals and rejections at
/// info, store problems at warn, alarms at error.
fn init_logs(level: &str, format: &str) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .with_context(|| format!("--log-level {level:?} is not a level or a tracing filter"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = if format == "json" {
        builder.json().try_init()
    } else {
        builder.with_ansi(false).try_init()
    };
    installed.map_err(|e| anyhow::anyhow!("installing the log writer: {e}"))
}

/// What `saksi serve` serves: a data directory's engine (writer or standby), or a read replica.
enum Served {
    Engine(Box<saksi_recap::Engine>),
    Replica(saksi_recap::replica::Replica),
}

fn submit_command(args: SubmitArgs) -> Result<u8> {
    let key = match (&args.key, &args.gen) {
        (Some(path), None) => ops::read_key(path)?,
        (None, Some(dir)) => {
            let value: serde_json::Value = serde_json::from_slice(&std::fs::read(&args.form)?)?;
            let form = match (value.get("copy"), value.get("form")) {
                (Some(copy), _) => &copy["form"],
                (None, Some(form)) => form,
                (None, None) => &value,
            };
            let tps = form["tps"].as_str().context("the form has no tps")?;
            let truth: serde_json::Value =
                serde_json::from_slice(&std::fs::read(dir.join("truth.json"))?)?;
            let seed = truth["seed"].as_u64().context("truth.json has no seed")?;
            let tps = saksi_election::Code::parse(tps)?;
            match &args.copy {
                Some(participant) => saksi_gen::copies::poll_witness_key(
                    seed,
                    participant,
                    tps.ancestor(saksi_election::Level::Desa)
                        .context("the form's tps is not a TPS code")?,
                ),
                None => saksi_gen::officer_key(seed, tps),
            }
        }
        _ => bail!("give --key FILE or --gen DIR"),
    };
    ops::submit(&args.url, &args.form, &key, args.copy.as_deref())
}

fn intake_command(args: cli::IntakeArgs) -> Result<u8> {
    let operator = saksi_recap::datadir::DataDir::new(&args.data)
        .operator()
        .context("the operator key")?;
    let setting = saksi_recap::entry::IntakeSetting {
        pow_bits: args.pow_bits,
        reports_per_key_per_hour: args.reports_per_key_per_hour,
        note: args.note,
        issued_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    // Checked as the log will check it, so a bad value is refused here with the same words.
    let statement = setting.sign(&operator).encode();
    saksi_recap::entry::Entry::decode(&statement).map_err(|e| anyhow::anyhow!("{e}"))?;
    let to = cli::StatementTarget {
        out: None,
        data: args.url.is_none().then(|| args.data.clone()),
        url: args.url,
    };
    ops::deliver_statement(
        &statement,
        &format!(
            "intake setting: stamps of {} bits, {} reports per key per hour",
            args.pow_bits, args.reports_per_key_per_hour
        ),
        &to,
    )
}

fn contact_command(args: cli::ContactArgs) -> Result<u8> {
    if let Some(path) = args.new_identity {
        let (identity, recipient) = saksi_recap::contact::generate();
        saksi_recap::keyfile::write_new_secret(&path, &format!("{identity}\n"))
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("{recipient}");
        eprintln!(
            "the identity is in {} (keep it offline); enrol the recipient with saksi enroll --oversight-recipient {recipient}",
            path.display()
        );
        return Ok(EXIT_OK);
    }
    let (Some(path), Some(index)) = (args.identity, args.report) else {
        bail!("give --new-identity FILE, or --identity FILE --report N");
    };
    let identity = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let base = args.url.trim_end_matches('/');
    let (status, bytes) = ops::http("GET", &format!("{base}/api/v1/entries/{index}"), b"")?;
    if status != 200 {
        bail!("the server has no entry {index} ({status})");
    }
    let Ok(saksi_recap::entry::Entry::Report { report }) =
        saksi_recap::entry::Entry::decode(&bytes)
    else {
        bail!("entry {index} is not a report");
    };
    let Some(sealed) = &report.report.contact else {
        println!("report {index} carries no contact details");
        return Ok(EXIT_REJECTIONS);
    };
    let details = saksi_recap::contact::open(&identity, sealed).map_err(|e| anyhow::anyhow!(e))?;
    println!("{details}");
    Ok(EXIT_OK)
}

fn enroll_command(args: EnrollArgs) -> Result<u8> {
    let mut part = saksi_recap::entry::RegistryPart::default();
    if let Some(recipient) = args.oversight_recipient {
        saksi_recap::contact::check_recipient(&recipient).map_err(|e| anyhow::anyhow!(e))?;
        part.oversight_recipient = Some(recipient.clone());
        let authority = ops::read_key(&args.authority_key)?;
        let statement = saksi_recap::entry::Admin::Registry(part)
            .sign(&authority)
            .encode();
        return ops::deliver_statement(
            &statement,
            &format!("the oversight body's contact key {recipient}"),
            &args.to,
        );
    }
    let key = args.key.context("give --key")?;
    let what = match (args.code, args.participant) {
        _ if args.moderator => {
            part.moderators.push(key);
            "a moderator of reports".to_string()
        }
        (_, Some(participant)) => {
            if !saksi_election::copy::valid_participant(&participant) {
                bail!("--participant {participant:?}: a ballot position, e.g. 01");
            }
            part.participants.push((participant.clone(), key));
            format!("participant {participant}")
        }
        (Some(code), None) => {
            if code.level() == saksi_election::Level::Tps {
                part.enrollments.push((code, key));
            } else {
                part.correctors.push((code, key));
            }
            code.to_string()
        }
        (None, None) => bail!("give --code or --participant"),
    };
    let code = what;
    let authority = ops::read_key(&args.authority_key)?;
    let statement = saksi_recap::entry::Admin::Registry(part)
        .sign(&authority)
        .encode();
    ops::deliver_statement(
        &statement,
        &format!("enrolment of {key} for {code}"),
        &args.to,
    )
}

fn poll_witnesses_command(args: cli::PollWitnessesArgs) -> Result<u8> {
    let key = ops::read_key(&args.key)?;
    let (enrol, others) = match &args.enrol {
        Some(file) => ops::read_poll_witnesses(file, &args.participant)?,
        None => (Vec::new(), 0),
    };
    if others > 0 {
        println!("skipped {others} lines for other participants");
    }
    if enrol.is_empty() && args.revoke.is_empty() {
        bail!(
            "nobody to enrol or revoke for participant {}",
            args.participant
        );
    }
    let (enrolled, revoked) = (enrol.len(), args.revoke.len());
    let issued_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let statements =
        ops::poll_witness_statements(&args.participant, &key, enrol, args.revoke, issued_at);
    let what = format!(
        "participant {}: {enrolled} poll witnesses enrolled, {revoked} revoked, in {} statements",
        args.participant,
        statements.len()
    );
    if let Some(out) = &args.to.out {
        // Several statements: one file, one per line (`saksi import --data DIR FILE` logs them).
        let mut text = Vec::new();
        for statement in &statements {
            text.extend_from_slice(statement);
            text.push(b'\n');
        }
        if out.exists() {
            bail!(
                "{} exists: a signed statement is never overwritten",
                out.display()
            );
        }
        std::fs::write(out, text)?;
        println!(
            "{what}: written to {}; log it with saksi import --data DIR {}",
            out.display(),
            out.display()
        );
        return Ok(EXIT_OK);
    }
    let mut worst = EXIT_OK;
    for (n, statement) in statements.iter().enumerate() {
        let code = ops::deliver_statement(
            statement,
            &format!("{what} ({}/{})", n + 1, statements.len()),
            &args.to,
        )?;
        worst = worst.max(code);
    }
    Ok(worst)
}

fn moderate_command(args: cli::ModerateArgs) -> Result<u8> {
    use saksi_recap::entry::{
        ModerationAction, ModerationStatement, HIDE_REASONS, REPORT_STATUSES,
    };
    let key = ops::read_key(&args.key)?;
    let action = match (&args.status, &args.hide, args.restore) {
        (Some(status), None, false) => {
            if !REPORT_STATUSES.contains(&status.as_str()) {
                bail!("--status is one of {}", REPORT_STATUSES.join(", "));
            }
            ModerationAction::Status(status.clone())
        }
        (None, Some(reason), false) => {
            if !HIDE_REASONS.contains(&reason.as_str()) {
                bail!("--hide is one of {}", HIDE_REASONS.join(", "));
            }
            ModerationAction::Hide(reason.clone())
        }
        (None, None, true) => ModerationAction::Restore,
        _ => bail!("give one of --status, --hide or --restore"),
    };
    let issued_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let statement = ModerationStatement {
        report: args.report,
        action,
        note: args.note.clone(),
        issued_at,
    };
    // Checked here as the log will check it (length, characters) before anything is signed.
    ModerationStatement::from_json(&statement.to_json()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let entry = statement.sign(&key).encode();
    ops::deliver_statement(
        &entry,
        &format!("moderation of report {}", args.report),
        &args.to,
    )
}

fn log_statement_command(args: LogStatementArgs) -> Result<u8> {
    let bytes = std::fs::read(&args.statement)
        .with_context(|| format!("cannot read {}", args.statement.display()))?;
    let to = StatementTarget {
        out: None,
        url: args.url,
        data: args.data,
    };
    ops::deliver_statement(
        &bytes,
        &format!("the statement in {}", args.statement.display()),
        &to,
    )
}

fn witness_command(args: WitnessArgs) -> Result<u8> {
    owned::claim(&args.data, "witness")?;
    let key_path = args.data.join("witness.key");
    let signer = match std::fs::read_to_string(&key_path) {
        Ok(text) => saksi_tlog::note::Signer::parse(text.trim())?,
        Err(_) => {
            let signer = saksi_tlog::note::Signer::generate(
                &args.name,
                saksi_tlog::note::TYPE_COSIGNATURE_V1,
            )?;
            saksi_recap::keyfile::write_new_secret(&key_path, &format!("{}\n", signer.encode()))
                .with_context(|| format!("creating {}", key_path.display()))?;
            signer
        }
    };
    let storage = saksi_tlog::DirStorage::open(&args.data.join("state"))?;
    let witness = saksi_tlog::witness::Witness::new(signer, args.log_vkeys, Box::new(storage))?;
    println!("witness vkey: {}", witness.verifier().encode());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(saksi_server::serve_witness(
        std::sync::Arc::new(witness),
        args.addr,
        |bound| {
            println!("witness listening on http://{bound}/add-checkpoint");
        },
    ))?;
    Ok(EXIT_OK)
}

fn witnesses_command(args: WitnessesArgs) -> Result<u8> {
    let n = args.witnesses.len();
    let quorum = args.quorum;
    let issued_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .ok();
    let policy = saksi_recap::entry::WitnessPolicy {
        quorum,
        witnesses: args.witnesses,
        issued_at,
    };
    saksi_recap::engine::check_witness_policy(&policy).map_err(anyhow::Error::msg)?;
    let authority = ops::read_key(&args.authority_key)?;
    let statement = saksi_recap::entry::Admin::Witnesses(policy)
        .sign(&authority)
        .encode();
    ops::deliver_statement(
        &statement,
        &format!("witness policy {quorum} of {n}"),
        &args.to,
    )
}

fn audit_command(what: AuditTarget) -> Result<u8> {
    let (data, dir, vkey, json, copies) = match what {
        AuditTarget::Relay(args) => return relay::audit_relay(args),
        AuditTarget::Forensics(args) => return forensics::audit(args),
        AuditTarget::Recap {
            data,
            dir,
            vkey,
            json,
        } => (data, dir, vkey, json, false),
        AuditTarget::Copies {
            data,
            dir,
            vkey,
            json,
        } => (data, dir, vkey, json, true),
    };
    let audit = |state: &saksi_recap::State| {
        if copies {
            ops::audit_copies(state, json)
        } else {
            ops::audit_recap(state, json)
        }
    };
    match (data, dir, vkey) {
        (Some(data), None, _) => {
            let engine = saksi_recap::Engine::open(&data)?;
            let shared = engine.shared();
            let state = shared.state.read().expect("not poisoned");
            audit(&state)
        }
        (None, Some(dir), Some(key)) => {
            let storage = saksi_tlog::ReadOnlyDir::new(&dir);
            let verified = saksi_recap::verify::verify(&storage, &key, &mut |_, _| {})
                .context("could not read the log")?;
            if !verified.problems.is_empty() {
                bail!(
                    "the log does not verify ({} problems; run saksi verify); refusing to audit it",
                    verified.problems.len()
                );
            }
            audit(&verified.state)
        }
        _ => bail!("give --data DIR, or --dir DIR with --vkey"),
    }
}

fn check_command(args: CheckArgs) -> Result<u8> {
    let election = Election::pemilu_2024();
    let mut verdicts_file = match &args.verdicts {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => None,
    };
    let verdicts_out = verdicts_file.as_mut().map(|w| w as &mut dyn Write);
    let report = if let Some(file) = &args.file {
        let registry_dir = args
            .registry
            .unwrap_or_else(|| file.parent().unwrap_or(Path::new(".")).join("registry"));
        let registry = Registry::load_dir(&registry_dir)
            .with_context(|| format!("cannot load the registry in {}", registry_dir.display()))?;
        let started = Instant::now();
        let report = check::check_forms(file, &registry, &election, verdicts_out, args.show)?;
        report.print(
            &mut std::io::stdout().lock(),
            &format!("{}", file.display()),
        )?;
        println!("checked in {:.1}s", started.elapsed().as_secs_f64());
        report
    } else {
        let registry = match &args.kpu_registry {
            Some(path) => Some(ops::load_kpu_registry(path)?),
            None => None,
        };
        let report = check::check_sirekap(
            &args.sirekap,
            registry.as_ref(),
            &election,
            verdicts_out,
            args.show,
        )?;
        report.print(
            &mut std::io::stdout().lock(),
            &format!("Sirekap ({} files)", args.sirekap.len()),
        )?;
        report
    };
    if let Some(mut file) = verdicts_file {
        file.flush()?;
    }
    Ok(if report.rejected + report.malformed > 0 {
        EXIT_REJECTIONS
    } else {
        EXIT_OK
    })
}

fn bench_command(target: BenchTarget) -> Result<u8> {
    match target {
        BenchTarget::Log {
            dir,
            entries,
            entry_bytes,
            batch,
        } => bench::log_append(&dir, entries, entry_bytes, batch)?,
        BenchTarget::Signatures { forms } => bench::signatures(&forms)?,
        BenchTarget::Submit {
            host,
            forms,
            skip,
            requests,
            concurrency,
        } => bench::http_submit(&host, &forms, skip, requests, concurrency)?,
        BenchTarget::Photos {
            host,
            count,
            photo_bytes,
            concurrency,
        } => bench::http_photos(&host, count, photo_bytes, concurrency)?,
        BenchTarget::Reports {
            host,
            registry,
            count,
            photo_bytes,
            concurrency,
        } => bench::http_reports(&host, &registry, count, photo_bytes, concurrency)?,
        BenchTarget::Site {
            host,
            registry,
            requests,
            concurrency,
        } => bench::site(&host, &registry, requests, concurrency)?,
        BenchTarget::Regions {
            host,
            registry,
            requests,
            concurrency,
        } => {
            let text = std::fs::read_to_string(registry.join("regions.csv"))?;
            // Provinces, regencies and districts: the pages a dashboard asks for; plus the nation.
            let mut codes: Vec<String> = text
                .lines()
                .skip(1)
                .filter_map(|l| l.split(',').next())
                .filter(|c| c.len() <= 6)
                .map(String::from)
                .collect();
            codes.push(String::new());
            bench::http_regions(&host, &codes, requests, concurrency)?;
        }
    }
    Ok(EXIT_OK)
}

fn rules_command(json: bool) -> Result<u8> {
    let mut out = std::io::stdout().lock();
    if json {
        out.write_all(&rules::rulebook_json())?;
        writeln!(out)?;
        return Ok(EXIT_OK);
    }
    writeln!(
        out,
        "{} (sha256 {})\n",
        rules::RULEBOOK_VERSION,
        rules::digest()
    )?;
    for rule in rules::RULES {
        writeln!(
            out,
            "{:<24} {:?}  [{}]",
            rule.code, rule.severity, rule.fields
        )?;
        writeln!(out, "    en: {}", rule.en)?;
        writeln!(out, "    id: {}", rule.id)?;
    }
    Ok(EXIT_OK)
}

fn generate(out: &Path, config: &saksi_gen::Config) -> Result<saksi_gen::Summary> {
    owned::claim(out, "gen")?;
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

fn serve(served: Served, addr: std::net::SocketAddr, limits: saksi_server::Limits) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let scheme = if limits.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let app = match served {
        Served::Engine(engine) => saksi_server::app_with_limits(*engine, limits),
        Served::Replica(replica) => saksi_server::replica_app(replica, limits),
    };
    runtime.block_on(saksi_server::serve(app, addr, |bound| {
        println!(
            "serving on {scheme}://{bound}/  (API: /api/v1/openapi.json, log: /log/checkpoint)"
        );
    }))?;
    Ok(())
}

fn demo(data: &Path, tps: usize, addr: std::net::SocketAddr, no_serve: bool) -> Result<u8> {
    let started = Instant::now();
    let election = data.join("election");
    let server = data.join("server");
    let generated_tps = std::fs::read(election.join("truth.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|truth| truth["tps"].as_u64());
    // The demo's directory is its own, whether it builds or reuses (one made by an older saksi, or
    // by hand, is refused with a clear message rather than half-used).
    owned::claim(data, "demo")?;
    let fresh =
        generated_tps != Some(tps as u64) || !saksi_recap::DataDir::new(&server).holds_log();
    let engine = if fresh {
        if tps == 0 {
            bail!("--tps must be at least 1");
        }
        // Only what an earlier demo made here is replaced; the server's first, under its log's lock.
        owned::remove_own(data, "server", &["server/log"])?;
        owned::remove_own(data, "election", &[])?;
        owned::remove_own(data, "authority", &[])?;
        println!("[1/3] generating a synthetic election of {tps} TPS on the real region hierarchy");
        generate(
            &election,
            &saksi_gen::Config {
                tps,
                ..Default::default()
            },
        )?;
        println!("[2/3] creating the log: genesis, rulebook and registry entries");
        let step = Instant::now();
        let mut engine = ops::init(
            &server,
            &saksi_recap::LogStore::Dir,
            Some(&election),
            None,
            "saksi.local/demo",
            &data.join("authority"),
        )?;
        println!("      {:.1}s", step.elapsed().as_secs_f64());
        println!("[3/3] ingesting every signed form (signatures, rulebook, log)");
        let step = Instant::now();
        let summary = ops::import_forms(&mut engine, &election.join("forms.ndjson"))?;
        summary.print();
        let recaps = ops::import_recaps(&mut engine, &election.join("recap.ndjson"))?;
        println!(
            "recapitulation forms: {} logged ({} accepted, {} rejected)",
            recaps.logged, recaps.accepted, recaps.rejected
        );
        let copies = ops::import_copies(&mut engine, &election.join("copies.ndjson"))?;
        println!(
            "poll witnesses' copies: {} logged ({} accepted, {} rejected by the rulebook), {} refused",
            copies.logged,
            copies.accepted,
            copies.rejected,
            copies.refused.values().sum::<usize>()
        );
        let (photos, seconds) = ops::store_disagreement_photos(&engine, &election)?;
        println!(
            "evidence photos of the TPS where a copy disagrees: {photos} stored in {seconds:.1}s"
        );
        ops::print_totals(&engine);
        println!("      ingested in {:.1}s", step.elapsed().as_secs_f64());
        engine
    } else {
        println!(
            "reusing the election in {} and its log in {}",
            election.display(),
            server.display()
        );
        let step = Instant::now();
        let engine = saksi_recap::Engine::open(&server)?;
        println!(
            "state rebuilt from the log in {:.1}s",
            step.elapsed().as_secs_f64()
        );
        engine
    };
    println!("ready in {:.1}s", started.elapsed().as_secs_f64());
    if no_serve {
        ops::print_totals(&engine);
        return Ok(EXIT_OK);
    }
    let vkey = engine.shared().vkey.clone();
    println!(
        "\nOpen:\n  http://{addr}/                         the results site (Indonesian; ?lang=en for English)\n  http://{addr}/wilayah/11                a province (Aceh), down to its TPS\n  http://{addr}/salinan                   TPS where a poll witness's copy differs from the official result\n  http://{addr}/api/v1/regions            the API: national totals and provinces\n  http://{addr}/api/v1/regions/11         a province (Aceh)\n  http://{addr}/api/v1/tps/1101012001001  a TPS: its form, history, evidence\n  http://{addr}/api/v1/receipts/0         a receipt (c2sp.org/tlog-proof) for any entry\n  http://{addr}/log/checkpoint            the signed checkpoint; tiles under /log/tile/\n\nVerify independently: the log in {} is plain C2SP tlog-tiles; check it with Go's sumdb:\n  scripts/go-interop.sh {} '{vkey}'\nor re-derive everything (signatures, verdicts, totals, inflation) from the served log:\n  saksi verify --url http://{addr} --vkey '{vkey}' --state verifier-state\n  saksi audit recap --dir {} --vkey '{vkey}'\n  saksi audit copies --dir {} --vkey '{vkey}'\nEvery injected fault is listed in {} with the rule that caught it.\n",
        server.join("log").display(),
        server.join("log").display(),
        server.join("log").display(),
        server.join("log").display(),
        election.join("truth.json").display()
    );
    serve(
        Served::Engine(Box::new(engine)),
        addr,
        saksi_server::Limits::default(),
    )?;
    Ok(EXIT_OK)
}
