//! `saksi bench`: measured figures, printed. Not tests: nothing here asserts a timing.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use saksi_tlog::note::{Signer, TYPE_ED25519};
use saksi_tlog::{DirStorage, Log, Storage};

/// Appends `entries` entries of `entry_bytes` bytes durably to a fresh log in `dir`, `batch` per
/// commit, and prints entries/s, MB/s and the time per commit.
pub fn log_append(dir: &Path, entries: u64, entry_bytes: usize, batch: usize) -> Result<()> {
    // Only the log an earlier run made here is replaced, and not while a process holds it.
    crate::owned::claim(dir, "bench-log")?;
    crate::owned::remove_own(dir, "log", &["log"])?;
    crate::owned::remove_own(dir, ".log.tmp", &[])?;
    let storage: Arc<dyn Storage> =
        Arc::new(DirStorage::open(&dir.join("log")).context("opening the bench log")?);
    let signer = Signer::generate("bench.saksi.invalid/log", TYPE_ED25519)?;
    let mut log = Log::open(storage, signer)?;
    // Distinct entries so that nothing could be deduplicated or cached.
    let make = |i: u64| {
        let mut e = format!("{i:012}").into_bytes();
        e.resize(entry_bytes, (i % 251) as u8);
        e
    };
    let hash_started = Instant::now();
    let sample: Vec<Vec<u8>> = (0..20_000).map(make).collect();
    for e in &sample {
        std::hint::black_box(saksi_tlog::leaf_hash(e));
    }
    let hash_rate =
        (sample.len() * entry_bytes) as f64 / hash_started.elapsed().as_secs_f64() / 1e6;
    // Only the appends are timed, not making the entries.
    let mut seconds = 0.0;
    let mut commits = 0u64;
    let mut next = 0u64;
    while next < entries {
        let n = (entries - next).min(batch as u64);
        let chunk: Vec<Vec<u8>> = (next..next + n).map(make).collect();
        let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        let started = Instant::now();
        log.append(&refs)?;
        seconds += started.elapsed().as_secs_f64();
        next += n;
        commits += 1;
    }
    println!("log append (durable, fsync per commit): {entries} entries of {entry_bytes} bytes, {batch} per commit");
    println!("  {:.0} entries/s, {:.0} MB/s of entries, {commits} commits, {:.1} ms per commit, {seconds:.2} s total",
        entries as f64 / seconds,
        (entries as f64 * entry_bytes as f64) / seconds / 1e6,
        seconds * 1e3 / commits as f64);
    println!("  SHA-256 leaf hashing alone: {hash_rate:.0} MB/s (sha2 0.10)");
    println!(
        "  final checkpoint: size {}, root {}",
        log.size(),
        log.committed().checkpoint.root
    );
    Ok(())
}

/// One request of a load run: method, path, body.
type Request = (&'static str, String, Vec<u8>);

/// Responses longer than this are refused by the load generator (ours are a few KiB).
const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// Runs each client's requests in order on its own keep-alive connection, all clients at once, on
/// one thread with non-blocking sockets (as wrk does): the generator takes one core at most and does
/// not add a thread per client to the scheduler of the machine it shares with the server. Returns
/// each response's status and latency in milliseconds, and the wall time in seconds.
fn load(host: &str, clients: Vec<Vec<Request>>) -> Result<(Vec<(u16, f64)>, f64)> {
    load_spread(&[host.to_string()], clients)
}

/// [`load`] with the clients spread over `hosts` in turn (a read replica each).
fn load_spread(hosts: &[String], clients: Vec<Vec<Request>>) -> Result<(Vec<(u16, f64)>, f64)> {
    anyhow::ensure!(!hosts.is_empty(), "no host to load");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    runtime.block_on(async {
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for (i, requests) in clients.into_iter().enumerate() {
            let host = hosts[i % hosts.len()].clone();
            tasks.spawn(async move { run_client(&host, requests).await });
        }
        let mut results = Vec::new();
        while let Some(done) = tasks.join_next().await {
            results.extend(done??);
        }
        Ok((results, started.elapsed().as_secs_f64()))
    })
}

async fn run_client(host: &str, requests: Vec<Request>) -> Result<Vec<(u16, f64)>> {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    let stream = tokio::net::TcpStream::connect(host).await?;
    stream.set_nodelay(true)?;
    let mut stream = tokio::io::BufReader::new(stream);
    let mut out = Vec::with_capacity(requests.len());
    let mut line = String::new();
    let mut sink = Vec::new();
    for (method, path, body) in requests {
        let mut message = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        message.extend_from_slice(&body);
        let t = Instant::now();
        stream.get_mut().write_all(&message).await?;
        line.clear();
        stream.read_line(&mut line).await?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .context("no status line")?
            .parse()?;
        let mut length = 0usize;
        loop {
            line.clear();
            if stream.read_line(&mut line).await? == 0 {
                anyhow::bail!("connection closed in the middle of a response");
            }
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                break;
            }
            if let Some((name, value)) = trimmed.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse()?;
                }
            }
        }
        anyhow::ensure!(length <= MAX_RESPONSE_BYTES, "response of {length} bytes");
        sink.resize(length, 0);
        stream.read_exact(&mut sink).await?;
        out.push((status, t.elapsed().as_secs_f64() * 1e3));
    }
    Ok(out)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Requests per second, latency percentiles and the count of each status, on one line.
