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
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    runtime.block_on(async {
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for requests in clients {
            let host = host.to_string();
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
    let text = std::fs::read_to_string(forms)?;
    let lines: Vec<&str> = text.lines().skip(skip).take(requests).collect();
    let per = lines.len().div_ceil(concurrency.max(1)).max(1);
    let clients: Vec<Vec<Request>> = lines
        .chunks(per)
        .map(|part| {
            part.iter()
                .map(|line| {
                    (
                        "POST",
                        "/api/v1/forms".to_string(),
                        line.as_bytes().to_vec(),
                    )
                })
                .collect()
        })
        .collect();
    drop(lines);
    let (results, seconds) = load(host, clients)?;
    println!("HTTP submissions: {} requests, {concurrency} concurrent keep-alive clients (one generator thread), durable (fsync before every answer)", results.len());
    println!("{}", summary(&results, seconds, "submissions"));
    Ok(())
}

/// GETs region pages (`codes`, round robin) with `concurrency` keep-alive clients.
pub fn http_regions(
    host: &str,
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
    let (results, seconds) = load(host, clients)?;
    println!(
        "HTTP region queries: {} requests over {} regions, {concurrency} concurrent clients (one generator thread)",
        results.len(),
        codes.len()
    );
    println!("{}", summary(&results, seconds, "queries"));
    Ok(())
}

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
    drop(items);
    drop((messages, decoded));

    let started = Instant::now();
    let valid = crate::ops::decode_and_verify(&lines)
        .iter()
        .filter(|r| r.is_ok())
        .count();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "decode + verify (the import's first stage): {} forms on {workers} cores in {seconds:.2}s ({:.0} forms/s), {valid} valid",
        lines.len(),
        lines.len() as f64 / seconds
    );
    Ok(())
}
