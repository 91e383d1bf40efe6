//! `saksi verify` and `saksi mirror`: what an observer runs, trusting only the log's verifier key.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use saksi_election::code::Level;
use saksi_recap::state::Tally;
use saksi_recap::verify::{verify_from, Resume};
use saksi_tlog::checkpoint::{self, Checkpoint};
use saksi_tlog::merkle::{consistency_proof, verify_consistency};
use saksi_tlog::note::Verifier;
use saksi_tlog::tile::{self, Tile, TileKind, TILE_WIDTH};
use saksi_tlog::{DirStorage, ReadOnlyDir, Storage, TileReader};

use crate::ops::http;
use crate::progress::Progress;

/// A server's `/log/`, read over HTTP.
pub struct HttpStorage {
    base: String,
}

impl HttpStorage {
    pub fn new(url: &str) -> HttpStorage {
        HttpStorage {
            base: url.trim_end_matches('/').to_string(),
        }
    }
}

impl Storage for HttpStorage {
    fn read(&self, path: &str) -> std::io::Result<Option<Vec<u8>>> {
        match http("GET", &format!("{}/log/{path}", self.base), b"") {
            Ok((200, body)) => Ok(Some(body)),
            Ok((404, _)) => Ok(None),
            Ok((status, _)) => Err(std::io::Error::other(format!(
                "GET /log/{path}: HTTP {status}"
            ))),
            Err(e) => Err(std::io::Error::other(format!("{e:#}"))),
        }
    }

    fn list(&self, _: &str) -> std::io::Result<Vec<String>> {
        Ok(Vec::new())
    }

    fn write_durable(&self, _: &[(String, Vec<u8>)]) -> std::io::Result<()> {
        Err(std::io::Error::other("a server's log is read-only"))
    }

    fn create_durable(&self, _: &[(String, Vec<u8>)]) -> std::io::Result<()> {
        Err(std::io::Error::other("a server's log is read-only"))
    }

    fn remove_dir(&self, _: &str) -> std::io::Result<()> {
        Err(std::io::Error::other("a server's log is read-only"))
    }
}

pub fn read_vkey(vkey: &str) -> Result<Verifier> {
    let text = if Path::new(vkey).is_file() {
        std::fs::read_to_string(vkey)?.trim().to_string()
    } else {
        vkey.to_string()
    };
    Ok(Verifier::parse(&text)?)
}

/// Checkpoints this verifier has seen, kept in `state/<key id>/<size>` (the whole signed note).
fn seen_dir(state: &Path, key: &Verifier) -> PathBuf {
    state.join(format!("{:08x}", key.id))
}

/// Where a clean verification is saved for the next run to continue from (beside `<key id>/`).
fn resume_path(state: &Path, key: &Verifier) -> PathBuf {
    state.join(format!("{:08x}.verified", key.id))
}

/// The saved verification, if there is one this run can continue from; says why not otherwise.
fn load_resume(path: &Path, key: &Verifier, size: u64) -> Option<Resume> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            eprintln!(
                "saksi verify: cannot read {} ({e}); checking the whole log",
                path.display()
            );
            return None;
        }
    };
    match Resume::from_bytes(&bytes, key) {
        Ok(resume) if resume.size() <= size => Some(resume),
        // A smaller log than verified before is a rollback, which the saved checkpoints report.
        Ok(_) => None,
        Err(why) => {
            eprintln!(
                "saksi verify: not continuing from {}: {why}; checking the whole log",
                path.display()
            );
            None
        }
    }
}