fn summary(results: &[(u16, f64)], seconds: f64, unit: &str) -> String {
    let mut latencies: Vec<f64> = results.iter().map(|r| r.1).collect();
    latencies.sort_by(f64::total_cmp);
    let mut statuses = std::collections::BTreeMap::new();
    for (status, _) in results {
        *statuses.entry(*status).or_insert(0usize) += 1;
    }
    format!(
        "  {:.0} {unit}/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms; statuses {statuses:?}",
        results.len() as f64 / seconds,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(0.0)
    )
}

/// Posts `requests` forms from `forms` (one signed form per line) with `concurrency` keep-alive
/// clients; prints submissions/s and latency percentiles. Durability is on: every 201 is fsynced.
pub fn http_submit(
    host: &str,
    forms: &Path,
    skip: usize,
    requests: usize,
    concurrency: usize,
) -> Result<()> {
    // A file of poll witnesses' copies goes to their endpoint; anything else is forms.
    let (path, what) = match crate::ops::file_kind(forms)? {
        crate::ops::FileKind::Copies => ("/api/v1/copies", "poll witnesses' copies"),
        _ => ("/api/v1/forms", "forms"),
    };
    let text = std::fs::read_to_string(forms)?;
    let lines: Vec<&str> = text.lines().skip(skip).take(requests).collect();
    let per = lines.len().div_ceil(concurrency.max(1)).max(1);
    let clients: Vec<Vec<Request>> = lines
        .chunks(per)
        .map(|part| {
            part.iter()
                .map(|line| ("POST", path.to_string(), line.as_bytes().to_vec()))
                .collect()
        })
        .collect();
    drop(lines);
    let (results, seconds) = load(host, clients)?;
    println!("HTTP submissions of {what} to {path}: {} requests, {concurrency} concurrent keep-alive clients (one generator thread), durable (fsync before every answer)", results.len());
    println!("{}", summary(&results, seconds, "submissions"));
    Ok(())
}

/// GETs region pages (`codes`, round robin) with `concurrency` keep-alive clients.
pub fn http_regions(
    hosts: &[String],
    codes: &[String],
    requests: usize,
    concurrency: usize,
) -> Result<()> {
    anyhow::ensure!(!codes.is_empty(), "no regions to query");
    let per = requests.div_ceil(concurrency.max(1));
    let clients: Vec<Vec<Request>> = (0..concurrency)
        .map(|c| {
            (0..per)
                .map(|i| {
                    let code = &codes[(c * per + i) % codes.len()];
                    let path = if code.is_empty() {
                        "/api/v1/regions".to_string()
                    } else {
                        format!("/api/v1/regions/{code}")
                    };
                    ("GET", path, Vec::new())
                })
                .collect()
        })
        .collect();
    let (results, seconds) = load_spread(hosts, clients)?;
    println!(
        "HTTP region queries: {} requests over {} regions, {concurrency} concurrent clients (one generator thread) spread over {} server(s)",
        results.len(),
        codes.len(),
        hosts.len()
    );
    println!("{}", summary(&results, seconds, "queries"));
    Ok(())
}

/// The independent probe's batch size (issue 18: the figure it names was measured this way).
const INDEPENDENT_BATCH: usize = 256;

