//! `saksi relay` (an independent intake that forwards reports upstream) and `saksi audit relay`
//! (every report a relay logged that the main log does not hold after a stated delay).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use saksi_election::report::ReportSubmission;
use saksi_recap::relay::{Forwarded, RelayStore, RelayedReport};
use saksi_tlog::note::Verifier;
use saksi_tlog::tproof::TlogProof;
use saksi_tlog::{Storage, TileReader};

use crate::cli::{AuditRelayArgs, RelayArgs};
use crate::verify::HttpStorage;

/// The first wait after the upstream fails, doubled on each failure up to [`MAX_BACKOFF`]: a relay
/// keeps trying for as long as it runs, without hammering an upstream that is down.
const MIN_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

fn now_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub fn relay_command(args: RelayArgs) -> Result<u8> {
    crate::owned::claim(&args.data, "relay")?;
    let upstream = args.upstream.trim_end_matches('/').to_string();
    let store = Arc::new(
        RelayStore::open(&args.data, &args.name)
            .with_context(|| format!("opening the relay in {}", args.data.display()))?,
    );
    println!("relay vkey: {}", store.vkey);
    {
        let (store, upstream, vkey) = (store.clone(), upstream.clone(), args.upstream_vkey);
        std::thread::Builder::new()
            .name("forwarder".into())
            .spawn(move || forward(&store, &upstream, vkey.as_ref()))?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(saksi_server::serve_relay(
        store,
        upstream.clone(),
        saksi_server::Limits::default(),
        args.addr,
        |bound| {
            println!("relay listening on http://{bound} (reports to /api/v1/reports), forwarding to {upstream}");
        },
    ))?;
    Ok(crate::EXIT_OK)
}

/// Forwards every entry upstream in log order, for as long as the relay runs: an answer (logged
/// or refused for good) is recorded; no answer, or "come back later", is retried with backoff.
fn forward(store: &RelayStore, upstream: &str, upstream_vkey: Option<&Verifier>) {
    let client = match saksi_client::Client::new(saksi_client::Options::default()) {
        Ok(client) => client,
        Err(e) => {
            eprintln!("relay: cannot make an HTTP client ({e}); nothing will be forwarded");
            return;
        }
    };
    let mut backoff = MIN_BACKOFF;
    let mut troubled = false;
    loop {
        let Some((index, relayed)) = store.next_to_forward(Duration::from_secs(1)) else {
            continue;
        };
        match forward_one(&client, store, upstream, upstream_vkey, &relayed) {
            Ok(outcome) => {
                if troubled {
                    println!("relay: the upstream answers again");
                    troubled = false;
                }
                if let Forwarded::Refused { status, error, .. } = &outcome {
                    println!("relay: entry {index} refused upstream ({status}): {error}");
                }
                if let Err(e) = store.record_forwarded(index, outcome) {
                    eprintln!("relay: cannot record forwarding of entry {index}: {e}");
                    std::thread::sleep(MAX_BACKOFF);
                }
                backoff = MIN_BACKOFF;
            }
            Err(problem) => {
                if !troubled {
                    println!("relay: cannot forward entry {index} ({problem}); retrying");
                    troubled = true;
                }
                store.record_trouble(problem);
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// One entry upstream: its photos first (when the relay holds them), then the report with its
/// text. `Err` means "try again later".
fn forward_one(
    client: &saksi_client::Client,
    store: &RelayStore,
    upstream: &str,
    upstream_vkey: Option<&Verifier>,
    relayed: &RelayedReport,
) -> Result<Forwarded, String> {
    let come_back = |status: u16| matches!(status, 408 | 429) || status >= 500;
    for photo in &relayed.report.report.photos {
        let Ok(Some((bytes, _))) = store.evidence.get(photo) else {
            continue;
        };
        let response = client
            .post(&format!("{upstream}/api/v1/evidence"), &bytes)
            .map_err(|e| e.to_string())?;
        if come_back(response.status) {
            return Err(format!("photo upload answered {}", response.status));
        }
    }
    let Ok(Some(text)) = store.texts.get(&relayed.report.report.text_sha256) else {
        return Ok(Forwarded::Refused {
            status: 0,
            error: "the relay does not hold this report's text".into(),
            at: now_seconds(),
        });
    };
    let mut submission = ReportSubmission {
        signed: relayed.report.clone(),
        text,
        stamp: None,
    };
    let mut response = client
        .post(&format!("{upstream}/api/v1/reports"), &submission.encode())
        .map_err(|e| e.to_string())?;
    let mut answer: Value = serde_json::from_slice(&response.body).unwrap_or_default();
    // The upstream asks for work under a flood: the relay does it for the reporter, once.
    if response.status == 403 && answer["error"]["code"] == "POW_REQUIRED" {
        let intake = client
            .get(&format!("{upstream}/api/v1/intake"))
            .map_err(|e| e.to_string())?;
        let bits = serde_json::from_slice::<Value>(&intake.body).unwrap_or_default()["pow_bits"]
            .as_u64()
            .filter(|b| *b <= saksi_recap::entry::MAX_POW_BITS as u64)
            .ok_or("the upstream asks for work but does not say how much")?;
        submission.stamp = Some(saksi_election::report::make_stamp(
            &submission.signed.signature,
            bits as u8,
        ));
        response = client
            .post(&format!("{upstream}/api/v1/reports"), &submission.encode())
            .map_err(|e| e.to_string())?;
        answer = serde_json::from_slice(&response.body).unwrap_or_default();
    }
    match response.status {
        200 | 201 => {
            let upstream_index = answer["index"]
                .as_u64()
                .ok_or("the upstream's answer names no index")?;
            if let Some(vkey) = upstream_vkey {
                let receipt = answer["receipt"]
                    .as_str()
                    .and_then(|r| TlogProof::parse(r).ok())
                    .ok_or("the upstream's answer carries no receipt")?;
                let leaf = saksi_tlog::hash::leaf_hash(&relayed.upstream_entry());
                if receipt.index != upstream_index {
                    return Err("the upstream's receipt is for another entry".into());
                }
                receipt
                    .verify(&leaf, vkey, &[], 0)
                    .map_err(|e| format!("the upstream's receipt does not verify: {e}"))?;
            }
            Ok(Forwarded::Logged {
                upstream_index,
                at: now_seconds(),
            })
        }
        status if come_back(status) => Err(format!("the upstream answered {status}")),
        status => Ok(Forwarded::Refused {
            status,
            error: format!(
                "{} {}",
                answer["error"]["code"].as_str().unwrap_or("?"),
                answer["error"]["detail"].as_str().unwrap_or_default()
            )
            .trim()
            .to_string(),
            at: now_seconds(),
        }),
    }
}

/// Parses a delay such as `90s`, `10m`, `2h` or `1d` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map_or((text, ""), |at| text.split_at(at));
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 90s, 10m, 2h or 1d"))?;
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?}: the unit is s, m, h or d")),
    };
    number
        .checked_mul(seconds)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is too long"))
}

/// A log read over HTTP and checked: its verified checkpoint and a reader for its tiles.
struct RemoteLog {
    storage: Arc<HttpStorage>,
    origin: String,
    size: u64,
    root: saksi_tlog::Hash,
    note: String,
}

fn open_remote(url: &str, vkey: &Verifier, what: &str) -> Result<RemoteLog> {
    let storage = Arc::new(HttpStorage::new(url));
    let note = storage
        .read(saksi_tlog::CHECKPOINT_PATH)
        .with_context(|| format!("reading the {what}'s checkpoint"))?
        .with_context(|| format!("the {what} serves no checkpoint"))?;
    let signed = saksi_tlog::checkpoint::open(&note, vkey, &[]).map_err(|e| {
        anyhow::anyhow!("the {what}'s checkpoint does not verify with its key: {e}")
    })?;
    Ok(RemoteLog {
        storage,
        origin: signed.checkpoint.origin.clone(),
        size: signed.checkpoint.size,
        root: signed.checkpoint.root,
        note: String::from_utf8(note).context("checkpoint text")?,
    })
}

/// Every leaf hash of a log, by index, from its level-0 hash tiles (32 bytes per entry, not the
/// entries themselves). The tiles are checked against the checkpoint's root.
fn leaf_hashes(log: &RemoteLog) -> Result<HashMap<saksi_tlog::Hash, u64>> {
    let mut hashes = HashMap::with_capacity(log.size as usize);
    let mut all = Vec::with_capacity(log.size as usize);
    let tiles = log.size.div_ceil(256);
    for n in 0..tiles {
        let tile = saksi_tlog::tile::tile_for(0, n, log.size).context("a level-0 tile")?;
        let bytes = log
            .storage
            .read(&tile.path())?
            .with_context(|| format!("the main log has no {}", tile.path()))?;
        let tile_hashes = saksi_tlog::tile::decode_hashes(&bytes, tile.width)
            .map_err(|e| anyhow::anyhow!("{}: {e:?}", tile.path()))?;
        all.extend(tile_hashes);
    }
    // The leaves must give the signed root: a server cannot hide an entry by serving other tiles.
    if root_of(&all) != log.root {
        bail!("the main log's leaf tiles do not give its checkpoint's root");
    }
    for (index, hash) in all.into_iter().enumerate() {
        hashes.insert(hash, index as u64);
    }
    Ok(hashes)
}

fn root_of(leaves: &[saksi_tlog::Hash]) -> saksi_tlog::Hash {
    let mut range = saksi_tlog::merkle::CompactRange::new();
    for leaf in leaves {
        range.push(*leaf);
    }
    range.root()
}

pub fn audit_relay(args: AuditRelayArgs) -> Result<u8> {
    let relay_url = args.relay.trim_end_matches('/');
    let relay = open_remote(relay_url, &args.relay_vkey, "relay")?;
    let main = open_remote(args.log.trim_end_matches('/'), &args.vkey, "main log")?;
    let held = leaf_hashes(&main)?;
    let mut reader = TileReader::new(relay.storage.clone(), relay.size);
    let mut entries = Vec::with_capacity(relay.size as usize);
    let mut index = 0;
    while index < relay.size {
        for bytes in reader.bundle(index)? {
            if index >= relay.size {
                break;
            }
            let relayed = RelayedReport::decode(&bytes)
                .map_err(|e| anyhow::anyhow!("relay entry {index}: {e}"))?;
            entries.push((index, saksi_tlog::hash::leaf_hash(&bytes), relayed));
            index += 1;
        }
    }
    // The relay's own tiles must give its signed root too: its evidence is its signed log.
    let relay_leaves: Vec<_> = entries.iter().map(|(_, leaf, _)| *leaf).collect();
    if root_of(&relay_leaves) != relay.root {
        bail!("the relay's entries do not give its checkpoint's root");
    }
    // What the relay says the upstream answered (its claim, shown beside the evidence, not trusted).
    let claims: Value = crate::ops::http("GET", &format!("{relay_url}/api/v1/relay"), b"")
        .ok()
        .filter(|(status, _)| *status == 200)
        .and_then(|(_, body)| serde_json::from_slice(&body).ok())
        .unwrap_or_default();
    let refused: HashMap<u64, Value> = claims["refused"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| Some((r["index"].as_u64()?, r["refused"].clone())))
        .collect();
    let now = now_seconds();
    let max_delay = args.max_delay.as_secs();
    let (mut in_main, mut pending, mut missing) = (0u64, 0u64, Vec::new());
    for (index, _, relayed) in &entries {
        let upstream_leaf = saksi_tlog::hash::leaf_hash(&relayed.upstream_entry());
        if held.contains_key(&upstream_leaf) {
            in_main += 1;
        } else if relayed.received_at.saturating_add(max_delay) > now {
            pending += 1;
        } else {
            let proof = saksi_tlog::merkle::inclusion_proof(&mut reader, *index, relay.size)
                .map_err(|e| anyhow::anyhow!("a relay inclusion proof: {e:?}"))?;
            let receipt = TlogProof {
                extra: None,
                index: *index,
                proof,
                checkpoint: relay.note.clone(),
            };
            missing.push((*index, relayed.clone(), receipt.encode()));
        }
    }
    if args.json {
        let items: Vec<Value> = missing
            .iter()
            .map(|(index, relayed, receipt)| {
                let entry: Value = serde_json::from_slice(&relayed.encode()).unwrap_or_default();
                json!({
                    "relay_index": index,
                    "received_at": relayed.received_at,
                    "seconds_since": now.saturating_sub(relayed.received_at),
                    "entry": entry,
                    "signature": relayed.report.signature.to_base64(),
                    "relay_receipt": receipt,
                    "relay_says_upstream_refused": refused.get(index),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "relay": {"origin": relay.origin, "size": relay.size, "vkey": args.relay_vkey.encode()},
                "log": {"origin": main.origin, "size": main.size},
                "max_delay_seconds": max_delay,
                "checked": entries.len(),
                "held": in_main,
                "within_delay": pending,
                "missing": items,
            }))?
        );
    } else {
        println!(
            "relay {} (size {}) and main log {} (size {}): both checkpoints verified, tiles match their roots",
            relay.origin, relay.size, main.origin, main.size
        );
        println!(
            "{} reports the relay logged: {in_main} in the main log, {pending} received less than {max_delay} s ago, {} MISSING",
            entries.len(),
            missing.len()
        );
        for (index, relayed, receipt) in &missing {
            let report = &relayed.report.report;
            println!();
            println!(
                "MISSING relay entry {index}: received {} s ago; place {}, category {}, reporter {}",
                now.saturating_sub(relayed.received_at),
                report.place,
                report.category.code(),
                report.reporter
            );
            println!("  signature {}", relayed.report.signature.to_base64());
            if let Some(why) = refused.get(index) {
                println!("  the relay says the upstream refused it: {why}");
            }
            println!("  relay receipt (c2sp.org/tlog-proof):");
            for line in receipt.lines() {
                println!("    {line}");
            }
        }
    }
    Ok(if missing.is_empty() {
        crate::EXIT_OK
    } else {
        crate::EXIT_REJECTIONS
    })
}