/// Replaces `path` with `bytes` so that a crash leaves the old file or the new one, never a mix:
/// temporary file, fsync, rename, fsync of the directory.
fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let temp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&temp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// Compares the current checkpoint with every one seen before; records it. Returns problems.
fn check_history(
    state: &Path,
    key: &Verifier,
    storage: Arc<dyn Storage>,
    current: &Checkpoint,
    note: &[u8],
) -> Result<Vec<String>> {
    let dir = seen_dir(state, key);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut problems = Vec::new();
    let mut reader = TileReader::new(storage, current.size);
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        let Ok(old_note) = std::fs::read(&path) else {
            continue;
        };
        let Ok(old) = checkpoint::open(&old_note, key, &[]) else {
            problems.push(format!(
                "{}: a saved checkpoint no longer verifies",
                path.display()
            ));
            continue;
        };
        let old = old.checkpoint;
        if old.size > current.size {
            problems.push(format!(
                "rollback: the log now shows size {} but this verifier saw size {} (root {}) before",
                current.size, old.size, old.root
            ));
        } else if old.size == current.size {
            if old.root != current.root {
                problems.push(format!(
                    "split view: two checkpoints of size {} signed by the log key, roots {} (seen before) and {} (now)",
                    old.size, old.root, current.root
                ));
            }
        } else if old.size > 0 {
            let consistent = consistency_proof(&mut reader, old.size, current.size)
                .map_err(|e| e.to_string())
                .and_then(|proof| {
                    verify_consistency(old.size, current.size, &proof, &old.root, &current.root)
                        .map_err(|e| e.to_string())
                });
            if let Err(e) = consistent {
                problems.push(format!(
                    "fork: the checkpoint of size {} seen before is not a prefix of size {}: {e}",
                    old.size, current.size
                ));
            }
        }
    }
    let path = dir.join(current.size.to_string());
    if !path.exists() {
        std::fs::write(&path, note)?;
    }
    Ok(problems)
}

fn compare_tally(
    what: &str,
    published: &Value,
    log: &Tally,
    positions: &[String],
    problems: &mut Vec<String>,
) {
    let mut check = |field: String, published: Option<i64>, log: i64| {
        if published != Some(log) {
            problems.push(format!(
                "{what}: {field} published {}, the log gives {log}",
                published.map_or("nothing".into(), |v| v.to_string())
            ));
        }
    };
    for (i, position) in positions.iter().enumerate() {
        check(
            format!("votes.{position}"),
            published["votes"][position].as_i64(),
            log.votes.get(i).copied().unwrap_or(0),
        );
    }
    check("valid".into(), published["valid"].as_i64(), log.valid);
    check("invalid".into(), published["invalid"].as_i64(), log.invalid);
    check("voters".into(), published["voters"].as_i64(), log.voters);
    check(
        "tps_reported".into(),
        published["tps_reported"].as_i64(),
        log.tps_reported as i64,
    );
    check(
        "rejected_entries".into(),
        published["rejected_entries"].as_i64(),
        log.rejected_entries as i64,
    );
    // The poll witnesses' copies: the same counts re-derived from the copies in the log.
    let copies = &published["copies"];
    check(
        "copies.tps_with_copies".into(),
        copies["tps_with_copies"].as_i64(),
        log.copies.tps_with_copies as i64,
    );
    check(
        "copies.tps_disagreeing".into(),
        copies["tps_disagreeing"].as_i64(),
        log.copies.tps_disagreeing as i64,
    );
    check(
        "copies.tps_witness_only".into(),
        copies["tps_witness_only"].as_i64(),
        log.copies.tps_witness_only as i64,
    );
    for (i, position) in positions.iter().enumerate() {
        check(
            format!("copies.tps_disagreeing_by_participant.{position}"),
            copies["tps_disagreeing_by_participant"][position].as_i64(),
            log.copies
                .disagreeing_by_participant
                .get(i)
                .copied()
                .unwrap_or(0) as i64,
        );
    }
}