/// The floor under ingest, two ways, on every core: Ed25519 batch verification alone of the forms'
/// signatures (the forms decoded and their signed messages built beforehand, untimed), and the
/// decode-and-verify stage `saksi import` runs (JSON decoding included). Nothing else: no rules, no
/// log, no tallies.
pub fn signatures(forms: &Path) -> Result<()> {
    use saksi_election::form::SignedForm;
    use saksi_election::sign::{self, BatchItem};
    let text = std::fs::read_to_string(forms)?;
    let lines: Vec<String> = text.lines().map(String::from).collect();
    drop(text);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());

    let decoded: Vec<SignedForm> = lines
        .iter()
        .filter_map(|l| SignedForm::decode(l.as_bytes()).ok())
        .collect();
    let messages: Vec<Vec<u8>> = decoded.iter().map(|f| f.form.signed_message()).collect();
    let items: Vec<BatchItem> = decoded
        .iter()
        .zip(&messages)
        .map(|(f, m)| f.batch_item(m))
        .collect();
    let started = Instant::now();
    let valid = sign::verify_batch_parallel(&items, workers)
        .iter()
        .filter(|ok| **ok)
        .count();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "signature floor (batch verification alone): {} signatures on {workers} cores in {seconds:.2}s ({:.0}/s), {valid} valid",
        items.len(),
        items.len() as f64 / seconds
    );
    // The same with every key's point decompressed beforehand (untimed), as `saksi verify` has
    // them after checking the registry's keys: the like-for-like comparison with the independent
    // floor below, which parses its keys beforehand too.
    let points: Vec<Option<sign::KeyPoint>> = items
        .iter()
        .map(|item| sign::KeyPoint::decompress(&item.key))
        .collect();
    let prepared: Vec<BatchItem> = items
        .iter()
        .zip(&points)
        .map(|(item, point)| BatchItem {
            key: item.key,
            point: point.as_ref(),
            message: item.message,
            signature: item.signature,
        })
        .collect();
    let started = Instant::now();
    let valid = sign::verify_batch_parallel(&prepared, workers)
        .iter()
        .filter(|ok| **ok)
        .count();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "signature floor, keys decompressed beforehand: {} signatures on {workers} cores in {seconds:.2}s ({:.0}/s), {valid} valid",
        prepared.len(),
        prepared.len() as f64 / seconds
    );
    drop(prepared);
    drop(points);
    // The independent floor (issue 18): ed25519-dalek's own `verify_batch`, batches of 256, keys
    // and signatures parsed beforehand (untimed), all cores. It times the batch equation only: a
    // batch holding a bad signature fails whole, and nothing falls back to single checks. Its
    // semantics are not ZIP-215's; it is a yardstick, never a verdict.
    let parsed: Vec<(ed25519_dalek::VerifyingKey, ed25519_dalek::Signature, &[u8])> = items
        .iter()
        .filter_map(|item| {
            let key = ed25519_dalek::VerifyingKey::from_bytes(&item.key.0).ok()?;
            Some((
                key,
                ed25519_dalek::Signature::from_bytes(&item.signature.0),
                item.message,
            ))
        })
        .collect();
    let per = parsed.len().div_ceil(workers).max(1);
    let started = Instant::now();
    let batches_ok: usize = std::thread::scope(|scope| {
        let parts: Vec<_> = parsed
            .chunks(per)
            .map(|part| {
                scope.spawn(move || {
                    part.chunks(INDEPENDENT_BATCH)
                        .filter(|batch| {
                            let messages: Vec<&[u8]> = batch.iter().map(|b| b.2).collect();
                            let signatures: Vec<_> = batch.iter().map(|b| b.1).collect();
                            let keys: Vec<_> = batch.iter().map(|b| b.0).collect();
                            ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok()
                        })
                        .count()
                })
            })
            .collect();
        parts
            .into_iter()
            .map(|p| p.join().expect("a probe thread"))
            .sum()
    });
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "independent floor (ed25519-dalek verify_batch, batches of {INDEPENDENT_BATCH}, keys parsed beforehand): {} signatures on {workers} cores in {seconds:.2}s ({:.0}/s), {batches_ok} of {} batches whole",
        parsed.len(),
        parsed.len() as f64 / seconds,
        parsed.len().div_ceil(INDEPENDENT_BATCH)
    );
    drop(parsed);
    drop(items);
    drop(messages);

    // With the signers' points held, as a writer holds its registry's: what filling them costs (an
    // import waits for it; a server does it on a thread while it answers).
    let signers: Vec<sign::PublicKey> = decoded.iter().map(|f| f.form.signer).collect();
    drop(decoded);
    let started = Instant::now();
    let mut key_points = sign::KeyPoints::default();
    key_points.add_keys(signers, workers);
    println!(
        "signers' points filled (a writer's start): {} keys on {workers} cores in {:.2}s",
        key_points.len(),
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let valid = crate::ops::decode_and_verify(&lines, &key_points)
        .iter()
        .filter(|r| r.is_ok())
        .count();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "decode + verify (the import's first stage, signers' points held): {} forms on {workers} cores in {seconds:.2}s ({:.0} forms/s), {valid} valid",
        lines.len(),
        lines.len() as f64 / seconds
    );
    Ok(())
}

