//! The `saksi` command line. Library crates do the work; this edge parses arguments, prints, and maps
//! outcomes to fixed exit codes:
//! - 0: done, and (for `check`) every form was accepted;
//! - 1: done, and some form was rejected or malformed (a result, not a failure);
//! - 2: could not do it (bad arguments, unreadable input).

mod bench;
mod check;
mod ops;
mod owned;
mod progress;
mod verify;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};

/// See Cargo.toml: chosen for allocation-heavy ingest (measured in docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::{Parser, Subcommand};

use saksi_election::{rules, Election, Registry};

pub(crate) const EXIT_OK: u8 = 0;
pub(crate) const EXIT_REJECTIONS: u8 = 1;
pub(crate) const EXIT_ERROR: u8 = 2;

#[derive(Parser)]
#[command(
    name = "saksi",
    version,
    about = "saksi (\"witness\"): election recapitulation that nobody can change unseen"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The national demo: generate (or reuse) an election, ingest it into a log, serve API and log.
    Demo {
        /// Where the demo keeps its generated election and its server data.
        #[arg(long, default_value = "data/demo")]
        data: PathBuf,
        /// Number of TPS (default: all 823,220 of 2024).
        #[arg(long, default_value_t = saksi_gen::NATIONAL_TPS)]
        tps: usize,
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: std::net::SocketAddr,
        /// Build and ingest, then exit instead of serving.
        #[arg(long)]
        no_serve: bool,
    },
    /// Create an election's data directory: keys, the log, genesis and registry entries.
    Init {
        #[arg(long)]
        data: PathBuf,
        /// A directory written by `saksi gen` (its registry, with officer and corrector keys).
        #[arg(long, conflicts_with = "kpu_registry")]
        gen: Option<PathBuf>,
        /// KPU's Sirekap region list (kpu_sirekap_wilayah_ppwp.csv.gz), for replaying Sirekap.
        #[arg(long)]
        kpu_registry: Option<PathBuf>,
        /// The log's origin (checkpoint first line and key name).
        #[arg(long, default_value = "saksi.local/pemilu-2024")]
        origin: String,
        /// Where the election authority's key is (DIR/authority.key), or is made if DIR is new
        /// (default: DATA-authority beside DATA). Never inside DATA: take it offline after init.
        #[arg(long, conflicts_with_all = ["keys_only", "genesis"])]
        authority: Option<PathBuf>,
        /// Make only the server's keys and DATA/genesis-request.json, for an authority that signs
        /// the genesis where its key is kept (`saksi genesis`); then `init --genesis`.
        #[arg(long, conflicts_with_all = ["gen", "kpu_registry", "genesis"])]
        keys_only: bool,
        /// Create the log from the genesis and registry statements `saksi genesis` wrote (after
        /// `init --keys-only`): the authority's key never comes to the server.
        #[arg(long, conflicts_with_all = ["gen", "kpu_registry"])]
        genesis: Option<PathBuf>,
    },
    /// Sign a server's genesis and registry with the authority's key, where that key is kept:
    /// the second of the three steps that keep the key off the server (see `init --keys-only`).
    Genesis {
        #[arg(long)]
        authority_key: PathBuf,
        /// The server's genesis-request.json (from `init --keys-only`).
        #[arg(long)]
        request: PathBuf,
        #[arg(long, conflicts_with = "kpu_registry")]
        gen: Option<PathBuf>,
        #[arg(long)]
        kpu_registry: Option<PathBuf>,
        /// The statements, one per line, to carry to the server.
        #[arg(long)]
        out: PathBuf,
    },
    /// Ingest signed forms (one per line) or, with --sirekap, published Sirekap rows as transcriptions.
    Import {
        #[arg(long)]
        data: PathBuf,
        #[arg(required_unless_present = "sirekap", conflicts_with = "sirekap")]
        file: Option<PathBuf>,
        #[arg(long, num_args = 1..)]
        sirekap: Vec<PathBuf>,
    },
    /// Serve the API and the log.
    Serve {
        #[arg(long)]
        data: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: std::net::SocketAddr,
        /// Requests per second allowed per client address, sustained (0: no limit).
        #[arg(long, default_value_t = 50)]
        rate_limit: u32,
        /// Requests one address may make at once before the rate applies.
        #[arg(long, default_value_t = 100)]
        burst: u32,
        /// A reverse proxy whose X-Forwarded-For header names the client (repeatable). Without
        /// one, the header is ignored and every client is its peer address.
        #[arg(long = "trusted-proxy")]
        trusted_proxies: Vec<std::net::IpAddr>,
        /// Seconds a request may take, body included.
        #[arg(long, default_value_t = 10)]
        request_timeout: u64,
        /// Seconds a connection has to send a request's headers (also: to start its next request).
        #[arg(long, default_value_t = 10)]
        header_timeout: u64,
        /// Seconds a connection may stay silent in both directions.
        #[arg(long, default_value_t = 30)]
        idle_timeout: u64,
        /// Connections at most (fewer if the open-file limit is lower).
        #[arg(long, default_value_t = 4096)]
        max_connections: usize,
        /// Connections at most from one address.
        #[arg(long, default_value_t = 64)]
        max_connections_per_address: usize,
        /// Serve HTTPS with this PEM certificate chain (with --tls-key).
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of --tls-cert.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// Sign a form as an officer (or a commission) and submit it to a server.
    Submit {
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// The form: a form object, or an envelope whose form is re-signed.
        #[arg(long)]
        form: PathBuf,
        /// A key file from `saksi keygen`.
        #[arg(long, conflicts_with = "gen")]
        key: Option<PathBuf>,
        /// Sign as the officer of the form's TPS in an election made by `saksi gen` (demo only).
        #[arg(long)]
        gen: Option<PathBuf>,
    },
    /// Enrol a key after the genesis: an officer for a TPS, or a corrector for a region. Signs a
    /// registry change with the authority's key (kept offline) and writes it to --out (to log later
    /// with `saksi log-statement`), posts it to a running server (--url), or logs it now (--data,
    /// with the server stopped: the log allows one writer).
    Enroll {
        /// The election authority's key file (from `saksi init`, kept offline).
        #[arg(long)]
        authority_key: PathBuf,
        /// A TPS code (enrols an officer) or a region code (enrols a corrector).
        #[arg(long)]
        code: String,
        /// The public key (base64).
        #[arg(long)]
        key: String,
        #[command(flatten)]
        to: StatementTarget,
    },
    /// Log a statement the authority signed offline (`saksi enroll`/`saksi witnesses --out`): into a
    /// data directory (server stopped) or through a running server (--url).
    LogStatement {
        /// The signed statement file.
        statement: PathBuf,
        #[arg(long, required_unless_present = "url", conflicts_with = "url")]
        data: Option<PathBuf>,
        #[arg(long)]
        url: Option<String>,
    },
    /// Verify a log independently: checkpoint, tiles, every entry and signature, verdicts, tallies, and
    /// consistency with every checkpoint seen before. Exit 0 all good, 1 a problem found, 2 could not check.
    Verify {
        /// A server's root URL (its log is read from URL/log/, its totals from URL/api/v1/).
        #[arg(long, conflicts_with = "dir")]
        url: Option<String>,
        /// A log directory (a data directory's log/, or a mirror).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Compare the totals this API publishes (default: --url).
        #[arg(long)]
        api: Option<String>,
        /// The log's verifier key, or a file holding it.
        #[arg(long)]
        vkey: String,
        /// Where this verifier keeps the checkpoints it has seen (catches rollbacks and forks).
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// Keep an incremental, verified copy of a served log in DIR (servable as-is).
    Mirror {
        #[arg(long)]
        url: String,
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        vkey: String,
    },
    /// Run a C2SP tlog-witness for the given logs: cosigns checkpoints that are consistent with the
    /// latest one it cosigned. Its key (witness.key) and state live in DIR.
    Witness {
        #[arg(long)]
        data: PathBuf,
        /// The witness's name (its key name).
        #[arg(long)]
        name: String,
        /// Verifier keys (or files) of the logs it follows.
        #[arg(long = "log-vkey", num_args = 1..)]
        log_vkeys: Vec<String>,
        #[arg(long, default_value = "127.0.0.1:8090")]
        addr: std::net::SocketAddr,
    },
    /// Set the witness policy (logged, signed by the authority): checkpoints are published only once
    /// QUORUM of these witnesses cosigned them. Delivered like `saksi enroll`.
    Witnesses {
        /// The election authority's key file (kept offline).
        #[arg(long)]
        authority_key: PathBuf,
        #[arg(long)]
        quorum: u32,
        /// VKEY@URL: a witness's verifier key (type 0x04) and its submission URL.
        #[arg(long = "witness", num_args = 1..)]
        witnesses: Vec<String>,
        #[command(flatten)]
        to: StatementTarget,
    },
    /// Audits: `saksi audit recap` reports every recapitulation figure that differs from the sum below it.
    Audit {
        #[command(subcommand)]
        what: AuditTarget,
    },
    /// Make an Ed25519 key file and print its public key.
    Keygen {
        #[arg(long)]
        out: PathBuf,
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

/// Where a statement signed by the authority goes: exactly one of these.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
struct StatementTarget {
    /// Write the signed statement here (to carry to the server and log with `saksi log-statement`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Post it to a running server's /api/v1/statements.
    #[arg(long)]
    url: Option<String>,
    /// Log it into this data directory now (its server stopped).
    #[arg(long)]
    data: Option<PathBuf>,
}

#[derive(Subcommand)]
enum AuditTarget {
    /// Discrepancies between each level's recap forms and the figures below (exit 1 if any).
    Recap {
        /// A data directory (its log is replayed).
        #[arg(long, required_unless_present = "dir")]
        data: Option<PathBuf>,
        /// Or any copy of the log (a mirror), verified with --vkey as it is read.
        #[arg(long, conflicts_with = "data", requires = "vkey")]
        dir: Option<PathBuf>,
        #[arg(long)]
        vkey: Option<String>,
        /// A JSON array (each item with level, region, child, kind, fields).
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
    /// Signed-form submissions over HTTP to a running server (load generator on this machine).
    Submit {
        /// host:port of a running `saksi serve`.
        #[arg(long, default_value = "127.0.0.1:8080")]
        host: String,
        /// Signed forms, one per line (e.g. a `saksi gen` forms.ndjson).
        #[arg(long)]
        forms: PathBuf,
        #[arg(long, default_value_t = 0)]
        skip: usize,
        #[arg(long, default_value_t = 50_000)]
        requests: usize,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
    },
    /// The signature floor: decode and batch-verify every form on all cores, nothing else.
    Signatures {
        #[arg(long)]
        forms: PathBuf,
    },
    /// Region queries over HTTP to a running server.
    Regions {
        #[arg(long, default_value = "127.0.0.1:8080")]
        host: String,
        /// The registry directory of the election being served (for region codes).
        #[arg(long)]
        registry: PathBuf,
        #[arg(long, default_value_t = 200_000)]
        requests: usize,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
    },
}

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, which turns a closed pipe into a panic on the next print; a command-line
    // tool should just stop, as `head` expects.
    // SAFETY: called once at start, before any thread exists; SIG_DFL is a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
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
        Command::Gen {
            out,
            tps,
            seed,
            fault_rate,
        } => {
            generate(
                &out,
                &saksi_gen::Config {
                    tps,
                    seed,
                    fault_rate,
                },
            )?;
            Ok(EXIT_OK)
        }
        Command::Demo {
            data,
            tps,
            addr,
            no_serve,
        } => demo(&data, tps, addr, no_serve),
        Command::Init {
            data,
            gen,
            kpu_registry,
            origin,
            authority,
            keys_only,
            genesis,
        } => {
            if keys_only {
                ops::init_keys(&data, &origin)?;
            } else if let Some(genesis) = genesis {
                ops::init_from_genesis(&data, &genesis)?;
            } else {
                let authority = authority.unwrap_or_else(|| ops::default_authority_dir(&data));
                ops::init(
                    &data,
                    gen.as_deref(),
                    kpu_registry.as_deref(),
                    &origin,
                    &authority,
                )?;
            }
            Ok(EXIT_OK)
        }
        Command::Genesis {
            authority_key,
            request,
            gen,
            kpu_registry,
            out,
        } => {
            ops::sign_genesis(
                &authority_key,
                &request,
                gen.as_deref(),
                kpu_registry.as_deref(),
                &out,
            )?;
            Ok(EXIT_OK)
        }
        Command::Import {
            data,
            file,
            sirekap,
        } => {
            let started = Instant::now();
            let mut engine = saksi_recap::Engine::open(&data)?;
            let opened = started.elapsed().as_secs_f64();
            let summary = match file {
                Some(file) if ops::is_recap_file(&file)? => ops::import_recaps(&mut engine, &file)?,
                Some(file) => ops::import_forms(&mut engine, &file)?,
                None => ops::import_sirekap(&mut engine, &sirekap)?,
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
            Ok(summary.exit_code())
        }
        Command::Serve {
            data,
            addr,
            rate_limit,
            burst,
            trusted_proxies,
            request_timeout,
            header_timeout,
            idle_timeout,
            max_connections,
            max_connections_per_address,
            tls_cert,
            tls_key,
        } => {
            let started = Instant::now();
            let engine = saksi_recap::Engine::open(&data)?;
            println!(
                "state rebuilt from the log in {:.1}s",
                started.elapsed().as_secs_f64()
            );
            use std::time::Duration;
            if max_connections == 0 || max_connections_per_address == 0 {
                bail!("--max-connections and --max-connections-per-address must be at least 1");
            }
            let limits = saksi_server::Limits {
                requests_per_second: rate_limit,
                burst,
                trusted_proxies,
                request_timeout: Duration::from_secs(request_timeout),
                connections: saksi_server::ConnectionLimits {
                    header_read_timeout: Duration::from_secs(header_timeout.max(1)),
                    idle_timeout: Duration::from_secs(idle_timeout.max(1)),
                    max_connections,
                    max_per_address: max_connections_per_address,
                },
                tls: match (&tls_cert, &tls_key) {
                    (Some(cert), Some(key)) => Some(saksi_server::load_tls(cert, key)?),
                    _ => None,
                },
            };
            serve(engine, addr, limits)?;
            Ok(EXIT_OK)
        }
        Command::Submit {
            url,
            form,
            key,
            gen,
        } => {
            let key = match (key, gen) {
                (Some(path), None) => ops::read_key(&path)?,
                (None, Some(dir)) => {
                    let text = std::fs::read(&form)?;
                    let value: serde_json::Value = serde_json::from_slice(&text)?;
                    let tps = value.get("form").unwrap_or(&value)["tps"]
                        .as_str()
                        .context("the form has no tps")?
                        .to_string();
                    let truth: serde_json::Value =
                        serde_json::from_slice(&std::fs::read(dir.join("truth.json"))?)?;
                    let seed = truth["seed"].as_u64().context("truth.json has no seed")?;
                    saksi_gen::officer_key(
                        seed,
                        saksi_election::Code::parse(&tps).map_err(|e| anyhow::anyhow!("{e}"))?,
                    )
                }
                _ => bail!("give --key FILE or --gen DIR"),
            };
            ops::submit(&url, &form, &key)
        }
        Command::Enroll {
            authority_key,
            code,
            key,
            to,
        } => {
            let code = saksi_election::Code::parse(&code).map_err(|e| anyhow::anyhow!("{e}"))?;
            let key = saksi_election::sign::PublicKey::from_base64(&key)
                .map_err(|e| anyhow::anyhow!("key: {e}"))?;
            key.check_enrollable()
                .map_err(|e| anyhow::anyhow!("key {key}: {e}"))?;
            let mut part = saksi_recap::entry::RegistryPart::default();
            if code.level() == saksi_election::Level::Tps {
                part.enrollments.push((code, key));
            } else {
                part.correctors.push((code, key));
            }
            let authority = ops::read_key(&authority_key)?;
            let statement = saksi_recap::entry::Admin::Registry(part)
                .sign(&authority)
                .encode();
            ops::deliver_statement(
                &statement,
                &format!("enrolment of {key} for {code}"),
                to.out.as_deref(),
                to.url.as_deref(),
                to.data.as_deref(),
            )
        }
        Command::LogStatement {
            statement,
            data,
            url,
        } => {
            let bytes = std::fs::read(&statement)
                .with_context(|| format!("cannot read {}", statement.display()))?;
            ops::deliver_statement(
                &bytes,
                &format!("the statement in {}", statement.display()),
                None,
                url.as_deref(),
                data.as_deref(),
            )
        }
        Command::Verify {
            url,
            dir,
            api,
            vkey,
            state,
        } => verify::run(
            dir.as_deref(),
            url.as_deref(),
            api.as_deref(),
            &vkey,
            state.as_deref(),
        ),
        Command::Mirror { url, dir, vkey } => verify::mirror(&url, &dir, &vkey),
        Command::Witness {
            data,
            name,
            log_vkeys,
            addr,
        } => {
            owned::claim(&data, "witness")?;
            let key_path = data.join("witness.key");
            let signer = match std::fs::read_to_string(&key_path) {
                Ok(text) => saksi_tlog::note::Signer::parse(text.trim())
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
                Err(_) => {
                    let signer = saksi_tlog::note::Signer::generate(
                        &name,
                        saksi_tlog::note::TYPE_COSIGNATURE_V1,
                    )
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                    saksi_recap::keyfile::write_new_secret(
                        &key_path,
                        &format!("{}\n", signer.encode()),
                    )
                    .with_context(|| format!("creating {}", key_path.display()))?;
                    signer
                }
            };
            let logs = log_vkeys
                .iter()
                .map(|v| verify::read_vkey(v))
                .collect::<Result<Vec<_>>>()?;
            let storage = saksi_tlog::DirStorage::open(&data.join("state"))?;
            let witness = saksi_tlog::witness::Witness::new(signer, logs, Box::new(storage))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("witness vkey: {}", witness.verifier().encode());
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(saksi_server::serve_witness(
                std::sync::Arc::new(witness),
                addr,
                |bound| {
                    println!("witness listening on http://{bound}/add-checkpoint");
                },
            ))?;
            Ok(EXIT_OK)
        }
        Command::Witnesses {
            authority_key,
            quorum,
            witnesses,
            to,
        } => {
            let witnesses = witnesses
                .iter()
                .map(|w| {
                    w.rsplit_once('@')
                        .map(|(v, u)| (v.to_string(), u.to_string()))
                        .context("--witness takes VKEY@URL")
                })
                .collect::<Result<Vec<_>>>()?;
            let n = witnesses.len();
            let issued_at = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .ok();
            let policy = saksi_recap::entry::WitnessPolicy {
                quorum,
                witnesses,
                issued_at,
            };
            saksi_recap::engine::check_witness_policy(&policy).map_err(|e| anyhow::anyhow!(e))?;
            let authority = ops::read_key(&authority_key)?;
            let statement = saksi_recap::entry::Admin::Witnesses(policy)
                .sign(&authority)
                .encode();
            ops::deliver_statement(
                &statement,
                &format!("witness policy {quorum} of {n}"),
                to.out.as_deref(),
                to.url.as_deref(),
                to.data.as_deref(),
            )
        }
        Command::Audit {
            what:
                AuditTarget::Recap {
                    data,
                    dir,
                    vkey,
                    json,
                },
        } => match (data, dir, vkey) {
            (Some(data), None, _) => {
                let engine = saksi_recap::Engine::open(&data)?;
                let shared = engine.shared();
                let state = shared.state.read().expect("not poisoned");
                ops::audit_recap(&state, json)
            }
            (None, Some(dir), Some(vkey)) => {
                let key = verify::read_vkey(&vkey)?;
                let storage = saksi_tlog::ReadOnlyDir::new(&dir);
                let verified = saksi_recap::verify::verify(&storage, &key, &mut |_, _| {})
                    .map_err(|e| anyhow::anyhow!("could not read the log: {e}"))?;
                if !verified.problems.is_empty() {
                    bail!("the log does not verify ({} problems; run saksi verify); refusing to audit it", verified.problems.len());
                }
                ops::audit_recap(&verified.state, json)
            }
            _ => bail!("give --data DIR, or --dir DIR with --vkey"),
        },
        Command::Keygen { out } => {
            ops::keygen(&out)?;
            Ok(EXIT_OK)
        }
        Command::Check {
            file,
            registry,
            sirekap,
            kpu_registry,
            verdicts,
            show,
        } => {
            let election = Election::pemilu_2024();
            let mut verdicts_file = match &verdicts {
                Some(path) => Some(std::io::BufWriter::new(
                    std::fs::File::create(path)
                        .with_context(|| format!("cannot create {}", path.display()))?,
                )),
                None => None,
            };
            let verdicts_out = verdicts_file.as_mut().map(|w| w as &mut dyn Write);
            let report = if let Some(file) = file {
                let registry_dir = registry
                    .unwrap_or_else(|| file.parent().unwrap_or(Path::new(".")).join("registry"));
                let registry = Registry::load_dir(&registry_dir).with_context(|| {
                    format!("cannot load the registry in {}", registry_dir.display())
                })?;
                let started = Instant::now();
                let report = check::check_forms(&file, &registry, &election, verdicts_out, show)?;
                report.print(
                    &mut std::io::stdout().lock(),
                    &format!("{}", file.display()),
                )?;
                println!("checked in {:.1}s", started.elapsed().as_secs_f64());
                report
            } else {
                let registry = match kpu_registry {
                    Some(path) => {
                        let reader = std::io::BufReader::new(flate2::read::MultiGzDecoder::new(
                            std::fs::File::open(&path)
                                .with_context(|| format!("cannot open {}", path.display()))?,
                        ));
                        Some(Registry::from_kpu_wilayah(
                            reader,
                            &path.display().to_string(),
                        )?)
                    }
                    None => None,
                };
                let report = check::check_sirekap(
                    &sirekap,
                    registry.as_ref(),
                    &election,
                    verdicts_out,
                    show,
                )?;
                report.print(
                    &mut std::io::stdout().lock(),
                    &format!("Sirekap ({} files)", sirekap.len()),
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
        Command::Bench {
            target:
                BenchTarget::Log {
                    dir,
                    entries,
                    entry_bytes,
                    batch,
                },
        } => {
            bench::log_append(&dir, entries, entry_bytes, batch)?;
            Ok(EXIT_OK)
        }
        Command::Bench {
            target: BenchTarget::Signatures { forms },
        } => {
            bench::signatures(&forms)?;
            Ok(EXIT_OK)
        }
        Command::Bench {
            target:
                BenchTarget::Submit {
                    host,
                    forms,
                    skip,
                    requests,
                    concurrency,
                },
        } => {
            bench::http_submit(&host, &forms, skip, requests, concurrency)?;
            Ok(EXIT_OK)
        }
        Command::Bench {
            target:
                BenchTarget::Regions {
                    host,
                    registry,
                    requests,
                    concurrency,
                },
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
            Ok(EXIT_OK)
        }
        Command::Rules { json } => {
            let mut out = std::io::stdout().lock();
            if json {
                out.write_all(&rules::rulebook_json())?;
                writeln!(out)?;
            } else {
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
            }
            Ok(EXIT_OK)
        }
    }
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

fn serve(
    engine: saksi_recap::Engine,
    addr: std::net::SocketAddr,
    limits: saksi_server::Limits,
) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let scheme = if limits.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let app = saksi_server::app_with_limits(engine, limits);
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
    let fresh = generated_tps != Some(tps as u64) || !server.join("log/checkpoint").exists();
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
        "\nOpen:\n  http://{addr}/api/v1/regions            national totals and provinces\n  http://{addr}/api/v1/regions/11         a province (Aceh)\n  http://{addr}/api/v1/tps/1101012001001  a TPS: its form, history, evidence\n  http://{addr}/api/v1/receipts/0         a receipt (c2sp.org/tlog-proof) for any entry\n  http://{addr}/log/checkpoint            the signed checkpoint; tiles under /log/tile/\n\nVerify independently: the log in {} is plain C2SP tlog-tiles; check it with Go's sumdb:\n  scripts/go-interop.sh {} '{vkey}'\nor re-derive everything (signatures, verdicts, totals, inflation) from the served log:\n  saksi verify --url http://{addr} --vkey '{vkey}' --state verifier-state\n  saksi audit recap --dir {} --vkey '{vkey}'\nEvery injected fault is listed in {} with the rule that caught it.\n",
        server.join("log").display(),
        server.join("log").display(),
        server.join("log").display(),
        election.join("truth.json").display()
    );
    serve(engine, addr, saksi_server::Limits::default())?;
    Ok(EXIT_OK)
}