/// Verifies a log (and, with `api`, the totals a server publishes). Exit 0 all good, 1 problems, 2 could not check.
pub fn run(
    dir: Option<&Path>,
    url: Option<&str>,
    api: Option<&str>,
    key: &Verifier,
    state: Option<&Path>,
    follow: bool,
    photos: Option<PhotoSource>,
) -> Result<u8> {
    let storage: Arc<dyn Storage> = match (dir, url) {
        (Some(dir), None) => Arc::new(ReadOnlyDir::new(dir)),
        (None, Some(url)) => Arc::new(HttpStorage::new(url)),
        _ => bail!("give exactly one of --dir DIR or --url URL"),
    };
    let round = Round {
        storage: &storage,
        url,
        api,
        key,
        state,
        photos: photos.as_ref(),
    };
    if !follow {
        return Ok(round.run(None, true)?.0);
    }
    // Following: the state stays in memory between rounds; each round checks only what is new.
    let mut resume: Option<Resume> = None;
    let mut seen: Option<Vec<u8>> = None;
    let mut saved_at: Option<Instant> = None;
    println!(
        "saksi verify: following {} every {} ms (stop with Ctrl-C)",
        url.map_or_else(
            || dir.map(|d| d.display().to_string()).unwrap_or_default(),
            String::from
        ),
        FOLLOW_INTERVAL.as_millis()
    );
    loop {
        let note = storage.read(saksi_tlog::CHECKPOINT_PATH);
        match note {
            Ok(Some(note)) if seen.as_ref() != Some(&note) => {
                let save = saved_at.is_none_or(|at| at.elapsed() >= FOLLOW_SAVE_INTERVAL);
                let (code, verified) = round.run(resume.take(), save)?;
                if code != crate::EXIT_OK {
                    return Ok(code);
                }
                if save && state.is_some() {
                    saved_at = Some(Instant::now());
                }
                resume = verified.map(|v| v.into_resume());
                seen = Some(note);
            }
            Ok(_) => {}
            // A server that cannot be reached is asked again; what was verified stays verified.
            Err(e) => eprintln!("saksi verify: cannot read the checkpoint ({e}); retrying"),
        }
        std::thread::sleep(FOLLOW_INTERVAL);
    }
}

/// How often `saksi verify --follow` reads the checkpoint.
const FOLLOW_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// How often `--follow` saves its state to --state: a national state is a few hundred MB, whose
/// writing (not the checking) is what a round over 10,000 new entries would otherwise spend its
/// time on. A crash loses at most this much progress, never correctness: the saved state is an
/// earlier verified point.
const FOLLOW_SAVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// One verification: what `saksi verify` does once, and `--follow` each time the log grows.
struct Round<'a> {
    storage: &'a Arc<dyn Storage>,
    url: Option<&'a str>,
    api: Option<&'a str>,
    key: &'a Verifier,
    state: Option<&'a Path>,
    photos: Option<&'a PhotoSource>,
}