/// Pages sampled per kind for the size and server-time passes: enough to find the large ones
/// (every province; an even spread of the lower levels), few enough to run in seconds.
const SITE_SAMPLE_PER_KIND: usize = 300;

/// One GET on a fresh connection, the whole answer read: (status, body).
fn fetch(host: &str, path: &str) -> Result<(u16, Vec<u8>)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(host)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream
        .take(MAX_RESPONSE_BYTES as u64 + 4096)
        .read_to_end(&mut response)?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of headers")?;
    let status = std::str::from_utf8(&response[..split])?
        .split_whitespace()
        .nth(1)
        .context("no status")?
        .parse()?;
    Ok((status, response[split + 4..].to_vec()))
}

fn gzip_len(bytes: &[u8]) -> Result<usize> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes)?;
    Ok(encoder.finish()?.len())
}

/// Every `step`-th item, at most `SITE_SAMPLE_PER_KIND`.
fn spread(items: &[String]) -> Vec<String> {
    let step = items.len().div_ceil(SITE_SAMPLE_PER_KIND).max(1);
    items.iter().step_by(step).cloned().collect()
}

/// The site's budgets (issue 13), measured against a running server: the size of every kind of
/// page (as sent, and gzip-compressed as a CDN or proxy would send it) with the scripts a first
/// load also fetches; server time per page (one client, so latency is the server's time plus
/// loopback); and region pages per second under `concurrency` keep-alive clients.
pub fn site(host: &str, registry: &Path, requests: usize, concurrency: usize) -> Result<()> {
    let regions = std::fs::read_to_string(registry.join("regions.csv"))?;
    let tps = std::fs::read_to_string(registry.join("tps.csv"))?;
    let codes: Vec<String> = regions
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next().map(String::from))
        .collect();
    let at = |len: usize| -> Vec<String> {
        spread(
            &codes
                .iter()
                .filter(|c| c.len() == len)
                .map(|c| format!("/wilayah/{c}"))
                .collect::<Vec<_>>(),
        )
    };
    let tps_pages = spread(
        &tps.lines()
            .skip(1)
            .filter_map(|l| l.split(',').next().map(|c| format!("/tps/{c}")))
            .collect::<Vec<_>>(),
    );
    let lists: Vec<String> = [
        "/selisih",
        "/ditolak",
        "/koreksi",
        "/cara-memeriksa",
        "/cari?q=jaya",
        "/?peta=partisipasi",
    ]
    .map(String::from)
    .to_vec();
    let kinds: Vec<(&str, Vec<String>)> = vec![
        ("nation", vec!["/".to_string()]),
        ("provinsi", at(2)),
        ("kabupaten/kota", at(4)),
        ("kecamatan", at(6)),
        ("kelurahan/desa", at(10)),
        ("TPS", tps_pages),
        ("lists, search, map", lists),
    ];

    // Warm-up: the first page that shows discrepancy counts builds the discrepancy list (kept while
    // the log does not grow, rebuilt off the request path at most once a second while it does).
    let started = Instant::now();
    let (status, _) = fetch(host, "/")?;
    anyhow::ensure!(status == 200, "/: {status}");
    let first_ms = started.elapsed().as_secs_f64() * 1e3;
    // And the first search builds the index of region names (again only when regions are added).
    let started = Instant::now();
    let (status, _) = fetch(host, "/cari?q=jaya")?;
    anyhow::ensure!(status == 200, "/cari: {status}");
    let first_search_ms = started.elapsed().as_secs_f64() * 1e3;
    let mut assets_raw = 0;
    let mut assets_gzip = 0;
    for asset in ["/assets/verify.js", "/assets/site.js", "/assets/icon.svg"] {
        let (status, body) = fetch(host, asset)?;
        anyhow::ensure!(status == 200, "{asset}: {status}");
        assets_raw += body.len();
        assets_gzip += gzip_len(&body)?;
    }
    println!("Site budgets against {host} (pages sampled per kind: up to {SITE_SAMPLE_PER_KIND})");
    println!("  first request after start (builds the discrepancy list): {first_ms:.1} ms; first search (builds the name index): {first_search_ms:.1} ms");
    println!(
        "  scripts and icon fetched on a first load: {:.1} KB as sent, {:.1} KB gzip",
        assets_raw as f64 / 1e3,
        assets_gzip as f64 / 1e3
    );
    println!(
        "  {:<20} {:>6} {:>22} {:>22} {:>16}",
        "page kind",
        "pages",
        "largest KB sent/gzip",
        "first load KB sent/gzip",
        "server ms p50/p99"
    );
    let mut region_pages = Vec::new();
    for (kind, pages) in &kinds {
        let mut largest = (0usize, 0usize);
        let mut latencies = Vec::new();
        for path in pages {
            let started = Instant::now();
            let (status, body) = fetch(host, path)?;
            latencies.push(started.elapsed().as_secs_f64() * 1e3);
            anyhow::ensure!(status == 200, "{path}: {status}");
            if body.len() > largest.0 {
                largest = (body.len(), gzip_len(&body)?);
            }
        }
        latencies.sort_by(f64::total_cmp);
        println!(
            "  {:<20} {:>6} {:>11.1} / {:<8.1} {:>11.1} / {:<8.1} {:>7.2} / {:<6.2}",
            kind,
            pages.len(),
            largest.0 as f64 / 1e3,
            largest.1 as f64 / 1e3,
            (largest.0 + assets_raw) as f64 / 1e3,
            (largest.1 + assets_gzip) as f64 / 1e3,
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
        );
        if matches!(
            *kind,
            "provinsi" | "kabupaten/kota" | "kecamatan" | "kelurahan/desa"
        ) {
            region_pages.extend(pages.iter().cloned());
        }
    }

    anyhow::ensure!(!region_pages.is_empty(), "no region pages");
    let per = requests.div_ceil(concurrency.max(1));
    let clients: Vec<Vec<Request>> = (0..concurrency)
        .map(|c| {
            (0..per)
                .map(|i| {
                    (
                        "GET",
                        region_pages[(c * per + i) % region_pages.len()].clone(),
                        Vec::new(),
                    )
                })
                .collect()
        })
        .collect();
    let (results, seconds) = load(host, clients)?;
    println!(
        "  region pages under load: {} requests over {} pages, {concurrency} concurrent keep-alive clients (one generator thread)",
        results.len(),
        region_pages.len()
    );
    println!("{}", summary(&results, seconds, "pages"));
    Ok(())
}