impl Round<'_> {
    /// Verifies from `resume` (in memory) or else from the state saved in --state; with `save`,
    /// records the checkpoint in --state and saves the verification there when it is clean.
    /// Returns the exit code and, when clean, the verification.
    fn run(
        &self,
        resume: Option<Resume>,
        save: bool,
    ) -> Result<(u8, Option<saksi_recap::verify::Verified>)> {
        let Round {
            storage,
            url,
            api,
            key,
            state,
            photos,
        } = *self;
        let started = Instant::now();
        let note = storage
            .read(saksi_tlog::CHECKPOINT_PATH)
            .context("fetching the checkpoint")?
            .context("no checkpoint")?;
        let mut problems = Vec::new();
        let current = match checkpoint::open(&note, key, &[]) {
            Ok(signed) => Some(signed.checkpoint),
            Err(e) => {
                problems.push(format!("checkpoint: {e}"));
                None
            }
        };
        // In memory between rounds, the frontier already proves each round extends the last; the
        // saved checkpoints are compared when the state is saved.
        if let (Some(state), Some(current), true) = (state, &current, save) {
            problems.extend(check_history(state, key, storage.clone(), current, &note)?);
        }
        // Continue from this verifier's last clean run when it left one (--state), unless the log looks
        // rolled back or forked: then everything is checked again.
        let resume = match (resume, state, &current) {
            (Some(resume), _, _) if problems.is_empty() => Some(resume),
            (None, Some(state), Some(current)) if problems.is_empty() => {
                load_resume(&resume_path(state, key), key, current.size)
            }
            _ => None,
        };
        let from = resume.as_ref().map_or(0, |r| r.size());
        let mut progress = Progress::new(
            "verifying",
            current.as_ref().map_or(0, |c| c.size.saturating_sub(from)),
        );
        let verified = verify_from(storage.as_ref(), key, resume, &mut |done, _| {
            progress.update(done.saturating_sub(from))
        })
        .map_err(|e| anyhow::anyhow!("could not check: {e}"))?;
        progress.finish();
        problems.extend(verified.problems.iter().cloned());
        // The checkpoint must carry the cosignatures the logged witness policy requires.
        let mut witnessed = None;
        if let Some(policy) = &verified.state.witness_policy {
            let keys: Vec<Verifier> = policy
                .witnesses
                .iter()
                .filter_map(|(v, _)| Verifier::parse(v).ok())
                .collect();
            let count = checkpoint::open(&note, key, &keys)
                .map(|s| {
                    s.note
                        .verified
                        .iter()
                        .filter(|sig| keys.iter().any(|k| k.name == sig.name && k.id == sig.id))
                        .count()
                })
                .unwrap_or(0);
            if count < policy.quorum as usize {
                problems.push(format!(
                "the checkpoint carries {count} valid witness cosignatures; the logged policy requires {} of {}",
                policy.quorum,
                keys.len()
            ));
            }
            witnessed = Some((count, policy.quorum));
        }
        let mut regions_compared = 0usize;
        if let Some(api) = api.or(url) {
            let api = api.trim_end_matches('/');
            let state = &verified.state;
            let positions: Vec<String> = state
                .election()
                .and_then(|e| e.contests.first())
                .map(|c| c.candidates.iter().map(|p| p.number.clone()).collect())
                .unwrap_or_default();
            let get = |path: &str| -> Result<Value> {
                let (status, body) = http("GET", &format!("{api}{path}"), b"")?;
                if status != 200 {
                    bail!("GET {path}: HTTP {status}");
                }
                Ok(serde_json::from_slice(&body)?)
            };
            let national = get("/api/v1/regions")?;
            let api_size = national["checkpoint"]["size"].as_u64();
            if api_size != Some(verified.checkpoint.size) {
                problems.push(format!(
                "the API reflects checkpoint size {api_size:?} but the log's checkpoint is {}; compare again when both agree",
                verified.checkpoint.size
            ));
            }
            compare_tally(
                "national",
                &national["tally"],
                state.national(),
                &positions,
                &mut problems,
            );
            regions_compared += 1;
            let codes: Vec<_> = state
                .registry
                .regions()
                .map(|(c, _)| c)
                .filter(|c| c.level() <= Level::Kecamatan)
                .collect();
            for code in codes {
                let published = get(&format!("/api/v1/regions/{code}"))?;
                compare_tally(
                    &format!(
                        "region {code} ({})",
                        state.registry.region_name(code).unwrap_or("?")
                    ),
                    &published["tally"],
                    state.tally(code).unwrap_or(&Tally::default()),
                    &positions,
                    &mut problems,
                );
                regions_compared += 1;
            }
        }
        let mut photos_checked = None;
        if let Some(source) = photos {
            let (checked, found) = check_photos(source, &verified.evidence)?;
            problems.extend(found);
            photos_checked = Some(checked);
        }
        let (discrepancies, _) = saksi_recap::inflation::discrepancies(&verified.state);
        let cp = &verified.checkpoint;
        if problems.is_empty() {
            if let (Some(state), true) = (state, save) {
                let path = resume_path(state, key);
                write_durably(&path, &verified.resume_bytes())
                    .with_context(|| format!("saving the verification to {}", path.display()))?;
            }
            let what = if verified.resumed_at == 0 {
                "every tile, entry and signature checked".to_string()
            } else if verified.resumed_at == cp.size {
                format!(
                    "no entries since the {} verified by an earlier run",
                    cp.size
                )
            } else {
                format!(
                "entries {} to {} checked (each entry and signature, and the root they give), the {} before them verified by an earlier run",
                verified.resumed_at,
                cp.size.saturating_sub(1),
                verified.resumed_at
            )
            };
            println!(
            "saksi verify: OK: {} size {} root {}; {what}, {} forms re-verified against the logged registry and rulebook{}; {:.1}s",
            cp.origin,
            cp.size,
            cp.root,
            verified.forms_checked,
            if regions_compared > 0 { format!(", {regions_compared} published region totals equal the log's") } else { String::new() }
                + &witnessed.map_or(String::new(), |(n, k)| format!(", {n} witness cosignatures (policy {k})"))
                + &format!(", {} recapitulation discrepancies re-derived", discrepancies.len())
                + &format!(
                    ", {} TPS compared with poll witnesses' copies ({} disagreeing)",
                    verified.state.national().copies.tps_with_copies,
                    verified.state.national().copies.tps_disagreeing
                )
                + &photos_checked.map_or(String::new(), |n| format!(", {n} photos retrieved and matching their digests")),
            started.elapsed().as_secs_f64()
        );
            Ok((crate::EXIT_OK, Some(verified)))
        } else {
            println!(
                "saksi verify: {} PROBLEM(S) in {} at size {}:",
                problems.len(),
                cp.origin,
                cp.size
            );
            for problem in &problems {
                println!("  - {problem}");
            }
            Ok((crate::EXIT_REJECTIONS, None))
        }
    }
}