/// Posts `count` distinct photos of `photo_bytes` bytes each (a JPEG's first bytes, then
/// pseudo-random bytes that do not compress) with `concurrency` keep-alive clients; prints
/// photos/s, MB/s and latency. Every 201 is durable (fsynced) before it is answered.
pub fn http_photos(host: &str, count: usize, photo_bytes: usize, concurrency: usize) -> Result<()> {
    anyhow::ensure!(photo_bytes >= 16, "a photo of at least 16 bytes");
    // Seeded by the clock: each run's photos are new to the store (a repeat is answered 200 without
    // a write, which would measure reading instead).
    let mut state = 0x9E37_79B9_7F4A_7C15u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    let mut photo = |i: usize| {
        let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
        bytes.extend_from_slice(&(i as u64).to_be_bytes());
        while bytes.len() < photo_bytes {
            // xorshift64*: cheap bytes that no compressor or deduplication can shrink.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            bytes.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
        }
        bytes.truncate(photo_bytes);
        bytes
    };
    let per = count.div_ceil(concurrency.max(1)).max(1);
    let mut clients: Vec<Vec<Request>> = Vec::new();
    for c in 0..concurrency.max(1) {
        let requests: Vec<Request> = (c * per..((c + 1) * per).min(count))
            .map(|i| ("POST", "/api/v1/evidence".to_string(), photo(i)))
            .collect();
        if !requests.is_empty() {
            clients.push(requests);
        }
    }
    let (results, seconds) = load(host, clients)?;
    println!(
        "HTTP photo uploads: {} photos of {:.2} MiB, {concurrency} concurrent keep-alive clients, durable (fsync before every answer)",
        results.len(),
        photo_bytes as f64 / (1 << 20) as f64
    );
    println!("{}", summary(&results, seconds, "photos"));
    println!(
        "  {:.1} MB/s of photos",
        results.len() as f64 * photo_bytes as f64 / seconds / 1e6
    );
    Ok(())
}