/// Tiles a mirror holds in memory before writing them durably (one round of fsyncs per round).
const MIRROR_ROUND_BYTES: usize = 64 << 20;

/// Brings a local copy of a served log up to date, checking each step: the new checkpoint verifies,
/// its tiles give its root, and it is consistent with the copy's previous checkpoint. The copy is a
/// tlog-tiles directory any static server can serve.
pub fn mirror(url: &str, dir: &Path, key: &Verifier) -> Result<u8> {
    let started = Instant::now();
    let step = mirror_step(url, dir, key)?;
    if step.code == crate::EXIT_OK {
        println!(
            "saksi mirror: {} now at size {} (was {}), {} files fetched and checked in {:.1}s",
            dir.display(),
            step.size,
            step.from,
            step.fetched,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(step.code)
}

/// How often `saksi mirror --follow` asks the server for its checkpoint (one small GET).
const MIRROR_FOLLOW_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

/// How often `--follow` also copies photos and report texts: each pass reads the whole mirrored log
/// to list what entries name (about as long as `saksi verify` for a national log), so it runs at
/// most once a minute, and only when the log grew.
const MIRROR_FILES_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// `saksi mirror --follow`: keeps the mirror current until stopped (a read replica serves from it).
/// A server that cannot be reached is retried; a rollback or a fork stops the mirror (exit 1) with
/// the copy as it was, its last checkpoint still published.
pub fn mirror_follow(
    url: &str,
    dir: &Path,
    key: &Verifier,
    evidence: Option<&Path>,
    reports: Option<&Path>,
) -> Result<u8> {
    let mut last_problem = String::new();
    let mut files_at: Option<(Instant, u64)> = None;
    println!(
        "saksi mirror: following {url} into {} every {} ms (stop with Ctrl-C)",
        dir.display(),
        MIRROR_FOLLOW_INTERVAL.as_millis()
    );
    loop {
        match mirror_step(url, dir, key) {
            Ok(step) if step.code != crate::EXIT_OK => return Ok(step.code),
            Ok(step) => {
                last_problem.clear();
                if step.size != step.from {
                    println!(
                        "saksi mirror: {} now at size {} (was {}), {} files",
                        dir.display(),
                        step.size,
                        step.from,
                        step.fetched
                    );
                }
                let due = files_at.is_none_or(|(at, size)| {
                    size != step.size && at.elapsed() >= MIRROR_FILES_INTERVAL
                });
                if due && (evidence.is_some() || reports.is_some()) {
                    if let Some(evidence) = evidence {
                        mirror_photos(url, dir, key, evidence)?;
                    }
                    if let Some(texts) = reports {
                        mirror_report_texts(url, dir, key, texts)?;
                    }
                    files_at = Some((Instant::now(), step.size));
                }
            }
            Err(e) => {
                let problem = format!("{e:#}");
                if problem != last_problem {
                    eprintln!("saksi mirror: {problem} (retrying)");
                    last_problem = problem;
                }
            }
        }
        std::thread::sleep(MIRROR_FOLLOW_INTERVAL);
    }
}

/// What one mirroring round did.
struct MirrorStep {
    code: u8,
    from: u64,
    size: u64,
    fetched: u64,
}

fn mirror_step(url: &str, dir: &Path, key: &Verifier) -> Result<MirrorStep> {
    let remote = HttpStorage::new(url);
    let note = remote
        .read(saksi_tlog::CHECKPOINT_PATH)?
        .context("the server has no checkpoint")?;
    let current = checkpoint::open(&note, key, &[])
        .map_err(|e| anyhow::anyhow!("the served checkpoint does not verify: {e}"))?
        .checkpoint;
    crate::owned::claim(dir, "mirror")?;
    let local = DirStorage::open(dir)?;
    let previous = match local.read(saksi_tlog::CHECKPOINT_PATH)? {
        Some(old) => Some(
            checkpoint::open(&old, key, &[])
                .map_err(|e| anyhow::anyhow!("the mirror's own checkpoint does not verify: {e}"))?
                .checkpoint,
        ),
        None => None,
    };
    let from = previous.as_ref().map_or(0, |p| p.size);
    let refused = |size| MirrorStep {
        code: crate::EXIT_REJECTIONS,
        from,
        size,
        fetched: 0,
    };
    if current.size < from {
        println!("saksi mirror: the server shows size {} but this mirror already has {from}: rollback, not copied", current.size);
        return Ok(refused(current.size));
    }
    // Nothing new. (The same size with another root is a split view: checked below like any fork.)
    if previous
        .as_ref()
        .is_some_and(|p| p.size == current.size && p.root == current.root)
    {
        return Ok(MirrorStep {
            code: crate::EXIT_OK,
            from,
            size: from,
            fetched: 0,
        });
    }
    // Everything the new size needs that the old one did not have: full tiles completed since, and the
    // new partial ones. Listed lazily and fetched in bounded rounds: the size is the server's claim,
    // and a signed checkpoint of size 2^62 must cost a failed fetch, not a list of 2^54 tiles.
    let size = current.size;
    let hash_tiles = (0..=tile::MAX_TILE_LEVEL)
        .map(move |level| (level, tile::stored_hashes_at(level, size)))
        .take_while(|(_, count)| *count > 0)
        .flat_map(move |(level, count)| {
            let have_full = tile::stored_hashes_at(level, from) / TILE_WIDTH;
            (have_full..count.div_ceil(TILE_WIDTH)).map(move |n| Tile {
                kind: TileKind::Hashes { level },
                index: n,
                width: (count - n * TILE_WIDTH).min(TILE_WIDTH) as u16,
            })
        });
    let entry_tiles = (from / TILE_WIDTH..size.div_ceil(TILE_WIDTH)).map(move |n| Tile {
        kind: TileKind::Entries,
        index: n,
        width: (size - n * TILE_WIDTH).min(TILE_WIDTH) as u16,
    });
    let mut wanted = hash_tiles.chain(entry_tiles).peekable();
    let mut fetched = 0u64;
    while wanted.peek().is_some() {
        let mut round = Vec::new();
        let mut round_bytes = 0usize;
        while round_bytes < MIRROR_ROUND_BYTES {
            let Some(tile) = wanted.next() else { break };
            let bytes = remote
                .read(&tile.path())?
                .with_context(|| format!("{} is missing on the server", tile.path()))?;
            round_bytes += bytes.len();
            round.push((tile.path(), bytes));
        }
        fetched += round.len() as u64;
        local.write_durable(&round)?;
    }
    // Check before publishing locally: the copy's tiles must give the new root, consistently.
    let storage: Arc<dyn Storage> = Arc::new(local);
    let mut reader = TileReader::new(storage.clone(), current.size);
    let root = saksi_tlog::merkle::NodeSource::range_hash(&mut reader, 0, current.size)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if root != current.root {
        bail!(
            "the served tiles give root {root}, the checkpoint says {}: not copied",
            current.root
        );
    }
    if let Some(previous) = &previous {
        if previous.size > 0 {
            let proof = consistency_proof(&mut reader, previous.size, current.size)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if let Err(e) = verify_consistency(
                previous.size,
                current.size,
                &proof,
                &previous.root,
                &current.root,
            ) {
                println!("saksi mirror: the server's log is not an extension of this mirror's ({e}): fork, not published");
                return Ok(refused(current.size));
            }
        }
    }
    storage.write_durable(&[(saksi_tlog::checkpoints_path(current.size), note.clone())])?;
    storage.write_durable(&[(saksi_tlog::CHECKPOINT_PATH.into(), note)])?;
    Ok(MirrorStep {
        code: crate::EXIT_OK,
        from,
        size: current.size,
        fetched,
    })
}

/// Where `saksi verify --evidence` reads photos from.
pub enum PhotoSource {
    /// A server's `/evidence/sha256/<hex>`.
    Server(String),
    /// An evidence store's directory (`sha256/<2 hex>/<64 hex>`).
    Dir(PathBuf),
}

/// A photo and whether it was found with matching bytes (`None`: not found).
type Fetched = (saksi_election::form::PhotoDigest, Option<bool>);

/// Problems listed by name at most; past it, a count.
const PHOTO_PROBLEMS_LISTED: usize = 20;
/// Photos fetched at once from a server.
const PHOTO_FETCHERS: usize = 8;

/// Fetches every photo named and checks it hashes to its name. Returns how many matched, and the
/// problems (missing, or other bytes).
fn check_photos(
    source: &PhotoSource,
    digests: &[saksi_election::form::PhotoDigest],
) -> Result<(usize, Vec<String>)> {
    use saksi_election::form::{hex, PhotoDigest};
    let fetch = |digest: &PhotoDigest| -> Result<Option<Vec<u8>>> {
        let name = hex(&digest.0);
        match source {
            PhotoSource::Server(url) => {
                let url = format!("{}/evidence/sha256/{name}", url.trim_end_matches('/'));
                match http("GET", &url, b"")? {
                    (200, body) => Ok(Some(body)),
                    (404, _) => Ok(None),
                    (status, _) => bail!("GET {url}: HTTP {status}"),
                }
            }
            PhotoSource::Dir(dir) => {
                match std::fs::read(dir.join("sha256").join(&name[..2]).join(&name)) {
                    Ok(bytes) => Ok(Some(bytes)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(e.into()),
                }
            }
        }
    };
    let chunk = digests.len().div_ceil(PHOTO_FETCHERS).max(1);
    let outcomes: Vec<Result<Vec<Fetched>>> = std::thread::scope(|scope| {
        let workers: Vec<_> = digests
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|d| Ok((*d, fetch(d)?.map(|b| PhotoDigest::of(&b) == *d))))
                        .collect()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a fetcher panicked")))
            })
            .collect()
    });
    let (mut matched, mut missing, mut wrong) = (0usize, Vec::new(), Vec::new());
    for outcome in outcomes {
        for (digest, found) in outcome? {
            match found {
                Some(true) => matched += 1,
                Some(false) => wrong.push(digest),
                None => missing.push(digest),
            }
        }
    }
    let mut problems = Vec::new();
    for (list, what) in [
        (&missing, "is missing"),
        (&wrong, "does not hash to its name"),
    ] {
        for digest in list.iter().take(PHOTO_PROBLEMS_LISTED) {
            problems.push(format!("photo {} {what}", digest.to_text()));
        }
        if list.len() > PHOTO_PROBLEMS_LISTED {
            problems.push(format!(
                "... and {} more photos that {what}",
                list.len() - PHOTO_PROBLEMS_LISTED
            ));
        }
    }
    Ok((matched, problems))
}

/// After `mirror`: copies into `evidence` every photo the mirrored log's forms name that it does
/// not hold yet, each checked against its digest by the store.
pub fn mirror_photos(url: &str, dir: &Path, key: &Verifier, evidence: &Path) -> Result<u8> {
    use saksi_election::form::{hex, PhotoDigest};
    let started = Instant::now();
    let mut named: Vec<PhotoDigest> = Vec::new();
    saksi_tlog::audit::audit(&ReadOnlyDir::new(dir), key, |_, bytes| {
        match saksi_recap::Entry::decode(bytes) {
            Ok(saksi_recap::Entry::Form { form, .. }) => {
                named.extend_from_slice(&form.form.evidence)
            }
            Ok(saksi_recap::Entry::Copy { copy, .. }) => {
                named.extend_from_slice(&copy.copy.form.evidence)
            }
            Ok(saksi_recap::Entry::Report { report }) => {
                named.extend_from_slice(&report.report.photos)
            }
            _ => {}
        }
    })
    .map_err(|e| anyhow::anyhow!("reading the mirrored log: {e}"))?;
    named.sort_unstable_by_key(|d| d.0);
    named.dedup();
    let store = saksi_recap::evidence::EvidenceStore::open(evidence)?;
    let (mut fetched, mut held, mut missing, mut withheld) = (0usize, 0usize, 0usize, 0usize);
    for digest in &named {
        if store.get(digest)?.is_some() {
            held += 1;
            continue;
        }
        let name = hex(&digest.0);
        match http(
            "GET",
            &format!("{}/evidence/sha256/{name}", url.trim_end_matches('/')),
            b"",
        )? {
            (200, body) if PhotoDigest::of(&body) == *digest => {
                store.put(&body).map_err(|e| anyhow::anyhow!("{e}"))?;
                fetched += 1;
            }
            (200, _) => bail!(
                "the server's photo {} does not hash to its name",
                digest.to_text()
            ),
            // A hidden report's photo: withheld by a logged moderation statement, not lost.
            (451, _) => withheld += 1,
            _ => missing += 1,
        }
    }
    println!(
        "saksi mirror: photos: {} named by the log, {fetched} copied, {held} held already, {withheld} withheld by moderators, {missing} missing on the server; {:.1}s",
        named.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(if missing > 0 {
        crate::EXIT_REJECTIONS
    } else {
        crate::EXIT_OK
    })
}

/// After `mirror`: copies into `texts` the text of every report the mirrored log holds, each
/// checked against the digest its signed report names. A text a moderator hid (451) is counted as
/// withheld; one the server does not have is missing (exit 1).
pub fn mirror_report_texts(url: &str, dir: &Path, key: &Verifier, texts: &Path) -> Result<u8> {
    use saksi_election::form::hex;
    let started = Instant::now();
    let mut named: Vec<[u8; 32]> = Vec::new();
    saksi_tlog::audit::audit(&ReadOnlyDir::new(dir), key, |_, bytes| {
        if let Ok(saksi_recap::Entry::Report { report }) = saksi_recap::Entry::decode(bytes) {
            named.push(report.report.text_sha256);
        }
    })
    .map_err(|e| anyhow::anyhow!("reading the mirrored log: {e}"))?;
    named.sort_unstable();
    named.dedup();
    let store = saksi_recap::report_texts::ReportTexts::open(texts)?;
    let (mut fetched, mut held, mut withheld, mut missing) = (0usize, 0usize, 0usize, 0usize);
    for digest in &named {
        if store.get(digest)?.is_some() {
            held += 1;
            continue;
        }
        let name = hex(digest);
        let url = format!(
            "{}/api/v1/report-texts/sha256/{name}",
            url.trim_end_matches('/')
        );
        match http("GET", &url, b"")? {
            (200, body) => {
                let text = String::from_utf8(body)
                    .ok()
                    .filter(|t| saksi_election::report::text_digest(t) == *digest)
                    .with_context(|| {
                        format!("the server's report text {name} does not hash to its name")
                    })?;
                store.put(&text)?;
                fetched += 1;
            }
            (451, _) => withheld += 1,
            _ => missing += 1,
        }
    }
    println!(
        "saksi mirror: report texts: {} named by the log, {fetched} copied, {held} held already, {withheld} withheld by moderators, {missing} missing on the server; {:.1}s",
        named.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(if missing > 0 {
        crate::EXIT_REJECTIONS
    } else {
        crate::EXIT_OK
    })
}