/// Files `count` citizens' reports over HTTP with `concurrency` keep-alive clients, each report
/// signed by its own new reporter key (as many reporters file, and no key meets its hourly bound),
/// at a TPS of the registry, with a text of a few hundred bytes; with `photo_bytes`, each client
/// uploads the report's photo first and the report names it. Every 201 is durable (text and entry
/// fsynced before the answer).
pub fn http_reports(
    host: &str,
    registry: &Path,
    count: usize,
    photo_bytes: usize,
    concurrency: usize,
) -> Result<()> {
    use saksi_election::report::{text_digest, Category, Report, ReportSubmission};
    let tps: Vec<String> = std::fs::read_to_string(registry.join("tps.csv"))?
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next().map(str::to_string))
        .collect();
    anyhow::ensure!(!tps.is_empty(), "the registry lists no TPS");
    let election = saksi_election::Election::pemilu_2024().id;
    // Seeded by the clock: each run's reports and photos are new to the log and the store.
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let now = run / 1_000_000_000;
    let mut noise = 0x9E37_79B9_7F4A_7C15u64 ^ run | 1;
    let mut photo = |i: usize| {
        let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
        bytes.extend_from_slice(&(i as u64).to_be_bytes());
        bytes.extend_from_slice(&run.to_be_bytes());
        while bytes.len() < photo_bytes {
            noise ^= noise >> 12;
            noise ^= noise << 25;
            noise ^= noise >> 27;
            bytes.extend_from_slice(&noise.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
        }
        bytes.truncate(photo_bytes);
        bytes
    };
    let per = count.div_ceil(concurrency.max(1)).max(1);
    let mut clients: Vec<Vec<Request>> = Vec::new();
    let started = Instant::now();
    for c in 0..concurrency.max(1) {
        let mut requests: Vec<Request> = Vec::new();
        for i in c * per..((c + 1) * per).min(count) {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&run.to_le_bytes());
            seed[8..16].copy_from_slice(&(i as u64).to_le_bytes());
            let key = saksi_election::sign::SecretKey::from_seed(seed);
            let text = format!(
                "Laporan uji beban nomor {i}: saksi pasangan calon diminta keluar dari TPS saat \
                 penghitungan, dan papan C.Hasil ditutup dari pandangan warga selama sekitar dua \
                 puluh menit. Beberapa warga memotret kejadian itu dari luar pagar sekolah."
            );
            let mut photos = Vec::new();
            if photo_bytes > 0 {
                let bytes = photo(i);
                photos.push(saksi_election::form::PhotoDigest::of(&bytes));
                requests.push(("POST", "/api/v1/evidence".to_string(), bytes));
            }
            let report = Report {
                election: election.clone(),
                place: saksi_election::Code::parse(&tps[i % tps.len()])?,
                category: Category::ALL[i % Category::ALL.len()],
                event_at: now.saturating_sub(3600),
                filed_at: now,
                text_sha256: text_digest(&text),
                photos,
                reporter: key.public(),
                follows: None,
                withdraw: false,
                contact: None,
            };
            let submission = ReportSubmission {
                signed: report.sign(&key),
                text,
                stamp: None,
            };
            requests.push(("POST", "/api/v1/reports".to_string(), submission.encode()));
        }
        if !requests.is_empty() {
            clients.push(requests);
        }
    }
    let prepared = started.elapsed().as_secs_f64();
    let (results, seconds) = load(host, clients)?;
    let reports = results.len() / if photo_bytes > 0 { 2 } else { 1 };
    println!(
        "HTTP reports: {reports} reports{}, each by a new reporter key, {concurrency} concurrent keep-alive clients, durable (fsync before every answer); {prepared:.1}s to sign them beforehand",
        if photo_bytes > 0 {
            format!(
                " each with a {:.2} MiB photo uploaded first",
                photo_bytes as f64 / (1 << 20) as f64
            )
        } else {
            String::new()
        }
    );
    println!(
        "  {:.0} reports/s{}",
        reports as f64 / seconds,
        if photo_bytes > 0 {
            " (photo and report)"
        } else {
            ""
        }
    );
    println!("{}", summary(&results, seconds, "requests"));
    Ok(())
}
